"""The recordings' catalogue, their recovery after a crash, verification and export.

Each recording is one encrypted segment file under ``DATA_DIR/recordings/``
and one row in the ``recordings`` table of the call log's database. The row
holds the recording's data key wrapped to the box's recording public key;
deleting a recording destroys that row (with ``secure_delete`` on, SQLite
overwrites it) as well as the file — crypto-shredding, since overwriting
flash does not erase it.

Order of writes for a new recording: the intent row (state ``recording``,
wrapped key) is committed, then the file is created, then every chunk is
appended and synced; at the end the row is set ``complete`` with the
duration, size and SHA-256 of the file. (The one exception: a database that
refuses the intent row with an I/O error, not for want of space; the recorder
then records on and writes the row later, docs/call-log-faults.md.) At start-up :meth:`RecordingStore.recover`
finishes what a crash cut: every row still ``recording`` becomes ``partial``
(playable up to its last whole chunk, with that duration), and files with
no row are moved to ``DATA_DIR/quarantine/`` (never deleted: the box raises
an alarm and audits it; see docs/recovery.md).

What is checked (:meth:`RecordingStore.verify`, and before every export):
without the key, each finished file against the size and SHA-256 in its
row; with the key, every chunk's authentication and place in the stream,
and that a ``complete`` recording ends with its final chunk. A partial
recording has no final chunk to miss when a crash cut it (one stopped at
the disk reserve is sealed), and its last record may be a torn write that
fails authentication: so only its row tells how long it was, and someone
who rewrites the row too can cut its end unnoticed.
"""

import contextlib
import hashlib
import itertools
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from firmware import datadir, evidence
from firmware.calls.calllog import SCHEMA as CALLS_SCHEMA
from firmware.errors import LinekeeperError, LineKeyLostError, NotGrantedError, TamperError
from firmware.policy import callmeta, deletions
from firmware.recording import codec, journal
from firmware.recording.journal import Journal, journal_path
from firmware.recording.schema import SCHEMA
from firmware.recording.segment import SegmentReader, _read_header, inspect
from firmware.storage import crypto, fsutil
from firmware.storage.keystore import RecordingKey

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"  # where files nothing accounts for are moved, never deleted
# Beside calls.db: destructions the call log refused to record (note_discard), for the next start.
PENDING_DISCARDS = "discards-pending.json"
NO_CALL_LOG = object()  # RecordingStore.call_row's answer where there is no calls table
RECORDING_SUFFIX = ".lkrec"
KEY_COPY_SUFFIX = ".lkkey"  # a recording's wrapped data key, outside its sealed header (docs/FORMAT.md)
# A recording's call as the call log holds it once recording ended, where the sealed header
# (written as recording began) could not have it: the number's last digits (docs/FORMAT.md).
CALL_COPY_SUFFIX = ".lkcall"
# A recording's own files in recordings/: the file, its key copy and its call copy.
_RECORDING_FILES = (RECORDING_SUFFIX, KEY_COPY_SUFFIX, CALL_COPY_SUFFIX)
CALL_COPY_FORMAT, CALL_COPY_VERSION = "linekeeper-call-copy", 1
# Why a recording removed while in progress went (its recording_deleted audit entry), unless
# the caller says otherwise: it turned out not to be a call, or never got a file.
NOT_A_RECORDING = "not a recording"

# What the retention clock guard keeps across restarts (firmware.policy.clockguard).
RETENTION_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS retention_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"""

# Finished recordings whose call started at or before a time, held or not (the %s:
# "" or "NOT"), oldest call first, with their call's line, direction and tags.
_FINISHED = """
SELECT r.id, r.call_id, c.line, c.direction, c.started_at, r.duration_s, r.bytes, r.sha256,
       (SELECT group_concat(tag, ',') FROM call_tags t WHERE t.call_id = r.call_id)
FROM recordings r JOIN calls c ON c.id = r.call_id
WHERE r.state IN ('complete', 'partial') AND c.started_at <= ?
  AND %s EXISTS (SELECT 1 FROM legal_holds h WHERE h.call_id = r.call_id)
ORDER BY c.started_at, r.id
"""

_NO_LATER = 1 << 62  # µs: later than any call


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    """Whether ``db`` has table ``name`` (a store's database may have no call log: tests, tools)."""
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        is not None
    )


def _on_hold(db: sqlite3.Connection, recording_id: str, call_id: int | None) -> bool:
    """Whether recording ``recording_id``'s call (its row's, else ``call_id``) is on legal
    hold, in ``db``'s transaction. A database with no ``legal_holds`` table (no policy
    has run on it: tests, tools) holds nothing."""
    if not _has_table(db, "legal_holds"):
        return False
    row = db.execute(
        "SELECT 1 FROM legal_holds WHERE call_id = "
        "coalesce((SELECT call_id FROM recordings WHERE id = ?), ?)",
        (recording_id, call_id),
    ).fetchone()
    return row is not None


# Why the start's replay of the recording journal found a file as it did (the ``cause``
# of its ``recording_replayed`` audit entry; firmware.words.REPLAY_CAUSES says them).
NOT_A_CUT = frozenset({"clean_stop", "gap", "card_error"})  # no power cut or crash leaves these: an alarm


def replay_cause(found, state, stopped_cleanly):
    """Why a file the replay changes was as it found it (``found``: its details from
    :func:`~firmware.recording.journal.compare`; ``state``: its row's).

    ``card_error``: the card would not read the file (an I/O error): no cut does that.
    ``gap``: the file ends before the first byte the journal holds for it; the bytes
    between were on the card before that (synced when the journal last wrapped round,
    or chunk by chunk under a hold-up capacitor), so no cut took them. ``clean_stop``:
    the last run stopped cleanly, its journal's close synced the file whole, and it
    is now missing, shorter or different. ``card_refused``: after a clean stop too, but
    the recording was left unfinished (the card refused its writes: the
    ``recording_failed`` alarm says so). ``power_cut``: what a power cut or crash
    leaves, the writes not yet on the card lost.
    """
    if found.get("file_was") == "unreadable":
        return "card_error"
    size = found.get("file_bytes")
    if size is not None and size < found["journal_from"]:
        return "gap"
    if not stopped_cleanly:
        return "power_cut"
    if state in ("recording", "partial"):
        return "card_refused"
    return "clean_stop"


@dataclass(frozen=True)
class FinishedRecording:
    """A finished (complete or partial) recording as retention sees it.

    ``started_at``: its call's start (µs since the epoch, UTC); ``categories``:
    its call's tags, sorted; ``duration_s``, ``bytes`` and ``sha256`` as its row
    says (None where the row has none).
    """

    recording_id: str
    call_id: int
    line: int
    direction: str
    started_at: int
    duration_s: float | None
    bytes: int | None
    sha256: str | None
    categories: tuple[str, ...]


