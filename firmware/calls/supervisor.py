"""The line supervisor: raw board edges and DSP events in, call timelines out.

One state machine per line, driven by the board's raw input edges (debounced
here, see :mod:`firmware.calls.debounce`), by timers on the injected clock and by
the events of the line's DSP (DTMF digits, caller ID, tones). It publishes on
the event bus: :class:`~firmware.bus.LineStateChanged`, the call events
(:class:`~firmware.bus.CallStarted`, ``CallAnswered``, ``CallUpdated``,
``CallEnded``) carrying a :class:`~firmware.calls.call.Call`,
:class:`~firmware.bus.DigitDialled` (and each pulse of a pulsed digit,
:class:`~firmware.bus.DialPulse`), :class:`~firmware.bus.CallerIdReceived`,
:class:`~firmware.bus.ToneDetected` and :class:`~firmware.bus.LineFault`.

Line states (:data:`STATES`)::

    idle ──reversal / alert tone / caller ID──▶ alerting ──first ring──▶ ringing
    idle ──────────────────────first ring───────────────────────────────▶ ringing
    alerting ──caller ID, no ring for cid_wait_ms──▶ ringing (ring not sensed)
    ringing ──off-hook──▶ connected          ringing ──no ring for ring_timeout──▶ idle (missed)
    idle ──off-hook──▶ dialling ──reversal, voice, a policy code, or dial_timeout
                                  after the last digit──▶ connected
    connected ──loop-current break, reversal, clear-down tone or silence──▶ cleared ──on-hook──▶ idle
    cleared (by silence) ──sound on the line, still off-hook──▶ connected (the same call)
    connected / dialling ──on-hook──▶ idle
    any ──no line voltage for no_voltage_fault_ms──▶ fault ──voltage back──▶ idle

A caller ID (a number, or a withheld one) that no sensed ring follows within
``cid_wait_ms`` raises the line fault ``ring_not_sensed``: the port's ringing is
probably below what the HAT senses, and the phone ringing. The caller ID's call
starts then (dated at its first signal, noted ``ring_not_sensed``) and the line
is ringing: an off-hook within ``unrung_answer_ms`` of that signal answers it;
a new caller-ID phase (an alert tone, a caller ID) means its caller went, and
after ``unrung_answer_ms`` with neither it is missed, ended where it began (how
long it rang is not known). A ring sensed meanwhile makes it an ordinary
ringing call. An answer with no ring sensed (this, or an off-hook in the
caller-ID phase) is published ``provisional`` (the policy's notice and
recording wait) for ``UNRUNG_CONFIRM_US``: dial tone heard by then says nobody
was calling (the caller had gone, or the caller ID was for a phone elsewhere),
so the answer is withdrawn (:class:`~firmware.bus.CallAnswerWithdrawn`), the
call ends missed (noted ``dial_tone``) and an outbound call starts at the
off-hook; otherwise the answer stands (:class:`~firmware.bus.CallAnswerConfirmed`).
Keys pressed meanwhile are keys of the answered call, as below, never digits.

Keys pressed on a handset once a call is connected (a PCI pause code,
card numbers) are never dialled digits: they go to ``on_key`` only — not
on the bus, not on the call, not in any log — so the policy can act on its
codes without anything keeping the digits. While a call is still dialling,
keys that may be the start of one of the policy's codes (``key_codes``) are
held back from the number; if they complete a code after something was
dialled, the far end has answered: dialling ended where the code began, the
call is connected and the code goes to ``on_key``.

An outbound call is answered at the first evidence of it: the exchange
reversing the polarity, voice on the line after the last digit (the DSP's
:class:`~firmware.dsp.events.Speech`: a person or a voice menu; dial tone,
ringback and DTMF are tones, not voice), the ringback tone stopping out of
its cadence (:class:`~firmware.dsp.events.RingbackStopped`: a far end that
answers without a word, dated at the end of the last burst), a policy code keyed after the number
(above), a key after a complete number and a gap far longer than the
dialling's own pace (:func:`_complete_number`, ``ANSWER_GAP_US``, answered at
the last digit), or, failing all of these, ``dial_timeout_ms`` without a digit (dated
back to the end of the last digit) — unless the ringback tone was heard after
the last digit: then the far end is still being rung, a key pressed is the
answer (nobody dials into ringback), a loop break as short as a dial pulse is no
digit, and a call that goes on-hook before any of these is ``abandoned``, never
answered.
Nothing keyed after the answer joins the number, nor anything keyed after a card
number the dialled digits hold (:func:`firmware.policy.cards.has_card`: a card
number keyed straight on after the number, before the answer was noticed). The
card is masked on the call as it is recognised, from where it may begin but never
in the number's own digits (:func:`shortest_number`,
:func:`firmware.policy.cards.dialled_card_start`); its security code, an expiry
date are withheld - not on the call, the digit on the bus masked - and the call
says so (``digits_withheld``). An answer by the dial timeout
is *assumed* (``CallAnswered.assumed``): nothing showed that the far end is on
the line (a mobile network is silent for seconds before it rings), so the
first sign of it that follows - a voice, a key, a reversal (the answer's, not
a clear), the ringback ending - is published as
:class:`~firmware.bus.CallAnswerConfirmed`, which the consent notice waits for
(still after a silence clear taken back: the far end may be slow to answer).

A voice in a ringback gap may be the caller's own (the HAT hears both directions
on one channel): the DSP reports it at once as a *provisional* answer
(``Speech.provisional``) and the call is connected, dated at the voice. If the
next ringback burst comes on time the DSP withdraws it
(:class:`~firmware.dsp.events.AnswerWithdrawn`): the call's answer time is
cleared, :class:`~firmware.bus.CallAnswerWithdrawn` is published (whatever
acted on the answer undoes it), the note ``answer_speech`` becomes
``answer_withdrawn`` and the line is back to dialling with the far end rung -
exactly as if the voice had not been heard. The answer stands
(:class:`~firmware.bus.CallAnswerConfirmed`) once the next burst is overdue (the
DSP's ``RingbackStopped``), a key is pressed or the line reverses (a reversal
well after the voice is the real answer: the voice's is withdrawn and the call
answered at the reversal). A call that ends while its answer is still
provisional is judged as if it had not been answered (hung up: ``abandoned``).
The :class:`~firmware.bus.CallAnswered` of a provisional answer says so
(``provisional``): what the far end must hear waits for the confirmation.

The far end's clear is whichever comes first of: a loss of line voltage of
at least ``kbreak_min_ms`` (an exchange K-break, an adapter's open-loop
disconnect: ``end_reason`` "remote_break"), a polarity reversal while
connected (not the one that came with the answer: "remote_reversal"), a
clear-down tone of any country the DSP listens for ("remote_tone"), or
``silence_clear_ms`` of silence on the line ("remote_silence", ended where
the silence began). The silence clear is a guess, the one hang-up signal that
can be wrong (a hold without music, a handset laid down in a quiet office): while
our side is still off-hook after it, sound returning on the line re-opens the
same call (:class:`~firmware.bus.CallResumed`: its end and ``end_reason``
cleared, noted ``silence_resumed:<ms of the quiet>``); the line is back to
connected and the call ends again by any of the signals above. A clear-down
tone heard then is the real end (``remote_tone``); a signalled clear is never
taken back.

An outbound call that hears nothing from the line before our side hangs up - no dial
tone, no other call-progress tone, no voice, no answer but the dial timeout's - after at
least ``NO_DIAL_TONE_MIN_US`` off-hook is noted ``no_dial_tone``; ``NO_DIAL_TONE_CALLS`` of
them in a row raise the line fault ``line_no_dial_tone`` (a line with voltage and no
service: cut by the provider, an adapter that lost its network), cleared by the next dial
tone heard on the line. Only on a line whose dial tone the box has recognised since it
started and that has no outside-line digit (a switchboard's own dial tone may differ).

A local loop break is a dial pulse up to ``pulse_break_max_ms``, a hook flash
(noted, the call goes on) up to ``flash_max_ms`` while connected, an on-hook
beyond.

Every call time is the time of the real event (the first edge of a
debounced change, the start of a ring burst, a DSP event's own ``t_us``),
never the time it was confirmed, so the confirmation delays do not show in
the call log. A decision that a change *before* some deadline could still
overturn (a debounced edge not confirmed yet) waits until the inputs settle.

Threads: :meth:`Supervisor.on_edge` is called from the board's GPIO thread,
timers run on the clock's thread and DSP events arrive from the capture
reader; one lock serialises them. Events are published after the lock is
released, in the order they happened, so bus handlers may call back in.
"""

import collections
import functools
import logging
import threading
from dataclasses import dataclass, field, fields

from board.signals import BUTTON_SIGNALS, INPUT_SIGNALS, LINE_SIGNALS, REQUIRED_SIGNALS
from firmware.bus import (
    LINE_FAULTS,
    CallAnswerConfirmed,
    CallAnswered,
    CallAnswerWithdrawn,
    CallEnded,
    CallerIdReceived,
    CallResumed,
    CallStarted,
    CallUpdated,
    DialPulse,
    DigitDialled,
    LineFault,
    LineStateChanged,
    ToneDetected,
)
from firmware.calls.call import Call
from firmware.calls.debounce import Debouncer, RingDetector
from firmware.dsp.events import KINDS as DSP_KINDS
from firmware.errors import ConfigError
from firmware.policy import cards
from telephony import countries

log = logging.getLogger(__name__)

IDLE = "idle"
ALERTING = "alerting"  # UK caller-ID phase: reversal or alert tone seen, no ring yet
RINGING = "ringing"
DIALLING = "dialling"  # off-hook outbound, before and while dialling
CONNECTED = "connected"
CLEARED = "cleared"  # the far end cleared; our side is still off-hook
FAULT = "fault"  # no line voltage
STATES = (IDLE, ALERTING, RINGING, DIALLING, CONNECTED, CLEARED, FAULT)

NO_LINE_VOLTAGE = "no_line_voltage"
STUCK_OFF_HOOK = "stuck_off_hook"
RING_NOT_SENSED = "ring_not_sensed"  # caller ID came, no ring followed: ringing too weak?
NO_DIAL_TONE = "line_no_dial_tone"  # calls out in a row heard no dial tone: service cut?
# The note of an outbound call that heard no dial tone, nor anything else from the line.
NO_DIAL_TONE_NOTE = "no_dial_tone"
# Outbound calls in a row that hear nothing from the line raise NO_DIAL_TONE: one is a
# handset lifted and put back, or a misdial.
NO_DIAL_TONE_CALLS = 2
# An off-hook shorter than this says nothing about the dial tone: the DSP reports it after
# 800 ms of it, and a handset knocked off and put back hears none.
NO_DIAL_TONE_MIN_US = 2_000_000

