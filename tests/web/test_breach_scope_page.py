"""The Breach scope page: `linekeeper breach-scope` on the web, for auditors.

A DPO with 72 hours to report a misused account to the ICO had the command alone, on the
box's console with an auditor's password file; the web UI's auditor had the Audit trail
page's entries, call ids without their numbers. Now the auditor picks an account and a
period, sees how many calls, recordings and distinct callers' numbers, and downloads the
command's CSV: audited as the command is, before anything is read, and refused to every
other role."""

import csv
import html
import io
import json
import re
import sqlite3

from support.web import T0_US, S, add_calls

DAY = 86400 * S
APRIL = T0_US + 30 * DAY  # 2026-04-01T09:00:00Z, after the people's setup logins
QUERY = "/audit/breach-scope?account=sam&from=2026-04-01&to=2026-04-30"


def misuse(box):
    """What sam did in April: two calls of line 1 and one of line 2, a list downloaded, a
    login from two addresses and a failed one; sue's and March's are not sam's April."""
    log = box.services.audit
    log.append("sam", "login", "sam", {"address": "192.0.2.7"}, APRIL)
    log.append("sam", "call_viewed", "1", {"line": 1, "address": "192.0.2.7"}, APRIL + 1)
    log.append("sam", "playback", "1", {"line": 1, "address": "192.0.2.7"}, APRIL + 2)
    log.append("sam", "export", "call:2", {"line": 2, "reason": "=HYPERLINK(1)"}, APRIL + 3)
    log.append("sam", "playback", "5", {"line": 1}, APRIL + 4)
    log.append("sam", "export_list", "calls", {"rows": 40, "filter": "line 1"}, APRIL + 5)
    log.append("sam", "login_failed", None, {"address": "198.51.100.9"}, APRIL + 6)
    log.append("sue", "playback", "3", {"line": 3}, APRIL + 7)
    log.append(
        "sam", "correct_details", "5", {"line": 1, "fields": ["name"], "reason": "request 4"}, APRIL + 8
    )
    log.append("sam", "playback", "9", {"line": 1}, APRIL + 31 * DAY)  # May


def scope_entries(box):
    return [e for e in box.services.audit.entries(limit=50) if e.action == "breach_scope"]


def test_an_auditor_sees_the_scope_audited_before_it_is_read(box, people):
    misuse(box)
    audrey = people["audrey"]
    head = box.services.audit.head()
    resp = audrey.get(QUERY)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200, page[:500]
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert found["calls"] == "3"  # calls 1, 2 and 5
    assert found["recordings"] == "3"  # 1 played, 2 exported, 5 played
    assert found["numbers"] == "3"
    assert found["lines"] == "1, 2"
    # The caller's name of call 5 it corrected: an alteration, counted apart.
    assert html.unescape(found["altered"]) == (
        "1 call whose caller's name it corrected, on line 1; their callers are among the distinct numbers"
    )
    # Said as every page says a time: the box's day and zone, not ISO in UTC.
    assert found["first"] == found["last"] == "Wed 1 Apr 2026, 10:00:00 BST"
    at = "Wed 1 Apr 2026, 10:00:00 BST"
    assert found["logins"] == "1 (first %s, last %s), 1 failed" % (at, at)
    assert found["addresses"] == "192.0.2.7, 198.51.100.9"
    # Its heading's days too: it read "sam, 2026-04-01 to 2026-04-30".
    assert '<h2 id="scope-heading">sam, Wed 1 Apr - Thu 30 Apr 2026</h2>' in page
    # The calls list it downloaded, by the calls it held (not "1 list").
    assert found["held_calls"].startswith("calls list downloaded 1 time: 40 rows (calls, each with")
    assert "up to that many more calls and callers were exposed" in found["held_calls"]
    # One entry, before the scope was read: the scope's own entry is after the trail's head.
    (entry,) = scope_entries(box)
    assert entry.seq == head[0] + 1 and entry.actor == "audrey" and entry.target == "sam"
    assert {k: entry.details[k] for k in ("account", "from", "to", "via")} == {
        "account": "sam",
        "from": "2026-04-01",
        "to": "2026-04-30",
        "via": "web",
    }


