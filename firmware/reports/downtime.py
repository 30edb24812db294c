"""When the box was not recording in a report's period, from its ``box_start`` /
``box_stop`` / ``power_fail`` / ``clock_set`` audit entries (:mod:`firmware.uptime` writes them), and
why it did not start when it was refusing to (its ``recorder_start_failed`` entries,
:mod:`firmware.startfail`).

One query on the audit trail's ``(action, seq)`` index reads a handful of rows a
day (one per start and stop), whatever the size of the call log.
"""

import json
import os
import sqlite3

from ..localtime import iso_to_us
from ..storage.audit import SEALED_KEY
from ..uptime import ALIVE_EVERY_US

# A sign of life older than this, with no stop after it: the recorder is not running.
STALE_US = 3 * ALIVE_EVERY_US


def _events(audit_db):
    """The running record's entries, oldest first, or None when there is no audit trail."""
    if not os.path.exists(audit_db):
        return None
    db = sqlite3.connect("file:%s?mode=ro" % audit_db, uri=True)
    try:
        db.execute("PRAGMA query_only=1")
        return db.execute(
            "SELECT wall_us, action, details FROM audit WHERE action IN"
            " ('box_start', 'box_stop', 'power_fail', 'recorder_start_failed', 'clock_set')"
            " ORDER BY seq"
        ).fetchall()
    finally:
        db.close()


def _failed_starts(details, cipher):
    """``(since_us, reason, clock_set)`` of a ``recorder_start_failed`` entry's details
    (sealed: opened with ``cipher``), or None when they are sealed and there is no cipher
    (the time is then told with the cause before it). ``clock_set``: whether the clock
    that dated them was set (an entry that did not say: as the start's)."""
    if set(details) == {SEALED_KEY}:
        if cipher is None:
            return None
        details = json.loads(cipher.open(details[SEALED_KEY], "audit"))
    since = iso_to_us(details["since"].removesuffix(" UTC"))
    return since, details.get("reason"), details.get("clock_synced")


def _split(gap, failed):
    """``gap`` ``[from_us or None, to_us or None, cause, reason, from_set, to_set]``, its
    part from the first failed start on (``failed``: ``(since_us, reason, clock_set)``, or
    None) said as such. ``from_set`` / ``to_set``: whether the clock that dated each end
    was set (the failed starts: as they say, else as the clock of the start that worked)."""
    a, b, cause, _, a_set, b_set = gap
    if failed is None or (b is not None and failed[0] >= b):
        return [gap]
    since = failed[0] if a is None else max(failed[0], a)
    since_set = b_set if failed[2] is None else failed[2] is not False
    before = [[a, since, cause, None, a_set, since_set]] if a is None or since > a else []
    return before + [[since, b, "start_failed", failed[1], since_set, b_set]]


def _started(gaps, first, details, wall_us, failed, last_set=True):
    """Add the time before a run to ``gaps``, from its ``box_start`` ``details`` (audited at
    ``wall_us``; ``failed``: the starts that failed before it, or None; ``last_set``: whether
    the clock of the run before was set by its end, which dated ``down_from``); returns the
    first start on record, this one's if ``first`` is None."""
    if details.get("last_run"):
        # The run before, which the card kept no entry of: carried by its clean-stop mark
        # into this start (firmware/uptime.py); the time before it first, then its stop's.
        first = _started(gaps, first, details["last_run"], wall_us, failed, last_set)
        failed, last_set = None, _clock_set(details["last_run"])
    # The run's start: written a minute into the run (firmware/uptime.py).
    started = iso_to_us(details.get("started")) or wall_us
    start_set = _clock_set(details)
    if first is None:
        first = (started, details.get("after"))
        if first[1] == "first_start":
            gaps += _split([None, started, "not_started", None, True, start_set], failed)
    down_from = details.get("down_from")
    if down_from:
        gap = [min(iso_to_us(down_from), started), started, details.get("after") or "unknown", None]
        gaps += _split(gap + [last_set, start_set], failed)
    elif failed is not None and details.get("after") != "first_start" and failed[0] < started:
        # Not recording since nothing on record (a crash in the first minute of the start that
        # audited the failures, on a box with no start before): from the first failed start.
        since_set = start_set if failed[2] is None else failed[2] is not False
        gaps.append([failed[0], started, "start_failed", failed[1], since_set, start_set])
    return first


