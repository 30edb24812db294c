"""Subject access requests (supervisors) and the disclosure log (auditors, supervisors).

A supervisor searches a number (any form), some of the lines granted to them
(every call on them), and/or a date range, on the lines granted to them, sees the
calls found, and releases them as a bundle (:mod:`firmware.sar`), optionally
encrypted with a password they give the requester separately. The release needs
the supervisor's unlocked recording key (their login); it is written to the
disclosure log and the audit trail.
"""

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from firmware import rights
from firmware.calls.calllog import iso_ms
from firmware.errors import LinekeeperError
from firmware.policy import deletions
from firmware.sar import (
    DisclosureLog,
    RedactionError,
    bundle_letter,
    check_number,
    check_release,
    earlier_releases,
    find_calls,
    letter_copies,
    letter_digest,
    not_released,
    notes_and_names,
    parse_redaction,
    preview_details,
    refusal_audited,
    refuse_hidden,
    release,
    release_seen,
    search_bounds,
    search_details,
    search_lines,
)

from ..documents import letter_facts
from ..sarjob import KEEP_S
from ..security import audit, form_errors, lk, roles, unlocked_key
from . import csv_download, disclosure_log, outside_lines, rights_register, supervised_lines

bp = Blueprint("sar", __name__)
FIELDS = (
    "number",
    "from",
    "from_time",
    "to",
    "to_time",
    "requester",
    "recipient",
    "reason",
    "request",
    "whose",
)


def _search(values):
    """``(calls, search dict)``; raises LinekeeperError with a message for the page."""
    services = lk().services
    if services.reports is None:
        abort(404)
    period = None
    if values["to"] and not values["from"]:
        raise LinekeeperError("give the first day (From) too: To is the last day of the range")
    if values["from"] or values["to"]:
        period = services.reports.period(values["from"], values["to"] or values["from"])
    # The times of day narrow the first and last day, in the box's zone as its days are.
    since_us, until_us = search_bounds(period, values["from_time"], values["to_time"])
    # A search by line: of the lines granted to the user only, as every search here is.
    lines = search_lines(values["lines"], set(g.user.lines), lk().n_lines)
    calls = find_calls(
        services.reports.calls_db,
        number=values["number"] or None,
        since_us=since_us,
        until_us=until_us,
        country=services.reports.country,
        lines=set(g.user.lines),
        cipher=getattr(services.reports, "cipher", None),
        on_lines=lines,
        outside=outside_lines(),
    )
    search = {"number": values["number"], "from": values["from"], "to": values["to"]}
    search.update({k: values[k] for k in ("from_time", "to_time") if values[k]})
    if lines:
        search["lines"] = lines
    return calls, search


def _elsewhere():
    """The box's lines not granted to the user, which no search of theirs covers: every
    page showing what a release holds names them (the search's, the form shown again to
    preview the letter or with what was refused, the bundle's), so that the supervisor
    does not tell the person that is all that is held."""
    return [n for n in range(1, lk().n_lines + 1) if n not in g.user.lines]


def _values(args, extra=()):
    """The form's fields from ``args`` (the query or the posted form), stripped; ``lines``:
    the lines ticked for a search by line (``line``, one value each)."""
    values = {f: args.get(f, "").strip() for f in FIELDS + tuple(extra)}
    values["lines"] = [x.strip() for x in args.getlist("line")]
    return values


def open_access_requests():
    """The register's access requests a release may answer: open or extended (one waiting
    for proof of identity or clarification is not released to yet), and the register's
    Requests page shows this supervisor (about one of their lines, about no line or about
    lines no enabled supervisor holds: :func:`firmware.rights.concerns_lines`), oldest first."""
    supervised = supervised_lines()
    register = rights_register()
    try:
        found = [
            e
            for e in register.entries()
            if e["kind"] == "access"
            and e["status"] in (rights.OPEN, rights.EXTENDED)
            and rights.concerns_lines(e, g.user.lines, supervised)
        ]
    finally:
        register.close()
    return sorted(found, key=lambda e: e["id"])


