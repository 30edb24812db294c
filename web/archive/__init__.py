"""The central viewer: a read-only web UI over the archive bucket (``linekeeper archive serve``).

It finds, plays and reports on every site's calls from the central index
(:mod:`firmware.archive.viewer`, rebuilt from the bucket alone). There is no
line control and nothing it can change in the bucket: audio is fetched,
decrypted in memory with the organisation key and streamed.

Accounts are the viewer's own (:mod:`web.archive.users`) with the box's
roles; access is declared on every view with :mod:`web.security`'s
decorators and enforced before each request (:func:`web.archive.app.before_request`);
every login, calls list shown, call opened, playback, export and report
download goes to the viewer's own hash-chained audit trail (``VIEWER_DIR/audit.db``).
"""

import os

from flask import Flask, render_template

from ..security import check_declared
from ..site import card_free, no_card, typed_back
from . import views
from .app import Viewer, after_request, before_request, csrf_token

__all__ = ["Viewer", "create_archive_app"]

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "templates")
STATIC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


ERRORS = {
    400: ("Not understood", "The viewer could not read this request: go back and try again."),
    401: ("Log in first", "This needs you to be logged in."),
    403: (
        "Not allowed",
        "Your account does not allow this (its role, or the sites it may see). "
        "Ask whoever runs the viewer if you need it.",
    ),
    404: ("Not found", "There is nothing here, or nothing you may see."),
    405: ("Not allowed", "That method is not allowed here."),
    500: (
        "Something went wrong",
        "The viewer could not answer this. What went wrong is in its log: try again, and if "
        "it happens again, tell whoever runs the viewer.",
    ),
}


def create_archive_app(v):
    """The Flask app of the central viewer :class:`Viewer` ``v``.

    :raises RuntimeError: a view without an access declaration
    """
    app = Flask("web.archive", template_folder=TEMPLATES, static_folder=STATIC)
    app.extensions["linekeeper-archive"] = v
    app.register_blueprint(views.bp)
    app.before_request(before_request)
    app.after_request(after_request)
    app.jinja_env.finalize = card_free  # no card number typed comes back on a page
    app.jinja_env.filters["no_card"] = no_card  # a field given back, empty if one
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        audit_fields=views.audit_fields,
        action_said=views.action_said,
        typed_back=typed_back,  # a refused form's field as typed, unless a card number
    )

    @app.errorhandler(400)
    @app.errorhandler(401)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(500)
    def error_page(exc):
        # A view's own abort(code, description=...) wins; else words for people, not Werkzeug's.
        custom = exc.description if exc.description != type(exc).description else None
        title, message = ERRORS.get(exc.code, (exc.name, exc.name))
        return render_template("archive/error.html", title=title, message=custom or message), exc.code

    check_declared(app)
    return app
