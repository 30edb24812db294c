"""Per-line signalling detector: dialled digits, caller ID, alert and call-progress tones.

One :class:`LineDsp` per phone line, fed with the line's audio (mono int16,
8000 Hz) in blocks of any size.  Inside, spandsp does the signal processing:

* ``dtmf_rx`` (:mod:`.dtmf`) for DTMF.  While the line is off-hook its digits
  are dialled digits (:class:`DtmfDigit`); while on-hook they go to the DTMF
  caller-ID decoder (formats ``A…C``, ``A…#``, ``D…C``, ``<number>#``, absence
  codes) and never come out as dialled digits.
* ``fsk_rx`` (:mod:`.fsk`) for V.23 (uk, etsi) or Bell 202 (us) FSK caller ID,
  only while on-hook and only while there is signal.
* ``super_tone_rx`` (:mod:`.tones`) for the alert signal and the country's
  call-progress tones.
* :mod:`.answer` for voice onsets while off-hook (:class:`Speech`): the far
  end answering an outbound call. Once ringback has been heard after the
  number, a voice may be the caller's own (the capture channel carries both
  directions) and the far end is still being rung while ringback goes on: an
  onset in a ringback gap is reported at once as a *provisional* answer
  (dated at the onset), withdrawn (:class:`AnswerWithdrawn`) if the next
  burst comes on time, and confirmed (:class:`RingbackStopped`) when that
  burst is overdue or a key is pressed in the gap. An onset during a burst is
  only held: dropped when the burst goes on, the answer if it was the last.
* :mod:`.ringback` for the ringback tone's bursts while off-hook: its first
  burst is reported as the ``ringback`` :class:`Tone` (sooner than the tone
  receiver, which needs most of a cadence), its end as
  :class:`RingbackStopped` (a far end that answered without speaking).

Which caller-ID standards run follows ``country`` (uk/etsi: V.23 + DTMF; us:
Bell 202 + DTMF; dtmf: DTMF only) unless ``standard`` (v23, bell202, dtmf)
picks one.  Typical sequences on the line: UK SIN 227: polarity reversal,
≥100 ms, alert 88–110 ms, ≥45 ms, FSK, ≥200 ms, first ring; US: FSK between the
first and second ring; DTMF caller ID before the first ring.

Events carry ``t_us`` in the clock of :meth:`LineDsp.feed`'s ``t_us``
argument, at the start of the signal.  A caller-ID message identical to the
one decoded just before (repeated transmissions) is reported once; the memory
is cleared when the line goes off-hook.
"""

import collections

import numpy as np

from firmware.dsp import cid
from firmware.dsp.answer import VoiceOnset
from firmware.dsp.dtmf import DEFAULT_PARAMS, DtmfReceiver
from firmware.dsp.events import (
    KINDS,
    AlertTone,
    AnswerWithdrawn,
    CallerId,
    CallerIdError,
    DtmfDigit,
    Quiet,
    RingbackStopped,
    Sound,
    Speech,
    Tone,
)
from firmware.dsp.fsk import FskReceiver
from firmware.dsp.history import AudioHistory
from firmware.dsp.ringback import RingbackWatch
from firmware.dsp.tones import ToneReceiver, country_tones
from telephony import countries, spandsp
from telephony.levels import DBM0_RMS

__all__ = ["LineDsp", *KINDS]

SAMPLE_RATE = 8000
_INT16 = np.dtype(np.int16)
US_PER_SAMPLE = 1_000_000 // SAMPLE_RATE  # 125
SNAP_SAMPLES = 32  # 4 ms: the precision of the receivers' start estimates


