"""Staff: the read-only "my line" page, the concern form, and nothing else of the box."""

import dataclasses
import re
from html import unescape

import pytest

from firmware.policy.retention import RetentionRule
from firmware.policy.settings import LineMode
from firmware.rights import RightsRegister

from support.web import audio_url


@pytest.fixture
def stella(box, people):
    """A staff member whose phone is line 4 (calls 4, 8, ... 40 of the test calls)."""
    box.add_user(people["alice"], "stella", ["staff"], [4])
    return box.login("stella")


def page(client, url):
    resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return resp.get_data(as_text=True)


def section(html, line):
    return re.search(r'<section class="myline" id="myline-%d">(.*?)</section>' % line, html, re.S).group(1)


def test_staff_see_their_own_line_and_only_it(box, people, stella):
    box.add_recordings([4, 8, 12])
    box.status.set(4, "connected", call={"direction": "in", "number": "01632960777", "name": "A Caller"})
    resp = stella.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/my-line"
    html = page(stella, "/my-line")
    mine = section(html, 4)
    assert "Yes: every call recorded" in mine
    assert 'class="now now-recording" id="now-4" aria-live="polite">Recording<' in mine
    assert "10 call records, 3 with a recording" in mine
    assert "01632960777" not in html and "A Caller" not in html  # the caller's, not hers
    assert 'id="myline-1"' not in html
    # Who may play line 4: its supervisors only (sam and sue have lines 1-2 and 3).
    assert re.search(r'id="listeners">(.*?):', html).group(1) == "alice"
    assert 'href="/documents/staff-notice"' in html
    # Nothing else of the box: no dashboard, calls, alarms or live status.
    for url in ("/calls", "/calls/4", "/alarms", "/api/status", "/audit", "/reports", "/settings"):
        assert stella.get(url).status_code == 403, url
    assert page(stella, "/documents/staff-notice").count("Which lines are recorded") == 1


def test_the_page_left_open_learns_when_its_line_records(box, people, stella):
    """It was drawn once: a staff member who left it open read "No call" while a call on
    the line was being recorded."""
    assert page(stella, "/my-line").count("myline.js") == 1
    assert stella.get("/api/my-line").get_json() == {"4": {"text": "No call", "state": "none"}}
    box.status.set(4, "connected", call={"direction": "in", "number": "01632960777"})
    assert stella.get("/api/my-line").get_json() == {"4": {"text": "Recording", "state": "recording"}}
    assert people["sam"].get("/api/my-line").status_code == 403
    # Asking is not activity: a page left open does not keep the session alive.
    for _ in range(16):
        box.clock.advance(60)
        stella.get("/api/my-line")
    assert stella.get("/api/my-line").status_code == 401


def test_a_call_being_dialled_is_not_said_recorded_before_the_rules_decide(box, people, stella):
    """On a line recorded by the rules, a call being made is held in memory while it is
    dialled, and dropped if the number or its direction is not recorded: "Right now" said
    "Recording" all the while, on a line that records no call its staff make."""
    from .test_pause import FakeLive

    box.services.live = FakeLive()
    box.services.live.recording = {4}  # held by the recorder, not yet decided
    box.status.set(4, "dialling", call={"direction": "out", "number": "0163"})
    assert stella.get("/api/my-line").get_json()["4"] == {
        "text": "Not recorded yet: the rules decide once the number is dialled",
        "state": "off",
    }
    decided = {"direction": "out", "number": "01632960777", "policy_decision": "record"}
    box.status.set(4, "connected", call=decided)
    assert stella.get("/api/my-line").get_json()["4"] == {"text": "Recording", "state": "recording"}


def test_the_retention_period_and_a_private_line_show(box, people, stella):
    cfg = box.config_store.get()
    retention = dataclasses.replace(cfg.policy.retention, default_days=90)
    policy = dataclasses.replace(cfg.policy, retention=retention)
    box.config_store.save(dataclasses.replace(cfg, policy=policy))
    assert "90 days, then deleted automatically" in section(page(stella, "/my-line"), 4)
    retention = dataclasses.replace(cfg.policy.retention, default_days=1)  # not "1 days"
    box.config_store.save(dataclasses.replace(cfg, policy=dataclasses.replace(policy, retention=retention)))
    assert 'Kept for</dt><dd class="kept">1 day, then deleted' in section(page(stella, "/my-line"), 4)
    cfg = box.config_store.get()
    rules = dataclasses.replace(cfg.policy.rules, lines=(LineMode(line=4, mode="never"),))
    box.config_store.save(dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, rules=rules)))
    mine = section(page(stella, "/my-line"), 4)
    assert "No: a private line, never recorded" in mine and "Nothing is recorded" in mine
    # Nothing recorded, nothing played: "Last 90 days: Played: never; ..." said of it as if
    # there were recordings to play.
    assert 'class="access"' not in mine and "Last 90 days" not in mine
    listeners = re.search(r'id="listeners">(.*?)</p>', page(stella, "/my-line")).group(1)
    assert listeners == "Nobody: nothing on your line is recorded."


