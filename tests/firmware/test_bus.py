"""The event bus: a failing handler is logged without the event's contents."""

from firmware.bus import CallUpdated, DigitDialled, Event, EventBus
from firmware.calls.call import Call


def test_a_failing_handler_logs_no_number_nor_digit(caplog):
    """The bus logged a failing handler with the event's repr: the call's number as dialled
    so far (a card number's first digits, before its last made it one), or the digit."""
    bus = EventBus()

    def broken(event):
        raise RuntimeError("broken")

    bus.subscribe(Event, broken)
    call = Call(line=1, direction="out", started_us=0, number="016329609995928580")
    bus.publish(CallUpdated(line=1, t_us=0, call=call))
    bus.publish(DigitDialled(line=1, t_us=0, digit="7", method="dtmf"))
    assert bus.errors == 2
    assert "5928580" not in caplog.text and "'7'" not in caplog.text
    assert "CallUpdated (line 1)" in caplog.text and "DigitDialled (line 1)" in caplog.text
