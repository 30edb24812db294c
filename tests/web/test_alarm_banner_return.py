"""Acknowledging an alarm from the banner comes back to the page it was pressed on: with
the search that page showed, and never to an address that opens no page."""

import html
import re

from support.web import listen, page


def _next(text):
    """The page the banner's acknowledge buttons return to."""
    found = re.findall(r'<input type="hidden" name="next" value="([^"]*)">', text)
    values = {html.unescape(v) for v in found}
    assert len(values) == 1, values
    return values.pop()


def _acknowledge(box, who, text):
    """Press the banner's first acknowledge button on the page ``text``; the response."""
    alarm_id = re.search(r'action="/alarms/(\d+)/acknowledge"', text).group(1)
    return box.post(who, "/alarms/%s/acknowledge" % alarm_id, {"next": _next(text)})


def test_an_alarm_acknowledged_from_a_search_comes_back_to_that_search(box, people):
    """The query was dropped: a supervisor who acknowledged an alarm from a caller's calls
    came back to every call, the search to be typed again."""
    sam = people["sam"]
    box.alarm_log.set("no_line_voltage", True, line=2, message="no voltage on line 2", wall_us=box.T0_US)
    search = "/calls?number=01632&direction=in"
    resp = _acknowledge(box, sam, page(sam, search))
    assert resp.status_code == 302 and resp.headers["Location"] == search
    assert box.alarm_log.history()[0]["acknowledged_by"] == "sam"


def test_an_alarm_acknowledged_from_a_page_a_form_drew_comes_back_to_a_page_that_opens(box, people):
    """After a refused "Listen" (a page drawn in answer to a form: /calls/1/listen) the
    acknowledge button sent the supervisor to that address opened anew: "That method is not
    allowed here". Now to the nearest page above it: the call's page, the phonebook. The
    player a listen shows is a page of its own (Post/Redirect/Get), and comes back as it is."""
    sam = people["sam"]
    for n in range(3):
        box.alarm_log.set("no_line_voltage", n % 2 == 0, line=2, message="no voltage", wall_us=box.T0_US + n)
    token = box.token_of(sam, "/calls/1")
    drawn = sam.post("/calls/1/listen", data={"csrf_token": token, "listen_reason": ""})
    assert drawn.status_code == 400
    resp = _acknowledge(box, sam, drawn.get_data(as_text=True))
    assert resp.status_code == 302 and resp.headers["Location"] == "/calls/1"
    assert sam.get("/calls/1").status_code == 200
    box.alarm_log.set("no_line_voltage", False, line=2, message="no voltage", wall_us=box.T0_US + 3)
    box.alarm_log.set("no_line_voltage", True, line=2, message="no voltage", wall_us=box.T0_US + 4)
    shown = listen(sam, 1)
    assert shown.status_code == 200
    resp = _acknowledge(box, sam, shown.get_data(as_text=True))
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/calls/1?listen=")
    assert sam.get(resp.headers["Location"]).status_code == 200
    # A form refused (a phonebook entry to delete that is not there) draws its page at
    # /phonebook/delete: back to the phonebook.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page(sam, "/phonebook")).group(1)
    drawn = sam.post("/phonebook/delete", data={"csrf_token": token, "number": "not a number"})
    assert drawn.status_code == 400
    resp = _acknowledge(box, sam, drawn.get_data(as_text=True))
    assert resp.status_code == 302 and resp.headers["Location"] == "/phonebook"