class RecordingStore:
    """The ``recordings`` table beside the call log, and the files it names.

    :param data_dir: the box's data directory
    :param readonly: open without writing anything (``verify``, ``export``):
        a full or read-only card can still be inspected
    :param signer: the device :class:`~firmware.signing.Signer`: every
        recording is signed as it is sealed or recovered (see
        :mod:`firmware.evidence`); None signs nothing
    :param verify_key: the device public key that :meth:`verify`, playback
        and export check signatures with (default: the signer's; None checks none)
    :param on_audit: ``fn(action, recording_id, details)``, called as a
        recording is created, sealed, recovered or deleted (the box audits them)
    :param before_begin: ``fn(row)``, called before a new recording's row is
        committed: the box writes the call log's waiting states (its group
        commit), so that a call's row is on the card before a recording names it;
        ``row`` is the intent row's ``(sql, params)``, which ``fn`` may commit in
        the same transaction (returning True: one commit and one sync for both,
        :meth:`CallLog.write_rows`), else it is committed here
    :param holdup: the HAT's MCU warns of power cuts and the box syncs on a
        stretched interval (``holdup_flush_ms``): the commits of a recording's
        end (its state, signature and speech spans) are not synced one by one
        (SQLite ``synchronous=NORMAL``, which WAL keeps free of corruption);
        ``on_commit()`` is called after each, and the call log syncs the
        write-ahead log they share within its interval, at the warning and at
        the stop (docs/holdup-writes.md). Its intent row is committed
        unsynced too: its file is created only at its first chunk, after
        :meth:`before_file` synced the call log. Every other write (retention,
        rekey) is synced as it is made.
    :param on_commit: ``fn()`` after each such unsynced commit (holdup)
    :param sync_commits: ``fn()`` that syncs the commits announced to
        ``on_commit`` if any wait (the call log's ``sync``; holdup); default
        :meth:`sync`
    :raises StorageError: the database cannot be opened
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        readonly: bool = False,
        *,
        signer: Any = None,
        verify_key: bytes | None = None,
        on_audit: Callable[[str, str | None, dict[str, Any]], None] | None = None,
        before_begin: Callable[[tuple[str, tuple[Any, ...]]], bool] | None = None,
        holdup: bool = False,
        on_commit: Callable[[], Any] | None = None,
        sync_commits: Callable[[], Any] | None = None,
    ) -> None:
        self.data_dir = os.fspath(data_dir)
        self.signer = signer
        self.verify_key = verify_key if verify_key is not None or signer is None else (signer.public_key)
        # The box's field cipher, when it has one: compares a call's sealed number with
        # a header written in clear before sealing began (evidence.binding_problems).
        self.field_cipher = None
        # Line -> (wall µs, audit entry) of the last `keystore restore` of a backup without
        # that line's key: a recording of the line begun before it that does not open was
        # made with a key no copy holds (LineKeyLostError), not known to be altered.
        self.keys_lost: dict[int, tuple[int, int]] = {}
        # Where :attr:`keys_lost` is read again when a key does not open (a running box, the
        # web UI: a key store put back while they run), e.g. ``keybackup.keys_lost(audit)``.
        self.keys_lost_from: Callable[[], dict[int, tuple[int, int]]] | None = None
        self._on_audit = on_audit
        self._before_begin = before_begin
        self.dir = os.path.join(self.data_dir, "recordings")
        self.quarantine_dir = os.path.join(self.data_dir, QUARANTINE)
        self._lock = threading.RLock()  # re-entrant: the deletion log runs in transactions
        self.readonly = readonly
        self.holdup = holdup and not readonly
        self._on_commit = on_commit
        self._sync_commits = sync_commits or self.sync
        self.journal: Journal | None = None  # the shared Journal, once open_journal() opened it
        self.replayed: dict[str, Any] = {}  # what recover() replayed from the journal
        self.resealed: list[tuple[str, float]] = []  # recordings it finished again (_reseal)
        # Files the replay changed that no power cut or crash explains (replay_journal).
        self.rewritten: list[tuple[str, dict[str, Any]]] = []
        path = os.path.join(self.data_dir, "calls.db")
        if readonly:
            self._db = datadir.connect_readonly(path)
            self.deletions = deletions.DeletionLog(self._db, self._lock, path)
            return
        os.makedirs(self.dir, mode=fsutil.data_mode(directory=True), exist_ok=True)
        fsutil.create_db_file(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        datadir.tune_wal(self._db)
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)
        self._add_rekey_column()
        #: The deletion log: what retention destroyed, appended by :meth:`destroy_rows`.
        self.deletions = deletions.DeletionLog(self._db, self._lock, path)
        if signer is not None:
            self._add_signatures()

    def _add_signatures(self):
        """Give the table its signature column, signing what is finished (once, at upgrade).

        Recordings sealed before signatures existed are signed as they stand
        when this firmware first runs; from then on every recording is signed
        as it is sealed, and an unsigned one fails :meth:`verify`.
        """
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(recordings)")}
        if "signature" in columns:
            return
        self._db.execute("ALTER TABLE recordings ADD COLUMN signature BLOB")
        for row in self.all():
            if row["state"] in ("complete", "partial"):
                self.sign(row["id"])
        self._audit(
            "recording_signed_at_upgrade",
            None,
            {"recordings": sum(r["state"] in ("complete", "partial") for r in self.all())},
        )

    def _add_rekey_column(self):
        """The column `rekey` puts each recording's data key wrapped to the next keys in
        (docs/FORMAT.md): while it runs, either the old or the new key store opens every row.
        Also ``discard_why``: why a recording whose destruction is decided goes
        (:meth:`unname_file`), for the start that finishes one a crash cut short to say."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(recordings)")}
        if "wrapped_key_next" not in columns:
            self._db.execute("ALTER TABLE recordings ADD COLUMN wrapped_key_next BLOB")
        if "discard_why" not in columns:
            self._db.execute("ALTER TABLE recordings ADD COLUMN discard_why TEXT")

    def close(self):
        with self._lock:
            if self.holdup:
                self.sync()
            self._db.close()
            if self.journal is not None:
                try:
                    self.journal.close()
                except OSError as exc:
                    log.error(
                        "cannot sync the recordings sealed since the journal last wrapped round: %s"
                        " (the journal keeps them for the next start)",
                        exc,
                    )
                self.journal = None

    def sync(self) -> None:
        """Put every commit of the call log's database on the card (its write-ahead log
        synced): what a stretched sync (``holdup``) left in the page cache, at the MCU's
        power-fail warning and at the stop.

        :raises OSError: the sync failed
        """
        datadir.sync_wal(os.path.join(self.data_dir, "calls.db"))

    def before_file(self) -> None:
        """Put every commit waiting for its sync on the card before a new recording file
        appears (holdup): its intent row then always precedes it there. A sync that
        fails is logged, and the file is created all the same: the audio matters more,
        and ``linekeeper repair`` rebuilds a missing row from the file's header."""
        try:
            self._sync_commits()
        except OSError as exc:
            log.error("cannot sync the call log before a new recording file: %s", exc)

    @contextlib.contextmanager
    def _unsynced(self):
        """A write of a recording's end: under a hold-up capacitor committed without a
        sync and announced to ``on_commit`` (the call log syncs it within its interval)."""
        with self._lock:
            if not self.holdup or self._db.in_transaction:
                # (inside a caller's transaction its commit decides: SQLite refuses the switch)
                yield
                return
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                yield
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
        if self._on_commit is not None:
            self._on_commit()

    def open_journal(self, fsync=True):
        """Open the shared recording journal for writing (after :meth:`recover` replayed it).

        :raises OSError: it cannot be created
        """
        if self.journal is None:
            self.journal = Journal(journal_path(self.data_dir), fsync=fsync)
        return self.journal

    def replay_journal(self, stopped_cleanly=False):
        """Put what the journal holds into the recording files, then empty it.

        Runs before :meth:`recover` counts the chunks: a crash leaves the last
        second of every line in the journal only. Returns ``{recording_id:
        bytes replayed}``. :raises OSError: a file cannot be written

        Each file it changes is audited first (``recording_replayed``: what it found,
        :func:`~firmware.recording.journal.compare`, and its ``cause``,
        :func:`replay_cause`); those no power cut or crash explains are kept in
        :attr:`rewritten` (``[(recording_id, details)]``), for the box's alarm.
        ``stopped_cleanly``: the last run stopped cleanly, its journal closed, which
        synced every file with records in it.
        """
        path = journal_path(self.data_dir)
        with self._lock:
            rows = {
                r[0]: (r[1], r[2])
                for r in self._db.execute(
                    "SELECT id, wrapped_key, state FROM recordings"
                    " WHERE state != 'deleted' AND file = id || ?",
                    (RECORDING_SUFFIX,),
                )
            }
            for gone in deleted_ids(self._db):
                rows.pop(gone, None)
            # Their destruction decided (unname_file), a crash or a refusing card before it
            # was done: their writers dropped what their files had not got, and recover()
            # destroys them. Written into now, they would be audited as replayed (after a
            # clean stop, as rewritten by no cut), for nothing.
            doomed = {
                r[0]
                for r in self._db.execute("SELECT id FROM recordings WHERE state = 'recording' AND file = ''")
            }
        wanted = {rid: wrapped for rid, (wrapped, _) in rows.items()}
        self.rewritten.clear()

        def audit_found(found):
            for recording_id, details in found.items():
                state = rows[recording_id][1] if recording_id in rows else None
                details = dict(details, cause=replay_cause(details, state, stopped_cleanly))
                # On the card before the file changes: a cut in between leaves the entry.
                self._audit("recording_replayed", recording_id, details)
                if details["cause"] in NOT_A_CUT:
                    self.rewritten.append((recording_id, details))

        done = journal.replay(
            path,
            self.dir,
            RECORDING_SUFFIX,
            may_create=wanted.__contains__,
            before_write=audit_found,
            doomed=doomed.__contains__,
        )
        for recording_id in done:
            # Created and sealed with no sync of its own, a file's key copy may be
            # missing or empty after a power cut: made again from its row.
            wrapped = wanted.get(recording_id)
            copy = self.key_copy_path(recording_id)
            if wrapped and (not os.path.exists(copy) or os.path.getsize(copy) != len(wrapped)):
                self.write_key_copy(recording_id, wrapped)
        self.resealed = self._reseal(done)
        journal.reset(path)
        return done

    def _reseal(self, replayed):
        """Finish again, on the file the replay made, each ``partial`` recording whose
        writes the card refused after the journal had taken them: its seal (an I/O
        error on the file), or, on the journal path, the chunks of a recording the
        card stopped mid-call (full, or failing), which its file never got. Its row
        held the file as it stood, and the replay has now written the rest there.
        Returns ``[(recording_id, duration_s)]`` (the row's duration, which counted
        every chunk the journal took).

        Before the journal is emptied, each durable in this order: the audit entry
        (naming the SHA-256 it extends), then the row. A crash before the row
        leaves the journal to do it again at the next start; after it, the row
        and the file agree, and the trail holds what ``verify`` needs to accept it.
        """
        resealed = []
        for recording_id in replayed:
            row = self.get(recording_id)
            if row is None or row["state"] != "partial" or not self._extended_by_replay(row):
                continue
            duration_s, was = row["duration_s"], row["sha256"]
            self.finish(recording_id, "partial", duration_s, action="recording_recovered", extends=was)
            resealed.append((recording_id, duration_s))
        if resealed and self.holdup:
            self.sync()  # (its commit waited for the interval's sync)
        return resealed

    def wipe_journal(self):
        """Overwrite the replayed journal with zeros (a card an older release left in
        clear, once its personal data is sealed: its journal held recordings' headers)."""
        journal.wipe(journal_path(self.data_dir))

    def key_copy_path(self, recording_id):
        """The recording's second copy of its wrapped data key (for `repair`), outside its
        authenticated header so that `rekey` can replace it."""
        return os.path.join(self.dir, recording_id + KEY_COPY_SUFFIX)

    def write_key_copy(self, recording_id, wrapped, new=False):
        """Store ``wrapped`` (the 93-byte wrapped data key) as the recording's key copy,
        durably: atomically in place of the copy there (`rekey`).

        ``new``: the first copy of a new recording, whose file is created and synced
        next (or, under a hold-up capacitor, with its first chunk): the copy is
        created under its name and carried to the card by that sync, one commit of
        the file system's journal for the file and its key copy, not three
        (:func:`~firmware.storage.fsutil.create_with_next_commit`; docs/journal.md).
        A crash before that sync may leave it empty, but then the recording's
        file holds no synced audio either: the recovery sweep finishes its row
        at 0 s, its key never needed.

        :raises FileExistsError: ``new`` and a copy is there already
        """
        path = self.key_copy_path(recording_id)
        if new:
            fsutil.create_with_next_commit(path, bytes(wrapped))
        else:
            fsutil.atomic_write(path, bytes(wrapped))

    def call_copy_path(self, recording_id):
        """The recording's call copy (:data:`CALL_COPY_SUFFIX`, for `repair`)."""
        return os.path.join(self.dir, recording_id + CALL_COPY_SUFFIX)

    def write_call_copy(self, recording_id, call_id, fields):
        """Store the call copy of ``recording_id`` (of call ``call_id``), atomically and
        durably: ``fields`` (``number``, as the call log seals it, and ``digits_withheld``)
        as the call log holds them once recording ended. Only for a recording whose
        header, written as recording began, says otherwise (docs/FORMAT.md).

        :raises OSError: it could not be written (the call log still has them)
        """
        doc = dict(fields, format=CALL_COPY_FORMAT, version=CALL_COPY_VERSION)
        doc.update(recording_id=recording_id, call_id=call_id)
        data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        # One commit of the file system's journal for it, not two (a write per such call).
        fsutil.atomic_write(self.call_copy_path(recording_id), data, one_commit=True)

    def set_next_key(self, recording_id, wrapped):
        """Keep ``wrapped`` (the data key wrapped to the next key store) beside the current one."""
        with self._lock:
            self._db.execute(
                "UPDATE recordings SET wrapped_key_next = ? WHERE id = ?", (wrapped, recording_id)
            )

    def promote_next_keys(self):
        """Make every next wrapped key the current one (after `rekey` committed); returns how many.

        One transaction; the key copies follow, then the old wrapped keys are
        checkpointed out of the write-ahead log.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id, wrapped_key_next FROM recordings WHERE wrapped_key_next IS NOT NULL"
            ).fetchall()
            self._db.execute(
                "UPDATE recordings SET wrapped_key = wrapped_key_next, wrapped_key_next = NULL"
                " WHERE wrapped_key_next IS NOT NULL"
            )
        for recording_id, wrapped in rows:
            if os.path.exists(self.key_copy_path(recording_id)):
                self.write_key_copy(recording_id, wrapped)
        self.checkpoint()
        return len(rows)

    def drop_next_keys(self):
        """Forget every next wrapped key (a `rekey` that did not commit)."""
        with self._lock:
            self._db.execute(
                "UPDATE recordings SET wrapped_key_next = NULL WHERE wrapped_key_next IS NOT NULL"
            )
        self.checkpoint()

    def path_of(self, recording_id: str) -> str:
        return os.path.join(self.dir, recording_id + ".lkrec")

    # ------------------------------------------------------------ writing
    def begin(
        self,
        call_id: int,
        wrapped_key: bytes,
        profile: str,
        chunk_ms: int,
        started_wall_us: int,
        recording_id: str | None = None,
    ) -> str:
        """Commit the intent row of a new recording; returns its id (the file comes next)."""
        recording_id = recording_id or uuid.uuid4().hex
        row = (
            "INSERT INTO recordings (id, call_id, file, wrapped_key, profile, state, started_at,"
            " chunk_ms) VALUES (?, ?, ?, ?, ?, 'recording', ?, ?)",
            (recording_id, call_id, recording_id + ".lkrec", wrapped_key, profile, started_wall_us, chunk_ms),
        )
        # Synced at once (with the call's row committed before it, or in the same commit):
        # the file comes next, and a file the call log does not know stops the box at its
        # next start (firmware/recovery.py). Under a hold-up capacitor the file waits for
        # its first chunk, and before_file() syncs this row first.
        if self._before_begin is None or not self._before_begin(row):
            with self._unsynced():
                self._db.execute(*row)
        self._audit("recording_created", recording_id, {"call_id": call_id})
        return recording_id

    def finish(
        self,
        recording_id: str,
        state: str,
        duration_s: float,
        action: str = "recording_sealed",
        speech: Sequence[tuple[float, float]] | None = None,
        extends: str | None = None,
    ) -> None:
        """Record the end of a recording: its state, duration, size and file hash; sign it.

        ``action`` is what the audit trail calls it (``recording_recovered``
        when the start-up recovery finishes it). ``speech``: its speech spans
        (:meth:`set_speech`), kept in the same commit (one write to the card).
        ``extends``: the SHA-256 the recording was finished with before, which
        its file still begins with (:meth:`_reseal`: a seal the replay wrote),
        named in the audit entry, written before the row, so that ``verify``
        can tell it from a file changed since.
        """
        size, digest = _file_digest(self.path_of(recording_id))
        details = {"state": state, "bytes": size, "sha256": digest}
        if extends is not None:
            # Durable before the row changes: verify takes a row whose hash is not
            # the one the trail saw sealed for tampering unless the trail says why.
            details["extends_sha256"] = extends
            self._audit(action, recording_id, details)
        if self.signer is None:
            with self._unsynced(), self._finishing(recording_id, speech):
                self._db.execute(
                    "UPDATE recordings SET state = ?, duration_s = ?, bytes = ?, sha256 = ? WHERE id = ?",
                    (state, duration_s, size, digest, recording_id),
                )
        else:
            # Signed as it will stand, and written with its signature in one statement:
            # a crash between the two would leave a finished recording unsigned.
            current = self.get(recording_id)
            if current is None:
                raise LinekeeperError("recording %s has no row to finish" % recording_id)
            row = dict(current, state=state, duration_s=duration_s, bytes=size, sha256=digest)
            call = self.call_row(row["call_id"])
            signature = evidence.sign_recording(
                self.signer, row, self.path_of(recording_id), None if call is NO_CALL_LOG else call
            )
            with self._unsynced(), self._finishing(recording_id, speech):
                self._db.execute(
                    "UPDATE recordings SET state = ?, duration_s = ?, bytes = ?, sha256 = ?,"
                    " signature = ? WHERE id = ?",
                    (state, duration_s, size, digest, signature, recording_id),
                )
        if extends is None:
            self._audit(action, recording_id, details)

    @contextlib.contextmanager
    def _finishing(self, recording_id, speech):
        """The finishing UPDATE alone, or in one transaction with the speech spans."""
        if speech is None:
            with self._lock:
                yield
            return
        with datadir.immediate_transaction(self._db, self._lock):
            yield
            self._db.execute(
                "INSERT OR REPLACE INTO recording_speech (recording_id, spans) VALUES (?, ?)",
                (recording_id, json.dumps([[a, b] for a, b in speech])),
            )

    def set_speech(self, recording_id, spans):
        """Keep the speech spans (``[(from_s, to_s), ...]``, see
        :mod:`firmware.recording.activity`) of a sealed recording. Not part of what
        the recording's signature covers: they are drawn from it, not evidence."""
        with self._unsynced():
            self._db.execute(
                "INSERT OR REPLACE INTO recording_speech (recording_id, spans) VALUES (?, ?)",
                (recording_id, json.dumps([[a, b] for a, b in spans])),
            )

    def speech_of(self, recording_id):
        """The recording's speech spans, or None when none were kept (recorded before
        they were, or recovered after a stop)."""
        with self._lock:
            row = self._db.execute(
                "SELECT spans FROM recording_speech WHERE recording_id = ?", (recording_id,)
            ).fetchone()
        return None if row is None else [tuple(x) for x in json.loads(row[0])]

    def sign(self, recording_id: str) -> None:
        """Sign the recording as it stands now (when the store has a signer)."""
        if self.signer is None:
            return
        row = self.get(recording_id)
        if row is None:
            raise LinekeeperError("no such recording %s" % recording_id)
        call = self.call_row(row["call_id"])
        signature = evidence.sign_recording(
            self.signer, row, self.path_of(recording_id), None if call is NO_CALL_LOG else call
        )
        with self._lock:
            self._db.execute("UPDATE recordings SET signature = ? WHERE id = ?", (signature, recording_id))

    def key_context(self, row: dict[str, Any]) -> bytes:
        """The context ``row``'s data key was wrapped under (:func:`wrap_context`): its
        call id as the row says, and that call's line as the call log says."""
        call, header = self.call_row(row["call_id"]), read_header(self.path_of(row["id"]))
        # The header's line only where there is no call log (tests, tools).
        line = call["line"] if isinstance(call, dict) else (header or {}).get("line")
        return wrap_context(row["id"], row["call_id"], line, header)

    def data_key(self, row, recording_key):
        """``row``'s data key, unwrapped with ``recording_key``.

        While a `rekey` is under way a row holds its key wrapped to the old
        and to the next key store; whichever store is in force opens one.

        :raises LineKeyLostError: none opens, and the line's key was lost after it was made
            (:attr:`keys_lost`)
        :raises TamperError: no copy opens with this key for this recording
        :raises NotGrantedError: this key holds no key of the recording's line
        """
        context, line = self.key_context(row), self.line_of(row)
        try:
            try:
                return recording_key.unwrap(row["wrapped_key"], context, line=line)
            except (TamperError, NotGrantedError):
                if not row.get("wrapped_key_next"):
                    raise
            return recording_key.unwrap(row["wrapped_key_next"], context, line=line)
        except TamperError:
            lost = self.key_lost(row, line)
            if lost is None:
                raise
            raise LineKeyLostError(lost) from None

    def key_lost(self, row: dict[str, Any], line: int | None = None) -> str | None:
        """Why ``row``'s recording cannot be opened when its line's key is in no copy of the
        key store (begun before a backup without that key was put back: :attr:`keys_lost`,
        read again from :attr:`keys_lost_from`), or None. Nothing is decrypted."""
        line = self.line_of(row) if line is None else line
        if line is None:
            return None
        if self.keys_lost_from is not None:
            self.keys_lost = self.keys_lost_from()
        lost = self.keys_lost.get(line)
        if lost is None or row["started_at"] >= lost[0]:
            return None
        return (
            "line %d's recording key is not in the key store (the key store backup put back at "
            "audit entry %d lacked it): it cannot be opened, and is not known to be altered" % (line, lost[1])
        )

    def keys_lost_counts(self) -> dict[int, int]:
        """``{line: recordings}``: how many recordings (not deleted) of each line in
        :attr:`keys_lost` were begun before its key store was put back, so cannot be opened."""
        if self.keys_lost_from is not None:
            self.keys_lost = self.keys_lost_from()
        counts: dict[int, int] = {}
        if not self.keys_lost:
            return counts
        for row in self.all():
            if row["state"] == "deleted":
                continue
            line = self.line_of(row)
            lost = self.keys_lost.get(line) if line is not None else None
            if lost is not None and row["started_at"] < lost[0]:
                counts[line] = counts.get(line, 0) + 1
        return counts

    def line_of(self, row):
        """``row``'s line as the call log says (the header's where there is no call log), or None."""
        call = self.call_row(row["call_id"])
        if isinstance(call, dict):
            return call["line"]
        line = (read_header(self.path_of(row["id"])) or {}).get("line")
        return None if line is None else int(line)

    def statement_of(self, row: dict[str, Any]) -> Any:
        """The recording's statement as it stands now (what its signature covers)."""
        call = self.call_row(row["call_id"])
        return evidence.recording_statement(
            row, self.path_of(row["id"]), None if call is NO_CALL_LOG else call
        )

    def _audit(self, action, recording_id, details):
        if self._on_audit is not None:
            self._on_audit(action, recording_id, details)

    def call_row(self, call_id: int) -> Any:
        """The call log's ``calls`` row of ``call_id`` as a dict, None if it has none,
        or :data:`NO_CALL_LOG` when this database has no call log (tests, tools)."""
        try:
            with self._lock:
                cur = self._db.execute(
                    "SELECT id, line, direction, started_at, number FROM calls WHERE id = ?", (call_id,)
                )
                row = cur.fetchone()
        except sqlite3.Error:
            return NO_CALL_LOG
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def drop(self, recording_id: str, why: str = NOT_A_RECORDING) -> None:
        """Forget a recording that never got a file (creating it failed), or whose file
        :meth:`discard` removed; ``why``: what its audit entry says."""
        with self._lock:
            gone = self._db.execute(
                "DELETE FROM recordings WHERE id = ? AND state = 'recording'", (recording_id,)
            ).rowcount
        if gone:
            # The deleted row held the wrapped key: out of the write-ahead log too.
            self.checkpoint()
            self._audit("recording_deleted", recording_id, {"why": why})

    def discard(self, recording_id: str, why: str = NOT_A_RECORDING, call_id: int | None = None) -> bool:
        """Remove a recording still in progress that turned out not to be a call, or
        that may not be kept (``why``, which its audit entry says: its call was not told).
        False, and nothing changed, when its call is on legal hold (:meth:`unname_file`).

        The file first (its header holds a copy of the wrapped key), then the
        row: a crash in between leaves a row with no file, which
        :meth:`recover` makes an empty partial recording. (The other order
        would leave a sealed file with no row, which the box takes for a lost
        call log and refuses to start on.) Before either, the row stops naming
        its file: the journal may hold the file's header and chunks, and its
        replay creates a missing file again only for a row that names it.
        """
        if not self.unname_file(recording_id, call_id, why):
            return False
        self.shred_file(recording_id, audit=False)
        self.drop(recording_id, why)
        return True

    def unname_file(
        self,
        recording_id: str,
        call_id: int | None = None,
        why: str = NOT_A_RECORDING,
        skip: str | None = None,
        decided: Callable[[], Any] | None = None,
    ) -> bool:
        """The first step of :meth:`discard`, where its destruction is decided: the row of
        a recording in progress stops naming its file, unless its call is on legal hold.
        The row keeps ``why`` (what the ``recording_deleted`` entry is to say), so that the
        start that finishes a destruction a crash cut short says it too (:meth:`recover`).

        In one immediate transaction, so that a hold placed at any time before it is
        seen, and one placed after it comes after the destruction was decided: a hold's
        recordings survive every deletion. The call is the row's, else ``call_id`` (a
        recording whose row the card refused). False when it is on hold: nothing changed.

        ``skip``: the destruction is the policy's, and this is why the call is not recorded
        (its ``policy_reason``). The call's row says ``skip`` with it in the same
        transaction: no crash leaves a call that says ``record`` whose recording the next
        start destroys (counted by the reports as a recording that failed), nor one that
        says ``skip`` whose recording is kept. ``decided``: called in the transaction once
        the destruction is decided, before its commit, to make the caller's own record of
        the call (the call log's, in memory) say so too, so that the call log, which
        writes calls.db after the commit only, never writes ``record`` back over it.

        :raises sqlite3.Error: the card refused; nothing changed
        """
        with self.transaction() as db:
            if _on_hold(db, recording_id, call_id):
                log.warning("recording %s is on legal hold: not discarded", recording_id)
                return False
            db.execute(
                "UPDATE recordings SET file = '', discard_why = ? WHERE id = ? AND state = 'recording'",
                (why, recording_id),
            )
            if skip is not None and _has_table(db, "calls"):
                db.execute(
                    "UPDATE calls SET policy_decision = 'skip', policy_reason = ? WHERE id = "
                    "coalesce((SELECT call_id FROM recordings WHERE id = ?), ?)",
                    (skip, recording_id, call_id),
                )
            if decided is not None:
                decided()
        return True

    def note_discard(self, recording_id: str, call_id: int | None, why: str, skip: str | None = None) -> None:
        """Note on the card, beside the call log, the destruction of ``recording_id`` that the
        call log refused to record (:meth:`unname_file` raised): the recorder tries it again
        while it runs, and the next start decides and does it if it did not
        (:meth:`recover`), rather than keep the recording as a partial one. The note holds
        recording ids, call ids and reasons only: nothing of a call's content or number.
        ``skip``: why the policy does not record the call (see :meth:`unname_file`), which
        the call's row is made to say when the destruction is decided from the note.

        :raises OSError: the card refused the note too
        """
        with self._lock:
            pending = self._pending_discards()
            pending[recording_id] = {"call_id": call_id, "why": why}
            if skip is not None:
                pending[recording_id]["skip"] = skip
            self._write_pending_discards(pending)

    def forget_discard(self, recording_id: str) -> None:
        """The call log took the decision noted by :meth:`note_discard` (or a legal hold kept
        the recording): the note of it goes.

        :raises OSError: the card refused (the next start finds the decision made, and
            drops the note)
        """
        with self._lock:
            pending = self._pending_discards()
            if pending.pop(recording_id, None) is not None:
                self._write_pending_discards(pending)

    def _pending_discards(self) -> dict[str, Any]:
        try:
            with open(os.path.join(self.data_dir, PENDING_DISCARDS), encoding="utf-8") as f:
                pending = json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as exc:  # atomic writes: not a cut's doing
            log.error("%s cannot be read (%s): the destructions it noted are not done", PENDING_DISCARDS, exc)
            return {}
        return pending if isinstance(pending, dict) else {}

    def _write_pending_discards(self, pending: dict[str, Any]) -> None:
        path = os.path.join(self.data_dir, PENDING_DISCARDS)
        if not pending:
            fsutil.remove_durable(path)
            return
        fsutil.atomic_write(path, json.dumps(pending, sort_keys=True).encode(), mode=0o600)

    def _decide_noted_discards(self) -> None:
        """Decide the destructions :meth:`note_discard` noted and the last run did not get
        the call log to take (its box stopped or died first): each row still recording and
        naming its file stops naming it, with the reason noted (unless its call is on legal
        hold), so that :meth:`recover` destroys it as any destruction a crash cut short; its
        call says ``skip`` with the reason noted for it, in the same transaction."""
        pending = self._pending_discards()
        for recording_id, noted in pending.items():
            row = self.get(recording_id)
            if row is None or row["state"] != "recording" or not row["file"] or not isinstance(noted, dict):
                continue  # taken by the call log after all, or already gone
            why = noted.get("why") or NOT_A_RECORDING
            skip = noted.get("skip") if isinstance(noted.get("skip"), str) else None
            if self.unname_file(recording_id, noted.get("call_id"), why, skip=skip):
                log.info("recording %s: the destruction the last run noted is decided: %s", recording_id, why)
        if pending:
            self._write_pending_discards({})

    def on_hold(self, call_id: int | None, recording_id: str | None = None) -> bool:
        """Whether call ``call_id`` (recording ``recording_id``'s, when its row names one) is
        on legal hold now: what the recorder asks before it drops audio it held in memory.

        :raises sqlite3.Error: the card refused
        """
        with self._lock:
            return _on_hold(self._db, recording_id or "", call_id)

    def shred_file(self, recording_id: str, audit: bool = True) -> None:
        """Overwrite the file's header (where its wrapped key is) with zeros, then remove it.

        Call after the row is gone. A crash in between leaves a file that
        holds no key and no readable header: recovery removes it when the
        deletion log names it, else quarantines it.
        """
        with self._lock:
            # When people spoke goes with the recording.
            self._db.execute("DELETE FROM recording_speech WHERE recording_id = ?", (recording_id,))
        self._shred_key_copy(recording_id)
        path = self.path_of(recording_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            n = min(size, _header_span(path))
            if n:
                os.pwrite(fd, bytes(n), 0)
                os.fsync(fd)
        finally:
            os.close(fd)
        fsutil.remove_durable(path)
        if audit:
            self._audit("recording_deleted", recording_id, {})

    def _shred_key_copy(self, recording_id):
        """Overwrite the recording's key copy, and its call copy (a sealed number), with
        zeros and remove them (those it has)."""
        fsutil.shred(self.key_copy_path(recording_id))
        fsutil.shred(self.call_copy_path(recording_id))

    def checkpoint(self) -> None:
        """Move everything into calls.db and empty its write-ahead log (after removing a key).

        With ``secure_delete`` the removed row is overwritten in calls.db; the
        WAL would otherwise keep a copy until SQLite reuses it. A reader holding
        an old snapshot makes it busy: then SQLite's next checkpoint finishes.
        """
        with self._lock:
            busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            log.warning("calls.db checkpoint was busy: a removed key stays in its WAL until the next one")

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The database connection inside one immediate transaction (``repair``'s rows,
        :meth:`destroy_rows`); see :func:`firmware.datadir.immediate_transaction`."""
        return datadir.immediate_transaction(self._db, self._lock)

    def set_measured(self, recording_id: str, state: str, duration_s: float) -> None:
        """Correct a recording's state and duration once its audio has been measured."""
        with self._lock:
            self._db.execute(
                "UPDATE recordings SET state = ?, duration_s = ? WHERE id = ?",
                (state, duration_s, recording_id),
            )
        self.sign(recording_id)

    # ------------------------------------------------------------ retention
    def prepare_retention(self) -> None:
        """Create what retention reads and writes in calls.db, where missing.

        The call log's ``calls`` table, the policy's tags and legal holds, the
        deletion log and the clock guard's state: a sweeper may start before
        the call log has run on a new card.
        """
        with self._lock:
            self._db.executescript(CALLS_SCHEMA + SCHEMA + RETENTION_STATE_SCHEMA)
            callmeta.ensure_schema(self._db)
            deletions.ensure_schema(self._db)

    def finished_recordings(
        self,
        started_at_most_us: int | None,
        *,
        held: bool,
        call_id: int | None = None,
        keep: Callable[[FinishedRecording], bool] | None = None,
    ) -> list[FinishedRecording]:
        """The finished recordings whose call started at or before ``started_at_most_us``
        (µs since the epoch, UTC; None: whenever), oldest call first.

        :param held: True for only those whose call is on legal hold, False for
            only those whose call is not
        :param call_id: only that call's
        :param keep: only those it says True of, judged as they are read: a box's year
            of recordings is never all in memory at once (a preview that keeps none of
            a million took 750 MB)
        """
        sql = _FINISHED % ("" if held else "NOT")
        args: list[int] = [_NO_LATER if started_at_most_us is None else started_at_most_us]
        if call_id is not None:
            sql = sql.replace("ORDER BY", "AND r.call_id = ?\nORDER BY")
            args.append(int(call_id))
        found = []
        with self._lock:
            cur = self._db.execute(sql, args)
            while True:
                rows = cur.fetchmany(2000)
                if not rows:
                    break
                for rid, call, line, direction, started, duration_s, size, sha, tags in rows:
                    r = FinishedRecording(
                        rid,
                        call,
                        line,
                        direction,
                        started,
                        duration_s,
                        size,
                        sha,
                        tuple(sorted(tags.split(","))) if tags else (),
                    )
                    if keep is None or keep(r):
                        found.append(r)
        return found

    def destroy_rows(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Destroy finished recordings' rows (their wrapped keys), each with its deletion-log entry.

        ``entries`` are deletion-log entries (every field of
        :data:`firmware.policy.deletions.FIELDS` but ``seq``). In one immediate
        transaction, each named recording that is still finished and whose call
        is not on legal hold loses its row, and its entry is appended to
        :attr:`deletions`; the others (a hold placed since they were chosen, a
        row already gone) are skipped. With ``secure_delete`` on, the row is
        overwritten. Returns the entries of the rows destroyed, in order.

        The files come next (:meth:`shred_file`), then :meth:`checkpoint`.

        :raises sqlite3.Error: the card refused; nothing was destroyed
        """
        destroyed = []
        with self.transaction() as db:
            for entry in entries:
                cur = db.execute(
                    "DELETE FROM recordings WHERE id = ? AND state IN ('complete', 'partial') "
                    "AND NOT EXISTS (SELECT 1 FROM legal_holds WHERE call_id = ?)",
                    (entry["recording_id"], entry["call_id"]),
                )
                if cur.rowcount != 1:
                    continue
                self.deletions.append(entry)
                destroyed.append(entry)
        return destroyed

    def retention_state(self, key: str) -> str | None:
        """The clock guard's value for ``key`` (see :mod:`firmware.policy.clockguard`), or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM retention_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_retention_state(self, key: str, value: str | None) -> None:
        """Keep (committed) the clock guard's ``value`` for ``key``; None removes it."""
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM retention_state WHERE key = ?", (key,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO retention_state (key, value) VALUES (?, ?)", (key, value)
                )

    def newest_synced_call_us(self) -> int | None:
        """The start (µs since the epoch, UTC) of the newest call logged while the
        clock was known to be synchronised, or None when there is none."""
        with self._lock:
            row = self._db.execute("SELECT max(started_at) FROM calls WHERE clock_synced = 1").fetchone()
        return None if row[0] is None else int(row[0])

    # ------------------------------------------------------------ reading
    def rows_without_call(self):
        """Recordings (not deleted) whose call the call log has no row of, as dicts
        ``id, call_id, started_at, duration_s``: the card refused the call's row
        and the box stopped before it took it (docs/call-log-faults.md)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT r.id, r.call_id, r.started_at, r.duration_s FROM recordings r"
                " WHERE r.state != 'deleted' AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = r.call_id)"
                " ORDER BY r.call_id, r.started_at"
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def logged_deleted_ids(self) -> set[str]:
        """Ids of the recordings the deletion log says were destroyed."""
        with self._lock:
            return deleted_ids(self._db)

    def known_ids(self) -> set[str]:
        """Ids of every recording the call log has a row for, or logged as deleted."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM recordings")} | deleted_ids(self._db)

    def get(self, recording_id: str) -> dict[str, Any] | None:
        with self._lock:
            cur = self._db.execute("SELECT * FROM recordings WHERE id = ?", (recording_id,))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row, strict=False)) if row else None

    def for_call(self, call_id: int) -> dict[str, Any] | None:
        """The newest recording of ``call_id`` as a dict, or None."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM recordings WHERE call_id = ? ORDER BY started_at DESC LIMIT 1", (call_id,)
            )
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row, strict=False)) if row else None

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute("SELECT * FROM recordings ORDER BY started_at, id")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]

    def open_audio(
        self, recording_id: str, recording_key: RecordingKey, sink: Callable[[bytes], Any] | None = None
    ) -> tuple[bytes, bool]:
        """The decrypted audio stream (codec bytes) and whether the file is complete.

        Only authenticates the chunks; :meth:`read_verified` also checks the
        file against its row. With ``sink`` each chunk goes to ``sink(bytes)`` as
        it is opened and none is kept (the bytes returned are then ``b""``).

        :raises TamperError: the file or its key has been altered
        """
        chunks: list[bytes] = []
        opened = self._audio_chunks(recording_id, recording_key)
        for chunk in opened:
            (chunks.append if sink is None else sink)(chunk)
        return b"".join(chunks), opened.complete

    def _audio_chunks(self, recording_id, recording_key):
        """:class:`_Opened`: the recording's chunks opened one at a time (for :meth:`open_audio`)."""
        row = self.get(recording_id)
        if row is None or row["state"] == "deleted":
            raise LinekeeperError("no such recording %s" % recording_id)
        path = self.path_of(recording_id)
        return _Opened(row, path, SegmentReader(path, self.data_key(row, recording_key)))

    def read_verified(self, recording_id: str, recording_key: RecordingKey) -> tuple[dict[str, Any], bytes]:
        """``(row, codec bytes)`` of a recording that passes every check :meth:`verify` makes.

        :raises TamperError: the file, its row or its key was altered (every
            problem is named in the message)
        :raises LinekeeperError: no such recording, or it holds no audio
        """
        row = self.get(recording_id)
        if row is None or row["state"] == "deleted":
            raise LinekeeperError("no such recording %s" % recording_id)
        unopened: list[str] = []
        problems, data = self._check(row, recording_key, unopened=unopened)
        _refuse(problems, unopened)
        if not data:
            raise _no_audio(row)
        return row, data

    def export(self, recording_id: str, recording_key: RecordingKey, out_path: str) -> None:
        """Write the recording to ``out_path`` as ``.wav`` or ``.ogg`` (as recorded).

        The recording is checked first, as :meth:`verify` does with the key;
        the file appears (atomically, mode 0600) only when all is well.

        :raises TamperError: the recording was altered: nothing is written
        :raises LinekeeperError: unknown format, no such recording, no audio
        """
        ext = os.path.splitext(out_path)[1].lower()
        payload = self.export_bytes(recording_id, recording_key, ext.lstrip("."))
        fsutil.atomic_write(out_path, payload, mode=0o600)

    def export_stream(self, recording_id: str, recording_key: RecordingKey) -> tuple[Any, int, int]:
        """``(pieces, n, rate)``: the recording decoded as :meth:`export_samples` decodes it,
        ``n`` int16 samples at ``rate`` Hz, as an iterator of arrays made a chunk at a time:
        never whole in memory (a 3 h call was 173 MB of samples).

        Checked whole first, as :meth:`read_verified` checks it (each chunk opened and
        counted, then dropped), then opened again as the pieces are taken: a chunk that
        fails then, or a count that differs, raises from the iterator (whatever holds
        the pieces so far is incomplete: discard it).

        :raises TamperError: the recording was altered
        :raises LinekeeperError: no such recording, no audio
        """
        row = self.get(recording_id)
        if row is None or row["state"] == "deleted":
            raise LinekeeperError("no such recording %s" % recording_id)
        counted = codec.StreamDecoder(row["profile"], count_only=True)
        unopened: list[str] = []
        problems, _ = self._check(row, recording_key, sink=counted.feed, unopened=unopened)
        _refuse(problems, unopened)
        if not counted.bytes:
            raise _no_audio(row)
        counted.finish()
        first, n = counted.span()
        rate = counted.rate
        assert rate is not None  # known once a chunk was counted
        return self._pieces(row, recording_key, first, n), n, rate

    def _pieces(self, row, recording_key, first, n):
        """The ``n`` samples from the ``first`` decoded of ``row``'s recording, a chunk at a time."""
        decoder = codec.StreamDecoder(row["profile"])
        opened = self._audio_chunks(row["id"], recording_key)
        skip, left = first, n
        for chunk in itertools.chain(opened, [None]):
            for piece in decoder.feed(chunk) if chunk is not None else decoder.finish():
                drop = min(skip, len(piece))
                piece = piece[drop : drop + left]
                skip, left = skip - drop, left - len(piece)
                if len(piece):
                    yield piece
        if left or decoder.span() != (first, n) or (row["state"] == "complete" and not opened.complete):
            raise TamperError(
                "recording %s (call %s) changed while it was read" % (row["id"], row["call_id"])
            )

    def export_samples(self, recording_id: str, recording_key: RecordingKey) -> tuple[Any, int]:
        """``(samples, rate)``: the recording decoded (int16 samples at ``rate`` Hz), in memory,
        checked as :meth:`export_bytes` checks it. Whole in memory: a subject access bundle
        takes :meth:`export_stream`.

        :raises TamperError: the recording was altered
        :raises LinekeeperError: no such recording, no audio
        """
        row, data = self.read_verified(recording_id, recording_key)
        return codec.decode_with_rate(data, row["profile"])

    def export_bytes(self, recording_id: str, recording_key: RecordingKey, fmt: str) -> bytes:
        """The recording as ``fmt`` ("wav", or the recorded "ogg"; "" for a file name without
        an extension, refused as such), in memory.

        For the web UI's export: the decrypted audio never touches the card
        (on Raspberry Pi OS /tmp is on the card too).

        :raises TamperError: the recording was altered
        :raises LinekeeperError: unknown format, no such recording, no audio
        """
        row = self.get(recording_id)
        if row is None or row["state"] == "deleted":
            raise LinekeeperError("no such recording %s" % recording_id)
        ext = "." + fmt.lower()
        taken = ".wav or %s" % codec.file_extension(row["profile"])
        if not fmt:  # a file name without an extension: its path is not a format
            raise LinekeeperError("the file name has no extension: end it with %s" % taken)
        if ext not in (".wav", codec.file_extension(row["profile"])):
            raise LinekeeperError(
                "the extension %s is not one it can export to: end the file name with %s" % (ext, taken)
            )
        row, data = self.read_verified(recording_id, recording_key)
        if ext == ".wav":
            samples, rate = codec.decode_with_rate(data, row["profile"])
            return _wav_bytes(samples, rate)
        return codec.finalize(data, row["profile"])

    # ------------------------------------------------------------ crash recovery
    def recover(self, stopped_cleanly: bool = False) -> list[tuple[str, str, Any]]:
        """Finish what a crash cut short; returns a list of what was done (for the log).

        Every row still ``recording`` becomes ``partial`` with the duration of
        its whole chunks (also when the file looks closed and only the row's
        update was lost: without the key its final chunk cannot be told from
        a torn write). A file cut inside its header, or with no
        chunk, holds no audio: it is removed and its row says 0 s. A file
        damaged beyond its last record is not a crash's doing: it is kept,
        unaccounted for, and :meth:`verify` reports it. Files with no row
        are moved to the quarantine folder (``("quarantined", name, where)``):
        a recording is never deleted here. (The box refuses to start, before
        this runs, when such a file is a sealed recording: the call log then
        lost rows, which ``linekeeper repair`` rebuilds.) A ``partial``
        recording whose seal the card refused after the journal took it gets
        the seal from the replay, and its row is finished again on that
        file (``("resealed", id, duration_s)``; :meth:`replay_journal`). Last,
        the call log is checkpointed and its write-ahead log emptied
        (:meth:`checkpoint`): a deletion a cut left before its own checkpoint
        leaves no wrapped key in calls.db. Before all of it, a destruction the
        call log refused to record in the last run, noted beside it
        (:meth:`note_discard`), is decided, and so destroyed here too.
        ``stopped_cleanly``: the last run stopped cleanly (:meth:`replay_journal`
        says so of the files it changes).
        """
        # First, so that the journal's replay does not write into a file to be destroyed.
        self._decide_noted_discards()
        self.replayed = self.replay_journal(stopped_cleanly)
        if self.replayed:
            log.info("journal replayed into %d recording(s) at start", len(self.replayed))
        done: list[tuple[str, str, Any]] = [("resealed", rid, d) for rid, d in self.resealed]
        for row in self.all():
            if row["state"] != "recording":
                continue
            if not row["file"]:
                # A discard (:meth:`discard`) a crash cut short: the policy kept nothing of it.
                # Audited as the discard would have been, saying why it was decided.
                self.shred_file(row["id"], audit=False)
                self.drop(row["id"], row.get("discard_why") or NOT_A_RECORDING)
                done.append(("discarded", row["id"], None))
                continue
            path = self.path_of(row["id"])
            try:
                info = inspect(path)
            except FileNotFoundError:
                info = None
            except TamperError as exc:
                if _header_intact(path):
                    # Not a crash's doing (a crash tears only the last record):
                    # keep the file, unaccounted for, for verify to report.
                    with self._lock:
                        self._db.execute(
                            "UPDATE recordings SET state = 'partial', duration_s = 0,"
                            " bytes = NULL, sha256 = NULL WHERE id = ?",
                            (row["id"],),
                        )
                    done.append(("damaged", row["id"], str(exc)))
                    continue
                info = None  # torn or garbled inside its header: no audio in it
            data_chunks = 0
            if info is not None and info["header"] is not None:
                data_chunks = info["chunks"] - (1 if info["closed"] else 0)
            if data_chunks == 0:
                fsutil.remove_durable(path)
                # Finished and signed in one statement: a cut between the two (the
                # power failing again as the box starts) would leave it unsigned.
                self.finish(row["id"], "partial", 0.0, action="recording_recovered")
                done.append(("partial", row["id"], 0.0))
            else:
                # Even a file that looks closed is only partial: its final chunk, the
                # last write, may be garbage, which only the key could tell.
                _release_reserve(path)
                duration_s = self._recovered_duration(row, data_chunks, info["header"])
                self.finish(row["id"], "partial", duration_s, action="recording_recovered")
                done.append(("partial", row["id"], duration_s))
        with self._lock:
            shredded = deleted_ids(self._db)
        for name in fsutil.remove_stale_temps(self.dir) if os.path.isdir(self.dir) else ():
            done.append(("removed", name, None))  # a key copy a crash cut while it was written
        for name in self.unmatched():
            copy = next((x for x in (KEY_COPY_SUFFIX, CALL_COPY_SUFFIX) if name.endswith(x)), None)
            if copy is not None and not os.path.exists(self.path_of(name[: -len(copy)])):
                # Only a wrapped key or a call copy, of a recording whose row is gone
                # (deleted, or a creation a crash cut before its row): nothing to keep.
                self._shred_key_copy(name[: -len(copy)])
                done.append(("shredded", name, None))
            elif name.endswith(RECORDING_SUFFIX) and name[: -len(RECORDING_SUFFIX)] in shredded:
                # A deletion committed (and logged) whose file removal a crash cut.
                self.shred_file(name[: -len(RECORDING_SUFFIX)])
                done.append(("shredded", name, None))
            else:
                done.append(("quarantined", name, self.quarantine(name)))
        # A deletion a cut left before its checkpoint (a retention sweep, a delete)
        # keeps the row's wrapped key in calls.db's pages, and the log's older frames,
        # until the next checkpoint, hours away on a quiet box: emptied now.
        self.checkpoint()
        return done

    def _extended_by_replay(self, row):
        """True when the replay has just added to ``row``'s file (see :meth:`_reseal`).

        Only a file that still holds, unchanged, every byte its row sealed, and has
        gained after them whole records (a recording's header first, for one that was
        empty): a replay that changed a sealed byte is no card's hiccup, and stays
        for :meth:`verify` to report.
        """
        path = self.path_of(row["id"])
        if row["sha256"] is None or row["bytes"] is None:
            return False
        try:
            info = inspect(path)
        except (OSError, TamperError):
            return False
        if info["file_bytes"] <= row["bytes"] or info["header"] is None or info["torn_bytes"]:
            return False
        try:
            return _file_digest(path, limit=row["bytes"]) == (row["bytes"], row["sha256"])
        except OSError:
            return False

    def unmatched(self) -> list[str]:
        """Names of the files in the recordings folder that no row accounts for. A row whose
        destruction is decided (:meth:`unname_file`) accounts for its file still: the next
        start destroys it (:meth:`recover`), and nothing is to quarantine or rebuild it."""
        known = set()
        for row in self.all():
            known |= {row["file"], row["id"] + KEY_COPY_SUFFIX, row["id"] + CALL_COPY_SUFFIX}
            if row["state"] == "recording" and not row["file"]:
                known.add(row["id"] + RECORDING_SUFFIX)
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if name not in known)

    def quarantined(self) -> list[str]:
        """Names of the files in the quarantine folder."""
        try:
            return sorted(os.listdir(self.quarantine_dir))
        except FileNotFoundError:
            return []

    def quarantine(self, name: str) -> str:
        """Move ``name`` from the recordings folder to the quarantine folder; returns its path.

        The name is kept (with a number added if it is taken); both folders
        are synced, so the move survives a power cut.
        """
        fsutil.make_private_dir(self.quarantine_dir)
        dest = os.path.join(self.quarantine_dir, name)
        n = 1
        while os.path.exists(dest):
            dest = os.path.join(self.quarantine_dir, "%s.%d" % (name, n))
            n += 1
        os.rename(os.path.join(self.dir, name), dest)
        fsutil.fsync_dir(self.quarantine_dir)
        fsutil.fsync_dir(self.dir)
        return dest

    def _recovered_duration(self, row, data_chunks, header=None):
        """The audio in ``data_chunks`` whole chunks, read without the key.

        Every chunk holds ``chunk_ms`` of audio except the first when the
        header says ``first_chunk_ms`` (chunks on the journal's shared grid)
        and the one the writer closes the file with. When the call had
        ended, the crash may have come while the file was being closed: then
        the end of the call bounds the last chunk (to within the end's
        detection, ~0.1 s).
        """
        first_ms = (header or {}).get("first_chunk_ms") or row["chunk_ms"]
        high = (first_ms + (data_chunks - 1) * row["chunk_ms"]) / 1000.0
        try:
            with self._lock:
                found = self._db.execute(
                    "SELECT ended_at FROM calls WHERE id = ?", (row["call_id"],)
                ).fetchone()
        except sqlite3.Error:  # a store without the call log (tests, tools)
            found = None
        if found is None or found[0] is None:
            return high
        low = high - (row["chunk_ms"] if data_chunks > 1 else first_ms) / 1000.0
        return min(high, max(low, (found[0] - row["started_at"]) / 1e6))

    # ------------------------------------------------------------ verification
    def verify(
        self,
        recording_key: RecordingKey | None = None,
        unopened: list[str] | None = None,
        lost: dict[str, list[str]] | None = None,
    ) -> list[str]:
        """Check every recording; returns a list of problems (empty when all is intact).

        Without a key, each finished file is checked against the size and
        SHA-256 recorded when it was finished. With the recording key every
        chunk is also authenticated, and a ``complete`` recording must end
        with its final chunk. With ``unopened`` (a list), a recording whose
        line's key is in no copy of the key store (:attr:`keys_lost`) is named
        there, not as a problem: it is checked without the key. With ``lost`` (a dict), a
        recording's files in ``recordings/`` that no row accounts for (its ``.lkrec``, key
        copy and call copy) go there, ``{recording id: [file names]}``, not one problem each:
        the caller says each such recording once (``linekeeper verify``).
        """
        problems = []
        for row in self.all():
            if row["state"] != "deleted":
                problems += self._check(row, recording_key, unopened=unopened)[0]
        for name in self.unmatched():
            stem, suffix = os.path.splitext(name)
            if lost is not None and suffix in _RECORDING_FILES and stem:
                lost.setdefault(stem, []).append(name)
                continue
            problems.append(
                "recordings/%s: not in the call log (`linekeeper repair` rebuilds "
                "the log from the recordings)" % name
            )
        for name in self.quarantined():
            problems.append(
                "%s/%s: quarantined at start-up, not in the call log (see "
                "docs/recovery.md)" % (QUARANTINE, name)
            )
        problems += datadir.integrity_problems(self._db, "calls.db")
        return problems

    def _check(self, row, recording_key=None, sink=None, unopened=None):
        """``(problems, codec bytes or None)`` for one recording (``sink``: see :meth:`open_audio`;
        ``unopened``: see :meth:`verify`)."""
        path, call = self.path_of(row["id"]), self.call_row(row["call_id"])
        if call is not NO_CALL_LOG:
            problems = evidence.binding_problems(row, read_header(path), call, self.field_cipher)
            if problems:
                return problems, None
        problems, data = self._check_file(row, recording_key, sink, unopened)
        # The file's own checks first: they name what was done more precisely.
        if not problems and call is not NO_CALL_LOG and self.verify_key is not None:
            problems = evidence.signature_problems(self.verify_key, row, path, call)
        return problems, (None if problems else data)

    def evidence_problems(self, row: dict[str, Any]) -> list[str]:
        """What is wrong with ``row`` as evidence, without the key (a list of texts).

        The sealed header, the row and the call log's call must agree, and
        with :attr:`verify_key` the box's signature must hold. Playback checks
        this before any audio is decrypted.
        """
        path, call = self.path_of(row["id"]), self.call_row(row["call_id"])
        if call is NO_CALL_LOG:
            return []
        problems = evidence.binding_problems(row, read_header(path), call, self.field_cipher)
        if not problems and self.verify_key is not None:
            problems = evidence.signature_problems(self.verify_key, row, path, call)
        return problems

    def file_problems(self, row: dict[str, Any]) -> list[str]:
        """What is wrong with ``row``'s file without the key: missing, or no longer the file
        the box wrote (its size and SHA-256), as ``verify`` says it (a list of texts)."""
        return self._check_file(row)[0]

    def _check_file(self, row, recording_key=None, sink=None, unopened=None):
        rid, path = row["id"], self.path_of(row["id"])
        where = "recording %s (call %s)" % (rid, row["call_id"])
        if not os.path.exists(path):
            if row["state"] == "partial" and not row["bytes"]:
                return [], b""  # stopped (or crashed) before any audio was stored
            if row["state"] == "recording":
                # Under a hold-up capacitor its file comes with its first chunk: still to
                # come, or a crash came first (the next start makes the row an empty
                # partial recording, as above).
                return [], b""
            return ["%s: file missing" % where], None
        if row["state"] in ("recording", "partial") and not row["bytes"] and os.path.getsize(path) == 0:
            # With the journal its header and chunks wait in memory (and in the journal)
            # until its seal (docs/journal.md); stopped before then (the card refused
            # them), it holds nothing, as its row says, until the next start's replay.
            return [], b""
        if row["state"] in ("complete", "partial"):
            if row["sha256"] is None:
                return [
                    "%s: the file was already damaged when the box recovered it after a stop" % where
                    if row["bytes"] is None
                    else "%s: file present but the row says it holds no audio" % where
                ], None
            size, digest = _file_digest(path)
            if (size, digest) != (row["bytes"], row["sha256"]):
                return [
                    "%s: file changed since it was written (%s)"
                    % (
                        where,
                        "same size, other content"
                        if size == row["bytes"]
                        else "%d bytes, was %d" % (size, row["bytes"]),
                    )
                ], None
        if recording_key is None:
            return [], None
        try:
            data, complete = self.open_audio(rid, recording_key, sink)
        except NotGrantedError:
            return [], None  # not this key's line: checked without the key
        except LineKeyLostError as exc:
            if unopened is None:
                return ["%s: %s" % (where, exc)], None
            unopened.append("%s: %s" % (where, exc))
            return [], None  # checked without the key, as the signature is next
        except TamperError as exc:
            return ["%s: altered or damaged (%s)" % (where, exc)], None
        except OSError as exc:
            return ["%s: cannot be read: %s" % (where, exc)], None
        if row["state"] == "complete" and not complete:
            return ["%s: truncated (its final chunk is missing)" % where], None
        return [], data


