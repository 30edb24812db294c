"""Call-progress and alert tone receiver: spandsp's ``super_tone_rx``.

``super_tone_rx`` runs Goertzel filters on 128-sample blocks (16 ms) for the
frequencies of the tones it is given, turns the blocks into segments (which
pair of frequencies, or none, and for how long) and matches the last few
segments against each tone's cadence.  Each tone below is a list of
``(f1 Hz, f2 Hz, min ms, max ms)`` elements (0 Hz = no tone, max 0 = no limit);
a tone is recognised when the whole list has been seen, the last element for
at least its minimum.  Cadences are the country's nominal values with about
±20 % tolerance; each tone needs enough of its cadence to be told apart from
the others of its country (UK busy 0.375/0.375 vs congestion 0.4/0.35/0.225/0.525,
US busy 0.5/0.5 vs reorder 0.25/0.25), so recognition takes 0.5–3 s.

The segment callback reports every finished segment with its length, which
gives the sample position of every segment boundary, so a tone is reported
with the time its cadence started (to a block, 16 ms).

spandsp's segmenter keeps the previous segment going while the blocks
disagree, so in noise or speech a random pair of frequencies can seem to last
for a second.  Every tone spandsp recognises is therefore checked on the audio
of its last "on" segment: the named frequencies must hold at least half of its
energy (white noise puts about 3 % there, a real tone nearly all).  A real
alert signal also follows a quiet line (≥100 ms after the polarity reversal),
so an alert needs the 100 ms before it to be 10 dB quieter than itself; this
keeps FSK caller ID in noise (V.23's 2100 Hz space is in the 2130 Hz bin)
from being taken for one.

spandsp counts any block above -42 dBm0 as "something", so line noise in the
silent parts of a cadence would break it up.  Blocks quieter than
``SQUELCH_DBM0`` (-36 dBm0) are therefore passed to spandsp as silence, so
tones quieter than that are not recognised.

Most of a line's life is such silence (an idle line, the pauses of a call), and
once a silence has lasted longer than any element of any tone can last or needs,
spandsp does nothing with more of it but count it: each tone's cadence test
gives the same answer for any longer silence, so no tone can start or end. From
then on (``SKIP_MARGIN_BLOCKS`` after that length) silent blocks are not passed
to spandsp but counted here, and added to the silence's length when spandsp
reports it (the next segment it reports is that silence). The tones found, and
their positions, are the same; the receiver's cost on a silent line is the
squelch's.
"""

import weakref

import numpy as np

from firmware.dsp.history import AudioHistory
from telephony import countries, spandsp
from telephony.levels import DBM0_RMS

BLOCK_SAMPLES = 128  # spandsp SUPER_TONE_BINS
SAMPLES_PER_MS = 8

ALERT = ("alert", ((2130, 2750, 64, 144), (0, 0, 30, 0)))


def country_tones(country):
    """The tones to recognise on a line of ``country``: its call-progress tones and the alert.

    ``[(name, elements)]`` as :class:`ToneReceiver` takes them (see
    :data:`telephony.countries.ToneSpec`); :class:`ValueError` for an unknown country.
    """
    return list(countries.country(country).tone_detection) + [ALERT]


#: A tone recognised again this soon after it was last recognised is the same tone.
REPEAT_GAP_MS = 1500
ALERT_QUIET_BEFORE = 800  # samples (100 ms) that must be quiet before an alert
ALERT_QUIET_DB = 10.0
HISTORY = 4 * 8000  # samples of recent audio kept for the checks (US ringback: 2 s on + 1 s off)
TONAL_FRACTION = 0.5  # share of a segment's energy that must be at the tone's frequencies
EDGE_MS = 24  # trimmed from each end of a segment before checking it
SQUELCH_DBM0 = -36.0
BLOCK_MS = BLOCK_SAMPLES // SAMPLES_PER_MS  # 16
# Silent blocks given to spandsp, beyond the longest tone element, before the rest of a
# silence is counted instead (spandsp takes two blocks to settle on a new segment).
SKIP_MARGIN_BLOCKS = 4


