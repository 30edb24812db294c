"""The figures of a report, computed exactly from the call log and the audit trail.

Definitions (also in docs/reports.md):

- a call belongs to the period its *start* falls in;
- ``missed``: an inbound call never answered that has ended; ``answered_in``:
  an inbound call answered; ``answered_rate_pct`` = answered_in / (answered_in +
  missed), to 0.1 %;
- talk time: answer to end, for calls with both, summed in µs and shown in
  seconds to the ms;
- busiest hours: calls started in each hour of the day, in the period's zone;
- callback list: an inbound missed call with a number, when no later call in
  the period (on any line, either direction) was to or from the same number
  compared in international form (``01632 960123`` = ``+441632960123``), a number
  dialled without a prefix before it (141, a PBX line's outside-line digit);
  one entry per number, with how many times it was missed and its last missed call's id
  (``last_missed_call``: what a report's audit entry names, so that a breach's scope can
  tell its callers apart from the call log);
- coverage, of connected calls: recorded (a recording exists or retention
  deleted it), private (the line never records), personal (its staff member keyed the
  personal-call code), excluded (any other rule, by reason), not asked (on demand, no
  one asked), before setup (the rules said
  record on a box with no recording key yet: nothing could be recorded), not heard
  (nobody was heard on the line after dialling) and paused before heard (the line was
  paused before the far end was heard), so no notice was played and nothing recorded, failed
  (the policy said record and there is no recording); paused: calls with a PCI pause, and
  the pauses (spans) and the paused seconds (a span a crash left open: to the
  call's end);
- consent notices, of connected calls with a notice record: given, failed
  (an error was recorded), not played as the far end was never heard (nobody there, or
  a paused line: nothing failed), off; a call whose only notice was the warning tone
  (notice "off") counts by its beeps: given if one sounded, failed if the first
  could not be played (``warning_tone_error``: nobody was told), off if none was due;
- retention deletions: the deletion log's entries dated in the period;
- playbacks and exports: the audit trail's entries in the period, by user;
- running (from the audit trail's ``box_start`` / ``box_stop`` / ``power_fail`` /
  ``recorder_start_failed`` / ``clock_set`` entries, :mod:`.downtime`): when the box was
  not recording in the period, from when to when and why (a start refused: its reason;
  dated by a clock not set: approximate, at least that long), and whether
  the period is before its first start (no audit trail: said, nothing known);
- lines not in service (from the alarm history's line faults, :mod:`.outages`): each
  occurrence on during the period, raised before it or in it, cut to the period;
- archive (only on a box whose archive has run): of the ended calls started in
  the period on the report's lines, ``archived`` (call record and recordings in
  the bucket, checksums verified), ``waiting`` (queued, or ended and about to
  be queued) and ``failed`` (the uploader gave up on it; ``failed_by_reason``).
"""

import collections
import datetime as dt
import json
import os
import sqlite3

from ..errors import ReportError
from ..localtime import days_words
from ..policy.rules import BEFORE_SETUP, PERSONAL_REASON, called_number, normalise, outcome
from ..storage.audit import SEALED_KEY
from ..storage.fieldseal import FieldSealError, register_sql

MAX_CALLS = 200_000  # a larger report is refused (memory and time on a Pi)
_COVERAGE = (
    "recorded",
    "partial",
    "private",
    "excluded",
    "personal",
    "not_asked",
    "before_setup",
    "unheard",
    "paused_unheard",
    "failed",
)


def _connect(path, cipher=None):
    """A read-only connection; ``cipher`` opens sealed numbers (``lk_open`` in SQL)."""
    if not os.path.exists(path):
        raise ReportError("no call log at %s" % path)
    db = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(path), uri=True)
    db.execute("PRAGMA query_only=1")
    register_sql(db, cipher)
    return db


def _tables(db):
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _iso_us(text):
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp() * 1000) * 1000


def _empty_totals():
    return {
        "calls": 0,
        "in": 0,
        "out": 0,
        "missed": 0,
        "answered_in": 0,
        "connected_out": 0,
        "answered_rate_pct": None,
        "talk_us": 0,
        "talk_calls": 0,
        "longest_talk_us": 0,
        "hours": [0] * 24,
        "coverage": {
            "connected": 0,
            **{k: 0 for k in _COVERAGE},
            "excluded_by_reason": {},
            "paused_calls": 0,
            "pauses": 0,
            "paused_ms": 0,
        },
        "consent": {"given": 0, "failed": 0, "unheard": 0, "off": 0},
        "deletions": 0,
    }


