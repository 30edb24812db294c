"""Logging in and out, and changing one's own password."""

import datetime
import logging

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, url_for

from firmware.alarmlog import raise_slot_tampered
from firmware.errors import KeyStoreError, LinekeeperError, TamperError, WrongPasswordError

from .. import inactive, passwords, pwchange
from ..accounts import MUST_CHANGE, change_problems, who_typed
from ..security import (
    SESSION_COOKIE,
    audit,
    form_errors,
    lk,
    local_path,
    public,
    roles,
    set_cookie,
    unlocked_key,
)
from ..throttle import wait_said

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def _safe_next(target):
    """``target`` if it is a path of this box (:func:`web.security.local_path`), else
    the dashboard."""
    return local_path(target) or url_for("dashboard.index")


def start_session(resp_target, user_name, recording_key=None):
    """End the current session (if any) and log ``user_name`` in with a new id."""
    web = lk()
    if g.get("session") is not None:
        web.sessions.end(g.session.id_hash)
    value, session = web.sessions.create(user_name, recording_key, web.keys_in_force.current())
    resp = redirect(resp_target)
    set_cookie(resp, SESSION_COOKIE, value)
    return resp, session


def _authenticate(name, password):
    """``(User or None, recording key or None)`` for a login.

    A supervisor with a key slot logs in by opening it: the slot's Argon2id
    is the password check (the account's own hash has the same cost, so
    neither is a cheaper guess), and a login that succeeds stretches once.
    When the slot does not open, the account's hash says why: a password it
    accepts is a right password, so the slot itself was altered in
    ``keystore.json`` - the ``key_tampered`` alarm is raised and the
    supervisor is logged in by their hash, without playback (as when the key
    store is damaged). Every failed login therefore stretches twice, whoever
    the name belongs to (a dummy check evens the others out), so the time a
    failure takes does not tell who has a slot.
    """
    web = lk()
    if not name or not password:
        return None, None
    user = web.accounts.get(name)
    keystore = web.services.keystore
    try:
        has_slot = (
            user is not None and user.needs_key_slot and keystore.is_initialised and name in keystore.slots()
        )
        if has_slot:
            key = keystore.unlock(name, password)
            try:
                pwchange.slot_opened(web, name, password)
            except BaseException:
                key.forget()
                raise
            return user, key
    except WrongPasswordError:
        verified = web.accounts.verify(name, password)
        if verified is None:
            return None, None
        if pwchange.old_password(web, name):
            g.lk_old_password = True  # a change cut short: the new password is in force
            return None, None
        _slot_tampered(name, "closed")
        return verified, None
    except (KeyStoreError, TamperError) as exc:
        log.warning("%s's key slot did not open (%s): checked against the account instead", name, exc)
        verified = web.accounts.verify(name, password)
        if verified is not None and isinstance(exc, TamperError):
            _slot_tampered(name, "inconsistent")
        return verified, None
    verified = web.accounts.verify(name, password)
    if verified is None:
        web.accounts.dummy_check()  # as long as a supervisor's failed login
    return verified, None


def _slot_tampered(name, failure):
    """A right password whose key slot failed (``failure``: "closed" or "inconsistent"):
    ``keystore.json`` was altered. A ``key_tampered`` alarm occurrence (banner, mail,
    syslog, audited by the alarm history), raised here when this process keeps the
    alarm history, else by the recorder (``services.slot_tampered``)."""
    log.error("%s logged in with the right password but their key slot failed (%s)", name, failure)
    services = lk().services
    try:
        if services.alarms is not None:
            raise_slot_tampered(services.alarms, name, failure, int(services.wall_us()))
        elif services.slot_tampered is not None:
            services.slot_tampered(name, failure)
    except LinekeeperError as exc:  # the login goes on; the log says it above
        log.error("the key_tampered alarm could not be raised: %s", exc)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    web = lk()
    if not web.site.setup_complete:
        return redirect(url_for("setup.wizard"))
    next_url = request.values.get("next", "")
    if request.method == "GET":
        if g.user is not None:
            return redirect(_safe_next(next_url))
        return render_template(
            "login.html",
            errors={},
            next=next_url,
            name="",
            expired=request.args.get("expired"),
            rekeyed=request.args.get("rekeyed"),
        )
    name = (request.form.get("name") or "").strip().lower()
    password = request.form.get("password") or ""
    keys = web.throttle.account_keys(name, request.remote_addr or "")
    wait = web.throttle.attempt(keys)
    if wait:
        message = wait_said(web.throttle, keys, "Too many failed attempts. Wait %d s and try again.", wait)
        return form_errors("login.html", {"form": message}, status=429, next=next_url, name=name)
    try:
        # The check of the periodic round, at once: an account 90 days unused does not
        # log in because the round has not come yet.
        inactive.disable_unused(web)
    except Exception as exc:  # the login goes on; the round tries again
        log.error("the accounts unused for 90 days could not be disabled now: %s", exc)
    user, key = _authenticate(name, password)
    if user is not None and user.disabled_us is not None:
        # Said only after the right password: a wrong one gets the same words as any
        # other, so the message tells nobody which names are accounts, or disabled ones.
        if key is not None:
            key.forget()
        web.throttle.succeeded(keys)
        audit("login_failed", user.name, actor="anonymous", disabled=user.disabled_why)
        return form_errors("login.html", {"form": disabled_said(user)}, status=403, next=next_url, name=name)
    if user is None:
        audit("login_failed", actor="anonymous", **who_typed(name, web.accounts.get), **lockout(keys))
        message = "Wrong user name or password."
        if g.get("lk_old_password"):
            message = (
                "That was this account's old password. Its change was cut short by a restart, "
                "but the new password is in force: log in with it, or ask an installer to set one."
            )
        return form_errors("login.html", {"form": message}, status=400, next=next_url, name=name)
    web.throttle.succeeded(keys)
    if not user.must_change and passwords.password_problem(password, user.name):
        # A password from before the rules (PCI DSS 8.3.6) still logs in, once more: it
        # must be changed before anything else (web.security.before_request).
        web.accounts.require_change(user.name, "rules")
        user = web.accounts.get(user.name)
    g.user = user
    target = url_for("auth.password", next=onward(next_url)) if user.must_change else _safe_next(next_url)
    resp, _ = start_session(target, user.name, key)
    details = {"must_change": user.must_change} if user.must_change else {}
    audit("login", user.name, recording_key=key is not None, **details)
    return resp


