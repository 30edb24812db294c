"""Erasing every call of one data subject at once (the right to erasure, UK GDPR Art. 17).

A person who asks for their data to be erased has often called many times, on several
lines and days. The calls are found as a subject access request finds them
(:func:`firmware.sar.find_calls`: each of their numbers, in any form, on the lines the
person erasing may see), and each is erased through the single-call erasure the call's
page uses (:meth:`firmware.policy.sweeper.Sweeper.erase`, over the recorder's control
socket: ``erase`` with the caller's details, or ``erase_details`` for a call with no
recording), so every recording erased has its own deletion-log entry and ``delete``
audit entry, exactly as one erased from its page.

:func:`plan` says what would be done before anything is: how many calls and recordings,
which calls are skipped and why (on legal hold, still being recorded). Its
:attr:`Plan.token` names exactly those calls: the erasure is carried out (:func:`carry_out`)
only for the plan the person confirmed, and refused whole, nothing erased, when the calls
found have changed since (a new call, a hold placed or released).
"""

import dataclasses
import hashlib

from .errors import LinekeeperError
from .sar import SarError, find_calls

# The recording states of a finished recording (firmware.recording.store).
FINISHED = ("complete", "partial")


class SubjectEraseError(LinekeeperError, ValueError):
    """The erasure of a person's calls was refused as asked: nothing was erased."""


@dataclasses.dataclass
class Plan:
    """What erasing a person's calls would do.

    ``recordings``: the calls whose recording is erased (with the caller's details);
    ``details``: the calls with no recording left whose caller's details are erased;
    ``held``: the calls on legal hold, skipped; ``recording_now``: the calls still being
    recorded, skipped. Each a sorted list of call ids. ``lines``: each call's line.
    """

    numbers: list
    recordings: list = dataclasses.field(default_factory=list)
    details: list = dataclasses.field(default_factory=list)
    held: list = dataclasses.field(default_factory=list)
    recording_now: list = dataclasses.field(default_factory=list)
    lines: dict = dataclasses.field(default_factory=dict)  # {call id: its line}

    @property
    def to_erase(self):
        """The calls that would be erased, by id."""
        return sorted(self.recordings + self.details)

    @property
    def token(self):
        """A short digest of the numbers and of every call in each list: the same only
        for the same calls to erase and to skip."""
        text = repr((self.numbers, self.recordings, self.details, self.held, self.recording_now))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def words(self):
        """What would be done, in a sentence or two for the person confirming."""
        return " ".join(
            [self.found_words()] + ["%s: %s." % (why, _ids_words(ids)) for why, ids in self.skipped()]
        )

    def found_words(self):
        """How many calls were found and what would be erased, in a sentence (the first of
        :meth:`words`)."""
        if not (self.to_erase or self.held or self.recording_now):
            return "No call of %s is left to erase on the lines you see." % _numbers_words(self.numbers)
        return "%s of %s found. To erase: %s (%s, and the caller's number and name of each)." % (
            _count(len(self.to_erase) + len(self.held) + len(self.recording_now), "call"),
            _numbers_words(self.numbers),
            _count(len(self.to_erase), "call"),
            _count(len(self.recordings), "recording"),
        )

    def skipped(self):
        """The calls skipped, by why: ``[(why, [call id, ...]), ...]``, those with some."""
        return [
            (why, ids)
            for why, ids in (
                ("Skipped, on legal hold (release the hold first to erase them)", self.held),
                ("Skipped, still being recorded (erase them once they have ended)", self.recording_now),
            )
            if ids
        ]


@dataclasses.dataclass
class Result:
    """What :func:`carry_out` did: ``recordings`` erased in all, the calls ``erased``
    (by id) and those ``refused`` meanwhile (``{call id: why}``: a hold placed since the
    plan, the card refusing)."""

    recordings: int = 0
    erased: list = dataclasses.field(default_factory=list)
    refused: dict = dataclasses.field(default_factory=dict)

    def words(self):
        text = "%s erased: %s." % (
            _count(len(self.erased), "call"),
            _count(self.recordings, "recording"),
        )
        if self.refused:
            text += " Not erased: %s." % "; ".join(
                why if why.startswith("call %d " % call_id) else "call %d: %s" % (call_id, why)
                for call_id, why in self.refused.items()
            )
        return text


def _count(n, one, many=None):
    return "%d %s" % (n, one if n == 1 else (many or one + "s"))


def _ids_words(ids):
    return ("call " if len(ids) == 1 else "calls ") + ", ".join(map(str, ids))


def _numbers_words(numbers):
    return " or ".join(numbers)


def plan(calls_db, numbers, *, lines, holds, country="uk", cipher=None, outside=None):
    """What erasing every call of ``numbers`` (a list of phone numbers, any form) would do,
    on ``lines`` (the lines the person erasing may see; None: every line), ``holds`` the
    ids of the calls on legal hold (:func:`firmware.policy.callmeta.held_since`).
    The calls are found as the subject access search finds them (:func:`find_calls`).

    :raises SubjectEraseError: no number given, or a number the search does not take
        (named), or too many calls for one search
    """
    if not numbers:
        raise SubjectEraseError("give the person's phone numbers: their calls are found by them")
    found = {}
    for number in numbers:
        try:
            calls = find_calls(
                calls_db, number=number, country=country, lines=lines, cipher=cipher, outside=outside
            )
        except SarError as exc:
            raise SubjectEraseError("%s: %s" % (number, exc)) from None
        found.update((c["id"], c) for c in calls)
    result = Plan(numbers=list(numbers))
    for call_id in sorted(found):
        call = found[call_id]
        result.lines[call_id] = call["line"]
        if call_id in holds:
            result.held.append(call_id)
        elif call["recording"] == "recording":
            result.recording_now.append(call_id)
        elif call["recording"] in FINISHED:
            result.recordings.append(call_id)
        elif call["ended_at"] is None:  # going on, not recorded: its details once it ends
            result.recording_now.append(call_id)
        else:
            result.details.append(call_id)
    return result


def carry_out(planned, token, *, erase, erase_details, progress=None, refused=(LinekeeperError,)):
    """Erase the calls of ``planned`` (:func:`plan`, made again just now), one by one, through
    the single-call erasure: ``erase(call_id)`` (its recordings and the caller's details;
    returns how many recordings) and ``erase_details(call_id)`` (a call with no recording).
    ``progress(done, total)`` after each call.

    :raises SubjectEraseError: ``token`` is not ``planned``'s: the calls found changed since
        the person confirmed (nothing erased)
    """
    if token != planned.token:
        raise SubjectEraseError(
            "the calls found have changed since the count you confirmed (a new call, a hold placed "
            "or released): check the count again; nothing was erased"
        )
    result = Result()
    total = len(planned.to_erase)
    for done, call_id in enumerate(planned.to_erase, 1):
        try:
            if call_id in planned.recordings:
                result.recordings += erase(call_id) or 0
            else:
                erase_details(call_id)
            result.erased.append(call_id)
        except refused as exc:  # a hold placed since the plan, the card refusing: said, the rest go on
            result.refused[call_id] = str(exc)
        if progress is not None:
            progress(done, total)
    return result
