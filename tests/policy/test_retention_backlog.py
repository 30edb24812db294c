"""The retention-backlog alarm: recordings past their date that the sweeps do not delete.

End to end on the simulated box: a call is recorded, its one-day period ends,
and the box's own hourly sweeps (on the simulated clock) fail on an injected
card fault; the box's periodic round raises ``retention_backlog`` (and the
sweeper ``retention_failed``), they reach the e-mail queue, are acknowledged,
and clear once the fault is gone and a sweep catches up. Every step is in the
audit trail.
"""

import json
import os
import sqlite3
import threading

import pytest

from board.sim.scenario import loads_scenario
from firmware.alarmchecks import RetentionBacklog
from firmware.alarmlog import AlarmLog
from firmware.box import open_sim_box
from firmware.config import BoxConfig
from firmware.mail.settings import MailSettings
from firmware.policy.retention import DAY_US
from firmware.policy.settings import PolicySettings
from firmware.storage.keystore import Argon2Params, KeyStore

from support.retention import settings

HOUR_US = 3600 * 10**6


class Outbox:
    def __init__(self):
        self.mails = []

    def send(self, msg):
        self.mails.append((str(msg["Subject"]), msg.get_content() if hasattr(msg, "get_content") else ""))


@pytest.fixture
def recorded_box(tmp_path):
    """A started simulated box (one line, kept one day, swept hourly) that recorded one call."""
    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [
                    {
                        "line": 1,
                        "at": 1.0,
                        "direction": "in",
                        "rings": 1,
                        "talk": 2.0,
                        "caller_id": {"number": "01632960123"},
                    }
                ],
            }
        )
    )
    config = BoxConfig(
        policy=PolicySettings.from_dict({"retention": {"default_days": 1, "sweep_interval_min": 60}})
    )
    box = open_sim_box(scenario, data, config=config)
    box.mail.store.save(
        MailSettings(host="127.0.0.1", port=27001, sender="box@example.com", alarm_to=("ops@example.com",))
    )
    box.start()
    box.mail.close()  # the test delivers the queue itself (no real server)
    try:
        assert box.board.run()
        assert len(box.recordings.all()) == 1
        yield box, scenario
    finally:
        box.stop()


def run_hours(box, hours):
    """Move the simulated clock on hour by hour, running the box's round (its mail
    thread does this every minute) after each."""
    for _ in range(hours):
        box.clock.run_until(box.clock.now_us() + HOUR_US)
        box.retention_backlog()


def open_kinds(box):
    return sorted(r["kind"] for r in box.alarm_log.banner() if r["cleared_us"] is None)


