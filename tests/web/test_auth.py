"""Logging in and out: CSRF, throttling, session fixation, timeouts, cookies."""

import pytest

from web.security import PRE_COOKIE, SESSION_COOKIE
from web.sessions import id_hash


def session_cookie(client):
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


def test_cookies_are_secure_httponly_samesite_strict(box):
    box.do_setup()
    client = box.client()
    client.get("/login")
    resp = box.try_login(client, "alice", box.ADMIN[1])
    for header in resp.headers.getlist("Set-Cookie"):
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Strict" in header, header
    # The cookie is an opaque id: the database holds only its hash.
    value = session_cookie(client)
    assert len(value) >= 43
    assert box.web.db.one("SELECT count(*) FROM sessions WHERE id_hash = ?", (id_hash(value),))[0] == 1
    assert box.web.db.one("SELECT count(*) FROM sessions WHERE id_hash = ?", (value,))[0] == 0


def test_a_new_session_id_at_login(box):
    box.do_setup()
    client = box.client()
    # A session id planted before login (fixation) is not adopted...
    client.set_cookie(SESSION_COOKIE, "planted-by-an-attacker")
    box.login("alice", client=client)
    first = session_cookie(client)
    assert first != "planted-by-an-attacker"
    # ...and logging in again, even from a live session, issues a new id and
    # ends the old one.
    resp = client.post(
        "/login", data={"name": "alice", "password": box.ADMIN[1], "csrf_token": box.token_of(client, "/")}
    )
    assert resp.status_code == 302
    second = session_cookie(client)
    assert second != first
    stale = box.client()
    stale.set_cookie(SESSION_COOKIE, first)
    assert stale.get("/").status_code == 302


def test_logout_ends_the_session_on_the_server(box):
    box.do_setup()
    client = box.login("alice")
    value = session_cookie(client)
    resp = box.post(client, "/logout")
    assert resp.status_code == 200 and "You are logged out" in resp.get_data(as_text=True)
    assert box.web.db.one("SELECT count(*) FROM sessions WHERE id_hash = ?", (id_hash(value),))[0] == 0
    # Replaying the old cookie does not work.
    replay = box.client()
    replay.set_cookie(SESSION_COOKIE, value)
    assert replay.get("/").headers["Location"].startswith("/login")
    assert replay.get("/api/status").status_code == 401


def test_logout_forgets_the_recording_key(box):
    box.do_setup()
    client = box.login("alice")
    key = box.web.sessions.memory[id_hash(session_cookie(client))]["key"]
    assert key is not None and not key.forgotten
    box.post(client, "/logout")
    assert key.forgotten
    assert id_hash(session_cookie(client) or "") not in box.web.sessions.memory


def test_idle_timeout(box):
    box.do_setup()
    client = box.login("alice")
    key = box.web.sessions.memory[id_hash(session_cookie(client))]["key"]
    box.clock.advance(14 * 60)
    assert client.get("/").status_code == 200  # activity keeps it alive
    box.clock.advance(14 * 60)
    assert client.get("/").status_code == 200
    box.clock.advance(15 * 60 + 1)
    resp = client.get("/")
    assert resp.status_code == 302 and "expired=1" in resp.headers["Location"]
    assert key.forgotten
    assert "without activity" in client.get(resp.headers["Location"]).get_data(as_text=True)


# What pages left open ask for by themselves (web/static/*.js): not someone at the keyboard.
POLLED = ("/api/status", "/api/alarms", "/updates/state.json", "/sar/bundle/nosuchbundle.json")


@pytest.mark.parametrize("url", POLLED)
def test_live_updates_do_not_keep_a_session_alive(box, url):
    box.do_setup()
    client = box.login("alice")
    for _ in range(16):
        box.clock.advance(60)
        client.get(url)
    assert client.get("/api/events").status_code == 401
    assert client.get("/").status_code == 302


def test_the_api_refuses_in_json_and_the_pages_as_pages(box, people):
    """/api/* answered its 401 and 403 with an HTML page, which a page's script asking
    for JSON cannot read: now JSON with a sentence, the same codes; the pages unchanged."""
    anyone = box.client()
    resp = anyone.get("/api/status")
    assert resp.status_code == 401 and resp.mimetype == "application/json"
    assert resp.get_json() == {"error": "This needs you to be logged in."}
    resp = people["sam"].get("/api/my-line")  # a staff member's line: sam is a supervisor
    assert resp.status_code == 403 and resp.mimetype == "application/json"
    assert resp.get_json() == {
        "error": "Your account's role does not allow this. Ask an installer if you need it."
    }
    resp = people["sam"].get("/users")
    assert resp.status_code == 403 and resp.mimetype == "text/html"
    assert "<h1>Not allowed</h1>" in resp.get_data(as_text=True)
    resp = anyone.get("/calls/1/audio?p=x")  # audio, not the API: as before
    assert resp.status_code == 401 and resp.mimetype == "text/html"


