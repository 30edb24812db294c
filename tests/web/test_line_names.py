"""A line is named one way wherever it is named: "line 2 (Office)" where the site settings
give it a name, as the alarm mail does (firmware.words.line_said). The Users page, the
retention rules, the alarm banner and the report (page, PDF) named it by its number alone
("(line 2)", "1") or by its name alone."""

import dataclasses
import html
import subprocess

from firmware.mail.compose import _alarm_subject
from web.site import LineSetting

from .test_retention_pages import retention_form
from support.web import T0_US, add_calls

DAY = "from=2026-03-02&to=2026-03-02"


def _name_lines(box, **names):
    """Give lines the names ``names`` (``line1="Sales"``) in the site settings."""
    site = box.web.site.settings()
    lines = tuple(LineSetting(x.line, names.get("line%d" % x.line, x.name), x.record) for x in site.lines)
    with box.web.db.tx() as conn:
        box.web.site.save(conn, dataclasses.replace(site, lines=lines))


def _text(resp):
    return html.unescape(resp.get_data(as_text=True))


def test_the_alarm_banner_names_the_line_as_the_mail_does(box, people):
    _name_lines(box, line2="Office")
    box.alarm_log.set("no_line_voltage", True, line=2, message="no voltage on line 2", wall_us=T0_US)
    (alarm,) = box.alarm_log.history()
    where, _what, _subject = _alarm_subject(alarm, "Acme", {2: "Office"})
    assert where == "line 2 (Office)"
    for banner in (
        _text(people["sam"].get("/calls")),
        html.unescape(people["sam"].get("/api/alarms?next=/").get_json()["banner"]),
    ):
        row = banner.split('id="alarm-%d"' % alarm["id"])[1].split("</li>")[0]
        assert " on line 2 (Office):" in row and "(line 2)" not in row, row
        assert ' on line 2 (Office)">Acknowledge</button>' in row, row


def test_a_line_without_a_name_of_its_own_is_line_and_its_number(box, people):
    box.alarm_log.set("no_line_voltage", True, line=2, message="no voltage on line 2", wall_us=T0_US)
    banner = _text(people["sam"].get("/calls"))
    assert " on line 2:" in banner and "Line 2 (Line 2)" not in banner and "line 2 (Line 2)" not in banner


def test_the_users_page_names_each_users_lines(box, people):
    _name_lines(box, line1="Sales", line2="Office")
    page = _text(people["ivan"].get("/users"))
    row = page.split('id="user-sam"')[1].split("</tr>")[0]
    assert 'aria-label="Line 1 (Sales) for sam"> line 1 (Sales)</label>' in row, row
    assert "> line 3</label>" in row, row
    add = page.split('id="new-user"')[1]
    assert "> line 2 (Office)</label>" in add and "> Office</label>" not in add
    # A user's own row says their lines in words: alice's, given lines 1 and 2 by ivan.
    resp = box.post(
        people["ivan"],
        "/users/alice",
        {"roles": ["installer", "supervisor"], "lines": ["1", "2"]},
        token_from="/users",
    )
    assert resp.status_code == 302, _text(resp)
    own = _text(box.login("alice").get("/users")).split('id="user-alice"')[1].split("</tr>")[0]
    assert "; line 1 (Sales), line 2 (Office)" in own, own


