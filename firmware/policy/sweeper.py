"""The retention sweep: deletes recordings past their period, by crypto-shredding.

:class:`RetentionSweeper` runs on the box's clock every
``sweep_interval_min`` (on the simulated clock, in simulated time). A sweep

1. asks the :class:`ClockGuard` whether wall time can be trusted: while the
   clock is not known to be synchronised, or after it jumped, nothing is
   deleted and an alarm says why;
2. selects the recordings past their period (:meth:`RetentionSweeper.preview`
   — the same selection, so a preview's count is what the sweep deletes);
3. destroys each one's row in ``recordings`` — the only copy of its wrapped
   data key — with ``secure_delete`` on, in the same transaction as its
   deletion-log entry (:mod:`firmware.policy.deletions`), then removes the
   file durably. The database's write-ahead log is then checkpointed and
   truncated, so the overwritten pages replace the old ones in ``calls.db``
   and no copy of the key is left in either file;
4. deletes the closed requests of the register of data subjects' requests
   past ``requests_closed_days`` (:mod:`firmware.rightsretention`), each
   audited first without the person;
5. with ``call_details_days`` set, removes the caller's details (number,
   caller-ID name; in web.db the notes' texts and corrected names) of the calls
   that ended more than that many days ago, not on legal hold and with no
   recording kept, in batches of :data:`DETAILS_BATCH` (the call log is locked a
   batch at a time, not for the whole of a million calls), then checkpoints
   ``calls.db`` once (:meth:`RetentionSweeper.expire_details`);
6. writes a ``retention_sweep`` audit entry with the counts and the deletion
   log's chain head.

A crash after the commit and before the file is removed leaves a file with
no row, named in the deletion log: :meth:`RecordingStore.recover` finishes
shredding it (its header, with its copy of the wrapped key, overwritten) and
removes it at the next start.

Every minute it also checks the disk: ``disk_warning`` and ``disk_critical``
alarms (:class:`firmware.bus.Alarm`, line 0: the whole box) follow the
configured thresholds, and with ``overwrite_oldest_when_full`` a critically
full disk gets the oldest recordings past their category's minimum period
(and not on hold) deleted until it is below the critical threshold.

Limits: flash keeps old blocks, so a copy of a wrapped key can outlive the
database page that held it on the card itself (wear levelling); the key is
still wrapped to the box's key, so this matters only to someone who also has
a password or the recovery key. Deleting a recording does not delete the
call's row in the call log; an erasure on request may also erase the caller's
details from it (:meth:`RetentionSweeper.erase_details`, done by the call log), and
``call_details_days`` removes them once past that period (step 5).
"""

import datetime
import json
import logging
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field

from ..bus import Alarm
from ..errors import LinekeeperError
from ..storage.audit import with_address
from . import deletions
from .clockguard import ClockGuard
from .retention import DAY_US

# In the data directory: the starts of the calls whose details a sweep is removing, until
# the reports that may name them are withdrawn (RetentionSweeper.withdraw_pending).
PENDING_EXPIRY = "details-expiry-pending.json"

log = logging.getLogger(__name__)

DISK_CHECK_US = 60_000_000
BATCH = 50  # recordings destroyed per transaction
DETAILS_BATCH = 500  # calls whose caller's details are removed per transaction
OVERWRITE_RULE = "overwrite-when-full"
# The alarms the sweeper raises and clears.
ALARM_KINDS = ("retention_failed", "clock_unsynchronised", "clock_jump", "disk_warning", "disk_critical")


@dataclass(frozen=True)
class Candidate:
    """A recording a rule would delete now. ``started_at``: the call's start (µs, UTC)."""

    recording_id: str
    call_id: int
    line: int
    direction: str
    categories: tuple
    started_at: int
    duration_s: float
    bytes: int
    sha256: str
    rule: str
    days: int


@dataclass
class SweepResult:
    """What one sweep did: ``refused`` is None or the clock guard's reason;
    ``requests_deleted`` / ``requests_held`` the closed requests deleted from the
    register, and those past their period kept for a legal hold."""

    deleted: int = 0
    held: int = 0
    requests_deleted: int = 0
    requests_held: int = 0
    # Why the register could not be swept this time (nothing of it deleted), or None.
    requests_error: str = None
    by_rule: dict = field(default_factory=dict)
    refused: str = None
    message: str = ""
    # Stopped part way by a power failure (RetentionSweeper.stop): ``deleted`` and
    # ``by_rule`` count what it destroyed; the rest waits for the next sweep.
    interrupted: bool = False
    # Calls whose caller's details were removed past call_details_days (None: not set),
    # and the notes' texts and corrected names emptied with them in web.db.
    details_removed: int = None
    notes_removed: int = 0
    names_removed: int = 0
    # Why the details could not all be removed this time (the rest waits), or None.
    details_error: str = None


