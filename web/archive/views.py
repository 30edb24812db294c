"""The central viewer's pages: login, search, a call and its audio, reports, sites, audit."""

import datetime as dt
import json
import re
import secrets

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from firmware import words
from firmware.archive import viewer as index
from firmware.archive.export import export_call
from firmware.archive.settings import BOX_ID
from firmware.errors import LinekeeperError, ReportError, WrongPasswordError
from firmware.localtime import duration_text
from firmware.reports.period import parse_period
from firmware.reports.tables import hms, percent

from .. import passwords
from ..accounts import change_problems, who_typed
from ..download import CHUNK, export_body
from ..inactive import UNUSED_DAYS, UNUSED_REASON
from ..security import local_path, public, roles, whole_number
from ..site import given_reason
from ..throttle import wait_said
from .app import SESSION_COOKIE, set_cookie, viewer
from .users import MUST_CHANGE

bp = Blueprint("archive", __name__)
PAGE_CALLS = 200
# Who ends a lockout here (linekeeper archive unlock-user), as the box's pages say an installer.
UNLOCKER = "whoever runs the viewer"
# Listening tokens a session keeps (the oldest dropped first), as the box's call page does.
MAX_TOKENS = 20
MAX_VIEWED = 1000  # calls a session remembers it opened (call_viewed once each)
MAX_NUMBER = 32  # digits of a searched number, as on a box (web.views.calls)
# A number searched, as the calls list's entry says it (its digits stay out of the trail).
NUMBER_NOT_KEPT = "given (its digits not kept)"


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if request.method == "GET":
        return render_template("archive/login.html", next=request.args.get("next", ""))
    v = viewer()
    name = request.form.get("user", "").strip()
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    # Counted before the password is checked, so guesses sent at once get no more checks.
    keys = v.throttle.account_keys(name, request.remote_addr or "")
    wait_s = v.throttle.attempt(keys)
    if wait_s:
        # Refused unchecked and not audited, as on a box: the failure that began (or
        # lengthened) this lockout is, with how long; an entry for each refused attempt let
        # anyone who can reach the viewer fill its trail at request speed.
        error = wait_said(
            v.throttle, keys, "Too many failed attempts. Wait %d s and try again.", wait_s, unlocker=UNLOCKER
        )
        return render_template("archive/login.html", error=error, next=next_url), 429
    # The check of the periodic look, at once: an account 90 days unused does not log in
    # because no request came in between (as on a box: web.views.auth.login).
    v.disable_unused(force=True)
    user = v.users.check(name, password) if name and password else None
    key = None
    if user is not None and user.has("supervisor"):
        try:
            key = v.keystore.unlock(name, password)
        except WrongPasswordError:
            user = None  # a supervisor without a slot of the organisation key cannot log in
    if user is not None and user.disabled_us is not None:
        # Said only after the right password, as on a box: a wrong one gets the same words
        # as any other, so the message tells nobody which names are accounts, or disabled.
        if key is not None:
            key.forget()
        v.throttle.succeeded(keys)
        v.audit("login_failed", user.name, actor="anonymous", disabled=user.disabled_why)
        return render_template("archive/login.html", error=disabled_said(user), next=next_url), 403
    if user is None:
        v.audit("login_failed", actor="anonymous", **who_typed(name, v.users.get), **v.throttle.lockout(keys))
        return render_template("archive/login.html", error="Wrong user name or password.", next=next_url), 400
    v.throttle.succeeded(keys)
    v.users.settle(name, password)  # a change of password a cut left part made
    if passwords.password_problem(password, name):
        # A password from before the rules (PCI DSS 8.3.6) still logs in, once more: it
        # must be changed before anything else (web.archive.app.before_request).
        v.users.require_change(name, "rules")
    user = v.users.get(name)
    g.user = user
    v.audit("login", user.name, **({"must_change": user.must_change} if user.must_change else {}))
    token = v.new_session(user, key)
    # A path of the viewer only (a tab or a backslash would take a browser off it); an
    # installer, who sees no calls, starts at the sites.
    target = local_path(next_url) or url_for(
        "archive.calls" if user.has("supervisor", "auditor") else "archive.sites"
    )
    if user.must_change:
        target = url_for("archive.password")
    resp = redirect(target)
    set_cookie(resp, SESSION_COOKIE, token)
    return resp


