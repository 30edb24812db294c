"""`linekeeper config export|import`: a whole backup, validated whole, audited; no secrets."""

import dataclasses
import json
import os

import pytest

from firmware.cli import main
from firmware.config import BoxConfig, load_config, save_config
from firmware.policy.settings import PolicySettings
from firmware.storage.audit import AuditLog
from firmware.words import audit_fields
from web.db import WebDb
from web.site import LineSetting, Site, SiteSettings

SITE = SiteSettings(
    "Acme Plumbing Ltd",
    "ZA123456",
    "2027-01-31",
    "To keep a record of orders taken by phone.",
    "uk",
    (LineSetting(1, "Sales", True), LineSetting(2, "Home", False)),
)


def make_box(path, site=SITE, **policy):
    os.makedirs(path)
    config = BoxConfig(
        preroll_ms=1500,
        policy=PolicySettings.from_dict(
            dict(
                {
                    "retention": {
                        "default_days": 365,
                        "minimum_days": {"regulated": 1827},
                        "rules": [{"name": "sales", "line": 1, "days": 90}],
                    }
                },
                **policy,
            )
        ),
    )
    save_config(str(path), config)
    if site is not None:
        db = WebDb(os.path.join(path, "web.db"))
        with db.tx() as conn:
            Site(db).save(conn, site)
        db.close()
    return config


def site_of(path):
    db = WebDb(os.path.join(path, "web.db"))
    try:
        return Site(db).settings()
    finally:
        db.close()


def audit_of(path):
    with AuditLog(os.path.join(path, "audit.db"), os.path.join(path, "audit.head")) as log:
        return log.entries(limit=100, newest_first=False)


def test_export_then_import_restores_config_and_site(tmp_path, capsys):
    config = make_box(tmp_path / "a")
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    doc = json.loads(open(out).read())
    assert doc["config"]["policy"]["retention"]["rules"][0]["name"] == "sales"
    assert doc["site"]["organisation"] == "Acme Plumbing Ltd"
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    os.makedirs(tmp_path / "b")
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert load_config(str(tmp_path / "b")) == config
    assert site_of(tmp_path / "b") == SITE
    # A box with no account yet (a new card for one that died) is told the accounts are not
    # in the file: the wizard makes only the first (docs/recovery.md).
    assert capsys.readouterr().out.splitlines()[-1] == (
        "the file holds no account, and this box has none: the setup wizard makes the first; "
        "add the others on the Users page after setup (docs/recovery.md)"
    )
    (entry,) = audit_of(tmp_path / "b")
    assert (entry.actor, entry.action, entry.target) == ("cli", "config_change", "config")
    assert entry.details["sections"] == ["config", "site"]
    # Which settings it changed, by name (as the web pages' entries say them).
    assert "policy.retention.rules" in entry.details["changed"] and "country" not in entry.details["changed"]


