"""Retention: periods and their preview, the clock guard, the deletion log.

Installers edit; auditors read. The preview counts what a sweep would delete
now with the same selection the sweep uses, so "this rule deletes N calls
now" is what the next sweep deletes (if nothing changes meanwhile). Every
change is audited as ``config_change``.
"""

import dataclasses
import os
import sqlite3

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from firmware.calls.calllog import details_preview, iso_ms
from firmware.datadir import connect_readonly
from firmware.errors import LinekeeperError
from firmware.keybackup import copy_statement
from firmware.policy import deletions
from firmware.policy.retention import DAY_US, DEFAULT_RULE
from firmware.rightsretention import RegisterRetention
from firmware.signing import SigningKeyError, load_signer, run_dir
from firmware.storage.fieldseal import FieldSealError

from .. import intent, stale
from ..retention_form import form_values, parse_retention_form, rows
from ..security import audit, form_errors, lk, roles, sentences
from ..services import CONFIG_SEALED
from . import csv_download, csv_stopped, page_number, signed_csv_zip
from .calls import _day_us

bp = Blueprint("retention", __name__)

PAGE = 100
DELETION_COLUMNS = deletions.FIELDS + ("prev_hash", "hash")


def _service():
    return lk().services.retention


def _current():
    """The retention settings in force: the saved configuration's, else the sweeper's."""
    store = lk().services.box_config
    if store is not None:
        return store.get(leave_sealed=True).policy.retention
    svc = _service()
    return None if svc is None else svc.settings


def _summary(settings):
    """Per rule (and the default): what it applies to, its period, what it deletes now."""
    svc = _service()
    doomed = svc.preview(settings=settings) if svc is not None else []
    held = svc.held(settings=settings) if svc is not None else []
    counts = svc.counts(doomed) if svc is not None else {}
    site = lk().site.settings()
    names = {x.line: x.name for x in site.lines} if site is not None else {}
    lines = [
        {"name": r.name, "applies": r.describe(names), "days": r.days, "deletes": counts.get(r.name, 0)}
        for r in settings.rules
    ]
    lines.append(
        {
            "name": DEFAULT_RULE,
            "applies": "every call no rule above matches",
            "days": settings.default_days,
            "deletes": counts.get(DEFAULT_RULE, 0),
        }
    )
    return {
        "rules": lines,
        "total": len(doomed),
        "held": len(held),
        "requests": _register(settings),
        "details": _details(settings),
    }


def _register(settings):
    """``{"days", "deletes", "held"}``: the register of requests' period and what a sweep
    now would delete of it (closed requests past it) and keep for a legal hold."""
    web = lk()
    tags = web.services.call_tags
    held = getattr(tags, "held_calls", None)
    register = RegisterRetention(
        web.config.data_dir, zone=lambda: web.local_time().zone_name, held_calls=held
    )
    doomed, kept = register.preview(int(web.services.wall_us()), settings.requests_closed_days)
    return {"days": settings.requests_closed_days, "deletes": len(doomed), "held": len(kept)}


def _details(settings):
    """``{"days", "removes", "waiting"}``: the callers' details period and what a sweep now
    would remove of them, and how many calls wait for their recording or a legal hold;
    None when no period is set or the call log cannot be read."""
    days = settings.call_details_days
    if days is None:
        return None
    web = lk()
    try:
        db = connect_readonly(os.path.join(web.config.data_dir, "calls.db"))
    except LinekeeperError:
        return None
    try:
        removes, waiting = details_preview(db, int(web.services.wall_us()) - days * DAY_US)
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return {"days": days, "removes": removes, "waiting": waiting}


def _categories(settings):
    """The categories to pick from: the tags on calls, and those the settings name already."""
    calls = lk().services.calls
    found = set(calls.tags_in_use()) if hasattr(calls, "tags_in_use") else set()
    if settings is not None:
        found.update(r.category for r in settings.rules if getattr(r, "category", None))
        found.update(getattr(settings, "minimum_days", {}) or {})
    return sorted(found)


def _based_on(settings):
    """The fingerprint of the form's fields as ``settings`` has them (web/stale.py)."""
    return stale.fingerprint(form_values(settings)) if settings is not None else ""


def _page(settings, values, errors, status=200, previewing=False, saved=False):
    svc = _service()
    context = dict(
        values=values,
        # What the form showed when loaded; a form sent back (a preview, a mistake) keeps
        # what it was loaded with, so a save from it is checked against that.
        based_on=values.get(stale.FIELD) or _based_on(_current()),
        errors=errors,
        previewing=previewing,
        saved=saved,
        summary=_summary(settings) if settings is not None else None,
        settings=settings,
        available=svc is not None and settings is not None,
        rule_rows=rows(values, "rule"),
        minimum_rows=rows(values, "minimum"),
        suspended=svc.guard.suspended if svc is not None else None,
        last_passed_us=svc.guard.last_passed_us if svc is not None else None,
        disk_percent=getattr(svc, "last_disk_percent", None),
        alarms=svc.active_alarms() if svc is not None else [],
        now_us=lk().services.wall_us(),
        categories=_categories(settings),
        n_lines=lk().n_lines,
        editable=g.user.has("installer") and lk().services.box_config is not None,
    )
    if status != 200:
        return form_errors(
            "retention.html", errors, status=status, **{k: v for k, v in context.items() if k != "errors"}
        )
    return render_template("retention.html", **context)