def disabled_said(user):
    """What the login says to the person whose account ``user`` is disabled (their
    password was right)."""
    if user.disabled_why == UNUSED_REASON:
        said = "This account was disabled after %d days unused." % UNUSED_DAYS
    else:
        said = "This account was disabled %s." % user.disabled_why
    return said + " Ask %s to enable it (linekeeper archive enable-user)." % UNLOCKER


@bp.route("/password", methods=["GET", "POST"])
@roles()
def password():
    """Change one's own password, by the box's rules (PCI DSS 8.3: web.passwords, the last
    four refused); a supervisor's key slot follows. Audited before it is made."""
    must_change = MUST_CHANGE.get(g.user.must_change)
    if request.method == "GET":
        return render_template(
            "archive/password.html", errors={}, done=request.args.get("done"), must_change=must_change
        )
    v = viewer()
    name = g.user.name
    old = request.form.get("old") or ""
    new = request.form.get("new") or ""
    errors = {}
    # The current password is a password guess like a login's (a session left open on a
    # desk), throttled and locked out the same way.
    keys = v.throttle.account_keys(name, request.remote_addr or "")
    wait_s = v.throttle.attempt(keys)
    if wait_s:
        errors["old"] = wait_said(
            v.throttle,
            keys,
            "Too many wrong current passwords. Wait %d s and try again.",
            wait_s,
            unlocker=UNLOCKER,
        )
        return render_template("archive/password.html", errors=errors, must_change=must_change), 429
    if v.users.check(name, old) is None:
        errors["old"] = "That is not your current password."
        v.audit("login_failed", name, field="current password", **v.throttle.lockout(keys))
    else:
        v.throttle.succeeded(keys)
    # The box's Account page's own checks (web.accounts.change_problems).
    confirm = request.form.get("confirm") or ""
    errors.update(change_problems(name, old, new, confirm, "old" not in errors, v.users.reused))
    if errors:
        return render_template("archive/password.html", errors=errors, must_change=must_change), 400
    has_slot = g.user.has("supervisor") and name in v.keystore.slots()
    v.audit("password_change", name, key_slot=has_slot)
    try:
        v.users.begin_change(name, new)  # the slot next: a cut between is settled at a login
        if has_slot:
            v.keystore.change_password(name, old, new)
        v.users.finish_change(name)
    except Exception as exc:
        v.audit("password_change", name, failed=str(exc))
        raise
    # The account's other sessions end (the password's stamp changed); this one goes on anew.
    key = v.keystore.unlock(name, new) if has_slot else None
    v.end_session(request.cookies.get(SESSION_COOKIE))
    token = v.new_session(v.users.get(name), key)
    resp = redirect(url_for("archive.password", done=1))
    set_cookie(resp, SESSION_COOKIE, token)
    return resp


@bp.route("/logout", methods=["POST"])
@roles()
def logout():
    v = viewer()
    v.audit("logout", g.user.name)
    v.end_session(request.cookies.get(SESSION_COOKIE))
    resp = redirect(url_for("archive.login", out=1))
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


def _day(text, name):
    """The date ``text`` (YYYY-MM-DD) of the field ``name``.

    :raises ValueError: any other text, the field named
    """
    try:
        if not index.ISO_DAY.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("%s: %r is not a date like 2026-03-02 (YYYY-MM-DD)" % (name, text[:20])) from None


def _open_index():
    v = viewer()
    v.refresh_erasures()  # a caller's details erased since: no page shows or finds them
    try:
        return v.open_index()
    except LinekeeperError:
        return None


