"""The call log's policy columns: stored, printed, and added to an older database."""

import sqlite3

from firmware.bus import CallStarted, CallUpdated, EventBus
from firmware.call import Call
from firmware.calllog import CallLog
from firmware.clock import SimClock

OLD_SCHEMA = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, line INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    started_at INTEGER NOT NULL, answered_at INTEGER, ended_at INTEGER,
    clock_synced INTEGER NOT NULL, number TEXT, name TEXT, cid_datetime TEXT,
    cid_standard TEXT, absence TEXT, dial_method TEXT,
    extension INTEGER NOT NULL DEFAULT 0, end_reason TEXT);
INSERT INTO calls (line, direction, started_at, clock_synced) VALUES (2, 'in', 5, 1);
"""


def test_an_older_call_log_gains_the_policy_columns(tmp_path):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript(OLD_SCHEMA)
    db.close()
    log = CallLog(tmp_path / "calls.db", SimClock())
    (old,) = log.calls()
    assert old["line"] == 2 and old["policy_decision"] is None and old["pause_spans"] == []
    log.close()


def test_the_policy_outcome_is_stored_and_printed(tmp_path):
    clock = SimClock(start_wall_us=1_772_442_000_000_000)
    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", clock)
    log.attach(bus)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    call.policy_decision, call.policy_reason = "record", "line 1 records every call"
    call.consent = {"notice": "announcement", "given": True, "at": "2026-03-02T09:00:01.000Z"}
    call.pause_spans.append({"from": "2026-03-02T09:00:05.000Z", "to": None, "by": "web",
                             "ended_by": None})
    bus.publish(CallUpdated(line=1, t_us=0, call=call))
    log._db.execute("INSERT INTO call_tags (call_id, tag) VALUES (?, 'regulated'), (?, 'vip')",
                    (call.id, call.id))
    (row,) = log.calls()
    assert (row["policy_decision"], row["policy_reason"]) == ("record", "line 1 records every call")
    assert row["consent"] == call.consent and row["pause_spans"] == call.pause_spans
    assert row["tags"] == ["regulated", "vip"]
    log.close()
