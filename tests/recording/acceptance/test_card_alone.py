"""Issue 16 acceptance: a card that is useless alone.

A box whose HAT has the supervisor MCU (simulated, its key vault in its own
flash) takes calls with caller-ID names and numbers and dials out; people
log in from an address and put a call on legal hold with a reason. The data
directory is then copied as someone walking off with the SD card would have
it: without the MCU, and without the RAM run directory where the recorder
leaves its keys. Every byte of every file is scanned for each caller number,
name, address and reason - raw, hex, base64 (at each of the three
alignments) and UTF-16 - and none is found. The box itself still shows them
all (``linekeeper calls``, number and name searches, the audit trail).

The stores beyond the call log and audit trail are planted too, through the
code the web UI uses: a phonebook entry and a note on the call (web.db), a
recording rule that names a number (config.json), and an alarm mail waiting
in the queue with the caller's number and name in it. None of them is found
on the card either, while the box still uses them all: the rule skips the
call from its number, the phonebook names the caller, the note reads back,
the mail goes out as it was written. The web UI's HTTPS key (made as the web UI
makes it at its start) is on the card only encrypted: no file holds it in clear,
in PEM or DER or its private value alone, while the box still serves with it.

Then the card holder rewrites the audit trail and re-chains it (hashes, head,
even the key record and every signature, under a key of their own): the box
says so at ``verify``.
"""

import base64
import dataclasses
import json
import os
import shutil
import sqlite3
import types
from email.message import EmailMessage

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.alarmlog import UNOPENED, AlarmLog
from firmware.archive.queue import read_secret, write_secret
from firmware.calls.callsearch import CallFilter, CallSearch
from firmware.clock import SimClock
from firmware.errors import TamperError
from firmware.mail.settings import PASSWORD_FIELD, MailSettings, MailSettingsStore
from firmware.policy.rules import NumberList
from firmware.reports.source import ReportSource
from firmware.sar import find_calls
from firmware.secretbox import PREFIX, VAULT_PREFIX, SecretBox, board_identity
from firmware.signing import Signer
from firmware.storage.audit import SIG_TAG, entry_hash, head_message
from firmware.storage.fieldseal import FieldSealError, LazyFieldCipher, load_field_cipher
from firmware.storage.sealstores import NOTE as NOTE_FIELD
from web.db import WebDb
from web.phonebook import CallNotes, Phonebook
from web.server import tls_context
from web.services import BoxConfigStore
from web.throttle import Throttle, account_keys
from web.tls import ensure_certificate

from support.cardscan import clear_private_keys
from support.cardscan import env as _env
from support.cardscan import scan as scan_for

CALLER = {"number": "01632960777", "name": "PRIYA HARGREAVES"}
DIALLED = "01632960456"
ADDRESS = "203.0.113.77"
REASON = "Complaint from Mrs Okonkwo-Baptiste about her gas bill"
BOOK_NAME = "Hargreaves Plumbing of Little Wexcombe"
NOTE = "Caller says the boiler at 14 Larch Way leaks again"
RULE_NUMBER = "07700 900123"  # a private mobile: never recorded
CONCERN_NAME = "Ottoline Brackenbury"  # in a concern staff raised (the alarm history)
MAIL_PASSWORD = "smtp-Pa55word-for-the-box"  # sealed in mail.json
ARCHIVE_SECRET = "s3-secret-access-key-0123456789"  # sealed in archive.secret
MAIL_SUBJECT = "Call from %s (%s) went unrecorded" % (CALLER["name"], CALLER["number"])
SECRETS = [
    CALLER["number"],
    CALLER["name"],
    DIALLED,
    ADDRESS,
    REASON,
    BOOK_NAME,
    NOTE,
    RULE_NUMBER,
    RULE_NUMBER.replace(" ", ""),
    CONCERN_NAME,
    MAIL_PASSWORD,
    ARCHIVE_SECRET,
]

CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "in",
        "rings": 2,
        "caller_id": dict(CALLER),
        "talk": 4.0,
        "speech": "Glue the sheet to the dark blue background.",
    },
    {
        "line": 2,
        "at": 0.5,
        "direction": "out",
        "dial": {"digits": DIALLED, "delay": 0.2},
        "talk": 4.0,
        "speech": "The birch canoe slid on the smooth planks.",
    },
    {  # the rule's number: the rule, sealed on the card, still skips it
        "line": 1,
        "at": 12.0,
        "direction": "in",
        "rings": 2,
        "caller_id": {"number": RULE_NUMBER.replace(" ", "")},
        "talk": 2.0,
    },
]


