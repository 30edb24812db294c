"""A line's ring is drained one anchor run at a time: audio on either side of a gap in
capture is never handed over as one run, however many anchors lie behind the reader."""

import numpy as np

from firmware.capture import LineAudio


def test_drain_stops_at_each_gap_ahead_and_times_each_run():
    audio = LineAudio(1, 8000, ring_seconds=2)
    runs = []
    audio.consumers.append(lambda samples, t_us: runs.append((len(samples), t_us)))
    period = np.zeros(160, np.int16).tobytes()  # 20 ms
    for k in range(80):  # many gaps behind the reader (the anchors keep the last 64)
        audio.anchor(audio.ring.written, k * 1_000_000)
        audio.ring.write(period)
        audio.drain()
    assert runs[-1] == (160, 79_000_000)
    runs.clear()
    t_us = 100_000_000
    audio.anchor(audio.ring.written, t_us)
    audio.ring.write(period)
    audio.ring.write(period)  # contiguous: no anchor
    audio.anchor(audio.ring.written, t_us + 5_000_000)  # a gap, then two more periods
    audio.ring.write(period)
    audio.ring.write(period)
    audio.drain()
    assert runs == [(320, t_us), (320, t_us + 5_000_000)]
