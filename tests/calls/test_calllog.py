"""The call log's policy columns: stored, printed, and added to an older database."""

import sqlite3

import pytest

from firmware.bus import (
    Alarm,
    CallAnswered,
    CallAnswerWithdrawn,
    CallEnded,
    CallStarted,
    CallUpdated,
    EventBus,
)
from firmware.calls.call import Call
from firmware.calls.calllog import GROUP_COMMIT_US, CallLog
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
    call.pause_spans.append({"from": "2026-03-02T09:00:05.000Z", "to": None, "by": "web", "ended_by": None})
    bus.publish(CallUpdated(line=1, t_us=0, call=call))
    log._db.execute(
        "INSERT INTO call_tags (call_id, tag) VALUES (?, 'regulated'), (?, 'vip')", (call.id, call.id)
    )
    (row,) = log.calls()
    assert (row["policy_decision"], row["policy_reason"]) == ("record", "line 1 records every call")
    assert row["consent"] == call.consent and row["pause_spans"] == call.pause_spans
    assert row["tags"] == ["regulated", "vip"]
    log.close()


class _Refusing:
    """A connection whose writes fail as on a full card while ``full`` is set."""

    def __init__(self, db):
        self.db, self.full = db, True

    def execute(self, sql, *args):
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = 13
            raise exc
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_writes_the_card_refuses_wait_in_memory_raise_an_alarm_and_are_retried(tmp_path):
    from firmware.bus import Alarm
    from firmware.calls.call import Call

    clock = SimClock(start_wall_us=1_772_442_000_000_000)
    bus = EventBus(strict=True)
    alarms = []
    bus.subscribe(Alarm, alarms.append)
    log = CallLog(tmp_path / "calls.db", clock)
    log.attach(bus)
    log._db = refusing = _Refusing(log._db)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))  # no exception: the box runs on
    call.number = "01632960123"
    bus.publish(CallUpdated(line=1, t_us=0, call=call))
    # The call has its id already (a recording binds to it), though its row is not written.
    assert log.pending == 1 and call.id == 1
    assert [(a.kind, a.active) for a in alarms] == [("call_log", True)]
    assert "disk is full" in alarms[0].message
    refusing.full = False  # space comes back: the retry timer writes it
    clock.run_until(6_000_000)
    assert log.pending == 0
    (row,) = log.calls()
    assert row["number"] == "01632960123" and row["id"] == call.id
    assert [(a.kind, a.active) for a in alarms] == [("call_log", True), ("call_log", False)]
    log._db = refusing.db
    log.close()


def test_a_refused_call_keeps_its_place_and_the_next_call_is_written(tmp_path):
    """The card refuses one call's row and takes the next one's: the first keeps its id
    (no later call takes it) and is written with it once the card takes it."""
    clock = SimClock(start_wall_us=1_772_442_000_000_000)
    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", clock)
    log.attach(bus)
    log._db = refusing = _Refusing(log._db)
    first = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=first))
    refusing.full = False
    second = Call(line=2, direction="in", started_us=1_000_000)
    bus.publish(CallStarted(line=2, t_us=1_000_000, call=second))
    assert (first.id, second.id) == (1, 2) and log.pending == 0
    assert [(c["id"], c["line"]) for c in log.calls()] == [(1, 1), (2, 2)]
    log._db = refusing.db
    log.close()


