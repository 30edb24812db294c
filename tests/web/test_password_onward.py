"""The page after a password that had to be changed was: it said "Your password was
changed" and nothing else, no link onward (every other page had sent the user back to it).
It links on to the page the user was opening when they were sent to change it, or, with
none, to the dashboard; a page of another site is never where it goes."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from .test_admin import page_of

SET = "set by alice 42"
OWN = "bobs own choice 7"


@pytest.fixture
def bob(box, people):
    """An auditor whose password an installer set: it must be changed at the first login."""
    resp = box.post(
        people["alice"], "/users", {"name": "bob", "password": SET, "roles": "auditor"}, token_from="/users"
    )
    assert resp.status_code == 302
    return box.client()


def _change(box, client, token_from):
    return box.post(
        client, "/account/password", {"old": SET, "new": OWN, "confirm": OWN}, token_from=token_from
    )


def _next_of(location):
    """The page the password page's address says to go on to."""
    where = urlsplit(location)
    assert where.path == "/account/password", location
    return parse_qs(where.query).get("next", [None])[0]


def _go_on(page):
    return html.unescape(re.search(r'<a href="([^"]*)" id="go-on">([^<]*)</a>', page).groups())


def test_the_page_being_opened_is_where_the_changed_password_leads(box, bob):
    resp = bob.post(
        "/login",
        data={
            "name": "bob",
            "password": SET,
            "next": "/audit?action=login",
            "csrf_token": box.token_of(bob, "/login"),
        },
    )
    assert resp.status_code == 302 and _next_of(resp.headers["Location"]) == "/audit?action=login"
    asked = resp.headers["Location"]
    form = html.unescape(bob.get(asked).get_data(as_text=True))
    assert '<input type="hidden" name="next" value="/audit?action=login">' in form
    resp = box.post(
        bob,
        "/account/password",
        {"old": SET, "new": OWN, "confirm": OWN, "next": "/audit?action=login"},
        token_from=asked,
    )
    assert resp.status_code == 302 and "done=1" in resp.headers["Location"]
    assert _next_of(resp.headers["Location"]) == "/audit?action=login"
    done = html.unescape(bob.get(resp.headers["Location"]).get_data(as_text=True))
    assert "Your password was changed." in done
    assert _go_on(done) == ("/audit?action=login", "Go on to the page you were opening")
    assert bob.get("/audit?action=login").status_code == 200


def test_a_page_opened_before_the_change_is_where_it_leads(box, bob):
    box.try_login(bob, "bob", SET)
    resp = bob.get("/alarms?from=2026-03-01")
    assert resp.status_code == 302
    assert _next_of(resp.headers["Location"]) == "/alarms?from=2026-03-01"
    resp = box.post(
        bob,
        "/account/password",
        {"old": SET, "new": OWN, "confirm": OWN, "next": "/alarms?from=2026-03-01"},
        token_from=resp.headers["Location"],
    )
    assert _go_on(page_of(bob.get(resp.headers["Location"])))[0] == "/alarms?from=2026-03-01"


@pytest.mark.parametrize(
    "next_url", ["", "https://evil.example/", "//evil.example/x", "/account/password", "/logout"]
)
def test_with_no_page_of_this_box_to_go_on_to_it_leads_to_the_dashboard(box, bob, next_url):
    box.try_login(bob, "bob", SET)
    resp = box.post(
        bob,
        "/account/password",
        {"old": SET, "new": OWN, "confirm": OWN, "next": next_url},
        token_from="/account/password",
    )
    assert resp.status_code == 302 and "evil" not in resp.headers["Location"]
    done = page_of(bob.get(resp.headers["Location"]))
    assert _go_on(done) == ("/", "Go to the dashboard")
    assert "evil" not in done


def test_a_staff_member_with_no_page_to_go_on_to_is_led_to_my_line(box, people):
    """A staff member has no dashboard: after the first login's change, with no page to go
    on to, the page offered "Go to the dashboard", not their own page, My line."""
    resp = box.post(
        people["alice"],
        "/users",
        {"name": "stella", "password": SET, "roles": "staff", "lines": "4"},
        token_from="/users",
    )
    assert resp.status_code == 302
    stella = box.client()
    box.try_login(stella, "stella", SET)
    resp = _change(box, stella, "/account/password")
    assert resp.status_code == 302
    done = page_of(stella.get(resp.headers["Location"]))
    assert _go_on(done) == ("/my-line", "Go to My line")
    assert stella.get("/my-line").status_code == 200


def test_a_refused_change_keeps_where_it_leads(box, bob):
    box.try_login(bob, "bob", SET)
    resp = box.post(
        bob,
        "/account/password",
        {"old": "wrong one 1", "new": OWN, "confirm": OWN, "next": "/audit"},
        token_from="/account/password",
    )
    assert resp.status_code == 400
    assert '<input type="hidden" name="next" value="/audit">' in page_of(resp)
