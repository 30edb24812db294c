"""The data directory's lock, clean-stop marker, storage error messages and read-only opens."""

import errno
import os
import sqlite3

import pytest

from firmware import datadir
from firmware.errors import LinekeeperError, StorageError


def test_a_second_lock_is_refused_naming_the_holder_and_free_after_release(tmp_path):
    first = datadir.DataDirLock(tmp_path)
    with pytest.raises(LinekeeperError, match="pid %d" % os.getpid()):
        datadir.DataDirLock(tmp_path)
    first.release()
    with datadir.DataDirLock(tmp_path):
        pass


def test_the_clean_stop_marker(tmp_path):
    assert not datadir.stopped_cleanly(tmp_path)
    datadir.mark_clean_stop(tmp_path, 123)
    assert datadir.stopped_cleanly(tmp_path)
    datadir.clear_clean_stop(tmp_path)
    assert not datadir.stopped_cleanly(tmp_path)


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "disk is full"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EIO, "I/O error"),
    ],
)
def test_os_errors_become_one_line_storage_errors(code, words):
    exc = datadir.storage_error(OSError(code, os.strerror(code), "/data/calls.db"), "cannot write")
    assert isinstance(exc, StorageError) and words in str(exc) and "/data/calls.db" in str(exc)
    assert "\n" not in str(exc)


def test_sqlite_errors_become_one_line_storage_errors(tmp_path):
    path = tmp_path / "calls.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(sqlite3.DatabaseError) as info:
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()
    assert "not a database" in str(datadir.storage_error(info.value, "calls.db"))
    with pytest.raises(StorageError, match="not a database"):
        datadir.connect_readonly(path)


def test_read_only_open_writes_nothing(tmp_path):
    path = tmp_path / "calls.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = path.read_bytes()
    ro = datadir.connect_readonly(path)
    assert ro.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("INSERT INTO t VALUES (1)")
    ro.close()
    assert path.read_bytes() == before
    with pytest.raises(StorageError):
        datadir.connect_readonly(tmp_path / "missing.db")
    assert datadir.integrity_problems(sqlite3.connect(path), "calls.db") == []
