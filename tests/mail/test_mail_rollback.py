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


NAMED = dataclasses.replace(SETTINGS, sender="Harbour Box <recorder@harbour.example>")


def _older_release_loads(tmp_path):
    """What the release before checks of mail.json: its keys, and a sender that is an
    address alone (its MailSettings.check: ``check_address(self.sender, "mail.sender")``)."""
    d = _mail_json(tmp_path)
    assert set(d) <= OLDER_RELEASE_KEYS
    mail_settings.check_address(d["sender"], "mail.sender")


def test_a_sender_with_a_display_name_is_read_by_the_release_before(tmp_path):
    """The release before refused a sender with a display name, and with it the whole
    mail.json: rolled back during an update's trial, it would have mailed nothing."""
    store = MailSettingsStore(str(tmp_path), secrets=None)
    store.save(NAMED)
    _older_release_loads(tmp_path)
    assert _mail_json(tmp_path)["sender"] == "recorder@harbour.example"
    assert store.get() == NAMED  # this release reads the name back
    # That release saves another sender meanwhile: the name was the other address's.
    d = dict(_mail_json(tmp_path), sender="office@harbour.example")
    (tmp_path / "mail.json").write_text(json.dumps(d))
    assert store.get().sender == "office@harbour.example"
    # An address alone, saved here: no name is kept for it.
    store.save(dataclasses.replace(NAMED, sender="recorder@harbour.example"))
    assert not (tmp_path / mail_settings.SENDER_FILE).exists()
    assert store.get().sender == "recorder@harbour.example"


def test_a_display_name_kept_in_mail_json_is_moved_out_at_start(tmp_path):
    """A build of this release kept the sender as written in mail.json: the web UI's start
    moves its name beside it, the address staying."""
    store = MailSettingsStore(str(tmp_path), secrets=None)
    store.save(SETTINGS)
    # (and, as a release before may leave it, a tie of an address no longer a recipient)
    ties = dict(SETTINGS.alarm_accounts, **{"gone@example.com": "gone"})
    (tmp_path / mail_settings.ACCOUNTS_FILE).write_text(json.dumps(ties))
    d = dict(_mail_json(tmp_path), sender=NAMED.sender)
    (tmp_path / "mail.json").write_text(json.dumps(d))
    assert store.get() == NAMED
    assert store.migrate() is True
    _older_release_loads(tmp_path)
    assert store.get() == NAMED
    assert store.migrate() is False


def test_a_damaged_sender_file_is_refused_naming_it(tmp_path):
    store = MailSettingsStore(str(tmp_path), secrets=None)
    store.save(NAMED)
    (tmp_path / mail_settings.SENDER_FILE).write_text("[1, 2")
    try:
        store.get()
    except mail_settings.ConfigError as exc:
        assert "mail-sender.json is not valid JSON" in str(exc) and exc.field == "mail.sender"
    else:
        raise AssertionError("a damaged mail-sender.json was taken")
