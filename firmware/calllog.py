"""The call log: one row per call, in SQLite.

It listens on the event bus, so the supervisor never touches storage. Times
are stored as integer microseconds since the Unix epoch (UTC), with a flag
saying whether the clock was known to be synchronised when the call started.
Recordings have a table of their own (:mod:`firmware.recordings`); the
recording policy's outcome is kept per call: ``policy_decision`` ("record",
"skip", "pending"), ``policy_reason`` (the rule, in words), ``consent`` (JSON:
the notice given, see :mod:`firmware.policy.consent`) and ``pause_spans``
(JSON: the PCI pauses), ``key_marks`` (JSON: when keys were pressed after the
answer and masked out of the recording, never which); its tags are in ``call_tags``
(:mod:`firmware.policy.callmeta`). Digits keyed during a connected call are
never here.
"""

import datetime
import json
import os
import sqlite3
import threading

from .bus import CallAnswered, CallEnded, CallStarted, CallUpdated
from .policy import cards
from .policy.callmeta import SCHEMA as CALLMETA_SCHEMA
from .recordings import SCHEMA as RECORDINGS_SCHEMA

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    line          INTEGER NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    started_at    INTEGER NOT NULL,
    answered_at   INTEGER,
    ended_at      INTEGER,
    clock_synced  INTEGER NOT NULL,
    number        TEXT,
    name          TEXT,
    cid_datetime  TEXT,
    cid_standard  TEXT,
    absence       TEXT,
    dial_method   TEXT,
    extension     INTEGER NOT NULL DEFAULT 0,
    end_reason    TEXT,
    policy_decision TEXT,
    policy_reason TEXT,
    consent       TEXT,
    pause_spans   TEXT,
    key_marks     TEXT
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
"""

_FIELDS = ("number", "name", "cid_datetime", "cid_standard", "absence", "dial_method",
           "policy_decision", "policy_reason")
# Columns added after the first release: (name, type) added to older databases.
_ADDED = (("policy_decision", "TEXT"), ("policy_reason", "TEXT"), ("consent", "TEXT"),
          ("pause_spans", "TEXT"), ("key_marks", "TEXT"))


def migrate(db):
    """Bring an open ``calls.db`` connection's ``calls`` table up to :data:`SCHEMA`."""
    db.executescript(SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
    for name, kind in _ADDED:
        if name not in have:
            db.execute("ALTER TABLE calls ADD COLUMN %s %s" % (name, kind))


class CallLog:
    """Persist calls from the bus into ``path`` (an SQLite database).

    :param path: database file; its directory must exist
    :param clock: converts call times (clock µs) to wall time
    """

    def __init__(self, path, clock):
        self.path = os.fspath(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        migrate(self._db)
        self._db.executescript(RECORDINGS_SCHEMA + CALLMETA_SCHEMA)

    def attach(self, bus):
        """Start logging the calls published on ``bus``."""
        bus.subscribe(CallStarted, self._started)
        bus.subscribe(CallAnswered, self._updated)
        bus.subscribe(CallUpdated, self._updated)
        bus.subscribe(CallEnded, self._updated)

    def close(self):
        with self._lock:
            self._db.close()

    def _wall(self, t_us):
        return None if t_us is None else self._clock.wall_at(t_us)

    def _started(self, event):
        call = event.call
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO calls (line, direction, started_at, clock_synced) VALUES (?, ?, ?, ?)",
                (call.line, call.direction, self._wall(call.started_us), int(self._clock.synchronised)))
            call.id = cur.lastrowid
        self._updated(event)

    def _updated(self, event):
        call = event.call
        marks = [iso_ms(self._wall(t_us)) for t_us in getattr(call, "key_marks", None) or ()]
        values = [self._wall(call.answered_us), self._wall(call.ended_us), int(call.extension),
                  call.end_reason, _json(getattr(call, "consent", None)),
                  _json(getattr(call, "pause_spans", None) or None), _json(marks or None)]
        # PCI DSS: a card number keyed into the dialled number is never stored.
        values += [cards.scrub(getattr(call, f, None)) for f in _FIELDS]
        with self._lock:
            self._db.execute(
                "UPDATE calls SET answered_at = ?, ended_at = ?, extension = ?, end_reason = ?, "
                "consent = ?, pause_spans = ?, key_marks = ?, "
                + ", ".join("%s = ?" % f for f in _FIELDS) + " WHERE id = ?",
                values + [call.id])

    def calls(self, limit=None, offset=0):
        """Calls as dicts in the documented JSON shape, oldest first."""
        # A call's latest recording, if it has one.
        sql = ("SELECT calls.*, r.state AS recording, r.duration_s AS recording_duration_s,"
               " (SELECT group_concat(tag, ',') FROM (SELECT tag FROM call_tags"
               "  WHERE call_id = calls.id ORDER BY tag)) AS tags"
               " FROM calls LEFT JOIN recordings r ON r.id = (SELECT id FROM recordings"
               " WHERE call_id = calls.id ORDER BY started_at DESC LIMIT 1)"
               " ORDER BY calls.started_at, calls.id")
        args = ()
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args = (limit, offset)
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row)) for row in cur.fetchall()]
            gone = deleted_recordings(self._db, [r["id"] for r in rows if r["recording"] is None])
        out = []
        for row in rows:
            call = call_json(row)
            if row["id"] in gone:
                call["recording"] = "deleted"
                call["recording_deleted"] = gone[row["id"]]
            out.append(call)
        return out


