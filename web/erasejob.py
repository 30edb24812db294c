"""Erasing every call of an erasure request's person: what it would do, and the work itself.

:func:`plan_for` says what erasing the calls of a request's person would do, as its page
shows it (:mod:`web.views.erasecalls` has the routes); :func:`start` erases them in a thread
of its own, through the recorder's single-call erasure, and :func:`job_of` says how far it
is. A job is kept in this process only: the request's history says what was started
(``erase_calls``) and, once done, what was erased (``calls_erased``). One started with no
result and not running here was cut off (the box or its web UI restarted while it ran):
:func:`cut_off` says so, how many of its calls still have the caller's details, and which
erased ones the web UI still holds notes or corrected names of.
"""

import logging
import threading

from flask import current_app, g, request

from firmware import rights
from firmware.calls.calllog import ERASED, EXPIRED
from firmware.datadir import connect_readonly
from firmware.errors import LinekeeperError
from firmware.policy.callmeta import held_since
from firmware.sar import search_numbers
from firmware.subjecterase import SubjectEraseError, carry_out, plan

from .security import lk

JOBS = "linekeeper.subject_erasures"

log = logging.getLogger(__name__)


def lines_for(entry):
    """The lines whose calls the user erases for request ``entry``: theirs, or for a request
    about lines, those of them the user holds (as the Subject access links search)."""
    mine = set(g.user.lines)
    return mine & set(entry["lines"]) if entry["lines"] else mine


def offered(entry):
    """Whether request ``entry``'s page offers to erase every call of its person: an open
    erasure request, the user a supervisor, numbers given, a line of theirs, a box that
    erases. Cheap: the calls are not looked for (:func:`plan_for` does that)."""
    if entry["kind"] != "erasure" or entry["status"] in rights.CLOSED or not g.user.has("supervisor"):
        return False
    services = lk().services
    return bool(
        search_numbers(entry["numbers"])
        and lines_for(entry)
        and services.reports is not None
        and services.retention is not None
    )


def plan_for(entry):
    """What erasing the calls of request ``entry``'s person would do (a
    :class:`~firmware.subjecterase.Plan`), or None when the page offers no such erasure
    (:func:`offered`). It opens the number of every call in the call log (the subject
    access search's scan): the page works it out only when the supervisor asks.

    :raises firmware.subjecterase.SubjectEraseError: too many calls for one search
    """
    if not offered(entry):
        return None
    numbers = search_numbers(entry["numbers"])
    lines = lines_for(entry)
    services = lk().services
    reports = services.reports
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
        # As the Subject access search: past a line's outside-line digit (web.views.outside_lines).
        outside=services.box_config.outside_lines() if services.box_config is not None else {},
    )


def cut_off(request_id, history):
    """The erasure of request ``request_id``'s calls that stopped part way: its last
    ``erase_calls`` entry of ``history`` (the request's audit entries, oldest first) with no
    ``calls_erased`` after it, not running in this process (the box or its web UI restarted
    while it ran). ``{"wall_us", "actor", "calls", "remain"}``: ``remain`` how many of its
    ``calls`` still have the caller's details (None: the call log is not at hand); None
    when no erasure stopped so."""
    runs, last_cut = _cut_runs(request_id, history)
    if not last_cut:
        return None
    started = runs[-1]
    calls = _calls_of(started)
    return {
        "wall_us": started.wall_us,
        "actor": started.actor,
        "calls": calls,
        "remain": _remaining(calls)[0],
    }


def notes_left(request_id, history):
    """The calls of the request's erasures cut off (:func:`cut_off`, this one or one run
    again since) that are erased in the call log, whose notes' text or corrected names the
    web UI still holds: cut off between the recorder's step and the web UI's, and not found
    again by a second run (found by the number, erased). Sorted ids."""
    calls = sorted({c for run in _cut_runs(request_id, history)[0] for c in _calls_of(run)})
    return [c for c in _remaining(calls)[1] if _notes_left(c)]


def _cut_runs(request_id, history):
    """``(runs, last)``: the ``erase_calls`` entries of ``history`` with no ``calls_erased``
    before the next start or the end, but for one running in this process; ``last``:
    whether the last of them is the history's last start (no result after it)."""
    runs, started = [], None
    for entry in history:
        event = entry.details.get("event")
        if event == "erase_calls":
            if started is not None:
                runs.append(started)
            started = entry
        elif event == "calls_erased":
            started = None
    job = job_of(request_id)
    last = started is not None and not (job is not None and job["running"])
    if last:
        runs.append(started)
    return runs, last


