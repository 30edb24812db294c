"""The passwords `linekeeper` reads from files follow the web UI's one rule
(web/passwords.py), with a message that says which password broke it and why."""

import os

import pytest

from firmware import cli
from firmware.storage.keystore import Argon2Params, KeyStore

CHEAP = Argon2Params(memory_kib=8, iterations=1)


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_init_refuses_a_password_with_a_control_character_and_makes_nothing(tmp_path, capsys):
    """A tab (or a NUL) in the password file was taken: the key slot then opened with the
    password as written in the file, and no web form could type it."""
    data = tmp_path / "data"
    pw = _file(tmp_path, "pw", "correct horse\tbattery 7")
    assert cli.main(["init", "--data-dir", str(data), "--password-file", pw, "--user", "admin"]) != 0
    assert "has a control character" in capsys.readouterr().err
    assert not data.exists()


@pytest.mark.parametrize(
    "current, rule",
    [
        ("short pw 7", "fails the password rule: it needs at least 12 characters (it has 10)"),
        ("no digits at all here", "it has no digit"),
    ],
)
def test_rekey_without_a_new_password_says_the_current_one_is_kept_and_fails_the_rule(
    tmp_path, capsys, current, rule
):
    """It said "(the new password)", of a password the technician never gave."""
    data = str(tmp_path / "data")
    KeyStore(data, kdf_params=CHEAP).initialise("admin", current)
    keys = os.path.join(data, "keys", "keystore.json")
    with open(keys, "rb") as f:
        before = f.read()
    pw = _file(tmp_path, "pw", current)
    assert cli.main(["rekey", "--data-dir", data, "--password-file", pw, "--user", "admin"]) != 0
    err = capsys.readouterr().err
    assert "the new password)" not in err
    assert "without --new-password-file the current password (the password file %s) is kept" % pw in err
    assert rule in err and "give a new password with --new-password-file; nothing was changed" in err
    with open(keys, "rb") as f:
        assert f.read() == before


def test_rekey_names_the_new_password_file_when_the_new_password_fails_the_rule(tmp_path, capsys):
    data = str(tmp_path / "data")
    KeyStore(data, kdf_params=CHEAP).initialise("admin", "a good password 7")
    pw = _file(tmp_path, "pw", "a good password 7")
    new = _file(tmp_path, "new", "short pw 7")
    args = ["rekey", "--data-dir", data, "--password-file", pw, "--new-password-file", new, "--user", "admin"]
    assert cli.main(args) != 0
    assert "(the new password, %s): nothing was changed" % new in capsys.readouterr().err
