"""The settings of the far end's clear (issue 18): each bad value is named."""

import pytest

from firmware.box import line_signal_settings
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
