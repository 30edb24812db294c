"""Correcting the caller's name shown for a call (UK GDPR Art. 16): a supervisor of the call's
line gives the name, a reason and optionally the request's number; the page and the list show
it marked corrected, with who and when; audited without the name; auditors read, installers
and other lines' supervisors cannot; bad input changes nothing; the name is sealed at rest and
erased with the caller's other details."""

import csv
import html
import io
import os
import re
import sqlite3

import pytest

from firmware.storage.fieldseal import FieldCipher
from firmware.storage.sealstores import CORRECTED_NAME, seal_web_db
from web.corrections import NameCorrections
from web.db import WebDb
from web.services import StoreRecordings

from support.cardscan import scan
from support.web import ids, page

# make_calls_db: call k is on line 1 + (k-1) % 4; call 5 is line 1 (sam's), with no name.
NAME = "Wilhelmina Pottage"
REASON = "rectification request, caller's name"


def correct(box, client, call_id, **form):
    data = {"correct_name": NAME, "correct_reason": REASON, "correct_request": ""}
    data.update(form)
    return box.post(client, "/calls/%d/correct-name" % call_id, data, token_from="/calls/%d" % call_id)


def corrections(box):
    return [tuple(r) for r in box.web.db.query("SELECT * FROM call_corrections")]


def audited(box, action="correct_details"):
    return [e for e in box.services.audit.entries(limit=1000, newest_first=False) if e.action == action]


def log_request(box, client):
    form = {
        "kind": "rectification",
        "received": "2026-03-02",
        "requester": NAME,
        "contact": "w.pottage@example.org",
        "numbers": "",
        "details": "my name is wrong on my call",
    }
    resp = box.post(client, "/requests", form, token_from="/requests")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
    return int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))


def test_a_supervisor_corrects_the_name_and_the_page_and_list_show_it(box, people):
    sam = people["sam"]
    rid = log_request(box, sam)
    resp = correct(box, sam, 5, correct_request="#%d" % rid)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    shown = html.unescape(page(sam, "/calls/5"))
    assert "%s (corrected)" % NAME in shown
    fact = re.search(r'<dd id="f-corrected">(.*?)</dd>', shown, re.S).group(1)
    assert "corrected by sam on" in fact and "request #%d" % rid in fact
    assert 'href="/requests/%d"' % rid in fact
    assert "the caller-ID sent no name" in fact
    # The history says who, why and for which request; the trail never holds the name.
    [entry] = audited(box)
    assert entry.actor == "sam" and entry.target == "5"
    assert entry.details["reason"] == REASON and entry.details["data_request"] == rid
    assert entry.details["fields"] == ["name"] and NAME not in repr(entry.details)
    assert "Corrected the caller's name shown for a call" in shown
    # The list and its CSV show the corrected name, marked.
    listing = html.unescape(page(sam, "/calls"))
    assert "%s (corrected)" % NAME in listing
    rows = list(csv.DictReader(io.StringIO(sam.get("/calls.csv").get_data(as_text=True))))
    assert {r["id"]: r["corrected_name"] for r in rows}["5"] == NAME
    assert {r["id"]: r["corrected_name"] for r in rows}["1"] == ""
    # The auditor reads it, without the form; nobody else changes it.
    seen = html.unescape(page(people["audrey"], "/calls/5"))
    assert "%s (corrected)" % NAME in seen and 'id="correct-form"' not in seen
    assert 'id="correct-form"' in page(sam, "/calls/5")
    for name, status in (("audrey", 403), ("ivan", 403), ("sue", 404)):
        assert correct(box, people[name], 5, correct_name="Someone Else").status_code == status, name
    assert len(corrections(box)) == 1 and len(audited(box)) == 1


