"""Status LED patterns and the buzzer, driven from the MCU's tick.

A pattern is a cycle of (level, ms) steps started when the Pi selects it, so
the same pattern always looks the same whatever the tick rate.
"""

from . import regmap

PATTERNS = {
    regmap.LED_OFF: ((0, 1000),),
    regmap.LED_ON: ((1, 1000),),
    regmap.LED_SETUP: ((1, 500), (0, 500)),
    regmap.LED_FAULT: ((1, 100), (0, 100)),
    regmap.LED_RECORDING: ((1, 100), (0, 100), (1, 100), (0, 1700)),
    regmap.LED_UPDATING: ((1, 1000), (0, 250)),
    regmap.LED_POWER_FAIL: ((1, 50), (0, 950)),
    regmap.LED_UPDATE_FAILED: ((1, 100), (0, 100), (1, 100), (0, 100), (1, 600), (0, 600)),
}


def level_at(pattern, elapsed_ms):
    """The LED level ``elapsed_ms`` after ``pattern`` started."""
    steps = PATTERNS.get(pattern, PATTERNS[regmap.LED_FAULT])
    period = 0
    for step in steps:
        period += step[1]
    t = elapsed_ms % period
    for level, ms in steps:
        if t < ms:
            return level
        t -= ms
    return 0


class Indicator:
    """The LED and buzzer outputs (``machine.Pin``-like, ``.value(v)``)."""

    def __init__(self, led_pin, buzzer_pin):
        self.led_pin = led_pin
        self.buzzer_pin = buzzer_pin
        self.pattern = regmap.LED_SETUP
        self._since_ms = 0
        self._buzz_until_ms = -1

    def select(self, pattern, now_ms):
        if pattern != self.pattern:
            self.pattern = pattern
            self._since_ms = now_ms

    def buzz(self, ms, now_ms):
        self._buzz_until_ms = now_ms + ms

    def tick(self, now_ms):
        self.led_pin.value(level_at(self.pattern, now_ms - self._since_ms))
        self.buzzer_pin.value(1 if now_ms < self._buzz_until_ms else 0)