def tonal_fraction(samples, freqs_hz, frame=BLOCK_SAMPLES):
    """Share of the energy of ``samples`` at ``freqs_hz`` (1.0 for a pure tone), in 16 ms frames."""
    n = len(samples) - len(samples) % frame
    if n == 0:
        return 0.0
    frames = samples[:n].reshape(-1, frame).astype(np.float64)
    total = float(np.einsum("ij,ij->", frames, frames))
    if total <= 0:
        return 0.0
    k = np.arange(frame) * (-2j * np.pi / 8000.0)
    tone = sum(float(np.sum(np.abs(frames @ np.exp(k * f)) ** 2)) for f in freqs_hz)
    return 2.0 * tone / (frame * total)


def _ordered(elements, order):
    """(f1, f2) of each element in the order spandsp will number them.

    spandsp numbers frequencies as it first meets them and matches a block's
    pair as (lower number, higher number), so each element must name its
    frequencies in that order.
    """
    out = []
    for f1, f2, min_ms, max_ms in elements:
        pair = [f for f in (f1, f2) if f]
        for f in pair:
            if f not in order:
                order.append(f)
        pair.sort(key=order.index)
        pair += [0] * (2 - len(pair))
        out.append((pair[0], pair[1], min_ms, max_ms))
    return out