def test_a_failing_sweeper_raises_the_backlog_alarm_until_it_catches_up(recorded_box, monkeypatch):
    box, scenario = recorded_box

    def card_fault(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(box.retention, "_destroy_batch", card_fault)
    box.retention_backlog()  # the round at start-up: the settings are new, nothing judged yet
    run_hours(box, 24)  # the recording is due just after 09:00 the next day
    assert open_kinds(box) == []
    run_hours(box, 2)
    assert open_kinds(box) == ["retention_failed"]  # the sweeps fail: due, but within two intervals
    run_hours(box, 1)
    assert open_kinds(box) == ["retention_backlog", "retention_failed"]
    backlog = [r for r in box.alarm_log.banner() if r["kind"] == "retention_backlog"][0]
    assert backlog["message"] == (
        "1 recording(s) past their retention date are still kept (the oldest was due on 2026-03-03)"
    )
    assert backlog["raised_us"] - scenario.start_wall_us >= DAY_US + 2 * HOUR_US
    assert len(box.recordings.all()) == 1
    # E-mailed once, however many rounds see it.
    run_hours(box, 2)
    outbox = Outbox()
    box.mail.queue.flush(outbox)
    subjects = [s for s, _ in outbox.mails]
    assert sum("Recordings are kept past" in s or "retention backlog" in s.lower() for s in subjects) == 1, (
        subjects
    )
    # Acknowledged by a person, and still on the banner while it lasts.
    for row in box.alarm_log.banner():
        box.alarm_log.acknowledge(row["id"], "ivan")
    assert open_kinds(box) == ["retention_backlog", "retention_failed"]
    # The card is fixed: the next sweep deletes the recording and the alarms clear.
    monkeypatch.undo()
    run_hours(box, 1)
    assert box.recordings.all() == []
    assert box.alarm_log.banner() == []
    trail = {}
    for e in box.audit.entries(limit=1000, action="alarm", newest_first=False):
        if e.details["kind"].startswith("retention"):
            trail.setdefault(e.details["kind"], []).append(e.details["event"])
    assert trail == {
        "retention_failed": ["raised", "acknowledged", "cleared"],
        "retention_backlog": ["raised", "acknowledged", "cleared"],
    }


def backlog_check(shelf, **kw):
    log = AlarmLog(os.path.join(shelf.data_dir, "alarms.db"), shelf.clock, shelf.audit)
    shelf.sweeper.update_settings(settings(default_days=30, sweep_interval_min=60))
    return log, RetentionBacklog(log, shelf.sweeper, **kw)


def test_a_sweep_that_hangs_raises_the_alarm_without_hanging_the_round(shelf):
    log, check = backlog_check(shelf, wait_s=0.05)
    shelf.add_call(days_ago=10)
    check()
    taken, release = threading.Event(), threading.Event()

    def hung_sweep():  # a sweep stuck on the card, holding the sweeper
        with shelf.sweeper._lock:
            taken.set()
            release.wait(30)

    stuck = threading.Thread(target=hung_sweep)
    stuck.start()
    try:
        assert taken.wait(5)
        for hour in range(1, 5):
            shelf.advance(3600)
            check()  # never waits long for the sweeper
            on = [r for r in log.banner() if r["kind"] == "retention_backlog"]
            assert len(on) == (1 if hour == 4 else 0), hour  # busy since hour 1: 125 min at hour 4
        assert "a retention sweep has been running for 180 min" in on[0]["message"]
    finally:
        release.set()
        stuck.join()
    shelf.advance(300)  # judged every few minutes, not every round
    check()  # the sweep ended and nothing is overdue
    assert log.banner()[0]["cleared_us"] is not None


def test_shortening_the_period_gives_the_sweeper_its_time_first(shelf):
    log, check = backlog_check(shelf)
    shelf.add_call(days_ago=10)
    check()
    shelf.advance(3 * 3600)
    check()
    assert log.history() == []
    # Five days: the recording is five days past it at once; the sweeper gets two intervals.
    shelf.sweeper.update_settings(settings(default_days=5, sweep_interval_min=60))
    check()
    shelf.advance(2 * 3600)
    check()
    assert log.history() == []
    shelf.advance(3600)  # no sweep ran (the sweeper is not started here): a backlog
    check()
    [row] = log.banner()
    assert row["kind"] == "retention_backlog" and row["message"].startswith("1 recording(s) past")
    assert shelf.sweeper.sweep().deleted == 1
    shelf.advance(300)  # judged every few minutes, not every round
    check()
    assert log.banner()[0]["cleared_us"] is not None


def test_the_backlog_is_judged_every_few_minutes_not_every_round(shelf):
    """Each judgement reads every finished recording (5 s on a card of a million): the
    mail round calls the check every 10 s."""
    log, check = backlog_check(shelf)
    shelf.add_call(days_ago=10)
    calls = []
    real = shelf.sweeper.overdue
    shelf.sweeper.overdue = lambda *a, **kw: calls.append(1) or real(*a, **kw)
    for _ in range(30):  # five minutes of rounds
        check()
        shelf.advance(10)
    assert len(calls) == 1
    shelf.advance(10)
    check()
    assert len(calls) == 2


def test_a_legal_hold_is_not_a_backlog(shelf):
    log, check = backlog_check(shelf)
    shelf.add_call(days_ago=40, hold=True)
    check()
    shelf.advance(3 * 3600)
    check()
    assert log.history() == []
