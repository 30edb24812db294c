"""The Users page says when each account last logged in; an account nobody has logged in to
for 90 days is disabled (PCI DSS v4.0 8.2.6): a leaver's account, never deleted, kept
opening what it opened, and the box only listed it."""

import html
import sqlite3

import pytest

from firmware.localtime import LocalTime, box_zone
from web import inactive
from web.inactive import UNUSED_DAYS
from web.passwords import CHEAP_COST, check_password, hash_password

from support.web import PASSWORDS, restart_web

DAY_S = 86_400
DISABLED_SAID = "This account was disabled after 90 days unused. Ask an installer to enable it."


def _days_pass(box, days):
    """``days`` pass on the box, for the web UI as for the recorder, and the recorder's
    retention sweep passes its clock guard at their end: the time the box has accepted,
    which accounts are disabled by (:func:`web.inactive.accepted_us`). The test box's
    recorder clock runs 40 days ahead of the web UI's, so that time is never before it.
    The sweeps come at least every 30 days: a longer gap is a jump to the guard
    (``clock_max_ahead_days``), as a box switched off for months."""
    box.clock.advance(days * DAY_S)
    while days > 0:
        step, days = min(days, 30), days - min(days, 30)
        box.box_clock.run_until(box.box_clock.now_us() + step * DAY_S * 10**6)
        assert box.sweeper.sweep().refused is None


def _page(client):
    return client.get("/users").get_data(as_text=True)


def _unused_said(page):
    return page.split('id="unused-accounts">')[1].split("</p>")[0]


def _disabled(box):
    return {
        e.target: e
        for e in box.services.audit.entries(limit=100, action="account_disabled", newest_first=False)
    }


def test_accounts_unused_for_90_days_are_listed_then_disabled_at_the_next_login(box, people, monkeypatch):
    page = _page(people["alice"])
    assert 'id="unused-accounts"' not in page
    assert (
        page.split('id="last-login-sam">')[1].startswith("Last login: ")
        and "never" not in page.split('id="last-login-sam">')[1].split("</span>")[0]
    )
    _days_pass(box, UNUSED_DAYS - 1)
    alice = box.login("alice")
    audrey = box.login("audrey")
    assert 'id="unused-accounts"' not in _page(alice)  # 89 days: not yet
    _days_pass(box, 2)
    # Listed until the box's check comes round (held back here), with what will happen.
    with monkeypatch.context() as held:
        held.setattr(inactive, "disable_unused", lambda web: [])
        alice = box.login("alice")
        page = _page(alice)
    said = _unused_said(page)
    assert said.startswith("Not logged in for 90 days or more: ")
    for name in ("ivan", "sam", "sue"):
        assert "%s (91 days)" % name in said
    assert "alice" not in said and "audrey" not in said
    assert "disabled at the box's next check" in said and "delete theirs below" in said
    assert "last enabled installer" not in said
    assert "(unused for 91 days)" in page.split('id="last-login-sam"')[1].split("</th>")[0]
    assert not _disabled(box)
    # Anyone's login runs the check first: those three are disabled, audited by the box.
    audrey = box.login("audrey")
    disabled = _disabled(box)
    assert sorted(disabled) == ["ivan", "sam", "sue"]
    assert {(e.actor, e.details["reason"]) for e in disabled.values()} == {("system", "unused for 90 days")}
    page = _page(alice)
    assert 'id="unused-accounts"' not in page  # disabled now, no longer waiting
    state = page.split('id="disabled-sam">')[1].split("</span>")[0]
    assert state.startswith("Disabled since ") and "(unused for 90 days)" in state
    assert 'id="enable-sam"' in page and 'id="disable-sam"' not in page
    assert 'id="disable-audrey"' in page and 'id="enable-audrey"' not in page
    readonly = _page(audrey)
    assert "<form" not in readonly.split("<main")[1].split("</main>")[0]
    assert "(unused for 90 days)" in readonly.split('id="disabled-sam">')[1].split("</span>")[0]


