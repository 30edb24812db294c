"""Under a hold-up capacitor with a journal, a recording's seal goes through the journal.

Why (docs/holdup-writes.md): every chunk in the middle of a call is appended to its
file and synced with the other lines' (one commit of ext4's journal a minute for them
all), but the seal synced the file on its own, twice (its last chunk, then its final
record, each a new size for ext4 to commit): two commits for every recording. Now the
last chunk and the final record are committed to the recording journal in one write,
handed to the file unsynced, and the file is synced when the journal wraps round or
closes; a replay after a power cut writes them again.
"""

import hashlib
import os
import uuid

import pytest

from firmware.recording import journal
from firmware.recording.journal import Journal, replay
from firmware.recording.segment import SegmentReader, SegmentWriter, SyncGroup

HEADER = {"call_id": 7, "line": 1, "profile": "voice", "rate": 8000, "chunk_ms": 600}
KEY = bytes(range(32))


@pytest.fixture
def jnl(tmp_path):
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    yield jnl
    jnl.close()


def _writer(recordings, jnl, group, before_create=None):
    rid = uuid.uuid4().hex
    path = recordings / (rid + ".lkrec")
    path.parent.mkdir(exist_ok=True)
    w = SegmentWriter(
        path,
        rid,
        KEY,
        HEADER,
        fsync=True,
        journal=jnl,
        sync_create=False,
        before_create=before_create or (lambda: None),
        sync_group=group,
    )
    return w, rid, path


def test_chunks_go_to_the_file_synced_by_the_group_and_the_seal_to_the_journal(tmp_path, jnl, syncs):
    group = SyncGroup()
    w, rid, path = _writer(tmp_path / "recordings", jnl, group)
    chunks = [os.urandom(300 + i) for i in range(4)]
    for c in chunks[:3]:
        w.write_chunk(c)
        assert w in group  # written, its sync left to the group
        assert group.sync() == []
    assert journal.read_records(jnl.path) == []  # the chunks are in the file alone
    synced = len(syncs)
    in_file = path.stat().st_size
    w.close(chunks[3])
    # Sealed: complete in the file, with no sync of its own ...
    assert SegmentReader(path, KEY).read_all() == (b"".join(chunks), True)
    assert len(syncs) == synced
    # ... its last chunk and final record committed to the journal, in one record.
    [(got_rid, offset, data)] = journal.read_records(jnl.path)
    assert (got_rid, offset) == (rid, in_file) and path.read_bytes()[in_file:] == data
    jnl.close()  # the journal's close (the box's stop) syncs it, once
    assert syncs[synced:].count(path.name) == 1


def test_a_power_cut_before_ext4_commits_the_seal_loses_nothing_replay_writes_it(tmp_path, jnl):
    group = SyncGroup()
    recordings = tmp_path / "recordings"
    w, rid, path = _writer(recordings, jnl, group)
    for c in (os.urandom(500), os.urandom(700)):
        w.write_chunk(c)
        group.sync()
    synced_size = path.stat().st_size
    w.close(os.urandom(400))
    whole = hashlib.sha256(path.read_bytes()).hexdigest()
    # The cut: only what was synced is on the card (the seal was in the journal alone).
    with open(path, "r+b") as f:
        f.truncate(synced_size)
    assert SegmentReader(path, KEY).read_all()[1] is False
    assert replay(jnl.path, str(recordings)) == {rid: os.path.getsize(path) - synced_size}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == whole


def test_a_recording_sealed_before_its_first_chunk_is_created_by_the_seal(tmp_path, jnl, syncs):
    """Its file is created by the seal, header and all, just after its row was synced
    (``before_create``); a cut that takes the file makes replay create it again."""
    order = []
    recordings = tmp_path / "recordings"
    w, rid, path = _writer(recordings, jnl, SyncGroup(), before_create=lambda: order.append("row synced"))
    assert not path.exists()
    w.close(b"only audio")
    assert order == ["row synced"] and SegmentReader(path, KEY).read_all() == (b"only audio", True)
    assert path.name not in syncs
    [(got_rid, offset, data)] = journal.read_records(jnl.path)
    assert (got_rid, offset, data) == (rid, 0, path.read_bytes())
    whole = path.read_bytes()
    path.unlink()
    replay(jnl.path, str(recordings), may_create=lambda r: r == rid)
    assert path.read_bytes() == whole


def test_a_journal_that_refuses_the_seal_leaves_the_file_synced_on_its_own(tmp_path, jnl, syncs, monkeypatch):
    group = SyncGroup()
    w, rid, path = _writer(tmp_path / "recordings", jnl, group)
    w.write_chunk(os.urandom(300))
    group.sync()

    def refuse(*a, **k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(jnl, "_write_at_end", refuse)
    synced = len(syncs)
    w.close(os.urandom(200))
    assert SegmentReader(path, KEY).read_all()[1] is True
    assert syncs[synced:] == [path.name, "recordings"]  # synced on its own, as without a journal
    monkeypatch.undo()
    jnl.close()
    assert syncs[synced:].count(path.name) == 1  # nothing left for the journal to sync


def test_the_seal_is_in_the_journal_before_the_file_gets_any_of_it(tmp_path, jnl, monkeypatch):
    """The seal is two records: in the file first, a cut the warning did not announce
    could tear the last chunk and keep the final record after it, which the reader
    takes for tampering (test_crash_unsynced.py, ``[holdup]``)."""
    group = SyncGroup()
    w, rid, path = _writer(tmp_path / "recordings", jnl, group)
    w.write_chunk(os.urandom(300))
    group.sync()
    synced_size = path.stat().st_size
    in_file_at_commit = []
    write_at_end = jnl._write_at_end

    def commit(data):
        in_file_at_commit.append(path.stat().st_size)
        return write_at_end(data)

    monkeypatch.setattr(jnl, "_write_at_end", commit)
    w.close(os.urandom(200))
    assert in_file_at_commit == [synced_size]
    assert SegmentReader(path, KEY).read_all()[1] is True


def test_a_seal_whose_commit_wraps_the_journal_round_is_written_and_synced_into_the_file(tmp_path, syncs):
    small = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=2048)
    try:
        group = SyncGroup()
        w, rid, path = _writer(tmp_path / "recordings", small, group)
        chunks = [os.urandom(300), os.urandom(3000)]  # the seal does not fit: the journal wraps
        w.write_chunk(chunks[0])
        group.sync()
        synced = len(syncs)
        w.close(chunks[1])
        assert SegmentReader(path, KEY).read_all() == (b"".join(chunks), True)
        assert path.name in syncs[synced:]  # synced before the journal's records went
        assert journal.read_records(small.path) == []  # a new generation, the seal not in it
    finally:
        small.close()
