"""Personal data sealed under the storage key the HAT's MCU vault unwraps (issue 16)."""

import base64
import json
import os
import sqlite3

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from firmware.storage.audit import SEALED_KEY, AuditLog
from firmware.storage.fieldseal import (
    KEY_FILE,
    RUN_KEY_FILE,
    FieldCipher,
    FieldSealError,
    LazyFieldCipher,
    is_sealed,
    load_field_cipher,
    open_escrow,
    read_escrow,
    rewrap,
)
from firmware.storage.keystore import RecordingKey


def test_seal_and_open_round_trip_bound_to_the_field():
    cipher = FieldCipher(os.urandom(32))
    sealed = cipher.seal("Zoë Ångström", "name")
    assert is_sealed(sealed)
    assert cipher.open(sealed, "name") == "Zoë Ångström"
    assert cipher.seal(None, "name") is None and cipher.open(None, "name") is None
    assert cipher.open("01632960777", "number") == "01632960777"  # written before sealing
    assert cipher.seal(sealed, "name") == sealed  # never sealed twice
    with pytest.raises(FieldSealError, match="a sealed number"):
        cipher.open(sealed, "number")  # a name moved into the number column
    with pytest.raises(FieldSealError):
        FieldCipher(os.urandom(32)).open(sealed, "name")  # another box's key
    damaged = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(FieldSealError):
        cipher.open(damaged, "name")


def test_the_same_text_seals_the_same_and_different_texts_do_not():
    cipher = FieldCipher(os.urandom(32))
    assert cipher.seal("01632960777", "number") == cipher.seal("01632960777", "number")
    assert cipher.seal("01632960777", "number") != cipher.seal("01632960778", "number")
    assert cipher.seal("x", "number")[5:] != cipher.seal("x", "name")[5:]


def test_the_card_holds_the_data_key_only_wrapped_by_the_vault(tmp_path):
    mcu = SimMcu(SimClock())
    run = tmp_path / "run"
    first = load_field_cipher(tmp_path, vault=McuLink(mcu.bus), run_dir=run)
    sealed = first.seal("PRIYA", "name")
    record = (tmp_path / KEY_FILE).read_bytes()
    data_key = (run / RUN_KEY_FILE).read_bytes()
    assert len(data_key) == 32 and data_key not in record and data_key.hex().encode() not in record
    assert json.loads(record)["wrapped_by"] == "vault"
    # The same vault after a reboot (its flash kept): the same key.
    again = load_field_cipher(tmp_path, vault=McuLink(SimMcu(SimClock(), store=mcu.store).bus))
    assert again.open(sealed, "name") == "PRIYA"
    # Another process on the box: the recorder's RAM copy.
    assert load_field_cipher(tmp_path, run_dir=run, create=False).open(sealed, "name") == "PRIYA"
    # Another HAT's vault, or no key at all: refused, by name.
    with pytest.raises(FieldSealError, match="another box"):
        load_field_cipher(tmp_path, vault=McuLink(SimMcu(SimClock()).bus))
    with pytest.raises(FieldSealError, match="MCU vault"):
        load_field_cipher(tmp_path, create=False)


def _recording_key():
    from firmware.storage import crypto

    private, public = crypto.new_key_pair()
    return RecordingKey(private, public)


def test_the_escrow_copy_opens_with_the_recording_key_only_and_survives_a_rewrap(tmp_path):
    mcu = SimMcu(SimClock())
    box_key = _recording_key()
    cipher = load_field_cipher(tmp_path, vault=McuLink(mcu.bus), escrow=box_key.public_key)
    sealed = cipher.seal("PRIYA", "name")
    escrow = read_escrow(tmp_path)
    assert set(escrow) == {"public_key", "data_key"}  # never a signing key
    data_key = open_escrow(escrow, box_key)
    assert FieldCipher(data_key).open(sealed, "name") == "PRIYA"
    record = (tmp_path / KEY_FILE).read_bytes()
    assert data_key not in record and data_key.hex().encode() not in record  # on the card only wrapped
    assert base64.b64encode(data_key)[:40] not in record
    with pytest.raises(FieldSealError, match="another recording key"):
        open_escrow(escrow, _recording_key())
    # A copy wrapped under another context (as the signing seed once was) does not open.
    from firmware.storage import crypto

    other = dict(
        escrow, data_key=crypto.wrap_data_key(os.urandom(32), box_key.public_key, b"another context")
    )
    with pytest.raises(FieldSealError, match="damaged"):
        open_escrow(other, box_key)
    # Wrapped to a new vault: it opens there, the escrow copy is kept, the old vault is refused.
    new = SimMcu(SimClock())
    rewrap(tmp_path, McuLink(new.bus).read_key("storage"), data_key)
    assert read_escrow(tmp_path) == escrow
    assert load_field_cipher(tmp_path, vault=McuLink(new.bus)).open(sealed, "name") == "PRIYA"
    with pytest.raises(FieldSealError, match="hat-replaced"):
        load_field_cipher(tmp_path, vault=McuLink(SimMcu(SimClock(), store=mcu.store).bus))


def test_a_damaged_escrow_copy_is_reported_as_damaged(tmp_path):
    mcu = SimMcu(SimClock())
    load_field_cipher(tmp_path, vault=McuLink(mcu.bus), escrow=_recording_key().public_key)
    doc = json.loads((tmp_path / KEY_FILE).read_text())
    doc["escrow"]["data_key"] = doc["escrow"]["data_key"][:-8] + "=="
    (tmp_path / KEY_FILE).write_text(json.dumps(doc))
    with pytest.raises(FieldSealError, match="damaged"):
        read_escrow(tmp_path)


