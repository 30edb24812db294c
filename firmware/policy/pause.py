"""PCI DSS pause and resume: card details never reach a recording.

A pause mutes the line in :class:`~firmware.capture.Capture`: from the next
capture period its channel is zeroed *before* it enters the line's ring
buffer, so what is said while paused exists nowhere but in that period's
buffer in RAM — not in the ring, not in a pre-roll, not in the recording
(which carries digital silence for the span), not in the DSP (which hears
silence, so digits keyed meanwhile are never decoded, let alone logged).

Only the resume listener hears the paused line: a DTMF receiver fed from the
capture callback that waits for the resume code (and the line's personal-call
code, which marks the call personal as it would unpaused, and its on-demand
record code, which asks for the recording as the pause ends) and keeps nothing
but the last few keys, in memory, until the pause ends. A pause ends by the resume
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

A pause outlives the recorder. The paused lines are kept on the card
(``DATA_DIR/paused-lines.json``, with when each pause ends by itself): a
restart of the recorder, a crash or a power cut in the middle of a payment
does not end it. The next start mutes those lines before the capture starts
(:meth:`PauseControl.restore`), and a call found under way on one of them
(``in_progress_at_start``) goes on paused (:meth:`PauseControl.adopt`, a
span ``by`` ``restart``, audited) until the resume code, the button, the web
UI or the time limit, counted from the first pause; a line found idle lets
its pause go (:meth:`PauseControl.release`). Only a pause that really ended
is taken off the file: not one the box's own stop or the power cut ended.
"""

import json
import logging
import os
import threading
from dataclasses import dataclass

from firmware.calls.calllog import iso_ms
from firmware.storage import fsutil
from firmware.storage.audit import with_address

from .checks import Checked, check_bool, check_code, check_int, fail

log = logging.getLogger(__name__)

