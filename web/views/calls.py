"""Calls: search, detail, playback (HTTP Range), export and legal hold.

Only supervisors, and only on the lines granted to them: a call on another
line is answered 404, exactly like a call that does not exist, so ids reveal
nothing.

Nobody listens without saying why: the call's page offers a *Listen* form
asking the reason (5 to 500 characters, as an export's), and only a listen
shows the player. Every playback is audited once per *listening session*,
when audio is actually played, with that reason: each listen form sent gets
a fresh random listening token, kept in the server-side session with the
reason, and is redirected to the call's page with it (``?listen=``: a reload
shows the same player and sends no form again); the ``<audio>`` element's URL
carries it. The page fetches no audio by itself (``preload="none"``; the length
shown comes from the call record), so the first audio bytes sent for a token are
a play the person started: that request writes one ``playback`` entry (claimed atomically, so the browser's
parallel first requests cannot write two); its further Range requests
(seeking, buffering, replaying) with the same token write none. Audio
requests without a token issued to this session for this call are refused,
so nobody plays a recording without an entry. Opening a call's page is audited too
(``call_viewed``), once per login session and call (:func:`_audit_view`), and so is each page
of the calls list shown (``list_viewed`` of ``calls``, with its search, how many calls it
showed, each with its caller's number, and their ids: ``calls``); a search refused shows no
call and writes none.
"""

import dataclasses
import datetime
import os
import re
import secrets

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from firmware import rights, words
from firmware.calls.calllog import ERASED, EXPIRED, iso_ms
from firmware.calls.callsearch import NUMBER_MATCH_DEFAULT, CallFilter, Cursor, search_number
from firmware.errors import LineKeyLostError
from firmware.localtime import TIME_OF_DAY_PROBLEM, duration_text, iso_to_us, time_of_day
from firmware.policy import deletions
from firmware.policy.retention import check_category
from firmware.policy.rules import BEFORE_SETUP, outcome
from firmware.reports.compute import consent_outcome, tone_was_notice
from firmware.typed import card_problem

from .. import callstory, intent
from ..download import export_body
from ..phonebook import NoteAddedAlready, PhonebookError, clean_name
from ..security import audit, form_errors, lk, roles, sentences, unlocked_key, visible_lines, whole_number
from ..site import given_reason
from . import csv_download, csv_within, outside_lines, rights_register, row_id, supervised_lines
from .sar import release_shown, withheld_shown

bp = Blueprint("calls", __name__)

PAGE = 50
MAX_TOKENS = 64
MAX_VIEWED = 1000  # calls whose page a session has opened (their view audited), kept in memory
CHUNK = 64 * 1024
# ".zip": the audio and its signed manifest, for `linekeeper verify-export` (docs/evidence.md).
EXPORT_FORMATS = ("ogg", "wav", "ogg.zip", "wav.zip")
# Words typed in the number field for a caller whose network sent no number.
ABSENCE_WORDS = {
    "withheld": "private",
    "private": "private",
    "unavailable": "unavailable",
    "erased": ERASED,
    "expired": EXPIRED,  # removed by retention (docs/policy.md, "Callers' details in the call log")
}
EXPORT_NAMES = words.EXPORT_FORMATS
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def call_or_404(call_id, act=False):
    """The call if it exists and is on a line the user may see; else 404.

    ``act``: the user means to play, export, hold or annotate it, which only a
    supervisor of its line may do.
    """
    # A number past SQLite's integers (the URL takes any digits) is no call's, as one no call
    # has: looked up, it raised (a server error).
    call = lk().services.calls.get(call_id) if row_id(call_id) else None
    lines = g.user.lines if act or not g.user.has("auditor") else visible_lines(g.user)
    if call is None or call["line"] not in lines or (act and not g.user.has("supervisor")):
        abort(404)
    return call


def _day_us(text, field, errors, end=False, time_text=""):
    """Local midnight (the box's zone) starting the day ``text``, or the day after (``end``).

    With ``time_text`` (``HH:MM``, from the field ``<field>_time``) the start of that minute
    of the day instead, or (``end``) the end of that minute: both ends are included, as days
    are. A time without its day is refused: it names no moment."""
    time_field = field + "_time"
    minute = None
    if time_text:
        minute = time_of_day(time_text)
        if minute is None:
            errors[time_field] = TIME_OF_DAY_PROBLEM
        elif not text:
            errors[time_field] = "Choose the day of this time too (%s)." % field.capitalize()
            minute = None
    if not text:
        return None
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        errors[field] = (
            "%s is not a day of the calendar." % text
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)
            else "Enter a date as YYYY-MM-DD."
        )
        return None
    clock = lk().local_time()
    if minute is not None:
        return clock.minute_start_us(day, minute, last=end) + (60_000_000 if end else 0)
    return clock.day_end_us(day) if end else clock.day_start_us(day)


def _country():
    site = lk().site.settings()
    return site.country if site is not None else "uk"


