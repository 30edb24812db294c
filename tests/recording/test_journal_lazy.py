"""With the journal, a recording file is created and sealed without a sync of its own.

Why (docs/journal.md): each sync of a new or newly sealed file commits ext4's journal
on its own (a creation and a seal: two commits a recording). The recording journal
holds the file's header (a record at offset 0), its chunks and its final record, so a
power cut before ext4's next commit costs nothing: replay makes the file again.
"""

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from firmware.recording import journal, segment
from firmware.recording.journal import SECTOR, Journal, replay
from firmware.recording.segment import SegmentReader, SegmentWriter
from firmware.recording.store import RecordingStore

HEADER = {"call_id": 7, "line": 1, "profile": "voice", "rate": 8000, "chunk_ms": 600}
KEY = bytes(range(32))
WRAPPED = bytes(range(93))


def _writer(recordings, jnl, rid=None):
    rid = rid or uuid.uuid4().hex
    path = recordings / (rid + ".lkrec")
    path.parent.mkdir(exist_ok=True)
    return SegmentWriter(path, rid, KEY, HEADER, fsync=True, journal=jnl, sync_create=False), rid, path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_is_created_and_sealed_with_no_sync_until_the_journal_closes(tmp_path, syncs):
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    jnl.deferred = True
    try:
        w, rid, path = _writer(tmp_path / "recordings", jnl)
        chunks = [os.urandom(200 + i) for i in range(12)]
        for c in chunks:
            w.write_chunk(c)
            jnl.commit()
        w.close()
        # Sealed: complete in the file (for the hash the call log keeps), synced by nobody yet.
        assert SegmentReader(path, KEY).read_all() == (b"".join(chunks), True)
        assert path.name not in syncs and "recordings" not in syncs
        # The journal holds all of it, header to final record.
        records = journal.read_records(jnl.path)
        assert records[0] == (rid, 0, w.header_bytes)
        assert b"".join(data for _, _, data in records) == path.read_bytes()
    finally:
        jnl.close()
    # Closing the journal syncs the file and its folder, once.
    assert syncs.count(path.name) == 1 and syncs.count("recordings") == 1


def test_replay_creates_a_sealed_file_a_power_cut_took_when_its_recording_is_wanted(tmp_path):
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    recordings = tmp_path / "recordings"
    w, rid, path = _writer(recordings, jnl)
    for i in range(5):
        w.write_chunk(b"%d" % i * 300)
    w.close()
    sealed = _digest(path)
    jnl.fsync = False  # a power cut: nothing of the file reached the card
    jnl.close()
    os.unlink(path)
    # Not wanted (no row names it): never created.
    assert replay(jnl.path, str(recordings), may_create=lambda r: False) == {}
    assert not path.exists()
    done = replay(jnl.path, str(recordings), may_create={rid}.__contains__)
    assert done == {rid: os.path.getsize(path)}  # every byte of it, from the journal
    assert _digest(path) == sealed  # the same bytes, so the hash its row holds still matches
    assert SegmentReader(path, KEY).read_all()[1] is True


def test_replay_creates_a_file_in_progress_with_every_committed_chunk(tmp_path):
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    recordings = tmp_path / "recordings"
    try:
        w, rid, path = _writer(recordings, jnl)
        chunks = [os.urandom(400) for _ in range(6)]
        for c in chunks:
            w.write_chunk(c)
        os.close(w.fd)  # a crash: the writer's memory gone, the file never synced
        os.unlink(path)
        replay(jnl.path, str(recordings), may_create={rid}.__contains__)
        assert SegmentReader(path, KEY).read_all() == (b"".join(chunks), False)
    finally:
        jnl.fsync = False
        jnl.close()


