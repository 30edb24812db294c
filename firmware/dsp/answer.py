"""Voice onset on an off-hook line: evidence that an outbound call was answered.

An analogue line says nothing when the far end answers unless the exchange
reverses the polarity. What the caller hears does: dial tone, DTMF and the
ringback tone are one or two pure tones, a person or a voice menu is not.
:class:`VoiceOnset` looks at 32 ms frames every 16 ms. A frame is *tonal*
when its two strongest spectral peaks (±1 bin of 31 Hz) hold 90 % of its
energy or more: a call-progress tone or a DTMF key holds 99 %, speech about
60 % (rarely over 80 %). A tone switched on or off makes a click that is not
tonal, so a frame is *voiced* only when it is loud enough (above -42 dBm0),
not tonal, and no frame within 48 ms of it is tonal (any tone of 48 ms or
more has a whole frame to itself). A voice onset is 12 voiced frames out of
16 (a quarter of a second), dated at the first of them; after one, half a
second without voice comes before the next.
"""

import numpy as np

FRAME, HOP = 256, 128               # 32 ms frames every 16 ms; 31.25 Hz bins
GUARD = 3                           # frames (48 ms) either side of a tonal frame
WINDOW, NEEDED = 16, 12             # voiced frames out of the last WINDOW for an onset
REARM_FRAMES = 32                   # frames without voice (0.5 s) before the next onset
MIN_DBM0 = -42.0
MAX_TONAL = 0.9
DBM0_RMS = 16090.0


class VoiceOnset:
    """Finds voice onsets in a line's audio; :meth:`feed` returns their sample positions."""

    def __init__(self):
        self._window = np.hanning(FRAME)
        self._min_power = FRAME * (DBM0_RMS * 10 ** (MIN_DBM0 / 20)) ** 2
        self._rest = np.zeros(0, np.int16)
        self._next = 0                  # sample position of the next frame's start
        self._flags = []                # (frame start, loud, tonal) not yet decided
        self._recent = []               # (frame start, voiced) of the last WINDOW frames
        self._tonal_seen = -10 ** 9     # frame index of the last tonal frame
        self._index = 0                 # index of the next frame to decide
        self._quiet = REARM_FRAMES
        self._armed = True

    def feed(self, samples):
        """Process int16 ``samples``; return the start positions (samples counted from the
        first sample ever fed) of the voice onsets found."""
        x = np.concatenate((self._rest, samples)) if len(self._rest) else np.asarray(samples)
        count = max(0, (len(x) - FRAME) // HOP + 1)
        if count:
            idx = np.arange(count)[:, None] * HOP + np.arange(FRAME)[None, :]
            frames = x[idx].astype(np.float64)
            loud, tonal = self._classify(frames)
            base = self._next
            self._flags.extend((base + i * HOP, bool(loud[i]), bool(tonal[i]))
                               for i in range(count))
            self._rest = x[count * HOP:].copy()
            self._next += count * HOP
        else:
            self._rest = x.copy()
        return self._decide()

    def _decide(self):
        found = []
        flags = self._flags
        # A frame is decided once the GUARD frames after it are known.
        while len(flags) > 2 * GUARD:
            start, loud, tonal = flags[GUARD]
            around = any(t for _s, _l, t in flags[:2 * GUARD + 1])
            voiced = loud and not around
            del flags[0]
            self._recent.append((start, voiced))
            del self._recent[:-WINDOW]
            self._quiet = 0 if voiced else self._quiet + 1
            if self._quiet >= REARM_FRAMES:
                self._armed = True
            if self._armed and sum(v for _s, v in self._recent) >= NEEDED:
                found.append(next(s for s, v in self._recent if v))
                self._armed = False
        return found

    def _classify(self, frames):
        power = np.einsum("ij,ij->i", frames, frames)
        spectrum = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        total = spectrum.sum(axis=1)
        top = np.zeros(len(frames))
        rows = np.arange(len(frames))
        for _ in range(2):
            k = np.argmax(spectrum, axis=1)
            for d in (-1, 0, 1):
                j = np.clip(k + d, 0, spectrum.shape[1] - 1)
                top += spectrum[rows, j]
                spectrum[rows, j] = 0
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, top / total, 1.0)
        return power >= self._min_power, share >= MAX_TONAL