def parse_filters(args, granted):
    """``(CallFilter or None, after, before, errors)`` from the search form's query string."""
    errors = {}
    since = _day_us(args.get("from", "").strip(), "from", errors, time_text=args.get("from_time", "").strip())
    until = _day_us(
        args.get("to", "").strip(), "to", errors, end=True, time_text=args.get("to_time", "").strip()
    )
    if since is not None and until is not None and until <= since:
        errors["to"] = (
            "The end is before the start."
            if args.get("from_time") or args.get("to_time")
            else "The end date is before the start date."
        )
    lines = tuple(granted)
    asked = args.getlist("line")
    if asked:
        wanted = {whole_number(x) for x in asked}
        if not wanted <= set(granted):
            errors["line"] = "You can search lines %s only." % ", ".join(map(str, granted))
        lines = tuple(sorted(wanted & set(granted)))
    direction = args.get("direction") or None
    if direction not in (None, "in", "out"):
        errors["direction"] = "Choose inbound or outbound."
    match = args.get("match") or NUMBER_MATCH_DEFAULT
    if match not in ("prefix", "contains"):
        errors["match"] = "Choose 'starts with' or 'contains'."
        match = NUMBER_MATCH_DEFAULT
    # A number the caller's network did not send is searched by the word the list shows.
    absence = ABSENCE_WORDS.get(" ".join((args.get("number") or "").lower().split()))
    number = None if absence else search_number(args.get("number") or "", _country(), match) or None
    if number is not None and not re.fullmatch(r"[0-9*#+]{1,32}", number):
        errors["number"] = (
            "A number has only digits (and spaces, * # + - ( )), at most 32, "
            "such as 01632 960777 or +44 1632 960777; or search for withheld or unavailable."
        )
    name = " ".join((args.get("name") or "").split()) or None
    name_numbers = named_ids = renamed_ids = ()
    if name is not None:
        if len(name) > 64:
            errors["name"] = "At most 64 characters of the name."
        else:
            name_numbers = lk().phonebook.numbers_named(name, _country())
            # A call whose name was corrected (UK GDPR Art. 16) is found by that name, and no
            # longer by the caller-ID's or the phonebook's: the corrected name is the call's.
            named_ids, renamed_ids = lk().corrections.calls_named(name)
    tag = args.get("tag") or None
    if tag is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", tag):
        errors["tag"] = "Choose a tag from the list."
    min_duration = None
    if args.get("min_duration"):
        min_duration = whole_number(args["min_duration"])
        if min_duration is None or not 0 <= min_duration <= 86400:
            errors["min_duration"] = "Enter a whole number of seconds (0 to 86400)."
    recorded = {"": None, "yes": True, "no": False}.get(args.get("recorded", ""), "bad")
    if recorded == "bad":
        errors["recorded"] = "Choose recorded, not recorded, or either."
    answered = {"": None, "yes": True, "no": False}.get(args.get("answered", ""), "bad")
    if answered == "bad":
        errors["answered"] = "Choose answered, not answered, or either."
    held = {"": None, "yes": True, "no": False}.get(args.get("held", ""), "bad")
    if held == "bad":
        errors["held"] = "Choose on legal hold, not held, or either."
    cursors = {}
    for key in ("after", "before"):
        if args.get(key):
            try:
                cursors[key] = Cursor.decode(args[key])
            except ValueError:
                errors[key] = "That page link is not valid; start the search again."
    if errors:
        return None, None, None, errors
    flt = CallFilter(
        since_us=since,
        until_us=until,
        lines=lines,
        direction=direction,
        number=number,
        number_match=match,
        # "Starts with" looks past the prefixes dialled before a number (141, 18001) and a
        # line's outside-line digit, as a subject access search does.
        country=_country(),
        outside=tuple(sorted(outside_lines().items())) if number is not None else (),
        min_duration_s=min_duration,
        recorded=recorded,
        name=name,
        name_numbers=name_numbers,
        named_ids=named_ids,
        renamed_ids=renamed_ids,
        tag=tag,
        absence=absence,
        answered=answered,
        held=held,
    )
    return flt, cursors.get("after"), cursors.get("before"), {}


# The search form's fields: only these go on into the page and CSV links (a key such
# as _anchor or _external is url_for's own, and broke or redirected the links).
FILTER_FIELDS = (
    "from",
    "from_time",
    "to",
    "to_time",
    "line",
    "direction",
    "match",
    "number",
    "name",
    "tag",
    "min_duration",
    "recorded",
    "answered",
    "held",
)


def _filter_query(args):
    return {k: v for k, v in args.to_dict(flat=False).items() if k in FILTER_FIELDS}


def _search_shown(query):
    """The search of ``query`` (:func:`_filter_query`) as an audit entry says it: each field
    given, a field given more than once (lines) as a list; the page cursor is no part of it."""
    shown = {}
    for key in FILTER_FIELDS:
        given = [v for v in query.get(key, ()) if v]
        if given:
            shown[key] = given if len(given) > 1 else given[0]
    return shown


def _page_url(args, **cursor):
    query = _filter_query(args)
    query.update({k: [v.encode()] for k, v in cursor.items()})
    return url_for("calls.index", **query)


def decorate(calls, web=None, country=None):
    """Add each call's phonebook name (``book_name``), its corrected name (``corrected``:
    :meth:`web.corrections.NameCorrections.of_calls`, or None) and tags, for lists and pages.
    ``web`` and ``country`` given, it needs no request (a CSV being sent)."""
    web = web or lk()
    names = web.phonebook.names_for([c["number"] for c in calls], country or _country())
    tags = (
        web.services.calls.tags_of([c["id"] for c in calls]) if hasattr(web.services.calls, "tags_of") else {}
    )
    corrected = web.corrections.of_calls([c["id"] for c in calls])
    for c in calls:
        c["book_name"] = names.get(c["number"])
        # The name corrected for this call (UK GDPR Art. 16), shown instead, marked corrected.
        c["corrected"] = corrected.get(c["id"])
        if not c.get("tags"):
            c["tags"] = tags.get(c["id"], [])
    return calls


def _tags_in_use():
    """The tags on calls the user may see (a tag on another line's call says something of it)."""
    calls = lk().services.calls
    return calls.tags_in_use(lines=visible_lines(g.user)) if hasattr(calls, "tags_in_use") else []


@bp.route("/calls")
@roles("supervisor", "auditor")
def index():
    granted = visible_lines(g.user)
    flt, after, before, errors = parse_filters(request.args, granted)
    # The Recording column in the CSV's words (an erasure on request is not a deletion).
    ctx = dict(args=request.args, granted=granted, tags_in_use=_tags_in_use(), recording_word=_recording_word)
    if errors:
        return form_errors(
            "calls.html",
            errors,
            calls=[],
            holds={},
            next_url=None,
            prev_url=None,
            total=None,
            csv_url=None,
            **ctx,
        )
    search = lk().services.calls
    calls, cursor = search.search(flt, after=after, before=before, limit=PAGE)
    next_url = prev_url = None
    if before is not None:
        if cursor is not None:
            prev_url = _page_url(request.args, before=cursor)
        if calls:
            next_url = _page_url(request.args, after=Cursor(calls[-1]["started_us"], calls[-1]["id"]))
    else:
        if cursor is not None:
            next_url = _page_url(request.args, after=cursor)
        if after is not None and calls:
            prev_url = _page_url(request.args, before=Cursor(calls[0]["started_us"], calls[0]["id"]))
    total = search.count(flt) if hasattr(search, "count") else None
    query = _filter_query(request.args)
    # Each page shows its calls' numbers: a look at personal data, one entry per page shown
    # with its search (sealed with the trail's details, as a CSV's is), how many calls and
    # which (so an auditor can tell who saw a call in a list): at most PAGE ids, a page's.
    audit(
        "list_viewed",
        "calls",
        filter=_search_shown(query) or "all calls",
        rows=len(calls),
        calls=[c["id"] for c in calls[:PAGE]],
    )
    # The calls on legal hold, as `linekeeper calls` and the CSV say it ("Complete, held").
    holds = search.legal_holds_of([c["id"] for c in calls]) if hasattr(search, "legal_holds_of") else {}
    # A tag typed in the URL (or kept in a bookmark) that no call the user may see has: the
    # list is empty because of it, so the page says so, with the tags there are.
    missing_tag = flt.tag if flt.tag is not None and flt.tag not in ctx["tags_in_use"] else None
    return render_template(
        "calls.html",
        errors={},
        missing_tag=missing_tag,
        holds=holds,
        calls=decorate(calls),
        next_url=next_url,
        prev_url=prev_url,
        total=total,
        csv_url=url_for("calls.export_list", **query),
        csv_max=CSV_MAX_ROWS,
        **ctx,
    )