def test_wrapping_round_syncs_the_files_sealed_in_the_generation_first(tmp_path, syncs):
    jnl = Journal(tmp_path / "j.lkj", size_bytes=8 * SECTOR)
    recordings = tmp_path / "recordings"
    try:
        w, rid, path = _writer(recordings, jnl)
        w.write_chunk(os.urandom(300))
        w.close()
        assert path.name not in syncs
        other, _, _ = _writer(recordings, jnl)
        for _ in range(6):  # more than the journal's room: it wraps round
            other.write_chunk(os.urandom(700))
        assert syncs.count(path.name) == 1
        assert SegmentReader(path, KEY).read_all()[1] is True
    finally:
        jnl.close()


def test_a_file_created_without_room_to_reserve_still_gets_its_header_journaled(tmp_path, monkeypatch):
    monkeypatch.setattr(segment.fsutil, "reserve", lambda fd, offset, n: False)
    jnl = Journal(tmp_path / "j.lkj", size_bytes=1 << 20)
    try:
        w, rid, path = _writer(tmp_path / "recordings", jnl)
        assert path.read_bytes() == w.header_bytes  # into the file at once, unsynced
        assert journal.read_records(jnl.path) == [(rid, 0, w.header_bytes)]
        w.close()
        assert SegmentReader(path, KEY).read_all() == (b"", True)
    finally:
        jnl.close()


def _store_with_recording(tmp_path, rid):
    store = RecordingStore(tmp_path / "box")
    store.begin(1, WRAPPED, "voice", 600, 1_700_000_000_000_000, recording_id=rid)
    jnl = store.open_journal()
    w = SegmentWriter(store.path_of(rid), rid, KEY, HEADER, fsync=True, journal=jnl, sync_create=False)
    store.write_key_copy(rid, WRAPPED, new=True)
    for i in range(4):
        w.write_chunk(b"%d" % i * 250)
    return store, jnl, w


def test_the_store_creates_a_lost_file_again_with_its_key_copy_from_its_row(tmp_path):
    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    path = store.path_of(rid)
    # A power cut before ext4's commit: neither the file nor its key copy is on the card.
    os.close(w.fd)
    jnl.fsync = False
    jnl.close()
    store.journal = None
    os.unlink(path)
    os.unlink(store.key_copy_path(rid))
    journaled = sum(len(d) for _, _, d in journal.read_records(jnl.path))
    assert store.replay_journal() == {rid: journaled}
    assert SegmentReader(path, KEY).read_all()[0] == b"".join(b"%d" % i * 250 for i in range(4))
    with open(store.key_copy_path(rid), "rb") as f:
        assert f.read() == WRAPPED
    store.close()


def test_a_discard_a_crash_cut_short_is_finished_not_created_again(tmp_path):
    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    os.close(w.fd)
    jnl.fsync = False
    jnl.close()
    store.journal = None
    # The discard's first step (the row stops naming its file), then the power cut,
    # which took the unsynced file: the journal still holds its header and chunks.
    with store._lock:
        store._db.execute("UPDATE recordings SET file = '' WHERE id = ?", (rid,))
    os.unlink(store.path_of(rid))
    done = store.recover()
    assert ("discarded", rid, None) in done
    assert not os.path.exists(store.path_of(rid)) and not os.path.exists(store.key_copy_path(rid))
    assert store.get(rid) is None
    store.close()


def test_a_discard_cut_between_its_decision_and_the_destruction_is_finished_at_the_start(tmp_path):
    """The recorder decides a destruction (the row stops naming its file) and leaves the file
    to its worker thread: a power cut before the worker touched it leaves the file and its
    key copy whole on the card. The next start destroys both and the row, audited, and
    quarantines nothing (nor does the journal's replay bring the file back)."""
    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    w.abort()
    jnl.commit()
    assert store.unname_file(rid, call_id=1) is True
    path, key_copy = store.path_of(rid), store.key_copy_path(rid)
    assert os.path.exists(path) and os.path.exists(key_copy)
    jnl.close()
    store.close()
    audited = []
    store = RecordingStore(tmp_path / "box", on_audit=lambda *entry: audited.append(entry))
    try:
        done = store.recover()
        assert ("discarded", rid, None) in done
        assert not [d for d in done if d[0] == "quarantined"]
        assert not os.path.exists(path) and not os.path.exists(key_copy)
        assert store.get(rid) is None and store.quarantined() == []
        assert [(action, target) for action, target, _ in audited] == [("recording_deleted", rid)]
    finally:
        store.close()


