"""Compile a scenario into what the simulated board plays: pin edges and audio.

:func:`compile_timeline` is a pure function of the scenario (and of the speech
it gets from the ``synth`` passed in): the same scenario and seed always give
the same :class:`Timeline`, which holds

* ``edges``: every logical input change (:class:`PinEdge`, levels as in
  :mod:`board.base`), sorted by time. The board starts with every input
  inactive; the first edges (at t = 0) make ``power`` active on each line,
  the idle state (``Timeline.initial``);
* ``audio``: per line, the signals on the line (:class:`AudioSegment`, 8 kHz
  int16), sorted by start. Segments may overlap (two utterances at once): the
  board *sums* overlapping segments. The noise floor is not included;
* ``active_spans``: per line, merged (start_us, end_us) spans where something
  happens (a call from its first signal to 1 s after its last, a fault to 1 s
  after it ends); outside them the board may skip audio;
* ``truth``: one :class:`CallTruth` per scenario call (in file order), and
  ``fault_truth``: what the call log and the fault reports must reproduce;
* ``actions``: what people do to a call that is not a signal on the line
  (:class:`SimAction`: tagging it), for the box to be told at its time;
* ``end_us``: the end of the run, 10 s after the last signal (the firmware's
  timeouts need a little time to fire).

The text between the two rulers below is Markdown, the same as in docs/scenarios.md.

----------------------------------------------------------------------------
### What happens when

Times are from the scenario's `start`; *T* is a call's `at`.

**Inbound**, by caller-ID standard:

* `v23` (the UK default; BT SIN 227): the polarity reverses at *T*; the alert
  tone (2130 + 2750 Hz, 100 ms) starts at *T* + 0.15 s, the FSK message at
  *T* + 0.30 s; the first ring comes 0.25 s after the FSK ends.
* `dtmf`: the polarity reverses at *T*; the DTMF caller ID starts at
  *T* + 0.30 s; the first ring comes 0.30 s after its last tone.
* `bell202` (the US default; Bellcore): the first ring starts at *T*; the FSK
  message starts 0.5 s after the end of the first ring cycle's last burst and
  must end 0.2 s before the next burst.
* no caller ID: the first ring starts at *T*, no reversal.

Ringing is `rings` cycles: UK 0.4 s on, 0.2 s off, 0.4 s on, 2.0 s off; US
2.0 s on, 4.0 s off. During a burst the `ring` input pulses at 25 Hz (UK) or
20 Hz (US), active for the first half of each cycle; between bursts it is
inactive. An answered call goes off-hook (`hook` and `in_use` active; with
`extension` only `in_use`) `answer_delay` after the end of the last burst:
that is its answer time. A missed call ends at the end of its last burst.

**Outbound**: off-hook at *T*, which is the call's start. Dial tone plays from
*T* until the first digit at *T* + `dial.delay`. DTMF: digit *k* (from 0)
sounds from first + *k* × (`on_ms` + `off_ms`) for `on_ms`; the answer time is
the end of the last tone. Pulse: digit *d* is *d* pulses (0 is ten), each a
66 ms break (`hook` and `in_use` inactive; with `extension` only `in_use`)
then a 34 ms make; the next digit's first break comes 800 ms after the end of
the previous digit's last make (digit start + pulses × 100 ms + 800 ms); the
answer time is the last make edge (the end of the last break). With
`dial.answer_after` the far end answers that long after the end of dialling
instead (the line silent meanwhile); with `dial.ringback` the ringback tone
plays from 0.3 s after the end of dialling (or half the wait, if shorter)
until the answer. `dial.caller_speech` starts its `at` after the end of
dialling. With `"answer": false` nobody answers: our side goes on-hook at the
end of dialling + `answer_after` (ringback, if any, until then), which is the
call's end; its truth has no answer time and the `end_reason` `abandoned`.
With `dial.dial_tone` false the line is silent from *T* and nothing is dialled:
our side goes on-hook at *T* + `dial.delay`, the call's end (no number, no
answer, `abandoned`).
An outbound answer nothing marks (no ringback ending, no polarity reversal)
is found by the box from the far end's voice, as on a real line: a call with
`speech` logs its answer when the voice begins, up to a second after the
truth's.

**Polarity**: with `polarity_on_answer` the polarity reverses at the answer
time (unless caller ID already reversed it). A reversed polarity returns to
normal when the call ends.

**Talk and hang-up**: the call ends at answer + `talk`. `"hangup": "local"`:
our side goes on-hook (`hook`, `in_use` inactive) then. `"hangup": "remote"`:
the network clears then: `power` inactive for 0.2 s (a K-break), then the
clear-down tone (UK number unobtainable, US busy) until our side goes on-hook
`hangup_delay` after the clear. The call's end time is the clear, its truth
`end_reason` `remote_break`.

**Adapters** (a line in `sources`): the profile's caller-ID variant and ring
cadence replace the country's (docs/adapters.md gives the timing), its tones
the country's dial tone, and its disconnect signal the K-break: `loop_break`
drops `power` for its duration then plays its tone, `reversal` flips
`polarity` at the clear, `tone` plays the tone from the clear, `none` does
nothing; the truth `end_reason` is `remote_break`, `remote_reversal`,
`remote_tone` or `remote_silence`. A reversed polarity (caller ID, or
`answer_reversal`) is restored when our side goes on-hook, or at the clear by
a `reversal` adapter. Levels outside the HAT's `sense` ranges hide the input
that senses them (ring, hook, power).

**Line lost** (`"hangup": "line_lost"`): at answer + `talk` the line goes dead,
as when the broadband hub or ATA it comes from restarts or loses power: `power`
inactive for `line_lost_for`, no tone; our side goes on-hook `hangup_delay` after
it, while it is still dead. The call's end time is the loss, its truth
`end_reason` `fault`, and the line's `no_line_voltage` fault runs from the loss
until the voltage is back (so `line_lost_for` must outlast the box's
`no_voltage_fault_s`, 3 s by default). The line is occupied until then.

**Speech**: each utterance starts at answer + its `at`, scaled to its active
level (pauses excluded), and is cut where the call ends.

**Contact bounce**: every `hook` and `in_use` change (each dial-pulse edge too)
happens at its nominal time and is followed by 2, 4 or 6 further toggles
within `bounce_ms`, so it ends in the new level; their times are
pseudo-random from `seed`. Call times in the log must be the nominal ones.
`ring`, `polarity` and `power` do not bounce.

**Faults**: `no_line_voltage` makes `power` inactive for `duration`;
`stuck_off_hook` makes `hook` and `in_use` active for `duration` (they bounce).

**Buttons, keys, tags**: a `press` makes the line's `record_button` or
`pause_button` input active at answer + `at` for 0.2 s (it bounces like a
hook contact). `keys` are DTMF tones (70 ms on, 80 ms off, -8 dBm0 per tone)
on the line from answer + `at`, heard in the recording like any audio. A
call's `tags` are given to it as an operator would tag it on the web UI: the
simulator calls the box's `policy.tag(line, tags)` 0.3 s after the answer (a
missed call: at the end of its last ring burst).
----------------------------------------------------------------------------
"""

