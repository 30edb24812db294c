"""The simulated box's clock across runs on one data directory, and the commands run on it."""

import datetime as dt
import json
import sqlite3

from firmware import simtime

from support.cli import calls_args, owner_slot, run_linekeeper

ONE_CALL = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 1,
    "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 5.0}],
}
START_US = int(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).timestamp()) * 1_000_000
HOUR_US = 3600 * 1_000_000


def _sim(tmp_path, data):
    path = tmp_path / "day.json"
    path.write_text(json.dumps(ONE_CALL))
    status, _, err = run_linekeeper("sim", path, "--data-dir", data, "--speed", "max")
    assert status == 0, err


def _started(data):
    status, out, err = run_linekeeper(*calls_args(str(data), owner_slot(data), "--json"))
    assert status == 0, err
    return [json.loads(line)["started_at"] for line in out.splitlines()]


def test_sim_again_on_the_same_data_goes_on_the_next_day(tmp_path):
    """Started again on the data it had written, the box went back to the scenario's
    start: its new call had the first one's time, dated twice."""
    data = tmp_path / "data"
    _sim(tmp_path, data)
    _sim(tmp_path, data)
    assert _started(data) == ["2026-03-02T09:00:01.000Z", "2026-03-03T09:00:01.000Z"]


def test_a_command_on_a_simulated_box_is_dated_by_the_box_clock(tmp_path):
    """`linekeeper calls` on a demo box's data audited its listing on the machine's date,
    months from the box's: it is dated by the box's clock, after the calls it listed."""
    data = tmp_path / "data"
    _sim(tmp_path, data)
    _started(data)
    db = sqlite3.connect(data / "audit.db")
    (listed_us,) = db.execute("SELECT wall_us FROM audit WHERE action = 'list_viewed'").fetchone()
    db.close()
    assert START_US < listed_us < START_US + HOUR_US


def test_a_real_box_data_is_dated_by_the_machine(tmp_path):
    """No note of the simulator's, no box clock: the machine's time."""
    assert simtime.box_wall_us(str(tmp_path)) is None
    simtime.note(str(tmp_path), START_US, real_us=1_000_000)
    assert simtime.box_wall_us(str(tmp_path), real_us=3_000_000) == START_US + 2_000_000
    assert simtime.box_wall_us(str(tmp_path), real_us=0) == START_US  # a clock set back


def test_a_run_starts_after_everything_on_record(tmp_path):
    """The scenario's time of day, on the first day after the latest time on record."""
    data = str(tmp_path)
    assert simtime.resumed_start_us(START_US, data) == START_US  # nothing on record
    simtime.note(data, START_US - HOUR_US)
    assert simtime.resumed_start_us(START_US, data) == START_US  # all before the start
    simtime.note(data, START_US)
    assert simtime.resumed_start_us(START_US, data) == START_US + 24 * HOUR_US
    simtime.note(data, START_US + 30 * HOUR_US)  # a looped demo ran overnight
    assert simtime.resumed_start_us(START_US, data) == START_US + 48 * HOUR_US


def test_a_command_after_the_box_stopped_dates_by_where_its_clock_stopped(tmp_path):
    """A command run a day after the demo stopped is dated at most a minute after the box's
    last time, so the next run (the next day) still starts after it."""
    data = str(tmp_path)
    simtime.note(data, START_US + HOUR_US, real_us=0)
    assert simtime.box_wall_us(data, real_us=30_000_000) == START_US + HOUR_US + 30_000_000
    later = simtime.box_wall_us(data, real_us=25 * HOUR_US)
    assert later == START_US + HOUR_US + simtime.NOTE_EVERY_US
    assert simtime.resumed_start_us(START_US, data) == START_US + 24 * HOUR_US > later


def test_a_repair_on_a_simulated_box_names_the_damaged_log_by_the_box_clock(tmp_path):
    """`linekeeper repair` audited by the box's clock but kept the damaged call log as
    calls.db.damaged-<the machine's time>: a demo box's March repair said December."""
    data = tmp_path / "data"
    _sim(tmp_path, data)
    path = data / "calls.db"
    with open(path, "r+b") as f:  # every page after the first: garbage
        f.seek(4096)
        f.write(b"\xa5" * (path.stat().st_size - 4096))
    status, out, err = run_linekeeper("repair", "--data-dir", data)
    assert status == 0, err
    names = [p.name for p in data.iterdir()]
    (kept,) = [n for n in names if n.startswith("calls.db.damaged-") and n.endswith("Z")]  # not -wal, -shm
    stamp = dt.datetime.strptime(kept.split("damaged-")[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert START_US <= int(stamp.timestamp()) * 1_000_000 < START_US + HOUR_US, kept
    assert "the damaged call log was kept as %s" % (data / kept) in out, out
