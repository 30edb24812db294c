"""Alarms: the banner on every page until acknowledged, the alarm history, and concerns.

Installers, supervisors and auditors see alarms (an auditor must see that a
line was down): the banner is on every page they open, not only the
dashboard, until each occurrence is acknowledged; installers and supervisors
acknowledge them. An alarm of one line is shown (banner, history, CSV, the
dashboard's alarms on now) only to those who may see that line
(:func:`web.security.alarm_lines`: a supervisor's own lines, every line for an
auditor or installer), one of the whole box to all of them; acknowledging an
alarm of another line is answered as one that does not exist (400, "There is no alarm N."),
so that the answer does not tell that it exists, and nothing is written. Staff (the
people whose lines are recorded) do not see the box's alarms. Acknowledging is audited
(action ``alarm``, event ``acknowledged``) by :class:`firmware.alarmlog.AlarmLog`.
Anyone logged in can raise a concern about the recording (the form on the
alarms page, and on a staff member's "my line" page): it reaches the
supervisors the way an alarm does. At most :data:`CONCERNS_A_DAY` from one account in
any 24 hours: each is a row of its own on the banner of every supervisor, installer
and auditor, and mailed.
"""

import sqlite3

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from firmware import words
from firmware.calls.calllog import iso_ms
from firmware.errors import LinekeeperError
from firmware.storage.fieldseal import FieldSealError
from firmware.typed import card_problem

from ..accounts import OFFICE_ROLES
from ..security import alarm_lines, form_errors, lk, local_path, roles, sentences, visible_lines, whole_number
from . import csv_download, csv_within, row_id
from .calls import _day_us
from .dashboard import grouped, reminders_now
from .myline import CONCERN_RAISED, concern_raised, myline_page

bp = Blueprint("alarms", __name__)

# The answer to acknowledging an alarm that does not exist, and one of a line not the user's.
NO_SUCH_ALARM = "there is no alarm %d"

# How many concerns one account may raise in any 24 hours (:func:`concerns_wait`): each is
# a row of its own on the banner of every supervisor, installer and auditor, and mailed, so
# one person sending concern after concern in other words filled every one of their pages.
CONCERNS_A_DAY = 5
DAY_US = 86_400_000_000
CONCERNS_FULL = (
    "You have sent %d concerns in the last 24 hours, the most one account may send in a day: "
    "each is shown to every supervisor, installer and auditor. You can send another from %s; "
    "until then, speak to a supervisor. Nothing was sent."
)

# Who sees the alarm banner and history.
ALARM_ROLES = OFFICE_ROLES


def _log():
    return lk().services.alarms


@bp.app_context_processor
def _banner():
    def alarm_banner():
        log = _log()
        user = g.get("user")
        return (
            grouped(log.banner(alarm_lines(user)))
            if log is not None and user is not None and user.has(*ALARM_ROLES)
            else []
        )

    def alarm_signature():
        log = _log()
        try:
            return log.signature() if log is not None else ""
        except sqlite3.Error:
            return ""

    return {
        "alarm_banner": alarm_banner,
        "alarm_back": back_here,
        "alarm_signature": alarm_signature,
        "alarm_call_page": call_page,
        # The Alarms page lists what the dashboard's health panel does of the box's reminders.
        "alarm_reminders": reminders_now,
        "concerns_a_day": CONCERNS_A_DAY,  # the concern forms' hint
    }


def back_here():
    """Where acknowledging an alarm from this page's banner returns: this page, with its
    query (a search shown stays shown). A page drawn in answer to a form (``/calls/1/listen``,
    ``/phonebook/delete``) has an address no link opens (405): the nearest page above it
    that opens, ``/calls/1``, ``/phonebook``."""
    if request.method in ("GET", "HEAD"):
        query = request.query_string.decode("ascii", "replace")
        return request.path + ("?" + query if query else "")
    adapter = current_app.url_map.bind("localhost")
    path = request.path.rstrip("/")
    while path:
        try:
            adapter.match(path, method="GET")
            return path
        except RequestRedirect:
            return path  # opens, by a redirect (a slash added)
        except HTTPException:
            path = path.rsplit("/", 1)[0]
    return "/"


