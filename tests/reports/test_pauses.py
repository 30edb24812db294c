"""A report counts the card-payment pauses per line and their length: not only the calls
with one (a call paused twice is two pauses), and a pause a crash left open counts."""

import datetime as dt
import json
import sqlite3

from firmware.calls.calllog import SCHEMA, iso_ms
from firmware.reports.compute import build_report
from firmware.reports.formats import tables
from firmware.reports.period import parse_period

S = 10**6


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def _span(from_us, to_us):
    return {"from": iso_ms(from_us), "to": None if to_us is None else iso_ms(to_us), "by": "dtmf"}


def test_pauses_are_counted_per_line_with_their_length(tmp_path):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    t = _utc_us(2026, 3, 30, 9)  # 10:00 BST
    for line, start, ended, spans in (
        (1, t, t + 300 * S, [_span(t + 60 * S, t + 90 * S), _span(t + 120 * S, t + 135 * S)]),
        # The power went mid-payment: the span stayed open, the call ended there.
        (2, t + 600 * S, t + 700 * S, [_span(t + 650 * S, None)]),
        (2, t + 900 * S, t + 960 * S, []),
    ):
        db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced,"
            " policy_decision, pause_spans) VALUES (?, 'in', ?, ?, ?, 1, 'record', ?)",
            (line, start, start + 5 * S, ended, json.dumps(spans) if spans else None),
        )
    db.commit()
    db.close()
    period = parse_period("2026-03-30", "2026-03-30", "Europe/London")
    report = build_report(str(tmp_path / "calls.db"), period, n_lines=2)
    got = {n: report["per_line"][n]["coverage"] for n in ("1", "2")}
    assert [(c["paused_calls"], c["pauses"], c["paused_s"]) for c in got.values()] == [(1, 2, 45), (1, 1, 50)]
    box = report["box"]["coverage"]
    assert (box["paused_calls"], box["pauses"], box["paused_s"]) == (2, 3, 95)
    summary = {row[0]: row[1:] for row in tables(report)[0][2]}
    assert summary["PCI pauses"] == ["3", "2", "1"]
    assert summary["Paused (h:mm:ss)"] == ["0:01:35", "0:00:45", "0:00:50"]