def test_call_ids_named_by_recordings_or_deletions_are_never_given_again(tmp_path):
    """A crash while a call's row was refused leaves its recording naming the id:
    after the restart the next call gets a new one, not that."""
    clock = SimClock(start_wall_us=1_000_000_000)
    log = CallLog(tmp_path / "calls.db", clock)
    log._db.execute(
        "INSERT INTO calls (id, line, direction, started_at, clock_synced) VALUES (3, 1, 'in', 1, 1)"
    )
    log._db.execute(
        "INSERT INTO recordings (id, call_id, file, profile, state, started_at, chunk_ms)"
        " VALUES ('r', 7, 'r.lkrec', 'voice', 'partial', 1, 960)"
    )
    log.close()
    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", clock)
    log.attach(bus)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    assert call.id == 8
    log._db.execute("DELETE FROM calls")  # emptied (retention): AUTOINCREMENT never goes back
    log._db.execute("DELETE FROM recordings")
    log.close()
    log = CallLog(tmp_path / "calls.db", clock)
    log.attach(EventBus(strict=True))
    again = Call(line=1, direction="in", started_us=0)
    log._updated(CallStarted(line=1, t_us=0, call=again))
    assert again.id == 9
    log.close()


def test_open_calls_are_closed_at_their_last_evidence(tmp_path):
    clock = SimClock(start_wall_us=1_000_000_000)
    log = CallLog(tmp_path / "calls.db", clock)
    db = log._db
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, answered_at, clock_synced)"
        " VALUES (1, 1, 'in', 100, 200, 1), (2, 2, 'in', 300, NULL, 1)"
    )
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, ended_at, end_reason,"
        " clock_synced) VALUES (3, 1, 'out', 400, 500, 'local', 1)"
    )
    db.execute(
        "INSERT INTO recordings (id, call_id, file, profile, state, started_at,"
        " duration_s, chunk_ms) VALUES ('r', 1, 'r.lkrec', 'voice', 'partial', 150, 2.5,"
        " 960)"
    )
    assert log.close_open("power_loss") == [1, 2]
    got = {r[0]: r[1:] for r in db.execute("SELECT id, ended_at, end_reason FROM calls")}
    assert got == {1: (2_500_150, "power_loss"), 2: (300, "power_loss"), 3: (500, "local")}
    log.close()


def _on_card(path):
    """What another process (or the box after a kill -9) reads from the card."""
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, answered_at, ended_at, end_reason FROM calls ORDER BY id").fetchall()
    finally:
        db.close()


def _grouped(tmp_path):
    """``(clock, bus, log)``: a call log with the box's group commit, on a bus."""
    clock = SimClock(start_wall_us=1_772_442_000_000_000)
    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", clock, commit_us=GROUP_COMMIT_US)
    log.attach(bus)
    return clock, bus, log


def test_group_commit_writes_a_windows_call_states_in_one_commit(tmp_path):
    clock, bus, log = _grouped(tmp_path)
    first, second = Call(line=1, direction="in", started_us=0), Call(line=2, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=first))
    bus.publish(CallStarted(line=2, t_us=0, call=second))
    # Each call has its id the moment it starts (its recording is bound to it), the row comes later.
    assert (first.id, second.id) == (1, 2)
    clock.run_until(300_000)
    first.answered_us = 300_000
    bus.publish(CallAnswered(line=1, t_us=300_000, call=first))
    # Within the window nothing has reached the card: a kill -9 now loses < 1 s of state.
    assert _on_card(tmp_path / "calls.db") == [] and log.commits == 0
    clock.run_until(GROUP_COMMIT_US)
    rows = _on_card(tmp_path / "calls.db")
    assert [r[0] for r in rows] == [1, 2] and rows[0][1] is not None and log.commits == 1
    # The next window: a caller's name waits; the call's end is written at once, with it
    # (its recording is being closed: a crash meanwhile must find the call ended).
    clock.run_until(1_500_000)
    first.name = "A CALLER"
    bus.publish(CallUpdated(line=1, t_us=1_500_000, call=first))
    assert log.commits == 1
    first.ended_us, first.end_reason = 1_600_000, "hangup"
    bus.publish(CallEnded(line=1, t_us=1_600_000, call=first))
    assert _on_card(tmp_path / "calls.db")[0][2:] == (clock.wall_at(1_600_000), "hangup")
    assert log.commits == 2
    log.close()