class ErasureRefused(LinekeeperError, ValueError):
    """A recording cannot be erased (its message says why; nothing was deleted)."""


class RetentionSweeper:
    """Deletes what :class:`~firmware.policy.retention.RetentionSettings` say is past its time.

    :param store: the box's :class:`~firmware.recording.store.RecordingStore`, opened
        for writing: the recordings, their calls' tags and holds, the deletion log
        and the clock guard's state are all read and written through it
    :param clock: the box's clock; every time decision uses it
    :param audit: the :class:`~firmware.storage.audit.AuditLog`
    :param settings: a :class:`RetentionSettings` (replace with :meth:`update_settings`)
    :param bus: where :class:`~firmware.bus.Alarm` s go (None: none published)
    :param disk_usage: ``f(path) -> (total, used, free)`` bytes, as :func:`shutil.disk_usage`
    :param threaded: run scheduled sweeps on a thread of their own (the real
        clock's timer thread also runs the line supervisor's timers)
    :param call_log: the box's :class:`~firmware.calls.calllog.CallLog`, which erases
        a caller's details on request (None: details cannot be erased here)
    :param requests: the register's :class:`~firmware.rightsretention.RegisterRetention`
        (None: the sweep leaves the register alone)
    """

    def __init__(
        self,
        store,
        clock,
        audit,
        settings,
        *,
        bus=None,
        disk_usage=shutil.disk_usage,
        threaded=False,
        call_log=None,
        requests=None,
    ):
        self.store = store
        self.call_log = call_log
        self.requests = requests
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.bus = bus
        self._disk_usage = disk_usage
        self._threaded = threaded
        self._lock = threading.RLock()  # one sweep at a time
        self._failing_jobs = set()  # names of the scheduled jobs whose last run failed
        store.prepare_retention()
        self.guard = ClockGuard(clock, store, lambda: self.settings)
        self._alarms = {}
        self._timers = []
        self._running = None
        # Set by stop(interrupt=True) at a power failure: the sweep under way stops after
        # the file it is shredding (see stop).
        self._interrupt = threading.Event()
        self.last_disk_percent = None
        # ``f(candidates)`` after recordings are destroyed (the archive queues their deletion).
        self.on_destroyed = []
        # ``f(call_id, started_us, actor, address)`` after a caller's details are erased (the
        # scheduled reports waiting in the mail queue that may name them are withdrawn).
        self.on_details_erased = []
        # ``f(started_us)`` after a sweep removed callers' details past ``call_details_days``
        # (``started_us``: the set of those calls' starts): the waiting reports are withdrawn
        # as after an erasure, since they too may name them.
        self.on_details_expired = []

    # ------------------------------------------------------------ reports to withdraw
    def _pending_path(self):
        """The note of the calls' starts whose details a sweep is removing, kept until the
        hooks after the removal (the waiting reports withdrawn) have run."""
        return os.path.join(self.store.data_dir, PENDING_EXPIRY)

    def _expired_hooks(self, started):
        for hook in self.on_details_expired:
            try:
                hook(started)
            except Exception:  # the details are gone whatever happens; the cause is in the log
                log.exception("a hook after the removal of callers' details failed")

    def withdraw_pending(self):
        """Run the hooks after a removal of callers' details that a power cut (or a crash)
        stopped between a batch's commit and them: the reports waiting in the mail queue
        that may name those callers are withdrawn now, before they go. Nothing without a
        note."""
        if getattr(self.store, "data_dir", None) is None:
            return
        path = self._pending_path()
        try:
            with open(path) as f:
                started = {int(t) for t in json.load(f)}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError) as exc:
            log.error("the note of callers' details removed by a sweep cut short is unreadable: %s", exc)
            return
        log.warning(
            "a sweep that removed callers' details of %d call(s) stopped before the reports "
            "that may name them were withdrawn: withdrawing them now",
            len(started),
        )
        self._expired_hooks(started)
        try:
            os.remove(path)
        except OSError as exc:
            log.error("the note of callers' details removed could not be removed: %s", exc)

    def _note_pending(self, started):
        from ..storage import fsutil

        fsutil.atomic_write(self._pending_path(), json.dumps(sorted(started)).encode())

    # ------------------------------------------------------------ scheduling
    def start(self):
        """Sweep every ``sweep_interval_min`` and check the disk every minute, on the clock;
        the disk at once too (a card full at start is said at start, and an alarm the
        last run left open clears if room was made meanwhile). Reports a sweep cut short
        left to withdraw are withdrawn first (:meth:`withdraw_pending`)."""
        self._interrupt.clear()
        self.withdraw_pending()
        self._schedule_sweep()
        self._schedule_disk()
        self._in_background(self.check_disk, "disk check")

    def stop(self, interrupt=False):
        """No more sweeps or disk checks; wait for one under way.

        ``interrupt`` (a power failure: the hold-up time is for the call log's seal) stops
        a sweep under way after the file it is shredding, not after every recording it
        chose (a sweep after a retention period was shortened may shred hundreds, each
        file synced). What it left is on the card all the same: their rows are gone and
        the deletion log names them (one transaction a batch), and the next start's
        recovery shreds every file the deletion log names (:meth:`RecordingStore.recover`);
        the recordings of later batches were not touched and the next sweep takes them."""
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        if interrupt:
            self._interrupt.set()
        running = self._running
        if running is not None:
            running.join()

    def close(self):
        """Stop; the store stays open (its owner closes it)."""
        self.stop()

    def update_settings(self, settings):
        """Use ``settings`` from now on (a new sweep interval applies from the next sweep)."""
        self.settings = settings

    def _schedule_sweep(self):
        delay_us = self.settings.sweep_interval_min * 60_000_000
        self._timers = [t for t in self._timers if not t.cancelled]
        self._timers.append(self.clock.call_later(delay_us, self._scheduled_sweep))

    def _schedule_disk(self):
        self._timers.append(self.clock.call_later(DISK_CHECK_US, self._scheduled_disk))

    def _scheduled_sweep(self):
        self._schedule_sweep()
        self._in_background(self.sweep, "sweep")

    def _scheduled_disk(self):
        self._schedule_disk()
        self._in_background(self.check_disk, "disk check")

    def _in_background(self, job, name):
        if not self._threaded:
            self._guarded(job, name)
            return
        if self._running is not None and self._running.is_alive():
            return  # the previous sweep is still going: this one is not needed

        def run():
            try:
                self._guarded(job, name)
            except Exception:  # a sweep that fails must not stop the next ones
                log.exception("retention job failed")

        self._running = threading.Thread(target=run, name="linekeeper-retention", daemon=True)
        self._running.start()

    def _guarded(self, job, name):
        """Run a scheduled job; a card that refuses it raises the ``retention_failed``
        alarm (cleared once every job that failed has succeeded again: the minute's
        disk check working says nothing of the sweep) and the box runs on."""
        try:
            job()
        except (sqlite3.Error, OSError) as exc:
            from ..datadir import storage_error

            self._failing_jobs.add(name)
            self._alarm(
                "retention_failed",
                True,
                str(storage_error(exc, "retention could not run (it tries again at its next time)")),
            )
            return
        self._failing_jobs.discard(name)
        if not self._failing_jobs:
            self._alarm("retention_failed", False, "retention runs again")

    # ------------------------------------------------------------ selection
    def preview(self, now_us=None, settings=None):
        """The recordings a sweep at wall time ``now_us`` would delete, oldest first.

        ``now_us`` defaults to the clock's wall time, ``settings`` to the
        current ones (pass others to see what a change would do). Held calls
        are never in the list. The clock guard is not consulted: a preview
        deletes nothing.
        """
        return self._select(
            self.clock.wall_us() if now_us is None else now_us, settings or self.settings, held=False
        )

    def overdue(self, grace_us, now_us=None, wait_s=5.0):
        """The recordings that were already due for deletion ``grace_us`` before ``now_us``
        (the clock's wall time by default) and are still here, oldest first; None when a
        sweep has held the sweeper for ``wait_s`` seconds (busy, or stuck).

        The retention-backlog alarm's question (:class:`firmware.alarmchecks.RetentionBacklog`):
        it must not hang on a sweep that hangs.
        """
        if not self._lock.acquire(timeout=wait_s):
            return None
        try:
            now_us = self.clock.wall_us() if now_us is None else now_us
            return self.preview(now_us - grace_us)
        finally:
            self._lock.release()

    def held(self, now_us=None, settings=None):
        """The recordings a sweep would delete but for their legal hold."""
        return self._select(
            self.clock.wall_us() if now_us is None else now_us, settings or self.settings, held=True
        )

    def _select(self, now_us, settings, held):
        shortest = settings.shortest_days()
        if shortest is None:
            return []
        decided = {}

        def due(r):
            decision = settings.decide(r.line, r.direction, r.categories)
            if decision.days is not None and r.started_at <= now_us - decision.days * DAY_US:
                decided[r.recording_id] = decision
                return True
            return False

        # Judged as read: only the due ones are kept in memory.
        rows = self.store.finished_recordings(now_us - shortest * DAY_US, held=held, keep=due)
        return [_candidate(r, decided[r.recording_id].rule, decided[r.recording_id].days) for r in rows]

    @staticmethod
    def counts(candidates):
        """``{rule: number of recordings}`` of a preview."""
        by_rule = {}
        for c in candidates:
            by_rule[c.rule] = by_rule.get(c.rule, 0) + 1
        return by_rule

    # ------------------------------------------------------------ the sweep
    def sweep(self, actor="system", trigger="schedule"):
        """Delete every recording past its period now (by the clock); returns a :class:`SweepResult`.

        Refused (nothing deleted, an alarm raised) when the clock guard does
        not trust the wall time. Always audited as ``retention_sweep``.
        """
        with self._lock:
            result = SweepResult()
            problem = self.guard.check()
            self._alarm(
                "clock_unsynchronised",
                problem is not None and problem[0] == "unsynchronised",
                problem[1] if problem else "the clock is synchronised",
            )
            self._alarm(
                "clock_jump",
                problem is not None and problem[0] == "jump",
                problem[1] if problem else "the clock is trusted again",
            )
            if problem is not None:
                result.refused, result.message = problem
                log.warning("retention sweep refused: %s", problem[1])
            else:
                now_us = self.clock.wall_us()
                doomed = self.preview(now_us)
                result.held = len(self.held(now_us))
                gone = []
                result.deleted = self._destroy(doomed, "retention", now_us, gone)
                result.by_rule = self.counts(doomed)
                if self._interrupt.is_set():
                    result.interrupted, result.by_rule = True, self.counts(gone)
                else:  # (the register waits for the next sweep: the hold-up time is short)
                    self._expire_requests(actor, now_us, result)
                    self.expire_details(now_us, result)
                self.guard.passed(now_us)
            self._audit(actor, trigger, result, register=self.requests is not None and not result.refused)
            return result

    def _expire_requests(self, actor, now_us, result):
        """The register's closed requests past their period deleted, each audited first
        (``data_request``, ``event`` ``deleted``: its number, kind, state and dates, never
        the person)."""
        if self.requests is None:
            return
        days = self.settings.requests_closed_days

        def audit(entry):
            details = {"event": "deleted", "rule": "register retention", "kept_days": days}
            details.update((k, entry[k]) for k in ("kind", "status", "received", "closed_on"))
            self.audit.append(actor, "data_request", "request:%d" % entry["id"], details, int(now_us))

        try:
            deleted, kept = self.requests.expire(now_us, days, audit)
        except (sqlite3.Error, OSError) as exc:
            # The recordings' part is done: their sweep is audited all the same (with the
            # deletion log's head) and the clock guard noted; the register waits for the next.
            log.error("the register of requests could not be swept (nothing of it deleted): %s", exc)
            result.requests_error = str(exc)
            return
        result.requests_deleted, result.requests_held = len(deleted), len(kept)

    def expire_details(self, now_us, result):
        """Remove the caller's details of the calls that ended ``call_details_days`` before
        ``now_us`` (wall µs), in batches (:meth:`CallLog.details_due
        <firmware.calls.calllog.CallLog.details_due>`): not those on legal hold, nor those
        whose recording is still kept (its header holds the same details: they go once it
        goes, so no detail outlives both periods). The notes' texts and corrected names of
        web.db follow. Counted in ``result``; the card refusing stops it there (the rest
        waits for the next sweep, ``details_error`` says why). Nothing when the setting is
        unset or the sweeper has no call log."""
        days = self.settings.call_details_days
        if days is None or self.call_log is None:
            return
        from ..calls.detailsexpiry import expire_web_details

        ended_by_us = now_us - days * DAY_US
        result.details_removed = 0
        after = (0, 0)
        started = set()
        self.withdraw_pending()
        noted = set()
        try:
            while not self._interrupt.is_set():
                due = self.call_log.details_due(ended_by_us, after, DETAILS_BATCH)
                if not due:
                    break
                after = due[-1]
                # Noted (synced) before the batch commits: a cut between the commit and the
                # hooks below leaves the note, and the next start withdraws the reports.
                noted |= set(self.call_log.started_of([call_id for _, call_id in due]))
                self._note_pending(noted)
                done = self.call_log.expire_details([call_id for _, call_id in due], ended_by_us)
                result.details_removed += len(done)
                started |= set(self.call_log.started_of(done))
                if len(due) == DETAILS_BATCH:  # a long one says how far it is
                    log.info(
                        "retention: callers' details of %d call(s) removed so far", result.details_removed
                    )
            if not self._interrupt.is_set():  # (at a power failure: the next start checkpoints)
                result.notes_removed, result.names_removed = expire_web_details(
                    self.store.data_dir, self.call_log.expired_of
                )
        except (sqlite3.Error, OSError) as exc:
            log.error(
                "callers' details could not all be removed (the rest waits for the next sweep): %s", exc
            )
            result.details_error = str(exc)
        # The batches committed before a refusal (or a power failure) removed what they
        # removed: the reports that may name those callers are withdrawn all the same.
        if started:
            self._expired_hooks(started)
        if noted:
            try:
                os.remove(self._pending_path())
            except OSError as exc:
                log.error("the note of callers' details removed could not be removed: %s", exc)
        # The batches committed before a refusal are checkpointed all the same.
        if result.details_removed and not self._interrupt.is_set():
            try:
                self.call_log.finish_expiry()
            except sqlite3.Error as exc:
                log.error("calls.db could not be checkpointed after removing callers' details: %s", exc)
                result.details_error = result.details_error or str(exc)
        if result.details_removed or result.notes_removed or result.names_removed:
            log.info(
                "retention: callers' details of %d call(s) removed after %d days (%d note(s), %d name(s))",
                result.details_removed,
                days,
                result.notes_removed,
                result.names_removed,
            )

    def erase(self, call_id, actor, reason, details=False, address=None):
        """Delete call ``call_id``'s recordings now, at a person's request (the right to
        erasure): destroyed as retention destroys them (key, row, then the file
        shredded; an archived copy follows), each with its deletion-log entry (reason
        ``erasure``). Audited first as ``delete`` on the call, with who and why (sealed
        on a box with the MCU: the reason may name a person), so that nothing is erased
        that the trail does not show; then, as every sweep is, as ``retention_sweep``
        (trigger ``erasure``) with the deletion log's head, which ``verify`` reads on any
        machine. The clock guard is not asked: nothing here depends on the date.
        ``details``: the caller's details go too, once the recordings are gone (as
        :meth:`erase_details`; the ``delete`` entry says ``details``). ``address``: the
        web client's, which its ``delete`` entries carry as the web UI's own entries do
        (not the ``retention_sweep``, never sealed); None when not asked from a page.
        Returns how many recordings were erased.

        :raises ErasureRefused: the call is on legal hold, is still being recorded,
            or has no recording (nothing is deleted); or, with ``details``, the
            recordings were erased but the details could not be (the message says so)
        """
        reason = str(reason).strip()
        if not reason:
            raise ErasureRefused("say why the recording is erased (it goes in the audit trail)")
        with self._lock:
            found = self.store.finished_recordings(None, held=False, call_id=call_id)
            if not found:
                raise ErasureRefused(self._why_not_erasable(call_id))
            now_us = self.clock.wall_us()
            self.audit.append(
                actor,
                "delete",
                "call:%d" % call_id,
                with_address(
                    {
                        "request": deletions.ERASURE,
                        "reason": reason,
                        "recordings": sorted(r.recording_id for r in found),
                        **({"details": True} if details else {}),
                    },
                    address,
                ),
                int(now_us),
            )
            destroyed = self._destroy_batch(
                [_candidate(r, deletions.ERASURE_RULE, None) for r in found], deletions.ERASURE, now_us
            )
            if not destroyed:  # a hold placed, or the recording deleted, since it was asked
                why = self._why_not_erasable(call_id)
                self.audit.append(
                    actor,
                    "delete",
                    "call:%d" % call_id,
                    with_address({"request": deletions.ERASURE, "refused": why}, address),
                    int(self.clock.wall_us()),
                )
                raise ErasureRefused(why)
            self._checkpoint()
            result = SweepResult(deleted=len(destroyed), by_rule={deletions.ERASURE_RULE: len(destroyed)})
            # (Not with the address: the sweep's entry is bookkeeping, never sealed.)
            self._audit(actor, deletions.ERASURE, result)
            log.info("call %d: %d recording(s) erased at %s's request", call_id, len(destroyed), actor)
            if details:
                self._erase_details(call_id, actor, "the recording was erased, but ", "delete", address)
            return len(destroyed)

    def erase_details(self, call_id, actor, reason, address=None):
        """Erase call ``call_id``'s caller's details from the call log now, at a person's
        request (the right to erasure): its number and name replaced by the erased
        marker (:meth:`~firmware.calls.calllog.CallLog.erase_details`); its times, line,
        direction and policy outcome stay for counts and reports. For a call with no
        recording (never made, or already deleted): a recording's header holds the
        details too, so a call with one is erased with it (:meth:`erase`, ``details``).
        Audited first as ``erase_details`` on the call (who and why, sealed on a box
        with the MCU; never the number); a refusal after that adds an ``erase_details``
        entry with ``refused``. ``address``: the web client's, in both (as :meth:`erase`).

        :raises ErasureRefused: the call has a recording (or one on legal hold, or
            still being recorded), is still going on, was erased already, or is not in
            the call log (nothing changes)
        """
        reason = str(reason).strip()
        if not reason:
            raise ErasureRefused("say why the caller's details are erased (it goes in the audit trail)")
        if self.call_log is None:
            raise ErasureRefused("this box's call log cannot erase a caller's details")
        with self._lock:
            if self.store.finished_recordings(None, held=True, call_id=call_id):
                raise ErasureRefused(self._why_not_erasable(call_id))
            row = self.store.for_call(call_id)
            if row is not None and row["state"] == "recording":
                raise ErasureRefused(self._why_not_erasable(call_id))
            if row is not None:
                raise ErasureRefused(
                    "call %d still has its recording, whose header holds the caller's details too: "
                    "erase the recording with them" % call_id
                )
            self.audit.append(
                actor,
                "erase_details",
                "call:%d" % call_id,
                with_address({"request": deletions.ERASURE, "reason": reason}, address),
                int(self.clock.wall_us()),
            )
            self._erase_details(call_id, actor, "", "erase_details", address)

    def _erase_details(self, call_id, actor, done, action, address=None):
        """The call log erases the details; a refusal is audited (as ``action``) and raised
        (``done``: what was done before, as the message starts)."""
        try:
            started_us = self.call_log.erase_details(call_id)
        except (LinekeeperError, sqlite3.Error) as exc:  # DetailsNotErasable: why, in words
            why = str(exc) if isinstance(exc, LinekeeperError) else "the card refused the change (%s)" % exc
            self.audit.append(
                actor,
                action,
                "call:%d" % call_id,
                with_address({"request": deletions.ERASURE, "details": True, "refused": why}, address),
                int(self.clock.wall_us()),
            )
            raise ErasureRefused(done + why) from exc
        log.info("call %d: the caller's details erased at %s's request", call_id, actor)
        for hook in self.on_details_erased:
            try:
                hook(call_id, started_us, actor, address)
            except Exception:  # the details are erased whatever happens; the cause is in the log
                log.exception("call %d: a hook after the erasure of the caller's details failed", call_id)

    def _why_not_erasable(self, call_id):
        if self.store.finished_recordings(None, held=True, call_id=call_id):
            return "call %d is on legal hold: release the hold before erasing its recording" % call_id
        row = self.store.for_call(call_id)
        if row is not None and row["state"] == "recording":
            return "call %d is still being recorded: erase its recording once the call has ended" % call_id
        return "call %d has no recording to erase" % call_id

    def _destroy(self, candidates, reason, now_us, gone=None):
        """Shred ``candidates`` (in batches); returns how many were destroyed (each added to
        the list ``gone`` if given)."""
        done = 0
        for i in range(0, len(candidates), BATCH):
            if self._interrupt.is_set():
                log.warning(
                    "retention stopped at a power failure: %d recording(s) left to the next sweep",
                    len(candidates) - i,
                )
                return done  # the next start or sweep checkpoints
            destroyed = self._destroy_batch(candidates[i : i + BATCH], reason, now_us)
            done += len(destroyed)
            if gone is not None:
                gone += destroyed
        if done and not self._interrupt.is_set():
            self._checkpoint()
        return done

    def _destroy_batch(self, batch, reason, now_us):
        # A hold placed since the selection still wins; a row already gone is skipped.
        gone = self.store.destroy_rows(
            [
                {
                    "deleted_at": now_us,
                    "reason": reason,
                    "rule": c.rule,
                    "recording_id": c.recording_id,
                    "call_id": c.call_id,
                    "line": c.line,
                    "direction": c.direction,
                    "categories": list(c.categories),
                    "call_date": _date(c.started_at),
                    "duration_s": c.duration_s,
                    "bytes": c.bytes,
                    "file_sha256": c.sha256,
                }
                for c in batch
            ]
        )
        ids = {entry["recording_id"] for entry in gone}
        destroyed = [c for c in batch if c.recording_id in ids]
        for n, c in enumerate(destroyed):
            if self._interrupt.is_set():
                # Their rows are gone and the deletion log names them: the next start
                # shreds their files (stop).
                log.warning(
                    "retention stopped at a power failure: %d file(s) left to the next start",
                    len(destroyed) - n,
                )
                break
            # The file's header holds a copy of the wrapped key: overwritten, then removed.
            self.store.shred_file(c.recording_id)
        for hook in self.on_destroyed:
            try:
                hook(destroyed)
            except Exception:  # the box's own deletion is done and logged whatever happens
                log.exception("a deletion hook failed for %d recording(s)", len(destroyed))
        return destroyed

    def _checkpoint(self):
        """Move the shredded pages into calls.db and empty the write-ahead log."""
        self.store.checkpoint()

    def _audit(self, actor, trigger, result, register=False):
        details = {
            "trigger": trigger,
            "deleted": result.deleted,
            "held": result.held,
            "by_rule": result.by_rule,
        }
        if result.refused:
            details.update(refused=result.refused, reason=result.message)
        if result.interrupted:
            details.update(stopped="power failure")
        if register and not result.interrupted:
            details.update(requests_deleted=result.requests_deleted, requests_held=result.requests_held)
            if result.requests_error is not None:
                details.update(requests_error=result.requests_error)
        if result.details_removed is not None:  # how many, never whose
            details.update(
                details_removed=result.details_removed,
                details_days=self.settings.call_details_days,
                notes_removed=result.notes_removed,
                names_removed=result.names_removed,
            )
            if result.details_error is not None:
                details.update(details_error=result.details_error)
        seq, digest = self.store.deletions.head()
        details[deletions.ANCHOR] = {"seq": seq, "hash": digest}
        self.audit.append(actor, "retention_sweep", None, details, int(self.clock.wall_us()))

    # ------------------------------------------------------------ the disk
    def check_disk(self):
        """Raise or clear the disk alarms; overwrite the oldest when so set. Returns percent used."""
        with self._lock:
            percent = self._disk_percent()
            settings = self.settings
            if percent >= settings.disk_critical_percent and settings.overwrite_oldest_when_full:
                percent = self._overwrite(percent)
            self.last_disk_percent = percent
            self._alarm(
                "disk_warning",
                percent >= settings.disk_warning_percent,
                "the card is %.0f%% full (warning at %d%%)" % (percent, settings.disk_warning_percent),
            )
            self._alarm(
                "disk_critical",
                percent >= settings.disk_critical_percent,
                "the card is %.0f%% full (critical at %d%%): recording stops when it "
                "is full" % (percent, settings.disk_critical_percent),
            )
            return percent

    def _disk_percent(self):
        total, used, free = self._disk_usage(self.store.data_dir)
        return 100.0 * used / (used + free) if used + free else 0.0

    def overwritable(self, now_us=None):
        """Recordings the overwrite mode may delete: past their minimum period, not held, oldest first."""
        now_us = self.clock.wall_us() if now_us is None else now_us
        floors = {}

        def past_floor(r):
            floor_days = self.settings.floor(r.categories)[0]
            if r.started_at <= now_us - floor_days * DAY_US:
                floors[r.recording_id] = floor_days
                return True
            return False

        rows = self.store.finished_recordings(now_us, held=False, keep=past_floor)
        return [_candidate(r, OVERWRITE_RULE, floors[r.recording_id]) for r in rows]

    def _overwrite(self, percent):
        problem = self.guard.check()
        if problem is not None:
            log.warning("disk critically full, but overwriting is refused: %s", problem[1])
            return percent
        now_us = self.clock.wall_us()
        critical = self.settings.disk_critical_percent
        result = SweepResult()
        for c in self.overwritable(now_us):
            if percent < critical:
                break
            if self._destroy_batch([c], "overwrite", now_us):
                result.deleted += 1
                percent = self._disk_percent()
        if result.deleted:
            self._checkpoint()
            result.by_rule = {OVERWRITE_RULE: result.deleted}
            self._audit("system", "overwrite", result)
        return percent

    # ------------------------------------------------------------ alarms
    def restore_alarms(self, kinds):
        """Alarms of the sweeper's ``kinds`` still open in the history from the last run:
        on again here, so that the first check that finds their cause gone clears
        them (a card no longer full, a clock synchronised again). Call before :meth:`start`."""
        for kind in set(kinds) & set(ALARM_KINDS):
            self._alarms[kind] = True
        if "retention_failed" in kinds:
            # Only a sweep that works clears it (the disk check at start working says
            # nothing of the sweep): the last run's sweep is taken to have failed.
            self._failing_jobs.add("sweep")

    def _alarm(self, kind, active, message):
        if self._alarms.get(kind, False) == active:
            return
        self._alarms[kind] = active
        if active:
            log.warning("alarm %s: %s", kind, message)
        if self.bus is not None:
            self.bus.publish(
                Alarm(line=0, t_us=self.clock.now_us(), kind=kind, active=active, message=message)
            )

    def active_alarms(self):
        return sorted(k for k, v in self._alarms.items() if v)

    # ------------------------------------------------------------ the deletion log
    def confirm_clock(self, actor, address=None):
        """An installer says the wall time is right: automatic deletion may resume (audited;
        ``address``: the web client's, which the entry carries as the web UI's own do)."""
        with self._lock:
            now_us = self.clock.wall_us()
            # Audited before deletion resumes: a cut between leaves the entry and the
            # suspension, and the installer confirms again.
            self.audit.append(
                actor,
                "config_change",
                "retention.clock",
                with_address(
                    {"confirmed_wall_us": now_us, "suspended_because": self.guard.suspended}, address
                ),
                int(now_us),
            )
            self.guard.confirm(now_us)
            self._alarm("clock_jump", False, "the clock was confirmed by %s" % actor)

    def deletion_log(self, limit=100, offset=0, after_seq=None, since_us=None, until_us=None):
        """Deletion-log entries, newest first; with ``after_seq``, those after that entry,
        oldest first (a reader of the whole log goes on from where it stopped), only those
        deleted from ``since_us`` to before ``until_us`` (µs; None: no bound)."""
        return self.store.deletions.entries(
            limit, offset, after_seq=after_seq, since_us=since_us, until_us=until_us
        )

    def deletions_of_call(self, call_id):
        """Deletion-log entries of ``call_id``'s recordings (why its recording is gone)."""
        return self.store.deletions.for_call(call_id)

    def deletion_count(self, since_us=None, until_us=None):
        """How many entries the deletion log holds (deleted in that time, as :meth:`deletion_log`)."""
        return self.store.deletions.count(since_us, until_us)

    def verify(self):
        """Problems with the deletion log (its chain and its anchor in the audit trail)."""
        return self.store.deletions.verify(self.audit)

    def verify_after(self, checked):
        """Problems with the deletion-log entries after ``checked`` (``(seq, hash)`` of the
        last entry an earlier check reached), and ``(seq, hash)`` of the last one checked
        now; see :func:`firmware.policy.deletions.verify_after`."""
        return self.store.deletions.verify_after(checked, self.audit)


def _candidate(r, rule, days):
    """The :class:`Candidate` of the store's finished recording ``r`` under ``rule``."""
    return Candidate(
        r.recording_id,
        r.call_id,
        r.line,
        r.direction,
        r.categories,
        r.started_at,
        r.duration_s,
        r.bytes,
        r.sha256,
        rule,
        days,
    )


def _date(wall_us):
    return datetime.datetime.fromtimestamp(wall_us // 1_000_000, datetime.UTC).date().isoformat()