def deleted_recordings(db, call_ids):
    """``{call_id: {"at", "rule", "reason"}}``: the latest recording retention deleted
    of each of ``call_ids`` (from the deletion log, if there is one)."""
    if not call_ids or db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = 'deletion_log'").fetchone() is None:
        return {}
    found = {}
    for start in range(0, len(call_ids), 500):
        batch = call_ids[start:start + 500]
        for call_id, at, rule, reason in db.execute(
                "SELECT call_id, deleted_at, rule, reason FROM deletion_log WHERE call_id IN "
                "(%s) ORDER BY seq" % ",".join("?" * len(batch)), batch):
            found[call_id] = {"at": iso_ms(at), "rule": rule, "reason": reason}
    return found


def iso_ms(wall_us):
    """ISO 8601 UTC with milliseconds, e.g. ``2026-03-02T09:00:02.000Z``."""
    if wall_us is None:
        return None
    t = datetime.datetime.fromtimestamp(wall_us // 1000 / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def call_json(row):
    """The public JSON shape of a call-log row."""
    talk_us = (row["ended_at"] - row["answered_at"]
               if row["answered_at"] is not None and row["ended_at"] is not None else None)
    return {
        "id": row["id"],
        "line": row["line"],
        "direction": row["direction"],
        "started_at": iso_ms(row["started_at"]),
        "answered_at": iso_ms(row["answered_at"]),
        "ended_at": iso_ms(row["ended_at"]),
        "answered": row["answered_at"] is not None,
        "number": row["number"],
        "name": row["name"],
        "absence": row["absence"],
        "cid_datetime": row["cid_datetime"],
        "cid_standard": row["cid_standard"],
        "dial_method": row["dial_method"],
        "extension": bool(row["extension"]),
        "end_reason": row["end_reason"],
        "clock_synced": bool(row["clock_synced"]),
        "duration_s": None if talk_us is None else round(talk_us / 1e6, 3),
        "recording": _optional(row, "recording"),
        "recording_duration_s": _optional(row, "recording_duration_s"),
        "policy_decision": _optional(row, "policy_decision"),
        "policy_reason": _optional(row, "policy_reason"),
        "consent": _loads(_optional(row, "consent")),
        "pause_spans": _loads(_optional(row, "pause_spans")) or [],
        "key_marks": _loads(_optional(row, "key_marks")) or [],
        "tags": (_optional(row, "tags") or "").split(",") if _optional(row, "tags") else [],
    }


def _optional(row, key):
    return row[key] if key in row.keys() else None


def _json(value):
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text):
    return None if text is None else json.loads(text)


def dumps(call):
    return json.dumps(call, separators=(", ", ": "))
