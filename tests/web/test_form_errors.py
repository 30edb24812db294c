"""Refused forms, as a keyboard and screen reader user meets them: the words typed stay in
the form, the message sits beside the field it is about (``field-error``, which
web/static/forms.js ties to the field), and a choice made is not silently undone.

Found in an accessibility review of the requests register, the erase forms and the
concern form; the browser half (the focus, the radio group) is in test_responsive.py.
"""

import re

CARD = "The caller read 4111 1111 1111 1111 out loud to me"


def _form(html, form_id):
    return re.search(r'<form[^>]*id="%s".*?</form>' % form_id, html, re.S).group(0)


def test_a_refused_concern_keeps_its_words_and_says_why_beside_them(box, people):
    """A card number refused on the alarms page: its characters are named, so the words
    must still be there to correct; the message is tied to the field, not the page's top."""
    resp = box.post(people["sam"], "/concerns", {"concern": CARD}, token_from="/alarms")
    assert resp.status_code == 400
    form = _form(resp.get_data(as_text=True), "concern-form")
    assert re.search(r'<textarea id="concern"[^>]*>%s</textarea>' % CARD, form)
    assert '<span class="field-error" id="error-concern" role="alert">Take out the card number' in form
    assert 'aria-describedby="concern-hint"' in form and "Never a card number" in form
    assert 'id="alarm-error"' not in resp.get_data(as_text=True)


def test_a_concern_refused_on_my_line_is_tied_to_its_field(box, people):
    box.add_user(people["alice"], "stella", ["staff"], [4])
    stella = box.login("stella")
    resp = box.post(stella, "/concerns", {"concern": CARD}, token_from="/my-line")
    form = _form(resp.get_data(as_text=True), "concern-form")
    assert '<span class="field-error" id="error-concern" role="alert">Take out' in form
    assert re.search(r'<textarea id="concern"[^>]*>%s</textarea>' % CARD, form)
