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


class _RefusingCallsInsert:
    """calls.db as the call log sees it: INSERTs of calls on ``line`` fail with an I/O error."""

    def __init__(self, db, line):
        self.db, self.line, self.refusing = db, line, True

    def execute(self, sql, args=()):
        insert = sql.lstrip().upper().startswith("INSERT INTO CALLS (ID, LINE,")
        if self.refusing and insert and args[1] == self.line:
            exc = sqlite3.OperationalError("disk I/O error")
            exc.sqlite_errorcode = 10  # SQLITE_IOERR
            raise exc
        return self.db.execute(sql, args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def _run_refusing(lab, data_dir, recover_at_us, until_us=None):
    """Run the two calls with line 1's INSERT refused until ``recover_at_us`` (None: never)."""

    def schedule(box):
        refusing = _RefusingCallsInsert(box.calllog._db, line=1)
        box.calllog._db = refusing
        if recover_at_us is not None:
            box.clock.call_at(recover_at_us, lambda: setattr(refusing, "refusing", False))

    return lab.run(
        lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir, until_us=until_us, before_start=schedule
    )


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


@pytest.mark.parametrize(
    "recover_at_us, until_us",
    [(4_000_000, None), (20_000_000, 25_000_000)],
    ids=["card-recovers-mid-call", "card-recovers-after-the-calls"],
)
def test_a_refused_call_insert_still_records_the_call_and_logs_it_when_the_card_recovers(
    lab, recover_at_us, until_us
):
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    run = _run_refusing(lab, data_dir, recover_at_us, until_us)
    assert [(a.kind, a.active) for a in run.alarms if a.kind == "call_log"] == [
        ("call_log", True),
        ("call_log", False),
    ], run.alarms
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