def test_a_line_made_private_still_says_how_its_recordings_are_kept_and_who_plays_them(box, people, stella):
    """A line made private keeps the recordings made before: the page said "Kept for:
    Nothing is recorded" and "Who may listen: Nobody" beside "3 with a recording", which
    its supervisors may still play."""
    box.add_recordings([4, 8, 12])
    cfg = box.config_store.get()
    retention = dataclasses.replace(cfg.policy.retention, default_days=90)
    rules = dataclasses.replace(cfg.policy.rules, lines=(LineMode(line=4, mode="never"),))
    policy = dataclasses.replace(cfg.policy, rules=rules, retention=retention)
    box.config_store.save(dataclasses.replace(cfg, policy=policy))
    html = page(stella, "/my-line")
    mine = section(html, 4)
    assert "No: a private line, never recorded" in mine and "3 with a recording" in mine
    kept = unescape(re.search(r'<dd class="kept">(.*?)</dd>', mine).group(1))
    assert kept == (
        "Nothing new is recorded; the recordings made before: 90 days, then deleted automatically "
        "(unless held for a dispute)"
    ), kept
    assert 'class="access"' in mine  # its recordings made before may still be played
    listeners = re.search(r'id="listeners">(.*?):', html).group(1)
    assert listeners == "alice"


def test_a_private_line_says_its_calls_are_still_listed_and_who_reads_them(box, people):
    """A private line's page said "No: a private line, never recorded" and "Who may listen:
    Nobody", and nothing of the call log, which lists its calls as every line's (when, the
    number, how long) for its supervisors and the auditors: its staff took their calls on
    it for unseen. The staff notice said it (of the supervisors); their own page did not."""
    box.add_user(people["alice"], "stella", ["staff"], [3])
    cfg = box.config_store.get()
    rules = dataclasses.replace(cfg.policy.rules, lines=(LineMode(line=3, mode="never"),))
    box.config_store.save(dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, rules=rules)))
    html = page(box.login("stella"), "/my-line")
    listed = unescape(re.search(r'<dd class="listed">(.*?)</dd>', section(html, 3)).group(1))
    assert listed == (
        "Every call on it, recorded or not, is listed in the call log (when, the number, how "
        "long), which its supervisors (alice, sue) and any auditor may read."
    ), listed
    assert "Nobody: nothing on your line is recorded." in html


def test_a_recorded_line_says_who_reads_its_call_log(box, people, stella):
    mine = section(page(stella, "/my-line"), 4)
    listed = unescape(re.search(r'<dd class="listed">(.*?)</dd>', mine).group(1))
    assert listed.endswith("which its supervisor (alice) and any auditor may read."), listed


def test_a_disabled_supervisor_is_not_said_to_listen_nor_to_read_the_log(box, people):
    """A supervisor's account disabled (a leaver's, or by an installer) logs in to nothing,
    but My line and the staff notice still named them among who may listen and read the
    call log. The notice's new words are kept as in effect at once, as any Users page change."""
    box.add_user(people["alice"], "stella", ["staff"], [3])
    assert box.post(people["ivan"], "/users/sue/disable", token_from="/users").status_code == 302
    stella = box.login("stella")
    html = page(stella, "/my-line")
    listed = unescape(re.search(r'<dd class="listed">(.*?)</dd>', section(html, 3)).group(1))
    assert listed.endswith("which its supervisor (alice) and any auditor may read."), listed
    assert re.search(r'id="listeners">(.*?):', html).group(1) == "alice"
    notice = unescape(page(stella, "/documents/staff-notice"))
    said = re.search(r'<p id="listeners">(.*?)</p>', notice).group(1)
    assert "sue" not in said and "alice (" in said, said
    kept = box.services.audit.entries(limit=1, action="staff_notice")[0]
    assert kept.actor == "ivan" and kept.details.get("saved")
    assert not [x for x in kept.details["notice"]["listeners"] if x.startswith("sue ")]
    # Enabled again, they are named again.
    assert box.post(people["ivan"], "/users/sue/enable", token_from="/users").status_code == 302
    assert "its supervisors (alice, sue)" in section(page(stella, "/my-line"), 3)


