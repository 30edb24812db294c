"""Documents made from the configuration, always current: the compliance checklist and the staff
notice (with what callers are told), in HTML and PDF.

The checklist is for installers and auditors (it shows the box's weak
points); the staff notice is for every logged-in user, since it is what
staff are owed. Each version of the notice is kept in the audit trail the first
time it is shown (``staff_notice``), or before, as the settings that make it are saved
(:func:`notice_saved`), and shown again with ``?version=SEQ``.
"""

import logging
import sqlite3

from flask import Blueprint, Response, abort, g, render_template, request

from firmware import rights
from firmware.compliance import checklist, recorded
from firmware.errors import LinekeeperError
from firmware.reports.docpdf import document_pdf

from ..documents import box_state, keep_notice, names_words, notice_digest, staff_notice
from ..security import as_sentence, audit, form_errors, lk, roles, whole_number
from . import supervised_lines
from .reports import wrong_day

bp = Blueprint("documents", __name__)
logger = logging.getLogger(__name__)

# How many of the notice's versions the page lists (newest first); every one stays in the trail.
VERSIONS_LISTED = 100
# The pages whose forms save what the notice is made of: the site settings (purpose, lines,
# contact), the rules and pause, the consent notice, retention, the supervisors and their lines.
NOTICE_SETTINGS = frozenset({"setup", "settings", "rules", "consent", "retention", "users"})


def _pdf(name, data):
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": 'inline; filename="%s"' % name, "Cache-Control": "no-store"},
    )


@bp.route("/documents/checklist")
@roles("installer", "auditor")
def checklist_page():
    state = box_state(lk())
    return render_template("checklist.html", checks=checklist(state), recorded=recorded(state))


@bp.route("/documents/checklist.pdf")
@roles("installer", "auditor")
def checklist_pdf():
    state = box_state(lk())
    rows = [(c.number, c.name, ("status", c.status), c.reason) for c in checklist(state)]
    from reportlab.lib.units import mm

    data = document_pdf(
        "Compliance checklist",
        [
            (
                "p",
                "The box's state on %s. Green: met; amber: met in part or due soon; "
                "red: not met." % state.today.isoformat(),
            ),
            ("table", ("#", "Safeguard", "Status", "Why"), rows, (8 * mm, 55 * mm, 18 * mm, 99 * mm)),
            ("h", "Recorded in the settings"),
            ("table", ("", "As recorded"), recorded(state), (60 * mm, 120 * mm)),
        ],
    )
    return _pdf("linekeeper-checklist-%s.pdf" % state.today, data)


@bp.route("/documents/staff-notice")
@roles()
def staff_notice_page():
    n, version, until, current = _notice_asked()
    versions = lk().services.audit.entries(limit=VERSIONS_LISTED, action="staff_notice")
    return render_template(
        "staff_notice.html",
        n=n,
        archive_words=ARCHIVE_WORDS,
        version=version,
        until=until,
        current=current,
        versions=versions,
        kept_since=kept_since,
        names_words=names_words,
    )


def kept_since(entry, next_one=False):
    """When a kept version's time says it began: "first shown on ..." (kept as it was first
    shown) or "in effect from ..." (kept as the settings making it were saved); for the
    version after another (``next_one``), "another was first shown on ..." or "another took
    effect on ...". In the box's time zone."""
    at = lk().local_time().when(entry.wall_us)
    if entry.details.get("saved"):
        return ("another took effect on %s" if next_one else "in effect from %s") % at
    return ("another was first shown on %s" if next_one else "first shown on %s") % at


def _notice_asked():
    """``(facts, its trail entry, the next version's entry or None, current)`` of the
    notice asked for: the one now (``?version`` not given), whose words the trail keeps the
    first time they are shown; or the version the trail's entry ``?version=SEQ`` kept.
    ``current``: its words are the notice's as made from the settings now (the newest kept
    version is not, once the settings changed and nobody has been shown the new words yet).
    A version that is not one is refused (400), and nothing is written."""
    log = lk().services.audit
    asked = request.args.get("version")
    if asked is None:
        n = staff_notice(lk())
        return n, notice_shown(n), None, True
    seq = whole_number(asked)
    # (A number past any entry's is no entry's: SQLite holds 63 bits.)
    found = log.entries(limit=1, action="staff_notice", after_seq=seq - 1) if seq and seq < 2**62 else []
    if not found or found[0].seq != seq or not isinstance(found[0].details.get("notice"), dict):
        abort(400, description="There is no version %s of the staff notice: choose one from the "
                               "notice's list of versions." % asked[:20])  # fmt: skip
    after = log.entries(limit=1, action="staff_notice", after_seq=seq)
    current = not after and found[0].details.get("digest") == notice_digest(staff_notice(lk()))
    return found[0].details["notice"], found[0], after[0] if after else None, current


