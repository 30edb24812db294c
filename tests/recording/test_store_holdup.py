"""The recordings store under a hold-up capacitor: its commits wait for a sync."""

import os

from firmware.recording.store import RecordingStore


def _synchronous(store):
    return store._db.execute("PRAGMA synchronous").fetchone()[0]


def test_the_store_commits_a_recordings_life_unsynced_only_under_a_hold_up_capacitor(tmp_path):
    commits = []
    plain = RecordingStore(tmp_path / "a")
    held = RecordingStore(tmp_path / "b", holdup=True, on_commit=lambda: commits.append(True))
    seen = []
    try:
        assert _synchronous(plain) == 2  # FULL: each commit on the card before it returns
        assert _synchronous(held) == 2  # FULL but for a recording's own commits
        assert not plain.holdup and held.holdup
        held._db = _Watching(held._db, seen)
        held.begin(1, b"k" * 93, "voice", 640, 1_700_000_000_000_000, recording_id="a" * 32)
        held.set_speech("a" * 32, [(0.0, 1.0)])
        # The intent row and the speech spans both under NORMAL (synced with the call log's
        # interval, or by before_file() when the file is about to be created), then FULL again.
        assert [s for s in seen if s.startswith("PRAGMA")] == [
            "PRAGMA synchronous=NORMAL",
            "PRAGMA synchronous=FULL",
        ] * 2
        assert commits == [True, True]
        assert _synchronous(held) == 2
    finally:
        plain.close()
        held.close()
    reader = RecordingStore(tmp_path / "b", readonly=True)
    assert reader.holdup is False
    reader.close()


class _Watching:
    """A connection that notes each statement it runs."""

    def __init__(self, db, seen):
        self._db, self._seen = db, seen

    def execute(self, sql, *args):
        self._seen.append(sql)
        return self._db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


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


def test_a_recordings_write_inside_a_callers_transaction_is_committed_with_it(tmp_path):
    commits = []
    store = RecordingStore(tmp_path, holdup=True, on_commit=lambda: commits.append(True))
    try:
        with store.transaction():
            # SQLite refuses to switch the sync level inside a transaction: the write joins it.
            store.set_speech("a" * 32, [(0.0, 1.0)])
        assert store.speech_of("a" * 32) == [(0.0, 1.0)]
        assert commits == [] and _synchronous(store) == 2
    finally:
        store.close()


def test_verify_takes_a_recordings_row_without_its_file_for_one_in_progress(tmp_path):
    """Under a hold-up capacitor a recording's file comes with its first chunk: until
    then (or if a crash comes first) its row stands alone, which is no damage."""
    store = RecordingStore(tmp_path, holdup=True)
    try:
        store.begin(1, b"k" * 93, "voice", 640, 1_700_000_000_000_000, recording_id="a" * 32)
        assert not os.path.exists(store.path_of("a" * 32))
        assert not [p for p in store.verify() if "a" * 32 in p]
        store.finish("a" * 32, "complete", 12.0)  # a finished recording must have its file
        assert [p for p in store.verify() if "a" * 32 in p and "file missing" in p]
    finally:
        store.close()