@bp.route("/")
@roles("supervisor", "auditor")
def calls():
    args = request.args
    form = {k: args.get(k, "").strip() for k in ("number", "box", "from", "to")}
    errors = []
    query = {}
    typed = re.sub(r"[\s().\-/]", "", form["number"])
    # Digits 0-9 only: isdigit() also takes other scripts' digits and superscripts, which
    # the search then looked for as typed and said no call matched.
    if form["number"] and (not typed or not all(c in "0123456789+#*" for c in typed)):
        errors.append("number: only digits 0-9 (and spaces, + # * - ( ))")
    elif len(typed) > MAX_NUMBER:
        # The box's own search takes as many (web.views.calls): no number is longer.
        errors.append("number: at most %d digits (and + # *), not %d" % (MAX_NUMBER, len(typed)))
    # Days as each call's site counts them (in the zone its record carries), as its times
    # are shown: index.search holds each call to its own zone's days.
    for name, field in (("from", "first_day"), ("to", "last_day")):
        if form[name]:
            try:
                query[field] = _day(form[name], name)
            except ValueError as exc:
                errors.append(str(exc))
    if query.get("first_day") is not None and query.get("last_day") is not None:
        if query["last_day"] < query["first_day"]:
            errors.append("to: the last day (%s) is before the first (%s)" % (form["to"], form["from"]))
    if form["box"]:
        # Text that is no box id is no site (404, the rule named), as in the addresses; a
        # site not granted is refused (403). Neither is audited: a search shows no call.
        _site_or_403(form["box"])
    db = _open_index()
    if db is None:
        return render_template("archive/calls.html", form=form, calls=[], errors=errors, no_index=True)
    status = 400 if errors else 200
    try:
        found = []
        if form["box"] and not errors and form["box"] not in {box for box, _ in index.sites(db)}:
            # A box id of no call indexed (mistyped in a saved address): said, as the
            # report's Site field says it, not "0 calls" under "every site".
            errors.append("There is no site %s in the index." % form["box"])
            status = 404
        if not errors:
            found = index.search(
                None,
                number=typed or None,
                box=form["box"] or None,
                limit=PAGE_CALLS,
                newest_first=True,
                db=db,
                boxes=g.user.sites,
                **query,
            )
        all_sites = _granted(index.sites(db))
    finally:
        db.close()
    if not errors:
        _audit_list(form, found)
    return render_template(
        "archive/calls.html", form=form, calls=found, errors=errors, sites=all_sites, limit=PAGE_CALLS
    ), status


def _audit_list(form, found):
    """The calls page shown: it shows each call's number and name, so each page shown is an
    entry, as the box's calls list writes (:func:`web.views.calls.index`): ``list_viewed`` of
    ``calls``, with its search (the fields given, or "all calls"), how many calls it showed
    (``rows``) and which (``calls``: ``SITE/ID``, at most a page's), and their ``sites`` (so
    an auditor of other sites does not read it). A number searched is said given, not
    kept: the viewer's trail is not sealed, as a box's is, and no erasure reaches it."""
    shown = {name: form[name] for name in ("box", "from", "to") if form[name]}
    if form["number"]:
        shown["number"] = NUMBER_NOT_KEPT
    sites = {c["box"] for c in found} | ({form["box"]} if form["box"] else set())
    viewer().audit(
        "list_viewed",
        "calls",
        filter=shown or "all calls",
        rows=len(found),
        calls=["%s/%d" % (c["box"], c["call_id"]) for c in found[:PAGE_CALLS]],
        sites=sorted(sites),
    )


def _granted(site_rows):
    """The ``(box, calls)`` rows of :func:`index.sites` the logged-in user is granted."""
    return [row for row in site_rows if g.user.may_see(row[0])]


def _site_or_403(box, action=None, **details):
    """Refuse (403) a site the logged-in user is not granted, before anything about its
    calls is looked up; ``action``: the audit action the refusal is recorded as. Text that
    is not a site id at all is not found (404), with nothing audited: the trail is
    append-only, and a refusal there kept whatever the address said, at any length."""
    if not BOX_ID.fullmatch(box):
        abort(
            404,
            description="There is no site %r: a site is a box id "
            "(lower-case letters, digits and hyphens, up to 63)." % box[:20],
        )
    if g.user.may_see(box):
        return
    why = "site %s is not granted to %s" % (box, g.user.name)
    if action is not None:
        viewer().audit(action, details.pop("target", box), box=box, refused=why, **details)
    abort(403, description="Site %s is not among your sites." % box)


