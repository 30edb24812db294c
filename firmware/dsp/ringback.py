"""The end of ringback: evidence that an outbound call was answered by someone silent.

A far end that answers without a word (a payment line waiting for keys, a
person who listens first) gives an analogue line no voice onset, and often no
polarity reversal either. What it does stop is the ringback tone: the
exchange removes it the moment the call is answered, mid-burst or in a gap.
:class:`RingbackWatch` follows the country's ringback tone burst by burst and
reports when it stopped:

* a *burst* starts with two 16 ms blocks in a row whose energy at the two
  ringback frequencies holds half the block's energy or more (above
  ``SQUELCH_DBM0``), and lasts while that energy stays within 10 dB of its
  start (so the caller talking over the tone does not end it);
* when a burst ends it must be the ringback tone: over the whole burst each
  of the two frequencies holds at least ``MIN_SHARE`` of the energy (a busy
  or unobtainable tone has only one of them at 400 Hz; the UK dial tone only
  one of them at 450 Hz) - or, with loud talk over the burst diluting both
  shares alike, the two together hold ``MIN_SHARE`` and each ``BALANCE`` of
  the two's energy. Any such other tone (one frequency strong, the
  other missing, for ``OTHER_MIN_MS`` or more) since the last ringback burst means the exchange is saying
  something else (busy, unobtainable): no answer is reported, the tone
  receiver will clear the call. Speech is neither and changes nothing;
* the cadence says when the next burst is due (UK 0.4 on, 0.2 off, 0.4 on,
  2.0 off; US 2 on, 4 off). A burst cut shorter than ``CUT_FRACTION`` of its
  length (not the first: ringback may start a little late) is an answer
  ``CUT_GRACE_MS`` later; a gap longer than ``GAP_TOLERANCE`` of its length
  plus ``GAP_MARGIN_MS`` is an answer then.

The answer is dated at the end of the last ringback burst: the earliest
moment the far end can have answered, so nothing keyed after it can pass for
dialling. In a cut burst that is the answer itself; in a gap, the answer may
be up to the gap's length later (UK 2.0 s) and is noticed at most
``GAP_TOLERANCE`` x gap + ``GAP_MARGIN_MS`` after that burst (UK 2.4 s) -
sooner if a key is pressed in the gap: nobody keys into ringback, so the line's
detector takes the key as the answer, dated at :attr:`RingbackWatch.last_end`.
"""

import numpy as np

from telephony import countries
from telephony.levels import DBM0_RMS

RATE = 8000
BLOCK = 128  # 16 ms
BLOCK_MS = BLOCK * 1000 // RATE
SQUELCH_DBM0 = -36.0  # the tone receiver's: quieter blocks are silence
TONAL_SHARE = 0.5  # of a block's energy at the ringback frequencies, to start a burst
HOLD_DB = 10.0  # a burst lasts while its tone energy stays within this of its start
START_BLOCKS = 2
MIN_BURST_MS = 64  # shorter bursts are clicks, not tone
MIN_SHARE = 0.15  # each ringback frequency's share of a whole burst's energy
BALANCE = 0.3  # each frequency's part of the two's energy, for a burst under talk
OTHER_SHARE = 0.35  # one ringback frequency this strong, the other missing: another tone
# ... lasting this long: the shortest burst of a clear-down tone is 225 ms (UK congestion),
# while a voice's harmonic near one ringback frequency makes 64-128 ms "bursts" (a far end
# saying "Good morning" was taken for another tone, and its answer never reported)
OTHER_MIN_MS = 160
MAX_CHECK_MS = 1000  # the part of a burst checked
CUT_FRACTION = 0.7
CUT_GRACE_MS = 120
GAP_TOLERANCE = 1.15
GAP_MARGIN_MS = 100
LONG_FACTOR = 1.5  # a "burst" this much longer than the cadence's longest is another tone
GIVE_UP_S = 60  # off-hook this long without a ringback burst: stop looking


