"""Erasing a caller's details on request: the number and name in the call log replaced by the
erased marker, the notes' text gone, no search or subject access finds the call; with the
recording or for a call that has none; refused on hold, for another line's supervisor, or on
bad input (nothing changes); audited without the number; no sealed copy left in calls.db."""

import html
import os
import re

import pytest

from firmware.calls.calllog import ERASED
from firmware.calls.callsearch import CallFilter
from firmware.sar import find_calls
from firmware.storage.fieldseal import FieldCipher
from web.services import StoreRecordings

# make_calls_db: call k is on line 1 + (k-1) % 4, number "0207946%04d" % (k-1).
NUMBER_1 = "02079460000"  # call 1, line 1 (sam's)
NUMBER_5 = "02079460004"  # call 5, line 1, no recording


def real_recordings(box, call_ids):
    box.add_recordings(call_ids)
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)


def erase(box, client, call_id, **form):
    data = {"erase_reason": "erasure request ref 77", "confirm": "yes", "details": "yes"}
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    return box.post(client, "/calls/%d/erase" % call_id, data, token_from="/calls/%d" % call_id)


def erase_details(box, client, call_id, **form):
    data = {"details_reason": "erasure request ref 78", "confirm": "yes"}
    data.update(form)
    return box.post(client, "/calls/%d/erase-details" % call_id, data, token_from="/calls/%d" % call_id)


def add_note(box, client, call_id, text):
    resp = box.post(client, "/calls/%d/notes" % call_id, {"note": text}, token_from="/calls/%d" % call_id)
    assert resp.status_code == 302


def found_by_number(box, number):
    return [c["id"] for c in box.services.calls.search(CallFilter(number=number))[0]]


def kept(box, call_id):
    call = box.services.calls.get(call_id)
    return call["number"], call["name"], call["absence"]


def no_number_in_audit(box, number):
    for e in box.services.audit.entries(limit=1000):
        assert number not in repr(e.details) and number not in (e.target or ""), e


def test_erasing_the_recording_takes_the_callers_details_too(box, people):
    real_recordings(box, [1])
    sam = people["sam"]
    add_note(box, sam, 1, "Mr Jones rang about his order, call him on 07700 900123")
    page = sam.get("/calls/1").get_data(as_text=True)
    assert re.search(r'name="details" value="yes" id="erase-details"[^>]* checked', page)
    assert found_by_number(box, NUMBER_1) == [1]
    resp = erase(box, sam, 1)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert box.store.all() == []
    assert kept(box, 1) == (None, None, ERASED)
    call = box.services.calls.get(1)  # what counts and reports need stays
    assert (call["line"], call["direction"], call["started_at"]) == (1, "in", "2026-03-02T09:00:00.000Z")
    assert call["answered"] and call["duration_s"] == 30.0
    # No search finds it by the number any more; the call's neighbours are untouched.
    assert found_by_number(box, NUMBER_1) == []
    assert found_by_number(box, "02079460001") == [2]
    assert find_calls(os.path.join(box.data_dir, "calls.db"), number=NUMBER_1) == []
    # The page, the list and its CSV say so; the note was there, its text is gone.
    page = html.unescape(sam.get("/calls/1").get_data(as_text=True))
    assert "erased on request" in page and NUMBER_1 not in page
    assert "(text erased on request)" in page and "Mr Jones" not in page
    row = re.search(r'<tr id="call-1".*?</tr>', sam.get("/calls").get_data(as_text=True), re.S).group(0)
    assert "erased on request" in row and "withheld" not in row
    csv_lines = sam.get("/calls.csv").get_data(as_text=True).splitlines()
    csv_row = next(line for line in csv_lines if line[:2] == "1,")
    assert "erased on request" in csv_row and NUMBER_1 not in csv_row
    assert [n["note"] for n in box.web.notes.of_call(1)] == [""]
    # Audited: who, why, that the details went; never the number.
    (asked,) = box.services.audit.entries(action="delete")
    assert asked.actor == "sam" and asked.target == "call:1" and asked.details["details"] is True
    notes_entry = box.services.audit.entries(action="call_note")[0]
    assert notes_entry.details["notes_erased"] == 1
    no_number_in_audit(box, NUMBER_1)
    assert box.sweeper.verify() == []
    assert 'id="erase-details-form"' not in page


