"""Back up and restore the box's configuration: ``linekeeper config export|import``.

The exported file is one JSON object::

    {"linekeeper_config": 1,
     "config": {...},            DATA_DIR/config.json, policy included (BoxConfig)
     "site": {...} | null,       the web UI's site settings (organisation, ICO
                                 registration, purpose, country, lines; region
                                 only when not England; the lawful basis and
                                 the data protection contact when given)
     "files": {"announcements/NAME.wav": "<base64>"}}   uploaded announcements

It holds no secret: no key slot, recovery key, password hash, session, setup
code, certificate or recording — those stay on the box (and a box restored
from the file keeps its own).

Import checks the whole file first — the configuration through
:meth:`BoxConfig.from_dict` (every policy section included), the site
settings as the settings page would, each announcement as an upload would —
and changes nothing unless all of it is valid; the error names the field.
While an update is on trial (docs/updates.md), a file that turns on the
personal-call code or gives a line an outside-line digit the box's own did not
have is refused too: the release before refuses such a ``config.json``. A card-payment
pause or resume code with A-D, or ``*`` or ``#`` alone, is refused as the Rules page
refuses it (docs/pci.md), though a ``config.json`` that has one still loads.
So is a file that names more lines than the box's HAT has (in its site settings,
rules or lines not connected). Then the files, ``config.json`` and the site settings are written, each
atomically, and the import is audited (``config_change``). ``linekeeper config
import`` then has a running recorder read it again (its control socket's ``reload``, as
the web pages' changes do), and says when the file changed the box's telephony
country (:func:`country_changed`). A box made by ``linekeeper init``
(``policy.consent.require_notice``) keeps that setting when the file does not say
it, so it records once the recorder has read a notice the file sets.

On a box that seals (docs/card-alone.md) the rules' number patterns are
sealed in ``config.json``: the export opens them (the file is for another
box, whose key differs) and the import seals them again with this box's key
(or, from a process without it, leaves them for the recorder to seal at its
next start). A file that carries sealed patterns is refused: no key but the
box's own opens them.
"""

import base64
import binascii
import dataclasses
import json
import os
import re

from firmware.storage import fsutil
from firmware.storage.fieldseal import is_sealed

from .config import BoxConfig, load_config, save_config
from .errors import ConfigError, LinekeeperError
from .rights import DEFAULT_REGION, REGIONS

FORMAT = 1
#: Site settings kept apart from the settings' JSON that an export carries when given,
#: in two groups: an import whose file has none of a group keeps the box's own.
BASIS = ("lawful_basis", "lia_date")
CONTACT = ("dp_contact", "dp_address", "dp_email", "dp_phone")
CARRIED = BASIS + CONTACT
ANNOUNCEMENT_FILE = re.compile(r"^announcements/([A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.wav)$")
MAX_FILE_BYTES = 16 << 20
MAX_IMPORT_BYTES = 64 << 20  # a few announcements, base64: the most an import file holds


def export_config(data_dir, cipher=None):
    """The box's configuration as the JSON object described above; ``cipher`` (the
    box's field cipher) opens the rules' sealed number patterns.

    :raises ConfigError: the patterns are sealed and there is no cipher
    """
    config = load_config(data_dir, cipher)
    if any(is_sealed(p) for item in config.policy.rules.numbers for p in item.patterns):
        raise ConfigError(
            "the number rules are sealed with the key in the HAT's MCU vault and this process has "
            "no copy of it: export on the box, with the recorder running",
            field="policy.rules.numbers",
        )
    doc = {"linekeeper_config": FORMAT, "config": config.to_dict(), "site": _site(data_dir), "files": {}}
    name = config.policy.consent.announcement.file
    if name is not None:
        path = os.path.join(data_dir, "announcements", name)
        with open(path, "rb") as f:
            doc["files"]["announcements/" + name] = base64.b64encode(f.read()).decode("ascii")
    return doc


def site_settings(data_dir):
    """The web UI's site settings (:class:`web.site.SiteSettings`) kept in ``data_dir``'s
    ``web.db``, or None: no web UI has run there, or its setup is not done."""
    path = os.path.join(data_dir, "web.db")
    if not os.path.exists(path):
        return None
    from web.db import WebDb
    from web.site import Site

    db = WebDb(path)
    try:
        return Site(db).settings()
    finally:
        db.close()


