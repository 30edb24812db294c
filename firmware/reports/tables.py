"""A report as tables of text: the one place figures become text.

The web page, the CSV and the PDF all print these cells, so the screen, the
CSV and the PDF hold the same figures character for character. Times are the
one difference: the page, the PDF and the mail write them as every other page
does (``Tue 3 Mar 2026, 10:00:00 GMT``, :meth:`firmware.localtime.LocalTime.when`);
the CSV keeps ``2026-03-03 10:00:00``, which a spreadsheet sorts and reads as a time,
everywhere in it: in its sentences about the period (:func:`running_note`) too.
"""

import datetime as dt
import zoneinfo

from .. import words
from ..localtime import LocalTime

# (label, path into a totals dict); a label ending "(h:mm:ss)" is a length of
# time, printed by :func:`hms`; one ending "%" a rate, printed by :func:`percent`
SUMMARY = (
    ("Calls", ("calls",)),
    ("Inbound", ("in",)),
    ("Outbound", ("out",)),
    ("Missed", ("missed",)),
    ("Answered inbound", ("answered_in",)),
    ("Answered rate %", ("answered_rate_pct",)),
    ("Outbound connected", ("connected_out",)),
    ("Talk time (h:mm:ss)", ("talk_s",)),
    ("Mean talk (h:mm:ss)", ("mean_talk_s",)),
    ("Longest talk (h:mm:ss)", ("longest_talk_s",)),
    ("Connected calls", ("coverage", "connected")),
    ("Recorded", ("coverage", "recorded")),
    ("Recorded, partial", ("coverage", "partial")),
    ("Private line", ("coverage", "private")),
    ("Excluded by rule", ("coverage", "excluded")),
    ("Marked personal by staff (personal-call code)", ("coverage", "personal")),
    ("On demand, not asked", ("coverage", "not_asked")),
    ("Before setup, not recorded", ("coverage", "before_setup")),
    # Neither excluded by a rule nor failed: the far end was never heard (the call page's words).
    ("Not recorded: " + words.NOT_HEARD["unheard"], ("coverage", "unheard")),
    ("Not recorded: " + words.NOT_HEARD["paused"], ("coverage", "paused_unheard")),
    ("Recording failed", ("coverage", "failed")),
    ("Calls with a PCI pause", ("coverage", "paused_calls")),
    ("PCI pauses", ("coverage", "pauses")),
    ("Paused (h:mm:ss)", ("coverage", "paused_s")),
    ("Consent notice given", ("consent", "given")),
    ("Consent notice failed", ("consent", "failed")),
    ("Consent notice not played: the far end was not heard", ("consent", "unheard")),
    ("Consent notice off", ("consent", "off")),
    ("Recordings deleted", ("deletions",)),
)


# Said where a box that archives counts playbacks and exports: the central archive viewer's
# are written to the viewer's own audit trail, which this box never sees.
VIEWER_NOT_COUNTED = " (on this box; the archive viewer's are in its own audit trail, not counted here)"


