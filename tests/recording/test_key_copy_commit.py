"""A new recording's key copy (``ID.lkkey``) and file reach the card with the file
system's next commit, none of their own: the recording journal holds the file's header
and seal until then, and syncs the sealed file before it wraps round or closes
(docs/journal.md)."""

import os

from firmware.recording import journal as journal_mod

from support.simbox import keyed_sim_box

CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 4.0},
    {"line": 2, "at": 1.5, "direction": "out", "dial": {"digits": "17", "delay": 0.2}, "talk": 4.0},
]


def test_the_key_copy_and_file_are_created_and_sealed_with_no_syncs_of_their_own(
    tmp_path, synth, monkeypatch
):
    box, data_dir = keyed_sim_box(tmp_path, synth, CALLS, lines=2)
    events = []  # (what, file name[, journal offset])

    def name(fd):
        return os.path.basename(os.readlink("/proc/self/fd/%d" % fd))

    real = {n: getattr(os, n) for n in ("open", "fsync", "fdatasync", "replace")}

    def open_(path, flags, *args, **kw):
        fd = real["open"](path, flags, *args, **kw)
        if flags & os.O_CREAT and isinstance(path, str) and ".lk" in path:
            events.append(("create", os.path.basename(path)))
        return fd

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("sync", name(fd))) or real["fsync"](fd))
    monkeypatch.setattr(
        os, "fdatasync", lambda fd: events.append(("sync", name(fd))) or real["fdatasync"](fd)
    )
    monkeypatch.setattr(
        os, "replace", lambda a, b: events.append(("rename", os.path.basename(b))) or real["replace"](a, b)
    )
    real_append = journal_mod.Journal.append

    def append(jnl, writer, recording_id, offset, data):
        events.append(("journal", recording_id, offset))
        return real_append(jnl, writer, recording_id, offset, data)

    monkeypatch.setattr(journal_mod.Journal, "append", append)
    box.start()
    assert box.board.run()
    box.stop()

    keys = [e[1] for e in events if e[0] == "create" and e[1].endswith(".lkkey")]
    assert len(keys) == 2
    for key in keys:
        rid = key[: -len(".lkkey")]
        assert ("sync", key) not in events and ("rename", key) not in events  # no commit of its own
        created = events.index(("create", key))
        journaled = [i for i, e in enumerate(events) if e[:2] == ("journal", rid)]
        # The header is the file's first record in the journal, after its creation ...
        assert created < events.index(("create", rid + ".lkrec")) < journaled[0]
        assert events[journaled[0]][2] == 0
        # ... and the file is synced once, sealed (by the journal's close, at the stop).
        syncs = [i for i, e in enumerate(events) if e == ("sync", rid + ".lkrec")]
        assert len(syncs) == 1 and syncs[0] > journaled[-1]
