"""The far end's clear on hub and ATA ports: loop-current break, reversal, tone,
silence; a dial pulse and a hook flash are not a clear (issue 18).

Edges and DSP events are played into a supervisor on a simulated clock;
times in the scripts are ms, everything the supervisor reports is clock µs.
"""

from functools import partial

import pytest

from board.base import INPUT_SIGNALS
from firmware.bus import CallStarted, EventBus
from firmware.calls.supervisor import Supervisor, SupervisorConfig
from firmware.clock import SimClock
from firmware.dsp.events import AlertTone, CallerId, Quiet, Sound, Tone
from firmware.errors import ConfigError

TOLERANCE_US = 50_000


def us(t_ms):
    return int(round(t_ms * 1000))


class Line:
    """What happens on line 1, then played into a supervisor."""

    def __init__(self, **config):
        self.edges, self.events, self.config = [], [], config

    def set(self, signal, active, t_ms):
        self.edges.append((us(t_ms), signal, active))

    def handset(self, off_hook, t_ms):
        self.set("hook", off_hook, t_ms)
        self.set("in_use", off_hook, t_ms)

    def loop_break(self, t_ms, ms):
        """Our loop opened for ``ms`` (a dial pulse, a flash, or a hang-up and pick-up)."""
        self.handset(False, t_ms)
        self.handset(True, t_ms + ms)

    def feed_removed(self, t_ms, ms):
        """The adapter removes line voltage (and so loop current) for ``ms``."""
        self.set("power", False, t_ms)
        self.set("hook", False, t_ms)
        self.set("power", True, t_ms + ms)
        self.set("hook", True, t_ms + ms)

    def ring(self, t_ms, bursts=((0, 400), (600, 1000))):
        for start, end in bursts:
            for k in range((end - start) // 40):
                on = t_ms + start + k * 40
                self.edges += [(us(on), "ring", True), (us(on + 20), "ring", False)]

    def dsp(self, event, late_ms=40):
        self.events.append((event.t_us + us(late_ms), event))

    def play(self, until_ms):
        clock, bus, log = SimClock(), EventBus(strict=True), []
        bus.subscribe(CallStarted, log.append)
        sup = Supervisor(1, clock, bus, SupervisorConfig(**self.config), signals=frozenset(INPUT_SIGNALS))
        for t, signal, active in sorted(self.edges, key=lambda e: e[0]):
            clock.call_at(t, partial(sup.on_edge, 1, signal, active, t))
        for t, event in self.events:
            clock.call_at(t, partial(sup.on_dsp_event, 1, event))
        clock.run_until(us(until_ms))
        return [ev.call for ev in log], sup


def answered_call(**config):
    """An inbound call answered at 3 s."""
    line = Line(**config)
    line.ring(1000)
    line.handset(True, 3000)
    return line


def near(actual_us, t_ms):
    return actual_us is not None and abs(actual_us - us(t_ms)) <= TOLERANCE_US


def test_a_100_ms_break_while_pulse_dialling_is_a_digit_not_a_hang_up():
    line = Line()
    line.handset(True, 1000)
    t = 2500
    for _ in range(3):  # "3", with 100 ms breaks
        line.loop_break(t, 100)
        t += 100 + 40
    line.handset(False, 12000)
    (call,), _ = line.play(13000)
    assert call.number == "3" and call.dial_method == "pulse"
    assert call.end_reason == "local" and near(call.ended_us, 12000)


def test_a_600_ms_loss_of_feed_during_a_call_is_the_far_end_clearing():
    line = answered_call()
    line.feed_removed(10000, 600)
    line.handset(False, 14000)
    (call,), sup = line.play(15000)
    assert call.end_reason == "remote_break" and near(call.ended_us, 10000)
    assert "loop_break:600" in call.notes
    assert sup.state(1) == "idle"


@pytest.mark.parametrize("ms, clears", [(60, False), (90, True), (800, True)])
def test_the_loop_break_minimum_is_configurable(ms, clears):
    line = answered_call(kbreak_min_ms=90)
    line.feed_removed(10000, ms)
    line.handset(False, 14000)
    (call,), _ = line.play(15000)
    assert call.end_reason == ("remote_break" if clears else "local")
    assert near(call.ended_us, 10000 if clears else 14000)


def test_a_600_ms_break_of_our_own_loop_is_a_hang_up_not_a_clear():
    line = answered_call()
    line.loop_break(10000, 600)
    line.handset(False, 14000)
    calls, _ = line.play(15000)
    assert calls[0].end_reason == "local" and near(calls[0].ended_us, 10000)


def test_a_hook_flash_keeps_the_call_when_configured():
    line = answered_call(flash_max_ms=1000)
    line.loop_break(10000, 600)
    line.handset(False, 14000)
    (call,), _ = line.play(16000)
    assert call.end_reason == "local" and near(call.ended_us, 14000)
    assert "hook_flash:600" in call.notes


def test_flash_max_must_not_be_shorter_than_a_dial_pulse():
    with pytest.raises(ConfigError) as err:
        SupervisorConfig(flash_max_ms=100)
    assert err.value.field == "flash_max_ms"


def test_a_reversal_while_connected_is_the_far_end_clearing():
    line = answered_call()
    line.set("polarity", True, 10000)
    line.handset(False, 14000)
    line.set("polarity", False, 14000)
    (call,), sup = line.play(15000)
    assert call.end_reason == "remote_reversal" and near(call.ended_us, 10000)
    assert sup.state(1) == "idle"


def test_the_reversal_that_comes_with_the_answer_is_not_a_clear():
    line = Line()
    line.ring(1000)
    line.handset(True, 3000)
    line.set("polarity", True, 3000)
    line.set("polarity", False, 9000)
    line.handset(False, 12000)
    (call,), _ = line.play(13000)
    assert call.end_reason == "remote_reversal" and near(call.ended_us, 9000)


def test_polarity_restored_as_our_side_hangs_up_is_a_local_hang_up():
    line = Line()
    line.set("polarity", True, 500)  # caller-ID reversal, kept through the call
    line.ring(1000)
    line.handset(True, 3000)
    line.handset(False, 9000)
    line.set("polarity", False, 9000)
    (call,), _ = line.play(10000)
    assert call.end_reason == "local" and near(call.ended_us, 9000)


def test_a_clear_down_tone_is_the_far_end_clearing():
    line = answered_call()
    line.dsp(Tone(us(10000), "busy"), late_ms=1500)
    line.handset(False, 14000)
    (call,), _ = line.play(15000)
    assert call.end_reason == "remote_tone" and near(call.ended_us, 10000)


def test_silence_ends_a_call_the_adapter_never_clears():
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)
    line.handset(False, 120000)  # nobody hangs up for two minutes
    (call,), sup = line.play(121000)
    assert call.end_reason == "remote_silence" and near(call.ended_us, 8000)
    assert sup.state(1) == "idle"


