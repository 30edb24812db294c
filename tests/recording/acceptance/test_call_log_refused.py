"""Issue 9: the call log refuses a call's INSERT while another line records.

The card refuses the ``calls`` INSERT of line 1's call (an I/O error on
calls.db) while line 2's call goes on being recorded. The box must not
crash: line 1's call keeps the id the box reserved for it, its audio is
recorded bound to that id (header, wrap context, recordings row), the
``call_log`` alarm goes on, and once the card takes writes again both calls
are in the log and ``linekeeper verify`` passes.
"""

import sqlite3

import pytest

from firmware.calls.calllog import iso_ms

S = "The birch canoe slid on the smooth planks."
CALLS = [
    {
        "line": line,
        "at": 0.5 * line,
        "direction": "in",
        "rings": 1,
        "talk": 6.0,
        "speech": [{"at": 0.2 + 2.5 * i, "text": S} for i in range(2)],
    }
    for line in (1, 2)
]
RECOVER_AT_US = 4_000_000  # the card takes writes again (both calls in progress)


class _Card:
    """An I/O error on calls.db for line ``line``'s call while ``refusing`` is set: its
    ``calls`` INSERT (the call log's connection) and, with ``recordings``, its
    ``recordings`` INSERT (the recordings store's own connection) fail."""

    def __init__(self, line, recordings=False):
        self.line, self.recordings, self.refusing = line, recordings, True
        self.call_ids = set()  # ids of the calls on the line

    def refuses(self, sql, args):
        if not self.refusing:
            return False
        sql = sql.lstrip().upper()
        if sql.startswith("INSERT INTO CALLS (ID, LINE,") and args[1] == self.line:
            self.call_ids.add(args[0])
            return True
        return self.recordings and sql.startswith("INSERT INTO RECORDINGS") and args[1] in self.call_ids

    def wrap(self, db):
        return _Connection(db, self)


