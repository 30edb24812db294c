"""Issue 12 acceptance: a call's page tells its whole story, and its timeline is true.

A simulated inbound call (``linekeeper sim``, the box's own code) hears the
consent beep, is paused twice for card details with the keypad codes
(``*1`` … ``*2``), has a key pressed outside the pauses, and is tagged
"complaint". Its page, served by the web app over that data directory, shows
all of it; the timeline under the player puts each moment where it happened:

* keys pressed: the scenario's DTMF onsets (the simulated truth);
* the answer: the scenario's answer;
* the pauses: the digital silence in the decrypted recording (PCM profile,
  so a paused span decodes to exact zeros);
* the consent beep: the answer as logged (the box plays it on answering);

each within 100 ms. A click on the timeline (Chromium) seeks the player there.
"""

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from board.sim.timeline import KEY_OFF_MS, KEY_ON_MS
from firmware.calls.callsearch import CallSearch, ensure_indexes
from firmware.policy.callmeta import CallMeta
from firmware.policy.engine import MASK_MARGIN_US
from firmware.recording.store import RecordingStore
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore
from web import Services, WebConfig, create_app
from web.passwords import CHEAP_COST
from web.services import StoreRecordings
from web.setupcode import setup_code_for

from support.cli import run_linekeeper
from support.web import TOKEN, FakeClock, FakeStatus

PASSWORD = "correct horse battery 7"
START = "2026-03-02T09:00:00Z"
CALL_AT_S = 2.0
TALK_S = 26.0
KEYS = [(4.0, "*1"), (9.0, "*2"), (13.0, "*1"), (18.0, "*2"), (21.0, "5")]
TOL_S = 0.1
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"


def scenario():
    return {
        "start": START,
        "country": "uk",
        "lines": 4,
        "config": {
            "audio_profile": "pcm",
            "policy": {
                "consent": {"inbound": "tone", "outbound": "off"},
                "pci": {"pause_code": "*1", "resume_code": "*2", "auto_resume_s": 60},
            },
        },
        "calls": [
            {
                "line": 1,
                "at": CALL_AT_S,
                "direction": "in",
                "rings": 1,
                "talk": TALK_S,
                "caller_id": {"number": "01632960777", "name": "J SMITH"},
                "speech": [{"at": 1.0, "text": "Hello, I would like to pay my bill."}],
                "keys": [{"at": at, "digits": d} for at, d in KEYS],
                "tags": ["complaint"],
            }
        ],
    }


_cli = run_linekeeper


