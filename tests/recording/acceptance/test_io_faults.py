"""A card that refuses one write or sync of the recording path, anywhere in a day.

An SD card that is wearing out answers some writes with an I/O error and then
goes on. test_crash_unsynced.py cuts the power at the recorder's system calls;
this test makes one of them fail instead, with ``EIO``, and lets the box run
on: every write, sync, rename and allocation, once the box has opened its data,
of the recording writer (``firmware.recording.segment``), of the recording
journal and of the file-system helpers (``firmware.storage.fsutil``: key
copies, the audit trail's head, the running and clean-stop marks, the line
check...) is a candidate, and :data:`FAULTS` of them, drawn with a fixed seed
(``LK_IO_SEED`` explores others), are tried one per run, on the 1 s journal
path and on the power-fail path: that call alone failing with ``EIO``, and
that call and the four after it with ``ENOSPC`` (a card full for a moment,
or failing for a while). A second run does the same to SQLite's own
writes and syncs of the box's databases (the call log, the audit trail...),
through a VFS in front of SQLite's (:mod:`support.sqlitefaults`). The calls
are the power-cut test's, on three lines: about 90 system calls and 200 of
SQLite's a path, :data:`FAULTS` of each drawn.

After each run, and the next start's recovery, the box must have kept its
promises:

* the run ends: no exception escapes the box;
* every call has its row and its end, and every recording is ``complete`` or
  ``partial``;
* a recording left ``partial`` has the ``recording_failed`` or ``disk_full``
  alarm on its line (a fault that cost nothing, a write the journal also
  holds, leaves it ``complete``);
* ``verify``, with the key, passes (the call log's integrity included): no
  recording looks tampered with because of a card's hiccup;
* every recording exports the line's audio, a complete one all of its duration.

It found faults that made ``verify`` report tampering after a card error: a
seal the journal took but the file refused (test_seal_refused_by_file.py,
which also tests a refused journal commit, found on the way); a recording
that stored nothing signed over an outbound number still being dialled
(tests/firmware/test_evidence_no_audio.py); the chunks of a recording stopped
mid-call, in the journal but not in the file (the same reseal); an audit head
the card refused (tests/storage/test_audit.py). And two that stopped the box:
an error writing the running mark at the start
(tests/firmware/test_alarmchecks.py), and writing the key pin at the first
call (tests/firmware/test_keypin_card_errors.py).
"""

import errno
import os
import random

import pytest

from firmware.recording import journal, segment
from firmware.storage import fsutil

from .test_crash_unsynced import CALLS  # the power-cut test's calls, on three lines
from support.recording_lab import same_audio
from support.sqlitefaults import SqliteFaults

pytestmark = pytest.mark.slow  # a run of the box for every fault

SEED = int(os.environ.get("LK_IO_SEED", "20261204"))
FAULTS = int(os.environ.get("LK_IO_FAULTS", "24"))  # of about 90 system calls and 200 database ones a path
PATHS = {
    "journal": {},
    "holdup": {"hat": "lk-4l", "config": {"holdup_flush_ms": 2_000}},
}


class _Faulty:
    """The ``os`` module as the three modules see it: once the box has opened its data,
    their ``fail_at``-th write, sync, rename or allocation (counted together, from 1)
    and the ``span - 1`` after it fail with ``err``; ``fail_at=None`` only counts."""

    CALLS = ("write", "pwrite", "fdatasync", "fsync", "ftruncate", "replace", "posix_fallocate")

    def __init__(self, state):
        self._state = state

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self.CALLS:
            return real

        def call(*args):
            if not self._state["armed"]:
                return real(*args)
            state = self._state
            state["count"] += 1
            if state["fail_at"] is not None and 0 <= state["count"] - state["fail_at"] < state["span"]:
                state["struck"] = state["struck"] or (name, state["count"])
                # As the real call fails: holding none of its arguments (a buffer's view
                # kept alive by the traceback would stop the journal closing its buffer).
                args = None
                raise OSError(state["err"], os.strerror(state["err"]))
            return real(*args)

        return call


def _run(lab, monkeypatch, doc, data_dir, fail_at=None, err=errno.EIO, span=1):
    state = {"count": 0, "fail_at": fail_at, "struck": None, "armed": False, "err": err, "span": span}
    with monkeypatch.context() as mp:
        for module in (segment, journal, fsutil):
            mp.setattr(module, "os", _Faulty(state))
        run = lab.run(lab.load(doc), data_dir, before_start=lambda box: state.update(armed=True))
    return run, state