def _call_or_404(box, text, action=None):
    """``(call_id, call)``: the indexed call ``box``/``text`` (the URL's call number) and
    its id. 400 when ``text`` is not written in digits 0-9, 403 when the site is not granted
    (audited as ``action``), 404 when there is no such call (audited as ``action`` with
    ``refused``: :func:`_no_such_call`)."""
    if not (text.isascii() and text.isdigit()):
        # Werkzeug's <int:> took other scripts' digits: /calls/leeds/١ opened call 1.
        abort(400, description="The call number in the address is written in digits 0-9, not %r." % text[:20])
    call_id = whole_number(text)  # None: longer than any call's (past SQLite's integers)
    ref = text if call_id is None else call_id
    _site_or_403(box, action, target="%s/%s" % (box, ref), call_id=ref)
    db = _open_index()
    if db is None or call_id is None or call_id >= 1 << 63:
        _no_such_call(box, text, call_id, action)
    try:
        call = index.get_call(db, box, call_id)
        if call is not None:
            # Without the key a number is not known unless its record carried it in clear.
            call["sealed_opened"] = index.sealed_opened(db)
    finally:
        db.close()
    if call is None:
        _no_such_call(box, text, call_id, action)
    return call_id, call


def _no_such_call(box, text, call_id, action):
    """404 for call ``text`` (digits; ``call_id``: its number, None past SQLite's integers)
    of a granted ``box`` that the index does not hold,
    audited as ``action`` (the look, play or export tried) with ``refused`` "no such call":
    an account trying call numbers is worth the auditor's seeing. Only for a logged-in
    person (every route here asks for a login first), so someone without an account cannot
    fill the append-only trail; the number kept is cut to 20 digits (past any call's)."""
    if action is not None and g.get("user") is not None:
        ref = call_id if call_id is not None and call_id < 1 << 63 else text[:20] + "..."
        viewer().audit(action, "%s/%s" % (box, ref), box=box, call_id=ref, refused="no such call")
    abort(404)


@bp.route("/calls/<box>/<call_id>")
@roles("supervisor", "auditor")
def call(box, call_id, errors=None, status=200):
    """The call's page; with ``?listen=<token>`` (where the Listen form redirects,
    :func:`listen`) the player of that listen, if the token is this session's for this call.
    Refused for a site not granted (403), audited as ``call_viewed`` with ``refused``, as a
    refused play or export is under its own action: an attempt at a call, though nothing of
    it was shown."""
    call_id, found = _call_or_404(box, call_id, "call_viewed")
    _audit_view(box, call_id, found)
    token = listen_reason = None
    asked = request.args.get("listen", "")
    playback = g.session.get("playbacks", {}).get(asked)
    if playback is not None and playback["target"] == "%s/%d" % (box, call_id):
        # The same listen shown again (a reload): its first play is audited once, as before.
        token, listen_reason = asked, playback["reason"]
    return render_template(
        "archive/call.html", call=found, errors=errors or {}, token=token, listen_reason=listen_reason
    ), status


def _audit_view(box, call_id, found):
    """The call's page opened: it shows the caller's number and name, so who looked is
    audited (``call_viewed``), once per login session and call, as on a box
    (:func:`web.views.calls._audit_view`): shown again after the Listen form, none. An
    entry not written (the trail busy) is not a view kept: the next one tries again.
    dict.setdefault is atomic: of two parallel first views only one writes."""
    viewed = g.session.setdefault("viewed", {})
    target = "%s/%d" % (box, call_id)
    mine = object()
    if viewed.setdefault(target, mine) is not mine:
        return
    while len(viewed) > MAX_VIEWED:
        viewed.pop(next(iter(viewed)))
    try:
        viewer().audit("call_viewed", target, box=box, call_id=call_id, line=found["line"])
    except BaseException:
        viewed.pop(target, None)  # not written: the next view tries again
        raise


