"""The dashboard: each line's live state, the box's health, and the PCI pause.

A supervisor can pause the recording of a call in progress on a line granted
to them (while a caller gives card details) and resume it; the box silences
the line's audio before it is buffered and audits both (actions ``pause`` /
``resume`` with the supervisor's name). The pause exists only where a
recording is running: on a private or on-demand line, or a box not set up,
there is nothing to silence, and an audited "pause" would say otherwise.
"""

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from ..security import lk, roles

bp = Blueprint("dashboard", __name__)


def visible_snapshot(user):
    """The status snapshot, with call details only on lines the user may search.

    Installers and auditors see states (needed to commission lines), not who
    is calling; supervisors see the numbers on their granted lines.
    """
    snap = lk().services.status.snapshot()
    granted = set(user.lines) if user.has("supervisor") else set()
    live = lk().services.live
    paused = set(live.paused_lines()) if live is not None else set()
    recording = set(live.recording_lines()) if live is not None else set()
    site = lk().site.settings()
    lines = []
    for entry in snap["lines"]:
        entry = dict(entry)
        call = entry.get("call")
        if call is not None and entry["line"] not in granted:
            entry["call"] = {"direction": call.get("direction")}
        entry["name"] = site.line(entry["line"]).name if site else "Line %d" % entry["line"]
        entry["record"] = site.line(entry["line"]).record if site else True
        entry["can_pause"] = live is not None and entry["line"] in granted
        entry["paused"] = entry["line"] in paused and entry["line"] in granted
        entry["recording"] = entry["line"] in recording and entry["line"] in granted
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
        alarms.append("The recovery key was never confirmed: an installer who is also a "
                      "supervisor should make a new "
                      "one in Settings.")
    return dict(data, alarms=alarms)


@bp.route("/")
@roles()
def index():
    return render_template("dashboard.html", snap=visible_snapshot(g.user), health=health(),
                           errors={})


@bp.route("/lines/<int:line>/pause", methods=["POST"])
@roles("supervisor")
def pause(line):
    """Pause (``action=pause``) or resume (``action=resume``) the recording on ``line``."""
    live = lk().services.live
    if live is None:
        abort(404)
    if line not in g.user.lines:
        abort(403)
    action = request.form.get("action")
    if action not in ("pause", "resume"):
        abort(400, description="Choose to pause or to resume the recording.")
    try:
        if action == "pause" and line not in live.recording_lines():
            raise ValueError("line %d is not being recorded now: there is nothing to pause"
                             % line)
        (live.pause if action == "pause" else live.resume)(line, g.user.name)
    except ValueError as exc:        # no call on the line, already paused, not paused
        return render_template("dashboard.html", snap=visible_snapshot(g.user), health=health(),
                               errors={"form": str(exc)[:1].upper() + str(exc)[1:] + "."}), 409
    return redirect(url_for("dashboard.index"))

