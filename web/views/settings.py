"""Site and line settings, the certificate (installers), a new recovery key, and a backup
of the key store.

The recovery key opens every recording, so only someone who may hear calls
makes a new one: an installer who is also a supervisor, with their own key
unlocked. The key store backup (firmware/keybackup.py) opens nothing without a
password or the recovery key, but whoever holds it can guess at its password
slots offline, as fast as their computers stretch Argon2id, with no throttle or
lockout: so only someone who can already open every recording downloads it, by the
same rule (:func:`may_back_up`), audited (``key_backup``), to keep with the recovery
key. An installer without that key is refused, audited too (phase ``refused``).
"""

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from firmware import keybackup
from firmware.compliance import key_store_changes
from firmware.errors import KeyStoreError, TamperError
from firmware.storage.fieldseal import FieldSealError
from firmware.storage.keystore import ALL_LINES

from .. import intent, sitechange, stale
from ..documents import (
    key_store_contents,
    key_store_fingerprint,
    last_key_backup,
    private_but_recording,
    private_lines,
    undecided_lines,
)
from ..security import all_roles, audit, form_errors, lk, roles, unlocked_key
from ..site import form_values, parse_site_form

bp = Blueprint("settings", __name__)
# A save while the box's key is not open (the recorder not started since boot): what it
# writes (config.json, whose lists of numbers are sealed, and the audit trail) is sealed.
SEALED_REFUSED = (
    "Nothing was saved: the settings go into the box's configuration and the audit trail, "
    "which are sealed with the box's key, and it is not open until the recorder has started "
    "since the box was switched on. Try again in a minute."
)


def _saved_values(web):
    """The form's fields as saved: the site settings, and which lines the rules keep
    private or nobody chose (:func:`web.site.form_values`)."""
    return form_values(web.site.settings(), web.n_lines, private_lines(web), undecided_lines(web))


def _context(as_saved=False, **extra):
    """The settings page's context; ``as_saved``: its form shows the settings as saved,
    not as sent."""
    web = lk()
    undecided = undecided_lines(web)
    try:
        backup, backup_sealed = last_key_backup(web), False
    except FieldSealError:  # the trail's key_backup entries, until the recorder has started
        backup, backup_sealed = None, True
    saved = _saved_values(web)
    contents = key_store_contents(web) if backup else None
    values = (
        request.form
        if request.method == "POST" and request.endpoint == "settings.save" and not as_saved
        else saved
    )
    return dict(
        n_lines=web.n_lines,
        current=web.site.settings(),
        values=values,
        # What the form showed when loaded: a save from an older page is refused (web/stale.py).
        based_on=stale.fingerprint(saved),
        recovery_confirmed=web.site.recovery_confirmed,
        has_key=unlocked_key() is not None,
        still_recording=private_but_recording(web),
        undecided=undecided,
        key_store=key_store_fingerprint(web),
        last_backup=backup,
        backup_sealed=backup_sealed,
        # What changed in the key store since that backup that a restore of it would lose
        # recordings by (the recovery key, a line's key), and what else (key slots, passwords).
        backup_behind=key_store_changes(backup[2], contents, losing=True) if backup else [],
        backup_since=key_store_changes(backup[2], contents) if backup else [],
        # What the box held when it was made (firmware.keybackup.inventory), in words.
        backup_inventory=keybackup.inventory_lines(backup[3]) if backup and backup[3] else [],
        may_back_up=may_back_up(),
        # Whose key this session holds when it is not the box's own, and who holds that.
        key_words=_key_words(),
        **extra,
    )


@bp.route("/settings", methods=["GET"])
@roles("installer")
def index():
    return render_template("settings.html", errors={}, saved=request.args.get("saved"), **_context())


