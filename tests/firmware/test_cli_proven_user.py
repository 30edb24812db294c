"""The name an audit entry of the command line records is one that was checked.

`linekeeper config import` and `keystore backup` run as root on the box, without an
account: their entries name `cli`. A `--user` is named only when the password of its key
slot (`--password-file`) opens it, and on a box set up its account is there and enabled.
Both took `--user NAME` as typed: `--user ghost` put `ghost` in the trail, which no account
or key slot had."""

import json
import os
import time

import pytest

from firmware.cli import main
from firmware.config import BoxConfig, load_config, save_config
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore
from web.accounts import BY_HAND, Accounts
from web.db import WebDb
from web.passwords import CHEAP_COST

PASSWORD = "correct horse battery 7"


def secret_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def entries(data, exports=False):
    """The box's entries as ``(actor, action)``; without ``exports``, none of its
    ``config_export`` entries (the fixture's export, which made the file to import)."""
    if not os.path.exists(os.path.join(data, "audit.db")):
        return []
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        found = [(e.actor, e.action) for e in log.entries(limit=100, newest_first=False)]
    return [e for e in found if exports or e[1] != "config_export"]


@pytest.fixture
def box(tmp_path):
    """``(data dir, a configuration file to import, admin's password file)``: a box with
    admin's key slot and no web UI accounts yet (`linekeeper init`, not set up)."""
    data = str(tmp_path / "box")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    save_config(data, BoxConfig(preroll_ms=1500))
    out = str(tmp_path / "cfg.json")
    assert main(["config", "export", out, "--data-dir", data]) == 0
    doc = json.loads(open(out).read())
    doc["config"]["preroll_ms"] = 2500
    with open(out, "w") as f:
        json.dump(doc, f)
    return data, out, secret_file(tmp_path, "pw", PASSWORD)


def config_import(data, doc, *how):
    return main(["config", "import", doc, "--data-dir", data, *how])


def keystore_backup(data, out, *how):
    return main(["keystore", "backup", str(out), "--data-dir", data, *how])


def test_without_user_the_entries_name_cli(box, tmp_path):
    data, doc, _ = box
    assert config_import(data, doc) == 0
    assert keystore_backup(data, tmp_path / "ks.bak") == 0
    assert entries(data, exports=True) == [
        ("cli", "config_export"),
        ("cli", "config_change"),
        ("cli", "key_backup"),
    ]


@pytest.mark.parametrize("command", ["config import", "keystore backup"])
def test_a_user_typed_without_a_password_is_refused_and_nothing_is_done(box, tmp_path, capsys, command):
    data, doc, _ = box
    capsys.readouterr()
    if command == "config import":
        assert config_import(data, doc, "--user", "ghost") == 2
        nothing = "nothing was changed"
    else:
        assert keystore_backup(data, tmp_path / "ks.bak", "--user", "ghost") == 2
        nothing = "nothing was written"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--user ghost must be proven" in err and "--password-file" in err
    assert err.rstrip().endswith(nothing)
    assert entries(data) == [] and load_config(data).preroll_ms == 1500
    assert not (tmp_path / "ks.bak").exists()


@pytest.mark.parametrize("command", ["config import", "keystore backup"])
@pytest.mark.parametrize("who", ["ghost", "admin"])
def test_a_wrong_password_or_unknown_user_is_refused_and_nothing_is_done(box, tmp_path, capsys, command, who):
    data, doc, _ = box
    wrong = secret_file(tmp_path, "wrong", "not the password at all" if who == "admin" else PASSWORD)
    how = ("--user", who, "--password-file", wrong)
    capsys.readouterr()
    if command == "config import":
        assert config_import(data, doc, *how) == 2
    else:
        assert keystore_backup(data, tmp_path / "ks.bak", *how) == 2
    err = capsys.readouterr().err
    # The same words for a name no account or key slot has as for a wrong password.
    assert err.count("\n") == 1 and "--user %s: no such account or wrong password" % who in err
    assert err.count("nothing was") == 1, err
    assert entries(data) == [] and load_config(data).preroll_ms == 1500
    assert not (tmp_path / "ks.bak").exists()


def test_a_password_file_without_user_names_the_key_slots_when_none_is_admin(tmp_path, capsys):
    """The docs' `linekeeper repair` and `verify --data-dir … --password-file …` (after a
    power cut, a HAT replacement): --user is admin unless given, and the setup wizard's first account is
    whatever the installer named it. A slot of no such name said "a wrong password, or no
    key slot of that name", which sent the technician to retype a right password: it says
    that admin is the default and to give their own name (naming no account, as a wrong
    password's words do not)."""
    data = str(tmp_path / "box")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("tech", PASSWORD)
    pw = secret_file(tmp_path, "pw", PASSWORD)
    capsys.readouterr()
    assert main(["repair", "--data-dir", data, "--password-file", pw]) == 2
    err = capsys.readouterr().err
    assert "--user admin: no such account or wrong password (the password in %s)" % pw in err, err
    assert "(admin is the user when --user is not given: give --user and your own account's name)" in err
    assert "tech" not in err  # no account named: the words are a wrong password's
    assert main(["repair", "--data-dir", data, "--password-file", pw, "--user", "tech"]) == 0


