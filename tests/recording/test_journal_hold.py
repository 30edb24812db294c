"""With the journal, a recording file gets its chunks at its seal, in room reserved ahead.

Why (docs/journal.md): a file written chunk by chunk, even unsynced, has its
last page written back by the kernel every half minute and its inode committed
by ext4 every 5 s; the journal already holds every chunk on the card.
"""

import errno
import os
import uuid

import pytest

from firmware.errors import DiskFullError
from firmware.recording import journal, segment
from firmware.recording.journal import Journal, replay
from firmware.recording.segment import SegmentReader, SegmentWriter, inspect
from firmware.storage import fsutil

HEADER = {"call_id": 7, "line": 1, "profile": "voice", "rate": 8000, "chunk_ms": 600}
KEY = bytes(range(32))
BLOCK = 4096


@pytest.fixture
def jnl(tmp_path):
    j = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    j.deferred = True  # as the recorder runs it: one commit per capture pass
    yield j
    j.close()


def _writer(tmp_path, jnl):
    rid = uuid.uuid4().hex
    path = tmp_path / "recordings" / (rid + ".lkrec")
    path.parent.mkdir(exist_ok=True)
    return SegmentWriter(path, rid, KEY, HEADER, fsync=True, journal=jnl), rid, path


def _allocated(path):
    return os.stat(path).st_blocks * 512


def test_the_file_gets_its_chunks_once_at_the_seal(tmp_path, jnl):
    w, rid, path = _writer(tmp_path, jnl)
    header = len(w.header_bytes)
    chunks = [os.urandom(300 + 40 * i) for i in range(40)]
    for c in chunks:
        w.write_chunk(c)
        jnl.commit()
        # Nothing was written into the file: the card's copy of each chunk is the journal's.
        assert os.path.getsize(path) == header
    assert jnl.commits == len(chunks)
    # The room for them is the file's already (a full disk would have shown by now).
    assert _allocated(path) >= segment.HOLD_BYTES
    w.close()
    data, complete = SegmentReader(path, KEY).read_all()
    assert data == b"".join(chunks) and complete
    # What was not used of the room is given back at the seal.
    assert _allocated(path) <= -(-os.path.getsize(path) // BLOCK) * BLOCK


def test_a_crash_before_the_seal_loses_no_committed_chunk(tmp_path, jnl):
    w, rid, path = _writer(tmp_path, jnl)
    chunks = [os.urandom(500) for _ in range(20)]
    for c in chunks:
        w.write_chunk(c)
    jnl.commit()
    # A crash now: the process and its memory are gone; the file holds its header alone.
    assert inspect(path)["chunks"] == 0
    os.close(w.fd)
    done = replay(jnl.path, str(tmp_path / "recordings"))
    assert done == {rid: sum(len(c) for c in chunks) + 20 * (4 + 16)}
    data, complete = SegmentReader(path, KEY).read_all()
    assert data == b"".join(chunks) and not complete
    # Replay gives back the room the writer had reserved.
    assert _allocated(path) <= -(-os.path.getsize(path) // BLOCK) * BLOCK


def test_used_up_room_sends_what_is_held_to_the_file_and_reserves_more(tmp_path, jnl, monkeypatch):
    monkeypatch.setattr(segment, "HOLD_BYTES", 8 * 1024)
    w, rid, path = _writer(tmp_path, jnl)
    header = len(w.header_bytes)
    chunks = [os.urandom(1000) for _ in range(20)]  # about 20 KiB: the room is used up twice
    sizes = []
    for c in chunks:
        w.write_chunk(c)
        jnl.commit()
        sizes.append(os.path.getsize(path))
    assert sizes[0] == header and len(set(sizes)) == 3  # written into the file twice
    assert sizes[-1] - header < sum(len(c) for c in chunks)
    # A crash: replay puts the held rest where it belongs.
    os.close(w.fd)
    replay(jnl.path, str(tmp_path / "recordings"))
    assert SegmentReader(path, KEY).read_all()[0] == b"".join(chunks)


def test_where_room_cannot_be_reserved_chunks_go_to_the_file_as_they_come(tmp_path, jnl, monkeypatch):
    monkeypatch.setattr(fsutil, "reserve", lambda fd, offset, length: False)
    w, rid, path = _writer(tmp_path, jnl)
    header = len(w.header_bytes)
    w.write_chunk(b"a" * 100)
    assert os.path.getsize(path) == header + 4 + 100 + 16
    w.close()
    assert SegmentReader(path, KEY).read_all() == (b"a" * 100, True)


def test_a_full_disk_shows_at_the_chunk_that_needs_room(tmp_path, jnl, monkeypatch):
    monkeypatch.setattr(segment, "HOLD_BYTES", 4096)
    w, rid, path = _writer(tmp_path, jnl)
    asked = []
    real = fsutil.reserve

    def full_after_first(fd, offset, length):
        asked.append(length)
        if len(asked) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, offset, length)

    monkeypatch.setattr(fsutil, "reserve", full_after_first)
    kept = []
    with pytest.raises(DiskFullError):
        for _ in range(10):
            w.write_chunk(b"b" * 1500)
            kept.append(b"b" * 1500)
            jnl.commit()
    # First the whole room, then, on a disk too full for it, room for that chunk alone.
    assert asked[0] == 4096 and asked[2] < asked[1] == 4096
    # The writer has closed; the file keeps every chunk before the one that met the full disk.
    assert w.closed
    data, complete = SegmentReader(path, KEY).read_all()
    assert data == b"".join(kept) and not complete


def test_the_recovery_sweep_gives_back_room_a_crash_left_reserved(tmp_path, caplog):
    # A file whose held chunks went into it (a journal that wrapped round) and whose
    # journal holds nothing of it: replay does not open it, the sweep does.
    from firmware.recording.store import _release_reserve

    path = tmp_path / "r.lkrec"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"x" * 5000)
        assert fsutil.reserve(fd, 5000, segment.HOLD_BYTES)
    finally:
        os.close(fd)
    assert _allocated(path) >= segment.HOLD_BYTES
    _release_reserve(str(path))
    assert path.read_bytes() == b"x" * 5000 and _allocated(path) <= 8192
    _release_reserve(str(tmp_path / "gone.lkrec"))  # says so, raises nothing
    assert "cannot give back the room reserved for" in caplog.text