def test_where_the_business_is_travels_with_the_site_settings(tmp_path):
    """The region rides beside the settings (like the DPIA date it is kept apart); an
    English box's export has none, so the release before still imports it."""
    import dataclasses

    make_box(tmp_path / "a")
    out = str(tmp_path / "england.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert "region" not in json.loads(open(out).read())["site"]
    make_box(tmp_path / "b", site=dataclasses.replace(SITE, region="SCT"))
    out = str(tmp_path / "scotland.json")  # (a configuration export never replaces a file)
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert json.loads(open(out).read())["site"]["region"] == "SCT"
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert site_of(tmp_path / "a").region == "SCT"
    # An export without one: England, as every box counted before there was a choice.
    out = str(tmp_path / "without.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "b")]) == 0
    doc = json.loads(open(out).read())
    del doc["site"]["region"]
    open(out, "w").write(json.dumps(doc))
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert site_of(tmp_path / "a").region == "ENG"


GIVEN = dict(
    lawful_basis="legitimate_interests",
    lia_date="2026-01-10",
    dp_contact="Data Protection Officer",
    dp_address="1 High Street\nAnytown",
    dp_email="dpo@acme.example",
    dp_phone="01632 960123",
)


def test_the_lawful_basis_and_data_protection_contact_travel_with_the_site_settings(tmp_path):
    """Carried only when given, so a box without them still exports a file the release
    before imports; a file without them leaves the box's own."""
    import dataclasses

    make_box(tmp_path / "a")
    out = str(tmp_path / "none.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert not set(GIVEN) & set(json.loads(open(out).read())["site"])
    make_box(tmp_path / "b", site=dataclasses.replace(SITE, **GIVEN))
    given = str(tmp_path / "given.json")
    assert main(["config", "export", given, "--data-dir", str(tmp_path / "b")]) == 0
    site = json.loads(open(given).read())["site"]
    assert {k: site[k] for k in GIVEN} == GIVEN
    assert main(["config", "import", given, "--data-dir", str(tmp_path / "a")]) == 0
    assert site_of(tmp_path / "a") == dataclasses.replace(SITE, **GIVEN)
    # A file without them (the release before's, or a box that had none): the box keeps its own.
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert site_of(tmp_path / "a") == dataclasses.replace(SITE, **GIVEN)
    # A file with a group takes the whole group: no e-mail there, none kept here.
    doc = json.loads(open(given).read())
    del doc["site"]["dp_email"], doc["site"]["lawful_basis"], doc["site"]["lia_date"]
    open(given, "w").write(json.dumps(doc))
    assert main(["config", "import", given, "--data-dir", str(tmp_path / "a")]) == 0
    site = site_of(tmp_path / "a")
    assert (site.dp_email, site.dp_phone, site.lawful_basis) == ("", "01632 960123", "legitimate_interests")


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


@pytest.mark.parametrize("fault", ["cut", "full"])
def test_an_import_is_audited_before_anything_is_written(tmp_path, monkeypatch, fault):
    """The import wrote the configuration and the site settings, then audited: a cut
    between left a change of what the box records that no entry showed. The entry now
    comes first; a card that refuses a write part way adds one that says so."""
    import firmware.configio

    make_box(tmp_path / "a")
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    os.makedirs(tmp_path / "b")

    def save_config(*args, **kwargs):
        if fault == "cut":
            raise _Cut()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(firmware.configio, "save_config", save_config)
    if fault == "cut":
        with pytest.raises(_Cut):
            main(["config", "import", out, "--data-dir", str(tmp_path / "b")])
    else:
        assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 2
    entries = audit_of(tmp_path / "b")
    assert entries[0].details["sections"] == ["config", "site"] and entries[0].actor == "cli"
    if fault == "full":
        assert "No space" in entries[1].details["failed"]
    else:
        assert len(entries) == 1


def test_the_export_holds_no_secret(tmp_path):
    from firmware.storage.keystore import Argon2Params, KeyStore

    make_box(tmp_path / "a")
    store = KeyStore(str(tmp_path / "a"), Argon2Params(memory_kib=8, iterations=1))
    recovery = store.initialise("admin", "correct horse battery 7")
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    text = open(out).read()
    assert recovery not in text and "correct horse" not in text
    assert set(json.loads(text)) == {"linekeeper_config", "config", "site", "files"}


BAD = [
    ("not json {", "bad.json:1:1: malformed JSON"),
    (json.dumps([1, 2]), "must be a JSON object"),
    (
        json.dumps({"linekeeper_config": 1, "config": {}, "extra": 1}),
        "extra: unknown section: the file's sections are linekeeper_config, config, site and files",
    ),
    # A box setting of DATA_DIR/config.json (docs/adapters.md) put beside "config", not in it.
    (
        json.dumps({"linekeeper_config": 1, "config": {}, "ring_timeout_ms": 5500}),
        'ring_timeout_ms: is a setting of config.json: put it inside "config" '
        '("config": {..., "ring_timeout_ms": ...}), where `linekeeper config export` writes it',
    ),
    (json.dumps({"linekeeper_config": 2, "config": {}}), "linekeeper_config"),
    (json.dumps({"linekeeper_config": 1, "config": {"preroll_ms": 99999}}), "config.preroll_ms: must be"),
    (
        json.dumps({"linekeeper_config": 1, "config": {"policy": {"retention": {"default_days": 0}}}}),
        "config.policy.retention.default_days: must be",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {"policy": {"retention": {"rules": [{"name": "x", "direction": "sideways"}]}}},
            }
        ),
        "config.policy.retention.rules[0].direction",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), ico_number="12345"),
            }
        ),
        "site.ico_number",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), region="Scotland"),
            }
        ),
        "site.region: Choose where the business is: England, Wales, Scotland, Northern Ireland.",
    ),
    (
        json.dumps(
            {"linekeeper_config": 1, "config": {}, "site": dict(json.loads(SITE.to_json()), region=5)}
        ),
        "site.region: must be one of ENG, WLS, SCT, NIR",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), lawful_basis="vital_interests"),
            }
        ),
        "site.lawful_basis: Choose the lawful basis from the list",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), lawful_basis="legitimate_interests"),
            }
        ),
        "site.lia_date: Enter the date of the legitimate interests assessment",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), lawful_basis="contract", lia_date="2026-01-10"),
            }
        ),
        "site.lia_date: Leave this empty",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), dp_email="dpo at acme"),
            }
        ),
        "site.dp_email: Enter an e-mail address like dpo@example.com",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), dp_phone="reception"),
            }
        ),
        "site.dp_phone: Enter a phone number in digits",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), dp_contact="D\x1bPO"),
            }
        ),
        "site.dp_contact: Remove the control character U+001B",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {},
                "site": dict(json.loads(SITE.to_json()), dp_address=["1 High St"]),
            }
        ),
        "site.dp_address: must be text",
    ),
    (
        json.dumps({"linekeeper_config": 1, "config": {}, "files": {"../../etc/passwd.wav": "AAAA"}}),
        "only announcements/NAME.wav",
    ),
    (
        json.dumps({"linekeeper_config": 1, "config": {}, "files": {"announcements/a.wav": "not base64!"}}),
        "is not base64",
    ),
    (
        json.dumps(
            {
                "linekeeper_config": 1,
                "config": {"policy": {"consent": {"announcement": {"file": "missing.wav"}}}},
            }
        ),
        "config.policy.consent.announcement.file",
    ),
    # Card-payment codes the Rules page refuses: A-D (not on most handsets' keypads), or
    # * or # alone (keyed for much else on a call). The configuration file takes them.
    (
        json.dumps({"linekeeper_config": 1, "config": {"policy": {"pci": {"pause_code": "ABC"}}}}),
        "config.policy.pci.pause_code: the pause code ABC has A, B, C or D, keys most "
        "handsets do not have, so it could not be keyed: use 0-9, * and # only, such as *1 — nothing "
        "was changed",
    ),
    (
        json.dumps({"linekeeper_config": 1, "config": {"policy": {"pci": {"resume_code": "*2D"}}}}),
        "config.policy.pci.resume_code: the resume code *2D has A, B, C or D",
    ),
    (
        json.dumps({"linekeeper_config": 1, "config": {"policy": {"pci": {"pause_code": "#"}}}}),
        "config.policy.pci.pause_code: the pause code cannot be # alone: callers key it for menus and "
        "to end numbers, which would pause the recording by chance. Add a digit, such as #1",
    ),
    (
        json.dumps({"linekeeper_config": 1, "config": {"policy": {"pci": {"resume_code": "#"}}}}),
        "config.policy.pci.resume_code: the resume code cannot be # alone",
    ),
]


