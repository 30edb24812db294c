"""A report says when the box was not recording: a day it was off must not read as a
day without calls (a power cut, a crash, a clean stop, before its first start, still
down at the report's end, across the UK's clock change)."""

import datetime as dt
import json
import os
import shutil
import sqlite3

from board.sim.scenario import loads_scenario
from firmware import words
from firmware.box import open_audit, open_sim_box, open_sim_host
from firmware.calls.calllog import SCHEMA, iso_ms
from firmware.mail.compose import report_message
from firmware.mail.settings import MailSettings
from firmware.reports.compute import build_report
from firmware.reports.formats import render, tables
from firmware.reports.period import parse_period
from firmware.reports.source import ReportSource
from firmware.reports.tables import running_note
from firmware.storage.audit import SEALED_KEY
from firmware.storage.keystore import Argon2Params, KeyStore
from firmware.uptime import ALIVE_EVERY_US, last_alive_us

MIN_US = 60_000_000


def _utc_us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


def _table(report):
    return next(rows for t, _, rows in tables(report) if t == "When the box was not recording")


def _keyed(tmp_path):
    data_dir = str(tmp_path / "box")
    os.makedirs(data_dir)
    KeyStore(data_dir, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "admin", "correct horse battery 7"
    )
    return data_dir


def _doc(**extra):
    return {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0}],
        **extra,
    }


