"""The central viewer's shared state, sessions and the access check before every request."""

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time

from flask import abort, current_app, g, redirect, render_template, request, url_for

from firmware.archive import viewer as index
from firmware.clock import kernel_clock_synchronised
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import KeyStore

from ..db import WebDb
from ..security import SAFE_METHODS, access_of, app_cookie, security_headers
from ..throttle import Throttle
from .users import ArchiveUsers

log = logging.getLogger(__name__)

SESSION_COOKIE = "lka_session"
PRE_COOKIE = "lka_pre"
INDEX_FILE = "index.db"
THROTTLE_FILE = "throttle.db"

# How often (at most) the pages that read the index look in the bucket for erasures since
# (Viewer.refresh_erasures): a listing of each site's BOX/erasures/ per look.
ERASURES_EVERY_S = 60
# How often (at most) the requests look for accounts unused for 90 days (Viewer.disable_unused,
# as the box's periodic round does); every login looks at once.
UNUSED_EVERY_S = 30
# Why none is disabled now (the log).
VIEWER_CLOCK_UNSYNCHRONISED = "the viewer's clock is not synchronised"

# A session ends this long after its login, however busy (the box's own: 12 h): one
# polled every few minutes lived for ever.
MAX_AGE_S = 12 * 3600
# What a logged-in person whose password must be changed may still use: the password page,
# and logging out (web.security.PASSWORD_FIRST on a box).
PASSWORD_FIRST = ("archive.password", "archive.logout")


