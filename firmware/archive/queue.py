"""The archive's state on the box: the on-disk queue, the per-call status, the S3 secret.

``DATA_DIR/archive-queue.db`` holds the organisation-wrapped data keys
(``org_keys``), the jobs (``jobs``: a call to archive, or a destroyed
recording to delete from the archive), multipart progress (``uploads``,
``parts``), and the object versions the box put (``written``: what proves a
version is the box's own, whatever it holds). The per-call status is in the call log's database
(``archive_status``), where ``linekeeper calls --json`` reads it.
"""

import errno
import logging
import os
import sqlite3
import threading

from firmware.storage import fsutil

from ..errors import TamperError
from ..policy.callmeta import SCHEMA as CALLMETA_SCHEMA
from ..secretbox import PREFIX as SEALED_PREFIX
from ..secretbox import SecretBox, is_sealed
from ..storage.fieldseal import FieldSealError
from .store import ArchiveError

log = logging.getLogger(__name__)

QUEUE_DB = "archive-queue.db"
SECRET_FILE = "archive.secret"

QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS org_keys (recording_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('call', 'delete')),
    call_id   INTEGER NOT NULL,
    detail    TEXT,
    state     TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    attempts  INTEGER NOT NULL DEFAULT 0,
    next_try  REAL NOT NULL DEFAULT 0,
    error     TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_call ON jobs (call_id) WHERE kind = 'call';
CREATE TABLE IF NOT EXISTS uploads (
    recording_id TEXT PRIMARY KEY, prefix BLOB NOT NULL, header_bytes INTEGER NOT NULL,
    upload_id TEXT);
CREATE TABLE IF NOT EXISTS parts (
    recording_id TEXT NOT NULL, number INTEGER NOT NULL, md5 TEXT NOT NULL,
    PRIMARY KEY (recording_id, number));
-- Each version of a call record or a recording this box put, as the store named it when
-- it answered the put ('null': an unversioned bucket's object): a deletion deletes these
-- whatever they hold, a version the store holds damaged too. intact: its ETag was the
-- upload's (0: damaged on the way, never taken as sent).
CREATE TABLE IF NOT EXISTS written (
    key TEXT NOT NULL, version_id TEXT NOT NULL, etag TEXT NOT NULL, intact INTEGER NOT NULL,
    PRIMARY KEY (key, version_id));
"""

STATUS_SCHEMA = (
    CALLMETA_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS archive_status (
    call_id    INTEGER PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'archived', 'failed')),
    reason     TEXT,
    updated_at INTEGER NOT NULL
);
-- Calls whose tags or legal hold changed: their archived record is put again. Triggers,
-- so a change made by any process (the web UI's, the recorder's) is seen.
CREATE TABLE IF NOT EXISTS archive_changed (call_id INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS archive_tag_added AFTER INSERT ON call_tags
    BEGIN INSERT OR IGNORE INTO archive_changed VALUES (NEW.call_id); END;
CREATE TRIGGER IF NOT EXISTS archive_tag_removed AFTER DELETE ON call_tags
    BEGIN INSERT OR IGNORE INTO archive_changed VALUES (OLD.call_id); END;
CREATE TRIGGER IF NOT EXISTS archive_hold_placed AFTER INSERT ON legal_holds
    BEGIN INSERT OR IGNORE INTO archive_changed VALUES (NEW.call_id); END;
CREATE TRIGGER IF NOT EXISTS archive_hold_released AFTER DELETE ON legal_holds
    BEGIN INSERT OR IGNORE INTO archive_changed VALUES (OLD.call_id); END;
-- Calls whose caller's details were erased (or removed by retention): every version of
-- their archived record is deleted and the erased record put (ERASED_TRIGGER notes them,
-- from any process).
CREATE TABLE IF NOT EXISTS archive_erased (call_id INTEGER PRIMARY KEY);
"""
)