@bp.route("/retention", methods=["GET"])
@roles("installer", "auditor")
def index():
    settings = _current()
    values = form_values(settings) if settings is not None else {}
    return _page(settings, values, {}, saved=bool(request.args.get("saved")))


@bp.route("/retention", methods=["POST"])
@roles("installer")
def save():
    web = lk()
    store = web.services.box_config
    if store is None:
        return _page(None, {}, {"form": "This box has no configuration to edit."}, status=400)
    proposed, errors = parse_retention_form(request.form, lk().n_lines)
    if request.form.get("action") == "preview":  # saves nothing: a stale page may preview
        if errors:
            return _page(_current(), request.form, errors, status=400)
        return _page(proposed, request.form, {}, previewing=True)
    try:
        config = store.get()
    except FieldSealError:
        return _page(_current(), request.form, {"form": CONFIG_SEALED}, status=503)
    before = config.policy.retention
    if not errors and proposed == before:  # nothing to save: a second click of the same form too
        return redirect(url_for("retention.index", saved=1))
    # Stale before wrong, as the Settings and Rules forms: a mistake corrected on a page
    # loaded before another installer saved would only then be refused as stale, the
    # correction typed for nothing.
    if stale.changed_since(request.form, _based_on(before)):
        return _page(before, form_values(before), {"form": stale.CHANGED}, status=409)
    if errors:
        return _page(before, request.form, errors, status=400)
    new_config = dataclasses.replace(config, policy=dataclasses.replace(config.policy, retention=proposed))
    old, new = before.to_dict(), proposed.to_dict()
    # to_dict leaves out a setting at its default (an older release reads the file): the
    # change is still said, back to the default too.
    old.setdefault("requests_closed_days", before.requests_closed_days)
    new.setdefault("requests_closed_days", proposed.requests_closed_days)
    old.setdefault("call_details_days", before.call_details_days)
    new.setdefault("call_details_days", proposed.call_details_days)
    entry = (
        "config_change",
        "policy.retention",
        {"changed": {k: new[k] for k in new if new[k] != old.get(k)}},
    )
    intent.change_file(web, store.path, entry, lambda: store.save(new_config))
    return redirect(url_for("retention.index", saved=1))


@bp.route("/retention/clock", methods=["POST"])
@roles("installer")
def confirm_clock():
    svc = _service()
    if svc is None or svc.guard.suspended is None:
        return redirect(url_for("retention.index"))
    if request.form.get("confirm") != "yes":
        settings = _current()
        return _page(
            settings,
            form_values(settings),
            {"clock": "Tick the box to confirm that the time shown is right."},
            status=400,
        )
    # The address, as every other action from a page carries it (web.security.audit).
    svc.confirm_clock(g.user.name, address=request.remote_addr or "")
    return redirect(url_for("retention.index"))


@bp.route("/retention/deletions")
@roles("installer", "auditor")
def deletions():
    svc = _service()
    errors = {}
    page = page_number(errors)
    if svc is None:
        return render_template(
            "deletions.html",
            errors=errors,
            entries=[],
            problems=[],
            page=1,
            more=False,
            total=0,
            available=False,
        )
    problems, checked_us, checking, failed, since_failed = lk().deletions_checked()
    entries = svc.deletion_log(limit=PAGE + 1, offset=(page - 1) * PAGE)
    status = 400 if errors else 200
    return render_template(
        "deletions.html",
        errors=errors,
        entries=entries[:PAGE],
        more=len(entries) > PAGE,
        problems=problems,
        page=page,
        total=svc.deletion_count(),
        checked_us=checked_us,
        checking=checking,
        failed=failed,
        since_failed=since_failed,
        available=True,
    ), status


@bp.route("/retention/deletions.csv")
@roles("installer", "auditor")
def deletions_csv():
    """The deletion log, oldest first, as CSV (times in UTC), each entry with its hashes
    so a copy can be checked as the log is; audited as ``export_list`` of ``deletions``
    with the filter. The entries there when it is asked for: one appended meanwhile waits
    for the next copy.

    ``from`` and ``to`` (days, in the box's zone as the audit page's filter, either may be
    left out) keep the entries deleted from the start of the one to the end of the other:
    the whole log of a box four years in service is 190 MB, and an auditor wants a month.
    Each row keeps its previous hash as the log has it: the first row's is that of the
    entry before the period."""
    svc = _service()
    if svc is None:
        abort(404)
    since, until, shown = _period()
    count = svc.deletion_count(since_us=since, until_us=until)
    rows = _deletion_rows(svc, count, since_us=since, until_us=until)
    return csv_download(
        _csv_name(shown), DELETION_COLUMNS, rows, "deletions", count=count, filter=shown or "all entries"
    )


