"""The report's consent notices: a call whose only notice is the warning tone (consent
notices "off", the tone on) counts by its beeps, not as a notice switched off: the supervisor
reading the compliance report sees a first beep that could not be played (nobody was told)
among the failed notices, and a call told by its beeps among the given."""

import datetime as dt
import json
import sqlite3

from firmware.calls.calllog import SCHEMA
from firmware.reports.compute import build_report
from firmware.reports.formats import tables
from firmware.reports.period import parse_period

S = 10**6


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def test_a_tone_only_call_counts_by_its_beeps(tmp_path):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    t = _utc_us(2026, 3, 30, 9)
    for i, (decision, consent) in enumerate(
        (
            # The first beep, the only notice, could not be played: nobody was told.
            ("skip", {"notice": "off", "given": False, "warning_tones": 0, "warning_tone_error": "busy"}),
            # Two beeps sounded: told, though a later one failed.
            (
                "record",
                {"notice": "off", "given": False, "warning_tones": 2, "warning_tone_error": "no codec"},
            ),
            ("record", {"notice": "off", "given": False, "warning_tones": 3}),
            # No tone on the box, no notice: off.
            ("record", {"notice": "off", "given": False}),
            ("record", {"notice": "announcement", "given": True, "duration_s": 7.0}),
        )
    ):
        start = t + i * 600 * S
        db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced,"
            " policy_decision, consent) VALUES (1, 'in', ?, ?, ?, 1, ?, ?)",
            (start, start + 5 * S, start + 60 * S, decision, json.dumps(consent)),
        )
    db.commit()
    db.close()
    period = parse_period("2026-03-30", "2026-03-30", "Europe/London")
    report = build_report(str(tmp_path / "calls.db"), period, n_lines=1)
    assert report["box"]["consent"] == {"given": 3, "failed": 1, "unheard": 0, "off": 1}
    summary = {row[0]: row[1:] for row in tables(report)[0][2]}
    assert summary["Consent notice failed"][0] == "1"


def test_calls_whose_far_end_was_never_heard_are_neither_excluded_by_a_rule_nor_failed(tmp_path):
    """An outbound call nobody was heard on after dialling, and one whose line was paused
    (card details) before the far end was heard: no notice was played, so neither was
    recorded, and no alarm was raised (nothing failed). The report counted them as
    "Excluded by rule" (no rule said skip) and as consent notices that failed; each has a
    figure of its own, in the words of the call's page (firmware/words.py)."""
    from firmware import words
    from firmware.policy.engine import PAUSED_ERROR, PAUSED_REASON, UNHEARD_REASON

    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    t = _utc_us(2026, 3, 30, 9)
    pause = [{"from": "2026-03-30T09:10:14.000Z", "to": "2026-03-30T09:10:34.000Z", "by": "button"}]
    unheard_error = "nobody was heard on the line after the dialling: it was not played"
    for i, (reason, consent, spans) in enumerate(
        (
            (
                UNHEARD_REASON,
                {"notice": "announcement", "given": False, "error": unheard_error, "unheard": True},
                None,
            ),
            (
                PAUSED_REASON,
                {"notice": "announcement", "given": False, "error": PAUSED_ERROR, "paused": True},
                pause,
            ),
            ("outbound calls are not recorded", None, None),
        )
    ):
        start = t + i * 600 * S
        db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced,"
            " policy_decision, policy_reason, consent, pause_spans)"
            " VALUES (1, 'out', ?, ?, ?, 1, 'skip', ?, ?, ?)",
            (
                start,
                start + 14 * S,
                start + 34 * S,
                reason,
                json.dumps(consent) if consent else None,
                json.dumps(spans) if spans else None,
            ),
        )
    db.commit()
    db.close()
    period = parse_period("2026-03-30", "2026-03-30", "Europe/London")
    report = build_report(str(tmp_path / "calls.db"), period, n_lines=1)
    coverage = report["box"]["coverage"]
    assert {k: coverage[k] for k in ("excluded", "unheard", "paused_unheard", "failed", "paused_calls")} == {
        "excluded": 1,
        "unheard": 1,
        "paused_unheard": 1,
        "failed": 0,
        "paused_calls": 1,
    }
    assert coverage["excluded_by_reason"] == {"outbound calls are not recorded": 1}
    assert report["box"]["consent"] == {"given": 0, "failed": 0, "unheard": 2, "off": 0}
    summary = {row[0]: row[1] for row in tables(report)[0][2]}
    assert summary["Excluded by rule"] == "1" and summary["Recording failed"] == "0"
    assert summary["Not recorded: nobody was heard on the line after dialling"] == "1"
    assert summary["Not recorded: " + words.say("not_heard", "paused")] == "1"
    assert summary["Consent notice failed"] == "0"
    assert summary["Consent notice not played: the far end was not heard"] == "2"


def test_the_call_page_says_why_in_the_words_the_report_counts_by():
    """The call page said the recording rules did not record such a call; no rule did."""
    from firmware import words
    from web.callstory import why_no_recording

    for kind in ("unheard", "paused"):
        call = {"policy_decision": "skip", "answered": True, "consent": {"given": False, kind: True}}
        why = why_no_recording(call, [])
        assert words.NOT_HEARD[kind] in why and "rules" not in why
    ruled = {"policy_decision": "skip", "policy_reason": "outbound calls are not recorded", "consent": None}
    assert (
        why_no_recording(ruled, [])
        == "The recording rules did not record it: outbound calls are not recorded."
    )


def test_calls_marked_personal_are_counted_per_line_apart_from_the_rules(tmp_path):
    """A call its staff member keyed the personal-call code on: a figure of its own on each
    line, so the business sees how often a line uses it; not among the rules' exclusions."""
    from firmware.policy.rules import PERSONAL_REASON

    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    t = _utc_us(2026, 3, 30, 9)
    for i, (line, reason) in enumerate(
        (
            (1, PERSONAL_REASON),
            (1, PERSONAL_REASON),
            (2, PERSONAL_REASON),
            (2, "outbound calls are not recorded"),
        )
    ):
        start = t + i * 600 * S
        db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced,"
            " policy_decision, policy_reason) VALUES (?, 'out', ?, ?, ?, 1, 'skip', ?)",
            (line, start, start + 14 * S, start + 34 * S, reason),
        )
    db.commit()
    db.close()
    period = parse_period("2026-03-30", "2026-03-30", "Europe/London")
    report = build_report(str(tmp_path / "calls.db"), period, n_lines=2)
    assert [report["per_line"][n]["coverage"]["personal"] for n in ("1", "2")] == [2, 1]
    assert report["box"]["coverage"]["personal"] == 3
    assert report["box"]["coverage"]["excluded_by_reason"] == {"outbound calls are not recorded": 1}
    summary = {row[0]: row[1:] for row in tables(report)[0][2]}
    assert summary["Marked personal by staff (personal-call code)"][:3] == ["3", "2", "1"]
    assert summary["Excluded by rule"][0] == "1"