def notice_shown(n):
    """The audit trail's ``staff_notice`` entry of the notice ``n`` (its facts): the newest
    one, when it holds these words; else one written now, by whoever is shown them first
    (:func:`web.documents.keep_notice`)."""
    return keep_notice(lk(), n, g.user.name, address=request.remote_addr or "")


@bp.after_app_request
def notice_saved(resp):
    """A form of the pages that make the notice saved (:data:`NOTICE_SETTINGS`, answered
    below 400): the notice's words, when they changed, kept at once, so the trail has each
    version from when it took effect, not from when someone first opened it. Kept by whoever
    saved (``system`` should nobody be logged in). Not kept (logged),
    the change stands and its first showing keeps it, as before."""
    if request.method != "POST" or request.blueprint not in NOTICE_SETTINGS or resp.status_code >= 400:
        return resp
    web = lk()
    actor = g.user.name if g.get("user") is not None else "system"
    try:
        keep_notice(web, staff_notice(web), actor, address=request.remote_addr or "", saved=True)
    except (LinekeeperError, OSError, sqlite3.Error) as exc:
        logger.warning(
            "the staff notice's words as saved were not kept (its first showing keeps them): %s", exc
        )
    return resp


# Who else may listen when recordings are copied to the organisation's archive.
ARCHIVE_WORDS = (
    "Recordings are also copied to the organisation's archive, where the supervisors of its "
    "archive viewer, with the organisation's key, may play them; that too is recorded."
)


@bp.route("/documents/staff-notice.pdf")
@roles()
def staff_notice_pdf():
    n, version, until, current = _notice_asked()
    # When the words were first shown, or took effect (kept as the settings were saved).
    since = "These words were %s" % kept_since(version)
    if until is not None:
        since = "This version was %s; %s" % (kept_since(version), kept_since(until, next_one=True))
    elif not current:
        since = "This version was %s; the settings have changed since, and the notice now says otherwise" % (
            kept_since(version)
        )
    return _pdf(
        "staff-notice.pdf",
        document_pdf(
            "Call recording: a notice to staff",
            notice_blocks(n) + [("p", "%s (audit trail entry %d)." % (since, version.seq))],
        ),
    )


def notice_blocks(n):
    """The staff notice as document blocks (the same words as the HTML page)."""
    blocks = [
        ("h", "Why calls are recorded"),
        ("p", n["purpose"] or "The purpose has not been stated yet."),
        (
            "p",
            "The lawful basis for recording: %s." % n["lawful_basis"]
            if n["lawful_basis"]
            else "The lawful basis for recording has not been recorded yet.",
        ),
        ("h", "Which lines are recorded"),
        ("table", ("Line", "Name", "Recording"), [(x["line"], x["name"], x["how"]) for x in n["lines"]]),
    ]
    private = [x["name"] for x in n["lines"] if not x["recorded"]]
    blocks.append(
        (
            "p",
            "For private calls use %s: never recorded.%s"
            % (names_words(private, "or"), " " + n["private_listed"] if n.get("private_listed") else "")
            if private
            else "Every line may be recorded: there is no private phone.",
        )
    )
    if n.get("personal"):  # not in a notice shown before the code existed
        blocks.append(("p", n["personal"]))
    blocks += [
        ("h", "How long recordings are kept"),
        (
            "p",
            n["retention"][:1].upper() + n["retention"][1:] + "."
            if n["retention"]
            else "No retention period is set yet: recordings are kept until deleted by hand."
            + (" %s%s." % (n["details"][:1].upper(), n["details"][1:]) if n.get("details") else ""),
        ),
    ]
    if n["pci"]:
        blocks.append(
            (
                "p",
                "When a caller gives card details, %s: recording pauses. %s" % (n["pci"], n["pci_resume"]),
            )
        )
    if n["recall"]:
        blocks.append(("p", n["recall"]))
    if n["outgoing"]:
        blocks.append(("p", n["outgoing"]))
    blocks += [
        ("h", "Who may listen"),
        (
            "p",
            "Only these supervisors, each with their own key and only on the lines given to them, "
            "and every playback "
            "and export is recorded in the audit trail with the reason they gave: %s.%s"
            % (", ".join(n["listeners"]) or "nobody yet", " " + ARCHIVE_WORDS if n["archived"] else ""),
        ),
        ("h", "What callers are told"),
        ("p", n["announcement"] or "Neither callers nor the people you call are told (the notice is off)."),
        ("h", "Asking for a copy, or raising a concern"),
        ("p", n["rights"]),
    ]
    if n["contact"]:
        blocks.append(("p", n["contact"]))
    return blocks


