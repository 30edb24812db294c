"""Whether the wall clock can be trusted to delete recordings by.

A Raspberry Pi has no battery-backed clock: it starts at the last saved time
(or 1970) and jumps when NTP synchronises; a bad time server, or a person,
can set it anywhere. Deleting by a wrong time is irreversible, so automatic
deletion needs all of:

* the clock is known to be synchronised (:attr:`Clock.synchronised`);
* wall time has kept step with the monotonic clock since the last sweep that
  passed, within ``clock_tolerance_s`` (a step means a jump);
* wall time is not before the last passed sweep or the newest call, and not
  more than ``clock_max_ahead_days`` after the last passed sweep (or, before
  the first one, after the newest call) — a clock that jumps to 2040 across
  a restart is caught here.

The second holds across a restart of the recorder too, while the machine has not been
rebooted: each passed sweep keeps the kernel's boot id and its boot clock beside the wall
time (``last_passed_boot``), and the first check of a new process with the same boot id
compares against them, so a step made while the recorder was stopped is a jump as one made
while it ran (a step of under ``clock_max_ahead_days`` passed before). Across a reboot
there is nothing to compare with (a Pi has no clock of its own while off): the bounds of
the third point are all.

A jump suspends automatic deletion until an installer confirms the time
(:meth:`ClockGuard.confirm`): a clock that stays at 2040 is consistent with
itself from then on, and only a person can tell it is wrong. The suspension
and the last passed sweep are kept in ``calls.db`` (``retention_state``,
through the recordings store), so a restart does not lift them.
"""

import datetime
import os
import sqlite3
from typing import Protocol

from .retention import DAY_US


class GuardStore(Protocol):
    """Where the guard keeps its state and learns the newest call
    (:class:`firmware.recording.store.RecordingStore`)."""

    def retention_state(self, key: str) -> str | None: ...

    def set_retention_state(self, key: str, value: str | None) -> None: ...

    def newest_synced_call_us(self) -> int | None: ...


class SavedGuardState:
    """The guard's state as the recorder's sweeps left it in ``data_dir``'s calls.db,
    read once, read-only (a :class:`GuardStore` that only reads): for a process that has no
    guard of its own, the command line, or the web UI while the recorder does not answer.
    None for every key where there is no calls.db or no such table (no sweep yet).

    :raises sqlite3.Error: calls.db could not be read"""

    def __init__(self, data_dir):
        path = os.path.join(data_dir, "calls.db")
        self._values = {}
        if not os.path.exists(path):
            return
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            have = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'retention_state'")
            if have.fetchone() is not None:
                self._values = dict(db.execute("SELECT key, value FROM retention_state").fetchall())
        finally:
            db.close()

    def retention_state(self, key):
        return self._values.get(key)


