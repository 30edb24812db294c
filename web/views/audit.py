"""The audit trail viewer, with the result of checking its hash chain.

Every view of the page is audited (``audit_view``, with its filter and page), as its CSV
copy is (``export_list``); a filter refused shows no entry and writes none.

The page shows the chain's head as ``SEQ:HASH``: written down or copied off
the box, it lets ``linekeeper verify --head`` prove later that nothing up to
it was deleted or rewritten, even by someone who had the card.
"""

import json

from flask import Blueprint, abort, render_template, request

from firmware import words
from firmware.calls.calllog import iso_ms
from firmware.storage.audit import ACTIONS

from ..security import audit, form_errors, lk, roles
from ..site import control_problem
from . import csv_download, page_number
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
    problems, checked_us, checking, failed, since_failed = lk().audit_checked()
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
            checked_us=checked_us,
            checking=checking,
            failed=failed,
            since_failed=since_failed,
            actions=ACTION_LIST,
        )
    entries = log.entries(limit=PAGE + 1, offset=(page - 1) * PAGE, **filters)
    # Reading the trail is itself audited (PCI DSS 10.2.1.3): one entry per page shown,
    # with its filter, after the entries it shows were read (so never among them).
    audit("audit_view", "audit", filter=shown or "all entries", page=page, rows=len(entries[:PAGE]))
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
        checked_us=checked_us,
        checking=checking,
        failed=failed,
        since_failed=since_failed,
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
    ``export_list`` of ``audit``. At most :data:`CSV_MAX_ROWS` entries, those there when
    it is asked for (its own audit entry is not among them).

    Sent as it is read (:func:`web.views.csv_download`): made whole first, 100 000 entries
    were tens of MB of text held three times over (the text, its copy, its bytes), four
    bytes a character with one accented name among them, in a web UI of 384 MiB."""
    log = lk().services.audit
    errors = {}
    filters, shown = _filters(errors)
    if errors:
        abort(400, description="The filter is not valid: " + "; ".join(errors.values()))
    count = min(log.count(**filters), CSV_MAX_ROWS)
    return csv_download(
        "audit.csv",
        CSV_COLUMNS,
        _csv_rows(log, filters, count),
        "audit",
        count=count,
        filter=shown or "all entries",
    )


def _csv_rows(log, filters, count, batch=1000):
    """The first ``count`` entries ``filters`` select, oldest first, as CSV rows."""
    done, seq = 0, 0
    while done < count:
        entries = log.entries(limit=min(batch, count - done), after_seq=seq, **filters)
        if not entries:
            return
        for e in entries:
            yield [
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
        done, seq = done + len(entries), entries[-1].seq
