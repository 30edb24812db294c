"""The central viewer's index: every site's calls, rebuilt from the bucket alone.

:func:`rebuild_index` lists every ``BOX/calls/*.json`` object in the bucket
and writes one row per call to a SQLite index (replaced atomically, so a
rebuild that fails leaves the old index). With the organisation private key
(held in Argon2id key slots, like a box's: ``linekeeper archive init-org``)
each call record's sealed part is opened, so the caller's number and name
are searchable; without it only what the records hold in clear is indexed.
Losing the index loses nothing: the bucket is the archive.

A caller's details erased on a box (docs/archive.md, "A caller's details erased") reach
the bucket as the erased call record and a note, ``BOX/erasures/CALL_ID.json``;
:func:`apply_erasures` empties the number and name of each noted call in an index
built before (with ``secure_delete``), so no search by the number finds it any more
without a rebuild. The viewer applies the notes as its pages read the index
(:meth:`web.archive.app.Viewer.refresh_erasures`), and a rebuild those it lists.
"""

import base64
import datetime
import functools
import json
import logging
import os
import re
import sqlite3

from ..errors import LinekeeperError, ReportError
from ..localtime import LocalTime, check_zone
from ..manifest import decrypt_recording
from ..policy import cards
from ..recording.codec import mime_type
from ..reports.compute import MAX_CALLS, policy_not_known, totals_of
from . import sealing
from .replicator import call_key, erasure_key, readable
from .store import ArchiveError

log = logging.getLogger(__name__)

INDEX_SCHEMA = """
CREATE TABLE calls (
    box          TEXT NOT NULL,
    call_id      INTEGER NOT NULL,
    line         INTEGER,
    direction    TEXT,
    started_at   TEXT,
    ended_at     TEXT,
    answered     INTEGER,
    duration_s   REAL,
    number       TEXT,
    name         TEXT,
    recording_key TEXT,
    recording_sha256 TEXT,
    record_key   TEXT NOT NULL,
    started_us   INTEGER,
    answered_us  INTEGER,
    ended_us     INTEGER,
    number_rev   TEXT,
    tags         TEXT,
    policy_decision TEXT,
    policy_reason TEXT,
    consent      TEXT,
    pause_spans  TEXT,
    rec_states   TEXT,
    deleted      INTEGER NOT NULL DEFAULT 0,
    digits_withheld INTEGER NOT NULL DEFAULT 0,
    time_zone    TEXT,
    PRIMARY KEY (box, call_id)
);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
"""
# Made after the rows are in: one sort per index instead of millions of inserts into each.
INDEX_INDEXES = """
CREATE INDEX calls_number_rev ON calls (number_rev, started_us);
CREATE INDEX calls_started ON calls (started_us, box, call_id);
CREATE INDEX calls_box_started ON calls (box, started_us, call_id);
"""
#: What a search returns per call.
COLUMNS = (
    "box",
    "call_id",
    "line",
    "direction",
    "started_at",
    "ended_at",
    "answered",
    "duration_s",
    "number",
    "name",
    "recording_key",
    "recording_sha256",
    "record_key",
    "started_us",
    "tags",
    "digits_withheld",
    "time_zone",
)
_ROW = COLUMNS[:13] + (
    "started_us",
    "answered_us",
    "ended_us",
    "number_rev",
    "tags",
    "policy_decision",
    "policy_reason",
    "consent",
    "pause_spans",
    "rec_states",
    "deleted",
    "digits_withheld",
    "time_zone",
)
# A day as the viewer's date fields and ``archive search --from``/``--to`` take it:
# date.fromisoformat also takes 20260302 and week dates (2026-W10-1), which no one types
# meaning a day.
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: The row shape :func:`firmware.reports.compute.totals_of` reads.
_REPORT_COLUMNS = (
    "call_id, line, direction, started_us, answered_us, ended_us, number, policy_decision,"
    " policy_reason, consent, pause_spans, rec_states, deleted"
)


def read_record(body, org_private_key=None):
    """A call record object as a dict; its sealed part opened into ``call`` and ``audit``
    when ``org_private_key`` is given.

    :raises TamperError: the sealed part does not open with that key
    :raises ValueError: not a call record
    """
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise ValueError("not a Linekeeper call record")
    if org_private_key is not None:
        context = ("%s/%d" % (doc["box"], doc["call_id"])).encode()
        private = json.loads(sealing.unseal(base64.b64decode(doc["sealed"]), org_private_key, context))
        doc["call"], doc["audit"] = private["call"], private["audit"]
        doc.setdefault("number", private["call"]["number"])
        # A name corrected on the box (UK GDPR Art. 16) is the call's name.
        doc.setdefault("name", private["call"].get("corrected_name") or private["call"]["name"])
    return doc


