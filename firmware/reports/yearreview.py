"""The year in review: what a business owner or data protection officer puts before a board or
an ICO inspector once a year to show the box was run lawfully (docs/reports.md).

Counts only, no personal data: no caller's number or name, no account's name. Its figures
come from the report of the same period (:func:`firmware.reports.compute.build_report`: the
calls, what was recorded and why not, the notices, the card-payment pauses, the deletions,
the playbacks and exports, the time not recording, the alarms), the register of data
subjects' requests (:func:`firmware.rights.read_clear`, its deadlines and
:func:`firmware.rights.is_late`), the audit trail (the releases, the staff notice's
versions, the key store's backups) and the settings; the web page adds what the compliance
checklist says is still to do. :func:`year_review` puts them together as a plain dict,
:func:`review_blocks` in words for the page and the PDF (:mod:`.docpdf`).
"""

import datetime as dt
import json

from .. import rights, words
from ..localtime import day_words
from ..policy.deletions import ERASURE_RULE
from .compute import lines_of_calls
from .period import MAX_DAYS, parse_period
from .tables import record_note

TITLE = "The year in review: call recording"
# The roles, in the order a review lists them (an account with several: all its roles).
ROLE_ORDER = ("supervisor", "auditor", "installer", "staff")
NO_ACCOUNT = "no account now (removed, or the box's own key)"
# What a figure read from the audit trail's sealed details is before the recorder has started.
SEALED = "sealed"
UNTOLD = "This cannot be told until the recorder has started and opened the box's key."


def default_period(today):
    """The last 12 whole months before ``today``'s month: ``(first, last)`` dates."""
    last = today.replace(day=1) - dt.timedelta(days=1)
    return rights.add_months(last.replace(day=1), -11), last


def review_period(first, last, tz, today):
    """The review's :class:`~firmware.reports.period.Period`: ``first`` to ``last`` (texts
    or dates; both empty or None: :func:`default_period`), in ``tz``.

    :raises ReportError: only one of the two given, a date that is not one, a backwards
        range, more than :data:`~firmware.reports.period.MAX_DAYS` days, an unknown zone
    """
    from ..errors import ReportError

    if not first and not last:
        first, last = default_period(today)
    elif not first or not last:
        raise ReportError(
            "give both dates of the period (from and to), or neither for the last 12 whole months"
        )
    return parse_period(first, last, tz)


def span_words(seconds):
    """A length of time in words for an owner: ``3 days 4 hours 5 minutes``, ``1 hour``,
    ``40 seconds`` (under a minute), ``none``."""
    seconds = int(round(seconds))
    if seconds <= 0:
        return "no time"
    if seconds < 60:
        return "%d second%s" % (seconds, "" if seconds == 1 else "s")
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return " ".join(
        "%d %s%s" % (n, unit, "" if n == 1 else "s")
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    )


def _date_of(wall_us, period):
    return period.local(wall_us).date().isoformat()


def requests_figures(entries, period, today):
    """The register's figures for ``period`` (a Period), from its ``entries``
    (:func:`firmware.rights.read_clear`): received (by kind), closed in it (on time, late),
    extended (of those received), and, on ``today``, still open and overdue."""
    first, last = period.first.isoformat(), period.last.isoformat()
    received = [e for e in entries if first <= e["received"] <= last]
    closed = [
        e
        for e in entries
        if e["status"] in rights.CLOSED and e["closed_on"] and first <= e["closed_on"] <= last
    ]
    live = [e for e in entries if e["status"] not in rights.CLOSED]
    return {
        "received": len(received),
        "received_by_kind": {k: sum(1 for e in received if e["kind"] == k) for k in rights.KINDS},
        "closed": len(closed),
        "closed_on_time": sum(1 for e in closed if not rights.is_late(e, today)),
        "closed_late": sum(1 for e in closed if rights.is_late(e, today)),
        "refused": sum(1 for e in closed if e["status"] == rights.REFUSED),
        "extended": sum(1 for e in received if e["extension_months"]),
        "open_now": len(live),
        "overdue_now": sum(
            1 for e in live if e["status"] in (rights.OPEN, rights.EXTENDED) and e["due"] < today
        ),
    }


