"""PCI DSS in what people type: a card number in a note, a tag, a reason or a release is
refused with a message, and nothing of it reaches the page, the bundle or the card."""

import base64
import re
from pathlib import Path

import pytest

from web.services import StoreRecordings

from .test_sar import RELEASE

PAN = "4111111111111111"
WRITTEN = ["paid by card 4111 1111 1111 1111 ok", "card 4111-1111-1111-1111", "ref x4111111111111111"]


def _forms():
    """Every form of the card number the card could hold it in."""
    digits = PAN.encode()
    return [digits, digits.hex().encode(), base64.b64encode(digits), PAN.encode("utf-16-le"), b"4111 1111"]


def _card_holds_it(data_dir):
    found = []
    for path in Path(data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path.name, f) for f in _forms() if f in data]
    return found


@pytest.mark.parametrize("note", WRITTEN)
def test_a_note_with_a_card_number_is_refused_and_kept_nowhere(box, people, note):
    sam = people["sam"]
    sam.get("/calls/1")  # its first view in this login is audited (call_viewed), not the form
    before = len(box.audit_actions())
    resp = box.post(sam, "/calls/1/notes", {"note": note}, token_from="/calls/1")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Take out the card number" in html
    assert "last four digits" in html
    assert len(box.audit_actions()) == before
    assert not _card_holds_it(box.data_dir)


def test_a_tag_that_is_a_card_number_is_refused(box, people):
    sam = people["sam"]
    resp = box.post(sam, "/calls/1/tags", {"add": PAN}, token_from="/calls/1")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "A tag cannot be a card number" in html
    assert PAN not in html  # not even back in its own field (a wrong tag otherwise is)
    resp = box.post(sam, "/calls/1/tags", {"add": "Not A Tag!"}, token_from="/calls/1")
    assert resp.status_code == 400 and 'value="Not A Tag!"' in resp.get_data(as_text=True)
    assert PAN not in sam.get("/calls.csv").get_data(as_text=True)
    assert not _card_holds_it(box.data_dir)


def test_an_erasure_reason_with_a_card_number_is_refused(box, people):
    sam = people["sam"]
    resp = box.post(
        sam,
        "/calls/1/erase",
        {"erase_reason": "caller read out card 4111 1111 1111 1111", "confirm": "yes"},
        token_from="/calls/1",
    )
    assert resp.status_code == 400 and "Take out the card number" in resp.get_data(as_text=True)
    assert not _card_holds_it(box.data_dir)


@pytest.mark.parametrize("field", ["requester", "recipient", "reason"])
def test_a_release_naming_a_card_number_is_refused(box, people, field):
    box.recordings.store = box.store
    sam = people["sam"]
    form = dict(RELEASE, **{field: "Mr Jones, card 4111-1111-1111-1111"})
    resp = box.post(sam, "/sar", form, token_from="/sar")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "take the card number out of the %s" % field in html
    assert "disclosure" not in box.audit_actions()
    assert not _card_holds_it(box.data_dir)


def test_a_note_an_older_firmware_kept_is_shown_masked(box, people):
    """Written straight into web.db as the release before took it."""
    web = box.app.extensions["linekeeper"]
    with web.db.tx() as conn:
        conn.execute(
            "INSERT INTO call_notes (call_id, note, by_user, at_us) VALUES (1, ?, 'sam', 0)",
            ("paid by card 4111 1111 1111 1111",),
        )
    html = people["sam"].get("/calls/1").get_data(as_text=True)
    assert "paid by card XXXX XXXX XXXX XXXX" in html
    assert not re.search(r"4111[ -]?1111", html)


CALL_PAGE_FIELDS = [
    ("/calls/1/listen", "listen_reason", {}),
    ("/calls/1/export", "reason", {"format": "wav"}),
    ("/calls/1/hold", "hold_reason", {"on": "1"}),
    ("/calls/1/erase", "erase_reason", {"confirm": "yes"}),
    ("/calls/5/erase-details", "details_reason", {"confirm": "yes"}),
    ("/calls/1/correct-name", "correct_name", {"correct_reason": "rectification request 12"}),
    ("/calls/1/correct-name", "correct_reason", {"correct_name": "Wilhelmina Pottage"}),
    ("/calls/1/correct-name", "correct_request", {"correct_name": "W P", "correct_reason": "request 12"}),
]


@pytest.mark.parametrize("action, field, rest", CALL_PAGE_FIELDS)
def test_a_card_number_refused_in_a_call_page_field_is_not_given_back(box, people, action, field, rest):
    """A refused form comes back with what was typed in its fields, except a card number:
    neither in its field nor in the message (PCI DSS: the card number on no page)."""
    box.add_recordings([1])  # call 5 has none: its details are erased on their own
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    page = action.rsplit("/", 1)[0]
    sam.get(page)  # its first view in this login is audited (call_viewed), not the form
    before = len(box.audit_actions())
    typed = PAN if field == "correct_request" else "card 4111 1111 1111 1111"
    resp = box.post(sam, action, dict(rest, **{field: typed}), token_from=page)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-%s"' % field in html, html[-2000:]
    assert "card number" in html
    assert not re.search(r"4111[ -]?1111", html), field
    assert len(box.audit_actions()) == before
    # Anything else refused still comes back as typed.
    resp = box.post(sam, action, dict(rest, **{field: "Jo\x1bx"}), token_from=page)
    assert resp.status_code == 400 and 'value="Jo\x1bx"' in resp.get_data(as_text=True), field
