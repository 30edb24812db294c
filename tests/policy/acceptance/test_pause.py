"""Issue 6 acceptance: PCI DSS pause — nothing said or keyed while paused can be recovered.

The caller reads a card number aloud and keys it on the handset while the
recording is paused (``*1`` … ``*2``). Afterwards:

* the call carries the pause span, and the recording holds digital silence
  for all of it (the PCM profile decodes to exact zeros; Opus to a few LSB of
  decoder tail, at least 40 dB below the speech that was there);
* the card digits are nowhere: not in the call log (``calls --json``), not in
  any file's bytes (databases, WAL, audit trail, recordings), and the DTMF
  receiver finds none of them in the exported recording;
* a pause nobody ends resumes by itself after ``auto_resume_s``;
* every pause and resume is in the audit trail, which verifies.
"""

import json
import time

import numpy as np
import pytest

from firmware.box import open_audit

CARD = "4929123412341234"
SPOKEN = "My card number is four nine two nine, one two three four."


def card_call(line, at, resume=True):
    keys = [{"at": 6.0, "digits": "*1"}, {"at": 12.0, "digits": CARD}]
    if resume:
        keys.append({"at": 17.0, "digits": "*2"})
    # After the resume: at 22 s (resumed by *2 at 17 s) or 27.5 s (by itself at ~26.7 s).
    after_s = 22.0 if resume else 27.5
    return {
        "line": line,
        "at": at,
        "direction": "in",
        "rings": 1,
        "talk": 30.0,
        "caller_id": {"number": "01632960123"},
        "speech": [
            {"at": 1.0, "text": "Hello, I would like to pay my bill."},
            {"at": 8.0, "text": SPOKEN},
            {"at": after_s, "text": "Thank you, that is all."},
        ],
        "keys": keys,
    }


def run(lab, profile):
    config = dict(
        lab.policy(pci={"pause_code": "*1", "resume_code": "*2", "auto_resume_s": 20}), audio_profile=profile
    )
    doc = lab.scenario([card_call(1, 1.0), card_call(2, 1.0, resume=False)], config=config)
    data_dir, log = lab.sim(doc)
    return doc, data_dir, {c["line"]: c for c in log}


@pytest.fixture(scope="module", params=["pcm", "voice"])
def paused(module_lab, request):
    return (module_lab, request.param) + run(module_lab, request.param)


def test_the_pause_is_on_the_call(paused):
    lab, _profile, _doc, _data_dir, log = paused
    (span,) = log[1]["pause_spans"]
    assert (span["by"], span["ended_by"]) == ("dtmf", "dtmf")
    answered = lab.wall_us(log[1]["answered_at"])
    # Keyed *1 at 6 s: paused once the DSP has decoded it (it works in 0.5 s blocks).
    assert 6.2 <= (lab.wall_us(span["from"]) - answered) / 1e6 <= 7.0
    assert 17.2 <= (lab.wall_us(span["to"]) - answered) / 1e6 <= 17.6
    assert log[1]["policy_decision"] == "record" and log[1]["recording"] == "complete"


def test_auto_resume(paused):
    lab, _profile, _doc, _data_dir, log = paused
    (span,) = log[2]["pause_spans"]
    assert (span["by"], span["ended_by"]) == ("dtmf", "timeout")
    # Resumed with the capture period (100 ms when the simulator runs flat out) of the timeout.
    assert abs(lab.wall_us(span["to"]) - lab.wall_us(span["from"]) - 20_000_000) <= 100_000


@pytest.mark.parametrize("line", [1, 2])
def test_the_paused_span_is_silence_in_the_recording(paused, line):
    lab, profile, doc, data_dir, log = paused
    call = log[line]
    (span,) = call["pause_spans"]
    samples, t0 = lab.decode(data_dir, call["id"])
    start, end = lab.wall_us(span["from"]), lab.wall_us(span["to"])
    quiet = lab.at(samples, t0, start, (end - start) / 1e6)
    said = lab.source(doc, line, start - lab.wall_us("2026-03-02T09:00:00.000Z"), len(quiet))
    assert lab.level_dbm0(said) > -30  # the card number was being read out
    if profile == "pcm":
        assert not np.any(quiet)  # digital silence, to the sample
    else:
        assert lab.level_dbm0(quiet) < lab.level_dbm0(said) - 40
        # Past the decoder's tail and before the next frame's look-ahead: a few LSB.
        assert np.abs(quiet[4000:-800].astype(int)).max() <= 8
    # Around the pause, the call is there: before it, and after it resumed.
    before = lab.at(samples, t0, start - 5_000_000, 3.0)
    after_s = 22.0 if line == 1 else 27.5
    after = lab.at(samples, t0, lab.wall_us(call["answered_at"]) + int(after_s * 1e6), 1.0)
    assert lab.level_dbm0(before) > -35 and lab.level_dbm0(after) > -35


