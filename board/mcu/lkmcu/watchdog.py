"""A hardware watchdog for the Pi.

The Pi arms it with a timeout and kicks it; when a kick is late the MCU holds
the Pi's RUN line low for ``reset_ms`` (a hard reset) and disarms, so a Pi that
takes long to boot is not reset again before its software can arm the watchdog
once more. The Pi's own systemd watchdog covers the boot itself.
"""


class PiWatchdog:
    def __init__(self, reset_pin, reset_ms=200):
        self.reset_pin = reset_pin
        self.reset_ms = reset_ms
        self.timeout_ms = 0
        self.resets = 0
        self._deadline_ms = 0
        self._release_ms = -1
        reset_pin.value(1)

    @property
    def armed(self):
        return self.timeout_ms > 0

    def arm(self, timeout_s, now_ms):
        self.timeout_ms = timeout_s * 1000
        self._deadline_ms = now_ms + self.timeout_ms

    def kick(self, now_ms):
        if self.armed:
            self._deadline_ms = now_ms + self.timeout_ms

    def tick(self, now_ms):
        """True on the tick the Pi is reset."""
        if self._release_ms >= 0 and now_ms >= self._release_ms:
            self.reset_pin.value(1)
            self._release_ms = -1
        if self.armed and now_ms >= self._deadline_ms:
            self.timeout_ms = 0
            self.resets += 1
            self.reset_pin.value(0)
            self._release_ms = now_ms + self.reset_ms
            return True
        return False
