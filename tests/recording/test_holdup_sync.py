"""Under a hold-up capacitor (``holdup_flush_ms``) the lines' files are synced together.

Each line's chunk waits up to the interval in memory and is then appended to
its own file and synced (docs/holdup-writes.md). Synced one after the other,
each file's ``fdatasync`` commits ext4's own journal on its own: the lines'
chunks are therefore on a clock grid shared by the lines (as the journal's
are), so that they all complete in the same capture pass, and at its end the
recorder sends their pages down together and syncs each (one commit for all).
"""

import os

import pytest

from firmware.box import RECORDER_DELAY_MS
from firmware.recording import segment
from firmware.storage import fsutil

from support.simbox import keyed_sim_box

HOLDUP_FLUSH_MS = 2000
CALLS = [  # four calls that overlap for several intervals, each begun at its own time
    {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 9.0},
    {"line": 2, "at": 1.7, "direction": "in", "rings": 1, "talk": 9.0},
    {"line": 3, "at": 2.9, "direction": "in", "rings": 1, "talk": 9.0},
    # Recorded from off-hook; its start is kept off the frame grid below (as when the
    # line's ring does not reach back to the grid, after a gap in capture): its chunks
    # end up to a frame before each grid point, and the group waits for the others.
    {"line": 4, "at": 2.33, "direction": "out", "dial": {"digits": "17", "delay": 0.2}, "talk": 9.0},
]


def _box(tmp_path, synth, journal=False):
    return keyed_sim_box(
        tmp_path,
        synth,
        CALLS,
        lines=4,
        hat="lk-4l",  # its MCU has the hold-up capacitor
        config={"holdup_flush_ms": HOLDUP_FLUSH_MS, "write_journal": journal},
    )


@pytest.mark.parametrize("journal", [False, True], ids=["no-journal", "journal"])
def test_the_lines_chunks_are_on_a_shared_grid_and_synced_in_one_pass(tmp_path, synth, monkeypatch, journal):
    box, data_dir = _box(tmp_path, synth, journal)
    assert box.recorder.holdup and box.recorder.sync_group is not None
    assert (box.recorder.journal is not None) == journal
    # A chunk: the interval less the delay line and one frame (the most a chunk's sync
    # waits for the other lines'), in whole 120 ms frames: no audio waits longer.
    chunk_us = box.recorder.chunk_ms * 1000
    assert (
        HOLDUP_FLUSH_MS - RECORDER_DELAY_MS - 240
        < box.recorder.chunk_ms
        <= HOLDUP_FLUSH_MS - RECORDER_DELAY_MS - 120
    )
    passes = []  # per group sync: (clock time, the recording files sent down together)
    syncs = []  # (recording file, whether the group synced it)
    in_group = []
    real_sync, real_fdatasync, real_write_back = segment.SyncGroup.sync, os.fdatasync, fsutil.write_back

    def group_sync(group):
        in_group.append(True)
        try:
            return real_sync(group)
        finally:
            in_group.pop()

    def write_back(fds):
        passes.append((box.clock.now_us(), sorted(os.readlink("/proc/self/fd/%d" % fd) for fd in fds)))
        real_write_back(fds)

    def fdatasync(fd):
        path = os.readlink("/proc/self/fd/%d" % fd)
        if path.endswith(".lkrec"):
            syncs.append((path, bool(in_group)))
        real_fdatasync(fd)

    real_aligned = box.recorder._aligned_us
    monkeypatch.setattr(
        box.recorder,
        "_aligned_us",
        lambda call, want_us: want_us if call.line == 4 else real_aligned(call, want_us),
    )
    monkeypatch.setattr(segment.SyncGroup, "sync", group_sync)
    monkeypatch.setattr(fsutil, "write_back", write_back)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    box.start()
    assert box.board.run()
    box.stop()

    files = sorted(
        os.path.join(box.recordings.dir, n) for n in os.listdir(box.recordings.dir) if n.endswith(".lkrec")
    )
    assert len(files) == 4
    for path in files:  # every recording's chunks end on the grid: its first one is shorter
        info = segment.inspect(path)
        assert info["closed"] and 0 < info["header"]["first_chunk_ms"] <= box.recorder.chunk_ms
    # One pass per grid step, one step after the last (to within a capture period);
    # while the calls overlap, all four files (the one from off-hook too) were sent
    # down at once.
    times = [t for t, _ in passes]
    assert all(abs(b - a - chunk_us) < 100_000 for a, b in zip(times, times[1:], strict=False))
    assert sum(group == files for _, group in passes) >= 4, [len(g) for _, g in passes]
    # Every chunk written in the middle of a call was synced by the group; only the
    # end of each recording (its last chunk and the final one) is synced on its own,
    # or, with a journal, committed there and synced once by the journal's close.
    for path in files:
        own = [g for p, g in syncs if p == path and not g]
        assert len(own) == 1 if journal else len(own) <= 2
        assert sum(1 for p, g in syncs if p == path and g) >= 3