import functools
import random
from dataclasses import dataclass, field

from telephony import countries, levels
from telephony.errors import ScenarioError

from . import signals
from .speech import SpeechError

V23_ALERT_US, V23_FSK_US, V23_RING_AFTER_US = 150_000, 300_000, 250_000
RP_AS_US, RP_AS_FSK_AFTER_US = 250_000, 650_000  # ring-pulse alert: pulse, then data after
ALERT_MS = 100
DTMF_CID_US, DTMF_CID_RING_AFTER_US = 300_000, 300_000
BELL202_AFTER_RING_US, BELL202_BEFORE_RING_US = 500_000, 200_000
PULSE_BREAK_US, PULSE_MAKE_US, INTERDIGIT_US = 66_000, 34_000, 800_000
K_BREAK_US = 200_000
RINGBACK_AFTER_US = 300_000  # from the end of dialling to the first ringback burst
SETTLE_US = 1_000_000  # a call or fault occupies its line this long after its last signal
TAIL_US = 10_000_000  # the run goes on this long after the last signal
SIGNALS = ("hook", "ring", "polarity", "in_use", "power", "record_button", "pause_button")
IDLE = {"hook": False, "ring": False, "polarity": False, "in_use": False, "power": True}
# (buttons start released, as every input but power does)
BOUNCING = ("hook", "in_use", "record_button", "pause_button")
PRESS_US = 200_000  # a button press lasts this long
KEY_ON_MS, KEY_OFF_MS = 70, 80
TAG_AFTER_ANSWER_US = 300_000
RATE = signals.RATE


