"""An auditor runs the auditors' commands with the password of their account.

Only supervisors hold a key slot (docs/security.md), and the commands that need no key,
only to know who runs them (audit-export, breach-scope, calls, report, year-review), took
a key slot's password alone: on a box set up, every auditor was refused "the password ...
does not open the key store", though docs/operating.md has an auditor run
`linekeeper breach-scope --user AUDITOR --password-file FILE`. The account's password hash
now proves an account that has no key slot, as the web UI's login checks it."""

import json
import os
import shutil
import time

import pytest

from firmware.cli import main
from firmware.storage.audit import AuditLog
from web.accounts import Accounts
from web.db import WebDb
from web.passwords import CHEAP_COST

from support.cli import box_with_auditor

SLOT_PASSWORD = "correct horse battery 7"
AUDITOR_PASSWORD = "auditor reads trail 42"
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]
COMMANDS = {
    "audit_export": ["audit-export", "{out}.csv"],
    "breach_scope": ["breach-scope", "sup", "{out}.csv", "--from", "2026-03-01", "--to", "2026-03-31"],
    "list_viewed": ["calls"],
    "report": [
        "report",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--format",
        "json",
        "--out",
        "{out}.json",
    ],
    "year_review": ["year-review", "--format", "json", "--out", "{out}.json"],
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A box set up: one call on line 1, a supervisor's key slot and account, and an
    auditor's account, which has no key slot."""
    data = box_with_auditor(tmp_path_factory.mktemp("auditor"), CALLS, SLOT_PASSWORD, AUDITOR_PASSWORD)
    return data


@pytest.fixture
def data(recorded, tmp_path):
    path = str(tmp_path / "data")
    shutil.copytree(recorded, path)
    return path


def run(data, command, password, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    args = [a.format(out=tmp_path / "out") for a in COMMANDS[command]]
    return main(args + ["--data-dir", data, "--user", "ava", "--password-file", str(pw)])


def entries(data, command):
    action = "report" if command == "year_review" else command  # (its document: year_review)
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        return [(e.actor, e.details) for e in log.entries(limit=100, action=action, newest_first=False)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_auditor_is_proven_by_the_password_of_their_account(data, tmp_path, capsys, command):
    assert run(data, command, AUDITOR_PASSWORD, tmp_path) == 0, capsys.readouterr().err
    [(actor, details)] = entries(data, command)
    assert actor == "ava" and "refused" not in details


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_wrong_password_of_an_auditor_is_refused(data, tmp_path, capsys, command):
    capsys.readouterr()
    assert run(data, command, "not the auditor's password 1", tmp_path) == 2
    err = capsys.readouterr().err
    assert "--user ava: no such account or wrong password" in err and len(err.splitlines()) == 1, err
    assert not any("refused" not in details for _, details in entries(data, command))
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out")]


def test_a_supervisors_account_password_is_not_taken_for_their_key_slot(data, tmp_path, capsys):
    """A supervisor is proven by their key slot only: a password their slot refuses and
    their account's hash takes is a slot altered on the card, never a proof."""
    db = WebDb(os.path.join(data, "web.db"))
    with db.tx() as conn:
        Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST).set_password(
            conn, "sup", "web only 99 password"
        )
    db.close()
    pw = tmp_path / "pw"
    pw.write_text("web only 99 password\n")
    pw.chmod(0o600)
    capsys.readouterr()
    assert main(["calls", "--data-dir", data, "--user", "sup", "--password-file", str(pw)]) == 2
    assert "--user sup: no such account or wrong password" in capsys.readouterr().err


@pytest.mark.parametrize("who, password", [("ava", AUDITOR_PASSWORD), ("sup", SLOT_PASSWORD)])
def test_a_password_an_installer_set_and_its_owner_did_not_change_proves_nobody(
    data, tmp_path, capsys, who, password
):
    """The installer who set it knows it too: the trail would name its owner. The web UI
    asks for a new one at the first login; the command line refuses it until then."""
    db = WebDb(os.path.join(data, "web.db"))
    with db.tx() as conn:
        Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST).set_password(
            conn, who, password, must_change="set_by_other"
        )
    db.close()
    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    capsys.readouterr()
    assert main(["calls", "--data-dir", data, "--user", who, "--password-file", str(pw)]) == 2
    err = capsys.readouterr().err
    assert "--user %s still has the password an installer set" % who in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not any("refused" not in details for _, details in entries(data, "list_viewed"))


def verify(data, password, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    return main(["verify", "--data-dir", data, "--user", "ava", "--password-file", str(pw)])


def test_an_auditor_runs_verify_with_the_password_of_their_account(data, tmp_path, capsys):
    """docs/evidence.md has `verify --password-file PW --user NAME` run on the box; an
    auditor doing so was refused "no such account or wrong password" (verify took a key
    slot's password alone), and each run counted as a wrong password: the eleventh was
    refused "locked after 10 failed attempts", and so was the auditor's web login for 30
    minutes. Their password is taken; they hold no key, so the recordings are checked by
    signature, size and SHA-256, and the summary says so."""
    for _ in range(11):
        capsys.readouterr()
        assert verify(data, AUDITOR_PASSWORD, tmp_path) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        "1 recordings (ava holds no recording key: each checked by its signature, size and "
        "SHA-256, none opened), the audit trail and the deletion log are intact"
    ), out
    # Never counted as a wrong password: the account still logs in (here, the calls command).
    assert run(data, "list_viewed", AUDITOR_PASSWORD, tmp_path) == 0, capsys.readouterr().err


def test_verify_refuses_a_wrong_password_of_an_auditor(data, tmp_path, capsys):
    capsys.readouterr()
    assert verify(data, "not the auditor's password 1", tmp_path) == 2
    err = capsys.readouterr().err
    assert "--user ava: no such account or wrong password" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("who", ["ava", "sup"])
def test_config_import_and_keystore_backup_name_an_installer_only(data, tmp_path, capsys, who):
    """Root runs both on the box; --user names who did it in the trail, once proven. An
    auditor's (or a supervisor's) proven password was taken: `config import --user ava` changed
    the recording rules, retention and consent notice with the trail saying the auditor did,
    whose role changes nothing (on the web only an installer changes them, and backs up the
    key store). Refused now, after the password, saying so; nothing changed or written."""
    from firmware.config import load_config

    cfg = str(tmp_path / "cfg.json")
    assert main(["config", "export", cfg, "--data-dir", data]) == 0
    with open(cfg) as f:
        doc = json.load(f)
    before = load_config(data).preroll_ms
    doc["config"]["preroll_ms"] = before + 500
    with open(cfg, "w") as f:
        json.dump(doc, f)
    pw = tmp_path / "pw"
    pw.write_text((AUDITOR_PASSWORD if who == "ava" else SLOT_PASSWORD) + "\n")
    pw.chmod(0o600)
    how = ["--data-dir", data, "--user", who, "--password-file", str(pw)]
    capsys.readouterr()
    assert main(["config", "import", cfg, *how]) == 2
    err = capsys.readouterr().err
    assert err == (
        "linekeeper: --user %s is not an installer: only an installer changes the box's "
        "configuration, as on the Rules, Consent, Retention and Settings pages (leave --user "
        "out and the audit trail names cli, root on the box) — nothing was changed\n" % who
    ), err
    assert load_config(data).preroll_ms == before
    backup = tmp_path / "ks.bak"
    assert main(["keystore", "backup", str(backup), *how]) == 2
    err = capsys.readouterr().err
    assert err == (
        "linekeeper: --user %s is not an installer: only an installer backs up the key store, "
        "as in Settings (leave --user out and the audit trail names cli, root on the box) — "
        "nothing was written\n" % who
    ), err
    assert not backup.exists()
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        assert not log.entries(limit=10, action="config_change") and not log.entries(
            limit=10, action="key_backup"
        )
