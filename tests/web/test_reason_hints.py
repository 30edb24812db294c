"""A reason typed on a form goes in the audit trail, which keeps it for good: the call
page's erasure reason offered "erasure request ref 1234", and people wrote "erasure request
#1 (J Bloggs)", the very person whose data was being erased, kept in the trail after the
call. Each such field's hint says not to put the person's name or number in it; the
erasure's example is the request's number."""

import html
import re

from web.services import StoreRecordings

from .test_requests import log_request
from support.web import page

NOT_NAMED = re.compile(
    r"Not (the caller's|the person's) name[^<]*phone number: "
    r"the audit trail keeps what you write here for good"
)


def hints(text):
    """``{input id: its hint's words}`` of every field described by a hint, on ``text``."""
    found = {}
    for field in re.finditer(r'<(?:input|textarea) id="([^"]+)"[^>]*aria-describedby="([^"]+)"', text):
        hint = re.search(r'<span class="hint" id="%s">(.*?)</span>' % re.escape(field.group(2)), text, re.S)
        if hint:
            found[field.group(1)] = html.unescape(hint.group(1))
    return found


def test_the_call_page_s_reasons_say_not_to_name_the_person(box, people):
    box.add_recordings([1])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    said = hints(page(sam, "/calls/1"))
    said.update(hints(page(sam, "/calls/5")))  # no recording: its caller's details alone
    for field in ("listen_reason", "reason", "hold_reason", "erase_reason", "details_reason"):
        assert field in said, sorted(said)
    erased = (
        'for example "erasure request #12": the request\'s number (Requests), '
        "not the person's name or phone number"
    )
    for field in ("erase_reason", "details_reason"):
        assert erased in said[field] and "audit trail would keep for good" in said[field], said[field]
        assert "ref 1234" not in said[field]
    for field in ("listen_reason", "reason", "hold_reason"):
        assert NOT_NAMED.search(said[field]), said[field]


def test_a_request_s_reasons_and_outcomes_say_not_to_name_the_person(box, people):
    sam = people["sam"]
    rid = log_request(box, sam)
    said = hints(page(sam, "/requests/%d" % rid))
    fields = ["wait-reason", "extend-reason", "contact-reason", "requester-reason", "numbers-reason"]
    for field in fields + ["answer-outcome", "refuse-outcome"]:
        assert NOT_NAMED.search(said.get(field, "")), (field, said.get(field))
        assert "name, address, e-mail or phone number" in said[field]


def test_the_subject_access_release_s_reason_says_not_to_name_the_person(box, people):
    text = page(people["sam"], "/sar?number=%2B44+20+7946+0000&from=2026-03-02")
    assert 'id="sar-release"' in text
    hint = re.search(r'<span class="hint" id="sar-reason-hint">(.*?)</span>', text, re.S)
    assert 'aria-describedby="sar-reason-hint"' in text and NOT_NAMED.search(html.unescape(hint.group(1)))
