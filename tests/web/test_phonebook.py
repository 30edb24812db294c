"""The phonebook page shows every entry's name and number: each time it does is audited
as a look (``list_viewed`` of ``phonebook``), and a breach's scope counts it."""

import html
import re


def viewed(box):
    """The trail's ``list_viewed`` entries of the phonebook, oldest first: ``(actor, details)``."""
    entries = box.services.audit.entries(limit=100, action="list_viewed", newest_first=False)
    return [
        (e.actor, {k: v for k, v in e.details.items() if k != "address"})
        for e in entries
        if e.target == "phonebook"
    ]


def test_each_time_the_phonebook_page_shows_its_entries_is_audited_without_them(box, people):
    """It showed callers' names and numbers and left no trace."""
    sam = people["sam"]
    for number, name in (("01632 960777", "Acme Ltd"), ("01632 960888", "Mrs Jones")):
        resp = box.post(sam, "/phonebook", {"number": number, "name": name}, token_from="/phonebook")
        assert resp.status_code == 302
    assert viewed(box) == [("sam", {"rows": 0}), ("sam", {"rows": 1})]  # the forms' pages
    assert sam.get("/phonebook").status_code == 200
    assert viewed(box)[2:] == [("sam", {"rows": 2})]
    # Never the names or numbers shown.
    entries = box.services.audit.entries(limit=100, action="list_viewed")
    said = repr([e.details for e in entries])
    assert "960777" not in said and "Acme" not in said and "Jones" not in said
    # Refused the page (not a supervisor): nothing shown, nothing written.
    assert people["audrey"].get("/phonebook").status_code == 403
    assert [who for who, _ in viewed(box)] == ["sam"] * 3


def test_a_refused_phonebook_form_shows_no_entries_and_writes_no_look(box, people):
    """A form refused re-showed every entry and wrote a second look for the page the person
    had already seen: one look per page actually shown, and a refusal changes nothing."""
    sam = people["sam"]
    box.post(sam, "/phonebook", {"number": "01632 960555", "name": "Acme Ltd"}, token_from="/phonebook")
    token = box.token_of(sam, "/phonebook")  # the page the forms are sent from: one look
    before = len(box.services.audit.entries(limit=1000))
    for path, form, said in (
        ("/phonebook", {"number": "abc", "name": "Mrs Jones"}, "number"),
        ("/phonebook/delete", {"number": "abc"}, "number"),
        ("/phonebook/import", {}, "Choose a CSV file to import."),
    ):
        resp = sam.post(path, data=dict(form, csrf_token=token))
        assert resp.status_code == 400, path
        page = resp.get_data(as_text=True)
        assert said in page, path  # its message, with the form
        assert "Acme Ltd" not in page and "960555" not in page, path  # the entries not shown
        assert 'id="phonebook-hidden"' in page
    assert len(box.services.audit.entries(limit=1000)) == before  # no look, no change
    assert box.web.phonebook.count() == 1


def test_the_breach_scope_counts_the_phonebook_pages_shown(box, people):
    sam = people["sam"]
    for number, name in (("01632 960777", "Acme Ltd"), ("01632 960888", "Mrs Jones")):
        box.post(sam, "/phonebook", {"number": number, "name": name}, token_from="/phonebook")
    assert sam.get("/phonebook").status_code == 200
    shown = sum(d["rows"] for _, d in viewed(box))
    assert len(viewed(box)) > 1 and shown > 1
    page = people["audrey"].get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-12-31")
    found = {
        k: html.unescape(v)
        for k, v in re.findall(r'<dd id="s-([\w-]+)">([^<]*)</dd>', page.get_data(as_text=True))
    }
    assert found["shown_phonebook"].startswith(
        "phonebook page shown on screen %d times: %d entries (names and numbers)" % (len(viewed(box)), shown)
    )
