"""Issue 6 acceptance: a test per rule type, end to end through ``linekeeper sim``.

Each scenario carries its box configuration; the decision and its reason are
read back with ``linekeeper calls --json``, and a call decided "skip" must have
no recording at all (no row, no file: nothing of it reached the card).
"""

import json
import os

import pytest

from firmware.bus import Alarm
from firmware.recording.store import read_header


def inbound(line, at, number="01632960123", talk=6.0, **extra):
    return dict(
        {
            "line": line,
            "at": at,
            "direction": "in",
            "rings": 1,
            "talk": talk,
            "caller_id": {"number": number},
        },
        **extra,
    )


def outbound(line, at, digits="02079460000", talk=6.0, **extra):
    return dict(
        {"line": line, "at": at, "direction": "out", "dial": {"digits": digits}, "talk": talk}, **extra
    )


def outcome(calls):
    return [(c["line"], c["policy_decision"], c["policy_reason"]) for c in calls]


def assert_recorded_exactly(lab, data_dir, calls):
    """Calls decided "record" have a complete recording; the others none, and no file."""
    rows = {r["call_id"]: r for r in lab.recordings(data_dir)}
    for call in calls:
        if call["policy_decision"] == "record":
            assert rows[call["id"]]["state"] == "complete", call
        else:
            assert call["id"] not in rows and call["recording"] is None, call
    files = os.listdir(os.path.join(data_dir, "recordings"))
    # Each recording's file and the copy of its wrapped key beside it, and a call copy where
    # the header, written as recording began, has not the number the call log kept (an
    # outbound call recorded from off-hook: docs/FORMAT.md); nothing else.
    by_id = {call["id"]: call for call in calls}
    expected = [r["file"] for r in rows.values()] + [r["id"] + ".lkkey" for r in rows.values()]
    expected += [
        r["id"] + ".lkcall"
        for r in rows.values()
        if read_header(os.path.join(data_dir, "recordings", r["file"]))["number"]
        != by_id[r["call_id"]]["number"]
    ]
    assert sorted(files) == sorted(expected)


def test_line_modes_always_and_never(lab):
    config = lab.policy(rules={"lines": [{"line": 2, "mode": "never"}]})
    data_dir, calls = lab.sim(
        lab.scenario([inbound(1, 1.0), inbound(2, 1.0), outbound(2, 20.0), outbound(1, 20.0)], config=config)
    )
    assert outcome(calls) == [
        (1, "record", "line 1 records every call"),
        (2, "skip", "line 2 is private"),
        (1, "record", "line 1 records every call"),
        (2, "skip", "line 2 is private"),
    ]
    assert_recorded_exactly(lab, data_dir, calls)


def test_direction(lab):
    config = lab.policy(rules={"default_mode": "by_rule", "directions": ["in"]})
    data_dir, calls = lab.sim(lab.scenario([inbound(1, 1.0), outbound(2, 1.0)], config=config))
    assert outcome(calls) == [
        (1, "record", "the call passes every rule"),
        (2, "skip", "outbound calls are not recorded"),
    ]
    assert_recorded_exactly(lab, data_dir, calls)


def test_number_lists(lab):
    config = lab.policy(
        rules={
            "default_mode": "by_rule",
            "numbers": [
                {"name": "helplines", "action": "exclude", "patterns": ["0800*", "0808*"]},
                {"name": "staff homes", "action": "exclude", "patterns": ["01632 96????"]},
            ],
        }
    )
    data_dir, calls = lab.sim(
        lab.scenario(
            [
                inbound(1, 1.0, "08001111111"),
                inbound(2, 1.0, "01632960123"),
                inbound(3, 1.0, "02079460000"),
                outbound(4, 1.0, "08081234567"),
            ],
            config=config,
        )
    )
    assert outcome(calls) == [
        (1, "skip", 'number excluded by rule "helplines"'),
        (2, "skip", 'number excluded by rule "staff homes"'),
        (3, "record", "the call passes every rule"),
        (4, "skip", 'number excluded by rule "helplines"'),
    ]
    assert_recorded_exactly(lab, data_dir, calls)