def test_the_personal_call_code_is_said_on_the_lines_it_works_on(box, people):
    """With the personal-call code on, the page said "Yes: every call recorded" and how to
    pause for card details, and nothing of how to keep a personal call unrecorded: the
    one thing a staff member on a recorded line most needs, given by the notice alone."""
    from firmware.policy.rules import Personal

    box.add_user(people["alice"], "stella", ["staff"], [3, 4])
    cfg = box.config_store.get()
    rules = dataclasses.replace(cfg.policy.rules, personal=Personal(dtmf_code="*7", lines=(4,)))
    box.config_store.save(dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, rules=rules)))
    html = page(box.login("stella"), "/my-line")
    said = unescape(re.search(r'<dd class="personal">(.*?)</dd>', section(html, 4)).group(1))
    assert said == (
        "Key *7 on the handset once the call is connected (one you make or one you take): it is "
        "not recorded, and what was recorded of it is deleted at once. The call is still listed "
        "in the call log."
    ), said
    assert 'class="personal"' not in section(html, 3)  # the code does not work there


def test_who_may_listen_to_several_lines_says_lines(box, people):
    """A staff member on two lines read "sam, sue: the supervisors of your line"."""
    box.add_user(people["alice"], "stella", ["staff"], [3, 4])
    said = re.search(r'id="listeners">(.*?)\.', page(box.login("stella"), "/my-line")).group(1)
    assert said == "alice, sue: the supervisors of your lines, each with their own key", said


def test_staff_alarms_stay_hidden_and_a_concern_reaches_the_supervisors(box, people, stella):
    box.alarm_log.set("disk_warning", True, message="the card is 85% full")
    html = page(stella, "/my-line")
    assert 'id="alarm-banner"' not in html and 'href="/alarms"' not in html
    short = box.post(stella, "/concerns", {"concern": "why"}, token_from="/my-line")
    assert short.status_code == 400
    text = short.get_data(as_text=True)
    assert 'id="error-concern"' in text and 'id="myline-4"' in text
    resp = box.post(stella, "/concerns", {"concern": "Is my mobile recorded too?"}, token_from="/my-line")
    assert resp.status_code == 302 and resp.headers["Location"] == "/my-line?raised=1"
    row = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"][0]
    assert row["message"] == "from stella: Is my mobile recorded too?"
    assert 'id="alarm-%d"' % row["id"] in page(people["sam"], "/calls")
    assert 'id="concern-sent"' in page(stella, "/my-line?raised=1")


def test_each_concern_is_its_own_row_of_the_banner_with_its_words(box, people, stella):
    """Two concerns were one row of the banner, as a line dropping its voltage is: the
    latest's words, "2 times since", and "Acknowledge all 2", which acknowledged the first,
    from another person perhaps, whose words the supervisor was never shown there."""
    for words in ("Is my mobile recorded too?", "My doctor's call was recorded."):
        resp = box.post(stella, "/concerns", {"concern": words}, token_from="/my-line")
        assert resp.status_code == 302
        box.clock.advance(60)
    concerns = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    html = unescape(page(people["sam"], "/calls"))
    banner = html[html.index('id="alarm-banner"') : html.index("Alarm history")]
    assert "Is my mobile recorded too?" in banner and "My doctor's call was recorded." in banner
    assert "2 times since" not in banner and "Acknowledge all" not in banner
    for row in concerns:
        assert 'id="alarm-%d"' % row["id"] in banner
    # The same words sent again are one row, as an alarm raised again is: nothing unread.
    box.post(stella, "/concerns", {"concern": "Is my mobile recorded too?"}, token_from="/my-line")
    html = unescape(page(people["sam"], "/calls"))
    banner = html[html.index('id="alarm-banner"') : html.index("Alarm history")]
    assert banner.count("Is my mobile recorded too?") == 1 and "Acknowledge all 2" in banner