class ToneReceiver:
    """super_tone_rx with the tones of ``country``.

    ``names``: the tones to look for (default all of the country's; each
    frequency monitored costs a Goertzel filter per sample).  :meth:`feed`
    returns ``(name, start_sample)`` for every tone recognised, ``name`` as
    in :func:`country_tones` (``"alert"`` for the 2130 + 2750 Hz alert signal) and
    positions counted from the first sample fed.
    """

    def __init__(self, country="uk", names=None):
        tones = country_tones(country)  # ValueError for an unknown country
        self._sd = spandsp.load()
        ffi, lib = self._sd.ffi, self._sd.lib
        self._tones = [t for t in tones if names is None or t[0] in names]
        desc = lib.super_tone_rx_make_descriptor(ffi.NULL)
        if desc == ffi.NULL:
            raise MemoryError("spandsp could not allocate a tone descriptor")
        self._desc = ffi.gc(desc, lib.super_tone_rx_free_descriptor)
        order = []
        for _name, elements in self._tones:
            tone = lib.super_tone_rx_add_tone(self._desc)
            for f1, f2, min_ms, max_ms in _ordered(elements, order):
                lib.super_tone_rx_add_element(self._desc, tone, f1, f2, min_ms, max_ms)
        # The callbacks hold this receiver weakly: bound methods would make a
        # receiver <-> callback cycle that only the cyclic GC frees, with its history.
        self._tone_cb = ffi.callback(
            "void(void *, int, int, int)", _weak(self, "_on_tone"), onerror=_weak(self, "_on_error")
        )
        self._seg_cb = ffi.callback(
            "void(void *, int, int, int)", _weak(self, "_on_segment"), onerror=_weak(self, "_on_error")
        )
        self._state = self._sd.owned(
            lib.super_tone_rx_init(ffi.NULL, self._desc, self._tone_cb, ffi.NULL), "super_tone_rx_free"
        )
        lib.super_tone_rx_segment_callback(self._state, self._seg_cb)
        self._segment_starts = [0]  # ms positions of recent segment starts, last = current
        self._found = []
        self._last_ms = {}  # name -> ms position it was last seen active
        self._active = None
        self._error = None
        self.samples = 0  # samples processed by spandsp (whole blocks)
        self._recent = AudioHistory(HISTORY)
        self._rest = np.zeros(0, dtype=np.int16)  # last partial block, not yet given to spandsp
        self._squelch = BLOCK_SAMPLES * (DBM0_RMS * 10.0 ** (SQUELCH_DBM0 / 20.0)) ** 2
        longest_ms = max(max(lo, hi) for _name, elements in self._tones for _f1, _f2, lo, hi in elements)
        self._skip_after = -(-longest_ms // BLOCK_MS) + SKIP_MARGIN_BLOCKS  # silent blocks
        self._silent_run = 0  # squelched blocks in a row so far (given to spandsp or counted)
        self._skipped_ms = 0  # silence counted here, not yet in a segment spandsp reported

    def feed(self, samples):
        """Process int16 samples; return a list of ``(name, start_sample)``."""
        if len(samples):
            self._recent.append(samples)
            # whole 16 ms blocks, aligned with spandsp's, squelched
            pending = np.concatenate((self._rest, samples)) if len(self._rest) else samples
            whole = len(pending) - len(pending) % BLOCK_SAMPLES
            self._rest = pending[whole:]
            if whole:
                blocks = pending[:whole].reshape(-1, BLOCK_SAMPLES)
                power = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
                quiet = power < self._squelch
                if self._silent_run >= self._skip_after and quiet.all():
                    # A long silence going on: spandsp would only count it (module docstring).
                    self._skipped_ms += len(blocks) * BLOCK_MS
                    self._silent_run += len(blocks)
                else:
                    self._run_spandsp(blocks, quiet)
                self.samples += whole
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        found, self._found = self._found, []
        return [(name, start) for name, start, check in found if self._check(name, start, *check)]

    def _run_spandsp(self, blocks, quiet):
        """Give spandsp whole blocks, the ``quiet`` ones (squelched) as silence."""
        if quiet.any():
            blocks = blocks.copy()
            blocks[quiet] = 0
            loud = np.flatnonzero(~quiet)
            self._silent_run = len(quiet) - 1 - int(loud[-1]) if len(loud) else self._silent_run + len(quiet)
        else:
            self._silent_run = 0
            if not blocks.flags.c_contiguous:
                blocks = np.ascontiguousarray(blocks)
        self._sd.lib.super_tone_rx(self._state, self._sd.int16_ptr(blocks), blocks.size)

    def _audio(self, start, end):
        return self._recent.get(start, end)

    def _check(self, name, start, lo, hi, freqs):
        """Whether a recognised tone holds up on the audio (see the module docstring)."""
        segment = self._audio(lo, hi)
        if len(segment) >= BLOCK_SAMPLES and tonal_fraction(segment, freqs) < TONAL_FRACTION:
            return False
        return name != "alert" or self._quiet_before(start)

    def _quiet_before(self, start):
        """Whether the 100 ms before ``start`` were 10 dB quieter than the 64 ms after it."""
        before = self._audio(start - BLOCK_SAMPLES - ALERT_QUIET_BEFORE, start - BLOCK_SAMPLES)
        before = before.astype(np.float32)
        during = self._audio(start + BLOCK_SAMPLES, start + 4 * BLOCK_SAMPLES).astype(np.float32)
        if len(during) == 0:
            return True
        p_during = float(np.dot(during, during)) / len(during)
        p_before = float(np.dot(before, before)) / len(before) if len(before) else 0.0
        return p_before * 10 ** (ALERT_QUIET_DB / 10) <= p_during

    def _on_segment(self, _user, _f1, _f2, duration_ms):
        # The silence counted and not given to spandsp belongs to this segment (the first
        # one spandsp reports after it, which is that silence).
        duration_ms += self._skipped_ms
        self._skipped_ms = 0
        starts = self._segment_starts
        starts.append(starts[-1] + duration_ms)
        if len(starts) > 12:
            del starts[0]
        if self._active is not None:
            self._last_ms[self._active] = starts[-1]

    def _on_tone(self, _user, code, _level, _delay):
        now_ms = self._segment_starts[-1]
        if self._active is not None:
            self._last_ms[self._active] = now_ms
        if code < 0:
            self._active = None
            return
        name, elements = self._tones[code]
        self._active = name
        steps = len(elements)
        starts = self._segment_starts
        start_ms = starts[-steps] if steps <= len(starts) else starts[0]
        last = self._last_ms.get(name)
        self._last_ms[name] = now_ms
        if last is not None and start_ms - last < REPEAT_GAP_MS:
            return
        # the last "on" element: check the part of it its minimum length guarantees
        i = max(k for k, element in enumerate(elements) if element[0])
        f1, f2, min_ms, _max_ms = elements[i]
        on_ms = starts[i - steps] if steps <= len(starts) else starts[0]
        check = (
            (on_ms + EDGE_MS) * SAMPLES_PER_MS,
            (on_ms + min_ms - EDGE_MS // 3) * SAMPLES_PER_MS,
            [f for f in (f1, f2) if f],
        )
        # a segment is confirmed one block after it starts
        self._found.append((name, max(0, start_ms * SAMPLES_PER_MS - BLOCK_SAMPLES // 2), check))

    def _on_error(self, exc_type, exc, _tb):
        self._error = exc


def _weak(obj, name):
    """A function calling ``obj.<name>(...)`` that does not keep ``obj`` alive."""
    ref = weakref.ref(obj)

    def call(*args):
        target = ref()
        if target is not None:
            return getattr(target, name)(*args)
        return None

    return call
