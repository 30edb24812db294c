"""Plain words for the box's codes: one table for the web pages and the CLI.

Line states, faults, alarms, policy decisions, consent notices, how calls
ended, recording states and audit actions are stored and sent as short
codes (``no_line_voltage``, ``login_failed``); people read these words
instead. A code missing from a table is shown readably (underscores as
spaces), never as an error, so a new code from a newer part of the box
still reads sensibly until it gets its words here.
"""

import re

from .localtime import duration_text

STATES = {
    "idle": "Idle",
    "alerting": "Incoming call (caller ID arriving)",
    "ringing": "Ringing",
    "dialling": "Dialling out",
    "connected": "On a call",
    "cleared": "Other party hung up",
    "fault": "Line fault",
}

# A line's faults (firmware.bus.LINE_FAULTS): the line's state, its alarm's title and
# message, and a report's "Lines not in service" all say them in these words.
FAULTS = {
    "no_line_voltage": "No voltage on the line: the phone line is unplugged or dead",
    "stuck_off_hook": "Off the hook for a long time with no call: a handset left off?",
    "ring_not_sensed": "Caller ID but no ring sensed: calls without caller ID may not have been seen",
    "line_no_dial_tone": "No dial tone: the line has voltage, but calls on it may not go out or come in",
}

# How a run of the recorder ended without a clean stop or the HAT's power-fail warning
# (a crash, a kill, a power cut the box was not warned of): the power_loss_restart alarm
# (its words below and its message, firmware/alarmchecks.py) and a report's times not
# recording (firmware/reports/tables.py) say it in these words.
UNCLEAN_END = "power cut or crash"

ALARMS = {
    "disk_full": "Storage full: calls are not being recorded",
    "disk_warning": "Storage nearly full",
    "disk_critical": "Storage almost full: oldest recordings may be overwritten",
    "clock_jump": "The clock jumped: automatic deletion is paused until an installer confirms the time",
    "clock_unsynchronised": "The clock is not synchronised: call times may be wrong",
    "recording_failed": "A recording failed",
    "key_tampered": "The recording key was replaced on the card: calls are not being recorded",
    **FAULTS,  # a line fault's alarm: its words, never a second copy
    "line_not_connected_in_use": "A line marked not connected is in use: its calls are not recorded",
    "call_log": "The call log cannot be written",
    "quarantine": "Unknown files were found among the recordings and moved aside",
    "retention_failed": "Automatic deletion could not run",
    "retention_backlog": "Recordings are kept past their retention date: automatic deletion is behind",
    "consent_notice_failed": "The consent notice could not be given",
    # Found before any call fails: the checklist's safeguard 6 says it in these words too.
    "announcement_unplayable": "The announcement cannot be played: calls that need it hear no notice",
    "pci_code_unkeyable": "The card-payment pause or resume code needs changing",
    "ico_renewal_60": "The ICO registration must be renewed within 60 days",
    "ico_renewal_30": "The ICO registration must be renewed within 30 days",
    "ico_renewal_7": "The ICO registration must be renewed within 7 days",
    "ico_expired": "The ICO registration has expired",
    "certificate_expiry": "The web page's certificate ends soon",
    "retention_unset": "No retention period is set: every recording is kept for ever",
    "recovery_key_unconfirmed": "The recovery key was never confirmed as stored",
    "keystore_backup_stale": "The key store has no current backup: a dead card would lose every recording",
    "dpia_review_due": "The data protection impact assessment (DPIA) is due for review",
    "card_wear": "The memory card is wearing out",
    "update_failed": "An update did not install: the box runs its previous version",
    "update_not_running": "An update was installed, but the box runs another version",
    "archive_failed": "The archive refuses this box's uploads",
    "archive_stalled": "Uploads to the archive have stalled: new calls are only on the box's card",
    "power_fail": "The power failed",
    "power_loss_restart": "The box restarted after a " + UNCLEAN_END,
    "mcu_unreachable": "The HAT's supervisor chip does not answer: a power cut would come without warning",
    "recorder_start_failed": "The recorder could not start: calls went unrecorded",
    "staff_concern": "A concern raised by staff",
    "request_overdue": "A data subject's request is past its deadline",
    "request_check_failed": "The register of requests cannot be read: their deadlines are not watched",
    "audit_unverified": "The audit trail does not verify, or could not be checked",
    "deletion_log_unverified": "The deletion log does not verify, or could not be checked",
    "recording_rewritten": "A recording's file had been cut or changed on the card: "
    "written again from the journal",
}

# Advice that depends on what failed, which the alarm's message says: (kind, the start of the
# message as firmware/alarmchecks.py words it) -> advice, before the kind's own.
# The ``disk_full`` alarm's first words (firmware.recording.recorder), read on the dashboard
# as in the mail: what is happening and what to do, before the recorder's own words.
DISK_FULL_PLAIN = (
    "The memory card is full, so calls are not being recorded until there is room. Ask your "
    "installer to make room: shorter retention periods (Retention page) or a larger card."
)