def test_concerns_from_one_account_are_limited_to_a_few_a_day(box, people, stella):
    """A staff member could send concern after concern in other words, each a row of its
    own on the banner of every supervisor, installer and auditor, and mailed: five a day
    from one account, then the form says so, keeps the words, and nothing is raised."""
    for n in range(5):
        said = {"concern": "Concern number %d about it" % n}
        resp = box.post(stella, "/concerns", said, token_from="/my-line")
        assert resp.status_code == 302, n
        box.clock.advance(600)
    before = len(box.alarm_log.history())
    resp = box.post(stella, "/concerns", {"concern": "Concern number 5 about it"}, token_from="/my-line")
    assert resp.status_code == 429
    html = unescape(resp.get_data(as_text=True))
    said = re.search(r'id="error-concern" role="alert">(.*?)</span>', html).group(1)
    assert said.startswith(
        "You have sent 5 concerns in the last 24 hours, the most one account may send in a day: "
        "each is shown to every supervisor, installer and auditor. You can send another from "
    ), said
    assert said.endswith("; until then, speak to a supervisor. Nothing was sent."), said
    assert ">Concern number 5 about it</textarea>" in html
    hint = re.search(r'id="concern-hint">(.*?)</p>', html).group(1)
    assert hint.startswith("10 to 1000 characters; at most 5 concerns in a day."), hint
    assert len(box.alarm_log.history()) == before
    # Another account is not held back by hers; a day after her first, she may send again.
    sam = box.login("sam")
    resp = box.post(sam, "/concerns", {"concern": "Concern of sam's"}, token_from="/alarms")
    assert resp.status_code == 302
    box.clock.advance(24 * 3600 - 4 * 600)
    again = {"concern": "Concern number 5 about it"}
    resp = box.post(box.login("stella"), "/concerns", again, token_from="/my-line")
    assert resp.status_code == 302


def test_the_concern_button_does_not_say_the_supervisors_alone(box, stella):
    """The form says installers and auditors read a concern too, its button still read
    "Send to the supervisors"."""
    form = re.search(r'<form[^>]*id="concern-form".*?</form>', page(stella, "/my-line"), re.S).group(0)
    assert re.search(r'<button type="submit">(.*?)</button>', form).group(1) == "Send the concern"


def test_the_concern_form_says_who_reads_it(box, people, stella):
    """The form said a concern "goes to the supervisors", and its answer "Your concern was
    sent to the supervisors": the installers and auditors were shown it with the person's
    name too, and it was mailed to the alarm recipients, who may be none of them."""
    html = unescape(page(stella, "/my-line"))
    label = re.search(r'<label for="concern">(.*?)</label>', html).group(1)
    assert label == (
        "Your concern about the recording (with your name, it goes to the supervisors, the "
        "installers and the auditors, and is e-mailed to whoever gets the box's alarms)"
    ), label
    resp = box.post(stella, "/concerns", {"concern": "Is my mobile recorded too?"}, token_from="/my-line")
    sent = unescape(page(stella, resp.headers["Location"]))
    said = re.search(r'id="concern-sent">(.*?)</p>', sent).group(1)
    assert said == (
        "Your concern was sent, with your name, to the supervisors, the installers and the auditors."
    ), said
    for who in ("ivan", "audrey", "sam"):  # an installer, an auditor, a supervisor of other lines
        assert "Is my mobile recorded too?" in unescape(page(people[who], "/alarms")), who


def test_a_link_cannot_say_a_concern_was_sent_that_was_not(box, people, stella):
    """``?raised=1`` alone said "Your concern was sent to the supervisors" (My line) and
    "Your concern was passed on" (Alarms): a link made up, or a page reloaded later, told
    someone their concern had gone when nothing was sent. Said once, after one was."""
    assert 'id="concern-sent"' not in page(stella, "/my-line?raised=1")
    sam = people["sam"]
    assert 'id="concern-raised"' not in page(sam, "/alarms?raised=1")
    for client, start, url, said in (
        (stella, "/my-line", "/my-line?raised=1", 'id="concern-sent"'),
        (sam, "/alarms", "/alarms?raised=1", 'id="concern-raised"'),
    ):
        resp = box.post(client, "/concerns", {"concern": "Is my mobile recorded too?"}, token_from=start)
        assert resp.status_code == 302 and resp.headers["Location"] == url
        assert said in page(client, url)
        assert said not in page(client, url)  # once: the page reloaded sends nothing again


def test_a_concern_naming_a_time_out_of_the_calendars_range_breaks_no_page(box, people, stella):
    # The supervisors' pages say an alarm's dates in the box's zone: this one, of the year 1,
    # is before the zone's first offset (a day before the year 1 locally), and every page
    # showing the concern was a server error.
    text = "Recorded since 0001-01-01T00:00:00Z? Nobody told me"
    resp = box.post(stella, "/concerns", {"concern": text}, token_from="/my-line")
    assert resp.status_code == 302
    for url in ("/alarms", "/"):
        assert "0001-01-01T00:00:00Z" in page(people["sam"], url), url