def test_a_user_proven_by_their_password_is_named(box, tmp_path):
    data, doc, pw = box
    assert config_import(data, doc, "--user", "admin", "--password-file", pw) == 0
    assert keystore_backup(data, tmp_path / "ks.bak", "--user", "admin", "--password-file", pw) == 0
    assert entries(data) == [("admin", "config_change"), ("admin", "key_backup")]
    assert load_config(data).preroll_ms == 2500
    # The export (which writes the number rules in clear) names who ran it too.
    assert main(["config", "export", str(tmp_path / "b.json"), "--data-dir", data, "--user", "admin"]
                + ["--password-file", pw]) == 0  # fmt: skip
    assert entries(data, exports=True)[-1] == ("admin", "config_export")


def test_a_password_file_without_user_is_refused(box, tmp_path, capsys):
    data, doc, pw = box
    capsys.readouterr()
    assert config_import(data, doc, "--password-file", pw) == 2
    assert "--password-file without --user" in capsys.readouterr().err
    assert entries(data) == [] and load_config(data).preroll_ms == 1500


@pytest.mark.parametrize("command", ["config import", "keystore backup"])
def test_on_a_box_set_up_only_an_enabled_account_is_named(box, tmp_path, capsys, command):
    data, doc, pw = box
    db = WebDb(os.path.join(data, "web.db"))
    accounts = Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST)
    with db.tx() as conn:
        accounts.create(conn, "ivan", "unused web password 7", ["installer"], [])
    how = ("--user", "admin", "--password-file", pw)

    def run():
        capsys.readouterr()
        if command == "config import":
            status = config_import(data, doc, *how)
        else:
            status = keystore_backup(data, tmp_path / "ks.bak", *how)
        return status, capsys.readouterr().err

    status, err = run()  # admin's key slot opens, but no account is admin's
    assert status == 2 and "admin has no account on this box" in err
    with db.tx() as conn:
        # A key store backup asks an installer who is a supervisor too, as the Settings page does.
        accounts.create(conn, "admin", "unused web password 7", ["installer", "supervisor"], [])
    status, err = run()  # an account of that name: admin is proven
    assert status == 0, err
    if command == "keystore backup":
        os.unlink(tmp_path / "ks.bak")
    with db.tx() as conn:
        accounts.disable(conn, "admin", BY_HAND)
    db.close()
    done = [e for e in entries(data) if e[1] in ("config_change", "key_backup")]
    assert done == [("admin", "config_change" if command == "config import" else "key_backup")]
    status, err = run()
    assert status == 2 and "account admin is disabled" in err
    assert [e for e in entries(data) if e[1] in ("config_change", "key_backup")] == done
    assert not (tmp_path / "ks.bak").exists()