def test_without_the_tick_only_the_recording_goes(box, people):
    real_recordings(box, [1])
    sam = people["sam"]
    add_note(box, sam, 1, "asked for a refund")
    assert erase(box, sam, 1, details=None).status_code == 302
    assert box.store.all() == []
    assert kept(box, 1) == (NUMBER_1, None, None)
    assert [n["note"] for n in box.web.notes.of_call(1)] == ["asked for a refund"]
    # The details can still go later, by the page's own form for a call with no recording.
    assert 'id="erase-details-form"' in sam.get("/calls/1").get_data(as_text=True)
    assert erase_details(box, sam, 1).status_code == 302
    assert kept(box, 1) == (None, None, ERASED)


def test_the_details_of_a_call_with_no_recording(box, people):
    real_recordings(box, [1])  # call 5 has none
    sam = people["sam"]
    add_note(box, sam, 5, "wants a call back")
    page = sam.get("/calls/5").get_data(as_text=True)
    assert 'id="erase-details-form"' in page and 'id="erase-form"' not in page
    resp = erase_details(box, sam, 5)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert kept(box, 5) == (None, None, ERASED)
    assert found_by_number(box, NUMBER_5) == []
    assert box.services.calls.search(CallFilter(absence=ERASED))[0][0]["id"] == 5
    assert [r["call_id"] for r in box.store.all()] == [1]  # the other call's recording untouched
    (asked,) = box.services.audit.entries(action="erase_details")
    assert asked.actor == "sam" and asked.target == "call:5"
    assert asked.details["reason"] == "erasure request ref 78"
    no_number_in_audit(box, NUMBER_5)
    page = html.unescape(sam.get("/calls/5").get_data(as_text=True))
    history = page.split('id="call-history"')[1]
    assert "Asked to erase the caller's details" in history
    assert 'id="erase-details-form"' not in page and "wants a call back" not in page
    # Asked again: refused, said so, nothing more in the trail but the refusal.
    resp = erase_details(box, sam, 5)
    assert resp.status_code == 409
    assert "erased already" in html.unescape(resp.get_data(as_text=True))
    assert box.sweeper.verify() == []


def test_refused_on_legal_hold_and_for_a_call_with_its_recording(box, people):
    real_recordings(box, [1])
    sam = people["sam"]
    box.services.recordings.set_legal_hold(1, True, by="sam")
    resp = erase(box, sam, 1)
    assert resp.status_code == 409 and "on legal hold" in resp.get_data(as_text=True)
    resp = erase_details(box, sam, 1)
    assert resp.status_code == 409 and "has a recording" in html.unescape(resp.get_data(as_text=True))
    # Past the page (the recorder asked directly): refused in the same words.
    from firmware.policy.sweeper import ErasureRefused

    for call in (lambda: box.sweeper.erase_details(1, "sam", "request"),):
        try:
            call()
        except ErasureRefused as exc:
            assert "on legal hold" in str(exc)
        else:
            raise AssertionError("erased on hold")
    assert kept(box, 1) == (NUMBER_1, None, None)
    assert [r["call_id"] for r in box.store.all()] == [1]
    assert box.services.audit.entries(action="delete") == []
    assert box.services.audit.entries(action="erase_details") == []


def test_only_a_supervisor_of_the_line_may_erase_details(box, people):
    real_recordings(box, [1])
    for name in ("sue", "audrey", "ivan"):  # line 3's supervisor, the auditor, the installer
        assert erase_details(box, people[name], 5).status_code in (403, 404), name
        assert erase(box, people[name], 1).status_code in (403, 404), name
    assert 'id="erase-details-form"' not in people["audrey"].get("/calls/5").get_data(as_text=True)
    assert kept(box, 5) == (NUMBER_5, None, None) and kept(box, 1) == (NUMBER_1, None, None)
    assert box.services.audit.entries(action="erase_details") == []