def cell(value):
    """A figure as text: integers as such, decimals without trailing zeros, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = "%.3f" % value
        return text.rstrip("0").rstrip(".")
    return str(value)


def percent(value):
    """A rate in percent to 0.1 (``50.0``, ``66.7``), None empty: one rule wherever a rate is
    shown (the page, CSV, PDF, mail and the archive viewer), so ``50`` never sits beside
    ``45.5`` as if it were counted to the whole percent."""
    return "" if value is None else "%.1f" % value


def hms(seconds):
    """A length of time as ``h:mm:ss`` to the second (``1:12:52``), None empty.

    People read it, and a spreadsheet takes it for a time; the JSON keeps the
    exact seconds."""
    if seconds is None:
        return ""
    hours, rest = divmod(int(round(max(0.0, float(seconds)))), 3600)
    return "%d:%02d:%02d" % (hours, rest // 60, rest % 60)


def _figure(label, value):
    if label.endswith("(h:mm:ss)"):
        return hms(value)
    return percent(value) if label.endswith("%") else cell(value)


def when(wall_us, tz):
    """``wall_us`` as local ``YYYY-MM-DD HH:MM:SS`` in ``tz`` (a ZoneInfo), with the zone's
    abbreviation (``BST``, ``GMT``) in an hour the clocks show twice (the UK's October
    night), where the time alone could be either."""
    t = dt.datetime.fromtimestamp(wall_us / 1e6, tz)
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    if t.replace(fold=0).utcoffset() != t.replace(fold=1).utcoffset():
        text += " " + t.strftime("%Z")
    return text


def time_text(report, human):
    """``(wall_us) -> text`` for the times of ``report``, in its period's zone: as the pages
    write them when ``human`` (the page, the PDF, the mail), else as :func:`when` (the CSV)."""
    if human:
        return LocalTime(report["period"]["tz"]).when
    tz = zoneinfo.ZoneInfo(report["period"]["tz"])
    return lambda wall_us: when(wall_us, tz)


# Why the box was not recording (a report's ``running["down"][i]["cause"]``).
CAUSES = {
    "clean_stop": "stopped (a clean stop)",
    "power_fail": "power cut (the box was warned and sealed its recordings)",
    "update": "restarted for an update (or its rollback)",
    "crash": "%s (no clean stop; from its last sign of life)" % words.UNCLEAN_END,
    "no_sign_of_life": "not running: no sign of life since, not started again yet",
    "not_started": "before the box was first started",
    "start_failed": "did not start",  # with its reason: "did not start: the card is full"
    "unknown": "not known",
}


# How the run before the first start on record ended (its ``after``), for a run not on record.
RUN_ENDS = {"clean_stop": "clean stop", "power_fail": "power cut", "crash": words.UNCLEAN_END}


def running_note(report, human=True):
    """One sentence on when the box was not recording in the period, or None when it
    recorded throughout: the page, the PDF, the CSV and the mail all say it first;
    ``human``: its times as the pages write them, else as the CSV (:func:`time_text`)."""
    running = report.get("running")
    if running is None:
        return None
    if running["before_first_start"]:
        return record_note(report, human)
    notes = []
    approximate = any(d.get("approximate") for d in running["down"])
    if running["down_us"] or approximate:
        notes.append(
            "The box was not recording for %s of this period (%s, listed under "
            '"When the box was not recording"): calls then were not logged or recorded, '
            "and are not counted."
            % (_length(running["down_us"], approximate), words.counted(len(running["down"]), "time"))
        )
    if approximate:
        notes.append(
            "Some of those times are approximate: %s (the box keeps no time while it is off, "
            "and starts from the time it last saved until the network sets its clock)." % APPROXIMATE
        )
    said = record_note(report, human)
    if said:
        notes.append(said)
    return " ".join(notes) or None


def record_note(report, human=True):
    """One sentence on what the box's running record cannot say of the period (it was first
    started after it, it keeps no record, or a record only from a day in it), or None when
    the record covers the whole period. Only then does a period with no time not recording
    mean the box recorded all through it (the year in review says it from this too).
    ``human`` as :func:`running_note`'s."""
    running = report.get("running")
    if running is None:
        return None
    if running["before_first_start"]:
        return (
            "The box was first started after this period, on %s: nothing could be recorded "
            "in it (no calls here does not mean there were none)."
            % time_text(report, human)(running["first_start_us"])
        )
    if not running.get("audit_trail", True):
        return (
            "When the box was running is not known: it has no audit trail (audit.db), which "
            "keeps the record of when it ran."
        )
    elif not running["known"]:
        return "This box kept no record of when it was running in this period."
    elif running["records_from_us"] is not None and report["period"]["start_us"] < running["records_from_us"]:
        since = time_text(report, human)(running["records_from_us"])
        if running["first_start_us"] is None:
            return "The box has no start on record; it failed to start from %s." % since
        elif running["records_from_us"] < running["first_start_us"]:
            return "The box has no start on record before it failed to start from %s." % since
        elif running.get("first_start_after") in (None, "update"):
            return (
                "When the box was running is on record from %s only (the release before kept no record)."
                % since
            )
        else:
            # The run before the first start on record ended before its own start was (a
            # crash in its first minute): how it ended is known, when it ran is not.
            return (
                "When the box was running is on record from %s only: the run before it ended in a "
                "%s before its start was on record."
                % (since, RUN_ENDS.get(running["first_start_after"], "stop"))
            )
    return None


