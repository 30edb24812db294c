"""From the box's configuration and state: the checklist's inputs, the staff and caller notices."""

import hashlib
import logging
import sqlite3
import threading

from firmware import keybackup
from firmware.alarmchecks import settings_reminders
from firmware.compliance import BoxState, amber_alarms, contact_parts
from firmware.config import BoxConfig
from firmware.errors import KeyStoreError, LinekeeperError, TamperError
from firmware.lawfulbasis import basis_words
from firmware.mail.alarms import unreached_lines
from firmware.policy.describe import line_words, pause_words
from firmware.policy.pause import button_wired, pause_button_wired
from firmware.policy.retention import details_words, retention_words
from firmware.policy.settings import RecordingRules
from firmware.sarletter import LetterFacts
from firmware.storage.audit import canonical_json
from firmware.storage.fieldseal import FieldSealError

_NOTICE_KEPT = threading.Lock()  # one entry for a new version, however many keep it at once

log = logging.getLogger(__name__)


def private_lines(web):
    """The lines never recorded, as the recorder sees them: mode "never" in the rules, less
    the lines not connected (:func:`not_connected_lines`), which are no private phone.

    The site settings' "private" sets that mode (``web.services.site_settings_applier``)
    but the rules are what the recorder follows, so every page that says whether a
    line is recorded reads them; the site settings only on a box with no
    configuration to read."""
    if web.services.box_config is not None:
        config = web.services.box_config.get(leave_sealed=True)  # config.json, read once
        rules = config.policy.rules
        return {
            n
            for n in range(1, web.n_lines + 1)
            if rules.mode(n) == "never" and n not in set(config.not_connected)
        }
    site = web.site.settings()
    if site is None:
        return set()
    return {line.line for line in site.lines if not line.record and line.line not in site.not_connected}


def not_connected_lines(web):
    """The lines marked as having nothing plugged into their socket (neither recorded nor
    private: never recorded, no line-fault alarm), as the recorder sees them: the
    configuration's ``not_connected``; the site settings' on a box with no configuration."""
    if web.services.box_config is not None:
        config = web.services.box_config.get(leave_sealed=True)
        return {n for n in config.not_connected if n <= web.n_lines}
    site = web.site.settings()
    return {n for n in site.not_connected if n <= web.n_lines} if site is not None else set()


def undecided_lines(web):
    """The lines nobody chose as recorded or private: added after setup (a bigger HAT, a
    line count raised), so absent from the site settings, and with no mode of their own in
    the rules. They follow the rules' default mode, as every line ever did (docs/policy.md).
    Sorted; [] before setup (the wizard asks for every line)."""
    site = web.site.settings()
    if site is None:
        return []
    decided = {line.line for line in site.lines}
    if web.services.box_config is not None:
        decided |= {m.line for m in web.services.box_config.get(leave_sealed=True).policy.rules.lines}
    return [n for n in range(1, web.n_lines + 1) if n not in decided]


def private_but_recording(web):
    """The private lines whose call is being recorded now: a call keeps the decision it
    was given (docs/policy.md), so one under way when its line was made private is
    recorded to its end unless paused. Sorted; [] when the box cannot say."""
    live = web.services.live
    if live is None:
        return []
    return sorted(private_lines(web) & set(live.recording_lines()))


def key_store_fingerprint(web):
    """The fingerprint of the box's key store (its admin public key), or None without one."""
    try:
        return keybackup.key_store_fingerprint(web.services.keystore.public_key())
    except (KeyStoreError, TamperError):
        return None


def key_store_contents(web):
    """What the box's key store holds now (:func:`firmware.keybackup.key_store_contents`), or
    None without one, or when it cannot be read."""
    try:
        raw, _ = web.services.keystore.copy_bytes()
        return keybackup.key_store_contents(raw)
    except (KeyStoreError, TamperError, OSError, ValueError):
        return None


