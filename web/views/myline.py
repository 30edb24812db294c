"""My line: what a staff member is owed about the recording of their own phone.

A ``staff`` account (the person whose line is recorded) is granted the
line(s) of their phone and sees, read-only, for each: whether it is recorded
and which of its calls (the staff notice's words for the line,
:func:`firmware.policy.describe.line_words`: every call, which rules, when asked
and how, or never), whether a call on it
is being recorded right now, how long its recordings are kept, and how many
of its calls and recordings the box holds. No numbers, names or audio: those
are about the callers too, and a copy is asked for through a subject access
request. The page links to the staff notice and carries the concern form,
which reaches the supervisors as an alarm (``staff_concern``), and the request
form: a staff member asks for a copy of their recordings, their erasure, or
objects to being recorded, and the request is logged in the register of data
subjects' requests (:mod:`firmware.rights`) at once, its month counting from
that day, the supervisors told by the same alarm; the page lists the requests
they logged so, with their state and deadline.

Each line also says how often its recordings were reached in the last
:data:`ACCESS_DAYS` days, from the audit trail (:func:`line_access`): played,
exported, and released in a subject access bundle, each counted by the role of
who did it (supervisor, auditor), never their names, which calls, or whose:
the person learns that their recordings were listened to, not which callers'
calls (on a line shared with colleagues, not whose either). A trail that cannot
be read (sealed, and the box's key not open yet; locked) is said so, never
counted as nothing.
"""

import logging
import sqlite3

from flask import Blueprint, g, redirect, render_template, request, url_for

from firmware import rights, words
from firmware.calls.callsearch import CallFilter
from firmware.config import BoxConfig
from firmware.storage.fieldseal import FieldSealError
from firmware.typed import card_problem

from ..documents import names_words, staff_notice
from ..security import audit, lk, roles
from . import rights_register, supervised_lines
from .dashboard import visible_snapshot

bp = Blueprint("myline", __name__)
log = logging.getLogger(__name__)
# What a staff member may ask for about their own recordings (the register's kinds); the
# others (rectification, restriction) are for a supervisor to log as the person puts them.
STAFF_KINDS = {
    "access": "A copy of my recordings (subject access)",
    "erasure": "Erase recordings of me",
    "objection": "I object to being recorded",
}
MAX_WORDS = 1000
# How far back the page counts the playbacks, exports and releases of a line's recordings.
ACCESS_DAYS = 90
# What was done to a line's recordings, by the trail's action: the page's words.
ACCESS_ACTIONS = {"playback": "played", "export": "exported", "disclosure": "released"}
# Who did it, by their account's role now (the first of these it holds): one, several.
ACCESS_ROLES = {
    "supervisor": ("a supervisor", "supervisors"),
    "auditor": ("an auditor", "auditors"),
    "installer": ("an installer", "installers"),
}
OTHER_ROLE = ("the box's command line or a removed account",) * 2
ACCESS_UNREAD = (
    "Cannot be told now: the audit trail cannot be read (the box's key is not open until "
    "the recorder has started, or the trail is busy). Try again in a minute."
)


def _kept_days(retention, line):
    """How long a recording of ``line`` is kept: days (None: until deleted by
    hand), per direction when the rules treat the two differently."""
    days = {d: retention.decide(line, d, ()).days for d in ("in", "out")}
    return days["in"] if days["in"] == days["out"] else days


def _days_words(days):
    return words.counted(days, "day") if days else "kept until deleted by hand"


def _kept_except(retention, line):
    """The tagged calls of ``line`` kept otherwise than its untagged ones, in words
    (``["calls tagged regulated: 1827 days"]``): a category's rule or minimum period, as
    the sweep decides it (:meth:`RetentionSettings.decide`). Without them the page said
    "90 days, then deleted automatically" of a line whose regulated calls are kept five
    years, or whose complaints are kept until deleted by hand."""
    categories = {r.category for r in retention.rules if r.category} | set(retention.minimum_days)
    said = []
    for category in sorted(categories):
        days = {d: retention.decide(line, d, (category,)).days for d in ("in", "out")}
        plain = {d: retention.decide(line, d, ()).days for d in ("in", "out")}
        if days == plain:
            continue
        if days["in"] == days["out"]:
            said.append("calls tagged %s: %s" % (category, _days_words(days["in"])))
        else:
            said.extend(
                "%s calls tagged %s: %s" % (word, category, _days_words(days[d]))
                for d, word in (("in", "incoming"), ("out", "outgoing"))
                if days[d] != plain[d]
            )
    return said


def _role_of(roles, actor):
    """The role an access is counted under: the account's now (supervisor, auditor,
    installer; ``roles``: each account's), or ``other``: the box's command line, or an
    account no longer on the box."""
    return next((r for r in ACCESS_ROLES if r in roles.get(actor, ())), "other")