def test_a_destruction_finished_at_the_start_is_audited_with_the_reason_it_was_decided_for(tmp_path):
    """A personal call's recording, its destruction decided and then cut by a crash: the
    start that finishes it audits it against that recording saying why it was destroyed,
    as the worker would have, not as "not a recording" (it was one, for 8 s)."""
    from firmware.policy.rules import PERSONAL_REASON

    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    w.abort()
    jnl.commit()
    assert store.unname_file(rid, call_id=1, why=PERSONAL_REASON) is True
    jnl.close()
    store.close()
    audited = []
    store = RecordingStore(tmp_path / "box", on_audit=lambda *entry: audited.append(entry))
    try:
        assert ("discarded", rid, None) in store.recover()
        assert audited == [("recording_deleted", rid, {"why": PERSONAL_REASON})]
    finally:
        store.close()


@pytest.mark.parametrize("stopped_cleanly", [False, True])
def test_the_start_writes_nothing_into_a_file_whose_destruction_was_decided(tmp_path, stopped_cleanly):
    """The recorder decides a destruction, discards the writer (what it held in memory for
    the file dropped) and leaves the file to its worker; a crash, or a worker the card
    refused before a clean stop, leaves the file short of what the journal took of it. The
    start's replay writes none of that audio into a file about to be destroyed, nor audits
    it as replayed, nor, after a clean stop, raises the alarm of a file rewritten."""
    from firmware.policy.rules import PERSONAL_REASON

    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    jnl.commit()
    assert store.unname_file(rid, call_id=1, why=PERSONAL_REASON) is True
    w.discard()
    path = store.path_of(rid)
    held = os.path.getsize(path)
    assert sum(len(d) for r, _, d in journal.read_records(jnl.path) if r == rid) > held
    jnl.close()
    store.close()
    audited = []
    store = RecordingStore(tmp_path / "box", on_audit=lambda *entry: audited.append(entry))
    try:
        assert ("discarded", rid, None) in store.recover(stopped_cleanly=stopped_cleanly)
        assert store.replayed == {} and store.rewritten == []
        assert audited == [("recording_deleted", rid, {"why": PERSONAL_REASON})]
        assert not os.path.exists(path)
    finally:
        store.close()


def test_discard_marks_the_row_before_it_removes_the_file(tmp_path, monkeypatch):
    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    w.abort()
    seen = []
    real = store.shred_file

    def shred(recording_id, audit=True):
        seen.append(store.get(recording_id)["file"])
        return real(recording_id, audit=audit)

    monkeypatch.setattr(store, "shred_file", shred)
    store.discard(rid)
    assert seen == [""] and store.get(rid) is None
    store.close()


def test_discard_refuses_a_recording_whose_call_is_on_legal_hold(tmp_path):
    """The hold is looked at in the transaction that decides the destruction, before the
    file is touched: a hold placed at any time before it keeps the recording whole."""
    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    w.abort()
    store.prepare_retention()
    with store.transaction() as db:
        db.execute("INSERT INTO legal_holds (call_id, placed_at, placed_by) VALUES (1, 0, 'sam')")
    before = _digest(Path(store.path_of(rid)))
    assert store.discard(rid, why="marked personal") is False
    assert store.get(rid)["file"] and _digest(Path(store.path_of(rid))) == before
    assert os.path.exists(store.key_copy_path(rid))
    # A row the card refused (none to name the call): the call id the caller gives.
    assert store.unname_file(uuid.uuid4().hex, call_id=1) is False
    assert store.unname_file(uuid.uuid4().hex, call_id=2) is True
    store.close()


def test_verify_takes_an_empty_file_in_progress_for_one_whose_chunks_wait_for_its_seal(tmp_path):
    rid = uuid.uuid4().hex
    store, jnl, w = _store_with_recording(tmp_path, rid)
    try:
        assert os.path.getsize(store.path_of(rid)) == 0  # all of it held in reserved room
        # (a key the check never needs: nothing in the file to authenticate yet)
        assert not [p for p in store.verify(recording_key=object()) if rid in p]
    finally:
        w.abort()
        store.close()


