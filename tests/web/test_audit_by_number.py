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


def test_a_number_that_is_not_one_is_quoted_as_typed(box, people):
    """The message's first letter was made a capital, and that letter was the number's: a
    number typed with a small letter o for its 0 read back "O1632 960123 is not a phone
    number", and "home" as "Home", not what was typed."""
    for typed in ("o1632 960123", "home"):
        resp = people["audrey"].get("/audit", query_string={"number": typed})
        assert resp.status_code == 400
        assert ">%s is not a phone number" % typed in resp.get_data(as_text=True), typed


def test_a_page_of_the_calls_list_that_showed_a_callers_call_is_found_and_says_why(box, people):
    """ "Who saw this number" missed everyone who saw it in the calls list: a page's entry
    (``list_viewed`` of ``calls``) names the calls it showed, and a search by number did not
    look at them. Now it finds the pages that showed one of the number's calls, and says
    which (shown in a list: call N); pages that showed none of them are left out."""
    other = a_second_call_of(box, "+442079460000")  # the same number, in another form
    log = box.services.audit
    t = box.clock() + DAY
    log.append("sam", "list_viewed", "calls", {"filter": "all calls", "rows": 3, "calls": [2, other, 1]}, t)
    log.append("sue", "list_viewed", "calls", {"filter": "all calls", "rows": 1, "calls": [2]}, t + S)
    log.append("sue", "list_viewed", "report", {"lines": [1], "period": "x", "callers": 4}, t + 2 * S)
    audrey = people["audrey"]

    page = audrey.get("/audit?number=02079460000").get_data(as_text=True)
    rows = re.findall(r'<tr class="action-(\w+)">.*?</tr>', page, re.S)
    assert rows == ["list_viewed"]
    row = re.search(r'<tr class="action-list_viewed">(.*?)</tr>', page, re.S).group(1)
    assert '<td data-label="Who">sam</td>' in row
    assert re.sub(r"<[^>]+>", "", re.search(r'<span class="why">(.*?)</span>', row).group(1)) == (
        "shown in a list: call %d, call 1" % other
    )
    assert 'id="lists-cut"' not in page

    # The CSV holds it too; and with another user, action or period, it is left out.
    assert [(r["actor"], r["action"]) for r in rows_of(audrey.get("/audit.csv?number=02079460000"))] == [
        ("sam", "list_viewed")
    ]
    assert rows_of(audrey.get("/audit.csv?number=02079460000&who=sue")) == []
    assert rows_of(audrey.get("/audit.csv?number=02079460000&action=playback")) == []
    assert rows_of(audrey.get("/audit.csv?number=02079460000&from=2026-03-01&to=2026-03-01")) == []
    assert len(rows_of(audrey.get("/audit.csv?number=02079460000&from=2026-03-03&to=2026-03-03"))) == 1


def test_every_page_is_found_through_the_index_and_one_not_whole_yet_is_said(box, people, monkeypatch):
    """The pages of the calls list that named a number's calls are found through the trail's
    index of the calls named, however many were shown since (LISTS_READ_MAX set to 1 here).
    While the index is not whole (a trail from before it, not yet indexed by the recorder)
    the entries it lacks are read newest first, at most LISTS_READ_MAX of them: the page says
    the index is not whole and that older ones were not searched, and the CSV, which cannot
    say it, is refused naming what to narrow (and writes no entry)."""
    from web.views import audit as audit_view

    monkeypatch.setattr(audit_view, "LISTS_READ_MAX", 1)
    log = box.services.audit
    t = box.clock() + DAY
    log.append("sam", "list_viewed", "calls", {"filter": "all calls", "rows": 1, "calls": [1]}, t)
    log.append("sue", "list_viewed", "calls", {"filter": "all calls", "rows": 1, "calls": [2]}, t + S)
    audrey = people["audrey"]

    page = audrey.get("/audit?number=02079460000").get_data(as_text=True)
    assert 'id="lists-cut"' not in page and 'id="index-pending"' not in page
    assert re.findall(r'<tr class="action-(\w+)"', page) == ["list_viewed"]
    assert [r["actor"] for r in rows_of(audrey.get("/audit.csv?number=02079460000"))] == ["sam"]

    db = sqlite3.connect(box.data_dir + "/audit.db")  # the index as before it was built
    with db:
        db.execute("DELETE FROM audit_calls")
        db.execute("UPDATE audit_calls_state SET covered_after = (SELECT max(seq) FROM audit)")
    db.close()
    page = audrey.get("/audit?number=02079460000").get_data(as_text=True)
    assert 'id="index-pending"' in page and "is not whole yet" in page
    assert 'id="lists-cut"' in page and "were not searched for this number" in page
    assert re.findall(r'<tr class="action-(\w+)"', page) == []
    before = len(log)
    resp = audrey.get("/audit.csv?number=02079460000")
    assert resp.status_code == 400 and "choose a shorter period" in resp.get_data(as_text=True)
    assert len(log) == before
    # Narrowed to the user, the one page is read and found.
    page = audrey.get("/audit?number=02079460000&who=sam").get_data(as_text=True)
    assert 'id="lists-cut"' not in page and re.findall(r'<tr class="action-(\w+)"', page) == ["list_viewed"]
    assert 'id="index-pending"' in page and "all of them" in page
    # Built, the index finds it again without a limit.
    assert log.build_calls_index() > 0
    page = audrey.get("/audit?number=02079460000").get_data(as_text=True)
    assert 'id="index-pending"' not in page and 'id="lists-cut"' not in page
    assert re.findall(r'<tr class="action-(\w+)"', page) == ["list_viewed"]


