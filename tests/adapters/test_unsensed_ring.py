"""Calls on a line whose ringing the HAT cannot sense (a hub's or ATA's port ringing
below the HAT's range, fault ``ring_not_sensed``), played through the whole box.

The caller ID still comes, seconds before anyone picks up: the call is the caller
ID's, answered or missed, not an outbound call with no number. A caller-ID burst
that no call follows (the caller gave up, a port that sends caller ID to every
phone) is found out by the dial tone heard after the off-hook: that call is an
outbound one.
"""

import json

from board.adapter import load_adapter
from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.bus import LineFault

START = "2026-03-02T09:00:00Z"
S = 1_000_000


def weak_line(tmp_path):
    """uk-dv-hub with its ringing at 18 V rms: below the LK-4L's 25 V."""
    doc = json.loads((load_adapter.__globals__["adapters_dir"]() / "uk-dv-hub.json").read_text())
    doc["ring"]["vrms"] = 18
    path = tmp_path / "weak-ring.json"
    path.write_text(json.dumps(doc))
    return str(path)


def run(tmp_path, calls, synth=None):
    spec = {
        "start": START,
        "country": "uk",
        "lines": 1,
        "sources": {"1": weak_line(tmp_path)},
        "calls": calls,
    }
    box = open_sim_box(loads_scenario(json.dumps(spec)), str(tmp_path / "data"), synth=synth)
    faults = []
    box.bus.subscribe(LineFault, faults.append)
    box.start()
    assert box.board.run()
    calls = box.calllog.calls()
    box.stop()
    return calls, [(f.kind, f.active) for f in faults]


def row(call):
    return (call["direction"], call["number"], call["answered"], call["end_reason"])


def secs(stamp):
    """Seconds from START of a call log time."""
    return float(stamp[17:23]) + 60 * int(stamp[14:16])


def test_an_answered_call_whose_ring_was_not_sensed_is_inbound_with_its_number(tmp_path):
    # Off-hook about 8.7 s after the caller ID: past the 5 s wait for a ring.
    answered = {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 3}
    calls, faults = run(tmp_path, [dict(answered, talk=6.0)])
    assert faults == [("ring_not_sensed", True)]
    assert [row(c) for c in calls] == [("in", "01632960123", True, "local")]
    (call,) = calls
    assert abs(secs(call["started_at"]) - 1.0) <= 0.05  # the reversal before the caller ID
    assert abs(secs(call["answered_at"]) - 9.7) <= 0.05


def test_a_missed_call_whose_ring_was_not_sensed_is_logged(tmp_path):
    missed = {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "02079460000"}}
    # A later call keeps the day going past the minute the box waits for an off-hook.
    later = {"line": 1, "at": 70.0, "direction": "in", "caller_id": {"number": "01632960123"}}
    calls, faults = run(tmp_path, [dict(missed, rings=4, answer=False), later])
    assert faults == [("ring_not_sensed", True)]
    assert [row(c) for c in calls] == [
        ("in", "02079460000", False, "missed"),
        ("in", "01632960123", True, "local"),
    ]
    # How long it rang is not known: the call ends where it began.
    assert calls[0]["ended_at"] == calls[0]["started_at"]


def test_a_second_caller_id_is_a_second_call(tmp_path):
    calls, _ = run(
        tmp_path,
        [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "caller_id": {"number": "02079460000"},
                "answer": False,
            },
            {"line": 1, "at": 20.0, "direction": "in", "caller_id": {"number": "01632960123"}, "talk": 4.0},
        ],
    )
    assert [row(c) for c in calls] == [
        ("in", "02079460000", False, "missed"),
        ("in", "01632960123", True, "local"),
    ]


def test_dial_tone_after_a_caller_id_without_a_call_makes_the_call_outbound(tmp_path):
    """A caller ID, then our side picks up to call out: the line gives dial tone, so no
    caller was there. The caller ID's call is missed, the call is the outbound one."""
    calls, _ = run(
        tmp_path,
        [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "caller_id": {"number": "02079460000"},
                "rings": 1,
                "answer": False,
            },
            {"line": 1, "at": 12.0, "direction": "out", "dial": {"digits": "01314960321"}, "talk": 5.0},
        ],
    )
    assert [row(c) for c in calls] == [
        ("in", "02079460000", False, "missed"),
        ("out", "01314960321", True, "local"),
    ]
    assert abs(secs(calls[1]["started_at"]) - 12.0) <= 0.05
