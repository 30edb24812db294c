"""Replacing the HAT loses nothing: the escrow copy of the storage data key.

A box on HAT A (simulated MCU, its vault in its own flash) takes calls with
caller-ID numbers and names, and people log in and put a call on hold with a
reason. The HAT is then replaced by HAT B (a fresh vault): the box refuses to
start and says to run ``linekeeper hat-replaced``, and changes nothing. A
wrong or mistyped recovery key is refused in one line and changes nothing;
the box's recovery key moves the storage key to HAT B, whose vault makes a new
signing key that takes over from HAT A's by a signed handover: every number,
name and audit detail reads again, ``verify`` passes (the old signatures up to
the handover included), the move is audited, and the card alone still holds
none of them, nor any signing key, in any form. A signature by HAT A's key
after the handover, or a handover made by any other key, fails ``verify``.
"""

import base64
import hashlib
import json
import os
import shutil

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from firmware.signing import Signer, derive_from_vault_key, fingerprint, read_public_record
from firmware.storage.keystore import Argon2Params

from support.cardscan import env, scan

CALLER = {"number": "01632960777", "name": "PRIYA HARGREAVES"}
DIALLED = "01632960456"
ADDRESS = "203.0.113.77"
REASON = "Complaint from Mrs Okonkwo-Baptiste about her gas bill"
SECRETS = [CALLER["number"], CALLER["name"], DIALLED, ADDRESS, REASON]
CHEAP_SLOT = Argon2Params(memory_kib=8, iterations=1)  # key slots made by the tests themselves

CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "in",
        "rings": 2,
        "caller_id": dict(CALLER),
        "talk": 3.0,
        "speech": "Glue the sheet to the dark blue background.",
    },
    {
        "line": 2,
        "at": 0.5,
        "direction": "out",
        "dial": {"digits": DIALLED, "delay": 0.2},
        "talk": 3.0,
        "speech": "The birch canoe slid on the smooth planks.",
    },
]


def tree_digest(root):
    """``{file: sha256}`` of every file under ``root`` (what "nothing changed" means); SQLite's
    shared-memory index and an empty write-ahead log, which merely opening a database makes,
    do not count."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith("-shm") or (name.endswith("-wal") and os.path.getsize(path) == 0):
                continue
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def key_file(lab, text, name):
    path = lab.tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def on_hat_a(module_lab, tmp_path_factory):
    """A data dir filled on HAT A, and HAT A's MCU."""
    lab = module_lab
    mcu_a = SimMcu(SimClock())
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    scenario = lab.load(lab.scenario_doc(CALLS, lines=2, hat="lk-2lb"))

    def people(box):
        def act():
            wall = box.clock.wall_at(box.clock.now_us())
            box.audit.append("admin", "login", "admin", {"address": ADDRESS}, wall)
            box.audit.append("admin", "legal_hold", "call:1", {"reason": REASON, "on": True}, wall)

        box.clock.call_at(3_000_000, act)

    with env("LINEKEEPER_RUN_DIR", str(tmp_path_factory.mktemp("boot-a"))):
        lab.run(scenario, data_dir, vault=McuLink(mcu_a.bus), before_start=people)
    return data_dir, mcu_a


def vault_signer(mcu):
    """The signer the HAT with ``mcu`` makes in its vault (as its recorder derives it)."""
    return Signer(derive_from_vault_key(McuLink(mcu.bus).read_key("audit")), "vault")


def no_seed_on_card(data_dir, *signers):
    """True when no file on the card holds any of these signers' private seeds."""
    seeds = [s._key.private_bytes_raw() for s in signers]
    for folder, _, files in os.walk(data_dir):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            if any(seed in data or seed.hex().encode() in data for seed in seeds):
                return False
    return True


def verify_pinned(lab, data_dir, fp):
    """``verify`` off the box (no run directory) against a pinned fingerprint."""
    with env("LINEKEEPER_RUN_DIR", ""):
        return lab.cli("verify", "--data-dir", data_dir, "--password-file", lab.password_file(), "--key", fp)


def quiet_run(lab, data_dir, mcu):
    lab.run(lab.load(lab.scenario_doc([], lines=2, hat="lk-2lb")), data_dir, vault=McuLink(mcu.bus))