def test_a_report_whose_callback_list_named_a_callers_call_is_found_and_says_why(box, people, monkeypatch):
    """A report shown or downloaded shows its callback list's numbers, and its entry names
    each one's last missed call (``calls``), as a page of the calls list names its own; a
    search by number looked at the pages alone. Now it finds the reports that named one of
    the number's calls, and says so (named in a report's callback list: call N)."""
    db = sqlite3.connect(box.data_dir + "/calls.db")
    with db:  # missed on line 1 (sam's): 01632 960111 twice, then 01632 960222
        for hour, number in ((3, "01632960111"), (4, "+441632960111"), (5, "01632960222")):
            db.execute(
                "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number)"
                " VALUES (1, 'in', ?, ?, 1, ?)",
                (T0_US + hour * 3600 * S, T0_US + hour * 3600 * S + 20 * S, number),
            )
    ids = [
        r[0] for r in db.execute("SELECT id FROM calls WHERE started_at >= ? ORDER BY started_at", (T0_US,))
    ]
    _first, last, other = ids[-3:]  # the report names each caller's last missed call
    db.close()
    sam, audrey = people["sam"], people["audrey"]
    assert sam.get("/reports?from=2026-03-02&to=2026-03-02").status_code == 200
    assert sam.get("/reports/download?format=csv&from=2026-03-02&to=2026-03-02").status_code == 200

    page = audrey.get("/audit?number=01632+960111").get_data(as_text=True)
    rows = re.findall(r'<tr class="action-(\w+)">(.*?)</tr>', page, re.S)
    assert [action for action, _ in rows] == ["report", "list_viewed"]  # newest first
    for _action, row in rows:
        assert '<td data-label="Who">sam</td>' in row
        why = re.sub(r"<[^>]+>", "", re.search(r'<span class="why">(.*?)</span>', row).group(1))
        assert why == "named in a report's callback list: call %d" % last
    assert 'id="lists-cut"' not in page

    # The CSV holds them too; with an action, only that kind; with another user, none.
    csv_of = "/audit.csv?number=01632960111"
    assert [(r["actor"], r["action"], r["about"]) for r in rows_of(audrey.get(csv_of))] == [
        ("sam", "list_viewed", "report"),
        ("sam", "report", ""),
    ]
    assert [r["action"] for r in rows_of(audrey.get(csv_of + "&action=report"))] == ["report"]
    assert [r["action"] for r in rows_of(audrey.get(csv_of + "&action=list_viewed"))] == ["list_viewed"]
    assert rows_of(audrey.get(csv_of + "&who=sue")) == []
    assert rows_of(audrey.get(csv_of + "&action=playback")) == []
    # A number whose calls no report named (the harness's call 1, answered): none of them.
    assert "report" not in [r["action"] for r in rows_of(audrey.get("/audit.csv?number=02079460000"))]

    # Found through the index, the reports are not limited by LISTS_READ_MAX.
    from web.views import audit as audit_view

    monkeypatch.setattr(audit_view, "LISTS_READ_MAX", 1)
    page = audrey.get("/audit?number=01632960222").get_data(as_text=True)
    assert 'id="lists-cut"' not in page
    assert re.findall(r'<tr class="action-(\w+)"', page) == ["report", "list_viewed"]
    assert "call %d" % other in page
    assert len(rows_of(audrey.get("/audit.csv?number=01632960222"))) == 2
