"""Documents made from the configuration, always current: the compliance checklist and the staff
notice (with what callers are told), in HTML and PDF.

The checklist is for installers and auditors (it shows the box's weak
points); the staff notice is for every logged-in user, since it is what
staff are owed. Each version of the notice is kept in the audit trail the first
time it is shown (``staff_notice``), and shown again with ``?version=SEQ``.
"""

import hashlib
import threading

from flask import Blueprint, Response, abort, render_template, request

from firmware.compliance import checklist, recorded
from firmware.reports.docpdf import document_pdf
from firmware.storage.audit import canonical_json

from ..documents import box_state, staff_notice
from ..security import audit, lk, roles, whole_number

bp = Blueprint("documents", __name__)

# How many of the notice's versions the page lists (newest first); every one stays in the trail.
VERSIONS_LISTED = 100
_NOTICE_SHOWN = threading.Lock()  # one entry for a new version, however many show it at once


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
    )


def _notice_asked():
    """``(facts, its trail entry, when another was first shown or None, current)`` of the
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
    current = not after and found[0].details.get("digest") == _digest(staff_notice(lk()))
    return found[0].details["notice"], found[0], after[0].wall_us if after else None, current


def _digest(n):
    """The SHA-256 of the notice ``n``'s facts, as its ``staff_notice`` entry keeps it."""
    return hashlib.sha256(canonical_json(n).encode("ascii")).hexdigest()


def notice_shown(n):
    """The audit trail's ``staff_notice`` entry of the notice ``n`` (its facts): the newest
    one, when it holds these words; else one written now, by whoever is shown them first,
    keeping them (so that what the notice said on any day can be shown again, and when it
    changed is in the trail)."""
    log = lk().services.audit
    digest = _digest(n)
    with _NOTICE_SHOWN:
        last = log.entries(limit=1, action="staff_notice")
        if last and last[0].details.get("digest") == digest:
            return last[0]
        audit("staff_notice", "staff_notice", digest=digest, notice=n)
        return log.entries(limit=1, action="staff_notice")[0]


# Who else may listen when recordings are copied to the organisation's archive.
ARCHIVE_WORDS = (
    "Recordings are also copied to the organisation's archive, where the supervisors of its "
    "archive viewer, with the organisation's key, may play them; that too is recorded."
)


@bp.route("/documents/staff-notice.pdf")
@roles()
def staff_notice_pdf():
    n, version, until, current = _notice_asked()
    when = lk().local_time().when
    # When the words were first shown (kept then), not when the settings behind them changed.
    since = "These words were first shown on %s" % when(version.wall_us)
    if until is not None:
        since = "This version was first shown on %s; another was first shown on %s" % (
            when(version.wall_us),
            when(until),
        )
    elif not current:
        since = (
            "This version was first shown on %s; the settings have changed since, and the notice "
            "now says otherwise" % when(version.wall_us)
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
            "For private calls use %s: never recorded." % ", ".join(private)
            if private
            else "Every line may be recorded: there is no private phone.",
        )
    )
    blocks += [
        ("h", "How long recordings are kept"),
        (
            "p",
            n["retention"][:1].upper() + n["retention"][1:] + "."
            if n["retention"]
            else "No retention period is set yet: recordings are kept until deleted by hand.",
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
            "and export is recorded in the audit trail: %s.%s"
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
