"""The crash tests' model of a database after a power cut (tests/support/sqlitesyncs.py):
its files as last synced, whatever was committed since."""

import contextlib
import os
import sqlite3

from support.sqlitesyncs import SyncedFiles


def _image(files, db_path, dest):
    """The database as a cut now would leave it, opened from ``dest``; its rows."""
    os.makedirs(dest)
    for suffix in ("", "-wal"):
        content = files.content(db_path + suffix)
        if content is not None:
            with open(os.path.join(dest, "x.db" + suffix), "wb") as f:
                f.write(content)
    with contextlib.closing(sqlite3.connect(os.path.join(dest, "x.db"))) as db:
        return [r[0] for r in db.execute("SELECT a FROM t ORDER BY a")]


def test_a_database_after_a_cut_has_what_was_synced(tmp_path):
    path = str(tmp_path / "data" / "x.db")
    os.makedirs(os.path.dirname(path))
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (a)")
    with SyncedFiles(tmp_path / "data") as files:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            assert _image(files, path, tmp_path / "at-rest") == []
            db.execute("PRAGMA synchronous=FULL")
            db.execute("INSERT INTO t VALUES (1)")  # synced as it commits
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("INSERT INTO t VALUES (2)")  # committed, not synced
            assert _image(files, path, tmp_path / "normal") == [1]
            os.fsync(fd := os.open(path + "-wal", os.O_RDONLY))  # the box's own sync of the log
            os.close(fd)
            files.synced(path + "-wal")
            assert _image(files, path, tmp_path / "synced") == [1, 2]
            db.execute("INSERT INTO t VALUES (3)")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the database synced, the log emptied
            assert _image(files, path, tmp_path / "checkpointed") == [1, 2, 3]
        finally:
            db.close()
    # Outside, connections are SQLite's own again: nothing more is seen.
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("INSERT INTO t VALUES (4)")
    assert _image(files, path, tmp_path / "after") == [1, 2, 3]