def _fetch_calls(db, period, have, numbers=True):
    """The period's calls (a cursor), oldest first; ``numbers`` False: none opened (NULL)."""
    rec = (
        "(SELECT group_concat(state) FROM recordings WHERE call_id = c.id)"
        if "recordings" in have
        else "NULL"
    )
    deleted = (
        "EXISTS (SELECT 1 FROM deletion_log d WHERE d.call_id = c.id)" if "deletion_log" in have else "0"
    )
    cols = {r[1] for r in db.execute("PRAGMA table_info(calls)")}
    opt = ", ".join(
        ("c.%s" % name) if name in cols else "NULL"
        for name in ("policy_decision", "policy_reason", "consent", "pause_spans")
    )
    sql = (
        "SELECT c.id, c.line, c.direction, c.started_at, c.answered_at, c.ended_at,"
        " %s,"
        " %s, %s, %s FROM calls c WHERE c.started_at >= ? AND c.started_at < ?"
        " ORDER BY c.started_at, c.id"
        % ("lk_open(c.number, 'number')" if numbers else "NULL", opt, rec, deleted)
    )
    return db.execute(sql, (period.start_us, period.end_us))


def _coverage(cov, row):
    decision, reason, states, deleted = row[7], row[8], row[11], row[12]
    cov["connected"] += 1
    states = set((states or "").split(",")) - {""}
    unheard = not_heard(json.loads(row[9]) if row[9] else {})
    if states or deleted:
        cov["recorded"] += 1
        if "partial" in states:
            cov["partial"] += 1
    elif outcome(decision, reason) == BEFORE_SETUP:
        # No recording key yet, or no consent notice (a box `linekeeper init` made): none was
        # made. Before the skips: a call no notice was set for is skipped, by no rule.
        cov["before_setup"] += 1
    elif decision == "skip" and unheard is not None:
        # No rule said skip and nothing failed: the far end was never heard, so no notice
        # was played and the call was not recorded (the call page says so in these words).
        cov["paused_unheard" if unheard == "paused" else "unheard"] += 1
    elif decision == "skip" and reason and reason.endswith(" is private"):
        cov["private"] += 1
    elif decision == "skip" and reason == PERSONAL_REASON:
        # Its staff member keyed the personal-call code: counted per line, so a business
        # sees how often a line uses it (never what was said: nothing of it was kept).
        cov["personal"] += 1
    elif decision == "skip":
        cov["excluded"] += 1
        key = reason or "(no reason recorded)"
        cov["excluded_by_reason"][key] = cov["excluded_by_reason"].get(key, 0) + 1
    elif decision == "pending":
        cov["not_asked"] += 1
    else:
        cov["failed"] += 1
    spans = json.loads(row[10]) if row[10] else []
    if spans:
        cov["paused_calls"] += 1
        cov["pauses"] += len(spans)
        cov["paused_ms"] += sum(_paused_ms(s, row[5]) for s in spans)


def _paused_ms(span, ended_us):
    """A pause span's length in ms. One left open by a crash or a power cut lasted to the
    call's end (the recording stopped there, silent); one still on is not counted yet."""
    if not span.get("from"):
        return 0
    to_us = _iso_us(span["to"]) if span.get("to") else ended_us
    return 0 if to_us is None else max(0, to_us - _iso_us(span["from"])) // 1000


def not_heard(consent):
    """Why the far end of the call whose ``consent`` record (a dict) this is was never heard,
    so that no notice was played (nothing failed: no alarm was raised): ``"unheard"`` (nobody
    on the line after dialling), ``"paused"`` (the line was paused, card details, before
    the far end was heard: the box hears nothing of a paused line), or None. Their words:
    :data:`firmware.words.NOT_HEARD`, on the call's page and in the report."""
    if consent.get("given"):
        return None
    if consent.get("paused"):
        return "paused"
    if consent.get("unheard"):
        return "unheard"
    return None


