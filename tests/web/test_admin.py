"""Installers: users and key slots, settings. Auditors: the audit trail. Everyone: the dashboard."""

import html
import json
import os
import re
import sqlite3

import pytest

from support.web import chains_checked


def page_of(resp):
    return html.unescape(resp.get_data(as_text=True))


def snapshot_db(box):
    """Everything an installer's form may change, to check that nothing did."""
    web_db = sqlite3.connect(box.web.db.path)
    try:
        users = web_db.execute("SELECT name, pw_hash, roles, lines FROM users ORDER BY name").fetchall()
        site = web_db.execute("SELECT * FROM site ORDER BY key").fetchall()
    finally:
        web_db.close()
    return users, site, box.services.keystore.slots(), len(box.services.audit)


def test_only_supervisors_get_key_slots_made_with_a_supervisors_key(box, people):
    keystore = box.services.keystore
    # Not ivan (installer only) nor audrey (auditor): nothing of theirs opens a recording.
    assert keystore.slots() == ["alice", "sam", "sue"]
    keystore.unlock("sam", box.PASSWORDS["sam"]).forget()
    actions = box.audit_actions()
    assert actions.count("key_slot_add") == 2


@pytest.mark.parametrize(
    "form, field, message",
    [
        ({"name": "", "password": "a fine password 7", "roles": "auditor"}, "name", "Enter a user name"),
        (
            {"name": "Bob Smith", "password": "a fine password 7", "roles": "auditor"},
            "name",
            "lowercase letters",
        ),
        ({"name": "sam", "password": "a fine password 7", "roles": "auditor"}, "name", "already"),
        ({"name": "bob", "password": "a fine password 7"}, "roles", "at least one role"),
        ({"name": "bob", "password": "a fine password 7", "roles": "admin"}, "roles", "at least one role"),
        (
            {"name": "bob", "password": "a fine password 7", "roles": "supervisor"},
            "lines",
            "at least one line",
        ),
        (
            {"name": "bob", "password": "a fine password 7", "roles": "supervisor", "lines": "9"},
            "lines",
            "numbered 1 to 4",
        ),
        # Lines mean nothing to an installer or auditor (they see every line): refused, not
        # kept to read as a limit that is none.
        *[
            (
                {"name": "bob", "password": "a fine password 7", "roles": roles, "lines": "2"},
                "lines",
                "Lines: only a supervisor's or a staff member's lines mean something",
            )
            for roles in ("installer", "auditor", ["installer", "auditor"])
        ],
        ({"name": "bob", "password": "short", "roles": "auditor"}, "password", "at least 12"),
        ({"name": "bob", "password": "1qaz2wsx3edc", "roles": "auditor"}, "password", "commonly used"),
        ({"name": "weak4", "password": "weak4weak4weak4", "roles": "auditor"}, "password", "user name"),
    ],
)
def test_bad_new_user_input(box, people, form, field, message):
    before = snapshot_db(box)
    resp = box.post(people["alice"], "/users", form, token_from="/users")
    assert resp.status_code == 400
    page = page_of(resp)
    assert 'id="error-%s"' % field in page and message in page
    assert snapshot_db(box) == before


def test_a_refused_new_user_keeps_the_roles_and_lines_ticked(box, people):
    """A new supervisor refused for want of a line came back with the Supervisor role
    unticked too: ticked again in a hurry, the next try added a user of another role."""
    form = {"name": "manager", "password": "practice manager pw1", "roles": ["supervisor", "auditor"]}
    resp = box.post(people["alice"], "/users", form, token_from="/users")
    page = page_of(resp)
    assert resp.status_code == 400 and "A supervisor needs at least one line" in page
    new_user = page[page.index('id="new-user"') :]
    ticked = re.findall(r'name="(roles|lines)" value="(\w+)" checked', new_user)
    assert ticked == [("roles", "supervisor"), ("roles", "auditor")]
    form = dict(form, name="Bad Name!", lines=["1", "3"])
    new_user = page_of(box.post(people["alice"], "/users", form, token_from="/users"))
    new_user = new_user[new_user.index('id="new-user"') :]
    ticked = re.findall(r'name="(roles|lines)" value="(\w+)" checked', new_user)
    assert ticked == [("roles", "supervisor"), ("roles", "auditor"), ("lines", "1"), ("lines", "3")]
    fresh = page_of(people["alice"].get("/users"))
    assert " checked" not in fresh[fresh.index('id="new-user"') :]


def test_a_supervisor_cannot_be_added_without_an_unlocked_key(box, people):
    alice = people["alice"]
    for mem in box.web.sessions.memory.values():
        if mem["key"] is not None:
            mem["key"].forget()
    before = snapshot_db(box)
    resp = box.post(
        alice,
        "/users",
        {"name": "bob", "password": "a fine password 7", "roles": "supervisor", "lines": "1"},
        token_from="/users",
    )
    assert resp.status_code == 400 and "recording key unlocked" in page_of(resp)
    assert snapshot_db(box) == before
    ivan = people["ivan"]
    # An auditor needs no key slot.
    resp = box.post(
        ivan,
        "/users",
        {"name": "bob", "password": "a fine password 7", "roles": "auditor"},
        token_from="/users",
    )
    assert resp.status_code == 302 and "bob" not in box.services.keystore.slots()


def test_a_change_of_roles_sent_unchanged_changes_nothing_and_ends_no_session(box, people):
    """The same roles and lines sent again (a second click, or Save pressed on a form left
    as it was) were audited as a change and ended the person's sessions, logging sam out
    mid-call for nothing."""
    alice, sam = people["alice"], people["sam"]
    assert sam.get("/calls").status_code == 200
    before, actions = snapshot_db(box), box.audit_actions()
    resp = box.post(alice, "/users/sam", {"roles": "supervisor", "lines": ["2", "1"]}, token_from="/users")
    assert resp.status_code == 302
    assert "nothing was changed" in alice.get(resp.headers["Location"]).get_data(as_text=True)
    assert snapshot_db(box) == before and box.audit_actions() == actions
    assert sam.get("/calls").status_code == 200


