"""CPython stand-ins for the MCU's hardware, for the simulator and the tests.

:class:`Pin` and :class:`Adc` answer like ``machine.Pin`` and a millivolt
reading; :class:`Pin` remembers every change with the time it was made so a
test can check sequences (``changes``). :func:`machine_module` builds a small
fake ``machine`` module for running ``main.py`` itself under CPython, and
:func:`time_module` a fake MicroPython ``time`` that stops it.
"""

import types


class Pin:
    """An MCU pin: ``value()`` reads, ``value(v)`` drives; changes are logged."""

    def __init__(self, level=0, clock_ms=None, on_change=None):
        self.level = level
        self.clock_ms = clock_ms
        self.on_change = on_change
        self.changes = []

    def value(self, v=None):
        if v is None:
            return self.level
        v = 1 if v else 0
        if v != self.level:
            self.level = v
            t = self.clock_ms() if self.clock_ms else None
            self.changes.append((t, v))
            if self.on_change:
                self.on_change(v)
        return None


class Millivolts:
    """A settable voltage, read by the firmware as a callable."""

    def __init__(self, mv):
        self.mv = mv

    def __call__(self):
        return self.mv


class Reset(Exception):  # noqa: N818 (what happened, not an error)
    """``machine.reset()`` under CPython: the MCU restarts (the test runs main.py again)."""


class MemoryStore:
    """The vault's flash file, in memory."""

    def __init__(self, data=None):
        self.data = data
        self.saves = 0

    def load(self):
        return self.data

    def save(self, data):
        self.data = bytes(data)
        self.saves += 1


def machine_module(adc_mv=None):
    """A fake ``machine`` with the classes ``main.py`` uses.

    ``adc_mv`` maps an ADC channel to the millivolts at its pin (before the
    board's divider).
    """
    adc_mv = dict(adc_mv or {})
    made = {"pins": {}, "targets": [], "wdt": [], "resets": 0}

    class FakeMachinePin(Pin):
        OUT = 1
        IN = 0
        OPEN_DRAIN = 2

        def __init__(self, number, mode=None):
            super().__init__(level=1 if mode == FakeMachinePin.IN else 0)
            made["pins"][number] = self

    class ADC:
        def __init__(self, channel):
            self.channel = channel

        def read_u16(self):
            return min(65535, adc_mv.get(self.channel, 0) * 65535 // 3300)

    class I2CTarget:
        def __init__(self, bus, addr, *, mem=None, scl=None, sda=None, **kw):
            self.bus, self.addr, self.mem = bus, addr, mem
            made["targets"].append(self)

    class WDT:
        def __init__(self, timeout):
            self.timeout = timeout
            self.feeds = 0
            made["wdt"].append(self)

        def feed(self):
            self.feeds += 1

    def reset():
        made["resets"] += 1
        raise Reset

    module = types.ModuleType("machine")
    module.reset = reset
    module.Pin = FakeMachinePin
    module.ADC = ADC
    module.I2CTarget = I2CTarget
    module.WDT = WDT
    module.made = made
    return module


class StopLoop(Exception):  # noqa: N818 (what happened, not an error)
    """Raised by :func:`time_module`'s ``sleep_ms`` once its time is up: ends ``main.py``'s loop."""


def time_module(stop_after_ms):
    """A fake MicroPython ``time`` whose clock moves only as ``sleep_ms`` sleeps; a sleep
    that takes it past ``stop_after_ms`` raises :class:`StopLoop`. ``now["ms"]`` is its clock."""
    now = {"ms": 0}

    def sleep_ms(ms):
        now["ms"] += ms
        if now["ms"] > stop_after_ms:
            raise StopLoop

    module = types.ModuleType("time")
    module.ticks_ms = lambda: now["ms"]
    module.ticks_add = lambda a, b: a + b
    module.ticks_diff = lambda a, b: a - b
    module.sleep_ms = sleep_ms
    module.now = now
    return module