def test_a_staff_account_needs_its_line(box, people):
    resp = box.post(
        people["alice"],
        "/users",
        {"name": "stella", "password": box.PASSWORDS["stella"], "roles": ["staff"]},
        token_from="/users",
    )
    assert resp.status_code == 400 and "A staff member needs their line" in resp.get_data(as_text=True)
    assert box.web.accounts.get("stella") is None
    # The form asks for it where it asks a supervisor's lines: "Lines (for supervisors)"
    # said a staff member needed none, until the refusal above.
    legend = re.search(r"<legend>(Lines[^<]*)</legend>", resp.get_data(as_text=True)).group(1)
    assert "staff" in legend, legend


def test_the_staff_notice_says_a_copy_can_be_asked_for_on_my_line(box, stella):
    """The notice's "Asking for a copy" said only "Ask a supervisor ... in writing": a staff
    member was not told of the request form on their own page, which logs it at once."""
    notice = page(stella, "/documents/staff-notice")
    rights = unescape(re.search(r'<p id="rights">(.*?)</p>', notice).group(1))
    assert rights.startswith("Ask a supervisor, or "), rights
    assert (
        "If you have a staff account on this box, you can also ask on its My line page (Ask about "
        "your recordings): your request is logged at once, and the page shows when it is due."
    ) in rights, rights
    assert 'id="request-form"' in page(stella, "/my-line")
    assert "Ask about your recordings" in page(stella, "/my-line")


def test_staff_and_auditor_on_one_account_are_warned_of_on_the_users_page(box, people):
    """An installer could give one account Staff and Auditor with no word: the staff member
    then listed every line's calls, their colleagues' numbers too. Accounts may hold several
    roles (an auditor's own phone may be recorded): warned of in plain words, not refused."""
    warning = (
        "stella is both Staff and Auditor: as an auditor they list every line's calls, with the "
        "numbers, their colleagues' too, and read the audit trail, not only their own line as "
        "staff do. Keep both only if that is meant; for a staff member, untick Auditor."
    )
    assert 'id="mixed-' not in page(people["ivan"], "/users")  # alice: installer and supervisor
    box.add_user(people["ivan"], "stella", ["staff", "auditor"], [4])
    assert box.web.accounts.get("stella").roles == {"staff", "auditor"}
    for who in ("ivan", "audrey"):  # the installer's page, and the auditor's to read
        said = re.search(r'id="mixed-stella">(.*?)</span>', unescape(page(people[who], "/users"))).group(1)
        assert said == warning, (who, said)
    assert page(people["ivan"], "/users").count('id="mixed-') == 1


def test_the_staff_menu_has_help_on_every_screen(box, stella):
    menu = re.search(r'<nav aria-label="Main menu".*?</nav>', page(stella, "/my-line"), re.S).group(0)
    links = re.findall(r'<a href="([^"]+)"', menu)
    assert links == ["/my-line", "/documents/staff-notice", "/help"]
    for url in links[:-1]:
        m = re.search(r'href="([^"]+)" id="page-help"', page(stella, url))
        text = page(stella, m.group(1))
        assert 'id="help-text"' in text and len(re.sub(r"<[^>]+>", "", text)) > 600, url


def test_the_help_page_says_what_staff_do(box, stella):
    """ "Who does what" named the installer, the supervisor and the auditor: a staff member
    reading the help for their role found none."""
    roles = re.search(r"<h2>Who does what</h2>\s*<dl>(.*?)</dl>", page(stella, "/help"), re.S).group(1)
    assert re.findall(r"<dt>(.*?)</dt>", roles) == ["Installer", "Supervisor", "Auditor", "Staff"]
    assert 'href="/help/myline"' in roles.split("<dt>Staff</dt>")[1]


def test_a_concern_with_a_card_number_is_refused(box, people, stella):
    """PCI DSS: a concern is kept, shown and mailed as written; one holding a card number
    is refused, saying where, and nothing is raised."""
    before = len(box.alarm_log.history())
    card = box.post(
        stella,
        "/concerns",
        {"concern": "The caller read 4111 1111 1111 1111 out loud"},
        token_from="/my-line",
    )
    assert card.status_code == 400
    assert "card number" in card.get_data(as_text=True)
    assert len(box.alarm_log.history()) == before


def register(box):
    reg = RightsRegister(box.data_dir, box.services.cipher)
    try:
        return reg.entries()
    finally:
        reg.close()