DTMF_CID_GAP_US = 1_000_000  # digits of one DTMF caller ID are 50–70 ms apart
DTMF_CID_MAX_DIGITS = 40
REPEAT_WINDOW_US = 20_000_000  # the same caller-ID message again within this is a repeat
CLEAR_TONES = ("busy", "unobtainable", "congestion")
# Silence watch (off-hook): 20 ms frames; a frame above QUIET_DBM0 is sound. Line
# noise (about -65 dBm0) and a VoIP adapter's comfort noise stay below it, speech and
# tones are well above. Quiet is reported once it has lasted QUIET_REPORT_MS.
QUIET_FRAME = 160
QUIET_DBM0 = -50.0
QUIET_REPORT_MS = 2000
# Off-hook, DTMF is decided every this many samples (80 ms) rather than at the end
# of each block: soon enough for the recorder's delay line to mask a key.
EARLY_DTMF_SAMPLES = 640
# While the far end is rung the voice-onset detector is run every this many samples
# (200 ms), not each block: a voice in a ringback gap is an answer reported at once. It
# costs more than the rest of the detector, and per call more on smaller pieces.
EARLY_VOICE_SAMPLES = 1600
FSK_HISTORY = 6 * SAMPLE_RATE  # audio kept to tell V.23 from Bell 202 (a message is < 1 s)
# FFT bins (320-sample frames, 25 Hz apart) of each FSK standard's mark and space tones
_FSK_FRAME = 320
_FSK_BINS = {"v23": (1300 // 25, 2100 // 25), "bell202": (1200 // 25, 2200 // 25)}


class LineDsp:
    """Signalling detector for one line.

    ``country``: ``uk``, ``etsi``, ``us`` or ``dtmf``; ``standard``: ``None`` or
    one of ``v23``, ``bell202``, ``dtmf``; ``on_event(event)`` is called with
    each event (see :mod:`firmware.dsp.events`) from inside :meth:`feed`.
    ``off_hook``: initial hook state; ``None`` means unknown (offline
    analysis): DTMF is then taken as caller ID while it matches a caller-ID
    format and nothing but caller-ID signals (FSK, alert) came before it,
    otherwise as dialled digits.

    ``stats`` counts events by kind, and caller-ID errors by reason
    (``caller_id_error.checksum`` ...), repeats dropped (``caller_id_repeat``)
    and samples processed.  Raises :class:`ValueError` for an unknown country
    or standard and :class:`~firmware.errors.HardwareError` if libspandsp is
    missing.
    """

    def __init__(
        self,
        country="uk",
        standard=None,
        on_event=None,
        off_hook=False,
        dtmf_params=DEFAULT_PARAMS,
        block_ms=500,
        tone_countries=(),
    ):
        entry = countries.country(country)  # ValueError for an unknown country
        if standard is not None and standard not in countries.cid_standards():
            raise ValueError(
                "unknown caller-ID standard %r (%s)" % (standard, ", ".join(countries.cid_standards()))
            )
        self.country = country
        self.standards = (standard,) if standard else entry.cid_standards
        self.on_event = on_event or (lambda event: None)
        self.stats = collections.Counter()
        self._off_hook = off_hook
        self._unknown_hook = off_hook is None
        self._cid_phase = True  # unknown hook: nothing but caller-ID signals seen yet
        self._dtmf = DtmfReceiver(dtmf_params)
        # Off-hook, DTMF is decided every EARLY_DTMF_SAMPLES, not each block: the recorder
        # holds audio back only a little, and a key must be known in time to mask it.
        self._dtmf_fed = 0  # samples of the current block the DTMF receiver already had
        self._voice_fed = 0  # ... and the voice-onset detector (early while ringback goes on)
        fsk = [s for s in self.standards if s in countries.FSK_MODULATIONS]
        self._fsk = FskReceiver(fsk[0]) if fsk else None
        self._samples = 0  # samples processed
        self._tone_country = country
        own_tones = entry.tone_detection
        for other in tone_countries:
            if other not in countries.COUNTRIES:
                raise ValueError("unknown tone country %r (%s)" % (other, ", ".join(countries.COUNTRIES)))
        # Other countries whose clear-down tones end a call (an adapter left on its
        # factory region plays its own): listened for off-hook only.
        self._extra_countries = tuple(
            c for c in dict.fromkeys(tone_countries) if countries.country(c).tone_detection is not own_tones
        )
        self._fsk_history = AudioHistory(FSK_HISTORY)
        self._quiet_power = QUIET_FRAME * (DBM0_RMS * 10.0 ** (QUIET_DBM0 / 20.0)) ** 2
        self._sound_end = 0  # sample position where the last sound ended (off-hook)
        self._quiet_reported = False
        self._tones = self._tone_receiver()
        # Voice onsets matter until the call is answered: the box's answered() stops
        # the detector then (it costs more than the rest).
        self._voice, self._voice_origin, self._dialled = VoiceOnset(), 0, 0
        self._ringback, self._ringback_origin, self._ringback_seen = self._ringback_watch(), 0, False
        self._held_onset = None  # a voice onset heard while ringback goes on: maybe the caller's
        self._held_reported = False  # ... already reported as a provisional answer
        self._stop_answer_watch = False  # answered() was called: drop the watch (feed's thread)
        self._block = max(1, block_ms * SAMPLE_RATE // 1000)
        self._buffer = np.empty(self._block, dtype=np.int16)  # fed but not yet processed
        self._fill = 0
        self._anchors = collections.deque(maxlen=4096)  # (first sample, t_us) of recent feeds
        self._pending_cid = []  # on-hook DTMF digits: (digit, start_us, end_us)
        self._last_cid = None  # (CallerId without t, end_us)

    # ----------------------------------------------------------- public

    @property
    def off_hook(self):
        """The hook state last set (``None`` while unknown)."""
        return self._off_hook

    def set_off_hook(self, off_hook):
        """Tell the detector the line's hook state (the supervisor knows it).

        Off-hook: DTMF is dialled digits and FSK is ignored; on-hook: DTMF and
        FSK are caller ID.  A DTMF caller ID in progress is dropped (and
        counted) when the line goes off-hook.
        """
        off_hook = bool(off_hook)
        self._process()  # audio already fed belongs to the old state
        if off_hook and not self._off_hook and self._pending_cid:
            events = []
            self._flush_dtmf_cid(events, reason="framing")
            for event in events:
                self._emit(event)
        if off_hook:
            self._last_cid = None
        changed = off_hook != self._off_hook
        self._off_hook = off_hook
        self._unknown_hook = False
        if changed:
            self._tones = self._tone_receiver()
            self._voice, self._voice_origin, self._dialled = VoiceOnset(), self._samples, 0
            self._ringback, self._ringback_origin = self._ringback_watch(), self._samples
            self._ringback_seen, self._held_onset, self._held_reported = False, None, False
            self._sound_end, self._quiet_reported = self._samples, False
            self._stop_answer_watch = False

    def answered(self):
        """Tell the detector the call on this off-hook line is answered (an inbound call
        picked up, or an outbound call's answer found by any means).

        The answer watch stops until the line next goes on-hook: no more voice onsets
        (:class:`Speech`) and no ringback watch (:class:`RingbackStopped`, the ringback
        :class:`Tone` from its first burst; the tone receiver still reports ringback).
        Nothing else changes: digits, tones, quiet and sound are reported as before.
        These two detectors cost more than the rest of the detector together, and on an
        inbound call they would otherwise run for the whole call. On-hook (or with the
        hook unknown) it does nothing.
        """
        if self._off_hook is not True:
            return
        # Only a flag here: on a real box this comes from the supervisor's thread while
        # feed() runs on the capture reader's, which drops the watch at its next step.
        # Audio fed but not yet processed is looked at without it: what it would find
        # there is an answer, and the call is answered already.
        self._stop_answer_watch = True

    def _drop_answer_watch(self):
        """Stop the answer watch if :meth:`answered` asked for it (from feed's thread)."""
        if self._stop_answer_watch:
            self._stop_answer_watch = False
            self._voice, self._ringback, self._held_onset = None, None, None

    def feed(self, samples, t_us):
        """Process audio whose first sample was at clock time ``t_us`` (µs).

        ``samples``: int16 numpy array (or bytes of little-endian int16), any
        length, mono 8000 Hz.  Audio is collected and processed in blocks of
        ``block_ms`` (default 500 ms: the per-block overhead is paid twice a
        second, whatever the caller's block size); events found are passed to
        ``on_event``, so up to ``block_ms`` late, and carry the time their
        signal started.  Call :meth:`flush` at the end of a recording.
        """
        if not (type(samples) is np.ndarray and samples.dtype is _INT16):
            samples = spandsp.as_int16(samples)
        n = len(samples)
        if n == 0:
            return
        if self._fill + n > self._block:
            self._process()
            if n >= self._block:  # a big block: process it as it is
                self._anchors.append((self._samples, int(t_us)))
                self._process_block(np.array(samples))
                return
        # copied: the caller may reuse its buffer
        self._buffer[self._fill : self._fill + n] = samples
        self._anchors.append((self._samples + self._fill, int(t_us)))
        self._fill += n
        if self._fill == self._block:
            self._process()
        elif self._off_hook is True and self._fill - self._dtmf_fed >= EARLY_DTMF_SAMPLES:
            self._early_dtmf()

    def _early_dtmf(self):
        """Run the DTMF receiver (and the ringback watch) on what the block holds so far and
        report what they found now. While the far end is rung the voice-onset detector runs
        here too: a voice in a ringback gap is a provisional answer, reported at once."""
        self._drop_answer_watch()
        x = self._buffer[self._dtmf_fed : self._fill].copy()
        self._dtmf_fed = self._fill
        events = []
        if self._ringback is not None:
            self._watch_ringback(x, events, self._samples + self._fill - len(x))
        if (
            self._voice is not None
            and self._dialled
            and self._ringback is not None
            and self._ringback_seen
            and self._fill - self._voice_fed >= EARLY_VOICE_SAMPLES
        ):
            voice_x = self._buffer[self._voice_fed : self._fill].copy()
            self._voice_fed = self._fill
            self._feed_voice(voice_x, events)
        for digit, start, end in self._dtmf.feed(x):
            self._on_digit(digit, self._t(start), self._t(end), events)
        for event in events:
            self._emit(event)

    def flush(self):
        """Process what is buffered and decide on DTMF still waiting (end of input)."""
        self._process()
        events = []
        if self._fsk is not None:  # FSK errors still held back (see firmware.dsp.fsk)
            for kind, value, start, end in self._fsk.flush():
                self._on_fsk(kind, value, self._t(start), self._t(end), events)
        if self._pending_cid:
            self._flush_dtmf_cid(events, reason="framing")
        for event in sorted(events, key=lambda e: e.t_us):
            self._emit(event)

    def _process(self):
        if self._fill:
            x = self._buffer[: self._fill].copy()  # receivers keep recent blocks
            self._fill = 0
            self._process_block(x)

    def _process_block(self, x):
        self._drop_answer_watch()
        events = []
        early, self._dtmf_fed = self._dtmf_fed, 0
        if self._off_hook is True and self._ringback is not None:
            # before the tone receiver, whose ringback comes later, and the DTMF receiver
            self._watch_ringback(x[early:] if early else x, events, self._samples + early)
        for digit, start, end in self._dtmf.feed(x[early:] if early else x):
            self._on_digit(digit, self._t(start), self._t(end), events)
        self._fsk_history.append(x)  # every block: positions stay the receivers' (absolute)
        if self._fsk is not None and self._off_hook is not True:
            for kind, value, start, end in self._fsk.feed(x):
                self._on_fsk(kind, value, self._t(start), self._t(end), events, start, end)
        elif self._fsk is not None:
            for kind, value, start, end in self._fsk.skip(len(x)):
                self._on_fsk(kind, value, self._t(start), self._t(end), events)
        for name, start in self._tones.feed(x):
            self._on_tone(name, self._t(self._tones_origin + start), events)
        for receiver in self._extra_tones:
            for name, start in receiver.feed(x):
                self._on_tone(name, self._t(self._tones_origin + start), events)
        voice_early, self._voice_fed = self._voice_fed, 0
        if self._off_hook is True and self._voice is not None:
            self._feed_voice(x[voice_early:] if voice_early else x, events)
        if self._off_hook is True:
            self._watch_quiet(x, events)
        self._samples += len(x)
        self.stats["samples"] += len(x)
        if self._pending_cid:
            now_us = self._t(self._samples)
            if now_us - self._pending_cid[-1][2] > DTMF_CID_GAP_US and not self._dtmf.in_digit:
                self._flush_dtmf_cid(events, reason="framing")
        events.sort(key=lambda e: e.t_us)
        for event in events:
            self._emit(event)

    # ---------------------------------------------------------- helpers

    def _ringback_watch(self):
        """A :class:`RingbackWatch` while off-hook (None on-hook, or without a cadenced ringback)."""
        if self._off_hook is not True:
            return None
        try:
            return RingbackWatch(self._tone_country)
        except ValueError:
            return None

    def _feed_voice(self, x, events):
        """Run the voice-onset detector on ``x`` (the audio after what it had) and judge its
        onsets (:meth:`_on_voice`)."""
        for start in self._voice.feed(x):
            self._on_voice(self._voice_origin + start, events)

    def _on_voice(self, onset, events):
        """A voice onset at absolute sample ``onset``.

        Before any digit it is nobody's answer, and so it is reported as it comes. After
        the number it is the answer - unless ringback has been heard and its watch still
        follows it: the capture channel carries the caller's own voice too, and the
        exchange rings the far end until it answers, so a voice while ringback goes on is
        held, and reported at once as a provisional answer if it is in a gap (see
        :meth:`_settle_held`). The detector goes on listening meanwhile: a withdrawn
        answer leaves the far end still to answer. It goes on after an onset reported
        too, until the box says the call is answered (:meth:`answered`): the supervisor
        may not take it for the answer (the caller's voice between two keys, before the
        last digit), and after an answer the dial timeout only assumed, the far end's
        voice is what the notice waits for."""
        if self._dialled and self._ringback is not None and self._ringback_seen:
            if onset < self._ringback_origin + self._ringback.last_end:
                self.stats["speech_during_ringback"] += 1  # a burst came after it began
                return
            if self._held_onset is None:
                self._held_onset = onset
                self.stats["speech_held"] += 1
            self._report_held(events)
            return
        events.append(Speech(self._t(onset)))

    def _report_held(self, events):
        """Report the held voice onset as a provisional answer if no burst is under way:
        in a ringback gap it is the far end's answer unless the next burst comes on time."""
        if self._held_reported or not self._ringback.in_gap():
            return
        self._held_reported = True
        self.stats["speech_provisional"] += 1
        events.append(Speech(self._t(self._held_onset), provisional=True))

    def _answer_held(self, events):
        """The held voice onset is the answer: report it (dated at the onset), or confirm
        it if it was reported already (the ringback's end, not cut)."""
        if self._held_reported:
            events.append(RingbackStopped(self._t(self._ringback_origin + self._ringback.last_end), False))
        else:
            events.append(Speech(self._t(self._held_onset)))
        self._held_onset, self._held_reported, self._voice, self._ringback = None, False, None, None

    def _settle_held(self, events):
        """Drop the held voice onset if a ringback burst was heard after it began: the
        far end was still being rung, so that voice was the caller's (a provisional answer
        is withdrawn, dated at the burst's start). Report it once no burst is under way."""
        if self._held_onset is None:
            return
        if self._held_onset < self._ringback_origin + self._ringback.last_end:
            if self._held_reported:
                events.append(AnswerWithdrawn(self._t(self._ringback_origin + self._ringback.last_start)))
                self.stats["answer_withdrawn"] += 1
            self._held_onset, self._held_reported = None, False
            self.stats["speech_during_ringback"] += 1
        else:
            self._report_held(events)

    def _watch_ringback(self, x, events, position):
        """Report the first ringback burst and the end of ringback (see :mod:`.ringback`);
        ``x`` is the audio from absolute sample ``position`` on, that the watch has not had.

        A voice onset held while ringback went on (see :meth:`_on_voice`) is dropped (its
        provisional answer withdrawn) when a later burst comes, and is confirmed as the
        answer, dated at the onset, when ringback stops in a gap (the next burst overdue);
        a burst cut short dates the answer exactly, so then it is the answer and the held
        onset is not needed."""
        if self._voice is None:  # the far end spoke after the dialling: answered
            self._ringback = None
            return
        if position != self._ringback_origin + self._ringback.fed:
            # Audio skipped past it: its cadence timing would be wrong, so it stops here
            # (a held voice onset is then the answer, as it is on a line without ringback).
            self.stats["ringback_watch_dropped"] += 1
            if self._held_onset is not None:
                self._answer_held(events)
            self._ringback = None
            return
        found_all = self._ringback.feed(x)
        self._settle_held(events)
        if self._ringback.done and not found_all:
            self._ringback = None  # gave up: no ringback on this call
            return
        for found in found_all:
            t_us = self._t(self._ringback_origin + found[1])
            if found[0] == "ringback":
                self._ringback_seen = True
                events.append(Tone(t_us, "ringback"))
            elif self._held_onset is not None and not found[2]:
                self._answer_held(events)
            else:
                events.append(RingbackStopped(t_us, found[2]))
                self._ringback, self._held_onset, self._held_reported = None, None, False

    def _watch_quiet(self, x, events):
        """Report :class:`Quiet` once the line has been silent for a while, :class:`Sound` after."""
        n = len(x) // QUIET_FRAME * QUIET_FRAME
        if n == 0:
            return
        power = np.square(x[:n], dtype=np.float32).reshape(-1, QUIET_FRAME).sum(axis=1)
        loud = np.flatnonzero(power >= self._quiet_power)
        report = QUIET_REPORT_MS * SAMPLE_RATE // 1000
        if len(loud):  # (this runs on every block of every off-hook line: kept cheap)
            if n <= report:  # a silence inside the block is too short to count
                starts, prev_ends = (self._samples + int(loud[0]) * QUIET_FRAME,), (self._sound_end,)
                last = self._samples + int(loud[-1]) * QUIET_FRAME
            else:
                starts = self._samples + loud * QUIET_FRAME
                prev_ends = np.concatenate(([self._sound_end], starts[:-1] + QUIET_FRAME))
                last = int(starts[-1])
            for i, (start, prev_end) in enumerate(zip(starts, prev_ends, strict=False)):
                if start - prev_end < report:
                    continue
                if not (i == 0 and self._quiet_reported):
                    events.append(Quiet(self._t(int(prev_end))))
                events.append(Sound(self._t(int(start))))
            self._quiet_reported = False
            self._sound_end = last + QUIET_FRAME
        if not self._quiet_reported and self._samples + n - self._sound_end >= report:
            events.append(Quiet(self._t(self._sound_end)))
            self._quiet_reported = True

    def _fsk_standard(self, start, end, fallback):
        """Which FSK was sent, V.23 (1300/2100 Hz) or Bell 202 (1200/2200 Hz), from its spectrum.

        Either demodulator decodes both (the tones are 100 Hz apart at the same
        bit rate), so the line learns what its adapter sends from the audio.
        """
        x = self._fsk_history.get(start, end).astype(np.float32)
        n = len(x) // _FSK_FRAME * _FSK_FRAME
        if n == 0:
            return fallback
        spectrum = np.abs(np.fft.rfft(x[:n].reshape(-1, _FSK_FRAME) * np.hanning(_FSK_FRAME), axis=1)) ** 2
        power = spectrum.sum(axis=0)
        score = {std: float(power[bins[0]] + power[bins[1]]) for std, bins in _FSK_BINS.items()}
        return max(score, key=score.get)

    def _tone_receiver(self):
        """Tones worth looking for in this hook state: the alert on-hook, call progress off-hook."""
        self._tones_origin = self._samples
        self._extra_tones = [ToneReceiver(c, CLEAR_TONES) for c in self._extra_countries if self._off_hook]
        if self._off_hook is None:
            return ToneReceiver(self._tone_country)
        progress = [name for name, _elements in country_tones(self._tone_country) if name != "alert"]
        return ToneReceiver(self._tone_country, progress if self._off_hook else ["alert"])

    def _t(self, sample):
        """Clock time (µs) of absolute sample position ``sample``."""
        sample = int(sample)
        # A position estimated a few ms early still belongs to the feed that
        # follows (it matters only when the clock jumped between feeds).
        for first, t_us in reversed(self._anchors):
            if sample >= first - SNAP_SAMPLES:
                return t_us + (sample - first) * US_PER_SAMPLE
        first, t_us = self._anchors[0]
        return t_us + (sample - first) * US_PER_SAMPLE

    def _emit(self, event):
        kind = type(event).__name__
        self.stats[kind] += 1
        if isinstance(event, CallerIdError):
            self.stats["caller_id_error." + event.reason] += 1
        self.on_event(event)

    def _on_digit(self, digit, start_us, end_us, events):
        to_cid = self._off_hook is False or (self._unknown_hook and self._cid_phase)
        if to_cid and "dtmf" in self.standards:
            self._pending_cid.append((digit, start_us, end_us))
            if digit in cid.DTMF_TERMINATORS or len(self._pending_cid) >= DTMF_CID_MAX_DIGITS:
                self._flush_dtmf_cid(events, reason="framing")
            return
        if self._off_hook is False:
            return  # on-hook DTMF without a DTMF caller-ID standard: not dialled digits
        if self._ringback is not None and self._ringback.in_gap() and self._off_hook is True:
            # Nobody keys into ringback: the far end answered after the last burst (by the
            # voice held in this gap, if there was one).
            if self._held_onset is not None and self._t(self._held_onset) < start_us:
                self._answer_held(events)
            else:
                last_end = self._ringback_origin + self._ringback.last_end
                events.append(RingbackStopped(self._t(last_end), False))
                self._ringback, self._held_onset, self._held_reported = None, None, False
        self._dialled += 1
        events.append(DtmfDigit(start_us, digit, end_us))

    def _flush_dtmf_cid(self, events, reason):
        digits, self._pending_cid = self._pending_cid, []
        text = "".join(d for d, _s, _e in digits)
        start_us, end_us = digits[0][1], digits[-1][2]
        try:
            if text[-1] not in cid.DTMF_TERMINATORS:
                raise cid.CidStructureError("no terminator")
            _check_cadence([s for _d, s, _e in digits])
            info = cid.parse_dtmf(text)
        except cid.CidStructureError:
            if self._unknown_hook:
                # Offline: not a caller ID after all, so these were dialled digits.
                self._cid_phase = False
                events.extend(DtmfDigit(s, d, e) for d, s, e in digits)
                return
            complete = text[-1] in cid.DTMF_TERMINATORS and _regular([s for _d, s, _e in digits])
            if complete or cid.looks_like_dtmf_cid(text) and (text[0] in "ABD" or len(text) >= 3):
                events.append(CallerIdError(start_us, "structure" if complete else reason, "dtmf"))
            return
        self._report_cid(
            CallerId(
                start_us, "dtmf", info.number, info.name, info.datetime, info.absence, info.message_waiting
            ),
            end_us,
            events,
        )

    def _on_fsk(self, kind, value, start_us, end_us, events, start=None, end=None):
        standard = self._fsk.standard
        if start is not None:
            standard = self._fsk_standard(start, end, standard)
        if kind == "error":
            events.append(CallerIdError(start_us, value, standard))
            return
        try:
            info = cid.parse_fsk(value)
        except cid.CidStructureError:
            events.append(CallerIdError(start_us, "structure", standard))
            return
        self._report_cid(
            CallerId(
                start_us, standard, info.number, info.name, info.datetime, info.absence, info.message_waiting
            ),
            end_us,
            events,
        )

    def _report_cid(self, event, end_us, events):
        key = (event.standard, event.number, event.name, event.datetime, event.absence, event.message_waiting)
        last = self._last_cid
        self._last_cid = (key, end_us)
        if last is not None and last[0] == key and event.t_us - last[1] <= REPEAT_WINDOW_US:
            self.stats["caller_id_repeat"] += 1
            return
        events.append(event)

    def _on_tone(self, name, start_us, events):
        if name == "alert":
            events.append(AlertTone(start_us))
            return
        if self._unknown_hook:
            self._cid_phase = False
            if self._pending_cid:
                self._flush_dtmf_cid(events, reason="framing")
        if name == "ringback" and self._ringback_seen:
            return  # reported from its first burst already
        events.append(Tone(start_us, name))


def _regular(starts_us):
    """Whether DTMF digits came at a steady pace (a caller-ID sender's), none lost."""
    if len(starts_us) < 3:
        return True
    gaps = np.diff(np.asarray(starts_us, dtype=np.int64))
    return bool(gaps.max() <= 1.7 * np.median(gaps))


def _check_cadence(starts_us):
    # A DTMF caller ID has no checksum; a digit lost to noise shows as a gap
    # twice as long as the others, and must not give a wrong number.
    if not _regular(starts_us):
        raise cid.CidStructureError("irregular DTMF pace: a digit was lost")