def running_table(report, human=False):
    """The times the box was not recording, as a table (None without a running record);
    ``human``: times as the pages write them (:func:`time_text`)."""
    running = report.get("running")
    if running is None:
        return None
    said = time_text(report, human)
    return (
        "When the box was not recording",
        ["From", "To", "Not recording in the period (h:mm:ss)", "Why"],
        [
            [
                "(the beginning)" if d["from_us"] is None else said(d["from_us"]),
                "not running again yet" if d["to_us"] is None else said(d["to_us"]),
                _length(d["in_period_us"], d.get("approximate")),
                _why(d),
            ]
            for d in running["down"]
        ],
    )


# A time the box was not recording whose start or end a clock not yet set dated (``approximate``).
APPROXIMATE = "times approximate: the clock was not set"


def _length(us, approximate):
    """A time not recording as ``h:mm:ss``; ``at least`` when a clock not yet set dated it
    (a Pi restarts at the time it last saved: the time measured is short, not long)."""
    return ("at least " if approximate else "") + hms(us / 1e6)


def _why(down):
    """Why the box was not recording in the time ``down`` (one of ``running["down"]``)."""
    why = CAUSES.get(down["cause"], down["cause"])
    why = "%s: %s" % (why, down["reason"]) if down.get("reason") else why
    return "%s; %s" % (why, APPROXIMATE) if down.get("approximate") else why


# Why a line was not in service (a report's ``line_outages["out"][i]["cause"]``): the
# fault in the words the line's state and its alarm say it (words.FAULTS).
LINE_CAUSES = {kind: text[0].lower() + text[1:] for kind, text in words.FAULTS.items()}


def outages_note(report, line_names=None):
    """One sentence on the lines not in service in the period, or None (none, or no alarm
    history): said with :func:`running_note`, before the figures. ``line_names``: ``{line:
    name}`` of the site settings, to name a line as the pages do, "line 2 (Office)"."""
    outages = report.get("line_outages")
    if not outages:
        return None
    unplugged = outages.get("not_connected") or []
    said = (
        "%s %s marked not connected (nothing is plugged into %s socket): not listed under "
        '"Lines not in service", and never recorded.'
        % (
            _lines_words(unplugged),
            "is" if len(unplugged) == 1 else "are",
            "its" if len(unplugged) == 1 else "their",
        )
        if unplugged
        else ""
    )
    if not outages["out_us_by_line"]:
        return said or None
    each = "; ".join(
        "%s for %s" % (words.line_said(int(n), (line_names or {}).get(int(n))), hms(us / 1e6))
        for n, us in outages["out_us_by_line"].items()
    )
    return (
        "A line was not in service for part of this period (%s; listed under "
        '"Lines not in service"): calls on it then could not be made, received or recorded, '
        "or were not seen." % each
    ) + (" " + said if said else "")


def _lines_words(numbers):
    """ "Line 3", "Lines 3 and 4", "Lines 2, 3 and 4"."""
    said = [str(n) for n in numbers]
    if len(said) == 1:
        return "Line " + said[0]
    return "Lines %s and %s" % (", ".join(said[:-1]), said[-1])


def outages_table(report, human=False, line_names=None):
    """The line faults on in the period, as a table (None without an alarm history);
    ``human``: times as the pages write them (:func:`time_text`) and lines as they name
    them ("Line 2 (Office)", ``line_names``: :func:`tables`)."""
    outages = report.get("line_outages")
    if outages is None:
        return None
    said = time_text(report, human)
    return (
        "Lines not in service",
        ["Line", "From", "To", "Not in service in the period (h:mm:ss)", "Cause"],
        [
            [
                _line_cell(o["line"], human, line_names),
                said(o["from_us"]),
                "not cleared yet" if o["to_us"] is None else said(o["to_us"]),
                hms(o["in_period_us"] / 1e6),
                LINE_CAUSES.get(o["cause"], o["cause"]),
            ]
            for o in outages["out"]
        ],
    )


def _get(totals, path):
    for key in path:
        totals = totals[key]
    return totals


def line_heading(n, line_names=None):
    """Line ``n``'s column heading, as the pages and the mail name it: "Line 2 (Office)"
    where ``line_names`` (``{line: name}`` of the site settings) names it, else "Line 2"."""
    return words.line_said(int(n), (line_names or {}).get(int(n)), start=True)


def _line_cell(n, human, line_names):
    """Line ``n`` in a table's cell: named on the page and in the PDF ("Line 2 (Office)"),
    its number in the CSV (a spreadsheet sorts and filters by it)."""
    return line_heading(n, line_names) if human else cell(n)


