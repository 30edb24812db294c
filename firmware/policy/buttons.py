"""The lines' push buttons (``record_button``, ``pause_button``): debounced presses.

The board delivers raw button edges like any other input; a press is a
confirmed change to active (:class:`~firmware.calls.debounce.Debouncer`, dated by
its first edge). Releases do nothing. Edges come from the GPIO thread and
confirmations from the clock's: one lock serialises both.
"""

import threading

from board.signals import BUTTON_SIGNALS
from firmware.calls.debounce import Debouncer

KINDS = {"record_button": "record", "pause_button": "pause"}


class Buttons:
    """Presses of every line's buttons.

    :param clock: the box's clock
    :param on_press: ``f(line, kind, t_us)``, ``kind`` "record" or "pause"
    :param debounce_ms: how long a button must stay pressed to count
    """

    def __init__(self, clock, on_press, debounce_ms=15):
        self._clock = _Locked(clock, self)
        self._on_press = on_press
        self._debounce_us = debounce_ms * 1000
        self._inputs = {}
        self.lock = threading.RLock()

    def edge(self, line, signal, active, t_us):
        """A raw edge of button ``signal`` on ``line``."""
        if signal not in BUTTON_SIGNALS:
            raise ValueError("%r is not a button" % (signal,))
        with self.lock:
            key = (line, signal)
            if key not in self._inputs:
                self._inputs[key] = Debouncer(
                    self._clock, self._debounce_us, self._changed(line, KINDS[signal])
                )
            self._inputs[key].edge(active, t_us)

    def close(self):
        with self.lock:
            for debouncer in self._inputs.values():
                debouncer.cancel()

    def _changed(self, line, kind):
        def changed(active, t_us):
            if active:
                self._on_press(line, kind, t_us)

        return changed


class _Locked:
    """The clock, with every callback run under the buttons' lock."""

    def __init__(self, clock, owner):
        self._clock = clock
        self._owner = owner

    def call_at(self, t_us, fn):
        def locked():
            with self._owner.lock:
                fn()

        return self._clock.call_at(t_us, locked)
