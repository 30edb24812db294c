"""The cover letter of a subject access bundle: what the person is owed, in plain words and local time."""

from firmware.sarletter import LetterFacts, letter_text

FACTS = LetterFacts(
    organisation="Acme Plumbing Ltd",
    ico_number="ZA123456",
    purpose="To keep a record of orders taken by phone.",
    retention="90 days",
    line_names={1: "Shop", 2: "Office"},
)


def call(call_id, **over):
    c = {
        "id": call_id,
        "line": 1,
        "direction": "in",
        "started_at": "2026-07-02T09:00:01.000Z",
        "answered": True,
        "duration_s": 6.0,
        "number": "01632960123",
        "absence": None,
        "recording": "complete",
        "recording_duration_s": 6.9,
        "pause_spans": [],
    }
    c.update(over)
    return c


def letter(calls, files, **kw):
    request = {"search": {"number": "01632 960123"}}
    text = letter_text(calls, files, kw.pop("facts", FACTS), request, 1_783_000_000_000_000, **kw)
    assert "\r\n" in text  # Notepad and every other editor show the lines
    return text.replace("\r\n", "\n")


def test_the_letter_says_what_article_15_asks():
    """The bundle was JSON and WAVs: nothing told the person who holds their data, why,
    for how long, who sees it, where it came from, their rights or the ICO."""
    text = letter([call(1)], {"recordings/call-1.wav", "calls.json"})
    for words in (
        "Acme Plumbing Ltd",
        "ZA123456",
        "To keep a record of orders taken by phone.",
        "90 days",
        "WHO MAY SEE IT",
        "where it came from".upper(),
        "the phone network gave",
        "to erase these recordings",
        "ico.org.uk/make-a-complaint",
        "No decision about you is made automatically",
        "01632 960123",
    ):
        assert words in text, words
    files = text.split("THE FILES")[1]
    for name in ("README.txt", "recordings/", "calls.json", "manifest.json", "SHA256SUMS"):
        assert name in files
    assert "notes-and-names.json" not in files  # not in this bundle


def test_each_call_in_uk_time_with_its_zone_and_what_became_of_its_recording():
    calls = [
        call(1, pause_spans=[{"from": "2026-07-02T09:00:03.000Z", "to": "2026-07-02T09:00:05.000Z"}]),
        call(
            2,
            line=2,
            recording="deleted",
            recording_duration_s=None,
            recording_deleted={"at": "2026-12-01T10:00:00.000Z", "reason": "erasure"},
        ),
        call(
            3,
            recording="deleted",
            recording_deleted={"at": "2026-10-01T10:00:00.000Z", "reason": "retention"},
        ),
        call(4, number=None, absence="private", direction="in", recording=None),
        call(5, direction="out", answered=False, recording=None),
    ]
    text = letter(calls, {"recordings/call-1.wav"}, redacted=[(1, 1.0, 2.5)])
    assert "in UK time (GMT in winter, BST in summer)" in text
    assert "Call 1: Thu 2 Jul 2026, 10:00:01 BST" in text and "T09:" not in text
    one = text.split("Call 1:")[1].split("Call 2:")[0]
    assert "recordings/call-1.wav" in one and "on Shop" in one
    assert "paused (as for card details) from Thu 2 Jul 2026, 10:00:03 BST to" in one
    assert "Silenced before release" in one and "1 to 2.5" in one
    assert "erased on request on Tue 1 Dec 2026, 10:00:00 GMT" in text
    assert "deleted when its keeping period ended on Thu 1 Oct 2026, 11:00:00 BST" in text
    assert "A call to Acme Plumbing Ltd from a withheld number" in text
    five = text.split("Call 5:")[1]
    assert "A call from Acme Plumbing Ltd to 01632960123" in five and "not answered" in five
    assert "none: this call was not recorded" in five


def test_an_archived_copy_erased_on_request_is_said_erased_as_the_pages_say_it():
    """Where the deletion log holds only the archive's erasure of its copy, the calls list
    and the Subject access page say "Erased on request"; the letter said "deleted"."""
    gone = {"at": "2026-12-01T10:00:00.000Z", "reason": "archive", "rule": "erasure request"}
    text = letter([call(1, recording="deleted", recording_deleted=gone)], set())
    assert "none any more: erased on request on Tue 1 Dec 2026, 10:00:00 GMT" in text
    kept_too_long = dict(gone, rule="default")  # the archive's own retention: deleted
    text = letter([call(1, recording="deleted", recording_deleted=kept_too_long)], set())
    assert "none any more: deleted on Tue 1 Dec 2026" in text


