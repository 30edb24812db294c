"""The requests register as a screen reader reads it: links named out of their table, and a
change refused because someone else changed the request meanwhile saying where the words
typed went. The browser half (the focus, the radio group's error) is in test_responsive.py."""

import re

from firmware.localtime import day_words

from .test_requests import act, log_request, seen
from support.web import page


def test_a_request_s_link_is_named_out_of_its_table(box, people):
    """A list of the page's links (a screen reader's) read "#1": now "Request #1"."""
    sam = people["sam"]
    first = log_request(box, sam)
    second = log_request(box, sam, details="every recording of my calls in January")
    assert act(box, sam, second, action="refuse", outcome="unfounded").status_code == 302
    listing = page(sam, "/requests")
    for rid in (first, second):
        link = re.search(r'<a href="/requests/%d">(.*?)</a>' % rid, listing).group(1)
        assert link == '<span class="sr-only">Request </span>#%d' % rid


def test_a_change_refused_as_stale_says_the_words_typed_are_kept(box, people):
    sam, sue = people["sam"], people["sue"]
    rid = log_request(box, sam)
    stale = seen(sue, rid)
    assert act(box, sam, rid, action="wait", wait_kind="identity", reason="a passport").status_code == 302
    # Sue's extension, decided on the page before Sam stopped the clock: its form is gone.
    resp = act(box, sue, rid, action="extend", months="1", reason="many calls", told="on", seen=stale)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "look again" in text
    assert "still in its form" not in text
    # Her answer's form is still there, holding what she typed.
    resp = act(box, sue, rid, action="answer", outcome="sent the copy", seen=stale)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 409
    message = re.search(r'id="error-action">([^<]*)<', text).group(1)
    assert "look again" in message and "What you entered is still in its form below." in message
    assert ">sent the copy</textarea>" in text


def test_a_request_s_headings_say_what_each_part_does(box, people):
    """In a list of headings "Answered" and "Refused" sounded like the request's state;
    the page's title named the kind by its code ("access")."""
    sam = people["sam"]
    rid = log_request(box, sam)
    headings = re.findall(r"<h[12]>([^<]*)</h[12]>", page(sam, "/requests/%d" % rid))
    assert headings[0] == "Request #%d: Access" % rid
    assert "Record the answer" in headings and "Record a refusal" in headings
    assert "Answered" not in headings and "Refused" not in headings


def _form(text, form_id):
    return re.search(r'<form[^>]*id="%s".*?</form>' % form_id, text, re.S).group(0)


def test_a_date_the_register_refuses_is_said_beside_its_field_with_what_was_typed(box, people):
    """A date after today, before the receipt or inside an earlier wait was said at the top of
    the page: a keyboard or screen-reader user did not land on the field that was wrong."""
    sam = people["sam"]
    rid = log_request(box, sam, received="2026-02-20")  # the box's today: 2026-03-02
    cases = [
        ("request-wait", dict(action="wait", wait_kind="identity", reason="a passport", on="2026-03-09")),
        ("request-answer", dict(action="answer", outcome="sent the copy", on="2026-02-10")),
        ("request-refuse", dict(action="refuse", outcome="manifestly unfounded", on="2026-03-03")),
    ]
    for form_id, form in cases:
        resp = act(box, sam, rid, **form)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 409, form
        assert 'id="error-action"' not in text
        own = _form(text, form_id)
        message = re.search(r'<span class="field-error" id="error-on" role="alert">([^<]*)<', own).group(1)
        # The day typed, as the pages write dates (the field keeps what was typed).
        assert day_words(form["on"]) in message, message
        assert 'name="on" type="date" value="%s"' % form["on"] in own  # what was typed stays
        assert text.count('id="error-on"') == 1  # beside its own form's date only
    # Waits never overlap: the day before the identity came is refused beside the field too.
    resp = act(box, sam, rid, action="wait", wait_kind="identity", reason="ID", on="2026-02-23")
    assert resp.status_code == 302
    assert act(box, sam, rid, action="resume", on="2026-02-26").status_code == 302
    resp = act(box, sam, rid, action="wait", wait_kind="clarification", reason="which calls", on="2026-02-25")
    own = _form(resp.get_data(as_text=True), "request-wait")
    assert resp.status_code == 409 and "is before Thu 26 Feb 2026" in own and 'value="2026-02-25"' in own
    assert 'value="which calls"' in own


def test_the_follow_up_form_s_first_field_is_described_by_what_a_follow_up_is(box, people):
    """Tabbing into "Log a follow-up", a screen reader went straight to "What they ask for":
    that this request stays as answered, that the follow-up has a month of its own and
    that the person's details are copied, said in the paragraph above, went unheard."""
    sam = people["sam"]
    rid = log_request(box, sam, received="2026-02-02")
    assert act(box, sam, rid, action="answer", outcome="sent 3 calls", on="2026-02-20").status_code == 302
    own = _form(page(sam, "/requests/%d" % rid), "request-follow-up")
    assert re.search(r'<select id="fu-kind"[^>]* aria-describedby="follow-up-hint[ "]', own)
    assert 'id="follow-up-hint"' in page(sam, "/requests/%d" % rid)


def test_the_request_form_s_two_what_fields_are_told_apart(box, people):
    """The form asked "What they ask for" (the kind, a list) and, further down, "What they
    asked for" (the person's words): two fields named almost alike, on a phone a screen
    apart. The words are asked as the request's page shows them, "What they asked"."""
    form = _form(page(people["sam"], "/requests"), "request-form")
    said = re.findall(r'<label for="rq-(kind|details)">([^<]*)</label>', form)
    assert said == [("kind", "What they ask for"), ("details", "What they asked, in their words")], said
