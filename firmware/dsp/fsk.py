"""FSK caller-ID receiver: spandsp's ``fsk_rx`` demodulator plus message framing.

Why ``fsk_rx`` and not ``adsi_rx``: spandsp 0.0.6's ``adsi_rx`` wraps this same
demodulator, but it drops a message with a bad checksum silently (a log line
only), does not expose framing errors or where a message started, and gives no
access to its receiver's -30 dBm0 carrier cutoff.  The issue needs all of
those (a counted ``checksum``/``framing`` error, never a wrong number, caller ID
down to -36 dBm0).  So spandsp demodulates (``fsk_rx``) and frames the
characters (``async_rx``: start bit, 8 data bits LSB first, stop bit; the bits
go from one to the other in C), and only the message assembly, which
``adsi_rx`` does in a few lines of C, is done here, per character.

Front end (numpy, cheap): a linear-phase FIR band-pass around the two tones
removes the noise outside the FSK band (spandsp's one-baud correlators are
wide open to it; this is worth several dB of S/N), and a level gate skips the
demodulator entirely while the line is quiet.

Two demodulators listen to every loud block: one after the band-pass, one on
the signal as it came (as spandsp's own ``adsi_rx`` does).  Real senders are
not all as clean as ours: one that restarts its oscillator for each character
puts a phase jump at every character boundary, a broadband click that the
band-pass smears over several bits (its 95 taps span 14 bits), so the
filtered path loses the framing while the unfiltered one still frames every
character.  Noise is the opposite case.  A message is reported from whichever
path frames it with a good checksum (so never a wrong number: both check it),
once; a path's error is held for :data:`ERROR_HOLD` samples and dropped when
the other path decoded a message over the same stretch of signal.
"""

import numpy as np

from telephony import spandsp
from telephony.countries import FSK_MODULATIONS
from telephony.levels import DBM0_RMS

SAMPLE_RATE = 8000
SUB_BLOCK = 80  # gate and timing resolution: 10 ms


KNOWN_TYPES = (0x04, 0x06, 0x80, 0x82)
CHAR_SAMPLES = 10 * SAMPLE_RATE // 1200  # one start-8-stop character at 1200 bit/s
# Between the last channel-seizure character and the message there are at least
# 55 mark bits (BT's shortest); between the characters of a message at most
# ~16.7 ms.  A silence of 40 ms between characters therefore starts a message.
START_GAP = 320
SEIZURE_CHARS = 3  # 0x55 characters in a row that make a channel seizure
SEIZURE_MAX_AGE = 300 * SAMPLE_RATE // 1200  # seizure to message: at most ~300 mark bits
# Longest message (255 bytes + header and checksum, 10 bits each at 1200 bit/s): a path's
# error waits this long for the other path to finish the same message.
ERROR_HOLD = 258 * CHAR_SAMPLES
SAME_MESSAGE = 40 * CHAR_SAMPLES  # two paths' reports of one message end this close


def design_bandpass(low_hz, high_hz, taps):
    """Blackman-windowed sinc band-pass FIR, unity gain at the band centre."""
    n = np.arange(taps) - (taps - 1) / 2.0
    lo, hi = low_hz / SAMPLE_RATE, high_hz / SAMPLE_RATE
    h = 2 * hi * np.sinc(2 * hi * n) - 2 * lo * np.sinc(2 * lo * n)
    h *= np.blackman(taps)
    centre = (lo + hi) / 2.0
    gain = abs(np.sum(h * np.exp(-2j * np.pi * centre * np.arange(taps))))
    return (h / gain).astype(np.float32)


