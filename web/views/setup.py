"""The first-run setup wizard, and confirming the recovery key.

One page in numbered steps (organisation, data protection, lines, country,
first account), sent as one form: every field is checked first and each bad
one gets its message; only then, all together, the recording keys are made
and the settings and the account stored (in one web.db transaction that
commits only if the key store was initialised), so a bad field leaves
nothing half-configured. The keys are written before that transaction
commits: a try cut between the two (the power, a card that refused web.db)
left keys whose recovery key nobody saw. It noted in web.db that keys were
about to be made; the next try then asks for the same account and makes a
new recovery key, shown and confirmed as usual.

The first account gets the installer and supervisor roles and every line:
it is the box owner's account, its password opens the first key slot, and an
installer needs an unlocked key to give others theirs. The owner can then
create installer-only accounts for engineers and auditors. Keys made before
the password rules (`linekeeper init` on an older release) open only with
their password, however short: the wizard takes it, and the account must
change it before anything else (PCI DSS 8.3.6, as a login's).

Then the recovery key is shown once, and the new session goes nowhere else
until the admin types the whole of it back. If that page is lost (a restart,
a timeout), a supervisor who is also an installer makes a new recovery key
from the settings page.
"""

import logging
import secrets

from flask import Blueprint, g, redirect, render_template, request, url_for

from firmware.errors import KeyStoreError, RecoveryKeyFormatError
from firmware.storage.keystore import parse_recovery_key

from .. import passwords, setupcode, sitechange
from ..accounts import name_problem
from ..security import audit, form_errors, lk, roles, setup_only
from ..site import form_values, parse_site_form
from .auth import start_session

log = logging.getLogger(__name__)

bp = Blueprint("setup", __name__)


def _context(**extra):
    web = lk()
    n_lines = web.n_lines
    # Site settings saved before setup came from `linekeeper config import` (a business's
    # first box's file, given to its second): the form starts from them, or the wizard
    # asked for all of it again and saved its blanks over them. Still a choice per line.
    imported = web.site.settings()
    values = request.form if request.method == "POST" else _imported_values(imported, n_lines)
    return dict(n_lines=n_lines, form=request.form, values=values, imported=imported is not None, **extra)


def _imported_values(imported, n_lines):
    values = form_values(imported, n_lines)
    if imported is not None:
        for n in range(1, n_lines + 1):
            if n > len(imported.lines):  # a line the file did not have: chosen here
                values["line-%d-mode" % n] = ""
    return values


@bp.route("/setup", methods=["GET", "POST"])
@setup_only
def wizard():
    web = lk()
    if request.method == "GET":
        return render_template("setup.html", errors={}, **_context())
    # Setup complete and the recovery key unconfirmed are saved before the key reaches the
    # session that shows it: not "never confirmed" meanwhile (web.documents.box_reminders).
    with web.sessions.showing_recovery():
        return _set_up(web)


