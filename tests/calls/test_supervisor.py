"""The line supervisor, driven edge by edge on a simulated clock.

Each test writes what happens on a line with :class:`LineScript` (handset,
ring cadence, pulse dialling, K-break, power loss, DSP events), plays it into
a :class:`Rig` and checks the call records and events. Times in the scripts
are ms; everything the supervisor reports is clock µs.
"""

import threading
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from board.base import INPUT_SIGNALS
from firmware.bus import (
    CallAnswerConfirmed,
    CallAnswered,
    CallAnswerWithdrawn,
    CallEnded,
    CallerIdReceived,
    CallStarted,
    CallUpdated,
    DialPulse,
    DigitDialled,
    Event,
    EventBus,
    LineFault,
    LineStateChanged,
    ToneDetected,
)
from firmware.calls.status import LineStatus
from firmware.calls.supervisor import (
    STATES,
    Supervisor,
    SupervisorConfig,
    dialling_prefix,
    shortest_number,
    stored_number,
)
from firmware.clock import RealClock, SimClock
from firmware.dsp.events import (
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
from firmware.errors import ConfigError
from firmware.policy import cards

ALL = frozenset(INPUT_SIGNALS)
MINIMAL = frozenset({"hook", "ring", "polarity"})
TOLERANCE_US = 50_000


def us(t_ms):
    return int(round(t_ms * 1000))


# ------------------------------------------------------------ DSP events
# The DSP's own event classes (firmware.dsp.events: plain dataclasses, no spandsp).
DSP_LATENCY_US = 40_000  # a DSP reports an event a little after it began


# ------------------------------------------------------------ edge builders


class LineScript:
    """Raw edges and DSP events on one line, built from what happens on it.

    :param chatter: ``f() -> offsets`` (µs, sorted, even count): after every
        contact change the input toggles at these offsets before settling
    """

    def __init__(self, line=1, signals=ALL, chatter=None):
        self.line = line
        self.signals = frozenset(signals)
        self.chatter = chatter
        self.edges = []  # (t_us, signal, active)
        self.events = []  # (deliver_us, event)

    def contact(self, signal, active, t_ms):
        if signal not in self.signals:
            return
        t = us(t_ms)
        self.edges.append((t, signal, active))
        for i, off in enumerate(self.chatter() if self.chatter else ()):
            self.edges.append((t + off, signal, active if i % 2 else not active))

    def handset(self, off_hook, t_ms, extension=False):
        """Our handset (hook and in_use) or a parallel extension (in_use only)."""
        if not extension:
            self.contact("hook", off_hook, t_ms)
        self.contact("in_use", off_hook, t_ms)

    def pulse_dial(self, t_ms, digits, extension=False, break_ms=66, make_ms=34, pause_ms=800):
        """Loop-disconnect dialling from ``t_ms``; returns the last make (ms)."""
        t, last_make = t_ms, None
        for digit in digits:
            if last_make is not None:
                t = last_make + pause_ms
            for _ in range(int(digit) or 10):
                self.handset(False, t, extension)
                self.handset(True, t + break_ms, extension)
                last_make = t + break_ms
                t += break_ms + make_ms
        return last_make

    def dtmf(self, t_ms, digits, on_ms=70, off_ms=80):
        """DTMF digits as the DSP reports them; returns the end of the last (ms)."""
        t = t_ms
        for digit in digits:
            self.dsp(DtmfDigit(us(t), digit, us(t + on_ms)), deliver_us=us(t + on_ms) + 20_000)
            t += on_ms + off_ms
        return t - off_ms

    def ring_burst(self, t_ms, dur_ms, hz):
        """One burst as the half-wave ring detector shows it; returns (start, end) ms.

        The detector conducts in the first half of each ring cycle; the burst
        ends with its last cycle.
        """
        period = 1000 / hz
        n = max(1, round(dur_ms / period))
        for k in range(n):
            on = t_ms + k * period
            self.edges += [(us(on), "ring", True), (us(on + period / 2), "ring", False)]
        return t_ms, t_ms + n * period

    def ring(self, t_ms, country, cycles):
        """``cycles`` of the country's cadence; returns the bursts [(start, end)] ms."""
        out = []
        for c in range(cycles):
            if country == "uk":
                t = t_ms + c * 3000
                out += [self.ring_burst(t, 400, 25), self.ring_burst(t + 600, 400, 25)]
            else:
                out.append(self.ring_burst(t_ms + c * 6000, 2000, 20))
        return out

    def reversal(self, t_ms, reversed_=True):
        self.contact("polarity", reversed_, t_ms)

    def power(self, present, t_ms):
        self.contact("power", present, t_ms)

    def dsp(self, event, deliver_us=None):
        self.events.append((event.t_us + DSP_LATENCY_US if deliver_us is None else deliver_us, event))


class Rig:
    """A supervisor on a simulated clock with a strict bus that records every event."""

    def __init__(self, lines=1, signals=ALL, **config):
        self.clock = SimClock()
        self.bus = EventBus(strict=True)
        self.log = []
        self.bus.subscribe(Event, self.log.append)
        self.hook_changes = []
        self.keys = []  # the digits handed to on_key, in order
        self.sup = Supervisor(
            lines,
            self.clock,
            self.bus,
            SupervisorConfig(**config),
            signals=signals,
            on_hook_change=self._hook_change,
            on_key=lambda line, digit, t_us, end_us: self.keys.append(digit),
        )

    def _hook_change(self, line, off_hook):
        self.hook_changes.append((self.clock.now_us(), line, off_hook))

    def play(self, *scripts, until_ms):
        for script in scripts:
            for t, signal, active in sorted(script.edges, key=lambda e: e[0]):
                self.clock.call_at(t, partial(self.sup.on_edge, script.line, signal, active, t))
            for deliver_us, event in script.events:
                self.clock.call_at(deliver_us, partial(self.sup.on_dsp_event, script.line, event))
        self.clock.run_until(us(until_ms))
        return self

    def calls(self, line=None):
        seen = {}
        for ev in self.log:
            if isinstance(ev, CallStarted) and (line is None or ev.line == line):
                seen[id(ev.call)] = ev.call
        return list(seen.values())

    def only_call(self):
        calls = self.calls()
        assert len(calls) == 1, calls
        return calls[0]

    def of(self, kind):
        return [ev for ev in self.log if isinstance(ev, kind)]

    def states(self, line=1):
        return [ev.state for ev in self.of(LineStateChanged) if ev.line == line]


def near(actual_us, truth_ms):
    return actual_us is not None and abs(actual_us - us(truth_ms)) <= TOLERANCE_US


def summary(call):
    return (
        call.line,
        call.direction,
        call.started_us,
        call.answered_us,
        call.ended_us,
        call.end_reason,
        call.number,
        call.extension,
    )


# ------------------------------------------------------------ inbound


def test_uk_inbound_reversal_alert_caller_id_then_answered():
    s = LineScript()
    s.reversal(1000)
    s.dsp(AlertTone(us(1100)))
    s.dsp(CallerId(us(1300), "v23", number="01632960123", name="ACME LTD", datetime="03020900"))
    bursts = s.ring(2500, "uk", 2)
    s.handset(True, 7000)  # in the pause after the second cadence
    s.handset(False, 27000)
    s.reversal(27000, reversed_=False)
    rig = Rig().play(s, until_ms=30000)

    call = rig.only_call()
    assert summary(call) == (1, "in", us(1000), us(7000), us(27000), "local", "01632960123", False)
    assert (call.name, call.cid_datetime, call.cid_standard) == ("ACME LTD", "03020900", "v23")
    assert rig.states() == ["alerting", "ringing", "connected", "idle"]
    started = rig.of(CallStarted)[0]
    assert started.t_us == us(1000) and started.call.number == "01632960123"
    assert [e.name for e in rig.of(ToneDetected)] == ["alert"]
    assert rig.of(CallerIdReceived)[0].name == "ACME LTD"
    assert bursts[0][0] == 2500
    assert rig.sup.state(1) == "idle" and rig.sup.live_call(1) is None


def test_us_inbound_caller_id_between_rings_answered_during_a_burst():
    s = LineScript()
    first = s.ring(1000, "us", 1)[0]
    s.dsp(CallerId(us(first[1] + 500), "bell202", number="2015550123", name="SMITH J"))
    s.ring_burst(7000, 1500, 20)  # picked up 1.4 s into the second burst
    s.handset(True, 8400)
    s.handset(False, 20000)
    rig = Rig(country="us").play(s, until_ms=25000)

    call = rig.only_call()
    assert summary(call) == (1, "in", us(1000), us(8400), us(20000), "local", "2015550123", False)
    assert call.cid_standard == "bell202"
    updates = [e for e in rig.of(CallUpdated) if e.call is call]
    assert updates and updates[0].t_us == us(first[1] + 500)
    assert rig.states() == ["ringing", "connected", "idle"]


def test_withheld_caller_id_is_private_with_no_number():
    s = LineScript()
    s.reversal(500)
    s.dsp(CallerId(us(800), "v23", absence="private"))
    s.ring(2000, "uk", 1)
    s.handset(True, 4000)
    s.handset(False, 9000)
    call = Rig().play(s, until_ms=10000).only_call()
    assert call.absence == "private" and call.number is None and call.answered


@pytest.mark.parametrize("country,cycles", [("uk", 3), ("us", 2)])
def test_missed_call_ends_at_the_last_ring(country, cycles):
    s = LineScript()
    bursts = s.ring(1000, country, cycles)
    rig = Rig(country=country).play(s, until_ms=30000)
    call = rig.only_call()
    assert summary(call) == (1, "in", us(1000), None, us(bursts[-1][1]), "missed", None, False)
    assert not call.answered
    assert rig.states() == ["ringing", "idle"]
    ended = rig.of(CallEnded)[0]
    # declared ring_timeout after the last burst, dated by the burst
    assert ended.t_us == us(bursts[-1][1])


def test_missed_uk_call_with_reversal_starts_at_the_reversal():
    s = LineScript()
    s.reversal(1000)
    s.dsp(AlertTone(us(1100)))
    bursts = s.ring(2000, "uk", 2)
    s.reversal(bursts[-1][1] + 100, reversed_=False)
    call = Rig().play(s, until_ms=15000).only_call()
    assert (call.started_us, call.ended_us, call.end_reason) == (us(1000), us(bursts[-1][1]), "missed")


def test_reversal_without_a_ring_is_no_call():
    s = LineScript()
    s.reversal(1000)
    s.dsp(CallerId(us(1300), "v23", message_waiting=True))
    s.reversal(2000, reversed_=False)
    rig = Rig(cid_wait_ms=5000).play(s, until_ms=10000)
    assert rig.calls() == []
    assert rig.states() == ["alerting", "idle"]
    assert rig.of(LineStateChanged)[-1].t_us == us(6000)
    assert rig.of(CallerIdReceived)[0].message_waiting is True


def unrung_caller_id(s, number="01632960123"):
    """A UK caller-ID phase at 1 s that no sensed ring follows (ringing below the HAT's range)."""
    s.reversal(1000)
    s.dsp(AlertTone(us(1150)))
    s.dsp(CallerId(us(1300), "v23", number=number))


def test_a_caller_id_no_ring_follows_is_answered_by_a_later_off_hook():
    s = LineScript()
    unrung_caller_id(s)
    s.handset(True, 12000)  # past cid_wait_ms: the phone rang, the HAT did not sense it
    s.dsp(DtmfDigit(us(13000), "4", us(13070)))  # keyed after the answer, inside the wait for dial tone
    s.dsp(DtmfDigit(us(16000), "1", us(16070)))
    s.handset(False, 20000)
    rig = Rig().play(s, until_ms=25000)
    call = rig.only_call()
    assert summary(call) == (1, "in", us(1000), us(12000), us(20000), "local", "01632960123", False)
    assert "ring_not_sensed" in call.notes
    assert rig.states() == ["alerting", "ringing", "connected", "idle"]
    assert [(f.kind, f.active, f.t_us) for f in rig.of(LineFault)] == [("ring_not_sensed", True, us(1000))]
    # The answer stands once no dial tone came: what the caller must hear waits for it.
    (answered,) = rig.of(CallAnswered)
    assert answered.provisional and answered.t_us == us(12000)
    assert [e.t_us for e in rig.of(CallAnswerConfirmed)] == [us(14000)]
    # Keys after the answer are keys (the policy masks them), never digits of the call.
    assert rig.keys == ["4", "1"] and rig.of(DigitDialled) == []


def test_a_caller_id_no_ring_follows_is_missed_after_unrung_answer_ms():
    s = LineScript()
    unrung_caller_id(s)
    rig = Rig(unrung_answer_ms=30000).play(s, until_ms=40000)
    call = rig.only_call()
    assert summary(call) == (1, "in", us(1000), None, us(1000), "missed", "01632960123", False)
    assert "ring_not_sensed" in call.notes
    assert rig.states() == ["alerting", "ringing", "idle"]
    assert rig.of(CallEnded)[0].t_us == us(1000)
    assert rig.sup.state(1) == "idle"


def test_an_off_hook_after_unrung_answer_ms_is_an_outbound_call():
    s = LineScript()
    unrung_caller_id(s)
    s.handset(True, 35000)
    s.handset(False, 40000)
    calls = Rig(unrung_answer_ms=30000).play(s, until_ms=45000).calls()
    assert [(c.direction, c.number, c.end_reason) for c in calls] == [
        ("in", "01632960123", "missed"),
        ("out", None, "abandoned"),
    ]


def test_dial_tone_after_an_unrung_answer_makes_it_an_outbound_call():
    """The caller ID had no call behind it (the caller gave up, or it was for a phone
    elsewhere): the off-hook gets dial tone, and what is dialled is an outbound call."""
    s = LineScript()
    unrung_caller_id(s)
    s.handset(True, 10000)
    s.dsp(Tone(us(10100), "dial"), deliver_us=us(10950))
    s.dsp(DtmfDigit(us(9000), "0", us(9070)), deliver_us=us(9100))  # on-hook: not a digit
    end = s.dtmf(12000, "01314960321")
    s.reversal(end + 3000, reversed_=False)
    s.handset(False, end + 9000)
    rig = Rig().play(s, until_ms=end + 10000)
    missed, out = rig.calls()
    assert summary(missed) == (1, "in", us(1000), None, us(10000), "missed", "01632960123", False)
    assert "dial_tone" in missed.notes
    assert summary(out)[:3] == (1, "out", us(10000)) and out.number == "01314960321"
    assert out.end_reason == "local" and out.answered_us == us(end + 3000)
    assert [e.call for e in rig.of(CallAnswerWithdrawn)] == [missed]
    assert rig.of(CallAnswerConfirmed) == [] and rig.keys == []
    assert rig.states() == ["alerting", "ringing", "connected", "idle", "dialling", "connected", "idle"]


def test_a_second_caller_id_while_waiting_ends_the_first_as_missed():
    s = LineScript()
    unrung_caller_id(s)
    s.reversal(15000, reversed_=False)  # the first caller gave up
    s.reversal(20000)
    s.dsp(AlertTone(us(20150)))
    s.dsp(CallerId(us(20300), "v23", number="02079460000"))
    s.handset(True, 26000)
    s.handset(False, 30000)
    calls = Rig().play(s, until_ms=35000).calls()
    assert [summary(c) for c in calls] == [
        (1, "in", us(1000), None, us(1000), "missed", "01632960123", False),
        (1, "in", us(20000), us(26000), us(30000), "local", "02079460000", False),
    ]


def test_a_ring_sensed_after_all_makes_it_an_ordinary_ringing_call():
    s = LineScript()
    unrung_caller_id(s)
    s.ring(9000, "uk", 1)  # the ringing voltage rose into the HAT's range
    s.handset(True, 12000)
    s.handset(False, 15000)
    rig = Rig().play(s, until_ms=16000)
    call = rig.only_call()
    assert summary(call) == (1, "in", us(1000), us(12000), us(15000), "local", "01632960123", False)
    assert "ring_not_sensed" not in call.notes
    assert not rig.of(CallAnswered)[0].provisional


def test_an_unrung_answer_must_outlast_the_wait_for_a_ring():
    with pytest.raises(ConfigError) as info:
        SupervisorConfig(unrung_answer_ms=4000)
    assert info.value.field == "unrung_answer_ms" and "cid_wait_ms" in info.value.message


def test_a_ring_input_spike_is_no_call():
    s = LineScript()
    s.edges += [(us(1000), "ring", True), (us(1001), "ring", False)]
    assert Rig().play(s, until_ms=10000).calls() == []


def test_extension_pick_up_answers_with_extension_flag():
    s = LineScript()
    s.ring(1000, "uk", 1)
    s.handset(True, 3000, extension=True)
    s.handset(False, 15000, extension=True)
    call = Rig().play(s, until_ms=16000).only_call()
    assert summary(call) == (1, "in", us(1000), us(3000), us(15000), "local", None, True)


def test_own_handset_is_not_an_extension_even_when_in_use_settles_first():
    s = LineScript()
    s.ring(1000, "uk", 1)
    s.contact("in_use", True, 3000)
    s.contact("hook", True, 3000)
    s.edges += [(us(3000) + 2000, "hook", False), (us(3000) + 6000, "hook", True)]  # hook chatters
    s.handset(False, 9000)
    rig = Rig().play(s, until_ms=10000)
    call = rig.only_call()
    assert call.answered_us == us(3000) and call.extension is False


def test_picked_up_during_caller_id_phase_is_an_answered_inbound_call():
    s = LineScript()
    s.reversal(1000)
    s.handset(True, 1500)
    s.handset(False, 8000)
    call = Rig().play(s, until_ms=9000).only_call()
    assert summary(call)[:6] == (1, "in", us(1000), us(1500), us(8000), "local")


# ------------------------------------------------------------ outbound


@pytest.mark.parametrize("digits", ["0123456789", "01632960123"])
def test_pulse_dialled_number(digits):
    s = LineScript(chatter=lambda: [1500, 3000, 5000, 8000])
    s.handset(True, 1000)
    end = s.pulse_dial(2500, digits)
    s.handset(False, end + 20000)
    rig = Rig().play(s, until_ms=end + 25000)
    call = rig.only_call()
    assert summary(call) == (1, "out", us(1000), us(end), us(end + 20000), "local", digits, False)
    assert call.dial_method == "pulse"
    assert [(d.digit, d.method) for d in rig.of(DigitDialled)] == [(d, "pulse") for d in digits]
    assert rig.of(DigitDialled)[0].t_us == us(2500)
    assert rig.of(CallAnswered)[0].t_us == us(end)
    assert rig.states() == ["dialling", "connected", "idle"]


def test_pulse_dialling_from_an_extension():
    s = LineScript()
    s.handset(True, 1000, extension=True)
    end = s.pulse_dial(2000, "999", extension=True)
    s.handset(False, end + 10000, extension=True)
    call = Rig().play(s, until_ms=end + 12000).only_call()
    assert (call.number, call.extension, call.answered_us) == ("999", True, us(end))


def test_dtmf_dialled_number_and_digits_after_connect_are_not_logged():
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Tone(us(1100), "dial"))
    end = s.dtmf(2500, "02079460000")
    s.dsp(Tone(us(end + 1500), "ringback"))
    s.dtmf(end + 10000, "4111111111111111")  # a card number, in the call: never logged
    s.handset(False, end + 30000)
    rig = Rig().play(s, until_ms=end + 31000)
    call = rig.only_call()
    # Ringback after the number: still ringing at the dial timeout; a key is the answer.
    assert summary(call) == (
        1,
        "out",
        us(1000),
        us(end + 10000),
        us(end + 30000),
        "local",
        "02079460000",
        False,
    )
    assert call.dial_method == "dtmf"
    assert "".join(d.digit for d in rig.of(DigitDialled)) == "02079460000"
    assert all("4111" not in (e.call.number or "") for e in rig.log if hasattr(e, "call"))
    assert "ringback" in call.notes and call.end_reason == "local"


