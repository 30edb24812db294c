"""My line left open in Chromium: its "Right now" poller and the session's idle timeout.

The page asks ``/api/my-line`` every 3 s, which does not keep the session alive; once the
session has timed out, the poller reloads the page to show the login page. A concern typed
before a long call was lost so: the reload wiped it before it could be sent, where a form
sent after its session ended shows its words back to copy (web.security FREE_TEXT).
"""

import pytest

from .test_browser import chromium_page, https_server

pytestmark = pytest.mark.slow

CONCERN = "Is the phone in the staff room recorded too? I use it at lunch."


@pytest.fixture
def served(box, people, tmp_path):
    box.add_user(people["alice"], "stella", ["staff"], [4])
    with https_server(box, tmp_path) as server:
        yield server


@pytest.fixture
def page():
    with chromium_page() as page:
        yield page


def open_my_line(box, served, page):
    page.goto(served.url + "login")
    page.fill("#name", "stella")
    page.fill("#password", box.PASSWORDS["stella"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#concern")
    asked = []
    page.on("response", lambda r: asked.append(r.status) if r.url.endswith("/api/my-line") else None)
    return asked


def test_a_concern_being_typed_is_not_lost_when_the_session_times_out(box, served, page):
    asked = open_my_line(box, served, page)
    page.fill("#concern", CONCERN)
    box.clock.advance(16 * 60)  # a long call: the session times out meanwhile
    for _ in range(40):  # the poller's next asks, each refused
        if asked.count(401) >= 2:
            break
        page.wait_for_timeout(250)
    assert 401 in asked
    assert page.url.endswith("/my-line") and page.input_value("#concern") == CONCERN
    # Sent, it is refused for its session, and its words are shown back to copy.
    page.click("#concern-form button[type=submit]")
    page.wait_for_selector("#typed-back")
    assert page.input_value("#typed-back textarea") == CONCERN
    assert not [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]


def test_the_page_left_with_nothing_typed_goes_to_the_login_page(box, served, page):
    open_my_line(box, served, page)
    box.clock.advance(16 * 60)
    page.wait_for_selector("#login-form")
