"""The box's stop costs the card a few commits of ext4's journal, not one for every file
it touches: the line check and the running marker ride the databases' closing syncs
and the clean-stop mark's one commit (docs/journal.md, "What the card receives")."""

import json
import os

from firmware.alarmchecks import RUNNING_MARKER
from firmware.datadir import CLEAN_STOP_NAME, stopped_cleanly

from support.simbox import keyed_sim_box

CALLS = [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0}]


def test_the_stop_syncs_the_data_folder_once_for_the_mark_the_check_and_the_marker(
    tmp_path, synth, monkeypatch
):
    box, data_dir = keyed_sim_box(tmp_path, synth, CALLS, lines=1)
    box.start()
    assert box.board.run()
    assert os.path.exists(os.path.join(data_dir, RUNNING_MARKER))
    box.linecheck._dirty = True  # something learned waits for the stop

    events = []
    real = {n: getattr(os, n) for n in ("fsync", "fdatasync", "replace", "unlink")}

    def name(fd):
        return os.path.basename(os.readlink("/proc/self/fd/%d" % fd))

    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("sync", name(fd))) or real["fsync"](fd))
    monkeypatch.setattr(
        os, "fdatasync", lambda fd: events.append(("sync", name(fd))) or real["fdatasync"](fd)
    )
    monkeypatch.setattr(
        os, "replace", lambda a, b: events.append(("rename", os.path.basename(b))) or real["replace"](a, b)
    )
    monkeypatch.setattr(
        os, "unlink", lambda p, **k: events.append(("unlink", os.path.basename(p))) or real["unlink"](p, **k)
    )
    box.stop()

    assert stopped_cleanly(data_dir) and not os.path.exists(os.path.join(data_dir, RUNNING_MARKER))
    folder = [i for i, e in enumerate(events) if e == ("sync", "box")]
    assert len(folder) == 1  # the clean-stop mark's, and nothing else's
    mark = events.index(("rename", CLEAN_STOP_NAME))
    check = events.index(("rename", "linecheck.json"))
    marker = events.index(("unlink", RUNNING_MARKER))
    # Everything the stop left unsynced comes before the one commit that carries it.
    assert max(check, marker) < mark < folder[0]
    assert ("sync", "linecheck.json") not in events and not any(
        e[0] == "sync" and e[1].startswith(".linecheck.json") for e in events
    )
    with open(os.path.join(data_dir, "linecheck.json")) as f:
        assert json.load(f)["lines"]