@dataclass(frozen=True)
class PinEdge:
    """Logical input ``signal`` of ``line`` becomes ``active`` at ``t_us``."""

    t_us: int
    line: int
    signal: str
    active: bool


@dataclass(frozen=True, eq=False)
class AudioSegment:
    """``n_samples`` samples (int16, 8 kHz) on ``line`` from ``t_us``; ``kind`` says what
    they are: "speech", "dial_tone", "dtmf", "keys", "alert", "fsk", "dtmf_cid" or
    "clear_tone".

    The audio itself is not kept: :attr:`samples` makes it again each time
    (``make`` is a recipe, e.g. a :func:`functools.partial` of a generator), so a
    timeline of a month of calls holds recipes, not gigabytes of audio; the
    board asks for a segment's samples when it starts to play it and lets
    them go when it ends.
    """

    line: int
    t_us: int
    kind: str
    n_samples: int
    make: object

    @property
    def samples(self):
        """The segment's int16 samples (made now; a new array each time)."""
        samples = self.make()
        assert len(samples) == self.n_samples, "a segment's recipe is not deterministic"
        return samples

    @property
    def end_us(self):
        return self.t_us + self.n_samples * 1_000_000 // RATE


@dataclass(frozen=True)
class SimAction:
    """At ``t_us`` someone tags the call on ``line`` with ``tags`` (``kind`` "tags")."""

    t_us: int
    line: int
    kind: str
    tags: tuple = ()


@dataclass(frozen=True)
class CallTruth:
    """What the call log must record for scenario call ``index`` (times: clock µs).

    ``answered_us`` is None for a missed call. ``number`` is the caller ID
    number (inbound) or the dialled digits (outbound). ``end_reason`` is
    "local", "missed", or how the far end's clear shows: "remote_break" (the
    exchange's K-break, an adapter's loop break), "remote_reversal",
    "remote_tone" or "remote_silence" (see docs/adapters.md); "fault" when the
    line went dead under the call ("hangup": "line_lost").
    """

    index: int
    line: int
    direction: str
    started_us: int
    answered_us: int
    ended_us: int
    number: str
    name: str
    absence: str
    extension: bool
    end_reason: str
    cid_standard: str = None
    cid_datetime: str = None
    dial_mode: str = None
    tags: tuple = ()


@dataclass(frozen=True)
class FaultTruth:
    """Fault ``index`` of the scenario: ``kind`` on ``line`` from started to ended."""

    index: int
    line: int
    kind: str
    started_us: int
    ended_us: int


@dataclass(frozen=True, eq=False)
class Timeline:
    """A compiled scenario (see the module docstring)."""

    lines: int
    country: str
    edges: tuple
    audio: dict
    active_spans: dict
    truth: tuple
    fault_truth: tuple
    end_us: int
    initial: dict = field(default_factory=lambda: dict(IDLE))
    actions: tuple = ()


def _us(seconds):
    return int(round(seconds * 1_000_000))


