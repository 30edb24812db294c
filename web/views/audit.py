"""The audit trail viewer, with the result of checking its hash chain.

Every view of the page is audited (``audit_view``, with its filter and page), as its CSV
copy is (``export_list``); a filter refused shows no entry and writes none.

The page shows the chain's head as ``SEQ:HASH``: written down or copied off
the box, it lets ``linekeeper verify --data-dir DIR --head SEQ:HASH`` (the command given
whole, with the box's data folder) prove later that nothing up to it was deleted or
rewritten, even by someone who had the card.

The *Breach scope* page (``/audit/breach-scope``, linked from the audit page) is
``linekeeper breach-scope`` on the web: what one account did over a period
(:func:`firmware.breachscope.scope`), its summary on the page and its CSV to download, each
audited as ``breach_scope`` of the account before anything is read; a form refused (a bad
account name or period, named beside its field) reads and writes nothing.
"""

import logging
import os
import sqlite3

from flask import Blueprint, Response, abort, g, render_template, request

from firmware import words
from firmware.auditcopy import COLUMNS, copy_rows, keys_on_record, signing_key_of
from firmware.breachscope import (
    altered_words,
    config_words,
    csv_text,
    destroyed_words,
    held_words,
    listed_words,
    made_within,
    report_numbers_words,
    reports_words,
    requests_words,
    scope,
    searches_words,
    shown_words,
    summary_lines,
)
from firmware.errors import LinekeeperError, ReportError
from firmware.localtime import iso_to_us
from firmware.sar import MAX_CALLS, SarError, find_calls
from firmware.storage.audit import ACTIONS, CALLS_NAMED_BY
from firmware.typed import control_problem

from ..security import as_sentence, audit, form_errors, lk, roles, sentences
from . import csv_download, csv_within, outside_lines, page_number
from .calls import _day_us

bp = Blueprint("audit", __name__)
logger = logging.getLogger(__name__)

PAGE = 100
# A search by number also finds the entries that named its calls (each names the ids it
# showed in its sealed details: a page of the calls list, at most 50; a report shown or
# downloaded, its callback list's, at most 500), through the trail's index of the calls
# they named (AuditLog.naming_calls), whatever their age. Entries from before that index,
# while the recorder has not yet built it (AuditLog.build_calls_index, at its first start
# after the update), are each read and opened instead: only those written since the
# number's first call began (no entry names a call before it is in the call log; less a
# day, for a clock set right between the call and the look), within the page's other
# filters, and at most this many, newest first, whatever their kind (0.4 to 0.7 s for
# 10 000 sealed pages of the calls list in a trail of a million entries, on the loaded
# development host, 2026-12-07). Older ones are not read, and the page says so.
LISTS_READ_MAX = 10_000
LIST_CLOCK_SLACK_US = 86_400 * 1_000_000
CSV_MAX_ROWS = 100_000
# Each entry as the page shows it, then as the box hashed and signed it, so that the copy is
# checked off the box with `linekeeper verify-audit` (firmware/auditcopy.py).
CSV_COLUMNS = COLUMNS
# Every action the trail records, in the order of their words (the filter's list).
ACTION_LIST = sorted(ACTIONS, key=lambda a: words.say("action", a))


@bp.route("/audit")
@roles("auditor")
def index():
    log = lk().services.audit
    errors = {}
    page = page_number(errors)
    filters, shown, listed = _filters(errors)
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
            data_dir=os.path.abspath(lk().config.data_dir),
            checked_us=checked_us,
            checking=checking,
            failed=failed,
            since_failed=since_failed,
            actions=ACTION_LIST,
            listed={},
            listed_cut_us=None,
            index_pending=0,
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
        # verify needs the box's data folder: the command is given whole, to run on the box.
        data_dir=os.path.abspath(lk().config.data_dir),
        checked_us=checked_us,
        checking=checking,
        failed=failed,
        since_failed=since_failed,
        actions=ACTION_LIST,
        listed=listed["calls"],
        listed_cut_us=listed["cut_us"],
        index_pending=listed["pending"],
        lists_read_max=LISTS_READ_MAX,
    )