def test_a_new_calls_row_and_its_state_are_one_transaction(tmp_path):
    """One commit (one sync of the log) for a call's first write, not one per statement."""
    clock, bus, log = _grouped(tmp_path)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    call.number = "01632960777"
    statements = []
    log._db.set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))
    assert log.flush()
    assert statements == ["BEGIN", "INSERT", "UPDATE", "COMMIT"] and log.commits == 1
    log.close()


def test_states_waiting_for_the_group_commit_are_written_at_close_and_shown_by_calls(tmp_path):
    clock, bus, log = _grouped(tmp_path)
    call = Call(line=3, direction="in", started_us=0)  # (an outbound one still dialling has no number yet)
    bus.publish(CallStarted(line=3, t_us=0, call=call))
    assert [c["id"] for c in log.calls()] == [call.id]  # a read takes what waits, too
    call.number = "01632960001"
    bus.publish(CallUpdated(line=3, t_us=0, call=call))
    log.close()
    assert _on_card(tmp_path / "calls.db") == [(call.id, None, None, None)]
    reopened = CallLog(tmp_path / "calls.db", clock)
    assert reopened.calls()[0]["number"] == "01632960001"
    reopened.close()


def test_a_batch_the_card_refuses_is_written_call_by_call_later(tmp_path):
    clock, bus, log = _grouped(tmp_path)
    log._db = refusing = _Refusing(log._db)
    calls = [Call(line=n, direction="in", started_us=0) for n in (1, 2)]
    for call in calls:
        bus.publish(CallStarted(line=call.line, t_us=0, call=call))
    clock.run_until(GROUP_COMMIT_US)
    assert log.pending == 2 and _on_card(tmp_path / "calls.db") == []
    refusing.full = False
    clock.run_until(GROUP_COMMIT_US + 6_000_000)  # the retry
    assert log.pending == 0 and [r[0] for r in _on_card(tmp_path / "calls.db")] == [1, 2]
    log.close()


def test_a_recording_begun_while_its_call_waits_for_the_group_commit_finds_its_row(tmp_path):
    from firmware.recording.store import RecordingStore

    clock, bus, log = _grouped(tmp_path)
    store = RecordingStore(tmp_path, before_begin=log.write_rows)  # as the box wires it
    own = []  # what the store's own connection writes
    store._db.set_trace_callback(lambda sql: own.append(sql.split()[0].upper()))
    call = Call(line=1, direction="out", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    assert _on_card(tmp_path / "calls.db") == []
    first = store.begin(call.id, b"k" * 93, "voice", 1000, clock.wall_us())
    # A kill -9 now: the recording's call is in the call log on the card, for recovery and verify.
    assert [r[0] for r in _on_card(tmp_path / "calls.db")] == [call.id]
    assert log.commits == 1
    # ... and the recording's intent row with it, in the same commit (one sync of the log).
    assert store.get(first)["state"] == "recording" and "INSERT" not in own
    # The call's row is there already: the next recording's begin writes nothing of the
    # call log; its answer waits for the window like any other state.
    call.answered_us = 400_000
    bus.publish(CallAnswered(line=1, t_us=400_000, call=call))
    second = store.begin(call.id, b"k" * 93, "voice", 1000, clock.wall_us())
    assert log.commits == 1 and _on_card(tmp_path / "calls.db")[0][1] is None
    assert store.get(second)["state"] == "recording" and own.count("INSERT") == 1  # its own commit
    clock.run_until(GROUP_COMMIT_US + 400_000)
    assert log.commits == 2 and _on_card(tmp_path / "calls.db")[0][1] == clock.wall_at(400_000)
    store.close()
    log.close()


def test_a_recording_row_the_card_refuses_does_not_hold_back_its_calls_row(tmp_path):
    """The intent row goes in the call log's transaction; refused there (here a recording
    id used twice), the call's row is written on its own, no call-log alarm, and the
    store's own INSERT raises as it always did."""
    from firmware.recording.store import RecordingStore

    clock, bus, log = _grouped(tmp_path)
    alarms = []
    bus.subscribe(Alarm, alarms.append)
    store = RecordingStore(tmp_path, before_begin=log.write_rows)
    first = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=first))
    rid = store.begin(first.id, b"k" * 93, "voice", 1000, clock.wall_us())
    second = Call(line=2, direction="in", started_us=0)
    bus.publish(CallStarted(line=2, t_us=0, call=second))
    with pytest.raises(sqlite3.IntegrityError):
        store.begin(second.id, b"k" * 93, "voice", 1000, clock.wall_us(), recording_id=rid)
    assert sorted(r[0] for r in _on_card(tmp_path / "calls.db")) == sorted([first.id, second.id])
    assert alarms == [] and log.commits == 2
    store.close()
    log.close()


