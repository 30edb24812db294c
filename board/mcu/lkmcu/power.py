"""The supply watch: a power-fail warning, and the hold-up time left.

The HAT runs the Pi from its 5 V input through a hold-up capacitor and a
converter that keeps working down to ``min_mv`` on the capacitor. When the
input falls under ``fail_mv`` for ``fail_ms`` the warning goes up; it comes
down only after the input has been back over ``good_mv`` for ``good_ms``
(so a flickering supply does not toggle the warning). The time left is the
energy in the capacitor above the converter's cut-off, divided by the load:
``t = C (V**2 - Vmin**2) / (2 P)``.
"""


class PowerWatch:
    def __init__(
        self, farads=0.0, load_mw=4000, min_mv=2500, fail_mv=4650, good_mv=4850, fail_ms=2, good_ms=500
    ):
        if good_mv <= fail_mv:
            raise ValueError("good_mv must be above fail_mv")
        self.farads = farads
        self.load_mw = load_mw
        self.min_mv = min_mv
        self.fail_mv = fail_mv
        self.good_mv = good_mv
        self.fail_ms = fail_ms
        self.good_ms = good_ms
        self.failing = False
        self._low_since = -1
        self._good_since = -1

    @property
    def has_holdup(self):
        return self.farads > 0

    def update(self, supply_mv, now_ms):
        """Take a supply sample; True while the power-fail warning is up."""
        if supply_mv < self.fail_mv:
            self._good_since = -1
            if self._low_since < 0:
                self._low_since = now_ms
            if now_ms - self._low_since >= self.fail_ms:
                self.failing = True
        else:
            self._low_since = -1
            if self.failing and supply_mv >= self.good_mv:
                if self._good_since < 0:
                    self._good_since = now_ms
                if now_ms - self._good_since >= self.good_ms:
                    self.failing = False
                    self._good_since = -1
            elif supply_mv < self.good_mv:
                self._good_since = -1
        return self.failing

    def holdup_ms(self, cap_mv):
        """Milliseconds the capacitor at ``cap_mv`` keeps the load running."""
        if not self.has_holdup or cap_mv <= self.min_mv or self.load_mw <= 0:
            return 0
        v = cap_mv / 1000
        vmin = self.min_mv / 1000
        joules = self.farads * (v * v - vmin * vmin) / 2
        return int(joules * 1000 * 1000 / self.load_mw)