def keyed_after_dialling(dialled, card, code="737", country="uk", **config):
    """The call of ``card`` and ``code`` keyed straight on after ``dialled``, before any answer
    (``config``: more of the supervisor's, a line's ``outside_line``)."""
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Tone(us(1100), "dial"))
    end = s.dtmf(2500, dialled)
    end = s.dtmf(end + 300, card)
    end = s.dtmf(end + 400, code)
    s.handset(False, end + 8000)
    rig = Rig(country=country, **config).play(s, until_ms=end + 9000)
    return rig, rig.only_call()


def test_digits_keyed_after_a_card_number_while_dialling_are_withheld():
    """A card number and its security code keyed straight on after the number, before
    any answer: the card is taken for more of the number, masked as it is recognised;
    the code is withheld, on the call and on the bus (PCI DSS forbids keeping it at all)."""
    rig, call = keyed_after_dialling("01632960999", "4111111111111111")
    keyed = "01632960999" + "4111111111111111" + "737"
    # Recognised at a card-like run (here one that ends two digits before the card does:
    # a Luhn window across the number's end), masked from the card's first digit on;
    # what follows is withheld, the code too.
    assert call.number == "01632960999" + "X" * (len(call.number) - 11)
    assert 11 + 13 <= len(call.number) <= len(keyed) - 3
    assert call.digits_withheld
    dialled = rig.of(DigitDialled)
    # The digit that completed the card is an X on the bus as well.
    masked = "".join(d.digit for d in dialled[len(call.number) - 1 :])
    assert masked == "X" * (len(keyed) - len(call.number) + 1)
    assert all(d.past_number for d in dialled[len(call.number) :])  # cut out of the recording
    # Every state of the call on the bus after the card was recognised has it masked.
    assert not any("4111111111111" in (e.call.number or "") for e in rig.log if hasattr(e, "call"))


# A card of each length a card number has, keyed straight on after a whole number. From
# 15 digits a window from the card's second or third digit may pass the Luhn check before
# the card ends: the review found those first digits left in clear ("0163296099959XXX...").
CARDS_BY_LENGTH = {
    13: "4222222222222",
    14: "36227206271667",
    15: "266226245454277",
    16: "5928580788854064",
    17: "43587018111914506",
    18: "385572686429265571",
    19: "3292651927276557184",
}


@pytest.mark.parametrize("length", sorted(CARDS_BY_LENGTH))
def test_no_digit_of_a_card_number_of_any_length_is_kept(length):
    card = CARDS_BY_LENGTH[length]
    assert len(card) == length and cards.luhn_ok(card)
    rig, call = keyed_after_dialling("01632960999", card)
    # The number dialled whole (a search for it finds the call), not one digit of the card,
    # as the call log stores it (cards.scrub) and on the call itself.
    stored = cards.scrub(call.number)
    assert stored == call.number == "01632960999" + "X" * (len(stored) - 11), stored
    assert call.digits_withheld
    for e in rig.log:
        if hasattr(e, "call") and e.call.number and "X" in e.call.number:
            assert e.call.number.startswith("01632960999X"), e.call.number


@pytest.mark.parametrize(
    "dialled",
    [
        "02079460123",  # London: 0 and 10 digits, its last an issuer digit
        "07700900456",  # a mobile
        "0169773456",  # 0 and 9: Brampton, the one area with four-digit local numbers
        "01524212345",  # 0 and 10 in Hornby, an area of five-digit codes and numbers
        "01387312345",  # ... and in Langholm
        "14102079460125",  # the caller's number withheld first
    ],
)
def test_the_number_dialled_keeps_its_digits_before_a_card(dialled):
    """A Luhn window across the number's last digits and the card's first is not the card:
    the number is whole up to its shortest length, so the card begins after it."""
    _rig, call = keyed_after_dialling(dialled, "4111111111111111")
    stored = cards.scrub(call.number)  # as the call log stores it
    assert stored == dialled + "X" * (len(stored) - len(dialled)), stored
    assert call.digits_withheld


def test_a_card_found_early_by_a_run_across_the_numbers_end_is_logged_with_fewer_xs():
    """A 16-digit card keyed on after 01632 960123 is found at its 6th digit: the run
    "2960123411111", from the number's 5th digit, passes the Luhn check. The call log has
    an X for each card digit keyed up to there and nothing for the 10 withheld after
    (docs/pci.md: nothing replaces them, the call says only that digits were withheld),
    so "01632960123XXXXXX" holds six X for a card of sixteen digits."""
    dialled, card = "01632960123", "4111111111111111"
    assert cards.luhn_ok("2960123" + card[:6])
    rig, call = keyed_after_dialling(dialled, card)
    assert call.number == stored_number(call, "uk") == dialled + "XXXXXX"
    assert call.digits_withheld
    # On the bus: a key for each key, an X from the one that found the card to the code's end.
    keys = "".join(d.digit for d in rig.of(DigitDialled))
    assert len(keys) == len(dialled + card) + 3 and keys[len(dialled) + 5 :] == "X" * (11 + 3), keys


def test_a_luhn_valid_run_from_inside_the_number_leaves_the_number_its_digits():
    """Keys that are no card's after a whole number, one Luhn-valid run across the number's
    end ("63296099970707"): the review found the number stored as 01XXX.... The number
    keeps the digits of its shortest length; what is keyed past it is masked (the doubt
    goes to the card), and withheld after."""
    _rig, call = keyed_after_dialling("01632960999", "707070707070")
    stored = cards.scrub(call.number)  # as the call log stores it
    assert stored == call.number and stored.startswith("01632960999"), stored
    assert set(stored[11:]) == {"X"}, stored


def test_a_card_keyed_with_its_first_digit_slipped_keeps_no_digit():
    """A card keyed with its first digit slipped to one no card begins with (5 as 7) is
    recognised by a run from its third digit: the review found its first two digits kept
    ("0163296099979XXX..."). It is masked from the number's shortest length."""
    rig, call = keyed_after_dialling("01632960999", "7928580788854064")
    stored = cards.scrub(call.number)
    assert stored == call.number == "01632960999" + "X" * (len(stored) - 11), stored
    assert not any("016329609997" in (e.call.number or "") for e in rig.log if hasattr(e, "call"))


# The cards above with one digit keyed wrong, each kept in clear before: no run of them
# passes the Luhn check, yet a slipped digit leaves the rest of the card as it is.
SLIPPED_CARDS = {
    13: "4222222223222",
    14: "36227206281667",
    15: "266226245554277",
    16: "5928580788855064",
    17: "43587018121914506",
    18: "385572686429266571",
}


# A 16-digit card of which only the first ten are keyed on after 01632 960123 before the
# dialling ends: no run of the number and those ten passes the Luhn check, so no card is found.
CUT_SHORT_CARD = "4198463464848500"


def keyed_then(dialled, keys, end, country="uk"):
    """``(rig, call)``: ``keys`` keyed straight on after ``dialled``, then the dialling ended
    by ``end``: the caller hanging up, the box no longer hearing the line (a power cut's
    warning, a stop), or a pause long enough for the dial timeout, the rest of the card
    (:data:`CUT_SHORT_CARD`) keyed after it."""
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Tone(us(1100), "dial"))
    last = s.dtmf(s.dtmf(2500, dialled) + 300, keys)
    if end == "on_hook":
        s.handset(False, last + 500)
    elif end == "pause":
        s.handset(False, s.dtmf(last + 6000, CUT_SHORT_CARD[len(keys) :]) + 2000)
    rig = Rig(country=country).play(s, until_ms=last + 12000 if end == "pause" else last + 600)
    if end == "power_cut":
        rig.sup.close(heard_until_us=us(last + 500))
    return rig, rig.only_call()


@pytest.mark.parametrize("end", ["on_hook", "power_cut", "pause"])
def test_a_card_cut_short_after_a_number_keeps_no_more_than_its_first_six_digits(end):
    """A card keyed on after a number is found at its last digit (or its 13th, keyed with a
    digit wrong), but the dialling may end before: the caller hangs up, the power is cut,
    or the caller stops long enough for the call to be taken as answered. Its first ten
    digits were kept in the call log as more of the number, leaving six to guess (one in
    ten passing the Luhn check). No UK number has a digit past its shortest whole length,
    so more keys there than the six first digits of a card PCI DSS lets be shown are
    masked from that length on; the number keeps its digits, and no key its tone."""
    dialled, keys = "01632960123", CUT_SHORT_CARD[:10]
    assert cards.mask_dialled(dialled + keys, len(dialled)) == dialled + keys  # no card found
    rig, call = keyed_then(dialled, keys, end)
    assert stored_number(call, "uk") == dialled + "X" * 10, stored_number(call, "uk")
    assert [d.past_number for d in rig.of(DigitDialled)][len(dialled) : len(dialled) + 10] == [True] * 10
    assert (end == "power_cut") == ("dialling_cut" in call.notes)


@pytest.mark.parametrize(
    ("dialled", "keys", "country", "logged"),
    [
        # A card's first six (its issuer's, which PCI DSS lets be shown), or a few menu keys.
        ("01632960123", CUT_SHORT_CARD[:6], "uk", "01632960123419846"),
        ("01632960123", "1#2", "uk", "016329601231#2"),
        ("999", "4198463", "uk", "999XXXXXXX"),
        # An 0800 number's 11th digit that no card begins with stays the number's.
        ("08001234567", "4198463", "uk", "08001234567XXXXXXX"),
        ("0800123456", "3419846", "uk", "0800123456XXXXXXX"),
        ("12025550143", "4198463", "us", "12025550143XXXXXXX"),
        # A number abroad whose length the box does not know may have 8 digits more.
        ("008816", "12345678901", "uk", "00881612345678901"),
        # A US carrier's access code and a number: taken for 1 and ten, kept whole.
        ("1010288", "12125550123", "us", "101028812125550123"),
    ],
)
def test_keys_cut_short_after_a_number_past_a_cards_first_six_are_masked(dialled, keys, country, logged):
    _rig, call = keyed_then(dialled, keys, "on_hook", country=country)
    assert stored_number(call, country) == logged


@pytest.mark.parametrize("length", sorted(SLIPPED_CARDS))
def test_a_card_keyed_on_with_a_digit_wrong_is_masked_all_the_same(length):
    card = SLIPPED_CARDS[length]
    assert len(card) == length and not cards.luhn_ok(card)
    rig, call = keyed_after_dialling("01632960999", card)
    # Masked at its 13th digit past the number, from the number's end on; the rest of the
    # card and its code withheld. The number dialled keeps its digits.
    assert cards.scrub(call.number) == call.number == "01632960999" + "X" * 13
    assert call.digits_withheld
    # The digit that made it 13 is an X on the bus as well, as is every one after.
    assert "".join(d.digit for d in rig.of(DigitDialled))[11 + 12 :] == "X" * (length + 3 - 12)
    assert not any(card[:12] in (e.call.number or "") for e in rig.log if hasattr(e, "call"))


