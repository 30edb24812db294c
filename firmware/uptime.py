"""When the recorder ran, kept so that a report can say when nothing could be recorded.

A report of a day the box was off shows no calls, which reads like a quiet day. To
tell them apart the box keeps, in its audit trail (tamper-evident, and read by the
reports already):

- ``box_start`` for every run that lasted a minute, or was stopped or cut before
  that, saying when it started (``started``), how the run before it ended and since when
  the box had not been recording (``after``, ``down_from``): a clean stop (the
  time of the clean-stop mark, or of the run's ``box_stop`` when the card refused the
  mark), a power cut the HAT warned of (the time of its
  ``power_fail`` entry), a restart for an update or its rollback (``update``: a
  clean stop after the updater noted its restart, below, or followed by a data
  migration, a rollback or another release), a crash or a power cut without warning
  (``crash``: the last sign of life, below, else the last run's start; none when no
  run is on record, as after a crash in the first minute of a data folder's first run,
  whose failed starts that run audited are then read as the time before this one), or
  none (``first_start``: a data folder never started before);
- ``box_stop`` at every clean stop.

A run's ``box_start`` the card refuses at its stop or power cut (within its first
minute) goes in the ``box_stop`` or ``power_fail`` entry written just after it, as
``start``: the next start dates its gap from that stop or cut, and the time before
the run is still on record (:mod:`firmware.reports.downtime` reads it there). A clean
stop whose ``box_stop`` the card refuses too leaves the run's start in its clean-stop
mark (:func:`firmware.datadir.mark_clean_stop`), with the stop's time, and the next
start's ``box_start`` carries it (``last_run``): the time before that run and the time
after its stop are both on record. A mark without a time (an older release's) dates
the gap from the end of the last run on record (its stop or cut, else its last sign of
life), never counting the time before it as recorded.

The updater (:mod:`firmware.update.flow`) restarts the services into a slot, which
stops the recorder cleanly; a reinstall keeps the release and the data's schema, so
nothing else tells that stop from an operator's. So just before it restarts them it
leaves the file ``DATA_DIR/update-restart`` (:func:`note_update_restart`: when, the
boot and the recorder's pid; removed again if the restart command fails), and the next
start reads it as the reason and removes it (:func:`restarted_for_update`,
:func:`clear_update_restart`). An updater killed between the note and the restart
leaves it behind, the recorder still running: the start takes it only when the clean
stop it follows came within :data:`UPDATE_RESTART_WITHIN_US` after the note (an
operator's stop days later is not the update's), and the updater's recovery removes it
while the recorder it named still runs in the same boot (:func:`drop_stale_update_restart`).
The release before the note restarts without one, so the update to this release from
it leaves none; its progress note on the Updates page says it is at its ``restart``
step, and when, until the recorder it starts is ready: a clean stop within the same
five minutes after that is the update's too
(:func:`firmware.update.inbox.restart_step_us`).

A crash writes nothing, so the recorder leaves a sign of life, the file
``DATA_DIR/alive`` holding the wall time, rewritten every :data:`ALIVE_EVERY_US`
of the box's clock; the next start dates the crash from it. The first sign comes a
minute after the start, with the run's ``box_start``: a recorder crashing in a loop
every few seconds (systemd starts it again after 2 s, for ever) writes neither, so
the audit trail does not grow by an entry a start, and the run that lasts says
since when nothing was recorded (the last sign of the run before the loop). It is not synced
(one small rename a minute, written out with the file system's next commit): a
crash is dated at most a minute and that commit interval before it happened, never
after, so a report never counts as recorded a time that was not.

A Pi has no battery-backed clock: until the network time arrives it runs from the time
it last saved, so ``box_start`` says whether the clock that dated ``started`` was set
(``clock_synced``), and a run whose start it dated before it was set audits
``clock_set`` once it is (:class:`firmware.box.Box`): the start dated again from the
same instant on the monotonic clock; so does a run whose clock, set, is stepped (by hand,
or by the time daemon). A report gives a time dated by a clock not set as approximate, at
least its length. A clock set in the minute after the last sign of life would date a crash
by the clock before the step, so :class:`AliveMark` watches for a step (every few seconds,
and when the kernel says the clock was set) and makes the sign again at once.

Reading them back: :func:`firmware.reports.downtime.downtime`.
"""

