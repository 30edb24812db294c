"""The cover letter of a subject access bundle (``README.txt``): what the person is owed in words.

A bundle of JSON files and WAVs, times in UTC, told the person nothing a
subject access answer must say (UK GDPR Art. 15(1)): who holds their data and
why, what kinds of it, who may see it, how long it is kept, where it came
from, their other rights and the right to complain to the ICO. The letter
says those, the lawful basis and who to write to with questions (the
settings' data protection contact), the copies of their calls given before (Art.
15(1)(c): when, to whom, which calls; from the disclosure log), lists each call
in the box's local time with the zone named, says
what became of each recording (and why one is missing or has silence in it),
and what each file of the bundle is. It is plain text, which every phone and
computer opens.
"""

import dataclasses
import datetime

from .lawfulbasis import LEGITIMATE_INTERESTS, basis_words
from .localtime import DEFAULT_ZONE, LocalTime, day_words, duration_text
from .policy.cards import MASK
from .policy.deletions import recording_word


@dataclasses.dataclass(frozen=True)
class LetterFacts:
    """What the letter says of the business, from its settings (all may be empty).

    ``retention``: :func:`firmware.policy.retention.retention_words`, or None
    (nothing deleted automatically); ``line_names``: ``{line number: name}``;
    ``archived``: recordings are also copied to the organisation's archive;
    ``lawful_basis``: a code of :data:`firmware.lawfulbasis.BASES`; ``dp_contact``
    (a name or role), ``dp_address`` (lines apart with "\n"), ``dp_email``,
    ``dp_phone``: who answers data protection questions.
    """

    organisation: str = ""
    ico_number: str = ""
    purpose: str = ""
    retention: str = None
    country: str = "uk"
    zone: str = DEFAULT_ZONE
    line_names: dict = dataclasses.field(default_factory=dict)
    archived: bool = False
    lawful_basis: str = ""
    dp_contact: str = ""
    dp_address: str = ""
    dp_email: str = ""
    dp_phone: str = ""


# What each file of a bundle is, in the order the letter lists them.
FILES = (
    ("README.txt", "this letter"),
    ("recordings/", "the recordings, one WAV file a call (plays on any phone or computer)"),
    ("calls.json", "each call's full record as the box keeps it (times there are in UTC)"),
    (
        "notes-and-names.json",
        "notes staff wrote about these calls, the name the box's phone book gives your number, "
        "and any name a call was corrected to at your request",
    ),
    ("manifest.json", "what was asked for, and each file's size and SHA-256 checksum"),
    ("SHA256SUMS", "the checksums again, so you can check nothing was changed (sha256sum -c SHA256SUMS)"),
)


ALWAYS = ("README.txt", "manifest.json", "SHA256SUMS")


def _us(iso):
    """µs since the epoch of a call record's ISO 8601 time (``...Z``), or None."""
    if not iso:
        return None
    return int(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1_000_000)


def _recording(call, local, files):
    """What became of the call's recording, in a sentence."""
    name = "recordings/call-%d.wav" % call["id"]
    if name in files:
        text = "%s (%s)" % (name, duration_text(call.get("recording_duration_s")) or "recording")
        spans = call.get("pause_spans") or []
        if spans:
            text += (
                ". Recording was paused (as for card details) %s: the recording is silent there"
                % ", ".join(
                    "from %s to %s" % (local.when(_us(s["from"])), local.when(_us(s["to"])))
                    if s.get("to")
                    else "from %s" % local.when(_us(s["from"]))
                    for s in spans
                )
            )
        return text
    gone = call.get("recording_deleted")
    if call.get("recording") == "deleted" and gone:
        why = {
            "erasure": "erased on request",
            "retention": "deleted when its keeping period ended",
        }.get(gone.get("reason"), "deleted")
        if recording_word("deleted", gone) == "erased":
            # As the calls list and the Subject access page say it: the archived copy's
            # erasure too, where the deletion log holds nothing else of the call.
            why = "erased on request"
        return "none any more: %s on %s" % (why, local.when(_us(gone.get("at"))))
    if call.get("recording") == "deleted":
        return "none any more: deleted"
    return "none: this call was not recorded"