@pytest.mark.parametrize("length", sorted(SLIPPED_CARDS))
def test_a_card_keyed_on_with_a_digit_wrong_after_a_short_code_is_masked(length):
    """A short code's start says nothing of its length, so a card keyed on after it with a
    digit wrong (no run passes the Luhn check) was kept whole in the number. At 16 digits
    (more than any number has) the run is masked from its first digit; the rest withheld."""
    card = SLIPPED_CARDS[length]
    rig, call = keyed_after_dialling("150", card, code="")
    stored = cards.scrub(call.number)
    # Masked from the run's first digit (or, found by a Luhn-valid run, its first 2-6).
    assert stored == call.number and len(stored) >= 16 and set(stored[3:]) == {"X"}, stored
    assert all(k in ("X", d) for k, d in zip(stored[:3], "150", strict=True)), stored
    assert call.digits_withheld == (len(card) > 13)  # what was keyed after the 16th digit
    assert not any(card[:12] in (e.call.number or "") for e in rig.log if hasattr(e, "call"))


@pytest.mark.parametrize(
    "dialled",
    [
        "00442079460123",  # 00, 44 and a London number without its 0
        "0044169773456",  # 0 and 9 at home: 00, 44 and 9 digits (one more may follow)
        "0012125550123",  # 00, 1 and ten digits
    ],
)
@pytest.mark.parametrize("length", sorted(CARDS_BY_LENGTH))
def test_an_international_number_of_a_known_length_keeps_its_digits_before_a_card(dialled, length):
    """An international number's country code may say how long it is: the review found
    the digits of 00 44 and 00 1 numbers past 00 and 7 masked with the card keyed on
    after them. Not one digit of the card is kept, and the number keeps all of its own."""
    _rig, call = keyed_after_dialling(dialled, CARDS_BY_LENGTH[length])
    stored = cards.scrub(call.number)
    assert stored == call.number == dialled + "X" * (len(stored) - len(dialled)), stored
    assert call.digits_withheld


@pytest.mark.parametrize(
    "number, country, shortest",
    [
        ("00442079460123", "uk", 14),
        ("00448001111", "uk", 11),  # 0800 1111 from abroad
        ("0012125550123", "uk", 13),
        ("00333982597919074", "uk", 9),  # a plan the box does not know: 00 and 7
        ("004402079460123", "uk", 9),  # 44 0 ...: no UK number, as dialled
        ("01144207946012", "us", 15),
        ("*6712125550123", "us", 14),  # the caller's number withheld first
        ("*672125550123", "us", 0),  # ... before a number whose start says nothing
        ("118", "uk", 6),  # a directory enquiry service: 118 and 3, told at its third key
        ("11", "uk", 0),  # not yet
        ("111", "uk", 3),
        ("1571", "uk", 0),  # a short code the box does not know: its start says nothing
        ("1471", "uk", 4),  # call return: a short code the plan fixes
        ("147", "uk", 0),  # not yet
        ("123", "uk", 3),  # the speaking clock
        ("4111111111111111", "us", 0),  # US 411 is no rule: a card alone may begin 411
    ],
)
def test_how_long_a_number_is_at_least(number, country, shortest):
    assert shortest_number(number, country) == shortest


@pytest.mark.parametrize(
    "number, keys",
    [
        ("00442079460123", "12345678"),
        ("0012125550123", "9876543210"),
        ("*6712125550123", "123"),
    ],
)
def test_menu_keys_after_an_international_number_of_a_known_length_leave_it_whole(number, keys):
    """Keys keyed on after 00 44 or 00 1 and a whole number (a voice menu answering before
    the box noticed): the review found the number's digits past 00 and 7 masked with them."""
    country = "us" if number.startswith("*") else "uk"
    dialled = number + keys
    assert cards.mask_dialled(dialled, shortest_number(dialled, country)).startswith(number)


@pytest.mark.parametrize("dialled", ["01632960999", "00333982597919074"])
def test_a_number_dialled_withholds_nothing(dialled):
    """Neither a UK number nor the longest international one (00 and 15 digits) has 13
    digits past its shortest length: nothing of it is masked."""

    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, dialled)
    s.handset(False, end + 8000)
    call = Rig().play(s, until_ms=end + 9000).only_call()
    assert (call.number, call.digits_withheld) == (dialled, False)


# Numbers dialled after a prefix that withholds or gives the caller's own number (none
# with a Luhn-valid run of 13 digits, which the call log's scrub would mask).
PREFIXED = [
    ("14101632960123", "uk"),  # 141: withheld
    ("147001632960123", "uk"),  # 1470: given
    ("141" + "00441632960999", "uk"),  # 141 before an international number
    ("#31#" + "01632960123", "uk"),  # GSM's, through a GSM gateway
    ("*67" + "12025550143", "us"),  # *67: withheld
    ("*82" + "12125550123", "us"),  # *82: given
    ("*67" + "2025550143", "us"),  # *67 before a number without its 1
    ("#31#" + "12025550143", "us"),
]


def tones_kept_dialling(dialled, country="uk", **config):
    """How many of ``dialled``'s keys, dialled alone, keep their tones (are not
    ``past_number``), and the call (``config``: more of the supervisor's)."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, dialled)
    s.handset(False, end + 8000)
    rig = Rig(country=country, **config).play(s, until_ms=end + 9000)
    past = [d.past_number for d in rig.of(DigitDialled)]
    kept = past.index(True) if True in past else len(past)
    assert past == [False] * kept + [True] * (len(past) - kept), past
    return kept, rig.only_call()


# A number whose start says nothing of its length and begins 2-6 keeps no tone (below).
@pytest.mark.parametrize("dialled, country", [p for p in PREFIXED if p != ("*672025550143", "us")])
def test_a_number_dialled_after_a_withholding_prefix_keeps_its_tones(dialled, country):
    """The longest number was judged with the prefix counted as the number's: the tones
    of its last digits were cut out of the recording as keys pressed after the number.
    The prefix adds its keys; no digit of the number is past it."""
    kept, call = tones_kept_dialling(dialled, country)
    assert (call.number, call.digits_withheld) == (dialled, False)
    assert kept == len(dialled)


@pytest.mark.parametrize(
    "number, country, keys",
    [
        ("14101632960123", "uk", 3),
        ("147001632960123", "uk", 4),
        ("1412", "uk", 0),  # no number's start after it: a number of its own
        ("141", "uk", 0),  # nothing yet after it
        ("01632960123", "uk", 0),
        ("*6712025550143", "us", 3),
        ("*822025550143", "us", 3),
        ("*67", "us", 0),
        ("#31#01632960123", "uk", 4),
        ("#31#12025550143", "us", 4),
        ("#31#", "uk", 0),
        ("*6701632960302", "uk", 0),  # no UK prefix
        ("14101632960123", "us", 0),  # nor a North American one
    ],
)
def test_the_prefix_withholding_the_callers_number(number, country, keys):
    assert dialling_prefix(number, country) == keys


@pytest.mark.parametrize("dialled, country", [p for p in PREFIXED if shortest_number(*p)])
def test_a_card_keyed_on_after_a_prefixed_number_is_masked_and_cut_out(dialled, country):
    """The number keeps its digits and tones; the card and its code after it are masked,
    withheld and cut out of the recording as after a number with no prefix."""
    assert not cards.has_card(dialled)
    rig, call = keyed_after_dialling(dialled, "4111111111111111", country=country)
    stored = cards.scrub(call.number)
    assert stored == call.number == dialled + "X" * (len(stored) - len(dialled)), stored
    assert call.digits_withheld
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * len(dialled) + [True] * (16 + 3)


# Numbers dialled on a PBX extension whose switchboard takes 9 for an outside line (the
# line's ``outside_line``), none with a Luhn-valid run of 13 digits.
OUTSIDE = [
    "9" + "01632960123",
    "9" + "14101632960123",  # 9, then the caller's number withheld
    "9" + "00441632960999",
    "9" + "07700900456",
]


@pytest.mark.parametrize(
    "number, outside, keys",
    [
        ("901632960123", "9", 1),
        ("914101632960123", "9", 4),  # before 141
        ("9", "9", 1),
        ("01632960123", "9", 0),  # dialled without it (a direct line on the switchboard)
        ("901632960123", "", 0),  # a line without it: a number of its own
        ("9001632960123", "90", 2),
    ],
)
def test_the_outside_line_digit_is_a_prefix_on_its_line(number, outside, keys):
    assert dialling_prefix(number, "uk", outside) == keys


def test_the_outside_line_digit_before_a_number_whose_start_says_nothing():
    assert shortest_number("901632960123", "uk", "9") == 12
    assert shortest_number("91571", "uk", "9") == 0  # a short code: as without the 9
    assert shortest_number("9123", "uk", "9") == 4  # one the plan fixes: the 9 adds its key
    assert shortest_number("9" + "*6712025550143", "us", "9") == 15


@pytest.mark.parametrize("dialled", OUTSIDE)
def test_a_number_dialled_after_the_outside_line_digit_keeps_its_tones(dialled):
    """Judged as dialled, the number's start said nothing of its length: the tones of its
    keys past the 11th were cut out of the recording as keys pressed after the number."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, dialled)
    s.handset(False, end + 8000)
    rig = Rig(outside_line={1: "9"}).play(s, until_ms=end + 9000)
    assert (rig.only_call().number, rig.only_call().digits_withheld) == (dialled, False)
    assert rig.only_call().outside_line == "9"
    assert [d.past_number for d in rig.of(DigitDialled)] == [False] * len(dialled)


def test_a_line_without_the_outside_line_digit_judges_the_number_as_dialled():
    """The other line of the box, and a box without the setting: as before."""
    s = LineScript(line=2)
    s.handset(True, 1000)
    end = s.dtmf(2500, OUTSIDE[0])
    s.handset(False, end + 8000)
    rig = Rig(lines=2, outside_line={1: "9"}).play(s, until_ms=end + 9000)
    assert rig.only_call().outside_line == ""
    assert [d.past_number for d in rig.of(DigitDialled)] == [False] * 11 + [True]


@pytest.mark.parametrize("dialled", OUTSIDE)
def test_a_card_keyed_on_after_a_number_on_an_outside_line_is_masked_from_its_first_digit(dialled):
    """The number keeps its digits and tones; the card and its code after it are masked,
    withheld and cut out of the recording as after a number dialled with no 9."""
    rig, call = keyed_after_dialling(dialled, "4111111111111111", outside_line={1: "9"})
    stored = stored_number(call, "uk")  # as the call log stores it
    assert stored == call.number == dialled + "X" * (len(stored) - len(dialled)), stored
    assert call.digits_withheld
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * len(dialled) + [True] * (16 + 3)


def test_a_luhn_valid_run_across_the_outside_line_digit_is_the_numbers():
    """9, 141 and a UK mobile number: a Luhn-valid run of 13 from 141's second key ends in
    the number. Judged as dialled (its start saying nothing), it was taken for a card and
    the number stored masked; on the line with the setting it is kept whole."""
    dialled = "9" + "14107945807302"
    assert cards.has_card(dialled)
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, dialled)
    s.reversal(end + 1500)
    s.handset(False, end + 10000)
    call = Rig(outside_line={1: "9"}).play(s, until_ms=end + 11000).only_call()
    assert call.number == stored_number(call, "uk") == dialled and not call.digits_withheld


def test_pulse_digits_after_connect_are_not_logged():
    s = LineScript()
    s.handset(True, 1000)
    end = s.pulse_dial(2000, "123")
    later = s.pulse_dial(end + 8000, "4929")
    s.handset(False, later + 5000)
    rig = Rig().play(s, until_ms=later + 6000)
    call = rig.only_call()
    assert (call.number, call.answered_us, call.ended_us) == ("123", us(end), us(later + 5000))
    assert "".join(d.digit for d in rig.of(DigitDialled)) == "123"


def test_off_hook_without_dialling_is_abandoned():
    s = LineScript()
    s.handset(True, 1000)
    s.handset(False, 4000)
    rig = Rig().play(s, until_ms=5000)
    call = rig.only_call()
    assert summary(call) == (1, "out", us(1000), None, us(4000), "abandoned", None, False)
    assert rig.states() == ["dialling", "idle"]


def test_hanging_up_right_after_dialling_keeps_the_number():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "123")
    s.handset(False, end + 2000)  # before dial_timeout_ms
    call = Rig().play(s, until_ms=end + 3000).only_call()
    assert (call.number, call.answered_us, call.end_reason) == ("123", us(end), "local")


def test_answer_reversal_connects_at_the_reversal():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "5551234")
    s.reversal(end + 1500)
    s.handset(False, end + 10000)
    call = Rig().play(s, until_ms=end + 11000).only_call()
    assert call.answered_us == us(end + 1500) and "answer_reversal" in call.notes


# ------------------------------------------------------------ remote clear


@pytest.mark.parametrize("hook_drops", [False, True])
def test_remote_clear_by_k_break(hook_drops):
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "0800123456")
    s.power(False, end + 10000)
    s.power(True, end + 10250)
    if hook_drops:  # no line voltage, no loop current: the hook input drops too
        s.handset(False, end + 10000)
        s.handset(True, end + 10250)
    s.handset(False, end + 14000)
    rig = Rig().play(s, until_ms=end + 15000)
    call = rig.only_call()
    assert summary(call)[2:6] == (us(1000), us(end), us(end + 10000), "remote_break")
    assert rig.states() == ["dialling", "connected", "cleared", "idle"]
    assert rig.of(LineStateChanged)[-1].t_us == us(end + 14000)
    assert rig.of(LineFault) == []


def test_a_power_blip_shorter_than_a_k_break_is_ignored():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "1")
    s.power(False, end + 6000)
    s.power(True, end + 6050)
    s.handset(False, end + 9000)
    call = Rig().play(s, until_ms=end + 10000).only_call()
    assert (call.end_reason, call.ended_us) == ("local", us(end + 9000))


@pytest.mark.parametrize("tone", ["busy", "unobtainable", "congestion"])
def test_remote_clear_by_clear_down_tone(tone):
    s = LineScript()
    s.ring(1000, "uk", 1)
    s.handset(True, 3000)
    s.dsp(Tone(us(20000), tone))
    s.handset(False, 23000)
    rig = Rig().play(s, until_ms=24000)
    call = rig.only_call()
    assert summary(call)[2:6] == (us(1000), us(3000), us(20000), "remote_tone")
    assert rig.states() == ["ringing", "connected", "cleared", "idle"]
    assert rig.sup.live_call(1) is None


def test_busy_before_connect_is_an_unanswered_remote_clear():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "0207946")
    s.dsp(Tone(us(end + 1000), "busy"))
    s.handset(False, end + 3000)
    call = Rig().play(s, until_ms=end + 4000).only_call()
    assert (call.answered_us, call.ended_us, call.end_reason) == (None, us(end + 1000), "remote_tone")


# ------------------------------------------------------------ faults


def test_no_line_voltage_fault_raised_and_cleared_ending_the_call():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "123")
    s.power(False, end + 5000)
    s.power(True, end + 12000)
    s.handset(False, end + 20000)
    rig = Rig().play(s, until_ms=end + 21000)
    faults = rig.of(LineFault)
    assert [(f.kind, f.active, f.t_us) for f in faults] == [
        ("no_line_voltage", True, us(end + 5000)),
        ("no_line_voltage", False, us(end + 12000)),
    ]
    calls = rig.calls()
    assert summary(calls[0])[3:6] == (us(end), us(end + 5000), "fault")
    # still off-hook when the line came back: that is a new (abandoned) off-hook
    assert summary(calls[1])[2:6] == (us(end + 12000), None, us(end + 20000), "abandoned")
    assert rig.states() == ["dialling", "connected", "fault", "idle", "dialling", "idle"]


