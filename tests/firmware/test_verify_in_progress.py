"""``verify`` on a running box: a recording still being made is not signed yet, and says so nowhere.

The box signs a recording at its seal. ``linekeeper verify`` run beside the
recorder (as docs/evidence.md has it) reported every call in progress as "not
signed by the box", and exited 1 on a box with nothing wrong.
"""

import sqlite3

from firmware.calls.calllog import SCHEMA
from firmware.recording.segment import SegmentWriter
from firmware.recording.store import RecordingStore
from firmware.signing import load_signer
from firmware.storage import crypto
from firmware.storage.keystore import RecordingKey

T_US = 1_772_442_000_000_000


def test_a_recording_in_progress_is_no_problem_and_is_signed_at_its_seal(tmp_path):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, clock_synced) VALUES (1, 2, 'in', ?, 1)", (T_US,)
    )
    db.commit()
    db.close()
    private, public = crypto.new_key_pair()
    key = RecordingKey(private, public)
    store = RecordingStore(tmp_path, signer=load_signer(tmp_path))
    try:
        rid = store.begin(1, None, "voice", 960, T_US + 5)
        data_key = crypto.new_data_key()
        wrapped = crypto.wrap_data_key(data_key, public, rid.encode())
        store._db.execute("UPDATE recordings SET wrapped_key = ? WHERE id = ?", (wrapped, rid))
        writer = SegmentWriter(
            store.path_of(rid),
            rid,
            data_key,
            {"call_id": 1, "line": 2, "direction": "in", "created_us": T_US + 5,
             "call_started_us": T_US, "number": None},
            fsync=False,
        )  # fmt: skip
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
