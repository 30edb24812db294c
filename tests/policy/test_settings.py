"""The policy section of config.json: typed, validated whole, every bad field named."""

import json
import os
import stat

import pytest

from firmware.config import BoxConfig, load_config, load_config_file, save_config
from firmware.errors import ConfigError
from firmware.policy.settings import BusinessHours, LineMode, PolicySettings, RecordingRules

FULL = {
    "version": 1,
    "rules": {
        "default_mode": "always",
        "lines": [
            {"line": 3, "mode": "never"},
            {"line": 2, "mode": "by_rule"},
            {"line": 4, "mode": "on_demand"},
        ],
        "directions": ["in"],
        "hours": {
            "timezone": "Europe/London",
            "days": {"mon": ["09:00-17:30"], "tue": ["09:00-12:30", "13:30-24:00"]},
            "holidays": ["2026-12-25"],
        },
        "numbers": [
            {"name": "helplines", "action": "exclude", "patterns": ["0800*", "+44808*"]},
            {"name": "clients", "action": "include", "patterns": ["01632 96????"]},
        ],
        "min_duration_s": 10,
        "sample_percent": 30,
        "on_demand": {"dtmf_code": "*9", "button": True, "from_start": False, "lookback_s": 60},
    },
    "consent": {
        "inbound": "announcement",
        "outbound": "tone",
        "announcement": {"text": "Calls are recorded.", "voice": "en-gb", "file": None, "level_dbm0": -16},
        "warning_tone": {
            "enabled": True,
            "frequency_hz": 1400,
            "duration_ms": 500,
            "interval_s": 15,
            "level_dbm0": -13,
        },
        "record_if_notice_failed": False,
    },
    "pci": {"pause_code": "*1", "resume_code": "*2", "button": True, "auto_resume_s": 120},
}


def test_defaults_record_every_call_without_notice():
    policy = BoxConfig().policy
    assert policy == PolicySettings()
    assert {policy.rules.mode(n) for n in range(1, 5)} == {"always"}
    assert policy.consent.inbound == policy.consent.outbound == "off"
    assert not policy.consent.warning_tone.enabled


# The settings of policy.consent the release before (82998a1, firmware/policy/consent.py
# ConsentSettings) takes, frozen here as it was; any other is refused there, as unknown.
OLDER_RELEASE_CONSENT = frozenset(
    {"inbound", "outbound", "announcement", "warning_tone", "record_if_notice_failed"}
)


def older_release_takes(doc):
    return set(doc["policy"]["consent"]) <= OLDER_RELEASE_CONSENT


def test_the_release_before_takes_a_default_configuration():
    assert older_release_takes(BoxConfig().to_dict())


def test_a_config_json_holding_require_notice_is_read_and_moved_out_of_it(tmp_path):
    """As a development build of this release wrote it: read as it is, and moved to its marker (the
    web UI's start does it), the rest of the file as it was."""
    from firmware.config import move_require_notice

    doc = BoxConfig().to_dict()
    doc["policy"]["consent"]["require_notice"] = True
    doc["policy"]["rules"]["numbers"] = [
        {"name": "h", "action": "exclude", "patterns": ["lksealed:as-it-was"]}
    ]
    (tmp_path / "config.json").write_text(json.dumps(doc))
    assert move_require_notice(tmp_path) is True
    with open(tmp_path / "config.json") as f:
        written = json.load(f)
    assert older_release_takes(written)
    del doc["policy"]["consent"]["require_notice"]
    assert written == doc
    assert os.path.exists(tmp_path / "waits-for-notice")
    assert move_require_notice(tmp_path) is False


