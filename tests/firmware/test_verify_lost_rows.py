"""`linekeeper verify` after the call log lost its latest writes (a ``calls.db-wal`` lost in a
power cut): each recording it lost is one line, with the count in the summary, not a line for
its file, one for its key copy and one for its audit entry (docs/recovery.md)."""

import os
import sqlite3

from support.cli import record_calls, recorded_box, run_linekeeper

PASSWORD = "lost rows owner password 4"


def test_each_recording_the_call_log_lost_is_one_line_and_counted(tmp_path, synth):
    data, pw = recorded_box(tmp_path, synth, PASSWORD)
    calls = [{"line": 1, "at": 1.0 + 10 * n, "direction": "in", "rings": 1, "talk": 2.0} for n in range(3)]
    record_calls(data, synth, calls, "2026-03-03T09:00:00Z")
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    with db:
        ids = [r[0] for r in db.execute("SELECT id FROM recordings ORDER BY id")]
        lost = ids[1:]  # the call log keeps its first recording only
        db.executemany("DELETE FROM recordings WHERE id = ?", [(rid,) for rid in lost])
    db.close()
    assert len(lost) == 3

    status, out, err = run_linekeeper("verify", "--data-dir", data, "--password-file", pw, "--user", "admin")
    assert status == 1
    lines = out.splitlines()
    assert lines == [
        "recording %s: not in the call log, created (audit trail) and still on the card "
        "(recordings/%s.lkrec and %s.lkkey): the call log lost it (`linekeeper repair` rebuilds "
        "it from the file)" % (rid, rid, rid)
        for rid in lost
    ], out
    assert err.strip().splitlines()[-1] == (
        "3 problem(s) found, 3 of them recordings on the card and not in the call log (`linekeeper "
        "repair` rebuilds them from their files)"
    )

    # A file no audit entry saw created is one line too, not said to be lost by the call log.
    stray = os.path.join(data, "recordings", "00ff.lkkey")
    with open(stray, "wb") as f:
        f.write(b"not a key copy")
    status, out, err = run_linekeeper("verify", "--data-dir", data, "--password-file", pw, "--user", "admin")
    assert status == 1
    assert out.splitlines()[0] == (
        "recording 00ff: not in the call log (recordings/00ff.lkkey; `linekeeper repair` rebuilds "
        "the log from the recordings)"
    )
    assert "4 problem(s) found, 4 of them recordings on the card and not in the call log" in err
