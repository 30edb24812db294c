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


def test_a_clean_stop_mark_carries_the_run_the_card_kept_no_entry_of(tmp_path):
    run = {"after": "first_start", "down_from": None, "started": "2026-03-02T09:00:00.000Z"}
    datadir.mark_clean_stop(tmp_path, 123, run=run)
    assert (datadir.clean_stop_us(tmp_path), datadir.clean_stop_run(tmp_path)) == (123, run)
    datadir.mark_clean_stop(tmp_path, 456)
    assert (datadir.clean_stop_us(tmp_path), datadir.clean_stop_run(tmp_path)) == (456, None)
    for older in ("", "{}", "[1]", "not a mark"):  # an older release's mark without a time, or damaged
        (tmp_path / datadir.CLEAN_STOP_NAME).write_text(older)
        assert (datadir.clean_stop_us(tmp_path), datadir.clean_stop_run(tmp_path)) == (None, None)


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


def test_no_room_for_a_databases_shared_memory_file_is_a_full_disk_not_a_failing_card():
    # What SQLite raises opening a database in WAL mode on a full card: it cannot grow
    # the -shm file (a tmpfs or ext4 with no free block). Said as "an I/O error (the
    # card may be failing)", a technician would replace a card that only needed room.
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = 4874  # SQLITE_IOERR_SHMSIZE
    said = str(datadir.storage_error(exc, "cannot open the audit trail"))
    assert "the disk is full" in said and "failing" not in said
    exc.sqlite_errorcode = 10 | (4 << 8)  # SQLITE_IOERR_SHORT_READ: still an I/O error
    assert "may be failing" in str(datadir.storage_error(exc, "cannot open"))


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


def _calls_db(path):
    db = sqlite3.connect(path, isolation_level=None)
    datadir.tune_wal(db)
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, b TEXT)")
    return db


def test_a_write_ahead_log_is_grown_once_and_sqlite_commits_over_its_zeroes(tmp_path):
    path = str(tmp_path / "calls.db")
    db = _calls_db(path)  # the box's connection, which keeps the log
    db.execute("INSERT INTO t (b) VALUES ('before')")
    datadir.preallocate_wal(path)
    assert os.path.getsize(path + "-wal") == datadir.WAL_LIMIT_BYTES
    assert sorted(os.listdir(tmp_path)) == ["calls.db", "calls.db-shm", "calls.db-wal"]
    for i in range(2000):  # past a checkpoint (1 MiB of 1 KiB frames) and round again
        db.execute("INSERT INTO t (b) VALUES (?)", ("x" * 300,))
        assert os.path.getsize(path + "-wal") == datadir.WAL_LIMIT_BYTES, i
    # what a crash would leave (the database and its log as they are now) holds every commit
    for name in ("calls.db", "calls.db-wal"):
        with open(tmp_path / name, "rb") as src, open(tmp_path / ("crash-" + name), "wb") as dst:
            dst.write(src.read())
    db.close()
    for name in ("calls.db", "crash-calls.db"):
        check = sqlite3.connect(tmp_path / name)
        assert check.execute("SELECT count(*) FROM t").fetchone() == (2001,)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()


def test_frames_already_in_the_log_are_kept_and_only_zeroes_follow(tmp_path):
    path = str(tmp_path / "calls.db")
    db = _calls_db(path)
    db.execute("INSERT INTO t (b) VALUES ('in the log only')")
    with open(path + "-wal", "rb") as f:
        before = f.read()
    datadir.preallocate_wal(path)
    with open(path + "-wal", "rb") as f:
        after = f.read()
    assert after[: len(before)] == before and not after[len(before) :].strip(b"\0")
    copy = tmp_path / "copy.db"
    with open(path, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    with open(str(copy) + "-wal", "wb") as dst:
        dst.write(after)
    assert sqlite3.connect(copy).execute("SELECT b FROM t").fetchall() == [("in the log only",)]
    db.close()


def test_a_database_not_in_wal_mode_is_left_as_it_is(tmp_path):
    path = str(tmp_path / "other.db")
    sqlite3.connect(path).execute("CREATE TABLE t (a)")
    datadir.preallocate_wal(path)
    assert os.listdir(tmp_path) == ["other.db"]


def test_no_room_for_the_log_changes_nothing_and_sqlite_grows_its_own(tmp_path, monkeypatch):
    path = str(tmp_path / "calls.db")
    db = _calls_db(path)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    datadir.preallocate_wal(path)
    assert os.path.getsize(path + "-wal") < datadir.WAL_LIMIT_BYTES
    monkeypatch.undo()
    db.execute("INSERT INTO t (b) VALUES ('one')")  # not locked out: the write lock was let go
    assert db.execute("SELECT b FROM t").fetchall() == [("one",)]
    db.close()


def test_a_card_short_of_room_keeps_it(tmp_path):
    path = str(tmp_path / "calls.db")
    db = _calls_db(path)
    fs = os.statvfs(tmp_path)
    datadir.preallocate_wal(path, keep_free=fs.f_bavail * fs.f_frsize)  # what it has, and no more
    assert os.path.getsize(path + "-wal") < datadir.WAL_LIMIT_BYTES
    db.close()


def test_a_log_another_writer_holds_is_left_to_grow_by_itself(tmp_path):
    path = str(tmp_path / "calls.db")
    db = _calls_db(path)
    db.execute("BEGIN IMMEDIATE")  # another process in the middle of a commit
    db.execute("INSERT INTO t (b) VALUES ('one')")
    datadir.preallocate_wal(path)  # no error: the box starts all the same
    db.execute("COMMIT")
    assert os.path.getsize(path + "-wal") < datadir.WAL_LIMIT_BYTES
    db.close()
    datadir.preallocate_wal(str(tmp_path / "missing.db"))
    assert sorted(os.listdir(tmp_path)) == ["calls.db"]


def test_a_database_that_cannot_be_opened_on_a_read_only_card_is_said_to_be_read_only(tmp_path, monkeypatch):
    # SQLite cannot make the -shm file of a database on a card remounted read-only, and says
    # it "cannot open" it: "missing, or no permission", for a file that is there.
    exc = sqlite3.OperationalError("unable to open database file")
    exc.sqlite_errorcode = 14  # SQLITE_CANTOPEN
    path = str(tmp_path / "audit.db")
    assert datadir.on_read_only_card(exc, path) is exc  # a card that can be written: as it was
    real = os.statvfs(tmp_path)

    class ReadOnly:
        f_flag = real.f_flag | os.ST_RDONLY

    monkeypatch.setattr(datadir.os, "statvfs", lambda where: ReadOnly)
    said = str(datadir.storage_error(datadir.on_read_only_card(exc, path), "cannot open the audit trail"))
    assert "the data is read-only" in said and "missing" not in said
    other = sqlite3.OperationalError("disk I/O error")
    other.sqlite_errorcode = 10
    assert datadir.on_read_only_card(other, path) is other
