"""The box's side of the HAT's power-fail warning (docs/power-fail.md).

:class:`PowerFailWatch` tells the box when the supervisor MCU warns that the
supply has gone, and how long the hold-up capacitor will keep the Pi running
(the MCU's own figure, from its status register). It listens to the MCU's
power-fail GPIO line where the HAT wires one; otherwise it polls the status
register's flags over I2C (one byte; the whole status block, with the hold-up
time, only once the warning is seen): every ``busy_poll_ms`` while calls or
recordings are under way, or the call log or audit trail hold something not yet
synced (audio in memory, the calls' true end and what waits for the interval of a
stretched sync are what a late warning would cost) and every ``idle_poll_ms``
otherwise (an idle box then has nothing to lose). Whether the box is busy is asked
once per ``idle_poll_ms`` while it is, so the busy rate can last that much past the
last call (more polls, never fewer).

After the warning it goes on reading the status register (every
``RESTORE_POLL_MS``) until the warning clears: a short dip that the capacitor
rode out, after which ``on_restored(t_us)`` lets the box start again.

It reads the status once as the box starts, whichever way the warning arrives: a
box started while the MCU still warns (on a GPIO line already up, which sends no
edge) would otherwise never hear the warning. :meth:`wake` (a line no longer idle)
makes an idle watch poll at once and at the busy rate: the box's busyness was
asked only at the idle poll, so a warning could come up to a second late during
a call just begun. An MCU that stops answering for ``UNREACHABLE_MS`` is
reported once through ``on_unreachable(True, t_us)`` (and ``False`` when it
answers again), its errors logged once a minute, not at every poll.
"""

import logging

from board.mcu.link import McuError

log = logging.getLogger(__name__)

BUSY_POLL_MS = 20
IDLE_POLL_MS = 1000
RESTORE_POLL_MS = 100
UNREACHABLE_MS = 2000  # no answer this long: the warning cannot come, said once
LOG_EVERY_US = 60_000_000


class PowerFailWatch:
    """Call ``on_warning(t_us, holdup_ms)`` once when the MCU warns of a power cut.

    :param link: an opened :class:`board.mcu.link.McuLink`
    :param board: the board (its ``watch_power_fail(fn)`` says whether a GPIO line exists)
    :param clock: for the poll timers
    :param busy: ``busy() -> bool``: whether a call or recording is under way now, or
        anything waits unsynced
    :param on_restored: ``fn(t_us)`` when the warning clears with the Pi still running
    :param on_unreachable: ``fn(unreachable, t_us)`` when the MCU has not answered for
        ``UNREACHABLE_MS`` (True), and when it answers again (False)
    """

    def __init__(
        self,
        link,
        board,
        clock,
        on_warning,
        *,
        busy=lambda: True,
        on_restored=None,
        on_unreachable=None,
        busy_poll_ms=BUSY_POLL_MS,
        idle_poll_ms=IDLE_POLL_MS,
    ):
        self.link = link
        self.clock = clock
        self.on_warning = on_warning
        self.busy = busy
        self.on_restored = on_restored
        self.on_unreachable = on_unreachable
        self._failing_since = None  # when the MCU stopped answering
        self.unreachable = False
        self._logged_us = None
        self.busy_poll_us = busy_poll_ms * 1000
        self.idle_poll_us = idle_poll_ms * 1000
        # While busy, busy() is asked once per idle interval, not at every poll: a box
        # that has gone idle goes on at the busy rate for up to that long (more polls,
        # never fewer), and an idle box is asked at every (idle) poll as before.
        self._busy_recheck = max(1, self.idle_poll_us // self.busy_poll_us)
        self._busy_polls_left = 0
        self.warned_us = None
        self._timer = None
        self._closed = False
        watch = getattr(board, "watch_power_fail", None)
        self.by_gpio = bool(watch and watch(self._edge))
        # The status as the box starts, whichever way the warning comes (see above).
        self._timer = self.clock.call_later(0, self._poll)

    @property
    def source(self):
        """How the warning arrives: ``"gpio"`` or ``"i2c"``."""
        return "gpio" if self.by_gpio else "i2c"

    def close(self):
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def wake(self):
        """A line is no longer idle: poll now, and at the busy rate from then on."""
        if self._closed or self.warned_us is not None or self.by_gpio or self._busy_polls_left > 0:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(0, self._poll)

    def _edge(self, active, t_us):
        if active:
            # Off the GPIO library's callback thread (sealing stops the pins it serves).
            self.clock.call_later(0, lambda: self._warn(t_us, None))

    def _schedule(self):
        if self._closed:
            return
        if self.by_gpio and self.warned_us is None and not self.unreachable and self._failing_since is None:
            return  # the line tells; the status is read only at the start and after a warning
        if self.warned_us is not None:
            delay = RESTORE_POLL_MS * 1000
        elif self._busy_polls_left > 0:
            self._busy_polls_left -= 1
            delay = self.busy_poll_us
        elif self.busy():
            self._busy_polls_left = self._busy_recheck - 1
            delay = self.busy_poll_us
        else:
            delay = self.idle_poll_us
        self._timer = self.clock.call_later(delay, self._poll)

    def _poll(self):
        self._timer = None
        if self._closed:
            return
        try:
            # The status flags alone (one byte): the hold-up time is read at the warning.
            failing = self.link.power_fail()
        except McuError as exc:
            # A bus glitch must not stop the box; the next poll tries again.
            self._no_answer(exc)
        else:
            self._answered()
            if self.warned_us is None and failing:
                self._warn(self.clock.now_us(), None)
                return
            if self.warned_us is not None and not failing:
                self.close()
                if self.on_restored is not None:
                    self.on_restored(self.clock.now_us())
                return
        self._schedule()

    def _no_answer(self, exc):
        now = self.clock.now_us()
        if self._failing_since is None:
            self._failing_since = now
        if self._logged_us is None or now - self._logged_us >= LOG_EVERY_US:
            self._logged_us = now
            log.error("power-fail poll: %s", exc)
        if not self.unreachable and now - self._failing_since >= UNREACHABLE_MS * 1000:
            self.unreachable = True
            if self.on_unreachable is not None:
                self.on_unreachable(True, now)

    def _answered(self):
        if self._failing_since is None:
            return
        self._failing_since = self._logged_us = None
        if self.unreachable:
            self.unreachable = False
            log.warning("power-fail poll: the supervisor MCU answers again")
            if self.on_unreachable is not None:
                self.on_unreachable(False, self.clock.now_us())

    def _warn(self, t_us, holdup_ms):
        if self.warned_us is not None or self._closed:
            return
        self.warned_us = t_us
        if holdup_ms is None:
            try:
                holdup_ms = self.link.status().holdup_ms
            except McuError as exc:
                log.error("power fail: cannot read the hold-up time: %s", exc)
                holdup_ms = 0
        if self._timer is not None:
            self._timer.cancel()
        self.on_warning(t_us, holdup_ms)
        self._schedule()  # now watching for the power to come back
