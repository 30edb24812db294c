"""The recorder tells the bus when a recording is sealed (RecordingFinished).

Later consumers (archive upload, reports) hook in there without touching the
recorder: one event per recording, after its row says complete or partial,
carrying what the row says.
"""

import json
import os
import sqlite3

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.bus import RecordingFinished
from firmware.storage.keystore import Argon2Params, KeyStore

SCENARIO = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 2,
    "seed": 2,
    "calls": [
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 6.0, "hangup": "remote"},
        {"line": 2, "at": 2.0, "direction": "in", "rings": 1, "talk": 4.0},
        {"line": 1, "at": 20.0, "direction": "in", "rings": 2, "answer": False},
    ],
}


def test_each_sealed_recording_is_announced_once_with_its_row(tmp_path, synth):
    data_dir = str(tmp_path / "box")
    os.makedirs(data_dir)
    KeyStore(data_dir, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "admin", "correct horse battery 7"
    )
    box = open_sim_box(loads_scenario(json.dumps(SCENARIO)), data_dir, synth=synth)
    finished = []
    rows_when_told = []

    def on_finished(event):
        finished.append(event)
        db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
        rows_when_told.append(
            db.execute("SELECT state FROM recordings WHERE id = ?", (event.recording_id,)).fetchone()
        )
        db.close()

    box.bus.subscribe(RecordingFinished, on_finished)
    box.start()
    assert box.board.run()
    box.stop()

    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    rows = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT r.id, r.call_id, c.line, r.state, r.duration_s, r.bytes FROM recordings r "
            "JOIN calls c ON c.id = r.call_id"
        )
    }
    db.close()
    assert len(rows) == 2  # the unanswered call has no recording
    assert sorted(e.recording_id for e in finished) == sorted(rows)
    for event in finished:
        call_id, line, state, duration_s, size = rows[event.recording_id]
        assert (
            (event.call_id, event.line, event.state) == (call_id, line, "complete") == (call_id, line, state)
        )
        assert event.duration_s == duration_s and event.duration_s > 3
        assert event.size_bytes == size > 0
    assert rows_when_told == [("complete",), ("complete",)]  # the row was sealed first