def test_sweep_forgets_keys_of_idle_sessions_without_any_request(box):
    box.do_setup()
    box.login("alice")
    keys = [m["key"] for m in box.web.sessions.memory.values()]
    box.clock.advance(16 * 60)
    assert box.web.sessions.sweep() == 2
    assert all(k.forgotten for k in keys)
    assert box.web.db.one("SELECT count(*) FROM sessions")[0] == 0


def test_csrf_token_required_on_every_post(box):
    box.do_setup()
    client = box.login("alice")
    for path, data in (
        ("/logout", {}),
        ("/settings", {"organisation": "Evil"}),
        ("/users", {"name": "mallory", "password": "x" * 12, "roles": "installer"}),
        ("/calls/1/hold", {"on": "1"}),
    ):
        for token in (None, "wrong"):
            form = dict(data)
            if token:
                form["csrf_token"] = token
            resp = client.post(path, data=form)
            assert resp.status_code == 400, path
            assert "security token" in resp.get_data(as_text=True)
    # Nothing changed, and the session is still alive.
    assert box.web.site.settings().organisation == "Acme Plumbing Ltd"
    assert box.web.accounts.get("mallory") is None
    assert box.recordings.held == set()
    assert client.get("/").status_code == 200
    # A header works as well as the form field (for scripts).
    token = box.token_of(client, "/")
    assert (
        client.post(
            "/calls/1/hold",
            data={"on": "1", "hold_reason": "complaint ref 1"},
            headers={"X-CSRF-Token": token},
        ).status_code
        == 302
    )


def test_login_form_needs_its_token_too(box):
    box.do_setup()
    client = box.client()
    client.get("/login")
    resp = client.post("/login", data={"name": "alice", "password": box.ADMIN[1]})
    assert resp.status_code == 400
    # A token from another browser (another pre-login cookie) is refused.
    other = box.client()
    token = box.token_of(other, "/login")
    resp = client.post("/login", data={"name": "alice", "password": box.ADMIN[1], "csrf_token": token})
    assert resp.status_code == 400
    assert client.get_cookie(PRE_COOKIE) is not None


def test_a_failed_login_keeps_no_name_that_is_not_an_account(box):
    """People type their password in the name field: the trail (append-only) never
    holds the text of a name no account has, only that no account had it."""
    box.do_setup()
    client = box.client()
    assert box.try_login(client, "correct horse battery 7", "x").status_code == 400
    assert box.try_login(client, "alice", "wrong password 7").status_code == 400
    unknown, known = box.services.audit.entries(limit=2, action="login_failed", newest_first=False)
    assert (unknown.actor, unknown.target, unknown.details["no_account"]) == ("anonymous", None, True)
    assert "horse" not in repr(unknown.details)
    assert (known.target, "no_account" in known.details) == ("alice", False)


def test_throttling_per_account(box):
    box.do_setup()
    client = box.client()
    for _ in range(3):
        assert box.try_login(client, "alice", "wrong password 7").status_code == 400
    # Now blocked: even the right password is refused without being checked.
    resp = box.try_login(client, "alice", box.ADMIN[1])
    assert resp.status_code == 429
    assert "Wait 1 s" in resp.get_data(as_text=True)
    box.clock.advance(1)
    assert box.try_login(client, "alice", "wrong again").status_code == 400
    resp = box.try_login(client, "alice", box.ADMIN[1])
    assert resp.status_code == 429 and "Wait 2 s" in resp.get_data(as_text=True)
    box.clock.advance(2)
    box.login("alice", client=client)
    # Success clears the counter.
    assert box.try_login(box.client(), "alice", "wrong").status_code == 400
    assert box.audit_actions().count("login_failed") == 5


def test_a_failed_login_from_a_session_is_that_users(box, people):
    """Someone at a desk left logged in tries another account's password: the entry is the
    session's user's, with no second actor in its details."""
    resp = box.post(people["ivan"], "/login", {"name": "sam", "password": "wrong password 7"}, "/")
    assert resp.status_code == 400
    (entry,) = box.services.audit.entries(limit=1, action="login_failed")
    assert (entry.actor, entry.target) == ("ivan", "sam")
    assert "actor" not in entry.details


def test_a_lockout_is_audited_with_the_failure_that_began_it(box, people):
    client = box.client()
    for _ in range(3):
        box.try_login(client, "sam", "wrong password 7")
    first, second, third = box.services.audit.entries(limit=3, action="login_failed", newest_first=False)
    assert "locked" not in first.details and "locked" not in second.details
    assert (third.target, third.details["locked"], third.details["locked_s"]) == ("sam", ["acct"], 1)
    assert box.try_login(client, "sam", box.PASSWORDS["sam"]).status_code == 429
    box.clock.advance(1)
    box.try_login(client, "sam", "wrong again")
    (last,) = box.services.audit.entries(limit=1, action="login_failed")
    assert (last.details["locked"], last.details["locked_s"]) == (["acct"], 2)
    # The auditor reads it in words.
    text = people["audrey"].get("/audit").get_data(as_text=True)
    assert "Locked out for" in text and "This account from this address" in text
    # The current password on the account page counts the same way.
    token = box.token_of(people["sue"], "/account/password")
    for n in range(3):
        form = {
            "old": "guess %d 7777" % n,
            "new": "a brand new password 7",
            "confirm": "a brand new password 7",
        }
        people["sue"].post("/account/password", data=dict(form, csrf_token=token))
    (last,) = box.services.audit.entries(limit=1, action="login_failed")
    assert (last.actor, last.details["field"]) == ("sue", "current password")
    assert last.details["locked"] == ["acct"]


