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
from firmware.bus import CallAnswered, CallEnded

DIALLED = "01632960302"
LONG_GAP_NOTICE_S = 2.0 * 1.15 + 0.1 + 0.1
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
    # The far end speaking in a gap, the caller silent: dated at the voice, noticed once
    # the next burst is overdue (the line cannot tell this voice from the caller's before).
    "voice answer in the short gap, caller silent": {
        "answer_after": 0.3 + 0.45,
        "caller": [],
        "speech": [{"at": 0.0, "text": "Hello, accounts, how can I help?"}],
    },
    "voice answer early in the long gap, caller silent": {
        "answer_after": 0.3 + 1.1,
        "caller": [],
        "speech": [{"at": 0.0, "text": "Hello, accounts, how can I help?"}],
    },
    "voice answer late in the long gap, caller silent": {
        "answer_after": 0.3 + 2.6,
        "caller": [],
        "speech": [{"at": 0.0, "text": "Hello, accounts, how can I help?"}],
    },
    "voice menu early in the long gap, keyed at once": {
        "answer_after": 0.3 + 1.1,
        "caller": [],
        "speech": [{"at": 0.0, "text": "Welcome. Press one for payments."}],
        "keys": [{"at": 0.6, "digits": "1"}],
    },
    "silent answer, then a key": {
        "answer_after": 4.6,
        "caller": [ASIDE],
        "keys": [{"at": 0.5, "digits": "1"}],
    },
}


def _call(line, case, at_s):
    call = {
        "line": line,
        "at": at_s,
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
    return None if t_us is None or start_us is None else round((t_us - start_us) / 1e6, 3)


@pytest.fixture(scope="module")
def calls(tmp_path_factory, synth):
    doc = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 4,
        "calls": [_call(1 + i % 4, case, 1.0 + 20.0 * (i // 4)) for i, case in enumerate(CASES.values())],
    }
    host = open_sim_host(
        loads_scenario(json.dumps(doc)), str(tmp_path_factory.mktemp("talk")), synth=synth, restart=False
    )
    box = host.box
    ended, noticed = [], {}  # calls; (line, started_us) -> box clock time of CallAnswered
    box.bus.subscribe(CallEnded, lambda ev: ended.append(ev.call))
    box.bus.subscribe(
        CallAnswered, lambda ev: noticed.setdefault((ev.call.line, ev.call.started_us), box.clock.now_us())
    )
    truth = host.board.timeline.truth
    host.start()
    try:
        assert host.board.run()
    finally:
        host.stop()
    out = {}
    for name, t in zip(CASES, truth, strict=True):
        call = min((c for c in ended if c.line == t.line), key=lambda c: abs(c.started_us - t.started_us))
        real, logged = t.answered_us, call.answered_us
        when = noticed.get((call.line, call.started_us))
        out[name] = (t, call, when)
        print(
            "%-50s real answer %s s, logged %s s after the call began, noticed %s s after the answer (%s)"
            % (name, _s(real, t.started_us), _s(logged, call.started_us), _s(when, real), call.notes)
        )
    return out


def test_talk_during_ringback_with_no_answer_is_not_answered(calls):
    truth, call, when = calls["nobody answers"]
    assert truth.answered_us is None
    assert call.answered_us is None and when is None, call.notes
    assert call.end_reason == "abandoned"
    assert call.number == DIALLED


@pytest.mark.parametrize("name", [n for n in CASES if n != "nobody answers"])
def test_talk_during_ringback_then_an_answer_is_dated_at_the_answer(calls, name):
    truth, call, _when = calls[name]
    assert call.answered_us is not None, call.notes
    error_s = (call.answered_us - truth.answered_us) / 1e6
    assert abs(error_s) <= 1.0, (error_s, call.notes)
    assert call.number == DIALLED


@pytest.mark.parametrize("name", [n for n in CASES if n != "nobody answers"])
def test_noticed_by_the_next_burst_or_the_first_key(calls, name):
    """A held voice waits at most for the next burst to be overdue (UK long gap: 2.0 s x
    1.15 + 0.1 s after the last burst, and the DSP's block); a key confirms it at once."""
    truth, _call, when = calls[name]
    delay_s = (when - truth.answered_us) / 1e6
    assert 0 <= delay_s <= LONG_GAP_NOTICE_S, delay_s
    keys = CASES[name].get("keys")
    if keys:
        assert delay_s <= keys[0]["at"] + 0.25, delay_s