# Dialling has ended when a complete number is followed by a gap this long, and
# GAP_FACTOR times the dialling's own typical gap (a pause to read a number on
# is inside an incomplete number, so it never counts).
ANSWER_GAP_US = 1_500_000
# The UK areas whose numbers may be 0 and 9 digits: Brampton, the only area with
# four-digit local numbers (and five-digit ones). Every other national number is 0 and
# 10 but under 0800 (Ofcom's National Telephone Numbering Plan): so are those of the
# other eleven five-digit area codes (013873, 015242, 015394, 015395, 015396, 016973,
# 016974, 017683, 017684, 017687, 019467), whose local numbers all have five digits.
UK_SHORT_AREAS = ("016977",)
# A UK number dialled without its area code (a local number) has 4 to 8 digits, by its
# area, which the box cannot see; one starting 7 or 8 has at most 8 (London's, 020 and
# 8). One starting 9 too, but where the line's outside-line digit is not set the 9 may be
# a switchboard's, before a number of its own (9 and a local number, 9 keys; 9 and a
# national one, 12): such a start keeps 8, or 1 and what the number after the 9 keeps,
# 11 at most (docs/pci.md). 2-6 may begin a card: no tone is kept of those. After a
# 9, a 1 begins no local number (a short code, a prefix) and a 2-6 may begin a card
# keyed after a switchboard's 9: those keep 1 and what the number after the 9 keeps.
UK_LOCAL_FIRST = "78"
UK_NOT_LOCAL_AFTER_9 = "1" + cards.ISSUER_FIRST
UK_LOCAL_DIGITS = 8
UK_LOCAL_FEWEST = 4  # Brampton's
# The most keys a UK number whose start says nothing keeps the tones of (0 and 10).
UK_LONGEST = 11
# A UK number starting 1 that is no service number the box knows and no prefix is a
# short code (150, 1571, 17070) or a carrier's access code before a number: none is
# shorter than 1 and two digits, so a key past the third may be the first of a card keyed
# on after a short code. Those keys' tones are cut; the call log keeps them (docs/pci.md).
UK_SHORT_CODE_KEPT = 3
GAP_FACTOR = 3
CLEAR_TONES = frozenset({"busy", "unobtainable", "congestion"})
# The tones that show the exchange (or adapter) is there: any of them on a call out.
PROGRESS_TONES = frozenset({"dial", "ringback"}) | CLEAR_TONES
SILENCE_RECHECK_US = 1_000_000  # silent while still dialling: when to look again
# A lone ring burst this short before caller ID is a ring-pulse alert (ETSI RP-AS, 200-300 ms),
# not a first ring (the shortest cadence burst in use, the UK's, is 400 ms).
RING_PULSE_MAX_MS = 330
LOOP_SIGNALS = ("hook", "in_use")
# An inbound call answered with no ring sensed stays provisional this long after the
# off-hook: dial tone heard by then (the DSP reports it after 800 ms of it) says nobody
# was calling, and the call is an outbound one (see the module docstring).
UNRUNG_CONFIRM_US = 2_000_000
# A reversal this shortly before an alert tone or caller ID began its caller-ID phase
# (SIN 227: 0.15 s before the alert, 0.3 s before DTMF caller ID).
NEXT_CALLER_REVERSAL_US = 1_000_000
# A North American carrier's access code: 101 and four digits, then the number (1 and ten).
US_ACCESS_CODE, US_ACCESS_DIGITS = "101", 7
# The note of a call still being dialled when the box stopped hearing its line (a power-fail
# seal, a stop): its number is the digits dialled by then, nothing joins it after.
DIALLING_CUT = "dialling_cut"


def _us(ms):
    return ms * 1000


@dataclass(frozen=True)
class SupervisorConfig:
    """Timing of the line supervisor; every time in the unit its name ends in.

    ``country``              a box country of :mod:`telephony.countries`: picks
                             the default ``ring_timeout_ms``
    ``debounce_ms``          a contact's level counts once stable this long; must
                             stay below pulse dialling's ~33 ms makes (15 ms)
    ``ring_gap_ms``          no ring pulse for this long ends a ring burst (150 ms)
    ``ring_confirm_ms``      a ring burst is real once it lasts this long (30 ms)
    ``pulse_break_max_ms``   a longer loop break is an on-hook, a shorter one a
                             dial pulse (150 ms)
    ``interdigit_ms``        a loop make this long ends a pulsed digit (200 ms)
    ``dial_timeout_ms``      no new digit for this long after the last one:
                             dialling has ended and the call is connected (4000 ms)
    ``ring_timeout_ms``      no ring for this long after a burst: missed
                             (None: the country's, 3500 ms in the UK, 5500 ms
                             in the US)
    ``cid_wait_ms``          after an idle-line reversal, alert tone or caller ID,
                             how long to wait for the first ring (5000 ms)
    ``unrung_answer_ms``     after a caller ID that no sensed ring followed, how
                             long an off-hook still answers that caller (ringing
                             too weak for the HAT); from the caller ID's first
                             signal, longer than ``cid_wait_ms`` (60000 ms)
    ``kbreak_min_ms``        a loss of line voltage this long during a call is
                             the network clearing it: a K-break, an adapter's
                             open-loop disconnect (90 ms)
    ``flash_max_ms``         while connected, a loop break up to this long that
                             ends with the loop made again is a hook flash, not
                             an on-hook (None: ``pulse_break_max_ms``, no flash)
    ``silence_clear_ms``     this long with no sound on the line while connected
                             is the far end gone (60000 ms)
    ``no_voltage_fault_ms``  no line voltage this long is a fault (3000 ms)
    ``stuck_off_hook_ms``    off-hook this long is a fault (2 hours)
    ``outside_line``         ``{line: digits}``: the outside-line digit of each line
                             on a PBX extension that has one (``policy.rules.lines``'
                             ``outside_line``), a prefix of the numbers dialled on
                             it (:func:`dialling_prefix`)

    Raises :class:`~firmware.errors.ConfigError` naming the field on invalid values.
    """

    country: str = "uk"
    debounce_ms: int = 15
    ring_gap_ms: int = 150
    ring_confirm_ms: int = 30
    pulse_break_max_ms: int = 150
    interdigit_ms: int = 200
    dial_timeout_ms: int = 4000
    ring_timeout_ms: int = None
    cid_wait_ms: int = 5000
    unrung_answer_ms: int = 60_000
    kbreak_min_ms: int = 90
    no_voltage_fault_ms: int = 3000
    stuck_off_hook_ms: int = 2 * 3600 * 1000
    flash_max_ms: int = None
    silence_clear_ms: int = 60_000
    outside_line: dict = field(default_factory=dict)

    def __post_init__(self):
        known = countries.box_countries()
        if self.country not in known:
            raise ConfigError("must be one of %s, not %r" % (", ".join(known), self.country), field="country")
        if self.ring_timeout_ms is None:
            object.__setattr__(self, "ring_timeout_ms", countries.country(self.country).ring_timeout_ms)
        if self.flash_max_ms is None:
            object.__setattr__(self, "flash_max_ms", self.pulse_break_max_ms)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("country", "outside_line"):
                continue
            lowest = 0 if f.name in ("debounce_ms", "ring_confirm_ms") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ConfigError(
                    "must be a whole number of milliseconds >= %d, not %r" % (lowest, value), field=f.name
                )
        self._require("debounce_ms", "pulse_break_max_ms", "dial pulses would vanish")
        self._require("debounce_ms", "kbreak_min_ms", "K-breaks would vanish")
        self._require("ring_confirm_ms", "ring_gap_ms", "bursts would end before they count")
        self._require("ring_gap_ms", "ring_timeout_ms", "a pause between bursts would end the call")
        self._require("interdigit_ms", "dial_timeout_ms", "dialling would end inside a digit")
        self._require("kbreak_min_ms", "no_voltage_fault_ms", "no K-break could be told apart")
        self._require(
            "cid_wait_ms", "unrung_answer_ms", "a caller ID would be dropped before its ring is due"
        )
        if self.flash_max_ms < self.pulse_break_max_ms:
            raise ConfigError(
                "must be at least pulse_break_max_ms (%d ms)" % self.pulse_break_max_ms, field="flash_max_ms"
            )

    def _require(self, shorter, longer, why):
        a, b = getattr(self, shorter), getattr(self, longer)
        if a < b:
            return
        # Name the field that was changed from its default: that is the one to fix.
        defaults = {f.name: f.default for f in fields(self)}
        if a == defaults[shorter] and b != defaults[longer]:
            raise ConfigError("must be longer than %s (%d ms), or %s" % (shorter, a, why), field=longer)
        raise ConfigError("must be shorter than %s (%d ms), or %s" % (longer, b, why), field=shorter)


