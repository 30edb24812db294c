"""Live status of every line, for the web UI (a read-only view of the bus)."""

import threading

from firmware.bus import CallEnded, CallEvent, LineFault, LineStateChanged
from firmware.calls.calllog import dialling, iso_ms
from firmware.calls.supervisor import dialling_prefix, shortest_number, stored_number
from firmware.policy import cards


class LineStatus:
    """Keeps each line's latest state, live call and faults.

    ``version`` increases with every change, so a page can wait for news.
    """

    def __init__(self, lines, clock, country=lambda: "uk"):
        self._clock = clock
        self._country = country  # () -> the box's country now (its numbering plan)
        self._lock = threading.Condition()
        self.version = 0
        self._lines = {
            line: {"line": line, "state": "idle", "since": None, "call": None, "faults": [], "learned": None}
            for line in range(1, lines + 1)
        }

    def attach(self, bus):
        bus.subscribe(LineStateChanged, self._state)
        bus.subscribe(CallEvent, self._call)
        bus.subscribe(LineFault, self._fault)

    def _changed(self):
        self.version += 1
        self._lock.notify_all()

    def _state(self, ev):
        with self._lock:
            entry = self._lines[ev.line]
            entry["state"] = ev.state
            entry["since"] = iso_ms(self._clock.wall_at(ev.t_us))
            self._changed()

    def _call(self, ev):
        call = ev.call
        with self._lock:
            entry = self._lines[ev.line]
            if isinstance(ev, CallEnded):
                entry["call"] = None
            else:
                entry["call"] = {
                    "id": call.id,
                    "direction": call.direction,
                    "number": self._number(call),
                    "name": call.name,
                    "absence": call.absence,
                    "started_at": iso_ms(self._clock.wall_at(call.started_us)),
                    "answered": call.answered,
                    # The recording policy's verdict so far (the dashboard says
                    # whether the call is being recorded, and why not).
                    "policy_decision": getattr(call, "policy_decision", None),
                    "policy_reason": getattr(call, "policy_reason", None),
                }
            self._changed()

    def _number(self, call):
        """The call's number as the live view shows it (PCI DSS): as the call log keeps it
        (:func:`~firmware.calls.supervisor.stored_number`), and while it is being dialled
        without the digits from where a card number keyed on may begin."""
        country = self._country()
        number = stored_number(call, country)
        if not number or not dialling(call):
            return number
        outside = getattr(call, "outside_line", "")
        return cards.mask_unfinished(
            number, shortest_number(number, country, outside), dialling_prefix(number, country, outside)
        )

    def set_learned(self, line, learned):
        """What the line check learned of the line's adapter (``linecheck.summary``)."""
        with self._lock:
            self._lines[line]["learned"] = dict(learned) if learned else None
            self._changed()

    def _fault(self, ev):
        with self._lock:
            faults = self._lines[ev.line]["faults"]
            if ev.active and ev.kind not in faults:
                faults.append(ev.kind)
            elif not ev.active and ev.kind in faults:
                faults.remove(ev.kind)
            self._changed()

    def snapshot(self):
        """A JSON-ready copy: ``{"version", "now", "clock_synced", "lines": [...]}``."""
        with self._lock:
            return {
                "version": self.version,
                "now": iso_ms(self._clock.wall_us()),
                "clock_synced": bool(self._clock.synchronised),
                "lines": [dict(e, faults=list(e["faults"])) for e in self._lines.values()],
            }

    def wait_for_change(self, version, timeout_s):
        """Block until ``version`` is out of date or ``timeout_s`` passes."""
        with self._lock:
            self._lock.wait_for(lambda: self.version != version, timeout_s)
            return self.version
