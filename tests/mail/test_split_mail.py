"""On the box the recorder has no network: its alarm mails reach the server through the web UI.

``linekeeper recorder`` runs with no network at all (linekeeper-recorder.service:
``PrivateNetwork=yes``, only Unix sockets), so the mail it delivered itself never
left the box: no alarm mail, no scheduled report. And the web UI beside it had
no alarm history, reports or mail settings at all (its pages said the box keeps
none). Now the recorder only queues (``MailService.deliver`` off), and the web
UI's process - which has the network - reads the alarm history, raises people's
concerns, and delivers the queue.
"""

import email
import email.policy
import json
import os

import pytest

from firmware import cli
from firmware.alarmlog import AlarmLog
from firmware.clock import SimClock
from firmware.control import ControlClient
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings
from firmware.secretbox import SecretBox
from web.remote import services_for_recorder

from .conftest import PASSWORD, server_settings

pytestmark = pytest.mark.slow  # a real server on a real port

SCENARIO = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}


def test_the_recorders_alarms_reach_syslog_through_the_web_ui(tmp_path):
    """The same for syslog: the recorder sends nothing over UDP (it cannot, on the box);
    the web UI's process relays every occurrence from the history, each once, the
    recorder's and its own, and goes on after a restart where it stopped."""
    import socket

    data_dir = str(tmp_path / "data")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.5)

    def heard():
        got = []
        try:
            while True:
                got.append(receiver.recv(2048).decode())
        except TimeoutError:
            return got

    clock = SimClock(start_wall_us=1_773_100_800_000_000)
    recorder_alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), clock)
    recorder_mail = MailService(data_dir, clock.wall_us, SecretBox(data_dir), alarm_log=recorder_alarms)
    recorder_mail.deliver = False
    recorder_mail.store.save(MailSettings(syslog="127.0.0.1:%d" % receiver.getsockname()[1]))
    # A first look at an empty history: the first alarm after it goes out.
    first = services_for_recorder(data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 2)
    first.mail.tick()
    first.alarms.close()
    recorder_alarms.set("disk_warning", True, message="the first alarm of the box")
    client = ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2)
    web = services_for_recorder(data_dir, client, 2)
    try:
        assert web.mail.tick() == (0, 0)
        assert ['kind="disk_warning"' in m for m in heard()] == [True]
        recorder_alarms.set("no_line_voltage", True, line=2, message="no line voltage")
        assert heard() == []  # the recorder sent nothing itself
        web.alarms.set("staff_concern", True, message="a concern")
        assert heard() == []  # nor does the web UI as it raises one: it relays them all
        web.mail.tick()
        got = heard()
        assert len(got) == 2 and 'kind="no_line_voltage"' in got[0] and 'kind="staff_concern"' in got[1], got
        web.mail.tick()
        assert heard() == []  # each once
        web.alarms.close()
        recorder_alarms.set("disk_critical", True, message="raised while the web UI restarted")
        web = services_for_recorder(data_dir, client, 2)
        web.mail.tick()
        assert ['kind="disk_critical"' in m for m in heard()] == [True]
    finally:
        receiver.close()
        recorder_alarms.close()
        web.alarms.close()


def test_the_recorders_alarm_mail_is_delivered_by_the_web_ui(tmp_path, smtp_server):
    data_dir = str(tmp_path / "data")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0

    # The recorder's side, as `linekeeper recorder` sets it up.
    clock = SimClock(start_wall_us=1_773_100_800_000_000)
    recorder_alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), clock)
    recorder_mail = MailService(data_dir, clock.wall_us, SecretBox(data_dir), alarm_log=recorder_alarms)
    recorder_mail.deliver = False
    recorder_mail.store.save(server_settings(smtp_server), new_password=PASSWORD)
    recorder_alarms.set("no_line_voltage", True, line=2, message="no line voltage")
    assert recorder_mail.tick() == (0, 0) and smtp_server.messages == []  # queued, not sent

    # The web UI's process beside it (the recorder is not answering here: no matter).
    web = services_for_recorder(data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 2)
    web.mail.ssl_context = smtp_server.client_context()
    assert [a["kind"] for a in web.alarms.banner()] == ["no_line_voltage"]
    assert web.reports is not None and web.reports.alarms is web.alarms
    # A concern raised on the web UI is mailed too.
    web.alarms.set("staff_concern", True, message="a caller asked not to be recorded")
    web.alarms.set("staff_concern", False)
    assert web.mail.tick() == (2, 0)
    subjects = sorted(
        email.message_from_bytes(content, policy=email.policy.default)["Subject"]
        for _, _, content in smtp_server.messages
    )
    assert subjects == [
        "[Linekeeper] Alarm: no line voltage on line 2",
        "[Linekeeper] Alarm: staff concern on the box",
    ]
    assert web.mail.tick() == (0, 0)  # each once
    recorder_alarms.close()
    web.alarms.close()