class Assembler:
    """Caller-ID message assembly from the characters spandsp's ``async_rx`` frames.

    Produces ``(kind, value, start_sample, end_sample)`` tuples in
    :attr:`results`: ``("message", bytes)`` for a complete message whose
    checksum is right (checksum byte removed), ``("error", reason)`` with
    reason ``"checksum"`` or ``"framing"`` for a message that broke off.
    Errors are only reported for credible messages, those that followed a
    channel seizure (alternating bits, framed as ``0x55`` characters), so
    noise and other signals on an idle line do not count as errors.
    ``start_sample`` is where the seizure started (else the message).
    """

    def __init__(self):
        self.results = []
        self.reset()

    def reset(self):
        """Forget everything in progress (carrier up or down)."""
        self.last_pos = -START_GAP
        self.run = 0  # 0x55 characters in a row
        self.run_start = 0
        self.seizure = None  # (start, end) of the last channel seizure
        self.msg = None  # bytearray while a message is being assembled
        self.msg_start = 0
        self.credible = False

    def carrier_down(self, pos):
        """The demodulator lost the signal at sample ``pos``."""
        if self.msg:
            self._fail("framing", pos)
        self.reset()

    def char(self, value, pos):
        """One character (framed by spandsp) that ended at sample ``pos``."""
        gap = pos - self.last_pos
        self.last_pos = pos
        if self.msg is not None:
            if gap < START_GAP:
                self._append(value, pos)
                return
            self._fail("framing", pos)
        if value == 0x55:
            if self.run == 0 or gap > 2 * CHAR_SAMPLES:
                self.run, self.run_start = 0, pos - CHAR_SAMPLES
            self.run += 1
            if self.run >= SEIZURE_CHARS:
                self.seizure = (self.run_start, pos)
            return
        self.run = 0
        if gap < START_GAP:
            return
        seized = self.seizure is not None and pos - self.seizure[1] <= SEIZURE_MAX_AGE
        if value not in KNOWN_TYPES:
            if seized:
                self.results.append(("error", "framing", self.seizure[0], pos))
                self.seizure = None
            return
        self.msg = bytearray([value])
        self.credible = seized
        self.msg_start = self.seizure[0] if seized else pos - CHAR_SAMPLES
        self.seizure = None

    def _append(self, value, pos):
        msg = self.msg
        msg.append(value)
        if len(msg) >= 3 and len(msg) == msg[1] + 3:
            if sum(msg) & 0xFF == 0:
                self.results.append(("message", bytes(msg[:-1]), self.msg_start, pos))
            elif self.credible:
                self.results.append(("error", "checksum", self.msg_start, pos))
            self.msg = None
            self.credible = False

    def _fail(self, reason, pos):
        if self.credible:
            self.results.append(("error", reason, self.msg_start, pos))
        self.msg = None
        self.credible = False


