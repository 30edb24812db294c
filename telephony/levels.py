"""Speech levels in dBm0: measuring and setting the *active* level.

A simplified ITU-T P.56: the level of 20 ms frames that are above −70 dBm0
and within 15.9 dB of the mean power of the active frames, so pauses do not
pull the level of speech down.

:data:`DBM0_RMS` is the project's one 0 dBm0 reference: spandsp (whose
generators and detectors the box uses) puts a full-scale 16-bit sine at
+3.14 dBm0, so a 0 dBm0 sine has an RMS of 32767 / sqrt(2) / 10^(3.14/20),
about 16 140.
"""

import math

import numpy as np

RATE = 8000
#: RMS of a 0 dBm0 sine in 16-bit samples (a full-scale sine is +3.14 dBm0).
DBM0_RMS = 32767.0 / math.sqrt(2.0) * 10.0 ** (-3.14 / 20.0)


def active_level_dbm0(samples, rate=RATE):
    """The active level of ``samples`` in dBm0 (``-inf`` for silence)."""
    power = _active_power(np.asarray(samples, dtype=np.float64), rate)
    return 10 * math.log10(power / DBM0_RMS**2) if power > 0 else -math.inf


def set_active_level(samples, level_dbm0, rate=RATE):
    """``samples`` scaled so their active level is ``level_dbm0``: int16, clipped.

    Silence stays silence.
    """
    x = np.asarray(samples, dtype=np.float64)
    power = _active_power(x, rate)
    if power <= 0:
        return np.zeros(len(x), np.int16)
    gain = DBM0_RMS * 10 ** (level_dbm0 / 20) / math.sqrt(power)
    return np.clip(np.rint(x * gain), -32768, 32767).astype(np.int16)


def _active_power(x, rate):
    frame = rate // 50
    n = len(x) // frame
    if n == 0:
        return float(np.mean(x * x)) if len(x) else 0.0
    power = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    floor = (DBM0_RMS * 10 ** (-70 / 20)) ** 2
    active = power > floor
    for _ in range(2):  # two passes: the threshold follows the active mean
        if not active.any():
            return 0.0
        active = power > max(np.mean(power[active]) * 10 ** (-15.9 / 10), floor)
    return float(np.mean(power[active])) if active.any() else 0.0
