"""The compliance checklist from the box's own state (one test per safeguard switched off),
and the staff notice from the configuration, in HTML and PDF."""

import dataclasses
import datetime
import errno
import html
import os
import re
import shutil
import subprocess

import pytest

import firmware.policy.announcement as announcement
from firmware.mail.settings import MailSettings, Schedule
from firmware.policy.settings import DEFAULT_ANNOUNCEMENT, LineMode

from support.web import chains_checked

BASIS = dict(lawful_basis="legitimate_interests", lia_date="2026-01-10")
CONTACT = dict(
    dp_contact="Data Protection Officer",
    dp_address="1 High Street\nAnytown\nAB1 2CD",
    dp_email="dpo@acme.example",
    dp_phone="01632 960123",
)

SITE_ANNOUNCEMENT = "This call may be recorded, to keep a record of orders taken by phone."


def configure_well(box, people):
    """Every safeguard met: the state the tests switch one thing off from."""
    store = box.config_store
    config = store.get()
    policy = config.policy
    policy = dataclasses.replace(
        policy,
        rules=dataclasses.replace(policy.rules, lines=(LineMode(line=4, mode="never"),)),
        consent=dataclasses.replace(
            policy.consent,
            inbound="announcement",
            outbound="tone",
            announcement=dataclasses.replace(policy.consent.announcement, text=SITE_ANNOUNCEMENT),
        ),
        retention=dataclasses.replace(policy.retention, default_days=90),
    )
    store.save(config.replace(policy=policy))
    change_site(box, dpia_reviewed="2026-01-15", **BASIS, **CONTACT)
    box.services.mail.store.save(
        MailSettings(
            host="mail.example.com",
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            schedules=(Schedule("weekly", ("boss@example.com",)),),
        )
    )
    assert back_up_key_store(box, people["alice"]).status_code == 200


def back_up_key_store(box, client):
    return box.post(client, "/settings/keystore-backup", token_from="/settings")


def old_key_store_backed_up(box):
    """The newest backup in the trail is of another key store (one a rekey replaced)."""
    details = {"phase": "made", "key_store": "ks1:" + ":".join(["0000"] * 8), "via": "cli"}
    box.services.audit.append("ivan", "key_backup", None, details, box.clock())


def statuses(client):
    page = client.get("/documents/checklist").get_data(as_text=True)
    return {
        int(n): (s, r)
        for n, s, r in re.findall(
            r'id="safeguard-(\d+)"><td data-label="No.">\d+</td>'
            r'<th scope="row" data-label="Safeguard">[^<]*</th>'
            r'<td class="status" data-label="Status">(\w+)</td>'
            r'<td data-label="Why">([^<]*)</td>',
            page,
        )
    }


@pytest.fixture
def good(box, people):
    configure_well(box, people)
    chains_checked(box)
    got = statuses(people["audrey"])
    assert len(got) == 18 and {s for s, _ in got.values()} == {"green"}, got
    return box, people


def change_site(box, **fields):
    web = box.web
    with web.db.tx() as conn:
        web.site.save(conn, dataclasses.replace(web.site.settings(), **fields))


def change_policy(box, section, **fields):
    config = box.config_store.get()
    policy = dataclasses.replace(
        config.policy, **{section: dataclasses.replace(getattr(config.policy, section), **fields)}
    )
    box.config_store.save(config.replace(policy=policy))


def tamper_audit(box):
    with open(os.path.join(box.data_dir, "audit.head"), "w") as f:
        f.write('{"seq": 1, "hash": "%s"}\n' % ("ab" * 32))


SWITCH_OFF = {
    1: ("red", "no purpose", lambda b: change_site(b, purpose="")),
    2: ("red", "expired on Sat 31 Jan 2026", lambda b: change_site(b, ico_renewal="2026-01-31")),
    3: ("amber", "the default rule records every call", lambda b: change_policy(b, "rules", lines=())),
    4: ("amber", "staff have no private phone", lambda b: change_policy(b, "rules", lines=())),
    5: ("red", "callers are given no notice", lambda b: change_policy(b, "consent", inbound="off")),
    6: (
        "red",
        "the consent notice is failing",
        lambda b: b.alarm_log.set("consent_notice_failed", True, line=2, message="x"),
    ),
    7: (
        "amber",
        "people called from the box are given no notice",
        lambda b: change_policy(b, "consent", outbound="off"),
    ),
    8: (
        "amber",
        "no way to pause recording",
        lambda b: change_policy(b, "pci", pause_code=None, button=False),
    ),
    9: ("amber", "recordings are kept for ever", lambda b: change_policy(b, "retention", default_days=None)),
    10: ("red", "the clock is not trusted", lambda b: b.alarm_log.set("clock_jump", True, message="jumped")),
    11: ("red", "the box has no recording keys", lambda b: os.remove(b.services.keystore.path)),
    12: ("red", "the audit trail does not verify", tamper_audit),
    13: (
        "amber",
        "alarms are only shown on the dashboard",
        lambda b: b.services.mail.store.save(dataclasses.replace(b.services.mail.store.get(), alarm_to=())),
    ),
    14: (
        "amber",
        "no scheduled report",
        lambda b: b.services.mail.store.save(dataclasses.replace(b.services.mail.store.get(), schedules=())),
    ),
    15: ("amber", "no data protection impact assessment", lambda b: change_site(b, dpia_reviewed="")),
    16: ("red", "no lawful basis for recording", lambda b: change_site(b, lawful_basis="", lia_date="")),
    17: (
        "amber",
        "no contact for data protection questions",
        lambda b: change_site(b, **{k: "" for k in CONTACT}),
    ),
    18: ("amber", "is of a key store a rekey has replaced", old_key_store_backed_up),
}


def test_the_lawful_basis_is_said_with_its_article_and_assessment(good):
    box, people = good
    assert statuses(people["audrey"])[16] == (
        "green",
        "legitimate interests (Article 6(1)(f) of the UK GDPR), assessed on Sat 10 Jan 2026",
    )
    change_site(box, lawful_basis="contract", lia_date="")
    assert statuses(people["audrey"])[16] == (
        "green",
        "a contract with the person (Article 6(1)(b) of the UK GDPR)",
    )
    # Legitimate interests without its assessment (a web.db edited by hand): not met in full.
    change_site(box, lawful_basis="legitimate_interests", lia_date="")
    status, reason = statuses(people["audrey"])[16]
    assert status == "amber" and "no legitimate interests assessment is recorded" in reason


def test_recording_calls_whose_notice_failed_is_not_green(good):
    """With "Record a call even when its notice could not be given" ticked, safeguard 6
    ("The notice is actually given") stayed green: a call nobody was told of was recorded
    while the checklist said all was well."""
    box, people = good
    change_policy(box, "consent", record_if_notice_failed=True)
    assert statuses(people["audrey"])[6] == (
        "amber",
        "a call whose notice could not be given is recorded all the same: clear "
        "\u201cRecord a call even when its notice could not be given\u201d (Consent)",
    )
    change_policy(box, "consent", record_if_notice_failed=False)
    assert statuses(people["audrey"])[6][0] == "green"


