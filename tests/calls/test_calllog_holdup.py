"""The call log under a hold-up capacitor (``holdup_flush_ms``): calls.db synced once per
interval, a call's end included, and at the power-fail seal and the stop."""

import os
import sqlite3

import pytest

from firmware.bus import CallAnswered, CallEnded, CallStarted, EventBus
from firmware.calls.call import Call
from firmware.calls.calllog import CallLog
from firmware.clock import SimClock
from firmware.recording.store import RecordingStore

INTERVAL_US = 60_000_000


def _wal_syncs(monkeypatch, tmp_path):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink("/proc/self/fd/%d" % fd) == str(tmp_path / "calls.db-wal"):
            synced.append(fsync)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def _ended(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, ended_at, end_reason FROM calls ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.fixture
def held(tmp_path):
    """``(clock, bus, log)``: a call log under a hold-up capacitor, attached to a bus."""
    clock = SimClock(start_wall_us=1_772_442_000_000_000)
    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", clock, commit_us=INTERVAL_US, holdup=True)
    log.attach(bus)
    return clock, bus, log


def test_only_under_a_hold_up_capacitor_are_commits_unsynced(tmp_path):
    clock = SimClock()
    plain = CallLog(tmp_path / "a.db", clock, commit_us=1_000_000)
    held = CallLog(tmp_path / "b.db", clock, commit_us=INTERVAL_US, holdup=True)
    try:
        assert not plain.holdup and held.holdup
        assert plain._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert held._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL, synced per interval
    finally:
        plain.close()
        held.close()


def test_a_calls_end_waits_for_the_interval_and_one_sync_covers_it_all(tmp_path, monkeypatch, held):
    clock, bus, log = held
    synced = _wal_syncs(monkeypatch, tmp_path)
    store = RecordingStore(tmp_path, before_begin=log.write_rows, holdup=True, on_commit=log.note_commit)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    recording_id = store.begin(call.id, b"k" * 93, "voice", 1000, clock.wall_us())
    call.answered_us = 1_000_000
    bus.publish(CallAnswered(line=1, t_us=1_000_000, call=call))
    clock.run_until(5_000_000)
    call.ended_us, call.end_reason = 5_000_000, "hangup"
    bus.publish(CallEnded(line=1, t_us=5_000_000, call=call))
    store.set_speech(recording_id, [(0.0, 1.0)])
    # Nothing synced yet: the call's row (written for its recording) and the recording's
    # row are committed unsynced, the end waits in memory.
    assert synced == [] and log.waiting and log.pending == 1
    clock.run_until(INTERVAL_US - 1)
    assert synced == []
    clock.run_until(INTERVAL_US)
    # One interval: one commit of what waited, one sync of the write-ahead log for it
    # and the recordings store's commits.
    assert len(synced) == 1 and not log.waiting
    assert _ended(tmp_path / "calls.db") == [(call.id, clock.wall_at(5_000_000), "hangup")]
    # A quiet interval costs nothing.
    clock.run_until(3 * INTERVAL_US)
    assert len(synced) == 1
    store.close()
    log.close()


def test_a_recording_commit_alone_is_synced_within_the_interval(tmp_path, monkeypatch, held):
    clock, bus, log = held
    store = RecordingStore(tmp_path, holdup=True, on_commit=log.note_commit)
    synced = _wal_syncs(monkeypatch, tmp_path)
    clock.run_until(10_000_000)
    store.set_speech("a" * 32, [(0.0, 1.0)])
    assert log.waiting and synced == []
    clock.run_until(10_000_000 + INTERVAL_US)
    assert len(synced) == 1 and not log.waiting
    store.close()
    log.close()


def test_the_seal_and_the_stop_sync_what_waits(tmp_path, monkeypatch, held):
    clock, bus, log = held
    synced = _wal_syncs(monkeypatch, tmp_path)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    # The power-fail seal: what waits is written, the open calls closed, then one sync.
    log.flush()
    log.close_open("power_loss", clock.wall_us())
    assert synced == []
    log.sync()
    assert len(synced) == 1 and not log.waiting
    log.sync()  # nothing new: no sync
    assert len(synced) == 1
    second = Call(line=2, direction="in", started_us=0)
    bus.publish(CallStarted(line=2, t_us=0, call=second))
    log.close()  # the stop writes and syncs it
    assert len(synced) == 2
    assert [r[0] for r in _ended(tmp_path / "calls.db")] == [call.id, second.id]
