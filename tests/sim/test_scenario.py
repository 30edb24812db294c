"""Scenario files: valid ones load with their defaults; every kind of bad input
is rejected naming the field and its position in the file."""

import copy
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from board.hat import load_hat
from board.sim.scenario import (
    CallerId,
    Dial,
    Fault,
    Scenario,
    Utterance,
    builtin_scenarios,
    load_scenario,
    loads_scenario,
)
from board.sim.timeline import occupancy_us
from firmware.errors import ScenarioError

from support.positions import assert_names_field_and_position, text_at

EXAMPLE = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 4,
    "calls": [
        {
            "line": 1,
            "at": 2.0,
            "direction": "in",
            "caller_id": {"number": "01632960123", "name": "ACME LTD"},
            "rings": 2,
            "talk": 20.0,
            "speech": "Hello, I would like to place an order",
            "hangup": "local",
        },
        {
            "line": 2,
            "at": 5.0,
            "direction": "out",
            "dial": {"digits": "02079460000", "mode": "dtmf"},
            "talk": 15.0,
            "hangup": "remote",
        },
        {"line": 3, "at": 1.0, "direction": "in", "rings": 5, "answer": False},
    ],
}

EXAMPLE_TOML = """
start = 2026-03-02T09:00:00Z
country = "uk"
lines = 4

[[calls]]
line = 1
at = 2.0
direction = "in"
caller_id = { number = "01632960123", name = "ACME LTD" }
rings = 2
talk = 20.0
speech = "Hello, I would like to place an order"
hangup = "local"

[[calls]]
line = 2
at = 5
direction = "out"
dial = { digits = "02079460000", mode = "dtmf" }
talk = 15.0
hangup = "remote"

[[calls]]
line = 3
at = 1.0
direction = "in"
rings = 5
answer = false
"""


def example(**changes):
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def test_the_example_loads_with_its_defaults():
    sc = loads_scenario(json.dumps(EXAMPLE))
    assert isinstance(sc, Scenario)
    assert sc.start == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    assert sc.start_wall_us == 1772442000 * 1_000_000
    assert (sc.country, sc.lines, sc.hat, sc.seed) == ("uk", 4, "lk-4l", 0)
    assert (sc.bounce_ms, sc.noise_dbm0, sc.speech_level_dbm0) == (3, -65.0, -18.0)
    assert sc.faults == ()
    c0, c1, c2 = sc.calls
    assert (c0.index, c0.line, c0.at_s, c0.direction, c0.rings) == (0, 1, 2.0, "in", 2)
    assert c0.caller_id == CallerId(
        standard="v23", datetime="03020900", number="01632960123", name="ACME LTD"
    )
    assert c0.speech == (Utterance(0.5, "Hello, I would like to place an order", "en-gb", -18.0),)
    assert (c0.answer, c0.answer_delay_s, c0.talk_s, c0.hangup) == (True, 0.5, 20.0, "local")
    assert (c0.extension, c0.polarity_on_answer, c0.tags) == (False, False, ())
    assert c1.dial == Dial("02079460000", "dtmf", 1.5, 70, 80)
    assert (c1.hangup, c1.hangup_delay_s, c1.rings, c1.caller_id) == ("remote", 2.0, None, None)
    assert (c2.answer, c2.rings, c2.talk_s, c2.speech) == (False, 5, None, ())


