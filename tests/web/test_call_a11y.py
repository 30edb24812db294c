"""A call's page as a screen reader reads it: its fields named apart in a list of the page's
fields, and a form's answer coming back where the form was. The browser half (the keyboard
on a tag refused and on the player) is in test_responsive.py."""

import html
import re

from support.web import page


def test_each_reason_field_on_a_call_s_page_says_what_it_is_for(box, people):
    """Export, legal hold and erase each asked "Reason (goes in the audit trail; required)":
    in a list of the page's fields (a screen reader's) three fields of the same name."""
    sam = people["sam"]
    text = page(sam, "/calls/1")
    labels = dict(re.findall(r'<label for="([^"]+)">([^<]*)</label>', text))
    for field in ("listen_reason", "reason", "hold_reason", "erase_reason"):
        assert field in labels, field
    named = [labels[f] for f in ("listen_reason", "reason", "hold_reason", "erase_reason")]
    assert len(set(named)) == len(named), named
    assert labels["reason"].startswith("Why are you exporting it?")
    assert labels["hold_reason"].startswith("Why are you placing the legal hold?")
    assert labels["erase_reason"].startswith("Why are you erasing the recording?")
    # Released, the hold's field asks why it is released.
    assert box.post(sam, "/calls/1/hold", {"on": "1", "hold_reason": "complaint ref 1234"}).status_code == 302
    labels = dict(re.findall(r'<label for="([^"]+)">([^<]*)</label>', page(sam, "/calls/1")))
    assert labels["hold_reason"].startswith("Why are you releasing the legal hold?")


def test_a_hold_placed_or_released_comes_back_to_the_hold_s_part_of_the_page(box, people):
    """The page came back from its top: a keyboard or screen-reader user heard the menu and
    the alarms again, and had to find the hold to learn it was placed (a tag and a note come
    back to their own part)."""
    sam = people["sam"]
    for on, reason in (("1", "complaint ref 1234"), ("0", "complaint 1234 closed")):
        resp = box.post(sam, "/calls/1/hold", {"on": on, "hold_reason": reason})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/calls/1#legal-hold"), on
    assert '<h2 id="legal-hold">Legal hold</h2>' in page(sam, "/calls/1")


def _title(text):
    return re.search(r"<title>([^<]*)</title>", text).group(1)


def test_a_search_s_page_title_says_how_many_calls_it_found(box, people):
    """Search sends the form and the page comes back from its top: a screen reader read the
    title, "Calls", then the menu and the alarms; how many calls were found was further on,
    under the form. The title now says it, as the line under the form does; a search refused
    says so."""
    sam = people["sam"]
    assert _title(page(sam, "/calls")) == "Calls — Linekeeper"  # no search: every call
    found = page(sam, "/calls?line=1")
    said = re.search(r'<p id="total"><strong>([\d,]+)</strong> (calls? match(?:es)?)', found)
    assert said, found
    assert _title(found) == "Calls: %s %s — Linekeeper" % said.groups()
    assert _title(page(sam, "/calls?number=09999999999")) == "Calls: 0 calls match — Linekeeper"
    resp = sam.get("/calls?number=abc")
    assert resp.status_code == 400
    assert _title(resp.get_data(as_text=True)) == "Calls: correct the search — Linekeeper"


def test_the_talk_time_filter_says_seconds_in_words(box, people):
    """Its label read "At least s talk time": a screen reader says a lone "s" as a letter."""
    label = re.search(
        r"<label>At least <input name=\"min_duration\"[^>]*>([^<]*)</label>", page(people["sam"], "/calls")
    )
    assert label and label.group(1).strip() == "seconds of talk", label and label.group(1)


def _text(markup):
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()


def test_each_call_s_link_in_the_list_says_whose_call_it_is(box, people):
    """Each row's link was named by its start time alone: a screen reader's list of links
    was a list of times. Hidden words now say the direction and the number or name; what
    is shown is still the time."""
    sam = people["sam"]
    box.post(sam, "/phonebook", {"number": "02079460001", "name": "Acme Ltd"}, token_from="/phonebook")
    text = page(sam, "/calls")
    rows = re.findall(r'<tr id="call-\d+">(.*?)</tr>', text, re.S)
    assert rows
    named = 0
    for row in rows:
        link = re.search(r"<a href=\"/calls/\d+\">(.*?)</a>", row, re.S).group(1)
        shown = re.sub(r'<span class="sr-only">.*?</span>', "", link)
        hidden = re.search(r'<span class="sr-only">(.*?)</span>', link)
        assert hidden, link
        said = _text(link)
        assert "<" not in shown and said.startswith(shown.strip()), link  # the time, as before
        cells = dict(re.findall(r'<td data-label="([^"]+)">(.*?)</td>', row, re.S))
        direction = _text(cells["Direction"])
        assert ("inbound call from" if direction == "Inbound" else "outbound call to") in said, said
        number = _text(re.search(r'<span class="number">(.*?)</span>', cells["Number"]).group(1))
        assert number in said or number in ("withheld", "unknown", "unavailable", "erased on request"), said
        name = re.search(r'<span class="(?:corrected|cid|book)-name"[^>]*>\(?([^<(,]*)', cells["Number"])
        assert name is None or name.group(1).strip() in said, (said, cells["Number"])
        named += name is not None
    assert named, "no call with a name to check"
