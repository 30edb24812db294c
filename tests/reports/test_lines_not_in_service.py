"""A report says when a line was not in service: a line dead since before the period, or
still dead, raised no alarm in it, so the Alarms table alone showed a quiet line."""

import datetime as dt
import json
import os
import sqlite3

from board.sim.scenario import loads_scenario
from firmware.alarmlog import AlarmLog
from firmware.box import open_sim_host
from firmware.calls.calllog import SCHEMA
from firmware.mail.compose import report_message
from firmware.mail.settings import MailSettings
from firmware.reports.compute import build_report
from firmware.reports.formats import render, tables
from firmware.reports.period import parse_period
from firmware.reports.source import ReportSource

HOUR_US = 3600 * 10**6


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def _table(report):
    return next(rows for t, _, rows in tables(report) if t == "Lines not in service")


class _Clock:
    def wall_us(self):
        raise AssertionError("every change here is dated")


def _alarms(tmp_path, changes):
    """An empty call log and an alarm history of ``changes`` ``(kind, active, line, wall_us)``."""
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    alarms = AlarmLog(str(tmp_path / "alarms.db"), _Clock())
    for kind, active, line, wall_us in changes:
        alarms.set(kind, active, line=line, message=kind, wall_us=wall_us)
    return str(tmp_path / "calls.db"), alarms


def test_a_line_dead_since_before_the_period_and_still_dead_is_listed_in_every_form(tmp_path):
    # Line 2 lost its voltage on Saturday evening and was still dead when Monday's report
    # was made; line 1's handset was left off Sunday night until Monday 09:00 BST.
    calls_db, alarms = _alarms(
        tmp_path,
        [
            ("no_line_voltage", True, 2, _utc_us(2026, 3, 28, 18)),
            ("stuck_off_hook", True, 1, _utc_us(2026, 3, 29, 22)),
            ("stuck_off_hook", False, 1, _utc_us(2026, 3, 30, 8)),
            ("disk_warning", True, 0, _utc_us(2026, 3, 28, 18)),  # not a line fault
        ],
    )
    period = parse_period("2026-03-30", "2026-03-30", "Europe/London")
    now = _utc_us(2026, 3, 31, 7)
    report = build_report(calls_db, period, n_lines=2, alarms=alarms, now_us=now)
    assert report["alarms"] == []  # nothing raised on Monday: the Alarms table is empty
    assert report["line_outages"]["out"] == [
        {
            "line": 2,
            "cause": "no_line_voltage",
            "from_us": _utc_us(2026, 3, 28, 18),
            "to_us": None,
            "in_period_us": 24 * HOUR_US,
        },
        {
            "line": 1,
            "cause": "stuck_off_hook",
            "from_us": _utc_us(2026, 3, 29, 22),
            "to_us": _utc_us(2026, 3, 30, 8),
            "in_period_us": 9 * HOUR_US,  # from midnight BST (23:00 UTC) to 09:00 BST
        },
    ]
    assert report["line_outages"]["out_us_by_line"] == {"1": 9 * HOUR_US, "2": 24 * HOUR_US}
    no_voltage = "no voltage on the line: the phone line is unplugged or dead"
    off_hook = "off the hook for a long time with no call: a handset left off?"
    assert _table(report) == [
        ["2", "2026-03-28 18:00:00", "not cleared yet", "24:00:00", no_voltage],
        ["1", "2026-03-29 23:00:00", "2026-03-30 09:00:00", "9:00:00", off_hook],
    ]
    csv = render(report, "csv").decode()
    assert "A line was not in service for part of this period (line 1 for 9:00:00; line 2 for 24:00:00" in csv
    assert "2,2026-03-28 18:00:00,not cleared yet,24:00:00" in csv
    assert json.loads(render(report, "json"))["line_outages"] == report["line_outages"]
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render(report, "pdf"))
    assert os.system("pdftotext -layout %s %s" % (pdf, tmp_path / "r.txt")) == 0
    assert "Lines not in service" in (tmp_path / "r.txt").read_text()
    mail = report_message(
        MailSettings(sender="box@example.com"), ["o@example.com"], report, b"x", "csv", "Shop", now, "daily"
    )
    body = mail.get_body().get_content()
    assert "Line 2 not in service: Sat 28 Mar 2026, 18:00:00 GMT to not cleared yet, 24:00:00" in body
    assert (
        "Line 1 not in service: Sun 29 Mar 2026, 23:00:00 BST to Mon 30 Mar 2026, 09:00:00 BST, 9:00:00"
        in body
    )
    # The report of line 1 alone leaves line 2 out; asked for at 12:00 UTC, an open
    # outage counts up to then.
    one = build_report(calls_db, period, lines=[1], alarms=alarms, now_us=now)
    assert [o["line"] for o in one["line_outages"]["out"]] == [1]
    noon = build_report(calls_db, period, lines=[2], alarms=alarms, now_us=_utc_us(2026, 3, 30, 12))
    assert noon["line_outages"]["out_us_by_line"] == {"2": 13 * HOUR_US}