def _site(data_dir):
    settings = site_settings(data_dir)
    if settings is None:
        return None
    # Without the DPIA date (SiteSettings.to_json): an export stays one the release
    # before imports, which refuses a key it does not know. It is the box's own record.
    site = json.loads(settings.to_json())
    if settings.region != DEFAULT_REGION:
        # Where the business is, unless it is the default: an English box's export stays
        # one the release before imports; a Scottish one's it refuses, as it could not
        # count Scotland's bank holidays.
        site["region"] = settings.region
    for name in CARRIED:
        # Only when given, for the same reason: a box without them exports a file the
        # release before imports; one with them a file it refuses, as it cannot keep them.
        if getattr(settings, name):
            site[name] = getattr(settings, name)
    return site


def check_import(doc, source=None):
    """Validate an exported document whole: ``(BoxConfig, SiteSettings or None, {name: bytes})``.

    :raises ConfigError: the first problem, with its field (``config.policy.rules.lines[0].mode``,
        ``site.organisation``, ``files.announcements/x.wav``)
    """
    if not isinstance(doc, dict):
        raise ConfigError("must be a JSON object, as `linekeeper config export` writes", source=source)
    settings = {f.name for f in dataclasses.fields(BoxConfig)}
    for key in doc:
        if key in settings:
            # docs/adapters.md names the settings as config.json's: in an export they are
            # one level down.
            raise ConfigError(
                'is a setting of config.json: put it inside "config" ("config": {..., "%s": ...}), '
                "where `linekeeper config export` writes it" % key,
                source=source,
                field=key,
            )
        if key not in ("linekeeper_config", "config", "site", "files"):
            raise ConfigError(
                "unknown section: the file's sections are linekeeper_config, config, site and files",
                source=source,
                field=key,
            )
    if doc.get("linekeeper_config") != FORMAT:
        raise ConfigError(
            "must be %d (a file written by `linekeeper config export`)" % FORMAT,
            source=source,
            field="linekeeper_config",
        )
    if "config" not in doc:
        raise ConfigError("is missing", source=source, field="config")
    try:
        config = BoxConfig.from_dict(doc["config"])
    except ConfigError as exc:
        raise ConfigError(
            exc.message, source=source, field="config" + ("." + exc.field if exc.field else "")
        ) from None
    _check_whole(doc["config"], source)  # a field that is wrong first: it says more
    for name, why in config.policy.pci.unkeyable().items():
        # Refused as the Rules page refuses it: a box set so before still loads it (and
        # raises pci_code_unkeyable), but no new setting brings such a code in.
        raise ConfigError(
            why[0].lower() + why[1:].rstrip("."),
            source=source,
            field="config.policy.pci." + name,
        )
    if config.hat is not None:
        from board.hat import load_hat

        try:
            load_hat(config.hat)
        except ConfigError as exc:
            # A box that cannot load its HAT does not start: refused here, not found at the start.
            raise ConfigError(
                "names a HAT this box cannot load (%s)" % exc.message, source=source, field="config.hat"
            ) from None
    for i, item in enumerate(config.policy.rules.numbers):
        for k, pattern in enumerate(item.patterns):
            if is_sealed(pattern):
                raise ConfigError(
                    "is sealed with a box's own key: export the configuration again from that box, "
                    "with its recorder running",
                    source=source,
                    field="config.policy.rules.numbers[%d].patterns[%d]" % (i, k),
                )
    site = _check_site(doc.get("site"), source)
    files = _check_files(doc.get("files") or {}, source)
    name = config.policy.consent.announcement.file
    if name is not None and "announcements/" + name not in files:
        raise ConfigError(
            'names %s, which is not in the file\'s "files"' % name,
            source=source,
            field="config.policy.consent.announcement.file",
        )
    return config, site, files


# The sections an export always holds whose absence would quietly set what the box
# records, tells callers and keeps to the defaults (a hand-cut or truncated file).
WHOLE_SECTIONS = {
    "config": ("country", "policy"),
    "config.policy": ("rules", "consent", "pci", "retention"),
}


