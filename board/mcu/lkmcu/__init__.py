"""Firmware of the HAT's supervisor MCU (an RP2040 running MicroPython).

Every module in this package is valid MicroPython *and* CPython: it touches no
hardware itself. ``main.py`` beside the package builds the real pins, ADCs, I2C
target and watchdog from ``machine`` and hands them to :class:`core.Supervisor`;
the simulated board and the tests hand it fakes (``board.mcu.fakes``) and run it
on the simulated clock, so the Pi sees exactly what the real HAT would show it.
"""

VERSION = (1, 0, 0)