def _clock_set(details):
    """Whether the clock that dated a ``box_start``'s ``started`` was set (synchronised);
    a start recorded by a release that did not say is taken as it was read before."""
    return details.get("clock_synced", True) is not False


def _gaps(events, now_us, alive_us, cipher=None, failing=None):
    """Every time the box was not recording: ``[from_us or None, to_us or None, cause,
    reason, from_set, to_set]`` (the last two: whether the clock that dated each end was
    set), and the first start on record ``(wall_us, after)`` or None. ``failing``: the
    recorder's starts failing now, ``(since_us, reason, clock_set)``, or None."""
    gaps, first, last, failed = [], None, None, None
    run_set = True  # the last run's clock was set, by its start or since (clock_set)
    # The last entry the running run wrote (its box_start, a minute into it with its first
    # sign of life; a clock_set, at a later one): it was running then, by the clock as it was.
    seen = None
    for wall_us, action, details in events:
        if action == "recorder_start_failed":
            # Audited by the start that worked, before its box_start: its gap's end.
            failed = _failed_starts(json.loads(details), cipher)
            continue
        details = json.loads(details)
        if action == "clock_set":
            # The run's start dated again once its clock was set: the gap before it ends
            # there, and the run's later times were dated right.
            was, started = iso_to_us(details["was"]), iso_to_us(details["started"])
            if details.get("stepped"):
                # A clock that was set, set again (by hand, or by the time daemon): the run
                # is dated by the new clock from then on, as its last sign of life is; the
                # time before it keeps its dates (which clock was right is not known).
                if last is not None and last == (was, "running"):
                    last, seen = (started, "running"), wall_us
                continue
            for gap in gaps:
                if gap[1] == was and not gap[5]:
                    gap[1], gap[5] = started, True
                    if gap[2] == "start_failed" and not gap[4] and gap[0] is not None:
                        # The failed starts, dated at this start by the same clock not set:
                        # dated again by as much, and the time before them ends there.
                        since = gap[0]
                        gap[0], gap[4] = since + started - was, True
                        for before in gaps:
                            if before[1] == since and not before[5]:
                                before[1], before[5] = gap[0], True
            if first is not None and first[0] == was:
                first = (started, first[1])
            if last is not None and last == (was, "running"):
                last, seen = (started, "running"), wall_us
            run_set = True
            continue
        if action != "box_start":
            if details.get("start"):
                # A run's box_start the card refused, carried by its stop or cut.
                first = _started(gaps, first, details["start"], wall_us, failed, run_set)
                failed, run_set = None, _clock_set(details["start"])
            last = (wall_us, "clean_stop" if action == "box_stop" else "power_fail")
            continue
        first = _started(gaps, first, details, wall_us, failed, run_set)
        run_set = _clock_set(details)
        last, failed, seen = (iso_to_us(details.get("started")) or wall_us, "running"), None, wall_us
    if last is not None and last[1] != "running":
        gaps += _split([last[0], None, last[1], None, run_set, True], failing)  # still down
    elif last is not None and alive_us is not None and (failing is not None or now_us - alive_us > STALE_US):
        # Gone since its last sign of life; a recorder whose starts fail now is not running
        # whatever the age of that sign (its run's box_start, with no stop, says "running").
        gaps += _split([max(alive_us, last[0]), None, "no_sign_of_life", None, run_set, True], failing)
    elif last is not None and failing is not None:
        # No sign of life to date it from: from the first failed start, why.
        gaps += _split([failing[0], None, "start_failed", failing[1], run_set, True], failing)
    elif last is not None and alive_us is None and seen is not None and now_us - seen > STALE_US:
        # No sign of life at all (the card refused it, or a cut left the file empty) and no
        # note of failed starts: the run's last entry on record stands for its last sign; one
        # older than a sign's is no longer running, however it ended (its box_start, with no
        # stop after it, said "running" for ever).
        gaps.append([max(seen, last[0]), None, "no_sign_of_life", None, run_set, True])
    elif last is None and (failing or failed) is not None:
        # No start on record (keys missing since the first boot): from the first failed
        # start, why; the start that audited the failures (``failed``) is in its first minute.
        since, reason, since_set = failing or failed
        gaps.append([since, None, "start_failed", reason, since_set is not False, True])
    return gaps, first