def test_include_list(lab):
    config = lab.policy(
        rules={
            "default_mode": "by_rule",
            "numbers": [{"name": "clients", "action": "include", "patterns": ["+441632*"]}],
        }
    )
    data_dir, calls = lab.sim(
        lab.scenario(
            [
                inbound(1, 1.0, "01632960123"),
                inbound(2, 1.0, "02079460000"),
                dict(inbound(3, 1.0), caller_id={"absence": "private"}),
            ],
            config=config,
        )
    )
    assert outcome(calls) == [
        (1, "record", 'number included by rule "clients"'),
        (2, "skip", 'number not on an include list ("clients")'),
        (3, "skip", "number withheld: not on an include list"),
    ]
    assert_recorded_exactly(lab, data_dir, calls)


def test_an_exclude_list_holds_on_a_pbx_line_for_a_number_dialled_with_or_without_its_outside_line_digit(
    lab,
):
    """Line 1 is behind a switchboard taking 9 for an outside line, which passes 999
    straight through. 999 dialled alone is excluded as dialled ("99" without the 9 is
    not on the list); 9 999 and 9 0800... without the 9, as before; a number on no
    list is recorded, and so is one on a line with no digit (line 2)."""
    config = lab.policy(
        rules={
            "default_mode": "by_rule",
            "lines": [{"line": 1, "mode": "by_rule", "outside_line": "9"}],
            "numbers": [
                {"name": "emergency and helplines", "action": "exclude", "patterns": ["999", "0800*"]}
            ],
        }
    )
    data_dir, calls = lab.sim(
        lab.scenario(
            [
                outbound(1, 1.0, "999"),
                outbound(1, 20.0, "9999"),
                outbound(1, 40.0, "908001234567"),
                outbound(1, 60.0, "902079460000"),
                outbound(2, 1.0, "999"),
            ],
            config=config,
        )
    )
    excluded = 'number excluded by rule "emergency and helplines"'
    assert sorted((c["line"], c["number"], c["policy_reason"]) for c in calls) == [
        (1, "902079460000", "the call passes every rule"),
        (1, "908001234567", excluded),
        (1, "999", excluded),
        (1, "9999", excluded),
        (2, "999", excluded),
    ]
    assert_recorded_exactly(lab, data_dir, calls)


def test_an_include_list_on_a_pbx_line_matches_the_number_without_its_outside_line_digit_only(lab):
    """An include list records only what is surely on it: on a line whose switchboard
    takes 9, 999 dialled alone is the number 99 to it, and not included by "999"
    (docs/policy.md); 9 999 is, and so is 9 01632..., and 01632... dialled alone."""
    config = lab.policy(
        rules={
            "default_mode": "by_rule",
            "lines": [{"line": 1, "mode": "by_rule", "outside_line": "9"}],
            "numbers": [{"name": "clients", "action": "include", "patterns": ["999", "01632*"]}],
        }
    )
    data_dir, calls = lab.sim(
        lab.scenario(
            [
                outbound(1, 1.0, "999"),
                outbound(1, 20.0, "9999"),
                outbound(1, 40.0, "901632960123"),
                outbound(1, 60.0, "01632960123"),
            ],
            config=config,
        )
    )
    included = 'number included by rule "clients"'
    assert [(c["number"], c["policy_reason"]) for c in calls] == [
        ("999", 'number not on an include list ("clients")'),
        ("9999", included),
        ("901632960123", included),
        ("01632960123", included),
    ]
    assert_recorded_exactly(lab, data_dir, calls)


def test_business_hours_and_holidays(lab):
    # 09:00 Monday 2 March 2026 (GMT); 3 March is a holiday here.
    config = lab.policy(
        rules={
            "default_mode": "by_rule",
            "hours": {
                "timezone": "Europe/London",
                "days": {"mon": ["09:30-17:30"], "tue": ["09:30-17:30"]},
                "holidays": ["2026-03-03"],
            },
        }
    )
    calls = [
        inbound(1, 60.0),  # 09:01 Monday: before opening
        inbound(1, 3600.0),  # 10:00 Monday
        inbound(1, 8.5 * 3600),  # 17:30 Monday: closed
        inbound(1, 25 * 3600.0),  # 10:00 Tuesday, the holiday
        inbound(1, 5 * 86400.0 + 3600),
    ]  # 10:00 Saturday
    # Five simulated days: on the HAT whose MCU warns of a power cut on a GPIO
    # (lk-2lb), not one polled every second over I2C, which would be most of the run.
    data_dir, calls = lab.sim(lab.scenario(calls, lines=2, config=config, hat="lk-2lb"))
    assert [c["policy_reason"] for c in calls] == [
        "outside business hours",
        "inside business hours",
        "outside business hours",
        "public holiday 2026-03-03",
        "outside business hours",
    ]
    assert [c["policy_decision"] for c in calls] == ["skip", "record", "skip", "skip", "skip"]
    assert_recorded_exactly(lab, data_dir, calls)