def test_the_csv_is_the_commands_spreadsheet_safe_and_audited(box, people):
    misuse(box)
    audrey = people["audrey"]
    page = audrey.get(QUERY).get_data(as_text=True)
    link = re.search(r'<a id="scope-csv" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    resp = audrey.get(link)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "breach-scope-sam-2026-04-01-2026-04-30.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["action"], r["call_id"], r["line"], r["number"]) for r in rows] == [
        ("login", "", "", ""),
        ("call_viewed", "1", "1", "02079460000"),
        ("playback", "1", "1", "02079460000"),
        ("export", "2", "2", "02079460001"),
        ("playback", "5", "1", "02079460004"),
        ("export_list", "", "", ""),
        ("login_failed", "", "", ""),
        ("correct_details", "5", "1", "02079460004"),
    ]
    exported = rows[3]["details"]
    assert "HYPERLINK" in exported and not exported.startswith("=")  # never a formula
    csv_entry, page_entry = scope_entries(box)  # newest first
    assert csv_entry.details["download"] == "csv" and "download" not in page_entry.details


def test_the_audit_page_links_to_it(box, people):
    page = people["audrey"].get("/audit").get_data(as_text=True)
    assert 'id="breach-scope" href="/audit/breach-scope"' in page


def test_the_form_alone_reads_and_writes_nothing(box, people):
    before = len(box.services.audit)
    resp = people["audrey"].get("/audit/breach-scope")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="breach-scope-form"' in page and 'id="scope-summary"' not in page
    assert '<option value="sam">' in page  # the accounts offered
    assert len(box.services.audit) == before  # the form alone is not a look at anyone


def test_every_other_role_is_refused_and_nothing_is_read(box, people):
    misuse(box)
    box.add_user(people["alice"], "stella", ["staff"], [4])
    clients = dict(people, stella=box.login("stella"))
    # Supervisors (sam, sue), an installer (ivan), an installer and supervisor (alice), staff.
    for name in ("sam", "sue", "ivan", "alice", "stella"):
        for url in (QUERY, QUERY.replace("breach-scope?", "breach-scope.csv?"), "/audit/breach-scope"):
            resp = clients[name].get(url)
            assert resp.status_code == 403, (name, url, resp.status_code)
    assert scope_entries(box) == []
    anonymous = box.client()
    assert "/login" in anonymous.get(QUERY).headers["Location"]
    assert scope_entries(box) == []


def test_bad_input_is_named_and_nothing_is_read_or_written(box, people):
    misuse(box)
    audrey = people["audrey"]
    before = len(box.services.audit)
    for query, field, said in (
        ("account=&from=2026-04-01&to=2026-04-30", "account", "Enter the user name of the account"),
        ("account=sam%07&from=2026-04-01&to=2026-04-30", "account", "no control characters"),
        ("account=" + "s" * 65 + "&from=2026-04-01&to=2026-04-30", "account", "at most 64 characters"),
        ("account=sam&from=&to=2026-04-30", "from", "Choose the first day"),
        ("account=sam&from=2026-04-01&to=", "to", "Choose the last day"),
        (
            "account=sam&from=2026-04-31&to=2026-05-01",
            "from",
            "The from date &#39;2026-04-31&#39; is not a date",
        ),
        ("account=sam&from=2026-04-01&to=April", "to", "The to date &#39;April&#39; is not a date"),
        ("account=sam&from=2026-04-30&to=2026-04-01", "to", "The date range is backwards"),
        ("account=sam&from=2025-01-01&to=2026-04-30", "to", "A date range covers at most 366 days"),
    ):
        resp = audrey.get("/audit/breach-scope?" + query)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, query
        error = re.search(r'id="error-%s" role="alert">([^<]*)<' % field, page)
        assert error and said in error.group(1), (query, error and error.group(1))
        assert 'id="scope-summary"' not in page
        resp = audrey.get("/audit/breach-scope.csv?" + query)
        assert resp.status_code == 400 and resp.mimetype == "text/plain", query
        assert "The breach scope was not made" in resp.get_data(as_text=True)
    # Several mistakes at once: each said as a sentence ("...).; Choose ..." before).
    said = audrey.get("/audit/breach-scope.csv?account=nobody").get_data(as_text=True)
    assert said.startswith("The breach scope was not made: ") and ".;" not in said, said
    assert "Choose the first day of the period. Choose the last day of the period." in said, said
    assert len(box.services.audit) == before  # nothing audited: nothing was read