class Viewer:
    """What the views share.

    :param viewer_dir: the viewer's own directory (users, audit trail, index)
    :param org_dir: the organisation key's slots (``linekeeper archive init-org``)
    :param bucket: a :class:`firmware.archive.store.Bucket` (read access is enough)
    :param users: an :class:`~web.archive.users.ArchiveUsers` (default: the viewer dir's)
    :param idle_s: a session ends after this long without a request
    :param secure_cookies: cookies only over HTTPS (off for tests and localhost)
    :param wall_us: ``f() -> int`` µs since the epoch, for the audit trail
    :param clock_synced: ``f() -> bool``: whether that clock is synchronised (the kernel's
        word, :func:`firmware.clock.kernel_clock_synchronised`); no account is disabled as
        unused while it is not (:meth:`disable_unused`)
    """

    def __init__(
        self,
        viewer_dir,
        org_dir,
        bucket,
        *,
        users=None,
        idle_s=900,
        secure_cookies=True,
        wall_us=None,
        monotonic=time.monotonic,
        clock_synced=kernel_clock_synchronised,
    ):
        self.viewer_dir = os.fspath(viewer_dir)
        os.makedirs(self.viewer_dir, mode=0o700, exist_ok=True)
        self.keystore = KeyStore(org_dir)
        self.bucket = bucket
        self.users = users or ArchiveUsers(self.viewer_dir)
        self.idle_s = idle_s
        self.secure_cookies = secure_cookies
        self.wall_us = wall_us or (lambda: time.time_ns() // 1000)
        self._monotonic = monotonic
        self.clock_synced = clock_synced
        self.index_path = os.path.join(self.viewer_dir, INDEX_FILE)
        self.audit_log = AuditLog(
            os.path.join(self.viewer_dir, "audit.db"), os.path.join(self.viewer_dir, "audit.head")
        )
        # The box's login throttle (web/throttle.py), its counters in a web database of the
        # viewer's own: the same back-off per account and address as on a box.
        self._throttle_db = WebDb(os.path.join(self.viewer_dir, THROTTLE_FILE))
        self.throttle = Throttle(self._throttle_db, self.wall_us)
        self._sessions = {}
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._erasures_at = None  # when (monotonic) the bucket was last looked in for erasures
        self._unused_at = None  # when (monotonic) the accounts were last looked at for use
        self._unused_lock = threading.Lock()
        self._unsynced_said = False  # the log says once that the clock holds the disables back

    # ------------------------------------------------------------ sessions
    def new_session(self, user, key):
        """A session for ``user`` holding ``key`` (their unlocked organisation key, or None);
        returns the cookie's token (only its hash is kept)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[_hash(token)] = {
                "user": user.name,
                "csrf": secrets.token_urlsafe(32),
                "key": key,
                "seen": self._monotonic(),
                "born": self._monotonic(),
                "stamp": self.users.stamp(user.name),
            }
        return token

    def session(self, token):
        """The live session of ``token`` (its idle time restarted), or None."""
        if not token:
            return None
        with self._lock:
            s = self._sessions.get(_hash(token))
            if s is None:
                return None
            now = self._monotonic()
            if now - s["seen"] > self.idle_s or now - s["born"] > MAX_AGE_S:
                self._drop(_hash(token))
                return None
            s["seen"] = self._monotonic()
            return s

    def end_user(self, name):
        """End every session of ``name`` (their account disabled)."""
        with self._lock:
            for h in [h for h, s in self._sessions.items() if s["user"] == name]:
                self._drop(h)

    def disable_unused(self, force=False):
        """Disable the accounts nobody has used for 90 days, by the box's rule and code
        (:meth:`web.archive.users.ArchiveUsers.disable_unused`: audited in this viewer's
        trail, the last enabled installer kept), and end their sessions; none while the
        clock is not synchronised (``clock_synced``: logged, and the first look once it is
        disables them). At most once per
        :data:`UNUSED_EVERY_S` (``force``: now, at a login); a failure is logged, and the
        next look tries again. Returns the names disabled."""
        with self._unused_lock:
            now = self._monotonic()
            if not force and self._unused_at is not None and now - self._unused_at < UNUSED_EVERY_S:
                return []
            self._unused_at = now
            if not self.clock_synced():
                # Its days are counted by the wall clock: one set a year ahead (a wrong time
                # server, by hand) disabled every account but the last installer's at once.
                # Said once, not at every look (a host with no time server never syncs).
                if not self._unsynced_said:
                    log.warning(
                        "archive viewer: the accounts unused for 90 days are not disabled now: %s "
                        "(said once, until it is)",
                        VIEWER_CLOCK_UNSYNCHRONISED,
                    )
                    self._unsynced_said = True
                return []
            self._unsynced_said = False
            try:
                disabled = self.users.disable_unused(self.audit_log, int(self.wall_us()))
            except Exception as exc:  # the next look tries again; the pages go on
                log.error(
                    "archive viewer: the accounts unused for 90 days could not be disabled now: %s", exc
                )
                return []
        for name in disabled:
            self.end_user(name)
        return disabled

    def end_session(self, token):
        with self._lock:
            self._drop(_hash(token or ""))

    def _drop(self, token_hash):
        s = self._sessions.pop(token_hash, None)
        if s is not None and s["key"] is not None:
            s["key"].forget()

    def close(self):
        with self._lock:
            for h in list(self._sessions):
                self._drop(h)
        self.audit_log.close()
        self._throttle_db.close()

    # ------------------------------------------------------------ the index
    def rebuild_index(self, org_key, skipped_keys=None):
        """Rebuild the index from the bucket, opening sealed parts with ``org_key``; the
        erasures are looked for again at once (a record read before its erasure).
        ``skipped_keys``: as :func:`firmware.archive.viewer.rebuild_index`'s."""
        with self._index_lock:
            built = index.rebuild_index(self.bucket, self.index_path, org_key, skipped_keys)
        self.refresh_erasures(force=True)
        return built

    def refresh_erasures(self, force=False):
        """Drop from the index the caller's details of the calls whose erasure has reached
        the bucket since (:func:`firmware.archive.viewer.apply_erasures`), each dropped
        audited (``archive_erasure`` on ``BOX/CALL_ID``, by ``system``). At most once per
        :data:`ERASURES_EVERY_S` (``force``: now); a bucket that cannot be listed is
        logged, and looked in again after as long. Returns the ``(box, call_id)`` dropped."""
        with self._index_lock:
            now = self._monotonic()
            if not force and self._erasures_at is not None and now - self._erasures_at < ERASURES_EVERY_S:
                return []
            self._erasures_at = now
            try:
                dropped = index.apply_erasures(self.bucket, self.index_path)
            except Exception as exc:  # the store's errors come in many types; the pages go on
                log.warning("archive viewer: the erasures could not be looked for in the bucket: %s", exc)
                return []
        for box, call_id in dropped:
            self.audit_log.append(
                "system",
                "archive_erasure",
                "%s/%d" % (box, call_id),
                {"box": box, "call_id": call_id},
                int(self.wall_us()),
            )
        return dropped

    def open_index(self):
        return index.open_index(self.index_path)

    def audit(self, action, target=None, **details):
        anonymous = details.pop("actor", "anonymous")  # never a detail of its own, as on a box
        actor = g.user.name if g.get("user") is not None else anonymous
        details.setdefault("address", request.remote_addr or "")
        return self.audit_log.append(actor, action, target, details, int(self.wall_us()))


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def viewer():
    """The app's :class:`Viewer`."""
    return current_app.extensions["linekeeper-archive"]


def csrf_token():
    """The token forms must send: the session's, or before login the double-submit cookie's."""
    if g.get("session") is not None:
        return g.session["csrf"]
    if "pre_token" not in g:
        g.pre_token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    return g.pre_token


def _csrf_ok():
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = g.session["csrf"] if g.session is not None else request.cookies.get(PRE_COOKIE) or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def before_request():
    """The access check of every route (declared with :mod:`web.security`'s decorators)."""
    v = viewer()
    endpoint = request.endpoint
    v.disable_unused()  # as the box's periodic round: at most every UNUSED_EVERY_S
    g.session = v.session(request.cookies.get(SESSION_COOKIE))
    g.user = v.users.get(g.session["user"]) if g.session else None
    if g.session is not None and (
        g.user is None or g.user.disabled_us is not None or v.users.stamp(g.user.name) != g.session["stamp"]
    ):
        # The account was removed or disabled, or its password set anew (``archive
        # add-user``): a session made under the old one, with the key it unlocked, is over.
        v.end_session(request.cookies.get(SESSION_COOKIE))
        g.session = g.user = None
    if endpoint is None:
        return None  # 404/405 follow, with the menu of whoever is logged in
    access = access_of(current_app, endpoint)
    if endpoint == "static":
        return None
    if access[0] != "public" and access[0] != "login":
        abort(404)  # no setup routes here
    if request.method not in SAFE_METHODS and not _csrf_ok():
        return render_template(
            "archive/error.html",
            title="Form expired",
            message="This form was not accepted: its security token is missing or out of date. "
            "Go back, reload the page and try again.",
        ), 400
    if access[0] == "login":
        if g.user is None:
            if request.path.endswith("/audio"):
                abort(401)
            if request.method in SAFE_METHODS:
                return redirect(url_for("archive.login", next=request.full_path.rstrip("?")))
            return redirect(url_for("archive.login"))
        if g.user.must_change and endpoint not in PASSWORD_FIRST:
            # A password set by whoever runs the viewer, or one from before the rules:
            # changed before anything else (PCI DSS 8.3.5, 8.3.6), as on a box.
            if request.path.endswith("/audio"):
                abort(403, description="Change your password first.")
            return redirect(url_for("archive.password"))
        needed = access[1:]
        if needed and not g.user.has(*needed):
            abort(403)
    return None


VIEWER_CSP = (
    "default-src 'self'; style-src 'self'; script-src 'self'; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def after_request(resp):
    if "pre_token" in g and request.cookies.get(PRE_COOKIE) != g.pre_token:
        set_cookie(resp, PRE_COOKIE, g.pre_token)
    if viewer().secure_cookies:  # served over HTTPS, as the box is
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return security_headers(resp, VIEWER_CSP)


def set_cookie(resp, name, value, max_age=None):
    app_cookie(resp, name, value, viewer().secure_cookies, max_age)
