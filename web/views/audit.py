"""The audit trail viewer, with the result of checking its hash chain.

The page shows the chain's head as ``SEQ:HASH``: written down or copied off
the box, it lets ``linekeeper verify --head`` prove later that nothing up to
it was deleted or rewritten, even by someone who had the card.
"""

from flask import Blueprint, render_template, request

from firmware import words
from firmware.storage.audit import ACTIONS

from ..security import form_errors, lk, roles
from ..site import control_problem
from . import page_number
from .calls import _day_us

bp = Blueprint("audit", __name__)

PAGE = 100
# Every action the trail records, in the order of their words (the filter's list).
ACTION_LIST = sorted(ACTIONS, key=lambda a: words.say("action", a))


@bp.route("/audit")
@roles("auditor")
def index():
    log = lk().services.audit
    action = request.args.get("action") or None
    errors = {}
    page = page_number(errors)
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
    entries = log.entries(
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
        action=action,
        actor=who,
        since_us=since,
        until_us=until,
    )
    return render_template(
        "audit.html",
        errors={},
        entries=entries[:PAGE],
        more=len(entries) > PAGE,
        problems=problems,
        page=page,
        action=action,
        shown=shown,
        head=head,
        actions=ACTION_LIST,
    )
