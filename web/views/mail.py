"""E-mail settings (installers): the SMTP server, alarm recipients, report schedules, a test mail.

The password is write-only: the page says whether one is set, never shows
it, and an empty password field keeps the stored one. Saving is audited as
``config_change`` (target ``mail``, without the password); a test e-mail is
sent at once, not queued, so its failure is shown with the server's reason.

An alarm recipient written ``address (account)`` is tied to that web account: it
gets the alarms of the lines the account sees on the pages, as well as the whole
box's; one tied to no account gets every alarm, as an installer sees them
(:func:`firmware.mail.alarms.recipients_for`). The page lists what each recipient
gets, and any line whose alarms no recipient may read (every address tied to an
account that does not see it: :func:`firmware.mail.alarms.unreached_lines`); a list
that leaves a line so is refused, naming it. Accounts change on the Users page
afterwards, so the page (and the checklist, and the Users page after the change) says so
of the saved list too: such a
line's alarms are then mailed to every recipient, without their details.

A scheduled report's recipients are addresses alone: its report is the whole box's, of
every line, and tying an address to an account would not limit it, so one written
``address (account)`` is refused, saying so (docs/reports.md, E-mail).
"""

import dataclasses
import hmac
import re

from flask import Blueprint, redirect, render_template, request, url_for

from firmware.alarms import ALARM_ROLES
from firmware.errors import ConfigError, LinekeeperError
from firmware.mail.alarms import unreached_lines
from firmware.mail.settings import EVERY, SECURITY, MailSettings, Schedule
from firmware.mail.settings import password_problem as mail_password_problem

from .. import intent, stale
from ..documents import lines_words, not_connected_lines
from ..security import alarm_lines, audit, form_errors, lk, roles, whole_number

bp = Blueprint("mail", __name__)


def _service():
    from flask import abort

    svc = lk().services.mail
    if svc is None:
        abort(404)
    return svc


def _addresses(text):
    return tuple(a.strip() for a in (text or "").replace(";", ",").split(",") if a.strip())


# An alarm recipient tied to an account: "sam@example.com (sam)".
_TIED = re.compile(r"^(?P<address>[^()]*?)\s*\((?P<account>[^()]*)\)$")


# A report recipient written as a tied alarm recipient is: a report is the whole box's.
_SCHEDULE_TIED = (
    '"%s": a scheduled report is not tied to an account, as it is the whole box\'s, of every '
    "line, whoever gets it. Write the address alone, for someone who may see every line; a "
    "supervisor reads their own lines' report on the Reports page."
)


def _recipients(text):
    """``(addresses, ((address, account), ...))`` from the alarm recipients' field."""
    addresses, tied = [], []
    for entry in _addresses(text):
        m = _TIED.match(entry)
        address = m.group("address").strip() if m else entry
        addresses.append(address)
        if m:
            # The account's name as login takes it ("Sam" is sam's): names are lowercase.
            tied.append((address, m.group("account").strip().lower()))
    return tuple(addresses), tuple(tied)


def _named_twice(addresses):
    """The first of ``addresses`` that an earlier one names already, in any case, or None."""
    seen = set()
    for address in addresses:
        if address.lower() in seen:
            return address
        seen.add(address.lower())
    return None


def _recipients_text(settings):
    tied = dict(settings.alarm_accounts)
    return ", ".join("%s (%s)" % (a, tied[a]) if a in tied else a for a in settings.alarm_to)


def _account_problem(name):
    """Why an alarm recipient cannot be tied to account ``name``, or None."""
    user = lk().accounts.get(name)
    if user is None:
        return 'There is no account "%s": tie the address to an existing account, or to none.' % name
    if not user.has(*ALARM_ROLES):
        return (
            '"%s" sees no alarms (a staff account): tie the address to an installer\'s, a '
            "supervisor's or an auditor's account, or to none." % name
        )
    return None


def _reach(settings):
    """``[(recipient, what it gets)]``: the alarms each alarm recipient is mailed."""
    tied = dict(settings.alarm_accounts)
    out = []
    for address in settings.alarm_to:
        name = tied.get(address)
        user = lk().accounts.get(name) if name else None
        if name is None:
            said = "every alarm, of the whole box and of every line (tied to no account)"
        elif user is not None and user.disabled_us is not None:
            # As a deleted account's: a leaver's address gets no line's details.
            said = (
                "the whole box's alarms only (%s is disabled: a line's alarms again once an "
                "installer enables it)" % name
            )
        elif user is None or not user.has(*ALARM_ROLES):
            said = 'the whole box\'s alarms only ("%s" is not an account that sees alarms now)' % name
        else:
            lines = alarm_lines(user)
            if len(lines) == lk().n_lines:
                said = "every alarm, of the whole box and of every line (%s)" % name
            elif lines:
                said = "the whole box's alarms and those of %s (%s)" % (lines_words(lines), name)
            else:
                said = "the whole box's alarms only (%s has no line yet)" % name
        out.append((address, said))
    return out


