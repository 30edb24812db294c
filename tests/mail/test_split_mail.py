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

from .conftest import PASSWORD, ops_account, server_settings

pytestmark = pytest.mark.slow  # a real server on a real port

SCENARIO = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}


def _box_and_receiver(tmp_path, timeout_s):
    """A data directory the simulator made, and a UDP syslog receiver on 127.0.0.1."""
    import socket

    data_dir = str(tmp_path / "data")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(timeout_s)
    ops_account(data_dir)  # the recipients' account: an installer's, who sees every line
    return data_dir, receiver


def test_the_recorders_alarms_reach_syslog_through_the_web_ui(tmp_path):
    """The same for syslog: the recorder sends nothing over UDP (it cannot, on the box);
    the web UI's process relays every occurrence from the history, each once, the
    recorder's and its own, and goes on after a restart where it stopped."""

    data_dir, receiver = _box_and_receiver(tmp_path, 0.5)

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


def test_a_first_relay_sends_the_last_days_alarms_not_the_whole_history(tmp_path):
    """A box updated from a release whose recorder sent its own alarms (and so, on the
    box, none) has a history but no relay state. The first relay sent none of it, so
    the alarms of the hours before the update never reached syslog; it now sends those
    of the last day, with the time each was raised, and not older ones."""
    import time

    data_dir, receiver = _box_and_receiver(tmp_path, 0.5)
    recorder_alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), SimClock())
    mail = MailService(data_dir, lambda: 0, SecretBox(data_dir), alarm_log=recorder_alarms)
    mail.deliver = False  # the recorder's side
    mail.store.save(MailSettings(syslog="127.0.0.1:%d" % receiver.getsockname()[1]))
    now_us = time.time_ns() // 1000
    recorder_alarms.set("disk_warning", True, message="two days ago", wall_us=now_us - 2 * 86_400_000_000)
    hour_ago = now_us - 3_600_000_000
    recorder_alarms.set("no_line_voltage", True, line=1, message="an hour ago", wall_us=hour_ago)
    recorder_alarms.close()
    web = services_for_recorder(data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 2)
    try:
        web.mail.tick()
        got = []
        with pytest.raises(TimeoutError):
            while True:
                got.append(receiver.recv(2048).decode())
        assert len(got) == 1 and "an hour ago" in got[0], got
        web.mail.tick()
        with pytest.raises(TimeoutError):
            receiver.recv(2048)
    finally:
        receiver.close()
        web.alarms.close()


def test_the_recorders_alarm_mail_is_delivered_by_the_web_ui(tmp_path, smtp_server):
    data_dir = str(tmp_path / "data")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    ops_account(data_dir)  # the recipients' account: an installer's, who sees every line

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
        "[Linekeeper] Alarm on line 2: No voltage on the line",
        "[Linekeeper] Alarm on the box: A concern raised by staff",
    ]
    assert web.mail.tick() == (0, 0)  # each once
    recorder_alarms.close()
    web.alarms.close()


def test_the_web_ui_sends_what_the_recorder_raises_without_waiting_for_its_round(tmp_path, smtp_server):
    """The recorder cannot wake the web UI's mail thread. It used to wait for its round (10 s
    on the box); it now watches the queue and the alarm history, so an alarm goes out as
    soon as it is raised. The round here is an hour: only the watch can send it."""
    import time

    data_dir, receiver = _box_and_receiver(tmp_path, 30)
    clock = SimClock(start_wall_us=1_773_100_800_000_000)
    recorder_alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), clock)
    recorder_mail = MailService(data_dir, clock.wall_us, SecretBox(data_dir), alarm_log=recorder_alarms)
    recorder_mail.deliver = False
    settings = server_settings(smtp_server, syslog="127.0.0.1:%d" % receiver.getsockname()[1])
    recorder_mail.store.save(settings, new_password=PASSWORD)
    web = services_for_recorder(data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 2)
    web.mail.ssl_context = smtp_server.client_context()
    web.mail.interval_s = 3600
    web.mail.start()
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(data_dir, "mail", "syslog.json")):
            assert time.monotonic() < deadline, "the first round never looked at the history"
            time.sleep(0.05)
        recorder_alarms.set("no_line_voltage", True, line=2, message="no line voltage")
        assert 'kind="no_line_voltage"' in receiver.recv(2048).decode()
        while not smtp_server.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        (sent,) = smtp_server.messages
        message = email.message_from_bytes(sent[2], policy=email.policy.default)
        assert message["Subject"] == "[Linekeeper] Alarm on line 2: No voltage on the line"
    finally:
        web.mail.close()
        receiver.close()
        recorder_alarms.close()
        web.alarms.close()
