"""On the journal path every line's chunks end on one clock grid, so that they land in
the same commit: one write for the whole box per chunk length, not one per line.

Calls recorded from off-hook (outbound) included: their start moves earlier onto
the encoder's frame grid, by less than a frame of the idle line (docs/journal.md).
"""

import json
import os

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.recording import journal as journal_mod
from firmware.storage.keystore import Argon2Params, KeyStore

FRAME_US = 120_000
CALLS = [  # four calls that overlap for several chunks, each begun at its own time
    {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 9.0},
    {"line": 2, "at": 1.7, "direction": "out", "dial": {"digits": "17", "delay": 0.2}, "talk": 9.0},
    {"line": 3, "at": 2.33, "direction": "out", "dial": {"digits": "42", "delay": 0.2}, "talk": 9.0},
    {"line": 4, "at": 2.9, "direction": "in", "rings": 1, "talk": 9.0},
]


def _box(tmp_path, synth):
    data_dir = str(tmp_path / "box")
    os.makedirs(data_dir)
    KeyStore(data_dir, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "admin", "correct horse battery 7"
    )
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 4, "calls": CALLS}
    return open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)


def test_every_lines_chunks_share_the_journals_commits(tmp_path, synth, monkeypatch):
    box = _box(tmp_path, synth)
    assert box.recorder.journal is not None and box.recorder.grid
    commits = []  # per journal commit: (clock time, the recordings in it)
    real_commit = journal_mod.Journal._commit

    def commit(jnl):
        if jnl._staged:
            commits.append((box.clock.now_us(), sorted({rid for _, rid, _, _ in jnl._staged})))
        real_commit(jnl)

    monkeypatch.setattr(journal_mod.Journal, "_commit", commit)
    starts = {}  # line -> the clock time its recording starts from
    real_open = box.recorder._open

    def open_(call, start_us):
        starts[call.line] = start_us
        return real_open(call, start_us)

    monkeypatch.setattr(box.recorder, "_open", open_)
    box.start()
    assert box.board.run()
    box.stop()

    everyone = sorted({rid for _, rids in commits for rid in rids})
    assert len(everyone) == 4 and sorted(starts) == [1, 2, 3, 4]
    chunk_us = box.recorder.chunk_ms * 1000
    for call in CALLS:
        if call["direction"] == "out":  # from off-hook, moved earlier onto the frame grid
            start_us = starts[call["line"]]
            assert start_us % FRAME_US == 0
            assert call["at"] * 1e6 - FRAME_US < start_us <= call["at"] * 1e6
    # While the calls overlap, every commit holds a chunk of each of the four lines, and
    # the commits are one chunk length apart: one write for the box, not one per line.
    together = [t for t, rids in commits if rids == everyone]
    assert len(together) >= 5, [(t, len(rids)) for t, rids in commits]
    assert all(abs(b - a - chunk_us) < 40_000 for a, b in zip(together, together[1:], strict=False))
    lone = [t for t, rids in commits if together[0] < t < together[-1] and rids != everyone]
    assert lone == []