KEY_BACKUP_PAGE = keybackup.BACKUP_ENTRIES_PAGE  # key_backup entries read at a time


def last_key_backup(web):
    """The newest key store backup made, from the box's audit trail
    (:func:`firmware.keybackup.last_backup`), or None."""
    return keybackup.last_backup(web.services.audit)


def box_state(web):
    """A :class:`firmware.compliance.BoxState` read from the box (``web``: :class:`web.Web`)."""
    services = web.services
    site = web.site.settings()
    config = services.box_config.get(leave_sealed=True) if services.box_config is not None else BoxConfig()
    rules = config.policy.rules
    private = private_lines(web)
    open_alarms = (
        tuple(sorted({r["kind"] for r in services.alarms.banner() if r["cleared_us"] is None}))
        if services.alarms
        else ()
    )
    retention = services.retention
    audit = web.audit_checked()
    mail = services.mail.store.get() if services.mail is not None else None
    return BoxState(
        # The box's own date (its zone's), as every page gives it: near midnight the UTC
        # date is another day, and the ICO renewal's days left one off.
        today=web.local_time().local(services.wall_us()).date(),
        country=site.country if site else config.country,
        purpose=site.purpose if site else "",
        ico_number=site.ico_number if site else "",
        ico_renewal=site.ico_renewal if site else "",
        dpia_reviewed=site.dpia_reviewed if site else "",
        organisation=site.organisation if site else "",
        lawful_basis=site.lawful_basis if site else "",
        lia_date=site.lia_date if site else "",
        dp_contact=site.dp_contact if site else "",
        dp_address=site.dp_address if site else "",
        dp_email=site.dp_email if site else "",
        dp_phone=site.dp_phone if site else "",
        config=config,
        rules_configured=rules != RecordingRules(),
        private_lines=tuple(sorted(private)),
        undecided_lines=tuple(undecided_lines(web)),
        keys_initialised=services.keystore.is_initialised,
        recovery_confirmed=web.site.recovery_confirmed,
        audit_problems=tuple(audit.problems),
        audit_unchecked=audit_unchecked(audit),
        audit_checking=audit.checked_us is None and audit.failed is None and audit.checking,
        open_alarms=open_alarms,
        announcement_problem=announcement_problem(services, config),
        retention_suspended=(retention.guard.suspended or "") if retention is not None else "",
        alarm_recipients=len(mail.alarm_to) if mail else 0,
        # A line with nothing plugged in has no calls to tell anyone of: no nag for it.
        unreached_lines=tuple(
            n
            for n in (unreached_lines(mail, web.accounts.lines(), web.n_lines) if mail else ())
            if n not in not_connected_lines(web)
        ),
        mail_missing=mail.missing if mail else ("mail server", "sender address"),
        report_schedules=len(mail.schedules) if mail else 0,
        supervisors=sum(1 for u in web.accounts.all() if "supervisor" in u.roles),
        **key_backup_state(web),
    )


def key_backup_state(web):
    """The :class:`BoxState` fields safeguard 18 (the key store's backup) reads;
    ``key_backup_sealed`` True, and no backup, while the audit trail's ``key_backup``
    entries are sealed and the box's key not open (the recorder not started yet)."""
    state = {"key_store": key_store_fingerprint(web) or "", "key_store_contents": key_store_contents(web)}
    try:
        backup = last_key_backup(web)
    except FieldSealError as exc:
        log.warning("the key store's backups are not read now (%s)", exc)
        return dict(state, key_backup_sealed=True)
    return dict(
        state,
        key_backup_of=(backup[1] or "") if backup else "",
        key_backup_date=web.local_time().local(backup[0]).date().isoformat() if backup else "",
        key_backup_contents=backup[2] if backup else None,
    )


