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
    assert report["box"]["consent"] == {"given": 3, "failed": 1, "off": 1}
    summary = {row[0]: row[1:] for row in tables(report)[0][2]}
    assert summary["Consent notice failed"][0] == "1"