def _check_whole(config, source):
    if not isinstance(config, dict):
        return  # BoxConfig.from_dict says what it must be
    for path, keys in WHOLE_SECTIONS.items():
        node = config
        for part in path.split(".")[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for key in keys:
            if key not in node:
                raise ConfigError(
                    "is missing: an export holds every section, and one left out would be set to its "
                    "defaults (the consent notice off, the rules and retention reset); export the "
                    "configuration again",
                    source=source,
                    field="%s.%s" % (path, key),
                )


def _check_site(data, source):
    if data is None:
        return None
    from web.site import SiteSettings, form_values, parse_site_form

    if not isinstance(data, dict) or not isinstance(data.get("lines"), list):
        raise ConfigError("must be the site settings object of an export", source=source, field="site")
    data = dict(data)
    dpia_reviewed = data.pop("dpia_reviewed", "")
    if not isinstance(dpia_reviewed, str):
        raise ConfigError("must be a date (YYYY-MM-DD) or empty", source=source, field="site.dpia_reviewed")
    # No region: England's bank holidays, as every box counted before there was a choice.
    region = data.pop("region", DEFAULT_REGION)
    if not isinstance(region, str):
        raise ConfigError("must be one of %s" % ", ".join(REGIONS), source=source, field="site.region")
    carried = {}
    for name in CARRIED:
        carried[name] = data.pop(name, "")
        if not isinstance(carried[name], str):
            raise ConfigError("must be text", source=source, field="site." + name)
    try:
        settings = SiteSettings.from_json(json.dumps(data))
        settings = dataclasses.replace(settings, dpia_reviewed=dpia_reviewed, region=region, **carried)
    except (TypeError, KeyError, ValueError) as exc:
        raise ConfigError("is not a site settings object (%s)" % exc, source=source, field="site") from None
    if [x.line for x in settings.lines] != list(range(1, len(settings.lines) + 1)):
        raise ConfigError("must list lines 1, 2, ... in order", source=source, field="site.lines")
    form = form_values(settings, len(settings.lines))
    parsed, errors = parse_site_form(form, len(settings.lines))
    if errors:
        field, message = sorted(errors.items())[0]
        raise ConfigError(message, source=source, field="site." + field)
    return parsed


def _check_files(files, source):
    if not isinstance(files, dict):
        raise ConfigError("must be an object of name: base64", source=source, field="files")
    out = {}
    for name, text in files.items():
        where = "files." + name
        m = ANNOUNCEMENT_FILE.match(name)
        if not m:
            raise ConfigError("only announcements/NAME.wav files can be imported", source=source, field=where)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise ConfigError("is not base64", source=source, field=where) from None
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError("is larger than %d MiB" % (MAX_FILE_BYTES >> 20), source=source, field=where)
        _check_announcement(data, where, source)
        out[name] = data
    return out


def _check_announcement(data, where, source):
    from .policy.announcement import validate_announcement_wav

    try:
        validate_announcement_wav(data)
    except ValueError as exc:
        raise ConfigError(str(exc), source=source, field=where) from None


def _changed(data_dir, config, cipher=None):
    """The settings ``config`` changes from the box's, as dotted names (no values: a rule's
    patterns may be numbers); None when the box's own cannot be read. ``cipher`` opens the
    box's sealed number patterns (sealed, every one would read as changed)."""
    try:
        old = load_config(data_dir, cipher).to_dict()
    except (LinekeeperError, OSError):
        return None  # unreadable (a sealed pattern that no longer opens): the import mends it
    out = []

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), path + (key,))
        elif a != b:
            out.append(".".join(path))

    walk(old, config.to_dict(), ())
    return out


def _keep_require_notice(data_dir, config, doc, cipher=None):
    """``config`` (an import's) with the box's own ``policy.consent.require_notice`` when the
    file does not say it: only a box ``linekeeper init`` made has it, and an export writes it
    only where it is set, so a file from another box would drop it, and an import that sets
    no notice would have the box record calls nobody was told of."""
    said = doc["config"].get("policy", {}).get("consent", {})
    if "require_notice" in said:
        return config
    try:
        own = load_config(data_dir, cipher).policy.consent.require_notice
    except (LinekeeperError, OSError):
        return config  # unreadable: the import mends it, as the file says
    if not own:
        return config
    consent = dataclasses.replace(config.policy.consent, require_notice=True)
    return config.replace(policy=dataclasses.replace(config.policy, consent=consent))


def _not_on_trial(data_dir, config, doc, source=None, cipher=None):
    """Refuse ``config`` (an import's) while an update is on trial when it turns on the
    personal-call code or gives a line an outside-line digit the box's own did not have:
    the release before refuses such a ``config.json``, and a rollback would start it on the
    file, so its recorder would not start (docs/updates.md, "On trial").

    :raises ConfigError: naming the first such field of the file
    """
    from .datadir import site_local_time
    from .update.inbox import on_trial, trial_refusal

    trial = on_trial(data_dir)
    if trial is None:
        return
    try:
        saved = load_config(data_dir, cipher).policy.rules
    except (LinekeeperError, OSError):
        saved = BoxConfig().policy.rules  # unreadable: the import mends it; nothing set
    added = config.policy.rules.newly_set_for_release_before(saved)
    if not added:
        return
    what, line = added[0]
    field = "config.policy.rules.personal.dtmf_code"
    if what == "outside_line":
        lines = doc["config"]["policy"]["rules"]["lines"]
        at = next(i for i, item in enumerate(lines) if item.get("line") == line)
        field = "config.policy.rules.lines[%d].outside_line" % at
    raise ConfigError(trial_refusal(trial, site_local_time(data_dir).when), source=source, field=field)


