"""A recording's call copy (``ID.lkcall``: the number as the call log kept it once
recording ended, for ``linekeeper repair``) goes when its recording goes, and one left
without its recording is destroyed at start, not quarantined (docs/FORMAT.md)."""

import os

from firmware.recording.store import RecordingStore

from support.simbox import keyed_sim_box

RID = "00112233445566778899aabbccddeeff"


def test_a_recording_from_off_hook_gets_a_call_copy_with_the_number_dialled(tmp_path, synth):
    calls = [
        {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "17", "delay": 0.2}, "talk": 4.0},
        {
            "line": 2,
            "at": 1.0,
            "direction": "in",
            "rings": 1,
            "talk": 4.0,
            "caller_id": {"number": "01632960123"},
        },
    ]
    box, data_dir = keyed_sim_box(tmp_path, synth, calls, lines=2)
    box.start()
    box.board.run()
    box.stop()
    store = RecordingStore(data_dir)
    try:
        rows = {store.call_row(r["call_id"])["direction"]: r for r in store.all()}
        copies = [n for n in os.listdir(store.dir) if n.endswith(".lkcall")]
        # Recorded from off-hook, its header has no number; the inbound call's header has its own.
        assert copies == [rows["out"]["id"] + ".lkcall"]
        store.shred_file(rows["out"]["id"], audit=False)
        assert not os.path.exists(store.call_copy_path(rows["out"]["id"]))
    finally:
        store.close()


def test_a_call_copy_without_its_recording_is_destroyed_at_start(tmp_path):
    store = RecordingStore(str(tmp_path))
    try:
        os.makedirs(store.dir, exist_ok=True)
        store.write_call_copy(RID, 1, {"number": "01632960123", "digits_withheld": False})
        done = store.recover()
        assert ("shredded", RID + ".lkcall", None) in done
        assert not os.path.exists(store.call_copy_path(RID))
        assert store.quarantined() == []
    finally:
        store.close()
