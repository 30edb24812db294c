"""The reports page, its downloads, and the alarm banner and history."""

import csv
import html
import io
import json
import os
import re
import sqlite3
import subprocess

import pytest

from firmware.localtime import LocalTime, iso_to_us

from support.web import T0_US, add_calls

DAY = "from=2026-03-02&to=2026-03-02"


# A figure there is none of, as the page shows it: the CSV's empty cell.
NONE = '<span aria-hidden="true">—</span><span class="sr-only">none</span>'


def screen_tables(page):
    """The report tables of a page as lists of rows of cell text (a figure there is none of
    as the CSV's empty text)."""
    out = []
    for body in re.findall(r'<table class="report"[^>]*>(.*?)</table>', page, re.S):
        rows = [
            [
                "" if c == NONE else html.unescape(c)
                for c in re.findall(r"<t[hd](?: scope=\"\w+\")?>(.*?)</t[hd]>", row, re.S)
            ]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        ]
        out.append(rows)
    return out


def csv_tables(text):
    """The CSV's tables (after each title row), blank-row separated, as lists of rows."""
    blocks, current = [], []
    for row in list(csv.reader(io.StringIO(text)))[2:]:
        if not row:
            if len(current) > 2:  # title, header, rows: a table with rows
                blocks.append(current[1:])
            current = []
        else:
            current.append(row)
    return blocks


def access_by_user(client, query):
    """The report page's playbacks and exports by user: ``{user: [played, exported,
    refused]}``, {} when the page has no such table (nobody did either)."""
    tables = screen_tables(client.get("/reports?" + query).get_data(as_text=True))
    found = [t for t in tables if t[0][0] == "User"]
    return {row[0]: row[1:] for row in found[0][1:]} if found else {}


def test_supervisor_sees_their_lines_and_the_csv_equals_the_screen(box, people):
    page = people["sam"].get("/reports?" + DAY)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<svg" in text and "Calls by hour of day" in text
    tables = screen_tables(text)
    summary = {row[0]: row[1:] for row in tables[0]}
    assert summary["Figure"] == ["Box", "Line 1", "Line 2"]  # lines 1 and 2 only
    assert summary["Calls"] == ["20", "10", "10"]
    assert summary["Inbound"] == ["10", "10", "0"]
    assert summary["Talk time (h:mm:ss)"] == ["0:10:00", "0:05:00", "0:05:00"]
    download = people["sam"].get("/reports/download?format=csv&" + DAY)
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert csv_tables(download.get_data(as_text=True)) == tables
    last = box.services.audit.entries(limit=1)[0]
    assert (last.actor, last.action, last.details["format"], last.details["lines"]) == (
        "sam",
        "report",
        "csv",
        [1, 2],
    )


def test_the_answered_rate_is_to_a_tenth_of_a_percent_on_the_page_and_in_the_pdf(box, people):
    """A rate of 50 % read "50" beside "45.5", as if counted to the whole percent; the archive
    viewer wrote "50.0". One rule now, to 0.1 %, on the page, in the CSV and in the PDF."""
    sam = people["sam"]
    tables = screen_tables(sam.get("/reports?" + DAY).get_data(as_text=True))
    rates = [r for r in {row[0]: row[1:] for row in tables[0]}["Answered rate %"] if r]  # "": no inbound
    assert rates and all(re.fullmatch(r"\d{1,3}\.\d", r) for r in rates), rates
    assert ".0" in "".join(rates)  # a whole rate among them, said to 0.1 as the rest
    pdf = sam.get("/reports/download?format=pdf&" + DAY).data
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    line = [x for x in text.stdout.decode().splitlines() if "Answered rate %" in x]
    assert line and line[0].split()[3:] == rates, line


