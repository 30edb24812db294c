"""HAT data files: the shipped one loads; every kind of bad input is rejected
naming the field and where it is in the file."""

import dataclasses
import json
from pathlib import Path

import pytest

from board.hat import Hat, PinSpec, list_hats, load_hat, loads_hat
from firmware.errors import HatError

from support.positions import assert_names_field_and_position


def shipped():
    """The shipped HAT file's data, to mutate."""
    return json.loads(Path(load_hat("lk-4l").source).read_text())


def test_the_shipped_hat_loads():
    hat = load_hat("lk-4l")
    assert isinstance(hat, Hat) and hat.id == "lk-4l"
    assert hat.audio.rate == 8000 and hat.audio.channels == 4 and hat.audio.format == "S16_LE"
    assert hat.audio.period_frames == 160
    assert [spec.line for spec in hat.lines] == [1, 2, 3, 4]
    assert hat.line(1).pins["hook"] == PinSpec(gpio=4, active_low=True, pull="up")
    assert hat.line(4).pins["power"].gpio == 27
    assert [spec.capture_channel for spec in hat.lines] == [0, 1, 2, 3]
    codec = hat.i2c.devices[0]
    assert hat.i2c.bus == 1 and codec.address == 0x18
    assert codec.init[1] == (0x01, 0x80) and len(codec.init) == 8
    assert "lk-4l" in list_hats()


def test_a_hat_in_the_hats_folder_must_have_its_files_name_for_id(tmp_path, monkeypatch):
    """docs/hats.md: copy lk-4l.json to board/hats/NAME.json; a copy that kept "id": "lk-4l"
    would be called the LK-4L in every message of the box configured with "hat": NAME."""
    import board.hat

    data = shipped()
    monkeypatch.setattr(board.hat, "hats_dir", lambda: tmp_path)
    (tmp_path / "acme-2.json").write_text(json.dumps(data, indent=1))
    with pytest.raises(HatError) as info:
        load_hat("acme-2")
    assert_names_field_and_position(
        info.value,
        (tmp_path / "acme-2.json").read_text(),
        str(tmp_path / "acme-2.json"),
        "id",
        "must be 'acme-2', the name of its file (acme-2.json), not 'lk-4l'",
        '"lk-4l"',
    )
    data["id"] = "acme-2"
    (tmp_path / "acme-2.json").write_text(json.dumps(data, indent=1))
    assert load_hat("acme-2").id == "acme-2"
    # A HAT given by path may keep any id (tests and tools load copies).
    assert load_hat(str(tmp_path / "acme-2.json")).id == "acme-2"


def test_hat_is_frozen():
    hat = load_hat("lk-4l")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hat.id = "x"


def test_load_by_path_and_bare_int_pins(tmp_path):
    data = shipped()
    data["lines"] = [
        {
            "line": 1,
            "capture_channel": 0,
            "playback_channel": 0,
            "pins": {"hook": 2, "ring": "0x03", "polarity": {"gpio": 5}, "led": {"gpio": 6, "active": "low"}},
        }
    ]
    del data["i2c"], data["mcu"]  # the MCU talks over I2C: both go
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    hat = load_hat(str(path))
    assert hat.i2c is None
    assert hat.line(1).pins == {
        "hook": PinSpec(2),
        "ring": PinSpec(3),
        "polarity": PinSpec(5),
        "led": PinSpec(6, True, "floating"),
    }


def test_lines_may_be_listed_in_any_order():
    data = shipped()
    data["lines"].reverse()
    assert [spec.line for spec in loads_hat(json.dumps(data)).lines] == [1, 2, 3, 4]


def test_unknown_hat_name_lists_the_shipped_ones():
    with pytest.raises(HatError, match="lk-4l"):
        load_hat("no-such-hat")


def test_missing_file_is_a_hat_error(tmp_path):
    with pytest.raises(HatError, match="cannot read"):
        load_hat(str(tmp_path / "x.json"))


def test_malformed_json_has_a_position():
    with pytest.raises(HatError) as info:
        loads_hat('{"format": 1,\n "id": }', "h.json")
    assert info.value.position == (2, 8)


def _set(path, value):
    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


