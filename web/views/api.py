"""JSON and server-sent events for the pages' live parts."""

import json
import sqlite3
import time

from flask import Blueprint, Response, g, render_template, request, stream_with_context

from ..accounts import OFFICE_ROLES
from ..security import lk, local_path, roles
from .dashboard import health, visible_snapshot

bp = Blueprint("api", __name__, url_prefix="/api")
STOP_POLL_S = 0.25  # how often a waiting stream looks whether the server is stopping


@bp.route("/status")
@roles(*OFFICE_ROLES)
def status():
    return visible_snapshot(g.user)


@bp.route("/health")
@roles(*OFFICE_ROLES)
def health_json():
    return health() or {}


def _alarm_signature(alarms):
    if alarms is None:
        return None
    try:
        return alarms.signature()
    except sqlite3.Error:
        return None  # the card refused a read: the banner as drawn stands


@bp.route("/alarms")
@roles(*OFFICE_ROLES)
def alarms_now():
    """The alarm banner (HTML, as every page draws it) and the dashboard's list of alarms on
    now, for a page that learned from its events that they changed. ``next``: the page's
    path, where an acknowledgement returns."""
    back = local_path(request.args.get("next")) or "/"
    return {
        "banner": render_template("_alarm_banner.html", next_path=back),
        "active": (health() or {}).get("alarms", []),
        "signature": _alarm_signature(lk().services.alarms),
    }


@bp.route("/events")
@roles(*OFFICE_ROLES)
def events():
    """Line states as server-sent events, one message per change.

    A stream lasts ``sse_timeout_s`` and then ends; the browser reconnects by
    itself, and the access check runs again then (a logged-out session stops
    getting news within that time). It ends within :data:`STOP_POLL_S` when
    the server stops.
    """
    web = lk()
    user = g.user
    status = web.services.status
    timeout_s = web.config.sse_timeout_s

    alarms = web.services.alarms

    def stream():
        version = None
        sent = None  # the lines and alarms of the last message
        deadline = time.monotonic() + timeout_s
        yield "retry: 2000\n\n"
        while True:
            # An alarm raised, cleared or acknowledged is news too: the page redraws its banner.
            snap_version = (status.snapshot()["version"], _alarm_signature(alarms))
            if snap_version != version:
                version = snap_version
                snap = dict(visible_snapshot(user), alarms=version[1])
                # A change only on a line the user does not see is no message (one told
                # them when that line's calls began and ended).
                news = (snap["lines"], snap["alarms"], snap.get("clock_synced"), snap.get("recorder"))
                if news != sent:
                    sent = news
                    yield "data: %s\n\n" % json.dumps(snap)
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 or web.stopping.is_set():
                return
            status.wait_for_change(version[0], min(STOP_POLL_S, remaining_s))

    return Response(
        stream_with_context(stream()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
