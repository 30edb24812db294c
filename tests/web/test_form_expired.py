"""The "Form expired" page offers back the free text its form carried, unsaved.

A note typed on a call's page while the session ran out (15 minutes idle) was lost: the
post was refused for its token, and the page said only to go back and reload.
"""

import html
import re
from pathlib import Path

from web.security import FREE_TEXT

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
NOTE = "Customer rang back: wants the <order> & a refund\nby Friday"


def test_a_note_refused_for_an_expired_session_is_shown_back_not_saved(box, people):
    sam = people["sam"]
    token = box.token_of(sam, "/calls/1")
    box.clock.advance(16 * 60)  # the session ends while the note is typed
    before = box.audit_actions()
    resp = sam.post("/calls/1/notes", data={"note": NOTE, "csrf_token": token})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "security token" in page
    shown = page.split('id="typed-back"')[1].split("</section>")[0]
    assert "What you typed (not saved)" in shown
    assert re.search(r'<label for="typed-1">Note</label>\s*<textarea id="typed-1" rows="3" readonly>', shown)
    assert html.escape(NOTE, quote=False) in shown and "<order>" not in page
    assert box.web.notes.of_call(1) == [] and box.audit_actions() == before


def test_nothing_is_shown_back_but_free_text(box, people):
    """A password, or a field that is not a textarea's, is never put on the page."""
    alice = people["alice"]
    form = {"name": "mallory", "password": "Mallory's pass 12", "roles": "installer", "csrf_token": "old"}
    page = alice.post("/users", data=form).get_data(as_text=True)
    assert "typed-back" not in page and "Mallory's pass 12" not in page and "mallory" not in page


def test_another_sites_post_is_not_shown_back(box, people):
    sam = people["sam"]
    resp = sam.post("/calls/1/notes", data={"note": NOTE}, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status_code == 400 and "typed-back" not in resp.get_data(as_text=True)


def test_every_textarea_of_a_form_is_free_text_offered_back():
    names = set()
    for path in TEMPLATES.rglob("*.html"):
        names |= set(re.findall(r'<textarea[^>]*\bname="([^"]+)"', path.read_text(encoding="utf-8")))
    assert names and names <= set(FREE_TEXT), names - set(FREE_TEXT)


def test_a_card_number_in_the_text_shown_back_is_masked(box, people):
    """PCI DSS: the card number on no page, as a note refused for one is not shown back."""
    sam = people["sam"]
    token = box.token_of(sam, "/calls/1")
    box.clock.advance(16 * 60)
    note = "Paid by card 4111 1111 1111 1111, refund by Friday"
    page = sam.post("/calls/1/notes", data={"note": note, "csrf_token": token}).get_data(as_text=True)
    shown = page.split('id="typed-back"')[1].split("</section>")[0]
    assert "Paid by card XXXX XXXX XXXX XXXX, refund by Friday" in shown
    assert not re.search(r"4111[ -]?1111", page)
