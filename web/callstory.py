"""A call's whole story for its page: why it was or was not recorded, and its timeline.

:func:`timeline` places what happened on the call — ringing, the answer,
the consent notice, the warning tone's first beep (or its first that could not be
played), PCI pauses, keys pressed, the end, and where in the
recording someone spoke (silence between) — on one time axis
from the call's start (seconds), and says for each moment where it is in
the recording (``seek_s``), so that a click on the drawn timeline can play
the recording from there. Everything comes from the call record and the
recording's row and its speech spans, found as it was recorded (no audio
is read: opening the page must not fetch the recording).
"""

from firmware import words
from firmware.localtime import duration_text, iso_to_us
from firmware.policy.deletions import recording_word
from firmware.policy.rules import NEVER_CONNECTED, NO_NOTICE, NOT_SET_UP, NOTICES_OFF
from firmware.reports.compute import not_heard, tone_was_notice

# A recording starts this long before the answer (the recorder's pre-roll)
# when its row does not say when it started.
DEFAULT_PREROLL_US = 1_000_000
VIEW_W = 1000  # SVG user units across


def _s(us, t0_us):
    return round((us - t0_us) / 1e6, 3)


def timeline(call, info, now_us):
    """``{"length_s", "rec_from_s", "rec_to_s", "events": [...]}`` or None (no start time).

    Each event: ``{"kind", "label", "at_s", "to_s" (spans), "seek_s" (None
    outside the recording), "x", "w"}``; ``x``/``w`` are SVG units.
    """
    t0 = call.get("started_us") or iso_to_us(call.get("started_at"))
    if t0 is None:
        return None
    answered = iso_to_us(call.get("answered_at"))
    ended = iso_to_us(call.get("ended_at")) or now_us
    length_s = max(_s(ended, t0), 0.001)
    rec_from = rec_to = None
    if info is not None:
        start = info.get("started_us")
        if start is None:
            start = max(t0, answered - DEFAULT_PREROLL_US) if answered else t0
        rec_from = _s(start, t0)
        rec_to = rec_from + float(info.get("duration_s") or 0)
        if not call.get("ended_at") and not info.get("duration_s"):
            # Still being recorded: its length is known once sealed; it runs to now.
            rec_to = max(rec_from, length_s)
        if call.get("end_reason") == "remote_silence":
            # The recording ran on to the hang-up (docs/adapters.md): all of it on the axis.
            length_s = max(length_s, rec_to)

    def seek(at_s):
        if rec_from is None or not rec_from <= at_s <= rec_to:
            return None
        return round(at_s - rec_from, 3)

    events = []

    def add(kind, label, at_s, to_s=None):
        at_s = min(max(at_s, 0.0), length_s)
        event = {
            "kind": kind,
            "label": label,
            "at_s": at_s,
            "to_s": to_s,
            "seek_s": seek(at_s),
            "x": round(at_s / length_s * VIEW_W, 2),
            "w": round(max(((to_s if to_s is not None else at_s) - at_s) / length_s * VIEW_W, 2), 2),
        }
        events.append(event)

    ring_to = _s(answered, t0) if answered else length_s
    add("ring", "Ringing" if call.get("direction") == "in" else "Dialling", 0.0, ring_to)
    if answered:
        add("answer", "Answered", _s(answered, t0))
    consent = call.get("consent") or {}
    if consent.get("given") and consent.get("at"):
        at = _s(iso_to_us(consent["at"]), t0)
        add(
            "consent",
            "Consent notice: " + words.say("notice", consent.get("notice")).lower(),
            at,
            at + float(consent.get("heard_s", consent.get("duration_s")) or 0),
        )
    tone_only = tone_was_notice(consent)
    if consent.get("warning_tone_first_at"):
        every = consent.get("warning_tone_interval_s")
        add(
            "tone",
            ("Warning tone, the only notice: first beep" if tone_only else "First warning tone (a reminder)")
            + (", then every %g s" % every if every else ""),
            _s(iso_to_us(consent["warning_tone_first_at"]), t0),
        )
    if consent.get("warning_tone_failed_at"):
        add(
            "tone-failed",
            "First warning tone could not be played"
            + (": it was the only notice, so nobody was told" if tone_only else ""),
            _s(iso_to_us(consent["warning_tone_failed_at"]), t0),
        )
    # A pause the call's end closed is marked at the capture period it was closed in, a
    # little after the hang-up the call log keeps: it ends at the end shown, not after it.
    end_s = _s(ended, t0) if call.get("ended_at") else length_s
    for span in call.get("pause_spans") or []:
        at = min(_s(iso_to_us(span["from"]), t0), end_s)
        to = min(_s(iso_to_us(span["to"]), t0), end_s) if span.get("to") else end_s
        add("pause", "Paused (%s): nothing recorded" % duration_text(to - at), at, to)
    for key_at in call.get("key_times") or []:
        add("key", "Key pressed", _s(iso_to_us(key_at), t0))
    if call.get("ended_at"):
        add("end", words.say("end", call.get("end_reason")) or "Ended", _s(ended, t0))
    events.sort(key=lambda e: (e["at_s"], e["kind"]))
    speech = _speech(info, rec_from, length_s)
    return {
        "length_s": length_s,
        "rec_from_s": rec_from,
        "rec_to_s": rec_to,
        "rec_x": None if rec_from is None else round(rec_from / length_s * VIEW_W, 2),
        "rec_w": None
        if rec_from is None
        else round((min(rec_to, length_s) - rec_from) / length_s * VIEW_W, 2),
        "events": events,
        "speech": speech,
        "speech_s": round(sum(x["to_s"] - x["at_s"] for x in speech), 1) if speech is not None else None,
    }


