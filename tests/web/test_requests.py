"""The Requests page: supervisors log data subjects' requests and record what happens to them,
auditors read them, every change is audited, bad input changes nothing, the dashboard shows
those due, and the register holds the person's details only sealed."""

import datetime as dt
import html
import json
import os
import re

import pytest

from firmware.rights import RightsRegister
from firmware.storage.fieldseal import FieldCipher

from support.cardscan import scan
from support.web import page

# The web box's clock: Monday 2 March 2026, 09:00 UTC.
REQUEST = {
    "kind": "access",
    "received": "2026-03-02",
    "requester": "Mrs Wilhelmina Pottage",
    "contact": "w.pottage@example.org",
    "numbers": "01632 960555",
    "details": "every recording of my calls in February",
}


def history_said(history):
    """The request page's history (or the part of the page holding it) with each detail
    written "Name: value", as its list of names and values reads."""
    return history.replace("</dt><dd>", ": ").replace("<dt>", "")


def entries(box):
    reg = RightsRegister(box.data_dir, box.services.cipher)
    try:
        return reg.entries()
    finally:
        reg.close()


def audits(box):
    found = box.services.audit.entries(limit=1000, newest_first=False)
    return [e for e in found if e.action == "data_request"]


def log_request(box, client, **over):
    resp = box.post(client, "/requests", dict(REQUEST, **over), token_from="/requests")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
    return int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))


def seen(client, rid):
    """The request's version the page shows (what a change from it was decided on)."""
    found = re.search(r'name="seen" value="(\d+)"', client.get("/requests/%d" % rid).get_data(as_text=True))
    return found.group(1) if found else ""


def act(box, client, rid, **form):
    form.setdefault("seen", seen(client, rid))
    return box.post(client, "/requests/%d" % rid, form, token_from="/requests/%d" % rid)


def test_a_supervisor_logs_a_request_and_the_auditor_reads_it(box, people):
    rid = log_request(box, people["sam"])
    [entry] = entries(box)
    assert entry["id"] == rid and entry["requester"] == "Mrs Wilhelmina Pottage" and entry["actor"] == "sam"
    assert str(entry["due"]) == "2026-04-02"
    listing = page(people["audrey"], "/requests")
    assert 'id="request-%d"' % rid in listing and "Thu 2 Apr 2026" in listing and "31 days left" in listing
    assert 'id="request-form"' not in listing  # auditors read, never log
    detail = page(people["audrey"], "/requests/%d" % rid)
    assert "every recording of my calls in February" in detail and 'id="request-wait"' not in detail
    [logged] = audits(box)
    assert logged.actor == "sam" and logged.target == "request:%d" % rid
    assert logged.details["event"] == "logged" and logged.details["due"] == "2026-04-02"
    assert "Mrs Wilhelmina Pottage" not in str(logged.details)  # the register holds who; the trail what
    for name in ("ivan", "stella"):
        if name == "stella":
            box.add_user(people["alice"], "stella", ["staff"], [4])
        client = people.get(name) or box.login(name)
        assert client.get("/requests").status_code == 403
    assert "Requests" in page(people["sam"], "/help/requests")