CSV_MAX_ROWS = 100_000
CSV_COLUMNS = (
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "line",
    "line_name",
    "direction",
    "number",
    "caller_id_name",
    "phonebook_name",
    "talk_time_s",
    "recording",
    "policy_decision",
    "tags",
    # What an inspector asks of each call: why it was (not) recorded, whether the
    # caller was told, and how long it was paused for card details.
    "policy_reason",
    "consent_notice",
    "consent_given",
    "consent_at",
    "paused_s",
    # Whether the call is on legal hold (never deleted while held), and since when.
    # Added last, so a sheet that reads the columns by position still reads the rest.
    "legal_hold",
    "legal_hold_since",
    # Whether digits keyed after a card number while dialling (a security code) were
    # withheld from the number (PCI DSS: never kept), as the call's page says it.
    "digits_withheld",
    # The caller's name corrected for the call on request (its page), empty for none: the
    # caller_id_name and phonebook_name were wrong for it.
    "corrected_name",
)


def _recording_word(call):
    """The ``recording`` column of the list and its CSV: the recording's state, ``erased``
    for one erased on a person's request (its page says so) and ``deleted`` for one
    retention or a full card deleted; empty for a call never recorded
    (:func:`firmware.policy.deletions.recording_word`, as ``linekeeper calls`` says it)."""
    return deletions.recording_word(call.get("recording_state") or "", call.get("recording_deleted"))


def _csv_evidence(call):
    """The list's last columns for ``call``: its recording reason, its consent notice
    (kind, given yes/no, when; empty where no notice was due) and the seconds paused."""
    consent = call.get("consent") or {}
    given = {"given": "yes"}.get(consent_outcome(consent), "no") if consent else ""
    notice, at = consent.get("notice") or "", consent.get("at") or ""
    if tone_was_notice(consent):
        # Its only notice was the warning tone, counted by its beeps as the reports do.
        notice, at = "warning_tone", consent.get("warning_tone_first_at") or ""
    # A span without an end is one a restart cut: silent to the end of its call (none
    # yet for a call under way: counted when it ends).
    paused_us = sum(
        iso_to_us(s.get("to") or call["ended_at"]) - iso_to_us(s["from"])
        for s in call.get("pause_spans") or []
        if s.get("from") and (s.get("to") or call.get("ended_at"))
    )
    return [
        call.get("policy_reason") or "",
        notice,
        given,
        at,
        round(paused_us / 1e6, 1),
    ]


@bp.route("/calls.csv")
@roles("supervisor", "auditor")
def export_list():
    """The filtered calls list as CSV (UTC times, as stored), newest first, audited as
    ``export_list`` with the filter and its ``rows``.

    Sent as it is read (:func:`web.views.csv_download`), :data:`CSV_BATCH` calls at a
    time: 100 000 rows made whole first were tens of MB in a web UI of 384 MiB. The audit
    entry is written before anything leaves, so ``rows`` is counted first, with the same
    filter (:meth:`~firmware.calls.callsearch.CallSearch.count`, exact up to one over
    :data:`CSV_MAX_ROWS`). A search that selects more is refused, saying so
    (:func:`web.views.csv_within`): a file of its newest calls looked like all of them.
    """
    granted = visible_lines(g.user)
    flt, _after, _before, errors = parse_filters(request.args, granted)
    if errors:
        abort(400, description="The search is not valid: " + sentences(errors.values()))
    web = lk()
    # A count of time, line or the like is exact whatever the cap; of a number, name or
    # tag exact up to it: one over it is "more".
    count, exact = web.services.calls.count(flt, cap=CSV_MAX_ROWS + 1)
    csv_within("calls", count, exact, CSV_MAX_ROWS, "Choose a shorter period (from and to)")
    query = {k: v for k, v in request.args.items() if k in FILTER_FIELDS and v}
    return csv_download(
        "calls.csv",
        CSV_COLUMNS,
        _csv_rows(web, flt, count, web.site.settings(), _country()),
        "calls",
        count=count,
        filter=query or "all calls",
    )


CSV_BATCH = 200  # calls read at a time for the CSV


def _csv_rows(web, flt, count, site, country):
    """The newest ``count`` calls ``flt`` selects, as CSV rows, read :data:`CSV_BATCH` at a
    time from where the last batch ended (a cursor: no OFFSET, which reads every row
    skipped again). Needs no request: it is read after the view returns."""
    calls_db = web.services.calls
    done, cursor = 0, None
    while done < count:
        calls, cursor = calls_db.search(flt, after=cursor, limit=min(CSV_BATCH, count - done))
        holds = calls_db.legal_holds_of([c["id"] for c in calls])
        for c in decorate(calls, web, country):
            yield [
                c["id"],
                c["started_at"],
                c["answered_at"] or "",
                c["ended_at"] or "",
                c["line"],
                site.line(c["line"]).name if site else "",
                c["direction"],
                c["number"]
                or {
                    "unavailable": "unavailable",
                    ERASED: "erased on request",
                    EXPIRED: "removed after its retention period",
                    None: "",
                }.get(c.get("absence"), "withheld"),
                c["name"] or "",
                c["book_name"] or "",
                c["duration_s"] if c["answered"] else "",
                _recording_word(c),
                outcome(c.get("policy_decision"), c.get("policy_reason")) or "",
                " ".join(c.get("tags") or []),
                *_csv_evidence(c),
                "yes" if c["id"] in holds else "no",
                iso_ms(holds[c["id"]]) if c["id"] in holds else "",
                "yes" if c.get("digits_withheld") else "no",
                (c["corrected"] or {}).get("name") or "",
            ]
        done += len(calls)
        if cursor is None:
            return


