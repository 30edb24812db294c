"""kill -9 while a recording's destruction waits for the card: the note left for the next start.

A call that ends during its consent notice keeps nothing of its recording. Here the card
refuses the transaction that decides the destruction, every time (``crash_driver.py
refuse-destructions``): the decision waits in the recorder's memory, and is noted beside the
call log (``discards-pending.json``) as it is refused. The box is killed with SIGKILL once the
note is on the card (and the call's skip in the call log, written at once: a decision changed
after the call's end does not wait for the group commit), the decision in the note only (the
recording's row still ``recording``, naming its file). The next start must decide and do it from the note:

* the recording is gone (no row, no file, no key copy), audited ``recording_deleted`` with
  the reason the note kept;
* the call is ``skip`` with that reason, and has no recording;
* the note is gone, and ``verify`` passes.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from firmware.calls.calllog import GROUP_COMMIT_US
from firmware.recording.store import PENDING_DISCARDS

from .test_crash_kill import DRIVER, PERIOD_US, SPEED

pytestmark = pytest.mark.slow  # kills a real box process mid-run

CONSENT = {"inbound": "announcement", "outbound": "tone"}
WHY = "the caller hung up during the consent notice"
SKIP = WHY + ", so the other party was not told the call is recorded"  # the call's reason, noted too
CALLS = [
    # Hangs up a second into the announcement: its recording is to be destroyed.
    {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"},
    # Keeps the box running well past the note (and the tries again, every 5 s).
    {"line": 2, "at": 1.0, "direction": "in", "rings": 1, "talk": 40.0},
]


def _kill_once_noted(lab, path, data_dir):
    """Run the driver, the card refusing every destruction, and SIGKILL it two capture periods
    after the note is on the card, well inside the call log's group commit window (the call's
    skip must not wait for it, docs/sqlite-writes.md); returns the last clock time (µs) it
    reported."""
    note = os.path.join(data_dir, PENDING_DISCARDS)
    proc = subprocess.Popen(
        [sys.executable, DRIVER, path, data_dir, str(SPEED), lab.speech_cache, "refuse-destructions"],
        stdout=subprocess.PIPE,
    )
    t_last = noted_at = None
    for line in proc.stdout:
        if line.strip().isdigit():
            t_last = int(line)
            if noted_at is None and os.path.exists(note):
                noted_at = t_last
            if noted_at is not None and t_last >= noted_at + 2 * PERIOD_US:
                assert t_last < noted_at + GROUP_COMMIT_US, "the kill came after the group commit"
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.stdout.read()
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the driver ended before the kill"
    proc.stdout.close()
    return t_last


def test_kill_9_with_a_destruction_only_in_its_note_is_done_by_the_next_start(lab):
    from firmware.box import open_audit

    doc = lab.scenario_doc(CALLS, lines=2, config={"policy": {"consent": CONSENT}})
    path = lab.write_scenario(doc, "discard-kill.json")
    lab.timeline(lab.load(doc))  # speech into the shared cache, before the child runs
    data_dir = lab.init_data_dir(lab.tmp_path / "data")
    t_last = _kill_once_noted(lab, path, data_dir)
    assert t_last is not None and t_last < 20_000_000  # long before line 2's call ends

    # As the kill left it: the decision in the note only, not in the call log.
    (logged,) = [c for c in lab.calls(data_dir) if c["line"] == 1]
    (waiting,) = [r for r in lab.rows(data_dir) if r["call_id"] == logged["id"]]
    assert logged["policy_decision"] == "skip"
    assert waiting["state"] == "recording" and waiting["file"]
    with open(os.path.join(data_dir, PENDING_DISCARDS)) as f:
        noted = json.load(f)
    assert noted == {waiting["id"]: {"call_id": logged["id"], "why": WHY, "skip": SKIP}}
    recording_files = [waiting["id"] + ".lkrec", waiting["id"] + ".lkkey"]
    assert set(recording_files) <= set(os.listdir(os.path.join(data_dir, "recordings")))

    # The box starts again.
    run = lab.run(lab.load(lab.scenario_doc([], lines=2, config=doc["config"])), data_dir)

    assert ("discarded", waiting["id"]) in [(kind, rid) for kind, rid, _ in run.recovered]
    assert waiting["id"] not in [r["id"] for r in lab.rows(data_dir)]
    assert not set(recording_files) & set(os.listdir(os.path.join(data_dir, "recordings")))
    assert not os.path.exists(os.path.join(data_dir, PENDING_DISCARDS))
    (logged,) = [c for c in lab.calls(data_dir) if c["line"] == 1]
    assert (logged["policy_decision"], logged["policy_reason"]) == ("skip", SKIP)
    assert logged["recording"] is None
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    deleted = [(e.target, e.details) for e in entries if e.action == "recording_deleted"]
    assert deleted == [("recording:" + waiting["id"], {"why": WHY})]
    # Destroyed, not made a partial recording first (line 2's, cut by the kill, is one).
    recovered = [e.target for e in entries if e.action in ("recording_recovered", "recording_replayed")]
    assert "recording:" + waiting["id"] not in recovered
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
