"""The recorder's delay line (issue 20): audio waits before it is encoded, and can be
silenced meanwhile."""

import numpy as np

from firmware.capture import LineAudio
from firmware.recording.recorder import Recorder


class _Capture:
    rate = 8000

    def __init__(self):
        self.lines = {1: LineAudio(1, 8000, 8)}
        self.consumers = {}

    def add_consumer(self, line, fn):
        self.consumers[line] = fn


class _Bus:
    def subscribe(self, *_args):
        pass


def recorder(delay_ms):
    capture = _Capture()
    rec = Recorder(capture, store=None, clock=None, bus=None, public_key=None, delay_ms=delay_ms)
    rec.attach(_Bus())
    got = []
    rec._deliver = lambda line, samples, t_us, inner=rec._deliver: got.append(
        (t_us, np.array(rec._blanked(line, samples, t_us)))
    )
    return rec, capture.consumers[1], got


def period(k, value=1000):
    return np.full(800, value, np.int16), k * 100_000


def test_audio_waits_the_delay_before_it_goes_on():
    rec, feed, got = recorder(1000)
    for k in range(15):
        feed(*period(k))
    # 1.5 s captured: what ended 1 s before the newest sample has gone on.
    assert [t for t, _ in got] == [k * 100_000 for k in range(5)]
    rec._flush_delay(1)
    assert len(got) == 15


def test_a_blank_silences_audio_still_waiting_and_to_come():
    rec, feed, got = recorder(1000)
    for k in range(8):
        feed(*period(k))
    assert rec.blank(1, 250_000, 420_000)  # still in the delay line
    assert not rec.blank(1, -5_000_000, -4_000_000)  # long encoded
    rec.blank(1, 900_000)  # open: until unblank
    for k in range(8, 12):
        feed(*period(k))
    rec.unblank(1, 1_050_000)
    for k in range(12, 30):
        feed(*period(k))
    rec._flush_delay(1)
    audio = np.concatenate([s for _t, s in got])
    t_us = np.arange(len(audio)) * 125
    quiet = ((t_us >= 250_000) & (t_us < 420_000)) | ((t_us >= 900_000) & (t_us < 1_050_000))
    assert not audio[quiet].any() and (audio[~quiet] == 1000).all()


def test_no_delay_passes_audio_straight_on():
    _rec, feed, got = recorder(0)
    feed(*period(0))
    assert len(got) == 1