def shown(lab, data_dir):
    """What the box shows: the calls' numbers and names, and the people's audit details."""
    from firmware.box import open_audit

    calls = {(c["direction"], c["number"], c["name"]) for c in lab.calls(data_dir)}
    with open_audit(data_dir) as audit:
        details = {e.action: e.details for e in audit.entries(limit=1000)}
    return calls, details


def test_a_new_hat_is_refused_clearly_then_the_recovery_key_moves_everything(
    on_hat_a, module_lab, tmp_path, monkeypatch
):
    import firmware.box

    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    with open(os.path.join(data_dir, "storage.key")) as f:
        assert set(json.load(f)["escrow"]) == {"public_key", "data_key"}  # no signing key
    old_fp = fingerprint(read_public_record(data_dir)["public_key"])
    mcu_b = SimMcu(SimClock())  # the replacement HAT: a vault of its own
    before = tree_digest(data_dir)
    with env("LINEKEEPER_RUN_DIR", str(tmp_path / "boot-b")):
        # The recorder refuses HAT B, naming what to do, and writes nothing.
        with pytest.raises(firmware.errors.LinekeeperError, match="linekeeper hat-replaced"):
            quiet_run(lab, data_dir, mcu_b)
        assert tree_digest(data_dir) == before
        status, _, err = lab.cli("calls", "--data-dir", data_dir, "--password-file", lab.password_file())
        assert status == 2 and "MCU vault" in err, err

        monkeypatch.setattr(firmware.box, "hat_vault", lambda data_dir: McuLink(mcu_b.bus))
        # Another box's recovery key, and a mistyped one: refused in one line, nothing changed.
        from firmware.storage.keystore import KeyStore

        other = KeyStore(str(tmp_path / "other"), kdf_params=CHEAP_SLOT)
        wrong = other.initialise("admin", "another long password")
        typo = lab.recovery_key[:-1] + ("A" if lab.recovery_key[-1] != "A" else "B")
        for text, said in ((wrong, "not the recovery key of this box"), (typo, "typo")):
            status, out, err = lab.cli(
                "hat-replaced", "--data-dir", data_dir, "--recovery-key-file", key_file(lab, text, "rk")
            )
            assert status == 2 and said in err and len(err.strip().splitlines()) == 1, err
            assert tree_digest(data_dir) == before

        status, out, err = lab.cli(
            "hat-replaced",
            "--data-dir",
            data_dir,
            "--recovery-key-file",
            key_file(lab, lab.recovery_key, "rk"),
        )
        assert status == 0, err
        assert "now open with this HAT" in out
        new_fp = fingerprint(vault_signer(mcu_b).public_key)
        assert "handed over from %s to %s" % (old_fp, new_fp) in out
        status, out, err = lab.cli(  # a second run has nothing to do
            "hat-replaced",
            "--data-dir",
            data_dir,
            "--recovery-key-file",
            key_file(lab, lab.recovery_key, "rk"),
        )
        assert status == 0 and "nothing to do" in out, err

        quiet_run(lab, data_dir, mcu_b)  # the recorder starts on HAT B
        calls, details = shown(lab, data_dir)
        status, out, err = lab.verify(data_dir)
        assert status == 0, out + err
    assert ("in", CALLER["number"], CALLER["name"]) in calls
    assert ("out", DIALLED, None) in calls
    assert details["login"] == {"address": ADDRESS}
    assert details["legal_hold"]["reason"] == REASON
    assert details["hat_replaced"]["via"] == "recovery key"
    assert (details["hat_replaced"]["old_key"], details["hat_replaced"]["new_key"]) == (old_fp, new_fp)
    # The card alone (no MCU, no run directory) still holds none of them, nor any signing key.
    assert scan(data_dir, SECRETS) == []
    assert no_seed_on_card(data_dir, vault_signer(mcu_a), vault_signer(mcu_b))
    assert not os.path.exists(os.path.join(data_dir, "signing.seal"))
    # Off the box, with only the new fingerprint pinned: intact. The old one is not the box's now.
    status, out, err = verify_pinned(lab, data_dir, new_fp)
    assert status == 0, out + err
    status, out, err = verify_pinned(lab, data_dir, old_fp)
    assert status == 2 and "not %s" % old_fp in err and "handed over to %s" % new_fp in err, out + err