def test_the_newest_correction_is_the_calls_name(box, people):
    sam = people["sam"]
    assert correct(box, sam, 5).status_code == 302
    assert correct(box, sam, 5, correct_name="Mina Pottage").status_code == 302
    shown = html.unescape(page(sam, "/calls/5"))
    assert "Mina Pottage (corrected)" in shown and "%s (corrected)" % NAME not in shown
    assert len(corrections(box)) == 2 and len(audited(box)) == 2


def name_calls(box, name, call_ids):
    """Give ``call_ids`` the caller-ID name ``name`` in the call log (as the line sent it)."""
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    with db:
        db.execute(
            "UPDATE calls SET name = ? WHERE id IN (%s)" % ",".join("?" * len(call_ids)), (name, *call_ids)
        )
    db.close()


@pytest.mark.parametrize("searched", ["acme", "ac", "switchboard", "Acme Supplies"])
def test_a_corrected_call_is_not_found_by_the_name_it_was_corrected_from(box, people, searched):
    """The corrected name is the call's: neither the caller-ID's name (by its trigram index
    or, for two letters, without it) nor the phonebook's finds it any more."""
    sam = people["sam"]
    name_calls(box, "ACME SWITCHBOARD", [5, 9])  # both on sam's line 1
    resp = box.post(
        sam, "/phonebook", {"number": "020 7946 0004", "name": "Acme Supplies"}, token_from="/phonebook"
    )
    assert resp.status_code == 302
    before = [9, 5] if searched != "Acme Supplies" else [5]
    assert ids(page(sam, "/calls?name=" + searched)) == before
    assert correct(box, sam, 5).status_code == 302
    assert ids(page(sam, "/calls?name=" + searched)) == [i for i in before if i != 5]


def test_a_corrected_call_is_found_by_its_corrected_name_in_the_list_and_its_csv(box, people):
    sam = people["sam"]
    name_calls(box, "ACME SWITCHBOARD", [5, 9])
    assert ids(page(sam, "/calls?name=pottage")) == []
    assert correct(box, sam, 5).status_code == 302
    for searched in ("pottage", "WILHELMINA P", "mina"):
        assert ids(page(sam, "/calls?name=" + searched)) == [5], searched
    rows = list(csv.DictReader(io.StringIO(sam.get("/calls.csv?name=pottage").get_data(as_text=True))))
    assert [(r["id"], r["corrected_name"]) for r in rows] == [("5", NAME)]
    # Its line's filter still applies: sue (line 3) finds nothing by it.
    assert ids(page(people["sue"], "/calls?name=pottage")) == []
    # Corrected again, the newest name is the one it is found by.
    assert correct(box, sam, 5, correct_name="Mina Brown").status_code == 302
    assert ids(page(sam, "/calls?name=pottage")) == [] and ids(page(sam, "/calls?name=brown")) == [5]
    # What the caller-ID sent stays readable on the call's page.
    assert "ACME SWITCHBOARD" in page(sam, "/calls/5")


def test_a_call_whose_corrected_name_was_erased_is_found_by_no_name(box, people):
    box.add_recordings([])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    assert correct(box, sam, 5).status_code == 302
    assert ids(page(sam, "/calls?name=pottage")) == [5]
    resp = box.post(
        sam,
        "/calls/5/erase-details",
        {"details_reason": "erasure request #3", "confirm": "yes"},
        token_from="/calls/5",
    )
    assert resp.status_code == 302
    assert ids(page(sam, "/calls?name=pottage")) == []