def test_require_notice_is_written_only_where_it_is_set(tmp_path):
    """Set only by `linekeeper init`: every other configuration stays as the release
    before it wrote it, so that one reads it."""
    assert "require_notice" not in BoxConfig().to_dict()["policy"]["consent"]
    waiting = BoxConfig.from_dict({"policy": {"consent": {"require_notice": True}}})
    assert waiting.to_dict()["policy"]["consent"]["require_notice"] is True
    save_config(tmp_path, waiting)
    consent = load_config(tmp_path).policy.consent
    assert consent.require_notice and consent.waits_for_notice()
    # Not in config.json: the release before refuses a setting it does not know, and its
    # recorder would not load the configuration after a rollback. A marker beside it says it.
    with open(tmp_path / "config.json") as f:
        written = json.load(f)
    assert older_release_takes(written)
    assert os.path.exists(tmp_path / "waits-for-notice")
    save_config(tmp_path, load_config(tmp_path).replace())  # saved again (a page): kept
    assert load_config(tmp_path).policy.consent.require_notice
    save_config(tmp_path, BoxConfig())  # (an import that says require_notice false)
    assert not os.path.exists(tmp_path / "waits-for-notice")
    assert not load_config(tmp_path).policy.consent.require_notice
    # Any notice set, a beep or the warning tone alone included, is one.
    for told in ({"inbound": "tone"}, {"outbound": "announcement"}, {"warning_tone": {"enabled": True}}):
        doc = {"policy": {"consent": dict(told, require_notice=True)}}
        assert not BoxConfig.from_dict(doc).policy.consent.waits_for_notice(), told


def test_round_trip_through_config_json(tmp_path):
    config = BoxConfig.from_dict({"country": "uk", "policy": FULL})
    save_config(tmp_path, config)
    path = tmp_path / "config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_config(tmp_path)
    assert again == config
    assert again.policy.rules.mode(3) == "never" and again.policy.rules.mode(1) == "always"
    assert again.policy.rules.hours.windows(1) == [(540, 750), (810, 1440)]
    saved = json.loads(path.read_text())["policy"]["rules"]["lines"][0]
    assert saved == {"line": 3, "mode": "never"}


def _with(path, value):
    doc = json.loads(json.dumps(FULL))
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    node[last] = value
    return doc


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("rules", "lines", 2, "mode"), "sometimes", "policy.rules.lines[2].mode"),
        (("rules", "lines", 1, "line"), 3, "policy.rules.lines[1].line"),
        (("rules", "lines", 0, "colour"), "red", "policy.rules.lines[0].colour"),
        (("rules", "lines", 1, "outside_line"), "9a", "policy.rules.lines[1].outside_line"),
        (("rules", "lines", 1, "outside_line"), "901", "policy.rules.lines[1].outside_line"),
        (("rules", "lines", 1, "outside_line"), 9, "policy.rules.lines[1].outside_line"),
        (("rules", "directions"), ["sideways"], "policy.rules.directions[0]"),
        (("rules", "hours", "days", "mon", 0), "9-5", "policy.rules.hours.days.mon[0]"),
        (("rules", "hours", "days", "mon", 0), "17:00-09:00", "policy.rules.hours.days.mon[0]"),
        (("rules", "hours", "days", "someday"), [], "policy.rules.hours.days.someday"),
        (("rules", "hours", "holidays", 0), "25/12/2026", "policy.rules.hours.holidays[0]"),
        (("rules", "hours", "timezone"), "Mars/Olympus", "policy.rules.hours.timezone"),
        (("rules", "numbers", 0, "patterns", 1), "08OO*", "policy.rules.numbers[0].patterns[1]"),
        (("rules", "numbers", 1, "action"), "maybe", "policy.rules.numbers[1].action"),
        (("rules", "numbers", 1, "name"), "helplines", "policy.rules.numbers[1].name"),
        (("rules", "min_duration_s"), -1, "policy.rules.min_duration_s"),
        (("rules", "sample_percent"), 101, "policy.rules.sample_percent"),
        (("rules", "sample_percent"), True, "policy.rules.sample_percent"),
        (("rules", "on_demand", "dtmf_code"), "*1", "policy.pci.pause_code"),
        (("rules", "on_demand", "lookback_s"), 5, "policy.rules.on_demand.lookback_s"),
        (("rules", "personal"), {"dtmf_code": "*9"}, "policy.rules.personal.dtmf_code"),
        (("rules", "personal"), {"dtmf_code": "*12"}, "policy.pci.pause_code"),
        (("rules", "personal"), {"dtmf_code": "7"}, "policy.rules.personal.dtmf_code"),
        (("rules", "personal"), {"dtmf_code": "#"}, "policy.rules.personal.dtmf_code"),
        (("rules", "personal"), {"dtmf_code": "*7", "lines": []}, "policy.rules.personal.lines"),
        (("rules", "personal"), {"dtmf_code": "*7", "lines": [1, 1]}, "policy.rules.personal.lines[1]"),
        (("rules", "personal"), {"dtmf_code": "*7", "lines": [0]}, "policy.rules.personal.lines[0]"),
        (("rules", "personal"), {"dtmf_code": "*7", "lines": 2}, "policy.rules.personal.lines"),
        (("consent", "inbound"), "song", "policy.consent.inbound"),
        (("consent", "announcement", "file"), "../etc/passwd", "policy.consent.announcement.file"),
        (("consent", "announcement", "text"), " ", "policy.consent.announcement.text"),
        (("consent", "warning_tone", "level_dbm0"), 3, "policy.consent.warning_tone.level_dbm0"),
        (("consent", "warning_tone", "duration_ms"), 20000, "policy.consent.warning_tone.duration_ms"),
        (("consent", "record_if_notice_failed"), "no", "policy.consent.record_if_notice_failed"),
        (("consent", "require_notice"), "yes", "policy.consent.require_notice"),
        (("pci", "resume_code"), "*1", "policy.pci.resume_code"),
        (("pci", "auto_resume_s"), 0, "policy.pci.auto_resume_s"),
        (("pci", "pause_code"), "*1x", "policy.pci.pause_code"),
        (("version",), 7, "policy.version"),
        (("surprise",), 1, "policy.surprise"),
    ],
)
def test_every_bad_field_is_named_and_nothing_is_taken(tmp_path, path, value, field):
    doc = _with(path, value)
    (tmp_path / "config.json").write_text(json.dumps({"policy": doc}))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert err.value.field == field, str(err.value)
    assert field in str(err.value) and "config.json" in str(err.value)