def _lines_cell(lines, human, line_names):
    """Lines in a table's cell (a callback's): named on the page and in the PDF, "Line 1,
    line 2 (Office)"; their numbers in the CSV, "1 2"."""
    if not human:
        return " ".join(map(str, lines))
    names = line_names or {}
    return ", ".join(words.line_said(int(n), names.get(int(n)), start=not k) for k, n in enumerate(lines))


def tables(report, human=False, line_names=None):
    """The report as ``[(title, header, rows)]``, every cell text; ``human``: times as the
    pages write them (the page, the PDF), else as the CSV keeps them (:func:`time_text`).
    ``line_names``: ``{line: name}`` of the site settings, to name each line's column (and,
    ``human``, the line of an outage or an alarm) as the mail does, "line 2 (Office)"."""
    said = time_text(report, human)
    lines = [str(n) for n in report["lines"]]
    cols = [report["box"]] + [report["per_line"][n] for n in lines]
    header = ["Figure", "Box"] + [line_heading(n, line_names) for n in lines]
    summary = [[label] + [_figure(label, _get(t, path)) for t in cols] for label, path in SUMMARY]
    out = [("Summary", header, summary)]
    running = running_table(report, human)
    if running is not None:
        out.append(running)
    outages = outages_table(report, human, line_names)
    if outages is not None:
        out.append(outages)
    reasons = sorted(report["box"]["coverage"]["excluded_by_reason"])
    out.append(
        (
            "Excluded by rule",
            ["Reason", "Box"] + header[2:],
            [[r] + [cell(t["coverage"]["excluded_by_reason"].get(r, 0)) for t in cols] for r in reasons],
        )
    )
    out.append(
        (
            "Calls by hour of day (%s)" % report["period"]["tz"],
            ["Hour", "Box"] + header[2:],
            [["%02d:00" % h] + [cell(t["hours"][h]) for t in cols] for h in range(24)],
        )
    )
    out.append(
        (
            "Callback list: missed, not called back",
            ["Number", "Lines", "Missed", "First missed", "Last missed"],
            [
                [
                    c["number"],
                    _lines_cell(c["lines"], human, line_names),
                    cell(c["missed"]),
                    said(c["first_missed_us"]),
                    said(c["last_missed_us"]),
                ]
                for c in report["callbacks"]
            ],
        )
    )
    out.append(
        (
            "Recordings deleted, by rule (retention's, the full card's, an erasure on request)",
            ["Rule", "Deleted"],
            [[rule, cell(n)] for rule, n in report["deletions_by_rule"].items()],
        )
    )
    access = report["access"]
    users = sorted(set().union(*(access[k] for k in access)))
    archives = report.get("archive") is not None
    out.append(
        (
            "Playbacks and exports by user" + (VIEWER_NOT_COUNTED if archives else ""),
            ["User", "Playbacks", "Exports", "Refused exports"],
            [
                [
                    u,
                    cell(access["playback"].get(u, 0)),
                    cell(access["export"].get(u, 0)),
                    cell(access["export_refused"].get(u, 0)),
                ]
                for u in users
            ],
        )
    )
    if report.get("archive") is not None:
        out.append(archive_table(report["archive"]))
    out.append(
        (
            "Alarms",
            ["Raised", "Alarm", "Line", "Cleared", "Acknowledged by"],
            [
                [
                    said(a["raised_us"]),
                    words.say("alarm", a["kind"]),
                    _line_cell(a["line"], human, line_names) if a["line"] else "box",
                    said(a["cleared_us"]) if a.get("cleared_us") else "",
                    a.get("acknowledged_by") or "",
                ]
                for a in report["alarms"]
            ],
        )
    )
    return out


def archive_table(archive):
    """The archive section (:func:`firmware.reports.compute.build_report`'s ``archive``) as a
    table: the ended calls of the period archived, waiting and failed, and why they failed."""
    rows = [
        ["Archived", cell(archive["archived"])],
        ["Waiting", cell(archive["waiting"])],
        ["Failed", cell(archive["failed"])],
    ]
    rows += [["Failed: %s" % why, cell(n)] for why, n in archive["failed_by_reason"].items()]
    return ("Archive: ended calls of the period", ["Status", "Calls"], rows)
