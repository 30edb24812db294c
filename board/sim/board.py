"""The simulated board: gpiozero mock pins and a simulated capture stream.

It realises a compiled scenario (:mod:`board.sim.timeline`) on the
simulated clock: each pin edge is driven onto a gpiozero mock pin wired as
the HAT file says (active-low inputs really are driven low), so the same
gpiozero callbacks fire as on a Pi; each capture period of every line carries
the line's noise floor plus whatever the timeline puts there (speech, tones,
caller ID) plus anything the firmware plays into the line.

Audio is only produced while some line is active (from a call's first signal
until after it ends): idle time is skipped, which is what lets a day of calls
run in seconds at ``speed=None``. The firmware sees a capture stream with
gaps, stamped with the time of each period's first frame.

When the HAT has a supervisor MCU, the board runs the MCU's own firmware
(:class:`board.mcu.sim.SimMcu`) behind a simulated I2C bus (:meth:`SimBoard.mcu_bus`)
and cuts and restores its supply at the scenario's ``power`` times; the
power-fail warning reaches the firmware as on the HAT (a GPIO edge where the
HAT wires one, else the MCU's status register). When the hold-up capacitor is
exhausted the Pi stops: the board stops delivering anything and calls its
``on_power`` listeners with ``("brownout", t_us)``; at the supply's return they
hear ``("restored", t_us)``. The lines go on meanwhile, so a board started
again joins the scenario where it is then.

The board is also a test instrument: :attr:`SimBoard.log` records the latest
pin edges, playbacks and their stops (``stop_playing``) with their times (the last :data:`LOG_ENTRIES`).

:meth:`SimBoard.replay` queues the scenario once more after its end, which is
how ``make run``'s demo keeps going.

Memory does not grow with the length of the scenario or the number of
rounds: pin edges are put on the clock one at a time (each schedules the
next), a segment's audio is made when it starts to play and dropped when it
is over (the timeline holds recipes, see
:class:`~board.sim.timeline.AudioSegment`), and only the pending timers are
kept.
"""

import bisect
import collections

import numpy as np
from gpiozero.pins.mock import MockFactory, MockPin

from telephony.levels import DBM0_RMS

from ..base import pcm16
from ..gpio import GpioLines, HatBoard
from .timeline import merge_spans

LOG_ENTRIES = 10_000  # the board log's length: the last few calls, for tests and debugging


class _SimPin(MockPin):
    """A mock pin whose change times come from the simulated clock."""

    def _change_state(self, value):
        if self._state != value:
            t = self.factory.ticks()
            self._state = value
            self._last_change = t
            return True
        return False

    def clear_states(self):
        self._last_change = self.factory.ticks()
        self.states = []


class SimPinFactory(MockFactory):
    """gpiozero's mock pin factory on a simulated clock (ticks in seconds)."""

    def __init__(self, clock):
        self._clock = clock
        super().__init__(revision="a020d3", pin_class=_SimPin)

    def ticks(self):
        return self._clock.now_us() / 1e6

    @staticmethod
    def ticks_diff(later, earlier):
        return later - earlier


