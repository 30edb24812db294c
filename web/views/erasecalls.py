"""Erasing every call of an erasure request's person at once, from the request's page.

The request's page (an open erasure request, to a supervisor, with the person's numbers)
offers *Find their calls*; asked (``?find_calls=1``: it reads every call's sealed number,
too slow for every view of a page shown after each change), it shows what erasing their
calls would do (:func:`plan_for`: the calls found by their
numbers as the Subject access search finds them, on the lines the supervisor may act on;
how many recordings; the calls on legal hold or still being recorded, skipped and named).
The supervisor gives the reason and ticks to confirm; the count they confirmed travels
with the form (its :attr:`~firmware.subjecterase.Plan.token`), and the erasure is refused
whole, nothing erased, when the calls found have changed since. Each call is erased
through the call page's own erasure (the recorder's ``erase`` with the caller's details,
``erase_details`` for a call with no recording, then the notes' text and corrected names
of web.db), so each is audited and deletion-logged as one erased from its page; the
request's history says it was started and what it did (``data_request``, events
``erase_calls`` and ``calls_erased``). The work runs in a thread of its own; its page
(``GET /requests/N/erase-calls``) shows how far it is.
"""

from flask import Blueprint, redirect, render_template, request, url_for

from firmware.subjecterase import SubjectEraseError

from .. import erasejob
from ..security import audit, roles
from ..site import given_reason
from .calls import _erase_notes
from .rights import _detail, _request_or_404

bp = Blueprint("erasecalls", __name__)


@bp.route("/requests/<int:request_id>/erase-calls", methods=["POST"])
@roles("supervisor")
def start(request_id):
    """Erase every call of the request's person, as the page's count said (see the module)."""
    entry = _request_or_404(request_id, act=True)
    errors = {}
    reason, problem = given_reason(
        "erase_reason", "erased", "erasure request #%d" % request_id, "these calls are"
    )
    if problem:
        errors["erase_reason"] = problem
    elif request.form.get("confirm") != "yes":
        errors["erase_confirm"] = "Tick the box to confirm: erased recordings cannot be brought back."
    job = erasejob.job_of(request_id)
    if job is not None and job["running"]:
        errors["erase_calls"] = (
            "The calls of this request are being erased already (see how far it is: the link above); "
            "nothing more was started."
        )
    try:
        planned = erasejob.plan_for(entry)
    except SubjectEraseError as exc:
        errors["erase_calls"] = "%s; nothing was erased." % exc
        planned = None
    if planned is None and not errors:
        errors["erase_calls"] = (
            "This request's calls cannot be erased from here: an open erasure request with the "
            "person's numbers, on your lines, is needed; nothing was erased."
        )
    if errors:
        return _detail(request_id, errors, 400, erase_plan=planned)
    token = (request.form.get("token") or "").strip()
    if token != planned.token:
        return _detail(
            request_id,
            {
                "erase_calls": "The calls found have changed since the page was shown (a new call, a "
                "hold placed or released): check the count below and confirm again; nothing was erased."
            },
            409,
            erase_plan=planned,
        )
    if not planned.to_erase:
        return _detail(request_id, {"erase_calls": planned.words()}, 409, erase_plan=planned)
    details = {"event": "erase_calls", "reason": reason, "calls": planned.to_erase, "held": planned.held}
    try:
        erasejob.start(request_id, planned, token, reason, _erase_notes, lambda: _audit(request_id, details))
    except SubjectEraseError as exc:  # another supervisor's, started since the check above
        return _detail(request_id, {"erase_calls": "%s; nothing more was started." % exc}, 409)
    return redirect(url_for("erasecalls.progress", request_id=request_id))


def _audit(request_id, details):
    audit("data_request", "request:%d" % request_id, **details)


@bp.route("/requests/<int:request_id>/erase-calls")
@roles("supervisor")
def progress(request_id):
    """How far the erasure of the request's calls is (the page reloads itself until done).
    None running or run since the web UI started: the request's page, which says whether
    one stopped part way."""
    entry = _request_or_404(request_id, act=True)
    job = erasejob.job_of(request_id)
    if job is None:
        return redirect(url_for("rights.detail", request_id=request_id, _anchor="erase-calls"))
    return render_template("erase_calls.html", r=entry, job=job)