def _recording(call_id):
    recordings = lk().services.recordings
    return None if recordings is None else recordings.recording_info(call_id)


DAMAGED = (
    "This recording cannot be played: its file on the card has changed since it was recorded "
    "(the card damaged it, or someone changed it), so none of it can be trusted. An installer "
    "runs the command linekeeper verify on the box's console, which lists every such "
    "recording; keep the file as it is."
)


def _recording_or_gone(call_id, done):
    """``(info, None)`` for the call's recording, or ``(None, response)``: the call's page
    saying it has no recording now and that nothing was ``done`` ("exported"). A form is
    often sent from a page opened before retention deleted the recording: the call is
    still there, on the person's line, so not "Not found"."""
    info = _recording(call_id)
    if info is not None:
        return info, None
    problem = "This call has no recording now (deleted since the page was opened?): nothing was %s." % done
    return None, detail(call_id, errors={"recording": problem}, status=409)


PLAYED_ACTIONS = (
    "playback",
    "export",
    "legal_hold",
    "pause",
    "resume",
    "call_note",
    "delete",
    "erase_details",
    "correct_details",
)


def _story(call, info, deleted):
    """What the page shows besides the call's own fields (see web.callstory)."""
    web = lk()
    now_us = web.services.wall_us()
    history = [
        e
        for e in web.services.audit.entries(limit=200, targets=[str(call["id"]), "call:%d" % call["id"]])
        if e.action in PLAYED_ACTIONS
    ]
    # Released to someone in a subject access bundle: the release names its calls.
    disclosures = web.services.audit.entries(limit=500, action="disclosure")
    released = [
        _reasons_shown(e, disclosures)
        for e in disclosures
        if call["id"] in (e.details.get("calls") or ())
        and release_shown(e.actor, e.details.get("calls") or (), g.user)
    ]
    history = sorted(history + released, key=lambda e: e.seq, reverse=True)
    if call.get("absence") in (ERASED, EXPIRED):
        # The trail keeps a note's text (sealed) as the record of who wrote what; the page
        # shows no erased caller's details, so not those texts either.
        gone = "(removed after its retention period)" if call["absence"] == EXPIRED else "(erased on request)"
        history = [_without_note_text(e, gone) for e in history]
    talk = None
    if call.get("answered") and not call.get("ended_at"):
        talk = "in progress, %s so far" % duration_text((now_us - iso_to_us(call["answered_at"])) / 1e6)
    return dict(
        timeline=callstory.timeline(call, info, now_us),
        why_none=None if info else callstory.why_no_recording(call, deleted),
        notice_proof=callstory.notice_proof(call, info, deleted),
        history=history,
        # The person who paused or resumed from the web page, as the history names them.
        pause_people=callstory.pause_people(call.get("pause_spans"), history),
        notes=web.notes.of_call(call["id"]),
        talk_text=talk,
        can_act=g.user.has("supervisor") and call["line"] in g.user.lines,
        tags_in_use=_tags_in_use(),
        can_tag=lk().services.call_tags is not None,
        hold_reason=_hold_reason(call["id"], info),
    )


def _hold_reason(call_id, info):
    """Why the call's legal hold was placed: the reason of the trail's entry that placed it
    (the newest placement by the hold's own person, written just before the hold), or None
    (not held, or held before a hold asked a reason)."""
    if not info or not info.get("legal_hold") or info.get("legal_hold_since") is None:
        return None
    placements = lk().services.audit.entries(
        limit=20,
        action="legal_hold",
        targets=[str(call_id)],
        actor=info.get("legal_hold_by"),
        until_us=info["legal_hold_since"] + 1,
    )
    return next((e.details.get("reason") for e in placements if e.details.get("on") is True), None)


def _reasons_shown(entry, disclosures):
    """A release's audit entry with the reason each copy was withheld from its letter only
    where the user may see that copy's release (among ``disclosures``, the trail's
    ``disclosure`` entries), as the Disclosures page has it: a reason can name a police
    request or a private person."""
    if not entry.details.get("withheld"):
        return entry
    seen = {
        int(e.target.split(":")[1])
        for e in disclosures
        if "calls" in e.details and release_shown(e.actor, e.details["calls"], g.user)
    }
    shown = withheld_shown(entry.details["withheld"], seen.__contains__)
    return dataclasses.replace(entry, details=dict(entry.details, withheld=shown))


def _without_note_text(entry, gone):
    if entry.action != "call_note" or "note" not in entry.details:
        return entry
    return dataclasses.replace(entry, details=dict(entry.details, note=gone))