def test_a_box_without_settings_still_writes_a_letter():
    text = letter([call(1)], {"recordings/call-1.wav"}, facts=None)
    assert "the business" in text and "has not stated its purpose" in text
    assert "kept until they are deleted by hand" in text


def test_the_command_lines_letter_names_the_archive_when_the_box_has_one(tmp_path):
    """``linekeeper sar``'s letter says, as the web UI's does, that the recordings are also
    in the organisation's archive: the person is owed every place their data is kept."""
    import base64

    from firmware import cli
    from firmware.archive.settings import ArchiveSettings
    from firmware.config import BoxConfig
    from firmware.storage import crypto

    archive = ArchiveSettings(
        enabled=True,
        endpoint="https://s3.example.com",
        bucket="calls",
        box_id="shop",
        access_key_id="AKIA",
        org_public_key=base64.b64encode(crypto.new_key_pair()[1]).decode(),
    )
    assert cli._letter_facts(str(tmp_path), BoxConfig(archive=archive)).archived
    assert not cli._letter_facts(str(tmp_path), BoxConfig()).archived


def test_the_letter_gives_the_lawful_basis_and_who_to_write_to():
    """It said it gave no postal or e-mail address and no lawful basis: the box kept neither."""
    import dataclasses

    facts = dataclasses.replace(
        FACTS,
        lawful_basis="legitimate_interests",
        dp_contact="Data Protection Officer",
        dp_address="1 High Street\nAnytown\nAB1 2CD",
        dp_email="dpo@acme.example",
        dp_phone="01632 960123",
    )
    text = letter([call(1)], {"recordings/call-1.wav"}, facts=facts)
    why = text.split("WHY CALLS ARE RECORDED\n")[1].split("\n\n")[0]
    assert why == (
        "To keep a record of orders taken by phone.\n"
        "The lawful basis for recording them: legitimate interests (Article 6(1)(f) of the UK GDPR). "
        "The interest pursued is the purpose above."
    )
    assert (
        "write to Data Protection Officer, Acme Plumbing Ltd:\n"
        "  1 High Street\n  Anytown\n  AB1 2CD\n  E-mail: dpo@acme.example\n  Phone: 01632 960123\n"
        "If you are not happy" in text
    )
    text = letter(
        [call(1)], {"recordings/call-1.wav"}, facts=dataclasses.replace(facts, lawful_basis="contract")
    )
    assert "a contract with the person (Article 6(1)(b) of the UK GDPR)." in text
    assert "interest pursued" not in text


def test_a_letter_without_them_says_so_rather_than_leaving_them_out():
    text = letter([call(1)], {"recordings/call-1.wav"})
    assert "has not recorded its lawful basis for recording on the recording box: ask them." in text
    assert "reply to whoever sent you this: the business has not given an address" in text


def test_the_businesss_own_lines_end_as_the_letters_do():
    """The purpose is typed in several lines. Kept with bare line feeds (or a lone carriage
    return, or a Unicode line separator) it went into the letter as typed, between lines
    ended \\r\\n: Notepad before 2018 showed the purpose as one run-on line, and a lone \\r
    overwrote it on a terminal."""
    import dataclasses
    import re

    purpose = "To keep a record of orders.\nTo train staff.\rTo settle disputes.\u2028And no more."
    text = letter_text(
        [call(1)],
        {"calls.json"},
        dataclasses.replace(FACTS, purpose=purpose),
        {"search": {"number": "01632 960123"}},
        1_783_000_000_000_000,
    )
    assert not re.search(r"\r(?!\n)|(?<!\r)\n|\u2028", text)
    lines = text.split("\r\n")
    for said in ("To keep a record of orders.", "To train staff.", "To settle disputes.", "And no more."):
        assert said in lines


def test_a_search_by_line_says_the_line_and_the_days_it_covers():
    """A staff member's own calls, found by line (no number): the letter said "the calls
    listed below", not which line and days the copy covers."""
    search = {"number": "", "lines": [1], "from": "2026-07-01", "to": "2026-07-03"}
    text = letter_text([call(1)], {"calls.json"}, FACTS, {"search": search}, 1_783_000_000_000_000)
    assert "personal data kept about the calls on line 1 (Shop) from Wed 1 Jul 2026 to Fri 3 Jul 2026" in text
    assert "phone number" not in text.split("WHO KEEPS IT")[0]
    one_day = dict(search, lines=[1, 2], to="", from_time="09:00", calls=[1])
    text = letter_text([call(1)], {"calls.json"}, FACTS, {"search": one_day}, 1_783_000_000_000_000)
    assert (
        "the calls listed below, of the calls on line 1 (Shop) and line 2 (Office) from "
        "Wed 1 Jul 2026 at 09:00 to Wed 1 Jul 2026" in text
    )
