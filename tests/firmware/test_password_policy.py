"""Issue 11: one password policy for the web and the command line.

``linekeeper init`` accepted ``password123``, which the web refuses; the web
accepted ``weak4weak4`` for user ``weak4``; web account hashes were cheaper
to test a guess against than the key slots they share a password with; a
password file anyone could read was read without a word.
"""

import os

import pytest

from firmware.cli import main
from firmware.storage.keystore import DEFAULT_KDF
from web import passwords


@pytest.mark.parametrize(
    "password, user",
    [
        ("password123", "admin"),
        ("short", "admin"),
        ("weak4weak4", "weak4"),
        ("4kaewweak4", "weak4"),
        ("admin admin!", "admin"),
    ],
)
def test_init_refuses_what_the_web_refuses(tmp_path, capsys, password, user):
    assert passwords.password_problem(password, user) is not None
    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    data_dir = tmp_path / "box"
    status = main(["init", "--data-dir", str(data_dir), "--password-file", str(pw), "--user", user])
    err = capsys.readouterr().err
    assert status == 2 and "nothing was created" in err and err.count("\n") == 1
    assert not (data_dir / "keys").exists()


@pytest.mark.parametrize("user", ["Jane.Smith", "bad user", "1st", "", "a" * 33])
def test_init_refuses_a_user_name_the_web_refuses(tmp_path, capsys, user):
    """The setup wizard asks for this account by a name it accepts (lowercase): a slot
    made for ``Jane.Smith`` could never be opened there, and setup never finished."""
    pw = tmp_path / "pw"
    pw.write_text("a long enough password 7\n")
    pw.chmod(0o600)
    data_dir = tmp_path / "box"
    status = main(["init", "--data-dir", str(data_dir), "--password-file", str(pw), "--user", user])
    err = capsys.readouterr().err
    assert status == 2 and "--user %r" % user in err and "nothing was created" in err, err
    assert err.count("\n") == 1 and ("lowercase" if user else "Enter a user name") in err
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "password, words",
    [
        ("abc     ", "at least"),  # padding counted as length
        (" " * 8, "at least"),
        ("\u00a0" * 12, "another keyboard"),  # no-break spaces
        ("1234" + " " * 10, "at least"),
        ("\uff46\uff55\uff4c\uff4c width pass 7", "another keyboard would type differently"),
    ],
)
def test_padding_and_look_alike_characters_are_refused(password, words):
    """'abc' and five spaces passed (the length counted the padding) and opened a key
    slot; a full-width password opened the account's hash (NFKC) but not its key slot
    (NFC) when typed plainly, which the login took for an altered key slot."""
    problem = passwords.password_problem(password, "sam")
    assert problem is not None and words in problem, problem


def test_a_password_with_the_user_name_in_it_can_still_be_good():
    assert passwords.password_problem("weak4 likes pickled onions", "weak4") is None
    assert passwords.password_problem("correct horse battery 7", "alice") is None


def test_web_hashes_cost_at_least_the_key_slots():
    assert passwords.DEFAULT_COST.memory_kib >= DEFAULT_KDF.memory_kib
    assert passwords.DEFAULT_COST.iterations >= DEFAULT_KDF.iterations
    phc = passwords.hash_password("a long enough password 7")
    assert "m=%d" % DEFAULT_KDF.memory_kib in phc and "t=%d" % DEFAULT_KDF.iterations in phc


def test_a_password_file_others_can_read_is_warned_about(tmp_path, capsys, monkeypatch):
    import firmware.storage.keystore as keystore

    monkeypatch.setattr(keystore, "DEFAULT_KDF", keystore.Argon2Params(memory_kib=8, iterations=1))
    pw = tmp_path / "pw"
    pw.write_text("a long enough password 7\n")
    os.chmod(pw, 0o644)
    assert main(["init", "--data-dir", str(tmp_path / "box"), "--password-file", str(pw)]) == 0
    err = capsys.readouterr().err
    assert "can be read by other users (mode 644)" in err
    os.chmod(pw, 0o600)
    pw2 = tmp_path / "pw2"
    pw2.write_text("a long enough password 7\n")
    os.chmod(pw2, 0o600)
    assert main(["init", "--data-dir", str(tmp_path / "box2"), "--password-file", str(pw2)]) == 0
    assert "warning" not in capsys.readouterr().err