def test_a_staff_member_logs_their_own_request_and_sees_its_deadline(box, people, stella):
    """Asking a supervisor by word of mouth left the request out of the register, where no
    deadline ran and no alarm watched it: the page logs it at once, tells the supervisors,
    and shows the staff member its state."""
    resp = box.post(
        stella, "/my-line/request", {"kind": "access", "words": "my calls in February"}, token_from="/my-line"
    )
    assert resp.status_code == 302
    [entry] = register(box)
    assert resp.headers["Location"] == "/my-line?asked=%d" % entry["id"]
    assert entry["kind"] == "access" and entry["actor"] == "stella" and entry["requester"] == "stella"
    assert entry["received"] == "2026-03-02" and str(entry["due"]) == "2026-04-02"
    words = "Asked on the My line page, about their own calls on line 4: my calls in February"
    assert entry["details"] == words
    [logged] = [e for e in box.services.audit.entries(limit=1000) if e.action == "data_request"]
    assert logged.actor == "stella" and logged.target == "request:%d" % entry["id"]
    assert logged.details["event"] == "logged" and logged.details["via"] == "my_line"
    [alarm] = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    assert "from stella: asked on My line: Access" in alarm["message"]
    assert "request %d on the Requests page, due 2026-04-02" % entry["id"] in alarm["message"]
    html = page(stella, resp.headers["Location"])
    # Dates as every page says them (the Requests pages too), not ISO.
    assert 'id="request-sent"' in html and "due by Thu 2 Apr 2026" in html
    row = re.search(r'<tr id="my-request-%d">(.*?)</tr>' % entry["id"], html).group(1)
    assert "Mon 2 Mar 2026" in row and "Thu 2 Apr 2026" in row and "Open" in row
    assert "A copy of my recordings" in row  # the words the staff member chose, not the register's
    # The register holds it, as one a supervisor logged: the auditor reads it; sam, a
    # supervisor of lines 1 and 2, does not (line 4's supervisor answers it).
    assert 'id="request-%d"' % entry["id"] in page(people["audrey"], "/requests")
    assert 'id="request-%d"' % entry["id"] not in page(people["sam"], "/requests")
    # A request someone else logged is not hers to see.
    other = box.post(
        people["sam"],
        "/requests",
        {
            "kind": "access",
            "received": "2026-03-02",
            "requester": "Mrs Wilhelmina Pottage",
            "contact": "w.pottage@example.org",
            "details": "every recording of my calls",
        },
        token_from="/requests",
    )
    assert other.status_code == 302 and len(register(box)) == 2
    assert page(stella, "/my-line").count('<tr id="my-request-') == 1
    # Nor one an earlier account of her name logged: a leaver's account deleted and a new
    # stella made later sees none of the leaver's requests.
    box.clock.advance(60)
    with box.web.db.tx() as conn:
        box.web.accounts.delete(conn, "stella")
    box.add_user(people["alice"], "stella", ["staff"], [4])
    assert 'id="my-requests"' not in page(box.login("stella"), "/my-line")