@pytest.mark.parametrize(
    "over, field, message",
    [
        ({"requester": " "}, "requester", "Give the name of the person who asked."),
        ({"received": "2026-03-03"}, "received", "Tue 3 Mar 2026 is after today (Mon 2 Mar 2026)"),
        (
            {"received": "2016-03-03"},
            "received",
            "Thu 3 Mar 2016 is before the GDPR applied (Fri 25 May 2018)",
        ),
        ({"received": "3/3/26"}, "received", "give a date as YYYY-MM-DD"),
        ({"kind": "portability"}, "kind", "Choose what was asked for."),
        ({"details": "refund to 4111 1111 1111 1111 please"}, "details", "Take out the card number"),
        ({"contact": "x" * 201}, "contact", "at most 200 characters"),
        # Shown in another order than typed (the register, the history), or cut by a NUL.
        ({"requester": "Jane \u202eBloggs"}, "requester", "Remove the direction control U+202E"),
        ({"contact": "jane\x00@example.org"}, "contact", "Remove the control character U+0000 (character 5)"),
        ({"details": "my \u202ecalls"}, "details", "Remove the direction control U+202E"),
        # Each number as the Subject access search takes it (and a correction of them): the
        # piece that is not one named, not left out of the request's links to the search.
        (
            {"numbers": "020 7946 0000, home, evenings"},
            "numbers",
            "Their numbers: home is not a phone number",
        ),
        ({"numbers": "01632 96O555"}, "numbers", "Their numbers: 01632 96O555 is not a phone number"),
        ({"numbers": "020 7946 0000; 123"}, "numbers", "Their numbers: 123 is not a phone number: give at"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(box, people, over, field, message):
    resp = box.post(people["sam"], "/requests", dict(REQUEST, **over), token_from="/requests")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="error-%s"' % field in text and message in text
    assert entries(box) == [] and audits(box) == []


def test_a_requests_numbers_are_kept_as_a_correction_keeps_them(box, people):
    """Logged, the numbers are kept as a correction of them is (firmware.sar.request_numbers):
    each stripped, once (the same digits twice: the first), joined by commas."""
    log_request(box, people["sam"], numbers=" 020 7946 0000;\n+44 1632 960555, 02079460000 ,")
    assert [e["numbers"] for e in entries(box)] == ["020 7946 0000, +44 1632 960555"]


def log_older(box, **over):
    """A request logged before its numbers were checked, straight into the register: its
    numbers kept as they were typed."""
    values = dict(REQUEST, **over)
    reg = RightsRegister(box.data_dir, box.services.cipher)
    try:
        return reg.add(
            actor="sam",
            kind=values["kind"],
            received=dt.date.fromisoformat(values["received"]),
            requester=values["requester"],
            contact=values["contact"],
            numbers=values["numbers"],
            details=values["details"],
            today=dt.date(2026, 3, 2),
            wall_us=box.T0_US,
        )
    finally:
        reg.close()


def test_a_request_logged_before_its_numbers_were_checked_keeps_them_as_they_were(box, people):
    """Its numbers as typed then ("home, evenings" among them) are shown as they were, and a
    follow-up copies them as they were: only what is typed now is checked."""
    sam = people["sam"]
    rid = log_older(box, numbers="020 7946 0000; home, evenings")
    assert "020 7946 0000; home, evenings" in page(sam, "/requests/%d" % rid).split('id="r-numbers"')[1]
    assert act(box, sam, rid, action="answer", outcome="sent the copy").status_code == 302
    form = {"kind": "access", "received": "2026-03-02", "details": "the copy missed a call"}
    resp = box.post(sam, "/requests/%d/follow-up" % rid, form, token_from="/requests/%d" % rid)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-800:]
    assert [e["numbers"] for e in entries(box)] == ["020 7946 0000; home, evenings"] * 2


def test_waiting_then_received_moves_the_deadline_then_extend_and_answer(box, people):
    sam = people["sam"]
    rid = log_request(box, sam, received="2026-02-20")
    resp = act(box, sam, rid, action="wait", reason="a passport", on="2026-02-20")
    assert resp.status_code == 400 and 'id="error-wait_kind"' in resp.get_data(as_text=True)
    resp = act(box, sam, rid, action="wait", wait_kind="identity", reason="a passport", on="2026-02-20")
    assert resp.status_code == 302
    assert "Waiting for ID" in page(sam, "/requests/%d" % rid)
    # Not before the clock stopped, not after today: named, nothing changed.
    resp = act(box, sam, rid, action="resume", on="2026-02-19")
    assert resp.status_code == 409 and "is before Fri 20 Feb 2026" in resp.get_data(as_text=True)
    assert act(box, sam, rid, action="resume", on="2026-02-23").status_code == 302
    [entry] = entries(box)
    # The month runs from the day the ID came: 23 March, a Monday.
    assert entry["status"] == "open" and entry["id_received"] == "2026-02-23"
    assert str(entry["due"]) == "2026-03-23"
    # A clarification asked on 25 February, answered on 1 March: 5 days not counted.
    resp = act(box, sam, rid, action="wait", wait_kind="clarification", reason="which line?", on="2026-02-25")
    assert resp.status_code == 302
    assert act(box, sam, rid, action="resume", on="2026-03-01").status_code == 302
    [entry] = entries(box)
    assert entry["paused_days"] == 5 and str(entry["due"]) == "2026-03-30"  # the 28th a Saturday
    assert "5 days not counted while waiting for clarification" in page(sam, "/requests/%d" % rid)

    before = entries(box)
    for form, field in (
        ({"months": "1", "reason": "many calls"}, "told"),
        ({"months": "3", "reason": "many calls", "told": "on"}, "months"),
        ({"months": "1", "reason": "", "told": "on"}, "reason"),
    ):
        resp = act(box, sam, rid, action="extend", **form)
        assert resp.status_code == 400 and 'id="error-%s"' % field in resp.get_data(as_text=True)
    assert entries(box) == before

    resp = act(box, sam, rid, action="extend", months="2", reason="hundreds of calls", told="on")
    assert resp.status_code == 302
    [entry] = entries(box)
    assert entry["status"] == "extended" and str(entry["due"]) == "2026-05-28"  # 23 May + 5 days
    resp = act(box, sam, rid, action="extend", months="1", reason="more", told="on")
    assert resp.status_code == 409 and "at most 2" in resp.get_data(as_text=True)

    # Links to what was done: a disclosure that does not exist is named, nothing changes.
    resp = act(box, sam, rid, action="answer", outcome="bundle released", disclosures="7")
    assert resp.status_code == 400 and "no disclosure log entry 7" in resp.get_data(as_text=True)
    resp = act(box, sam, rid, action="answer", outcome="calls erased", calls="1, 999999")
    no_call = "There is no call %s on the lines you see"
    assert resp.status_code == 400 and no_call % 999999 in resp.get_data(as_text=True)
    # A call on a line Sam does not see (call 3 is on line 3): the same words, it is not told
    # that it exists.
    resp = act(box, sam, rid, action="answer", outcome="calls erased", calls="1, 3")
    assert resp.status_code == 400 and no_call % 3 in resp.get_data(as_text=True)
    # Some 300 ids fit (an erasure of every call of a person names dozens); more are refused.
    resp = act(box, sam, rid, action="answer", outcome="calls erased", calls="1, " * 701)
    assert resp.status_code == 400 and "at most 2000 characters" in resp.get_data(as_text=True)
    assert entries(box)[0]["status"] == "extended"

    resp = act(box, sam, rid, action="answer", outcome="erased calls 1 and 2", calls="1, 2", on="2026-03-02")
    assert resp.status_code == 302
    [entry] = entries(box)
    assert entry["status"] == "answered" and entry["call_ids"] == "1,2" and entry["closed_on"] == "2026-03-02"
    detail = page(people["audrey"], "/requests/%d" % rid)
    assert 'href="/calls/1"' in detail and "erased calls 1 and 2" in detail
    # Closed is closed: a refusal afterwards is refused, and changes nothing.
    resp = act(box, sam, rid, action="refuse", outcome="manifestly unfounded")
    assert resp.status_code == 409 and "already answered" in resp.get_data(as_text=True)
    assert entries(box) == [entry]
    events = [a.details["event"] for a in audits(box)]
    assert events == ["logged", "waiting", "received", "waiting", "received", "extended", "answered"]
    assert audits(box)[2].details == {
        "event": "received",
        "waiting_for": "identity",
        "on": "2026-02-23",
        "month_from": "2026-02-23",
        "due": "2026-03-23",
        "address": "192.0.2.10",  # where it was done from, as every action from a page
    }
    assert audits(box)[4].details["days_excluded"] == 5
    assert all(a.actor == "sam" for a in audits(box))
    assert "request:%d" % rid in page(people["audrey"], "/audit")


def test_a_refusal_needs_its_reason(box, people):
    sam = people["sam"]
    rid = log_request(box, sam, kind="erasure")
    resp = act(box, sam, rid, action="refuse", outcome="")
    assert resp.status_code == 400 and 'id="error-outcome"' in resp.get_data(as_text=True)
    assert entries(box)[0]["status"] == "open"
    resp = act(box, sam, rid, action="refuse", outcome="the recording is under a legal hold")
    assert resp.status_code == 302
    assert entries(box)[0]["status"] == "refused"
    assert act(box, sam, 99, action="refuse", outcome="x").status_code == 404
    assert act(box, sam, rid, action="explode").status_code == 400
    assert [a.details["event"] for a in audits(box)] == ["logged", "refused"]


def test_the_dashboard_shows_requests_overdue_then_due_within_a_week(box, people):
    late = log_request(box, people["sam"], received="2026-01-20")  # due Friday 20 February
    today = log_request(box, people["sam"], received="2026-02-02")  # due Monday 2 March
    later = log_request(box, people["sam"], received="2026-02-20")  # due 20 March: not yet
    # A supervisor's are in "Waiting for you" (every one open, the nearest deadline first).
    dash = page(people["sam"], "/")
    mine = dash.split('id="waiting"')[1].split("</ul>")[0]
    assert 'id="requests-due"' not in dash
    assert mine.index("#%d" % late) < mine.index("#%d" % today) < mine.index("#%d" % later)
    for name in ("audrey",):
        dash = page(people[name], "/")
        due = dash.split('id="requests-due"')[1].split("</ul>")[0]
        assert due.index("#%d" % late) < due.index("#%d" % today)
        # In the pages' date words, not ISO (2026-02-20).
        assert "overdue by 10 days</strong> (due Fri 20 Feb 2026)" in due and "due today" in due
        assert due.count("<li") == 2
        # What was asked for in the request page's words, not its code ("(access)").
        assert ">Request #%d, Access: a copy of their data (Art. 15)</a>" % late in due
        assert "(access)" not in due
    assert 'id="requests-due"' not in page(people["ivan"], "/")


def test_the_register_holds_the_person_only_sealed(tmp_path, people_template):
    box, people = people_template.box(tmp_path, cipher=FieldCipher(os.urandom(32)))
    try:
        rid = log_request(box, people["sam"])
        act(box, people["sam"], rid, action="refuse", outcome="Pottage gave no proof")
        detail = page(people["audrey"], "/requests/%d" % rid)
        assert "Mrs Wilhelmina Pottage" in detail and "01632 960555" in detail
        secrets = ["Wilhelmina", "w.pottage@example.org", "01632 960555", "every recording", "no proof"]
        found = [(f, s) for f, s in scan(box.data_dir, secrets) if f.startswith("rights.db")]
        assert found == []
        assert os.path.exists(os.path.join(box.data_dir, "rights.db"))
    finally:
        box.close()


def test_two_supervisors_at_once_the_second_is_told_to_look_again(box, people):
    sam, sue = people["sam"], people["sue"]
    rid = log_request(box, sam)
    both_saw = seen(sam, rid)
    assert seen(sue, rid) == both_saw
    resp = act(box, sam, rid, action="extend", months="1", reason="many calls", told="on", seen=both_saw)
    assert resp.status_code == 302
    # Sue decided on the page before Sam's extension: refused, named, not audited.
    resp = act(box, sue, rid, action="extend", months="2", reason="a third party", told="on", seen=both_saw)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "changed by someone else meanwhile: look again" in text
    [entry] = entries(box)
    assert entry["extension_months"] == 1 and entry["extension_reason"] == "many calls"
    assert [a.details["event"] for a in audits(box)] == ["logged", "extended"]
    # A form without the version it was drawn from is as stale.
    resp = act(box, sue, rid, action="refuse", outcome="unfounded", seen="")
    assert resp.status_code == 409 and entries(box)[0]["status"] == "extended"
    # Looked again: her change is made on what is there now.
    assert (
        act(box, sue, rid, action="extend", months="1", reason="a third party", told="on").status_code == 302
    )
    assert entries(box)[0]["extension_months"] == 2


def test_the_dashboard_lists_requests_due_before_the_key_is_open(tmp_path, people_template):
    """The web UI started before the recorder after a boot: the sealed fields cannot be
    opened yet, the dashboard works all the same (the list needs only the clear ones)."""
    from firmware.storage.fieldseal import FieldSealError

    class Locked:
        def seal(self, text, field):
            raise FieldSealError("the recorder has not started")

        open = seal

    box, people = people_template.box(tmp_path, cipher=FieldCipher(os.urandom(32)))
    try:
        rid = log_request(box, people["sam"], received="2026-02-02")  # due today
        box.services.cipher = Locked()
        for name, listed in (("sam", 'id="waiting"'), ("audrey", 'id="requests-due"')):
            resp = people[name].get("/")
            assert resp.status_code == 200, resp.status_code
            due = resp.get_data(as_text=True).split(listed)[1].split("</ul>")[0]
            assert "#%d" % rid in due and "due today" in due
    finally:
        box.close()


def test_days_and_months_are_counted_in_words_the_same_on_every_page(box, people):
    sam = people["sam"]
    one_late = log_request(box, sam, received="2026-01-27")  # due Friday 27 February
    assert "overdue by 3 days" in page(sam, "/requests/%d" % one_late)
    tomorrow = log_request(box, sam, received="2026-02-03")  # due 3 March
    for text in (page(sam, "/requests/%d" % tomorrow), page(sam, "/requests"), page(sam, "/")):
        assert "1 day left" in text and "1 days" not in text
    assert act(box, sam, tomorrow, action="extend", months="1", reason="many", told="on").status_code == 302
    detail = page(sam, "/requests/%d" % tomorrow)
    assert "by 1 month, from" in detail and "month(s)" not in detail


def test_a_request_waiting_says_since_when_as_the_pages_write_dates(box, people):
    """The register's "Time left" of a request waiting for proof of identity read "clock
    stopped since 2026-02-20", beside received and due dates written "Fri 20 Feb 2026"."""
    sam = people["sam"]
    rid = log_request(box, sam, received="2026-02-20")
    resp = act(box, sam, rid, action="wait", wait_kind="identity", reason="a passport", on="2026-02-20")
    assert resp.status_code == 302
    row = page(sam, "/requests").split('id="request-%d"' % rid)[1].split("</tr>")[0]
    assert '<td data-label="Time left">clock stopped since Fri 20 Feb 2026</td>' in row, row


def test_a_requests_history_says_its_days_as_the_pages_write_dates(box, people):
    """The request page's history (from the audit trail) read "Received: 2026-02-20",
    "Due: 2026-03-20", "Hold on: 2026-02-20" beneath the same days written "Fri 20 Feb
    2026" above it; the trail and its CSV keep the ISO dates it holds."""
    sam = people["sam"]
    rid = log_request(box, sam, received="2026-02-20")
    resp = act(box, sam, rid, action="wait", wait_kind="identity", reason="a passport", on="2026-02-20")
    assert resp.status_code == 302
    history = html.unescape(
        page(sam, "/requests/%d" % rid).split('id="request-history"')[1].split("</table>")[0]
    )
    fields = ["%s: %s" % f for f in re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", history)]
    assert "Received: Fri 20 Feb 2026" in fields and "Due: Fri 20 Mar 2026" in fields, fields
    assert not [f for f in fields if re.search(r"\d{4}-\d{2}-\d{2}", f)], fields
    stored = [e.details for e in audits(box)]
    assert {"received": "2026-02-20", "due": "2026-03-20"}.items() <= stored[0].items(), stored


def save_region(box, client, region):
    from web.site import form_values

    form = form_values(box.web.site.settings(), box.LINES)
    form["region"] = region
    return box.post(client, "/settings", form, token_from="/settings")


def site_changes(box):
    found = box.services.audit.entries(limit=1000, newest_first=False)
    return [e for e in found if (e.action, e.target) == ("config_change", "site")]


def test_the_deadlines_count_the_bank_holidays_where_the_business_is(box, people):
    rid = log_request(box, people["sam"], received="2026-02-17")
    assert "the bank holidays of England and Wales" in page(people["sam"], "/requests")
    assert "Deadlines count the bank holidays of England and Wales" in page(
        people["sam"], "/requests/%d" % rid
    )
    settings = page(people["ivan"], "/settings")
    assert '<option value="ENG" selected>England</option>' in settings
    # Northern Ireland: St Patrick's Day (Tuesday 17 March 2026) is a bank holiday.
    assert save_region(box, people["ivan"], "NIR").status_code == 302
    assert box.web.site.settings().region == "NIR"
    [change] = site_changes(box)
    assert change.actor == "ivan" and change.details["region"] == "NIR"
    detail = page(people["sam"], "/requests/%d" % rid)
    assert "Wed 18 Mar 2026" in detail and "Deadlines count the bank holidays of Northern Ireland" in detail
    assert "the bank holidays of Northern Ireland" in page(people["audrey"], "/requests")
    assert str(entries(box)[0]["due"]) == "2026-03-17"  # the register alone: England's
    assert save_region(box, people["ivan"], "SCT").status_code == 302
    assert "Deadlines count the bank holidays of Scotland" in page(people["sam"], "/requests/%d" % rid)
    help_page = page(people["sam"], "/help/requests")
    assert "This box counts the bank holidays of Scotland." in help_page
    # Help is public: without a login it names no box's region.
    anonymous = box.client().get("/help/requests").get_data(as_text=True)
    assert "St Andrew" in anonymous and "This box counts" not in anonymous


@pytest.mark.parametrize("region", ["Scotland", "XX", "eng"])
def test_a_region_not_known_is_refused_and_changes_nothing(box, people, region):
    before = box.web.site.settings()
    audited = site_changes(box)
    resp = save_region(box, people["ivan"], region)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-region"' in body
    assert "Choose where the business is: England, Wales, Scotland, Northern Ireland." in body
    assert box.web.site.settings() == before
    assert site_changes(box) == audited


def test_an_answer_said_to_be_incomplete_is_followed_up_by_a_linked_request(box, people):
    """An answered request stays as it was answered; the person's complaint that it was
    incomplete is a request of its own (its own month), linked both ways, audited on both."""
    sam, audrey = people["sam"], people["audrey"]
    first = log_request(box, sam, received="2026-02-02")
    assert act(box, sam, first, action="answer", outcome="sent 3 calls", on="2026-02-20").status_code == 302
    page_first = page(sam, "/requests/%d" % first)
    assert 'id="request-follow-up"' in page_first and 'id="request-answer"' not in page_first
    assert 'id="request-follow-up"' not in page(audrey, "/requests/%d" % first)
    url = "/requests/%d/follow-up" % first
    # Received before the answer it complains of: refused beside the date, what was typed kept.
    resp = box.post(
        sam,
        url,
        {"kind": "access", "received": "2026-02-19", "details": "a call is missing"},
        token_from="/requests/%d" % first,
    )
    text = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'id="error-received"' in text and 'id="error-action"' not in text, (
        text[text.find("<main") :][:1500]
    )
    assert 'value="2026-02-19"' in text and ">a call is missing</textarea>" in text
    resp = box.post(
        sam,
        url,
        {"kind": "access", "received": "2026-02-27", "details": "a call is missing"},
        token_from="/requests/%d" % first,
    )
    assert resp.status_code == 302
    second = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    by_id = {e["id"]: e for e in entries(box)}
    assert by_id[first]["status"] == "answered" and by_id[first]["closed_on"] == "2026-02-20"
    follow = by_id[second]
    assert follow["follows"] == first and follow["status"] == "open" and str(follow["due"]) == "2026-03-27"
    assert follow["requester"] == REQUEST["requester"] and follow["contact"] == REQUEST["contact"]
    assert follow["details"] == "a call is missing"
    assert 'href="/requests/%d">request #%d</a>' % (first, first) in page(audrey, "/requests/%d" % second)
    assert 'href="/requests/%d">request #%d</a>' % (second, second) in page(audrey, "/requests/%d" % first)
    trail = audits(box)
    assert trail[-2].target == "request:%d" % second and trail[-2].details["follows"] == first
    assert trail[-1].target == "request:%d" % first and trail[-1].details == {
        "event": "followed_up",
        "by": second,
        "received": "2026-02-27",
        "address": "192.0.2.10",
    }
    # An open request is not followed up: its own page records what happens to it.
    resp = box.post(
        sam,
        "/requests/%d/follow-up" % second,
        {"kind": "access", "received": "2026-03-02", "details": "again"},
        token_from="/requests/%d" % second,
    )
    assert resp.status_code == 409 and "not answered or refused" in resp.get_data(as_text=True)


def test_a_request_or_follow_up_sent_twice_is_logged_once(box, people):
    """The form sent twice (a double click, Back then Send again): one request in the
    register, one ``logged`` entry in the trail; the second is refused naming the first.
    The same person asking something else, or on another day, is a request of its own."""
    sam = people["sam"]
    first = log_request(box, sam)
    resp = box.post(sam, "/requests", dict(REQUEST), token_from="/requests")
    text = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and 'id="error-details"' in text
    assert "logged already, as request %d" % first in text
    assert [e["id"] for e in entries(box)] == [first] and len(audits(box)) == 1
    other = log_request(box, sam, details="every recording of my calls in January")
    assert act(box, sam, first, action="answer", outcome="sent them the copy").status_code == 302
    follow = {"kind": "access", "received": "2026-03-02", "details": "a call is missing"}
    url, token_from = "/requests/%d/follow-up" % first, "/requests/%d" % first
    assert box.post(sam, url, dict(follow), token_from=token_from).status_code == 302
    trail = len(audits(box))
    resp = box.post(sam, url, dict(follow), token_from=token_from)
    text = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and 'id="error-details"' in text and "logged already, as request" in text
    assert len(entries(box)) == 3 and len(audits(box)) == trail
    assert other in [e["id"] for e in entries(box)]


def test_the_register_is_downloaded_as_csv_without_how_to_reach_the_person(box, people):
    """An inspector asks whether requests were answered in time: the register could only be
    read on the box. The CSV holds what the register's page shows of each request (its
    dates, state and who asked), whether it was late, and not the contact, numbers or the
    person's words; a name typed as a formula stays text."""
    import csv
    import io

    sam = people["sam"]
    overdue = log_request(box, sam, received="2026-01-05")
    formula = log_request(box, sam, requester="@SUM(1+1)")
    answered = log_request(box, sam, received="2026-02-20")
    resp = act(box, sam, answered, action="answer", outcome="bundle released to her", on="2026-03-02")
    assert resp.status_code == 302
    audrey = people["audrey"]
    assert 'id="requests-csv" href="/requests.csv"' in page(audrey, "/requests")
    resp = audrey.get("/requests.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(int(r["id"]), r["status"], r["late"], r["requester"]) for r in rows] == [
        (overdue, "open", "yes", "Mrs Wilhelmina Pottage"),
        (formula, "open", "no", "'@SUM(1+1)"),
        (answered, "answered", "no", "Mrs Wilhelmina Pottage"),
    ]
    assert rows[2]["closed_on"] == "2026-03-02" and rows[2]["due"] == "2026-03-20"
    assert rows[2]["state"] == "Answered" and rows[0]["received"] == "2026-01-05"
    for private in ("w.pottage@example.org", "01632 960555", "every recording", "bundle released to her"):
        assert private not in text
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.actor, exported.action, exported.target) == ("audrey", "export_list", "requests")
    assert exported.details["rows"] == 3
    assert sam.get("/requests.csv").status_code == 200
    assert people["ivan"].get("/requests.csv").status_code == 403


def test_a_request_logged_and_a_follow_up_logged_are_said_on_the_page_they_land_on(box, people):
    """Logging a request, or a follow-up, landed on its page with nothing saying it was
    logged (the page's changes say "Saved: …"): a screen reader user heard no outcome."""
    sam = people["sam"]
    resp = box.post(sam, "/requests", dict(REQUEST, received="2026-02-02"), token_from="/requests")
    first = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    landed = page(sam, resp.headers["Location"])
    assert '<p class="notice" id="done" role="status">Request #%d logged.</p>' % first in landed
    assert 'id="done"' not in page(sam, "/requests/%d" % first)  # said once, not on every visit
    assert act(box, sam, first, action="answer", outcome="sent 3 calls", on="2026-02-20").status_code == 302
    resp = box.post(
        sam,
        "/requests/%d/follow-up" % first,
        {"kind": "access", "received": "2026-02-27", "details": "a call is missing"},
        token_from="/requests/%d" % first,
    )
    second = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    landed = page(sam, resp.headers["Location"])
    assert 'id="done" role="status">Follow-up #%d of #%d logged.</p>' % (second, first) in landed


def test_a_request_number_past_any_requests_is_no_request(box, people):
    """A request number past SQLite's integers (the URL takes any digits) raised an
    OverflowError on the request's page, its change form and its follow-up form: a server
    error where a number no request has answers 404 (the guard the call pages have)."""
    sam = people["sam"]
    rid = log_request(box, sam)
    for number in (2**63, 10**30):
        assert sam.get("/requests/%d" % number).status_code == 404
        for path, form in (
            ("/requests/%d" % number, {"action": "resume", "seen": "1"}),
            ("/requests/%d/follow-up" % number, {"kind": "access", "received": "2026-03-02"}),
        ):
            assert box.post(sam, path, form, token_from="/requests/%d" % rid).status_code == 404, path
    assert sam.get("/requests/%d" % (2**63 - 1)).status_code == 404  # the largest: no such request
    assert len(entries(box)) == 1 and len(audits(box)) == 1


def test_the_registers_dates_read_as_every_page_writes_dates_and_its_csv_keeps_them_iso(box, people):
    """The Requests pages said 2026-04-02 where every other page says Thu 2 Apr 2026; its CSV
    keeps the ISO dates a sheet sorts."""
    sam = people["sam"]
    rid = log_request(box, sam)
    waiting = log_request(box, sam, received="2026-02-27")
    assert (
        act(
            box, sam, waiting, action="wait", wait_kind="identity", reason="asked for ID", on="2026-03-02"
        ).status_code
        == 302
    )
    answered = log_request(box, sam, received="2026-02-20")
    assert (
        act(box, sam, answered, action="answer", outcome="bundle released", on="2026-03-02").status_code
        == 302
    )
    listing = page(sam, "/requests")
    row = re.search(r'<tr id="request-%d">.*?</tr>' % rid, listing).group(0)
    assert ">Mon 2 Mar 2026<" in row and ">Thu 2 Apr 2026<" in row and "2026-0" not in row
    row = re.search(r'<tr id="request-%d">.*?</tr>' % answered, listing).group(0)
    assert ">Fri 20 Feb 2026<" in row and ">Mon 2 Mar 2026" in row and "2026-0" not in row
    detail = page(sam, "/requests/%d" % rid)
    assert 'id="r-received">Mon 2 Mar 2026<' in detail and 'id="r-due">Thu 2 Apr 2026' in detail
    assert "since Mon 2 Mar 2026, for proof of identity" in page(sam, "/requests/%d" % waiting)
    assert 'id="r-outcome">Mon 2 Mar 2026:' in page(sam, "/requests/%d" % answered)
    rows = {
        r["id"]: r
        for r in __import__("csv").DictReader(sam.get("/requests.csv").get_data(as_text=True).splitlines())
    }
    assert (rows[str(rid)]["received"], rows[str(rid)]["due"]) == ("2026-03-02", "2026-04-02")
    assert rows[str(answered)]["closed_on"] == "2026-03-02"


def test_a_request_about_no_line_names_only_the_linked_calls_the_viewer_may_see(box, people):
    """A request about no line is every supervisor's. sue answered it with call 3 (on her
    line 3): its page showed sam "call 3", a call whose page is 404 for him, and its history
    "Calls: 3". He is told that a call is linked, not which; sue and the auditor, who may
    see it, are shown it."""
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    rid = log_request(box, sam)
    assert sam.get("/calls/3").status_code == 404
    resp = act(box, sue, rid, action="answer", outcome="erased call 3", calls="3", on="2026-03-02")
    assert resp.status_code == 302
    theirs = page(sam, "/requests/%d" % rid)
    calls = re.search(r'<dd id="r-calls">(.*?)</dd>', theirs).group(1)
    assert "/calls/3" not in calls and "call 3" not in calls
    assert "1 call you may not see" in calls
    history = history_said(theirs.split('id="request-history"')[1])
    assert re.search(r"Calls?: 1 call you may not see<", history), history
    assert not re.search(r"Calls?: 3<", history)
    for client in (sue, audrey):
        shown = page(client, "/requests/%d" % rid)
        assert 'href="/calls/3">call 3</a>' in shown and "you may not see" not in shown
        assert re.search(r"Calls?: 3<", history_said(shown.split('id="request-history"')[1]))


def test_a_request_about_no_line_names_only_the_disclosures_the_viewer_may_see(box, people):
    """sue answered a request about no line (every supervisor's) with her release of call 3
    (her line 3). The Disclosures page and the "Released for it" list hide that release
    from sam, but the request's "Disclosures" row and its history named its entry number.
    He is told that an entry is linked, not which; sue and the auditor are shown it."""
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    rid = log_request(box, sam)
    hers = release_logged(box, rid)
    resp = act(box, sue, rid, action="answer", outcome="sent the copy", disclosures=str(hers))
    assert resp.status_code == 302
    theirs = page(sam, "/requests/%d" % rid)
    row = re.search(r'<dd id="r-disclosures">(.*?)</dd>', theirs).group(1)
    assert "#disclosure-%d" % hers not in row and "entry %d" % hers not in row
    assert row.endswith('<span id="r-disclosures-hidden">1 entry you may not see</span>'), row
    history = history_said(theirs.split('id="request-history"')[1])
    assert re.search(r"Disclosures?: 1 entry you may not see<", history), history
    assert "#disclosure-%d" % hers not in theirs
    for client in (sue, audrey):
        shown = page(client, "/requests/%d" % rid)
        row = re.search(r'<dd id="r-disclosures">(.*?)</dd>', shown).group(1)
        assert 'href="/disclosures#disclosure-%d">entry %d</a>' % (hers, hers) in row
        assert "you may not see" not in shown
        history = history_said(shown.split('id="request-history"')[1])
        assert re.search(r"Disclosures?: \[?%d\]?<" % hers, history)


def test_each_link_to_a_disclosure_on_a_request_s_page_lands_on_its_row(box, people):
    """After a release answered a request, its page's "Disclosure #1" (Released for it) and
    "entry 1" (Disclosures) linked to /disclosures#disclosure-1, but no row of the
    disclosure log had that id: the link landed at the top of the log. Every in-page link
    of the request's page names an id its target page has."""
    sue, audrey = people["sue"], people["audrey"]
    rid = log_request(box, sue)
    made = release_logged(box, rid)
    resp = act(box, sue, rid, action="answer", outcome="sent the copy", disclosures=str(made))
    assert resp.status_code == 302
    for client in (sue, audrey):
        shown = page(client, "/requests/%d" % rid)
        links = set(re.findall(r'href="([^"#]*)#([^"]+)"', shown))
        assert ("/disclosures", "disclosure-%d" % made) in links
        for path, fragment in links:
            target = page(client, path) if path else shown
            assert 'id="%s"' % html.escape(fragment) in target, (path, fragment)


def test_a_mistyped_day_received_is_corrected_while_the_clock_has_not_stopped(box, people):
    """The letter came on 20 February; sam logged it as received today (2 March). Its month
    runs from the day it came, so he corrects the day on its page: audited with the day it
    said before and the new deadline. A day after today, one already given, bad input, a
    request of another line and one whose clock has stopped are refused, changing nothing."""
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    rid = log_request(box, sam, lines=["1"])
    form = page(sam, "/requests/%d" % rid).split('id="request-received"')[1].split("</form>")[0]
    assert 'name="received" type="date" required' in form and 'value="2026-03-02"' in form
    assert 'id="request-received"' not in page(audrey, "/requests/%d" % rid)

    def unchanged():
        [entry] = entries(box)
        return entry["received"], entry["version"], len(audits(box))

    before = unchanged()
    for typed, status, said in (
        ("", 400, "Received: give a date as YYYY-MM-DD, not &#39;&#39;."),
        ("20/02/2026", 400, "Received: give a date as YYYY-MM-DD, not &#39;20/02/2026&#39;."),
        ("2026-03-03", 400, "Received: Tue 3 Mar 2026 is after today (Mon 2 Mar 2026)."),
        (
            "2016-05-24",
            400,
            "Received: Tue 24 May 2016 is before the GDPR applied (Fri 25 May 2018): check the year.",
        ),
        ("2026-03-02", 409, "Received: it says Mon 2 Mar 2026 already."),
    ):
        resp = act(box, sam, rid, action="received", received=typed)
        assert resp.status_code == status, typed
        text = resp.get_data(as_text=True)
        assert '<span class="field-error" id="error-received" role="alert">%s</span>' % said in text, typed
    assert act(box, sue, rid, action="received", received="2026-02-20").status_code == 404
    assert act(box, audrey, rid, action="received", received="2026-02-20").status_code == 403
    assert unchanged() == before

    resp = act(box, sam, rid, action="received", received="2026-02-20")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?done=received")
    [entry] = entries(box)
    assert (entry["received"], str(entry["due"])) == ("2026-02-20", "2026-03-20")
    assert 'id="done" role="status">Saved: received on ' in page(sam, resp.headers["Location"])
    corrected = audits(box)[-1]
    assert (corrected.actor, corrected.target) == ("sam", "request:%d" % rid)
    assert dict(corrected.details, address=None) == {
        "event": "received_corrected",
        "received": "2026-02-20",
        "received_before": "2026-03-02",
        "due": "2026-03-20",
        "address": None,
    }
    assert "Received, as logged before: Mon 2 Mar 2026" in history_said(page(audrey, "/requests/%d" % rid))

    # Once the clock has stopped, the day stays: the wait was counted from it.
    wait = {"action": "wait", "wait_kind": "identity", "reason": "a copy of a utility bill"}
    assert act(box, sam, rid, on="2026-03-02", **wait).status_code == 302
    assert 'id="request-received"' not in page(sam, "/requests/%d" % rid)
    before = unchanged()
    resp = act(box, sam, rid, action="received", received="2026-02-19")
    assert resp.status_code == 409
    said = (
        "Request %d has waited or been extended since it was logged, counted from the day received "
        "it gives: that day is no longer corrected.</p>" % rid
    )
    assert '<p class="error" role="alert" id="error-action">' + said in resp.get_data(as_text=True)
    assert unchanged() == before


def test_a_callers_request_links_each_of_their_numbers_to_the_search_tied_to_the_request(box, people):
    """A request about lines linked to the Subject access search of them; a caller's, about no
    line, found by the person's numbers, linked nowhere: the supervisor typed the numbers, and
    chose the request on the release form, by hand. Each number the search takes links there,
    filled in and the request chosen; the page says which lines the search does not cover."""
    box.add_recordings([1])  # call 1, line 1 (sam's): 020 7946 0000
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    # Logged before its numbers were checked: the pieces the search does not take are not linked.
    rid = log_older(box, numbers="020 7946 0000; home, evenings,\n+44 1632 960555,020 7946 0000")
    text = page(sam, "/requests/%d" % rid)
    links = re.findall(r'<a id="r-sar-\d" href="([^"]+)">find the calls of ([^<]+) \(Subject access\)', text)
    assert [(html.unescape(u), n) for u, n in links] == [
        ("/sar?number=020+7946+0000&request=%d&fill=1" % rid, "020 7946 0000"),
        ("/sar?number=%%2B44+1632+960555&request=%d&fill=1" % rid, "+44 1632 960555"),
    ]
    assert "The search covers your lines (1, 2) only: their calls on lines 3, 4, not granted" in text
    assert "covers your lines (3) only: their calls on lines 1, 2, 4" in page(sue, "/requests/%d" % rid)
    # An auditor has no Subject access page to be sent to.
    assert 'id="r-sar-' not in page(audrey, "/requests/%d" % rid)
    # The link fills the form in; nothing is searched (nor audited) until Find calls.
    text = page(sam, html.unescape(links[0][0]))
    assert 'name="number" value="020 7946 0000"' in text and 'id="sar-found"' not in text
    assert 'id="sar-filling"' in text and "lines 3, 4 are not granted to you" in text
    assert '<input type="hidden" name="request" value="%d">' % rid in text
    assert "disclosure_search" not in box.audit_actions()
    # A number the search does not take is refused as the search refuses it, nothing searched.
    resp = sam.get("/sar?number=0163O&request=%d&fill=1" % rid)
    assert resp.status_code == 400 and "is not a phone number" in resp.get_data(as_text=True)
    assert "disclosure_search" not in box.audit_actions()
    # Find calls (the form, as sent: the request kept, the days empty) searches, and the
    # release form answers the request.
    query = {"number": "020 7946 0000", "from": "", "to": "", "from_time": "", "to_time": ""}
    resp = sam.get("/sar", query_string=dict(query, request=str(rid)))
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert 'id="sar-found"' in text and "disclosure_search" in box.audit_actions()
    select = text.split('id="sar-request"')[1].split("</select>")[0]
    assert '<option value="%d" selected>' % rid in select
    # A request about lines links to their search, and its numbers to theirs on those lines
    # (test_a_line_requests_numbers_link_to_the_search_of_them_on_its_lines).
    other = log_request(box, sam, lines=["1"], details="my calls on line 1")
    text = page(sam, "/requests/%d" % other)
    assert 'id="r-sar"' in text and "find the calls of 01632 960555 on line 1 (Subject access)" in text


def test_the_release_form_names_a_request_by_its_days_in_words(box, people):
    """The release's "Answers the request" said "received 2026-03-02 ... (due 2026-04-02)",
    where every page, the Requests pages too, writes a request's days in words."""
    sam = people["sam"]
    rid = log_request(box, sam)
    text = page(sam, "/sar?number=020+7946+0000&from=2026-03-02")
    select = text.split('id="sar-request"')[1].split("</select>")[0]
    assert (
        "#%d, received Mon 2 Mar 2026: Mrs Wilhelmina Pottage (due Thu 2 Apr 2026)</option>" % rid
    ) in select, select


def _released_for(box, actor, rid, call_ids="1"):
    """A disclosure log entry of a release by ``actor`` of ``call_ids``, for request ``rid``."""
    from firmware.sar import DisclosureLog

    log = DisclosureLog(box.data_dir, getattr(box.services.audit, "cipher", None))
    try:
        return log.add(
            wall_us=box.T0_US,
            actor=actor,
            requester="Mrs Wilhelmina Pottage",
            recipient="Mrs Wilhelmina Pottage",
            reason="subject access",
            search=json.dumps({"number": "02079460000"}),
            call_ids=call_ids,
            recordings=1,
            bundle="b.zip",
            bundle_sha256="ab" * 32,
            encrypted=0,
            request_id=rid,
        )
    finally:
        log.close()


def test_the_answer_offers_the_releases_made_for_the_request_ticked(box, people):
    """The page listed the releases made for the request, and the answer form made the
    supervisor type their numbers. Each is a tick box, ticked; the typed field takes others."""
    sam = people["sam"]
    rid = log_request(box, sam)
    other = log_request(box, sam, requester="Mr Jones", details="his calls")
    mine, later = _released_for(box, "sam", rid), _released_for(box, "sam", rid)
    elsewhere = _released_for(box, "sam", other)
    form = page(sam, "/requests/%d" % rid).split('id="request-answer"')[1].split("</form>")[0]
    for d in (mine, later):
        assert 'name="disclosure" value="%d" id="answer-release-%d" checked>' % (d, d) in form
    assert 'value="%d"' % elsewhere not in form and "Other disclosure log entries" in form
    # Bad input is named, and changes nothing; the boxes keep what was ticked.
    trail = len(box.services.audit.entries(limit=1000))
    for ticked, said in (
        ([str(mine), "x"], "The releases ticked: &#39;x&#39; is not a disclosure log entry&#39;s number."),
        ([str(mine), "999"], "There is no disclosure log entry 999."),
    ):
        resp = act(box, sam, rid, action="answer", outcome="sent the copy", disclosure=ticked)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and said in text, ticked
        shown = text.split('id="request-answer"')[1].split("</form>")[0]
        assert 'id="answer-release-%d" checked>' % mine in shown
        assert 'id="answer-release-%d">' % later in shown
    assert len(box.services.audit.entries(limit=1000)) == trail
    assert [e["status"] for e in entries(box)] == ["open", "open"]
    # One unticked, another typed: the answer links those ticked and typed.
    answer = {"action": "answer", "outcome": "sent the copy", "disclosure": [str(mine)]}
    resp = act(box, sam, rid, disclosures=str(elsewhere), **answer)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-800:]
    [entry] = [e for e in entries(box) if e["id"] == rid]
    assert entry["status"] == "answered" and entry["disclosure_ids"] == "%d,%d" % (mine, elsewhere)
    assert audits(box)[-1].details["disclosures"] == [mine, elsewhere]


def corrected_as(box, reader, rid, field, reason, before, after, hidden):
    """The last correction of request ``rid`` is sam's, of ``field`` for ``reason``: audited by
    its number alone (nothing of ``hidden`` anywhere in the trail), its history showing
    ``before`` and ``after`` to ``reader``."""
    corrected = audits(box)[-1]
    assert (corrected.actor, corrected.target) == ("sam", "request:%d" % rid)
    assert dict(corrected.details, address=None) == {
        "event": "%s_corrected" % field,
        "fields": [field],
        "reason": reason,
        "correction": 1,
        "address": None,
    }
    trail = str([e.details for e in box.services.audit.entries(limit=1000)])
    assert not [word for word in hidden if word in trail]
    history = history_said(page(reader, "/requests/%d" % rid).split('id="request-history"')[1])
    assert "Corrected: %s" % field in history and "Reason: %s" % reason in history
    assert "Before: %s" % before in history and "After: %s" % after in history
    assert "Correction:" not in history


def test_how_to_reach_the_person_is_corrected_with_a_reason_the_history_showing_before_and_after(box, people):
    """The person moved after logging their request: their new address could not be put in
    the register, so the answer went to the old one. It is corrected on the request's page
    while it is open, with a reason, as who asked is: the history shows the address before
    and after (kept with the request, sealed), the audit trail only that it changed, why and
    the correction. Bad input, another line's request, an auditor, a stale page, a page
    without its token and a closed request change nothing."""
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    rid = log_request(box, sam, lines=["1"])
    form = page(sam, "/requests/%d" % rid).split('id="request-contact"')[1].split("</form>")[0]
    assert 'name="contact" required maxlength="200"' in form and 'value="w.pottage@example.org"' in form
    assert 'name="reason" required' in form
    assert 'id="request-contact"' not in page(audrey, "/requests/%d" % rid)

    def unchanged():
        [entry] = entries(box)
        return entry["contact"], entry["version"], len(audits(box))

    before = unchanged()
    for typed, reason, status, field, said in (
        (" ", "moved", 400, "contact", "Give how to reach them (address, e-mail, phone)."),
        (
            "x" * 201,
            "moved",
            400,
            "contact",
            "How to reach them (address, e-mail, phone): at most 200 characters.",
        ),
        ("card 4111 1111 1111 1111", "moved", 400, "contact", "Take out the card number"),
        ("4 New Street", " ", 400, "reason", "Give why it is corrected."),
        ("w.pottage@example.org", "moved", 409, "contact", "Contact: it says that already."),
    ):
        resp = act(box, sam, rid, action="contact", contact=typed, reason=reason)
        assert resp.status_code == status, typed
        text = resp.get_data(as_text=True)
        assert 'id="error-%s" role="alert">' % field in text and said in text, typed
        if status == 400:  # what was typed stays in its form, but a card number (PCI DSS)
            shown = text.split('id="request-contact"')[1].split("</form>")[0]
            assert 'value="%s"' % ("" if "4111" in typed else html.escape(typed)) in shown, typed
    assert act(box, sue, rid, action="contact", contact="4 New Street", reason="moved").status_code == 404
    assert act(box, audrey, rid, action="contact", contact="4 New Street", reason="moved").status_code == 403
    resp = act(box, sam, rid, action="contact", contact="4 New Street", reason="moved", seen="99")
    assert resp.status_code == 409 and "changed by someone else" in resp.get_data(as_text=True)
    # Without the page's CSRF token: refused, nothing changed.
    resp = sam.post(
        "/requests/%d" % rid, data={"action": "contact", "contact": "4 New Street", "reason": "x"}
    )
    assert resp.status_code == 400 and "security token" in resp.get_data(as_text=True)
    assert unchanged() == before

    resp = act(box, sam, rid, action="contact", contact="4 New Street, Leeds LS1 4AP", reason="they moved")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?done=contact")
    assert "Saved: how to reach them is corrected" in page(sam, resp.headers["Location"])
    [entry] = entries(box)
    assert entry["contact"] == "4 New Street, Leeds LS1 4AP"
    corrected_as(
        box, audrey, rid, "contact", "they moved", "w.pottage@example.org", "4 New Street, Leeds LS1 4AP",
        hidden=("New Street", "w.pottage"),
    )  # fmt: skip

    # Closed: the form is gone, and a change refused.
    assert act(box, sam, rid, action="answer", outcome="sent the copy").status_code == 302
    assert 'id="request-contact"' not in page(sam, "/requests/%d" % rid)
    resp = act(
        box,
        sam,
        rid,
        action="contact",
        contact="5 Old Road",
        reason="x",
        seen=str(entries(box)[0]["version"]),
    )
    assert resp.status_code == 409 and "is already answered" in resp.get_data(as_text=True)
    assert entries(box)[0]["contact"] == "4 New Street, Leeds LS1 4AP"


def test_a_contact_correction_recorded_before_its_values_were_kept_shows_as_it_did(box, people):
    """A correction of how to reach them made before the old and new values were kept: its
    audit entry names the field and no correction. Its history reads as it did (who, when, the
    field), with no Before or After, and another correction's values are not shown for it."""
    sam, audrey = people["sam"], people["audrey"]
    rid = log_request(box, sam)
    box.services.audit.append(
        "sam",
        "data_request",
        "request:%d" % rid,
        {"event": "contact_corrected", "fields": ["contact"], "address": "127.0.0.1"},
        box.T0_US + 1,
    )
    assert (
        act(box, sam, rid, action="contact", contact="4 New Street", reason="they moved").status_code == 302
    )
    rows = history_said(page(audrey, "/requests/%d" % rid).split('id="request-history"')[1]).split("<tr>")[2:]
    older, newer = [r for r in rows if "Corrected: contact" in r]
    assert "Before:" not in older and "After:" not in older and "Reason:" not in older
    assert "Before: w.pottage@example.org" in newer and "After: 4 New Street" in newer


def test_who_asked_is_corrected_with_a_reason_the_history_showing_before_and_after(box, people):
    """Who asked was misheard when the request was logged, and could not be corrected (only how
    to reach them could). It is corrected on the request's page while it is open, with a
    reason; the history shows the name before and after (kept with the request, sealed), the
    audit trail only that it changed, why and the correction. Bad input, another line's
    request, an auditor, a stale page and a closed request change nothing."""
    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    rid = log_request(box, sam, lines=["1"])
    form = page(sam, "/requests/%d" % rid).split('id="request-requester"')[1].split("</form>")[0]
    assert 'name="requester" required maxlength="200"' in form and 'value="Mrs Wilhelmina Pottage"' in form
    assert 'name="reason" required' in form
    assert 'id="request-requester"' not in page(audrey, "/requests/%d" % rid)

    def unchanged():
        [entry] = entries(box)
        return entry["requester"], entry["version"], len(audits(box))

    before = unchanged()
    for typed, reason, status, field, said in (
        (" ", "misheard", 400, "requester", "Give the name of the person who asked."),
        (
            "x" * 201,
            "misheard",
            400,
            "requester",
            "The name of the person who asked: at most 200 characters.",
        ),
        ("Mrs W Pottage", " ", 400, "reason", "Give why it is corrected."),
        ("Mrs Wilhelmina Pottage", "misheard", 409, "requester", "Requester: it says that already."),
    ):
        resp = act(box, sam, rid, action="requester", requester=typed, reason=reason)
        assert resp.status_code == status, typed
        text = resp.get_data(as_text=True)
        assert 'id="error-%s" role="alert">' % field in text and said in text, typed
    assert act(box, sue, rid, action="requester", requester="Mrs Potts", reason="x").status_code == 404
    assert act(box, audrey, rid, action="requester", requester="Mrs Potts", reason="x").status_code == 403
    resp = act(box, sam, rid, action="requester", requester="Mrs Potts", reason="misheard", seen="99")
    assert resp.status_code == 409 and "changed by someone else" in resp.get_data(as_text=True)
    # Without the page's CSRF token: refused, nothing changed.
    resp = sam.post(
        "/requests/%d" % rid, data={"action": "requester", "requester": "Mrs Potts", "reason": "x"}
    )
    assert resp.status_code == 400 and "security token" in resp.get_data(as_text=True)
    assert unchanged() == before

    resp = act(
        box,
        sam,
        rid,
        action="requester",
        requester="Mrs Wilhelmina Pottinger",
        reason="misheard on the phone",
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?done=requester")
    assert "Saved: who asked is corrected" in page(sam, resp.headers["Location"])
    [entry] = entries(box)
    assert entry["requester"] == "Mrs Wilhelmina Pottinger"
    corrected_as(
        box, audrey, rid, "requester", "misheard on the phone", "Mrs Wilhelmina Pottage",
        "Mrs Wilhelmina Pottinger", hidden=("Pottinger", "Wilhelmina"),
    )  # fmt: skip

    assert act(box, sam, rid, action="answer", outcome="sent the copy").status_code == 302
    assert 'id="request-requester"' not in page(sam, "/requests/%d" % rid)
    resp = act(
        box, sam, rid, action="requester", requester="Mrs P", reason="x", seen=str(entries(box)[0]["version"])
    )
    assert resp.status_code == 409 and "is already answered" in resp.get_data(as_text=True)
    assert entries(box)[0]["requester"] == "Mrs Wilhelmina Pottinger"


def test_their_numbers_are_corrected_and_their_calls_are_found_by_the_new_ones(box, people):
    """A caller's numbers, mistyped when the request was logged, sent the Subject access search
    to another's calls and could not be corrected. Each number is checked as the search takes
    it (a piece that is not one is named, nothing changed), kept as typed, each once; the
    request's links then search the new numbers only, the old ones are in the history only."""
    sam, audrey = people["sam"], people["audrey"]
    rid = log_request(box, sam, numbers="020 7946 0001")
    text = page(sam, "/requests/%d" % rid)
    assert "find the calls of 020 7946 0001" in text
    form = text.split('id="request-numbers"')[1].split("</form>")[0]
    assert (
        '<textarea id="numbers-new" name="numbers" rows="2" maxlength="500"' in form
        and "020 7946 0001</textarea>" in form
    )

    def unchanged():
        [entry] = entries(box)
        return entry["numbers"], entry["version"], len(audits(box))

    before = unchanged()
    for typed, reason, status, field, said in (
        ("020 7946 0000, home", "typo", 400, "numbers", "Their numbers: home is not a phone number"),
        ("01632 96O555", "typo", 400, "numbers", "Their numbers: 01632 96O555 is not a phone number"),
        ("123", "typo", 400, "numbers", "give at least 4 of its digits"),
        ("1" * 501, "typo", 400, "numbers", "Their phone numbers: at most 500 characters."),
        ("4111 1111 1111 1111", "typo", 400, "numbers", "Take out the card number"),
        ("020 7946 0000", "", 400, "reason", "Give why it is corrected."),
        ("020 7946 0001", "typo", 409, "numbers", "Numbers: it says that already."),
    ):
        resp = act(box, sam, rid, action="numbers", numbers=typed, reason=reason)
        assert resp.status_code == status, typed
        text = resp.get_data(as_text=True)
        assert 'id="error-%s" role="alert">' % field in text and said in text, typed
        if status == 400:  # what was typed stays in its form, but a card number (PCI DSS)
            back = "" if "4111" in typed else html.escape(typed, quote=False)
            assert ">" + back + "</textarea>" in text.split('id="request-numbers"')[1], typed
    assert act(box, audrey, rid, action="numbers", numbers="020 7946 0000", reason="typo").status_code == 403
    assert unchanged() == before

    resp = act(
        box,
        sam,
        rid,
        action="numbers",
        numbers=" 020 7946 0000;\n+44 1632 960555, 02079460000",
        reason="typo",
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?done=numbers")
    [entry] = entries(box)
    assert entry["numbers"] == "020 7946 0000, +44 1632 960555"
    text = page(sam, "/requests/%d" % rid)
    assert "Saved: their numbers are corrected" in page(sam, "/requests/%d?done=numbers" % rid)
    links = re.findall(r'<a id="r-sar-\d" href="([^"]+)">find the calls of ([^<]+) \(Subject access\)', text)
    assert [(html.unescape(u), n) for u, n in links] == [
        ("/sar?number=020+7946+0000&request=%d&fill=1" % rid, "020 7946 0000"),
        ("/sar?number=%%2B44+1632+960555&request=%d&fill=1" % rid, "+44 1632 960555"),
    ]
    facts, history = history_said(text).split('id="request-history"')
    assert "7946 0001" not in facts.split('id="request-numbers"')[0]
    assert "Before: 020 7946 0001" in history and "After: 020 7946 0000, +44 1632 960555" in history
    assert audits(box)[-1].details == {
        "event": "numbers_corrected",
        "fields": ["numbers"],
        "reason": "typo",
        "correction": 1,
        "address": audits(box)[-1].details["address"],
    }
    trail = str([e.details for e in box.services.audit.entries(limit=1000)])
    assert "7946" not in trail and "960555" not in trail
    # None: the request is found by no number, and the history says so.
    assert act(box, sam, rid, action="numbers", numbers="", reason="not theirs").status_code == 302
    text = page(sam, "/requests/%d" % rid)
    assert 'id="r-sar-1"' not in text and "none given" in text.split('id="request-history"')[0]
    assert "After: none given" in history_said(text.split('id="request-history"')[1])


def test_a_line_requests_numbers_link_to_the_search_of_them_on_its_lines(box, people):
    """The person's numbers were linked to the Subject access search only on a request about no
    line: on one about lines, the supervisor searched every call on the line by date, or typed
    the number into a search of all their lines. Each number now links to the search of it on
    the request's lines the supervisor holds (ticked, filled in, the request chosen; the days
    then due), which finds its calls there only."""
    from support.web import add_calls

    add_calls(box.data_dir, ["02079460000"], line=2)  # the same number on line 2 (sam's too)
    sam, sue = people["sam"], people["sue"]
    rid = log_request(box, sam, lines=["1", "3"], numbers="020 7946 0000")
    text = page(sam, "/requests/%d" % rid)
    links = re.findall(r'<a id="r-sar-\d" href="([^"]+)">find the calls of ([^<]+) \(Subject access\)', text)
    assert [(html.unescape(u), n) for u, n in links] == [
        ("/sar?number=020+7946+0000&line=1&request=%d&fill=1" % rid, "020 7946 0000 on line 1"),
    ]
    assert 'id="r-sar-elsewhere"' not in text  # the lines' own words say line 3 is not sam's
    # Sue holds line 3: her link searches it.
    assert "find the calls of 020 7946 0000 on line 3 (Subject access)" in page(sue, "/requests/%d" % rid)
    # The link fills the form in (number, line ticked, request chosen); nothing is searched.
    text = page(sam, html.unescape(links[0][0]))
    assert 'name="number" value="020 7946 0000"' in text and 'name="line" value="1" checked' in text
    assert 'name="line" value="2" checked' not in text and 'id="sar-found"' not in text
    assert "its calls on it only are searched. Give the days to search" in text
    assert '<input type="hidden" name="request" value="%d">' % rid in text
    assert "disclosure_search" not in box.audit_actions()
    # A line not granted, or a number the search does not take, is refused as a search's.
    for query, said in (
        ("number=020+7946+0000&line=3", "Line 3 is not granted to you"),
        ("number=0163O&line=1", "is not a phone number"),
    ):
        resp = sam.get("/sar?%s&request=%d&fill=1" % (query, rid))
        assert resp.status_code == 400 and said in resp.get_data(as_text=True), query
    assert "disclosure_search" not in box.audit_actions()
    # Find calls with the days: the number's call on line 1, not its call on line 2.
    query = {"number": "020 7946 0000", "line": "1", "from": "2026-03-02", "to": "", "request": str(rid)}
    resp = sam.get("/sar", query_string=dict(query, from_time="", to_time=""))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="sar-found"' in text
    found = box.services.audit.entries(limit=1, action="disclosure_search")[0].details
    assert found["lines"] == [1] and found["found"] == 1, found
    assert 'href="/calls/1"' in text
    # Without the line ticked, the number is searched on every line sam holds: both calls.
    resp = sam.get("/sar", query_string=dict(query, line=[], from_time="", to_time=""))
    found = box.services.audit.entries(limit=1, action="disclosure_search")[0].details
    assert "lines" not in found and found["found"] == 2, found


def release_logged(box, rid):
    """Sue's release of call 3 for request ``rid``, as the disclosure log has it: its entry."""
    import json

    from firmware.sar import DisclosureLog

    log = DisclosureLog(box.data_dir, getattr(box.services.audit, "cipher", None))
    try:
        return log.add(
            wall_us=box.T0_US,
            actor="sue",
            requester="Mrs Wilhelmina Pottage",
            recipient="Mrs Wilhelmina Pottage",
            reason="subject access",
            search=json.dumps({"number": "02079460002"}),
            call_ids="3",
            recordings=1,
            bundle="b.zip",
            bundle_sha256="cd" * 32,
            encrypted=0,
            request_id=rid,
        )
    finally:
        log.close()


def test_opening_a_requests_page_is_audited_once_a_login(box, people):
    """A request's page shows who asked, how to reach them, their numbers and what they
    asked; nobody's opening it was audited (a call's page, which shows less, is), so the
    trail could not say who read a person's contact details, nor an auditor check it. Each
    login's first view of a request is, under the request's target; shown again it writes
    no more, and a request the user may not see (404) writes nothing."""
    rid = log_request(box, people["sam"], requester="Mrs Wilhelmina Pottage")
    log = box.services.audit

    def views():
        found = log.entries(limit=20, action="request_viewed", newest_first=False)
        return [(e.actor, e.target) for e in found]

    audrey = people["audrey"]
    assert "Mrs Wilhelmina Pottage" in page(audrey, "/requests/%d" % rid)
    page(audrey, "/requests/%d" % rid)
    assert views()[-1:] == [("audrey", "request:%d" % rid)]
    assert [v for v in views() if v[0] == "audrey"] == [("audrey", "request:%d" % rid)]
    assert audrey.get("/requests/%d" % (rid + 1)).status_code == 404
    box.login("audrey").get("/requests/%d" % rid)  # a new login's view is its own
    assert [v for v in views() if v[0] == "audrey"] == [("audrey", "request:%d" % rid)] * 2
    [entry] = [e for e in log.entries(limit=20, action="request_viewed") if e.actor == "audrey"][:1]
    assert "Pottage" not in str(entry.details) and entry.details["address"] == "192.0.2.10"
    # Found on the Audit page in words, under the request.
    trail = page(audrey, "/audit?action=request_viewed")
    assert "Opened a data subject&#39;s request" in trail or "Opened a data subject's request" in trail


def test_each_time_the_requests_list_shows_who_asked_is_audited_without_their_names(box, people, tmp_path):
    """The list shows each request's requester by name, as the phonebook page shows its
    entries' and the calls list its callers' numbers, which are audited as a look
    (``list_viewed``) each time they are shown: the list was not, so a breach scope could not
    say who read who had asked. One entry per page shown, naming the requests, never who asked."""
    rid = log_request(box, people["sam"], requester="Mrs Wilhelmina Pottage")
    log = box.services.audit

    def listed():
        found = log.entries(limit=50, action="list_viewed", newest_first=False)
        return [
            (e.actor, {k: v for k, v in e.details.items() if k != "address"})
            for e in found
            if e.target == "requests"
        ]

    before = len(listed())
    assert "Mrs Wilhelmina Pottage" in page(people["audrey"], "/requests")
    assert listed()[before:] == [("audrey", {"rows": 1, "requests": [rid]})]
    assert "Pottage" not in repr([e.details for e in log.entries(limit=50, action="list_viewed")])
    # Refused the page (not a supervisor or auditor): nothing shown, nothing written.
    assert people["ivan"].get("/requests").status_code == 403
    assert len(listed()) == before + 1
    # A breach scope of the auditor counts the page, with how many requests it listed.
    from firmware.breachscope import scope, summary_lines

    _, summary = scope(log, str(tmp_path / "none.db"), "audrey", 0, 4_000_000_000_000_000)
    assert summary["shown"]["requests"]["rows"] == 1
    assert "  requests list page shown on screen 1 time: 1 request (each with its requester's name)" in (
        "\n".join(summary_lines(summary))
    )
