"""A quiet spell longer than the silence clear is not the end of the call (the
"nothing lost" promise): "hold on, let me check", a hold without music, a handset
laid on the desk in a quiet office. Played through the whole box (``linekeeper
sim``): the call log shows one call, ended when it really ended, and its one
recording holds what was said after the quiet. On an adapter that signals
nothing, a far end that really left is still cleared by the silence.
"""

import pytest

from firmware.box import open_audit

from support.policy_lab import PolicyLab, scenario

S = 1_000_000
TOLERANCE_US = 50_000
HELLO = "Hello, this is Linekeeper support. Hold on, let me check that for you."
BACK = "Sorry to keep you waiting. Your order left the warehouse this morning."
BACK_AT_S = 95.0  # after 90 s of quiet, longer than the 60 s silence clear


def quiet_call(line, direction):
    call = {
        "line": line,
        "at": 1.0,
        "direction": direction,
        "talk": 105.0,
        "speech": [{"at": 0.5, "text": HELLO}, {"at": BACK_AT_S, "text": BACK}],
    }
    if direction == "in":
        call.update(caller_id={"number": "01632960123"}, rings=1)
    else:
        call["dial"] = {"digits": "01632960456"}
    return call


@pytest.fixture(scope="module")
def module_lab(tmp_path_factory, synth):
    return PolicyLab(tmp_path_factory.mktemp("hold"), synth)


@pytest.fixture(scope="module")
def held(module_lab):
    doc = scenario(
        [
            quiet_call(1, "in"),
            quiet_call(2, "out"),
            quiet_call(3, "in"),  # the same hold on an adapter that signals nothing
            {  # the far end really leaves during the quiet; our side stays off-hook
                "line": 4,
                "at": 1.0,
                "direction": "in",
                "caller_id": {"number": "0123"},
                "rings": 1,
                "talk": 10.0,
                "speech": [{"at": 0.5, "text": HELLO}],
                "hangup": "remote",
                "hangup_delay": 100.0,
            },
        ],
        sources={"3": "silent-ata", "4": "silent-ata"},
    )
    data_dir, log = module_lab.sim(doc)
    return module_lab, doc, data_dir, {c["line"]: c for c in log}, log


def test_one_call_per_line_ended_when_it_really_ended(held):
    lab, _doc, _data_dir, by_line, log = held
    assert sorted(c["line"] for c in log) == [1, 2, 3, 4]  # no call split in two
    for line in (1, 2, 3):
        call = by_line[line]
        assert call["end_reason"] == "local", call
        talked_s = (lab.wall_us(call["ended_at"]) - lab.wall_us(call["answered_at"])) / S
        assert talked_s > BACK_AT_S + 5, call


def test_the_far_end_that_left_is_still_cleared_by_the_silence(held):
    lab, _doc, _data_dir, by_line, _log = held
    call = by_line[4]
    assert call["end_reason"] == "remote_silence"
    # The far end left 10 s after the answer; its speech ended a few seconds before.
    talked_s = (lab.wall_us(call["ended_at"]) - lab.wall_us(call["answered_at"])) / S
    assert 3.0 < talked_s <= 10.05


@pytest.mark.parametrize("line", [1, 2, 3])
def test_what_was_said_after_the_quiet_is_recorded(held, line):
    lab, doc, data_dir, by_line, _log = held
    call = by_line[line]
    assert call["policy_decision"] == "record" and call["recording"] == "complete"
    recordings = [r for r in lab.recordings(data_dir) if r["call_id"] == call["id"]]
    assert len(recordings) == 1  # the same recording went on, not a second one
    samples, t0 = lab.decode(data_dir, call["id"])
    answered = lab.wall_us(call["answered_at"])
    back = lab.at(samples, t0, answered + int((BACK_AT_S + 0.5) * S), 2.0)
    quiet = lab.at(samples, t0, answered + 30 * S, 2.0)
    assert lab.level_dbm0(back) > -35  # the words after the quiet are there
    assert lab.level_dbm0(quiet) < -50  # and the quiet was quiet
    # The recording runs to the end of the call.
    assert (t0 + len(samples) * S // 8000) >= lab.wall_us(call["ended_at"]) - 1 * S


CARD_SPOKEN = "My card number is four nine two nine, one two three four."


@pytest.fixture(scope="module")
def paused_hold(module_lab):
    """Paused for a card number (``*1``), a long quiet while the caller finds the card,
    the number read out, then ``*2``: the pause holds across the silence clear."""
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "caller_id": {"number": "01632960123"},
        "rings": 1,
        "talk": 115.0,
        "speech": [
            {"at": 0.5, "text": "Hello, I would like to pay my bill."},
            {"at": BACK_AT_S, "text": CARD_SPOKEN},
            {"at": 108.0, "text": "Thank you, that is all."},
        ],
        "keys": [{"at": 4.0, "digits": "*1"}, {"at": 105.0, "digits": "*2"}],
    }
    config = module_lab.policy(pci={"pause_code": "*1", "resume_code": "*2"})
    doc = scenario([call], lines=1, config=config)
    data_dir, log = module_lab.sim(doc)
    (only,) = log
    return module_lab, data_dir, only