def _same_hat(data_dir, config, source=None, cipher=None):
    """Refuse ``config`` (an import's) when it names another HAT than the one the box has
    configured: a file from another box (the first box of a business, given to its second)
    carried that box's HAT, whose pins and lines are not this one's, and a file without one
    put a box with a HAT on the simulator, so from its next start it recorded nothing. A box
    with none configured (a new card) takes the file's.

    :raises ConfigError: naming ``config.hat``, both HATs and what to do
    """
    current = current_config(data_dir, cipher)
    if current is None:
        return  # unreadable: the import mends it, as the file says
    own = current.hat
    if own is None or config.hat == own:
        return
    raise ConfigError(
        "this box's HAT is %r and the file's is %s: the HAT is the box's own hardware, not a setting "
        'to copy from another box; set "hat": %s in the file\'s "config" to import the rest'
        % (own, "none (the simulated board)" if config.hat is None else repr(config.hat), json.dumps(own)),
        source=source,
        field="config.hat",
    )


def _fits_lines(config, site, source=None):
    """Refuse ``config`` and ``site`` (an import's) when they name more lines than the box
    has, its HAT's (the box's own, :func:`_same_hat`): a 6-line box's file imported onto a
    4-line box was taken without a word, and the site settings then listed lines the box
    does not have (the Settings page, reports and keys went by them). Without a HAT (the
    simulated board) a box has the lines asked of it: nothing to hold them against.

    :raises ConfigError: naming the first such field, both counts and what to do
    """
    if config.hat is None:
        return
    from board.hat import load_hat

    has = len(load_hat(config.hat).lines)  # loaded by check_import already: it loads

    def refuse(field, what, beyond):
        raise ConfigError(
            "%s, and this box has %d (its HAT %r): the file is another box's, whose lines are not "
            "this one's; take line%s %s out of the file (%s), then import it again"
            % (
                what,
                has,
                config.hat,
                "s" if len(beyond) > 1 else "",
                ", ".join(str(n) for n in beyond),
                'its "site" "lines", and any rule or "not_connected" for them',
            ),
            source=source,
            field=field,
        )

    if site is not None and len(site.lines) > has:
        beyond = [x.line for x in site.lines if x.line > has]
        refuse("site.lines", "the file has %d lines" % len(site.lines), beyond)
    for i, item in enumerate(config.policy.rules.lines):
        if item.line > has:
            refuse(
                "config.policy.rules.lines[%d].line" % i,
                "the file has a rule for line %d" % item.line,
                [item.line],
            )
    beyond = sorted(n for n in config.not_connected if n > has)
    if beyond:
        refuse("config.not_connected", "the file names line %d as not connected" % beyond[0], beyond)


def current_config(data_dir, cipher=None):
    """The configuration of the box in ``data_dir``, or None when it cannot be read."""
    try:
        return load_config(data_dir, cipher)
    except (LinekeeperError, OSError):
        return None


def archive_box_id(config):
    """The box_id ``config`` (a :class:`BoxConfig` or None) archives under: None when its
    archive is off, or there is no configuration."""
    return config.archive.box_id if config is not None and config.archive.enabled else None


def box_id_taken(before, after):
    """What ``config import`` says when it has the box archive under another box_id
    (``after``) than it did (``before``, None when the archive was off), or None. The file
    may be another box's (a business's first box, given to its second) or an earlier
    card's: under their box_id the archive refuses every call of this box (docs/archive.md,
    "A new card"), found only once calls failed. Said, not refused: a box_id chosen for
    this box in the file reads the same."""
    if after is None or after == before:
        return None
    return (
        "the box archives under box_id %s now (it was %s): if that is another box's or an "
        'earlier card\'s, give this box one of its own ("box_id" in config.json\'s "archive", '
        "then restart the box); under the same box_id the archive refuses this box's calls"
        % (after, "none" if before is None else before)
    )


# The caller-ID standards (telephony.countries' codes) in words.
CID_WORDS = {"v23": "V.23", "bell202": "Bell 202", "dtmf": "DTMF"}


