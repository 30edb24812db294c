"""The data directory as a whole: one box at a time, how it last stopped, storage errors.

- :class:`DataDirLock`: an exclusive ``flock`` on ``DATA_DIR/lock`` held by
  the one process that writes the box's data (a running box, ``sim``,
  ``repair``). The file holds the holder's pid so a refusal can name it; the
  kernel drops the lock when the process dies, however it dies, so a stale
  pid in the file never blocks anyone.
- The clean-stop marker ``DATA_DIR/clean-stop``: written when the box stops
  cleanly (with its time, and the run's start when the audit trail kept no entry
  of that run), removed when it starts. At start-up its absence means the last
  run ended in a crash or a power cut.
- :func:`storage_error`: every SQLite or OS storage error as one
  :class:`~firmware.errors.StorageError` with a message a person can act on.
- :func:`connect_readonly`: opens a database without writing anything, so a
  full or read-only card can still be inspected.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

from firmware.storage import fsutil

from .errors import LinekeeperError, StorageError

log = logging.getLogger(__name__)

LOCK_NAME = "lock"
CLEAN_STOP_NAME = "clean-stop"


class DataDirLock:
    """The exclusive right to write ``data_dir``; :meth:`release` (or ``with``) gives it up.

    :raises LinekeeperError: another process holds it (its pid is named)
    :raises StorageError: the lock file cannot be created (read-only, permission)
    """

    def __init__(self, data_dir):
        self.path = os.path.join(os.fspath(data_dir), LOCK_NAME)
        self._fd = None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise storage_error(exc, "cannot lock the data directory %s" % data_dir) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(self._fd)
            os.close(self._fd)
            self._fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LinekeeperError(
                    "%s is in use by another Linekeeper process (pid %s): one box per data "
                    "directory; stop it first" % (data_dir, holder or "unknown")
                ) from None
            raise storage_error(exc, "cannot lock the data directory %s" % data_dir) from None
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, b"%d\n" % os.getpid(), 0)
        except OSError:
            pass  # the pid is only for the message; the flock is what counts

    def release(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        self.release()


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


# ------------------------------------------------------------------ SQLite
# calls.db's write-ahead log is checkpointed every WAL_CHECKPOINT_BYTES and
# cut back to WAL_LIMIT_BYTES: the WAL, and what a checkpoint copies into the
# database, stay within a few MiB, which the recorder's disk reserve (64 MiB
# by default, `disk_reserve_mb`) keeps free for them.
# The limit is above the checkpoint size, with room for the commit that crosses it,
# so that a WAL at its usual size is never cut back (see preallocate_wal).
WAL_CHECKPOINT_BYTES = 1 << 20
WAL_LIMIT_BYTES = 2 << 20
# A new database's page size. Every commit appends each page it changed, whole,
# to the WAL: a call's row or an audit entry changes a few pages, so 1 KiB pages
# send about a quarter of what SQLite's default 4 KiB pages do (measured in
# `make bench`, power_fail.write_path). A database created with other pages
# keeps them (changing them takes a VACUUM, which rewrites the whole file).
NEW_DB_PAGE_BYTES = 1024


def new_db_pages(db):
    """Give ``db`` :data:`NEW_DB_PAGE_BYTES` pages if it is still empty (no effect on a
    database that holds anything, or is already in WAL mode). Call before any table."""
    db.execute("PRAGMA page_size=%d" % NEW_DB_PAGE_BYTES)


def tune_wal(db):
    """The pragmas every writer of ``calls.db`` uses: WAL, full sync, a bounded WAL."""
    new_db_pages(db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    page_bytes = db.execute("PRAGMA page_size").fetchone()[0]
    db.execute("PRAGMA wal_autocheckpoint=%d" % max(1, WAL_CHECKPOINT_BYTES // page_bytes))
    db.execute("PRAGMA journal_size_limit=%d" % WAL_LIMIT_BYTES)


def preallocate_wal(db_path, size=WAL_LIMIT_BYTES, keep_free=0):
    """Grow ``db_path``'s write-ahead log to ``size`` bytes, written through with zeroes,
    if it is shorter; for a database in WAL mode that another connection keeps open.

    A sync of a WAL that grew makes ext4 commit its own journal too (the file's new
    size and blocks): a few 4 KiB blocks on the card for every commit of a few
    1 KiB frames, until the WAL has reached its usual size, which on a quiet box
    takes hours, and it starts from nothing again each time the last connection
    closes (SQLite deletes it) or a checkpoint empties it. A sync that only
    overwrites blocks the file already has sends the card those blocks alone
    (docs/journal.md, "What the card receives").

    Only zeroes are added, after the last frame: SQLite reads frames up to the
    first that is not valid, and writes its next ones over the zeroes. The
    zeroes are written while this function holds the database's write lock
    (``BEGIN IMMEDIATE``), so no frame is being written meanwhile. Nothing
    happens to a database not in WAL mode, or when it would leave the card less
    than ``keep_free`` bytes free (SQLite then grows its log itself, as before).
    The log must stay open elsewhere: closing the last connection deletes it.
    """
    wal = os.fspath(db_path) + "-wal"
    if not os.path.exists(db_path):
        return  # (connecting would make an empty one)
    try:
        _grow_wal(db_path, wal, size, keep_free)
    except sqlite3.Error as exc:  # e.g. another process holds the write lock: as before
        log.info("%s: write-ahead log left to grow by itself (%s)", wal, exc)


def _grow_wal(db_path, wal, size, keep_free):
    db = sqlite3.connect(db_path, isolation_level=None, timeout=2)
    try:
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            have = os.path.getsize(wal)
            fs = os.statvfs(wal)
            if have < size and fs.f_bavail * fs.f_frsize - (size - have) >= keep_free:
                fd = os.open(wal, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.posix_fallocate(fd, have, size - have)  # a full card fails here
                    zeroes = memoryview(bytes(size - have))
                    while zeroes:
                        zeroes = zeroes[os.pwrite(fd, zeroes, size - len(zeroes)) :]
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            log.info("%s: write-ahead log left to grow by itself (%s)", wal, exc)
        finally:
            db.execute("COMMIT")
    finally:
        db.close()


def sync_wal(db_path):
    """Sync ``db_path``'s write-ahead log: every commit made with ``synchronous=NORMAL``
    reaches the card (a WAL already checkpointed away has nothing waiting).

    :raises OSError: the sync failed
    """
    try:
        fd = os.open(os.fspath(db_path) + "-wal", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ clean stop
def stopped_cleanly(data_dir):
    """Whether the last run of the box ended with a clean stop (the marker is there)."""
    return os.path.exists(os.path.join(os.fspath(data_dir), CLEAN_STOP_NAME))


def _clean_stop_mark(data_dir):
    """The clean-stop mark's ``(wall_us or None, run or None)``: its time (None: none, or a
    mark without one), and the run it carries (see :func:`mark_clean_stop`)."""
    try:
        with open(os.path.join(os.fspath(data_dir), CLEAN_STOP_NAME), encoding="utf-8") as f:
            text = f.read().strip()
    except (OSError, ValueError):
        return None, None
    if text.isdigit():
        return int(text), None
    try:
        mark = json.loads(text)
    except ValueError:
        return None, None  # empty: an older release's mark, or one without a time
    if not isinstance(mark, dict) or type(mark.get("at_us")) is not int:
        return None, None
    run = mark.get("run")
    return mark["at_us"], run if isinstance(run, dict) else None


def clean_stop_us(data_dir):
    """The wall time (µs) the last run stopped cleanly at, or None (no clean stop, or a
    mark without a time)."""
    return _clean_stop_mark(data_dir)[0]


def clean_stop_run(data_dir):
    """The ``box_start`` details of the last run when its clean-stop mark carries them (the
    card kept no entry of that run: see :func:`mark_clean_stop`), else None."""
    return _clean_stop_mark(data_dir)[1]


def mark_clean_stop(data_dir, wall_us, run=None):
    """Record that the box stopped cleanly at wall time ``wall_us`` (None: a mark without
    a time, as an older release left): one commit of the file system's journal, which
    carries whatever the stop left unsynced before it (journal transactions commit in
    order: the mark is never on the card first).

    ``run``: the run's ``box_start`` details, for a stop the audit trail has no entry of
    (the card refused both the run's ``box_start`` and its ``box_stop``): the mark carries
    them, as ``box_stop`` carries a refused start, and the next start audits them
    (:func:`firmware.uptime.start_details`). An older release reads such a mark as one
    without a time."""
    if run is not None:
        text = json.dumps({"at_us": int(wall_us), "run": run}).encode() + b"\n"
    else:
        text = b"" if wall_us is None else b"%d\n" % wall_us
    fsutil.atomic_write(os.path.join(os.fspath(data_dir), CLEAN_STOP_NAME), text, mode=0o600, one_commit=True)


def clear_clean_stop(data_dir):
    """The box is running: a stop from now on is a crash until :func:`mark_clean_stop`."""
    fsutil.remove_durable(os.path.join(os.fspath(data_dir), CLEAN_STOP_NAME))


# ------------------------------------------------------------------ errors
_SQLITE_REASONS = {
    13: "the disk is full",  # SQLITE_FULL
    8: "the data is read-only",  # SQLITE_READONLY
    3: "permission denied",  # SQLITE_PERM
    23: "permission denied",  # SQLITE_AUTH
    10: "an I/O error (the card may be failing)",  # SQLITE_IOERR
    11: "the database is damaged",  # SQLITE_CORRUPT
    26: "it is not a database (damaged or replaced)",  # SQLITE_NOTADB
    14: "it cannot be opened (missing, or no permission)",  # SQLITE_CANTOPEN
    5: "it is locked by another process",  # SQLITE_BUSY
}
# Opening a database in WAL mode, or a write that makes its WAL outgrow the index, grows
# its -shm file; on a full card that fails as an I/O error by its primary code, though the
# card is sound and only needs room (the recorder takes it as a full disk too).
SQLITE_IOERR_SHMSIZE = 4874
# Extended result codes with a reason of their own, before the primary code's.
_SQLITE_EXTENDED_REASONS = {
    SQLITE_IOERR_SHMSIZE: "the disk is full (no room for the database's -shm file)",
}
_ERRNO_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the data is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "an I/O error (the card may be failing)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EISDIR: "a directory is where the file should be",
}


def on_read_only_card(exc, path):
    """``exc`` (an :class:`sqlite3.Error` opening the database ``path`` to write) as a
    read-only error when the file system ``path`` is on is mounted read-only (a card
    that failed is often remounted so): SQLite says it "cannot open" a database it cannot
    make the ``-shm`` of, which :func:`storage_error` could only call missing, or no
    permission. Any other error is ``exc`` itself."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF != 14:  # SQLITE_CANTOPEN
        return exc
    try:
        read_only = bool(os.statvfs(os.path.dirname(os.path.abspath(path))).f_flag & os.ST_RDONLY)
    except OSError:
        return exc
    if not read_only:
        return exc
    said = sqlite3.OperationalError("%s cannot be written: its file system is read-only" % path)
    said.sqlite_errorcode = 8  # SQLITE_READONLY
    said.sqlite_errorname = "SQLITE_READONLY"
    return said


def is_storage_error(exc):
    return isinstance(exc, (sqlite3.Error, OSError)) and not isinstance(exc, LinekeeperError)


def storage_error(exc, what):
    """A :class:`StorageError` saying ``what`` failed and why, in one line.

    ``exc`` is an :class:`sqlite3.Error` or :class:`OSError`.
    """
    reason = None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        reason = _SQLITE_EXTENDED_REASONS.get(code)
        reason = reason or _SQLITE_REASONS.get(code & 0xFF if code is not None else None)
        reason = reason or str(exc)
    elif isinstance(exc, OSError):
        reason = _ERRNO_REASONS.get(exc.errno) or exc.strerror or str(exc)
        if exc.filename:
            reason += " (%s)" % exc.filename
    else:
        reason = str(exc)
    message = "%s: %s" % (what, reason)
    return StorageError(getattr(exc, "errno", None) or errno.EIO, " ".join(message.split()))


def connect_readonly(path):
    """An SQLite connection to the existing database ``path`` that changes nothing in it.

    A normal read-only open shares a running box's ``-shm`` and reads its
    WAL. Where SQLite cannot create the ``-shm`` file (a read-only or full
    card) and there is nothing in a WAL to read (a cleanly closed database,
    or an empty ``-wal`` a failed open left), it is opened as immutable,
    which needs no ``-shm``; nobody can be writing a card in that state.

    :raises StorageError: missing, unreadable, or not a database
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        try:
            os.stat(path)
        except OSError as exc:
            raise storage_error(exc, "cannot open %s" % path) from None
        raise StorageError(errno.EINVAL, "%s is not a file" % path)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise storage_error(exc, "cannot open %s" % path) from None
    uri = "file:%s?mode=ro" % _quote(path)
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.Error as exc:
        first = exc
    try:
        wal_bytes = os.path.getsize(path + "-wal")
    except OSError:
        wal_bytes = 0
    if not wal_bytes:  # nothing in a WAL to read (a failed open can leave it empty)
        try:
            db = sqlite3.connect(
                uri + "&immutable=1", uri=True, check_same_thread=False, isolation_level=None
            )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error as exc:
            first = exc
    raise storage_error(first, "cannot read %s" % path) from None


def _quote(path):
    from urllib.parse import quote

    return quote(path, safe="/")


def integrity_problems(db, name):
    """``PRAGMA integrity_check`` of an open connection as a list of problems."""
    try:
        rows = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.Error as exc:
        return ["%s: %s" % (name, storage_error(exc, "integrity check failed"))]
    if rows == ["ok"]:
        return []
    return ["%s: integrity check: %s" % (name, r) for r in rows[:20]]


@contextlib.contextmanager
def immediate_transaction(
    db: sqlite3.Connection, lock: contextlib.AbstractContextManager[Any]
) -> Iterator[sqlite3.Connection]:
    """``with immediate_transaction(db, lock) as conn:`` — all or nothing.

    ``db`` is an autocommit connection (``isolation_level=None``) shared behind
    ``lock``, which is held from ``BEGIN IMMEDIATE`` (the write lock taken at
    once, so a busy database is met here rather than half-way) until the
    ``COMMIT``, or the ``ROLLBACK`` when the block raises (anything, even
    ``KeyboardInterrupt``: nothing half-written stays).
    """
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _site_row(data_dir, key):
    """web.db's row of site key ``key`` (None: not there). :raises sqlite3.Error: unreadable"""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "web.db"), uri=True)
    try:
        return db.execute("SELECT value FROM site WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()


def _site_value(data_dir, key):
    """The text of web.db's site key ``key``, or None (not there, or unreadable)."""
    try:
        row = _site_row(data_dir, key)
    except sqlite3.Error:
        return None
    return row[0] if row else None


def site_value(data_dir, key):
    """The text of web.db's site key ``key`` (a field kept apart from the settings' JSON,
    such as ``dpia_reviewed``), or None: not there, or web.db cannot be read."""
    return _site_value(data_dir, key)


def site_flag(data_dir, key):
    """Whether web.db's site flag ``key`` (``setup_complete``, ``recovery_confirmed``) is set:
    False when it is not there, None when web.db cannot be read (not made yet, or refused)."""
    try:
        row = _site_row(data_dir, key)
    except sqlite3.Error:
        return None
    return bool(row) and row[0] == "true"


def account_lines(data_dir):
    """``{name: (roles, lines)}`` of the enabled accounts in ``web.db`` (``roles`` a
    frozenset of role names, ``lines`` a tuple of the lines granted), read-only, for the
    processes that do not serve the web UI; None when web.db cannot be read (not made yet,
    or refused). A disabled account (unused for 90 days, or by an installer: web/inactive.py)
    is left out: an alarm recipient tied to it is mailed as one tied to a deleted account
    (:func:`firmware.mail.alarms.recipients_for`). A web.db the web UI of a release before
    made has no such state: every account there is enabled."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "web.db"), uri=True)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM users").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    out = {}
    for row in rows:
        if "disabled_us" in row.keys() and row["disabled_us"] is not None:
            continue
        name, roles, lines = row["name"], row["roles"], row["lines"]
        try:
            granted = tuple(sorted(int(n) for n in str(lines).split(",") if n))
        except ValueError:
            granted = ()  # (never written so: web.accounts writes whole numbers)
        out[name] = (frozenset(r for r in str(roles).split(",") if r), granted)
    return out


def account_made_us(data_dir, name):
    """When ``web.db``'s account ``name`` was made (µs since the epoch), read-only, for the
    processes that do not serve the web UI; None when there is no such account (a removed
    one's name) or web.db cannot be read (not made yet, or refused)."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "web.db"), uri=True)
        try:
            row = db.execute("SELECT created_us FROM users WHERE name = ?", (name,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return None if row is None or row[0] is None else int(row[0])


def site_settings(data_dir):
    """The site settings the setup wizard saved in ``web.db`` (a dict), or None (a box not
    set up, or a ``web.db`` that cannot be read): read-only, for the processes that do not
    serve the web UI."""
    import json

    try:
        settings = json.loads(_site_value(data_dir, "settings") or "null")
    except (ValueError, TypeError):
        return None
    return settings if isinstance(settings, dict) else None


def site_line_names(site):
    """``{line: name}`` of site settings ``site`` (a dict, :func:`site_settings`, or None):
    what the pages, the alarm mails and the reports call each line ("line 2 (Office)")."""
    names = {}
    for n, line in enumerate((site or {}).get("lines") or (), start=1):
        if isinstance(line, dict) and isinstance(line.get("name"), str):
            names[int(line.get("line", n))] = line["name"]
    return names


def site_zone(data_dir):
    """The name of the box's zone, as the pages date in it (the site settings'
    ``time_zone`` in ``data_dir``: :func:`~firmware.localtime.box_zone`)."""
    from .localtime import box_zone

    return box_zone((site_settings(data_dir) or {}).get("time_zone"))


def site_local_time(data_dir):
    """A :class:`~firmware.localtime.LocalTime` in the box's zone (:func:`site_zone`)."""
    from .localtime import LocalTime

    return LocalTime(site_zone(data_dir))


def site_region(data_dir):
    """Where the business is, as the site settings say (web.db's site key "region", kept
    apart from the settings' JSON: see web.site.SiteSettings): "ENG", "WLS", "SCT" or
    "NIR", as stored (not checked here); None when none is stored or web.db cannot be
    read (firmware.rights then counts England's bank holidays, as before there was a
    choice)."""
    return _site_value(data_dir, "region")