def test_the_card_digits_are_nowhere(paused, tmp_path):
    lab, profile, _doc, data_dir, log = paused
    text = json.dumps(list(log.values()))
    assert CARD not in text and "4929" not in text
    assert all(c["number"] == "01632960123" for c in log.values())
    for path, data in lab.files(data_dir):
        for form in (CARD, CARD[:8], CARD[8:]):
            for encoded in (form.encode(), form.encode("utf-16-le")):
                assert encoded not in data, (path, form)
    # The recording itself: the DTMF receiver hears nothing keyed, neither the card nor
    # the pause code (silenced through the recorder's delay line, issue 20).
    wav = tmp_path / ("%s.wav" % profile)
    status, _out, err = lab.export(data_dir, log[1]["id"], wav, _password_file(tmp_path))
    assert status == 0, err
    status, out, err = lab.cli("analyze", wav, "--json")
    assert status == 0, err
    digits = "".join(e["digit"] for e in map(json.loads, out.splitlines()) if e["event"] == "dtmf")
    assert digits == ""


def test_every_pause_and_resume_is_audited(paused):
    _lab, _profile, _doc, data_dir, log = paused
    with open_audit(data_dir) as audit:
        assert audit.verify() == []
        entries = [e for e in audit.entries() if e.action in ("pause", "resume")]
    found = [(e.action, e.target, e.actor, e.details["via"]) for e in entries]
    assert sorted(found) == sorted(
        [
            ("pause", "call:%d" % log[1]["id"], "handset", "dtmf"),
            ("resume", "call:%d" % log[1]["id"], "handset", "dtmf"),
            ("pause", "call:%d" % log[2]["id"], "handset", "dtmf"),
            ("resume", "call:%d" % log[2]["id"], "system", "timeout"),
        ]
    )
    assert all(CARD not in json.dumps(e.details) for e in entries)


def test_audit_times_match_the_audio(paused):
    """Issue 20: each pause and resume entry is dated where the silence starts and ends
    (the auto-resume too, not a capture period later)."""
    lab, _profile, _doc, data_dir, log = paused
    with open_audit(data_dir) as audit:
        entries = [e for e in audit.entries() if e.action in ("pause", "resume")]
    for line in (1, 2):
        (span,) = log[line]["pause_spans"]
        target = "call:%d" % log[line]["id"]
        times = {e.action: e.wall_us for e in entries if e.target == target}
        assert abs(times["pause"] - lab.wall_us(span["from"])) < 1000
        assert abs(times["resume"] - lab.wall_us(span["to"])) < 1000


