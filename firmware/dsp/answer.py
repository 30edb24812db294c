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
second without voice comes before the next. The line's detector runs it only
until the call is answered (the box's ``LineDsp.answered()``, told at the
supervisor's answer: an onset it does not take for one, the caller's voice
between two keys, leaves the watch running), as it costs about twice what the
rest of the detector does.
"""

import numpy as np

from telephony.levels import DBM0_RMS

FRAME, HOP = 256, 128  # 32 ms frames every 16 ms; 31.25 Hz bins
GUARD = 3  # frames (48 ms) either side of a tonal frame
WINDOW, NEEDED = 16, 12  # voiced frames out of the last WINDOW for an onset
REARM_FRAMES = 32  # frames without voice (0.5 s) before the next onset
MIN_DBM0 = -42.0
MAX_TONAL = 0.9


class VoiceOnset:
    """Finds voice onsets in a line's audio; :meth:`feed` returns their sample positions."""

    def __init__(self):
        self._window = np.hanning(FRAME).astype(np.float32)
        self._min_power = FRAME * (DBM0_RMS * 10 ** (MIN_DBM0 / 20)) ** 2
        self._rest = np.zeros(0, np.int16)
        self._next = 0  # sample position of the next frame's start
        # Frames classified but not decided yet (the GUARD frames after them are
        # needed), with GUARD decided frames before them for context.
        self._starts = np.zeros(0, np.int64)
        self._loud = np.zeros(0, bool)
        self._tonal = np.zeros(GUARD, bool)
        self._recent = []  # (frame start, voiced) of the last WINDOW frames
        self._voiced_count = 0
        self._quiet = REARM_FRAMES
        self._armed = True

    def feed(self, samples):
        """Process int16 ``samples``; return the start positions (samples counted from the
        first sample ever fed) of the voice onsets found."""
        x = np.concatenate((self._rest, samples)) if len(self._rest) else np.asarray(samples)
        count = max(0, (len(x) - FRAME) // HOP + 1)
        if not count:
            self._rest = x.copy()
            return []
        frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:count]
        loud, tonal = self._classify(frames.astype(np.float32))
        self._starts = np.concatenate((self._starts, self._next + HOP * np.arange(count)))
        self._loud = np.concatenate((self._loud, loud))
        self._tonal = np.concatenate((self._tonal, tonal))
        self._rest = x[count * HOP :].copy()
        self._next += count * HOP
        return self._decide()

    def _decide(self):
        """Decide every frame whose GUARD followers are known; returns onsets found."""
        n = len(self._starts) - GUARD
        if n <= 0:
            return []
        # Tonal anywhere within GUARD frames either side.
        t = self._tonal[: n + 2 * GUARD].astype(np.int8)
        near = np.convolve(t, np.ones(2 * GUARD + 1, np.int8), "valid") > 0
        voiced = self._loud[:n] & ~near[:n]
        starts = self._starts[:n]
        self._starts, self._loud = self._starts[n:], self._loud[n:]
        self._tonal = self._tonal[n:]
        found = []
        if not voiced.any() and self._voiced_count == 0:
            # Nothing voiced: only the quiet count moves (the common case).
            self._quiet += n
            self._armed = self._armed or self._quiet >= REARM_FRAMES
            self._recent = [(s, False) for s in starts[-WINDOW:].tolist()]
            return found
        recent = self._recent
        for start, v in zip(starts.tolist(), voiced.tolist(), strict=False):
            recent.append((start, v))
            self._voiced_count += v
            if len(recent) > WINDOW:
                self._voiced_count -= recent.pop(0)[1]
            self._quiet = 0 if v else self._quiet + 1
            if self._quiet >= REARM_FRAMES:
                self._armed = True
            if self._armed and self._voiced_count >= NEEDED:
                found.append(next(s for s, w in recent if w))
                self._armed = False
        return found

    def _classify(self, frames):
        """(loud, tonal) flags of each frame."""
        power = np.einsum("ij,ij->i", frames, frames)
        loud = power >= self._min_power
        tonal = np.zeros(len(frames), bool)
        if not loud.any():
            return loud, tonal
        spectrum = np.abs(np.fft.rfft(frames[loud] * self._window, axis=1)) ** 2
        total = spectrum.sum(axis=1)
        # Energy of each bin with its neighbours; the strongest peak, then the next one
        # at least 3 bins away.
        s3 = spectrum[:, :-2] + spectrum[:, 1:-1] + spectrum[:, 2:]
        k1 = np.argmax(s3, axis=1)
        rows = np.arange(len(s3))
        first = s3[rows, k1]
        away = np.abs(np.arange(s3.shape[1])[None, :] - k1[:, None]) >= 3
        second = np.max(np.where(away, s3, 0), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, (first + second) / total, 1.0)
        tonal[loud] = share >= MAX_TONAL
        return loud, tonal