def test_faults_at_once_count_once_and_october_s_repeated_hour_says_its_zone(tmp_path):
    # 25 hours on 25 October; line 1 lost its voltage at 01:30 BST, went off-hook at 01:30
    # GMT (an hour later), and both cleared at 03:00 GMT.
    calls_db, alarms = _alarms(
        tmp_path,
        [
            ("no_line_voltage", True, 1, _utc_us(2026, 10, 25, 0, 30)),
            ("stuck_off_hook", True, 1, _utc_us(2026, 10, 25, 1, 30)),
            ("no_line_voltage", False, 1, _utc_us(2026, 10, 25, 3)),
            ("stuck_off_hook", False, 1, _utc_us(2026, 10, 25, 3)),
            ("no_line_voltage", True, 1, _utc_us(2026, 10, 25, 23, 30)),  # on past midnight
            ("no_line_voltage", False, 1, _utc_us(2026, 10, 26, 1)),
        ],
    )
    period = parse_period("2026-10-25", "2026-10-25", "Europe/London")
    report = build_report(calls_db, period, n_lines=1, alarms=alarms, now_us=_utc_us(2026, 11, 1))
    assert [row[1:4] for row in _table(report)] == [
        ["2026-10-25 01:30:00 BST", "2026-10-25 03:00:00", "2:30:00"],
        ["2026-10-25 01:30:00 GMT", "2026-10-25 03:00:00", "1:30:00"],
        ["2026-10-25 23:30:00", "2026-10-26 01:00:00", "0:30:00"],
    ]
    assert report["line_outages"]["out_us_by_line"] == {"1": 3 * HOUR_US}
    # The next week has the rest of the last one; the week after, nothing (and no sentence).
    week = build_report(calls_db, parse_period("2026-10-26", "2026-11-01", "Europe/London"), n_lines=1,
                        alarms=alarms, now_us=_utc_us(2026, 11, 9))  # fmt: skip
    assert week["line_outages"]["out_us_by_line"] == {"1": HOUR_US}
    after = build_report(calls_db, parse_period("2026-11-02", "2026-11-08", "Europe/London"), n_lines=1,
                         alarms=alarms, now_us=_utc_us(2026, 11, 9))  # fmt: skip
    assert after["line_outages"] == {"out": [], "out_us_by_line": {}}
    assert _table(after) == [] and "A line was not in service" not in render(after, "csv").decode()


def test_an_unplugged_line_on_the_simulated_box_is_cut_to_the_day(tmp_path, synth):
    # Unplugged two minutes before midnight, plugged back in five minutes later.
    doc = {
        "start": "2026-03-28T23:58:00Z",
        "country": "uk",
        "lines": 2,
        "calls": [{"line": 2, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0}],
        "faults": [{"line": 1, "at": 30.0, "kind": "no_line_voltage", "duration": 300.0}],
    }
    data_dir = str(tmp_path / "box")
    host = open_sim_host(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    host.start()
    assert host.board.run()
    host.stop()
    alarms = AlarmLog.open_existing(data_dir)
    try:
        source = ReportSource(data_dir, n_lines=2, alarms=alarms, tz="Europe/London")
        report = source.report(source.period("2026-03-29", "2026-03-29"))
        (out,) = report["line_outages"]["out"]
        midnight = _utc_us(2026, 3, 29)
        assert out["line"] == 1 and out["cause"] == "no_line_voltage"
        assert _utc_us(2026, 3, 28, 23, 58, 30) <= out["from_us"] < midnight < out["to_us"]
        assert out["in_period_us"] == out["to_us"] - midnight
        assert report["alarms"] == []  # raised the day before
        before = source.report(source.period("2026-03-28", "2026-03-28"))
        assert before["line_outages"]["out"][0]["in_period_us"] == midnight - out["from_us"]
    finally:
        alarms.close()


def test_a_line_marked_not_connected_is_said_so_not_listed_as_out_of_service(tmp_path):
    """An empty socket (a 4-line HAT at a 2-line site) was listed as not in service, every
    day, for good: marked not connected, the report says so instead."""
    from firmware.config import BoxConfig, save_config
    from firmware.reports.tables import outages_note

    calls_db, alarms = _alarms(
        tmp_path,
        [
            ("no_line_voltage", True, 2, _utc_us(2026, 3, 28, 18)),
            ("no_line_voltage", True, 1, _utc_us(2026, 3, 30, 8)),
        ],
    )
    save_config(str(tmp_path), BoxConfig(not_connected=[2]))
    period = parse_period("2026-03-30", "2026-03-30", "Europe/London")
    source = ReportSource(str(tmp_path), n_lines=2, alarms=alarms, wall_us=lambda: _utc_us(2026, 3, 31, 7))
    report = source.report(period)
    outages = report["line_outages"]
    assert [o["line"] for o in outages["out"]] == [1] and list(outages["out_us_by_line"]) == ["1"]
    assert outages["not_connected"] == [2]
    assert [row[0] for row in _table(report)] == ["1"]
    assert outages_note(report).endswith(
        "Line 2 is marked not connected (nothing is plugged into its socket): not listed under "
        '"Lines not in service", and never recorded.'
    )