def test_an_admin_password_moves_the_keys_too(on_hat_a, module_lab, tmp_path, monkeypatch):
    import firmware.box

    lab = module_lab
    box_dir, _ = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    mcu_b = SimMcu(SimClock())
    monkeypatch.setattr(firmware.box, "hat_vault", lambda data_dir: McuLink(mcu_b.bus))
    with env("LINEKEEPER_RUN_DIR", str(tmp_path / "boot-b")):
        before = tree_digest(data_dir)
        status, _, err = lab.cli(
            "hat-replaced", "--data-dir", data_dir, "--password-file", lab.password_file("wrong password")
        )
        assert status == 2 and "--user admin: no such account or wrong password" in err, err
        assert tree_digest(data_dir) == before
        status, _, err = lab.cli(
            "hat-replaced", "--data-dir", data_dir, "--password-file", lab.password_file()
        )
        assert status == 0, err
        quiet_run(lab, data_dir, mcu_b)
        calls, details = shown(lab, data_dir)
        assert lab.verify(data_dir)[0] == 0
    assert ("in", CALLER["number"], CALLER["name"]) in calls
    assert details["hat_replaced"]["via"] == "password"


def test_a_box_from_before_the_escrow_gets_one_at_its_next_start(on_hat_a, module_lab, tmp_path):
    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    path = os.path.join(data_dir, "storage.key")
    with open(path) as f:
        doc = json.load(f)
    del doc["escrow"]  # as the firmware before the escrow wrote it
    with open(path, "w") as f:
        json.dump(doc, f)
    with env("LINEKEEPER_RUN_DIR", str(tmp_path / "boot")):
        quiet_run(lab, data_dir, mcu_a)
    with open(path) as f:
        after = json.load(f)
    assert (after["nonce"], after["sealed"]) == (doc["nonce"], doc["sealed"])  # same wrapped key
    assert set(after["escrow"]) == {"public_key", "data_key"}


def test_without_an_escrow_copy_or_a_vault_it_says_so(on_hat_a, module_lab, tmp_path, monkeypatch):
    import firmware.box

    lab = module_lab
    box_dir, _ = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    rk = key_file(lab, lab.recovery_key, "rk")
    # The configured HAT is looked up for real: a data dir with no HAT set says so.
    status, _, err = lab.cli("hat-replaced", "--data-dir", data_dir, "--recovery-key-file", rk)
    assert status == 2 and "HAT" in err and len(err.strip().splitlines()) == 1, err
    # Said as what it means, not only "set hat": the simulated board, or no HAT, has
    # nothing in a vault to move.
    assert "keeps its keys on the card, not in a HAT's vault, so there is nothing to move" in err, err
    path = os.path.join(data_dir, "storage.key")
    with open(path) as f:
        doc = json.load(f)
    del doc["escrow"]
    with open(path, "w") as f:
        json.dump(doc, f)
    mcu_b = SimMcu(SimClock())
    monkeypatch.setattr(firmware.box, "hat_vault", lambda data_dir: McuLink(mcu_b.bus))
    before = tree_digest(data_dir)
    status, _, err = lab.cli("hat-replaced", "--data-dir", data_dir, "--recovery-key-file", rk)
    assert status == 2 and "no escrow copy" in err, err
    assert tree_digest(data_dir) == before


def test_once_set_up_only_an_installers_password_moves_the_keys(on_hat_a, module_lab, tmp_path, monkeypatch):
    import firmware.box
    from firmware.storage.keystore import KeyStore
    from web.accounts import Accounts
    from web.db import WebDb
    from web.passwords import CHEAP_COST

    lab = module_lab
    box_dir, _ = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    web_db = WebDb(os.path.join(data_dir, "web.db"))
    accounts = Accounts(web_db, lambda: 0, cost=CHEAP_COST)
    with web_db.tx() as conn:
        accounts.create(conn, "admin", "unused web password 7", ["supervisor"], [1, 2])
        accounts.create(conn, "ivan", "unused web password 7", ["installer"], [])
    web_db.close()
    with lab.unlock(data_dir) as unlocked:
        KeyStore(data_dir, kdf_params=CHEAP_SLOT).add_slot("ivan", "ivan's long password", unlocked)
    mcu_b = SimMcu(SimClock())
    monkeypatch.setattr(firmware.box, "hat_vault", lambda data_dir: McuLink(mcu_b.bus))
    before = tree_digest(data_dir)
    status, _, err = lab.cli("hat-replaced", "--data-dir", data_dir, "--password-file", lab.password_file())
    assert status == 2 and "admin is not an installer" in err, err
    assert tree_digest(data_dir) == before
    ivan = lab.password_file("ivan's long password", name="pw-ivan")
    status, _, err = lab.cli(
        "hat-replaced", "--data-dir", data_dir, "--password-file", ivan, "--user", "ivan"
    )
    assert status == 0, err