def test_throttling_per_address(box):
    box.do_setup()
    client = box.client()
    for n in range(10):
        assert box.try_login(client, "user%d" % n, "some password").status_code == 400
    assert box.try_login(client, "alice", box.ADMIN[1]).status_code == 429
    other = box.client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.99"
    box.login("alice", client=other)


def test_forgotten_failures_leave_no_row(box):
    """A name typed in a failed login (perhaps a password) stays in web.db a day at most."""
    box.do_setup()
    box.try_login(box.client(), "correct horse battery 7", "x")
    keys = [row[0] for row in box.web.db.query("SELECT key FROM throttle")]
    assert any("horse" in key for key in keys)
    box.clock.advance(24 * 3600 + 1)
    box.try_login(box.client(), "alice", "wrong password 7")
    keys = [row[0] for row in box.web.db.query("SELECT key FROM throttle")]
    assert keys and not any("horse" in key for key in keys)


def test_back_off_is_capped_at_15_minutes(box):
    box.do_setup()
    for _ in range(30):
        box.web.throttle.failed(["acct:alice|x"])
    assert box.web.throttle.wait_s(["acct:alice|x"]) == 15 * 60


def test_next_only_goes_to_this_site(box):
    box.do_setup()
    client = box.client()
    for target, expected in (
        ("/calls?number=123", "/calls?number=123"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example/fake-login", "/"),
        ("/\r\nSet-Cookie: x=1", "/"),
        ("/%09/evil.example", "/%09/evil.example"),
        ("/\x00//evil.example", "/"),
        ("/ /evil.example", "/"),
    ):
        resp = client.post(
            "/login",
            data={
                "name": "alice",
                "password": box.ADMIN[1],
                "next": target,
                "csrf_token": box.token_of(client, "/login"),
            },
        )
        assert resp.headers["Location"] == expected
        box.post(client, "/logout")


def test_next_in_the_query_string_cannot_leave_the_site(box):
    client = box.do_setup()
    for query in (
        "next=/%09/evil.example/fake-login",
        "next=/%0d%0aSet-Cookie:%20x=1",
        "next=/%5cevil.example",
        "next=//evil.example",
    ):
        resp = client.get("/login?" + query)
        assert resp.status_code == 302 and resp.headers["Location"] == "/", query


def test_anonymous_is_sent_to_login_and_back(box):
    box.do_setup()
    client = box.client()
    resp = client.get("/calls?number=0207")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/calls?number%3D0207"


def test_change_own_password(box, people):
    sam = people["sam"]
    other_sam = box.login("sam")
    bad = [
        (
            {"old": "wrong", "new": "a new good passphrase 7", "confirm": "a new good passphrase 7"},
            "not your current password",
        ),
        ({"old": box.PASSWORDS["sam"], "new": "short", "confirm": "short"}, "at least 12"),
        ({"old": box.PASSWORDS["sam"], "new": "1qaz2wsx3edc", "confirm": "1qaz2wsx3edc"}, "commonly used"),
        ({"old": box.PASSWORDS["sam"], "new": "a new good passphrase 7", "confirm": "other"}, "differ"),
        (
            {"old": box.PASSWORDS["sam"], "new": box.PASSWORDS["sam"], "confirm": box.PASSWORDS["sam"]},
            "That is your current password",
        ),
    ]
    for form, message in bad:
        resp = box.post(sam, "/account/password", form)
        assert resp.status_code == 400 and message in resp.get_data(as_text=True), message
    assert box.web.accounts.verify("sam", box.PASSWORDS["sam"]) is not None
    assert "password_change" not in box.audit_actions()
    old_cookie = session_cookie(sam)
    resp = box.post(
        sam,
        "/account/password",
        {"old": box.PASSWORDS["sam"], "new": "a new good passphrase 7", "confirm": "a new good passphrase 7"},
    )
    assert resp.status_code == 302
    assert session_cookie(sam) != old_cookie
    # The key slot follows the password; other sessions are logged out.
    box.services.keystore.unlock("sam", "a new good passphrase 7").forget()
    assert other_sam.get("/").status_code == 302
    assert sam.get("/calls/1").status_code == 200
    assert 'id="listen-form"' in sam.get("/calls/1").get_data(as_text=True)
    assert "password_change" in box.audit_actions()


def test_restart_logs_everyone_out(box, people):
    from web import create_app

    app2 = create_app(box.services, box.config)
    try:
        assert app2.extensions["linekeeper"].db.one("SELECT count(*) FROM sessions")[0] == 0
    finally:
        app2.extensions["linekeeper"].db.close()
