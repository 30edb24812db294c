"""The settings of the far end's clear (issue 18): each bad value is named."""

import json

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import line_signal_settings, open_sim_box
from firmware.calls.supervisor import SupervisorConfig
from firmware.config import BoxConfig
from firmware.errors import ConfigError


@pytest.mark.parametrize(
    "field, value",
    [
        ("loop_break_min_ms", 10),
        ("loop_break_min_ms", 900),
        ("loop_break_min_ms", "90"),
        ("hook_flash_max_ms", 100),
        ("hook_flash_max_ms", 2000),
        ("silence_clear_s", 5),
        ("silence_clear_s", 601),
        ("ring_timeout_ms", 500),
        ("ring_timeout_ms", 30000),
        ("tone_countries", "us"),
        ("tone_countries", ["fr"]),
    ],
)
def test_bad_values_are_named(field, value):
    with pytest.raises(ConfigError) as err:
        BoxConfig.from_dict({field: value})
    assert err.value.field.startswith(field)


def test_the_settings_reach_the_supervisor_and_round_trip():
    config = BoxConfig.from_dict(
        {
            "loop_break_min_ms": 150,
            "hook_flash_max_ms": 800,
            "silence_clear_s": 30,
            "ring_timeout_ms": 5500,
            "tone_countries": ["us"],
        }
    )
    sup = SupervisorConfig(**line_signal_settings(config))
    assert (sup.kbreak_min_ms, sup.flash_max_ms, sup.silence_clear_ms, sup.ring_timeout_ms) == (
        150,
        800,
        30000,
        5500,
    )
    assert BoxConfig.from_dict(config.to_dict()) == config


def test_defaults_catch_the_shortest_adapter_break_and_wait_a_safe_minute():
    sup = SupervisorConfig(**line_signal_settings(BoxConfig()))
    assert sup.kbreak_min_ms == 90 and sup.silence_clear_ms == 60_000
    assert sup.flash_max_ms == sup.pulse_break_max_ms  # no hook flash unless asked for
    assert sup.ring_timeout_ms == 3500


OUTSIDE = {"policy": {"rules": {"lines": [{"line": 2, "mode": "always", "outside_line": "9"}]}}}


def test_a_lines_outside_line_digit_reaches_the_supervisor():
    sup = SupervisorConfig(**line_signal_settings(BoxConfig.from_dict(OUTSIDE)))
    assert sup.outside_line == {2: "9"}
    assert SupervisorConfig(**line_signal_settings(BoxConfig())).outside_line == {}


def test_a_changed_outside_line_digit_reaches_the_running_supervisor(tmp_path):
    """The Rules page hands the new configuration to the running box: from the line's next
    call on, the digit is a prefix there (no restart)."""
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}
    box = open_sim_box(loads_scenario(json.dumps(doc)), str(tmp_path / "box"))
    box.start()
    try:
        assert box.supervisor.config.outside_line == {}
        box.apply_config(BoxConfig.from_dict(OUTSIDE))
        assert box.supervisor.config.outside_line == {2: "9"}
        assert box.supervisor.config.country == "uk"
    finally:
        box.stop()
