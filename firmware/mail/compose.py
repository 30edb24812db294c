"""The e-mails the box sends: an alarm, a report, a test."""

import dataclasses
import email.utils
import re
from email.message import EmailMessage

MAX_GAPS_LISTED = 10  # times the box (or a line) was not recording, listed in a report mail's text


ALARM_RECIPIENT = "one of the box's alarm recipients"


def _why(given_as):
    """The closing lines of a mail sent to an address the E-mail page gives ``given_as``:
    why it came and how to stop it, said to someone who never logs in to the box."""
    return (
        "\n-- \nYou get this mail because this address is %s, on its E-mail page (Settings, "
        "E-mail). To stop these mails, an installer takes the address off there. The box sent "
        "this mail by itself and does not read replies.\n" % given_as
    )


def _report_recipient(every):
    return "given for the box's %s report" % every


def _automatic(msg):
    """Mark ``msg`` as a machine's (RFC 3834; Exchange's own header too), so that an
    out-of-office reply does not answer every alarm and report."""
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"


def _message(settings, to, subject, body, wall_us, given_as=None):
    """The mail ``body`` to ``to``; ``given_as``: what the E-mail page made the
    recipients (:func:`_why`), said at its end."""
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(wall_us / 1e6, usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain="linekeeper.invalid")
    _automatic(msg)
    msg.set_content(body + (_why(given_as) if given_as else ""))
    return msg


@dataclasses.dataclass(frozen=True)
class Repeats:
    """What an alarm's mail says of the other occurrences of its kind and line
    (:class:`~firmware.mail.alarms.AlarmMailer`), times in µs of the wall clock."""

    count: int = 0  # raised this many times since the last mail about it, not mailed
    since_us: int | None = None  # that last mail
    last_us: int | None = None  # the last of those occurrences
    next_us: int | None = None  # the next mail about it goes no sooner (None: every one is mailed)
    follow_up: bool = False  # a mail says when it has cleared (a fault its source clears)


@dataclasses.dataclass(frozen=True)
class FollowUp:
    """What the follow-up of a repeating alarm mailed in a run says (times in µs of the
    wall clock): :meth:`~firmware.mail.alarms.AlarmMailer.follow_ups`."""

    first_us: int  # the run's first mail
    count: int  # the occurrences after the one that mail was about
    cleared_us: int  # when the last of them cleared
    next_us: int  # a mail about it if it comes back within a day goes no sooner
    last_mail_us: int | None = None  # the last mail about it, when not the first
    since_last: int = 0  # of ``count``, those since that last mail


def cleared_message(settings, row, box_name, wall_us, follow, local_time=None, line_names=None, to=None):
    """The follow-up of a repeating alarm (``row``: its ``kind`` and ``line``), to ``to``:
    it cleared, when, how many times it happened since the first mail about it
    (``follow``, a :class:`FollowUp`), and that nothing more comes while it stays clear.
    Not the alarm's own words (they may name a caller): the Alarms page has them."""
    from firmware import words
    from firmware.localtime import LocalTime

    local_time = local_time or LocalTime()
    where, what, _ = _alarm_subject(row, box_name, line_names)
    subject = "[%s] Cleared on %s: %s" % (box_name, where, what.split(":")[0])
    first, cleared = local_time.when(follow.first_us), local_time.when(follow.cleared_us)
    if follow.count:
        happened = "It happened %s after the first mail about it (%s)" % (
            words.counted(follow.count, "more time"),
            first,
        )
        if follow.last_mail_us is not None:
            happened += ", %d of them since the last mail about it (%s)" % (
                follow.since_last,
                local_time.when(follow.last_mail_us),
            )
    else:
        happened = "It did not happen again after the first mail about it (%s)" % first
    body = (
        "%s\n\nAlarm: %s\nWhere: %s\nCleared: %s\n\n"
        "%s. It has been clear since %s; nothing more is mailed about it while it stays clear.\n\n"
        "If it comes back within a day of its last time, the next mail about it goes no sooner "
        "than %s, saying how many times it happened meanwhile; later than that, it is mailed at "
        "once as a new fault.\n\n"
        "The Alarms page lists every occurrence; acknowledge them on the box's dashboard%s.\n"
        % (
            subject,
            what,
            where,
            cleared,
            happened,
            cleared,
            local_time.when(follow.next_us),
            _dashboard_link(settings),
        )
    )
    to = settings.alarm_to if to is None else to
    return _message(settings, to, subject, body, wall_us, ALARM_RECIPIENT)