def plant_web_stores(box):
    """Before the calls: a rule naming a number (saved as the rules page saves it),
    a phonebook entry, a note and a failed login's throttle count (web.db, as the
    pages write them) and a mail in the queue, each through the box's field
    cipher (None: an older firmware)."""
    store = BoxConfigStore(box.data_dir, box.apply_config, box.cipher)
    config = store.get()
    rules = dataclasses.replace(
        config.policy.rules,
        default_mode="by_rule",
        numbers=(NumberList("private mobile", "exclude", (RULE_NUMBER,)),),
    )
    store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    db = WebDb(os.path.join(box.data_dir, "web.db"))
    try:
        Phonebook(db, box.clock.wall_us, box.cipher).put(CALLER["number"], BOOK_NAME, "uk")
        CallNotes(db, box.clock.wall_us, box.cipher).add(1, NOTE, "sam")
        # A mistyped password from the address people log in from (the login throttle).
        Throttle(db, box.clock.wall_us, box.cipher).failed(account_keys("admin", ADDRESS))
    finally:
        db.close()
    # A concern a colleague raised, naming a caller (alarms.db, as the web UI keeps it).
    alarms = AlarmLog(os.path.join(box.data_dir, "alarms.db"), box.clock, None, box.cipher)
    try:
        alarms.set("staff_concern", True, message="from sam: %s asked not to be recorded" % CONCERN_NAME)
    finally:
        alarms.close()
    msg = EmailMessage()
    msg["Subject"] = MAIL_SUBJECT
    msg["From"] = "box@example.org"
    msg["To"] = "office@example.org"
    msg.set_content("%s\n%s: %s\n" % (MAIL_SUBJECT, BOOK_NAME, NOTE))
    box.mail.queue.enqueue(msg)
    ensure_certificate(box.data_dir, ["localhost"], [])  # the web UI's, as at its start
    # The e-mail password and the archive's secret, as Settings and `archive set-secret`
    # save them in this process (the recorder's: it has the storage key).
    box.mail.store.save(MailSettings(username="box"), new_password=MAIL_PASSWORD)
    write_secret(box.data_dir, ARCHIVE_SECRET, box.mail.store.secrets)


def web_key(data_dir):
    """The web UI's HTTPS key, as the box opens it (its secrets.key and board)."""
    from cryptography.hazmat.primitives import serialization

    certificate = ensure_certificate(data_dir, ["localhost"], [])
    with open(certificate.key_path, "rb") as f:
        return certificate, serialization.load_pem_private_key(f.read(), certificate.password)


@pytest.fixture(scope="module")
def box_and_card(module_lab, tmp_path_factory):
    """The box's run (its MCU and run directory) and a copy of the card taken after it."""
    lab = module_lab
    mcu = SimMcu(SimClock())
    run_dir = str(tmp_path_factory.mktemp("run"))
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    scenario = lab.load(lab.scenario_doc(CALLS, lines=2, hat="lk-2lb"))

    def people(box):
        def act():
            wall = box.clock.wall_at(box.clock.now_us())
            box.audit.append("admin", "login", "admin", {"address": ADDRESS}, wall)
            box.audit.append("admin", "legal_hold", "call:1", {"reason": REASON, "on": True}, wall)

        box.clock.call_at(3_000_000, act)
        plant_web_stores(box)

    with _env("LINEKEEPER_RUN_DIR", run_dir):
        lab.run(scenario, data_dir, vault=McuLink(mcu.bus), before_start=people)
    card = str(lab.tmp_path / "card")
    shutil.copytree(data_dir, card)
    return lab, mcu, run_dir, data_dir, card


def test_the_card_alone_holds_no_number_name_address_or_reason(box_and_card):
    lab, mcu, run_dir, data_dir, card = box_and_card
    assert os.path.commonpath([run_dir, card]) != card  # the run directory is not on the card
    assert scan_for(card, SECRETS) == []
    # The scan is real: the same secrets in clear are found.
    probe = os.path.join(os.path.dirname(card), "probe")
    os.makedirs(probe, exist_ok=True)
    for i, secret in enumerate(SECRETS):
        with open(os.path.join(probe, "p%d" % i), "wb") as f:
            f.write(b"x" * i + base64.b64encode(b"{" * i + secret.encode()) + b"y")
    assert sorted(s for _, s in scan_for(probe, SECRETS)) == sorted(SECRETS)
    # Nor the web UI's HTTPS key in clear (it was tls/key.pem): the box still serves with it.
    assert clear_private_keys(card) == []
    certificate, key = web_key(data_dir)
    assert os.path.exists(os.path.join(card, os.path.relpath(certificate.key_path, data_dir)))
    assert clear_private_keys(card, [key]) == []
    tls_context(certificate)
    with open(os.path.join(probe, "key.pem"), "wb") as f:
        f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    assert clear_private_keys(probe, [key]) == ["key.pem"]