def test_policy_must_be_an_object(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"policy": []}))
    with pytest.raises(ConfigError, match="policy: must be an object"):
        load_config_file(tmp_path / "c.json")


def test_the_personal_call_code_says_what_is_wrong_with_it():
    with pytest.raises(ConfigError) as err:
        PolicySettings.from_dict(_with(("rules", "personal"), {"dtmf_code": "7"}))
    assert "must start with * or # and have 2 to 8 keys" in str(err.value)
    with pytest.raises(ConfigError) as err:
        PolicySettings.from_dict(_with(("rules", "personal"), {"dtmf_code": "*12"}))
    assert "the pause code for card details (*1) clashes with the personal-call code (*12)" in str(err.value)


def test_the_personal_call_code_is_written_only_where_it_is_on():
    """Off (the default) it is left out of config.json, which the release before then reads
    (it refuses a setting it does not know); on, it is written and read back."""
    assert "personal" not in BoxConfig().to_dict()["policy"]["rules"]
    doc = _with(("rules", "personal"), {"dtmf_code": "#7", "lines": [2, 1]})
    written = PolicySettings.from_dict(doc).to_dict()
    assert written["rules"]["personal"] == {"dtmf_code": "#7", "lines": [2, 1]}
    again = PolicySettings.from_dict(written).rules.personal
    assert again.on(1) and again.on(2) and not again.on(3)
    every = PolicySettings.from_dict(_with(("rules", "personal"), {"dtmf_code": "#7"})).rules.personal
    assert every.lines is None and every.on(3)


def test_the_outside_line_digit_says_the_line_and_what_is_wrong_with_it():
    with pytest.raises(ConfigError) as err:
        PolicySettings.from_dict(_with(("rules", "lines", 1, "outside_line"), "*9"))
    assert err.value.field == "policy.rules.lines[1].outside_line"
    assert "line 2's outside-line digit must be 1 or 2 digits" in str(err.value)
    assert "not '*9'" in str(err.value)


