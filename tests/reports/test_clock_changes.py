"""Reports across the UK's clock changes: a day of 23 hours in March, of 25 in October,
and the October night's hour from 01:00 to 02:00 that the clocks show twice.

Two callers missed at 01:30 BST and at 01:30 GMT that night were listed at the same
"2026-10-25 01:30:00": a reader could not tell which came first, nor when to say the
call was, to a caller asking about it.
"""

import datetime as dt
import sqlite3

from firmware.calls.calllog import SCHEMA
from firmware.reports.compute import build_report
from firmware.reports.formats import render, tables
from firmware.reports.period import parse_period

HOUR_US = 3_600_000_000


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def _calls_db(tmp_path, calls):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    for line, direction, started, answered, ended, number in calls:
        db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced, number)"
            " VALUES (?, ?, ?, ?, ?, 1, ?)",
            (line, direction, started, answered, ended, number),
        )
    db.commit()
    db.close()
    return str(tmp_path / "calls.db")


def _table(report, title):
    return next(rows for t, _, rows in tables(report) if t.startswith(title))


def test_the_october_night_repeated_hour_is_told_apart(tmp_path):
    bst = _utc_us(2026, 10, 25, 0, 30)  # 01:30 BST
    gmt = _utc_us(2026, 10, 25, 1, 30)  # 01:30 GMT, an hour later
    path = _calls_db(
        tmp_path,
        [
            (1, "in", bst, None, bst + 30_000_000, "01632960001"),
            (1, "in", gmt, None, gmt + 30_000_000, "01632960002"),
            # A call across the change: answered 01:50 BST, ended 01:10 GMT (talk 20 min).
            (2, "in", bst + 20 * 60_000_000, bst + 20 * 60_000_000, bst + 40 * 60_000_000, "01632960003"),
        ],
    )
    period = parse_period("2026-10-25", "2026-10-25", "Europe/London")
    assert (period.end_us - period.start_us) // HOUR_US == 25
    report = build_report(path, period, n_lines=2)
    callbacks = _table(report, "Callback list")
    assert [row[3] for row in callbacks] == ["2026-10-25 01:30:00 BST", "2026-10-25 01:30:00 GMT"]
    assert report["box"]["talk_s"] == 1200.0
    # Every call of the night is in the "01:00" hour, which that night lasted two hours.
    assert _table(report, "Calls by hour of day")[1][1] == "3"
    # A time outside the repeated hour reads as it always did (the zone is in the title).
    assert "Europe/London" in render(report, "csv").decode().splitlines()[0]


def test_the_march_day_of_23_hours_and_a_leap_day(tmp_path):
    path = _calls_db(
        tmp_path,
        [
            (1, "in", _utc_us(2026, 3, 28, 23, 59), None, _utc_us(2026, 3, 29, 0, 0), "01632960001"),
            (1, "in", _utc_us(2026, 3, 29, 0, 30), None, _utc_us(2026, 3, 29, 0, 31), "01632960002"),
            (1, "in", _utc_us(2026, 3, 29, 1, 30), None, _utc_us(2026, 3, 29, 1, 31), "01632960003"),
            (1, "in", _utc_us(2026, 3, 29, 23, 30), None, _utc_us(2026, 3, 29, 23, 31), "01632960004"),
            (1, "in", _utc_us(2028, 2, 29, 12, 0), None, _utc_us(2028, 2, 29, 12, 1), "01632960005"),
        ],
    )
    march = parse_period("2026-03-29", "2026-03-29", "Europe/London")
    assert (march.end_us - march.start_us) // HOUR_US == 23
    report = build_report(path, march, n_lines=1)
    # 00:30 GMT and 02:30 BST belong to the 29th; 23:30 UTC is 00:30 BST on the 30th.
    assert report["box"]["calls"] == 2
    assert [row[3] for row in _table(report, "Callback list")] == [
        "2026-03-29 00:30:00",
        "2026-03-29 02:30:00",
    ]
    hours = _table(report, "Calls by hour of day")
    assert hours[1][1] == "0"  # 01:00 to 02:00 did not happen that night
    leap = build_report(path, parse_period("2028-02-29", "2028-02-29", "Europe/London"), n_lines=1)
    assert leap["box"]["calls"] == 1 and leap["box"]["missed"] == 1
