"""Who holds which role is audited before it changes, and a cut leaves no slot behind.

The users page changed web.db (an account added, its roles or lines changed, or
removed), then the key store, then audited: a cut before the entry left a change
of who may hear calls that the trail never showed, and a cut before the key
store left a removed supervisor's slot, or lines taken away, still opening
recordings. Each test cuts at one step and starts the web UI again.
"""

import pytest

from support.web import Cut, cut, restart_web


def _user_changes(box, name, change):
    """The entries of changes of ``name``'s account of kind ``change``, and those saying
    such a change was not made, oldest first."""
    entries = box.audit.entries(limit=1000, action="config_change", newest_first=False)
    made = [e for e in entries if e.target == name and e.details.get("change") == change]
    ids = {e.details["change_id"] for e in made}
    return [e for e in entries if e in made or (e.target == name and e.details.get("change_id") in ids)]


def test_an_account_change_cut_before_its_commit_is_audited_as_not_made(box, people, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(box.web.accounts, "update", cut)
        with pytest.raises(Cut):
            box.post(
                people["ivan"], "/users/audrey", {"roles": ["auditor", "installer"]}, token_from="/users"
            )
    (entry,) = _user_changes(box, "audrey", "user_update")  # before the commit
    assert entry.actor == "ivan" and entry.details["roles"] == ["auditor", "installer"]
    assert not box.web.accounts.get("audrey").has("installer")
    restart_web(box)
    made, not_made = _user_changes(box, "audrey", "user_update")
    assert not_made.actor == "system" and not_made.details["change_id"] == made.details["change_id"]
    assert "not_made" in not_made.details


def test_a_refused_change_is_audited_as_tried_and_not_made(box, people, monkeypatch):
    """The last installer cannot lose the role. The check runs in the transaction (two
    installers taking each other's role at once), after the entry: the trail shows the
    try and why it was not made."""
    from web.views import users as users_view

    def last(conn, without_name):
        raise users_view._LastInstaller()

    monkeypatch.setattr(users_view, "_check_installers_left", last)
    resp = box.post(people["alice"], "/users/ivan", {"roles": ["auditor"]}, token_from="/users")
    assert resp.status_code == 400 and box.web.accounts.get("ivan").has("installer")
    made, not_made = _user_changes(box, "ivan", "user_update")
    assert made.actor == "alice" and "at least one installer" in not_made.details["not_made"]


def test_a_removal_cut_before_the_slot_leaves_no_slot_after_the_start(box, people, monkeypatch):
    keystore = box.services.keystore
    with monkeypatch.context() as patch:
        patch.setattr(type(keystore), "remove_slot", cut)
        with pytest.raises(Cut):
            box.post(people["alice"], "/users/sue/delete", {}, token_from="/users")
    assert box.web.accounts.get("sue") is None and "sue" in keystore.slots()
    (entry,) = _user_changes(box, "sue", "user_delete")
    assert entry.actor == "alice"
    restart_web(box)
    assert "sue" not in keystore.slots()
    # alice's entry came before the cut; the start's says what it did and why.
    removed = [e for e in box.audit.entries(action="key_slot_remove") if e.target == "sue"]
    assert [e.actor for e in removed] == ["system", "alice"] and "cut short" in removed[0].details["reason"]
    assert removed[0].details["finishes"] == removed[1].seq  # one removal, begun and finished
    from firmware.words import audit_fields

    assert ("Finishes entry", str(removed[1].seq)) in audit_fields(removed[0].details)


def test_lines_taken_away_before_the_slot_followed_are_taken_at_the_start(box, people, monkeypatch):
    keystore = box.services.keystore
    assert keystore.granted_lines("sam") == (1, 2)
    with monkeypatch.context() as patch:
        patch.setattr(type(keystore), "set_lines", cut)
        with pytest.raises(Cut):
            box.post(
                people["alice"], "/users/sam", {"roles": ["supervisor"], "lines": ["1"]}, token_from="/users"
            )
    assert box.web.accounts.get("sam").lines == (1,) and keystore.granted_lines("sam") == (1, 2)
    restart_web(box)
    assert keystore.granted_lines("sam") == (1,)
    grants = [e for e in box.audit.entries(action="key_grant") if e.target == "sam"]
    assert grants[0].actor == "system" and grants[0].details["lines"] == [1]


def test_a_start_without_the_storage_key_serves_and_settles_later(box, people, monkeypatch):
    """What a cut left needs the audit trail, which needs the box's storage key; a web UI
    started before the recorder handed it over must start all the same (it serves the
    dashboard that says why), and settle at a later sweep."""
    from firmware.storage.fieldseal import FieldSealError

    with monkeypatch.context() as patch:
        patch.setattr(box.web.accounts, "update", cut)
        with pytest.raises(Cut):
            box.post(
                people["ivan"], "/users/audrey", {"roles": ["auditor", "installer"]}, token_from="/users"
            )

    def locked(*args, **kwargs):
        raise FieldSealError("the audit trail's sealed details need the key in the HAT's MCU vault")

    with monkeypatch.context() as patch:
        patch.setattr(box.audit, "append", locked)
        restart_web(box)
        box.web.sweep()  # still locked: nothing settled, nothing raised
    assert len(_user_changes(box, "audrey", "user_update")) == 1
    box.web.sweep()
    made, not_made = _user_changes(box, "audrey", "user_update")
    assert not_made.details["change_id"] == made.details["change_id"]


@pytest.mark.parametrize("at", ["before the slot", "after the slot"])
def test_a_new_recovery_key_cut_short_is_never_taken_for_a_confirmed_one(box, people, monkeypatch, at):
    """Making a new recovery key replaced the slot, then marked the key unconfirmed and
    audited. A cut after the slot left a recovery key nobody had seen, the old one
    opening nothing, and the box calling its recovery key confirmed. Now it is marked
    unconfirmed first and audited before the slot: the dashboard asks for a new one."""
    from firmware.storage.keystore import KeyStore

    alice = people["alice"]
    assert box.web.site.recovery_confirmed
    real = KeyStore._store

    def stored_then_cut(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise Cut()

    with monkeypatch.context() as patch:
        patch.setattr(KeyStore, "_store", cut if at == "before the slot" else stored_then_cut)
        with pytest.raises(Cut):
            box.post(alice, "/settings/recovery-key", token_from="/settings")
    restart_web(box)
    assert not box.web.site.recovery_confirmed
    assert "recovery key was never confirmed" in box.login("alice").get("/").get_data(as_text=True)
    entries = box.audit.entries(limit=10, action="key_slot_add")
    recovery = [e for e in entries if e.target == "recovery"]
    if at == "before the slot":
        box.services.keystore.unlock_recovery(box.recovery_key).forget()  # still the one
        assert [e.actor for e in recovery[:2]] == ["system", "alice"] and "not_made" in recovery[0].details
    else:
        assert recovery[0].actor == "alice" and "not_made" not in recovery[0].details