@pytest.mark.parametrize(
    "form, field, words",
    [
        ({"correct_name": "   "}, "correct_name", "The name: a name is needed."),
        ({"correct_name": "Jo\x00e"}, "correct_name", "control character"),
        ({"correct_name": "Card 4111 1111 1111 1111"}, "correct_name", "take out the card number"),
        ({"correct_name": "x" * 81}, "correct_name", "The name: a name is at most 80 characters."),
        ({"correct_reason": ""}, "correct_reason", "Say why the name is corrected"),
        ({"correct_reason": "bad\x1b[2Jreason"}, "correct_reason", "control"),
        ({"correct_reason": "x" * 501}, "correct_reason", "500"),
        ({"correct_reason": "ref 4111 1111 1111 1111"}, "correct_reason", "card number"),
        ({"correct_request": "99"}, "correct_request", "There is no request #99 among those you see"),
        ({"correct_request": "twelve"}, "correct_request", "There is no request 'twelve'"),
    ],
)
def test_bad_input_is_refused_saying_what_and_nothing_changes(box, people, form, field, words):
    resp = correct(box, people["sam"], 5, **form)
    assert resp.status_code == 400
    said = html.unescape(resp.get_data(as_text=True))
    assert words in said, said[-3000:]
    assert corrections(box) == [] and audited(box) == []


def test_the_same_name_again_is_nothing_to_change(box, people):
    assert correct(box, people["sam"], 5).status_code == 302
    resp = correct(box, people["sam"], 5, correct_reason="asked twice, the same name")
    assert resp.status_code == 400
    assert "Call 5 shows this name already: nothing to change." in html.unescape(resp.get_data(as_text=True))
    assert len(corrections(box)) == 1 and len(audited(box)) == 1


def test_a_request_of_another_line_is_refused_as_one_that_does_not_exist(box, people):
    resp = box.post(
        people["sue"],
        "/requests",
        {
            "kind": "rectification",
            "received": "2026-03-02",
            "requester": NAME,
            "contact": "line 3",
            "numbers": "",
            "details": "my name",
            "lines": "3",
        },
        token_from="/requests",
    )
    rid = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    resp = correct(box, people["sam"], 5, correct_request=str(rid))
    assert resp.status_code == 400
    assert "There is no request #%d among those you see" % rid in resp.get_data(as_text=True)
    assert corrections(box) == []