# The commands that audit their refusals (export, audit-export, breach-scope, report,
# year-review) wrote them by `--user` as typed, before or because its password was not
# checked: an entry by `ghost`. They now name an account's user only, as sar's refusals and
# the web UI's failed logins do; a name no account has is kept out of the trail (it may be a
# password typed in the name's place), the entry by `anonymous` saying `no_account`.
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]
REFUSING = {
    "export": ["export", "1", "--out", "{out}.wav", "--reason", "complaint ref 1234"],
    "audit_export": ["audit-export", "{out}.csv"],
    "breach_scope": ["breach-scope", "sam", "{out}.csv", "--from", "2026-03-01", "--to", "2026-03-31"],
    "report": ["report", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"]
    + ["--out", "{out}.json"],
    "year_review": ["year-review", "--format", "json", "--out", "{out}.json"],
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A box with one recorded call on line 1 and admin's key slot, not set up."""
    root = tmp_path_factory.mktemp("refusals")
    data = str(root / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    (root / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": CALLS})
    )
    assert main(["sim", str(root / "s.json"), "--data-dir", data]) == 0
    return data


@pytest.fixture
def copy(recorded, tmp_path):
    import shutil

    path = str(tmp_path / "data")
    shutil.copytree(recorded, path)
    return path


def refused(data, command, user, password, tmp_path):
    args = [a.format(out=tmp_path / "out") for a in REFUSING[command]]
    pw = secret_file(tmp_path, "given", password)
    assert main(args + ["--data-dir", data, "--user", user, "--password-file", pw]) == 2
    action = "report" if command == "year_review" else command
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        entry = log.entries(limit=1, action=action)[0]
    assert "refused" in entry.details
    return entry


@pytest.mark.parametrize("command", sorted(REFUSING))
def test_a_refusal_of_a_name_no_key_slot_has_names_no_one(copy, tmp_path, command):
    # A box not set up: the key slots' owners are its users; ghost has none.
    entry = refused(copy, command, "ghost", PASSWORD, tmp_path)
    assert entry.actor == "anonymous" and entry.details["no_account"] is True
    assert "ghost" not in json.dumps(entry.details)
    entry = refused(copy, command, "admin", "not the password at all", tmp_path)
    assert entry.actor == "admin" and "no_account" not in entry.details  # a try at admin's slot


@pytest.mark.parametrize("command", sorted(REFUSING))
def test_a_refusal_of_a_name_no_account_has_names_no_one(copy, tmp_path, command):
    db = WebDb(os.path.join(copy, "web.db"))
    accounts = Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST)
    with db.tx() as conn:
        accounts.create(conn, "ivan", "unused web password 7", ["installer"], [])
    db.close()
    entry = refused(copy, command, "ghost", PASSWORD, tmp_path)
    assert entry.actor == "anonymous" and entry.details["no_account"] is True
    assert entry.details["refused"] == "--user has no account on this box"
    assert "ghost" not in json.dumps(entry.details)
    entry = refused(copy, command, "ivan", PASSWORD, tmp_path)  # an installer: not theirs to do
    assert entry.actor == "ivan" and "no_account" not in entry.details


@pytest.mark.parametrize("command", ["calls", "audit-export"])
def test_a_command_that_only_asks_who_runs_it_says_admin_is_the_default_too(tmp_path, capsys, command):
    """A supervisor's `linekeeper calls --data-dir … --password-file …` without --user was
    refused "--user admin: no such account or wrong password", naming an account they never
    typed, with nothing to say it was --user's default: `repair` and `verify` said so, the
    commands that only prove who runs them (calls, report, audit-export, breach-scope,
    year-review) dropped it. It names no account either way."""
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock

    data = str(tmp_path / "box")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("sue", PASSWORD)
    CallLog(os.path.join(data, "calls.db"), SimClock()).close()
    pw = secret_file(tmp_path, "pw", PASSWORD)
    args = {"calls": ["calls"], "audit-export": ["audit-export", str(tmp_path / "audit.csv")]}[command]
    capsys.readouterr()
    assert main([*args, "--data-dir", data, "--password-file", pw]) == 2
    err = capsys.readouterr().err
    assert "--user admin: no such account or wrong password (the password in %s)" % pw in err, err
    assert "(admin is the user when --user is not given: give --user and your own account's name)" in err
    assert "sue" not in err and err.count("\n") == 1
    # Typed, admin is a name like another: a wrong password's words alone.
    assert main([*args, "--data-dir", data, "--password-file", pw, "--user", "ghost"]) == 2
    assert "admin is the user" not in capsys.readouterr().err


def test_a_key_store_backup_names_only_an_installer_the_settings_page_would_give_it_to(box, tmp_path, capsys):
    """The Settings page gives the backup only to an installer who is also a supervisor, their
    key slot opening every line (its password slots can be guessed offline: docs/keys.md);
    `--user` took any installer, and the trail named them as having made it. Refused as the
    other refusals of --user are, naming what is wrong, nothing written nor audited."""
    data, _, pw = box
    db = WebDb(os.path.join(data, "web.db"))
    accounts = Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST)
    with db.tx() as conn:
        accounts.create(conn, "admin", "unused web password 7", ["installer"], [])
        accounts.create(conn, "ivan", "unused web password 7", ["installer", "supervisor"], [1])
    store = KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1))
    unlocked = store.unlock("admin", PASSWORD)
    try:
        store.add_slot("ivan", PASSWORD, unlocked, [1])  # line 1 alone
    finally:
        unlocked.forget()
    out = tmp_path / "ks.bak"
    for user in ("admin", "ivan"):  # an installer alone; one whose key opens line 1 alone
        capsys.readouterr()
        assert keystore_backup(data, out, "--user", user, "--password-file", pw) == 2
        err = capsys.readouterr().err
        assert err == (
            "linekeeper: --user %s is not an installer who is also a supervisor with a key slot that "
            "opens every line: only such an installer backs up the key store, as in Settings (leave "
            "--user out and the audit trail names cli, root on the box) — nothing was written\n" % user
        )
        assert not out.exists() and [e for e in entries(data) if e[1] == "key_backup"] == []
    with db.tx() as conn:
        accounts.update(conn, "admin", ["installer", "supervisor"], [])
    db.close()
    assert keystore_backup(data, out, "--user", "admin", "--password-file", pw) == 0
    assert [e for e in entries(data) if e[1] == "key_backup"] == [("admin", "key_backup")]
