"""Users and their key slots (installers only).

A user who plays recordings (supervisor) or gives others their key slots
(installer) needs a key slot: it is added with the recording key the
installer unlocked at login, held in this session's memory only. Auditors
get none. Every change is audited; the box always keeps one installer and
one key slot.
"""

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from firmware.errors import KeyStoreError

from .. import passwords
from ..accounts import ROLES, User, name_problem
from ..security import audit, form_errors, lk, roles, unlocked_key

bp = Blueprint("users", __name__, url_prefix="/users")


def _slots():
    keystore = lk().services.keystore
    return set(keystore.slots()) if keystore.is_initialised else set()


def _render_list(errors=None, status=200, **extra):
    web = lk()
    return render_template("users.html", users=web.accounts.all(), slots=_slots(),
                           errors=errors or {}, n_lines=web.n_lines, form=request.form,
                           roles_all=ROLES, has_key=unlocked_key() is not None,
                           **extra), status


def _parse_roles_lines(errors):
    chosen = {r for r in request.form.getlist("roles") if r in ROLES}
    if not chosen or len(chosen) != len(set(request.form.getlist("roles"))):
        errors["roles"] = "Choose at least one role: installer, supervisor or auditor."
    n_lines = lk().n_lines
    try:
        lines = {int(x) for x in request.form.getlist("lines")}
    except ValueError:
        lines = {0}
    if not lines <= set(range(1, n_lines + 1)):
        errors["lines"] = "Lines are numbered 1 to %d." % n_lines
    elif "supervisor" in chosen and not lines:
        errors["lines"] = "A supervisor needs at least one line to search and play."
    return chosen, lines


def _installers_left(without):
    return [u for u in lk().accounts.all() if u.has("installer") and u.name != without]


@bp.route("", methods=["GET"])
@roles("installer", "auditor")
def index():
    if not g.user.has("installer"):
        # Auditors check audit entries against who holds which role: a list
        # to read, no forms.
        return render_template("users_readonly.html", users=lk().accounts.all(),
                               slots=_slots(), errors={})
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
    key = unlocked_key()
    if new_user.needs_key_slot and key is None and not errors:
        errors["form"] = ("Your session holds no unlocked recording key, which a new "
                          "supervisor's or installer's key slot is made with. Log out and in "
                          "again, then retry.")
    if errors:
        return _render_list(errors, 400)
    keystore = web.services.keystore
    try:
        if new_user.needs_key_slot:
            keystore.add_slot(name, password, key)
        with web.db.tx() as conn:
            web.accounts.create(conn, name, password, chosen, lines)
    except KeyStoreError as exc:
        return _render_list({"form": str(exc)}, 400)
    except Exception:
        if new_user.needs_key_slot:
            keystore.remove_slot(name)
        raise
    audit("config_change", name, change="user_add", roles=sorted(chosen), lines=sorted(lines))
    if new_user.needs_key_slot:
        audit("key_slot_add", name)
    return redirect(url_for("users.index"))


@bp.route("/<name>", methods=["POST"])
@roles("installer")
def update(name):
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    errors = {}
    chosen, lines = _parse_roles_lines(errors)
    if "installer" not in chosen and not _installers_left(name):
        errors["roles"] = "The box needs at least one installer; give another user the role first."
    changed = User(name, frozenset(chosen), tuple(sorted(lines)))
    has_slot = name in _slots()
    new_slot = changed.needs_key_slot and not has_slot
    password = request.form.get("password") or ""
    key = unlocked_key()
    if new_slot and not errors:
        # The key slot is sealed with the user's password, which we do not
        # know: the installer sets a new one.
        problem = passwords.password_problem(password, name) if password else (
            "A supervisor or installer gets a key slot, made with a new password: "
            "enter one for %s." % name)
        if problem:
            errors["password"] = problem
        elif key is None:
            errors["form"] = "Log out and in again to unlock the recording key first."
    if errors:
        return _render_list(errors, 400, editing=name)
    keystore = web.services.keystore
    try:
        if has_slot and not changed.needs_key_slot:
            keystore.remove_slot(name)
            audit("key_slot_remove", name)
        if new_slot:
            keystore.add_slot(name, password, key)
            audit("key_slot_add", name)
    except KeyStoreError as exc:
        return _render_list({"roles": str(exc)}, 400, editing=name)
    with web.db.tx() as conn:
        web.accounts.update(conn, name, chosen, lines)
        if new_slot:
            web.accounts.set_password(conn, name, password)
    web.sessions.end_user(name)       # new rights take effect at the next login
    audit("config_change", name, change="user_update", roles=sorted(chosen), lines=sorted(lines))
    return redirect(url_for("users.index"))


@bp.route("/<name>/password", methods=["POST"])
@roles("installer")
def set_password(name):
    """For a forgotten password: a new one, and a new key slot if the role needs one."""
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    password = request.form.get("password") or ""
    errors = {}
    problem = passwords.password_problem(password, name)
    if problem:
        errors["password"] = problem
    key = unlocked_key()
    if user.needs_key_slot and key is None and not errors:
        errors["form"] = "Log out and in again to unlock the recording key first."
    if errors:
        return _render_list(errors, 400, editing=name)
    keystore = web.services.keystore
    had_slot = name in _slots()
    if user.needs_key_slot:
        if had_slot:
            keystore.reset_password(name, password, key)
        else:
            keystore.add_slot(name, password, key)
    with web.db.tx() as conn:
        web.accounts.set_password(conn, name, password)
    web.sessions.end_user(name)
    audit("password_change", name, by_installer=True)
    if user.needs_key_slot and not had_slot:
        audit("key_slot_add", name)
    return redirect(url_for("users.index"))


@bp.route("/<name>/delete", methods=["POST"])
@roles("installer")
def delete(name):
    web = lk()
    user = web.accounts.get(name)
    if user is None:
        abort(404)
    if name == g.user.name:
        return _render_list({"form": "You cannot delete your own account."}, 400)
    if user.has("installer") and not _installers_left(name):
        return _render_list({"form": "The box needs at least one installer."}, 400)
    try:
        if name in _slots():
            web.services.keystore.remove_slot(name)
            audit("key_slot_remove", name)
    except KeyStoreError as exc:
        return _render_list({"form": str(exc)}, 400)
    web.sessions.end_user(name)
    with web.db.tx() as conn:
        web.accounts.delete(conn, name)
    audit("config_change", name, change="user_delete")
    return redirect(url_for("users.index"))