def consent_outcome(consent):
    """How a call's ``consent`` record (a dict) counts: ``"given"``, ``"failed"`` (an error
    was recorded), ``"unheard"`` (not played: the far end was never heard, :func:`not_heard`)
    or ``"off"``. A call whose only notice is the warning tone (notice "off",
    tone on) counts by its beeps: given once one sounded, failed when its first could not
    be played (nobody was told), off only if none was due. The reports count by it and the
    calls CSV (web.views.calls) says it."""
    if consent.get("given"):
        return "given"
    if not_heard(consent) is not None:
        return "unheard"  # nobody to tell, or a paused line: not the notice's failure
    if consent.get("error"):
        return "failed"
    if consent.get("warning_tones"):
        return "given"  # no notice but the warning tone, which sounded: the call was told
    if consent.get("warning_tone_error"):
        return "failed"  # the first beep, its only notice, could not be played: nobody was told
    return "off"


def tone_was_notice(consent):
    """Whether the warning tone was the only notice of the call whose ``consent`` record
    this is: no other notice ("off"), and the tone beeped or its first beep failed."""
    return consent.get("notice") == "off" and bool(
        consent.get("warning_tones") or consent.get("warning_tone_error")
    )


def _consent(tot, text):
    if not text:
        return
    tot[consent_outcome(json.loads(text))] += 1


def _add(tot, row, period):
    _, line, direction, started, answered, ended = row[:6]
    tot["calls"] += 1
    tot[direction] += 1
    tot["hours"][period.local(started).hour] += 1
    if direction == "in":
        if answered is not None:
            tot["answered_in"] += 1
        elif ended is not None:
            tot["missed"] += 1
    elif answered is not None:
        tot["connected_out"] += 1
    if answered is not None and ended is not None:
        talk_us = ended - answered
        tot["talk_us"] += talk_us
        tot["talk_calls"] += 1
        tot["longest_talk_us"] = max(tot["longest_talk_us"], talk_us)
    if answered is not None:
        _coverage(tot["coverage"], row)
        if outcome(row[7], row[8]) != BEFORE_SETUP:
            # Before setup no notice had been chosen yet: not one the business turned off
            # ("Consent notice off"). Counted as before setup, not recorded, as on the call page.
            _consent(tot["consent"], row[9])


def _finish(tot):
    asked = tot["answered_in"] + tot["missed"]
    tot["answered_rate_pct"] = None if asked == 0 else round(1000 * tot["answered_in"] / asked) / 10
    tot["talk_s"] = round(tot["talk_us"] / 1e6, 3)
    tot["mean_talk_s"] = (
        None if tot["talk_calls"] == 0 else round(tot["talk_us"] / tot["talk_calls"] / 1e6, 1)
    )
    tot["longest_talk_s"] = round(tot["longest_talk_us"] / 1e6, 3)
    tot["coverage"]["paused_s"] = round(tot["coverage"]["paused_ms"] / 1000, 3)
    return tot


def _callbacks(rows, country, lines, outside=None):
    """The callback list (see the module docstring), oldest first.

    A number dialled is the number it calls (:func:`~firmware.policy.rules.called_number`):
    a call back made with 141 before the number, or on a PBX extension with its line's
    outside-line digit (``outside``, ``{line: digit}``), is a call to the number missed."""
    pending = {}  # international number -> entry
    outside = outside or {}
    for row in rows:
        call_id, line, direction, started, answered, ended, number = row[:7]
        if not number:
            continue
        if direction == "out":
            number = called_number(number, country, outside.get(line, ""))
        key = normalise(number, country)
        missed = direction == "in" and answered is None and ended is not None
        if not missed:
            if answered is not None or direction == "out":
                pending.pop(key, None)  # a later call to or from the number
            continue
        if line not in lines:
            continue
        entry = pending.setdefault(
            key, {"number": number, "international": key, "missed": 0, "lines": [], "_first_us": started}
        )
        entry["missed"] += 1
        entry["_last_us"] = started
        entry["last_missed_call"] = call_id
        entry["number"] = number  # as it was last shown
        if line not in entry["lines"]:
            entry["lines"].append(line)
    out = []
    for entry in sorted(pending.values(), key=lambda e: e["_first_us"]):
        entry["first_missed_us"] = entry.pop("_first_us")
        entry["last_missed_us"] = entry.pop("_last_us")
        entry["lines"].sort()
        out.append(entry)
    return out


