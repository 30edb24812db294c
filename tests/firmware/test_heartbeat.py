"""systemd notifications and the recorder's watchdog heartbeat."""

import socket
import time

from firmware.clock import RealClock
from firmware.heartbeat import Heartbeat
from firmware.sdnotify import Notifier


class ClockBox:
    def __init__(self, clock):
        self.clock = clock


def test_notifier_speaks_the_protocol_to_notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2)
        notifier = Notifier(path)
        notifier.ready("recording 4 lines")
        notifier.ping()
        assert sock.recv(100) == b"READY=1\nSTATUS=recording 4 lines"
        assert sock.recv(100) == b"WATCHDOG=1"
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    quiet = Notifier()
    quiet.ready()
    assert not quiet.enabled and quiet.sent == ["READY=1"]


def test_watchdog_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert Notifier("x").watchdog_us() == 10_000_000
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert Notifier("x").watchdog_us() is None


def test_heartbeat_pings_only_while_the_clock_loop_ticks():
    clock = RealClock()
    notifier = Notifier("")
    beat = Heartbeat(ClockBox(clock), notifier, interval_s=0.05, stale_s=0.3)
    beat.TICK_US = 50_000
    beat.start()
    try:
        time.sleep(0.5)
        assert beat.pings >= 5
        clock.close()  # the clock loop stops: no more ticks
        time.sleep(0.5)
        before = beat.pings
        time.sleep(0.3)
        assert beat.pings == before and not beat.alive()
        beat.idle = True  # nothing left to service: the process alone counts
        time.sleep(0.2)
        assert beat.pings > before
    finally:
        beat.stop()