def checklist_reminders(web):
    """``{kind: reason or False}`` of the checklist's ambers that are alarms too
    (:func:`firmware.compliance.amber_alarms`: the key store's backup out of date, the DPIA
    due for review), as :class:`firmware.alarmchecks.DateChecks` takes its reminders and
    the dashboard says them: ``{}`` before the setup wizard is finished, or when web.db or
    the audit trail cannot be read now (locked): the alarms stay as they are. While the key
    store's backups are sealed (the box's key not open until the recorder has started) the
    backup's alarm is left out (left as it is), the DPIA's told all the same."""
    try:
        if not web.site.setup_complete:
            return {}
        site = web.site.settings()
        state = BoxState(
            today=web.local_time().local(web.services.wall_us()).date(),
            dpia_reviewed=site.dpia_reviewed if site else "",
            **key_backup_state(web),
        )
    except (sqlite3.Error, OSError) as exc:
        log.warning("the checklist's reminders are not checked now (%s)", exc)
        return {}
    told = amber_alarms(state)
    if state.key_backup_sealed:  # 18 cannot be told now: no reason to raise or clear its alarm
        del told["keystore_backup_stale"]
    return told


def box_reminders(web, data_dir):
    """``{kind: on or reason}`` of every reminder the web UI tells the box's round
    (:class:`firmware.alarmchecks.DateChecks`): the site flags' and config's
    (:func:`firmware.alarmchecks.settings_reminders`) and the checklist's
    (:func:`checklist_reminders`). While a session holds a recovery key to confirm (the
    wizard's, or a new one from Settings, being written down) it is not "never confirmed":
    that reminder is left as it is, and told once the session confirms it or ends."""
    # Asked before and after the flags are read: a key confirmed, or one begun, between the
    # two reads is not taken for one never confirmed.
    waiting = web.sessions.recovery_waiting()
    told = settings_reminders(data_dir) | checklist_reminders(web)
    if waiting or web.sessions.recovery_waiting():
        told.pop("recovery_key_unconfirmed", None)
    return told


def announcement_problem(services, config):
    """Why the announcement ``config``'s notices need cannot be played, as the Consent page
    says it, or "": it can, or no notice needs it (``services.consent`` makes it as the
    recorder does, and keeps it in memory)."""
    consent = config.policy.consent
    if services.consent is None or "announcement" not in (consent.inbound, consent.outbound):
        return ""
    try:
        services.consent.samples()
    except LinekeeperError as exc:
        return str(exc)
    return ""


def audit_unchecked(check):
    """Why the audit trail (its :class:`web.ChainCheck`) is not known to verify though no
    problem was found, in the checklist's words, or ""."""
    if check.failed is not None:
        return "the audit trail could not be checked (%s): an alarm was raised" % check.failed
    if check.since_failed is not None:
        return "the audit trail's newest entries could not be checked (%s): an alarm was raised" % (
            check.since_failed
        )
    if check.checked_us is None and check.checking:
        return (
            "the first check of the whole audit trail since the web UI started is running now: "
            "look again in a minute for its result"
        )
    if check.checked_us is None:
        # Not "being checked" when none runs (the web UI stopping): the next visit starts one.
        return (
            "the audit trail has not been checked since the web UI started: open this page "
            "again to start a check"
        )
    return ""