def _speech(info, rec_from, length_s):
    """The recording's speech spans on the call's axis (``at_s``, ``to_s``, ``x``, ``w``,
    ``seek_s``), or None when the recording kept none (silence is what lies between)."""
    spans = (info or {}).get("speech")
    if spans is None or rec_from is None:
        return None
    out = []
    for a, b in spans:
        at, to = min(rec_from + a, length_s), min(rec_from + b, length_s)
        if to <= at:
            continue
        out.append(
            {
                "at_s": round(at, 3),
                "to_s": round(to, 3),
                "seek_s": round(a, 3),
                "x": round(at / length_s * VIEW_W, 2),
                "w": round(max((to - at) / length_s * VIEW_W, 1), 2),
            }
        )
    return out


# How much later than the notice's start a recording may begin and still be said to hold
# it: the call log keeps the notice's time to the millisecond (cut down), and a recording
# with no pre-roll starts on the encoder's frame grid, up to one frame (120 ms at most)
# after the answer the notice is played at.
NOTICE_SLACK_US = 121_000


def notice_proof(call, info, deletions):
    """What shows that the call's notice was played (one that was given), for the Consent
    notice line of its page, which said "It is in the recording, which is the proof" of a
    call whose recording was erased too:

    ``"recording"``  its recording (``info``), which began before the notice did
    ``"late"``       its recording, which began after the notice did (recorded on demand,
                     from the request or as far back as the line's buffer reached): it does
                     not hold all of the notice, the call log's entry shows it was played
    ``"paused"``     its recording, silenced where a PCI pause fell during the notice: the
                     call log's entry shows it was played
    ``"erased"``     only the call log's entry: its recording was erased on request
    ``"deleted"``    only the call log's entry: its recording was deleted (retention, a full
                     card), as the call's deletion-log entries (``deletions``) or the call
                     log itself say
    ``"none"``       only the call log's entry: the call was never recorded
    """
    if info is not None:
        consent = call.get("consent") or {}
        started, notice = info.get("started_us"), iso_to_us(consent.get("at"))
        if notice is None:
            return "recording"
        if started is not None and started > notice + NOTICE_SLACK_US:
            return "late"
        end = notice + int(float(consent.get("heard_s", consent.get("duration_s")) or 0) * 1e6)
        for span in call.get("pause_spans") or []:
            # Silenced in the recording like everything in a pause (docs/policy.md).
            if iso_to_us(span["from"]) < end and (not span.get("to") or iso_to_us(span["to"]) > notice):
                return "paused"
        return "recording"
    gone = [recording_word("deleted", d) for d in deletions]
    if call.get("recording") == "deleted":
        gone.append(recording_word("deleted", call.get("recording_deleted")))
    if not gone:
        return "none"
    return "erased" if "erased" in gone else "deleted"