def test_the_card_alone_does_not_open_the_mail_password_even_with_the_board_serial(box_and_card):
    """The e-mail password and the archive's secret are sealed with the vault's storage
    key as well as secrets.key and the board's identity: the card with this very board's
    identity (the serial a search would find) and no vault opens neither, not even by
    trying the key without the storage key, while the box opens both."""
    lab, mcu, run_dir, data_dir, card = box_and_card
    with open(os.path.join(card, "mail.json"), encoding="utf-8") as f:
        sealed = json.load(f)["password"]
    with open(os.path.join(card, "archive.secret"), encoding="utf-8") as f:
        archive_sealed = f.read().strip()
    assert sealed.startswith(VAULT_PREFIX) and archive_sealed.startswith(VAULT_PREFIX)
    thief = SecretBox(card, identity=board_identity(), cipher=LazyFieldCipher(card, None))
    with pytest.raises(FieldSealError, match="MCU vault"):
        MailSettingsStore(card, thief).password(MailSettingsStore(card, thief).get())
    with pytest.raises(FieldSealError):
        thief.open("archive.secret", archive_sealed)
    # The key of secrets.key and the serial alone (what an older card's values open with).
    for name, value in ((PASSWORD_FIELD, sealed), ("archive.secret", archive_sealed)):
        with pytest.raises(TamperError):
            thief.open(name, PREFIX + value[len(VAULT_PREFIX) :])
    box = SecretBox(data_dir, identity=board_identity(), cipher=LazyFieldCipher(data_dir, run_dir))
    store = MailSettingsStore(data_dir, box)
    assert store.password(store.get()) == MAIL_PASSWORD
    assert read_secret(data_dir, box) == ARCHIVE_SECRET


def test_the_box_still_shows_and_finds_them(box_and_card):
    lab, mcu, run_dir, data_dir, card = box_and_card
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        calls = lab.calls(data_dir)
        cipher = load_field_cipher(data_dir, run_dir=run_dir, create=False)
    shown = {(c["direction"], c["number"], c["name"]) for c in calls}
    assert ("in", CALLER["number"], CALLER["name"]) in shown
    assert any(c["direction"] == "out" and c["number"] == DIALLED for c in calls)
    search = CallSearch(os.path.join(data_dir, "calls.db"), cipher)
    try:
        for flt in (
            CallFilter(number="0163296077"),  # prefix
            CallFilter(number="960777", number_match="contains"),
            CallFilter(name="hargreaves"),
        ):
            found, _ = search.search(flt)
            assert [c["name"] for c in found] == [CALLER["name"]], flt
            assert search.count(flt) == (1, True)
        assert [c["number"] for c in search.search(CallFilter(number="0163296045"))[0]] == [DIALLED]
    finally:
        search.close()
    # A subject access request by the caller's number, in another form, finds the call.
    (found,) = find_calls(os.path.join(data_dir, "calls.db"), number="+44 1632 960777", cipher=cipher)
    assert (found["number"], found["name"]) == (CALLER["number"], CALLER["name"])
    # Reports count over the opened values (the audit's sealed details too).
    source = ReportSource(data_dir, cipher=cipher)
    report = source.report(source.period("2026-03-02", "2026-03-02"))
    # (two answered in: the caller, and the rule's number, answered and not recorded)
    assert report["box"]["answered_in"] == 2 and report["box"]["connected_out"] == 1
    # Without the key a process sees that it cannot read them, not sealed text.
    status, _, err = lab.cli("calls", "--data-dir", card, "--password-file", lab.password_file())
    assert status == 2 and "MCU vault" in err, err


def test_the_box_still_uses_the_phonebook_notes_rules_and_mail(box_and_card):
    from firmware.config import load_config
    from firmware.mail.queue import MailQueue

    lab, mcu, run_dir, data_dir, card = box_and_card
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        calls = lab.calls(data_dir)
        cipher = load_field_cipher(data_dir, run_dir=run_dir, create=False)
    # The rule, sealed in config.json, matched its number: that call was not recorded,
    # and its reason names the rule, not the number.
    (ruled,) = [c for c in calls if c["number"] == RULE_NUMBER.replace(" ", "")]
    assert ruled["policy_decision"] == "skip" and ruled["recording"] is None
    assert ruled["policy_reason"] == 'number excluded by rule "private mobile"'
    assert [c["policy_decision"] for c in calls if c["number"] == CALLER["number"]] == ["record"]
    assert load_config(data_dir, cipher).policy.rules.numbers[0].patterns == (RULE_NUMBER,)
    # The phonebook finds the caller by number (in another form) and by name; the note reads back.
    db = WebDb(os.path.join(data_dir, "web.db"))
    try:
        book = Phonebook(db, lambda: 0, cipher)
        assert book.names_for(["+44 1632 960777"], "uk") == {"+44 1632 960777": BOOK_NAME}
        assert "+441632960777" in book.numbers_named("wexcombe", "uk")
        assert [n["note"] for n in CallNotes(db, lambda: 0, cipher).of_call(1)] == [NOTE]
        (stored,) = db.one("SELECT note FROM call_notes")
        assert cipher.open(stored, NOTE_FIELD) == NOTE
    finally:
        db.close()
    # The queued mail goes out as it was written.
    queue = MailQueue(os.path.join(data_dir, "mail", "queue"), lambda: 1 << 62, cipher)
    assert [m["subject"] for m in queue.pending()] == [MAIL_SUBJECT]
    sent = []

    class Sender:
        def send(self, message):
            sent.append(message)

    assert queue.flush(Sender()) == (1, 0)
    assert sent[0]["Subject"] == MAIL_SUBJECT and NOTE in sent[0].get_content()
    # The concern reads back on the box, and not without its key.
    for key, says in ((cipher, "from sam: %s asked not to be recorded" % CONCERN_NAME), (None, UNOPENED)):
        alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), None, None, key)
        try:
            assert [r["message"] for r in alarms.history() if r["kind"] == "staff_concern"] == [says]
        finally:
            alarms.close()