def test_scenario_is_frozen():
    sc = loads_scenario(json.dumps(EXAMPLE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.calls[0].line = 2


def test_toml_gives_the_same_scenario(tmp_path):
    path = tmp_path / "day.toml"
    path.write_text(EXAMPLE_TOML)
    from_toml = load_scenario(str(path))
    from_json = loads_scenario(json.dumps(EXAMPLE))
    assert from_toml.calls == from_json.calls
    assert from_toml.start_wall_us == from_json.start_wall_us


def test_toml_errors_name_the_field_without_a_position():
    with pytest.raises(ScenarioError) as info:
        loads_scenario(EXAMPLE_TOML.replace("rings = 5", "rings = 0"), "x.toml", toml=True)
    assert info.value.field == "calls[2].rings" and info.value.position is None


def test_the_built_in_demo_loads():
    assert "demo" in builtin_scenarios()
    sc = load_scenario("demo")
    assert sc.country == "uk" and sc.lines == 4
    assert sc.calls[0].at_s == 3.0
    assert 480 <= max(c.at_s for c in sc.calls) and len(sc.faults) == 1


def test_demo_covers_every_feature():
    sc = load_scenario("demo")
    calls = sc.calls
    assert any(
        c.direction == "in" and c.answer and c.caller_id and c.caller_id.name and c.speech for c in calls
    )
    assert any(not c.answer for c in calls)
    assert {c.dial.mode for c in calls if c.dial} == {"dtmf", "pulse"}
    assert any(c.caller_id and c.caller_id.absence == "private" for c in calls)
    assert any(c.hangup == "remote" for c in calls)
    assert any(c.extension and c.direction == "in" for c in calls)
    assert any(f.kind == "no_line_voltage" for f in sc.faults)
    assert {c.line for c in calls} == {1, 2, 3, 4}
    assert all(len(c.speech) >= 2 for c in calls if c.answer)


def test_demo_calls_do_not_overlap_on_any_line():
    sc = load_scenario("demo")
    for line in range(1, 5):
        spans = sorted(occupancy_us(sc, item) for item in sc.calls + sc.faults if item.line == line)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end


def test_speech_list_voice_and_level_defaults():
    data = example(country="us", speech_level_dbm0=-20)
    data["calls"][0]["caller_id"] = {"number": "2025550123"}
    data["calls"][0]["speech"] = [
        {"at": 1, "text": "Hi"},
        {"at": 2, "text": "Yo", "voice": "en-gb", "level_dbm0": -12},
    ]
    sc = loads_scenario(json.dumps(data))
    assert sc.calls[0].speech == (Utterance(1, "Hi", "en-us", -20), Utterance(2, "Yo", "en-gb", -12))
    assert sc.calls[0].caller_id.standard == "bell202"


def test_caller_id_datetime_defaults_to_start_plus_at_in_the_start_zone():
    data = example(start="2026-12-31T23:59:00+01:00")
    data["calls"][0]["at"] = 125.0
    sc = loads_scenario(json.dumps(data))
    assert sc.calls[0].caller_id.datetime == "01010001"


def test_withheld_and_dtmf_caller_id():
    data = example()
    data["calls"][0]["caller_id"] = {"absence": "private"}
    data["calls"][2]["caller_id"] = {"number": "0123", "standard": "dtmf"}
    sc = loads_scenario(json.dumps(data))
    assert sc.calls[0].caller_id.absence == "private" and sc.calls[0].caller_id.number is None
    assert sc.calls[2].caller_id.standard == "dtmf"


def test_faults_and_options_load():
    data = example(
        bounce_ms=0,
        noise_dbm0=-50,
        seed=7,
        faults=[{"line": 4, "at": 3, "kind": "stuck_off_hook", "duration": 60}],
    )
    sc = loads_scenario(json.dumps(data))
    assert sc.faults == (Fault(0, 4, 3, "stuck_off_hook", 60),)
    assert (sc.bounce_ms, sc.noise_dbm0, sc.seed) == (0, -50, 7)


def test_hat_path_is_relative_to_the_scenario(tmp_path):
    hat = json.loads(Path(load_hat("lk-4l").source).read_text())
    hat["lines"] = hat["lines"][:2]
    (tmp_path / "two.json").write_text(json.dumps(hat))
    data = example(hat="two.json", lines=2)
    data["calls"] = data["calls"][:2]
    (tmp_path / "s.json").write_text(json.dumps(data))
    sc = load_scenario(str(tmp_path / "s.json"))
    assert sc.hat == str(tmp_path / "two.json")
    data["lines"] = 3
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match="must be 1 to 2") as info:
        load_scenario(str(tmp_path / "s.json"))
    assert info.value.field == "lines"


def test_unknown_built_in_name():
    with pytest.raises(ScenarioError, match="demo"):
        load_scenario("nosuchday")


def test_malformed_json_has_the_json_modules_position():
    with pytest.raises(ScenarioError) as info:
        loads_scenario('{"start": "2026-03-02T09:00:00Z",\n "calls": [}', "x.json")
    assert info.value.position == (2, 12)


def _call(i, **fields):
    def mutate(data):
        for k, v in fields.items():
            if v is _DEL:
                del data["calls"][i][k]
            else:
                data["calls"][i][k] = v

    return mutate


def _top(**fields):
    def mutate(data):
        for k, v in fields.items():
            if v is _DEL:
                del data[k]
            else:
                data[k] = v

    return mutate


_DEL = object()

BAD = [
    # (id, mutation, field, message, text at the position)
    ("unknown top-level", _top(colour=1), "colour", "unknown field", '"colour"'),
    ("typo in a call", _call(0, rigns=3), "calls[0].rigns", "did you mean 'rings'", '"rigns"'),
    (
        "typo in caller_id",
        _call(0, caller_id={"numbr": "1"}),
        "calls[0].caller_id.numbr",
        "did you mean 'number'",
        '"numbr"',
    ),
    ("missing start", _top(start=_DEL), None, "missing required field 'start'", "{"),
    ("start without zone", _top(start="2026-03-02T09:00:00"), "start", "time zone", '"2026'),
    ("start not a date", _top(start="yesterday"), "start", "ISO 8601", '"yesterday"'),
    ("country", _top(country="fr"), "country", "'uk', 'us'", '"fr"'),
    ("lines above the HAT", _top(lines=5), "lines", "1 to 4, not 5: the HAT 'lk-4l' has 4 lines", "5"),
    (
        "lines above a two-line HAT",
        _top(lines=3, hat="lk-2lb"),
        "lines",
        "must be 1 to 2, not 3: the HAT 'lk-2lb' has 2 lines",
        "3",
    ),
    ("calls not a list", _top(calls={}), "calls", "must be a list", "{}"),
    ("line out of range", _call(1, line=5), "calls[1].line", "must be 1 to 4", "5"),
    ("negative at", _call(1, at=-1), "calls[1].at", "must be 0 to", "-1"),
    ("at as a string", _call(1, at="2"), "calls[1].at", "must be a number", '"2"'),
    ("direction", _call(1, direction="sideways"), "calls[1].direction", "'in', 'out'", '"sideways"'),
    ("rings zero", _call(2, rings=0), "calls[2].rings", "must be 1 to 50", "0"),
    ("rings float", _call(2, rings=2.5), "calls[2].rings", "whole number", "2.5"),
    ("answer not bool", _call(2, answer="no"), "calls[2].answer", "true or false", '"no"'),
    ("talk zero", _call(0, talk=0), "calls[0].talk", "more than 0", "0"),
    ("hangup", _call(0, hangup="both"), "calls[0].hangup", "'local', 'remote'", '"both"'),
    ("hangup_delay with local", _call(0, hangup_delay=2), "calls[0].hangup_delay", "only applies", "2"),
    ("hangup_delay too short", _call(1, hangup_delay=0.2), "calls[1].hangup_delay", "more than 0.2", "0.2"),
    ("answer_delay too long", _call(0, answer_delay=2.0), "calls[0].answer_delay", "rung again", "2.0"),
    (
        "outbound with caller_id",
        _call(1, caller_id={"number": "1"}),
        "calls[1].caller_id",
        "outbound call has no caller ID",
        '"caller_id"',
    ),
    (
        "inbound with dial",
        _call(0, dial={"digits": "1"}),
        "calls[0].dial",
        "inbound call does not dial",
        '"dial"',
    ),
    ("outbound with rings", _call(1, rings=2), "calls[1].rings", "does not ring", '"rings"'),
    ("outbound without dial", _call(1, dial=_DEL), "calls[1]", 'needs "dial"', "{"),
    ("missed call with talk", _call(2, talk=5), "calls[2].talk", "missed call", '"talk"'),
    ("missed call with speech", _call(2, speech="hi"), "calls[2].speech", "missed call", '"speech"'),
    ("caller_id empty", _call(0, caller_id={}), "calls[0].caller_id", 'needs a "number"', "{}"),
    (
        "caller_id number letters",
        _call(0, caller_id={"number": "0800-CALL"}),
        "calls[0].caller_id.number",
        "1 to 20 digits",
        '"0800-CALL"',
    ),
    (
        "caller_id name too long",
        _call(0, caller_id={"number": "1", "name": "X" * 51}),
        "calls[0].caller_id.name",
        "1 to 50 printable",
        '"XXX',
    ),
    (
        "caller_id absence with number",
        _call(0, caller_id={"number": "1", "absence": "private"}),
        "calls[0].caller_id.number",
        "carries no number",
        '"1"',
    ),
    (
        "caller_id absence value",
        _call(0, caller_id={"absence": "secret"}),
        "calls[0].caller_id.absence",
        "'private', 'unavailable'",
        '"secret"',
    ),
    (
        "caller_id standard",
        _call(0, caller_id={"number": "1", "standard": "v22"}),
        "calls[0].caller_id.standard",
        "'v23', 'bell202', 'dtmf'",
        '"v22"',
    ),
    (
        "caller_id datetime",
        _call(0, caller_id={"number": "1", "datetime": "13010900"}),
        "calls[0].caller_id.datetime",
        "MMDDHHMM",
        '"13010900"',
    ),
    (
        "dtmf caller_id with name",
        _call(0, caller_id={"number": "1", "name": "A", "standard": "dtmf"}),
        "calls[0].caller_id.name",
        "cannot carry a name",
        '"A"',
    ),
    (
        "bell202 with one ring",
        _call(0, rings=1, caller_id={"number": "1", "standard": "bell202"}),
        "calls[0].rings",
        "at least twice",
        "1",
    ),
    (
        "dial digits for pulse",
        _call(1, dial={"digits": "12#", "mode": "pulse"}),
        "calls[1].dial.digits",
        "pulse dialling",
        '"12#"',
    ),
    (
        "dial digits for dtmf",
        _call(1, dial={"digits": "12E"}),
        "calls[1].dial.digits",
        "0-9 * # A B C D",
        '"12E"',
    ),
    (
        "dial mode",
        _call(1, dial={"digits": "1", "mode": "rotary"}),
        "calls[1].dial.mode",
        "'dtmf', 'pulse'",
        '"rotary"',
    ),
    (
        "pulse with on_ms",
        _call(1, dial={"digits": "1", "mode": "pulse", "on_ms": 50}),
        "calls[1].dial.on_ms",
        "only applies to DTMF",
        '"on_ms"',
    ),
    (
        "dtmf on_ms too short",
        _call(1, dial={"digits": "1", "on_ms": 10}),
        "calls[1].dial.on_ms",
        "must be 20 to 1000",
        "10",
    ),
    (
        "dial delay",
        _call(1, dial={"digits": "1", "delay": 0}),
        "calls[1].dial.delay",
        "must be 0.1 to 30",
        "0",
    ),
    (
        "caller ID datetime not a day",
        _call(0, caller_id={"number": "01632960123", "datetime": "02310900"}),
        "calls[0].caller_id.datetime",
        "month 02 has no day 31",
        '"02310900"',
    ),
    (
        "DTMF caller ID with a datetime",
        _call(0, caller_id={"number": "01632960123", "standard": "dtmf", "datetime": "01010000"}),
        "calls[0].caller_id.datetime",
        "DTMF caller ID cannot carry a date and time",
        '"01010000"',
    ),
    (
        "outbound at the box's start",
        _call(1, at=0),
        "calls[1].at",
        "an outbound call must start after 0 s",
        "0",
    ),
    ("speech empty", _call(0, speech="  "), "calls[0].speech", "must not be empty", '"  "'),
    ("speech a number", _call(0, speech=5), "calls[0].speech", "must be a string (spoken 0.5 s", "5"),
    (
        "start past 2999 in UTC",
        _top(start="2999-12-31T23:59:59-05:00"),
        "start",
        "must be from 1970 to 2999 in UTC, not '2999-12-31T23:59:59-05:00' (3000-01-01T04:59:59+00:00 UTC)",
        '"2999',
    ),
    (
        "speech item at after talk",
        _call(0, speech=[{"at": 20, "text": "x"}]),
        "calls[0].speech[0].at",
        "less than the call's talk time",
        "20",
    ),
    (
        "speech item level",
        _call(0, speech=[{"at": 1, "text": "x", "level_dbm0": -5}]),
        "calls[0].speech[0].level_dbm0",
        "must be -25 to -10",
        "-5",
    ),
    (
        "speech item unknown key",
        _call(0, speech=[{"at": 1, "txt": "x"}]),
        "calls[0].speech[0].txt",
        "did you mean 'text'",
        '"txt"',
    ),
    (
        "speech item not an object",
        _call(0, speech=["hello"]),
        "calls[0].speech[0]",
        "must be an object",
        '"hello"',
    ),
    ("tags not strings", _call(0, tags=[1]), "calls[0].tags[0]", "must be a string", "1"),
    ("extension not bool", _call(0, extension=1), "calls[0].extension", "true or false", "1"),
    ("bounce too long", _top(bounce_ms=50), "bounce_ms", "must be 0 to 10", "50"),
    ("speech level", _top(speech_level_dbm0=-30), "speech_level_dbm0", "must be -25 to -10", "-30"),
    ("noise", _top(noise_dbm0=0), "noise_dbm0", "must be -100 to -20", "0"),
    ("seed", _top(seed=-1), "seed", "must be 0 to 4294967295", "-1"),
    ("hat unknown", _top(hat="lk-99"), "hat", "no such HAT", '"lk-99"'),
    (
        "fault kind",
        _top(faults=[{"line": 4, "at": 1, "kind": "fire", "duration": 1}]),
        "faults[0].kind",
        "'no_line_voltage', 'stuck_off_hook'",
        '"fire"',
    ),
    (
        "fault duration",
        _top(faults=[{"line": 4, "at": 1, "kind": "stuck_off_hook", "duration": 0}]),
        "faults[0].duration",
        "more than 0",
        "0",
    ),
    (
        "fault line",
        _top(faults=[{"line": 9, "at": 1, "kind": "stuck_off_hook", "duration": 1}]),
        "faults[0].line",
        "must be 1 to 4",
        "9",
    ),
]


@pytest.mark.parametrize("what, mutate, field, message, at", BAD, ids=[b[0] for b in BAD])
def test_bad_scenarios_are_rejected_naming_field_and_position(what, mutate, field, message, at):
    data = example()
    mutate(data)
    text = json.dumps(data, indent=2)
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, "day.json")
    assert_names_field_and_position(info.value, text, "day.json", field, message, at)