def staff_notice(web):
    """The staff notice's facts: organisation, purpose, lines, retention_days, listeners ...

    Read from the settings alone, not the whole :func:`box_state` (the audit trail's check,
    the alarms, the key backups): a form saved keeps the notice's words as it is answered,
    and the web UI's start keeps them too (:func:`keep_notice`)."""
    services = web.services
    site = web.site.settings()
    config = services.box_config.get(leave_sealed=True) if services.box_config is not None else BoxConfig()
    private_of = private_lines(web)
    # A socket with no line plugged in has no phone for staff to use: left out of the notice.
    unplugged = not_connected_lines(web)
    ico_number = site.ico_number if site else ""
    country = site.country if site else config.country
    lines = []
    for n in range(1, web.n_lines + 1):
        if n in unplugged:
            continue
        name = site.line(n).name if site else "Line %d" % n
        private = n in private_of
        lines.append(
            {
                "line": n,
                "name": name,
                "recorded": not private,
                # Which of its calls, from the rules the recorder follows: "recorded by the
                # rules" alone told staff nothing of which.
                "how": "never recorded" if private else line_words(config.policy, n, config.hat),
            }
        )
    facts = {
        "organisation": site.organisation if site else "",
        "purpose": site.purpose if site else "",
        "ico_number": ico_number,
        "lines": lines,
        "retention_days": config.policy.retention.default_days,
        # A rule's line named as the pages name it, "line 2 (Office)".
        "retention": retention_words(
            config.policy.retention, {x.line: x.name for x in site.lines} if site else None
        ),
        # Said after "No retention period is set yet" when no recording is ever deleted (the
        # sentence above says it otherwise): staff must be told how long callers' details
        # stay. Only when set, so a notice's words (its digest) stay as they were without.
        **(
            {"details": details_words(config.policy.retention)}
            if config.policy.retention.call_details_days is not None
            else {}
        ),
        # Each with the lines they may open (their grants): a name alone told staff nothing
        # of who may hear their line.
        # A private line records nothing to listen to: a supervisor of one was said to
        # listen on it; their private lines are left out ("no recorded line" if only those).
        # Enabled accounts alone: a disabled one logs in to nothing and plays nothing, and
        # was named as one who may listen until it was deleted.
        "listeners": [
            "%s (%s)" % (u.name, listened_words(u.lines, private_of | unplugged))
            for u in sorted(web.accounts.all(), key=lambda u: u.name)
            if "supervisor" in u.roles and u.disabled_us is None
        ],
        # Recordings copied to the organisation's archive can be played there too.
        "archived": services.archive is not None,
        "pci": pause_how(config),
        "pci_resume": resume_how(config),
        "recall": recall_advice(config) if any(x["recorded"] for x in lines) else None,
        "outgoing": outgoing_advice(config, [x for x in lines if x["recorded"]]),
        "announcement": caller_notice(config),
        "rights": rights_words(site.organisation if site else "", ico_number, country),
        "lawful_basis": basis_words(site.lawful_basis if site else "", country),
        # (contact_words reads the site settings' dp_* as a BoxState's.)
        "contact": contact_words(site) if site else "",
    }
    listed = private_listed([x["name"] for x in lines if not x["recorded"]])
    if listed:
        # Only where a line is private: a notice with none keeps the words it had.
        facts["private_listed"] = listed
    personal = personal_how(config, [x for x in lines if x["recorded"]])
    if personal:
        # Only where the code is on: the words of every notice before it are kept unchanged
        # (each version is known by the digest of these facts).
        facts["personal"] = personal
    return facts


def private_listed(names):
    """What the box keeps of a call on the private lines ``names`` (their names), in a
    sentence, or None when there is none: staff told only "never recorded" would take the
    call for unseen, when it is listed as every call is and its supervisors see it live."""
    if not names:
        return None
    lines = " or ".join(names) if len(names) <= 2 else "%s or %s" % (", ".join(names[:-1]), names[-1])
    # The auditors list every line's calls too (web.security.visible_lines): the notice
    # named the supervisors alone.
    return (
        "A call on %s is still listed in the call log, as every call is (when, the number, how "
        "long): the supervisors of %s see it as it happens, and they and the auditors may read "
        "the log. Only what is said is never recorded."
        % (lines, names[0] if len(names) == 1 else "those lines")
    )