ALARM_ADVICE_BY_CAUSE = {
    # The box could not play a beep into the line: the board, not the announcement.
    **{
        ("consent_notice_failed", prefix): "call the supplier if it happens again: the box may be "
        "failing to play into that line; callers on it are not hearing the beep that tells them "
        "calls are recorded"
        for prefix in ("the warning tone could not be played", "the consent beep could not be played")
    },
    # Its message says what to do already: the mail's "What to do" would say it again.
    ("disk_full", DISK_FULL_PLAIN): None,
}


# Where a message may go on after the words it shares with its alarm's title.
_CLAUSE_ENDS = re.compile(r"[:;]|$")


def counted(n, one, many=None):
    """``n`` and the noun for that many: ``counted(1, "call")`` is "1 call", ``counted(2,
    "call")`` "2 calls"; ``many`` where the plural is not ``one`` + "s"."""
    return "%d %s" % (n, one if n == 1 else many or one + "s")


def line_said(number, name=None, start=False):
    """A line as every page, mail and report names it: ``line 2 (Office)`` where the site
    settings give it a name, ``line 2`` where they do not (no name, or the default
    "Line 2"). ``number``: the line's number; ``name``: its name in the site settings;
    ``start``: it starts a sentence or a heading ("Line 2 (Office)")."""
    said = "%s %d" % ("Line" if start else "line", number)
    if name and name != "Line %d" % number:
        said += " (%s)" % name
    return said


# The most of a line's name a pick list's choice shows: a choice cannot wrap, and on a
# 390 px phone "line 1 (" and a name of 40 characters is wider than the list, cut off.
CHOICE_NAME_CHARS = 20


def line_choice(number, name=None):
    """A line as a pick list's choice names it: :func:`line_said`, a name longer than
    ``CHOICE_NAME_CHARS`` cut short with "…" ("line 1 (Reception and Emerg…)"). The list's
    hint names such a line whole (:func:`line_said`)."""
    if name and len(name) > CHOICE_NAME_CHARS:
        name = name[: CHOICE_NAME_CHARS - 1].rstrip() + "…"
    return line_said(number, name)


def lines_named(lines):
    """Lines by number as a sentence names them: ``line 3``, ``lines 2 and 3``, ``lines 1,
    2 and 4``. ``lines``: line numbers (at least one)."""
    said = [str(n) for n in lines]
    if len(said) == 1:
        return "line " + said[0]
    return "lines %s and %s" % (", ".join(said[:-1]), said[-1])


def _plain_words(text):
    return [w.strip(",.:;()").lower() for w in text.split()]


def alarm_text(kind, message):
    """What alarm ``kind``'s ``message`` says beyond its title (the banner, the alarms page
    and the mail show both): without the leading clause that says the title again ("the
    consent notice could not be given: " after "The consent notice could not be given"),
    so that each reads once; ``""`` when it says nothing else. A message that merely
    begins like its title (two words) is left whole."""
    message = (message or "").strip()
    title = _plain_words(say("alarm", kind))
    rest = message
    for end in _CLAUSE_ENDS.finditer(message):
        said = _plain_words(message[: end.start()])
        if len(said) >= 3 and said == title[: len(said)]:
            rest = message[end.end() :].strip()
    return rest


def alarm_advice(kind, message=None):
    """What to do about an alarm of ``kind`` whose message is ``message`` (its mail's "What to
    do"); None: no advice, or none beyond what the message says."""
    for (of, start), advice in ALARM_ADVICE_BY_CAUSE.items():
        if of == kind and (message or "").startswith(start):
            return advice
    return ALARM_ADVICE.get(kind)


_UNVERIFIED_ADVICE = (
    "call the supplier at once: the alarm says whether an entry was changed or the check could "
    "not run (the memory card may be failing); do not restore or re-initialise anything first"
)