def _deletions(db, period, have, lines, box, per_line):
    if "deletion_log" not in have:
        return {}
    by_rule = collections.Counter()
    # The archive's deletion of its copy (reason "archive") is of a recording the box
    # deleted already: counted once, as the box's.
    for line, rule in db.execute(
        "SELECT line, rule FROM deletion_log"
        " WHERE deleted_at >= ? AND deleted_at < ? AND reason != 'archive'",
        (period.start_us, period.end_us),
    ):
        if line in lines:
            per_line[line]["deletions"] += 1
            box["deletions"] += 1
            by_rule[rule] += 1
    return dict(sorted(by_rule.items()))


def _archive(db, period, have, lines):
    """The archive section: ended calls of the period on ``lines`` by archive status, or
    None when the archive has never run on this box (no ``archive_status`` table)."""
    if "archive_status" not in have:
        return None
    out = {"archived": 0, "waiting": 0, "failed": 0}
    reasons = collections.Counter()
    for line, status, reason in db.execute(
        "SELECT c.line, s.status, s.reason FROM calls c LEFT JOIN archive_status s ON s.call_id = c.id"
        " WHERE c.started_at >= ? AND c.started_at < ? AND c.ended_at IS NOT NULL",
        (period.start_us, period.end_us),
    ):
        if line not in lines:
            continue
        kind = "archived" if status == "archived" else "failed" if status == "failed" else "waiting"
        out[kind] += 1
        if kind == "failed":
            reasons[reason or "unknown"] += 1
    out["failed_by_reason"] = dict(sorted(reasons.items()))
    return out


# How long after an export its failure entry may be written. The failure is audited by the
# run that made the export, as its write fails (``linekeeper export``) or as its download
# stops short (the web UI): within the export's own run, seconds to minutes after it. A day
# is ample, and keeps a report's read of the trail bounded.
EXPORT_FAILURE_US = 86_400 * 1_000_000


