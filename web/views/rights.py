"""Data subjects' requests (access, erasure, rectification, restriction, objection): the register.

Supervisors log a request, with the lines whose calls it is about if any, and record
what happens to it (waiting for ID or clarification, the ID received, an extension, the
answer or the refusal; its lines corrected while it is open, which hands it on to
another line's supervisors when they are only lines the supervisor does not hold);
auditors read it; staff and installers do not see it, as they do not see the
disclosure log. A supervisor sees, and changes, only the requests about one of their lines,
about no line, or about lines no enabled supervisor holds
(:func:`firmware.rights.concerns_lines`, as their "Waiting for you" lists them): the list,
a request's page and the CSV alike; another line's request is not found (404, as another
line's call). The calls and the disclosure log entries a request was answered with are
named only to one who may see them; another is told how many others there are
(:func:`_calls_seen`, :func:`_disclosures_seen`). An auditor reads every request. Each
change is audited (action ``data_request``, target ``request:N``); each request's page
opened (``request_viewed``) and each time the list shows the requesters' names
(``list_viewed`` of ``requests``) too. The register and its
deadlines are :mod:`firmware.rights`.
"""

import dataclasses

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound

from firmware import rights
from firmware.sar import SarError, request_numbers, search_numbers
from firmware.subjecterase import SubjectEraseError
from firmware.typed import control_problem

from .. import erasejob
from ..documents import lines_words
from ..security import audit, lk, roles
from . import csv_download, disclosure_log, rights_register, row_id, site_region, supervised_lines
from .calls import call_or_404
from .sar import release_shown

bp = Blueprint("rights", __name__)
FIELDS = ("kind", "received", "requester", "contact", "numbers", "details")
ACTIONS = (
    "wait",
    "resume",
    "extend",
    "answer",
    "refuse",
    "lines",
    "received",
    "contact",
    "requester",
    "numbers",
)
MAX = {"requester": 200, "contact": 200, "numbers": 500, "details": rights.MAX_TEXT}
MAX_IDS = 200  # characters of a field of ids (disclosures, calls): some forty ids
# The calls field: an erasure of every call of a person names dozens (some 300 ids).
MAX_CALL_IDS = 2000
MAX_VIEWED = 1000  # requests whose page a session has opened (their view audited), kept in memory


def _today():
    return lk().local_time().local(lk().services.wall_us()).date()


def _audit(request_id, details):
    # As every action from a page: by the person, with the address it came from.
    audit("data_request", "request:%d" % request_id, **details)


def _text(form, field, label, errors, required=True, limit=rights.MAX_TEXT):
    """The stripped text of ``field``; a message in ``errors`` when it is missing, too long,
    or holds a card number, a control character or a direction control (line breaks are
    taken: an address, a request in the person's words)."""
    value = (form.get(field) or "").strip()
    if required and not value:
        errors[field] = "Give %s." % label
    elif len(value) > limit:
        errors[field] = "%s: at most %d characters." % (label[:1].upper() + label[1:], limit)
    else:
        problem = control_problem(value, lines=True)
        if problem:
            errors[field] = problem
    return value


def _numbers(form, errors):
    """The person's numbers typed in ``form`` (its ``numbers``), logging a request or correcting
    them: each one the Subject access search takes (:func:`firmware.sar.request_numbers`),
    stripped, each once, joined by ", "; "" for none. A message in ``errors`` when the text is
    too long, holds a card number, or a piece is not a phone number (naming it)."""
    numbers = _text(form, "numbers", "their phone numbers", errors, required=False, limit=MAX["numbers"])
    if "numbers" in errors:
        return numbers
    try:
        return request_numbers(numbers)
    except SarError as exc:
        errors["numbers"] = "Their numbers: %s." % exc
        return numbers


def _sees(entry, act=False, supervised=None):
    """Whether the user may read request ``entry`` or, with ``act``, change it or follow it
    up: an auditor reads every one (the whole register is theirs to audit); a supervisor
    only one about one of their lines, about no line, or about lines no enabled supervisor
    holds (``supervised``, :func:`web.views.supervised_lines` when None;
    :func:`firmware.rights.concerns_lines`), and changes only those (as a call is acted on
    only on their own lines)."""
    if not act and g.user.has("auditor"):
        return True
    if not g.user.has("supervisor"):
        return False
    if supervised is None:
        supervised = supervised_lines()
    return rights.concerns_lines(entry, g.user.lines, supervised)