def downtime(audit_db, period, now_us, alive_us=None, cipher=None, failing=None):
    """The box's running record for ``period``, a dict (see docs/reports.md):

    - ``down``: each time it was not recording that overlaps the period, oldest first:
      ``from_us`` / ``to_us`` (None: not running again when the report was made),
      ``cause`` (``clean_stop``, ``power_fail``, ``update``, ``crash``,
      ``no_sign_of_life``, ``not_started``, ``start_failed``: from the recorder's first
      failed start to the start that worked, with ``reason``, the last failure's),
      ``in_period_us`` (its part in the period), ``approximate`` (its start or end was
      dated by a clock not set: at least that long);
    - ``down_us``: their parts in the period, summed;
    - ``first_start_us``: the first start on record, or None, and ``first_start_after``
      how the run before it ended (its ``after``); ``before_first_start``:
      the whole period is before it (nothing could be recorded);
      ``records_from_us``: running periods are known from then (None: from the box's
      first start), a start after an update from a release that kept no such record, or
      with no start on record (or none before failed starts, ``first_start_us`` then
      after it) the first failed start;
    - ``known``: there is a start, or a failed start, on record;
    - ``audit_trail``: there is an audit trail to read it from (no ``audit.db``: a box
      never set up, or the file removed; nothing is on record but the failed starts
      ``failing`` notes).

    :param now_us: when the report is made (a gap still open ends there, or at the
        period's end)
    :param alive_us: the running recorder's last sign of life, or None (none to read: the
        last run's own last entry on record, its ``box_start`` or a ``clock_set``, stands
        for it, and a run with none newer than :data:`STALE_US` is not running)
    :param cipher: the box's field cipher, which opens the failed starts' reasons
    :param failing: the note of the recorder's starts failing now
        (:func:`firmware.startfail.read`), or None
    """
    events = _events(audit_db)
    trail = events is not None
    if failing is not None:
        failing = (failing["since_us"], failing["error"], failing.get("clock_synced"))
    gaps, first = _gaps(events or [], now_us, alive_us, cipher, failing)
    start_us, end_us = period.start_us, min(period.end_us, max(now_us, period.start_us))
    records_from = None
    if first is not None and first[1] != "first_start":
        records_from = first[0]
        if gaps and gaps[0][2] == "start_failed" and gaps[0][0] < records_from:
            records_from = gaps[0][0]  # its first failed start: nothing on record before it
    elif first is None and gaps:
        records_from = gaps[0][0]  # its first failed start: nothing on record before it
    down = []
    for a, b, cause, reason, a_set, b_set in gaps:
        lo = start_us if a is None else max(a, start_us)
        hi = end_us if b is None else min(b, end_us)
        approximate = not (a_set and b_set)
        # A gap dated by a clock not set may measure nothing (a Pi restarted at the time it
        # last saved): it is still a time the box was not recording, for at least that long.
        if hi > lo or (approximate and lo == hi and start_us <= lo < end_us):
            gap = {
                "from_us": a,
                "to_us": b,
                "cause": cause,
                "in_period_us": hi - lo,
                "approximate": approximate,
            }
            if cause == "start_failed":
                gap["reason"] = reason
            down.append(gap)
    before = first is not None and first[1] == "first_start" and period.end_us <= first[0]
    return {
        "down": down,
        "down_us": sum(d["in_period_us"] for d in down),
        "first_start_us": first[0] if first is not None else None,
        "first_start_after": first[1] if first is not None else None,
        "before_first_start": before,
        "records_from_us": records_from,
        "known": first is not None or bool(gaps),
        "audit_trail": trail,
    }