def test_a_request_names_the_lines_as_the_other_pages_do(box, people):
    """A request's details and its alarm said "about their own calls on line 4" where every
    other page says "line 4 (Sales)" (firmware.words.line_said)."""
    from .test_line_names import _name_lines

    _name_lines(box, line4="Sales")
    box.add_user(people["alice"], "stella", ["staff"], [3, 4])
    resp = box.post(box.login("stella"), "/my-line/request", {"kind": "access"}, token_from="/my-line")
    assert resp.status_code == 302
    [entry] = register(box)
    said = "about their own calls on line 3 and line 4 (Sales)"
    assert entry["details"] == "Asked on the My line page, %s." % said
    alarms = [r["message"] for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    assert alarms and all(said + " (" in m for m in alarms), alarms


def test_a_request_sent_twice_from_my_line_is_logged_once(box, people, stella):
    """A double click on Send: one request, one entry in the trail, one alarm to the
    supervisors; the second is refused, naming the request logged."""
    form = {"kind": "access", "words": "my calls in February"}
    assert box.post(stella, "/my-line/request", dict(form), token_from="/my-line").status_code == 302
    [entry] = register(box)
    alarms = len(box.alarm_log.history())
    resp = box.post(stella, "/my-line/request", dict(form), token_from="/my-line")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'id="error-kind"' in text
    assert "logged already, as request %d" % entry["id"] in text
    assert len(register(box)) == 1 and len(box.alarm_log.history()) == alarms
    assert len([e for e in box.services.audit.entries(limit=1000) if e.action == "data_request"]) == 1


@pytest.mark.parametrize(
    "form, field, message",
    [
        ({"kind": "rectification"}, "kind", "Choose what you ask for"),
        ({}, "kind", "Choose what you ask for"),
        ({"kind": "access", "words": "x" * 1001}, "words", "at most 1000 characters, not 1001"),
        ({"kind": "erasure", "words": "the call where I read 4111 1111 1111 1111"}, "words", "card number"),
    ],
)
def test_a_bad_request_is_named_and_logs_nothing(box, people, stella, form, message, field):
    before = len(box.alarm_log.history())
    resp = box.post(stella, "/my-line/request", form, token_from="/my-line")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="error-%s"' % field in text and message in text
    assert register(box) == [] and len(box.alarm_log.history()) == before
    assert not [e for e in box.services.audit.entries(limit=1000) if e.action == "data_request"]


def test_a_request_of_no_kind_names_the_choices_as_the_form_does(box, people, stella):
    """The choices were said lower-cased and run together: "Choose what you ask for: a copy
    of my recordings (subject access), erase recordings of me, i object to being recorded."."""
    resp = box.post(stella, "/my-line/request", {"words": "about March"}, token_from="/my-line")
    said = unescape(re.search(r'id="error-kind"[^>]*>(.*?)<', resp.get_data(as_text=True)).group(1))
    assert resp.status_code == 400
    assert said == (
        "Choose what you ask for: \u201cA copy of my recordings (subject access)\u201d, "
        "\u201cErase recordings of me\u201d or \u201cI object to being recorded\u201d."
    ), said


def test_tagged_calls_kept_longer_or_by_hand_are_said(box, people, stella):
    """The period shown was the untagged calls' alone: a line whose regulated calls are
    kept five years, or whose complaints are never deleted, read "90 days, then deleted
    automatically"."""
    cfg = box.config_store.get()
    retention = dataclasses.replace(
        cfg.policy.retention,
        default_days=90,
        rules=(
            RetentionRule(name="sales", line=1, days=30, category="sale"),
            RetentionRule(name="complaints", category="complaint", days=None),
            RetentionRule(name="outgoing orders", direction="out", category="order", days=400),
        ),
        minimum_days={"regulated": 1827},
    )
    box.config_store.save(
        dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, retention=retention))
    )
    kept = re.search(r'<dd class="kept">(.*?)</dd>', section(page(stella, "/my-line"), 4)).group(1)
    assert kept == (
        "90 days, then deleted automatically (unless held for a dispute); except calls tagged "
        "complaint: kept until deleted by hand; outgoing calls tagged order: 400 days; calls "
        "tagged regulated: 1827 days"
    )
    # Not "1 days".
    retention = dataclasses.replace(retention, rules=(RetentionRule(name="sales", category="sale", days=1),))
    cfg = box.config_store.get()
    box.config_store.save(
        dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, retention=retention))
    )
    kept = re.search(r'<dd class="kept">(.*?)</dd>', section(page(stella, "/my-line"), 4)).group(1)
    assert kept.endswith("except calls tagged regulated: 1827 days; calls tagged sale: 1 day")


def test_a_line_recorded_by_rule_says_which_calls(box, people, stella):
    """It said "Yes: recorded by the rules" alone: a staff member could not tell which of
    their calls were recorded. Now the page says the line's rules, an exclude list by its
    name and size (never its numbers), and how to pause for card details; a line recorded
    on request, the code to key."""
    import html

    from firmware.policy.settings import BusinessHours, NumberList, OnDemand

    def how():
        found = re.search(r'<dd class="how">(.*?)</dd>', section(page(stella, "/my-line"), 4), re.S)
        return html.unescape(found.group(1))

    cfg = box.config_store.get()
    rules = dataclasses.replace(
        cfg.policy.rules,
        lines=(LineMode(line=4, mode="by_rule"),),
        directions=("out",),
        hours=BusinessHours("Europe/London", {"sat": ("09:00-12:00",)}, ("2026-12-26",)),
        numbers=(NumberList("family", "exclude", ("07700 900123",)),),
    )
    pci = dataclasses.replace(cfg.policy.pci, pause_code="*1", button=False)
    box.config_store.save(
        dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, rules=rules, pci=pci))
    )
    assert how() == (
        "Yes: recorded by the rules: only calls you make (outgoing), not those you take; not calls "
        "to or from the numbers on the list \u201cfamily\u201d (1 entry); only Saturday 09:00-12:00 "
        "(Europe/London time), not on Sat 26 Dec 2026; to pause it while a caller gives card details, "
        "key *1 on the handset"
    )
    assert "07700" not in page(stella, "/my-line")
    cfg = box.config_store.get()
    rules = dataclasses.replace(
        cfg.policy.rules,
        lines=(LineMode(line=4, mode="on_demand"),),
        on_demand=OnDemand(dtmf_code="#7", button=False, from_start=False),
    )
    box.config_store.save(dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, rules=rules)))
    assert how() == (
        "Yes: recorded only when asked during the call (key #7 on the handset); the recording then "
        "begins when asked; to pause it while a caller gives card details, key *1 on the handset"
    )


