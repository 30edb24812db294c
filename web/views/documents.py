"""Documents made from the configuration, always current: the compliance checklist and the staff
notice (with what callers are told), in HTML and PDF.

The checklist is for installers and auditors (it shows the box's weak
points); the staff notice is for every logged-in user, since it is what
staff are owed.
"""

from flask import Blueprint, Response, render_template

from firmware.compliance import checklist, recorded
from firmware.reports.docpdf import document_pdf

from ..documents import box_state, staff_notice
from ..security import lk, roles

bp = Blueprint("documents", __name__)


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
    return render_template("staff_notice.html", n=staff_notice(lk()), archive_words=ARCHIVE_WORDS)


# Who else may listen when recordings are copied to the organisation's archive.
ARCHIVE_WORDS = (
    "Recordings are also copied to the organisation's archive, where the supervisors of its "
    "archive viewer, with the organisation's key, may play them; that too is recorded."
)


@bp.route("/documents/staff-notice.pdf")
@roles()
def staff_notice_pdf():
    return _pdf(
        "staff-notice.pdf",
        document_pdf("Call recording: a notice to staff", notice_blocks(staff_notice(lk()))),
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