def test_the_periodic_round_disables_them_without_anyone_logging_in(box, people):
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("alice")
    _days_pass(box, 1)
    box.web.sweep()  # the server's, every half minute, with no request
    assert sorted(_disabled(box)) == ["audrey", "ivan", "sam", "sue"]
    assert box.web.accounts.get("alice").disabled_us is None
    box.web.sweep()  # disabled once, audited once
    assert len(box.services.audit.entries(limit=100, action="account_disabled")) == 4


def test_a_supervisor_disabled_by_the_round_leaves_the_staff_notice_at_once(box, people):
    """The staff notice names the enabled supervisors as who may listen: one the box disabled
    as unused is no longer, and the notice's new words are kept as in effect from then, as
    a disabling on the Users page keeps them, not first dated when someone next opens it."""
    box.login("alice").get("/documents/staff-notice")  # a version kept: the box shows it
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("alice")
    _days_pass(box, 1)
    box.web.sweep()
    kept = box.services.audit.entries(limit=1, action="staff_notice")[0]
    assert kept.actor == "system" and kept.details.get("saved")
    assert [x.split(" ")[0] for x in kept.details["notice"]["listeners"]] == ["alice"]


def test_the_right_password_of_a_disabled_account_is_told_why_a_wrong_one_is_not(box, people):
    _days_pass(box, UNUSED_DAYS)
    box.web.sweep()
    logins = len(box.services.audit.entries(limit=100, action="login"))
    client = box.client()
    wrong = box.try_login(client, "sam", "not sams password 7")
    assert wrong.status_code == 400
    text = wrong.get_data(as_text=True)
    assert "Wrong user name or password." in text and "disabled" not in text
    nobody = box.try_login(client, "nobody", "not anyones password 7").get_data(as_text=True)
    assert "Wrong user name or password." in nobody and "disabled" not in nobody
    right = box.try_login(client, "sam", PASSWORDS["sam"])
    assert right.status_code == 403
    assert DISABLED_SAID in right.get_data(as_text=True)
    assert client.get("/calls").status_code == 302  # no session
    entry = box.services.audit.entries(limit=1, action="login_failed")[0]
    assert (entry.target, entry.details["disabled"]) == ("sam", "unused for 90 days")
    assert len(box.services.audit.entries(limit=100, action="login")) == logins


def test_the_last_enabled_installer_is_never_disabled_but_stays_listed(box, people):
    """alice and ivan, the installers, unused alike: one is disabled, the other kept, or
    nobody could enable anyone again."""
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("audrey")
    _days_pass(box, 2)
    audrey = box.login("audrey")
    disabled = _disabled(box)
    assert "alice" in disabled and "ivan" not in disabled
    said = _unused_said(_page(audrey))
    assert "ivan (91 days)" in said
    assert "ivan is the box's last enabled installer, so it is not disabled" in said
    box.web.sweep()
    assert "ivan" not in _disabled(box)
    ivan = box.login("ivan")  # the kept installer still logs in, and enables alice
    assert box.post(ivan, "/users/alice/enable", token_from="/users").status_code == 302
    box.login("alice")