class _Opened:
    """A recording's chunks, each opened (authenticated) as it is taken; :attr:`complete`
    once all are: whether the final chunk was there.

    A partial recording's last record is the write a crash or a full disk cut: sectors
    of it may be garbage even at its full length. Only that record may fail; what it
    held was never part of the playable audio.
    """

    def __init__(self, row, path, reader):
        self._row, self._path, self._reader = row, path, reader
        self.complete = None

    def __iter__(self):
        n = 0
        try:
            for chunk in self._reader.chunks():
                yield chunk
                n += 1
        except TamperError:
            if self._row["state"] != "partial" or not _is_last_record(self._path, n):
                raise
            self.complete = False
            return
        self.complete = bool(self._reader.complete)


def _no_audio(row):
    return LinekeeperError(
        "the recording of call %s holds no audio (it stopped as it began)" % row["call_id"]
    )


def _refuse(problems, unopened):
    """:raises TamperError: ``problems`` (any: they come first, a file altered is said so
    whatever its key); :raises LineKeyLostError: else ``unopened``, a recording whose
    line's key is in no copy of the key store (:meth:`RecordingStore.verify`)"""
    if problems:
        raise TamperError("; ".join(problems))
    if unopened:
        raise LineKeyLostError("; ".join(unopened))


def _release_reserve(path):
    """Give back the room a crash left reserved past the end of a recording file
    (``SegmentWriter`` with a journal); a file that cannot be opened keeps it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        log.warning("cannot give back the room reserved for %s: %s", path, exc)
        return
    try:
        fsutil.release_reserve(fd)
    except OSError as exc:
        log.warning("cannot give back the room reserved for %s: %s", path, exc)
    finally:
        os.close(fd)


def _file_digest(path, limit=None):
    """``(size, SHA-256 hex)`` of the file at ``path`` (of its first ``limit`` bytes at
    most), ``(0, None)`` when it is missing."""
    h = hashlib.sha256()
    size = 0
    left = float("inf") if limit is None else limit
    try:
        with open(path, "rb") as f:
            while left > 0:
                block = f.read(int(min(left, 1 << 16)))
                if not block:
                    break
                h.update(block)
                size += len(block)
                left -= len(block)
    except FileNotFoundError:
        return 0, None
    return size, h.hexdigest()


def _is_last_record(path, index):
    """True when record ``index`` (from 0) is the file's last, ending at its end."""
    try:
        info = inspect(path)
    except (TamperError, OSError):
        return False
    return info["chunks"] == index + 1 and info["torn_bytes"] == 0


