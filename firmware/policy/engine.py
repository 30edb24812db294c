"""The policy at work on every call: decision, notice, recording, on-demand, pause, tags.

:class:`CallPolicy` listens on the bus and drives the recorder (which, in the
box, records nothing by itself)::

    CallStarted (out) ──▶ "always" lines: record from off-hook (held in RAM until
                          the outbound notice is given, if one is required)
    CallAnswered ───────▶ decide (firmware.policy.rules) ──▶ notice
                          (firmware.policy.consent) ──▶ record / skip / wait
    CallAnswered (provisional: a voice in ringback, maybe the caller's)
                     ───▶ decide only; the notice and the recording wait for
    CallAnswerConfirmed ▶ notice ──▶ record / skip
    CallAnswerWithdrawn ▶ nothing was given: the call waits for its real answer
    CallAnswered (assumed: the dial timeout's, no sign of the far end)
                     ───▶ decide only; the notice and the recording wait for
    CallAnswerConfirmed ▶ (the far end's voice, key, reversal, ringback end)
                          notice ──▶ record / skip (the warning tone counts
                          from here, notice or none; with no other notice, its
                          first beep, the notice, sounds here); none by the
                          call's end: the notice was never given (not recorded,
                          unless record_if_notice_failed)
    key codes, buttons ─▶ on-demand recording; pause and resume
    CallEnded ──────────▶ settle: not asked (on demand), too short (held,
                          dropped), a pause still on ends
    CallEnded (silence) ▶ parked until the line leaves "cleared" (then settled)
    CallResumed ────────▶ the parked call goes on: same decision, recording,
                          pause; no second notice

Each call carries ``policy_decision``, ``policy_reason``, ``consent`` and
``pause_spans``; every change is published as a
:class:`~firmware.bus.CallUpdated`, so the call log stores it.

A call that must not be recorded is never handed to the recorder: nothing of
it is written, not even its pre-roll. On a box that waits for a consent notice
(``policy.consent.require_notice`` with none set: a box `linekeeper init` made,
until the wizard, the Consent page or an imported configuration sets one) that is
every call: each is skipped with its reason (:data:`~firmware.policy.rules.NO_NOTICE`).
When the notice fails and ``record_if_notice_failed`` is off, the call is not recorded either; an
outbound recording begun at off-hook for such a line is held in memory
until its notice is given, and dropped if it is not. On a call given no other
notice the warning tone is the notice: its first beep sounds at the answer (an
assumed answer's waits for the far end, as a notice does, the recording held
meanwhile), and its failing, the recording already on the card is destroyed
(audited by the recorder) and the call skipped.

A call ended by the silence clear may be re-opened by the supervisor (sound
again while our side is still off-hook). Until the line leaves the cleared
state it is parked, not settled: a PCI pause stays on (nothing said when the
people come back is recorded before someone resumes), and the notice is not
played again when it resumes (it was given at the answer; the warning tone
pauses while parked and beats again after).

Keys typed during a connected call arrive at :meth:`CallPolicy.on_key`
straight from the supervisor; the last few are held, per call, in memory
only, to match the codes — never logged, never stored.
"""

import logging
import sqlite3
import threading

from firmware.calls.calllog import iso_ms

from ..bus import (
    CallAnswerConfirmed,
    CallAnswered,
    CallAnswerWithdrawn,
    CallEnded,
    CallResumed,
    CallStarted,
    CallUpdated,
    DialPulse,
    DigitDialled,
    LineStateChanged,
)
from ..calls.call import REMOTE_REASONS
from ..calls.supervisor import CLEARED, CONNECTED
from ..errors import LinekeeperError
from . import rules
from .buttons import Buttons
from .consent import make_notices
from .pause import PauseControl

log = logging.getLogger(__name__)

KEY_GAP_US = 3_000_000  # keys further apart than this are not one code
# Cut around a masked key: the detector dates a tone to a few ms, and a codec frame
# straddling its edge must not carry enough of it to be decoded.
MASK_MARGIN_US = 40_000
# The reason of an outbound call not recorded as nobody was heard after dialling (consent
# "unheard"): in plain words, as nothing failed (not "could not be given", a fault's words).
UNHEARD_REASON = "nobody was heard on the line after dialling, so no consent notice was played"
# The same for a call paused (card details) after its assumed answer before anything was heard:
# the pause silenced the line for the box's ears too, so the far end may well have been there
# (consent "paused", not "unheard").
PAUSED_REASON = (
    "the line was paused (card details) before the far end was heard, so no consent notice was played"
)
PAUSED_ERROR = (
    "the line was paused (card details) before the far end was heard, and the box hears nothing "
    "of a paused line: it was not played"
)
# Why the recording of a call told nothing was destroyed (its recording_deleted audit entry).
NOT_TOLD = "the consent notice could not be given"
# Why the recording of a call that ended during its consent notice was destroyed (its
# recording_deleted audit entry), by who ended it (its end_reason; see cut_short_why).
# The silence clear is the box's guess that the far end has gone, not a signal of it.
CUT_SHORT_BY = {
    "local": "our side hung up",
    "fault": "the line failed",
    "remote_silence": "the line went silent",
}
CUT_SHORT = "%s during the consent notice"


