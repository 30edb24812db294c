"""One way to report a bad configuration: ``file:line:col: field.path: message``.

config.json, a scenario (and the config it carries), a HAT file and a
configuration export being imported all say where the bad value is and
which field it is, the same way.
"""

import json
import re

import pytest

from board.hat import load_hat
from board.sim.scenario import load_scenario
from firmware import cli
from firmware.config import BoxConfig, load_config, save_config
from firmware.errors import ConfigError, HatError, ScenarioError

WHERE = re.compile(r"^(?P<file>\S+):(?P<line>\d+):(?P<col>\d+): (?P<field>[\w.\[\]]+): (?P<message>.+)")


def parts(error_text, file_name):
    m = WHERE.match(error_text)
    assert m, error_text
    assert m["file"].endswith(file_name), error_text
    return int(m["line"]), int(m["col"]), m["field"], m["message"]


def value_at(text, line, col):
    return text.splitlines()[line - 1][col - 1 :]


def test_config_json_names_file_line_column_and_field(tmp_path):
    config = BoxConfig().to_dict()
    config["policy"]["rules"]["lines"] = [{"line": 1, "mode": "sometimes"}]
    text = json.dumps(config, indent=2)
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    line, col, field, message = parts(str(info.value), "config.json")
    assert field == "policy.rules.lines[0].mode" and "must be one of" in message
    assert value_at(text, line, col).startswith('"sometimes"')


def test_an_unknown_setting_points_at_its_key(tmp_path):
    text = '{\n  "country": "uk",\n  "preroll": 500\n}\n'
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "config.json") + ":3:3: preroll: unknown setting")


def test_a_saved_config_loads_back(tmp_path):
    save_config(tmp_path, BoxConfig(country="us", preroll_ms=500))
    assert load_config(tmp_path) == BoxConfig(country="us", preroll_ms=500)


def test_a_scenario_names_file_line_column_and_field_also_inside_its_config(tmp_path):
    scenario = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 2,
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": "two"}],
        "config": {"policy": {"retention": {"default_days": 0}}},
    }
    path = tmp_path / "day.json"
    text = json.dumps(scenario, indent=1)
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    line, col, field, _ = parts(str(info.value), "day.json")
    assert field == "calls[0].rings" and value_at(text, line, col).startswith('"two"')
    scenario["calls"][0]["rings"] = 2
    text = json.dumps(scenario, indent=1)
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, parse_config=BoxConfig.from_dict)
    line, col, field, _ = parts(str(info.value), "day.json")
    assert field == "config.policy.retention.default_days"
    assert value_at(text, line, col).startswith("0")


def test_a_hat_file_names_file_line_column_and_field(tmp_path):
    hat = json.loads(open("board/hats/lk-4l.json").read())
    hat["audio"]["rate"] = 7
    text = json.dumps(hat, indent=2)
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(HatError) as info:
        load_hat(str(path))
    line, col, field, _ = parts(str(info.value), "x.json")
    assert field == "audio.rate" and value_at(text, line, col).startswith("7")


def test_a_config_import_names_file_line_column_and_field(tmp_path, capsys):
    doc = {
        "linekeeper_config": 1,
        "config": {"policy": {"retention": {"rules": [{"name": "x", "direction": "sideways"}]}}},
    }
    text = json.dumps(doc, indent=2)
    path = tmp_path / "export.json"
    path.write_text(text)
    (tmp_path / "box").mkdir()
    assert cli.main(["config", "import", str(path), "--data-dir", str(tmp_path / "box")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    err = err[err.index(str(path)) :]
    line, col, field, message = parts(err, "export.json")
    assert field == "config.policy.retention.rules[0].direction"
    assert value_at(text, line, col).startswith('"sideways"')
    assert message.endswith("nothing was changed")
    assert not (tmp_path / "box" / "config.json").exists()