def call_page(alarm):
    """The page of the call ``alarm`` is about, for a user who may see that call (the calls'
    own rule: a supervisor of its line, an auditor); None: about no call, or not theirs."""
    user = g.get("user")
    if alarm.get("call_id") is None or user is None or not user.has("supervisor", "auditor"):
        return None
    if alarm["line"] not in visible_lines(user):
        return None
    return url_for("calls.detail", call_id=alarm["call_id"])


def _history(log, **bounds):
    """The occurrences the user may see (:func:`web.security.alarm_lines`), newest first."""
    return log.history(lines=alarm_lines(g.user), **bounds) if log is not None else []


def _period(errors):
    """The days the query asks for (``from``, ``to``: YYYY-MM-DD, both included, in the
    box's zone, as the calls search takes them) as ``history``'s bounds, and those given
    (for the CSV's link); a bad one is named in ``errors``."""
    since = _day_us(request.args.get("from", "").strip(), "from", errors)
    until = _day_us(request.args.get("to", "").strip(), "to", errors, end=True)
    if since is not None and until is not None and until <= since:
        errors["to"] = "The end date is before the start date."
    shown = {k: request.args.get(k, "").strip() for k in ("from", "to")}
    return {"since_us": since, "until_us": until}, {k: v for k, v in shown.items() if v}


@bp.route("/alarms")
@roles(*ALARM_ROLES)
def index():
    log = _log()
    errors = {}
    bounds, shown = _period(errors)
    if errors:
        return form_errors("alarms.html", errors, history=[], available=log is not None, shown={})
    return render_template(
        "alarms.html",
        errors={},
        history=_history(log, **bounds),
        available=log is not None,
        error=None,
        raised=concern_raised(),
        shown=shown,
    )


CSV_MAX_ROWS = 100_000
CSV_COLUMNS = (
    "id",
    "kind",
    "alarm",
    "line",
    "message",
    "raised_at",
    "cleared_at",
    "acknowledged_by",
    "acknowledged_at",
)


@bp.route("/alarms.csv")
@roles(*ALARM_ROLES)
def export_csv():
    """The alarm history as CSV, oldest first (the occurrences raised in the days
    ``from`` and ``to`` ask for, as the page; more than :data:`CSV_MAX_ROWS` refused,
    :func:`web.views.csv_within`), times in UTC; audited as ``export_list`` of
    ``alarms``, with the filter. ``line`` is ``box`` for an alarm of the whole box, as the
    page says; a cleared time is empty while the alarm is still on."""
    log = _log()
    if log is None:
        abort(404)
    errors = {}
    bounds, shown = _period(errors)
    if errors:
        abort(400, description="The filter is not valid: " + sentences(errors.values()))
    history = _history(log, limit=CSV_MAX_ROWS + 1, **bounds)
    csv_within(
        "alarm occurrences", len(history), False, CSV_MAX_ROWS, "Choose a shorter period (from and to)"
    )
    rows = [
        [
            a["id"],
            a["kind"],
            words.say("alarm", a["kind"]),
            a["line"] or "box",
            a["message"],
            iso_ms(a["raised_us"]),
            iso_ms(a["cleared_us"]) or "",
            a["acknowledged_by"] or "",
            iso_ms(a["acknowledged_us"]) or "",
        ]
        for a in reversed(history)
    ]
    return csv_download("alarms.csv", CSV_COLUMNS, rows, "alarms", filter=shown or "all alarms")


def concerns_wait(log, name, wall_us):
    """When account ``name`` may raise its next concern: None now, else the time (µs since
    the epoch) the oldest of its last :data:`CONCERNS_A_DAY` of the whole box is 24 hours
    old. Counted from the alarm history, which names the person in each (``from NAME: ``):
    the whole box's occurrences, as the concern form raises them (a request the My line
    form raises on the whole box counts too: it is on every banner alike)."""
    mine = "from %s: " % name
    sent = sorted(
        r["raised_us"]
        for r in log.in_period(wall_us - DAY_US, wall_us + 1)
        if r["kind"] == "staff_concern" and r["line"] == 0 and r["message"].startswith(mine)
    )
    if len(sent) < CONCERNS_A_DAY:
        return None
    return sent[-CONCERNS_A_DAY] + DAY_US