def _unreached(settings):
    """The lines whose alarms no alarm recipient of ``settings`` may read, as the accounts are
    now; a line marked not connected is none of them, as on the checklist: nothing is plugged
    into its socket, its faults raise no alarm, and a call seen on it after all is mailed to
    every recipient, without its details, as any line's alarm with no recipient."""
    unplugged = not_connected_lines(lk())
    return tuple(
        n for n in unreached_lines(settings, lk().accounts.lines(), lk().n_lines) if n not in unplugged
    )


def _unreached_words(lines, saved, users_page=False):
    """What the page says of ``lines``, whose alarms no recipient may read: of a list being
    saved (refused), or of the ``saved`` one (an account changed since); ``users_page``:
    as the Users page says it after such a change, pointing here to mend it."""
    it = "it" if len(lines) == 1 else "them"
    if saved:
        said = (
            "No alarm recipient gets the alarms of %s: every address is tied to an account that "
            "does not see %s now (changed or removed on the Users page since the list was saved). "
            "Until one does, they are mailed to every recipient, without their details, saying why. "
            "To mend it" % (lines_words(lines), it)
        )
    else:
        said = (
            "No alarm recipient would be mailed the alarms of %s: every address is tied to an "
            "account that does not see %s. To save" % (lines_words(lines), it)
        )
    where = "on the E-mail page " if users_page else ""
    return (
        "%s, %stie an address to an account that sees %s (an installer's or an auditor's sees every "
        "line), or add an address tied to no account." % (said, where, it)
    )