def _lines(form, errors, hand_on=False):
    """The lines ticked in ``form`` (its ``lines``), sorted; a message in ``errors`` when one
    is not a line of the box (naming each), or, logging a request (not ``hand_on``), when
    they would take it from the user (:func:`_sees`): a supervisor logs one about one of
    their own lines, lines no enabled supervisor holds, or none (then any supervisor answers
    it), as they land on its page. With ``hand_on`` (an open request's lines corrected) any
    of the box's lines may be ticked: a supervisor who finds the request is another line's
    hands it on to that line's supervisors, and is no longer shown it (:func:`update`)."""
    n_lines = lk().n_lines
    asked = [x.strip() for x in form.getlist("lines")]
    unknown = [x for x in asked if not (x.isascii() and x.isdigit() and 1 <= int(x) <= n_lines)]
    if unknown:
        errors["lines"] = "There is no line %s on this box: its lines are numbered 1 to %d." % (
            " or ".join(x if x.isascii() and x.isdigit() else repr(x) for x in dict.fromkeys(unknown)),
            n_lines,
        )
        return []
    lines = sorted({int(x) for x in asked})
    if hand_on:
        return lines
    supervised = supervised_lines()
    if not rights.concerns_lines({"lines": lines}, g.user.lines, supervised):
        held = [n for n in lines if n in supervised]
        errors["lines"] = (
            "%s %s not granted to you: tick one of your lines (%s) too, or no line (then every "
            "supervisor is shown it), so that the request stays one you see; to hand it on to "
            "another supervisor, change its lines on its page once it is logged."
            % (
                lines_words(held).capitalize(),
                "are" if len(held) > 1 else "is",
                ", ".join(map(str, g.user.lines)),
            )
        )
    return lines


def _entries():
    """The register's entries the user may read (:func:`_sees`), newest first (its
    connection closed again)."""
    supervised = supervised_lines()
    register = rights_register()
    try:
        return [e for e in register.entries() if _sees(e, supervised=supervised)]
    finally:
        register.close()


def _request_or_404(request_id, act=False):
    """Request ``request_id`` if it exists and the user may read it (or, ``act``, change
    it: :func:`_sees`); else 404, the same for one on another line as for none, so that
    nobody learns a request of another line exists."""
    _known(request_id)
    register = rights_register()
    try:
        entry = register.get(request_id)
    finally:
        register.close()
    if entry is None or not _sees(entry, act):
        abort(404)
    return entry


def _handed(text):
    """``(request id, lines)`` of the request the user just handed on (``?handed=N``, where
    :func:`update` sends them), read from the request's last audit entry when that is this
    user's hand-on: None otherwise, so a link made up, or followed after the request changed
    again, says nothing of another line's request."""
    if not (text and text.isascii() and text.isdigit() and len(text) < 19):
        return None
    request_id = int(text)
    last = lk().services.audit.entries(limit=1, action="data_request", targets=["request:%d" % request_id])
    if not last or last[0].actor != g.user.name or not last[0].details.get("handed_on"):
        return None
    return request_id, last[0].details["lines"]


def _listing(errors=None, values=None, status=200):
    today = _today()
    entries = _entries()
    for e in entries:
        e["days_left"] = (e["due"] - today).days
    # Overdue first, then the nearest deadline; the closed after them, newest first.
    live = sorted((e for e in entries if e["status"] not in rights.CLOSED), key=lambda e: (e["due"], e["id"]))
    closed = [e for e in entries if e["status"] in rights.CLOSED]
    values = values or {"received": today.isoformat(), "kind": "access"}
    # Each request's requester's name shown: a look at personal data, audited as a page of the
    # calls list or the phonebook is (``list_viewed``, the breach scope counts it), one entry
    # per page shown, with which requests it showed, never their names.
    audit("list_viewed", "requests", rows=len(entries), requests=[e["id"] for e in live + closed])
    page = render_template(
        "requests.html",
        live=live,
        closed=closed,
        errors=errors or {},
        values=values,
        kinds=rights.KINDS,
        kind_choices=rights.KIND_CHOICES,
        kind_meanings=rights.KIND_MEANINGS,
        statuses=rights.STATUSES,
        today=today,
        holidays=rights.holidays_of(site_region()),
        n_lines=lk().n_lines,
        handed=_handed(request.args.get("handed")),
    )
    return page, status


