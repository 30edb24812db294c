"""The migration of web.db, config.json, the mail queue and the calls' policy
reasons to sealed form (firmware/storage/sealstores.py)."""

import dataclasses
import json
import os
import sqlite3
from email.message import EmailMessage

import pytest

from firmware.calls.calllog import CallLog
from firmware.clock import SimClock
from firmware.config import BoxConfig, load_config, save_config
from firmware.mail.queue import MailQueue
from firmware.policy.rules import SKIP, decide
from firmware.storage.fieldseal import FieldCipher, FieldSealError
from firmware.storage.sealstores import (
    NOTE,
    PHONEBOOK_NAME,
    PHONEBOOK_NUMBER,
    seal_clear_stores,
    seal_config_file,
    seal_web_db,
)
from web.db import WebDb
from web.phonebook import CallNotes, Phonebook
from web.throttle import FREE_FAILURES, Throttle, account_keys

from support.cardscan import scan

NUMBER = "+441632960788"
NAME = "Ottoline Vanderpump"
NOTE_TEXT = "Rang about the leak at 9 Quince Row again"
RULE = "07700 900123"
ADDRESS = "198.51.100.203"
T_US = 1_772_442_000_000_000


def old_card(data_dir, n_entries=3):
    """A data directory as a firmware from before sealing left it: all in clear."""
    os.makedirs(data_dir, exist_ok=True)
    db = WebDb(os.path.join(data_dir, "web.db"))
    book = Phonebook(db, lambda: T_US)
    book.put(NUMBER, NAME, "uk")
    for i in range(1, n_entries):
        book.put("01632960%03d" % i, "Entry %d" % i, "uk")
    CallNotes(db, lambda: T_US).add(1, NOTE_TEXT, "sam")
    for _ in range(3):  # three wrong passwords for sam from an address: sam is blocked there
        Throttle(db, lambda: T_US).failed(account_keys("sam", ADDRESS))
    db.close()
    config = BoxConfig.from_dict(
        {"policy": {"rules": {"numbers": [{"name": "mobile", "action": "exclude", "patterns": [RULE]}]}}}
    )
    save_config(data_dir, config)
    log = CallLog(os.path.join(data_dir, "calls.db"), SimClock())
    log.close()
    calls = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    calls.execute(
        "INSERT INTO calls (line, direction, started_at, clock_synced, number, policy_decision, "
        "policy_reason) VALUES (1, 'in', ?, 1, NULL, 'skip', ?)",
        (T_US, 'number %s excluded by rule "mobile"' % RULE),
    )
    calls.commit()
    calls.close()
    queue = MailQueue(os.path.join(data_dir, "mail", "queue"), lambda: T_US)
    msg = EmailMessage()
    msg["Subject"] = "Missed call from %s" % NUMBER
    msg.set_content("%s rang: %s" % (NAME, NOTE_TEXT))
    queue.enqueue(msg)
    return data_dir


SECRETS = [NUMBER, NAME, NOTE_TEXT, RULE, RULE.replace(" ", ""), ADDRESS]