def _year_review():
    """``(review, values, errors)`` of the year in review the query string asks for (``from``
    and ``to``; neither: the last 12 whole months, :mod:`firmware.reports.yearreview`): a
    supervisor's of the lines granted to them, as the Reports page limits them; an auditor's
    or installer's of every line. ``review`` None with a message per bad field (nothing read)."""
    from firmware.errors import ReportError
    from firmware.policy.retention import retention_words
    from firmware.reports import yearreview

    web = lk()
    source = web.services.reports
    if source is None:
        abort(404)
    today = web.local_time().local(web.services.wall_us()).date()
    values = {"from": request.args.get("from", "").strip(), "to": request.args.get("to", "").strip()}
    try:
        period = yearreview.review_period(values["from"], values["to"], source.tz, today)
    except ReportError as exc:
        # Beside the date that is wrong, or the one left out when one alone was given.
        return None, values, {wrong_day(values): as_sentence(exc)}
    values = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    lines = None  # every line
    if not (g.user.has("auditor") or g.user.has("installer")):
        lines = sorted(n for n in g.user.lines if n <= source.lines())
        if not lines:
            return None, values, {"line": "No lines are granted to you: ask an installer."}
    site = web.site.settings()
    config = web.services.box_config.get(leave_sealed=True) if web.services.box_config is not None else None
    # What the checklist says is not met today, red first.
    todo = sorted(
        (c for c in checklist(box_state(web)) if c.status != "green"),
        key=lambda c: (c.status != "red", c.number),
    )
    try:
        review = yearreview.gather(
            source,
            period,
            audit=web.services.audit,
            roles_of={u.name: u.roles for u in web.accounts.all()},
            site={
                "ico_number": site.ico_number if site else "",
                "ico_renewal": site.ico_renewal if site else "",
                "dpia_reviewed": site.dpia_reviewed if site else "",
            },
            retention=retention_words(config.policy.retention) if config is not None else None,
            todo=[(c.number, c.name, c.status, c.reason) for c in todo],
            today=today,
            region=site.region if site is not None else rights.DEFAULT_REGION,
            lines=lines,
            supervised=supervised_lines() if lines is not None else None,
        )
    except ReportError as exc:
        return None, values, {"range": as_sentence(exc)}
    return review, values, {}


@bp.route("/documents/year-review")
@roles("installer", "supervisor", "auditor")
def year_review_page():
    from firmware.reports.yearreview import review_blocks

    review, values, errors = _year_review()
    if errors:
        return form_errors("year_review.html", errors, blocks=None, values=values)
    return render_template("year_review.html", errors={}, blocks=review_blocks(review), values=values)


@bp.route("/documents/year-review.pdf")
@roles("installer", "supervisor", "auditor")
def year_review_pdf():
    """The year in review as PDF, audited as a ``report`` (its period) as a report's download
    is, saying it holds no personal data (counts only): a breach's scope does not count it as
    callers' data (:func:`firmware.breachscope.holds_personal_data`)."""
    from firmware.reports.yearreview import to_pdf

    review, values, errors = _year_review()
    if errors:
        return Response("\n".join(errors.values()) + "\n", status=400, mimetype="text/plain")
    data = to_pdf(review)
    audit(
        "report",
        None,
        document="year_review",
        format="pdf",
        period="%s/%s" % (values["from"], values["to"]),
        personal_data=False,
    )
    return _pdf("linekeeper-year-review-%s-%s.pdf" % (values["from"], values["to"]), data)