@bp.route("/calls/<box>/<call_id>/listen", methods=["POST"])
@roles("supervisor")
def listen(box, call_id):
    """A new listen, once the supervisor has said why, as on a box (the box's rule and
    words, :func:`web.site.given_reason`): the reason is kept with a new listening token and
    goes in the ``playback`` entry of its first play; answered with a redirect to the call's
    page showing its player. No reason, or a bad one, shows the page again without the
    player, saying what was wrong."""
    number, found = _call_or_404(box, call_id, "playback")
    if not found["recording_key"]:
        abort(404, description="This call has no archived recording.")
    reason, problem = given_reason("listen_reason", "played", "complaint ref 1234")
    if problem:
        return call(box, call_id, errors={"listen_reason": problem}, status=400)
    key = g.session["key"]
    if key is None or key.forgotten:
        return call(
            box,
            call_id,
            errors={"listen_reason": "Log in again to unlock recordings for playback."},
            status=400,
        )
    token = secrets.token_urlsafe(16)
    playbacks = g.session.setdefault("playbacks", {})
    playbacks[token] = {"target": "%s/%d" % (box, number), "reason": reason, "unaudited": True}
    while len(playbacks) > MAX_TOKENS:
        playbacks.pop(next(iter(playbacks)))
    # Post/Redirect/Get, as on a box: a reload shows this listen's player and sends no form.
    return redirect(url_for("archive.call", box=box, call_id=number, listen=token) + "#player", 303)


@bp.route("/calls/<box>/<call_id>/audio")
@roles("supervisor")
def audio(box, call_id):
    """The call's recording, decrypted in memory with the logged-in supervisor's key; audited
    with the reason the listen form gave (its token, ``p``): without one, nothing is played.
    One ``playback`` entry per token, as on a box: its first audio sent is the play the
    person started, and the player's further requests for it (buffering, seeking, playing
    again) write none; a new play is a new listen form, so a new token and entry. A HEAD
    decrypts and audits nothing (nothing is played)."""
    call_id, call = _call_or_404(box, call_id, "playback")
    v = viewer()
    key = g.session["key"]
    target = "%s/%d" % (box, call_id)
    if key is None or key.forgotten:
        abort(403, description="Log in again to unlock recordings for playback.")
    if not call["recording_key"]:
        abort(404, description="This call has no archived recording.")
    playback = g.session.get("playbacks", {}).get(request.args.get("p", ""))
    if playback is None or playback["target"] != target:
        abort(403, description="Say why you listen first: the call's page asks, then shows the player.")
    reason = playback["reason"]
    if request.method == "HEAD":
        # Nothing is sent: the audio is not decrypted and no playback is written, as on a box.
        try:
            mime = index.mime_of(index.read_record(v.bucket.get(call["record_key"]), key))
        except LinekeeperError as exc:
            abort(404, description=str(exc))
        return Response(mimetype=mime, headers={"Cache-Control": "no-store"})
    try:
        record = index.read_record(v.bucket.get(call["record_key"]), key)
        data, complete, mime = index.play(v.bucket, record, key, v.viewer_dir)
    except LinekeeperError as exc:
        v.audit("playback", target, box=box, call_id=call_id, reason=reason, refused=str(exc))
        abort(404, description=str(exc))
    # dict.pop is atomic: of two parallel first requests only one writes the entry.
    if playback.pop("unaudited", False):
        try:
            v.audit(
                "playback",
                target,
                box=box,
                call_id=call_id,
                line=call["line"],
                duration_s=call["duration_s"],
                complete=complete,
                reason=reason,
            )
        except BaseException:
            playback["unaudited"] = True  # not written, nothing sent: the next request tries again
            raise
    return Response(data, mimetype=mime, headers={"Cache-Control": "no-store"})


