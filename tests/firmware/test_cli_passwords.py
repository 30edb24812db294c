"""The passwords `linekeeper` reads from files follow the web UI's one rule
(web/passwords.py), with a message that says which password broke it and why."""

from firmware import cli


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
