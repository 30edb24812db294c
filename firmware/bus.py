"""A small in-process event bus, and the events components send over it.

Handlers run synchronously in the publisher's thread, in the order they
subscribed. A handler that raises is logged and counted in
:attr:`EventBus.errors` and the others still run, so one faulty consumer cannot
stop capture; with ``strict=True`` (tests, the simulator) the error is raised.
"""

import logging
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class EventBus:
    def __init__(self, strict=False):
        self.strict = strict
        self.errors = 0
        self._handlers = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type, handler):
        """Call ``handler(event)`` for every published ``event_type`` (or subclass)."""
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

    def unsubscribe(self, event_type, handler):
        with self._lock:
            self._handlers.get(event_type, []).remove(handler)

    def publish(self, event):
        with self._lock:
            handlers = [h for t in type(event).__mro__ for h in self._handlers.get(t, ())]
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                self.errors += 1
                if self.strict:
                    raise
                log.exception("event handler %r failed on %r", handler, event)


# ---------------------------------------------------------------- events
# Every event carries the line (1-based) and the clock time it happened at.


@dataclass(frozen=True)
class Event:
    line: int
    t_us: int


@dataclass(frozen=True)
class LineStateChanged(Event):
    """The supervisor's state for a line changed (see :mod:`firmware.supervisor`)."""
    state: str
    previous: str


@dataclass(frozen=True)
class CallEvent(Event):
    """Something happened to a call; ``call`` is the supervisor's call record."""
    call: object = field(compare=False)


@dataclass(frozen=True)
class CallStarted(CallEvent):
    pass


@dataclass(frozen=True)
class CallAnswered(CallEvent):
    pass


@dataclass(frozen=True)
class CallEnded(CallEvent):
    pass


@dataclass(frozen=True)
class CallUpdated(CallEvent):
    """A field of a live call changed (dialled digits, caller ID, ...)."""


@dataclass(frozen=True)
class DigitDialled(Event):
    digit: str
    method: str  # "pulse" or "dtmf"


@dataclass(frozen=True)
class CallerIdReceived(Event):
    standard: str
    number: str = None
    name: str = None
    datetime: str = None
    absence: str = None
    message_waiting: bool = None


@dataclass(frozen=True)
class ToneDetected(Event):
    name: str  # "dial", "busy", "unobtainable", "ringback", "alert"


@dataclass(frozen=True)
class LineFault(Event):
    kind: str  # "no_line_voltage", "stuck_off_hook", "ring_not_sensed"
    active: bool