def _header_span(path):
    """How many bytes at the start of ``path`` are its header (all of it, if unreadable)."""
    try:
        with open(path, "rb") as f:
            return len(_read_header(f, path)[1])
    except (TamperError, OSError):
        try:
            return os.path.getsize(path)
        except OSError:
            return 0


def read_call_copy(path: str, header: dict[str, Any]) -> dict[str, Any] | None:
    """The call copy at ``path`` (:meth:`RecordingStore.write_call_copy`) of the recording
    whose header is ``header``: its fields, or None when there is none. One that is not a
    call copy of this version, or names another recording or call, is not used.

    :raises ValueError: it is there but unreadable or not this recording's (the message says)
    """
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError("its call copy %s is unreadable (%s)" % (os.path.basename(path), exc)) from exc
    if not isinstance(doc, dict) or doc.get("format") != CALL_COPY_FORMAT:
        raise ValueError("its call copy %s is not a call copy" % os.path.basename(path))
    if doc.get("version") != CALL_COPY_VERSION:
        raise ValueError(
            "its call copy %s is version %r, which this version does not read"
            % (os.path.basename(path), doc.get("version"))
        )
    if (doc.get("recording_id"), doc.get("call_id")) != (header.get("recording_id"), header.get("call_id")):
        raise ValueError("its call copy %s is another recording's" % os.path.basename(path))
    return {k: doc[k] for k in ("number", "digits_withheld") if k in doc}


