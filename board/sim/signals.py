"""The line signals the simulator puts on the line, at 8 kHz, as int16 arrays.

This is the one module that uses :mod:`firmware.dsp.generate` (the signalling
issue's generators: DTMF, caller ID, alert and call-progress tones). The
timeline only calls the functions below, whose lengths and timing are fixed
here, so a change in the generators' signatures touches this file only.

Where ``firmware.dsp.generate`` (or one of its functions) is not available
yet, a plain numpy fall-back marked ``FALLBACK`` is used instead. The fall-backs
follow the same standards (REFERENCE.md §2), but the real generators are the
reference: nothing outside this module may depend on which one ran.

Levels are dBm0; a 0 dBm0 sine has an RMS of :data:`DBM0_RMS`.
"""

import functools
import math

import numpy as np

from firmware.dsp.levels import DBM0_RMS, active_level_dbm0, set_active_level  # noqa: F401

RATE = 8000

DTMF_LEVEL_DBM0 = -8.0
CID_LEVEL_DBM0 = -13.5
ALERT_LEVEL_DBM0 = -13.5


@functools.lru_cache(maxsize=None)
def _generator(name):
    """``firmware.dsp.generate.<name>``, or None while it does not exist."""
    try:
        from firmware.dsp import generate
    except ImportError:
        return None
    return getattr(generate, name, None)


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
    gen = _generator("dtmf")
    if gen is not None:
        return _fit(gen(digits, level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms), n)
    return _fit(_fallback_dtmf(digits, on_ms, off_ms, level_dbm0), n)


def caller_id(standard, number=None, name=None, datetime=None, absence=None,
              level_dbm0=CID_LEVEL_DBM0):
    """A caller-ID transmission: ``standard`` is "v23", "bell202" or "dtmf".

    The audio starts with the first bit (FSK) or tone (DTMF) and ends with the
    last one; the timeline places it.
    """
    gen = _generator("caller_id")
    if gen is not None:
        out = gen(standard, number=number, name=name, datetime=datetime, absence=absence,
                  level_dbm0=level_dbm0)
    elif standard == "dtmf":
        out = _fallback_dtmf_cid(number, absence)
    else:
        out = _fallback_fsk_cid(standard, number, name, datetime, absence, level_dbm0)
    out = np.asarray(out, dtype=np.int16)
    # A DTMF generator ends with the gap after the last tone: the rules time the
    # ring from the last tone, so drop the trailing silence.
    nonzero = np.flatnonzero(out)
    return out[:nonzero[-1] + 1].copy() if len(nonzero) else out[:0].copy()


def alert_tone(duration_ms=100, level_dbm0=ALERT_LEVEL_DBM0):
    """The dual-tone alert signal (2130 + 2750 Hz) that precedes UK caller ID."""
    n = samples_for_ms(duration_ms)
    gen = _generator("alert_tone")
    if gen is not None:
        return _fit(gen(level_dbm0, duration_ms=duration_ms), n)
    return _tones((2130, 2750), n, level_dbm0)  # FALLBACK


def call_progress(name, country, duration_ms):
    """``duration_ms`` of the country's "dial", "busy", "unobtainable" or "ringback" tone."""
    n = samples_for_ms(duration_ms)
    if n <= 0:
        return np.zeros(0, np.int16)
    gen = _generator("call_progress")
    if gen is not None:
        return _fit(gen(name, country, int(math.ceil(duration_ms))), n)
    return _fit(_fallback_call_progress(name, country, n), n)


# --------------------------------------------------------------- FALLBACK
# Plain numpy stand-ins, used only while firmware.dsp.generate lacks a function.

_DTMF_ROWS = "123A", "456B", "789C", "*0#D"
_DTMF_LOW = (697, 770, 852, 941)
_DTMF_HIGH = (1209, 1336, 1477, 1633)


def _tones(freqs, n, level_dbm0, phase_n0=0):
    t = (np.arange(n) + phase_n0) / RATE
    amp = DBM0_RMS * math.sqrt(2) * 10 ** (level_dbm0 / 20)
    out = sum(amp * np.sin(2 * np.pi * f * t) for f in freqs)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def _fallback_dtmf(digits, on_ms, off_ms, level_dbm0):  # FALLBACK
    parts = []
    gap = np.zeros(samples_for_ms(off_ms), np.int16)
    for i, d in enumerate(digits):
        row = next(r for r, chars in enumerate(_DTMF_ROWS) if d in chars)
        col = _DTMF_ROWS[row].index(d)
        if i:
            parts.append(gap)
        parts.append(_tones((_DTMF_LOW[row], _DTMF_HIGH[col]), samples_for_ms(on_ms), level_dbm0))
    return np.concatenate(parts)


def _fallback_dtmf_cid(number, absence):  # FALLBACK
    if absence:
        text = {"private": "B10", "unavailable": "B00"}[absence] + "C"
    else:
        text = "A" + number + "C"
    return _fallback_dtmf(text, 60, 60, -8.0)


def _fallback_fsk_cid(standard, number, name, datetime, absence, level_dbm0):  # FALLBACK
    params = []
    if datetime:
        params.append((0x01, datetime))
    if number:
        params.append((0x02, number))
    if absence:
        params.append((0x04, {"private": "P", "unavailable": "O"}[absence]))
    if name:
        params.append((0x07, name))
    body = b"".join(bytes([t, len(v)]) + v.encode("ascii") for t, v in params)
    msg = bytes([0x80, len(body)]) + body
    msg += bytes([(-sum(msg)) & 0xFF])
    bits = [i % 2 for i in range(300)] + [1] * 180
    for byte in msg:
        bits += [0] + [(byte >> i) & 1 for i in range(8)] + [1]
    bits += [1] * 4
    mark, space = (1300, 2100) if standard == "v23" else (1200, 2200)
    per_bit = RATE / 1200
    n = int(round(len(bits) * per_bit))
    idx = np.minimum((np.arange(n) / per_bit).astype(int), len(bits) - 1)
    freq = np.where(np.asarray(bits)[idx] == 1, mark, space)
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    amp = DBM0_RMS * math.sqrt(2) * 10 ** (level_dbm0 / 20)
    return np.rint(amp * np.sin(phase)).astype(np.int16)


_PROGRESS = {  # (frequencies, cadence in ms: on, off, on, off ...; () = steady)
    ("uk", "dial"): ((350, 450), ()),
    ("uk", "busy"): ((400,), (375, 375)),
    ("uk", "unobtainable"): ((400,), ()),
    ("uk", "ringback"): ((400, 450), (400, 200, 400, 2000)),
    ("us", "dial"): ((350, 440), ()),
    ("us", "busy"): ((480, 620), (500, 500)),
    ("us", "unobtainable"): ((480, 620), (250, 250)),  # reorder
    ("us", "ringback"): ((440, 480), (2000, 4000)),
}


def _fallback_call_progress(name, country, n):  # FALLBACK
    freqs, cadence = _PROGRESS[(country, name)]
    out = _tones(freqs, n, -13.0 - 10 * math.log10(len(freqs)))
    if cadence:
        period = sum(samples_for_ms(c) for c in cadence)
        pos = np.arange(n) % period
        on = np.zeros(n, bool)
        start = 0
        for i, c in enumerate(cadence):
            length = samples_for_ms(c)
            if i % 2 == 0:
                on |= (pos >= start) & (pos < start + length)
            start += length
        out[~on] = 0
    return out