BAD = [
    # (what, mutation, field, message, text at the position)
    ("unknown top-level key", _set(("colour",), "red"), "colour", "unknown field", '"colour"'),
    (
        "unknown pin key",
        _set(("lines", 1, "pins", "ring", "pul"), "up"),
        "lines[1].pins.ring.pul",
        "did you mean 'pull'",
        '"pul"',
    ),
    (
        "unknown signal",
        _set(("lines", 0, "pins", "buzzer"), 3),
        "lines[0].pins.buzzer",
        "unknown field",
        '"buzzer"',
    ),
    (
        "missing required signal",
        _delete(("lines", 2, "pins", "polarity")),
        "lines[2].pins",
        "missing required field 'polarity'",
        "{",
    ),
    (
        "GPIO out of range",
        _set(("lines", 2, "pins", "ring", "gpio"), 28),
        "lines[2].pins.ring.gpio",
        "must be 0 to 27",
        "28",
    ),
    (
        "GPIO wrong type",
        _set(("lines", 0, "pins", "hook", "gpio"), "four"),
        "lines[0].pins.hook.gpio",
        "whole number",
        '"four"',
    ),
    (
        "GPIO used twice",
        _set(("lines", 3, "pins", "led"), 4),
        "lines[3].pins.led",
        "GPIO 4 is already used by lines[0].pins.hook",
        "4",
    ),
    (
        "bad active",
        _set(("lines", 0, "pins", "hook", "active"), "lo"),
        "lines[0].pins.hook.active",
        "'high', 'low'",
        '"lo"',
    ),
    (
        "bad pull",
        _set(("lines", 0, "pins", "hook", "pull"), "none"),
        "lines[0].pins.hook.pull",
        "'up', 'down', 'floating'",
        '"none"',
    ),
    (
        "capture channel >= channels",
        _set(("lines", 3, "capture_channel"), 4),
        "lines[3].capture_channel",
        "must be 0 to 3",
        "4",
    ),
    (
        "playback channel used twice",
        _set(("lines", 3, "playback_channel"), 0),
        "lines[3].playback_channel",
        "already used by line 1",
        "0",
    ),
    (
        "duplicate line number",
        _set(("lines", 2, "line"), 2),
        "lines[2].line",
        "line 2 is already defined by lines[1]",
        "2",
    ),
    ("line outside 1..N", _set(("lines", 2, "line"), 5), "lines[2].line", "must be 1 to 4", "5"),
    (
        "I2C address too high",
        _set(("i2c", "devices", 0, "address"), "0x78"),
        "i2c.devices[0].address",
        "must be 0x03 to 0x77, not 0x78",
        '"0x78"',
    ),
    (
        "I2C address too low",
        _set(("i2c", "devices", 0, "address"), 2),
        "i2c.devices[0].address",
        "must be 3 to 119",
        "2",
    ),
    (
        "init byte too big",
        _set(("i2c", "devices", 0, "init", 3, 1), "0x100"),
        "i2c.devices[0].init[3][1]",
        "must be 0x00 to 0xff",
        '"0x100"',
    ),
    (
        "init not a pair",
        _set(("i2c", "devices", 0, "init", 2), [1, 2, 3]),
        "i2c.devices[0].init[2]",
        "pair",
        "[",
    ),
    ("rate", _set(("audio", "rate"), 44100), "audio.rate", "8000, 16000, 48000", "44100"),
    ("sample format", _set(("audio", "format"), "S24_LE"), "audio.format", "'S16_LE'", '"S24_LE"'),
    ("channels", _set(("audio", "channels"), 0), "audio.channels", "must be 1 to 32", "0"),
    ("format version", _set(("format",), 2), "format", "unsupported HAT file format", "2"),
    ("bool as number", _set(("audio", "channels"), True), "audio.channels", "whole number", "true"),
    ("no lines", _set(("lines",), []), "lines", "at least 1", "[]"),
    ("missing audio", _delete(("audio",)), None, "missing required field 'audio'", "{"),
]


@pytest.mark.parametrize("what, mutate, field, message, at", BAD, ids=[b[0] for b in BAD])
def test_bad_hat_files_are_rejected_naming_field_and_position(what, mutate, field, message, at):
    data = shipped()
    mutate(data)
    text = json.dumps(data, indent=2)
    with pytest.raises(HatError) as info:
        loads_hat(text, "bad.json")
    assert_names_field_and_position(info.value, text, "bad.json", field, message, at)


def test_docs_hats_md_names_every_field_the_hat_reader_takes():
    """docs/hats.md's guide to adding a HAT left out mcu, sense and description, so a HAT
    made from it could not be given a power cut in a scenario, nor say why."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "hats.md").read_text()
    guide = text[text.index("## Adding a HAT") :]
    places = (
        lambda d: d,
        lambda d: d["audio"],
        lambda d: d["i2c"],
        lambda d: d["i2c"]["devices"][0],
        lambda d: d["mcu"],
        lambda d: d["mcu"]["holdup"],
        lambda d: d["sense"],
        lambda d: d["lines"][0],
        lambda d: d["lines"][0]["pins"],
        lambda d: d["lines"][0]["pins"]["hook"],
    )
    fields = set()
    for place in places:
        data = shipped()
        place(data)["zzz"] = 1
        with pytest.raises(HatError) as refused:
            loads_hat(json.dumps(data))
        fields.update(re.search(r"allowed here: (.*)$", str(refused.value)).group(1).split(", "))
    assert {"mcu", "farads", "ring_vrms", "pause_button", "pull"} <= fields
    missing = sorted(f for f in fields if "`%s`" % f not in guide and '"%s"' % f not in guide)
    assert missing == [], missing