def _calls_of(entry):
    return [c for c in entry.details.get("calls") or [] if isinstance(c, int) and not isinstance(c, bool)]


def _remaining(call_ids):
    """``(remain, gone)``: how many of ``call_ids`` still have the caller's details in the
    call log (None without one), and those that do not (erased, or removed by retention)."""
    reports = lk().services.reports
    if reports is None or not call_ids:
        return (None if reports is None else 0), []
    db = connect_readonly(reports.calls_db)
    try:
        gone = [
            row[0]
            for row in db.execute(
                "SELECT id FROM calls WHERE id IN (%s) AND absence IN (?, ?) ORDER BY id"
                % ", ".join("?" * len(call_ids)),
                [*call_ids, ERASED, EXPIRED],
            )
        ]
    finally:
        db.close()
    return len(set(call_ids) - set(gone)), gone


def _notes_left(call_id):
    """Whether the web UI still holds a note's text or a corrected name of call ``call_id``
    (its erasure cut off between the recorder's step and the web UI's)."""
    web = lk()
    return (
        any(not n["erased"] for n in web.notes.of_call(call_id)) or web.corrections.left_of_call(call_id) > 0
    )


def _jobs():
    return current_app.extensions.setdefault(JOBS, {})


def _jobs_lock():
    # dict.setdefault is atomic: every request thread gets the one lock.
    return current_app.extensions.setdefault(JOBS + ".lock", threading.Lock())


def job_of(request_id):
    """The erasure of request ``request_id``'s calls running or last run in this process
    (a dict: ``actor``, ``done``, ``total``, ``running``, ``result``), or None."""
    return _jobs().get(request_id)


def start(request_id, planned, token, reason, after_erased, started):
    """Erase ``planned``'s calls in a thread of its own, one by one, as their pages would
    (``after_erased(call)``, in the app's context: what the web UI holds of a call erased,
    its notes' text and corrected names), by the user of this request; the request's
    history gets what was done (``calls_erased``). ``started()`` audits the start once the
    job is known here, so that no page in between takes it for one cut off (:func:`cut_off`);
    it raising, nothing is started.

    :raises SubjectEraseError: the request's calls are being erased already (two
        supervisors confirming at once: the second would erase nothing but refusals)
    """
    app = current_app._get_current_object()
    retention = lk().services.retention
    user, actor, address = g.user, g.user.name, request.remote_addr or ""
    job = {"actor": actor, "done": 0, "total": len(planned.to_erase), "running": True, "result": None}
    with _jobs_lock():
        running = _jobs().get(request_id)
        if running is not None and running["running"]:
            raise SubjectEraseError(
                "the calls of this request are being erased already, started by %s" % running["actor"]
            )
        _jobs()[request_id] = job

    # What the web UI holds of each call goes with it, not once all are done: cut off by a
    # restart, the calls erased keep no notes that a second run (which finds calls by the
    # number, erased) would not find.
    def erase(call_id):
        recordings = retention.erase(call_id, actor, reason, details=True, address=address)
        after_erased({"id": call_id, "line": planned.lines[call_id]})
        return recordings

    def erase_details(call_id):
        retention.erase_details(call_id, actor, reason, address=address)
        after_erased({"id": call_id, "line": planned.lines[call_id]})

    def progress(done, total):
        job["done"] = done

    def work():
        # As the request that started it (its user and address): the web UI's erasure of
        # a call's notes audits as the person logged in, and ran with neither (a call with
        # notes stopped the work, its recording erased, its notes not).
        with app.test_request_context(
            "/requests/%d/erase-calls" % request_id, environ_base={"REMOTE_ADDR": address}
        ):
            g.user = user
            try:
                result = carry_out(
                    planned, token, erase=erase, erase_details=erase_details, progress=progress
                )
                job["result"] = result.words()
                details = {"event": "calls_erased", "calls": result.erased, "recordings": result.recordings}
                if result.refused:
                    details["refused"] = {str(k): v for k, v in result.refused.items()}
            except LinekeeperError as exc:
                job["result"] = "Stopped: %s" % exc
                details = {"event": "calls_erased", "stopped": str(exc)}
            except Exception as exc:  # a fault of the box's: said and kept, never a silent stop
                log.exception("erasing the calls of request %d", request_id)
                job["result"] = "Stopped by a fault of the box's: %s" % exc
                details = {"event": "calls_erased", "stopped": "a fault of the box's: %s" % exc}
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

    try:
        started()
    except BaseException:
        _jobs().pop(request_id, None)
        raise
    threading.Thread(target=work, name="erase-calls-%d" % request_id, daemon=True).start()
