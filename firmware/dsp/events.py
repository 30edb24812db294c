"""The events a :class:`~firmware.dsp.detector.LineDsp` reports.

Frozen dataclasses; every one has ``t_us``, the clock time (µs, the clock of
the samples fed) at which the signal started, and ``to_json(t0_us=0)``
giving the dict printed by ``linekeeper analyze`` (``t`` in seconds from
``t0_us``, rounded to the millisecond).
"""

from dataclasses import dataclass


def _seconds(t_us, t0_us):
    return round((t_us - t0_us) / 1e6, 3)


@dataclass(frozen=True)
class DtmfDigit:
    """A dialled DTMF digit (off-hook): ``digit`` in ``0-9 * # A-D``; ``end_us`` when the tone stopped."""

    t_us: int
    digit: str
    end_us: int

    def to_json(self, t0_us=0):
        return {
            "t": _seconds(self.t_us, t0_us),
            "event": "dtmf",
            "digit": self.digit,
            "duration_ms": round((self.end_us - self.t_us) / 1000),
        }


@dataclass(frozen=True)
class CallerId:
    """A caller-ID message that decoded cleanly.

    ``standard``: ``"v23"``, ``"bell202"`` or ``"dtmf"``; ``number`` and
    ``name`` as sent; ``datetime`` ``"MMDDHHMM"``; ``absence`` ``"private"`` or
    ``"unavailable"`` when the number was withheld; ``message_waiting``
    True/False for a message-waiting indication.  Absent fields are ``None``.
    """

    t_us: int
    standard: str
    number: str = None
    name: str = None
    datetime: str = None
    absence: str = None
    message_waiting: bool = None

    def to_json(self, t0_us=0):
        out = {
            "t": _seconds(self.t_us, t0_us),
            "event": "caller_id",
            "standard": self.standard,
            "number": self.number,
            "name": self.name,
            "datetime": self.datetime,
            "absence": self.absence,
        }
        if self.message_waiting is not None:
            out["message_waiting"] = self.message_waiting
        return out


@dataclass(frozen=True)
class CallerIdError:
    """A caller-ID message was received but discarded.

    ``reason``: ``"checksum"`` (bad checksum), ``"framing"`` (broken or cut-off
    characters, DTMF caller ID without its terminator), ``"structure"``
    (checksum right but the content impossible).  ``standard`` as in
    :class:`CallerId`.
    """

    t_us: int
    reason: str
    standard: str = None

    def to_json(self, t0_us=0):
        return {
            "t": _seconds(self.t_us, t0_us),
            "event": "caller_id_error",
            "reason": self.reason,
            "standard": self.standard,
        }


@dataclass(frozen=True)
class AlertTone:
    """The 2130 + 2750 Hz dual-tone alert signal that precedes UK/ETSI caller ID."""

    t_us: int

    def to_json(self, t0_us=0):
        return {"t": _seconds(self.t_us, t0_us), "event": "alert_tone"}


@dataclass(frozen=True)
class Tone:
    """A call-progress tone: ``name`` in dial, busy, unobtainable (UK), ringback, congestion."""

    t_us: int
    name: str

    def to_json(self, t0_us=0):
        return {"t": _seconds(self.t_us, t0_us), "event": "tone", "name": self.name}


@dataclass(frozen=True)
class Speech:
    """Voice on an off-hook line after a quiet spell (the far end answering, a voice menu).

    ``provisional``: heard in a gap of the ringback after dialling, where it may be the
    caller's own voice (one capture channel carries both directions): the answer until
    an :class:`AnswerWithdrawn` says the next burst came on time after all."""

    t_us: int
    provisional: bool = False

    def to_json(self, t0_us=0):
        out = {"t": _seconds(self.t_us, t0_us), "event": "speech"}
        if self.provisional:
            out["provisional"] = True
        return out


@dataclass(frozen=True)
class AnswerWithdrawn:
    """A ringback burst began at ``t_us``, after the voice of a provisional :class:`Speech`:
    the far end was still being rung, so that voice was the caller's, not the answer."""

    t_us: int

    def to_json(self, t0_us=0):
        return {"t": _seconds(self.t_us, t0_us), "event": "answer_withdrawn"}


@dataclass(frozen=True)
class RingbackStopped:
    """Ringback heard after dialling stopped and did not come back when its cadence said
    it would: the far end answered, at ``t_us`` (the end of the last burst) at the earliest.
    ``cut``: that burst was cut short, so the answer was at ``t_us`` itself. After a
    provisional :class:`Speech` it confirms that answer (dated at the voice)."""

    t_us: int
    cut: bool = False

    def to_json(self, t0_us=0):
        return {"t": _seconds(self.t_us, t0_us), "event": "ringback_stopped", "cut": self.cut}


@dataclass(frozen=True)
class Quiet:
    """The off-hook line has had no sound since ``t_us`` (reported once it lasted
    :data:`~firmware.dsp.detector.QUIET_REPORT_MS`): the far end may have gone."""

    t_us: int

    def to_json(self, t0_us=0):
        return {"t": _seconds(self.t_us, t0_us), "event": "quiet"}


@dataclass(frozen=True)
class Sound:
    """Sound on the line again at ``t_us`` after a :class:`Quiet`."""

    t_us: int

    def to_json(self, t0_us=0):
        return {"t": _seconds(self.t_us, t0_us), "event": "sound"}


#: The kinds of event a LineDsp reports, by class name: the line supervisor tells
#: them apart by these names (it takes any object so named, a test's too).
KINDS = (
    "DtmfDigit",
    "CallerId",
    "CallerIdError",
    "AlertTone",
    "Tone",
    "Speech",
    "AnswerWithdrawn",
    "RingbackStopped",
    "Quiet",
    "Sound",
)
