"""A key slot's password on the command line is checked before anything of the account is
said, counted and locked out with the web login's, and a lockout it begins is audited.

`export`, `sar` and `hat-replaced` said an account's role (*"ava is not a supervisor"*)
before its password was checked, and every command said an account was disabled before it:
anyone who could run the command learnt, without a password, which names were accounts,
their roles and whether they were disabled. The key slot passwords of `export`, `sar`,
`rekey`, `hat-replaced` and `keystore restore` were neither counted nor stopped by a
lockout, and a lockout begun on the command line was not in the audit trail. Now every
wrong password reads the same after the same work, whatever the name; each try counts with
the web login's (web/consoleguess.py), and the failure that locks is a `login_failed` entry
as the web login's is."""

import os
import shutil
import time

import pytest

import web.passwords
from firmware.cli import main
from firmware.simtime import SIM_CLOCK_NAME
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import KeyStore
from web.accounts import BY_HAND, Accounts
from web.db import WebDb
from web.passwords import CHEAP_COST
from web.throttle import LOCKOUT_AFTER, LOCKOUT_S, Throttle, account_keys

from support.cli import box_with_auditor, secret_file

SLOT_PASSWORD = "correct horse battery 7"
AUDITOR_PASSWORD = "auditor reads trail 42"
DAN_PASSWORD = "dan left in spring 42"
WRONG = "not the password at all"
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]
PASSWORDS = {"sup": SLOT_PASSWORD, "ava": AUDITOR_PASSWORD, "dan": DAN_PASSWORD}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A box set up: one call on line 1; a supervisor "sup" (key slot and account), an
    auditor "ava" (an account, no key slot) and an installer "dan", disabled by an installer."""
    data = box_with_auditor(tmp_path_factory.mktemp("pwfirst"), CALLS, SLOT_PASSWORD, AUDITOR_PASSWORD)
    # Dated on the machine's clock, as on a real box (the web login's throttle reads it).
    os.remove(os.path.join(data, SIM_CLOCK_NAME))
    db = WebDb(os.path.join(data, "web.db"))
    accounts = Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST)
    with db.tx() as conn:
        accounts.create(conn, "dan", DAN_PASSWORD, ["installer"], [])
        accounts.disable(conn, "dan", BY_HAND)
    db.close()
    return data


@pytest.fixture
def data(recorded, tmp_path):
    path = str(tmp_path / "data")
    shutil.copytree(recorded, path)
    return path


def command(name, data, user, password_file, tmp_path):
    """The arguments of ``linekeeper NAME`` run by ``user`` with ``password_file``."""
    who = ["--data-dir", data, "--user", user, "--password-file", password_file]
    out = str(tmp_path / "out")
    if name == "export":
        return ["export", "1", "--out", out + ".wav", "--reason", "complaint ref 1234"] + who
    if name == "sar":
        return ["sar", "--number", "01632960123", "--requester", "Ms Smith (caller)", "--recipient",
                "Ms Smith", "--reason", "subject access request", "--out", out + ".zip"] + who  # fmt: skip
    if name == "restore":
        return ["keystore", "restore", str(tmp_path / "keys-backup.json")] + who
    return [name] + who


def backed_up(data, tmp_path):
    """A key store backup of ``data`` beside it, and the box's key store gone (as a restore
    needs it)."""
    assert main(["keystore", "backup", str(tmp_path / "keys-backup.json"), "--data-dir", data]) == 0
    os.unlink(os.path.join(data, "keys", "keystore.json"))


def run(args, capsys):
    capsys.readouterr()
    status = main(args)
    return status, capsys.readouterr().err


def entries(data, action):
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        return log.entries(limit=100, action=action, newest_first=False)


@pytest.mark.parametrize("name", ["export", "sar", "hat-replaced", "rekey", "restore", "calls"])
def test_a_wrong_password_says_the_same_after_the_same_work_whatever_the_name(
    data, tmp_path, capsys, monkeypatch, name
):
    """A name no account has, a supervisor's, an auditor's (no key slot) and a disabled
    installer's: the same words (the name apart) after as many key slot and hash checks,
    and nothing said of roles nor of being disabled."""
    if name == "restore":
        backed_up(data, tmp_path)
    work = []
    unlock, check = KeyStore.unlock, web.passwords.check_password
    monkeypatch.setattr(KeyStore, "unlock", lambda *a: work.append("slot") or unlock(*a))
    monkeypatch.setattr(web.passwords, "check_password", lambda *a: work.append("hash") or check(*a))
    pw = str(secret_file(tmp_path, "pw", WRONG))
    said, done = {}, {}
    for who in ("ghost", "sup", "ava", "dan"):
        work.clear()
        status, err = run(command(name, data, who, pw, tmp_path), capsys)
        assert status == 2, err
        said[who] = err.replace(who, "NAME")
        done[who] = list(work)
        assert "no such account or wrong password" in err or "does not open with" in err, err
        for told in ("not a supervisor", "not an installer", "disabled", "no account", "no key slot"):
            assert told not in err, err
    assert said["ghost"] == said["sup"] == said["ava"] == said["dan"]
    assert done["ghost"] == done["sup"] == done["ava"] == done["dan"]
    assert not os.path.exists(str(tmp_path / "out.wav")) and not os.path.exists(str(tmp_path / "out.zip"))


@pytest.mark.parametrize(
    "name, who, told",
    [
        ("export", "ava", "linekeeper: call 1 not exported: ava is not a supervisor: only supervisors hear "
         "or export recordings\n"),
        ("sar", "ava", "linekeeper: ava is not a supervisor: only supervisors answer subject access "
         "requests\n"),
        ("hat-replaced", "sup", "linekeeper: sup is not an installer: only installers (or the recovery "
         "key) move the keys to a new HAT: nothing was changed\n"),
        ("hat-replaced", "dan", "linekeeper: account dan is disabled (by an installer): an installer can "
         "enable it on the Users page: nothing was changed\n"),
        ("calls", "dan", "linekeeper: the calls were not printed: account dan is disabled (by an "
         "installer): an installer can enable it on the Users page\n"),
    ],
)  # fmt: skip
def test_a_role_or_a_disabled_account_is_said_once_the_password_is_right(
    data, tmp_path, capsys, name, who, told
):
    pw = str(secret_file(tmp_path, "pw", PASSWORDS[who]))
    status, err = run(command(name, data, who, pw, tmp_path), capsys)
    assert (status, err) == (2, told)
    db = WebDb(os.path.join(data, "web.db"))
    assert not Throttle(db, lambda: time.time_ns() // 1000).counted(["any:" + who])  # not a failure
    db.close()


def _locked_for(data, name):
    db = WebDb(os.path.join(data, "web.db"))
    try:
        return Throttle(db, lambda: time.time_ns() // 1000).locked_s(name)
    finally:
        db.close()


@pytest.mark.parametrize("name", ["export", "sar", "rekey", "hat-replaced", "restore"])
def test_wrong_key_slot_passwords_lock_the_account_out_on_the_command_line_and_the_web(
    data, tmp_path, capsys, name
):
    if name == "restore":
        backed_up(data, tmp_path)
    wrong = str(secret_file(tmp_path, "wrong", WRONG))
    for _ in range(LOCKOUT_AFTER):
        status, err = run(command(name, data, "sup", wrong, tmp_path), capsys)
        assert status == 2, err
    assert _locked_for(data, "sup") > LOCKOUT_S - 60  # the web login is locked out for them too
    right = str(secret_file(tmp_path, "right", SLOT_PASSWORD))
    status, err = run(command(name, data, "sup", right, tmp_path), capsys)
    assert status == 2
    assert "--user sup is locked after 10 failed attempts in a row. Try again in 30 minutes" in err, err
    assert "nothing was" in err, err
    if name == "restore":
        assert not os.path.exists(os.path.join(data, "keys", "keystore.json"))


@pytest.mark.parametrize("name", ["export", "rekey"])
def test_a_lockout_the_web_began_stops_a_key_slot_s_password(data, tmp_path, capsys, name):
    db = WebDb(os.path.join(data, "web.db"))
    throttle = Throttle(db, lambda: time.time_ns() // 1000)
    for _ in range(LOCKOUT_AFTER):  # ten wrong passwords at the web login, from one address
        throttle.failed(account_keys("sup", "192.0.2.7"))
    db.close()
    before = entries(data, "rekey")
    right = str(secret_file(tmp_path, "right", SLOT_PASSWORD))
    status, err = run(command(name, data, "sup", right, tmp_path), capsys)
    assert status == 2 and "--user sup is locked after 10 failed attempts in a row" in err, err
    assert entries(data, "rekey") == before
    assert not os.path.exists(str(tmp_path / "out.wav"))


@pytest.mark.parametrize("name, who", [("calls", "ava"), ("export", "sup"), ("calls", "ghost")])
def test_the_failure_that_locks_an_account_out_on_the_command_line_is_audited(
    data, tmp_path, capsys, name, who
):
    """As the web login's: a `login_failed` entry by anonymous, of the account (a name no
    account has is not kept), saying which counters it locked and for how long; the
    failures before it and the attempts the lockout refuses are not entries."""
    wrong = str(secret_file(tmp_path, "wrong", WRONG))
    for n in range(LOCKOUT_AFTER + 2):
        assert run(command(name, data, who, wrong, tmp_path), capsys)[0] == 2
        if n < LOCKOUT_AFTER - 1:
            assert entries(data, "login_failed") == []
    [entry] = entries(data, "login_failed")
    assert entry.actor == "anonymous"
    details = dict(entry.details)
    assert details.pop("locked_s") > LOCKOUT_S - 60
    assert "lock" in details.pop("locked") and details.pop("address") == "console"
    assert details.pop("via") == "cli"
    if who == "ghost":
        assert entry.target is None and details == {"no_account": True}
    else:
        assert entry.target == who and details == {}


@pytest.mark.parametrize("name", ["restore", "rekey", "verify"])
def test_a_damaged_web_db_does_not_stop_the_commands_that_recover_a_box(data, tmp_path, capsys, name):
    """The password checks read web.db (the account, its lockout): a web.db the card damaged
    stopped `keystore restore`, `rekey` and `verify` with a storage error, though the key
    slot's password is what opens the keys, and these are the commands that recover a box.
    They go on, saying what was not checked."""
    if name == "restore":
        backed_up(data, tmp_path)
    with open(os.path.join(data, "web.db"), "r+b") as f:
        f.write(b"this is not an SQLite database any more" * 100)
    pw = str(secret_file(tmp_path, "pw", SLOT_PASSWORD))
    status, err = run(command(name, data, "sup", pw, tmp_path), capsys)
    assert status == 0, err
    assert "web.db cannot be read" in err and "lockout" in err