class Story:
    """The simulated call's data directory, and a web app over it."""

    def __init__(self, tmp, synth):
        from board.sim.scenario import loads_scenario
        from board.sim.timeline import compile_timeline

        self.data = str(tmp / "data")
        KeyStore(self.data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("alice", PASSWORD)
        doc = scenario()
        path = tmp / "story.json"
        path.write_text(json.dumps(doc))
        status, _out, err = _cli("sim", path, "--data-dir", self.data)
        assert status == 0, err
        sc = loads_scenario(json.dumps(doc))
        self.start_wall_us = sc.start_wall_us
        self.truth = compile_timeline(sc, synth).truth[0]
        ensure_indexes(Path(self.data) / "calls.db")
        self.store = RecordingStore(self.data)
        self.audit = AuditLog(Path(self.data) / "audit.db", Path(self.data) / "audit.head")
        self.clock = FakeClock(self.start_wall_us + 3600 * 10**6)
        self.services = Services(
            status=FakeStatus(),
            calls=CallSearch(Path(self.data) / "calls.db"),
            keystore=KeyStore(self.data),
            audit=self.audit,
            recordings=StoreRecordings(self.store, self.clock),
            call_tags=CallMeta(str(Path(self.data) / "calls.db")),
            wall_us=self.clock,
            session_clock_us=self.clock,
        )
        self.app = create_app(
            self.services, WebConfig(data_dir=self.data, hash_cost=CHEAP_COST, secure_cookies=False)
        )
        self.app.testing = True
        self.call_id = (
            sqlite3.connect(Path(self.data) / "calls.db").execute("SELECT id FROM calls").fetchone()[0]
        )

    def wall(self, clock_us):
        return self.start_wall_us + clock_us

    def client(self):
        client = self.app.test_client()
        if not self.app.extensions["linekeeper"].site.setup_complete:
            token = TOKEN.search(client.get("/setup").get_data(as_text=True)).group(1)
            form = {
                "csrf_token": token,
                "setup_code": setup_code_for(self.data),
                "organisation": "Acme",
                "country": "uk",
                "ico_number": "ZA123456",
                "ico_renewal": "2027-01-31",
                "purpose": "Orders taken by phone.",
                "admin_name": "alice",
                "admin_password": PASSWORD,
                "admin_confirm": PASSWORD,
            }
            for n in range(1, 5):
                form.update({"line-%d-name" % n: "Line %d" % n, "line-%d-mode" % n: "record"})
            assert client.post("/setup", data=form).status_code == 302
            self.app.extensions["linekeeper"].sessions.memory.clear()
        client = self.app.test_client()
        token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
        resp = client.post("/login", data={"csrf_token": token, "name": "alice", "password": PASSWORD})
        assert resp.status_code == 302
        return client

    def recording(self):
        """``(samples, started_wall_us)`` of the call's recording, decrypted."""
        from firmware.recording import codec

        key = KeyStore(self.data).unlock("alice", PASSWORD)
        try:
            row = self.store.for_call(self.call_id)
            row, data = self.store.read_verified(row["id"], key)
            return codec.decode(data, row["profile"]), row["started_at"]
        finally:
            key.forget()

    def close(self):
        self.app.extensions["linekeeper"].close()
        self.store.close()


@pytest.fixture(scope="module")
def story(tmp_path_factory, synth):
    s = Story(tmp_path_factory.mktemp("story"), synth)
    yield s
    s.close()


def events(page, kind):
    """``[(at_s, to_s or None), ...]`` of the timeline's drawn events of ``kind``."""
    svg = re.search(r'<svg id="timeline".*?</svg>', page, re.S).group(0)
    out = []
    for m in re.finditer(r'<(?:rect|line) class="tl-ev tl-%s"[^>]*>' % kind, svg):
        tag = m.group(0)
        at = float(re.search(r'data-at-s="([\d.]+)"', tag).group(1))
        to = re.search(r'data-to-s="([\d.]+)"', tag)
        out.append((at, float(to.group(1)) if to else None))
    return out


def zero_runs(samples, min_s=1.0, rate=8000):
    """``[(start_s, end_s), ...]`` of the runs of exact digital silence at least ``min_s``."""
    zero = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(int)))
    runs = zip(edges[::2], edges[1::2], strict=False)
    return [(a / rate, b / rate) for a, b in runs if (b - a) / rate >= min_s]


def test_the_page_tells_the_whole_story(story):
    page = story.client().get("/calls/%d" % story.call_id).get_data(as_text=True)
    facts = re.search(r'<dl class="call-facts".*?</dl>', page, re.S).group(0)
    assert "01632960777" in facts and "J SMITH" in facts
    assert "Mon 2 Mar 2026, 09:00:0" in facts and "GMT" in facts  # the box's zone
    assert "Recorded" in page and "Beep played at" in page
    assert len(re.findall(r'class="pause-span"', page)) == 2
    assert "paused by the keypad code, resumed by the keypad code" in page
    assert re.search(r'<span class="tag">complaint', page)
    # The player waits for the reason to listen (its preload="none": tests/web/test_calls.py).
    assert 'id="listen-form"' in page and "<audio" not in page and "2026-03-02T" not in page