def personal_how(config, recorded):
    """How staff make a personal call unrecorded (``policy.rules.personal``) on the recorded
    lines it works on, in a sentence, or None when it is off (or on none of them)."""
    personal = config.policy.rules.personal
    names = [x["name"] for x in recorded if personal.on(x["line"])]
    if not names:
        return None
    return (
        "For a personal call on %s, key %s on the handset once the call is connected (one you "
        "make or one you take): it is not recorded, and what was recorded of it is deleted at "
        "once. The call itself is still listed (when, the number, how long), and supervisors "
        "see how many calls each line marked personal, never what was said."
        % (names_words(names, "or"), personal.dtmf_code)
    )


def notice_digest(n):
    """The SHA-256 of the notice ``n``'s facts, as its ``staff_notice`` entry keeps it."""
    return hashlib.sha256(canonical_json(n).encode("ascii")).hexdigest()


def keep_notice(web, n, actor, address=None, saved=False):
    """The audit trail's ``staff_notice`` entry of the notice ``n`` (its facts): the newest
    one, when it holds these words; else one written now by ``actor``, keeping them (so that
    what the notice said on any day can be shown again, and when it changed is in the trail).
    ``saved``: written as the settings that make these words were saved (a page's form, or
    the web UI's start after a ``config import``), so its time is when they took effect
    (``saved`` in its details), not when they were first shown."""
    log = web.services.audit
    digest = notice_digest(n)
    with _NOTICE_KEPT:
        last = log.entries(limit=1, action="staff_notice")
        if last and last[0].details.get("digest") == digest:
            return last[0]
        details = {"digest": digest, "notice": n}
        if saved:
            details["saved"] = True
        if address is not None:  # a page's, as every entry from a page carries it
            details["address"] = address
        log.append(actor, "staff_notice", "staff_notice", details, int(web.services.wall_us()))
        return log.entries(limit=1, action="staff_notice")[0]


def keep_notice_at_start(web):
    """At the web UI's start: the notice's words kept as in effect from now when they are not
    the newest version kept (settings changed outside the pages, by ``linekeeper config
    import``, which a running box uses at once: shown before this, they were kept then).
    Nothing on a box that has kept no version yet: its first showing keeps one."""
    keep_notice_changed(web)


def keep_notice_changed(web):
    """The notice's words kept as in effect from now, by ``system``, when they are not the
    newest version kept: settings changed outside the pages' forms (a ``config import``, a
    supervisor the box disabled as unused, no longer among who may listen). Nothing on a
    box that has kept no version yet: its first showing keeps one."""
    if web.services.audit.entries(limit=1, action="staff_notice"):
        keep_notice(web, staff_notice(web), "system", saved=True)


def names_words(names, last="and"):
    """Names in a sentence: ``Sales``, ``Sales and Office``, ``Sales, Office and Fax``
    (``last`` "or": ``Sales, Office or Fax``)."""
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return "%s %s %s" % (", ".join(names[:-1]), last, names[-1])


def lines_words(lines):
    """Granted lines in words: ``line 3``, ``lines 1 and 2``, ``lines 1, 2 and 4``; ``no
    line yet`` for none."""
    said = [str(n) for n in sorted(lines)]
    if not said:
        return "no line yet"
    if len(said) == 1:
        return "line " + said[0]
    return "lines %s and %s" % (", ".join(said[:-1]), said[-1])


def listened_words(lines, private):
    """A supervisor's granted ``lines`` they may listen on, in words (:func:`lines_words`):
    the ``private`` ones (never recorded) left out, "no recorded line" where only those."""
    recorded = set(lines) - set(private)
    return lines_words(recorded) if recorded or not lines else "no recorded line"


def contact_words(state):
    """Who answers data protection questions and how to reach them, in a sentence
    ("Data Protection Officer, 1 High Street, Anytown; dpo@example.com; 01632 960123."),
    or "" when nothing was given (``state``: a :class:`BoxState`, or the site settings)."""
    name, *ways = (value for _, value in contact_parts(state))
    ways = [x for x in ways if x]
    if not name and not ways:
        return ""
    return "Questions about data protection: %s." % "; ".join(
        [", ".join(x for x in (name, ways[0] if ways else "") if x)] + ways[1:]
    )


