import subprocess
import sys
import threading
import time

import pytest

from firmware.clock import RealClock, SimClock


def test_sim_clock_runs_timers_in_time_order_and_sets_now():
    clock = SimClock(start_wall_us=1_000_000)
    seen = []
    clock.call_at(300, lambda: seen.append(("c", clock.now_us())))
    clock.call_at(100, lambda: seen.append(("a", clock.now_us())))
    clock.call_at(100, lambda: seen.append(("b", clock.now_us())))  # same time: FIFO
    assert clock.run_until(250)
    assert seen == [("a", 100), ("b", 100)]
    assert clock.now_us() == 250
    assert clock.wall_us() == 1_000_250
    clock.run_until(1000)
    assert seen[-1] == ("c", 300)


def test_sim_clock_timers_scheduled_from_timers_and_cancel():
    clock = SimClock()
    seen = []

    def first():
        seen.append(clock.now_us())
        clock.call_later(50, lambda: seen.append(clock.now_us()))
        doomed.cancel()

    clock.call_at(10, first)
    doomed = clock.call_at(40, lambda: seen.append("cancelled"))
    clock.run_until(100)
    assert seen == [10, 60]


def test_sim_clock_never_goes_back():
    clock = SimClock()
    clock.run_until(500)
    seen = []
    clock.call_at(100, lambda: seen.append(clock.now_us()))  # in the past: runs now
    clock.run_until(600)
    assert seen == [500]


def test_sim_clock_paces_against_real_time():
    clock = SimClock(speed=10.0)  # 10 simulated seconds per real second
    t0 = time.monotonic()
    clock.run_until(1_000_000)  # one simulated second
    elapsed = time.monotonic() - t0
    assert 0.08 <= elapsed < 1.0


def test_sim_clock_stop_from_another_thread():
    clock = SimClock(speed=1.0)
    clock.call_at(10_000_000, lambda: None)
    threading.Timer(0.05, clock.stop).start()
    assert clock.run_until(20_000_000) is False
    assert clock.now_us() < 10_000_000


def test_sim_clock_stopped_before_a_run_stays_stopped():
    """A stop that comes while the box starts (a SIGTERM then) is not lost."""
    clock = SimClock(speed=1.0)
    fired = []
    clock.call_at(10_000, lambda: fired.append(1))
    clock.stop()
    t0 = time.monotonic()
    assert clock.run_until(20_000_000) is False
    assert clock.run_until(20_000_000) is False
    assert time.monotonic() - t0 < 1.0 and fired == [] and clock.now_us() == 0


def test_sim_clock_rejects_bad_speed():
    with pytest.raises(ValueError):
        SimClock(speed=0)


def test_real_clock_timer_fires():
    clock = RealClock()
    fired = threading.Event()
    clock.call_later(10_000, fired.set)
    assert fired.wait(2)
    clock.close()


def test_real_clock_survives_a_failing_callback():
    clock = RealClock()
    fired = threading.Event()

    def broken():
        raise RuntimeError("boom")

    clock.call_later(1_000, broken)
    clock.call_later(20_000, fired.set)
    assert fired.wait(2)
    clock.close()


def test_the_pi_s_clock_is_synchronised_when_the_kernel_says_so(monkeypatch):
    """The Pi's clock never said it was synchronised (nothing asked the time daemon):
    retention refused every sweep as 'unsynchronised' on every real box. The kernel's
    clock state (adjtimex, what timedatectl reports) now decides."""
    from firmware import box as box_module
    from firmware import clock as clock_module

    for state, synchronised in ((0, True), (1, True), (4, True), (5, False), (-1, False)):
        monkeypatch.setattr(clock_module, "_adjtimex", lambda state=state: state)
        assert clock_module.kernel_clock_synchronised() is synchronised
        assert box_module.rpi_clock().synchronised is synchronised

    def no_libc():
        raise OSError("no C library")

    monkeypatch.setattr(clock_module, "_adjtimex", no_libc)
    assert clock_module.kernel_clock_synchronised() is False
    monkeypatch.undo()
    assert clock_module._adjtimex() in range(-1, 6)  # the real call answers on this machine


