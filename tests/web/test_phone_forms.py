"""The setup wizard's and the Rules page's line tables on a 390 px phone, in Chromium: every
choice is seen whole and every column is on the screen.

At 390 px a line's "Private: never record" was cut off in its list (the wizard's and the
Rules page's), and the Rules page's table of lines scrolled sideways in its own box: its
Outside-line digit column was past the screen's edge, where a phone shows no scroll bar.
Nothing is clipped: no element of the form is wider inside than it shows
(``scrollWidth`` against ``clientWidth``, as test_responsive checks the pages), and no
list is narrower than its longest choice."""

import pytest

from .test_browser import chromium_page, https_server
from .test_line_names import _name_lines
from .test_requests import act, log_request
from .test_responsive import OVERFLOW_JS

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}

# The form's elements wider inside than they show (a table scrolling in its own box, a cell
# cut off), and its lists narrower than their longest choice (measured at their own width).
CLIPPED_JS = """(form) => {
  const root = document.querySelector(form);
  const cut = [...root.querySelectorAll("fieldset, table, tbody, tr, th, td, label, input")]
    .filter(el => !el.closest("table.cards thead"))  // the headings a card's cells say: for a screen reader
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => (el.id || el.tagName + "." + el.className + ":" + el.textContent.trim().slice(0, 30))
      + " " + el.scrollWidth + "/" + el.clientWidth);
  for (const list of root.querySelectorAll("select")) {
    const shown = list.getBoundingClientRect().width;
    const kept = list.style.cssText;
    list.style.cssText = "width: auto; min-width: 0; max-width: none";
    const whole = list.getBoundingClientRect().width;
    list.style.cssText = kept;
    if (whole > shown + 1) cut.push(list.id + " (" + Math.round(shown) + " of " + Math.round(whole) + " px)");
  }
  const right = document.documentElement.clientWidth;
  for (const el of root.querySelectorAll("input, select")) {
    if (el.getBoundingClientRect().right > right + 1) cut.push(el.id + " past the screen's edge");
  }
  return cut;
}"""


@pytest.fixture
def page():
    with chromium_page(viewport=PHONE) as page:
        yield page


def test_the_wizard_s_lines_fit_a_phone(box, tmp_path, page):
    with https_server(box, tmp_path) as server:
        page.goto(server.url + "setup")
        page.wait_for_selector("#line-1-mode")
        page.select_option("#line-2-mode", "private")
        cut = page.evaluate(CLIPPED_JS, "form")
        assert cut == [], "\n".join(cut)
        assert page.evaluate(OVERFLOW_JS) <= 0


