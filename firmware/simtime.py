"""The simulated box's time across runs, and for the commands run beside it.

A scenario fixes its day (``start``), but a data directory outlives a run: started
again on the same data (``make run`` once more), the box went back to the scenario's
``start``, so its new calls were dated before the ones on record and the same times
appeared twice. :func:`resumed_start_us` moves the run on by whole days instead: the
scenario's time of day, on the first day after everything the data directory holds
(its calls, the time its clock was last noted).

The simulator notes its clock in ``DATA_DIR/sim-clock.json`` as it runs
(:func:`note`). A command run on that data directory (``linekeeper calls``,
``report``, ``breach-scope``) dates what it does by the box's clock, not the
machine's (:func:`box_wall_us`): a demo box in March with its commands audited in
December was a trail no one could read.
"""

import json
import os
import sqlite3
import time

from firmware.storage import fsutil

SIM_CLOCK_NAME = "sim-clock.json"
DAY_US = 86_400 * 1_000_000
NOTE_EVERY_US = 60 * 1_000_000  # simulated time between two notes of the clock


def _newest(path, sql):
    if not os.path.isfile(path):
        return None
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        # No table yet, or a call log that cannot be read: the box opening it next says
        # what is wrong with it, in its own words; the run starts at the scenario's start.
        return None


def latest_on_record_us(data_dir):
    """The latest wall time (µs since the epoch) ``data_dir`` holds: its newest call's start
    or end, or the last note of its simulated clock (by the simulator, or by a command that
    its simulator); None for a new directory.

    The audit trail is not read: what a simulated box, and the commands run on its data,
    dated is at most :data:`NOTE_EVERY_US` after the note, and entries made on the
    machine's clock before its first run (``linekeeper init``) are not the box's time.

    A call log that cannot be read counts as none (the box opening it says why).
    """
    times = [
        _newest(
            os.path.join(data_dir, "calls.db"),
            "SELECT MAX(MAX(started_at, COALESCE(ended_at, started_at))) FROM calls",
        ),
    ]
    noted = read_note(data_dir)
    if noted is not None:
        times.append(noted["wall_us"])
    times = [t for t in times if t is not None]
    return max(times) if times else None


def resumed_start_us(start_us, data_dir):
    """The wall time a run of a scenario starting at ``start_us`` starts at on ``data_dir``:
    ``start_us`` itself on a new directory (or one whose records are all before it), else
    the same time of day on the first day after the latest time on record."""
    latest = latest_on_record_us(data_dir)
    if latest is None:
        return start_us
    latest += NOTE_EVERY_US  # what a command may have dated after the last note
    if latest < start_us:
        return start_us
    return start_us + (latest - start_us) // DAY_US * DAY_US + DAY_US


def note(data_dir, wall_us, real_us=None):
    """Note the simulated clock's ``wall_us`` as it was at the real time ``real_us`` (µs
    since the epoch, by default now) in ``DATA_DIR/sim-clock.json``."""
    real_us = time.time_ns() // 1000 if real_us is None else real_us
    data = json.dumps({"wall_us": int(wall_us), "real_us": int(real_us)}).encode()
    fsutil.atomic_write(os.path.join(data_dir, SIM_CLOCK_NAME), data, sync_dir=False)


def read_note(data_dir):
    """The simulator's last note of ``data_dir`` (``{"wall_us", "real_us"}``), or None
    where there is none (not a simulated box's data) or it cannot be read."""
    try:
        with open(os.path.join(data_dir, SIM_CLOCK_NAME), "rb") as f:
            doc = json.loads(f.read(4096))
        return {"wall_us": int(doc["wall_us"]), "real_us": int(doc["real_us"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def box_wall_us(data_dir, real_us=None):
    """Now (µs since the epoch) by the clock of the simulated box of ``data_dir``: its last
    noted time, plus the real time since the note up to :data:`NOTE_EVERY_US` (while the box
    runs a newer note comes within that; stopped, its clock stands where it stopped, so
    nothing a command dates goes past what the next run starts after); None where the
    simulator left no note: a real box's data, whose clock is the machine's."""
    noted = read_note(data_dir)
    if noted is None:
        return None
    real_us = time.time_ns() // 1000 if real_us is None else real_us
    return noted["wall_us"] + min(max(0, real_us - noted["real_us"]), NOTE_EVERY_US)


def keep_noting(clock, data_dir):
    """Note ``clock``'s wall time in ``data_dir`` now and every :data:`NOTE_EVERY_US` of
    simulated time while it runs; returns ``stop()``, which notes it once more and stops."""
    timer = [None]

    def tick():
        note(data_dir, clock.wall_us())
        timer[0] = clock.call_later(NOTE_EVERY_US, tick)

    def stop():
        if timer[0] is not None:
            timer[0].cancel()
            timer[0] = None
            note(data_dir, clock.wall_us())

    tick()
    return stop