def test_an_installer_disables_and_enables_an_account_and_its_session_ends(box, people):
    alice, sam = people["alice"], people["sam"]
    assert sam.get("/calls").status_code == 200
    resp = box.post(alice, "/users/sam/disable", token_from="/users")
    assert resp.status_code == 302 and "done=disabled" in resp.location
    entry = box.services.audit.entries(limit=1, action="account_disabled")[0]
    assert (entry.actor, entry.target, entry.details["reason"]) == ("alice", "sam", "by an installer")
    assert sam.get("/calls").status_code == 302  # logged out at the next request
    refused = box.try_login(box.client(), "sam", PASSWORDS["sam"])
    assert refused.status_code == 403
    assert "This account was disabled by an installer. Ask an installer to enable it." in refused.get_data(
        as_text=True
    )
    again = box.post(alice, "/users/sam/disable", token_from="/users")
    assert again.status_code == 400 and "sam is disabled already" in again.get_data(as_text=True)
    resp = box.post(alice, "/users/sam/enable", token_from="/users")
    assert resp.status_code == 302 and "done=enabled" in resp.location
    entry = box.services.audit.entries(limit=1, action="account_enabled")[0]
    assert (entry.actor, entry.target, entry.details["reason"]) == ("alice", "sam", "by an installer")
    # The audit page writes since when it was disabled as it writes its times, not in µs.
    page = people["audrey"].get("/audit?action=account_enabled").get_data(as_text=True)
    was = LocalTime(box_zone(None)).when(entry.details["was_disabled_us"])
    assert "<dt>Was disabled</dt><dd>%s</dd>" % was in page
    assert str(entry.details["was_disabled_us"]) not in page
    box.login("sam")
    resp = box.post(alice, "/users/sam/enable", token_from="/users")
    assert resp.status_code == 400 and "sam is not disabled" in resp.get_data(as_text=True)


def test_enabling_starts_the_unused_days_again(box, people):
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("alice")
    _days_pass(box, 11)
    alice = box.login("alice")  # her login disables the others
    assert box.web.accounts.get("sam").disabled_us is not None
    assert box.post(alice, "/users/sam/enable", token_from="/users").status_code == 302
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("alice")
    box.web.sweep()
    assert box.web.accounts.get("sam").disabled_us is None  # 89 days since enabled
    _days_pass(box, 1)
    box.web.sweep()
    assert box.web.accounts.get("sam").disabled_us is not None
    entries = box.services.audit.entries(limit=100, action="account_disabled")
    assert [e.target for e in entries].count("sam") == 2


def test_a_disable_that_would_leave_no_enabled_installer_or_is_ones_own_is_refused(box, people):
    alice, ivan = people["alice"], people["ivan"]
    before = box.db_users()
    own = box.post(alice, "/users/alice/disable", token_from="/users")
    assert own.status_code == 400 and "You cannot disable your own account" in own.get_data(as_text=True)
    assert box.post(alice, "/users/ivan/disable", token_from="/users").status_code == 302
    # ivan's session ended; alice is the last enabled installer
    assert ivan.get("/users").status_code == 302
    assert box.post(people["sam"], "/users/alice/disable", token_from="/calls").status_code == 403
    ivan_again = box.client()
    assert box.try_login(ivan_again, "ivan", PASSWORDS["ivan"]).status_code == 403
    after = box.db_users()
    assert [r for r in after if r[0] != "ivan"] == [r for r in before if r[0] != "ivan"]
    assert box.post(alice, "/users/nobody/disable", token_from="/users").status_code == 404
    assert box.post(alice, "/users/nobody/enable", token_from="/users").status_code == 404


def test_a_new_account_counts_from_when_it_was_made_and_not_an_old_namesakes_login(box, people):
    """An account never logged in to counts from when it was made; one made again under a
    leaver's name is not taken as used by the leaver's logins."""
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("alice")
    _days_pass(box, 11)
    alice = box.login("alice")
    assert box.web.accounts.get("sam").disabled_us is not None
    box.post(alice, "/users/sam/delete")
    box.add_user(alice, "sam", ["supervisor"], lines=(1,))
    page = _page(alice)
    assert page.split('id="last-login-sam">')[1].split("</span>")[0] == "Last login: never"
    assert 'id="disabled-sam"' not in page
    _days_pass(box, UNUSED_DAYS - 1)
    box.login("alice")
    assert box.web.accounts.get("sam").disabled_us is None
    _days_pass(box, 1)
    box.login("alice")
    assert box.web.accounts.get("sam").disabled_us is not None