class _Plan:
    """The nominal events of one call or fault, before bounce and speech."""

    def __init__(self, line):
        self.line = line
        self.levels = []  # (t_us, signal, active) for hook / in_use / polarity / power
        self.bursts = []  # ring bursts (start_us, end_us)
        self.audio = []  # AudioSegment, without speech
        self.speech = []  # (t_us, cut_us, Utterance)
        self.first_us = 0
        self.last_us = 0  # time of the last signal, bounce included
        self.truth = None
        self.actions = []
        self.ring_hz = None  # the adapter's ringing frequency; None: the country's

    def level(self, t_us, signals_, active):
        for s in signals_:
            self.levels.append((t_us, s, active))

    def sound(self, t_us, kind, make, *args, **kwargs):
        """Add the audio ``make(*args, **kwargs)`` at ``t_us``; returns its end.

        The audio is made once here for its length and then dropped: the
        segment keeps the recipe (see :class:`AudioSegment`).
        """
        recipe = functools.partial(make, *args, **kwargs)
        n = len(recipe())
        if n:
            self.audio.append(AudioSegment(self.line, t_us, kind, n, recipe))
        return t_us + n * 1_000_000 // RATE


def ring_silence_us(sc, adapter=None):
    """The longest pause of the line's ring cadence (µs): the adapter's, else the country's."""
    if adapter is not None:
        return adapter.ring.cadence_ms[-1] * 1000
    return countries.country(sc.country).ring_silence_ms * 1000


def _adapter(sc, line):
    return sc.adapter(line) if hasattr(sc, "adapter") else None


def _unsensed(sc, line):
    """The levels of ``line``'s adapter outside the HAT's sense ranges ("ring_vrms", ...)."""
    adapter, sense = _adapter(sc, line), getattr(sc, "hat_sense", None)
    if adapter is None or sense is None:
        return ()
    return sense.outside(adapter.ring.vrms, adapter.loop_ma, adapter.idle_v)


def occupancy_us(scenario, item):
    """(start_us, end_us) during which a call or fault occupies its line.

    Until 1 s after its last signal; a missed call a further ring silence
    (UK 2 s, US 4 s). Scenario validation uses this to reject overlaps.
    """
    if hasattr(item, "kind"):
        plan = _plan_fault(scenario, item)
    else:
        plan = _plan_call(scenario, item)
    end = plan.last_us + SETTLE_US
    if isinstance(plan.truth, CallTruth) and plan.truth.end_reason == "missed":
        end += ring_silence_us(scenario, _adapter(scenario, item.line))
    return plan.first_us, end


def compile_timeline(scenario, synth):
    """Compile ``scenario`` into a :class:`Timeline`.

    :param synth: speech provider with ``say(text, voice=...) -> int16 @ 8 kHz``
        (:class:`board.sim.speech.SpeechSynth`, or a fake in tests)
    :raises ScenarioError: a caller-ID message does not fit its slot, or the synth
        cannot speak a call's speech (a voice espeak-ng has not got), naming the call
    """
    plans = [_plan_call(scenario, c) for c in scenario.calls]
    fault_plans = [_plan_fault(scenario, f) for f in scenario.faults]
    bounce_us = _us(scenario.bounce_ms / 1000)
    edges = []
    audio = {line: [] for line in range(1, scenario.lines + 1)}
    spans = {line: [] for line in range(1, scenario.lines + 1)}
    levels = {(line, "power"): [(0, True)] for line in range(1, scenario.lines + 1)}
    for plan in plans + fault_plans:
        unsensed = _unsensed(scenario, plan.line)
        for t_us, signal, active in plan.levels:
            if signal == "hook" and "loop_ma" in unsensed:
                continue  # too little loop current for the HAT's hook detector
            levels.setdefault((plan.line, signal), []).append((t_us, active))
        ring_hz = plan.ring_hz or countries.country(scenario.country).ring_hz
        for start, end in () if "ring_vrms" in unsensed else plan.bursts:
            edges.extend(_ring_edges(plan.line, start, end, ring_hz))
        audio[plan.line].extend(plan.audio)
        for t_us, cut_us, utt in plan.speech:
            try:
                audio[plan.line].append(_speech(plan.line, t_us, cut_us, utt, synth))
            except SpeechError as exc:
                # A voice espeak-ng has not got is found only here: named as the reader names fields.
                raise ScenarioError(
                    "%s (see `espeak-ng --voices`)" % exc,
                    source=scenario.source,
                    field="calls[%d]" % plan.truth.index,
                ) from None
        spans[plan.line].append((plan.first_us, plan.last_us + SETTLE_US))
    for line in range(1, scenario.lines + 1):
        if "line_v" in _unsensed(scenario, line):  # the HAT sees no line voltage at all
            levels[(line, "power")] = [(0, False)]
    for (line, signal), changes in sorted(levels.items()):
        edges.extend(_level_edges(line, signal, changes, bounce_us, scenario.seed))
    order = {s: i for i, s in enumerate(SIGNALS)}
    edges.sort(key=lambda e: (e.t_us, e.line, order[e.signal]))
    last = max([p.last_us for p in plans + fault_plans] + [0])
    return Timeline(
        lines=scenario.lines,
        country=scenario.country,
        edges=tuple(edges),
        audio={line: tuple(sorted(segs, key=lambda s: (s.t_us, s.kind))) for line, segs in audio.items()},
        active_spans={line: tuple(merge_spans(s)) for line, s in spans.items()},
        truth=tuple(p.truth for p in plans),
        fault_truth=tuple(p.truth for p in fault_plans),
        end_us=last + TAIL_US,
        actions=tuple(sorted((a for p in plans for a in p.actions), key=lambda a: a.t_us)),
    )


