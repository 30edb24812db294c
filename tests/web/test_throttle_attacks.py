"""Issue 11: the login throttle under attack.

Parallel guesses used to be checked between the throttle's check and its
count (48 at once got 7 password checks instead of 3); three wrong
passwords from one address locked the account's owner out from every other
address; the current-password field of the password form was not throttled.
"""

import threading

from firmware.storage.keystore import KeyStore
from web import passwords
from web.throttle import FREE_FAILURES


def _counting_checks(monkeypatch):
    """Every password check: an account's hash, or (a supervisor's login) their key slot."""
    checks = []
    real = passwords.check_password
    real_unlock = KeyStore.unlock

    def counted(password, phc):
        checks.append(password)
        return real(password, phc)

    def counted_unlock(self, user, password):
        checks.append(password)
        return real_unlock(self, user, password)

    monkeypatch.setattr(passwords, "check_password", counted)
    monkeypatch.setattr(KeyStore, "unlock", counted_unlock)
    return checks


def test_48_parallel_wrong_logins_get_exactly_the_free_checks(box, monkeypatch):
    box.do_setup()
    clients = [box.client() for _ in range(48)]
    tokens = [box.token_of(c, "/login") for c in clients]
    checks = _counting_checks(monkeypatch)
    start = threading.Barrier(48, timeout=10)
    codes = []

    def guess(client, token, n):
        start.wait()
        codes.append(
            client.post(
                "/login", data={"name": "alice", "password": "guess %d 7777" % n, "csrf_token": token}
            ).status_code
        )

    threads = [
        threading.Thread(target=guess, args=(c, t, n))
        for n, (c, t) in enumerate(zip(clients, tokens, strict=False))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each guess let through is checked twice (her key slot, then her account's hash to
    # tell a wrong password from an altered slot): count the guesses.
    assert len(set(checks)) == FREE_FAILURES["acct"]
    assert len(checks) == 2 * FREE_FAILURES["acct"]
    assert sorted(codes) == [400] * FREE_FAILURES["acct"] + [429] * (48 - FREE_FAILURES["acct"])


def test_an_attacker_does_not_lock_the_owner_out(box):
    box.do_setup()
    attacker = box.client()
    attacker.environ_base["REMOTE_ADDR"] = "192.0.2.66"
    for _ in range(5):
        box.try_login(attacker, "alice", "wrong password")
    assert box.try_login(attacker, "alice", box.ADMIN[1]).status_code == 429
    box.login("alice")  # from her own desk (192.0.2.10), at once


def test_the_current_password_field_is_throttled(box, monkeypatch):
    client = box.do_setup()
    checks = _counting_checks(monkeypatch)
    token = box.token_of(client, "/account/password")
    codes = []
    for n in range(8):
        codes.append(
            client.post(
                "/account/password",
                data={
                    "old": "guess %d 7777" % n,
                    "new": "a brand new password 7",
                    "confirm": "a brand new password 7",
                    "csrf_token": token,
                },
            ).status_code
        )
    assert len(checks) == FREE_FAILURES["acct"]
    assert codes == [400] * 3 + [429] * 5
    assert box.audit_actions().count("login_failed") == 3


def test_guesses_from_many_addresses_are_slowed_down_for_the_account(box):
    """Three guesses from each of 20 addresses were 60 password checks in 4 s, none
    throttled: the account's counter was per address only. From anywhere, 10 go, then the
    account is locked out for 30 minutes (PCI DSS 8.3.4), its owner too."""
    from web.throttle import LOCKOUT_AFTER, LOCKOUT_S

    box.do_setup()
    codes = []
    for n in range(1, 25):
        guesser = box.client()
        guesser.environ_base["REMOTE_ADDR"] = "192.0.2.%d" % (100 + n)
        codes.append(box.try_login(guesser, "alice", "wrong password %d" % n).status_code)
    assert codes[:LOCKOUT_AFTER] == [400] * LOCKOUT_AFTER
    assert codes[LOCKOUT_AFTER:] == [429] * (len(codes) - LOCKOUT_AFTER)
    owner = box.client()
    owner.environ_base["REMOTE_ADDR"] = "192.0.2.11"  # a desk she never logged in from
    assert box.try_login(owner, "alice", box.ADMIN[1]).status_code == 429  # she waits there too...
    assert box.web.throttle.wait_s(["lock:alice"]) == LOCKOUT_S  # ...until the lockout ends


def _guess_from(box, name, address, password="wrong password 7"):
    guesser = box.client()
    guesser.environ_base["REMOTE_ADDR"] = address
    return box.try_login(guesser, name, password).status_code


def test_one_guess_every_half_hour_does_not_keep_the_owner_out(box):
    """The lockout from anywhere began again at each failure after the 10th: one guess every
    30 minutes kept the account locked for good, its owner with it. It still stops the
    guesser, audited as before, but not the owner at a desk she logged in from (even days
    ago): she logs in there as usual, and the lockout goes on for everyone else."""
    from web.throttle import LOCKOUT_AFTER, LOCKOUT_S

    box.do_setup()
    box.login("alice")  # her desk, 192.0.2.10
    box.clock.advance(2 * 24 * 3600)  # longer ago than failures are kept
    for n in range(LOCKOUT_AFTER):
        assert _guess_from(box, "alice", "192.0.2.%d" % (100 + n)) == 400
    for n in range(3):
        box.clock.advance(LOCKOUT_S + 1)
        assert _guess_from(box, "alice", "192.0.2.66", "guess %d 7777" % n) == 400  # checked: wrong
        entry = box.services.audit.entries(limit=1, action="login_failed")[0]
        assert "lock" in entry.details["locked"] and entry.details["locked_s"] == LOCKOUT_S
        assert _guess_from(box, "alice", "192.0.2.67", box.ADMIN[1]) == 429  # locked out there
        assert _guess_from(box, "alice", "192.0.2.10", box.ADMIN[1]) == 302  # not at her desk
    assert box.web.throttle.locked_s("alice") == LOCKOUT_S  # her login did not end it


def test_an_installer_unlocks_an_account_locked_from_one_address(box, people):
    """Ten failures in a row from one address lock the account from there (its lockout from
    anywhere does not count them at a desk it logged in from): the Users page shows it locked,
    and an installer's unlock ends it, audited."""
    box.lock_out("sam", "192.0.2.10")
    assert _guess_from(box, "sam", "192.0.2.10", box.PASSWORDS["sam"]) == 429
    page = people["ivan"].get("/users").get_data(as_text=True)
    assert 'id="locked-sam"' in page and "Locked after 10 failed logins, for 30 more minutes" in page
    resp = box.post(people["ivan"], "/users/sam/unlock", {}, token_from="/users")
    assert resp.status_code == 302
    entry = box.services.audit.entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.target) == ("ivan", "account_unlock", "sam")
    assert not box.web.throttle.locked_s("sam")
    box.clock.advance(1)  # the address's own counter (every name from there) stays, for a second
    assert _guess_from(box, "sam", "192.0.2.10", box.PASSWORDS["sam"]) == 302