def whole(text):
    """A bad file's text with its ``config`` completed to an export's (every section
    there), so that only the fault it was written for is in it."""

    def merged(base, over):
        if not (isinstance(base, dict) and isinstance(over, dict)):
            return over
        return {**base, **{k: merged(base.get(k), v) for k, v in over.items()}}

    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict) and isinstance(doc.get("config"), dict):
        doc["config"] = merged(BoxConfig().to_dict(), doc["config"])
    return json.dumps(doc)


PARTIAL = [
    # A hand-cut or truncated export: every left-out section would be the defaults
    # (consent notice off, rules and retention reset), and the audit said nothing of it.
    (json.dumps({"linekeeper_config": 1, "config": {"version": 1}}), "config.country: is missing"),
    (
        json.dumps({"linekeeper_config": 1, "config": dict(BoxConfig().to_dict(), policy={"version": 1})}),
        "config.policy.rules: is missing",
    ),
    # A HAT the box cannot load: accepted, and the recorder then would not start.
    (json.dumps({"linekeeper_config": 1, "config": dict(BoxConfig().to_dict(), hat="lk-8x")}), "config.hat"),
]


@pytest.mark.parametrize("text,message", BAD + PARTIAL)
def test_a_bad_file_changes_nothing_and_names_the_field(tmp_path, capsys, text, message):
    box = tmp_path / "box"
    make_box(box)
    before = {name: open(box / name, "rb").read() for name in ("config.json",)}
    before_site = site_of(box)
    bad = tmp_path / "bad.json"
    bad.write_text(text if (text, message) in PARTIAL else whole(text))
    assert main(["config", "import", str(bad), "--data-dir", str(box)]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was changed" in err, err
    assert {name: open(box / name, "rb").read() for name in before} == before
    assert site_of(box) == before_site
    assert audit_of(box) == []
    assert not os.path.exists(box / "announcements")


def test_an_uploaded_announcement_travels_with_the_configuration(tmp_path):
    import base64

    from firmware.policy.announcement import store_announcement

    from support.web import wav_bytes

    make_box(tmp_path / "a", consent={"inbound": "announcement", "announcement": {"file": "hello.wav"}})
    store_announcement(str(tmp_path / "a"), "hello.wav", wav_bytes(2.0))
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    doc = json.loads(open(out).read())
    assert list(doc["files"]) == ["announcements/hello.wav"]
    os.makedirs(tmp_path / "b")
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert (
        open(tmp_path / "b" / "announcements" / "hello.wav", "rb").read()
        == open(tmp_path / "a" / "announcements" / "hello.wav", "rb").read()
    )
    # A lying WAV in the file is refused like an upload, and nothing is written.
    doc["files"]["announcements/hello.wav"] = base64.b64encode(wav_bytes(2.0)[:-100]).decode()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    os.makedirs(tmp_path / "c")
    assert main(["config", "import", str(bad), "--data-dir", str(tmp_path / "c")]) == 2
    assert os.listdir(tmp_path / "c") == []


class _Vault:
    """A key vault as the HAT's MCU has one (its storage key)."""

    def __init__(self):
        self.key = os.urandom(32)

    def read_key(self, name):
        assert name == "storage"
        return self.key


def test_sealed_number_rules_are_exported_open_and_a_sealed_file_is_refused(tmp_path, monkeypatch, capsys):
    from firmware.storage.fieldseal import load_field_cipher

    rules = {"rules": {"numbers": [{"name": "mobile", "action": "exclude", "patterns": ["07700 900123"]}]}}
    config = make_box(tmp_path / "a", **rules)
    run = str(tmp_path / "run")
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", run)
    cipher = load_field_cipher(str(tmp_path / "a"), vault=_Vault(), run_dir=run)
    save_config(str(tmp_path / "a"), config, cipher)
    assert b"07700 900123" not in (tmp_path / "a" / "config.json").read_bytes()
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    doc = json.loads(open(out).read())
    assert doc["config"]["policy"]["rules"]["numbers"][0]["patterns"] == ["07700 900123"]
    # Imported on the same box: sealed again with its key.
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert b"07700 900123" not in (tmp_path / "a" / "config.json").read_bytes()
    assert load_config(str(tmp_path / "a"), cipher) == config
    # The same rules, sealed on the box: not a change (they were compared sealed).
    with AuditLog(str(tmp_path / "a" / "audit.db"), str(tmp_path / "a" / "audit.head"), cipher=cipher) as log:
        entry = log.entries(limit=1, action="config_change")[0]
    assert entry.details["changed"] == [], entry.details
    # A sealed pattern on the box that no longer opens: importing the backup mends it.
    path = tmp_path / "a" / "config.json"
    text = path.read_text()
    i = text.index("lkp1:") + 10
    path.write_text(text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :])
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "a")]) == 0
    assert load_config(str(tmp_path / "a"), cipher) == config
    # A file carrying the box's sealed text is refused, and nothing changes.
    sealed = cipher.seal("07700 900123", "rules.pattern")
    doc["config"]["policy"]["rules"]["numbers"][0]["patterns"] = [sealed]
    with open(out, "w") as f:
        json.dump(doc, f)
    os.makedirs(tmp_path / "b")
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "patterns[0]" in err and "sealed" in err and "nothing was changed" in err
    assert not os.path.exists(tmp_path / "b" / "config.json")
    # Without the key (the card in another machine) the export says why, in one line.
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(tmp_path / "elsewhere"))
    assert main(["config", "export", str(tmp_path / "x.json"), "--data-dir", str(tmp_path / "a")]) == 2
    assert "MCU vault" in capsys.readouterr().err