def test_an_older_card_is_sealed_in_place_and_reads_as_before(tmp_path):
    data_dir = old_card(str(tmp_path / "data"))
    found = {s for _, s in scan(data_dir, SECRETS)}
    assert found >= {NUMBER, NAME, NOTE_TEXT, RULE, ADDRESS}  # the scan finds the clear copies
    cipher = FieldCipher(os.urandom(32))
    queue = MailQueue(os.path.join(data_dir, "mail", "queue"), lambda: T_US, cipher)
    counts = seal_clear_stores(data_dir, cipher, mail_queue=queue)
    assert counts == {"web_db": 9, "config_patterns": 1, "call_reasons": 1, "alarms": 0, "mail": 1}
    assert scan(data_dir, SECRETS) == []
    # Everything reads as before with the key.
    db = WebDb(os.path.join(data_dir, "web.db"))
    book = Phonebook(db, lambda: T_US, cipher)
    assert book.names_for(["01632 960788"], "uk") == {"01632 960788": NAME}
    assert book.numbers_named("vanderpump", "uk")
    assert CallNotes(db, lambda: T_US, cipher).of_call(1)[0]["note"] == NOTE_TEXT
    assert book.count() == 3
    # The throttle's counters carried over: sam is still blocked from that address only.
    throttle = Throttle(db, lambda: T_US, cipher)
    assert throttle.wait_s(account_keys("sam", ADDRESS)) > 0
    assert throttle.wait_s(account_keys("sam", "192.0.2.1")) == 0
    db.close()
    assert load_config(data_dir, cipher).policy.rules.numbers[0].patterns == (RULE,)
    (reason,) = (
        sqlite3.connect(os.path.join(data_dir, "calls.db"))
        .execute("SELECT policy_reason FROM calls")
        .fetchone()
    )
    assert reason == 'number excluded by rule "mobile"'
    (item,) = queue.pending()
    assert item["subject"] == "Missed call from %s" % NUMBER
    # Running it again (the next start) changes nothing.
    again = seal_clear_stores(data_dir, cipher, mail_queue=queue)
    assert again == {"web_db": 0, "config_patterns": 0, "call_reasons": 0, "alarms": 0, "mail": 0}
    # Without the key: nothing is done, and what is sealed does not open.
    assert seal_clear_stores(data_dir, None) == {}
    with pytest.raises(FieldSealError):
        load_config(data_dir, FieldCipher(os.urandom(32)))


def test_sealing_web_db_is_batched_and_a_cut_midway_is_finished_next_time(tmp_path, monkeypatch):
    data_dir = old_card(str(tmp_path / "data"), n_entries=5)
    cipher = FieldCipher(os.urandom(32))
    calls = []
    real = cipher.seal

    def cut_after_first_batch(text, field):
        calls.append(field)
        if len(calls) > 4:  # the second batch of two rows (two fields each)
            raise OSError("power cut")
        return real(text, field)

    monkeypatch.setattr(cipher, "seal", cut_after_first_batch)
    with pytest.raises(OSError):
        seal_web_db(os.path.join(data_dir, "web.db"), cipher, batch=2)
    monkeypatch.setattr(cipher, "seal", real)
    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    sealed = db.execute("SELECT count(*) FROM phonebook WHERE number LIKE 'lkp1:%'").fetchone()[0]
    assert sealed == 2  # the first batch committed whole, the second not at all
    db.close()
    assert seal_web_db(os.path.join(data_dir, "web.db"), cipher) == 9  # entries, note, 5 throttle
    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    rows = db.execute("SELECT number, name FROM phonebook").fetchall()
    db.close()
    assert len(rows) == 5
    assert {cipher.open(n, PHONEBOOK_NUMBER) for n, _ in rows} >= {NUMBER}
    assert NAME in {cipher.open(m, PHONEBOOK_NAME) for _, m in rows}


