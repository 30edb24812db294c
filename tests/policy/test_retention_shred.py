"""Crypto-shredding: after a sweep the wrapped key is in no byte of calls.db and the file is gone."""

import os
import sqlite3

import pytest

from support.retention import settings


def db_bytes(shelf):
    data = b""
    for name in ("calls.db", "calls.db-wal"):
        path = os.path.join(shelf.data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data += f.read()
    return data


def test_the_wrapped_key_row_is_gone_from_the_database_file_bytes(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    doomed = [shelf.add_call(31 + i) for i in range(5)]
    kept = shelf.add_call(1)
    paths = {c: shelf.store.path_of(shelf.store.for_call(c)["id"]) for c in doomed + [kept]}
    before = db_bytes(shelf)
    for c in doomed + [kept]:
        assert shelf.wrapped[c] in before  # the scan can see a key when there is one
    assert shelf.sweeper.sweep().deleted == 5
    after = db_bytes(shelf)
    for c in doomed:
        assert shelf.wrapped[c] not in after, "call %d's wrapped key survived in calls.db" % c
        assert not os.path.exists(paths[c])
    assert shelf.wrapped[kept] in after and os.path.exists(paths[kept])
    assert sorted(os.listdir(shelf.store.dir)) == [os.path.basename(paths[kept])]


def test_a_crash_between_commit_and_unlink_leaves_only_a_keyless_file_that_recovery_shreds(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    call = shelf.add_call(31)
    path = shelf.store.path_of(shelf.store.for_call(call)["id"])

    def power_cut(path):
        raise KeyboardInterrupt("power cut")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("firmware.recording.store.fsutil.remove_durable", power_cut)
        with pytest.raises(KeyboardInterrupt):
            shelf.sweeper.sweep()
    assert os.path.exists(path) and shelf.store.for_call(call) is None
    assert shelf.sweeper.deletion_count() == 1  # logged with its key's destruction
    # Its header (with the copy of the wrapped key) was overwritten before the cut.
    with open(path, "rb") as f:
        assert f.read(64) == bytes(64)
    assert ("shredded", os.path.basename(path), None) in shelf.store.recover()
    assert not os.path.exists(path)


def test_a_scheduled_sweep_the_card_refuses_raises_an_alarm_and_the_box_runs_on(shelf):
    def full():
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = 13
        raise exc

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shelf.sweeper, "sweep", full)
        shelf.sweeper._scheduled_sweep()  # no exception
    failed = [a for a in shelf.alarms if a.kind == "retention_failed"]
    assert [a.active for a in failed] == [True] and "disk is full" in failed[0].message
    shelf.sweeper._scheduled_sweep()
    assert [a.active for a in shelf.alarms if a.kind == "retention_failed"] == [True, False]


def test_a_power_cut_at_any_write_or_sync_of_a_sweep_keeps_or_shreds_each_recording_whole(tmp_path):
    """A cut at every write, sync, rename and removal of the sweep (the recordings
    store, fsutil) and after every database sync, on :class:`~support.powercut.AfterImage`
    images (each database as last synced). After the next start's recovery, each
    recording is either kept whole (its row, its file, its hash) or shredded whole: no
    row, no file, its wrapped key in no byte of calls.db; and a kept one is never
    lost."""
    import hashlib
    import random

    from firmware.recording.store import RecordingStore

    from support.powercut import AfterImage
    from support.retention import Shelf

    images, state = [], {"on": False}

    def on_call(name):
        if state["on"]:
            image = str(tmp_path / ("cut-%03d" % (len(images) + 1)))
            model.image(image, random.Random(len(images)))
            images.append((image, name))

    model = AfterImage(tmp_path / "data", on_call)
    with model.observing():
        shelf = Shelf(tmp_path)
        try:
            shelf.sweeper.update_settings(settings(default_days=30))
            doomed = [shelf.add_call(31 + i) for i in range(4)]
            kept = [shelf.add_call(1), shelf.add_call(2)]
            rows = {c: shelf.store.for_call(c) for c in doomed + kept}
            wrapped = dict(shelf.wrapped)
            state["on"] = True
            assert shelf.sweeper.sweep().deleted == 4
            state["on"] = False
        finally:
            shelf.close()
    assert images
    for image, name in images:
        what = "%s (%s)" % (image, name)
        store = RecordingStore(image)
        try:
            store.recover()
            left = {r["call_id"]: r for r in store.all()}
            # The card while the box runs on (its connection open: no checkpoint at a close).
            data = b"".join(
                open(os.path.join(image, n), "rb").read()
                for n in ("calls.db", "calls.db-wal")
                if os.path.exists(os.path.join(image, n))
            )
        finally:
            store.close()
        for call, row in rows.items():
            path = os.path.join(image, "recordings", row["id"] + ".lkrec")
            if call in left:
                with open(path, "rb") as f:
                    assert hashlib.sha256(f.read()).hexdigest() == row["sha256"], what
            else:
                assert call in doomed, (what, call)
                assert not os.path.exists(path), what
                assert wrapped[call] not in data, (what, "call %d's wrapped key survived" % call)
    print("sweep cuts: %d" % len(images))


def test_a_sweep_under_way_at_a_power_failure_stops_after_the_file_it_is_shredding(shelf, monkeypatch):
    """At a power failure the box stopped the sweeper and waited for the sweep under way to
    shred every recording it chose (a shortened period can choose hundreds, each file
    synced), while the call log's seal waited for the hold-up time. Now it stops after the
    file it is shredding: the other files of its batch (rows gone, named in the deletion
    log) are shredded by the next start's recovery, later batches wait for the next sweep,
    and the sweep's audit entry counts what it destroyed and says why it stopped."""
    import threading

    from firmware.policy import sweeper as sweeper_module

    monkeypatch.setattr(sweeper_module, "BATCH", 3)
    shelf.sweeper.update_settings(settings(default_days=30))
    doomed = [shelf.add_call(31 + i) for i in range(7)]
    paths = {c: shelf.store.path_of(shelf.store.for_call(c)["id"]) for c in doomed}
    real_shred = shelf.store.shred_file
    shredding, go, shredded = threading.Event(), threading.Event(), []

    def shred(recording_id, audit=True):
        shredding.set()
        assert go.wait(timeout=10)
        shredded.append(recording_id)
        return real_shred(recording_id, audit=audit)

    monkeypatch.setattr(shelf.store, "shred_file", shred)
    sweep = threading.Thread(target=shelf.sweeper.sweep)
    sweep.start()
    assert shredding.wait(timeout=10)
    shelf.sweeper._running = sweep  # as a scheduled sweep runs (RetentionSweeper._in_background)
    stopping = threading.Thread(target=shelf.sweeper.stop, kwargs={"interrupt": True})
    stopping.start()
    while not shelf.sweeper._interrupt.is_set():
        pass
    go.set()
    stopping.join(timeout=10)
    sweep.join(timeout=10)
    assert not stopping.is_alive() and not sweep.is_alive()
    assert len(shredded) == 1  # the file it was shredding, not the 7
    first_batch = [c for c in doomed if shelf.store.for_call(c) is None]
    assert len(first_batch) == 3
    assert shelf.sweeper.deletion_count() == 3
    entry = shelf.audit.entries(limit=1)[0]
    assert entry.action == "retention_sweep"
    assert (entry.details["deleted"], entry.details["stopped"], entry.details["by_rule"]) == (
        3,
        "power failure",
        {"default": 3},
    )
    monkeypatch.setattr(shelf.store, "shred_file", real_shred)
    shelf.store.recover()
    assert [os.path.exists(paths[c]) for c in first_batch] == [False] * 3
    assert all(os.path.exists(paths[c]) for c in doomed if c not in first_batch)
    shelf.sweeper.start()  # the next start
    assert shelf.sweeper.sweep().deleted == 4  # its sweep takes the rest
    shelf.sweeper.stop()
