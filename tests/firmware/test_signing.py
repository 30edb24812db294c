"""The device signing key: from the MCU vault (simulated) or the card; keyed audit entries."""

import json
import os
import sqlite3
import stat

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from firmware.signing import (
    SigningKeyError,
    derive_from_vault_key,
    fingerprint,
    load_signer,
    normalise_fingerprint,
    trusted_public_key,
    verify_signature,
)
from firmware.storage.audit import AuditLog, entry_hash

from support.twousers import RECORDER, WEB, as_user, shared_data_dir


@pytest.fixture
def mcu():
    return SimMcu(SimClock())


def test_the_vault_key_gives_the_same_signer_at_every_boot_and_none_on_the_card(tmp_path, mcu):
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    first = load_signer(data, vault=McuLink(mcu.bus), run_dir=run)
    again = load_signer(data, vault=McuLink(SimMcu(SimClock(), store=mcu.store).bus))
    assert first.public_key == again.public_key and first.source == "vault"
    assert not (data / "signing.key").exists()
    audit_key = McuLink(mcu.bus).read_key("audit")
    assert first.public_key == load_signer(data, run_dir=run).public_key
    assert derive_from_vault_key(audit_key) == (run / "device-signing.key").read_bytes()
    # The box's other processes take the RAM copy; without it, none is made up on the card.
    with pytest.raises(SigningKeyError, match="no copy"):
        load_signer(data)
    # Another box's vault is not this card's key.
    with pytest.raises(SigningKeyError, match="not this box's"):
        load_signer(data, vault=McuLink(SimMcu(SimClock()).bus))


def test_without_an_mcu_the_key_is_a_private_file_on_the_card(tmp_path):
    signer = load_signer(tmp_path)
    assert signer.source == "card"
    assert stat.S_IMODE(os.stat(tmp_path / "signing.key").st_mode) == 0o600
    assert load_signer(tmp_path).public_key == signer.public_key
    sig = signer.sign(b"message")
    assert verify_signature(signer.public_key, sig, b"message")
    assert not verify_signature(signer.public_key, sig, b"messagf")
    with pytest.raises(TypeError):
        __import__("pickle").dumps(signer)


def test_fingerprints_are_pinned_as_typed(tmp_path):
    signer = load_signer(tmp_path)
    fp = signer.fingerprint
    assert fp.startswith("lk1:") and len(fp) == 4 + 8 * 4 + 7
    assert normalise_fingerprint(fp.upper().replace("LK1:", "").replace("-", " ")) == fp
    assert trusted_public_key(tmp_path, fp) == (signer.public_key, True)
    with pytest.raises(SigningKeyError, match="not lk1:"):
        trusted_public_key(tmp_path, fingerprint(os.urandom(32)))
    with pytest.raises(SigningKeyError, match="32 hex digits"):
        normalise_fingerprint("lk1:1234")


def test_a_signed_audit_trail_rechained_without_the_key_fails(tmp_path, mcu):
    signer = load_signer(tmp_path, vault=McuLink(mcu.bus))
    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head", signer=signer)
    for i in range(4):
        log.append("sam", "playback", str(i), {"line": 1}, 1_000_000 + i)
    assert log.verify(public_key=signer.public_key) == []
    log.close()
    db = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    row = db.execute(
        "SELECT seq, wall_us, actor, action, target, details, prev_hash FROM audit WHERE seq = 4"
    ).fetchone()
    details = json.dumps({"line": 2})
    digest = entry_hash(row[6], 4, row[1], "eve", row[3], row[4], {"line": 2})
    db.execute("UPDATE audit SET actor = 'eve', details = ?, hash = ? WHERE seq = 4", (details, digest))
    db.close()
    (tmp_path / "audit.head").write_text(json.dumps({"seq": 4, "hash": digest}))
    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    assert log.verify() == []  # the unkeyed chain holds
    problems = log.verify(public_key=signer.public_key)
    assert any("audit entry 4: its signature does not match" in p for p in problems), problems
    assert any("head file is not signed" in p for p in problems), problems