def test_an_announcement_that_cannot_be_played_is_not_given(good):
    """With the announcement's file gone, safeguard 6 ("The notice is actually given")
    stayed green until a call had ended untold: the box knew (the Consent page said so)
    that the next caller would hear nothing and go unrecorded."""
    box, people = good
    consent = box.config_store.get().policy.consent
    gone = dataclasses.replace(consent.announcement, file="gone.wav")
    change_policy(box, "consent", announcement=gone)
    status, reason = statuses(people["audrey"])[6]
    # In the words of the alarm the recorder raises for it (one source: words.ALARMS).
    assert status == "red" and reason.startswith(
        "the announcement cannot be played: calls that need it hear no notice and are not recorded "
        "(Consent: the announcement file gone.wav"
    )
    change_policy(box, "consent", record_if_notice_failed=True)
    assert "hear no notice and are recorded all the same (Consent: " in statuses(people["audrey"])[6][1]
    # Notices that need no announcement: nothing to play, nothing said.
    change_policy(box, "consent", inbound="tone", outbound="tone", record_if_notice_failed=False)
    assert statuses(people["audrey"])[6][0] == "green"


def test_an_announcement_that_cannot_be_made_is_said_not_a_server_error(good, monkeypatch):
    """The spoken announcement made afresh (its text changed, its file cache gone) and
    espeak-ng not started (an OSError: no memory to fork it): the checklist, the dashboard,
    the staff notice and My line (each asks whether it can be played) let the OSError
    through as a server error, for staff too. It is said instead, as any reason it cannot
    be played is."""
    box, people = good

    def no_memory(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(announcement.Announcements, "_espeak", no_memory)
    spoken = box.config_store.get().policy.consent.announcement
    change_policy(
        box, "consent", announcement=dataclasses.replace(spoken, text=SITE_ANNOUNCEMENT + " Thanks.")
    )
    status, reason = statuses(people["audrey"])[6]
    assert status == "red" and "Cannot allocate memory" in reason, reason
    for who, url in (("sam", "/documents/staff-notice"), ("ivan", "/"), ("ivan", "/consent")):
        assert people[who].get(url).status_code == 200, url
    consent = people["ivan"].get("/consent").get_data(as_text=True)
    assert "Cannot allocate memory" in html.unescape(consent)
    assert people["ivan"].get("/consent/announcement.wav").status_code == 409


def test_an_announcement_whose_cache_cannot_be_written_is_given(good, monkeypatch):
    """The spoken announcement made afresh on a full card: its samples are made in memory
    and played, only their cache is not written. It was said as one that cannot be
    played (and the recorder gave no notice); the card-full alarms say the card is full."""
    box, people = good

    def card_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(announcement, "atomic_write", card_full)
    spoken = box.config_store.get().policy.consent.announcement
    change_policy(
        box, "consent", announcement=dataclasses.replace(spoken, text=SITE_ANNOUNCEMENT + " Thanks.")
    )
    status, reason = statuses(people["audrey"])[6]
    assert status == "green", reason
    consent = people["ivan"].get("/consent").get_data(as_text=True)
    assert "No space left on device" not in html.unescape(consent)
    wav = people["ivan"].get("/consent/announcement.wav")
    assert wav.status_code == 200 and wav.data.startswith(b"RIFF")


def test_a_notice_given_in_neither_direction_is_not_given(good):
    """With the notice off both ways, safeguard 6 ("The notice is actually given") was
    green, "no consent notice has failed since the last one given", beside 5 red: the
    checklist shown to the ICO said the notice was given by a box that gives none."""
    box, people = good
    change_policy(box, "consent", inbound="off", outbound="off")
    checks = statuses(people["audrey"])
    assert checks[5][0] == "red" and checks[6] == (
        "red",
        "no notice is given in either direction, so none can be: see 5 and 7 (Consent)",
    )
    change_policy(box, "consent", inbound="off", outbound="tone")  # people called are told
    assert statuses(people["audrey"])[6][0] == "green"


def test_alarm_recipients_without_a_mail_server_are_named_as_such(good):
    """With recipients set and no mail server, safeguard 13 said "set alarm recipients
    (E-mail)": the installer looked, found them set, and did not see what was missing."""
    box, people = good
    store = box.services.mail.store
    store.save(dataclasses.replace(store.get(), host="", sender=""))
    assert statuses(people["audrey"])[13] == (
        "amber",
        "alarms are only shown on the dashboard: the 1 alarm recipient(s) get nothing until the "
        "mail server and sender address are set (E-mail)",
    )
    store.save(dataclasses.replace(store.get(), host="mail.example.com"))
    assert statuses(people["audrey"])[13][1].endswith("until the sender address is set (E-mail)")
    store.save(dataclasses.replace(store.get(), sender="box@example.com", alarm_to=()))
    assert statuses(people["audrey"])[13] == (
        "amber",
        "alarms are only shown on the dashboard: set alarm recipients (E-mail)",
    )


def test_a_contact_in_part_says_what_is_missing(good):
    box, people = good
    assert statuses(people["audrey"])[17] == (
        "green",
        "Data Protection Officer; 1 High Street, Anytown, AB1 2CD; dpo@acme.example; 01632 960123",
    )
    change_site(box, dp_address="", dp_phone="")
    assert statuses(people["audrey"])[17] == (
        "amber",
        "Data Protection Officer; dpo@acme.example; no postal address or phone given (Settings)",
    )


def recorded(client):
    page = html.unescape(client.get("/documents/checklist").get_data(as_text=True))
    table = re.search(r'<table id="recorded">(.*?)</table>', page, re.S).group(1)
    return dict(re.findall(r'<th scope="row">([^<]*)</th><td>([^<]*)</td>', table))


def test_an_auditor_reads_what_the_settings_record_on_the_checklist(good):
    """Auditors cannot open Settings, and the checklist's DPIA line sent them there."""
    box, people = good
    got = recorded(people["audrey"])
    # Dates as every other page writes them, not ISO (2026-01-15).
    assert got["DPIA last reviewed"] == "Thu 15 Jan 2026"
    assert got["ICO renewal due"] == "Sun 31 Jan 2027"
    assert got["Lawful basis"] == "legitimate interests (Article 6(1)(f) of the UK GDPR)"
    assert got["Legitimate interests assessment"] == "Sat 10 Jan 2026"
    assert got["Data protection contact, postal address"] == "1 High Street, Anytown, AB1 2CD"
    assert got["Data protection contact, e-mail"] == "dpo@acme.example"
    change_site(box, dpia_reviewed="", lawful_basis="", lia_date="", dp_email="")
    got = recorded(people["audrey"])
    assert got["DPIA last reviewed"] == got["Lawful basis"] == "not recorded"
    assert got["Data protection contact, e-mail"] == "not recorded"
    assert "Legitimate interests assessment" not in got


def test_a_dpia_reviewed_over_a_year_ago_is_amber(good):
    box, people = good
    change_site(box, dpia_reviewed="2025-02-28")  # the box's day: 2026-03-02
    assert statuses(people["ivan"])[15] == (
        "amber",
        "the DPIA was last reviewed on Fri 28 Feb 2025, over a year ago: look at it again (Settings)",
    )


@pytest.mark.parametrize("number", sorted(SWITCH_OFF))
def test_each_safeguard_turns_when_switched_off(good, number):
    box, people = good
    status, reason, switch_off = SWITCH_OFF[number]
    switch_off(box)
    got = statuses(people["audrey"])
    assert got[number][0] == status and reason in got[number][1], got[number]
    others = {n for n, (s, _) in got.items() if s != "green"} - {number}
    # Clearing the rules' lines turns both 3 and 4; a box without a key store has none backed up.
    # Without a retention period the sweeps delete nothing (10 turns with 9).
    assert others <= {3, 4} | ({18} if number == 11 else set()) | ({10} if number == 9 else set())


def test_a_key_store_never_backed_up_is_amber_until_one_is_made(box, people):
    """A dead card without a copy of the key store loses every recording, yet no
    safeguard said none was made: only the Settings page did, to installers who looked."""
    audrey = people["audrey"]
    status, reason = statuses(audrey)[18]
    assert status == "amber" and reason == (
        "no backup of the key store was made: a dead card loses every recording; an installer "
        "with a key slot that opens every line downloads one in Settings (Key store backup) and "
        "keeps it with the recovery key"
    )
    assert back_up_key_store(box, people["alice"]).status_code == 200
    assert statuses(audrey)[18][0] == "green"
    old_key_store_backed_up(box)  # a backup made since is of another key store
    status, reason = statuses(audrey)[18]
    assert status == "amber" and "downloads a new one in Settings (Key store backup)" in reason
    assert back_up_key_store(box, people["alice"]).status_code == 200
    assert statuses(audrey)[18] == (
        "green",
        "the key store was backed up on Mon 2 Mar 2026, since it last changed",
    )


def test_retention_that_runs_is_not_green_while_no_period_is_set(good):
    """Safeguard 10 said "retention sweeps run on a trusted clock", green, while 9 said no
    retention period was set: the sweeps ran, and deleted nothing, ever."""
    box, people = good
    change_policy(box, "retention", default_days=None)
    got = statuses(people["audrey"])
    assert got[9][0] == "amber"
    assert got[10] == (
        "amber",
        "retention sweeps run, but no retention period is set (see 9), so no recording is ever "
        "deleted (Retention)",
    )
    change_policy(box, "retention", default_days=90)
    assert statuses(people["audrey"])[10] == ("green", "retention sweeps run on a trusted clock")


def test_the_ico_renewal_is_a_date_in_words_while_green(good):
    box, people = good
    assert statuses(people["ivan"])[2] == ("green", "registration ZA123456, renewal due Sun 31 Jan 2027")


def test_ico_due_soon_is_amber(good):
    box, people = good
    change_site(box, ico_renewal="2026-03-20")
    assert statuses(people["ivan"])[2] == (
        "amber",
        "registration ZA123456 must be renewed by Fri 20 Mar 2026 (18 days)",
    )


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing")
def test_checklist_and_staff_notice_as_pdf(good, tmp_path):
    box, people = good
    change_policy(box, "consent", inbound="off")
    pdf = people["audrey"].get("/documents/checklist.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    path = tmp_path / "c.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Callers told that calls are recorded" in text and "RED" in text
    said = " ".join(text.split())
    assert "Recorded in the settings" in said and "DPIA last reviewed Thu 15 Jan 2026" in said
    assert "A contact for data protection questions" in said and "dpo@acme.example" in said
    notice = people["sam"].get("/documents/staff-notice")
    page = notice.get_data(as_text=True)
    assert "To keep a record of orders taken by phone." in page
    assert "For private calls use Line 4: never recorded." in page
    assert "90 days" in page and "sam (lines 1 and 2), sue (line 3)" in page
    pdf = people["sam"].get("/documents/staff-notice.pdf")
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "For private calls use Line 4: never recorded." in text
    said = " ".join(text.split())
    assert "Callers are not told as the call is answered." in said
    assert "People you call: a beep when the call is answered means it may be recorded." in said
    assert "sam (lines 1 and 2), sue (line 3)" in said
    # Their rights (UK GDPR) and where to complain, on the page and the printed notice.
    for said in (html.unescape(page), " ".join(text.split())):
        assert "for a recording of you to be erased" in said and "object to being recorded" in said
        assert "complain to the Information Commissioner's Office: ico.org.uk/make-a-complaint" in said


def test_the_checklist_says_what_callers_hear_in_words(good):
    """It said "callers hear the announcement" and "people called hear the tone": the
    consent notice's setting, not what a caller hears."""
    box, people = good
    page = people["audrey"].get("/documents/checklist").get_data(as_text=True)
    assert "callers hear a spoken announcement when a call is answered" in page
    assert "people called hear a beep" in page and "hear the tone" not in page


def test_the_shipped_announcement_is_not_green_whatever_purpose_was_stated(good):
    """The default announcement told callers calls were recorded "for training and quality
    purposes" whatever purpose the installer stated, and safeguards 5 and 7 were green."""
    box, people = good
    config = box.config_store.get()
    shipped = dataclasses.replace(config.policy.consent.announcement, text=DEFAULT_ANNOUNCEMENT)
    change_policy(box, "consent", announcement=shipped, outbound="announcement")
    got = statuses(people["audrey"])
    words = (
        "the announcement still says the shipped words, calls recorded \u201cfor training and quality "
        "purposes\u201d, not the purpose stated in Settings: write what it says (Consent)"
    )
    assert got[5] == ("amber", "callers hear a spoken announcement, but " + words)
    assert got[7] == ("amber", "people called hear a spoken announcement, but " + words)
    change_policy(box, "consent", outbound="tone")
    assert statuses(people["audrey"])[7][0] == "green"
    # An uploaded recording says what the business recorded: the box cannot tell, and trusts it.
    change_policy(box, "consent", announcement=dataclasses.replace(shipped, file="upload-1.wav"))
    assert statuses(people["audrey"])[5][0] == "green"


def test_a_recovery_key_never_confirmed_is_amber_and_says_what_to_do(good):
    """Safeguard 11 was green while only the dashboard said the recovery key was never confirmed."""
    box, people = good
    box.web.site.set_recovery_confirmed(False)
    assert statuses(people["audrey"])[11] == (
        "amber",
        "recordings are encrypted, but the recovery key was never confirmed as stored: an "
        "installer who is also a supervisor should make a new one and keep it safe (Settings)",
    )
    box.web.site.set_recovery_confirmed(True)
    assert statuses(people["audrey"])[11][0] == "green"


def test_a_long_purpose_is_cut_at_a_word_with_an_ellipsis(good):
    """Safeguard 1 cut the purpose at 80 characters, mid-word ("what was agr")."""
    box, people = good
    change_site(
        box,
        purpose="To keep a record of orders taken by phone and to settle\ndisagreements "
        "about what was agreed with customers.",
    )
    assert statuses(people["audrey"])[1] == (
        "green",
        "stated in setup: \u201cTo keep a record of orders taken by phone and to settle "
        "disagreements about\u2026\u201d",
    )
    change_site(box, purpose="To keep a record of orders taken by phone.")
    assert statuses(people["audrey"])[1][1] == (
        "stated in setup: \u201cTo keep a record of orders taken by phone.\u201d"
    )


def test_the_staff_notice_says_every_way_to_pause_for_card_details(good):
    """It gave the keypad code only: on a box that pauses by its button alone, staff were
    never told how to pause."""
    box, people = good
    change_policy(box, "pci", pause_code="*1", button=True)
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    assert "key *1 on the handset or press the line&#39;s pause button: recording pauses" in page
    change_policy(box, "pci", pause_code=None, button=True)
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    assert "When a caller gives card details, press the line&#39;s pause button: recording pauses" in page


def test_no_way_to_pause_says_where_it_is_set(good):
    """Safeguard 8 sends the installer to where the pause code is set: the Rules page's
    Card payments form (it once had none, and the configuration file alone set it)."""
    box, people = good
    change_policy(box, "pci", pause_code=None, button=False)
    assert statuses(people["audrey"])[8] == (
        "amber",
        "no way to pause recording while card details are given: set a pause code (Rules, Card payments)",
    )
    assert 'id="pci-pause_code"' in people["ivan"].get("/rules").get_data(as_text=True)


def test_card_details_safeguard_is_amber_when_masking_is_off_or_a_code_would_end_a_pause(good):
    """Safeguard 8 was green whenever a pause code was set: with DTMF masking off, a card
    keyed on the phone unpaused is in the recording; with a resume code of digits (set by
    an import or an older page), the same digits keyed in a card's security code during a
    pause resume the recording mid-card. An assessor reading the checklist saw neither."""
    box, people = good
    change_policy(box, "pci", pause_code="*1", resume_code="*2", button=True, mask_dtmf=False)
    assert statuses(people["audrey"])[8] == (
        "amber",
        "DTMF masking is off: a card number keyed on the phone while the recording is not "
        "paused is in the recording (Rules, Card payments)",
    )
    change_policy(box, "pci", resume_code="7", mask_dtmf=True)
    status, reason = statuses(people["audrey"])[8]
    assert status == "amber" and reason.startswith(
        "The resume code 7 does not start with * or #: a caller keying a card number"
    ), reason
    assert reason.endswith("(Rules, Card payments)"), reason
    change_policy(box, "pci", resume_code="*2")
    assert statuses(people["audrey"])[8] == (
        "green",
        "recording pauses for card details: code *1 on the handset or the pause button, or the web UI",
    )


def test_the_staff_notice_says_how_a_pause_for_card_details_ends(good, tmp_path):
    """It said "recording pauses until the details are given": staff were never told to
    key the resume code, nor that a pause ends by itself after auto_resume_s, so card
    details that took longer were recorded from then on."""
    box, people = good
    change_policy(box, "pci", pause_code="*1", resume_code="*2", button=True, auto_resume_s=120)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="pci">(.*?)</p>', page).group(1)
    assert "until the details are given" not in said
    assert said.endswith(
        "recording pauses. Once the details are given, key *2 or press the pause button again "
        "to resume; it resumes by itself after 2 minutes: if the details take longer, pause it again."
    )
    change_policy(box, "pci", resume_code=None, button=False, auto_resume_s=90)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="pci">(.*?)</p>', page).group(1)
    assert said == (
        "When a caller gives card details, key *1 on the handset: recording pauses. It resumes "
        "by itself after 90 seconds: if the details take longer, pause it again."
    )
    path = tmp_path / "notice.pdf"
    path.write_bytes(people["sam"].get("/documents/staff-notice.pdf").data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "recording pauses. It resumes by itself after 90 seconds" in " ".join(text.split())


def test_the_staff_notice_says_a_person_reached_after_a_recall_hears_no_notice(good):
    """The box keeps a call's decision and notice across a recall (R): whoever staff
    reach after it is recorded without a notice of their own. The notice tells staff."""
    box, people = good
    change_policy(box, "pci", pause_code="*1", button=False)
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    recall = re.search(r'<p id="recall">(.*?)</p>', page).group(1)
    assert "the R or recall button" in recall and "hears no notice of their own" in recall
    assert recall.endswith("tell them the call is recorded, or pause the recording (key *1 on the handset).")


def test_the_staff_notice_says_which_calls_each_line_records(good, tmp_path):
    """A line recorded by rule said "recorded by the rules" alone: staff could not tell
    which of their calls were recorded. Now each line says its rules (an exclude list by
    its name and size, never its numbers), a line recorded on request the code to key,
    and each recorded line how to pause for card details, on the page and the PDF."""
    from firmware.policy.settings import BusinessHours, NumberList

    box, people = good
    change_policy(box, "pci", pause_code="*1", button=False)
    change_policy(
        box,
        "rules",
        lines=(LineMode(1, "by_rule"), LineMode(2, "on_demand"), LineMode(4, "never")),
        directions=("in",),
        hours=BusinessHours(
            "Europe/London", {d: ("09:00-17:30",) for d in ("mon", "tue", "wed", "thu", "fri")}
        ),
        numbers=(NumberList("helplines", "exclude", ("0800*", "0808*")),),
        sample_percent=50,
        min_duration_s=10,
    )
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    rows = dict(re.findall(r"<tr><td>(\d)</td><td>[^<]*</td><td>([^<]*)</td></tr>", page))
    assert rows["1"] == (
        "recorded by the rules: only calls you take (incoming), not those you make; not calls to or "
        "from the numbers on the list \u201chelplines\u201d (2 entries); only Monday to Friday "
        "09:00-17:30 (Europe/London time); of those, only 50 % picked at random; not a call that "
        "talks less than 10 s; to pause it while a caller gives card details, key *1 on the handset"
    )
    assert rows["2"].startswith("recorded only when asked during the call (key *9 on the handset")
    assert rows["3"].startswith("every call recorded") and rows["4"] == "never recorded"
    assert "0800" not in page and "0808" not in page
    path = tmp_path / "notice.pdf"
    path.write_bytes(people["sam"].get("/documents/staff-notice.pdf").data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    said = " ".join(text.split())
    assert "\u201chelplines\u201d (2 entries)" in said and "only 50 % picked at random" in said
    assert "0800" not in said


def test_the_staff_notice_says_how_to_make_a_personal_call_where_the_code_is_on(good, tmp_path):
    """The personal-call code (policy.rules.personal) keyed on a line: the notice tells the
    staff of the lines it works on, recorded ones only, and says nothing of it while off."""
    from firmware.policy.rules import Personal

    box, people = good
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    assert 'id="personal"' not in page and "personal call" not in page
    change_policy(box, "rules", personal=Personal(dtmf_code="#7", lines=(1, 2, 4)))  # line 4: private
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="personal">(.*?)</p>', page).group(1)
    assert said.startswith("For a personal call on Line 1 or Line 2, key #7 on the handset once the call")
    assert "not recorded, and what was recorded of it is deleted at once" in said
    assert "supervisors see how many calls each line marked personal, never what was said" in said
    path = tmp_path / "notice.pdf"
    path.write_bytes(people["sam"].get("/documents/staff-notice.pdf").data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "For a personal call on Line 1 or Line 2, key #7" in " ".join(text.split())


def test_no_pause_button_is_offered_on_a_hat_without_one(good):
    """On an LK-4L (no buttons) the staff notice told staff to "press the line's pause
    button" and the checklist counted it as a way to pause."""
    box, people = good
    change_policy(box, "pci", pause_code="*1", button=True)
    config = box.config_store.get()
    box.config_store.save(config.replace(hat="lk-4l"))
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    assert "key *1 on the handset: recording pauses" in page and "pause button" not in page
    assert "pause button" not in statuses(people["audrey"])[8][1]
    box.config_store.save(config.replace(hat="lk-2lb"))  # its lines have one each
    assert "or press the line&#39;s pause button" in people["sam"].get("/documents/staff-notice").get_data(
        as_text=True
    )


def test_the_retention_said_includes_the_rules(good):
    """With no default period and a rule deleting line 1's incoming calls after 30 days,
    the staff notice said "No retention period is set yet" and the checklist "kept for
    ever", while the Retention page said the rule was deleting calls."""
    from firmware.policy.retention import RetentionRule

    box, people = good
    change_policy(
        box, "retention", default_days=None, rules=(RetentionRule("line 1", days=30, line=1, direction="in"),)
    )
    notice = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    assert said.startswith("Line 1 incoming calls: 30 days; other recordings are kept until deleted by hand")
    status, text = statuses(people["audrey"])[9]
    assert status == "amber" and "line 1 incoming calls: 30 days" in text and "kept for ever" in text


def test_the_retention_said_names_a_rules_line_as_the_pages_do(good):
    """A rule's line was "line 1" in the staff notice while the Retention page, the alarm
    banner and the mail said "line 1 (Office)"."""
    from firmware.policy.retention import RetentionRule

    box, people = good
    lines = box.web.site.settings().lines
    change_site(box, lines=tuple(dataclasses.replace(x, name="Office") if x.line == 1 else x for x in lines))
    change_policy(
        box, "retention", default_days=None, rules=(RetentionRule("line 1", days=30, line=1, direction="in"),)
    )
    notice = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    assert said.startswith("Line 1 (Office) incoming calls: 30 days;"), said


def test_the_checklist_counts_the_days_from_the_boxs_own_date(good):
    """At 00:30 BST the UTC date is still the day before: the ICO renewal's days left
    were one more than the box's calendar says."""
    import datetime as dt

    box, people = good
    box.clock.t_us = int(dt.datetime(2026, 7, 1, 23, 30, tzinfo=dt.UTC).timestamp()) * 1_000_000
    change_site(box, ico_renewal="2026-07-20")
    ivan = box.login("ivan")  # months on: the morning's session has lapsed
    assert statuses(ivan)[2] == (
        "amber",
        "registration ZA123456 must be renewed by Mon 20 Jul 2026 (18 days)",
    )


def test_the_retention_said_includes_rules_that_keep_and_minimum_periods(good):
    """With 30 days by default, a rule keeping complaints and a 1827-day minimum for
    regulated calls, staff were told "30 days": both kinds are kept far longer."""
    from firmware.policy.retention import RetentionRule

    box, people = good
    change_policy(
        box,
        "retention",
        default_days=30,
        rules=(RetentionRule("complaints", days=None, category="complaints"),),
        minimum_days={"regulated": 1827},
    )
    notice = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    assert said.startswith(
        "30 days (calls tagged complaints: kept until deleted by hand; "
        "calls tagged regulated: never less than 1827 days)"
    ), said


def test_the_staff_notice_says_what_the_people_staff_call_are_told(good):
    """It gave the inbound notice only: with the announcement on for incoming calls and
    nothing for outgoing ones, staff read that everyone hears it."""
    box, people = good
    change_policy(box, "consent", inbound="announcement", outbound="off")
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert said.startswith("Callers: they hear: \u201c") and said.endswith(
        "People you call are not told as the call is answered: tell them yourself."
    ), said


def test_the_staff_notice_ends_the_announcement_s_words_once(good):
    """An announcement ending in a full stop was printed ending twice ("…agreed.”."),
    in the notice every member of staff is given."""
    box, people = good
    config = box.config_store.get()
    words = dataclasses.replace(config.policy.consent.announcement, text="This call is recorded.")
    change_policy(box, "consent", inbound="announcement", outbound="tone", announcement=words)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert said.startswith("Callers: they hear: \u201cThis call is recorded.\u201d People you call: "), said
    change_policy(box, "consent", outbound="announcement")
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert said == "Callers, and the people you call: they hear: \u201cThis call is recorded.\u201d", said
    change_policy(box, "consent", announcement=dataclasses.replace(words, text="Calls are recorded"))
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert said == "Callers, and the people you call: they hear: \u201cCalls are recorded\u201d.", said


def test_the_pdf_links_are_left_off_the_printed_documents(good):
    """The printed checklist, staff notice and year in review carried their "PDF ..." links,
    which do nothing on paper; every page leaves its download links off (docs/web-ui.md)."""
    box, people = good
    for who, path, link in (
        ("audrey", "/documents/checklist", "checklist-pdf"),
        ("sam", "/documents/staff-notice", "staff-notice-pdf"),
        ("sam", "/documents/year-review", "year-review-pdf"),
    ):
        page = people[who].get(path).get_data(as_text=True)
        assert re.search(r'<(p|span) class="no-print">\s*<a [^>]*id="%s"' % link, page), path


def test_the_printed_notice_says_who_may_listen_as_the_page_does(good, tmp_path):
    """The page says every playback and export is audited "with the reason they gave"; the
    PDF printed for the staff room left those words out."""
    box, people = good
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="listeners">(.*?)</p>', page).group(1)
    path = tmp_path / "notice.pdf"
    path.write_bytes(people["sam"].get("/documents/staff-notice.pdf").data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "with the reason they gave" in said
    assert said in " ".join(text.split()), said


def test_the_retention_said_warns_that_a_full_card_deletes_sooner(good):
    """With the overwrite mode on, staff were told "90 days" while a full card deletes
    recordings of 40 days."""
    box, people = good
    change_policy(box, "retention", default_days=90, overwrite_oldest_when_full=True)
    notice = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    assert said.startswith(
        "90 days; when the card is full, the oldest recordings past their minimum period"
    ), said


def test_the_staff_notice_names_the_archive_among_those_who_may_listen(good):
    """'Only these supervisors' was untrue on a box that copies its recordings to the
    organisation's archive, whose viewer plays them too."""
    import os

    from firmware.archive.queue import ArchiveStatus

    box, people = good
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    assert "organisation&#39;s archive" not in page
    box.services.archive = ArchiveStatus(os.path.join(box.data_dir, "calls.db"))
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    assert "copied to the organisation's archive, where the supervisors of its archive viewer" in page


def test_the_staff_notice_says_the_warning_tone_is_a_notice(good):
    """With the periodic warning tone on and no notice at the answer, it said nobody is
    told, and told staff to tell the people they call themselves."""
    from firmware.policy.consent import WarningTone

    box, people = good
    tone = WarningTone(enabled=True, interval_s=15)
    change_policy(box, "consent", inbound="off", outbound="off", warning_tone=tone)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert said.endswith("every 15 s after, means the call is recorded."), said
    change_policy(box, "consent", inbound="tone", outbound="off", warning_tone=tone)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert "tell them yourself" not in said and said.endswith("a reminder that it is recorded."), said


def test_the_staff_notice_says_when_the_first_warning_beep_comes(good):
    """It said "a short beep every 15 s" whatever the notice: on a box whose only notice is
    the tone its first beep comes as the call is answered (docs/policy.md), and after an
    announcement the beeps are a reminder, every 15 s after it. Both the page and its PDF."""
    from firmware.policy.consent import WarningTone

    box, people = good
    tone = WarningTone(enabled=True, interval_s=15)
    change_policy(box, "consent", inbound="off", outbound="off", warning_tone=tone)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert said == (
        "Callers, and the people you call: a short beep as a recorded call is answered (or as "
        "its recording begins, when asked for later), and every 15 s after, means the call is "
        "recorded."
    )
    change_policy(box, "consent", inbound="announcement", outbound="announcement", warning_tone=tone)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert "as a recorded call is answered" not in said
    assert said.endswith(
        "After the notice, both sides of a recorded call hear a short beep every 15 s, a reminder "
        "that it is recorded."
    ), said
    assert "callers' notice" not in said
    change_policy(box, "consent", inbound="announcement", outbound="off", warning_tone=tone)
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="caller-notice">(.*?)</p>', page, re.S).group(1)
    assert "People you call: a short beep as a recorded call is answered" in said, said
    assert "After the callers' notice, both sides of a recorded call hear a short beep every 15 s" in said


def test_the_dpia_date_is_kept_apart_for_the_release_before(good):
    """The release before reads the site settings' JSON with its own fields only: the date
    rolled back with them would stop every page it draws."""
    import json as _json

    box, people = good
    web = box.web
    stored = _json.loads(web.db.one("SELECT value FROM site WHERE key = 'settings'")[0])
    assert "dpia_reviewed" not in stored
    assert web.site.settings().dpia_reviewed == "2026-01-15"


def test_an_export_stays_one_the_release_before_imports_and_an_import_keeps_the_dpia_date(good):
    """The release before refuses a site key it does not know: the whole import failed."""
    from firmware.configio import check_import, export_config, import_config

    box, _people = good
    doc = export_config(box.data_dir)
    assert "dpia_reviewed" not in doc["site"] and "dpia_reviewed" not in doc
    _config, site, _files = check_import(doc)
    import_config(box.data_dir, doc)
    assert box.web.site.settings().dpia_reviewed == "2026-01-15"  # the box's own record stays


def test_a_dpia_reviewed_in_the_future_is_refused():
    from web.site import parse_site_form

    form = {"organisation": "Acme", "country": "us", "purpose": "to keep a record of orders"}
    form.update({"line-1-name": "Sales", "line-1-mode": "record", "dpia_reviewed": "2099-12-31"})
    _settings, errors = parse_site_form(form, 1, today=datetime.date(2026, 3, 2))
    assert errors == {
        "dpia_reviewed": "The review date cannot be in the future (today is Mon 2 Mar 2026 on the "
        "box's clock): give the day it was reviewed."
    }


def test_the_staff_notice_gives_the_lawful_basis_and_who_answers_data_protection_questions(good, tmp_path):
    box, people = good
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    assert (
        '<p id="lawful-basis">The lawful basis for recording: legitimate interests '
        "(Article 6(1)(f) of the UK GDPR).</p>" in page
    )
    assert (
        '<p id="dp-contact">Questions about data protection: Data Protection Officer, 1 High Street, '
        "Anytown, AB1 2CD; dpo@acme.example; 01632 960123.</p>" in page
    )
    if shutil.which("pdftotext") is not None:
        path = tmp_path / "n.pdf"
        path.write_bytes(people["sam"].get("/documents/staff-notice.pdf").data)
        text = subprocess.run(
            ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        said = " ".join(text.split())
        assert (
            "The lawful basis for recording: legitimate interests (Article 6(1)(f) of the UK GDPR)." in said
        )
        assert "Questions about data protection: Data Protection Officer, 1 High Street" in said
    change_site(box, lawful_basis="", lia_date="", **{k: "" for k in CONTACT})
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    assert "The lawful basis for recording has not been recorded yet." in page
    assert 'id="dp-contact"' not in page


def test_the_staff_notice_says_a_call_made_is_recorded_from_off_hook(good, tmp_path):
    """A call staff make on a recorded line is recorded from the moment the handset is
    lifted (what they say while the number rings is in it), and the person called hears
    the notice only once they answer: the notice said neither."""
    box, people = good
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    outgoing = re.search(r'<p id="outgoing">(.*?)</p>', page).group(1)
    names = [box.web.site.settings().line(n).name for n in (1, 2, 3, 4)]
    # "on Sales, Office, Fax/Spare", with no "and".
    assert outgoing.startswith(
        "A call you make on %s, %s and %s is recorded from the moment" % tuple(names[:3])
    )
    assert names[3] not in outgoing  # the private line
    assert "anything you say before the other person answers" in outgoing
    path = tmp_path / "notice.pdf"
    path.write_bytes(people["sam"].get("/documents/staff-notice.pdf").data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "recorded from the moment you lift the handset" in " ".join(text.split())
    # Lines recording incoming calls only: nothing to say.
    change_policy(box, "rules", default_mode="by_rule", directions=("in",))
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    assert 'id="outgoing"' not in page


def test_the_staff_notice_says_a_call_made_on_a_line_recorded_on_request_is_recorded_only_if_asked(good):
    """A line recorded only when asked, with the call from its start, was among the lines
    whose every call made "is recorded from the moment you lift the handset": only a call
    someone asks to record is, holding at most its look-back from before the request."""
    from firmware.policy.consent import WarningTone
    from firmware.policy.settings import OnDemand

    box, people = good
    names = [box.web.site.settings().line(n).name for n in (1, 2, 3, 4)]

    def outgoing():
        page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
        m = re.search(r'<p id="outgoing">(.*?)</p>', page)
        return m.group(1) if m else ""

    change_policy(
        box,
        "rules",
        lines=(LineMode(1, "always"), LineMode(2, "on_demand"), LineMode(3, "always"), LineMode(4, "never")),
        on_demand=OnDemand("*9", False, True, 45),
    )
    said = outgoing()
    assert said.startswith(
        "A call you make on %s and %s is recorded from the moment you lift the handset" % (names[0], names[2])
    ), said
    assert said.endswith(
        " A call you make on %s is recorded only if recording is asked for during the call; the "
        "recording then begins at the moment you lifted the handset, or 45 s before the request if "
        "that was longer ago: the dialling, the ringing and what you said before the other person "
        "answered may be in it." % names[1]
    ), said
    assert names[3] not in said
    # Only from the request, no way to ask, or a beep at the request as the only notice of a
    # call made: nothing from before the request is kept.
    for on_demand in (OnDemand("*9", False, False, 45), OnDemand(None, False, True, 45)):
        change_policy(box, "rules", on_demand=on_demand)
        assert "recorded only if" not in outgoing() and names[1] not in outgoing()
    change_policy(box, "rules", on_demand=OnDemand("*9", False, True, 45))
    change_policy(box, "consent", outbound="off", warning_tone=WarningTone(enabled=True))
    assert "recorded only if" not in outgoing() and names[1] not in outgoing()
    # A line recorded only when asked alone: its sentence alone.
    change_policy(box, "consent", outbound="tone", warning_tone=WarningTone())
    change_policy(
        box, "rules", lines=tuple(LineMode(n, "on_demand") for n in (1, 2, 3)) + (LineMode(4, "never"),)
    )
    assert outgoing().startswith("A call you make on %s, %s and %s is recorded only if" % tuple(names[:3]))


def test_the_staff_notice_says_the_lines_each_supervisor_may_open(good):
    """'Who may listen' named every supervisor but not which lines each may open: staff could
    not tell who may hear their line. The page and the PDF's words say each one's lines."""
    from web.documents import lines_words, staff_notice
    from web.views.documents import notice_blocks

    box, people = good
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="listeners">(.*?)</p>', page).group(1)
    assert "only on the lines given to them" in said
    assert "sam (lines 1 and 2)" in said and "sue (line 3)" in said, said
    blocks = notice_blocks(staff_notice(box.web))
    assert any("sam (lines 1 and 2), sue (line 3)" in str(block) for block in blocks)
    assert (lines_words(()), lines_words((4, 1, 2))) == ("no line yet", "lines 1, 2 and 4")


def test_the_staff_notice_lists_no_supervisor_as_listening_on_a_private_line(good):
    """A private line is never recorded: there is nothing on it to listen to, yet the notice
    said its supervisor might ("sam (lines 1 and 2)" with line 2 private). Their private
    lines are left out; one with only private lines has "no recorded line". The private
    lines are named with "or": "For private calls use Sales or Fax"."""
    from web.documents import listened_words

    box, people = good
    change_policy(
        box, "rules", lines=tuple(LineMode(n, "never" if n in (2, 3) else "always") for n in (1, 2, 3, 4))
    )
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    said = re.search(r'<p id="listeners">(.*?)</p>', page).group(1)
    assert "sam (line 1)" in said and "sue (no recorded line)" in said, said
    names = [box.web.site.settings().line(n).name for n in (2, 3)]
    assert "For private calls use %s or %s: never recorded." % tuple(names) in page
    assert (listened_words((), {2}), listened_words((1, 2), set())) == ("no line yet", "lines 1 and 2")


def test_a_key_store_changed_since_its_backup_is_amber_until_a_new_one_is_made(box, people):
    """A new recovery key, or a line's new key, changes the key store but not its
    fingerprint: a backup made before would put it back without that (opening only with the
    old recovery key; that line's recordings since with nothing), yet 18 stayed green."""
    from web.documents import checklist_reminders

    audrey, alice = people["audrey"], people["alice"]
    assert back_up_key_store(box, alice).status_code == 200
    assert statuses(audrey)[18][0] == "green"
    box.services.keystore.unlock_recovery(box.recovery_key).forget()
    assert box.post(alice, "/settings/recovery-key", token_from="/settings").status_code == 302
    status, reason = statuses(audrey)[18]
    assert status == "amber" and reason == (
        "the key store changed since its last backup, made on Mon 2 Mar 2026 (a new recovery key "
        "made): that backup would put it back as it was; an installer with a key slot that opens "
        "every line downloads a new one in Settings (Key store backup) and keeps it with the "
        "recovery key"
    )
    assert "(a new recovery key made)" in checklist_reminders(box.web)["keystore_backup_stale"]
    page = people["ivan"].get("/settings").get_data(as_text=True)
    assert 'id="backup-behind"' in page and "(a new recovery key made)" in page


def test_key_slots_and_passwords_changed_since_the_backup_raise_no_alarm(box, people):
    """The backup alarm was raised, and mailed, at every password change, a new user's
    forced one at first login too, so the owner downloaded a backup after every new user.
    A restore of that backup loses no recording by a key slot or a password (the recovery
    key opens every line's key in it): those users' passwords are reset after it. 18 stays
    green and says what changed; Settings says it too, without the error."""
    from web.documents import checklist_reminders

    audrey, alice = people["audrey"], people["alice"]
    assert back_up_key_store(box, alice).status_code == 200
    keystore = box.services.keystore
    keystore.change_password("alice", box.PASSWORDS["alice"], "a new password for alice")
    status, reason = statuses(audrey)[18]
    assert status == "green" and html.unescape(reason) == (
        "the key store was backed up on Mon 2 Mar 2026; since then only a password changed, or "
        "the lines a user's key slot opens, which a restore of that backup loses no recording "
        "by (those users' passwords are reset after it)"
    )
    assert checklist_reminders(box.web)["keystore_backup_stale"] is False
    with keystore.unlock("alice", "a new password for alice") as key:
        keystore.add_slot("ivan", box.PASSWORDS["ivan"], key)
    assert statuses(audrey)[18][0] == "green"
    assert checklist_reminders(box.web)["keystore_backup_stale"] is False
    page = html.unescape(people["ivan"].get("/settings").get_data(as_text=True))
    assert 'id="backup-behind"' not in page
    assert "Since then: a key slot added for ivan. A restore of that backup would lose no" in page


def test_a_backup_audited_without_its_contents_is_judged_by_its_fingerprint(box, people):
    """Entries written before backups recorded what they hold: current while the key store's
    fingerprint is the same, as before."""
    from firmware import keybackup

    current = keybackup.key_store_fingerprint(box.services.keystore.public_key())
    details = {"phase": "made", "key_store": current, "via": "cli"}
    box.services.audit.append("ivan", "key_backup", None, details, box.clock())
    assert statuses(people["audrey"])[18] == (
        "green",
        "the key store was backed up on Mon 2 Mar 2026, since it last changed",
    )
    assert 'id="last-backup"' in people["ivan"].get("/settings").get_data(as_text=True)


def test_a_line_whose_alarms_reach_no_recipients_account_is_named(good):
    """Every alarm recipient tied to a supervisor of other lines (the E-mail page refuses
    such a list, but an account can change after it was saved): safeguard 13 was green,
    and line 4's alarms were mailed to nobody without anyone being told."""
    box, people = good
    store = box.services.mail.store
    store.save(
        dataclasses.replace(
            store.get(),
            alarm_to=("sam@example.com", "sue@example.com"),
            alarm_accounts=(("sam@example.com", "sam"), ("sue@example.com", "sue")),
        )
    )
    said = (
        "no alarm recipient is tied to an account that sees line 4: its alarms are mailed to every "
        "recipient without their details; tie a recipient to an account that sees it, or add one "
        "tied to no account (E-mail)"
    )
    assert statuses(people["audrey"])[13] == ("amber", said)
    html = people["ivan"].get("/").get_data(as_text=True)
    assert 'id="todo-13"' in html and "no alarm recipient is tied to an account that sees line 4" in html
    store.save(
        dataclasses.replace(
            store.get(), alarm_to=("sam@example.com",), alarm_accounts=(("sam@example.com", "sam"),)
        )
    )
    assert statuses(people["audrey"])[13][1].startswith(
        "no alarm recipient is tied to an account that sees lines 3 and 4: their alarms"
    )
    store.save(dataclasses.replace(store.get(), alarm_accounts=()))
    assert statuses(people["audrey"])[13][0] == "green"


def test_the_staff_notice_says_a_private_lines_calls_are_still_listed(good, tmp_path):
    """Issue: the notice told staff "For private calls use Line 4: never recorded." and no
    more, while every call on Line 4 is in the call log with the number, the caller's name,
    when and how long, and its supervisors see it on the Lines page as it happens: staff
    making a private call there were not told what the box keeps of it (UK GDPR
    transparency). The notice now says so, on the page and the printed notice; a box with no
    private line is told nothing of it."""
    from web.documents import staff_notice

    box, people = good
    # The auditors list every line's calls too: the notice named the supervisors alone.
    said = (
        "A call on Line 4 is still listed in the call log, as every call is (when, the number, "
        "how long): the supervisors of Line 4 see it as it happens, and they and the auditors "
        "may read the log. Only what is said is never recorded."
    )
    page = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    assert "For private calls use Line 4: never recorded. " + said in page
    pdf = people["sam"].get("/documents/staff-notice.pdf")
    path = tmp_path / "n.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert said in " ".join(text.split())
    rules = box.config_store.get().policy.rules
    change_policy(box, "rules", lines=tuple(dataclasses.replace(x, mode="always") for x in rules.lines))
    assert "private_listed" not in staff_notice(box.web)


def test_the_retention_said_counts_one_day_as_one(good):
    """A business closing down set every period to 1 day: the staff notice said "1 days,
    unless a recording is held for a dispute", and a rule or a minimum period of 1 day the
    same."""
    from firmware.policy.retention import RetentionRule

    box, people = good
    change_policy(
        box,
        "retention",
        default_days=1,
        rules=(RetentionRule("line 1", days=1, line=1, direction="in"),),
        minimum_days={"complaint": 1},
    )
    notice = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    assert said.startswith(
        "1 day (line 1 incoming calls: 1 day; calls tagged complaint: never less than 1 day), unless"
    ), said
    assert "days" not in said


def test_the_audit_trail_says_a_lawful_basis_changed_in_words(box, people):
    """An installer's change of the lawful basis in Settings was shown to the auditor as the
    code ("Lawful basis: legitimate_interests"), and its clearing as nothing at all: the
    page gives it in the words and article the checklist uses."""
    from .test_admin import settings_form

    for basis, said in (
        ("legitimate_interests", "Lawful basis: legitimate interests (Article 6(1)(f))"),
        ("", "Lawful basis: not recorded"),
    ):
        form = settings_form(box, lawful_basis=basis, lia_date="2026-02-10" if basis else "")
        resp = box.post(people["ivan"], "/settings", form, token_from="/settings")
        assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
        trail = html.unescape(people["audrey"].get("/audit?action=config_change").get_data(as_text=True))
        row = trail.split('<tr class="action-config_change"')[1].split("</tr>")[0]
        text = " ".join(re.sub(r"<[^>]+>", " ", row).split())
        assert said in text.replace("Lawful basis ", "Lawful basis: "), text
        assert "legitimate_interests" not in text


def test_the_retention_said_includes_the_callers_details_period(good):
    """With call_details_days set, the staff notice and the checklist said how long the
    recordings were kept and nothing of the callers' details in the call log, which the
    sweep removed after that period: staff and callers must be told that too."""
    box, people = good
    change_policy(box, "retention", default_days=90, call_details_days=30)
    notice = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    details = (
        "callers&#39; numbers and names in the call log, and the text of notes on their calls, "
        "are removed 30 days after the call (later while its recording is kept or held for a dispute)"
    )
    assert said.startswith("90 days") and said.endswith("; %s." % details), said
    status, text = statuses(people["audrey"])[9]
    assert status == "green" and text.endswith(details), text
    # No recording period: said after "No retention period is set yet", and on the checklist.
    change_policy(box, "retention", default_days=None)
    notice = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    said = re.search(r'<p id="retention">(.*?)</p>', notice).group(1)
    assert said == (
        "No retention period is set yet: recordings are kept until deleted by hand. C%s." % details[1:]
    ), said
    status, text = statuses(people["audrey"])[9]
    assert status == "amber" and text.endswith(details), text
