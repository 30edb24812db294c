"""A scheduled report's mail text: its figures say what they count, in words."""

import re

import pytest

from firmware.mail.compose import report_message
from firmware.mail.settings import MailSettings


def body(callbacks, alarms):
    report = {
        "period": {"from": "2026-03-02", "to": "2026-03-02", "tz": "Europe/London"},
        "box": {"calls": 3, "in": 2, "out": 1, "missed": 1, "answered_rate_pct": 50.0},
        "callbacks": [{"number": "0163249600%d" % i} for i in range(callbacks)],
        "alarms": [{"kind": "disk_warning"}] * alarms,
    }
    mail = report_message(
        MailSettings(sender="box@example.com"), ["o@example.com"], report, b"x", "csv", "Shop", 0, "daily"
    )
    return mail.get_body().get_content()


def test_numbers_not_called_back_and_alarms_raised_are_said_as_such():
    """It read "Not called back: 1 number(s)" and a bare "Alarms: 2"."""
    text = body(1, 2)
    assert "Missed callers not called back: 1 number\n" in text, text
    assert "Alarms raised: 2\n" in text, text
    assert "Missed callers not called back: 2 numbers\n" in body(2, 0)


def test_reports_not_sent_are_counted_in_words():
    """It read "did not send its 1 daily report(s)"."""
    import datetime as dt

    from firmware.mail.compose import missed_reports_message

    def said(count):
        first, last = dt.date(2026, 3, 10), dt.date(2026, 3, 9 + count)
        mail = missed_reports_message(
            MailSettings(sender="box@example.com"), ["o@example.com"], "daily", first, last, count, "Shop", 0
        )
        return mail.get_body().get_content()

    assert "did not send its 1 daily report of Tue 10 Mar 2026:" in said(1)
    assert "did not send its 9 daily reports of Tue 10 Mar - Wed 18 Mar 2026:" in said(9)
    assert "(s)" not in said(1) + said(9)


def test_reports_not_sent_say_their_days_as_the_report_mails_do():
    """The mail wrote "2026-03-10 to 2026-03-18" where the report mails' subjects and the
    pages write "Tue 10 Mar - Wed 18 Mar 2026"; the Reports page's From and To are said
    as the pages write a date too."""
    import datetime as dt

    from firmware.mail.compose import missed_reports_message

    mail = missed_reports_message(
        MailSettings(sender="box@example.com"),
        ["o@example.com"],
        "weekly",
        dt.date(2025, 12, 29),
        dt.date(2026, 1, 11),
        2,
        "Shop",
        0,
    )
    text = mail.get_body().get_content()
    assert mail["Subject"] == "[Shop] Weekly reports of Mon 29 Dec 2025 - Sun 11 Jan 2026 not sent (2)"
    assert "its 2 weekly reports of Mon 29 Dec 2025 - Sun 11 Jan 2026:" in text, text
    assert "Reports page (from Mon 29 Dec 2025 to Sun 11 Jan 2026)" in text, text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), text


@pytest.mark.parametrize("notice", ["withdrawn", "stale"])
def test_a_report_withdrawn_or_too_late_says_its_days_as_the_pages_do(notice):
    """The notices in a queued report's place said "Reports page (from 2026-03-02 to
    2026-03-08)"; the ISO days stay in the queue's record only."""
    from email.message import EmailMessage

    from firmware.mail.compose import stale_report_message, withdrawn_report_message

    report = EmailMessage()
    report["From"], report["To"] = "box@example.com", "o@example.com"
    report["Subject"] = "[Shop] Weekly report, Mon 2 Mar - Sun 8 Mar 2026"
    period = ["2026-03-02", "2026-03-08"]
    if notice == "withdrawn":
        mail = withdrawn_report_message(report, period, 0)
    else:
        mail = stale_report_message(report, period, 0, 7)
    text = mail.get_content()
    assert "Reports page (from Mon 2 Mar 2026 to Sun 8 Mar 2026)" in text, text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), text


def test_the_answered_rate_is_to_a_tenth_of_a_percent_as_in_the_report():
    """It read "50 %" beside a report whose other rates read "45.5": one rule, to 0.1 %."""
    assert "Answered rate: 50.0 %\n" in body(0, 0)
