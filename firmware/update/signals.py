"""What the recorder shows of a field update: the line LEDs' pattern and the alarm.

``linekeeper update`` runs as root beside the recorder and tells it each state
over the control socket (operation ``update_state``); the recorder publishes an
:class:`firmware.bus.UpdateState` on its bus. :class:`UpdateSignals` listens:

- while an update runs, every line LED blinks slowly (0.5 s on, 0.5 s off):
  leave the stick in, do not cut the power; so they go on after an update that
  ended while RAUC may still be writing the new slot (``installing``), until
  RAUC is found idle (asked every ``rauc_check_s``: the LEDs then go off, as the
  page then stops saying not to cut the power) or the next update's state. RAUC
  that cannot be asked for a whole ``install_wait_s`` since its last answer (or
  since the recorder was told ``installing``), or that says it is installing
  while its progress stands still that long, is not waited for any more: what
  it did is not known, and the LEDs show a failure, with its alarm, as the
  updater does when it finds the same;
- an update that did not install (refused, not switched, rolled back, failed)
  flashes every LED three times quickly, then a pause, repeated for
  ``failure_show_s`` (default an hour) or until the next update, and raises the
  alarm ``update_failed`` with the report's explanation (an event: the alarm log
  keeps it on the dashboard's banner until someone acknowledges it);
- an installed update turns the LEDs off;
- a recorder that runs another version than the last update installed (the box came
  back on its old slot: the restart into the new one did not happen, or fell back)
  raises ``update_not_running`` (:meth:`UpdateSignals.check_release`, at the box's
  start and at each update's outcome), a condition that clears once the box runs the
  version installed. Not while an update is under way (it restarts the recorder
  itself, and its outcome decides), nor after one that did not install.

The LEDs are the HAT's per-line LEDs (:meth:`board.base.Board.set_led`), which
nothing else drives; a board without LEDs ignores them. Where the HAT has its
supervisor MCU, its status LED shows the MCU's own ``updating`` and
``update_failed`` patterns too (:attr:`UpdateSignals.status_led`, a
:class:`board.mcu.link.McuLink`), and the pattern it showed before once the
update installed or its failure has been shown.
"""

import logging
import os
import threading
import time

from firmware.bus import Alarm, UpdateState
from firmware.errors import UpdateError
from firmware.update.flow import PROGRESS_NAME, RESULT_NAME, read_json
from firmware.update.rauc import INSTALL_WAIT_S, stood_still
from firmware.update.version import same_release

# (LED on?, milliseconds) frames, repeated.
PATTERNS_MS = {
    "running": ((True, 500), (False, 500)),
    "failed": ((True, 120), (False, 120), (True, 120), (False, 120), (True, 120), (False, 1000)),
}
ALARM_KIND = "update_failed"
NOT_RUNNING_KIND = "update_not_running"  # installed, but the box runs another version
# The MCU status LED's patterns (board.mcu.link.LED_PATTERNS) for each state.
STATUS_LED = {"running": "updating", "failed": "update_failed"}

log = logging.getLogger(__name__)


def pattern_for(state):
    """The frames for an update ``state``, or None for LEDs off."""
    if state in ("running", "installing"):
        return PATTERNS_MS["running"]
    if state == "installed":
        return None
    return PATTERNS_MS["failed"]