@pytest.mark.parametrize("reserve", [True, False], ids=["held", "written-at-once"])
def test_a_seal_the_journal_refuses_leaves_a_synced_partial_file(tmp_path, syncs, monkeypatch, reserve):
    if not reserve:
        monkeypatch.setattr(segment.fsutil, "reserve", lambda fd, offset, n: False)
    jnl = Journal(tmp_path / "j.lkj", size_bytes=1 << 20)
    jnl.deferred = True
    try:
        w, rid, path = _writer(tmp_path / "recordings", jnl)
        chunks = [os.urandom(300) for _ in range(4)]
        for c in chunks:
            w.write_chunk(c)
            jnl.commit()

        def refuse():
            raise OSError(5, "the card refused the write")

        monkeypatch.setattr(jnl, "commit", refuse)
        with pytest.raises(OSError):
            w.close()
        # Every chunk the journal holds, synced; no final record, which is on the card nowhere.
        assert SegmentReader(path, KEY).read_all() == (b"".join(chunks), False)
        assert path.name in syncs
    finally:
        jnl.close()


def test_a_writer_discarded_writes_syncs_and_commits_nothing_more(tmp_path, syncs):
    """A recording to be destroyed is stopped with nothing more written: what the file holds
    in memory is not written to it, nothing is synced, and records the journal has not
    committed yet never are (abort would finish the file for the destruction to remove)."""
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    jnl.deferred = True
    try:
        w, rid, path = _writer(tmp_path / "recordings", jnl)
        w.write_chunk(os.urandom(300))
        jnl.commit()
        committed = journal.read_records(jnl.path)
        w.write_chunk(os.urandom(300))  # staged, not committed
        size = os.path.getsize(path)
        w.discard()
        jnl.commit()
        assert w.closed and os.path.getsize(path) == size
        assert path.name not in syncs
        assert journal.read_records(jnl.path) == committed
    finally:
        jnl.close()
    assert path.name not in syncs  # nor when the journal closes


def test_a_writer_discarded_leaves_another_lines_uncommitted_records_to_the_commit(tmp_path):
    """The journal is shared: a discard drops its own writer's staged records only. Another
    line's, staged in the same pass before and after it, are committed, and a power cut that
    took that line's unsynced file leaves the replay every byte of it."""
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    jnl.deferred = True
    recordings = tmp_path / "recordings"
    doomed, _, doomed_path = _writer(recordings, jnl)
    kept, kept_rid, kept_path = _writer(recordings, jnl)
    chunks = [os.urandom(300) for _ in range(3)]
    doomed.write_chunk(os.urandom(300))
    kept.write_chunk(chunks[0])
    doomed.write_chunk(os.urandom(300))
    kept.write_chunk(chunks[1])
    doomed.discard()
    kept.write_chunk(chunks[2])
    jnl.commit()
    rids = [rid for rid, _, _ in journal.read_records(jnl.path)]
    assert rids == [kept_rid] * 4  # its header, then its three chunks
    kept.close()
    sealed = _digest(kept_path)
    jnl.fsync = False  # a power cut: nothing of the files reached the card
    jnl.close()
    os.unlink(kept_path)
    os.unlink(doomed_path)
    replay(jnl.path, str(recordings), may_create={kept_rid}.__contains__)
    assert _digest(kept_path) == sealed
    assert SegmentReader(kept_path, KEY).read_all() == (b"".join(chunks), True)
    assert not doomed_path.exists()


def test_a_deferred_file_discarded_before_its_first_chunk_is_never_created(tmp_path):
    rid = uuid.uuid4().hex
    path = tmp_path / (rid + ".lkrec")
    w = SegmentWriter(path, rid, KEY, HEADER, fsync=True, before_create=lambda: None)
    w.discard()
    assert w.closed and not path.exists()