def test_a_scope_that_cannot_be_read_says_so_and_is_audited_as_failed(box, people, monkeypatch):

    from web.views import audit as audit_views

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(audit_views, "scope", locked)
    resp = people["audrey"].get(QUERY)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 503 and 'id="scope-summary"' not in page
    assert "could not be read: database is locked" in page
    failed, asked = scope_entries(box)  # newest first: asked for before it was read
    assert "failed" not in asked.details and failed.details["failed"] == "database is locked"


def test_an_account_that_did_nothing_in_the_period_reads_none(box, people):
    page = people["audrey"].get(QUERY.replace("account=sam", "account=sue")).get_data(as_text=True)
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert found["calls"] == "0" and found["first"] == found["last"] == "none"
    assert found["logins"] == "0, 0 failed"


def test_wrong_passwords_typed_for_the_account_at_the_login_are_its_failed_logins(box, people):
    """A failed login is audited by ``anonymous`` (nobody is logged in yet) with the account
    typed as its target: someone guessing sam's password from an address of theirs is in
    sam's scope, with that address. It was left out (only entries by sam were read): the
    summary said 0 failed and never named the guesser's address."""
    guesser = box.client()
    guesser.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    assert box.try_login(guesser, "sam", "not sams password 1").status_code == 400
    (failed,) = [e for e in box.services.audit.entries(limit=5) if e.action == "login_failed"]
    assert failed.actor == "anonymous" and failed.target == "sam"  # as the login audits it
    audrey = people["audrey"]
    page = audrey.get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-03-31").get_data(as_text=True)
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert found["logins"].endswith(", 1 failed"), found["logins"]
    assert "203.0.113.66" in found["addresses"].split(", ")
    resp = audrey.get("/audit/breach-scope.csv?account=sam&from=2026-03-01&to=2026-03-31")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["action"], r["address"]) for r in rows if r["action"] == "login_failed"] == [
        ("login_failed", "203.0.113.66")
    ]
    # sue's failed login is not sam's.
    assert box.try_login(box.client(), "sue", "not sues password 1").status_code == 400
    page = audrey.get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-03-31").get_data(as_text=True)
    assert dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))["logins"].endswith(", 1 failed")


def test_an_account_typed_in_any_script_downloads_its_csv(box, people):
    """The account is typed (a removed one's name too), so any letters may come: the file's
    name keeps ASCII letters and digits. ``łukasz`` went into the Content-Disposition header
    as it was, which a WSGI server must send as ISO-8859-1 (PEP 3333): cheroot, the box's,
    cannot, and the auditor got a server error after the download was audited."""
    query = {"account": "łukasz 日本", "from": "2026-03-01", "to": "2026-03-31"}
    box.services.audit.append("łukasz 日本", "login", "łukasz 日本", {}, T0_US)  # removed since
    resp = people["audrey"].get("/audit/breach-scope.csv", query_string=query)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    header = resp.headers["Content-Disposition"]
    header.encode("iso-8859-1")  # raises for a header no server may send
    assert header == 'attachment; filename="breach-scope-_ukasz___-2026-03-01-2026-03-31.csv"'


def test_a_period_from_before_the_account_was_made_says_an_earlier_namesakes_entries_are_in_it(box, people):
    """The trail names accounts by name: a leaver's name given to a new account, the scope
    of the period before it was made held the leaver's entries as the new person's, the
    page headed "What sam did" with nothing to tell the two apart in a report to the ICO."""
    made = box.web.accounts.created_us("sam")
    box.services.audit.append("sam", "playback", "7", {"line": 1}, made - 3 * DAY)  # the namesake's
    audrey = people["audrey"]
    page = audrey.get("/audit/breach-scope?account=sam&from=2026-02-01&to=2026-03-31").get_data(as_text=True)
    notice = re.search(r'<p class="notice" id="earlier-account">([^<]*)</p>', page)
    assert notice, page[:3000]
    assert "The account sam was made on Mon 2 Mar 2026, 09:00:00 GMT, after the period began" in notice.group(
        1
    )
    assert "an earlier account of the same name" in notice.group(1)
    # A period from after it was made is the account's alone: nothing said.
    page = audrey.get(QUERY).get_data(as_text=True)
    assert 'id="scope-summary"' in page and 'id="earlier-account"' not in page
    # A removed account's name (no account now): nothing to tell apart.
    box.services.audit.append("gone", "login", "gone", {}, made - 2 * DAY)
    page = audrey.get("/audit/breach-scope?account=gone&from=2026-02-01&to=2026-03-31").get_data(as_text=True)
    assert 'id="scope-summary"' in page and 'id="earlier-account"' not in page