class SimBoard(HatBoard):
    """A board whose lines follow a compiled scenario timeline.

    :param timeline: a :class:`board.sim.timeline.Timeline`
    :param hat: the :class:`board.hat.Hat` whose pins and channels to simulate
    :param clock: the :class:`firmware.clock.SimClock` that drives everything
    :param period_ms: capture period; 20 ms is a typical ALSA period, larger
        periods make faster-than-real-time runs cheaper
    :param noise_dbm0: line noise floor
    :param seed: seed of the noise generator
    :param power: the scenario's :class:`~board.sim.scenario.PowerEvent` list (needs a
        HAT with an MCU)
    """

    def __init__(self, timeline, hat, clock, *, period_ms=20, noise_dbm0=-65.0, seed=0, power=()):
        if len(hat.lines) < timeline.lines:
            raise ValueError(
                "the scenario has %d lines but the HAT %r only %d" % (timeline.lines, hat.id, len(hat.lines))
            )
        super().__init__(hat)
        self.timeline = timeline
        self.clock = clock
        self.lines = timeline.lines
        self.period_frames = int(self.rate * period_ms / 1000)
        self.period_us = self.period_frames * 1_000_000 // self.rate
        self.factory = SimPinFactory(clock)
        self.gpio = GpioLines(hat, self.factory, clock)
        self.log = collections.deque(maxlen=LOG_ENTRIES)
        # Per line, in time order: [t_us, end_us, segment, samples while playing, else None].
        self._segments = {line: self._round(line, 0) for line in range(1, self.lines + 1)}
        self._cursor = dict.fromkeys(self._segments, 0)
        self._played = {line: [] for line in range(1, self.lines + 1)}
        self._spans = merge_spans(s for spans in timeline.active_spans.values() for s in spans)
        rng = np.random.default_rng(seed)
        # A few seconds of noise per line, read cyclically: cheap and still not periodic
        # at any frequency the DSP cares about.
        n = self.rate * 7 + 13
        rms = DBM0_RMS * 10 ** (noise_dbm0 / 20)
        self._noise = {
            line: (rng.standard_normal(n) * rms).astype(np.float32) for line in range(1, self.lines + 1)
        }
        self._on_audio = None
        self._edge_rounds = collections.deque()  # offsets (µs) of the rounds of edges to play
        self._edge_index = 0  # the next edge of the first round
        self._edge_timer = None
        self._audio_timer = None
        self._started = False
        self._audio_pending = False
        self._end_us = timeline.end_us
        self._offsets = [0]  # where each round of the scenario starts (see replay)
        # Called with each new round's offset (µs) when it is queued: what the scenario
        # does beside the lines' signals (an operator's tags) comes round again too.
        self.on_replay = []
        self.delivered_us = None  # end of the last capture period delivered (the truth)
        self.on_power = []  # fn(event, t_us): "brownout", "restored"
        self.pi_on = True
        self.mcu = None
        self._power_fail_pin = None
        if hat.mcu is not None:
            self.mcu = self._make_mcu(hat.mcu)
        elif power:
            raise ValueError("the HAT %r has no supervisor MCU to cut the power of" % hat.id)
        for event in power:
            t_us = int(round(event.at_s * 1_000_000))
            self.clock.call_at(t_us, self.mcu.cut_power if event.cut else self._restore)
            self._end_us = max(self._end_us, t_us + 10_000_000)

    # ------------------------------------------------------------ Board API
    def start(self, on_edge, on_audio):
        """Start delivering; a board started again (after a power cut) joins the lines'
        state as it is now: earlier edges set the pins without calling anyone."""
        if self._started:
            raise RuntimeError("the simulated board is already started")
        if not self.pi_on:
            raise RuntimeError("the simulated Pi has no power")
        self._started = True
        self.gpio.start(on_edge)
        self._on_audio = on_audio
        self._edge_rounds = collections.deque(self._offsets)
        self._edge_index = 0
        self._catch_up_edges()
        self._next_edge()
        self._schedule_audio(self.clock.now_us())

    def _schedule_edges(self, offset_us):
        """Queue a round of the timeline's edges, shifted by ``offset_us``."""
        self._edge_rounds.append(offset_us)
        if self._edge_timer is None:
            self._next_edge()

    def _catch_up_edges(self):
        """Set the pins to what the edges before now made them, calling nobody (a board
        started again after a power cut finds the lines as they are)."""
        now, edges = self.clock.now_us(), self.timeline.edges
        while self._edge_rounds:
            offset = self._edge_rounds[0]
            while self._edge_index < len(edges) and edges[self._edge_index].t_us + offset < now:
                edge = edges[self._edge_index]
                self._edge_index += 1
                if self.gpio.has(edge.line, edge.signal):
                    self._set_level(edge)
            if self._edge_index < len(edges):
                return
            self._edge_rounds.popleft()
            self._edge_index = 0

    def _next_edge(self):
        """Put the next edge the HAT can see on the clock (one pending at a time)."""
        edges = self.timeline.edges
        while self._edge_rounds:
            while self._edge_index < len(edges):
                edge = edges[self._edge_index]
                self._edge_index += 1
                # A HAT without an optional input (in_use, power) simply cannot see it.
                if self.gpio.has(edge.line, edge.signal):
                    offset = self._edge_rounds[0]
                    self._edge_timer = self.clock.call_at(edge.t_us + offset, self._edge_driver(edge, offset))
                    return
            self._edge_rounds.popleft()
            self._edge_index = 0
        self._edge_timer = None

    def _set_level(self, edge):
        pin, spec = self.gpio.pin(edge.line, edge.signal)
        pin._change_state(edge.active != spec.active_low)

    def stop(self):
        for timer in (self._edge_timer, self._audio_timer):
            if timer is not None:
                timer.cancel()
        self._edge_timer = self._audio_timer = None
        self._edge_rounds.clear()
        self._edge_index = 0
        self._audio_pending = False
        self.gpio.stop()
        if self._power_fail_pin is not None:
            self._power_fail_pin.when_changed = None
        self._started = False

    # ------------------------------------------------------------ the MCU
    def _make_mcu(self, spec):
        from ..mcu.sim import SimMcu

        mcu = SimMcu(
            self.clock,
            farads=spec.holdup_farads,
            load_mw=spec.holdup_load_mw,
            min_mv=spec.holdup_min_mv,
            on_power_fail=self._power_fail_changed,
            on_brownout=self._brownout,
        )
        if spec.power_fail is not None:
            self._power_fail_pin = self.factory.pin(spec.power_fail.gpio)
            self._power_fail_pin.function = "input"
            self._power_fail_pin.pull = spec.power_fail.pull
            self._power_fail_pin.edges = "both"
            self._power_fail_pin.bounce = None
        return mcu

    def mcu_bus(self):
        """The I2C bus the MCU answers on (an ``smbus2.SMBus`` look-alike), or None."""
        return self.mcu.bus if self.mcu is not None else None

    def watch_power_fail(self, on_change):
        """Call ``on_change(active, t_us)`` on the MCU's power-fail GPIO line.

        Returns False when the HAT has no such line (then read the MCU's status).
        """
        pin = self._power_fail_pin
        if pin is None:
            return False
        spec = self.hat.mcu.power_fail

        def changed(ticks, state):
            on_change(bool(state) != spec.active_low, self.clock.now_us())

        self._power_fail_callback = changed  # gpiozero keeps only a weak reference
        pin.when_changed = changed
        return True

    def _power_fail_changed(self, active, t_us):
        pin = self._power_fail_pin
        if pin is None:
            return
        spec = self.hat.mcu.power_fail
        if active != spec.active_low:
            pin.drive_high()
        else:
            pin.drive_low()

    def _brownout(self, t_us):
        """The hold-up capacitor is empty: the Pi stops, mid-sentence if need be."""
        self.pi_on = False
        if self._started:
            self.stop()
        for listener in list(self.on_power):
            listener("brownout", t_us)

    def _restore(self):
        self.mcu.restore_power()
        self.pi_on = True
        for listener in list(self.on_power):
            listener("restored", self.clock.now_us())

    def run(self):
        """Run the clock to the end of the scenario; returns False if stopped early."""
        return self.clock.run_until(self._end_us)

    def replay(self):
        """Queue the whole scenario once more, starting where it last ended.

        Time goes on, so each round's calls are new, later calls. Call
        :meth:`run` again to play it.
        """
        # On the capture period grid, so every round's audio lines up the same way.
        offset = -(-self._end_us // self.period_us) * self.period_us
        now = self.clock.now_us()
        # Rounds that have ended are of no use to a board started again: let them go.
        self._offsets = [o for o in self._offsets if o + self.timeline.end_us >= now]
        self._offsets.append(offset)
        if self._started:
            self._schedule_edges(offset)
        for line, segs in self._segments.items():
            del segs[: self._cursor[line]]
            self._cursor[line] = 0
            segs.extend(self._round(line, offset))
        self._spans = merge_spans(
            [s for s in self._spans if s[1] > now]
            + [(a + offset, b + offset) for spans in self.timeline.active_spans.values() for a, b in spans]
        )
        self._end_us = offset + self.timeline.end_us
        if not self._audio_pending:
            self._schedule_audio(now)
        for callback in self.on_replay:
            callback(offset)

    def _round(self, line, offset_us):
        """The timeline's audio segments of ``line`` for a round starting at ``offset_us``."""
        return [
            [s.t_us + offset_us, s.end_us + offset_us, s, None]
            for s in sorted(self.timeline.audio.get(line, ()), key=lambda s: s.t_us)
        ]

    def play(self, line, samples):
        samples = pcm16(samples)
        t_us = self.clock.now_us()
        self._played[line].append((t_us, samples.astype(np.float32)))
        self.log.append((t_us, line, "play", len(samples)))

    def stop_playing(self, line):
        """What :meth:`play` put on ``line`` stops now: the rest of it is not heard."""
        t_us = self.clock.now_us()
        self._played[line] = [
            (t, x[: max(0, (t_us - t) * self.rate // 1_000_000)]) for t, x in self._played[line]
        ]
        self.log.append((t_us, line, "stop_playing", 0))

    # ------------------------------------------------------------ internals
    def _edge_driver(self, edge, offset_us=0):
        def drive():
            # The next edge first: the same clock time may hold several, in timeline order.
            self._next_edge()
            pin, spec = self.gpio.pin(edge.line, edge.signal)
            self.log.append((edge.t_us + offset_us, edge.line, edge.signal, edge.active))
            if edge.active != spec.active_low:
                pin.drive_high()
            else:
                pin.drive_low()

        return drive

    def _schedule_audio(self, t_us):
        """Schedule delivery of the next capture period at or after ``t_us``."""
        start = self._next_active(t_us)
        self._audio_pending = start is not None
        if start is None:
            return
        # Periods sit on a fixed grid, as an ALSA stream's would.
        start -= start % self.period_us
        self._audio_timer = self.clock.call_at(start + self.period_us, lambda: self._deliver(start))

    def _next_active(self, t_us):
        i = bisect.bisect_right(self._spans, (t_us, float("inf"))) - 1
        if i >= 0 and self._spans[i][1] > t_us:
            return t_us
        if i + 1 < len(self._spans):
            return self._spans[i + 1][0]
        return None

    def _deliver(self, t0_us):
        n = self.period_frames
        frames = np.zeros((n, self.channels), dtype=np.int16)
        for line in range(1, self.lines + 1):
            frames[:, self._channel[line]] = self.line_audio(line, t0_us, n)
        self.delivered_us = t0_us + self.period_us
        self._on_audio(frames.tobytes(), t0_us)
        self._schedule_audio(t0_us + self.period_us)

    def line_audio(self, line, t0_us, n):
        """The ``n`` samples of ``line`` starting at ``t0_us`` (noise + signals)."""
        noise = self._noise[line]
        i0 = (t0_us * self.rate // 1_000_000) % (len(noise) - n)
        out = noise[i0 : i0 + n].copy()
        t1_us = t0_us + n * 1_000_000 // self.rate
        for t_us, samples in self._overlapping(line, t0_us, t1_us):
            _mix(out, t0_us, self.rate, t_us, samples)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def _overlapping(self, line, t0_us, t1_us):
        # Periods are delivered in time order, so a cursor per line skips the
        # segments that are over for good, and lets their audio go.
        segs = self._segments[line]
        i = self._cursor[line]
        while i < len(segs) and segs[i][1] <= t0_us:
            segs[i][3] = None
            i += 1
        if i > 64:  # forget what has been played
            del segs[:i]
            i = 0
        self._cursor[line] = i
        for entry in segs[i:]:
            t_us, end_us, segment, samples = entry
            if t_us >= t1_us:
                break
            if end_us > t0_us:
                if samples is None:
                    samples = entry[3] = segment.samples.astype(np.float32)
                yield t_us, samples
        played = self._played[line]
        played[:] = [(t, x) for t, x in played if self._seg_end_us(t, x) > t0_us]
        for t_us, samples in played:
            if t_us < t1_us:
                yield t_us, samples

    def _seg_end_us(self, t_us, samples):
        return t_us + len(samples) * 1_000_000 // self.rate


def _mix(out, t0_us, rate, t_us, samples):
    """Add ``samples`` (starting at ``t_us``) into ``out`` (starting at ``t0_us``)."""
    offset = (t_us - t0_us) * rate // 1_000_000  # may be negative
    a = max(0, offset)
    b = min(len(out), offset + len(samples))
    if a < b:
        out[a:b] += samples[a - offset : b - offset]
