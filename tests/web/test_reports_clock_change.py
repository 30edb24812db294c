"""A week's report and the calls pages in Europe/London across the UK's clock changes.

The other web tests build their reports in UTC, where no day is 23 or 25 hours long. Here
the box's reports are in its zone, Europe/London, and the calls fall in the hour the
clocks skip (last Sunday of March) and the hour they repeat (last Sunday of October): each
call is counted once, in the hour of the day its clock showed, and every time is said with
the zone in force then."""

import datetime as dt
import html
import re
import sqlite3

from firmware.reports.source import ReportSource

from .test_reports import csv_tables, screen_tables
from support.web import LINES

LONDON = "Europe/London"


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def _add_calls(box, starts_us):
    """Answered inbound calls on line 1 (sam's), 60 s of talk each, started at ``starts_us``;
    their ids."""
    db = sqlite3.connect(box.data_dir + "/calls.db")
    ids = []
    with db:
        for i, start in enumerate(starts_us):
            cur = db.execute(
                "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced, "
                "number) VALUES (1, 'in', ?, ?, ?, 1, ?)",
                (start, start + 5_000_000, start + 65_000_000, "0113496%04d" % i),
            )
            ids.append(cur.lastrowid)
    db.close()
    return ids


def _in_london(box):
    """The box's reports in Europe/London, the zone its pages show times in."""
    box.services.reports = ReportSource(box.data_dir, tz=LONDON, n_lines=LINES, alarms=box.alarm_log)
    assert box.web.local_time().zone_name == LONDON


def _summary(page):
    return {row[0]: row[1:] for row in screen_tables(page)[0]}


def _hours(page):
    table = [t for t in screen_tables(page) if t[0][0] == "Hour"][0]
    return {row[0]: int(row[1]) for row in table[1:]}


def _started(page):
    """The start times the calls list shows (its links' hidden words left out)."""
    link = r'<tr id="call-\d+">\s*<th scope="row"><a [^>]*>([^<]*)(?:<span class="sr-only">|</a>)'
    return [html.unescape(t) for t in re.findall(link, page)]


def test_the_october_week_counts_the_repeated_hour_twice_and_says_which_is_which(box, people):
    _in_london(box)
    sam = people["sam"]
    _add_calls(
        box,
        [
            _utc_us(2026, 10, 18, 22, 30),  # Sun 18 Oct, 23:30 BST: the week before
            _utc_us(2026, 10, 18, 23, 30),  # Mon 19 Oct, 00:30 BST: the week's first
            _utc_us(2026, 10, 25, 0, 30),  # Sun 25 Oct, 01:30 BST
            _utc_us(2026, 10, 25, 1, 30),  # Sun 25 Oct, 01:30 GMT, an hour later
            _utc_us(2026, 10, 25, 23, 30),  # Sun 25 Oct, 23:30 GMT: the 25-hour day's last
            _utc_us(2026, 10, 26, 0, 30),  # Mon 26 Oct, 00:30 GMT: the week after
        ],
    )
    for at in (_utc_us(2026, 10, 25, 0, 40), _utc_us(2026, 10, 25, 1, 40)):
        box.alarm_log.set("no_line_voltage", True, line=1, message="no voltage on line 1", wall_us=at)
        box.alarm_log.set("no_line_voltage", False, line=1, wall_us=at + 600_000_000)
    week = "from=2026-10-19&to=2026-10-25&line=1"
    resp = sam.get("/reports?" + week)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert _summary(page)["Calls"] == ["4", "4"]
    assert _summary(page)["Talk time (h:mm:ss)"] == ["0:04:00", "0:04:00"]
    hours = _hours(page)
    assert hours["01:00"] == 2 and hours["00:00"] == 1 and hours["23:00"] == 1
    assert sum(hours.values()) == 4
    # The report's alarms in the repeated hour, each with the zone in force then.
    alarms = [t for t in screen_tables(page) if t[0][0] == "Raised"][0]
    assert [(row[0], row[3]) for row in alarms[1:]] == [
        ("Sun 25 Oct 2026, 01:40:00 BST", "Sun 25 Oct 2026, 01:50:00 BST"),
        ("Sun 25 Oct 2026, 01:40:00 GMT", "Sun 25 Oct 2026, 01:50:00 GMT"),
    ]
    # The CSV holds the same figures.
    download = sam.get("/reports/download?format=csv&" + week).get_data(as_text=True)
    assert csv_tables(download)[0] == screen_tables(page)[0]

    # The calls page of that Sunday: its 25 hours, the repeated hour's calls told apart.
    page = sam.get("/calls?line=1&from=2026-10-25&to=2026-10-25").get_data(as_text=True)
    assert _started(page) == [
        "Sun 25 Oct 2026, 23:30:00 GMT",
        "Sun 25 Oct 2026, 01:30:00 GMT",
        "Sun 25 Oct 2026, 01:30:00 BST",
    ]


def test_the_march_week_loses_the_skipped_hour_and_no_call(box, people):
    _in_london(box)
    sam = people["sam"]
    _add_calls(
        box,
        [
            _utc_us(2026, 3, 29, 0, 30),  # Sun 29 Mar, 00:30 GMT
            _utc_us(2026, 3, 29, 0, 59),  # Sun 29 Mar, 00:59 GMT, the last minute before
            _utc_us(2026, 3, 29, 1, 0),  # Sun 29 Mar, 02:00 BST: the clocks went forward
            _utc_us(2026, 3, 29, 22, 30),  # Sun 29 Mar, 23:30 BST: the 23-hour day's last
            _utc_us(2026, 3, 29, 23, 30),  # Mon 30 Mar, 00:30 BST: the week after
        ],
    )
    week = "from=2026-03-23&to=2026-03-29&line=1"
    page = sam.get("/reports?" + week).get_data(as_text=True)
    assert _summary(page)["Calls"] == ["4", "4"]
    hours = _hours(page)
    assert hours["00:00"] == 2 and hours["01:00"] == 0 and hours["02:00"] == 1 and hours["23:00"] == 1
    assert sum(hours.values()) == 4
    page = sam.get("/calls?line=1&from=2026-03-29&to=2026-03-29").get_data(as_text=True)
    assert _started(page) == [
        "Sun 29 Mar 2026, 23:30:00 BST",
        "Sun 29 Mar 2026, 02:00:00 BST",
        "Sun 29 Mar 2026, 00:59:00 GMT",
        "Sun 29 Mar 2026, 00:30:00 GMT",
    ]
