"""An outbound call where the caller talks while the far end is being rung.

The HAT's capture channel carries both directions, so the caller's own voice
during ringback ("come on, pick up", a word to a colleague) reaches the line's
voice-onset detector exactly as the far end's "hello" would. The exchange
keeps sending ringback until the far end answers, so a voice heard while the
ringback goes on in its cadence is not the answer: through the simulated board
and the whole box (the caller's utterances are ``dial.caller_speech``), each
call here:

* nobody answers and the caller hangs up: not answered (no answer time, no
  talk time), ended ``abandoned``;
* the far end answers later (in a burst or in the long gap, speaking or
  silent with a key): answered within the issue's 1 s of the real answer,
  never before it by more than the ringback gap the line cannot see into,
  and the number is exactly what was dialled.
"""

import json

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_host
from firmware.bus import CallEnded

DIALLED = "01632960302"
PICK_UP = {"at": 1.0, "text": "Come on, pick up the phone."}  # 0.7 s into ringback: the 2nd burst
ASIDE = {"at": 1.5, "text": "It is still ringing, give me a minute."}  # in the long gap
LATER = {"at": 5.0, "text": "Nobody there yet, I will wait a little longer."}  # long gap, 2nd cycle
# Ringback starts 0.3 s after the last digit; UK cadence 0.4 on, 0.2 off, 0.4 on, 2.0 off.
CASES = {
    "nobody answers": {"answer": False, "answer_after": 9.0, "caller": [PICK_UP, LATER]},
    "voice answer cutting a burst": {
        "answer_after": 7.0,
        "caller": [PICK_UP, LATER],
        "speech": [{"at": 0.2, "text": "Hello, accounts, how can I help?"}],
    },
    "voice answer in the long gap": {
        "answer_after": 4.6,
        "caller": [ASIDE],
        "speech": [{"at": 0.3, "text": "Hello, accounts, how can I help?"}],
    },
    "silent answer, then a key": {
        "answer_after": 4.6,
        "caller": [ASIDE],
        "keys": [{"at": 0.5, "digits": "1"}],
    },
}


def _call(line, case):
    call = {
        "line": line,
        "at": 1.0,
        "direction": "out",
        "dial": {
            "digits": DIALLED,
            "delay": 1.0,
            "answer_after": case["answer_after"],
            "ringback": True,
            "caller_speech": case["caller"],
        },
    }
    if case.get("answer", True):
        call.update({"talk": 8.0, "speech": case.get("speech", []), "keys": case.get("keys", [])})
    else:
        call["answer"] = False
    return call


def _s(t_us, start_us):
    return None if t_us is None else round((t_us - start_us) / 1e6, 3)


@pytest.fixture(scope="module")
def calls(tmp_path_factory, synth):
    doc = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 4,
        "calls": [_call(1 + i, case) for i, case in enumerate(CASES.values())],
    }
    host = open_sim_host(
        loads_scenario(json.dumps(doc)), str(tmp_path_factory.mktemp("talk")), synth=synth, restart=False
    )
    ended = []
    host.box.bus.subscribe(CallEnded, lambda ev: ended.append(ev.call))
    truth = host.board.timeline.truth
    host.start()
    try:
        assert host.board.run()
    finally:
        host.stop()
    out = {}
    for name, t in zip(CASES, truth, strict=True):
        (call,) = [c for c in ended if c.line == t.line]
        out[name] = (t, call)
        real, logged = t.answered_us, call.answered_us
        print(
            "%-32s real answer %s s, logged %s s after the call began (%s)"
            % (name, _s(real, t.started_us), _s(logged, call.started_us), call.notes)
        )
    return out


def test_talk_during_ringback_with_no_answer_is_not_answered(calls):
    truth, call = calls["nobody answers"]
    assert truth.answered_us is None
    assert call.answered_us is None, call.notes
    assert call.end_reason == "abandoned"
    assert call.number == DIALLED


@pytest.mark.parametrize("name", [n for n in CASES if n != "nobody answers"])
def test_talk_during_ringback_then_an_answer_is_dated_at_the_answer(calls, name):
    truth, call = calls[name]
    assert call.answered_us is not None, call.notes
    error_s = (call.answered_us - truth.answered_us) / 1e6
    assert abs(error_s) <= 1.0, (error_s, call.notes)
    assert call.number == DIALLED