@bp.route("/calls/<box>/<call_id>/export", methods=["POST"])
@roles("supervisor")
def export(box, call_id):
    """The call's recording as a zip an auditor checks offline with ``linekeeper verify-export``
    (:mod:`firmware.archive.export`), once the supervisor has said why, as on a box (the
    box's field, rule and words: :func:`web.site.given_reason`); the reason goes in the
    ``export`` entry and in the zip's manifest. No reason, or a bad one, shows the call's
    page again saying what was wrong, with nothing read or audited. Every export, and
    every refused one, audited."""
    number, found = _call_or_404(box, call_id, "export")
    v = viewer()
    key = g.session["key"]
    target = "%s/%d" % (box, number)
    if not found["recording_key"]:
        abort(404, description="This call has no archived recording.")
    reason, problem = given_reason("reason", "exported", "complaint ref 1234")
    if problem:
        return call(box, call_id, errors={"reason": problem}, status=400)
    if key is None or key.forgotten:
        abort(403, description="Log in again to unlock recordings for export.")
    try:
        record = index.read_record(v.bucket.get(found["record_key"]), key)
        ext = "wav" if "wav" in index.mime_of(record) else "ogg"
        body, summary = export_call(
            v.bucket, record, key, v.viewer_dir, g.user.name, v.wall_us(), ext, reason=reason
        )
    except LinekeeperError as exc:
        v.audit("export", target, box=box, call_id=number, reason=reason, refused=str(exc))
        return render_template("archive/error.html", title="Not exported", message=str(exc)), 409
    details = dict(box=box, call_id=number, line=found["line"], reason=reason, **summary)
    details["address"] = request.remote_addr or ""
    v.audit("export", target, **details)
    # Sent in chunks, as the box's export: a download the browser drops part way is a second
    # entry with these details and ``failed`` (web.download), so no copy is counted taken.
    sent = export_body(body, CHUNK, v.audit_log, v.wall_us, g.user.name, target, details)
    return Response(
        sent,
        mimetype="application/zip",
        direct_passthrough=True,
        headers={
            "Content-Disposition": "attachment; filename=%s-call-%d.zip" % (box, number),
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
        },
    )


@bp.route("/reports")
@roles("supervisor", "auditor")
def reports():
    args = request.args
    typed = {k: args.get(k, "").strip() for k in ("from", "to", "tz")}
    form = {
        "from": typed["from"],
        "to": typed["to"],
        "tz": typed["tz"] or "UTC",
        "site": args.get("site", "").strip(),
    }
    _today_unless_typed(form, typed)
    if form["site"]:
        _site_or_403(form["site"], "report")
    fmt = args.get("format", "")
    if fmt not in ("", "json"):
        # Any other answered the page, as if no download were asked for.
        error = "format: %r is not one the viewer makes: json (a download), or none for this page." % fmt[:20]
        return render_template("archive/reports.html", form=form, report=None, error=error), 400
    try:
        first, last = _day(form["from"], "from"), _day(form["to"], "to")
    except ValueError as exc:
        return render_template("archive/reports.html", form=form, report=None, error=str(exc)), 400
    boxes = [form["site"]] if form["site"] else g.user.sites
    db = _open_index()
    if db is None:
        return render_template("archive/reports.html", form=form, report=None, no_index=True)
    if form["site"] and form["site"] not in {box for box, _ in index.sites(db)}:
        db.close()
        error = "There is no site %s in the index." % form["site"]
        return render_template("archive/reports.html", form=form, report=None, error=error), 404
    try:
        if not typed["tz"]:
            # The days the sites' own pages and reports count in, when they share one zone
            # (as their calls are shown); else UTC. The form shows which.
            form["tz"] = index.shared_zone(db, sorted(boxes) if boxes is not None else None) or "UTC"
            _today_unless_typed(form, typed)
            first, last = _day(form["from"], "from"), _day(form["to"], "to")
        period = parse_period(first, last, form["tz"])
        report = index.central_report(db, period, boxes=sorted(boxes) if boxes is not None else None)
        complete = index.sealed_opened(db)
    except ReportError as exc:
        return render_template("archive/reports.html", form=form, report=None, error=str(exc)), 400
    finally:
        db.close()
    if fmt == "json":
        # The zone its days are in: the same dates are other instants in another zone.
        viewer().audit(
            "report",
            None,
            format="json",
            period=period.label(),
            time_zone=period.tz,
            sites=list(report["sites"]),
        )
        body = json.dumps(report, indent=1, sort_keys=True)
        return Response(
            body,
            mimetype="application/json",
            headers={"Content-Disposition": "attachment; filename=archive-report.json"},
        )
    return render_template("archive/reports.html", form=form, report=report, complete=complete)