def _iso(wall_us):
    return datetime.datetime.fromtimestamp(wall_us / 1e6, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


class ClockGuard:
    """Decides whether a sweep may delete.

    :param store: a :class:`GuardStore` (the recordings store, its tables prepared
        by :meth:`~firmware.recording.store.RecordingStore.prepare_retention`)
    :param settings: ``() -> RetentionSettings`` (its clock tolerances)
    """

    def __init__(self, clock, store: GuardStore, settings):
        self.clock = clock
        self._store = store
        self._settings = settings
        self._offset_us = None  # wall - monotonic at the last passed check, this process

    def _get(self, key):
        return self._store.retention_state(key)

    def _put(self, key, value):
        self._store.set_retention_state(key, None if value is None else str(value))

    @property
    def last_passed_us(self):
        value = self._get("last_passed_wall_us")
        return None if value is None else int(value)

    @property
    def passed_boot(self):
        """``(boot id, boot clock µs, wall µs)`` read together at the last passed sweep, or
        None (a clock that cannot say, or a sweep from before they were kept)."""
        value = self._get("last_passed_boot")
        if value is None:
            return None
        boot_id, boot_us, wall_us = value.split()
        return boot_id, int(boot_us), int(wall_us)

    def vouched_us(self, boot):
        """The latest wall time (µs) this guard vouches for: the last passed sweep's, plus
        the real time since it by the boot clock when ``boot`` (a :meth:`Clock.boot_us`
        reading, or None) is of the same boot; None before any sweep passed. No step of the
        wall clock since moves it, so it stands in for a sweep while the recorder is
        stopped and none is made."""
        last, then = self.last_passed_us, self.passed_boot
        if last is None or then is None or boot is None or boot[0] != then[0] or boot[1] < then[1]:
            return last
        return last + (boot[1] - then[1])

    @property
    def suspended(self):
        """Why automatic deletion is suspended (text), or None."""
        return self._get("suspended")

    def check(self):
        """None when the time can be trusted, else ``(kind, message)``: kind is
        ``"unsynchronised"`` or ``"jump"`` (which also suspends deletion)."""
        if not self.clock.synchronised:
            # The reference (wall - monotonic at the last passed sweep) is kept: a time
            # daemon that steps to a bad server drops its sync at that very moment, and
            # judged afresh once synchronised again, a step of up to clock_max_ahead_days
            # passed and deleted a month's recordings. A step made while unsynchronised
            # is a jump like any other: an installer confirms the time.
            return (
                "unsynchronised",
                "the clock is not known to be synchronised: nothing is "
                "deleted until it is (check the network and the time server)",
            )
        suspended = self.suspended
        if suspended is not None:
            return "jump", suspended + "; nothing is deleted until an installer confirms the time"
        wall_us, mono_us = self.clock.wall_us(), self.clock.now_us()
        jump = self._jump(wall_us, mono_us)
        if jump is not None:
            self._put("suspended", "%s (seen at %s)" % (jump, _iso(wall_us)))
            return "jump", self.suspended + "; nothing is deleted until an installer confirms the time"
        return None

    def _jump(self, wall_us, mono_us):
        settings = self._settings()
        tolerance_us = settings.clock_tolerance_s * 1_000_000
        drift_us, since = None, "since the last sweep"
        if self._offset_us is not None:
            drift_us = (wall_us - mono_us) - self._offset_us
        else:
            drift_us = self._drift_since_passed_boot(wall_us)
            since = "since the last sweep, while the recorder was stopped"
        if drift_us is not None and abs(drift_us) > tolerance_us:
            return "the clock jumped %s by %s %s" % (
                "forward" if drift_us > 0 else "back",
                _span(abs(drift_us)),
                since,
            )
        last = self.last_passed_us
        newest = self._store.newest_synced_call_us()
        if last is not None and wall_us < last - tolerance_us:
            return "the clock (%s) is before the last sweep (%s)" % (_iso(wall_us), _iso(last))
        confirmed = self._get("confirmed_newest_call_us")
        if confirmed is not None and newest is not None and newest <= int(confirmed):
            newest = None  # logged while the clock was ahead, before an installer confirmed the time
        if newest is not None and wall_us < newest - tolerance_us:
            return "the clock (%s) is before the newest call (%s)" % (_iso(wall_us), _iso(newest))
        reference = last if last is not None else newest
        if reference is not None and wall_us > reference + settings.clock_max_ahead_days * DAY_US:
            return "the clock (%s) is %s past the %s (%s)" % (
                _iso(wall_us),
                _span(wall_us - reference),
                "last sweep" if last is not None else "newest call",
                _iso(reference),
            )
        return None

    def _drift_since_passed_boot(self, wall_us):
        """How far (µs) the wall clock moved against the boot clock since the last passed
        sweep of an earlier process in this boot, or None: another boot, or no record."""
        then, now = self.passed_boot, self.clock.boot_us()
        if then is None or now is None or then[0] != now[0]:
            return None
        return (wall_us - then[2]) - (now[1] - then[1])

    def passed(self, wall_us):
        """A sweep passed the guard at ``wall_us``: the new reference."""
        self._offset_us = wall_us - self.clock.now_us()
        self._put("last_passed_wall_us", int(wall_us))
        boot = self.clock.boot_us()
        # The wall clock read with the boot clock, not ``wall_us`` (a sweep's start): a long
        # sweep in between was a step to the next process.
        self._put(
            "last_passed_boot",
            None if boot is None else "%s %d %d" % (boot[0], boot[1], self.clock.wall_us()),
        )

    def confirm(self, wall_us):
        """A person confirmed the time is right now; returns what the suspension said.

        Calls logged while the clock was ahead carry times after it: confirmed, they no
        longer hold deletion back (it waited for real time to pass them, a year if the
        clock had been a year ahead). A call logged later than the newest of them is
        judged again."""
        was = self.suspended
        self._put("suspended", None)
        newest = self._store.newest_synced_call_us()
        if newest is not None and newest > wall_us:
            self._put("confirmed_newest_call_us", int(newest))
        self.passed(wall_us)
        return was


def _span(us):
    s = us / 1e6
    if s < 3600:
        return "%d s" % s
    if s < 2 * 86400:
        return "%.1f hours" % (s / 3600)
    return "%d days" % (s // 86400)