def test_a_power_cut_is_a_time_not_recorded_in_every_form(tmp_path, synth):
    data_dir = _keyed(tmp_path)
    doc = _doc(power=[{"at": 20, "cut": True}, {"at": 80, "cut": False}])
    host = open_sim_host(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    host.start()
    assert host.board.run()
    host.stop()
    source = ReportSource(data_dir, n_lines=1, wall_us=lambda: _utc_us(2026, 3, 3, 12))
    report = source.report(source.period("2026-03-02", "2026-03-02"))
    # Before its first start at 09:00, the cut, and stopped at the scenario's end since.
    assert [d["cause"] for d in report["running"]["down"]] == ["not_started", "power_fail", "clean_stop"]
    down = report["running"]["down"][1]
    start = _utc_us(2026, 3, 2, 9)
    # From the power-fail warning to the start 1 s after the power came back.
    assert down["cause"] == "power_fail"
    assert start + 20 * 10**6 <= down["from_us"] < start + 21 * 10**6
    assert down["to_us"] == start + 81 * 10**6
    assert _table(report)[1] == [
        "2026-03-02 09:00:20",
        "2026-03-02 09:01:21",
        "0:01:01",
        "power cut (the box was warned and sealed its recordings)",
    ]
    csv = render(report, "csv").decode()
    assert "The box was not recording for" in csv.splitlines()[1]
    assert "2026-03-02 09:00:20,2026-03-02 09:01:21" in csv
    body = (
        report_message(
            MailSettings(sender="box@example.com"),
            ["o@example.com"],
            report,
            b"x",
            "csv",
            "Shop",
            start,
            "daily",
        )
        .get_body()
        .get_content()
    )
    assert "The box was not recording for" in body
    # The mail, as the pages write times; the CSV keeps them for a spreadsheet (above).
    assert "Not recording: Mon 2 Mar 2026, 09:00:20 GMT to Mon 2 Mar 2026, 09:01:21 GMT, 0:01:01" in body


def test_a_crash_is_dated_from_the_last_sign_of_life(tmp_path, synth):
    data_dir = _keyed(tmp_path)
    box = open_sim_box(loads_scenario(json.dumps(_doc())), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * MIN_US + 1)
    alive = last_alive_us(data_dir)
    assert alive == _utc_us(2026, 3, 2, 9) + 5 * MIN_US  # one sign a minute
    crashed = str(tmp_path / "crashed")
    shutil.copytree(data_dir, crashed, ignore=shutil.ignore_patterns("*.lock", "lock"))
    box.stop()
    # The copy is the card as the crash left it: no clean stop. Started again 2 h later.
    later = _doc(start="2026-03-02T11:00:00Z", calls=[])
    again = open_sim_box(loads_scenario(json.dumps(later)), crashed, synth=synth)
    again.start()
    [alarm] = [a for a in again.alarm_log.history() if a["kind"] == "power_loss_restart"]
    again.stop()
    with open_audit(crashed) as audit:
        entry = audit.entries(limit=1, action="box_start")[0]
    assert entry.details["after"] == "crash" and entry.details["down_from"] == iso_ms(alive)
    report = ReportSource(crashed, n_lines=1).report(parse_period("2026-03-02", "2026-03-02"))
    assert [(d["from_us"], d["to_us"], d["cause"]) for d in report["running"]["down"]] == [
        (None, _utc_us(2026, 3, 2, 9), "not_started"),
        (alive, _utc_us(2026, 3, 2, 11), "crash"),
        (_utc_us(2026, 3, 2, 11), None, "clean_stop"),  # still stopped
    ]
    # The dashboard's and the mail's words for the alarm at that start, and the report's.
    why = _table(report)[1][3]
    assert why == "power cut or crash (no clean stop; from its last sign of life)"
    assert words.UNCLEAN_END in words.ALARMS["power_loss_restart"] and words.UNCLEAN_END in alarm["message"]


def test_a_first_run_that_crashed_in_its_first_minute_is_not_said_an_older_release_s(tmp_path, synth):
    """A data folder's first run crashed 10 s in, before its box_start (written a minute
    in): the next start says after a crash, with nothing before it on record. The report
    said the release before kept no record; it says how the run before ended, in the
    alarm's words, and that its start was not on record."""
    data_dir = _keyed(tmp_path)
    box = open_sim_box(loads_scenario(json.dumps(_doc(calls=[]))), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 10_000_000)
    crashed = str(tmp_path / "crashed")
    shutil.copytree(data_dir, crashed, ignore=shutil.ignore_patterns("*.lock", "lock"))
    box.stop()
    again = open_sim_box(
        loads_scenario(json.dumps(_doc(start="2026-03-02T11:00:00Z", calls=[]))), crashed, synth=synth
    )
    again.start()
    again.clock.run_until(again.clock.now_us() + 61 * 10**6)
    [start] = again.audit.entries(limit=5, action="box_start")
    again.stop()
    assert (start.details["after"], start.details["down_from"]) == ("crash", None)
    source = ReportSource(crashed, n_lines=1, wall_us=lambda: _utc_us(2026, 3, 2, 12))
    report = source.report(source.period("2026-03-02", "2026-03-02"))
    assert report["running"]["first_start_after"] == "crash"
    text = render(report, "csv").decode()
    assert "kept no record" not in text
    said = (
        "When the box was running is on record from %s only: the run before it ended in a "
        "power cut or crash before its start was on record."
    )
    # The CSV dates it as its every other row (a spreadsheet's); the page, PDF and mail as the pages.
    assert said % "2026-03-02 11:00:00" in text
    assert said % "Mon 2 Mar 2026, 11:00:00 GMT" in running_note(report)


def _box_audit(tmp_path, events):
    """An audit trail holding ``events`` ``(wall_us, action, details)``, and an empty call log."""
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    with open_audit(str(tmp_path)) as audit:
        for wall_us, action, details in events:
            audit.append("system", action, "box", details, wall_us)
    return str(tmp_path / "calls.db"), str(tmp_path / "audit.db")


def test_a_period_before_the_first_start_says_so_rather_than_zero(tmp_path):
    first = _utc_us(2026, 3, 10, 9)
    calls_db, audit_db = _box_audit(
        tmp_path, [(first, "box_start", {"after": "first_start", "down_from": None})]
    )
    report = build_report(
        calls_db, parse_period("2026-03-02", "2026-03-08", "Europe/London"), audit_db=audit_db
    )
    assert report["running"]["before_first_start"]
    said = "first started after this period, on %s:"
    assert said % "2026-03-10 09:00:00" in render(report, "csv").decode()
    assert said % "Tue 10 Mar 2026, 09:00:00 GMT" in running_note(report)
    # A period that straddles it: not recording up to the start, recording since.
    now = first + 10**12  # the recorder running then (its sign of life fresh)
    report = build_report(
        calls_db, parse_period("2026-03-10", "2026-03-10", "UTC"), audit_db=audit_db, now_us=now, alive_us=now
    )
    assert not report["running"]["before_first_start"]
    assert _table(report) == [
        ["(the beginning)", "2026-03-10 09:00:00", "9:00:00", "before the box was first started"]
    ]


def test_across_the_october_clock_change_and_still_down_at_the_end(tmp_path):
    # Stopped at 00:30 BST on the night the clocks go back, started again at 01:30 GMT:
    # two hours, in a day of 25. Then stopped at 22:00 GMT and not started again.
    stop = _utc_us(2026, 10, 24, 23, 30)
    calls_db, audit_db = _box_audit(
        tmp_path,
        [
            (_utc_us(2026, 10, 1), "box_start", {"after": "first_start", "down_from": None}),
            (stop, "box_stop", {}),
            (_utc_us(2026, 10, 25, 1, 30), "box_start", {"after": "clean_stop", "down_from": iso_ms(stop)}),
            (_utc_us(2026, 10, 25, 22), "box_stop", {}),
        ],
    )
    period = parse_period("2026-10-25", "2026-10-25", "Europe/London")
    report = build_report(calls_db, period, audit_db=audit_db, now_us=_utc_us(2026, 10, 26, 9))
    assert _table(report) == [
        ["2026-10-25 00:30:00", "2026-10-25 01:30:00 GMT", "2:00:00", "stopped (a clean stop)"],
        ["2026-10-25 22:00:00", "not running again yet", "2:00:00", "stopped (a clean stop)"],
    ]
    assert report["running"]["down_us"] == 4 * 3600 * 10**6
    # Asked for at 23:00 the same day, the open gap counts up to then only.
    report = build_report(calls_db, period, audit_db=audit_db, now_us=_utc_us(2026, 10, 25, 23))
    assert report["running"]["down"][-1]["in_period_us"] == 3600 * 10**6


def test_a_gap_dated_by_a_clock_not_set_is_at_least_its_length_in_every_form(tmp_path):
    """A Pi restarted after a power cut at the time it last saved, its clock not set yet:
    the gap measured is too short, and the report gave it as exact. It says "at least",
    and why, on the page, in the CSV, the PDF, the mail and the JSON; the clock set later
    in the run dates the start again (clock_set) and the gap is exact."""
    stop, saved = _utc_us(2026, 3, 2, 9, 10), _utc_us(2026, 3, 2, 9, 10, 30)
    events = [
        (
            _utc_us(2026, 3, 2, 8),
            "box_start",
            {"after": "first_start", "down_from": None, "clock_synced": True},
        ),
        (stop, "box_stop", {}),
        (
            saved + MIN_US,
            "box_start",
            {"after": "crash", "down_from": iso_ms(stop), "started": iso_ms(saved), "clock_synced": False},
        ),
    ]
    calls_db, audit_db = _box_audit(tmp_path, events)
    period = parse_period("2026-03-02", "2026-03-02", "UTC")
    now = _utc_us(2026, 3, 2, 16)  # the recorder running then (its sign of life fresh)
    report = build_report(calls_db, period, audit_db=audit_db, now_us=now, alive_us=now)
    approximate = "times approximate: the clock was not set"
    why = "power cut or crash (no clean stop; from its last sign of life); " + approximate
    assert _table(report)[1] == ["2026-03-02 09:10:00", "2026-03-02 09:10:30", "at least 0:00:30", why]
    assert [d["approximate"] for d in report["running"]["down"]] == [False, True]
    assert json.loads(render(report, "json"))["running"]["down"][1]["approximate"] is True
    note = "The box was not recording for at least 8:00:30 of this period"
    csv = render(report, "csv").decode()
    assert note in csv.splitlines()[1] and approximate in csv.splitlines()[1]
    assert "2026-03-02 09:10:00,2026-03-02 09:10:30,at least 0:00:30," in csv
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render(report, "pdf"))
    assert os.system("pdftotext %s %s" % (pdf, tmp_path / "r.txt")) == 0
    text = " ".join((tmp_path / "r.txt").read_text().split())
    assert "at least 0:00:30" in text and note in text
    body = (
        report_message(
            MailSettings(sender="box@example.com"),
            ["o@example.com"],
            report,
            b"x",
            "csv",
            "Shop",
            now,
            "daily",
        )
        .get_body()
        .get_content()
    )
    said = "Not recording: Mon 2 Mar 2026, 09:10:00 UTC to Mon 2 Mar 2026, 09:10:30 UTC, at least 0:00:30"
    assert "%s (%s)" % (said, why) in body

    # Six hours really passed: NTP set the clock, and the start is dated again.
    real = saved + 6 * 3600 * 10**6
    fix = {"started": iso_ms(real), "was": iso_ms(saved), "correction_s": 6 * 3600.0}
    with open_audit(str(tmp_path)) as audit:
        audit.append("system", "clock_set", "box", fix, real + 2 * MIN_US)
    report = build_report(calls_db, period, audit_db=audit_db, now_us=now, alive_us=now)
    assert [(d["from_us"], d["to_us"], d["approximate"]) for d in report["running"]["down"]] == [
        (None, _utc_us(2026, 3, 2, 8), False),
        (stop, real, False),
    ]
    assert _table(report)[1][2:] == [
        "6:00:30",
        "power cut or crash (no clean stop; from its last sign of life)",
    ]
    assert approximate not in render(report, "csv").decode()


