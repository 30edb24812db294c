"""The first-run wizard: setup code, every bad field, atomic completion, recovery key."""

import html
import os
import re

import pytest

from firmware.storage.keystore import format_recovery_key
from firmware.words import say
from telephony import countries
from web.setupcode import check_setup_code, setup_code_for

from support.countries import ZEDLAND

# What a line whose choice is missing or none of the three is told.
CHOOSE = "Choose whether line %d is recorded, private, or not connected (nothing is plugged into its socket)."


def post_setup(box, client, **over):
    form = box.setup_form(**over)
    form["csrf_token"] = box.token_of(client, "/setup")
    return client.post("/setup", data=form)


def nothing_saved(box):
    assert not box.web.site.setup_complete
    assert box.web.site.settings() is None
    assert box.web.accounts.count() == 0
    assert not box.services.keystore.is_initialised
    assert box.audit_actions() == []


def test_setup_code_is_random_per_box_and_stable_until_used(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    code = setup_code_for(a)
    assert re.fullmatch(r"([A-HJKMNP-Z2-9]{4}-){3}[A-HJKMNP-Z2-9]{4}", code)
    assert setup_code_for(a) == code
    assert setup_code_for(b) != code
    assert oct(os.stat(a / "setup-code").st_mode & 0o777) == "0o600"
    assert check_setup_code(a, code.lower().replace("-", " "))
    assert not check_setup_code(a, setup_code_for(b))


BAD_FIELDS = [
    ({"setup_code": "AAAA-BBBB-CCCC-DDDD"}, "setup_code", "not this box's setup code"),
    ({"organisation": ""}, "organisation", "Enter the name"),
    ({"country": "fr"}, "country", "Choose the country"),
    ({"ico_number": "12345678"}, "ico_number", "8 characters starting with Z"),
    ({"ico_number": "ZA12345"}, "ico_number", "8 characters starting with Z"),
    ({"ico_renewal": "31/01/2027"}, "ico_renewal", 'The renewal date "31/01/2027" is not a date'),
    ({"ico_renewal": "2001-01-01"}, "ico_renewal", "2018 or later"),
    ({"purpose": ""}, "purpose", "Say why calls are recorded"),
    ({"line-2-name": ""}, "line-2-name", "Give line 2 a name"),
    ({"line-3-mode": "sometimes"}, "line-3-mode", "recorded, private, or not connected"),
    ({"admin_name": "Bad Name!"}, "admin_name", "lowercase letters"),
    ({"admin_password": "short", "admin_confirm": "short"}, "admin_password", "at least 12"),
    ({"admin_password": "1qaz2wsx3edc", "admin_confirm": "1qaz2wsx3edc"}, "admin_password", "commonly used"),
    (
        {"admin_password": "Alice_Alice_1", "admin_confirm": "Alice_Alice_1", "admin_name": "alice_alice"},
        "admin_password",
        "must not be made from the user name",
    ),
    ({"admin_confirm": "something else 7"}, "admin_confirm", "differ"),
]


@pytest.mark.parametrize("over, field, message", BAD_FIELDS, ids=[f for _, f, _ in BAD_FIELDS])
def test_each_bad_field_is_named_and_nothing_is_saved(box, over, field, message):
    client = box.client()
    resp = post_setup(box, client, **over)
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400
    assert 'id="error-%s"' % field in page
    assert message in page
    assert "Nothing was saved" in page
    # The other fields keep what was typed (passwords excepted).
    assert "Acme Plumbing Ltd" in page or field == "organisation"
    nothing_saved(box)


def test_no_line_is_recorded_until_the_installer_chooses(box):
    """Every line's "Recording" came chosen as "Record calls": an installer who went past
    the table left a private line (a manager's own phone) recorded from the first call."""
    client = box.client()
    page = html.unescape(client.get("/setup").get_data(as_text=True))
    for n in range(1, box.LINES + 1):
        select = re.search(r'<select id="line-%d-mode"[^>]*>(.*?)</select>' % n, page, re.S)
        assert "required" in select.group(0) and '<option value="" selected>Choose…</option>' in select.group(
            1
        )
        assert re.findall(r'value="(\w*)" selected', select.group(1)) == [""]
    assert "private: never recorded (a phone for private calls" in page
    resp = post_setup(box, client, **{"line-3-mode": ""})
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400
    error = re.search(r'id="error-line-3-mode"[^>]*>([^<]+)<', page).group(1)
    assert error == (
        "Choose whether line 3 is recorded, private, or not connected (nothing is plugged into its socket)."
    )
    # Still to choose on the page sent back; the lines chosen keep their choice.
    assert (
        '<option value="" selected>Choose…</option>'
        in page.split('id="line-3-mode"')[1].split("</select>")[0]
    )
    assert 'value="record" selected' in page.split('id="line-2-mode"')[1].split("</select>")[0]
    nothing_saved(box)


def test_several_bad_fields_at_once(box):
    resp = post_setup(box, box.client(), organisation="", purpose="", ico_number="nope")
    page = resp.get_data(as_text=True)
    for field in ("organisation", "purpose", "ico_number"):
        assert 'id="error-%s"' % field in page
    assert "3 fields" in page
    nothing_saved(box)


def test_outside_the_uk_no_ico_number_is_needed(box):
    client = box.client()
    resp = post_setup(box, client, country="us", ico_number="", ico_renewal="")
    assert resp.status_code == 302
    assert box.web.site.settings().ico_number == ""


def test_setup_completes_atomically_and_shows_the_recovery_key_once(box):
    client = box.client()
    resp = post_setup(box, client, **{"line-4-mode": "private", "line-4-name": "Directors"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/setup/recovery"
    site = box.web.site.settings()
    assert site.organisation == "Acme Plumbing Ltd" and site.ico_number == "ZA123456"
    assert site.line(4).name == "Directors" and not site.line(4).record
    alice = box.web.accounts.get("alice")
    assert alice.roles == {"installer", "supervisor"} and alice.lines == (1, 2, 3, 4)
    assert box.services.keystore.slots() == ["alice"]
    # Every line's key made with the keys, not at its first recording: the backup the
    # recovery page asks for next holds them all (one without a line's key opens none
    # of its recordings once put back).
    assert sorted(box.services.keystore.line_public_keys()) == [1, 2, 3, 4]
    assert setup_code_for(box.data_dir) is None
    assert not os.path.exists(os.path.join(box.data_dir, "setup-code"))
    # The staff notice's first words, kept as the wizard saved them (in effect from then).
    # And its installer logged in, as any login is audited: the Users page counts this
    # first session ("Last login: never" while it ran).
    assert box.audit_actions() == ["init", "login", "staff_notice"]
    notice, login = box.services.audit.entries(limit=2)
    assert (login.actor, login.details["recording_key"], login.details["setup"]) == ("alice", True, True)
    assert say("detail", "setup") == "By the setup wizard"  # the trail's label, not "Setup"
    assert (notice.actor, notice.details["saved"]) == ("alice", True)  # the installer it makes
    assert notice.details["notice"]["lines"][3]["name"] == "Directors"
    assert notice.details["notice"]["purpose"] == "To keep a record of orders taken by phone."
    # Until the recovery key is confirmed, every page leads back to it.
    assert client.get("/").headers["Location"] == "/setup/recovery"
    page = client.get("/setup/recovery").get_data(as_text=True)
    key = re.search(r'id="recovery-key">([^<]+)<', page).group(1)
    box.services.keystore.unlock_recovery(key).forget()
    # The recovery sheet carries the HTTPS certificate's fingerprint.
    assert 'id="sheet-cert-fingerprint">%s<' % box.services.cert_fingerprint in page
    token = box.token_of(client, "/setup/recovery")
    # Only the whole key confirms it: its last group (mostly checksum) is not enough, nor
    # another well-formed key, nor one group mistyped.
    other = format_recovery_key(bytes(16))
    groups = key.split("-")
    typo = "-".join(groups[:3] + [groups[3][::-1] if groups[3] != groups[3][::-1] else "AAAA"] + groups[4:])
    for wrong, says in (
        (groups[-1], "not the recovery key as shown: a recovery key has 32 letters"),
        (other, "not this recovery key"),
        (typo, "not"),
    ):
        resp = client.post("/setup/recovery", data={"csrf_token": token, "typed_key": wrong})
        assert resp.status_code == 400, wrong
        assert says in resp.get_data(as_text=True)
        assert not box.web.site.recovery_confirmed
        # What was typed stays in the field, to mend the group that is wrong ("check every
        # group"): it came back empty, all 8 groups to type again.
        kept = re.search(r'<input id="typed_key"[^>]* value="([^"]*)"', resp.get_data(as_text=True))
        assert kept and kept.group(1) == wrong
    resp = client.post(
        "/setup/recovery", data={"csrf_token": token, "typed_key": " " + key.lower().replace("-", " ") + " "}
    )
    assert resp.status_code == 302
    assert box.web.site.recovery_confirmed
    # Shown once: the page is gone, the key is nowhere on disk.
    assert client.get("/setup/recovery").headers["Location"] == "/settings"
    for root, _, files in os.walk(box.data_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert key.encode() not in f.read(), name
    # And the wizard is gone for good.
    assert client.get("/setup").status_code == 404
    assert box.client().post("/setup", data=box.setup_form()).status_code == 404


def test_a_refused_key_store_leaves_nothing_behind(box):
    box.services.keystore.initialise("someone", "an earlier init password 7")
    resp = post_setup(box, box.client())
    assert resp.status_code == 400
    said = html.unescape(resp.get_data(as_text=True))
    assert "made with `linekeeper init` or put back from a key store backup" in said
    # Keys put back from a backup (a card whose web.db was lost too) are named as such:
    # it said only init made them, which no one who restored a backup had run.
    assert "`linekeeper keystore restore`" in said and "an account the box had when it was made" in said
    assert box.web.accounts.count() == 0 and not box.web.site.setup_complete
    # With the account `linekeeper init` made, setup goes through (no new recovery key).
    client = box.client()
    resp = post_setup(
        box,
        client,
        admin_name="someone",
        admin_password="an earlier init password 7",
        admin_confirm="an earlier init password 7",
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert box.web.site.recovery_confirmed


def test_the_wizard_says_it_makes_one_account_and_the_others_are_added_after(box):
    """A technician setting up a new card after one died reads here that only this account is
    made: the others (a configuration export holds none) are entered again on the Users page."""
    page = html.unescape(box.client().get("/setup").get_data(as_text=True))
    said = page.split('id="setup-one-account">')[1].split("</p>")[0]
    assert "makes this one account only" in said and "on the Users page" in said
    assert "a configuration export holds no accounts" in said


def test_keys_made_before_the_password_rules_still_set_the_box_up_then_the_password_changes(box):
    """`linekeeper init` on an older release took 8 characters: after the update the wizard
    refused that password (under 12), and took no other (it must open the keys' slot), so the
    box could never be set up. It is taken, as the login takes one from before the rules, and
    must be changed before anything else (PCI DSS 8.3.6)."""
    old = "eight ch"
    box.services.keystore.initialise("someone", old)
    # Not the slot's password: the rule it breaks is said, as for any new password.
    short = {"admin_name": "someone", "admin_password": "short 1", "admin_confirm": "short 1"}
    resp = post_setup(box, box.client(), **short)
    assert resp.status_code == 400 and "at least 12 characters" in resp.get_data(as_text=True)
    assert box.web.accounts.count() == 0 and not box.web.site.setup_complete
    client = box.client()
    resp = post_setup(box, client, admin_name="someone", admin_password=old, admin_confirm=old)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert box.web.site.setup_complete and box.web.accounts.get("someone").must_change == "rules"
    assert client.get("/").headers["Location"] == "/account/password?next=/"


def test_wrong_setup_codes_are_throttled(box):
    client = box.client()
    for _ in range(5):
        assert post_setup(box, client, setup_code="AAAA-AAAA-AAAA-AAAA").status_code == 400
    resp = post_setup(box, client)
    assert resp.status_code == 429
    nothing_saved(box)


def test_lost_recovery_page_means_a_new_key_from_settings(box):
    client = box.client()
    post_setup(box, client)
    box.clock.advance(16 * 60)  # the session times out unconfirmed
    admin = box.login("alice")
    page = admin.get("/").get_data(as_text=True)
    assert "recovery key was never confirmed" in page
    resp = box.post(admin, "/settings/recovery-key", token_from="/settings")
    assert resp.headers["Location"] == "/setup/recovery"
    page = admin.get("/setup/recovery").get_data(as_text=True)
    key = re.search(r'id="recovery-key">([^<]+)<', page).group(1)
    box.post(admin, "/setup/recovery", {"typed_key": key}, token_from="/setup/recovery")
    assert box.web.site.recovery_confirmed
    box.services.keystore.unlock_recovery(key).forget()


def test_setup_turns_the_consent_notice_on_and_audits_it(tmp_path):
    """A box set up through the wizard tells callers: the announcement and the outbound beep."""
    import json

    from firmware.config import load_config
    from firmware.storage.audit import AuditLog
    from web.services import BoxConfigStore, notice_defaults_applier

    store = BoxConfigStore(str(tmp_path))
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    apply = notice_defaults_applier(store, audit, lambda: 1_772_442_000_000_000)
    apply()
    consent = load_config(str(tmp_path)).policy.consent
    assert (consent.inbound, consent.outbound) == ("announcement", "tone")
    assert [e.action for e in audit.entries()] == ["config_change"]
    # A configuration that already gives a notice is left as it is.
    config = json.loads((tmp_path / "config.json").read_text())
    config["policy"]["consent"]["inbound"] = "tone"
    config["policy"]["consent"]["outbound"] = "off"
    (tmp_path / "config.json").write_text(json.dumps(config))
    apply()
    consent = load_config(str(tmp_path)).policy.consent
    assert (consent.inbound, consent.outbound) == ("tone", "off")
    assert len(audit.entries()) == 1


def test_a_country_added_to_the_table_is_offered_and_accepted(box, monkeypatch):
    monkeypatch.setitem(countries.COUNTRIES, "zz", ZEDLAND)
    client = box.client()
    page = client.get("/setup").get_data(as_text=True)
    assert '<option value="zz">Zedland</option>' in page
    resp = post_setup(box, client, country="zz", ico_number="", ico_renewal="")
    assert resp.status_code == 302
    assert box.web.site.settings().country == "zz"
    admin = box.login("alice")
    page = admin.get("/settings").get_data(as_text=True)
    assert '<option value="zz" selected>Zedland</option>' in page


def test_a_try_cut_after_the_keys_were_made_shows_a_new_recovery_key_next_time(box, monkeypatch):
    """The key store is written just before web.db's transaction commits. A try that
    the card cut between them (web.db refused) left keys whose recovery key nobody saw:
    the next try, with the same account, finishes setup and shows a new recovery key,
    which must be typed back; the unseen one opens nothing."""
    import sqlite3

    keystore = box.services.keystore
    real = keystore.initialise
    unseen = []

    def initialise_then_refused(name, password):
        unseen.append(real(name, password))
        raise sqlite3.OperationalError("disk I/O error")  # web.db's commit, refused

    monkeypatch.setattr(keystore, "initialise", initialise_then_refused)
    refused = post_setup(box, box.client())  # the card's refusal said (web/unreadable.py)
    assert refused.status_code == 503 and "disk I/O error" in refused.get_data(as_text=True)
    monkeypatch.undo()
    assert keystore.is_initialised and not box.web.site.setup_complete and box.web.accounts.count() == 0

    # Another account is refused, saying why the keys are there.
    resp = post_setup(
        box,
        box.client(),
        admin_name="bob",
        admin_password="bobs own long password 7",
        admin_confirm="bobs own long password 7",
    )
    assert resp.status_code == 400 and "earlier try of this page" in resp.get_data(as_text=True)
    client = box.client()
    resp = post_setup(box, client)
    assert resp.status_code == 302 and resp.headers["Location"] == "/setup/recovery"
    assert box.web.site.setup_complete and not box.web.site.recovery_confirmed
    page = client.get("/setup/recovery").get_data(as_text=True)
    key = re.search(r'id="recovery-key">([^<]+)<', page).group(1)
    keystore.unlock_recovery(key).forget()
    from firmware.errors import KeyStoreError

    with pytest.raises(KeyStoreError):
        keystore.unlock_recovery(unseen[0])
    assert box.audit_actions() == ["init", "key_slot_add", "login", "staff_notice"]


def test_the_new_recovery_key_of_a_second_try_is_audited_before_it_is_made(box, monkeypatch):
    """A second try after keys whose recovery key nobody saw replaces that key. A cut
    just before the new slot is written leaves its entry, and the box asking for a
    recovery key to be confirmed, never a new key that no entry shows."""
    import sqlite3

    keystore = box.services.keystore
    real = keystore.initialise

    def initialise_then_refused(name, password):
        real(name, password)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(keystore, "initialise", initialise_then_refused)
    refused = post_setup(box, box.client())  # the card's refusal said (web/unreadable.py)
    assert refused.status_code == 503 and "disk I/O error" in refused.get_data(as_text=True)
    monkeypatch.undo()
    before = keystore.slot_fingerprint(None, "recovery")

    def cut(*args, **kwargs):
        raise OSError(5, "cut before the slot")

    monkeypatch.setattr(keystore, "new_recovery_key", cut)
    refused = post_setup(box, box.client())
    assert refused.status_code == 503 and "an I/O error" in refused.get_data(as_text=True)
    monkeypatch.undo()
    assert box.audit_actions() == ["init", "key_slot_add"]
    assert box.web.site.setup_complete and not box.web.site.recovery_confirmed
    assert before is not None and keystore.slot_fingerprint(None, "recovery") == before  # the old slot


def test_a_line_left_at_choose_is_refused_by_the_box_not_only_the_browser(box):
    """The browser's "required" check is not the box's: a form sent without it (a script,
    an old browser, the check turned off) with every line left at "Choose…", or with a
    line's choice missing altogether, is refused by the box, each line named, nothing saved."""
    client = box.client()
    every = {"line-%d-mode" % n: "" for n in range(1, box.LINES + 1)}
    page = html.unescape(post_setup(box, client, **every).get_data(as_text=True))
    for n in range(1, box.LINES + 1):
        said = re.search(r'id="error-line-%d-mode"[^>]*>([^<]+)<' % n, page)
        assert said and said.group(1) == CHOOSE % n, n
    form = box.setup_form()
    del form["line-2-mode"]
    form["csrf_token"] = box.token_of(client, "/setup")
    resp = client.post("/setup", data=form)
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400
    assert re.search(r'id="error-line-2-mode"[^>]*>([^<]+)<', page).group(1) == CHOOSE % 2
    nothing_saved(box)


def test_the_wizard_starts_from_a_configuration_imported_before_setup(box, tmp_path):
    """An installer setting up a second box imports the first box's file, then opens the
    wizard: it showed every field empty and its save put the blanks over the import."""
    import json

    from firmware.cli import main
    from firmware.config import BoxConfig

    doc = {
        "linekeeper_config": 1,
        "config": BoxConfig().to_dict(),
        "site": {
            "organisation": "Acme Ltd",
            "ico_number": "ZA123456",
            "ico_renewal": "2027-03-01",
            "purpose": "To keep a record of orders taken by phone.",
            "country": "uk",
            "lines": [
                {"line": 1, "name": "Sales", "record": True},
                {"line": 2, "name": "Home", "record": False},
            ],
            "time_zone": "Europe/London",
        },
        "files": {},
    }
    path = tmp_path / "first.json"
    path.write_text(json.dumps(doc))
    assert main(["config", "import", str(path), "--data-dir", box.data_dir]) == 0
    page = html.unescape(box.client().get("/setup").get_data(as_text=True))
    assert 'id="setup-imported"' in page
    assert 'id="organisation" name="organisation" maxlength="200" required value="Acme Ltd"' in page
    assert (
        'id="line-1-name" name="line-1-name" maxlength="40" aria-label="Name of line 1" value="Sales"' in page
    )
    assert 'value="record" selected' in page.split('id="line-1-mode"')[1].split("</select>")[0]
    assert 'value="private" selected' in page.split('id="line-2-mode"')[1].split("</select>")[0]
    # A line the file did not have is still the installer's to choose.
    assert (
        '<option value="" selected>Choose…</option>'
        in page.split('id="line-3-mode"')[1].split("</select>")[0]
    )
