"""Every page in Chromium at 1280 px and at a 390 px phone: no sideways scroll on the
dashboard, the calls list and a call's page; a screenshot of each page at both
widths in tests/artifacts/pages/ (look at them after a UI change).

The box is the web app over a simulated call's data directory (see
test_call_story.Story), served on a local port.
"""

import threading
from pathlib import Path

import pytest
from playwright import sync_api
from werkzeug.serving import make_server

from .test_browser import ARGS, CHROMIUM
from .test_call_story import Story

PORT = 9282
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "pages"
NO_SIDEWAYS = ("dashboard", "calls", "call")
PAGES = [
    ("dashboard", "/"),
    ("calls", "/calls"),
    ("call", "/calls/1"),
    ("phonebook", "/phonebook"),
    ("audit", "/audit"),
    ("users", "/users"),
    ("settings", "/settings"),
    ("rules", "/rules"),
    ("consent", "/consent"),
    ("retention", "/retention"),
    ("help", "/help"),
    ("help-call", "/help/call"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, synth):
    story = Story(tmp_path_factory.mktemp("pages"), synth)
    client = story.client()
    web = story.app.extensions["linekeeper"]
    web.phonebook.put("01632960777", "Acme Supplies", "uk")
    web.notes.add(story.call_id, "Customer asked for a call back on Tuesday.", "alice")
    # Every role, so that every page can be captured in one session.
    with web.db.tx() as conn:
        web.accounts.update(conn, "alice", {"installer", "supervisor", "auditor"}, [1, 2, 3, 4])
    from .test_pause import FakeLive

    story.services.live = FakeLive()
    cookie = client.get_cookie("lk_session").value
    server = make_server("127.0.0.1", PORT, story.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield cookie, story
    server.shutdown()
    story.close()


@pytest.mark.slow
@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_pages_fit_and_are_captured(served, width, height):
    cookie, _story = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = "http://127.0.0.1:%d" % PORT
    too_wide = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        context.add_cookies([{"name": "lk_session", "value": cookie, "url": base + "/"}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        for name, path in PAGES:
            page.goto(base + path)
            page.wait_for_selector("main")
            assert page.locator("nav#menu [aria-current=page]").count() >= (
                0 if name.startswith("help-") else 1
            ), name
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if name in NO_SIDEWAYS and overflow > 0:
                too_wide.append((name, overflow))
            page.screenshot(path=str(ARTIFACTS / ("%s-%d.png" % (name, width))), full_page=True)
        context.close()
        browser.close()
    assert not too_wide, "pages wider than %d px: %s" % (width, too_wide)


@pytest.mark.slow
def test_a_call_starting_moves_nothing_on_the_dashboard(served):
    """Rows and the pause button stay put as a call starts (live, over server-sent events)."""
    cookie, story = served
    base = "http://127.0.0.1:%d" % PORT
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        context.add_cookies([{"name": "lk_session", "value": cookie, "url": base + "/"}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(base + "/")

        def layout():
            return [
                page.locator(sel).bounding_box()
                for sel in ("#line-1", "#line-2", "#line-3", "#line-4", "#pause-1", "#pause-2")
            ]

        before = layout()
        assert not page.is_visible("#pause-1")
        story.services.status.set(
            1,
            "connected",
            {"direction": "in", "number": "01632960777", "name": "J SMITH", "policy_decision": "record"},
        )
        page.wait_for_selector('#line-1[data-recording="recording"]')
        page.wait_for_selector("#pause-1", state="visible")
        after = layout()
        page.screenshot(path=str(ARTIFACTS / "dashboard-call-1280.png"), full_page=True)
        story.services.status.set(1, "idle")
        context.close()
        browser.close()
    assert after == before, (before, after)