class Supervisor:
    """The state machines of all lines (see the module docstring).

    :param lines: number of lines, numbered from 1
    :param clock: a :class:`~firmware.clock.Clock`; edge times are on it
    :param bus: the :class:`~firmware.bus.EventBus` to publish on
    :param config: a :class:`SupervisorConfig` (defaults if None)
    :param signals: the input signals the HAT wires (at least hook, ring and
        polarity); without ``in_use`` there is no extension detection, without
        ``power`` no line-voltage faults and no K-break clears. Buttons
        (:data:`board.signals.BUTTON_SIGNALS`) are the policy's, not line state:
        they are left out
    :param on_hook_change: ``f(line, off_hook)`` called when a line goes
        off-hook or back on-hook (not for dial pulses), so the DSP knows
        whether DTMF is caller ID or dialling; also settable as an attribute
    :param on_key: ``f(line, digit, t_us, end_us)`` called for each DTMF key
        pressed during a connected call (see the module docstring); also an
        attribute
    :param key_codes: ``f() -> codes``: the key codes (strings) the policy
        acts on, held back while dialling (see the module docstring); also an
        attribute

    Raises :class:`~firmware.errors.ConfigError` for an unusable ``signals``.
    """

    def __init__(
        self,
        lines,
        clock,
        bus,
        config=None,
        signals=frozenset(LINE_SIGNALS),
        on_hook_change=None,
        on_key=None,
        key_codes=None,
    ):
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
            raise ValueError("lines must be a positive number of lines, not %r" % (lines,))
        signals = frozenset(signals) - set(BUTTON_SIGNALS)
        if signals - set(INPUT_SIGNALS):
            raise ConfigError(
                "unknown input signals %s" % ", ".join(sorted(signals - set(INPUT_SIGNALS))), field="signals"
            )
        if set(REQUIRED_SIGNALS) - signals:
            raise ConfigError(
                "the HAT must wire %s" % ", ".join(sorted(set(REQUIRED_SIGNALS) - signals)), field="signals"
            )
        self.config = config if config is not None else SupervisorConfig()
        self.signals = signals
        self.on_hook_change = on_hook_change
        self.on_key = on_key
        self.key_codes = key_codes
        self._bus = bus
        self._lock = threading.RLock()
        self._publish_lock = threading.RLock()
        self._outbox = collections.deque()
        self._closed = False
        self._timers = _GuardedClock(clock, self._run)
        self.synced_us = None  # when sync() took the levels the lines had at start-up
        self._lines = {n: _Line(self, n) for n in range(1, lines + 1)}

    # ---------------------------------------------------------------- inputs
    def on_edge(self, line, signal, active, t_us):
        """A raw (undebounced) edge: ``signal`` on ``line`` became ``active`` at ``t_us``.

        Raises ValueError for an unknown line or a signal the HAT does not wire.
        Edges after :meth:`close` are ignored.
        """
        if signal not in self.signals:
            raise ValueError("line %r: %r is not an input this HAT wires" % (line, signal))
        self._run(self._line(line).edge, signal, bool(active), int(t_us))

    def on_dsp_event(self, line, event):
        """An event from ``line``'s DSP: DtmfDigit, CallerId, CallerIdError, AlertTone or Tone.

        Matched by class name (or, failing that, by attributes); others are ignored.
        """
        self._run(self._line(line).dsp_event, event)

    def sync(self, read, open_faults=None):
        """Take every input's current level from ``read(line, signal)`` as an edge now.

        Call once right after the board has started (``sup.sync(board.read)``):
        the supervisor assumes idle levels (line voltage present, everything
        else inactive) and a line that is already dead or off-hook at start-up
        sends no edge to say so. A line off-hook then is a call already under way
        (the power came back, the recorder restarted): it is taken as connected at
        once, noted ``in_progress_at_start``, its number and start unknown, and
        recorded as the rules say for an outbound call (its notice played into it);
        taken for a call being dialled, it was never answered, and so never
        recorded.

        ``open_faults`` (``{line: kinds}``): the line faults still open in the alarm
        history when the last run stopped. They are the line's again, so that a
        fault that lasts is the same occurrence (no second alarm, no second mail),
        and one that ended while the box was down clears once the levels have
        settled: a dead line that works again, a handset put back. A ring not
        sensed clears at the next ring sensed, as in the run that raised it.
        """
        now_us = self._timers.now_us()
        self.synced_us = now_us
        for line, kinds in (open_faults or {}).items():
            if line in self._lines:
                self._run(self._lines[line].restore_faults, set(kinds), now_us)
        for line in self._lines:
            for signal in sorted(self.signals):
                self.on_edge(line, signal, read(line, signal), now_us)

    # ---------------------------------------------------------------- queries
    def settle_us(self):
        """How long after :meth:`sync` every line's levels read then have settled."""
        with self._lock:
            return max((state.settle_us() for state in self._lines.values()), default=0)

    def state(self, line):
        """The line's state, one of :data:`STATES`."""
        with self._lock:
            return self._line(line).state

    def live_call(self, line):
        """The line's call in progress (a :class:`~firmware.calls.call.Call`), or None."""
        with self._lock:
            return self._line(line).call

    def answer_stands(self, line):
        """Whether the line's call is answered for good: an answer that is not a
        provisional one (a voice in ringback that may still be withdrawn)."""
        with self._lock:
            state = self._line(line)
            return (
                state.call is not None
                and state.call.answered_us is not None
                and not state.provisional
                and not state.unrung_answer
            )

    def any_live_call(self):
        """Whether a call is in progress on any line (one lock, for the power-fail poll)."""
        with self._lock:
            return any(state.call is not None for state in self._lines.values())

    def faults(self, line):
        """The kinds of the line's active faults, as a new set."""
        with self._lock:
            return set(self._line(line).faults)

    def is_off_hook(self, line):
        """Whether someone is off-hook on the line (a dial pulse does not count as on-hook)."""
        with self._lock:
            return self._line(line).off_hook

    def reconfigure(self, config):
        """Use ``config`` (a :class:`SupervisorConfig`) from now on, e.g. a new country.

        Timers already running keep their deadlines; ``debounce_ms`` applies
        at the next start.
        """
        with self._lock:
            self.config = config
            for line in self._lines.values():
                line.cfg = config

    def close(self, heard_until_us=None):
        """Cancel every timer; later edges and events are ignored. Idempotent.

        ``heard_until_us``: the box stops hearing the lines at that clock time (a
        power-fail seal, a stop; every edge and DSP event before it delivered). A call
        still being dialled then keeps the digits dialled by then, as at an on-hook: a
        pulsed digit whose interdigit gap had passed and keys held as a possible code
        are digits of the number; a digit still being pulsed is not (how many pulses it
        would have had is unknown: noted ``pulse_digit_cut:<pulses>``). The call is noted
        ``dialling_cut`` and published (:class:`~firmware.bus.CallUpdated`): nothing
        joins its number after, so the call log writes it, masked as ever
        (:func:`stored_number`), before it ends the call. Without this it ended with no
        number, its dialling never over."""
        with self._lock:
            if not self._closed and heard_until_us is not None:
                for state in self._lines.values():
                    state.stop_hearing(heard_until_us)
            self._closed = True
            self._timers.cancel_all()
        self._flush()

    # ---------------------------------------------------------------- internals
    def _line(self, line):
        try:
            return self._lines[line]
        except KeyError:
            raise ValueError("no line %r (lines are 1 to %d)" % (line, len(self._lines))) from None

    def _run(self, fn, *args):
        with self._lock:
            if self._closed:
                return
            fn(*args)
        self._flush()

    def _emit(self, event):
        self._outbox.append(functools.partial(self._bus.publish, event))

    def _notify_key(self, line, digit, t_us, end_us):
        if self.on_key is not None:
            self._outbox.append(functools.partial(self.on_key, line, digit, t_us, end_us))

    def _codes(self):
        codes = self.key_codes() if self.key_codes is not None else ()
        return tuple(c for c in codes if c)

    def _notify_hook(self, line, off_hook):
        if self.on_hook_change is not None:
            self._outbox.append(functools.partial(self.on_hook_change, line, off_hook))

    def _flush(self):
        # One publisher at a time, oldest first: events from the GPIO thread and
        # the timer thread cannot overtake each other, and a handler that calls
        # back in (reentrant locks) only appends to the same queue.
        with self._publish_lock:
            while True:
                with self._lock:
                    if not self._outbox:
                        return
                    deliver = self._outbox.popleft()
                deliver()


class _GuardedClock:
    """The clock as the supervisor's parts see it.

    Every callback runs under the supervisor's lock (and its events are then
    published), a timer cancelled under the lock never runs even if the
    clock's thread already picked it, and :meth:`cancel_all` stops them all.
    """

    def __init__(self, clock, run):
        self._clock = clock
        self._run = run
        self._live = set()

    def now_us(self):
        return self._clock.now_us()

    def call_at(self, t_us, fn):
        handle = _Handle(self._live)
        handle.timer = self._clock.call_at(t_us, lambda: self._run(handle.fire, fn))
        self._live.add(handle)
        return handle

    def cancel_all(self):
        for handle in list(self._live):
            handle.cancel()


class _Handle:
    __slots__ = ("timer", "cancelled", "_live")

    def __init__(self, live):
        self._live = live
        self.timer = None
        self.cancelled = False

    def cancel(self):
        self.cancelled = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None  # the timer's callback refers to this handle: break the cycle
        self._live.discard(self)

    def fire(self, fn):
        self.timer = None  # as in cancel(): no handle <-> timer cycle left for the GC
        if not self.cancelled:
            self._live.discard(self)
            self.cancelled = True
            fn()


def _complete_number(number, country, outside=""):
    """Whether dialled ``number`` is already a whole number in ``country``'s plan.

    UK: a national number (0 and 9 or 10 digits) or an international one (00 and at
    least 7). US: ten digits (NXX NXX XXXX), 1 and ten, or 011 and at least 7. A prefix
    withholding or giving the caller's number, or the line's outside-line digit
    ``outside`` (:func:`dialling_prefix`), is not its start.
    """
    number = number[dialling_prefix(number, country, outside) :]
    if not number.isdigit():
        return False
    if country == "us":
        if number.startswith("011"):
            return len(number) >= 10
        return len(number) >= (11 if number.startswith("1") else 10)
    if number.startswith("00"):
        return len(number) >= 9
    return number.startswith("0") and len(number) >= 10


def dialling_prefix(number, country, outside=""):
    """How many of dialled ``number``'s first keys are a prefix dialled before the number
    only to withhold or give the caller's own number (the country's
    ``presentation_prefixes``: the UK's 141 and 1470, North America's *67 and *82, GSM's
    #31# in either), or to call it through a relay service for deaf and speech-impaired
    people (``relay_prefixes``: the UK's 18001 and 18002, North America's 711), or 0
    when it begins with none. The number is what follows, and is judged without it (its
    length, where a card keyed on after it may begin). A prefix withholding or giving the
    caller's number is one only before what may begin a number there (UK: a 0; North
    America: any digit) or before a relay prefix: ``1412`` is no prefix and a number. A
    relay prefix is one before any digit: what follows is the number called, whatever it
    is (``18001 101``, ``18001 999``, ``18001 141 01632 960123``); no UK number begins
    18001 or 18002 but these, and no North American one 711 (no area code or exchange is
    N11).

    ``outside``: the line's outside-line digit (a PBX extension's ``9``: ``outside_line``
    in ``policy.rules.lines``), or "". On such a line it is a prefix wherever the number
    begins with it, before a prefix above too (``9 141 01632 960123``)."""
    skip = len(outside) if outside and number.startswith(outside) else 0
    fmt = countries.country(country).numbers
    starts = fmt.trunk_prefix[:1] + fmt.international_prefix[:1] + fmt.national_first_digits
    while True:  # 141 18001, 18001 141: one prefix after another
        found = _relay_prefix(number, skip, fmt)
        for prefix in () if found else fmt.presentation_prefixes:
            after = skip + len(prefix)
            if number.startswith(prefix, skip) and (
                number[after : after + 1] in tuple(starts) or _relay_prefix(number, after, fmt)
            ):
                found = len(prefix)
                break
        if not found:
            return skip
        skip += found


def _relay_prefix(number, at, fmt):
    """How many keys long the relay prefix (``fmt.relay_prefixes``) dialled ``number`` has at
    index ``at`` is, a digit following it (:func:`dialling_prefix`), or 0 for none."""
    for prefix in fmt.relay_prefixes:
        if number.startswith(prefix, at) and number[at + len(prefix) : at + len(prefix) + 1].isdigit():
            return len(prefix)
    return 0


def stored_number(call, country):
    """``call``'s number as the box keeps and shows it (the call log, a recording's
    header, the live view), its card numbers masked (PCI DSS, :mod:`firmware.policy.cards`).

    A number dialled (an outbound call's) is judged as :meth:`_Line._digit` judges it in
    ``country``'s plan (:func:`firmware.policy.cards.scrub_dialled`): a prefix before it
    (:func:`dialling_prefix`) is not part of it, so ``141`` and a UK number, or ``*67``,
    1 and a US one, keep their digits where a Luhn-valid run begins in the prefix's keys
    and ends within the number; a card keyed on after it is masked as ever. A number the
    network gave (an inbound call's) has no prefix dialled: the general check
    (:func:`firmware.policy.cards.scrub`)."""
    number = getattr(call, "number", None)
    if getattr(call, "direction", None) != "out" or not isinstance(number, str):
        return cards.scrub(number)
    outside = getattr(call, "outside_line", "")
    whole, skip = _logged_bounds(number, country, outside)
    stored = cards.scrub_dialled(number, whole, skip)
    # Keys past the number that no card check found: a card cut short, its dialling over
    # before its last digit (an on-hook, a power cut, a pause), keeps at most its first six.
    # The digits the number may have past ``whole``: none for one whose plan fixes its length
    # (a UK optional digit is judged as a card's first, as ever), up to 8 abroad.
    optional = _optional_digits(number[skip:], country)
    spare = max(0, _longest_number(number, country, outside) - whole - optional)
    if country == "us" and number[skip:].startswith(US_ACCESS_CODE) and whole > skip + US_ACCESS_DIGITS:
        # Taken for 1 and ten (docs/pci.md), it may be 101, four digits and such a number.
        spare = max(spare, US_ACCESS_DIGITS + 11 - whole)
    return cards.mask_cut_short(stored, whole, optional, spare)


def _logged_bounds(number, country, outside=""):
    """``(whole, skip)``: dialled ``number``'s shortest whole length
    (:func:`shortest_number`) and its prefix's keys (:func:`dialling_prefix`), as the
    call log judges a card number keyed on after it (:meth:`_Line._digit`,
    :func:`stored_number`).

    On a UK line whose outside-line digit ``outside`` is not set, a number starting
    ``9`` and then a prefix (``18001``, ``18002``, ``141``, ``1470``) and a number whose
    start tells its length is judged without the 9, which adds 1 to both: the 9 is a
    switchboard's. Judged as dialled, its start said nothing, and past 15 digits
    (``9 18001 01632 960123``) it was masked whole with no card keyed (docs/pci.md).
    The only other number beginning so is a local one starting 9 (4 to 8 digits), and
    a card keyed on after one would begin at the 5th to 9th key: where such a card may
    already be there (13 digits or more from a 2-6 among those keys), or where the
    number judged without the 9 holds a card, it is judged as dialled, as before, so
    the mask runs from where either card may begin. Not 9 and a national number alone
    (``9 01632 960123``): 12 digits, no card window, and a card with its first digit
    slipped to 9 (``40...`` keyed as ``90...``) would keep 12 of its digits."""
    whole, skip = shortest_number(number, country, outside), dialling_prefix(number, country, outside)
    if country != "uk" or outside or whole or skip or number[:1] != "9" or not number.isdigit():
        return whole, skip
    rest_skip = dialling_prefix(number[1:], country)
    rest_whole = shortest_number(number[1:], country)
    if not (rest_skip and rest_whole):
        return whole, skip
    for at in range(UK_LOCAL_FEWEST, UK_LOCAL_DIGITS + 1):
        if len(number) - at >= cards.PAN_MIN and number[at] in cards.ISSUER_FIRST:
            return whole, skip  # a local number starting 9 and a card keyed on after it
    whole_9, skip_9 = 1 + rest_whole, 1 + rest_skip
    if cards.mask_dialled(number, whole_9, skip_9, _optional_digits(number[skip_9:], country)) != number:
        # A card keyed on. Its mask is final (no later key unmasks or re-judges a digit),
        # so it must run from where a card after a local number may begin too: as before.
        return whole, skip
    return whole_9, skip_9


