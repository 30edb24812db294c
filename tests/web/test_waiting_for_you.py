"""A supervisor's dashboard says what waits for them: the data subjects' requests on their
lines (a staff member's from My line, a caller's by number) with their deadlines, the staff
concerns not answered yet and the alarms not acknowledged, each linking to where it is dealt
with. Another supervisor's line's request is not there."""

import re

import pytest

from support.ports import closed_port
from support.web import page

REQUEST = {
    "kind": "erasure",
    "received": "2026-03-02",
    "requester": "Mrs Wilhelmina Pottage",
    "contact": "w.pottage@example.org",
    "details": "delete my calls",
}
NOBODY = closed_port()  # no mail server there: the test takes the queue's mail itself
# The e-mail settings page's fields.
MAIL = {
    "host": "127.0.0.1",
    "port": str(NOBODY),
    "security": "starttls",
    "username": "box",
    "password": "smtp pass 99",
    "sender": "box@example.com",
    "alarm_to": "",
    "rate_window_min": "15",
    "daily_to": "",
    "daily_fmt": "pdf",
    "weekly_to": "",
    "weekly_fmt": "csv",
    "monthly_to": "",
    "monthly_fmt": "pdf",
}


def waiting(html):
    """The "Waiting for you" list's items, ``{id: text}`` (tags taken out)."""
    section = html.split('id="waiting-heading"')[1].split("<h2")[0]
    return {
        i: re.sub(r"<[^>]+>", "", text)
        for i, text in re.findall(r'<li id="(waiting-[\w-]+)"[^>]*>(.*?)</li>', section)
    }


@pytest.fixture
def stella(box, people):
    """A staff member on line 3, sue's line (sam has lines 1 and 2)."""
    box.add_user(people["alice"], "stella", ["staff"], [3])
    return box.login("stella")


def test_a_supervisor_sees_what_waits_for_them_on_their_lines_only(box, people, stella):
    sam, sue = people["sam"], people["sue"]
    assert '<p id="waiting">Nothing waits for you.</p>' in page(sam, "/")
    resp = box.post(stella, "/my-line/request", {"kind": "access"}, token_from="/my-line")
    assert resp.status_code == 302
    mine = int(resp.headers["Location"].split("asked=")[1])
    resp = box.post(sam, "/requests", dict(REQUEST, received="2026-01-20"), token_from="/requests")
    assert resp.status_code == 302
    theirs = int(resp.headers["Location"].split("/requests/")[1].split("?")[0])
    html = page(sue, "/")
    items = waiting(html)
    said = items["waiting-request-%d" % mine]
    assert said.startswith("Request #%d, Access: a copy of their data (Art. 15) (line 3)" % mine)
    assert "due Thu 2 Apr 2026, 31 days left" in said
    assert 'href="/requests/%d"' % mine in html
    # A caller's request, by number, is about no line: any supervisor may answer it.
    assert "waiting-request-%d" % theirs in items
    # The staff concern the request raised waits for an answer (its acknowledgement).
    [concern] = [k for k in items if k.startswith("waiting-concern-")]
    assert "from stella: asked on My line" in items[concern]
    # sam is not a supervisor of line 3: its request is not his to see here.
    items = waiting(page(sam, "/"))
    assert "waiting-request-%d" % mine not in items and "waiting-request-%d" % theirs in items
    # Overdue (due Fri 20 Feb, today the 2nd of March): in red, saying so.
    html = page(sue, "/")
    assert '<li id="waiting-request-%d" class="error">' % theirs in html
    assert '<li id="waiting-request-%d">' % mine in html
    assert "due Fri 20 Feb 2026, overdue by 10 days" in waiting(html)["waiting-request-%d" % theirs]
    # The concern acknowledged leaves the list; so does a request answered.
    alarm_id = int(concern.rsplit("-", 1)[1])
    assert box.post(sue, "/alarms/%d/acknowledge" % alarm_id, {}, token_from="/alarms").status_code == 302
    assert concern not in waiting(page(sue, "/"))


