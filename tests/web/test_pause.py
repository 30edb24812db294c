"""The PCI pause on the dashboard, and the site settings reaching the box's policy."""

import dataclasses
import html
import json
import re

import pytest

from firmware.policy.engine import PolicyError


class FakeLive:
    """A :class:`web.services.LiveCallControl` that remembers what it was asked."""

    def __init__(self):
        self.paused = set()
        self.recording = {1, 2, 3}
        self.pending = set()  # on demand, not asked for yet: a pause protects the ring
        self.asked = []
        self.addresses = []  # the client's address the box was given for each entry

    def pause(self, line, actor, address=None):
        self.asked.append(("pause", line, actor))
        self.addresses.append(address)
        if line in self.paused:
            raise PolicyError("line %d is already paused" % line)
        self.paused.add(line)

    def resume(self, line, actor, address=None):
        self.asked.append(("resume", line, actor))
        self.addresses.append(address)
        if line not in self.paused:
            raise PolicyError("line %d is not paused" % line)
        self.paused.discard(line)

    def paused_lines(self):
        return sorted(self.paused)

    def recording_lines(self):
        return sorted(self.recording)

    def pausable_lines(self):
        return sorted(self.recording | self.pending)


@pytest.fixture
def live(box):
    box.services.live = FakeLive()
    return box.services.live


