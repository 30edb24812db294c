"""Issue 4 acceptance: a full disk ends a recording cleanly and the box records again once freed.

Two ways the card fills up, each on a tmpfs of its own:

* the whole data dir on an 8 MiB tmpfs, with the free-space reserve on (the
  product's defence: the recording stops while the call log still has room
  to commit - and keeps committing calls meanwhile);
* the recordings directory alone on a tiny tmpfs, the reserve off: the
  recording runs into a real ENOSPC.

In both, a filler file eats the space in the middle of the day: the
recording in progress ends ``partial`` and keeps what it had, a ``disk_full``
alarm is raised, the recording made before is untouched (``verify`` with the
key passes), a call starting while the disk is full is logged but not
recorded; the filler is deleted, the next call records ``complete`` and the
alarm clears.
"""

import hashlib
import os

import pytest

from firmware.config import BoxConfig
from firmware.recording import quality, segment
from firmware.recording.segment import SegmentReader

RESERVE_MB = 1
CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "in",
        "rings": 1,
        "talk": 4.0,
        "speech": "The birch canoe slid on the smooth planks.",
    },
    {
        "line": 1,
        "at": 8.0,
        "direction": "in",
        "rings": 1,
        "talk": 30.0,
        "speech": [{"at": 0.2 + 3.0 * i, "text": t} for i, t in enumerate(quality.SENTENCES * 2)],
    },
    {
        "line": 2,
        "at": 31.0,
        "direction": "out",
        "dial": {"digits": "7", "delay": 0.2},
        "talk": 3.0,
        "speech": "Rice is often served in round bowls.",
    },
    {
        "line": 2,
        "at": 45.0,
        "direction": "in",
        "rings": 1,
        "talk": 5.0,
        "speech": "The juice of lemons makes fine punch.",
    },
]
FILL_AT_US, FREE_AT_US = 12_000_000, 42_000_000


def run_day(lab, data_dir, watched, leave_bytes, reserve_mb):
    """Run :data:`CALLS`; at 12 s (mid-call) fill ``watched`` to ``leave_bytes`` free, at 42 s free it."""
    filler = os.path.join(watched, "filler")
    first = {}

    def fill():
        first.update(file_digests(data_dir))
        st = os.statvfs(watched)
        with open(filler, "wb") as f:
            f.write(bytes(max(0, st.f_bavail * st.f_frsize - leave_bytes)))

    def schedule(box):
        box.clock.call_at(FILL_AT_US, fill)
        box.clock.call_at(FREE_AT_US, lambda: os.unlink(filler))

    config = BoxConfig(disk_reserve_mb=reserve_mb)
    run = lab.run(lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir, config=config, before_start=schedule)
    return run, first


def file_digests(data_dir):
    recordings = os.path.join(data_dir, "recordings")
    return {
        name: hashlib.sha256(open(os.path.join(recordings, name), "rb").read()).hexdigest()
        for name in os.listdir(recordings)
        if name.endswith(".lkrec")
    }


def check_day(lab, run, first, expect_sealed):
    data_dir = run.data_dir
    calls = lab.calls(data_dir)
    # The call log survived the full disk: every call is there, ended, with its answer.
    assert [c["answered"] for c in calls] == [True] * 4
    assert all(c["ended_at"] for c in calls)
    assert [c["recording"] for c in calls] == ["complete", "partial", None, "complete"]
    rows = {r["call_id"]: r for r in lab.rows(data_dir)}
    before, cut, after = (rows[c["id"]] for c in (calls[0], calls[1], calls[3]))
    # The partial one kept what it recorded before the disk filled, no more than the call.
    assert 0.9 <= cut["duration_s"] < 30.0
    # Nothing stored before was damaged or deleted to make room.
    assert file_digests(data_dir)[before["file"]] == first[before["file"]]
    status, out, err = lab.verify(data_dir)
    assert status == 0, out + err
    out_wav = os.path.join(os.path.dirname(data_dir), "cut.wav")
    status, out, err = lab.export(data_dir, calls[1]["id"], out_wav)
    assert status == 0, err
    assert abs(len(lab.read_wav(out_wav)) / 8000 - cut["duration_s"]) < 0.01
    # Stopped at the reserve, the file was sealed with its final chunk (so a cut of it
    # shows even to someone who rewrites its row); cut by ENOSPC, it could not be.
    store = lab.store(data_dir)
    try:
        context = store.key_context(cut)
    finally:
        store.close()
    with lab.unlock(data_dir) as key:
        reader = SegmentReader(
            os.path.join(data_dir, "recordings", cut["file"]), key.unwrap(cut["wrapped_key"], context)
        )
        reader.read_all()
        assert reader.complete == expect_sealed
    # The alarm: raised when the recording stopped, cleared when the box recorded again.
    kinds = [(a.kind, a.active) for a in run.alarms]
    assert kinds == [("disk_full", True), ("disk_full", False)], kinds
    # The card is the box's: raised and cleared as the box's (line 0), whichever lines
    # found it full and recorded again (a line's was never cleared by another line).
    assert [a.line for a in run.alarms] == [0, 0] and "found by line" in run.alarms[0].message
    raised_us = run.alarms[0].t_us
    assert lab.clock_us(run.scenario, cut["started_at"]) + cut["duration_s"] * 1e6 <= raised_us
    assert after["state"] == "complete" and run.alarms[-1].t_us > FREE_AT_US
    print("disk full: partial recording of %.2f s; %s" % (cut["duration_s"], run.alarms))