def test_fault_state_and_faults_query_while_the_line_is_dead():
    s = LineScript()
    s.power(False, 1000)
    rig = Rig().play(s, until_ms=5000)
    assert rig.sup.state(1) == "fault" and rig.sup.faults(1) == {"no_line_voltage"}
    s2 = LineScript()
    s2.power(True, 6000)
    rig.play(s2, until_ms=7000)
    assert rig.sup.state(1) == "idle" and rig.sup.faults(1) == set()
    assert rig.calls() == []


def test_stuck_off_hook_fault_keeps_the_call():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2000, "42")
    s.handset(False, 70000)
    rig = Rig(stuck_off_hook_ms=60000)
    rig.play(s, until_ms=65000)
    assert rig.sup.faults(1) == {"stuck_off_hook"} and rig.sup.state(1) == "connected"
    assert rig.sup.is_off_hook(1)
    rig.play(LineScript(), until_ms=71000)
    assert [(f.kind, f.active, f.t_us) for f in rig.of(LineFault)] == [
        ("stuck_off_hook", True, us(1000)),
        ("stuck_off_hook", False, us(70000)),
    ]
    call = rig.only_call()
    assert (call.answered_us, call.ended_us, call.end_reason) == (us(end), us(70000), "local")
    assert rig.sup.faults(1) == set() and not rig.sup.is_off_hook(1)


def test_without_a_power_input_there_are_no_voltage_faults():
    rig = Rig(signals=MINIMAL)
    rig.play(LineScript(signals=MINIMAL), until_ms=10000)
    with pytest.raises(ValueError):
        rig.sup.on_edge(1, "power", False, rig.clock.now_us())
    assert rig.sup.faults(1) == set()


# ------------------------------------------------------------ a HAT with only hook, ring, polarity


def test_minimal_hat_inbound_outbound_and_pulse_dialling():
    s = LineScript(signals=MINIMAL, chatter=lambda: [2000, 5000])
    s.reversal(1000)
    s.ring(2000, "uk", 1)
    s.handset(True, 4000)
    s.handset(False, 10000)
    s.reversal(10000, reversed_=False)
    s.handset(True, 20000)
    end = s.pulse_dial(21000, "907")
    s.handset(False, end + 8000)
    rig = Rig(signals=MINIMAL).play(s, until_ms=end + 9000)
    a, b = rig.calls()
    assert summary(a) == (1, "in", us(1000), us(4000), us(10000), "local", None, False)
    assert summary(b) == (1, "out", us(20000), us(end), us(end + 8000), "local", "907", False)


# ------------------------------------------------------------ bounce


def day(script, country="uk"):
    """Several calls of every kind on one line; returns the true calls."""
    s = script
    truth = []
    # inbound, UK caller-ID phase, answered by our handset
    s.reversal(1000)
    s.ring(2000, country, 2)
    s.handset(True, 8000)
    s.handset(False, 20000)
    s.reversal(20000, reversed_=False)
    truth.append(("in", 1000, 8000, 20000, "local", None, False))
    # outbound, pulse dialled
    s.handset(True, 30000)
    end = s.pulse_dial(31000, "0123456789")
    s.handset(False, end + 15000)
    truth.append(("out", 30000, end, end + 15000, "local", "0123456789", False))
    # missed
    t = end + 20000
    bursts = s.ring(t, country, 2)
    truth.append(("in", t, None, bursts[-1][1], "missed", None, False))
    # extension answers, then K-break
    t = bursts[-1][1] + 10000
    s.ring(t, country, 1)
    s.handset(True, t + 2000, extension=True)
    s.power(False, t + 9000)
    s.power(True, t + 9200)
    s.handset(False, t + 12000, extension=True)
    truth.append(("in", t, t + 2000, t + 9000, "remote_break", None, True))
    # off-hook, give up
    s.handset(True, t + 20000)
    s.handset(False, t + 23000)
    truth.append(("out", t + 20000, None, t + 23000, "abandoned", None, False))
    return truth, t + 25000


def as_truth(call):
    return (
        call.direction,
        call.started_us,
        call.answered_us,
        call.ended_us,
        call.end_reason,
        call.number,
        call.extension,
    )


def truth_us(row):
    d, start, ans, end, reason, number, ext = row
    return (d, us(start), None if ans is None else us(ans), us(end), reason, number, ext)


@settings(max_examples=25, deadline=None)
@given(rnd=st.randoms(use_true_random=False), bounce_ms=st.integers(0, 8))
def test_contact_bounce_never_creates_or_splits_calls(rnd, bounce_ms):
    def chatter():
        if not bounce_ms:
            return []
        n = rnd.choice((0, 2, 4, 6))
        return sorted(rnd.sample(range(1, bounce_ms * 1000 + 1), n))

    s = LineScript(chatter=chatter)
    truth, until = day(s)
    rig = Rig().play(s, until_ms=until)
    # first edges are the true ones: every time is exact
    assert [as_truth(c) for c in rig.calls()] == [truth_us(r) for r in truth]
    assert rig.of(LineFault) == []


def test_bounce_on_every_edge_matches_the_clean_run_us_cadence():
    clean, bouncy = LineScript(), LineScript(chatter=lambda: [1000, 2500, 4000, 8000])
    truth, until = day(clean, "us")
    day(bouncy, "us")
    a = Rig(country="us").play(clean, until_ms=until)
    b = Rig(country="us").play(bouncy, until_ms=until)
    assert [as_truth(c) for c in a.calls()] == [as_truth(c) for c in b.calls()]
    assert [as_truth(c) for c in a.calls()] == [truth_us(r) for r in truth]


def test_times_within_tolerance_when_the_ring_detector_runs_late():
    # ring pulses at 25 Hz but the detector output lags; the call still starts
    # within 50 ms of the first ring.
    s = LineScript()
    s.ring_burst(1020, 380, 25)
    s.ring_burst(1600, 400, 25)
    s.handset(True, 3000)
    s.handset(False, 5000)
    call = Rig().play(s, until_ms=6000).only_call()
    assert near(call.started_us, 1000) and near(call.answered_us, 3000) and near(call.ended_us, 5000)


# ------------------------------------------------------------ plumbing


def test_the_dsp_is_told_about_off_hook_but_not_dial_pulses():
    s = LineScript()
    s.handset(True, 1000)
    end = s.pulse_dial(2000, "55")
    s.handset(False, end + 6000)
    rig = Rig().play(s, until_ms=end + 7000)
    assert [(line, off) for _, line, off in rig.hook_changes] == [(1, True), (1, False)]


def test_lines_are_independent():
    a, b = LineScript(line=1), LineScript(line=2)
    a.ring(1000, "uk", 1)
    b.handset(True, 1500)
    b.dtmf(2000, "7")
    a.handset(True, 2500)
    a.handset(False, 6000)
    b.handset(False, 9000)
    rig = Rig(lines=2).play(a, b, until_ms=10000)
    (ca,), (cb,) = rig.calls(1), rig.calls(2)
    assert (ca.direction, ca.answered_us) == ("in", us(2500))
    assert (cb.direction, cb.number) == ("out", "7")


def test_caller_id_error_is_noted_and_unknown_dsp_events_ignored():
    class Mystery:
        t_us = 0

    s = LineScript()
    s.reversal(1000)
    s.dsp(CallerIdError(us(1300), "checksum"))
    s.ring(2000, "uk", 1)
    s.events.append((us(2100), Mystery()))
    call = Rig().play(s, until_ms=10000).only_call()
    assert call.notes == ["caller_id_error:checksum"] and call.number is None


def test_dsp_events_are_matched_by_attributes_too():
    class Digit:  # another class name, same attributes
        def __init__(self, t_us, digit, end_us):
            self.t_us, self.digit, self.end_us = t_us, digit, end_us

    s = LineScript()
    s.handset(True, 1000)
    s.events.append((us(2100), Digit(us(2000), "9", us(2070))))
    s.handset(False, 8000)
    assert Rig().play(s, until_ms=9000).only_call().number == "9"


def test_states_are_the_documented_ones():
    assert STATES == ("idle", "alerting", "ringing", "dialling", "connected", "cleared", "fault")


@pytest.mark.parametrize(
    "field,value",
    [
        ("country", "fr"),
        ("debounce_ms", -1),
        ("debounce_ms", 200),
        ("ring_gap_ms", 0),
        ("dial_timeout_ms", 100),
        ("kbreak_min_ms", 5000),
        ("stuck_off_hook_ms", 1.5),
        ("cid_wait_ms", True),
    ],
)
def test_bad_config_is_rejected_naming_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        SupervisorConfig(**{field: value})
    assert info.value.field == field


def test_ring_timeout_follows_the_country():
    assert SupervisorConfig(country="uk").ring_timeout_ms == 3500
    assert SupervisorConfig(country="us").ring_timeout_ms == 5500
    assert SupervisorConfig(country="us", ring_timeout_ms=7000).ring_timeout_ms == 7000


def test_bad_signals_lines_and_edges_are_refused():
    bus = EventBus(strict=True)
    with pytest.raises(ConfigError):
        Supervisor(1, SimClock(), bus, signals={"hook", "ring"})
    with pytest.raises(ConfigError):
        Supervisor(1, SimClock(), bus, signals=ALL | {"smoke"})
    with pytest.raises(ValueError):
        Supervisor(0, SimClock(), bus)
    sup = Supervisor(2, SimClock(), bus)
    with pytest.raises(ValueError):
        sup.on_edge(3, "hook", True, 0)
    with pytest.raises(ValueError):
        sup.state(0)


def test_close_cancels_timers_and_ignores_later_edges():
    rig = Rig()
    rig.sup.on_edge(1, "hook", True, 0)
    rig.sup.close()
    rig.sup.close()
    assert rig.clock.next_timer_us() is None
    rig.sup.on_edge(1, "hook", False, 10)
    rig.clock.run_until(10_000_000)
    assert rig.log == []


def test_bus_handlers_may_call_back_into_the_supervisor():
    rig = Rig()
    seen = []
    rig.bus.subscribe(LineStateChanged, lambda ev: seen.append(rig.sup.state(ev.line)))
    s = LineScript()
    s.handset(True, 1000)
    s.handset(False, 2000)
    rig.play(s, until_ms=3000)
    assert seen == ["dialling", "idle"]


def test_real_clock_and_threads():
    clock = RealClock()
    bus = EventBus(strict=True)
    ended = threading.Event()
    events = []
    bus.subscribe(Event, events.append)
    bus.subscribe(CallEnded, lambda ev: ended.set())
    sup = Supervisor(1, clock, bus, SupervisorConfig(debounce_ms=2, pulse_break_max_ms=20))
    try:
        t0 = clock.now_us()
        sup.on_edge(1, "hook", True, t0)
        t1 = t0 + 50_000
        # the hang-up is reported from another thread, as the GPIO callback would
        threading.Timer(0.05, sup.on_edge, (1, "hook", False, t1)).start()
        assert ended.wait(5)
    finally:
        sup.close()
        clock.close()
    call = [e for e in events if isinstance(e, CallEnded)][0].call
    assert (call.started_us, call.ended_us, call.end_reason) == (t0, t1, "abandoned")
    assert [type(e).__name__ for e in events] == [
        "CallStarted",
        "LineStateChanged",
        "CallEnded",
        "LineStateChanged",
    ]


# ------------------------------------------------------------ decisions near a threshold


@pytest.mark.parametrize("break_ms,number,calls", [(140, "21", 1), (170, "2", 2)])
def test_a_long_break_is_a_pulse_up_to_pulse_break_max_ms(break_ms, number, calls):
    # A break's make is confirmed after the on-hook deadline has passed: the
    # supervisor must wait for it instead of declaring an on-hook.
    s = LineScript(chatter=lambda: [2000, 8000])
    s.handset(True, 1000)
    end = s.pulse_dial(2000, "2")
    s.handset(False, end + 1000)
    s.handset(True, end + 1000 + break_ms)
    s.handset(False, end + 10000)
    rig = Rig().play(s, until_ms=end + 11000)
    assert len(rig.calls()) == calls
    assert rig.calls()[0].number == number


def test_pick_up_just_before_the_ring_timeout_answers():
    s = LineScript(chatter=lambda: [3000, 8000])
    bursts = s.ring(1000, "uk", 1)
    pick_up = bursts[-1][1] + 3490  # ring_timeout_ms is 3500
    s.handset(True, pick_up)
    s.handset(False, pick_up + 5000)
    call = Rig().play(s, until_ms=pick_up + 6000).only_call()
    assert (call.answered_us, call.end_reason) == (us(pick_up), "local")


def test_pick_up_just_after_the_ring_timeout_is_a_new_call():
    s = LineScript()
    bursts = s.ring(1000, "uk", 1)
    pick_up = bursts[-1][1] + 3510
    s.handset(True, pick_up)
    s.handset(False, pick_up + 5000)
    missed, out = Rig().play(s, until_ms=pick_up + 6000).calls()
    assert missed.end_reason == "missed" and out.direction == "out"


def test_alert_tone_or_caller_id_first_starts_the_call():
    s = LineScript(signals=MINIMAL)
    s.dsp(AlertTone(us(1000)))
    s.dsp(CallerId(us(1200), "v23", number="01632960999"))
    s.ring(2000, "uk", 1)
    s.handset(True, 4000)
    s.handset(False, 6000)
    call = Rig(signals=MINIMAL).play(s, until_ms=7000).only_call()
    assert (call.started_us, call.number) == (us(1000), "01632960999")


def test_dial_timeout_waits_for_a_digit_that_began_before_it():
    # The next digit's first break comes 10 ms before the dial timeout; its
    # confirmation after it. It is still part of the number.
    s = LineScript(chatter=lambda: [2000, 8000])
    s.handset(True, 1000)
    end = s.pulse_dial(2000, "1")
    end2 = s.pulse_dial(end + 3990, "3")
    s.handset(False, end2 + 6000)
    call = Rig(dial_timeout_ms=4000).play(s, until_ms=end2 + 7000).only_call()
    assert (call.number, call.answered_us) == ("13", us(end2))


@pytest.mark.parametrize("mode", ["pulse", "dtmf"])
def test_answer_reversal_as_dialling_ends_keeps_the_last_digit(mode):
    # The exchange reverses the polarity the moment the last digit ends: the
    # reversal is confirmed before the last make (pulse) or before the DSP
    # reports the last digit (DTMF).
    s = LineScript(chatter=lambda: [3000, 7000])
    s.handset(True, 1000)
    end = s.pulse_dial(2000, "47") if mode == "pulse" else s.dtmf(2000, "47")
    s.reversal(end)
    s.dtmf(end + 3000, "1234")  # in the call: not logged
    s.handset(False, end + 10000)
    s.reversal(end + 10000, reversed_=False)
    rig = Rig().play(s, until_ms=end + 11000)
    call = rig.only_call()
    assert (call.number, call.answered_us, call.dial_method) == ("47", us(end), mode)
    assert "".join(d.digit for d in rig.of(DigitDialled)) == "47"