# ------------------------------------------------------------------ the key handover
def swap(lab, data_dir, mcu, boot, monkeypatch):
    """Replace the HAT with ``mcu``'s: ``hat-replaced`` with the recovery key; returns the new signer."""
    import firmware.box

    monkeypatch.setattr(firmware.box, "hat_vault", lambda data_dir: McuLink(mcu.bus))
    with env("LINEKEEPER_RUN_DIR", str(boot)):
        status, out, err = lab.cli(
            "hat-replaced",
            "--data-dir",
            data_dir,
            "--recovery-key-file",
            key_file(lab, lab.recovery_key, "rk"),
        )
    assert status == 0 and "handed over" in out, out + err
    return vault_signer(mcu)


def busy_run(lab, data_dir, mcu, boot):
    """The recorder on ``mcu``'s HAT takes the two calls again (new recordings, new entries)."""
    with env("LINEKEEPER_RUN_DIR", str(boot)):
        lab.run(lab.load(lab.scenario_doc(CALLS, lines=2, hat="lk-2lb")), data_dir, vault=McuLink(mcu.bus))


def problems_of(lab, data_dir, boot):
    """``verify`` on the box (its run directory holding the current key): (status, problem lines)."""
    with env("LINEKEEPER_RUN_DIR", str(boot)):
        status, out, err = lab.verify(data_dir)
    return status, [line for line in out.splitlines() if line.strip()]


def append_signed_by(data_dir, signer, boot):
    """A login entry appended with ``signer`` (the audit trail's own code, the box's storage key)."""
    from firmware.storage.audit import AuditLog
    from firmware.storage.fieldseal import load_field_cipher

    cipher = load_field_cipher(data_dir, run_dir=str(boot), create=False)
    audit = AuditLog(
        os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), signer=signer, cipher=cipher
    )
    with audit:
        audit.append("admin", "login", "admin", {"address": "198.51.100.9"}, 1_900_000_000_000_000)
        return audit.last()[0]


def test_the_old_key_signs_nothing_after_its_handover(on_hat_a, module_lab, tmp_path, monkeypatch):
    import sqlite3

    from firmware.evidence import sign_recording
    from firmware.recording.store import RecordingStore

    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    old = vault_signer(mcu_a)  # HAT A's key, as if read out of the old HAT in a drawer
    mcu_b = SimMcu(SimClock())
    swap(lab, data_dir, mcu_b, tmp_path / "boot-b", monkeypatch)
    busy_run(lab, data_dir, mcu_b, tmp_path / "boot-b")
    assert problems_of(lab, data_dir, tmp_path / "boot-b")[0] == 0  # old and new signatures hold
    assert playback_problems(data_dir) == {}  # what the web UI checks before it plays a recording

    # A recording made after the handover, re-signed with the old key as it is; and one
    # sealed before it, cut to partial and re-signed: neither is what the old key signed.
    store = RecordingStore(data_dir, readonly=True)
    try:
        rows = sorted(store.all(), key=lambda r: r["call_id"])
        forged = [dict(rows[-1]), dict(rows[0], state="partial")]
        sigs = [sign_recording(old, r, store.path_of(r["id"]), store.call_row(r["call_id"])) for r in forged]
    finally:
        store.close()
    conn = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    with conn:
        for r, sig in zip(forged, sigs, strict=True):
            conn.execute(
                "UPDATE recordings SET state = ?, signature = ? WHERE id = ?", (r["state"], sig, r["id"])
            )
    conn.close()
    # An audit entry appended after the handover, signed (and its head) with the old key.
    seq = append_signed_by(data_dir, old, tmp_path / "boot-b")
    status, lines = problems_of(lab, data_dir, tmp_path / "boot-b")
    assert status == 1
    assert sorted(lines) == sorted(
        [
            "recording %s (call %s): signed by the replaced key %s, but the audit trail did not see it "
            "sealed so before that key's handover (made or re-signed after it)"
            % (r["id"], r["call_id"], old.fingerprint)
            for r in forged
        ]
        + [
            "audit trail: audit entry %d is signed by the replaced key %s after its handover at entry %d "
            "(a key that no longer signs for this box)" % (seq, old.fingerprint, handover_seq(data_dir)),
            "audit trail: audit head file is not signed by the box's key (written without it)",
        ]
    ), lines


