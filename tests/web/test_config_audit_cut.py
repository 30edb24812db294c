"""A configuration page's change is audited before the file is written.

The rules, retention, consent and mail pages wrote their file, then audited the
change: a cut between the two left a change of what is recorded or kept that no
entry shows. The entry now comes first, noted in web.db with the file as it
stood; a cut between the entry and the file is found at the next start, which
writes a second entry saying the change was not made.
"""

import pytest

from web import create_app, intent
from web.services import BoxConfigStore

from .test_retention_pages import retention_form


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


def _cut(*args, **kwargs):
    raise _Cut()


def _restart(box):
    box.web.close()
    box.app = create_app(box.services, box.config)
    box.web = box.app.extensions["linekeeper"]  # closed by the fixture


def _retention_changes(box):
    entries = box.audit.entries(limit=1000, action="config_change")
    return [e for e in entries if e.target == "policy.retention"]


def test_a_cut_before_the_file_leaves_the_entry_and_one_that_says_it_was_not_made(box, people, monkeypatch):
    before = box.config_store.get().policy.retention
    with monkeypatch.context() as patch:
        patch.setattr(BoxConfigStore, "save", _cut)
        with pytest.raises(_Cut):
            retention_form(box, people["ivan"], default_days="30")
    (entry,) = _retention_changes(box)  # audited before the file
    assert entry.actor == "ivan" and entry.details["changed"]["default_days"] == 30
    _restart(box)
    assert box.config_store.get().policy.retention == before
    made, not_made = reversed(_retention_changes(box))
    assert made.seq == entry.seq
    assert not_made.actor == "system" and not_made.details["change_id"] == entry.details["change_id"]
    assert "stopped before the file was saved" in not_made.details["not_made"]
    assert not intent.notes(box.web.db, intent.FILE_PREFIX)
    _restart(box)
    assert len(_retention_changes(box)) == 2


def test_a_cut_after_the_file_is_a_change_made(box, people, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(intent, "drop", _cut)
        with pytest.raises(_Cut):
            retention_form(box, people["ivan"], default_days="30")
    assert box.config_store.get().policy.retention.default_days == 30
    _restart(box)
    (entry,) = _retention_changes(box)
    assert entry.actor == "ivan" and not intent.notes(box.web.db, intent.FILE_PREFIX)


def test_a_file_that_cannot_be_written_is_audited_as_not_made(box, people, monkeypatch):
    def full(self, config):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(BoxConfigStore, "save", full)
        box.app.testing = False  # the error page, as on the box
        resp = retention_form(box, people["ivan"], default_days="30")
    assert resp.status_code == 500
    made, not_made = reversed(_retention_changes(box))
    assert not_made.details["change_id"] == made.details["change_id"]
    assert "No space" in not_made.details["not_made"]
    assert not intent.notes(box.web.db, intent.FILE_PREFIX)


def test_the_mail_page_is_audited_first_too(box, people, monkeypatch):
    from firmware.mail.settings import MailSettingsStore

    from .test_mail_settings import GOOD

    ivan = people["ivan"]
    form = dict(GOOD)
    with monkeypatch.context() as patch:
        patch.setattr(MailSettingsStore, "save", _cut)
        with pytest.raises(_Cut):
            box.post(ivan, "/settings/mail", form, token_from="/settings/mail")
    _restart(box)
    entries = [e for e in box.audit.entries(limit=100, action="config_change") if e.target == "mail"]
    assert [e.actor for e in entries] == ["system", "ivan"] and "not_made" in entries[0].details