class _Connection:
    def __init__(self, db, card):
        self.db, self.card = db, card

    def execute(self, sql, args=()):
        if self.card.refuses(sql, args):
            exc = sqlite3.OperationalError("disk I/O error")
            exc.sqlite_errorcode = 10  # SQLITE_IOERR
            raise exc
        return self.db.execute(sql, args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def _run_refusing(lab, data_dir, recover_at_us, until_us=None, recordings=False):
    """Run the two calls with line 1's INSERTs refused until ``recover_at_us`` (None: never)."""
    card = _Card(line=1, recordings=recordings)

    def schedule(box):
        box.calllog._db = card.wrap(box.calllog._db)
        box.recordings._db = card.wrap(box.recordings._db)
        if recover_at_us is not None:
            box.clock.call_at(recover_at_us, lambda: setattr(card, "refusing", False))

    run = lab.run(
        lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir, until_us=until_us, before_start=schedule
    )
    assert card.call_ids, "the fault never struck"
    return run


def _check_both_calls_recorded(lab, data_dir):
    calls = lab.calls(data_dir)
    assert sorted(c["line"] for c in calls) == [1, 2], calls
    assert all(c["answered"] and c["ended_at"] for c in calls), calls
    assert all(c["recording"] == "complete" for c in calls), calls
    rows = lab.rows(data_dir)
    assert sorted(r["call_id"] for r in rows) == sorted(c["id"] for c in calls)
    assert all(r["duration_s"] > 5 for r in rows), rows
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    return calls


def _on_then_off(alarms):
    """Each line's ``call_log`` alarm went on and then off (as ``{line: [active, ...]}``)."""
    by_line = {}
    for a in alarms:
        if a.kind == "call_log":
            by_line.setdefault(a.line, []).append(a.active)
    return by_line


@pytest.mark.parametrize(
    "recover_at_us, until_us, recordings",
    [
        (4_000_000, None, False),
        (20_000_000, 25_000_000, False),
        (4_000_000, None, True),
        (20_000_000, 25_000_000, True),
    ],
    ids=[
        "calls-mid-call",
        "calls-after-the-calls",
        "calls-and-recordings-mid-call",
        "calls-and-recordings-after",
    ],
)
def test_a_refused_call_insert_still_records_the_call_and_logs_it_when_the_card_recovers(
    lab, recover_at_us, until_us, recordings
):
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    run = _run_refusing(lab, data_dir, recover_at_us, until_us, recordings=recordings)
    # The call log's alarm (line 0) and, when the recording's row waited too, line 1's.
    expected = {0: [True, False]}
    if recordings:
        expected[1] = [True, False]
    assert _on_then_off(run.alarms) == expected, run.alarms
    assert not [a for a in run.alarms if a.kind == "recording_failed"], run.alarms
    _check_both_calls_recorded(lab, data_dir)


def test_a_call_the_card_never_took_before_the_stop_is_linked_at_the_next_start(lab):
    """The box stopped with line 1's row still in memory: its recording (row and sealed
    header) names the call; the next start puts the call back from the header."""
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    _run_refusing(lab, data_dir, recover_at_us=None)
    assert sorted(c["line"] for c in lab.calls(data_dir)) == [2]
    # The next start (an idle minute) links the recording's call again.
    lab.run(lab.load(lab.scenario_doc([], lines=2)), data_dir, until_us=1_000_000)
    calls = _check_both_calls_recorded(lab, data_dir)
    (restored,) = [c for c in calls if c["line"] == 1]
    assert restored["end_reason"] == "repaired", restored


def test_a_recording_whose_row_the_card_never_took_is_kept_for_repair(lab):
    """Line 1's call and recording rows both stayed in memory until the stop: the audio is
    on the card, the next start refuses (naming ``repair``), and ``repair`` rebuilds both
    rows from the recording's sealed header."""
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    _run_refusing(lab, data_dir, recover_at_us=None, recordings=True)
    status, out, err = lab.cli(
        "sim", lab.write_scenario(lab.scenario_doc([], lines=2)), "--data-dir", data_dir
    )
    assert status == 2 and "linekeeper repair" in err and len(err.strip().splitlines()) == 1, err
    status, out, err = lab.cli("repair", "--data-dir", data_dir, "--password-file", lab.password_file())
    assert status == 0, (out, err)
    calls = _check_both_calls_recorded(lab, data_dir)
    assert [c["end_reason"] for c in calls if c["line"] == 1] == ["repaired"], calls


def test_a_call_no_call_log_numbered_is_not_recorded_but_nothing_stops(lab, monkeypatch):
    """A recording is never made unbound: a call the call log never saw (so has no id)
    raises the ``recording_failed`` alarm on its line, and the other line records."""
    from firmware.calls.calllog import CallLog

    updated = CallLog._updated
    monkeypatch.setattr(CallLog, "_updated", lambda log, ev: None if ev.line == 1 else updated(log, ev))
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    run = lab.run(lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir)
    failed = [a for a in run.alarms if a.kind == "recording_failed" and a.active]
    assert [a.line for a in failed] == [1] and "no call-log id" in failed[0].message, run.alarms
    calls = lab.calls(data_dir)
    assert [(c["line"], c["recording"]) for c in calls] == [(2, "complete")], calls
    assert lab.verify(data_dir)[0] == 0


def test_a_recording_whose_end_the_card_refused_until_a_clean_stop_is_alarmed_at_the_start(lab, monkeypatch):
    """The card refuses the recordings' ends from the middle of the calls to the clean
    stop (each kept in memory, tried again, refused again): the next start's recovery
    keeps them as partial, with all their audio, and raises ``recording_failed`` on
    each one's line, since no crash alarm will."""
    from firmware.recording.store import RecordingStore

    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    real = RecordingStore.finish

    def refused(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(RecordingStore, "finish", refused)
    lab.run(lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir)
    monkeypatch.setattr(RecordingStore, "finish", real)
    assert {r["state"] for r in lab.rows(data_dir)} == {"recording"}
    after = lab.run(lab.load(lab.scenario_doc([], lines=2)), data_dir, until_us=1_000_000)
    rows = lab.rows(data_dir)
    assert [r["state"] for r in rows] == ["partial", "partial"] and all(r["duration_s"] > 5 for r in rows)
    raised = {a.line for a in after.alarms if a.kind == "recording_failed" and a.active}
    assert raised == {1, 2}, after.alarms
    # Each about its call, as the recorder's own recording_failed: the alarms page links to it.
    started = {c["line"]: (c["id"], c["started_at"]) for c in lab.calls(data_dir)}
    about = {
        a.line: (a.call_id, a.call_us and iso_ms(a.call_us))
        for a in after.alarms
        if a.kind == "recording_failed" and a.active
    }
    assert about == started, after.alarms
    status, out, err = lab.verify(data_dir)
    assert status == 0, out + err
