"""Recovery keys typed on the command line are counted box-wide, and wait after five wrong.

`hat-replaced` and `keystore restore` took `--recovery-key-file` and tried every key given:
wrong recovery keys could be tried without limit, while a key slot's password there counted
towards the web login's lockout. The recovery key is no account's: its tries count against
the box's recovery key on the console (web/consoleguess.py), the failure that sets a wait
is a `login_failed` entry, and the right key clears the count."""

import os
import shutil
import time

import pytest

import firmware.cli
from firmware.cli import main
from firmware.simtime import SIM_CLOCK_NAME
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import KeyStore, format_recovery_key
from web.consoleguess import RECOVERY_KEYS
from web.db import WebDb
from web.throttle import FREE_FAILURES, Throttle

from support.cli import box_with_auditor, secret_file

SLOT_PASSWORD = "correct horse battery 7"
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]
FREE = FREE_FAILURES["recovery"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A box set up (supervisor "sup", auditor "ava"), with a recovery key of its own."""
    data = box_with_auditor(tmp_path_factory.mktemp("rkey"), CALLS, SLOT_PASSWORD, "auditor reads trail 42")
    os.remove(os.path.join(data, SIM_CLOCK_NAME))
    store = KeyStore(data)
    key = store.unlock("sup", SLOT_PASSWORD)
    recovery = store.new_recovery_key(key)
    key.forget()
    return data, recovery


@pytest.fixture
def box(recorded, tmp_path, monkeypatch):
    """A copy of the box, its key store backed up beside it and gone (as a restore needs
    it), and the command line's clock held still (``clock[0]``, µs) so waits are exact."""
    source, recovery = recorded
    data = str(tmp_path / "data")
    shutil.copytree(source, data)
    clock = [time.time_ns() // 1000]
    monkeypatch.setattr(firmware.cli, "_wall_us", lambda: clock[0])
    return data, recovery, clock


def wrong_key(n):
    return format_recovery_key(bytes([n]) * 16)


def command(name, data, key_file, tmp_path):
    if name == "restore":
        return ["keystore", "restore", str(tmp_path / "keys-backup.json"), "--data-dir", data,
                "--recovery-key-file", key_file]  # fmt: skip
    return ["hat-replaced", "--data-dir", data, "--recovery-key-file", key_file]


def run(args, capsys):
    capsys.readouterr()
    status = main(args)
    return status, capsys.readouterr().err


def failures(data):
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        return log.entries(limit=100, action="login_failed", newest_first=False)


def counted(data, clock):
    db = WebDb(os.path.join(data, "web.db"))
    try:
        return Throttle(db, lambda: clock[0]).counted(RECOVERY_KEYS)
    finally:
        db.close()


@pytest.mark.parametrize("name", ["hat-replaced", "restore"])
def test_wrong_recovery_keys_wait_after_five_and_the_wait_is_audited(box, tmp_path, capsys, name):
    data, recovery, clock = box
    if name == "restore":
        assert main(["keystore", "backup", str(tmp_path / "keys-backup.json"), "--data-dir", data]) == 0
        os.unlink(os.path.join(data, "keys", "keystore.json"))
    for n in range(FREE):
        status, err = run(
            command(name, data, str(secret_file(tmp_path, "k%d" % n, wrong_key(n))), tmp_path), capsys
        )
        assert status == 2 and "not the recovery key of this box" in err, err
        if n < FREE - 1:
            assert failures(data) == []
    # The fifth set a wait: its entry says so, by nobody (the key is no account's).
    [entry] = failures(data)
    assert entry.actor == "anonymous" and entry.target is None
    assert dict(entry.details) == {
        "field": "recovery key",
        "address": "console",
        "via": "cli",
        "locked": ["recovery"],
        "locked_s": 1,
    }
    # While it waits, even the right key is not checked, and nothing is done.
    right = str(secret_file(tmp_path, "right", recovery))
    status, err = run(command(name, data, right, tmp_path), capsys)
    assert status == 2, err
    assert "--recovery-key-file: too many wrong recovery keys on this box's command line; wait 1 s" in err
    assert "nothing was changed" in err
    assert len(failures(data)) == 1
    if name == "restore":
        assert not os.path.exists(os.path.join(data, "keys", "keystore.json"))
    # Once it is over, a sixth wrong key waits twice as long.
    clock[0] += 1_000_000
    status, err = run(command(name, data, str(secret_file(tmp_path, "k9", wrong_key(9))), tmp_path), capsys)
    assert status == 2 and "not the recovery key of this box" in err, err
    assert failures(data)[-1].details["locked_s"] == 2


def test_the_right_recovery_key_clears_the_count(box, tmp_path, capsys):
    data, recovery, clock = box
    assert main(["keystore", "backup", str(tmp_path / "keys-backup.json"), "--data-dir", data]) == 0
    os.unlink(os.path.join(data, "keys", "keystore.json"))
    for n in range(FREE - 1):
        run(command("restore", data, str(secret_file(tmp_path, "k%d" % n, wrong_key(n))), tmp_path), capsys)
    assert counted(data, clock)
    status, err = run(
        command("restore", data, str(secret_file(tmp_path, "right", recovery)), tmp_path), capsys
    )
    assert status == 0, err
    assert not counted(data, clock)


def test_a_mistyped_recovery_key_is_not_counted(box, tmp_path, capsys):
    data, recovery, clock = box
    typo = recovery[:-1] + ("A" if recovery[-1] != "A" else "B")
    for _ in range(FREE + 1):
        status, err = run(
            command("hat-replaced", data, str(secret_file(tmp_path, "t", typo)), tmp_path), capsys
        )
        assert status == 2 and "wait" not in err, err
    assert not counted(data, clock)
