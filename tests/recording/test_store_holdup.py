"""The recordings store under a hold-up capacitor: its commits wait for a sync."""

import os

from firmware.recording.store import RecordingStore


def _synchronous(store):
    return store._db.execute("PRAGMA synchronous").fetchone()[0]


def test_the_store_commits_unsynced_only_under_a_hold_up_capacitor(tmp_path):
    plain = RecordingStore(tmp_path / "a")
    held = RecordingStore(tmp_path / "b", holdup=True)
    try:
        assert _synchronous(plain) == 2  # FULL: each commit on the card before it returns
        assert _synchronous(held) == 1  # NORMAL: with the call log's next commit, or sync()
        assert not plain.holdup and held.holdup
    finally:
        plain.close()
        held.close()
    reader = RecordingStore(tmp_path / "b", readonly=True)
    assert reader.holdup is False
    reader.close()


def test_sync_puts_the_write_ahead_log_on_the_card(tmp_path, monkeypatch):
    store = RecordingStore(tmp_path, holdup=True)
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink("/proc/self/fd/%d" % fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store.begin(1, b"k" * 93, "voice", 640, 1_700_000_000_000_000, recording_id="a" * 32)
    store.sync()
    assert synced == [str(tmp_path / "calls.db-wal")]
    store.close()  # syncs again before it lets go
    assert synced == [str(tmp_path / "calls.db-wal")] * 2