@bp.route("/requests")
@roles("supervisor", "auditor")
def index():
    return _listing()


# What the register's page shows of each request, and no more: not how to reach the
# person, their numbers, their words nor the answer (docs/reports.md says why).
CSV_COLUMNS = (
    "id",
    "kind",
    "lines",
    "received",
    "due",
    "status",
    "state",
    "waiting_since",
    "extension_months",
    "closed_on",
    "late",
    "requester",
)


@bp.route("/requests.csv")
@roles("supervisor", "auditor")
def export_csv():
    """The register as CSV, one row per request the user may read (:func:`_sees`), oldest
    first: what the page shows of each (dates are days, as the register keeps them; ``lines``
    the lines it is about, ``1,4``, empty for a request about no line in particular);
    audited as ``export_list`` of ``requests``. ``late``: answered after its deadline, or
    still open past it today."""
    today = _today()
    entries = _entries()
    rows = []
    for e in reversed(entries):
        closed = e["status"] in rights.CLOSED
        rows.append(
            [
                e["id"],
                e["kind"],
                ",".join(map(str, e["lines"])),
                e["received"],
                str(e["due"]),
                e["status"],
                rights.STATUSES[e["status"]],
                e["paused_since"] or "" if e["status"] == rights.WAITING else "",
                e["extension_months"],
                e["closed_on"] or "" if closed else "",
                "yes" if rights.is_late(e, today) else "no",
                e["requester"],
            ]
        )
    return csv_download("requests.csv", CSV_COLUMNS, rows, "requests")


@bp.route("/requests", methods=["POST"])
@roles("supervisor")
def create():
    form = request.form
    errors = {}
    values = {f: (form.get(f) or "").strip() for f in FIELDS}
    kind = values["kind"]
    if kind not in rights.KINDS:
        errors["kind"] = "Choose what was asked for."
    today = _today()
    received = None
    try:
        received = rights.parse_date(values["received"], "Received")
        rights.check_received(received, today)
    except rights.RequestError as exc:
        errors["received"] = str(exc)[:1].upper() + str(exc)[1:] + "."
    requester = _text(form, "requester", "the name of the person who asked", errors, limit=MAX["requester"])
    contact = _text(
        form,
        "contact",
        "how to reach them (address, e-mail, phone)",
        errors,
        limit=MAX["contact"],
    )
    # Checked as a correction of them is, so that their links to the search are all of them.
    numbers = _numbers(form, errors)
    details = _text(form, "details", "what they asked for, in their words", errors)
    values["lines"] = form.getlist("lines")
    lines = _lines(form, errors)
    if errors:
        page, _ = _listing(errors, values)
        return page, 400
    register = rights_register()
    try:
        request_id = register.add(
            actor=g.user.name,
            kind=kind,
            received=received,
            requester=requester,
            contact=contact,
            numbers=numbers,
            details=details,
            today=today,
            wall_us=int(lk().services.wall_us()),
            lines=lines,
        )
        entry = register.get(request_id)
    except rights.RequestError as exc:  # logged already (the form sent twice)
        page, _ = _listing({exc.field or "details": str(exc)[:1].upper() + str(exc)[1:] + "."}, values)
        return page, 409
    finally:
        register.close()
    logged = {"event": "logged", "kind": kind, "received": received.isoformat(), "due": str(entry["due"])}
    if lines:
        logged["lines"] = lines
    _audit(request_id, logged)
    # Said on the page it lands on, as a change to the request is (``done``).
    return redirect(url_for("rights.detail", request_id=request_id, done="logged"))


def _history(request_id):
    return lk().services.audit.entries(
        limit=200, action="data_request", targets=["request:%d" % request_id], newest_first=False
    )