def test_the_rules_page_s_lines_fit_a_phone(box, people, tmp_path, page):
    with https_server(box, tmp_path) as server:
        page.goto(server.url + "login")
        page.fill("#name", "ivan")
        page.fill("#password", box.PASSWORDS["ivan"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("main")
        page.goto(server.url + "rules")
        page.wait_for_selector("#line-4-outside_line")
        page.select_option("#line-2-mode", "never")
        cut = page.evaluate(CLIPPED_JS, "#rules-form")
        assert cut == [], "\n".join(cut)
        assert page.evaluate(OVERFLOW_JS) <= 0
        # The digit's field is on the screen, under its heading, without scrolling sideways.
        assert page.locator("#line-4-outside_line").is_visible()


# Rows of a form's table whose name (its first cell's words) is not on the line of its field's
# words: the names sat at the top of their cell, above the middle of the taller field beside.
ROW_NAMES_OFF_JS = """(table) => [...document.querySelectorAll(table + " tbody tr")].flatMap(row => {
  const field = row.querySelector("input:not([type=checkbox]), select");
  const name = row.cells[0];
  if (!field || name.contains(field)) return [];
  const words = document.createRange();
  words.selectNodeContents(name);
  const said = words.getBoundingClientRect(), box = field.getBoundingClientRect();
  const off = (said.top + said.bottom) / 2 - (box.top + box.bottom) / 2;
  return Math.abs(off) > 3 ? [name.textContent.trim() + " " + Math.round(off) + " px"] : [];
})"""


def test_a_form_table_s_row_names_are_level_with_their_fields(box, people, tmp_path):
    """The day names of the Rules page's business hours (at 390 px) and the line numbers of
    the Settings page's table of lines (at 1280 px) sat at the top of their row, above the
    words of the field beside them (seen on the pages' screenshots)."""
    with https_server(box, tmp_path) as server:
        for width, path, table, ready in (
            (390, "rules", "table.hours-form", "#hours-mon"),
            (1280, "settings", "table.lines-form", "#line-4-mode"),
        ):
            with chromium_page(viewport={"width": width, "height": 900}) as page:
                page.goto(server.url + "login")
                page.fill("#name", "ivan")
                page.fill("#password", box.PASSWORDS["ivan"])
                page.click("#login-form button[type=submit]")
                page.wait_for_selector("main")
                page.goto(server.url + path)
                page.wait_for_selector(ready)
                assert page.locator(table + " tbody tr").count() >= 4
                assert page.evaluate(ROW_NAMES_OFF_JS, table) == [], (width, path)


def test_the_retention_page_s_rules_fit_a_phone(box, people, tmp_path, page):
    """The Retention page's table of rules scrolled sideways in its own box at 390 px: past
    the screen's edge, with nothing to say so, were its Direction, Category and Days (seen
    on a box's screenshot). Each rule is a card, as the Rules page's number lists are."""
    with https_server(box, tmp_path) as server:
        page.goto(server.url + "login")
        page.fill("#name", "ivan")
        page.fill("#password", box.PASSWORDS["ivan"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("main")
        page.goto(server.url + "retention")
        page.wait_for_selector("#rule-0-days")
        cut = page.evaluate(CLIPPED_JS, "#retention-form")
        assert cut == [], "\n".join(cut)
        assert page.evaluate(OVERFLOW_JS) <= 0
        box_right = page.evaluate("document.documentElement.clientWidth")
        for field in ("#rule-0-direction", "#rule-0-category", "#rule-0-days"):
            seen = page.locator(field).bounding_box()
            assert seen["x"] + seen["width"] <= box_right, field


def test_an_alarm_card_s_acknowledge_button_is_level_with_its_name(box, people, tmp_path, page):
    """On a 390 px phone each alarm of the history is a card; its "Acknowledged:" sat apart
    from the lines above it, pushed down by its button's top margin (a form's, not a card's;
    seen on a box's screenshot)."""
    box.alarm_log.set("line_fault", True, line=2, message="no line voltage on line 2")
    with https_server(box, tmp_path) as server:
        page.goto(server.url + "login")
        page.fill("#name", "ivan")
        page.fill("#password", box.PASSWORDS["ivan"])
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("main")
        page.goto(server.url + "alarms")
        cell = page.locator('#alarm-history td[data-label="Acknowledged"]').first
        button = cell.locator("button")
        gap = button.bounding_box()["y"] - cell.bounding_box()["y"]
        assert gap <= 4, "the button is %d px below its cell's top" % gap
        assert page.evaluate(OVERFLOW_JS) <= 0


def _log_in(page, server, box, name):
    page.goto(server.url + "login")
    page.fill("#name", name)
    page.fill("#password", box.PASSWORDS[name])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("main")


def test_what_a_request_asks_for_fits_a_phone(box, people, tmp_path, page):
    """ "What they ask for" was 453 px wide at its longest choice ("Restriction: stop using
    their data for a time (Art. 18)") in a 364 px list at 390 px: the phone showed it cut
    off. Each choice is its kind and article; what each means is in the list's hint."""
    sam = people["sam"]
    rid = log_request(box, sam, received="2026-02-02")
    assert act(box, sam, rid, action="answer", outcome="sent 3 calls", on="2026-02-20").status_code == 302
    with https_server(box, tmp_path) as server:
        _log_in(page, server, box, "sam")
        for path, form, kind in (
            ("requests", "#request-form", "#rq-kind"),
            ("requests/%d" % rid, "#request-follow-up", "#fu-kind"),
        ):
            page.goto(server.url + path)
            page.wait_for_selector(kind)
            page.select_option(kind, "restriction")
            cut = page.evaluate(CLIPPED_JS, form)
            assert cut == [], "\n".join(cut)
            assert page.evaluate(OVERFLOW_JS) <= 0
            hint = page.locator(kind + "-hint")
            assert "Restriction: stop using their data for a time" in hint.inner_text()
            assert kind[1:] + "-hint" in page.get_attribute(kind, "aria-describedby").split()


LONG_NAME = "Reception and Emergency Out-of-Hours Line"[:40]  # as long as a line's name may be


def test_a_long_line_name_fits_a_phone_s_line_lists(box, people, tmp_path, page):
    """A line's name of 36 characters or more made its choice ("line 1 (Reception and
    Emergency Out-of-Hours…)") wider than the list on a 390 px phone, shown cut off: the
    Consent page's test call (415 of 364 px), the Retention rules' Line (415 of 322 px) and
    the Reports page's Line. The choice shortens the name; the list's hint names it whole."""
    _name_lines(box, line1=LONG_NAME, line2="Office")
    with https_server(box, tmp_path) as server:
        for who, path, form, field in (
            ("ivan", "consent", "#test-form", "#line"),
            ("ivan", "retention", "#retention-form", "#rule-0-line"),
            ("audrey", "reports", "#report-form", "#report-line"),
        ):
            page.context.clear_cookies()
            _log_in(page, server, box, who)
            page.goto(server.url + path)
            page.wait_for_selector(field)
            page.select_option(field, "1")
            cut = page.evaluate(CLIPPED_JS, form)
            assert cut == [], "%s: %s" % (path, "\n".join(cut))
            assert page.evaluate(OVERFLOW_JS) <= 0, path
            hints = page.get_attribute(field, "aria-describedby").split()
            said = " ".join(page.locator("#" + hint).inner_text() for hint in hints)
            assert "line 1 (%s)" % LONG_NAME in said, (path, said)
            assert "Office" not in said, (path, said)  # a name seen whole is not said again


def test_what_the_retention_rules_delete_now_fits_a_phone(box, people, tmp_path, page):
    """The Retention page's "What the rules delete now" scrolled sideways in its own box at
    390 px (367 of 364 px: "This rule deletes 0 recordings now" in the last of four
    columns; seen on a box's screenshot). Each rule is a card, as the rules' form below is."""
    with https_server(box, tmp_path) as server:
        _log_in(page, server, box, "ivan")
        page.goto(server.url + "retention")
        page.wait_for_selector("#preview-default")
        cut = page.evaluate(CLIPPED_JS, "#preview")
        assert cut == [], "\n".join(cut)
        wide, shown = page.evaluate("t => [t.scrollWidth, t.clientWidth]", page.query_selector("#preview"))
        assert wide <= shown, "the table scrolls in its own box: %d of %d px" % (wide, shown)
        assert page.evaluate(OVERFLOW_JS) <= 0
        said = page.evaluate(
            "c => getComputedStyle(c, '::before').content", page.query_selector("#preview-default td.count")
        )
        assert said == '"Deletes now: "', said  # the cell says which it is, as a card's do
