"""A line with voltage and no dial tone (its service cut by the provider, a Digital Voice
adapter that lost its network), played through the whole box: calls out on it hear
nothing, and after two in a row the ``line_no_dial_tone`` alarm is raised, cleared by the
next dial tone heard on the line. The line-fault alarm of a dead line stays quiet."""

import json

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.bus import CallEnded, LineFault
from telephony.errors import ScenarioError

START = "2026-03-02T09:00:00Z"


def out(at, **dial):
    return {"line": 1, "at": at, "direction": "out", "dial": dict({"digits": "01632960123"}, **dial)}


def dead(at):
    """Staff lift the handset, hear silence for 5 s and hang up."""
    return {"line": 1, "at": at, "direction": "out", "answer": False, "dial": {"dial_tone": False}}


def run(tmp_path, calls, **spec):
    doc = dict({"start": START, "country": "uk", "lines": 1, "calls": calls}, **spec)
    box = open_sim_box(loads_scenario(json.dumps(doc)), str(tmp_path / "data"))
    faults, ended = [], []
    box.bus.subscribe(LineFault, faults.append)
    box.bus.subscribe(CallEnded, ended.append)
    box.start()
    assert box.board.run()
    logged = box.calllog.calls()
    alarms = [(a["kind"], a["line"], a["cleared_us"] is not None) for a in box.alarm_log.history()]
    box.stop()
    # The supervisor's notes on each call (the call log keeps none of them).
    noted = ["no_dial_tone" in e.call.notes for e in ended]
    return logged, [(f.kind, f.active) for f in faults], alarms, noted


def row(call):
    return (call["direction"], call["number"], call["answered"], call["end_reason"])


def test_two_calls_out_with_no_dial_tone_raise_the_alarm_and_a_dial_tone_clears_it(tmp_path):
    calls, faults, alarms, noted = run(tmp_path, [out(1.0), dead(30.0), dead(45.0), out(60.0)])
    assert faults == [("line_no_dial_tone", True), ("line_no_dial_tone", False)]
    assert [a for a in alarms if a[0] == "line_no_dial_tone"] == [("line_no_dial_tone", 1, True)]
    assert [row(c) for c in calls] == [
        ("out", "01632960123", True, "local"),
        ("out", None, False, "abandoned"),
        ("out", None, False, "abandoned"),
        ("out", "01632960123", True, "local"),
    ]
    assert noted == [False, True, True, False]


def test_one_call_with_no_dial_tone_raises_nothing(tmp_path):
    calls, faults, _, noted = run(tmp_path, [out(1.0), dead(30.0), out(45.0), dead(70.0)])
    assert faults == []
    assert noted == [False, True, False, True]


def test_calls_out_with_dial_tone_raise_nothing(tmp_path):
    calls, faults, alarms, noted = run(tmp_path, [out(1.0), out(30.0, mode="pulse"), out(60.0)])
    assert faults == []
    assert [a for a in alarms if a[0] == "line_no_dial_tone"] == []
    assert noted == [False, False, False]
    assert len(calls) == 3


def test_a_line_whose_dial_tone_the_box_never_heard_raises_nothing(tmp_path):
    """Silent from the start: the box cannot tell a dead line from a dial tone it does
    not know (an adapter left on another country's tones)."""
    calls, faults, _, noted = run(tmp_path, [dead(1.0), dead(20.0), dead(40.0)])
    assert faults == []
    assert noted == [True, True, True]


@pytest.mark.parametrize(
    "dial, answer, said",
    [
        ({"dial_tone": "no"}, False, "dial_tone"),
        ({"dial_tone": False}, True, 'needs "answer": false'),
        ({"dial_tone": False, "digits": "123"}, False, "dials nothing"),
    ],
)
def test_a_malformed_dial_tone_is_refused_naming_the_field(dial, answer, said):
    call = {"line": 1, "at": 1.0, "direction": "out", "answer": answer, "dial": dial}
    doc = {"start": START, "country": "uk", "lines": 1, "calls": [call]}
    with pytest.raises(ScenarioError) as refused:
        loads_scenario(json.dumps(doc))
    assert "calls[0].dial" in str(refused.value)
    assert said in str(refused.value)


@pytest.mark.parametrize("adapter", ["uk-dv-hub", "us-ata-bell202"])
def test_a_hub_or_ata_that_lost_its_network_raises_it_too(tmp_path, adapter):
    """A Digital Voice hub, or an ATA on US tones (350 + 440 Hz, which the UK's 350 + 450 Hz detector takes):
    the box knows the dial tone it plays, and hears it go."""
    calls, faults, _, noted = run(
        tmp_path, [out(1.0), dead(30.0), dead(45.0), out(60.0)], sources={"1": adapter}
    )
    assert faults == [("line_no_dial_tone", True), ("line_no_dial_tone", False)]
    assert noted == [False, True, True, False]
