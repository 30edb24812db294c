"""The notice that a call may be recorded: the announcement, the tones, and the record of both.

Played into the line with the board's ``play`` (so it is heard by both
parties and is in the recording, which captures the line):

* at the answer of an inbound call, ``consent.inbound``: the announcement
  (:mod:`firmware.policy.announcement`) or one beep;
* once an outbound call is answered, ``consent.outbound``: at the answer's sign (a
  reversal, a voice, a key, the ringback's end) or, for an answer the dial timeout
  assumed, at the first sign of the far end after it (:mod:`firmware.policy.engine`);
* while a recorded call is connected, the periodic warning tone: the first
  ``interval_s`` after the answer (one the dial timeout assumed: after the first
  sign of the far end), then every ``interval_s``. On a call given no
  other notice (``"off"``) the tone is the notice: its first beep sounds at the
  answer (or that first sign), and if it cannot be played, nobody was told, and
  ``on_untold`` stops the recording (unless ``record_if_notice_failed``).

Every answered call that may be recorded gets a ``consent`` record (stored
as JSON on the call)::

    {"notice": "announcement", "given": true, "at": "2026-03-02T09:00:10.020Z",
     "duration_s": 7.0, "warning_tones": 2}
    {"notice": "announcement", "given": false, "error": "the announcement file ..."}
    {"notice": "off", "given": false}
    {"notice": "off", "given": false, "warning_tones": 4, "warning_tone_interval_s": 15,
     "warning_tone_first_at": "2026-03-02T09:00:10.020Z"}

``at`` is when the notice started playing (wall time, ms); a call whose warning tone
ran says how many beeps sounded, every how long, and when the first did (and
``warning_tone_error``, why one could not be played; ``warning_tone_failed_at``, when
the first could not, no beep having sounded before it). A notice that
cannot be given — the board refused to play, the announcement file is missing
or invalid, espeak-ng failed — is recorded with its ``error``; the policy
then records the call only if ``record_if_notice_failed`` is set.
"""

import logging
import re
import threading
from dataclasses import dataclass, field

from firmware.calls.calllog import iso_ms
from telephony.generate import sine

from .announcement import FILE_NAME, AnnouncementError, Announcements
from .checks import Checked, check_bool, check_choice, check_int, check_number, check_text, fail

log = logging.getLogger(__name__)
RATE = 8000