# 2026-12-06 14:31:05 UTC: when the update's step on trial began.
TRIAL_AT_US = 1796567465 * 10**6


def _update_at(box, step):
    """The update inbox's progress note as the updater leaves it at ``step``."""
    folder = box / "update-inbox"
    os.makedirs(folder, exist_ok=True)
    note = {"step": step, "at_us": TRIAL_AT_US, "version": "2.0.0", "previous_version": "1.9.0"}
    (folder / "progress.json").write_text(json.dumps(note))


@pytest.mark.parametrize(
    "rules,field",
    [
        ({"personal": {"dtmf_code": "*7", "lines": None}}, "config.policy.rules.personal.dtmf_code"),
        (
            {"lines": [{"line": 1, "mode": "always"}, {"line": 2, "mode": "always", "outside_line": "9"}]},
            "config.policy.rules.lines[1].outside_line",
        ),
    ],
    ids=["personal", "outside_line"],
)
def test_while_an_update_is_on_trial_an_import_that_sets_what_the_release_before_refuses_changes_nothing(
    tmp_path, capsys, rules, field
):
    box = tmp_path / "box"
    make_box(box)
    _update_at(box, "health")
    before = open(box / "config.json", "rb").read()
    doc = {"linekeeper_config": 1, "config": BoxConfig().to_dict()}
    doc["config"]["policy"]["rules"].update(rules)
    path = tmp_path / "import.json"
    path.write_text(json.dumps(doc, indent=2))
    assert main(["config", "import", str(path), "--data-dir", str(box)]) == 2
    err = capsys.readouterr().err
    assert field in err and "nothing was changed" in err, err
    assert (
        "the update to version 2.0.0 installed on Sun 6 Dec 2026, 14:31:05 GMT is still on trial: set "
        "this once it is marked good, or a rollback to version 1.9.0 would stop the recorder" in err
    ), err
    assert open(box / "config.json", "rb").read() == before and audit_of(box) == []
    # Once it is marked good, the same file is imported.
    _update_at(box, "mark_good")
    assert main(["config", "import", str(path), "--data-dir", str(box)]) == 0
    assert load_config(str(box)).policy.rules.newly_set_for_release_before(BoxConfig().policy.rules)