def test_changing_roles_and_lines(box, people):
    alice = people["alice"]
    resp = box.post(alice, "/users/sam", {"roles": "supervisor", "lines": ["1", "3"]}, token_from="/users")
    assert resp.status_code == 302
    assert box.web.accounts.get("sam").lines == (1, 3)
    # The key slot follows: line 2's key taken away, line 3's granted (issue 19).
    assert box.services.keystore.granted_lines("sam") == (1, 3)
    assert "key_grant" in box.audit_actions()
    # New rights take effect at the next login: sam's sessions ended.
    assert people["sam"].get("/calls").status_code == 302
    # Dropping the roles that need a key slot removes it.
    box.post(alice, "/users/sam", {"roles": "auditor"}, token_from="/users")
    assert "sam" not in box.services.keystore.slots()
    # Giving it back needs a new password (the slot is sealed with it).
    before = snapshot_db(box)
    resp = box.post(alice, "/users/sam", {"roles": "supervisor", "lines": "1"}, token_from="/users")
    assert resp.status_code == 400 and "enter one for sam" in page_of(resp)
    assert snapshot_db(box) == before
    resp = box.post(
        alice,
        "/users/sam",
        {"roles": "supervisor", "lines": "1", "password": "brand new sam pass 7"},
        token_from="/users",
    )
    assert resp.status_code == 302
    box.services.keystore.unlock("sam", "brand new sam pass 7").forget()
    assert box.services.keystore.granted_lines("sam") == (1,)
    box.login("sam", "brand new sam pass 7")
    assert box.web.accounts.get("sam").roles == {"supervisor"}


def test_lines_kept_on_an_account_left_with_no_role_that_uses_them_are_refused(box, people):
    """sam's supervisor role taken away, his lines still ticked: an auditor with lines 1
    and 2 read as one who sees those only, and saw every line. Refused, naming the field,
    nothing changed; with the lines unticked it is saved."""
    alice = people["alice"]
    before = snapshot_db(box)
    resp = box.post(alice, "/users/sam", {"roles": "auditor", "lines": ["1", "2"]}, token_from="/users")
    assert resp.status_code == 400
    assert 'id="error-lines"' in page_of(resp) and "untick the lines" in page_of(resp)
    assert snapshot_db(box) == before
    assert box.post(alice, "/users/sam", {"roles": "auditor"}, token_from="/users").status_code == 302
    assert box.web.accounts.get("sam").lines == ()
    # Staff, with the installer role too, keeps its line.
    resp = box.post(alice, "/users/sue", {"roles": ["installer", "staff"], "lines": "3"}, token_from="/users")
    assert resp.status_code == 302 and box.web.accounts.get("sue").lines == (3,)


def test_deleting_a_supervisor_advises_a_rekey(box, people):
    alice = people["alice"]
    resp = box.post(alice, "/users/sue/delete", {}, token_from="/users")
    assert resp.status_code == 302 and "removed=sue" in resp.headers["Location"]
    page = alice.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="rekey-advised"' in page and "linekeeper rekey" in page
    # The Rekey page does it with the box recording: an owner handing over or closing down
    # was told to stop the box and run the command.
    rekeying = object()
    box.services.rekey = rekeying
    resp = box.post(alice, "/users/sam/delete", {}, token_from="/users")
    page = alice.get(resp.headers["Location"]).get_data(as_text=True)
    said = re.search(r'<p class="notice" id="rekey-advised">(.*?)</p>', page).group(1)
    assert said == (
        "sam's key slot was removed. A copy of the key store taken before still opens the "
        'recordings with their old password: to make every copy useless, rekey on the <a href="/rekey">'
        "Rekey page</a> (the box goes on recording meanwhile)."
    ), said
    resp = box.post(alice, "/users/audrey/delete", {}, token_from="/users")  # no slot: nothing to advise
    assert "removed" not in resp.headers["Location"]


def test_reset_password_for_a_forgotten_one(box, people):
    alice = people["alice"]
    resp = box.post(alice, "/users/sue/password", {"password": "1qaz2wsx3edc"}, token_from="/users")
    assert resp.status_code == 400 and "commonly used" in page_of(resp)
    resp = box.post(alice, "/users/sue/password", {"password": "sue has a new one 7"}, token_from="/users")
    assert resp.status_code == 302
    assert people["sue"].get("/calls").status_code == 302  # logged out
    box.login("sue", "sue has a new one 7")
    assert box.services.keystore.granted_lines("sue") == (3,)  # a new key pair, the same line
    box.services.keystore.unlock("sue", "sue has a new one 7").forget()


def test_the_box_keeps_an_installer(box, people):
    alice = people["alice"]
    box.post(alice, "/users/ivan/delete", token_from="/users")
    assert box.web.accounts.get("ivan") is None
    # Nobody changes their own roles (so the last installer cannot drop the role).
    resp = box.post(alice, "/users/alice", {"roles": "supervisor", "lines": "1"}, token_from="/users")
    assert resp.status_code == 403 and box.web.accounts.get("alice").has("installer")
    resp = box.post(alice, "/users/alice/delete", token_from="/users")
    assert resp.status_code == 400 and "your own account" in page_of(resp)
    assert box.post(alice, "/users/nobody/delete", token_from="/users").status_code == 404


def test_your_own_row_offers_no_form_that_would_be_refused(box, people):
    """Your own row had the roles form and the password form, each answered 403 (nobody
    changes their own roles; your own password is changed with the current one)."""
    page = people["ivan"].get("/users").get_data(as_text=True)
    assert 'action="/users/ivan"' not in page and 'action="/users/ivan/password"' not in page
    row = page[page.index('id="user-ivan"') :]
    row = row[: row.index("</tr>")]
    assert "Installer" in row and 'href="/account/password"' in row
    # Everybody else's row keeps its forms.
    assert 'action="/users/sam"' in page and 'action="/users/sam/password"' in page
    assert 'action="/users/sam/delete"' in page and 'action="/users/ivan/delete"' not in page


def test_deleting_a_user_ends_their_sessions_and_forgets_their_key(box, people):
    keys = [m["key"] for m in box.web.sessions.memory.values() if m["key"] is not None]
    box.post(people["alice"], "/users/sam/delete", token_from="/users")
    assert people["sam"].get("/").status_code == 302
    assert box.web.accounts.get("sam") is None
    assert sum(k.forgotten for k in keys) == 1


def settings_form(box, **over):
    form = box.setup_form(**over)
    for key in ("setup_code", "admin_name", "admin_password", "admin_confirm"):
        form.pop(key)
    return form