# ------------------------------------------------------------------ calls
def _plan_call(sc, call):
    plan = _Plan(call.line)
    adapter = _adapter(sc, call.line)
    tones = adapter.tones if adapter else sc.country
    at = plan.first_us = _us(call.at_s)
    hook = ("in_use",) if call.extension else ("hook", "in_use")
    bounce_us = _us(sc.bounce_ms / 1000)
    if call.direction == "in":
        reversed_at, last_burst_end = _plan_inbound(sc, call, plan, at, adapter)
        if not call.answer:
            if reversed_at is not None:
                plan.level(reversed_at, ("polarity",), True)
                plan.level(last_burst_end, ("polarity",), False)
            plan.last_us = last_burst_end
            plan.truth = _truth(call, at, None, last_burst_end, "missed")
            if call.tags:
                plan.actions.append(SimAction(last_burst_end, call.line, "tags", call.tags))
            return plan
        answered = last_burst_end + _us(call.answer_delay_s)
        plan.level(answered, hook, True)
    else:
        reversed_at = None
        plan.level(at, hook, True)
        dialled, answered = _plan_dial(sc, call, plan, at, hook, tones)
        if not call.answer:
            return _plan_unanswered(call, plan, at, dialled, answered, hook, bounce_us)
        for utt in call.dial.caller_speech:
            plan.speech.append((dialled + _us(utt.at_s), answered + _us(call.talk_s), utt))
    answer_reversal = call.polarity_on_answer or (adapter is not None and adapter.answer_reversal)
    if answer_reversal and reversed_at is None:
        reversed_at = answered
    end = answered + _us(call.talk_s)
    on_hook = end
    reason = call.hangup
    restore_at = end  # an exchange restores the polarity as the call ends
    last_us = None
    if call.hangup == "line_lost":
        # The hub or ATA restarts under the call: no line voltage, no tone, until it is back.
        on_hook = end + _us(call.hangup_delay_s)
        reason = "fault"
        last_us = end + _us(call.line_lost_s)
        plan.level(end, ("power",), False)
        plan.level(last_us, ("power",), True)
        if adapter is not None:
            restore_at = on_hook
    elif call.hangup == "remote":
        on_hook = end + _us(call.hangup_delay_s)
        if adapter is None:
            reason = "remote_break"
            plan.level(end, ("power",), False)
            plan.level(end + K_BREAK_US, ("power",), True)
            tone_ms = (on_hook - end - K_BREAK_US) / 1000
            plan.sound(
                end + K_BREAK_US,
                "clear_tone",
                signals.call_progress,
                countries.country(sc.country).clear_tone,
                sc.country,
                tone_ms,
            )
        else:
            reason = adapter.end_reason
            restore_at = _plan_disconnect(plan, adapter, end, on_hook, reversed_at)
    elif adapter is not None:
        restore_at = on_hook  # an adapter restores it when the line goes idle
    plan.level(on_hook, hook, False)
    if reversed_at is not None:
        plan.level(reversed_at, ("polarity",), True)
        plan.level(restore_at, ("polarity",), False)
    for utt in call.speech:
        plan.speech.append((answered + _us(utt.at_s), end, utt))
    for press in call.press:
        signal = press.button + "_button"
        plan.level(answered + _us(press.at_s), (signal,), True)
        plan.level(answered + _us(press.at_s) + PRESS_US, (signal,), False)
    for keys in call.keys:
        plan.sound(
            answered + _us(keys.at_s), "keys", signals.dtmf, keys.digits, on_ms=KEY_ON_MS, off_ms=KEY_OFF_MS
        )
    if call.tags:
        plan.actions.append(SimAction(answered + TAG_AFTER_ANSWER_US, call.line, "tags", call.tags))
    plan.last_us = max(on_hook + bounce_us, last_us or 0)
    plan.truth = _truth(call, at, answered, end, reason)
    return plan


