"""Issue 6 acceptance: the consent notice is in the recordings, at its times and levels.

Calls without speech, so what the recording holds beside the line noise is
what the box played: the spoken announcement at the answer (found by
correlating the decoded recording with the announcement itself), the
1400 Hz warning tone every 15 s at -13 dBm0 (measured in a 40 Hz band), the
outbound beep once the far end is heard. A notice that cannot be given is
marked on the call and, unless ``record_if_notice_failed``, the call is not
recorded.
"""

import dataclasses
import json
import os

import numpy as np
import pytest

from firmware.policy.announcement import validate_announcement_wav, wav_bytes

CONSENT = {
    "inbound": "announcement",
    "outbound": "tone",
    "warning_tone": {
        "enabled": True,
        "frequency_hz": 1400,
        "duration_ms": 500,
        "interval_s": 15,
        "level_dbm0": -13,
    },
}


def calls():
    return [
        {
            "line": 1,
            "at": 1.0,
            "direction": "in",
            "rings": 1,
            "talk": 50.0,
            "caller_id": {"number": "01632960123"},
        },
        # Taken as answered by the dial timeout (4 s after the last digit, no ringback), and
        # heard from just after it: the notice waits for the far end's "Hello?".
        {
            "line": 2,
            "at": 1.0,
            "direction": "out",
            "dial": {"digits": "02079460000"},
            "talk": 37.0,
            "speech": [{"at": 4.5, "text": "Hello?"}],
        },
    ]


@pytest.fixture(scope="module")
def noticed(module_lab):
    lab = module_lab
    data_dir, log = lab.sim(lab.scenario(calls(), config=lab.policy(consent=CONSENT)))
    return lab, data_dir, {c["line"]: c for c in log}


def test_each_call_says_when_notice_was_given(noticed):
    lab, _data_dir, log = noticed
    inbound, outbound = log[1], log[2]
    assert inbound["consent"]["notice"] == "announcement" and inbound["consent"]["given"]
    assert outbound["consent"]["notice"] == "tone" and outbound["consent"]["given"]
    # At the answer (within the 15 ms debounce and a 20 ms capture period)...
    assert 0 <= lab.wall_us(inbound["consent"]["at"]) - lab.wall_us(inbound["answered_at"]) < 60_000
    # ... and, outbound, once the far end is heard (its voice 4.5 s after the last digit,
    # the answer dated there by the dial timeout): within the voice onset's half second.
    delay = lab.wall_us(outbound["consent"]["at"]) - lab.wall_us(outbound["answered_at"])
    assert 4_500_000 <= delay < 5_100_000
    assert inbound["consent"]["warning_tones"] == 3 and outbound["consent"]["warning_tones"] == 2
    assert inbound["policy_decision"] == outbound["policy_decision"] == "record"
    assert "cut_short" not in inbound["consent"] and "cut_short" not in outbound["consent"]


def test_a_caller_who_hangs_up_during_the_announcement_is_not_said_to_have_heard_it(lab):
    """The call said {"given": true, "duration_s": 7.0} for a caller gone after 2 s: the
    record is the evidence of what the caller was told."""
    call = dict(calls()[0], talk=2.0, hangup="remote")
    _data_dir, (logged,) = lab.sim(lab.scenario([call], config=lab.policy(consent=CONSENT)))
    consent = logged["consent"]
    assert consent["given"] and consent["cut_short"] is True
    assert 1.5 <= consent["heard_s"] <= 2.1 < consent["duration_s"], consent


