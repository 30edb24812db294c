"""Users and their key slots (installers only).

Only supervisors have a key slot. Anything that lets someone hear calls is
*privileged*: giving the supervisor role, granting a supervisor more lines,
and resetting the password of anyone with a key slot (which is logging in
as them). A privileged change needs a supervisor's own unlocked key, held in
their session's memory since they logged in, and then only for lines that
supervisor holds; or the box's recovery key typed on the form, for any line.
A new key slot is always made from that key, never from an installer's
session (an installer-only account has no key).

Nobody changes their own roles, lines or password here (the password page
asks for the current one). A password set here, for a new user or a reset,
is one the person must change at their next login before anything else
(PCI DSS 8.3.5; :data:`web.accounts.MUST_CHANGE`). Every change is audited;
the box always keeps one installer (checked and changed in one web.db
transaction) and one key slot.

The box's own key (a key slot granted every line there is or will be: the setup wizard's
account's) is given to another enabled supervisor with a key slot from a session holding it, or
with the recovery key typed on the form: both then hold it, and the giver's account may be
deleted, which the last enabled account holding it may not (a handover, docs/keys.md).

An installer disables an account (not their own, nor the last enabled installer's) or
enables a disabled one again, whose 90 unused days then count from then; the box disables
those unused for 90 days itself (:mod:`web.inactive`).

After an account is added, changed or deleted the page says what the alarm recipients
tied to it (E-mail page) get now, and names any line whose alarms no recipient may read
any more (:func:`_alarm_mail`); the change is made all the same.
"""

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from firmware.errors import ConfigError, KeyStoreError, RecoveryKeyFormatError, WrongPasswordError
from firmware.storage.keystore import ALL_LINES, parse_recovery_key
from firmware.words import lines_named

from .. import intent, passwords, pwchange, stale
from ..accounts import BY_HAND, LINE_ROLES, ROLES, User, name_problem
from ..inactive import UNUSED_DAYS, clock_held, kept_installers, last_logins
from ..security import audit, lk, roles, unlocked_key, whole_number
from ..throttle import wait_said
from .auth import lockout
from .mail import _reach, _unreached, _unreached_words
from .settings import box_key_holders

bp = Blueprint("users", __name__, url_prefix="/users")


class _LastInstaller(Exception):
    """Raised inside a transaction to roll it back: it would remove the last installer."""

    def __init__(self):
        super().__init__("the box needs at least one installer")


def _slots():
    keystore = lk().services.keystore
    return set(keystore.slots()) if keystore.is_initialised else set()


# Why the box's key must stay where it is: without an account holding it, neither the pages
# nor `linekeeper rekey` (which needs one) can make a new recovery key or backup again.
LAST_BOX_KEY = (
    "%s holds the box's own key (every line there is or will be; it makes new recovery keys and "
    "key store backups), and no other %s: without it nobody could make them again. "
    "To hand the box over, give the key to the new owner's own supervisor account first "
    "(Give the box's own key, on its row), then delete this one."
)


# Only the recovery key (or another holder's) grants the box's key again.
BOX_KEY_RESET = (
    "%s holds the box's own key (every line there is or will be), which the new password must "
    "open too: resetting it needs the box's recovery key."
)


def _holds_all(keystore, user):
    try:
        return keystore.granted_lines(user) == ALL_LINES
    except KeyStoreError:
        return False  # no key slot


def _last_box_key(name):
    """:data:`LAST_BOX_KEY` said of ``name`` when their key slot is granted every line (the
    setup wizard's, the last rekey's, or one given) and no other enabled account's is, else
    None. A disabled holder is named: an installer enables it, and it holds the key then."""
    if not _holds_all(lk().services.keystore, name):
        return None
    enabled, disabled = box_key_holders()
    if set(enabled) - {name}:
        return None
    others = [n for n in disabled if n != name]
    if not others:
        return LAST_BOX_KEY % (name, "account does")
    return LAST_BOX_KEY % (
        name,
        "enabled account does (%s %s it, disabled: enable %s first)"
        % (_names(others), "holds" if len(others) == 1 else "hold", "it" if len(others) == 1 else "one"),
    )