# What a person does about each alarm: the "What to do" of its mail. The same words for
# every occurrence, so they never carry a caller's number or name.
ALARM_ADVICE = {
    "disk_full": "make room now: check the retention periods (Retention) or replace the card "
    "with a larger one; nothing is recorded until there is room",
    "disk_warning": "check the retention periods (Retention), or plan to replace the card with a larger one",
    "disk_critical": "shorten the retention periods (Retention) or replace the card with a larger one "
    "soon, before the oldest recordings are overwritten",
    "clock_jump": "an installer checks the time shown on the Retention page and confirms it there",
    "clock_unsynchronised": "check that the box is connected to the network, which it needs to keep time",
    "recording_failed": "the Alarms page links to the call when it knows it (for a supervisor of its "
    "line, or an auditor; the mail says its line and the time it began), or its message names the "
    "recording; call the supplier if it happens again",
    "key_tampered": "call the supplier at once: someone may have altered the card; do not restore or "
    "re-initialise anything first",
    "no_line_voltage": "check the cable to the box's LINE socket from the wall socket, or from the "
    "broadband hub's or adapter's phone port, and that the hub is on (while a hub restarts its phone "
    "ports have no voltage for a minute or two, and the alarm clears when it is back)",
    "stuck_off_hook": "look for a handset left off its cradle on that line",
    "line_not_connected_in_use": "the box saw a call on a line the site settings say has nothing "
    "plugged into its socket; the call is in the call log, but it was not recorded. If a phone line "
    "is plugged in there now, an installer marks the line recorded or private in Settings (Lines); "
    "if not, an installer checks the box's sockets and wiring",
    "ring_not_sensed": "ask whoever runs the phone system to check that line's port: its ringing "
    "voltage may be too low for the box, or it sends caller ID without ringing",
    "line_no_dial_tone": "the last calls out on that line heard no dial tone: pick up a phone on it "
    "and listen. If it is silent, ask the phone provider whether the line's service is on; on a "
    "broadband hub or adapter, check that its internet connection is up (its phone light) and "
    "restart it; check the cable from the wall socket or the hub's phone port to the box's LINE "
    "socket. The alarm clears when a dial tone is heard on the line again",
    "call_log": "call the supplier: the memory card may be failing",
    "quarantine": "call the supplier: unknown files on the card were moved aside, not deleted",
    "retention_failed": "call the supplier if it does not clear within the hour: the card may be failing",
    "retention_backlog": "check the Retention page for why deletion is behind (a clock to confirm, a "
    "card that refuses); recordings are kept longer than your policy says meanwhile",
    "consent_notice_failed": "check the announcement on the Consent page; callers on that line are not "
    "being told that calls are recorded",  # (a beep that failed: ALARM_ADVICE_BY_CAUSE)
    "announcement_unplayable": "an installer opens the Consent page, which says why (a file gone or "
    "damaged: upload it again; espeak-ng missing: install it, or upload an announcement); until then "
    "calls that need it are not told that calls are recorded",
    "pci_code_unkeyable": "an installer sets the code the alarm names on the Rules page, under Card "
    "payments (PCI DSS), to keys of 0-9, * and # (such as *1 to pause, *2 to resume), and tells the "
    "staff who take card details; until then pause and resume on the dashboard (or with the pause "
    "button, where the line has one) around card details",
    "ico_renewal_60": "renew the registration with the ICO, then enter the new renewal date in Settings",
    "ico_renewal_30": "renew the registration with the ICO, then enter the new renewal date in Settings",
    "ico_renewal_7": "renew the registration with the ICO now, then enter the new renewal date in Settings",
    "ico_expired": "renew the registration with the ICO at once, then enter the new renewal date in Settings",
    "certificate_expiry": "an installer makes a new certificate in Settings",
    "retention_unset": "an installer sets how long recordings are kept on the Retention page",
    "recovery_key_unconfirmed": "an installer who is also a supervisor makes a new one in Settings "
    "and keeps it safe: it opens the recordings when every password is lost",
    "keystore_backup_stale": "an installer with a key slot that opens every line downloads a new "
    "backup in Settings (Key store backup) and keeps it off the box, with the recovery key",
    "dpia_review_due": "the owner looks at the DPIA again (what is recorded, why, who hears it and "
    "for how long), then an installer enters the day it was reviewed in Settings",
    "card_wear": "plan to move the box onto a new memory card (a larger or an industrial one) "
    "while this one still reads: a copy of the whole card keeps every recording, the call log "
    "and the keys, where a card that fails first takes them with it (docs/recovery.md, "
    '"Moving to a new card"); the Health panel on the dashboard shows its wear',
    "update_failed": "the Updates page says why; the box works on its previous version meanwhile",
    "update_not_running": "restart the box once; if it comes back on the old version again, the new "
    "slot does not start: an installer installs the update again, or calls the supplier; the box "
    "records on the version it runs meanwhile",
    "archive_failed": "an installer checks the archive's key, secret and bucket, and the box's clock",
    "archive_stalled": "check the box's network and that the archive's store answers (the dashboard's "
    "Archive section says how many calls wait and the latest problem); what waits goes up once it "
    "does, but until then a dead card loses it",
    "power_fail": "check the box's power supply; calls during the cut were not recorded",
    "power_loss_restart": "check the box's power supply; a call in progress then may be partly recorded",
    "mcu_unreachable": "call the supplier: the HAT may need replacing",
    "recorder_start_failed": "the alarm says for how long and why; call the supplier if it happens again, "
    "the memory card may need replacing",
    "staff_concern": "read the concern on the Alarms page and answer the person who raised it",
    "request_overdue": "a supervisor answers the request on the Requests page today, or records "
    "why it is late; the law gives one month (three when extended in time)",
    "request_check_failed": "call the supplier: the alarm says why rights.db cannot be read (the memory "
    "card may be failing); meanwhile a supervisor checks the requests' deadlines on the Requests page, "
    "or by hand if it will not open",
    "recording_rewritten": "call the supplier: no power cut leaves a recording's file as the start found it "
    "(the alarm says how), so the card may be failing or someone changed it; the box put back the bytes its "
    "recording journal held, and the audit trail has what it found (Wrote a recording's file again from the "
    "recording journal); run linekeeper verify, and do not restore or re-initialise anything first",
    "audit_unverified": _UNVERIFIED_ADVICE,
    "deletion_log_unverified": _UNVERIFIED_ADVICE,
}

