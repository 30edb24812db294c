"""The Raspberry Pi board on real hardware: lines idle, audio flowing."""

import threading
import time

from board.rpi import RpiBoard
from firmware.clock import RealClock


def test_idle_lines_read_idle(hat):
    """With every phone on-hook and no call, no line is off-hook or ringing."""
    clock = RealClock()
    board = RpiBoard(hat, clock)
    board.start(lambda *edge: None, lambda frames, t_us: None)
    try:
        for line in range(1, board.lines + 1):
            assert board.read(line, "hook") is False
            assert board.read(line, "ring") is False
    finally:
        board.stop()
        clock.close()


def test_capture_delivers_periods_in_real_time(hat):
    clock = RealClock()
    board = RpiBoard(hat, clock)
    periods = []
    done = threading.Event()

    def on_audio(frames, t_us):
        periods.append((len(frames), t_us))
        if len(periods) >= 100:
            done.set()

    t0 = time.monotonic()
    board.start(lambda *edge: None, on_audio)
    try:
        assert done.wait(10)
    finally:
        board.stop()
        clock.close()
    elapsed = time.monotonic() - t0
    frames = sum(n for n, _ in periods[:100]) // (2 * hat.audio.channels)
    # 100 periods of audio took about as long to arrive as they last.
    assert abs(elapsed - frames / hat.audio.rate) < 0.5


def test_led_follows(hat):
    clock = RealClock()
    board = RpiBoard(hat, clock)
    board.start(lambda *edge: None, lambda frames, t_us: None)
    try:
        for line in range(1, board.lines + 1):
            board.set_led(line, True)
            board.set_led(line, False)
    finally:
        board.stop()
        clock.close()


def test_the_clock_is_synchronised():
    """Retention deletes nothing, and every call is noted as unsynchronised, until the
    Pi's clock is synchronised: its time daemon must reach a time server (check the
    network, or `timedatectl timesync-status`)."""
    from firmware.box import rpi_clock

    clock = rpi_clock()
    try:
        assert clock.synchronised, "the clock is not synchronised: check the network and the time server"
    finally:
        clock.close()
