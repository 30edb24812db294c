"""Alarms: the banner on the dashboard until acknowledged, and the alarm history.

Every logged-in user sees alarms (an auditor must see that a line was down);
installers and supervisors acknowledge them. Acknowledging is audited
(action ``alarm``, event ``acknowledged``) by :class:`firmware.alarmlog.AlarmLog`.
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
    return render_template("alarms.html", history=log.history() if log is not None else [],
                           available=log is not None, error=request.args.get("error"))


@bp.route("/alarms/<int:alarm_id>/acknowledge", methods=["POST"])
@roles("installer", "supervisor")
def acknowledge(alarm_id):
    log = _log()
    if log is None:
        abort(404)
    try:
        log.acknowledge(alarm_id, g.user.name, wall_us=int(lk().services.wall_us()))
    except LinekeeperError as exc:
        return render_template("alarms.html", history=log.history(), available=True,
                               error=str(exc)), 400
    return redirect(request.form.get("next") or url_for("alarms.index"))