def test_the_kernel_s_word_that_the_wall_clock_was_set_is_passed_on(monkeypatch):
    """The recorder looked at its wall clock every 5 s for a setting: a power cut in between
    was dated by the clock before it. The kernel cancels a timer armed on the wall clock with
    TFD_TIMER_CANCEL_ON_SET when the clock is set (its read fails with ECANCELED): the watch
    tells its caller then and arms it again. (Setting the clock itself needs CAP_SYS_TIME: the
    cancel is made here by a pipe in the timer's place.)"""
    import errno
    import os

    from firmware import clock as clocks

    r, w = os.pipe()
    real_read = os.read

    def read(fd, n):
        if fd == r:
            real_read(fd, n)
            raise OSError(errno.ECANCELED, "Operation canceled")
        return real_read(fd, n)

    armed = []

    class Libc:
        def timerfd_settime(self, fd, flags, when, old):
            armed.append((fd, flags))
            return 0

    monkeypatch.setattr(clocks.os, "read", read)
    told = threading.Event()
    watch = clocks.ClockSets(Libc(), r, told.set)
    watch._thread.start()
    os.write(w, b"x")
    assert told.wait(5)
    watch.close()
    os.close(w)
    assert not watch._thread.is_alive() and armed == [(r, 3)]  # armed again: absolute, cancel on set


def test_the_watch_works_on_a_file_number_past_1024(monkeypatch):
    """A recorder with many files open gets a timer numbered past 1024, where select.select
    fails (ValueError): the watch stopped at once, and told of no setting again."""
    import errno
    import os
    import resource

    from firmware import clock as clocks

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    r0, w = os.pipe()
    r = os.dup2(r0, 1200)
    os.close(r0)
    real_read = os.read

    def read(fd, n):
        if fd == r:
            real_read(fd, n)
            raise OSError(errno.ECANCELED, "Operation canceled")
        return real_read(fd, n)

    class Libc:
        def timerfd_settime(self, fd, flags, when, old):
            return 0

    monkeypatch.setattr(clocks.os, "read", read)
    told = threading.Event()
    watch = clocks.ClockSets(Libc(), r, told.set)
    watch._thread.start()
    try:
        os.write(w, b"x")
        assert told.wait(5)
    finally:
        watch.close()
        os.close(w)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not watch._thread.is_alive()


def test_a_real_clock_watches_for_its_wall_clock_being_set_and_stops_with_it():
    clock = RealClock()
    told = threading.Event()
    assert clock.watch_steps(told.set)  # Linux: the kernel's timerfd
    watch = clock._clock_sets
    clock._clock_was_set()  # as its thread does when the kernel says so
    assert told.wait(5)
    clock.close()
    assert not watch._thread.is_alive() and not clock.watch_steps(told.set)


def test_a_watch_on_the_wall_clock_that_cannot_be_armed_leaves_no_file_open():
    """Where the kernel's timer cannot be armed (ClockSets.open gives None, the 5 s look
    stays) nothing it opened stays open: the pipe's end that wakes its thread was left, one
    more at each watch asked for (a RealClock asks again each time). Counted in a process of
    its own: a test worker's other threads (left by earlier tests) open files meanwhile."""
    code = """
import os
from firmware import clock as clocks
clocks.ClockSets._arm = lambda self: False
before = sorted(os.listdir("/proc/self/fd"))
clock = clocks.RealClock()
print(all(not clock.watch_steps(lambda: None) for _ in range(3)))
clock.close()
print(sorted(os.listdir("/proc/self/fd")) == before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"], out.stdout + out.stderr


def test_the_real_clock_says_its_boot_and_a_boot_clock_no_wall_step_moves(monkeypatch, tmp_path):
    """The retention clock guard compares a restart against the boot clock kept at the last
    sweep: the kernel's boot id and CLOCK_BOOTTIME, and None where /proc does not say."""
    from firmware import clock as clock_module

    boot_id = tmp_path / "boot_id"
    boot_id.write_text("cafe-1\n")
    monkeypatch.setattr(clock_module, "BOOT_ID_PATH", str(boot_id))
    clock = RealClock()
    first = clock.boot_us()
    assert first is not None and first[0] == "cafe-1"
    assert abs(first[1] - time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 1000) < 5_000_000
    assert clock.boot_us()[1] >= first[1]
    monkeypatch.setattr(clock_module, "BOOT_ID_PATH", str(tmp_path / "none"))
    assert clock.boot_us() is None
