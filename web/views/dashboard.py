"""The dashboard: each line's live state, the box's health, and the PCI pause.

A supervisor can pause the recording of a call in progress on a line granted
to them (while a caller gives card details) and resume it; the box silences
the line's audio before it is buffered and audits both (actions ``pause`` /
``resume`` with the supervisor's name). The pause exists only where a
recording is running: on a private or on-demand line, or a box not set up,
there is nothing to silence, and an audited "pause" would say otherwise. A
private line shows no Pause button at all, unless its call began before the
line was made private and is still being recorded.
"""

import logging
import sqlite3

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from firmware import rights, words
from firmware.alarmchecks import REMINDER_KINDS
from firmware.alarms import alarm_words, reminder_words
from firmware.compliance import checklist
from firmware.control import RecorderUnavailable
from firmware.localtime import iso_to_us
from firmware.policy.retention import retention_words

from ..accounts import OFFICE_ROLES
from ..documents import box_state, checklist_reminders, not_connected_lines, private_lines, undecided_lines
from ..remote import RECORDER_DOWN, recorder_cannot_start
from ..security import alarm_lines, lk, roles
from .rights import attention, waiting_for

bp = Blueprint("dashboard", __name__)
log = logging.getLogger(__name__)


def status_lines(user):
    """The lines whose live state ``user`` sees (the dashboard's rows, ``/api/status``,
    the live stream): those whose alarms they see (:func:`web.security.alarm_lines`:
    every line for an installer or auditor, a supervisor's granted lines), and a staff
    member's own lines (My line). A line not among them is not there at all: its state
    says when a call on it begins and ends, and its call which way it goes."""
    lines = set(alarm_lines(user))
    if user.has("staff"):
        lines.update(user.lines)
    return lines


def visible_snapshot(user):
    """The status snapshot of :func:`status_lines`, with call details only on lines the
    user may search.

    Installers and auditors see states (needed to commission lines), not who
    is calling; supervisors see the numbers on their granted lines, and no other
    line. The snapshot's ``version`` is left out: it counts every line's changes. Each line
    also carries ``recording`` (``{"state": "recording" | "paused" | "off" |
    "none", "text"}``, whether its call is being recorded now and why not)
    and ``text`` (state, since, faults and call in words, in the box's
    zone), so the live page shows the same words as the server-drawn one;
    the snapshot's own fields stay UTC.
    """
    snap = lk().services.status.snapshot()
    granted = set(user.lines) if user.has("supervisor") else set()
    live = lk().services.live
    paused = set(live.paused_lines()) if live is not None else set()
    recording = set(live.recording_lines()) if live is not None else set()
    try:
        pausable = set(live.pausable_lines()) if live is not None else set()
    except RecorderUnavailable:
        pausable = set()  # (the dashboard says the recorder is down)
    site = lk().site.settings()
    private = private_lines(lk())
    unplugged = not_connected_lines(lk())
    undecided = set(undecided_lines(lk()))
    shown = status_lines(user)
    lines = []
    for entry in snap["lines"]:
        if entry["line"] not in shown:
            continue
        entry = dict(entry)
        if not user.has("installer"):
            # What the line learned of its hub, ATA or exchange is an installer's to read: to a
            # supervisor "caller ID v23 before ring (dtas, reversal)" says nothing they act on.
            entry.pop("learned", None)
        call = entry.get("call")
        if call is not None and entry["line"] not in granted:
            entry["call"] = {"direction": call.get("direction")}
        entry["name"] = site.line(entry["line"]).name if site else "Line %d" % entry["line"]
        entry["record"] = entry["line"] not in private
        entry["undecided"] = entry["line"] in undecided  # recorded, though nobody chose it
        entry["paused"] = entry["line"] in paused
        entry["pausable"] = call is not None and entry["line"] in pausable  # a call, which a pause protects
        entry["recording"] = recording_now(
            entry,
            call if entry["line"] in granted else _without_who(call),
            entry["line"] in recording if live is not None else None,
        )
        # A private line records nothing, so it has no pause (not even a disabled one);
        # but a call begun before its line was made private is recorded to its end: that
        # call keeps its pause, and its resume.
        entry["can_pause"] = (
            live is not None
            and entry["line"] in granted
            and (entry["record"] or entry["recording"]["state"] in ("recording", "paused"))
        )
        entry["text"] = _line_text(entry)
        entry["not_connected"] = entry["line"] in unplugged
        if entry["not_connected"]:
            _not_connected(entry)
        lines.append(entry)
    now_us = iso_to_us(snap.get("now"))
    now_text = lk().local_time().when(now_us) if now_us else ""
    snap = {k: v for k, v in snap.items() if k != "version"}
    return dict(snap, lines=lines, now_text=now_text)