def _names(names):
    return names[0] if len(names) == 1 else "%s and %s" % (", ".join(names[:-1]), names[-1])


def _logins(users):
    """The pages' ``logins`` (:func:`web.inactive.last_logins`), ``unused``: ``(name, days)``
    of the enabled accounts unused for :data:`UNUSED_DAYS` or more, the longest unused
    first (disabled at the box's next check, but for ``kept``: the last enabled installer,
    left enabled so the box is never locked out), and ``held``: why none is disabled now
    (:func:`web.inactive.clock_held`: the box's clock), or None."""
    logins = last_logins(lk(), users)
    unused = sorted(
        (
            (u.name, logins[u.name]["unused_days"])
            for u in users
            if u.disabled_us is None and logins[u.name]["unused_days"] is not None
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return {
        "logins": logins,
        "unused": unused,
        "unused_limit": UNUSED_DAYS,
        "kept": kept_installers(users, logins),
        "held": clock_held(lk()) if unused else None,
    }


# What the page says after a change (its ``done`` argument).
DONE = {
    "added": "added: they can log in now",
    "changed": "changed: the new roles and lines apply from their next login",
    "unchanged": "kept the same roles and lines: nothing was changed",
    "password": "has a new password, from their next login",
    "password_box_key": (
        "has a new password, from their next login. They no longer hold the box's own key: "
        "their key slot opens their listed lines only, as your key could not give more. To "
        "give it back, log in as an account holding it, or type the box's recovery key, and "
        "use Give the box's own key on their row"
    ),
    "unlocked": "is unlocked: they can log in now",
    "enabled": "is enabled: they can log in now, and their %d unused days count from today" % UNUSED_DAYS,
    "disabled": "is disabled: nobody can log in to the account until an installer enables it",
    "box_key": (
        "holds the box's own key now: from their next login they make new recovery keys, key "
        "store backups and rekeys too. To hand the box over to them, delete the old owner's "
        "account next, then rekey"
    ),
}
# What a new password, an unlock or a change of a disabled account says instead of
# "they can log in now": it opens nothing until an installer enables the account.
STILL_DISABLED = {
    "password": "has a new password, but the account is still disabled: enable it below before they log in",
    "unlocked": "is unlocked, but the account is still disabled: enable it below before they log in",
    "changed": "changed, but the account is still disabled: enable it below before they log in",
}
# A roles and lines form from a page loaded before that account's were changed (web/stale.py).
CHANGED = (
    "Nothing was changed: %s's roles and lines were changed by someone else after this page "
    "was loaded, and saving it would have undone their change. The page now shows them as "
    "saved; make your change again."
)
# Why a reset of a locked-out account's password unlocks it (its account_unlock entry).
RESET_UNLOCKS = "a new password set by an installer"


def _removed(name):
    """The user whose key slot was just removed, as the link names them: a user name
    no account has now, else nothing (text from a link is never shown as the box's)."""
    if name_problem(name) is not None or lk().accounts.get(name) is not None:
        return ""
    return name


def _alarm_mail(name):
    """What the page says after ``name``'s account was added, changed, disabled, enabled or
    deleted of the alarm recipients (E-mail page), with the accounts as they are now: ``{"tied":
    [(address, what it gets now)] of those tied to ``name``, "unreached": the lines whose
    alarms no recipient may read, in the E-mail page's words, or "", "unreadable": why the
    recipients cannot be read, or ""}``. The change is never refused for it: taking a
    leaver's access away comes first (:func:`firmware.mail.alarms.recipients_for`)."""
    said = {"tied": [], "unreached": "", "unreadable": ""}
    svc = lk().services.mail
    if svc is None or not name:
        return said
    try:
        settings = svc.store.get()
    except ConfigError as exc:
        said["unreadable"] = exc.message
        return said
    ties = dict(settings.alarm_accounts)
    said["tied"] = [(address, gets) for address, gets in _reach(settings) if ties.get(address) == name]
    unreached = _unreached(settings)
    if unreached:
        said["unreached"] = _unreached_words(unreached, saved=True, users_page=True)
    return said


def _based_on(user):
    """The fingerprint of ``user``'s roles and lines, what their form on the page edits
    (web/stale.py): a change of another account, or of their password, refuses nothing."""
    return stale.fingerprint({"roles": sorted(user.roles), "lines": sorted(user.lines)})


def _render_list(errors=None, status=200, **extra):
    web = lk()
    done = DONE.get(request.args.get("done", ""))
    done_name = _known(request.args.get("name", ""))
    if done_name and request.args.get("done") in STILL_DISABLED:
        named = web.accounts.get(done_name)
        if named is not None and named.disabled_us is not None:
            done = STILL_DISABLED[request.args["done"]]
    deleted = _removed(request.args.get("deleted", ""))
    # After a change of roles or lines (added, changed, deleted): who the alarms reach now.
    changed = deleted or (
        done_name if request.args.get("done") in ("added", "changed", "enabled", "disabled") else ""
    )
    return render_template(
        "users.html",
        removed=_removed(request.args.get("removed", "")),
        # The Rekey page re-keys with the box recording; without it, the command (box stopped).
        rekey_page=web.services.rekey is not None,
        done=done,
        done_name=done_name,
        deleted=deleted,
        alarm_mail=_alarm_mail(changed),
        users=web.accounts.all(),
        mixed=mixed_roles(web.accounts.all()),
        # What each account's roles and lines form showed when loaded.
        based_on={u.name: _based_on(u) for u in web.accounts.all()},
        **_logins(web.accounts.all()),
        slots=_slots(),
        errors=errors or {},
        n_lines=web.n_lines,
        form=request.form,
        roles_all=ROLES,
        has_key=_can_grant(),
        # Who holds the box's own key, whether this session does, and to whom it may go.
        box_keys=set(sum(box_key_holders(), [])),
        holds_box_key=_holds_box_key(),
        may_take_box_key={u.name for u in web.accounts.all() if _box_key_problem(u) is None},
        locked={u.name: web.throttle.locked_s(u.name) for u in web.accounts.all()},
        **extra,
    ), status


# Said of an account holding both Staff and Auditor (:func:`mixed_roles`). Not refused:
# an account may hold several roles, and an auditor's own phone may be recorded too.
STAFF_AUDITOR = (
    "%s is both Staff and Auditor: as an auditor they list every line's calls, with the "
    "numbers, their colleagues' too, and read the audit trail, not only their own line as "
    "staff do. Keep both only if that is meant; for a staff member, untick Auditor."
)


def mixed_roles(users):
    """``{name: warning}`` of the accounts among ``users`` holding both Staff and Auditor,
    whose staff member sees far more than My line (:data:`STAFF_AUDITOR`)."""
    return {u.name: STAFF_AUDITOR % u.name for u in users if {"staff", "auditor"} <= set(u.roles)}


def _known(name):
    """``name`` if it is a user's (the page says what was done to them), else ""."""
    return name if name and lk().accounts.get(name) is not None else ""


def _can_grant():
    return g.user.has("supervisor") and unlocked_key() is not None


def _holds_box_key():
    key = unlocked_key() if g.user.has("supervisor") else None
    return key is not None and key.holds_all


def _box_key_problem(user):
    """Why ``user``'s account cannot be given the box's own key, or None."""
    name = user.name
    if not user.has("supervisor"):
        return (
            "%s is not a supervisor: only a supervisor's key slot holds the box's own key. "
            "Give them the supervisor role first." % name
        )
    if user.disabled_us is not None:
        return "%s is disabled: enable the account first, then give it the box's own key." % name
    if name not in _slots():
        return (
            "%s has no key slot: set them a password (their row, Set password), which makes one, "
            "then give it the box's own key." % name
        )
    if _holds_all(lk().services.keystore, name):
        return "%s holds the box's own key already: nothing to give." % name
    return None


# Why the box's own key is not given: who gives it must hold it (%s: who does), or type the
# recovery key (%s: what the giver's own key opens).
BOX_KEY_NEEDED = (
    "Giving the box's own key needs it unlocked in your session (%s), or the box's recovery key "
    "typed on the form. %s."
)


def _box_key_needed():
    """:data:`BOX_KEY_NEEDED` for the session's user."""
    enabled, disabled = box_key_holders()
    if enabled:
        holders = "log in as an account holding it: %s" % _names(enabled)
    elif disabled:
        holders = "log in as an account holding it, once enabled: %s" % _names(disabled)
    else:
        holders = "no account holds it any more"
    key = unlocked_key() if g.user.has("supervisor") else None
    if key is None:
        theirs = "Your account holds no recording key"
    else:
        opens = lines_named(key.lines) if key.lines else "no line"
        theirs = "Your key opens %s, not the box's own key" % opens
    return BOX_KEY_NEEDED % (holders, theirs)


def _parse_roles_lines(errors):
    chosen = {r for r in request.form.getlist("roles") if r in ROLES}
    if not chosen or len(chosen) != len(set(request.form.getlist("roles"))):
        errors["roles"] = "Choose at least one role: installer, supervisor, auditor or staff."
    n_lines = lk().n_lines
    lines = {whole_number(x) for x in request.form.getlist("lines")}
    if not lines <= set(range(1, n_lines + 1)):
        errors["lines"] = "Lines are numbered 1 to %d." % n_lines
    elif "supervisor" in chosen and not lines:
        errors["lines"] = "A supervisor needs at least one line to search and play."
    elif "staff" in chosen and not lines:
        errors["lines"] = "A staff member needs their line: choose the line of their phone."
    elif lines and chosen and not chosen & set(LINE_ROLES):
        # Lines would mean nothing for this account, yet read as a limit on what it sees.
        errors["lines"] = (
            "Lines: only a supervisor's or a staff member's lines mean something (an installer "
            "or auditor sees every line): untick the lines, or give one of those roles."
        )
    return chosen, lines


class Grant:
    """The key a privileged change is made with, and whose it is.

    ``key`` is the acting supervisor's own unlocked key (``owned`` False: it
    stays in their session) or the one opened with the recovery key
    (``owned`` True: forgotten by :meth:`close`).
    """

    def __init__(self, key, owned, via):
        self.key = key
        self.owned = owned
        self.via = via

    def close(self):
        if self.owned and self.key is not None:
            self.key.forget()


def _grant(errors, lines_granted, what):
    """The :class:`Grant` for a privileged change ``what``, or None (a message in ``errors``).

    ``lines_granted``: the lines the change lets someone hear.
    """
    text = (request.form.get("recovery_key") or "").strip()
    if text:
        try:
            parse_recovery_key(text)
        except RecoveryKeyFormatError as exc:
            errors["recovery_key"] = "That recovery key is mistyped: %s." % exc
            return None
        # A guess at the key that opens every recording: throttled and audited as a
        # login's password is, counted against the account that typed it.
        web = lk()
        keys = web.throttle.account_keys(g.user.name, request.remote_addr or "")
        wait = web.throttle.attempt(keys)
        if wait:
            errors["recovery_key"] = wait_said(
                web.throttle,
                keys,
                "Too many wrong recovery keys. Wait %d s and try again.",
                wait,
                account="Your account",
            )
            return None
        try:
            key = web.services.keystore.unlock_recovery(text)
        except (WrongPasswordError, KeyStoreError):
            errors["recovery_key"] = "That is not this box's recovery key."
            audit("login_failed", g.user.name, field="recovery key", **lockout(keys))
            return None
        web.throttle.succeeded(keys)
        return Grant(key, True, "recovery key")
    if not g.user.has("supervisor") or unlocked_key() is None:
        errors["form"] = (
            "%s lets someone hear calls, so it needs a supervisor logged in with "
            "their own password (their recording key unlocked), or the box's "
            "recovery key." % what
        )
        return None
    beyond = sorted(set(lines_granted) - set(g.user.lines))
    if beyond:
        errors["form"] = "You can grant only lines you hold yourself; %s %s the box's recovery key." % (
            lines_named(beyond),
            "needs" if len(beyond) == 1 else "need",
        )
        return None
    return Grant(unlocked_key(), False, "supervisor")


def _regrant(keystore, name, lines, grant):
    """Make ``name``'s key slot open exactly ``lines`` (the line keys granted follow the account).

    Lines taken away lose their grant at once; lines added are wrapped from
    ``grant``'s key. A slot made before line keys (it opens every line) is
    left as it is, audited: resetting the user's password gives them one for
    their lines. So is a slot holding the box's own key, whatever lines are added: a grant of
    the added lines alone would take it away.
    """
    if _holds_all(keystore, name):
        grant = None  # refused by the key store, audited as such: the slot keeps every line
    # Audited first; a cut before the slot follows leaves lines taken away in it, which
    # the next start takes away (web.prune_key_slots).
    entry = audit(
        "key_grant", name, lines=sorted(lines), granted_with=grant.via if grant is not None else None
    )
    try:
        keystore.set_lines(name, lines, grant.key if grant is not None else None)
    except KeyStoreError as exc:
        audit("key_grant", name, lines=sorted(lines), refused=str(exc), entry=entry.seq)


def _check_enabled_installers_left(conn, without_name):
    """Raise :class:`_LastInstaller` unless an installer other than ``without_name`` has
    an enabled account."""
    rows = conn.execute("SELECT roles FROM users WHERE name != ? AND disabled_us IS NULL", (without_name,))
    if not any("installer" in r["roles"].split(",") for r in rows.fetchall()):
        raise _LastInstaller()


def _check_installers_left(conn, without_name):
    """Raise :class:`_LastInstaller` unless an installer other than ``without_name`` remains."""
    rows = conn.execute("SELECT name, roles FROM users WHERE name != ?", (without_name,))
    if not any("installer" in r["roles"].split(",") for r in rows.fetchall()):
        raise _LastInstaller()


@bp.route("", methods=["GET"])
@roles("installer", "auditor")
def index():
    if not g.user.has("installer"):
        # Auditors check audit entries against who holds which role: a list
        # to read, no forms.
        users = lk().accounts.all()
        return render_template(
            "users_readonly.html",
            users=users,
            mixed=mixed_roles(users),
            **_logins(users),
            slots=_slots(),
            errors={},
        )
    return _render_list()


@bp.route("", methods=["POST"])
@roles("installer")
def create():
    web = lk()
    errors = {}
    name = (request.form.get("name") or "").strip().lower()
    problem = name_problem(name)
    if problem:
        errors["name"] = problem
    elif web.accounts.get(name) is not None:
        errors["name"] = "There is already a user called %s." % name
    chosen, lines = _parse_roles_lines(errors)
    password = request.form.get("password") or ""
    problem = passwords.password_problem(password, name)
    if problem:
        errors["password"] = problem
    new_user = User(name, frozenset(chosen), tuple(sorted(lines)))
    grant = None
    if new_user.needs_key_slot and not errors:
        grant = _grant(errors, lines, "Adding a supervisor")
    if errors:
        return _render_list(errors, 400)
    keystore = web.services.keystore
    # A slot under this name with no account: left by a creation the card cut short
    # (the slot is written first); it is replaced, or removed for a user without one.
    orphan = name in _slots()
    try:
        if grant is not None:
            if orphan:
                keystore.reset_password(name, password, grant.key, lines=lines)
            else:
                keystore.add_slot(name, password, grant.key, lines=lines)
        elif orphan:
            audit("key_slot_remove", name, reason="no account: the user's creation was cut short")
            keystore.remove_slot(name)
        # Audited before the account is made (web/intent.py): a cut between leaves a slot
        # with no account, which the next start removes, and an entry saying so.
        entries = [
            ("config_change", name, {"change": "user_add", "roles": sorted(chosen), "lines": sorted(lines)})
        ]
        if grant is not None:
            entries.append(("key_slot_add", name, {"granted_with": grant.via}))
        with intent.audited_tx(web, entries) as conn:
            web.accounts.create(conn, name, password, chosen, lines, must_change="set_by_other")
    except KeyStoreError as exc:
        return _render_list({"form": str(exc)}, 400)
    except Exception:
        if grant is not None:
            keystore.remove_slot(name)
        raise
    finally:
        if grant is not None:
            grant.close()
    return redirect(url_for("users.index", done="added", name=name))


@bp.route("/<name>", methods=["POST"])
@roles("installer")
def update(name):
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if name == g.user.name:
        abort(403, description="Nobody changes their own roles or lines: ask another installer.")
    errors = {}
    chosen, lines = _parse_roles_lines(errors)
    same = set(chosen) == set(user.roles) and set(lines) == set(user.lines)
    if not errors and same and (name in _slots()) == user.needs_key_slot:
        # The same roles and lines (a second click, a form sent unchanged), the key slot as
        # they need: nothing to audit, and the person's sessions go on.
        return redirect(url_for("users.index", done="unchanged", name=name))
    if stale.changed_since(request.form, _based_on(user)):
        return _render_list({"form": CHANGED % name}, 409, editing=name)
    changed = User(name, frozenset(chosen), tuple(sorted(lines)))
    slots = _slots()
    has_slot = name in slots
    new_slot = changed.needs_key_slot and not has_slot
    if has_slot and not changed.needs_key_slot and len(slots) == 1 and not errors:
        errors["roles"] = (
            "%s has the box's last key slot, which a supervisor must hold: give "
            "another supervisor one first." % name
        )
    if has_slot and not changed.needs_key_slot and not errors:
        # (Lines narrowed keep it: a slot granted every line keeps that grant; the account's
        # lines say what it is shown and may do on the pages: docs/keys.md.)
        if _last_box_key(name):
            errors["roles"] = _last_box_key(name)
    # Lines this change lets the user hear that they could not before.
    heard_before = set(user.lines) if user.needs_key_slot else set()
    gained = set(lines) - heard_before if changed.needs_key_slot else set()
    password = request.form.get("password") or ""
    if new_slot and not errors:
        # The key slot is sealed with the user's password, which we do not
        # know: a new one is set.
        problem = (
            passwords.password_problem(password, name)
            if password
            else ("A supervisor gets a key slot, made with a new password: enter one for %s." % name)
        )
        if problem:
            errors["password"] = problem
    grant = None
    if gained and not errors:
        grant = _grant(errors, gained, "Giving the supervisor role or more lines")
    if errors:
        return _render_list(errors, 400, editing=name, typed=request.form)
    keystore = web.services.keystore
    try:
        try:
            if new_slot:
                keystore.add_slot(name, password, grant.key, lines=lines)
        except KeyStoreError as exc:
            return _render_list({"roles": str(exc)}, 400, editing=name, typed=request.form)
        entries = [
            (
                "config_change",
                name,
                {"change": "user_update", "roles": sorted(chosen), "lines": sorted(lines)},
            )
        ]
        if new_slot:
            entries.append(("key_slot_add", name, {"granted_with": grant.via}))
        try:
            with intent.audited_tx(web, entries) as conn:
                if "installer" not in chosen:
                    _check_installers_left(conn, name)
                web.accounts.update(conn, name, chosen, lines)
                if new_slot:
                    web.accounts.set_password(conn, name, password, must_change="set_by_other")
        except _LastInstaller:
            if new_slot:
                keystore.remove_slot(name)
            return _render_list(
                {"roles": "The box needs at least one installer; give another user the role first."},
                400,
                editing=name,
                typed=request.form,
            )
        if has_slot and changed.needs_key_slot and set(lines) != set(user.lines):
            _regrant(keystore, name, lines, grant)
    finally:
        if grant is not None:
            grant.close()
    if has_slot and not changed.needs_key_slot:
        _remove_slot(keystore, name)
    web.sessions.end_user(name)  # new rights take effect at the next login
    return redirect(url_for("users.index", done="changed", name=name))


def _remove_slot(keystore, name):
    """Remove ``name``'s slot, audited first: a cut between leaves the slot of an account
    that holds none, which the next start removes (web.prune_key_slots)."""
    entry = audit("key_slot_remove", name)
    try:
        keystore.remove_slot(name)
    except KeyStoreError as exc:
        # The last slot stays (the box must open with a password); the role is gone.
        audit("key_slot_remove", name, refused=str(exc), entry=entry.seq)


@bp.route("/<name>/box-key", methods=["POST"])
@roles("installer")
def give_box_key(name):
    """Give ``name`` the box's own key: their key slot granted every line there is or will be,
    wrapped from the session's key when it is the box's own, or from the recovery key typed
    on the form. Both hold it then; the account's lines (what the pages show it) stay. Audited
    first (``key_grant``, ``box_key``); refused, with nothing changed, unless ``name`` is an
    enabled supervisor with a key slot not holding it already."""
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if name == g.user.name:
        abort(403, description="Nobody gives their own account the box's own key: ask another installer.")
    errors = {}
    problem = _box_key_problem(user)
    if problem:
        errors["box_key"] = problem
    elif not (request.form.get("recovery_key") or "").strip() and not _holds_box_key():
        errors["box_key"] = _box_key_needed()
    grant = None
    if not errors:
        grant = _grant(errors, (), "Giving the box's own key")
    if errors:
        return _render_list(errors, 400, giving=name)
    keystore = web.services.keystore
    try:
        # Audited first: a cut before the slot follows leaves an entry for a grant not made,
        # never a grant the trail does not show.
        entry = audit("key_grant", name, lines=ALL_LINES, box_key=True, granted_with=grant.via)
        try:
            keystore.set_lines(name, ALL_LINES, grant.key)
        except KeyStoreError as exc:
            audit("key_grant", name, lines=ALL_LINES, box_key=True, refused=str(exc), entry=entry.seq)
            return _render_list({"box_key": str(exc)}, 400, giving=name)
    finally:
        grant.close()
    web.sessions.end_user(name)  # their next login opens it
    return redirect(url_for("users.index", done="box_key", name=name))


@bp.route("/<name>/password", methods=["POST"])
@roles("installer")
def set_password(name):
    """For a forgotten password: a new one, and a new key slot if the role needs one."""
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if name == g.user.name:
        abort(403, description="Change your own password on your account page, with the current one.")
    password = request.form.get("password") or ""
    errors = {}
    problem = passwords.password_problem(password, name)
    if problem:
        errors["password"] = problem
    had_slot = name in _slots()
    held = had_slot and _holds_all(web.services.keystore, name)
    # The last holder of the box's key keeps it: a slot for its listed lines would leave
    # nobody able to make a new recovery key, backup or rekey.
    box_key = held and _last_box_key(name) is not None
    grant = None
    if (user.needs_key_slot or had_slot) and not errors:
        grant = _grant(errors, user.lines, "Resetting the password of someone with a key slot")
    if box_key and grant is not None and not grant.key.holds_all:
        errors["recovery_key"] = BOX_KEY_RESET % name
        grant.close()
        grant = None
    if errors:
        return _render_list(errors, 400, editing=name)
    keystore = web.services.keystore
    address = request.remote_addr or ""
    entries = [
        (
            "password_change",
            {"by_installer": True, "granted_with": grant and grant.via, "address": address},
        )
    ]
    if user.needs_key_slot and not had_slot:
        entries.append(("key_slot_add", {"granted_with": grant.via, "address": address}))
    # Noted before the slot: a cut between the slot and the hash is finished, not
    # taken for an altered key store (web/pwchange.py).
    note = pwchange.begin(web, name, g.user.name, entries, must_change="set_by_other")
    # Another holder keeps it too when the grant can give it (the box's key in the session,
    # or the recovery key typed): else its slot opens its listed lines, and the page says so.
    kept = held and grant is not None and grant.key.holds_all
    try:
        if had_slot:
            lines = ALL_LINES if kept else (user.lines or None)
            keystore.reset_password(name, password, grant.key, lines=lines)
        elif user.needs_key_slot:
            keystore.add_slot(name, password, grant.key, lines=user.lines)
    except Exception:
        pwchange.abandon(web, name, note)
        raise
    finally:
        if grant is not None:
            grant.close()
    pwchange.finish(web, name, password, note)
    if web.throttle.locked_s(name):
        # Locked out for a forgotten password, most often: the installer who set a new one
        # for the person knows it is them, so the lockout ends with it (audited first), or
        # that password would wait out the 30 minutes (PCI DSS 8.3.4).
        audit("account_unlock", name, reason=RESET_UNLOCKS)
        web.throttle.unlock(name)
    web.sessions.end_user(name)
    done = "password_box_key" if held and not kept else "password"
    return redirect(url_for("users.index", done=done, name=name))


@bp.route("/<name>/unlock", methods=["POST"])
@roles("installer")
def unlock(name):
    """End ``name``'s lockout (PCI DSS 8.3.4: 30 minutes, or until the person is known),
    audited before it ends."""
    web = lk()
    if web.accounts.get(name) is None:
        abort(404)
    if name == g.user.name:
        abort(403, description="Nobody unlocks their own account: ask another installer.")
    if not web.throttle.locked_s(name):
        return _render_list({"form": "%s is not locked out: nothing to unlock." % name}, 400)
    audit("account_unlock", name)
    web.throttle.unlock(name)
    return redirect(url_for("users.index", done="unlocked", name=name))


@bp.route("/<name>/disable", methods=["POST"])
@roles("installer")
def disable(name):
    """Disable ``name``'s account by hand (someone away, or leaving), audited before:
    nobody logs in to it, and its sessions end, until an installer enables it."""
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if name == g.user.name:
        return _render_list({"form": "You cannot disable your own account: ask another installer."}, 400)
    if user.disabled_us is not None:
        return _render_list({"form": "%s is disabled already: nothing to disable." % name}, 400)
    try:
        with intent.audited_tx(web, [("account_disabled", name, {"reason": BY_HAND})]) as conn:
            if user.has("installer"):
                _check_enabled_installers_left(conn, name)
            web.accounts.disable(conn, name, BY_HAND)
    except _LastInstaller:
        return _render_list(
            {"form": "%s is the box's last enabled installer: enable or add another installer first." % name},
            400,
        )
    web.sessions.end_user(name)
    return redirect(url_for("users.index", done="disabled", name=name))


@bp.route("/<name>/enable", methods=["POST"])
@roles("installer")
def enable(name):
    """Enable ``name``'s disabled account again, audited before: their unused days count
    from now."""
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if user.disabled_us is None:
        return _render_list({"form": "%s is not disabled: nothing to enable." % name}, 400)
    entry = {"was_disabled_us": user.disabled_us, "reason": user.disabled_why}
    with intent.audited_tx(web, [("account_enabled", name, entry)]) as conn:
        web.accounts.enable(conn, name)
    return redirect(url_for("users.index", done="enabled", name=name))


@bp.route("/<name>/delete", methods=["POST"])
@roles("installer")
def delete(name):
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if name == g.user.name:
        return _render_list({"form": "You cannot delete your own account."}, 400)
    has_slot = name in _slots()
    if _last_box_key(name):
        return _render_list({"form": _last_box_key(name)}, 400)
    if has_slot and len(_slots()) == 1:
        return _render_list(
            {"form": "%s has the box's last key slot: give another supervisor one first." % name}, 400
        )
    web.sessions.end_user(name)  # before the rows cascade away: their keys leave memory
    try:
        with intent.audited_tx(web, [("config_change", name, {"change": "user_delete"})]) as conn:
            if user.has("installer"):
                _check_installers_left(conn, name)
            web.accounts.delete(conn, name)
    except _LastInstaller:
        return _render_list({"form": "The box needs at least one installer."}, 400)
    if has_slot:
        _remove_slot(web.services.keystore, name)
    # Their slot is gone, but a copy of the key store taken before still opens with
    # their password: offer to replace every key (docs/keys.md).
    return redirect(url_for("users.index", deleted=name, removed=name if has_slot else None))