def test_pause_by_button_and_from_the_web(lab, synth):
    """The pause button toggles; the web UI pauses and resumes through box.policy."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    call1 = {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "rings": 1,
        "talk": 20.0,
        "press": [{"at": 3.0, "button": "pause"}, {"at": 8.0, "button": "pause"}],
    }
    call2 = {"line": 2, "at": 1.0, "direction": "in", "rings": 1, "talk": 20.0}
    doc = lab.scenario([call1, call2], lines=2, hat="lk-2lb")
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    answered = box.board.timeline.truth[1].answered_us
    box.clock.call_at(answered + 4_000_000, lambda: box.policy.pause(2, "alice"))
    box.clock.call_at(answered + 9_000_000, lambda: box.policy.resume(2, "alice"))
    box.start()
    assert box.board.run()
    box.stop()
    log = {c["line"]: c for c in lab.calls(data_dir)}
    (b,) = log[1]["pause_spans"]
    (w,) = log[2]["pause_spans"]
    assert (b["by"], b["ended_by"]) == ("button", "button")
    assert (w["by"], w["ended_by"]) == ("web", "web")
    assert (lab.wall_us(b["to"]) - lab.wall_us(b["from"])) / 1e6 == pytest.approx(5.0, abs=0.1)
    assert (lab.wall_us(w["to"]) - lab.wall_us(w["from"])) / 1e6 == pytest.approx(5.0, abs=0.1)
    with open_audit(data_dir) as audit:
        actors = sorted((e.action, e.actor) for e in audit.entries() if e.action in ("pause", "resume"))
    assert actors == [("pause", "alice"), ("pause", "button"), ("resume", "alice"), ("resume", "button")]


def test_the_web_cannot_pause_an_idle_line(lab, synth):
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.policy.engine import PolicyError

    doc = lab.scenario([], lines=1)
    box = open_sim_box(loads_scenario(json.dumps(doc)), lab.data_dir(), synth=synth)
    with pytest.raises(PolicyError, match="no call in progress on line 1"):
        box.policy.pause(1, "alice")
    with pytest.raises(PolicyError, match="line 1 is not paused"):
        box.policy.resume(1, "alice")


def _password_file(tmp_path):
    path = tmp_path / "pw"
    path.write_text("correct horse battery 7\n")
    return str(path)


def test_the_web_cannot_pause_a_call_that_is_not_recorded(lab, synth):
    """Issue 11: a call on a private line records nothing; a "pause" of it would be a lie."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.policy.engine import PolicyError

    calls = [{"line": n, "at": 1.0, "direction": "in", "rings": 1, "talk": 10.0} for n in (1, 2)]
    config = lab.policy(rules={"lines": [{"line": 2, "mode": "never"}]})
    doc = lab.scenario(calls, lines=2, config=config)
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    seen = {}

    def during_the_calls():
        seen["recording"] = box.policy.recording_lines()
        with pytest.raises(PolicyError, match="not recorded and cannot be"):
            box.policy.pause(2, "alice")
        box.policy.pause(1, "alice")

    answered = box.board.timeline.truth[0].answered_us
    box.clock.call_at(answered + 3_000_000, during_the_calls)
    box.start()
    assert box.board.run()
    box.stop()
    assert seen["recording"] == [1]
    with open_audit(data_dir) as audit:
        pauses = [(e.action, e.target) for e in audit.entries() if e.action == "pause"]
    log = {c["line"]: c for c in lab.calls(data_dir)}
    assert pauses == [("pause", "call:%d" % log[1]["id"])]


