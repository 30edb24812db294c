"""Callers' details past ``policy.retention.call_details_days``: the retention sweep removes
the number, caller-ID name, notes' texts and corrected names of the calls that ended that
long ago (on a real calls.db and web.db), not of a call on legal hold nor of one whose
recording is still kept (until it goes); the pages, the CSV and ``linekeeper calls`` say
"removed after its retention period", not "erased on request"; the sweep's audit entry
counts them and never holds a number; times, line and direction stay for reports."""

import csv
import html
import io
import re
import sqlite3

from firmware.calls.calllog import EXPIRED
from firmware.cli import _call_text
from web.services import StoreRecordings

from .test_retention_pages import retention_form

NUMBER_1 = "02079460000"  # call 1 (make_calls_db: call k's number is "0207946%04d" % (k-1))
NUMBER_2 = "02079460001"
NUMBER_5 = "02079460004"


def add_note(box, client, call_id, text):
    resp = box.post(client, "/calls/%d/notes" % call_id, {"note": text}, token_from="/calls/%d" % call_id)
    assert resp.status_code == 302


def kept(box, call_id):
    call = box.services.calls.get(call_id)
    return call["number"], call["absence"]


def test_the_sweep_removes_callers_details_past_their_period_but_not_held_or_recorded(box, people):
    box.add_recordings([1])  # call 1's recording is kept (no period for recordings)
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    with sqlite3.connect(box.data_dir + "/calls.db") as db:
        db.execute("INSERT INTO legal_holds (call_id, placed_at, placed_by) VALUES (2, 1, 'sam')")
    sam, ivan = people["sam"], people["ivan"]
    add_note(box, sam, 5, "Mrs Patel rang back, on 07700 900123")
    with sqlite3.connect(box.data_dir + "/web.db") as db:  # a name corrected on request
        db.execute(
            "INSERT INTO call_corrections (call_id, name, by_user, at_us, request) "
            "VALUES (5, 'Anita Patel', 'sam', 1, NULL)"
        )
    before = box.services.calls.get(5)
    # Not set (the default): a sweep leaves every caller's details, as before.
    box.sweeper.sweep()
    assert kept(box, 5) == (NUMBER_5, None)
    assert "details_removed" not in box.services.audit.entries(limit=1, action="retention_sweep")[0].details

    assert retention_form(box, ivan, call_details_days="30").status_code == 302
    result = box.sweeper.sweep()
    # 40 calls, 40 to 39 days old: all but the recorded one and the held one.
    assert result.details_removed == 38 and result.notes_removed == 1 and result.names_removed == 1
    assert kept(box, 1) == (NUMBER_1, None) and kept(box, 2) == (NUMBER_2, None)
    assert kept(box, 5) == (None, EXPIRED)
    after = box.services.calls.get(5)
    for key in ("line", "direction", "started_at", "answered_at", "ended_at", "duration_s"):
        assert after[key] == before[key], key
    with sqlite3.connect(box.data_dir + "/web.db") as db:
        assert db.execute("SELECT note FROM call_notes WHERE call_id = 5").fetchall() == [("",)]
        assert db.execute("SELECT name FROM call_corrections WHERE call_id = 5").fetchall() == [("",)]
    (entry,) = box.services.audit.entries(limit=1, action="retention_sweep")
    assert entry.details["details_removed"] == 38 and entry.details["details_days"] == 30
    assert entry.details["notes_removed"] == 1 and entry.details["names_removed"] == 1
    assert "0207946" not in repr(entry.details)

    # Said as removed by retention, never as erased on request.
    page = html.unescape(sam.get("/calls/5").get_data(as_text=True))
    assert "removed after its retention period" in page and NUMBER_5 not in page
    assert "(text removed after its retention period)" in page and "07700" not in page
    assert "erased on request" not in page, re.findall(r".{80}erased on request.{80}", page)
    assert "Anita Patel" not in page, re.findall(r".{200}Anita Patel.{80}", page, re.S)
    row = re.search(r'<tr id="call-5".*?</tr>', sam.get("/calls").get_data(as_text=True), re.S).group(0)
    assert "removed after its retention period" in row and "erased" not in row
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(sam.get("/calls.csv").get_data(as_text=True)))}
    assert rows["5"]["number"] == "removed after its retention period"
    assert rows["1"]["number"] == NUMBER_1
    listed = sam.get("/calls?number=expired").get_data(as_text=True)
    assert 'id="call-5"' in listed and 'id="call-1"' not in listed
    said = _call_text(box.services.calls.get(5), set())
    assert "removed after its retention period" in said and "erased" not in said

    # Nothing is left to erase on request, and the page offers no form for it.
    assert 'id="erase-details-form"' not in page and 'name="details_reason"' not in page
    resp = box.post(
        sam,
        "/calls/5/erase-details",
        {"details_reason": "erasure request ref 78", "confirm": "yes"},
        token_from="/calls/5",
    )
    text = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and "were removed after their retention period already" in text

    # Nothing more the next time; once call 1's recording goes, its details go with it.
    assert box.sweeper.sweep().details_removed == 0
    assert retention_form(box, ivan, call_details_days="30", default_days="30").status_code == 302
    result = box.sweeper.sweep()
    assert result.deleted == 1 and result.details_removed == 1 and kept(box, 1) == (None, EXPIRED)
    assert kept(box, 2) == (NUMBER_2, None)  # held: kept while the hold stands


def test_a_call_ended_within_the_period_keeps_its_details(box, people):
    retention_form(box, people["ivan"], call_details_days="365")
    assert box.sweeper.sweep().details_removed == 0
    assert kept(box, 5) == (NUMBER_5, None)


