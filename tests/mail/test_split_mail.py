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
from firmware.secretbox import SecretBox
from web.remote import services_for_recorder

from .conftest import PASSWORD, server_settings

pytestmark = pytest.mark.slow  # a real server on a real port

SCENARIO = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}


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
