"""While the recorder cannot start, the web UI mails the alarm recipients, once, from memory.

No alarm is raised while the recorder's starts fail (the start that works raises
``recorder_start_failed``), and the card may be what fails: the web UI keeps the mail
settings and the opened password as it last read them, and once the starts have failed for
five minutes sends one mail straight to the server (web/startmail.py). A real server here
(aiosmtpd, STARTTLS and login), the web UI's services as ``linekeeper web`` makes them.
"""

import email
import email.policy
import errno
import json
import logging
import os
import time

import pytest

from firmware import cli, startfail
from firmware.control import ControlClient, ControlServer
from firmware.errors import StorageError
from web.remote import services_for_recorder
from web.startmail import AUDIT_ACTION, STATE_FILE, StartFailureMail

from .conftest import PASSWORD, ops_account, server_settings

pytestmark = pytest.mark.slow  # a real server on a real port

SCENARIO = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": []}
MINUTE_US = 60 * 10**6
REASON = "cannot open the data in /var/lib/linekeeper: an I/O error"


def _data_dir(tmp_path, monkeypatch):
    data_dir = str(tmp_path / "data")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    ops_account(data_dir)
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(run))
    return data_dir, str(run)


def _web_ui(data_dir, tmp_path, smtp_server, later_us=0):
    """The web UI's services beside the recorder's socket; its clock ``later_us`` ahead."""
    web = services_for_recorder(data_dir, ControlClient(str(tmp_path / "recorder.sock"), timeout_s=0.2), 2)
    web.mail.ssl_context = smtp_server.client_context()
    (check,) = [c for c in web.mail.checks if isinstance(c, StartFailureMail)]
    check.now_us = lambda: time.time_ns() // 1000 + later_us
    return web, check


def _card_fails(data_dir, tmp_path):
    """What opens the mail password is no longer readable: mail.json and secrets.key gone."""
    aside = tmp_path / "aside"
    aside.mkdir(exist_ok=True)
    for name in ("mail.json", "secrets.key"):
        os.replace(os.path.join(data_dir, name), aside / name)
    return aside


def _fails(run, minutes_ago, attempts=1):
    wall_us, mono_us, synced = startfail.clocks_now()
    for n in range(attempts):
        at = (minutes_ago * MINUTE_US) - n * 2 * 10**6
        startfail.record(run, StorageError(errno.EIO, REASON), wall_us - at, mono_us - at, synced)


def test_minutes_of_failed_starts_are_mailed_once_with_what_the_web_ui_keeps(
    tmp_path, smtp_server, monkeypatch
):
    data_dir, run = _data_dir(tmp_path, monkeypatch)
    web, check = _web_ui(data_dir, tmp_path, smtp_server)
    web.mail.store.save(server_settings(smtp_server), new_password=PASSWORD)
    try:
        web.mail.tick()  # the recorder is down, no start has failed: nothing to say
        aside = _card_fails(data_dir, tmp_path)
        _fails(run, minutes_ago=1, attempts=3)
        web.mail.tick()
        assert smtp_server.messages == []  # an update's restart is over in less

        check.now_us = lambda: time.time_ns() // 1000 + 5 * MINUTE_US
        web.mail.tick()
        web.mail.tick()
        ((sender, to, content),) = smtp_server.messages
        assert (sender, to) == ("box@example.com", ["ops@example.com"])
        assert smtp_server.logins == [("box@example.com", True)]  # the password opened before
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert message["Subject"] == "[Linekeeper] The recorder cannot start: calls are not being recorded"
        body = message.get_content()
        assert "it has tried 3 times" in body and "for 6 min" in body, body
        assert "Why: %s." % REASON in body and "No call is recorded until it starts." in body
        assert "This is the only mail about it while it lasts." in body

        # The card is back (or another web UI starts): nothing more about the same failures.
        for name in ("mail.json", "secrets.key"):
            os.replace(aside / name, os.path.join(data_dir, name))
        web.mail.close()
        web, check = _web_ui(data_dir, tmp_path, smtp_server, later_us=30 * MINUTE_US)
        _fails(run, minutes_ago=7)
        web.mail.tick()
        assert len(smtp_server.messages) == 1
        (entry,) = web.audit.entries(action=AUDIT_ACTION, limit=5)
        assert entry.actor == "system" and entry.details["to"] == ["ops@example.com"]
        assert entry.details["cause"] == "card" and entry.details["attempts"] == 3

        # The password was never written in clear: not in the data directory, nor the run's.
        for top in (data_dir, run):
            for where, _dirs, files in os.walk(top):
                for name in files:
                    with open(os.path.join(where, name), "rb") as f:
                        assert PASSWORD.encode() not in f.read(), os.path.join(where, name)
    finally:
        web.mail.close()


def test_a_recorder_that_starts_again_is_not_mailed_and_new_failures_are(tmp_path, smtp_server, monkeypatch):
    """The recovered side is the recorder's own alarm; failures after a start are news."""
    data_dir, run = _data_dir(tmp_path, monkeypatch)
    web, check = _web_ui(data_dir, tmp_path, smtp_server, later_us=10 * MINUTE_US)
    web.mail.store.save(server_settings(smtp_server), new_password=PASSWORD)
    server = ControlServer(
        str(tmp_path / "recorder.sock"), {"health": lambda: {}, "wall_us": lambda: time.time_ns() // 1000}
    )
    try:
        _fails(run, minutes_ago=1)
        server.start()  # it answers: the note is not cleared yet, the start is under way
        web.mail.tick()
        assert smtp_server.messages == []
        server.stop()
        startfail.clear(run)
        _fails(run, minutes_ago=1)  # a new run of failures, not the same
        web.mail.tick()
        assert len(smtp_server.messages) == 1
    finally:
        server.stop()
        web.mail.close()


def test_a_web_ui_that_never_read_the_settings_says_so_and_sends_nothing(
    tmp_path, smtp_server, monkeypatch, caplog
):
    data_dir, run = _data_dir(tmp_path, monkeypatch)
    web, _check = _web_ui(data_dir, tmp_path, smtp_server)
    web.mail.store.save(server_settings(smtp_server), new_password=PASSWORD)
    web.mail.close()
    # A card that fails: mail.json no longer reads (a directory in its place here).
    os.replace(os.path.join(data_dir, "mail.json"), tmp_path / "mail.json")
    os.mkdir(os.path.join(data_dir, "mail.json"))
    web, check = _web_ui(data_dir, tmp_path, smtp_server, later_us=10 * MINUTE_US)
    try:
        _fails(run, minutes_ago=1)
        with caplog.at_level(logging.WARNING, logger="web.startmail"):
            check()
            check()  # said once
        assert smtp_server.messages == []
        (said,) = [r.getMessage() for r in caplog.records if r.name == "web.startmail"]
        assert said.startswith(
            "the recorder cannot start, and no mail can tell anyone: the e-mail settings and "
            "password could not be read since the web UI started"
        ), said
        assert not os.path.exists(os.path.join(data_dir, STATE_FILE))
    finally:
        web.mail.close()
