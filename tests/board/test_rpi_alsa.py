"""The Raspberry Pi board's code path without a Pi: gpiozero mock pins stand
in for lgpio, a fake SMBus records the I2C set-up, and ALSA really runs,
through an asoundrc whose PCMs are files (there is no sound card here).

ALSA reads its configuration once per process, so the board runs in a child
process with HOME pointing at the test's asoundrc.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from board.hat import hats_dir, load_hat
from board.rpi import RpiBoard
from firmware.clock import RealClock
from firmware.errors import HardwareError

CHILD = textwrap.dedent("""
    import json, sys, threading
    from gpiozero.pins.mock import MockFactory
    from board.hat import loads_hat
    from board.rpi import RpiBoard
    from firmware.clock import RealClock

    hat = loads_hat(open(sys.argv[1]).read())
    writes = []

    class FakeBus:
        def __init__(self, bus):
            self.bus = bus
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            pass
        def write_byte_data(self, addr, reg, value):
            writes.append([self.bus, addr, reg, value])

    factory = MockFactory()
    clock = RealClock()
    board = RpiBoard(hat, clock, pin_factory=factory, bus_factory=FakeBus)
    periods, edges = [], []
    enough = threading.Event()

    def on_audio(frames, t_us):
        periods.append(bytes(frames))
        if len(periods) == 5:
            enough.set()

    board.start(lambda *e: edges.append(e), on_audio)
    enough.wait(10)
    factory.pin(4).drive_low()          # line 1 hook, active low: off-hook
    board.play(2, bytes(range(0, 64)))  # into line 2's playback channel
    import time; time.sleep(0.3)
    board.stop()
    clock.close()
    print(json.dumps({"periods": [p.hex() for p in periods[:5]], "writes": writes,
                      "edges": [[ln, s, a] for ln, s, a, _t in edges]}))
""")


@pytest.fixture
def alsa_home(tmp_path):
    frames = np.arange(160 * 4 * 8, dtype=np.int16)
    (tmp_path / "in.raw").write_bytes(frames.tobytes())
    (tmp_path / ".asoundrc").write_text(
        textwrap.dedent(
            """
        pcm.lkcap { type file; slave.pcm null; file "/dev/null"; infile "%(d)s/in.raw"; format "raw" }
        pcm.lkplay { type file; slave.pcm null; file "%(d)s/out.raw"; format "raw" }
    """
            % {"d": tmp_path}
        )
    )
    hat = json.loads((hats_dir() / "lk-4l.json").read_text())
    hat["audio"]["capture"] = "lkcap"
    hat["audio"]["playback"] = "lkplay"
    (tmp_path / "hat.json").write_text(json.dumps(hat))
    return tmp_path


def test_pi_board_reads_alsa_drives_gpio_and_sets_up_i2c(alsa_home):
    env = dict(os.environ, HOME=str(alsa_home))
    env.pop("ALSA_CONFIG_PATH", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(alsa_home / "hat.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Capture: the file's frames arrive period by period, in order.
    got = np.frombuffer(bytes.fromhex("".join(result["periods"])), dtype=np.int16)
    assert np.array_equal(got, np.arange(len(got), dtype=np.int16))
    assert len(got) == 5 * 160 * 4
    # I2C: the HAT file's init sequence, in order, on its bus.
    hat = load_hat("lk-4l")
    expected = [[1, d.address, r, v] for d in hat.i2c.devices for r, v in d.init]
    assert result["writes"] == expected
    # GPIO: the active-low hook input reads as off-hook on line 1.
    assert ["1", "hook", True] in [[str(ln), s, a] for ln, s, a in result["edges"]]
    # Playback: something was written to the playback file.
    assert (alsa_home / "out.raw").stat().st_size > 0


class NoBus:
    """An SMBus that accepts every write."""

    def __init__(self, bus):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def write_byte_data(self, *args):
        pass


def test_missing_alsa_device_is_a_hardware_error(tmp_path):
    from gpiozero.pins.mock import MockFactory

    hat = load_hat("lk-4l")
    clock = RealClock()
    board = RpiBoard(hat, clock, pin_factory=MockFactory(), bus_factory=NoBus)
    with pytest.raises(HardwareError, match="ALSA capture device"):
        board.start(lambda *e: None, lambda *a: None)
    clock.close()


def test_no_lgpio_is_a_hardware_error_not_a_fallback():
    hat = load_hat("lk-4l")
    clock = RealClock()
    board = RpiBoard(hat, clock, bus_factory=NoBus)
    with pytest.raises(HardwareError, match="LINEKEEPER_BOARD=sim"):
        board.start(lambda *e: None, lambda *a: None)
    clock.close()


def test_i2c_failure_is_a_hardware_error():
    hat = load_hat("lk-4l")

    class BrokenBus:
        def __init__(self, bus):
            raise FileNotFoundError(2, "No such file or directory", "/dev/i2c-1")

    board = RpiBoard(hat, RealClock(), bus_factory=BrokenBus)
    with pytest.raises(HardwareError, match="I2C"):
        board.start(lambda *e: None, lambda *a: None)


def test_playback_drops_what_a_line_still_had_queued():
    """A call ended during its notice: the rest of it is not written to the line (it would
    play on into the next call, ahead of that call's own notice). The other line's stays."""
    from board.alsa import AlsaPlayback

    playback = AlsaPlayback("unused", 8000, 2, 4)
    playback.queue(0, np.full(8, 1000, np.int16).tobytes())
    playback.queue(1, np.full(8, 2000, np.int16).tobytes())
    first = np.frombuffer(playback.next_period(), np.int16).reshape(4, 2)
    assert (first == [1000, 2000]).all()
    playback.drop(0)
    rest = np.frombuffer(playback.next_period(), np.int16).reshape(4, 2)
    assert (rest[:, 0] == 0).all() and (rest[:, 1] == 2000).all()


class FailingPcm:
    """An ALSA PCM whose writes fail (the codec gone, an I/O error) until ``fail`` is cleared."""

    def __init__(self):
        self.fail = True
        self.written = threading.Event()
        self.failed = threading.Event()

    def write(self, data):
        time.sleep(0.001)
        if self.fail:
            self.failed.set()
            raise OSError(5, "Input/output error")
        self.written.set()
        return len(data) // 4

    def close(self):
        pass


def _until(condition, timeout_s=5.0):
    """Whether ``condition()`` came true within ``timeout_s`` (the playback thread's doing)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_playback_that_cannot_write_refuses_to_queue_a_notice_and_recovers():
    """A failed write ended the playback thread for good, and queue() went on taking every
    notice (and keeping it, in memory without end): each call was said to be given its
    announcement though nobody heard one. Now the thread goes on, queue() refuses while the
    writes fail (the consent notice is then recorded as not given), and accepts again once
    one succeeds."""
    from board.alsa import AlsaPlayback

    playback = AlsaPlayback("unused", 8000, 2, 4)
    playback._pcm = pcm = FailingPcm()
    playback._start("test-playback")
    try:
        assert pcm.failed.wait(5) and _until(lambda: playback.error is not None)
        with pytest.raises(HardwareError, match="Input/output error"):
            playback.queue(0, np.full(8, 1000, np.int16).tobytes())
        pcm.fail = False
        assert pcm.written.wait(5) and _until(lambda: playback.error is None)
        playback.queue(0, np.full(8, 1000, np.int16).tobytes())  # accepted again
    finally:
        playback.stop()