def test_a_report_downloaded_counts_the_callers_its_callback_list_named(box, people):
    """A report holds its callback list: callers' numbers, one entry each. Its download was
    audited with its period and lines alone, and the scope said "1 reports downloaded", no
    person exposed. It is audited with how many numbers its callback list held, and the
    scope adds them up, apart from the distinct numbers (which they are is not on record)."""
    # missed on line 1 (sam's), never called back: two callers, one of them twice
    add_calls(box.data_dir, ("01632960111", "01632960111", "01632960222"))
    got = people["sam"].get("/reports/download?format=json&from=2026-03-02&to=2026-03-02")
    assert got.status_code == 200
    held = len(json.loads(got.data)["callbacks"])
    assert held == 2
    entry = box.services.audit.entries(limit=1)[0]
    assert (entry.action, entry.details["callers"]) == ("report", held)
    page = people["audrey"].get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-03-31")
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page.get_data(as_text=True)))
    said = html.unescape(found["reports"])
    assert said.startswith("1 report downloaded (each a row of the CSV with its period and lines)")
    assert "the callback lists of 1 of them held %d callers' numbers" % held in said
    assert "up to that many more callers were exposed" in said


def test_the_callers_of_a_report_downloaded_and_shown_are_counted_once(box, people):
    """The same report downloaded and shown on screen named the same two callers: the scope
    added up their callback lists, four numbers, with nothing to say they were two people.
    A report's entry now names its callback list's calls, and the page says how many distinct
    callers they had, from the call log."""
    # missed on line 1 (sam's), never called back: two callers, one of them twice
    add_calls(box.data_dir, ("01632960111", "01632960111", "01632960222"))
    sam = people["sam"]
    assert sam.get("/reports/download?format=json&from=2026-03-02&to=2026-03-02").status_code == 200
    assert sam.get("/reports?from=2026-03-02&to=2026-03-02").status_code == 200
    page = people["audrey"].get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-03-31")
    found = {
        k: html.unescape(v)
        for k, v in re.findall(r'<dd id="s-([\w-]+)">([^<]*)</dd>', page.get_data(as_text=True))
    }
    assert "held 2 callers' numbers" in found["reports"]  # the download's, a count
    assert found["report_numbers"].startswith(
        "the callback lists of the 2 reports downloaded or shown whose entries name their callers' "
        "calls, made distinct from the call log (a caller in two reports, or missed on two lines, "
        "is one): 2 more distinct callers' numbers not among those above"
    )


def test_a_search_by_line_is_said_with_the_calls_it_showed(box, people):
    """A subject access search by line or day alone shows every caller's calls on them: the
    page said nothing of it (counted as no one)."""
    misuse(box)
    box.services.audit.append(
        "sam", "disclosure_search", None, {"lines": [1], "from": "2026-04-01", "found": 6}, APRIL + 9
    )
    page = people["audrey"].get(QUERY).get_data(as_text=True)
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert found["numbers"] == "3"
    assert html.unescape(found["searches"]).startswith(
        "1 subject access search not of one person's number (1 by line or day alone) showed 6 calls"
    )


