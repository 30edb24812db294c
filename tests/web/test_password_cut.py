"""A password change cut short between the key slot and web.db.

A supervisor's password is in their key slot and in their account's hash; a
change writes the slot first. A cut between the two used to leave the new
password in the slot and the old one in the hash, so the next login with the
old password raised a false ``key_tampered`` alarm, and the change was never
audited. Each test cuts at one step, restarts the web UI (or not) and logs in.
"""

import pytest

import web.pwchange
from firmware.storage.keystore import KeyStore

from support.web import Cut, cut, restart_web

NEW = "a brand new passphrase 7"


def _tamper_alarms(box):
    return [a for a in box.alarm_log.history() if a["kind"] == "key_tampered"]


def _changes(box, name="sam"):
    return [e for e in box.audit.entries(limit=1000, action="password_change") if e.target == name]


def _reset(box, people):
    return box.post(people["alice"], "/users/sam/password", {"password": NEW}, token_from="/users")


def _own_change(box, people):
    form = {"old": box.PASSWORDS["sam"], "new": NEW, "confirm": NEW}
    return box.post(people["sam"], "/account/password", form)


CHANGES = {"reset": _reset, "own": _own_change}


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-a-restart"])
@pytest.mark.parametrize("how", sorted(CHANGES))
def test_a_cut_between_the_slot_and_the_hash_is_finished_not_taken_for_tampering(
    box, people, monkeypatch, how, restart
):
    with monkeypatch.context() as patch:
        patch.setattr(box.web.accounts, "set_password", cut)
        with pytest.raises(Cut):
            CHANGES[how](box, people)
    box.services.keystore.unlock("sam", NEW).forget()  # the slot has the new password
    assert box.web.accounts.verify("sam", box.PASSWORDS["sam"]) is not None  # the hash the old
    if restart:
        restart_web(box)
        (entry,) = _changes(box)  # audited at the start, by whoever made the change
        assert entry.actor == ("alice" if how == "reset" else "sam")
    resp = box.try_login(box.app.test_client(), "sam", box.PASSWORDS["sam"])
    assert resp.status_code == 400 and "old password" in resp.get_data(as_text=True)
    assert not _tamper_alarms(box)
    client = box.login("sam", NEW)
    if how == "reset":  # one an installer set, even one a cut finished, is changed first
        assert box.web.accounts.get("sam").must_change == "set_by_other"
        box.chose_own_password("sam")
    assert 'id="listen-form"' in client.get("/calls/1").get_data(as_text=True)  # with the slot's key
    assert box.web.accounts.verify("sam", NEW) is not None  # the hash follows
    assert box.web.accounts.verify("sam", box.PASSWORDS["sam"]) is None
    assert web.pwchange.pending(box.web, "sam") is None
    assert len(_changes(box)) == 1
    restart_web(box)
    assert len(_changes(box)) == 1


@pytest.mark.parametrize("how", sorted(CHANGES))
def test_a_cut_before_the_slot_changes_nothing(box, people, monkeypatch, how):
    """The change never reached the card: the old password stays, nothing is audited."""
    with monkeypatch.context() as patch:
        patch.setattr(KeyStore, "_store", cut)
        with pytest.raises(Cut):
            CHANGES[how](box, people)
    restart_web(box)
    assert web.pwchange.pending(box.web, "sam") is None
    box.login("sam")
    assert box.try_login(box.app.test_client(), "sam", NEW).status_code == 400
    assert not _changes(box) and not _tamper_alarms(box)


@pytest.mark.parametrize("how", sorted(CHANGES))
def test_a_cut_before_the_entry_is_audited_once_at_the_start(box, people, monkeypatch, how):
    """Slot and hash written, the entry not: the next start writes it, once."""
    real = box.services.audit.append

    def append(actor, action, *args, **kwargs):
        if action == "password_change":
            raise Cut()
        return real(actor, action, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(box.services.audit, "append", append)
        with pytest.raises(Cut):
            CHANGES[how](box, people)
    assert not _changes(box)
    restart_web(box)
    (entry,) = _changes(box)
    assert entry.details["change_id"] and web.pwchange.pending(box.web, "sam") is None
    box.login("sam", NEW)
    restart_web(box)
    assert len(_changes(box)) == 1


def test_an_altered_slot_still_raises_the_alarm_beside_a_change_never_made(box, people, monkeypatch):
    """A note of a change that never reached the slot does not excuse a slot that fails."""
    from .test_login_keys import _alter_slot

    with monkeypatch.context() as patch:
        patch.setattr(KeyStore, "_store", cut)
        with pytest.raises(Cut):
            _reset(box, people)
    _alter_slot(box, "sam")
    box.login("sam")  # by the account's hash, without playback
    assert len(_tamper_alarms(box)) == 1


@pytest.mark.parametrize("how", sorted(CHANGES))
def test_a_password_an_installer_set_and_a_cut_left_in_the_slot_alone_proves_nobody_on_the_command_line(
    box, people, monkeypatch, capsys, tmp_path, how
):
    """web.db's account does not say yet that the slot's new password is one an installer
    set (the note does, until the owner's next web login): the command line took it as the
    owner's, so the installer who set it could act in their name there. Their own new
    password, cut the same way, proves them."""
    from firmware.cli import main

    with monkeypatch.context() as patch:
        patch.setattr(box.web.accounts, "set_password", cut)
        with pytest.raises(Cut):
            CHANGES[how](box, people)
    assert box.web.accounts.get("sam").must_change == ""
    pw = tmp_path / "pw"
    pw.write_text(NEW + "\n")
    pw.chmod(0o600)
    capsys.readouterr()
    code = main(["calls", "--data-dir", box.data_dir, "--user", "sam", "--password-file", str(pw)])
    err = capsys.readouterr().err
    if how == "reset":
        assert code == 2 and "--user sam still has the password an installer set" in err, err
        assert len(err.strip().splitlines()) == 1, err
    else:
        assert code == 0, err
