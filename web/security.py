"""Access control, sessions and CSRF, enforced before every view runs.

Every view declares who may call it with one of the decorators below; the
app refuses to start with a view that does not (see :func:`check_declared`),
and tests/web/test_access_matrix.py calls every route as every role.

``@public``          anyone (login page, static files, security contact)
``@setup_only``      anyone holding the setup code, and only until setup is done
``@roles(*names)``   a logged-in user holding any of ``names``; no names: any
                     logged-in user
``@all_roles(*names)`` a logged-in user holding every one of ``names`` (the
                     recovery key: an installer who is also a supervisor)

A request from someone not logged in is redirected to the login page (401
for ``/api/`` and audio). A logged-in user without the role gets 403. A
logged-in user whose password must be changed (an installer set it, or it
predates the password rules: :data:`web.accounts.MUST_CHANGE`) is sent to the
password page from every other page (403 for ``/api/`` and audio) until it is. Calls
on lines not granted are answered 404, like calls that do not exist, by the
views themselves (:func:`web.views.calls.call_or_404`). Under ``/api/`` a 401 or 403
is JSON, ``{"error": "<a sentence>"}``, which the pages' scripts read; elsewhere a page.

CSRF: every POST (PUT, PATCH, DELETE) carries a token in the form field
``csrf_token`` or the header ``X-CSRF-Token``. Logged in, it must equal the
session's token (kept server-side). Before login (login, setup), it must
equal the ``lk_pre`` cookie (double submit); SameSite=Strict on every cookie
keeps other sites from sending them at all. A missing or wrong token gets
400 with a message and changes nothing.
"""

import hmac
import re
import secrets

from flask import abort, current_app, g, redirect, render_template, request, url_for

from firmware.alarms import sees_alarms_of
from firmware.policy import cards

SESSION_COOKIE = "lk_session"
PRE_COOKIE = "lk_pre"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# What an open page asks for by itself (its scripts' polling and live stream): not someone
# at the keyboard, so it does not keep the session alive.
BACKGROUND = (
    "api.events",
    "api.status",
    "api.health_json",
    "api.alarms_now",
    "myline.now",
    "updates.state",
    "sar.bundle_status",
)


# What a logged-in person whose password must be changed may still use (besides the public
# pages, such as help): the password page, and logging out.
PASSWORD_FIRST = ("auth.password", "auth.logout")


def public(view):
    view.access = ("public",)
    return view


def setup_only(view):
    view.access = ("setup",)
    return view


def roles(*names):
    def decorate(view):
        view.access = ("login",) + names
        return view

    return decorate


def all_roles(*names):
    def decorate(view):
        view.access = ("login",) + names
        view.needs_all_roles = True
        return view

    return decorate


def access_of(app, endpoint):
    """The access declaration of ``endpoint``: ``("public",)``, ``("setup",)``, ``("login", ...)``."""
    if endpoint == "static":
        return ("public",)
    view = app.view_functions[endpoint]
    return getattr(view, "access", None)


def check_declared(app):
    """Raise :class:`RuntimeError` naming any view without an access declaration."""
    missing = [e for e in app.view_functions if access_of(app, e) is None]
    if missing:
        raise RuntimeError("views without an access declaration: %s" % ", ".join(sorted(missing)))


def lk():
    """The app's :class:`web.Web` (services, stores, config)."""
    return current_app.extensions["linekeeper"]


def visible_lines(user):
    """The lines whose calls ``user`` may list: a supervisor's granted lines, every
    line for an auditor (who checks the audit trail against the calls)."""
    lines = set(user.lines) if user.has("supervisor") else set()
    if user.has("auditor"):
        lines.update(range(1, lk().n_lines + 1))
    return tuple(sorted(lines))


def alarm_lines(user):
    """The lines whose alarms ``user`` sees (an alarm of the whole box, line 0, every role
    that sees alarms sees): the lines whose calls they may list (:func:`visible_lines`),
    and every line for an installer, who commissions and mends the lines (a dead line
    is theirs to fix) and sees every line's state already
    (:func:`firmware.alarms.sees_alarms_of`, the rule the alarm mails follow too)."""
    return tuple(n for n in range(1, lk().n_lines + 1) if sees_alarms_of(user.roles, user.lines, n))