def test_an_auditors_copies_of_the_trail_and_of_breach_scopes_are_lists_it_downloaded(box, people):
    """A misused auditor's account (a shared password, a leaver's) copied the whole trail
    with `linekeeper audit-export` and downloaded sam's breach scope: a CSV of the calls sam
    looked at, each with its caller's number. Its own scope listed neither, not even as a
    row. Each is now a list it downloaded (the trail's copy with its rows: entry 1 to its
    own); a look at the scope's page (counts only) and a refused copy are rows alone."""
    misuse(box)
    log = box.services.audit
    at = APRIL + 10
    whole = log.append("audrey", "audit_export", "audit", {"file": "a.csv", "handovers": 0, "via": "cli"}, at)
    refused = {"refused": "wrong password", "file": "b.csv", "via": "cli"}
    log.append("audrey", "audit_export", "audit", refused, at)
    looked = {"account": "sam", "from": "2026-04-01", "to": "2026-04-30", "via": "web"}
    log.append("audrey", "breach_scope", "sam", looked, at + 1)
    log.append("audrey", "breach_scope", "sam", dict(looked, download="csv"), at + 2)
    log.append("audrey", "breach_scope", "sue", dict(looked, account="sue", via="cli", file="s.csv"), at + 3)
    page = people["audrey"].get(QUERY.replace("account=sam", "account=audrey")).get_data(as_text=True)
    found = {k: html.unescape(v) for k, v in re.findall(r'<dd id="s-([\w-]+)">([^<]*)</dd>', page)}
    assert found["held_audit"].startswith("audit list downloaded 1 time: %d rows (audit trail" % whole.seq)
    assert found["held_breach-scope"] == (
        "breach-scope list downloaded 2 times: 0 rows (breach scopes: the calls an account looked at, "
        "each with its caller's number), and 2 downloads whose rows are not on record"
    )
    assert found["calls"] == "0"  # the calls in them are not on record one by one


def test_the_calls_the_account_erased_and_the_holds_it_released_are_counted(box, people):
    """Erasing a call's recording, or a caller's details, or releasing a legal hold is a
    loss of availability: a personal data breach too. sam's erasure of call 1 was no row of
    the scope and counted nowhere: the page said 0 calls, as if sam had done nothing."""
    log = box.services.audit
    log.append(
        "sam", "delete", "call:1", {"request": "erasure request", "reason": "x", "recordings": [1]}, APRIL
    )
    log.append("sam", "legal_hold", "2", {"line": 2, "on": False, "reason": "closed"}, APRIL + 1)
    audrey = people["audrey"]
    page = audrey.get(QUERY).get_data(as_text=True)
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert html.unescape(found["erased"]) == (
        "1 call whose recording or details it erased, 1 legal hold it released, on lines 1 and 2; "
        "their callers are among the distinct numbers"
    )
    assert found["numbers"] == "2"
    assert "1 call whose recording or details it erased" in html.unescape(
        re.search(r'<pre id="scope-text">([^<]*)</pre>', page).group(1)
    )
    rows = list(
        csv.DictReader(io.StringIO(audrey.get(QUERY.replace("scope?", "scope.csv?")).get_data(as_text=True)))
    )
    assert [(r["action"], r["call_id"], r["line"], r["number"]) for r in rows] == [
        ("delete", "1", "1", "02079460000"),
        ("legal_hold", "2", "2", "02079460001"),
    ]


def test_a_look_at_the_audit_trail_by_number_counts_that_person(box, people):
    """The Audit trail page filtered by a number shows every entry about that person's calls
    (audited as ``audit_view`` with its filter): the person is a data subject of the account
    that looked. It was not counted."""
    box.services.audit.append("sam", "playback", "1", {"line": 1}, T0_US - 1)
    audrey = people["audrey"]
    assert audrey.get("/audit", query_string={"number": "020 7946 0000"}).status_code == 200
    (view,) = [e for e in box.services.audit.entries(limit=5) if e.action == "audit_view"]
    assert view.details["filter"] == {"number": "020 7946 0000"} and view.details["rows"] >= 1
    query = "/audit/breach-scope?account=audrey&from=2026-03-01&to=2026-03-31"
    page = audrey.get(query).get_data(as_text=True)
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert found["numbers"] == "1" and found["calls"] == "0"
    rows = list(
        csv.DictReader(io.StringIO(audrey.get(query.replace("scope?", "scope.csv?")).get_data(as_text=True)))
    )
    assert [r["action"] for r in rows if r["action"] == "audit_view"] == ["audit_view"]


def test_a_name_no_account_ever_had_is_named_as_such_not_scoped_as_nothing(box, people):
    """A mistyped name showed an empty scope, "0 calls looked at": refused beside the field,
    nothing audited; a removed account's name, which has entries, is still scoped."""
    misuse(box)
    audit = box.services.audit
    before = audit.count()
    page = people["audrey"].get(QUERY.replace("account=sam", "account=samm")).get_data(as_text=True)
    assert "No account is named samm, and the audit trail has no entry by that name" in html.unescape(page)
    assert 'id="s-calls"' not in page and audit.count() == before
    audit.append("leaver", "playback", "1", {"line": 1}, APRIL + 9)  # an account removed since
    page = people["audrey"].get(QUERY.replace("account=sam", "account=leaver")).get_data(as_text=True)
    assert 'id="s-calls"' in page


