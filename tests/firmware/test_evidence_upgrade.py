"""Upgrading a box from before signatures: its recordings are signed once, old keys still open."""

import sqlite3

from firmware.calls.calllog import SCHEMA
from firmware.recording.segment import SegmentWriter
from firmware.recording.store import RecordingStore
from firmware.signing import load_signer
from firmware.storage import crypto
from firmware.storage.keystore import RecordingKey

T_US = 1_772_442_000_000_000


def _call_log(data_dir):
    """A call log with call 1 in it (line 2, inbound)."""
    db = sqlite3.connect(data_dir / "calls.db")
    db.executescript(SCHEMA)
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, clock_synced) VALUES (1, 2, 'in', ?, 1)", (T_US,)
    )
    db.commit()
    db.close()


def _begin_recording(store, recording_id=None):
    """Call 1's recording begun in ``store`` as the firmware before issue 19 made it (wrap
    context = recording id): ``(id, its open SegmentWriter, the RecordingKey)``."""
    private, public = crypto.new_key_pair()
    data_key = crypto.new_data_key()
    rid = store.begin(1, None, "voice", 960, T_US + 5, recording_id=recording_id)
    wrapped = crypto.wrap_data_key(data_key, public, rid.encode())
    store._db.execute("UPDATE recordings SET wrapped_key = ? WHERE id = ?", (wrapped, rid))
    header = {"call_id": 1, "line": 2, "direction": "in", "created_us": T_US + 5, "call_started_us": T_US}
    writer = SegmentWriter(store.path_of(rid), rid, data_key, dict(header, number=None), fsync=False)
    return rid, writer, RecordingKey(private, public)


def _old_box_recording(data_dir):
    """A recording as the firmware before issue 19 made it, sealed."""
    _call_log(data_dir)
    store = RecordingStore(data_dir)
    rid, writer, key = _begin_recording(store, recording_id="ab" * 16)
    writer.write_chunk(b"audio")
    writer.close()
    store.finish(rid, "complete", 1.0)
    store.close()
    return rid, key


def test_the_first_start_with_signatures_signs_what_is_there_once(tmp_path):
    rid, key = _old_box_recording(tmp_path)
    audited = []
    signer = load_signer(tmp_path)
    store = RecordingStore(tmp_path, signer=signer, on_audit=lambda *entry: audited.append(entry))
    assert [a[0] for a in audited] == ["recording_signed_at_upgrade"]
    assert store.get(rid)["signature"]
    # The old wrap context (no key_context in the header) still opens.
    assert store.verify(key) == []
    assert store.open_audio(rid, key) == (b"audio", True)
    store.close()
    # Once only: a signature removed later is a problem, not re-made.
    db = sqlite3.connect(tmp_path / "calls.db")
    db.execute("UPDATE recordings SET signature = NULL")
    db.commit()
    db.close()
    store = RecordingStore(tmp_path, signer=signer)
    assert any("not signed by the box" in p for p in store.verify(key))
    store.close()


def test_playback_is_refused_for_a_row_moved_to_another_call(tmp_path):
    rid, key = _old_box_recording(tmp_path)
    db = sqlite3.connect(tmp_path / "calls.db")
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, clock_synced) VALUES (2, 2, 'in', ?, 1)", (T_US,)
    )
    db.execute("UPDATE recordings SET call_id = 2")
    db.commit()
    db.close()
    store = RecordingStore(tmp_path, signer=load_signer(tmp_path))
    row = store.get(rid)
    assert store.evidence_problems(row) == ["recording %s (call 2): the file was recorded for call 1" % rid]
    store.close()


def test_a_recording_in_progress_is_no_problem_and_is_signed_at_its_seal(tmp_path):
    """The box signs a recording at its seal. ``linekeeper verify`` run beside the
    recorder (as docs/evidence.md has it) reported every call in progress as "not signed
    by the box", and exited 1 on a box with nothing wrong."""
    _call_log(tmp_path)
    store = RecordingStore(tmp_path, signer=load_signer(tmp_path))
    try:
        rid, writer, key = _begin_recording(store)
        writer.write_chunk(b"audio so far")
        assert store.get(rid)["state"] == "recording" and not store.get(rid)["signature"]
        assert store.verify() == []
        assert store.verify(key) == []
        writer.close()
        store.finish(rid, "complete", 1.0)
        assert store.get(rid)["signature"]
        assert store.verify(key) == []
        # Signed once sealed: a signature taken away is a problem again.
        store._db.execute("UPDATE recordings SET signature = NULL WHERE id = ?", (rid,))
        [problem] = store.verify(key)
        assert "not signed by the box" in problem
    finally:
        store.close()