def _request_id(text):
    """The register's request chosen on the form (its id), or None for none.

    :raises LinekeeperError: not one of :func:`open_access_requests`
    """
    if not text:
        return None
    ids = {e["id"] for e in open_access_requests()}
    if not (text.isascii() and text.isdigit() and len(text) < 12 and int(text) in ids):
        raise LinekeeperError(
            "Request %s is not an open access request in the register (Requests): choose one "
            "listed, or none. Nothing was released." % text[:20]
        )
    return int(text)


def _call_ids(text):
    """The call numbers typed in "Only these calls" ("12, 15"), or None for none.

    :raises LinekeeperError: something there that is not a call number
    """
    parts = text.replace(",", " ").split()
    if not all(p.isascii() and p.isdigit() and len(p) < 12 for p in parts):
        raise LinekeeperError("Only these calls: give call numbers (as in the list), separated by commas")
    return [int(p) for p in parts] or None


def _earlier(calls, search, request_id=None):
    """The copies of these calls given before, which the bundle's letter lists
    (:func:`firmware.sar.earlier_releases`): shown on the form, where each can be withheld.
    Each has ``shown``: whether the user may see its release (:func:`release_shown`); the
    form shows one they may not only by its time (:func:`_hidden`)."""
    services = lk().services
    found = earlier_releases(
        lk().config.data_dir, services.audit, calls, search, request_id, services.reports.country
    )
    return [dict(e, shown=release_shown(e["actor"], e["held"], g.user)) for e in found]


def _hidden(listed):
    """Refuse a release whose letter would list a copy given before that the user may not
    see (:func:`firmware.sar.refuse_hidden`, named by its local time).

    :raises LinekeeperError: there is one
    """
    refuse_hidden(listed, lk().local_time().when)


def _unseen(listed, shown):
    """The ids of the copies given before, of those the user may see, that the letter would
    list (``listed``) but the form did not show (``shown``: its hidden list of the ids it
    showed, comma separated). One they may not see is refused apart (:func:`_hidden`): the
    form lists no id of it.

    :raises LinekeeperError: ``shown`` is not such a list
    """
    parts = [i.strip() for i in shown.split(",") if i.strip()]
    for part in parts:
        if not (part.isascii() and part.isdigit() and len(part) < 12):
            raise LinekeeperError(
                "Copies given before (the form's list of those it showed): %s is not a disclosure "
                "log entry. Search again, then release. Nothing was released." % part[:20]
            )
    return {e["id"] for e in listed if e["shown"]} - {int(p) for p in parts}


def _typed_reasons(form):
    """``{entry id: reason}``: the reasons typed beside the copies given before on the form."""
    typed = {}
    for name, value in form.items():
        entry = name.removeprefix("withhold_reason_")
        if entry != name and entry.isascii() and entry.isdigit() and len(entry) < 12 and value.strip():
            typed[int(entry)] = value.strip()
    return typed


def _withheld(form, typed):
    """``{entry id: reason}``: the copies given before ticked "Withhold" on the release form,
    each with the reason typed beside it (``typed``, :func:`_typed_reasons`; one with none
    is refused by :func:`firmware.sar.check_release`).

    :raises LinekeeperError: a reason typed beside a copy not ticked (meant withheld, or not?)
    """
    ticked = {}
    for entry in form.getlist("withhold"):
        if not (entry.isascii() and entry.isdigit() and len(entry) < 12):
            raise LinekeeperError(
                "Withhold: %s is not a disclosure log entry. Nothing was released." % entry[:20]
            )
        ticked[int(entry)] = typed.get(int(entry), "")
    loose = sorted(set(typed) - set(ticked))
    if loose:
        raise LinekeeperError(
            "A reason is typed beside the copy of entry %d, but Withhold is not ticked: tick it to "
            "leave that copy out of the letter, or clear the reason. Nothing was released." % loose[0]
        )
    return ticked


