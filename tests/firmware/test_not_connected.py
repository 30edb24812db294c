"""A line marked not connected (nothing plugged into its socket): no line-fault alarm, never
recorded, and a call seen on it logged with an alarm that it is in use.

A 4-line HAT at a site with 2 lines raised a no_line_voltage alarm on each empty socket
that never cleared; the only way out was to say the box had a 2-line HAT."""

import json

import pytest

from board.sim.scenario import loads_scenario
from firmware.alarmlog import AlarmLog
from firmware.box import open_sim_box
from firmware.config import NOT_CONNECTED_MARKER, BoxConfig, load_config, save_config
from firmware.errors import ConfigError
from firmware.notconnected import IN_USE
from firmware.policy.rules import NOT_CONNECTED

from .test_box_reload import box_calls

DOC = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 2,
    "calls": [
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0},
        {"line": 2, "at": 60.0, "direction": "in", "rings": 1, "talk": 3.0},
    ],
    # Line 2's socket is empty until someone plugs a line in at 50 s.
    "faults": [{"line": 2, "at": 0.5, "kind": "no_line_voltage", "duration": 49.5}],
}


def history(data):
    log = AlarmLog.open_existing(data)
    try:
        return [(r["kind"], r["line"], r["cleared_us"] is None) for r in log.history()]
    finally:
        log.close()


def run(data, synth):
    box = open_sim_box(loads_scenario(json.dumps(DOC)), data, synth=synth)
    box.start()
    assert box.board.run()
    box.stop()
    return box


def test_no_fault_alarm_and_a_call_on_it_is_logged_not_recorded_with_an_alarm(tmp_path, synth):
    data = str(tmp_path)
    save_config(data, BoxConfig(not_connected=[2]))
    run(data, synth)
    alarms = history(data)
    assert not [a for a in alarms if a[0] == "no_line_voltage"]
    # The call on it is in the call log, skipped, and an alarm says the line is in use.
    calls = {c["line"]: c for c in box_calls(data)}
    assert calls[2]["policy_decision"] == "skip"
    assert calls[2]["policy_reason"] == NOT_CONNECTED % 2
    assert calls[1]["policy_decision"] == "record"
    assert (IN_USE, 2, True) in alarms


def test_marked_while_its_fault_is_on_the_fault_clears_and_unmarked_the_in_use_alarm_clears(tmp_path, synth):
    data = str(tmp_path)
    box = None

    def mark(lines):
        save_config(data, BoxConfig(not_connected=lines))
        box.reload_config()

    last = {"line": 1, "at": 150.0, "direction": "in", "rings": 1, "talk": 3.0}
    later = dict(DOC, calls=DOC["calls"] + [last])
    box = open_sim_box(loads_scenario(json.dumps(later)), data, synth=synth)
    box.clock.call_at(10_000_000, lambda: mark([2]))
    box.clock.call_at(120_000_000, lambda: mark([]))
    box.start()
    assert box.board.run()
    box.stop()
    alarms = history(data)
    # Raised before it was marked, cleared when it was; the in-use alarm cleared when unmarked.
    assert ("no_line_voltage", 2, False) in alarms
    assert (IN_USE, 2, False) in alarms
    assert not [a for a in alarms if a[2]]  # nothing left open


def test_a_fault_left_open_by_the_last_run_clears_at_the_start_once_marked(tmp_path, synth):
    data = str(tmp_path)
    log = AlarmLog(tmp_path / "alarms.db", box_clock())
    log.set("no_line_voltage", True, line=2, message="no voltage")
    log.close()
    save_config(data, BoxConfig(not_connected=[2]))
    run(data, synth)
    assert ("no_line_voltage", 2, False) in history(data)
    assert not [a for a in history(data) if a[0] == "no_line_voltage" and a[2]]


def test_kept_beside_config_json_which_the_release_before_still_reads(tmp_path):
    data = str(tmp_path)
    save_config(data, BoxConfig(not_connected=[3, 4]))
    with open(tmp_path / "config.json") as f:
        assert "not_connected" not in json.load(f)
    assert load_config(data).not_connected == [3, 4]
    save_config(data, BoxConfig())
    assert not (tmp_path / NOT_CONNECTED_MARKER).exists()
    assert load_config(data).not_connected == []


@pytest.mark.parametrize("bad", [[0], [65], ["2"], [True], [2, 2]])
def test_a_bad_line_is_refused_naming_the_field(bad):
    with pytest.raises(ConfigError) as exc:
        BoxConfig.from_dict({"not_connected": bad})
    assert "not_connected" in str(exc.value)


def box_clock():
    from firmware.clock import SimClock

    return SimClock()


def test_marked_connected_while_its_socket_is_still_dead_the_fault_is_raised_at_once(tmp_path, synth):
    data = str(tmp_path)
    save_config(data, BoxConfig(not_connected=[2]))
    dead = dict(
        DOC,
        calls=[{"line": 1, "at": 40.0, "direction": "in", "rings": 1, "talk": 3.0}],
        faults=[{"line": 2, "at": 0.5, "kind": "no_line_voltage", "duration": 100.0}],
    )
    box = open_sim_box(loads_scenario(json.dumps(dead)), data, synth=synth)

    def unmark():
        assert not [a for a in history(data) if a[0] == "no_line_voltage"]
        save_config(data, BoxConfig())
        box.reload_config()

    box.clock.call_at(20_000_000, unmark)
    box.start()
    assert box.board.run()
    box.stop()
    # Raised at the unmarking (the supervisor's fault was on all along), cleared when the
    # line's voltage came back at 100.5 s: one occurrence.
    assert [a for a in history(data) if a[0] == "no_line_voltage"] == [("no_line_voltage", 2, False)]
