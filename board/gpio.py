"""The GPIO side of a line-interface HAT, on any gpiozero pin factory.

Both the Raspberry Pi board (lgpio pin factory) and the simulated board
(gpiozero's mock pin factory) use this class, so the firmware's edge handling
runs through the same gpiozero pin callbacks in both.
"""

from telephony.errors import HardwareError

from .base import INPUT_SIGNALS, Board


def hat_signals(hat):
    """The input signals ``hat`` wires on any of its lines, as a frozenset."""
    return frozenset(s for line in hat.lines for s in line.pins if s in INPUT_SIGNALS)


class GpioLines:
    """Inputs (and LEDs) of every line, as the HAT data file maps them.

    :param hat: a :class:`board.hat.Hat`
    :param factory: a gpiozero pin factory
    :param clock: a :class:`firmware.clock.Clock`; edge times are on it
    """

    def __init__(self, hat, factory, clock):
        self._hat = hat
        self._factory = factory
        self._clock = clock
        self._pins = {}  # (line, signal) -> (pin, PinSpec)
        self._on_edge = None
        self._callbacks = []

    def signals(self):
        """The input signals this HAT wires, as a frozenset."""
        return hat_signals(self._hat)

    def start(self, on_edge):
        """Claim the pins and call ``on_edge(line, signal, active, t_us)`` on changes."""
        self._on_edge = on_edge
        try:
            for hat_line in self._hat.lines:
                for signal, spec in hat_line.pins.items():
                    pin = self._factory.pin(spec.gpio)
                    self._pins[(hat_line.line, signal)] = (pin, spec)
                    if signal in INPUT_SIGNALS:
                        pin.function = "input"
                        pin.pull = spec.pull
                        pin.bounce = None  # we debounce in software, on our clock
                        pin.edges = "both"
                        # gpiozero holds only a weak reference to the callback.
                        callback = self._callback(hat_line.line, signal, spec)
                        self._callbacks.append(callback)
                        pin.when_changed = callback
                    else:
                        pin.function = "output"
                        pin.state = spec.active_low
        except Exception as exc:
            self.stop()
            raise HardwareError(
                "cannot set up GPIO %s for the HAT %r: %s" % (getattr(spec, "gpio", "?"), self._hat.id, exc)
            ) from exc

    def _callback(self, line, signal, spec):
        factory = self._factory
        clock = self._clock

        def changed(ticks, state):
            # Date the edge by the pin factory's own timestamp, moved onto our clock.
            age_s = factory.ticks_diff(factory.ticks(), ticks) if ticks is not None else 0
            t_us = clock.now_us() - int(age_s * 1e6)
            self._on_edge(line, signal, bool(state) != spec.active_low, t_us)

        return changed

    def has(self, line, signal):
        """Whether ``line`` has ``signal`` wired (after :meth:`start`)."""
        return (line, signal) in self._pins

    def read(self, line, signal):
        pin, spec = self._pins[(line, signal)]
        return bool(pin.state) != spec.active_low

    def pin(self, line, signal):
        """The gpiozero pin behind ``signal`` on ``line`` (the simulator drives it)."""
        return self._pins[(line, signal)]

    def set_led(self, line, on):
        entry = self._pins.get((line, "led"))
        if entry is not None:
            pin, spec = entry
            pin.state = bool(on) != spec.active_low

    def stop(self):
        for pin, _ in self._pins.values():
            try:
                pin.when_changed = None
                pin.close()
            except Exception:  # closing is best effort; the pins are going anyway
                pass
        self._pins.clear()
        self._callbacks.clear()


class HatBoard(Board):
    """A board whose lines are wired as a HAT data file says (Pi and simulator).

    Subclasses set ``self.gpio`` (a :class:`GpioLines`) when they start.
    """

    def __init__(self, hat):
        self.hat = hat
        self.rate = hat.audio.rate
        self.channels = hat.audio.channels
        self.gpio = None
        self._channel = {line.line: line.capture_channel for line in hat.lines}

    def read(self, line, signal):
        return self.gpio.read(line, signal)

    def channel_of(self, line):
        return self._channel[line]

    def set_led(self, line, on):
        self.gpio.set_led(line, on)