def rights_words(organisation, ico_number, country):
    """What the staff notice says of their rights over their recordings, and where to
    complain (UK GDPR: access, erasure, objection; the ICO in the UK): in writing, or on the
    My line page, whose request form logs it at once; the notice said "in writing" alone."""
    text = (
        "Ask a supervisor, or %s, in writing, for a copy of your own recordings (answered within "
        "one month), for a recording of you to be erased, or if you object to being recorded. "
        "If you have a staff account on this box, you can also ask on its My line page (Ask "
        "about your recordings): your request is logged at once, and the page shows when it is "
        "due." % (organisation or "the organisation")
    )
    if ico_number:
        text += " ICO registration: %s." % ico_number
    if country == "uk":
        text += (
            " If you are not satisfied with the answer, you may complain to the Information "
            "Commissioner's Office: ico.org.uk/make-a-complaint, 0303 123 1113."
        )
    return text


def recall_advice(config):
    """What staff must do when they reach a third person mid-call: the box keeps the
    call's decision and notice across a recall (R), so that person hears no notice."""
    how = pause_how(config)
    pause = ", or pause the recording (%s)" % how if how else ""
    return (
        "If you transfer a call or bring someone else in (the R or recall button), the "
        "person you reach is recorded as part of the same call and hears no notice of "
        "their own: tell them the call is recorded%s." % pause
    )


def outgoing_advice(config, recorded):
    """What staff must know of the calls they make: one recorded is recorded from the moment
    the handset is lifted (``firmware.policy.engine``: the dialling, the ringing, and what
    they say before the far end answers), while the person called hears the notice only
    once they answer; on a line recorded only when asked, with the call from its start, only
    a call asked for is, from off-hook but at most ``lookback_s`` before the request. None
    when no line records calls made from their start."""
    rules = config.policy.rules
    names = [
        x["name"]
        for x in recorded
        if rules.mode(x["line"]) == "always"
        or (rules.mode(x["line"]) == "by_rule" and "out" in rules.directions)
    ]
    asked = [x["name"] for x in recorded if rules.mode(x["line"]) == "on_demand"]
    said = []
    if names:
        said.append(
            "A call you make on %s is recorded from the moment you lift the handset: the dialling, "
            "the ringing and anything you say before the other person answers are in the recording, "
            "and they hear the notice only once they answer." % names_words(names)
        )
    if asked and _asked_from_start(config):
        said.append(
            "A call you make on %s is recorded only if recording is asked for during the call; the "
            "recording then begins at the moment you lifted the handset, or %d s before the request "
            "if that was longer ago: the dialling, the ringing and what you said before the other "
            "person answered may be in it." % (names_words(asked), rules.on_demand.lookback_s)
        )
    return " ".join(said) or None


def _asked_from_start(config):
    """Whether a call made on a line recorded only when asked keeps what came before the
    request: a way to ask is set, ``from_start`` is, and the call's notice is not the
    warning tone alone (its beep at the request is the notice, so the recording begins
    there: docs/policy.md)."""
    policy = config.policy
    on_demand = policy.rules.on_demand
    way = on_demand.dtmf_code or (on_demand.button and button_wired(config.hat, "record_button"))
    tone_only = policy.consent.outbound == "off" and policy.consent.warning_tone.enabled
    return bool(way) and on_demand.from_start and not tone_only


def pause_how(config):
    """How staff pause the recording for card details (the keypad code, the line's pause
    button, or both), or None when they cannot."""
    return pause_words(config.policy.pci, config.hat)