def test_overlapping_calls_on_a_line_name_the_later_call():
    data = example()
    # Call 0 on line 1 is answered about 5.75 s after its start and talks 20 s.
    data["calls"].append({"line": 1, "at": 20.0, "direction": "in"})
    text = json.dumps(data, indent=2)
    with pytest.raises(ScenarioError, match=r"overlaps calls\[0\] on line 1") as info:
        loads_scenario(text)
    assert info.value.field == "calls[3].at"
    assert text_at(text, info.value.position).startswith("20.0")


def test_a_call_may_follow_once_the_line_has_settled():
    data = example()
    # Call 1 (line 2): off-hook 5.0, 11 DTMF digits from 6.5 s end at 8.07 s, talk 15 s,
    # remote clear at 23.07 s, on-hook 2 s later, chatter 3 ms, settled 1 s after: 26.073 s.
    data["calls"].append({"line": 2, "at": 26.1, "direction": "in"})
    loads_scenario(json.dumps(data))
    data["calls"][-1]["at"] -= 0.2
    with pytest.raises(ScenarioError, match="overlaps"):
        loads_scenario(json.dumps(data))


def test_a_missed_call_occupies_its_line_a_ring_silence_longer():
    data = example()
    # Call 2 (line 3) rings 5 UK cycles from 1.0 s: its last burst ends at 14.0 s.
    data["calls"].append({"line": 3, "at": 14.0 + 1.0 + 2.0, "direction": "in"})
    loads_scenario(json.dumps(data))
    data["calls"][-1]["at"] = 16.5
    with pytest.raises(ScenarioError, match=r"overlaps calls\[2\]") as info:
        loads_scenario(json.dumps(data))
    assert info.value.field == "calls[3].at"