@pytest.mark.parametrize(
    "over, field",
    [
        ({"organisation": ""}, "organisation"),
        ({"ico_number": "AB123456"}, "ico_number"),
        ({"ico_renewal": "soon"}, "ico_renewal"),
        ({"purpose": "because"}, "purpose"),
        ({"country": "xx"}, "country"),
        ({"line-1-name": "x" * 41}, "line-1-name"),
        ({"line-4-mode": ""}, "line-4-mode"),
        ({"organisation": "Acme\x00 Ltd"}, "organisation"),
        ({"line-2-name": "Sales\x1b[2J"}, "line-2-name"),
        ({"purpose": "to keep a record\x07 of orders"}, "purpose"),
    ],
)
def test_bad_settings_input(box, people, over, field):
    before = snapshot_db(box)
    resp = box.post(people["ivan"], "/settings", settings_form(box, **over), token_from="/settings")
    assert resp.status_code == 400
    page = page_of(resp)
    assert 'id="error-%s"' % field in page and "Nothing was saved" in page
    assert snapshot_db(box) == before


def test_settings_change_is_saved_applied_and_audited(box, people):
    from web.services import site_settings_applier

    applied = []
    into_config = site_settings_applier(box.config_store, box.audit, box.services.wall_us)
    box.services.apply_settings = lambda settings: (applied.append(settings), into_config(settings))
    resp = box.post(
        people["ivan"],
        "/settings",
        settings_form(box, **{"line-2-name": "Sales", "line-2-mode": "private"}),
        token_from="/settings",
    )
    assert resp.status_code == 302
    site = box.web.site.settings()
    assert site.line(2).name == "Sales" and not site.line(2).record
    assert applied == [site]
    (entry,) = box.services.audit.entries(action="config_change", limit=1)
    assert entry.actor == "ivan" and entry.details["lines"][1] == {
        "line": 2,
        "name": "Sales",
        "record": False,
    }
    assert "(private)" in people["sam"].get("/").get_data(as_text=True)


def test_an_action_the_trail_does_not_have_is_named_and_nothing_is_audited(box, people):
    """A word that is no action of the trail (a link typed or cut short, ``action=login_fail``)
    showed "No entries." as if the account had never failed a login, and the page and its
    CSV were audited as a view of it: refused as any bad filter is, naming the field."""
    audrey = people["audrey"]
    before = box.audit_actions()
    page = audrey.get("/audit?action=login_fail")
    assert page.status_code == 400
    assert "Choose an action from the list." in html.unescape(page.get_data(as_text=True))
    csv_copy = audrey.get("/audit.csv?action=login_fail")
    assert csv_copy.status_code == 400
    assert "Choose an action from the list." in csv_copy.get_data(as_text=True)
    assert box.audit_actions() == before
    assert audrey.get("/audit?action=login_failed").status_code == 200


def test_audit_trail_viewer_shows_whether_the_chain_verifies(box, people):
    audrey = people["audrey"]
    chains_checked(box)
    page = audrey.get("/audit").get_data(as_text=True)
    assert 'id="chain-ok"' in page and "key_slot_add" in page
    assert "login" in audrey.get("/audit?action=login").get_data(as_text=True)
    assert audrey.get("/audit?page=0").status_code == 400
    resp = audrey.get("/audit?page=%D9%A2")  # "٢": int() took it for page 2
    assert resp.status_code == 400 and 'id="error-page"' in resp.get_data(as_text=True)
    assert audrey.get("/audit?action=1;DROP").status_code == 400
    # Tampering with an entry shows up.
    db = sqlite3.connect(box.services.audit.path_db)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 2")
    db.commit()
    db.close()
    # The whole trail is checked again within ten minutes (hashing it takes seconds on a
    # box years in service; the page says when it was checked whole), in the background.
    box.clock.advance(11 * 60)
    assert 'id="whole-check-running"' in audrey.get("/audit").get_data(as_text=True)
    box.web.wait_whole_checks()
    page = audrey.get("/audit").get_data(as_text=True)
    assert 'id="chain-broken"' in page and 'id="chain-ok"' not in page
    # And the alarm says so, as nobody may be looking at the page.
    (alarm,) = [a for a in box.alarm_log.banner() if a["kind"] == "audit_unverified"]
    assert alarm["cleared_us"] is None
    assert alarm["message"].startswith("the audit trail does not verify: audit entry 2 was modified")


def test_the_audit_page_checks_only_the_entries_added_since_its_last_check(box, people, monkeypatch):
    from firmware.storage import audit as audit_module

    checked = []
    real = audit_module._check_row
    monkeypatch.setattr(audit_module, "_check_row", lambda row, *a: checked.append(row[0]) or real(row, *a))
    audrey = people["audrey"]
    chains_checked(box)  # as the first visit starts it
    assert len(checked) == len(box.services.audit) > 10  # the first check is whole
    checked.clear()
    assert 'id="chain-ok"' in audrey.get("/audit").get_data(as_text=True)
    assert checked == []
    for n in range(3):
        box.services.audit.append("system", "box_start", None, {}, box.clock.t_us + n)
    checked.clear()
    last = len(box.services.audit)
    assert 'id="chain-ok"' in audrey.get("/audit?action=login").get_data(as_text=True)
    # The three added since, and the first visit's own entry before them (audit_view), no more.
    assert checked == [last - 3, last - 2, last - 1, last]
    checked.clear()
    assert audrey.get("/documents/checklist").status_code == 200
    assert checked == [last + 1]  # the checklist's "the trail verifies" reads only the visit's view
    last = len(box.services.audit)
    # An entry added since and changed is seen at once; so is the last one checked
    # rewritten (with its hash: re-chained); an older one changed, at the next whole check.
    box.services.audit.append("system", "box_stop", None, {}, box.clock.t_us + 9)
    db = sqlite3.connect(box.services.audit.path_db)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET details = '{\"x\":1}' WHERE seq = ?", (last + 1,))
    db.commit()
    page = audrey.get("/audit").get_data(as_text=True)
    assert 'id="chain-broken"' in page and "audit entry %d was modified" % (last + 1) in page
    db.execute("UPDATE audit SET hash = ? WHERE seq = ?", ("0" * 64, last + 1))
    db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 2")
    db.commit()
    db.close()
    page = audrey.get("/audit").get_data(as_text=True)
    assert "entry %d no longer has the hash it was checked with" % (last + 1) in page
    assert "audit entry 2 was modified" not in page
    box.clock.advance(11 * 60)
    checked.clear()
    every = len(box.services.audit)  # (the alarm the broken chain raised among them)
    audrey.get("/audit")
    box.web.wait_whole_checks()
    page = audrey.get("/audit").get_data(as_text=True)
    assert set(range(1, every + 1)) <= set(checked) and "audit entry 2 was modified" in page