def test_auditor_sees_every_line_and_pdf(box, people):
    text = people["audrey"].get("/reports?" + DAY).get_data(as_text=True)
    assert screen_tables(text)[0][0] == ["Figure", "Box", "Line 1", "Line 2", "Line 3", "Line 4"]
    pdf = people["audrey"].get("/reports/download?format=pdf&" + DAY)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_bad_requests_get_a_message(box, people):
    sam = people["sam"]
    resp = sam.get("/reports?from=2026-03-05&to=2026-03-01")
    # A sentence, as the other pages' refusals are (the command line's words were lower case).
    assert resp.status_code == 400 and "The date range is backwards" in resp.get_data(as_text=True)
    # Its days as the pages write dates (it read "'to' (2026-03-01) is before 'from' (2026-03-05)").
    said = html.unescape(resp.get_data(as_text=True))
    assert "'to' (Sun 1 Mar 2026) is before 'from' (Thu 5 Mar 2026)" in said
    said = html.unescape(sam.get("/reports?from=2025-01-01&to=2026-03-02").get_data(as_text=True))
    assert "at most 366 days; Wed 1 Jan 2025 - Mon 2 Mar 2026 is 426 days" in said
    from firmware.reports import compute

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compute, "MAX_CALLS", 3)
        said = sam.get("/reports?" + DAY).get_data(as_text=True)
    assert "Mon 2 Mar 2026 holds 40 calls; a report holds at most 3" in said, said
    resp = sam.get("/reports?line=3&" + DAY)  # not granted to sam
    assert resp.status_code == 400 and "Choose one of your lines: 1, 2" in resp.get_data(as_text=True)
    resp = sam.get("/reports?line=%D9%A1&" + DAY)  # "١": int() took it for line 1
    assert resp.status_code == 400 and "Choose one of your lines: 1, 2" in resp.get_data(as_text=True)
    resp = sam.get("/reports/download?format=xls&" + DAY)
    assert resp.status_code == 400 and "The format is one of json, csv, pdf" in resp.get_data(as_text=True)
    assert "report" not in box.audit_actions()


def test_an_auditor_s_line_choice_speaks_of_the_box_s_lines_not_theirs(box, people):
    """An auditor, who has no lines of their own and reports on every line, was offered
    "all my lines" and told "Choose one of your lines"; a supervisor keeps those words."""
    audrey, sam = people["audrey"], people["sam"]
    page = audrey.get("/reports?" + DAY).get_data(as_text=True)
    assert '<option value="">every line</option>' in page and "all my lines" not in page
    resp = audrey.get("/reports?line=9&" + DAY)
    said = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Choose one of the box's lines: 1, 2, 3, 4." in html.unescape(said)
    assert '<option value="">all my lines</option>' in sam.get("/reports?" + DAY).get_data(as_text=True)


def test_the_download_links_are_left_off_the_printed_report(box, people):
    """A printed report carried "Download: JSON · CSV · PDF" under its period, links that do
    nothing on paper; every other page leaves its download links off (docs/web-ui.md)."""
    page = people["sam"].get("/reports?" + DAY).get_data(as_text=True)
    [period] = re.findall(r'<p id="report-period">(.*?)</p>', page, re.S)
    plain = re.sub(r'<span class="no-print"[^>]*>.*?</span>', "", period, flags=re.S)
    assert "Download" not in plain and 'id="download-pdf"' not in plain, plain
    assert 'id="download-pdf"' in period and "line 1, line 2." in plain