@bp.route("/retention/deletions.zip")
@roles("installer", "auditor")
def deletions_zip():
    """The deletion log's CSV as :func:`deletions_csv` makes it (``from`` and ``to`` too),
    in a zip with the box's signed statement of it beside it (``FILE.csv.statement.json``,
    :func:`firmware.keybackup.copy_statement`): the SHA-256 of the CSV, how many entries it
    holds, the first and last and the last one's hash, the period, the log's head then,
    and the audit entry of the download. ``linekeeper verify-statement`` checks it and the
    CSV off the box with only the box's fingerprint: an edited copy no longer verifies.

    Audited first, as the CSV is, as ``export_list`` of ``deletions``, with ``signed``: the
    key that signs it. Refused (503, nothing audited) when this process cannot sign; a copy
    whose reading fails part way ends with the CSV's row saying so, and has no statement."""
    svc = _service()
    if svc is None:
        abort(404)
    since, until, shown = _period()
    web = lk()
    try:
        signer = load_signer(web.config.data_dir, run_dir=run_dir(), create=False)
    except (SigningKeyError, OSError) as exc:
        abort(
            503,
            description="The box cannot sign a copy of the deletion log now (%s). The CSV without "
            "a signature can still be downloaded." % exc,
        )
    count = svc.deletion_count(since_us=since, until_us=until)
    newest = svc.deletion_log(limit=1)
    head = {"seq": newest[0]["seq"], "hash": newest[0]["hash"]} if newest else {"seq": 0, "hash": ""}
    entry = audit(
        "export_list", "deletions", rows=count, filter=shown or "all entries", signed=signer.fingerprint
    )
    actor, wall_us, data_dir = g.user.name, int(web.services.wall_us()), web.config.data_dir
    seen = {"entries": 0, "first_seq": None, "last_seq": None, "last_hash": None}

    def tracked():
        for row in _deletion_rows(svc, count, since_us=since, until_us=until):
            seen["entries"] += 1
            if seen["first_seq"] is None:
                seen["first_seq"] = row[0]
            seen["last_seq"], seen["last_hash"] = row[0], row[-1]
            yield row

    def statement(digest):
        details = dict(seen, log="deletions", period=shown or None, head=head, audit_seq=entry.seq)
        return copy_statement(signer, data_dir, actor, wall_us, digest, details)[0]

    name = _csv_name(shown)
    body = signed_csv_zip(
        name, DELETION_COLUMNS, tracked(), csv_stopped("deletions", count), statement, wall_us
    )
    return Response(
        body,
        mimetype="application/zip",
        headers={"Content-Disposition": "attachment; filename=%s.zip" % name[: -len(".csv")]},
    )


def _period():
    """``(since_us, until_us, shown)`` of the CSV's ``from`` and ``to`` (see
    :func:`deletions_csv`); 400 naming what is wrong with them."""
    errors = {}
    since = _day_us(request.args.get("from", "").strip(), "from", errors)
    until = _day_us(request.args.get("to", "").strip(), "to", errors, end=True)
    if since is not None and until is not None and until <= since:
        errors["to"] = "The end date is before the start date."
    if errors:
        abort(400, description="The dates are not valid: " + sentences(errors.values()))
    shown = {k: request.args.get(k, "").strip() for k in ("from", "to")}
    return since, until, {k: v for k, v in shown.items() if v}


def _csv_name(shown):
    return "deletions%s.csv" % "".join("_%s_%s" % (k, v) for k, v in shown.items())


def _deletion_rows(svc, count, batch=1000, since_us=None, until_us=None):
    """The first ``count`` entries of the log (deleted from ``since_us`` to before
    ``until_us``), oldest first, as CSV rows, read a batch at a time as they are sent."""
    seq, left = 0, count
    while left > 0:
        entries = svc.deletion_log(
            limit=min(batch, left), after_seq=seq, since_us=since_us, until_us=until_us
        )
        if not entries:
            return
        for e in entries:
            yield [
                e["seq"],
                iso_ms(e["deleted_at"]),
                e["reason"],
                e["rule"],
                e["recording_id"],
                e["call_id"],
                e["line"],
                e["direction"] or "",
                ", ".join(e["categories"]),
                e["call_date"] or "",
                e["duration_s"],
                e["bytes"],
                e["file_sha256"] or "",
                e["prev_hash"],
                e["hash"],
            ]
        seq, left = entries[-1]["seq"], left - len(entries)