def test_a_due_whole_check_of_the_trail_runs_in_the_background_while_the_page_answers(
    box, people, monkeypatch
):
    """Whoever visited first after ten minutes waited for the whole check, in their request:
    6 to 10 s on a box four years in service, more on a Pi."""
    from support.web import HeldWholeCheck

    audrey = people["audrey"]

    def page(url="/audit"):
        return audrey.get(url).get_data(as_text=True)

    chains_checked(box)  # the first since the start
    assert 'id="chain-ok"' in page()
    db = sqlite3.connect(box.services.audit.path_db)
    db.execute("DROP TRIGGER audit_no_update")
    (actor,) = db.execute("SELECT actor FROM audit WHERE seq = 2").fetchone()
    db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 2")
    db.commit()
    held = HeldWholeCheck(monkeypatch, box.services.audit)
    box.clock.advance(11 * 60)
    text = page()
    assert held.in_request == 0 and held.waiting.is_set()
    # Meanwhile: the last whole check's result, and that one is under way (one at a time).
    assert 'id="chain-ok"' in text and 'id="whole-check-running"' in text
    text = page("/audit?action=login")
    assert 'id="chain-ok"' in text and 'id="whole-check-running"' in text
    assert "does not verify" not in page("/documents/checklist")
    assert held.started == 1
    held.release()
    box.web.wait_whole_checks()
    # Its result at the next visit, and it stands (however often the page is seen) ...
    for url in ("/audit", "/audit?action=login", "/audit"):
        text = page(url)
        assert "audit entry 2 was modified" in text and 'id="whole-check-running"' not in text
    assert "the audit trail does not verify" in page("/documents/checklist")
    # ... until a later whole check passes.
    db.execute("UPDATE audit SET actor = ? WHERE seq = 2", (actor,))
    db.commit()
    db.close()
    box.clock.advance(11 * 60)
    assert "audit entry 2 was modified" in page()
    box.web.wait_whole_checks()
    assert 'id="chain-ok"' in page() and held.started == 2 and held.in_request == 0


def test_the_first_visit_after_the_start_answers_at_once_and_never_says_the_trail_verifies(
    box, people, monkeypatch
):
    """The first visit after the web UI started waited for a whole check in its request, as
    it had no earlier one to show: 10 s on a box four years in service. It answers at once
    and says the trail is being checked, never that it verifies (a trail changed before
    the start must not look checked), nor does the checklist."""
    from support.web import HeldWholeCheck

    audrey = people["audrey"]
    db = sqlite3.connect(box.services.audit.path_db)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 2")
    db.commit()
    db.close()
    held = HeldWholeCheck(monkeypatch, box.services.audit)
    for url in ("/audit", "/audit?action=login", "/audit?page=0"):
        text = audrey.get(url).get_data(as_text=True)
        assert 'id="chain-unchecked"' in text and 'id="whole-check-running"' in text
        assert 'id="chain-ok"' not in text and 'id="chain-broken"' not in text
    checklist = audrey.get("/documents/checklist").get_data(as_text=True)
    running = "the first check of the whole audit trail since the web UI started is running now: look again"
    assert re.search(
        r'<td class="status" data-label="Status">amber</td><td data-label="Why">' + running, checklist
    )
    assert held.in_request == 0 and held.started == 1  # one at a time
    held.release()
    box.web.wait_whole_checks()
    text = audrey.get("/audit").get_data(as_text=True)
    assert "audit entry 2 was modified" in text and 'id="chain-unchecked"' not in text
    assert 'id="whole-check-running"' not in text


def test_a_whole_check_that_cannot_run_is_said_on_the_page_the_checklist_and_by_an_alarm(
    box, people, monkeypatch
):
    """A background whole check that failed (the card refusing a read, say) was only logged:
    the page went on showing the last result, or nothing, and nobody was told that the
    trail could no longer be checked."""
    audrey = people["audrey"]
    real = box.services.audit.verify_after
    failing = [True]

    def verify_after(checked):
        if checked[0] == 0 and failing[0]:
            raise sqlite3.OperationalError("disk I/O error")
        return real(checked)

    monkeypatch.setattr(box.services.audit, "verify_after", verify_after)
    audrey.get("/audit")
    box.web.wait_whole_checks()
    text = audrey.get("/audit").get_data(as_text=True)
    assert 'id="whole-check-failed"' in text and "OperationalError: disk I/O error" in text
    assert 'id="chain-ok"' not in text
    box.web.wait_whole_checks()  # (that visit started another, which failed too)
    checklist = audrey.get("/documents/checklist").get_data(as_text=True)
    assert re.search(
        r'<td class="status" data-label="Status">red</td><td data-label="Why">'
        r"the audit trail could not be checked",
        checklist,
    )
    (alarm,) = [a for a in box.alarm_log.banner() if a["kind"] == "audit_unverified"]
    assert alarm["cleared_us"] is None
    assert "could not be checked (OperationalError: disk I/O error)" in alarm["message"]
    # Raised once however often it fails the same way; cleared by a check that runs.
    raised = [
        e
        for e in box.services.audit.entries(action="alarm", limit=50)
        if e.details["kind"] == "audit_unverified"
    ]
    assert [e.details["event"] for e in raised] == ["raised"]
    box.web.wait_whole_checks()
    failing[0] = False
    audrey.get("/audit")
    box.web.wait_whole_checks()
    text = audrey.get("/audit").get_data(as_text=True)
    assert 'id="chain-ok"' in text and 'id="whole-check-failed"' not in text
    assert [
        a["cleared_us"] is not None for a in box.alarm_log.banner() if a["kind"] == "audit_unverified"
    ] == [True]


def test_a_check_of_the_new_entries_that_cannot_run_is_said_never_that_the_trail_verifies(
    box, people, monkeypatch
):
    """The check of the entries added since the last one, made in the request, raising (a
    locked or damaged database) answered the audit page and the checklist with a 500."""
    audrey = people["audrey"]
    audrey.get("/audit")
    box.web.wait_whole_checks()
    assert 'id="chain-ok"' in audrey.get("/audit").get_data(as_text=True)
    real = box.services.audit.verify_after
    failing = [True]

    def verify_after(checked):
        if checked[0] != 0 and failing[0]:  # not a whole check: none is due
            raise sqlite3.OperationalError("database is locked")
        return real(checked)

    monkeypatch.setattr(box.services.audit, "verify_after", verify_after)
    resp = audrey.get("/audit")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="since-check-failed"' in text and "OperationalError: database is locked" in text
    assert 'id="chain-ok"' not in text and "verifies" not in text.split('id="since-check-failed"')[0]
    resp = audrey.get("/documents/checklist")
    assert resp.status_code == 200
    assert re.search(
        r'<td class="status" data-label="Status">red</td><td data-label="Why">'
        r"the audit trail&#39;s newest entries could not be checked",
        resp.get_data(as_text=True),
    )
    (alarm,) = [a for a in box.alarm_log.banner() if a["kind"] == "audit_unverified"]
    assert alarm["cleared_us"] is None
    assert "could not be checked (OperationalError: database is locked)" in alarm["message"]
    # A check of those entries that runs again says the trail verifies, and clears it.
    failing[0] = False
    text = audrey.get("/audit").get_data(as_text=True)
    assert 'id="chain-ok"' in text and 'id="since-check-failed"' not in text
    assert [
        a["cleared_us"] is not None for a in box.alarm_log.banner() if a["kind"] == "audit_unverified"
    ] == [True]
    assert box.web.audit_checked().since_failed is None