def test_a_supervisor_pauses_and_resumes_a_granted_line(box, people, live):
    sam = people["sam"]
    resp = box.post(sam, "/lines/1/pause", {"action": "pause"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/?acted=1"
    page = sam.get("/?acted=1").get_data(as_text=True)
    assert 'id="resume-1"' in page and 'id="pause-2"' in page
    assert "Line 1: recording paused. Nothing is recorded until you resume it." in page
    assert re.search(r'id="resume-1"[^>]* autofocus>', page)
    resp = box.post(sam, "/lines/1/pause", {"action": "resume"})
    assert resp.status_code == 302
    assert live.asked == [("pause", 1, "sam"), ("resume", 1, "sam")]


def test_the_pause_and_resume_carry_the_address_they_came_from(box, people, live):
    """The box audits a pause and a resume from the dashboard; their entries lacked the
    "From address" every other action from a page carries."""
    sam = people["sam"]
    sam.environ_base["REMOTE_ADDR"] = "192.0.2.44"
    assert box.post(sam, "/lines/1/pause", {"action": "pause"}).status_code == 302
    assert box.post(sam, "/lines/1/pause", {"action": "resume"}).status_code == 302
    assert live.addresses == ["192.0.2.44", "192.0.2.44"]


def test_the_page_says_only_what_it_knows_of_the_line_acted_on(box, people, live):
    """``?acted=`` names a line; the words are the page's own, and only for the user's lines."""
    sam = people["sam"]
    page = sam.get("/?acted=2").get_data(as_text=True)
    assert "Line 2: recording resumed." in page and " autofocus" in page
    for forged in ("3", "1%20paused", "-1", "9999", "x"):
        page = sam.get("/?acted=" + forged).get_data(as_text=True)
        assert 'id="acted"' not in page and " autofocus" not in page, forged
    page = people["ivan"].get("/?acted=1").get_data(as_text=True)  # no grant: no pause, no word
    assert 'id="acted"' not in page


def test_refusals(box, people, live):
    sam = people["sam"]
    assert box.post(sam, "/lines/3/pause", {"action": "pause"}).status_code == 403
    assert box.post(people["ivan"], "/lines/1/pause", {"action": "pause"}).status_code == 403
    assert box.post(sam, "/lines/1/pause", {"action": "sing"}).status_code == 400
    resp = box.post(sam, "/lines/1/pause", {"action": "resume"})
    assert resp.status_code == 409 and "Line 1 is not paused." in resp.get_data(as_text=True)
    assert live.asked == [("resume", 1, "sam")]


def test_the_dashboard_offers_no_pause_without_a_grant(box, people, live):
    page = people["ivan"].get("/").get_data(as_text=True)
    assert "Pause recording" not in page


def test_no_pause_where_nothing_is_recorded(box, people, live):
    """Issue 11: a private or on-demand line, or a box not set up, records nothing."""
    sam = people["sam"]
    call = {"id": 1, "direction": "in", "number": "01632960123", "policy_decision": "record"}
    box.status.set(1, "connected", dict(call))
    box.status.set(2, "connected", dict(call, id=2))
    live.recording = {1}  # line 2's call is not being recorded (no keys, say)
    page = sam.get("/").get_data(as_text=True)
    assert re.search(r'id="pause-1" class="pause-btn"[^>]*"Resume recording">', page)
    assert re.search(r'id="pause-2" class="pause-btn"[^>]* disabled>', page)
    status = sam.get("/api/status").get_json()
    assert [line["recording"]["state"] for line in status["lines"]] == [
        "recording",
        "off",
    ]  # lines 1 and 2, his
    resp = box.post(sam, "/lines/2/pause", {"action": "pause"})
    assert resp.status_code == 409 and "nothing to pause" in resp.get_data(as_text=True)
    assert live.asked == [] and box.audit_actions().count("pause") == 0


def test_a_private_line_shows_no_pause(box, people, live):
    """Nothing is recorded on a private line, so there is nothing to pause: the row says
    so, with no button (a disabled one offered a pause that could never be)."""
    from support.web import rules_form

    assert rules_form(box, people["ivan"], **{"line-2-mode": "never"}).status_code == 302
    sam = people["sam"]  # a supervisor of lines 1 and 2
    call = {"id": 1, "direction": "in", "number": "01632960123", "policy_decision": "record"}
    box.status.set(1, "connected", dict(call))
    box.status.set(
        2, "connected", dict(call, id=2, policy_decision="skip", policy_reason="line 2 is private")
    )
    live.recording = {1}
    page = sam.get("/").get_data(as_text=True)
    row2 = re.search(r'<tr id="line-2".*?</tr>', page, re.S).group(0)
    assert "Not recorded: private line" in row2
    assert "<button" not in row2 and "<form" not in row2
    assert re.search(r'id="pause-1" class="pause-btn"[^>]*"Resume recording">', page)  # line 1's stays
    box.status.set(2, "idle")
    row2 = re.search(r'<tr id="line-2".*?</tr>', sam.get("/").get_data(as_text=True), re.S).group(0)
    assert "Private line: never recorded" in row2 and "<button" not in row2
    status = sam.get("/api/status").get_json()["lines"]
    assert [line["can_pause"] for line in status] == [True, False]  # (his lines, 1 and 2)


def test_an_on_demand_call_not_yet_recorded_can_be_paused(box, people, live):
    """Asked for later, it is recorded from its start: the pause protects what is said now."""
    sam = people["sam"]
    call = {"id": 1, "direction": "in", "number": "01632960123", "policy_decision": "pending"}
    box.status.set(1, "connected", dict(call))
    live.recording, live.pending = set(), {1}
    page = sam.get("/").get_data(as_text=True)
    assert re.search(r'id="pause-1" class="pause-btn"[^>]*"Resume recording">', page)  # not disabled
    assert [x["pausable"] for x in sam.get("/api/status").get_json()["lines"]] == [True, False]
    assert box.post(sam, "/lines/1/pause", {"action": "pause"}).status_code == 302
    assert live.asked == [("pause", 1, "sam")]


def test_site_settings_become_the_policy_and_the_country(tmp_path):
    """Private lines become mode "never", the country reaches config.json, audited."""
    from firmware.config import BoxConfig, load_config, save_config
    from firmware.policy.settings import LineMode, PolicySettings, RecordingRules
    from firmware.storage.audit import AuditLog
    from web.services import BoxConfigStore, site_settings_applier
    from web.site import LineSetting, SiteSettings

    data = str(tmp_path)
    save_config(
        data,
        BoxConfig(
            policy=PolicySettings(rules=RecordingRules(lines=(LineMode(1, "by_rule"), LineMode(4, "never"))))
        ),
    )
    applied = []
    store = BoxConfigStore(data, applied.append)
    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    apply = site_settings_applier(store, audit, lambda: 1_772_442_000_000_000)
    lines = (
        LineSetting(1, "Sales", True),
        LineSetting(2, "Directors", False),
        LineSetting(3, "Support", True),
        LineSetting(4, "Shop", True),
    )
    apply(SiteSettings("Acme", "", "", "Quality", "us", lines))
    config = load_config(data)
    assert [config.policy.rules.mode(n) for n in (1, 2, 3, 4)] == ["by_rule", "never", "always", "always"]
    assert config.country == "us" and applied == [config]
    (entry,) = audit.entries(action="config_change")
    assert (entry.actor, entry.target) == ("system", "config")
    assert entry.details == {
        "source": "site settings",
        "lines": {"2": "never", "4": "always"},
        "country": "us",
    }
    apply(SiteSettings("Acme", "", "", "Quality", "us", lines))  # no change: no entry
    assert len(audit.entries(action="config_change")) == 1
    audit.close()


def test_site_settings_take_effect_on_a_running_box(tmp_path, synth):
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box
    from web.services import services_for_box
    from web.site import LineSetting, SiteSettings

    doc = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 2,
        "calls": [{"line": 2, "at": 30.0, "direction": "in", "rings": 1, "talk": 3.0}],
    }
    box = open_sim_box(loads_scenario(json.dumps(doc)), str(tmp_path / "d"), synth=synth)
    services = services_for_box(box)
    box.clock.call_at(
        10_000_000,
        lambda: services.apply_settings(
            SiteSettings(
                "Acme",
                "ZA123456",
                "2027-01-01",
                "Quality",
                "uk",
                (LineSetting(1, "Sales", True), LineSetting(2, "Directors", False)),
            )
        ),
    )
    box.start()
    assert box.board.run()
    box.stop()
    (call,) = _calls(tmp_path / "d")
    assert (call["policy_decision"], call["policy_reason"]) == ("skip", "line 2 is private")


def _calls(data_dir):
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock

    log = CallLog(str(data_dir / "calls.db"), SimClock())
    try:
        return log.calls()
    finally:
        log.close()


def test_a_call_under_way_when_its_line_is_made_private_is_said_to_be_recorded(box, people, live):
    """A call keeps its decision to its end, so a line made private during a recorded call
    is recorded until the call ends. The dashboard said "Not recorded: private line" and
    the settings page "Saved.": the installer was told the line was private while it was
    still being recorded, and was not shown the pause that stops it."""
    from web.services import site_settings_applier
    from web.site import form_values

    box.services.apply_settings = site_settings_applier(box.config_store, box.audit, box.services.wall_us)
    ivan, sam = people["ivan"], people["sam"]
    call = {"id": 7, "direction": "in", "number": "01632960123", "policy_decision": "record"}
    box.status.set(2, "connected", dict(call))
    live.recording = {2}
    form = form_values(box.web.site.settings(), box.LINES)
    form["line-2-mode"] = "private"
    resp = box.post(ivan, "/settings", form, token_from="/settings")
    assert resp.status_code == 302 and box.config_store.get().policy.rules.mode(2) == "never"
    note = (
        "Line 2 is private now, but a call that began before is still being recorded: a call "
        "keeps its recording to its end. To stop recording the rest of it, pause it on the Lines page."
    )
    for page in ("/settings?saved=1", "/rules"):
        assert note in html.unescape(ivan.get(page).get_data(as_text=True)), page
    status = sam.get("/api/status").get_json()["lines"][1]
    assert status["recording"] == {
        "state": "recording",
        "text": "Recording: the call began before the line was made private, and is recorded to its "
        "end unless paused",
    }
    page = sam.get("/").get_data(as_text=True)
    assert re.search(r'id="pause-2" class="pause-btn"[^>]*"Resume recording">', page)  # not disabled
    assert box.post(sam, "/lines/2/pause", {"action": "pause"}).status_code == 302
    status = sam.get("/api/status").get_json()["lines"][1]
    assert status["recording"]["state"] == "paused"
    page = sam.get("/").get_data(as_text=True)
    assert re.search(r'id="resume-2" class="pause-btn"[^>]*"Resume recording">Resume', page)
    # The call over: private, and nothing said of it.
    box.status.set(2, "idle")
    live.recording, live.paused = set(), set()
    assert 'id="still-recording"' not in ivan.get("/settings").get_data(as_text=True)
    status = sam.get("/api/status").get_json()["lines"][1]
    assert status["recording"] == {"state": "none", "text": "Private line: never recorded"}
    page = sam.get("/").get_data(as_text=True)
    assert 'id="pause-2"' not in page and 'id="resume-2"' not in page


def test_a_call_keeps_its_recording_when_its_line_is_made_private(tmp_path, synth):
    """What the page above says: the running box, given a line made private during a
    recorded call on it, records that call to its end (the next one is not recorded)."""
    from web.services import services_for_box
    from web.site import LineSetting, SiteSettings

    from support.simbox import keyed_sim_box

    calls = [
        {"line": 2, "at": 5.0, "direction": "in", "rings": 1, "talk": 30.0},
        {"line": 2, "at": 60.0, "direction": "in", "rings": 1, "talk": 5.0},
    ]
    box, data_dir = keyed_sim_box(tmp_path, synth, calls, 2)
    services = services_for_box(box)
    seen = {}
    private = SiteSettings(
        "Acme",
        "ZA123456",
        "2027-01-01",
        "Quality",
        "uk",
        (LineSetting(1, "Sales", True), LineSetting(2, "Directors", False)),
    )
    box.clock.call_at(20_000_000, lambda: services.apply_settings(private))
    box.clock.call_at(25_000_000, lambda: seen.update(recording=services.live.recording_lines()))
    box.start()
    assert box.board.run()
    box.stop()
    assert seen["recording"] == [2]
    first, second = _calls(tmp_path / "box")
    assert first["policy_decision"] == "record"
    assert (second["policy_decision"], second["policy_reason"]) == ("skip", "line 2 is private")


@pytest.mark.parametrize("op", ["pausable", "pause"])
def test_a_pause_the_recorder_does_not_answer_is_said_not_made(box, people, op):
    """The recorder not answering in time (busy, restarting) while a call is recorded: the
    pause was refused as "nothing to pause", and the caller's card details were taken
    and recorded. It now says the recording was not paused and not to take them."""
    from firmware.control import RecorderUnavailable
    from web.remote import RemoteLive

    class Client:
        asked = []

        def call(self, name, **args):
            self.asked.append(name)
            if name == op:
                raise RecorderUnavailable("the recorder is not answering (timed out); it may be restarting")
            return [1] if name in ("pausable", "recording") else ([] if name == "paused" else None)

    box.services.live = RemoteLive(Client())
    call = {"id": 1, "direction": "in", "number": "01632960123", "policy_decision": "record"}
    box.status.set(1, "connected", call)
    resp = box.post(people["sam"], "/lines/1/pause", {"action": "pause"})
    said = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 503
    assert "The recording on line 1 was not paused: the recorder is not answering (timed out)" in said
    assert "do not take card details on it" in said and "nothing to pause" not in said
    assert box.audit_actions().count("pause") == 0


def test_the_line_acted_on_is_named_as_the_pages_name_it(box, people, live):
    """The dashboard said "Line 2: recording resumed." of a line the banner above calls
    "line 2 (Office)"."""
    from web.site import LineSetting

    site = box.web.site.settings()
    lines = tuple(LineSetting(x.line, "Office" if x.line == 2 else x.name, x.record) for x in site.lines)
    with box.web.db.tx() as conn:
        box.web.site.save(conn, dataclasses.replace(site, lines=lines))
    page = people["sam"].get("/?acted=2").get_data(as_text=True)
    assert "Line 2 (Office): recording resumed." in page
