"""Levels: hubs' and ATAs' lower ringing voltages and loop currents against what
the HAT's detectors sense (the HAT file's ``sense`` ranges), and the fault a line
shows when it sits outside them (issue 18)."""

import json

import pytest

from board.adapter import list_adapters, load_adapter
from board.hat import list_hats, load_hat, loads_hat
from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.bus import LineFault
from firmware.errors import HatError, ScenarioError


@pytest.mark.parametrize("hat", list_hats())
@pytest.mark.parametrize("profile", list_adapters())
def test_every_shipped_adapter_is_within_every_shipped_hat(hat, profile):
    adapter, sense = load_adapter(profile), load_hat(hat).sense
    assert sense.outside(adapter.ring.vrms, adapter.loop_ma, adapter.idle_v) == []


def test_an_exchange_line_is_within_the_hat_too():
    # ~75 V rms ringing, 20-70 mA loop, 48-50 V idle: an exchange line's usual levels
    sense = load_hat("lk-4l").sense
    assert sense.outside(75, 20, 50) == [] and sense.outside(75, 70, 48) == []


def test_a_bad_sense_range_is_named():
    doc = json.loads((load_hat.__globals__["hats_dir"]() / "lk-2lb.json").read_text())
    doc["sense"] = {"ring_vrms": [40, 30]}
    with pytest.raises(HatError) as err:
        loads_hat(json.dumps(doc))
    assert err.value.field == "sense.ring_vrms" and "lowest" in err.value.message


def weak(tmp_path, **changes):
    """A copy of a shipped profile with some levels changed, as a file."""
    doc = json.loads((load_adapter.__globals__["adapters_dir"]() / "uk-dv-hub.json").read_text())
    doc.update({k: v for k, v in changes.items() if k != "ring_vrms"})
    if "ring_vrms" in changes:
        doc["ring"]["vrms"] = changes["ring_vrms"]
    path = tmp_path / "weak.json"
    path.write_text(json.dumps(doc))
    return str(path)


def run(spec, data_dir, synth):
    box = open_sim_box(loads_scenario(json.dumps(spec)), str(data_dir), synth=synth)
    faults = []
    box.bus.subscribe(LineFault, faults.append)
    box.start()
    assert box.board.run()
    status = box.status.snapshot()
    box.stop()
    return faults, status


def test_ringing_too_weak_for_the_hat_raises_a_fault_then_clears(tmp_path, synth):
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 2,
        "sources": {"1": weak(tmp_path, ring_vrms=18)},
        "calls": [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "caller_id": {"number": "01632960123"},
                "rings": 2,
                "answer": False,
            }
        ],
    }
    faults, status = run(spec, tmp_path / "data", synth)
    assert [(f.line, f.kind, f.active) for f in faults] == [(1, "ring_not_sensed", True)]
    assert abs(faults[0].t_us - 1_000_000) <= 50_000
    assert status["lines"][0]["faults"] == ["ring_not_sensed"]


def test_an_idle_voltage_below_the_hat_shows_as_no_line_voltage(tmp_path, synth):
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "sources": {"1": weak(tmp_path, idle_v=15)},
        "calls": [],
    }
    faults, _ = run(spec, tmp_path / "data", synth)
    assert [(f.kind, f.active) for f in faults] == [("no_line_voltage", True)]


def test_a_ring_is_sensed_again_and_the_fault_clears(tmp_path, synth):
    """The fault clears at the next ring the HAT senses (e.g. the hub's ringing voltage raised)."""
    from firmware.bus import EventBus
    from firmware.calls.supervisor import Supervisor
    from firmware.clock import SimClock

    @__import__("dataclasses").dataclass
    class CallerId:
        t_us: int
        standard: str = "v23"
        number: str = "01632960123"

    clock, bus, faults = SimClock(), EventBus(strict=True), []
    bus.subscribe(LineFault, faults.append)
    sup = Supervisor(1, clock, bus)
    clock.call_at(1_000_000, lambda: sup.on_dsp_event(1, CallerId(1_000_000)))
    for k in range(10):  # a ring burst at 20 s
        t = 20_000_000 + k * 40_000
        clock.call_at(t, lambda t=t: sup.on_edge(1, "ring", True, t))
        clock.call_at(t + 20_000, lambda t=t: sup.on_edge(1, "ring", False, t + 20_000))
    clock.run_until(30_000_000)
    assert [(f.kind, f.active, f.t_us) for f in faults] == [
        ("ring_not_sensed", True, 1_000_000),
        ("ring_not_sensed", False, 20_000_000),
    ]