def _not_connected(entry):
    """``entry`` (a line marked not connected: nothing plugged into its socket) as the
    dashboard says it: "Not connected", not a line fault, which is what an empty socket
    shows; a call seen on it is shown as any other, never recorded (its alarm says so)."""
    entry["record"] = False
    entry["can_pause"] = False
    entry["text"]["faults"] = ""
    if entry["state"] in ("idle", "fault"):
        entry["text"]["state"] = NOT_CONNECTED_WORDS
        entry["text"]["since"] = ""
        entry["recording"] = {"state": "none", "text": "Never recorded: line not connected"}
    elif entry["recording"]["state"] != "recording":
        entry["recording"] = {
            "state": "off",
            "text": "Not recorded: the line is marked not connected (an alarm says it is in use)",
        }


NOT_CONNECTED_WORDS = "Not connected: nothing is plugged into this socket"


def _without_who(call):
    """A call as someone not granted its line may see why it is not recorded: a number
    rule's name says who is calling (a union rep, a doctor), so it is not named."""
    if call is None:
        return None
    reason = call.get("policy_reason") or ""
    if reason.startswith("number "):
        reason = "a number rule"
    return dict(call, policy_reason=reason)


def recording_now(entry, call, recorded=None):
    """Whether the line's call is being recorded now: ``{"state", "text"}``.

    ``state`` is "recording", "paused", "off" (a call that is not recorded;
    ``text`` says why) or "none" (no call). ``recorded``: whether the box says
    a recording is running on the line (None when it cannot say); only then is
    the state "recording", and only then can it be paused.
    """
    state = entry["state"]
    if state == "fault":
        return {"state": "off", "text": "Not recorded: line fault"}
    if call is None or state in ("idle",):
        return {"state": "none", "text": "No call" if entry["record"] else "Private line: never recorded"}
    if not entry["record"]:
        # A call keeps its decision to its end: one begun before its line was made private
        # is still being recorded, which "Not recorded: private line" hid.
        if entry["paused"]:
            return {"state": "paused", "text": "Paused (card details): nothing is being recorded"}
        if recorded:
            return {
                "state": "recording",
                "text": "Recording: the call began before the line was made private, and is "
                "recorded to its end unless paused",
            }
        return {"state": "off", "text": "Not recorded: private line"}
    decision = call.get("policy_decision")
    if decision == "skip":
        reason = call.get("policy_reason")
        return {"state": "off", "text": "Not recorded" + (": " + reason if reason else "")}
    if decision == "pending":
        return {"state": "off", "text": "Not recorded yet: waiting for someone to ask"}
    if state in ("ringing", "alerting"):
        return {"state": "none", "text": "Not answered yet"}
    if entry["paused"]:
        return {"state": "paused", "text": "Paused (card details): nothing is being recorded"}
    if recorded is False:
        return {"state": "off", "text": "Not being recorded"}
    if decision is None and call.get("direction") == "out":
        # By the rules, a call being made is held in memory while it is dialled and kept
        # only if the number decides so (firmware.policy.engine): nothing is on the card.
        return {"state": "off", "text": "Not recorded yet: the rules decide once the number is dialled"}
    return {"state": "recording", "text": "Recording"}