def _role_of(actor, roles_of):
    roles = roles_of.get(actor)
    if not roles:
        return NO_ACCOUNT
    return ", ".join(r for r in ROLE_ORDER if r in roles) or ", ".join(sorted(roles))


def access_by_role(access, releases, roles_of):
    """Playbacks, exports and releases counted by role, and how many accounts of each did
    any: ``{role: {"accounts", "playback", "export", "release"}}``. ``access``: a report's
    (``{"playback": {actor: n}, "export": {actor: n}, ...}``; refused exports are not
    counted); ``releases``: the actor of each release (subject access) in the period;
    ``roles_of``: ``{account: roles}`` as the accounts are now."""
    out = {}
    seen = {}

    def add(actor, what, n):
        role = _role_of(actor, roles_of)
        row = out.setdefault(role, {"accounts": 0, "playback": 0, "export": 0, "release": 0})
        row[what] += n
        seen.setdefault(role, set()).add(actor)

    for what in ("playback", "export"):
        for actor, n in access.get(what, {}).items():
            add(actor, what, n)
    for actor in releases:
        add(actor, "release", 1)
    for role, row in out.items():
        row["accounts"] = len(seen[role])
    order = {r: i for i, r in enumerate(ROLE_ORDER)}
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == NO_ACCOUNT, order.get(kv[0], 99), kv[0])))


def notice_versions(entries, period):
    """The staff notice's versions in effect at some time in ``period``, oldest first, from
    the audit trail's ``staff_notice`` entries (any order): the one in effect as it began
    and each kept in it, with its entry's number, its date and whether it took effect then
    (kept as the settings were saved) or was first shown then."""
    kept = sorted((e for e in entries if e.wall_us < period.end_us), key=lambda e: e.seq)
    before = [e for e in kept if e.wall_us < period.start_us]
    during = [e for e in kept if e.wall_us >= period.start_us]
    return [
        {
            "seq": e.seq,
            "date": _date_of(e.wall_us, period),
            "how": "in effect from"
            if isinstance(e.details, dict) and e.details.get("saved")
            else "first shown on",
        }
        for e in before[-1:] + during
    ]


