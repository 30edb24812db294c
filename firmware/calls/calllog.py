"""The call log: one row per call, in SQLite.

It listens on the event bus, so the supervisor never touches storage. Times
are stored as integer microseconds since the Unix epoch (UTC), with a flag
saying whether the clock was known to be synchronised when the call started.
Recordings have a table of their own (:mod:`firmware.recording.store`); the
recording policy's outcome is kept per call: ``policy_decision`` ("record",
"skip", "pending"), ``policy_reason`` (the rule, in words), ``consent`` (JSON:
the notice given, see :mod:`firmware.policy.consent`) and ``pause_spans``
(JSON: the PCI pauses) and ``key_times`` (JSON: when keys were pressed in
the connected call, which DTMF masking cut out of the recording; never which
key) and ``digits_withheld`` (digits keyed after a card number while still
dialling, a security code, were not kept: :mod:`firmware.policy.cards`); its tags are in ``call_tags``
(:mod:`firmware.policy.callmeta`). Digits keyed during a connected call are
never here.
"""

import datetime
import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from firmware import datadir
from firmware.bus import (
    Alarm,
    CallAnswerConfirmed,
    CallAnswered,
    CallAnswerWithdrawn,
    CallEnded,
    CallResumed,
    CallStarted,
    CallUpdated,
    EventBus,
)
from firmware.calls.supervisor import DIALLING_CUT, stored_number
from firmware.errors import LinekeeperError
from firmware.policy import cards
from firmware.policy.callmeta import SCHEMA as CALLMETA_SCHEMA
from firmware.recording.schema import SCHEMA as RECORDINGS_SCHEMA
from firmware.storage.fieldseal import CALL_FIELDS, opener, seal_call_log
from firmware.storage.fsutil import create_db_file

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
    key_times     TEXT,
    digits_withheld INTEGER
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
-- The calls whose caller's details are still here, by their end: the retention sweep's
-- selection (CallLog.details_due) reads only these, not the calls it emptied before.
CREATE INDEX IF NOT EXISTS calls_details_kept ON calls (ended_at)
    WHERE absence IS NULL OR absence NOT IN ('erased', 'expired');
"""

_FIELDS = (
    "number",
    "name",
    "cid_datetime",
    "cid_standard",
    "absence",
    "dial_method",
    "policy_decision",
    "policy_reason",
)
# What CallLog._write writes of a call, in the order of CallLog._state.
_COLUMNS = (
    "answered_at",
    "ended_at",
    "extension",
    "end_reason",
    "consent",
    "pause_spans",
    "key_times",
    "digits_withheld",
) + _FIELDS
# Where the recording decision is in CallLog._state.
_DECISION = _COLUMNS.index("policy_decision")
# Columns added after the first release: (name, type) added to older databases.
_ADDED = (
    ("policy_decision", "TEXT"),
    ("policy_reason", "TEXT"),
    ("consent", "TEXT"),
    ("pause_spans", "TEXT"),
    ("key_times", "TEXT"),
    ("digits_withheld", "INTEGER"),
)


log = logging.getLogger(__name__)

WRITE_ALARM = "call_log"
RETRY_US = 5_000_000  # while the card refuses writes, try again this often
# The box's call log commits at most once a second (the loss bound of a kill -9,
# docs/recovery.md): a call's states within that second reach the card as one write.
GROUP_COMMIT_US = 1_000_000
# How many calls' last written states are remembered, so that an event that changes
# nothing (the policy's word after a call's end, say) costs no commit.
WRITTEN_STATES = 64
# ``absence`` of a call whose caller's details were erased on request (the right to
# erasure): its number and name are gone, which is neither "withheld" nor "unavailable".
ERASED = "erased"
# ``absence`` of a call whose caller's details the retention sweep removed, past the
# period ``policy.retention.call_details_days`` (not at anyone's request).
EXPIRED = "expired"
# The condition of the index calls_details_kept, word for word (SQLite uses a partial
# index only for a query that names its condition).
_DETAILS_KEPT = "(absence IS NULL OR absence NOT IN ('erased', 'expired'))"
# Nothing of a call on legal hold, or whose recording is still kept, is removed.
_REMOVABLE = (
    "ended_at IS NOT NULL AND ended_at <= ? AND " + _DETAILS_KEPT + " AND "
    "NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.call_id = calls.id) AND "
    "NOT EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = calls.id)"
)


class DetailsNotErasable(LinekeeperError, ValueError):
    """A call's details cannot be erased (its message says why; nothing changed)."""


