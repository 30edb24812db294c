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
        status, _, err = lab.cli("calls", "--data-dir", data_dir)
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
    assert status == 2 and "not %s" % old_fp in err, out + err


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
        assert status == 2 and "wrong user name or password" in err, err
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
        accounts.create(conn, "admin", "unused web password", ["supervisor"], [1, 2])
        accounts.create(conn, "ivan", "unused web password", ["installer"], [])
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