# Said under a call whose number holds a card number's keys, masked (``01632960123XXXXXX``).
MASKED_SAID = (
    "Each X in the number is a key pressed after the number was dialled, taken for a card "
    "number: the box keeps none of those digits, nor any keyed after them."
)


def _call_lines(call, local, facts, files, redacted):
    line = facts.line_names.get(call["line"]) or "line %d" % call["line"]
    who = call.get("number") or ("a withheld number" if call.get("absence") else "a number not known")
    org = facts.organisation or "the business"
    how = (
        "a call to %s from %s" % (org, who)
        if call["direction"] == "in"
        else "a call from %s to %s" % (org, who)
    )
    talk = duration_text(call.get("duration_s")) if call.get("answered") else ""
    out = [
        "Call %d: %s" % (call["id"], local.when(_us(call["started_at"]))),
        "  %s, on %s; %s"
        % (how[0].upper() + how[1:], line, "answered, %s" % talk if talk else "not answered"),
        "  Recording: %s." % _recording(call, local, files),
    ]
    if MASK in (call.get("number") or ""):
        # A card number keyed on after the number dialled: its keys are X (docs/pci.md).
        out.insert(2, "  " + MASKED_SAID)
    spans = [(a, b) for c, a, b in redacted if c == call["id"]]
    if spans:
        out.append(
            "  Silenced before release, as they are about other people: %s (seconds into the recording)."
            % ", ".join("%g to %g" % s for s in spans)
        )
    return out


def letter_text(calls, files, facts, request, released_us, redacted=(), earlier=()):
    """The letter's text for ``calls`` (call-log JSON) released in a bundle of ``files``
    (their names) on ``released_us`` (µs since the epoch), ``redacted`` spans
    ``(call, from_s, to_s)`` silenced; ``earlier``: the copies of the person's calls given
    before (:func:`firmware.sar.earlier_releases`: ``{"wall_us", "recipient", "calls"}``)."""
    facts = facts or LetterFacts()
    local = LocalTime(facts.zone)
    org = facts.organisation or "the business"
    org_ = org[:1].upper() + org[1:]
    zone_said = (
        "UK time (GMT in winter, BST in summer)"
        if facts.zone == "Europe/London"
        else "the time of %s (the zone named after each time)" % facts.zone
    )
    out = [
        "Your calls: a copy of the data %s keeps about them" % org,
        "",
        "This is a copy of the personal data kept about %s, as you asked (a subject access "
        "request). It was made on %s." % (_asked_about(request, facts), local.when(released_us)),
        "",
        "WHO KEEPS IT",
        "%s%s."
        % (
            org_,
            ", registered with the Information Commissioner's Office as %s" % facts.ico_number
            if facts.ico_number
            else "",
        ),
        "",
        "WHY CALLS ARE RECORDED",
        facts.purpose.strip() or "(The business has not stated its purpose on the recording box: ask them.)",
        _basis_said(facts),
        "",
        "WHAT IS KEPT, AND WHERE IT CAME FROM",
        "For each call: when it was made, the phone line, the number (and the name) the phone "
        "network gave for it or the number staff dialled, how long it lasted and, where the call "
        "was recorded, the recording of both sides of it. It was all made by the call recording "
        "box on %s's phone lines." % org,
        "",
        "WHO MAY SEE IT",
        "Only %s's supervisors, each with their own key; every playback and copy is logged.%s "
        "A copy given to anyone else is written in the box's disclosure log."
        % (
            org,
            " The recordings are also copied to %s's archive, where its supervisors may play them." % org
            if facts.archived
            else "",
        ),
        "",
        "COPIES GIVEN BEFORE",
        *_earlier_lines(earlier, local),
        "",
        "HOW LONG IT IS KEPT",
        (facts.retention[:1].upper() + facts.retention[1:] + ".")
        if facts.retention
        else "Recordings are kept until they are deleted by hand; ask the business how long.",
        "No decision about you is made automatically from these calls.",
        "",
        "YOUR RIGHTS",
        "You may ask %s to correct what is wrong, to erase these recordings, to stop using them "
        "for a time, or object to their use." % (org),
    ]
    out += _contact_lines(facts, org)
    if facts.country == "uk":
        out.append(
            "If you are not happy with the answer you may complain to the Information Commissioner's "
            "Office: ico.org.uk/make-a-complaint, 0303 123 1113."
        )
    out += ["", "THE CALLS, in %s" % zone_said, ""]
    for call in calls:
        out += _call_lines(call, local, facts, files, redacted) + [""]
    out += ["THE FILES"]
    for name, what in FILES:
        # The letter, the manifest and the checksums are in every bundle.
        if name in ALWAYS or any(f == name or (name.endswith("/") and f.startswith(name)) for f in files):
            out.append("  %-22s %s" % (name, what))
    # Every line ended \r\n, the business's own too (its purpose is typed in lines, and
    # kept as typed: \n, a lone \r, U+2028): Notepad before 2018 shows \n as nothing.
    return "".join(line + "\r\n" for line in "\n".join(out).splitlines())