def country_changed(before, after):
    """What ``config import`` says when it has the box's telephony country ``after`` where it
    was ``before`` (None: not known), or None. The file may be a box's of another country:
    from then the box listens for that country's tones and ring cadence, reads its caller
    ID standard and its numbers, so on this box's lines it would hear no caller's number and
    take the tones for something else. Said, not refused: a box moved is set so."""
    from telephony import countries

    if before is None or after == before:
        return None
    old, new = countries.country(before), countries.country(after)

    def cid(country):
        return " or ".join(CID_WORDS.get(c, c) for c in country.cid_standards)

    return (
        "the telephony country is now %s (%s), not %s (%s): the box listens for that country's "
        "tones and ring cadence, reads caller ID as %s (it read %s) and reads numbers, the "
        "rules' patterns among them, as that country writes them; if the box is still on %s "
        'lines, set "country": "%s" in the file\'s "config" and import it again'
        % (new.name, after, old.name, before, cid(new), cid(old), old.name, before)
    )


def waits_for_notice(data_dir, cipher=None):
    """Whether the box in ``data_dir`` records nothing until a consent notice is set
    (:meth:`firmware.policy.consent.ConsentSettings.waits_for_notice`); False when its
    configuration cannot be read."""
    try:
        return load_config(data_dir, cipher).policy.consent.waits_for_notice()
    except (LinekeeperError, OSError):
        return False


def import_config(data_dir, doc, source=None, cipher=None, audited=None):
    """Check ``doc`` whole, then write it into ``data_dir``; returns the sections written.
    ``cipher``: the box's field cipher, which seals the rules' number patterns;
    ``audited(sections, changed=...)``: called once the document is checked, before
    anything is written (the import is audited first: a cut part way leaves its entry),
    with the names of the settings it changes.

    :raises ConfigError: the document is invalid: nothing was changed
    """
    config, site, files = check_import(doc, source)
    config = _keep_require_notice(data_dir, config, doc, cipher)
    _not_on_trial(data_dir, config, doc, source, cipher)
    _same_hat(data_dir, config, source, cipher)
    _fits_lines(config, site, source)
    db = None
    if site is not None:
        from web.db import WebDb
        from web.site import Site

        db = WebDb(os.path.join(data_dir, "web.db"))
    try:
        current = None if db is None else Site(db).settings()
        if site is not None:
            site = _site_as_kept(site, current, doc, config)
        if audited is not None:
            changed = _changed(data_dir, config, cipher)
            if changed is not None and site is not None:
                changed += _site_changed(current, site)
            audited(sorted(files) + ["config"] + (["site"] if site is not None else []), changed=changed)
        written = []
        for name, data in sorted(files.items()):
            directory = os.path.join(data_dir, "announcements")
            fsutil.make_private_dir(directory)
            fsutil.atomic_write(os.path.join(data_dir, name), data)
            written.append(name)
        save_config(data_dir, config, cipher)
        written.append("config")
        if db is not None:
            with db.tx() as conn:
                Site(db).save(conn, site)
            written.append("site")
    finally:
        if db is not None:
            db.close()
    return written


def _site_as_kept(site, current, doc, config):
    """The site settings an import writes: the file's, with what the box keeps of its own
    (``current``, None before setup) where the file has none."""
    if not site.dpia_reviewed and current is not None:
        # An export carries no DPIA date: the box keeps the one it has.
        site = dataclasses.replace(site, dpia_reviewed=current.dpia_reviewed)
    for group in (BASIS, CONTACT):
        if current is not None and not any(doc["site"].get(name) for name in group):
            # A file from the release before, or a box that had none: the box's
            # own are kept rather than cleared (Settings clears them).
            site = dataclasses.replace(site, **{name: getattr(current, name) for name in group})
    # The lines with nothing plugged in ride in the configuration (the site settings'
    # JSON, which the release before imports, has no place for them): the site
    # settings say what it says, or the Settings page would show them private.
    return dataclasses.replace(
        site, not_connected=tuple(sorted(n for n in config.not_connected if n <= len(site.lines)))
    )


def _site_changed(current, site):
    """The site settings ``site`` changes of the box's ``current`` (None before setup: all
    of them), as ``site.NAME``: the lines' names and choices are settings too, and an entry
    that listed only config.json's said an import that renamed every line changed nothing."""
    if current is None:
        return ["site." + f.name for f in dataclasses.fields(site) if getattr(site, f.name)]
    names = [f.name for f in dataclasses.fields(site)]
    return ["site." + name for name in names if getattr(current, name) != getattr(site, name)]
