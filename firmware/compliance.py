"""The compliance checklist: the box's eighteen safeguards, each green, amber or red, and why.

``web.documents.box_state`` reads the box's own state into a :class:`BoxState`;
:func:`checklist` (a pure function of it) gives one :class:`Check` per
safeguard, and :func:`recorded` what the site settings record for an auditor,
who cannot open the settings page. Red: the safeguard is not met and calls are handled unlawfully
or unsafely now; amber: met only in part, or something to do soon; green:
met, and the reason says how the box knows. docs/reports.md lists them.
"""

import dataclasses
import datetime as dt

from . import words
from .lawfulbasis import LEGITIMATE_INTERESTS, basis_words
from .localtime import day_words
from .policy.consent import DEFAULT_ANNOUNCEMENT

GREEN, AMBER, RED = "green", "amber", "red"


@dataclasses.dataclass(frozen=True)
class Check:
    number: int
    name: str
    status: str
    reason: str


@dataclasses.dataclass(frozen=True)
class BoxState:
    """What the checklist looks at; every field is read from the box (``web.documents.box_state``)."""

    today: dt.date
    country: str = "uk"
    purpose: str = ""
    ico_number: str = ""
    ico_renewal: str = ""  # ISO date or ""
    dpia_reviewed: str = ""  # ISO date the DPIA was last reviewed, or ""
    organisation: str = ""
    lawful_basis: str = ""  # a code of firmware.lawfulbasis.BASES, or ""
    lia_date: str = ""  # ISO date of the legitimate interests assessment, or ""
    dp_contact: str = ""  # who answers data protection questions: a name or role
    dp_address: str = ""  # postal address, lines apart with "\n"
    dp_email: str = ""
    dp_phone: str = ""
    config: object = None  # BoxConfig (policy settings)
    rules_configured: bool = False  # policy.rules was set, not left at the defaults
    private_lines: tuple = ()  # lines never recorded (site or rules)
    undecided_lines: tuple = ()  # lines nobody chose as recorded or private (added after setup)
    keys_initialised: bool = False
    recovery_confirmed: bool = False  # the recovery key was seen and confirmed as stored
    audit_problems: tuple = ()
    # Why the trail is not known to verify though no problem was found, or "": a check of it
    # not yet made since the web UI started (``audit_checking``), or one that could not run.
    audit_unchecked: str = ""
    audit_checking: bool = False
    open_alarms: tuple = ()  # kinds of alarms on now
    # Why the announcement the notices need cannot be played (the file gone or damaged,
    # espeak-ng missing), or "": it can, or no notice needs it.
    announcement_problem: str = ""
    retention_suspended: str = ""  # why retention sweeps are refused, or ""
    alarm_recipients: int = 0
    # Lines whose alarms no alarm recipient is tied to an account that sees
    # (firmware.mail.alarms.unreached_lines): mailed to every recipient without their details.
    unreached_lines: tuple = ()
    # What the mail settings lack to send anything (MailSettings.missing), in words.
    mail_missing: tuple = ("mail server", "sender address")
    report_schedules: int = 0
    supervisors: int = 0
    key_store: str = ""  # the key store's fingerprint (ks1:...), or "" without one
    key_backup_of: str = ""  # the fingerprint of the key store the newest backup holds, or ""
    key_backup_date: str = ""  # ISO date (the box's) that backup was made, or ""
    # What the key store holds now and what it held when that backup was made
    # (firmware.keybackup.key_store_contents), or None: unreadable, or a backup audited
    # before its entry recorded it (then only its fingerprint is compared).
    key_store_contents: object = None
    key_backup_contents: object = None
    # The key store's backups (sealed audit entries) could not be read: the trail is sealed
    # and the box's key not open until the recorder has started. 18 cannot be told then.
    key_backup_sealed: bool = False