def test_a_restart_dated_before_the_stop_by_a_clock_not_set_is_still_listed(tmp_path):
    """The clock the Pi saved can be older than the last run's end: the gap measures
    nothing, and was left out, the restart unseen. It is listed, at least 0:00:00."""
    stop = _utc_us(2026, 3, 2, 9, 10)
    events = [
        (_utc_us(2026, 3, 2, 8), "box_start", {"after": "first_start", "down_from": None}),
        (stop, "box_stop", {}),
        (
            stop,
            "box_start",
            {
                "after": "clean_stop",
                "down_from": iso_ms(stop),
                "started": iso_ms(stop - MIN_US),
                "clock_synced": False,
            },
        ),
    ]
    calls_db, audit_db = _box_audit(tmp_path, events)
    report = build_report(
        calls_db, parse_period("2026-03-02", "2026-03-02", "UTC"), audit_db=audit_db, now_us=stop + MIN_US
    )
    assert _table(report)[1][2:] == [
        "at least 0:00:00",
        "stopped (a clean stop); times approximate: the clock was not set",
    ]


def test_a_recorder_gone_without_a_stop_is_not_running_from_its_last_sign(tmp_path):
    start = _utc_us(2026, 3, 2, 8)
    calls_db, audit_db = _box_audit(
        tmp_path, [(start, "box_start", {"after": "first_start", "down_from": None})]
    )
    alive = start + 60 * MIN_US
    period = parse_period("2026-03-02", "2026-03-02")
    fresh = build_report(calls_db, period, audit_db=audit_db, now_us=alive + ALIVE_EVERY_US, alive_us=alive)
    assert [d["cause"] for d in fresh["running"]["down"]] == ["not_started"]
    stale = build_report(calls_db, period, audit_db=audit_db, now_us=alive + 10 * MIN_US, alive_us=alive)
    assert stale["running"]["down"][-1] == {
        "from_us": alive,
        "to_us": None,
        "cause": "no_sign_of_life",
        "in_period_us": 10 * MIN_US,
        "approximate": False,
    }


