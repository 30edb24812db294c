"""Issue 20 acceptance: an outbound call is answered when the evidence says so.

For each kind of evidence the simulated far end gives - voice (a voice menu
answering 0.5 s after the last digit, a person after ringback), a polarity
reversal after ringback with nobody speaking, voice after pulse dialling -
the call log's answer time is within 1 s of the real answer, the number is
exactly what was dialled, and keys pressed after the answer (a menu choice)
are not in it.
"""

import json

import pytest

DIALLED = "01632960302"

CASES = {
    "voice_menu_0.5s": {
        "dial": {"digits": DIALLED, "answer_after": 0.5},
        "speech": [{"at": 0.0, "text": "Thank you for calling. Press one for sales, two for accounts."}],
        # 1.7 s after the last digit: inside the 4 s dial timeout
        "keys": [{"at": 1.2, "digits": "2"}],
    },
    "ringback_then_voice": {
        "dial": {"digits": DIALLED, "answer_after": 7.0, "ringback": True},
        "speech": [{"at": 0.2, "text": "Hello, accounts, how can I help?"}],
        "keys": [{"at": 4.0, "digits": "3"}],
    },
    "ringback_then_reversal": {
        "dial": {"digits": DIALLED, "answer_after": 5.0, "ringback": True},
        "polarity_on_answer": True,
        "keys": [{"at": 2.0, "digits": "1"}],
    },
    "pulse_then_voice": {
        "dial": {"digits": "0163296", "mode": "pulse", "answer_after": 1.0},
        "speech": [{"at": 0.0, "text": "Good morning."}],
    },
}


@pytest.fixture(scope="module")
def answered(module_lab):
    from board.sim.scenario import loads_scenario
    from board.sim.timeline import compile_timeline

    lab = module_lab
    plan = []
    for i, case in enumerate(CASES.values()):
        call = {"line": 1 + i % 4, "at": 1.0, "direction": "out", "talk": 12.0}
        call.update(case)
        plan.append(call)
    doc = lab.scenario(plan)
    truth = compile_timeline(loads_scenario(json.dumps(doc)), lab.synth).truth
    _data_dir, log = lab.sim(doc)
    by_line = {c["line"]: c for c in log}
    start = lab.wall_us(lab.START.replace("Z", ".000Z"))
    return {
        name: (by_line[t.line], start + t.answered_us, plan[i])
        for i, (name, t) in enumerate(zip(CASES, truth, strict=False))
    }


@pytest.mark.parametrize("name", list(CASES))
def test_answered_within_a_second_of_the_far_end(answered, module_lab, name):
    call, answered_us, plan = answered[name]
    assert call["answered"], call
    error_s = (module_lab.wall_us(call["answered_at"]) - answered_us) / 1e6
    assert abs(error_s) <= 1.0, (name, error_s, call["answered_at"])
    assert call["number"] == plan["dial"]["digits"]