def csrf_token():
    """The token forms must send (template global)."""
    if g.get("session") is not None:
        return g.session.csrf
    if "pre_token" not in g:
        g.pre_token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    return g.pre_token


def _csrf_ok():
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if g.session is not None:
        expected = g.session.csrf
    else:
        expected = request.cookies.get(PRE_COOKIE) or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


# The forms' free text (every textarea's name; tests/web/test_form_expired.py checks the
# templates), offered back on the "Form expired" page: a note typed while the session ran
# out is not lost with the form. Passwords and other fields are never shown back.
FREE_TEXT = {
    "concern": "Your concern",
    "details": "Details",
    "dp_address": "Postal address",
    "holidays": "Public holidays",
    "note": "Note",
    "numbers": "Their numbers",
    "outcome": "Outcome",
    "purpose": "Why calls are recorded",
    "text": "What the spoken default says",
    "words": "In your words",
}
TYPED_BACK_MAX = 2000  # characters of each: the longest textarea's maxlength


def _typed_back():
    """``[(label, text)]``: the free text a form refused for its token carried, to be copied
    (not saved); nothing from another site's page (``Sec-Fetch-Site``): this site does not show
    text that it did not send. A card number in it is masked (PCI DSS: on no page)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
        return []
    typed = []
    for name, label in FREE_TEXT.items():
        text = request.form.get(name, "")
        if text.strip():
            typed.append((label, cards.scrub_typed(text)[:TYPED_BACK_MAX]))
    return typed


def before_request():
    web = lk()
    endpoint = request.endpoint
    # Sessions opened under keys a rekey replaced end first (web.keyepoch).
    web.end_sessions_of_old_keys()
    # A dashboard left open reconnects its live stream all day: that is not
    # someone at the keyboard, so it does not keep the session alive.
    cookie = request.cookies.get(SESSION_COOKIE)
    g.session, expired = web.sessions.load(cookie, touch=endpoint not in BACKGROUND and endpoint is not None)
    g.user = web.accounts.get(g.session.user) if g.session else None
    if g.session is not None and (g.user is None or g.user.disabled_us is not None):
        # Deleted, or disabled (unused for 90 days, or by an installer): the session ends.
        web.sessions.end(g.session.id_hash)
        g.session = g.user = None
    g.expired = expired
    if endpoint is None:
        return None  # 404/405 follow, with the menu of whoever is logged in
    access = access_of(current_app, endpoint)
    if access[0] == "public" and endpoint == "static":
        return None
    setup_done = web.site.setup_complete
    if not setup_done and access[0] != "setup" and access[0] != "public":
        return redirect(url_for("setup.wizard"))
    if setup_done and access[0] == "setup":
        abort(404)
    if request.method not in SAFE_METHODS and not _csrf_ok():
        return render_template(
            "error.html",
            title="Form expired",
            message="This form was not accepted: its security token is "
            "missing or out of date (this happens after logging in "
            "again or in another tab). Go back, reload the page and "
            "try again.",
            typed=_typed_back(),
        ), 400
    if access[0] == "login":
        if g.user is None:
            if request.path.startswith("/api/") or request.path.endswith("/audio"):
                abort(401)
            # Told once, on the first page asked for after the box ended the session.
            rekeyed = web.sessions.end_reason(cookie) == "rekey"
            why = {"expired": 1 if expired else None, "rekeyed": 1 if rekeyed else None}
            if request.method in SAFE_METHODS:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?"), **why))
            return redirect(url_for("auth.login", **why))
        needed = access[1:]
        if needed and not g.user.has(*needed):
            abort(403)
        if getattr(current_app.view_functions[endpoint], "needs_all_roles", False) and not all(
            g.user.has(name) for name in needed
        ):
            abort(403)
        mem = web.sessions.mem(g.session)
        if mem.get("recovery") and endpoint not in ("setup.recovery", "auth.logout"):
            return redirect(url_for("setup.recovery"))
        if g.user.must_change and endpoint not in PASSWORD_FIRST:
            # A password an installer set, or one from before the rules: changed before
            # anything else (PCI DSS 8.3.5, 8.3.6).
            if request.path.startswith("/api/") or request.path.endswith("/audio"):
                abort(403, description="Change your password first, on your account page.")
            # The page asked for is where the password page's link goes once it is changed
            # (a form's address is not a page to go back to).
            query = request.query_string.decode("ascii", "replace")
            asked = (
                request.path + ("?" + query if query else "") if request.method in ("GET", "HEAD") else None
            )
            return redirect(url_for("auth.password", next=asked))
    return None


def local_path(target):
    """``target`` if it is a path of this site, else None: no scheme, no host, no '//',
    no backslash, no control characters.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    ``/\t/evil.example`` would leave the site; any of them, or anything but printable
    ASCII (request paths arrive percent-encoded), is refused.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(0x21 <= ord(c) <= 0x7E for c in target)
    ):
        return target
    return None