def test_the_calls_list_and_reports_the_account_looked_at_on_screen_are_counted(box, people):
    """The calls list and a report on screen show callers' numbers as their downloads do, but
    only the downloads were audited: an account that read them on screen looked like one that
    did nothing. Each page shown is audited now (``list_viewed``), and the scope counts the
    pages and what they showed, apart from the distinct numbers, and within the account's
    first and last access."""
    # missed on line 1 (sam's), never called back: two callers
    add_calls(box.data_dir, ("01632960111", "01632960222"))
    sam = people["sam"]
    before = box.services.audit.head()[0]
    assert sam.get("/calls").status_code == 200
    assert sam.get("/calls?line=1").status_code == 200
    assert sam.get("/reports?from=2026-03-02&to=2026-03-02").status_code == 200
    mine = box.services.audit.entries(limit=10, actor="sam", after_seq=before)
    assert [(e.action, e.target) for e in mine] == [
        ("list_viewed", "calls"),
        ("list_viewed", "calls"),
        ("list_viewed", "report"),
    ]
    calls = sum(e.details["rows"] for e in mine[:2])
    page = people["audrey"].get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-12-31")
    found = {
        k: html.unescape(v)
        for k, v in re.findall(r'<dd id="s-([\w-]+)">([^<]*)</dd>', page.get_data(as_text=True))
    }
    assert found["shown_calls"].startswith(
        "calls list page shown on screen 2 times: %d calls (each with its caller's number)" % calls
    )
    assert found["shown_report"].startswith(
        "report shown on screen 1 time: 2 callers' numbers (in the reports' callback lists"
    )
    assert "up to that many more callers were exposed" in found["shown_report"]
    assert found["first"] != "none" and found["calls"] == "0"


def test_the_calls_only_shown_in_a_list_are_a_figure_of_their_own_on_the_page(box, people):
    """The calls list's pages name the calls they showed: the page says how many calls the
    account saw only in a list, apart from the calls it looked at (opened), which they are
    not folded into."""
    # two calls on line 1 (sam's)
    add_calls(box.data_dir, ("01632960111", "01632960222"))
    sam = people["sam"]
    shown = [int(x) for x in re.findall(r'<tr id="call-(\d+)"', sam.get("/calls").get_data(as_text=True))]
    assert len(shown) >= 2
    assert sam.get("/calls/%d" % shown[0]).status_code == 200  # opened: looked at, not "only listed"
    page = people["audrey"].get("/audit/breach-scope?account=sam&from=2026-03-01&to=2026-12-31")
    found = {
        k: html.unescape(v)
        for k, v in re.findall(r'<dd id="s-([\w-]+)">([^<]*)</dd>', page.get_data(as_text=True))
    }
    assert found["calls"] == "1"
    assert found["listed_only"].startswith("%d calls shown in a list only: " % (len(shown) - 1))
    assert "whose entries do not name" not in found["listed_only"]
    # Their callers made distinct from the call log; the page says which figures are sums.
    assert re.search(
        r"made distinct from the call log \(.*\): \d+ more distinct caller", found["listed_only"]
    )
    assert "An upper bound: the calls each page named are counted one by one" in found["shown_calls"]
    text = html.unescape(page.get_data(as_text=True))
    assert "so it is an upper bound.</p>" in text and 'id="scope-figures"' in text


def test_the_configuration_the_account_exported_is_said_with_its_number_patterns(box, people):
    """An installer's `linekeeper config export --user sam` (its entry ``config_export``)
    wrote the number rules' patterns in clear; the page said nothing of it."""
    details = {"via": "cli", "file": "/media/usb/box.json", "sections": ["config", "site"]}
    box.services.audit.append("sam", "config_export", "config", dict(details, number_patterns=3), APRIL)
    resp = people["audrey"].get(QUERY)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200, page[:500]
    found = dict(re.findall(r'<dd id="s-(\w+)">([^<]*)</dd>', page))
    assert html.unescape(found["config"]).startswith(
        "the box's configuration exported to a file 1 time (`linekeeper config export`): 3 number "
        "patterns in clear"
    )
    assert found["first"] == found["last"] == "Wed 1 Apr 2026, 10:00:00 BST"