def test_accounts_of_a_web_db_from_an_earlier_release_load_enabled(box, people):
    """A web.db made before accounts could be disabled has no such columns: its accounts
    are enabled, and log in."""
    path = box.web.db.path
    db = sqlite3.connect(path)
    for column in ("disabled_us", "disabled_why", "enabled_us"):
        db.execute("ALTER TABLE users DROP COLUMN %s" % column)
    db.commit()
    db.close()
    restart_web(box)
    assert [u.disabled_us for u in box.web.accounts.all()] == [None] * 5
    box.login("sam")


def test_a_session_of_an_account_disabled_elsewhere_ends_at_its_next_request(box, people):
    """A disable whose sessions were not ended with it (its change committed, the process
    stopped before the sessions ended; another web UI's) still logs the person out."""
    sam = people["sam"]
    with box.web.db.tx() as conn:
        box.web.accounts.disable(conn, "sam", inactive.UNUSED_REASON)
    resp = sam.get("/calls")
    assert resp.status_code == 302 and "/login" in resp.location
    assert not box.web.db.query("SELECT id_hash FROM sessions WHERE user = 'sam'")


def test_a_new_password_or_an_unlock_of_a_disabled_account_says_it_stays_disabled(box, people):
    """A forgotten password set anew, or a lockout ended, for an account that is disabled:
    the page said they "can log in now" (or from their next login), and the installer sent
    the person to a login that refuses them. It says the account is still disabled."""
    alice = people["alice"]
    assert box.post(alice, "/users/audrey/disable", token_from="/users").status_code == 302
    new = {"password": "a brand new pass word 9"}
    resp = box.post(alice, "/users/audrey/password", data=new, token_from="/users")
    assert resp.status_code == 302 and "done=password" in resp.location
    done = alice.get(resp.location).get_data(as_text=True).split('id="users-done" role="status">')[1]
    done = done.split("</p>")[0]
    assert done.startswith("audrey has a new password") and "still disabled" in done, done
    box.lock_out("audrey")
    resp = box.post(alice, "/users/audrey/unlock", token_from="/users")
    assert resp.status_code == 302 and "done=unlocked" in resp.location
    done = alice.get(resp.location).get_data(as_text=True).split('id="users-done" role="status">')[1]
    done = done.split("</p>")[0]
    assert "they can log in now" not in done and "still disabled" in done, done
    # Enabled, the words are as they were.
    assert box.post(alice, "/users/audrey/enable", token_from="/users").status_code == 302
    box.lock_out("audrey")
    resp = box.post(alice, "/users/audrey/unlock", token_from="/users")
    done = alice.get(resp.location).get_data(as_text=True).split('id="users-done" role="status">')[1]
    assert done.split("</p>")[0] == "audrey is unlocked: they can log in now."


def _held_said(page):
    if 'id="unused-held"' not in page:
        return None
    return html.unescape(page.split('id="unused-held">')[1].split("</span>")[0])