# What the rules decided for a call, which is not whether it was recorded: a call
# the rules record has no recording when the box could not make one (no keys yet,
# a full card), and the recording's own state says so.
DECISIONS = {
    "record": "Record",
    "skip": "Do not record",
    "pending": "Waiting for someone to ask for recording",
}

# Why a call's far end was never heard, so its consent notice was not played and, unless
# the box records a call whose notice could not be given, nothing was recorded: no rule
# said skip and nothing failed (firmware.reports.compute.not_heard). The call's page and
# the report say it in these words.
NOT_HEARD = {
    "unheard": "nobody was heard on the line after dialling",
    "paused": "the line was paused (card details) before the far end was heard",
}

NOTICES = {
    "announcement": "Spoken announcement",
    "tone": "Beep",
    "off": "No notice (turned off)",
}

END_REASONS = {
    "local": "We hung up",
    "remote_break": "The other party hung up",
    "remote_reversal": "The other party hung up",
    "remote_tone": "The other party hung up",
    "remote_silence": "The line went silent (the other party had gone)",
    "remote": "The other party hung up",
    "abandoned": "Caller hung up before an answer",
    "missed": "Not answered",
    "fault": "Line fault during the call",
}

RECORDING_STATES = {
    "recording": "Recording now",
    "complete": "Complete",
    "partial": "Partly recorded (the box stopped during the call)",
    "deleted": "Deleted",
    "erased": "Erased on request",  # deleted at a person's request (web.views.calls)
}

# How a PCI pause began or ended ("paused by ...", "resumed by ...").
PAUSE_ENDS = {
    "dtmf": "the keypad code",
    "button": "the button on the box",
    "web": "the web page",
    "timeout": "itself, at the time limit",
    "call_end": "the end of the call",
    "restart": "the box, going on with a pause it had when it stopped",
}

