"""The line signals the simulator puts on the line, at 8 kHz, as int16 arrays.

The audio comes from :mod:`telephony.generate` (spandsp's own transmitters:
DTMF, caller ID, alert and call-progress tones). The timeline only calls the
functions below, whose lengths and timing are fixed here, so a change in the
generators' signatures touches this file only.

Levels are dBm0; a 0 dBm0 sine has an RMS of :data:`telephony.levels.DBM0_RMS`.
"""

import math

import numpy as np

from telephony import generate

RATE = 8000

DTMF_LEVEL_DBM0 = -8.0
CID_LEVEL_DBM0 = -13.5
ALERT_LEVEL_DBM0 = -13.5


def samples_for_ms(ms):
    return int(round(ms * RATE / 1000))


def _fit(samples, n):
    """``samples`` as int16, cut or zero-padded to exactly ``n`` samples."""
    samples = np.asarray(samples, dtype=np.int16)
    if len(samples) >= n:
        return samples[:n].copy()
    return np.concatenate([samples, np.zeros(n - len(samples), np.int16)])


def dtmf(digits, on_ms=70, off_ms=80, level_dbm0=DTMF_LEVEL_DBM0):
    """DTMF ``digits``: each tone ``on_ms`` long, ``off_ms`` apart.

    Exactly ``len(digits) * on + (len(digits) - 1) * off`` long: the audio
    ends with the last tone, so its end is the end of dialling.
    """
    n = len(digits) * samples_for_ms(on_ms) + (len(digits) - 1) * samples_for_ms(off_ms)
    return _fit(generate.dtmf(digits, level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms), n)


def caller_id(standard, number=None, name=None, datetime=None, absence=None, level_dbm0=CID_LEVEL_DBM0):
    """A caller-ID transmission: ``standard`` is "v23", "bell202" or "dtmf".

    The audio starts with the first bit (FSK) or tone (DTMF) and ends with the
    last one; the timeline places it.
    """
    out = generate.caller_id(
        standard, number=number, name=name, datetime=datetime, absence=absence, level_dbm0=level_dbm0
    )
    out = np.asarray(out, dtype=np.int16)
    # A DTMF generator ends with the gap after the last tone: the rules time the
    # ring from the last tone, so drop the trailing silence.
    nonzero = np.flatnonzero(out)
    return out[: nonzero[-1] + 1].copy() if len(nonzero) else out[:0].copy()


def alert_tone(duration_ms=100, level_dbm0=ALERT_LEVEL_DBM0):
    """The dual-tone alert signal (2130 + 2750 Hz) that precedes UK caller ID."""
    n = samples_for_ms(duration_ms)
    return _fit(generate.alert_tone(level_dbm0, duration_ms=duration_ms), n)


def call_progress(name, country, duration_ms):
    """``duration_ms`` of the country's "dial", "busy", "unobtainable" or "ringback" tone."""
    n = samples_for_ms(duration_ms)
    if n <= 0:
        return np.zeros(0, np.int16)
    return _fit(generate.call_progress(name, country, int(math.ceil(duration_ms))), n)
