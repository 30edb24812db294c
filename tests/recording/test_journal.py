"""The shared recording journal: records committed there reach the files on replay."""

import itertools
import os
import uuid

import pytest

from firmware.recording import journal
from firmware.recording.journal import SECTOR, Journal, read_records, replay
from firmware.recording.segment import SegmentReader, SegmentWriter, inspect

HEADER = {"call_id": 7, "line": 1, "profile": "voice", "rate": 8000, "chunk_ms": 600}
KEY = bytes(range(32))


def _writer(tmp_path, jnl, rid=None):
    rid = rid or uuid.uuid4().hex
    path = tmp_path / "recordings" / (rid + ".lkrec")
    path.parent.mkdir(exist_ok=True)
    return SegmentWriter(path, rid, KEY, HEADER, fsync=True, journal=jnl), rid, path


@pytest.fixture
def jnl(tmp_path):
    j = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=64 * 1024)
    yield j
    j.close()


def test_a_crash_before_the_file_is_written_loses_no_committed_chunk(tmp_path, jnl):
    w, rid, path = _writer(tmp_path, jnl)
    chunks = [b"chunk %d " % i * 20 for i in range(12)]
    for c in chunks:
        w.write_chunk(c)
    # A power cut now: the file's unsynced pages never reached the card.
    os.truncate(path, len(w.header_bytes))
    assert inspect(path)["chunks"] == 0
    done = replay(jnl.path, str(tmp_path / "recordings"))
    assert done[rid] > 0
    data, complete = SegmentReader(path, KEY).read_all()
    assert data == b"".join(chunks) and not complete


def test_replay_repairs_garbage_that_a_power_cut_left_in_unsynced_pages(tmp_path, jnl):
    w, rid, path = _writer(tmp_path, jnl)
    chunks = [os.urandom(900) for _ in range(30)]
    for c in chunks:
        w.write_chunk(c)
    with open(path, "r+b") as f:  # those pages never landed: garbage instead
        f.seek(len(w.header_bytes) + 10)
        f.write(os.urandom(600))
    replay(jnl.path, str(tmp_path / "recordings"))
    assert SegmentReader(path, KEY).read_all()[0] == b"".join(chunks)


def test_closed_file_is_complete_and_replay_changes_nothing(tmp_path, jnl):
    w, rid, path = _writer(tmp_path, jnl)
    for c in (b"a" * 100, b"b" * 200):
        w.write_chunk(c)
    w.close()
    before = path.read_bytes()
    assert SegmentReader(path, KEY).read_all() == (b"a" * 100 + b"b" * 200, True)
    replay(jnl.path, str(tmp_path / "recordings"))
    assert path.read_bytes() == before


def test_replay_never_creates_a_discarded_recording(tmp_path, jnl):
    w, rid, path = _writer(tmp_path, jnl)
    w.write_chunk(b"x" * 50)
    w.abort()
    os.unlink(path)
    assert replay(jnl.path, str(tmp_path / "recordings")) == {}
    assert not path.exists()


def test_a_torn_or_stale_record_ends_the_journal(tmp_path, jnl):
    w, rid, _ = _writer(tmp_path, jnl)
    for i in range(3):
        w.write_chunk(b"%d" % i * 64)
    assert len(read_records(jnl.path)) == 3
    raw = bytearray(open(jnl.path, "rb").read())
    raw[SECTOR + 2 * SECTOR + 60] ^= 0xFF  # inside the third commit: its CRC fails
    torn = tmp_path / "torn.lkj"
    torn.write_bytes(bytes(raw))
    assert len(read_records(torn)) == 2
    # A new generation (as after a replay) ignores everything the last one wrote.
    jnl.close()
    journal.reset(jnl.path)
    assert read_records(jnl.path) == []


def test_wrapping_round_syncs_the_open_files_first(tmp_path):
    j = Journal(tmp_path / "j.lkj", size_bytes=8 * SECTOR)
    try:
        w, rid, path = _writer(tmp_path, j)
        chunks = [os.urandom(700) for _ in range(10)]  # ten times the journal's room
        for c in chunks:
            w.write_chunk(c)
        # Everything before the last wrap is in the file itself; the rest in the journal.
        replay(j.path, str(tmp_path / "recordings"))
        assert SegmentReader(path, KEY).read_all()[0] == b"".join(chunks)
    finally:
        j.close()


def test_commits_write_only_the_sectors_they_touch(tmp_path, jnl):
    w, rid, _ = _writer(tmp_path, jnl)
    before = jnl.bytes_written
    for _ in range(10):
        w.write_chunk(b"v" * 150)
    per_commit = (jnl.bytes_written - before) / 10
    assert per_commit == SECTOR  # one sector each, not a 4 KiB page