def test_the_timeline_is_where_things_happened(story):
    page = story.client().get("/calls/%d" % story.call_id).get_data(as_text=True)
    t = story.truth
    svg = re.search(r'<svg id="timeline"[^>]*>', page).group(0)
    length_s = float(re.search(r'data-length-s="([\d.]+)"', svg).group(1))
    rec_from_s = float(re.search(r'data-rec-from-s="([\d.]+)"', svg).group(1))
    # The call's start on the timeline is its logged start; truth is in clock µs.
    with sqlite3.connect(Path(story.data) / "calls.db") as db:
        started_us, answered_us = db.execute(
            "SELECT started_at, answered_at FROM calls WHERE id = ?", (story.call_id,)
        ).fetchone()

    def on_timeline(clock_us):
        return (story.wall(clock_us) - started_us) / 1e6

    # The answer, against the scenario's.
    (answer,) = events(page, "answer")
    assert abs(answer[0] - on_timeline(t.answered_us)) <= TOL_S, answer
    # Keys pressed outside the pauses: "*1" (both keys) at 4 s and 13 s, "5" at 21 s.
    step_s = (KEY_ON_MS + KEY_OFF_MS) / 1000
    truth_keys = []
    for at, digits in KEYS:
        if digits != "*2":  # pressed while paused: the box hears silence
            truth_keys += [on_timeline(t.answered_us) + at + i * step_s for i in range(len(digits))]
    drawn = sorted(at for at, _ in events(page, "key"))
    assert len(drawn) == len(truth_keys), (drawn, truth_keys)
    for got, want in zip(drawn, sorted(truth_keys), strict=False):
        assert abs(got - want) <= TOL_S, (got, want)
    # The pauses, against the digital silence in the recording.
    samples, rec_started_us = story.recording()
    assert abs(rec_from_s - (rec_started_us - started_us) / 1e6) <= 0.001
    silent = zero_runs(samples)
    pauses = events(page, "pause")
    assert len(pauses) == 2 and len(silent) == 2, (pauses, silent)
    # A keyed pause code silences its own keys (issue 20): the silence starts up
    # to the code's length and the masking margin before the pause's mark.
    code_s = (2 * KEY_ON_MS + KEY_OFF_MS) / 1000 + MASK_MARGIN_US / 1e6
    for (at, to), (quiet_from, quiet_to) in zip(pauses, silent, strict=False):
        assert -TOL_S <= at - rec_from_s - quiet_from <= code_s + TOL_S, (at, quiet_from)
        assert abs(to - rec_from_s - quiet_to) <= TOL_S, (to, quiet_to)
    # The consent beep starts at the answer; the end is the call's length.
    (consent,) = events(page, "consent")
    assert abs(consent[0] - (answered_us - started_us) / 1e6) <= TOL_S
    (end,) = events(page, "end")
    assert abs(end[0] - length_s) < 0.001
    assert abs(length_s - on_timeline(t.ended_us)) <= TOL_S