def test_a_run_with_no_sign_of_life_and_no_failed_starts_is_not_running_for_ever(tmp_path):
    """A run's box_start, with no stop after it, and no sign of life to read (the card refused
    it, or a cut left the file empty) nor a note of failed starts: the report said the box was
    recording however long ago that run crashed. Its box_start, written a minute into it with
    its first sign, stands for that sign: running while that is under three minutes old, not
    running from it after that; a clock_set the run wrote later (at a sign) is a later sign."""
    start = _utc_us(2026, 3, 2, 8)
    written = start + MIN_US
    begun = (written, "box_start", {"after": "first_start", "down_from": None, "started": iso_ms(start)})
    period = parse_period("2026-03-02", "2026-03-02")

    def down(events, now_us):
        os.makedirs(tmp_path / str(now_us) / str(len(events)))
        calls_db, audit_db = _box_audit(tmp_path / str(now_us) / str(len(events)), events)
        report = build_report(calls_db, period, audit_db=audit_db, now_us=now_us, alive_us=None)
        return [(d["from_us"], d["to_us"], d["cause"]) for d in report["running"]["down"][1:]]

    assert down([begun], written + 2 * MIN_US) == []  # a run a sign may yet come from
    assert down([begun], written + 10 * MIN_US) == [(written, None, "no_sign_of_life")]
    stepped = {
        "started": iso_ms(start + 30_000_000),
        "was": iso_ms(start),
        "correction_s": 30.0,
        "stepped": True,
    }
    later = [begun, (written + 5 * MIN_US, "clock_set", stepped)]
    assert down(later, written + 7 * MIN_US) == []
    assert down(later, written + 10 * MIN_US) == [(written + 5 * MIN_US, None, "no_sign_of_life")]


def test_calls_before_setup_are_a_figure_of_their_own_not_excluded_by_a_rule(tmp_path, synth):
    # No recording key: the rules say record, the box cannot. Counted as "Excluded by
    # rule" before, which docs/reports.md defines as a rule that said skip.
    data_dir = str(tmp_path / "box")
    host = open_sim_host(loads_scenario(json.dumps(_doc())), data_dir, synth=synth)
    host.start()
    assert host.board.run()
    host.stop()
    report = ReportSource(data_dir, n_lines=1).report(parse_period("2026-03-02", "2026-03-02"))
    coverage = report["box"]["coverage"]
    assert (coverage["connected"], coverage["recorded"], coverage["excluded"]) == (1, 0, 0)
    assert (coverage["before_setup"], coverage["failed"], coverage["excluded_by_reason"]) == (1, 0, {})
    summary = dict((row[0], row[1]) for row in tables(report)[0][2])
    assert (summary["Before setup, not recorded"], summary["Excluded by rule"]) == ("1", "0")
    excluded = next(rows for t, _, rows in tables(report) if t == "Excluded by rule")
    assert excluded == []
    # Nor a notice the business turned off: none had been chosen yet ("Consent notice off"
    # counted it, and the year in review said "The notice was switched off").
    assert report["box"]["consent"] == {"given": 0, "failed": 0, "unheard": 0, "off": 0}


def _refused(data_dir):
    from firmware.errors import StorageError

    return StorageError(28, "cannot open the data in %s: the card is full (12 KiB free)" % data_dir)