def test_an_alarm_raised_again_and_again_waits_as_one_item_as_on_the_banner(box, people):
    # A line that drops its voltage every few minutes listed one item per drop: a phone's
    # dashboard was pages of the same alarm, which the banner acknowledges in one press.
    for k in range(3):
        box.alarm_log.set("no_line_voltage", True, line=1, wall_us=box.T0_US + k * 600 * 10**6)
        box.alarm_log.set("no_line_voltage", False, line=1, wall_us=box.T0_US + (k * 600 + 3) * 10**6)
    items = {k: v for k, v in waiting(page(people["sam"], "/")).items() if k.startswith("waiting-alarm-")}
    latest = box.alarm_log.banner([1])[-1]["id"]
    assert list(items) == ["waiting-alarm-%d" % latest]
    assert items["waiting-alarm-%d" % latest].startswith(
        "Alarm to acknowledge, 3 times since Mon 2 Mar 2026, 09:00:00 GMT, the latest raised "
        "Mon 2 Mar 2026, 09:20:00 GMT"
    )
    box.post(people["sam"], "/alarms/%d/acknowledge" % latest, {}, token_from="/alarms")
    assert "2 times since Mon 2 Mar 2026, 09:00:00 GMT" in "".join(waiting(page(people["sam"], "/")).values())


def test_only_a_supervisor_has_the_list(box, people):
    for name in ("ivan", "audrey"):
        html = page(people[name], "/")
        assert "Waiting for you" not in html, name


def test_a_request_about_a_staff_members_line_links_to_the_search_of_that_line(box, people, stella):
    """The register's request from My line named the staff member's line only in its words:
    the supervisor ticked it on the Subject access page themselves. Its page links there
    with its lines ticked and the request chosen, for the lines that supervisor holds."""
    sam, sue = people["sam"], people["sue"]
    resp = box.post(stella, "/my-line/request", {"kind": "access"}, token_from="/my-line")
    rid = int(resp.headers["Location"].split("asked=")[1])
    html = page(sue, "/requests/%d" % rid)
    link = "/sar?line=3&amp;request=%d" % rid
    assert '<a id="r-sar" href="%s">find the calls on line 3 (Subject access)</a>' % link in html
    # sam holds lines 1 and 2: the request is not his to read, nor its search his.
    assert sam.get("/requests/%d" % rid).status_code == 404
    assert "Line 3 is not granted to you" in sam.get("/sar?line=3&request=%d" % rid).get_data(as_text=True)
    # The link fills the form in; nothing is searched (nor audited) until the days are given.
    html = page(sue, "/sar?line=3&request=%d" % rid)
    assert 'value="3" checked' in html and 'id="sar-filling"' in html and 'id="sar-found"' not in html
    assert '<input type="hidden" name="request" value="%d">' % rid in html
    assert "disclosure_search" not in box.audit_actions()
    # A request that is not a number fills nothing in: the lines alone are a search, refused.
    resp = sue.get("/sar?line=3&request=x")
    assert resp.status_code == 400 and "a search by line is over a date range" in resp.get_data(as_text=True)
    html = page(sue, "/sar?line=3&request=%d&from=2026-03-02" % rid)
    assert 'id="sar-filling"' not in html and "disclosure_search" in box.audit_actions()
    # An auditor reads the request, and has no Subject access page to be sent to.
    html = page(people["audrey"], "/requests/%d" % rid)
    assert 'id="r-lines">line 3</dd>' in html and 'id="r-sar"' not in html


def test_a_request_on_one_of_a_supervisors_lines_and_another_names_the_other_as_not_theirs(box, people):
    """stella on lines 2 and 3: sam (lines 1 and 2) reads her request, linked to the search
    of line 2, and told line 3 is searched by its own supervisor."""
    box.add_user(people["alice"], "stella", ["staff"], [2, 3])
    stella = box.login("stella")
    resp = box.post(stella, "/my-line/request", {"kind": "access"}, token_from="/my-line")
    rid = int(resp.headers["Location"].split("asked=")[1])
    html = page(people["sam"], "/requests/%d" % rid)
    assert '<a id="r-sar" href="/sar?line=2&amp;request=%d">' % rid in html
    assert "line 3 is not granted to you, a supervisor of it searches its calls" in html
    assert 'id="request-%d"' % rid in page(people["sam"], "/requests")