def test_bad_input_changes_nothing(box, people):
    real_recordings(box, [1])
    sam = people["sam"]
    add_note(box, sam, 5, "a note")
    for form, message in (
        ({"details_reason": "no"}, "Say why the caller's details are erased"),
        ({"details_reason": "x" * 501}, "At most 500 characters"),
        ({"confirm": ""}, "Tick the box to confirm"),
        ({"details": "maybe"}, "nothing else is understood"),
    ):
        resp = erase_details(box, sam, 5, **form)
        assert resp.status_code == 400, form
        assert message in html.unescape(resp.get_data(as_text=True))
    resp = erase(box, sam, 1, details="all")
    assert resp.status_code == 400 and "nothing else is understood" in resp.get_data(as_text=True)
    assert kept(box, 5) == (NUMBER_5, None, None) and kept(box, 1) == (NUMBER_1, None, None)
    assert [r["call_id"] for r in box.store.all()] == [1]
    assert [n["note"] for n in box.web.notes.of_call(5)] == ["a note"]
    assert box.services.audit.entries(action="erase_details") == []
    assert box.services.audit.entries(action="delete") == []


def test_a_call_still_going_on_keeps_its_details(box, people):
    with box.calllog._db:
        box.calllog._db.execute("UPDATE calls SET ended_at = NULL WHERE id = 5")
    resp = erase_details(box, people["sam"], 5)
    assert resp.status_code in (404, 409)  # no form is offered; asked anyway, refused
    assert kept(box, 5) == (NUMBER_5, None, None)


def test_the_sar_search_no_longer_finds_the_call(box, people):
    real_recordings(box, [])
    sam = people["sam"]
    assert "02079460004" in sam.get("/sar?number=02079460004").get_data(as_text=True)
    assert erase_details(box, sam, 5).status_code == 302
    page = sam.get("/sar?number=02079460004").get_data(as_text=True)
    assert 'id="sar-found">No calls found for 02079460004 on your lines.' in page


