"""`linekeeper calls` prints the callers' numbers and names: it asks who reads them (a
supervisor, their lines' calls; an auditor, every call) and audits them as the web UI's calls
list does (``list_viewed`` of ``calls`` naming the calls), before printing anything."""

import json
import os
import shutil
import sqlite3
import time

import pytest

from firmware import cli
from firmware.box import open_audit
from firmware.breachscope import scope
from firmware.signing import run_dir
from firmware.storage.audit import AuditLog
from firmware.storage.fieldseal import load_field_cipher
from firmware.storage.keystore import Argon2Params, KeyStore
from web.accounts import Accounts
from web.db import WebDb

from support.cli import OWNER_PASSWORD, calls_args, owner_slot, run_linekeeper

THEIRS = "their own long password 9"
UNTIL_2100_US = 4_102_444_800_000_000
NUMBERS = {1: "01632960101", 2: "01632960202", 3: "01632960303"}
DAY = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 3,
    "calls": [
        {"line": n, "at": float(n), "direction": "in", "caller_id": {"number": number}, "rings": 2,
         "talk": 3.0}
        for n, number in NUMBERS.items()
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def day_dir(tmp_path_factory):
    """A box's day of three calls, one a line (a keyless sim's, given its owner's key slot)."""
    root = tmp_path_factory.mktemp("calls-day")
    (root / "day.json").write_text(json.dumps(DAY))
    data = str(root / "data")
    assert cli.main(["sim", str(root / "day.json"), "--data-dir", data, "--speed", "max"]) == 0
    owner_slot(data)
    return data


@pytest.fixture
def data(day_dir, tmp_path):
    path = str(tmp_path / "data")
    shutil.copytree(day_dir, path)
    return path


def listed(data_dir):
    """The trail's ``list_viewed`` entries, oldest first."""
    with open_audit(data_dir) as audit:
        return audit.entries(limit=100, action="list_viewed", newest_first=False)


def accounts(data_dir, **people):
    """Web UI accounts, each with a key slot of its own granting its lines: ``name=(roles,
    lines)``; admin (the key slot's owner) an installer. Their password: :data:`THEIRS`
    (admin's stays :data:`OWNER_PASSWORD`)."""
    web_db = WebDb(os.path.join(data_dir, "web.db"))
    try:
        made = Accounts(web_db, lambda: int(time.time() * 1e6))
        with web_db.tx() as conn:
            made.create(conn, "admin", THEIRS, {"installer"}, [])
            for name, (roles, lines) in people.items():
                made.create(conn, name, THEIRS, set(roles), lines)
    finally:
        web_db.close()
    store = KeyStore(data_dir, Argon2Params(memory_kib=8, iterations=1))
    unlocked = store.unlock("admin", OWNER_PASSWORD)
    try:
        for name, (_, lines) in people.items():
            store.add_slot(name, THEIRS, unlocked, lines)
    finally:
        unlocked.forget()


def test_the_calls_printed_are_audited_as_the_web_calls_page_is(data):
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, "--json"))
    assert status == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert sorted(c["number"] for c in printed) == sorted(NUMBERS.values())
    (entry,) = listed(data)
    assert (entry.actor, entry.target) == ("admin", "calls")
    ids = [c["id"] for c in printed]
    # The web's calls page's entry (web/views/calls.py), with where it was shown.
    assert entry.details == {"filter": "all calls", "rows": 3, "calls": ids, "via": "cli"}
    # Found by the auditor's search by number (the calls an entry names) and in a breach's
    # scope, as the web's pages are: each call listed, its caller counted.
    with open_audit(data) as audit:
        assert audit.naming_calls(ids[:1], 0, 100) == ({entry.seq: ids[:1]}, None)
        cipher = load_field_cipher(data, run_dir=run_dir(), create=False)
        _, summary = scope(audit, os.path.join(data, "calls.db"), "admin", 0, UNTIL_2100_US, cipher=cipher)
    assert summary["calls_listed_only"] == 3 and summary["listed_only_numbers"] == 3


@pytest.mark.parametrize(
    "user, password, said",
    [
        ("sue", "not the password at all", "wrong user name or password"),
        ("nobody", THEIRS, "nobody has no account on this box"),
        ("ivy", THEIRS, "ivy is not a supervisor or an auditor: only they may list the calls"),
        ("admin", OWNER_PASSWORD, "admin is not a supervisor or an auditor: only they may list the calls"),
        ("dee", THEIRS, "account dee is disabled (a test): an installer can enable it on the Users page"),
    ],
)
def test_anyone_else_or_a_wrong_password_is_refused_and_nothing_is_printed(data, user, password, said):
    accounts(data, ivy=(("staff",), [1]), dee=(("supervisor",), [1]), sue=(("supervisor",), [1]))
    web_db = WebDb(os.path.join(data, "web.db"))
    try:
        with web_db.tx() as conn:
            Accounts(web_db, lambda: int(time.time() * 1e6)).disable(conn, "dee", "a test")
    finally:
        web_db.close()
    status, out, err = run_linekeeper(*calls_args(data, password, "--user", user))
    assert (status, out) == (2, "")
    assert err == "linekeeper: the calls were not printed: %s\n" % said
    assert listed(data) == []


def test_a_supervisor_lists_the_calls_of_their_lines_only(data):
    accounts(data, sam=(("supervisor",), [2, 3]), ann=(("auditor",), []))
    status, out, err = run_linekeeper(*calls_args(data, THEIRS, "--json", "--user", "sam"))
    assert status == 0, err
    mine = [json.loads(line) for line in out.splitlines()]
    assert sorted(c["line"] for c in mine) == [2, 3]
    status, out, err = run_linekeeper(*calls_args(data, THEIRS, "--json", "--user", "ann"))
    assert status == 0, err
    assert len(out.splitlines()) == 3  # an auditor: every line's
    sams, anns = listed(data)
    assert (sams.actor, sams.details["calls"], sams.details["rows"]) == ("sam", [c["id"] for c in mine], 2)
    assert (anns.actor, anns.details["rows"]) == ("ann", 3)


def test_nothing_is_printed_when_the_trail_cannot_take_the_entry(data, monkeypatch):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(AuditLog, "append", full)
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD))
    assert (status, out) == (2, "")
    assert err.startswith("linekeeper: the calls were not printed: they could not be audited ("), err
    monkeypatch.undo()
    assert listed(data) == []
