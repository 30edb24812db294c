"""A configuration page's change is audited before the file is written.

The rules, retention, consent and mail pages wrote their file, then audited the
change: a cut between the two left a change of what is recorded or kept that no
entry shows. The entry now comes first, noted in web.db with the file as it
stood; a cut between the entry and the file is found at the next start, which
writes a second entry saying the change was not made.
"""

import json
import os

import pytest

from web import intent
from web.services import BoxConfigStore

from .test_retention_pages import retention_form
from support.web import Cut, cut, restart_web


def _retention_changes(box):
    entries = box.audit.entries(limit=1000, action="config_change")
    return [e for e in entries if e.target == "policy.retention"]


def test_a_cut_before_the_file_leaves_the_entry_and_one_that_says_it_was_not_made(box, people, monkeypatch):
    before = box.config_store.get().policy.retention
    with monkeypatch.context() as patch:
        patch.setattr(BoxConfigStore, "save", cut)
        with pytest.raises(Cut):
            retention_form(box, people["ivan"], default_days="30")
    (entry,) = _retention_changes(box)  # audited before the file
    assert entry.actor == "ivan" and entry.details["changed"]["default_days"] == 30
    restart_web(box)
    assert box.config_store.get().policy.retention == before
    made, not_made = reversed(_retention_changes(box))
    assert made.seq == entry.seq
    assert not_made.actor == "system" and not_made.details["change_id"] == entry.details["change_id"]
    assert "stopped before the change was made" in not_made.details["not_made"]
    assert not intent.notes(box.web, intent.CHECKED_PREFIX)
    restart_web(box)
    assert len(_retention_changes(box)) == 2


def test_a_cut_after_the_file_is_a_change_made(box, people, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(intent, "drop", cut)
        with pytest.raises(Cut):
            retention_form(box, people["ivan"], default_days="30")
    assert box.config_store.get().policy.retention.default_days == 30
    restart_web(box)
    (entry,) = _retention_changes(box)
    assert entry.actor == "ivan" and not intent.notes(box.web, intent.CHECKED_PREFIX)


def test_a_file_that_cannot_be_written_is_audited_as_not_made(box, people, monkeypatch):
    def full(self, config):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(BoxConfigStore, "save", full)
        box.app.testing = False  # the error page, as on the box
        resp = retention_form(box, people["ivan"], default_days="30")
    assert resp.status_code == 503 and "the disk is full" in resp.get_data(as_text=True)
    made, not_made = reversed(_retention_changes(box))
    assert not_made.details["change_id"] == made.details["change_id"]
    assert "No space" in not_made.details["not_made"]
    assert not intent.notes(box.web, intent.CHECKED_PREFIX)


def test_the_mail_page_is_audited_first_too(box, people, monkeypatch):
    from firmware.mail.settings import MailSettingsStore

    from .test_mail_settings import GOOD

    ivan = people["ivan"]
    form = dict(GOOD)
    with monkeypatch.context() as patch:
        patch.setattr(MailSettingsStore, "save", cut)
        with pytest.raises(Cut):
            box.post(ivan, "/settings/mail", form, token_from="/settings/mail")
    restart_web(box)
    entries = [e for e in box.audit.entries(limit=100, action="config_change") if e.target == "mail"]
    assert [e.actor for e in entries] == ["system", "ivan"] and "not_made" in entries[0].details


def test_a_hold_released_by_a_cut_short_change_is_told_from_one_released(box, people, monkeypatch):
    """A legal hold is audited before it changes: a release nobody saw in the trail would
    let retention delete evidence. Cut before the hold changes, the next start says the
    release was not made; cut after, the entry stands alone."""
    sam = people["sam"]
    assert box.post(sam, "/calls/2/hold", {"on": "1", "hold_reason": "complaint ref 1"}).status_code == 302
    with monkeypatch.context() as patch:
        patch.setattr(box.services.recordings, "set_legal_hold", cut)
        with pytest.raises(Cut):
            box.post(sam, "/calls/2/hold", {"on": "0", "hold_reason": "complaint 1 closed"})
    restart_web(box)
    holds = box.audit.entries(limit=10, action="legal_hold", newest_first=False)
    assert [(e.actor, e.details.get("on"), "not_made" in e.details) for e in holds] == [
        ("sam", True, False),
        ("sam", False, False),
        ("system", None, True),
    ]
    assert box.services.recordings.recording_info(2)["legal_hold"]
    sam = box.login("sam")
    with monkeypatch.context() as patch:
        patch.setattr(intent, "drop", cut)
        with pytest.raises(Cut):
            box.post(
                sam, "/calls/2/hold", {"on": "0", "hold_reason": "complaint 1 closed"}
            )  # the hold goes; the cut is after it
    restart_web(box)
    holds = box.audit.entries(limit=10, action="legal_hold")
    assert holds[0].actor == "sam" and holds[0].details["on"] is False
    assert not box.services.recordings.recording_info(2)["legal_hold"]


def test_a_cut_after_the_mail_pages_ties_and_before_its_settings_is_a_change_made(box, people, monkeypatch):
    # The page writes the recipients' accounts (mail-accounts.json), then mail.json: a cut
    # between leaves the new ties in force, so the trail must not say the change was not made.
    from firmware.mail import settings as mail_settings

    from .test_mail_settings import GOOD

    ivan = people["ivan"]
    tied = dict(GOOD, alarm_to="sam@example.com (sam), office@example.com")
    assert box.post(ivan, "/settings/mail", tied, token_from="/settings/mail").status_code == 302
    real = mail_settings.atomic_write

    def write(path, data, **kwargs):
        if path.endswith("mail.json"):
            raise Cut()
        real(path, data, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(mail_settings, "atomic_write", write)
        with pytest.raises(Cut):
            box.post(
                ivan,
                "/settings/mail",
                dict(GOOD, alarm_to="sam@example.com, office@example.com"),
                token_from="/settings/mail",
            )
    restart_web(box)
    with open(os.path.join(box.data_dir, mail_settings.ACCOUNTS_FILE)) as f:
        assert json.load(f) == {}  # the new ties are in force
    entries = [e for e in box.audit.entries(limit=100, action="config_change") if e.target == "mail"]
    assert [e.actor for e in entries] == ["ivan", "ivan"]
    assert not any("not_made" in e.details for e in entries)