def year_review(report, *, requests, releases, roles_of, governance, todo, today, not_over=None, lines=None):
    """The year in review as a plain dict (counts and dates only).

    :param report: the box's report of the period, every line
        (:func:`~firmware.reports.compute.build_report`)
    :param requests: the register's entries (:func:`firmware.rights.read_clear`)
    :param releases: the actor of each subject access release in the period
    :param roles_of: ``{account: roles}``, the accounts as they are now
    :param governance: ``{"ico_number", "ico_renewal", "dpia_reviewed", "retention",
        "key_backup", "notice_versions"}`` (dates as YYYY-MM-DD, "" when none)
    :param todo: ``[(number, safeguard, status, why)]`` of the checklist's red and amber
        safeguards today, or None when it could not be read (the command line)
    :param today: the date it is made, the box's
    :param not_over: what must be said of a period not over yet, or None
    :param lines: the lines it covers (a supervisor's), or None: every line
    """
    from .period import Period

    p = report["period"]
    period = Period(dt.date.fromisoformat(p["from"]), dt.date.fromisoformat(p["to"]), p["tz"])
    box = report["box"]
    cov = box["coverage"]
    by_rule = report["deletions_by_rule"]
    alarms = {}
    for a in report["alarms"]:
        alarms[a["kind"]] = alarms.get(a["kind"], 0) + 1
    running = report["running"]
    # The time before the box was first started (set up) is not a time it was switched off,
    # restarting or unable to start: there was no box to record yet. First started in the
    # period, the figure is from that start (said so), not from the period's beginning.
    down = [d for d in running["down"] if d["cause"] != "not_started"] if running else []
    first_start = (
        _date_of(running["first_start_us"], period)
        if running
        and not running["before_first_start"]
        and len(down) < len(running["down"])
        and running["first_start_us"] is not None
        else None
    )
    outages = report["line_outages"]
    return {
        "period": {"from": p["from"], "to": p["to"], "tz": p["tz"], "days": p["days"]},
        "made_on": today.isoformat(),
        "not_over": not_over,
        "lines": None if lines is None else sorted(lines),
        "calls": {
            "calls": box["calls"],
            "connected": cov["connected"],
            "recorded": cov["recorded"],
            "partial": cov["partial"],
            "private": cov["private"],
            "personal": cov["personal"],
            "excluded": cov["excluded"],
            "excluded_by_reason": dict(cov["excluded_by_reason"]),
            "not_asked": cov["not_asked"],
            "before_setup": cov["before_setup"],
            "unheard": cov["unheard"] + cov["paused_unheard"],
            "failed": cov["failed"],
        },
        "consent": dict(box["consent"]),
        "pci": {"paused_calls": cov["paused_calls"], "pauses": cov["pauses"], "paused_s": cov["paused_s"]},
        "deletions": {
            "total": box["deletions"],
            "by_rule": sum(n for rule, n in by_rule.items() if rule != ERASURE_RULE),
            "by_erasure_request": by_rule.get(ERASURE_RULE, 0),
        },
        "requests": requests_figures(requests, period, today),
        "access": SEALED
        if report["access"] is None or releases is None
        else access_by_role(report["access"], releases, roles_of),
        # The box archives: playbacks and copies in the central viewer are in its own trail.
        "archived": report.get("archive") is not None,
        "not_recording": {
            # From the box's first start, when that was in the period: not the time before.
            "times": len(down),
            "down_s": round(sum(d["in_period_us"] for d in down) / 1e6),
            "approximate": any(d.get("approximate") for d in down),
            "before_first_start": bool(running and running["before_first_start"]),
            "first_start_in_period": first_start is not None,
            # The day it was first started (YYYY-MM-DD, the period's zone), when in the period.
            "first_start": first_start,
            # What the running record cannot say of the period (no record, or one from a
            # day in it), or None: without it, no time not recording is not "all the time".
            "record": record_note(report),
        },
        "line_outages": {
            "times": len(outages["out"]) if outages else 0,
            # Each line's time out of service, two faults at once counted once.
            "out_s": round(sum(outages["out_us_by_line"].values()) / 1e6) if outages else 0,
        },
        "alarms": dict(sorted(alarms.items())),
        "governance": governance,
        "todo": None if todo is None else [list(t) for t in todo],
    }