@bp.route("/calls/<int:call_id>")
@roles("supervisor", "auditor")
def detail(call_id, errors=None, status=200, note_typed="", tag_typed=""):
    """The call's page; with ``?listen=<token>`` (where the Listen form redirects,
    :func:`listen`) the player of that listen, if the token is this session's for this call;
    ``note_typed``, ``tag_typed``: a refused note's or tag's text, given back in its field."""
    call = decorate([call_or_404(call_id)])[0]
    _audit_view(call)
    info = _recording(call_id)
    can_play = g.user.has("supervisor") and call["line"] in g.user.lines
    # A file the card damaged (or someone changed) is said here, not found by a Listen.
    damaged = (
        info is not None
        and info.get("state") in ("complete", "partial")
        and not info.get("key_lost")
        and bool(lk().services.recordings.damaged(call_id))
    )
    can_listen = (
        info is not None
        and can_play
        and unlocked_key() is not None
        and info.get("state") != "recording"
        and not damaged
    )
    token = listen_reason = None
    if can_listen:
        asked = request.args.get("listen", "")
        playback = lk().sessions.mem(g.session)["playbacks"].get(asked)
        if playback is not None and playback["call_id"] == call_id:
            # The same listen shown again (a reload): its token, whose first play is audited
            # once, as before the reload; the form again once the token is gone.
            token, listen_reason = asked, playback["reason"]
    retention = lk().services.retention
    deleted = retention.deletions_of_call(call_id) if info is None and retention is not None else []
    return render_template(
        "call.html",
        call=call,
        # Answered before the box was set up: no notice had been chosen yet, none turned off.
        before_setup=outcome(call.get("policy_decision"), call.get("policy_reason")) == BEFORE_SETUP,
        info=info,
        damaged=DAMAGED if damaged else None,
        token=token if not damaged else None,
        can_listen=can_listen,
        listen_reason=listen_reason,
        has_key=unlocked_key() is not None,
        errors=errors or {},
        note_typed=note_typed,
        tag_typed=tag_typed,
        formats=info.get("formats", EXPORT_FORMATS) if info else EXPORT_FORMATS,
        format_names=EXPORT_NAMES,
        deleted=deleted,
        deletion_words=deletions.describe,
        can_erase=info is not None
        and not info.get("legal_hold")
        and info.get("state") in ("complete", "partial")
        and hasattr(retention, "erase"),
        # The caller's details of a call with no recording (one with a recording goes with it).
        can_erase_details=info is None
        and can_play
        and call.get("ended_at") is not None
        and hasattr(retention, "erase_details")
        # Erased already, with notes whose text is left (the web UI failed between the
        # recorder's step and its own): the form finishes the job.
        # (Removed by retention: the same, for what web.db may still hold.)
        and (call.get("absence") not in (ERASED, EXPIRED) or _details_left(call_id)),
        can_correct=can_play and call.get("absence") not in (ERASED, EXPIRED),
        archive_on=lk().services.archive is not None,
        archived=lk().services.archive.of(call_id) if lk().services.archive is not None else None,
        **_story(call, info, deleted),
    ), status


def _audit_view(call):
    """The call's page opened: it shows the caller's number and name, so who looked at them
    is audited (``call_viewed``, target the call's id, as its playback's: the Audit page's
    number filter finds it). Once per login session and call, as a playback is once per
    listening session: the page shown again (reloaded, after a tag, a note, the Listen form)
    writes none. dict.setdefault is atomic: of two parallel first views only one writes."""
    viewed = lk().sessions.mem(g.session).setdefault("viewed", {})
    mine = object()
    if viewed.setdefault(call["id"], mine) is not mine:
        return
    while len(viewed) > MAX_VIEWED:
        viewed.pop(next(iter(viewed)))
    try:
        audit("call_viewed", call["id"], line=call["line"])
    except BaseException:
        viewed.pop(call["id"], None)  # not written: the next view tries again
        raise


@bp.route("/calls/<int:call_id>/listen", methods=["POST"])
@roles("supervisor")
def listen(call_id):
    """A new listen, once the listener has said why: the reason is kept with a new listening
    token and goes in the ``playback`` entry written when audio is first played (nothing is
    audited until then); answered with a redirect to the call's page showing its player.
    No reason, or a bad one, shows the page again without the player, saying what was wrong."""
    call_or_404(call_id, act=True)
    info, gone = _recording_or_gone(call_id, "played")
    if gone is not None:
        return gone
    if info.get("key_lost"):  # the page says why it cannot be played, not the form
        return detail(call_id, status=409)
    if lk().services.recordings.damaged(call_id):
        # The player's audio would be an error page the browser cannot show: a silent player.
        return detail(call_id, errors={"recording": DAMAGED + " Nothing was played."}, status=409)
    reason, problem = given_reason("listen_reason", "played", "complaint ref 1234")
    if problem:
        return detail(call_id, errors={"listen_reason": problem}, status=400)
    if unlocked_key() is None:
        return detail(
            call_id, errors={"listen_reason": "Log in again to unlock recordings for playback."}, status=400
        )
    token = secrets.token_urlsafe(16)
    playbacks = lk().sessions.mem(g.session)["playbacks"]
    playbacks[token] = {"call_id": call_id, "unaudited": True, "reason": reason}
    while len(playbacks) > MAX_TOKENS:
        playbacks.pop(next(iter(playbacks)))
    # Post/Redirect/Get: a reload of the page shows this listen's player again, and does
    # not ask the browser to send the form again (a new listen, a new entry once played).
    return redirect(url_for("calls.detail", call_id=call_id, listen=token) + "#player", 303)


@bp.route("/calls/<int:call_id>/tags", methods=["POST"])
@roles("supervisor")
def tags(call_id):
    """Add a tag (``add``, a category name) or take one off (``remove``); audited."""
    call = call_or_404(call_id, act=True)
    store = lk().services.call_tags
    if store is None:
        abort(404)
    add = (request.form.get("add") or "").strip().lower()
    remove = (request.form.get("remove") or "").strip()
    web = lk()
    if remove:
        if remove in store.tags(call_id):
            intent.change_checked(
                web,
                ("call_note", str(call_id), {"line": call["line"], "removed": remove}),
                lambda: store.remove_tag(call_id, remove),
                {"kind": "tag", "call_id": call_id, "tag": remove, "on": False},
            )
        return redirect(url_for("calls.detail", call_id=call_id) + "#tags")
    typed = request.form.get("add") or ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", add):
        return detail(
            call_id,
            tag_typed=typed,
            errors={
                "add": (
                    "A tag is 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter "
                    "or digit (for example complaint)."
                )
            },
            status=400,
        )
    try:
        check_category(add, "tag")
    except ValueError as exc:
        return detail(call_id, errors={"add": str(exc)}, status=400, tag_typed=typed)
    if card_problem(add):  # PCI DSS: a tag is shown, exported and archived as it is
        # Nor back into its own field: the card number goes on no page.
        return detail(
            call_id, errors={"add": "A tag cannot be a card number: the box keeps none."}, status=400
        )
    if add in store.tags(call_id):  # already there: nothing changes, nothing to audit
        return redirect(url_for("calls.detail", call_id=call_id) + "#tags")
    intent.change_checked(
        web,
        ("call_note", str(call_id), {"line": call["line"], "added": add}),
        lambda: store.add_tags(call_id, [add]),
        {"kind": "tag", "call_id": call_id, "tag": add, "on": True},
    )
    return redirect(url_for("calls.detail", call_id=call_id) + "#tags")


