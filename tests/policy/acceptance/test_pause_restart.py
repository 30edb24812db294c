"""A PCI pause outlives the recorder: a power cut (or a restart) in the middle of a
payment does not end it, so the card number read out after the box is back is not
recorded (docs/pci.md, "A pause across a restart")."""

import json
import os

import numpy as np
import pytest

from firmware.box import open_audit
from firmware.policy.pause import MARKS

SPOKEN = (
    "four one one one, one one one one, one one one one, one one one one, security code seven three seven"
)


def _marks(data_dir):
    with open(os.path.join(data_dir, MARKS), "rb") as f:
        return json.loads(f.read())


def call(resume_at=None):
    keys = [{"at": 2.0, "digits": "*1"}]
    if resume_at is not None:
        keys.append({"at": resume_at, "digits": "*2"})
    return {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "rings": 1,
        "talk": 30.0,
        "caller_id": {"number": "01632960123"},
        "keys": keys,
        "speech": [
            {"at": 1.0, "text": "I would like to pay my bill."},
            {"at": 12.0, "text": SPOKEN},
            {"at": 26.0, "text": "Thank you, that is all."},
        ],
    }


def run(lab, resume_at=None):
    config = dict(lab.policy(pci={"pause_code": "*1", "resume_code": "*2", "auto_resume_s": 120}))
    config["audio_profile"] = "pcm"
    doc = lab.scenario([call(resume_at)], lines=1, config=config)
    doc["power"] = [{"at": 8.0, "cut": True}, {"at": 8.3, "cut": False}]
    data_dir, log = lab.sim(doc)
    return doc, data_dir, sorted(log, key=lambda c: c["id"])


def test_the_call_found_under_way_goes_on_paused(lab):
    doc, data_dir, (before, after) = run(lab)
    assert before["end_reason"] == "power_loss" and before["pause_spans"][0]["by"] == "dtmf"
    assert after["direction"] == "out" and after["answered_at"] == after["started_at"]  # found under way
    (span,) = after["pause_spans"]
    assert span["by"] == "restart"
    assert span["ended_by"] == "call_end"  # nobody resumed: the call ended paused
    # The card number read out at 12 s (after the box was back) is not in the recording.
    samples, t0 = lab.decode(data_dir, after["id"])
    assert samples.size > 8000 and not np.any(samples), "audio recorded while the pause was on"
    with open_audit(data_dir) as audit:
        assert audit.verify() == []
        found = [
            (e.action, e.actor, e.details.get("via"))
            for e in audit.entries()
            if e.target == "call:%d" % after["id"]
        ]
    assert ("pause", "system", "restart") in found
    assert _marks(data_dir) == {}  # the pause ended with the call


def test_the_resume_code_after_the_restart_ends_it(lab):
    doc, data_dir, (before, after) = run(lab, resume_at=20.0)
    (span,) = after["pause_spans"]
    assert (span["by"], span["ended_by"]) == ("restart", "dtmf")
    samples, t0 = lab.decode(data_dir, after["id"])
    resumed = lab.wall_us(span["to"])
    spoken = lab.at(samples, t0, lab.wall_us(span["from"]) + 3_500_000, 6.0)
    assert not np.any(spoken)  # the card number, after the restart, before the resume
    thanks = lab.at(samples, t0, resumed + 5_000_000, 2.0)
    assert lab.level_dbm0(thanks) > -35  # recorded again once resumed


def _left_paused(lab, synth):
    """``(data dir, box)``: a box of one idle line that its last run left paused."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    data_dir = lab.data_dir()
    doc = lab.scenario([], lines=1)
    with open(os.path.join(data_dir, MARKS), "w") as f:
        json.dump({"1": {"until_wall_us": lab.wall_us("2026-03-02T10:00:00.000Z")}}, f)
    return data_dir, open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)


def test_a_line_found_idle_lets_its_pause_go(lab, synth):
    """The box stopped with a line paused; at the next start the call is over: the line
    records the next call as usual."""
    data_dir, box = _left_paused(lab, synth)
    box.start()
    try:
        assert box.policy.pauses.paused_lines() == [1]  # muted from before the capture started
        assert box.board.run()
        assert box.policy.pauses.paused_lines() == []  # then let go: the line was idle
        assert not box.capture._muted
    finally:
        box.stop()
    assert _marks(data_dir) == {}


@pytest.mark.parametrize("text", ["{not json", '{"1": {"until": 5}}', "[]"])
def test_an_unreadable_mark_mutes_every_line_until_settled(lab, synth, text):
    """Erring on PCI DSS's side: unreadable, every line is taken as paused at the start."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    data_dir = lab.data_dir()
    doc = lab.scenario([], lines=2)
    with open(os.path.join(data_dir, MARKS), "w") as f:
        f.write(text)
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    restored = box.policy.pauses.restore()
    assert restored == [1, 2]
    for line in restored:
        box.policy.pauses.release(line)
    assert box.policy.pauses.paused_lines() == []
    box.stop()


def test_a_card_that_fills_up_does_not_lose_the_pause(lab, monkeypatch):
    """The paused lines are written in place into a block made at the start: a full card,
    which refuses a new file, cannot leave a pause on in memory only."""
    from firmware.storage import fsutil

    real = fsutil.atomic_write

    def full(path, data, **kw):
        if path.endswith(MARKS) and data.strip() != b"{}":
            raise OSError(28, "No space left on device")
        return real(path, data, **kw)

    monkeypatch.setattr(fsutil, "atomic_write", full)
    _doc, data_dir, (_before, after) = run(lab)
    (span,) = after["pause_spans"]
    assert span["by"] == "restart"
    samples, _t0 = lab.decode(data_dir, after["id"])
    assert not np.any(samples)


def test_a_resume_before_the_call_is_found_is_audited_against_the_line(lab, synth):
    """Between the start and the moment the levels settle the restored pause has no call:
    a resume from the web UI then was unaudited."""
    data_dir, box = _left_paused(lab, synth)
    box.start()
    try:
        box.policy.resume(1, "alice")
    finally:
        box.stop()
    with open_audit(data_dir) as audit:
        found = [
            (e.action, e.actor, e.target, e.details["via"]) for e in audit.entries() if e.action == "resume"
        ]
    assert found == [("resume", "alice", "line:1", "web")]
