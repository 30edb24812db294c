"""One field update, start to finish, and the report it leaves.

Steps (each noted in ``UPDATE_DIR/progress.json`` as it starts):

1. ``copy``: the bundle to internal storage (a USB stick may be pulled at any time);
2. ``install``: ``rauc install`` — RAUC checks the signature and ``compatible``,
   our install-check handler the CPU architecture, the security version and the
   size, then RAUC writes the inactive slot and makes it primary. Should
   ``rauc install`` not finish in time, only its client is stopped: ``rauc
   service`` may go on writing, so ``still_installing`` asks RAUC (its D-Bus
   ``Operation``, ``LastError`` and ``Progress``) until it is idle, at most
   ``install_wait_s``, and the outcome is what RAUC did (installed: the update
   goes on; failed), ``installing`` when it is still at work, or failed when it
   gave no answer for a whole ``install_wait_s``, or said it was at work without
   its progress moving for that long (it stopped making progress);
3. ``wait_idle``: until every line is idle (never during a call), at most
   ``max_wait_idle_s``; when that runs out the running slot is made primary again
   and nothing is switched;
4. ``switch``: mount the new slot and point ``current`` at it;
5. ``restart``: the services (and ``rauc service``) start from the new slot;
6. ``health``: recorder ready with every line supervised, data writable, web UI
   answering, within ``health_timeout_s``;
7. ``mark_good`` — or ``rollback``: mark the new slot bad, the old one active,
   switch back, restart and check the old slot's health.

The result is a readable report (``linekeeper-update-report.txt`` in the
stick's folder and ``UPDATE_DIR/last-report.txt``) and an audit entry.
"""

import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import time

from firmware.storage.fsutil import atomic_write, fsync_dir

from ..alarminbox import post_update_result
from ..control import ControlError, RecorderUnavailable
from ..errors import UpdateError
from ..localtime import duration_text
from ..migrations import drop_backups
from ..uptime import clear_update_restart, drop_stale_update_restart, note_update_restart
from . import health
from .rauc import INSTALL_WAIT_S, InstallTimedOut, NotInstalled, TimedOut
from .version import release_key

log = logging.getLogger(__name__)

REPORT_NAME = "linekeeper-update-report.txt"
# Mirrored into ``status_dir`` (the installer's page reads them there).
PROGRESS_NAME = "progress.json"
RESULT_NAME = "last-result.json"
LOCK_NAME = "update.lock"  # held by the one update running
# In ``update_dir``: what the wait saw of an install it failed as stuck (its progress, since
# when): the next update's start says it is stuck, not still installing, until RAUC is idle.
STUCK_NAME = "rauc-stuck.json"
# In ``status_dir`` (the page's inbox): the installer's go-ahead for one bundle that is
# not newer than the running release (firmware.update.inbox.UpdateInbox.confirm_downgrade).
CONFIRM_NAME = "confirm-downgrade.json"
# In ``update_dir`` while ``rauc install`` runs a confirmed bundle: what our install-check
# handler lets through (the release, from the running one, and the images' SHA-256).
CONFIRMED_INSTALL_NAME = "confirmed-install.json"
# Steps before the switch: the box still runs its release, and an update cut there stays on it.
NOT_SWITCHED_STEPS = ("copy", "install", "still_installing", "wait_idle")
# The step after the new release passed its health check: an update cut there keeps it.
MARKED_GOOD_STEP = "mark_good"
COPY_CHUNK = 256 << 10
# Room left on the box's storage after the copy (RAUC's own files, the reports, the logs).
COPY_MARGIN = 16 << 20


@dataclasses.dataclass
class UpdateSettings:
    """Where things are and how long to wait (seconds)."""

    data_dir: str
    update_dir: str = "/var/lib/linekeeper-update"
    restart_cmd: tuple = ("systemctl", "restart", "rauc", "linekeeper-recorder", "linekeeper-web")
    web_url: str = "http://127.0.0.1:80/"
    max_wait_idle_s: float = 4 * 3600.0  # a long call; then try again later
    settle_s: float = 2.0  # idle this long before switching
    recorder_gone_s: float = 30.0  # no recorder this long: nothing is recording
    health_timeout_s: float = 120.0
    poll_s: float = 0.5
    # After ``rauc install`` timed out (Rauc.timeout_s): how long to wait for RAUC to be idle.
    install_wait_s: float = INSTALL_WAIT_S
    install_poll_s: float = 5.0
    status_dir: str = None  # where the progress and the result are mirrored for the web UI


@dataclasses.dataclass
class UpdateResult:
    # installed | refused | not_switched | rolled_back | failed, or installing: RAUC was
    # still writing the new slot when the update had to stop waiting (nothing switched)
    outcome: str
    bundle: str
    message: str
    version: str = None
    previous_version: str = None
    slot: str = None
    waited_idle_s: float = 0.0
    steps: list = dataclasses.field(default_factory=list)
    retry: bool = False  # stopped by its service (a stick pulled): the same bundle may come again
    # Not the bundle's fault (storage full, another update running, a line busy for the
    # whole wait): the same bundle is taken again later (firmware.update.watch.RETRY_LATER_S).
    later: bool = False
    # A bundle whose release is not newer than the running one: ``{"from", "to", "kind"}``
    # (kind ``older``, ``same`` or ``unknown``: the running release's version cannot be
    # read) and ``confirmed``: installed on the installer's go-ahead, else refused.
    downgrade: dict = None

    @property
    def ok(self):
        return self.outcome == "installed"