def test_dashboard_shows_numbers_only_to_supervisors_of_that_line(box, people):
    box.status.set(
        1,
        "connected",
        {"id": 7, "direction": "in", "number": "07700900123", "name": "J SMITH", "absence": None},
    )
    assert "07700900123" in people["sam"].get("/").get_data(as_text=True)
    for who in ("ivan", "audrey"):
        page = people[who].get("/").get_data(as_text=True)
        assert "07700900123" not in page and 'data-state="connected"' in page, who
        assert "07700900123" not in people[who].get("/api/status").get_data(as_text=True)


def test_a_supervisor_sees_only_the_lines_granted_to_them(box, people):
    """sue supervises line 3 only: line 1's row (its state, its faults, a call in progress
    and which way it goes) is none of hers, on the page, in /api/status or in the stream,
    as its alarms are not (web.security.alarm_lines)."""
    import threading

    call = {
        "id": 7,
        "direction": "in",
        "number": "07700900123",
        "name": "J SMITH",
        "absence": None,
        "policy_decision": "skip",
        "policy_reason": "number 07700900123 (union rep)",
    }
    box.status.set(1, "connected", call)
    sue = people["sue"]
    page = sue.get("/").get_data(as_text=True)
    assert 'id="line-3"' in page and 'id="line-1"' not in page and 'id="line-2"' not in page
    assert "Inbound" not in page and "number rule" not in page and 'data-state="connected"' not in page
    status = sue.get("/api/status").get_json()
    assert [x["line"] for x in status["lines"]] == [3] and "version" not in status
    # Line 1's news is no message to her: a message each time it changed told when it did.
    timer = threading.Timer(0.1, box.status.set, (1, "idle"))
    timer.start()
    body = sue.get("/api/events").get_data(as_text=True)
    timer.join()
    events = [json.loads(x[6:]) for x in body.splitlines() if x.startswith("data: ")]
    assert len(events) == 1 and [x["line"] for x in events[0]["lines"]] == [3]
    # Installers and auditors keep every line, staff their own (My line).
    for who in ("ivan", "audrey", "sam"):
        lines = [x["line"] for x in people[who].get("/api/status").get_json()["lines"]]
        assert lines == ([1, 2] if who == "sam" else [1, 2, 3, 4]), who
    health = people["ivan"].get("/").get_data(as_text=True)
    assert 'id="disk-free"' in health and "1.0 GB of 4.0 GB" in health


def test_live_states_stream_as_server_sent_events(box, people):
    import threading

    timer = threading.Timer(0.1, box.status.set, (2, "ringing"))
    timer.start()
    body = people["sam"].get("/api/events").get_data(as_text=True)
    timer.join()
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    states = [e["lines"][1]["state"] for e in events]
    assert states[0] == "idle" and states[-1] == "ringing"


def test_the_audit_page_shows_the_chain_head(box, people):
    """Issue 11: the head to copy off the box, for `linekeeper verify --head`."""
    seq, digest = box.services.audit.head()
    page = people["audrey"].get("/audit").get_data(as_text=True)
    # (as it was when the page read it: its own view is audited after)
    assert 'id="audit-head">%d:%s<' % (seq, digest) in page
    # The command given whole: "linekeeper verify --head" stopped at "the following
    # arguments are required: --data-dir".
    command = "linekeeper verify --data-dir %s --head %d:%s" % (os.path.abspath(box.data_dir), seq, digest)
    assert 'id="audit-verify">%s<' % command in page


def test_dashboard_and_health_api_show_the_cards_wear_and_its_alarm(box, people):
    import dataclasses

    from firmware.cardhealth import ERASE_CYCLES
    from web.services import disk_and_clock_health

    wear = {
        "bytes_written_per_day": 40 * 10**9,
        "card_size_bytes": 8 * 10**9,
        "erase_cycles_assumed": ERASE_CYCLES,
        "projected_life_days": 200,
        "measured_s": 86_400,
        "own_wear": {"life_used_percent": [20, 30], "pre_eol": "normal"},
        "alarm": "the SD card is projected to wear out in 200 days",
    }

    class Clock:
        synchronised = True

    box.web.services = dataclasses.replace(
        box.web.services, health=disk_and_clock_health(box.data_dir, Clock(), card=lambda data_dir: wear)
    )
    page = people["ivan"].get("/").get_data(as_text=True)
    assert 'id="card-wear"' in page and "40.0 GB written a day" in page, page
    assert (
        "a new 8.0 GB card lasts about 200 days at this rate" in page and "since the box started" not in page
    )
    assert 'id="card-left"' not in page  # no age known: what a new card lasts, no more
    # A year in service: the panel says what is left and when to replace the card.
    wear.update(in_service_days=400, life_left_days=730, replace_by="2028-05-28")
    left = people["ivan"].get("/").get_data(as_text=True)
    assert (
        "this card has been in service 400 days, so about 2.0 years of it are left: "
        "replace it by Sun 28 May 2028" in left
    ), left
    wear.update(life_left_days=-3, replace_by="2026-05-28")
    assert "in service 400 days, past that life: replace it now" in people["ivan"].get("/").get_data(
        as_text=True
    )
    # Under a year, in days: "0.0 years" said nothing of a card with ten days left.
    wear.update(life_left_days=10, replace_by="2026-03-12")
    assert "so about 10 days of it are left: replace it by Thu 12 Mar 2026" in people["ivan"].get(
        "/"
    ).get_data(as_text=True)
    wear.update(in_service_days=None, life_left_days=200, replace_by=None)
    wear["measured_s"] = 180  # just after a start: the figure says what it is measured over
    assert "measured over 3 min since the box started" in people["ivan"].get("/").get_data(as_text=True)
    assert "assuming 1000 erase cycles" in page and "20% / 30% of its life used" in page
    api = people["ivan"].get("/api/health").get_json()
    assert api["card"]["projected_life_days"] == 200
    # The alarm is the history's (the recorder's round raises it), listed once.
    assert not any("wear out" in text for text in api["alarms"])
    box.services.alarms.set("card_wear", True, message=wear["alarm"])
    api = people["ivan"].get("/api/health").get_json()
    assert [t for t in api["alarms"] if "wear out" in t] == [
        "The memory card is wearing out: the SD card is projected to wear out in 200 days"
    ]
    box.web.services = dataclasses.replace(
        box.web.services, health=disk_and_clock_health(box.data_dir, Clock(), card=lambda data_dir: None)
    )
    assert "not measurable here" in people["ivan"].get("/").get_data(as_text=True)


