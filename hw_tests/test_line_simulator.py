"""A call through a line simulator on a real Pi: the board, the line supervisor and the codec.

Plug line LINEKEEPER_HW_LINE (default 1) of the HAT into one port of a line
simulator (an exchange simulator that rings and connects two phones), with a
phone on the HAT's line port and another on the simulator's other port. The
test prints what to do: ring the line from the other phone, answer it, wait
while the box plays a test tone, hang up. It checks, through RpiBoard and the
Supervisor as the recorder runs them, that the call is seen ringing, answered
and ended on that line only, and that the tone the box plays is heard on that
line's capture channel and not on the others. Marked ``line_sim``: `make hwtest-call`.
"""

import queue
import threading

import numpy as np
import pytest

from board.rpi import RpiBoard
from firmware.bus import CallAnswered, CallEnded, CallStarted, EventBus
from firmware.calls.supervisor import Supervisor
from firmware.clock import RealClock
from telephony.levels import DBM0_RMS

WAIT_S = 60
TONE_HZ, TONE_S, TONE_DBM0 = 1000, 1.0, -10.0
HEARD_MIN_DBM0 = -40.0  # the tone on the line's own channel (through the hybrid)
CROSSTALK_MAX_DB = -40.0  # on any other channel, relative to the line's own


def _dbm0(x):
    rms = float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0
    return 20 * np.log10(max(rms, 1e-3) / DBM0_RMS)


@pytest.mark.line_sim
def test_a_call_through_the_line_simulator(hat, test_line):
    clock = RealClock()
    bus = EventBus()
    board = RpiBoard(hat, clock)
    events = queue.Queue()
    for kind in (CallStarted, CallAnswered, CallEnded):
        bus.subscribe(kind, events.put)
    recording = threading.Event()
    frames = []

    def on_audio(data, t_us):
        if recording.is_set():
            frames.append(np.frombuffer(data, np.int16).reshape(-1, hat.audio.channels).copy())

    sup = None
    try:
        board.start(lambda *edge: sup.on_edge(*edge), on_audio)
        sup = Supervisor(board.lines, clock, bus, signals=board.gpio.signals())

        def expect(kind, what):
            print(what, flush=True)
            while True:
                try:
                    ev = events.get(timeout=WAIT_S)
                except queue.Empty:
                    pytest.fail("nothing within %d s: %s" % (WAIT_S, what))
                assert ev.call.line == test_line, "a call on line %d, not %d" % (ev.call.line, test_line)
                if isinstance(ev, kind):
                    return ev.call

        expect(CallStarted, "ring line %d from the simulator's other phone now" % test_line)
        expect(CallAnswered, "answer it on the phone on line %d, then stay quiet" % test_line)
        t_s = np.arange(int(TONE_S * hat.audio.rate)) / hat.audio.rate
        samples = DBM0_RMS * np.sqrt(2) * 10 ** (TONE_DBM0 / 20) * np.sin(2 * np.pi * TONE_HZ * t_s)
        recording.set()
        board.play(test_line, samples.astype(np.int16))
        threading.Event().wait(TONE_S + 0.3)
        recording.clear()
        call = expect(CallEnded, "hang up both phones")
        print("call: %s, answered at %s us, ended (%s)" % (call.direction, call.answered_us, call.end_reason))
    finally:
        board.stop()
        clock.close()
    audio = np.concatenate(frames)
    own = hat.lines[[s.line for s in hat.lines].index(test_line)].capture_channel
    heard = _dbm0(audio[:, own])
    print("tone heard on line %d at %.1f dBm0" % (test_line, heard))
    assert heard >= HEARD_MIN_DBM0, "the box's tone is not on the line's capture"
    for spec in hat.lines:
        if spec.capture_channel != own:
            crosstalk = _dbm0(audio[:, spec.capture_channel]) - heard
            print("line %d crosstalk %.1f dB" % (spec.line, crosstalk))
            assert crosstalk <= CROSSTALK_MAX_DB, "line %d hears line %d" % (spec.line, test_line)