def gather(
    source,
    period,
    *,
    audit,
    roles_of,
    site,
    retention,
    todo,
    today,
    region=rights.DEFAULT_REGION,
    progress=None,
    lines=None,
    supervised=None,
):
    """The year in review of ``source``'s box (a :class:`~firmware.reports.source.ReportSource`)
    for ``period``: its report of every line, its register, its audit trail ``audit`` (an
    :class:`~firmware.storage.audit.AuditLog`, or None when the box has none yet).

    :param site: ``{"ico_number", "ico_renewal", "dpia_reviewed"}`` as the site settings say
    :param retention: how long recordings are kept now, in words
        (:func:`firmware.policy.retention.retention_words`), or None
    :param region: whose bank holidays the requests' deadlines count
    :param progress: ``progress(done, total)`` as the period's days of calls are read
    :param lines: a supervisor's lines: the calls, playbacks, exports and releases of calls on
        them (a release by the lines its entry keeps, ``lines``; one from before entries kept
        them, by its calls still in the call log: one of calls lost with it is not counted),
        the requests about them, no line or lines no supervisor holds (``supervised``,
        :func:`firmware.rights.concerns_lines`),
        the alarms as the Reports page's of them; None: every line. The box-wide items (the
        time not recording, the records kept, still to do) stay
    :param supervised: with ``lines``, the lines some enabled supervisor holds
        (:func:`firmware.rights.supervised_lines`); None: every line has its supervisor
    :raises ReportError: the report cannot be made (:func:`~firmware.reports.compute.build_report`)

    The report is made without its callback list (not needed here), reading the calls one
    at a time: a busy box's year (400 000 calls) is more than a report holds
    (:data:`~firmware.reports.compute.MAX_CALLS`), and every figure here is the same.
    """
    from ..keybackup import last_backup
    from ..storage.fieldseal import FieldSealError

    report = source.report(
        period,
        lines,
        callbacks=False,
        progress=progress,
        access_of_lines=lines is not None,
        sealed_ok=True,  # before the recorder has started: those parts said untold
    )
    releases, versions, backup = [], [], None
    try:
        backup = last_backup(audit) if audit is not None else None
    except FieldSealError:
        backup = SEALED
    try:
        released = (
            []
            if audit is None
            else [
                e
                for e in audit.in_period(["disclosure"], period.start_us, period.end_us)
                if not (isinstance(e.details, dict) and e.details.get("failed"))  # nothing went
            ]
        )
        if released:  # a release whose bundle never went, audited failed after it: none made
            from ..sar import failed_releases

            never = failed_releases(audit, [e.target for e in released])
            released = [e for e in released if e.target not in never]
        if lines is not None:
            # By the lines its entry keeps; an older entry's, by its calls still in the call log.
            on = lines_of_calls(
                source.calls_db, {c for e in released if _kept_lines(e) is None for c in _released(e)}
            )
            released = [
                e
                for e in released
                if (
                    set(_kept_lines(e)) & set(lines)
                    if _kept_lines(e) is not None
                    else any(on.get(c) in lines for c in _released(e))
                )
            ]
        releases = [e.actor for e in released]
    except FieldSealError:
        releases = None
    try:
        versions = (
            notice_versions(audit.entries(limit=-1, action="staff_notice", until_us=period.end_us), period)
            if audit is not None
            else []
        )
    except FieldSealError:
        versions = SEALED
    governance = {
        "ico_number": site.get("ico_number") or "",
        "ico_renewal": site.get("ico_renewal") or "",
        "dpia_reviewed": site.get("dpia_reviewed") or "",
        "retention": retention,
        "key_backup": backup if backup == SEALED else _date_of(backup[0], period) if backup else "",
        "notice_versions": versions,
    }
    requests = rights.read_clear(source.data_dir, region)
    if lines is not None:
        requests = [e for e in requests if rights.concerns_lines(e, lines, supervised)]
    return year_review(
        report,
        requests=requests,
        releases=releases,
        roles_of=roles_of,
        governance=governance,
        todo=todo,
        today=today,
        not_over=period.not_over(source.wall_us()),
        lines=lines,
    )


def _released(entry):
    """The call ids a release (a ``disclosure`` entry) gave."""
    calls = entry.details.get("calls") if isinstance(entry.details, dict) else None
    return [int(c) for c in calls or () if isinstance(c, int) or str(c).isdigit()]


def _kept_lines(entry):
    """The lines of the calls a release (a ``disclosure`` entry) gave, as its entry keeps
    them (``lines``), or None: an entry from before releases kept them."""
    kept = entry.details.get("lines") if isinstance(entry.details, dict) else None
    if not isinstance(kept, list):
        return None
    return [n for n in kept if isinstance(n, int) and not isinstance(n, bool)]


