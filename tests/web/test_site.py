"""The site settings' lawful basis and data protection contact: checked as typed, kept
apart from the settings' JSON, audited when changed."""

import json

import pytest

from web.site import form_values, parse_site_form

BASE = {
    "organisation": "Acme",
    "country": "us",
    "purpose": "to keep a record of orders",
    "line-1-name": "Sales",
    "line-1-mode": "record",
}


def parsed(**fields):
    return parse_site_form(dict(BASE, **fields), 1)


def test_a_lawful_basis_and_a_contact_are_kept():
    settings, errors = parsed(
        lawful_basis="legitimate_interests",
        lia_date="2026-01-10",
        dp_contact="Data Protection Officer",
        dp_address=" 1 High Street \r\n\r\n Anytown\r\nAB1 2CD ",
        dp_email="dpo@acme.example",
        dp_phone="+44 (0)1632 960123",
    )
    assert errors == {}
    assert (settings.lawful_basis, settings.lia_date) == ("legitimate_interests", "2026-01-10")
    assert settings.dp_contact == "Data Protection Officer"
    assert settings.dp_address == "1 High Street\nAnytown\nAB1 2CD"  # one line each, no blanks
    assert (settings.dp_email, settings.dp_phone) == ("dpo@acme.example", "+44 (0)1632 960123")


def test_none_of_them_is_needed():
    settings, errors = parsed()
    assert errors == {} and settings.lawful_basis == "" and settings.dp_email == ""


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"lawful_basis": "vital_interests"}, "lawful_basis", "Choose the lawful basis from the list"),
        ({"lawful_basis": "legitimate_interests"}, "lia_date", "Relying on legitimate interests needs one"),
        (
            {"lawful_basis": "legitimate_interests", "lia_date": "10/01/2026"},
            "lia_date",
            'The date of the legitimate interests assessment "10/01/2026" is not a date',
        ),
        (
            {"lawful_basis": "legitimate_interests", "lia_date": "2099-01-01"},
            "lia_date",
            "The assessment date cannot be in the future",
        ),
        (
            {"lawful_basis": "contract", "lia_date": "2026-01-10"},
            "lia_date",
            "goes with legitimate interests only",
        ),
        ({"dp_email": "dpo at acme"}, "dp_email", "Enter an e-mail address like dpo@example.com"),
        ({"dp_email": "dpo@acme"}, "dp_email", "Enter an e-mail address"),
        ({"dp_phone": "ring reception"}, "dp_phone", "Enter a phone number in digits"),
        ({"dp_phone": "01632 96O123"}, "dp_phone", "Enter a phone number in digits"),
        ({"dp_phone": "123"}, "dp_phone", "Enter a phone number in digits"),
        ({"dp_contact": "D\x00PO"}, "dp_contact", "Remove the control character U+0000"),
        ({"dp_contact": "x" * 201}, "dp_contact", "At most 200 characters."),
        ({"dp_address": "1 High St\x1b"}, "dp_address", "Remove the control character U+001B"),
        ({"dp_address": "x" * 501}, "dp_address", "At most 500 characters."),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(fields, field, message):
    settings, errors = parsed(**fields)
    assert settings is None and list(errors) == [field] and message in errors[field], errors


def save(box, client, **fields):
    form = form_values(box.web.site.settings(), box.LINES)
    form.update(fields)
    return box.post(client, "/settings", form, token_from="/settings")


def site_changes(box):
    found = box.services.audit.entries(limit=1000, newest_first=False)
    return [e for e in found if (e.action, e.target) == ("config_change", "site")]


GIVEN = dict(
    lawful_basis="legitimate_interests",
    lia_date="2026-01-10",
    dp_contact="Data Protection Officer",
    dp_address="1 High Street\r\nAnytown",
    dp_email="dpo@acme.example",
    dp_phone="01632 960123",
)


def test_the_settings_page_saves_them_apart_and_audits_the_change(box, people):
    page = people["ivan"].get("/settings").get_data(as_text=True)
    assert '<option value="" selected>Not recorded yet</option>' in page
    assert 'id="dp_email"' in page
    assert save(box, people["ivan"], **GIVEN).status_code == 302
    site = box.web.site.settings()
    assert (site.lawful_basis, site.lia_date, site.dp_address) == (
        "legitimate_interests",
        "2026-01-10",
        "1 High Street\nAnytown",
    )
    # Not in the settings' JSON: the release before reads it with its own fields only.
    stored = json.loads(box.web.db.one("SELECT value FROM site WHERE key = 'settings'")[0])
    assert not set(GIVEN) & set(stored)
    [change] = site_changes(box)
    assert change.actor == "ivan"
    assert {k: change.details[k] for k in GIVEN} == dict(GIVEN, dp_address="1 High Street\nAnytown")
    page = people["ivan"].get("/settings").get_data(as_text=True)
    assert '<option value="legitimate_interests" selected>' in page and "1 High Street\nAnytown" in page
    # Saved again unchanged: nothing to audit.
    assert save(box, people["ivan"]).status_code == 302
    assert len(site_changes(box)) == 1


@pytest.mark.parametrize(
    "field, value",
    [("lawful_basis", "vital_interests"), ("dp_email", "not an address"), ("dp_phone", "extension 12")],
)
def test_a_bad_value_shows_beside_its_field_and_nothing_is_saved(box, people, field, value):
    before = box.web.site.settings()
    audited = site_changes(box)
    resp = save(box, people["ivan"], **dict(GIVEN, **{field: value}))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-%s"' % field in body
    assert "Nothing was saved" in body
    assert box.web.site.settings() == before
    assert site_changes(box) == audited


def test_the_setup_wizard_takes_them_too(box):
    client = box.client()
    form = box.setup_form(**GIVEN)
    form["csrf_token"] = box.token_of(client, "/setup")
    assert client.post("/setup", data=form).status_code == 302
    site = box.web.site.settings()
    assert (site.lawful_basis, site.dp_email) == ("legitimate_interests", "dpo@acme.example")
