"""Refused forms, as a keyboard and screen reader user meets them: the words typed stay in
the form, the message sits beside the field it is about (``field-error``, which
web/static/forms.js ties to the field), and a choice made is not silently undone.

Found in an accessibility review of the requests register, the erase forms and the
concern form; the browser half (the focus, the radio group) is in test_responsive.py.
"""

import re

from web.services import StoreRecordings

CARD = "The caller read 4111 1111 1111 1111 out loud to me"


def _form(html, form_id):
    return re.search(r'<form[^>]*id="%s".*?</form>' % form_id, html, re.S).group(0)


def test_a_refused_concern_says_why_beside_its_field(box, people):
    """A card number refused on the alarms page: the message is tied to the field, not the
    page's top. The words do not come back (PCI DSS: the card number on no page, not even
    in its own field)."""
    resp = box.post(people["sam"], "/concerns", {"concern": CARD}, token_from="/alarms")
    assert resp.status_code == 400
    form = _form(resp.get_data(as_text=True), "concern-form")
    assert re.search(r'<textarea id="concern"[^>]*></textarea>', form)
    assert '<span class="field-error" id="error-concern" role="alert">Take out the card number' in form
    assert 'aria-describedby="concern-hint"' in form and "Never a card number" in form
    assert 'id="alarm-error"' not in resp.get_data(as_text=True)


def test_a_concern_refused_on_my_line_is_tied_to_its_field(box, people):
    box.add_user(people["alice"], "stella", ["staff"], [4])
    stella = box.login("stella")
    resp = box.post(stella, "/concerns", {"concern": CARD}, token_from="/my-line")
    form = _form(resp.get_data(as_text=True), "concern-form")
    assert '<span class="field-error" id="error-concern" role="alert">Take out' in form
    assert re.search(r'<textarea id="concern"[^>]*></textarea>', form)


def test_a_refused_erase_keeps_the_details_tick_as_it_was_left(box, people):
    """Cleared to keep the caller's details, refused (the recorder restarting, a hold placed
    meanwhile, the confirmation missing): pressing again must not erase them after all."""
    box.add_recordings([1])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    tick = re.compile(r'<input type="checkbox" name="details"[^>]*>')
    assert "checked" in tick.search(sam.get("/calls/1").get_data(as_text=True)).group(0)
    form = {"erase_reason": "erasure request ref 77"}  # no tick, no confirmation
    resp = box.post(sam, "/calls/1/erase", form, token_from="/calls/1")
    assert resp.status_code == 400
    assert "checked" not in tick.search(resp.get_data(as_text=True)).group(0)
    resp = box.post(sam, "/calls/1/erase", dict(form, details="yes"), token_from="/calls/1")
    assert "checked" in tick.search(resp.get_data(as_text=True)).group(0)
    # Another form of the page refused: this one is as it first was.
    resp = box.post(sam, "/calls/1/erase-details", {"details_reason": "gone please"}, token_from="/calls/1")
    assert resp.status_code == 409
    assert "checked" in tick.search(resp.get_data(as_text=True)).group(0)


def test_a_missing_confirmation_is_said_beside_its_tick_not_on_the_reason(box, people):
    """A browser that sends the form without its tick: the message was the reason field's, so
    forms.js marked a reason well given as invalid and the tick as nothing."""
    box.add_recordings([1])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    for url, form_id, reason in (
        ("/calls/1/erase", "erase-form", "erase_reason"),
        ("/calls/5/erase-details", "erase-details-form", "details_reason"),
    ):
        resp = box.post(sam, url, {reason: "erasure request ref 9"}, token_from=url.rsplit("/", 1)[0])
        assert resp.status_code == 400, url
        form = _form(resp.get_data(as_text=True), form_id)
        assert 'id="error-%s"' % reason not in form
        assert re.search(
            r'<input type="checkbox" name="confirm"[^>]*>[^<]*</label>\s*'
            r'<span class="field-error" id="error-confirm" role="alert">Tick the box to confirm',
            form,
        ), form