def test_sync_takes_the_levels_a_line_has_at_start_up():
    rig = Rig(lines=2)
    levels = {(1, "power"): False, (2, "hook"): True, (2, "in_use"): True, (2, "power"): True}
    rig.clock.run_until(us(100))
    rig.sup.sync(lambda line, signal: levels.get((line, signal), False))
    rig.play(LineScript(), until_ms=5000)
    assert rig.sup.state(1) == "fault"
    assert [(f.line, f.t_us) for f in rig.of(LineFault)] == [(1, us(100))]
    # Off-hook at start-up: a call already under way (the power came back mid-call), taken
    # as connected then, so that the rest of it is recorded; it was taken for a call being
    # dialled, never answered, and never recorded.
    call = rig.sup.live_call(2)
    assert rig.sup.state(2) == "connected" and (call.started_us, call.answered_us) == (us(100), us(100))
    assert call.notes == ["in_progress_at_start"] and call.number is None
    assert [type(e).__name__ for e in rig.of((CallStarted, CallAnswered))] == ["CallStarted", "CallAnswered"]


def test_keys_typed_in_a_connected_call_go_to_on_key_only():
    """The PCI pause code (and card digits) reach the policy, never the bus or the call."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "02079460000")
    s.dtmf(end + 10000, "*1")
    s.dtmf(end + 12000, "4111")
    s.handset(False, end + 20000)
    rig = Rig()
    keys = []
    rig.sup.on_key = lambda line, digit, t_us, end_us: keys.append((line, digit, t_us))
    rig.play(s, until_ms=end + 21000)
    assert [(line, digit) for line, digit, _ in keys] == [(1, d) for d in "*14111"]
    assert keys[0][2] == us(end + 10000)
    assert "".join(d.digit for d in rig.of(DigitDialled)) == "02079460000"
    assert rig.only_call().number == "02079460000"
    assert not any("4111" in repr(ev) or "*1" in repr(ev) for ev in rig.log)


def test_buttons_are_not_line_inputs():
    rig = Rig(signals=ALL)
    assert "record_button" not in rig.sup.signals and "pause_button" not in rig.sup.signals
    with pytest.raises(ValueError, match="not an input this HAT wires"):
        rig.sup.on_edge(1, "pause_button", True, 0)


@pytest.mark.parametrize("after_ms", [500, 1000, 2000, 3000])
def test_a_code_keyed_while_dialling_ends_the_dialling(after_ms):
    """Issue 20: ``*1`` keyed before the dial timeout is the caller's, not the number's;
    the card number after it never joins the number either."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "01632960302")
    code_end = s.dtmf(end + after_ms, "*1")
    s.dtmf(code_end + 1500, "5500005555555559")
    s.handset(False, end + 20000)
    rig = Rig()
    rig.sup.key_codes = lambda: ("*1", "*2", "*9")
    keys = []
    rig.sup.on_key = lambda line, digit, t_us, end_us: keys.append((digit, t_us, end_us))
    rig.play(s, until_ms=end + 21000)
    call = rig.only_call()
    assert call.number == "01632960302"
    # Where the code began - or, after a gap the dialling's pace says ends it, where the
    # last digit ended.
    assert call.answered_us == (us(end + after_ms) if after_ms < 1500 else us(end))
    assert "".join(d for d, _, _ in keys) == "*15500005555555559"
    assert keys[1][2] == us(code_end)  # the code's end is passed on
    assert "".join(d.digit for d in rig.of(DigitDialled)) == "01632960302"
    assert not any("5500005555555559" in repr(ev) for ev in rig.log)


def test_keys_that_are_not_a_code_are_dialled():
    """A held ``*`` that turns out not to start a code is a dialled digit after all."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "*67")
    end = s.dtmf(end + 200, "01632960302*")
    s.handset(False, end + 6000)
    rig = Rig()
    rig.sup.key_codes = lambda: ("*1", "*2")
    keys = rig.keys
    rig.play(s, until_ms=end + 7000)
    # A '*' still held when the dial timeout connects the call was the caller's.
    assert rig.only_call().number == "*6701632960302"
    assert keys == ["*"]


def test_a_code_before_any_number_is_dialled():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "*1")
    end = s.dtmf(end + 300, "123")
    s.handset(False, end + 6000)
    rig = Rig()
    rig.sup.key_codes = lambda: ("*1",)
    rig.play(s, until_ms=end + 7000)
    assert rig.only_call().number == "*1123"


def test_voice_after_dialling_is_the_answer():
    """A voice menu answering 0.5 s after the last digit: connected there, and the
    menu choice keyed after it is a key, not a dialled digit."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "01632960302")
    s.dsp(Speech(us(end + 500)), deliver_us=us(end + 1200))
    s.dtmf(end + 3000, "1")
    s.handset(False, end + 20000)
    rig = Rig()
    keys = rig.keys
    rig.play(s, until_ms=end + 21000)
    call = rig.only_call()
    assert (call.number, call.answered_us) == ("01632960302", us(end + 500))
    assert keys == ["1"] and "answer_speech" in call.notes


def test_an_assumed_answer_silence_cleared_and_resumed_still_waits_for_the_far_end():
    """Answered by the dial timeout, then silent past the silence clear (no ringback on
    the line while the far end is rung): the sound that reopens the call, and the far
    end's voice after it, confirm it. The reopened call lost its assumed answer, and no
    sign of the far end was ever published: its notice was never given, nor the call
    recorded."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "07700900123")
    s.dsp(Quiet(us(end)), deliver_us=us(end + 500))
    s.dsp(Sound(us(end + 30000)), deliver_us=us(end + 30500))  # the far end's "Hello?"
    s.dsp(Speech(us(end + 30000)), deliver_us=us(end + 30600))
    s.handset(False, end + 60000)
    rig = Rig(silence_clear_ms=20000)
    rig.play(s, until_ms=end + 61000)
    call = rig.only_call()
    assert [ev.assumed for ev in rig.of(CallAnswered)] == [True]
    assert rig.states() == ["dialling", "connected", "cleared", "connected", "idle"]
    assert [ev.t_us for ev in rig.of(CallAnswerConfirmed)] == [us(end + 30000)]
    assert call.end_reason == "local"


def _rung(s):
    """Off-hook, a UK number dialled and ringback heard; returns the last digit's end (ms)."""
    s.handset(True, 1000)
    end = s.dtmf(2500, "01632960302")
    s.dsp(Tone(us(end + 300), "ringback"), deliver_us=us(end + 700))
    return end


def test_a_provisional_answer_withdrawn_is_ringing_again():
    """A voice in a ringback gap connects the call at once (provisional); the next burst
    on time takes it back: no answer time, back to dialling, the withdrawal published -
    and the real answer later is dated as ever, the number untouched."""
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.dsp(AnswerWithdrawn(us(end + 3300)), deliver_us=us(end + 3800))
    s.dsp(Speech(us(end + 4600), provisional=True), deliver_us=us(end + 5100))
    s.dsp(RingbackStopped(us(end + 3700)), deliver_us=us(end + 6500))  # confirmed
    s.dtmf(end + 8000, "1")
    s.handset(False, end + 20000)
    rig = Rig()
    keys = rig.keys
    rig.play(s, until_ms=end + 21000)
    call = rig.only_call()
    assert (call.number, call.answered_us, call.end_reason) == ("01632960302", us(end + 4600), "local")
    assert rig.states() == ["dialling", "connected", "dialling", "connected", "idle"]
    assert [ev.t_us for ev in rig.of(CallAnswerWithdrawn)] == [us(end + 3300)]
    assert [ev.t_us for ev in rig.of(CallAnswerConfirmed)] == [us(end + 3700)]
    assert [ev.provisional for ev in rig.of(CallAnswered)] == [True, True]
    assert call.notes == ["ringback", "answer_withdrawn", "answer_speech"] and keys == ["1"]


def test_hanging_up_on_a_provisional_answer_abandons_the_call():
    """The caller's voice in the last gap, then the caller hangs up before the next burst
    was due: judged as before the provisional answer - a ringing call given up."""
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.handset(False, end + 2500)
    rig = Rig().play(s, until_ms=end + 4000)
    call = rig.only_call()
    assert call.answered_us is None and call.end_reason == "abandoned", call
    assert rig.states() == ["dialling", "connected", "idle"]
    assert len(rig.of(CallAnswerWithdrawn)) == 1 and "answer_withdrawn" in call.notes
    assert rig.of(CallEnded)[0].t_us == us(end + 2500)


def test_a_reversal_after_a_provisional_answer_is_the_answer():
    """The caller spoke in a gap, the far end answered 1 s later with a reversal: the
    reversal is the answer (not the far end clearing), the voice's answer withdrawn."""
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.reversal(end + 2500)
    s.handset(False, end + 9000)
    rig = Rig().play(s, until_ms=end + 10000)
    call = rig.only_call()
    assert (call.answered_us, call.end_reason) == (us(end + 2500), "local")
    assert "answer_reversal" in call.notes and "answer_speech" not in call.notes
    assert rig.states() == ["dialling", "connected", "dialling", "connected", "idle"]


def test_a_key_confirms_a_provisional_answer():
    """Nobody keys into ringback: a key after the voice makes the answer stand (a burst
    reported later does not take it back) and goes to the policy as a key."""
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.dtmf(end + 2200, "*1")
    s.dsp(AnswerWithdrawn(us(end + 3300)), deliver_us=us(end + 3800))
    s.handset(False, end + 9000)
    rig = Rig()
    keys = rig.keys
    rig.play(s, until_ms=end + 10000)
    call = rig.only_call()
    assert (call.number, call.answered_us) == ("01632960302", us(end + 1500))
    assert keys == ["*", "1"] and rig.of(CallAnswerWithdrawn) == []
    assert len(rig.of(CallAnswerConfirmed)) == 1


def test_a_clear_down_tone_after_a_provisional_answer_ends_an_unanswered_call():
    """The caller spoke in a gap, then the far end refused the call (busy): never answered."""
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.dsp(Tone(us(end + 3300), "busy"), deliver_us=us(end + 5000))
    s.handset(False, end + 9000)
    rig = Rig().play(s, until_ms=end + 10000)
    call = rig.only_call()
    assert (call.answered_us, call.end_reason) == (None, "remote_tone")
    assert len(rig.of(CallAnswerWithdrawn)) == 1 and rig.of(CallAnswerConfirmed) == []


def test_a_key_begun_before_a_provisional_voice_is_never_a_digit():
    """A key in the ringback gap reported after a voice that came later in it: the far
    end had answered by the key (nobody keys into ringback), so it is a key, not a digit."""
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.dsp(DtmfDigit(us(end + 1300), "4", us(end + 1370)), deliver_us=us(end + 2100))
    s.handset(False, end + 9000)
    rig = Rig()
    keys = rig.keys
    rig.play(s, until_ms=end + 10000)
    call = rig.only_call()
    assert (call.number, call.answered_us, keys) == ("01632960302", us(end + 1300), ["4"])
    assert "answer_key" in call.notes and len(rig.of(CallAnswerConfirmed)) == 1


def test_a_burst_cut_after_the_voice_dates_the_answer_at_the_cut():
    s = LineScript()
    end = _rung(s)
    s.dsp(Speech(us(end + 1500), provisional=True), deliver_us=us(end + 2000))
    s.dsp(RingbackStopped(us(end + 1400), cut=True), deliver_us=us(end + 2100))
    s.handset(False, end + 9000)
    rig = Rig().play(s, until_ms=end + 10000)
    call = rig.only_call()
    assert call.answered_us == us(end + 1400) and "answer_ringback_end" in call.notes
    assert "answer_speech" not in call.notes and len(rig.of(CallAnswerConfirmed)) == 1


def test_ringback_cut_by_our_hang_up_is_not_an_answer():
    """The caller hangs up during a burst: the tone stops with the loop, and the DSP's
    "burst cut" (dated a moment after the break, told 130 ms later) reaches the supervisor
    while the break is still being judged (an on-hook or a dial pulse: 150 ms). It was
    taken for a silent answer, the call logged answered at its own end (`linekeeper sim`,
    an outbound "answer": false with ringback hung up 0.7 s into a UK cadence)."""
    s = LineScript()
    end = _rung(s)
    s.handset(False, end + 10000)
    s.dsp(RingbackStopped(us(end + 10002), cut=True), deliver_us=us(end + 10130))
    rig = Rig().play(s, until_ms=end + 11000)
    call = rig.only_call()
    assert (call.answered_us, call.end_reason) == (None, "abandoned"), call
    assert call.ended_us == us(end + 10000) and not rig.of(CallAnswered)


def test_voice_before_any_digit_is_not_an_answer():
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Speech(us(1500)), deliver_us=us(2000))
    end = s.dtmf(2500, "123")
    s.handset(False, end + 6000)
    rig = Rig().play(s, until_ms=end + 7000)
    call = rig.only_call()
    assert (call.number, call.answered_us) == ("123", us(end))


def test_a_call_that_rings_out_is_never_answered():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "01632960302")
    s.dsp(Tone(us(end + 300), "ringback"), deliver_us=us(end + 2000))
    s.handset(False, end + 15000)
    rig = Rig().play(s, until_ms=end + 16000)
    call = rig.only_call()
    assert call.answered_us is None and call.end_reason == "abandoned"
    assert call.number == "01632960302"


def test_a_long_gap_after_a_complete_number_ends_the_dialling():
    """Issue 20: a card number keyed 2 s after a complete number, no code, no voice:
    the dialling's own pace says it had ended; the card is keys, not digits."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "01632960302")
    s.dtmf(end + 2000, "4111111111111111")
    s.handset(False, end + 20000)
    rig = Rig()
    keys = rig.keys
    rig.play(s, until_ms=end + 21000)
    call = rig.only_call()
    assert (call.number, call.answered_us) == ("01632960302", us(end))
    assert "".join(keys) == "4111111111111111" and "answer_timing" in call.notes


def test_menu_keys_after_a_number_withheld_by_star_67_leave_it_whole():
    """A North American number without its 1 says nothing of its length: keys keyed on
    after it are kept up to 15 digits in all. *67 before it was counted in them, so four
    menu keys masked the number, the prefix with it ("*XXXXXXXXXXXXXXXX")."""
    _rig, call = keyed_after_dialling("*67" + "2025550143", "1234", code="", country="us")
    assert (call.number, call.digits_withheld) == ("*67" + "2025550143" + "1234", False)


def test_a_card_keyed_after_a_star_that_reads_as_star_67_is_found():
    """A Maestro card (67...) keyed after a * reads as *67 and a number. Its Luhn-valid run
    begins in the prefix's digits: a card all the same, its code withheld (not dialled
    into the number, X on the bus), the prefix's digits kept, as the prefix's are."""
    card = "675994580730214"
    assert cards.luhn_ok(card)
    rig, call = keyed_after_dialling("*", card, country="us")
    assert call.number[:3] == "*67" and set(call.number[3:]) == {"X"} and call.digits_withheld
    assert "".join(d.digit for d in rig.of(DigitDialled))[-3:] == "XXX"


@pytest.mark.parametrize("dialled, country", PREFIXED)
def test_a_long_gap_after_a_complete_prefixed_number_ends_the_dialling(dialled, country):
    """A number dialled after 141 (*67...) was never complete by its start: a card keyed
    2 s after it was more of the number. The prefix is not the number's start."""
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, dialled)
    s.dtmf(end + 2000, "4111111111111111")
    s.handset(False, end + 20000)
    rig = Rig(country=country)
    keys = rig.keys
    rig.play(s, until_ms=end + 21000)
    call = rig.only_call()
    assert (call.number, call.answered_us) == (dialled, us(end))
    assert "".join(keys) == "4111111111111111" and "answer_timing" in call.notes


def test_a_pause_inside_an_incomplete_number_is_still_dialling():
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "01632")
    end = s.dtmf(end + 3000, "960302")
    s.handset(False, end + 6000)
    rig = Rig().play(s, until_ms=end + 7000)
    assert rig.only_call().number == "01632960302"