def test_the_time_the_recorder_refused_to_start_says_why(tmp_path, synth, monkeypatch):
    """Stopped at 09:05; from 09:06 every start failed (noted in the run directory, as the
    recorder's service does) until the one at 10:00 that worked and audited the failures.
    The time from 09:06 is "did not start" and why, not a clean stop; while the box is
    still refusing, a report says so of the time still going on."""
    from firmware import startfail

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    data_dir = _keyed(tmp_path)
    box = open_sim_box(loads_scenario(json.dumps(_doc(calls=[]))), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * MIN_US)
    box.stop()
    stopped, first_failure = _utc_us(2026, 3, 2, 9, 5), _utc_us(2026, 3, 2, 9, 6)
    startfail.record(str(run), _refused(data_dir), first_failure)
    startfail.record(str(run), _refused(data_dir), _utc_us(2026, 3, 2, 9, 30))
    reason = startfail.read(str(run))["error"]
    assert "the card is full" in reason

    source = ReportSource(data_dir, n_lines=1, wall_us=lambda: _utc_us(2026, 3, 2, 9, 40))
    report = source.report(parse_period("2026-03-02", "2026-03-02", "UTC"))
    assert [(d["from_us"], d["to_us"], d["cause"]) for d in report["running"]["down"]] == [
        (None, _utc_us(2026, 3, 2, 9), "not_started"),
        (stopped, first_failure, "clean_stop"),
        (first_failure, None, "start_failed"),
    ]
    assert _table(report)[-1] == [
        "2026-03-02 09:06:00",
        "not running again yet",
        "0:34:00",
        "did not start: " + reason,
    ]

    # The start that works, as the recorder's command runs it (firmware/cli.py).
    later = _doc(start="2026-03-02T10:00:00Z", calls=[])
    again = open_sim_box(loads_scenario(json.dumps(later)), data_dir, synth=synth)
    again.start()
    again.note_failed_starts(startfail.read(str(run)))
    startfail.clear(str(run))
    again.clock.run_until(again.clock.now_us() + MIN_US + 1)
    again.stop()
    source = ReportSource(data_dir, n_lines=1, wall_us=lambda: _utc_us(2026, 3, 3, 12))
    report = source.report(parse_period("2026-03-02", "2026-03-02", "UTC"))
    down = report["running"]["down"]
    assert [(d["from_us"], d["to_us"], d["cause"]) for d in down] == [
        (None, _utc_us(2026, 3, 2, 9), "not_started"),
        (stopped, first_failure, "clean_stop"),
        (first_failure, _utc_us(2026, 3, 2, 10), "start_failed"),
        (_utc_us(2026, 3, 2, 10, 1) + 1, None, "clean_stop"),
    ]
    assert down[2]["reason"] == reason and "reason" not in down[1]
    why = "did not start: " + reason
    assert _table(report)[2] == ["2026-03-02 09:06:00", "2026-03-02 10:00:00", "0:54:00", why]
    assert "did not start: " + reason in render(report, "csv").decode()


def test_starts_that_failed_before_the_clock_was_set_are_dated_by_the_clock_set_right(
    tmp_path, synth, monkeypatch
):
    """Stopped at 09:05; the power off three hours. The Pi boots at 12:05:30 with its clock at
    the time it saved (09:05:30, not set) and the recorder's starts fail; NTP sets the clock,
    and the start at 12:06:30 works. The failures were dated by the clock not set: the report
    said the box did not start from 09:05:30, three hours it was off, an invented time. Noted
    on the monotonic clock too, they are dated again by the clock as it is read: from
    12:05:30; read while the clock is still not set, the time is said approximate."""
    from firmware import startfail

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    data_dir = _keyed(tmp_path)
    box = open_sim_box(loads_scenario(json.dumps(_doc(calls=[]))), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * MIN_US)
    box.stop()
    stopped, booted, behind = _utc_us(2026, 3, 2, 9, 5), _utc_us(2026, 3, 2, 12, 5, 30), 3 * 60 * MIN_US
    mono0 = 1_000 * 10**6  # the monotonic clock at the boot's first failure
    clocks = {}
    monkeypatch.setattr(startfail, "clocks_now", lambda: clocks["now"])

    def at(seconds, synced):  # the clocks that many seconds after the first failure
        wall = booted + seconds * 10**6 - (0 if synced else behind)
        clocks["now"] = (wall, mono0 + seconds * 10**6, synced)
        return clocks["now"]

    startfail.record(str(run), _refused(data_dir), *at(0, False))
    startfail.record(str(run), _refused(data_dir), *at(30, False))

    def last_down(now_us):
        source = ReportSource(data_dir, n_lines=1, wall_us=lambda: now_us)
        down = source.report(parse_period("2026-03-02", "2026-03-02", "UTC"))["running"]["down"]
        return [(d["from_us"], d["to_us"], d["cause"], d["approximate"]) for d in down[-2:]]

    wall, _, _ = at(40, False)  # still not set: by that clock, and said so
    assert last_down(wall) == [
        (stopped, booted - behind, "clean_stop", True),
        (booted - behind, None, "start_failed", True),
    ]
    wall, _, _ = at(40, True)  # set meanwhile
    assert last_down(wall) == [(stopped, booted, "clean_stop", False), (booted, None, "start_failed", False)]

    # The start that works, once the clock is set, as the recorder's command runs it.
    at(60, True)
    again = open_sim_box(
        loads_scenario(json.dumps(_doc(start="2026-03-02T12:06:30Z", calls=[]))), data_dir, synth=synth
    )
    again.start()
    again.note_failed_starts(startfail.read(str(run)))
    startfail.clear(str(run))
    again.clock.run_until(again.clock.now_us() + MIN_US + 1)
    again.stop()
    source = ReportSource(data_dir, n_lines=1, wall_us=lambda: _utc_us(2026, 3, 3, 12))
    report = source.report(parse_period("2026-03-02", "2026-03-02", "UTC"))
    assert [(d["from_us"], d["to_us"], d["cause"], d["approximate"]) for d in report["running"]["down"]] == [
        (None, _utc_us(2026, 3, 2, 9), "not_started", False),
        (stopped, booted, "clean_stop", False),
        (booted, booted + MIN_US, "start_failed", False),
        (booted + 2 * MIN_US + 1, None, "clean_stop", False),
    ]
    assert _table(report)[2][:3] == ["2026-03-02 12:05:30", "2026-03-02 12:06:30", "0:01:00"]