def playback_problems(data_dir):
    """``{recording id: problems}`` as playback and export see them: the store checks each seal
    with the box's key and the keys it took over (as web/remote.py sets it up)."""
    from firmware.handover import box_keys
    from firmware.recording.store import RecordingStore
    from firmware.storage.audit import AuditLog

    store = RecordingStore(data_dir, readonly=True)
    with AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head")) as audit:
        store.verify_key = box_keys(data_dir, read_public_record(data_dir)["public_key"], audit)
    try:
        rows = [r for r in store.all() if r["state"] != "deleted"]
        assert any(r["call_id"] <= 2 for r in rows) and any(r["call_id"] > 2 for r in rows)
        return {r["id"]: p for r in rows if (p := store.evidence_problems(r))}
    finally:
        store.close()


def handover_seq(data_dir, index=-1):
    with open(os.path.join(data_dir, "signing.handover")) as f:
        return json.load(f)["handovers"][index]["audit_seq"]


def test_a_damaged_or_removed_handover_fails_verify(on_hat_a, module_lab, tmp_path, monkeypatch):
    lab = module_lab
    box_dir, _ = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    boot = tmp_path / "boot-b"
    swap(lab, data_dir, SimMcu(SimClock()), boot, monkeypatch)
    path = os.path.join(data_dir, "signing.handover")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[:-20])
    status, lines = problems_of(lab, data_dir, boot)
    assert status == 1 and "signing.handover is damaged" in lines[0], lines
    assert any("its signature does not match" in line for line in lines), lines
    os.remove(path)
    status, lines = problems_of(lab, data_dir, boot)
    assert status == 1 and any("its signature does not match" in line for line in lines), lines


def test_a_handover_made_with_any_other_key_fails(on_hat_a, module_lab, tmp_path):
    from firmware.handover import append_handover, make_handover
    from firmware.signing import load_signer, write_public_record
    from firmware.storage.audit import AuditLog
    from firmware.storage.fieldseal import load_field_cipher

    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    boot = tmp_path / "boot-a"  # the box (HAT A) after a reboot: its keys in RAM
    load_signer(data_dir, vault=McuLink(mcu_a.bus), run_dir=str(boot))
    load_field_cipher(data_dir, vault=McuLink(mcu_a.bus), run_dir=str(boot))
    old = vault_signer(mcu_a)
    # The card holder makes a key, a handover from the box's key to it, and signs with it.
    mallory = Signer(os.urandom(32), "vault")
    with AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head")) as audit:
        seq, digest = audit.last()
    append_handover(data_dir, make_handover(mallory, old.public_key, seq, digest, 0))
    write_public_record(data_dir, mallory)
    forged = append_signed_by(data_dir, mallory, boot)
    status, lines = problems_of(lab, data_dir, boot)
    assert status == 1
    assert lines == [
        "the signing key on record in signing.pub (%s) is not this box's (%s): the card's key "
        "record was replaced, or this is another box's card" % (mallory.fingerprint, old.fingerprint),
        "signing.handover: a handover from %s to %s is not vouched for by this box's key (made "
        "elsewhere, or damaged): ignored" % (old.fingerprint, mallory.fingerprint),
        "audit trail: audit entry %d: its signature does not match (rewritten or re-chained without "
        "the box's key)" % forged,
        "audit trail: audit head file is not signed by the box's key (written without it)",
    ], lines
    # Off the box, with the box's fingerprint pinned: refused too.
    status, out, err = verify_pinned(lab, data_dir, old.fingerprint)
    assert status == 2 and "not %s" % old.fingerprint in err, out + err


