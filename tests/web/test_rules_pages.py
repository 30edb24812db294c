"""The recording-rules page: every rule type edited, audited; bad input changes nothing."""

import dataclasses
import functools
import html
import json
import os
import re

import pytest

from firmware.config import load_config, save_config
from firmware.update.inbox import inbox_dir

from support.web import assert_remove_boxes, audited_change, rules_form


def test_every_rule_type_is_saved_applied_and_audited(box, people):
    resp = rules_form(
        box,
        people["ivan"],
        **{
            "line-2-mode": "never",
            "line-3-mode": "by_rule",
            "line-4-mode": "on_demand",
            "direction": ["in"],
            "hours_on": "on",
            "hours-mon": "09:00-12:30, 13:30-17:30",
            "hours-fri": "09:00-16:00",
            "holidays": "2026-12-25\n2026-12-26",
            "numbers-0-name": "helplines",
            "numbers-0-action": "exclude",
            "numbers-0-patterns": "0800*, 0808*",
            "numbers-1-name": "staff homes",
            "numbers-1-action": "exclude",
            "numbers-1-patterns": "01632 96????",
            "min_duration_s": "5",
            "sample_percent": "50",
            "on_demand-dtmf_code": "*7",
            "on_demand-from_start": "",
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    rules = load_config(box.data_dir).policy.rules
    assert [rules.mode(n) for n in (1, 2, 3, 4)] == ["always", "never", "by_rule", "on_demand"]
    assert rules.directions == ("in",)
    assert rules.hours.days == {"mon": ("09:00-12:30", "13:30-17:30"), "fri": ("09:00-16:00",)}
    assert rules.hours.holidays == ("2026-12-25", "2026-12-26")
    assert [(n.name, n.patterns) for n in rules.numbers] == [
        ("helplines", ("0800*", "0808*")),
        ("staff homes", ("01632 96????",)),
    ]
    assert (rules.min_duration_s, rules.sample_percent) == (5, 50)
    assert (rules.on_demand.dtmf_code, rules.on_demand.from_start) == ("*7", False)
    assert box.applied[-1].policy.rules == rules
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.actor == "ivan" and entry.target == "policy.rules"
    assert set(entry.details["changed"]) >= {
        "lines",
        "directions",
        "hours",
        "numbers",
        "min_duration_s",
        "sample_percent",
        "on_demand",
    }
    page = people["ivan"].get("/rules").get_data(as_text=True)
    assert 'value="09:00-12:30, 13:30-17:30"' in page and 'value="0800*, 0808*"' in page


def test_bad_rules_are_refused_with_the_field_named_and_nothing_changes(box, people):
    ivan = people["ivan"]
    cases = [
        ({"line-2-mode": "sometimes"}, "line-2-mode", "must be one of"),
        ({"direction": []}, "direction", "at least one direction"),
        ({"hours_on": "on", "hours-mon": "9 to 5"}, "hours-mon", "HH:MM-HH:MM"),
        ({"hours_on": "on", "hours-tue": "17:00-09:00"}, "hours-tue", "end after it starts"),
        ({"hours_on": "on", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        # Named as an office would name it: the message says what to give instead.
        (
            {"hours_on": "on", "timezone": "London"},
            "timezone",
            "unknown time zone &#39;London&#39;: give a time zone name such as &#34;Europe/London&#34;",
        ),
        ({"hours_on": "on", "holidays": "25/12/2026"}, "holidays", "YYYY-MM-DD"),
        (
            {"numbers-0-name": "x", "numbers-0-action": "exclude", "numbers-0-patterns": "call me"},
            "numbers-0-patterns",
            "number pattern",
        ),
        (
            {"numbers-0-name": "x", "numbers-0-action": "include", "numbers-0-patterns": ""},
            "numbers-0-patterns",
            "at least one pattern",
        ),
        (
            {"numbers-0-name": "x", "numbers-0-action": "maybe", "numbers-0-patterns": "0800*"},
            "numbers-0-action",
            "must be one of",
        ),
        ({"min_duration_s": "five"}, "min_duration_s", "number"),
        ({"min_duration_s": "601"}, "min_duration_s", "from 0 to 600"),
        ({"sample_percent": "150"}, "sample_percent", "from 0 to 100"),
        # In the page's words: "or null to turn it off" is the configuration file's.
        (
            {"on_demand-dtmf_code": "*9x"},
            "on_demand-dtmf_code",
            "must be 1 to 8 DTMF keys (0-9 * # A-D), or empty to turn it off, not &#39;*9x&#39;",
        ),
        ({"on_demand-lookback_s": "2"}, "on_demand-lookback_s", "from 8 to 600"),
        ({"on_demand-lookback_s": "\u00b2"}, "on_demand-lookback_s", "whole number"),
        # int() and float() took Arabic-Indic digits: "٣٠" was saved as a 30 s look-back.
        ({"on_demand-lookback_s": "\u0663\u0660"}, "on_demand-lookback_s", "whole number in digits 0-9"),
        ({"min_duration_s": "\u0665"}, "min_duration_s", "number in digits 0-9"),
        ({"sample_percent": "nan"}, "sample_percent", "number in digits 0-9"),
        (
            {"on_demand-dtmf_code": "*1"},
            "on_demand-dtmf_code",
            "the pause code for card details (*1) clashes with the code that asks for a recording (*1)",
        ),
        ({"numbers-\u00b2-name": "x", "min_duration_s": "five"}, "min_duration_s", "number"),
        ({"numbers-x-name": "x", "min_duration_s": "five"}, "min_duration_s", "number"),
    ]
    for fields, field, words in cases:
        resp = rules_form(box, ivan, **fields)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, fields
        m = re.search(r'id="error-%s" role="alert">([^<]+)<' % re.escape(field), page)
        assert m and words in m.group(1), (fields, re.findall(r'role="alert">([^<]+)<', page))
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert "config_change" not in [
        e.action for e in box.services.audit.entries(limit=100) if e.target == "policy.rules"
    ]
    assert box.applied == []
    page = rules_form(box, ivan, **{"numbers-20000-name": "", "min_duration_s": "five"}).get_data(
        as_text=True
    )
    assert len(page) < 200_000 and 'name="numbers-20000-name"' not in page


def test_a_line_recorded_only_inside_business_hours_with_none_set_is_refused(box, people):
    """Business hours ticked with every day empty: a "by the rules" line would record no
    call at all, and nobody would be told. The save is refused, naming the line."""
    ivan = people["ivan"]
    resp = rules_form(
        box,
        ivan,
        **{"line-3-mode": "by_rule", "hours_on": "on", "holidays": "2026-12-25", "hours-tue": " , "},
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    shown = dict(re.findall(r'id="error-([\w-]+)" role="alert">([^<]+)<', page))
    assert set(shown) == {"line-3-mode"}, shown
    assert shown["line-3-mode"].startswith("Line 3 is set to record by the rules only inside business hours")
    assert "no day has any: it would record no call" in shown["line-3-mode"]
    assert "Set the hours" in shown["line-3-mode"] and "another mode for line 3" in shown["line-3-mode"]
    # Lines added later would record nothing too.
    resp = rules_form(box, ivan, **{"default_mode": "by_rule", "hours_on": "on"})
    shown = dict(re.findall(r'id="error-([\w-]+)" role="alert">([^<]+)<', resp.get_data(as_text=True)))
    assert resp.status_code == 400 and set(shown) == {"default_mode"}, shown
    assert shown["default_mode"].startswith("Lines added later are set to record by the rules only inside")
    # A day with hours typed wrong is said as that mistake alone, not as no hours.
    resp = rules_form(box, ivan, **{"line-3-mode": "by_rule", "hours_on": "on", "hours-mon": "9 to 5"})
    shown = dict(re.findall(r'id="error-([\w-]+)" role="alert">([^<]+)<', resp.get_data(as_text=True)))
    assert resp.status_code == 400 and set(shown) == {"hours-mon"}, shown
    assert not os.path.exists(os.path.join(box.data_dir, "config.json")) and box.applied == []
    assert "config_change" not in [
        e.action for e in box.services.audit.entries(limit=100) if e.target == "policy.rules"
    ]
    # Hours unticked, or a line not recorded by the rules: nothing to refuse.
    assert rules_form(box, ivan, **{"line-3-mode": "by_rule"}).status_code == 302
    assert rules_form(box, ivan, **{"hours_on": "on", "line-3-mode": "never"}).status_code == 302


def test_every_mistake_is_reported_at_once_beside_its_field_and_nothing_changes(box, people):
    """An installer with many mistakes sees them all in one go, not one a submit."""
    mistakes = {
        "line-2-mode": ("sometimes", "must be one of"),
        "direction": ([], "at least one direction"),
        "hours-mon": ("9 to 5", "HH:MM-HH:MM"),
        "hours-tue": ("17:00-09:00", "end after it starts"),
        "timezone": ("Mars/Olympus", "unknown time zone"),
        "holidays": ("25/12/2026", "YYYY-MM-DD"),
        "numbers-0-patterns": ("call me", "number pattern"),
        "numbers-2-action": ("maybe", "must be one of"),
        "min_duration_s": ("five", "Enter a number"),
        "sample_percent": ("150", "from 0 to 100"),
        "on_demand-dtmf_code": ("*1", "clashes with the code that asks for a recording"),
        "on_demand-lookback_s": ("2", "from 8 to 600"),
    }
    fields = {field: value for field, (value, _) in mistakes.items()}
    fields.update(
        {
            "hours_on": "on",
            "numbers-0-name": "helplines",
            "numbers-0-action": "exclude",
            "numbers-1-name": "staff",
            "numbers-1-action": "exclude",
            "numbers-1-patterns": "01632 96????",
            "numbers-2-name": "customers",
            "numbers-2-patterns": "0800*",
        }
    )
    resp = rules_form(box, people["ivan"], **fields)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    shown = dict(re.findall(r'id="error-([\w-]+)" role="alert">([^<]+)<', page))
    assert set(shown) == set(mistakes), shown
    for field, (_, words) in mistakes.items():
        assert words in shown[field], (field, shown[field])
    assert not os.path.exists(os.path.join(box.data_dir, "config.json")) and box.applied == []


def test_auditors_read_the_rules_and_cannot_change_them(box, people):
    page = people["audrey"].get("/rules").get_data(as_text=True)
    assert 'id="rules-form"' in page and 'id="save-button"' not in page
    assert 'aria-label="Mode of line 1" disabled' in page
    # No instructions to edit what they cannot ("tick its Remove box, then save"): who can.
    assert "then save" not in page and "Read only: an installer changes these rules." in page
    assert "then save" in people["ivan"].get("/rules").get_data(as_text=True)


def _wired_box_with_line_4_private(box):
    """The box set up through the wizard with line 4 private, its settings put into its
    configuration as on a real box; returns the admin's client."""
    from web.services import site_settings_applier

    box.services.apply_settings = site_settings_applier(box.config_store, box.audit, box.services.wall_us)
    client = box.client()
    form = box.setup_form(**{"line-4-mode": "private", "line-4-name": "Director"})
    form["csrf_token"] = box.token_of(client, "/setup")
    assert client.post("/setup", data=form).status_code == 302
    key = re.search(r'id="recovery-key">([^<]+)<', client.get("/setup/recovery").get_data(as_text=True))
    token = box.token_of(client, "/setup/recovery")
    client.post("/setup/recovery", data={"csrf_token": token, "typed_key": key.group(1)})
    assert load_config(box.data_dir).policy.rules.mode(4) == "never"
    return client


def test_a_line_made_private_in_the_settings_is_not_recorded_by_a_rules_save(box):
    """The rules page cannot undo the privacy the settings promised line 4's people:
    it says where that is done, and changes nothing."""
    admin = _wired_box_with_line_4_private(box)
    config = os.path.join(box.data_dir, "config.json")
    before, entries = open(config, "rb").read(), len(box.audit.entries(limit=1000))
    resp = rules_form(box, admin)  # every line "always"
    assert resp.status_code == 400
    assert "Line 4 is private (Settings page): make it recorded there first." in resp.get_data(as_text=True)
    assert open(config, "rb").read() == before and len(box.audit.entries(limit=1000)) == entries
    # With another mistake, both are said at once.
    page = rules_form(box, admin, sample_percent="150").get_data(as_text=True)
    assert 'id="error-line-4-mode" role="alert">Line 4 is private' in page
    assert 'id="error-sample_percent" role="alert">must be a number' in page
    assert open(config, "rb").read() == before and len(box.audit.entries(limit=1000)) == entries
    # The other lines' rules still change; made recorded in the settings, line 4 follows.
    assert rules_form(box, admin, **{"line-4-mode": "never", "line-1-mode": "on_demand"}).status_code == 302
    assert load_config(box.data_dir).policy.rules.mode(1) == "on_demand"


def test_every_page_says_what_the_rules_record(box):
    """Line 2 made "never" on the rules page is private on the settings page, the
    staff notice and the dashboard; line 4, private in the settings but recorded
    by a configuration imported since, is said to be recorded."""
    import dataclasses

    admin = _wired_box_with_line_4_private(box)
    assert rules_form(box, admin, **{"line-2-mode": "never", "line-4-mode": "never"}).status_code == 302
    config = box.config_store.get()
    box.config_store.save(config.replace(policy=dataclasses.replace(
        config.policy, rules=config.policy.rules.with_modes({4: "always"}))))  # fmt: skip
    settings = admin.get("/settings").get_data(as_text=True)
    chosen = dict(re.findall(r'name="(line-\d-mode)".*?<option value="(\w+)" selected', settings, re.S))
    assert chosen == {"line-1-mode": "record", "line-2-mode": "private", "line-3-mode": "record",
                      "line-4-mode": "record"}  # fmt: skip
    status = {x["line"]: x["record"] for x in admin.get("/api/status").get_json()["lines"]}
    assert status == {1: True, 2: False, 3: True, 4: True}
    notice = admin.get("/documents/staff-notice").get_data(as_text=True)
    rows = re.findall(r"<tr><td>(\d)</td><td>[^<]*</td><td>([^<]*)</td></tr>", notice)
    assert [(n, how == "never recorded") for n, how in rows] == [("1", 0), ("2", 1), ("3", 0), ("4", 0)]
    # The settings saved as the page shows them, another organisation name: no line's
    # recording changes (the page showed line 2 as it was, private).
    form = {
        k: v
        for k, v in box.setup_form(organisation="Acme Two Ltd").items()
        if not k.startswith(("setup", "admin"))
    }
    form.update(chosen, csrf_token=box.token_of(admin, "/settings"), time_zone="Europe/London")
    assert admin.post("/settings", data=form).status_code == 302
    assert [load_config(box.data_dir).policy.rules.mode(n) for n in (1, 2, 3, 4)] == [
        "always",
        "never",
        "always",
        "always",
    ]


def pci_form(box, client, **fields):
    """Post the card-payment form with the defaults (*1, *2, the button, 120 s, masking),
    ``fields`` over that (keys without their ``pci-``)."""
    data = {
        "pause_code": "*1",
        "resume_code": "*2",
        "button": "on",
        "auto_resume_s": "120",
        "mask_dtmf": "on",
    }
    data.update(fields)
    form = {"pci-" + k: v for k, v in data.items() if v is not None}
    form["csrf_token"] = box.token_of(client, "/rules")
    return client.post("/rules/card-payments", data=form)


def test_the_card_payment_settings_are_set_on_the_rules_page_applied_and_audited(box, people):
    ivan = people["ivan"]
    page = ivan.get("/rules").get_data(as_text=True)
    assert 'id="card-payments"' in page and 'id="pci-pause_code"' in page and 'value="*1"' in page
    resp = pci_form(
        box, ivan, pause_code="#51", resume_code="#52", button=None, auto_resume_s="300", mask_dtmf=None
    )
    assert resp.status_code == 302 and "saved=pci" in resp.location
    pci = load_config(box.data_dir).policy.pci
    assert (pci.pause_code, pci.resume_code, pci.button, pci.auto_resume_s, pci.mask_dtmf) == (
        "#51",
        "#52",
        False,
        300,
        False,
    )
    assert box.applied[-1].policy.pci == pci  # the running box has it at once
    entry = [e for e in box.services.audit.entries(limit=10) if e.target == "policy.pci"][0]
    assert entry.action == "config_change" and entry.actor == "ivan"
    assert entry.details["changed"] == {
        "pause_code": "#51",
        "resume_code": "#52",
        "button": False,
        "auto_resume_s": 300,
        "mask_dtmf": False,
    }
    page = ivan.get(resp.location).get_data(as_text=True)
    assert 'id="saved"' in page and 'value="#51"' in page
    # Both codes empty turn the codes off.
    assert pci_form(box, ivan, pause_code="", resume_code="").status_code == 302
    assert load_config(box.data_dir).policy.pci.pause_code is None


def test_bad_card_payment_settings_are_refused_with_the_field_named_and_nothing_changes(box, people):
    ivan = people["ivan"]
    cases = [
        (
            {"pause_code": "*1x"},
            "pci-pause_code",
            "The pause code is 1 to 8 keys of the handset (0-9, * and #)",
        ),
        # A-D: not on most handsets' keypads; * or # alone: keyed for much else on a call.
        (
            {"pause_code": "abc"},
            "pci-pause_code",
            "The pause code ABC has A, B, C or D, keys most handsets do not have, so it could not be "
            "keyed: use 0-9, * and # only, such as *1.",
        ),
        ({"resume_code": "*2D"}, "pci-resume_code", "The resume code *2D has A, B, C or D"),
        (
            {"pause_code": "#"},
            "pci-pause_code",
            "The pause code cannot be # alone: callers key it for menus and to end numbers, which "
            "would pause the recording by chance. Add a digit, such as #1.",
        ),
        ({"resume_code": "*"}, "pci-resume_code", "The resume code cannot be * alone"),
        ({"resume_code": "123456789"}, "pci-resume_code", "The resume code is 1 to 8 keys"),
        ({"resume_code": "*1"}, "pci-resume_code", "must differ from the pause code"),
        ({"resume_code": "*12"}, "pci-resume_code", "the resume code (*12) clashes with the pause code"),
        ({"pause_code": "*9"}, "pci-pause_code", "clashes with the code that asks for a recording (*9)"),
        ({"auto_resume_s": "5"}, "pci-auto_resume_s", "from 10 to 1800"),
        ({"auto_resume_s": "two minutes"}, "pci-auto_resume_s", "whole number of seconds"),
        ({"auto_resume_s": "\u0666\u0660"}, "pci-auto_resume_s", "in digits 0-9"),
    ]
    for fields, field, words in cases:
        resp = pci_form(box, ivan, **fields)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, fields
        assert "Nothing was saved" in page
        m = re.search(r'id="error-%s" role="alert">([^<]+)<' % re.escape(field), page)
        assert m and words in m.group(1), (fields, re.findall(r'role="alert">([^<]+)<', page))
    # Two mistakes: both said at once.
    page = pci_form(box, ivan, pause_code="x", auto_resume_s="0").get_data(as_text=True)
    assert 'id="error-pci-pause_code"' in page and 'id="error-pci-auto_resume_s"' in page
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert not [e for e in box.services.audit.entries(limit=100) if e.target == "policy.pci"]
    assert box.applied == []


def test_a_card_payment_code_of_digits_alone_is_refused(box, people):
    """A resume code of digits alone ends a pause when a caller keys those digits in a card
    number or its security code, and the rest of the card details are recorded; a pause
    code of digits alone is keyed in numbers dialled and menu choices. The page asks for a
    code starting with * or #, as the personal-call code is, and changes nothing."""
    ivan = people["ivan"]
    cases = [
        (
            {"resume_code": "7"},
            "pci-resume_code",
            "The resume code 7 does not start with * or #: a caller keying a card number or "
            "its security code while the recording is paused may key those digits, which would "
            "resume the recording in the middle of the card details. Start it with * or #, "
            "such as *7.",
        ),
        ({"resume_code": "1234"}, "pci-resume_code", "The resume code 1234 does not start with"),
        ({"resume_code": "12#"}, "pci-resume_code", "The resume code 12# does not start with"),
        ({"pause_code": "1"}, "pci-pause_code", "The pause code 1 does not start with * or #"),
    ]
    for fields, field, words in cases:
        resp = pci_form(box, ivan, **fields)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, fields
        m = re.search(r'id="error-%s" role="alert">([^<]+)<' % re.escape(field), page)
        assert m and words in m.group(1), (fields, re.findall(r'role="alert">([^<]+)<', page))
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert not [e for e in box.services.audit.entries(limit=100) if e.target == "policy.pci"]
    assert box.applied == []
    # A code starting with # and holding digits after it is still taken.
    assert pci_form(box, ivan, pause_code="#1", resume_code="*27").status_code == 302


def test_auditors_read_the_card_payment_settings_and_cannot_change_them(box, people):
    page = people["audrey"].get("/rules").get_data(as_text=True)
    assert 'aria-label="Pause code" value="*1" disabled' in page and 'id="save-pci"' not in page
    assert pci_form(box, people["audrey"], pause_code="#9").status_code == 403
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))


def test_the_personal_call_code_is_set_per_line_on_the_rules_page_and_audited(box, people):
    ivan = people["ivan"]
    resp = rules_form(
        box, ivan, **{"personal-dtmf_code": "*7", "line-1-personal": "on", "line-2-personal": "on"}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    personal = load_config(box.data_dir).policy.rules.personal
    assert (personal.dtmf_code, personal.lines) == ("*7", (1, 2))
    assert box.applied[-1].policy.rules.personal == personal
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.actor == "ivan"
    assert entry.details["changed"]["personal"] == {"dtmf_code": "*7", "lines": [1, 2]}
    page = ivan.get("/rules").get_data(as_text=True)
    assert re.search(r'id="personal-dtmf_code" [^>]*value="\*7"', page)
    ticked = re.findall(r'id="line-(\d)-personal" [^>]*?(checked)?>', page)
    assert [(n, bool(c)) for n, c in ticked] == [("1", True), ("2", True), ("3", False), ("4", False)]
    # Every line ticked is every line (those added later too).
    every = {"line-%d-personal" % n: "on" for n in range(1, box.LINES + 1)}
    assert rules_form(box, ivan, **{"personal-dtmf_code": "#7", **every}).status_code == 302
    personal = load_config(box.data_dir).policy.rules.personal
    assert (personal.dtmf_code, personal.lines) == ("#7", None)
    # Emptied, it is off, left out of config.json, and the trail says it changed to nothing.
    assert rules_form(box, ivan, **every).status_code == 302
    assert load_config(box.data_dir).policy.rules.personal.dtmf_code is None
    with open(os.path.join(box.data_dir, "config.json")) as f:
        assert '"personal"' not in f.read()
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.details["changed"] == {"personal": None}


def test_a_private_line_says_the_personal_call_code_has_nothing_to_do_there(box, people):
    ivan = people["ivan"]
    every = {"line-%d-personal" % n: "on" for n in range(1, box.LINES + 1)}
    resp = rules_form(box, ivan, **{"personal-dtmf_code": "*7", "line-2-mode": "never", **every})
    assert resp.status_code == 302
    page = ivan.get("/rules").get_data(as_text=True)
    said = re.findall(r'id="line-(\d)-personal-private">([^<]*)<', page)
    assert said == [("2", "Nothing to pause: this line is private, never recorded.")]


def test_a_bad_personal_call_code_is_refused_beside_its_field_and_nothing_changes(box, people):
    ivan = people["ivan"]
    cases = [
        ({"personal-dtmf_code": "7", "line-1-personal": "on"}, "must start with * or # and have 2 to 8 keys"),
        ({"personal-dtmf_code": "*7x", "line-1-personal": "on"}, "DTMF keys"),
        ({"personal-dtmf_code": "*7x", "line-1-personal": "on"}, "or empty to turn it off"),
        # Clashing with a card-payment code (a form of its own): said beside this field.
        (
            {"personal-dtmf_code": "*12", "line-1-personal": "on"},
            "the pause code for card details (*1) clashes with the personal-call code (*12)",
        ),
        (
            {"personal-dtmf_code": "*9", "line-1-personal": "on"},
            "clashes with the code that asks for a recording",
        ),
        ({"personal-dtmf_code": "*7"}, "Tick the lines the personal-call code works on"),
    ]
    for fields, words in cases:
        resp = rules_form(box, ivan, **fields)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, fields
        m = re.search(r'id="error-personal-dtmf_code" role="alert">([^<]+)<', page)
        assert m and words in m.group(1), (fields, re.findall(r'role="alert">([^<]+)<', page))
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert box.applied == []


def test_a_lines_outside_line_digit_is_set_on_the_rules_page_applied_and_audited(box, people):
    ivan = people["ivan"]
    resp = rules_form(box, ivan, **{"line-2-outside_line": "9"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    rules = load_config(box.data_dir).policy.rules
    assert rules.outside_lines() == {2: "9"}
    assert box.applied[-1].policy.rules.outside_lines() == {2: "9"}
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.actor == "ivan"
    assert {"line": 2, "mode": "always", "outside_line": "9"} in entry.details["changed"]["lines"]
    page = ivan.get("/rules").get_data(as_text=True)
    assert re.search(r'id="line-2-outside_line" [^>]*value="9"', page)
    assert re.search(r'id="line-1-outside_line" [^>]*value=""', page)
    # Emptied, the line has none, and config.json says nothing of it (the release before reads it).
    assert rules_form(box, ivan).status_code == 302
    assert load_config(box.data_dir).policy.rules.outside_lines() == {}
    with open(os.path.join(box.data_dir, "config.json")) as f:
        assert "outside_line" not in f.read()


def test_a_bad_outside_line_digit_is_refused_beside_its_field_and_nothing_changes(box, people):
    ivan = people["ivan"]
    for bad in ("9a", "901", "*9"):
        resp = rules_form(box, ivan, **{"line-3-outside_line": bad, "line-1-mode": "never"})
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, bad
        m = re.search(r'id="error-line-3-outside_line" role="alert">([^<]+)<', page)
        assert m and "Line 3&#39;s outside-line digit" in m.group(1) and bad in m.group(1), (
            bad,
            re.findall(r'role="alert">([^<]+)<', page),
        )
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert box.applied == []


def test_a_long_bad_outside_line_digit_is_said_back_cut_short(box, people):
    typed = "9" + "x" * 500
    resp = rules_form(box, people["ivan"], **{"line-2-outside_line": typed})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    m = re.search(r'id="error-line-2-outside_line" role="alert">([^<]+)<', page)
    assert m and m.group(1).endswith("not %s\u2026." % typed[:20]), m and m.group(1)
    assert typed[:21] not in m.group(1)
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))


# 2026-12-06 14:31:05 UTC: when the update's step on trial began.
TRIAL_AT_US = 1796567465 * 10**6


def _update_at(box, step, note=None):
    """The update inbox's progress note as the updater leaves it at ``step`` (None: none)."""
    folder = inbox_dir(box.data_dir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "progress.json")
    if step is None:
        os.remove(path)
        return
    with open(path, "w") as f:
        if note is not None:
            f.write(note)
        else:
            json.dump(
                {"step": step, "at_us": TRIAL_AT_US, "version": "2.0.0", "previous_version": "1.9.0"}, f
            )


def _config_changes(box):
    return [
        e
        for e in box.services.audit.entries(limit=50)
        if e.action == "config_change" and e.target == "policy.rules"
    ]


@pytest.mark.parametrize("step", ["switch", "restart", "health", "rollback", "unreadable"])
def test_while_an_update_is_on_trial_the_settings_the_release_before_refuses_are_not_set(box, people, step):
    """The release before refuses a config.json with the personal-call code or an outside-line
    digit: set while the new release was on trial, a rollback left a recorder that would not
    start. Such a save is refused beside each field, and nothing changes."""
    ivan = people["ivan"]
    _update_at(box, step, note="{" if step == "unreadable" else None)
    fields = {
        "personal-dtmf_code": "*7",
        "line-1-personal": "on",
        "line-2-outside_line": "9",
        "line-3-mode": "never",
    }
    resp = rules_form(box, ivan, **fields)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    said = {
        field: re.search(r'id="error-%s" role="alert">([^<]+)<' % field, page)
        for field in ("personal-dtmf_code", "line-2-outside_line")
    }
    when = box.web.local_time().when(TRIAL_AT_US)
    for field, m in said.items():
        assert m, (field, re.findall(r'role="alert">([^<]+)<', page))
        if step == "unreadable":
            assert m.group(1).startswith("The update being installed is still on trial: set this once")
        else:
            assert m.group(1).startswith(
                "The update to version 2.0.0 installed on %s is still on trial: set this once it is "
                "marked good, or a rollback to version 1.9.0 would stop the recorder" % when
            ), m.group(1)
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert box.applied == [] and _config_changes(box) == []
    # A save that sets neither is taken.
    assert rules_form(box, ivan, **{"line-3-mode": "never"}).status_code == 302
    assert load_config(box.data_dir).policy.rules.mode(3) == "never"
    assert len(_config_changes(box)) == 1


@pytest.mark.parametrize("step", ["wait_idle", "still_installing", "mark_good", None])
def test_before_the_switch_and_once_marked_good_they_are_set(box, people, step):
    _update_at(box, "health")
    _update_at(box, step)
    fields = {"personal-dtmf_code": "*7", "line-1-personal": "on", "line-2-outside_line": "9"}
    assert rules_form(box, people["ivan"], **fields).status_code == 302
    rules = load_config(box.data_dir).policy.rules
    assert rules.personal.dtmf_code == "*7" and rules.outside_lines() == {2: "9"}


def test_on_trial_what_the_saved_rules_have_already_may_be_changed(box, people):
    """The code changed, a digit changed: config.json already held each, so a rollback
    meets nothing it did not meet before. A line given a digit where it had none is refused."""
    ivan = people["ivan"]
    fields = {"personal-dtmf_code": "*7", "line-1-personal": "on", "line-2-outside_line": "9"}
    assert rules_form(box, ivan, **fields).status_code == 302
    _update_at(box, "health")
    fields.update({"personal-dtmf_code": "#7", "line-2-outside_line": "0"})
    assert rules_form(box, ivan, **fields).status_code == 302
    rules = load_config(box.data_dir).policy.rules
    assert rules.personal.dtmf_code == "#7" and rules.outside_lines() == {2: "0"}
    resp = rules_form(box, ivan, **dict(fields, **{"line-4-outside_line": "9"}))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert re.search(r'id="error-line-4-outside_line" role="alert">The update to version 2\.0\.0', page)
    assert 'id="error-personal-dtmf_code"' not in page
    assert load_config(box.data_dir).policy.rules.outside_lines() == {2: "0"}


@pytest.mark.parametrize(
    "name, said",
    [
        ("Doc\x07tors", "Remove the control character U+0007"),
        ("Doctors\x1b[2J", "Remove the control character U+001B"),
        ("\u202edrowssap", "Remove the direction control U+202E"),
    ],
)
def test_a_list_name_with_a_control_character_is_named_and_nothing_is_saved(box, people, name, said):
    """A list's name is shown on the pages, the staff notice and in the audit trail: one
    with a control character (that shows as nothing, or cuts the text) or a direction
    override (that shows it in another order) was saved, as the site settings' names are not."""
    config = os.path.join(box.data_dir, "config.json")
    before = open(config, "rb").read() if os.path.exists(config) else None
    entries = len(box.audit.entries(limit=1000))
    resp = rules_form(
        box,
        people["ivan"],
        **{"numbers-0-name": name, "numbers-0-action": "exclude", "numbers-0-patterns": "01632 960001"},
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-numbers-0-name"' in page and said in page
    assert (open(config, "rb").read() if os.path.exists(config) else None) == before
    assert len(box.audit.entries(limit=1000)) == entries


def test_two_lists_of_one_name_are_said_as_the_page_shows_them(box, people):
    """It said "numbers[1] already has this name": a field of the settings, not the list the
    installer sees. The page's list 3 follows an empty row 2 (no list), so it is the rules'
    second list: the message names it as the page does, list 3, with its name."""
    config = os.path.join(box.data_dir, "config.json")
    resp = rules_form(
        box,
        people["ivan"],
        **{
            "numbers-0-name": "staff",
            "numbers-0-action": "exclude",
            "numbers-0-patterns": "01632 960001",
            "numbers-1-name": "",
            "numbers-1-patterns": "",
            "numbers-2-name": "ok",
            "numbers-2-action": "exclude",
            "numbers-2-patterns": "01632 960002",
            "numbers-3-name": "ok",
            "numbers-3-action": "exclude",
            "numbers-3-patterns": "01632 960003",
        },
    )
    page = resp.get_data(as_text=True)
    m = re.search(r'id="error-numbers-3-name" role="alert">([^<]+)<', page)
    assert resp.status_code == 400 and m, re.findall(r'role="alert">([^<]+)<', page)
    assert m.group(1) == "List 3 is already named &#34;ok&#34;: give each list a name of its own."
    assert "numbers[" not in page
    assert not os.path.exists(config)


def test_a_list_row_with_patterns_or_include_but_no_name_is_refused_and_kept(box, people):
    """Patterns typed in the blank row of the number lists with no name were left out
    without a word: the page said "Saved" and the numbers were gone. Such a row is refused
    beside its name, as typed; a blank row (its action at "exclude", the first choice,
    as the page sends it) is still left out."""
    ivan = people["ivan"]
    saved = {"numbers-0-name": "helplines", "numbers-0-action": "exclude", "numbers-0-patterns": "0800*"}
    assert rules_form(box, ivan, **saved).status_code == 302
    config = os.path.join(box.data_dir, "config.json")
    before = open(config, "rb").read()
    entries = len(box.audit.entries(limit=1000))
    blank = {"numbers-2-name": "", "numbers-2-action": "exclude", "numbers-2-patterns": ""}
    cases = [
        (
            {"numbers-1-action": "exclude", "numbers-1-patterns": "01632 960001"},
            "A list with patterns needs a name",
        ),
        ({"numbers-1-action": "include", "numbers-1-patterns": ""}, "An include list needs a name"),
        (
            {"numbers-1-action": "include", "numbers-1-patterns": "0161*"},
            "An include list with patterns needs a name",
        ),
    ]
    for fields, words in cases:
        resp = rules_form(box, ivan, **saved, **blank, **fields)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, fields
        m = re.search(r'id="error-numbers-1-name" role="alert">([^<]+)<', page)
        assert m and m.group(1).startswith(words), (fields, re.findall(r'role="alert">([^<]+)<', page))
        assert 'id="saved"' not in page
        if fields["numbers-1-patterns"]:
            assert re.search(
                r'name="numbers-1-patterns"[^>]*value="%s"' % re.escape(fields["numbers-1-patterns"]), page
            )
        said = page.split('name="numbers-1-action"')[1].split("</select>")[0]
        assert '<option value="%s" selected>' % fields["numbers-1-action"] in said, said
    assert open(config, "rb").read() == before
    assert len(box.audit.entries(limit=1000)) == entries
    assert [n.name for n in box.applied[-1].policy.rules.numbers] == ["helplines"]
    # A blank row is still left out; a list is removed by emptying its row.
    empty = {"numbers-0-name": "", "numbers-0-action": "exclude", "numbers-0-patterns": ""}
    assert rules_form(box, ivan, **empty, **blank).status_code == 302
    assert load_config(box.data_dir).policy.rules.numbers == ()


def test_clearing_a_saved_lists_name_still_removes_it(box, people):
    """The page says a saved list is removed by its Remove box "(or clear its name)": a
    saved list (its hidden ``saved`` mark) whose name is cleared, its patterns left, is
    removed, not refused as a new row with patterns and no name is."""
    ivan = people["ivan"]
    saved = {"numbers-0-name": "helplines", "numbers-0-action": "exclude", "numbers-0-patterns": "0800*"}
    assert rules_form(box, ivan, **saved).status_code == 302
    assert 'name="numbers-0-saved" value="1"' in ivan.get("/rules").get_data(as_text=True)
    cleared = dict(saved, **{"numbers-0-name": "", "numbers-0-saved": "1"})
    assert rules_form(box, ivan, **cleared).status_code == 302
    assert load_config(box.data_dir).policy.rules.numbers == ()


def test_a_saved_lists_remove_box_removes_it_audited_as_clearing_its_name_does(box, people):
    """A number list was removed only by clearing its name. Each saved row now has a Remove
    box: ticked, the list goes on save, with the same `config_change` entry as clearing its
    name makes. A new row has no box."""
    ivan = people["ivan"]
    saved = {
        "numbers-0-name": "helplines",
        "numbers-0-action": "exclude",
        "numbers-0-patterns": "0800*",
        "numbers-1-name": "staff homes",
        "numbers-1-action": "exclude",
        "numbers-1-patterns": "01632 960001",
    }
    marks = {"numbers-0-saved": "1", "numbers-1-saved": "1"}

    def removed(**how):
        post = functools.partial(rules_form, box, ivan)
        names = lambda: [n.name for n in load_config(box.data_dir).policy.rules.numbers]  # noqa: E731
        both, one = ["helplines", "staff homes"], ["staff homes"]
        return audited_change(box, post, saved, dict(marks, **how), names, both, one)

    assert rules_form(box, ivan, **saved).status_code == 302
    page = ivan.get("/rules").get_data(as_text=True)
    assert_remove_boxes(page, "numbers", "list")
    cleared = removed(**{"numbers-0-name": ""})
    assert removed(**{"numbers-0-remove": "on"}) == cleared
    assert "config_change" in [e[0] for e in cleared]


def test_a_number_without_a_wildcard_too_short_or_long_for_a_whole_number_is_refused(box, people):
    """ "01632 96" (meant as "01632 96*") matches only the number 0163296, which no call
    has: it was saved, matched nothing, and the staff notice counted it. Refused, the entry
    named, with what to give; a whole number, 0800 1111 (seven digits after the 0), a short
    code and a wildcard are kept."""
    ivan = people["ivan"]
    for typed, said in (
        (
            "0800*, 01632 96",
            '"01632 96" has no "*" or "?", so it matches only that number exactly, '
            "and it is too short to be a whole number (a number beginning 0 has 7 to 10 digits "
            'after it): it would match no call. Add "*" to match every number beginning so '
            '("01632 96*"), or give the whole number.',
        ),
        ("+44 1632 960 12345", "it is too long to be a whole number (a number beginning +44 has 7 to 10"),
    ):
        resp = rules_form(
            box,
            ivan,
            **{"numbers-0-name": "homes", "numbers-0-action": "exclude", "numbers-0-patterns": typed},
        )
        assert resp.status_code == 400, typed
        m = re.search(r'id="error-numbers-0-patterns" role="alert">([^<]+)<', resp.get_data(as_text=True))
        assert m and said in html.unescape(m.group(1)), (typed, m and m.group(1))
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    kept = "01632 960123, 0800 1111, 999, 01632 96*, +1 555"
    resp = rules_form(
        box, ivan, **{"numbers-0-name": "homes", "numbers-0-action": "exclude", "numbers-0-patterns": kept}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert load_config(box.data_dir).policy.rules.numbers[0].patterns == tuple(kept.split(", "))


def test_business_hours_with_spaces_round_the_dash_are_taken(box, people):
    """ "08:00 - 17:30", as people type a range, was refused; it is saved as 08:00-17:30.
    "9-5" is still refused, with the form it must take."""
    ivan = people["ivan"]
    resp = rules_form(box, ivan, **{"hours_on": "on", "hours-mon": "08:00 - 12:30,13:30 -17:30"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert load_config(box.data_dir).policy.rules.hours.days == {"mon": ("08:00-12:30", "13:30-17:30")}
    resp = rules_form(box, ivan, **{"hours_on": "on", "hours-mon": "9-5"})
    m = re.search(r'id="error-hours-mon" role="alert">([^<]+)<', resp.get_data(as_text=True))
    assert resp.status_code == 400 and m, resp.status_code
    assert html.unescape(m.group(1)).endswith(
        'must be a window "HH:MM-HH:MM" such as "09:00-17:30", not \'9-5\''
    )


def test_the_card_payment_settings_are_said_in_the_rules_page_words_in_the_audit_trail(box, people):
    """Its entry named masking "Mask dtmf" and the time limit "Auto resume s": the code's
    names, not the page's words."""
    assert pci_form(box, people["ivan"], auto_resume_s="300", mask_dtmf=None).status_code == 302
    page = people["audrey"].get("/audit").get_data(as_text=True)
    assert "Keys pressed after the answer cut out of the recording (DTMF masking): no" in page
    assert "Pause time limit: 5 min" in page
    assert "Mask dtmf" not in page and "Auto resume s" not in page


def test_a_private_line_later_marked_not_connected_is_not_called_private_by_the_rules_page(box):
    """A not-connected line is no private line: its mode in the rules may change (it is
    never recorded while it is not connected), and the page does not say it is private."""
    from .test_admin import settings_form

    admin = _wired_box_with_line_4_private(box)
    form = settings_form(box, **{"line-4-mode": "not_connected", "line-4-name": "Director"})
    assert box.post(admin, "/settings", form, token_from="/settings").status_code == 302
    assert load_config(box.data_dir).policy.rules.mode(4) == "never"
    resp = rules_form(box, admin)  # every line "always"
    assert resp.status_code == 302, resp.get_data(as_text=True)
    config = load_config(box.data_dir)
    assert config.policy.rules.mode(4) == "always" and config.not_connected == [4]


def test_a_line_recording_every_call_is_said_to_record_the_numbers_an_exclude_list_names(box, people):
    """An installer writing "never record calls to the GP surgery" as an exclude list, with
    line 1 left at "Always record", is told that line 1 still records those calls: the lists
    are for the lines recorded by the rules (docs/policy.md, "The decision")."""
    ivan = people["ivan"]
    fields = {
        "line-3-mode": "by_rule",
        "numbers-0-name": "gp surgery",
        "numbers-0-action": "exclude",
        "numbers-0-patterns": "01632 960001",
    }
    resp = rules_form(box, ivan, **fields)
    assert resp.status_code == 302, re.findall(r'role="alert">([^<]+)<', resp.get_data(as_text=True))
    page = html.unescape(ivan.get("/rules?saved=1").get_data(as_text=True))
    said = re.search(r'<p class="notice" id="lists-not-on-every-call">(.*?)</p>', page, re.S)
    assert said, page
    assert said.group(1) == (
        "Lines 1, 2 and 4 record every call: the number lists below are for lines set to "
        '"By the rules below", so their calls to the numbers of an exclude list (gp surgery) '
        'are recorded. To keep those calls out, set the line to "By the rules below".'
    )
    # No line records every call: nothing to say.
    fields.update({"line-1-mode": "by_rule", "line-2-mode": "never", "line-4-mode": "on_demand"})
    assert rules_form(box, ivan, **fields).status_code == 302
    assert 'id="lists-not-on-every-call"' not in ivan.get("/rules").get_data(as_text=True)


@pytest.mark.parametrize(
    "typed", [{"hours-mon": "09:00-17:30"}, {"hours-tue": "9am-5pm"}, {"holidays": "2026-12-25"}]
)
def test_hours_or_holidays_typed_without_the_hours_ticked_are_refused_and_nothing_changes(box, people, typed):
    """An installer typed Monday's hours, or the public holidays, and saved without ticking
    "Only inside these hours": the page said "Saved", and the hours and holidays were
    dropped unsaid, so calls went on being recorded at any time and on the holidays."""
    ivan = people["ivan"]
    resp = rules_form(box, ivan, **dict(typed, **{"line-3-mode": "by_rule"}))
    page = html.unescape(resp.get_data(as_text=True))
    shown = dict(re.findall(r'id="error-([\w-]+)" role="alert">([^<]+)<', page))
    assert resp.status_code == 400 and set(shown) == {"hours_on"}, shown
    assert shown["hours_on"] == (
        'Hours or public holidays are typed below, but "Only inside these hours" is not ticked, '
        "so they would not apply: tick it, or empty them."
    )
    assert not os.path.exists(os.path.join(box.data_dir, "config.json")) and box.applied == []
    # Once ticked they are saved; unticked again with the saved hours still shown, they go.
    ticked = {"line-3-mode": "by_rule", "hours_on": "on", "hours-wed": "09:00-17:00"}
    ticked["holidays"] = "2026-12-25"
    assert rules_form(box, ivan, **ticked).status_code == 302
    assert load_config(box.data_dir).policy.rules.hours is not None
    ticked.pop("hours_on")
    assert rules_form(box, ivan, **ticked).status_code == 302
    assert load_config(box.data_dir).policy.rules.hours is None


def test_a_saved_configuration_with_hours_on_and_none_set_is_said_on_the_page(box, people):
    """The page refuses business hours on with no day given any while a line records by the
    rules (that line would record no call at all); a config.json written so by hand, or an
    import, was loaded and shown with nothing said, and the line recorded nothing."""
    ivan = people["ivan"]
    fields = {"line-3-mode": "by_rule", "hours_on": "on", "hours-mon": "09:00-17:00"}
    assert rules_form(box, ivan, **fields).status_code == 302
    assert 'id="closed-all-week"' not in ivan.get("/rules").get_data(as_text=True)
    config = load_config(box.data_dir)
    hours = dataclasses.replace(config.policy.rules.hours, days={})
    rules = dataclasses.replace(config.policy.rules, hours=hours)
    policy = dataclasses.replace(config.policy, rules=rules)
    save_config(box.data_dir, dataclasses.replace(config, policy=policy))
    page = html.unescape(ivan.get("/rules").get_data(as_text=True))
    said = re.search(r'<p class="notice" id="closed-all-week">(.*?)</p>', page, re.S)
    assert said, page
    assert said.group(1) == (
        'Business hours are on and no day has any, so line 3, set to "By the rules below", records '
        'no call at all. Set the hours below, untick "Only inside these hours", or choose another mode.'
    )
