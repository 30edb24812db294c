"""A line added after setup (a bigger HAT, a line count raised) that nobody chose as
recorded or private: recorded by the rules' default as before, but said to be undecided on
the Settings and Lines pages and on the checklist, and the Settings form asks for a choice."""

import dataclasses
import re

from web.site import form_values

from .test_dashboard_todo import todo
from .test_documents import statuses
from .test_site import site_changes
from support.web import page


def add_line(box, n):
    """The box has line ``n`` now (a HAT with more lines), which setup never saw."""
    box.status._lines[n] = {"line": n, "state": "idle", "since": None, "call": None, "faults": []}


def mode_selected(html, n):
    select = re.search(r'<select id="line-%d-mode".*?</select>' % n, html, re.S).group(0)
    return re.findall(r'<option value="(\w*)"[^>]*selected', select)


def test_a_line_added_after_setup_is_said_to_be_undecided(box, people):
    ivan = people["ivan"]
    before = page(ivan, "/settings")
    assert 'id="undecided-lines"' not in before
    decided = {n: mode_selected(before, n) for n in range(1, 5)}
    add_line(box, 5)

    html = page(ivan, "/settings")
    assert "Line 5 was added after setup and never chosen as recorded or private" in html
    # Not shown as "Record calls", which a save of any other setting then made the choice.
    assert mode_selected(html, 5) == [""]
    assert {n: mode_selected(html, n) for n in range(1, 5)} == decided  # the lines chosen keep it

    lines = page(ivan, "/")
    assert 'id="undecided-5"' in lines and "recorded by default" in lines
    assert not re.search(r'id="undecided-[1-4]"', lines)
    assert todo(lines)[3].startswith("Agreed criteria for what is recorded (amber): line 5 was never chosen")
    assert statuses(people["audrey"])[3] == (
        "amber",
        "line 5 was never chosen as recorded or private: it follows the default rule until an "
        "installer chooses (Settings)",
    )


def test_the_settings_form_asks_for_the_choice_and_saves_it_audited(box, people):
    ivan = people["ivan"]
    add_line(box, 5)
    add_line(box, 6)
    before = box.web.site.settings()
    audited = site_changes(box)
    form = dict(form_values(before, 4), **{"line-5-name": "Fax", "line-6-name": "Back office"})
    resp = box.post(ivan, "/settings", form, token_from="/settings")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert (
        "Choose whether line 5 is recorded, private, or not connected (nothing is plugged into its socket)."
        in body
    )
    assert (
        "Choose whether line 6 is recorded, private, or not connected (nothing is plugged into its socket)."
        in body
    )
    assert box.web.site.settings() == before and site_changes(box) == audited

    form.update({"line-5-mode": "private", "line-6-mode": "record"})
    assert box.post(ivan, "/settings", form, token_from="/settings").status_code == 302
    site = box.web.site.settings()
    assert (site.line(5).record, site.line(6).record) == (False, True)
    [change] = site_changes(box)[len(audited) :]
    assert change.actor == "ivan"
    assert change.details["lines"][4:] == [
        {"line": 5, "name": "Fax", "record": False},
        {"line": 6, "name": "Back office", "record": True},
    ]
    assert 'id="undecided-lines"' not in page(ivan, "/settings")
    assert 'id="undecided-' not in page(ivan, "/")
    assert "never chosen" not in todo(page(ivan, "/")).get(3, "")


def test_a_line_given_a_mode_on_the_rules_page_was_decided(box, people):
    add_line(box, 5)
    config = box.config_store.get()
    rules = config.policy.rules.with_modes({5: "on_demand"})
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    assert 'id="undecided-lines"' not in page(people["ivan"], "/settings")