def access_words(access):
    """A line's :func:`line_access` counts in words: ``["Played 3 times (2 by supervisors,
    1 by an auditor)", "exported once (by a supervisor)", "released in a subject access
    bundle: never"]``."""
    said = []
    for what, counts in access.items():
        total = sum(counts.values())
        head = {"released": "released in a subject access bundle"}.get(what, what)
        if not total:
            said.append("%s: never" % head)
            continue
        by = [
            "%d by %s" % (n, ACCESS_ROLES.get(role, OTHER_ROLE)[n > 1])
            if len(counts) > 1
            else "by %s" % ACCESS_ROLES.get(role, OTHER_ROLE)[n > 1]
            for role, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
        ]
        said.append("%s %s (%s)" % (head, "once" if total == 1 else "%d times" % total, ", ".join(by)))
    return [said[0][:1].upper() + said[0][1:]] + said[1:]


def line_access(lines):
    """How often the recordings of each of ``lines`` were played, exported and released
    (subject access) in the last :data:`ACCESS_DAYS` days, from the audit trail:
    ``{line: {"played"|"exported"|"released": {role: n}}}``, one count per playback,
    export, or release naming calls of the line; a refused export or a release that
    failed is none. The line is the entry's own (``line``) or, for one without it (an
    export from the command line, a release, which names its calls), its calls' in the
    call log. Read for the period alone (:meth:`~firmware.storage.audit.AuditLog.in_period`).

    :raises FieldSealError: the trail is sealed and the box's key is not open yet
    :raises sqlite3.OperationalError: the trail could not be read (locked, an I/O error)
    """
    web = lk()
    services = web.services
    now_us = int(services.wall_us())
    found = services.audit.in_period(list(ACCESS_ACTIONS), now_us - ACCESS_DAYS * 86_400_000_000, now_us + 1)
    out = {n: {word: {} for word in ACCESS_ACTIONS.values()} for n in lines}
    roles = {u.name: u.roles for u in web.accounts.all()}
    done = []  # (what, who, the entry's own line or None, its calls)
    for e in found:
        if "refused" in e.details or "failed" in e.details:
            continue  # nothing played, exported or released
        if e.action == "disclosure":
            calls = [c for c in e.details.get("calls") or () if isinstance(c, int)]
        else:
            call = (e.target or "").removeprefix("call:")
            calls = [int(call)] if call.isascii() and call.isdigit() else []
        line = e.details.get("line") if e.action != "disclosure" else None
        done.append((ACCESS_ACTIONS[e.action], _role_of(roles, e.actor), line, calls))
    lines_of = getattr(services.calls, "lines_of", None)
    wanted = {c for _, _, line, calls in done if line is None for c in calls}
    line_of = lines_of(wanted) if wanted and lines_of is not None else {}
    for what, role, line, calls in done:
        for n in {line} if line is not None else {line_of[c] for c in calls if c in line_of}:
            if n in out:
                out[n][what][role] = out[n][what].get(role, 0) + 1
    return out


def my_lines(user):
    """One dict per line granted to ``user``: ``line, name, how, recorded,
    now`` (recording state now, as on the dashboard), ``holds`` (recorded, or holding
    recordings made before it was private), ``kept_days`` (untagged calls),
    ``kept_except`` (tagged calls kept otherwise, in words), ``calls``
    and ``recordings`` (how many the box holds; ``(n, exact)``), ``log_readers`` (who may
    read its call log, :func:`log_readers`), ``personal`` (how to keep a personal call
    unrecorded, where the code works; else None), ``access`` (how often
    its recordings were reached lately, :func:`line_access`; None: the audit trail
    could not be read)."""
    web = lk()
    notice = {x["line"]: x for x in staff_notice(web)["lines"]}
    live = {x["line"]: x for x in visible_snapshot(user)["lines"]}
    services = web.services
    config = services.box_config.get(leave_sealed=True) if services.box_config is not None else BoxConfig()
    count = getattr(services.calls, "count", None)
    try:
        access = line_access([n for n in user.lines if n in notice])
    except (FieldSealError, sqlite3.OperationalError) as exc:
        access = None
        log.warning("My line: the audit trail could not be read for %s's line access: %s", user.name, exc)
    accounts = web.accounts.all()
    out = []
    for n in user.lines:
        if n not in notice:
            continue  # a line the box no longer has
        entry = dict(notice[n])
        state = live.get(n)
        entry["now"] = state["recording"]["text"] if state else "Unknown"
        entry["now_state"] = state["recording"]["state"] if state else "none"
        entry["kept_days"] = _kept_days(config.policy.retention, n)
        entry["kept_except"] = _kept_except(config.policy.retention, n)
        if count is not None:
            entry["calls"] = count(CallFilter(lines=(n,)))
            entry["recordings"] = count(CallFilter(lines=(n,), recorded=True))
        # A line made private keeps the recordings made before, kept and played as ever.
        entry["holds"] = entry["recorded"] or bool(entry.get("recordings", (0,))[0])
        entry["access"] = None if access is None else access_words(access[n])
        entry["log_readers"] = log_readers(n, accounts)
        personal = config.policy.rules.personal
        works = entry["recorded"] and personal.on(n)
        entry["personal"] = personal_words(personal.dtmf_code) if works else None
        out.append(entry)
    return out