def test_a_bad_line_source_is_named(tmp_path):
    spec = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}
    for sources, field, words in [
        ({"3": "uk-dv-hub"}, "sources.3", "line number from 1 to 2"),
        ({"1": "no-such-hub"}, "sources.1", "no such adapter profile"),
        ({"1": 5}, "sources.1", "must be a string"),
    ]:
        with pytest.raises(ScenarioError) as err:
            loads_scenario(json.dumps(dict(spec, sources=sources)))
        assert err.value.field == field and words in err.value.message, err.value.message


def test_caller_id_standard_is_the_adapters(tmp_path):
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "sources": {"1": "uk-dv-hub"},
        "calls": [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "answer": False,
                "caller_id": {"number": "0123", "standard": "dtmf"},
            }
        ],
    }
    with pytest.raises(ScenarioError) as err:
        loads_scenario(json.dumps(spec))
    assert err.value.field == "calls[0].caller_id.standard"
    assert "sends v23 caller ID" in err.value.message
    # After-the-first-ring caller ID needs a second ring to come before.
    spec["sources"] = {"1": "etsi-ring-ata"}
    spec["calls"][0]["caller_id"] = {"number": "0123"}
    spec["calls"][0]["rings"] = 1
    with pytest.raises(ScenarioError) as err:
        loads_scenario(json.dumps(spec))
    assert err.value.field == "calls[0].rings"


def test_a_bad_adapter_profile_is_named(tmp_path):
    doc = json.loads((load_adapter.__globals__["adapters_dir"]() / "uk-dv-hub.json").read_text())
    doc["disconnect"] = {"signal": "loop_break"}
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ScenarioError) as err:
        load_adapter(str(tmp_path / "bad.json"))
    assert err.value.field == "disconnect" and "duration_ms" in err.value.message


def test_a_loop_current_below_the_hat_shows_our_handset_as_an_extension(tmp_path, synth):
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "sources": {"1": weak(tmp_path, loop_ma=8)},
        "calls": [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "caller_id": {"number": "01632960123"},
                "rings": 2,
                "talk": 4.0,
            }
        ],
    }
    box = open_sim_box(loads_scenario(json.dumps(spec)), str(tmp_path / "data"), synth=synth)
    box.start()
    assert box.board.run()
    calls = box.calllog.calls()
    box.stop()
    assert [(c["number"], c["extension"], c["end_reason"]) for c in calls] == [("01632960123", True, "local")]


@pytest.mark.parametrize("direction", ["in", "out"])
def test_polarity_on_answer_is_refused_on_an_adapter_that_never_reverses(direction):
    """`"polarity_on_answer": true` on a uk-dv-hub line was played as a reversal at the
    answer, which that hub never sends: the scenario said one thing and the profile another."""
    call = {"line": 1, "at": 1.0, "direction": direction, "polarity_on_answer": True}
    if direction == "out":
        call["dial"] = {"digits": "01632960000"}
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 2,
        "sources": {"1": "uk-dv-hub"},
        "calls": [call],
    }
    with pytest.raises(ScenarioError) as err:
        loads_scenario(json.dumps(spec))
    assert err.value.field == "calls[0].polarity_on_answer"
    assert err.value.message.startswith(
        "the line's adapter 'uk-dv-hub' does not reverse the polarity on answer"
    ), err.value.message
    # The exchange's line, and a profile that does reverse on answer, take it.
    loads_scenario(json.dumps(dict(spec, sources={"2": "uk-dv-hub"})))
    loads_scenario(json.dumps(dict(spec, sources={"1": "etsi-dtas-hub"})))
    loads_scenario(json.dumps(dict(spec, calls=[dict(call, polarity_on_answer=False)])))


def test_scenarios_md_says_what_caller_id_standard_may_be_on_an_adapters_line():
    """docs/scenarios.md said a call's caller_id.standard "must be left out" on an adapter's
    line, yet the profile's own standard is taken (only another one is refused)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    row = re.search(r"^\| `sources` \|.*$", text, re.M).group(0)
    assert "must be left out" not in row
    assert "`caller_id.standard` may be left out; if given it must be the profile's" in row
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "sources": {"1": "uk-dv-hub"},
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "answer": False, "caller_id": {"number": "01"}}],
    }
    loads_scenario(json.dumps(spec))
    spec["calls"][0]["caller_id"]["standard"] = "v23"
    loads_scenario(json.dumps(spec))
    spec["calls"][0]["caller_id"]["standard"] = "bell202"
    with pytest.raises(ScenarioError):
        loads_scenario(json.dumps(spec))