def test_an_alarm_that_comes_and_goes_is_one_row_of_the_banner(box, people):
    """A line whose voltage dipped every few minutes added a row to the top of every page
    each time, each with its own button: eight after an hour of the demo."""
    log = box.alarm_log
    rows = []
    for _ in range(3):
        rows.append(log.set("no_line_voltage", True, line=2, message="no line voltage"))
        box.clock.advance(60)
        log.set("no_line_voltage", False, line=2)
    other = log.set("disk_warning", True, message="the card is 85% full")
    page = people["sam"].get("/").get_data(as_text=True)
    banner = page[page.index('id="alarm-banner"') : page.index("Alarm history")]
    assert banner.count("<li ") == 2 and "3 times since" in banner and "Acknowledge all 3" in banner
    assert 'id="alarm-%d"' % rows[-1]["id"] in banner and 'id="alarm-%d"' % other["id"] in banner
    form = {"next": "/", "also": [str(r["id"]) for r in rows[:-1]]}
    assert box.post(people["sam"], "/alarms/%d/acknowledge" % rows[-1]["id"], form).status_code == 302
    page = people["sam"].get("/").get_data(as_text=True)
    assert "no line voltage" not in page and "85% full" in page
    acknowledged = [e for e in box.services.audit.entries(limit=100, action="alarm")
                    if e.details["event"] == "acknowledged"]  # fmt: skip
    assert sorted(e.target for e in acknowledged) == sorted("alarm:%d" % r["id"] for r in rows)


def test_the_banner_shows_the_words_of_the_occurrence_raised_last_though_the_clock_went_back(box, people):
    """A box restarted with its clock behind (a Pi without a clock, before the time was
    synchronised) raised the alarm again at an earlier time than one since cleared: the
    banner's row said "still on" in the cleared one's words and times."""
    log = box.alarm_log
    now = box.clock()
    old = log.set("keystore_backup_stale", True, message="no backup of the key store was made", wall_us=now)
    log.set("keystore_backup_stale", False, wall_us=now + 10**6)
    new = log.set(
        "keystore_backup_stale",
        True,
        message="the key store changed since its last backup",
        wall_us=now - 600 * 10**6,
    )
    page = people["sam"].get("/").get_data(as_text=True)
    banner = page[page.index('id="alarm-banner"') : page.index("Alarm history")]
    [row] = [li for li in banner.split("<li ")[1:] if "no current backup" in li]
    assert 'id="alarm-%d"' % new["id"] in row and 'id="alarm-%d"' % old["id"] not in row
    assert (
        "the key store changed since its last backup" in row
        and "no backup of the key store was made" not in row
    )
    assert "2 times since" in row and "still on" in row


def test_an_alarm_stays_on_the_dashboard_until_acknowledged(box, people):
    log = box.alarm_log
    row = log.set("no_line_voltage", True, line=2, message="no line voltage")
    assert people["audrey"].get("/").get_data(as_text=True).count('id="alarm-banner"') == 1
    log.set("no_line_voltage", False, line=2)  # the fault clears ...
    page = people["sam"].get("/").get_data(as_text=True)
    assert 'id="alarm-%d"' % row["id"] in page  # ... and is still shown
    assert box.post(people["audrey"], "/alarms/%d/acknowledge" % row["id"]).status_code == 403
    resp = box.post(people["sam"], "/alarms/%d/acknowledge" % row["id"])
    assert resp.status_code == 302
    assert 'id="alarm-banner"' not in people["sam"].get("/").get_data(as_text=True)
    history = people["audrey"].get("/alarms").get_data(as_text=True)
    assert "no line voltage" in history and "sam," in history
    again = box.post(people["sam"], "/alarms/%d/acknowledge" % row["id"])
    assert again.status_code == 400
    assert "already acknowledged by sam" in again.get_data(as_text=True)
    events = [
        e.details["event"] for e in box.services.audit.entries(limit=100, action="alarm", newest_first=False)
    ]
    assert events == ["raised", "cleared", "acknowledged"]


