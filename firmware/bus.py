"""A small in-process event bus, and the events components send over it.

Handlers run synchronously in the publisher's thread, in the order they
subscribed. A handler that raises is logged and counted in
:attr:`EventBus.errors` and the others still run, so one faulty consumer cannot
stop capture; with ``strict=True`` (tests, the simulator) the error is raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E", bound="Event")
Handler = Callable[[Any], None]


class EventBus:
    """Publish events to the handlers subscribed to their type (or a base class)."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.errors = 0
        self._handlers: dict[type, list[Handler]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Call ``handler(event)`` for every published ``event_type`` (or subclass)."""
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

    def unsubscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        with self._lock:
            self._handlers.get(event_type, []).remove(handler)

    def publish(self, event: Event) -> None:
        """Run every handler of ``event``'s type, in subscription order, in this thread."""
        with self._lock:
            handlers = [h for t in type(event).__mro__ for h in self._handlers.get(t, ())]
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                self.errors += 1
                if self.strict:
                    raise
                # The event's kind and line, not the event: a call's number (a card number
                # being keyed on after it, docs/pci.md) or a digit dialled is never logged.
                log.exception(
                    "event handler %r failed on %s (line %s)",
                    handler,
                    type(event).__name__,
                    getattr(event, "line", None),
                )


# ---------------------------------------------------------------- events
# Every event carries the line (1-based) and the clock time it happened at.


@dataclass(frozen=True)
class Event:
    line: int
    t_us: int


@dataclass(frozen=True)
class LineStateChanged(Event):
    """The supervisor's state for a line changed (see :mod:`firmware.calls.supervisor`)."""

    state: str
    previous: str


@dataclass(frozen=True)
class CallEvent(Event):
    """Something happened to a call; ``call`` is the supervisor's call record."""

    call: Any = field(compare=False)  # a firmware.calls.call.Call


@dataclass(frozen=True)
class CallStarted(CallEvent):
    pass


@dataclass(frozen=True)
class CallAnswered(CallEvent):
    """The call was answered at ``call.answered_us``. ``provisional``: an outbound call's
    answer by a voice in a ringback gap, which may be the caller's own; it is followed
    by :class:`CallAnswerConfirmed` or :class:`CallAnswerWithdrawn` (or the call ends,
    withdrawn first). Whatever the far end must hear (the consent notice) waits for the
    confirmation. ``assumed``: an outbound call taken as answered with no sign of the
    far end (``dial_timeout_ms`` after the last digit, no ringback heard): the answer
    stands, but the far end may not be on the line yet (a network's silent wait before
    it rings), so the notice waits for :class:`CallAnswerConfirmed` at the first sign
    of it (a voice, a key, a reversal, the ringback ending)."""

    provisional: bool = False
    assumed: bool = False


@dataclass(frozen=True)
class CallAnswerConfirmed(CallEvent):
    """A provisional answer stands (the ringback did not come back when due, a key was
    pressed, or the line reversed with it); ``call.answered_us`` is the answer. After an
    ``assumed`` answer: the first sign of the far end, at ``t_us``."""


@dataclass(frozen=True)
class CallEnded(CallEvent):
    pass


@dataclass(frozen=True)
class CallAnswerWithdrawn(CallEvent):
    """An outbound call's provisional answer (a voice in a ringback gap) was not one: the
    next ringback burst came on time at ``t_us``, so the voice was the caller's. The call's
    ``answered_us`` is None again and the line is back to dialling (the far end still
    rung); a later :class:`CallAnswered` is the real answer. Whatever acted on the answer
    undoes it (see :mod:`firmware.calls.supervisor`)."""


@dataclass(frozen=True)
class CallResumed(CallEvent):
    """A call ended by the silence clear goes on: sound came back while our side was
    still off-hook. The same call, its end and ``end_reason`` cleared again; ``t_us``
    is where the sound returned (see :mod:`firmware.calls.supervisor`)."""


@dataclass(frozen=True)
class CallUpdated(CallEvent):
    """A field of a live call changed (dialled digits, caller ID, ...)."""


@dataclass(frozen=True)
class DigitDialled(Event):
    digit: str
    method: str  # "pulse" or "dtmf"
    end_us: int | None = None  # when its tone ended (a DTMF digit)
    # Past the number (its shortest whole length where its start tells one, else the
    # longest number the country dials; from its first key where its start says nothing
    # and is 2-6, as a card's keyed with no number is): maybe a key, not the number (a
    # card number keyed straight on), which masking cuts out of the recording.
    past_number: bool = False


@dataclass(frozen=True)
class DialPulse(Event):
    """One loop-disconnect pulse of a digit being dialled: the loop broken at ``t_us``,
    made again at ``end_us``. The digit is known only ``interdigit_ms`` after its last
    pulse (:class:`DigitDialled`), too late for the recorder to cut out a digit of up to
    a second, so its pulses come one by one; ``past_number`` as :class:`DigitDialled`'s,
    for the digit this pulse is part of, whatever digit it turns out to be."""

    end_us: int
    past_number: bool = False


@dataclass(frozen=True)
class CallerIdReceived(Event):
    standard: str
    number: str | None = None
    name: str | None = None
    datetime: str | None = None
    absence: str | None = None
    message_waiting: bool | None = None


@dataclass(frozen=True)
class ToneDetected(Event):
    name: str  # "dial", "busy", "unobtainable", "ringback", "alert"


# The faults of a line (:class:`LineFault` kinds, alarms of the same kinds): while one is
# on, calls on the line cannot be made, received or recorded, or the box does not see them.
LINE_FAULTS = ("no_line_voltage", "stuck_off_hook", "ring_not_sensed", "line_no_dial_tone")


@dataclass(frozen=True)
class LineFault(Event):
    kind: str  # one of LINE_FAULTS
    active: bool


@dataclass(frozen=True)
class Alarm(Event):
    """Something an operator must see: ``kind`` is e.g. ``"disk_full"``; line 0 is the whole box.

    ``call_id`` / ``call_us``: the call an occurrence is about (a recording that failed,
    a notice not given), which the alarms page links to and the mail dates.
    Published when the alarm goes on (``active``) and when it goes off;
    :class:`firmware.alarms.AlarmBoard` keeps the ones that are on.
    """

    kind: str
    active: bool
    message: str = ""
    # The call it is about, when it is about one: its id, and when it began (wall µs).
    call_id: int | None = None
    call_us: int | None = None


@dataclass(frozen=True)
class UpdateState(Event):
    """A field update started (``state`` ``"running"``) or ended (its outcome:
    ``installed``, ``refused``, ``not_switched``, ``rolled_back``, ``failed``, or
    ``installing``: it stopped waiting while RAUC may still write the new slot, which
    is no failure yet and still says not to cut the power); line 0.

    Published by the recorder when ``linekeeper update`` tells it (control
    operation ``update_state``): the hook for the LED pattern and the alarm
    (:mod:`firmware.update.signals`). ``message`` is the report's explanation.
    ``install_wait_s``: the updater's wait for RAUC (``--install-wait-s``), which the LEDs'
    watch of an install that ended ``installing`` waits too (None: the default,
    :data:`firmware.update.rauc.INSTALL_WAIT_S`).
    """

    state: str
    message: str = ""
    version: str | None = None
    previous_version: str | None = None
    install_wait_s: float | None = None

    @property
    def failed(self) -> bool:
        return self.state not in ("running", "installing", "installed")


@dataclass(frozen=True)
class RecordingFinished(Event):
    """A recording is sealed: its file is final and its row says so.

    ``state`` is ``"complete"`` or ``"partial"`` (cut short: disk full, a
    failed write); ``duration_s`` is the audio stored, ``size_bytes`` the
    file's size. Published once per recording, after its row is written (or
    queued for writing), from the recorder's thread, for consumers that act
    on finished recordings (archive upload, reports) without touching the
    recorder. A handler must not block: it runs inside the recorder.
    """

    recording_id: str
    call_id: int
    state: str
    duration_s: float
    size_bytes: int
