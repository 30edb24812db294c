"""Phonebook entries, call notes and tags are audited before they are written.

Each was written, then audited: a cut between left a name given to a number, or
a note or tag on a call, that no entry showed. Now a checked change is audited
first and written in a transaction that carries the change's note away (web.db),
or checked at the next start (a tag, in the call log); a cut between says, at
the next start, that the change was not made. A typo is refused before either,
and writes no entry.
"""

import pytest

from support.web import Cut, cut, restart_web


def _cut_on_the_second_transaction(box, patch):
    """Cut as web.db's second transaction begins: the note's is the first, the change's
    the second (web.intent.audited_tx)."""
    real = box.web.db.tx
    begun = []

    def tx():
        begun.append(1)
        if len(begun) == 2:
            raise Cut()
        return real()

    patch.setattr(box.web.db, "tx", tx)


def _not_made(box, action):
    return [e for e in box.audit.entries(limit=100, action=action) if "not_made" in e.details]


@pytest.mark.parametrize(
    "path,form,action",
    [
        ("/phonebook", {"number": "01632 960777", "name": "Acme Ltd"}, "phonebook"),
        ("/calls/1/notes", {"note": "Customer rang back about the order."}, "call_note"),
    ],
    ids=["phonebook", "note"],
)
def test_a_cut_before_the_write_is_audited_as_not_made(box, people, monkeypatch, path, form, action):
    sam = people["sam"]
    token_from = "/phonebook" if path == "/phonebook" else "/calls/1"
    token = box.token_of(sam, token_from)
    before = len(box.audit.entries(limit=1000, action=action))
    with monkeypatch.context() as patch:
        _cut_on_the_second_transaction(box, patch)
        with pytest.raises(Cut):
            sam.post(path, data=dict(form, csrf_token=token))
    entries = box.audit.entries(limit=1000, action=action)
    assert len(entries) == before + 1 and entries[0].actor == "sam"  # before the write
    assert box.web.phonebook.count() == 0 and box.web.notes.of_call(1) == []
    restart_web(box)
    (not_made,) = _not_made(box, action)
    assert not_made.actor == "system" and not_made.details["change_id"] == entries[0].details["change_id"]


def test_a_tag_cut_before_the_call_log_is_audited_as_not_made(box, people, monkeypatch):
    sam = people["sam"]
    with monkeypatch.context() as patch:
        patch.setattr(box.services.call_tags, "add_tags", cut)
        with pytest.raises(Cut):
            box.post(sam, "/calls/1/tags", {"add": "complaint"}, token_from="/calls/1")
    restart_web(box)
    (not_made,) = _not_made(box, "call_note")
    assert not_made.details["not_made"] == "the box stopped before the change was made"
    assert box.services.call_tags.tags(1) == []
    # A tag that did reach the call log before a cut stands.
    with monkeypatch.context() as patch:
        patch.setattr("web.intent.drop", cut)
        with pytest.raises(Cut):
            box.post(box.login("sam"), "/calls/1/tags", {"add": "complaint"}, token_from="/calls/1")
    restart_web(box)
    assert len(_not_made(box, "call_note")) == 1 and box.services.call_tags.tags(1) == ["complaint"]


def test_a_typo_is_refused_before_any_entry(box, people):
    sam = people["sam"]
    sam.get("/calls/1")  # its first view in this login is audited (call_viewed), not the forms

    # The phonebook page, its refusal too, shows the entries: a look (list_viewed), not a change.
    def changes():
        return [e.action for e in box.audit.entries(limit=1000) if e.action != "list_viewed"]

    before = len(changes())
    resp = box.post(sam, "/phonebook", {"number": "not a number", "name": "Acme"}, token_from="/phonebook")
    assert resp.status_code == 400
    resp = box.post(sam, "/calls/1/notes", {"note": "   "}, token_from="/calls/1")
    assert resp.status_code == 400
    resp = box.post(sam, "/calls/1/tags", {"add": "Not A Tag!"}, token_from="/calls/1")
    assert resp.status_code == 400
    assert (
        box.post(sam, "/phonebook/delete", {"number": "01632 960999"}, token_from="/phonebook").status_code
        == 302
    )
    assert len(changes()) == before
