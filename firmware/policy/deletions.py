"""The deletion log: proof of what retention deleted, when and by which rule.

One row per deleted recording in the ``deletion_log`` table of ``calls.db``,
written in the same transaction that destroys the recording's row (and its
wrapped key): a recording is never gone without its entry, nor logged as
gone while its key survives. An entry holds no personal data — no number,
name or audio — only what proves the deletion::

    seq, deleted_at (µs since the epoch, UTC), reason ("retention",
    "overwrite", "erasure" on a person's request, or "archive" for the
    archived copy), rule, recording_id, call_id, line, direction, categories,
    call_date (the day the call started, UTC), duration_s, bytes,
    file_sha256 (of the encrypted file, as recorded when it was finished)

Tamper evidence is the audit trail's (see :mod:`firmware.storage.audit`): each entry
carries ``hash = SHA-256(prev_hash || canonical entry)``, the first entry's
``prev_hash`` being 32 zero bytes, so an edit, removal, insertion or
reordering breaks the chain. Removing entries at the end would not, so every
sweep writes the chain head (``seq`` and ``hash``) into its
``retention_sweep`` audit entry (an erasure too, with trigger ``erasure``), itself
chained and anchored by the audit head file: :func:`verify` checks the log
against the latest of those anchors.
A crash between the deletion and the sweep's audit entry leaves entries after
the last anchor; they are chained like any other, and the next sweep anchors
them.
"""

import hashlib
import json
import sqlite3
import threading
from typing import Any

