"""The pages before the recorder has started after a boot, on a box that seals: the web UI
has no key yet, and the rules' lists of numbers in config.json (and the audit trail's
details) cannot be opened. The pages that need no number show, the sealed parts said to be
sealed, never shown; a save that would write sealed data is refused and changes nothing.
They were the whole-page "Personal data locked"."""

import html
import json
import os

import pytest

from firmware.alarmlog import UNOPENED
from firmware.storage.fieldseal import FieldCipher, LazyFieldCipher

from support.web import page, rules_form

RULE_NUMBER = "07700 900123"


@pytest.fixture
def locked(tmp_path, people_template):
    """A box whose rules have a list of numbers, sealed in config.json, and whose web UI
    then has no key (the recorder not started since the boot)."""
    box, people = people_template.box(tmp_path, cipher=FieldCipher(os.urandom(32)))
    fields = {
        "line-1-mode": "by_rule",
        "numbers-0-name": "private mobile",
        "numbers-0-action": "exclude",
        "numbers-0-patterns": RULE_NUMBER + ", 0800*",
    }
    assert rules_form(box, people["ivan"], **fields).status_code == 302
    keyless = tmp_path / "keyless"
    os.makedirs(keyless / "data")
    (keyless / "data" / "storage.key").write_text("{}")  # this box seals
    box.config_store._cipher = LazyFieldCipher(str(keyless / "data"), str(keyless / "run"))
    yield box, people
    box.close()


def config_file(box):
    with open(os.path.join(box.data_dir, "config.json"), "rb") as f:
        return f.read()


def shown(client, url):
    text = page(client, url)
    assert "Personal data locked" not in text and "lkp1:" not in text and RULE_NUMBER not in text, url
    return text


def test_the_pages_that_need_no_number_show(locked):
    box, people = locked
    for who, urls in {
        "ivan": [
            "/",
            "/documents/checklist",
            "/settings",
            "/consent",
            "/retention",
            "/documents/staff-notice",
        ],
        "sam": ["/", "/documents/staff-notice"],
        "audrey": ["/", "/documents/checklist", "/consent", "/retention"],
    }.items():
        for url in urls:
            shown(people[who], url)
    assert people["ivan"].get("/documents/checklist.pdf").status_code == 200
    for who in ("ivan", "sam", "audrey"):
        resp = people[who].get("/api/health")
        assert resp.status_code == 200, who
        assert isinstance(resp.get_json()["alarms"], list)


def test_the_rules_page_says_the_lists_are_sealed_and_refuses_a_save(locked):
    box, people = locked
    for who in ("ivan", "audrey"):
        text = shown(people[who], "/rules")
        assert 'value="%s"' % UNOPENED in text, who
        assert 'id="rules-sealed"' in text and 'id="save-button"' not in text, who
    before = config_file(box)
    resp = rules_form(box, people["ivan"], **{"numbers-0-name": "x", "numbers-0-action": "exclude"})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 503 and "Personal data locked" not in text
    assert "Nothing was saved: the box&#39;s configuration keeps its lists of numbers sealed" in text
    token = box.token_of(people["ivan"], "/rules")
    resp = people["ivan"].post("/rules/card-payments", data={"csrf_token": token, "pci-auto_resume_s": "60"})
    assert resp.status_code == 503 and "Nothing was saved" in resp.get_data(as_text=True)
    assert config_file(box) == before and not box.applied[1:]


def test_a_settings_save_is_refused_and_changes_nothing(locked):
    box, people = locked
    ivan = people["ivan"]
    site = box.web.site.settings()
    before = config_file(box)
    entries = len(box.audit)
    from .test_admin import settings_form

    form = settings_form(box, organisation="Someone Else Ltd")
    resp = box.post(ivan, "/settings", form, token_from="/settings")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 503 and "Personal data locked" not in text, text[:3000]
    assert "Nothing was saved: the settings go into the box's configuration" in html.unescape(text)
    assert box.web.site.settings() == site and config_file(box) == before and len(box.audit) == entries


def test_the_settings_page_shows_while_the_audit_trail_is_sealed(box, people, monkeypatch):
    from .test_dashboard_todo import seal_the_trail
    from .test_documents import back_up_key_store

    assert back_up_key_store(box, people["alice"]).status_code == 200
    seal_the_trail(box, monkeypatch)
    text = page(people["ivan"], "/settings")
    assert "Personal data locked" not in text
    assert 'id="backup-sealed"' in text and 'id="no-backup"' not in text
    assert json.loads(people["ivan"].get("/api/health").get_data())["alarms"] is not None


def test_the_retention_and_consent_saves_are_refused_and_change_nothing(locked):
    """Each writes config.json whole, its lists of numbers with it: refused with a message
    (it was the whole-page error), and the announcement uploaded is not kept either."""
    from .test_consent_pages import tone_wav, upload, uploads
    from .test_retention_pages import retention_form

    box, people = locked
    ivan = people["ivan"]
    before, entries = config_file(box), len(box.audit)
    said = "Nothing was saved: the box&#39;s configuration keeps its lists of numbers sealed"
    for resp in (
        retention_form(box, ivan, default_days="400"),
        box.post(
            ivan,
            "/consent",
            {"inbound": "tone", "outbound": "tone", "text": "Calls are recorded."},
            token_from="/consent",
        ),  # fmt: skip
        upload(box, ivan, tone_wav(2)),
        box.post(ivan, "/consent/default", token_from="/consent"),
    ):
        text = resp.get_data(as_text=True)
        assert resp.status_code == 503 and said in text and "Personal data locked" not in text
    assert config_file(box) == before and len(box.audit) == entries and uploads(box) == []