def _us(doc, name):
    """A time of the record in µs: the exact one, or (older records) its ISO form's ms."""
    if doc.get(name + "_us") is not None:
        return int(doc[name + "_us"])
    text = doc.get(name + "_at") or (doc.get("call") or {}).get(name + "_at")
    if not text:
        return None
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp() * 1000) * 1000


def _json_or_none(value):
    return json.dumps(value, sort_keys=True) if value else None


def index_row(doc, record_key):
    """One index row (the values of ``_ROW``) of a call record read by :func:`read_record`."""
    recordings = doc.get("recordings") or []
    rec = recordings[-1] if recordings else {}
    call = doc.get("call") or {}
    number = doc.get("number")
    states = [r.get("state") for r in recordings] + ["deleted"] * int(doc.get("recordings_deleted") or 0)
    return (
        doc["box"],
        doc["call_id"],
        doc.get("line"),
        doc.get("direction"),
        doc.get("started_at"),
        doc.get("ended_at"),
        int(bool(doc.get("answered"))),
        doc.get("duration_s"),
        number,
        doc.get("name"),
        rec.get("key"),
        rec.get("sha256"),
        record_key,
        _us(doc, "started"),
        _us(doc, "answered"),
        _us(doc, "ended"),
        # A card number masked on the number dialled (docs/pci.md) ends it in X: the
        # number's last digits are those dialled, so a search for them finds the call.
        number.rstrip(cards.MASK)[::-1] if number else None,
        ",".join(call.get("tags") or []) or None,
        call.get("policy_decision"),
        call.get("policy_reason"),
        _json_or_none(call.get("consent")),
        _json_or_none(call.get("pause_spans")),
        ",".join(s for s in states if s) or None,
        int(bool(doc.get("recordings_deleted"))),
        # In clear in the record (since it carried it) or in its sealed call.
        int(bool(doc.get("digits_withheld", call.get("digits_withheld")))),
        record_zone(doc),
    )


def record_zone(doc):
    """The IANA zone of the box that wrote the call record ``doc`` (its ``time_zone``, the
    zone its own pages date in), or None: a record from before records carried it, or a
    name this machine's zone database does not know. None is read as UTC."""
    name = doc.get("time_zone")
    try:
        check_zone(name)
    except ValueError:
        return None
    return name


@functools.lru_cache(maxsize=64)
def local_time(zone):
    """The :class:`LocalTime` a call's times are shown in: its record's ``zone``, or UTC for
    None (a record from before records carried their box's zone, or the viewer's own
    entries) and for a zone this machine's zone database does not know."""
    try:
        return LocalTime(zone or "UTC")
    except ValueError:
        return LocalTime("UTC")


def zone_unsaid(zone):
    """Whether a call whose record carries ``zone`` is shown in UTC for want of a zone
    (none carried, or one not known here) rather than in its site's."""
    return local_time(zone).zone_name == "UTC" and zone != "UTC"