def personal_words(code):
    """How to keep a personal call unrecorded with the personal-call code ``code``, on a line
    it works on: the notice's words for it (:func:`web.documents.personal_how`), said of the
    line. Without it the page said how to pause for card details and not this."""
    return (
        "Key %s on the handset once the call is connected (one you make or one you take): it is "
        "not recorded, and what was recorded of it is deleted at once. The call is still listed "
        "in the call log." % code
    )


def log_readers(line, accounts):
    """Who may read the call log of ``line`` (when, the number, how long), in words: its
    supervisors by name (their grants, as *Who may listen* names them) and any auditor, who
    lists every line's calls (:func:`web.security.visible_lines`): "its supervisors (alice,
    sue) and any auditor". The auditors are not named: *Last 90 days* counts what was done
    by role, not by whom. Enabled accounts alone (:func:`_supervisor`). A private line's
    staff, told "never recorded" and that nobody may listen, took their calls on it for
    unseen."""
    names = sorted(u.name for u in accounts if _supervisor(u) and line in u.lines)
    if not names:
        return "any auditor"
    return "its supervisor%s (%s) and any auditor" % ("s" if len(names) > 1 else "", ", ".join(names))


def listeners(user, lines):
    """The supervisors who may play the recordings of this person's lines (their grants), by
    name, enabled accounts alone: of the lines recorded, or holding recordings made before
    they were private."""
    recorded = {x["line"] for x in lines if x["holds"]}
    return sorted(u.name for u in lk().accounts.all() if _supervisor(u) and recorded & set(u.lines))


def _supervisor(account):
    """Whether ``account`` is a supervisor's that may log in: a disabled one plays and
    reads nothing, and the page named it among who may listen and read the call log until
    it was deleted (as the staff notice did)."""
    return "supervisor" in account.roles and account.disabled_us is None


def lines_said(lines):
    """``lines`` as the pages name them (:func:`firmware.words.line_said`): "line 1 (Sales)",
    "line 1 (Sales) and line 4". A request said "line 1" where every other page said
    "line 1 (Sales)"."""
    site = lk().site.settings()
    return names_words(words.line_said(n, site.line(n).name if site else None) for n in sorted(lines))


def my_requests(user):
    """The requests ``user`` logged on this page, newest first (clear columns only): since
    their account was made, not an earlier account's of the same name."""
    register = rights_register()
    try:
        found = register.logged_by(user.name, lk().accounts.created_us(user.name) or 0)
    finally:
        register.close()
    return sorted(found, key=lambda e: e["id"], reverse=True)


# The mark :func:`web.views.alarms.raise_concern` leaves in the session for the page it sends
# the person on to: "your concern was sent" is said after one was, once, and never because
# a link says ``?raised=1``.
CONCERN_RAISED = "concern_raised"


def concern_raised():
    """Whether a concern was raised in this session since its page was last shown (the
    mark is taken), and the page was asked for as the one after it (``?raised=1``)."""
    raised = lk().sessions.mem(g.session).pop(CONCERN_RAISED, False)
    return bool(raised and request.args.get("raised"))