def _today_unless_typed(form, typed):
    """Fill the report ``form``'s From and To not ``typed`` with today as the report's zone
    (``form["tz"]``) has it, the zone its days are counted in: in UTC, a London report
    opened at 00:30 BST showed yesterday. A zone not known is UTC's today here (the period
    then refuses it, naming it)."""
    today = index.local_time(form["tz"]).iso_date(viewer().wall_us())
    for name in ("from", "to"):
        if not typed[name]:
            form[name] = today


@bp.route("/sites")
@roles()
def sites():
    db = _open_index()
    found, opened = [], False
    if db is not None:
        try:
            found, opened = _granted(index.sites(db)), index.sealed_opened(db)
        finally:
            db.close()
    return render_template("archive/sites.html", sites=found, opened=opened, has_index=db is not None)


@bp.route("/index", methods=["POST"])
@roles("supervisor")
def rebuild():
    """Rebuild the index from the bucket with the logged-in supervisor's organisation key."""
    v = viewer()
    key = g.session["key"]
    if key is None or key.forgotten:
        abort(403, description="Log in again to unlock the organisation key.")
    skipped_keys = []
    try:
        v.rebuild_index(key, skipped_keys)
    except index.KeyOpensNone:
        # Said with the records of this person's sites only, as the counts below.
        whose = "" if g.user.sites is None else " of your sites"
        refused = index.KeyOpensNone(_granted_keys(skipped_keys), whose)
        return render_template(
            "archive/error.html", title="Index not rebuilt", message="The index was not rebuilt: %s" % refused
        ), 502
    except Exception as exc:  # the store's errors come in many types; the page says which
        return render_template(
            "archive/error.html", title="Index not rebuilt", message="The index was not rebuilt: %s" % exc
        ), 502
    context = _sites_context()
    # The calls, and the unreadable records skipped, of the sites this person is granted:
    # another site's counts are not theirs to know (the index and the bucket hold every site's).
    granted = sum(count for _, count in context["sites"])
    return render_template("archive/sites.html", rebuilt=(granted, _granted_keys(skipped_keys)), **context)


def _granted_keys(keys):
    """How many of the bucket's object ``keys`` (``BOX/…``) are of sites the user is granted."""
    return sum(1 for k in keys if g.user.may_see(k.split("/", 1)[0]))


def _sites_context():
    db = _open_index()
    try:
        return {"sites": _granted(index.sites(db)), "opened": index.sealed_opened(db), "has_index": True}
    finally:
        db.close()


# The audit page: entries shown per page, read per query, and read at most per page. An
# auditor of some sites may have few entries among many: the page reads on, newest first,
# until it has a page of theirs or has read AUDIT_READ_MAX, and "Older" goes on from there.
AUDIT_PAGE = 100
AUDIT_READ_MAX = 5000


