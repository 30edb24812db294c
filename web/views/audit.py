"""The audit trail viewer, with the result of checking its hash chain.

The page shows the chain's head as ``SEQ:HASH``: written down or copied off
the box, it lets ``linekeeper verify --head`` prove later that nothing up to
it was deleted or rewritten, even by someone who had the card.
"""

import io
import json

from flask import Blueprint, Response, abort, render_template, request

from firmware import csvsafe, words
from firmware.calls.calllog import iso_ms
from firmware.storage.audit import ACTIONS

from ..security import audit, form_errors, lk, roles
from ..site import control_problem
from . import page_number
from .calls import _day_us

bp = Blueprint("audit", __name__)

PAGE = 100
CSV_MAX_ROWS = 100_000
CSV_COLUMNS = ("seq", "at", "actor", "action", "what", "about", "details", "prev_hash", "hash")
# Every action the trail records, in the order of their words (the filter's list).
ACTION_LIST = sorted(ACTIONS, key=lambda a: words.say("action", a))


@bp.route("/audit")
@roles("auditor")
def index():
    log = lk().services.audit
    errors = {}
    page = page_number(errors)
    filters, shown = _filters(errors)
    problems = log.verify()
    head = log.head()
    if errors:
        return form_errors(
            "audit.html",
            errors,
            entries=[],
            problems=problems,
            page=1,
            action=None,
            shown={},
            more=False,
            head=head,
            actions=ACTION_LIST,
        )
    entries = log.entries(limit=PAGE + 1, offset=(page - 1) * PAGE, **filters)
    return render_template(
        "audit.html",
        errors={},
        entries=entries[:PAGE],
        more=len(entries) > PAGE,
        problems=problems,
        page=page,
        action=filters["action"],
        shown=shown,
        head=head,
        actions=ACTION_LIST,
    )


def _filters(errors):
    """The query's filters as :meth:`AuditLog.entries` takes them, and those given (for
    links); a bad one is named in ``errors``."""
    action = request.args.get("action") or None
    if action is not None and not action.replace("_", "").isalpha():
        errors["action"] = "Choose an action from the list."
    # Who did it (a user name, or system / cli) and when (days in the box's zone).
    who = " ".join((request.args.get("who") or "").split()) or None
    if who is not None and (len(who) > 64 or control_problem(who)):
        errors["who"] = "Enter a user name (or system, cli), at most 64 characters."
    since = _day_us(request.args.get("from", "").strip(), "from", errors)
    until = _day_us(request.args.get("to", "").strip(), "to", errors, end=True)
    if since is not None and until is not None and until <= since:
        errors["to"] = "The end date is before the start date."
    shown = {"action": action, "who": who, "from": request.args.get("from"), "to": request.args.get("to")}
    shown = {k: v for k, v in shown.items() if v}
    return {"action": action, "actor": who, "since_us": since, "until_us": until}, shown


@bp.route("/audit.csv")
@roles("auditor")
def export_csv():
    """The entries the page's filters select, oldest first, as CSV (times in UTC), with
    each entry's hashes so a copy can be checked against a chain head; audited as
    ``export_list`` of ``audit``. At most :data:`CSV_MAX_ROWS` entries."""
    log = lk().services.audit
    errors = {}
    filters, shown = _filters(errors)
    if errors:
        abort(400, description="The filter is not valid: " + "; ".join(errors.values()))
    out = io.StringIO()
    writer = csvsafe.Writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    while rows < CSV_MAX_ROWS:
        batch = log.entries(limit=min(1000, CSV_MAX_ROWS - rows), offset=rows, newest_first=False, **filters)
        for e in batch:
            writer.writerow(
                [
                    e.seq,
                    iso_ms(e.wall_us),
                    e.actor,
                    e.action,
                    words.say("action", e.action),
                    e.target or "",
                    json.dumps(e.details, sort_keys=True, ensure_ascii=False),
                    e.prev_hash,
                    e.hash,
                ]
            )
        rows += len(batch)
        if len(batch) < 1000:
            break
    audit("export_list", "audit", filter=shown or "all entries", rows=rows)
    return Response(
        out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=audit.csv"}
    )
