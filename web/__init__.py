"""The web UI (Flask). The app factory takes the box's services, so tests can
build an app around a simulated box. Only a read-only status page so far;
accounts, roles and the rest arrive with the web UI issue.
"""

import json

from flask import Flask, Response, render_template

STATE_LABELS = {
    "idle": "Idle",
    "alerting": "Incoming (caller ID)",
    "ringing": "Ringing",
    "dialling": "Dialling",
    "connected": "On a call",
    "cleared": "Far end hung up",
    "fault": "Line fault",
}


def create_app(status, calllog, *, sse_timeout_s=15.0):
    """Build the app.

    :param status: a :class:`firmware.status.LineStatus`
    :param calllog: a :class:`firmware.calllog.CallLog`
    :param sse_timeout_s: how long one server-sent-events connection lasts
        before the browser reconnects (keeps worker threads free)
    """
    app = Flask(__name__)
    app.jinja_env.globals["state_label"] = lambda s: STATE_LABELS.get(s, s)

    @app.get("/")
    def index():
        snap = status.snapshot()
        recent = list(reversed(calllog.calls()[-10:]))
        return render_template("status.html", snap=snap, recent=recent)

    @app.get("/api/status")
    def api_status():
        return status.snapshot()

    @app.get("/api/events")
    def api_events():
        def stream():
            version = None
            deadline = sse_timeout_s
            while deadline > 0:
                snap = status.snapshot()
                if snap["version"] != version:
                    version = snap["version"]
                    yield "data: %s\n\n" % json.dumps(snap)
                status.wait_for_change(version, 1.0)
                deadline -= 1.0
        return Response(stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store"})

    @app.after_request
    def headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; style-src 'self' 'unsafe-inline'")
        return resp

    return app