def test_a_clock_jump_while_the_clock_is_not_synchronised_disables_nothing(box, people, monkeypatch):
    """A clock set to next year (no time server, a wrong one, by hand) made every account
    look a year unused: all but the last installer were disabled at once."""
    health = {"disk_free_bytes": 10**9, "disk_total_bytes": 4 * 10**9, "clock_synced": False, "alarms": []}
    monkeypatch.setattr(box.services, "health", lambda: dict(health))
    monkeypatch.setattr(box.box_clock, "synchronised", False)
    box.box_clock.start_wall_us += 365 * DAY_S * 10**6  # the jump, on the recorder's clock too
    box.clock.advance(365 * DAY_S)
    assert box.sweeper.sweep().refused == "unsynchronised"
    box.web.sweep()
    ivan = box.login("ivan")  # a login's check too
    assert not _disabled(box)
    assert all(box.web.accounts.get(n).disabled_us is None for n in ("alice", "audrey", "sam", "sue"))
    page = _page(ivan)
    assert "sam (365 days)" in _unused_said(page)  # still listed, and why they wait
    assert _held_said(page).startswith("Not disabled now: the box's clock is not synchronised")
    assert "disabled at the box's next check" not in _unused_said(page)
    assert _held_said(_page(box.login("audrey"))).startswith("Not disabled now: the box's clock is not")
    # Synchronised at the same time (the server agreed): a step made while unsynchronised
    # is a jump to the retention sweep's guard, and the accounts wait for an installer too.
    health["clock_synced"] = True
    monkeypatch.setattr(box.box_clock, "synchronised", True)
    assert box.sweeper.sweep().refused == "jump"
    box.web.sweep()
    assert not _disabled(box)
    assert _held_said(_page(ivan)).startswith("Not disabled now: the box's clock jumped")
    box.sweeper.confirm_clock("ivan")
    box.web.sweep()
    assert sorted(_disabled(box)) == ["alice", "sam", "sue"]
    assert _held_said(_page(ivan)) is None


def test_a_clock_jump_the_retention_guard_caught_disables_nothing_until_confirmed(box, people):
    """Synchronised to a wrong time server a year ahead: the retention sweep's guard holds
    deletion back until an installer confirms the time, and the accounts wait with it."""
    box.box_clock.start_wall_us += 365 * 86_400 * 10**6
    assert box.sweeper.sweep().refused == "jump"
    box.clock.advance(365 * DAY_S)
    box.web.sweep()
    ivan = box.login("ivan")
    assert not _disabled(box)
    said = _held_said(_page(ivan))
    assert said.startswith("Not disabled now: the box's clock jumped and an installer has not confirmed")
    box.sweeper.confirm_clock("ivan")
    box.web.sweep()
    assert sorted(_disabled(box)) == ["alice", "audrey", "sam", "sue"]


def test_a_clock_step_while_synchronised_disables_nothing_before_the_guard_has_judged_it(box, people):
    """A clock stepped a year ahead while synchronised (a wrong time server) is seen by the
    retention sweep's guard at its next sweep, up to an hour later; counted by meanwhile,
    every account but the last installer's was disabled at once. The days are counted to
    the time the guard last passed, at most (web.inactive.accepted_us)."""
    box.box_clock.start_wall_us += 365 * DAY_S * 10**6  # the recorder's clock and the web UI's
    box.clock.advance(365 * DAY_S)
    box.web.sweep()
    ivan = box.login("ivan")  # a login's check too
    assert not _disabled(box)
    page = _page(ivan)
    assert "sam (365 days)" in _unused_said(page)  # listed by the clock, as it says
    assert _held_said(page) is None  # (nothing known wrong yet)
    assert box.sweeper.sweep().refused == "jump"  # the guard's next sweep
    box.web.sweep()
    assert not _disabled(box)
    assert _held_said(_page(ivan)).startswith("Not disabled now: the box's clock jumped")
    box.sweeper.confirm_clock("ivan")  # the time was right after all
    box.web.sweep()
    assert sorted(_disabled(box)) == ["alice", "audrey", "sam", "sue"]


def test_nothing_is_disabled_before_a_retention_sweep_has_checked_the_clock(box, people):
    _days_pass(box, UNUSED_DAYS + 1)
    box.store.set_retention_state("last_passed_wall_us", None)  # as a recorder that never swept
    box.web.sweep()
    alice = box.login("alice")
    assert not _disabled(box)
    said = _held_said(_page(alice))
    assert said.startswith("Not disabled now: the box's clock has not been checked by a retention sweep yet")
    # Its first sweep judges the clock by the newest call, months before: a jump, until confirmed.
    assert box.sweeper.sweep().refused == "jump"
    box.web.sweep()
    assert not _disabled(box)
    box.sweeper.confirm_clock("alice")
    box.web.sweep()
    assert sorted(_disabled(box)) == ["audrey", "ivan", "sam", "sue"]


