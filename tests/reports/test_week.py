"""Report figures against the simulated week whose answers are known (tests/reports/week.py)."""

import csv
import io
import json
import os
import shutil
import subprocess

import pytest

from firmware import cli
from web.db import WebDb

from support.cli import report_args

PASSWORD = "correct horse battery 7"  # the week's key slot's (conftest.py)

LINES = ("1", "2", "3", "4")
# figure: (box, line 1, line 2, line 3, line 4), worked out from week.CALLS by hand
EXPECTED = {
    "calls": (14, 6, 4, 2, 2),
    "in": (11, 5, 4, 1, 1),
    "out": (3, 1, 0, 1, 1),
    "missed": (6, 3, 3, 0, 0),
    "answered_in": (5, 2, 1, 1, 1),
    "answered_rate_pct": (45.5, 40.0, 25.0, 100.0, 100.0),
    "connected_out": (3, 1, 0, 1, 1),
    "talk_calls": (8, 3, 1, 2, 2),
    "deletions": (0, 0, 0, 0, 0),
}
COVERAGE = {
    "connected": (8, 3, 1, 2, 2),
    "recorded": (5, 3, 1, 0, 1),
    "private": (2, 0, 0, 2, 0),
    "excluded": (1, 0, 0, 0, 1),
    "not_asked": (0, 0, 0, 0, 0),
    "failed": (0, 0, 0, 0, 0),
    "partial": (0, 0, 0, 0, 0),
    "paused_calls": (0, 0, 0, 0, 0),
}
CONSENT = {"given": (4, 2, 1, 0, 1), "failed": (0,) * 5, "off": (1, 1, 0, 0, 0)}
# The scenario's talk times; outbound calls are dated by the box's own end-of-dialling
# detection, which the scenario does not pin to the millisecond.
TALK_S = (315, 60 + 30 + 25, 90, 30 + 15, 20 + 45)
HOURS = {9: 5, 10: 3, 11: 3, 14: 1, 16: 1, 23: 1}


def report(data_dir, *args, fmt="json", out="-", capsys=None):
    status = cli.main(list(report_args(data_dir, PASSWORD, "--format", fmt, "--out", out, *args)))
    assert status == 0
    if capsys is not None:
        return capsys.readouterr().out


def week_json(data_dir, capsys, *extra):
    return json.loads(report(data_dir, "--from", "2026-03-02", "--to", "2026-03-08", *extra, capsys=capsys))


def columns(doc):
    return [doc["box"]] + [doc["per_line"][n] for n in LINES]


def test_every_figure_of_the_week(week_dir, capsys):
    doc = week_json(week_dir, capsys)
    cols = columns(doc)
    for key, want in EXPECTED.items():
        assert tuple(t[key] for t in cols) == want, key
    for key, want in COVERAGE.items():
        assert tuple(t["coverage"][key] for t in cols) == want, key
    for key, want in CONSENT.items():
        assert tuple(t["consent"][key] for t in cols) == want, key
    for t, want in zip(cols, TALK_S, strict=False):
        assert t["talk_s"] == pytest.approx(want, abs=0.002)
    assert doc["box"]["longest_talk_s"] == 90
    assert doc["box"]["hours"] == [HOURS.get(h, 0) for h in range(24)]
    assert doc["box"]["coverage"]["excluded_by_reason"] == {'number excluded by rule "helplines"': 1}


def test_callback_list(week_dir, capsys):
    doc = week_json(week_dir, capsys)
    # 01632960002 was called back as 00441632960002; 01632960010 rang again and was
    # answered; the withheld caller has no number to call.
    assert [
        (c["number"], c["lines"], c["missed"], c["first_missed_at"], c["last_missed_at"])
        for c in doc["callbacks"]
    ] == [
        ("01632960003", [1], 2, "2026-03-02T11:00:00.000Z", "2026-03-02T11:05:00.000Z"),
        ("01632960011", [1], 1, "2026-03-08T23:30:00.000Z", "2026-03-08T23:30:00.000Z"),
    ]


def test_playbacks_exports_and_alarms(week_dir, capsys):
    doc = week_json(week_dir, capsys)
    assert doc["access"] == {
        "playback": {"sam": 2, "sue": 1},
        "export": {"sam": 1},
        "export_refused": {"sue": 1},
    }
    assert [
        (a["kind"], a["line"], a["cleared_us"] is not None, a["acknowledged_by"]) for a in doc["alarms"]
    ] == [("no_line_voltage", 2, True, None), ("disk_warning", 0, False, "ivan")]
    # Monday 20:00 to 21:00 UTC (GMT): line 2 was not in service.
    assert [(o["line"], o["cause"], o["in_period_us"]) for o in doc["line_outages"]["out"]] == [
        (2, "no_line_voltage", 3_600_000_000)
    ]