def test_the_register_shows_a_supervisor_only_the_requests_of_their_lines_and_of_none(box, people, stella):
    """The register's pages showed every request, with who asked, to every supervisor: sam
    (lines 1 and 2) read that stella, on sue's line 3, asked for her erasure, though his
    dashboard and alarms no longer said it. Now the list, the request's page, its changes
    and the CSV hold for him only the requests about his lines or about no line, counted
    alike; an auditor reads them all."""
    import csv
    import io

    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    resp = box.post(stella, "/my-line/request", {"kind": "erasure"}, token_from="/my-line")
    hers = int(resp.headers["Location"].split("asked=")[1])
    resp = box.post(sam, "/requests", REQUEST, token_from="/requests")
    caller = int(resp.headers["Location"].split("/requests/")[1].split("?")[0])

    def csv_ids(client):
        resp = client.get("/requests.csv")
        assert resp.status_code == 200
        return [int(r["id"]) for r in csv.DictReader(io.StringIO(resp.get_data(as_text=True)))]

    listing = page(sam, "/requests")
    assert 'id="request-%d"' % hers not in listing and "stella" not in listing
    assert 'id="request-%d"' % caller in listing and "<h2>Open (1)</h2>" in listing
    assert sam.get("/requests/%d" % hers).status_code == 404
    assert csv_ids(sam) == [caller]
    assert box.services.audit.entries(limit=1)[0].details["rows"] == 1
    # Nor does he change it, or follow it up: 404, as a request that does not exist. (The
    # form's token taken first: the list it is read from is a look, audited.)
    token = box.token_of(sam, "/requests")
    before = box.audit_actions()
    for path, form in (
        ("/requests/%d" % hers, {"action": "answer", "outcome": "erased", "seen": "1"}),
        ("/requests/%d" % hers, {"action": "bogus"}),
        ("/requests/%d/follow-up" % hers, {"kind": "access", "received": "2026-03-02", "details": "x"}),
    ):
        assert box.post(sam, path, dict(form, csrf_token=token)).status_code == 404, form
    assert box.audit_actions() == before
    assert [e["status"] for e in _register(box)] == ["open", "open"]
    # Line 3's supervisor and the auditor read both, on every page.
    for client in (sue, audrey):
        listing = page(client, "/requests")
        assert 'id="request-%d"' % hers in listing and 'id="request-%d"' % caller in listing
        assert "<h2>Open (2)</h2>" in listing
        assert client.get("/requests/%d" % hers).status_code == 200
        assert client.get("/requests/%d" % caller).status_code == 200
        assert csv_ids(client) == [hers, caller]
    # sue answers it; sam still cannot see it closed.
    resp = box.post(
        sue,
        "/requests/%d" % hers,
        {"action": "answer", "outcome": "erased", "on": "2026-03-02", "seen": _seen(sue, hers)},
        token_from="/requests/%d" % hers,
    )
    assert resp.status_code == 302
    assert 'id="request-%d"' % hers not in page(sam, "/requests")
    assert sam.get("/requests/%d" % hers).status_code == 404 and csv_ids(sam) == [caller]


def _seen(client, rid):
    found = re.search(r'name="seen" value="(\d+)"', client.get("/requests/%d" % rid).get_data(as_text=True))
    return found.group(1)


def _register(box):
    from firmware.rights import RightsRegister

    reg = RightsRegister(box.data_dir, box.services.cipher)
    try:
        return reg.entries()
    finally:
        reg.close()


class _Outbox:
    """A mail server that takes every mail (the queue's sender)."""

    def __init__(self):
        self.sent = []

    def send(self, msg):
        self.sent.append(msg)
        return {}


def _mailed(box):
    """``{address: [body, ...]}`` of the mails the queue sends now."""
    outbox = _Outbox()
    box.services.mail.queue.flush(outbox)
    got = {}
    for msg in outbox.sent:
        for address in msg["To"].split(", "):
            got.setdefault(address, []).append(msg["Subject"] + "\n" + msg.get_content())
    return got