def _hash_in_db(box, name):
    return box.web.db.one("SELECT pw_hash FROM users WHERE name = ?", (name,))[0]


def test_a_disabled_accounts_password_opens_nothing_under_an_earlier_release(box, people):
    """A release from before accounts could be disabled ignores the columns that say so (a
    firmware rolled back, by hand or by RAUC): it checked the password against web.db's hash
    alone, and a disabled account logged in there again. The hash of a disabled account is
    kept marked, which no release reads as an Argon2id hash; enabled, it is as it was."""
    alice = people["alice"]
    box.post(alice, "/users/sam/disable", token_from="/users")
    _days_pass(box, UNUSED_DAYS)
    box.web.sweep()  # every other but one installer: disabled as unused
    users = box.web.accounts.all()
    (kept,) = [u.name for u in users if u.disabled_us is None]
    assert kept in ("alice", "ivan")
    for user in users:
        # The check an earlier release makes of a login: the password against the hash.
        opens = check_password(PASSWORDS[user.name], _hash_in_db(box, user.name))
        assert opens == (user.disabled_us is None), user.name
    # This release still knows the right password, and says the account is disabled.
    refused = box.try_login(box.client(), "sue", PASSWORDS["sue"])
    assert refused.status_code == 403 and "disabled after 90 days" in refused.get_data(as_text=True)
    installer = box.login(kept)  # (the installer kept enabled)
    # A new password for a disabled account is marked too, and the last four still count.
    new = {"password": "a brand new pass word 9"}
    assert box.post(installer, "/users/audrey/password", data=new, token_from="/users").status_code == 302
    assert not check_password(new["password"], _hash_in_db(box, "audrey"))
    assert box.web.accounts.reused("audrey", new["password"])  # (the one in force)
    assert box.web.accounts.reused("audrey", PASSWORDS["audrey"])  # (the one before it)
    # Enabled, the hash is as before: the password logs in, under any release.
    for name in ("sam", "audrey"):
        assert box.post(installer, "/users/%s/enable" % name, token_from="/users").status_code == 302
    assert check_password(PASSWORDS["sam"], _hash_in_db(box, "sam"))
    assert check_password(new["password"], _hash_in_db(box, "audrey"))
    box.login("sam")
    box.login("audrey", new["password"])


def test_an_account_disabled_before_its_hash_was_marked_is_marked_at_the_next_start(box, people):
    """Disabled by the release before this one, or given a new password by an earlier
    release (which knows no disabled accounts): the web UI's next start marks its hash."""
    box.post(people["alice"], "/users/sam/disable", token_from="/users")
    db = sqlite3.connect(box.web.db.path)
    unmarked = hash_password(PASSWORDS["sam"], CHEAP_COST)
    db.execute("UPDATE users SET pw_hash = ? WHERE name = 'sam'", (unmarked,))
    db.commit()
    db.close()
    restart_web(box)
    assert not check_password(PASSWORDS["sam"], _hash_in_db(box, "sam"))
    assert box.try_login(box.client(), "sam", PASSWORDS["sam"]).status_code == 403


BOOT_AT_SWEEP_US = 3 * DAY_S * 10**6


