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