def _audit_view(request_id):
    """The request's page shown: it holds who asked, how to reach them and what they asked,
    so who read them is audited (``request_viewed``, target the request's), once per login
    session and request, as a call's page is (web.views.calls): shown again (reloaded, after
    a change) it writes none. Nobody's reading was audited before."""
    viewed = lk().sessions.mem(g.session).setdefault("requests_viewed", {})
    mine = object()
    if viewed.setdefault(request_id, mine) is not mine:
        return
    while len(viewed) > MAX_VIEWED:
        viewed.pop(next(iter(viewed)))
    try:
        audit("request_viewed", "request:%d" % request_id)
    except BaseException:
        viewed.pop(request_id, None)  # not written: the next view tries again
        raise


def _known(request_id):
    """404 for a request number past SQLite's integers (:func:`web.views.row_id`), as for
    one no request has: looked up, it raised (a server error)."""
    if not row_id(request_id):
        abort(404)


def _detail(request_id, errors=None, status=200, erase_plan=None):
    """Request ``request_id``'s page; ``errors`` by field, shown with ``status``. An open
    erasure request offers to erase its person's calls: the calls are looked for (the
    whole call log read) when the supervisor asks (``?find_calls=1``), or given as
    ``erase_plan`` (the erasure's form refused: the count as it is now)."""
    register = rights_register()
    try:
        entry = register.get(request_id)
        follow_ups = register.follow_ups(request_id) if entry is not None else []
        corrections = register.corrections(request_id) if entry is not None else {}
    finally:
        register.close()
    if entry is None or not _sees(entry):
        abort(404)
    _audit_view(request_id)
    today = _today()
    entry["days_left"] = (entry["due"] - today).days
    log = disclosure_log()  # ids, dates and hashes only: all in clear
    try:
        # Those the Disclosures page shows the user (a request about no line is every
        # supervisor's, a release for it of calls on another's lines is not).
        releases = [
            {k: e[k] for k in ("id", "wall_us", "bundle_sha256", "recordings", "encrypted")}
            for e in log.of_request(request_id)
            if _release_shown(e)
        ]
    finally:
        log.close()
    calls_shown, calls_hidden = _calls_seen(entry["call_ids"])
    disclosures_shown, disclosures_hidden = _disclosures_seen(entry["disclosure_ids"])
    entries_hidden = _hidden_words(disclosures_hidden, "entry", "entries") if disclosures_hidden else ""
    # The person's numbers each link to the Subject access search, filled in and tied to the
    # request. A caller's request (about no line): the search covers the supervisor's own lines
    # (the page says which not). One about lines: limited to those of them the supervisor holds,
    # ticked too (none: no link, as for the lines' own search), as its calls are on them.
    searchable = search_numbers(entry["numbers"]) if g.user.has("supervisor") else []
    search_on = [n for n in entry["lines"] if n in g.user.lines]
    if entry["lines"] and not search_on:
        searchable = []
    trail = _history(request_id)
    history = [_history_seen(e, corrections) for e in trail]
    # An open erasure request: what erasing every call of the person's numbers would do.
    # Looking for them reads every call's sealed number: a page shown often (after each
    # change) reads them only when asked.
    erase_offer = erasejob.offered(entry)
    erase_job = erasejob.job_of(request_id) if erase_offer else None
    # Erasing them already: how far it is, and no second count or form meanwhile.
    erase_running = erase_job is not None and erase_job["running"]
    if erase_running:
        erase_plan = None
    elif erase_offer and erase_plan is None and request.method == "GET" and request.args.get("find_calls"):
        try:
            erase_plan = erasejob.plan_for(entry)
        except SubjectEraseError as exc:
            errors = dict(errors or {}, erase_calls="Their calls cannot be erased from here: %s." % exc)
    erase_lines = sorted(erasejob.lines_for(entry)) if erase_offer else []
    erase_stopped = erasejob.cut_off(request_id, trail) if erase_offer else None
    erase_notes_left = erasejob.notes_left(request_id, trail) if erase_offer else []
    return render_template(
        "request.html",
        r=entry,
        erase_offer=erase_offer,
        erase_stopped=erase_stopped,
        erase_notes_left=erase_notes_left,
        erase_running=erase_job if erase_running else None,
        erase_plan=erase_plan,
        erase_lines=erase_lines,
        calls_shown=calls_shown,
        calls_hidden=_hidden_words(calls_hidden) if calls_hidden else "",
        disclosures_shown=disclosures_shown,
        disclosures_hidden=entries_hidden,
        errors=errors or {},
        kinds=rights.KINDS,
        kind_choices=rights.KIND_CHOICES,
        kind_meanings=rights.KIND_MEANINGS,
        statuses=rights.STATUSES,
        wait_kinds=rights.WAIT_KINDS,
        today=today,
        holidays=rights.holidays_of(site_region()),
        history=history,
        erased_calls=_erased_here(history),
        follow_ups=follow_ups,
        releases=releases,
        n_lines=lk().n_lines,
        searchable=searchable,
        search_on=search_on,
        elsewhere=[n for n in range(1, lk().n_lines + 1) if n not in g.user.lines],
        form=request.form if request.method == "POST" else {},
    ), status