def read_header(path: str) -> dict[str, Any] | None:
    """The sealed header of the recording file ``path`` (a dict), or None if it has none.

    Read without any key: the header is in clear, and authenticated as part
    of every chunk (so an edited header fails :meth:`RecordingStore.verify`
    with the key).
    """
    try:
        with open(path, "rb") as f:
            return _read_header(f, path)[0]
    except (TamperError, OSError):
        return None


def deleted_ids(db: sqlite3.Connection) -> set[str]:
    """Ids of recordings the deletion log says were destroyed (empty when there is no log)."""
    try:
        return {r[0] for r in db.execute("SELECT recording_id FROM deletion_log")}
    except sqlite3.Error:
        return set()


def _header_intact(path):
    """True when the file at ``path`` starts with a well-formed recording header."""
    try:
        with open(path, "rb") as f:
            _read_header(f, path)
    except (TamperError, OSError):
        return False
    return True


def _wav_bytes(samples, rate):
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


KEY_CONTEXT = 2  # the header's ``key_context``: call id and line are in the wrap context


def wrap_context(recording_id: str, call_id: int, line: Any, header: dict[str, Any] | None = None) -> bytes:
    """The context a recording's data key is wrapped under (docs/FORMAT.md).

    Version 2 (headers with ``"key_context": 2``): ``recording id || 0x00 ||
    "call=" call id || 0x00 || "line=" line``, so a row moved to another call
    or line no longer opens. Recordings made before it (no ``key_context``
    in their header) were wrapped under the recording id alone; the header is
    authenticated by every chunk, so it cannot be edited to pick the old form.
    """
    if header is not None and header.get("key_context") is None:
        return recording_id.encode()
    return b"%s\x00call=%d\x00line=%s" % (recording_id.encode(), int(call_id), str(line).encode())


def new_wrapped_key(public_key: bytes, recording_id: str, call: Any = None) -> tuple[bytes, bytes]:
    """A fresh data key and its copy wrapped to ``public_key`` (the call's line key,
    or the box's admin key), bound to ``recording_id``
    and, given ``call`` (anything with ``id`` and ``line``), to its call and line."""
    data_key = crypto.new_data_key()
    context = recording_id.encode() if call is None else wrap_context(recording_id, call.id, call.line)
    return data_key, crypto.wrap_data_key(data_key, public_key, context)