def test_the_box_reads_its_audit_trail_and_the_card_alone_cannot(box_and_card):
    from firmware.box import open_audit
    from firmware.storage.fieldseal import FieldSealError

    lab, mcu, run_dir, data_dir, card = box_and_card
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        with open_audit(data_dir) as audit:
            details = {e.action: e.details for e in audit.entries(limit=1000)}
    assert details["login"] == {"address": ADDRESS}
    assert details["legal_hold"]["reason"] == REASON
    with pytest.raises(FieldSealError, match="MCU vault"):
        open_audit(card)


def rechain(card, signer=None):
    """Rewrite the legal hold's reason and re-chain the trail and its head; with
    ``signer``, also put its key on record and sign every entry and the head."""
    db = sqlite3.connect(os.path.join(card, "audit.db"), isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    rows = db.execute(
        "SELECT seq, wall_us, actor, action, target, details FROM audit ORDER BY seq"
    ).fetchall()
    prev = "00" * 32
    for seq, wall_us, actor, action, target, details_json in rows:
        details = json.loads(details_json)
        if action == "legal_hold":
            details = {"reason": "none given", "on": True}  # the card holder's version
        digest = entry_hash(prev, seq, wall_us, actor, action, target, details)
        db.execute(
            "UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (json.dumps(details, sort_keys=True, separators=(",", ":")), prev, digest, seq),
        )
        if signer is not None:
            sig = signer.sign(SIG_TAG + bytes.fromhex(digest)).hex()
            db.execute("INSERT OR REPLACE INTO audit_sig (seq, sig) VALUES (?, ?)", (seq, sig))
        prev = digest
    db.close()
    head = {"seq": rows[-1][0], "hash": prev}
    if signer is not None:
        head["sig"] = signer.sign(head_message(head["seq"], prev)).hex()
        with open(os.path.join(card, "signing.pub"), "w") as f:
            json.dump(
                {
                    "version": 1,
                    "algorithm": "ed25519",
                    "source": "vault",
                    "public_key": base64.b64encode(signer.public_key).decode(),
                    "fingerprint": signer.fingerprint,
                },
                f,
            )
    with open(os.path.join(card, "audit.head"), "w") as f:
        f.write(json.dumps(head, sort_keys=True, separators=(",", ":")) + "\n")


@pytest.mark.parametrize("own_key", [False, True], ids=["rechained", "rechained-and-resigned"])
def test_an_audit_trail_rewritten_on_the_card_alone_fails_verify_on_the_box(box_and_card, tmp_path, own_key):
    lab, mcu, run_dir, data_dir, card = box_and_card
    tampered = str(tmp_path / "tampered")
    shutil.copytree(card, tampered)
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        status, out, err = lab.verify(tampered)
        assert status == 0, out + err  # the untouched copy is intact
        rechain(tampered, Signer(os.urandom(32), "vault") if own_key else None)
        status, out, err = lab.verify(tampered)
    assert status == 1, out + err
    if own_key:
        assert "not this box's" in out, out
    else:
        assert "signature does not match" in out, out


def test_an_older_card_in_clear_is_sealed_at_the_next_start(module_lab, tmp_path, monkeypatch):
    """The migration: a call log written before sealing began (a box without the vault)
    is sealed in place when the box first starts with the vault, nothing in clear is
    left in calls.db, and ``verify`` still passes (the old recordings' headers keep
    their clear numbers: they are the chunks' associated data and cannot change).

    The same start seals the phonebook and notes in web.db, the rule's number in
    config.json, a staff concern in alarms.db and the waiting mail, and drops the
    rule's pattern from the policy reason an older firmware wrote into the call log."""
    import firmware.box

    lab = module_lab
    data_dir = lab.init_data_dir(tmp_path / "old")
    scenario = lab.load(lab.scenario_doc(CALLS, lines=2, hat="lk-2lb"))
    mcu = SimMcu(SimClock())
    with monkeypatch.context() as old_firmware:  # signs with the vault's key, seals nothing
        old_firmware.setattr(firmware.box, "load_field_cipher", lambda *args, **kwargs: None)
        with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "old-boot")):
            lab.run(scenario, data_dir, vault=McuLink(mcu.bus), before_start=plant_web_stores)
    # The reason as the older firmware wrote it: with the pattern that matched.
    calls_db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    calls_db.execute(
        "UPDATE calls SET policy_reason = ? WHERE policy_reason = ?",
        (
            'number %s excluded by rule "private mobile"' % RULE_NUMBER,
            'number excluded by rule "private mobile"',
        ),
    )
    calls_db.commit()
    calls_db.close()
    # The scan finds every planted store in clear: it can fail.
    found = {(f.split(os.sep)[0].split("-")[0], s) for f, s in scan_for(data_dir, SECRETS)}
    assert {
        ("calls.db", CALLER["name"]),
        ("calls.db", RULE_NUMBER),
        ("web.db", BOOK_NAME),
        ("web.db", NOTE),
        ("web.db", ADDRESS),
        ("config.json", RULE_NUMBER),
        ("mail", CALLER["number"]),
        ("mail", CALLER["name"]),
        ("alarms.db", CONCERN_NAME),
    } <= found, found
    run_dir = str(tmp_path / "run")
    sealed = []
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        quiet = lab.load(lab.scenario_doc([], lines=2, hat="lk-2lb"))
        box_run = lab.run(
            quiet,
            data_dir,
            vault=McuLink(mcu.bus),
            before_start=lambda box: sealed.append((box.sealed_at_start, box.sealed_stores_at_start)),
        )
        calls = lab.calls(data_dir)
        assert lab.verify(data_dir)[0] == 0
    assert box_run is not None
    # web.db: the phonebook entry, the note, and the failed login's five throttle counts
    # (the account from that address, the address, the account from anywhere, its lockouts
    # from that address and from anywhere).
    assert sealed == [(3, {"web_db": 7, "config_patterns": 1, "call_reasons": 1, "alarms": 1, "mail": 1})]
    assert {(c["number"], c["name"]) for c in calls} == {
        (CALLER["number"], CALLER["name"]),
        (DIALLED, None),
        (RULE_NUMBER.replace(" ", ""), None),
    }
    # Left in clear only where nothing may change: the old recordings' headers and
    # the audit entries written before (docs/card-alone.md).
    left = [(f, s) for f, s in scan_for(data_dir, SECRETS) if not f.startswith(("recordings", "audit.db"))]
    assert left == []
    # The next start reads the rule sealed from config.json, opens it, and it still applies.
    again = dict(CALLS[2], at=0.5)
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        lab.run(lab.load(lab.scenario_doc([again], lines=2, hat="lk-2lb")), data_dir, vault=McuLink(mcu.bus))
        calls = lab.calls(data_dir)
    ruled = [c for c in calls if c["number"] == RULE_NUMBER.replace(" ", "")]
    assert [c["policy_decision"] for c in ruled] == ["skip", "skip"], ruled
    assert [(f, s) for f, s in scan_for(data_dir, SECRETS) if f == "config.json"] == []