def _filters(errors):
    """The query's filters as :meth:`AuditLog.entries` takes them, and those given (for
    links); a bad one is named in ``errors``."""
    action = request.args.get("action") or None
    if action is not None and action not in ACTIONS:
        # A word that is no action (a link cut short) selects nothing: "No entries." said
        # that nothing of the kind was ever done.
        errors["action"] = "Choose an action from the list."
    # Who did it (a user name, or system / cli) and when (days in the box's zone).
    who = " ".join((request.args.get("who") or "").split()) or None
    if who is not None and (len(who) > 64 or control_problem(who)):
        errors["who"] = "Enter a user name (or system, cli), at most 64 characters."
    since = _day_us(request.args.get("from", "").strip(), "from", errors)
    until = _day_us(request.args.get("to", "").strip(), "to", errors, end=True)
    if since is not None and until is not None and until <= since:
        errors["to"] = "The end date is before the start date."
    number = " ".join((request.args.get("number") or "").split()) or None
    listed = {"calls": {}, "cut_us": None, "pending": 0}
    if number is not None:
        targets, or_seqs = _about_number(number, errors, action, who, since, until, listed)
    else:
        targets, or_seqs = None, ()
    shown = {
        "action": action,
        "who": who,
        "number": number,
        "from": request.args.get("from"),
        "to": request.args.get("to"),
    }
    shown = {k: v for k, v in shown.items() if v}
    filters = {"action": action, "actor": who, "since_us": since, "until_us": until}
    if targets is not None:
        filters.update(targets=targets, or_seqs=or_seqs)
    return filters, shown, listed


def _about_number(number, errors, action=None, who=None, since=None, until=None, listed=None):
    """``(targets, seqs)`` of the entries about the calls of ``number`` (in any form, as a
    subject access search finds them): each call's own entries, as its page lists them, the
    releases that named it, and the pages of the calls list and the reports (shown or
    downloaded) that named it (those within the page's other filters, ``action``, ``who``,
    ``since``, ``until``: :meth:`AuditLog.naming_calls`, which fills ``listed``). A number
    that is not one is named in ``errors``."""
    reports = lk().services.reports
    if reports is None:
        errors["number"] = "This box's call log cannot be searched by number."
        return None, ()
    try:
        calls = find_calls(
            reports.calls_db,
            number=number,
            country=reports.country,
            cipher=getattr(reports, "cipher", None),
            outside=outside_lines(),
        )
    except SarError as exc:
        said = str(exc)
        if "calls match" in said:
            said = "That number has more than %d calls: search the Calls page for them instead." % MAX_CALLS
        elif not said.startswith(number):  # the number as typed, a small letter o too
            said = said[:1].upper() + said[1:] + "."
        else:
            said += "."
        errors["number"] = said
        return None, ()
    ids = {c["id"] for c in calls}
    targets = [t for i in sorted(ids) for t in (str(i), "call:%d" % i)]
    log = lk().services.audit
    released, seq = [], 0
    while ids:
        batch = log.entries(limit=1000, action="disclosure", after_seq=seq)
        if not batch:
            break
        released += [e.seq for e in batch if ids.intersection(e.details.get("calls") or ())]
        seq = batch[-1].seq
    kinds = [kind for kind in CALLS_NAMED_BY if action in (None, kind[0])]
    if ids and kinds:
        starts = [iso_to_us(c["started_at"]) for c in calls if c["started_at"]]
        found, cut_us = log.naming_calls(
            ids,
            min(starts) - LIST_CLOCK_SLACK_US if starts else 0,
            LISTS_READ_MAX,
            kinds,
            actor=who,
            since_us=since,
            until_us=until,
        )
        if listed is not None:
            listed.update(calls=found, cut_us=cut_us, pending=log.calls_index_pending())
        released += sorted(found)
    return targets, released