def test_the_live_view_shows_no_digit_of_a_card_being_keyed_on():
    """Until its last digit a card keyed straight on after the number is more of the number:
    the review found the live view (the dashboard) showing its first digits as they were
    keyed. While the call is dialled, the view masks from where a card may begin."""
    rig = Rig()
    status = LineStatus(1, rig.clock)
    status.attach(rig.bus)
    shown = []
    rig.bus.subscribe(CallUpdated, lambda ev: shown.append(status.snapshot()["lines"][0]["call"]["number"]))
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Tone(us(1100), "dial"))
    end = s.dtmf(2500, "01632960999")
    end = s.dtmf(end + 300, CARDS_BY_LENGTH[16])
    s.handset(False, end + 8000)
    rig.play(s, until_ms=end + 9000)
    shown = [number for number in shown if number]
    assert "01632960999" in shown  # the number, as it is dialled
    for number in shown:
        assert number.startswith("01632960999"[: len(number)]), number
        assert set(number[11:]) <= {"X"}, number


def test_the_live_view_shows_a_number_dialled_after_the_outside_line_digit():
    """Judged as dialled, the view masked the number from its first 2-6 (901XXXXXXXXX)
    while it was dialled; on the line with the setting it shows the number, and masks a
    card keyed on after it from the card's first digit."""
    rig = Rig(outside_line={1: "9"})
    status = LineStatus(1, rig.clock)
    status.attach(rig.bus)
    shown = []
    rig.bus.subscribe(CallUpdated, lambda ev: shown.append(status.snapshot()["lines"][0]["call"]["number"]))
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Tone(us(1100), "dial"))
    end = s.dtmf(2500, "901632960999")
    end = s.dtmf(end + 300, CARDS_BY_LENGTH[16])
    s.handset(False, end + 8000)
    rig.play(s, until_ms=end + 9000)
    shown = [number for number in shown if number]
    assert "901632960999" in shown
    for number in shown:
        assert number.startswith("901632960999"[: len(number)]), number
        assert set(number[12:]) <= {"X"}, number


def test_the_live_view_shows_the_prefix_withholding_the_callers_number():
    """*67 before a number whose start says nothing: the view masked from its 6."""
    rig = Rig(country="us")
    status = LineStatus(1, rig.clock, lambda: "us")
    status.attach(rig.bus)
    shown = []
    rig.bus.subscribe(CallUpdated, lambda ev: shown.append(status.snapshot()["lines"][0]["call"]["number"]))
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, "*67" + "8005550100")
    s.handset(False, end + 8000)
    rig.play(s, until_ms=end + 9000)
    # Once a digit after it shows it is a prefix (*6 may begin a card: masked till then),
    # the number is masked from its first 2-6, as without it.
    later = [n for n in shown if n and len(n) > 3]
    assert later[:4] == ["*678", "*6780", "*67800", "*67800X"], shown
    assert all(n == "*67800" + "X" * (len(n) - 6) for n in later[2:]), shown


@pytest.mark.parametrize(
    "dialled, country",
    [
        ("14107945807302", "uk"),  # 141 and a UK mobile number
        ("*6712125550123", "us"),  # *67, 1 and a US number
    ],
)
def test_the_live_view_shows_a_number_dialled_after_a_prefix_whole(dialled, country):
    """Once the dialling was over the view ran the general card check on the number: a
    run of 13 from the prefix's second key passing the Luhn check was taken for a card,
    and the connected call showed as "1XXXXXXXXXXXXX" ("*XXXXXXXXXXXXX")."""
    rig = Rig(country=country)
    status = LineStatus(1, rig.clock, lambda: country)
    status.attach(rig.bus)
    shown = []
    rig.bus.subscribe(CallAnswered, lambda ev: shown.append(status.snapshot()["lines"][0]["call"]["number"]))
    s = LineScript()
    s.handset(True, 1000)
    end = s.dtmf(2500, dialled)
    s.reversal(end + 1500)
    s.handset(False, end + 10000)
    rig.play(s, until_ms=end + 11000)
    assert rig.only_call().number == dialled
    assert shown == [dialled]


def test_the_live_view_shows_no_digit_of_a_card_keyed_with_its_first_digit_slipped():
    """A card keyed with its first digit slipped (5 as 7) is masked in the log from the
    number's shortest length: the review found the live view showing its first digits
    until a 2-6 was keyed. The view masks every digit past that length while dialled."""
    rig = Rig()
    status = LineStatus(1, rig.clock)
    status.attach(rig.bus)
    shown = []
    rig.bus.subscribe(CallUpdated, lambda ev: shown.append(status.snapshot()["lines"][0]["call"]["number"]))
    s = LineScript()
    s.handset(True, 1000)
    s.dsp(Tone(us(1100), "dial"))
    end = s.dtmf(2500, "01632960999")
    end = s.dtmf(end + 300, "7928580788854064")
    s.handset(False, end + 8000)
    rig.play(s, until_ms=end + 9000)
    shown = [number for number in shown if number]
    assert "01632960999" in shown
    for number in shown:
        assert number.startswith("01632960999"[: len(number)]), number
        assert set(number[11:]) <= {"X"}, number


@pytest.mark.parametrize(
    "dialled, outside, kept",
    [
        ("0800123456", "", 10),  # 0800 and 6: its 11th key may be a card's first
        ("0169771234", "", 10),  # Brampton: 0 and 9 (a four-digit local number) or 10
        ("01697712345", "", 10),  # ... so its 0 and 10 lose their last tone, as under 0800
        ("01524212345", "", 11),  # Hornby's numbers are all 0 and 10 (five-digit ones)
        ("01946712345", "", 11),  # ... and Seascale's: every tone of the number is kept
        ("01632960999", "", 11),
        ("999", "", 3),  # an emergency number is whole at 3
        ("9" + "999", "9", 4),  # the outside-line 9 before it
        ("112", "", 3),
        ("18000", "", 5),  # 999 through Relay UK (a textphone's) is whole at 5
        ("14101632960123", "", 14),  # a prefix adds its keys
        ("0033398259", "", 9),  # abroad, a plan the box does not know: 00 and 7 at least
        ("118118", "", 6),  # a directory enquiry service is whole at 118 and 3 digits
        ("116123", "", 6),  # ... so is a European helpline, 116 and 3
        ("101", "", 3),  # a service number of 3
        ("9" + "118118", "9", 7),  # the outside-line 9 before it
        ("1471", "", 4),  # call return is whole at 4
        ("123", "", 3),  # the speaking clock at 3
    ],
)
def test_a_card_keyed_on_after_a_number_has_none_of_its_tones_kept(dialled, outside, kept):
    """The review found the card's first digit in the recording after an 0800 number of 0
    and 10 digits (taken for the number's 11th), and 8 of its digits after 9 999 on a line
    with the outside-line 9 (999's start saying nothing, keys were cut past the 12th);
    and after 1471 or 123, short codes taken for unknown ones, the tones of 11 keys (the
    card's first seven or eight), the call log losing the short code with the card."""
    config = {"outside_line": {1: outside}} if outside else {}
    rig, call = keyed_after_dialling(dialled, "4111111111111111", **config)
    assert call.number.startswith(dialled[:kept]) and set(call.number[kept:]) <= {"X"}, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, logged",
    [
        ("0800123456", "0800123456"),  # 0800 and 6
        ("08001234567", "08001234567"),  # 0800 and 7: its 11th digit cannot begin a card
        ("08001234563", "0800123456"),  # ... one of 2-6 may: masked with the card
        ("01697712347", "01697712347"),  # Brampton's 0 and 10, the same
        ("01697712345", "0169771234"),
    ],
)
def test_an_0800_number_of_either_length_keeps_its_digits_in_the_call_log(dialled, logged):
    """An 0800 number has 10 or 11 digits. Dialled alone, the call log keeps either whole,
    and the tone of an 11th digit is cut (it may be the first of a card keyed on after 0800
    and 6). With a card keyed on after it, the review found the 11th digit of 0800 123 4567
    masked with the card: no card begins 7, so it is the number's, and the log keeps it."""
    kept, call = tones_kept_dialling(dialled)
    assert (kept, stored_number(call, "uk"), call.digits_withheld) == (10, dialled, False)
    rig, call = keyed_after_dialling(dialled, "4111111111111111")
    stored = stored_number(call, "uk")  # as the call log stores it
    assert stored == call.number == logged + "X" * (len(stored) - len(logged)), stored
    assert len(stored) > len(dialled) and call.digits_withheld
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * 10 + [True] * (len(dialled) - 10 + 16 + 3)


@pytest.mark.parametrize(
    "number",
    [
        "01632960123",
        "07700900123",
        "0800123456",
        "08001234567",
        "08001234563",
        "999",
        "101",
        "1571",
        "0033398259791",
    ],
)
@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
def test_a_card_keyed_after_9_18001_and_a_number_on_a_line_with_the_9_is_masked_as_after_the_number(
    number, card
):
    """On a line whose outside-line digit is 9, a card keyed on after 9 18001 and a number
    is masked in the call log, withheld and cut out of the recording exactly as after the
    number alone: the 9 and 18001 are prefixes, their keys kept with their tones."""
    rig, call = keyed_after_dialling("9" + "18001" + number, card, outside_line={1: "9"})
    alone_rig, alone = keyed_after_dialling(number, card)
    assert call.number == "918001" + alone.number and call.digits_withheld == alone.digits_withheld
    assert cards.MASK in call.number and call.digits_withheld, call.number
    assert stored_number(call, "uk") == call.number  # as the call log stores it
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * 6 + [d.past_number for d in alone_rig.of(DigitDialled)]


@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
def test_a_card_keyed_after_9_18001_alone_on_a_line_with_the_9_keeps_none_of_its_digits(card):
    rig, call = keyed_after_dialling("9" + "18001", card, outside_line={1: "9"})
    assert call.number == "918001" + "X" * (len(call.number) - 6) and call.digits_withheld, call.number
    assert [d.past_number for d in rig.of(DigitDialled)] == [False] * 6 + [True] * (16 + 3)


@pytest.mark.parametrize(
    "dialled, country, logged",
    [
        # UK: judged as a number whose start says nothing: more than 15 digits, or a
        # Luhn-valid run from a 2-6, masks from the first digit or that 2-6.
        ("1280" + "01632960123", "uk", ""),
        ("128" + "01632960123", "uk", ""),
        ("16649" + "01632960123", "uk", "1"),
        ("1664" + "07700900123", "uk", ""),
        # North America: 101 and a carrier's four digits, taken for 1 and ten: the digits
        # past the 11th key, the number's last ones with the card, are masked.
        ("1010288" + "12125550123", "us", "10102881212"),
        ("1010288" + "01144207946000", "us", "10102880114"),
    ],
)
@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
def test_a_card_keyed_after_a_carriers_access_code_and_a_number_keeps_none_of_its_digits(
    dialled, country, logged, card
):
    """A carrier's access code starting with 1, a number after it and a card keyed
    straight on: no digit of the card, nor its tone, is kept. The call log loses the
    number's digits with it (the code's end cannot be told, docs/pci.md); the tones kept
    are those of the code's first three keys (UK) or of 11 keys (US)."""
    rig, call = keyed_after_dialling(dialled, card, country=country)
    assert call.number == logged + "X" * (len(call.number) - len(logged)) and call.digits_withheld, (
        call.number
    )
    assert stored_number(call, country) == call.number
    kept = 3 if country == "uk" else 11
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112", "5105105105105100"])
@pytest.mark.parametrize("prefix", ["", "*67"])
def test_a_card_keyed_straight_after_a_us_carriers_access_code_keeps_none_of_its_digits(card, prefix):
    """On a US box 101 and four digits were taken for the start of 1 and ten, so a card keyed
    on straight after the code alone kept its first four digits and their tones
    (10102884111 and Xs). A number dialled after the code begins 1, 011 or 0, and no 1 and
    ten begins 10: a 2-9 after the code begins no number, so the code is whole at 7 keys and
    the card is masked, withheld and cut out of the recording from its first key. A number
    after the code is judged as before (the test above)."""
    dialled = prefix + "1010288"
    rig, call = keyed_after_dialling(dialled, card, country="us")
    assert call.number == dialled + "X" * (len(call.number) - len(dialled)) and call.digits_withheld
    assert stored_number(call, "us") == call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * len(dialled) + [True] * (16 + 3)


@pytest.mark.parametrize(
    "dialled, outside, logged, kept",
    [
        ("08001234563", "", "0800123456", 10),
        ("141" + "08001234563", "", "1410800123456", 13),
        ("1470" + "08001234562", "", "14700800123456", 14),
        ("18001" + "08001234563", "", "180010800123456", 15),
        ("9" + "08001234563", "9", "90800123456", 11),
        ("0044" + "8001234563", "", "0044800123456", 13),  # the same number from abroad
        ("01697712345", "", "0169771234", 10),  # Brampton's 0 and 10, the same
    ],
)
@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
def test_an_0800_numbers_11th_digit_of_2_to_6_goes_with_a_card_after_it(dialled, outside, logged, kept, card):
    """An 0800 number of 0 and 10 digits whose last is 2-6, a card keyed on after it:
    that digit may be the card's first (after 0800 and 6), so the call log masks it with
    the card, and its tone is cut; the number's first ten keep theirs. The same after a
    prefix, the outside-line 9 on its line, or dialled from abroad (00 44 800)."""
    config = {"outside_line": {1: outside}} if outside else {}
    rig, call = keyed_after_dialling(dialled, card, **config)
    assert call.number == logged + "X" * (len(call.number) - len(logged)) and call.digits_withheld, (
        call.number
    )
    assert len(call.number) > len(logged) and stored_number(call, "uk") == call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, outside, kept",
    [
        ("8005550123", "", 10),  # no 1 before it (an area code never starts 0 or 1): 10 digits
        ("12125550123", "", 11),  # 1 and 10
        ("*678005550123", "", 13),  # a prefix adds its keys
        ("9" + "8005550123", "9", 11),  # so does the outside-line 9
        ("2125550123", "", 0),  # a start of 2-6 may be a card's own: no tone kept
        ("*672125550123", "", 3),  # ... but the prefix's
        ("9" + "2125550123", "9", 1),  # ... or the outside-line 9's
    ],
)
def test_a_card_keyed_on_after_a_north_american_number_has_none_of_its_tones_kept(dialled, outside, kept):
    """A US number dialled without its 1 was allowed 11 digits, as with it: the review
    found the card's first digit keyed on after it in the recording, taken for the 11th.
    One beginning 2-6 keeps none of its tones (a card keyed with no number begins so)."""
    config = {"outside_line": {1: outside}} if outside else {}
    rig, call = keyed_after_dialling(dialled, "4111111111111111", country="us", **config)
    # The call log masks more: a start that says nothing of the length may be a card's own.
    assert set(call.number[kept:]) <= {"X"} and call.digits_withheld, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, card",
    [
        ("4532715384", "761237"),  # a card keyed with no number: 453 271 5384 and 6 more
        ("4532715384", "4111111111111111"),  # a number of that plan's form, a card after it
    ],
)
def test_a_north_american_number_without_its_1_is_masked_whole_with_a_card_after_it(dialled, card):
    """A US number without its 1 is whole at 10 digits by its plan, but a card keyed with
    no number begins the same way (area code 453, exchange 271): up to the digit where the
    card is recognised (the 16th at the latest) the keys of the two are the same. Keeping
    the number's digits in the call log would keep the card's first ten, so both are
    masked whole (docs/pci.md)."""
    _rig, call = keyed_after_dialling(dialled, card, country="us")
    assert set(call.number) == {"X"} and call.digits_withheld, call.number