class FskReceiver:
    """V.23 or Bell 202 caller-ID receiver for one line.

    ``standard`` is ``"v23"`` or ``"bell202"``; ``cutoff_dbm0`` the carrier
    detect level of the (band-passed) signal.  :meth:`feed` returns the
    :class:`Assembler` results with sample positions counted from the first
    sample fed, corrected for the filter delay.

    Cost: while the line is quiet only a level measurement per 10 ms runs;
    the band-pass filter and spandsp's demodulator run on the 10 ms blocks
    that are loud (plus a 120 ms hang-over, so the demodulator sees the
    signal go).  A FIR filter's state is just its last inputs, so skipping
    the quiet blocks loses nothing.
    """

    HANGOVER_BLOCKS = 12

    def __init__(self, standard, cutoff_dbm0=-42.0):
        if standard not in FSK_MODULATIONS:
            raise ValueError("unknown FSK standard %r (%s)" % (standard, ", ".join(FSK_MODULATIONS)))
        self.standard = standard
        mod = FSK_MODULATIONS[standard]
        preset = getattr(spandsp, mod.spandsp_fsk)
        low, high, taps = mod.band_low_hz, mod.band_high_hz, mod.filter_taps
        self._sd = spandsp.load()
        self._fir = design_bandpass(low, high, taps)
        self._delay = (taps - 1) // 2
        # Raw input not yet processed, preceded by taps - 1 samples of history.
        self._raw = np.zeros(taps - 1, dtype=np.float32)
        # Demodulators: [0] after the band-pass, [1] on the unfiltered signal.
        self._paths = [_Demodulator(self._sd, preset, cutoff_dbm0) for _ in range(2)]
        self._held = []  # errors waiting for ERROR_HOLD: [kind, value, start, end, path]
        self._recent = []  # (message, start, end) of the last messages reported
        # Gate (on the raw signal) 6 dB below the cutoff: mean square per sample.
        self._gate_ms = (DBM0_RMS * 10.0 ** ((cutoff_dbm0 - 6.0) / 20.0)) ** 2
        self._since_loud = self.HANGOVER_BLOCKS + 1  # blocks since the last loud one
        self._skipping = False  # the last call was skip(): nothing held, nothing to reset
        self.samples = 0  # input samples processed (whole blocks)
        self.active_samples = 0  # how much audio reached the demodulator

    def feed(self, samples):
        """Process int16 samples; return the new :class:`Assembler` results."""
        self._skipping = False
        hist = len(self._fir) - 1
        x = samples.astype(np.float32)
        raw = np.concatenate((self._raw, x))
        n_blocks = (len(raw) - hist) // SUB_BLOCK
        quiet = self._since_loud > self.HANGOVER_BLOCKS and float(np.dot(x, x)) < self._gate_ms * SUB_BLOCK
        if n_blocks and quiet:
            # Fast path: the whole chunk holds less energy than one loud block.
            self.samples += n_blocks * SUB_BLOCK
            self._since_loud += n_blocks
        elif n_blocks:
            body = raw[hist : hist + n_blocks * SUB_BLOCK].reshape(n_blocks, SUB_BLOCK)
            loud = np.einsum("ij,ij->i", body, body) > self._gate_ms * SUB_BLOCK
            # blocks since the last loud block, carried over from the previous call
            idx = np.arange(n_blocks)
            last_loud = np.maximum.accumulate(np.where(loud, idx, -1 - self._since_loud))
            active = idx - last_loud <= self.HANGOVER_BLOCKS
            self._since_loud = int(n_blocks - 1 - last_loud[-1])
            if active.any():
                self._demodulate(raw, active)
            self.samples += n_blocks * SUB_BLOCK
        self._raw = raw[n_blocks * SUB_BLOCK :]
        return self._merge(release_before=self.samples - ERROR_HOLD)

    def flush(self):
        """The errors still held back (end of input): returns results as :meth:`feed`."""
        return self._merge(release_before=None)

    def _merge(self, release_before):
        """One list of results from both paths: each message once, errors the other path
        did not contradict; errors that ended before ``release_before`` (all if None) go out."""
        out = []
        for index, path in enumerate(self._paths):
            results, path.assembler.results = path.assembler.results, []
            for kind, value, start, end in results:
                if kind == "message":
                    if not any(m == value and abs(e - end) <= SAME_MESSAGE for m, _, e in self._recent):
                        out.append((kind, value, start, end))
                    self._recent = (self._recent + [(value, start, end)])[-4:]
                else:
                    self._held.append([kind, value, start, end, index])
        held, self._held = self._held, []
        for error in held:
            kind, value, start, end, index = error
            if any(s - SAME_MESSAGE <= end and start <= e + SAME_MESSAGE for _, s, e in self._recent):
                continue  # the other path decoded this burst
            if release_before is not None and end > release_before:
                self._held.append(error)
                continue
            if any(o[0] == "error" and o[2] <= end and start <= o[3] for o in out):
                continue  # both paths failed on it: one error
            out.append((kind, value, start, end))
        d = self._delay
        return [
            (kind, value, max(0, start - d), max(0, end - d))
            for kind, value, start, end in sorted(out, key=lambda r: r[2])
        ]

    def _demodulate(self, raw, active):
        """Band-pass and demodulate the runs of active blocks (both paths)."""
        edges = np.flatnonzero(np.diff(np.concatenate(([0], active.view(np.int8), [0]))))
        d = self._delay
        for first, last in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=False):
            # outputs for input samples [first*SUB_BLOCK, last*SUB_BLOCK) of this call
            seg = raw[first * SUB_BLOCK : last * SUB_BLOCK + len(self._fir) - 1]
            filtered = np.convolve(seg, self._fir, mode="valid")
            # The unfiltered path sees the same samples, delayed like the filter's output.
            unfiltered = seg[d : d + len(filtered)]
            for path, x in zip(self._paths, (filtered, unfiltered), strict=False):
                pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
                path.demodulate(pcm, self.samples + first * SUB_BLOCK)
            self.active_samples += (last - first) * SUB_BLOCK

    def skip(self, n):
        """Let ``n`` samples pass unseen (line off-hook): keeps positions in step.

        Returns the errors still held back (as :meth:`flush`)."""
        if n <= 0:
            return []
        if self._skipping:  # off-hook for a while: the last skip left nothing to do
            self.samples += n
            return []
        self._skipping = True
        held = self.flush()
        hist = len(self._fir) - 1
        self.samples += len(self._raw) - hist + n
        self._raw = np.zeros(hist, dtype=np.float32)
        self._since_loud = self.HANGOVER_BLOCKS + 1
        for path in self._paths:
            path.assembler.reset()
        return held