def test_a_box_without_the_vault_seals_nothing(tmp_path):
    assert load_field_cipher(tmp_path) is None
    assert not (tmp_path / KEY_FILE).exists()
    lazy = LazyFieldCipher(str(tmp_path), str(tmp_path / "run"))
    assert lazy.seal("PRIYA", "name") == "PRIYA"


def test_a_locked_vault_falls_back_on_the_run_copy_only(tmp_path):
    mcu = SimMcu(SimClock())
    link = McuLink(mcu.bus)
    load_field_cipher(tmp_path, vault=link, run_dir=tmp_path / "run")
    link.lock_vault()
    assert load_field_cipher(tmp_path, vault=link, run_dir=tmp_path / "run") is not None
    with pytest.raises(FieldSealError, match="did not give"):
        load_field_cipher(tmp_path, vault=link)


def _audit(tmp_path, cipher):
    return AuditLog(tmp_path / "audit.db", tmp_path / "audit.head", cipher=cipher)


def test_audit_details_are_sealed_and_the_chain_verifies_without_the_key(tmp_path):
    cipher = FieldCipher(os.urandom(32))
    with _audit(tmp_path, cipher) as log:
        log.append("admin", "login", "admin", {"address": "203.0.113.77"}, 1)
        log.append("admin", "legal_hold", "call:1", {"reason": "Mrs Jones' complaint"}, 2)
        log.append("system", "recording_sealed", "recording:ab", {"sha256": "00" * 32}, 3)
        log.append("sam", "phonebook", "07700900123", {"change": "set", "name": "Dr Who"}, 4)
        entries = log.entries(newest_first=False)
    assert entries.pop().target == "07700900123"
    assert [e.details for e in entries] == [
        {"address": "203.0.113.77"},
        {"reason": "Mrs Jones' complaint"},
        {"sha256": "00" * 32},
    ]
    with sqlite3.connect(tmp_path / "audit.db") as db:
        stored = [json.loads(r[0]) for r in db.execute("SELECT details FROM audit ORDER BY seq")]
    assert set(stored[0]) == {SEALED_KEY} and set(stored[1]) == {SEALED_KEY}
    assert stored[2] == {"sha256": "00" * 32}  # the box's bookkeeping, read by verify anywhere
    raw = (tmp_path / "audit.db").read_bytes()
    assert b"203.0.113.77" not in raw and b"Jones" not in raw and b"07700900123" not in raw
    with _audit(tmp_path, None) as log:
        assert log.verify() == []  # no key needed to check the chain
        assert log.entries(action="recording_sealed")[0].details == {"sha256": "00" * 32}
        with pytest.raises(FieldSealError, match="MCU vault"):
            log.entries(action="login")


def test_the_web_uis_lazy_cipher_finds_the_recorders_copy_when_it_comes(tmp_path):
    run = tmp_path / "run"
    mcu = SimMcu(SimClock())
    lazy = LazyFieldCipher(str(tmp_path), str(run))
    with _audit(tmp_path, lazy) as log:
        log.append("admin", "login", "admin", {"address": "a"}, 1)  # before the box sealed
        load_field_cipher(tmp_path, vault=McuLink(mcu.bus), run_dir=run)  # the recorder starts
        log.append("admin", "login", "admin", {"address": "b"}, 2)
        assert [e.details["address"] for e in log.entries(newest_first=False)] == ["a", "b"]
    assert b'"address":"b"' not in (tmp_path / "audit.db").read_bytes()


def test_sealed_number_and_name_searches_by_index_and_by_scan(tmp_path, monkeypatch):
    """Few matching numbers: looked up by their sealed text; many: opened in time order.
    Both give the same calls, newest first, and the same counts."""
    from firmware.calls import callsearch
    from firmware.calls.calllog import migrate
    from firmware.calls.callsearch import CallFilter, CallSearch, ensure_indexes

    cipher = FieldCipher(os.urandom(32))
    path = tmp_path / "calls.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    numbers = ["0163296%04d" % i for i in range(40)] + ["02079460000"] * 3
    for i, number in enumerate(numbers):
        db.execute(
            "INSERT INTO calls (line, direction, started_at, clock_synced, number, name)"
            " VALUES (1, 'in', ?, 1, ?, ?)",
            (1_000_000 * i, cipher.seal(number, "number"), cipher.seal("Caller %d" % (i % 7), "name")),
        )
    db.close()
    ensure_indexes(path)
    filters = [
        CallFilter(number="01632960"),
        CallFilter(number="0000", number_match="contains"),
        CallFilter(number="0207946"),
        CallFilter(number="99", number_match="contains"),
        CallFilter(name="caller 3"),
        CallFilter(name="nobody", name_numbers=("02079460000",)),
    ]
    results = {}
    for in_max in (500, 2):  # the index path, then the scan (more matches than in_max)
        monkeypatch.setattr(callsearch, "SEALED_IN_MAX", in_max)
        search = CallSearch(path, cipher)
        try:
            results[in_max] = [
                ([c["number"] for c in search.search(f, limit=200)[0]], search.count(f)) for f in filters
            ]
        finally:
            search.close()
    assert results[500] == results[2]
    got = results[500]
    assert got[0] == (["0163296%04d" % i for i in reversed(range(40))], (40, True))
    assert got[1] == (["02079460000"] * 3 + ["01632960000"], (4, True))
    assert got[2][1] == got[5][1] == (3, True) and got[3] == ([], (0, True))
    assert got[4][1] == (6, True)  # calls 3, 10, 17, 24, 31, 38