import json
import logging
import os

from .calls.calllog import iso_ms
from .localtime import iso_to_us
from .storage.fsutil import fsync_dir

log = logging.getLogger(__name__)

ALIVE_FILE = "alive"
UPDATE_RESTART_FILE = "update-restart"
# The clean stop the updater's restart makes comes within this of its note (systemd
# kills a recorder whose stop takes 90 s); a note older at a stop is not that stop's.
UPDATE_RESTART_WITHIN_US = 5 * 60_000_000
BOOT_ID = "/proc/sys/kernel/random/boot_id"
ALIVE_EVERY_US = 60_000_000
# The wall clock is watched this often for a step (set by the network time or a person) of
# more than STEP_US, which makes the next sign of life at once (AliveMark).
STEP_CHECK_US = 5_000_000
STEP_US = 1_000_000
# Why the box was not recording before a start (``box_start``'s ``after``).
CAUSES = ("clean_stop", "power_fail", "update", "crash", "first_start")


def last_alive_us(data_dir):
    """The wall time (µs) of the last run's last sign of life, or None when there is none
    (never written, or a write a crash cut short)."""
    try:
        with open(os.path.join(os.fspath(data_dir), ALIVE_FILE), encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def write_alive(data_dir, wall_us, sync=False):
    """Write the sign of life ``wall_us``; a card that refuses it is only logged (the
    box records all the same; a crash then is dated from an earlier sign). ``sync``: on
    the card before it returns (the sign after the clock was set: the one before it,
    dated by the clock as it was, would date a crash by that clock)."""
    path = os.path.join(os.fspath(data_dir), ALIVE_FILE)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % wall_us)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if sync:
            fsync_dir(os.path.dirname(path))
    except OSError as exc:
        log.warning("cannot write the sign of life %s: %s", path, exc)