def resume_how(config):
    """How a pause for card details ends, in a sentence for staff: the resume code or the
    button again once the details are given, and the time after which it ends by itself
    (``policy.pci.auto_resume_s``), so that details that take longer are paused again."""
    pci = config.policy.pci
    ways = []
    if pci.resume_code:
        ways.append("key %s" % pci.resume_code)
    if pci.button and pause_button_wired(config.hat):
        ways.append("press the pause button again")
    seconds = pci.auto_resume_s
    after = (
        "%d minute%s" % (seconds // 60, "" if seconds == 60 else "s")
        if seconds % 60 == 0
        else "%d seconds" % seconds
    )
    by_itself = "it resumes by itself after %s: if the details take longer, pause it again." % after
    if not ways:
        return by_itself[0].upper() + by_itself[1:]
    return "Once the details are given, %s to resume; %s" % (" or ".join(ways), by_itself)


def _ended(sentence):
    """``sentence`` with its full stop, unless it ends with the announcement's own words
    quoted, already ended ("…agreed.”"): a second stop after the quote reads as a typo."""
    if sentence.endswith("\u201d") and sentence[-2:-1] in (".", "!", "?"):
        return sentence
    return sentence + "."


def caller_notice(config):
    """What callers and the people called are told, in a sentence or two: the
    announcement's text, or what a tone means, for each direction ("" when neither
    is told). The warning tone (docs/policy.md) is, after a notice, a reminder every
    ``interval_s``; in a direction given no other notice it is the notice, its first
    beep as the call is answered."""
    consent = config.policy.consent
    tone = consent.warning_tone

    def heard(mode):
        if mode == "announcement":
            if consent.announcement.file:
                # Not the file's name (the box's own making) nor whose words: its words are
                # not on the box, and staff hear them on every such call.
                return (
                    "a recorded announcement chosen for this business is played as the call is "
                    "answered (you hear it on the line too)"
                )
            return "they hear: \u201c%s\u201d" % consent.announcement.text
        if mode == "tone":
            return "a beep when the call is answered means it may be recorded"
        if tone.enabled:
            return (
                "a short beep as a recorded call is answered (or as its recording begins, "
                "when asked for later), and every %g s after, means the call is recorded" % tone.interval_s
            )
        return None

    inbound, outbound = heard(consent.inbound), heard(consent.outbound)
    # After a notice at the answer the tone is a reminder; with none, heard() said it all.
    reminded = {
        (True, True): "After the notice",
        (True, False): "After the callers' notice",
        (False, True): "After the notice to the people you call",
    }.get((consent.inbound != "off", consent.outbound != "off"))
    reminder = (
        "%s, both sides of a recorded call hear a short beep every %g s, a reminder that "
        "it is recorded." % (reminded, tone.interval_s)
        if tone.enabled and reminded
        else ""
    )
    if inbound is None and outbound is None:
        return ""
    if inbound == outbound:
        said = _ended("Callers, and the people you call: %s" % inbound)
    else:
        said = "%s %s" % (
            _ended("Callers: %s" % inbound) if inbound else "Callers are not told as the call is answered.",
            _ended("People you call: %s" % outbound)
            if outbound
            else "People you call are not told as the call is answered: tell them yourself.",
        )
    return (said + " " + reminder).strip()


def letter_facts(web):
    """The :class:`firmware.sarletter.LetterFacts` of a subject access bundle's cover letter:
    the business, its purpose, retention, lines and zone as the settings give them."""
    site = web.site.settings()
    config = web.services.box_config.get() if web.services.box_config is not None else BoxConfig()
    return LetterFacts(
        organisation=site.organisation if site else "",
        ico_number=site.ico_number if site else "",
        purpose=site.purpose if site else "",
        retention=retention_words(config.policy.retention),
        country=site.country if site else config.country,
        zone=web.local_time().zone_name,
        line_names={x.line: x.name for x in site.lines} if site else {},
        archived=getattr(web.services, "archive", None) is not None,
        lawful_basis=site.lawful_basis if site else "",
        dp_contact=site.dp_contact if site else "",
        dp_address=site.dp_address if site else "",
        dp_email=site.dp_email if site else "",
        dp_phone=site.dp_phone if site else "",
    )