def _line_text(entry):
    local = lk().local_time()
    since_us = iso_to_us(entry.get("since"))
    call = entry.get("call")
    call_text = ""
    if call:
        who = call.get("number") or (
            "erased on request"
            if call.get("absence") == "erased"
            else "removed after its retention period"
            if call.get("absence") == "expired"
            else "withheld"
            if call.get("absence")
            else ""
        )
        book = None
        if call.get("number"):
            site = lk().site.settings()
            book = (
                lk().phonebook.names_for([call["number"]], site.country if site else "uk").get(call["number"])
            )
        call_text = " ".join(
            x
            for x in (
                "Inbound" if call.get("direction") == "in" else "Outbound",
                who,
                call.get("name") or "",
                "(%s, phonebook)" % book if book and book != call.get("name") else "",
            )
            if x
        )
    return {
        "state": words.say("state", entry["state"]),
        "since": local.when(since_us) if since_us else "",
        "faults": "; ".join(words.say("fault", f) for f in entry.get("faults", [])),
        "call": call_text,
    }


def health():
    provider = lk().services.health
    if provider is None:
        return None
    data = provider()
    # An alarm of a line only for those who may see that line (as the banner and history).
    of_line = data.get("alarm_lines") or {}
    user = g.get("user")
    shown = set(alarm_lines(user)) if user is not None else set()
    alarms = [text for text in data.get("alarms", []) if of_line.get(text, 0) in shown | {0}]
    of_line = {text: line for text, line in of_line.items() if line in shown}
    note = data.get("recorder_start")
    if note:
        said = recorder_cannot_start(note, lk().local_time().when)
        alarms = [said if text == RECORDER_DOWN else text for text in alarms]
    # The health panel's list is the recorder's; the alarms the web UI's own checks raise
    # (the ICO renewal, a request overdue, the audit trail, a staff concern) are only in
    # the alarm history, and the panel said "none" under a banner of them still on.
    alarms += [text for text in logged_alarms_on(shown) if text not in alarms]
    alarms += reminders_now()
    return dict(data, alarms=alarms, alarm_lines=of_line)


def keys_lost_words():
    """One sentence: how many recordings of which of the user's lines cannot be opened, their
    line's key in no copy of the key store (a backup without it put back, ``keystore restore
    --accept-lost-lines``: docs/keys.md); None when there are none, or none to tell."""
    counts_of = getattr(lk().services.recordings, "keys_lost_counts", None)
    try:
        counts = counts_of() if counts_of is not None else {}
    except (sqlite3.Error, OSError) as exc:  # said on the page that failed, not here
        log.warning("the recordings whose line's key was lost were not counted (%s)", exc)
        return None
    shown = set(alarm_lines(g.user))
    lines = sorted(line for line in counts if line in shown)
    if not lines:
        return None
    parts = ["%s of line %d" % (words.counted(counts[n], "recording"), n) for n in lines]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return (
        "%s cannot be opened by anyone: the key store was put back from a backup made before "
        "their line's recording key (linekeeper keystore restore --accept-lost-lines), so that key is "
        "in no copy of it; nothing says they were altered." % (listed[0].upper() + listed[1:])
    )


def reminders_now():
    """What the box still lacks, as it is now, in the health panel's words with what to do:
    the reminders (firmware.alarmchecks.REMINDER_KINDS) and a box whose lines wait for a
    consent notice. The health panel and the Alarms page both list these, so the one never
    says "none" while the other lists some."""
    # As they are now, not as the last round of checks found them: a period just set is
    # no longer asked for. Their occurrences in the history are not listed again.
    alarms = []
    site = lk().site
    config = lk().services.box_config
    policy = config.get(leave_sealed=True).policy if config is not None else None
    if policy is not None and policy.consent.waits_for_notice():
        # Every call marked not recorded, and no alarm said why (a box `linekeeper init` made).
        alarms.append(
            "No line is recorded: no consent notice is set, so nobody on a call would be told "
            "it is recorded. An installer sets one on the Consent page."
        )
    if policy is not None and retention_words(policy.retention) is None:
        # The checklist's amber, which only installers and auditors open: the owner read
        # "Alarms: none" of a box keeping every recording for ever.
        alarms.append(reminder_words("retention_unset"))
    if not site.recovery_confirmed:
        alarms.append(reminder_words("recovery_key_unconfirmed"))
    # The checklist's ambers that are alarms (the key store's backup out of date, the DPIA
    # due for review): a backup just downloaded is no longer asked for.
    alarms += [reminder_words(kind) for kind, on in checklist_reminders(lk()).items() if on]
    return alarms