def shortest_number(number, country, outside=""):
    """How many digits the number dialled as ``number`` begins has at least, as far as
    its start tells (a card number keyed on after it cannot begin sooner); 0 when it
    does not tell (a short code the box does not know, a North American number
    without its 1: a card number could begin at once).

    UK: 0 and 10 digits (01, 02, 03, 05, 07, 08, 09), but 0 and 9 in Brampton, the area
    with four-digit local numbers (:data:`UK_SHORT_AREAS`), and under 0800 (0800 and
    six digits; 0800 1111 has 8), 00 and 7; 141 or 1470 (the caller's number
    withheld, given) before any of these; 18001 or 18002 (Relay UK) before any number,
    these and those below; 999 and 112 (emergency) 3, 18000 (999 through Relay UK) 5; a service number
    as long as ``service_numbers`` in :mod:`telephony.countries` says (118 and 116 and
    three digits, 100, 101, 105, 111 and 123, 1471).
    US: 1 and 10, 011 and 7 (101 and four digits, a carrier's access code, is taken for the
    start of 1 and 10, but is 7 where a key other than 0 or 1 follows it: no number does,
    so it is a card keyed on after the code); *67 or *82 (withheld, given) before either, 711 (the relay
    service) before any number; 911 3.
    An international number to a country whose plan the box knows is as long as it
    says (:func:`_abroad`): 00 and 1 and ten digits, 00 and 44 and a UK number without
    its 0.
    """
    skip = dialling_prefix(number, country, outside)
    if skip:
        rest = shortest_number(number[skip:], country)
        # *67 before a North American number without its 1 says nothing of its length,
        # nor does the outside-line digit or a relay prefix (18001) before a number whose
        # start says nothing (a short code).
        relay = number[:skip].endswith(countries.country(country).numbers.relay_prefixes)
        said_nothing = country == "us" or bool(outside) and number.startswith(outside) or relay
        return 0 if said_nothing and not rest else skip + rest
    if _emergency(number, country):
        return _emergency(number, country)
    for start, digits in countries.country(country).numbers.service_numbers:
        if number.startswith(start):
            return digits
    if country == "us":
        if number.startswith("011"):
            return 3 + _abroad(number[3:])[0]
        if number.startswith(US_ACCESS_CODE) and number[US_ACCESS_DIGITS : US_ACCESS_DIGITS + 1] not in "01":
            # 101 and four digits, a carrier's access code, then no number: one dialled
            # after it begins 1 (1 and ten), 011 or 0 (the operator), and no 1 and ten
            # begins 10. What follows is keyed on after the code (a card, 2-6).
            return US_ACCESS_DIGITS
        return 11 if number.startswith("1") else 0
    if number.startswith("00"):
        return 2 + _abroad(number[2:])[0]
    if number.startswith("08001111"):
        return 8
    if number.startswith(("0800",) + UK_SHORT_AREAS):
        return 10
    # No UK number begins 04 or 06. Prefixes are known by the time a window can be
    # found (13 digits), so a number still being dialled needs no better answer.
    return 11 if number[:1] == "0" and number[1:2] in tuple("1235789") else 0


def _optional_digits(number, country):
    """How many digits past its shortest whole length (:func:`shortest_number`) the UK
    number dialled as ``number`` (its prefix left out) may still have: 1 for an 0800
    number (0 and 9 or 10 digits; not 0800 1111) and one in Brampton (:data:`UK_SHORT_AREAS`),
    else 0. The call log keeps such a digit where a card follows and it cannot begin
    one (:func:`firmware.policy.cards.dialled_card_start`)."""
    if country != "uk" or number.startswith("08001111"):
        return 0
    return 1 if number.startswith(("0800",) + UK_SHORT_AREAS) else 0


def _emergency(number, country):
    """How many digits the emergency number ``number`` begins with has (UK 999 or 112,
    US 911: 3; UK 18000, 999 through Relay UK: 5), or 0 for none. It is a whole number: a
    card number keyed on after it is past it from its first key (``emergency_numbers``
    in :mod:`telephony.countries`)."""
    for code in countries.country(country).numbers.emergency_numbers:
        if number.startswith(code):
            return len(code)
    return 0


def _abroad(digits):
    """``(shortest, longest)``: how many digits an international number has after its
    prefix, ``digits`` being those dialled after it so far.

    A North American number (country code 1) has ten after its country code, a UK one
    (44) the UK number without its 0 (:func:`shortest_number`: 9 or 10, 7 for 0800
    1111), so the number's optional last digits are known to be none (or the UK's
    one): a card keyed on after it is masked from its end, never inside it. Any other
    country's number has 7 to 15 digits (E.164): a card keyed on after one is masked
    from its seventh, whatever of the number follows (docs/pci.md)."""
    if digits.startswith("1"):
        return 11, 11
    if digits.startswith("44") and digits[2:3] != "0":  # 44 0 ...: no UK number, as it is dialled
        home = shortest_number("0" + digits[2:], "uk")
        if home:
            return 2 + home - 1, 2 + 10
    return 7, 15


def _longest_number(number, country, outside=""):
    """How many digits the longest number dialled as ``number`` begins can have: an
    international one is its prefix and 15 digits (E.164; fewer to a country whose plan
    the box knows, :func:`_abroad`), a UK national one 11 (0 and 10), a North American
    one 11 (1 and 10), or 10 when its start shows it is dialled without the 1
    (``national_first_digits``: an area code, 2-9), a UK local one starting 7 or 8
    (:data:`UK_LOCAL_FIRST`) 8, or 9 (a local number, 8; or, where the line's
    outside-line digit is not set, a switchboard's 9 and a number: 1 and as many as that
    number keeps the tones of, 11 at most; where a 1-6 follows the 9, only that:
    :data:`UK_NOT_LOCAL_AFTER_9`), an emergency number its own (3, 18000 5); a UK
    one starting 1 that no rule before knows (a short code, or an access code and a number) is taken as 3
    long, the shortest short code (:data:`UK_SHORT_CODE_KEPT`: its tones past that
    are cut, as a card's may be), or as the prefix it may still be (1470, 18001); a
    prefix withholding or giving the caller's number or calling through a relay service
    (:func:`dialling_prefix`), or the line's outside-line digit ``outside``, adds its
    keys."""
    skip = dialling_prefix(number, country, outside)
    if skip:
        return skip + _longest_number(number[skip:], country)
    if _emergency(number, country):
        return _emergency(number, country)
    numbers = countries.country(country).numbers
    if numbers.national_digits and number[:1] and number[0] in numbers.national_first_digits:
        # Dialled without its trunk prefix (North America: an area code never starts with
        # 0 or 1, so a number starting 2-9 has no 1 before it): the national digits alone.
        return numbers.national_digits
    if country == "us":
        return 3 + _abroad(number[3:])[1] if number.startswith("011") else 11
    if number.startswith("00"):
        return 2 + _abroad(number[2:])[1]
    if number[:1] and number[0] in UK_LOCAL_FIRST:
        return UK_LOCAL_DIGITS
    if number[:1] == "9":
        # A local number, or a switchboard's 9 (its line's digit not set) and a number.
        after = 1 + _tones_kept(number[1:], country) if number[1:] else 0
        if number[1:2] in tuple(UK_NOT_LOCAL_AFTER_9):
            # No local number begins 1, and one beginning 2-6 may be a card's first digit
            # keyed after the switchboard's 9: what follows the 9 is judged as a number
            # of its own, as after the 9 set on the line.
            return min(UK_LONGEST, after)
        return min(UK_LONGEST, max(UK_LOCAL_DIGITS, after))
    if number[:1] == "1":
        # A prefix still being keyed (1470, 18001, 141 18001) keeps its keys' tones.
        shown, relay = numbers.presentation_prefixes, numbers.relay_prefixes
        known = shown + relay + tuple(p + r for p in shown for r in relay)
        prefixes = [len(p) for p in known if p.startswith(number)]
        return max([UK_SHORT_CODE_KEPT, *prefixes])
    return UK_LONGEST


def _tones_kept(number, country, outside=""):
    """How many of dialled ``number``'s first keys keep their tones in the recording
    (DTMF masking cuts those of the keys after them, :class:`~firmware.bus.DigitDialled`'s
    ``past_number``): the number's shortest whole length where its start tells one
    (:func:`shortest_number`), else the longest number it may be (:func:`_longest_number`).

    A number that may be one digit longer or more (0800 and 6 or 7 digits, Brampton's
    016977 and 4 or 5, an international one of 00 and 7 to 15) loses the tones of
    its optional digits: each may be the first digit of a card number keyed straight on
    after it, and a card is recognised only at its 13th digit, long after the tone of its
    first is in the recording. The call log keeps those digits (docs/pci.md).

    A number whose start says nothing of its length and whose first digit is 2-6 (a US
    number without its 1, a UK local number without its area code) keeps none: it may be
    a card number keyed with no number before it, which begins 2-6 and is recognised only
    at its 13th to 16th key, long after the recorder has let the tones of its first go.
    The call log keeps the number (docs/pci.md).

    A prefix before the number (:func:`dialling_prefix`) adds its keys, once the number's
    own start tells its length: not while only the prefix is dialled.

    After a ``*`` or ``#`` of a code the box does not know (``*99#``, ``#123``), where
    the code ends and a number or a card begins is unknown too: no key keeps its tone
    from the first 2-6 keyed after it (:func:`_after_code`), as for a number whose start
    says nothing and begins 2-6."""
    skip = dialling_prefix(number, country, outside)
    shortest = shortest_number(number[skip:], country)
    first = number[skip : skip + 1]
    if shortest:
        kept = skip + shortest
    elif first and first in cards.ISSUER_FIRST:
        kept = skip
    else:
        kept = _longest_number(number, country, outside)
    code = _after_code(number, skip, country)
    return kept if code is None else min(kept, code)


def _after_code(number, skip, country):
    """Where the first issuer digit (2-6) keyed after a ``*`` or ``#`` key of dialled
    ``number`` is, past its first ``skip`` keys (:func:`dialling_prefix`), or None.

    A code the box does not know (``*99#``, ``#123``, ``*21*`` and a number) may end
    anywhere, and a card number keyed on after it begins at any key: the first 2-6 after
    the ``*`` or ``#`` may be its first digit. The keys of a prefix withholding or giving
    the caller's number (``#31#``, North America's ``*67``), and of the start of one while
    it is still being keyed, are not such a digit: ``#3`` may be the start of ``#31#``."""
    rest = number[skip:]
    start = skip
    for prefix in countries.country(country).numbers.presentation_prefixes:
        if rest.startswith(prefix) or prefix.startswith(rest):
            start = skip + min(len(prefix), len(rest))
            break
    seen = False
    for at in range(skip, len(number)):
        if number[at] in "*#":
            seen = True
        elif seen and at >= start and number[at] in cards.ISSUER_FIRST:
            return at
    return None