@pytest.mark.parametrize(
    "dialled, country, outside, kept",
    [
        ("4111111111111111", "us", "", 0),  # a card keyed at the dial tone, no number
        ("4111111111111111", "uk", "", 0),
        ("9" + "4111111111111111", "us", "9", 1),  # after the outside-line 9: its key kept
        ("*67" + "4111111111111111", "us", "", 3),  # after *67: its keys kept
        ("5555555555554444", "uk", "", 0),  # a Mastercard test number
        ("2223000048400011", "us", "", 0),  # ... one of its 2-series
    ],
)
def test_a_card_keyed_with_no_number_keeps_none_of_its_tones(dialled, country, outside, kept):
    """The review found, on a US box, the tones of a card's first ten keys in the
    recording when it was keyed at the dial tone: taken for a number without its 1, whole
    at 10 digits, it was recognised only at its 16th key, long after the recorder (360 ms
    behind) let the first go. On a UK box, 11. A card begins 2-6: a number whose start
    says nothing of its length and begins so keeps no tone; the call log masks the card."""
    config = {"outside_line": {1: outside}} if outside else {}
    got, call = tones_kept_dialling(dialled, country, **config)
    assert got == kept
    assert set(call.number[kept:]) == {"X"}, call.number


@pytest.mark.parametrize(
    "dialled, country, kept",
    [
        ("612345", "uk", 0),  # a UK local number without its area code, 2-6: as a card
        ("79460123", "uk", 8),  # 7-9: no card begins so, every tone kept
        ("2125550123", "us", 0),
        ("8005550123", "us", 10),
        ("123", "uk", 3),  # a short code starting 1: as before
        ("01632960123", "uk", 11),  # a start that tells the length: as before
    ],
)
def test_a_number_whose_start_may_be_a_cards_keeps_no_tone_but_is_logged_whole(dialled, country, kept):
    """What it costs: a number whose start says nothing of its length and begins 2-6 is
    recorded without its tones; the call log keeps it whole, as dialled."""
    got, call = tones_kept_dialling(dialled, country)
    assert (got, call.number, call.digits_withheld) == (kept, dialled, False)


@pytest.mark.parametrize(
    "dialled, kept",
    [
        ("79460123", 8),  # a London local number: 8 digits, the most a local number has
        ("794601", 8),  # a 6-digit one: the card's first two keep their tones
        ("8123", 8),  # a 4-digit one (as in Brampton): the card's first four keep theirs
        ("9460123", 1),  # one starting 9 and 2-6 keeps the 9's only (a card may follow it, below)
    ],
)
def test_a_card_keyed_on_after_a_uk_local_number_keeps_no_tone_past_8_keys(dialled, kept):
    """A UK local number starting 7 or 8 was allowed 11 digits, a national number's: the
    review found the tones of the first three to seven digits of a card keyed straight
    on after it in the recording. A local number has at most 8 digits (London's)."""
    rig, call = keyed_after_dialling(dialled, "4111111111111111")
    assert set(call.number[len(dialled) :]) == {"X"} and call.digits_withheld, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, kept",
    [
        ("94601234", 1),  # a local number starting 9 and 2-6: the 9's only (a card may follow it)
        ("9" + "79460123", 9),  # a switchboard's 9 (not set on the line) and a local number
        ("9" + "1571", 4),  # ... and a short code: no local number begins 1, so 9 and 3
        ("9" + "612345", 1),  # ... and a local number starting 2-6: the 9's only
        ("9" + "0033398259", 10),  # ... and a number abroad: 9, 00 and 7
        ("9" + "01632960123", 11),  # ... and a national number: 11 keys, as before
    ],
)
def test_a_card_keyed_on_after_a_number_starting_9_keeps_no_tone_past_8_keys(dialled, kept):
    """A number starting 9 on a line whose outside-line digit is not set was allowed 11
    keys, as any start saying nothing: the review found the tones of a card's first three
    to seven keys in the recording after a local number starting 9. It is a local number
    (8 digits at most) or a switchboard's 9 and a number: 8 keys, or 1 and what the
    number after the 9 keeps, 11 at most."""
    rig, call = keyed_after_dialling(dialled, "4111111111111111")
    assert set(call.number[len(dialled) :]) <= {"X"} and call.digits_withheld, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) + 16 + 3 - kept)


@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
@pytest.mark.parametrize(
    "dialled, kept",
    [
        ("9", 1),  # a switchboard's 9 and the card: only the 9 keeps its tone
        ("9" + "150", 4),  # ... a short code after it: 9 and the three keys of any
        ("9" + "1571", 4),
        ("9" + "17070", 4),
        ("9" + "141", 4),  # 141 before no 0: a short code of its own
    ],
)
def test_a_card_keyed_after_a_switchboards_9_not_set_on_the_line_keeps_none_of_its_tones(dialled, kept, card):
    """The review found the tones of a card's first seven keys in the recording after a
    bare 9 on a line whose outside-line digit is not set (the first four after 9 150, the
    first three after 9 1571): a number starting 9 kept 8 keys, a local number's most.
    No local number begins 1, and one beginning 2-6 may be a card's first digit: after
    the 9 such a start is judged as a number of its own, as after the 9 set on the line."""
    rig, call = keyed_after_dialling(dialled, card)
    assert set(call.number[len(dialled) :]) == {"X"} and call.digits_withheld, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) + 16 + 3 - kept)


def test_a_card_pulse_dialled_after_a_switchboards_9_not_set_on_the_line_has_every_pulse_cut():
    """Dialled by pulse, the card's first digit is known only at its last pulse: its
    clicks are cut as they come, whatever digit follows the 9 (it may be 2-6)."""
    card = "4111111111111111"
    s = LineScript()
    s.handset(True, 1000)
    end = s.pulse_dial(2500, "9" + card)
    s.handset(False, end + 8000)
    rig = Rig().play(s, until_ms=end + 9000)
    pulses = rig.of(DialPulse)
    assert len(pulses) == 9 + sum(int(d) for d in card)
    # The 9's own pulses are cut too: until its last it may be a card's 2-6.
    assert all(p.past_number for p in pulses)
    assert [d.past_number for d in rig.of(DigitDialled)] == [False] + [True] * 16


def test_the_pulses_of_a_digit_after_a_switchboards_9_are_cut_while_it_may_be_1_to_6():
    """What it costs: dialled by pulse, the digit after a 9 (the line's digit not set)
    loses the clicks of its first six pulses, whatever it is: until then it may be 1-6
    (a 2-6 a card's first digit). From its 7th pulse it is 7, 8, 9 or 0, the start of a
    local number, and its clicks are kept; so are those of the digits after it."""
    dialled = "98765432"
    s = LineScript()
    s.handset(True, 1000)
    end = s.pulse_dial(2500, dialled)
    s.handset(False, end + 8000)
    rig = Rig().play(s, until_ms=end + 9000)
    said = [p.past_number for p in rig.of(DialPulse)]
    assert said == [True] * 9 + [True] * 6 + [False] * 2 + [False] * sum(int(d) for d in dialled[2:])
    assert [d.past_number for d in rig.of(DigitDialled)] == [False] * len(dialled)
    assert rig.only_call().number == dialled


@pytest.mark.parametrize(
    "dialled, kept",
    [
        ("9" + "00333982597919", 10),  # 9, 00 and 7: the number's last digits lose theirs
        ("9" + "79460123", 9),
        ("98765432", 8),
        ("9460123", 1),  # a local number starting 92-96: the 9's tone only
        ("94601234", 1),
        ("9" + "1571", 4),  # a switchboard's 9 and a short code: 9 and three keys
        ("9" + "17070", 4),
    ],
)
def test_a_number_starting_9_is_logged_whole_whatever_tones_it_keeps(dialled, kept):
    """What it costs: after a switchboard's 9 not set on its line, a number abroad is
    recorded without the tones of its digits past 00 and 7, as it is after the 9 set on
    the line, a local number starting 92-96 without those of its digits after the 9 (a
    card keyed after the 9 begins so), a short code after the 9 without those past its
    third key; the call log keeps each as dialled."""
    got, call = tones_kept_dialling(dialled)
    assert (got, call.number, call.digits_withheld) == (kept, dialled, False)


SWITCHBOARD_9_PREFIXED = [
    "9" + "18001" + "01632960123",  # Relay UK: 17 keys, more than any number has
    "9" + "18002" + "02079460000",
    "9" + "1470" + "01632960123",  # the caller's number given: 16 keys
    "9" + "141" + "01632960003",  # withheld: 15 keys, a Luhn-valid window from the 4 of 141
]


@pytest.mark.parametrize("dialled", SWITCHBOARD_9_PREFIXED)
def test_a_switchboards_9_not_set_on_the_line_before_a_prefix_and_a_number_is_logged_whole(dialled):
    """The review found these kept as X's only with no card keyed, the line's outside-line
    digit not set: a 9 was no prefix, so the number's start said nothing, and past 15 digits
    (or at a Luhn-valid window in them) it was masked from its first. The 9 before a prefix
    and a number whose start tells its length is a switchboard's: judged without it."""
    kept, call = tones_kept_dialling(dialled)
    assert (call.number, stored_number(call, "uk"), call.digits_withheld) == (dialled, dialled, False)
    assert kept == 11  # the tones are as before: a 9 keeps 11 keys at most


@pytest.mark.parametrize("dialled", SWITCHBOARD_9_PREFIXED)
def test_a_card_keyed_after_a_switchboards_9_a_prefix_and_a_number_is_masked_and_its_tones_cut(dialled):
    """What the call log now keeps after such a 9 lets no card digit in: a card keyed on
    after the number is masked (a local number starting 9 and a card may be what was
    dialled: the mask runs from where that card may begin, as before), its code withheld,
    and no key past the 11th keeps its tone."""
    rig, call = keyed_after_dialling(dialled, "4111111111111111")
    assert set(call.number[len(dialled) :]) == {"X"} and call.digits_withheld, call.number
    assert stored_number(call, "uk") == call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * 11 + [True] * (len(dialled) + 16 + 3 - 11)


@pytest.mark.parametrize(
    "local, card, code",
    [
        ("9180010", "5555555555554444", "737"),  # 9 18001 0 and a card starting 5: 05... is national
        ("91800", "2014567890123456", "737"),  # 9180 0 and a card starting 20: 9 18002 0...
        ("914102", "3530111333300000", "737"),  # 9 141 0 and a card starting 3: 9 141 02...
        ("9147003", "5105105105105100", "737"),  # 9 1470 0 and a card: 9 1470 03...
        # A card keyed with a digit wrong, alone: no Luhn-valid window finds it, only its
        # place after what may be a local number does.
        ("9180010", "2449706845832461", ""),
        ("914700", "5498014348109", ""),
        ("91800209", "57108224605353", ""),
    ],
)
def test_a_card_keyed_after_a_local_number_starting_9_as_a_prefix_does_is_masked(local, card, code):
    """A local number starting 9 may begin as 9 and a prefix do: a card keyed on after it
    keeps no digit in the call log. Judged as a switchboard's 9, a prefix and a national
    number, the card's first digits would be the number's: where a card after a local
    number starting 9 may already be there, the number is judged as dialled, as before."""
    rig, call = keyed_after_dialling(local, card, code)
    assert set(call.number[len(local) :]) == {"X"}, call.number
    assert stored_number(call, "uk") == call.number


@pytest.mark.parametrize(
    "dialled, outside, kept",
    [
        ("150", "", 3),  # a short code of 3: every tone of it kept, none of the card's
        ("1571", "", 3),  # BT's voicemail: its 4th key loses its tone
        ("17070", "", 3),  # the line test
        ("9" + "1571", "9", 4),  # the outside-line 9 before it adds its key
    ],
)
def test_a_card_keyed_on_after_an_unknown_uk_short_code_keeps_none_of_its_tones(dialled, outside, kept):
    """The review found the tones of 11 keys kept after a UK short code the box does not
    know (1571 and the card's first seven): its start said nothing, as a national number's
    does not. A UK number starting 1 is a short code (none shorter than 3 keys) or an
    access code before a number: no key past the third keeps its tone."""
    config = {"outside_line": {1: outside}} if outside else {}
    rig, call = keyed_after_dialling(dialled, "4111111111111111", **config)
    assert set(call.number[len(dialled) :]) == {"X"} and call.digits_withheld, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, kept",
    [
        ("1571", 3),
        ("17070", 3),
        ("147001632960123", 15),  # the caller's number given: 1470 is a prefix, all kept
        ("1470", 4),  # ... its 0 kept while it may still be one
        ("1412", 3),  # 141 before no 0: a number of its own, a short code
        ("18001", 5),  # Relay UK's prefix alone: its keys kept while it may be one
        ("18002", 5),  # ... its 2 too (no short code 1800 a card could follow)
        ("18003", 4),  # no prefix: the 0 was kept while 1800 might have been one
    ],
)
def test_a_uk_number_starting_1_loses_its_tones_past_the_third_but_is_logged_whole(dialled, kept):
    """What it costs: a short code longer than 3 keys, or an access code and the number
    after it, is recorded without the tones of its keys past the third; the call log keeps
    it as dialled."""
    got, call = tones_kept_dialling(dialled)
    assert (got, call.number, call.digits_withheld) == (kept, dialled, False)


@pytest.mark.parametrize(
    "dialled, logged, withheld",
    [
        ("128" + "01632960123", "12801632960123", False),  # 14 digits, no Luhn-valid run
        # 15 digits, a run found at the 14th from the 2: masked from the 2, the last key
        # withheld as keys after a card are
        ("1280" + "01115244939", "1" + "X" * 13, True),
        ("16649" + "01632960123", "1" + "X" * 14, True),  # 16 digits, a run at the 15th
        ("17777" + "01632960123", "X" * 16, False),  # 16 digits, no run: from the first
    ],
)
def test_an_access_code_and_a_number_are_logged_as_a_number_whose_start_says_nothing(
    dialled, logged, withheld
):
    """docs/pci.md said the call log keeps an access code and the number after it as
    dialled; it keeps them as a number whose start says nothing: where the code ends is
    unknown, and a short code and a card may be the same keys (166 and 4901 6329 6012 3)."""
    _, call = tones_kept_dialling(dialled)
    assert (call.number, stored_number(call, "uk"), call.digits_withheld) == (logged, logged, withheld)


RELAYED = [
    "18001" + "01632960123",  # from a textphone to a national number: 16 digits
    "18002" + "01632960123",  # from a phone to a textphone
    "18001" + "07700900123",  # a mobile
    "18001" + "0800123456",  # 0800 and six digits
    "18001" + "0033398259791",  # abroad
    "18001" + "999",  # the emergency numbers
    "18001" + "112",
    "18001" + "101",  # a service number (the police's, as its textphone users dial it)
]


@pytest.mark.parametrize("dialled", RELAYED)
def test_a_number_dialled_through_relay_uk_is_logged_whole_with_its_tones(dialled):
    """The review found 18001 01632 960123 (Relay UK, for deaf and speech-impaired
    callers) stored as Xs only, no card keyed: taken for a short code, its 16 digits were
    more than any number has, masked from the first, and the tones of its keys past the
    third were cut. 18001 and 18002 are prefixes: what follows is the number called."""
    kept, call = tones_kept_dialling(dialled)
    assert (call.number, stored_number(call, "uk"), call.digits_withheld) == (dialled, dialled, False)
    # As many tones as the number alone keeps (all but those of a number abroad past
    # 00 and 7, each of which may be a card's first digit), and the prefix's.
    assert kept == 5 + tones_kept_dialling(dialled[5:])[0]
    assert kept == len(dialled) - (4 if dialled.endswith("0033398259791") else 0)


