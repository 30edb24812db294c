"""Capture: board audio periods → one ring buffer per line → line consumers.

The board's capture callback only de-interleaves into the rings (in C) and
returns: it never blocks. Each line has one reader — the ring is single
consumer — that drains its ring and hands the samples, stamped with their
clock time, to that line's consumers (the DSP, later the recorder). On the
simulated board readers run synchronously inside the callback, so runs are
deterministic; on hardware they run on a reader thread.

A line can be *muted* (the PCI pause, :mod:`firmware.policy.pause`): from
the next capture period on, its channel is zeroed before it is
de-interleaved, so the ring itself holds digital silence and no consumer —
the recorder, a later pre-roll, the DSP — ever sees what was said. Only a
listener given to :meth:`Capture.mute` hears the real audio of a muted
period, in memory, inside the capture callback (it listens for the resume
code).
"""

import collections
import logging
import threading

import numpy as np

from .ring import Ring, deinterleave

log = logging.getLogger(__name__)

BYTES_PER_SAMPLE = 2


def ring_capacity(rate, seconds):
    """The smallest power-of-two byte count holding ``seconds`` of mono S16 audio."""
    need = int(rate * seconds * BYTES_PER_SAMPLE)
    return 1 << max(6, (need - 1).bit_length())


class LineAudio:
    """The ring of one line, with the clock time of every position in it."""

    def __init__(self, line, rate, ring_seconds):
        self.line = line
        self.rate = rate
        self.ring = Ring(ring_capacity(rate, ring_seconds))
        # (ring byte position, clock µs) of each period's first sample; a gap
        # in capture (the simulator skipping idle time, an ALSA overrun)
        # starts a new anchor.
        self._anchors = collections.deque(maxlen=64)
        self.consumers = []

    def anchor(self, pos, t_us):
        self._anchors.append((pos, t_us))

    def time_of(self, pos):
        """Clock µs of the sample at ring byte position ``pos``."""
        for a_pos, a_t_us in reversed(self._anchors):
            if a_pos <= pos:
                return a_t_us + (pos - a_pos) // BYTES_PER_SAMPLE * 1_000_000 // self.rate
        a_pos, a_t_us = self._anchors[0]
        return a_t_us - (a_pos - pos) // BYTES_PER_SAMPLE * 1_000_000 // self.rate

    def drain(self):
        """Hand every unread sample to the consumers, one anchor run at a time."""
        ring = self.ring
        while ring.available:
            pos = ring.read_pos
            n = ring.available
            # Do not read across an anchor: the two sides are not contiguous in time.
            # Newest first, stopping at the first one already read past: the anchors are
            # in order, and all but the newest few are behind the reader (this runs for
            # every line at every capture period).
            for a_pos, _ in reversed(self._anchors):
                if a_pos <= pos:
                    break
                if a_pos < pos + n:
                    n = a_pos - pos  # the nearest one ahead ends the run
            data = ring.read(n)
            if not data:
                continue
            # If the capture side overwrote part of what we were copying, the
            # ring returns less; what it returns always ends at read_pos.
            t_us = self.time_of(ring.read_pos - len(data))
            samples = np.frombuffer(data, dtype=np.int16)
            for consumer in self.consumers:
                consumer(samples, t_us)


class Capture:
    """De-interleave capture periods into per-line rings and feed line consumers.

    :param board: gives ``lines``, ``channels``, ``rate`` and ``channel_of``
    :param ring_seconds: audio each ring holds (≥ the longest pre-roll plus slack)
    :param threaded: drain rings on a reader thread (hardware) instead of inside
        the capture callback (simulator)
    """

    def __init__(self, board, ring_seconds=8, threaded=False):
        self.rate = board.rate
        self.channels = board.channels
        self.ring_seconds = ring_seconds  # how far back a recording can reach
        self.lines = {line: LineAudio(line, board.rate, ring_seconds) for line in range(1, board.lines + 1)}
        self._rings = [None] * board.channels
        for line, audio in self.lines.items():
            self._rings[board.channel_of(line)] = audio.ring
        self._frame_bytes = board.channels * BYTES_PER_SAMPLE
        self._next_t_us = None
        self._threaded = threaded
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._channel = {line: board.channel_of(line) for line in self.lines}
        self._muted = {}  # channel -> (line, listener or None)
        self._was_muted = frozenset()
        # f(line, muted, t_us): the first period of ``line`` muted (or let through
        # again) began at ``t_us``; from the capture callback, so it must be quick.
        self.on_mute_change = None
        self.after_drain = []  # fn() after each pass over every line (after_each_drain)
        self.periods = 0

    def after_each_drain(self, fn):
        """Call ``fn()`` each time every line's ring has been drained (the recorder's
        group commit: what all lines wrote in this pass goes to the card at once)."""
        self.after_drain.append(fn)

    def add_consumer(self, line, consumer):
        """Call ``consumer(samples, t_us)`` with every run of ``line``'s audio."""
        self.lines[line].consumers.append(consumer)

    def mute(self, line, listener=None):
        """Silence ``line`` in its ring from the next capture period on.

        ``listener(samples, t_us)``, if given, is called with the line's real
        audio of every muted period, from the capture callback: it must be
        quick, keep nothing and never store what it hears.
        """
        muted = dict(self._muted)
        muted[self._channel[line]] = (line, listener)
        self._muted = muted

    def unmute(self, line):
        """Let ``line``'s audio into its ring again from the next period on."""
        self._muted = {ch: v for ch, v in self._muted.items() if v[0] != line}

    def next_period_us(self):
        """Clock time the next capture period will start at (None before the first):
        where a :meth:`mute` or :meth:`unmute` made now takes effect."""
        return self._next_t_us

    def is_muted(self, line):
        return any(v[0] == line for v in self._muted.values())

    def on_audio(self, frames, t_us):
        """The board's capture callback: de-interleave and return at once."""
        muted = self._muted  # replaced, never changed in place: a consistent snapshot
        if muted:
            frames = self._silence(frames, muted, t_us)
        now_muted = frozenset(v[0] for v in muted.values())
        if now_muted != self._was_muted:
            changed, self._was_muted = now_muted ^ self._was_muted, now_muted
            if self.on_mute_change is not None:
                for line in sorted(changed):
                    self.on_mute_change(line, line in now_muted, t_us)
        n_frames = len(frames) // self._frame_bytes
        contiguous = self._next_t_us is not None and abs(t_us - self._next_t_us) < 1000
        for audio in self.lines.values():
            if not contiguous:
                audio.anchor(audio.ring.written, t_us)
        deinterleave(frames, self._rings)
        self._next_t_us = t_us + n_frames * 1_000_000 // self.rate
        self.periods += 1
        if self._threaded:
            self._wake.set()
        else:
            self.drain()

    def _silence(self, frames, muted, t_us):
        block = np.frombuffer(frames, dtype=np.int16).reshape(-1, self.channels).copy()
        for ch, (_line, listener) in muted.items():
            if listener is not None:
                listener(block[:, ch].copy(), t_us)
            block[:, ch] = 0
        return block

    def drain(self):
        for audio in self.lines.values():
            audio.drain()
        for fn in self.after_drain:
            fn()

    def start(self):
        if self._threaded and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="linekeeper-lines", daemon=True)
            self._thread.start()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self):
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self.drain()
            except Exception:
                log.exception("line audio consumer failed")