@bp.route("/concerns", methods=["POST"])
@roles()
def raise_concern():
    """Anyone logged in raises a concern: an alarm occurrence of its own (``staff_concern``),
    on the banner until a supervisor acknowledges it, e-mailed and audited like any alarm."""
    log = _log()
    if log is None:
        abort(404)
    text = " ".join(request.form.get("concern", "").split())

    def refused(error, status=400):
        if not g.user.has(*ALARM_ROLES):
            return myline_page(g.user, error=error, concern=text), status
        # The words stay in the form, the message beside them: a refusal naming characters
        # 6 to 24, or saying "try again", must leave the words there to correct or send again.
        return (
            render_template(
                "alarms.html", history=_history(log), available=True, concern_error=error, concern=text
            ),
            status,
        )

    if not 10 <= len(text) <= 1000:
        return refused("Say what the concern is, in 10 to 1000 characters.")
    # PCI DSS: a concern is kept, shown on the banner and mailed as it is written.
    problem = card_problem(text)
    if problem:
        return refused(problem)
    wall_us = int(lk().services.wall_us())
    until_us = concerns_wait(log, g.user.name, wall_us)
    if until_us is not None:
        return refused(CONCERNS_FULL % (CONCERNS_A_DAY, lk().local_time().when(until_us)), 429)
    try:
        log.set("staff_concern", True, message="from %s: %s" % (g.user.name, text), wall_us=wall_us)
    except FieldSealError:
        # The words are kept sealed (they may name a caller), and the box's key is not
        # open yet: the recorder has not started since the box was switched on.
        return refused(
            "The concern cannot be kept safely yet: the recorder has not started since the box "
            "was switched on. Try again in a minute; the installer is told by the alarm if it "
            "does not start.",
            503,
        )
    log.set("staff_concern", False, wall_us=wall_us)
    lk().sessions.mem(g.session)[CONCERN_RAISED] = True
    if not g.user.has(*ALARM_ROLES):
        return redirect(url_for("myline.index", raised=1))
    return redirect(url_for("alarms.index", raised=1))


@bp.route("/alarms/<int:alarm_id>/acknowledge", methods=["POST"])
@roles("installer", "supervisor")
def acknowledge(alarm_id):
    log = _log()
    # An alarm number past SQLite's integers is no alarm's (web.views.row_id): looked up, it
    # raised (a server error).
    if log is None or not row_id(alarm_id):
        abort(404)
    # An alarm of a line the user may not see is not theirs to acknowledge, nor to learn of:
    # it is answered as one that does not exist, in the same words, and nothing is audited.
    alarm = log.get(alarm_id)
    if alarm is None or not _theirs(alarm):
        return _refused(log, NO_SUCH_ALARM % alarm_id)
    wall_us = int(lk().services.wall_us())
    try:
        log.acknowledge(alarm_id, g.user.name, wall_us=wall_us)
    except LinekeeperError as exc:
        return _refused(log, str(exc))
    # The banner's row stands for every occurrence of that alarm on that line: those too.
    for other in request.form.getlist("also"):
        other_id = whole_number(other)
        try:
            also = log.get(other_id) if other_id is not None and row_id(other_id) else None
            if also is not None and _theirs(also):
                log.acknowledge(other_id, g.user.name, wall_us=wall_us)
        except (ValueError, LinekeeperError):
            pass  # acknowledged meanwhile, or not an alarm: the one asked for is done
    return redirect(_local(request.form.get("next")) or url_for("alarms.index"))


def _refused(log, error):
    """The alarms page with ``error`` beside it (400), said as a sentence ("there is no alarm
    4" as "There is no alarm 4.")."""
    error = error[:1].upper() + error[1:]
    if not error.endswith((".", "?", "!")):
        error += "."
    return render_template("alarms.html", history=_history(log), available=True, error=error), 400


def _theirs(alarm):
    """Whether the user may see (and so acknowledge) ``alarm``, an alarm that exists: one
    of the whole box, or of a line of :func:`web.security.alarm_lines`."""
    return not alarm["line"] or alarm["line"] in alarm_lines(g.user)


def _local(path):
    """``path`` when it is a page of this box (``/...``), else None: the form's
    ``next`` must not send anyone to another site."""
    return local_path(path)