def _changes(before, settings):
    """``{field: new value}``: what ``settings`` changes of ``before`` (the lines as a list)."""
    changed = {}
    for field in (
        "organisation",
        "ico_number",
        "ico_renewal",
        "purpose",
        "country",
        "time_zone",
        "region",
        "dpia_reviewed",
        "lawful_basis",
        "lia_date",
        "dp_contact",
        "dp_address",
        "dp_email",
        "dp_phone",
    ):
        if getattr(before, field) != getattr(settings, field):
            changed[field] = getattr(settings, field)
    if before.lines != settings.lines:
        changed["lines"] = [{"line": x.line, "name": x.name, "record": x.record} for x in settings.lines]
    if set(before.not_connected) != set(settings.not_connected):
        changed["not_connected"] = sorted(settings.not_connected)
    return changed


@bp.route("/settings", methods=["POST"])
@roles("installer")
def save():
    web = lk()
    settings, errors = parse_site_form(
        request.form, web.n_lines, web.local_time().local(int(web.services.wall_us())).date()
    )
    before = web.site.settings()
    changed = None if errors else _changes(before, settings)
    if changed == {}:  # nothing to save: a second click of the same form too
        return redirect(url_for("settings.index", saved=1))
    if stale.changed_since(request.form, stale.fingerprint(_saved_values(web))):
        return form_errors(
            "settings.html", {"form": stale.CHANGED}, status=409, saved=None, **_context(as_saved=True)
        )
    if errors:
        return form_errors("settings.html", errors, saved=None, **_context())
    entry = ("config_change", "site", dict(changed, address=request.remote_addr or ""))
    try:
        # What follows the commit rewrites config.json: refused before it while its lists of
        # numbers are sealed and cannot be opened, not left half done.
        if web.services.box_config is not None:
            web.services.box_config.get()
        with web.db.tx() as conn:
            web.site.save(conn, settings)
            # In the same commit: what follows it (web/sitechange.py), done again if cut short.
            note = sitechange.begin(web, conn, "settings", g.user.name, [entry])
    except FieldSealError:
        return form_errors("settings.html", {"form": SEALED_REFUSED}, status=503, saved=None, **_context())
    sitechange.finish(web, note)
    # The page says what a change of country does only when the country changed.
    return redirect(url_for("settings.index", saved="country" if "country" in changed else 1))


# Why a key store backup is refused (the page's words, and the refused entry's reason).
BACKUP_NEEDS_KEY = (
    "A backup of the key store lets whoever holds it guess its passwords offline, so only an "
    "installer who is also a supervisor, logged in with their own password to a key slot that "
    "opens every line, downloads it. No backup was made."
)


def may_back_up():
    """Whether the user logged in may download the key store backup: an installer who is
    also a supervisor, their session holding a recording key that opens every line (as for a
    new recovery key): someone who can already open every recording, so offline guesses at
    the copy's password slots would give them nothing they do not hold."""
    key = unlocked_key()
    return g.user.has("installer") and g.user.has("supervisor") and key is not None and key.holds_all


def _key_words():
    """ "Your key opens lines 1 and 2, granted to you, not the box's own key: alice holds it.",
    for an installer and supervisor whose key is not the box's own; else None."""
    key = unlocked_key()
    if key is None or key.holds_all or not (g.user.has("installer") and g.user.has("supervisor")):
        return None
    enabled, disabled = box_key_holders()
    if enabled or disabled:
        holders = _names(enabled or disabled) + (" holds it" if len(enabled or disabled) == 1 else " hold it")
        return "Your key opens %s, not the box's own key: %s%s." % (
            _granted_words(key),
            holders,
            "" if enabled else " (disabled)",
        )
    return "Your key opens %s, not the box's own key; no account holds it any more." % _granted_words(key)


def _granted_words(key):
    """ "lines 1, 2 and 3, granted to you": what ``key`` (not the box's own) opens."""
    lines = [str(n) for n in key.lines]
    if not lines:
        return "no line"
    said = lines[0] if len(lines) == 1 else "%s and %s" % (", ".join(lines[:-1]), lines[-1])
    return "%s %s, granted to you" % ("line" if len(lines) == 1 else "lines", said)


def box_key_holders():
    """``(enabled, disabled)``: the names of the accounts whose key slot holds the box's own
    key (granted every line: the setup wizard's, or the last rekey's)."""
    keystore = lk().services.keystore
    enabled, disabled = [], []
    for account in lk().accounts.all():
        try:
            if keystore.granted_lines(account.name) != ALL_LINES:
                continue
        except KeyStoreError:
            continue  # an account with no key slot
        (enabled if account.disabled_us is None else disabled).append(account.name)
    return enabled, disabled