@bp.route("/calls/<int:call_id>/notes", methods=["POST"])
@roles("supervisor")
def notes(call_id):
    """Add a note to the call (at most 1000 characters); audited with its text."""
    call = call_or_404(call_id, act=True)
    web = lk()
    try:
        web.notes.add(
            call_id,
            request.form.get("note"),
            g.user.name,
            audited=lambda note: intent.audited_tx(
                web, [("call_note", str(call_id), {"line": call["line"], "note": note})]
            ),
        )
    except ValueError as exc:
        said = str(exc)[:1].upper() + str(exc)[1:] + "."
        if isinstance(exc, NoteAddedAlready):  # it is in the list above: not offered again
            return detail(call_id, errors={"note": said}, status=409)
        typed = request.form.get("note") or ""
        if card_problem(typed):
            # PCI DSS: the card number goes on no page, not even back into its own field.
            said += (
                " The note is not shown again here, so that the card number is on no page:"
                " write it again without it."
            )
            typed = ""
        return detail(call_id, errors={"note": said}, status=400, note_typed=typed)
    return redirect(url_for("calls.detail", call_id=call_id) + "#notes")


def parse_range(header, size):
    """``(start, end)`` inclusive for a single-range ``Range`` header, None for none.

    Raises ValueError for a range that cannot be satisfied (416). Several
    ranges (``a-b,c-d``) are answered with the whole file (allowed by RFC 9110).
    """
    if not header or "," in header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise ValueError("bad range")
    if m.group(1) == "":
        length = int(m.group(2))
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, min(end, size - 1)


@bp.route("/calls/<int:call_id>/audio")
@roles("supervisor")
def audio(call_id):
    call = call_or_404(call_id, act=True)
    web = lk()
    playback = web.sessions.mem(g.session)["playbacks"].get(request.args.get("p", ""))
    if playback is None or playback["call_id"] != call_id:
        abort(403, description="Open the call's page to play its recording.")
    key = unlocked_key()
    if key is None:
        abort(403, description="Log in again to unlock recordings for playback.")
    info = _recording(call_id)
    if info is None:
        abort(404)
    if info["state"] == "recording":
        # Sealed (and signed) at its end: before, the check of its file said "damaged".
        abort(
            409,
            description="This call is still being recorded: it can be played once its recording is sealed.",
        )
    f = web.services.recordings.open_audio(call_id, key)
    try:
        size = f.seek(0, os.SEEK_END)
        byte_range = parse_range(request.headers.get("Range"), size)
    except ValueError:
        f.close()
        return Response(status=416, headers={"Content-Range": "bytes */%d" % size, "Accept-Ranges": "bytes"})
    # HEAD sends no audio. dict.pop is atomic: of two parallel first requests
    # only one gets True.
    if request.method == "GET" and playback.pop("unaudited", False):
        audit(
            "playback",
            call_id,
            line=call["line"],
            duration_s=info.get("duration_s"),
            reason=playback["reason"],
        )
    start, end = byte_range if byte_range else (0, size - 1)
    f.seek(start)

    def body(remaining=end - start + 1):
        try:
            while remaining > 0:
                data = f.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
        finally:
            f.close()

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1), "Cache-Control": "no-store"}
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
    return Response(
        body(),
        status=status,
        mimetype=info.get("mime_type", "audio/ogg"),
        headers=headers,
        direct_passthrough=True,
    )


@bp.route("/calls/<int:call_id>/export", methods=["POST"])
@roles("supervisor")
def export(call_id):
    call = call_or_404(call_id, act=True)
    info, gone = _recording_or_gone(call_id, "exported")
    if gone is not None:
        return gone
    reason, problem = given_reason("reason", "exported", "complaint ref 1234")
    fmt = request.form.get("format") or "ogg"
    errors = {"reason": problem} if problem else {}
    formats = info.get("formats", EXPORT_FORMATS)
    if fmt not in formats:
        # Checked before the audit entry: an export refused is no export.
        names = [EXPORT_NAMES[f] for f in formats]
        choice = ", ".join(names[:-1]) + " or " + names[-1] if names[1:] else names[0]
        errors["format"] = "Choose %s." % choice
    key = unlocked_key()
    if key is None:
        errors["reason"] = "Log in again to unlock recordings for export."
    if errors:
        return detail(call_id, errors=errors, status=400)
    # Audited before the audio leaves the box: no entry, no export. One that is then not
    # made is audited again with the same details and ``failed`` (as linekeeper export's):
    # the breach scope and the reports count no copy taken.
    details = {"line": call["line"], "reason": reason, "format": fmt}
    audit("export", call_id, **details)
    audio_fmt = fmt.removesuffix(".zip")
    try:
        result = lk().services.recordings.export(call_id, key, audio_fmt)
    except LineKeyLostError as exc:
        # Not altered, and no choice of format helps: the page says why it cannot be opened.
        audit("export", call_id, failed="the recording was not made: %s" % exc, **details)
        return detail(call_id, status=409)
    except ValueError as exc:
        audit("export", call_id, failed="the recording was not made: %s" % exc, **details)
        return detail(call_id, errors={"format": str(exc)}, status=400)
    except BaseException as exc:
        audit(
            "export",
            call_id,
            failed="the recording was not made: %s" % (str(exc) or type(exc).__name__),
            **details,
        )
        raise
    name = "call-%d.%s" % (call_id, fmt)
    mime = "audio/ogg" if fmt == "ogg" else "audio/wav"
    if fmt.endswith(".zip"):
        result = _with_manifest(call_id, bytes(result), "call-%d.%s" % (call_id, audio_fmt))
        if result is None:
            audit("export", call_id, failed="its manifest was not made: no signing key here", **details)
            return detail(
                call_id,
                errors={
                    "format": "This box cannot sign a manifest here "
                    "(its signing key is not available to the web UI)."
                },
                status=400,
            )
        mime = "application/zip"
    data = bytes(result)
    # Sent from memory in chunks (the decrypted audio is never a file on the card); a
    # download the browser drops part way is audited as failed (web.download). What it needs
    # of the request is read now: the request's context is gone when the body runs.
    web = lk()
    body = export_body(
        data,
        CHUNK,
        web.services.audit,
        web.services.wall_us,
        g.user.name,
        str(call_id),
        dict(details, address=request.remote_addr or ""),
    )
    return Response(
        body,
        mimetype=mime,
        direct_passthrough=True,
        headers={"Content-Disposition": "attachment; filename=%s" % name, "Content-Length": str(len(data))},
    )