def test_an_import_with_a_card_payment_code_the_rules_page_refuses_says_so(tmp_path, capsys):
    """The configuration file takes every DTMF key (a box set so before loads as it was),
    but a resume code of digits alone ends a pause when a caller keys those digits in a
    card number or its security code: the import is made, and says which code the Rules
    page would refuse and why, so the installer can set another."""
    make_box(tmp_path / "a", pci={"pause_code": "*1", "resume_code": "7"})
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    os.makedirs(tmp_path / "b")
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert load_config(str(tmp_path / "b")).policy.pci.resume_code == "7"
    said = capsys.readouterr().out
    assert (
        "policy.pci.resume_code: The resume code 7 does not start with * or #: a caller keying "
        "a card number or its security code while the recording is paused may key those digits, "
        "which would resume the recording in the middle of the card details. Start it with * or "
        "#, such as *7. The box uses it as it is; the Rules page refuses it until it is changed."
    ) in said
    # Codes the page takes: nothing said of them.
    make_box(tmp_path / "c")
    out = str(tmp_path / "backup-c.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "c")]) == 0
    os.makedirs(tmp_path / "d")
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "d")]) == 0
    assert "policy.pci" not in capsys.readouterr().out


def test_an_import_that_changes_the_card_payment_settings_audits_what_they_became(tmp_path):
    """The Rules page's entry says each card-payment setting as it became (an assessor
    reads that masking was turned off); an import's said only their names
    (``policy.pci.mask_dtmf``), so the trail could not show whether masking was on or off.
    The codes, the switches and the time hold no caller's data: an import says them too."""
    make_box(tmp_path / "a", pci={"pause_code": "*1", "resume_code": "*5", "mask_dtmf": False})
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    make_box(tmp_path / "b")
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    (entry,) = [e for e in audit_of(tmp_path / "b") if e.action == "config_change"]
    assert "policy.pci.mask_dtmf" in entry.details["changed"]
    assert entry.details["card_payments"] == {"mask_dtmf": False, "resume_code": "*5"}
    # In the Rules page's words on the audit page (it said "Mask dtmf: no").
    said = dict(audit_fields(entry.details, entry.action))["Card payments (PCI DSS)"]
    assert "Keys pressed after the answer cut out of the recording (DTMF masking): no" in said
    # An import that leaves them as they are says nothing of them.
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    last = [e for e in audit_of(tmp_path / "b") if e.action == "config_change"][-1]
    assert "card_payments" not in last.details