def migrate(db: sqlite3.Connection) -> None:
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
    :param readonly: open without writing anything (``linekeeper calls``)
    :param cipher: the box's :class:`~firmware.storage.fieldseal.FieldCipher`:
        numbers and names are sealed with it as they are written and opened
        as they are read (None: a box without the MCU vault keeps them in clear)
    :param commit_us: group commit: a call event is written at most this many
        µs (clock time) after it happened, together with every other event of
        that window, in one transaction (one WAL commit, one sync); states of a
        call that follow each other within the window collapse into one write.
        A kill -9 loses at most this window of call-log state (the box passes
        :data:`GROUP_COMMIT_US`). 0 writes at every event.
    :param holdup: the HAT's MCU warns of power cuts and the box syncs on a
        stretched interval (``holdup_flush_ms``, passed as ``commit_us``): a
        call's end waits for the group commit too, commits are not synced one
        by one (SQLite ``synchronous=NORMAL``, which WAL keeps free of
        corruption) and the write-ahead log is synced once per ``commit_us``
        when anything was committed to ``calls.db`` in it (by this log, or by
        the recordings store: :meth:`note_commit`); the power-fail seal and the
        stop sync it (:meth:`sync`). docs/holdup-writes.md
    :param country: ``() -> the box's country now``: the numbering plan an outbound
        call's number is judged in as it is written (its card numbers masked, a prefix
        such as ``141`` not part of it: :func:`firmware.calls.supervisor.stored_number`)

    A write the card refuses (full, read-only, I/O error) does not stop the
    box: the call stays in memory, an :class:`~firmware.recording.recorder.Alarm` of
    kind ``call_log`` goes on, and the call's whole current state is written
    at the next call event, every :data:`RETRY_US` meanwhile, or at
    :meth:`close`, once the card takes it again; the alarm then goes off.

    A call's id is given by the log itself, the moment the call starts, from
    the highest id the database has ever held or named (calls, recordings,
    deletion log): so a call whose INSERT the card refuses still has its id,
    its recording is bound to it (the recording's header, its key's wrap
    context and its row all name it) and the row is INSERTed with that very
    id once the card takes writes again. One box per data dir (the data-dir
    lock) keeps the ids its own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Any,
        readonly: bool = False,
        cipher: Any = None,
        commit_us: int = 0,
        holdup: bool = False,
        country: Callable[[], str] = lambda: "uk",
    ) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._country = country
        self._cipher = cipher
        self.commit_us = int(commit_us)
        self._commit_timer: Any = None  # the group commit due, while events wait for it
        self.commits = 0  # transactions written (the bench counts them)
        self.holdup = bool(holdup) and not readonly and self.commit_us > 0
        self.syncs = 0  # write-ahead log syncs made by sync() (holdup)
        self._unsynced = False  # holdup: calls.db has commits the card may not have yet
        self._lock = threading.RLock()  # an alarm's subscribers may log a call
        self._bus: EventBus | None = None
        self._pending: dict[int, Any] = {}  # id(call) -> call: states the card has not taken yet
        self._uninserted: dict[int, Any] = {}  # id(call) -> clock_synced: calls with an id but no row yet
        self._last_id = 0  # the highest call id given or ever held (see last_call_id)
        self._written: OrderedDict[int, tuple] = OrderedDict()  # call id -> state last committed
        # Calls whose details were erased or removed while this log ran: id -> their absence.
        self._erased: dict[int, str] = {}
        self._failing = False
        self._retry: Any = None  # the retry timer while writes fail
        if readonly:
            self._db = datadir.connect_readonly(self.path)
            return
        create_db_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        datadir.tune_wal(self._db)
        if self.holdup:
            self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)
        self._db.executescript(RECORDINGS_SCHEMA + CALLMETA_SCHEMA)
        self._last_id = last_call_id(self._db)

    def attach(self, bus: EventBus) -> None:
        """Start logging the calls published on ``bus`` (and raise its alarms there)."""
        self._bus = bus
        bus.subscribe(CallStarted, self._updated)
        bus.subscribe(CallAnswered, self._updated)
        # A provisional answer (a voice in ringback) confirmed, maybe re-dated, or taken
        # back (the caller's voice): its time written again, or cleared.
        bus.subscribe(CallAnswerConfirmed, self._updated)
        bus.subscribe(CallAnswerWithdrawn, self._updated)
        bus.subscribe(CallUpdated, self._updated)
        bus.subscribe(CallEnded, self._updated)
        # A silence-cleared call that goes on: the same row, its end cleared until it ends again.
        bus.subscribe(CallResumed, self._updated)

    def close(self) -> None:
        self.flush()
        if self.holdup:
            try:
                self.sync()
            except OSError as exc:
                log.error("cannot sync the call log at the stop: %s", exc)
        with self._lock:
            if self._commit_timer is not None:
                self._commit_timer.cancel()
                self._commit_timer = None
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
            if self._pending:
                log.error(
                    "%d call(s) could not be written to the call log before the stop", len(self._pending)
                )
            self._db.close()

    def seal_clear_fields(self):
        """Seal the numbers and names still in clear (written before this box sealed);
        returns how many calls (0 without a cipher). The migration of an older card."""
        if self._cipher is None:
            return 0
        with self._lock:
            return seal_call_log(self._db, self._cipher)

    @property
    def pending(self) -> int:
        """How many calls wait in memory for the card to take their latest state."""
        return len(self._pending)

    @property
    def waiting(self) -> bool:
        """Whether anything of ``calls.db`` is not on the card yet: call states in
        memory, or (holdup) commits whose write-ahead log is not synced."""
        return bool(self._pending) or self._unsynced

    def note_commit(self) -> None:
        """Another connection of this process (the recordings store) committed to
        ``calls.db`` without a sync (holdup): sync it within ``commit_us``, with the
        call log's own group commit."""
        with self._lock:
            self._unsynced = True
            self._arm()

    def sync(self) -> None:
        """Put every commit of ``calls.db`` on the card: its write-ahead log synced
        (holdup; at each group commit, the power-fail seal and the stop).

        :raises OSError: the sync failed
        """
        with self._lock:
            if not self._unsynced:
                return
            datadir.sync_wal(self.path)
            self._unsynced = False
            self.syncs += 1

    def _arm(self):
        if self.commit_us > 0 and self._bus is not None:
            if self._commit_timer is None and self._retry is None:
                self._commit_timer = self._clock.call_later(self.commit_us, self._commit_due)

    def _wall(self, t_us):
        return None if t_us is None else self._clock.wall_at(t_us)

    def _give_id(self, call):
        """A new call's id, the moment the log first hears of it (its row may come later)."""
        if call.id is None:
            self._last_id += 1
            call.id = self._last_id
            # Whether the clock was synchronised when the call started, not when the card took it.
            self._uninserted[id(call)] = int(self._clock.synchronised)

    def _updated(self, event):
        with self._lock:
            self._give_id(event.call)
            call = event.call
            if (
                id(call) not in self._pending
                and id(call) not in self._uninserted
                and self._written.get(call.id) == self._state(call)
            ):
                return  # the card has this very state already
            written = self._written.get(call.id)
            self._pending[id(event.call)] = event.call
            # A call's end is written at once (with whatever else waits): its recording is
            # being closed now, and a crash while it is must find the call ended. So is a
            # decision the policy changes once the call has ended (a call that ended during
            # its consent notice, or marked personal, is skipped then, and its recording
            # destroyed and audited as not kept): a crash in the group commit's window must
            # not find it "record". Not under a hold-up capacitor: the warning writes it,
            # and a crash without one costs the interval of everything (docs/holdup-writes.md).
            decided_after_end = call.ended_us is not None and (
                written is None or written[_DECISION] != call.policy_decision
            )
            waits = self.holdup or not (isinstance(event, CallEnded) or decided_after_end)
            if self.commit_us > 0 and self._bus is not None and waits:
                self._arm()
                return
        self.flush()

    def write_rows(self, also=None) -> bool:
        """Write what waits if a call has no row yet (else nothing): a recording about to
        name its call finds the call's row on the card.

        ``also``: ``(sql, params)``, a statement of another writer of ``calls.db``
        (a new recording's intent row, :meth:`RecordingStore.begin`), executed in
        the same transaction when there is something to write: one commit, and
        one sync of the log, for both. Returns True when ``also`` was committed
        here; False when nothing needed writing or the card refused (the caller
        then writes it itself).
        """
        with self._lock:
            if not self._uninserted:
                return False
            return self._flush(also)[1]

    def _commit_due(self):
        with self._lock:
            self._commit_timer = None
        self._flush_and_sync()

    def _flush_and_sync(self):
        """The group commit; under a hold-up capacitor the sync of the interval too."""
        if self.flush() and self.holdup:
            try:
                self.sync()
            except OSError as exc:  # tried again at the next commit, the seal, the stop
                log.error("cannot sync the call log: %s", exc)

    def flush(self) -> bool:
        """Write every call waiting in memory; returns True when none is left.

        Every waiting call is tried (the card may refuse one write and take
        the next); each keeps its id whether or not its row was written.
        """
        with self._lock:
            return self._flush()[0]

    def _flush(self, also=None):
        """:meth:`flush`, with ``also`` (see :meth:`write_rows`) in the first transaction;
        ``(none left, also committed)``."""
        with self._lock:
            refused = None
            # With ``also`` first; a refusal then may be its own: the calls alone again.
            also_done = also is not None and self._write_batch(list(self._pending), also)
            if not also_done and not self._write_batch(list(self._pending)):
                if len(self._pending) == 1:
                    refused = self._refusal
                else:  # one call at a time: the card may refuse one write and take the next
                    for key in list(self._pending):
                        if not self._write_batch([key]):
                            refused = refused or self._refusal
            if refused is not None:
                error = datadir.storage_error(refused, "the call log cannot be written")
                if not self._failing:
                    self._failing = True
                    self._alarm(
                        True, "%s; %d call(s) kept in memory until it can" % (error, len(self._pending))
                    )
                else:
                    log.warning("%s", error)
                if self._retry is None and self._bus is not None:
                    self._retry = self._clock.call_later(RETRY_US, self._retry_now)
                return False, also_done
            if self._failing:
                self._failing = False
                self._alarm(False, "the call log is written again")
            if self._unsynced:
                self._arm()  # synced within the window (holdup)
            return True, also_done

    def _write_batch(self, keys, also=None):
        """Write the waiting calls ``keys`` in one transaction (one commit, one sync: a
        new call's row and its state, or every call of the group), and the statement
        ``also`` after them (:meth:`write_rows`); False when the card refused it (nothing
        of it written, the calls still waiting, the error in ``_refusal``)."""
        if not keys:
            return also is None  # ``also`` only goes with the calls' rows
        uninserted = dict(self._uninserted)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                states = [(self._pending[key], self._write(self._pending[key])) for key in keys]
                if also is not None:
                    self._db.execute(*also)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._uninserted = uninserted  # their INSERTs were rolled back with the rest
            self._refusal = exc
            return False
        self.commits += 1
        self._unsynced = self._unsynced or self.holdup
        for key in keys:
            del self._pending[key]
        for call, state in states:
            self._remember(call, state)
        return True

    def _state(self, call):
        """What :meth:`_write` writes of ``call`` (in clear), to tell whether it changed."""
        if call.id in self._erased:  # a late event of the call never writes them back
            fields = tuple(
                self._erased[call.id]
                if f == "absence"
                else None
                if f in CALL_FIELDS
                else cards.scrub(getattr(call, f, None))
                for f in _FIELDS
            )
        else:
            fields = tuple(
                stored_number(call, self._country()) if f == "number" else cards.scrub(getattr(call, f, None))
                for f in _FIELDS
            )
        if dialling(call):
            fields = tuple(None if f == "number" else v for f, v in zip(_FIELDS, fields, strict=True))
        return (
            call.answered_us,
            call.ended_us,
            int(call.extension),
            call.end_reason,
            _json(getattr(call, "consent", None)),
            _json(getattr(call, "pause_spans", None) or None),
            _json(getattr(call, "key_times", None) or None),
            int(getattr(call, "digits_withheld", False)),
        ) + fields

    def _remember(self, call, state):
        self._written[call.id] = state
        self._written.move_to_end(call.id)
        while len(self._written) > WRITTEN_STATES:
            self._written.popitem(last=False)

    def _retry_now(self):
        with self._lock:
            self._retry = None
        self._flush_and_sync()

    def _write(self, call):
        """Write ``call``'s whole current state; its first write gives it its id.
        Returns the state written (:meth:`_state`).

        :raises sqlite3.Error: the card refused (the call keeps its id)
        """
        self._give_id(call)
        if id(call) in self._uninserted:
            self._db.execute(
                "INSERT INTO calls (id, line, direction, started_at, clock_synced) VALUES (?, ?, ?, ?, ?)",
                (call.id, call.line, call.direction, self._wall(call.started_us), self._uninserted[id(call)]),
            )
            del self._uninserted[id(call)]
        state = self._state(call)
        n = len(state) - len(_FIELDS)
        values = [self._wall(state[0]), self._wall(state[1])] + list(state[2:n])
        # PCI DSS: a card number keyed into the dialled number is never stored (scrubbed in _state).
        values += [self._seal(value, f) for value, f in zip(state[n:], _FIELDS, strict=True)]
        # Only the columns that changed since the card took this call's last state: an
        # index (the search's, on the number) is rewritten only when its column changes.
        last = self._written.get(call.id)
        changed = [k for k in range(len(state)) if last is None or last[k] != state[k]]
        if changed:
            self._db.execute(
                "UPDATE calls SET %s WHERE id = ?" % ", ".join("%s = ?" % _COLUMNS[k] for k in changed),
                [values[k] for k in changed] + [call.id],
            )
        return state

    def _seal(self, value, field):
        if self._cipher is None or field not in CALL_FIELDS:
            return value
        return self._cipher.seal(value, field)

    def _alarm(self, active, message):
        log.warning("alarm %s %s: %s", WRITE_ALARM, "on" if active else "off", message)
        if self._bus is not None:
            self._bus.publish(
                Alarm(line=0, t_us=self._clock.now_us(), kind=WRITE_ALARM, active=active, message=message)
            )

    def erase_details(self, call_id: int) -> int:
        """Erase call ``call_id``'s caller's details (the right to erasure): its number
        and name gone (NULL), ``absence`` :data:`ERASED`; its times, line, direction and
        policy outcome kept. With ``secure_delete`` the old row's and index entries'
        bytes are overwritten, and the write-ahead log is checkpointed and truncated, so
        ``calls.db`` keeps no copy of the sealed values (each is the same for every call
        of that number, so a copy left would still link the calls). The trigram indexes
        (a box that does not seal) follow by their triggers and are merged, so none of
        the call's old postings is left in their pages.

        Returns the call's start (wall µs): what the scheduled reports made before, and
        waiting in the mail queue, may have named the caller for (:mod:`firmware.mail.schedule`).

        :raises DetailsNotErasable: no such call, still going on, or already erased
        :raises sqlite3.Error: the card refused (nothing changed)
        """
        with self._lock:
            self.flush()
            row = self._db.execute(
                "SELECT ended_at, absence, started_at FROM calls WHERE id = ?", (call_id,)
            ).fetchone()
            if row is None:
                raise DetailsNotErasable("there is no call %d in the call log" % call_id)
            if row[0] is None:
                raise DetailsNotErasable(
                    "call %d is still going on: erase the caller's details once it has ended" % call_id
                )
            if row[1] == ERASED:
                raise DetailsNotErasable("the caller's details of call %d were erased already" % call_id)
            self._erased[call_id] = ERASED
            self._written.pop(call_id, None)
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE calls SET number = NULL, name = NULL, absence = ? WHERE id = ?", (ERASED, call_id)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._erased.pop(call_id, None)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self.commits += 1
            busy = self._merge_and_checkpoint()
        if busy:
            log.warning("calls.db checkpoint was busy: the erased details stay in its WAL until the next one")
        return int(row[2])

    def details_due(
        self, ended_by_us: int, after: tuple[int, int] = (0, 0), limit: int = 500
    ) -> list[tuple[int, int]]:
        """``[(ended_at, call_id)]`` of the calls whose caller's details the retention sweep
        removes now: ended by ``ended_by_us`` (wall µs), not erased or removed already, not on
        legal hold and with no recording kept (its header holds the same details). In order
        of their end, from after ``after`` (the last of the batch before), at most ``limit``.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT ended_at, id FROM calls WHERE " + _REMOVABLE + " AND (ended_at, id) > (?, ?)"
                " ORDER BY ended_at, id LIMIT ?",
                (ended_by_us, after[0], after[1], limit),
            ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    def expire_details(self, call_ids: Sequence[int], ended_by_us: int) -> list[int]:
        """Remove the caller's details of the calls ``call_ids`` (a batch of
        :meth:`details_due`), past the retention period: number and name gone (NULL),
        ``absence`` :data:`EXPIRED`, in one transaction with ``secure_delete`` on, as an
        erasure writes them; a call placed on hold, or ended after ``ended_by_us``,
        since it was chosen is left. Returns the ids removed. The write-ahead log is
        checkpointed by :meth:`finish_expiry`, once a sweep's batches are done.

        :raises sqlite3.Error: the card refused (nothing of the batch changed)
        """
        ids = [int(i) for i in call_ids]
        if not ids:
            return []
        with self._lock:
            self.flush()
            marks = ",".join("?" * len(ids))
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = [
                    int(r[0])
                    for r in self._db.execute(
                        "SELECT id FROM calls WHERE id IN (%s) AND %s" % (marks, _REMOVABLE),
                        ids + [ended_by_us],
                    )
                ]
                if done:
                    self._db.execute(
                        "UPDATE calls SET number = NULL, name = NULL, absence = ? WHERE id IN (%s)"
                        % ",".join("?" * len(done)),
                        [EXPIRED] + done,
                    )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self.commits += 1
            for call_id in done:
                self._erased[call_id] = EXPIRED
                self._written.pop(call_id, None)
        return done

    def finish_expiry(self) -> None:
        """After :meth:`expire_details`: the trigram indexes merged and the write-ahead log
        checkpointed and truncated, as after an erasure (:meth:`erase_details`)."""
        with self._lock:
            busy = self._merge_and_checkpoint()
        if busy:
            log.warning(
                "calls.db checkpoint was busy: the removed details stay in its WAL until the next one"
            )

    def started_of(self, call_ids: Sequence[int]) -> list[int]:
        """When each of ``call_ids`` that is in the log started (wall µs), in no order."""
        return self._of_ids("SELECT started_at FROM calls WHERE id IN (%s)", call_ids)

    def expired_of(self, call_ids: Sequence[int]) -> list[int]:
        """Which of ``call_ids`` had their caller's details removed by retention."""
        return self._of_ids("SELECT id FROM calls WHERE absence = ? AND id IN (%s)", call_ids, [EXPIRED])

    def _of_ids(self, sql: str, call_ids: Sequence[int], args: Sequence[Any] = ()) -> list[int]:
        """The first column of ``sql`` (its ``%s`` the ids' places, after ``args``) over
        ``call_ids``, 500 at a time (a statement's parameters stay few)."""
        ids = [int(i) for i in call_ids]
        found: list[int] = []
        with self._lock:
            for at in range(0, len(ids), 500):
                part = ids[at : at + 500]
                rows = self._db.execute(sql % ",".join("?" * len(part)), list(args) + part)
                found += [int(r[0]) for r in rows]
        return found

    def _merge_and_checkpoint(self) -> int:
        """Merge the trigram indexes and checkpoint; returns SQLite's busy flag."""
        # A box that does not seal keeps trigram indexes of the clear numbers and
        # names, and FTS5 keeps a changed row's old postings (the number can be
        # spelled again from them) until its segments merge: merged now, into pages
        # secure_delete zeroes. Seconds on a call log of a million calls; erasure is rare
        # (and the retention sweep's removal merges once a sweep, not once a batch).
        for table in ("calls_number_fts", "calls_name_fts"):
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                self._db.execute("INSERT INTO %s (%s) VALUES ('optimize')" % (table, table))
        return int(self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])

    def close_open(self, reason: str, ended_at: int | None = None) -> list[int]:
        """End every call the log still has open; returns their ids.

        ``ended_at`` (wall µs) is when; None takes each call's last evidence:
        the latest of its start, its answer and the end of the audio its
        recordings hold (their last sealed chunk, as recovery counted it).
        """
        last_evidence = (
            "max(started_at, coalesce(answered_at, 0), coalesce((SELECT max(r.started_at +"
            " CAST(round(coalesce(r.duration_s, 0) * 1000000) AS INTEGER)) FROM recordings r"
            " WHERE r.call_id = calls.id), 0))"
        )
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM calls WHERE ended_at IS NULL ORDER BY id")]
            if ids:
                self._db.execute(
                    "UPDATE calls SET ended_at = %s, end_reason = ? WHERE ended_at IS NULL"
                    % ("?" if ended_at is not None else last_evidence),
                    ((ended_at, reason) if ended_at is not None else (reason,)),
                )
                if self.holdup:
                    self._unsynced = True
                    self._arm()
        return ids

    def calls(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Calls as dicts in the documented JSON shape, oldest first."""
        sql = CALL_ROWS + " ORDER BY calls.started_at, calls.id"
        args: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args = (limit, offset)
        return self._calls_json(sql, args)

    def calls_of(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The calls ``ids`` in the shape :meth:`calls` gives them, oldest first; an id
        the log does not hold is left out. For a list a search chose
        (:class:`~firmware.calls.callsearch.CallSearch` finds ids; this gives each call
        as ``linekeeper calls`` prints it)."""
        out: list[dict[str, Any]] = []
        ids = sorted({int(i) for i in ids})
        for start in range(0, len(ids), 500):  # SQLite's limit on a statement's parameters
            batch = tuple(ids[start : start + 500])
            out += self._calls_json(CALL_ROWS + " WHERE calls.id IN (%s)" % ",".join("?" * len(batch)), batch)
        out.sort(key=lambda call: (call["started_at"], call["id"]))
        return out

    def _calls_json(self, sql: str, args: tuple[int, ...]) -> list[dict[str, Any]]:
        """The calls ``sql`` (:data:`CALL_ROWS` and its conditions) selects, as :meth:`calls`
        gives them."""
        self.flush()  # the states still waiting for their group commit, too
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=False)) for row in cur.fetchall()]
            gone = deleted_recordings(self._db, [r["id"] for r in rows if r["recording"] is None])
        out = []
        for row in rows:
            call = call_json(row, self._cipher)
            if row["id"] in gone:
                call["recording"] = "deleted"
                call["recording_deleted"] = gone[row["id"]]
            out.append(call)
        return out


