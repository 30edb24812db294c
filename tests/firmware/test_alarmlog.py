"""The alarm history through the simulated board: a line fault raised and cleared keeps its
history."""

import json
import os

from firmware import cli
from firmware.alarmlog import AlarmLog
from firmware.box import open_audit

SCENARIO = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 4,
    "calls": [],
    "faults": [{"line": 4, "at": 30.0, "kind": "no_line_voltage", "duration": 8.0}],
}


def test_a_line_fault_keeps_its_history_after_it_clears(tmp_path):
    path = tmp_path / "fault.json"
    path.write_text(json.dumps(SCENARIO))
    data_dir = str(tmp_path / "data")
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    log = AlarmLog.open_existing(data_dir)
    try:
        [row] = log.history()
        assert (row["kind"], row["line"], row["acknowledged_by"]) == ("no_line_voltage", 4, None)
        # Raised once the voltage had been gone for the fault time, cleared when it came back.
        assert row["cleared_us"] - row["raised_us"] <= 8_000_000
        assert log.banner() == [row]  # cleared, not acknowledged: still shown
        log.acknowledge(row["id"], "ivan", wall_us=row["cleared_us"] + 1)
        assert log.banner() == []
    finally:
        log.close()
    with open_audit(data_dir) as audit:
        alarms = [(e.actor, e.details["event"]) for e in audit.entries(action="alarm", newest_first=False)]
    assert alarms == [("system", "raised"), ("system", "cleared")]  # by the box; the ack above
    # went through a log opened here without the audit trail


def test_repeats_are_one_occurrence(tmp_path):
    class Clock:
        t = 0

        def wall_us(self):
            return self.t

    log = AlarmLog(os.path.join(tmp_path, "alarms.db"), Clock())
    seen = []
    log.on_raised.append(seen.append)
    assert log.set("disk_warning", True, message="85% full") is not None
    assert log.set("disk_warning", True, message="86% full") is None  # still the same one
    assert log.set("disk_warning", False) is not None
    assert log.set("disk_warning", False) is None
    assert log.set("disk_warning", True) is not None  # a new occurrence
    assert [r["id"] for r in log.history()] == [2, 1] and len(seen) == 2  # newest first
    log.close()


def test_an_alarm_the_card_refuses_waits_in_memory_and_is_written_with_the_next(tmp_path):
    """A card that refuses the alarm history (full, failing) must not stop whoever raised
    the alarm (the box's start raises power_loss_restart itself): the change waits in
    memory and is written, in order, with the next one the card takes."""
    import sqlite3

    from firmware.clock import SimClock

    log = AlarmLog(str(tmp_path / "alarms.db"), SimClock())
    real, refusing = log._db, True

    class Refusing:
        def execute(self, *args):
            if refusing:
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(*args)

    try:
        log._db = Refusing()
        assert log.set("power_loss_restart", True, message="restarted") is None  # no exception
        assert log.set("power_loss_restart", False) is None
        refusing = False
        row = log.set("disk_full", True, message="full")
        assert row["kind"] == "disk_full"
        assert [(r["kind"], r["cleared_us"] is not None) for r in log.history()] == [
            ("disk_full", False),
            ("power_loss_restart", True),
        ]
    finally:
        log._db = real
        log.close()


def test_an_alarm_raised_by_a_listener_of_another_is_written_after_it(tmp_path):
    from firmware.clock import SimClock

    log = AlarmLog(str(tmp_path / "alarms.db"), SimClock())
    try:
        log.on_raised.append(
            lambda row: row["kind"] == "disk_full" and log.set("mail_failed", True, message="no mail server")
        )
        assert log.set("disk_full", True, message="full")["kind"] == "disk_full"
        assert sorted(r["kind"] for r in log.history()) == ["disk_full", "mail_failed"]
    finally:
        log.close()
