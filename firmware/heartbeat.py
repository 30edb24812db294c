"""The recorder's heartbeat for systemd's watchdog.

A ping says more than "the process exists": it is sent only while the box's
clock loop — which runs the line supervisor's timers, the simulated board and
the end-of-call timers — has ticked within ``stale_s`` of real time. A
recorder that hangs, deadlocks or is stopped (SIGSTOP) stops pinging, and
systemd (``WatchdogSec``) kills and restarts it; the restart closes the
interrupted call and keeps its audio up to the stall (start-up recovery).
"""

import threading
import time


class Heartbeat:
    """Ping ``notifier`` every ``interval_s`` while ``box``'s clock is ticking.

    ``interval_s`` defaults to half of systemd's ``WatchdogSec`` (5 s without one).
    Set :attr:`idle` when the box has nothing left to service (a simulated
    scenario that has ended) to ping for the process alone.
    """

    TICK_US = 1_000_000

    def __init__(self, box, notifier, interval_s=None, stale_s=None):
        watchdog_us = notifier.watchdog_us()
        self.box = box
        self.notifier = notifier
        self.interval_s = interval_s or (watchdog_us / 2e6 if watchdog_us else 5.0)
        self.stale_s = stale_s or max(3.0, 2 * self.interval_s)
        self.idle = False
        self.pings = 0
        self._last_tick = time.monotonic()
        self._timer = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._tick()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._thread is not None:
            self._thread.join(5)

    def alive(self):
        """True while the box's clock loop has ticked recently (or the box is idle)."""
        return self.idle or time.monotonic() - self._last_tick < self.stale_s

    def _tick(self):
        self._last_tick = time.monotonic()
        if not self._stop.is_set():
            self._timer = self.box.clock.call_later(self.TICK_US, self._tick)

    def _run(self):
        while not self._stop.wait(self.interval_s):
            if self.alive():
                self.notifier.ping()
                self.pings += 1