def test_starts_that_failed_by_a_clock_set_later_in_the_run_are_dated_again_with_its_start(tmp_path):
    """The start that worked came before the clock was set too: its failures and its start
    were dated by the same clock, three hours early. Once the run audits clock_set, both
    are dated again by as much (not its start alone, which made three hours of a power cut
    a failed start's), and neither is approximate any more."""
    behind, stop = 3 * 60 * MIN_US, _utc_us(2026, 3, 2, 9, 5)
    first_failure, started = _utc_us(2026, 3, 2, 12, 5, 30), _utc_us(2026, 3, 2, 12, 6, 30)
    failed = {
        "since": "2026-03-02 09:05:30 UTC",  # first_failure on the clock not set
        "last_failure": "2026-03-02 09:06:00 UTC",
        "attempts": 2,
        "reason": "the card is full",
        "clock_synced": False,
    }
    events = [
        (_utc_us(2026, 3, 2, 9), "box_start", {"after": "first_start", "down_from": None}),
        (stop, "box_stop", {}),
        (started - behind, "recorder_start_failed", failed),
        (
            started - behind + MIN_US,
            "box_start",
            {
                "after": "clean_stop",
                "down_from": iso_ms(stop),
                "started": iso_ms(started - behind),
                "clock_synced": False,
            },
        ),
        (
            started + 2 * MIN_US,
            "clock_set",
            {"started": iso_ms(started), "was": iso_ms(started - behind), "correction_s": 3 * 3600.0},
        ),
    ]
    calls_db, audit_db = _box_audit(tmp_path, events)
    period = parse_period("2026-03-02", "2026-03-02", "UTC")
    report = build_report(calls_db, period, audit_db=audit_db, now_us=started + 3 * MIN_US)
    assert [(d["from_us"], d["to_us"], d["cause"], d["approximate"]) for d in report["running"]["down"]] == [
        (None, _utc_us(2026, 3, 2, 9), "not_started", False),
        (stop, first_failure, "clean_stop", False),
        (first_failure, started, "start_failed", False),
    ]


def test_a_crashed_run_whose_starts_fail_now_is_not_said_running(tmp_path, synth, monkeypatch):
    """The run crashed a minute after its last sign of life, and every start since fails.
    Its box_start, with no stop after it, said "running", and the sign of life was under
    three minutes old (or gone): the report said the box was recording, though its
    starts were failing. The note of the failed starts says it is not: not recording from
    the last sign of life (without one, from the first failed start)."""
    from firmware import startfail

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    data_dir = _keyed(tmp_path)
    box = open_sim_box(loads_scenario(json.dumps(_doc(calls=[]))), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * MIN_US + 1)
    alive = last_alive_us(data_dir)
    crashed = str(tmp_path / "crashed")
    shutil.copytree(data_dir, crashed, ignore=shutil.ignore_patterns("*.lock", "lock"))
    box.stop()
    first_failure = alive + MIN_US
    startfail.record(str(run), _refused(crashed), first_failure)
    startfail.record(str(run), _refused(crashed), first_failure + 30_000_000)

    def down(now_us):
        source = ReportSource(crashed, n_lines=1, wall_us=lambda: now_us)
        report = source.report(parse_period("2026-03-02", "2026-03-02", "UTC"))
        return [(d["from_us"], d["to_us"], d["cause"]) for d in report["running"]["down"][1:]]

    now = alive + 2 * MIN_US  # the sign of life not three minutes old yet
    assert down(now) == [(alive, first_failure, "no_sign_of_life"), (first_failure, None, "start_failed")]
    os.unlink(os.path.join(crashed, "alive"))
    assert down(now) == [(first_failure, None, "start_failed")]
    startfail.clear(str(run))
    # Nor a note: its box_start, a minute into the run, is its last sign on record (said
    # running for ever before; test_a_run_with_no_sign_of_life_and_no_failed_starts_...).
    assert down(now) == [(_utc_us(2026, 3, 2, 9, 1), None, "no_sign_of_life")]