def test_a_pause_holds_across_the_quiet(paused_hold):
    lab, data_dir, call = paused_hold
    assert call["end_reason"] == "local"
    (span,) = call["pause_spans"]
    answered = lab.wall_us(call["answered_at"])
    assert (span["by"], span["ended_by"]) == ("dtmf", "dtmf")
    assert 104.0 < (lab.wall_us(span["to"]) - answered) / S < 106.0
    samples, t0 = lab.decode(data_dir, call["id"])
    card = lab.at(samples, t0, answered + int((BACK_AT_S + 0.3) * S), 3.0)
    thanks = lab.at(samples, t0, answered + int(108.3 * S), 1.0)
    assert lab.level_dbm0(card) < -60  # the card number read out after the quiet is not there
    assert lab.level_dbm0(thanks) > -35  # what was said after the resume is


def test_the_call_going_on_is_in_the_audit_trail(held):
    _lab, _doc, data_dir, by_line, _log = held
    with open_audit(data_dir) as audit:
        assert audit.verify() == []
        resumed = {e.target: e.details for e in audit.entries() if e.action == "call_resumed"}
    assert set(resumed) == {"call:%d" % by_line[line]["id"] for line in (1, 2, 3)}
    for details in resumed.values():
        assert 85_000 <= details["quiet_ms"] <= 95_000


@pytest.fixture(scope="module")
def short_then_quiet(module_lab):
    """A minimum talk time (10 s): line 1 talks 4 s, is quiet 90 s and talks again;
    line 2 (an adapter that signals nothing) talks 4 s and its far end leaves."""
    hello = "Hello, one moment please."
    back = {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "caller_id": {"number": "01632960123"},
        "rings": 1,
        "talk": 105.0,
        "speech": [{"at": 0.5, "text": hello}, {"at": BACK_AT_S, "text": BACK}],
    }
    gone = {
        "line": 2,
        "at": 1.0,
        "direction": "in",
        "caller_id": {"number": "0123"},
        "rings": 1,
        "talk": 4.0,
        "speech": [{"at": 0.5, "text": hello}],
        "hangup": "remote",
        "hangup_delay": 100.0,
    }
    config = module_lab.policy(rules={"default_mode": "by_rule", "min_duration_s": 10})
    doc = scenario([back, gone], lines=2, config=config, sources={"2": "silent-ata"})
    data_dir, log = module_lab.sim(doc)
    return module_lab, data_dir, {c["line"]: c for c in log}


def test_a_short_start_then_a_hold_is_recorded_in_full(short_then_quiet):
    """The minimum talk counts the whole call, quiet included: the held recording is kept
    once the call goes on, from its start."""
    lab, data_dir, by_line = short_then_quiet
    call = by_line[1]
    assert (call["policy_decision"], call["recording"], call["end_reason"]) == ("record", "complete", "local")
    samples, t0 = lab.decode(data_dir, call["id"])
    answered = lab.wall_us(call["answered_at"])
    assert t0 <= answered  # from the start (its pre-roll)
    assert lab.level_dbm0(lab.at(samples, t0, answered + int(0.7 * S), 1.0)) > -35
    assert lab.level_dbm0(lab.at(samples, t0, answered + int((BACK_AT_S + 0.5) * S), 2.0)) > -35


def test_a_short_call_whose_far_end_left_keeps_nothing(short_then_quiet):
    lab, data_dir, by_line = short_then_quiet
    call = by_line[2]
    assert call["end_reason"] == "remote_silence"
    assert (call["policy_decision"], call["policy_reason"]) == ("skip", "shorter than 10 s")
    assert not [r for r in lab.recordings(data_dir) if r["call_id"] == call["id"]]