@bp.route("/audit.csv")
@roles("auditor")
def export_csv():
    """The entries the page's filters select, oldest first, as CSV (times in UTC), with
    each entry's hashes, the text they cover and its signature, so a copy can be checked off
    the box (``linekeeper verify-audit``) and against a chain head; audited as
    ``export_list`` of ``audit``: the entries there when it is asked for (its own audit
    entry is not among them). A filter that selects more than :data:`CSV_MAX_ROWS` is
    refused, saying so (:func:`web.views.csv_within`): the oldest of them alone looked like
    all (the whole trail has its own copy, `linekeeper audit-export`, which the refusal names).

    Sent as it is read (:func:`web.views.csv_download`): made whole first, 100 000 entries
    were tens of MB of text held three times over (the text, its copy, its bytes), four
    bytes a character with one accented name among them, in a web UI of 384 MiB."""
    log = lk().services.audit
    errors = {}
    filters, shown, listed = _filters(errors)
    if errors:
        abort(400, description="The filter is not valid: " + sentences(errors.values()))
    if listed["cut_us"] is not None:
        # The copy would leave out the older lists and reports that named the number's calls, unsaid.
        abort(
            400,
            description="More than %d pages of the calls list and reports were shown or downloaded "
            "since this number's first call, and only the newest were searched: choose a shorter "
            "period (from and to), a user or an action" % LISTS_READ_MAX,
        )
    count = log.count(**filters)
    # The whole trail has its own copy, made on the box, whatever its length (docs/evidence.md).
    whole = (
        "For the whole trail in one file, run on the box: linekeeper audit-export trail.csv "
        "--data-dir %s --user %s --password-file FILE (FILE holding your password)."
        % (os.path.abspath(lk().config.data_dir), g.user.name)
    )
    narrow = "Choose a shorter period (from and to), or an action"
    csv_within("entries", count, True, CSV_MAX_ROWS, narrow, whole)
    return csv_download(
        "audit.csv",
        CSV_COLUMNS,
        _csv_rows(lk().services.audit, filters, count, _signing_key()),
        "audit",
        count=count,
        filter=shown or "all entries",
    )


def _signing_key():
    """:func:`firmware.auditcopy.signing_key_of` the box's key and those it took over (the
    key on record; none before the recorder first made one, or when its record is damaged:
    the copy's check then names the entries it cannot check)."""
    try:
        return keys_on_record(lk().config.data_dir)[0]
    except (LinekeeperError, ValueError) as exc:
        logger.warning("the audit copy names no signing key: %s", exc)
        return signing_key_of(None, [])


def _csv_rows(log, filters, count, key_of=None, batch=1000):
    """The first ``count`` entries ``filters`` select, oldest first, as CSV rows."""
    return copy_rows(log, key_of, filters, count=count, batch=batch)


def _breach_form(errors):
    """``(account, period, values)`` of the breach scope's form (the query string); a bad
    field is named in ``errors``. The period is the CLI's: whole days in the box's zone,
    ``to`` included, at most a year (:func:`firmware.reports.period.parse_period`)."""
    values = {k: " ".join((request.args.get(k) or "").split()) for k in ("account", "from", "to")}
    account = values["account"]
    if not account:
        errors["account"] = "Enter the user name of the account to look into."
    elif len(account) > 64 or control_problem(account):
        errors["account"] = "Enter a user name, at most 64 characters, with no control characters."
    elif lk().accounts.get(account) is None and not lk().services.audit.count(actor=account):
        # A mistyped name gave an empty scope ("0 calls looked at") a DPO could pass on.
        errors["account"] = (
            "No account is named %s, and the audit trail has no entry by that name: check the "
            "user name (an account removed since keeps its entries under its name)." % account
        )
    for field, said in (("from", "first"), ("to", "last")):
        if not values[field]:
            errors[field] = "Choose the %s day of the period." % said
    period = None
    reports = lk().services.reports
    if reports is None:
        errors["account"] = "This box's call log cannot be read here: use linekeeper breach-scope on the box."
    elif values["from"] and values["to"]:
        try:
            period = reports.period(values["from"], values["to"])
        except ReportError as exc:
            errors["from" if str(exc).startswith("the from date") else "to"] = as_sentence(exc)
    return account, period, values