ACTIONS = {
    "playback": "Played a recording",
    "export": "Exported a recording",
    "export_list": "Exported a list as CSV (calls, phonebook, audit trail, deletions…)",
    "export_list_cut": "A list's CSV stopped early: the copy is not complete (its rows and why)",
    "delete": "Asked to erase the recording",
    "erase_details": "Asked to erase the caller's details",
    "correct_details": "Corrected the caller's name shown for a call",
    "archive_erasure": "Dropped a caller's details erased on a box from the central viewer's index",
    "mail_withdrawn": (
        "Withdrew a report waiting to be mailed: a caller's details in it were erased, or removed "
        "after their retention period"
    ),
    "mail_already_sent": (
        "Report already mailed when a caller's details in it were erased or removed after their "
        "retention period: not withdrawn"
    ),
    "login": "Logged in",
    "login_failed": "Failed login",
    "logout": "Logged out",
    "account_unlock": "Unlocked an account locked out after failed logins",
    "account_disabled": "Disabled an account (unused for 90 days, or by an installer): nobody logs in to it",
    "account_enabled": "Enabled a disabled account again: its unused days count from then",
    "audit_view": "Viewed the audit trail (its filter and page)",
    "call_viewed": "Opened a call's page, which shows its caller's number and name (once per login)",
    "request_viewed": "Opened a data subject's request, which shows who asked, how to reach them and "
    "what they asked (once per login)",
    "list_viewed": "Viewed the calls list (or printed the call log: `linekeeper calls`), a report, the "
    "phonebook or the requests list on screen, which show callers' numbers or who asked (its filter, "
    "and how many it showed)",
    "staff_notice": "The staff notice in new words, kept as the settings making them were saved, "
    "or else when first shown (this version's words are kept)",
    "config_change": "Changed settings",
    "config_export": "Wrote the configuration to a file (`linekeeper config export`), its number "
    "rules in clear",
    "key_slot_add": "Added a recording key",
    "key_grant": "Changed the lines a recording key opens",
    "rekey": "Rekey of every recording key (its phase says how far: asked, refused, started, done)",
    "mail_test": "Sent a test e-mail",
    "consent_test": "Played the consent announcement into a line as a test (or was refused)",
    "key_slot_remove": "Removed a recording key",
    "password_change": "Changed a password",
    "retention_sweep": "Deletion run (its trigger says why: the schedule, a full card, an erasure)",
    "init": "Box set up",
    "legal_hold": "Legal hold",
    "pause": "Paused a recording (card details)",
    "call_resumed": "A call taken for ended went on after its silence",
    "resume": "Resumed a recording",
    "personal_call": "A call marked personal by its staff member's code: not recorded, nothing of it kept",
    "call_note": "Tagged or annotated a call",
    "phonebook": "Changed the phonebook",
    "power_fail": "Power failed: recordings sealed",
    "box_start": "The recorder started (its details say how it last stopped, and since when)",
    "box_stop": "The recorder stopped cleanly",
    "https_replaced": "The web UI's HTTPS certificate made anew (its key did not open or was missing, "
    "or it was damaged): browsers warn of the new one; the old files are kept aside",
    "clock_set": "The clock was set after the recorder started (its details date the start again)",
    "recording_created": "Began a recording",
    "recording_sealed": "Sealed a recording",
    "recording_recovered": "Recovered a recording after a stop",
    "recording_deleted": "Destroyed a recording's file",
    "recording_replayed": "Wrote a recording's file again from the recording journal at the start "
    "(what the file was, and why)",
    "recording_signed_at_upgrade": "Signed the recordings made before signing",
    "audit_head_restored": "Wrote the audit trail's head again, which the card had refused",
    "recorder_start_failed": "The recorder could not start for a time: no call was recorded",
    "start_syslog": "Told the syslog server that the recorder cannot start, or has started again",
    "start_mail": "Mailed the alarm recipients that the recorder has not been able to start for minutes",
    "alarm": "An alarm (raised, cleared or acknowledged)",
    "disclosure": "Released calls (subject access)",
    "disclosure_refused": "Refused a subject access release: nothing was released (why, in its details)",
    "disclosure_preview": "Read a subject access letter before its release (its calls, who had copies)",
    "disclosure_search": "Searched a person's calls for a subject access request (and copies given before)",
    "data_request": "A data subject's request (logged, changed, answered, refused, followed up or deleted)",
    "hat_replaced": "Moved the keys to a new HAT",
    "key_backup": "Backed up the key store, or put a backup back",
    "audit_export": "Copied the whole audit trail to a file, up to this entry (or was refused)",
    "breach_scope": "Read what an account did over a period, for a breach report (or was refused)",
    "quarantine": "Moved unknown files out of the recordings",
    "repair": "Rebuilt the call log from the recordings",
    "report": "Made a report",
    "update": "A firmware update",
    "archive_copied": "Copied a call to the off-box archive (its recording and record, or its record again)",
    "archive_replaced": "Copied a call to the off-box archive over a damaged copy (what was wrong with it)",
    "archive_deleted": "Deleted a call's copies in the off-box archive (retention, or an erasure)",
    "archive_left": "Left copies in the off-box archive that are not this box's own: see to them centrally",
}