def _repeats_text(repeats, local_time):
    """The paragraphs of an alarm's mail on its repeats: how many were not mailed since
    the last mail, the last when, and when the next mail may come; "" when there is
    nothing to say."""
    if repeats is None:
        return ""
    text = ""
    if repeats.count:
        times = "once more" if repeats.count == 1 else "%d more times" % repeats.count
        since = " since the last mail about it"
        if repeats.since_us is not None:
            since += " (%s)" % local_time.when(repeats.since_us)
        last = ", last at %s" % local_time.when(repeats.last_us) if repeats.last_us is not None else ""
        text += "It happened %s%s%s.\n\n" % (times, since, last)
    if repeats.next_us is not None:
        text += (
            "If it keeps happening, the next mail about it comes no sooner than %s, saying how many "
            "times it happened meanwhile%s: a fault that comes and goes is mailed at once, then at "
            "most once more a few hours later, then once a day (a new fault, or another alarm, is "
            "mailed at once). The Alarms page lists every occurrence.\n\n"
            % (
                local_time.when(repeats.next_us),
                # (AlarmMailer.follow_ups)
                "; once it has cleared, one mail says so, and when, and nothing more comes while "
                "it stays clear"
                if repeats.follow_up
                else "",
            )
        )
    elif repeats.count:
        text += (
            "(Mails about one alarm are limited per rate window, so that a box that restarts "
            "again and again does not flood the inbox.)\n\n"
        )
    return text


def _dashboard_link(settings):
    """ ", at https://.../" when the E-mail page gives the address people use to reach the
    box (``box_url``); "" when it does not (the recorder writing the mail cannot know it)."""
    if not getattr(settings, "box_url", ""):
        return ""
    return ", at %s/" % settings.box_url.rstrip("/")


# Alarms whose message is a person's own words (a staff concern, typed on My line or the
# Alarms page, may name a caller or say something personal): their mail says who raised
# one and where, and sends the reader to the box, where the words need a login.
WORDS_KEPT_ON_THE_BOX = frozenset({"staff_concern"})
# "from NAME: ...": how the web UI begins a concern's message (account names as web.accounts
# allows them).
_CONCERN_FROM = re.compile(r"^from ([a-z][a-z0-9._-]{0,31}): ")


def _concern_text(row, where, settings):
    """What a concern's mail says happened, without its words: which account raised it,
    about what, and where the words are read."""
    found = _CONCERN_FROM.match(row["message"] or "")
    # A message this process could not open (sealed, the key not here yet) names nobody.
    who = "the account %s" % found.group(1) if found else "an account (the Alarms page names it)"
    link = ": %s/alarms" % settings.box_url.rstrip("/") if getattr(settings, "box_url", "") else "."
    return (
        "A concern was raised by %s about %s. Its words are not in this mail (they may name a "
        "caller or say something personal). Log in to the box to read it on its Alarms page%s"
        % (who, where, link)
    )


def _alarm_subject(row, box_name, line_names):
    """``(where, what, subject)`` of alarm occurrence ``row``'s mail: "line 2 (Sales)" or
    "the box", the alarm's title, and the subject, short (the title up to its first colon)."""
    from firmware import words

    where = "the box"
    if row["line"]:
        where = words.line_said(row["line"], (line_names or {}).get(row["line"]))
    what = words.say("alarm", row["kind"])
    return where, what, "[%s] Alarm on %s: %s" % (box_name, where, what.split(":")[0])


