"""Issue 20: an outbound recording decided by rule (it needs the dialled number) still
holds the whole call from off-hook, whatever the ring buffer reaches: no dialled digit
is lost at its start, however slowly the caller dialled."""

import json

import pytest

DIALLED = "01632960302"


@pytest.mark.parametrize("profile", ["pcm", "voice"])
def test_a_slowly_dialled_call_keeps_its_first_digit(lab, tmp_path, profile):
    # The ring buffer holds 16 s (lookback 8 s: 10 s, rounded up to a power of two
    # bytes); dialling starts 10 s after off-hook, a digit a second, and the call is
    # only known to be answered 4 s after the last digit: 26 s after off-hook.
    config = dict(
        lab.policy(rules={"default_mode": "by_rule", "on_demand": {"lookback_s": 8}}), audio_profile=profile
    )
    calls = [
        {
            "line": 1,
            "at": 1.0,
            "direction": "out",
            "talk": 4.0,
            "dial": {"digits": DIALLED, "delay": 10.0, "on_ms": 100, "off_ms": 1000},
        }
    ]
    data_dir, (call,) = lab.sim(lab.scenario(calls, config=config))
    assert call["recording"] == "complete" and call["number"] == DIALLED
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    wav = tmp_path / "x.wav"
    status, _out, err = lab.export(data_dir, call["id"], wav, pw)
    assert status == 0, err
    status, out, err = lab.cli("analyze", wav, "--json")
    digits = "".join(e["digit"] for e in map(json.loads, out.splitlines()) if e["event"] == "dtmf")
    assert digits == DIALLED
    samples, t0 = lab.decode(data_dir, call["id"])
    # From off-hook: moved earlier onto the encoder's frame grid (20 ms for pcm, 120 ms
    # for voice), by less than a frame of the idle line, so its chunks share the
    # journal's commits with every other line's (docs/journal.md).
    off_hook_us = lab.wall_us(call["started_at"])
    assert off_hook_us - (120_000 if profile == "voice" else 20_000) < t0 <= off_hook_us


def test_a_call_the_rules_skip_leaves_nothing(lab):
    config = lab.policy(
        rules={
            "default_mode": "by_rule",
            "numbers": [{"name": "helplines", "action": "exclude", "patterns": ["0800*"]}],
        }
    )
    calls = [{"line": 1, "at": 1.0, "direction": "out", "talk": 4.0, "dial": {"digits": "08001111"}}]
    data_dir, (call,) = lab.sim(lab.scenario(calls, config=config))
    assert call["policy_decision"] == "skip" and call["recording"] is None
    assert lab.recordings(data_dir) == []


def test_a_rule_minimum_still_drops_a_short_call(lab):
    config = lab.policy(rules={"default_mode": "by_rule", "min_duration_s": 10})
    calls = [
        {"line": 1, "at": 1.0, "direction": "out", "talk": 3.0, "dial": {"digits": DIALLED}},
        {"line": 2, "at": 1.0, "direction": "out", "talk": 14.0, "dial": {"digits": DIALLED}},
    ]
    data_dir, log = lab.sim(lab.scenario(calls, config=config))
    by_line = {c["line"]: c for c in log}
    assert by_line[1]["recording"] is None and by_line[2]["recording"] == "complete"
    assert [r["call_id"] for r in lab.recordings(data_dir)] == [by_line[2]["id"]]
