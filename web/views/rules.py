"""Recording rules: which calls are recorded, per line (installers edit, auditors read).

The rules are the ``policy.rules`` section of the box's configuration; a save
writes ``config.json``, hands it to the running box and is audited as
``config_change`` with what changed. A bad form changes nothing.
"""

import dataclasses

from flask import Blueprint, g, redirect, render_template, request, url_for

from firmware import words
from firmware.alarmlog import UNOPENED
from firmware.config import rules_sealed
from firmware.policy.settings import MODES, WEEKDAYS
from firmware.storage.fieldseal import FieldSealError, is_sealed
from firmware.update.inbox import on_trial, trial_refusal

from .. import intent, stale
from ..documents import not_connected_lines, private_but_recording
from ..rules_form import form_values, number_rows, parse_pci_form, parse_rules_form, pci_values
from ..security import form_errors, lk, roles
from ..services import CONFIG_SEALED
from .myline import lines_said

bp = Blueprint("rules", __name__)

MODE_LABELS = dict(words.RECORDING_MODES, by_rule="By the rules below")


def _based_on(policy):
    """The fingerprints of the two forms' fields as ``policy`` has them (web/stale.py):
    ``(rules, card payments)``."""
    return (
        stale.fingerprint(form_values(policy.rules, lk().n_lines)),
        stale.fingerprint(pci_values(policy.pci)),
    )


def _lists_not_on_every_call(rules, n_lines):
    """What the page says of the lines that record every call while an exclude list is
    saved: the lists are for the lines recorded by the rules (docs/policy.md, "The
    decision"), so such a line records the calls to the numbers the list names, which an
    installer writing "never record calls to the GP surgery" did not mean. None if none."""
    lines = [n for n in range(1, n_lines + 1) if rules.mode(n) == "always"]
    excluded = [item.name for item in rules.numbers if item.action == "exclude"]
    if not lines or not excluded:
        return None
    by_rule = '"%s"' % MODE_LABELS["by_rule"]
    if len(lines) == 1:
        who, whose = "Line %d records" % lines[0], "its"
    else:
        who = "Lines %s and %d record" % (", ".join(str(n) for n in lines[:-1]), lines[-1])
        whose = "their"
    return (
        "%s every call: the number lists below are for lines set to %s, so %s calls to the "
        "numbers of an exclude list (%s) are recorded. To keep those calls out, set the line to %s."
        % (who, by_rule, whose, ", ".join(excluded), by_rule)
    )


def _closed_all_week(rules, n_lines):
    """What the page says of a saved configuration (``config.json`` or an import; the page
    itself refuses it) whose business hours are on with no day given any: its "by the
    rules" lines record no call at all, and nothing else would tell the installer. None
    if none."""
    lines, later = rules.closed_all_week(n_lines)
    if not lines and not later:
        return None
    who = " and ".join(([lines_said(lines)] if lines else []) + (["lines added later"] if later else []))
    return (
        'Business hours are on and no day has any, so %s, set to "%s", %s no call at all. '
        'Set the hours below, untick "Only inside these hours", or choose another mode.'
        % (who, MODE_LABELS["by_rule"], "record" if len(lines) > 1 or later else "records")
    )


def _page(values, errors, status=200, saved=False, sealed=False):
    web = lk()
    store = web.services.box_config
    saved_config = store.get(leave_sealed=True) if store is not None else None
    # What each form showed when loaded: a save from an older page is refused.
    based_on = _based_on(saved_config.policy) if saved_config is not None else ("", "")
    context = dict(
        based_on=based_on[0],
        pci_based_on=based_on[1],
        values=values,
        saved=saved,
        n_lines=web.n_lines,
        modes=MODES,
        mode_labels=MODE_LABELS,
        weekdays=WEEKDAYS,
        number_rows=number_rows(values),
        available=web.services.box_config is not None,
        editable=g.user.has("installer") and web.services.box_config is not None and not sealed,
        sealed=sealed,
        still_recording=private_but_recording(web),
        closed_all_week=_closed_all_week(saved_config.policy.rules, web.n_lines) if saved_config else None,
        lists_not_on_every_call=(
            _lists_not_on_every_call(saved_config.policy.rules, web.n_lines) if saved_config else None
        ),
        # Its mode is kept for when it is connected again, and the form lets it be changed:
        # beside it, a word that nothing on it is recorded meanwhile, whatever the mode.
        not_connected=not_connected_lines(web),
    )
    if status != 200:
        return form_errors("rules.html", errors, status=status, **context)
    return render_template("rules.html", errors=errors, **context)


def _private_kept(web, old, new):
    """Errors for the lines the site settings made private that ``new`` would record.

    Which lines are private is the business's promise to the people on them (the
    setup wizard and the Settings page ask it, the staff notice prints it): it is
    undone there, deliberately, not as a side effect of the rules."""
    site = web.site.settings()
    if site is None:
        return {}
    return {
        "line-%d-mode" % line.line: (
            "Line %d is private (Settings page): make it recorded there first." % line.line
        )
        for line in site.lines
        if not line.record
        and line.line not in site.not_connected  # never recorded while so, and no private line
        and old.mode(line.line) == "never"
        and new.mode(line.line) != "never"
    }