def test_failed_starts_a_first_run_audited_before_it_crashed_are_kept(tmp_path, synth, monkeypatch):
    """No start on record; from 08:00 every start failed, until the one at 10:00, which
    audited the failures and crashed within its first minute (no box_start, no sign of
    life). The next start, at 11:00, wrote box_start after a crash with no down_from, and
    the report dropped the failures: the time from 08:00 is "did not start" and why."""
    from firmware import startfail

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    data_dir = _keyed(tmp_path)
    first_failure = _utc_us(2026, 3, 2, 8)
    startfail.record(str(run), _refused(data_dir), first_failure)
    startfail.record(str(run), _refused(data_dir), _utc_us(2026, 3, 2, 9, 59))
    reason = startfail.read(str(run))["error"]
    # The start that works, as the recorder's command runs it (firmware/cli.py), 10 s long.
    doc = _doc(start="2026-03-02T10:00:00Z", calls=[])
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    box.start()
    box.note_failed_starts(startfail.read(str(run)))
    startfail.clear(str(run))
    box.clock.run_until(box.clock.now_us() + 10_000_000)
    crashed = str(tmp_path / "crashed")
    shutil.copytree(data_dir, crashed, ignore=shutil.ignore_patterns("*.lock", "lock"))
    box.stop()
    # The copy is the card as the crash left it. Started again at 11:00, for two minutes.
    later = _doc(start="2026-03-02T11:00:00Z", calls=[])
    again = open_sim_box(loads_scenario(json.dumps(later)), crashed, synth=synth)
    again.start()
    again.clock.run_until(again.clock.now_us() + 2 * MIN_US)
    again.stop()
    with open_audit(crashed) as audit:
        [entry] = audit.entries(limit=5, action="box_start")
    assert entry.details["after"] == "crash" and entry.details["down_from"] is None

    source = ReportSource(crashed, n_lines=1, wall_us=lambda: _utc_us(2026, 3, 3, 12))
    report = source.report(parse_period("2026-03-02", "2026-03-02", "UTC"))
    running = report["running"]
    assert [(d["from_us"], d["to_us"], d["cause"]) for d in running["down"]] == [
        (first_failure, _utc_us(2026, 3, 2, 11), "start_failed"),
        (_utc_us(2026, 3, 2, 11, 2), None, "clean_stop"),
    ]
    assert running["down"][0]["reason"] == reason
    assert running["records_from_us"] == first_failure  # nothing on record before it
    why = "did not start: " + reason
    assert _table(report)[0] == ["2026-03-02 08:00:00", "2026-03-02 11:00:00", "3:00:00", why]
    text = render(report, "csv").decode()
    said = "The box has no start on record before it failed to start from %s."
    assert said % "2026-03-02 08:00:00" in text
    assert said % "Mon 2 Mar 2026, 08:00:00 UTC" in running_note(report)
    assert "the release before kept no record" not in text


