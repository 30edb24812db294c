"""Box.reload_config: the policy, the country and the pre-roll change without a restart."""

import json

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.config import BoxConfig, load_config, save_config
from firmware.policy.rules import NOT_SET_UP
from firmware.policy.settings import LineMode, PolicySettings, RecordingRules

DOC = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 2,
    "calls": [
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0},
        {"line": 1, "at": 30.0, "direction": "in", "rings": 1, "talk": 3.0},
    ],
}


def test_a_private_line_set_while_running_applies_to_the_next_call(tmp_path, synth):
    data = str(tmp_path)
    box = open_sim_box(loads_scenario(json.dumps(DOC)), data, synth=synth)
    private = BoxConfig(policy=PolicySettings(rules=RecordingRules(lines=(LineMode(1, "never"),))))

    def change():
        save_config(data, private)
        box.reload_config()

    box.clock.call_at(20_000_000, change)
    box.start()
    assert box.board.run()
    box.stop()
    reasons = [c["policy_reason"] for c in box_calls(data)]
    # A box with no recording key (none is made here) says so beside the rules' reason.
    assert reasons == ["line 1 records every call; " + NOT_SET_UP, "line 1 is private"]
    assert load_config(data) == private


def test_a_new_country_switches_the_supervisor_and_the_detectors(tmp_path, synth):
    from firmware.box import Box, make_dsp_factory

    box = open_sim_box(loads_scenario(json.dumps(dict(DOC, calls=[]))), str(tmp_path), synth=synth)
    # The same parts, on a box whose country is not fixed by a simulated exchange.
    box2 = Box(
        box.board,
        box.clock,
        str(tmp_path / "b"),
        BoxConfig(),
        box.board.gpio.signals(),
        dsp_factory=make_dsp_factory("uk"),
    )
    save_config(str(tmp_path / "b"), BoxConfig(country="us", preroll_ms=500))
    box2.reload_config()
    assert box2.supervisor.config.country == "us" and box2.supervisor.config.ring_timeout_ms == 5500
    assert {dsp.country for dsp in box2.dsp.values()} == {"us"}
    feeds = [c for c in box2.capture.lines[1].consumers if getattr(c, "__self__", None) in box2.dsp.values()]
    assert len(feeds) == 1 and feeds[0].__self__ is box2.dsp[1]
    assert box2.recorder.preroll_us == 500_000 and box2.policy.country == "us"


def box_calls(data):
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock

    log = CallLog(data + "/calls.db", SimClock())
    try:
        return log.calls()
    finally:
        log.close()