def _not_on_trial(web, old, new):
    """Errors for the settings the release before refuses in ``config.json`` (the
    personal-call code, an outside-line digit) that ``new`` sets where ``old`` did not,
    while an update is on trial: a rollback would start that release on the file, and its
    recorder would not start (docs/updates.md)."""
    added = new.newly_set_for_release_before(old)
    trial = on_trial(web.config.data_dir) if added else None
    if trial is None:
        return {}
    why = trial_refusal(trial, web.local_time().when)
    message = why[0].upper() + why[1:] + "."
    return {
        "personal-dtmf_code" if what == "personal" else "line-%d-outside_line" % line: message
        for what, line in added
    }


@bp.route("/rules", methods=["GET"])
@roles("installer", "auditor")
def index():
    store = lk().services.box_config
    if store is None:
        return _page({}, {}, saved=request.args.get("saved"))
    config = store.get(leave_sealed=True)
    return _page(
        _saved_values(config.policy), {}, saved=request.args.get("saved"), sealed=rules_sealed(config)
    )


def _saved_values(policy):
    """Both forms' fields as ``policy`` has them (the rules and the card payments); a list's
    numbers still sealed (no key yet) are said to be, never shown."""
    values = dict(form_values(policy.rules, lk().n_lines), **pci_values(policy.pci))
    for i, item in enumerate(policy.rules.numbers):
        if any(is_sealed(p) for p in item.patterns):
            values["numbers-%d-patterns" % i] = UNOPENED
    return values


def _sealed_refused():
    """The page as saved, saying that nothing was saved: the lists of numbers are sealed and
    this process has no key yet (the recorder not started since boot)."""
    config = lk().services.box_config.get(leave_sealed=True)
    return _page(_saved_values(config.policy), {"form": CONFIG_SEALED}, status=503, sealed=True)


@bp.route("/rules", methods=["POST"])
@roles("installer")
def save():
    web = lk()
    store = web.services.box_config
    if store is None:
        return _page({}, {"form": "This box has no configuration to edit."}, status=400)
    try:
        config = store.get()
    except FieldSealError:
        return _sealed_refused()
    policy, errors = parse_rules_form(
        request.form,
        web.n_lines,
        config.policy,
        also=lambda new: {
            **_not_on_trial(web, config.policy.rules, new),
            **_private_kept(web, config.policy.rules, new),
        },
        country=config.country,
    )
    if not errors and policy.rules == config.policy.rules:  # a second click of the same form too
        return redirect(url_for("rules.index", saved=1))
    if stale.changed_since(request.form, _based_on(config.policy)[0]):
        return _page(_saved_values(config.policy), {"form": stale.CHANGED}, status=409)
    if errors:
        values = dict(request.form.to_dict(), **pci_values(config.policy.pci))
        values["direction"] = request.form.getlist("direction")
        return _page(values, errors, status=400)
    old, new = config.policy.to_dict()["rules"], policy.to_dict()["rules"]
    # The personal-call code turned off is left out of the new rules: said as null.
    changed = {k: new.get(k) for k in {**old, **new} if new.get(k) != old.get(k)}
    entry = ("config_change", "policy.rules", {"changed": changed})
    intent.change_file(web, store.path, entry, lambda: store.save(dataclasses.replace(config, policy=policy)))
    return redirect(url_for("rules.index", saved=1))


@bp.route("/rules/card-payments", methods=["POST"])
@roles("installer")
def save_pci():
    """The card-payment settings (PCI DSS): the pause and resume codes, the pause button,
    the pause's time limit and DTMF masking. Audited as ``config_change`` of ``policy.pci``
    with what changed; a bad form changes nothing."""
    web = lk()
    store = web.services.box_config
    if store is None:
        return _page({}, {"form": "This box has no configuration to edit."}, status=400)
    try:
        config = store.get()
    except FieldSealError:
        return _sealed_refused()
    policy, errors = parse_pci_form(request.form, config.policy)
    if not errors and policy.pci == config.policy.pci:  # a second click of the same form too
        return redirect(url_for("rules.index", saved="pci", _anchor="card-payments"))
    if stale.changed_since(request.form, _based_on(config.policy)[1]):
        return _page(_saved_values(config.policy), {"form": stale.CHANGED}, status=409)
    if errors:
        values = dict(form_values(config.policy.rules, web.n_lines), **request.form.to_dict())
        return _page(values, errors, status=400)
    old, new = config.policy.to_dict()["pci"], policy.to_dict()["pci"]
    entry = ("config_change", "policy.pci", {"changed": {k: new[k] for k in new if new[k] != old.get(k)}})
    intent.change_file(web, store.path, entry, lambda: store.save(dataclasses.replace(config, policy=policy)))
    return redirect(url_for("rules.index", saved="pci", _anchor="card-payments"))