def still_to_do():
    """The checklist's safeguards not met yet (red first, then amber), for those who may
    read the checklist (installers and auditors), else None: an installer who has just
    set the box up sees on the dashboard what is left to make it compliant, not only on
    a page they have to think of opening."""
    if not g.user.has("installer", "auditor"):
        return None
    checks = [c for c in checklist(box_state(lk())) if c.status != "green"]
    return sorted(checks, key=lambda c: (c.status != "red", c.number))


@bp.app_template_global()
def todo_count(todo):
    """The sentence over the dashboard's "Still to do for compliance", from
    :func:`still_to_do`'s safeguards: how many are not met (red) and how many met in part
    or due soon (amber), each counted apart. One count of both read as that many not met,
    an owner with ten ambers and three reds reading "13 ... not met yet"."""
    red = sum(1 for c in todo if c.status == "red")
    amber = len(todo) - red
    said = [
        "%d %s %s" % (n, "is" if n == 1 else "are", what)
        for n, what in ((red, "not met (red)"), (amber, "met in part or due soon (amber)"))
        if n
    ]
    return "Of the checklist's safeguards, %s." % " and ".join(said)


def logged_alarms_on(lines):
    """The alarm history's occurrences still on, of ``lines`` and the whole box, oldest
    first, in the health panel's words (:func:`firmware.alarms.alarm_words`); [] without a
    history, or when the card refuses it (the banner says so)."""
    log = lk().services.alarms
    if log is None:
        return []
    try:
        rows = log.banner(sorted(lines))
    except sqlite3.Error:
        return []
    return [
        alarm_words(r["kind"], r["line"], r["message"])
        for r in rows
        if r["cleared_us"] is None and r["kind"] not in REMINDER_KINDS  # (health() says them)
    ]


def waiting_for_you():
    """What waits for this supervisor to act on, for the dashboard's "Waiting for you"
    (None for a user who is not a supervisor): ``{"requests": [(days left, entry)],
    "concerns": [...], "alarms": [...]}``. The data subjects' requests they answer, on their
    lines (:func:`web.views.rights.waiting_for`); the staff concerns not yet acknowledged
    (a concern, an objection or a request raised on My line); and the other alarms of their
    lines and the box not yet acknowledged, but the reminders the owner decides and the
    overdue request listed already. Each item links to where it is dealt with."""
    if not g.user.has("supervisor"):
        return None
    found = {"requests": waiting_for(g.user.lines), "concerns": [], "alarms": []}
    log = lk().services.alarms
    if log is None:
        return found
    try:
        rows = log.banner(sorted(alarm_lines(g.user)))
    except sqlite3.Error:
        return found  # (the banner says the history cannot be read)
    waiting = [
        r
        for r in rows
        if r["acknowledged_by"] is None and r["kind"] not in REMINDER_KINDS and r["kind"] != "request_overdue"
    ]
    # A concern is its own words, answered one by one; an alarm raised again and again (a
    # line dropping its voltage every few minutes) is one item, as on the banner, which
    # acknowledges them all in one press.
    found["concerns"] = [_waiting_item(dict(r, count=1)) for r in waiting if r["kind"] == "staff_concern"]
    found["alarms"] = [_waiting_item(r) for r in grouped(r for r in waiting if r["kind"] != "staff_concern")]
    return found


def _waiting_item(row):
    """A "Waiting for you" item of the alarm occurrences ``row`` (:func:`grouped`'s fields
    of the latest, or one occurrence's with ``count`` 1)."""
    return {
        "id": row["id"],
        "raised_us": row["raised_us"],
        "first_us": row.get("first_us", row["raised_us"]),
        "count": row["count"],
        "text": alarm_words(row["kind"], row["line"], row["message"]),
    }