def test_faults_may_not_overlap_calls():
    data = example(faults=[{"line": 1, "at": 10.0, "kind": "no_line_voltage", "duration": 3}])
    with pytest.raises(ScenarioError, match=r"overlaps calls\[0\]") as info:
        loads_scenario(json.dumps(data))
    assert info.value.field == "faults[0].at"
    # A line dying under a call (a hub restarting) is written on the call: the error says how.
    assert 'give the call "hangup": "line_lost"' in str(info.value)
    data = example(faults=[{"line": 1, "at": 10.0, "kind": "stuck_off_hook", "duration": 3}])
    with pytest.raises(ScenarioError, match=r"overlaps calls\[0\]") as info:
        loads_scenario(json.dumps(data))
    assert "line_lost" not in str(info.value)


# ------------------------------------------------------------------ power
def test_power_cuts_load():
    from board.sim.scenario import PowerEvent

    sc = loads_scenario(json.dumps(example(power=[{"at": 30, "cut": True}, {"at": 90.5, "cut": False}])))
    assert sc.power == (PowerEvent(0, 30, True), PowerEvent(1, 90.5, False))
    assert loads_scenario(json.dumps(EXAMPLE)).power == ()


@pytest.mark.parametrize(
    "power, where, message",
    [
        ([{"at": 3, "cut": False}], "power[0].cut", "the power is already on"),
        (
            [{"at": 3, "cut": True}, {"at": 3, "cut": False}],
            "power[1].at",
            "must be later than the previous power change (3 s)",
        ),
        ([{"at": 3, "cut": True}, {"at": 5, "cut": True}], "power[1].cut", "the power is already off"),
        ([{"at": -1, "cut": True}], "power[0].at", "must be 0 to 604800"),
        ([{"at": 3, "cut": "yes"}], "power[0].cut", ""),
        ([{"at": 3}], "power[0]", "cut"),
        ([{"at": 3, "cut": True, "volts": 0}], "power[0].volts", "unknown field"),
        ({"at": 3}, "power", ""),
    ],
)
def test_bad_power_is_named_with_its_position(power, where, message):
    text = json.dumps(example(power=power), indent=1)
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, "s.json")
    error = str(info.value)
    assert error.startswith("s.json:") and (": %s: " % where) in error, error
    assert message in error, error


