"""End to end in a real headless browser: fresh box → setup → login → a call
happens → live on the dashboard → in the calls list → played in the page →
in the audit trail. Screenshots of each step go to tests/artifacts/.

Debian's ``chromium`` driven by Playwright (``executable_path``; no browser
download). The web app is served over HTTPS by the real server, around the
test box of conftest.py: a fake line status (driven here), the real call
search over a call log this test writes to, and a fake recording service
serving a WAV as long as the call.
"""

import os
import sqlite3
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
TALK_S = 4.2

# Part of the set-up (no conditional skip): Debian's `chromium` package and the
# `playwright` Python package; never `playwright install`.
from playwright import sync_api  # noqa: E402


@pytest.fixture
def served(box, tmp_path):
    from web.server import WebServer
    from web.tls import ensure_certificate
    cert = ensure_certificate(tmp_path / "tls-dir", ["localhost"])
    server = WebServer(box.app, cert, "127.0.0.1", 0, 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # bypass_csp: Playwright evaluates its wait conditions as strings, which the
        # app's CSP (no eval) rightly forbids to page scripts.
        context = browser.new_context(ignore_https_errors=True, bypass_csp=True,
                                      viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / ("%s.png" % name)), full_page=True)


def log_in(page, base, name, password):
    page.goto(base + "login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout")


def a_call_happens(box):
    """Line 1 rings, is answered, talks for TALK_S and hangs up; the call is logged and recorded."""
    call = {"id": 41, "direction": "in", "number": "07700900123", "name": "J SMITH",
            "absence": None}
    start = box.T0_US + 100 * 60 * 1_000_000
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.execute("INSERT INTO calls (id, line, direction, started_at, answered_at, ended_at, "
               "clock_synced, number, name) VALUES (41, 1, 'in', ?, ?, ?, 1, ?, ?)",
               (start, start + 5_000_000, start + 5_000_000 + int(TALK_S * 1e6),
                call["number"], call["name"]))
    db.commit()
    db.close()
    box.recordings.add(41, TALK_S)
    return call


def test_fresh_box_to_audited_playback(box, served, page):
    base = served.url
    from web.setupcode import setup_code_for
    code = setup_code_for(box.data_dir)

    # 1. A fresh box sends everyone to the setup wizard.
    page.goto(base)
    assert page.url == base + "setup"
    page.fill("#setup_code", code)
    page.fill("#organisation", "Acme Plumbing Ltd")
    page.fill("#ico_number", "ZA123456")
    page.fill("#ico_renewal", "2027-01-31")
    page.fill("#purpose", "To keep a record of orders taken by phone.")
    page.fill("#line-1-name", "Sales")
    page.select_option("#line-4-mode", "private")
    page.fill("#admin_name", "alice")
    page.fill("#admin_password", "correct horse battery")
    page.fill("#admin_confirm", "correct horse battery")
    shot(page, "01-setup-wizard")
    page.click("#finish-setup")

    # 2. The recovery key, shown once, confirmed by its last group.
    key = page.inner_text("#recovery-key")
    shot(page, "02-recovery-key")
    page.fill("#last_group", key.split("-")[-1])
    page.click("#confirm-recovery")
    page.wait_for_selector("#lines")

    # 3. Log out and in again.
    page.click("#logout")
    page.wait_for_selector("#logged-out")
    log_in(page, base, "alice", "correct horse battery")
    assert page.get_attribute("#line-1", "data-state") == "idle"
    shot(page, "03-dashboard")

    # 4. A call happens and the dashboard follows it live (server-sent events).
    call = dict(a_call_happens(box), answered=False)
    box.status.set(1, "ringing", call)
    page.wait_for_selector('#line-1[data-state="ringing"]')
    assert "07700900123" in page.inner_text("#line-1")
    shot(page, "04-dashboard-ringing")
    box.status.set(1, "connected", dict(call, answered=True))
    page.wait_for_selector('#line-1[data-state="connected"]')
    shot(page, "05-dashboard-connected")
    box.status.set(1, "idle", None)
    page.wait_for_selector('#line-1[data-state="idle"]')

    # 5. It is the newest call in the list.
    page.click("text=Calls")
    page.wait_for_selector("#calls")
    first = page.locator("#calls tbody tr").first
    assert first.get_attribute("id") == "call-41"
    assert "07700900123" in first.inner_text()
    shot(page, "06-calls-list")

    # 6. Its page plays the recording: the audio element loads, with the call's duration.
    page.click("#call-41 a")
    page.wait_for_selector("#player")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    duration = page.evaluate("document.getElementById('player').duration")
    assert abs(duration - TALK_S) < 0.5, duration
    page.evaluate("() => { const p = document.getElementById('player'); p.muted = true; "
                  "return p.play(); }")
    page.wait_for_function("document.getElementById('player').currentTime > 0.2")
    shot(page, "07-call-playing")

    # 7. An auditor sees the playback in the audit trail.
    page.goto(base + "users")
    page.fill("#new-name", "audrey")
    page.fill("#new-password", "auditor pass word")
    page.check("#new-user input[name=roles][value=auditor]")
    page.click("#new-user button[type=submit]")
    page.wait_for_selector("#user-audrey")
    page.click("#logout")
    log_in(page, base, "audrey", "auditor pass word")
    page.click("text=Audit trail")
    page.wait_for_selector("#chain-ok")
    rows = page.locator("#audit tr.action-playback")
    assert rows.count() == 1
    assert "alice" in rows.first.inner_text() and "41" in rows.first.inner_text()
    shot(page, "08-audit-trail")
