"""Alarms: the banner on the dashboard until acknowledged, the alarm history, and concerns.

Every logged-in user sees alarms (an auditor must see that a line was down);
installers and supervisors acknowledge them. Acknowledging is audited
(action ``alarm``, event ``acknowledged``) by :class:`firmware.alarmlog.AlarmLog`.
Anyone logged in can raise a concern about the recording (the form on the
alarms page): it reaches the supervisors the way an alarm does.
"""

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from firmware.errors import LinekeeperError

from ..security import lk, roles

bp = Blueprint("alarms", __name__)


def _log():
    return lk().services.alarms


@bp.app_context_processor
def _banner():
    def alarm_banner():
        log = _log()
        return log.banner() if log is not None and g.get("user") is not None else []

    return {"alarm_banner": alarm_banner}


@bp.route("/alarms")
@roles()
def index():
    log = _log()
    return render_template(
        "alarms.html",
        history=log.history() if log is not None else [],
        available=log is not None,
        error=None,
        raised=request.args.get("raised"),
    )


@bp.route("/concerns", methods=["POST"])
@roles()
def raise_concern():
    """Anyone logged in raises a concern: an alarm occurrence of its own (``staff_concern``),
    on the banner until a supervisor acknowledges it, e-mailed and audited like any alarm."""
    log = _log()
    if log is None:
        abort(404)
    text = " ".join(request.form.get("concern", "").split())
    if not 10 <= len(text) <= 1000:
        return render_template(
            "alarms.html",
            history=log.history(),
            available=True,
            error="Say what the concern is, in 10 to 1000 characters.",
        ), 400
    wall_us = int(lk().services.wall_us())
    log.set("staff_concern", True, message="from %s: %s" % (g.user.name, text), wall_us=wall_us)
    log.set("staff_concern", False, wall_us=wall_us)
    return redirect(url_for("alarms.index", raised=1))


@bp.route("/alarms/<int:alarm_id>/acknowledge", methods=["POST"])
@roles("installer", "supervisor")
def acknowledge(alarm_id):
    log = _log()
    if log is None:
        abort(404)
    try:
        log.acknowledge(alarm_id, g.user.name, wall_us=int(lk().services.wall_us()))
    except LinekeeperError as exc:
        return render_template("alarms.html", history=log.history(), available=True, error=str(exc)), 400
    return redirect(request.form.get("next") or url_for("alarms.index"))