def test_sampling(lab):
    from firmware.policy import rules
    from firmware.policy.settings import RecordingRules

    config = lab.policy(rules={"default_mode": "by_rule", "sample_percent": 50})
    data_dir, calls = lab.sim(
        lab.scenario([inbound(1 + k % 4, 1.0 + 20 * (k // 4)) for k in range(12)], config=config)
    )
    reasons = {c["policy_reason"] for c in calls}
    assert reasons == {"sampled in (50 %)", "sampled out (50 %)"}
    for call in calls:
        # The same call (line, start) always gets the same answer.
        again = rules.decide(
            RecordingRules(default_mode="by_rule", sample_percent=50),
            call["line"],
            "in",
            call["number"],
            lab.wall_us(call["started_at"]),
        )
        assert again.reason == call["policy_reason"]
    assert_recorded_exactly(lab, data_dir, calls)


def test_minimum_duration_keeps_short_calls_off_the_card(lab):
    config = lab.policy(rules={"default_mode": "by_rule", "min_duration_s": 10})
    doc = lab.scenario(
        [
            inbound(1, 1.0, talk=6.0),
            inbound(2, 1.0, talk=15.0),
            outbound(3, 1.0, talk=9.5),
            outbound(4, 1.0, talk=12.0),
        ],
        config=config,
    )
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [
        (1, "skip", "shorter than 10 s"),
        (2, "record", "the call passes every rule"),
        (3, "skip", "shorter than 10 s"),
        (4, "record", "the call passes every rule"),
    ]
    assert_recorded_exactly(lab, data_dir, calls)
    rows = {r["call_id"]: r for r in lab.recordings(data_dir)}
    # A kept call keeps all of itself: its pre-roll and its whole talk.
    assert rows[calls[1]["id"]]["duration_s"] == pytest.approx(16.0, abs=0.2)
    assert rows[calls[3]["id"]]["duration_s"] == pytest.approx(
        (lab.wall_us(calls[3]["ended_at"]) - lab.wall_us(calls[3]["started_at"])) / 1e6, abs=0.2
    )


def test_min_duration_never_opens_a_file_for_a_short_call(lab, synth):
    """While the short call talks, and after, the card holds nothing of it."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    config = lab.policy(rules={"default_mode": "by_rule", "min_duration_s": 10})
    doc = lab.scenario([inbound(1, 1.0, talk=8.0)], lines=1, config=config)
    data_dir = lab.data_dir()
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    snapshots = []
    for t in range(2, 16):
        box.clock.call_at(
            t * 1_000_000,
            lambda: snapshots.append(
                (os.listdir(os.path.join(data_dir, "recordings")), len(lab.recordings(data_dir)))
            ),
        )
    box.start()
    assert box.board.run()
    box.stop()
    assert snapshots and all(s == ([], 0) for s in snapshots)
    assert box.recorder.stats["dropped_short"] == 1


def test_on_demand_by_code_and_button(lab):
    config = lab.policy(
        rules={
            "lines": [{"line": 1, "mode": "on_demand"}, {"line": 2, "mode": "on_demand"}],
            "on_demand": {"dtmf_code": "*9", "from_start": True},
        }
    )
    doc = lab.scenario(
        [
            inbound(1, 1.0, talk=12.0, keys=[{"at": 5.0, "digits": "*9"}]),
            inbound(2, 1.0, talk=12.0, press=[{"at": 4.0, "button": "record"}]),
            inbound(1, 30.0, talk=8.0),
        ],
        lines=2,
        hat="lk-2lb",
        config=config,
    )
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [
        (1, "record", "recording asked for by DTMF code, from the start of the call"),
        (2, "record", "recording asked for by button, from the start of the call"),
        (1, "skip", "on demand: recording was never asked for"),
    ]
    assert_recorded_exactly(lab, data_dir, calls)
    rows = {r["call_id"]: r for r in lab.recordings(data_dir)}
    for call in calls[:2]:  # from the start: the pre-roll and the whole talk
        assert rows[call["id"]]["duration_s"] == pytest.approx(13.0, abs=0.2)


def test_on_demand_from_the_press(lab):
    config = lab.policy(
        rules={"lines": [{"line": 1, "mode": "on_demand"}], "on_demand": {"from_start": False}}
    )
    doc = lab.scenario(
        [inbound(1, 1.0, talk=12.0, press=[{"at": 4.0, "button": "record"}])],
        lines=2,
        hat="lk-2lb",
        config=config,
    )
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [(1, "record", "recording asked for by button, from the request")]
    (row,) = lab.recordings(data_dir)
    assert row["duration_s"] == pytest.approx(8.0, abs=0.2)
    assert abs(row["started_at"] - (lab.wall_us(calls[0]["answered_at"]) + 4_000_000)) < 50_000


def test_scenario_config_is_validated_like_config_json(lab):
    bad = lab.policy(rules={"lines": [{"line": 1, "mode": "x"}]})
    doc = lab.scenario([inbound(1, 1.0)], config=bad)
    data_dir = lab.data_dir()
    path = lab.tmp_path / "bad.json"
    path.write_text(json.dumps(doc, indent=1))
    status, _out, err = lab.cli("sim", path, "--data-dir", data_dir)
    assert status == 2
    assert "bad.json:" in err and "config.policy.rules.lines[0].mode: must be one of" in err


def test_sim_config_option_overrides_the_scenario(lab, tmp_path):
    (tmp_path / "private.json").write_text(json.dumps(lab.policy(rules={"default_mode": "never"})))
    doc = lab.scenario([inbound(1, 1.0)], config=lab.policy(rules={"default_mode": "always"}))
    _data_dir, calls = lab.sim(doc, None, "--config", tmp_path / "private.json")
    assert outcome(calls) == [(1, "skip", "line 1 is private")]


def test_a_card_failing_as_the_record_code_starts_a_recording_stops_no_line(
    tmp_path, synth, lab, monkeypatch
):
    """The card refuses the recording's key copy (an I/O error), then the call log refuses
    the clean-up of what was begun (its own I/O error): the recording of the call asked for
    by its code fails with the recording_failed alarm, as a recording that cannot start
    does, and the call log's error does not escape into the supervisor's delivery of keys,
    where it stopped the capture's pass over every line."""
    import sqlite3

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [
            inbound(1, 1.0, talk=12.0, keys=[{"at": 5.0, "digits": "*9"}]),
            inbound(2, 1.0, talk=20.0),
        ],
        2,
        config=lab.policy(rules={"lines": [{"line": 1, "mode": "on_demand"}]}),
    )
    store = box.recorder.store
    real_write_key_copy = store.write_key_copy

    def key_copy_refused(recording_id, wrapped, new=False):
        if box.recorder.store.call_row(store.get(recording_id)["call_id"])["line"] == 1:
            raise OSError(5, "Input/output error")
        return real_write_key_copy(recording_id, wrapped, new=new)

    def unname_refused(recording_id, call_id=None, why=None):
        raise sqlite3.OperationalError("disk I/O error")

    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    monkeypatch.setattr(store, "write_key_copy", key_copy_refused)
    monkeypatch.setattr(store, "unname_file", unname_refused)
    box.start()
    assert box.board.run()
    box.stop()
    calls = lab.calls(data_dir)
    assert [(c["line"], c["policy_decision"]) for c in calls] == [(1, "record"), (2, "record")]
    assert [(r["call_id"], r["state"]) for r in lab.recordings(data_dir) if r["state"] == "complete"] == [
        (calls[1]["id"], "complete")
    ]
    assert [(a.line, a.kind, a.active) for a in alarms if a.kind == "recording_failed"] == [
        (1, "recording_failed", True)
    ]


def test_what_a_recording_that_failed_to_start_left_is_destroyed_off_the_capture_thread(
    tmp_path, synth, lab, monkeypatch
):
    """The card refuses the key copy of a recording the record code starts: what it left (its
    row, and whatever reached the card) is destroyed by the recorder's worker, as a discarded
    recording is, not in the capture's pass over every line (the destruction's syncs held up
    every line's audio); the stop waits for it, and nothing of it is left."""
    import threading

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [
            inbound(1, 1.0, talk=12.0, keys=[{"at": 5.0, "digits": "*9"}]),
            inbound(2, 1.0, talk=20.0),
        ],
        2,
        config=lab.policy(rules={"lines": [{"line": 1, "mode": "on_demand"}]}),
    )
    store = box.recorder.store
    real_write_key_copy, real_shred = store.write_key_copy, store.shred_file
    capture = threading.current_thread()  # the simulated box runs its capture in this thread
    failed, shredded = [], []

    def key_copy_refused(recording_id, wrapped, new=False):
        if box.recorder.store.call_row(store.get(recording_id)["call_id"])["line"] == 1:
            failed.append(recording_id)
            raise OSError(5, "Input/output error")
        return real_write_key_copy(recording_id, wrapped, new=new)

    def shred(recording_id, audit=True):
        shredded.append((recording_id, threading.current_thread() is capture))
        return real_shred(recording_id, audit=audit)

    monkeypatch.setattr(store, "write_key_copy", key_copy_refused)
    monkeypatch.setattr(store, "shred_file", shred)
    box.start()
    assert box.board.run()
    box.stop()
    assert len(failed) == 1
    assert [(rid, on_capture) for rid, on_capture in shredded if rid in failed] == [(failed[0], False)]
    calls = lab.calls(data_dir)
    assert [(r["call_id"], r["state"]) for r in lab.recordings(data_dir)] == [(calls[1]["id"], "complete")]
    assert not [n for n in os.listdir(os.path.join(data_dir, "recordings")) if n.startswith(failed[0])]


def test_a_recording_with_no_row_that_failed_to_start_and_could_not_be_destroyed_says_so(
    tmp_path, synth, lab, monkeypatch
):
    """The call log refused the intent row of a recording the record code starts, its start
    then failed (the card refused its key copy) and the card refused its destruction too. No
    row says its destruction was decided, so the next start does not destroy it: the alarm
    said it would ("the next start destroys it"). It says what a personal call's alarm in the
    same state says: no row, which files, and what the technician must do."""
    import sqlite3

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [
            inbound(1, 1.0, talk=12.0, keys=[{"at": 5.0, "digits": "*9"}]),
            inbound(2, 1.0, talk=20.0),
        ],
        2,
        config=lab.policy(rules={"lines": [{"line": 1, "mode": "on_demand"}]}),
    )
    store = box.recorder.store
    real_begin, real_write_key_copy = store.begin, store.write_key_copy
    refused = []

    def begin(call_id, *args, **kwargs):
        if store.call_row(call_id)["line"] == 1:
            refused.append(kwargs["recording_id"])
            raise sqlite3.OperationalError("disk I/O error")
        return real_begin(call_id, *args, **kwargs)

    def key_copy_refused(recording_id, wrapped, new=False):
        if recording_id in refused:
            raise OSError(5, "Input/output error")
        return real_write_key_copy(recording_id, wrapped, new=new)

    def shred(recording_id, audit=True):
        raise OSError(5, "Input/output error")

    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    monkeypatch.setattr(store, "begin", begin)
    monkeypatch.setattr(store, "write_key_copy", key_copy_refused)
    monkeypatch.setattr(store, "shred_file", shred)
    box.start()
    assert box.board.run()
    box.stop()
    assert len(refused) == 1
    messages = [
        a.message for a in alarms if a.kind == "recording_failed" and a.active and "destroyed" in a.message
    ]
    assert len(messages) == 1
    assert "the next start destroys it" not in messages[0]
    assert "no row" in messages[0] and store.path_of(refused[0]) in messages[0]
