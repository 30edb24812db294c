"""PCI DSS in what people type: a card number in a note, a tag, a reason or a release is
refused with a message, and nothing of it reaches the page, the bundle or the card."""

import base64
import re
from pathlib import Path

import pytest

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
