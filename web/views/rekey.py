"""Rekey from the web: every recording key and the recovery key replaced, the box running.

Offered after a user is removed or the recovery key replaced (docs/keys.md).
Installers and supervisors ask for it; it needs the password of a key slot
that opens every line (the admin's), typed here and sent only to the
recorder, which re-keys while it records (:meth:`firmware.box.Box.rekey`).
The page follows the recorder's progress and shows the new recovery key once,
to the person who asked. The request, and a refused one, are audited (action
``rekey``, phase ``requested`` / ``refused``); the recorder audits the rekey
itself (phases ``started`` / ``done``, with who asked and the address, as here).
The page's entries come before the password is checked: they name the slot user
only when an account has the name typed (:func:`web.accounts.who_typed`).
The password is throttled as a login's: a rekey that ran clears the counters, the
refusal that begins or lengthens a wait says so (``locked``, ``locked_s``), and the
attempts refused while it lasts are not audited one by one.
"""

import re

from flask import Blueprint, g, redirect, render_template, request, url_for

from firmware.errors import LinekeeperError

from ..accounts import name_problem, who_typed
from ..security import audit, lk, roles
from ..throttle import wait_said
from .settings import box_key_holders

bp = Blueprint("rekey", __name__)

REKEY_ROLES = ("installer", "supervisor")
# The recorder's progress line for the slow part (firmware.rekey.Rekey._rewrap).
REWRAPPED = re.compile(r"(\d+)/(\d+) recordings re-wrapped")


def rewrapped(progress):
    """``(done, total)`` from the newest "N/M recordings re-wrapped" of ``progress``
    (the recorder's lines), or None before the first."""
    for text in reversed(progress):
        m = REWRAPPED.search(text)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def _job():
    return lk().services.rekey


def _offered():
    """The user offered in the form: the asker when their account holds the box's own key,
    else the one enabled account that does (as Settings names it), else nobody. It was
    "admin", an account a box set up in the wizard does not have. A key store that cannot
    be read offers nobody (the rekey, if asked, says why): it was a server error."""
    try:
        enabled = box_key_holders()[0]
    except (LinekeeperError, OSError):
        return ""
    if g.user.name in enabled:
        return g.user.name
    return enabled[0] if len(enabled) == 1 else ""


def _page(error=None, status=200, result=None, slot_user=None):
    job = _job()
    if slot_user is None:
        slot_user = _offered()
    running = job is not None and job.running
    progress = job.progress() if job is not None else []
    return (
        render_template(
            "rekey.html",
            available=job is not None,
            running=running,
            progress=progress,
            rewrapped=rewrapped(progress),
            error=error,
            result=result,
            slot_user=slot_user,
        ),
        status,
    )


@bp.route("/rekey")
@roles(*REKEY_ROLES)
def index():
    job = _job()
    if job is None:
        return _page()
    result, error = job.take_result(g.user.name)
    if error:
        return _page(error="The rekey did not run: %s. Nothing was changed." % error, status=200)
    if result and g.user.has("supervisor"):
        # Typed back on this page as on the wizard's and Settings' (web.views.setup.recovery),
        # before the box counts it as stored.
        lk().sessions.mem(g.session)["recovery"] = result["recovery_key"]
    return _page(result=result)


@bp.route("/rekey", methods=["POST"])
@roles(*REKEY_ROLES)
def start():
    job = _job()
    if job is None:
        return _page("This box cannot re-key from the web: use `linekeeper rekey`.", status=400)
    slot_user = (request.form.get("slot_user") or "").strip().lower()
    password = request.form.get("password") or ""
    if slot_user and name_problem(slot_user):
        # No such account can hold a key slot; nor is the text written into the trail.
        return _page("%s Nothing was changed." % name_problem(slot_user), status=400)
    if not slot_user or not password or request.form.get("confirm") != "yes":
        return _page(
            "Give the user whose key slot opens every line, their password, and tick the box "
            "to confirm. Nothing was changed.",
            status=400,
            slot_user=slot_user or None,
        )
    # The password is a guess like a login's: throttled the same way. Refused while
    # throttled, an attempt is not audited (the refusal that began the wait says so).
    throttle = lk().throttle
    keys = throttle.account_keys(slot_user, request.remote_addr or "")
    wait = throttle.attempt(keys)
    if wait:
        # The slot's account is the one counted: locked out, the page says so in the login's
        # words, without the name typed (it stays in the field above; said back in the box's
        # own sentence, a name no account has read as an account, and a password typed there
        # as a user's).
        said = wait_said(
            throttle,
            keys,
            "Too many attempts. Wait %d s and try again.",
            wait,
            account="The key slot's account",
        )
        return _page(said, status=429, slot_user=slot_user)
    # Named as typed only if an account has that name (the password is not checked yet: a
    # password typed in the user field stays out of the trail, as a login's name does).
    named = who_typed(slot_user, lk().accounts.get, "slot")
    # Audited before the job starts: its own entries ("started"...) come after, in order.
    audit("rekey", None, phase="requested", **named)
    lk_site = lk().site  # the rekey ends in a thread of its own, outside this request
    disabled = _disabled_refusal(slot_user, password, throttle, keys)
    if disabled:
        audit("rekey", None, phase="refused", **named, reason=disabled, **throttle.lockout(keys))
        return _page("%s. Nothing was changed." % disabled, status=409, slot_user=slot_user)
    try:
        # The address, as every other action from a page carries it (web.security.audit).
        job.start(
            slot_user,
            password,
            g.user.name,
            address=request.remote_addr or "",
            ended=lambda error: _ended(throttle, keys, error, lk_site),
            named=named,
        )
    except LinekeeperError as exc:
        audit("rekey", None, phase="refused", **named, reason=str(exc), **throttle.lockout(keys))
        return _page("%s. Nothing was changed." % exc, status=409, slot_user=slot_user)
    return redirect(url_for("rekey.index"))


def _disabled_refusal(slot_user, password, throttle, keys):
    """Why the slot of ``slot_user``'s disabled account rekeys nothing, or None (enabled,
    or no account). A disabled account's slot opens nothing, on the web as at the command
    line (``linekeeper rekey``): the rekey would show whoever asked a new recovery key.
    Said as the login says it, only after the right password (checked against the
    account's, as a login's); a wrong one is told it is wrong, and counts as a guess."""
    web = lk()
    account = web.accounts.get(slot_user)
    if account is None or account.disabled_us is None:
        return None
    if web.accounts.verify(slot_user, password) is None:
        return "wrong user name or password"
    throttle.succeeded(keys)
    return "account %s is disabled (%s): an installer can enable it on the Users page" % (
        slot_user,
        account.disabled_why,
    )


def _ended(throttle, keys, error, site):
    """A rekey asked for with a password counted against ``keys`` ended (``error``: what
    refused it, or None: it ran). As a login: one that ran clears their counters; a
    refusal's entry says the lockout it began or lengthened (:meth:`Throttle.lockout`).
    One that ran made a new recovery key nobody has confirmed as stored yet: ``site``'s
    flag says so until the asker types it back (the dashboard asks for a new one meanwhile,
    and for good if they never come back to see it)."""
    if error is None:
        site.set_recovery_confirmed(False)
        throttle.succeeded(keys)
        return {}
    return throttle.lockout(keys)