# Names of audit details (the keys of an entry's details) as labels.
DETAIL_LABELS = {
    "address": "From address",
    "to": "To",
    "line": "Line",
    "duration_s": "Length",
    "reason": "Reason",
    "digest": "Fingerprint (SHA-256)",
    # A staff notice's version kept as the settings that make it were saved (in effect from then).
    "saved": "Kept when saved",  # (in effect from then; a label kept short: its column is as wide)
    "format": "Format",
    "on": "Hold on",
    "via": "How",
    "change": "Change",
    "roles": "Roles",
    "lines": "Lines",
    # The site settings' lines with nothing plugged into their socket (none: every line connected).
    "not_connected": "Lines not connected",
    # A data subject's request whose lines were changed to lines only other supervisors hold.
    "handed_on": "Handed on to those lines' supervisors",
    # A data subject's request whose day received was corrected: the day it said till then.
    "received_before": "Received, as logged before",
    # A data subject's request whose details were corrected: which (never what they say).
    "fields": "Corrected",
    "data_request": "Request in the register",
    # Who asked or their numbers, corrected: the values before and after (kept in the
    # register with the request, shown in its history; the trail names the correction).
    "before": "Before",
    "after": "After",
    "correction": "Correction",
    "recording_key": "Recording key unlocked",
    "must_change": "Must change its password first",
    # The setup wizard's login of the installer it made (the account's first session).
    "setup": "By the setup wizard",
    "no_account": "No account has the name typed (not kept: it may have been a password)",
    "locked": "Locked out",
    "locked_s": "Locked out for",
    "key_slot": "Key slot",
    # A key_grant of the box's own key (Users page, Give the box's own key).
    "box_key": "The box's own key (every line there is or will be)",
    "by_installer": "By an installer",
    "slot": "Slot",
    "key_store": "Key store",
    "organisation": "Organisation",
    "country": "Country",
    "time_zone": "Time zone",
    "region": "Where the business is",
    "purpose": "Purpose",
    "ico_number": "ICO number",
    "ico_renewal": "ICO renewal",
    "dpia_reviewed": "DPIA last reviewed",
    "lawful_basis": "Lawful basis",
    "lia_date": "Legitimate interests assessment",
    "dp_contact": "Data protection contact",
    "dp_address": "Data protection postal address",
    "dp_email": "Data protection e-mail",
    "dp_phone": "Data protection phone",
    "source": "Source",
    "changed": "Changed",
    "sections": "Sections",
    "number_patterns": "Number-rule patterns in clear",
    "filter": "Filter",
    "rows": "Rows",
    "page": "Page",
    "tags": "Tags",
    "added": "Added",
    "removed": "Removed",
    "note": "Note",
    "ended_by": "Ended by",
    "deleted": "Deleted",
    "by_rule": "By rule",
    "consent": "Consent notice",
    "paused_s": "Paused for",
    "quiet_ms": "Quiet for",
    "sound_at": "Sound again at",
    "rule": "Rule",
    "call": "Call",
    "since": "Since",
    "last_failure": "Last failure",
    "attempts": "Tries",
    "change_id": "Change number",
    "not_made": "Not made",
    "entry": "About entry",
    "finishes": "Finishes entry",
    # The archive viewer's entries (web/archive).
    "box": "Site",
    "sites": "Sites",
    "call_id": "Call",
    "recording_id": "Recording",
    "recording_sha256": "Recording's SHA-256",
    "zip_sha256": "Zip's SHA-256",
    "zip_bytes": "Zip size (bytes)",
    "complete": "Recorded whole",
    "fingerprint": "Signed by key",
    "refused": "Refused",
    # A subject access letter read before its release (disclosure_preview): its disclosure
    # log entries of copies given before.
    "copies": "Copies given before it names",
    # A subject access search (disclosure_search): what was searched, how many calls it found.
    "number": "Number searched",
    "from": "From",
    # Its times of day, which narrow its first and last day (firmware.sar.search_bounds).
    "from_time": "From (time of day)",
    "to_time": "To (time of day)",
    "found": "Calls found",
    # A release of calls named after a search by date alone (disclosure): how the supervisor
    # knows each is the requester's.
    "whose": "Whose calls (how it is known)",
    "details": "The caller's details too",
    "notes_erased": "Notes erased",
    # The off-box archive's entries (archive_copied, archive_deleted...).
    "box_id": "Archive box_id",
    "put": "Put in the archive",
    "damaged": "What was wrong with the copy there",
    "keys": "Archive objects",
    "left": "Left in the archive (not the box's own)",
    "versions_deleted": "Versions deleted",
    # A recording's file written again from the recording journal at the start (recording_replayed).
    "file_was": "What the file was",
    "cause": "Why",
    "file_bytes": "File's size before (bytes)",
    "journal_from": "The journal's bytes from (offset)",
    "journal_to": "The journal's bytes to (offset)",
    "differing_bytes": "Bytes that differed from the journal's",
    "missing_bytes": "Bytes missing from its end",
    "read_error": "Why it could not be read",
    # The card-payment settings (policy.pci), as the Rules page says them: its entries'
    # ``changed``, and a config import's ``card_payments``.
    "card_payments": "Card payments (PCI DSS)",
    "pause_code": "Pause code",
    "resume_code": "Resume code",
    "auto_resume_s": "Pause time limit",
    "mask_dtmf": "Keys pressed after the answer cut out of the recording (DTMF masking)",
}

# A line's recording mode (the rules' words; the rules page adds "below").
RECORDING_MODES = {
    "always": "Always record",
    "never": "Never (a private line)",
    "on_demand": "On demand (button or code)",
    "by_rule": "By the rules",
}

# The web UI's roles.
ROLES = {
    "installer": "Installer",
    "supervisor": "Supervisor",
    "auditor": "Auditor",
    "staff": "Staff (their own line)",
}

# What a ``change`` detail says was done (users, the phonebook).
CHANGES = {
    "user_add": "Added a user",
    "user_update": "Changed a user's roles and lines",
    "user_delete": "Removed a user",
    "set": "Set",
    "remove": "Removed",
    "import": "Imported",
}

# What a ``config_change`` entry is about (its target).
SETTINGS = {
    "policy.rules": "Recording rules",
    "policy.retention": "Retention",
    "policy.consent": "Consent notice",
    "site": "Site settings",
    "mail": "Mail settings",
    "config": "Configuration",
    "retention.clock": "Retention's clock",
}

_TABLES = {
    "state": STATES,
    "fault": FAULTS,
    "alarm": ALARMS,
    "decision": DECISIONS,
    "notice": NOTICES,
    "not_heard": NOT_HEARD,
    "end": END_REASONS,
    "recording": RECORDING_STATES,
    "action": ACTIONS,
    "pause_end": PAUSE_ENDS,
    "detail": DETAIL_LABELS,
}