def ringback_cadence(country):
    """``(f1_hz, f2_hz, ((on_ms, off_ms), ...))`` of ``country``'s ringback tone.

    Raises :class:`ValueError` for an unknown country or one without a cadenced ringback.
    """
    tone = countries.country(country).tone("ringback")
    c = tone.cadence_ms
    pairs = tuple((on, off) for on, off in ((c[0], c[1]), (c[2], c[3])) if on and off)
    if not pairs or not tone.f2_hz:
        raise ValueError("%s has no two-frequency cadenced ringback tone" % country)
    return tone.f1_hz, tone.f2_hz, pairs


def share_at(samples, freq_hz):
    """Share of the energy of ``samples`` in a sine at ``freq_hz`` (1.0 for that pure tone)."""
    x = np.asarray(samples, np.float64)
    total = float(np.dot(x, x))
    if total <= 0:
        return 0.0
    w = np.exp(np.arange(len(x)) * (-2j * np.pi * freq_hz / RATE))
    return float(2.0 * abs(np.dot(x, w)) ** 2 / (len(x) * total))


class RingbackWatch:
    """Follows ringback on one off-hook line; :meth:`feed` returns where it stopped.

    :param country: a :mod:`telephony.countries` code (its ringback tone and cadence)

    Positions are samples counted from the first sample fed. Reports once: after
    it, :attr:`done` is True and :meth:`feed` returns nothing more; so too after
    ``GIVE_UP_S`` off-hook without a ringback burst (an answered inbound call).
    """

    def __init__(self, country="uk"):
        self.f1_hz, self.f2_hz, self.cadence = ringback_cadence(country)
        self._longest_ms = max(on for on, _off in self.cadence)
        n = np.arange(BLOCK)
        self._basis = np.stack(
            [np.exp(n * (-2j * np.pi * f / RATE)) for f in (self.f1_hz, self.f2_hz)], axis=1
        )
        self._squelch = BLOCK * (DBM0_RMS * 10 ** (SQUELCH_DBM0 / 20)) ** 2
        self._rest = np.zeros(0, np.int16)
        self._pos = 0  # sample position of the next block
        self._tonal_run = 0
        self._burst = None  # [start position, reference tone energy, [blocks]] while in one
        self._index = None  # the cadence element of the last ringback burst
        self._last_start = None  # where the last ringback burst began
        self._last_end = None  # where the last ringback burst ended
        self._due = None  # position by which the next burst must have started
        self._other = False  # another tone since the last ringback burst
        self._cut = False  # the last ringback burst was cut short
        self._bursts = 0  # ringback bursts seen
        self._pending = None  # the last block, the first of a burst if one starts next
        self.done = False
        self.fed = 0  # samples fed

    def feed(self, samples):
        """Process int16 ``samples``; return what was found, in order:

        * ``("ringback", start)`` for the first ringback burst (where it started);
        * ``("stopped", end, cut)`` once ringback has stopped: where its last burst
          ended and whether that burst was cut short. Nothing is found after it.
        """
        if self.done:
            return []
        self.fed += len(samples)
        if not self._bursts and self.fed > GIVE_UP_S * RATE:
            self.done = True  # off-hook this long with no ringback: an inbound call, or no answer
            return []
        x = np.concatenate((self._rest, samples)) if len(self._rest) else np.asarray(samples, np.int16)
        whole = len(x) - len(x) % BLOCK
        self._rest = x[whole:].copy()
        if not whole:
            return []
        blocks = x[:whole].reshape(-1, BLOCK)
        f = blocks.astype(np.float64)
        power = np.einsum("ij,ij->i", f, f)
        tone = 2.0 / BLOCK * (np.abs(f @ self._basis) ** 2).sum(axis=1)
        quiet = not np.any((power >= self._squelch) & (tone >= TONAL_SHARE * power))
        if quiet and self._burst is None and (self._due is None or self._pos + whole < self._due):
            # Nothing that could start a burst, end one or fall due: the common case.
            self._tonal_run, self._pending = 0, blocks[-1]
            self._pos += whole
            return []
        found = []
        for k in range(len(blocks)):
            event = self._block(blocks[k], float(power[k]), float(tone[k]))
            self._pos += BLOCK
            if event is not None:
                found.append(event)
                if event[0] == "stopped":
                    self.done = True
                    break
        return found

    @property
    def last_end(self):
        """Where the last ringback burst ended (None before the first)."""
        return self._last_end

    @property
    def last_start(self):
        """Where the last ringback burst began (None before the first)."""
        return self._last_start

    def in_gap(self):
        """Whether ringback has been heard and no burst is under way now."""
        return self._last_end is not None and self._burst is None and not self._other

    def _block(self, block, power, tone):
        """One 16 ms block; what it showed (see :meth:`feed`), or None."""
        burst = self._burst
        if burst is not None:
            if tone >= burst[1] / 10 ** (HOLD_DB / 10) and power >= self._squelch:
                burst[2].append(block)
                if len(burst[2]) * BLOCK_MS > LONG_FACTOR * self._longest_ms:
                    self._other, self._burst, self._due = True, None, None  # a steady tone
                return None
            self._burst, self._pending = None, block
            return self._burst_ended(burst[0], burst[2])
        tonal = power >= self._squelch and tone >= TONAL_SHARE * power
        self._tonal_run = self._tonal_run + 1 if tonal else 0
        if self._tonal_run >= START_BLOCKS:
            self._tonal_run = 0
            self._burst = [self._pos - (START_BLOCKS - 1) * BLOCK, tone, [self._pending, block]]
            return None
        self._pending = block
        if self._due is not None and self._pos + BLOCK >= self._due and not self._other:
            return "stopped", self._last_end, self._cut
        return None

    def _burst_ended(self, start, blocks):
        end = start + len(blocks) * BLOCK
        on_ms = len(blocks) * BLOCK_MS
        if on_ms < MIN_BURST_MS:
            return None
        audio = np.concatenate(blocks)[: MAX_CHECK_MS * RATE // 1000]
        shares = share_at(audio, self.f1_hz), share_at(audio, self.f2_hz)
        # Loud talk over a burst (the caller's, on the same channel) dilutes both shares
        # alike: judge the balance of the two frequencies too, not only their shares.
        ringback_like = min(shares) >= MIN_SHARE or (
            sum(shares) >= MIN_SHARE and min(shares) >= BALANCE * sum(shares)
        )
        if not ringback_like:
            if max(shares) >= OTHER_SHARE and on_ms >= OTHER_MIN_MS:  # busy, unobtainable, dial
                self._other, self._due = True, None
            return None  # speech, a click: nothing
        self._other = False
        if self._index is None:
            index = 0  # ringback starts at the top of its cadence
        else:
            index = self._next_index((start - self._last_end) * 1000 // RATE)
        self._index, self._last_start, self._last_end = index, start, end
        on_nominal, off_nominal = self.cadence[index]
        # A short first burst may only have started late; a later one was cut by the answer.
        self._cut = self._bursts > 0 and on_ms < CUT_FRACTION * on_nominal
        wait_ms = CUT_GRACE_MS if self._cut else GAP_TOLERANCE * off_nominal + GAP_MARGIN_MS
        self._due = end + int(wait_ms * RATE / 1000)
        self._bursts += 1
        return ("ringback", start) if self._bursts == 1 else None

    def _next_index(self, gap_ms):
        """The cadence element of a burst that followed the last one after ``gap_ms``."""
        expected = (self._index + 1) % len(self.cadence)
        if abs(gap_ms - self.cadence[self._index][1]) <= 0.5 * self.cadence[self._index][1]:
            return expected
        # Out of step (a burst missed in noise): go by which gap this one was.
        return min(range(len(self.cadence)), key=lambda j: abs(self.cadence[j - 1][1] - gap_ms))
