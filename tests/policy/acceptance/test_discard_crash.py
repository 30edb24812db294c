"""A crash the moment the policy's destruction of a recording is decided: the call is ``skip``.

The recording of a call that may not keep it (its staff member keyed the personal-call
code, or it ended during its consent notice) is destroyed in two steps: the store decides
it (the row stops naming its file, :meth:`RecordingStore.unname_file`), then the recorder's
worker destroys the file and the row. The call's ``skip`` must be on the card from the
first step: a crash right after it leaves the next start to destroy the recording, and a
call log that still said ``record`` would then count the call as one the box failed to
record (the report's ``failed``), its recording "lost", where the policy refused it.

Here the data directory is copied as a crash leaves it (every commit on the card) the
moment the store has decided, before anything else runs on the call stack; a box is then
started on the copy.
"""

import json
import os

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_audit, open_sim_box
from firmware.policy.rules import PERSONAL_REASON

from support.policy_lab import PASSWORD
from support.recording_lab import Lab

CONSENT = {"inbound": "announcement", "outbound": "tone"}
CUT_SHORT = "the caller hung up during the consent notice"
CASES = {
    # Keyed 5 s into a call recorded since its answer: the call goes on (the call log's
    # group commit would write its skip a second later).
    "personal": (
        {
            "line": 1,
            "at": 1.0,
            "direction": "in",
            "rings": 1,
            "talk": 12.0,
            "keys": [{"at": 5.0, "digits": "*7"}],
        },
        {"rules": {"personal": {"dtmf_code": "*7", "lines": None}}},
        PERSONAL_REASON,
        PERSONAL_REASON,
    ),
    # Hangs up a second into the announcement: the call has ended.
    "cut_short": (
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"},
        {"consent": CONSENT},
        CUT_SHORT,
        CUT_SHORT + ", so the other party was not told the call is recorded",
    ),
}


def _scenario(calls, policy):
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": calls}
    doc["config"] = {"policy": policy}
    return doc


def _run(doc, data_dir, synth, before_start=None):
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    if before_start is not None:
        before_start(box)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    return box


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crash_once_the_destruction_is_decided_leaves_the_call_skipped(lab, case):
    call, policy, why, reason = CASES[case]
    data_dir = lab.data_dir()
    crashed = str(lab.tmp_path / "crashed")
    decided = []

    def crash_when_decided(box):
        store = box.recorder.store
        real = store.unname_file

        def unname_file(recording_id, *args, **kwargs):
            done = real(recording_id, *args, **kwargs)
            if done and not decided:
                decided.append(recording_id)
                Lab.snapshot(data_dir, crashed)  # as a kill -9 here leaves the card
            return done

        store.unname_file = unname_file

    _run(_scenario([call], policy), data_dir, lab.synth, before_start=crash_when_decided)
    assert len(decided) == 1
    # The run itself, uncut: skipped, nothing kept.
    ((logged,),) = [lab.calls(data_dir)]
    assert (logged["policy_decision"], logged["policy_reason"]) == ("skip", reason)

    # As the crash left it: the row names no file, the file still there.
    (row,) = lab.recordings(crashed)
    assert row["id"] == decided[0] and row["state"] == "recording" and row["file"] == ""
    assert decided[0] + ".lkrec" in os.listdir(os.path.join(crashed, "recordings"))

    # The next start.
    box = _run(_scenario([], policy), crashed, lab.synth)
    assert ("discarded", decided[0]) in [(kind, rid) for kind, rid, _ in box.recovered]
    assert lab.recordings(crashed) == []
    assert not [n for n in os.listdir(os.path.join(crashed, "recordings")) if n.startswith(decided[0])]
    ((logged,),) = [lab.calls(crashed)]
    assert (logged["policy_decision"], logged["policy_reason"]) == ("skip", reason)
    assert logged["recording"] is None
    with open_audit(crashed) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert [e.details for e in entries if e.action == "recording_deleted"] == [{"why": why}]

    # The report counts it as the policy decided it, not as a recording that failed.
    password = lab.tmp_path / "pw"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    out = lab.tmp_path / "report.json"
    status, _, err = lab.cli(
        "report", "--data-dir", crashed, "--password-file", str(password),
        "--from", "2026-03-02", "--to", "2026-03-02", "--out", str(out),
    )  # fmt: skip
    assert status == 0, err
    coverage = json.loads(out.read_text())["box"]["coverage"]
    assert coverage["failed"] == 0 and coverage["recorded"] == 0
    assert coverage["connected"] == 1
