"""Erasing every call of an erasure request's person at once, from the request's page.

The request's page (an open erasure request, to a supervisor, with the person's numbers)
shows what erasing their calls would do (:func:`plan_for`: the calls found by their
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

import threading

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from firmware import rights
from firmware.datadir import connect_readonly
from firmware.errors import LinekeeperError
from firmware.policy.callmeta import held_since
from firmware.sar import search_numbers
from firmware.subjecterase import SubjectEraseError, carry_out, plan

from ..security import audit, lk, roles
from ..site import given_reason
from . import outside_lines

bp = Blueprint("erasecalls", __name__)
JOBS = "linekeeper.subject_erasures"


def lines_for(entry):
    """The lines whose calls the user erases for request ``entry``: theirs, or for a request
    about lines, those of them the user holds (as the Subject access links search)."""
    mine = set(g.user.lines)
    return mine & set(entry["lines"]) if entry["lines"] else mine


def plan_for(entry):
    """What erasing the calls of request ``entry``'s person would do (a
    :class:`~firmware.subjecterase.Plan`), or None when the page offers no such erasure:
    not an open erasure request, the user not a supervisor, no number given, no line."""
    if entry["kind"] != "erasure" or entry["status"] in rights.CLOSED or not g.user.has("supervisor"):
        return None
    numbers = search_numbers(entry["numbers"])
    lines = lines_for(entry)
    reports = lk().services.reports
    if not numbers or not lines or reports is None or lk().services.retention is None:
        return None
    db = connect_readonly(reports.calls_db)
    try:
        holds = held_since(db)
    finally:
        db.close()
    return plan(
        reports.calls_db,
        numbers,
        lines=lines,
        holds=holds,
        country=reports.country,
        cipher=getattr(reports, "cipher", None),
        outside=outside_lines(),
    )


def _jobs():
    return current_app.extensions.setdefault(JOBS, {})


def job_of(request_id):
    """The erasure of request ``request_id``'s calls running or last run in this process
    (a dict: ``actor``, ``done``, ``total``, ``running``, ``result``), or None."""
    return _jobs().get(request_id)


@bp.route("/requests/<int:request_id>/erase-calls", methods=["POST"])
@roles("supervisor")
def start(request_id):
    """Erase every call of the request's person, as the page's count said (see the module)."""
    from .rights import _detail, _request_or_404

    entry = _request_or_404(request_id, act=True)
    errors = {}
    reason, problem = given_reason(
        "erase_reason", "erased", "erasure request #%d" % request_id, "these calls are"
    )
    if problem:
        errors["erase_reason"] = problem
    elif request.form.get("confirm") != "yes":
        errors["erase_confirm"] = "Tick the box to confirm: erased recordings cannot be brought back."
    job = job_of(request_id)
    if job is not None and job["running"]:
        errors["erase_calls"] = "The calls of this request are being erased already: see how far it is below."
    try:
        planned = plan_for(entry)
    except SubjectEraseError as exc:
        errors["erase_calls"] = "%s; nothing was erased." % exc
        planned = None
    if planned is None and not errors:
        errors["erase_calls"] = (
            "This request's calls cannot be erased from here: an open erasure request with the "
            "person's numbers, on your lines, is needed; nothing was erased."
        )
    if errors:
        return _detail(request_id, errors, 400)
    token = (request.form.get("token") or "").strip()
    if token != planned.token:
        return _detail(
            request_id,
            {
                "erase_calls": "The calls found have changed since the page was shown (a new call, a "
                "hold placed or released): check the count below and confirm again; nothing was erased."
            },
            409,
        )
    if not planned.to_erase:
        return _detail(request_id, {"erase_calls": planned.words()}, 409)
    _audit(
        request_id,
        {"event": "erase_calls", "reason": reason, "calls": planned.to_erase, "held": planned.held},
    )
    _run(request_id, planned, token, reason)
    return redirect(url_for("erasecalls.progress", request_id=request_id))


def _audit(request_id, details):
    audit("data_request", "request:%d" % request_id, **details)


def _run(request_id, planned, token, reason):
    """Erase ``planned``'s calls in a thread of its own, one by one, as their pages would."""
    from .calls import _erase_notes

    app = current_app._get_current_object()
    retention = lk().services.retention
    actor, address = g.user.name, request.remote_addr or ""
    job = {"actor": actor, "done": 0, "total": len(planned.to_erase), "running": True, "result": None}
    _jobs()[request_id] = job

    def erase(call_id):
        return retention.erase(call_id, actor, reason, details=True, address=address)

    def erase_details(call_id):
        retention.erase_details(call_id, actor, reason, address=address)

    def progress(done, total):
        job["done"] = done

    def work():
        with app.app_context():
            try:
                result = carry_out(
                    planned, token, erase=erase, erase_details=erase_details, progress=progress
                )
                for call_id in result.erased:
                    # The notes' text and corrected names of web.db go too, as from the call's page.
                    _erase_notes({"id": call_id, "line": planned.lines[call_id]})
                job["result"] = result.words()
                details = {"event": "calls_erased", "calls": result.erased, "recordings": result.recordings}
                if result.refused:
                    details["refused"] = {str(k): v for k, v in result.refused.items()}
            except LinekeeperError as exc:
                job["result"] = "Stopped: %s" % exc
                details = {"event": "calls_erased", "stopped": str(exc)}
            finally:
                job["running"] = False
            web = lk()
            web.services.audit.append(
                actor,
                "data_request",
                "request:%d" % request_id,
                dict(details, address=address),
                int(web.services.wall_us()),
            )

    threading.Thread(target=work, name="erase-calls-%d" % request_id, daemon=True).start()


@bp.route("/requests/<int:request_id>/erase-calls")
@roles("supervisor")
def progress(request_id):
    """How far the erasure of the request's calls is (the page reloads itself until done)."""
    from .rights import _request_or_404

    entry = _request_or_404(request_id, act=True)
    job = job_of(request_id)
    if job is None:
        abort(404)
    return render_template("erase_calls.html", r=entry, job=job)