def test_a_long_removal_goes_in_batches_and_says_how_far_it_is(box, people, monkeypatch, caplog):
    """The call log is locked a batch at a time (a million calls are not one transaction),
    and the log says how many so far."""
    import logging

    from firmware.policy import sweeper

    monkeypatch.setattr(sweeper, "DETAILS_BATCH", 7)
    commits = box.calllog.commits
    retention_form(box, people["ivan"], call_details_days="30")
    with caplog.at_level(logging.INFO, logger="firmware.policy.sweeper"):
        assert box.sweeper.sweep().details_removed == 40
    assert box.calllog.commits - commits == 6  # 7 + 7 + 7 + 7 + 7 + 5
    assert "callers' details of 35 call(s) removed so far" in caplog.text
    assert "callers' details of 40 call(s) removed after 30 days" in caplog.text


def test_a_card_that_refuses_stops_the_removal_and_the_next_sweep_finishes(box, people, monkeypatch):
    retention_form(box, people["ivan"], call_details_days="30")
    real = box.calllog.expire_details

    def refused(ids, ended_by_us):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(box.calllog, "expire_details", refused)
    result = box.sweeper.sweep()
    assert result.details_removed == 0 and "disk I/O error" in result.details_error
    assert kept(box, 5) == (NUMBER_5, None)
    (entry,) = box.services.audit.entries(limit=1, action="retention_sweep")
    assert entry.details["details_error"] == "disk I/O error"
    monkeypatch.setattr(box.calllog, "expire_details", real)
    assert box.sweeper.sweep().details_removed == 40 and kept(box, 5) == (None, EXPIRED)


def test_the_retention_page_previews_what_the_period_removes_and_what_waits(box, people):
    """Before saving (the Preview button) and after: how many calls' details a sweep now
    would remove, and how many wait for their recording or their hold; what the sweep
    then removes is that count."""
    box.add_recordings([1])
    with sqlite3.connect(box.data_dir + "/calls.db") as db:
        db.execute("INSERT INTO legal_holds (call_id, placed_at, placed_by) VALUES (2, 1, 'sam')")
    box.services.wall_us = box.box_clock.wall_us  # the sweeper's time (one clock on a box)
    ivan = people["ivan"]
    assert 'id="preview-details"' not in ivan.get("/retention").get_data(as_text=True)
    page = retention_form(box, ivan, call_details_days="1", action="preview").get_data(as_text=True)
    line = re.search(r'<p id="preview-details">(.*?)</p>', page, re.S).group(1)
    assert "1 day after the call ended" in line and "<strong>38</strong> calls; 2 more wait" in line
    assert box.config_store.get().policy.retention.call_details_days is None  # nothing saved
    assert retention_form(box, ivan, call_details_days="1").status_code == 302
    assert "<strong>38</strong> calls" in ivan.get("/retention").get_data(as_text=True)
    assert box.sweeper.sweep().details_removed == 38
    line = re.search(
        r'<p id="preview-details">(.*?)</p>', ivan.get("/retention").get_data(as_text=True), re.S
    )
    assert "<strong>0</strong> calls; 2 more wait" in line.group(1)


def test_the_retention_help_says_what_the_callers_details_period_removes_and_what_waits(people):
    page = html.unescape(people["ivan"].get("/help/retention").get_data(as_text=True))
    said = re.search(r'<p id="help-call-details">(.*?)</p>', page, re.S).group(1)
    assert "Callers' details in the call log" in said and "removed after its retention period" in said
    assert "legal hold" in said and "1 day" in said


def test_a_report_over_calls_whose_details_were_removed_still_adds_up(box, people):
    """The month's report counts the same calls, by line and direction, before and after
    the removal: only the callback list loses the numbers it can no longer name."""
    import datetime
    import os

    from firmware.reports.compute import build_report
    from firmware.reports.period import parse_period

    period = parse_period(datetime.date(2026, 3, 1), datetime.date(2026, 3, 31))
    path = os.path.join(box.data_dir, "calls.db")
    before = build_report(path, period)
    retention_form(box, people["ivan"], call_details_days="30")
    assert box.sweeper.sweep().details_removed == 40
    after = build_report(path, period)
    assert after["lines"] == before["lines"] and after["box"]["calls"] == before["box"]["calls"] > 0


def test_the_batches_removed_before_the_card_refused_are_checkpointed_all_the_same(box, people, monkeypatch):
    """The batches committed before a refusal leave no copy of the old numbers in the WAL."""
    import os

    from firmware.policy import sweeper

    monkeypatch.setattr(sweeper, "DETAILS_BATCH", 7)
    retention_form(box, people["ivan"], call_details_days="30")
    real, tries = box.calllog.expire_details, []

    def second_refused(ids, ended_by_us):
        tries.append(ids)
        if len(tries) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real(ids, ended_by_us)

    monkeypatch.setattr(box.calllog, "expire_details", second_refused)
    result = box.sweeper.sweep()
    assert result.details_removed == 7 and result.details_error == "disk I/O error"
    removed = [c for c in range(1, 41) if box.services.calls.get(c)["absence"] == EXPIRED]
    assert len(removed) == 7
    on_card = b"".join(
        open(os.path.join(box.data_dir, name), "rb").read() for name in ("calls.db", "calls.db-wal")
    )
    for call_id in removed:
        assert ("0207946%04d" % (call_id - 1)).encode() not in on_card, call_id
    assert b"02079460039" in on_card  # call 40's, not removed: the bytes are searched indeed