def _access(audit_db, period, cipher=None, lines=None, calls_db=None):
    """Playbacks and exports (made and refused) by user, from the audit trail (its sealed
    details opened with ``cipher``); ``lines``: only those of calls on them (None: all),
    by the entry's ``line``, or for one without it (``linekeeper export`` names the call,
    ``call:N``, not its line) by its call's line in ``calls_db``."""
    out = {"playback": {}, "export": {}, "export_refused": {}}
    if audit_db is None or not os.path.exists(audit_db):
        return out
    db = _connect(audit_db)
    try:
        # The exports of EXPORT_FAILURE_US after the period too, counted in a later period's
        # report, not this one's: the failure of an export made inside it may be written
        # after its end (an export at 23:59 whose write fails at 00:00), and unseen, it was
        # counted as taken.
        rows = db.execute(
            "SELECT action, actor, target, details, wall_us FROM audit WHERE action IN ('playback', 'export')"
            " AND wall_us >= ? AND wall_us < ? AND (action = 'export' OR wall_us < ?) ORDER BY seq",
            (period.start_us, period.end_us + EXPORT_FAILURE_US, period.end_us),
        ).fetchall()
    finally:
        db.close()
    found, after = [], set()
    for action, actor, target, details, wall_us in rows:
        details = json.loads(details)
        if set(details) == {SEALED_KEY}:
            if cipher is None:
                raise ReportError("the audit trail is sealed with the key in the HAT's MCU vault")
            details = json.loads(cipher.open(details[SEALED_KEY], "audit"))
        if wall_us >= period.end_us:
            after.add(len(found))
        found.append((action, actor, target, details))
    line_of = _lines_of_calls(calls_db, found) if lines is not None else {}
    failed = _failed_exports(found)
    for at, (action, actor, target, details) in enumerate(found):
        if at in failed or at in after:
            continue
        line = details["line"] if "line" in details else line_of.get(_call_of(target))
        if lines is not None and line not in lines:
            continue
        if action == "export" and "refused" in details:
            action = "export_refused"
        out[action][actor] = out[action].get(actor, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _failed_exports(found):
    """The indexes in ``found`` (the trail's entries, oldest first) of exports that handed
    nothing over: each failure entry (``failed``, written after the export when ``linekeeper
    export`` or the page could not write it), and the export it is of unless it says
    ``left`` (:func:`firmware.breachscope.failed_copies`, by account)."""
    from ..breachscope import failed_copies

    failed, by_actor = set(), collections.defaultdict(list)
    for at, (action, actor, target, details) in enumerate(found):
        if action == "export":
            by_actor[actor].append((at, target, details))
            if "failed" in details and "refused" not in details:
                failed.add(at)
    for entries in by_actor.values():
        failed |= failed_copies(entries)
    return failed


def _call_of(target):
    """The call an entry's target names (``12`` or ``call:12``), or None."""
    call = str(target or "").removeprefix("call:")
    return int(call) if call.isascii() and call.isdigit() else None


def _lines_of_calls(calls_db, found):
    """``{call id: line}`` in ``calls_db`` of the entries in ``found`` that name no line."""
    wanted = {c for _, _, t, d in found if "line" not in d for c in [_call_of(t)] if c is not None}
    return lines_of_calls(calls_db, wanted) if calls_db is not None else {}


def lines_of_calls(calls_db, ids):
    """``{call id: line}`` of the calls ``ids`` still in the call log ``calls_db``."""
    if not ids:
        return {}
    wanted = sorted(ids)
    db = _connect(calls_db)
    try:
        out = {}
        for at in range(0, len(wanted), 500):
            batch = wanted[at : at + 500]
            out.update(
                db.execute(
                    "SELECT id, line FROM calls WHERE id IN (%s)" % ",".join("?" * len(batch)), batch
                ).fetchall()
            )
        return out
    finally:
        db.close()


def _running(audit_db, period, now_us, alive_us, cipher, failing):
    """The box's running record for the period (:func:`.downtime.downtime`), or None
    when no audit trail is named; one named but missing says so (``audit_trail``)."""
    if audit_db is None:
        return None
    from .downtime import downtime

    now_us = period.end_us if now_us is None else now_us
    return downtime(os.path.abspath(audit_db), period, now_us, alive_us, cipher, failing)


def _outages(alarms, period, lines, now_us, not_connected=()):
    """The lines not in service in the period (:func:`.outages.line_outages`), or None
    without an alarm history."""
    if alarms is None:
        return None
    from .outages import line_outages

    return line_outages(alarms, period, lines, period.end_us if now_us is None else now_us, not_connected)


def totals_of(rows, period):
    """The finished totals of call ``rows`` (in the shape the report reads from a call
    log: id, line, direction, started/answered/ended µs, number, policy decision and
    reason, consent JSON, pause spans JSON, recording states, deleted), as in a
    report's ``box`` figures; ``deletions`` stays 0 (it comes from a deletion log).

    The central viewer computes each site's figures through this, so they are the
    boxes' own figures by construction.
    """
    tot = _empty_totals()
    for row in rows:
        _add(tot, row, period)
    return _finish(tot)


#: The coverage figures read from a call's policy decision and reason and its pause spans;
#: the others (connected, recorded, partial) are read from its times and recordings.
_POLICY_COVERAGE = tuple(k for k in _COVERAGE if k not in ("recorded", "partial")) + (
    "excluded_by_reason",
    "paused_calls",
    "pauses",
    "paused_ms",
    "paused_s",
)


def policy_not_known(tot):
    """Finished totals ``tot`` (:func:`totals_of`) with the figures read from the calls'
    policy decision and reason, consent record and pause spans set to None, not known:
    every consent figure, and all of coverage but ``connected``, ``recorded`` and ``partial``.

    For totals of rows that carry none of those (NULL): counted, they read 0, and a call
    answered and not recorded ``failed``. The central viewer's index built without the
    organisation key has none: they are in each call record's sealed part.
    """
    for key in _POLICY_COVERAGE:
        tot["coverage"][key] = None
    tot["consent"] = dict.fromkeys(tot["consent"])
    return tot


def count_calls(calls_db, period):
    """How many calls started in ``period`` (the size check before a report)."""
    db = _connect(calls_db)
    try:
        return db.execute(
            "SELECT count(*) FROM calls WHERE started_at >= ? AND started_at < ?",
            (period.start_us, period.end_us),
        ).fetchone()[0]
    finally:
        db.close()


def build_report(
    calls_db,
    period,
    *,
    audit_db=None,
    lines=None,
    n_lines=4,
    country="uk",
    alarms=None,
    max_calls=None,
    cipher=None,
    now_us=None,
    alive_us=None,
    failing=None,
    outside=None,
    callbacks=True,
    progress=None,
    sealed_ok=False,
    access_of_lines=False,
    not_connected=(),
):
    """The report for ``period`` as a plain dict (see docs/reports.md for its shape).

    :param lines: the lines to report on (None: 1..``n_lines``); a call on
        another line still counts as a callback to a number
    :param country: how numbers are put in international form
    :param alarms: an :class:`~firmware.alarmlog.AlarmLog` or None: its
        alarms raised in the period are listed, and its line faults on in the period
    :param cipher: the box's field cipher, which opens sealed numbers and audit details
    :param now_us: when the report is made (µs; None: after the period): a time the box
        is still not recording counts up to then
    :param alive_us: the recorder's last sign of life (:func:`firmware.uptime.last_alive_us`)
    :param failing: the note of the recorder's starts failing now
        (:func:`firmware.startfail.read`), or None
    :param outside: ``{line: outside-line digit}`` of the lines that have one
        (``policy.rules.lines``): a number dialled on such a line is matched without it
    :param not_connected: the lines marked as having nothing plugged in now
        (``BoxConfig.not_connected``): left out of the lines not in service, and said
    :param callbacks: False: no callback list (``callbacks`` None), and the calls are read
        one at a time and not held, so ``max_calls`` does not apply (the year in review, a
        busy box's year: every other figure is the same)
    :param progress: ``progress(done, total)`` as the period's days are read, or None
    :param sealed_ok: the audit trail's sealed details not open (before the recorder has
        started): ``access`` None (cannot be told), the times not recording without the
        failed starts' reasons; False: :class:`~firmware.storage.fieldseal.FieldSealError`
    :param access_of_lines: ``access`` counts the playbacks and exports of calls on
        ``lines`` alone (a supervisor's year in review); False: every one
    :raises ReportError: no call log, or more than ``max_calls`` (None:
        :data:`MAX_CALLS`) calls in the period (choose a shorter range)
    """
    lines = tuple(sorted(set(lines))) if lines else tuple(range(1, n_lines + 1))
    max_calls = MAX_CALLS if max_calls is None else max_calls
    db = _connect(calls_db, cipher)
    try:
        n = db.execute(
            "SELECT count(*) FROM calls WHERE started_at >= ? AND started_at < ?",
            (period.start_us, period.end_us),
        ).fetchone()[0]
        if callbacks and n > max_calls:
            raise ReportError(
                "%s holds %d calls; a report holds at most %d: choose a shorter date range"
                % (days_words(period.first, period.last), n, max_calls)
            )
        have = _tables(db)
        # Without the callback list no number is needed: none is opened.
        rows = _fetch_calls(db, period, have, numbers=callbacks)
        if callbacks:
            rows = rows.fetchall()  # the callback list reads them again
        box = _empty_totals()
        per_line = {line: _empty_totals() for line in lines}
        day = 0
        for row in rows:
            if progress is not None and n:
                # The days read so far (of the period's), at each new day's first call.
                now = (period.local(row[3]).date() - period.first).days
                if now > day:
                    day = now
                    progress(day, period.days)
            if row[1] in per_line:
                _add(per_line[row[1]], row, period)
                _add(box, row, period)
        if progress is not None:
            progress(period.days, period.days)
        deletions_by_rule = _deletions(db, period, have, lines, box, per_line)
        archive = _archive(db, period, have, set(lines))
    finally:
        db.close()
    for tot in (box, *per_line.values()):
        _finish(tot)
    try:
        access = _access(audit_db, period, cipher, set(lines) if access_of_lines else None, calls_db)
    except FieldSealError:
        if not sealed_ok:
            raise
        access = None  # cannot be told until the box's key is open
    try:
        running = _running(audit_db, period, now_us, alive_us, cipher, failing)
    except FieldSealError:
        if not sealed_ok:
            raise
        running = _running(audit_db, period, now_us, alive_us, None, failing)  # no reasons
    return {
        "period": {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "tz": period.tz,
            "days": period.days,
            "start_us": period.start_us,
            "end_us": period.end_us,
        },
        "lines": list(lines),
        "box": box,
        "per_line": {str(line): tot for line, tot in per_line.items()},
        "callbacks": _callbacks(rows, country, set(lines), outside) if callbacks else None,
        "deletions_by_rule": deletions_by_rule,
        "access": access,
        "running": running,
        "archive": archive,
        "line_outages": _outages(alarms, period, lines, now_us, not_connected),
        "alarms": alarms.in_period(period.start_us, period.end_us, lines) if alarms is not None else [],
    }