@bp.route("/sar")
@roles("supervisor")
def index():
    values = _values(request.args)
    calls = None
    # From a register request about a staff member's lines (its page's link): the form with
    # its lines ticked and the request chosen, the days still to give; nothing searched yet.
    days = any(values[f] for f in ("from", "from_time", "to", "to_time"))
    filling = bool(values["request"].isdigit() and values["lines"]) and not (days or values["number"])
    # From a request, one of its numbers (``fill``: its page's link; the form's own Find calls
    # searches the number): filled in, the request chosen, the days the person named still to
    # give if any; nothing searched, nor audited, until Find calls. A caller's request (about
    # no line) searches the number on the user's lines; one about lines, on those of them the
    # user holds (ticked too: a search by line and number, over the days, which are then due).
    filling_number = (
        bool(values["request"].isdigit() and request.args.get("fill") and values["number"]) and not days
    )
    try:
        if filling:
            search_lines(values["lines"], set(g.user.lines), lk().n_lines)  # refused as a search's
        elif filling_number:
            check_number(values["number"])  # refused as a search's
            search_lines(values["lines"], set(g.user.lines), lk().n_lines)
            filling = True
        elif values["lines"] or any(values[f] for f in ("number", "from", "from_time", "to", "to_time")):
            calls, search = _search(values)
    except LinekeeperError as exc:
        return form_errors(
            "sar.html",
            {"search": str(exc)},
            values=values,
            calls=None,
            has_key=unlocked_key() is not None,
            requests=[],
        )
    # What the bundle's notes-and-names.json will hold, shown before it goes: a colleague's
    # note can be about someone else ("her husband rang about the debt"), and went unread.
    web = lk()
    about = (
        notes_and_names(web.notes, web.phonebook, web.services.reports.country, web.corrections)(calls)
        if calls
        else None
    )
    # What the letter will say of copies given before, shown before it goes: one to the
    # police the person may not be told of (DPA 2018 Sch. 2 para 2) went into it unseen.
    earlier = _earlier(calls, search) if calls else []
    # Read before the look is audited: a register locked past the wait is the "locked" page,
    # and the trail then recorded a look at the person's calls that was never shown.
    requests = open_access_requests() if calls else []
    if calls is not None:
        # A look at a person's calls, and at who was given copies of them: audited before it
        # is shown, one entry a search (what was searched, how many calls, the copies shown).
        audit("disclosure_search", None, **search_details(search, calls, earlier))
    # A supervisor of some lines who found nothing on them answered "we hold nothing": the
    # page names the lines the search did not cover. Not whether the number called them:
    # narrowing the dates would then tell a supervisor of line 3 when it called line 1.
    return render_template(
        "sar.html",
        errors={},
        values=values,
        calls=calls,
        about=about,
        elsewhere=_elsewhere(),
        has_key=unlocked_key() is not None,
        requests=requests,
        # A recording erased on request is said so, as the calls list says it.
        recording_word=deletions.recording_word,
        earlier=earlier,
        withhold={},
        typed={},
        filling=filling,
    )