def _cut(text, most=80):
    """``text`` (its spaces and line breaks as single spaces) in at most ``most`` characters:
    cut at the end of a word, with an ellipsis, when it is longer (a word longer than
    that alone is cut where it must be)."""
    text = " ".join(text.split())
    if len(text) <= most:
        return text
    cut = text[: most - 1]
    if text[most - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "\u2026"


def _purpose(s):
    if len(s.purpose.strip()) >= 10:
        return GREEN, "stated in setup: “%s”" % _cut(s.purpose)
    return RED, "no purpose for recording is stated (Settings)"


def _ico(s):
    if s.country != "uk":
        return GREEN, "no ICO registration is needed outside the UK"
    if not s.ico_number:
        return RED, "no ICO registration number (Settings)"
    try:
        due = dt.date.fromisoformat(s.ico_renewal)
    except ValueError:
        return AMBER, "registration %s has no renewal date (Settings)" % s.ico_number
    left = (due - s.today).days
    if left < 0:
        return RED, "registration %s expired on %s" % (s.ico_number, day_words(due))
    if left <= 30:
        return AMBER, "registration %s must be renewed by %s (%d days)" % (s.ico_number, day_words(due), left)
    return GREEN, "registration %s, renewal due %s" % (s.ico_number, day_words(due))


def _criteria(s):
    if s.undecided_lines:
        # Added after setup (a bigger HAT, a line count raised): recorded by the default rule
        # though nobody chose it, and the settings form showed them as "Record calls".
        return AMBER, (
            "%s never chosen as recorded or private: %s the default rule until an installer "
            "chooses (Settings)" % (_lines_words(s.undecided_lines), _follows(s.undecided_lines))
        )
    if s.rules_configured:
        return GREEN, "recording rules are set (Rules)"
    return AMBER, "the default rule records every call: agree the criteria and set them (Rules)"


def _private(s):
    rules = s.config.policy.rules
    excluded = [n.name for n in rules.numbers if n.action == "exclude"]
    if s.private_lines or excluded:
        parts = []
        if s.private_lines:
            lines = [str(n) for n in s.private_lines]
            parts.append("private line%s %s" % ("" if len(lines) == 1 else "s", _both(lines)))
        if excluded:
            parts.append("numbers excluded by %s" % ", ".join(excluded))
        return GREEN, "; ".join(parts)
    return AMBER, "every line records: staff have no private phone for private calls"


# Why a box that waits for a consent notice records nothing (the checklist, the dashboard).
NO_NOTICE_WORDS = "calls are logged, each marked not recorded because nobody on it was told it may be"

# What a caller hears, by the consent notice's mode.
_NOTICE_HEARD = {"tone": "a beep", "announcement": "a spoken announcement"}


def _shipped_words(s, mode):
    """Why the spoken announcement ``mode`` gives is not this site's, or None.

    The shipped text names purposes of its own ("for training and quality purposes")
    which need not be the purpose stated in Settings; the box cannot tell what an
    uploaded recording says, nor rewrite free text into a sentence to speak.
    """
    announcement = s.config.policy.consent.announcement
    if mode != "announcement" or announcement.file is not None or announcement.text != DEFAULT_ANNOUNCEMENT:
        return None
    return (
        "the announcement still says the shipped words, calls recorded \u201cfor training and "
        "quality purposes\u201d, not the purpose stated in Settings: write what it says (Consent)"
    )


def _notice_in(s):
    mode = s.config.policy.consent.inbound
    if mode == "off":
        return RED, "callers are given no notice that calls are recorded (Consent)"
    shipped = _shipped_words(s, mode)
    if shipped is not None:
        return AMBER, "callers hear %s, but %s" % (_NOTICE_HEARD.get(mode, mode), shipped)
    return GREEN, "callers hear %s when a call is answered" % _NOTICE_HEARD.get(mode, mode)


def _notice_working(s):
    if "consent_notice_failed" in s.open_alarms:
        return RED, "the consent notice is failing on a line (see the alarms)"
    consent = s.config.policy.consent
    if consent.waits_for_notice():
        # A box `linekeeper init` made: it records nothing until a notice is set.
        return RED, (
            "no notice is set in either direction, so the box records no line until one is "
            "(Consent): %s" % NO_NOTICE_WORDS
        )
    if s.announcement_problem:
        # Green said no notice had failed while the next call to need it would hear nothing
        # (and, unless set to record anyway, go unrecorded): the alarm comes only after one.
        # In the words of the alarm the recorder raises for it (announcement_unplayable).
        title = words.ALARMS["announcement_unplayable"]
        return (
            RED,
            "%s and %s (Consent: %s)"
            % (
                title[0].lower() + title[1:],
                "are recorded all the same" if consent.record_if_notice_failed else "are not recorded",
                s.announcement_problem,
            ),
        )
    if consent.inbound == "off" and consent.outbound == "off":
        # Green said no notice had failed, of a box that gives none.
        return RED, "no notice is given in either direction, so none can be: see 5 and 7 (Consent)"
    if s.config.policy.consent.record_if_notice_failed:
        # Green said the notice was given while the box was set to record without it.
        return AMBER, (
            "a call whose notice could not be given is recorded all the same: clear "
            "\u201cRecord a call even when its notice could not be given\u201d (Consent)"
        )
    return GREEN, "no consent notice has failed since the last one given"


def _notice_out(s):
    mode = s.config.policy.consent.outbound
    if mode == "off":
        return AMBER, "people called from the box are given no notice (Consent)"
    shipped = _shipped_words(s, mode)
    if shipped is not None:
        return AMBER, "people called hear %s, but %s" % (_NOTICE_HEARD.get(mode, mode), shipped)
    return GREEN, "people called hear %s" % _NOTICE_HEARD.get(mode, mode)


def _pci(s):
    from .policy.pause import pause_button_wired

    pci = s.config.policy.pci
    button = pci.button and pause_button_wired(s.config.hat)
    if pci.pause_code is None and not button:
        # The Rules page's Card payments form sets the codes and the button (docs/pci.md).
        return AMBER, (
            "no way to pause recording while card details are given: set a pause code (Rules, Card payments)"
        )
    # A code the page refuses (set by an import, or by the page before it refused it).
    for refused in pci.refused().values():
        return AMBER, "%s (Rules, Card payments)" % refused
    if not pci.mask_dtmf:
        return AMBER, (
            "DTMF masking is off: a card number keyed on the phone while the recording is not "
            "paused is in the recording (Rules, Card payments)"
        )
    how = []
    if pci.pause_code:
        how.append("code %s on the handset" % pci.pause_code)
    if button:
        how.append("the pause button")
    return GREEN, "recording pauses for card details: %s, or the web UI" % " or ".join(how)


def _retention(s):
    from .policy.retention import details_words, retention_words

    retention = s.config.policy.retention
    said = retention_words(retention)
    if said is None:
        details = details_words(retention)
        return AMBER, "no retention period: recordings are kept for ever (Retention)" + (
            "; %s" % details if details else ""
        )
    if not retention.default_days:
        return AMBER, "recordings no rule names are kept for ever (Retention): %s" % said
    return GREEN, "recordings are kept %s" % said


def _retention_working(s):
    if s.retention_suspended:
        return RED, "retention is suspended: %s" % s.retention_suspended
    if {"clock_unsynchronised", "clock_jump"} & set(s.open_alarms):
        return RED, "the clock is not trusted: retention deletes nothing until it is"
    from .policy.retention import retention_words

    if retention_words(s.config.policy.retention) is None:
        # Green said the sweeps ran while 9 said there was nothing for them to delete.
        return AMBER, (
            "retention sweeps run, but no retention period is set (see 9), so no recording "
            "is ever deleted (Retention)"
        )
    return GREEN, "retention sweeps run on a trusted clock"


def _encrypted(s):
    if not s.keys_initialised:
        return RED, "the box has no recording keys: nothing is recorded (linekeeper init / setup)"
    if not s.recovery_confirmed:
        # Green while nobody had stored the key that opens the recordings when every password is lost.
        return AMBER, (
            "recordings are encrypted, but the recovery key was never confirmed as stored: an "
            "installer who is also a supervisor should make a new one and keep it safe (Settings)"
        )
    return GREEN, "recordings are encrypted; only holders of a key slot can play them"


def _audit(s):
    if s.audit_problems:
        return RED, "the audit trail does not verify: %s" % s.audit_problems[0]
    if s.audit_unchecked:
        # Never green for a trail nobody checked: red for one that cannot be, as for a broken one.
        return (AMBER if s.audit_checking else RED), s.audit_unchecked
    return GREEN, "every playback, export and change is in an intact audit trail"


def _alarms_reach(s):
    if not s.mail_missing and s.alarm_recipients and s.unreached_lines:
        lines = [str(n) for n in s.unreached_lines]
        return AMBER, (
            "no alarm recipient is tied to an account that sees %s %s: %s alarms are mailed to "
            "every recipient without their details; tie a recipient to an account that sees %s, "
            "or add one tied to no account (E-mail)"
            % (
                "line" if len(lines) == 1 else "lines",
                _both(lines),
                "its" if len(lines) == 1 else "their",
                "it" if len(lines) == 1 else "them",
            )
        )
    if not s.mail_missing and s.alarm_recipients:
        return GREEN, "alarms are e-mailed to %d address(es)" % s.alarm_recipients
    if s.alarm_recipients:
        # Recipients set and nothing sent: the reason names what is missing, not them.
        return AMBER, (
            "alarms are only shown on the dashboard: the %d alarm recipient(s) get nothing until "
            "the %s %s set (E-mail)" % (s.alarm_recipients, _both(s.mail_missing), _is(s.mail_missing))
        )
    return AMBER, "alarms are only shown on the dashboard: set alarm recipients (E-mail)"


def _reports(s):
    if s.report_schedules:
        return GREEN, "%d report schedule(s) send the figures regularly" % s.report_schedules
    return AMBER, "no scheduled report: decide which reports are needed and how often (E-mail)"


# A DPIA is looked at again at least this often (the ICO: keep it under review).
DPIA_REVIEW_DAYS = 365


def _reviewed(s):
    """The day the DPIA was last reviewed, or None: none recorded."""
    try:
        return dt.date.fromisoformat(s.dpia_reviewed)
    except ValueError:
        return None


def _dpia(s):
    reviewed = _reviewed(s)
    if reviewed is None:
        return AMBER, (
            "no data protection impact assessment (DPIA) is recorded (Settings): recording "
            "staff's and callers' calls usually needs one before it starts"
        )
    if (s.today - reviewed).days > DPIA_REVIEW_DAYS:
        return (
            AMBER,
            "the DPIA was last reviewed on %s, over a year ago: look at it again (Settings)"
            % day_words(reviewed),
        )
    return GREEN, "the DPIA was last reviewed on %s" % day_words(reviewed)


def _lawful_basis(s):
    if not s.lawful_basis:
        if s.country != "uk":
            return GREEN, "no UK GDPR lawful basis is needed outside the UK"
        return RED, (
            "no lawful basis for recording is recorded (Settings): UK GDPR Article 6 needs "
            "one, chosen before recording starts"
        )
    said = basis_words(s.lawful_basis, s.country)
    if s.lawful_basis == LEGITIMATE_INTERESTS:
        if not s.lia_date:
            return AMBER, "%s, but no legitimate interests assessment is recorded (Settings)" % said
        return GREEN, "%s, assessed on %s" % (said, day_words(s.lia_date))
    return GREEN, said


# Why the key store's backup matters, on the checklist; the alarm's title says it already
# ("... a dead card would lose every recording"), so its message goes without it.
DEAD_CARD = ": a dead card loses every recording"


def _key_backup(s, names=True):
    """Safeguard 18; ``names`` False: the users whose key slots changed are counted, not
    named (an alarm's message goes into mail and syslog, which carry no personal data)."""
    # Every recording opens only through the key store: a dead card without a copy of it
    # loses every recording, whatever passwords and recovery key are known (docs/keys.md).
    where = (
        "an installer with a key slot that opens every line downloads %s in Settings (Key store backup) "
        "and keeps it with the recovery key"
    )
    if not s.key_store:
        return AMBER, "the box has no key store to back up yet: see 11"
    if s.key_backup_sealed:
        return AMBER, (
            "whether the key store has a current backup cannot be told until the recorder has "
            "started and opened the box's key"
        )
    if not s.key_backup_date:
        return AMBER, ("no backup of the key store was made%s; %s" % (DEAD_CARD, where % "one"))
    if s.key_backup_of != s.key_store:
        return AMBER, (
            "the last backup of the key store, made on %s, is of a key store a rekey has replaced "
            "and opens no recording made since: %s" % (day_words(s.key_backup_date), where % "a new one")
        )
    changed = key_store_changes(s.key_backup_contents, s.key_store_contents, names, losing=True)
    if changed:
        return AMBER, (
            "the key store changed since its last backup, made on %s (%s): that backup would put "
            "it back as it was; %s" % (day_words(s.key_backup_date), "; ".join(changed), where % "a new one")
        )
    changed = key_store_changes(s.key_backup_contents, s.key_store_contents, names)
    if changed:
        # Key slots, passwords and grants: a restore of that backup loses no recording (the
        # recovery key opens every line's key in it), it only takes a password reset for
        # those users; an alarm at each of them had the owner download a backup after every
        # new user's first login (docs/keys.md).
        return GREEN, (
            "the key store was backed up on %s; since then only %s, which a restore of that "
            "backup loses no recording by (those users' passwords are reset after it)"
            % (day_words(s.key_backup_date), "; ".join(changed))
        )
    return GREEN, "the key store was backed up on %s, since it last changed" % day_words(s.key_backup_date)


def key_store_changes(then, now, names=True, losing=False):
    """What changed in the key store between two :func:`firmware.keybackup.key_store_contents`
    (``then``: a backup's, from its audit entry), in words; [] when it is the same file, or
    when either is not known (a backup audited before entries recorded it). ``names``
    False: the key slots added or removed are counted, their users not named (an alarm's
    words). ``losing``: only the changes a restore of that backup would lose recordings by,
    a new recovery key (the backup opens only with the old one) and a line's new key (that
    line's recordings since open with no key in it); key slots, passwords and grants cost
    those users a password reset after it, no recording."""
    if not isinstance(then, dict) or not isinstance(now, dict) or then.get("digest") == now.get("digest"):
        return []
    said = []
    slots_then, slots_now = set(then.get("slots") or ()), set(now.get("slots") or ())
    added, removed = sorted(slots_now - slots_then), sorted(slots_then - slots_now)
    if added and not losing:
        said.append("a key slot added for %s" % ", ".join(added) if names else _slots(added) + " added")
    if removed and not losing:
        said.append(
            "the key slot of %s removed" % ", ".join(removed) if names else _slots(removed) + " removed"
        )
    if then.get("recovery") != now.get("recovery"):
        said.append("a new recovery key made")
    lines = sorted(set(now.get("lines") or ()) - set(then.get("lines") or ()))
    if lines:
        said.append("a key made for line%s %s" % ("s" if len(lines) > 1 else "", ", ".join(map(str, lines))))
    if losing:
        return said
    return said or ["a password changed, or the lines a user's key slot opens"]


def _slots(users):
    return "a key slot" if len(users) == 1 else "%d key slots" % len(users)


def contact_parts(s):
    """``[(what, value)]`` of the data protection contact (``s``: a :class:`BoxState` or
    site settings), every part in order, a value "" when it was not given."""
    return [
        ("name or role", s.dp_contact),
        ("postal address", ", ".join(s.dp_address.splitlines())),
        ("e-mail", s.dp_email),
        ("phone", s.dp_phone),
    ]


def _contact(s):
    parts = contact_parts(s)
    given = [value for _, value in parts if value]
    missing = [what for what, value in parts if not value]
    if not given:
        return AMBER, (
            "no contact for data protection questions (Settings): staff and people asking "
            "for their recordings are told of no one to write to"
        )
    if missing:
        return AMBER, "%s; no %s given (Settings)" % ("; ".join(given), _either(missing))
    return GREEN, "; ".join(given)


def _lines_words(lines):
    if len(lines) == 1:
        return "line %d was" % lines[0]
    return "lines %s were" % _both([str(n) for n in lines])


def _follows(lines):
    return "it follows" if len(lines) == 1 else "they follow"


def _either(words):
    return words[0] if len(words) == 1 else "%s or %s" % (", ".join(words[:-1]), words[-1])


def _both(words):
    return words[0] if len(words) == 1 else "%s and %s" % (", ".join(words[:-1]), words[-1])


def _is(words):
    return "is" if len(words) == 1 else "are"


SAFEGUARDS = (
    ("A purpose for recording", _purpose),
    ("ICO registration", _ico),
    ("Agreed criteria for what is recorded", _criteria),
    ("Private phones that are never recorded", _private),
    ("Callers told that calls are recorded", _notice_in),
    ("The notice is actually given", _notice_working),
    ("People called told too", _notice_out),
    ("Card details kept out of recordings", _pci),
    ("A retention period", _retention),
    ("Retention that runs", _retention_working),
    ("Recordings encrypted", _encrypted),
    ("Access audited", _audit),
    ("Staff told when something goes wrong", _alarms_reach),
    ("Reports decided and sent", _reports),
    ("A data protection impact assessment", _dpia),
    # Last, so that the numbers an auditor noted before stay the same safeguards.
    ("A lawful basis for recording", _lawful_basis),
    ("A contact for data protection questions", _contact),
    ("A backup of the key store", _key_backup),
)


def amber_alarms(state):
    """``{kind: reason or False}`` of the safeguards whose amber is an alarm too (reminders,
    :data:`firmware.alarmchecks.REMINDER_KINDS`), each on with its safeguard's reason as
    its message: ``keystore_backup_stale`` while 18 is amber of a key store there is (a box
    with none has no recording to lose: 11 says it), ``dpia_review_due`` while 15 is amber
    for a review over :data:`DPIA_REVIEW_DAYS` old (a DPIA never recorded is amber only).
    ``state`` needs only what those two read (``web.documents.checklist_reminders``).
    The messages name no one (the key slots changed are counted): they go into mail and
    syslog, sent in clear."""
    backup, why = _key_backup(state, names=False)
    dpia, said = _dpia(state)
    return {
        "keystore_backup_stale": why.replace(DEAD_CARD, "") if backup != GREEN and state.key_store else False,
        "dpia_review_due": said if dpia != GREEN and _reviewed(state) is not None else False,
    }


def checklist(state):
    """The eighteen :class:`Check` s for ``state`` (a :class:`BoxState`), in order."""
    return [Check(i, name, *fn(state)) for i, (name, fn) in enumerate(SAFEGUARDS, 1)]


def recorded(state):
    """``[(what, value)]``: what the site settings record of the business's data protection,
    for the checklist (auditors may read it, not the settings page); "not recorded" for
    what was not given; dates as the pages write them (``Mon 2 Mar 2026``)."""
    none = "not recorded"
    rows = [
        ("Organisation", state.organisation or none),
        ("ICO registration", state.ico_number or none),
        ("ICO renewal due", day_words(state.ico_renewal) or none),
        ("DPIA last reviewed", day_words(state.dpia_reviewed) or none),
        ("Lawful basis", basis_words(state.lawful_basis, state.country) or none),
    ]
    if state.lawful_basis == LEGITIMATE_INTERESTS:
        rows.append(("Legitimate interests assessment", day_words(state.lia_date) or none))
    rows += [("Data protection contact, " + what, value or none) for what, value in contact_parts(state)]
    return rows