def _breach_scope(account, period, values, **more):
    """:func:`firmware.breachscope.scope` of ``account`` over ``period``, audited as
    ``breach_scope`` of the account (with ``more``) before anything is read, and as failed
    (``failed``) when it cannot be read; ``(rows, summary)``, or ``(None, why)``."""
    details = {"account": account, "from": values["from"], "to": values["to"], "via": "web", **more}
    # Before anything is read: a look at who saw what that the trail does not show is never made.
    audit("breach_scope", account, **details)
    reports = lk().services.reports
    try:
        return scope(
            lk().services.audit,
            reports.calls_db,
            account,
            period.start_us,
            period.end_us,
            cipher=getattr(reports, "cipher", None),
            country=reports.country,
            outside=outside_lines(),
        )
    except (LinekeeperError, sqlite3.Error) as exc:
        logger.error("the breach scope of %s could not be read: %s", account, exc)
        audit("breach_scope", account, **dict(details, failed=str(exc)))
        return None, str(exc)


def _accounts():
    """The box's accounts' names, offered in the form (a removed account's entries stay in
    the trail: its name can be typed)."""
    return [u.name for u in lk().accounts.all()]


@bp.route("/audit/breach-scope")
@roles("auditor")
def breach_scope():
    """What one account did over a period, for a personal data breach report: the summary of
    :func:`firmware.breachscope.scope` and a link to its CSV. Without a query, the form."""
    if not any(request.args.get(k) for k in ("account", "from", "to")):
        return render_template(
            "breach_scope.html", errors={}, values={}, summary=None, lines=[], rows=0, accounts=_accounts()
        )
    errors = {}
    account, period, values = _breach_form(errors)
    context = dict(values=values, summary=None, lines=[], rows=0, accounts=_accounts())
    if errors:
        return form_errors("breach_scope.html", errors, **context)
    rows, summary = _breach_scope(account, period, values)
    if rows is None:
        return form_errors(
            "breach_scope.html",
            {"scope": "The trail or the call log could not be read: %s. Nothing was shown." % summary},
            status=503,
            **context,
        )
    made_us = made_within(lk().accounts.created_us(account), period.start_us, rows)
    context.update(
        summary=summary,
        lines=summary_lines(summary, made_us),
        rows=len(rows),
        made_us=made_us,
        held_words=held_words,
        config_words=config_words,
        destroyed_words=destroyed_words,
        altered_words=altered_words,
        reports_words=reports_words,
        shown_words=shown_words,
        listed_words=listed_words,
        report_numbers_words=report_numbers_words,
        requests_words=requests_words,
        searches_words=searches_words,
    )
    return render_template("breach_scope.html", errors={}, **context)


@bp.route("/audit/breach-scope.csv")
@roles("auditor")
def breach_scope_csv():
    """The breach scope's CSV, as ``linekeeper breach-scope`` writes it (one row per call
    per access, per list or report downloaded, per login; spreadsheet-safe), audited as
    ``breach_scope`` with ``download: csv``. A bad query: 400 naming what is wrong."""
    errors = {}
    account, period, values = _breach_form(errors)
    if errors:
        return Response(
            "The breach scope was not made: " + sentences(errors.values()) + "\n",
            status=400,
            mimetype="text/plain",
        )
    rows, summary = _breach_scope(account, period, values, download="csv")
    if rows is None:
        return Response(
            "The breach scope was not made: the trail or the call log could not be read: %s\n" % summary,
            status=503,
            mimetype="text/plain",
        )
    # ASCII alone: a header is sent as ISO-8859-1 (PEP 3333), and the account is typed.
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in account)[:64]
    name = "breach-scope-%s-%s-%s.csv" % (name, period.first.isoformat(), period.last.isoformat())
    return Response(
        csv_text(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="%s"' % name, "Cache-Control": "no-store"},
    )
