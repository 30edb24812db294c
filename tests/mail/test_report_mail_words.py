"""A scheduled report's mail text: its figures say what they count, in words."""

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

    assert "did not send its 1 daily report of 2026-03-10 to 2026-03-10:" in said(1)
    assert "did not send its 9 daily reports of 2026-03-10 to 2026-03-18:" in said(9)
    assert "(s)" not in said(1) + said(9)