class ConsentNotices:
    """Gives the notices of every line's calls.

    :param board: plays into a line (``play(line, samples)``)
    :param clock: the box's clock (tone timers, times of the notices)
    :param announcements: an :class:`~firmware.policy.announcement.Announcements`
    :param settings: :class:`~firmware.policy.settings.ConsentSettings`
    :param on_untold: ``f(call, error)``, called (not holding this object's lock) when
        the first warning tone of a call given no other notice cannot be played and a
        failed notice does not record: nobody on it was told

    :attr:`announcement_problem`: why the announcement the settings' notices need cannot
    be played, or "" (it can, or none needs it); found when settings are applied (at the
    start and at each change) and again by each call the announcement is played to.
    :attr:`on_announcement`, ``f(problem)``, is told each time it is found (the box's
    ``announcement_unplayable`` alarm).
    """

    def __init__(self, board, clock, announcements, settings, on_untold=None):
        self.board = board
        self.clock = clock
        self.announcements = announcements
        self.settings = settings
        self.on_untold = on_untold
        self.announcement_problem = ""
        self.on_announcement = None
        self._lock = threading.RLock()
        self._tones = {}  # call id (object id) -> timer
        self._played = {}  # call id (object id) -> clock time its notice began

    def apply(self, settings):
        """New settings; an announcement they need is made now (not at the first call)."""
        self.settings = settings
        self.announcements.forget()
        problem = ""
        if "announcement" in (settings.inbound, settings.outbound):
            try:
                self.announcements.samples(settings.announcement)
            except AnnouncementError as exc:
                log.error("the consent announcement is not usable: %s", exc)
                problem = str(exc)
        self._announcement_found(problem)

    def _announcement_found(self, problem):
        self.announcement_problem = problem
        if self.on_announcement is not None:
            self.on_announcement(problem)

    def required(self, direction):
        """The notice a call in ``direction`` needs: "announcement", "tone" or "off"."""
        return self.settings.inbound if direction == "in" else self.settings.outbound

    def told(self, direction):
        """Whether calls in ``direction`` are told they may be recorded: a notice, or the
        warning tone as the only one (its first beep at the answer, see :meth:`start_warning`)."""
        return self.required(direction) != "off" or self.settings.warning_tone.enabled

    def give(self, call):
        """Give ``call`` its notice now; sets and returns ``call.consent``."""
        kind = self.required(call.direction)
        consent = {"notice": kind, "given": False}
        if kind != "off":
            try:
                samples = self._notice_samples(kind)
                self.board.play(call.line, samples)
            except AnnouncementError as exc:
                consent["error"] = str(exc)
                log.warning("line %d: the consent notice could not be given: %s", call.line, exc)
                self._announcement_found(str(exc))
            except (OSError, RuntimeError, ValueError) as exc:
                consent["error"] = str(exc)
                log.warning("line %d: the consent notice could not be given: %s", call.line, exc)
            else:
                consent.update(
                    given=True, at=iso_ms(self.clock.wall_us()), duration_s=round(len(samples) / RATE, 3)
                )
                self._played[id(call)] = self.clock.now_us()
                if kind == "announcement" and self.announcement_problem:
                    self._announcement_found("")  # made and played after all
        call.consent = consent
        return consent

    def ended(self, call):
        """``call`` is over: a notice it ended during is marked ``cut_short``, with the
        seconds of it played (``heard_s``): the record is the evidence of what the caller
        was told, and said the whole notice was given to a caller who had hung up."""
        heard_s = self.heard_s(call)
        self._played.pop(id(call), None)
        # What is still to play of its notice or beep stops: nobody is left to hear it, and
        # it would play on into the line's next call (on a real board, ahead of its notice).
        self.board.stop_playing(call.line)
        if heard_s is not None:
            call.consent.update(cut_short=True, heard_s=round(heard_s, 3))

    def heard_s(self, call):
        """The seconds of ``call``'s notice played before the call ended, when it ended
        during it; None when it was heard to its end, none was played, or the call goes on.
        (The recorder asks, through the policy, as it closes a recording: before
        :meth:`ended`, or after it, when ``call.consent`` says ``cut_short``.)"""
        began_us = self._played.get(id(call))
        consent = call.consent
        if began_us is None or not consent or call.ended_us is None:
            return None
        heard_s = max(0.0, (call.ended_us - began_us) / 1e6)
        return heard_s if heard_s < consent.get("duration_s", 0) else None

    def _notice_samples(self, kind):
        if kind == "announcement":
            return self.announcements.samples(self.settings.announcement)
        return self._beep()

    def _beep(self):
        tone = self.settings.warning_tone
        return sine([tone.frequency_hz], [tone.level_dbm0], tone.duration_ms)

    # ------------------------------------------------------------ warning tone
    def start_warning(self, call, since_us=None):
        """Beep every ``interval_s`` from the answer while ``call`` is connected (if enabled).

        ``since_us``: the clock time the beats count from instead of the answer (the first
        sign of the far end after an answer the dial timeout assumed).

        After a notice the tone is a reminder: its first beep ``interval_s`` after the
        answer. On a call given no other notice it is the notice: its first beep at the
        answer (at once, when the recording began later, asked for on demand), so that
        nobody is recorded untold for the first ``interval_s``; then on the answer's grid.
        """
        tone = self.settings.warning_tone
        if not tone.enabled or call.answered_us is None:
            return
        with self._lock:
            if id(call) in self._tones:
                return
            if call.consent is None:
                call.consent = {"notice": self.required(call.direction), "given": False}
            call.consent.setdefault("warning_tones", 0)
            call.consent["warning_tone_interval_s"] = tone.interval_s
            interval_us = int(tone.interval_s * 1_000_000)
            origin = call.answered_us if since_us is None else since_us
            now = self.clock.now_us()
            if self._tone_only(call) and not call.consent["warning_tones"]:
                # Nobody told yet: beep now, on the beat of the grid just past.
                beat = origin + max(0, now - origin) // interval_us * interval_us
                self._tones[id(call)] = self.clock.call_at(now, lambda: self._beat(call, beat))
                return
            first = origin + interval_us
            if first < now:  # recording began later (on demand): next beat of the grid
                first += -(-(now - first) // interval_us) * interval_us
            self._tones[id(call)] = self.clock.call_at(first, lambda: self._beat(call, first))

    @staticmethod
    def _tone_only(call):
        """Whether the warning tone is ``call``'s only notice (its notice "off")."""
        return call.consent.get("notice") == "off" and not call.consent.get("given")

    def stop_warning(self, call):
        with self._lock:
            timer = self._tones.pop(id(call), None)
            if timer is not None:
                timer.cancel()

    def _beat(self, call, t_us):
        tone = self.settings.warning_tone
        untold = None
        with self._lock:
            if id(call) not in self._tones or call.ended_us is not None:
                self._tones.pop(id(call), None)
                return
            try:
                self.board.play(call.line, self._beep())
                if not call.consent["warning_tones"]:
                    call.consent["warning_tone_first_at"] = iso_ms(self.clock.wall_us())
                call.consent["warning_tones"] += 1
            except (OSError, RuntimeError, ValueError) as exc:
                call.consent["warning_tone_error"] = str(exc)
                if not call.consent["warning_tones"]:
                    call.consent.setdefault("warning_tone_failed_at", iso_ms(self.clock.wall_us()))
                log.warning("line %d: the warning tone could not be played: %s", call.line, exc)
                if self._untold(call):
                    untold = str(exc)
            if untold is None:
                nxt = t_us + int(tone.interval_s * 1_000_000)
                self._tones[id(call)] = self.clock.call_at(nxt, lambda: self._beat(call, nxt))
            else:
                del self._tones[id(call)]
        if untold is not None and self.on_untold is not None:
            self.on_untold(call, untold)

    def _untold(self, call):
        """Whether ``call``, whose warning tone just failed, was told nothing at all and
        must not be recorded: no other notice given and no beep before this one."""
        consent = call.consent
        return (
            not consent.get("given")
            and not consent["warning_tones"]
            and not self.settings.record_if_notice_failed
        )


def make_notices(board, clock, data_dir, country, settings, on_untold=None):
    """:class:`ConsentNotices` for a box (its announcements kept in ``data_dir``)."""
    notices = ConsentNotices(board, clock, Announcements(data_dir, country), settings, on_untold)
    notices.apply(settings)
    return notices


NOTICES = ("off", "tone", "announcement")
VOICE = re.compile(r"[A-Za-z0-9_+-]{1,40}")
DEFAULT_ANNOUNCEMENT = (
    "This call may be recorded, for training and quality purposes, and to keep a record of what was agreed."
)


# ------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class Announcement(Checked):
    """The spoken notice.

    ``file``       an uploaded WAV in ``DATA_DIR/announcements/`` (validated
                   when uploaded and again when loaded), or None: ``text``
                   spoken by espeak-ng (made at first use, then cached)
    ``text``       what the default announcement says
    ``voice``      espeak-ng voice; None: en-gb (uk) or en-us (us)
    ``level_dbm0`` the active speech level the spoken text is scaled to
    """

    _PATH = "policy.consent.announcement"

    text: str = DEFAULT_ANNOUNCEMENT
    voice: str = None
    file: str = None
    level_dbm0: float = -16

    def check(self, path):
        if not isinstance(self.text, str) or not self.text.strip() or len(self.text) > 500:
            fail(path + ".text", "must be 1 to 500 characters of text")
        if self.voice is not None:
            check_text(self.voice, VOICE, path + ".voice", 'an espeak-ng voice name such as "en-gb"')
        if self.file is not None:
            check_text(
                self.file,
                FILE_NAME,
                path + ".file",
                "the name of an uploaded .wav file (letters, digits, '.', '_', '-')",
            )
        check_number(self.level_dbm0, -30, -6, path + ".level_dbm0", "dBm0")


@dataclass(frozen=True)
class WarningTone(Checked):
    """The periodic beep while a recorded call is connected (defaults: US practice, FCC 64.501).

    First ``interval_s`` after the answer, then every ``interval_s``; on a call given no
    other notice, first at the answer (:meth:`ConsentNotices.start_warning`).
    """

    _PATH = "policy.consent.warning_tone"

    enabled: bool = False
    frequency_hz: int = 1400
    duration_ms: int = 500
    interval_s: float = 15
    level_dbm0: float = -13

    def check(self, path):
        check_bool(self.enabled, path + ".enabled")
        check_int(self.frequency_hz, 300, 3400, path + ".frequency_hz", "Hz")
        check_int(self.duration_ms, 50, 2000, path + ".duration_ms", "ms")
        check_number(self.interval_s, 5, 600, path + ".interval_s", "seconds")
        if self.duration_ms >= self.interval_s * 1000:
            fail(path + ".duration_ms", "must be shorter than interval_s")
        check_number(self.level_dbm0, -30, -6, path + ".level_dbm0", "dBm0")


@dataclass(frozen=True)
class ConsentSettings(Checked):
    """The notice that calls may be recorded, given on every call that may be.

    ``inbound``   at the answer of an inbound call: "announcement", "tone"
                  (one beep as :class:`WarningTone` makes it) or "off"
    ``outbound``  the same, once an outbound call is answered (the far end heard)
    ``announcement`` :class:`Announcement`
    ``warning_tone`` :class:`WarningTone` (periodic, independent of the above)
    ``record_if_notice_failed`` when the notice could not be given (the
                  board refused to play, the announcement file is missing or
                  invalid): record anyway (True) or not (False). Either way the
                  call says the notice failed.
    ``require_notice`` record nothing while no notice is set in either direction
                  (:meth:`waits_for_notice`). The configuration ``linekeeper init``
                  writes has it, so that a box made that way records no line until
                  a notice is set (the setup wizard, the Consent page, a
                  configuration imported); False, the default, is what
                  configurations written before it did: record all the same.
    ``notice_was_set`` on such a box, whether a notice has been set since (the
                  box's own state, kept with ``require_notice`` beside config.json,
                  never a setting in it): a call skipped for want of a notice then
                  says every notice was turned off, not that the box was not set up.
    """

    _PATH = "policy.consent"
    _NESTED = {"announcement": Announcement, "warning_tone": WarningTone}

    inbound: str = "off"
    outbound: str = "off"
    announcement: Announcement = field(default_factory=Announcement)
    warning_tone: WarningTone = field(default_factory=WarningTone)
    record_if_notice_failed: bool = False
    require_notice: bool = False
    notice_was_set: bool = False

    def gives_none(self):
        """Whether no call is told it may be recorded: no notice in either direction and
        no warning tone (which, with no other notice, is one)."""
        return self.inbound == "off" and self.outbound == "off" and not self.warning_tone.enabled

    def waits_for_notice(self):
        """Whether nothing may be recorded until a notice is set (``require_notice``)."""
        return self.require_notice and self.gives_none()

    def check(self, path):
        check_choice(self.inbound, NOTICES, path + ".inbound")
        check_choice(self.outbound, NOTICES, path + ".outbound")
        if not isinstance(self.announcement, Announcement):
            fail(path + ".announcement", "must be an object")
        self.announcement.check(path + ".announcement")
        if not isinstance(self.warning_tone, WarningTone):
            fail(path + ".warning_tone", "must be an object")
        self.warning_tone.check(path + ".warning_tone")
        check_bool(self.record_if_notice_failed, path + ".record_if_notice_failed")
        check_bool(self.require_notice, path + ".require_notice")
        check_bool(self.notice_was_set, path + ".notice_was_set")
