"""DTMF receiver: spandsp's ``dtmf_rx`` with tuned parameters and sample-exact timing.

spandsp analyses 102-sample blocks (12.75 ms) with Goertzel filters and
declares a digit after two agreeing blocks, and its end after two blocks
without it.  We use its real-time callback, which reports each change with
the number of samples since the previous change; summing those gives the
absolute sample position of every change, so each digit is reported once,
when it ends.

spandsp's block logic alone cannot tell a 23 ms tone (must be rejected) from a
40 ms one (must be accepted): both can give two hit blocks, and with favourable
block alignment spandsp 0.0.6 does report some 23 ms tones.  So for each digit
spandsp reports, the envelope of the recent audio around it (2 ms frames) gives
the tone's real start, end and duration (to about 2 ms); digits shorter than
``min_on_ms`` are dropped.  This only measures what spandsp detected.

Tuning (see :data:`DEFAULT_PARAMS`): spandsp's defaults (8 dB normal and 4 dB
reverse twist) accept in practice only about 7 and 3 dB because the Goertzel
bins are not centred on every DTMF frequency; asking for 10 and 6 dB accepts
the required 8 and 4 dB and still rejects 12 dB.  The detection threshold is
raised from spandsp's -42 dBm0 to -36 dBm0: the acceptance range ends at
-25 dBm0, and speech quieter than that is never looked at.
"""

from dataclasses import dataclass

import numpy as np

from firmware.dsp.history import AudioHistory
from telephony import spandsp

BLOCK_SAMPLES = 102  # spandsp's DTMF_SAMPLES_PER_BLOCK
FRAME = 16  # 2 ms envelope frames


@dataclass(frozen=True)
class DtmfParams:
    """Parameters handed to spandsp's ``dtmf_rx_parms``.

    ``twist_db``: normal twist accepted (low group louder), ``reverse_twist_db``:
    high group louder; ``threshold_dbm0``: minimum level of each tone;
    ``filter_dialtone``: spandsp's 350/440 Hz notch filters.  ``min_on_ms``
    (ours, not spandsp's): shortest tone reported, measured from the envelope.
    """

    twist_db: int = 10
    reverse_twist_db: int = 6
    threshold_dbm0: int = -36
    filter_dialtone: bool = False
    min_on_ms: int = 32


DEFAULT_PARAMS = DtmfParams()


class DtmfReceiver:
    """One spandsp DTMF receiver.

    :meth:`feed` returns ``(digit, start_sample, end_sample)`` once per digit,
    when it has ended, with sample positions counted from the first sample
    ever fed.
    """

    HISTORY = 8000  # samples of past audio kept for measuring digits (1 s)

    def __init__(self, params=DEFAULT_PARAMS):
        self._sd = spandsp.load()
        ffi, lib = self._sd.ffi, self._sd.lib
        self._found = []
        self._error = None
        self._min_on = params.min_on_ms * 8
        self._recent = AudioHistory(self.HISTORY)
        self._callback = ffi.callback("void(void *, int, int, int)", self._report, onerror=self._on_error)
        self._state = self._sd.owned(lib.dtmf_rx_init(ffi.NULL, ffi.NULL, ffi.NULL), "dtmf_rx_free")
        lib.dtmf_rx_set_realtime_callback(self._state, self._callback, ffi.NULL)
        lib.dtmf_rx_parms(
            self._state,
            int(params.filter_dialtone),
            params.twist_db,
            params.reverse_twist_db,
            params.threshold_dbm0,
        )
        self.samples = 0  # samples fed so far
        self._last_change = 0  # sample position of the last reported change
        self._chunk_start = 0
        self._digit = None  # (digit, start_sample) while a digit is on

    def feed(self, samples):
        """Process a C-contiguous int16 array (any length); return the digits that ended."""
        n = len(samples)
        if n:
            self._recent.append(samples)
            self._chunk_start = self.samples
            self._sd.lib.dtmf_rx(self._state, self._sd.int16_ptr(samples), n)
            self.samples += n
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        found, self._found = self._found, []
        out = []
        for digit, start, end in found:
            start, end = self._measure(start, end)
            if end - start >= self._min_on:
                out.append((digit, start, end))
        return out

    def _measure(self, start, end):
        """Refine a digit's (start, end) from the audio envelope around spandsp's estimate."""
        margin = FRAME * 8
        lo, hi = start - margin, min(end + margin, self._recent.end)
        if lo < self._recent.start or hi - lo < 4 * FRAME:
            return start, end  # too long ago to measure; keep spandsp's estimate
        seg = self._recent.get(lo, hi).astype(np.float32)
        frames = seg[: len(seg) - len(seg) % FRAME].reshape(-1, FRAME)
        energy = np.einsum("ij,ij->i", frames, frames)
        # the tone's level: the loudest 3-frame stretch; its edges: -6 dB
        level = np.convolve(energy, np.ones(3) / 3.0, mode="valid").max()
        above = np.flatnonzero(energy >= level / 4.0)
        if len(above) == 0:
            return start, end
        return lo + int(above[0]) * FRAME, lo + (int(above[-1]) + 1) * FRAME

    def _report(self, _user, code, _level, delay):
        # Absolute position of the block end at which spandsp decided the change.
        # spandsp saturates `delay` after 2**31 samples (3 days of silence):
        # clamp to the current chunk so positions stay sane.
        pos = max(self._last_change + delay, self._chunk_start)
        self._last_change = pos
        if self._digit is not None:
            digit, start = self._digit
            self._digit = None
            # The tone ended inside the first of the two blocks without it.
            end = pos - 2 * BLOCK_SAMPLES + BLOCK_SAMPLES * 2 // 5
            self._found.append((digit, start, max(end, start + 1)))
        if code:
            # Declared after two hit blocks; the tone began in the block before them.
            self._digit = (chr(code), max(0, pos - 2 * BLOCK_SAMPLES - BLOCK_SAMPLES * 2 // 5))

    def _on_error(self, exc_type, exc, _tb):
        # Exceptions cannot cross the C boundary; re-raised after dtmf_rx returns.
        self._error = exc

    @property
    def in_digit(self):
        """True while spandsp reports a digit on (its end not yet seen)."""
        return self._digit is not None
