"""The e-mails the box sends: an alarm, a report, a test."""

import email.utils
from email.message import EmailMessage


def _message(settings, to, subject, body, wall_us):
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(wall_us / 1e6, usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain="linekeeper.invalid")
    msg.set_content(body)
    return msg


def alarm_message(settings, row, box_name, wall_us, suppressed=0):
    """The mail for alarm occurrence ``row`` (an AlarmLog row)."""
    from firmware.calls.calllog import iso_ms

    where = "line %d" % row["line"] if row["line"] else "the box"
    subject = "[%s] Alarm: %s on %s" % (box_name, row["kind"].replace("_", " "), where)
    body = "%s\n\nAlarm: %s\nWhere: %s\nRaised: %s\n\n" % (
        subject,
        row["message"] or row["kind"],
        where,
        iso_ms(row["raised_us"]),
    )
    if suppressed:
        body += (
            "It was also raised %d more time(s) since the last mail about it "
            "(one mail per alarm per rate window).\n\n" % suppressed
        )
    body += "Acknowledge it on the box's dashboard; the alarm history lists every occurrence.\n"
    return _message(settings, settings.alarm_to, subject, body, wall_us)


def report_message(settings, to, report, data, fmt, box_name, wall_us, every, audit_head=None):
    """A scheduled report, its key figures in the text and the file attached.

    ``audit_head``: the audit trail's chain head ``(seq, hash)`` when the report was
    made; the mail carries it off the card, so a trail rewritten later on the card
    fails ``linekeeper verify --head SEQ:HASH``.
    """
    p, box = report["period"], report["box"]
    subject = "[%s] %s report %s to %s" % (box_name, every.capitalize(), p["from"], p["to"])
    body = (
        "%s\n\nCalls: %d (in %d, out %d)\nMissed: %d\nAnswered rate: %s %%\n"
        "Not called back: %d number(s)\nAlarms: %d\n\nThe full report is attached.\n"
        % (
            subject,
            box["calls"],
            box["in"],
            box["out"],
            box["missed"],
            "-" if box["answered_rate_pct"] is None else box["answered_rate_pct"],
            len(report["callbacks"]),
            len(report["alarms"]),
        )
    )
    if audit_head is not None:
        body += (
            "\nAudit trail head: %d:%s\nKeep this e-mail: `linekeeper verify --head %d:%s` "
            "shows whether the audit trail up to here was changed later.\n" % (audit_head + audit_head)
        )
    msg = _message(settings, to, subject, body, wall_us)
    maintype, subtype = ("application", "pdf") if fmt == "pdf" else ("text", "csv")
    name = "linekeeper-report-%s-%s.%s" % (p["from"], p["to"], fmt)
    if maintype == "text":
        msg.add_attachment(data.decode("utf-8"), subtype=subtype, filename=name)
    else:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def test_message(settings, to, box_name, wall_us):
    subject = "[%s] Test e-mail" % box_name
    return _message(
        settings, to, subject, "This is a test e-mail from %s: the mail settings work.\n" % box_name, wall_us
    )
