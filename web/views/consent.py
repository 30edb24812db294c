"""Consent notices: the settings, the announcement (upload, listen) and a test call.

Installers change them; auditors read and listen. An uploaded WAV is checked
by :func:`firmware.policy.announcement.validate_announcement_wav` (format,
length, level, a header that lies) before anything is kept: a refused file
changes nothing and the page says why. The warning tone's frequency, length, interval and
level are checked against the configuration model's ranges
(:class:`firmware.policy.consent.WarningTone`): a bad one is named, and nothing is saved.
Every change is audited (``config_change``).
"""

import dataclasses
import hashlib

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from firmware.control import ControlError
from firmware.errors import AudioFormatError, ConfigError, LinekeeperError
from firmware.policy.announcement import TestCallRefused, test_call_refusal
from firmware.policy.settings import NOTICES
from firmware.storage.fieldseal import FieldSealError
from firmware.typed import control_problem

from .. import intent, stale
from ..documents import private_lines
from ..security import audit, decimal_number, form_errors, lk, roles, whole_number
from ..services import CONFIG_SEALED

bp = Blueprint("consent", __name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
NOTICE_LABELS = {"off": "No notice", "tone": "A tone", "announcement": "The announcement"}
# The warning tone's fields on the form: (form field, WarningTone field, what it is, a whole number).
TONE_FIELDS = (
    ("tone_frequency_hz", "frequency_hz", "The warning tone's frequency", True),
    ("tone_duration_ms", "duration_ms", "The warning tone's length", True),
    ("tone_interval_s", "interval_s", "The time between warning tones", False),
    ("tone_level_dbm0", "level_dbm0", "The warning tone's level", False),
)


def _based_on(consent):
    """The fingerprint of the notices form's fields as ``consent`` has them (web/stale.py):
    not the announcement's file, which its own forms change."""
    tone = consent.warning_tone
    return stale.fingerprint(
        {
            "inbound": consent.inbound,
            "outbound": consent.outbound,
            "text": consent.announcement.text,
            "record_if_notice_failed": consent.record_if_notice_failed,
            "warning_tone": tone.enabled,
            **{name: getattr(tone, attr) for name, attr, _what, _whole in TONE_FIELDS},
        }
    )


def _page(errors=None, status=200, **extra):
    web = lk()
    store = web.services.box_config
    consent = store.get(leave_sealed=True).policy.consent if store is not None else None
    svc = web.services.consent
    problem = None
    if svc is not None and consent is not None:
        try:
            seconds = len(svc.samples()) / 8000
        except LinekeeperError as exc:
            seconds, problem = None, str(exc)
    else:
        seconds = None
    context = dict(
        consent=consent,
        notices=NOTICES,
        notice_labels=NOTICE_LABELS,
        available=svc is not None and consent is not None,
        seconds=seconds,
        problem=problem,
        n_lines=web.n_lines,
        can_test=svc is not None and svc.can_test_call,
        # A private line is never recorded, so no notice is played on it: nothing to test.
        private=sorted(private_lines(web)) if consent is not None else [],
        editable=g.user.has("installer") and consent is not None,
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
        # What the notices form showed when loaded: a save from an older page is refused.
        based_on=_based_on(consent) if consent is not None else "",
        **extra,
    )
    if status != 200:
        return form_errors("consent.html", errors or {}, status=status, **context)
    return render_template("consent.html", errors=errors or {}, **context)


@bp.route("/consent", methods=["GET"])
@roles("installer", "auditor")
def index():
    return _page(saved=request.args.get("saved"), played=request.args.get("played"))


@bp.route("/consent", methods=["POST"])
@roles("installer")
def save():
    store = lk().services.box_config
    if store is None:
        return _page({"form": "This box has no configuration to edit."}, status=400)
    form = request.form
    errors = {}
    for field in ("inbound", "outbound"):
        if form.get(field) not in NOTICES:
            errors[field] = "Choose the notice for %s calls." % field
    text = (form.get("text") or "").strip()
    if not text or len(text) > 500:
        errors["text"] = "Write what the spoken announcement says (1 to 500 characters)."
    elif control_problem(text, lines=True):
        errors["text"] = control_problem(text, lines=True)
    try:
        config = store.get()
    except FieldSealError:
        return _page({"form": CONFIG_SEALED}, status=503)
    consent = config.policy.consent
    tone = _warning_tone(form, consent.warning_tone, errors)
    new = None
    if not errors:
        new = dataclasses.replace(
            consent,
            inbound=form["inbound"],
            outbound=form["outbound"],
            record_if_notice_failed=form.get("record_if_notice_failed") == "on",
            announcement=dataclasses.replace(consent.announcement, text=text),
            warning_tone=dataclasses.replace(tone, enabled=form.get("warning_tone") == "on"),
        )
    if new == consent:  # nothing to save: a second click of the same form too
        return redirect(url_for("consent.index", saved=1))
    if stale.changed_since(form, _based_on(consent)):
        return _page({"form": stale.CHANGED}, status=409)
    if errors:
        return _page(errors, status=400)
    _save_consent(store, config, new)
    return redirect(url_for("consent.index", saved=1))


def _warning_tone(form, tone, errors):
    """``tone`` with the form's frequency, length, interval and level, each checked as the
    configuration checks it; a bad one goes into ``errors`` under its form field, in the
    model's words ("must be a whole number of Hz from 300 to 3400, not '5000'"). A field
    the form does not send keeps its value."""
    for name, attr, what, whole in TONE_FIELDS:
        if name not in form:
            continue
        raw = form[name].strip()
        value = whole_number(raw) if whole else decimal_number(raw)
        if value is None:
            value = raw  # not in digits 0-9: the model names it as typed
        elif isinstance(value, float) and value.is_integer():
            value = int(value)  # 15, not 15.0, as the configuration writes it
        try:
            tone = dataclasses.replace(tone, **{attr: value})
        except ConfigError as exc:
            errors[name] = "%s %s." % (what, exc.message)
    return tone


def _save_consent(store, config, new):
    old = config.policy.consent
    if new == old:
        return
    before = dataclasses.asdict(old)
    after = dataclasses.asdict(new)
    entry = (
        "config_change",
        "policy.consent",
        {"changed": {k: _plain(after[k]) for k in after if after[k] != before[k]}},
    )
    changed = dataclasses.replace(config, policy=dataclasses.replace(config.policy, consent=new))
    intent.change_file(lk(), store.path, entry, lambda: store.save(changed))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@bp.route("/consent/announcement", methods=["POST"])
@roles("installer")
def upload():
    store = lk().services.box_config
    svc = lk().services.consent
    if store is None or svc is None:
        return _page({"upload": "This box cannot take an announcement."}, status=400)
    upload = request.files.get("announcement")
    if upload is None or not upload.filename:
        return _page({"upload": "Choose a WAV file to upload."}, status=400)
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _page({"upload": _too_large()}, status=400)
    name = "upload-%s.wav" % hashlib.sha256(data).hexdigest()[:16]
    try:
        config = store.get()  # before the file is kept: refused whole while it cannot be saved
    except FieldSealError:
        return _page({"upload": CONFIG_SEALED}, status=503)
    try:
        svc.store_announcement(name, data)
    except (AudioFormatError, ValueError) as exc:
        return _page({"upload": "%s. Nothing was changed." % str(exc).rstrip(".")}, status=400)
    consent = config.policy.consent
    _save_consent(
        store,
        config,
        dataclasses.replace(consent, announcement=dataclasses.replace(consent.announcement, file=name)),
    )
    return redirect(url_for("consent.index", saved=1))


def _too_large():
    # Not "at most 30 seconds": 30 s of 48 kHz stereo, as sound editors save it, is 5.8 MB.
    return (
        "The file is larger than %d MB: save the announcement as mono at 8000 Hz (30 s of it is "
        "under 0.5 MB). Nothing was changed." % (MAX_UPLOAD_BYTES // (1024 * 1024))
    )


# Read by web/__init__.py: this view takes a larger body than a form, and says so when too large.
upload.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024
upload.too_large = _too_large


@bp.route("/consent/default", methods=["POST"])
@roles("installer")
def use_default():
    store = lk().services.box_config
    if store is None:
        return _page({"form": "This box has no configuration to edit."}, status=400)
    try:
        config = store.get()
    except FieldSealError:
        return _page({"form": CONFIG_SEALED}, status=503)
    consent = config.policy.consent
    _save_consent(
        store,
        config,
        dataclasses.replace(consent, announcement=dataclasses.replace(consent.announcement, file=None)),
    )
    return redirect(url_for("consent.index", saved=1))


@bp.route("/consent/announcement.wav")
@roles("installer", "auditor")
def listen():
    svc = lk().services.consent
    if svc is None:
        return _page({"form": "This box has no announcement."}, status=404)
    try:
        data = svc.announcement_wav()
    except LinekeeperError as exc:
        return Response("the announcement cannot be played: %s" % exc, status=409, mimetype="text/plain")
    return Response(data, mimetype="audio/wav")


@bp.route("/consent/test-call", methods=["POST"])
@roles("installer")
def test_call():
    web = lk()
    svc = web.services.consent
    if svc is None or not svc.can_test_call:
        return _page({"test": "This box cannot play into its lines."}, status=400)
    line = whole_number(request.form.get("line", ""))
    if line is None or not 1 <= line <= web.n_lines:
        return _page({"test": "Choose a line from 1 to %d." % web.n_lines}, status=400)
    if line in private_lines(web):
        return _page(
            {
                "test": "Line %d is private: it is never recorded, so no notice is played on it "
                "and there is nothing to test. Nothing was played." % line
            },
            status=400,
        )
    entry = next(e for e in web.services.status.snapshot()["lines"] if e["line"] == line)
    refused = test_call_refusal(line, entry["state"], (entry.get("call") or {}).get("number"))
    if refused is None:
        try:
            seconds = svc.test_call(line)
        except LinekeeperError as exc:
            if isinstance(exc, ControlError) and exc.kind == TestCallRefused.__name__:
                refused = str(exc)  # the recorder, which knows the line's state now, refused
            else:
                audit("consent_test", "line:%d" % line, line=line, refused=str(exc))
                return _page({"test": "The announcement could not be played: %s" % exc}, status=400)
    if refused is not None:
        audit("consent_test", "line:%d" % line, line=line, refused=refused)
        return _page({"test": "%s. Nothing was played." % (refused[:1].upper() + refused[1:])}, status=400)
    audit("consent_test", "line:%d" % line, line=line, duration_s=round(seconds, 1))
    return redirect(url_for("consent.index", played="%d:%.1f" % (line, seconds)))