def test_erasing_the_callers_details_erases_the_corrected_name(box, people):
    box.add_recordings([])  # call 5 has no recording: its details are erased on their own
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    assert correct(box, sam, 5).status_code == 302
    resp = box.post(
        sam,
        "/calls/5/erase-details",
        {"details_reason": "erasure request ref 78", "confirm": "yes"},
        token_from="/calls/5",
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    shown = html.unescape(page(sam, "/calls/5"))
    assert NAME not in shown and "a corrected name, erased at the caller's request" in shown
    assert NAME not in html.unescape(page(sam, "/calls"))
    assert [r[2] for r in corrections(box)] == [""]
    assert any(e.details.get("names_erased") == 1 for e in audited(box, "call_note"))
    # Nothing left to correct once the details are gone.
    assert 'id="correct-form"' not in shown
    resp = correct(box, sam, 5, correct_name="Someone Else")
    assert resp.status_code == 409
    assert "were erased: there is no name to correct" in resp.get_data(as_text=True)


def test_the_corrected_name_is_sealed_at_rest(people_template, tmp_path):
    cipher = FieldCipher(os.urandom(32))
    box, people = people_template.box(tmp_path, cipher=cipher)
    try:
        assert correct(box, people["sam"], 5).status_code == 302
        box.web.db.checkpoint()
        assert scan(box.data_dir, [NAME]) == []
        assert "%s (corrected)" % NAME in html.unescape(page(people["sam"], "/calls/5"))
        assert ids(page(people["sam"], "/calls?name=pottage")) == [5]  # opened to be searched
    finally:
        box.close()


def test_a_corrected_name_left_in_clear_is_sealed_at_the_next_start(tmp_path):
    path = tmp_path / "web.db"
    db = WebDb(path)
    NameCorrections(db, lambda: 1_000_000).correct(5, NAME, "sam")
    db.close()
    cipher = FieldCipher(os.urandom(32))
    assert seal_web_db(str(path), cipher) == 1
    (stored,) = sqlite3.connect(path).execute("SELECT name FROM call_corrections").fetchone()
    assert cipher.open(stored, CORRECTED_NAME) == NAME
    assert seal_web_db(str(path), cipher) == 0


def test_a_subject_access_copy_holds_the_corrected_name(box, people):
    """Art. 15 after Art. 16: the search lists the corrected name with the notes, and the
    bundle's notes-and-names.json holds it (``corrected_names``)."""
    from firmware.sar import notes_and_names

    sam = people["sam"]
    assert correct(box, sam, 5).status_code == 302
    shown = html.unescape(page(sam, "/sar?number=02079460004"))
    assert "Call 5: name corrected to “%s”" % NAME in shown
    about = notes_and_names(box.web.notes, box.web.phonebook, "uk", box.web.corrections)
    calls = [box.services.calls.get(5), box.services.calls.get(1)]
    assert about(calls)["corrected_names"] == {"5": NAME}
    assert "corrected_names" not in about([box.services.calls.get(1)])


@pytest.mark.parametrize("tick, left", [("yes", False), (None, True)])
def test_erasing_the_recording_with_the_callers_details_erases_the_corrected_name(box, people, tick, left):
    """With the tick the caller's details go with the recording, the corrected name among
    them; without it they stay, the corrected name too."""
    box.add_recordings([1])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam = people["sam"]
    assert correct(box, sam, 1).status_code == 302
    form = {"erase_reason": "erasure request ref 77", "confirm": "yes", "details": tick}
    resp = box.post(sam, "/calls/1/erase", {k: v for k, v in form.items() if v}, token_from="/calls/1")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    assert ("%s (corrected)" % NAME in html.unescape(page(sam, "/calls/1"))) is left
    assert [r[2] != "" for r in corrections(box)] == [left]


def test_an_erasure_between_the_check_and_the_name_kept_erases_it_too(box, people, monkeypatch):
    """correct_name checks the caller's details are not erased, then keeps the name: another
    supervisor's erasure in between found no corrected name to erase, and the name stayed.
    It is erased once kept, audited as an erasure's are; the page says there is no name."""
    box.add_recordings([])  # call 5 has no recording: its details are erased on their own
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    sam, alice = people["sam"], people["alice"]
    token = box.token_of(alice, "/calls/5")
    kept = box.web.corrections.correct

    def erased_first(*args, **kwargs):
        form = {"details_reason": "erasure request ref 79", "confirm": "yes", "csrf_token": token}
        assert alice.post("/calls/5/erase-details", data=form).status_code == 302
        return kept(*args, **kwargs)

    monkeypatch.setattr(box.web.corrections, "correct", erased_first)
    resp = correct(box, sam, 5)
    assert resp.status_code == 409
    assert "were erased: there is no name to correct" in resp.get_data(as_text=True)
    assert [r[2] for r in corrections(box)] == [""]
    shown = html.unescape(page(sam, "/calls/5"))
    assert NAME not in shown and "a corrected name, erased at the caller's request" in shown
    assert any(e.details.get("names_erased") == 1 for e in audited(box, "call_note"))


def test_a_correction_notes_the_call_for_the_archive_to_put_again(box, people):
    """The archive puts a call's record again when its name is corrected (as after a tag or a
    legal hold): the correction notes it in the call log's ``archive_changed``, where the
    archive made it; on a box whose archive never ran there is no such table, and the
    correction is kept all the same."""
    calls_db = os.path.join(box.data_dir, "calls.db")
    assert correct(box, people["sam"], 5).status_code == 302
    db = sqlite3.connect(calls_db)
    try:
        db.execute("CREATE TABLE archive_changed (call_id INTEGER PRIMARY KEY)")
        db.commit()
        resp = correct(box, people["sam"], 5, correct_name="Willa Pottage")
        assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
        assert db.execute("SELECT call_id FROM archive_changed").fetchall() == [(5,)]
    finally:
        db.close()
    assert [r[2] for r in corrections(box)] == [NAME, "Willa Pottage"]