def to_json(review):
    return (json.dumps(review, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _day(text):
    """A YYYY-MM-DD date in words (``Mon 2 Mar 2026``), "not recorded" for none."""
    return day_words(text) if text else "not recorded"


def _since_first_start(nr):
    """How the figure of the time not recording begins (``nr``: the review's
    ``not_recording``): from the box's first start (its setup) when that was in the period,
    the time before it counted nowhere (there was no box to record), or ""."""
    if not nr.get("first_start"):
        return ""
    return (
        "The box was first started (set up) on %s, during the period; the time before is not "
        "counted here, as it kept no record before then. From its first start, " % _day(nr["first_start"])
    )


VIEWER_WORDS = (
    "These are the box's own. The box archives its calls: playbacks and copies in the central "
    "archive viewer are in the viewer's own audit trail, not counted here."
)


def review_blocks(r):
    """The review in plain words as document blocks (:func:`.docpdf.document_pdf`): the
    page and the PDF say the same."""
    p, c, con, req, g = r["period"], r["calls"], r["consent"], r["requests"], r["governance"]
    blocks = [
        (
            "p",
            "This covers %s (%s, %s), made on %s. It counts calls and requests; it "
            "names no caller and no member of staff."
            % (
                # One day is said once ("Mon 2 Mar 2026 to Mon 2 Mar 2026" before).
                _day(p["from"]) if p["from"] == p["to"] else "%s to %s" % (_day(p["from"]), _day(p["to"])),
                words.counted(p["days"], "day"),
                p["tz"],
                _day(r["made_on"]),
            ),
        )
    ]
    if r.get("lines") is not None:
        blocks.append(
            (
                "p",
                "It covers line%s %s alone (the lines granted to you): their calls, the playbacks, "
                "copies and releases of their calls, the requests about them, about no line or about "
                "lines no supervisor holds, and their alarms. The time not recording, the records "
                "kept and what is still to do are the whole box's."
                % ("" if len(r["lines"]) == 1 else "s", ", ".join(str(n) for n in r["lines"])),
            )
        )
    else:
        blocks.append(("p", "It covers every line of the box."))
    if r["not_over"]:
        blocks.append(("p", r["not_over"]))
    blocks += [
        ("h", "Calls and what was recorded"),
        (
            "table",
            ("", "Calls"),
            [
                ("Calls in the period", c["calls"]),
                ("Calls answered or connected", c["connected"]),
                ("Recorded", c["recorded"]),
                ("Recorded in part (cut short by a fault)", c["partial"]),
                ("Not recorded: a private line", c["private"]),
                ("Not recorded: marked personal by staff", c["personal"]),
                ("Not recorded: left out by a rule", c["excluded"]),
                *(("– %s" % why, n) for why, n in sorted(c["excluded_by_reason"].items())),
                ("Not recorded: nobody asked for it (on-demand lines)", c["not_asked"]),
                ("Not recorded: the box's setup was not finished", c["before_setup"]),
                ("Not recorded: nobody was heard on the line", c["unheard"]),
                ("Recording failed", c["failed"]),
            ],
        ),
        ("h", "Telling callers"),
        (
            "table",
            ("", "Calls"),
            [
                ("The recording notice was given", con["given"]),
                ("The notice could not be played", con["failed"]),
                ("Not played: nobody was heard on the line", con["unheard"]),
                ("The notice was switched off", con["off"]),
            ],
        ),
        ("h", "Card payments"),
        (
            "p",
            "Recording was paused for card details %s, on %s, for %s in all: the card details "
            "were not recorded while it was."
            % (
                words.counted(r["pci"]["pauses"], "time"),
                words.counted(r["pci"]["paused_calls"], "call"),
                span_words(r["pci"]["paused_s"]),
            )
            if r["pci"]["pauses"]
            else "Recording was never paused for card details.",
        ),
        ("h", "Recordings deleted"),
        (
            "p",
            "%s deleted: %d by the retention rules (or to make room on a full card) and %d because "
            "someone asked for their data to be erased."
            % (
                words.counted(r["deletions"]["total"], "recording was", "recordings were"),
                r["deletions"]["by_rule"],
                r["deletions"]["by_erasure_request"],
            )
            if r["deletions"]["total"]
            else "No recording was deleted.",
        ),
        ("h", "People's requests about their data"),
        (
            "table",
            ("", "Requests"),
            [("Received", req["received"])]
            + [("– %s" % rights.KINDS[k], n) for k, n in req["received_by_kind"].items()]
            + [
                ("Deadline extended (of those received)", req["extended"]),
                ("Answered or refused in the period", req["closed"]),
                ("– on time", req["closed_on_time"]),
                ("– late", req["closed_late"]),
                ("– of which refused", req["refused"]),
                ("Still open on %s" % _day(r["made_on"]), req["open_now"]),
                ("– past their deadline", req["overdue_now"]),
            ],
        ),
        ("h", "Who listened to, copied or released recordings"),
    ]
    if r["access"] == SEALED:
        blocks.append(("p", UNTOLD))
    elif r["access"]:
        blocks.append(
            (
                "table",
                ("Role", "Accounts", "Playbacks", "Copies (exports)", "Releases to a person"),
                [
                    (role, a["accounts"], a["playback"], a["export"], a["release"])
                    for role, a in r["access"].items()
                ],
            )
        )
    else:
        blocks.append(("p", "Nobody played, copied or released a recording."))
    if r.get("archived"):
        blocks.append(("p", VIEWER_WORDS))
    nr, lo = r["not_recording"], r["line_outages"]
    blocks += [
        ("h", "When the box was not recording"),
        (
            "p",
            nr["record"]
            if nr["before_first_start"]
            else "%s%s was not recording %s, for %s%s in all (switched off, restarting, or "
            "unable to start): calls then were neither recorded nor counted.%s"
            % (
                _since_first_start(nr),
                "the box" if nr.get("first_start") else "The box",
                words.counted(nr["times"], "time"),
                "at least " if nr["approximate"] else "",
                span_words(nr["down_s"]),
                " " + nr["record"] if nr["record"] else "",
            )
            if nr["times"]
            else nr["record"]
            or "%s%s was recording all the time."
            % (_since_first_start(nr), "the box" if nr.get("first_start") else "The box"),
        ),
        (
            "p",
            "Lines out of service (a line fault): %s, %s in all."
            % (words.counted(lo["times"], "time"), span_words(lo["out_s"]))
            if lo["times"]
            else "No line was out of service.",
        ),
        ("h", "Alarms"),
    ]
    if r["alarms"]:
        blocks.append(
            (
                "table",
                ("Alarm", "Times raised"),
                [(words.ALARMS.get(k, k), n) for k, n in r["alarms"].items()],
            )
        )
    else:
        blocks.append(("p", "No alarm was raised."))
    versions = g["notice_versions"]
    blocks += [
        ("h", "Records kept"),
        (
            "table",
            ("", "As recorded"),
            [
                ("ICO registration", g["ico_number"] or "not recorded"),
                ("ICO registration renewal", _day(g["ico_renewal"])),
                ("Data protection impact assessment last reviewed", _day(g["dpia_reviewed"])),
                (
                    "Last backup of the key store",
                    "cannot be told until the recorder has started"
                    if g["key_backup"] == SEALED
                    else _day(g["key_backup"])
                    if g["key_backup"]
                    else "none made",
                ),
                (
                    "How long recordings are kept (now)",
                    (g["retention"][:1].upper() + g["retention"][1:])
                    if g["retention"]
                    else "kept until deleted by hand",
                ),
            ],
        ),
        ("h", "The notice to staff"),
    ]
    if versions == SEALED:
        blocks.append(("p", UNTOLD))
    elif versions:
        blocks.append(
            (
                "table",
                ("Version (audit trail entry)", "Since"),
                [(v["seq"], "%s %s" % (v["how"], _day(v["date"]))) for v in versions],
            )
        )
    else:
        blocks.append(("p", "No version of the staff notice was kept in the period."))
    blocks.append(("h", "Still to do"))
    if r["todo"] is None:
        blocks.append(
            (
                "p",
                "The compliance checklist is read from the running box: see its Year in review "
                "page, or Documents, Checklist.",
            )
        )
    elif r["todo"]:
        blocks.append(
            (
                "table",
                ("#", "Safeguard", "Status", "Why"),
                [(n, s, ("status", st), why) for n, s, st, why in r["todo"]],
            )
        )
    else:
        blocks.append(("p", "Nothing: every safeguard of the checklist is met."))
    return blocks


def to_pdf(review):
    """The review as PDF bytes (:func:`.docpdf.document_pdf`)."""
    from .docpdf import document_pdf

    return document_pdf(TITLE, review_blocks(review))


__all__ = [
    "MAX_DAYS",
    "TITLE",
    "access_by_role",
    "default_period",
    "gather",
    "notice_versions",
    "requests_figures",
    "review_blocks",
    "review_period",
    "to_json",
    "to_pdf",
    "year_review",
]