@bp.route("/sar", methods=["POST"])
@roles("supervisor")
def release_bundle():
    """Check the form, then make the bundle in the background (:mod:`web.sarjob`): the
    page that follows shows its progress and offers it when it is logged."""
    values = _values(request.form, ("only", "redact"))
    # The page never holds the bundle password: shown again (a preview, a mistake), it says
    # one was typed, and a release without it is refused, not made unencrypted.
    values["encrypt"] = "1" if request.form.get("bundle_password") or request.form.get("encrypt") else ""
    key = unlocked_key()
    services = lk().services
    store = getattr(services.recordings, "store", None)
    errors = {}
    if key is None:
        errors["release"] = "Your session holds no unlocked recording key: log out and in again, then retry."
    elif store is None:
        errors["release"] = "This box keeps no recordings to release."
    calls = earlier = search = None
    withheld, typed = {}, _typed_reasons(request.form)
    if not errors:
        try:
            calls, search = _search(values)
            # Read first: the form is shown again with them whatever else is refused.
            earlier = _earlier(calls, search)
            withheld = _withheld(request.form, typed)
            redactions = [
                parse_redaction(r) for r in request.form.get("redact", "").replace(",", " ").split()
            ]
            request_id = _request_id(values["request"])
            password = request.form.get("bundle_password") or None
            if password is None and request.form.get("encrypt") and not request.form.get("preview"):
                raise LinekeeperError(
                    "Type the bundle password again: the page does not keep it once shown. "
                    "Nothing was released (to release unencrypted, search again)."
                )
            form = dict(
                actor=g.user.name,
                requester=values["requester"],
                recipient=values["recipient"],
                reason=values["reason"],
                calls=calls,
                search=search,
                bundle_password=password,
                redactions=redactions,
                only=_call_ids(request.form.get("only", "")),
                withheld=withheld,
                # Searched by date alone, the calls found are any caller's, and by line every
                # call on it: the supervisor says how they know each released is the
                # requester's (audited with the release).
                whose=values["whose"] or None,
            )
            # Bad input is refused here, on the form, before anything is made.
            chosen, narrowed, asked = check_release(**form)
            listed = _earlier(chosen, narrowed, request_id)
            unseen = _unseen(listed, request.form.get("shown_earlier", ""))
            # Linked by the request chosen, not by these calls, or given since the form was
            # shown: shown now (a preview shows them in the letter too).
            earlier = earlier + [e for e in listed if e["id"] in unseen - {x["id"] for x in earlier}]
            if unseen and not request.form.get("preview"):
                # The form did not show it, and the person would have been told of it unseen.
                raise LinekeeperError(
                    "the letter would also list %s, given before for the request chosen: it is now "
                    "shown under Copies given before; withhold it or not, then release again"
                    % ", ".join("disclosure log entry %d" % i for i in sorted(unseen))
                )
            # Not previewed either: the letter would show them who received it.
            _hidden(listed)
            copies = letter_copies(listed, withheld)
            # Read now, in this request: the notes and phone book are this thread's.
            kept = notes_and_names(lk().notes, lk().phonebook, services.reports.country, lk().corrections)(
                chosen
            )
            facts = letter_facts(lk())
            wall_us = int(services.wall_us())
            # The letter, as the bundle will hold it: shown on Preview, and before a release
            # whose letter names who was given copies before (a private person's name is
            # theirs: Sch. 2 para 16), which goes only once that very letter was shown.
            letter = bundle_letter(store, chosen, asked, redactions, True, facts, wall_us, copies)
            # What the form carries of the letter it shows: made on time 0, since the letter
            # says when it was made (the release's time, not the preview's).
            digest = letter_digest(bundle_letter(store, chosen, asked, redactions, True, facts, 0, copies))
            shown = request.form.get("letter_shown", "")
            preview = request.form.get("preview")
            if preview or (shown != digest and (copies or shown)):
                # The letter is shown (below): it names the person's calls and who was given
                # copies of them before, a private person too. Each reading is audited.
                audit("disclosure_preview", None, **preview_details(chosen, copies, withheld, request_id))
                if shown and not preview:
                    # Read, then changed: another's release meanwhile, one never made, the form.
                    errors["release"] = (
                        "The letter is not the one shown: it changed since (a copy of these calls "
                        "given or taken back meanwhile, or the form changed). Read it again (The "
                        "letter, as it goes), then release again. Nothing was released."
                    )
                elif not preview:
                    errors["release"] = (
                        "The letter names who was given copies of these calls before: read it "
                        "(The letter, as it goes), withhold any copy it should not name, then "
                        "release again. Nothing was released."
                    )
                if errors:
                    _refused(errors["release"])
                return _form_again(
                    values, errors, calls, key, withheld, typed, earlier, (letter, digest), search
                )
            # The job reads the copies given before again, and releases only this very letter.
            work = _work(dict(form, letter_sha256=digest), key, store, request_id, kept, facts, wall_us)
            job = lk().sar_jobs.start(g.user.name, work, again=_again(request.form))
        except RedactionError as exc:
            # Said beside the Redact field, whose spans are kept as typed to be put right.
            errors["redact"] = str(exc)
        except LinekeeperError as exc:
            errors["release"] = str(exc)
    if errors:
        _refused(errors.get("release") or errors["redact"])
        return _form_again(values, errors, calls, key, withheld, typed, earlier, search=search)
    return redirect(url_for("sar.bundle", token=job.token))