def myline_page(user, error=None, concern="", ask=None):
    """The page; ``ask``: the request form's ``{"kind", "words", "errors"}`` when it is
    shown again with what was wrong."""
    lines = my_lines(user)
    return render_template(
        "myline.html",
        lines=lines,
        listeners=listeners(user, lines),
        recorded=any(x["holds"] for x in lines),
        notice=staff_notice(lk()),
        error=error,
        concern=concern,
        raised=concern_raised(),
        asked=request.args.get("asked"),
        requests=my_requests(user),
        kinds=STAFF_KINDS,
        access_days=ACCESS_DAYS,
        access_unread=ACCESS_UNREAD,
        all_kinds=rights.KINDS,
        statuses=rights.STATUSES,
        ask=ask or {"kind": "access", "words": "", "errors": {}},
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


# A person's requests made on My line the same day are one banner row and one mail (each
# differently worded request was its own, on every supervisor's banner, mailed): the first
# raises it, saying so; the register and the dashboards list each. Requests are a right,
# never refused: only the telling of them is grouped.
GROUPED = ". Any more they ask today are on the Requests page, not told again"


def _asked_today(log, name, line, today, wall_us):
    """Whether ``name`` asked on My line today (the box's local day ``today``) and its
    occurrence on ``line`` still waits on the banner (not acknowledged): a later request is
    grouped with it. Once acknowledged, the next is told again, as its own row."""
    prefix = "from %s: asked on My line: " % name
    day_us = 26 * 3600 * 1_000_000  # a local day, whatever the clock change, is within
    local = lk().local_time()
    for row in log.history(limit=200, lines=[line], since_us=wall_us - day_us):
        if (
            row["kind"] == "staff_concern"
            and row["line"] == line
            and row["acknowledged_us"] is None
            and row["message"].startswith(prefix)
            and local.local(row["raised_us"]).date() == today
        ):
            return True
    return False


@bp.route("/my-line/request", methods=["POST"])
@roles("staff")
def ask():
    """A staff member's own request about their recordings (a copy, erasure, an objection):
    logged in the register as received today, audited as a supervisor's logging is
    (``data_request``, ``logged``, with ``via`` ``my_line``), and raised to the supervisors as
    a ``staff_concern`` occurrence naming the request, so that it waits for nobody to pass
    it on: one on each of their lines (seen and mailed as that line's alarms are), not one
    of the whole box naming them, unless no enabled supervisor holds any of their lines
    (:func:`web.views.supervised_lines`): then every supervisor is shown the request, and
    the concern is the whole box's, so that it reaches them. Bad input is said beside its field and nothing is
    logged."""
    user = g.user
    kind = request.form.get("kind", "")
    words = " ".join(request.form.get("words", "").split())
    errors = {}
    if kind not in STAFF_KINDS:
        # The choices as the form labels them: lower-cased, "I object" read "i object".
        quoted = ["\u201c%s\u201d" % x for x in STAFF_KINDS.values()]
        errors["kind"] = "Choose what you ask for: %s or %s." % (", ".join(quoted[:-1]), quoted[-1])
    if len(words) > MAX_WORDS:
        errors["words"] = "Say it in at most %d characters, not %d." % (MAX_WORDS, len(words))
    elif card_problem(words):
        errors["words"] = card_problem(words)
    if not user.lines:
        errors["kind"] = "No line is set for your account yet: ask an installer for your phone's line."

    def refused(status=400):
        return myline_page(user, ask={"kind": kind, "words": words, "errors": errors}), status

    if errors:
        return refused()
    web = lk()
    wall_us = int(web.services.wall_us())
    today = web.local_time().local(wall_us).date()
    about = "their own calls on %s" % lines_said(user.lines)
    register = rights_register()
    try:
        request_id = register.add(
            actor=user.name,
            kind=kind,
            received=today,
            requester=user.name,
            contact="their staff account %s on this box (My line page)" % user.name,
            numbers="",
            details="Asked on the My line page, about %s%s" % (about, ": " + words if words else "."),
            today=today,
            wall_us=wall_us,
            lines=user.lines,  # whose supervisors it waits for (their dashboards)
        )
        entry = register.get(request_id)
    except FieldSealError:
        # The register keeps who asked sealed, and the box's key is not open yet.
        errors["kind"] = (
            "The request cannot be kept safely yet: the recorder has not started since the box "
            "was switched on. Try again in a minute, or ask a supervisor."
        )
        return refused(503)
    except rights.RequestError as exc:  # logged already (the form sent twice): once is enough
        errors["kind"] = str(exc)[:1].upper() + str(exc)[1:] + "."
        return refused(409)
    finally:
        register.close()
    audit(
        "data_request",
        "request:%d" % request_id,
        event="logged",
        kind=kind,
        received=today.isoformat(),
        due=str(entry["due"]),
        via="my_line",
    )
    log = web.services.alarms
    if log is not None:
        message = "from %s: asked on My line: %s, about %s (request %d on the Requests page, due %s)" % (
            user.name,
            rights.KINDS[kind],
            about,
            request_id,
            entry["due"],
        )
        # On each of their lines, not the whole box: who objects to being recorded or asks
        # to be erased is for the supervisors who answer it (those of their lines, whose
        # dashboards list the request) and those who see every line, not for a supervisor
        # of another team, nor a recipient mailed only that supervisor's alarms. But when no
        # enabled supervisor holds any of their lines, every supervisor is shown the request
        # and answers it (rights.concerns_lines): told on the whole box, as its overdue
        # alarm is, or the alarm reached no supervisor at all.
        held = set(user.lines) & supervised_lines()
        for line in sorted(set(user.lines)) if held else [0]:
            if _asked_today(log, user.name, line, today, wall_us):
                continue  # grouped: one banner row and mail a day (the register keeps each)
            log.set("staff_concern", True, line=line, message=message + GROUPED, wall_us=wall_us)
            log.set("staff_concern", False, line=line, wall_us=wall_us)
    return redirect(url_for("myline.index", asked=request_id))