def test_the_audit_trail_reads_in_words_and_filters_on_every_action(box, people):
    """A user added or removed, the rules changed: the trail showed ``Change user_add``,
    ``About policy.rules``, ``Mode: on_demand``; and its filter left out key_grant,
    rekey and the box's own recording entries."""
    from firmware.storage.audit import ACTIONS

    alice, audrey = people["alice"], people["audrey"]
    box.post(
        alice, "/users", {"name": "newbie", "password": "a long enough password 7", "roles": "auditor"},
        token_from="/users",
    )  # fmt: skip
    box.services.audit.append(
        "alice",
        "config_change",
        "policy.rules",
        {"changed": {"lines": [{"line": 2, "mode": "on_demand"}, {"line": 3, "mode": "by_rule"}]}},
        box.clock(),
    )
    box.services.audit.append(
        "system", "config_change", "config", {"lines": {"1": "never"}, "country": "uk"}, box.clock()
    )
    box.services.audit.append("sam", "playback", "7", {"line": 1, "duration_s": 90.894875}, box.clock())
    page = audrey.get("/audit").get_data(as_text=True)
    for code in ("user_add", "policy.rules", "on_demand", "by_rule", ">never<", "Country</dt><dd>uk"):
        assert code not in page, code
    for words in (
        "Added a user",
        "Recording rules",
        "On demand (button or code)",
        "By the rules",
        "Never (a private line)",
        "United Kingdom",
        "Auditor",
        "<dt>Length</dt><dd>1 min 31 s</dd>",
    ):
        assert words in page, words
    options = re.findall(r'<option value="([a-z_]+)"', page)
    assert sorted(options) == sorted(ACTIONS)
    from firmware import words

    assert set(ACTIONS) <= set(words.ACTIONS)  # each in words of its own, not its code's
    assert "newbie" in audrey.get("/audit?action=config_change").get_data(as_text=True)


def test_the_recovery_page_with_nothing_to_confirm_leads_somewhere_you_may_go(box, people):
    """A supervisor who is not an installer was sent on to the settings page: 403."""
    resp = people["sam"].get("/setup/recovery")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert people["sam"].get("/").status_code == 200
    assert people["alice"].get("/setup/recovery").headers["Location"] == "/settings"


def test_the_users_page_says_what_was_done(box, people):
    """Adding a user, changing one, setting a password: the page came back as it was."""
    alice = people["alice"]
    resp = box.post(
        alice, "/users", {"name": "newbie", "password": "a long enough password 7", "roles": "auditor"},
        token_from="/users",
    )  # fmt: skip
    assert resp.headers["Location"] == "/users?done=added&name=newbie"
    page = alice.get(resp.headers["Location"]).get_data(as_text=True)
    assert "newbie added: they can log in now." in page
    resp = box.post(
        alice, "/users/newbie", {"roles": ["auditor", "staff"], "lines": "1"}, token_from="/users"
    )
    assert "newbie changed" in alice.get(resp.headers["Location"]).get_data(as_text=True)
    # Only of an account there is: a link cannot make the page say anything else.
    assert 'id="users-done"' not in alice.get("/users?done=added&name=nobody").get_data(as_text=True)


def test_the_audit_trail_is_filtered_by_who_and_when(box, people):
    """An auditor asked 'what did sam do last week' could only page through every action."""
    import re

    audrey = people["audrey"]
    log = box.services.audit
    day = 86_400_000_000
    t0 = box.T0_US + 400 * day  # 2027-04-06: later than anything the setup wrote
    log.append("sam", "playback", "call:1", {"line": 1}, t0)
    log.append("sue", "playback", "call:3", {"line": 3}, t0 + 3600_000_000)
    log.append("sam", "playback", "call:2", {"line": 2}, t0 + 2 * day)

    def seqs(query):
        page = audrey.get("/audit?" + query).get_data(as_text=True)
        return [int(n) for n in re.findall(r'<tr class="action-playback"><th scope="row">(\d+)</th>', page)]

    everyone = seqs("action=playback")
    assert len(everyone) == 3
    assert len(seqs("action=playback&who=sam")) == 2 and len(seqs("who=sue&action=playback")) == 1
    day_of_t0 = "2027-04-06"
    assert seqs("action=playback&from=%s&to=%s" % (day_of_t0, day_of_t0)) == everyone[1:]
    assert seqs("action=playback&who=sam&from=%s&to=%s" % (day_of_t0, day_of_t0)) == everyone[2:]
    assert audrey.get("/audit?from=2027-02-30").status_code == 400
    assert audrey.get("/audit?from=2027-04-08&to=2027-04-06").status_code == 400
    assert audrey.get("/audit?who=" + "x" * 65).status_code == 400