def test_power_needs_a_hat_with_an_mcu_and_a_holdup_capacitor(tmp_path):
    hat = json.loads(Path(load_hat("lk-4l").source).read_text())
    del hat["mcu"]
    (tmp_path / "bare.json").write_text(json.dumps(hat))
    hat["mcu"] = {
        "address": "0x48",
        "regmap_version": 1,
        "holdup": {"farads": 0, "load_mw": 4000, "min_mv": 2500},
    }
    (tmp_path / "nocap.json").write_text(json.dumps(hat))
    for name, message in (("bare.json", "has no supervisor MCU"), ("nocap.json", "has no hold-up capacitor")):
        (tmp_path / "s.json").write_text(
            json.dumps(example(hat=name, power=[{"at": 1, "cut": True}]), indent=1)
        )
        with pytest.raises(ScenarioError, match=message):
            load_scenario(str(tmp_path / "s.json"))


def test_a_copied_hat_that_kept_a_shipped_id_is_named_by_its_file(tmp_path):
    """docs/hats.md starts a HAT as a copy of lk-4l.json: one that kept the id "lk-4l" and
    lost the MCU must not be called "the HAT 'lk-4l'", which has one."""
    hat = json.loads(Path(load_hat("lk-4l").source).read_text())
    del hat["mcu"]
    (tmp_path / "mine.json").write_text(json.dumps(hat))
    power = [{"at": 1, "cut": True}]
    press = [dict(EXAMPLE["calls"][0], press=[{"at": 1, "button": "pause"}])]
    for changes in ({"power": power}, {"calls": press}):
        (tmp_path / "s.json").write_text(json.dumps(example(hat="mine.json", **changes), indent=1))
        with pytest.raises(ScenarioError) as info:
            load_scenario(str(tmp_path / "s.json"))
        assert "the HAT 'lk-4l' (%s) has no" % (tmp_path / "mine.json") in str(info.value), info.value
    # A shipped HAT is named by its id alone.
    with pytest.raises(ScenarioError, match=r"the HAT 'lk-4l' has no pause button on line 1 \("):
        loads_scenario(json.dumps(example(calls=press)), "s.json")