def cut_short_why(call):
    """Why ``call``'s recording is not kept, its notice cut short by the call's end: who
    ended the call ("the caller hung up during the consent notice")."""
    if call.end_reason in CUT_SHORT_BY:
        who = CUT_SHORT_BY[call.end_reason]
    elif call.end_reason in REMOTE_REASONS + ("remote",):
        who = "the caller hung up" if call.direction == "in" else "the person called hung up"
    else:
        who = "the call ended"
    return CUT_SHORT % who


def cut_short_reason(why):
    """The ``policy_reason`` of a call skipped as its notice was cut short (``why``:
    :func:`cut_short_why`). Without the seconds heard (the notice says them): the reports
    count the calls not recorded by their reason."""
    return "%s, so the other party was not told the call is recorded" % why


class PolicyError(LinekeeperError, ValueError):
    """A request the policy cannot carry out (no call on the line, nothing to resume)."""


MAX_KEY_TIMES = 200  # key presses kept per call for its timeline


class _Live:
    """What the policy holds about one live call."""

    def __init__(self, call):
        self.call = call
        self.decision = None  # a rules.Decision
        self.keys = ""
        self.key_us = []  # (start, end) clock µs of each key in ``keys``
        self.last_key_us = None
        self.connected = False  # the far end is known to be there: notice given, recording decided
        self.assumed = False  # answered by the dial timeout: the far end not heard at the answer
        self.heard_us = None  # then: when the far end was first heard (the warning tone's start)


