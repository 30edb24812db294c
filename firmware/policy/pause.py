"""PCI DSS pause and resume: card details never reach a recording.

A pause mutes the line in :class:`~firmware.capture.Capture`: from the next
capture period its channel is zeroed *before* it enters the line's ring
buffer, so what is said while paused exists nowhere but in that period's
buffer in RAM — not in the ring, not in a pre-roll, not in the recording
(which carries digital silence for the span), not in the DSP (which hears
silence, so digits keyed meanwhile are never decoded, let alone logged).

Only the resume listener hears the paused line: a DTMF receiver fed from the
capture callback that waits for the resume code and keeps nothing but the
last few keys, in memory, until the pause ends. A pause ends by the resume
code, the pause button again, the web UI, the call's end, or by itself after
``auto_resume_s``. Every pause and resume is audited (actions ``pause`` and
``resume``, target ``call:ID``) and kept on the call as a span
``{"from", "to", "by", "ended_by"}`` (wall times, ISO 8601 with ms): the
start of the first capture period that was silenced and of the first one let
through again, so the span is exactly the silence in the recording. A pause
keyed on the handset starts where its code ended: the recorder holds the
line's audio back long enough (:meth:`firmware.recording.recorder.Recorder.blank`) to
silence the code and what followed it before the capture's mute took over.
The audit entries carry the same times as the span.
"""

import logging
import threading
from dataclasses import dataclass

from firmware.calls.calllog import iso_ms

from .checks import Checked, check_bool, check_code, check_int, fail

log = logging.getLogger(__name__)

VIA = ("dtmf", "button", "web", "timeout", "call_end")


EDGE_SLACK_US = 1_000_000  # a capture period further than this from now: capture is idle
# A resume is audited when the capture says where the audio came back; if no capture
# period comes (the box is stopping), this long after the resume at the latest.
RESUME_AUDIT_WAIT_US = 1_000_000


class _Paused:
    def __init__(self, call, span, listener, from_wall_us):
        self.call = call
        self.from_wall_us = from_wall_us
        self.span = span
        self.listener = listener
        self.timer = None
        self.exact_from = False  # the span starts where the pause code ended, not at a period


class PauseControl:
    """The pauses of every line.

    :param capture: the box's :class:`~firmware.capture.Capture`
    :param clock: the box's clock (auto-resume timers, span times)
    :param audit: the :class:`~firmware.storage.audit.AuditLog`
    :param settings: :class:`~firmware.policy.settings.PciSettings` (see :meth:`apply`)
    :param on_change: ``f(call)`` after a pause span of ``call`` starts or ends
    :param recorder: the :class:`~firmware.recording.recorder.Recorder`, whose delay line
        lets a pause keyed on the handset start where the code ended, with the
        code itself silenced too (None: from the next capture period)
    """

    def __init__(self, capture, clock, audit, settings, on_change=lambda call: None, recorder=None):
        self.capture = capture
        self.recorder = recorder
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.on_change = on_change
        self._lock = threading.RLock()
        self._paused = {}
        self._last_span = {}  # line -> its latest span (the capture dates its edges)
        self._unaudited = {}  # line -> a resume waiting for the capture to date it
        capture.on_mute_change = self._muted_at

    def apply(self, settings):
        """New settings: they apply to pauses started from now on."""
        self.settings = settings

    def is_paused(self, line):
        with self._lock:
            return line in self._paused

    def paused_lines(self):
        with self._lock:
            return sorted(self._paused)

    def pause(self, line, call, via, actor, code_us=None):
        """Pause the recording of ``call`` on ``line``; False if it already is.

        :param via: "dtmf", "button" or "web"
        :param actor: who asked (a user name, "handset", "button")
        :param code_us: ``(start, end)`` clock times of the keyed pause code:
            the span starts at its end and the code's own tones are silenced,
            as far as the recorder's delay line still holds them
        """
        with self._lock:
            if line in self._paused:
                return False
            edge_us = self._edge_us()
            exact = False
            if code_us is not None and self.recorder is not None:
                exact = self.recorder.blank(line, code_us[0])
                if exact:
                    edge_us = code_us[1]
            now_wall_us = self.clock.wall_at(edge_us)
            span = {"from": iso_ms(now_wall_us), "to": None, "by": via, "ended_by": None}
            listener = None
            if self.settings.resume_code:
                listener = _ResumeListener(self.settings.resume_code, lambda: self._heard_resume(line, call))
            paused = _Paused(call, span, listener, now_wall_us)
            paused.exact_from = exact
            self._paused[line] = paused
            self.capture.mute(line, listener.feed if listener else None)
            # Counted from where the silence starts, as the span shows it.
            paused.timer = self.clock.call_at(
                edge_us + self.settings.auto_resume_s * 1_000_000,
                lambda: self.resume(line, "timeout", "system", call=call),
            )
            call.pause_spans.append(span)
            self._last_span[line] = span
        self._audit(actor, "pause", call, {"line": line, "via": via}, now_wall_us)
        self.on_change(call)
        return True

    def resume(self, line, via, actor, call=None):
        """End the pause on ``line`` (of ``call``, if given); False if there is none."""
        with self._lock:
            paused = self._paused.get(line)
            if paused is None or (call is not None and paused.call is not call):
                return False
            del self._paused[line]
            self.capture.unmute(line)
            if paused.timer is not None:
                paused.timer.cancel()
            # The audio comes back with the next capture period: that is the resume's
            # time, and the audit entry waits for the capture to say exactly when.
            to_wall_us = self.clock.wall_at(self._edge_us())
            paused.span["to"] = iso_ms(to_wall_us)
            paused.span["ended_by"] = via
            earlier = self._unaudited.pop(line, None)  # still waiting: written below
            pending = {"actor": actor, "paused": paused, "via": via, "to_wall_us": to_wall_us}
            pending["timer"] = self.clock.call_later(
                RESUME_AUDIT_WAIT_US, lambda: self._flush_resume(line, pending)
            )
            self._unaudited[line] = pending
        if earlier is not None:
            self._write_resume(line, earlier)
        self.on_change(paused.call)
        return True

    def _flush_resume(self, line, only=None):
        """Audit the resume of ``line`` still waiting (``only``: if it is that one)."""
        with self._lock:
            pending = self._unaudited.get(line)
            if pending is None or (only is not None and pending is not only):
                return
            del self._unaudited[line]
        self._write_resume(line, pending)

    def _write_resume(self, line, pending):
        pending["timer"].cancel()
        paused = pending["paused"]
        seconds = (pending["to_wall_us"] - paused.from_wall_us) / 1e6
        self._audit(
            pending["actor"],
            "resume",
            paused.call,
            {"line": line, "via": pending["via"], "paused_s": round(seconds, 3)},
            pending["to_wall_us"],
        )

    def flush(self):
        """Audit every resume still waiting for its capture period (the box is stopping)."""
        for line in list(self._unaudited):
            self._flush_resume(line)

    def _edge_us(self):
        """Clock time a mute or unmute asked for now takes effect: the next capture period."""
        now_us = self.clock.now_us()
        edge_us = self.capture.next_period_us()
        if edge_us is None or abs(edge_us - now_us) > EDGE_SLACK_US:
            return now_us
        return edge_us

    def _muted_at(self, line, muted, t_us):
        """The capture callback: the real edge of a pause span (a period boundary)."""
        with self._lock:
            span = self._last_span.get(line)
            paused = self._paused.get(line)
            exact = muted and paused is not None and paused.span is span and paused.exact_from
            if span is not None and not exact:
                span["from" if muted else "to"] = iso_ms(self.clock.wall_at(t_us))
            if not muted and self.recorder is not None:
                self.recorder.unblank(line, t_us)
            pending = self._unaudited.get(line) if not muted else None
            if pending is not None:
                pending["to_wall_us"] = self.clock.wall_at(t_us)
                # Not from the capture callback: the audit write waits for the card.
                self.clock.call_later(0, lambda: self._flush_resume(line, pending))

    def call_ended(self, call):
        """The call is over: a pause still on ends with it."""
        self.resume(call.line, "call_end", "system", call=call)

    def _heard_resume(self, line, call):
        # From the capture callback: resume on the clock's thread, not in the callback
        # (the audit write waits for the card). The periods until then stay muted.
        self.clock.call_later(0, lambda: self.resume(line, "dtmf", "handset", call=call))

    def _audit(self, actor, action, call, details, wall_us):
        target = "call:%d" % call.id if call.id is not None else "line:%d" % call.line
        try:
            self.audit.append(actor, action, target, details, int(wall_us))
        except Exception:
            # The pause itself must not fail because the trail could not be written;
            # the failure is logged for the operator (never with any digits).
            log.exception("could not audit %s of %s", action, target)