def access(html, line):
    return unescape(re.search(r'<dd class="access" id="access-%d">(.*?)</dd>' % line, html, re.S).group(1))


def test_staff_see_how_often_their_recordings_were_reached_not_by_whom_nor_which(box, people, stella):
    """Told that every playback and export is audited, a staff member could not see
    whether theirs were: the last 90 days' playbacks, exports and releases of their line,
    by role, from the trail; no name, call or caller, and nothing of another line."""
    assert access(page(stella, "/my-line"), 4).startswith(
        "Played: never; exported: never; released in a subject access bundle: never."
    )
    alice = people["alice"]
    assert alice.get(audio_url(alice, 4)).status_code == 200  # audited as the page does it
    assert people["sam"].get(audio_url(people["sam"], 1)).status_code == 200  # line 1: not hers
    now, day = box.clock.t_us, 86_400_000_000
    add = box.audit.append
    add("alice", "playback", "8", {"line": 4}, now - 89 * day)
    add("alice", "playback", "12", {"line": 4}, now - 91 * day)  # before the 90 days
    add("audrey", "playback", "16", {"line": 4}, now - day)  # by role, whoever it is
    add("gone", "playback", "20", {"line": 4}, now - day)  # an account since removed
    add("alice", "export", "call:8", {"recording": "r", "reason": "x"}, now)  # the CLI's: no line
    add("alice", "export", "call:8", {"refused": "no key"}, now)  # nothing exported
    add("alice", "disclosure", "disclosure:1", {"calls": [5, 8, 12], "recordings": 3}, now)
    add("alice", "disclosure", "disclosure:2", {"failed": "card full"}, now)  # nothing released
    add("sam", "disclosure", "disclosure:3", {"calls": [1, 5], "recordings": 2}, now)  # line 1 alone
    said = access(page(stella, "/my-line"), 4)
    assert said == (
        "Played 4 times (2 by supervisors, 1 by an auditor, 1 by the box's command line or a "
        "removed account); exported once (by a supervisor); released in a subject access "
        "bundle once (by a supervisor). From the audit trail, by the role of who did it: not "
        "who, nor which calls."
    )
    html = page(stella, "/my-line")
    for hidden in ("audrey", "gone", "call:8", "disclosure:1", "0207946"):
        assert hidden not in html, hidden


def test_a_trail_that_cannot_be_read_is_said_not_counted_as_nothing(box, people, stella, monkeypatch):
    from firmware.storage.fieldseal import FieldSealError

    def sealed(*args, **kwargs):
        raise FieldSealError("the audit trail's details are sealed with the key in the HAT's MCU vault")

    monkeypatch.setattr(box.audit, "in_period", sealed)
    html = page(stella, "/my-line")
    said = access(html, 4)
    assert said.startswith("Cannot be told now: the audit trail cannot be read") and "never" not in said
    assert "10 call records" in section(html, 4)  # the rest of the page as ever


def test_a_person_s_requests_of_one_day_are_one_banner_row_and_mail(box, people, stella):
    """Each differently worded request was its own row on every supervisor's banner, and
    mailed: a person's requests made the same day are told once (the register keeps each),
    until that row is acknowledged; none is ever refused."""
    for words in ("my calls in February", "my calls in March", "and in April"):
        resp = box.post(stella, "/my-line/request", {"kind": "access", "words": words}, token_from="/my-line")
        assert resp.status_code == 302
        box.clock.advance(60)
    assert len(register(box)) == 3
    [alarm] = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    first = min(entry["id"] for entry in register(box))
    assert "request %d on the Requests page" % first in alarm["message"]
    assert alarm["message"].endswith(". Any more they ask today are on the Requests page, not told again")
    box.alarm_log.acknowledge(alarm["id"], "sue")
    resp = box.post(stella, "/my-line/request", {"kind": "erasure"}, token_from="/my-line")
    assert resp.status_code == 302 and len(register(box)) == 4
    assert len([r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]) == 2
