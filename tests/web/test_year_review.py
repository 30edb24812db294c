"""The year in review page and its PDF (firmware/reports/yearreview.py, docs/reports.md)."""

import datetime as dt
import html
import re
import subprocess

DAY = "from=2026-03-02&to=2026-03-02"
TEN_AM_US = 1_772_409_600_000_000 + 10 * 3_600_000_000  # 2026-03-02 10:00 UTC


def rows(page):
    """The page's table rows as lists of cell text."""
    return [
        [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
    ]


def report_calls(client):
    """The box's calls of the day, as the Reports page counts them (every line: an auditor's)."""
    page = client.get("/reports?" + DAY).get_data(as_text=True)
    return next(r[1] for r in rows(page) if r and r[0] == "Calls")


def test_the_figures_are_the_reports_and_access_is_counted_by_role(box, people):
    for actor, action, details in (
        ("sam", "playback", {"line": 1}),
        ("sam", "playback", {"line": 2}),
        ("sue", "playback", {"line": 3}),
        ("sue", "export", {"line": 3}),
        ("sam", "export", {"refused": "wrong password"}),  # refused: not a copy made
        ("audrey", "disclosure", {"calls": [1]}),
        ("sam", "disclosure", {"failed": "the card refused it"}),  # nothing went
    ):
        # A release's target is its disclosure log entry: audrey's 1, sam's failed one 2.
        target = "disclosure:%d" % (1 if actor == "audrey" else 2) if action == "disclosure" else "call:1"
        box.services.audit.append(actor, action, target, details, TEN_AM_US)
    resp = people["audrey"].get("/documents/year-review?" + DAY)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    table = {r[0]: r[1:] for r in rows(page) if r}
    assert table["Calls in the period"] == [report_calls(people["audrey"])]
    # Counted by role, never by name: two supervisors played 3 and copied 1, an auditor released 1.
    assert table["supervisor"] == ["2", "3", "1", "0"]
    assert table["auditor"] == ["1", "0", "0", "1"]
    assert "sam" not in page.split('id="year-review"')[1].split("</div>")[0]
    assert "Still to do" in page


def test_the_pdf_is_audited_and_says_the_same(box, people):
    resp = people["sam"].get("/documents/year-review.pdf?" + DAY)
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    last = box.services.audit.entries(limit=1)[0]
    assert (last.actor, last.action, last.details["document"], last.details["period"]) == (
        "sam",
        "report",
        "year_review",
        "2026-03-02/2026-03-02",
    )
    # Counts only: a breach's scope does not count it as callers' data (firmware.breachscope).
    assert last.details["personal_data"] is False
    text = subprocess.run(["pdftotext", "-", "-"], input=resp.data, capture_output=True, check=True).stdout
    assert b"The year in review" in text and b"Calls in the period" in text


def test_who_may_see_it(box, people):
    for name in ("ivan", "sam", "audrey"):
        assert people[name].get("/documents/year-review?" + DAY).status_code == 200, name


def test_bad_dates_are_named_and_nothing_is_audited(box, people):
    before = box.audit_actions().count("report")
    for query, said in (
        ("from=2026-03-05&to=2026-03-01", "The date range is backwards"),
        ("from=2026-03-05", "Give both dates of the period"),
        ("from=2025-01-01&to=2026-03-01", "A date range covers at most 366 days"),
        ("from=2026-02-30&to=2026-03-01", "is not a date like 2026-03-02"),
    ):
        page = people["audrey"].get("/documents/year-review?" + query)
        assert page.status_code == 400 and said in html.unescape(page.get_data(as_text=True)), query
        pdf = people["audrey"].get("/documents/year-review.pdf?" + query)
        assert pdf.status_code == 400 and said in pdf.get_data(as_text=True), query
    assert box.audit_actions().count("report") == before


def test_a_supervisor_sees_their_lines_figures_and_is_told_which(box, people):
    """sam supervises lines 1 and 2: the calls as his Reports page counts them, the playbacks
    of calls on them alone, and the page and PDF say which lines; an auditor sees all."""
    for actor, details in (("sam", {"line": 1}), ("sue", {"line": 3}), ("sue", {"line": 3})):
        box.services.audit.append(actor, "playback", "call:1", details, TEN_AM_US)
    sams = people["sam"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    table = {r[0]: r[1:] for r in rows(sams) if r}
    assert table["Calls in the period"] == [report_calls(people["sam"])]
    assert table["supervisor"] == ["1", "1", "0", "0"]  # sue's on line 3 not counted
    assert "It covers lines 1, 2 alone (the lines granted to you)" in html.unescape(sams)
    audreys = people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    assert {r[0]: r[1:] for r in rows(audreys) if r}["supervisor"] == ["2", "3", "0", "0"]
    assert "It covers every line of the box." in html.unescape(audreys)
    pdf = people["sam"].get("/documents/year-review.pdf?" + DAY)
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True).stdout
    assert b"It covers lines 1, 2 alone" in text


def test_a_supervisors_review_counts_a_request_on_a_line_no_supervisor_holds(box, people):
    """stella on line 4, which no supervisor holds (alice the admin given lines 1 to 3): the
    Requests page shows her request to every supervisor, and so does sam's year in review
    count it; it counted only the requests about lines 1 and 2 or about no line."""
    resp = box.post(
        people["ivan"],
        "/users/alice",
        {"roles": ["installer", "supervisor"], "lines": ["1", "2", "3"]},
        token_from="/users",
    )
    assert resp.status_code == 302
    box.add_user(people["ivan"], "stella", ["staff"], [4])
    stella = box.login("stella")
    assert box.post(stella, "/my-line/request", {"kind": "erasure"}, token_from="/my-line").status_code == 302
    sams = people["sam"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    table = {r[0]: r[1:] for r in rows(sams) if r}
    assert table["Received"] == ["1"] and table["– Erasure: delete their data (Art. 17)"] == ["1"]
    assert "the requests about them, about no line or about lines no supervisor holds" in html.unescape(sams)


def test_with_the_trail_sealed_the_rest_shows(box, people, monkeypatch):
    """Before the recorder has started the audit trail's details do not open: the staff
    notice's versions, the access counts and the key backup are said untold, the rest shows
    (it was the whole-page "Personal data locked")."""
    from firmware.reports import compute
    from firmware.storage.fieldseal import FieldSealError

    def sealed(*args, **kwargs):
        raise FieldSealError("the audit trail's details are sealed with the key in the HAT's MCU vault")

    calls = report_calls(people["audrey"])
    monkeypatch.setattr(box.services.audit, "entries", sealed)
    monkeypatch.setattr(box.services.audit, "in_period", sealed)
    monkeypatch.setattr(compute, "_access", sealed)
    resp = people["audrey"].get("/documents/year-review?" + DAY)
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 200 and "Personal data locked" not in page
    table = {r[0]: r[1:] for r in rows(page) if r}
    assert page.count("This cannot be told until the recorder has started") == 2  # access, notice
    assert table["Last backup of the key store"] == ["cannot be told until the recorder has started"]
    assert table["Calls in the period"] == [calls]
    assert "Still to do" in page


def test_the_form_says_what_it_reads_while_a_busy_year_is_read(box, people):
    """A busy box's year takes a while to read (docs/reports.md): once sent, the form says
    so and its button cannot be pressed again (busy.js), as the breach scope's does."""
    page = people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    form = re.search(r'<form[^>]*id="year-review-form"[^>]*>', page).group(0)
    assert 'data-busy="Reading the year' in html.unescape(form) and "can take a minute" in html.unescape(form)
    assert "data-busy-text" in page and "/static/busy.js" in page


def test_a_release_whose_bundle_never_went_is_not_counted(box, people):
    """A release is audited before its bundle is written; one that failed, or waited
    undownloaded, is audited again as ``failed`` against the same ``disclosure:N``
    (firmware/sar.py, web/sarjob.py). Only that second entry was left out: the release
    itself was counted as made, "Releases to a person: 1" for a bundle that never left."""
    log = box.services.audit
    log.append("audrey", "disclosure", "disclosure:7", {"calls": [1], "recordings": 1}, TEN_AM_US)
    log.append("audrey", "disclosure", "disclosure:7", {"failed": "not downloaded"}, TEN_AM_US + 1)
    log.append("audrey", "disclosure", "disclosure:8", {"calls": [2], "recordings": 1}, TEN_AM_US + 2)
    page = people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    table = {r[0]: r[1:] for r in rows(page) if r}
    assert table["auditor"] == ["1", "0", "0", "1"]  # disclosure:8 alone


def test_a_supervisors_review_counts_a_release_by_the_lines_its_entry_keeps(box, people):
    """A supervisor's review counted a release by its calls' lines in the call log: one of
    calls the call log no longer holds (lost with it, and not rebuilt by `linekeeper repair`)
    vanished from their figures. The release's entry keeps its calls' lines, and counts by
    them; an entry from before that kept none is counted by the calls still in the log."""
    log = box.services.audit
    log.append("sue", "disclosure", "disclosure:7", {"calls": [9001], "lines": [2]}, TEN_AM_US)
    log.append("sue", "disclosure", "disclosure:8", {"calls": [9002], "lines": [3]}, TEN_AM_US + 1)
    log.append(
        "sue", "disclosure", "disclosure:9", {"calls": [9003]}, TEN_AM_US + 2
    )  # before lines were kept
    sams = people["sam"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    table = {r[0]: r[1:] for r in rows(sams) if r}
    assert table["supervisor"] == ["1", "0", "0", "1"]  # disclosure:7 alone, on sam's line 2
    audreys = people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    assert {r[0]: r[1:] for r in rows(audreys) if r}["supervisor"] == ["1", "0", "0", "3"]


def running_text(page):
    """The paragraph under "When the box was not recording", in plain text."""
    part = page.split("When the box was not recording</h2>", 1)[1]
    return html.unescape(re.search(r"<p>(.*?)</p>", part, re.S).group(1))


def test_a_box_with_no_running_record_is_not_said_to_have_recorded_all_the_time(box, people):
    """A box whose recorder never started in the period kept no record of when it ran: the
    review said "The box was recording all the time" of it, where the Reports page says it
    kept no record."""
    page = people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True)
    assert running_text(page) == "This box kept no record of when it was running in this period."
    assert "This box kept no record of when it was running" in people["audrey"].get(
        "/reports?" + DAY
    ).get_data(as_text=True)


def start(box, wall_us):
    """The recorder's first start on record, audited at ``wall_us``."""
    started = dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    box.services.audit.append(
        "system", "box_start", "box", {"after": "first_start", "started": started + "Z"}, wall_us
    )


def test_a_period_before_the_first_start_is_said_so_not_counted_as_a_time_down(box, people):
    """A period wholly before the box was first started read "not recording 1 times ... It
    was first started during the period"; first started during it, the review counted the
    days before its start (setup) as "switched off, restarting, or unable to start": the
    figure is from its first start, said so."""
    start(box, TEN_AM_US + 86_400_000_000)  # the day after DAY
    said = running_text(people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True))
    first = "The box was first started after this period, on Tue 3 Mar 2026, 10:00:00 GMT:"
    assert said.startswith(first), said
    within = "from=2026-03-01&to=2026-03-05"
    said = running_text(people["audrey"].get("/documents/year-review?" + within).get_data(as_text=True))
    # The time since its start alone (no sign of life from it after), said as from it: the
    # days before it were counted as switched off, restarting or unable to start.
    assert said.startswith(
        "The box was first started (set up) on Tue 3 Mar 2026, during the period; the time before "
        "is not counted here, as it kept no record before then. From its first start, the box was "
        "not recording 1 time, for 2 days 14 hours in all (switched off, restarting, or unable "
        "to start)"
    ), said


def test_a_periods_days_are_counted(box, people):
    """A review of one day said it covered "(1 days, UTC)"."""
    page = html.unescape(people["audrey"].get("/documents/year-review?" + DAY).get_data(as_text=True))
    assert "This covers Mon 2 Mar 2026 (1 day, Europe/London)" in page  # one day, said once


def test_a_date_the_review_refuses_is_said_beside_that_date(box, people):
    """A period refused was one message for the whole form ("range"): no field marked, the
    keyboard left at the page's top. Now beside the date that is wrong, as on the Reports
    page, and beside the date left out when only one is given."""
    cases = [
        ("from=2026-02-30&to=2026-03-01", "from", "is not a date"),
        ("from=2026-03-01&to=2026-02-30", "to", "is not a date"),
        ("from=2026-03-05&to=2026-03-01", "to", "The date range is backwards"),
        ("from=2025-01-01&to=2026-03-01", "to", "at most 366 days"),
        ("from=2026-03-05", "to", "Give both dates of the period"),
        ("to=2026-03-05", "from", "Give both dates of the period"),
    ]
    for query, field, said in cases:
        resp = people["audrey"].get("/documents/year-review?" + query)
        text = resp.get_data(as_text=True)
        form = re.search(r'<form[^>]*id="year-review-form".*?</form>', text, re.S).group(0)
        assert resp.status_code == 400, query
        message = re.search(
            r'name="%s"[^>]*></label><span class="field-error" id="error-%s" role="alert">([^<]*)<'
            % (field, field),
            form,
        )
        assert message and said in html.unescape(message.group(1)), (query, form)
        assert 'id="error-range"' not in form, query