def test_the_health_panel_lists_every_alarm_on_as_the_banner_does(box, people):
    """The health panel listed only the recorder's alarms: under a banner saying the ICO
    registration had expired, still on, the dashboard said "Alarms: none". An alarm the
    recorder also lists (a line fault) is listed once; one cleared is not listed."""
    import dataclasses

    log = box.alarm_log
    log.set("ico_expired", True, message="the ICO registration ZA123456 expired on 2026-02-01")
    log.set("no_line_voltage", True, line=2, message="no line voltage")
    log.set("disk_warning", True, message="the card is 85% full")
    log.set("disk_warning", False)
    fault = "No voltage on the line: the phone line is unplugged or dead (line 2): no line voltage"
    recorder = box.web.services.health
    box.web.services = dataclasses.replace(
        box.web.services,
        health=lambda: dict(recorder(), alarms=[fault]),  # the recorder's board
    )
    page = html.unescape(people["sam"].get("/").get_data(as_text=True))
    listed = page[page.index('id="alarms"') :]
    listed = listed[: listed.index("</dd>")]
    assert "The ICO registration has expired: the ICO registration ZA123456 expired" in listed
    assert listed.count("No voltage on the line") == 1 and "85%" not in listed
    assert people["sam"].get("/api/alarms").get_json()["active"][:2] == [
        fault,
        "The ICO registration has expired: the ICO registration ZA123456 expired on 2026-02-01",
    ]


def test_a_concern_reaches_the_supervisors(box, people):
    resp = box.post(
        people["audrey"], "/concerns", {"concern": "Is line 4 really private?"}, token_from="/alarms"
    )
    assert resp.status_code == 302
    [row] = box.alarm_log.history()
    assert (row["kind"], row["message"]) == ("staff_concern", "from audrey: Is line 4 really private?")
    assert 'id="alarm-%d"' % row["id"] in people["sam"].get("/").get_data(as_text=True)
    short = box.post(people["audrey"], "/concerns", {"concern": "why"}, token_from="/alarms")
    assert short.status_code == 400 and "10 to 1000 characters" in short.get_data(as_text=True)
    assert len(box.alarm_log.history()) == 1


def test_the_banner_is_on_every_page_until_acknowledged(box, people):
    row = box.alarm_log.set("disk_warning", True, message="the card is 85% full")
    pages = {"sam": ["/", "/calls", "/reports", "/phonebook", "/alarms", "/documents/staff-notice"]}
    pages["ivan"] = ["/", "/settings", "/rules", "/retention", "/users", "/documents/checklist"]
    pages["audrey"] = ["/", "/audit", "/calls", "/retention/deletions", "/account/password"]
    for name, urls in pages.items():
        for url in urls:
            page = people[name].get(url).get_data(as_text=True)
            assert page.count('id="alarm-%d"' % row["id"]) == 1, (name, url)
    # Acknowledged from any page, the box returns to that page, and the banner is gone.
    resp = box.post(people["ivan"], "/alarms/%d/acknowledge" % row["id"], {"next": "/rules"}, "/rules")
    assert resp.status_code == 302 and resp.headers["Location"] == "/rules"
    assert 'id="alarm-banner"' in people["ivan"].get("/rules").get_data(as_text=True)  # still on
    box.alarm_log.set("disk_warning", False)
    for url in pages["ivan"]:
        assert 'id="alarm-banner"' not in people["ivan"].get(url).get_data(as_text=True), url


def test_acknowledging_never_sends_anyone_to_another_site(box, people):
    for n, target in enumerate(("https://evil.example/", "//evil.example/", "/\\evil.example")):
        row = box.alarm_log.set("clock_jump", True, message="jumped %d" % n)
        box.alarm_log.set("clock_jump", False)
        resp = box.post(people["sam"], "/alarms/%d/acknowledge" % row["id"], {"next": target})
        assert resp.status_code == 302 and resp.headers["Location"] == "/alarms", target