def test_the_auditor_downloads_the_audit_trail_as_its_filter_selects(box, people):
    """An inspector asks for a copy of who listened to what: the trail could only be read
    on the box, a hundred entries a page. The CSV holds what the page shows, filtered
    alike, with the hashes that let the copy be checked against a chain head."""
    import csv
    import io

    audrey = people["audrey"]
    log = box.services.audit
    t0 = box.T0_US + 400 * 86_400_000_000  # 2027-04-06: later than anything the setup wrote
    log.append("sam", "playback", "call:1", {"line": 1}, t0)
    log.append("sue", "playback", "call:3", {"line": 3}, t0 + 3600_000_000)
    page = audrey.get("/audit?action=playback&who=sam").get_data(as_text=True)
    assert 'href="/audit.csv?action=playback&amp;who=sam"' in page
    resp = audrey.get("/audit.csv?action=playback&who=sam")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["actor"], r["about"], r["at"]) for r in rows] == [
        ("sam", "call:1", "2027-04-06T09:00:00.000Z")
    ]
    assert rows[0]["what"] == "Played a recording" and json.loads(rows[0]["details"]) == {"line": 1}
    # Every entry, oldest first, each the one the chain holds.
    everything = list(csv.DictReader(io.StringIO(audrey.get("/audit.csv").get_data(as_text=True))))
    kept = log.entries(limit=10_000, newest_first=False)
    assert [int(r["seq"]) for r in everything] == [e.seq for e in kept[: len(everything)]]
    assert [r["hash"] for r in everything] == [e.hash for e in kept[: len(everything)]]
    assert everything[1]["prev_hash"] == everything[0]["hash"]
    exported = log.entries(limit=1)[0]
    assert (exported.action, exported.target) == ("export_list", "audit")
    assert exported.details["rows"] == len(everything)
    assert audrey.get("/audit.csv?from=2027-02-30").status_code == 400
    assert people["sam"].get("/audit.csv").status_code == 403


def test_the_audit_trail_csv_is_sent_as_it_is_read_not_made_whole_first(box, people, monkeypatch):
    """100 000 entries were read, written to one string, copied and encoded before the
    first byte left: tens of MB held three times over in a web UI of 384 MiB. Now the
    entries are read a thousand at a time as the download goes; the audit entry says
    how many rows it holds, and they are the entries there when it was asked for."""
    import csv
    import io

    log = box.services.audit
    for n in range(1500):
        log.append_soon("sam", "playback", "call:%d" % n, {"line": 1}, box.clock())
    log.flush()
    reads = []
    entries = log.entries
    monkeypatch.setattr(log, "entries", lambda *a, **kw: reads.append(kw.get("limit")) or entries(*a, **kw))
    resp = people["audrey"].get("/audit.csv?action=playback", buffered=False)
    assert resp.status_code == 200 and sum(reads) < 1500  # read as it goes, not whole first
    exported = log.entries(limit=1)[0]
    assert (exported.action, exported.details["rows"]) == ("export_list", 1500)
    reads.clear()
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 1500 and rows[-1]["about"] == "call:1499"
    assert max(reads) <= 1000


def test_an_audit_csv_whose_reading_fails_part_way_says_so_in_its_last_row(box, people, monkeypatch, caplog):
    """The answer is 200 before the entries are read: a read failing part way ended the
    file short, with nothing in it to say so, and the audit entry (written first) said
    every row had left. Now its last row says it stopped early, how many rows it holds
    of how many, and why; the error is logged, and the early stop audited."""
    import csv
    import io
    import sqlite3

    import web.views

    log = box.services.audit
    for n in range(1500):
        log.append_soon("sam", "playback", "call:%d" % n, {"line": 1}, box.clock())
    log.flush()
    monkeypatch.setattr(web.views, "CSV_CHUNK_ROWS", 100)
    entries = log.entries

    def failing(*a, **kw):
        if kw.get("after_seq"):  # the second batch (the first reads from the start)
            raise sqlite3.OperationalError("disk I/O error")
        return entries(*a, **kw)

    monkeypatch.setattr(log, "entries", failing)
    resp = people["audrey"].get("/audit.csv?action=playback")
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 1000 + 1 and rows[1000][5] == "call:999"
    assert rows[-1] == [
        "EXPORT STOPPED EARLY: this copy is NOT complete. Only the 1000 rows above were "
        "written, of the 1500 it should hold (OperationalError: disk I/O error). Download it again."
    ]
    assert "the audit CSV stopped after 1000 of 1500 rows" in caplog.text
    monkeypatch.setattr(log, "entries", entries)
    cut, exported = log.entries(limit=2)
    assert (exported.action, exported.details["rows"]) == ("export_list", 1500)
    assert (cut.actor, cut.action, cut.target) == ("audrey", "export_list_cut", "audit")
    assert (cut.details["rows"], cut.details["of"]) == (1000, 1500)
    assert cut.details["reason"] == "OperationalError: disk I/O error" and "address" in cut.details


def test_an_alarm_raised_while_a_page_is_open_is_news_on_its_stream(box, people):
    """The stream sent line states only: an open dashboard kept the banner it was drawn
    with, saying an alarm was cleared while it was on again."""
    import threading

    timer = threading.Timer(0.1, box.alarm_log.set, ("no_line_voltage", True), {"line": 2})
    timer.start()
    body = people["sam"].get("/api/events").get_data(as_text=True)
    timer.join()
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert len({e["alarms"] for e in events}) == 2  # a message for the alarm, lines unchanged
    now = people["sam"].get("/api/alarms?next=/calls").get_json()
    assert now["signature"] == events[-1]["alarms"]
    assert "No voltage on the line" in now["banner"] and "still on" in now["banner"]
    assert 'name="next" value="/calls"' in now["banner"]
    assert people["sam"].get("/api/alarms?next=//evil.example").get_json()["banner"].count('value="/"') == 1


def test_the_alarm_history_is_downloaded_as_csv_by_those_who_see_alarms(box, people):
    """An inspector asks when the recording was down and who saw it: the alarm history
    could only be read on the box. The CSV holds each occurrence, oldest first, times in
    UTC; a message that would be a formula stays text; the download is audited."""
    import csv
    import io

    log = box.alarm_log
    t0 = box.T0_US
    log.set("no_line_voltage", True, line=2, message="no line voltage on line 2", wall_us=t0)
    log.set("no_line_voltage", False, line=2, wall_us=t0 + 300_000_000)
    log.set("disk_warning", True, message='=HYPERLINK("http://evil.example")', wall_us=t0 + 600_000_000)
    audrey = people["audrey"]
    assert 'id="alarms-csv" href="/alarms.csv"' in audrey.get("/alarms").get_data(as_text=True)
    resp = audrey.get("/alarms.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    mine = [r for r in rows if r["kind"] in ("no_line_voltage", "disk_warning")]
    assert [(r["line"], r["raised_at"], r["cleared_at"]) for r in mine] == [
        ("2", "2026-03-02T09:00:00.000Z", "2026-03-02T09:05:00.000Z"),
        ("box", "2026-03-02T09:10:00.000Z", ""),
    ]
    assert mine[1]["message"] == '\'=HYPERLINK("http://evil.example")'
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.actor, exported.action, exported.target) == ("audrey", "export_list", "alarms")
    assert exported.details["rows"] == len(rows)
    assert people["ivan"].get("/alarms.csv").status_code == 200


