"""A password an installer set, and its owner has not changed at the web login, opens no
key slot to act in its owner's name from the command line.

`_prove` refused it for the commands that only need to know who runs them (calls,
audit-export, breach-scope, report, year-review), but `export` and `sar` open the key slot
themselves: an installer who had set a supervisor's password still exported that
supervisor's recordings, or released a subject access bundle of their calls, with the
trail naming the supervisor. They refuse it now, audited as their other refusals are; so do
rekey, hat-replaced and keystore restore, which open the key slot too and audit in its
owner's name."""

import json
import os
import shutil

import pytest

from firmware import cli
from firmware.box import open_audit
from firmware.storage.keystore import Argon2Params, KeyStore
from web.accounts import Accounts
from web.db import WebDb
from web.passwords import CHEAP_COST

PASSWORD = "correct horse battery 7"
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]
SAID = "--user sup still has the password an installer set"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A box with one recorded call on line 1, and sup's key slot and account (line 1)."""
    root = tmp_path_factory.mktemp("installers")
    data = str(root / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("sup", PASSWORD)
    (root / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": CALLS})
    )
    assert cli.main(["sim", str(root / "s.json"), "--data-dir", data]) == 0
    web_db = WebDb(os.path.join(data, "web.db"))
    with web_db.tx() as conn:
        Accounts(web_db, lambda: 1_772_000_000_000_000, cost=CHEAP_COST).create(
            conn, "sup", PASSWORD, ["supervisor"], [1]
        )
    web_db.close()
    return data


@pytest.fixture
def box(made, tmp_path):
    """A copy of the box, sup's password file, and ``set_by_installer()`` marking sup's
    password as one an installer set."""
    path = str(tmp_path / "data")
    shutil.copytree(made, path)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)

    def set_by_installer():
        web_db = WebDb(os.path.join(path, "web.db"))
        Accounts(web_db, lambda: 0).require_change("sup", "set_by_other")
        web_db.close()

    return path, str(pw), set_by_installer


def test_an_export_with_a_password_an_installer_set_is_refused_and_audited(box, tmp_path, capsys):
    path, pw, set_by_installer = box
    out = tmp_path / "call.wav"
    args = ["export", "1", "--out", str(out), "--data-dir", path, "--user", "sup", "--password-file", pw]
    args += ["--reason", "complaint ref 1234"]
    assert cli.main(args) == 0  # its own password: exported
    os.remove(out)  # (an export never replaces a file, its manifest neither)
    os.remove(str(out) + ".manifest.json")
    set_by_installer()
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "call 1 not exported: " + SAID in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not os.path.exists(str(out) + ".manifest.json")
    with open_audit(path) as audit:
        entry = audit.entries(limit=5, action="export")[0]
    assert entry.actor == "sup" and SAID in entry.details["refused"]


def test_a_subject_access_release_with_a_password_an_installer_set_is_refused_and_audited(
    box, tmp_path, capsys
):
    path, pw, set_by_installer = box
    set_by_installer()
    out = tmp_path / "smith.zip"
    args = ["sar", "--data-dir", path, "--user", "sup", "--password-file", pw, "--number", "01632960123"]
    args += ["--out", str(out), "--requester", "Ms Smith", "--recipient", "Ms Smith"]
    args += ["--reason", "subject access request"]
    for more in (["--letter"], ["--earlier"], []):
        capsys.readouterr()
        assert cli.main(args + more) == 2
        assert SAID in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["data", "pw"]  # no bundle, nor one begun beside it
    with open_audit(path) as audit:
        assert not audit.entries(limit=5, action="disclosure_search")
        assert not audit.entries(limit=5, action="disclosure_preview")
        refused = audit.entries(limit=5, action="disclosure_refused")
    assert len(refused) == 3 and all(e.actor == "sup" and SAID in json.dumps(e.details) for e in refused)


def test_a_cut_password_change_whose_note_cannot_be_read_here_proves_nobody(box, tmp_path, capsys):
    """A note of a change cut short says whether an installer set the slot's password; one
    sealed with a storage key out of reach here is not taken as saying no."""
    import sqlite3

    from firmware.storage.fieldseal import PREFIX as SEALED

    path, pw, _ = box
    db = sqlite3.connect(os.path.join(path, "web.db"))
    with db:
        db.execute("INSERT INTO site (key, value) VALUES ('password_change:sup', ?)", (SEALED + "AAAA",))
    db.close()
    capsys.readouterr()
    assert cli.main(["calls", "--data-dir", path, "--user", "sup", "--password-file", pw]) == 2
    err = capsys.readouterr().err
    assert "a change of --user sup's password was cut short, and its note cannot be read here" in err, err
    assert len(err.strip().splitlines()) == 1, err


def _tree(path):
    """Every file under ``path``, by its path there, with its bytes; not SQLite's shared
    memory files, nor its empty write-ahead logs (a database read makes them)."""
    files = {}
    for folder, _, names in os.walk(path):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                files[os.path.relpath(os.path.join(folder, name), path)] = f.read()
    return {k: v for k, v in files.items() if not k.endswith("-shm") and not (k.endswith("-wal") and not v)}


@pytest.mark.parametrize("command", ["rekey", "hat-replaced", "keystore restore"])
def test_a_password_an_installer_set_rekeys_moves_and_restores_no_keys(box, tmp_path, capsys, command):
    """rekey, hat-replaced and keystore restore open --user's key slot themselves and audit
    under their name: the installer who had set sup's password replaced every key, moved the
    keys to a new HAT or put a key store back as sup. Refused as their other refusals are
    (one line, exit 2, not audited); the recovery key still runs the last two."""
    import sqlite3

    path, pw, set_by_installer = box
    db = sqlite3.connect(os.path.join(path, "web.db"))
    with db:  # only an installer moves the keys to a new HAT
        db.execute("UPDATE users SET roles = 'installer,supervisor' WHERE name = 'sup'")
    db.close()
    args = [*command.split(), "--data-dir", path, "--user", "sup", "--password-file", pw]
    if command == "keystore restore":
        backup = str(tmp_path / "keys.backup")
        assert cli.main(["keystore", "backup", backup, "--data-dir", path]) == 0
        os.remove(os.path.join(path, "keys", "keystore.json"))
        args.insert(2, backup)
    set_by_installer()
    before = _tree(path)
    capsys.readouterr()
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, (out, err)
    said = SAID + ": sup logs in to the web UI once to choose their own, then runs this again"
    if command != "rekey":
        said += " (or give --recovery-key-file instead)"
    # keystore restore ends each of its refusals "nothing was changed".
    assert err == "linekeeper: %s: nothing was %s\n" % (
        said,
        "changed" if command == "keystore restore" else "done",
    )
    assert _tree(path) == before
