"""E-mail settings (installers): the SMTP server, alarm recipients, report schedules, a test mail.

The password is write-only: the page says whether one is set, never shows
it, and an empty password field keeps the stored one. Saving is audited as
``config_change`` (target ``mail``, without the password); a test e-mail is
sent at once, not queued, so its failure is shown with the server's reason.
"""

from flask import Blueprint, redirect, render_template, request, url_for

from firmware.errors import ConfigError, LinekeeperError
from firmware.mail.settings import EVERY, SECURITY, MailSettings, Schedule

from .. import intent
from ..security import audit, form_errors, lk, roles

bp = Blueprint("mail", __name__)


def _service():
    from flask import abort

    svc = lk().services.mail
    if svc is None:
        abort(404)
    return svc


def _addresses(text):
    return tuple(a.strip() for a in (text or "").replace(";", ",").split(",") if a.strip())


def _values(settings):
    values = {
        "host": settings.host,
        "port": str(settings.port),
        "security": settings.security,
        "username": settings.username,
        "sender": settings.sender,
        "alarm_to": ", ".join(settings.alarm_to),
        "rate_window_min": str(settings.rate_window_s // 60),
        "syslog": settings.syslog,
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
    try:
        port = int(form.get("port", ""))
    except ValueError:
        port, errors["port"] = 0, "The port is a number, usually 587 (STARTTLS) or 465 (TLS)."
    try:
        window = int(form.get("rate_window_min", "")) * 60
    except ValueError:
        window, errors["rate_window_min"] = 0, "The rate window is a number of minutes."
    schedules = []
    for every in EVERY:
        to = _addresses(form.get("%s_to" % every))
        if to:
            schedules.append(Schedule(every, to, form.get("%s_fmt" % every, "pdf")))
    settings = MailSettings(
        host=form.get("host", "").strip(),
        port=port,
        security=form.get("security", ""),
        username=form.get("username", "").strip(),
        password=current.password,
        sender=form.get("sender", "").strip(),
        alarm_to=_addresses(form.get("alarm_to")),
        rate_window_s=window,
        schedules=tuple(schedules),
        syslog=form.get("syslog", "").strip(),
    )
    if not errors:
        try:
            settings.check().check_login()
        except ConfigError as exc:
            field = (exc.field or "mail").split(".", 1)[-1].split("[")[0]
            if field == "schedules":
                field = "%s_to" % settings.schedules[int(exc.field.split("[")[1][0])].every
            field = {"rate_window_s": "rate_window_min"}.get(field, field)
            errors[field] = (
                "The rate window is 1 to 1440 minutes (a day)." if field == "rate_window_min" else exc.message
            )
    return settings, errors


def _page(values, errors=None, status=400, **extra):
    svc = _service()
    settings = svc.store.get()
    context = dict(
        values=values,
        securities=SECURITY,
        everies=EVERY,
        password_set=bool(settings.password),
        # Recipients with no server or sender to send to them: the page says so.
        not_sent=settings.missing if settings.alarm_to or settings.schedules else (),
        # Saved before such settings were refused: the sender will not log in (firmware/mail/smtp.py).
        in_clear=settings.login_in_clear(),
        pending=svc.queue.pending(),
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
    if errors:
        return _page(dict(request.form), errors)
    password = request.form.get("password", "")
    if settings == current and not password:
        return redirect(url_for("mail.index", saved=1))  # nothing changed: nothing to audit
    changed = {k: v for k, v in settings.to_dict().items() if k != "password"}
    changed["password_changed"] = bool(password)
    intent.change_file(
        lk(),
        svc.store.path,
        ("config_change", "mail", changed),
        lambda: svc.store.save(settings, new_password=password or None),
    )
    return redirect(url_for("mail.index", saved=1))


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