def test_one_line_and_one_day(week_dir, capsys):
    doc = week_json(week_dir, capsys, "--line", "2")
    assert doc["lines"] == [2] and list(doc["per_line"]) == ["2"]
    assert doc["box"]["calls"] == 4 and doc["box"]["missed"] == 3
    assert doc["callbacks"] == []  # line 2's misses were all answered later
    assert [a["line"] for a in doc["alarms"]] == [2, 0]
    day = json.loads(report(week_dir, "--from", "2026-03-03", "--to", "2026-03-03", capsys=capsys))
    assert day["box"]["calls"] == 3 and day["box"]["out"] == 2
    # Monday to Saturday leaves out Sunday's last missed call, and its callback entry.
    six = json.loads(report(week_dir, "--from", "2026-03-02", "--to", "2026-03-07", capsys=capsys))
    assert six["box"]["calls"] == 13
    assert [c["number"] for c in six["callbacks"]] == ["01632960003"]


def test_days_follow_the_time_zone(week_dir, capsys):
    # New York moved to daylight time (UTC-4) at 02:00 that Sunday: 23:30 UTC is 19:30 there.
    doc = json.loads(
        report(
            week_dir, "--from", "2026-03-08", "--to", "2026-03-08", "--tz", "America/New_York", capsys=capsys
        )
    )
    assert doc["box"]["calls"] == 1 and doc["box"]["hours"][19] == 1


def test_csv_holds_the_same_figures(week_dir, capsys):
    text = report(week_dir, "--from", "2026-03-02", "--to", "2026-03-08", fmt="csv", capsys=capsys)
    rows = list(csv.reader(io.StringIO(text)))
    by_label = {r[0]: r[1:] for r in rows if len(r) == 6}
    assert by_label["Missed"] == ["6", "3", "3", "0", "0"]
    # One rule wherever it is shown: to 0.1 %, "40.0" beside "45.5", never a bare "40".
    assert by_label["Answered rate %"] == ["45.5", "40.0", "25.0", "100.0", "100.0"]
    assert by_label["Recorded"] == ["5", "3", "1", "0", "1"]
    assert by_label["Talk time (h:mm:ss)"][2] == "0:01:30"  # line 2: inbound only, 90 s
    assert ["01632960003", "1", "2", "2026-03-02 11:00:00", "2026-03-02 11:05:00"] in rows
    alarms = [r[1] for r in rows if len(r) == 5 and r[2] in ("2", "box") and r[4] in ("", "ivan")]
    assert alarms == ["No voltage on the line: the phone line is unplugged or dead", "Storage nearly full"]


@pytest.mark.parametrize(
    "seconds, text",
    [(4371.664, "1:12:52"), (0.4, "0:00:00"), (59.5, "0:01:00"), (90000, "25:00:00"), (None, "")],
)
def test_lengths_of_time_read_as_hours_minutes_seconds(seconds, text):
    from firmware.reports.tables import hms

    assert hms(seconds) == text


@pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils missing: run scripts/install-deps"
)
def test_pdf_text_holds_the_figures(week_dir, tmp_path, capsys):
    out = tmp_path / "week.pdf"
    report(week_dir, "--from", "2026-03-02", "--to", "2026-03-08", fmt="pdf", out=str(out))
    assert out.read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    lines = [line.split() for line in text.splitlines()]
    # Its period as the pages write dates (it read "Period 2026-03-02 to 2026-03-08").
    period = "Period Mon 2 Mar - Sun 8 Mar 2026 (Europe/London), 7 days; line 1, line 2, line 3, line 4"
    assert period.split() in lines
    assert ["Missed", "6", "3", "3", "0", "0"] in lines
    assert ["Answered", "rate", "%", "45.5", "40.0", "25.0", "100.0", "100.0"] in lines
    assert ["Recorded", "5", "3", "1", "0", "1"] in lines
    # Times as the pages write them (the CSV keeps 2026-03-02 11:00:00).
    first, last = "Mon 2 Mar 2026, 11:00:00 GMT".split(), "Mon 2 Mar 2026, 11:05:00 GMT".split()
    assert ["01632960003", "Line", "1", "2", *first, *last] in lines
    png = subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")],
        capture_output=True,
    )
    assert png.returncode == 0 and (tmp_path / "page-1.png").stat().st_size > 5000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "2026-03-08", "--to", "2026-03-02"], "the date range is backwards"),
        (["--from", "2026-02-30", "--to", "2026-03-02"], "is not a date"),
        (["--from", "2025-01-01", "--to", "2026-03-02"], "at most 366 days"),
        (["--from", "2026-03-02", "--to", "2026-03-02", "--line", "9"], "line 9 does not exist"),
        (["--from", "2026-03-02", "--to", "2026-03-02", "--tz", "Mars/Base"], "unknown time zone"),
        (["--from", "2026-03-02", "--to", "2026-03-02", "--tz", "Europe"], "unknown time zone"),  # a folder
        (["--from", "2026-03-02", "--to", "2026-03-02", "--tz", "x" * 300], "unknown time zone"),
    ],
)
def test_bad_requests_are_refused_in_one_line(week_dir, tmp_path, capsys, args, message):
    out = tmp_path / "r.json"
    status = cli.main(list(report_args(week_dir, PASSWORD, "--out", str(out), *args)))
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_line_with_no_call_yet_is_reported_as_a_line_of_the_box(week_dir, tmp_path, capsys):
    """The command line took the box's lines from its call log: a set-up box's line 6 with
    no call yet was refused ("the box has lines 1 to 4") and left out of the report."""
    import sqlite3

    data_dir = str(tmp_path / "data")
    shutil.copytree(week_dir, data_dir)
    WebDb(os.path.join(data_dir, "web.db")).close()  # a set-up box's: no account yet
    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    db.execute("CREATE TABLE IF NOT EXISTS site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    site = {"lines": [{"name": "Line %d" % n} for n in range(1, 7)]}
    db.execute("INSERT OR REPLACE INTO site (key, value) VALUES ('settings', ?)", (json.dumps(site),))
    db.commit()
    db.close()
    doc = week_json(data_dir, capsys)
    assert doc["lines"] == [1, 2, 3, 4, 5, 6] and doc["per_line"]["6"]["calls"] == 0
    assert doc["box"]["calls"] == EXPECTED["calls"][0]
    assert week_json(data_dir, capsys, "--line", "6")["box"]["calls"] == 0


def test_the_calendars_last_day_is_a_day_like_another(week_dir, capsys):
    """It has no next day to end at: the command stopped on an overflow."""
    doc = json.loads(report(week_dir, "--from", "9999-12-31", "--to", "9999-12-31", capsys=capsys))
    assert doc["box"]["calls"] == 0


def test_the_days_are_the_boxs_own_without_tz(week_dir, tmp_path, capsys):
    """Every page shows times in the box's zone (its site settings'); the reports took
    the business hours' zone, else UTC, so "8 March" meant other calls there."""
    import sqlite3

    from firmware.reports.source import ReportSource

    data_dir = str(tmp_path / "data")
    shutil.copytree(week_dir, data_dir)
    WebDb(os.path.join(data_dir, "web.db")).close()  # a set-up box's: no account yet
    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    db.execute("CREATE TABLE IF NOT EXISTS site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    site = {"lines": [{"name": "Line %d" % n} for n in range(1, 5)], "time_zone": "America/New_York"}
    db.execute("INSERT OR REPLACE INTO site (key, value) VALUES ('settings', ?)", (json.dumps(site),))
    db.commit()
    db.close()
    doc = json.loads(report(data_dir, "--from", "2026-03-08", "--to", "2026-03-08", capsys=capsys))
    assert doc["box"]["calls"] == 1 and doc["box"]["hours"][19] == 1  # as with --tz America/New_York
    # The box's processes read the zone as it is when a report is made: it changes with
    # the settings page.
    zone = ["UTC"]
    source = ReportSource(data_dir, tz=lambda: zone[0])
    assert source.period("2026-03-08", "2026-03-08").tz == "UTC"
    zone[0] = "Europe/London"
    assert source.period("2026-03-08", "2026-03-08").tz == "Europe/London"


def test_a_report_of_some_lines_counts_their_playbacks_and_exports_alone(week_dir, capsys):
    """``--line`` reports on those lines: the playbacks and exports by user are of calls on
    them alone, as the web's report of one line counts them (line 2's report counted sam's
    and sue's playbacks on line 1, and sam's export); a report of every line counts them all."""
    assert week_json(week_dir, capsys, "--line", "2")["access"] == {
        "playback": {"sam": 1},
        "export": {},
        "export_refused": {},
    }
    assert week_json(week_dir, capsys, "--line", "1", "--line", "3")["access"] == {
        "playback": {"sam": 1, "sue": 1},
        "export": {"sam": 1},
        "export_refused": {"sue": 1},
    }
    assert week_json(week_dir, capsys)["access"]["playback"] == {"sam": 2, "sue": 1}
