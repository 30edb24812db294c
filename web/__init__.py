"""The web UI (Flask, server-rendered, a little JavaScript, no build step).

:func:`create_app` takes the box's services (:class:`web.services.Services`)
and a :class:`web.services.WebConfig`, so tests build an app around fakes or
a simulated box. One blueprint per resource, in ``web/views/``; who may call
what is declared on each view and enforced in :mod:`web.security`.
"""

import datetime
import os
import threading

from flask import Flask, current_app, g, render_template, request

from firmware.errors import TamperError

from . import security
from .accounts import ROLE_LABELS, Accounts
from .db import WebDb
from .services import Services, WebConfig
from .sessions import Sessions
from .site import COUNTRIES, Site
from .throttle import Throttle

__all__ = ["create_app", "Services", "WebConfig", "Web"]

STATE_LABELS = {
    "idle": "Idle",
    "alerting": "Incoming (caller ID)",
    "ringing": "Ringing",
    "dialling": "Dialling",
    "connected": "On a call",
    "cleared": "Far end hung up",
    "fault": "Line fault",
}


class Web:
    """What the views share: the services, the config and web.db's stores."""

    def __init__(self, services, config):
        self.services = services
        self.config = config
        os.makedirs(config.data_dir, exist_ok=True)
        self.db = WebDb(os.path.join(config.data_dir, "web.db"))
        clock = services.session_clock_us
        self.accounts = Accounts(self.db, clock, config.hash_cost)
        self.sessions = Sessions(self.db, clock, config.idle_timeout_s, config.session_max_age_s)
        self.throttle = Throttle(self.db, clock)
        self.site = Site(self.db)
        self.stopping = threading.Event()   # set when the server stops: streams end

    @property
    def n_lines(self):
        return len(self.services.status.snapshot()["lines"])

    def close(self):
        self.sessions.clear_all()
        self.db.close()


def _iso_us(wall_us):
    if wall_us is None:
        return ""
    t = datetime.datetime.fromtimestamp(wall_us / 1e6, datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _bytes(n):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return ("%d %s" if unit == "bytes" else "%.1f %s") % (n, unit)
        n /= 1000


def create_app(services, config):
    """Build the app around ``services`` (a :class:`Services`) with ``config``.

    All sessions left from an earlier run are ended: the unlocked keys they
    referred to were only ever in that process's memory.
    """
    if not isinstance(services, Services):
        raise TypeError("create_app needs a web.services.Services")
    if not isinstance(config, WebConfig):
        raise TypeError("create_app needs a web.services.WebConfig")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    web = Web(services, config)
    web.sessions.clear_all()
    app.extensions["linekeeper"] = web

    from .views import (api, audit, auth, calls, consent, dashboard, retention, rules, settings,
                        setup, users)
    for module in (auth, setup, dashboard, calls, audit, users, settings, rules, consent,
                   retention, api):
        app.register_blueprint(module.bp)
    security.check_declared(app)

    app.before_request(_body_limit)
    app.before_request(security.before_request)
    app.after_request(security.after_request)
    app.jinja_env.globals.update(
        csrf_token=security.csrf_token, state_label=lambda s: STATE_LABELS.get(s, s),
        role_labels=ROLE_LABELS, countries=COUNTRIES, iso_us=_iso_us, human_bytes=_bytes,
        cert_fingerprint=services.cert_fingerprint)

    @app.context_processor
    def current():
        return {"user": g.get("user"), "site": web.site.settings()}

    for code, title, message in (
            (400, "Bad request", "The request was not understood."),
            (401, "Log in first", "This needs you to be logged in."),
            (403, "Not allowed", "Your account's role does not allow this. Ask an installer "
                                 "if you need it."),
            (404, "Not found", "There is nothing here, or nothing you may see."),
            (405, "Not allowed", "That method is not allowed here."),
            (413, "Too large", "The form was too large."),
            (416, "Range not satisfiable", "The requested part of the recording does not "
                                           "exist."),
            (501, "Not yet", "This is coming in a later release.")):
        app.register_error_handler(code, _error_page(title, message, code))
    @app.errorhandler(TamperError)
    def tampered(exc):
        return render_template(
            "error.html", title="Recording damaged",
            message="This recording failed its integrity check: it was damaged or changed "
                    "on the card, and none of it can be trusted. `linekeeper verify` lists "
                    "every problem."), 500
    return app


def _view():
    return current_app.view_functions.get(request.endpoint) if request.endpoint else None


def _body_limit():
    """A view that takes uploads says how large (``view.max_content_length``); others 64 KiB."""
    limit = getattr(_view(), "max_content_length", None)
    request.max_content_length = limit or current_app.config["MAX_CONTENT_LENGTH"]


def _error_page(title, message, code):
    def handler(exc):
        # A view's own abort(code, description=...) message wins over the default.
        custom = getattr(exc, "description", None)
        if custom == getattr(type(exc), "description", None):
            custom = None
        if code == 413 and getattr(_view(), "too_large", None) is not None:
            custom = _view().too_large()
        resp = render_template("error.html", title=title, message=custom or message)
        headers = exc.get_response().headers if hasattr(exc, "get_response") else {}
        extra = {k: v for k, v in headers.items() if k in ("Content-Range", "WWW-Authenticate")}
        return resp, code, extra
    return handler