BOX_CSP = (
    "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(resp, csp):
    """The headers every page of a Linekeeper web app carries (``csp``: its policy)."""
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Content-Security-Policy", csp)
    if request.endpoint != "static":
        # Pages hold personal data: keep them out of caches and history.
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def after_request(resp):
    if "pre_token" in g and request.cookies.get(PRE_COOKIE) != g.pre_token:
        set_cookie(resp, PRE_COOKIE, g.pre_token)
    security_headers(resp, BOX_CSP)
    if lk().config.secure_cookies:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return resp


def app_cookie(resp, name, value, secure, max_age=None):
    """Set a cookie as every Linekeeper web app sets its own: the whole site, never
    read by scripts, never sent from another site; ``secure``: HTTPS only."""
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Strict",
    )


def set_cookie(resp, name, value, max_age=None):
    app_cookie(resp, name, value, lk().config.secure_cookies, max_age)


def unlocked_key():
    """The logged-in user's unlocked recording key, or None."""
    if g.get("session") is None:
        return None
    key = lk().sessions.mem(g.session).get("key")
    if key is not None and getattr(key, "forgotten", False):
        return None
    return key


def audit(action, target=None, **details):
    """Append to the audit trail as the current user (or ``actor``, by default "anonymous",
    when nobody is logged in)."""
    web = lk()
    anonymous = details.pop("actor", "anonymous")  # never a detail of its own
    actor = g.user.name if g.get("user") is not None else anonymous
    details.setdefault("address", request.remote_addr or "")
    return web.services.audit.append(
        actor, action, None if target is None else str(target), details, int(web.services.wall_us())
    )


MAX_FORM_ROWS = 1000


def row_index(text):
    """The row number in a form field's name (``rule-3-name``: ``"3"``) as an int, or
    None: ASCII digits only (``"²"`` passes ``str.isdigit`` and fails ``int``), below
    :data:`MAX_FORM_ROWS` (a forged ``rule-20000-name`` drew a 19 MB page)."""
    if not (text.isascii() and text.isdigit()) or int(text) >= MAX_FORM_ROWS:
        return None
    return int(text)


# Longer than any number a form takes; int() refuses more than 4300 digits with a ValueError.
_MAX_DIGITS = 18
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def whole_number(text):
    """``text`` as a whole number if it is written in ASCII digits 0-9 (no sign), else None.

    The one way the pages read a whole number someone typed: ``int()`` alone also takes
    other scripts' digits (Arabic-Indic "٥٨٧" is 587), "1_000", signs and spaces, so a
    value was saved that the page then showed otherwise."""
    if not (isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
        return None
    return int(text)


def decimal_number(text):
    """``text`` as a float if written in ASCII digits 0-9 with at most a sign and one
    point ("12", "-6.5", ".5"), else None: ``float()`` alone also takes other scripts'
    digits, "1_0", "1e3", "nan" and "inf"."""
    if not (isinstance(text, str) and len(text) <= 2 * _MAX_DIGITS and _DECIMAL.fullmatch(text)):
        return None
    return float(text)


def as_sentence(refusal):
    """A refusal in the firmware's words (the command line's: lower case, no full stop) as a
    page's sentence: its first letter a capital, a full stop at its end."""
    text = str(refusal).strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text[-1] in ".?!" else ".")


def sentences(refusals):
    """Several refusals said one after another, each a sentence (:func:`as_sentence`): a
    form's messages end with their full stop, which "; " put before each semicolon."""
    return " ".join(as_sentence(r) for r in refusals)


def form_errors(template, errors, status=400, **context):
    """Render ``template`` with a message per bad field (nothing was changed)."""
    return render_template(template, errors=errors, **context), status