def _refused(why):
    """The release form refused, nothing released: logged and audited (``disclosure_refused``,
    from the address it was sent from), as ``linekeeper sar``'s refusals are."""
    refusal_audited(lambda action, details: audit(action, None, **details), g.user.name, why)


def _again(form):
    """The release form's fields as the bundle's page posts them back to preview the letter
    again should the job refuse it (:class:`firmware.sar.LetterChanged`): ``[(name, value)]``,
    never the bundle password (``encrypt`` says one was typed), the CSRF token nor the letter
    shown."""
    skip = {"bundle_password", "csrf_token", "letter_shown", "preview", "encrypt"}
    fields = [(name, value) for name in form for value in form.getlist(name) if name not in skip]
    if form.get("bundle_password") or form.get("encrypt"):
        fields.append(("encrypt", "1"))
    return fields


def _form_again(values, errors, calls, key, withheld, typed, earlier, letter=(None, ""), search=None):
    """The release form again, as it was filled in: with what was refused (``errors``), and
    the bundle's letter to read before it goes (``letter``: its text and digest, or None).

    Shown again with the person's calls (``calls``, found by ``search``) and the copies given
    before, it is a look at them as the search page's is, refused or previewed: audited so
    (``disclosure_search``), before it is shown, beside the refusal's or the preview's entry:
    once what it shows is read (a register locked past the wait shows no calls)."""
    requests = open_access_requests() if calls else []
    if calls is not None:
        audit("disclosure_search", None, **search_details(search, calls, earlier or []))
    page = dict(
        values=values,
        calls=calls,
        has_key=key is not None,
        requests=requests,
        recording_word=deletions.recording_word,
        earlier=earlier or [],
        withhold=withheld,
        typed=typed,
        letter=letter[0],
        letter_shown=letter[1],
        elsewhere=_elsewhere(),
    )
    if errors:
        return form_errors("sar.html", errors, **page)
    return render_template("sar.html", errors={}, **page)


def _work(form, key, store, request_id, kept, facts, wall_us):
    """The bundle's making, for :meth:`web.sarjob.SarJobs.start` (in a thread of its own)."""
    app = current_app._get_current_object()
    # Named by its disclosure log entry: each release's file apart from the last.
    name = "subject-access-{id}.zip" + (".gpg" if form["bundle_password"] else "")

    def work(spool, progress):
        with app.app_context():
            web = app.extensions["linekeeper"]
            services = web.services
            try:
                entry_id, _ = release(
                    web.config.data_dir,
                    store,
                    services.audit,
                    key,
                    bundle_name=name,
                    wall_us=wall_us,
                    spool=spool,
                    progress=progress,
                    about=lambda calls: kept,
                    facts=facts,
                    request_id=request_id,
                    **form,
                )
            except LinekeeperError as exc:
                if not spool.size and spool.entry_id is None:
                    # Refused before any of it was written (the letter changed since it was
                    # shown): as the form's refusals are. One that failed later is no refusal.
                    actor = form["actor"]
                    refusal_audited(
                        lambda action, details: services.audit.append(
                            actor, action, None, details, int(services.wall_us())
                        ),
                        actor,
                        str(exc),
                    )
                raise
            if request_id is not None:
                services.audit.append(
                    form["actor"],
                    "data_request",
                    "request:%d" % request_id,
                    {"event": "released", "disclosure": entry_id},
                    int(services.wall_us()),
                )
            log = DisclosureLog(web.config.data_dir)
            try:
                sha256 = log.get(entry_id)["bundle_sha256"]
            finally:
                log.close()
            return entry_id, name.replace("{id}", str(entry_id)), sha256

    return work


def _job(token):
    job = lk().sar_jobs.get(token, g.user.name)
    if job is None:
        abort(404)
    return job