from firmware import datadir
from firmware.storage.audit import GENESIS_HASH, canonical_json, check_checked, json_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS deletion_log (
    seq          INTEGER PRIMARY KEY,
    deleted_at   INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    rule         TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    call_id      INTEGER NOT NULL,
    line         INTEGER,
    direction    TEXT,
    categories   TEXT NOT NULL,
    call_date    TEXT,
    duration_s   REAL,
    bytes        INTEGER,
    file_sha256  TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
-- Stops bugs, not attackers (the hash chain is what catches those).
CREATE TRIGGER IF NOT EXISTS deletion_log_no_update BEFORE UPDATE ON deletion_log
    BEGIN SELECT RAISE(ABORT, 'the deletion log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS deletion_log_no_delete BEFORE DELETE ON deletion_log
    BEGIN SELECT RAISE(ABORT, 'the deletion log is append-only'); END;
-- A call's deletions (its page, the reports' "deleted" per call) and a period's (the
-- reports' deletions): without these every report read the whole log for each call,
-- and a box that had deleted for a year or two could not make a month's report.
CREATE INDEX IF NOT EXISTS deletion_log_call ON deletion_log (call_id);
CREATE INDEX IF NOT EXISTS deletion_log_deleted_at ON deletion_log (deleted_at);
"""

FIELDS = (
    "seq",
    "deleted_at",
    "reason",
    "rule",
    "recording_id",
    "call_id",
    "line",
    "direction",
    "categories",
    "call_date",
    "duration_s",
    "bytes",
    "file_sha256",
)
_REASON, _CALL_ID = FIELDS.index("reason"), FIELDS.index("call_id")  # in a stored row
ANCHOR = "deletion_log"  # the key of the chain head in a retention_sweep audit entry
ERASURE = "erasure"  # the reason of a recording deleted on a person's request
ERASURE_RULE = "erasure request"


def recording_word(state, gone):
    """A call's recording as the calls list, its CSV and ``linekeeper calls`` name it:
    ``state`` (its newest recording's, ``deleted`` for one the box deleted, empty or None
    for a call never recorded), but ``erased`` for one erased on a person's request
    (``gone``: its deletion-log entry's ``reason`` and ``rule``, or None), so that an
    erasure is told apart from a deletion by retention or a full card."""
    reason, rule = (gone or {}).get("reason"), (gone or {}).get("rule")
    if state == "deleted" and (reason == ERASURE or (reason == "archive" and rule == ERASURE_RULE)):
        return "erased"
    return state


def describe(entry, when):
    """Why a recording is gone, as a sentence: ``'Its recording was deleted on … by the
    retention rule "…" (retention).'``

    ``entry`` is a deletion-log entry (``reason``, ``rule``), ``when`` its time as
    the reader shows times."""
    reason, rule = entry.get("reason"), entry.get("rule")
    if reason == ERASURE:
        return "Its recording was erased on %s, on request (the audit trail says who asked and why)." % when
    if reason == "overwrite":
        return "Its recording was deleted on %s to make room on a full card (past its minimum period)." % when
    if reason == "archive":
        if rule == ERASURE_RULE:
            return "Its archived copy was erased on %s, on request." % when
        return 'Its archived copy was deleted on %s by the retention rule "%s".' % (when, rule)
    return 'Its recording was deleted on %s by the retention rule "%s" (%s).' % (when, rule, reason)


def entry_hash(prev_hash, entry):
    """The hex SHA-256 chaining ``entry`` (a dict of :data:`FIELDS`) to ``prev_hash``."""
    body = canonical_json({k: entry[k] for k in FIELDS})
    return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("ascii")).hexdigest()


def ensure_schema(db):
    db.executescript(SCHEMA)


def head(db):
    """``(seq, hash)`` of the last entry, or ``(0, GENESIS_HASH)`` for an empty log."""
    row = db.execute("SELECT seq, hash FROM deletion_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def append(db, entry):
    """Add ``entry`` (every field of :data:`FIELDS` but ``seq``) inside the caller's transaction.

    Returns the stored entry (with ``seq``, ``prev_hash`` and ``hash``).
    """
    seq, prev_hash = head(db)
    entry = dict(entry, seq=seq + 1, categories=sorted(entry["categories"]))
    if entry["duration_s"] is not None:
        entry["duration_s"] = round(float(entry["duration_s"]), 3)
    digest = entry_hash(prev_hash, entry)
    db.execute(
        "INSERT INTO deletion_log (%s, prev_hash, hash) VALUES (%s)"
        % (", ".join(FIELDS), ", ".join("?" * (len(FIELDS) + 2))),
        [json.dumps(entry[k]) if k == "categories" else entry[k] for k in FIELDS] + [prev_hash, digest],
    )
    return dict(entry, prev_hash=prev_hash, hash=digest)


def _row_entry(row):
    entry = dict(zip(FIELDS + ("prev_hash", "hash"), row, strict=False))
    entry["categories"] = json.loads(entry["categories"])
    return entry


def _deleted_between(since_us, until_us):
    """The SQL condition (``AND ...``) and its arguments for entries deleted at or after
    ``since_us`` and before ``until_us`` (µs; None: no bound)."""
    where, args = "", []  # type: tuple[str, list[int]]
    if since_us is not None:
        where, args = where + " AND deleted_at >= ?", args + [int(since_us)]
    if until_us is not None:
        where, args = where + " AND deleted_at < ?", args + [int(until_us)]
    return where, args


def entries(db, limit=100, offset=0, newest_first=True, after_seq=None, since_us=None, until_us=None):
    """Up to ``limit`` entries as dicts, newest first by default; with ``after_seq``,
    those after entry ``after_seq``, oldest first (``offset`` unused): a reader of the
    whole log goes on from the last entry it read, not past ever more skipped rows.
    With ``after_seq``, ``since_us`` and ``until_us`` keep those deleted in that time
    (µs, the end excluded): an auditor's copy of one month."""
    if after_seq is not None:
        where, args = _deleted_between(since_us, until_us)
        rows = db.execute(
            "SELECT %s, prev_hash, hash FROM deletion_log WHERE seq > ?%s ORDER BY seq LIMIT ?"
            % (", ".join(FIELDS), where),
            [int(after_seq)] + args + [int(limit)],
        ).fetchall()
        return [_row_entry(r) for r in rows]
    rows = db.execute(
        "SELECT %s, prev_hash, hash FROM deletion_log ORDER BY seq %s "
        "LIMIT ? OFFSET ?" % (", ".join(FIELDS), "DESC" if newest_first else "ASC"),
        (int(limit), int(offset)),
    ).fetchall()
    return [_row_entry(r) for r in rows]


def for_call(db, call_id):
    """The entries of call ``call_id``'s deleted recordings, oldest first."""
    rows = db.execute(
        "SELECT %s, prev_hash, hash FROM deletion_log WHERE call_id = ? ORDER BY seq" % ", ".join(FIELDS),
        (int(call_id),),
    ).fetchall()
    return [_row_entry(r) for r in rows]


def count(db, since_us=None, until_us=None):
    """How many entries the log holds (deleted in that time: see :func:`entries`)."""
    where, args = _deleted_between(since_us, until_us)
    return db.execute("SELECT count(*) FROM deletion_log WHERE 1%s" % where, args).fetchone()[0]


def latest_anchor(audit):
    """``(seq, hash)`` recorded by the newest ``retention_sweep`` audit entry (a sweep's,
    the overwrite's or an erasure's), or None."""
    offset = 0
    while True:
        batch = audit.entries(limit=50, offset=offset, action="retention_sweep")
        for entry in batch:
            anchor = entry.details.get(ANCHOR)
            if isinstance(anchor, dict) and "seq" in anchor:
                return anchor["seq"], anchor["hash"]
        if len(batch) < 50:
            return None
        offset += 50


def verify(db, audit=None):
    """Check the chain (and, given the audit trail, its latest anchor); returns problems.

    Each problem is one line naming the entry it concerns; an empty list
    means the log is intact.
    """
    return verify_after(db, (0, GENESIS_HASH), audit)[0]


def verify_after(db, checked, audit=None):
    """Check the entries after ``checked``, ``(seq, hash)`` of an entry an earlier check
    (:func:`verify`, or this) reached, as :func:`verify` checks them all; returns the
    problems and ``(seq, hash)`` of the last entry checked, to go on from next time.

    Only those entries are read (the checked entry, which must still hold its hash, and
    the anchored one, by their numbers), chained on from ``checked``: the deletion log's
    page reads what was added since it last looked, not the 600 000 entries of a box
    years in service (as :meth:`firmware.storage.audit.AuditLog.verify_after`). An entry
    before ``checked`` changed since is not seen: a whole check (:func:`verify`) sees it.
    """
    problems = []
    anchor = latest_anchor(audit) if audit is not None else None
    if anchor is not None and anchor[0] <= 0:
        anchor = None
    anchored = None  # the hash of the anchored entry, once seen
    erased: dict[int, int] = {}  # call id: seq of its erasure entries (each needs the trail's `delete` of it)
    expected, prev_hash = checked[0] + 1, checked[1]
    problems += check_checked(db, "deletion_log", "deletion log entry", checked)
    if anchor is not None and anchor[0] <= checked[0]:
        row = db.execute("SELECT hash FROM deletion_log WHERE seq = ?", (anchor[0],)).fetchone()
        anchored = row and row[0]
    for row in db.execute(
        "SELECT %s, prev_hash, hash FROM deletion_log WHERE seq > ? ORDER BY seq" % ", ".join(FIELDS),
        (checked[0],),
    ):
        seq, digest = row[0], row[-1]
        problems += _check_row(row, expected, prev_hash)
        if anchor is not None and seq == anchor[0]:
            anchored = digest
        if row[_REASON] == ERASURE:
            erased.setdefault(row[_CALL_ID], seq)
        expected, prev_hash = seq + 1, digest
    if audit is not None and erased and hasattr(audit, "targets_of"):
        asked = audit.targets_of("delete")
        for call_id, seq in sorted(erased.items(), key=lambda x: x[1]):
            if "call:%d" % call_id not in asked:
                problems.append(
                    "deletion log entry %d: call %d's recording was erased with no `delete` entry "
                    "in the audit trail (who asked, and why, is not recorded)" % (seq, call_id)
                )
    if anchor is not None:
        if anchored is None:
            problems.append(
                "the audit trail says the deletion log reached entry %d, but it "
                "ends at %d: entries were removed" % (anchor[0], head(db)[0])
            )
        elif anchored != anchor[1]:
            problems.append(
                "deletion log entry %d does not match the hash the audit trail "
                "recorded for it: the log was rewritten" % anchor[0]
            )
    return problems, (expected - 1, prev_hash)


def _check_row(row, expected, prev_hash):
    """The problems with one stored row (:data:`FIELDS`, ``prev_hash``, ``hash``), given
    what the chain so far says it must be: entry ``expected``, chained to ``prev_hash``."""
    seq, stored_prev, stored_hash = row[0], row[-2], row[-1]
    problems = []
    if seq != expected:
        problems.append(
            "deletion log entries %d-%d are missing (removed?)" % (expected, seq - 1)
            if seq > expected
            else "deletion log entry %d is out of order" % seq
        )
    elif stored_prev != prev_hash:
        problems.append(
            "deletion log entry %d does not follow the one before it (inserted, "
            "reordered, or an earlier entry was rewritten)" % seq
        )
    digest = _stored_hash(row)
    if digest != stored_hash:
        try:
            digest = entry_hash(stored_prev, _row_entry(row))
        except (ValueError, TypeError, KeyError):
            digest = None
    if digest != stored_hash:
        problems.append("deletion log entry %d was modified: its content does not match its hash" % seq)
    return problems


# A stored value as canonical JSON writes it, by its type (another type: KeyError).
_JSON_VALUE = {str: json_text, int: int.__repr__, float: float.__repr__, type(None): lambda _: "null"}


def _stored_hash(row):
    """:func:`entry_hash` of a stored row, its values written as canonical JSON as they
    are, its categories taken as the text they are stored as, not parsed into an entry and
    written again: a whole check of the 600 000 entries of a box four years in service
    spent most of its time doing that. Categories of more than one are stored spaced out
    (``["a", "b"]``), not canonical: only those are parsed. A row that gives another hash
    is checked the long way (:func:`_check_row`); None where a value is of no JSON type."""
    seq, at, reason, rule, rid, call_id, line, direction, categories, day, length, size, sha, prev, _ = row
    js = _JSON_VALUE
    try:
        if '", "' in categories:
            categories = canonical_json(json.loads(categories))
        # The keys of :data:`FIELDS` sorted, as canonical_json writes them.
        body = (
            '{"bytes":%s,"call_date":%s,"call_id":%s,"categories":%s,"deleted_at":%s,'
            '"direction":%s,"duration_s":%s,"file_sha256":%s,"line":%s,"reason":%s,'
            '"recording_id":%s,"rule":%s,"seq":%s}'
            % (
                js[type(size)](size),
                js[type(day)](day),
                js[type(call_id)](call_id),
                categories,
                js[type(at)](at),
                js[type(direction)](direction),
                js[type(length)](length),
                js[type(sha)](sha),
                js[type(line)](line),
                js[type(reason)](reason),
                js[type(rid)](rid),
                js[type(rule)](rule),
                js[type(seq)](seq),
            )
        )
        return hashlib.sha256(bytes.fromhex(prev) + body.encode("ascii")).hexdigest()
    except (KeyError, ValueError, TypeError, UnicodeEncodeError):
        return None


class DeletionLog:
    """The deletion log in an open connection to calls.db, used under its owner's lock.

    The recordings store (:class:`firmware.recording.store.RecordingStore`)
    holds one as :attr:`~firmware.recording.store.RecordingStore.deletions`:
    its entries are appended in the store's transaction that destroys the
    recordings' rows, and read through it.

    :param db: the owner's connection (autocommit; transactions are the owner's)
    :param lock: the owner's lock on that connection (re-entrant: :meth:`append`
        runs inside the owner's transaction, which holds it)
    """

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, path: str | None = None) -> None:
        self._db = db
        self._lock = lock
        self._path = path  # the database's file: a whole check reads it on its own connection

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry, or ``(0, GENESIS_HASH)`` for an empty log."""
        with self._lock:
            return head(self._db)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Add ``entry`` inside the owner's open transaction; see :func:`append`."""
        with self._lock:
            return append(self._db, entry)

    def entries(
        self,
        limit: int = 100,
        offset: int = 0,
        after_seq: int | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` entries as dicts, newest first; see :func:`entries`."""
        with self._lock:
            return entries(self._db, limit, offset, after_seq=after_seq, since_us=since_us, until_us=until_us)

    def for_call(self, call_id: int) -> list[dict[str, Any]]:
        """The entries of call ``call_id``'s deleted recordings, oldest first."""
        with self._lock:
            return for_call(self._db, call_id)

    def count(self, since_us: int | None = None, until_us: int | None = None) -> int:
        """How many entries the log holds (deleted in that time: see :func:`entries`)."""
        with self._lock:
            return int(count(self._db, since_us, until_us))

    def verify(self, audit: Any = None) -> list[str]:
        """Problems with the chain and its latest anchor in ``audit``; see :func:`verify`.
        Read as :meth:`verify_after` reads a whole check, without the owner's lock: holding
        it for the seconds the 600 000 entries of a box years in service take held up the
        recorder's sealing and every read of the store."""
        return self.verify_after((0, GENESIS_HASH), audit)[0]

    def verify_after(self, checked: tuple[int, str], audit: Any = None) -> tuple[list[str], tuple[int, str]]:
        """Problems with the entries after ``checked``, and up to where they were checked;
        see :func:`verify_after`.

        A whole check (``checked`` the start of the log) reads on a connection of its own,
        in one read transaction, without the owner's lock: it takes seconds on a box years
        in service (the web UI makes it in the background), and every read of the store
        meanwhile (a page of this log, a call's page) waited for the lock."""
        if checked[0] > 0 or self._path is None:
            with self._lock:
                return verify_after(self._db, checked, audit)
        db = datadir.connect_readonly(self._path)
        try:
            db.execute("BEGIN")  # (its snapshot is taken at its first read, after the anchor's)
            return verify_after(db, checked, audit)
        finally:
            db.close()