def alarm_message(settings, row, box_name, wall_us, repeats=None, local_time=None, line_names=None, to=None):
    """The mail for alarm occurrence ``row`` (an AlarmLog row), to ``to`` (every alarm
    recipient when None).

    ``repeats``: a :class:`Repeats` (its other occurrences not mailed, and when the
    next mail may come), or None; ``local_time``: a
    :class:`~firmware.localtime.LocalTime` in the box's zone (the pages' times);
    ``line_names``: ``{line: name}`` from the site settings.
    """
    from firmware import words
    from firmware.localtime import LocalTime

    local_time = local_time or LocalTime()
    where, what, subject = _alarm_subject(row, box_name, line_names)
    if row["kind"] in WORDS_KEPT_ON_THE_BOX:
        happened = _concern_text(row, where, settings)
    else:
        # Its dates and times as the pages write them, in the box's zone.
        happened = local_time.dates_in(words.alarm_text(row["kind"], row["message"])) or what
    body = "%s\n\nAlarm: %s\nWhat happened: %s\nWhere: %s\nRaised: %s\n\n" % (
        subject,
        what,
        happened,
        where,
        local_time.when(row["raised_us"]),
    )
    if row.get("call_id") is not None:
        # Its line and time, never the caller's number: the mail crosses the network.
        began = " that began %s" % local_time.when(row["call_us"]) if row.get("call_us") is not None else ""
        body += "Call: the call on %s%s (the Alarms page links to it).\n\n" % (where, began)
    body += _repeats_text(repeats, local_time)
    advice = words.alarm_advice(row["kind"], row["message"])
    if advice:
        body += "What to do: %s.\n\n" % advice
    body += (
        "Acknowledge it on the box's dashboard%s; the Alarms page lists every occurrence and says "
        "whether this one is still on (a mail that waited for the mail server may arrive after "
        "the fault has cleared).\n" % _dashboard_link(settings)
    )
    to = settings.alarm_to if to is None else to
    return _message(settings, to, subject, body, wall_us, ALARM_RECIPIENT)


