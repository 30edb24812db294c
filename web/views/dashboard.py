"""The dashboard: each line's live state and the box's health."""

from flask import Blueprint, g, render_template

from ..security import lk, roles

bp = Blueprint("dashboard", __name__)


def visible_snapshot(user):
    """The status snapshot, with call details only on lines the user may search.

    Installers and auditors see states (needed to commission lines), not who
    is calling; supervisors see the numbers on their granted lines.
    """
    snap = lk().services.status.snapshot()
    granted = set(user.lines) if user.has("supervisor") else set()
    site = lk().site.settings()
    lines = []
    for entry in snap["lines"]:
        entry = dict(entry)
        call = entry.get("call")
        if call is not None and entry["line"] not in granted:
            entry["call"] = {"direction": call.get("direction")}
        entry["name"] = site.line(entry["line"]).name if site else "Line %d" % entry["line"]
        entry["record"] = site.line(entry["line"]).record if site else True
        lines.append(entry)
    return dict(snap, lines=lines)


def health():
    provider = lk().services.health
    if provider is None:
        return None
    data = provider()
    site = lk().site
    alarms = list(data.get("alarms", []))
    if not site.recovery_confirmed:
        alarms.append("The recovery key was never confirmed: an installer should make a new "
                      "one in Settings.")
    return dict(data, alarms=alarms)


@bp.route("/")
@roles()
def index():
    return render_template("dashboard.html", snap=visible_snapshot(g.user), health=health())

