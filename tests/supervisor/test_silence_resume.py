"""A silence clear is taken back when sound returns while our side is still off-hook:
a hold without music, a handset laid on the desk, is not the far end gone."""

from functools import partial

from board.base import INPUT_SIGNALS
from firmware.bus import CallAnswered, CallEnded, CallResumed, CallStarted, EventBus, LineStateChanged
from firmware.calls.supervisor import Supervisor, SupervisorConfig
from firmware.clock import SimClock
from firmware.dsp.events import DtmfDigit, Quiet, Sound, Tone
from tests.supervisor.test_far_end_clear import answered_call, near, us


def play(line, until_ms, on_key=None):
    """Play ``line`` and return every call event and line state change, in order."""
    clock, bus, seen = SimClock(), EventBus(strict=True), []
    for kind in (CallStarted, CallAnswered, CallEnded, CallResumed, LineStateChanged):
        bus.subscribe(kind, lambda ev: seen.append((type(ev).__name__, ev, _snapshot(ev))))
    sup = Supervisor(
        1, clock, bus, SupervisorConfig(**line.config), signals=frozenset(INPUT_SIGNALS), on_key=on_key
    )
    for t, signal, active in sorted(line.edges, key=lambda e: e[0]):
        clock.call_at(t, partial(sup.on_edge, 1, signal, active, t))
    for t, event in line.events:
        clock.call_at(t, partial(sup.on_dsp_event, 1, event))
    clock.run_until(us(until_ms))
    return seen, sup


def _snapshot(ev):
    call = getattr(ev, "call", None)
    return None if call is None else (call.ended_us, call.end_reason)


def test_sound_after_a_silence_clear_reopens_the_same_call():
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)  # cleared at 28 s, dated 8 s
    line.dsp(Sound(us(38000)))  # "sorry to keep you"
    line.handset(False, 50000)
    seen, sup = play(line, 51000)
    calls = {id(ev.call) for _, ev, _ in seen if hasattr(ev, "call")}
    assert len(calls) == 1  # one call, not two
    ends = [(ev, snap) for kind, ev, snap in seen if kind == "CallEnded"]
    (first, (first_end, first_reason)), (last, (last_end, last_reason)) = ends
    assert first_reason == "remote_silence" and near(first_end, 8000)
    assert last_reason == "local" and near(last_end, 50000)
    (resumed,) = [ev for kind, ev, _ in seen if kind == "CallResumed"]
    assert near(resumed.t_us, 38000)
    states = [ev.state for kind, ev, _ in seen if kind == "LineStateChanged"]
    assert states == ["ringing", "connected", "cleared", "connected", "idle"]
    call = last.call
    assert "silence" in call.notes and "silence_resumed:30000" in call.notes
    assert call.answered_us == us(3000) and near(call.ended_us, 50000)


def test_a_reopened_call_can_be_silence_cleared_again():
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)
    line.dsp(Sound(us(38000)))
    line.dsp(Quiet(us(40000)), late_ms=2000)  # and then the far end really went
    line.handset(False, 120000)
    seen, sup = play(line, 121000)
    ends = [snap for kind, _, snap in seen if kind == "CallEnded"]
    assert [r for _, r in ends] == ["remote_silence", "remote_silence"]
    assert near(ends[-1][0], 40000)
    assert sup.state(1) == "idle"


def test_a_clear_down_tone_after_a_silence_clear_is_the_real_end():
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)
    line.dsp(Tone(us(45000), "busy"), late_ms=1500)  # reported before its Sound
    line.dsp(Sound(us(45000)), late_ms=1600)
    line.handset(False, 60000)
    seen, _ = play(line, 61000)
    ends = [snap for kind, _, snap in seen if kind == "CallEnded"]
    assert ends[-1][1] == "remote_tone" and near(ends[-1][0], 45000)
    assert len([k for k, _, _ in seen if k == "CallResumed"]) == 1


def test_sound_after_the_handset_went_down_starts_nothing():
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)
    line.handset(False, 30000)
    line.dsp(Sound(us(31000)))
    seen, sup = play(line, 32000)
    assert not [k for k, _, _ in seen if k == "CallResumed"]
    assert sup.state(1) == "idle"


def test_a_signalled_clear_is_never_taken_back():
    line = answered_call()
    line.feed_removed(10000, 600)  # the adapter's open-loop disconnect
    line.handset(True, 10600)
    line.dsp(Sound(us(12000)))  # unobtainable tone, or our side saying "hello?"
    line.handset(False, 20000)
    seen, sup = play(line, 21000)
    ends = [snap for kind, _, snap in seen if kind == "CallEnded"]
    assert [r for _, r in ends] == ["remote_break"]
    assert not [k for k, _, _ in seen if k == "CallResumed"]


def test_a_key_after_a_silence_clear_reaches_the_policy():
    """A key reported before the DSP's Sound (a card digit keyed after the hold) still goes
    to on_key, so the policy can mask it or act on a pause code."""
    line = answered_call(silence_clear_ms=20000)
    line.dsp(Quiet(us(8000)), late_ms=2000)
    line.dsp(DtmfDigit(us(40000), "4", us(40070)), late_ms=100)
    line.dsp(Sound(us(40000)), late_ms=500)
    line.handset(False, 50000)
    keys = []
    seen, _ = play(line, 51000, on_key=lambda *a: keys.append(a))
    assert keys == [(1, "4", us(40000), us(40070))]
    assert [k for k, _, _ in seen].count("CallResumed") == 1