def test_two_swaps_chain_and_an_old_export_still_verifies(on_hat_a, module_lab, tmp_path, monkeypatch):
    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    a = vault_signer(mcu_a)
    mcu_b, mcu_c = SimMcu(SimClock()), SimMcu(SimClock())
    b = swap(lab, data_dir, mcu_b, tmp_path / "boot-b", monkeypatch)
    busy_run(lab, data_dir, mcu_b, tmp_path / "boot-b")
    c = swap(lab, data_dir, mcu_c, tmp_path / "boot-c", monkeypatch)
    quiet_run_in(lab, data_dir, mcu_c, tmp_path / "boot-c")
    with open(os.path.join(data_dir, "signing.handover")) as f:
        chain = [(h["old_key"], h["new_key"]) for h in json.load(f)["handovers"]]
    assert [tuple(fingerprint(base64.b64decode(k)) for k in pair) for pair in chain] == [
        (a.fingerprint, b.fingerprint),
        (b.fingerprint, c.fingerprint),
    ]
    assert handover_seq(data_dir, 0) < handover_seq(data_dir, 1)
    assert problems_of(lab, data_dir, tmp_path / "boot-c")[0] == 0
    status, out, err = verify_pinned(lab, data_dir, c.fingerprint)
    assert status == 0, out + err
    # A recording sealed on HAT A, exported on HAT C: checked with only C's fingerprint.
    out_file = tmp_path / "export" / "call.wav"
    out_file.parent.mkdir()
    with env("LINEKEEPER_RUN_DIR", str(tmp_path / "boot-c")):
        status, _, err = lab.export(data_dir, 1, out_file)
    assert status == 0, err
    with open(str(out_file) + ".manifest.json") as f:
        assert len(json.load(f)["handovers"]) == 2
    status, out, err = lab.cli("verify-export", str(out_file), "--key", c.fingerprint)
    assert status == 0, out + err
    # Entries B signed after its own handover to C fail, as A's after A's do.
    seq = append_signed_by(data_dir, b, tmp_path / "boot-c")
    status, lines = problems_of(lab, data_dir, tmp_path / "boot-c")
    assert status == 1 and any(
        "audit entry %d is signed by the replaced key %s" % (seq, b.fingerprint) in line for line in lines
    ), lines


def quiet_run_in(lab, data_dir, mcu, boot):
    with env("LINEKEEPER_RUN_DIR", str(boot)):
        quiet_run(lab, data_dir, mcu)


def test_a_carried_seed_from_the_unreleased_firmware_is_dropped_at_start(on_hat_a, module_lab, tmp_path):
    from firmware.storage.crypto import WRAPPED_KEY_BYTES

    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    path = os.path.join(data_dir, "storage.key")
    with open(path) as f:
        doc = json.load(f)
    doc["escrow"]["signing_seed"] = base64.b64encode(os.urandom(WRAPPED_KEY_BYTES)).decode("ascii")
    with open(path, "w") as f:
        json.dump(doc, f)
    with open(os.path.join(data_dir, "signing.seal"), "wb") as f:
        f.write(os.urandom(60))
    quiet_run_in(lab, data_dir, mcu_a, tmp_path / "boot")
    with open(path) as f:
        assert set(json.load(f)["escrow"]) == {"public_key", "data_key"}
    assert not os.path.exists(os.path.join(data_dir, "signing.seal"))
    assert problems_of(lab, data_dir, tmp_path / "boot")[0] == 0


def test_no_handover_for_a_trail_that_does_not_hold_or_another_key(
    on_hat_a, module_lab, tmp_path, monkeypatch
):
    """The new key vouches only for the box's key, on a trail that holds under it: a wrong
    ``--key`` or a rewritten trail is refused in one line, and nothing is written."""
    import sqlite3

    import firmware.box

    lab = module_lab
    box_dir, mcu_a = on_hat_a
    data_dir = str(tmp_path / "box")
    shutil.copytree(box_dir, data_dir)
    mcu_b = SimMcu(SimClock())
    monkeypatch.setattr(firmware.box, "hat_vault", lambda data_dir: McuLink(mcu_b.bus))
    rk = key_file(lab, lab.recovery_key, "rk")
    other = fingerprint(os.urandom(32))
    with env("LINEKEEPER_RUN_DIR", str(tmp_path / "boot-b")):
        before = tree_digest(data_dir)
        status, _, err = lab.cli(
            "hat-replaced", "--data-dir", data_dir, "--recovery-key-file", rk, "--key", other
        )
        assert status == 2 and "not %s" % other in err and len(err.strip().splitlines()) == 1, err
        assert tree_digest(data_dir) == before
        conn = sqlite3.connect(os.path.join(data_dir, "audit.db"))
        with conn:  # as a card holder can: the triggers are on the card too
            conn.execute("DROP TRIGGER audit_no_update")
            conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
        conn.close()
        before = tree_digest(data_dir)
        status, _, err = lab.cli(
            "hat-replaced",
            "--data-dir",
            data_dir,
            "--recovery-key-file",
            rk,
            "--key",
            vault_signer(mcu_a).fingerprint,
        )
        assert (
            status == 2 and "does not hold under the old key" in err and len(err.strip().splitlines()) == 1
        ), err
        assert tree_digest(data_dir) == before