def test_a_group_commit_writes_every_line_at_once_and_replays_each(tmp_path, jnl):
    jnl.deferred = True
    writers = [_writer(tmp_path, jnl) for _ in range(4)]
    for w, _, _ in writers:
        w.write_chunk(b"line audio " * 15)
    assert jnl.commits == 0 and read_records(jnl.path) == []  # staged, not yet on the card
    jnl.commit()
    assert jnl.commits == 1 and len(read_records(jnl.path)) == 4
    for w, _, path in writers:
        os.truncate(path, len(w.header_bytes))  # the files' unsynced pages lost
    replay(jnl.path, str(tmp_path / "recordings"))
    for _, _, path in writers:
        assert SegmentReader(path, KEY).read_all()[0] == b"line audio " * 15


def test_a_shorter_first_chunk_puts_later_chunks_on_the_grid():
    import numpy as np

    from firmware.recording.stages import ChunkPolicy, EncoderStage

    class Chunks(list):
        def write_chunk(self, data):
            self.append(data)

    out = Chunks()
    stage = EncoderStage("voice", 8000, ChunkPolicy(600), output=out, first_chunk_samples=2 * 960)
    stage.feed(np.zeros(2 * 960 - 1, np.int16))  # one sample short of two frames
    assert not out
    stage.feed(np.zeros(1, np.int16))
    assert len(out) == 1 and stage.stored_samples == 2 * 960  # 240 ms: the first, short chunk
    stage.feed(np.zeros(4800, np.int16))
    assert len(out) == 2 and stage.stored_samples == 2 * 960 + 4800  # then 600 ms chunks


def test_a_new_journal_is_written_through_once_and_an_old_one_is_left_as_it_is(tmp_path, monkeypatch):
    # Blocks only allocated would make ext4 commit its own journal at each of the
    # first generation's commits (the change from unwritten to written): a new
    # journal is filled with zeroes when it is made, and never again.
    writes = []
    pwrite = os.pwrite
    monkeypatch.setattr(
        os, "pwrite", lambda fd, data, pos: writes.append((pos, bytes(data))) or pwrite(fd, data, pos)
    )
    path = tmp_path / "journal" / journal.JOURNAL_NAME
    j = Journal(path, size_bytes=3 * 1024 * 1024 + 100)
    j.close()
    assert j.size_bytes == 3 * 1024 * 1024  # whole sectors, as O_DIRECT writes them
    filled = sorted((pos, len(data)) for pos, data in writes if not any(data))
    assert filled[0][0] == 0 and all(a + n == b for (a, n), (b, _) in itertools.pairwise(filled))
    assert filled[-1][0] + filled[-1][1] == j.size_bytes
    assert os.path.getsize(path) == j.size_bytes

    writes.clear()
    j = Journal(path, size_bytes=3 * 1024 * 1024)
    w, rid, _ = _writer(tmp_path, j)
    w.write_chunk(b"kept")
    j.close()
    assert not [pos for pos, data in writes if len(data) > 64 * 1024]  # no fill: its commits only
    assert [r[0] for r in read_records(path)] == [rid]


def test_a_refused_commit_stays_staged_for_the_next_up_to_half_the_journal(tmp_path, jnl, monkeypatch):
    """A card that refuses a commit may take the next: the records are written with it.
    Refused for longer, what waits is bounded: beyond half the journal's size it is
    dropped (the writers still hold the chunks for their files)."""
    write_at_end = Journal._write_at_end

    def refused(self, data):
        raise OSError(5, "Input/output error")

    jnl.deferred = True
    rid = uuid.uuid4().hex
    monkeypatch.setattr(Journal, "_write_at_end", refused)
    jnl.append(None, rid, 0, b"a" * 1000)
    with pytest.raises(OSError):
        jnl.commit()
    monkeypatch.setattr(Journal, "_write_at_end", write_at_end)
    jnl.append(None, rid, 1000, b"b" * 1000)
    jnl.commit()
    assert [(r, off, len(d)) for r, off, d in read_records(jnl.path)] == [(rid, 0, 1000), (rid, 1000, 1000)]
    monkeypatch.setattr(Journal, "_write_at_end", refused)
    for i in range(40):  # 40 KB refused, commit after commit: more than half of 64 KiB
        jnl.append(None, rid, 2000 + 1000 * i, b"c" * 1000)
        with pytest.raises(OSError):
            jnl.commit()
        assert len(jnl._staged) <= 32
    assert len(jnl._staged) < 40