def start_failure_message(settings, note, box_name, wall_us, local_time=None):
    """The mail the web UI sends, once, while the recorder cannot start (``note``: the
    failed starts, :func:`firmware.startfail.read`), at ``wall_us``, to every alarm
    recipient: since when no call is recorded, how many tries, why. Not an alarm of the
    history (none can be raised then): the start that works raises
    ``recorder_start_failed``, mailed as every alarm."""
    from firmware.localtime import LocalTime, duration_text

    local_time = local_time or LocalTime()
    subject = "[%s] The recorder cannot start: calls are not being recorded" % box_name
    tries = "once" if note["attempts"] == 1 else "%d times" % note["attempts"]
    why = note["error"].rstrip(".")
    if note.get("cause") == "config":
        # A refused setting is said back with its value (a number list's pattern, a name):
        # a caller's or a member of staff's number is not mailed off the box.
        why = (
            "its configuration is refused. The dashboard names the setting and why; this mail "
            "does not, as that may quote what was typed there, such as a phone number"
        )
    since = local_time.when(note["since_us"])
    if note.get("clock_synced") is False:
        since += " (about: the box's clock is not set yet, so this time may be hours out)"
    body = (
        "%s\n\n"
        "The box's recorder has not been able to start since %s, for %s: it has tried %s, and "
        "tries again every few seconds. No call is recorded until it starts.\n\n"
        "Why: %s.\n\n"
        "What to do: the box's dashboard says the same, and whether it is still so. Call the "
        "supplier; if the reason names the memory card, it may need replacing.\n\n"
        "This is the only mail about it while it lasts. When the recorder starts again it "
        'raises the alarm "The recorder could not start", mailed like every alarm, saying '
        "for how long and why: acknowledge it on the dashboard then.\n"
        % (
            subject,
            since,
            duration_text(max(0, wall_us - note["since_us"]) // 10**6),
            tries,
            why,
        )
    )
    return _message(settings, settings.alarm_to, subject, body, wall_us, ALARM_RECIPIENT)


def unreached_alarm_message(
    settings, row, box_name, wall_us, repeats=None, local_time=None, line_names=None, to=None
):
    """The mail for alarm occurrence ``row`` of a line that no alarm recipient is tied to
    an account that sees (:func:`firmware.mail.alarms.unreached_lines`), to ``to`` (every
    recipient): that the alarm was raised, where and when, and why they are told; not
    what only those who see the line may read, the alarm's own words (which may name a
    caller or carry a concern) or its call. Arguments as :func:`alarm_message`'s."""
    from firmware import words
    from firmware.localtime import LocalTime

    local_time = local_time or LocalTime()
    where, what, subject = _alarm_subject(row, box_name, line_names)
    line = row["line"]
    body = (
        "%s\n\nAlarm: %s\nWhere: %s\nRaised: %s\n\n"
        "You get this mail because no alarm recipient is tied to an account that sees line %d, "
        "so nobody who may read this alarm would be told of it: the box tells every alarm "
        "recipient instead, without its details (they may name a caller). Someone who sees "
        "line %d (an installer, an auditor or its supervisor) reads it on the Alarms page.\n\n"
        % (subject, what, where, local_time.when(row["raised_us"]), line, line)
    )
    body += _repeats_text(repeats, local_time)
    advice = words.alarm_advice(row["kind"])
    if advice:
        body += "What to do: %s.\n\n" % advice
    body += (
        "To stop this: an installer ties an alarm recipient to an account that sees line %d (an "
        "installer's or an auditor's sees every line), or adds an address tied to no account, on "
        "the E-mail page; or grants the line to a recipient's supervisor on the Users page.\n" % line
    )
    to = settings.alarm_to if to is None else to
    return _message(settings, to, subject, body, wall_us, ALARM_RECIPIENT)


def _listed(rows, form):
    """``rows`` of a report's table as lines of ``form`` (at most :data:`MAX_GAPS_LISTED`)."""
    text = "".join("\n" + form % tuple(row) for row in rows[:MAX_GAPS_LISTED])
    if len(rows) > MAX_GAPS_LISTED:
        text += "\n... and %d more, in the attached report" % (len(rows) - MAX_GAPS_LISTED)
    return text


def report_message(
    settings,
    to,
    report,
    data,
    fmt,
    box_name,
    wall_us,
    every,
    audit_head=None,
    data_dir="DATA_DIR",
    line_names=None,
):
    """A scheduled report, its key figures in the text and the file attached.

    ``line_names``: ``{line: name}`` of the site settings, to name a line as the Reports
    page does ("Line 2 (Office)").

    ``audit_head``: the audit trail's chain head ``(seq, hash)`` when the report was
    made; the mail carries it off the card, so a trail rewritten later on the card
    fails ``linekeeper verify --data-dir DATA_DIR --head SEQ:HASH``, the command the mail
    gives whole (``data_dir``: the box's data folder, which ``verify`` needs).
    """
    from firmware.localtime import days_words
    from firmware.reports.tables import outages_note, outages_table, percent, running_note, running_table
    from firmware.words import counted

    p, box = report["period"], report["box"]
    # Its days as the pages write dates: "[Shop] Weekly report, Mon 2 Mar - Sun 8 Mar 2026".
    subject = "[%s] %s report, %s" % (box_name, every.capitalize(), days_words(p["from"], p["to"]))
    rate = box["answered_rate_pct"]
    note = running_note(report)  # before the figures: no calls must not read as a quiet day
    if note:
        rows = (running_table(report, human=True) or (None, None, []))[2]
        note += _listed(rows, "Not recording: %s to %s, %s (%s)")
    out_note = outages_note(report, line_names)  # a line dead all day is not a quiet line either
    if out_note:
        rows = outages_table(report, human=True, line_names=line_names)[2]
        out_note += _listed(rows, "%s not in service: %s to %s, %s (%s)")
        note = "%s\n\n%s" % (note, out_note) if note else out_note
    body = (
        "%s\n\n%sCalls: %d (in %d, out %d)\nMissed: %d\nAnswered rate: %s\n"
        "Missed callers not called back: %s\nAlarms raised: %d\n\nThe full report is attached.\n"
        % (
            subject,
            note + "\n\n" if note else "",
            box["calls"],
            box["in"],
            box["out"],
            box["missed"],
            "no inbound calls" if rate is None else "%s %%" % percent(rate),  # as in the attachment
            counted(len(report["callbacks"]), "number"),
            len(report["alarms"]),
        )
    )
    if audit_head is not None:
        body += (
            "\nAudit trail head: %d:%s\nKeep this e-mail: `linekeeper verify --data-dir %s --head %d:%s` "
            "shows whether the audit trail up to here was changed later.\n"
            % (audit_head + (data_dir,) + audit_head)
        )
    msg = _message(settings, to, subject, body, wall_us, _report_recipient(every))
    maintype, subtype = ("application", "pdf") if fmt == "pdf" else ("text", "csv")
    # The file's name keeps ISO dates, as the download's does: file names sort by them.
    name = "linekeeper-report-%s-%s.%s" % (p["from"], p["to"], fmt)
    if maintype == "text":
        msg.add_attachment(data.decode("utf-8"), subtype=subtype, filename=name)
    else:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def missed_reports_message(settings, to, every, first, last, count, box_name, wall_us):
    """The mail that stands for ``count`` scheduled ``every`` reports not sent, of the days
    ``first`` to ``last`` (dates): the box was off or could not send for longer than it
    catches up (:data:`firmware.mail.schedule.MAX_CATCH_UP` periods)."""
    from firmware.localtime import days_words
    from firmware.words import counted

    # Its days as the pages and the report mails write dates: "Tue 10 Mar - Wed 18 Mar 2026".
    days = days_words(first, last)
    subject = "[%s] %s reports of %s not sent (%d)" % (box_name, every.capitalize(), days, count)
    body = (
        "%s\n\nThe box did not send its %s of %s: it was off, or could not "
        "make or send them, for longer than it catches up, and it sent only the latest ones.\n\n"
        "What to do: make any of them on the box's Reports page (%s), and check on "
        "the Alarms page why the box was off.\n"
        % (subject, counted(count, "%s report" % every), days, _form_days(first, last))
    )
    return _message(settings, to, subject, body, wall_us, _report_recipient(every))


def _form_days(first, last):
    """``from Tue 10 Mar 2026 to Wed 18 Mar 2026``: the days to enter in the Reports page's
    From and To (dates, or ``YYYY-MM-DD``), as the pages write dates."""
    from firmware.localtime import day_words

    return "from %s to %s" % (day_words(first), day_words(last))


def withdrawn_report_message(report, period, wall_us):
    """The notice that stands for the queued scheduled report mail ``report`` (an
    EmailMessage), withdrawn before it went out because a caller's details were erased
    after it was made, whatever the erasure's reason
    (:func:`firmware.mail.schedule.withdraw_reports`): from and to whom the report was,
    naming its days (``period``: ``(first, last)`` ISO dates, or
    None for a mail queued before reports said them) and nobody else."""
    subject = "%s withdrawn" % str(report["Subject"] or "Report")
    days = _form_days(*period) if period else "of the days in this subject"
    body = (
        "%s\n\nThis scheduled report waited for the mail server and was withdrawn before it "
        "went out: after it was made, the details of a caller in its days were erased from the "
        "call log (the box's audit trail says who asked and why), and the report could name "
        "them. Nothing of it is sent.\n\nWhat to do: make the report again on the box's Reports page (%s); "
        "it is made from the call log as it is now, without the erased details.\n" % (subject, days)
    )
    return _instead_of(report, subject, body, wall_us)


def expired_report_message(report, period, details_days, wall_us):
    """The notice that stands for the queued scheduled report mail ``report``, withdrawn
    before it went out because the retention sweep removed callers' details in its days
    past their period (``details_days``: :func:`firmware.mail.schedule.withdraw_expired_reports`),
    as :func:`withdrawn_report_message` after an erasure."""
    from firmware import words

    subject = "%s withdrawn" % str(report["Subject"] or "Report")
    days = _form_days(*period) if period else "of the days in this subject"
    body = (
        "%s\n\nThis scheduled report waited for the mail server and was withdrawn before it "
        "went out: after it was made, the callers' details of calls in its days reached the end "
        "of their retention period (%s, set on the box's Retention page) and were removed from "
        "the call log, and the report could name them. Nothing of it is sent.\n\nWhat to do: make "
        "the report again on the box's Reports page (%s); it is made from the call log as it is "
        "now, without the removed details.\n" % (subject, words.counted(details_days, "day"), days)
    )
    return _instead_of(report, subject, body, wall_us)


def _instead_of(report, subject, body, wall_us):
    """A notice mailed to the queued report ``report``'s own recipients in its place."""
    msg = EmailMessage()
    for header in ("From", "To", "Cc"):
        if report[header]:
            msg[header] = str(report[header])
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(wall_us / 1e6, usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain="linekeeper.invalid")
    _automatic(msg)
    msg.set_content(body + _why("given for one of the box's scheduled reports"))
    return msg


def stale_report_message(report, period, wall_us, days):
    """The notice that stands for the queued scheduled report mail ``report``, not sent
    because it waited more than ``days`` days for the mail server
    (:func:`firmware.mail.schedule.withdraw_stale_reports`); ``period`` as
    :func:`withdrawn_report_message`'s."""
    subject = "%s not sent (%d days late)" % (str(report["Subject"] or "Report"), days)
    span = _form_days(*period) if period else "of the days in this subject"
    body = (
        "%s\n\nThis scheduled report waited more than %d days for the mail server and was not "
        "sent: its figures are out of date by now, and a report that late is mistaken for a "
        "recent one.\n\nWhat to do: make it on the box's Reports page (%s) if it is still "
        "needed, and check on the E-mail page why the mail server could not be reached.\n"
        % (subject, days, span)
    )
    return _instead_of(report, subject, body, wall_us)


def test_message(settings, to, box_name, wall_us):
    subject = "[%s] Test e-mail" % box_name
    return _message(
        settings, to, subject, "This is a test e-mail from %s: the mail settings work.\n" % box_name, wall_us
    )