def scan(data_dir, needle):
    """Which of calls.db and its WAL hold ``needle`` (bytes)."""
    found = []
    for name in ("calls.db", "calls.db-wal"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                if needle in f.read():
                    found.append(name)
    return found


def test_no_copy_of_the_sealed_number_is_left_in_calls_db(people_template, tmp_path):
    cipher = FieldCipher(os.urandom(32))
    box, people = people_template.box(tmp_path, cipher=cipher)
    try:
        real_recordings(box, [])
        box.calllog.seal_clear_fields()  # the calls as a sealing box keeps them
        box.calllog._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sealed = cipher.seal(NUMBER_5, "number").encode()
        other = cipher.seal("02079460005", "number").encode()
        assert scan(box.data_dir, sealed) and scan(box.data_dir, other)
        resp = erase_details(box, people["sam"], 5)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        # Neither in the row nor in the search's number indexes, nor in the WAL.
        assert scan(box.data_dir, sealed) == []
        assert scan(box.data_dir, other)  # another caller's call keeps its (sealed) number
    finally:
        box.close()


def test_no_posting_of_the_erased_call_is_left_in_the_search_index(box, people):
    """A box without the MCU keeps its numbers and names in clear, with trigram indexes
    for the "contains" search. An FTS5 index keeps a changed row's old postings (from
    which the number can be spelled again) until its segments merge: the erasure merges
    them, so the file itself holds none of the erased call's, not only the searches."""
    import sqlite3

    from support.fts5leaves import rows

    real_recordings(box, [1])
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    try:
        assert 5 in rows(db, "calls_number_fts")  # the reading is real
        resp = erase_details(box, people["sam"], 5)
        assert resp.status_code == 302, resp.get_data(as_text=True)
        assert 5 not in rows(db, "calls_number_fts") and 6 in rows(db, "calls_number_fts")
        assert 5 not in rows(db, "calls_name_fts")
    finally:
        db.close()


def test_beside_a_running_recorder_the_recorder_erases_the_details(box, tmp_path):
    """Split services: the web UI asks the recorder, the call log's writer; a refusal comes
    back in its words."""
    from types import SimpleNamespace

    from firmware.control import ControlClient, ControlError, ControlServer, recorder_handlers
    from web.remote import RemoteRetention

    box.add_recordings([1])
    recorder = SimpleNamespace(
        status=SimpleNamespace(snapshot=dict), clock=SimpleNamespace(wall_us=int), retention=box.sweeper
    )
    server = ControlServer(str(tmp_path / "control.sock"), recorder_handlers(recorder))
    server.start()
    client = ControlClient(str(tmp_path / "control.sock"))
    try:
        remote = RemoteRetention(client, box.sweeper)
        assert remote.erase(1, "sam", "erasure request ref 9", details=True) == 1
        remote.erase_details(5, "sam", "erasure request ref 10")
        with pytest.raises(ControlError, match="erased already"):
            remote.erase_details(5, "sam", "erasure request ref 10")
    finally:
        client.close()
        server.stop()
    assert kept(box, 1) == (None, None, ERASED) and kept(box, 5) == (None, None, ERASED)
    assert kept(box, 2) == ("02079460001", None, None)


def test_notes_left_by_a_failure_after_the_recorder_erased_are_erased_again(box, people, monkeypatch):
    """The recorder erased the caller's details, then the web UI failed before the notes'
    text went: the page offers the form again, and it finishes the job."""
    real_recordings(box, [1])
    sam = people["sam"]
    add_note(box, sam, 5, "wants a call back on Tuesday")
    notes = type(box.web.notes)

    def fails(self, call_id, audited=None):
        raise OSError("the card refused the write")

    with monkeypatch.context() as failing:
        failing.setattr(notes, "erase_of_call", fails)
        refused = erase_details(box, sam, 5)  # the card's refusal said (web/unreadable.py)
        assert refused.status_code == 503 and "the card refused the write" in refused.get_data(as_text=True)
    assert kept(box, 5) == (None, None, ERASED)
    page = html.unescape(sam.get("/calls/5").get_data(as_text=True))
    assert 'id="erase-details-form"' in page  # the job is not finished
    assert box.web.db.one("SELECT count(*) FROM call_notes WHERE call_id = 5 AND note != ''")[0] == 1
    resp = erase_details(box, sam, 5)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert box.web.db.one("SELECT count(*) FROM call_notes WHERE call_id = 5 AND note != ''")[0] == 0
    page = html.unescape(sam.get("/calls/5").get_data(as_text=True))
    assert 'id="erase-details-form"' not in page and "wants a call back" not in page
    assert erase_details(box, sam, 5).status_code == 409


def test_the_call_pages_heading_says_in_words_whose_details_were_erased(box, people):
    """An erased call's page is headed "Call 5: from a caller whose details were erased on
    request", not "Call 5: from erased on request"; a call with its number keeps it."""
    real_recordings(box, [1])  # call 5 has none
    sam = people["sam"]
    page = sam.get("/calls/5").get_data(as_text=True)
    assert '<h1>Call 5: from <span class="number">%s</span></h1>' % NUMBER_5 in page
    resp = erase_details(box, sam, 5)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = sam.get("/calls/5").get_data(as_text=True)
    assert "<h1>Call 5: from a caller whose details were erased on request</h1>" in page


def test_the_call_page_does_not_say_the_caller_asked(box, people):
    """A business closing down erased its calls' details before handing the box on: each
    call's page then said "the caller's number and name were erased at their request", which
    no caller had made. The form takes any reason ("or it must go before its retention period
    ends"): the page says on request and where who asked and why is kept, as it says of the
    recording."""
    real_recordings(box, [1])
    sam = people["sam"]
    assert erase(box, sam, 1, erase_reason="business closing down").status_code == 302
    page = html.unescape(sam.get("/calls/1").get_data(as_text=True))
    said = re.search(r'<dd id="f-number">(.*?)</dd>', page, re.S).group(1)
    said = " ".join(re.sub(r"<[^>]+>", "", said).split())
    assert "at their request" not in said, said
    assert said == (
        "erased on request — the caller's number and name are gone from the call log (the audit "
        "trail says who asked and why); the call's times, line and outcome are kept"
    ), said
