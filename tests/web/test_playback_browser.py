"""Issue 11: the audit trail says a call was heard only when it was played.

In Chromium, on the web app served over HTTPS: opening a call's page and
leaving it writes no ``playback`` (the page used to fetch the audio to show
its length, and that was audited as a playback); playing, seeking twice and
replaying writes exactly one per listening session (one page view).
"""

import pytest

from .test_browser import chromium_page, https_server

pytestmark = pytest.mark.slow


@pytest.fixture
def served(box, people, tmp_path):
    box.recordings.add(1, 20.0)  # call 1, line 1: sam's
    with https_server(box, tmp_path) as server:
        yield server


@pytest.fixture
def page():
    with chromium_page(bypass_csp=True) as page:
        audio_requests = []
        page.on("request", lambda r: audio_requests.append(r.url) if "/audio" in r.url else None)
        page.audio_requests = audio_requests
        yield page


def playbacks(box):
    return len(box.services.audit.entries(action="playback"))


def wait_played_to(page, seconds):
    page.wait_for_function("t => document.getElementById('player').currentTime > t", arg=seconds)


def test_only_playing_is_audited_once_per_listening_session(box, served, page):
    base = served.url
    page.goto(base + "login")
    page.fill("#name", "sam")
    page.fill("#password", box.PASSWORDS["sam"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout")

    # Opened and left without pressing play: nothing was heard, nothing fetched.
    page.goto(base + "calls/1")
    page.fill("#listen_reason", "complaint ref 1234")  # the reason asked before the player
    page.click("#listen-form button[type=submit]")
    page.wait_for_selector("#player")
    page.wait_for_timeout(1500)
    page.goto(base)
    assert playbacks(box) == 0 and page.audio_requests == []

    # Played, seeked twice, played again from the start: one listening session.
    page.goto(base + "calls/1")
    page.fill("#listen_reason", "complaint ref 1234")  # the reason asked before the player
    page.click("#listen-form button[type=submit]")
    page.wait_for_selector("#player")
    page.evaluate("() => { const p = document.getElementById('player'); p.muted = true; return p.play(); }")
    wait_played_to(page, 0.3)
    for to in (12.0, 4.0):
        page.evaluate("t => { document.getElementById('player').currentTime = t; }", to)
        wait_played_to(page, to + 0.3)
    page.evaluate(
        "() => { const p = document.getElementById('player'); p.pause(); "
        "p.currentTime = 0; return p.play(); }"
    )
    page.wait_for_function(
        "() => { const p = document.getElementById('player'); "
        "return !p.paused && p.currentTime > 0.3 && p.currentTime < 4; }"
    )
    assert len(page.audio_requests) >= 1
    assert playbacks(box) == 1

    # Another visit to the page and another play: a second listening session.
    page.goto(base + "calls/1")
    page.fill("#listen_reason", "complaint ref 1234")  # the reason asked before the player
    page.click("#listen-form button[type=submit]")
    page.wait_for_selector("#player")
    page.evaluate("() => { const p = document.getElementById('player'); p.muted = true; return p.play(); }")
    wait_played_to(page, 0.3)
    assert playbacks(box) == 2
    (first, second) = box.services.audit.entries(action="playback", newest_first=False)
    assert first.actor == "sam" and first.target == "1"
    assert first.details["reason"] == second.details["reason"] == "complaint ref 1234"