def test_an_import_is_used_at_once_by_the_running_recorder(tmp_path, synth, capsys):
    """The Rules page's changes apply at once (the web UI has the recorder read config.json
    again); an import said the running box used it only after a restart, and an assessor
    read on the Rules page settings the recorder was not using. The import has the recorder
    read it again too, and says so; with no recorder answering, it says the box uses it
    when it starts."""
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from firmware.control import ControlServer, recorder_handlers, socket_path

    make_box(tmp_path / "a", pci={"pause_code": "*1", "resume_code": "*5", "mask_dtmf": False})
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    data = str(tmp_path / "b")
    make_box(tmp_path / "b")
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}
    box = open_sim_box(loads_scenario(json.dumps(doc)), data, synth=synth)
    server = ControlServer(socket_path(data), recorder_handlers(box))
    server.start()
    try:
        assert box.config.policy.pci.mask_dtmf is True
        capsys.readouterr()
        assert main(["config", "import", out, "--data-dir", data]) == 0
        said = capsys.readouterr().out
        assert "the running box uses it now" in said and "after a restart" not in said
        assert box.config.policy.pci.mask_dtmf is False
        assert box.config.policy.pci.resume_code == "*5"
    finally:
        server.stop()
        box.stop()
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", data]) == 0
    assert "no recorder answers on the box: it uses it when it starts" in capsys.readouterr().out


def test_lines_not_connected_travel_with_the_configuration_and_reach_the_site_settings(tmp_path):
    """The configuration carries them (``not_connected``, only where there is one: the
    release before imports the rest); the site settings take them from it, or the
    Settings page would show such a line as private and its next save connect it again."""
    import dataclasses

    make_box(tmp_path / "a", site=dataclasses.replace(SITE, not_connected=(2,)))
    save_config(str(tmp_path / "a"), load_config(str(tmp_path / "a")).replace(not_connected=[2]))
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    doc = json.loads(open(out).read())
    assert doc["config"]["not_connected"] == [2] and "not_connected" not in doc["site"]
    make_box(tmp_path / "b")
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert load_config(str(tmp_path / "b")).not_connected == [2]
    assert site_of(tmp_path / "b").not_connected == (2,)


def test_an_import_with_business_hours_on_and_none_set_says_which_lines_record_nothing(tmp_path, capsys):
    """The Rules page refuses business hours on with no day given any while a line records
    by the rules; the file takes it (a box set so loads as it was), and the import said
    nothing while those lines went on recording no call at all."""
    lines = [{"line": 2, "mode": "by_rule"}, {"line": 1, "mode": "always"}]
    rules = {"default_mode": "by_rule", "lines": lines}
    make_box(tmp_path / "a", rules=dict(rules, hours={"timezone": "Europe/London", "days": {}}))
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    os.makedirs(tmp_path / "b")
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert (
        "policy.rules.hours: business hours are on and no day has any, so line 2 and lines added "
        "later, set to record by the rules, record no call at all. Set the hours, or turn them off "
        "(null), or choose another mode; the Rules page refuses it until it is changed."
    ) in capsys.readouterr().out
    # A day with hours: nothing said.
    make_box(tmp_path / "c", rules=dict(rules, hours={"days": {"mon": ["09:00-17:00"]}}))
    out = str(tmp_path / "backup-c.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "b")]) == 0
    assert "policy.rules.hours: business hours" not in capsys.readouterr().out


def test_an_import_audits_the_site_settings_it_changes_too(tmp_path):
    """A second box set up with lines named for the branch, given the first box's file: its
    entry names the site settings it changes (the lines' names), not only config.json's;
    it said ``changed: []`` when the import renamed every line."""
    import dataclasses

    make_box(tmp_path / "first")
    out = str(tmp_path / "first.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "first")]) == 0
    lines = (LineSetting(1, "Leeds sales", True), LineSetting(2, "Home", False))
    branch = dataclasses.replace(SITE, lines=lines)
    make_box(tmp_path / "branch", site=branch)
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    assert site_of(tmp_path / "branch").lines[0].name == "Sales"
    (entry,) = audit_of(tmp_path / "branch")
    assert entry.details["changed"] == ["site.lines"], entry.details
    # The same file again: nothing changes, and the entry says so.
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    assert audit_of(tmp_path / "branch")[-1].details["changed"] == []


@pytest.mark.parametrize("theirs", ["lk-4l", None])
def test_a_file_for_another_hat_changes_nothing_and_says_which(tmp_path, capsys, theirs):
    """The first box's file on a second box with another HAT (or a file without one, which
    would put the box on the simulated board): refused, naming both, nothing changed."""
    first = tmp_path / "first"
    make_box(first)
    save_config(str(first), load_config(str(first)).replace(hat=theirs))
    out = str(tmp_path / "first.json")
    assert main(["config", "export", out, "--data-dir", str(first)]) == 0
    branch = tmp_path / "branch"
    make_box(branch)
    save_config(str(branch), load_config(str(branch)).replace(hat="lk-2lb", preroll_ms=500))
    before = open(branch / "config.json").read()
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(branch)]) != 0
    err = capsys.readouterr().err
    assert "config.hat: this box's HAT is 'lk-2lb' and the file's is " in err, err
    assert 'set "hat": "lk-2lb" in the file\'s "config"' in err and "nothing was changed" in err, err
    assert open(branch / "config.json").read() == before and audit_of(branch) == []
    # The same HAT (or a box with none configured yet): taken.
    doc = json.loads(open(out).read())
    doc["config"]["hat"] = "lk-2lb"
    open(out, "w").write(json.dumps(doc))
    assert main(["config", "import", out, "--data-dir", str(branch)]) == 0
    assert load_config(str(branch)).preroll_ms == 1500


