"""Speech and silence in a recording, found as it is recorded: for the call page's timeline.

:class:`SpeechActivity` is fed the same 8 kHz samples as the recording's
encoder and keeps the spans where someone spoke: 20 ms frames whose level is
at least :data:`THRESHOLD_DBM0`, joined across pauses shorter than
:data:`HANGOVER_MS` (the gaps between words), spans shorter than
:data:`MIN_SPAN_MS` dropped (a click, a key tone's edge). The spans are
seconds from the recording's first sample; what is not in a span is silence
(or the line's noise). They are stored beside the recording when it is sealed
(:meth:`firmware.recording.store.RecordingStore.set_speech`) and removed with
it. No audio is kept: only times.
"""

import numpy as np

from telephony.levels import DBM0_RMS

FRAME_MS = 20
THRESHOLD_DBM0 = -45.0  # a quiet line's noise floor is near -65 dBm0, speech near -18
HANGOVER_MS = 300
MIN_SPAN_MS = 100
MAX_SPANS = 2000  # a very long call keeps its first spans; the rest shows as one


class SpeechActivity:
    """Speech spans of a stream of int16 samples at ``rate`` Hz."""

    def __init__(self, rate=8000):
        self.rate = rate
        self.frame = rate * FRAME_MS // 1000
        self._threshold_sq = (DBM0_RMS * 10 ** (THRESHOLD_DBM0 / 20)) ** 2 * self.frame
        # Audio waits here until a second of it is in: measuring 20 ms at a time costs
        # more in numpy's per-call overhead than the measuring itself.
        self._pending = []
        self._pending_n = 0
        self._frames = 0  # frames measured
        self._spans = []  # [from_frame, to_frame) of speech, merged as they come

    def feed(self, samples):
        """Take the next ``samples`` (int16) of the recording."""
        # A copy: the caller's buffer may be reused for the next audio.
        self._pending.append(np.array(samples, np.int16))
        self._pending_n += len(samples)
        if self._pending_n >= self.rate:
            self._measure()

    def _measure(self):
        """Measure every whole frame waiting; keep the rest for the next."""
        x = (
            np.concatenate(self._pending).astype(np.int16, copy=False)
            if self._pending
            else np.zeros(0, np.int16)
        )
        n = len(x) // self.frame
        rest = x[n * self.frame :]
        self._pending, self._pending_n = ([rest] if len(rest) else []), len(rest)
        if not n:
            return
        frames = x[: n * self.frame].astype(np.float64).reshape(n, self.frame)
        loud = np.flatnonzero(np.einsum("ij,ij->i", frames, frames) >= self._threshold_sq)
        hang = HANGOVER_MS // FRAME_MS
        for i in (loud + self._frames).tolist():
            if self._spans and i - self._spans[-1][1] <= hang:
                self._spans[-1][1] = i + 1
            elif len(self._spans) < MAX_SPANS:
                self._spans.append([i, i + 1])
            else:
                self._spans[-1][1] = i + 1
        self._frames += n

    def spans(self):
        """``[(from_s, to_s), ...]`` of speech, seconds from the first sample (a last
        part-frame, under 20 ms, is not measured)."""
        self._measure()
        min_frames = MIN_SPAN_MS / FRAME_MS
        s = FRAME_MS / 1000
        return [(round(a * s, 2), round(b * s, 2)) for a, b in self._spans if b - a >= min_frames]
