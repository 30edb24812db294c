"""The alarm history: every alarm raised, when it cleared, and who acknowledged it.

:class:`firmware.alarms.AlarmBoard` only knows what is on *now*; a line
that loses its voltage for a minute at night is gone from it by morning.
:class:`AlarmLog` keeps one row per occurrence in ``DATA_DIR/alarms.db``::

    id, kind, line (0: the whole box), message, raised_us, cleared_us,
    acknowledged_us, acknowledged_by        (µs since the epoch, UTC)
    call_id, call_us                        (the call it is about, or NULL)

An occurrence is *open* until it clears, and *unacknowledged* until someone
acknowledges it; the dashboard shows a banner for every occurrence that is
either (so a fault that came and went is still seen). Raising, clearing and
acknowledging are each written to the audit trail (action ``alarm``), and
raising calls every ``on_raised`` listener (e-mail, syslog), clearing every
``on_cleared`` one (the e-mail's follow-up). It listens on
the bus for :class:`~firmware.recording.recorder.Alarm` and
:class:`~firmware.bus.LineFault` events; other parts (a certificate or
registration check) call :meth:`AlarmLog.set` directly.
"""

import logging
import os
import sqlite3
import threading

from . import words
from .bus import Alarm, LineFault
from .errors import LinekeeperError
from .storage import fsutil
from .storage.fieldseal import FieldSealError, is_sealed

log = logging.getLogger(__name__)