def _set_up(web):
    data_dir = web.config.data_dir
    keys = ["setup:" + (request.remote_addr or "")]
    wait = web.throttle.attempt(keys)
    if wait:
        return form_errors(
            "setup.html",
            {"setup_code": ("Too many wrong setup codes. Wait %d s and try again." % wait)},
            status=429,
            **_context(),
        )
    errors = {}
    if setupcode.check_setup_code(data_dir, request.form.get("setup_code")):
        web.throttle.succeeded(keys)
    else:
        errors["setup_code"] = (
            "That is not this box's setup code. It is on the label and on the console when the box starts."
        )
    settings, site_errors = parse_site_form(
        request.form, web.n_lines, web.local_time().local(int(web.services.wall_us())).date()
    )
    errors.update(site_errors)
    name = (request.form.get("admin_name") or "").strip().lower()
    password = request.form.get("admin_password") or ""
    problem = name_problem(name)
    if problem:
        errors["admin_name"] = problem
    keystore = web.services.keystore
    problem = passwords.password_problem(password, name)
    confirmed = password == (request.form.get("admin_confirm") or "")
    if problem and not errors and confirmed and _opens_slot(keystore, name, password):
        # Keys made before the password rules (`linekeeper init`, or an earlier try of this
        # page, on an older release): their password is the only one that can set the box
        # up. Taken, as a login takes one, and changed before anything else (PCI DSS 8.3.6).
        must_change, problem = "rules", None
    else:
        must_change = ""
    if problem:
        errors["admin_password"] = problem
    elif not confirmed:
        errors["admin_confirm"] = "The two passwords differ."
    # Keys made by an earlier try of this page that never finished: their recovery key
    # was never shown, so a new one is made and shown below.
    unfinished = keystore.is_initialised and web.site.keys_pending
    if not errors and keystore.is_initialised:
        # Keys made earlier with `linekeeper init`, or put back from a backup with `linekeeper
        # keystore restore` (a card whose web.db was lost with its key store): one of their
        # key slots' accounts must be the first one. Which of the two is not told apart here
        # (the trail's entry may be sealed until the recorder starts), so both are named.
        try:
            keystore.unlock(name, password).forget()
        except KeyStoreError:
            errors["admin_name"] = (
                "This box's recording keys were made by an earlier try of this page that did not "
                "finish. Enter the user name and password given then."
                if unfinished
                else "This box already has recording keys, made with `linekeeper init` or put "
                "back from a key store backup with `linekeeper keystore restore`. Enter the user "
                "name and password of one of their key slots: the ones given to init, or, for a "
                "backup, those of an account the box had when it was made."
            )
    if errors:
        return form_errors("setup.html", errors, **_context())
    sitechange.configure_before_keys(web, settings)
    n_lines = web.n_lines
    if not keystore.is_initialised:
        with web.db.tx() as conn:
            web.site.set_keys_pending(conn, True)  # before the keys: a cut after them shows
    init_entry = (
        "init",
        name,
        {
            "organisation": settings.organisation,
            "country": settings.country,
            "lines": [{"line": x.line, "name": x.name, "record": x.record} for x in settings.lines],
            # Only where there is one (an entry of a box with none keeps its fields).
            **({"not_connected": list(settings.not_connected)} if settings.not_connected else {}),
            "address": request.remote_addr or "",
        },
    )
    try:
        with web.db.tx() as conn:
            web.site.save(conn, settings)
            web.accounts.create(
                conn, name, password, {"installer", "supervisor"}, range(1, n_lines + 1), must_change
            )
            web.site.mark_setup_complete(conn)
            web.site.set_keys_pending(conn, False)
            # What follows the commit (the settings into the configuration, the consent
            # notice on, the entry) is done again at the next start if cut short.
            note = sitechange.begin(web, conn, "setup", name, [init_entry])
            # Last, so that a refusal rolls everything above back.
            recovery = None if keystore.is_initialised else keystore.initialise(name, password)
    except KeyStoreError as exc:
        return form_errors("setup.html", {"admin_password": str(exc)}, **_context())
    try:
        # Every line's key now, not at each line's first recording: the key store backup the
        # recovery page asks for next then holds them all (a copy without a line's key, put
        # back, opens none of that line's recordings: docs/keys.md).
        keystore.ensure_line_keys(range(1, n_lines + 1))
    except (KeyStoreError, OSError) as exc:
        log.warning("the lines' keys were not made at setup (each is at its first recording): %s", exc)
    # Unconfirmed before any new recovery key: a cut before it is shown leaves the
    # dashboard asking for one.
    web.site.set_recovery_confirmed(recovery is None and not unfinished)
    setupcode.forget_setup_code(data_dir)
    sitechange.finish(web, note)
    g.user = web.accounts.get(name)
    if unfinished:
        # The never-shown key replaced: audited first, as every new recovery key is.
        audit("key_slot_add", "recovery", slot="recovery")
        with keystore.unlock(name, password) as unlocked:
            recovery = keystore.new_recovery_key(unlocked)
    key = keystore.unlock(name, password)
    resp, session = start_session(url_for("setup.recovery"), name, key)
    # The wizard logs its installer in: the trail says so as for any login, so that the
    # Users page's "Last login" (and the 90 days unused) count this first session.
    audit("login", name, recording_key=True, setup=True)
    if recovery is None:
        resp.location = url_for("dashboard.index")
    web.sessions.mem(session)["recovery"] = recovery
    return resp


def _opens_slot(keystore, name, password):
    """Whether ``password`` opens ``name``'s slot of keys already made."""
    if not keystore.is_initialised:
        return False
    try:
        keystore.unlock(name, password).forget()
    except KeyStoreError:
        return False
    return True


def typed_key_problem(typed, recovery_key):
    """Why ``typed`` is not the whole of ``recovery_key``, or None (also ``linekeeper
    rekey``'s type-back at a terminal).

    Every group is compared (the last one is mostly checksum, so it alone
    proves little); case, spaces and dashes do not matter, and 0/1/8 count
    as O/I/B, as when the key is used.
    """
    try:
        secret = parse_recovery_key(typed)
    except RecoveryKeyFormatError as exc:
        return "That is not the recovery key as shown: %s. Type all 8 groups as you wrote them down." % exc
    if not secrets.compare_digest(secret, parse_recovery_key(recovery_key)):
        return "That is not this recovery key. Check what you wrote down; every group must match."
    return None


@bp.route("/setup/recovery", methods=["GET", "POST"])
@roles("supervisor")
def recovery():
    web = lk()
    mem = web.sessions.mem(g.session)
    recovery_key = mem.get("recovery")
    if recovery_key is None:  # none to confirm: where this person goes next
        return redirect(url_for("settings.index" if g.user.has("installer") else "dashboard.index"))
    groups = recovery_key.split("-")
    if request.method == "GET":
        return render_template("recovery.html", recovery_key=recovery_key, errors={}, n_groups=len(groups))
    problem = typed_key_problem(request.form.get("typed_key") or "", recovery_key)
    if problem:
        return form_errors(
            "recovery.html",
            {"typed_key": problem},
            recovery_key=recovery_key,
            n_groups=len(groups),
        )
    mem["recovery"] = None
    web.site.set_recovery_confirmed(True)
    return redirect(url_for("dashboard.index"))