@pytest.fixture
def schema_0_release(tmp_path, monkeypatch):
    """What the firmware of before the sealed stores does, played by this one
    (``schema_0_release(patch)``): no migrations (data schema 0); the call log and
    audit trail sealed with the vault's key, but web.db, config.json and the mail queue
    neither sealed nor opened; and its rules check, which knew no sealed pattern."""
    import functools

    import firmware.box
    import firmware.mail.queue
    import firmware.policy.rules
    from firmware.migrations import bring_up_to_date

    package = tmp_path / "schema0_release"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def play(patch):
        patch.setattr(
            firmware.box, "bring_up_to_date", functools.partial(bring_up_to_date, package=package.name)
        )
        patch.setattr(firmware.box, "seal_clear_stores", lambda *args, **kwargs: {})
        patch.setattr(firmware.box, "seal_mail_queue", lambda queue: 0)
        patch.setattr(firmware.box, "open_sealed_rules", lambda config, cipher: config)
        patch.setattr(firmware.mail.queue, "seal_mail_item", lambda item, cipher: dict(item))
        patch.setattr(firmware.policy.rules, "is_sealed", lambda value: False)

    return play


def _plant_in_clear(box):
    """:func:`plant_web_stores` as the release before the sealed stores wrote them."""
    plant_web_stores(
        types.SimpleNamespace(
            cipher=None, apply_config=box.apply_config, data_dir=box.data_dir, clock=box.clock, mail=box.mail
        )
    )