def test_reserve_stops_recording_before_the_call_log_runs_out(lab, tmpfs, monkeypatch):
    # A recording holds its chunks in room it reserved on the card (256 KiB at a
    # time, docs/journal.md), which outlasts these short calls: a smaller room
    # makes the one in progress ask for more, and meet the full disk, within seconds.
    monkeypatch.setattr(segment, "HOLD_BYTES", 4096)
    disk = tmpfs("card", "8m")
    data_dir = lab.init_data_dir(disk / "box")
    reserve = RESERVE_MB << 20
    run, first = run_day(lab, data_dir, disk, leave_bytes=reserve + 16 * 1024, reserve_mb=RESERVE_MB)
    check_day(lab, run, first, expect_sealed=True)
    assert "kept free for the call log" in run.alarms[0].message, run.alarms[0].message


def test_real_enospc_ends_the_recording_cleanly(lab, tmpfs):
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    os.mkdir(os.path.join(data_dir, "recordings"), 0o700)
    recordings = tmpfs(os.path.join("box", "recordings"), "256k")
    run, first = run_day(lab, data_dir, recordings, leave_bytes=8 * 1024, reserve_mb=0)
    check_day(lab, run, first, expect_sealed=False)
    assert "disk is full" in run.alarms[0].message, run.alarms[0].message


def test_a_finish_the_database_refuses_is_retried(lab, monkeypatch):
    """A full disk can refuse the row's last update; the file is safe and the update retried."""
    import sqlite3

    from firmware.recording.store import RecordingStore

    finish, refused = RecordingStore.finish, []

    def full_once(store, recording_id, state, duration_s, speech=None):
        if not refused:
            refused.append(recording_id)
            raise sqlite3.OperationalError("database or disk is full")
        finish(store, recording_id, state, duration_s, speech=speech)

    monkeypatch.setattr(RecordingStore, "finish", full_once)
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    lab.run(lab.load(lab.scenario_doc(CALLS[:1], lines=1)), data_dir)
    rows = lab.rows(data_dir)
    assert [r["id"] for r in rows] == refused and rows[0]["state"] == "complete"
    # Its speech spans are written with the retried finish (one commit).
    store = RecordingStore(data_dir, readonly=True)
    try:
        assert store.speech_of(rows[0]["id"]) is not None
    finally:
        store.close()
    assert lab.verify(data_dir)[0] == 0


def test_config_rejects_bad_recording_settings():
    from firmware.errors import ConfigError

    with pytest.raises(ConfigError, match="disk_reserve_mb"):
        BoxConfig(disk_reserve_mb=-1)
    with pytest.raises(ConfigError, match="disk_reserve_mb"):
        BoxConfig.from_dict({"disk_reserve_mb": "64"})
    with pytest.raises(ConfigError, match="flush_ms: must be at least 120 ms"):
        BoxConfig(flush_ms=100)  # shorter than one frame of the voice profile
    assert BoxConfig(flush_ms=100, audio_profile="pcm").flush_ms == 100


@pytest.mark.parametrize("code, said", [(13, "database or disk is full"), (4874, "disk I/O error")])
def test_a_row_the_card_has_no_room_for_stops_the_recording_as_a_full_disk(lab, monkeypatch, code, said):
    """A card too full to grow calls.db's -shm file refuses the recording's row with
    SQLITE_IOERR_SHMSIZE (4874), an I/O error by its primary code and "disk I/O error" by
    its words: the recorder took it for a failing card, wrote the audio to the full card
    all the same and kept the row in memory, under a call_log alarm. It is a full disk,
    as SQLITE_FULL is: the recording stops before its file exists, under disk_full."""
    import sqlite3

    from firmware.recording.store import RecordingStore

    begin, refused = RecordingStore.begin, []

    def no_room_once(store, *args, **kwargs):
        if not refused:
            refused.append(kwargs.get("recording_id"))
            exc = sqlite3.OperationalError(said)
            exc.sqlite_errorcode = code
            raise exc
        return begin(store, *args, **kwargs)

    monkeypatch.setattr(RecordingStore, "begin", no_room_once)
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    run = lab.run(lab.load(lab.scenario_doc(CALLS[:1], lines=1)), data_dir)
    assert refused, "the fault never struck"
    kinds = [(a.kind, a.active) for a in run.alarms]
    assert ("disk_full", True) in kinds and "call_log" not in [k for k, _ in kinds], kinds
    assert lab.rows(data_dir) == [] and not os.listdir(os.path.join(data_dir, "recordings"))