def test_a_request_from_my_line_is_told_only_to_those_who_see_the_staff_members_line(box, people, stella):
    """Who objects to being recorded, or asks to be erased, was a ``staff_concern`` of the
    whole box: sam, a supervisor of lines 1 and 2 only (another team), read stella's name
    and her objection on his banner, Alarms page and dashboard, and so did the address
    mailed only his lines' alarms. It is an alarm of her line now (line 3, sue's)."""
    sam, sue, ivan = people["sam"], people["sue"], people["ivan"]
    alarm_to = "sam@example.com (sam), sue@example.com (sue), ivan@example.com (ivan)"
    resp = box.post(ivan, "/settings/mail", dict(MAIL, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 302
    _mailed(box)  # (anything the settings queued)
    resp = box.post(stella, "/my-line/request", {"kind": "objection"}, token_from="/my-line")
    assert resp.status_code == 302
    [alarm] = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    assert alarm["line"] == 3 and alarm["message"].startswith("from stella: asked on My line: Objection")
    # Its supervisor, and those who see every line, read it: name, kind and line.
    for client in (sue, ivan, people["audrey"]):
        for url in ("/alarms", "/calls" if client is not ivan else "/settings"):
            assert "from stella: asked on My line: Objection" in page(client, url), url
    [concern] = [k for k in waiting(page(sue, "/")) if k.startswith("waiting-concern-")]
    assert "from stella" in waiting(page(sue, "/"))[concern] and concern.endswith("-%d" % alarm["id"])
    # sam, nowhere: banner (every page's, and the live one), Alarms page, CSV, dashboard.
    for url in ("/", "/calls", "/alarms", "/alarms.csv", "/api/alarms?next=/"):
        assert "stella" not in page(sam, url) and "Objection" not in page(sam, url), url
    assert not [k for k in waiting(page(sam, "/")) if k.startswith("waiting-concern-")]
    # Mailed to the recipients who see line 3; not to the one tied to sam.
    mailed = _mailed(box)
    assert "sam@example.com" not in mailed
    for address in ("sue@example.com", "ivan@example.com"):
        [body] = mailed[address]
        assert "Alarm on line 3" in body and "raised by the account stella about line 3" in body
        assert "Objection" not in body  # what she asked stays on the box, behind a login
    # sam cannot acknowledge it; sue does, and it leaves her list.
    assert box.post(sam, "/alarms/%d/acknowledge" % alarm["id"], {}, token_from="/alarms").status_code == 400
    assert box.post(sue, "/alarms/%d/acknowledge" % alarm["id"], {}, token_from="/alarms").status_code == 302
    assert concern not in waiting(page(sue, "/"))
    assert box.alarm_log.get(alarm["id"])["acknowledged_by"] == "sue"
    # The register still lists the request for the supervisors, her line's to answer.
    rid = int(resp.headers["Location"].split("asked=")[1])
    assert 'id="request-%d"' % rid in page(sue, "/requests")
    assert "waiting-request-%d" % rid in waiting(page(sue, "/"))


def test_a_request_of_a_staff_member_on_several_lines_is_raised_on_each(box, people):
    """Each supervisor of one of the lines answers it: each is told, on their own line's
    alarm; nobody is told by an alarm of the whole box naming her."""
    sam, sue = people["sam"], people["sue"]
    box.add_user(people["alice"], "stella", ["staff"], [1, 3])
    stella = box.login("stella")
    resp = box.post(stella, "/my-line/request", {"kind": "erasure"}, token_from="/my-line")
    assert resp.status_code == 302
    rows = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    assert sorted(r["line"] for r in rows) == [1, 3]
    for row in rows:
        assert row["message"].startswith("from stella: asked on My line: Erasure")
        assert "about their own calls on line 1 and line 3" in row["message"]
        assert row["cleared_us"] is not None  # an occurrence each, on the banner until acknowledged
    by_line = {r["line"]: r["id"] for r in rows}
    for client, line in ((sam, 1), (sue, 3)):
        concerns = [k for k in waiting(page(client, "/")) if k.startswith("waiting-concern-")]
        assert concerns == ["waiting-concern-%d" % by_line[line]]


def test_a_request_on_a_line_no_recipient_sees_is_mailed_without_who_asked(box, people, stella):
    """Every alarm recipient tied to a supervisor of other lines (the auditor's address
    left without its account): they are all mailed that line 3 has an alarm, as any alarm
    of such a line, but not who asked nor what."""
    alarm_to = "sam@example.com (sam), audrey@example.com (audrey)"
    resp = box.post(
        people["ivan"], "/settings/mail", dict(MAIL, alarm_to=alarm_to), token_from="/settings/mail"
    )
    assert resp.status_code == 302
    assert box.post(people["alice"], "/users/audrey/delete", {}, token_from="/users").status_code == 302
    _mailed(box)  # (anything the settings queued)
    resp = box.post(
        stella, "/my-line/request", {"kind": "objection", "words": "please"}, token_from="/my-line"
    )
    assert resp.status_code == 302
    mailed = _mailed(box)
    assert sorted(mailed) == ["audrey@example.com", "sam@example.com"]
    [body] = mailed["sam@example.com"]
    assert "Alarm on line 3: A concern raised by staff" in body
    assert "stella" not in body and "Objection" not in body and "please" not in body


def test_a_request_on_a_line_no_supervisor_holds_is_shown_to_every_supervisor(box, people):
    """stella on line 4, which no supervisor holds (sam has lines 1 and 2, sue line 3, alice
    the admin 1 to 3 here): her
    request was shown to no supervisor, so nobody could answer it within its month. Now every
    supervisor is shown it (as one about no line): the list, its page, the CSV, the release
    form and Waiting for you; once a supervisor of line 4 exists, only they are, and when
    that account is disabled, every supervisor again."""
    sam, sue, ivan = people["sam"], people["sue"], people["ivan"]
    resp = box.post(
        ivan,
        "/users/alice",
        {"roles": ["installer", "supervisor"], "lines": ["1", "2", "3"]},
        token_from="/users",
    )
    assert resp.status_code == 302
    box.add_user(ivan, "stella", ["staff"], [4])
    stella = box.login("stella")
    resp = box.post(stella, "/my-line/request", {"kind": "access"}, token_from="/my-line")
    hers = int(resp.headers["Location"].split("asked=")[1])

    box.recordings.store = box.store
    box.add_recordings([1, 3])  # call 1 on line 1 (sam's), call 3 on line 3 (sue's)

    def shown(client, number):
        """Where ``client`` is shown stella's request: each page that lists it, or 404; the
        release form of the calls of ``number``."""
        found = {
            "waiting": "waiting-request-%d" % hers in waiting(page(client, "/")),
            "list": 'id="request-%d"' % hers in page(client, "/requests"),
            "page": client.get("/requests/%d" % hers).status_code,
            "csv": ("\n%d," % hers) in client.get("/requests.csv").get_data(as_text=True),
        }
        select = page(client, "/sar?number=" + number).split('id="sar-request"')[1].split("</select>")[0]
        found["release"] = '<option value="%d"' % hers in select
        return found

    every = {"waiting": True, "list": True, "page": 200, "csv": True, "release": True}
    none = {"waiting": False, "list": False, "page": 404, "csv": False, "release": False}
    assert shown(sam, "02079460000") == every and shown(sue, "02079460002") == every
    # sue is given line 4 too: hers alone to answer now.
    form = {"roles": "supervisor", "lines": ["3", "4"], "recovery_key": box.recovery_key}
    resp = box.post(ivan, "/users/sue", form, token_from="/users")
    assert resp.status_code == 302
    sue = box.login("sue")  # (a change of lines ends the sessions)
    assert shown(sue, "02079460002") == every and shown(sam, "02079460000") == none
    # sue's account disabled: nobody enabled holds line 4, so every supervisor again.
    assert box.post(ivan, "/users/sue/disable", token_from="/users").status_code == 302
    assert shown(sam, "02079460000") == every


def test_a_request_on_a_line_no_supervisor_holds_is_told_to_every_supervisor(box, people):
    """stella on line 4, which no enabled supervisor holds: every supervisor is shown her
    request (the one above), but its staff_concern was raised on line 4, whose alarms only
    an installer and the auditor see, who cannot answer it: no supervisor's banner, Waiting
    for you or mail said it. It is the whole box's now, as its overdue alarm is; a staff
    member with a line some supervisor holds still raises it on their lines only."""
    sam, sue, ivan = people["sam"], people["sue"], people["ivan"]
    alarm_to = "sam@example.com (sam), sue@example.com (sue), ivan@example.com (ivan)"
    resp = box.post(ivan, "/settings/mail", dict(MAIL, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 302
    resp = box.post(
        ivan,
        "/users/alice",
        {"roles": ["installer", "supervisor"], "lines": ["1", "2", "3"]},
        token_from="/users",
    )
    assert resp.status_code == 302
    _mailed(box)  # (anything the settings queued)
    box.add_user(ivan, "stella", ["staff"], [4])
    stella = box.login("stella")
    resp = box.post(stella, "/my-line/request", {"kind": "objection"}, token_from="/my-line")
    assert resp.status_code == 302
    [alarm] = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern"]
    assert alarm["line"] == 0 and alarm["message"].startswith("from stella: asked on My line: Objection")
    for client in (sam, sue):
        concerns = [k for k in waiting(page(client, "/")) if k.startswith("waiting-concern-")]
        assert concerns == ["waiting-concern-%d" % alarm["id"]]
        assert "from stella: asked on My line: Objection" in page(client, "/alarms")
    mailed = _mailed(box)
    for address in ("sam@example.com", "sue@example.com"):
        [body] = mailed[address]
        assert "raised by the account stella about the box" in body and "Objection" not in body
    assert box.post(sam, "/alarms/%d/acknowledge" % alarm["id"], {}, token_from="/alarms").status_code == 302
    # sue holds line 4 too now: her colleague's request on it is hers, on its line.
    form = {"roles": "supervisor", "lines": ["3", "4"], "recovery_key": box.recovery_key}
    assert box.post(ivan, "/users/sue", form, token_from="/users").status_code == 302
    sue = box.login("sue")
    resp = box.post(stella, "/my-line/request", {"kind": "erasure"}, token_from="/my-line")
    assert resp.status_code == 302
    [again] = [r for r in box.alarm_log.history() if r["kind"] == "staff_concern" and r["id"] != alarm["id"]]
    assert again["line"] == 4
    assert not [k for k in waiting(page(sam, "/")) if k.startswith("waiting-concern-")]
    assert [k for k in waiting(page(sue, "/")) if k.startswith("waiting-concern-")] == [
        "waiting-concern-%d" % again["id"]
    ]