def test_entries_from_before_signing_are_covered_by_the_first_signed_one(tmp_path):
    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    log.append("sam", "login", None, {}, 1)
    log.close()
    signer = load_signer(tmp_path)
    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head", signer=signer)
    assert log.verify(public_key=signer.public_key) == [
        "audit trail: no entry is signed by the box's key (1 entries): it was rewritten "
        "without the key, or the box never signed"
    ]
    log.append("sam", "logout", None, {}, 2)
    assert log.verify(public_key=signer.public_key) == []
    log.close()
    # An unsigned entry after signing began is not accepted.
    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    log.append("eve", "login", None, {}, 3)
    problems = log.verify(public_key=signer.public_key)
    assert "audit entry 3 is not signed by the box's key" in problems[0], problems


def test_keys_prints_the_fingerprint_to_copy(tmp_path, capsys):
    from firmware.cli import main

    assert main(["keys", "--data-dir", str(tmp_path), "--fingerprint"]) == 2
    assert "no signing key yet" in capsys.readouterr().err
    signer = load_signer(tmp_path)
    assert main(["keys", "--data-dir", str(tmp_path), "--fingerprint"]) == 0
    assert capsys.readouterr().out == signer.fingerprint + "\n"
    assert main(["keys", "--data-dir", str(tmp_path)]) == 0
    assert "on the card" in capsys.readouterr().out


def test_a_restarted_recorder_finds_the_locked_vaults_key_in_the_run_directory(tmp_path, mcu):
    link = McuLink(mcu.bus)
    first = load_signer(tmp_path, vault=link, run_dir=tmp_path / "run")
    link.lock_vault()  # as the box does once it has the key
    again = load_signer(tmp_path, vault=link, run_dir=tmp_path / "run")
    assert again.public_key == first.public_key
    (tmp_path / "run" / "device-signing.key").unlink()  # a reboot empties /run ...
    with pytest.raises(SigningKeyError, match="vault did not give its key"):
        load_signer(tmp_path, vault=link, run_dir=tmp_path / "run")  # ... and unlocks the vault


def test_only_the_recorder_makes_the_key_other_processes_wait_for_it(tmp_path):
    from firmware.signing import LazySigner, device_signer

    assert device_signer(tmp_path) is None  # e.g. `linekeeper init` before the box
    assert not (tmp_path / "signing.key").exists()
    lazy = LazySigner(tmp_path)
    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head", signer=lazy)
    log.append("admin", "init", None, {}, 1)  # before the key: unsigned
    signer = load_signer(tmp_path)  # the recorder's first start
    log.append("admin", "login", None, {}, 2)  # the web process signs from now on
    assert lazy.get().public_key == signer.public_key
    assert log.verify(public_key=signer.public_key) == []
    log.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="two users need root to be made (CI runs as root)")
def test_the_web_ui_signs_with_the_card_key_the_recorder_made():
    """On the appliance the recorder (linekeeper-rec) makes the key and the web UI
    (linekeeper-web, the same group) signs its audit entries with it: a key only its
    maker could read left the web UI unable to finish the setup or log anyone in."""
    with shared_data_dir() as data:
        assert as_user(RECORDER, lambda: load_signer(str(data))) == 0
        assert stat.S_IMODE(os.stat(data / "signing.key").st_mode) == 0o660
        assert as_user(WEB, lambda: load_signer(str(data), create=False)) == 0
        # A key an older firmware made 0600 is given the group by its owner's next start.
        os.chmod(data / "signing.key", 0o600)
        assert as_user(WEB, lambda: load_signer(str(data), create=False)) == 1
        assert as_user(RECORDER, lambda: load_signer(str(data))) == 0
        assert as_user(WEB, lambda: load_signer(str(data), create=False)) == 0
