"""Clocks: the one source of time for everything time-based in the box.

Every component takes a clock instead of calling :func:`time.monotonic`, so
debouncing, ring cadence, timeouts and retention can be tested without
sleeping. Times are integers in microseconds (``t_us``) counted from the
clock's start; wall-clock time is microseconds since the Unix epoch
(``wall_us``, UTC).

:class:`SimClock` is a discrete-event scheduler: time only moves when
:meth:`SimClock.run_until` moves it, timers run in time order, and a run is
deterministic. With ``speed=1`` it paces itself against real time, so the
simulated box can also be watched live.

:class:`RealClock` follows the system clocks and runs its timers on a
background thread.
"""

import errno
import heapq
import itertools
import logging
import os
import select
import threading
import time

log = logging.getLogger(__name__)


class Timer:
    """Handle for a callback scheduled with :meth:`Clock.call_at`."""

    __slots__ = ("t_us", "fn", "cancelled")

    def __init__(self, t_us, fn):
        self.t_us = t_us
        self.fn = fn
        self.cancelled = False

    def cancel(self):
        """Stop the callback from running; harmless if it already ran."""
        self.cancelled = True


class Clock:
    """What every clock provides.

    ``now_us()``       microseconds since the clock started (never goes back)
    ``wall_us()``      microseconds since the Unix epoch, UTC
    ``synchronised``   whether wall time is known to be right (NTP, or simulated)
    ``call_at(t_us, fn)`` / ``call_later(delay_us, fn)`` schedule ``fn()``
    """

    synchronised = False

    def now_us(self):
        raise NotImplementedError

    def wall_us(self):
        raise NotImplementedError

    def wall_at(self, t_us):
        """Wall time (µs since the epoch) of the clock time ``t_us``."""
        return self.wall_us() - (self.now_us() - t_us)

    def call_at(self, t_us, fn):
        raise NotImplementedError

    def call_later(self, delay_us, fn):
        return self.call_at(self.now_us() + int(delay_us), fn)

    def boot_us(self):
        """``(boot id, µs since the machine booted)`` by a clock no setting of the wall clock
        moves (suspend counted), or None where this clock cannot say. Two readings with the
        same boot id measure the real time between them even when the process that took the
        first has stopped since: what the retention clock guard checks a restart against."""
        return None

    def watch_steps(self, fn):
        """Have ``fn()`` run (as the clock's timers do) each time the wall clock is set, by
        a person or the time daemon: at once, where a look every few seconds would leave a
        power cut in between dated by the clock as it was. Returns whether this clock can
        tell (False: the caller only looks every so often)."""
        return False


class SimClock(Clock):
    """Simulated time for the simulated board and for tests.

    :param start_wall_us: the wall time at ``t_us == 0`` (µs since the epoch)
    :param speed: ``None`` to run as fast as possible, or how many simulated
        seconds pass per real second (``1`` is real time)
    """

    synchronised = True

    def __init__(self, start_wall_us=0, speed=None):
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive or None, not %r" % (speed,))
        self._step_watchers = []
        self._now_us = 0
        self._heap = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.start_wall_us = int(start_wall_us)
        self.speed = speed
        self._stop = threading.Event()
        self._real_start = None

    @property
    def start_wall_us(self):
        return self._start_wall_us

    @start_wall_us.setter
    def start_wall_us(self, value):
        """The simulated wall clock set (stepped): its watchers (:meth:`watch_steps`) are
        told at the current time, as the kernel tells a real clock's."""
        stepped = getattr(self, "_start_wall_us", value) != value
        self._start_wall_us = int(value)
        if stepped:
            for fn in list(self._step_watchers):
                self.call_at(self._now_us, fn)

    def watch_steps(self, fn):
        self._step_watchers.append(fn)
        return True

    def now_us(self):
        return self._now_us

    def wall_us(self):
        return self.start_wall_us + self._now_us

    def wall_at(self, t_us):
        return self.start_wall_us + t_us

    def call_at(self, t_us, fn):
        timer = Timer(max(int(t_us), self._now_us), fn)
        with self._lock:
            heapq.heappush(self._heap, (timer.t_us, next(self._seq), timer))
        return timer

    def next_timer_us(self):
        """Time of the earliest pending timer, or ``None``."""
        with self._lock:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else None

    def stop(self):
        """Make a running :meth:`run_until` return early, and any later one at once (thread-safe).

        The stop stays: a SIGTERM that comes while the box is still starting,
        before its run begins, must stop that run too.
        """
        self._stop.set()

    def run_until(self, t_us):
        """Run every timer due up to ``t_us`` in order, then set now to ``t_us``.

        Returns ``False`` if :meth:`stop` cut the run short or came before it.
        """
        if self._real_start is None:
            self._real_start = (time.monotonic(), self._now_us)
        while not self._stop.is_set():
            with self._lock:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap or self._heap[0][0] > t_us:
                    break
                _, _, timer = heapq.heappop(self._heap)
            self._pace(timer.t_us)
            if self._stop.is_set():
                with self._lock:
                    heapq.heappush(self._heap, (timer.t_us, next(self._seq), timer))
                return False
            self._now_us = timer.t_us
            timer.fn()
        if self._stop.is_set():
            return False
        self._pace(t_us)
        self._now_us = max(self._now_us, int(t_us))
        return True

    def _pace(self, t_us):
        """With a speed set, wait until real time catches up with ``t_us``."""
        if self.speed is None:
            return
        real0, sim0 = self._real_start
        due = real0 + (t_us - sim0) / 1e6 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)