@bp.route("/sar/bundle/<token>")
@roles("supervisor")
def bundle(token):
    return render_template("sar_bundle.html", job=_job(token), keep_min=KEEP_S // 60, elsewhere=_elsewhere())


@bp.route("/sar/bundle/<token>.json")
@roles("supervisor")
def bundle_status(token):
    return jsonify(_job(token).status())


@bp.route("/sar/bundle/<token>/file")
@roles("supervisor")
def bundle_file(token):
    job = _job(token)
    chunks = lk().sar_jobs.sending(job)
    if chunks is None:
        abort(404)
    return Response(
        chunks,
        mimetype="application/octet-stream",
        headers={
            "Content-Disposition": 'attachment; filename="%s"' % job.name,
            "Content-Length": str(job.spool.size),
            "Cache-Control": "no-store",
        },
    )


def release_shown(actor, call_ids, user):
    """Whether ``user`` may see a release made by ``actor`` of ``call_ids``
    (:func:`firmware.sar.release_seen`, the lines of the box's call log)."""
    calls = lk().services.calls

    def line_of(call_id):
        call = calls.get(call_id)
        return None if call is None else call["line"]

    return release_seen(actor, call_ids, user, line_of)


@bp.route("/disclosures")
@roles("auditor", "supervisor")
def disclosures():
    return render_template("disclosures.html", entries=_disclosures())


DISCLOSURE_COLUMNS = (
    "id",
    "at",
    "released_by",
    "requested_by",
    "released_to",
    "reason",
    "call_ids",
    "recordings",
    "encrypted",
    "bundle_sha256",
    "outcome",
    "withheld_from_letter",
)
# A copy withheld from a release's letter, to a reader who may not see that copy's release.
WITHHELD_UNSHOWN = "withheld (reason not shown)"


@bp.route("/disclosures.csv")
@roles("auditor", "supervisor")
def disclosures_csv():
    """The releases the page shows this user, oldest first, as CSV (times in UTC);
    audited as ``export_list`` of ``disclosures``. Not the search (a person's number):
    the page does not show it either."""
    rows = [
        [
            e["id"],
            iso_ms(e["wall_us"]),
            e["actor"],
            e["requester"],
            e["recipient"],
            e["reason"],
            e["call_ids"] or "",
            e["recordings"],
            "yes" if e["encrypted"] else "no",
            e["bundle_sha256"] or "",
            "not released: the bundle could not be written (%s)" % e["failed"] if e["failed"] else "released",
            "; ".join(e["withheld_from_letter"]),
        ]
        for e in reversed(_disclosures())
    ]
    return csv_download("disclosures.csv", DISCLOSURE_COLUMNS, rows, "disclosures")


def _disclosures():
    """The disclosure log's entries the user may see (:func:`release_shown`), newest
    first, each with ``failed``: why its bundle was never written, or None, and
    ``withheld_from_letter``: the copies given before its letter left out, each
    ``"entry N: reason"`` (the sealed ``withheld`` column), the reason only where the user
    may see entry N itself (its requester): else ``"entry N: withheld (reason not shown)"``."""
    log = disclosure_log(getattr(lk().services.audit, "cipher", None))
    try:
        entries = log.entries()
    finally:
        log.close()
    shown = {
        e["id"]
        for e in entries
        if release_shown(
            e["actor"], [c for c in str(e.get("call_ids") or "").split(",") if c.isdigit()], g.user
        )
    }
    entries = [e for e in entries if e["id"] in shown]
    # A release is logged before its bundle is written; a write that failed is audited
    # against its entry ("disclosure:N"), and the log says so beside it.
    failed = not_released(lk().services.audit, entries)
    for e in entries:
        e["failed"] = failed.get(e["id"])
        # Why a copy was withheld is about that copy (a police request, a private person):
        # told only to who may see its own requester, as the page shows it.
        e["withheld_from_letter"] = [
            "entry %d: %s" % (w["disclosure"], w["reason"])
            for w in withheld_shown(json.loads(e.get("withheld") or "[]"), shown.__contains__)
        ]
    return entries


def withheld_shown(withheld, may_see):
    """A release's copies withheld from its letter (``[{"disclosure", "reason"}]``) as the
    user may read them: the reason of one whose release they may not see (``may_see(entry
    id)`` false, :func:`release_shown`) is :data:`WITHHELD_UNSHOWN` (the Disclosures page,
    a call's history)."""
    return [w if may_see(w["disclosure"]) else dict(w, reason=WITHHELD_UNSHOWN) for w in withheld]
