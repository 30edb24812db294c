"""Scheduled reports on the box's clock: due periods, catch-up after a stop, never twice."""

import dataclasses
import datetime as dt
import json
import os

import pytest

from firmware.calls.calllog import SCHEMA
from firmware.localtime import days_words
from firmware.mail.queue import MailQueue
from firmware.mail.schedule import ReportScheduler, next_period
from firmware.mail.settings import MailSettings, Schedule
from firmware.mail.smtp import MailError
from firmware.reports.period import Period
from firmware.reports.source import ReportSource

DAY_US = 86_400_000_000


def us(date):
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp()) * 1_000_000


class Clock:
    def __init__(self, date):
        self.t = us(date) + 6 * 3600_000_000  # 06:00 on that day

    def wall_us(self):
        return self.t


@pytest.fixture
def sched(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    clock = Clock(dt.date(2026, 3, 10))  # a Tuesday
    queue = MailQueue(tmp_path / "queue", clock.wall_us)
    settings = MailSettings(
        host="mail.example.com",
        sender="box@example.com",
        schedules=(
            Schedule("daily", ("a@example.com",), "csv"),
            Schedule("weekly", ("b@example.com",), "csv"),
            Schedule("monthly", ("c@example.com",), "csv"),
        ),
    )
    s = ReportScheduler(
        ReportSource(str(tmp_path), n_lines=2),
        queue,
        lambda: settings,
        clock.wall_us,
        tmp_path / "schedules.json",
    )
    return s, clock, queue


def subjects(queue):
    return [p["subject"].split("] ")[1] for p in queue.pending()]


def test_a_new_schedule_starts_with_the_last_complete_period(sched):
    s, clock, queue = sched
    assert s.run() == [
        ("daily-csv", "2026-03-09"),
        ("weekly-csv", "2026-03-02"),
        ("monthly-csv", "2026-02-01"),
    ]
    assert subjects(queue) == [
        # Its days as the pages write dates (they read "2026-03-02 to 2026-03-08"): one
        # day named once, the year once.
        "Daily report, Mon 9 Mar 2026",
        "Weekly report, Mon 2 Mar - Sun 8 Mar 2026",
        "Monthly report, Sun 1 Feb - Sat 28 Feb 2026",
    ]
    assert s.run() == []  # the same day again: nothing


def test_a_subjects_days_name_both_years_across_a_new_year():
    assert days_words("2025-12-29", "2026-01-04") == "Mon 29 Dec 2025 - Sun 4 Jan 2026"
    assert days_words(dt.date(2026, 3, 9), dt.date(2026, 3, 9)) == "Mon 9 Mar 2026"


def test_catch_up_after_the_box_was_off_each_period_once(sched):
    s, clock, queue = sched
    s.run()
    clock.t += 25 * DAY_US  # off until Saturday 4 April
    assert s.run() == [("daily-csv", "2026-03-%02d" % d) for d in range(10, 32)] + [
        ("daily-csv", "2026-04-%02d" % d) for d in range(1, 4)
    ] + [("weekly-csv", "2026-03-%02d" % d) for d in (9, 16, 23)] + [("monthly-csv", "2026-03-01")]
    assert s.run() == []
    # Even with the state file lost, the queue refuses a period it already holds.
    os.remove(s.state_path)
    n = len(queue.pending())
    s.run()
    assert len(queue.pending()) == n


def test_periods_follow_each_other():
    p = Period(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    months = []
    for _ in range(3):
        p = next_period("monthly", p)
        months.append((p.first.isoformat(), p.last.isoformat()))
    assert months == [
        ("2026-02-01", "2026-02-28"),
        ("2026-03-01", "2026-03-31"),
        ("2026-04-01", "2026-04-30"),
    ]


def test_backoff_doubles_and_a_delivered_key_is_never_queued_again(tmp_path):
    from email.message import EmailMessage

    clock = Clock(dt.date(2026, 3, 10))
    queue = MailQueue(tmp_path / "q", clock.wall_us)

    class Down:
        def send(self, msg):
            raise MailError("cannot reach the mail server")

    sent = []

    class Up:
        def send(self, msg):
            sent.append(msg["Subject"])

    msg = EmailMessage()
    msg["Subject"] = "hello"
    msg.set_content("x")
    assert queue.enqueue(msg, key="k1") is not None
    assert queue.enqueue(msg, key="k1") is None
    waits = []
    for _ in range(4):
        assert queue.flush(Down()) == (0, 1)
        waits.append((queue.pending()[0]["next_us"] - clock.t) // 1_000_000)
        clock.t = queue.pending()[0]["next_us"]
    assert waits == [60, 120, 240, 480]
    assert queue.flush(Up()) == (1, 0) and sent == ["hello"]
    assert queue.enqueue(msg, key="k1") is None
    assert json.load(open(tmp_path / "q" / "sent-keys.json")) == ["k1"]


def test_every_scheduled_report_carries_the_audit_trail_head(sched, tmp_path):
    """The head leaves the card with each report: `verify --head` checks against it later."""
    import base64
    import email
    from email import policy

    from firmware.storage.audit import AuditLog

    s, clock, queue = sched
    with AuditLog(tmp_path / "audit.db", tmp_path / "audit.head") as audit:
        audit.append("sam", "playback", "call:1", {}, clock.wall_us())
        seq, digest = audit.head()
    s.run()
    [item] = [i for i in queue._items() if "Weekly" in i["subject"]]
    msg = email.message_from_bytes(base64.b64decode(item["message"]), policy=policy.default)
    body = msg.get_body(("plain",)).get_content()
    assert "Audit trail head: %d:%s" % (seq, digest) in body
    # The whole command, as it runs: `verify` needs the box's data folder, and the mail said
    # only `linekeeper verify --head ...`, which stops at "the following arguments are
    # required: --data-dir".
    assert "`linekeeper verify --data-dir %s --head %d:%s`" % (tmp_path, seq, digest) in body


def test_off_longer_than_the_catch_up_the_older_periods_are_said_missed_not_mailed(sched):
    """Off for 40 days: at most 31 daily reports go (the latest), and one mail says which
    days' reports were not sent and where to make them; not all 40 over two rounds."""
    s, clock, queue = sched
    s.run()  # up to 2026-03-09
    before = len(queue.pending())
    clock.t += 40 * DAY_US  # back on Sunday 19 April
    first = s.run()
    daily = [first_day for sid, first_day in first if sid == "daily-csv"]
    assert daily == [(dt.date(2026, 3, 19) + dt.timedelta(days=d)).isoformat() for d in range(31)]
    assert s.run() == []  # nothing more: the older ones are not sent later either
    new = [p["subject"] for p in queue.pending()[before:]]
    notices = [t for t in new if "not sent" in t]
    assert notices == ["[Linekeeper] Daily reports of Tue 10 Mar - Wed 18 Mar 2026 not sent (9)"]
    [item] = [i for i in queue._items() if "not sent" in i["subject"]]
    import base64
    import email
    from email import policy

    body = email.message_from_bytes(base64.b64decode(item["message"]), policy=policy.default).get_content()
    assert "Reports page (from Tue 10 Mar 2026 to Wed 18 Mar 2026)" in body
    # Once only, even with the state file lost.
    os.remove(s.state_path)
    clock.t += 0
    s.run()
    assert [p["subject"] for p in queue.pending()].count(notices[0]) == 1


def test_a_scheduled_report_is_of_every_line_as_its_recipients_are_tied_to_no_account(sched, tmp_path):
    """A schedule names no lines and its addresses no account (docs/reports.md, E-mail): its
    report is the whole box's, an auditor's report of every line. It lists every line's
    missed callers and counts every playback and export, one of a call no longer in the call
    log (an export from the command line, which names no line) too; a report of some lines
    would have left that one out."""
    import sqlite3

    from firmware.storage.audit import AuditLog

    s, clock, queue = sched
    monday = us(dt.date(2026, 3, 9))
    db = sqlite3.connect(tmp_path / "calls.db")
    db.execute(
        "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number)"
        " VALUES (2, 'in', ?, ?, 1, '01632960777')",
        (monday + 3600_000_000, monday + 3610_000_000),
    )
    db.commit()
    db.close()
    with AuditLog(tmp_path / "audit.db", tmp_path / "audit.head") as audit:
        audit.append("sam", "playback", "call:1", {"line": 1}, monday + 7200_000_000)
        audit.append("sue", "playback", "call:1", {"line": 2}, monday + 7200_000_000)
        audit.append("ivan", "export", "call:99", {"format": "opus"}, monday + 7200_000_000)
    s.run()

    class Up:
        sent = []

        def send(self, msg):
            self.sent.append(msg)
            return {}

    queue.flush(Up())
    (daily,) = [m for m in Up.sent if m["Subject"].endswith("Daily report, Mon 9 Mar 2026")]
    (attachment,) = [p for p in daily.walk() if p.get_filename()]
    text = attachment.get_content()
    assert "01632960777" in text
    for name in ("sam", "sue", "ivan"):
        assert name in text


def test_a_period_wholly_before_the_box_was_first_started_is_not_mailed(sched, tmp_path):
    """A box set up on Monday 9 March: its owner's first weekly report is not of the week
    before, when the box was not there (a report of nothing, in the inbox on setup day),
    nor its first monthly of February; the day it started is mailed, and the next week's
    and month's reports go when due."""
    from firmware.storage.audit import AuditLog

    s, clock, queue = sched
    first_start = us(dt.date(2026, 3, 9)) + 9 * 3600_000_000
    with AuditLog(tmp_path / "audit.db", tmp_path / "audit.head") as audit:
        audit.append("system", "box_start", "box", {"after": "first_start", "down_from": None}, first_start)
    assert s.run() == [("daily-csv", "2026-03-09")]
    assert subjects(queue) == ["Daily report, Mon 9 Mar 2026"]
    assert s.run() == []
    clock.t += 6 * DAY_US  # Monday 16 March
    assert ("weekly-csv", "2026-03-09") in s.run()
    clock.t += 17 * DAY_US  # Wednesday 1 April
    assert ("monthly-csv", "2026-03-01") in s.run()


def test_a_scheduled_pdf_report_names_the_organisation_in_its_title(sched, tmp_path, monkeypatch):
    """ "Linekeeper weekly report" alone, in a mail forwarded on: whose? The site settings'
    organisation is in the title where one is given."""
    import base64
    import email
    import subprocess
    from email import policy

    from firmware.mail import schedule as module

    s, clock, queue = sched
    monkeypatch.setattr(module, "site_settings", lambda data_dir: {"organisation": "Acme Plumbing Ltd"})
    settings = s.settings()
    monkeypatch.setattr(
        s,
        "settings",
        lambda: dataclasses.replace(settings, schedules=(Schedule("weekly", ("b@example.com",), "pdf"),)),
    )
    s.run()
    [item] = [i for i in queue._items() if "Weekly" in i["subject"]]
    msg = email.message_from_bytes(base64.b64decode(item["message"]), policy=policy.default)
    [pdf] = [part.get_content() for part in msg.iter_attachments()]
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert text.splitlines()[0] == "Linekeeper weekly report for Acme Plumbing Ltd", text[:200]