def _names(names):
    return names[0] if len(names) == 1 else "%s and %s" % (", ".join(names[:-1]), names[-1])


def _holders_words():
    """Who holds the box's own key, and what to do, as a sentence ("alice holds it: log in as
    alice to make one.")."""
    enabled, disabled = box_key_holders()
    if len(enabled) == 1:
        return "%s holds it: log in as %s to make one." % (enabled[0], enabled[0])
    if enabled:
        return "%s hold it: log in as one of them to make one." % _names(enabled)
    if disabled:
        return "%s %s it, disabled: an installer enables %s (Users), then log in as %s to make one." % (
            _names(disabled),
            "holds" if len(disabled) == 1 else "hold",
            "it" if len(disabled) == 1 else "one",
            disabled[0] if len(disabled) == 1 else "it",
        )
    return "No account holds it any more, so the recovery key in use cannot be replaced."


@bp.route("/settings/keystore-backup", methods=["POST"])
@roles("installer")
def keystore_backup():
    web = lk()
    if not may_back_up():
        # Audited: an installer who asked for the copy and was refused it, who and from where.
        audit("key_backup", None, phase="refused", reason="no recording key that opens every line")
        errors = {"backup": BACKUP_NEEDS_KEY}
        return form_errors("settings.html", errors, status=403, saved=None, **_context())
    data_dir = str(web.services.keystore.keys_dir.parent)
    try:
        data, doc = keybackup.make_backup(data_dir, int(web.services.wall_us()))
    except (KeyStoreError, TamperError) as exc:
        return form_errors(
            "settings.html",
            {"backup": "No backup was made: %s" % exc},
            saved=None,
            **_context(),
        )
    # Audited before the copy leaves the box: a copy the trail does not show is never given.
    # With what it holds: the checklist tells from it whether the key store changed since.
    contents = keybackup.key_store_contents(doc["keystore"].encode("ascii"))
    # And what the box held (counts and dates, no personal data), shown on this page after.
    audit(
        "key_backup",
        None,
        phase="made",
        key_store=doc["key_store"],
        contents=contents,
        inventory=doc["inventory"],
    )
    return Response(
        data,
        mimetype="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="%s"' % keybackup.backup_file_name(doc),
            "Cache-Control": "no-store",
        },
    )


@bp.route("/settings/recovery-key", methods=["POST"])
@all_roles("installer", "supervisor")
def new_recovery_key():
    web = lk()
    key = unlocked_key()
    if key is None:
        return form_errors(
            "settings.html",
            {"recovery": ("Your session holds no unlocked recording key. Log out and in again, then retry.")},
            saved=None,
            **_context(),
        )
    keystore = web.services.keystore
    if not key.holds_all:
        return form_errors(
            "settings.html",
            {
                "recovery": "A new recovery key needs the box's own key, which opens every line there "
                "is or will be: yours opens %s. %s" % (_granted_words(key), _holders_words())
            },
            saved=None,
            **_context(),
        )
    was_confirmed = web.site.recovery_confirmed
    # Unconfirmed until the key reaches this session, which shows it: not "never confirmed"
    # meanwhile (web.documents.box_reminders).
    with web.sessions.showing_recovery():
        # Not confirmed before the slot is replaced: a cut after it leaves a recovery key
        # that nobody saw, and the dashboard then asks for a new one (the old one opens nothing).
        web.site.set_recovery_confirmed(False)
        try:
            recovery = intent.change_checked(
                web,
                ("key_slot_add", "recovery", {"slot": "recovery"}),
                lambda: keystore.new_recovery_key(key),
                {"kind": "recovery_slot", "before": keystore.slot_fingerprint(None, kind="recovery")},
            )
        except Exception:
            web.site.set_recovery_confirmed(was_confirmed)
            raise
        web.sessions.mem(g.session)["recovery"] = recovery
    return redirect(url_for("setup.recovery"))