def _run_and_audit(lab, calls, consent):
    """Run ``calls`` on a simulated box: (data dir, the call log, its audit entries)."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_audit, open_sim_box

    doc = lab.scenario(calls, config=lab.policy(consent=consent))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
    box.start()
    assert box.board.run()
    box.stop()  # the recorder's worker done with its destructions
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    return data_dir, lab.calls(data_dir), entries


# Who ended a call 1 s into its notice, and what its recording's destruction says of it.
CUT_SHORT = {
    ("in", "remote"): "the caller hung up during the consent notice",
    ("in", "local"): "our side hung up during the consent notice",
    ("out", "remote"): "the person called hung up during the consent notice",
    ("out", "local"): "our side hung up during the consent notice",
}


@pytest.mark.parametrize("direction, hangup", sorted(CUT_SHORT))
def test_a_call_that_ends_during_its_announcement_keeps_no_recording(lab, direction, hangup):
    """Hung up 1 s into the 7 s announcement: the other party was not told the call is
    recorded, yet its recording (begun at the answer, or at off-hook) was kept to its end.
    It is destroyed as a recording whose notice was not given is (file and key copy
    overwritten and removed, its row gone, audited ``recording_deleted`` saying why); the
    call stays in the call log, its notice ``cut_short``, its reason saying why nothing
    is kept. Whoever hung up, the notice was not heard to its end."""
    consent = dict(CONSENT, outbound="announcement")
    if direction == "in":
        call = dict(calls()[0], talk=1.0, hangup=hangup)
    else:  # answered by a reversal, where the notice begins
        call = dict(calls()[1], line=1, talk=1.0, hangup=hangup, polarity_on_answer=True, speech=[])
    data_dir, (logged,), entries = _run_and_audit(lab, [call], consent)
    why = CUT_SHORT[direction, hangup]
    assert logged["consent"]["given"] and logged["consent"]["cut_short"] is True
    assert 0.8 <= logged["consent"]["heard_s"] <= 1.2 < logged["consent"]["duration_s"]
    assert logged["policy_decision"] == "skip" and logged["recording"] is None
    assert logged["policy_reason"] == why + ", so the other party was not told the call is recorded"
    assert lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []  # no file, no key copy
    (created,) = [e for e in entries if e.action == "recording_created"]
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [(e.target, e.details) for e in deleted] == [(created.target, {"why": why})]


def test_a_recording_closed_before_the_policy_hears_the_end_is_not_kept_either(lab):
    """On a Digital Voice hub's line the far end's clear (600 ms without line feed) is
    found more than the recorder's 360 ms delay line after it: the recorder, told of the
    end first, had every sample of the call and finished the recording at once, before
    the policy heard the call had ended during its notice. It was kept, the call saying
    it was skipped. The recorder asks the policy as it closes a recording."""
    call = {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"}
    from board.sim.scenario import loads_scenario
    from firmware.box import open_audit, open_sim_box

    doc = lab.scenario([call], config=lab.policy(consent=CONSENT), sources={"1": "uk-dv-hub"})
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
    box.start()
    assert box.board.run()
    box.stop()
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    (logged,) = lab.calls(data_dir)
    why = "the caller hung up during the consent notice"
    assert logged["end_reason"] == "remote_break" and logged["consent"]["cut_short"] is True
    assert logged["policy_decision"] == "skip" and logged["policy_reason"].startswith(why + ", so")
    assert logged["recording"] is None and lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []
    (created,) = [e for e in entries if e.action == "recording_created"]
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [(e.target, e.details) for e in deleted] == [(created.target, {"why": why})]


def _silence_cleared_during_notice(lab, synth, speech=(), talk_s=30.0):
    """A ``talk_s`` inbound call, silent (``speech`` aside), whose announcement has 11 s of quiet
    before its words, with a 10 s silence clear: (data dir, the call, its audit entries,
    whether a recording of the call was open at each CallResumed and at its last CallEnded)."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_audit, open_sim_box
    from firmware.bus import CallEnded, CallResumed
    from firmware.policy.announcement import store_announcement

    words = synth.say("Calls to Hawthorne and Sons are recorded.", voice="en-gb")
    words = (words.astype(np.float64) * 0.5).astype(np.int16)
    data_dir = lab.data_dir()
    store_announcement(
        data_dir, "quiet.wav", wav_bytes(np.concatenate([np.zeros(11 * 8000, np.int16), words]))
    )
    call = {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": talk_s, "hangup": "local"}
    if speech:
        call["speech"] = list(speech)
    config = lab.policy(consent=dict(CONSENT, announcement={"file": "quiet.wav"}))
    config["silence_clear_s"] = 10
    box = open_sim_box(loads_scenario(json.dumps(lab.scenario([call], config=config))), data_dir, synth=synth)
    box.start()
    # (event, whether a recording of its call was open then), once the recorder and policy heard it
    recording = []

    def seen(ev):
        recording.append((type(ev).__name__, box.recorder.recording(ev.call)))

    box.bus.subscribe(CallResumed, seen)
    box.bus.subscribe(CallEnded, seen)
    assert box.board.run()
    box.stop()
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    (logged,) = lab.calls(data_dir)
    return data_dir, logged, entries, recording


def _skipped_for_the_silence(lab, data_dir, logged, entries):
    """The call of :func:`_silence_cleared_during_notice`, its notice cut short by the
    silence clear: skipped, its recording destroyed, with the silence as the reason."""
    why = "the line went silent during the consent notice"
    assert logged["consent"]["cut_short"] is True and logged["consent"]["heard_s"] < 0.1
    assert logged["policy_decision"] == "skip"
    assert logged["policy_reason"] == why + ", so the other party was not told the call is recorded"
    assert logged["recording"] is None and lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []
    (created,) = [e for e in entries if e.action == "recording_created"]
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [(e.target, e.details) for e in deleted] == [(created.target, {"why": why})]


def test_a_call_the_silence_clear_ends_during_its_announcement_keeps_no_recording(lab, synth):
    """The far end says nothing, and the box's own playback is sound on the line: only an
    announcement with a long quiet start (here 11 s before its words) lets the silence clear
    (10 s) end a call during it. The end is dated where the silence began, at the answer:
    the notice was cut short, its words never played (the playback stops as the end is
    found). The recording is destroyed as for any other end during the notice, and the
    reason says the line went silent, not that anybody hung up (nobody was heard to)."""
    data_dir, logged, entries, _recording = _silence_cleared_during_notice(lab, synth)
    assert logged["end_reason"] == "remote_silence" and logged["ended_at"] == logged["answered_at"]
    _skipped_for_the_silence(lab, data_dir, logged, entries)


def test_a_call_that_goes_on_after_the_silence_cut_its_notice_short_is_not_recorded_on(lab, synth):
    """The silence clear ends the call 10 s into the announcement's quiet start, then the
    caller speaks (13 s after the answer) and the call goes on, to our side's hang-up at
    25 s. The notice was not given to its end, and it is not played again: the call was
    recorded on, untold, to its end, and its recording destroyed then with the reason of
    that end ("our side hung up during the consent notice"). Nothing of such a call may be
    kept: its recording is destroyed at the silence clear, nothing more is taken when the
    call goes on, and the call and the audit trail say the line went silent during the
    notice."""
    speech = [{"at": 13.0, "text": "Hello? Are you still there? I wanted to ask about my order."}]
    data_dir, logged, entries, recording = _silence_cleared_during_notice(lab, synth, speech, 25.0)
    assert logged["end_reason"] == "local"
    # Nothing recorded once the call went on, nor as it ended.
    assert recording == [("CallEnded", False), ("CallResumed", False), ("CallEnded", False)]
    assert "warning_tones" not in logged["consent"] or logged["consent"]["warning_tones"] == 0
    _skipped_for_the_silence(lab, data_dir, logged, entries)


@pytest.mark.parametrize("source", ["uk-dv-hub", None])
def test_a_card_that_refuses_the_destruction_does_not_make_the_recording_a_kept_one(lab, monkeypatch, source):
    """The card refuses the transaction that decides the destruction (an I/O error), as the
    recorder closes the recording (on a Digital Voice hub's line, before the policy hears
    of the end) or as the policy asks for it. The recording was kept, finished, the call
    saying it was skipped. Now the decision waits in memory, the line's recording_failed
    alarm saying the recording is still on the card, and is tried again: once the card
    takes it (here at the stop), the recording is destroyed, audited saying why; after a
    restart the call log and the audit trail say the same."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_audit, open_sim_box
    from firmware.bus import Alarm

    from support.simbox import refusing_destructions

    call = {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"}
    extra = {"sources": {"1": source}} if source else {}
    doc = lab.scenario([call], config=lab.policy(consent=CONSENT), **extra)
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
    store = box.recorder.store
    card = refusing_destructions(monkeypatch, store)
    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    box.start()
    assert box.board.run()
    assert card["refused"] >= 2  # the decision, and at least one try again
    (failed,) = [a for a in alarms if a.kind == "recording_failed"]
    assert failed.line == 1 and failed.active and "still on the card" in failed.message
    (waiting,) = store.all()  # not finished: it is not a kept recording
    assert waiting["state"] == "recording" and os.path.exists(store.path_of(waiting["id"]))
    card["refusing"] = False
    box.stop()  # the card takes the decision: destroyed before the stop ends
    assert not os.path.exists(os.path.join(data_dir, "discards-pending.json"))

    restarted = open_sim_box(loads_scenario(json.dumps(lab.scenario([], config=doc["config"]))), data_dir)
    restarted.start()
    assert restarted.board.run()
    restarted.stop()
    why = "the caller hung up during the consent notice"
    (logged,) = lab.calls(data_dir)
    assert logged["consent"]["cut_short"] is True
    assert logged["policy_decision"] == "skip" and logged["policy_reason"].startswith(why + ", so")
    assert logged["recording"] is None and lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    (created,) = [e for e in entries if e.action == "recording_created"]
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [(e.target, e.details) for e in deleted] == [(created.target, {"why": why})]


@pytest.mark.parametrize("taken", ["retry", "stop"])
def test_the_alarm_of_a_destruction_the_card_refused_goes_off_once_it_is_done(lab, monkeypatch, taken):
    """The line's recording_failed alarm said the recording was still on the card and why it
    was to go. Once the card takes the decision (at a try again, 5 s on, or at the stop)
    and the recording is destroyed, its cause is gone: the alarm goes off, and the box's
    alarms on now no longer list it (the history keeps the occurrence, as every
    recording_failed, until someone acknowledges it)."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.bus import Alarm

    from support.simbox import refusing_destructions

    calls = [
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"},
        # Runs the scenario on well past the first try again.
        {"line": 2, "at": 1.0, "direction": "in", "rings": 1, "talk": 30.0},
    ]
    doc = lab.scenario(calls, config=lab.policy(consent=CONSENT))
    box = open_sim_box(loads_scenario(json.dumps(doc)), lab.data_dir(), synth=lab.synth)
    store = box.recorder.store
    card = refusing_destructions(monkeypatch, store)
    alarms = []

    def on_alarm(alarm):
        alarms.append(alarm)
        if taken == "retry" and alarm.kind == "recording_failed" and alarm.active:
            # The card takes the next try (5 s after the refusal).
            box.clock.call_later(1_000_000, lambda: card.update(refusing=False))

    box.bus.subscribe(Alarm, on_alarm)
    box.start()
    assert box.board.run()
    (waiting,) = [r for r in store.all() if r["state"] == "recording"] or [None]
    if taken == "retry":
        assert waiting is None  # decided during the run (its file destroyed by the worker)
    else:
        assert waiting is not None and waiting["file"]
        card["refusing"] = False
    box.stop()
    assert card["refused"] >= 1
    assert [(a.line, a.active) for a in alarms if a.kind == "recording_failed"] == [(1, True), (1, False)]
    assert [a for a in box.alarms.active() if a.kind == "recording_failed"] == []
    assert [r["call_id"] for r in lab.recordings(box.data_dir)] == [2]


def test_the_alarm_of_another_failure_on_the_line_stays_on_when_the_destruction_is_done(lab, monkeypatch):
    """While the decision to destroy the first call's recording waits, the line's next call
    fails to record (the card refuses its key copy): that failure's recording_failed is on
    for its own cause. The card then takes the decision at the stop and the first recording
    is destroyed: only its own alarm would go off, and another has replaced it, so the
    line's recording_failed stays on, saying what the second call's says."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.bus import Alarm

    from support.simbox import refusing_destructions

    calls = [
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"},
        {"line": 1, "at": 10.0, "direction": "in", "rings": 1, "talk": 12.0},
    ]
    doc = lab.scenario(calls, config=lab.policy(consent=CONSENT))
    box = open_sim_box(loads_scenario(json.dumps(doc)), lab.data_dir(), synth=lab.synth)
    store = box.recorder.store
    card = refusing_destructions(monkeypatch, store)
    real_write_key_copy = store.write_key_copy

    def key_copy(recording_id, wrapped, new=False):
        if store.get(recording_id)["call_id"] == 2:
            raise OSError(5, "Input/output error")
        return real_write_key_copy(recording_id, wrapped, new=new)

    monkeypatch.setattr(store, "write_key_copy", key_copy)
    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    box.start()
    assert box.board.run()
    card["refusing"] = False
    box.stop()
    failed = [a for a in alarms if a.kind == "recording_failed"]
    assert [(a.line, a.active, a.call_id) for a in failed] == [(1, True, 1), (1, True, 2)]
    (on,) = [a for a in box.alarms.active() if a.kind == "recording_failed"]
    assert on.call_id == 2 and "Input/output error" in on.message
    # The first call's recording is destroyed (the second's start left a row the card
    # refused to clean up too: the next start's, not this test's).
    assert 1 not in [r["call_id"] for r in lab.recordings(box.data_dir)]


def _refused_to_the_end_of_the_run(lab, monkeypatch, hold=False, note_refused=False):
    """A call that ended during its notice, the card refusing the decision to destroy its
    recording until the run is over (``hold``: the call placed on legal hold meanwhile;
    ``note_refused``: the card refuses the note of it too), then a second run: (data dir,
    the recording's row after the first, the note's path, the first run's recording_failed
    alarm)."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.bus import Alarm

    from support.simbox import refusing_destructions

    call = {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 1.0, "hangup": "remote"}
    doc = lab.scenario([call], config=lab.policy(consent=CONSENT))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
    card = refusing_destructions(monkeypatch, box.recorder.store)
    if note_refused:

        def refused(*args):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(box.recorder.store, "note_discard", refused)
    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    box.start()
    assert box.board.run()
    if hold:
        box.callmeta.set_legal_hold(1, True, "sam", box.clock.wall_us())
    box.stop()  # the card still refusing: the decision is not in the call log
    assert card["refused"] >= 2
    (waiting,) = lab.recordings(data_dir)
    assert waiting["state"] == "recording"
    noted = os.path.join(data_dir, "discards-pending.json")
    assert os.path.exists(noted) is not note_refused
    (failed,) = [a for a in alarms if a.kind == "recording_failed"]
    restarted = open_sim_box(loads_scenario(json.dumps(lab.scenario([], config=doc["config"]))), data_dir)
    restarted.start()
    assert restarted.board.run()
    restarted.stop()
    return data_dir, waiting, noted, failed


def test_a_destruction_the_card_refused_to_the_end_of_the_run_is_done_by_the_next_start(lab, monkeypatch):
    """The card refuses the decision to destroy the recording of a call that ended during
    its notice until the box's run is over (it stops, or dies, before the card takes it).
    The decision was in memory only: the next start made the recording a partial one,
    kept, while the call said it was skipped. It is noted beside the call log as it is
    refused, and the next start decides and does the destruction, audited saying why."""
    from firmware.box import open_audit

    data_dir, waiting, noted, failed = _refused_to_the_end_of_the_run(lab, monkeypatch)
    assert "at the stop, and at the next start" in failed.message
    why = "the caller hung up during the consent notice"
    (logged,) = lab.calls(data_dir)
    assert logged["policy_decision"] == "skip" and logged["policy_reason"].startswith(why + ", so")
    assert logged["recording"] is None and lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert "recording_recovered" not in [e.action for e in entries]
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [(e.target, e.details) for e in deleted] == [("recording:" + waiting["id"], {"why": why})]
    assert not os.path.exists(noted)


def test_a_noted_destruction_of_a_call_placed_on_legal_hold_is_not_done_by_the_next_start(lab, monkeypatch):
    """The call was placed on legal hold before the card took the decision: the next start,
    deciding the noted destruction, sees the hold and keeps the recording (partial, as any
    the last run could not finish), and the note goes."""
    from firmware.box import open_audit

    data_dir, waiting, noted, _failed = _refused_to_the_end_of_the_run(lab, monkeypatch, hold=True)
    (kept,) = lab.recordings(data_dir)
    assert kept["id"] == waiting["id"] and kept["state"] == "partial"
    assert os.path.exists(os.path.join(data_dir, "recordings", waiting["id"] + ".lkrec"))
    with open_audit(data_dir) as audit:
        assert "recording_deleted" not in [e.action for e in audit.entries(limit=-1)]
    assert not os.path.exists(noted)


def test_a_destruction_whose_note_the_card_refused_too_says_the_next_start_keeps_it(lab, monkeypatch):
    """The card refuses the note of the decision as well: nothing on it tells the next start,
    which keeps the recording as a partial one, and the alarm says so rather than promise
    the next start will destroy it."""
    data_dir, waiting, noted, failed = _refused_to_the_end_of_the_run(lab, monkeypatch, note_refused=True)
    assert "keeps it as a partial recording" in failed.message and "next start" not in failed.message
    (kept,) = lab.recordings(data_dir)
    assert kept["id"] == waiting["id"] and kept["state"] == "partial"
    assert not os.path.exists(noted)


def test_a_call_that_ends_during_its_announcement_is_kept_when_a_failed_notice_records_anyway(lab):
    """record_if_notice_failed: a notice not given to its end stops nothing, as for one
    not given at all; the call still says it was cut short."""
    call = dict(calls()[0], talk=1.0, hangup="remote")
    consent = dict(CONSENT, record_if_notice_failed=True)
    data_dir, (logged,), entries = _run_and_audit(lab, [call], consent)
    assert logged["consent"]["cut_short"] is True
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    assert len(lab.recordings(data_dir)) == 1
    assert "recording_deleted" not in [e.action for e in entries]


def test_a_call_that_ends_after_its_announcement_keeps_its_recording(lab):
    """The caller heard the whole notice, then hung up: the recording is kept."""
    call = dict(calls()[0], talk=9.0, hangup="remote")
    data_dir, (logged,), entries = _run_and_audit(lab, [call], CONSENT)
    assert logged["consent"]["given"] and "cut_short" not in logged["consent"]
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    assert len(lab.recordings(data_dir)) == 1
    actions = [e.action for e in entries]
    assert actions.count("recording_created") == 1 and "recording_deleted" not in actions


def test_a_number_still_being_dialled_as_recording_began_verifies_and_plays(lab, tmp_path):
    """The demo's call to 0808 157 0000 (`make run`, notices on): its recording began
    with ten digits dialled, the call log got the eleventh, and the recording failed
    verify and would not play ("damaged") for the difference."""
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": "08081570000", "mode": "dtmf", "on_ms": 90, "off_ms": 90},
        "talk": 20.0,
        "polarity_on_answer": True,
        "speech": [{"at": 1.0, "text": "Thank you for calling."}],
    }
    data_dir, (logged,) = lab.sim(lab.scenario([call], config=lab.policy(consent=CONSENT)))
    assert logged["number"] == "08081570000" and logged["recording"] == "complete"
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    status, out, err = lab.cli("verify", "--data-dir", data_dir, "--password-file", pw)
    assert status == 0, out + err
    status, _, err = lab.export(data_dir, logged["id"], tmp_path / "call.wav", pw)
    assert status == 0, err