def test_an_import_says_which_settings_it_changed(tmp_path, capsys):
    """The installer of a second box sees what the first box's file replaced of this box's
    own (here its lines' names and its country), as the audit entry names them."""
    import dataclasses

    make_box(tmp_path / "first")
    out = str(tmp_path / "first.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "first")]) == 0
    lines = (LineSetting(1, "Leeds sales", True), LineSetting(2, "Home", False))
    make_box(tmp_path / "branch", site=dataclasses.replace(SITE, lines=lines))
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    assert "\nit changed: site.lines\n" in capsys.readouterr().out
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    assert "\nit changed no setting: the box's were already the file's\n" in capsys.readouterr().out


def test_an_import_that_sets_the_archive_box_id_says_it_must_be_this_box_own(tmp_path, capsys):
    """The first box's file turns the archive on under its box_id: on a second box (or a
    new card) the archive would refuse every call, found only once calls failed. The import
    says so, naming the box_id and what to do; not when the box's own is kept."""
    import base64

    from firmware.archive.settings import ArchiveSettings

    first = tmp_path / "first"
    make_box(first)
    archive = ArchiveSettings(
        enabled=True,
        endpoint="https://s3.eu-west-2.amazonaws.com",
        region="eu-west-2",
        bucket="acme-calls",
        box_id="leeds-1",
        access_key_id="AKIAEXAMPLE",
        org_public_key=base64.b64encode(bytes(32)).decode(),
    )
    save_config(str(first), load_config(str(first)).replace(archive=archive))
    out = str(tmp_path / "first.json")
    assert main(["config", "export", out, "--data-dir", str(first)]) == 0
    make_box(tmp_path / "branch")
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    assert (
        "\nthe box archives under box_id leeds-1 now (it was none): if that is another box's or an "
        "earlier card's, give this box one of its own"
    ) in capsys.readouterr().out
    # The box's own file put back: its box_id is its own, and nothing is said of it.
    assert main(["config", "import", out, "--data-dir", str(first)]) == 0
    assert "box_id" not in capsys.readouterr().out


def test_an_export_is_audited_with_where_it_went_never_the_numbers(tmp_path, monkeypatch, capsys):
    """The export opens the sealed number rules' patterns (staff's or callers' numbers) and
    writes them in clear to a file, and no entry showed it. Its entry now says who, where
    to, which sections and how many patterns, never the patterns; a card that cannot take
    the entry (read-only, full) still gives its settings up, and stderr says so."""
    import firmware.box

    rules = {"rules": {"numbers": [{"name": "mobile", "action": "exclude", "patterns": ["07700 900123"]}]}}
    make_box(tmp_path / "a", **rules)
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 0
    (entry,) = audit_of(tmp_path / "a")
    assert (entry.actor, entry.action, entry.target) == ("cli", "config_export", "config")
    assert entry.details == {"via": "cli", "file": out, "sections": ["config", "site"], "number_patterns": 1}
    assert "07700" not in json.dumps(audit_fields(entry.details, entry.action))

    def refused(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(firmware.box, "open_audit", refused)
    again = str(tmp_path / "again.json")
    assert main(["config", "export", again, "--data-dir", str(tmp_path / "a")]) == 0
    written = json.loads(open(again).read())["config"]["policy"]["rules"]["numbers"][0]
    assert written["patterns"] == ["07700 900123"]
    err = capsys.readouterr().err
    assert "not audited" in err and "Read-only file system" in err


def test_a_file_with_more_lines_than_the_box_changes_nothing_and_says_which(tmp_path, capsys):
    """A 4-line box's file imported onto a 2-line box was taken without a word, and its site
    settings then listed lines 3 and 4, which the box does not have. Refused now, naming
    both counts and the lines to take out, nothing changed; then each other place that
    names such a line (a rule, not connected) is refused the same way."""
    four = tuple(LineSetting(n, "Line %d" % n, True) for n in range(1, 5))
    first = tmp_path / "first"
    make_box(
        first, site=dataclasses.replace(SITE, lines=four), rules={"lines": [{"line": 4, "mode": "never"}]}
    )
    save_config(str(first), load_config(str(first)).replace(hat="lk-4l"))
    out = str(tmp_path / "first.json")
    assert main(["config", "export", out, "--data-dir", str(first)]) == 0
    doc = json.loads(open(out).read())
    doc["config"]["hat"] = "lk-2lb"  # as a file for another HAT is told to
    open(out, "w").write(json.dumps(doc))
    branch = tmp_path / "branch"
    make_box(branch)
    save_config(str(branch), load_config(str(branch)).replace(hat="lk-2lb", preroll_ms=500))
    before = open(branch / "config.json").read()
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(branch)]) == 2
    err = capsys.readouterr().err
    assert "site.lines: the file has 4 lines, and this box has 2 (its HAT 'lk-2lb')" in err, err
    assert "take lines 3, 4 out of the file" in err and "nothing was changed" in err, err
    assert open(branch / "config.json").read() == before and site_of(branch) == SITE
    assert audit_of(branch) == []
    # The site's lines taken out: the rule for line 4 is refused the same way.
    doc["site"]["lines"] = doc["site"]["lines"][:2]
    open(out, "w").write(json.dumps(doc))
    assert main(["config", "import", out, "--data-dir", str(branch)]) == 2
    err = capsys.readouterr().err
    assert "config.policy.rules.lines[0].line: the file has a rule for line 4, and this box has 2" in err, err
    assert open(branch / "config.json").read() == before and audit_of(branch) == []
    doc["config"]["policy"]["rules"]["lines"] = []
    open(out, "w").write(json.dumps(doc))
    assert main(["config", "import", out, "--data-dir", str(branch)]) == 0
    assert load_config(str(branch)).preroll_ms == 1500 and len(site_of(branch).lines) == 2