def _plan_disconnect(plan, adapter, end, on_hook, reversed_at):
    """The adapter's far-end clear at ``end``; returns when the polarity is restored."""
    disconnect, restore_at, tone_at = adapter.disconnect, on_hook, end
    if disconnect.signal == "loop_break":
        # The feed is removed: no line voltage, no loop current (open-loop disconnect).
        tone_at = end + disconnect.duration_ms * 1000
        plan.level(end, ("power",), False)
        plan.level(tone_at, ("power",), True)
    elif disconnect.signal == "reversal":
        if reversed_at is not None:
            restore_at = end
        else:  # reversed from normal at the clear, back when the line goes idle
            plan.level(end, ("polarity",), True)
            plan.level(on_hook, ("polarity",), False)
    if disconnect.tone and on_hook > tone_at:
        plan.sound(
            tone_at,
            "clear_tone",
            signals.call_progress,
            disconnect.tone,
            adapter.tones,
            (on_hook - tone_at) / 1000,
        )
    return restore_at


def _plan_inbound(sc, call, plan, at, adapter=None):
    """Caller ID and ringing; returns (polarity reversal time or None, end of last burst)."""
    if adapter is not None:
        return _plan_adapter_inbound(sc, call, plan, at, adapter)
    cid = call.caller_id
    standard = cid.standard if cid else None
    ring_at, reversed_at = at, None
    if standard == "v23":
        reversed_at = at
        plan.sound(at + V23_ALERT_US, "alert", signals.alert_tone, ALERT_MS)
        ring_at = plan.sound(at + V23_FSK_US, "fsk", _cid, cid) + V23_RING_AFTER_US
    elif standard == "dtmf":
        reversed_at = at
        ring_at = plan.sound(at + DTMF_CID_US, "dtmf_cid", _cid, cid) + DTMF_CID_RING_AFTER_US
    cadence_ms = countries.country(sc.country).ring_cadence_ms
    _ring(plan, ring_at, cadence_ms, call.rings)
    if standard == "bell202":
        _cid_after_first_ring(sc, call, plan, len(cadence_ms) // 2)
    return reversed_at, plan.bursts[-1][1]


def _ring(plan, ring_at, cadence_ms, rings):
    t = ring_at
    cadence = [ms * 1000 for ms in cadence_ms]
    for _ in range(rings):
        for on, off in zip(cadence[::2], cadence[1::2], strict=False):
            plan.bursts.append((t, t + on))
            t += on + off


def _cid_after_first_ring(sc, call, plan, per_cycle):
    """FSK in the pause after the first ring cycle (Bellcore, ETSI ring-pulse alerting)."""
    cid = call.caller_id
    t = plan.bursts[per_cycle - 1][1] + BELL202_AFTER_RING_US
    end = plan.sound(t, "fsk", _cid, cid)
    if end > plan.bursts[per_cycle][0] - BELL202_BEFORE_RING_US:
        raise ScenarioError(
            "the caller-ID message (%d ms) does not fit between "
            "the first and second ring; shorten the name" % ((end - t) // 1000),
            source=sc.source,
            field="calls[%d].caller_id" % call.index,
        )


def _plan_adapter_inbound(sc, call, plan, at, adapter):
    """An adapter's caller ID and ringing, as its profile says (see docs/adapters.md).

    Before the first ring: an optional idle-line reversal at *T*, an optional
    dual-tone alert at *T* + 0.15 s (at *T* without a reversal), then the
    message 0.15 s after the alert (or at *T* + 0.30 s without one), the first
    ring 0.25 s (FSK) or 0.30 s (DTMF) after its end. With a ring pulse (RP-AS)
    instead of the alert: a 0.25 s ring burst, the message 0.65 s after it.
    After the first ring:
    ringing starts at *T* and the message is timed as Bell 202's.
    """
    cid, how = call.caller_id, adapter.caller_id
    plan.ring_hz = adapter.ring.hz
    per_cycle = len(adapter.ring.cadence_ms) // 2
    ring_at, reversed_at = at, None
    if cid is not None and how.when == "before_ring":
        reversed_at = at if how.reversal else None
        t = at + (V23_ALERT_US if how.reversal else 0)
        if how.ring_pulse:
            plan.bursts.append((t, t + RP_AS_US))
            t += RP_AS_US + RP_AS_FSK_AFTER_US
        elif how.dtas:
            plan.sound(t, "alert", signals.alert_tone, ALERT_MS)
            t += V23_FSK_US - V23_ALERT_US
        else:
            t = at + V23_FSK_US
        kind = "dtmf_cid" if cid.standard == "dtmf" else "fsk"
        gap = DTMF_CID_RING_AFTER_US if cid.standard == "dtmf" else V23_RING_AFTER_US
        ring_at = plan.sound(t, kind, _cid, cid) + gap
    _ring(plan, ring_at, adapter.ring.cadence_ms, call.rings)
    if cid is not None and how.when == "after_first_ring":
        _cid_after_first_ring(sc, call, plan, per_cycle)
    return reversed_at, plan.bursts[-1][1]


def _cid(cid):
    return signals.caller_id(
        cid.standard, number=cid.number, name=cid.name, datetime=cid.datetime, absence=cid.absence
    )


def _plan_unanswered(call, plan, at, dialled, gave_up, hook, bounce_us):
    """An outbound call nobody answers: the caller hangs up at ``gave_up``."""
    plan.level(gave_up, hook, False)
    for utt in call.dial.caller_speech:
        plan.speech.append((dialled + _us(utt.at_s), gave_up, utt))
    if call.tags:
        plan.actions.append(SimAction(gave_up, call.line, "tags", call.tags))
    plan.last_us = gave_up + bounce_us
    plan.truth = _truth(call, at, None, gave_up, "abandoned")
    return plan


def _plan_dial(sc, call, plan, at, hook, tones):
    """Dial tone (of country ``tones``) and dialling; returns (the end of dialling, the
    answer time, or for an unanswered call when the caller hangs up)."""
    dial = call.dial
    first = at + _us(dial.delay_s)
    if not dial.dial_tone:
        return first, first  # silence where the dial tone was; the caller hangs up
    plan.sound(at, "dial_tone", signals.call_progress, "dial", tones, (first - at) / 1000)
    if dial.mode == "dtmf":
        plan.sound(first, "dtmf", signals.dtmf, dial.digits, on_ms=dial.on_ms, off_ms=dial.off_ms)
        n = len(dial.digits)
        dialled = first + n * _us(dial.on_ms / 1000) + (n - 1) * _us(dial.off_ms / 1000)
    else:
        dialled = _plan_pulses(dial, plan, first, hook)
    answered = dialled + _us(dial.answer_after_s)
    if dial.ringback:
        # The exchange connects the far end a moment after the last digit, then rings it.
        ring_at = dialled + min(RINGBACK_AFTER_US, (answered - dialled) // 2)
        plan.sound(ring_at, "ringback", signals.call_progress, "ringback", tones, (answered - ring_at) / 1000)
    return dialled, answered


def _plan_pulses(dial, plan, first, hook):
    """Loop-disconnect dialling; returns the last make (the end of dialling)."""
    t = first
    for digit in dial.digits:
        pulses = 10 if digit == "0" else int(digit)
        for k in range(pulses):
            plan.level(t + k * (PULSE_BREAK_US + PULSE_MAKE_US), hook, False)
            last_make = t + k * (PULSE_BREAK_US + PULSE_MAKE_US) + PULSE_BREAK_US
            plan.level(last_make, hook, True)
        t += pulses * (PULSE_BREAK_US + PULSE_MAKE_US) + INTERDIGIT_US
    return last_make


def _truth(call, at, answered, ended, reason):
    cid = call.caller_id
    return CallTruth(
        index=call.index,
        line=call.line,
        direction=call.direction,
        started_us=at,
        answered_us=answered,
        ended_us=ended,
        number=(call.dial.digits or None) if call.dial else (cid.number if cid else None),
        name=cid.name if cid else None,
        absence=cid.absence if cid else None,
        extension=call.extension,
        end_reason=reason,
        cid_standard=cid.standard if cid else None,
        cid_datetime=cid.datetime if cid else None,
        dial_mode=call.dial.mode if call.dial else None,
        tags=call.tags,
    )


def _speech(line, t_us, cut_us, utt, synth):
    # The synth keeps each distinct utterance once; the segment only its recipe.
    n = min(len(synth.say(utt.text, voice=utt.voice)), max(0, (cut_us - t_us) * RATE // 1_000_000))
    return AudioSegment(line, t_us, "speech", n, functools.partial(_spoken, synth, utt, n))


def _spoken(synth, utt, n):
    """``utt`` spoken at its level, cut to ``n`` samples."""
    return levels.set_active_level(synth.say(utt.text, voice=utt.voice), utt.level_dbm0)[:n]


# ------------------------------------------------------------------ faults
def _plan_fault(sc, fault):
    plan = _Plan(fault.line)
    at = plan.first_us = _us(fault.at_s)
    end = at + _us(fault.duration_s)
    if fault.kind == "no_line_voltage":
        plan.level(at, ("power",), False)
        plan.level(end, ("power",), True)
        plan.last_us = end
    else:
        plan.level(at, ("hook", "in_use"), True)
        plan.level(end, ("hook", "in_use"), False)
        plan.last_us = end + _us(sc.bounce_ms / 1000)
    plan.truth = FaultTruth(fault.index, fault.line, fault.kind, at, end)
    return plan


# ------------------------------------------------------------------ edges
def _ring_edges(line, start, end, hz):
    period = 1_000_000 // hz
    for t in range(start, end - period // 2 + 1, period):
        yield PinEdge(t, line, "ring", True)
        yield PinEdge(t + period // 2, line, "ring", False)


def _level_edges(line, signal, changes, bounce_us, seed):
    """Edges of one input from its nominal changes (bouncing hook contacts chatter)."""
    final = {}
    for t_us, active in sorted(changes, key=lambda c: c[0]):
        final[t_us] = active  # simultaneous changes: the last one stated wins
    level = False
    nominal = []
    for t_us, active in sorted(final.items()):
        if active != level:
            nominal.append((t_us, active))
            level = active
    edges = []
    for i, (t_us, active) in enumerate(nominal):
        edges.append(PinEdge(t_us, line, signal, active))
        if signal not in BOUNCING or bounce_us <= 0:
            continue
        limit = bounce_us
        if i + 1 < len(nominal):
            limit = min(limit, nominal[i + 1][0] - t_us)
        for k, offset in enumerate(_chatter(seed, line, signal, t_us, limit)):
            edges.append(PinEdge(t_us + offset, line, signal, active == (k % 2 == 1)))
    return edges


def _chatter(seed, line, signal, t_us, limit_us):
    """Sorted offsets (µs, 10 µs steps, strictly inside ``limit_us``) of 2, 4 or 6 toggles."""
    slots = range(10, limit_us, 10)
    rng = random.Random("%d/%d/%s/%d" % (seed, line, signal, t_us))
    count = min(2 * rng.randint(1, 3), len(slots) // 2 * 2)
    return sorted(rng.sample(slots, count))


def merge_spans(spans):
    """``(start, end)`` spans, sorted, with overlapping and touching ones merged."""
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