class _Cut(BaseException):
    """Stands for a power cut (or a card that refused the write): nothing after it runs."""


def test_a_handover_cut_at_any_write_is_finished_by_running_it_again(
    on_hat_a, module_lab, tmp_path, monkeypatch
):
    """The move writes the pin, the handover statement, the storage key, the audit entry
    and the key record, each whole. A cut (or a card error: a full card, say) as each
    begins, then ``hat-replaced`` again: it finishes the move, once - one handover
    statement, one ``hat_replaced`` entry naming both keys - the box starts on HAT B
    and ``verify`` passes. (Before, a cut after the pin left a card that every later
    run called tampered with.)"""
    import firmware.box
    import firmware.hatswap
    from firmware.storage.audit import AuditLog

    lab = module_lab
    box_dir, mcu_a = on_hat_a
    old_fp = vault_signer(mcu_a).fingerprint
    writes = ("repin", "append_handover", "write_public_record", "rewrap")
    real = {name: getattr(firmware.hatswap, name) for name in writes}
    real_append = AuditLog.append
    for cut_at in range(1, len(writes) + 2):
        data_dir = str(tmp_path / ("box-%d" % cut_at))
        shutil.copytree(box_dir, data_dir)
        mcu_b = SimMcu(SimClock())
        new_fp = vault_signer(mcu_b).fingerprint
        boot = tmp_path / ("boot-%d" % cut_at)
        seen = []

        def step(name, call, seen=seen, cut_at=cut_at):
            def counted(*args, **kwargs):
                seen.append(name)
                if len(seen) == cut_at:
                    raise _Cut(name)
                return call(*args, **kwargs)

            return counted

        rk = key_file(lab, lab.recovery_key, "rk")
        with monkeypatch.context() as patch, env("LINEKEEPER_RUN_DIR", str(boot)):
            patch.setattr(firmware.box, "hat_vault", lambda data_dir, mcu=mcu_b: McuLink(mcu.bus))
            with monkeypatch.context() as cut:
                for name in writes:
                    cut.setattr(firmware.hatswap, name, step(name, real[name]))
                cut.setattr(
                    AuditLog,
                    "append",
                    lambda self, *a, **k: (
                        step("audit", real_append)(self, *a, **k)
                        if a[1] == "hat_replaced"
                        else real_append(self, *a, **k)
                    ),
                )
                with pytest.raises(_Cut):
                    lab.cli("hat-replaced", "--data-dir", data_dir, "--recovery-key-file", rk)
            what = "cut as %s began" % seen[-1]
            status, out, err = lab.cli("hat-replaced", "--data-dir", data_dir, "--recovery-key-file", rk)
            assert status == 0, (what, out, err)
            quiet_run(lab, data_dir, mcu_b)
            status, out, err = lab.verify(data_dir)
            assert status == 0, (what, out, err)
            from firmware.box import open_audit

            with open_audit(data_dir) as audit:
                moves = [e.details for e in audit.entries(limit=1000, action="hat_replaced")]
        assert [(m["old_key"], m["new_key"]) for m in moves] == [(old_fp, new_fp)], (what, moves)
        with open(os.path.join(data_dir, "signing.handover")) as f:
            assert len(json.load(f)["handovers"]) == 1, what
        assert fingerprint(read_public_record(data_dir)["public_key"]) == new_fp, what
    # Every write of the move was cut before, the key record last.
    assert seen == ["repin", "append_handover", "rewrap", "audit", "write_public_record"], seen