class _ResumeListener:
    """Listens to a paused line for ``code``; keeps only the last ``len(code)`` keys."""

    def __init__(self, code, on_code):
        from ..dsp.dtmf import DtmfReceiver  # loading libspandsp is work: not at import

        self.code = code
        self.on_code = on_code
        self._rx = DtmfReceiver()
        self._keys = ""
        self._done = False

    def feed(self, samples, t_us):
        if self._done:
            return
        for digit, _start, _end in self._rx.feed(samples):
            self._keys = (self._keys + digit)[-len(self.code) :]
            if self._keys == self.code:
                self._keys, self._done = "", True
                self.on_code()
                return


# ------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class PciSettings(Checked):
    """Pausing a recording while card details are given (PCI DSS).

    ``pause_code`` / ``resume_code``  keys typed on the handset (None: off)
    ``button``     the line's ``pause_button`` input toggles the pause
    ``auto_resume_s`` a pause ends by itself after this long (10 to 1800 s)
    ``mask_dtmf``  keys pressed after the answer are cut out of the recording
                   (silence), their places marked on the call, not the keys
    """

    _PATH = "policy.pci"

    pause_code: str = "*1"
    resume_code: str = "*2"
    button: bool = True
    auto_resume_s: int = 120
    mask_dtmf: bool = True

    def check(self, path):
        check_code(self.pause_code, path + ".pause_code")
        check_code(self.resume_code, path + ".resume_code")
        if self.pause_code is not None and self.pause_code == self.resume_code:
            fail(path + ".resume_code", "must differ from pause_code")
        check_bool(self.button, path + ".button")
        check_int(self.auto_resume_s, 10, 1800, path + ".auto_resume_s", "seconds")
        check_bool(self.mask_dtmf, path + ".mask_dtmf")


def pause_button_wired(hat_name):
    """Whether the HAT ``hat_name`` (the configuration's) wires a pause button on any line:
    a notice must not tell staff to press one the box has not got (the LK-4L has none).
    True when the HAT is not named (the simulator, whose scenario names it) or cannot be read."""
    if not hat_name:
        return True
    from board.hat import load_hat

    try:
        hat = load_hat(hat_name)
    except Exception:  # the box says what is wrong with its HAT file itself
        return True
    return any("pause_button" in line.pins for line in hat.lines)