def test_a_scenario_config_naming_another_hat_is_refused():
    """The simulator plays the scenario's "hat"; a "config" naming another (as docs/hats.md
    says to set it in config.json) ran on lk-4l all the same, its buttons refused."""
    for hat, config in ((None, "lk-2lb"), ("lk-2lb", "lk-4l")):
        data = example(config={"hat": config}, **({"hat": hat} if hat else {}))
        if hat:
            data["lines"] = 2
        text = json.dumps(data, indent=1)
        with pytest.raises(ScenarioError) as info:
            loads_scenario(text, "s.json")
        error = str(info.value)
        assert ': config.hat: the simulated board has the scenario\'s "hat" (%r)' % (hat or "lk-4l") in error
        assert 'give the HAT as "hat": "%s" at the top of the scenario' % config in error
        assert text_at(text, info.value.position).startswith('"%s"' % config)
    calls = EXAMPLE["calls"][:2]
    same = loads_scenario(json.dumps(example(hat="lk-2lb", lines=2, calls=calls, config={"hat": "lk-2lb"})))
    assert same.hat == "lk-2lb"


def _allowed(doc, tmp_path):
    """The fields the scenario reader allows where ``doc`` has its unknown one ``zzz``."""
    import re

    from board.sim.scenario import load_scenario

    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(Exception) as refused:
        load_scenario(str(path))
    return re.search(r"allowed here: (.*)$", str(refused.value)).group(1).split(", ")


