"""The country table: one entry is all a new country needs.

The made-up country "Zedland" is one :class:`Country` put into the table;
nothing else is edited, and the simulator, ``linekeeper analyze`` and the
settings page all take it.
"""

import json
import os
import wave

import numpy as np
import pytest

from firmware import cli
from firmware.calls.supervisor import SupervisorConfig
from firmware.config import BoxConfig
from firmware.errors import ConfigError
from firmware.policy.rules import normalise
from telephony import countries, generate
from telephony.levels import DBM0_RMS, active_level_dbm0

from support.cli import calls_args, owner_slot
from support.countries import ZEDLAND


@pytest.fixture
def zedland(monkeypatch):
    monkeypatch.setitem(countries.COUNTRIES, "zz", ZEDLAND)
    # The command's options list the countries of the table as it was when the process
    # first built them (once a process): built again, as a release with a new country does.
    cli._parser.cache_clear()
    yield ZEDLAND
    cli._parser.cache_clear()


def run_cli(*args):
    umask = os.umask(0o022)
    try:
        return cli.main([str(a) for a in args])
    finally:
        os.umask(umask)


def test_the_table_holds_what_the_box_used_to_hard_code():
    uk, us = countries.country("uk"), countries.country("us")
    assert (uk.ring_timeout_ms, us.ring_timeout_ms) == (3500, 5500)
    assert uk.ring_cadence_ms == (400, 200, 400, 2000) and us.ring_silence_ms == 4000
    assert uk.cid_standards[0] == "v23" and us.cid_standards[0] == "bell202"
    assert countries.box_countries() == {"uk": "United Kingdom", "us": "United States"}
    assert set(countries.profiles()) == {"uk", "us", "etsi", "dtmf"}
    assert us.tone("unobtainable") == us.tones["congestion"]
    with pytest.raises(ValueError, match="unknown country 'fr'"):
        countries.country("fr")


def test_one_zero_dbm0_reference():
    # A full-scale sine is +3.14 dBm0 (spandsp): 0 dBm0 is about 16 140 RMS.
    assert DBM0_RMS == pytest.approx(16140.7, abs=0.1)
    sine = generate.sine([1000], [0.0], 1000)
    assert active_level_dbm0(sine) == pytest.approx(0.0, abs=0.05)


def test_numbers_follow_the_countrys_format(zedland):
    assert normalise("01632960123", "uk") == "+441632960123"
    assert normalise("2125550100", "us") == "+12125550100"
    assert normalise("0123456", "zz") == "+999123456"
    assert normalise("00441632960123", "zz") == "+441632960123"
    # International without its "+", as some networks send a caller's number.
    assert normalise("441632960123", "uk") == "+441632960123"
    assert normalise("44 1632 96012", "uk") == "+44163296012"
    assert normalise("4401632960123", "uk") == "4401632960123"  # not a UK number
    assert normalise("4416329", "uk") == "4416329"  # too short: a local number


def test_a_trunk_zero_in_brackets_is_dropped_only_after_a_country_code():
    """ "+44 (0)1632 960123" is 01632 960123; "(0)1632 960123", the same number written
    without its country code, keeps its trunk zero (it was 01632 960123 before the (0)
    was dropped anywhere: a rule or a search written so stopped matching)."""
    for written in ("+44 (0)1632 960123", "0044 (0)1632 960123", "+44(0)1632-960123", "44 (0) 1632 960123"):
        assert normalise(written, "uk") == "+441632960123", written
    for written in ("(0)1632 960123", "( 0 )1632 960123", "(01632) 960123"):
        assert normalise(written, "uk") == "+441632960123", written


def test_config_and_supervisor_take_a_new_country(zedland):
    assert BoxConfig(country="zz").country == "zz"
    assert SupervisorConfig(country="zz").ring_timeout_ms == 4500
    with pytest.raises(ConfigError, match="country"):
        BoxConfig(country="xx")


def test_sim_plays_a_day_in_the_new_country(zedland, tmp_path, capsys):
    scenario = {
        "start": "2026-03-02T09:00:00Z",
        "country": "zz",
        "lines": 2,
        "calls": [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "rings": 2,
                "talk": 5.0,
                "caller_id": {"number": "0123456789", "name": "ZED CO"},
                "hangup": "remote",
            },
            {"line": 2, "at": 2.0, "direction": "in", "rings": 3, "answer": False},
        ],
    }
    path = tmp_path / "zed.json"
    path.write_text(json.dumps(scenario))
    data = tmp_path / "data"
    assert run_cli("sim", path, "--data-dir", data, "--speed", "max") == 0
    capsys.readouterr()
    assert run_cli(*calls_args(data, owner_slot(data), "--json")) == 0
    calls = {c["line"]: c for c in map(json.loads, capsys.readouterr().out.splitlines())}
    assert calls[1]["number"] == "0123456789" and calls[1]["name"] == "ZED CO"
    assert calls[1]["answered"] is True
    assert calls[2]["answered"] is False


def test_analyze_accepts_the_new_country(zedland, tmp_path, capsys):
    audio = np.concatenate(
        [generate.silence(300), generate.caller_id("bell202", number="0123456789"), generate.silence(300)]
    )
    path = tmp_path / "line.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(audio.astype("<i2").tobytes())
    assert run_cli("analyze", path, "--standard", "zz", "--json") == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e.get("number"), e.get("standard")) for e in events] == [
        ("caller_id", "0123456789", "bell202")
    ]