def why_no_recording(call, deletions):
    """Why the call has no recording, in words (the call has none to show)."""
    if deletions:
        return None  # the page lists each deletion: when, by which rule
    decision = call.get("policy_decision")
    reason = call.get("policy_reason")
    if decision is None:
        return (
            "It was logged before the box's recording rules applied to it (before setup, "
            "or on a box that only logs calls)."
        )
    if reason and reason.endswith(NO_NOTICE):
        return (
            "The box was not set up yet: no consent notice was set, so nobody on the call was "
            "told it might be recorded, and it was not."
        )
    if reason and reason.endswith(NOTICES_OFF):
        return (
            "Every consent notice had been turned off since one was set (the Consent page), so "
            "nobody on the call was told it might be recorded, and it was not."
        )
    if not call.get("answered") and (decision != "skip" or reason == NEVER_CONNECTED):
        # The recorder settles every unanswered call as skipped, "never connected": no rule
        # decided it. (A rule's skip stays the rule's: an outbound call it left out may not
        # have had its answer looked for.)
        return "It was never answered, so there was nothing to record."
    if decision == "skip":
        heard = not_heard(call.get("consent") or {})
        if heard is not None:
            # No rule said skip and nothing failed: in the words the report counts it by.
            return "It was not recorded: %s, so no consent notice was played." % words.say("not_heard", heard)
        return "The recording rules did not record it: %s." % (reason or "no reason kept")
    if decision == "pending":
        return "The line records on demand and nobody asked for this call to be recorded."
    if reason and reason.endswith(NOT_SET_UP):
        return "The box was not set up yet: it had no recording key, so nothing could be recorded."
    if call.get("recording_state") is None and not call.get("ended_at"):
        return "The call is still in progress."
    return (
        "The rules chose to record it (%s) but no recording was kept: see the box's "
        "alarms for a storage problem at that time." % (reason or "no reason kept")
    )


# A web pause's entry is written as it is asked for; the span's edge is moved to the capture
# period it took effect at, a few ms later. Further apart, they are not the same pause.
PAUSE_ENTRY_SLACK_US = 2_000_000


def pause_people(spans, entries):
    """Who paused and resumed each of the call's ``spans`` from the web page: a list, one
    ``{"paused": name or None, "resumed": name or None}`` a span. ``entries``: the call's
    audit entries (the page's history); a span's edge is matched to the ``pause`` or ``resume``
    entry made ``via`` the web nearest it, within :data:`PAUSE_ENTRY_SLACK_US`, each entry
    used once. None where it is not known (not by the web page, or no such entry)."""
    found = {"pause": [], "resume": []}
    for e in entries:
        if e.action in found and (e.details or {}).get("via") == "web":
            found[e.action].append(e)

    def who(action, at):
        at_us = iso_to_us(at)
        if at_us is None:
            return None
        near = [e for e in found[action] if abs(e.wall_us - at_us) <= PAUSE_ENTRY_SLACK_US]
        if not near:
            return None
        entry = min(near, key=lambda e: abs(e.wall_us - at_us))
        found[action].remove(entry)
        return entry.actor

    return [
        {
            "paused": who("pause", span.get("from")) if span.get("by") == "web" else None,
            "resumed": who("resume", span.get("to")) if span.get("ended_by") == "web" else None,
        }
        for span in spans or ()
    ]