def test_a_box_that_never_started_says_why_not_that_it_kept_no_record(tmp_path):
    """Set up at 08:00 with its keys missing since (no box_start at all): every start
    failed. The report said it kept no record; the time from the first failed start is
    "did not start" and why, while the box refuses (the note in the run directory) and
    in the first minute of the start that worked at last (its audited failures)."""
    first_failure, worked = _utc_us(2026, 3, 2, 8), _utc_us(2026, 3, 2, 10)
    reason = "no recording key: run `linekeeper setup`"
    calls_db, audit_db = _box_audit(tmp_path, [(first_failure - MIN_US, "init", {"via": "cli"})])
    period = parse_period("2026-03-02", "2026-03-02", "UTC")
    failing = {"error": reason, "since_us": first_failure, "last_us": worked - MIN_US, "attempts": 1800}
    report = build_report(calls_db, period, audit_db=audit_db, now_us=worked, failing=failing)
    running = report["running"]
    assert running["down"] == [
        {
            "from_us": first_failure,
            "to_us": None,
            "cause": "start_failed",
            "in_period_us": 2 * 60 * MIN_US,
            "approximate": False,
            "reason": reason,
        }
    ]
    assert running["known"] and running["records_from_us"] == first_failure
    assert running["first_start_us"] is None and not running["before_first_start"]
    assert _table(report) == [
        ["2026-03-02 08:00:00", "not running again yet", "2:00:00", "did not start: " + reason]
    ]
    text = render(report, "csv").decode()
    assert "kept no record" not in text
    said = "The box has no start on record; it failed to start from %s."
    assert said % "2026-03-02 08:00:00" in text
    assert said % "Mon 2 Mar 2026, 08:00:00 UTC" in running_note(report)

    # The start that worked audited the failures, its box_start a minute away.
    failed = {
        "since": "2026-03-02 08:00:00 UTC",
        "last_failure": "2026-03-02 09:59:00 UTC",
        "attempts": 1800,
        "reason": reason,
    }
    with open_audit(str(tmp_path)) as audit:
        audit.append("system", "recorder_start_failed", None, failed, worked)
    report = build_report(calls_db, period, audit_db=audit_db, now_us=worked + MIN_US // 2)
    assert [(d["from_us"], d["to_us"], d["cause"], d["reason"]) for d in report["running"]["down"]] == [
        (first_failure, None, "start_failed", reason)
    ]


def test_a_box_with_no_audit_trail_says_its_running_record_is_not_known(tmp_path, monkeypatch):
    """No audit.db (a box never set up, or the file removed): the reports had no running
    section at all, as if the box had recorded throughout. They say why nothing is known,
    and a start failing now (the note in the run directory) is still said as such."""
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    period = parse_period("2026-03-02", "2026-03-02", "UTC")
    source = ReportSource(str(tmp_path), n_lines=1, wall_us=lambda: _utc_us(2026, 3, 3))
    report = source.report(period)
    running = report["running"]
    assert (running["audit_trail"], running["known"], running["down"]) == (False, False, [])
    said = "When the box was running is not known: it has no audit trail (audit.db)"
    assert said in render(report, "csv").decode().splitlines()[1]
    assert _table(report) == []
    assert not os.path.exists(tmp_path / "audit.db")  # read, never made

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run_dir))
    since = _utc_us(2026, 3, 2, 8)
    note = {"error": "no recording key", "since_us": since, "last_us": since, "attempts": 1}
    (run_dir / "recorder-start.json").write_text(json.dumps(note))
    report = source.report(period)
    assert _table(report) == [
        ["2026-03-02 08:00:00", "not running again yet", "16:00:00", "did not start: no recording key"]
    ]
    assert said in render(report, "csv").decode()


def test_a_sealed_reason_is_opened_with_the_box_s_key(tmp_path):
    """On a box with the MCU's key the failed starts' details are sealed in the audit
    trail; before its first start (keys missing at the first boot) the time is theirs."""
    from firmware.storage.fieldseal import FieldCipher

    cipher = FieldCipher(os.urandom(32))
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(SCHEMA)
    db.close()
    first_failure, started = _utc_us(2026, 3, 2, 8), _utc_us(2026, 3, 2, 9)
    failed = {
        "since": "2026-03-02 08:00:00 UTC",
        "last_failure": "2026-03-02 08:59:58 UTC",
        "attempts": 1800,
        "reason": "no recording key: run `linekeeper setup`",
    }
    with open_audit(str(tmp_path), cipher=cipher) as audit:
        audit.append("system", "recorder_start_failed", None, failed, started)
        audit.append("system", "box_start", "box", {"after": "first_start", "down_from": None}, started)
    period = parse_period("2026-03-02", "2026-03-02", "UTC")
    audit_db = str(tmp_path / "audit.db")
    db = sqlite3.connect(audit_db)
    [(raw,)] = db.execute("SELECT details FROM audit WHERE action = 'recorder_start_failed'")
    db.close()
    assert set(json.loads(raw)) == {SEALED_KEY}
    calls_db = str(tmp_path / "calls.db")
    report = build_report(calls_db, period, audit_db=audit_db, cipher=cipher, now_us=started)
    assert _table(report) == [
        ["(the beginning)", "2026-03-02 08:00:00", "8:00:00", "before the box was first started"],
        [
            "2026-03-02 08:00:00",
            "2026-03-02 09:00:00",
            "1:00:00",
            "did not start: no recording key: run `linekeeper setup`",
        ],
    ]
    assert report["running"]["down"][1]["from_us"] == first_failure


def test_the_times_not_recording_are_counted_in_words():
    """It read "(1 time(s), listed under ...)"."""

    def note(times):
        down = [{"approximate": False}] * times
        running = {"before_first_start": False, "down": down, "down_us": 90 * 10**6, "known": True}
        running.update(records_from_us=None, first_start_us=None)
        return running_note({"running": running, "period": {"tz": "UTC", "start_us": 0}})

    assert "this period (1 time, listed under" in note(1)
    assert "this period (2 times, listed under" in note(2)