ALARM_SUBJECT = "Line 2 has no voltage (%s)" % BOOK_NAME


def _clear_left(data_dir):
    """Where the planted phonebook name, note and rule number are found in clear
    (recordings aside: they never held them)."""
    return [
        (f, s)
        for f, s in scan_for(data_dir, [BOOK_NAME, NOTE, RULE_NUMBER])
        if not f.startswith("recordings")
    ]


def _older_card_updated(lab, tmp_path, schema_0_release, mcu, during=None):
    """A card the release before the sealed stores (schema 0) left in clear, then one
    run of this release (the update's first start: data migration 1). ``during(box)``:
    called at the new release's start, before its box runs. Returns the data
    directory, the clear bytes of web.db and config.json before the update, and
    the new box's ``sealed_stores_at_start``."""
    data_dir = lab.init_data_dir(tmp_path / "box")
    quiet = lab.load(lab.scenario_doc([], lines=2, hat="lk-2lb"))
    with pytest.MonkeyPatch.context() as old, _env("LINEKEEPER_RUN_DIR", str(tmp_path / "old-boot")):
        schema_0_release(old)
        lab.run(quiet, data_dir, vault=McuLink(mcu.bus), before_start=_plant_in_clear)
    clear = {}
    for name in ("web.db", "config.json"):
        with open(os.path.join(data_dir, name), "rb") as f:
            clear[name] = f.read()
    assert RULE_NUMBER.encode() in clear["config.json"] and BOOK_NAME.encode() in clear["web.db"]
    started = []

    def at_start(box):
        started.append(box.sealed_stores_at_start)
        if during is not None:
            during(box)

    with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "new-boot")):
        lab.run(quiet, data_dir, vault=McuLink(mcu.bus), before_start=at_start)
    return data_dir, clear, started[0]


def test_a_rollback_to_the_release_before_sealing_finds_its_stores_in_clear(
    module_lab, tmp_path, schema_0_release
):
    """The sealing is data migration 1 (firmware/migrations/m001_seal_stores.py): a card
    an older release left in clear (schema 0) is backed up before the new release seals
    web.db, and config.json and the mail queue stay clear until the update is marked
    good, also when the rules are saved or a mail queued meanwhile. When the update is
    rolled back instead, the older release starts (it reads
    config.json before it restores anything, and would refuse a sealed rule pattern),
    puts the clear web.db back, reads its phonebook and notes, and the audit entries the
    new release wrote are kept."""
    from firmware.box import open_audit
    from firmware.config import load_config
    from firmware.mail.queue import MailQueue
    from firmware.migrations import BACKUP_DIR, data_schema, release_schema

    lab = module_lab
    mcu = SimMcu(SimClock())

    def during_the_health_check(box):
        # Someone saves the rules page and an alarm mail is queued: still in clear.
        store = BoxConfigStore(box.data_dir, box.apply_config, box.cipher)
        store.save(store.get())
        msg = EmailMessage()
        msg["Subject"] = ALARM_SUBJECT
        msg.set_content(ALARM_SUBJECT)
        box.mail.queue.enqueue(msg)

    data_dir, clear, sealed = _older_card_updated(
        lab, tmp_path, schema_0_release, mcu, during_the_health_check
    )

    assert data_schema(data_dir) == release_schema()
    # config.json and the mail wait; alarms.db is in the backup, as web.db is
    assert sealed == {"web_db": 7, "call_reasons": 0, "alarms": 1}
    backup = os.path.join(data_dir, BACKUP_DIR, "schema-0")
    for name, content in clear.items():
        with open(os.path.join(backup, name), "rb") as f:
            assert f.read() == content, name  # the clear copy, until the backups are dropped
    found = {
        (f.split(os.sep)[0], s) for f, s in scan_for(data_dir, [BOOK_NAME, NOTE, RULE_NUMBER, CONCERN_NAME])
    }
    assert ("web.db", BOOK_NAME) not in found and ("web.db", NOTE) not in found
    assert ("alarms.db", CONCERN_NAME) not in found  # the concern sealed (migration 2)
    assert ("config.json", RULE_NUMBER) in found and ("mail", BOOK_NAME) in found

    # Its health check failed: the box is back on the older release, which starts.
    quiet = lab.load(lab.scenario_doc([], lines=2, hat="lk-2lb"))
    with pytest.MonkeyPatch.context() as old, _env("LINEKEEPER_RUN_DIR", str(tmp_path / "old-boot-2")):
        schema_0_release(old)
        lab.run(quiet, data_dir, vault=McuLink(mcu.bus))
        config = load_config(data_dir)
    assert config.policy.rules.numbers[0].patterns == (RULE_NUMBER,)
    assert data_schema(data_dir) == 0 and not os.path.exists(os.path.join(data_dir, BACKUP_DIR))
    db = WebDb(os.path.join(data_dir, "web.db"))
    try:
        book = Phonebook(db, lambda: 0, None)
        assert book.names_for(["+44 1632 960777"], "uk") == {"+44 1632 960777": BOOK_NAME}
        assert [n["note"] for n in CallNotes(db, lambda: 0, None).of_call(1)] == [NOTE]
    finally:
        db.close()
    queue = MailQueue(os.path.join(data_dir, "mail", "queue"), lambda: 1 << 62, None)
    assert [m["subject"] for m in queue.pending()] == [MAIL_SUBJECT, ALARM_SUBJECT]
    # The concern as the older release reads alarms.db, with no key: in clear again.
    alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), None)
    try:
        concerns = [r["message"] for r in alarms.history() if r["kind"] == "staff_concern"]
    finally:
        alarms.close()
    assert concerns == ["from sam: %s asked not to be recorded" % CONCERN_NAME]
    with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "old-boot-2")), open_audit(data_dir) as audit:
        details = [e.details for e in audit.entries(limit=1000, action="update")]
    assert {"event": "migrated", "from": 0, "to": release_schema()} in details
    restored = [d for d in details if d.get("event") == "restored"]
    assert len(restored) == 1 and (restored[0]["from"], restored[0]["to"]) == (release_schema(), 0)
    assert restored[0]["audit"] == "kept" and restored[0]["audit_entries_since"] >= 1
    assert lab.verify(data_dir)[0] == 0