def deleted_recordings(db: sqlite3.Connection, call_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """``{call_id: {"at", "rule", "reason"}}``: the latest recording the box deleted
    (by retention, overwrite or erasure) of each of ``call_ids``, from the deletion log if
    there is one; the archive's deletion of its copy (reason ``archive``) only where the
    log holds nothing else of the call."""
    if (
        not call_ids
        or db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deletion_log'").fetchone()
        is None
    ):
        return {}
    found = {}
    for start in range(0, len(call_ids), 500):
        batch = call_ids[start : start + 500]
        for call_id, at, rule, reason in db.execute(
            "SELECT call_id, deleted_at, rule, reason FROM deletion_log WHERE call_id IN "
            "(%s) ORDER BY seq" % ",".join("?" * len(batch)),
            batch,
        ):
            if reason == "archive" and call_id in found:
                continue  # the archived copy followed the box's own deletion: that says why
            found[call_id] = {"at": iso_ms(at), "rule": rule, "reason": reason}
    return found


def details_preview(db: sqlite3.Connection, ended_by_us: int) -> tuple[int, int]:
    """``(due, waiting)``: of the calls ended by ``ended_by_us`` (wall µs) whose caller's
    details are still in the call log open as ``db``, how many a sweep would remove now
    (:meth:`CallLog.details_due`), and how many wait for their recording to go or their
    legal hold to be released. The Retention page's preview."""
    (due,) = db.execute("SELECT count(*) FROM calls WHERE " + _REMOVABLE, (ended_by_us,)).fetchone()
    (ended,) = db.execute(
        "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL AND ended_at <= ? AND " + _DETAILS_KEPT,
        (ended_by_us,),
    ).fetchone()
    return int(due), int(ended) - int(due)


def last_call_id(db):
    """The highest call id the database at ``db`` holds or names anywhere: the
    AUTOINCREMENT sequence, the calls, and the recordings and deletion-log rows
    that name a call (of a call whose row the card never took, before a crash).
    A new call's id is the next one, never one used before."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    found = [r[0] for r in db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'calls'")]
    for table, column in (("calls", "id"), ("recordings", "call_id"), ("deletion_log", "call_id")):
        if table in tables:
            found.append(db.execute("SELECT max(%s) FROM %s" % (column, table)).fetchone()[0])
    return max((int(n) for n in found if n is not None), default=0)


def iso_ms(wall_us: int | None) -> str | None:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-03-02T09:00:02.000Z``."""
    if wall_us is None:
        return None
    t = datetime.datetime.fromtimestamp(wall_us // 1000 / 1000, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


# The rows :func:`call_json` takes: each call with its latest recording's state and
# length, if it has one, and its tags. A WHERE clause after it names ``calls.`` columns.
CALL_ROWS = (
    "SELECT calls.*, r.state AS recording, r.duration_s AS recording_duration_s,"
    " (SELECT group_concat(tag, ',') FROM (SELECT tag FROM call_tags"
    "  WHERE call_id = calls.id ORDER BY tag)) AS tags"
    " FROM calls LEFT JOIN recordings r ON r.id = (SELECT id FROM recordings"
    " WHERE call_id = calls.id ORDER BY started_at DESC LIMIT 1)"
)


def call_json(row: dict[str, Any], cipher: Any = None) -> dict[str, Any]:
    """The public JSON shape of a call-log row; ``cipher`` opens its sealed fields
    (:mod:`firmware.storage.fieldseal`)."""
    open_ = opener(cipher)
    talk_us = (
        row["ended_at"] - row["answered_at"]
        if row["answered_at"] is not None and row["ended_at"] is not None
        else None
    )
    return {
        "id": row["id"],
        "line": row["line"],
        "direction": row["direction"],
        "started_at": iso_ms(row["started_at"]),
        "answered_at": iso_ms(row["answered_at"]),
        "ended_at": iso_ms(row["ended_at"]),
        "answered": row["answered_at"] is not None,
        "number": open_(row["number"], "number"),
        "name": open_(row["name"], "name"),
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
        "key_times": _loads(_optional(row, "key_times")) or [],
        "digits_withheld": bool(_optional(row, "digits_withheld")),
        "tags": (_optional(row, "tags") or "").split(",") if _optional(row, "tags") else [],
    }


def dialling(call):
    """Whether ``call`` is still being dialled: its number is not written yet (PCI DSS).

    A card number keyed straight on after the number joins it until its last digit
    makes it one (the supervisor masks it then, :mod:`firmware.policy.cards`): a number
    written meanwhile would hold the card's first digits, and the search index of
    numbers keeps what a row held before (an FTS5 table deletes by marker). So an
    outbound call's number is written once the dialling is over: answered, the far
    end heard ringing (nothing joins the number after either), the box no longer
    hearing the line (a power-fail seal, a stop: :data:`DIALLING_CUT`) or ended.
    """
    notes = getattr(call, "notes", None) or ()
    return (
        call.direction == "out"
        and call.answered_us is None
        and call.ended_us is None
        and "ringback" not in notes
        and DIALLING_CUT not in notes
    )


def _optional(row, key):
    return row[key] if key in row.keys() else None


def _json(value):
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text):
    return None if text is None else json.loads(text)


def dumps(call: dict[str, Any]) -> str:
    return json.dumps(call, separators=(", ", ": "))