@pytest.mark.parametrize(
    "err, span",
    [(errno.EIO, 1), (errno.ENOSPC, 5), (errno.ENOSPC, 30)],
    ids=["one-EIO", "five-ENOSPC", "thirty-ENOSPC"],
)
@pytest.mark.parametrize("path", sorted(PATHS))
def test_refused_writes_or_syncs_cost_at_most_their_recordings_and_never_evidence(
    lab, monkeypatch, path, err, span
):
    """One call refused (an I/O error), five in a row (a card full for a moment,
    or failing for a while), or thirty (full for the rest of the run, often: a run
    makes about 90)."""
    doc = lab.scenario_doc(CALLS, lines=3, **PATHS[path])
    _dry_run, dry = _run(lab, monkeypatch, doc, lab.init_data_dir(lab.tmp_path / "dry"))
    points = sorted(random.Random(SEED).sample(range(1, dry["count"] + 1), min(FAULTS, dry["count"])))
    scenario = lab.load(doc)
    for fail_at in points:
        data_dir = lab.init_data_dir(lab.tmp_path / ("fault-%03d" % fail_at))
        run, state = _run(lab, monkeypatch, doc, data_dir, fail_at, err, span)
        what = "%s, calls %d-%d of %d (%s)" % (
            path,
            fail_at,
            fail_at + span - 1,
            dry["count"],
            state["struck"],
        )
        assert state["struck"], what
        partial = _check(lab, scenario, data_dir, run, what, PATHS[path])
        print("%s: %d partial recording(s)" % (what, partial))


def _run_sqlite(lab, doc, data_dir, fail_at=None, span=1):
    with SqliteFaults(data_dir, fail_at, span) as faults:
        run = lab.run(lab.load(doc), data_dir, before_start=lambda box: setattr(faults, "armed", True))
    return run, faults


@pytest.mark.parametrize("span", [1, 30], ids=["one", "thirty"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_refused_database_writes_or_syncs_cost_no_call_and_no_evidence(lab, path, span):
    """One of SQLite's writes or syncs refused, or thirty in a row (a card that refuses
    the databases for a while: about 200 a path)."""
    doc = lab.scenario_doc(CALLS, lines=3, **PATHS[path])
    _dry_run, dry = _run_sqlite(lab, doc, lab.init_data_dir(lab.tmp_path / "dry"))
    points = sorted(random.Random(SEED).sample(range(1, dry.count + 1), min(FAULTS, dry.count)))
    scenario = lab.load(doc)
    for fail_at in points:
        data_dir = lab.init_data_dir(lab.tmp_path / ("fault-%03d" % fail_at))
        run, faults = _run_sqlite(lab, doc, data_dir, fail_at, span)
        what = "%s, database calls %d-%d of %d (%s)" % (
            path,
            fail_at,
            fail_at + span - 1,
            dry.count,
            faults.struck,
        )
        assert faults.struck, what
        partial = _check(lab, scenario, data_dir, run, what, PATHS[path])
        print("%s: %d partial recording(s)" % (what, partial))


def _check(lab, scenario, data_dir, run, what, extra):
    # The next start: the journal's replay and the recovery (and the alarms it raises).
    after = lab.run(lab.load(lab.scenario_doc([], lines=3, **extra)), data_dir, until_us=1_000_000)
    alarms = run.alarms + after.alarms
    calls = {c["id"]: c for c in lab.calls(data_dir)}
    assert len(calls) == len(CALLS) and all(c["ended_at"] for c in calls.values()), (what, calls)
    rows = lab.rows(data_dir)
    assert {r["state"] for r in rows} <= {"complete", "partial"}, (what, rows)
    status, out, err = lab.verify(data_dir)
    assert status == 0, (what, out, err)
    # recording_failed names its line; disk_full is the box's (raised by the first line it stops).
    # (Or, for a recording whose end the call log refused until the stop, the next start's.)
    failed = {a.line for a in alarms if a.kind == "recording_failed" and a.active}
    full = any(a.kind == "disk_full" and a.active for a in alarms)
    for row in rows:
        call = calls[row["call_id"]]
        if row["state"] == "partial":
            assert call["line"] in failed or full, (what, row, alarms)
        if not row["bytes"]:
            continue
        t0_us = lab.clock_us(scenario, row["started_at"])
        wav = os.path.join(os.path.dirname(data_dir), "%s-%s.wav" % (os.path.basename(data_dir), row["id"]))
        status, out, err = lab.export(data_dir, row["call_id"], wav)
        assert status == 0, (what, err)
        y = lab.read_wav(wav)
        same_audio(lab.source(scenario, call["line"], t0_us, len(y)), y)
        if row["state"] == "complete":
            assert abs(len(y) * 125 - row["duration_s"] * 1e6) < 20_000, (what, row, len(y))
    return sum(r["state"] == "partial" for r in rows)