def test_once_the_update_is_marked_good_the_stores_left_clear_are_sealed(
    module_lab, tmp_path, schema_0_release
):
    """``linekeeper update`` drops the backups at mark_good and tells the recorder the
    update is installed: the rule pattern and the waiting mail, left in clear for a
    rollback, are sealed then, and no clear copy is left in the data directory."""
    from firmware.bus import UpdateState
    from firmware.migrations import BACKUP_DIR, drop_backups

    lab = module_lab
    mcu = SimMcu(SimClock())
    boxes = []

    def confirm(box):
        boxes.append(box)
        # Too early: the backup is still there (a rollback is still possible).
        box.bus.publish(UpdateState(line=0, t_us=0, state="installed"))
        assert box.sealed_stores_after_update is None

        def mark_good():
            drop_backups(box.data_dir)
            box.bus.publish(UpdateState(line=0, t_us=box.clock.now_us(), state="installed"))

        box.clock.call_at(500_000, mark_good)

    data_dir, _, _ = _older_card_updated(lab, tmp_path, schema_0_release, mcu, during=confirm)

    assert boxes[0].sealed_stores_after_update == {"config_patterns": 1, "mail": 1}
    assert not os.path.exists(os.path.join(data_dir, BACKUP_DIR))
    assert _clear_left(data_dir) == []


def test_a_release_installed_by_hand_is_confirmed_and_its_stores_sealed(
    module_lab, tmp_path, schema_0_release, capsys
):
    """A release put over an older box's data some other way than ``linekeeper update``
    (scripts/install-box) is never marked good by a health check: ``linekeeper update
    --confirm`` has the running recorder drop the backup (audited) and seal the rule
    pattern and the mail left in clear, so the card holds no clear copy. Refused,
    changing nothing, while an update is under way or with no recorder running."""
    from firmware.box import open_audit
    from firmware.cli import main
    from firmware.control import ControlServer, recorder_handlers, socket_path
    from firmware.migrations import BACKUP_DIR

    lab = module_lab
    mcu = SimMcu(SimClock())
    update_dir = tmp_path / "rauc"
    update_dir.mkdir()
    data_dir = str(tmp_path / "box")
    confirm = ["update", "--confirm", "--data-dir", data_dir, "--update-dir", str(update_dir)]
    outcomes = []

    def during(box):
        server = ControlServer(socket_path(box.data_dir), recorder_handlers(box, board_name="sim"))
        server.start()

        def by_hand():
            try:
                (update_dir / "progress.json").write_text('{"step": "install"}')
                outcomes.append(("under way", main(confirm), capsys.readouterr().err))
                outcomes.append(("backup kept", os.path.isdir(os.path.join(data_dir, BACKUP_DIR))))
                (update_dir / "progress.json").unlink()
                outcomes.append(("confirm", main(confirm), capsys.readouterr().out))
                outcomes.append(("again", main(confirm), capsys.readouterr().out))
            finally:
                server.stop()

        box.clock.call_at(500_000, by_hand)

    with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "run")):
        assert main(confirm) == 2  # no recorder: nothing changes
        assert "the recorder is not running" in capsys.readouterr().err
        data_dir, _, _ = _older_card_updated(lab, tmp_path, schema_0_release, mcu, during=during)

    under_way, kept, confirmed, again = outcomes
    assert under_way[1] == 2 and "an update is under way" in under_way[2]
    assert kept == ("backup kept", True)
    assert (
        confirmed[1] == 0
        and "confirmed: the backup from before the migration (schema-0) is gone" in confirmed[2]
    )
    assert "config_patterns 1" in confirmed[2] and "mail 1" in confirmed[2]
    assert again[1] == 0 and "nothing to confirm" in again[2]
    assert not os.path.exists(os.path.join(data_dir, BACKUP_DIR))
    assert _clear_left(data_dir) == []
    with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "new-boot")), open_audit(data_dir) as audit:
        entries = [
            e for e in audit.entries(limit=1000, action="update") if e.details.get("event") == "confirmed"
        ]
    assert (
        len(entries) == 1
        and entries[0].details["backups_dropped"] == ["schema-0"]
        and entries[0].actor == "cli"
    )
    assert lab.verify(data_dir)[0] == 0