@bp.route("/requests/<int:request_id>")
@roles("supervisor", "auditor")
def detail(request_id):
    _request_or_404(request_id)
    return _detail(request_id)


@bp.route("/requests/<int:request_id>/follow-up", methods=["POST"])
@roles("supervisor")
def follow_up(request_id):
    """A request that follows up answered or refused request ``request_id`` (the person says
    the answer was incomplete, or asks again): a request of its own, received on the day
    it came, with the person's details copied from the first. Both are audited."""
    _request_or_404(request_id, act=True)
    form = request.form
    errors = {}
    today = _today()
    kind = (form.get("kind") or "").strip()
    if kind not in rights.KINDS:
        errors["kind"] = "Choose what was asked for."
    received = None
    try:
        received = rights.parse_date((form.get("received") or "").strip(), "Received")
        rights.check_received(received, today)
    except rights.RequestError as exc:
        errors["received"] = str(exc)[:1].upper() + str(exc)[1:] + "."
    details = _text(form, "details", "what they say now, in their words", errors)
    register = rights_register()
    try:
        first = register.get(request_id)
        if first is None:
            abort(404)
        if errors:
            return _detail(request_id, errors, 400)
        try:
            new_id = register.add(
                actor=g.user.name,
                kind=kind,
                received=received,
                requester=first["requester"],
                contact=first["contact"],
                numbers=first["numbers"],
                details=details,
                today=today,
                wall_us=int(lk().services.wall_us()),
                follows=request_id,
            )
        except rights.RequestError as exc:
            refused = {exc.field or "action": str(exc)[:1].upper() + str(exc)[1:] + "."}
            return _detail(request_id, refused, 409)
        entry = register.get(new_id)
    finally:
        register.close()
    _audit(
        new_id,
        {
            "event": "logged",
            "kind": kind,
            "received": received.isoformat(),
            "due": str(entry["due"]),
            "follows": request_id,
        },
    )
    _audit(request_id, {"event": "followed_up", "by": new_id, "received": received.isoformat()})
    return redirect(url_for("rights.detail", request_id=new_id, done="logged"))


def _ticked(values):
    """The disclosure log entries ticked on the answer form (the releases made for the
    request, :func:`_detail`), as ints.

    :raises RequestError: one is not an entry's number, or more are ticked than a field of
        ids holds (:data:`MAX_IDS`)
    """
    if len(values) > MAX_IDS:
        raise rights.RequestError("the releases ticked: at most %d" % MAX_IDS)
    for value in values:
        if not (value.isascii() and value.isdigit() and len(value) < 12):
            raise rights.RequestError(
                "the releases ticked: %r is not a disclosure log entry's number" % value[:20]
            )
    return [int(v) for v in values]


def _release_shown(entry):
    """Whether the user may see the disclosure log's ``entry`` (:func:`web.views.sar.release_shown`)."""
    return release_shown(
        entry["actor"], [c for c in str(entry.get("call_ids") or "").split(",") if c.isdigit()], g.user
    )


def _disclosures_known(ids):
    """The disclosure log entries among ``ids`` that do not exist, or that the user may not
    see (:func:`_release_shown`), to be named: the same for both, as a call's (the form
    must not tell which releases of another's calls exist)."""
    if not ids:
        return []
    log = disclosure_log()
    try:
        known = {e["id"] for e in log.entries() if _release_shown(e)}
    finally:
        log.close()
    return [i for i in ids if i not in known]


