"""My line: what a staff member is owed about the recording of their own phone.

A ``staff`` account (the person whose line is recorded) is granted the
line(s) of their phone and sees, read-only, for each: whether it is recorded
and how (always, by the rules, when asked, or never), whether a call on it
is being recorded right now, how long its recordings are kept, and how many
of its calls and recordings the box holds. No numbers, names or audio: those
are about the callers too, and a copy is asked for through a subject access
request. The page links to the staff notice and carries the concern form,
which reaches the supervisors as an alarm (``staff_concern``).
"""

from flask import Blueprint, g, render_template, request

from firmware.calls.callsearch import CallFilter
from firmware.config import BoxConfig

from ..documents import staff_notice
from ..security import lk, roles
from .dashboard import visible_snapshot

bp = Blueprint("myline", __name__)


def _kept_days(retention, line):
    """How long a recording of ``line`` is kept: days (None: until deleted by
    hand), per direction when the rules treat the two differently."""
    days = {d: retention.decide(line, d, ()).days for d in ("in", "out")}
    return days["in"] if days["in"] == days["out"] else days


def my_lines(user):
    """One dict per line granted to ``user``: ``line, name, how, recorded,
    now`` (recording state now, as on the dashboard), ``kept_days``, ``calls``
    and ``recordings`` (how many the box holds; ``(n, exact)``)."""
    web = lk()
    notice = {x["line"]: x for x in staff_notice(web)["lines"]}
    live = {x["line"]: x for x in visible_snapshot(user)["lines"]}
    services = web.services
    config = services.box_config.get() if services.box_config is not None else BoxConfig()
    count = getattr(services.calls, "count", None)
    out = []
    for n in user.lines:
        if n not in notice:
            continue  # a line the box no longer has
        entry = dict(notice[n])
        state = live.get(n)
        entry["now"] = state["recording"]["text"] if state else "Unknown"
        entry["now_state"] = state["recording"]["state"] if state else "none"
        entry["kept_days"] = _kept_days(config.policy.retention, n)
        if count is not None:
            entry["calls"] = count(CallFilter(lines=(n,)))
            entry["recordings"] = count(CallFilter(lines=(n,), recorded=True))
        out.append(entry)
    return out


def listeners(user, lines):
    """The supervisors who may play this person's recorded lines (their grants), by name."""
    recorded = {x["line"] for x in lines if x["recorded"]}
    return sorted(u.name for u in lk().accounts.all() if "supervisor" in u.roles and recorded & set(u.lines))


def myline_page(user, error=None, concern=""):
    lines = my_lines(user)
    return render_template(
        "myline.html",
        lines=lines,
        listeners=listeners(user, lines),
        recorded=any(x["recorded"] for x in lines),
        notice=staff_notice(lk()),
        error=error,
        concern=concern,
        raised=request.args.get("raised"),
    )


@bp.route("/my-line")
@roles("staff")
def index():
    return myline_page(g.user)


@bp.route("/api/my-line")
@roles("staff")
def now():
    """Whether a call on each of the user's lines is being recorded now, as the page says
    it (``{line: {"text", "state"}}``): the page asks every few seconds, so that a
    staff member who leaves it open sees a recording begin, pause and end. Not activity:
    a page left open does not keep a session alive."""
    live = {x["line"]: x for x in visible_snapshot(g.user)["lines"]}
    return {
        str(n): {"text": live[n]["recording"]["text"], "state": live[n]["recording"]["state"]}
        for n in g.user.lines
        if n in live
    }
