"""The HAT's codec on a real Pi: capture level per line, through board/alsa.py.

With no line plugged in each capture channel carries the line interface's and
the codec's noise: not digital zero (a channel that reads exact zeros is not clocked or
muted), below -45 dBm0 (louder is hum or a fault on the line interface), and
never at full scale. Run with the line cords unplugged, like the rest of `make hwtest`.
"""

import numpy as np

from board.alsa import AlsaCapture
from firmware.clock import RealClock
from telephony.levels import DBM0_RMS

SECONDS = 2
NOISE_MAX_DBM0 = -45.0


def capture(hat, seconds):
    """``seconds`` of capture from the HAT's codec: int16 array, frames x channels."""
    audio = hat.audio
    clock = RealClock()
    pcm = AlsaCapture(audio.capture, audio.rate, audio.channels, audio.period_frames, clock)
    pcm.open()
    try:
        chunks, frames = [], 0
        while frames < seconds * audio.rate:
            n, data = pcm.read_period()
            if n > 0:
                chunks.append(np.frombuffer(data[: n * 2 * audio.channels], np.int16))
                frames += n
    finally:
        pcm.stop()
        clock.close()
    return np.concatenate(chunks).reshape(-1, audio.channels)


def dbm0(x):
    rms = float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0
    return 20 * np.log10(max(rms, 1e-3) / DBM0_RMS)


def test_idle_capture_level_per_line(hat):
    frames = capture(hat, SECONDS)
    bad = []
    for spec in hat.lines:
        x = frames[:, spec.capture_channel]
        level, peak = dbm0(x), int(np.max(np.abs(x.astype(np.int32))))
        where = "line %d (channel %d)" % (spec.line, spec.capture_channel)
        print("%s: idle %.1f dBm0, peak %d" % (where, level, peak))
        if not np.any(x):
            bad.append("line %d reads digital zero: codec channel dead or muted" % spec.line)
        elif level > NOISE_MAX_DBM0:
            bad.append("%s idle at %.1f dBm0: hum or a line fault" % (where, level))
        if peak >= 32767:
            bad.append("line %d clips at idle" % spec.line)
    assert not bad, "; ".join(bad)