def test_a_start_cut_between_the_migration_and_its_audit_entry_audits_it_once(
    module_lab, tmp_path, schema_0_release, monkeypatch
):
    """The data migrated, then the start was cut before the audit entry (here: the
    entry never written): the next start writes it; a start cut after the entry but
    before the note went does not write it twice."""
    from firmware.box import Box, open_audit
    from firmware.migrations import MIGRATION_NOTE, release_schema

    lab = module_lab
    mcu = SimMcu(SimClock())
    with monkeypatch.context() as cut:
        cut.setattr(Box, "_audit_migration", lambda self, migrated: None)
        data_dir, _, _ = _older_card_updated(lab, tmp_path, schema_0_release, mcu)
    note = os.path.join(data_dir, MIGRATION_NOTE)
    assert os.path.exists(note)

    quiet = lab.load(lab.scenario_doc([], lines=2, hat="lk-2lb"))
    for boot in ("second-boot", "third-boot"):
        with _env("LINEKEEPER_RUN_DIR", str(tmp_path / boot)):
            lab.run(quiet, data_dir, vault=McuLink(mcu.bus))
            with open_audit(data_dir) as audit:
                migrated = [e.details for e in audit.entries(limit=1000, action="update")]
        assert migrated.count({"event": "migrated", "from": 0, "to": release_schema()}) == 1
        assert not os.path.exists(note)
        # As if the next start were cut after the entry, before the note went.
        with open(note, "w") as f:
            json.dump({"event": "migrated", "from": 0, "to": release_schema()}, f)
    assert lab.verify(data_dir)[0] == 0


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


@pytest.mark.parametrize("cut", ["drop", "entry"])
def test_a_confirm_cut_short_is_audited_once_when_it_is_run_again(
    module_lab, tmp_path, schema_0_release, monkeypatch, cut
):
    """``update --confirm`` drops the backup, which cannot be undone, and audits it. A cut
    between the two must not leave the drop unaudited (before, the entry came after the
    drop, and the confirm run again found nothing to confirm); run again, it finishes
    with one entry."""
    import firmware.box
    from firmware.box import open_audit
    from firmware.migrations import BACKUP_DIR
    from firmware.storage.audit import AuditLog

    lab = module_lab
    mcu = SimMcu(SimClock())
    results = []

    def during(box):
        with monkeypatch.context() as patch:
            if cut == "drop":
                patch.setattr(firmware.box, "drop_backups", lambda data_dir: (_ for _ in ()).throw(_Cut()))
            else:
                real_append = AuditLog.append

                def append(self, actor, action, *args, **kwargs):
                    if action == "update" and args[0] == "confirm":
                        raise _Cut()
                    return real_append(self, actor, action, *args, **kwargs)

                patch.setattr(AuditLog, "append", append)
            with pytest.raises(_Cut):
                box.confirm_release("cli")
        results.append(box.confirm_release("cli"))
        results.append(box.confirm_release("cli"))

    with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "boot")):
        data_dir, _, _ = _older_card_updated(lab, tmp_path, schema_0_release, mcu, during=during)
    assert [r["dropped"] for r in results] == [["schema-0"], []]
    assert not os.path.exists(os.path.join(data_dir, BACKUP_DIR))
    with _env("LINEKEEPER_RUN_DIR", str(tmp_path / "new-boot")), open_audit(data_dir) as audit:
        entries = [
            e for e in audit.entries(limit=1000, action="update") if e.details.get("event") == "confirmed"
        ]
    assert [e.details["backups_dropped"] for e in entries] == [["schema-0"]]
    assert lab.verify(data_dir)[0] == 0