VIA = ("dtmf", "button", "web", "timeout", "call_end", "restart")
MARKS = "paused-lines.json"  # in the data directory: the lines paused, until when
MARKS_BYTES = 4096  # one block, written in place (64 lines' marks fit in it)


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
        self.until_wall_us = None  # when it ends by itself (auto_resume_s), wall time


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
    :param data_dir: where the paused lines are kept across a restart (:data:`MARKS`);
        None: not kept
    :param personal_code: ``f(line)``, the personal-call code that works on ``line``, or None;
        the pause's listener hears it too, as the detectors hear nothing of a paused line
    :param on_personal: ``f(line)``, called (on the clock's thread) when it is keyed while paused
    :param record_code: ``f(line)``, the on-demand record code that works on ``line``, or
        None; the listener hears it too
    :param on_record: ``f(line)``, called (on the clock's thread) as a pause ends, but by
        the call's end, if the record code was keyed during it: the request takes effect
        once the line is heard again, so the recording asked for holds nothing of the pause
    """

    def __init__(
        self,
        capture,
        clock,
        audit,
        settings,
        on_change=lambda call: None,
        recorder=None,
        data_dir=None,
        personal_code=lambda line: None,
        on_personal=lambda line: None,
        record_code=lambda line: None,
        on_record=lambda line: None,
    ):
        self.personal_code = personal_code
        self.on_personal = on_personal
        self.record_code = record_code
        self.on_record = on_record
        self._record_asked = set()  # lines whose record code was keyed while paused
        self.capture = capture
        self._marks = os.path.join(data_dir, MARKS) if data_dir else None
        self.stopping = False  # the box is stopping: a pause it ends stays on the card
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

    def pause(self, line, call, via, actor, code_us=None, address=None):
        """Pause the recording of ``call`` on ``line``; False if it already is.

        :param via: "dtmf", "button" or "web"
        :param actor: who asked (a user name, "handset", "button")
        :param address: the web client's address (``via`` "web"), for the audit entry
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
            listener = self._listener(line, call)
            paused = _Paused(call, span, listener, now_wall_us)
            paused.exact_from = exact
            self._paused[line] = paused
            self.capture.mute(line, listener.feed if listener else None)
            # Counted from where the silence starts, as the span shows it.
            until_us = edge_us + self.settings.auto_resume_s * 1_000_000
            paused.until_wall_us = self.clock.wall_at(until_us)
            paused.timer = self.clock.call_at(
                until_us,
                lambda: self.resume(line, "timeout", "system", call=call),
            )
            call.pause_spans.append(span)
            self._last_span[line] = span
            self._keep_marks()
        self._audit(actor, "pause", call, with_address({"line": line, "via": via}, address), now_wall_us)
        self.on_change(call)
        return True

    def resume(self, line, via, actor, call=None, address=None):
        """End the pause on ``line`` (of ``call``, if given); False if there is none.
        ``address``: the web client's, for the audit entry (as :meth:`pause`)."""
        with self._lock:
            paused = self._paused.get(line)
            if paused is None or (call is not None and paused.call is not call):
                return False
            del self._paused[line]
            asked = line in self._record_asked
            self._record_asked.discard(line)
            if asked and via != "call_end":
                self.clock.call_later(0, lambda: self.on_record(line))
            self.capture.unmute(line)
            if paused.timer is not None:
                paused.timer.cancel()
            if not self.stopping:
                self._keep_marks()
            if paused.call is None:  # restored at the start, no call found (yet): no span
                if via != "call_end":  # asked for (the web UI, the keypad, the time limit)
                    self._audit_line(actor, line, via, address)
                return True
            # The audio comes back with the next capture period: that is the resume's
            # time, and the audit entry waits for the capture to say exactly when.
            to_wall_us = self.clock.wall_at(self._edge_us())
            paused.span["to"] = iso_ms(to_wall_us)
            paused.span["ended_by"] = via
            earlier = self._unaudited.pop(line, None)  # still waiting: written below
            pending = {
                "actor": actor,
                "paused": paused,
                "via": via,
                "to_wall_us": to_wall_us,
                "address": address,
            }
            pending["timer"] = self.clock.call_later(
                RESUME_AUDIT_WAIT_US, lambda: self._flush_resume(line, pending)
            )
            self._unaudited[line] = pending
        if earlier is not None:
            self._write_resume(line, earlier)
        self.on_change(paused.call)
        return True

    # ---------------------------------------------------------- across a restart
    def _keep_marks(self):
        """Put the paused lines on the card (under the lock).

        The file is made once, a block long, when the box starts (:meth:`restore`), and
        then written in place: a full card cannot refuse it, as it could a new file, so
        a pause is never on only in memory while the card fills up. A write torn by a
        power cut leaves it unreadable, which mutes every line at the next start."""
        if self._marks is None:
            return
        marks = {str(line): {"until_wall_us": p.until_wall_us} for line, p in sorted(self._paused.items())}
        data = json.dumps(marks).encode().ljust(MARKS_BYTES)
        try:
            try:
                fd = os.open(self._marks, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                fsutil.atomic_write(self._marks, data)
                return
            try:
                os.pwrite(fd, data, 0)
                os.fdatasync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            # The pause itself goes on; only a restart would forget it.
            log.error("cannot keep the paused lines on the card: %s", exc)

    def restore(self):
        """Mute again the lines the last run left paused, before the capture starts.

        Returns the lines muted: each waits for :meth:`adopt` (a call under way on it)
        or :meth:`release`. A pause whose time limit passed while the box was down
        is over, as it would have been.
        """
        if self._marks is None:
            return []
        try:
            with open(self._marks, "rb") as f:
                marks = json.loads(f.read().rstrip(b" "))
            lines = {int(k): int(v["until_wall_us"]) for k, v in marks.items()}
        except FileNotFoundError:
            with self._lock:
                self._keep_marks()  # made now, while the card has room: written in place after
            return []
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # Unreadable: every line stays muted until each is settled by adopt/release,
            # the side PCI DSS asks to err on.
            log.error("cannot read the paused lines kept at the last stop (%s): muting every line", exc)
            lines = {line: None for line in self.capture.lines}
        now_us = self.clock.now_us()
        now_wall_us = self.clock.wall_at(now_us)
        restored = []
        with self._lock:
            for line, until_wall_us in sorted(lines.items()):
                if until_wall_us is not None and until_wall_us <= now_wall_us:
                    continue
                if until_wall_us is None:
                    until_wall_us = now_wall_us + self.settings.auto_resume_s * 1_000_000
                listener = self._listener(line, None)
                paused = _Paused(None, None, listener, now_wall_us)
                paused.until_wall_us = until_wall_us
                paused.timer = self.clock.call_at(
                    now_us + (until_wall_us - now_wall_us),
                    lambda line=line: self.resume(line, "timeout", "system"),
                )
                self._paused[line] = paused
                self.capture.mute(line, listener.feed if listener else None)
                restored.append(line)
            self._keep_marks()
        return restored

    def adopt(self, line, call):
        """``call``, found under way on ``line`` at the start, goes on paused (its span
        ``by`` ``restart``, from its start); False if the line has no restored pause."""
        with self._lock:
            paused = self._paused.get(line)
            if paused is None or paused.call is not None:
                return False
            paused.call = call
            from_wall_us = self.clock.wall_at(call.started_us)
            paused.from_wall_us = from_wall_us
            paused.span = {"from": iso_ms(from_wall_us), "to": None, "by": "restart", "ended_by": None}
            call.pause_spans.append(paused.span)
            self._last_span[line] = paused.span
        self._audit("system", "pause", call, {"line": line, "via": "restart"}, from_wall_us)
        self.on_change(call)
        return True

    def release(self, line):
        """The line restored paused has no call under way: its pause ended with the call
        the restart cut (nothing to audit: that call's span ended with it)."""
        with self._lock:
            paused = self._paused.get(line)
            if paused is None or paused.call is not None:
                return False
        return self.resume(line, "call_end", "system")

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
            with_address(
                {"line": line, "via": pending["via"], "paused_s": round(seconds, 3)}, pending["address"]
            ),
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

    def _listener(self, line, call):
        """What listens to ``line`` while it is paused (None: nothing to hear): the resume
        code, and the line's personal-call code, which marks the call as the staff member
        asked (heard by nobody else while the line is muted)."""
        resume, codes = self.settings.resume_code, {}
        if resume:
            codes[resume] = lambda: self._heard_resume(line, call)
        personal = self.personal_code(line)
        if personal:
            codes[personal] = lambda: self.clock.call_later(0, lambda: self.on_personal(line))
        record = self.record_code(line)
        if record:
            codes[record] = lambda: self._record_asked.add(line)
        return _ResumeListener(codes, resume) if codes else None

    def _heard_resume(self, line, call):  # call None: a pause restored at the start
        # From the capture callback: resume on the clock's thread, not in the callback
        # (the audit write waits for the card). The periods until then stay muted.
        self.clock.call_later(0, lambda: self.resume(line, "dtmf", "handset", call=call))

    def _audit_line(self, actor, line, via, address=None):
        """A resume of a pause the start restored before its call was found: no call to
        name, so the line is the target."""
        try:
            wall_us = int(self.clock.wall_at(self.clock.now_us()))
            details = with_address({"line": line, "via": via}, address)
            self.audit.append(actor, "resume", "line:%d" % line, details, wall_us)
        except Exception:
            log.exception("could not audit the resume of line %d", line)

    def _audit(self, actor, action, call, details, wall_us):
        target = "call:%d" % call.id if call.id is not None else "line:%d" % call.line
        try:
            self.audit.append(actor, action, target, details, int(wall_us))
        except Exception:
            # The pause itself must not fail because the trail could not be written;
            # the failure is logged for the operator (never with any digits).
            log.exception("could not audit %s of %s", action, target)


class _ResumeListener:
    """Listens to a paused line for the codes of ``codes`` (``{code: on_code}``); keeps only
    the last few keys (the longest code's length). ``resume``, the resume code, is the last
    it hears; after another (the personal-call code, the record code) it goes on listening."""

    def __init__(self, codes, resume):
        from ..dsp.dtmf import DtmfReceiver  # loading libspandsp is work: not at import

        self.codes = codes
        self._resume = resume
        self._longest = max(len(code) for code in codes)
        self._rx = DtmfReceiver()
        self._keys = ""
        self._done = False

    def feed(self, samples, t_us):
        if self._done:
            return
        for digit, _start, _end in self._rx.feed(samples):
            self._keys = (self._keys + digit)[-self._longest :]
            for code, on_code in self.codes.items():
                if self._keys.endswith(code):
                    self._keys = ""
                    self._done = code == self._resume
                    on_code()
                    break
            if self._done:
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

    def unkeyable(self):
        """``{field: why}`` for each code (``"pause_code"``, ``"resume_code"``) that could
        not be keyed, or would be keyed by chance (:func:`code_unkeyable`): what
        ``linekeeper config import`` refuses; {} when both are fine or off."""
        return self._codes(code_unkeyable)

    def refused(self):
        """``{field: why}`` for each code the Rules page refuses (:func:`code_refusal`: the
        unkeyable ones and a code of digits with no ``*`` or ``#`` first); {} when both are
        fine or off. The configuration file still takes such a code (a box set so before
        loads as it was): the box raises an alarm for it (``pci_code_unkeyable``)."""
        return self._codes(code_refusal)

    def _codes(self, judge):
        out = {}
        for name, what in (("pause_code", "pause"), ("resume_code", "resume")):
            why = judge(getattr(self, name), what)
            if why:
                out[name] = why
        return out


def code_unkeyable(code, what):
    """Why ``code`` (DTMF keys, or None: off) cannot be relied on as the ``what`` ("pause",
    "resume") code for card payments because of its keys, or None. A code is keyed on the
    phone by whoever takes the card: A-D are not on most handsets' keypads, so a code
    holding one could not be keyed when card details are read out; and * or # alone is
    keyed for much else on a call (a menu's choice, the end of a number), which would pause
    or resume the recording by chance. ``linekeeper config import`` refuses such a code."""
    if not code:
        return None
    if any(key in "ABCD" for key in code.upper()):
        return (
            "The %s code %s has A, B, C or D, keys most handsets do not have, so it could not "
            "be keyed: use 0-9, * and # only, such as *1." % (what, code)
        )
    if code in ("*", "#"):
        return (
            "The %s code cannot be %s alone: callers key it for menus and to end numbers, which "
            "would %s the recording by chance. Add a digit, such as %s1." % (what, code, what, code)
        )
    return None


def code_refusal(code, what):
    """Why the Rules page refuses ``code`` (DTMF keys, or None: off) as the ``what``
    ("pause" or "resume") code, or None: an unkeyable code (:func:`code_unkeyable`), or a
    code of digits with no * or # first, which may be keyed within a card number or its
    security code, so a resume code so ends a pause in the middle of the card details (as
    the personal-call code, it starts with * or #). ``linekeeper config import`` takes
    such a code of digits and says this of it; the box's alarm (``pci_code_unkeyable``)
    says it of any code in these words."""
    unkeyable = code_unkeyable(code, what)
    if unkeyable or not code:
        return unkeyable
    if code[0] not in "*#":
        return "The %s code %s does not start with * or #: %s Start it with * or #, such as *%s." % (
            what,
            code,
            _DIGITS_CODE_RISK[what],
            code.rstrip("*#")[:7],
        )
    return None


# Why a code of digits (no * or # before them) is refused, by the code's kind.
_DIGITS_CODE_RISK = {
    "resume": "a caller keying a card number or its security code while the recording is "
    "paused may key those digits, which would resume the recording in the middle of the card "
    "details.",
    "pause": "the same digits are keyed in numbers dialled and in menus, which would pause the "
    "recording by chance.",
}


def pause_button_wired(hat_name):
    """Whether the HAT ``hat_name`` (the configuration's) wires a pause button on any line:
    a notice must not tell staff to press one the box has not got (the LK-4L has none).
    True when the HAT is not named (the simulator, whose scenario names it) or cannot be read."""
    return button_wired(hat_name, "pause_button")


def button_wired(hat_name, signal):
    """Whether the HAT ``hat_name`` wires the button ``signal`` (``"pause_button"``,
    ``"record_button"``) on any line, as :func:`pause_button_wired` says it."""
    if not hat_name:
        return True
    from board.hat import load_hat

    try:
        hat = load_hat(hat_name)
    except Exception:  # the box says what is wrong with its HAT file itself
        return True
    return any(signal in line.pins for line in hat.lines)
