"""The requests register as a screen reader reads it: links named out of their table, and a
change refused because someone else changed the request meanwhile saying where the words
typed went. The browser half (the focus, the radio group's error) is in test_responsive.py."""

import re

from .test_requests import act, log_request
from support.web import page


def test_a_request_s_link_is_named_out_of_its_table(box, people):
    """A list of the page's links (a screen reader's) read "#1": now "Request #1"."""
    sam = people["sam"]
    first = log_request(box, sam)
    second = log_request(box, sam)
    assert act(box, sam, second, action="refuse", outcome="unfounded").status_code == 302
    listing = page(sam, "/requests")
    for rid in (first, second):
        link = re.search(r'<a href="/requests/%d">(.*?)</a>' % rid, listing).group(1)
        assert link == '<span class="sr-only">Request </span>#%d' % rid