def test_the_web_pauses_an_on_demand_call_before_it_is_asked_to_record(lab, synth):
    """On demand, a call asked for later is recorded from its start, out of the ring
    buffer: card details read out before the request would be in it. The web UI refused
    to pause such a call ("not being recorded"); the keypad's pause code did not."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    call = {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "rings": 1,
        "talk": 16.0,
        "caller_id": {"number": "01632960123"},
        "speech": [{"at": 3.5, "text": SPOKEN}],
        "keys": [{"at": 12.0, "digits": "*9"}],
    }
    config = dict(
        lab.policy(rules={"lines": [{"line": 1, "mode": "on_demand"}]}, pci={"auto_resume_s": 60}),
        audio_profile="pcm",
    )
    doc = lab.scenario([call], lines=1, config=config)
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    seen = {}

    def paused():
        seen["pausable"] = box.policy.pausable_lines()
        box.policy.pause(1, "alice")

    answered = box.board.timeline.truth[0].answered_us
    box.clock.call_at(answered + 2_000_000, paused)
    box.clock.call_at(answered + 9_000_000, lambda: box.policy.resume(1, "alice"))
    box.start()
    assert box.board.run()
    box.stop()
    assert seen["pausable"] == [1]
    (log,) = lab.calls(data_dir)
    (span,) = log["pause_spans"]
    assert log["recording"] == "complete" and (span["by"], span["ended_by"]) == ("web", "web")
    samples, t0 = lab.decode(data_dir, log["id"])
    start, end = lab.wall_us(span["from"]), lab.wall_us(span["to"])
    assert t0 < start  # recorded from the start of the call, before the pause
    quiet = lab.at(samples, t0, start, (end - start) / 1e6)
    said = lab.source(doc, 1, start - lab.wall_us("2026-03-02T09:00:00.000Z"), len(quiet))
    assert lab.level_dbm0(said) > -30  # the card number was being read out
    assert not np.any(quiet)  # and the recording holds silence for it


def test_the_record_code_keyed_while_paused_takes_effect_as_the_pause_ends(lab):
    """The line is paused (card details) when the staff member keys the on-demand record
    code: the detectors hear nothing of a paused line, only the pause's own listener
    does, and it heard the resume code alone, so the request was lost and the call never
    recorded. It is now asked for as the pause ends: the recording begins there (from
    the request, here), so it holds nothing of the pause."""
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "rings": 1,
        "talk": 16.0,
        "caller_id": {"number": "01632960123"},
        "speech": [{"at": 1.0, "text": "Hello, I would like to pay my bill."}],
        "keys": [{"at": 4.0, "digits": "*1"}, {"at": 7.0, "digits": "*9"}, {"at": 10.0, "digits": "*2"}],
    }
    rules = {"lines": [{"line": 1, "mode": "on_demand"}], "on_demand": {"from_start": False}}
    config = dict(lab.policy(rules=rules), audio_profile="pcm")
    data_dir, (log,) = lab.sim(lab.scenario([call], lines=1, config=config))
    (span,) = log["pause_spans"]
    assert (span["by"], span["ended_by"]) == ("dtmf", "dtmf")
    assert log["policy_decision"] == "record" and log["recording"] == "complete", log
    _samples, t0 = lab.decode(data_dir, log["id"])
    # Asked for at the resume (10 s into the call), not when keyed (7 s).
    assert t0 >= lab.wall_us(span["to"]) - 500_000, (t0, span)
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert [e.action for e in entries if e.action in ("pause", "resume")] == ["pause", "resume"]


def test_a_config_json_with_a_code_staff_cannot_rely_on_still_records_and_raises_an_alarm(lab):
    """The Rules page and `config import` refuse a pause or resume code with A-D (not on
    most handsets' keypads) or * or # alone (keyed for much else on a call), but a
    config.json written before they did still has it: the box loads it and records (a
    refused configuration would stop it recording), and raises pci_code_unkeyable naming
    each code and what to do, until the codes are changed."""
    from firmware import words
    from firmware.alarmlog import AlarmLog
    from firmware.config import BoxConfig, load_config, save_config

    data_dir = lab.data_dir()
    save_config(data_dir, BoxConfig.from_dict(lab.policy(pci={"pause_code": "*1A", "resume_code": "#"})))
    call = dict(card_call(1, 1.0), keys=[])
    _, calls = lab.sim(lab.scenario([call]), data_dir)  # no config of its own: DATA_DIR's
    assert [(c["line"], c["recording"] is not None) for c in calls] == [(1, True)]
    assert load_config(data_dir).policy.pci.pause_code == "*1A"  # left as it was
    log = AlarmLog.open_existing(data_dir)
    try:
        found = [a for a in log.history(lines=[]) if a["kind"] == "pci_code_unkeyable"]
    finally:
        log.close()
    assert found and found[-1]["line"] == 0
    message = found[-1]["message"]
    assert "The pause code *1A has A, B, C or D, keys most handsets do not have" in message
    assert "The resume code cannot be # alone" in message
    assert words.say("alarm", "pci_code_unkeyable") == "The card-payment pause or resume code needs changing"
    assert "Rules page" in words.alarm_advice("pci_code_unkeyable")


def test_the_card_payment_code_alarm_clears_once_the_codes_are_changed(lab, synth):
    import dataclasses

    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    doc = lab.scenario([], config=lab.policy(pci={"pause_code": "ABC", "resume_code": "*2"}))
    box = open_sim_box(loads_scenario(json.dumps(doc)), lab.data_dir(), synth=synth)

    def alarms():
        return [
            (a["message"], a["cleared_us"] is None)
            for a in box.alarm_log.history(lines=[])
            if a["kind"] == "pci_code_unkeyable"
        ]

    box.start()
    try:
        ((message, still_open),) = alarms()
        assert message.startswith("The pause code ABC has A, B, C or D") and still_open
        assert "resume" not in message
        pci = dataclasses.replace(box.config.policy.pci, pause_code="*1")
        box.apply_config(box.config.replace(policy=dataclasses.replace(box.config.policy, pci=pci)))
        assert alarms() == [(message, False)]
        # A resume code of digits alone (which a config import takes, saying so) is ended by
        # the same digits keyed in a card's security code: the alarm names it too. (The
        # box's own threads may be writing the alarm history as it is raised: a change
        # made meanwhile is written by them, in turn, so it is waited for.)
        pci = dataclasses.replace(box.config.policy.pci, resume_code="7")
        box.apply_config(box.config.replace(policy=dataclasses.replace(box.config.policy, pci=pci)))
        expected = [
            "The resume code 7 does not start with * or #: a caller keying a card number or its "
            "security code while the recording is paused may key those digits, which would resume "
            "the recording in the middle of the card details. Start it with * or #, such as *7."
        ]
        deadline = time.monotonic() + 10
        while [m for m, still_open in alarms() if still_open] != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m for m, still_open in alarms() if still_open] == expected, alarms()
    finally:
        box.stop()