@bp.route("/audit")
@roles("auditor")
def audit_trail():
    """The viewer's trail, newest first, a page of the entries this auditor may read (their
    sites' and the viewer's own), filtered before they are counted into pages: ``?before=SEQ``
    is the page of those before entry SEQ (the "Older" link)."""
    log = viewer().audit_log
    before_text = request.args.get("before", "").strip()
    before = whole_number(before_text) if before_text else None
    if before_text and (before is None or not 1 <= before < 1 << 63):
        error = "before: %r is not an entry number (a whole number from 1)." % before_text[:20]
        return render_template("archive/audit.html", entries=[], error=error, older=None), 400
    entries, cursor, read = [], before, 0
    while len(entries) < AUDIT_PAGE and read < AUDIT_READ_MAX:
        chunk = log.entries(limit=min(AUDIT_PAGE, AUDIT_READ_MAX - read), before_seq=cursor)
        for e in chunk:
            read += 1
            cursor = e.seq
            # An auditor of some sites reads the entries about those sites, and the viewer's
            # own (logins, users): what was played or exported at another site is not theirs.
            if all(g.user.may_see(site) for site in _entry_sites(e)):
                entries.append(e)
                if len(entries) == AUDIT_PAGE:
                    break
        if len(chunk) < AUDIT_PAGE:
            break
    older = cursor if cursor is not None and log.entries(limit=1, before_seq=cursor) else None
    # Reading the trail is itself audited (PCI DSS 10.2.1.3), once per view, after reading.
    shown = "the entries before #%d" % before if before is not None else "the newest entries"
    viewer().audit("audit_view", "audit", filter=shown, rows=len(entries))
    full = len(entries) == AUDIT_PAGE
    return render_template("archive/audit.html", entries=entries, older=older, full=full, read=read)


def _entry_sites(entry):
    """The sites an audit entry is about (its ``box``, a ``site/call`` target, a report's
    ``sites``); none for an entry about the viewer itself (a login, a user)."""
    details = entry.details or {}
    sites = set()
    if isinstance(details.get("box"), str):
        sites.add(details["box"])
    named = details.get("sites")  # a report's list, or an account's grant "leeds,york" / "all"
    if isinstance(named, str):
        named = [s for s in named.split(",") if s and s != "all"]
    if isinstance(named, list):
        sites.update(s for s in named if isinstance(s, str))
    if entry.action in ("playback", "export") and "/" in (entry.target or ""):
        sites.add(entry.target.split("/", 1)[0])
    return sites


def when(wall_us, zone=None):
    """A µs time as the box's pages write one, in ``zone`` (the call's site's, from its
    record; None: UTC), with the zone in force then: ``Wed 1 Jul 2026, 00:30:00 BST``."""
    return index.local_time(zone).when(wall_us)


def audit_fields(details):
    """The details of an entry of the viewer's trail as ``[(label, text), ...]``
    (:func:`firmware.words.audit_fields`), with a time one holds (enable-user's
    ``was_disabled_us``) written as the trail's other times, in UTC and saying so (``Was
    disabled``: ``Tue 30 Jun 2026, 23:30:00 UTC``), not as a bare count of µs."""
    return words.audit_fields(details, when=when)


# The viewer's own actions in its words, where the box's (firmware.words) name what only a
# box has: its call log's command, its phonebook, its installers, its recordings' key slots.
ACTIONS = {
    "list_viewed": "Viewed the calls list, which shows callers' numbers (its search, and how many "
    "calls it showed and which)",
    "account_disabled": "Disabled an account (unused for 90 days, or by whoever runs the viewer): "
    "nobody logs in to it",
    "key_slot_remove": "Removed a slot of the organisation key (linekeeper archive remove-slot)",
}


def action_said(action):
    """What the viewer's audit page says an entry's ``action`` was: :data:`ACTIONS`, else
    the box's words for it (:func:`firmware.words.say`)."""
    return ACTIONS.get(action) or words.say("action", action)


def zone_said(zone):
    """The zone a call's times are in, in words, for its page."""
    if index.zone_unsaid(zone):
        return "UTC (the site's archive does not say its time zone)"
    return "%s (the site's)" % zone


bp.add_app_template_filter(when, "when")
bp.add_app_template_filter(zone_said, "zone_said")
# Talk time as people read it (``39 s``, ``4 min 12 s``), not the index's float.
bp.add_app_template_filter(duration_text, "talk")
bp.add_app_template_filter(hms, "hms")  # the box's report tables' lengths of time
bp.add_app_template_filter(percent, "percent")  # and their rates, to 0.1 %


@bp.route("/help")
@roles()
def help_page():
    """What the viewer is and how each page is used (one page, a section per page)."""
    return render_template("archive/help.html")