@pytest.mark.slow
def test_a_click_on_the_timeline_seeks_the_player(story):
    import threading

    from playwright import sync_api
    from werkzeug.serving import make_server

    from .test_browser import ARGS, CHROMIUM

    client = story.client()
    cookie = client.get_cookie("lk_session")
    server = make_server("127.0.0.1", 0, story.app, threaded=True)
    base = "http://127.0.0.1:%d" % server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            context.add_cookies([{"name": "lk_session", "value": cookie.value, "url": base + "/"}])
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(base + "/calls/%d" % story.call_id)
            page.fill("#listen_reason", "complaint ref 1234")  # the reason asked before the player
            page.click("#listen-form button[type=submit]")
            page.wait_for_selector("#player")
            assert page.evaluate("document.getElementById('player').readyState") == 0
            # Said for a phone's finger too: a page seen on a phone said "Click it".
            said = page.locator("figcaption", has_text="What happened on the call").inner_text()
            assert ". Tap or click it, or an event's" in said, said
            box = page.locator("#timeline").bounding_box()
            length_s = float(page.get_attribute("#timeline", "data-length-s"))
            rec_from_s = float(page.get_attribute("#timeline", "data-rec-from-s"))
            target_s = 15.0  # on the timeline: in the talk, between pauses
            page.mouse.click(box["x"] + box["width"] * target_s / length_s, box["y"] + box["height"] / 2)
            page.wait_for_function("document.getElementById('player').readyState >= 1")
            page.wait_for_function("!document.getElementById('player').seeking")
            now = page.evaluate("document.getElementById('player').currentTime")
            # A pixel of the timeline is length/width seconds; playing moves it on a little.
            assert target_s - rec_from_s - 0.2 <= now <= target_s - rec_from_s + 1.0, now
            # From the keyboard: an event's own button (the timeline took clicks only).
            rec_to_s = float(page.get_attribute("#timeline", "data-rec-to-s"))
            buttons = page.locator(".tl-play")
            ats = [float(buttons.nth(i).get_attribute("data-at-s")) for i in range(buttons.count())]
            inside = [i for i, at in enumerate(ats) if rec_from_s + 1 < at < rec_to_s - 1]
            pick = next(i for i in inside if abs(ats[i] - rec_from_s - now) > 2)
            buttons.nth(pick).focus()
            page.keyboard.press("Enter")
            page.wait_for_function("!document.getElementById('player').seeking")
            now = page.evaluate("document.getElementById('player').currentTime")
            assert ats[pick] - rec_from_s - 0.2 <= now <= ats[pick] - rec_from_s + 1.0, (now, ats[pick])
            page.screenshot(path=str(ARTIFACTS / "call-timeline-1280.png"), full_page=True)
            context.close()
            browser.close()
    finally:
        server.shutdown()


def speech_spans(page):
    """``[(at_s, to_s), ...]`` of the timeline's speech lane."""
    svg = re.search(r'<svg id="timeline".*?</svg>', page, re.S).group(0)
    return [
        (float(a), float(b))
        for a, b in re.findall(
            r'<rect class="tl-speech" data-kind="speech" data-at-s="([\d.]+)" '
            r'data-to-s="([\d.]+)"',
            svg,
        )
    ]


def test_the_timeline_shows_speech_and_silence_where_they_were(story, synth):
    """Speech spans were found as the call was recorded: the caller's sentence is one, where
    the scenario spoke it; nothing is speech inside the pauses (digital silence)."""
    from board.sim.scenario import loads_scenario
    from board.sim.timeline import compile_timeline

    page = story.client().get("/calls/%d" % story.call_id).get_data(as_text=True)
    spans = speech_spans(page)
    assert spans and 'id="speech-summary"' in page
    with sqlite3.connect(Path(story.data) / "calls.db") as db:
        (started_us,) = db.execute("SELECT started_at FROM calls WHERE id = ?", (story.call_id,)).fetchone()
    audio = compile_timeline(loads_scenario(json.dumps(scenario())), synth).audio[1]
    (said,) = [s for s in audio if s.kind == "speech"]
    said_from = (story.wall(said.t_us) - started_us) / 1e6
    said_to = said_from + said.n_samples / 8000
    # The span holding the sentence: starts with its first word, ends with its last.
    (sentence,) = [s for s in spans if s[0] < said_to and s[1] > said_from]
    assert -TOL_S <= sentence[0] - said_from <= 0.3, (sentence, said_from)
    assert abs(sentence[1] - said_to) <= 0.4, (sentence, said_to)
    # The pauses are silence.
    samples, rec_started_us = story.recording()
    rec_from_s = (rec_started_us - started_us) / 1e6
    for quiet_from, quiet_to in zero_runs(samples):
        a, b = rec_from_s + quiet_from + TOL_S, rec_from_s + quiet_to - TOL_S
        assert not [s for s in spans if s[0] < b and s[1] > a], (quiet_from, quiet_to, spans)