def fallback(code):
    """A code nobody gave words to yet, readable: ``disk_full`` -> ``Disk full``."""
    text = str(code).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def say(kind, code):
    """The words for ``code`` of ``kind`` ("state", "fault", "alarm", "decision", "notice",
    "not_heard", "end", "recording", "action", "pause_end", "detail"); ``""`` for None.

    :raises KeyError: ``kind`` is not one of those (a programming error)
    """
    if code is None or code == "":
        return ""
    return _TABLES[kind].get(code) or fallback(code)


def detail_value(value):
    """An audit detail's value as text: lists joined, dicts as ``key: value``, booleans yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(detail_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return _detail_text(None, value)
    return str(value)


def _country_names():
    from telephony.countries import COUNTRIES

    return {code: country.name for code, country in COUNTRIES.items()}


# What a failed login locked out (web/throttle.py's counters, by kind).
# Why a login was sent to change its password first (an audit entry's ``must_change``).
MUST_CHANGE = {
    "set_by_other": "Its password was set by someone else (an installer; on the archive viewer, add-user)",
    "rules": "Its password was made before the password rules",
}

LOCKOUTS = {
    "acct": "This account from this address",
    "addr": "This address, for every account",
    "any": "This account, from every address",
    "lock": "This account, after 10 failed attempts in a row from anywhere: 30 minutes, or until an "
    "installer unlocks it (on the archive viewer, unlock-user), except from an address it logged in from",
    "lockat": "This account from this address, after 10 failed attempts in a row from it: 30 minutes, "
    "or until an installer unlocks it (on the archive viewer, unlock-user)",
    "recovery": "The recovery key on the box's command line, for everyone: after 5 wrong keys, a wait "
    "from 1 s doubling to 15 minutes, until the right key is given",
}

# A recording's export formats, as the call page offers them and its history says them.
EXPORT_FORMATS = {
    "ogg": "Ogg/Opus",
    "wav": "WAV",
    "ogg.zip": "Ogg/Opus with signed manifest (.zip)",
    "wav.zip": "WAV with signed manifest (.zip)",
}


# What the start's replay of the recording journal found in a file it wrote (its
# recording_replayed entry's ``file_was``; firmware.recording.journal.compare).
REPLAY_FOUND = {
    "missing": "Missing: made again from the recording journal",
    "shorter": "Shorter than the recording journal holds: its end written from the journal",
    "differing": "Holding bytes other than the recording journal's: written over with the journal's",
    "unreadable": "Not readable, the card answering with an error: the journal's bytes written over it",
}

# Why it was so (its ``cause``; firmware.recording.store.replay_cause).
REPLAY_CAUSES = {
    "power_cut": "What a power cut or crash leaves: writes not yet on the card were lost",
    "card_refused": "The card had refused the recording's writes before the last stop (kept as partial)",
    "clean_stop": "Not what a power cut leaves: the box had stopped cleanly, with the file on the card whole",
    "gap": "Not what a power cut leaves: bytes that were on the card before the journal's first are gone",
    "card_error": "Not what a power cut leaves: the card could not read the file (a failing card?)",
}


def replay_text(details):
    """What the start's replay of the journal found in a recording's file, and why, in a
    sentence (the ``recording_rewritten`` alarm): ``details`` as audited."""
    found = REPLAY_FOUND.get(details.get("file_was"), fallback(details.get("file_was")))
    if details.get("file_bytes") is not None:
        found = found.replace(
            ":",
            " (%d bytes, the journal's bytes for it ending at %d):"
            % (details["file_bytes"], details["journal_to"]),
            1,
        )
    if details.get("read_error"):
        found = found.replace(":", " (%s):" % details["read_error"], 1)
    cause = REPLAY_CAUSES.get(details.get("cause"), fallback(details.get("cause")))
    return "the file was %s; %s" % (found[:1].lower() + found[1:], cause[:1].lower() + cause[1:])


# Details whose values are codes with words of their own.
def _lawful_bases():
    """The settings' lawful bases in words, with their Article 6(1) point (firmware.lawfulbasis),
    and a basis cleared ("") as not recorded."""
    from firmware.lawfulbasis import BASES

    said = {code: "%s (Article %s)" % basis for code, basis in BASES.items()}
    said[""] = "not recorded"
    return said


_CODED_DETAILS = {
    "lawful_basis": _lawful_bases(),
    "locked": LOCKOUTS,
    "must_change": MUST_CHANGE,
    "via": PAUSE_ENDS,
    "ended_by": PAUSE_ENDS,
    "decision": DECISIONS,
    "change": CHANGES,
    "mode": RECORDING_MODES,
    "default_mode": RECORDING_MODES,
    "country": _country_names(),
    "roles": ROLES,
    "kind": ALARMS,
    "format": EXPORT_FORMATS,  # another format (a report's pdf) is shown as it is
    "file_was": REPLAY_FOUND,
    "cause": REPLAY_CAUSES,
}


# Details that are lengths of time, and their unit in seconds.
_LENGTHS = {"duration_s": 1, "paused_s": 1, "quiet_ms": 0.001, "locked_s": 1, "auto_resume_s": 1}


def _detail_text(key, value, parent=None):
    """The text of detail ``key``'s ``value`` (within detail ``parent``)."""
    if key in _LENGTHS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return duration_text(value * _LENGTHS[key])
    table = _CODED_DETAILS.get(key)
    if table is None and parent == "lines" and str(key).isdigit():
        table = RECORDING_MODES  # the site settings' modes, line by line
    if table is not None and isinstance(value, str):
        return table.get(value) or value
    if table is not None and isinstance(value, list):
        texts = [(table.get(v) or v) if isinstance(v, str) else detail_value(v) for v in value]
        return ", ".join(texts) or "none"
    if isinstance(value, dict):
        return (
            "; ".join("%s: %s" % (say("detail", k), _detail_text(k, v, key)) for k, v in value.items())
            or "none"
        )
    return detail_value(value)