def test_the_announcement_is_in_the_recording_at_the_answer(noticed):
    lab, data_dir, log = noticed
    call = log[1]
    samples, t0 = lab.decode(data_dir, call["id"])
    (name,) = [n for n in os.listdir(os.path.join(data_dir, "announcements")) if n.startswith("tts-")]
    with open(os.path.join(data_dir, "announcements", name), "rb") as f:
        announcement = validate_announcement_wav(f.read())
    lag = _best_lag(samples, announcement)
    found_us = t0 + lag * 125
    assert abs(found_us - lab.wall_us(call["consent"]["at"])) <= 2_000
    assert found_us - lab.wall_us(call["answered_at"]) < 60_000
    heard = samples[lag : lag + len(announcement)]
    assert _correlation(heard, announcement) > 0.8
    from firmware.policy.announcement import active_level_dbm0

    assert active_level_dbm0(heard) == pytest.approx(-16, abs=2)  # its configured level


@pytest.mark.parametrize("line, beeps", [(1, (15, 30, 45)), (2, (15, 30))])
def test_warning_tones_every_15_s_at_minus_13_dbm0(noticed, line, beeps):
    lab, data_dir, log = noticed
    call = log[line]
    samples, t0 = lab.decode(data_dir, call["id"])
    answered = lab.wall_us(call["answered_at"])
    origin = answered
    if line == 2:
        # Answered by the dial timeout: the beeps count from the far end's "Hello?" 4.5 s
        # later (the DSP dates its onset to a few tens of ms), not from the silence before.
        after = lab.wall_us(call["consent"]["at"]) + 1_000_000  # past the notice's own beep
        first = lab.tone_times(samples[(after - t0) * 8 // 1000 :], 1400)[0]
        origin = after + int(first * 1e6) - 15_000_000
        assert 4_400_000 <= origin - answered < 5_100_000
    for k in beeps:
        beep = lab.at(samples, t0, origin + k * 1_000_000 + 20_000, 0.45)
        assert lab.tone_level_dbm0(beep, 1400) == pytest.approx(-13, abs=2), (line, k)
        # Not before it, not after it, nor half-way to the next.
        for off_s in (-0.5, 0.55, 7.5):
            quiet = lab.at(samples, t0, origin + int((k + off_s) * 1e6), 0.4)
            if len(quiet) < 3200:
                continue  # past the end of the call
            assert lab.tone_level_dbm0(quiet, 1400) < -45, (line, k, off_s)
    # Where each burst of 1400 Hz begins, after the notice: exactly on the 15 s grid.
    after = lab.wall_us(call["consent"]["at"]) + 8_000_000 if line == 1 else origin + 7_000_000
    offset_s = (after - t0) / 1e6
    starts = lab.tone_times(samples[int(offset_s * 8000) :], 1400)
    expected = [(origin + k * 1_000_000 - after) / 1e6 for k in beeps]
    assert len(starts) == len(expected) and np.allclose(starts, expected, atol=0.04), starts


def test_the_outbound_beep_is_in_the_recording(noticed):
    lab, data_dir, log = noticed
    call = log[2]
    samples, t0 = lab.decode(data_dir, call["id"])
    beep = lab.at(samples, t0, lab.wall_us(call["consent"]["at"]) + 20_000, 0.45)
    assert lab.tone_level_dbm0(beep, 1400) == pytest.approx(-13, abs=2)


@pytest.mark.parametrize("record_anyway", [False, True])
def test_a_missing_announcement_is_marked_and_stops_the_recording(lab, record_anyway):
    consent = dict(CONSENT, announcement={"file": "welcome.wav"}, record_if_notice_failed=record_anyway)
    data_dir, log = lab.sim(lab.scenario(calls()[:1], config=lab.policy(consent=consent)))
    (call,) = log
    assert call["consent"]["given"] is False
    assert "welcome.wav cannot be read" in call["consent"]["error"]
    if record_anyway:
        assert call["policy_decision"] == "record" and call["recording"] == "complete"
    else:
        assert call["policy_decision"] == "skip"
        assert call["policy_reason"].startswith("the consent notice could not be given (")
        assert call["recording"] is None and lab.recordings(data_dir) == []
        assert os.listdir(os.path.join(data_dir, "recordings")) == []


def test_an_announcement_that_cannot_be_played_is_an_alarm_before_any_call(lab, synth):
    """consent_notice_failed came only after a call had ended untold: nothing was mailed
    while every caller to come would hear nothing. The box raises announcement_unplayable as
    it starts, saying why, and clears it once a change of configuration finds it playable."""
    from board.sim.scenario import loads_scenario
    from firmware import words
    from firmware.box import open_sim_box
    from firmware.policy.announcement import store_announcement

    consent = dict(CONSENT, announcement={"file": "welcome.wav"})
    doc = lab.scenario([], config=lab.policy(consent=consent))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)

    def unplayable():
        return [
            (a["message"], a["cleared_us"] is None)
            for a in box.alarm_log.history(lines=[])
            if a["kind"] == "announcement_unplayable"
        ]

    box.start()
    try:
        ((message, still_open),) = unplayable()
        assert "welcome.wav cannot be read" in message and still_open
        assert words.say("alarm", "announcement_unplayable").startswith("The announcement cannot be played")
        # Uploaded after all: the configuration applied again (as a change does) clears it.
        store_announcement(
            data_dir, "welcome.wav", wav_bytes(synth.say("Calls are recorded.", voice="en-gb"))
        )
        box.apply_config(box.config)
        assert unplayable() == [(message, False)]
        # A notice that needs no announcement needs no alarm either: none raised for a
        # file gone while no notice plays it.
        os.unlink(os.path.join(data_dir, "announcements", "welcome.wav"))

        def with_inbound(notice):
            consent = dataclasses.replace(box.config.policy.consent, inbound=notice)
            return box.config.replace(policy=dataclasses.replace(box.config.policy, consent=consent))

        box.apply_config(with_inbound("tone"))
        assert unplayable() == [(message, False)]
        box.apply_config(with_inbound("announcement"))
        assert sorted(still for _, still in unplayable()) == [False, True]  # raised anew
    finally:
        box.stop()


def test_a_recorder_that_cannot_start_espeak_starts_and_says_so(lab, synth, monkeypatch):
    """espeak-ng not started as the recorder makes the spoken announcement (no memory to
    fork it): the OSError stopped the recorder's start, so no line was recorded and no
    alarm said why. It starts, and announcement_unplayable says why."""
    import errno

    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.policy.announcement import Announcements

    def no_memory(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(Announcements, "_espeak", no_memory)
    doc = lab.scenario([], config=lab.policy(consent=CONSENT))
    box = open_sim_box(loads_scenario(json.dumps(doc)), lab.data_dir(), synth=synth)
    box.start()
    try:
        found = [a for a in box.alarm_log.history(lines=[]) if a["kind"] == "announcement_unplayable"]
        assert [a["cleared_us"] for a in found] == [None]
        assert "Cannot allocate memory" in found[0]["message"]
    finally:
        box.stop()


def test_a_board_that_cannot_play_is_marked_and_records_nothing(lab, synth):
    """The outbound call was being held in memory from off-hook: nothing reaches the card."""
    import json

    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    doc = lab.scenario(calls(), config=lab.policy(consent=CONSENT))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)

    def broken(line, samples):
        raise OSError("the playback device is gone")

    box.board.play = broken
    box.start()
    assert box.board.run()
    box.stop()
    log = {c["line"]: c for c in lab.calls(data_dir)}
    for call in log.values():
        assert call["consent"] == {
            "notice": call["consent"]["notice"],
            "given": False,
            "error": "the playback device is gone",
        }
        assert call["policy_decision"] == "skip" and call["recording"] is None
    assert lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []


def test_an_uploaded_announcement_is_played(lab, synth):
    from firmware.policy.announcement import store_announcement

    words = synth.say("Calls to Hawthorne and Sons are recorded.", voice="en-gb")
    words = (words.astype(np.float64) * 0.5).astype(np.int16)
    data_dir = lab.data_dir()
    stored = store_announcement(data_dir, "hawthorne.wav", wav_bytes(words))
    consent = dict(CONSENT, announcement={"file": "hawthorne.wav"})
    data_dir, log = lab.sim(lab.scenario(calls()[:1], config=lab.policy(consent=consent)), data_dir)
    samples, t0 = lab.decode(data_dir, log[0]["id"])
    lag = _best_lag(samples, stored)
    assert abs(t0 + lag * 125 - lab.wall_us(log[0]["consent"]["at"])) <= 2_000
    assert _correlation(samples[lag : lag + len(stored)], stored) > 0.8


def _best_lag(x, y):
    """The offset in ``x`` where ``y`` fits best (FFT cross-correlation)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = 1 << int(np.ceil(np.log2(len(x) + len(y))))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)[: len(x) - len(y) + 1]
    return int(np.argmax(corr))


def _correlation(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)[: len(a)]
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


# The far end answers 10 s after the dialling, the line silent meanwhile (a mobile network's
# wait before it rings): the box takes the call as answered 4 s after the last digit.
LATE = {"digits": "07700900123", "answer_after": 10.0}
FAR_END_SIGNS = {
    "voice": {"speech": [{"at": 0.5, "text": "Hello, who is this?"}]},
    "reversal": {"polarity_on_answer": True},
    "key": {"keys": [{"at": 2.0, "digits": "1"}]},
}


@pytest.mark.parametrize("sign", sorted(FAR_END_SIGNS))
def test_a_far_end_answering_after_the_dial_timeout_hears_the_notice(lab, sign):
    """The announcement was played 4 s after the last digit, into the silence before
    the far end answered, and the call said it was given: the person called heard none
    of it. (A reversal at the real answer even ended the call, as the far end's clear.)"""
    from board.sim.scenario import loads_scenario
    from board.sim.timeline import compile_timeline

    call = dict({"line": 1, "at": 1.0, "direction": "out", "dial": LATE, "talk": 20.0}, **FAR_END_SIGNS[sign])
    consent = {"inbound": "off", "outbound": "announcement"}
    doc = lab.scenario([call], config=dict(lab.policy(consent=consent), audio_profile="pcm"))
    (truth,) = compile_timeline(loads_scenario(json.dumps(doc)), lab.synth).truth
    data_dir, (logged,) = lab.sim(doc)
    start_us = lab.wall_us("2026-03-02T09:00:00.000Z")
    answered = start_us + truth.answered_us
    assert logged["end_reason"] == "local" and logged["recording"] == "complete"
    assert logged["consent"]["given"] and "cut_short" not in logged["consent"]
    first_sign = answered + {"voice": 500_000, "reversal": 0, "key": 2_000_000}[sign]
    assert 0 <= lab.wall_us(logged["consent"]["at"]) - first_sign < 600_000
    # In the recording too: the announcement begins there, after the far end answered.
    samples, t0 = lab.decode(data_dir, logged["id"])
    (name,) = [n for n in os.listdir(os.path.join(data_dir, "announcements")) if n.startswith("tts-")]
    with open(os.path.join(data_dir, "announcements", name), "rb") as f:
        announcement = validate_announcement_wav(f.read())
    lag = _best_lag(samples, announcement)
    assert _correlation(samples[lag : lag + len(announcement)], announcement) > 0.8
    assert abs(t0 + lag * 125 - lab.wall_us(logged["consent"]["at"])) <= 2_000
    assert t0 + lag * 125 >= answered


def test_a_far_end_never_heard_after_the_dial_timeout_is_not_told_nor_recorded(lab):
    """Nothing on the line after the dialling: the notice went to nobody, yet the call
    said it was given and was recorded. Now it is not played and, as for any notice
    that cannot be given, the call is not recorded; nothing is wrong with the notice, so
    no alarm says it could not be given."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    call = {"line": 1, "at": 1.0, "direction": "out", "dial": LATE, "talk": 20.0}
    consent = {"inbound": "off", "outbound": "announcement"}
    data_dir = lab.data_dir()
    doc = lab.scenario([call], config=lab.policy(consent=consent))
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
    box.start()
    assert box.board.run()
    alarms = [a for a in box.alarm_log.history() if a["kind"] == "consent_notice_failed"]
    box.stop()
    (logged,) = lab.calls(data_dir)
    assert logged["consent"] == {
        "notice": "announcement",
        "given": False,
        "error": "nobody was heard on the line after the dialling: it was not played",
        "unheard": True,
    }
    assert logged["policy_decision"] == "skip" and logged["recording"] is None
    # The reason the call page and the calls CSV show says what happened, not as a fault.
    assert (
        logged["policy_reason"]
        == "nobody was heard on the line after dialling, so no consent notice was played"
    )
    assert lab.recordings(data_dir) == []
    assert alarms == []


def test_a_call_put_down_just_after_dialling_is_not_told_nor_recorded(lab):
    """Hung up 2 s after the last digit, before any sign of the far end: the box takes
    the dialling as ended there, and played the notice into the line as it went
    on-hook, saying it was given (the recording kept)."""
    call = {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "02079460000"}, "talk": 2.0}
    consent = {"inbound": "off", "outbound": "tone"}
    board_played = []
    data_dir = lab.data_dir()
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    box = open_sim_box(
        loads_scenario(json.dumps(lab.scenario([call], config=lab.policy(consent=consent)))),
        data_dir,
        synth=lab.synth,
    )
    play = box.board.play
    box.board.play = lambda line, samples: (board_played.append(line), play(line, samples))[1]
    box.start()
    assert box.board.run()
    box.stop()
    (logged,) = lab.calls(data_dir)
    assert board_played == []
    assert logged["consent"]["given"] is False and logged["recording"] is None
    assert logged["policy_decision"] == "skip" and lab.recordings(data_dir) == []


TONE_ONLY = {"inbound": "off", "outbound": "off", "warning_tone": {"enabled": True, "interval_s": 15}}


def _run_broken_board(lab, calls, consent):
    """Run ``calls`` on a box whose board cannot play: (data dir, alarms, audit entries)."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    doc = lab.scenario(calls, config=lab.policy(consent=consent))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)

    def broken(line, samples):
        raise OSError("the playback device is gone")

    box.board.play = broken
    box.start()
    assert box.board.run()
    alarms = [(a["kind"], a["line"], a["message"]) for a in box.alarm_log.history()]
    entries = box.audit.entries(limit=-1, newest_first=False)
    box.stop()
    return data_dir, alarms, entries


def test_a_warning_tone_that_cannot_be_played_raises_the_alarm(lab):
    """Callers told only by the beep every 15 s (no announcement): a board that could not
    play it recorded the call with nobody told, and no alarm said so (the call only kept
    ``warning_tone_error``)."""
    data_dir, alarms, _entries = _run_broken_board(lab, calls()[:1], TONE_ONLY)
    (logged,) = lab.calls(data_dir)
    assert logged["consent"]["warning_tone_error"] == "the playback device is gone"
    assert alarms == [
        ("consent_notice_failed", 1, "the warning tone could not be played: the playback device is gone")
    ]


@pytest.mark.parametrize("direction", ["in", "out"])
def test_a_call_whose_only_notice_the_beep_could_not_sound_is_not_recorded(lab, direction):
    """The beep is the notice on a box with no announcement: its first failing, nobody was
    told, yet the call went on being recorded to its end. As when an announcement cannot
    be given, it is not recorded: what was on the card since the answer (outbound: since
    off-hook) is destroyed, and the audit trail says why."""
    call = calls()[0] if direction == "in" else dict(calls()[1], line=1)
    data_dir, _alarms, entries = _run_broken_board(lab, [call], TONE_ONLY)
    (logged,) = lab.calls(data_dir)
    # When the first beep could not be played, which the call page's timeline shows: at the
    # answer (within the debounce and a capture period); outbound, once the far end is heard
    # (4.5 s after the answer the dial timeout dated, within the voice onset's half second).
    delay = lab.wall_us(logged["consent"].pop("warning_tone_failed_at")) - lab.wall_us(logged["answered_at"])
    assert 0 <= delay < 60_000 if direction == "in" else 4_500_000 <= delay < 5_100_000
    assert logged["consent"] == {
        "notice": "off",
        "given": False,
        "warning_tones": 0,
        "warning_tone_interval_s": 15,
        "warning_tone_error": "the playback device is gone",
    }
    assert logged["policy_decision"] == "skip" and logged["recording"] is None
    assert logged["policy_reason"] == (
        "the consent notice could not be given (the warning tone could not be played: "
        "the playback device is gone)"
    )
    assert lab.recordings(data_dir) == []
    assert os.listdir(os.path.join(data_dir, "recordings")) == []
    (created,) = [e for e in entries if e.action == "recording_created"]
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [(e.target, e.details) for e in deleted] == [
        (created.target, {"why": "the consent notice could not be given"})
    ]


def test_a_beep_that_fails_after_one_sounded_stops_nothing(lab, synth):
    """The caller heard the first beep, so was told: a later one failing is noted (and
    alarmed), and the recording goes on; so does it with record_if_notice_failed."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    doc = lab.scenario(calls()[:1], config=lab.policy(consent=TONE_ONLY))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    play, played = box.board.play, []

    def once(line, samples):
        if played:
            raise OSError("the playback device is gone")
        played.append(line)
        return play(line, samples)

    box.board.play = once
    box.start()
    assert box.board.run()
    box.stop()
    (logged,) = lab.calls(data_dir)
    assert logged["consent"]["warning_tones"] == 1
    assert logged["consent"]["warning_tone_error"] == "the playback device is gone"
    assert "warning_tone_failed_at" not in logged["consent"]  # the first sounded
    # What the call page says the caller heard: the tone's interval, and when the first beep
    # sounded: at the answer (within the debounce and a capture period), the tone being the
    # only notice, not 15 s after it.
    assert logged["consent"]["warning_tone_interval_s"] == 15
    first = lab.wall_us(logged["consent"]["warning_tone_first_at"]) - lab.wall_us(logged["answered_at"])
    assert 0 <= first < 60_000
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    consent = dict(TONE_ONLY, record_if_notice_failed=True)
    data_dir, _alarms, _entries = _run_broken_board(lab, calls()[:1], consent)
    (logged,) = lab.calls(data_dir)
    assert logged["consent"]["warning_tones"] == 0 and logged["consent"]["warning_tone_error"]
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"


def test_a_call_whose_only_notice_is_the_tone_hears_its_first_beep_at_the_answer(lab):
    """The first beep came one interval after the answer: a call shorter than 15 s on a box
    whose only notice is the warning tone was recorded with nobody told. It sounds at the
    answer, in the recording, then every 15 s."""
    call = dict(calls()[0], talk=10.0)
    data_dir, (logged,) = lab.sim(lab.scenario([call], config=lab.policy(consent=TONE_ONLY)))
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    assert logged["consent"]["warning_tones"] == 1
    first_us = lab.wall_us(logged["consent"]["warning_tone_first_at"])
    assert 0 <= first_us - lab.wall_us(logged["answered_at"]) < 60_000
    samples, t0 = lab.decode(data_dir, logged["id"])
    beep = lab.at(samples, t0, first_us + 20_000, 0.45)
    assert lab.tone_level_dbm0(beep, 1400) == pytest.approx(-13, abs=2)


def test_a_tone_only_call_recorded_on_demand_hears_a_beep_at_the_request(lab):
    """Asked for 4 s into a 12 s call on a box whose only notice is the tone: the first beep
    waited for the next beat of the answer's 15 s grid, after the call's end, so the call was
    recorded (from its start) with nobody told. It sounds at the request."""
    config = lab.policy(
        rules={"lines": [{"line": 1, "mode": "on_demand"}], "on_demand": {"from_start": True}},
        consent=TONE_ONLY,
    )
    call = dict(calls()[0], talk=12.0, press=[{"at": 4.0, "button": "record"}])
    data_dir, (logged,) = lab.sim(lab.scenario([call], lines=2, hat="lk-2lb", config=config))
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    assert logged["consent"]["warning_tones"] == 1
    first_s = (
        lab.wall_us(logged["consent"]["warning_tone_first_at"]) - lab.wall_us(logged["answered_at"])
    ) / 1e6
    assert 4.0 <= first_s < 4.2


def test_a_tone_only_call_recorded_on_demand_is_recorded_from_its_beep_not_its_start(lab):
    """Asked for 4 s into the call with from_start on a box whose only notice is the tone:
    the beep, the notice, sounded at the request, yet the recording reached back to the
    start of the call (pre-roll included), the 4 s before it said by people nobody had
    told. It begins at the request, and the call says so."""
    config = lab.policy(
        rules={"lines": [{"line": 1, "mode": "on_demand"}], "on_demand": {"from_start": True}},
        consent=TONE_ONLY,
    )
    call = dict(calls()[0], talk=12.0, press=[{"at": 4.0, "button": "record"}])
    data_dir, (logged,) = lab.sim(lab.scenario([call], lines=2, hat="lk-2lb", config=config))
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    assert logged["policy_reason"] == "recording asked for by button, from the request"
    _samples, t0 = lab.decode(data_dir, logged["id"])
    first_us = lab.wall_us(logged["consent"]["warning_tone_first_at"])
    request_us = lab.wall_us(logged["answered_at"]) + 4_000_000
    # From the press (a frame of the encoder's grid at most before it), not the call's start.
    assert request_us - 200_000 <= t0 <= first_us, (t0, request_us, first_us)


def test_an_announced_call_recorded_on_demand_is_still_recorded_from_its_start(lab):
    """The announcement at the answer told everyone: from_start keeps its word there."""
    config = lab.policy(
        rules={"lines": [{"line": 1, "mode": "on_demand"}], "on_demand": {"from_start": True}},
        consent=dict(TONE_ONLY, inbound="announcement"),
    )
    call = dict(calls()[0], talk=12.0, press=[{"at": 4.0, "button": "record"}])
    data_dir, (logged,) = lab.sim(lab.scenario([call], lines=2, hat="lk-2lb", config=config))
    assert logged["policy_reason"] == "recording asked for by button, from the start of the call"
    _samples, t0 = lab.decode(data_dir, logged["id"])
    assert t0 < lab.wall_us(logged["answered_at"])  # the pre-roll, before the answer


def _count_plays(board):
    """The lines ``board`` is asked to play into, from now on (a list that fills)."""
    played, play = [], board.play
    board.play = lambda line, samples: (played.append(line), play(line, samples))[1]
    return played


@pytest.mark.parametrize("mode", ["always", "by_rule"])
def test_a_tone_only_call_whose_far_end_is_never_heard_is_not_recorded(lab, mode):
    """The dial timeout assumed the answer and nothing of the far end was heard after it: the
    first beep, the call's only notice, waits for the far end, so it never sounded, yet the
    call was recorded to its end with nobody told. As for a notice nobody was there to
    hear, the call is not recorded (held in memory: nothing reaches the card) and no alarm
    says the tone failed; with record_if_notice_failed it is recorded, as it says."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    call = {"line": 1, "at": 1.0, "direction": "out", "dial": LATE, "talk": 20.0}
    for record_anyway in (False, True):
        consent = dict(TONE_ONLY, record_if_notice_failed=record_anyway)
        doc = lab.scenario([call], config=lab.policy(rules={"default_mode": mode}, consent=consent))
        data_dir = lab.data_dir()
        box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
        played = _count_plays(box.board)
        box.start()
        assert box.board.run()
        alarms = [a for a in box.alarm_log.history() if a["kind"] == "consent_notice_failed"]
        actions = [e.action for e in box.audit.entries(limit=-1, newest_first=False)]
        box.stop()
        (logged,) = lab.calls(data_dir)
        assert played == [] and alarms == []
        assert logged["consent"] == {
            "notice": "off",
            "given": False,
            "error": "nobody was heard on the line after the dialling: it was not played",
            "unheard": True,
        }
        if record_anyway:
            assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
            continue
        assert logged["policy_decision"] == "skip" and logged["recording"] is None
        assert logged["policy_reason"] == (
            "nobody was heard on the line after dialling, so no consent notice was played"
        )
        assert lab.recordings(data_dir) == []
        assert "recording_created" not in actions and "recording_deleted" not in actions


@pytest.mark.parametrize("mode", ["always", "by_rule"])
def test_a_far_end_never_heard_is_recorded_when_a_failed_notice_records_anyway(lab, mode):
    """record_if_notice_failed: a notice not given does not stop the recording, so a call
    nobody was heard on after the dial timeout is recorded too, as it says. By rule its
    recording was held from off-hook until the notice, and dropped at the call's end
    while the call said it was recorded."""
    call = {"line": 1, "at": 1.0, "direction": "out", "dial": LATE, "talk": 20.0}
    consent = {"inbound": "off", "outbound": "announcement", "record_if_notice_failed": True}
    config = lab.policy(rules={"default_mode": mode}, consent=consent)
    data_dir, (logged,) = lab.sim(lab.scenario([call], config=config))
    assert logged["consent"]["given"] is False and logged["consent"]["unheard"] is True
    assert logged["policy_decision"] == "record"
    assert logged["recording"] == "complete" and len(lab.recordings(data_dir)) == 1


@pytest.mark.parametrize("notice", ["off", "tone"])
def test_the_warning_tone_of_an_answer_the_dial_timeout_assumed_counts_from_the_far_end(lab, notice):
    """The far end answers 20 s after the dialling, the line silent before: the box takes
    the call as answered 4 s after the last digit. The warning tone counted from there, so
    its first beep sounded into the silence before anyone answered (with no other notice,
    the only one), and the next ones were off the interval from the far end's "Hello".
    They count from the far end's first sign: 15 s, 30 s after its voice; with no other
    notice the tone is the notice, so its first beep sounds at that sign too."""
    from board.sim.scenario import loads_scenario
    from board.sim.timeline import compile_timeline

    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": "07700900123", "answer_after": 20.0},
        "talk": 40.0,
        "speech": [{"at": 0.5, "text": "Hello, who is this?"}],
    }
    consent = {"inbound": "off", "outbound": notice, "warning_tone": {"enabled": True, "interval_s": 15}}
    doc = lab.scenario([call], config=dict(lab.policy(consent=consent), audio_profile="pcm"))
    (truth,) = compile_timeline(loads_scenario(json.dumps(doc)), lab.synth).truth
    data_dir, (logged,) = lab.sim(doc)
    assert logged["policy_decision"] == "record" and logged["recording"] == "complete"
    assert logged["consent"]["warning_tones"] == (3 if notice == "off" else 2)
    answered = lab.wall_us("2026-03-02T09:00:00.000Z") + truth.answered_us
    assert lab.wall_us(logged["answered_at"]) < answered - 15_000_000  # the dial timeout's
    samples, t0 = lab.decode(data_dir, logged["id"])
    # From 3 s after the real answer (past its "Hello" and the notice's beep), in seconds
    # from the answer.
    skip = (answered - t0) / 1e6 + 3.0
    starts = [s + 3.0 for s in lab.tone_times(samples[int(skip * 8000) :], 1400)]
    # From the voice 0.5 s after the real answer (the DSP's onset dated to a few tens of
    # ms, within half a second), not from the assumed answer: 10 s and 25 s in.
    voice = 0.5
    assert len(starts) == 2, starts
    assert voice + 14.9 <= starts[0] < voice + 15.6, starts
    assert starts[1] - starts[0] == pytest.approx(15, abs=0.04)
    if notice == "off":
        # The first beep, the call's only notice, as soon as the voice is heard (the next
        # ones on the grid from the voice, above).
        first_us = lab.wall_us(logged["consent"]["warning_tone_first_at"])
        assert voice <= (first_us - answered) / 1e6 < voice + 0.6
        beep = lab.at(samples, t0, first_us + 20_000, 0.45)
        assert lab.tone_level_dbm0(beep, 1400) == pytest.approx(-13, abs=2)


def test_a_pause_before_the_far_end_was_heard_is_not_taken_for_nobody_there(lab):
    """The dial timeout assumes the answer; the far end answers 10 s after the dialling and
    staff press the pause button then, before its first word, and the pause lasts to the
    end. The paused line is silent to the box too, so nothing confirmed the far end: the
    call said nobody was heard ("unheard"), though they were there and spoke. It says the
    pause kept the box from hearing them, and still gives no notice and records nothing."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": LATE,
        "talk": 20.0,
        "speech": [{"at": 2.0, "text": "Hello, who is this?"}],
        "press": [{"at": 0.0, "button": "pause"}],
    }
    consent = {"inbound": "off", "outbound": "announcement"}
    doc = lab.scenario([call], lines=2, hat="lk-2lb", config=lab.policy(consent=consent))
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=lab.synth)
    box.start()
    assert box.board.run()
    alarms = [a for a in box.alarm_log.history() if a["kind"] == "consent_notice_failed"]
    box.stop()
    (logged,) = lab.calls(data_dir)
    (span,) = logged["pause_spans"]
    assert span["by"] == "button" and span["ended_by"] == "call_end"
    assert logged["consent"] == {
        "notice": "announcement",
        "given": False,
        "error": "the line was paused (card details) before the far end was heard, and the box "
        "hears nothing of a paused line: it was not played",
        "paused": True,
    }
    assert logged["policy_decision"] == "skip" and logged["recording"] is None
    assert logged["policy_reason"] == (
        "the line was paused (card details) before the far end was heard, so no consent notice was played"
    )
    assert lab.recordings(data_dir) == []
    assert alarms == []


def test_an_announcement_a_caller_hung_up_on_stops_with_the_call(lab):
    """Caller 1 hangs up 1 s into the 7 s announcement; caller 2 rings the same line 2 s
    later. The rest of caller 1's announcement stops with their call: it played on into the
    idle line and into caller 2's call (on a real board, queued ahead of caller 2's own
    notice), and was in caller 2's recording, from its pre-roll on."""
    first = dict(calls()[0], talk=1.0, hangup="remote", hangup_delay=0.3)
    second = {"line": 1, "at": 6.0, "direction": "in", "rings": 1, "talk": 10.0}
    data_dir, (one, two) = lab.sim(lab.scenario([first, second], config=lab.policy(consent=CONSENT)))
    assert one["consent"]["cut_short"] is True
    told = lab.wall_us(one["consent"]["at"]) + int(one["consent"]["duration_s"] * 1e6)
    answered = lab.wall_us(two["answered_at"])
    assert answered < told  # caller 1's announcement would still be playing
    samples, started = lab.decode(data_dir, two["id"])
    assert started < answered - 800_000  # the pre-roll: the line before caller 2's notice
    assert lab.level_dbm0(lab.at(samples, started, started, 0.8)) < -50