def test_an_import_from_another_country_says_what_that_changes(tmp_path, capsys):
    """A US box's file on a UK box was taken without a word: from then the box listened
    for US tones and read Bell 202 caller ID on UK lines, so it heard no caller's number.
    The import says the country changed, from what to what, what that changes and what
    to do; not when the country stays."""
    first = tmp_path / "first"
    make_box(first)
    save_config(str(first), load_config(str(first)).replace(country="us"))
    out = str(tmp_path / "first.json")
    assert main(["config", "export", out, "--data-dir", str(first)]) == 0
    make_box(tmp_path / "branch")
    capsys.readouterr()
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    said = capsys.readouterr().out
    assert (
        "the telephony country is now United States (us), not United Kingdom (uk): the box listens "
        "for that country's tones and ring cadence, reads caller ID as Bell 202 or DTMF (it read "
        "V.23 or DTMF)" in said
    ), said
    assert 'on United Kingdom lines, set "country": "uk" in the file\'s "config" and import it again' in said
    assert load_config(str(tmp_path / "branch")).country == "us"
    # The same file again: the country stays, nothing said of it.
    assert main(["config", "import", out, "--data-dir", str(tmp_path / "branch")]) == 0
    assert "telephony country" not in capsys.readouterr().out


def test_an_export_that_cannot_be_written_is_audited_as_failed(tmp_path, monkeypatch, capsys):
    """The entry comes before the file: a write the card or the disk refuses adds an
    entry that says so, and the command says why, in one line."""
    import firmware.storage.fsutil

    make_box(tmp_path / "a")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(firmware.storage.fsutil, "write_new", full)
    out = str(tmp_path / "backup.json")
    assert main(["config", "export", out, "--data-dir", str(tmp_path / "a")]) == 2
    assert "cannot write %s: No space left on device" % out in capsys.readouterr().err
    made, failed = audit_of(tmp_path / "a")
    assert (made.action, failed.action) == ("config_export", "config_export")
    assert failed.details["failed"] == "[Errno 28] No space left on device" and not os.path.exists(out)