# adjtimex(2)'s answer for a clock no time daemon keeps synchronised.
_TIME_ERROR = 5


def _adjtimex():
    """adjtimex(2) with ``modes`` 0 (only read): the clock's state, or -1."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    timex = ctypes.create_string_buffer(512)  # struct timex is 208 bytes on Linux; zeroed
    return libc.adjtimex(timex)


def kernel_clock_synchronised():
    """Whether the kernel's clock is synchronised: what ``timedatectl`` calls "System
    clock synchronized", set by the time daemon (systemd-timesyncd, chrony, ntpd) once
    it has reached its server, and cleared when it loses it for long."""
    try:
        state = _adjtimex()
    except (OSError, AttributeError):
        return False
    return state not in (-1, _TIME_ERROR)


# timerfd_create(2) and timerfd_settime(2): a timer on the wall clock that the kernel cancels
# when that clock is set (TFD_TIMER_CANCEL_ON_SET), which makes its read fail with ECANCELED.
_CLOCK_REALTIME = 0
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2
# How far ahead the timer is armed (it only waits for a cancel): a year, within a 32-bit time_t.
_ARM_AHEAD_S = 365 * 86400


def _timespec():
    import ctypes

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    class Itimerspec(ctypes.Structure):
        _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]

    return Itimerspec


class ClockSets:
    """The kernel's word that the wall clock was set: a ``timerfd`` armed on
    ``CLOCK_REALTIME`` with ``TFD_TIMER_CANCEL_ON_SET`` (Linux), read by a thread of its own,
    which calls ``told()`` for each setting. :meth:`open` returns None where there is no
    such timer (not Linux, or refused)."""

    def __init__(self, libc, fd, told):
        self._libc = libc
        self._fd = fd
        self._told = told
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="linekeeper-clock-sets", daemon=True)

    @classmethod
    def open(cls, told):
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.timerfd_create(_CLOCK_REALTIME, os.O_CLOEXEC | os.O_NONBLOCK)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        try:
            watcher = cls(libc, fd, told)
        except OSError:  # no pipe for its thread (too many files open)
            os.close(fd)
            return None
        if not watcher._arm():
            # Nothing of it stays open (its thread, which closes the rest, never ran).
            watcher._close_fds()
            os.close(watcher._wake_w)
            return None
        watcher._thread.start()
        return watcher

    def _arm(self):
        """Arm the timer a year ahead, to be cancelled by a setting; whether it was."""
        import ctypes

        when = _timespec()()
        when.it_value.tv_sec = int(time.time()) + _ARM_AHEAD_S
        flags = _TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET
        return self._libc.timerfd_settime(self._fd, flags, ctypes.byref(when), None) == 0

    def _run(self):
        try:
            # poll, not select: a process with many files open (a box's recorder) gives file
            # numbers past select's 1024, where select fails and the watch stopped.
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            while True:
                readable = [fd for fd, _ in poller.poll()]
                if self._wake_r in readable:
                    return
                was_set = False
                try:
                    os.read(self._fd, 8)  # a year passed: armed again below
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.ECANCELED:
                        raise
                    was_set = True
                # Armed again first: a setting while it is told is told too. Not armed, a
                # cancelled timer reads as cancelled for ever: the watch stops (the look
                # every few seconds stays).
                armed = self._arm()
                if was_set:
                    self._told()
                if not armed:
                    log.error("cannot arm the watch on the wall clock being set again: it stops")
                    return
        except Exception:
            log.exception("the watch on the wall clock being set stopped")
        finally:
            self._close_fds()

    def _close_fds(self):
        for fd in (self._fd, self._wake_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self):
        """Stop the thread (it closes its timer)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join()
        os.close(self._wake_w)


