"""``DATA_DIR/web.db``: accounts, sessions, login throttling, site settings,
the phonebook and notes on calls.

One SQLite file in WAL mode with ``synchronous=FULL`` (an account change or
a finished setup must survive a power cut). Session ids and setup codes are
never stored in clear: only their SHA-256, so a copy of the file opens no
session. Connections are shared between the server's threads behind a lock:
every statement is short.
"""

import contextlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from firmware.datadir import immediate_transaction
from firmware.storage.fsutil import create_db_file

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    pw_hash       TEXT NOT NULL,
    roles         TEXT NOT NULL,          -- comma-separated: installer,supervisor,auditor
    lines         TEXT NOT NULL DEFAULT '',  -- comma-separated line numbers granted
    created_us    INTEGER NOT NULL,
    pw_changed_us INTEGER NOT NULL,
    pw_history    TEXT NOT NULL DEFAULT '[]',  -- JSON: the hashes of the previous passwords, newest first
    must_change   TEXT NOT NULL DEFAULT '',    -- why the password must be changed first ('' if not)
    disabled_us   INTEGER,                -- when the account was disabled (NULL: enabled)
    disabled_why  TEXT NOT NULL DEFAULT '',  -- why (web.inactive.UNUSED_REASON, or by an installer)
    enabled_us    INTEGER                 -- when last enabled again (its unused days count from then)
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash       TEXT PRIMARY KEY,       -- SHA-256 of the cookie value
    user          TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf          TEXT NOT NULL,
    created_us    INTEGER NOT NULL,
    seen_us       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user);
CREATE TABLE IF NOT EXISTS throttle (
    key           TEXT PRIMARY KEY,       -- "user:NAME" or "addr:IP" or "setup:IP"
    failures      INTEGER NOT NULL,
    last_us       INTEGER NOT NULL,
    blocked_until_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS site (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL           -- JSON
);
CREATE TABLE IF NOT EXISTS phonebook (
    number        TEXT PRIMARY KEY,       -- international form, e.g. +441632960777
    name          TEXT NOT NULL,
    updated_us    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS call_notes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id       INTEGER NOT NULL,
    note          TEXT NOT NULL,
    by_user       TEXT NOT NULL,
    at_us         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS call_notes_call ON call_notes (call_id, id);
-- The caller's name corrected for one call (web/corrections.py): the newest is the call's.
CREATE TABLE IF NOT EXISTS call_corrections (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id       INTEGER NOT NULL,
    name          TEXT NOT NULL,          -- sealed, or '' once erased on request
    by_user       TEXT NOT NULL,
    at_us         INTEGER NOT NULL,
    request       INTEGER                 -- the data subject's request it answers, if any
);
CREATE INDEX IF NOT EXISTS call_corrections_call ON call_corrections (call_id, id);
"""


# Columns added to a table after web.db was first made: a web.db from an earlier release
# gets them at its first open, each with its default (an account there is enabled). A
# release before ignores them (it reads rows by name, and names its columns on insert).
ADDED_COLUMNS = (
    ("users", "disabled_us", "INTEGER"),
    ("users", "disabled_why", "TEXT NOT NULL DEFAULT ''"),
    ("users", "enabled_us", "INTEGER"),
)


# Put before the password hash of a disabled account (web.accounts.Accounts.disable), and
# taken off when it is enabled: a release from before accounts could be disabled ignores the
# columns that say so (a firmware rolled back), and checks a password against the hash
# alone; a marked hash is no Argon2id hash to it, so it refuses every password.
DISABLED_MARK = "!disabled!"


def _mark_disabled(db: sqlite3.Connection) -> None:
    """Mark the hash of each disabled account that lacks :data:`DISABLED_MARK`: disabled by
    a release before the mark, or given a new password by an earlier release meanwhile."""
    db.execute(
        "UPDATE users SET pw_hash = ? || pw_hash "
        "WHERE disabled_us IS NOT NULL AND substr(pw_hash, 1, ?) != ?",
        (DISABLED_MARK, len(DISABLED_MARK), DISABLED_MARK),
    )


def _add_columns(db: sqlite3.Connection) -> None:
    """Add :data:`ADDED_COLUMNS` a web.db from an earlier release lacks."""
    for table, column, kind in ADDED_COLUMNS:
        have = {row[1] for row in db.execute("PRAGMA table_info(%s)" % table)}
        if column not in have:
            db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, kind))


class WebDb:
    """The web layer's database at ``path``; :meth:`tx` runs a transaction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.RLock()
        # The box's data mode (its -wal and -shm copy it): the recorder reads the site
        # settings here and seals what an older firmware left in clear.
        create_db_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # What is deleted or overwritten (a note erased on request, a phonebook entry) is
        # zeroed in its page, not left for the next write to reuse.
        self._db.execute("PRAGMA secure_delete=ON")
        with self.tx() as db:
            for statement in SCHEMA.split(";")[:-1]:
                db.execute(statement)
            _add_columns(db)
            _mark_disabled(db)
            db.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)

    def tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """``with db.tx() as conn:`` — all or nothing; the lock is held throughout
        (:func:`firmware.datadir.immediate_transaction`)."""
        return immediate_transaction(self._db, self._lock)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """All rows of a read-only statement."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first row of a read-only statement, or None."""
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def checkpoint(self) -> bool:
        """Move everything into web.db and empty its write-ahead log (after an erasure:
        the WAL would keep the old pages until SQLite reuses it); False when a reader
        made it busy (SQLite's next checkpoint finishes it)."""
        with self._lock:
            return not self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