def test_sound_again_before_the_timeout_keeps_the_call():
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)
    line.dsp(Sound(us(20000)))
    line.handset(False, 35000)
    (call,), _ = line.play(36000)
    assert call.end_reason == "local" and near(call.ended_us, 35000)


def test_silence_while_pulse_dialling_counts_only_from_the_connect():
    line = Line(silence_clear_ms=10000)
    line.handset(True, 1000)
    line.dsp(Quiet(us(1000)), late_ms=2000)
    line.loop_break(2000, 66)  # "1"
    line.handset(False, 60000)
    (call,), _ = line.play(61000)
    # connected at the end of dialling (2.066 s), silent since: cleared 10 s later
    assert call.end_reason == "remote_silence" and near(call.ended_us, 2066)


@pytest.mark.parametrize(
    "alert, when, note",
    [
        ("reversal+dtas", "before", "cid:v23:before_ring:dtas:reversal"),
        ("dtas", "before", "cid:v23:before_ring:dtas"),
        ("none", "after", "cid:v23:after_first_ring"),
    ],
)
def test_the_caller_id_variant_is_noted_on_the_call(alert, when, note):
    line = Line()
    if "reversal" in alert:
        line.set("polarity", True, 1000)
    if "dtas" in alert:
        line.dsp(AlertTone(us(1150)), late_ms=300)
    if when == "before":
        line.dsp(CallerId(us(1300), "v23", "01632960123"), late_ms=900)
        line.ring(2500)
    else:
        line.ring(1000)
        line.dsp(CallerId(us(2500), "v23", "01632960123"), late_ms=400)
        line.ring(4000)
    line.handset(True, 6000)
    line.handset(False, 9000)
    (call,), _ = line.play(10000)
    assert call.number == "01632960123" and note in call.notes


def test_a_ring_pulse_alert_is_told_from_a_first_ring():
    """ETSI RP-AS: a 250 ms ring pulse, caller ID, then ringing. The pulse starts the call
    but is no part of its ring cadence."""
    line = Line()
    line.ring(1000, bursts=((0, 240),))
    line.dsp(CallerId(us(1900), "v23", "01632960123"), late_ms=400)
    line.ring(3000)
    line.ring(6000)
    line.handset(True, 8000)
    line.handset(False, 10000)
    (call,), _ = line.play(11000)
    assert near(call.started_us, 1000) and call.number == "01632960123"
    assert "cid:v23:before_ring:ring_pulse" in call.notes
    assert call.ring_cadence_ms[:4] == pytest.approx((400, 200, 400, 2000), abs=60)