@pytest.mark.parametrize("prefix", ["18001", "18002"])
@pytest.mark.parametrize("number", list(dict.fromkeys(n[5:] for n in RELAYED)))
@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
def test_a_card_keyed_after_a_relay_call_is_masked_as_after_the_number_alone(prefix, number, card):
    """A card keyed straight on after 18001 and a number is masked in the call log from
    where it is after the number alone, what follows it withheld, and cut out of the
    recording as after the number alone; the prefix's keys are kept and keep their
    tones. (After 18002 a Luhn-valid run from the prefix's 2 may find the card a key
    sooner: one digit more withheld, not masked.)"""
    rig, call = keyed_after_dialling(prefix + number, card)
    alone_rig, alone = keyed_after_dialling(number, card)
    start = alone.number.index(cards.MASK)
    # The number alone keeps its digits (an international one those of 00 and 7).
    assert start == shortest_number(number, "uk") and alone.digits_withheld, alone.number
    assert call.number[: 5 + start] == prefix + alone.number[:start], call.number
    assert set(call.number[5 + start :]) == {cards.MASK} and call.digits_withheld, call.number
    assert stored_number(call, "uk") == call.number  # as the call log stores it
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * len(prefix) + [d.past_number for d in alone_rig.of(DigitDialled)]


@pytest.mark.parametrize(
    "dialled, outside",
    [
        ("141" + "18001" + "01632960123", ""),  # the caller's number withheld, then Relay UK
        ("18001" + "141" + "01632960123", ""),  # ... or the other way round
        ("1470" + "18002" + "07700900123", ""),
        ("9" + "18001" + "01632960123", "9"),  # the line's outside-line digit before it
    ],
)
def test_relay_uk_after_or_before_another_prefix_is_a_prefix_too(dialled, outside):
    """Every key of the prefixes and the number keeps its tone and its digit in the call
    log; a card keyed on after them is masked from its first key, none of its tones kept."""
    config = {"outside_line": {1: outside}} if outside else {}
    kept, call = tones_kept_dialling(dialled, **config)
    assert (kept, call.number, call.digits_withheld) == (len(dialled), dialled, False)
    rig, call = keyed_after_dialling(dialled, "4111111111111112", **config)
    assert call.number.startswith(dialled) and set(call.number[len(dialled) :]) == {"X"}, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * len(dialled) + [True] * (16 + 3) and call.digits_withheld


US_RELAYED = [
    ("711", 3),  # North America's relay service alone: its operator asks for the number
    ("711" + "12125550123", 14),  # 711 and 1 and ten digits
    ("711" + "8005550123", 13),  # 711 and a number without its 1 (7-9: not a card's start)
    ("711" + "2125550123", 3),  # ... 2-6: may be a card's start, as without 711
]


@pytest.mark.parametrize("dialled, kept", US_RELAYED)
def test_a_number_dialled_through_north_americas_relay_711_keeps_its_tones(dialled, kept):
    """711 before a number was taken for a number without its 1 (7 is an area code's
    first digit): 10 keys kept their tones, so 711 and 1 and ten digits lost those of its
    last four. 711 is a relay prefix, as Relay UK's 18001 is: the number after it is
    judged as dialled alone, and the call log keeps it as dialled."""
    got, call = tones_kept_dialling(dialled, "us")
    assert (got, call.number, call.digits_withheld) == (kept, dialled, False)
    assert stored_number(call, "us") == dialled


@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
@pytest.mark.parametrize("dialled, kept", US_RELAYED)
def test_a_card_keyed_after_north_americas_relay_711_keeps_none_of_its_tones(dialled, kept, card):
    """The review found the tones of a card's first seven digits in the recording after
    711 (taken for a number of 10 digits without its 1), and the call log masking 711
    with the card. The card keyed on after 711, or 711 and a number, keeps none of its
    tones; the call log keeps 711 (and 1 and ten digits after it) and masks the card."""
    rig, call = keyed_after_dialling(dialled, card, country="us")
    # A number without its 1 says nothing of its length: masked with the card, as without 711.
    logged = dialled if dialled[3:4] == "1" else "711"
    assert call.number == logged + "X" * (len(call.number) - len(logged)), call.number
    assert call.digits_withheld
    assert stored_number(call, "us") == call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, country, kept",
    [
        ("*99#", "uk", 4),  # a code the box does not know, then the card
        ("#123", "uk", 2),  # where it ends is unknown: its own 2 and 3 lose their tones
        ("*", "uk", 1),
        ("#31#", "uk", 4),  # a known prefix's keys keep theirs (no number's start after it)
        ("9" + "*99#", "uk", 5),  # the outside-line 9 before it (on its line)
        ("*99#", "us", 4),
        ("*70", "us", 3),  # North America's cancel call waiting, unknown to the box
    ],
)
def test_a_card_keyed_on_after_an_unknown_code_keeps_none_of_its_tones(dialled, country, kept):
    """The review found the tones of 11 keys kept after a code the box does not know
    (``*99#``: the code and the card's first seven): its start, ``*``, said nothing and
    did not begin 2-6. After a ``*`` or ``#`` the next digits are unknown too: from the
    first 2-6 no tone is kept, as for a number whose start says nothing."""
    config = {"outside_line": {1: "9"}} if dialled.startswith("9") else {}
    rig, call = keyed_after_dialling(dialled, "4111111111111111", country=country, **config)
    # The call log masks the card (and, where the run is longer than any number, the
    # code's digits with it: *70 and the card are 18 digits).
    assert set(call.number[len(dialled) :]) == {"X"} and call.digits_withheld, call.number
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * kept + [True] * (len(dialled) - kept + 16 + 3)


@pytest.mark.parametrize(
    "dialled, kept",
    [
        ("*21*01632960123#", 1),  # a divert code: its number's tones too, from the 2
        ("#31#01632960123", 15),  # a known prefix: every tone
        ("*99#", 4),  # a code alone keeps the tones of its keys up to the first 2-6
    ],
)
def test_a_number_after_an_unknown_code_loses_its_tones_but_is_logged_whole(dialled, kept):
    """What it costs: a number keyed after a code the box does not know is recorded
    without the tones of its keys from the first 2-6 after the code; the call log keeps
    it as dialled."""
    got, call = tones_kept_dialling(dialled)
    assert (got, call.number, call.digits_withheld) == (kept, dialled, False)


@pytest.mark.parametrize("card", ["4111111111111111", "4111111111111112"])  # Luhn-valid, a digit wrong
def test_18000_keeps_its_digits_in_the_call_log_with_a_card_after_it(card):
    """Taken for a short code, 18000 (999 through Relay UK) lost the tone of its 0, and
    with a card keyed with a digit wrong after it the call log lost its digits: one run
    of more than 15, masked from the first. It is an emergency number, whole at 5."""
    kept, alone = tones_kept_dialling("18000")
    assert (kept, alone.number, alone.digits_withheld) == (5, "18000", False)
    rig, call = keyed_after_dialling("18000", card)
    assert call.number.startswith("18000") and set(call.number[5:]) == {"X"}, call.number
    assert stored_number(call, "uk") == call.number and call.digits_withheld
    assert [d.past_number for d in rig.of(DigitDialled)] == [False] * 5 + [True] * (16 + 3)


def test_a_number_dialled_on_after_an_emergency_number_is_past_it():
    assert shortest_number("999", "uk") == 3
    assert shortest_number("9999", "uk", "9") == 4
    assert shortest_number("911", "us") == 3
    assert shortest_number("99", "uk") == 0  # not yet


@pytest.mark.parametrize("country", ["uk", "us"])
def test_a_card_pulse_dialled_with_no_number_has_every_pulse_cut(country):
    """Its first digit's pulses are cut before the digit is known (it may be 2-6), the
    rest as past a number whose start, 2-6, may be a card's own."""
    card = "4111111111111111"
    s = LineScript()
    s.handset(True, 1000)
    end = s.pulse_dial(2500, card)
    s.handset(False, end + 8000)
    rig = Rig(country=country).play(s, until_ms=end + 9000)
    assert len(rig.of(DialPulse)) == sum(int(d) for d in card)
    assert all(p.past_number for p in rig.of(DialPulse))
    assert all(d.past_number for d in rig.of(DigitDialled))


def test_each_pulse_of_a_digit_past_the_number_is_published_for_masking():
    """A card pulse-dialled straight on after the number: the review found its digits in
    the recording (only a DTMF digit was cut). The digit is known only once its pulses
    are over, too late to cut them; each pulse comes on the bus as it is seen, saying
    whether its digit is past the number, so masking cuts its clicks in time."""
    dialled, card = "0800123456", "41111"
    s = LineScript()
    s.handset(True, 1000)
    end = s.pulse_dial(2500, dialled + card)
    s.handset(False, end + 8000)
    rig = Rig().play(s, until_ms=end + 9000)
    pulses = rig.of(DialPulse)
    counts = [10 if d == "0" else int(d) for d in dialled + card]
    assert len(pulses) == sum(counts)
    assert all(p.end_us - p.t_us == us(66) for p in pulses)
    past = [d.past_number for d in rig.of(DigitDialled)]
    assert past == [False] * len(dialled) + [True] * len(card)
    # Each pulse says what its digit's DigitDialled says, from the digit's first pulse;
    # but the first digit's: until its last pulse it may be 2-6, a card's first digit
    # keyed with no number before it, so its clicks are cut whatever it turns out to be.
    said = [True] + past[1:]
    assert [p.past_number for p in pulses] == [p for p, n in zip(said, counts, strict=True) for _ in range(n)]


@pytest.mark.parametrize("pulses", [1, 3])
def test_a_dial_pulse_just_after_a_ringback_cut_is_no_digit(pulses):
    """The far end answers, cutting a ringback burst short, and the loop is broken just
    after (a knock of the hook switch, a digit pulsed at the answer): the DSP's "burst
    cut" (dated at the cut, told 130 ms later) reached the supervisor while the break was
    still being judged, the break was a pulse and was counted as a digit of the number,
    and the cut was then ignored (a pulse being counted is no time to judge an answer):
    the number logged one digit longer, the call never answered and ended "abandoned".
    Nobody dials into ringback: the pulse is no digit, the call is answered at the cut."""
    s = LineScript()
    end = _rung(s)
    cut = end + 10002
    s.dsp(RingbackStopped(us(cut), cut=True), deliver_us=us(cut + 128))
    s.pulse_dial(cut + 30, str(pulses))
    s.handset(False, cut + 9000)
    rig = Rig().play(s, until_ms=cut + 10000)
    call = rig.only_call()
    assert (call.number, call.answered_us, call.end_reason) == ("01632960302", us(cut), "local"), call
    assert "answer_ringback_end" in call.notes
    assert [d.digit for d in rig.of(DigitDialled)] == list("01632960302")
    assert not rig.of(DialPulse)


def test_a_call_being_dialled_when_the_box_stops_hearing_keeps_the_digits_heard():
    """A power-fail seal (or a stop) while a number is dialled: the digits heard by then
    are the call's number, published so that the call log writes it (it ended with no
    number, its dialling never over). A key held as a possible code is a digit, as at an
    on-hook; a pulsed digit still being counted is not (its pulses were not all seen)."""
    from firmware.calls.calllog import dialling

    keyed, pulsed = LineScript(line=1), LineScript(line=2)
    keyed.handset(True, 1000)
    end = keyed.dtmf(2000, "01632960123*")
    pulsed.handset(True, 1000)
    last_make = pulsed.pulse_dial(2000, "01")
    for k in range(2):  # the next digit's first two pulses, then the box stops hearing
        pulsed.handset(False, last_make + 800 + k * 100)
        pulsed.handset(True, last_make + 866 + k * 100)
    stop_ms = max(end + 500, last_make + 1000)
    rig = Rig(lines=2)
    rig.sup.key_codes = lambda: ("*1",)
    rig.play(keyed, pulsed, until_ms=stop_ms)
    one, two = rig.sup.live_call(1), rig.sup.live_call(2)
    assert (one.number, two.number) == ("01632960123", "01")
    assert dialling(one) and dialling(two)
    rig.sup.close(heard_until_us=us(stop_ms))
    assert (one.number, two.number) == ("01632960123*", "01")
    assert not dialling(one) and not dialling(two)
    assert "pulse_digit_cut:2" in two.notes and "dialling_cut" in one.notes
    published = [ev.call for ev in rig.of(CallUpdated)][-2:]
    assert published == [one, two] and not rig.of(CallAnswered) and not rig.of(CallEnded)


# ------------------------------------------------------------ no dial tone
def _silent_calls(s, starts_ms, held_ms=5000):
    """Calls out at ``starts_ms``: off-hook for ``held_ms``, nothing heard, back on-hook."""
    for t in starts_ms:
        s.handset(True, t)
        s.handset(False, t + held_ms)


def _no_dial_tone_faults(rig):
    return [(f.kind, f.active) for f in rig.of(LineFault) if f.kind == "line_no_dial_tone"]


def _heard_dial_tone(s, t_ms=1000):
    """A call out that hears the dial tone (the box then knows the line's)."""
    s.handset(True, t_ms)
    s.dsp(Tone(us(t_ms + 900), "dial"))
    s.handset(False, t_ms + 3000)


def test_two_silent_calls_out_raise_no_dial_tone_and_the_next_dial_tone_clears_it():
    s = LineScript()
    _heard_dial_tone(s)
    _silent_calls(s, [10_000, 20_000])
    _heard_dial_tone(s, 30_000)
    rig = Rig().play(s, until_ms=40_000)
    assert _no_dial_tone_faults(rig) == [("line_no_dial_tone", True), ("line_no_dial_tone", False)]
    assert [f.t_us for f in rig.of(LineFault)] == [us(25_000), us(30_900)]
    assert ["no_dial_tone" in c.notes for c in rig.calls()] == [False, True, True, False]
    assert [(c.direction, c.end_reason, c.answered_us) for c in rig.calls()][1] == ("out", "abandoned", None)


def test_a_switchboard_extension_never_raises_no_dial_tone():
    """Its own dial tone may not be the one the box knows: a silent call says nothing."""
    s = LineScript()
    _heard_dial_tone(s)
    _silent_calls(s, [10_000, 20_000, 30_000])
    rig = Rig(outside_line={1: "9"}).play(s, until_ms=40_000)
    assert _no_dial_tone_faults(rig) == []
    assert ["no_dial_tone" in c.notes for c in rig.calls()] == [False, True, True, True]  # noted still


def test_a_handset_lifted_and_put_straight_back_is_no_silent_call():
    s = LineScript()
    _heard_dial_tone(s)
    _silent_calls(s, [10_000, 20_000, 30_000], held_ms=1500)
    rig = Rig().play(s, until_ms=40_000)
    assert _no_dial_tone_faults(rig) == []
    assert not any("no_dial_tone" in c.notes for c in rig.calls())


def test_a_call_out_that_hears_a_voice_or_a_busy_tone_is_no_silent_call():
    s = LineScript()
    _heard_dial_tone(s)
    _silent_calls(s, [10_000, 20_000, 30_000])
    s.dsp(Speech(us(12_000)))
    s.dsp(Tone(us(22_000), "busy"))
    rig = Rig().play(s, until_ms=40_000)
    assert _no_dial_tone_faults(rig) == []
    assert ["no_dial_tone" in c.notes for c in rig.calls()] == [False, False, False, True]