#: Made once the call log's ``calls`` table exists (the call log makes it, not the archive).
#: In the same transaction as the erasure itself, so no erasure goes unnoticed.
ERASED_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS archive_details_erased AFTER UPDATE OF absence ON calls
    WHEN NEW.absence = 'erased' AND OLD.absence IS NOT 'erased'
    BEGIN INSERT OR IGNORE INTO archive_erased VALUES (NEW.id); END;
-- Removed by the retention sweep past policy.retention.call_details_days: the archived
-- record held them too, and goes the same way (no copy outlives the period).
CREATE TRIGGER IF NOT EXISTS archive_details_expired AFTER UPDATE OF absence ON calls
    WHEN NEW.absence = 'expired' AND OLD.absence IS NOT 'expired'
    BEGIN INSERT OR IGNORE INTO archive_erased VALUES (NEW.id); END;
"""


def read_secret(data_dir, secrets=None):
    """The S3 secret access key, opened from ``DATA_DIR/archive.secret``.

    The file holds the secret sealed with the box's unattended-secrets key
    (:class:`firmware.secretbox.SecretBox`: a key file on the card, the board's
    identity and, on a box that seals, the vault's storage key; without that, the
    Pi's 32-bit serial is all a card holder must search). One sealed without the
    storage key is sealed again with it once this process has the key. A file
    from before sealing (the secret in clear) is sealed in place on first read.

    :param secrets: a :class:`~firmware.secretbox.SecretBox` (default: the data dir's)
    :raises ArchiveError: missing, empty, readable by others than the box, or it does
        not open (changed, or sealed on another board: set it again; or, not
        permanent, sealed with the storage key and this process has no copy yet)
    """
    path = os.path.join(data_dir, SECRET_FILE)
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            stored = f.readline().strip()
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EACCES:
            hint = (
                " (a release before this one stored it for root alone: "
                "run `linekeeper archive set-secret` again)"
            )
        raise ArchiveError(
            "cannot read the archive secret %s: %s%s" % (path, exc.strerror, hint), permanent=True
        ) from None
    # Nobody else may read it; on the appliance its services' group (the web UI uploads).
    group = fsutil.appliance_dir(data_dir) and st.st_gid == os.stat(data_dir).st_gid
    if st.st_mode & (0o007 if group else 0o077):
        raise ArchiveError(
            "%s is readable by others: chmod %s it" % (path, "o-rwx" if group else "600"), permanent=True
        )
    if not stored:
        raise ArchiveError("the archive secret %s is empty" % path, permanent=True)
    secrets = secrets or SecretBox(data_dir)
    if not is_sealed(stored):
        log.warning("the archive secret in %s was stored in clear: sealing it now", path)
        # Not over a secret set meanwhile (a clear one read here would go back over it).
        if _replace_if_unchanged(data_dir, stored, lambda: secrets.seal(SECRET_FILE, stored)):
            made = [p for p in (path, path + ".lock", secrets.path) if os.path.lexists(p)]
            fsutil.hand_to_data_dir_owner(data_dir, made)
        return stored
    try:
        secret = secrets.open(SECRET_FILE, stored)
        # A release from before the storage key took an lksec2: value for a secret in clear
        # and sealed that text: the secret is inside it, and the file gets it back.
        inner = secret if is_sealed(secret) else None
        if inner is not None:
            secret = secrets.open(SECRET_FILE, inner)
    except TamperError as exc:
        raise ArchiveError(
            "%s (set it again with `linekeeper archive set-secret`)" % exc, permanent=True
        ) from None
    except FieldSealError as exc:  # sealed with the storage key, not handed over yet
        raise ArchiveError(str(exc)) from None
    if inner is not None:
        try:
            _replace_if_unchanged(data_dir, stored, lambda: inner, required=True)
        except OSError as exc:  # the upload goes on; the next read tries again
            log.warning("the archive secret could not be put back as this release sealed it: %s", exc)
        return secret
    _reseal_secret(data_dir, stored, secrets)
    return secret


def reseal_secret(data_dir, secrets=None):
    """Seal ``archive.secret`` again with the storage data key if it is of the old kind and
    this process has the key now (as :func:`read_secret` does): for the uploader's rounds,
    whose client keeps the secret it read once. Never raises: a file that cannot be read
    is left for :func:`read_secret` to say so when an upload needs it."""
    try:
        with open(os.path.join(data_dir, SECRET_FILE), encoding="utf-8") as f:
            stored = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return
    if stored.startswith(SEALED_PREFIX):
        _reseal_secret(data_dir, stored, secrets or SecretBox(data_dir))


def _reseal_secret(data_dir, stored, secrets):
    """Seal the secret again with the storage data key when it was sealed without and this
    process has the key now (:meth:`firmware.secretbox.SecretBox.reseal`), atomically: a
    cut leaves the old file, which opens as before, and the next read does it again. Not
    over a secret set meanwhile (the same lock as :func:`write_secret`; not at all while
    the lock cannot be opened)."""
    path = os.path.join(data_dir, SECRET_FILE)
    try:
        done = _replace_if_unchanged(
            data_dir, stored, lambda: secrets.reseal(SECRET_FILE, stored), required=True
        )
    except (OSError, TamperError) as exc:  # the upload goes on; the next read tries again
        log.warning("the archive secret could not be sealed again: %s", exc)
        return
    if done:
        log.info("the archive secret in %s is now sealed with the storage key too", path)


def _replace_if_unchanged(data_dir, stored, sealed, required=False):
    """Under the lock :func:`write_secret` takes, replace ``archive.secret`` (atomically) with
    ``sealed()`` if the file still holds ``stored`` (what the caller read before taking it)
    and ``sealed()`` is not None; True when it did. ``required``: see
    :func:`~firmware.storage.fsutil.file_lock`.

    :raises OSError: it could not be read or written (then it is as it was)
    """
    path = os.path.join(data_dir, SECRET_FILE)
    with fsutil.file_lock(path + ".lock", "the archive secret", required=required):
        with open(path, encoding="utf-8") as f:
            if f.readline().strip() != stored:
                return False
        text = sealed()
        if text is None:
            return False
        fsutil.atomic_write(path, text.encode("ascii") + b"\n")
    return True


def write_secret(data_dir, secret, secrets=None):
    """Store the S3 secret access key sealed (see :func:`read_secret`), atomically, with the
    box's data mode; written by root (the installer's command), it is the data directory's,
    for the web UI (which uploads) to read."""
    box = secrets or SecretBox(data_dir)
    sealed = box.seal(SECRET_FILE, secret)
    path = os.path.join(data_dir, SECRET_FILE)
    with fsutil.file_lock(path + ".lock", "the archive secret"):
        fsutil.atomic_write(path, sealed.encode("ascii") + b"\n")
    made = [p for p in (path, path + ".lock", box.path) if os.path.lexists(p)]
    fsutil.hand_to_data_dir_owner(data_dir, made)


def statuses(db):
    """``{call_id: (status, reason)}`` from a call-log connection (empty before any archive)."""
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT call_id, status, reason FROM archive_status")}
    except sqlite3.Error:
        return {}


class Upload:
    """The persisted progress of one recording's multipart upload (see Bucket.upload_multipart)."""

    def __init__(self, queue, recording_id, upload_id):
        self.queue, self.recording_id, self.upload_id = queue, recording_id, upload_id

    def set_upload_id(self, upload_id):
        self.upload_id = upload_id
        self.queue.execute(
            "UPDATE uploads SET upload_id = ? WHERE recording_id = ?", (upload_id, self.recording_id)
        )

    def parts(self):
        return dict(
            self.queue.query("SELECT number, md5 FROM parts WHERE recording_id = ?", (self.recording_id,))
        )

    def part_done(self, number, md5):
        self.queue.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?)", (self.recording_id, number, md5))