class _Demodulator:
    """spandsp's ``fsk_rx`` framing characters with ``async_rx`` into an :class:`Assembler`."""

    def __init__(self, sd, preset, cutoff_dbm0):
        self._sd = sd
        ffi, lib = sd.ffi, sd.lib
        self.assembler = Assembler()
        self._sub_start = 0
        self._sub_chars = 0
        self._error = None
        # fsk_rx's bits go straight (in C) into async_rx, which frames characters;
        # only whole characters come back to Python.
        self._callback = ffi.callback("void(void *, int)", self._put_char, onerror=self._on_error)
        self._async = sd.owned(
            lib.async_rx_init(ffi.NULL, 8, 0, 1, 0, self._callback, ffi.NULL), "async_rx_free"
        )
        spec = ffi.addressof(lib.preset_fsk_specs, preset)
        self._state = sd.owned(
            lib.fsk_rx_init(ffi.NULL, spec, spandsp.FSK_FRAME_MODE_ASYNC, lib.async_rx_put_bit, self._async),
            "fsk_rx_free",
        )
        lib.fsk_rx_signal_cutoff(self._state, float(cutoff_dbm0))

    def demodulate(self, pcm, first_sample):
        """Demodulate int16 ``pcm`` (whole sub-blocks) whose first sample is ``first_sample``."""
        lib = self._sd.lib
        ptr = self._sd.int16_ptr(pcm)
        for k in range(len(pcm) // SUB_BLOCK):
            self._sub_start = first_sample + k * SUB_BLOCK
            self._sub_chars = 0
            lib.fsk_rx(self._state, ptr + k * SUB_BLOCK, SUB_BLOCK)
            if self._error is not None:
                error, self._error = self._error, None
                raise error

    def _put_char(self, _user, value):
        # Position: characters come ~67 samples apart within the 80-sample block.
        pos = self._sub_start + self._sub_chars * CHAR_SAMPLES
        if value < 0:
            if value == spandsp.SIG_STATUS_CARRIER_DOWN:
                self.assembler.carrier_down(pos)
            elif value == spandsp.SIG_STATUS_CARRIER_UP:
                self.assembler.reset()
            return
        self._sub_chars += 1
        self.assembler.char(value, pos)

    def _on_error(self, exc_type, exc, _tb):
        # Exceptions cannot cross the C boundary; re-raised after fsk_rx returns.
        self._error = exc