def _values(settings):
    values = {
        "host": settings.host,
        "port": str(settings.port),
        "security": settings.security,
        "username": settings.username,
        "sender": settings.sender,
        "alarm_to": _recipients_text(settings),
        "rate_window_min": str(settings.rate_window_s // 60),
        "syslog": settings.syslog,
        "box_url": settings.box_url,
    }
    for every in EVERY:
        values["%s_to" % every] = ""
        values["%s_fmt" % every] = "pdf"
    for s in settings.schedules:
        values["%s_to" % s.every] = ", ".join(s.to)
        values["%s_fmt" % s.every] = s.fmt
    return values


def _parse(form, current):
    """``(MailSettings, errors)`` from the form (errors by field name)."""
    errors = {}
    port = whole_number(form.get("port", "").strip())
    if port is None:
        port, errors["port"] = 0, "The port is a number in digits 0-9, usually 587 (STARTTLS) or 465 (TLS)."
    window = whole_number(form.get("rate_window_min", "").strip())
    if window is None:
        window, errors["rate_window_min"] = 0, "The rate window is a number of minutes, in digits 0-9."
    window *= 60
    schedules = []
    for every in EVERY:
        to = _addresses(form.get("%s_to" % every))
        if to:
            schedules.append(Schedule(every, to, form.get("%s_fmt" % every, "pdf")))
    alarm_to, alarm_accounts = _recipients(form.get("alarm_to"))
    settings = MailSettings(
        host=form.get("host", "").strip(),
        port=port,
        security=form.get("security", ""),
        username=form.get("username", "").strip(),
        password=current.password,
        sender=form.get("sender", "").strip(),
        alarm_to=alarm_to,
        alarm_accounts=alarm_accounts,
        rate_window_s=window,
        schedules=tuple(schedules),
        syslog=form.get("syslog", "").strip(),
        box_url=form.get("box_url", "").strip(),
    )
    for field, message in _model_errors(settings, current).items():
        errors.setdefault(field, message)
    # The same mailbox named twice ("Sam@Example.com, sam@example.com") gets each mail twice.
    lists = [("alarm_to", alarm_to, "the alarm recipients")]
    lists += [("%s_to" % s.every, s.to, "the %s report's recipients" % s.every) for s in schedules]
    for field, addresses, among in lists:
        twice = _named_twice(addresses)
        if twice:
            errors.setdefault(field, "%s is listed twice among %s" % (twice, among))
    password = form.get("password", "")
    problem = password and mail_password_problem(password)
    if problem:
        errors["password"] = problem
    for every in EVERY:
        tied = next((e for e in _addresses(form.get("%s_to" % every)) if _TIED.match(e)), None)
        if tied:
            # Ahead of "not an e-mail address": the tie is what is wrong, and why.
            errors["%s_to" % every] = _SCHEDULE_TIED % tied
    if "alarm_to" not in errors:
        problem = next(filter(None, (_account_problem(name) for _a, name in alarm_accounts)), None)
        if problem:
            errors["alarm_to"] = problem
    if "alarm_to" not in errors:
        unreached = _unreached(settings)
        if unreached:
            errors["alarm_to"] = _unreached_words(unreached, saved=False)
    return settings, errors


def _model_errors(settings, saved):
    """``{form field: message}`` of every field the model refuses in ``settings``. The model
    names the first bad field only: each refused one is put back as ``saved`` has it and the
    rest checked again, so that an installer with two mistakes sees both at once."""
    found, tried = {}, set()
    while True:
        try:
            settings.check().check_login()
            return found
        except ConfigError as exc:
            name = (exc.field or "mail").split(".", 1)[-1].split("[")[0]
            field = name
            if name == "schedules":
                field = "%s_to" % settings.schedules[int(exc.field.split("[")[1][0])].every
            field = {"rate_window_s": "rate_window_min", "alarm_accounts": "alarm_to"}.get(field, field)
            window = "The rate window is 1 to 1440 minutes (a day)."
            found.setdefault(field, window if field == "rate_window_min" else exc.message)
            put_back = ("alarm_to", "alarm_accounts") if field == "alarm_to" else (name,)
            if name in tried or not all(hasattr(saved, n) for n in put_back):
                return found  # not a field that can be put back: said, never looped on
            tried.add(name)
            settings = dataclasses.replace(settings, **{n: getattr(saved, n) for n in put_back})


def _based_on(settings):
    """The fingerprint of the form's fields as ``settings`` has them (web/stale.py): the
    password by whether one is set, never by its value (sealed on disk)."""
    return stale.fingerprint(dict(_values(settings), password_set=bool(settings.password)))


def _page(values, errors=None, status=400, **extra):
    svc = _service()
    settings = svc.store.get()
    context = dict(
        values=values,
        # What the form showed when loaded: a save from an older page is refused.
        based_on=_based_on(settings),
        securities=SECURITY,
        everies=EVERY,
        password_set=bool(settings.password),
        # Sealed without the vault's key (saved before the recorder started, or while an
        # update was on trial) on a box that has it: the page says what that means.
        password_weaker=svc.store.password_weaker(settings),
        # Recipients with no server or sender to send to them: the page says so.
        not_sent=settings.missing if settings.alarm_to or settings.schedules else (),
        # Saved before such settings were refused: the sender will not log in (firmware/mail/smtp.py).
        in_clear=settings.login_in_clear(),
        pending=svc.queue.pending(),
        reach=_reach(settings),
        # Saved when each was seen, and an account changed since (Users page).
        unreached=_unreached_words(unreached, saved=True) if (unreached := _unreached(settings)) else "",
        **extra,
    )
    if errors:
        return form_errors("mail.html", errors, status=status, **context)
    return render_template("mail.html", errors={}, **context)


@bp.route("/settings/mail")
@roles("installer")
def index():
    return _page(_values(_service().store.get()), saved=request.args.get("saved"))


@bp.route("/settings/mail", methods=["POST"])
@roles("installer")
def save():
    svc = _service()
    current = svc.store.get()
    settings, errors = _parse(request.form, current)
    password = request.form.get("password", "")
    if not errors and settings == current and _same_password(svc, current, password):
        # Nothing changed (a second click of the same form too): nothing to audit.
        return redirect(url_for("mail.index", saved=1))
    if stale.changed_since(request.form, _based_on(current)):
        return _page(_values(current), {"form": stale.CHANGED}, status=409)
    if errors:
        return _page(dict(request.form), errors)
    changed = {k: v for k, v in settings.to_dict().items() if k != "password"}
    changed["password_changed"] = bool(password)
    intent.change_file(
        lk(),
        svc.store.path,
        ("config_change", "mail", changed),
        lambda: svc.store.save(settings, new_password=password or None),
        also=[svc.store.accounts_path, svc.store.box_url_path],
    )
    return redirect(url_for("mail.index", saved=1))


def _same_password(svc, current, password):
    """Whether the password field keeps the stored password: left empty, or the one stored
    typed again (a second click of a form that set it)."""
    if not password:
        return True
    if not current.password:
        return False
    try:
        stored = svc.store.password(current)
    except LinekeeperError:  # it does not open: what was typed replaces it
        return False
    return hmac.compare_digest(password.encode("utf-8"), stored.encode("utf-8"))


@bp.route("/settings/mail/test", methods=["POST"])
@roles("installer")
def send_test():
    svc = _service()
    to = request.form.get("test_to", "")
    values = dict(_values(svc.store.get()), test_to=to)
    try:
        svc.send_test(to)
    except ConfigError as exc:
        return _page(values, {"test_to": exc.message})
    except LinekeeperError as exc:  # the server refused or could not be reached
        return _page(values, {"test_to": "The test e-mail was not sent: %s" % exc}, status=502)
    audit("mail_test", "mail", to=to.strip())
    return _page(values, tested=to.strip())
