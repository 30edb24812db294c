"""JSON/TOML documents with positions, and the Node reader the validators use."""

import pytest

from board import jsonpos
from firmware.errors import ConfigError, ScenarioError

from support.positions import text_at

TEXT = """{
  "a": [1, {"b": "x"}],
  "c" : {"d": [true, null],
         "e": 2.5}
}"""


def test_positions_of_values_and_keys():
    doc = jsonpos.loads(TEXT)
    assert doc.data == {"a": [1, {"b": "x"}], "c": {"d": [True, None], "e": 2.5}}
    assert doc.position(()) == (1, 1)
    assert text_at(TEXT, doc.position(("a",))).startswith('[1, {"b"')
    assert text_at(TEXT, doc.position(("a", 1, "b"))).startswith('"x"')
    assert text_at(TEXT, doc.position(("c", "d", 1))).startswith("null")
    assert text_at(TEXT, doc.position(("c", "e"))).startswith("2.5")
    assert text_at(TEXT, doc.key_position(("c", "e"))).startswith('"e"')
    # A path that does not exist falls back to its nearest ancestor.
    assert doc.position(("c", "nope", 3)) == doc.position(("c",))


@pytest.mark.parametrize(
    "path, text",
    [
        ((), ""),
        (("calls", 2, "rings"), "calls[2].rings"),
        ((0, "a"), "[0].a"),
        (("lines", 2, "pins", "ring", "gpio"), "lines[2].pins.ring.gpio"),
    ],
)
def test_format_path(path, text):
    assert jsonpos.format_path(path) == text


def test_malformed_json_reports_the_json_modules_position():
    with pytest.raises(ScenarioError) as info:
        jsonpos.loads('{"a": 1,\n  "b": }', "x.json", error=ScenarioError)
    assert info.value.position == (2, 8)
    assert str(info.value).startswith("x.json:2:8: malformed JSON")


def test_duplicate_keys_are_rejected_at_the_second_key():
    text = '{"a": 1,\n "a": 2}'
    with pytest.raises(ConfigError) as info:
        jsonpos.loads(text)
    assert info.value.field == "a" and info.value.position == (2, 2)


def test_nan_and_infinity_are_rejected_at_their_position():
    for literal in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ConfigError) as info:
            jsonpos.loads('{"NaN": 1,\n "a": %s}' % literal, "s.json")
        assert str(info.value) == "s.json:2:7: %s is not allowed in a data file" % literal


def test_a_number_too_large_for_a_float_is_refused_where_it_is_written():
    """JSON's 1e400 (and TOML's inf) read as infinity, and were refused as "must be a
    number, not the number inf"."""
    with pytest.raises(ConfigError) as info:
        jsonpos.loads('{"info": "1e400",\n "at": 1e400}', "s.json")
    assert str(info.value) == "s.json:2:8: the number 1e400 is too large"
    for literal in ("inf", "-inf", "nan"):
        with pytest.raises(ConfigError) as info:
            jsonpos.loads('speech = "info"\nat = %s\n' % literal, "s.toml", toml=True)
        assert str(info.value) == "s.toml:2:6: %s is not allowed in a data file" % literal


def test_toml_parses_without_positions():
    doc = jsonpos.loads('start = "x"\n[[calls]]\nline = 1\n', toml=True)
    assert doc.data == {"start": "x", "calls": [{"line": 1}]}
    assert doc.position(("calls", 0, "line")) is None


def test_malformed_toml_reports_its_position():
    with pytest.raises(ConfigError) as info:
        jsonpos.loads("a = 1\nb = = 2\n", "s.toml", toml=True)
    assert info.value.position == (2, 5)
    assert "malformed TOML" in str(info.value)


def test_load_reads_files_by_suffix_and_accepts_a_bom(tmp_path):
    (tmp_path / "a.json").write_bytes(b'\xef\xbb\xbf{"x": 1}')
    (tmp_path / "a.toml").write_text("x = 1\n")
    assert jsonpos.load(tmp_path / "a.json").data == {"x": 1}
    assert jsonpos.load(tmp_path / "a.toml").data == {"x": 1}


def test_load_names_a_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read") as info:
        jsonpos.load(tmp_path / "nope.json", error=ScenarioError)
    assert info.value.source.endswith("nope.json")


def test_node_reports_unknown_keys_at_the_key_with_a_suggestion():
    text = '{"rings": 2,\n "rigns": 3}'
    doc = jsonpos.loads(text)
    with pytest.raises(ConfigError, match="did you mean 'rings'") as info:
        doc.root.object((), ("rings",))
    assert info.value.field == "rigns" and info.value.position == (2, 2)


def test_node_missing_required_field():
    doc = jsonpos.loads('{"a": {}}')
    with pytest.raises(ConfigError, match="missing required field 'b'") as info:
        doc.root.child("a").object(("b",))
    assert info.value.field == "a"


@pytest.mark.parametrize(
    "value, call, message",
    [
        ("true", lambda n: n.as_int(), "whole number"),
        ("1.5", lambda n: n.as_int(), "whole number"),
        ('"0x1g"', lambda n: n.as_int(hex_ok=True), "hex"),
        ("300", lambda n: n.as_int(0, 0xFF, hex_ok=True), "must be 0 to 255"),
        ('"0x100"', lambda n: n.as_int(0, 0xFF, hex_ok=True), "must be 0x00 to 0xff, not 0x100"),
        ('"1"', lambda n: n.as_number(), "must be a number"),
        ("0", lambda n: n.as_number(0, lo_open=True), "more than 0"),
        ("1", lambda n: n.as_bool(), "true or false"),
        ('"x"', lambda n: n.as_str(choices=("a", "b")), "one of 'a', 'b'"),
        ("[1]", lambda n: n.items(min_len=2), "at least 2"),
        ("{}", lambda n: n.items(), "must be a list"),
    ],
)
def test_node_type_and_range_errors_name_field_and_position(value, call, message):
    text = '{"outer": {\n  "v": %s}}' % value
    node = jsonpos.loads(text).root.child("outer").child("v")
    with pytest.raises(ConfigError, match=message) as info:
        call(node)
    assert info.value.field == "outer.v"
    assert info.value.position == (2, 8)


def test_node_hex_strings_are_read_as_numbers():
    node = jsonpos.loads('{"a": "0x18"}').root.child("a")
    assert node.as_int(0x03, 0x77, hex_ok=True) == 0x18