def test_a_damaged_config_json_is_left_for_the_loader_to_report(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"policy": {"rules": ')
    assert seal_config_file(str(path), FieldCipher(os.urandom(32))) == 0
    assert path.read_text() == '{"policy": {"rules": '


def test_rules_read_without_the_key_never_record_on_a_number_rule(tmp_path):
    data_dir = old_card(str(tmp_path / "data"))
    cipher = FieldCipher(os.urandom(32))
    seal_config_file(os.path.join(data_dir, "config.json"), cipher)
    doc = json.loads((tmp_path / "data" / "config.json").read_text())
    assert doc["policy"]["rules"]["numbers"][0]["patterns"][0].startswith("lkp1:")
    locked = load_config(data_dir).policy.rules
    decision = decide(dataclasses.replace(locked, default_mode="by_rule"), 1, "in", "01632960123", T_US)
    assert decision.decision == SKIP and "sealed" in decision.reason


def test_a_value_moved_between_fields_does_not_open():
    cipher = FieldCipher(os.urandom(32))
    with pytest.raises(FieldSealError):
        cipher.open(cipher.seal(NOTE_TEXT, NOTE), PHONEBOOK_NAME)


def test_a_store_that_cannot_be_sealed_now_does_not_stop_the_box(tmp_path):
    data_dir = old_card(str(tmp_path / "data"))
    with open(os.path.join(data_dir, "web.db"), "r+b") as f:
        f.write(b"not a database at all, damaged")
    cipher = FieldCipher(os.urandom(32))
    counts = seal_clear_stores(data_dir, cipher)
    assert counts == {"web_db": None, "config_patterns": 1, "call_reasons": 1, "alarms": 0}


def test_a_queue_told_not_to_seal_writes_in_clear_and_opens_what_is_sealed(tmp_path):
    """While an update to the sealed stores is not marked good (m001_seal_stores), the
    mail queue writes in clear for a release that cannot open a sealed mail; it still
    opens the mails it sealed, and seals the clear ones once told to again."""
    cipher = FieldCipher(os.urandom(32))
    path = tmp_path / "queue"
    queue = MailQueue(str(path), lambda: T_US, cipher)
    msg = EmailMessage()
    msg["Subject"] = "Missed call from %s" % NUMBER
    msg.set_content("%s rang" % NAME)
    queue.enqueue(msg)  # sealed
    queue.seal_writes = False
    queue.enqueue(msg)  # in clear
    assert len({name for name, _ in scan(str(path), [NUMBER, NAME])}) == 1  # the second one
    assert queue.seal_clear() == 0
    assert [m["subject"] for m in queue.pending()] == [msg["Subject"]] * 2
    queue.seal_writes = True
    assert queue.seal_clear() == 1
    assert scan(str(path), [NUMBER, NAME]) == []


def test_a_phonebook_name_is_found_with_or_without_its_accents(tmp_path):
    book = Phonebook(WebDb(str(tmp_path / "web.db")), lambda: T_US)
    book.put("01632960123", "José Álvarez", "uk")
    book.put("01632960124", "Straße Bau GmbH", "uk")
    for typed in ("jose", "ALVAREZ", "José", "álv"):
        assert "+441632960123" in book.numbers_named(typed, "uk"), typed
    assert "+441632960124" in book.numbers_named("strasse", "uk")
    assert book.numbers_named("josie", "uk") == ()


def test_a_phonebook_entry_an_older_release_kept_as_44_is_still_found_and_removed(tmp_path):
    """An older release kept a number typed as 441632960123 as it was; this one reads it as
    +441632960123, and the old entry was no longer found, named, or removable."""
    db = WebDb(str(tmp_path / "web.db"))
    with db.tx() as conn:
        conn.execute(
            "INSERT INTO phonebook (number, name, updated_us) VALUES ('441632960123', 'Acme Ltd', 1)"
        )
    book = Phonebook(db, lambda: T_US)
    for typed in ("441632960123", "01632960123", "+44 1632 960123"):
        assert book.names_for([typed], "uk") == {typed: "Acme Ltd"}, typed
    book.put("441632960123", "Acme Limited", "uk")  # renamed: one entry, in the new form
    assert [(e["number"], e["name"]) for e in book.entries()] == [("+441632960123", "Acme Limited")]
    assert book.remove("01632960123", "uk") and book.count() == 0


@pytest.mark.parametrize("sealed", [True, False])
def test_an_unlock_clears_the_accounts_back_off_from_every_address_sealed_or_not(tmp_path, sealed):
    db = WebDb(str(tmp_path / "web.db"))
    throttle = Throttle(db, lambda: T_US, FieldCipher(os.urandom(32)) if sealed else None)
    for name, address in (("sam", ADDRESS), ("sam", "192.0.2.1"), ("sammy", ADDRESS), ("ivan", "192.0.2.2")):
        for _ in range(FREE_FAILURES["acct"]):
            throttle.failed(account_keys(name, address))
    assert throttle.locks(account_keys("sam", "192.0.2.1"))["acct"]
    throttle.unlock("sam")
    # sam's back-off from each address goes; that of sammy (whose name starts with his),
    # ivan's, and the address's own count of every name tried there stay.
    kept = {(r["key"].split(":")[0], r["failures"]) for r in db.query("SELECT * FROM throttle")}
    assert not throttle.locks(account_keys("sam", "192.0.2.1"))
    assert throttle.locks(account_keys("sammy", ADDRESS))["acct"]
    assert throttle.locks(account_keys("ivan", "192.0.2.2"))["acct"]
    assert ("addr", 6) in kept
    db.close()