def _dsp_kind(event):
    """The DSP event's kind, by class name or else by its attributes."""
    name = type(event).__name__
    if name in DSP_KINDS:
        return name
    for attr, kind in (
        ("digit", "DtmfDigit"),
        ("reason", "CallerIdError"),
        ("standard", "CallerId"),
        ("name", "Tone"),
    ):
        if hasattr(event, attr):
            return kind
    return None


class _Line:
    """One line's state machine. Runs under the supervisor's lock."""

    def __init__(self, sup, number):
        self.sup = sup
        self.n = number
        self.cfg = cfg = sup.config
        self.clock = sup._timers
        self.poll_us = max(_us(cfg.debounce_ms), 1000)
        self.state = IDLE
        self.call = None
        self.faults = set()
        self.timers = {}
        # Power is assumed present until the board says otherwise.
        self.inputs = {
            s: Debouncer(
                self.clock, _us(cfg.debounce_ms), functools.partial(self._changed, s), level=(s == "power")
            )
            for s in ("hook", "in_use", "polarity", "power")
            if s in sup.signals
        }
        self.loop_inputs = [self.inputs[s] for s in LOOP_SIGNALS if s in self.inputs]
        self.ring = RingDetector(
            self.clock,
            _us(cfg.ring_gap_ms),
            self._ring_start,
            self._ring_end,
            confirm_us=_us(cfg.ring_confirm_ms),
        )
        self.loop = False  # debounced: someone draws loop current
        self.loop_us = 0  # when ``loop`` last changed
        self.off_hook = False  # an off-hook spell is on (dial pulses do not end it)
        self.off_hook_us = None
        self.break_us = None  # start of a loop break not yet judged (pulse or on-hook)
        self.reversal_us = None  # polarity reversal while dialling: the answer
        self.pulses = 0  # breaks of the digit being pulsed
        self.pulse_digit_us = None
        self.last_make_us = None
        self.digit_end_us = None  # end of the last digit: the dial timeout runs from it
        self.held_keys = []  # (digit, t_us, end_us) that may be a code, while dialling
        self.digit_gaps = []  # µs from each dialled DTMF digit's end to the next's start
        self.ringing = False  # ringback heard after dialling: the far end has not answered
        self.provisional = False  # the call's answer is a voice in a ringback gap, unconfirmed
        self.assumed = False  # the call's answer is the dial timeout's: no sign of the far end yet
        self.silenced_assumed = False  # the silence-cleared call's answer was still assumed
        self.alert_us = None  # first caller-ID-phase signal while alerting
        self.cid_deadline_us = None
        self.pending_cid = {}  # caller ID heard while alerting, for the call
        self.pending_notes = []
        self.ring_end_us = None
        self.power_ok = True
        self.power_lost_us = None
        self.power_back_us = None
        self.resyncing = False  # power just came back: loop inputs still settling
        self.clear_rev_us = None  # polarity change while connected, not judged yet
        self.quiet_us = None  # the line has been silent since (DSP Quiet), or None
        self.silenced = None  # the call the silence clear ended, while it may still go on
        self.alert_kinds = set()  # what announced the caller ID: "reversal", "dtas"
        self.bursts = []  # (start_us, end_us) of the ring bursts of this call
        self.ringing_rev_us = None  # polarity change while ringing: an answer reversal?
        self.ring_pulse_us = None  # start of the ring pulse that alerted this call's caller ID
        self.unrung = False  # the inbound call has had no ring sensed (caller ID alone)
        self.unrung_answer = False  # ... and was answered: dial tone may still show nobody called
        self.dial_tone_known = False  # the box has recognised this line's dial tone since it started
        self.heard_line = False  # the outbound call has heard the exchange (see _no_dial_tone)
        self.silent_calls = 0  # outbound calls in a row that heard nothing from the line

    # ------------------------------------------------------------ plumbing
    def _arm(self, name, t_us, fn):
        self._disarm(name)
        self.timers[name] = self.clock.call_at(t_us, fn)

    def _disarm(self, *names):
        for name in names:
            timer = self.timers.pop(name, None)
            if timer is not None:
                timer.cancel()

    def _retry(self, name, fn):
        self._arm(name, self.clock.now_us() + self.poll_us, fn)

    @staticmethod
    def _unsettled(deadline_us, *detectors):
        """Whether a detector has an unconfirmed change that began by ``deadline_us``."""
        return any(d.pending_since is not None and d.pending_since <= deadline_us for d in detectors)

    def _emit(self, event_type, t_us, **fields_):
        self.sup._emit(event_type(line=self.n, t_us=t_us, **fields_))

    def _set_state(self, state, t_us):
        if state not in (CLEARED, CONNECTED):
            self.silenced = None
        if state != self.state:
            previous, self.state = self.state, state
            self._emit(LineStateChanged, t_us, state=state, previous=previous)

    def _updated(self, t_us):
        self._emit(CallUpdated, t_us, call=self.call)

    def _note(self, text):
        if self.call is not None:
            self.call.notes.append(text)
        elif self.state == ALERTING:
            self.pending_notes.append(text)

    def _extension(self):
        """Off-hook on a parallel extension: line in use, our handset on-hook."""
        return "in_use" in self.inputs and self.inputs["in_use"].level and not self.inputs["hook"].level

    # ------------------------------------------------------------ edges
    def edge(self, signal, active, t_us):
        if signal == "ring":
            self.ring.edge(active, t_us)
        else:
            self.inputs[signal].edge(active, t_us)

    def _changed(self, signal, active, t_us):
        if signal == "polarity":
            self._polarity(active, t_us)
        elif signal == "power":
            self._power(active, t_us)
        else:
            self._loop_input(signal, active, t_us)

    def _loop_input(self, signal, active, t_us):
        if (
            signal == "hook"
            and active
            and self.off_hook
            and self.call is not None
            and self.call.extension
            and t_us - self.off_hook_us <= _us(self.cfg.pulse_break_max_ms)
        ):
            # in_use was confirmed first, but it is our own handset picking up.
            self.call.extension = False
            self._updated(t_us)
        loop = any(d.level for d in self.loop_inputs)
        if loop == self.loop:
            return
        self.loop, self.loop_us = loop, t_us
        if not self.power_ok or self.resyncing:
            return  # without line voltage the loop means nothing; see _resync
        if loop:
            self._loop_made(t_us)
        else:
            self._loop_broken(t_us)

    def _loop_broken(self, t_us):
        if not self.off_hook:
            return
        self._settle_dialling(t_us)
        self._disarm("digit", "dial")
        self.break_us = t_us
        self._arm("onhook", t_us + self._break_max_us(), self._onhook_check)

    def _break_max_us(self):
        """The longest loop break that is not an on-hook: a pulse, or while connected a flash."""
        return _us(self.cfg.flash_max_ms if self.state == CONNECTED else self.cfg.pulse_break_max_ms)

    def _onhook_check(self):
        if self._unsettled(self.break_us + self._break_max_us(), *self.loop_inputs):
            return self._retry("onhook", self._onhook_check)
        self._on_hook(self.break_us)

    def _loop_made(self, t_us):
        self._disarm("onhook")
        if self.off_hook and self.break_us is not None:
            break_us, self.break_us = self.break_us, None
            if t_us - break_us <= _us(self.cfg.pulse_break_max_ms):
                return self._pulse(break_us, t_us)
            if self.state == CONNECTED and t_us - break_us <= self._break_max_us():
                return self._note("hook_flash:%d" % ((t_us - break_us) // 1000))
            self._on_hook(break_us)
        if not self.off_hook:
            self._off_hook(t_us)

    def _off_hook(self, t_us):
        self.off_hook, self.off_hook_us, self.break_us = True, t_us, None
        self._arm("stuck", t_us + _us(self.cfg.stuck_off_hook_ms), self._stuck)
        self.sup._notify_hook(self.n, True)
        if self.state == IDLE and self.ring.pending_since is not None:
            self._start_inbound(self.ring.pending_since, t_us)  # picked up as it began to ring
        elif self.state == ALERTING:
            self._start_inbound(min(self.alert_us, t_us), t_us, rung=False)
        if self.state == RINGING:
            self._answer(t_us)
        elif self.state == IDLE:
            self._start_outbound(t_us)
            if t_us == self.sup.synced_us:
                # Off-hook as the box started: a call already under way (see sync).
                self._note("in_progress_at_start")
                self._connect(t_us)

    def _on_hook(self, t_us):
        self._disarm("onhook", "stuck")
        self.off_hook, self.break_us = False, None
        self.sup._notify_hook(self.n, False)
        if STUCK_OFF_HOOK in self.faults:
            self.faults.discard(STUCK_OFF_HOOK)
            self._emit(LineFault, t_us, kind=STUCK_OFF_HOOK, active=False)
        if self.state == DIALLING:
            if self.pulses:
                self._end_pulse_digit()
            self._dial_held()
            if self.call.number and not self.ringing:
                # Dialling ended with the last digit; nothing showed the far end was there.
                self._connect(self.digit_end_us, assumed=True)
                self._end(t_us, "local")
            else:
                self._end(t_us, "abandoned")
        elif self.state == CONNECTED:
            self._end(t_us, "local")
        elif self.state == CLEARED:
            self._set_state(IDLE, t_us)

    def restore_faults(self, kinds, t_us):
        """Take back the open faults ``kinds`` of the last run (see :meth:`LineSupervisor.sync`)
        and judge them once the levels read at start have settled."""
        self.faults |= set(kinds) & set(LINE_FAULTS)
        self._arm("restored", t_us + self.settle_us(), self._restored_check)

    def settle_us(self):
        """How long after :meth:`LineSupervisor.sync` the levels read then have settled
        (a line off-hook at the start is a call by then)."""
        return 2 * max(_us(self.cfg.debounce_ms), self.poll_us)

    def _restored_check(self):
        now_us = self.clock.now_us()
        if NO_LINE_VOLTAGE in self.faults and self.power_ok and self.power_lost_us is None:
            self.faults.discard(NO_LINE_VOLTAGE)
            self._emit(LineFault, now_us, kind=NO_LINE_VOLTAGE, active=False)
        if STUCK_OFF_HOOK in self.faults and not self.off_hook:
            self.faults.discard(STUCK_OFF_HOOK)
            self._emit(LineFault, now_us, kind=STUCK_OFF_HOOK, active=False)

    def _stuck(self):
        self.faults.add(STUCK_OFF_HOOK)
        self._emit(LineFault, self.off_hook_us, kind=STUCK_OFF_HOOK, active=True)

    # ------------------------------------------------------------ calls
    def _note_ring_cadence(self, call):
        """Keep the call's ring cadence (on, off, on, off ... ms, up to 8 steps) on the call."""
        bursts, self.bursts = [b for b in self.bursts if b[1] is not None], []
        pulse_us, self.ring_pulse_us = self.ring_pulse_us, None
        bursts = [b for b in bursts if b[0] != pulse_us]  # the alert, not the ringing
        if call.direction != "in" or not bursts:
            return
        times = [] if len(bursts) > 1 else [(bursts[0][1] - bursts[0][0]) // 1000]
        for (start, end), (nxt, _e) in zip(bursts, bursts[1:], strict=False):
            times += [(end - start) // 1000, (nxt - end) // 1000]
        call.ring_cadence_ms = tuple(times[:8])

    def _start_inbound(self, start_us, t_us, rung=True):
        """An inbound call from ``start_us``; ``rung``: a ring was sensed (else the caller ID alone)."""
        self._disarm("cid")
        self.bursts, self.ringing_rev_us = [], None
        self.unrung, self.unrung_answer = not rung, False
        self.call = Call(line=self.n, direction="in", started_us=start_us, **self.pending_cid)
        self.call.notes.extend(self.pending_notes)
        self.alert_us, self.pending_cid, self.pending_notes = None, {}, []
        self._emit(CallStarted, start_us, call=self.call)
        self._set_state(RINGING, t_us)

    def _answer(self, t_us):
        self._disarm("ring")
        self.call.answered_us = t_us
        rev_us, self.ringing_rev_us = self.ringing_rev_us, None
        if rev_us is not None and abs(t_us - rev_us) <= _us(self.cfg.pulse_break_max_ms):
            self._note("answer_reversal")  # confirmed before the (bouncing) hook was
        self.call.extension = self._extension()
        if self.unrung:
            # No ring was sensed: picked up for the caller ID's caller, or to call out after
            # a caller ID that no call followed. Dial tone soon after tells (_not_called).
            self.unrung_answer = True
            self._arm("unrung", t_us + UNRUNG_CONFIRM_US, self._unrung_check)
        self._emit(CallAnswered, t_us, call=self.call, provisional=self.unrung_answer)
        self._set_state(CONNECTED, t_us)

    def _unrung_check(self):
        """No dial tone since the answer of a call no ring was sensed for: the caller is there."""
        deadline_us = self.call.answered_us + UNRUNG_CONFIRM_US
        if self._unsettled(deadline_us, *self.loop_inputs):
            return self._retry("unrung", self._unrung_check)
        if self.state == CONNECTED and self.unrung_answer:
            self.unrung_answer = False
            self._emit(CallAnswerConfirmed, deadline_us, call=self.call)

    def _not_called(self, t_us):
        """Dial tone (at ``t_us``) on a call answered with no ring sensed: nobody was calling
        (the caller had gone, or the caller ID was for a phone elsewhere). That caller's
        call was missed; the off-hook began an outbound call."""
        call, off_us = self.call, self.off_hook_us
        self.unrung_answer = False
        call.answered_us = None
        self._note("dial_tone")
        self._emit(CallAnswerWithdrawn, t_us, call=call)
        self._end(off_us, "missed")
        self._start_outbound(off_us)

    def _unrung_missed(self):
        """Nobody picked up within ``unrung_answer_ms`` of a caller ID no ring followed."""
        deadline_us = self.call.started_us + _us(self.cfg.unrung_answer_ms)
        if self._unsettled(deadline_us, self.ring, *self.loop_inputs):
            return self._retry("ring", self._unrung_missed)
        if self.state == RINGING and self.unrung:
            # How long it rang is not known: the call ends where it began.
            self._end(self.call.started_us, "missed")

    def _next_caller(self, t_us):
        """A new caller-ID phase at ``t_us`` while the line waits for the off-hook of a caller
        ID no ring followed: that caller has gone, missed. A reversal just before is the new
        call's start (it was taken for a possible answer reversal)."""
        rev_us = self.ringing_rev_us
        self._end(self.call.started_us, "missed")
        if rev_us is not None and 0 <= t_us - rev_us <= NEXT_CALLER_REVERSAL_US:
            self.alert_kinds = {"reversal"}
            self._alert(rev_us)

    def _start_outbound(self, t_us):
        self.call = Call(
            line=self.n,
            direction="out",
            started_us=t_us,
            extension=self._extension(),
            outside_line=self.cfg.outside_line.get(self.n, ""),
        )
        self.pulses, self.digit_end_us, self.ringing, self.provisional = 0, None, False, False
        self.assumed = self.heard_line = False
        self.digit_gaps = []
        self._emit(CallStarted, t_us, call=self.call)
        self._set_state(DIALLING, t_us)

    def _connect(self, t_us, provisional=False, assumed=False):
        self._disarm("dial", "digit", "reversal")
        self.heard_line = self.heard_line or not assumed  # a reversal, a voice, a code: answered
        self.pulses, self.provisional, self.assumed = 0, provisional, assumed
        self.call.answered_us = t_us
        self._emit(CallAnswered, t_us, call=self.call, provisional=provisional, assumed=assumed)
        self._set_state(CONNECTED, t_us)
        # Keys held as a possible code were keyed as the far end answered: they are
        # the caller's, not the number's.
        held, self.held_keys = self.held_keys, []
        for digit, key_us, end_us in held:
            self.sup._notify_key(self.n, digit, key_us, end_us)

    def _end(self, t_us, reason, state=IDLE):
        if self.provisional:
            # Ending before the ringback's cadence confirmed the answer: judged as if the
            # voice had not been heard (the caller hanging up gave up on a ringing call).
            self._withdraw(t_us, back=False)
            if reason == "local":
                reason = "abandoned"
        assumed, self.assumed = self.assumed, False
        call, self.call = self.call, None
        # Only a silence clear may be taken back, and only while our side stays off-hook;
        # taken back, an answer still assumed still waits for the far end.
        self.silenced = call if reason == "remote_silence" and state == CLEARED else None
        self.silenced_assumed = assumed and self.silenced is not None
        self.held_keys = []
        self.unrung = self.unrung_answer = False
        self._disarm("ring", "dial", "digit", "reversal", "clear_rev", "silence", "unrung")
        self.clear_rev_us = self.quiet_us = None
        self.alert_kinds = set()
        self._note_ring_cadence(call)
        self.pulses, self.digit_end_us, self.ringing = 0, None, False
        self.digit_gaps = []
        call.ended_us = max(t_us, call.answered_us or call.started_us)
        call.end_reason = reason
        if call.direction == "out":
            self._no_dial_tone(call, t_us)
        self._emit(CallEnded, call.ended_us, call=call)
        self._set_state(state, call.ended_us)

    def _no_dial_tone(self, call, t_us):
        """Judge the ending outbound ``call`` (our side on-hook at ``t_us``): one that heard
        nothing from the line - no dial tone, no other tone, no voice, no answer but the
        dial timeout's - is noted, and ``NO_DIAL_TONE_CALLS`` of them in a row raise
        ``line_no_dial_tone``. Only where the box knows the line's dial tone: it has
        recognised it since it started (an adapter's may be another country's), and the
        line is no switchboard extension (whose own dial tone may differ)."""
        heard, self.heard_line = self.heard_line, False
        if heard or call.end_reason not in ("local", "abandoned"):
            return
        if t_us - call.started_us < NO_DIAL_TONE_MIN_US or "in_progress_at_start" in call.notes:
            return
        call.notes.append(NO_DIAL_TONE_NOTE)
        self.silent_calls += 1
        known = self.dial_tone_known and not self.cfg.outside_line.get(self.n)
        if known and self.silent_calls >= NO_DIAL_TONE_CALLS and NO_DIAL_TONE not in self.faults:
            self.faults.add(NO_DIAL_TONE)
            self._emit(LineFault, t_us, kind=NO_DIAL_TONE, active=True)

    def _heard(self, name, t_us):
        """A call-progress tone ``name`` at ``t_us``: the exchange is there. Dial tone says the
        line works again, and that the box knows its dial tone."""
        if self.off_hook:
            self.heard_line = True
        if name != "dial":
            return
        self.dial_tone_known, self.silent_calls = True, 0
        if NO_DIAL_TONE in self.faults:
            self.faults.discard(NO_DIAL_TONE)
            self._emit(LineFault, t_us, kind=NO_DIAL_TONE, active=False)

    # ------------------------------------------------------------ dialling
    def _pulse(self, break_us, make_us):
        if self.state != DIALLING:
            return  # after connect: digits (card numbers!) never reach the log
        if self.ringing and not self.pulses and break_us >= self.digit_end_us:
            # Nobody dials into ringback: a break this short now is no digit (a knock of
            # the hook switch as the far end answers). Counted, it joined the number and
            # kept the ringback's end, reported just after, from being judged the answer.
            # (A digit whose pulses began before the ringback is counted to its end.)
            return
        if self.pulses == 0:
            self.pulse_digit_us = break_us
        self.pulses += 1
        self.last_make_us = make_us
        # Each pulse as it comes: masking cuts its clicks out of the recording while the
        # recorder still holds them back (the digit is known only after interdigit_ms).
        past = self._next_digit_past(self.pulses)
        self._emit(DialPulse, break_us, end_us=make_us, past_number=past)
        self._arm("digit", make_us + _us(self.cfg.interdigit_ms), self._digit_check)

    def _next_digit_past(self, pulses=1):
        """Whether the digit being dialled, ``pulses`` pulses into it, is past the number
        (:class:`DigitDialled`'s ``past_number``), whatever digit it turns out to be: the
        first digit dialled whatever its pulses (it may be 2-6, a card's first), a later
        one any digit of ``pulses`` pulses or more (from the 7th, not 1-6: after a
        switchboard's 9, no card's first digit)."""
        call = self.call
        number = (call.number or "") + "".join(k[0] for k in self.held_keys)
        if cards.MASK in number:
            return True
        country, outside = self.cfg.country, call.outside_line
        digits = "1234567890"[min(pulses, 10) - 1 :] if number else "0123456789"
        return any(len(number) + 1 > _tones_kept(number + d, country, outside) for d in digits)

    def _digit_check(self):
        if self._unsettled(self.last_make_us + _us(self.cfg.interdigit_ms), *self.loop_inputs):
            return self._retry("digit", self._digit_check)
        self._end_pulse_digit()

    def _end_pulse_digit(self):
        self._dial_held()
        count, self.pulses = self.pulses, 0
        self._disarm("digit")
        if count > 10:
            self._note("pulse_digit_invalid:%d" % count)
            return
        self._digit("0" if count == 10 else str(count), "pulse", self.pulse_digit_us, self.last_make_us)

    def _digit(self, digit, method, t_us, end_us):
        call = self.call
        if method == "dtmf" and self.digit_end_us is not None and self.state == DIALLING:
            self.digit_gaps.append(t_us - self.digit_end_us)
        if cards.MASK in (call.number or ""):
            # PCI DSS: after a card number, a security code or an expiry date - never
            # kept, in the number or on the bus; the call says digits were withheld.
            digit, call.digits_withheld = cards.MASK, True
        else:
            number = (call.number or "") + digit
            # A card number this digit completes is masked at once, on the call (and so on
            # the bus and in the log), from where it may begin: never in the number's own
            # digits (its shortest whole length), never after a card digit.
            country = self.cfg.country
            whole, skip = _logged_bounds(number, country, call.outside_line)
            call.number = cards.mask_dialled(number, whole, skip, _optional_digits(number[skip:], country))
            if call.number != number:
                digit = cards.MASK
        if call.dial_method is None:
            call.dial_method = method
        self._emit(
            DigitDialled,
            t_us,
            digit=digit,
            method=method,
            end_us=end_us,
            past_number=len(call.number) > _tones_kept(call.number, self.cfg.country, call.outside_line),
        )
        self._updated(end_us)
        if self.state == DIALLING:
            self.digit_end_us = end_us
            self._arm("dial", end_us + _us(self.cfg.dial_timeout_ms), self._dial_check)

    def _dial_key(self, digit, t_us, end_us):
        """A DTMF key while dialling: a dialled digit, or held as a possible code."""
        if not self.held_keys and self._dialling_over(t_us):
            # The pace of the dialling says it ended: this key is the caller's.
            self._note("answer_timing")
            self._connect(self.digit_end_us)
            self.sup._notify_key(self.n, digit, t_us, end_us)
            return
        codes = self.sup._codes()
        self.held_keys.append((digit, t_us, end_us))
        text = "".join(k[0] for k in self.held_keys)
        if self.call.number and text in codes:
            # A code after the number: the far end answered before it was keyed.
            self._note("answer_key_code")
            self._connect(self.held_keys[0][1])
            return
        # Keep the longest tail that may still become a code; the rest was dialled.
        for k in range(len(self.held_keys)):
            tail = text[k:]
            if any(len(c) > len(tail) and c.startswith(tail) for c in codes):
                dialled, self.held_keys = self.held_keys[:k], self.held_keys[k:]
                break
        else:
            dialled, self.held_keys = self.held_keys, []
        for key in dialled:
            self._digit(key[0], "dtmf", key[1], key[2])

    def _dialling_over(self, t_us):
        """Whether a key at ``t_us`` comes after the end of dialling, by its timing: the
        number so far is complete and the gap is far longer than the dialling's own."""
        number, last_us = self.call.number or "", self.digit_end_us
        if last_us is None or not _complete_number(number, self.cfg.country, self.call.outside_line):
            return False
        gap_us = t_us - last_us
        gaps = sorted(self.digit_gaps)
        typical_us = gaps[len(gaps) // 2] if gaps else 0
        return gap_us >= ANSWER_GAP_US and gap_us >= GAP_FACTOR * typical_us

    def _dial_held(self):
        """Keys held as a possible code are dialled digits after all (on-hook, a pulse)."""
        held, self.held_keys = self.held_keys, []
        for digit, t_us, end_us in held:
            self._digit(digit, "dtmf", t_us, end_us)

    def stop_hearing(self, t_us):
        """The box hears the line no more from ``t_us``: a call still being dialled keeps
        the digits dialled by then, and nothing joins them (:meth:`Supervisor.close`)."""
        if self.state != DIALLING or self.call is None:
            return
        if self.pulses and t_us - self.last_make_us >= _us(self.cfg.interdigit_ms):
            self._end_pulse_digit()
        elif self.pulses:
            self._note("pulse_digit_cut:%d" % self.pulses)
            self.pulses = 0
        self._dial_held()
        self._note(DIALLING_CUT)
        self._updated(t_us)

    def _dial_check(self):
        if self._unsettled(self.digit_end_us + _us(self.cfg.dial_timeout_ms), *self.loop_inputs):
            return self._retry("dial", self._dial_check)
        if self.state == DIALLING and not self.pulses and not self.ringing:
            self._connect(self.digit_end_us, assumed=True)

    def _settle_dialling(self, t_us):
        """Finish a digit or the dialling that had already ended by ``t_us``."""
        if self.state != DIALLING:
            return
        if self.pulses and t_us - self.last_make_us >= _us(self.cfg.interdigit_ms):
            self._end_pulse_digit()
        if (
            self.digit_end_us is not None
            and not self.pulses
            and not self.ringing
            and t_us - self.digit_end_us >= _us(self.cfg.dial_timeout_ms)
        ):
            self._connect(self.digit_end_us, assumed=True)

    # ------------------------------------------------------------ ringing, caller ID
    def _ring_start(self, t_us):
        if self.state == IDLE and not self.off_hook:
            self._start_inbound(t_us, t_us)
        elif self.state == ALERTING:
            self._start_inbound(min(self.alert_us, t_us), t_us)
        elif self.state == RINGING:
            self._disarm("ring")
            if self.unrung:  # rung after all: an ordinary ringing call from here
                self.unrung = False
                if RING_NOT_SENSED in self.call.notes:
                    self.call.notes.remove(RING_NOT_SENSED)
        if self.state == RINGING:
            self.bursts.append([t_us, None])
        if RING_NOT_SENSED in self.faults:
            self.faults.discard(RING_NOT_SENSED)
            self._emit(LineFault, t_us, kind=RING_NOT_SENSED, active=False)

    def _ring_end(self, t_us):
        if self.state == RINGING and self.bursts and self.bursts[-1][1] is None:
            self.bursts[-1][1] = t_us
        if self.state == RINGING:
            self.ring_end_us = t_us
            self._arm("ring", t_us + _us(self.cfg.ring_timeout_ms), self._ring_check)

    def _ring_check(self):
        if self._unsettled(self.ring_end_us + _us(self.cfg.ring_timeout_ms), self.ring, *self.loop_inputs):
            return self._retry("ring", self._ring_check)
        if self.state == RINGING and not self.ring.in_burst:
            self._end(self.ring_end_us, "missed")

    def _polarity(self, active, t_us):
        if self.state == IDLE and active and not self.off_hook:
            self.alert_kinds = {"reversal"}
            self._alert(t_us)
        elif self.state == DIALLING:
            self.reversal_us = t_us
            self._reversal_check()
        elif self.state == RINGING:
            self.ringing_rev_us = t_us
        elif self.state == CONNECTED and self.provisional:
            if t_us - self.call.answered_us > _us(self.cfg.pulse_break_max_ms):
                # Well after the voice: the reversal is the answer, the voice was the caller's.
                self._withdraw(t_us)
                self.reversal_us = t_us
                self._reversal_check()
                return
            # the reversal that came with the voice's answer
            self.call.answered_us = min(self.call.answered_us, t_us)
            self._note("answer_reversal")
            self._confirm(t_us)
        elif self.state == CONNECTED and self.assumed:
            # The far end's answer, later than the dial timeout took it for: not a clear.
            self._note("answer_reversal")
            self._far_end(t_us)
        elif self.state == CONNECTED:
            if t_us - self.call.answered_us <= _us(self.cfg.pulse_break_max_ms):
                if "answer_reversal" not in self.call.notes:  # the reversal that came with the answer
                    self._note("answer_reversal")
                return
            self.clear_rev_us = t_us
            self._arm(
                "clear_rev",
                t_us + _us(self.cfg.pulse_break_max_ms) + self.poll_us,
                self._clear_reversal_check,
            )

    def _clear_reversal_check(self):
        """A reversal while connected: the far end cleared, unless our side hung up with it."""
        t_us = self.clear_rev_us
        if self.state != CONNECTED or t_us is None:
            return
        # An on-hook, or a loss of line voltage, around the same moment decides instead.
        if (
            self._unsettled(t_us + _us(self.cfg.pulse_break_max_ms), *self.loop_inputs)
            or self.break_us is not None
            or not self.power_ok
            or self.resyncing
        ):
            return self._retry("clear_rev", self._clear_reversal_check)
        self._note("reversal")
        self._end(t_us, "remote_reversal", CLEARED if self.off_hook else IDLE)

    def _reversal_check(self):
        """Answer supervision: the far end answered at ``reversal_us``."""
        t_us = self.reversal_us
        if self.state != DIALLING:
            return
        if self._unsettled(t_us, *self.loop_inputs):
            # e.g. the last dial pulse's make, at the same moment, not confirmed yet
            return self._retry("reversal", self._reversal_check)
        self._settle_dialling(t_us)
        if self.state == DIALLING:
            if self.pulses:
                self._end_pulse_digit()
            self._note("answer_reversal")
            self._connect(t_us)

    def _alert(self, t_us):
        """A caller-ID-phase signal (reversal, alert tone, caller ID) on an idle line."""
        if self.state == IDLE:
            self.alert_us, self.pending_cid, self.pending_notes = t_us, {}, []
            self.cid_deadline_us = None
            self._set_state(ALERTING, t_us)
        else:
            self.alert_us = min(self.alert_us, t_us)
        deadline_us = t_us + _us(self.cfg.cid_wait_ms)
        if self.cid_deadline_us is None or deadline_us > self.cid_deadline_us:
            self.cid_deadline_us = deadline_us
            self._arm("cid", deadline_us, self._cid_check)

    def _cid_check(self):
        if self._unsettled(self.cid_deadline_us, self.ring, *self.loop_inputs):
            return self._retry("cid", self._cid_check)
        if self.state == ALERTING:  # no ring came: a message-waiting signal, or the caller gave up
            cid = self.pending_cid
            if cid.get("number") or cid.get("absence"):
                # A caller was announced and never rang: the ringing is probably below what
                # the HAT's ring detector senses (a hub's or ATA's low ringing voltage).
                if RING_NOT_SENSED not in self.faults:
                    self.faults.add(RING_NOT_SENSED)
                    self._emit(LineFault, self.alert_us, kind=RING_NOT_SENSED, active=True)
                # The phone is probably ringing: an off-hook within unrung_answer_ms answers
                # that caller, else the call was missed.
                start_us = self.alert_us
                self.pending_notes.append(RING_NOT_SENSED)
                self._start_inbound(start_us, self.clock.now_us(), rung=False)
                self._arm("ring", start_us + _us(self.cfg.unrung_answer_ms), self._unrung_missed)
                return
            self.alert_us, self.pending_cid, self.pending_notes = None, {}, []
            self._set_state(IDLE, self.clock.now_us())

    # ------------------------------------------------------------ line voltage
    def _power(self, present, t_us):
        if not present:
            self.power_ok, self.power_lost_us, self.resyncing = False, t_us, False
            self._disarm("onhook", "resync")
            self._arm("power", t_us + _us(self.cfg.no_voltage_fault_ms), self._power_check)
            return
        lost_us, self.power_lost_us, self.power_ok = self.power_lost_us, None, True
        self.power_back_us = t_us
        self._disarm("power")
        if NO_LINE_VOLTAGE in self.faults:
            self.faults.discard(NO_LINE_VOLTAGE)
            self._emit(LineFault, t_us, kind=NO_LINE_VOLTAGE, active=False)
            self._set_state(IDLE, t_us)
        elif (
            self.state == CONNECTED and lost_us is not None and t_us - lost_us >= _us(self.cfg.kbreak_min_ms)
        ):
            self._note("loop_break:%d" % ((t_us - lost_us) // 1000))
            self._end(lost_us, "remote_break", CLEARED if self.off_hook else IDLE)
        # No loop current flows without line voltage: judge the loop afresh once it settles.
        self.resyncing = True
        self._arm("resync", t_us + _us(self.cfg.pulse_break_max_ms), self._resync)

    def _power_check(self):
        lost_us = self.power_lost_us
        if self._unsettled(lost_us + _us(self.cfg.no_voltage_fault_ms), self.inputs["power"]):
            return self._retry("power", self._power_check)
        self.faults.add(NO_LINE_VOLTAGE)
        self._emit(LineFault, lost_us, kind=NO_LINE_VOLTAGE, active=True)
        self._disarm("cid", "ring", "dial", "digit")
        self.alert_us, self.pending_cid, self.pending_notes = None, {}, []
        if self.call is not None:
            self._end(lost_us, "fault", FAULT)
        else:
            self._set_state(FAULT, lost_us)

    def _resync(self):
        now_us = self.clock.now_us()
        if self._unsettled(now_us, *self.loop_inputs):
            return self._retry("resync", self._resync)
        self.resyncing = False
        if self.off_hook and not self.loop:
            self._on_hook(self.loop_us)
        elif self.off_hook:
            self.break_us = None  # the break was the line's, not the handset's
            if self.state == IDLE:  # back from a fault, still off-hook: a new call
                self._start_outbound(self.power_back_us)
            elif self.state == DIALLING and self.digit_end_us is not None:
                self._arm(
                    "dial", max(now_us, self.digit_end_us + _us(self.cfg.dial_timeout_ms)), self._dial_check
                )
        elif self.loop:
            self._off_hook(max(self.loop_us, self.power_back_us))

    # ------------------------------------------------------------ DSP events
    def dsp_event(self, event):
        kind = _dsp_kind(event)
        handler = {
            "DtmfDigit": self._dtmf,
            "CallerId": self._caller_id,
            "CallerIdError": self._caller_id_error,
            "AlertTone": self._alert_tone,
            "Tone": self._tone,
            "Speech": self._speech,
            "AnswerWithdrawn": self._answer_withdrawn,
            "RingbackStopped": self._ringback_stopped,
            "Quiet": self._quiet,
            "Sound": self._sound,
        }.get(kind)
        if handler is None:
            log.debug("line %d: ignoring DSP event %r", self.n, event)
            return
        if self._brings_back(kind, event):
            # Whichever the DSP reports first: a key must reach on_key (masked, a
            # pause code heard), a clear-down tone is the far end's real clear.
            self._resume(event.t_us)
        handler(event)

    def _brings_back(self, kind, event):
        """Whether ``event`` is sound on a line whose call the silence clear ended while
        our side stayed off-hook: then that call goes on (see the module docstring)."""
        if self.state != CLEARED or not self.off_hook or self.silenced is None:
            return False
        return kind in ("Sound", "Speech", "DtmfDigit") or (kind == "Tone" and event.name in CLEAR_TONES)

    def _dtmf(self, ev):
        end_us = getattr(ev, "end_us", None)
        end_us = ev.t_us if end_us is None else end_us
        if self.state == DIALLING and self.off_hook and self.ringing and ev.t_us >= self.digit_end_us:
            # Nobody dials into ringback: a key now is pressed on an answered call.
            self._note("answer_key")
            self._connect(ev.t_us)
            self.sup._notify_key(self.n, str(ev.digit), ev.t_us, end_us)
        elif self.state == DIALLING and self.off_hook:
            if self.pulses:
                self._end_pulse_digit()
            self._dial_key(str(ev.digit), ev.t_us, end_us)
        elif self.state == CONNECTED and self.provisional and ev.t_us < self.call.answered_us:
            # Keyed in the ringback gap before the voice (reported after it): the far end
            # had answered by then, nobody keys into ringback. A key, never a digit.
            self.call.notes.remove("answer_speech")
            self._note("answer_key")
            self.call.answered_us = ev.t_us
            self._confirm(ev.t_us)
            self.sup._notify_key(self.n, str(ev.digit), ev.t_us, end_us)
        elif (
            self.state == CONNECTED
            and self.call.direction == "out"
            and self.call.answered_us is not None
            and ev.t_us < self.call.answered_us
        ):
            # Began before the answer (a reversal as the last tone ended), reported
            # after it: still dialling. Digits begun after the answer (card numbers)
            # never reach the log.
            self._digit(str(ev.digit), "dtmf", ev.t_us, end_us)
        elif self.state == CONNECTED and self.call is not None:
            if self.provisional and ev.t_us >= self.call.answered_us:
                self._confirm(ev.t_us)  # nobody keys into ringback: the answer stands
            elif self.assumed:
                self._far_end(ev.t_us)
            self.sup._notify_key(self.n, str(ev.digit), ev.t_us, end_us)
        # on-hook DTMF is caller ID: the DSP decodes that itself

    def _awaiting_answer(self, t_us):
        """Whether a far end's answer may be judged at ``t_us``: a number dialled (no
        pulse being counted), the handset still off-hook, ``t_us`` after the last digit."""
        return (
            self.state == DIALLING
            and self.off_hook
            and bool(self.call.number)
            and not self.pulses
            and t_us >= (self.digit_end_us or 0)
        )

    def _speech(self, ev):
        """Voice on the line after dialling: the far end (a person, a voice menu) answered.

        A voice in a ringback gap is ``provisional``: it may be the caller's own (the
        capture channel carries both directions), and is withdrawn if the ringback comes
        back on time (:meth:`_answer_withdrawn`). After an assumed answer, a voice (not
        one in a ringback gap, which the ringback's end or a later voice settles) is the
        first sign of the far end."""
        if self.off_hook:
            self.heard_line = True  # someone on the line (ours, maybe): not for this alarm
        if self.state == CONNECTED and self.assumed and not getattr(ev, "provisional", False):
            self._far_end(ev.t_us)
            return
        if not self._awaiting_answer(ev.t_us):
            return
        if self._unsettled(ev.t_us, *self.loop_inputs):
            return  # a pulse or an on-hook not judged yet: the dial timeout still decides
        self._note("answer_speech")
        self._connect(ev.t_us, provisional=bool(getattr(ev, "provisional", False)))

    def _answer_withdrawn(self, ev):
        """A ringback burst came on time after the provisional answer's voice: it was the
        caller's. The call is back to dialling, the far end still rung."""
        if self.state == CONNECTED and self.provisional:
            self._withdraw(ev.t_us)

    def _confirm(self, t_us):
        """The provisional answer stands (``t_us``: the evidence that says so)."""
        self.provisional = False
        self._emit(CallAnswerConfirmed, t_us, call=self.call)

    def _far_end(self, t_us):
        """The first sign of the far end after an assumed answer (the dial timeout's), at
        ``t_us``: the answer keeps its time, and what the far end must hear may be played."""
        self.assumed = False
        self._emit(CallAnswerConfirmed, t_us, call=self.call)

    def _withdraw(self, t_us, back=True):
        """Take back the call's provisional answer (the ringback burst at ``t_us`` showed the
        far end was still rung); ``back``: the line returns to dialling (not when the call
        is ending anyway)."""
        call, self.provisional = self.call, False
        call.answered_us = None
        if "answer_speech" in call.notes:
            del call.notes[len(call.notes) - 1 - call.notes[::-1].index("answer_speech")]
        call.notes.append("answer_withdrawn")
        self.ringing = True
        self._disarm("clear_rev")
        self.clear_rev_us = None
        self._emit(CallAnswerWithdrawn, t_us, call=call)
        if back:
            self._set_state(DIALLING, t_us)

    def _ringback_stopped(self, ev):
        """Ringback after the number stopped and did not resume: the far end answered, if
        silently (a payment line waiting for keys), at the end of the last burst.

        After a provisional answer it confirms it - and a burst cut short after the voice
        began dates the answer at the cut instead (the voice was the caller's)."""
        if self.state == CONNECTED and self.assumed:
            self._far_end(ev.t_us)  # rung after the dial timeout, now answered
            return
        if self.state == CONNECTED and self.provisional:
            if getattr(ev, "cut", False) and ev.t_us < self.call.answered_us:
                self.call.notes.remove("answer_speech")
                self._note("answer_ringback_end")
                self.call.answered_us = ev.t_us
            self._confirm(ev.t_us)
            return
        if not self._awaiting_answer(ev.t_us):
            return
        if self.break_us is not None or self._unsettled(self.clock.now_us(), *self.loop_inputs):
            # A loop change or break not judged yet (a break is an on-hook only after
            # pulse_break_max_ms): the ringback may have stopped as we hung up. Judge the
            # cut once the loop is: after an on-hook it is no answer.
            return self._retry("ringback_stopped", lambda: self._ringback_stopped(ev))
        self._note("answer_ringback_end")
        self._connect(ev.t_us)

    def _caller_id(self, ev):
        cid = {
            "number": getattr(ev, "number", None),
            "name": getattr(ev, "name", None),
            "cid_datetime": getattr(ev, "datetime", None),
            "cid_standard": getattr(ev, "standard", None),
            "absence": getattr(ev, "absence", None),
        }
        self._emit(
            CallerIdReceived,
            ev.t_us,
            standard=cid["cid_standard"],
            number=cid["number"],
            name=cid["name"],
            datetime=cid["cid_datetime"],
            absence=cid["absence"],
            message_waiting=getattr(ev, "message_waiting", None),
        )
        known = {k: v for k, v in cid.items() if v is not None}
        if self.state == RINGING and self.unrung and not self.off_hook:
            self._next_caller(ev.t_us)
        if self.state == IDLE and not self.off_hook:
            self.alert_kinds = set()
            self._alert(ev.t_us)
        noted = self.pending_notes + (self.call.notes if self.call is not None else [])
        if self.state in (ALERTING, RINGING) and not any(n.startswith("cid:") for n in noted):
            # What the line's adapter (or exchange) sends: the line learns it from this note.
            # (the DSP reports a little late: judge by when the message began)
            before = self.state == ALERTING or (self.bursts and ev.t_us < self.bursts[0][0])
            kinds = set(self.alert_kinds)
            if not before and self._after_ring_pulse(ev.t_us):
                before = True
                kinds.add("ring_pulse")
            when = "before_ring" if before else "after_first_ring"
            variant = ":".join(["cid", str(cid["cid_standard"]), when] + sorted(kinds))
            self._note(variant)
        if self.state == ALERTING:
            self.pending_cid.update(known)
        elif self.state == RINGING and known:
            for key, value in known.items():
                setattr(self.call, key, value)
            self._updated(ev.t_us)

    def _caller_id_error(self, ev):
        if self.state in (ALERTING, RINGING):
            self._note("caller_id_error:%s" % getattr(ev, "reason", "unknown"))

    def _after_ring_pulse(self, t_us):
        """Whether the caller ID at ``t_us`` came after a lone short ring pulse (ETSI RP-AS)
        rather than after a first ring: then the pulse is no part of the ring cadence."""
        before = [b for b in self.bursts if b[0] < t_us]
        if len(before) != 1 or before[0][1] is None:
            return False
        if before[0][1] - before[0][0] > _us(RING_PULSE_MAX_MS):
            return False
        self.ring_pulse_us = before[0][0]
        return True

    def _alert_tone(self, ev):
        self._emit(ToneDetected, ev.t_us, name="alert")
        if self.state == RINGING and self.unrung and not self.off_hook:
            self._next_caller(ev.t_us)
        if self.state in (IDLE, ALERTING) and not self.off_hook:
            if self.state == IDLE:
                self.alert_kinds = set()
            self.alert_kinds.add("dtas")
            self._alert(ev.t_us)

    def _tone(self, ev):
        name = ev.name
        self._emit(ToneDetected, ev.t_us, name=name)
        if name in PROGRESS_TONES:
            self._heard(name, ev.t_us)
        if name == "dial" and self.state == CONNECTED and self.unrung_answer:
            self._not_called(ev.t_us)
            self.heard_line = True  # the outbound call began with this dial tone
        elif name in CLEAR_TONES and self.state in (CONNECTED, DIALLING):
            self._note("tone:%s" % name)
            if self.state == CONNECTED:
                self._end(ev.t_us, "remote_tone", CLEARED if self.off_hook else IDLE)
            else:  # cleared (or refused) before it was answered
                self._end(ev.t_us, "remote_tone" if self.call.number else "abandoned", CLEARED)
        elif name == "ringback" and self.state in (DIALLING, CONNECTED):
            if self.state == DIALLING and self.call.number and ev.t_us >= (self.digit_end_us or 0):
                # The far end is being rung: not answered yet, however long since the
                # last digit. Voice, a reversal or a code says when it is.
                self.ringing = True
                self._disarm("dial")
            if "ringback" not in self.call.notes:
                self._note("ringback")
                self._updated(ev.t_us)

    def _quiet(self, ev):
        """The line has been silent since ``ev.t_us``: the far end may have gone."""
        if self.call is None or self.state not in (DIALLING, CONNECTED):
            return
        self.quiet_us = self.call.quiet_us = ev.t_us
        self._arm("silence", ev.t_us + _us(self.cfg.silence_clear_ms), self._silence_check)

    def _sound(self, ev):
        self.quiet_us = None
        if self.call is not None:
            self.call.quiet_us = None
        self._disarm("silence")

    def _resume(self, t_us):
        """Sound after a silence clear, our side still off-hook: nobody had gone (a hold,
        a handset laid down). The same call goes on; its end is taken back."""
        call, self.silenced = self.silenced, None
        call.notes.append("silence_resumed:%d" % ((t_us - call.ended_us) // 1000))
        call.ended_us = call.end_reason = call.quiet_us = None
        self.quiet_us = None
        self.call, self.assumed = call, self.silenced_assumed
        self._emit(CallResumed, t_us, call=call)
        self._set_state(CONNECTED, t_us)

    def _silence_check(self):
        if self.quiet_us is None:
            return
        if self.state == DIALLING:  # not connected yet: look again in a while
            return self._arm("silence", self.clock.now_us() + SILENCE_RECHECK_US, self._silence_check)
        if self.state == CONNECTED:
            # Silence while dialling (pulse dialling is silent) does not count.
            quiet_us = max(self.quiet_us, self.call.answered_us)
            if self.clock.now_us() < quiet_us + _us(self.cfg.silence_clear_ms):
                return self._arm("silence", quiet_us + _us(self.cfg.silence_clear_ms), self._silence_check)
            self._note("silence")
            self._end(quiet_us, "remote_silence", CLEARED if self.off_hook else IDLE)