def _recorder_stopped(
    box, tmp_path, monkeypatch, *, days, stepped_days=0, synced=True, boot="boot-1", suspended=None
):
    """The web UI beside a recorder that does not answer (no socket): its health and its
    retention service as such a web UI has them. ``days`` pass on the web UI's clock (the
    machine's, while the recorder is down), and it is stepped ``stepped_days`` ahead too;
    the recorder's last sweep passed its clock guard 6 days before the end of ``days``, its
    boot clock read with it; the kernel says the clock is ``synced`` or not, and its boot
    clock now reads 6 days on, in ``boot``."""
    import dataclasses

    from firmware import clock
    from firmware.control import ControlClient
    from web.remote import services_for_recorder

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    remote = services_for_recorder(box.data_dir, ControlClient(str(tmp_path / "none.sock"), timeout_s=0.2), 3)
    box.web.services = dataclasses.replace(box.web.services, health=remote.health, retention=remote.retention)
    assert box.web.services.health()["clock_synced"] is False  # what the web UI was told
    box.clock.advance((days + stepped_days) * DAY_S)
    swept_us = box.clock.t_us - (6 + stepped_days) * DAY_S * 10**6
    box.store.set_retention_state("last_passed_wall_us", str(swept_us))
    box.store.set_retention_state("last_passed_boot", "boot-1 %d %d" % (BOOT_AT_SWEEP_US, swept_us))
    box.store.set_retention_state("suspended", suspended)
    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: synced)
    monkeypatch.setattr(clock, "boot_reading", lambda: (boot, BOOT_AT_SWEEP_US + 6 * DAY_S * 10**6))


def test_while_the_recorder_is_stopped_the_login_disables_by_the_boot_clock(
    box, people, tmp_path, monkeypatch
):
    """The web UI took the clock as unsynchronised while the recorder did not answer, and
    disabled nobody: an account 91 days unused logged in for as long as the recorder was
    down. It judges the clock as the command line does then (web.inactive.judged_apart)."""
    _recorder_stopped(box, tmp_path, monkeypatch, days=UNUSED_DAYS + 1)
    logins = len(box.services.audit.entries(limit=100, action="login"))
    client = box.client()
    refused = box.try_login(client, "sam", PASSWORDS["sam"])
    assert refused.status_code == 403
    assert DISABLED_SAID in refused.get_data(as_text=True)
    assert client.get("/calls").status_code == 302  # no session
    disabled = _disabled(box)
    assert disabled["sam"].actor == "system"
    assert disabled["sam"].details == {"reason": "unused for 90 days", "unused_days": 91}
    assert box.web.accounts.get("sam").disabled_why == "unused for 90 days"
    entry = box.services.audit.entries(limit=1, action="login_failed")[0]
    assert (entry.target, entry.details["disabled"]) == ("sam", "unused for 90 days")
    assert len(box.services.audit.entries(limit=100, action="login")) == logins


@pytest.mark.parametrize("stepped_days", [0, 30])
def test_while_the_recorder_is_stopped_89_days_unused_logs_in(
    box, people, tmp_path, monkeypatch, stepped_days
):
    """89 days by the boot clock since the sweep, however far the wall clock was stepped
    on meanwhile (nothing judges a step while the recorder is stopped)."""
    _recorder_stopped(box, tmp_path, monkeypatch, days=UNUSED_DAYS - 1, stepped_days=stepped_days)
    box.login("sam")
    box.web.sweep()
    assert not _disabled(box)


@pytest.mark.parametrize(
    "untrusted, held",
    [
        ({"synced": False}, "the box's clock is not synchronised"),
        ({"suspended": "the clock jumped forward by 2 days"}, "the box's clock jumped"),
        ({"boot": "boot-2"}, None),  # rebooted since the sweep: the days stop at it (85)
    ],
)
def test_while_the_recorder_is_stopped_a_clock_it_cannot_trust_disables_nobody(
    box, people, tmp_path, monkeypatch, untrusted, held
):
    _recorder_stopped(box, tmp_path, monkeypatch, days=UNUSED_DAYS + 1, **untrusted)
    box.web.sweep()
    ivan = box.login("ivan")
    sam = box.login("sam")
    assert not _disabled(box)
    assert sam.get("/calls").status_code == 200
    page = _page(ivan)
    assert "sue (91 days)" in _unused_said(page)  # listed, and why they wait
    if held is None:
        assert _held_said(page) is None
    else:
        assert _held_said(page).startswith("Not disabled now: the recorder is not answering and " + held)
