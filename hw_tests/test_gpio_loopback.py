"""The HAT's GPIO on a real Pi, through gpiozero's lgpio pins as board/rpi.py opens them.

The line detectors are open-collector optocouplers with the Pi's own pull-ups
(docs/hats.md): with no line plugged in each transistor is off, so a detector
input follows the Pi's pull resistor - high with the pull-up, low with the
pull-down. That is the loopback: a pin that does not follow is shorted to a
rail, to another pin, or its optocoupler is stuck on. Outputs the HAT wires
(LEDs) are driven both ways and read back. Run with the line cords unplugged
(a live line's voltage turns the ``power`` detector on) and no button held.
"""

import pytest
from which_hat import hat_name

from board.base import INPUT_SIGNALS
from board.hat import load_hat
from board.rpi import lgpio_factory


def _lines():
    return [spec.line for spec in load_hat(hat_name()).lines]


@pytest.fixture(scope="module")
def factory():
    f = lgpio_factory()
    try:
        yield f
    finally:
        f.close()


@pytest.mark.parametrize("line", _lines())
def test_each_pin_of_the_line_loops_back(hat, factory, line):
    (spec,) = [s for s in hat.lines if s.line == line]
    results = []
    for signal, pin_spec in sorted(spec.pins.items()):
        pin = factory.pin(pin_spec.gpio)
        try:
            if signal in INPUT_SIGNALS or signal.endswith("_button"):
                pin.function = "input"
                seen = []
                for pull in ("up", "down"):
                    pin.pull = pull
                    seen.append(pin.state)
                pin.pull = pin_spec.pull
                ok = seen == [1, 0]
                results.append((signal, pin_spec.gpio, "pull-up %d, pull-down %d" % tuple(seen), ok))
            else:
                pin.function = "output"
                seen = []
                for level in (1, 0):
                    pin.state = level
                    seen.append(pin.state)
                pin.state = pin_spec.active_low  # back to inactive
                ok = seen == [1, 0]
                results.append((signal, pin_spec.gpio, "driven 1 reads %d, 0 reads %d" % tuple(seen), ok))
        finally:
            pin.close()
    for signal, gpio, what, ok in results:
        print("line %d %-14s GPIO %2d: %s %s" % (line, signal, gpio, what, "ok" if ok else "STUCK"))
    assert all(ok for *_rest, ok in results), (
        "a pin does not follow its pull or drive (see above); are the line cords unplugged?"
    )