@pytest.mark.parametrize("who,path", [("ivan", "/settings"), ("audrey", "/rules")])
def test_the_lines_table_headers_say_which_way_they_run(box, people, who, path):
    """The lines tables' headers had no scope and each row's line number was a plain cell:
    a screen reader in a row's field could not say which line, or which column, it was in."""
    page = people[who].get(path).get_data(as_text=True)
    table = re.search(r'<table class="lines-form cards">(.*?)</table>', page, re.S).group(1)
    head, body = table.split("</thead>")
    assert len(re.findall(r"<th[ >]", head)) == head.count('<th scope="col">') >= 2, head
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    firsts = [re.match(r'\s*<th scope="row"(?: data-label="Line")?>(?:Line )?(\d)', r) for r in rows]
    assert [m and m.group(1) for m in firsts] == ["1", "2", "3", "4"], rows


def test_the_audit_csv_goes_on_from_the_last_entry_it_read_not_past_skipped_ones(box, people):
    """A copy of 100 000 entries was read a thousand at a time past ever more skipped
    rows: on a trail of 1.5 million entries, filtered by a user, 9 s."""
    from web.views.audit import _csv_rows

    log = box.services.audit
    for n in range(7):
        log.append("sam", "playback", "call:%d" % n, {}, box.T0_US + n)
    statements = []
    log._db.set_trace_callback(statements.append)
    try:
        rows = list(_csv_rows(log, {"actor": "sam", "action": "playback"}, 7, batch=3))
    finally:
        log._db.set_trace_callback(None)
    assert [r[2] for r in rows] == ["sam"] * 7 and [r[5] for r in rows] == ["call:%d" % n for n in range(7)]
    reads = [s for s in statements if s.startswith("SELECT seq, wall_us")]
    assert len(reads) == 3 and all(
        s.endswith("LIMIT 3 OFFSET 0") or s.endswith("LIMIT 1 OFFSET 0") for s in reads
    )
    assert ["seq > %d" % rows[k][0] in s for k, s in ((2, reads[1]), (5, reads[2]))] == [True, True]


def test_a_line_not_in_digits_0_to_9_is_refused_and_nothing_changes(box, people):
    """int() took Arabic-Indic digits: a supervisor granted line "١" got line 1."""
    before = snapshot_db(box)
    form = {"name": "bob", "password": "practice manager pw1", "roles": ["supervisor"], "lines": ["\u0661"]}
    resp = box.post(people["alice"], "/users", form, token_from="/users")
    assert resp.status_code == 400 and "Lines are numbered 1 to" in page_of(resp)
    assert snapshot_db(box) == before


def test_the_cards_rate_says_what_it_is_averaged_over_and_days_are_counted(box, people):
    """ "40.0 GB written a day" did not say over what: the kernel's count since the box last
    started (a restart begins it again); and a card a day in service was "in service 1 days"."""
    import dataclasses

    from web.services import disk_and_clock_health

    wear = {
        "bytes_written_per_day": 2 * 10**9,
        "card_size_bytes": 32 * 10**9,
        "erase_cycles_assumed": 1000,
        "projected_life_days": 16_000,
        "in_service_days": 1,
        "life_left_days": 15_999,
        "replace_by": None,
        "measured_s": 3 * 86_400 + 600,
        "own_wear": None,
        "alarm": None,
    }

    class Clock:
        synchronised = True

    box.web.services = dataclasses.replace(
        box.web.services, health=disk_and_clock_health(box.data_dir, Clock(), card=lambda data_dir: wear)
    )
    page = people["ivan"].get("/").get_data(as_text=True)
    assert "2.0 GB written a day (the average over the 3 days since the box last started)" in page, page
    assert "in service 1 day, so about" in page, page
    wear["measured_s"] = 7 * 3600
    page = people["ivan"].get("/").get_data(as_text=True)
    assert "(the average over the 7 hours since the box last started)" in page, page


def test_every_entry_about_a_call_names_it_as_a_call_on_the_audit_page(box, people):
    """A call's page opened, and a caller's details erased, showed "About 1" and "About
    call:1" where a playback or an export of the same call shows "call 1", a link to it."""
    log = box.services.audit
    log.append("sam", "call_viewed", "1", {"line": 1}, box.clock())
    log.append("sam", "erase_details", "call:2", {"request": "erasure", "reason": "ref 12"}, box.clock())
    log.append("sam", "playback", "3", {"line": 3}, box.clock())
    page = people["audrey"].get("/audit").get_data(as_text=True)
    abouts = re.findall(r'<td data-label="About" class="ref">(.*?)</td>', page)
    for call_id in (1, 2, 3):
        assert '<a href="/calls/%d">call %d</a>' % (call_id, call_id) in abouts, (call_id, abouts[:3])


def test_deleting_an_account_says_it_is_deleted(box, people):
    """An owner closing down deleted an auditor's account: the page came back without it and
    said nothing, where adding, changing, disabling or enabling one each says what was done."""
    alice = people["alice"]
    resp = box.post(alice, "/users/audrey/delete", {}, token_from="/users")
    assert resp.status_code == 302
    page = alice.get(resp.headers["Location"]).get_data(as_text=True)
    said = re.search(r'<p class="ok" id="users-deleted" role="status">(.*?)</p>', page)
    assert said and said.group(1) == (
        "audrey is deleted: nobody can log in to the account; what it did stays in the audit trail "
        "under its name."
    ), page[:3000]
    # A link naming an account that is there says nothing of a deletion.
    assert 'id="users-deleted"' not in alice.get("/users?deleted=sam").get_data(as_text=True)


def test_the_saved_settings_say_what_a_change_of_country_does_only_when_it_changed(box, people):
    """Every save said "A change of country takes effect at once", a line name's change too,
    as if the country had changed: said only when it did."""
    ivan = people["ivan"]

    def saved(**over):
        resp = box.post(ivan, "/settings", settings_form(box, **over), token_from="/settings")
        assert resp.status_code == 302, page_of(resp)[-1500:]
        page = html.unescape(ivan.get(resp.headers["Location"]).get_data(as_text=True))
        return re.search(r'<p class="notice" id="saved">(.*?)</p>', page, re.S).group(1)

    assert saved(**{"line-2-name": "Sales"}) == "Saved."
    assert saved(**{"line-2-name": "Sales", "country": "us"}) == (
        "Saved. The change of country takes effect at once: the lines' signalling and tones, the "
        "announcement's voice and how reports compare numbers."
    )
    assert box.web.site.settings().country == "us"
