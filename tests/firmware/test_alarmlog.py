"""The alarm history through the simulated board: a line fault raised and cleared keeps its
history."""

import json
import os

import pytest

from firmware import cli
from firmware.alarmlog import AlarmLog
from firmware.box import open_audit
from firmware.clock import SimClock
from firmware.errors import LinekeeperError

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


def test_a_line_fault_open_when_the_box_stopped_is_judged_again_at_the_next_start(tmp_path):
    """The power went while line 2 was dead: at the next start the line works, and the
    alarm clears; a new fault there later is a new occurrence (a new alarm, a new mail)."""
    data_dir = str(tmp_path / "data")

    def sim(name, doc):
        path = tmp_path / name
        path.write_text(json.dumps(dict({"country": "uk", "lines": 2, "calls": []}, **doc)))
        assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0

    def rows():
        log = AlarmLog.open_existing(data_dir)
        try:
            return [(r["kind"], r["line"], r["cleared_us"] is not None) for r in log.history()[::-1]]
        finally:
            log.close()

    sim(
        "cut.json",
        {
            "start": "2026-04-01T09:00:00Z",
            "faults": [{"line": 2, "at": 5.0, "kind": "no_line_voltage", "duration": 60.0}],
            "power": [{"at": 20.0, "cut": True}],
        },
    )
    assert ("no_line_voltage", 2, False) in rows()  # open as the power went
    call = {"line": 2, "at": 5.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1}
    sim("well.json", {"start": "2026-04-01T10:00:00Z", "calls": [dict(call, talk=3.0)]})
    assert [r for r in rows() if r[0] == "no_line_voltage"] == [("no_line_voltage", 2, True)]
    sim(
        "again.json",
        {
            "start": "2026-04-02T09:00:00Z",
            "faults": [{"line": 2, "at": 5.0, "kind": "no_line_voltage", "duration": 20.0}],
        },
    )
    assert [r for r in rows() if r[0] == "no_line_voltage"] == [("no_line_voltage", 2, True)] * 2


def test_a_line_fault_that_lasts_across_a_start_is_one_occurrence(tmp_path):
    data_dir = str(tmp_path / "data")
    for name, doc in (
        (
            "cut.json",
            {
                "start": "2026-04-01T09:00:00Z",
                "faults": [{"line": 2, "at": 5.0, "kind": "no_line_voltage", "duration": 600.0}],
                "power": [{"at": 20.0, "cut": True}],
            },
        ),
        (
            "still.json",
            {
                "start": "2026-04-01T09:01:00Z",
                "faults": [{"line": 2, "at": 0.0, "kind": "no_line_voltage", "duration": 30.0}],
            },
        ),
    ):
        path = tmp_path / name
        path.write_text(json.dumps(dict({"country": "uk", "lines": 2, "calls": []}, **doc)))
        assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    log = AlarmLog.open_existing(data_dir)
    try:
        faults = [r for r in log.history() if r["kind"] == "no_line_voltage"]
    finally:
        log.close()
    assert len(faults) == 1 and faults[0]["cleared_us"] is not None  # dead at start, then back


def test_a_box_alarm_open_when_the_box_stopped_clears_when_its_cause_is_gone(tmp_path):
    """The card was nearly full as the box stopped (disk_warning open), the HAT's MCU had
    stopped answering (mcu_unreachable); room was made and the MCU answers at the next
    start: both clear (the first disk check, the MCU's answer as the box starts)."""
    data_dir = str(tmp_path / "data")
    path = tmp_path / "day.json"
    call = {"line": 1, "at": 5.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1}
    path.write_text(json.dumps(dict(SCENARIO, faults=[], hat="lk-4l", calls=[dict(call, talk=3.0)])))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    log = AlarmLog(os.path.join(data_dir, "alarms.db"), None)
    try:
        log.set("disk_warning", True, message="the card is 85% full", wall_us=1)
        log.set("mcu_unreachable", True, message="the HAT's supervisor chip does not answer", wall_us=1)
    finally:
        log.close()
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    log = AlarmLog.open_existing(data_dir)
    try:
        rows = [r for r in log.history() if r["kind"] in ("disk_warning", "mcu_unreachable")]
    finally:
        log.close()
    assert len(rows) == 2 and all(r["cleared_us"] is not None for r in rows), rows