def _earlier_lines(earlier, local):
    """The copies of the person's calls given before (UK GDPR Art. 15(1)(c)), as the
    disclosure log records them: when, to whom, which calls."""
    if not earlier:
        # The same words whether none was given or every one was withheld (an exemption:
        # saying that something was held back would tell what the exemption protects).
        return ["Copies of your calls given to anyone before this one: none to list."]
    out = ["The box's disclosure log records these copies of your calls given before this one:"]
    for e in earlier:
        ids = ["%d" % c for c in e["calls"]]
        which = "call %s" % ids[0] if len(ids) == 1 else "calls %s and %s" % (", ".join(ids[:-1]), ids[-1])
        out.append("  %s, to %s: %s." % (local.when(e["wall_us"]), " ".join(e["recipient"].split()), which))
    out.append("(Calls are numbered as in THE CALLS below; one not listed there is not in this copy.)")
    return out


def _basis_said(facts):
    """The lawful basis of the recording, in a sentence."""
    if not facts.lawful_basis:
        return (
            "(The business has not recorded its lawful basis for recording on the recording box: ask them.)"
        )
    said = "The lawful basis for recording them: %s." % basis_words(facts.lawful_basis, facts.country)
    if facts.lawful_basis == LEGITIMATE_INTERESTS:
        said += " The interest pursued is the purpose above."
    return said


def _contact_lines(facts, org):
    """Who to write to with a question or to use a right, as the settings give them."""
    ways = [x.strip() for x in facts.dp_address.splitlines() if x.strip()]
    if facts.dp_email:
        ways.append("E-mail: %s" % facts.dp_email)
    if facts.dp_phone:
        ways.append("Phone: %s" % facts.dp_phone)
    if not ways:
        who = " (%s)" % facts.dp_contact if facts.dp_contact else ""
        return [
            "For any of these, or a question about your data, reply to whoever sent you this%s: "
            "the business has not given an address for data protection questions on the "
            "recording box." % who
        ]
    who = "%s, %s" % (facts.dp_contact, org) if facts.dp_contact else org
    return ["For any of these, or a question about your data, write to %s:" % who] + ["  " + x for x in ways]


def _asked_about(request, facts):
    """What the copy covers, as it was searched: a number's calls, or every call on a staff
    member's lines over the days (a search by line names no number: it said "the calls
    listed below", and the person was not told which line and days the copy covers)."""
    search = (request or {}).get("search") or {}
    lines = search.get("lines") or []
    if not lines:
        if search.get("number"):
            return "calls of the phone number %s" % search["number"]
        return "the calls listed below"
    on = " and ".join(
        "line %d (%s)" % (n, facts.line_names[n]) if facts.line_names.get(n) else "line %d" % n for n in lines
    )
    first, last = search.get("from") or "", search.get("to") or search.get("from") or ""
    start = day_words(first) + (" at %s" % search["from_time"] if search.get("from_time") else "")
    end = day_words(last) + (" at %s" % search["to_time"] if search.get("to_time") else "")
    said = "%s on %s from %s to %s" % (
        "calls of the phone number %s" % search["number"] if search.get("number") else "the calls",
        on,
        start,
        end,
    )
    if search.get("calls"):  # some of them, named (Only these calls)
        said = "the calls listed below, of %s" % said
    return said
