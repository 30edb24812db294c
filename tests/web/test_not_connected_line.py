"""A line marked not connected in the setup wizard and the site settings: nothing is
plugged into its socket (a 4-line HAT at a site with 2 lines).

The form offered only recorded or private: an empty socket raised a no-voltage alarm for
good, and the only way out was to say the box had a 2-line HAT."""

import html
import re

from firmware.config import load_config

from .test_admin import settings_form
from .test_setup import post_setup

WORDS = "Not connected: nothing is plugged into this socket"


def wire_applier(box):
    from web.services import site_settings_applier

    box.services.apply_settings = site_settings_applier(box.config_store, box.audit, box.services.wall_us)


def test_the_wizard_offers_not_connected_and_keeps_it(box):
    client = box.client()
    page = html.unescape(client.get("/setup").get_data(as_text=True))
    select = re.search(r'<select id="line-4-mode"[^>]*>(.*?)</select>', page, re.S).group(1)
    # Short, to fit a phone's width (the hint above the table says what it means).
    assert '<option value="not_connected">Not connected (no line plugged in)</option>' in select
    resp = post_setup(box, client, **{"line-4-mode": "not_connected"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    site = box.web.site.settings()
    assert site.not_connected == (4,) and not site.line(4).record
    (entry,) = box.services.audit.entries(action="init", limit=1)
    assert entry.details["not_connected"] == [4]


def test_a_mode_that_is_none_of_the_three_is_refused_naming_all_three(box):
    client = box.client()
    resp = post_setup(box, client, **{"line-3-mode": "unplugged"})
    assert resp.status_code == 400
    page = html.unescape(resp.get_data(as_text=True))
    error = re.search(r'id="error-line-3-mode"[^>]*>([^<]+)<', page).group(1)
    assert error == (
        "Choose whether line 3 is recorded, private, or not connected (nothing is plugged into its socket)."
    )
    assert box.web.site.settings() is None


def test_settings_mark_a_line_not_connected_saved_applied_audited_and_shown(box, people):
    wire_applier(box)
    resp = box.post(
        people["ivan"],
        "/settings",
        settings_form(box, **{"line-3-mode": "not_connected"}),
        token_from="/settings",
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert box.web.site.settings().not_connected == (3,)
    config = load_config(box.data_dir)
    assert config.not_connected == [3]
    # Its recording mode is kept for when it is marked connected again: not made private.
    assert config.policy.rules.mode(3) != "never"
    person = box.services.audit.entries(action="config_change", limit=2)
    assert [e.details.get("not_connected") for e in person] == [[3], [3]]
    assert {e.actor for e in person} == {"ivan", "system"}
    # The form shows it as chosen.
    page = html.unescape(people["ivan"].get("/settings").get_data(as_text=True))
    select = re.search(r'<select id="line-3-mode"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'value="(\w*)" selected', select) == ["not_connected"]
    # The dashboard: "not connected", not a line fault nor a private line.
    box.status._lines[3]["faults"] = ["no_line_voltage"]
    box.status.set(3, "fault")
    dash = html.unescape(people["ivan"].get("/").get_data(as_text=True))
    row = dash.split('id="line-3"')[1].split("</tr>")[0]
    assert "(not connected)" in row and "(private)" not in row
    assert WORDS in row and "No voltage" not in row and "Line fault" not in row
    # The staff notice has no line 3: there is no phone on it.
    notice = html.unescape(people["sam"].get("/documents/staff-notice").get_data(as_text=True))
    rows = dict(re.findall(r"<tr><td>(\d)</td><td>[^<]*</td><td>([^<]*)</td></tr>", notice))
    assert "3" not in rows and rows["1"]
    # Marked connected again (recorded): its mode is the rules' again, the list empty.
    resp = box.post(people["ivan"], "/settings", settings_form(box), token_from="/settings")
    assert resp.status_code == 302
    assert box.web.site.settings().not_connected == ()
    assert load_config(box.data_dir).not_connected == []


def test_settings_saved_before_the_choice_read_as_every_line_connected(box, people):
    """A box set up by the release before: web.db has no "not_connected" key."""
    with box.web.db.tx() as conn:
        conn.execute("DELETE FROM site WHERE key = 'not_connected'")
    site = box.web.site.settings()
    assert site.not_connected == ()
    assert "not_connected" not in site.to_json()


def test_no_nag_that_a_line_not_connected_reaches_no_alarm_recipient(box, people):
    from web.documents import box_state

    from .test_mail_settings import GOOD

    wire_applier(box)
    ivan = people["ivan"]
    alarm_to = "sam@example.com (sam), sue@example.com (sue), audrey@example.com (audrey)"
    assert (
        box.post(
            ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail"
        ).status_code
        == 302
    )
    assert box.post(people["alice"], "/users/audrey/delete", {}, token_from="/users").status_code == 302
    with box.app.test_request_context():
        assert box_state(box.web).unreached_lines == (4,)
    form = settings_form(box, **{"line-4-mode": "not_connected"})
    assert box.post(ivan, "/settings", form, token_from="/settings").status_code == 302
    with box.app.test_request_context():
        assert box_state(box.web).unreached_lines == ()


def test_the_email_page_asks_no_alarm_recipient_for_a_line_not_connected(box, people):
    """Every address tied to a supervisor of lines 1 to 3, line 4 marked not connected: the
    E-mail page refused the list ("No alarm recipient would be mailed the alarms of line
    4"), and said so of the saved list, and the Users page too, while the checklist did
    not: nothing is plugged into line 4."""
    from .test_mail_settings import GOOD

    wire_applier(box)
    ivan = people["ivan"]
    form = settings_form(box, **{"line-4-mode": "not_connected"})
    assert box.post(ivan, "/settings", form, token_from="/settings").status_code == 302
    alarm_to = "sam@example.com (sam), sue@example.com (sue)"
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))
    assert 'id="alarm-unreached"' not in ivan.get("/settings/mail").get_data(as_text=True)
    # Marked connected again: it is asked for, naming line 4 alone.
    form = settings_form(box)
    assert box.post(ivan, "/settings", form, token_from="/settings").status_code == 302
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 400
    assert "No alarm recipient would be mailed the alarms of line 4:" in html.unescape(
        resp.get_data(as_text=True)
    )


def test_the_rules_page_says_beside_a_line_not_connected_that_it_is_never_recorded(box, people):
    """The Rules page let a line marked not connected be given any mode, "Always" too,
    with no word that nothing on it is recorded while it is so marked."""
    wire_applier(box)
    ivan = people["ivan"]
    note = 'id="line-3-not-connected"'
    assert note not in ivan.get("/rules").get_data(as_text=True)
    form = settings_form(box, **{"line-3-mode": "not_connected"})
    assert box.post(ivan, "/settings", form, token_from="/settings").status_code == 302
    page = html.unescape(ivan.get("/rules").get_data(as_text=True))
    said = page[page.index(note) :].split("</span>")[0]
    assert "Marked not connected (Settings page): never recorded while so, whatever its mode here." in said
    assert 'id="line-2-not-connected"' not in page and 'id="line-4-not-connected"' not in page