def test_a_withdrawn_answer_is_cleared_on_the_card(tmp_path):
    """An outbound call's provisional answer (the caller's voice in ringback) written, then
    withdrawn: the row has no answer time again, and the call abandoned has no talk time."""
    clock, bus, log = _grouped(tmp_path)
    call = Call(line=1, direction="out", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    call.answered_us = 400_000
    bus.publish(CallAnswered(line=1, t_us=400_000, call=call, provisional=True))
    clock.run_until(GROUP_COMMIT_US + 400_000)
    assert _on_card(tmp_path / "calls.db")[0][1] == clock.wall_at(400_000)
    call.answered_us = None
    bus.publish(CallAnswerWithdrawn(line=1, t_us=2_000_000, call=call))
    clock.run_until(2 * GROUP_COMMIT_US + 2_000_000)
    assert _on_card(tmp_path / "calls.db")[0][1] is None
    call.ended_us, call.end_reason = 3_000_000, "abandoned"
    bus.publish(CallEnded(line=1, t_us=3_000_000, call=call))
    (row,) = log.calls()
    assert (row["answered"], row["answered_at"], row["duration_s"], row["end_reason"]) == (
        False,
        None,
        None,
        "abandoned",
    )
    log.close()


def test_an_event_that_changes_nothing_on_the_card_costs_no_commit(tmp_path):
    clock, bus, log = _grouped(tmp_path)
    call = Call(line=1, direction="in", started_us=0)
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    call.ended_us, call.end_reason = 200_000, "remote_break"
    bus.publish(CallEnded(line=1, t_us=200_000, call=call))
    assert log.commits == 1
    bus.publish(CallUpdated(line=1, t_us=200_000, call=call))  # the policy's word: the same state
    clock.run_until(5 * GROUP_COMMIT_US)
    assert log.commits == 1 and log.pending == 0
    call.policy_decision = "skip"  # a real change is written as ever
    bus.publish(CallUpdated(line=1, t_us=clock.now_us(), call=call))
    clock.run_until(7 * GROUP_COMMIT_US)
    assert log.commits == 2
    assert log.calls()[0]["policy_decision"] == "skip"
    log.close()


def test_a_decision_changed_after_the_calls_end_is_written_at_once(tmp_path):
    """The policy skips some calls at their end (the notice cut short, marked personal) and
    the recorder destroys their recording then, audited: a kill -9 in the group commit's
    window must not find the call still "record". Other late changes wait as ever."""
    clock, bus, log = _grouped(tmp_path)
    call = Call(line=1, direction="in", started_us=0)
    call.policy_decision = "record"
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    call.ended_us, call.end_reason = 200_000, "remote_break"
    bus.publish(CallEnded(line=1, t_us=200_000, call=call))
    assert log.commits == 1
    call.consent = {"notice": "beep", "given": False, "cut_short": True}
    bus.publish(CallUpdated(line=1, t_us=200_000, call=call))
    assert log.commits == 1  # not a decision: waits for the window
    call.policy_decision, call.policy_reason = "skip", "the caller hung up during the consent notice"
    bus.publish(CallUpdated(line=1, t_us=200_000, call=call))
    assert log.commits == 2 and log.pending == 0  # on the card now, with the consent waiting
    (row,) = log.calls()
    assert row["policy_decision"] == "skip" and row["consent"]["cut_short"] is True
    log.close()


def test_new_databases_get_small_pages_and_older_ones_keep_theirs(tmp_path):
    from firmware.datadir import NEW_DB_PAGE_BYTES
    from firmware.storage.audit import AuditLog

    older = sqlite3.connect(tmp_path / "old.db")
    older.execute("PRAGMA page_size=4096")
    older.executescript(OLD_SCHEMA)
    older.close()
    for path, pages in ((tmp_path / "calls.db", NEW_DB_PAGE_BYTES), (tmp_path / "old.db", 4096)):
        log = CallLog(path, SimClock())
        assert log._db.execute("PRAGMA page_size").fetchone()[0] == pages
        assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        log.close()
    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    audit.append("system", "init", None, {}, 1)
    assert audit._db.execute("PRAGMA page_size").fetchone()[0] == NEW_DB_PAGE_BYTES
    assert audit.verify() == []
    audit.close()


def test_a_write_sets_only_the_columns_that_changed(tmp_path):
    """An index on a column (the search's, on the number) is rewritten only when it changes."""
    clock, bus, log = _grouped(tmp_path)
    updates = []
    log._db.set_trace_callback(lambda sql: updates.append(sql) if sql.startswith("UPDATE calls") else None)
    call = Call(line=1, direction="in", started_us=0)
    call.number = "01632960001"
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    clock.run_until(GROUP_COMMIT_US)
    assert len(updates) == 1 and "number = " in updates[0]  # the first write: everything
    call.answered_us = 2_000_000
    bus.publish(CallAnswered(line=1, t_us=2_000_000, call=call))
    clock.run_until(4 * GROUP_COMMIT_US)
    assert len(updates) == 2 and updates[1].startswith("UPDATE calls SET answered_at = ")
    assert "number" not in updates[1]
    assert log.calls()[0]["number"] == "01632960001" and log.calls()[0]["answered"]
    log.close()


def test_a_callers_erased_details_are_not_written_back_by_a_late_event(tmp_path):
    """The call log keeps no copy that brings the number back: a late event of the call
    (the policy's word after its end) writes the erased marker, not the number."""
    from firmware.calls.calllog import ERASED, DetailsNotErasable

    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", SimClock(start_wall_us=1_772_442_000_000_000))
    log.attach(bus)
    call = Call(line=1, direction="in", started_us=0)
    call.number, call.name = "01632960777", "JONES"
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    with pytest.raises(DetailsNotErasable, match="still going on"):
        log.erase_details(call.id)
    call.ended_us = 5_000_000
    bus.publish(CallEnded(line=1, t_us=5_000_000, call=call))
    log.erase_details(call.id)
    call.policy_decision = "skip"
    bus.publish(CallUpdated(line=1, t_us=6_000_000, call=call))
    log.flush()
    (row,) = log.calls()
    assert (row["number"], row["name"], row["absence"]) == (None, None, ERASED)
    assert row["policy_decision"] == "skip" and row["ended_at"] is not None
    with pytest.raises(DetailsNotErasable, match="erased already"):
        log.erase_details(call.id)
    with pytest.raises(DetailsNotErasable, match="no call 99"):
        log.erase_details(99)
    log.close()


def _logged_number(tmp_path, number, country, direction="out"):
    """The number the call log writes of an ended call whose number is ``number``."""
    bus = EventBus(strict=True)
    log = CallLog(
        tmp_path / "calls.db", SimClock(start_wall_us=1_772_442_000_000_000), country=lambda: country
    )
    log.attach(bus)
    call = Call(line=1, direction=direction, started_us=0)
    call.number = number
    bus.publish(CallStarted(line=1, t_us=0, call=call))
    call.ended_us = 5_000_000
    bus.publish(CallEnded(line=1, t_us=5_000_000, call=call))
    (row,) = log.calls()
    log.close()
    return row["number"]


@pytest.mark.parametrize(
    "number, country",
    [
        ("14107945807302", "uk"),  # 141 and a UK mobile number
        ("*6712125550123", "us"),  # *67, 1 and a US number
    ],
)
def test_a_number_dialled_after_a_prefix_is_logged_whole(tmp_path, number, country):
    """The log ran the general card check on the number dialled, without the country's
    prefixes: a run of 13 from the prefix's second key that passes the Luhn check (about
    one such number in ten) was taken for a card, and the number logged as "1XXX..."
    ("*XXX..."), lost to a search by number, reports and subject access."""
    assert _logged_number(tmp_path, number, country) == number


@pytest.mark.parametrize(
    "number, country",
    [
        ("14107945807302" + "X" * 16, "uk"),  # as the supervisor masks a card keyed on
        ("*6712125550123" + "X" * 16, "us"),
    ],
)
def test_a_card_keyed_on_after_a_prefixed_number_stays_masked_in_the_log(tmp_path, number, country):
    assert _logged_number(tmp_path, number, country) == number


def test_a_card_after_a_prefixed_number_not_masked_yet_is_masked_in_the_log(tmp_path):
    """The log's check is the last line of defence: a card in a number no one masked."""
    logged = _logged_number(tmp_path, "14107945807302" + "4111111111111111", "uk")
    assert logged.startswith("141") and logged.endswith("X" * 16), logged
    assert "4111" not in logged


def test_a_number_the_network_gave_is_checked_as_ever(tmp_path):
    """No prefix is dialled in an inbound call's number: the general check."""
    assert _logged_number(tmp_path, "14107945807302", "uk", direction="in") == "1" + "X" * 13


def test_details_removed_by_retention_stay_removed_and_reach_the_archive_trigger(tmp_path):
    """A late event writes the ``expired`` marker back, not the number; the archive's
    trigger notes the call (its archived record held the number too), as for an erasure;
    a batch chosen before a hold was placed leaves the held call."""
    from firmware.archive.queue import ERASED_TRIGGER, STATUS_SCHEMA
    from firmware.calls.calllog import EXPIRED

    bus = EventBus(strict=True)
    log = CallLog(tmp_path / "calls.db", SimClock(start_wall_us=1_772_442_000_000_000))
    log._db.executescript(STATUS_SCHEMA + ERASED_TRIGGER)
    log.attach(bus)
    calls = []
    for n in range(3):
        call = Call(line=1, direction="in", started_us=n * 10_000_000)
        call.number, call.name = "0163296077%d" % n, "JONES"
        bus.publish(CallStarted(line=1, t_us=call.started_us, call=call))
        call.ended_us = call.started_us + 5_000_000
        bus.publish(CallEnded(line=1, t_us=call.ended_us, call=call))
        calls.append(call)
    log.flush()
    ended_by = log._db.execute("SELECT max(ended_at) FROM calls").fetchone()[0]
    due = log.details_due(ended_by, limit=2)
    assert [c for _, c in due] == [calls[0].id, calls[1].id]
    assert [c for _, c in log.details_due(ended_by, after=due[-1])] == [calls[2].id]
    log._db.execute("INSERT INTO legal_holds VALUES (?, 1, 'sam')", (calls[1].id,))
    assert log.expire_details([c for _, c in due], ended_by) == [calls[0].id]
    log.finish_expiry()
    calls[0].policy_decision = "skip"
    bus.publish(CallUpdated(line=1, t_us=60_000_000, call=calls[0]))
    log.flush()
    rows = {r["id"]: r for r in log.calls()}
    assert (rows[calls[0].id]["number"], rows[calls[0].id]["absence"]) == (None, EXPIRED)
    assert rows[calls[0].id]["policy_decision"] == "skip"
    assert rows[calls[1].id]["number"] == "01632960771"
    assert log._db.execute("SELECT call_id FROM archive_erased").fetchall() == [(calls[0].id,)]
    assert log.expired_of([c.id for c in calls]) == [calls[0].id]
    log.close()