def test_a_retention_failure_open_at_the_stop_clears_only_when_a_sweep_works(tmp_path):
    """Taken back at the start, it was cleared by the start's disk check working (which
    says nothing of the sweep), then raised again as a new occurrence at the next
    failing sweep: a second mail for one fault."""
    data_dir = str(tmp_path / "data")
    path = tmp_path / "day.json"
    call = {"line": 1, "at": 5.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1}
    path.write_text(json.dumps(dict(SCENARIO, faults=[], calls=[dict(call, talk=3.0)])))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    log = AlarmLog(os.path.join(data_dir, "alarms.db"), None)
    try:
        log.set("retention_failed", True, message="retention could not run", wall_us=1)
        # A line the box no longer has (a HAT with fewer lines) left a fault open too.
        log.set("no_line_voltage", True, line=7, message="no line voltage", wall_us=1)
    finally:
        log.close()
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0  # a short run: no sweep
    log = AlarmLog.open_existing(data_dir)
    try:
        rows = {r["kind"]: r for r in log.history()}
    finally:
        log.close()
    assert rows["retention_failed"]["cleared_us"] is None
    assert rows["no_line_voltage"]["cleared_us"] is not None


def test_a_listener_that_fails_is_its_own_failure(tmp_path, caplog):
    """The mail queue refused (a full card): the history said it could not be written, kept
    the change waiting, and the listeners after the mail's were never told."""
    log = AlarmLog(tmp_path / "alarms.db", SimClock())
    told = []

    def mail(row):
        raise OSError(28, "No space left on device")

    log.on_raised[:] = [mail, told.append]
    log.set("disk_full", True, message="the card is full")
    assert [r["kind"] for r in told] == ["disk_full"]
    assert not log._unwritten and [r["kind"] for r in log.banner()] == ["disk_full"]
    assert "cannot be written now" not in caplog.text and "telling" in caplog.text
    log.close()


def test_a_renewed_alarm_is_a_new_occurrence_when_its_message_changes(tmp_path):
    class Clock:
        t = 0

        def wall_us(self):
            return self.t

    clock = Clock()
    log = AlarmLog(os.path.join(tmp_path, "alarms.db"), clock)
    seen = []
    log.on_raised.append(seen.append)
    first = log.set("request_overdue", True, message="request 1", renew=True)
    assert log.set("request_overdue", True, message="request 1", renew=True) is None  # the same
    clock.t = 5
    second = log.set("request_overdue", True, message="request 1; request 2", renew=True)
    assert second["id"] != first["id"] and [r["message"] for r in seen] == [
        "request 1",
        "request 1; request 2",
    ]
    [old, new] = log.history()[::-1]
    assert old["cleared_us"] == 5 and new["cleared_us"] is None and new["message"] == "request 1; request 2"
    with pytest.raises(LinekeeperError):
        log.set("staff_concern", True, message="words", renew=True)
    log.close()


def test_a_renewal_the_card_refuses_leaves_the_alarm_on_and_is_done_later(tmp_path):
    """The new occurrence and the old one's end are one change: a card that refuses the
    new row must not leave the alarm cleared (its cause still there) with no audit of
    it; the renewal waits and is written, whole, once the card takes it."""
    import sqlite3

    class Audit:
        def __init__(self):
            self.events = []

        def append(self, actor, action, target, details, wall_us):
            self.events.append((target, details["event"]))

    path = os.path.join(tmp_path, "alarms.db")
    audit = Audit()
    log = AlarmLog(path, clock=None, audit=audit)
    log.set("request_overdue", True, message="request 1", wall_us=1, renew=True)
    full = sqlite3.connect(path)
    full.execute(
        "CREATE TRIGGER full BEFORE INSERT ON alarm_history BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    full.commit()
    assert log.set("request_overdue", True, message="request 1; request 2", wall_us=2, renew=True) is None
    assert log.open_box_alarms() == {"request_overdue"}
    assert audit.events == [("alarm:1", "raised")]
    full.execute("DROP TRIGGER full")
    full.commit()
    full.close()
    log.set("disk_warning", True, message="85% full", wall_us=3)  # the next change writes the waiting one
    assert [(r["id"], r["kind"], r["cleared_us"]) for r in log.history()[::-1]] == [
        (1, "request_overdue", 2),
        (2, "request_overdue", None),
        (3, "disk_warning", None),
    ]
    assert audit.events[1:] == [("alarm:1", "cleared"), ("alarm:2", "raised"), ("alarm:3", "raised")]
    log.close()