def local_iso(wall_us, zone):
    """``wall_us`` (µs since the epoch) as ISO 8601 with milliseconds, as the box's CSVs
    write times (:func:`firmware.calls.calllog.iso_ms`), but in the zone :func:`local_time`
    gives for ``zone``, with its offset then: ``2026-07-01T00:30:00.000+01:00``. None
    gives None."""
    if wall_us is None:
        return None
    t = local_time(zone).local(wall_us // 1000 * 1000)
    return t.isoformat(timespec="milliseconds")


class KeyOpensNone(LinekeeperError):
    """The organisation key given to :func:`rebuild_index` opens none of the ``records``
    call records (another organisation's key); the index was left as it was."""

    def __init__(self, records, whose=""):
        self.records = records
        plural = "" if records == 1 else "s"
        counted = "the %d call record%s%s" % (records, plural, whose) if records else "the call records"
        super().__init__(
            "the organisation key opens none of %s: is it this organisation's key? "
            "The index was left as it was" % counted
        )


def rebuild_index(bucket, index_path, org_private_key=None, skipped_keys=None):
    """Rebuild the index at ``index_path`` from ``bucket`` (a :class:`~.store.Bucket`).

    Returns ``(calls indexed, records skipped as unreadable)``. ``skipped_keys``: a list
    the object keys of the records skipped are added to (``BOX/calls/…``: whose site).

    :raises KeyOpensNone: ``org_private_key`` opens none of the records (the index kept)
    """
    skipped = [] if skipped_keys is None else skipped_keys
    before = len(skipped)
    erased = []  # the erasure notes listed: a record read before its erasure is emptied (write_index)

    def records():
        for key in bucket.keys():
            parts = key.split("/")
            if erased_call(key) is not None:
                erased.append(erased_call(key))
            if len(parts) != 3 or parts[1] != "calls" or not parts[2].endswith(".json"):
                continue
            try:
                doc = read_record(bucket.get(key), org_private_key)
                # A record copied over another box's or call's object is not that call:
                # its object key must be the one its box and call id give.
                if call_key(doc["box"], doc["call_id"]) != key:
                    raise ValueError("%s holds the record of %s call %r" % (key, doc["box"], doc["call_id"]))
                index_row(doc, key)  # a record whose fields are of the wrong kind: skipped here
            except (ValueError, KeyError, TypeError, ArchiveError) as exc:
                log.warning("archive index: %s skipped: %s", key, exc)
                skipped.append(key)
                continue
            yield doc, key

    def none_opened(n):
        # Every record refused by the key given: another organisation's key, not a
        # bucket of damaged records. The index the viewer has is kept.
        if org_private_key is not None and n == 0 and len(skipped) > before:
            raise KeyOpensNone(len(skipped) - before)

    n = write_index(
        index_path, records(), sealed_opened=org_private_key is not None, check=none_opened, erased=erased
    )
    return n, len(skipped) - before


def erased_call(key):
    """``(box, call_id)`` of an erasure note's object key (:func:`~.replicator.erasure_key`),
    or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[1] != "erasures" or not parts[2].endswith(".json"):
        return None
    stem = parts[2][: -len(".json")]
    if not (stem.isascii() and stem.isdigit()) or erasure_key(parts[0], int(stem)) != key:
        return None
    return parts[0], int(stem)


# The index's columns that hold the caller's details (an index written before one was
# added lacks it).
_DETAILS = ("number", "name", "number_rev")


def drop_erased(index_path, erased):
    """Empty the number and name of each call of ``erased`` (``(box, call_id)`` pairs) in the
    index at ``index_path`` where it still holds them; returns those emptied. Written with
    ``secure_delete`` on, so the file keeps no copy of the old values (its rollback journal,
    which held them for the write, is deleted when it commits). Only an index that holds
    one of them is written: reading pages are not held up.

    :raises sqlite3.Error: the index cannot be written (nothing changed)
    """
    if not erased or not os.path.exists(index_path):
        return []
    db = sqlite3.connect(index_path, timeout=10, isolation_level=None)
    try:
        have = {r[1] for r in db.execute("PRAGMA table_info(calls)")}
        cols = [c for c in _DETAILS if c in have]
        held = " OR ".join("%s IS NOT NULL" % c for c in cols)
        sql = "SELECT 1 FROM calls WHERE box = ? AND call_id = ? AND (%s)" % held
        todo = sorted(
            {(box, call_id) for box, call_id in erased if db.execute(sql, (box, call_id)).fetchone()}
        )
        if not todo:
            return []
        db.execute("PRAGMA secure_delete=ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            done = []
            for box, call_id in todo:
                cur = db.execute(
                    "UPDATE calls SET %s WHERE box = ? AND call_id = ? AND (%s)"
                    % (", ".join("%s = NULL" % c for c in cols), held),
                    (box, call_id),
                )
                if cur.rowcount:
                    done.append((box, call_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return done
    finally:
        db.close()


def apply_erasures(bucket, index_path):
    """Drop from the index at ``index_path`` the caller's details of every call an erasure
    note in ``bucket`` names, for the sites the index holds (one listing of
    ``BOX/erasures/`` each); returns the ``(box, call_id)`` emptied now (:func:`drop_erased`).
    No index: nothing.

    Raises whatever the store's client raises when the bucket cannot be listed (nothing
    changed), or :class:`sqlite3.Error` when the index cannot be written.
    """
    if not os.path.exists(index_path):
        return []
    db = open_index(index_path)
    try:
        boxes = [box for box, _ in sites(db)]
    finally:
        db.close()
    erased = [
        found for box in boxes for found in map(erased_call, bucket.keys("%s/erasures/" % box)) if found
    ]
    return drop_erased(index_path, erased)


def write_index(index_path, records, sealed_opened, batch=10_000, check=None, erased=()):
    """Write a new index of ``records`` (``(doc, object key)`` pairs, the docs as
    :func:`read_record` gives them) to ``index_path``, replacing the old one only when
    complete (a failure leaves the old index as it was). Returns how many calls.
    ``check(n)`` may refuse the new index (raise) before it replaces the old.
    ``erased``: ``(box, call_id)`` pairs (complete once ``records`` is read) whose caller's
    details are emptied before the new index replaces the old, with ``secure_delete`` on so
    the file keeps no copy: emptied after, a page read in between showed them.
    """
    tmp = index_path + ".new"
    if os.path.exists(tmp):
        os.remove(tmp)
    db = sqlite3.connect(tmp)
    n = 0
    sql = "INSERT OR REPLACE INTO calls (%s) VALUES (%s)" % (", ".join(_ROW), ",".join("?" * len(_ROW)))
    try:
        db.execute("PRAGMA journal_mode=OFF")  # a new file: a crash leaves only the .new to remove
        db.execute("PRAGMA synchronous=OFF")
        db.executescript(INDEX_SCHEMA)
        rows, zones = [], set()
        for doc, key in records:
            rows.append(index_row(doc, key))
            zones.add(rows[-1][-1])
            if len(rows) >= batch:
                db.executemany(sql, rows)
                n += len(rows)
                rows = []
        db.executemany(sql, rows)
        n += len(rows)
        if erased:
            db.execute("PRAGMA secure_delete=ON")
            emptied = ", ".join("%s = NULL" % c for c in _DETAILS)
            db.executemany("UPDATE calls SET %s WHERE box = ? AND call_id = ?" % emptied, list(erased))
        if check is not None:
            check(n)
        db.executescript(INDEX_INDEXES)
        db.execute("INSERT INTO meta VALUES ('sealed_opened', ?)", ("yes" if sealed_opened else "no",))
        # The zones the calls are in, so a search by day need not read every row to know.
        db.execute("INSERT INTO meta VALUES ('time_zones', ?)", (json.dumps(sorted(z for z in zones if z)),))
        db.commit()
    except BaseException:
        db.close()
        os.remove(tmp)
        raise
    db.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)  # durable before it replaces the old index
    finally:
        os.close(fd)
    os.replace(tmp, index_path)
    return n


def _suffix_range(number):
    """The ``number_rev`` range of numbers ending in ``number``: a prefix of the reversed."""
    low = number[::-1]
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def open_index(index_path):
    """The index, read-only.

    :raises LinekeeperError: there is none yet
    """
    if not os.path.exists(index_path):
        raise LinekeeperError("no index %s (run `linekeeper archive index` first)" % index_path)
    return sqlite3.connect("file:%s?mode=ro" % index_path, uri=True, check_same_thread=False)


def _select(db):
    """The select list of ``COLUMNS`` in index ``db``: an index written before a column
    was added (until it is rebuilt) gives NULL for it, not an error."""
    have = {r[1] for r in db.execute("PRAGMA table_info(calls)")}
    return ", ".join(c if c in have else "NULL AS %s" % c for c in COLUMNS)


def search(
    index_path,
    number=None,
    box=None,
    since_us=None,
    until_us=None,
    limit=1000,
    newest_first=False,
    db=None,
    boxes=None,
    country="uk",
    first_day=None,
    last_day=None,
):
    """Calls in the index (dicts), oldest first (``newest_first``: newest first).

    ``number`` matches the whole number or its last digits (``960123`` finds
    ``01632960123``), in any form a person types it (``+44 (0)1632 960123``,
    ``0044…``, ``44…``: as ``country`` writes numbers); ``box`` one site; ``boxes`` only these sites (a viewer
    account's grant; None: every site); ``since_us``/``until_us`` the start time
    (µs, until excluded). ``first_day``/``last_day`` (:class:`datetime.date`, both
    included): the calls started on those days as each call's site counts them, in the
    zone its record carries (:func:`record_zone`; none: UTC), as the viewer's pages show
    its times. ``db``: an open index (:func:`open_index`) to reuse.
    """
    own = db is None
    if own:
        db = open_index(index_path)
    try:
        where, args = [], []
        if number:
            # Every form of the number (+44 1632 960123, 0044…, 01632 960123) ends in its
            # national significant digits, whatever form the box logged it in.
            from ..calls.callsearch import search_number

            number = search_number(number, country, "contains") or number
            where.append("number_rev >= ? AND number_rev < ?")
            args += list(_suffix_range(number))
        if box:
            where.append("box = ?")
            args.append(box)
        if boxes is not None:
            boxes = sorted(boxes)
            where.append("box IN (%s)" % ",".join("?" * len(boxes)) if boxes else "0")
            args += boxes
        if since_us is not None:
            where.append("started_us >= ?")
            args.append(since_us)
        if until_us is not None:
            where.append("started_us < ?")
            args.append(until_us)
        if first_day is not None or last_day is not None:
            clause, values = _days_clause(db, first_day, last_day)
            where.append(clause)
            args += values
        sql = "SELECT %s FROM calls" % _select(db)
        if number:
            # A number's calls are few; a date range may hold millions (SQLite's planner
            # cannot know which is narrower without statistics).
            sql += " INDEXED BY calls_number_rev"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = " DESC" if newest_first else ""
        sql += " ORDER BY started_us%s, box%s, call_id%s LIMIT ?" % (order, order, order)
        return [dict(zip(COLUMNS, r, strict=False)) for r in db.execute(sql, args + [limit])]
    finally:
        if own:
            db.close()


def time_zones(db):
    """The zones the calls of index ``db`` carry (none in an index written before calls
    carried one)."""
    row = db.execute("SELECT value FROM meta WHERE name = 'time_zones'").fetchone()
    return json.loads(row[0]) if row else []


def shared_zone(db, boxes=None):
    """The zone every site of ``boxes`` (None: every site in index ``db``) carried in its
    latest call, when they all carried the same one; None otherwise (sites in different
    zones, or one whose records carry none)."""
    if "time_zone" not in {r[1] for r in db.execute("PRAGMA table_info(calls)")}:
        return None
    found = set()
    for box in [b for b, _ in sites(db)] if boxes is None else boxes:
        row = db.execute(
            "SELECT time_zone FROM calls WHERE box = ? ORDER BY started_us DESC LIMIT 1", (box,)
        ).fetchone()
        if row is not None:
            found.add(row[0])
    return found.pop() if len(found) == 1 else None


def _days_clause(db, first_day, last_day):
    """``(SQL, arguments)`` of the calls started from ``first_day`` to ``last_day`` (either
    None: no bound) in each call's own zone. The start-time index is walked over the days
    as the earliest and the latest zone have them; each call is then held to its zone's."""

    def bounds(zone):
        local = LocalTime(zone)
        since = local.day_start_us(first_day) if first_day is not None else None
        until = local.day_end_us(last_day) if last_day is not None else None
        return since, until

    def range_sql(since, until):
        parts, values = [], []
        if since is not None:
            parts.append("started_us >= ?")
            values.append(since)
        if until is not None:
            parts.append("started_us < ?")
            values.append(until)
        return " AND ".join(parts), values

    utc = bounds("UTC")
    zones = {}
    if "time_zone" in {r[1] for r in db.execute("PRAGMA table_info(calls)")}:
        for zone in time_zones(db):
            try:
                zones[zone] = bounds(zone)
            except ValueError:  # no longer in this machine's zone database: shown in UTC
                continue
    every = [utc] + list(zones.values())
    outer = range_sql(
        None if first_day is None else min(b[0] for b in every),
        None if last_day is None else max(b[1] for b in every),
    )
    if not zones:
        return outer
    sql, values = outer[0] + " AND CASE time_zone", list(outer[1])
    for zone, (since, until) in sorted(zones.items()):
        inner, inner_values = range_sql(since, until)
        sql += " WHEN ? THEN (" + inner + ")"
        values += [zone] + inner_values
    inner, inner_values = range_sql(*utc)
    return sql + " ELSE (" + inner + ") END", values + inner_values


def get_call(db, box, call_id):
    """One call of the index (a dict of ``COLUMNS``), or None."""
    sql = "SELECT %s FROM calls WHERE box = ? AND call_id = ?" % _select(db)
    row = db.execute(sql, (box, call_id)).fetchone()
    return dict(zip(COLUMNS, row, strict=False)) if row else None


def sites(db):
    """``[(box, calls)]`` of every site in the index."""
    return db.execute("SELECT box, count(*) FROM calls GROUP BY box ORDER BY box").fetchall()


def sealed_opened(db):
    """True when the index was built with the organisation key (numbers, coverage known)."""
    row = db.execute("SELECT value FROM meta WHERE name = 'sealed_opened'").fetchone()
    return bool(row) and row[0] == "yes"


def central_report(db, period, boxes=None, max_calls=MAX_CALLS):
    """Each site's report figures for ``period`` and their sum, from the index.

    Returns ``{"period", "sites": {box: totals}, "total": totals,
    "coverage_and_consent_known"}``; the last False where the index was built without the
    organisation key (:func:`sealed_opened`): the figures read from the calls' sealed part
    (policy decision and reason, consent, pause spans) are then None, not known: every consent
    figure and all of coverage but ``connected``, ``recorded`` and ``partial``, which the
    record holds in clear (:func:`~firmware.reports.compute.policy_not_known`). Each site's
    totals are computed by the box's own report code
    (:func:`firmware.reports.compute.totals_of`), so they match the box's report, but for
    ``deletions``: None (a box's deletion log is not archived).
    ``boxes``: only these sites (a viewer account's grant; None: every site, empty: none).

    :raises ReportError: more than ``max_calls`` calls in the period
    """
    where, args = ["started_us >= ? AND started_us < ?"], [period.start_us, period.end_us]
    if boxes is not None:
        # No site at all is none, as search() has it: read as no limit, an account granted
        # none reported on every site.
        boxes = sorted(boxes)
        where.append("box IN (%s)" % ",".join("?" * len(boxes)) if boxes else "0")
        args += boxes
    clause = " WHERE " + " AND ".join(where)
    n = db.execute("SELECT count(*) FROM calls" + clause, args).fetchone()[0]
    if n > max_calls:
        raise ReportError(
            "%s holds %d calls across the sites; a report holds at most %d: choose a shorter date range"
            % (period.label(), n, max_calls)
        )
    rows = {}
    for r in db.execute(
        "SELECT box, %s FROM calls%s ORDER BY started_us, box, call_id" % (_REPORT_COLUMNS, clause), args
    ):
        rows.setdefault(r[0], []).append(r[1:])
    # Every site asked for (or in the index) has its column, with no call in the period too.
    known = [r[0] for r in db.execute("SELECT DISTINCT box FROM calls")]
    for box in known if boxes is None else [b for b in boxes if b in known]:
        rows.setdefault(box, [])
    site_totals = {box: totals_of(rows[box], period) for box in sorted(rows)}
    total = totals_of([r for box in sorted(rows) for r in rows[box]], period)
    known = sealed_opened(db)
    for totals in (*site_totals.values(), total):
        # A box counts them from its deletion log, which is not archived: not 0, not known.
        totals["deletions"] = None
        if not known:
            # Counted without the sealed part they read 0, or "failed" for a call answered
            # and not recorded (no decision said skip): not known, not 0.
            policy_not_known(totals)
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat(), "tz": period.tz},
        "sites": site_totals,
        "total": total,
        "coverage_and_consent_known": known,
    }