def onward(target):
    """Where the password page's link goes once the password is changed: ``target``, the
    page the user was opening when they were sent to change it, if it is a path of this
    box and not the password page itself; None: the dashboard (the page says so)."""
    path = local_path(target)
    if path is None or path.split("?")[0].rstrip("/") in (url_for("auth.password"), url_for("auth.logout")):
        return None
    return path


def disabled_said(user):
    """What the login says to the person whose account ``user`` is disabled (their
    password was right)."""
    if user.disabled_why == inactive.UNUSED_REASON:
        return "This account was disabled after %d days unused. Ask an installer to enable it." % (
            inactive.UNUSED_DAYS
        )
    return "This account was disabled by an installer. Ask an installer to enable it."


def lockout(keys):
    """Details for a failed attempt's entry when it locked further attempts out
    (:meth:`web.throttle.Throttle.lockout`: only the failure that begins or lengthens a
    lockout says so; the attempts it refuses are not audited one by one)."""
    return lk().throttle.lockout(keys)


@bp.route("/logout", methods=["POST"])
@roles()
def logout():
    audit("logout", g.user.name)
    lk().sessions.end(g.session.id_hash)
    g.session = g.user = None
    resp = make_response(render_template("login.html", errors={}, next="", name="", logged_out=True))
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@bp.route("/account/password", methods=["GET", "POST"])
@roles()
def password():
    next_url = onward(request.values.get("next"))
    if request.method == "GET":
        return render_template(
            "password.html", errors={}, done=request.args.get("done"), next=next_url, **_must_change()
        )
    web = lk()
    old = request.form.get("old") or ""
    new = request.form.get("new") or ""
    errors = {}
    # The current password is a password guess like a login's (a session left
    # open on a desk), throttled the same way.
    keys = web.throttle.account_keys(g.user.name, request.remote_addr or "")
    wait = web.throttle.attempt(keys)
    if wait:
        return form_errors(
            "password.html",
            {
                "old": wait_said(
                    web.throttle, keys, "Too many wrong current passwords. Wait %d s and try again.", wait
                )
            },
            status=429,
            done=None,
            next=next_url,
            **_must_change(),
        )
    if web.accounts.verify(g.user.name, old) is None:
        errors["old"] = "That is not your current password."
        audit("login_failed", g.user.name, field="current password", **lockout(keys))
    else:
        web.throttle.succeeded(keys)
    confirm = request.form.get("confirm") or ""
    errors.update(change_problems(g.user.name, old, new, confirm, "old" not in errors, web.accounts.reused))
    if errors:
        return form_errors("password.html", errors, done=None, next=next_url, **_must_change())
    keystore = web.services.keystore
    has_slot = keystore.is_initialised and g.user.name in keystore.slots()
    entries = [("password_change", {"key_slot": has_slot, "address": request.remote_addr or ""})]
    note = pwchange.begin(web, g.user.name, g.user.name, entries)
    if has_slot:
        try:
            keystore.change_password(g.user.name, old, new)
        except Exception:
            pwchange.abandon(web, g.user.name, note)
            raise
    pwchange.finish(web, g.user.name, new, note)
    # Other sessions of this account end; this one goes on with a new id.
    key = unlocked_key()
    web.sessions.mem(g.session)["key"] = None  # handed to the new session
    web.sessions.end_user(g.user.name)
    g.session = None
    # Its page says so, with the way on: to the page the user was opening, or the dashboard.
    resp, _ = start_session(url_for("auth.password", done=1, next=next_url), g.user.name, key)
    return resp


def _must_change():
    """The password page's words on why the password must be changed now, if it must."""
    return {"must_change": MUST_CHANGE.get(g.user.must_change)}


@bp.route("/security")
@public
def security_contact():
    return render_template("security.html")


@bp.route("/.well-known/security.txt")
@public
def security_txt():
    """RFC 9116: where to report a vulnerability, for people and scanners."""
    product = lk().config.product
    today = datetime.datetime.fromtimestamp(lk().services.wall_us() / 1e6, datetime.UTC).date()
    text = product.security_txt(url_for("auth.security_contact", _external=True, _scheme="https"), today)
    return Response(text, mimetype="text/plain", headers={"Cache-Control": "max-age=86400"})