def test_the_outside_line_digit_is_written_only_where_a_line_has_one():
    """None (the default) is left out of config.json, which the release before then reads
    (it refuses a setting it does not know); a line's digit is written and read back."""
    doc = _with(("rules", "lines", 1, "outside_line"), "9")
    written = PolicySettings.from_dict(doc).to_dict()
    assert written["rules"]["lines"] == [
        {"line": 3, "mode": "never"},
        {"line": 2, "mode": "by_rule", "outside_line": "9"},
        {"line": 4, "mode": "on_demand"},
    ]
    rules = PolicySettings.from_dict(written).rules
    assert (rules.outside_line(2), rules.outside_line(3), rules.outside_line(1)) == ("9", "", "")
    assert rules.outside_lines() == {2: "9"}
    assert rules.with_modes({2: "never"}).outside_line(2) == "9"  # made private, still on the PBX


def test_objects_built_in_code_are_checked_too():
    with pytest.raises(ConfigError) as err:
        RecordingRules(lines=(LineMode(1, "sometimes"),))
    assert err.value.field == "policy.rules.lines[0].mode"
    with pytest.raises(ConfigError):
        BusinessHours(timezone="Nowhere/Else")


def test_with_modes_sets_lines_and_keeps_the_others():
    rules = RecordingRules(lines=(LineMode(2, "by_rule"), LineMode(3, "on_demand")))
    rules = rules.with_modes({1: "never", 3: "always"})
    assert [(m.line, m.mode) for m in rules.lines] == [(1, "never"), (2, "by_rule"), (3, "always")]


def test_a_code_that_ends_with_another_is_refused():
    """Keys are matched by how the keys typed so far end (firmware/policy/engine.py on_key),
    the record code first: a personal-call code of #*9 was taken for the record code *9 at
    its last key, and asked for a recording of the call its staff member meant to keep out
    of one."""
    with pytest.raises(ConfigError) as err:
        PolicySettings.from_dict(_with(("rules", "personal"), {"dtmf_code": "#*9"}))
    assert err.value.field == "policy.rules.personal.dtmf_code"
    assert (
        "the personal-call code (#*9) clashes with the code that asks for a recording (*9): "
        "the longer, keyed, would be taken for the shorter at its last key" in str(err.value)
    )


def test_a_pause_and_resume_pair_that_loaded_before_still_loads():
    # Refused for the personal-call code only, which is new: a config.json with such a pause
    # and resume pair loaded in the release before, and a box must not stop recording after
    # an update for it.
    pci = PolicySettings.from_dict(_with(("pci",), dict(FULL["pci"], resume_code="#*1"))).pci
    assert (pci.pause_code, pci.resume_code) == ("*1", "#*1")


def test_a_long_outside_line_digit_is_said_back_as_its_start():
    """config import and the recorder's start say the error: a long paste was repeated whole."""
    with pytest.raises(ConfigError) as err:
        PolicySettings.from_dict(_with(("rules", "lines", 1, "outside_line"), "9" * 30 + "x" * 5000))
    assert str(err.value).endswith("not '%s\u2026'" % ("9" * 20))
    assert "x" not in str(err.value).split(" not ")[-1]
    with pytest.raises(ConfigError) as err:
        PolicySettings.from_dict(_with(("rules", "lines", 1, "outside_line"), list(range(1000))))
    assert str(err.value).endswith("not [0, 1, 2, 3, 4, 5, 6\u2026")


def test_the_callers_details_period_is_read_written_and_checked(tmp_path):
    """``policy.retention.call_details_days``: left out of config.json while unset (a
    release from before it refuses a file naming it), kept when set, and a period out
    of range or not a whole number is refused naming the field, nothing taken."""
    assert "call_details_days" not in BoxConfig().to_dict()["policy"]["retention"]
    (tmp_path / "config.json").write_text(json.dumps({"policy": {"retention": {"call_details_days": 30}}}))
    config = load_config(tmp_path)
    assert config.policy.retention.call_details_days == 30
    save_config(tmp_path, config)
    saved = json.loads((tmp_path / "config.json").read_text())["policy"]["retention"]
    assert saved["call_details_days"] == 30 and load_config(tmp_path) == config
    for bad in (0, 36501, "30", 1.5, True):
        (tmp_path / "config.json").write_text(
            json.dumps({"policy": {"retention": {"call_details_days": bad}}})
        )
        with pytest.raises(ConfigError) as err:
            load_config(tmp_path)
        assert err.value.field == "policy.retention.call_details_days", str(err.value)
        assert "from 1 to 36500" in str(err.value)