def _with_manifest(call_id, payload, file_name):
    """A zip (in memory) of the export and its signed manifest, or None if none can be made."""
    import io
    import zipfile

    from firmware.manifest import manifest_path

    manifest = lk().services.recordings.export_manifest(call_id, payload, file_name, g.user.name)
    if manifest is None:
        return None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(file_name, payload)
        z.writestr(manifest_path(file_name), manifest)
    return buf.getvalue()


def _retention_or_404(method):
    retention = lk().services.retention
    if retention is None or not hasattr(retention, method):
        abort(404)
    return retention


def _asked_to_erase(call_id, field, what, confirm):
    """``(reason, details, response)``: the erase form's reason and whether the caller's
    details go too, or the page saying what was wrong (nothing changed)."""
    reason, problem = given_reason(field, "erased", "erasure request #12", what)
    errors = {field: problem} if problem else {}
    details = request.form.get("details")
    if details not in (None, "yes"):
        errors[field] = "Tick the caller's details box, or leave it clear; nothing else is understood."
    if not errors and request.form.get("confirm") != "yes":
        errors["confirm"] = confirm  # beside the tick it asks for, not on the reason given
    return reason, details == "yes", (detail(call_id, errors=errors, status=400) if errors else None)


def _erased(call, action, field):
    """Run ``action()`` (the recorder erases); the page with its refusal, or None when done.
    Once the caller's details are gone, so is the text of the call's notes (web.db), audited."""
    from firmware.control import ControlError, RecorderUnavailable
    from firmware.policy.sweeper import ErasureRefused

    try:
        action()
    except (ErasureRefused, ControlError) as exc:
        return detail(call["id"], errors={field: str(exc)}, status=409)
    except RecorderUnavailable:
        return detail(
            call["id"],
            errors={field: "The recorder is not answering (it may be restarting): try again soon."},
            status=503,
        )
    return None


def _details_left(call_id):
    """Whether the web UI still holds some of call ``call_id``'s caller's details: a note's
    text or a corrected name not erased."""
    web = lk()
    notes_left = any(not n["erased"] for n in web.notes.of_call(call_id))
    return notes_left or web.corrections.left_of_call(call_id) > 0


def _erase_corrections(call):
    """The names call ``call`` was corrected to are erased, audited (with its other details)."""
    web = lk()
    web.corrections.erase_of_call(
        call["id"],
        audited=lambda n: intent.audited_tx(
            web,
            [
                (
                    "call_note",
                    str(call["id"]),
                    {"line": call["line"], "request": deletions.ERASURE, "names_erased": n},
                )
            ],
        ),
    )


def _erase_notes(call):
    """The caller's details the web UI holds go too: the notes' text, the corrected names."""
    web = lk()
    _erase_corrections(call)
    web.notes.erase_of_call(
        call["id"],
        audited=lambda n: intent.audited_tx(
            web,
            [
                (
                    "call_note",
                    str(call["id"]),
                    {"line": call["line"], "request": deletions.ERASURE, "notes_erased": n},
                )
            ],
        ),
    )


@bp.route("/calls/<int:call_id>/erase", methods=["POST"])
@roles("supervisor")
def erase(call_id):
    """Erase the call's recording now, at a person's request (the right to erasure):
    its key destroyed and its file shredded as retention does, with a deletion-log
    entry, audited with the reason given. With ``details`` (the form's tick, on by
    default) the caller's details go too: the number and name from the call log, the
    text of the call's notes. Refused on legal hold and while recording."""
    call = call_or_404(call_id, act=True)
    retention = _retention_or_404("erase")
    _, gone = _recording_or_gone(call_id, "erased")
    if gone is not None:
        return gone
    reason, details, refused = _asked_to_erase(
        call_id,
        "erase_reason",
        "this recording is",
        "Tick the box to confirm: an erased recording cannot be brought back.",
    )
    if refused is not None:
        return refused
    # ``details`` only with the tick: without, the recorder's default.
    extra = {"details": True} if details else {}
    # The address, as every other action from a page carries it (web.security.audit).
    address = request.remote_addr or ""
    failed = _erased(
        call, lambda: retention.erase(call_id, g.user.name, reason, address=address, **extra), "erase_reason"
    )
    if failed is not None:
        return failed
    if details:
        _erase_notes(call)
    return redirect(url_for("calls.detail", call_id=call_id) + "#f-recording")


@bp.route("/calls/<int:call_id>/erase-details", methods=["POST"])
@roles("supervisor")
def erase_details(call_id):
    """Erase the caller's details of a call with no recording (never made, or deleted
    already): its number and name in the call log replaced by the erased marker, the
    text of its notes gone; its times, line and outcome stay. Audited with the reason
    given. A call with a recording is erased with it (:func:`erase`)."""
    call = call_or_404(call_id, act=True)
    retention = _retention_or_404("erase_details")
    if _recording(call_id) is not None:  # its header holds the details too
        return detail(
            call_id,
            errors={
                "details_reason": "This call has a recording: erase it with the caller's details "
                "(Erase the recording, with its tick), or release its legal hold first."
            },
            status=409,
        )
    reason, _, refused = _asked_to_erase(
        call_id,
        "details_reason",
        "the caller's details are",
        "Tick the box to confirm: the caller's erased details cannot be brought back.",
    )
    if refused is not None:
        return refused
    if call.get("absence") in (ERASED, EXPIRED) and not _details_left(call_id):
        gone = "removed after their retention period" if call["absence"] == EXPIRED else "erased"
        return detail(
            call_id,
            errors={"details_reason": "The caller's details of call %d were %s already." % (call_id, gone)},
            status=409,
        )
    if call.get("absence") not in (ERASED, EXPIRED):
        failed = _erased(
            call,
            lambda: retention.erase_details(call_id, g.user.name, reason, address=request.remote_addr or ""),
            "details_reason",
        )
        if failed is not None:
            return failed
    # (Erased already, notes' text left: a failure between the recorder's step and this
    # one left it behind, and this finishes the job.)
    _erase_notes(call)
    return redirect(url_for("calls.detail", call_id=call_id) + "#f-number")