# A new random id at each boot (Linux): a monotonic reading is only compared with one of the
# same boot.
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def boot_reading():
    """The kernel's boot id and CLOCK_BOOTTIME in µs (NTP slews it as it slews the wall
    clock, but no step moves it), as :meth:`Clock.boot_us` says them; None where /proc does
    not say (not Linux). For a process that has no clock of the box's, as the command line."""
    try:
        with open(BOOT_ID_PATH) as f:
            boot_id = f.read().strip()
    except OSError:
        return None
    return (boot_id, time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 1000) if boot_id else None


class RealClock(Clock):
    """The system's clocks; timers run on one background thread.

    ``synchronised`` is decided by ``is_synchronised`` (a callable): on the box
    :func:`kernel_clock_synchronised`; it defaults to ``False`` because a Pi has
    no battery-backed clock.
    """

    def __init__(self, is_synchronised=None):
        self._t0 = time.monotonic_ns()
        self._is_synchronised = is_synchronised or (lambda: False)
        self._heap = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread = None
        self._closed = False
        self._step_watchers = []
        self._clock_sets = None

    @property
    def synchronised(self):
        return bool(self._is_synchronised())

    def now_us(self):
        return (time.monotonic_ns() - self._t0) // 1000

    def wall_us(self):
        return time.time_ns() // 1000

    def boot_us(self):
        return boot_reading()

    def call_at(self, t_us, fn):
        timer = Timer(int(t_us), fn)
        with self._cond:
            if self._closed:
                raise RuntimeError("clock is closed")
            heapq.heappush(self._heap, (timer.t_us, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="linekeeper-timers", daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def watch_steps(self, fn):
        """``fn()`` on the timer thread each time the kernel says the wall clock was set
        (:class:`ClockSets`); False where it cannot say."""
        with self._cond:
            if self._closed:
                return False
            if self._clock_sets is None:
                self._clock_sets = ClockSets.open(self._clock_was_set)
                if self._clock_sets is None:
                    log.warning("the kernel cannot say when the wall clock is set: looked at every 5 s")
                    return False
            self._step_watchers.append(fn)
        return True

    def _clock_was_set(self):
        """The kernel said the wall clock was set (the watch's thread): the watchers are run
        by the timer thread, as every timer is."""
        for fn in list(self._step_watchers):
            try:
                self.call_at(self.now_us(), fn)
            except RuntimeError:  # closed meanwhile
                return

    def close(self):
        """Stop the timer thread; pending timers are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            clock_sets, self._clock_sets = self._clock_sets, None
        if clock_sets is not None:
            clock_sets.close()
        if self._thread is not None:
            self._thread.join()

    def _run(self):
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                        continue
                    if self._heap:
                        delay_us = self._heap[0][0] - self.now_us()
                        if delay_us <= 0:
                            break
                        self._cond.wait(delay_us / 1e6)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
                _, _, timer = heapq.heappop(self._heap)
            try:
                timer.fn()
            except Exception:
                # One failing callback must not stop every timer of the box.
                log.exception("timer callback %r failed", timer.fn)