class UpdateSignals:
    """Drives ``board``'s line LEDs and raises the alarm from the ``bus``'s update states.

    :param now_us: the event clock (``clock.now_us``) for the alarm's ``t_us``
    :param monotonic: seconds, for how long a failure is shown
    :param rauc: asked (:meth:`firmware.update.rauc.Rauc.installer`) every
        ``rauc_check_s`` seconds while the state is ``installing``, until it is idle,
        or until it gave no answer, or no progress, for ``install_wait_s``
        (:data:`firmware.update.rauc.INSTALL_WAIT_S`, the updater's own wait by
        default); None: never asked, and the pattern lasts until the next update's state
    :param status_dir: the Updates page's inbox, where the updater keeps its progress
        and the last update's result (None: :meth:`check_release` looks at nothing)
    :param running_version: the release this recorder runs (``firmware.__version__``)
    """

    def __init__(
        self,
        board,
        now_us,
        *,
        failure_show_s=3600.0,
        monotonic=time.monotonic,
        rauc=None,
        rauc_check_s=30.0,
        install_wait_s=INSTALL_WAIT_S,
        status_dir=None,
        running_version=None,
    ):
        if running_version is None:
            from firmware import __version__ as running_version
        self.status_dir = status_dir
        self.running_version = running_version
        self.board = board
        self._now_us = now_us
        self.failure_show_s = failure_show_s
        self._monotonic = monotonic
        self._bus = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pattern = None
        self._until = None  # monotonic s when the pattern ends (None: while the state lasts)
        self._stopped = False
        self._thread = None
        self.led_on = False  # what the LEDs show now (for the tests and the status)
        # The HAT MCU's link (set_led, led), or None; set where the box has the MCU.
        self.status_led = None
        self._status_before = None  # the MCU LED's pattern before the update
        self.rauc = rauc
        self.rauc_check_s = rauc_check_s
        self.install_wait_s = install_wait_s
        self._state_seq = 0  # counts the states told: a RAUC check applies to its own only
        self._not_running = None  # update_not_running as last said (None: not yet)

    def attach(self, bus):
        self._bus = bus
        bus.subscribe(UpdateState, self._on_state)

    def _on_state(self, event, seq=None):
        """Show ``event``'s state; with ``seq``, only while the state told is still that
        one (False: a newer one came meanwhile, and nothing was done)."""
        pattern = pattern_for(event.state)
        with self._lock:
            if seq is not None and seq != self._state_seq:
                return False
            self._state_seq += 1
            self._pattern = pattern
            self._until = self._monotonic() + self.failure_show_s if event.failed else None
            if pattern is not None and self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._play, name="update-leds", daemon=True)
                self._thread.start()
            if event.state == "installing" and self.rauc is not None and not self._stopped:
                threading.Thread(
                    target=self._await_rauc,
                    args=(self._state_seq, event),
                    name="update-rauc-idle",
                    daemon=True,
                ).start()
            self._changed.notify_all()
        self._show_status(event)
        if event.failed and self._bus is not None:
            # A bundle refused before its version was read (not one, not signed) names none.
            what = (
                "the update to %s" % event.version
                if event.version
                else "an update whose version was not read"
            )
            message = "%s did not install (%s): %s" % (what, event.state.replace("_", " "), event.message)
            t_us = self._now_us()
            self._bus.publish(Alarm(line=0, t_us=t_us, kind=ALARM_KIND, active=True, message=message))
            # An event, not a condition: the alarm log keeps the occurrence until it is
            # acknowledged; the list of alarms that are on now does not keep it.
            self._bus.publish(Alarm(line=0, t_us=t_us, kind=ALARM_KIND, active=False))
        if event.state not in ("running", "installing"):
            self.check_release()
        return True

    def check_release(self):
        """Raise ``update_not_running`` while the last update installed a version this
        recorder does not run, else clear it. Nothing while an update is under way (its
        progress note is there): the recorder it restarts starts before its outcome."""
        if self.status_dir is None or self._bus is None:
            return
        if os.path.exists(os.path.join(self.status_dir, PROGRESS_NAME)):
            return
        last = read_json(os.path.join(self.status_dir, RESULT_NAME))
        installed = None
        if isinstance(last, dict) and last.get("outcome") == "installed":
            installed = last.get("version")
        elsewhere = isinstance(installed, str) and not same_release(installed, self.running_version)
        message = (
            "the update installed version %s on slot %s, but the box runs version %s: it did not "
            "start the new version, or went back to the old one"
            % (installed, last.get("slot") or "?", self.running_version)
            if elsewhere
            else ""
        )
        if elsewhere:
            log.error("%s", message)
        # Said when it changes; at the first check, a clear only after an install (the one
        # that could have raised it in an earlier run): a box never updated says nothing.
        if elsewhere == self._not_running or (self._not_running is None and installed is None):
            return
        self._not_running = elsewhere
        self._bus.publish(
            Alarm(line=0, t_us=self._now_us(), kind=NOT_RUNNING_KIND, active=elsewhere, message=message)
        )

    def _await_rauc(self, seq, installing):
        """After ``installing``: ask RAUC until it is idle, then the LEDs go back to
        normal (off, the MCU's own pattern). Ends at the next state told or at stop, or
        once RAUC gave no answer, or said it was installing without its progress moving,
        for the install wait (counted from the state told: the updater's last answer was
        just before): the updater's own (``installing.install_wait_s``, its
        ``--install-wait-s``), else ``install_wait_s``. Then the update failed, as far as
        the box can tell."""
        wait_s = installing.install_wait_s or self.install_wait_s
        last_answer = moved = self._monotonic()
        progress = None
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._stopped or self._state_seq != seq, self.rauc_check_s)
                if self._stopped or self._state_seq != seq:
                    return
            try:
                operation, _, said = self.rauc.installer()
            except UpdateError as exc:  # not known to be done: the LEDs still say do not cut the power
                log.warning("the update's LEDs: cannot ask RAUC whether it has finished: %s", exc)
                if self._monotonic() - last_answer >= wait_s:
                    self._give_up(seq, installing, "RAUC has not answered for %d s (%s)" % (wait_s, exc))
                    return
                continue
            last_answer = self._monotonic()
            if said != progress:
                progress, moved = said, last_answer
            if operation != "idle":
                if last_answer - moved >= wait_s:
                    self._give_up(seq, installing, stood_still(progress, wait_s))
                    return
                continue
            with self._lock:
                if self._stopped or self._state_seq != seq:
                    return
                self._state_seq += 1
                self._pattern = self._until = None
                self._changed.notify_all()
            log.info("RAUC has finished the install the last update stopped waiting for: LEDs back to normal")
            self._status_after_failure()
            return

    def _give_up(self, seq, installing, what):
        """RAUC ``what`` (gave no answer, or no progress) after the update that told
        ``installing`` stopped waiting for it: that update failed, as far as the box can
        tell. The LEDs stop saying not to cut the power and show the failure, with its
        alarm, unless another update's state came meanwhile."""
        message = (
            "%s since the update stopped waiting for its install, so whether RAUC wrote the new "
            "slot is not known. Nothing was switched: the box runs its old version, and RAUC never "
            "boots a slot it did not finish writing. Restart the box (RAUC with it), then install "
            "the bundle again" % what
        )
        failed = UpdateState(
            line=0,
            t_us=self._now_us(),
            state="failed",
            message=message,
            version=installing.version,
            previous_version=installing.previous_version,
        )
        if self._on_state(failed, seq):
            log.error("the update's LEDs: %s", message)

    def _show_status(self, event):
        if self.status_led is None:
            return
        try:
            if event.state in ("running", "installing"):
                if self._status_before is None:
                    self._status_before = self.status_led.led()
                self.status_led.set_led(STATUS_LED["running"])
            elif event.failed:
                self.status_led.set_led(STATUS_LED["failed"])
            else:
                self._restore_status()
        except (OSError, ValueError, LookupError) as exc:
            log.warning("the MCU status LED cannot show the update: %s", exc)

    def _restore_status(self):
        before, self._status_before = self._status_before, None
        if self.status_led is not None and before in STATUS_LED.values():
            before = None  # left over from an update cut short: not the box's own pattern
        if self.status_led is not None and before and not before.startswith("unknown"):
            self.status_led.set_led(before)

    def _set_all(self, on):
        if on == self.led_on:
            return
        self.led_on = on
        for line in range(1, self.board.lines + 1):
            self.board.set_led(line, on)

    def _play(self):
        with self._lock:
            while not self._stopped:
                pattern = self._pattern
                if pattern is not None and self._until is not None and self._monotonic() >= self._until:
                    pattern = self._pattern = None
                    self._status_after_failure()
                if pattern is None:
                    self._set_all(False)
                    self._changed.wait()
                    continue
                self._frames(pattern)
            self._set_all(False)

    def _status_after_failure(self):
        try:
            self._restore_status()
        except (OSError, ValueError, LookupError) as exc:
            log.warning("the MCU status LED cannot be restored: %s", exc)

    def _frames(self, pattern):
        """One round of ``pattern``; returns early when the state changes (lock held)."""
        for on, ms in pattern:
            self._set_all(on)
            if self._changed.wait(ms / 1000.0) or self._pattern is not pattern:
                return

    def stop(self):
        """LEDs off and the player thread ended."""
        with self._lock:
            self._stopped = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
