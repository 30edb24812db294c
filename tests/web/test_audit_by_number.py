"""The audit trail of one person's calls: "show me every access to the recordings of this
caller last month, and by whom".

The page filtered by action, user and date only: an auditor had to find the caller's calls
on the Calls page and open each one's page, and a subject access release of them was on
none of those pages' filters. Now a number (in any form, as a subject access search finds
it) selects every entry about its calls, and the releases that named them."""

import csv
import io
import re
import sqlite3

from support.web import T0_US, S

DAY = 86400 * S


def a_second_call_of(box, number, line=3):
    """A call of ``number`` besides the harness's (call 1 has 02079460000); its id."""
    db = sqlite3.connect(box.data_dir + "/calls.db")
    with db:
        cur = db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced, number)"
            " VALUES (?, 'in', ?, ?, ?, 1, ?)",
            (line, T0_US + DAY, T0_US + DAY + 5 * S, T0_US + DAY + 60 * S, number),
        )
    db.close()
    return cur.lastrowid


def rows_of(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_every_entry_about_a_callers_calls_and_only_theirs(box, people):
    other = a_second_call_of(box, "+442079460000")  # the same number, in another form
    log = box.services.audit
    t = box.clock()
    log.append("sam", "playback", "1", {"line": 1, "duration_s": 3.0}, t)
    log.append("sam", "playback", "2", {"line": 2, "duration_s": 3.0}, t)  # another caller's
    log.append("sue", "export", str(other), {"line": 3, "reason": "complaint", "format": "wav"}, t + DAY)
    log.append("cli", "export", "call:%d" % other, {"reason": "police", "file": "x.wav"}, t + 2 * DAY)
    log.append(
        "sue", "disclosure", "disclosure:1", {"calls": [other], "recipient": "the caller"}, t + 3 * DAY
    )
    log.append("sam", "disclosure", "disclosure:2", {"calls": [2, 3], "recipient": "someone"}, t + 3 * DAY)
    audrey = people["audrey"]

    rows = rows_of(audrey.get("/audit.csv?number=020+7946+0000"))
    assert [(r["actor"], r["action"], r["about"]) for r in rows] == [
        ("sam", "playback", "1"),
        ("sue", "export", str(other)),
        ("cli", "export", "call:%d" % other),
        ("sue", "disclosure", "disclosure:1"),
    ]
    page = audrey.get("/audit?number=%2B44+20+7946+0000").get_data(as_text=True)
    shown = re.findall(r'<tr class="action-(\w+)"', page)
    assert shown == ["disclosure", "export", "export", "playback"]  # newest first
    assert 'value="+44 20 7946 0000"' in page and "number=%2B44+20+7946+0000" in page  # kept in the links
    viewed = log.entries(limit=1)[0]
    assert viewed.action == "audit_view" and viewed.details["filter"] == {"number": "+44 20 7946 0000"}

    # With the other filters: last month's exports of them, and by whom.
    rows = rows_of(audrey.get("/audit.csv?number=02079460000&action=export&from=2026-03-03&to=2026-03-03"))
    assert [(r["actor"], r["about"]) for r in rows] == [("sue", str(other))]

    # A number nobody called from: no entry.
    assert rows_of(audrey.get("/audit.csv?number=01632960999")) == []


def test_a_number_that_is_not_one_is_named_and_nothing_is_shown_or_written(box, people):
    log = box.services.audit
    before = len(log)
    resp = people["audrey"].get("/audit?number=01632+96O123")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "01632 96O123 is not a phone number" in page and 'class="action-' not in page
    assert len(log) == before  # no audit_view for a filter refused
    resp = people["audrey"].get("/audit.csv?number=12")
    assert resp.status_code == 400 and "give at least 4 of its digits" in resp.get_data(as_text=True)
    assert len(log) == before
    assert people["sam"].get("/audit?number=02079460000").status_code == 403