def test_docs_scenarios_md_names_every_field_the_reader_takes(tmp_path):
    """``sources`` was read and not in the README's guide to writing a scenario."""
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    base = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []}
    call = {"line": 1, "at": 1.0, "direction": "in", "zzz": 1}
    for doc in (dict(base, zzz=1), dict(base, calls=[call])):
        fields = _allowed(doc, tmp_path)
        assert len(fields) > 4
        missing = [f for f in fields if "| `%s` |" % f not in text]
        assert missing == [], missing


def test_docs_scenarios_md_sums_up_every_field_of_dial_and_caller_id(tmp_path):
    """The call table's ``dial`` row said ``{digits, mode, delay, on_ms, off_ms}``: no
    ``answer_after``, ``ringback`` nor ``caller_speech``, which an unanswered call needs."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    base = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1}
    out = {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "1", "zzz": 1}}
    inb = {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "1", "zzz": 1}}
    for field, call in (("dial", out), ("caller_id", inb)):
        summed = re.search(r"\| `%s` \|[^|]*\|[^{|]*\{([^}]*)\}" % field, text).group(1).split(", ")
        assert sorted(summed) == sorted(_allowed(dict(base, calls=[call]), tmp_path)), field


def test_docs_scenarios_md_holds_the_guide_in_the_readers_docstrings():
    """The guide is written once, in the docstrings of the code that reads and plays a
    scenario; docs/scenarios.md had fallen behind them (limits, outbound timing)."""
    import pathlib

    import board.sim.scenario
    import board.sim.timeline

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    ruler = "-" * 76 + "\n"
    for module in (board.sim.scenario, board.sim.timeline):
        guide = module.__doc__.split(ruler)[1]
        assert guide in text, "docs/scenarios.md differs from %s's docstring" % module.__name__


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"line_lost_for": 30.0}, 'calls[0].line_lost_for: only applies to "hangup": "line_lost"'),
        (
            {"hangup": "line_lost", "line_lost_for": 10.0, "hangup_delay": 10.0},
            "calls[0].hangup_delay: must be less than line_lost_for (10 s)",
        ),
        ({"hangup": "line_lost", "line_lost_for": 2.0}, "calls[0].line_lost_for: must be"),
    ],
)
def test_a_line_lost_mid_call_is_checked(extra, message):
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "calls": [dict({"line": 1, "at": 1.0, "direction": "in", "talk": 5.0}, **extra)],
    }
    with pytest.raises(ScenarioError) as err:
        loads_scenario(json.dumps(spec))
    assert message in str(err.value)