def test_the_retention_rules_name_the_line(box, people):
    _name_lines(box, line1="Sales")
    ivan = people["ivan"]
    resp = retention_form(box, ivan, **{"rule-0-name": "sales", "rule-0-line": "1", "rule-0-days": "60"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = _text(ivan.get("/retention"))
    row = page.split('id="preview-sales"')[1].split("</tr>")[0]
    assert '<td data-label="For">line 1 (Sales)</td>' in row, row
    assert '<option value="1" selected>line 1 (Sales)</option>' in page
    assert '<option value="2">line 2</option>' in page


def test_the_report_page_and_pdf_name_the_lines(box, people):
    _name_lines(box, line2="Office")
    add_calls(box.data_dir, ["01632960001"], line=2)
    audrey = people["audrey"]
    page = _text(audrey.get("/reports?" + DAY))
    assert '<th scope="col">Line 2 (Office)</th>' in page
    assert "line 1, line 2 (Office), line 3, line 4." in page.split('id="report-period"')[1]
    pdf = audrey.get("/reports/download?format=pdf&" + DAY).data
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    said = text.stdout.decode()
    assert "Line 2 (Office)" in said and "line 1, line 2 (Office), line 3, line 4" in said, said
    csv_text = audrey.get("/reports/download?format=csv&" + DAY).get_data(as_text=True)
    assert "Line 2 (Office)" in csv_text


def test_the_alarms_history_names_the_line(box, people):
    """Its Line column said "2", and its Acknowledge button "on line 2", where the banner
    above said "on line 2 (Office)"; and "box" of an alarm of no line, as if "box" were a
    line's name: "The whole box", as the E-mail page says of those alarms."""
    _name_lines(box, line2="Office")
    box.alarm_log.set("no_line_voltage", True, line=2, message="no voltage on line 2", wall_us=T0_US)
    box.alarm_log.set("disk_warning", True, message="the card is 85% full", wall_us=T0_US + 1)
    line, whole = sorted(box.alarm_log.history(), key=lambda a: a["id"])
    page = _text(people["sam"].get("/alarms"))
    row = page.split('<td data-label="No.">%d</td>' % line["id"])[1].split("</tr>")[0]
    assert '<td data-label="Line">Line 2 (Office)</td>' in row, row
    assert 'on line 2 (Office)">Acknowledge</button>' in row, row
    row = page.split('<td data-label="No.">%d</td>' % whole["id"])[1].split("</tr>")[0]
    assert '<td data-label="Line">The whole box</td>' in row, row


def test_the_calls_list_and_the_call_page_name_the_line(box, people):
    """The calls list named a line by its name alone ("Office", and "Line 1" for one
    without), the call page "2 — Office"."""
    _name_lines(box, line2="Office")
    add_calls(box.data_dir, ["01632960001"], line=2)
    add_calls(box.data_dir, ["01632960002"], line=1)
    page = _text(people["sam"].get("/calls"))
    office = '<td data-label="Line">Line 2 (Office)</td>'
    assert office in page and '<td data-label="Line">Line 1</td>' in page
    filters = page.split('id="call-filters"')[1].split("</form>")[0]
    assert "> line 2 (Office)</label>" in filters and "> line 1</label>" in filters, filters
    call_id = page.split(office)[0].rsplit('<tr id="call-', 1)[1].split('"')[0]
    call = _text(people["sam"].get("/calls/%s" % call_id))
    assert '<dd id="f-line">Line 2 (Office)</dd>' in call, call.split('id="f-line"')[1][:80]


def test_the_reports_callback_list_names_the_lines(box, people):
    """Its Lines column said "1 2" on the page and in the PDF, where the columns above were
    headed "Line 2 (Office)"; the CSV keeps the numbers."""
    _name_lines(box, line2="Office")
    add_calls(box.data_dir, ["01632960001"], line=1)
    add_calls(box.data_dir, ["01632960001", "01632960001"], line=2)
    audrey = people["audrey"]
    page = _text(audrey.get("/reports?" + DAY))
    assert "<td>Line 1, line 2 (Office)</td>" in page, page.split("Callback list")[1][:800]
    pdf = audrey.get("/reports/download?format=pdf&" + DAY).data
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    assert "Line 1, line 2 (Office)" in text.stdout.decode(), text.stdout.decode()
    csv_text = audrey.get("/reports/download?format=csv&" + DAY).get_data(as_text=True)
    assert "\n01632960001,1 2,3," in csv_text, csv_text


def test_the_reports_and_consent_line_choices_name_the_lines(box, people):
    """The Reports page offered a line by its name alone ("Office", "Line 1"), the Consent
    page's test call "Line 2 — Office" and "Line 1 — Line 1"."""
    _name_lines(box, line2="Office")
    reports = _text(people["audrey"].get("/reports")).split('name="line"')[1].split("</select>")[0]
    assert '<option value="2">line 2 (Office)</option>' in reports, reports
    assert '<option value="1">line 1</option>' in reports, reports
    consent = _text(people["ivan"].get("/consent")).split('id="line" name="line"')[1].split("</select>")[0]
    assert '<option value="2">line 2 (Office)</option>' in consent, consent
    assert '<option value="1">line 1</option>' in consent, consent


def test_my_line_the_sar_form_and_the_requests_form_name_the_lines(box, people):
    """My line headed a line "Office (line 2)", the subject access form ticked "Line 2" and
    the Requests form "Line 2" (the macro saw no site settings): every other page says
    "Line 2 (Office)"."""
    _name_lines(box, line2="Office")
    box.add_user(people["alice"], "stella", ["staff"], [2, 3])
    mine = _text(box.login("stella").get("/my-line"))
    assert "<h2>Line 2 (Office)</h2>" in mine and "<h2>Line 3</h2>" in mine, mine
    assert "(line 2)" not in mine
    sar = _text(people["sam"].get("/sar")).split('id="sar-lines"')[1].split("</fieldset>")[0]
    assert 'aria-describedby="sar-lines-hint"> Line 2 (Office)</label>' in sar, sar
    assert 'aria-describedby="sar-lines-hint"> Line 1</label>' in sar, sar
    asked = _text(people["sam"].get("/requests")).split('id="rq-lines"')[1].split("</fieldset>")[0]
    assert 'id="rq-line-2"> Line 2 (Office)</label>' in asked, asked
    assert 'id="rq-line-1"> Line 1</label>' in asked, asked


def test_the_rules_pages_labels_name_the_line_as_its_row_does(box, people):
    """The recording rules' row said "Line 2 (Office)" while its controls were labelled, for
    a screen reader, "Mode of line 2"."""
    _name_lines(box, line2="Office")
    rules = _text(people["ivan"].get("/rules"))
    assert 'aria-label="Mode of line 2 (Office)"' in rules, rules
    assert 'aria-label="The personal-call code works on line 2 (Office)"' in rules
    assert 'aria-label="Mode of line 1"' in rules


def test_the_consent_page_names_the_line_it_played_into_and_a_private_one(box, people):
    """The Consent page said "Played the announcement into line 2" and "Line 2 is private and
    not listed" of the line its test-call list offers as "line 2 (Office)"."""
    import dataclasses

    from firmware.policy.settings import LineMode

    _name_lines(box, line2="Office")
    ivan = people["ivan"]
    played = _text(ivan.get("/consent?played=2:3.5")).split('id="played">')[1].split("</p>")[0]
    assert played == "Played the announcement (3.5 s) into line 2 (Office).", played
    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(line=2, mode="never"),))
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    assert "Line 2 (Office) is private and not listed: " in _text(ivan.get("/consent"))