# A legal hold's entry, by its ``on`` detail: the hold placed or released.
LEGAL_HOLDS = {True: "Placed on legal hold", False: "Released from legal hold"}


def _said_in_action(action, details):
    """The details of an entry that :func:`audit_action` says in its words (or, for a staff
    notice, the page of that version shows)."""
    if action == "legal_hold" and isinstance(details.get("on"), bool):
        return ("on", "reason")
    if action == "staff_notice":
        return ("notice",)
    return ()


def audit_action(action, details=None):
    """What an audit entry says was done: its action's words, or for a legal hold placed or
    released, which and why ("Placed on legal hold: complaint ref 1234"). An entry saying
    a change was not made has no ``on``: its action's words, and its details say the rest."""
    details = details or {}
    if "on" in _said_in_action(action, details):
        reason = details.get("reason")
        return LEGAL_HOLDS[details["on"]] + (": %s" % detail_value(reason) if reason else "")
    return say("action", action)


# Details that are times of day (µs since the epoch, UTC): written as the page writes its
# times, not as a bare count of µs (enable-user's, a restored backup's, the clock confirmed).
WALL_TIMES = frozenset({"was_disabled_us", "backup_at_us", "confirmed_wall_us"})


# A data subject's request's entries (``data_request``, a request's history): what each
# ``event`` was (web/views/rights.py, web/views/erasecalls.py, web/views/myline.py, the
# register's retention in firmware/policy/sweeper.py).
REQUEST_EVENTS = {
    "logged": "Logged",
    "followed_up": "Followed up by another request",
    "waiting": "The clock stopped, waiting for proof of identity or clarification",
    "received": "What was waited for came: the clock runs again",
    "lines": "The lines it is about changed",
    "received_corrected": "The day received corrected",
    "contact_corrected": "How to reach them corrected",
    "requester_corrected": "Who asked corrected",
    "numbers_corrected": "Their numbers corrected",
    "extended": "Extended",
    "answered": "Answered",
    "refused": "Refused",
    "erase_calls": "Started erasing every call of their numbers",
    "calls_erased": "Finished erasing every call of their numbers",
    "deleted": "Deleted from the register (its retention)",
}

# Its details, where an event's differ from the same names elsewhere, by event.
REQUEST_DETAILS = {
    "erase_calls": {"calls": "Calls to erase", "held": "Skipped, on legal hold"},
    "calls_erased": {
        "calls": "Calls erased",
        "recordings": "Recordings erased",
        "refused": "Not erased",
        "stopped": "Stopped part way",
    },
}


def audit_fields(details, action=None, when=None):
    """An audit entry's details as ``[(label, text), ...]`` in their stored order; given the
    entry's ``action``, without those :func:`audit_action` says. ``when``: how the page
    writes a time (µs since the epoch), for the details of :data:`WALL_TIMES` (``Was
    disabled``: ``Tue 30 Jun 2026, 23:30:00 UTC``); None: as stored. A request's entry
    (``data_request``) says its ``event`` in words (:data:`REQUEST_EVENTS`), and its details
    as that event means them (:data:`REQUEST_DETAILS`)."""
    details = details or {}
    said = _said_in_action(action, details)
    labels, events = {}, {}
    if action == "data_request":
        event = details.get("event")
        labels = dict(REQUEST_DETAILS.get(event, {}) if isinstance(event, str) else {}, event="What happened")
        events = REQUEST_EVENTS
    fields = []
    for key, value in details.items():
        if key in said:
            continue
        if key in labels:
            text = events.get(value, value) if key == "event" and isinstance(value, str) else None
            fields.append((labels[key], text or _detail_text(key, value)))
        elif (
            when is not None and key in WALL_TIMES and isinstance(value, int) and not isinstance(value, bool)
        ):
            fields.append((say("detail", key[: -len("_us")]), when(value)))
        else:
            fields.append((say("detail", key), _detail_text(key, value)))
    return fields


def audit_target(action, target):
    """What an audit entry is about, in words where it names a part of the settings."""
    if action in ("config_change", "config_export"):
        return SETTINGS.get(target, target)
    return target