class CallPolicy:
    """Applies :class:`~firmware.policy.settings.PolicySettings` to every call.

    :param settings: the ``policy`` section of the box's configuration
    :param country: "uk" or "us" (numbers, the default voice)
    :param recorder: a :class:`~firmware.recording.recorder.Recorder` with ``auto=False``
    :param capture: the :class:`~firmware.capture.Capture` (the pause mutes it)
    :param board: plays the notices
    :param clock: the box's clock
    :param bus: publishes :class:`CallUpdated`
    :param audit: the :class:`~firmware.storage.audit.AuditLog` (pauses, resumes)
    :param data_dir: where uploaded and generated announcements live
    :param callmeta: a :class:`~firmware.policy.callmeta.CallMeta` for tags (or None)
    :param preroll_ms: audio an inbound recording keeps from before the answer
    """

    def __init__(
        self,
        settings,
        *,
        country,
        recorder,
        capture,
        board,
        clock,
        bus,
        audit,
        data_dir,
        callmeta=None,
        preroll_ms=1000,
    ):
        self.settings = settings
        self.country = country
        self.recorder = recorder
        self.clock = clock
        self.bus = bus
        self.callmeta = callmeta
        self.preroll_us = preroll_ms * 1000
        self.audit = audit
        self.consent = make_notices(board, clock, data_dir, country, settings.consent, on_untold=self._untold)
        self.pauses = PauseControl(
            capture,
            clock,
            audit,
            settings.pci,
            on_change=self._changed,
            recorder=recorder,
            data_dir=data_dir,
            personal_code=self._personal_code,
            on_personal=self.mark_personal,
            record_code=self._record_code,
            on_record=lambda line: self.request_recording(line, "dtmf"),
        )
        self.buttons = Buttons(clock, self.on_button)
        # The recorder may close a recording as its call ends, before the policy hears
        # of the end: it asks then whether the call keeps it (_unkept).
        recorder.unkept = self._unkept
        self._lock = threading.RLock()
        self._live = {}
        self._parked = {}  # line -> _Live of a silence-cleared call that may go on
        # The lines marked as having nothing plugged in (``BoxConfig.not_connected``):
        # a call seen on one is logged, never recorded, whatever the rules say.
        self.not_connected = frozenset()

    def attach(self, bus):
        """Subscribe after the call log (which gives each call its id)."""
        bus.subscribe(CallStarted, self._started)
        bus.subscribe(CallAnswered, self._answered)
        bus.subscribe(CallAnswerConfirmed, self._confirmed)
        bus.subscribe(CallAnswerWithdrawn, self._withdrawn)
        bus.subscribe(CallEnded, self._ended)
        bus.subscribe(CallResumed, self._resumed)
        bus.subscribe(LineStateChanged, self._line_state)
        bus.subscribe(DigitDialled, self._dialled)
        bus.subscribe(DialPulse, self._pulsed)

    def apply(self, settings, country=None):
        """New settings (a reloaded configuration): they apply from the next decision on.

        Calls already decided keep their decision; a pause in progress keeps its timeout.
        """
        with self._lock:
            self.settings = settings
            if country is not None:
                self.country = country
                self.consent.announcements.country = country
            self.consent.apply(settings.consent)
            self.pauses.apply(settings.pci)

    def close(self):
        self.buttons.close()
        for line in self.pauses.paused_lines():
            self.pauses.resume(line, "call_end", "system")
        self.pauses.flush()

    # ------------------------------------------------------------ call events
    def _started(self, ev):
        call = ev.call
        with self._lock:
            live = self._live[call.line] = _Live(call)
            if call.line in self.not_connected:
                self._decide(live, self._rules_decide(call, call.direction, call.number))
                return
            if call.direction != "out":
                return
            mode = self.settings.rules.mode(call.line)
            if mode == "by_rule":
                # The rules need the number: decided once dialling ends. Until then the
                # call is recorded into memory only (dropped if the rules skip it), so
                # a slow dialler's first digits do not fall out of the ring buffer. Not
                # on a box waiting for a consent notice: it will skip the call whatever
                # the number.
                if not self.settings.consent.waits_for_notice():
                    self.recorder.record(call, call.started_us, hold=True)
                return
            self._decide(
                live,
                self._rules_decide(call, "out", None),
            )
            if mode == "always" and live.decision.decision == rules.RECORD:
                # An outbound recording starts at off-hook (see firmware.recording.recorder), held
                # in memory until the notice is given if a failed notice stops it.
                hold = self.consent.told("out") and not self.settings.consent.record_if_notice_failed
                self.recorder.record(call, call.started_us, hold=hold)

    def _answered(self, ev):
        call = ev.call
        with self._lock:
            live = self._live.get(call.line)
            if live is None or live.call is not call:
                live = self._live[call.line] = _Live(call)
            if live.decision is None:
                self._decide(
                    live,
                    self._rules_decide(call, call.direction, call.number),
                )
            if getattr(ev, "provisional", False):
                # Maybe the caller's own voice in ringback: the notice waits for the answer
                # to stand. (Played into the ringback it would be heard as a voice in the
                # next gap - another provisional answer - and the caller would hear it.)
                self._publish(call)
                return
            live.assumed = bool(getattr(ev, "assumed", False))
            if live.assumed and self._notice_due(live):
                # Answered by the dial timeout, with no sign of the far end: the notice
                # waits for one. Played now it may go to nobody (a mobile network is
                # silent for seconds before it rings), and the call would say it was given.
                if live.decision.decision == rules.RECORD and self.settings.consent.record_if_notice_failed:
                    # A notice not given stops nothing: what was held since off-hook (by
                    # rule) goes on to the card now, or a call never heard is dropped at
                    # its end though it says it was recorded. The warning tone waits.
                    self.recorder.release(call, min_talk_us=int(live.decision.min_talk_s * 1_000_000))
                self._publish(call)
                return
            self._connected(live)

    def _notice_due(self, live):
        """Whether ``live``'s call is to be given a notice when it connects: an announcement
        or a beep, or, with no other notice, the warning tone's first beep."""
        return live.decision.decision != rules.SKIP and self.consent.told(live.call.direction)

    def _confirmed(self, ev):
        """A provisional answer stands, or the far end of an assumed one is heard: the
        notice, then the recording (see _answered). An assumed answer's warning tone
        counts from here: from the answer its first beep may go into the silence before
        the far end answered, and the next ones are off the far end's interval."""
        with self._lock:
            live = self._live.get(ev.call.line)
            if live is None or live.call is not ev.call or live.decision is None:
                return
            if live.assumed and live.heard_us is None:
                live.heard_us = ev.t_us
                if live.connected and self.recorder.recording(live.call):
                    self._start_warning(live)  # no notice was due: recorded since the answer
            if not live.connected:
                self._connected(live)

    def _connected(self, live):
        """The far end is on the line: give the notice and record (or not) as decided."""
        call = live.call
        with self._lock:
            live.connected = True
            if live.decision.decision == rules.SKIP:
                # Held since off-hook (by rule): dropped.
                self.recorder.discard(call, skip=call.policy_reason)
                self._publish(call)
                return
            consent = self.consent.give(call)
            if (
                not consent["given"]
                and consent["notice"] != "off"
                and not self.settings.consent.record_if_notice_failed
            ):
                reason = "%s (%s)" % (NOT_TOLD, consent["error"])
                # Held in memory until now, normally: were any of it on the card, its
                # deletion is audited with why, as the warning tone's (_untold).
                self.recorder.discard(call, why=NOT_TOLD, skip=reason)
                self._decide(live, rules.Decision(rules.SKIP, reason, "consent"))
                self._publish(call)
                return
            if live.decision.decision == rules.RECORD:
                self._start_recording(live, self._from_start(call))
            self._publish(call)

    def _untold(self, call, error):
        """The first warning tone of ``call``, its only notice, could not be played: nobody
        on it was told, so, as when a notice cannot be given, it is not recorded. What was
        recorded since the answer (or off-hook) is destroyed, and the recorder audits it."""
        with self._lock:
            live = self._live.get(call.line)
            if live is None or live.call is not call:
                return
            reason = "%s (the warning tone could not be played: %s)" % (NOT_TOLD, error)
            self.recorder.discard(call, why=NOT_TOLD, skip=reason)
            self._decide(live, rules.Decision(rules.SKIP, reason, "consent"))
            self._publish(call)

    def _withdrawn(self, ev):
        """The call's provisional answer was the caller's voice in ringback: nothing was
        given for it (the notice waits for a confirmed answer), and the decision (by the
        dialled number, which does not change) stands. The call waits for its real
        answer; if it ends unanswered it is settled as never connected."""
        with self._lock:
            live = self._live.get(ev.call.line)
            if live is not None and live.call is ev.call:
                self._publish(ev.call)

    def _ended(self, ev):
        call = ev.call
        with self._lock:
            live = self._live.get(call.line)
            if live is None or live.call is not call:
                return
            del self._live[call.line]
            self.consent.stop_warning(call)
            self.consent.ended(call)
            if call.end_reason == "remote_silence":
                self._parked[call.line] = live  # settled when the line leaves "cleared"
                # A call the silence clear ended during its notice may go on (sound comes
                # back), but its notice was not given to its end and is not played again:
                # nothing of it may be kept, so its recording is destroyed now, with this
                # end's reason, and the call is skipped before it can go on recorded.
                self._cut_short(live)
                self._publish(call)
                return
            self._settle(live)

    def _resumed(self, ev):
        """The silence-cleared call goes on, as it was: decision, recording, pause."""
        with self._lock:
            live = self._parked.get(ev.line)
            if live is None or live.call is not ev.call:
                return
            del self._parked[ev.line]
            self._live[ev.line] = live
            if self.recorder.recording(live.call):
                self._start_warning(live)
            self._publish(live.call)
            # The call log had shown it ended: say why that changed. Not from the DSP's
            # thread (the audit write waits for the card).
            quiet = [n for n in live.call.notes if n.startswith("silence_resumed:")]
            details = {"sound_at": iso_ms(self._wall(ev.t_us)), "quiet_ms": int(quiet[-1].split(":")[1])}
            self.clock.call_later(0, lambda: self._audit_resumed(live.call, details))

    def _audit_resumed(self, call, details):
        if self.audit is None:
            return
        target = "call:%d" % call.id if call.id is not None else "line:%d" % call.line
        try:
            self.audit.append("system", "call_resumed", target, details, int(self.clock.wall_us()))
        except Exception:  # the call goes on whatever the trail says; the operator sees the log
            log.exception("could not audit the resumption of %s", target)

    def _line_state(self, ev):
        if ev.state in (CLEARED, CONNECTED):
            return
        with self._lock:
            live = self._parked.pop(ev.line, None)
            if live is not None:
                self._settle(live)

    def _settle(self, live):
        """The call is over for good: a pause ends, and the decision's last word."""
        call = live.call
        with self._lock:
            self.pauses.call_ended(call)
            if call.answered_us is not None and not live.connected and live.decision is not None:
                self._never_heard(live)
            if call.answered_us is None:
                # Never recordable: the line's own reason if it has one (a private line),
                # else that it never connected.
                decision = live.decision or self._rules_decide(call, call.direction, call.number)
                if decision.decision != rules.SKIP or decision.rule != "line":
                    decision = rules.Decision(rules.SKIP, rules.NEVER_CONNECTED, "answer")
                self._decide(live, decision)
            elif live.decision is not None and live.decision.decision == rules.PENDING:
                self._decide(
                    live, rules.Decision(rules.SKIP, "on demand: recording was never asked for", "on_demand")
                )
            elif self._cut_short(live):
                pass
            elif live.decision is not None:
                short = rules.too_short(live.decision, call.answered_us, call.ended_us)
                if short is not None:
                    self._decide(live, short)  # the recorder drops the held audio itself
            self._publish(call)

    def _unkept(self, call):
        """Why ``call``, ended, keeps no recording though the recorder is closing one (its
        hook, :attr:`~firmware.recording.recorder.Recorder.unkept`): ``(why, reason)``, the
        recording's ``recording_deleted`` reason and the call's skip reason (written with
        the decision to destroy it), or None. Without this policy's lock: the recorder asks
        holding its own, which this policy takes after its own."""
        consent = call.consent or {}
        if self.settings.consent.record_if_notice_failed:
            return None
        if consent.get("cut_short") or self.consent.heard_s(call) is not None:
            why = cut_short_why(call)
            return why, cut_short_reason(why)
        return None

    def _cut_short(self, live):
        """Whether ``live``'s call, recorded, ended during its consent notice (``cut_short``)
        and so keeps nothing: the other party was not told all of it, whoever hung up, and
        as for a notice not given (unless ``record_if_notice_failed``) its recording is
        destroyed (audited by the recorder: ``recording_deleted``, why) and the call
        skipped, saying why. A call on legal hold keeps its recording and its decision."""
        call = live.call
        consent = call.consent or {}
        if (
            not consent.get("cut_short")
            or live.decision is None
            or live.decision.decision != rules.RECORD
            or self.settings.consent.record_if_notice_failed
        ):
            return False
        why = cut_short_why(call)
        reason = cut_short_reason(why)
        kept = self._held(call)
        try:
            # The store decides again, in the transaction that decides the destruction: a
            # hold placed since the look above is honoured all the same. (The recorder may
            # have done so already, closing the recording as the call ended: _unkept.)
            if kept is None and not self.recorder.discard(call, why=why, skip=reason):
                kept = "on legal hold"
        except sqlite3.Error:
            # Refused before anything was destroyed: kept, as for a hold that cannot be read.
            log.exception("line %d: could not decide the destruction of call %s", call.line, call.id)
            return False
        if kept is not None:
            log.warning(
                "line %d: call %s ended during its consent notice, %s: recording kept",
                call.line,
                call.id,
                kept,
            )
            return False
        self._decide(live, rules.Decision(rules.SKIP, reason, "consent"))
        return True

    def _never_heard(self, live):
        """``live``'s call ended with its answer assumed (the dial timeout's) and no sign of
        the far end after it: its notice was never given, so it is not recorded (its
        recording was held, and the recorder dropped it) unless record_if_notice_failed."""
        call = live.call
        if not self._notice_due(live):
            return
        notice = self.consent.required(call.direction)
        if self._paused_after_answer(call):
            # The pause silenced the line for the detectors too: the far end may have
            # answered and spoken in it, unheard by the box, not absent.
            call.consent = {"notice": notice, "given": False, "error": PAUSED_ERROR, "paused": True}
            reason = PAUSED_REASON
        else:
            error = "nobody was heard on the line after the dialling: it was not played"
            call.consent = {
                "notice": notice,
                "given": False,
                "error": error,
                "unheard": True,  # not the notice's fault: no consent_notice_failed alarm
            }
            reason = UNHEARD_REASON
        if live.decision.decision == rules.RECORD and not self.settings.consent.record_if_notice_failed:
            # Held since off-hook or the answer, so nothing of it reached the card (if some did,
            # after a change of settings mid-call, its deletion is audited with why).
            self.recorder.discard(call, why=reason, skip=reason)
            self._decide(live, rules.Decision(rules.SKIP, reason, "consent"))

    def _paused_after_answer(self, call):
        """Whether ``call``'s line was paused at some time after its answer (the dial
        timeout's, never confirmed): the box heard nothing of the line meanwhile."""
        answered = iso_ms(self._wall(call.answered_us))
        return any(span.get("to") is None or span["to"] > answered for span in call.pause_spans)

    # ------------------------------------------------------------ recording
    def _from_start(self, call):
        """Where a recording of ``call`` begins when it includes the call from its start."""
        if call.direction == "out":
            return call.started_us
        return max(call.answered_us - self.preroll_us, call.started_us)

    def _start_recording(self, live, from_us):
        call = live.call
        min_talk_us = int(live.decision.min_talk_s * 1_000_000)
        if self.recorder.recording(call):
            # Held since off-hook (until the notice was given, or the rules decided).
            self.recorder.release(call, min_talk_us=min_talk_us)
        else:
            # Asked for before the notice could be given (dialling): held until it is.
            hold = (
                call.consent is None
                and self.consent.told(call.direction)
                and not self.settings.consent.record_if_notice_failed
            )
            self.recorder.record(call, from_us, min_talk_us=min_talk_us, hold=hold)
        self._start_warning(live)

    def _start_warning(self, live):
        """The warning tone of ``live``'s recorded call, from its answer; from the first sign
        of the far end after an answer the dial timeout assumed (none yet: it waits)."""
        if not live.assumed:
            self.consent.start_warning(live.call)
        elif live.heard_us is not None:
            self.consent.start_warning(live.call, since_us=live.heard_us)

    def request_recording(self, line, via, t_us=None):
        """Someone asked to record the call on ``line`` (on-demand); False if nothing to do."""
        with self._lock:
            live = self._live.get(line)
            if live is None or live.decision is None or live.decision.decision != rules.PENDING:
                return False
            call = live.call
            t_us = self.clock.now_us() if t_us is None else t_us
            # A call whose only notice is the warning tone was told nothing before the
            # request, whose beep is its notice: from its start, what everyone said untold
            # would be in the recording. It records from the request instead.
            from_start = self.settings.rules.on_demand.from_start and not self._untold_yet(call)
            self._decide(
                live,
                rules.Decision(
                    rules.RECORD,
                    "recording asked for by %s, %s"
                    % (
                        {"dtmf": "DTMF code", "button": "button", "web": "the web UI"}.get(via, via),
                        "from the start of the call" if from_start else "from the request",
                    ),
                    "on_demand",
                ),
            )
            self._start_recording(live, self._from_start(call) if from_start else t_us)
            self._publish(call)
            return True

    def mark_personal(self, line):
        """The staff member on ``line`` keyed the personal-call code: the call is not recorded.

        A recording held in memory (until the notice, the rules' minimum talk) is dropped,
        never written; one already on the card is destroyed as a call not told is (its key's
        copies overwritten, the file removed: ``recording_deleted``, "why" the reason). The
        call stays in the call log, ``skip`` with :data:`~firmware.policy.rules.PERSONAL_REASON`,
        and the code is audited (``personal_call``), so how often a line uses it shows.
        A call on legal hold (a supervisor may place one on a call being recorded) keeps its
        recording and its decision: a hold's recordings survive every deletion. The code is
        audited all the same, ``kept`` saying why nothing was discarded.
        False if the call was not recorded and could not be (nothing to do, nothing audited).
        """
        with self._lock:
            live = self._live.get(line)
            if live is None or live.decision is None or live.decision.decision == rules.SKIP:
                return False
            call = live.call
            target = "call:%d" % call.id if call.id is not None else "line:%d" % line
            kept = self._held(call)
            had = self.recorder.recording(call)
            details = {"line": line, "direction": call.direction, "recording_discarded": had}
            try:
                # The store decides again, in the transaction that decides the destruction:
                # a hold placed since the look above is honoured all the same.
                if kept is None and not self.recorder.discard(
                    call, why=rules.PERSONAL_REASON, skip=rules.PERSONAL_REASON
                ):
                    kept = "on legal hold"
            except sqlite3.Error as exc:
                # Refused before anything was destroyed: the recording goes on, as for a
                # hold that could not be read.
                log.exception("line %d: could not decide the destruction of the personal call", line)
                kept, details["error"] = (
                    "whose legal hold could not be read",
                    "%s: %s" % (type(exc).__name__, exc),
                )
            except Exception as exc:
                # Anything else the recorder raised: the staff member's call is still not
                # recorded on, and the trail says what failed. Raised, it would stop the
                # supervisor's delivery of every line's keys and events, and the capture's
                # pass over every line. (The card refusing the destruction itself is the
                # recorder's worker's to say: the recording_failed alarm of the line.)
                log.exception("line %d: what was recorded of the personal call could not be destroyed", line)
                details["error"] = "%s: %s" % (type(exc).__name__, exc)
            if kept is None and self.recorder.destruction_waits(call):
                # The card refused the decision: the recording is stopped, but still on the
                # card until the card takes it (then its recording_deleted entry follows).
                details.update(recording_discarded=False, discard_pending=True)
            if kept is not None:
                log.warning(
                    "line %d: the personal-call code was keyed on a call %s: recording kept", line, kept
                )
                details.update(recording_discarded=False, kept=kept)
                self._audit_personal(target, details)
                return True
            self.consent.stop_warning(call)
            self._decide(live, rules.Decision(rules.SKIP, rules.PERSONAL_REASON, "personal"))
            self._publish(call)
            self._audit_personal(target, details)
            return True

    def _personal_code(self, line):
        """The personal-call code that works on ``line`` now, or None."""
        personal = self.settings.rules.personal
        return personal.dtmf_code if personal.on(line) else None

    def _record_code(self, line):
        """The on-demand record code that works on ``line`` now, or None."""
        rules_ = self.settings.rules
        return rules_.on_demand.dtmf_code if rules_.mode(line) == "on_demand" else None

    def _held(self, call):
        """Why ``call``'s recording may not be discarded (its legal hold), or None."""
        if self.callmeta is None or call.id is None:
            return None
        try:
            return "on legal hold" if self.callmeta.legal_hold(call.id) is not None else None
        except Exception:  # a recording destroyed cannot come back: kept while the hold is unknown
            log.exception("line %d: could not read whether call %s is on legal hold", call.line, call.id)
            return "whose legal hold could not be read"

    def _audit_personal(self, target, details):
        if self.audit is None:
            return
        try:
            self.audit.append("handset", "personal_call", target, details, int(self.clock.wall_us()))
        except Exception:  # the call is not recorded whatever the trail says; the operator sees the log
            log.exception("could not audit the personal call of %s", target)

    def _untold_yet(self, call):
        """Whether ``call``, answered, has been told nothing yet and its notice is the
        warning tone (its notice "off"): the first beep is still to come."""
        consent = call.consent
        return (
            consent is not None
            and consent.get("notice") == "off"
            and not consent.get("given")
            and not consent.get("warning_tones")
            and self.settings.consent.warning_tone.enabled
        )

    # ------------------------------------------------------------ inputs
    def key_codes(self):
        """The codes keyed on a handset that the policy acts on (pause, resume, record,
        personal call).

        The supervisor holds back keys that may be one of these while a call is
        still dialling, so a code keyed as the far end answers ends the
        dialling instead of joining the number.
        """
        pci, demand = self.settings.pci, self.settings.rules.on_demand
        personal = self.settings.rules.personal.dtmf_code
        return tuple(c for c in (pci.pause_code, pci.resume_code, demand.dtmf_code, personal) if c)

    def on_key(self, line, digit, t_us, end_us=None):
        """A key typed during a connected call (from the supervisor; never logged).

        ``t_us``/``end_us``: clock times the key's tone began and ended.
        """
        end_us = t_us if end_us is None else end_us
        with self._lock:
            live = self._live.get(line)
            if live is None:
                return
            if live.last_key_us is None or t_us - live.last_key_us > KEY_GAP_US:
                live.keys, live.key_us = "", []
            live.last_key_us = t_us
            # Only when, never which: the call's timeline shows that a key was
            # pressed (and where masking cut it out); the digits (a card
            # number?) are kept nowhere.
            if len(live.call.key_times) < MAX_KEY_TIMES:
                live.call.key_times.append(iso_ms(self._wall(t_us)))
            if self.settings.pci.mask_dtmf:
                self._mask_key(line, t_us, end_us)
            self._publish(live.call)
            live.keys = (live.keys + digit)[-8:]
            live.key_us = (live.key_us + [(t_us, end_us)])[-8:]
            pci, demand = self.settings.pci, self.settings.rules.on_demand
            personal = self.settings.rules.personal
            if pci.pause_code and live.keys.endswith(pci.pause_code):
                code_us = (live.key_us[-len(pci.pause_code)][0], end_us)
                live.keys, live.key_us = "", []
                self.pauses.pause(line, live.call, "dtmf", "handset", code_us=code_us)
            elif pci.resume_code and live.keys.endswith(pci.resume_code):
                live.keys, live.key_us = "", []
                self.pauses.resume(line, "dtmf", "handset")
            elif demand.dtmf_code and live.keys.endswith(demand.dtmf_code):
                live.keys, live.key_us = "", []
                if self.settings.rules.mode(line) == "on_demand":
                    self.request_recording(line, "dtmf", t_us)
            elif personal.on(line) and live.keys.endswith(personal.dtmf_code):
                live.keys, live.key_us = "", []
                self.mark_personal(line)

    def _dialled(self, event):
        """A dialled DTMF digit past the number (its shortest whole length where its start
        tells one, else the longest number the country dials; a prefix withholding the
        caller's number not counted in it: the supervisor's ``past_number``): a key, cut
        out of the recording like any (mask_dtmf). A card number keyed straight on after a
        complete number is taken for more of the number (the call log scrubs it), and was
        in the recording of an outbound call, recorded from off-hook."""
        if event.method != "dtmf" or not event.past_number:
            return
        with self._lock:
            if self.settings.pci.mask_dtmf and event.line in self._live:
                self._mask_key(event.line, event.t_us, event.end_us or event.t_us)

    def _pulsed(self, event):
        """A pulse of a digit being dialled by loop-disconnect past the number (the
        supervisor's ``past_number``): no tone, but its clicks are a digit all the same,
        cut out of the recording as a DTMF digit's tone is (mask_dtmf). Each pulse as it
        comes: the digit is known only once it is over, too late to cut its first pulses."""
        if not event.past_number:
            return
        with self._lock:
            if self.settings.pci.mask_dtmf and event.line in self._live:
                self._mask_key(event.line, event.t_us, event.end_us)

    def _mask_key(self, line, t_us, end_us):
        """Cut a key's tone out of the recording (its time is in the call's ``key_times``)."""
        if not self.recorder.blank(line, t_us - MASK_MARGIN_US, end_us + MASK_MARGIN_US):
            log.warning("line %d: a key was decoded too late to be masked in full", line)

    def on_button(self, line, kind, t_us):
        """A button pressed on ``line``: "record" or "pause" (pause toggles)."""
        with self._lock:
            live = self._live.get(line)
            if live is None:
                return
            if kind == "record":
                demand = self.settings.rules
                if demand.on_demand.button and demand.mode(line) == "on_demand":
                    self.request_recording(line, "button", t_us)
            elif self.settings.pci.button:
                if not self.pauses.resume(line, "button", "button"):
                    self.pauses.pause(line, live.call, "button", "button")

    def pause(self, line, actor, address=None):
        """Pause the recording of the call on ``line`` (the web UI; ``address``: the
        client's, which the audit entry carries as the web UI's own entries do).

        :raises PolicyError: no call in progress on the line, its call is neither
            recorded nor able to be (a private line, a call the rules skip, a box
            not set up: a pause would silence nothing, yet be audited), or already
            paused
        """
        with self._lock:
            live = self._live.get(line)
            if live is None:
                raise PolicyError("there is no call in progress on line %d" % line)
            if not self._pausable(live):
                raise PolicyError(
                    "the call on line %d is not recorded and cannot be: there is nothing to pause" % line
                )
            if not self.pauses.pause(line, live.call, "web", actor, address=address):
                raise PolicyError("line %d is already paused" % line)

    def resume(self, line, actor, address=None):
        """Resume the recording on ``line`` (the web UI; ``address`` as for :meth:`pause`).

        :raises PolicyError: the line is not paused
        """
        if not self.pauses.resume(line, "web", actor, address=address):
            raise PolicyError("line %d is not paused" % line)

    def is_paused(self, line):
        return self.pauses.is_paused(line)

    def paused_lines(self):
        """The lines whose recording is paused now."""
        return self.pauses.paused_lines()

    def recording_lines(self):
        """The lines whose call is being recorded now."""
        with self._lock:
            return sorted(line for line, live in self._live.items() if self.recorder.recording(live.call))

    def pausable_lines(self):
        """The lines whose call a pause protects (:meth:`_pausable`)."""
        with self._lock:
            return sorted(line for line, live in self._live.items() if self._pausable(live))

    def _pausable(self, live):
        """Whether a pause of ``live``'s call silences anything: its recording runs, or it
        may still be recorded, reaching back into the ring buffer (on demand, asked for
        later, records from the start of the call: card details said before the request
        would be in it)."""
        if self.recorder.recording(live.call):
            return True
        return live.decision is not None and live.decision.decision == rules.PENDING

    def tag(self, line, tags, actor="system"):
        """Add ``tags`` (categories) to the call in progress on ``line``.

        :raises PolicyError: no call on the line
        :raises ConfigError: a tag is not a valid category name
        :raises StorageError: the card refused the write (full, read-only...):
            the call keeps the tags it had
        """
        with self._lock:
            live = self._live.get(line)
            if live is None:
                raise PolicyError("there is no call in progress on line %d" % line)
            call = live.call
            new = [t for t in tags if t not in call.tags]
            if self.callmeta is not None and new:
                if call.id is None:
                    from ..errors import StorageError

                    raise StorageError(
                        5,
                        "the tags of the call on line %d were not saved: "
                        "the call is not in the call log yet (the card refuses "
                        "writes)" % line,
                    )
                try:
                    self.callmeta.add_tags(call.id, new)
                except sqlite3.Error as exc:
                    from ..datadir import storage_error

                    raise storage_error(
                        exc, "the tags of the call on line %d were not saved" % line
                    ) from None
            call.tags.extend(new)
            if new:
                self._publish(call)

    # ------------------------------------------------------------ helpers
    def _decide(self, live, decision):
        live.decision = decision
        live.call.policy_decision = decision.decision
        live.call.policy_reason = decision.reason
        if decision.decision == rules.RECORD and not self.recorder.enabled:
            live.call.policy_reason = "%s; %s" % (decision.reason, rules.NOT_SET_UP)

    def _changed(self, call):
        self._publish(call)

    def _publish(self, call):
        self.bus.publish(CallUpdated(line=call.line, t_us=self.clock.now_us(), call=call))

    def _wall(self, t_us):
        return self.clock.wall_at(t_us)

    def _rules_decide(self, call, direction, number):
        """The rules' decision on ``call`` as ``direction`` with ``number`` (None: not
        known yet), at its start's wall time, in the box's country. On a box that waits
        for a consent notice (none set, ``require_notice``) a call they would record, or
        record on demand, is skipped, saying why: nobody on it was told. A call on a line
        marked not connected is skipped whatever the rules say."""
        if call.line in self.not_connected:
            return rules.Decision(rules.SKIP, rules.NOT_CONNECTED % call.line, "line")
        decision = rules.decide(
            self.settings.rules, call.line, direction, number, self._wall(call.started_us), self.country
        )
        if decision.decision != rules.SKIP and self.settings.consent.waits_for_notice():
            # Not set up yet, or set up and every notice turned off since: said as it is.
            why = rules.NOTICES_OFF if self.settings.consent.notice_was_set else rules.NO_NOTICE
            return rules.Decision(rules.SKIP, "%s; %s" % (decision.reason, why), "consent")
        return decision