def grouped(rows):
    """Alarm occurrences (the banner's, the "Waiting for you" alarms), one row per alarm and
    line (a line that drops its voltage every few minutes is one row, not one per drop): the
    latest occurrence's fields, and ``count``, ``first_us``, ``on`` (any still on) and
    ``unacknowledged`` (their ids). A concern is a row of its own, but for the same words
    from the same person sent again: its words are a person's, answered one by one (as under
    "Waiting for you"); grouped, the banner showed the latest concern's words alone and
    acknowledged the others, unread, with it."""
    groups = {}
    # In the order they were raised (by id): a clock set back (a restart before the time
    # was synchronised) put an occurrence raised since before one cleared, whose words and
    # times the group then showed, "still on".
    for row in sorted(rows, key=lambda r: r["id"]):
        key = (row["kind"], row["line"], row["message"] if row["kind"] == "staff_concern" else None)
        first = groups.get(key)
        group = dict(row)
        group["count"] = (first["count"] if first else 0) + 1
        group["first_us"] = min(first["first_us"], row["raised_us"]) if first else row["raised_us"]
        group["on"] = (first["on"] if first else False) or row["cleared_us"] is None
        group["unacknowledged"] = (first["unacknowledged"] if first else []) + (
            [] if row["acknowledged_by"] else [row["id"]]
        )
        groups[key] = group
    return list(groups.values())


@bp.route("/")
@roles()
def index():
    if not g.user.has(*OFFICE_ROLES):
        # Staff see their own line, not every line's state.
        return redirect(url_for("myline.index"))
    snap = visible_snapshot(g.user)
    return render_template(
        "dashboard.html",
        snap=snap,
        health=health(),
        archive=archive_tile(),
        errors={},
        acted=_acted(snap, request.args.get("acted", "")),
        live_alarms=True,  # its banner follows the alarms live (the signature it was drawn with)
        # An auditor's list of every request due; a supervisor's are in "Waiting for you".
        requests=attention() if g.user.has("auditor") else None,
        waiting=waiting_for_you(),
        request_kinds=rights.KINDS,  # a request's kind in the request page's words, not its code
        todo=still_to_do(),
        keys_lost=keys_lost_words(),
    )


def _acted(snap, text):
    """The line whose Pause or Resume the user just pressed (``?acted=N``), with its state now.

    The page puts the keyboard's focus back on that line's button, and says in
    its own words (never the link's) whether the line is paused: ``{"line": N,
    "paused": bool}``, or None for no such line of theirs.
    """
    if not (text.isascii() and text.isdigit() and len(text) < 4):
        return None
    for entry in snap["lines"]:
        if entry["line"] == int(text) and entry.get("can_pause"):
            return {"line": entry["line"], "paused": entry["paused"]}
    return None


def archive_tile():
    """The archive's state for the dashboard (counts, last upload, latest problems), or None."""
    source = lk().services.archive
    return source.summary() if source is not None else None


def _refused(message, status):
    """The dashboard again, saying why a pause or resume was not made."""
    return render_template(
        "dashboard.html",
        snap=visible_snapshot(g.user),
        health=health(),
        archive=archive_tile(),
        errors={"form": message},
        live_alarms=True,
        todo=still_to_do(),
        waiting=waiting_for_you(),
        request_kinds=rights.KINDS,
    ), status


@bp.route("/lines/<int:line>/pause", methods=["POST"])
@roles("supervisor")
def pause(line):
    """Pause (``action=pause``) or resume (``action=resume``) the recording on ``line``."""
    live = lk().services.live
    if live is None:
        abort(404)
    if line not in g.user.lines:
        abort(403)
    action = request.form.get("action")
    if action not in ("pause", "resume"):
        abort(400, description="Choose to pause or to resume the recording.")
    try:
        if action == "pause" and line not in live.pausable_lines():
            raise ValueError(
                "line %d has no call that is or may be recorded: there is nothing to pause" % line
            )
        # The address, as every other action from a page carries it (web.security.audit).
        act = live.pause if action == "pause" else live.resume
        act(line, g.user.name, address=request.remote_addr or "")
    except ValueError as exc:  # no call on the line, already paused, not paused
        return _refused(str(exc)[:1].upper() + str(exc)[1:] + ".", 409)
    except RecorderUnavailable as exc:
        # Said as not done: a pause taken for made would let card details be recorded.
        return _refused(
            "The recording on line %d was not %s: %s. Try again; until the line shows "
            "the recording paused, do not take card details on it."
            % (line, "paused" if action == "pause" else "resumed", exc),
            503,
        )
    # Back to the same button (a keyboard user's place on the page), told what happened.
    # (No #fragment: a page opened at one does not autofocus.)
    return redirect(url_for("dashboard.index", acted=line))
