"""The line check learns a silence-cleared call once, as it finally ended."""

from firmware.bus import CallEnded, CallResumed, EventBus, LineStateChanged
from firmware.calls.call import Call
from firmware.linecheck import LineCheck


def test_a_call_that_went_on_after_the_silence_is_learned_once(tmp_path):
    bus, check = EventBus(strict=True), LineCheck(str(tmp_path), 1)
    check.attach(bus)
    call = Call(line=1, direction="in", started_us=0, answered_us=1)
    call.end_reason, call.ended_us = "remote_silence", 5
    bus.publish(CallEnded(line=1, t_us=5, call=call))
    bus.publish(LineStateChanged(line=1, t_us=5, state="cleared", previous="connected"))
    call.end_reason = call.ended_us = None
    bus.publish(CallResumed(line=1, t_us=9, call=call))
    bus.publish(LineStateChanged(line=1, t_us=9, state="connected", previous="cleared"))
    call.end_reason, call.ended_us = "local", 20
    bus.publish(CallEnded(line=1, t_us=20, call=call))
    bus.publish(LineStateChanged(line=1, t_us=20, state="idle", previous="connected"))
    obs = check.snapshot()["1"]
    assert obs["calls"] == 1 and obs["clears"] == {}


def test_a_silence_clear_that_stood_is_learned_at_the_on_hook(tmp_path):
    bus, check = EventBus(strict=True), LineCheck(str(tmp_path), 1)
    check.attach(bus)
    call = Call(line=1, direction="in", started_us=0, answered_us=1)
    call.end_reason, call.ended_us = "remote_silence", 5
    bus.publish(CallEnded(line=1, t_us=5, call=call))
    assert check.snapshot()["1"]["calls"] == 0  # it may yet go on
    bus.publish(LineStateChanged(line=1, t_us=90, state="idle", previous="cleared"))
    obs = check.snapshot()["1"]
    assert obs["calls"] == 1 and obs["clears"] == {"remote_silence": 1}