@bp.route("/calls/<int:call_id>/correct-name", methods=["POST"])
@roles("supervisor")
def correct_name(call_id):
    """Correct the caller's name shown for this call (UK GDPR Art. 16: a caller-ID or
    phonebook name that is wrong for it), with the reason (required) and, optionally, the
    number of the request in the register it answers. The call log keeps what the
    caller-ID sent; the corrected name is kept in web.db (:mod:`web.corrections`), shown
    instead, marked corrected. Audited as ``correct_details`` (the reason, never the name).
    Bad input changes nothing; the page says what was wrong."""
    call = call_or_404(call_id, act=True)
    web = lk()
    if call.get("absence") in (ERASED, EXPIRED):
        return detail(
            call_id,
            errors={"correct_name": _no_name_to_correct(call_id)},
            status=409,
        )
    errors = {}
    try:
        name = clean_name(request.form.get("correct_name"))
    except PhonebookError as exc:
        errors["correct_name"] = "The name: %s." % exc
    else:
        shown = web.corrections.of_call(call_id)
        if name == (shown["name"] if shown else call.get("name")):
            errors["correct_name"] = "Call %d shows this name already: nothing to change." % call_id
    reason, problem = given_reason("correct_reason", "corrected", "rectification request 12", "the name is")
    if problem:
        errors["correct_reason"] = problem
    request_no = _request_answered(request.form.get("correct_request"), errors)
    if errors:
        return detail(call_id, errors=errors, status=400)
    details = {"line": call["line"], "fields": ["name"], "reason": reason}
    if request_no is not None:
        details["data_request"] = request_no
    web.corrections.correct(
        call_id,
        name,
        g.user.name,
        request_no,
        audited=lambda _name: intent.audited_tx(web, [("correct_details", str(call_id), details)]),
    )
    if web.services.calls.get(call_id).get("absence") == ERASED:
        # Another supervisor erased the caller's details after the check above, before the
        # name was kept: that erasure found no corrected name, so this one goes now.
        _erase_corrections(call)
        return detail(call_id, errors={"correct_name": _no_name_to_correct(call_id)}, status=409)
    if web.services.call_tags is not None:
        # An archived record goes up again with the corrected name (docs/archive.md).
        web.services.call_tags.note_changed(call_id)
    return redirect(url_for("calls.detail", call_id=call_id) + "#f-number")


def _no_name_to_correct(call_id):
    return "The caller's details of call %d were erased: there is no name to correct." % call_id


def _request_answered(text, errors):
    """The request number typed (``#12`` or ``12``), or None for none; a message in
    ``errors`` when it is no request in the register the user sees (the same words for one
    that does not exist and one on another line)."""
    text = (text or "").strip().lstrip("#").strip()
    if not text:
        return None
    if card_problem(text):  # PCI DSS: not said back, in the message nor in its field
        errors["correct_request"] = (
            "That reads as a card number, not a request's: the box keeps none. Give the "
            "request's number from the Requests page (for example 12), or leave it empty."
        )
        return None
    number = int(text) if text.isascii() and text.isdigit() and row_id(int(text)) else None
    entry = None
    if number is not None:
        register = rights_register()
        try:
            entry = register.get(number)
        finally:
            register.close()
    if entry is None or not rights.concerns_lines(entry, g.user.lines, supervised_lines()):
        errors["correct_request"] = (
            "There is no request %s among those you see in the register: give its number from "
            "the Requests page (for example 12), or leave it empty."
            % ("#%d" % number if number is not None else repr(text[:20]))
        )
        return None
    return number


# The legal hold form's ``on`` (a hidden field the page fills in) neither 1 nor 0.
HOLD_ON_PROBLEM = (
    'The legal hold form\'s "on" field must be 1 (place the hold) or 0 (release it): '
    "nothing changed. Open the call's page again and use its Legal hold button."
)


@bp.route("/calls/<int:call_id>/hold", methods=["POST"])
@roles("supervisor")
def hold(call_id):
    call = call_or_404(call_id, act=True)
    on = request.form.get("on")
    if on not in ("0", "1"):
        # The call's page again, as for a bad reason: a bare error page left the supervisor
        # nowhere to correct it from.
        return detail(call_id, errors={"on": HOLD_ON_PROBLEM}, status=400)
    # Why, as an export says why: the trail must say what a hold keeps evidence for, and
    # why a release lets retention delete it.
    if on == "1":
        reason, problem = given_reason("hold_reason", "placed on legal hold", "complaint ref 1234")
    else:
        reason, problem = given_reason(
            "hold_reason", "released", "complaint ref 1234 closed", "the legal hold is"
        )
    if problem:
        return detail(call_id, errors={"hold_reason": problem}, status=400)
    web = lk()
    with web.hold_lock:
        # The form sent twice, or drawn before someone else placed or released the hold:
        # nothing would change, and the trail must not say it did.
        info, gone = _recording_or_gone(
            call_id, "placed on legal hold" if on == "1" else "released from legal hold"
        )
        if gone is not None:
            return gone
        if bool(info.get("legal_hold")) == (on == "1"):
            already = (
                "This recording is already on legal hold: nothing changed."
                if on == "1"
                else "This recording is not on legal hold (released meanwhile): nothing changed."
            )
            return detail(call_id, errors={"hold_reason": already}, status=409)
        # Audited before the hold changes: a release nobody can see in the trail would let
        # retention delete evidence; the next start says so if a cut came between.
        intent.change_checked(
            web,
            ("legal_hold", str(call_id), {"line": call["line"], "on": on == "1", "reason": reason}),
            lambda: web.services.recordings.set_legal_hold(call_id, on == "1", by=g.user.name),
            {"kind": "legal_hold", "call_id": call_id, "on": on == "1"},
        )
    # Back to the hold's part of the page, as a tag and a note: it says the hold changed.
    return redirect(url_for("calls.detail", call_id=call_id) + "#legal-hold")