class Updater:
    """Carries out updates with ``rauc`` (:class:`.rauc.Rauc`), ``slots``
    (:class:`.slots.Slots`), the recorder's control ``client`` and ``audit``
    (an :class:`firmware.storage.audit.AuditLog`, or None)."""

    def __init__(
        self,
        settings,
        rauc,
        slots,
        client,
        audit=None,
        *,
        run=subprocess.run,
        monotonic=time.monotonic,
        sleep=time.sleep,
        wall_us=None,
        on_step=None,
        on_copy=None,
        stopped=None,
    ):
        self.s = settings
        self.rauc = rauc
        self.slots = slots
        self.client = client
        self.audit = audit
        self._run = run
        self._monotonic = monotonic
        self._sleep = sleep
        self._wall_us = wall_us or (lambda: time.time_ns() // 1000)
        # Called with each step's name once it is noted (the kill-matrix tests kill here).
        self._on_step = on_step or (lambda step: None)
        # Called with (bytes copied, bundle bytes) after each chunk of the copy.
        self._on_copy = on_copy or (lambda copied, total: None)
        # True once the update's service was asked to stop (its stick pulled): the
        # copy and the wait for idle lines stop there, and nothing is switched. RAUC's
        # install and the switch onwards run to their end.
        self.stopped = stopped or (lambda: False)
        self._confirmation = None  # the page's confirmation the running update took, if any
        self._confirmed_install = None  # what the install-check is told it may let through
        # What the wait for RAUC saw (wall µs), for the note an update that ended
        # ``installing`` leaves: the page goes on from there (firmware.update.inbox).
        self._rauc_seen = {}

    # -- the steps ---------------------------------------------------------

    def _step(self, result, name, **details):
        result.steps.append(name)
        self._note_progress(result, name, **details)
        self._on_step(name)

    def _note_progress(self, result, name, **details):
        progress = dict(
            step=name,
            bundle=result.bundle,
            at_us=self._wall_us(),
            previous_version=result.previous_version,
            version=result.version,
            **{"from": self._from, "to": result.slot},
            **details,
        )
        for folder in self._status_dirs():
            atomic_write(os.path.join(folder, PROGRESS_NAME), json.dumps(progress).encode(), mode=0o644)

    def _copy(self, bundle):
        """Copy ``bundle`` into UPDATE_DIR/incoming.raucb; its path there.

        :raises UpdateError: the bundle unreadable or changed under us (a stick
            pulled), or no room on the box's storage; nothing is left behind
        """
        src = _open_regular(bundle)
        try:
            size = os.fstat(src.fileno()).st_size
            free = shutil.disk_usage(self.s.update_dir).free
            if size + COPY_MARGIN > free:
                raise _Again(
                    "the box's storage is too full to take the bundle (%d MB needed with "
                    "its margin, %d MB free)" % ((size + COPY_MARGIN) >> 20, free >> 20)
                )
            target = os.path.join(self.s.update_dir, "incoming.raucb")
            part = target + ".part"
            try:
                self._copy_file(src, bundle, part, size)
            except UpdateError:
                _remove(part)
                raise
        finally:
            src.close()
        os.replace(part, target)
        fsync_dir(self.s.update_dir)
        return target

    def _copy_file(self, src, bundle, part, size):
        """The copy itself, with each side's failure told apart (stick or box)."""
        try:
            with open(part, "wb") as dst:
                copied = self._copy_chunks(src, dst, bundle, size)
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as exc:
            raise _Again(
                "writing the bundle to the box's storage failed (%s)" % (exc.strerror or exc)
            ) from None
        if copied != size:
            raise _StickGone(
                "the bundle changed while it was copied (%d of %d bytes): was the stick pulled?"
                % (copied, size)
            )

    def _copy_chunks(self, src, dst, bundle, size):
        """Bytes copied from ``src`` to ``dst``; a read error is the stick's (UpdateError).
        Never more than one chunk past ``size``: a file that grows is not followed."""
        copied = 0
        while copied <= size:
            try:
                chunk = src.read(min(COPY_CHUNK, size + 1 - copied))
            except OSError as exc:
                raise _StickGone(
                    "reading the bundle from %s failed after %d of %d bytes (%s): was the "
                    "stick pulled?" % (bundle, copied, size, exc.strerror or exc)
                ) from None
            if not chunk:
                return copied
            if self.stopped():
                raise UpdateError(
                    "the update was stopped while the bundle was copied (%d of %d bytes): "
                    "was the stick pulled? Insert it again to install" % (copied, size)
                )
            dst.write(chunk)
            copied += len(chunk)
            self._on_copy(min(copied, size), size)
        return copied

    def _busy_lines(self):
        """Lines with a call or not idle; None when the recorder does not answer."""
        try:
            snapshot = self.client.call("snapshot")
        except (RecorderUnavailable, ControlError):
            return None
        return [
            e["line"]
            for e in snapshot["lines"]
            if e.get("call") is not None or e.get("state") not in ("idle", "fault")
        ]

    def wait_idle(self):
        """Wait until every line has been idle for ``settle_s``; True, or False on timeout
        (None when the update was stopped meanwhile)."""
        start = self._monotonic()
        idle_since = gone_since = None
        while True:
            if self.stopped():
                return None
            now = self._monotonic()
            busy = self._busy_lines()
            if busy is None:
                gone_since = gone_since if gone_since is not None else now
                idle_since = None
                if now - gone_since >= self.s.recorder_gone_s:
                    return True
            else:
                gone_since = None
                if busy:
                    idle_since = None
                else:
                    idle_since = idle_since if idle_since is not None else now
                    if now - idle_since >= self.s.settle_s:
                        return True
            if now - start >= self.s.max_wait_idle_s:
                return False
            self._sleep(self.s.poll_s)

    def _recorder_pid(self):
        try:
            return self.client.call("hello", protocol=1)["pid"]
        except (RecorderUnavailable, ControlError):
            return None

    def _restart(self, bootname, old_pid=None):
        env = dict(os.environ, LINEKEEPER_SLOT=bootname)
        # The recorder's clean stop is the update's, which its next start tells reports
        # (a reinstall keeps the release and the data's schema: nothing else says so).
        note_update_restart(self.s.data_dir, self._wall_us(), bootname, old_pid)
        done = self._run(list(self.s.restart_cmd), capture_output=True, text=True, env=env)
        if done.returncode != 0:
            clear_update_restart(self.s.data_dir)  # a recorder still running: its stop is not this
            return "the restart command failed: %s" % (done.stderr.strip() or done.returncode)
        return None

    def _start_slot(self, bootname, device, result=None):
        """Switch to ``bootname`` and restart; None when healthy, else what is wrong.

        With ``result``, the switch, restart and health steps are noted as they start.
        """
        step = (lambda name: self._step(result, name, slot=bootname)) if result else (lambda name: None)
        old_pid = self._recorder_pid()
        step("switch")
        try:
            self.slots.mount(bootname, device)
            self.slots.point_at(bootname)
        except UpdateError as exc:
            # A problem like a failed health check: the update rolls back (it left RAUC
            # booting the new slot, unchecked, at the next restart).
            return "the switch to slot %s failed: %s" % (bootname, exc)
        step("restart")
        problem = self._restart(bootname, old_pid)
        if problem:
            return problem
        step("health")
        self.client.close()
        return health.wait_healthy(
            self.client,
            self.s.data_dir,
            self.s.web_url,
            old_pid,
            self.s.health_timeout_s,
            self.s.poll_s,
            monotonic=self._monotonic,
            sleep=self._sleep,
        )

    # -- the whole update --------------------------------------------------

    def run(self, bundle, report_dir=None):
        """Update from ``bundle``; an :class:`UpdateResult` (also reported and audited).

        One update at a time: while another runs (a stick and an upload at once) this
        one is refused, and only its report is written (beside the bundle).
        """
        result = UpdateResult("failed", os.path.basename(bundle), "")
        self._from = None
        try:
            os.makedirs(self.s.update_dir, exist_ok=True)
            lock = _try_lock(os.path.join(self.s.update_dir, LOCK_NAME))
        except OSError as exc:
            # The box's storage refused before anything began (read-only, not a folder):
            # an outcome with its report on the stick, as below, not a crash with none.
            result.outcome, result.later = "refused", True
            result.message = (
                "the box's storage failed (%s: %s); nothing was changed: try again once it is mended"
                % (
                    exc.strerror or exc,
                    self.s.update_dir,
                )
            )
            if report_dir:
                _write_report(report_dir, format_report(result, self._wall_us()))
            return result
        if lock is None:
            result.outcome = "refused"
            result.later = True  # "try again when it has finished": taken again later
            result.message = "another update is running; nothing was changed: try again when it has finished"
            if report_dir:
                _write_report(report_dir, format_report(result, self._wall_us()))
            return result
        try:
            # The note of a confirmed install an update killed during its `rauc install` left
            # (no restart, so no recovery): the install-check would take it while this holds the lock.
            _remove(os.path.join(self.s.update_dir, CONFIRMED_INSTALL_NAME))
            busy = self._rauc_busy()
            if busy:
                # An install that outlived the last update's wait, or one found stuck: that
                # update's report, progress note and LEDs stand; this one only says why it
                # did nothing.
                result.outcome = "refused"
                result.later = True
                result.message = busy
                if report_dir:
                    _write_report(report_dir, format_report(result, self._wall_us()))
                return result
            self._tell("running", result)
            self._installed = False
            self._confirmation = None
            try:
                self._update(bundle, result)
            except UpdateError as exc:
                result.message = str(exc)
            except OSError as exc:
                # The box's own storage failed under the update (full, read-only): said like
                # any other outcome, never a crash with the LEDs on "leave the stick in".
                if not self._installed:
                    result.outcome, result.later = "refused", True
                    result.message = "the box's storage failed (%s); nothing was changed%s" % (
                        exc.strerror or exc,
                        ": free some space and try again" if exc.errno == errno.ENOSPC else "",
                    )
                else:
                    result.message = "the box's storage failed during the update (%s)" % (exc.strerror or exc)
            finally:
                _remove(os.path.join(self.s.update_dir, "incoming.raucb"))
            self._finish(result, report_dir)
        finally:
            os.close(lock)
        return result

    def _update(self, bundle, result):
        try:
            before = self.rauc.status()
        except TimedOut as exc:
            result.outcome, result.later = "refused", True  # RAUC hangs: not the bundle's fault
            raise UpdateError(
                "RAUC does not answer (%s); nothing was changed: restart the box, then try again" % exc
            ) from None
        except NotInstalled as exc:
            # No rauc command: a restart does not help (it said to restart, for ever); the
            # bundle is taken again later, so it installs once RAUC is there.
            result.outcome, result.later = "refused", True
            raise UpdateError(
                "%s; nothing was changed. A restart does not help: install RAUC as "
                "scripts/install-box does (apt-get install rauc rauc-service, with its "
                "/etc/rauc/system.conf), or call the supplier; the update is taken again then" % exc
            ) from None
        except UpdateError as exc:
            # Its service not running (gone from the bus, say): not the bundle's fault either,
            # so not counted as done, and a stick put back takes it again.
            result.outcome, result.later = "refused", True
            raise UpdateError(
                "RAUC cannot say which slot runs (%s); nothing was changed: restart the box (RAUC "
                "with it), then try again" % exc
            ) from None
        running = self._from = self.slots.current()
        # A slot written at the factory (not by RAUC) has no RAUC status: its own note says.
        result.previous_version = _slot_version(before, running) or self._slot_info(running).get("version")
        self._step(result, "copy")
        try:
            local = self._copy(bundle)
        except UpdateError as exc:
            result.outcome = "refused"
            result.retry = self.stopped() or isinstance(exc, _StickGone)
            result.later = not result.retry and isinstance(exc, _Again)
            raise UpdateError("%s; nothing was changed" % exc) from None
        self._confirmed_install = None
        self._check_release(local, result)
        self._step(result, "install")
        why_path = os.path.join(self.s.update_dir, "install-check.txt")
        _remove(why_path)
        go_ahead = os.path.join(self.s.update_dir, CONFIRMED_INSTALL_NAME)
        try:
            if self._confirmed_install is not None:
                # For the install-check, which refuses a release that is not newer otherwise.
                atomic_write(go_ahead, json.dumps(self._confirmed_install).encode(), mode=0o600)
            try:
                self.rauc.install(local)
            except InstallTimedOut as exc:
                self._installed = True  # RAUC may have begun to write: not "nothing changed"
                self._await_rauc(result, exc, before, running, why_path)
            self._installed = True
        except _Outcome:
            raise
        except UpdateError as exc:
            result.outcome = "refused"
            raise UpdateError(
                "%s; the box was not changed: it runs slot %s as before"
                % (_read(why_path) or _explain(exc, local), running)
            ) from None
        finally:
            _remove(why_path)
            _remove(go_ahead)
        after = self.rauc.status()
        new_name = after["boot_primary"]
        new = after["slots"][new_name]
        result.slot = new["bootname"]
        result.version = new.get("slot_status", {}).get("bundle", {}).get("version")
        old_name = self.rauc.slot_name(running, after)
        self._step(result, "wait_idle")
        t0 = self._monotonic()
        idle = self.wait_idle()
        result.waited_idle_s = round(self._monotonic() - t0, 1)
        if idle is None:
            self.rauc.mark("active", old_name)
            result.outcome = "not_switched"
            result.retry = True
            raise UpdateError(
                "the update was stopped while it waited for the lines to be idle (was the "
                "stick pulled?): it is installed in slot %s but the box stays on slot %s; "
                "insert the stick again to install it" % (result.slot, running)
            )
        if not idle:
            self.rauc.mark("active", old_name)
            result.outcome = "not_switched"
            result.later = True  # "run the update again later": taken again later
            raise UpdateError(
                "a line stayed busy for %d s: the update is installed in slot %s "
                "but the box stays on slot %s; run the update again later"
                % (self.s.max_wait_idle_s, result.slot, running)
            )
        problem = self._start_slot(result.slot, new["device"], result)
        if problem is None:
            self._step(result, "mark_good", slot=result.slot)
            self.rauc.mark("good", new_name)
            self._note_security_version(after, new_name)
            drop_backups(self.s.data_dir)  # the new release keeps its migrated data
            result.outcome = "installed"
            result.message = "version %s runs on slot %s and passed its health check" % (
                result.version,
                result.slot,
            )
            return
        self._step(result, "rollback", slot=running, problem=problem)
        self.rauc.mark("bad", new_name)
        self.rauc.mark("active", old_name)
        old_problem = self._start_slot(running, after["slots"][old_name]["device"])
        result.outcome = "rolled_back"
        raise UpdateError(
            "version %s failed its health check (%s) and was rolled back to "
            "slot %s (version %s)%s"
            % (
                result.version,
                problem,
                running,
                result.previous_version,
                "" if old_problem is None else "; the old slot is NOT healthy either: %s" % old_problem,
            )
        )

    def _check_release(self, local, result):
        """Go on only with a bundle of a newer release than the running one, or one the
        installer confirmed on the page (:data:`CONFIRM_NAME`, for this very file and
        these two versions): going back, or installing the same release again, is never
        done by a stick left in or a wrong file uploaded.

        :raises _Outcome: refused: RAUC cannot read the bundle's manifest (``rauc info``
            failed or hung), its version is not a release version, or it is not newer
            and not confirmed (``result.downgrade`` says which)
        """
        try:
            info = self.rauc.info(local)
            version = info.get("version")
        except UpdateError as exc:
            # Its release unknown, whether it goes back is unknown too: refused (before, it
            # went on to `rauc install`, which installs any release it can verify).
            result.outcome = "refused"
            result.later = isinstance(exc, TimedOut)  # RAUC hung: not the bundle's fault
            raise _Outcome(
                "RAUC could not read the bundle's release: %s. Nothing was changed%s"
                % (
                    _explain(_trimmed(str(exc)), local),
                    ": try again once RAUC answers" if result.later else "",
                )
            ) from None
        result.version = version
        try:
            new = release_key(version)
        except UpdateError as exc:
            result.outcome = "refused"
            raise _Outcome(
                "the bundle's version cannot be compared with the running one: %s. Nothing was "
                "changed: build the bundle again with scripts/make-bundle and a version like 1.4.0" % exc
            ) from None
        running = result.previous_version
        try:
            have = release_key(running)
        except UpdateError:
            kind = "unknown"
        else:
            if new > have:
                return
            kind = "older" if new < have else "same"
        result.downgrade = {"from": running, "to": version, "kind": kind, "confirmed": False}
        taken = self._take_confirmation(result, local)
        if taken:
            result.downgrade["confirmed"] = True
            self._confirmed_install = {
                "bundle": result.bundle,
                "sha256": taken["sha256"],
                "from": running,
                "to": version,
                "images": _images(info),
            }
            log.warning("installing %s over %s (%s), as the installer confirmed", version, running, kind)
            return
        result.outcome = "refused"
        raise _Outcome(
            "%s. It is not installed without a confirmation; nothing was changed. To install "
            "it on purpose, upload the bundle on the Updates page and confirm there"
            % _not_newer(result.downgrade)
        )

    def _take_confirmation(self, result, local):
        """What the installer confirmed on the page (``bundle``, ``sha256``, ``from``, ``to``)
        when it is this file (its SHA-256) going from and to these versions, else None.
        One for anything else is used up at once; this file's when the
        update is over (:meth:`_finish`), not while it is only put off (a line busy for the
        whole wait, the stick pulled): its run again is the update confirmed."""
        if not self.s.status_dir:
            return None
        path = os.path.join(self.s.status_dir, CONFIRM_NAME)
        try:
            with open(path) as f:
                confirmed = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            confirmed = None
        wanted = {
            "bundle": result.bundle,
            "sha256": _sha256(local),
            "from": result.downgrade["from"],
            "to": result.downgrade["to"],
        }
        if not isinstance(confirmed, dict) or any(confirmed.get(k) != v for k, v in wanted.items()):
            _remove(path)
            log.warning("a confirmation for another bundle or versions was ignored: %r", confirmed)
            return None
        self._confirmation = path
        return wanted

    def _rauc_busy(self):
        """Why no update can start while RAUC is at work already, or None: it is idle, or it
        cannot be asked (``rauc install`` then says what is wrong). An install that outlived
        the last update's wait is still installing: not to cut the power, and to try again
        once it has finished. One whose progress stands where an update last saw it move
        (the note of one it failed as stuck, :data:`STUCK_NAME`, or of one that ended
        ``installing``) a whole ``install_wait_s`` since is stuck: it never finishes, and
        only a restart of the box (RAUC with it) ends it, as RAUC's D-Bus API has no method
        to cancel an install (``de.pengutronix.rauc.Installer``: Install, InstallBundle,
        Info, InspectBundle, Mark, GetSlotStatus, GetPrimary, GetArtifactStatus)."""
        stuck_path = os.path.join(self.s.update_dir, STUCK_NAME)
        try:
            operation, _, said = self.rauc.installer()
        except UpdateError as exc:
            log.warning("%s", exc)
            return None
        if operation == "idle":
            _remove(stuck_path)  # ended (the box restarted): a note of it says nothing now
            return None
        for note in (read_json(stuck_path), read_json(os.path.join(self.s.update_dir, PROGRESS_NAME))):
            since_s = _stood_still_s(note, said, self._wall_us())
            if since_s is not None:
                where = "%d %%: %s" % (said[0], _trimmed(said[1]) or "no step named")
                return (
                    "RAUC's earlier install is stuck: it has said it is installing without moving on "
                    "for %s (still at %s). Nothing was changed. It never finishes, and RAUC cannot be "
                    "told to stop it: restart the box (RAUC with it) before another update; RAUC "
                    "never boots a slot it did not finish writing, so the box comes back on slot %s"
                    % (duration_text(since_s), where, self.slots.current())
                )
        return (
            "RAUC is still installing an earlier bundle: do not cut the power. Nothing "
            "was changed: try again once it has finished"
        )

    def _await_rauc(self, result, timed_out, before, running, why_path):
        """``rauc install`` timed out: wait for ``rauc service`` to be idle, at most
        ``install_wait_s`` (or until the update is stopped), and for as long again after
        its last answer when it cannot be asked then. Returns when RAUC installed the
        bundle (the update goes on).

        :raises _Outcome: RAUC failed (refused: the running slot is untouched); gave no
            answer for a whole ``install_wait_s``, whatever each question met (it ran out
            of time, failed at once, or some of each) and whether or not it answered
            before (failed: it stopped making progress, and the page and the recorder
            could not ask it either); said it was at work while its ``Progress`` stood
            still for a whole ``install_wait_s`` (failed: it is stuck, and would never be
            found idle); or is still at work, or cannot be asked when the
            update is stopped (installing: nothing can be said yet, and nothing is
            switched or marked)
        """
        self._step(result, "still_installing")
        wait_s = self.s.install_wait_s
        deadline = self._monotonic() + wait_s
        # Since RAUC's last answer (the wait's start before its first): when, and what each
        # question met since.
        answered, last_answer, failures = False, self._monotonic(), []
        # RAUC's progress (percentage, message, depth) as it last said it, and since when
        # (the wait's start before its first answer).
        progress, moved = None, last_answer
        seen = self._rauc_seen = {
            "install_wait_s": wait_s,
            "rauc_answered_us": None,
            "rauc_moved_us": self._wall_us(),
            "rauc_progress": None,
        }
        while True:
            try:
                operation, last_error, said = self.rauc.installer()
                doing, answered = "it is still installing", True
                last_answer, failures = self._monotonic(), []
                seen["rauc_answered_us"] = self._wall_us()
                if said != progress:
                    progress, moved = said, last_answer
                    seen.update(rauc_moved_us=seen["rauc_answered_us"], rauc_progress=said)
            except UpdateError as exc:
                operation, doing = None, "it cannot be asked what it is doing (%s)" % exc
                failures.append(exc)
            if operation == "idle":
                break
            if operation is None and self._monotonic() - last_answer >= wait_s:
                # No answer for a whole wait: "still installing" would stand, as nothing
                # would find RAUC idle, until the page and the recorder gave up a wait later.
                # An install RAUC said it was at work on shortly before the wait ran out is
                # given that long again, not failed at once.
                _rauc_broke(result, _no_answer(timed_out, answered, failures, wait_s), running)
            if operation is not None and self._monotonic() - moved >= wait_s:
                # At work, it says, but its progress has not moved for a whole wait: stuck
                # (a slot write that hangs), which would never end either. A slow install
                # that keeps moving is not failed. Noted: the next update is told it is stuck
                # (until RAUC is found idle, after a restart), not "still installing".
                _note_stuck(os.path.join(self.s.update_dir, STUCK_NAME), seen)
                _rauc_broke(result, _stalled(timed_out, progress, wait_s), running)
            if self.stopped() or (operation is not None and self._monotonic() >= deadline):
                result.outcome = "installing"
                result.later = True  # its outcome is unknown: the bundle is not done with
                raise _Outcome(
                    "%s, and %s: RAUC may still be writing the new slot. Do not cut the power "
                    "or restart the box while the LEDs blink slowly. Nothing was switched: the "
                    "box runs slot %s. Once RAUC has finished (`linekeeper update --status`), "
                    "insert the stick again or upload the bundle again to finish the update"
                    % (timed_out, doing, running)
                )
            self._sleep(self.s.install_poll_s)
        if last_error:
            result.outcome = "refused"
            raise _Outcome(
                "%s; RAUC then failed: %s; the box was not changed: it runs slot %s as before"
                % (timed_out, _read(why_path) or _explain(last_error), running)
            )
        # RAUC makes the slot it wrote primary, and never writes the running one.
        if self.rauc.status()["boot_primary"] == self._slot_name(running, before):
            result.outcome = "refused"
            raise _Outcome(
                "%s; RAUC is idle now and did not install it; the box was not changed: it "
                "runs slot %s as before" % (timed_out, running)
            )

    def _slot_name(self, bootname, status):
        try:
            return self.rauc.slot_name(bootname, status)
        except UpdateError:
            return None

    def recover(self, report_dir=None):
        """Finish or undo an update that was cut short (kill, power cut); None if none was.

        Before the switch the box stays on its slot (made primary again); once the
        switch has begun and the new slot was not yet found healthy, the box goes back
        to the old slot; at ``mark_good`` the new slot had passed and is kept.
        """
        try:
            with open(os.path.join(self.s.update_dir, "progress.json")) as f:
                progress = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:
            progress = {"step": "unknown", "bundle": "?"}
        # (The install-check's note of a confirmed bundle too: it was for that update only.)
        for name in ("incoming.raucb", "incoming.raucb.part", CONFIRMED_INSTALL_NAME):
            _remove(os.path.join(self.s.update_dir, name))
        if self.client is not None:
            # Cut between its note of the restart and the restart: the recorder it named
            # still runs, and its next stop, whoever's, is not this update's.
            drop_stale_update_restart(self.s.data_dir, self._recorder_pid())
        self._from = old = progress.get("from") or self.slots.current()
        new = progress.get("to")
        step = progress.get("step")
        result = UpdateResult(
            "failed",
            progress.get("bundle", "?"),
            "",
            slot=new,
            version=progress.get("version"),
            previous_version=progress.get("previous_version"),
            steps=["recover after %s" % step],
        )
        try:
            status = self.rauc.status()
            old_name = self.rauc.slot_name(old, status)
            if step == MARKED_GOOD_STEP and new:
                new_name = self.rauc.slot_name(new, status)
                self.rauc.mark("good", new_name)
                self._note_security_version(status, new_name)
                drop_backups(self.s.data_dir)
                result.outcome = "installed"
                result.message = (
                    "the update was interrupted after its health check passed; slot %s is kept" % new
                )
            elif step in NOT_SWITCHED_STEPS:
                self.rauc.mark("active", old_name)
                result.outcome = "not_switched"
                result.message = (
                    "the update was interrupted (at %s) before the switch; the box "
                    "stays on slot %s" % (step, old)
                )
            else:
                if new and new != old:
                    self.rauc.mark("bad", self.rauc.slot_name(new, status))
                self.rauc.mark("active", old_name)
                problem = self._start_slot(old, status["slots"][old_name]["device"])
                result.outcome = "rolled_back"
                result.message = (
                    "the update was interrupted (at %s) before the new slot was "
                    "confirmed; the box went back to slot %s%s"
                    % (step, old, "" if problem is None else ", which is NOT healthy: %s" % problem)
                )
        except UpdateError as exc:
            result.message = "recovering an interrupted update failed: %s" % exc
        self._finish(result, report_dir)
        return result

    def _slot_info(self, bootname):
        """The slot's ``linekeeper-slot.json`` (version, security version), or {}."""
        try:
            with open(os.path.join(self.slots.mount_point(bootname), "linekeeper-slot.json")) as f:
                info = json.load(f)
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _note_security_version(self, status, slot_name):
        try:
            security = int(self._slot_info(status["slots"][slot_name]["bootname"])["security_version"])
        except (ValueError, KeyError, TypeError):
            return
        atomic_write(os.path.join(self.s.update_dir, "security-version"), b"%d\n" % security, mode=0o644)

    def _status_dirs(self):
        return [self.s.update_dir] + ([self.s.status_dir] if self.s.status_dir else [])

    def _tell(self, state, result):
        """Tell the recorder the update's state (its LEDs and alarm, see
        :mod:`.signals`); True if it answered (a recorder that does not is not told)."""
        if self.client is None:
            return False
        try:
            self.client.call(
                "update_state",
                state=state,
                message=result.message,
                version=result.version,
                previous_version=result.previous_version,
                # How long the LEDs' watch of an install that ended "installing" waits for
                # RAUC to answer or move on: this update's own wait, not the default.
                install_wait_s=self.s.install_wait_s,
            )
        except (RecorderUnavailable, ControlError):
            return False
        return True

    def _finish(self, result, report_dir):
        # The entry first: a cut after it leaves the progress note, and --recover then
        # finishes again with an entry of its own (before, a cut between the note's
        # removal and the entry left the update's outcome unaudited for good).
        if self._confirmation is not None and not (result.later or result.retry):
            _remove(self._confirmation)  # the confirmed update is over, whatever its outcome
        self._confirmation = None
        refused = None
        if self.audit is not None:
            try:
                self._audit_result(result)
            except Exception as exc:  # the report still goes out; the error after it
                refused = exc
        # Then the progress note: once it is gone, --recover leaves the box alone. Kept
        # while RAUC may still be writing: the page goes on saying not to cut the power
        # and takes no upload, and a restart meanwhile is recovered (the box stays on its
        # slot, made primary again).
        # ``ended_us`` says no update runs any more: once RAUC is idle the note is stale, and
        # the page takes an upload again (firmware.update.inbox), as the next update does.
        # With it, when RAUC last answered and its progress last moved: the page takes an
        # upload again, too, once it gave no answer, or no progress, for a whole wait since.
        if result.outcome != "installing":
            for folder in self._status_dirs():
                _remove(os.path.join(folder, PROGRESS_NAME))
        else:
            self._note_progress(result, "still_installing", ended_us=self._wall_us(), **self._rauc_seen)
        text = format_report(result, self._wall_us())
        # Kept on the box for the page; a full card must not stop the stick's report or
        # the recorder's alarm below.
        try:
            atomic_write(os.path.join(self.s.update_dir, "last-report.txt"), text.encode(), mode=0o644)
            for folder in self._status_dirs():
                atomic_write(
                    os.path.join(folder, RESULT_NAME),
                    json.dumps(dataclasses.asdict(result)).encode(),
                    mode=0o644,
                )
        except OSError as exc:
            log.error("cannot keep the update's report on the box: %s", exc)
        if report_dir:
            _write_report(report_dir, text)
        if self.s.status_dir and self.s.status_dir != report_dir:
            _write_report(self.s.status_dir, text)  # the page shows it beside the result
        told = self._tell(result.outcome, result)
        if not told:
            # The recorder raised the alarm if it heard; if it is down or restarting,
            # a note waits for it (one alarm either way, never two).
            try:
                post_update_result(self.s.data_dir, result, self._wall_us())
            except OSError as exc:
                log.error("cannot leave the update's outcome for the recorder: %s", exc)
        if refused is not None:
            raise refused

    def _audit_result(self, result):
        """The update's outcome in the audit trail, by ``update``."""
        self.audit.append(
            "update",
            "update",
            result.bundle,
            {
                "outcome": result.outcome,
                "message": result.message,
                "version": result.version,
                "previous_version": result.previous_version,
                "slot": result.slot,
                "steps": result.steps,
                "waited_idle_s": result.waited_idle_s,
                "downgrade": result.downgrade,
            },
            self._wall_us(),
        )


# What RAUC's refusals mean, for the technician who reads the report.
_EXPLAINED = (
    # A plain bundle's last 8 bytes give its signature's length; none is 0.
    ("Signature size is 0", "the bundle is not signed"),
    ("unable to get local issuer", "the bundle is not signed by a key this box trusts"),
    ("signature verification failed", "the bundle was damaged or changed after it was signed"),
    ("Invalid bundle format", "the bundle is damaged or incomplete (truncated?)"),
    ("Compatible mismatch", "the bundle is for another board or HAT"),
)


def _explain(exc, bundle=None):
    text = str(exc)
    if "Signature size is 0" in text and bundle is not None and cut_short(bundle):
        # A bundle cut inside its image can end in zeros too: not "unsigned".
        return "the bundle is damaged or incomplete (truncated?) (%s)" % text
    for needle, meaning in _EXPLAINED:
        if needle in text:
            return "%s (%s)" % (meaning, text)
    return text


def _trimmed(text, most=240):
    """RAUC's words, at most ``most`` characters of them, for a report line."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1].rstrip() + "\u2026"


def cut_short(bundle):
    """Whether the file ``bundle`` is shorter than the squashfs image it starts with
    (the superblock's ``bytes_used``, a little-endian u64 at byte 40): a copy cut off
    before its end. False when it cannot tell (not a squashfs, unreadable)."""
    try:
        with open(bundle, "rb") as f:
            head = f.read(48)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(head) < 48 or head[:4] != b"hsqs":
        return False
    return size < int.from_bytes(head[40:48], "little")


def _not_newer(downgrade):
    """What a bundle that is not newer than the running release is, in words."""
    if downgrade["kind"] == "older":
        return "the bundle holds release %s, older than the running release (%s \u2192 %s)" % (
            downgrade["to"],
            downgrade["from"],
            downgrade["to"],
        )
    if downgrade["kind"] == "same":
        return "the bundle holds release %s, the one running now (a reinstall)" % downgrade["to"]
    return "the bundle holds release %s, and the running release's version (%r) cannot be read" % (
        downgrade["to"],
        downgrade["from"],
    )


def _images(info):
    """``{filename: sha256}`` of the images ``rauc info`` lists (its ``images``: one
    ``{slot class: {"filename", "checksum"...}}`` each), as the install-check reads
    them from the manifest."""
    images = {}
    for entry in info.get("images") or []:
        for image in (entry or {}).values() if isinstance(entry, dict) else ():
            if isinstance(image, dict):
                images[image.get("filename") or ""] = image.get("checksum") or ""
    return images


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(COPY_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_report(report_dir, text):
    try:
        atomic_write(os.path.join(report_dir, REPORT_NAME), text.encode(), mode=0o644)
    except OSError:
        pass  # the stick is gone: the report stays in UPDATE_DIR


def _try_lock(path):
    """An exclusive lock on ``path`` (its descriptor), or None while another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class _Outcome(UpdateError):
    """An update's end whose ``result.outcome`` is set already, its message the report's."""


def _rauc_broke(result, what, running):
    """End an install RAUC stopped answering (``what`` happened) as ``failed``: the LEDs
    flash, the alarm is raised and the page takes an upload, rather than "still
    installing", which no RAUC going idle would end (the page and the recorder give up
    on it only a wait later).

    :raises _Outcome: always
    """
    result.outcome = "failed"
    result.later = True  # not the bundle's fault: taken again once RAUC works
    raise _Outcome(
        "%s. Nothing was switched: the box runs slot %s, and RAUC never boots a slot it did "
        "not finish writing. Restart the box (RAUC with it), then insert the stick again or "
        "upload the bundle again to install it" % (what, running)
    )


def _no_answer(timed_out, answered, failures, wait_s):
    """What happened to an install RAUC gave no answer about for ``wait_s`` (``failures``:
    what each question since its last answer met, or since the wait began when it never
    answered), for :func:`_rauc_broke`: it hangs (every question ran out of time), or it
    does not answer properly (it failed at once, or some of each: the last of each kind
    said)."""
    hangs = all(isinstance(exc, TimedOut) for exc in failures)
    if hangs:
        since = "has not answered since" if not answered else "stopped answering"
        return "%s, and RAUC %s (%s, for %d s): it hangs" % (timed_out, since, failures[-1], wait_s)
    last = {isinstance(exc, TimedOut): (i, exc) for i, exc in enumerate(failures)}  # the last of each kind
    said = "; ".join(str(exc) for _, exc in sorted(last.values(), key=lambda seen: seen[0]))
    since = "has not answered properly since" if not answered else "stopped answering properly"
    return "%s, and RAUC %s (%s, for %d s)" % (timed_out, since, said, wait_s)


def _stalled(timed_out, progress, wait_s):
    """What happened to an install RAUC said it was at work on, its ``progress``
    (percentage, message, depth) the same for ``wait_s``, for :func:`_rauc_broke`."""
    percentage, message, _ = progress
    return "%s, and RAUC's install has not moved on since (still at %d %%: %s, for %d s): it is stuck" % (
        timed_out,
        percentage,
        _trimmed(message) or "no step named",
        wait_s,
    )


def _note_stuck(path, seen):
    """Keep what the wait saw of an install it fails as stuck (``seen``: its progress, when it
    last moved, the wait): read by the next update's start (:meth:`Updater._rauc_busy`). A
    note that cannot be written leaves that start saying "still installing", as before."""
    try:
        atomic_write(path, json.dumps(seen).encode(), mode=0o644)
    except OSError as exc:
        log.error("cannot note that RAUC's install is stuck: %s", exc)


def _stood_still_s(note, said, now_us):
    """How long (s) RAUC's install has stood where ``note`` (:func:`_note_stuck`'s, or the
    progress note of an update that ended ``installing``) last saw it move, now that it says
    ``said`` (its progress): None unless it is the same and has stood a whole install wait."""
    if not isinstance(note, dict) or not isinstance(note.get("rauc_progress"), list):
        return None
    moved_us, wait_s = note.get("rauc_moved_us"), note.get("install_wait_s")
    if type(moved_us) not in (int, float) or type(wait_s) not in (int, float):
        return None
    if tuple(note["rauc_progress"]) != tuple(said) or now_us - moved_us < wait_s * 1e6:
        return None
    return (now_us - moved_us) / 1e6


def read_json(path):
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class _StickGone(UpdateError):
    """The bundle could not be read from where it was (the stick pulled, or going): the
    same bundle is taken again at once when it is offered again (``UpdateResult.retry``)."""


class _Again(UpdateError):
    """A refusal that is not the bundle's fault (the stick pulled, the box's storage full):
    the same bundle is tried again later (``UpdateResult.later``)."""


def _open_regular(bundle):
    """``bundle`` opened for reading, if it is a regular file itself: a link on a stick
    (to /dev/zero, to the card) would be copied until the box's storage is full.

    :raises UpdateError: not there, unreadable, a link or not a regular file
    """
    try:
        fd = os.open(bundle, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UpdateError(
                "the bundle %s is a link, not a file: copy the bundle itself" % bundle
            ) from None
        raise _StickGone("cannot read the bundle %s (%s)" % (bundle, exc.strerror)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UpdateError("the bundle %s is not a file (a device, a pipe or a folder)" % bundle)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read(path):
    """Our install-check handler's reason for refusing (RAUC passes on none)."""
    try:
        with open(path) as f:
            return "the box refused the bundle: " + f.read().strip()
    except FileNotFoundError:
        return None


def _slot_version(status, bootname):
    for slot in status["slots"].values():
        if slot.get("bootname") == bootname:
            return slot.get("slot_status", {}).get("bundle", {}).get("version")
    return None


def format_report(result, wall_us):
    """The report a technician reads on the stick."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall_us / 1e6))
    headline = {
        "installed": "UPDATE INSTALLED",
        "refused": "UPDATE REFUSED - the box runs its old version, unchanged",
        "not_switched": "UPDATE NOT SWITCHED - the box runs its old version",
        "rolled_back": "UPDATE FAILED - the box went back to its old version",
        "failed": "UPDATE FAILED",
        "installing": "UPDATE STILL INSTALLING - do not cut the power; the box runs its old version",
    }[result.outcome]
    return "\n".join(
        [
            "Linekeeper update report",
            "",
            headline,
            "",
            "When:             %s" % when,
            "Bundle:           %s" % result.bundle,
            "New version:      %s" % (result.version or "-"),
            "Previous version: %s" % (result.previous_version or "-"),
            "Slot:             %s" % (result.slot or "-"),
            "Waited for idle:  %.1f s (%s)"
            % (
                result.waited_idle_s,
                "every line idle before the switch" if "switch" in result.steps else "no switch",
            ),
            "Steps:            %s" % (", ".join(result.steps) or "-"),
            "",
            result.message,
            "",
        ]
    )