def boot_id():
    """This boot's id (the kernel's), or None where there is none."""
    try:
        with open(BOOT_ID, encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def note_update_restart(data_dir, wall_us, slot, pid=None):
    """The updater's call, just before it restarts the services into ``slot`` (at
    ``wall_us``; ``pid``: the recorder it restarts, None if none answered): the
    recorder's clean stop that follows is the update's. Never raises (the update goes
    on; that stop then reads as a clean one, logged)."""
    from .storage.fsutil import atomic_write, hand_to_data_dir_owner

    path = os.path.join(os.fspath(data_dir), UPDATE_RESTART_FILE)
    note = {"slot": slot, "at_us": int(wall_us), "boot_id": boot_id(), "pid": pid}
    try:
        atomic_write(path, json.dumps(note).encode())
        hand_to_data_dir_owner(data_dir, (path,))  # the recorder removes it
    except OSError as exc:
        log.error("cannot note the restart for the update in %s: %s", path, exc)


def _update_restart_note(data_dir):
    """The updater's note (a dict with an integer ``at_us``), or None."""
    try:
        with open(os.path.join(os.fspath(data_dir), UPDATE_RESTART_FILE), encoding="utf-8") as f:
            note = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the updater's note of its restart: %s", exc)
        return None
    if not isinstance(note, dict) or type(note.get("at_us")) is not int:
        log.warning("the updater's note of its restart is not one: ignored")
        return None
    return note


def restarted_for_update(data_dir, clean_stop_us, restart_step_us=None):
    """Whether the clean stop at ``clean_stop_us`` (None: not known) was the updater's
    restart: its note is there, written at most :data:`UPDATE_RESTART_WITHIN_US` before
    that stop (a note an updater killed before its restart left is another stop's).

    :param restart_step_us: when the update the Updates page shows began its restart
        step (:func:`firmware.update.inbox.restart_step_us`), or None: taken the same
        way, for the update that installs this release from one whose updater leaves
        no note (it leaves its progress note all the same, and that says ``restart``
        until the recorder it starts is ready)
    """
    note = _update_restart_note(data_dir)
    if clean_stop_us is None:
        return False
    noted = [t for t in (note["at_us"] if note else None, restart_step_us) if t is not None]
    return any(0 <= clean_stop_us - t <= UPDATE_RESTART_WITHIN_US for t in noted)


def drop_stale_update_restart(data_dir, recorder_pid):
    """The updater's recovery: remove a note whose restart never came, written in this
    boot and naming the recorder that still runs (``recorder_pid``, which answers now;
    None when none does). Returns whether it did."""
    note = _update_restart_note(data_dir)
    if note is None or recorder_pid is None or note.get("pid") != recorder_pid:
        return False
    if note.get("boot_id") is None or note["boot_id"] != boot_id():
        return False  # another boot's: that recorder was stopped since (its start reads it)
    log.warning("the updater's note of its restart stayed without one (the update was cut short): removed")
    clear_update_restart(data_dir)
    return True


def clear_update_restart(data_dir):
    """Remove the updater's note (read by this start, or its restart failed); a card that
    refuses is only logged (the next clean stop then reads as the update's too)."""
    try:
        os.unlink(os.path.join(os.fspath(data_dir), UPDATE_RESTART_FILE))
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("cannot remove the updater's note of its restart: %s", exc)


class AliveMark:
    """Write the sign of life every ``every_us`` of ``clock``, the first one ``every_us``
    after :meth:`start`, while ``running()`` is true (a box halted by a power cut stops
    at once) and ``ready()`` is (the run's ``box_start`` is on the card: a sign of this
    run without it would hide the time before it from the next start).

    A wall clock set (stepped: the network time arriving, or a person) between two signs
    left the last one dated by the clock as it was: a crash or a power cut without
    warning before the next was then dated by it, its time wrong by the step. So the
    clock is watched every :data:`STEP_CHECK_US`, and a step of more than
    :data:`STEP_US` makes the next sign at once (``ready()`` first, which audits the
    clock being set), on the card before it goes on. A power cut in those seconds was
    still dated by the clock before the step: where the clock says when it is set
    (:meth:`firmware.clock.Clock.watch_steps`: the kernel's word, on the box) it is
    looked at then too, and only the moment the sign takes to write is left."""

    def __init__(self, clock, data_dir, running, ready=lambda: True, every_us=ALIVE_EVERY_US):
        self.clock = clock
        self.data_dir = data_dir
        self.running = running
        self.ready = ready
        self.every_us = every_us
        self._timer = None
        self._watch = None
        self._offset_us = None  # the wall clock less the monotonic one at the last look
        self._signed = False  # a sign of this run is on the card
        self._stopped = False

    def start(self):
        self._timer = self.clock.call_later(self.every_us, self._tick)
        self._offset_us = self._offset()
        self._watch = self.clock.call_later(STEP_CHECK_US, self._check_step)
        # Told at once where the clock can tell; the look every few seconds stays (a clock
        # that cannot, or a setting it missed).
        self.clock.watch_steps(self._clock_was_set)

    def _offset(self):
        now = self.clock.now_us()
        return self.clock.wall_at(now) - now

    def _tick(self, sync=False):
        self._timer = None
        if not self.running():
            return
        if self.ready():
            write_alive(self.data_dir, self.clock.wall_at(self.clock.now_us()), sync=sync)
            self._signed = True
        self._timer = self.clock.call_later(self.every_us, self._tick)

    def _check_step(self):
        self._watch = None
        if not self.running():
            return
        self._look()
        self._watch = self.clock.call_later(STEP_CHECK_US, self._check_step)

    def _clock_was_set(self):
        """The clock says it was set (:meth:`firmware.clock.Clock.watch_steps`): look now."""
        if not self._stopped and self._offset_us is not None and self.running():
            self._look()

    def _look(self):
        """A step of the wall clock since the last look makes the next sign at once."""
        offset = self._offset()
        if abs(offset - self._offset_us) > STEP_US:
            self._offset_us = offset
            if self._signed and self._timer is not None:
                # The last sign was dated by the clock before the step: the next one now.
                self._timer.cancel()
                self._tick(sync=True)

    def stop(self):
        self._stopped = True
        for timer in (self._timer, self._watch):
            if timer is not None:
                timer.cancel()
        self._timer = self._watch = None


def start_details(
    *, stopped_cleanly, clean_stop_us, power_failed, crashed, after_update, audit, data_dir, stopped_run=None
):
    """``box_start``'s details: how the last run ended, since when nothing was recorded
    (``down_from``, ISO 8601 UTC, or None) and the release now starting.

    :param stopped_cleanly: the last run left its clean-stop mark
    :param clean_stop_us: the time in that mark, or None (a mark without one: an older
        release's)
    :param stopped_run: the ``box_start`` details that mark carries (the card refused that
        run's ``box_start`` and ``box_stop``), or None: they go in ``last_run``, so that
        the time before that run is on record too
    :param power_failed: the last run sealed everything at a power-fail warning
    :param crashed: the last run left its running marker (no clean stop)
    :param after_update: this start follows a migration of the data, a rollback or the
        updater's restart (:func:`restarted_for_update`)
    :param audit: the box's :class:`~firmware.storage.audit.AuditLog`
    """
    from . import __version__

    starts = audit.entries(limit=1, action="box_start")
    if power_failed:
        # The cut's own entry: one written before the last start is an older cut's (this
        # one's entry the card refused, which is only logged): then the last sign of life.
        entry = audit.entries(limit=1, action="power_fail")
        if entry and (not starts or entry[0].seq > starts[0].seq):
            down_from = entry[0].wall_us
        else:
            down_from = _last_sign(data_dir, starts, audit)
        after = "power_fail"
    elif stopped_cleanly:
        down_from = clean_stop_us
        if down_from is None:
            # A mark without a time (an older release's, or one that kept no entry of its
            # stop nor of its run's start): the end of the last run on record, its stop or
            # cut, else its last sign of life, as after a crash.
            ends = [audit.entries(limit=1, action=action) for action in ("box_stop", "power_fail")]
            down_from = (
                max([_last_sign(data_dir, starts, audit) or 0] + [e[0].wall_us for e in ends if e]) or None
            )
            stopped_run = None
        last = stopped_run if stopped_run is not None else starts[0].details if starts else {}
        other_release = last.get("release") not in (None, __version__)
        after = "update" if after_update or other_release else "clean_stop"
        if stopped_run is not None:
            # The run the card kept no entry of: its start, carried by its mark.
            return {
                "after": after,
                "down_from": iso_ms(down_from),
                "release": __version__,
                "last_run": stopped_run,
            }
    elif not crashed and _stop_after(audit, starts) is not None:
        # Neither mark, the run's clean stop on record after its start: a stop whose mark
        # the card refused (the start raised no power_loss_restart): that stop's.
        down_from = _stop_after(audit, starts)
        after = "update" if after_update else "clean_stop"
    elif crashed or starts:
        # No clean stop (or, with neither mark, one a full card could not mark): the
        # last sign of life, else at least that run's start.
        down_from = _last_sign(data_dir, starts, audit)
        after = "crash"
    else:
        return {"after": "first_start", "down_from": None, "release": __version__}
    return {"after": after, "down_from": iso_ms(down_from), "release": __version__}


def _stop_after(audit, starts):
    """The time (µs) of the latest ``box_stop`` when it came after the latest ``box_start``
    (``starts``: that entry, or none), else None."""
    stops = audit.entries(limit=1, action="box_stop")
    if stops and (not starts or stops[0].seq > starts[0].seq):
        return stops[0].wall_us
    return None


def _last_sign(data_dir, starts, audit=None):
    """The last run's last sign of life (µs), else at least that run's start (``starts``:
    the latest ``box_start`` entry, or none; dated again by a ``clock_set`` after it, in
    ``audit``), or None."""
    started = started_us(starts[0]) if starts else None
    if starts and audit is not None:
        fixes = audit.entries(limit=1, action="clock_set")
        if fixes and fixes[0].seq > starts[0].seq:
            # The clock set (or set again) in that run: its start by the clock its last
            # sign of life was dated by, not the one before the step.
            started = iso_to_us(fixes[0].details.get("started")) or started
    signs = [t for t in (last_alive_us(data_dir), started) if t]
    return max(signs) if signs else None


def started_us(entry):
    """When the run of the ``box_start`` audit entry ``entry`` started (µs): its
    ``started``, or the entry's own time (written at the start by the first release
    that kept the record)."""
    started = entry.details.get("started")
    return iso_to_us(started) if started else entry.wall_us