class Db:
    """One SQLite connection used from two threads, one statement at a time."""

    def __init__(self, path, schema):
        fsutil.create_db_file(path)  # the recorder queues, the web UI uploads: both write it
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(schema)
        self.lock = threading.RLock()

    def execute(self, sql, args=()):
        with self.lock:
            return self._db.execute(sql, args).rowcount

    def query(self, sql, args=()):
        with self.lock:
            return self._db.execute(sql, args).fetchall()

    def raw(self):
        return self._db

    def close(self):
        with self.lock:
            self._db.close()


class ArchiveStatus:
    """The archive's state as the web UI shows it, read from the call log (``calls.db``).

    The recorder's uploader writes ``archive_status``; this only reads it (the web UI
    runs in its own process), so it needs no connection to the store.
    """

    def __init__(self, calls_db, last_errors=3):
        self.calls_db = os.fspath(calls_db)
        self.last_errors = last_errors
        self._unreadable = None  # why waiting() last found the call log unreadable (said once)

    def _query(self, sql, args=()):
        if not os.path.exists(self.calls_db):
            return None
        db = sqlite3.connect("file:%s?mode=ro" % self.calls_db, uri=True, timeout=5)
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return None  # no archive_status yet: the archive has not run on this box
        finally:
            db.close()

    def summary(self):
        """``{"archived", "queued", "failed": counts, "last_archived_us", "errors":
        [{"call_id", "status", "reason", "at_us"}]}`` (newest problems first), or None
        when the archive has never run here."""
        counts = self._query("SELECT status, count(*), max(updated_at) FROM archive_status GROUP BY status")
        if counts is None:
            return None
        out = {"archived": 0, "queued": 0, "failed": 0, "last_archived_us": None}
        for status, n, last_us in counts:
            out[status] = n
            if status == "archived":
                out["last_archived_us"] = last_us
        rows = self._query(
            "SELECT call_id, status, reason, updated_at FROM archive_status WHERE reason IS NOT NULL"
            " ORDER BY updated_at DESC LIMIT ?",
            (self.last_errors,),
        )
        out["errors"] = [{"call_id": c, "status": s, "reason": r, "at_us": t} for c, s, r, t in rows or []]
        return out

    def waiting(self):
        """``(call ids waiting to go up, when the last call went up (µs) or None, why the
        latest try failed or None)``: what :class:`firmware.alarmchecks.ArchiveStall`
        judges; None when the archive has never run here, or it cannot be read now (a
        damaged call log: said in the log once, not at each round; the pages, which read
        it with :meth:`summary`, say it is unreadable)."""
        try:
            rows = self._query("SELECT call_id FROM archive_status WHERE status = 'queued' ORDER BY call_id")
            last = self._query("SELECT max(updated_at) FROM archive_status WHERE status = 'archived'")
            why = self._query(
                "SELECT reason FROM archive_status WHERE status = 'queued' AND reason LIKE 'retrying: %'"
                " ORDER BY updated_at DESC LIMIT 1"
            )
        except sqlite3.Error as exc:
            if str(exc) != self._unreadable:
                log.warning(
                    "the archive's uploads are not watched now: %s cannot be read (%s)", self.calls_db, exc
                )
            self._unreadable = str(exc)
            return None
        self._unreadable = None
        if rows is None or last is None or why is None:
            return None
        return [c for (c,) in rows], last[0][0], why[0][0][len("retrying: ") :] if why else None

    def of(self, call_id):
        """``{"status", "reason", "at_us"}`` of one call, or None (not queued yet, or no archive)."""
        rows = self._query(
            "SELECT status, reason, updated_at FROM archive_status WHERE call_id = ?", (call_id,)
        )
        if not rows:
            return None
        status, reason, at_us = rows[0]
        return {"status": status, "reason": reason, "at_us": at_us}
