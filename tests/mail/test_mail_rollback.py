"""An update rolled back before it is marked good reads the files the new release wrote.

The release before recipients had accounts builds its settings as ``MailSettings(**d)``
from ``mail.json``: a key it does not know is a TypeError, the file refused whole, and no
alarm mail went out after such a rollback (a development build of this release kept the recipients'
accounts in ``mail.json`` as ``alarm_accounts``). They are kept beside it now, in a file
that release never reads (firmware/mail/settings.py, ``ACCOUNTS_FILE``).
"""

import dataclasses
import json
import os

from firmware.mail import settings as mail_settings
from firmware.mail.settings import MailSettings, MailSettingsStore

# The keys the release before (82998a1, firmware/mail/settings.py) takes in mail.json: the
# fields of its MailSettings, frozen here as it was; any other key is refused there.
OLDER_RELEASE_KEYS = frozenset(
    {
        "host",
        "port",
        "security",
        "username",
        "password",
        "sender",
        "alarm_to",
        "rate_window_s",
        "schedules",
        "syslog",
    }
)

SETTINGS = MailSettings(
    host="mail.example",
    sender="box@example.com",
    alarm_to=("ivan@example.com", "sam@example.com", "office@example.com"),
    alarm_accounts=(("ivan@example.com", "ivan"), ("sam@example.com", "sam")),
)


def _mail_json(tmp_path):
    with open(tmp_path / "mail.json", encoding="utf-8") as f:
        return json.load(f)


def test_the_mail_json_this_release_writes_is_read_by_the_release_before(tmp_path):
    store = MailSettingsStore(str(tmp_path), secrets=None)
    store.save(SETTINGS)
    assert set(_mail_json(tmp_path)) <= OLDER_RELEASE_KEYS
    # The box's address too is kept beside it, never in it.
    linked = dataclasses.replace(SETTINGS, box_url="https://recorder.example.com/")
    store.save(linked)
    assert set(_mail_json(tmp_path)) <= OLDER_RELEASE_KEYS and store.get() == linked
    assert store.migrate() is False and store.get() == linked
    store.save(SETTINGS)
    with open(tmp_path / mail_settings.ACCOUNTS_FILE, encoding="utf-8") as f:
        assert json.load(f) == {"ivan@example.com": "ivan", "sam@example.com": "sam"}
    assert store.get() == SETTINGS


def test_a_mail_json_holding_accounts_is_read_and_moved_out_of_it(tmp_path):
    # As a development build of this release wrote it.
    (tmp_path / "mail.json").write_text(json.dumps(SETTINGS.to_dict()))
    store = MailSettingsStore(str(tmp_path), secrets=None)
    assert store.get() == SETTINGS  # read as it is, by the recorder too
    assert store.migrate() is True
    assert set(_mail_json(tmp_path)) <= OLDER_RELEASE_KEYS
    assert store.get() == SETTINGS
    assert store.migrate() is False  # nothing left to move


def test_a_tie_of_an_address_the_release_before_took_away_is_dropped_not_refused(tmp_path):
    store = MailSettingsStore(str(tmp_path), secrets=None)
    store.save(SETTINGS)
    # Rolled back, the E-mail page saved without sam; then the update again.
    d = _mail_json(tmp_path)
    d["alarm_to"] = ["ivan@example.com", "office@example.com"]
    (tmp_path / "mail.json").write_text(json.dumps(d))
    got = store.get()
    assert got.alarm_to == ("ivan@example.com", "office@example.com")
    assert got.alarm_accounts == (("ivan@example.com", "ivan"),)


def test_an_accounts_file_that_is_not_an_object_is_named(tmp_path):
    import pytest

    from firmware.errors import ConfigError

    store = MailSettingsStore(str(tmp_path), secrets=None)
    store.save(SETTINGS)
    (tmp_path / mail_settings.ACCOUNTS_FILE).write_text("[1, 2]")
    with pytest.raises(ConfigError, match=mail_settings.ACCOUNTS_FILE):
        store.get()
    assert os.path.exists(tmp_path / "mail.json")