def test_the_report_page_names_its_charts_and_the_lines(box, people):
    """The charts had no visible title (a phone shows their labels too small to read), and
    the line picker said "Line 3" where the box calls it "Sales"."""
    form = box.setup_form(**{"line-1-name": "Sales"})
    for key in ("setup_code", "admin_name", "admin_password", "admin_confirm"):
        form.pop(key)
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    page = people["sam"].get("/reports?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    assert "<figcaption>Calls by hour of day" in page and "<figcaption>Calls per line" in page
    assert '<option value="1">line 1 (Sales)</option>' in page and '<option value="2">line 2</option>' in page


def test_a_period_not_over_says_so(box, people):
    """A report of next month was a full table of zeros, read as 'no calls happened'."""
    sam = people["sam"]  # the box's today: 2026-03-02 (the test clock)
    future = sam.get("/reports?from=2026-04-01&to=2026-04-30").get_data(as_text=True)
    assert 'id="not-over"' in future and "has not begun (today is Mon 2 Mar 2026)" in future
    current = sam.get("/reports?from=2026-03-01&to=2026-03-07").get_data(as_text=True)
    assert "is not over (today is Mon 2 Mar 2026): the figures are those so far" in current
    past = sam.get("/reports?from=2026-02-01&to=2026-02-28").get_data(as_text=True)
    assert 'id="not-over"' not in past


def test_the_pdf_of_a_period_not_over_says_so_as_the_page_does(box, people):
    """The page said the figures of this week were those so far, but its PDF (the copy
    that is filed or sent) printed them as a whole week's, without a word."""
    sam = people["sam"]  # the box's today: 2026-03-02 (the test clock)

    def pdf_text(query):
        pdf = sam.get("/reports/download?format=pdf&" + query).data
        run = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
        return " ".join(run.stdout.decode().split())

    said = "This period is not over (today is Mon 2 Mar 2026): the figures are those so far."
    assert said in pdf_text("from=2026-03-01&to=2026-03-07")
    assert "has not begun (today is Mon 2 Mar 2026)" in pdf_text("from=2026-04-01&to=2026-04-30")
    assert "not over" not in pdf_text("from=2026-02-01&to=2026-02-28")


def test_the_report_page_says_its_days_as_the_pages_write_dates(box, people):
    """Its period line read "2026-02-23 to 2026-03-01 (Europe/London)" where the report
    mail's subject and every page write "Mon 23 Feb - Sun 1 Mar 2026"; the date fields
    and the download's link keep the ISO dates a form and a file name take."""
    sam = people["sam"]
    week = sam.get("/reports?from=2026-02-23&to=2026-03-01").get_data(as_text=True)
    [line] = re.findall(r'<p id="report-period">([^<]*)', week)
    assert line.startswith("Mon 23 Feb - Sun 1 Mar 2026 (Europe/London), line 1, line 2."), line
    assert 'name="from" value="2026-02-23"' in week and "from=2026-02-23" in week
    day = sam.get("/reports?" + DAY).get_data(as_text=True)
    [line] = re.findall(r'<p id="report-period">([^<]*)', day)
    assert line.startswith("Mon 2 Mar 2026 (Europe/London),"), line


def test_each_table_is_named_by_its_heading_and_its_columns_are_headers(box, people):
    """A screen reader's list of tables read "table, 4 columns" for each of them ("When the
    box was not recording", "Lines not in service" among them: one loop draws them all);
    their headings' cells had no scope."""
    page = people["sam"].get("/reports?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    tables = re.findall(
        r'<h2 id="([^"]+)">([^<]+)</h2>\s*(?:<p class="scroll-hint">[^<]*</p>\s*)?(<table[^>]*>.*?</table>)',
        page,
        re.S,
    )
    assert len(tables) == page.count('<table class="report"') >= 2, re.findall(r"<h2[^>]*>[^<]*</h2>", page)
    for heading_id, name, table in tables:
        assert 'aria-labelledby="%s"' % heading_id in table.split(">", 1)[0], name
        header = re.search(r"<thead>(.*?)</thead>", table, re.S).group(1)
        assert header.count("<th") == header.count('<th scope="col">') > 0, (name, header)


def test_each_rows_first_cell_is_its_row_header(box, people):
    """The first column ("Figure", "Hour", "Number") was plain cells: a screen reader moving
    along a row of figures said "10, 10, 0" and not whose figures they were."""
    page = people["sam"].get("/reports?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    bodies = re.findall(r'<table class="report"[^>]*>.*?<tbody>(.*?)</tbody>', page, re.S)
    assert len(bodies) == page.count('<table class="report"') >= 2
    for body in bodies:
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            cells = re.findall(r"<(t[hd])( scope=\"row\")?>", row)
            assert cells[0] == ("th", ' scope="row"') and all(c == ("td", "") for c in cells[1:]), row
    summary = screen_tables(page)[0]
    assert '<th scope="row">Calls</th><td>20</td>' in page and summary[1][0] == "Calls"


def test_a_supervisors_report_counts_the_playbacks_and_exports_of_their_lines_alone(box, people):
    """sam supervises lines 1 and 2: his report (page and download) names who played or
    exported calls on them, not sue's playbacks on line 3, as his year in review counts; an
    auditor's report of every line counts them all, and of one line that line's."""
    at = box.services.wall_us()
    for actor, action, line in (
        ("sam", "playback", 1),
        ("sue", "playback", 3),
        ("sue", "playback", 3),
        ("sue", "export", 3),
    ):
        box.services.audit.append(actor, action, "call:1", {"line": line}, at)
    today = "from=2026-03-02&to=2026-03-02"

    assert access_by_user(people["sam"], today) == {"sam": ["1", "0", "0"]}
    download = people["sam"].get("/reports/download?format=csv&" + today).get_data(as_text=True)
    assert "sue" not in download
    assert access_by_user(people["audrey"], today) == {"sam": ["1", "0", "0"], "sue": ["2", "1", "0"]}
    assert access_by_user(people["audrey"], today + "&line=3") == {"sue": ["2", "1", "0"]}


def test_an_export_from_the_command_line_counts_on_its_calls_line(box, people):
    """`linekeeper export` audits the call (``call:N``) and not its line: a report of some
    lines counts it by its call's line in the call log, as My Line does, not never."""
    at = box.services.wall_us()
    cli = {"recording": 1, "file": "call.wav", "state": "complete", "reason": "complaint ref 1234"}
    box.services.audit.append("alice", "export", "call:1", cli, at)  # call 1 is on line 1
    box.services.audit.append("alice", "export", "call:3", cli, at)  # call 3 on line 3
    box.services.audit.append("alice", "export", "call:999", cli, at)  # not in the call log
    today = "from=2026-03-02&to=2026-03-02"

    assert access_by_user(people["sam"], today) == {"alice": ["0", "1", "0"]}
    assert access_by_user(people["sue"], today) == {"alice": ["0", "1", "0"]}
    assert access_by_user(people["audrey"], today + "&line=2") == {}
    assert access_by_user(people["audrey"], today) == {"alice": ["0", "3", "0"]}


def test_a_report_on_screen_is_audited_with_the_callers_numbers_it_showed(box, people):
    """A report on screen shows its callback list (callers' numbers), as its download does;
    only the download was audited. Now each report shown writes one entry with its lines,
    period and how many numbers its callback list held; a form refused writes none."""
    # missed on line 1 (sam's), never called back: two callers
    add_calls(box.data_dir, ("01632960111", "01632960222"))
    sam = people["sam"]
    assert sam.get("/reports?" + DAY).status_code == 200
    assert sam.get("/reports?from=2026-03-05&to=2026-03-01").status_code == 400
    assert sam.get("/reports?line=3&" + DAY).status_code == 400
    entries = box.services.audit.entries(limit=10, action="list_viewed")
    assert [(e.actor, e.target) for e in entries] == [("sam", "report")]
    download = sam.get("/reports/download?format=json&" + DAY)
    callbacks = len(json.loads(download.get_data(as_text=True))["callbacks"])
    assert callbacks == 2
    details = entries[0].details
    assert (details["lines"], details["period"], details["callers"]) == (
        [1, 2],
        "2026-03-02/2026-03-02",
        callbacks,
    )
    # Which callers: each callback entry's last missed call, the numbers left in the call log.
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    missed = [r[0] for r in db.execute("SELECT id FROM calls WHERE number IN ('01632960111', '01632960222')")]
    db.close()
    assert sorted(details["calls"]) == sorted(missed)
    assert box.services.audit.entries(limit=1, action="report")[0].details["calls"] == details["calls"]


def test_a_report_whose_callback_list_is_too_long_names_no_calls_in_its_entry(box, people, monkeypatch):
    """A report's entry names at most AUDITED_CALLS_MAX of its callback list's calls: a
    longer list's says how many alone (a breach's scope then says "up to"), not some of them."""
    from firmware.reports import formats

    add_calls(box.data_dir, ("01632960111", "01632960222"))
    monkeypatch.setattr(formats, "AUDITED_CALLS_MAX", 1)
    assert people["sam"].get("/reports?" + DAY).status_code == 200
    details = box.services.audit.entries(limit=1, action="list_viewed")[0].details
    assert details["callers"] == 2 and "calls" not in details


def test_the_report_page_writes_times_as_the_pages_do_and_the_csv_as_a_spreadsheet_reads_them(box, people):
    """The report's tables wrote ``2026-03-02 10:00:00`` on the page and in the PDF and the
    mail, while every other page writes ``Mon 2 Mar 2026, 10:00:00 GMT``; the CSV keeps
    the form a spreadsheet sorts."""
    box.alarm_log.set("disk_warning", True, message="the card is 85% full", wall_us=T0_US + 3_600_000_000)
    # The pages' formatter, in the report's zone (the box's: Europe/London, GMT in March).
    said = LocalTime(box.services.reports.tz).when(T0_US + 3_600_000_000)
    assert re.fullmatch(r"Mon 2 Mar 2026, \d\d:00:00 [A-Z]{3}", said), said
    page = people["audrey"].get("/reports?" + DAY).get_data(as_text=True)
    alarms = [t for t in screen_tables(page) if t[0][0] == "Raised"][0]
    assert [row[0] for row in alarms[1:]] == [said]
    text = people["audrey"].get("/reports/download?format=csv&" + DAY).get_data(as_text=True)
    rows = [t for t in csv_tables(text) if t[0][0] == "Raised"][0]
    assert re.fullmatch(r"2026-03-02 \d\d:00:00", rows[1][0]), rows
    assert rows[1][0][11:] == said[16:24]  # the same local time, in the two forms


# One box, one time: a box whose site settings save no zone (an older release's) shows its
# pages in Europe/London; its reports took the business hours' zone, else UTC, so a missed
# call read 09:30 on the calls page and 08:30 in the report of the same day.
CALL_US = iso_to_us("2026-07-01T08:30:00Z")  # 09:30 BST in London
JULY_1 = "from=2026-07-01&to=2026-07-01"


def _no_zone_saved(box):
    """The site settings without a ``time_zone``, as a release before zones saved them."""
    db = sqlite3.connect("%s/web.db" % box.data_dir)
    settings = json.loads(db.execute("SELECT value FROM site WHERE key = 'settings'").fetchone()[0])
    del settings["time_zone"]
    db.execute("UPDATE site SET value = ? WHERE key = 'settings'", (json.dumps(settings),))
    db.commit()
    db.close()


def _missed_call(box):
    """A missed inbound call on line 1 at :data:`CALL_US`, never called back; its id."""
    db = sqlite3.connect("%s/calls.db" % box.data_dir)
    cur = db.execute(
        "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced, number) "
        "VALUES (1, 'in', ?, NULL, ?, 1, '02079460999')",
        (CALL_US, CALL_US + 20_000_000),
    )
    db.commit()
    db.close()
    return cur.lastrowid


def test_a_box_with_no_zone_saved_dates_its_report_as_its_pages(box, people):
    _no_zone_saved(box)
    call_id = _missed_call(box)
    audrey = people["audrey"]
    shown = "Wed 1 Jul 2026, 09:30:00 BST"

    # The calls page.
    assert shown in audrey.get("/calls/%d" % call_id).get_data(as_text=True)

    # The report page: the callback list, and the call in the hour 09:00.
    page = audrey.get("/reports?" + JULY_1).get_data(as_text=True)
    assert "(Europe/London)" in page
    tables = screen_tables(page)
    [callbacks] = [t for t in tables if t[0][0] == "Number"]
    assert callbacks[1][0] == "02079460999" and callbacks[1][3:] == [shown, shown]
    [hours] = [t for t in tables if t[0][0] == "Hour"]
    assert {row[0]: row[1] for row in hours[1:]}["09:00"] == "1"

    # The CSV: the same hour, the time as a spreadsheet reads it.
    text = audrey.get("/reports/download?format=csv&" + JULY_1).get_data(as_text=True)
    assert list(csv.reader(io.StringIO(text)))[0][3] == "Europe/London"
    blocks = csv_tables(text)
    [callbacks] = [t for t in blocks if t[0][0] == "Number"]
    assert callbacks[1][3:] == ["2026-07-01 09:30:00", "2026-07-01 09:30:00"]
    [hours] = [t for t in blocks if t[0][0] == "Hour"]
    assert {row[0]: row[1] for row in hours[1:]}["09:00"] == "1"

    # The PDF's text.
    pdf = audrey.get("/reports/download?format=pdf&" + JULY_1).data
    pdf_text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    lines = [line.split() for line in pdf_text.stdout.decode().splitlines()]
    assert ["02079460999", "Line", "1", "1", *shown.split(), *shown.split()] in lines


def test_a_box_set_up_this_week_opens_its_reports_on_its_own_days(box, people):
    """Issue: the Reports page opens on the last 7 days to yesterday; on a box first started
    today its owner's first look at Reports was a week before the box existed ("first
    started after this period", every figure 0). Opened with no days chosen, it shows the
    days since the first start, to today (its figures so far); days chosen are kept."""
    sam = people["sam"]  # the box's today: 2026-03-02 (the test clock)
    started = {"after": "first_start", "down_from": None}
    box.services.audit.append("system", "box_start", "box", started, T0_US)
    page = html.unescape(sam.get("/reports").get_data(as_text=True))
    assert "first started after this period" not in page
    [line] = re.findall(r'<p id="report-period">([^<]*)', page)
    assert line.startswith("Mon 2 Mar 2026 (Europe/London),"), line
    assert 'name="from" value="2026-03-02"' in page and 'name="to" value="2026-03-02"' in page
    assert "the figures are those so far" in page
    week = html.unescape(sam.get("/reports?from=2026-02-23&to=2026-03-01").get_data(as_text=True))
    assert "first started after this period" in week  # chosen: as asked


def test_the_report_pdf_names_the_organisation_in_its_title(box, people):
    """The PDF's title was "Linekeeper report" alone: printed or forwarded, it did not say
    whose calls it counts. It names the organisation where the site settings give one."""
    import dataclasses

    from firmware.reports.formats import report_title

    web = box.web
    with web.db.tx() as conn:
        web.site.save(conn, dataclasses.replace(web.site.settings(), organisation="Acme Plumbing Ltd"))
    pdf = people["sam"].get("/reports/download?format=pdf&" + DAY).data
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert text.splitlines()[0] == "Linekeeper report for Acme Plumbing Ltd", text[:200]
    assert (report_title(), report_title(" ", "weekly")) == ("Linekeeper report", "Linekeeper weekly report")
    assert report_title("Acme", "weekly") == "Linekeeper weekly report for Acme"
