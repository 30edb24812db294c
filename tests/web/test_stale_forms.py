"""A settings form sent from a page loaded before someone else saved the same settings
is refused whole: it would have undone their change with nothing said (web/stale.py)."""

import html
import re

from firmware.config import load_config
from web.services import site_settings_applier
from web.site import form_values

from support.web import page


def form_of(client, url, form_id):
    """The fields of form ``form_id`` on the page at ``url``, as a browser would send
    them (text inputs and hidden fields, selected options, ticked boxes)."""
    text = page(client, url)
    form = re.search(r'<form[^>]*id="%s".*?</form>' % form_id, text, re.S).group(0)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag or 'type="radio"' in tag:
            if " checked" in tag:
                fields.setdefault(name.group(1), []).append(value.group(1) if value else "on")
            continue
        fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        fields[name] = html.unescape(chosen.group(1)) if chosen else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = html.unescape(body)
    return fields


def site_changes(box):
    found = box.services.audit.entries(limit=1000, newest_first=False)
    return [e for e in found if (e.action, e.target) == ("config_change", "site")]


def test_a_stale_settings_form_does_not_undo_another_installers_change(box, people):
    """Alice and Ivan have the Settings page open; Ivan makes line 2 private and saves.
    Alice then saves her page with a new organisation name: her form still says line 2
    is recorded, and it used to be recorded again, Ivan's change undone unnoticed."""
    # The settings put into the configuration, as on a real box.
    box.services.apply_settings = site_settings_applier(box.config_store, box.audit, box.services.wall_us)
    alices = form_of(people["alice"], "/settings", "settings-form")
    ivans = form_of(people["ivan"], "/settings", "settings-form")
    assert alices["based_on"] == ivans["based_on"]
    ivans["line-2-mode"] = "private"
    assert box.post(people["ivan"], "/settings", ivans, token_from="/settings").status_code == 302
    assert not box.web.site.settings().line(2).record
    assert load_config(box.data_dir).policy.rules.mode(2) == "never"
    audited = site_changes(box)

    alices["organisation"] = "Acme Plumbing and Heating Ltd"
    resp = box.post(people["alice"], "/settings", alices, token_from="/settings")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409
    assert "saved by someone else after this page was loaded" in body
    # Nothing saved, nothing audited: line 2 stays private, the name as it was.
    site = box.web.site.settings()
    assert not site.line(2).record and site.organisation == "Acme Plumbing Ltd"
    assert load_config(box.data_dir).policy.rules.mode(2) == "never"
    assert site_changes(box) == audited
    # The page shows the settings as saved (line 2 private), and sent again it saves.
    again = form_of(people["alice"], "/settings", "settings-form")
    assert again["line-2-mode"] == "private"
    assert 'value="%s"' % again["based_on"] in body
    again["organisation"] = "Acme Plumbing and Heating Ltd"
    assert box.post(people["alice"], "/settings", again, token_from="/settings").status_code == 302
    site = box.web.site.settings()
    assert not site.line(2).record and site.organisation == "Acme Plumbing and Heating Ltd"
    assert load_config(box.data_dir).policy.rules.mode(2) == "never"


def test_the_same_settings_form_sent_twice_is_no_conflict(box, people):
    """A second submit of the same form (a double click) asks for what is saved now: it
    is not refused, and saves nothing more."""
    form = form_of(people["ivan"], "/settings", "settings-form")
    form["organisation"] = "Acme Two Ltd"
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    assert box.web.site.settings().organisation == "Acme Two Ltd"
    assert len(site_changes(box)) == 1


def test_a_form_without_the_field_is_not_checked(box, people):
    form = form_values(box.web.site.settings(), box.LINES)
    form["organisation"] = "Acme Two Ltd"
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    assert box.web.site.settings().organisation == "Acme Two Ltd"