def _erased_here(history):
    """The calls erased from the request's page (its ``calls_erased`` entries), as the answer's
    calls field is filled in with them: ``"41, 42"`` ("" for none). ``history``: as the user
    sees it (:func:`_history_seen`): calls of lines not theirs, counted in words, are not named."""
    erased = []
    for entry in history:
        calls = entry.details.get("calls")
        if entry.details.get("event") == "calls_erased" and isinstance(calls, list):
            erased += [c for c in calls if c not in erased]
    return ", ".join(map(str, erased))


def _calls_seen(call_ids):
    """Of the calls a request was answered with (``call_ids``: ``"1,2"``, a list of ints, or
    None), those the user may see (:func:`_may_see_call`), and how many others. A request
    about no line is every supervisor's, and one answered it with calls on their own lines:
    another is told that calls are linked, not which (their numbers are not theirs to know,
    as the calls' own pages are 404 for them)."""
    if isinstance(call_ids, str):
        call_ids = [int(c) for c in call_ids.split(",") if c.strip().isdigit()]
    shown = [c for c in call_ids or [] if _may_see_call(c)]
    return shown, len(call_ids or []) - len(shown)


def _disclosures_seen(ids):
    """Of the disclosure log entries a request was answered with (``ids``: ``"1,2"``, a list
    of ints, or None), those the user may see (:func:`_release_shown`), and how many others:
    the releases of another supervisor's calls for a request about no line are counted, not
    named, as on the Disclosures page (:func:`_calls_seen`)."""
    if isinstance(ids, str):
        ids = [int(d) for d in ids.split(",") if d.strip().isdigit()]
    ids = ids or []
    unseen = set(_disclosures_known(ids))
    shown = [d for d in ids if d not in unseen]
    return shown, len(ids) - len(shown)


def _seen_words(shown, hidden, one="call", many="calls"):
    """The ids of :func:`_calls_seen` or :func:`_disclosures_seen` in words, as the
    request's history says them."""
    words = [str(c) for c in shown]
    if hidden:
        words.append(_hidden_words(hidden, one, many))
    return ", ".join(words)


def _hidden_words(hidden, one="call", many="calls"):
    """``hidden`` calls (or disclosure log entries) the user may not see, in words (the
    request's page and its history)."""
    return "%d %s you may not see" % (hidden, one if hidden == 1 else many)


def _history_seen(entry, corrections=None):
    """The request's audit ``entry`` as the user may see it: the calls and the disclosure
    log entries it was answered with that the user may not see are counted, not named
    (:func:`_calls_seen`, :func:`_disclosures_seen`); a correction of who asked, how to
    reach them or their numbers with the old and new values the register keeps for it
    (``corrections``: :meth:`firmware.rights.RightsRegister.corrections`), which the trail
    does not hold. A correction of how to reach them made before those were kept names no
    correction: it shows as it did, the field only."""
    details = entry.details
    kept = (corrections or {}).get(details.get("correction"))
    if kept is not None:
        _, before, after = kept
        details = {k: v for k, v in details.items() if k != "correction"}
        details.update({"before": before or "none given", "after": after or "none given"})
    for key, seen, one, many in (
        ("calls", _calls_seen, "call", "calls"),
        ("disclosures", _disclosures_seen, "entry", "entries"),
    ):
        ids = details.get(key)
        if not ids:
            continue
        shown, hidden = seen(ids)
        if hidden:
            details = dict(details, **{key: _seen_words(shown, hidden, one, many)})
    return entry if details is entry.details else dataclasses.replace(entry, details=details)


def _may_see_call(call_id):
    """Whether the user may see call ``call_id`` (the calls pages' own rule, ``call_or_404``)."""
    try:
        call_or_404(call_id)
    except NotFound:
        return False
    return True


