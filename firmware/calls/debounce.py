"""Software debouncing of the board's raw input edges, on an injected clock.

The board delivers every raw edge (gpiozero's own debouncing is off: it
would date changes by the *end* of the chatter and use the system clock).
Two small detectors turn them into the changes the line supervisor reasons
about, each dating a change by the FIRST edge of the run that caused it, so
call times stay accurate to the real event and not to its confirmation:

:class:`Debouncer`
    a contact (hook, in-use, polarity, power): a new level is confirmed once
    the input has stayed there for ``debounce_us`` after its last edge.

:class:`RingDetector`
    the ring input, which pulses at the ring frequency during a burst: a
    burst starts at its first active edge and has ended once no new pulse
    came for ``gap_us``; its end is the end of its last ring cycle.

Both call back from inside :meth:`edge` or from a clock timer; neither locks
(the supervisor serialises edges and timers under its own lock).
"""


class Debouncer:
    """Confirmed level changes of one contact input.

    :param clock: schedules confirmations (``call_at(t_us, fn)``, ``Timer.cancel``)
    :param debounce_us: how long the input must be stable after its last edge
    :param on_change: ``on_change(active, t_us)`` for each confirmed change,
        ``t_us`` being the first edge of the run that became stable
    :param level: the confirmed level to start from
    """

    def __init__(self, clock, debounce_us, on_change, level=False):
        if debounce_us < 0:
            raise ValueError("debounce_us must not be negative, not %r" % (debounce_us,))
        self._clock = clock
        self._debounce_us = int(debounce_us)
        self._on_change = on_change
        self.level = bool(level)
        self._raw = self.level
        self._run_start_us = None
        self._timer = None

    @property
    def pending_since(self):
        """First edge (µs) of a run not yet confirmed or dismissed, else ``None``.

        While this is set, the confirmed level may still change with that
        time: a decision about the period after it should wait.
        """
        return self._run_start_us

    def edge(self, active, t_us):
        """A raw edge: the input is now ``active`` since ``t_us``."""
        active = bool(active)
        if active == self._raw:
            return  # not a change (a repeated report)
        self._raw = active
        if self._run_start_us is None:
            self._run_start_us = t_us
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._clock.call_at(t_us + self._debounce_us, self._settle)

    def cancel(self):
        """Drop a pending confirmation (on shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _settle(self):
        self._timer = None
        start_us, self._run_start_us = self._run_start_us, None
        if self._raw != self.level:
            self.level = self._raw
            self._on_change(self.level, start_us)
        # else: chatter that came back to the confirmed level — a glitch.


class RingDetector:
    """Ring bursts from the pulsing ring-detect input.

    The detector conducts on one half-wave, so its last inactive edge comes
    half a ring cycle before the ring voltage stops: the reported end is that
    edge plus the inactive time seen between the burst's pulses (nothing for
    a detector that holds its output through the burst).

    A lone spike (a transient on the line, a few ms of chatter) is not a ring:
    a burst is confirmed once an active edge arrives at least ``confirm_us``
    after its first one, or the input is still active ``confirm_us`` after it
    (a detector that holds its output during the burst). The reported start is
    still the first edge. The shortest real burst (100 ms) always qualifies.

    :param clock: schedules the gap and confirmation checks
    :param gap_us: a burst has ended when no pulse came for this long; longer
        than one ring period (50 ms at 20 Hz), shorter than a cadence pause
    :param on_start: ``on_start(t_us)``, the burst's first active edge
    :param on_end: ``on_end(t_us)``, the end of the burst's last cycle
    :param confirm_us: see above; shorter than the shortest burst
    """

    def __init__(self, clock, gap_us, on_start, on_end, confirm_us=30_000):
        if gap_us <= 0 or confirm_us < 0:
            raise ValueError("gap_us must be positive and confirm_us not negative")
        self._clock = clock
        self._gap_us = int(gap_us)
        self._confirm_us = int(confirm_us)
        self._on_start = on_start
        self._on_end = on_end
        self._raw = False
        self._start_us = None  # first edge of the current (candidate) burst
        self._last_fall_us = None
        self._low_us = 0  # inactive time between two pulses of this burst
        self.in_burst = False  # a confirmed burst has started and not ended
        self._gap_timer = None
        self._hold_timer = None

    @property
    def pending_since(self):
        """Start (µs) of a candidate burst not yet confirmed or dismissed, else ``None``."""
        return None if self.in_burst else self._start_us

    def edge(self, active, t_us):
        """A raw edge of the ring input."""
        active = bool(active)
        if active == self._raw:
            return
        self._raw = active
        if active:
            self._cancel("_gap_timer")
            if self._start_us is None:
                self._start_us = t_us
                self._low_us = 0
                self._hold_timer = self._clock.call_at(t_us + self._confirm_us, self._hold)
            else:
                self._low_us = t_us - self._last_fall_us
                if not self.in_burst and t_us - self._start_us >= self._confirm_us:
                    self._confirm()
        else:
            self._last_fall_us = t_us
            if self._start_us is not None:
                self._cancel("_gap_timer")
                self._gap_timer = self._clock.call_at(t_us + self._gap_us, self._gap)

    def cancel(self):
        """Drop pending checks (on shutdown)."""
        self._cancel("_gap_timer")
        self._cancel("_hold_timer")

    def _cancel(self, name):
        timer = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)

    def _hold(self):
        self._hold_timer = None
        if self._raw and not self.in_burst and self._start_us is not None:
            self._confirm()

    def _confirm(self):
        self._cancel("_hold_timer")
        self.in_burst = True
        self._on_start(self._start_us)

    def _gap(self):
        self._gap_timer = None
        if self._raw:
            return  # cannot happen: a rising edge cancels the gap timer
        self._cancel("_hold_timer")
        self._start_us = None
        if self.in_burst:
            self.in_burst = False
            self._on_end(self._last_fall_us + self._low_us)
