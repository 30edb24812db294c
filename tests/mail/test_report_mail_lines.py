"""A scheduled report names each line as the Reports page does, "Line 2 (Office)": its mail
read "Line Line 2 not in service: ..." and its attachment "Line 2", where the page, its
download and the alarm mails say "line 2 (Office)"."""

import base64
import datetime as dt
import email
import sqlite3
from email import policy

from firmware.alarmlog import AlarmLog
from firmware.calls.calllog import SCHEMA
from firmware.mail.queue import MailQueue
from firmware.mail.schedule import ReportScheduler
from firmware.mail.settings import MailSettings, Schedule
from firmware.reports.source import ReportSource

from support.simbox import save_site_settings


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


class _Clock:
    def __init__(self, t_us):
        self.t = t_us

    def wall_us(self):
        return self.t


def test_the_report_mail_and_its_file_name_each_line_as_the_pages_do(tmp_path):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    lines = [{"line": 1, "name": "Line 1", "record": True}, {"line": 2, "name": "Office", "record": True}]
    save_site_settings(tmp_path, organisation="Harbour Ltd", time_zone="Europe/London", lines=lines)
    clock = _Clock(_utc_us(2026, 3, 10, 6))  # a Tuesday: Monday's daily report is due
    alarms = AlarmLog(str(tmp_path / "alarms.db"), clock)
    alarms.set("no_line_voltage", True, line=2, message="no line voltage", wall_us=_utc_us(2026, 3, 9, 10))
    alarms.set("no_line_voltage", False, line=2, wall_us=_utc_us(2026, 3, 9, 11))
    queue = MailQueue(tmp_path / "queue", clock.wall_us)
    settings = MailSettings(
        host="mail.example.com",
        sender="box@example.com",
        schedules=(Schedule("daily", ("owner@example.com",), "csv"),),
    )
    scheduler = ReportScheduler(
        ReportSource(str(tmp_path), n_lines=2, alarms=alarms),
        queue,
        lambda: settings,
        clock.wall_us,
        tmp_path / "schedules.json",
    )
    scheduler.run()
    [item] = queue._items()
    msg = email.message_from_bytes(base64.b64decode(item["message"]), policy=policy.default)
    body = msg.get_body(("plain",)).get_content()
    assert "line 2 (Office) for 1:00:00" in body, body
    assert "Line 2 (Office) not in service: Mon 9 Mar 2026, 10:00:00 GMT to" in body, body
    assert "Line Line" not in body, body
    [attachment] = list(msg.iter_attachments())
    csv = attachment.get_content()
    assert "Figure,Box,Line 1,Line 2 (Office)" in csv, csv[:400]
    alarms.close()