@bp.route("/requests/<int:request_id>", methods=["POST"])
@roles("supervisor")
def update(request_id):
    """One change: ``action`` is wait, resume, extend, answer, refuse, lines (the lines
    the request is about, ticked: :func:`_lines`), received (the day it was received,
    mistyped when it was logged: :meth:`firmware.rights.RightsRegister.correct_received`),
    contact (how to reach the person), requester (who asked) or numbers (the numbers their
    calls are found by: each one the Subject access search takes, :func:`_numbers`), each of
    the last three with a reason, its old and new values kept in the register
    (:meth:`firmware.rights.RightsRegister.correct`), the audit entry naming the correction,
    never what it says."""
    _request_or_404(request_id, act=True)
    form = request.form
    action = form.get("action")
    if action not in ACTIONS:
        abort(400, description="Choose what happened: %s." % ", ".join(ACTIONS))
    errors = {}
    today = _today()
    on = today
    lines = []
    received = None
    corrected = ""
    if action == "lines":
        lines = _lines(form, errors, hand_on=True)
    elif action == "contact":
        corrected = _text(
            form, "contact", "how to reach them (address, e-mail, phone)", errors, limit=MAX["contact"]
        )
    elif action == "requester":
        corrected = _text(
            form, "requester", "the name of the person who asked", errors, limit=MAX["requester"]
        )
    elif action == "numbers":
        corrected = _numbers(form, errors)
    elif action == "received":
        try:
            received = rights.parse_date((form.get("received") or "").strip(), "Received")
            rights.check_received(received, today)
        except rights.RequestError as exc:
            errors["received"] = str(exc)[:1].upper() + str(exc)[1:] + "."
    elif action != "extend":
        try:
            on = rights.parse_date((form.get("on") or today.isoformat()).strip(), "On")
        except rights.RequestError as exc:
            errors["on"] = str(exc) + "."
    reason = outcome = ""
    months = 0
    disclosure_ids = call_ids = []
    wait_kind = None
    if action == "wait":
        wait_kind = form.get("wait_kind")
        if wait_kind not in rights.WAIT_KINDS:
            errors["wait_kind"] = "Say what you are waiting for: proof of identity or clarification."
        reason = _text(form, "reason", "what you asked them for", errors)
    elif action == "extend":
        reason = _text(form, "reason", "why it needs longer (complex, or one of many)", errors)
        text = (form.get("months") or "").strip()
        months = int(text) if text in ("1", "2") else 0
        if not months:
            errors["months"] = "Extend by 1 or 2 months."
        if not form.get("told"):
            errors["told"] = (
                "Tell the person of the extension and why, within the first month, then tick this."
            )
    elif action in rights.CORRECTED:
        reason = _text(form, "reason", "why it is corrected", errors)
    elif action in ("answer", "refuse"):
        label = "what was done" if action == "answer" else "why it is refused (tell the person too)"
        outcome = _text(form, "outcome", label, errors)
        try:
            for field, most in (("disclosures", MAX_IDS), ("calls", MAX_CALL_IDS)):
                if len(form.get(field) or "") > most:
                    raise rights.RequestError("the ids of the %s: at most %d characters" % (field, most))
            disclosure_ids = sorted(
                set(rights.read_ids(form.get("disclosures"), "Disclosure log entries"))
                | set(_ticked(form.getlist("disclosure")))
            )
            call_ids = rights.read_ids(form.get("calls"), "Calls erased or changed")
        except rights.RequestError as exc:
            errors["links"] = str(exc)[:1].upper() + str(exc)[1:] + "."
        missing = _disclosures_known(disclosure_ids)
        if missing:
            errors["links"] = "There is no disclosure log entry %d." % missing[0]
        unseen = [c for c in call_ids if not _may_see_call(c)]
        if unseen:
            # The same words for a call that does not exist and one on a line this user
            # does not see: the form must not tell which calls exist on other lines.
            errors["links"] = "There is no call %d on the lines you see." % unseen[0]
    if errors:
        return _detail(request_id, errors, 400)
    wall_us = int(lk().services.wall_us())
    # The request's version the page showed: a change made meanwhile by someone else
    # refuses this one (it was decided on what is no longer there).
    seen = (form.get("seen") or "").strip()
    version = int(seen) if seen.isascii() and seen.isdigit() and len(seen) < 12 else -1
    register = rights_register()
    try:
        if register.get(request_id) is None:
            abort(404)
        if action == "wait":
            entry = register.wait(
                request_id,
                kind=wait_kind,
                on=on,
                reason=reason,
                today=today,
                wall_us=wall_us,
                version=version,
            )
            details = {"event": "waiting", "waiting_for": wait_kind, "on": str(on), "reason": reason}
        elif action == "resume":
            entry, days = register.resume(request_id, on=on, today=today, wall_us=wall_us, version=version)
            details = {"event": "received", "waiting_for": entry["pause_kind"], "on": str(on)}
            if days is None:
                details["month_from"] = str(on)
            else:
                details["days_excluded"] = days
            details["due"] = str(entry["due"])
        elif action == "lines":
            entry, before = register.set_lines(request_id, lines=lines, wall_us=wall_us, version=version)
            details = {"event": "lines", "lines": lines, "lines_before": before}
            if not _sees(entry, act=True):
                # Now only other supervisors' to change: its history names who handed it on.
                details["handed_on"] = True
        elif action == "received":
            entry, before = register.correct_received(
                request_id, received=received, today=today, wall_us=wall_us, version=version
            )
            details = {
                "event": "received_corrected",
                "received": str(received),
                "received_before": str(before),
                "due": str(entry["due"]),
            }
        elif action in rights.CORRECTED:
            entry, correction = register.correct(
                request_id, field=action, value=corrected, wall_us=wall_us, version=version
            )
            # Which field changed and why; the old and new values stay in the register, sealed,
            # with the request (its page's history shows them), and go when it goes.
            details = {
                "event": action + "_corrected",
                "fields": [action],
                "reason": reason,
                "correction": correction,
            }
        elif action == "extend":
            entry = register.extend(
                request_id, months=months, reason=reason, today=today, wall_us=wall_us, version=version
            )
            details = {"event": "extended", "months": months, "reason": reason, "due": str(entry["due"])}
        else:
            status = rights.ANSWERED if action == "answer" else rights.REFUSED
            entry = register.close_request(
                request_id,
                status=status,
                on=on,
                outcome=outcome,
                today=today,
                wall_us=wall_us,
                disclosure_ids=disclosure_ids,
                call_ids=call_ids,
                version=version,
            )
            details = {"event": status, "on": str(on), "outcome": outcome, "due": str(entry["due"])}
            if disclosure_ids:
                details["disclosures"] = disclosure_ids
            if call_ids:
                details["calls"] = call_ids
    except rights.RequestError as exc:
        # A date the register refuses (after today, before the receipt, overlapping a
        # wait) is said beside its field, which keeps what was typed; the rest is about
        # the change as a whole.
        refused = {exc.field or "action": str(exc)[:1].upper() + str(exc)[1:] + "."}
    else:
        refused = None
    finally:
        register.close()
    if refused:
        return _detail(request_id, refused, 409)
    _audit(request_id, details)
    if details.get("handed_on") and not _sees(entry):
        # Its page is now a 404 for the user: the list says where it went.
        return redirect(url_for("rights.index", handed=request_id))
    return redirect(url_for("rights.detail", request_id=request_id, done=action))


def _deadlines():
    """The open, extended and waiting requests' clear columns (:meth:`RightsRegister.deadlines`):
    what the dashboard reads, before the recorder has opened the key too."""
    register = rights_register()
    try:
        return register.deadlines()
    finally:
        register.close()


def attention():
    """The open requests overdue or due within a week, for the dashboard: ``[(days left,
    entry)]``, overdue first. Only the clear columns (id, kind, dates): the dashboard
    works before the recorder has opened the key."""
    return rights.attention(_deadlines(), _today())


def waiting_for(lines):
    """The requests that wait for a supervisor of ``lines`` to answer them (the dashboard's
    "Waiting for you"): open or extended (one waiting for proof of identity or clarification
    waits for the person), about one of ``lines``, about no line in particular or about lines
    no enabled supervisor holds (:func:`firmware.rights.concerns_lines`); ``[(days left,
    entry)]``, the nearest deadline first, the overdue at the top."""
    today = _today()
    supervised = supervised_lines()
    found = [
        ((e["due"] - today).days, e)
        for e in _deadlines()
        if e["status"] in (rights.OPEN, rights.EXTENDED) and rights.concerns_lines(e, lines, supervised)
    ]
    return sorted(found, key=lambda x: (x[0], x[1]["id"]))
