"""The setup wizard's dates (the ICO renewal, the DPIA's review, the legitimate interests
assessment; the Settings page's too): its hints said YYYY-MM-DD where the browser's date
field shows the day as its user's locale writes it (mm/dd/yyyy, dd/mm/yyyy). The hints say
no format; the field sends 2027-03-31, which is taken; where a browser has no date field
(what was typed comes), a day with its month's name is taken too, and a day that could be
read two ways is refused naming what was typed, nothing saved."""

import html
import re

import pytest

from .test_browser import chromium_page, https_server
from .test_setup import nothing_saved, post_setup

DATE_FIELDS = ("ico_renewal", "dpia_reviewed", "lia_date")


def test_the_date_fields_hints_give_no_format_the_field_does_not_show(box):
    page = html.unescape(box.client().get("/setup").get_data(as_text=True))
    for field in DATE_FIELDS:
        assert re.search(r'<input id="%s" name="%s" type="date"' % (field, field), page)
        hint = re.search(r'<span class="hint" id="%s-hint">(.*?)</span>' % field, page, re.S).group(1)
        assert "YYYY" not in hint and "MM" not in hint, hint


@pytest.mark.parametrize(
    "typed",
    [
        "2027-03-31",
        " 2027-03-31 ",
        "31 March 2027",
        "Wed 31 Mar 2027",
        "31 mar 2027",
        "Wednesday, 31 March 2027",
    ],
)
def test_the_wizard_takes_the_day_a_browser_sends_and_keeps_it_as_a_date(box, typed):
    resp = post_setup(box, box.client(), ico_renewal=typed, dpia_reviewed="2 March 2026")
    assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))
    site = box.web.site.settings()
    assert (site.ico_renewal, site.dpia_reviewed) == ("2027-03-31", "2026-03-02")


@pytest.mark.parametrize(
    "fields, field, message",
    [
        (
            {"ico_renewal": "03/04/2027"},
            "ico_renewal",
            'The renewal date "03/04/2027" is not a date the box can be sure of: pick the day in the '
            "calendar, or write it as 31 March 2027.",
        ),
        ({"ico_renewal": "20270331"}, "ico_renewal", 'The renewal date "20270331" is not a date'),
        ({"ico_renewal": "2027-W13-3"}, "ico_renewal", 'The renewal date "2027-W13-3" is not a date'),
        ({"ico_renewal": "31 Smarch 2027"}, "ico_renewal", 'The renewal date "31 Smarch 2027" is not a date'),
        ({"ico_renewal": "30 February 2027"}, "ico_renewal", "is not a date"),
        ({"ico_renewal": ""}, "ico_renewal", "Enter the renewal date."),
        ({"dpia_reviewed": "02/03/2026"}, "dpia_reviewed", "Or leave it empty."),
    ],
)
def test_a_date_that_is_none_is_refused_naming_it_and_nothing_is_saved(box, fields, field, message):
    resp = post_setup(box, box.client(), **fields)
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400
    error = re.search(r'id="error-%s"[^>]*>(.*?)<' % field, page, re.S).group(1)
    assert message in error, error
    assert "YYYY" not in error
    nothing_saved(box)


@pytest.mark.slow
def test_a_date_typed_in_chromium_s_date_field_as_it_shows_it_is_taken(box, tmp_path):
    """Chromium (en-US) shows mm/dd/yyyy: the day is typed so, and the wizard takes it."""
    form = box.setup_form()
    del form["ico_renewal"]
    with https_server(box, tmp_path) as server, chromium_page(locale="en-US") as page:
        page.goto(server.url + "setup")
        page.wait_for_selector("#ico_renewal")
        page.evaluate(
            """(form) => {
              for (const [name, value] of Object.entries(form)) {
                for (const el of document.getElementsByName(name)) { el.value = value; }
              }
            }""",
            form,
        )
        page.focus("#ico_renewal")  # its first part, the month here
        page.keyboard.type("03312027")
        assert page.input_value("#ico_renewal") == "2027-03-31"
        page.click("#setup-form button[type=submit]")
        page.wait_for_url(re.compile(r"/setup/recovery"))
    assert box.web.site.settings().ico_renewal == "2027-03-31"
