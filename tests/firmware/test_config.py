import dataclasses
import json
import re

import pytest

from board import choose_board
from firmware.config import BoxConfig, load_config
from firmware.errors import ConfigError


def test_defaults_when_no_file(tmp_path):
    config = load_config(tmp_path)
    assert config == BoxConfig()
    assert config.board_name == "sim"


def test_hat_configured_means_the_pi(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hat": "lk-4l"}))
    assert load_config(tmp_path).board_name == "rpi"


@pytest.mark.parametrize(
    "data, field",
    [
        ({"country": "fr"}, "country"),
        ({"board": "pc"}, "board"),
        ({"debounce_ms": 80}, "debounce_ms"),
        ({"debounce_ms": "10"}, "debounce_ms"),
        ({"colour": "blue"}, "colour"),
        ({"version": 9}, "version"),
        ({"holdup_flush_ms": 500}, "holdup_flush_ms"),
        ({"holdup_flush_ms": 120_000}, "holdup_flush_ms"),
        ({"holdup_flush_ms": 2.5}, "holdup_flush_ms"),
    ],
)
def test_bad_config_names_the_field(tmp_path, data, field):
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert err.value.field == field
    assert field in str(err.value) and "config.json" in str(err.value)


@pytest.mark.parametrize(
    "data, words",
    [
        ({"debounce_ms": "10"}, "debounce_ms: must be a whole number"),
        ({"preroll_ms": True}, "preroll_ms: must be a whole number"),
        ({"country": 44}, "country: must be text (in quotes)"),
        ({"write_journal": 1}, "write_journal: must be true or false"),
        ({"tone_countries": "uk"}, "tone_countries: must be a list"),
    ],
)
def test_a_setting_of_the_wrong_type_is_named_in_plain_words(tmp_path, data, words):
    """`config import` said "config.debounce_ms: must be a int"."""
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=re.escape(words) + "$"):
        load_config(tmp_path)


def test_malformed_json(tmp_path):
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError, match=r"config.json:1:2: malformed JSON"):
        load_config(tmp_path)


def test_board_choice_order():
    assert choose_board(environ={}) == "sim"
    assert choose_board(configured="rpi", environ={}) == "rpi"
    assert choose_board(configured="rpi", environ={"LINEKEEPER_BOARD": "sim"}) == "sim"
    assert choose_board("rpi", "sim", environ={"LINEKEEPER_BOARD": "sim"}) == "rpi"
    with pytest.raises(ConfigError, match="unknown board"):
        choose_board(environ={"LINEKEEPER_BOARD": "pc"})


def test_the_stretched_sync_needs_a_hat_whose_mcu_can_warn(tmp_path):
    """``holdup_flush_ms`` applies only where a power cut is warned of (the simulated LK-4L
    with its MCU); elsewhere audio waits at most ``flush_ms``, as ever."""
    from board.sim.scenario import loads_scenario
    from firmware.box import RECORDER_DELAY_MS, open_sim_box

    doc = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "calls": [],
        "config": {"holdup_flush_ms": 8000},
    }
    box = open_sim_box(loads_scenario(json.dumps(doc)), str(tmp_path / "a"))
    try:
        # 8 s in memory at most, the recorder's delay line included.
        assert box._flush_ms() == 8000
        assert box.recorder.flush_ms == 8000 - RECORDER_DELAY_MS
    finally:
        box.stop()
    box.board.hat = dataclasses.replace(box.board.hat, mcu=None)
    assert box._flush_ms() == 1000


def test_write_journal_takes_true_or_false_only(tmp_path):
    assert BoxConfig().write_journal is True
    (tmp_path / "config.json").write_text(json.dumps({"write_journal": False}))
    assert load_config(tmp_path).write_journal is False
    for bad in (1, "yes"):
        (tmp_path / "config.json").write_text(json.dumps({"write_journal": bad}))
        with pytest.raises(ConfigError, match="write_journal"):
            load_config(tmp_path)
    # Other settings still refuse a bool (bool is an int in Python).
    (tmp_path / "config.json").write_text(json.dumps({"preroll_ms": True}))
    with pytest.raises(ConfigError, match="preroll_ms"):
        load_config(tmp_path)