# Alarms whose message is a person's own words (a staff concern may name a caller or
# say what they said): sealed in the history with the box's field cipher, as notes on
# calls are (docs/card-alone.md), and never sent to a log server.
PRIVATE_KINDS = frozenset({"staff_concern"})
MESSAGE_FIELD = "alarms.message"
# Shown for a sealed message this process cannot open (no key yet, or another box's).
UNOPENED = "(sealed: readable on the box once the recorder has started)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    line            INTEGER NOT NULL DEFAULT 0,
    message         TEXT NOT NULL DEFAULT '',
    raised_us       INTEGER NOT NULL,
    cleared_us      INTEGER,
    acknowledged_us INTEGER,
    acknowledged_by TEXT
);
CREATE INDEX IF NOT EXISTS alarm_history_raised ON alarm_history (raised_us);
"""
# Added since: the call an occurrence is about (a history made before has none).
ADDED_COLUMNS = (("call_id", "INTEGER"), ("call_us", "INTEGER"))
# Alarm kinds their source raises but never clears (one per failure): a power
# failure (the box stops), files moved to quarantine at start-up, a replaced
# recording key (raised again at each start while it stays replaced), a recording's
# file the start wrote again from the recording journal, found as no cut leaves it.
EVENT_KINDS = frozenset(
    {"recording_failed", "power_fail", "quarantine", "key_tampered", "recording_rewritten"}
)
_COLS = (
    "id",
    "kind",
    "line",
    "message",
    "raised_us",
    "cleared_us",
    "acknowledged_us",
    "acknowledged_by",
    "call_id",
    "call_us",
)


class AlarmLog:
    """The alarm history in ``path`` (SQLite).

    :param clock: ``wall_us()`` dates the rows
    :param audit: an :class:`~firmware.storage.audit.AuditLog`, or None (no audit)
    :param cipher: the box's field cipher (a :class:`~firmware.storage.fieldseal.FieldCipher`
        or :class:`~firmware.storage.fieldseal.LazyFieldCipher`), or None on a box that
        does not seal: it seals the messages of :data:`PRIVATE_KINDS`
    """

    def __init__(self, path, clock, audit=None, cipher=None):
        self.path = os.fspath(path)
        self.clock = clock
        self.audit = audit
        self.cipher = cipher
        self.on_raised = []  # f(row dict), after the row is committed
        # f(row dict), after an occurrence cleared (not one a renewal replaced at once)
        self.on_cleared = []
        self._lock = threading.Lock()
        self._unwritten = []  # (args, kwargs) of changes the card refused, retried later
        self._queue_lock = threading.Lock()  # the queue and whether a call is writing it
        self._flushing = False
        # Both services write it (the recorder raises, the web UI acknowledges): the box's
        # data mode, not whatever SQLite would give the first to open it.
        fsutil.create_db_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._add_columns()

    def _add_columns(self):
        """The columns added since a history was made (the other service may add them
        at the same time: its column is as good)."""
        for name, kind in ADDED_COLUMNS:
            if name in {row[1] for row in self._db.execute("PRAGMA table_info(alarm_history)")}:
                continue
            try:
                self._db.execute("ALTER TABLE alarm_history ADD COLUMN %s %s" % (name, kind))
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise

    @classmethod
    def open_existing(cls, data_dir):
        """The history in ``data_dir`` to read, or None when the box never kept one."""
        path = os.path.join(data_dir, "alarms.db")
        return cls(path, clock=None) if os.path.exists(path) else None

    def close(self):
        with self._lock:
            self._db.close()

    def open_box_alarms(self):
        """The kinds of the alarms on the whole box (line 0) still open (not cleared)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind FROM alarm_history WHERE cleared_us IS NULL AND line = 0"
            ).fetchall()
        return {kind for (kind,) in rows}

    def open_line_faults(self):
        """``{line: {kind, ...}}``: the alarms on a line still open (not cleared)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT line, kind FROM alarm_history WHERE cleared_us IS NULL AND line > 0"
            ).fetchall()
        found = {}
        for line, kind in rows:
            found.setdefault(line, set()).add(kind)
        return found

    def attach(self, bus, quiet=None):
        """Listen on ``bus``; ``quiet(line)``: whether a fault of ``line`` raises no alarm
        (a line marked not connected, :mod:`firmware.notconnected`), or None (every line)."""
        bus.subscribe(Alarm, self._on_alarm)

        def on_fault(f):
            if f.active and quiet is not None and quiet(f.line):
                return
            self.set(f.kind, f.active, line=f.line, message=words.say("fault", f.kind))

        bus.subscribe(LineFault, on_fault)

    def _on_alarm(self, alarm):
        self.set(
            alarm.kind,
            alarm.active,
            line=alarm.line,
            message=alarm.message,
            call_id=alarm.call_id,
            call_us=alarm.call_us,
        )
        if alarm.kind in EVENT_KINDS and alarm.active:
            # Nothing ever clears these: each is an occurrence of its own, kept on
            # the banner until acknowledged, and the next one is mailed again.
            self.set(alarm.kind, False, line=alarm.line)

    def set(self, kind, active, *, line=0, message="", wall_us=None, renew=False, call_id=None, call_us=None):
        """Raise (``active``) or clear alarm ``kind`` on ``line``; returns the row or None.
        ``call_id``, ``call_us``: the call a raised occurrence is about (its id, when it
        began), kept with it.

        Raising an alarm already open does nothing (a repeated report of the
        same fault is one occurrence); clearing one not open does nothing. With
        ``renew``, raising one open with another message clears that occurrence
        and raises a new one (mailed again): for an alarm whose message says what
        is wrong now (which requests are overdue), so the mail and the banner never
        name what is over, nor miss what is new. Not for :data:`PRIVATE_KINDS`
        (their sealed messages cannot be compared). A card
        that refuses the write (full, read-only, failing) must not stop the box:
        the change waits in memory, None is returned, and it is written, in
        order, with the next change the card takes.
        """
        wall_us = int(self.clock.wall_us()) if wall_us is None else wall_us
        if renew and kind in PRIVATE_KINDS:
            raise LinekeeperError("alarm %s keeps its message sealed: it cannot be renewed" % kind)
        if kind in PRIVATE_KINDS and message and self.cipher is not None:
            # Sealed before it waits anywhere; a key not there yet refuses the change
            # (FieldSealError) rather than leave a person's words on the card in clear.
            message = self.cipher.seal(message, MESSAGE_FIELD)
        change = (
            (kind, active),
            {
                "line": line,
                "message": message,
                "wall_us": wall_us,
                "renew": renew,
                "call_id": call_id,
                "call_us": call_us,
            },
        )
        with self._queue_lock:
            self._unwritten.append(change)
            if self._flushing:
                # Another call is writing what waits (a listener of the change it writes
                # raised this one, or another thread): it writes this one too, in turn.
                return None
            self._flushing = True
        try:
            return self._flush(change)
        except BaseException:
            with self._queue_lock:
                self._flushing = False
            raise

    def _flush(self, mine):
        """Write the changes that wait, in order (no lock held while each is written and
        its listeners told); the row of ``mine``, or None (the card refused)."""
        out = None
        while True:
            with self._queue_lock:
                if not self._unwritten:
                    self._flushing = False  # (with the check: a change queued now is not left)
                    return out
                change = self._unwritten[0]
            try:
                row = self._write(*change[0], **change[1])
                if change is mine:
                    out = row
            except (sqlite3.Error, OSError) as exc:
                with self._queue_lock:
                    self._flushing = False
                log.warning(
                    "the alarm history cannot be written now (%s); %d change(s) wait in memory",
                    exc,
                    len(self._unwritten),
                )
                return None
            with self._queue_lock:
                self._unwritten.pop(0)

    def _write(
        self, kind, active, *, line=0, message="", wall_us=None, renew=False, call_id=None, call_us=None
    ):
        """:meth:`set`'s write to the card. :raises sqlite3.Error, OSError: it refused"""
        over = None  # the occurrence a renewal cleared
        with self._lock:
            row = self._db.execute(
                "SELECT id, message FROM alarm_history WHERE kind = ? AND line = ? AND cleared_us IS NULL",
                (kind, line),
            ).fetchone()
            if active and row is not None and renew and row[1] != message:
                # What it says is no longer so: that occurrence is over, a new one begins,
                # both or neither (a card that refuses the new one must not leave the
                # alarm cleared, and unaudited, while its cause is still there).
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        "UPDATE alarm_history SET cleared_us = ? WHERE id = ?", (wall_us, row[0])
                    )
                    cur = self._db.execute(
                        "INSERT INTO alarm_history (kind, line, message, raised_us, call_id, call_us)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (kind, line, message, wall_us, call_id, call_us),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                over = self._get(row[0])
                alarm_id, event = cur.lastrowid, "raised"
            elif active and row is None:
                cur = self._db.execute(
                    "INSERT INTO alarm_history (kind, line, message, raised_us, call_id, call_us)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, line, message, wall_us, call_id, call_us),
                )
                alarm_id, event = cur.lastrowid, "raised"
            elif not active and row is not None:
                self._db.execute("UPDATE alarm_history SET cleared_us = ? WHERE id = ?", (wall_us, row[0]))
                alarm_id, event = row[0], "cleared"
            else:
                return None
            out = self._get(alarm_id)
        if over is not None:
            self._audit("system", "cleared", over, wall_us)
        self._audit("system", event, out, wall_us)
        for listener in list(self.on_raised if event == "raised" else self.on_cleared):
            # The row is written: a listener that fails (the mail queue on a full card)
            # is its own failure, said as such; it neither stops the others nor makes
            # the change wait as if the history had refused it.
            try:
                listener(out)
            except Exception:
                log.exception("alarm %s (%s) %s, but telling %r failed", out["id"], kind, event, listener)
        return out

    def acknowledge(self, alarm_id, user, wall_us=None):
        """``user`` has seen alarm ``alarm_id``; returns its row.

        :raises LinekeeperError: no such alarm, or it was already acknowledged
        """
        wall_us = int(self.clock.wall_us()) if wall_us is None else wall_us
        with self._lock:
            row = self._get(alarm_id)
            if row is None:
                raise LinekeeperError("there is no alarm %s" % alarm_id)
            if row["acknowledged_by"]:
                raise LinekeeperError(
                    "alarm %d was already acknowledged by %s" % (alarm_id, row["acknowledged_by"])
                )
            self._db.execute(
                "UPDATE alarm_history SET acknowledged_us = ?, acknowledged_by = ? WHERE id = ?",
                (wall_us, user, alarm_id),
            )
            row = self._get(alarm_id)
        self._audit(user, "acknowledged", row, wall_us)
        return row

    def _audit(self, actor, event, row, wall_us):
        if self.audit is not None:
            self.audit.append(
                actor,
                "alarm",
                "alarm:%d" % row["id"],
                {"event": event, "kind": row["kind"], "line": row["line"], "message": row["message"]}
                | ({"call_id": row["call_id"]} if row["call_id"] is not None else {}),
                wall_us,
            )

    def _get(self, alarm_id):
        row = self._db.execute(
            "SELECT %s FROM alarm_history WHERE id = ?" % ", ".join(_COLS), (alarm_id,)
        ).fetchone()
        return None if row is None else self._row(row)

    def _row(self, values):
        """A row as a dict, its message opened (:data:`UNOPENED` when it cannot be)."""
        row = dict(zip(_COLS, values, strict=False))
        if is_sealed(row["message"]):
            opened = None
            if self.cipher is not None:
                try:
                    opened = self.cipher.open(row["message"], MESSAGE_FIELD)
                except FieldSealError:
                    opened = None
            row["message"] = UNOPENED if opened is None else opened
        return row

    def _query(self, where, args, limit=None):
        sql = "SELECT %s FROM alarm_history %s ORDER BY raised_us, id" % (", ".join(_COLS), where)
        if limit is not None:
            sql += " LIMIT %d" % int(limit)
        with self._lock:
            return [self._row(r) for r in self._db.execute(sql, args).fetchall()]

    def since(self, alarm_id):
        """Occurrences after ``alarm_id`` (by id: the order they were raised in, whichever
        process raised them), oldest first."""
        sql = "SELECT %s FROM alarm_history WHERE id > ? ORDER BY id" % ", ".join(_COLS)
        with self._lock:
            return [self._row(r) for r in self._db.execute(sql, (int(alarm_id),)).fetchall()]

    def signature(self):
        """A text that changes whenever an occurrence is raised, cleared or acknowledged
        (by this process or another): what a live page polls to know it must redraw."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), max(id), max(coalesce(cleared_us, 0)), max(coalesce(acknowledged_us, 0))"
                " FROM alarm_history"
            ).fetchone()
        return "%s:%s:%s:%s" % row

    def get(self, alarm_id):
        """Occurrence ``alarm_id``'s row, or None when there is none."""
        with self._lock:
            return self._get(alarm_id)

    def banner(self, lines=None):
        """Occurrences still open or not yet acknowledged, oldest first: on ``lines`` and
        the whole box (line 0), or on any line (``lines`` None)."""
        where, args = _of_lines(lines)
        return self._query("WHERE (cleared_us IS NULL OR acknowledged_by IS NULL)" + where, args)

    def history(self, limit=500, lines=None, since_us=None, until_us=None):
        """The latest ``limit`` occurrences, newest first: on ``lines`` and the whole box
        (line 0), or on any line (``lines`` None); raised in [``since_us``, ``until_us``)
        (None: no bound)."""
        where, args = _of_lines(lines)
        if since_us is not None:
            where, args = where + " AND raised_us >= ?", (*args, int(since_us))
        if until_us is not None:
            where, args = where + " AND raised_us < ?", (*args, int(until_us))
        return list(
            reversed(
                self._query(
                    "WHERE id IN (SELECT id FROM alarm_history WHERE 1%s"
                    " ORDER BY raised_us DESC, id DESC LIMIT ?)" % where,
                    (*args, int(limit)),
                )
            )
        )

    def overlapping(self, kinds, start_us, end_us, lines=None):
        """Occurrences of ``kinds`` that were on at some time in [start_us, end_us) on
        ``lines`` (None: any): raised before its end and cleared after its start, or not
        cleared; oldest first. Raised long before the period counts (a line dead for a week)."""
        marks = ", ".join("?" * len(kinds))
        rows = self._query(
            "WHERE kind IN (%s) AND raised_us < ? AND (cleared_us IS NULL OR cleared_us > ?)" % marks,
            (*kinds, end_us, start_us),
        )
        return rows if lines is None else [r for r in rows if r["line"] in lines]

    def in_period(self, start_us, end_us, lines=None):
        """Occurrences raised in [start_us, end_us) on ``lines`` or the whole box (line 0)."""
        rows = self._query("WHERE raised_us >= ? AND raised_us < ?", (start_us, end_us))
        if lines is None:
            return rows
        return [r for r in rows if r["line"] == 0 or r["line"] in lines]


def _of_lines(lines):
    """The SQL (`` AND ...``) and its arguments that keep the occurrences on ``lines`` and
    those of the whole box (line 0); nothing to add for ``lines`` None (every line)."""
    if lines is None:
        return "", ()
    lines = tuple(int(n) for n in lines)
    return " AND line IN (%s)" % ", ".join("?" * (len(lines) + 1)), (0, *lines)


# How a right password's key slot failed (see :func:`raise_slot_tampered`).
SLOT_FAILURES = {
    "closed": "does not open",
    "inconsistent": "opened to grants that do not match the line keys",
}


def raise_slot_tampered(alarm_log, user, failure, wall_us=None):
    """Raise a ``key_tampered`` occurrence: ``user`` logged in with the right password
    (their account's hash accepted it) but their key slot in keystore.json failed
    (``failure``: a key of :data:`SLOT_FAILURES`). Audited by ``alarm_log`` like any alarm.

    :raises LinekeeperError: an unknown ``failure`` or a user name that is not short text
    """
    if failure not in SLOT_FAILURES:
        raise LinekeeperError("unknown key slot failure %r" % (failure,))
    if not isinstance(user, str) or not 0 < len(user) <= 64:
        raise LinekeeperError("a user name must be text of 1 to 64 characters")
    message = "%s logged in with the right password but their key slot %s: keystore.json was altered" % (
        user,
        SLOT_FAILURES[failure],
    )
    alarm_log.set("key_tampered", True, message=message, wall_us=wall_us)
    alarm_log.set("key_tampered", False, wall_us=wall_us)