def play(bucket, record, org_key, tmp_dir):
    """``(codec bytes, complete, mime type)`` of a call's (last) recording, fetched from
    the bucket and decrypted with the organisation key; nothing is written to disk but
    a temporary copy of the still-encrypted file, removed before this returns.

    ``record``: the call record read by :func:`read_record` with the key.

    :raises LinekeeperError: the call has no recording (any more)
    :raises TamperError: the object or its key does not open, or fails its hash
    """
    rec = sealing.last_archived(record)
    with sealing.restored_copy(bucket, rec, org_key, tmp_dir) as (path, _, data_key):
        audio, complete = decrypt_recording(path, data_key, rec.get("state"))
    return audio, complete, _mime(rec.get("profile"))


def mime_of(record):
    """The mime type of the audio of a call record's (last) recording."""
    recs = [r for r in record.get("recordings") or [] if r.get("org_wrapped_key")]
    return _mime(recs[-1].get("profile") if recs else None)


def _mime(profile):
    try:
        return mime_type(profile)
    except LinekeeperError:  # a record from before profiles were recorded
        return "audio/ogg"


def latest_audit_head(bucket, box):
    """The latest audit head ``box`` sent that can be read (a dict: seq, hash, sent_at_us, sig
    where signed), or None. Object keys sort by sequence number, so the last listed is the
    latest; a damaged one (not JSON, cut short, no seq or hash) is skipped, logged naming it,
    and the one before it read, as the replicator does (:func:`~.replicator.readable`)."""
    keys = [k for k in bucket.keys("%s/audit-heads/" % box) if k.endswith(".json")]
    for key in sorted(keys, reverse=True):
        head, damage = readable(bucket.get(key), ("seq", "hash"))
        if head is not None:
            return head
        log.warning(
            "archive: the audit head %s is damaged (%s): skipped, the one before is read", key, damage
        )
    return None
