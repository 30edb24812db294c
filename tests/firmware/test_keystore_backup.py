"""`linekeeper keystore backup|restore`: a copy of the key store that says which box and when,
put back only where keys/keystore.json is missing, only if it opens and is this box's; audited."""

import base64
import json
import os

import pytest

from firmware.cli import main
from firmware.keybackup import BACKUP_FORMAT, inventory_lines, key_store_contents, key_store_fingerprint
from firmware.keypin import PIN_FILE
from firmware.signing import PUBLIC_FILE as SIGNING_PUBLIC
from firmware.signing import fingerprint
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore

PASSWORD = "correct horse battery"
CHEAP = Argon2Params(memory_kib=8, iterations=1)


def make_box(path):
    """A box with keys, its admin key pinned as the recorder pins it; returns the recovery key."""
    os.makedirs(path)
    store = KeyStore(str(path), CHEAP)
    recovery = store.initialise("admin", PASSWORD)
    pin = {"public_key": base64.b64encode(store.public_key()).decode("ascii")}
    (path / PIN_FILE).write_text(json.dumps(pin))
    return recovery


def secret_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def key_backups(path):
    with AuditLog(os.path.join(path, "audit.db"), os.path.join(path, "audit.head")) as log:
        return [(e.actor, e.details) for e in log.entries(limit=100, action="key_backup")][::-1]


def backup(box, out, *how):
    assert main(["keystore", "backup", str(out), "--data-dir", str(box), *how]) == 0


def restore(box, copy, *how):
    return main(["keystore", "restore", str(copy), "--data-dir", str(box), *how])


@pytest.fixture
def box(tmp_path):
    path = tmp_path / "box"
    recovery = make_box(path)
    out = tmp_path / "keys-backup.json"
    backup(path, out)
    return path, out, secret_file(tmp_path, "recovery.txt", recovery)


def test_a_backup_says_which_box_and_when_and_puts_the_key_store_back(box, tmp_path, capsys):
    path, out, recovery_file = box
    original = (path / "keys" / "keystore.json").read_bytes()
    doc = json.loads(out.read_text())
    assert doc["format"] == BACKUP_FORMAT and doc["keystore"].encode() == original
    assert doc["made_at"].endswith("Z") and doc["host"]
    assert doc["key_store"] == key_store_fingerprint(KeyStore(str(path)).public_key())
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    contents = key_store_contents(original)  # what the checklist tells a change since from
    assert contents["slots"] == KeyStore(str(path)).slots() and len(contents["digest"]) == 32
    made = {
        "phase": "made",
        "key_store": doc["key_store"],
        "contents": contents,
        "inventory": doc["inventory"],
        "via": "cli",
    }
    assert key_backups(path) == [("cli", made)]

    os.unlink(path / "keys" / "keystore.json")
    capsys.readouterr()
    assert restore(path, out, "--recovery-key-file", recovery_file) == 0
    assert "put the key store %s back" % doc["key_store"] in capsys.readouterr().out
    assert (path / "keys" / "keystore.json").read_bytes() == original
    KeyStore(str(path)).unlock("admin", PASSWORD).forget()
    actor, details = key_backups(path)[-1]
    assert actor == "recovery-key" and details["phase"] == "restored" and details["via"] == "recovery key"

    # With a password instead of the recovery key.
    os.unlink(path / "keys" / "keystore.json")
    password_file = secret_file(tmp_path, "pw", PASSWORD)
    assert restore(path, out, "--user", "admin", "--password-file", password_file) == 0
    assert (path / "keys" / "keystore.json").read_bytes() == original
    assert key_backups(path)[-1][0] == "admin"


def test_a_backup_is_put_back_only_where_the_key_store_is_missing(box, capsys):
    path, out, recovery_file = box
    keystore = path / "keys" / "keystore.json"
    before = keystore.read_bytes()
    KeyStore(str(path), CHEAP).unlock("admin", PASSWORD).forget()
    assert restore(path, out, "--recovery-key-file", recovery_file) == 2
    err = capsys.readouterr().err
    assert "has a key store (keys/keystore.json)" in err and "nothing was changed" in err
    assert keystore.read_bytes() == before
    assert [d["phase"] for _, d in key_backups(path)] == ["made"]


@pytest.mark.parametrize("wrong", ["recovery", "password", "neither"])
def test_a_backup_that_does_not_open_is_not_put_back(box, tmp_path, capsys, wrong):
    path, out, _ = box
    os.unlink(path / "keys" / "keystore.json")
    if wrong == "recovery":
        other = KeyStore(str(tmp_path / "other"), CHEAP).initialise("admin", PASSWORD)
        how = ["--recovery-key-file", secret_file(tmp_path, "other.txt", other)]
        said = "does not open with the recovery key"
    elif wrong == "password":
        how = ["--user", "admin", "--password-file", secret_file(tmp_path, "pw", "not the password")]
        said = "does not open with admin's password"
    else:
        how, said = [], "give --recovery-key-file, or --password-file"
    assert restore(path, out, *how) == 2
    err = capsys.readouterr().err
    assert said in err and "nothing was changed" in err
    assert not (path / "keys" / "keystore.json").exists()
    assert [d["phase"] for _, d in key_backups(path)] == ["made"]


def test_another_boxs_backup_or_one_from_before_a_rekey_is_refused(box, tmp_path, capsys):
    path, _, _ = box
    other = tmp_path / "other"
    recovery = make_box(other)
    theirs = tmp_path / "theirs.json"
    backup(other, theirs)
    os.unlink(path / "keys" / "keystore.json")
    # It opens with its own recovery key, but this box records to another key store.
    assert restore(path, theirs, "--recovery-key-file", secret_file(tmp_path, "r.txt", recovery)) == 2
    err = capsys.readouterr().err
    assert "is not this box's key store backup" in err
    assert "is not the one this box records to" in err and "before a rekey" in err
    assert not (path / "keys" / "keystore.json").exists()


def test_a_backup_never_replaces_a_file(box, tmp_path, capsys):
    """A technician backing up box after box onto one stick under one name lost the first
    box's only copy of its keys to the second's (the file was written over, said nothing)."""
    path, _, _ = box
    other = tmp_path / "other"
    make_box(other)
    first = tmp_path / "stick-keys.json"
    backup(other, first)
    theirs = first.read_bytes()
    made_here = key_backups(path)
    capsys.readouterr()
    assert main(["keystore", "backup", str(first), "--data-dir", str(path)]) == 2
    err = capsys.readouterr().err
    doc = json.loads(theirs)
    assert (
        "%s is there already (a key store backup of %s, key store %s, made %s)"
        % (
            first,
            doc["host"],
            doc["key_store"],
            doc["made_at"],
        )
        in err
    )
    assert "give a new file name" in err and "nothing was written" in err
    assert first.read_bytes() == theirs
    assert key_backups(path) == made_here  # no copy made, none audited

    notes = tmp_path / "notes.txt"
    notes.write_text("the customer's notes\n")
    assert main(["keystore", "backup", str(notes), "--data-dir", str(path)]) == 2
    assert "%s is there already (a file that is not a key store backup)" % notes in capsys.readouterr().err
    assert notes.read_text() == "the customer's notes\n"
    assert key_backups(path) == made_here


def test_a_backup_onto_a_fifo_or_a_link_is_refused_without_opening_it(box, tmp_path, capsys, monkeypatch):
    """To say what FILE is, the backup opened it: a named pipe (or /dev/stdout piped, a link
    to one) waits for a writer, and the command hung for ever."""
    import builtins

    path, _, _ = box
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "stdout"
    link.symlink_to(fifo)
    real_open, real_os_open = builtins.open, os.open

    def never(name):
        if os.fspath(name) in (str(fifo), str(link)):
            raise AssertionError("%s was opened" % name)

    monkeypatch.setattr(builtins, "open", lambda name, *a, **kw: never(name) or real_open(name, *a, **kw))
    monkeypatch.setattr(os, "open", lambda name, *a, **kw: never(name) or real_os_open(name, *a, **kw))
    made_here = key_backups(path)
    capsys.readouterr()
    for where, what in ((fifo, "a named pipe (FIFO)"), (link, "a symbolic link")):
        assert main(["keystore", "backup", str(where), "--data-dir", str(path)]) == 2
        assert "%s is there already (%s)" % (where, what) in capsys.readouterr().err
    assert key_backups(path) == made_here


def test_a_file_made_while_the_backup_is_made_is_never_written_over(box, tmp_path, capsys, monkeypatch):
    """The backup looked for FILE, then replaced whatever was there by the time it wrote: a
    file another box's backup put there meanwhile was lost."""
    from firmware import keybackup

    path, _, _ = box
    out = tmp_path / "stick" / "keys.json"
    out.parent.mkdir()
    real = keybackup.make_backup

    def made_meanwhile(*args, **kw):
        made = real(*args, **kw)
        out.write_bytes(b"another box's keys\n")
        return made

    monkeypatch.setattr(keybackup, "make_backup", made_meanwhile)
    capsys.readouterr()
    assert main(["keystore", "backup", str(out), "--data-dir", str(path)]) == 2
    assert "%s is there already (a file that is not a key store backup)" % out in capsys.readouterr().err
    assert out.read_bytes() == b"another box's keys\n"
    assert os.listdir(out.parent) == ["keys.json"]  # no temporary file left
    *_, (_, made), (_, failed) = key_backups(path)
    assert (made["phase"], failed["phase"], failed["reason"]) == (
        "made",
        "failed",
        "the file was there already",
    )


def test_a_backup_onto_a_stick_without_hard_links_is_written_all_the_same(box, tmp_path, monkeypatch):
    import errno

    path, _, _ = box
    out = tmp_path / "fat-keys.json"

    def no_links(*a, **kw):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    backup(path, out)
    assert json.loads(out.read_bytes())["format"] == BACKUP_FORMAT
    assert sorted(os.listdir(tmp_path)).count("fat-keys.json") == 1
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".fat-keys.json")]


def test_a_file_that_is_not_a_backup_is_named(box, tmp_path, capsys):
    path, _, recovery_file = box
    keystore = path / "keys" / "keystore.json"
    plain = tmp_path / "keystore-copy.json"
    plain.write_bytes(keystore.read_bytes())
    os.unlink(keystore)
    assert restore(path, plain, "--recovery-key-file", recovery_file) == 2
    err = capsys.readouterr().err
    assert "%s is not a key store backup" % plain in err
    assert not keystore.exists()
    # What the file says it is, in words: not Python's None for a format it lacks.
    assert "None" not in err
    assert "it names no format" in err or "its format is" in err, err


def test_without_a_pin_the_signing_key_says_whose_backup_it_is(tmp_path, capsys):
    def signing_record(path, seed):
        doc = {"public_key": base64.b64encode(bytes([seed]) * 32).decode("ascii"), "source": "card"}
        (path / SIGNING_PUBLIC).write_text(json.dumps(doc))

    path, other = tmp_path / "box", tmp_path / "other"
    make_box(path)
    recovery = make_box(other)
    for box_path, seed in ((path, 1), (other, 2)):
        os.unlink(box_path / PIN_FILE)  # a card that lost it (or never recorded)
        signing_record(box_path, seed)
        (box_path / "recordings").mkdir()  # the recordings a backup is put back beside
        (box_path / "recordings" / "0a.lkrec").write_bytes(b"")
    theirs = tmp_path / "theirs.json"
    backup(other, theirs)
    os.unlink(path / "keys" / "keystore.json")
    recovery_file = secret_file(tmp_path, "r.txt", recovery)
    assert restore(path, theirs, "--recovery-key-file", recovery_file) == 2
    err = capsys.readouterr().err
    assert "made on the box whose signing key is %s" % fingerprint(bytes([2]) * 32) in err
    assert not (path / "keys" / "keystore.json").exists()

    # The same backup on its own box (the signing key is that box's) goes back, beside the
    # recordings it opens (a card with none is a new card: below).
    os.unlink(other / "keys" / "keystore.json")
    assert restore(other, theirs, "--recovery-key-file", recovery_file) == 0


def test_a_backup_is_not_put_back_onto_a_new_card(tmp_path, capsys):
    """A card that died, replaced by a new one in the same box: its HAT still gives the box's
    signing key, so the old backup would pass as this box's, and was put back without a word;
    the setup wizard then took it for keys made with `linekeeper init`. The new card holds
    nothing the backup opens: the box is set up again (docs/recovery.md, "A card that died")."""
    old, new = tmp_path / "old", tmp_path / "new"
    recovery = make_box(old)
    os.unlink(old / PIN_FILE)
    doc = {"public_key": base64.b64encode(bytes([1]) * 32).decode("ascii"), "source": "card"}
    (old / SIGNING_PUBLIC).write_text(json.dumps(doc))
    copy = tmp_path / "old-backup.json"
    backup(old, copy)
    new.mkdir()
    (new / SIGNING_PUBLIC).write_text(json.dumps(doc))  # the same HAT
    before = _files(new)
    capsys.readouterr()
    assert restore(new, copy, "--recovery-key-file", secret_file(tmp_path, "r.txt", recovery)) == 2
    err = capsys.readouterr().err
    assert "is a new card, not one that lost its key store" in err
    assert "setting the box up again" in err and '"A card that died"' in err
    assert err.rstrip().endswith("Nothing was changed")
    assert _files(new) == before  # no key store, no audit entry


T0 = 1_772_323_200_000_000  # 2026-03-01T00:00:00Z
DAY = 86_400_000_000


def test_a_backup_carries_what_the_box_held_with_no_personal_data(tmp_path, capsys):
    """A box stolen with no archive: the backup kept off it says how many calls and
    recordings it held, from when to when, on which lines, for how many callers and
    accounts, and which box it was; never a number, a name or an address."""
    import sqlite3

    from firmware.calls.calllog import RECORDINGS_SCHEMA, migrate

    path = tmp_path / "box"
    make_box(path)
    db = sqlite3.connect(path / "calls.db")
    migrate(db)
    db.executescript(RECORDINGS_SCHEMA)
    with db:
        for i, (line, number) in enumerate(
            [(1, "01632960123"), (2, "01632960123"), (1, "02079460000"), (3, None), (2, "07700900001")]
        ):
            db.execute(
                "INSERT INTO calls (line, direction, started_at, clock_synced, number, name)"
                " VALUES (?, 'in', ?, 1, ?, 'Ann Caller')",
                (line, T0 + i * DAY, number),
            )
            # Call 1's recording was deleted by retention; the others are held.
            db.execute(
                "INSERT INTO recordings (id, call_id, file, profile, state, started_at, chunk_ms)"
                " VALUES (?, ?, 'f', 'voice', ?, ?, 1000)",
                ("r%d" % i, i + 1, "deleted" if i == 0 else "complete", T0 + i * DAY),
            )
    db.close()
    web = sqlite3.connect(path / "web.db")
    with web:
        web.execute("CREATE TABLE users (name TEXT, roles TEXT)")
        web.executemany(
            "INSERT INTO users VALUES (?, ?)",
            [("alice", "installer,supervisor"), ("sam", "supervisor"), ("audrey", "auditor")],
        )
    web.close()
    (path / "config.json").write_text(json.dumps({"archive": {"box_id": "leeds-1"}}))
    out = tmp_path / "backup.json"
    capsys.readouterr()
    backup(path, out)
    printed = capsys.readouterr().out
    text = out.read_text()
    inv = json.loads(text)["inventory"]
    assert {k: v for k, v in inv.items() if k not in ("made_at", "host", "signing_key")} == {
        "archive_box_id": "leeds-1",
        "calls": 5,
        "first_call": "2026-03-01T00:00:00Z",
        "last_call": "2026-03-05T00:00:00Z",
        "callers": 3,  # two calls of one number, one call with none
        "lines": [1, 2, 3],
        "recordings": 4,  # call 1's was deleted
        "first_recording": "2026-03-02T00:00:00Z",
        "last_recording": "2026-03-05T00:00:00Z",
        "accounts": 3,
        "accounts_by_role": {"auditor": 1, "installer": 1, "supervisor": 2},
        "unreadable": [],
    }
    assert inv["made_at"] == json.loads(text)["made_at"] and inv["host"]
    for personal in ("01632960123", "02079460000", "07700900001", "Ann Caller", "sam", "audrey"):
        assert personal not in text.replace(json.loads(text)["keystore"], "")
    # The audit entry records it too (the Settings page shows the last one), and it is printed.
    assert key_backups(path)[-1][1]["inventory"] == inv
    assert "5 calls in the call log, from 2026-03-01T00:00:00Z to 2026-03-05T00:00:00Z" in printed
    assert "4 recordings held" in printed and "archive box id leeds-1" in printed


def test_a_store_it_cannot_read_is_named_and_the_backup_is_made(tmp_path):
    path = tmp_path / "box"
    make_box(path)
    (path / "calls.db").write_bytes(b"not a database, a damaged card" * 100)
    out = tmp_path / "backup.json"
    backup(path, out)
    inv = json.loads(out.read_text())["inventory"]
    assert inv["calls"] == 0 and inv["recordings"] == 0 and inv["accounts"] == 0
    (unreadable,) = inv["unreadable"]
    assert unreadable.startswith("calls.db: ")


def test_an_inventory_with_keys_missing_or_of_another_type_says_what_it_has():
    """Read back from a backup's audit entry (an older release's, a hand-edited one), an
    inventory lacking a key, or with one not of its type, raised KeyError or TypeError: the
    Settings page that shows the last backup's inventory failed. What is there is said, the
    rest left out."""
    full = {
        "calls": 40,
        "first_call": "2026-03-02T09:00:00Z",
        "last_call": None,
        "callers": 39,
        "lines": [1, 2],
        "recordings": 3,
        "first_recording": None,
        "last_recording": None,
        "accounts": 2,
        "accounts_by_role": {"auditor": 1, "installer": 1},
        "host": "box1",
        "signing_key": None,
        "archive_box_id": "",
        "unreadable": ["web.db: locked"],
    }
    assert inventory_lines(full) == [
        "40 calls in the call log, from 2026-03-02T09:00:00Z to none (UTC), on lines 1, 2; "
        "39 distinct callers' numbers",
        "3 recordings held, from none to none (UTC)",
        "2 accounts (1 with the role auditor, 1 with the role installer)",
        "box box1, signing key none on record, no archive",
        "could not be read: web.db: locked",
    ]
    assert inventory_lines({}) == []
    assert inventory_lines(None) == []
    odd = {
        "calls": "forty",
        "recordings": 3,
        "first_recording": 7,
        "last_recording": None,
        "accounts": 2,
        "accounts_by_role": ["auditor"],
        "lines": "1,2",
        "host": None,
        "signing_key": "ab:cd",
        "unreadable": "web.db",
    }
    assert inventory_lines(odd) == ["3 recordings held", "2 accounts", "signing key ab:cd"]
    # One of each, in the singular; the wizard's first account, installer and supervisor
    # at once, was "1 accounts (installer 1, supervisor 1)", which read as two.
    ones = {"calls": 1, "callers": 1, "recordings": 1, "accounts": 1}
    ones["accounts_by_role"] = {"installer": 1, "supervisor": 1}
    assert inventory_lines(ones) == [
        "1 call in the call log; 1 distinct caller's number",
        "1 recording held",
        "1 account (1 with the role installer, 1 with the role supervisor)",
    ]


@pytest.fixture
def read_only_card(tmp_path):
    """``(box, remount)``: a box on a tmpfs of its own (root), ``remount("ro"|"rw")``."""
    import subprocess

    card = tmp_path / "card"
    card.mkdir()
    assert os.geteuid() == 0, "a read-only card is a tmpfs remounted read-only: root"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(card)], check=True)

    def remount(how):
        subprocess.run(["mount", "-o", "remount,%s" % how, str(card)], check=True)

    try:
        yield card / "box", remount
    finally:
        if subprocess.run(["umount", str(card)]).returncode != 0:
            subprocess.run(["umount", "-l", str(card)], check=True)


def test_on_a_read_only_card_the_backup_is_made_with_a_signed_statement_of_it(
    read_only_card, tmp_path, capsys
):
    from firmware.keybackup import STATEMENT_FORMAT
    from firmware.signing import load_signer, verify_signature
    from firmware.storage.audit import canonical_json

    path, remount = read_only_card
    make_box(path)
    signer = load_signer(str(path))  # the box's card key, as its recorder makes it
    with AuditLog(os.path.join(path, "audit.db"), os.path.join(path, "audit.head")):
        pass  # a trail there already, as on any box that ran
    remount("ro")
    out = tmp_path / "keys-backup.json"
    capsys.readouterr()
    backup(path, out)
    said = capsys.readouterr()
    err = said.err
    statement_path = tmp_path / "keys-backup.json.statement.json"
    # Exit 0, the copy made: a script tells it was not audited from stdout alone.
    assert said.out.splitlines()[1] == (
        "not audited: the audit trail could not record this backup (the card is read-only); its "
        "statement is %s (signed with the box's key): keep it with the backup, add it to the box's "
        "records, and check it with `linekeeper verify-statement`" % statement_path
    )
    assert "the audit trail could not record this key store backup" in err
    assert "read-only" in err and str(statement_path) in err and "signed with the box's key" in err

    doc = json.loads(out.read_text())
    assert doc["keystore"].encode() == (path / "keys" / "keystore.json").read_bytes()
    statement = json.loads(statement_path.read_text())
    assert oct(statement_path.stat().st_mode & 0o777) == "0o600"
    assert statement["format"] == STATEMENT_FORMAT and statement["action"] == "key_backup"
    assert statement["actor"] == "cli" and "read-only" in statement["not_audited_because"]
    assert statement["file_sha256"] == __import__("hashlib").sha256(out.read_bytes()).hexdigest()
    assert statement["details"]["key_store"] == doc["key_store"]
    assert statement["details"]["inventory"] == doc["inventory"]
    signature = statement.pop("signature")
    assert signature["key"] == signer.fingerprint
    body = canonical_json(statement).encode()
    assert verify_signature(signer.public_key, base64.b64decode(signature["ed25519"]), body)
    statement["actor"] = "someone else"
    assert not verify_signature(
        signer.public_key, base64.b64decode(signature["ed25519"]), canonical_json(statement).encode()
    )

    remount("rw")
    assert key_backups(path) == []  # the trail could not take it: the statement stands in


def test_on_a_writable_card_the_audit_still_comes_first(read_only_card, tmp_path, capsys, monkeypatch):
    # The card writable but the trail failing for another reason: no backup, no statement.
    import sqlite3

    from firmware.storage import audit as audit_module

    path, _ = read_only_card
    make_box(path)

    def refuse(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(audit_module.AuditLog, "append", refuse)
    out = tmp_path / "keys-backup.json"
    assert main(["keystore", "backup", str(out), "--data-dir", str(path)]) == 2
    assert "disk I/O error" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "keys-backup.json.statement.json").exists()


def test_on_a_read_only_card_a_statement_file_there_already_stops_the_backup(
    read_only_card, tmp_path, capsys
):
    path, remount = read_only_card
    make_box(path)
    out = tmp_path / "keys-backup.json"
    statement_path = tmp_path / "keys-backup.json.statement.json"
    statement_path.write_text("someone's file\n")
    remount("ro")
    assert main(["keystore", "backup", str(out), "--data-dir", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is there already" in err and "nothing was written" in err
    assert not out.exists() and statement_path.read_text() == "someone's file\n"


@pytest.fixture
def statement(read_only_card, tmp_path, capsys):
    """``(box, backup, its statement, the box's signer)``: a backup made on a read-only card."""
    from firmware.signing import load_signer

    path, remount = read_only_card
    make_box(path)
    signer = load_signer(str(path))
    remount("ro")
    out = tmp_path / "keys-backup.json"
    backup(path, out)
    remount("rw")
    capsys.readouterr()
    return path, out, tmp_path / "keys-backup.json.statement.json", signer


def verify_statement(path, *how):
    return main(["verify-statement", str(path), *how])


def test_a_statement_verifies_with_the_box_s_card_or_its_fingerprint_and_says_what_it_states(
    statement, capsys
):
    path, out, statement_path, signer = statement
    assert verify_statement(statement_path, "--data-dir", str(path)) == 0
    said = capsys.readouterr().out
    assert "%s: intact, signed by %s" % (statement_path, signer.fingerprint) in said
    assert "cli made a key store backup (key store ks1:" in said and str(path) in said
    assert "not in the audit trail because:" in said and "read-only" in said
    assert "%s beside it is the file it speaks of" % out in said
    assert verify_statement(statement_path, "--key", signer.fingerprint) == 0
    assert "signed by %s (the key given)" % signer.fingerprint in capsys.readouterr().out


def test_a_changed_statement_or_backup_or_another_key_does_not_verify(statement, tmp_path, capsys):
    from firmware.signing import Signer

    path, out, statement_path, signer = statement
    doc = json.loads(statement_path.read_text())
    changed = dict(doc, actor="someone else")
    statement_path.write_text(json.dumps(changed))
    for how in (["--data-dir", str(path)], ["--key", signer.fingerprint]):
        assert verify_statement(statement_path, *how) == 2
        assert "was changed after it was signed" in capsys.readouterr().err

    statement_path.write_text(json.dumps(doc))  # as written, the backup beside it changed
    made = out.read_text()
    out.write_text(made.replace('"host"', '"host" ', 1))
    assert verify_statement(statement_path, "--data-dir", str(path)) == 2
    assert "is NOT the file it speaks of" in capsys.readouterr().err
    out.write_text(made)

    other = Signer(bytes(range(32)), "card")
    assert verify_statement(statement_path, "--key", other.fingerprint) == 2
    assert "signed by %s, not by %s" % (signer.fingerprint, other.fingerprint) in capsys.readouterr().err
    forged = dict(doc, signature=dict(doc["signature"], key=other.fingerprint))
    forged["signature"]["public_key"] = base64.b64encode(other.public_key).decode()
    statement_path.write_text(json.dumps(forged))
    assert verify_statement(statement_path, "--data-dir", str(path)) == 2
    assert "signed by %s, not by %s" % (other.fingerprint, signer.fingerprint) in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, said",
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ('{"format": "linekeeper-keystore-backup"}', "its format is 'linekeeper-keystore-backup'"),
        ('{"version": 1}', "is not a statement (it names no format;"),
        ("[1, 2]", "is not a statement (it is JSON but not an object;"),
    ],
)
def test_a_missing_or_garbled_statement_is_named(statement, capsys, content, said):
    path, _, statement_path, _ = statement
    if content is None:
        statement_path.unlink()
    else:
        statement_path.write_text(content)
    assert verify_statement(statement_path, "--data-dir", str(path)) == 2
    err = capsys.readouterr().err
    assert said in err and str(statement_path) in err


def test_an_unsigned_statement_does_not_verify(read_only_card, tmp_path, capsys):
    path, remount = read_only_card
    make_box(path)  # no signing key: the statement is made, not signed
    remount("ro")
    out = tmp_path / "keys-backup.json"
    backup(path, out)
    remount("rw")
    statement_path = tmp_path / "keys-backup.json.statement.json"
    assert "its statement is %s (NOT signed)" % statement_path in capsys.readouterr().out
    assert verify_statement(statement_path, "--key", "lk1:" + "0" * 32) == 2
    err = capsys.readouterr().err
    assert "is NOT signed" in err and "anyone could have written it" in err


def test_a_statement_by_a_key_taken_over_from_a_replaced_hat_holds_only_before_the_takeover(tmp_path, capsys):
    """The old HAT keeps its key after it is taken out: what it signs dated after the new
    HAT took its key over is not this box's, though the box still trusts the key for what
    came before."""
    import datetime as dt

    from firmware.handover import append_handover, make_handover
    from firmware.keybackup import unaudited_statement
    from firmware.signing import Signer, load_signer, write_public_record

    path = tmp_path / "box"
    path.mkdir()
    old = load_signer(str(path))  # the first HAT's key
    takeover_us = 1_780_000_000_000_000
    files = {}
    for name, wall_us in (("before", takeover_us - 60_000_000), ("after", takeover_us + 60_000_000)):
        data = b"a backup, %s the takeover\n" % name.encode()
        (tmp_path / name).write_bytes(data)
        why = "the card is read-only"
        raw, _ = unaudited_statement(str(path), "ivan", "key_backup", {}, data, wall_us, why)
        files[name] = tmp_path / (name + ".statement.json")
        files[name].write_bytes(raw)
    new = Signer(bytes(range(32)), "vault")  # the new HAT's, which takes the old one over
    append_handover(str(path), make_handover(new, old.public_key, 0, "0" * 64, takeover_us))
    write_public_record(str(path), new)
    handover_on = dt.datetime.fromtimestamp(takeover_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    assert verify_statement(files["before"], "--data-dir", str(path)) == 0
    said = capsys.readouterr().out
    assert "intact, signed by %s" % old.fingerprint in said
    assert "before its handover on %s" % handover_on in said

    assert verify_statement(files["after"], "--data-dir", str(path)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        "%s does NOT verify: it was signed by %s, a key this box took over from a replaced HAT, which "
        "signs for this box only before its handover on %s; it is dated %s, not before that"
        % (
            files["after"],
            old.fingerprint,
            handover_on,
            dt.datetime.fromtimestamp(takeover_us / 1e6 + 60, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
        in err
    )
    # Its own key given: the fingerprint alone says nothing of a takeover, as before.
    assert verify_statement(files["after"], "--key", old.fingerprint) == 0


def test_a_recovery_key_file_others_can_read_is_named_as_the_recovery_key_file(box, capsys):
    """It warned "the password file rk can be read by other users" of the recovery key file."""
    path, copy, recovery_file = box
    os.chmod(recovery_file, 0o644)
    os.unlink(path / "keys" / "keystore.json")
    assert restore(path, copy, "--recovery-key-file", recovery_file) == 0
    err = capsys.readouterr().err
    assert (
        "linekeeper: warning: the recovery key file %s can be read by other users (mode 644)" % recovery_file
    ) in err
    assert "password file" not in err


def test_a_deletion_log_copy_of_one_entry_is_said_in_the_singular():
    """`linekeeper verify-statement` told an inspector a copy "holds 1 entries, every entry,
    numbers 1 to 1"."""
    from firmware.keybackup import COPY_FORMAT, statement_lines

    doc = {
        "format": COPY_FORMAT,
        "actor": "audra",
        "data_dir": "/data",
        "host": "box",
        "at": "2026-03-02T13:04:58Z",
    }
    doc["file_sha256"] = "ab" * 32
    one = {"log": "deletions", "entries": 1, "first_seq": 7, "last_seq": 7, "last_hash": "cd" * 32}
    said = statement_lines(dict(doc, details=one))
    assert "it holds 1 entry, every entry, number 7; its hash is %s" % ("cd" * 32) in said
    three = dict(one, entries=3, first_seq=5)
    said = statement_lines(dict(doc, details=three))
    assert "it holds 3 entries, every entry, numbers 5 to 7; the last one's hash is %s" % ("cd" * 32) in said


def test_a_backup_made_before_a_lines_key_is_refused_unless_its_loss_is_accepted(box, tmp_path, capsys):
    """The setup's backup, put back after line 2 first recorded: line 2's key, made since,
    is in no copy, so its recordings would open with nothing; a later copy may have it."""
    from firmware.keypin import RecordingKeyPin
    from firmware.signing import Signer

    path, early, recovery_file = box
    store = KeyStore(str(path), CHEAP)
    # Line 2 records for the first time: the box makes its key and pins it.
    RecordingKeyPin(str(path), Signer(bytes(range(32)), "card")).check_line(2, store.line_public_key(2))
    later = tmp_path / "later.json"
    backup(path, later)
    keystore = path / "keys" / "keystore.json"
    current = keystore.read_bytes()
    made_at = json.loads(early.read_text())["made_at"]

    os.unlink(keystore)
    capsys.readouterr()
    assert restore(path, early, "--recovery-key-file", recovery_file) == 2
    err = capsys.readouterr().err
    assert "was made on %s, before line 2 had its recording key" % made_at in err
    assert "--accept-lost-lines" in err and "Nothing was changed" in err
    assert not keystore.exists()
    assert [d["phase"] for _, d in key_backups(path)] == ["made", "made"]

    # The later copy holds line 2's key: put back as any.
    assert restore(path, later, "--recovery-key-file", recovery_file) == 0
    assert keystore.read_bytes() == current and "holds no key" not in capsys.readouterr().out
    assert "lines_without_key" not in key_backups(path)[-1][1]

    # With no later copy, the early one all the same, saying what it cannot open.
    os.unlink(keystore)
    assert restore(path, early, "--recovery-key-file", recovery_file, "--accept-lost-lines") == 0
    out = capsys.readouterr().out
    assert "it holds no key for line 2 (made after the backup)" in out
    assert keystore.exists() and KeyStore(str(path)).line_public_key(2, create=False) is None
    details = key_backups(path)[-1][1]
    assert details["phase"] == "restored" and details["lines_without_key"] == [2]
    # Its pin goes with it: the box makes line 2 a new key and pins it, where the pin of the
    # lost one had it record line 2 to the admin key and raise key_tampered for ever.
    pin = RecordingKeyPin(str(path), Signer(bytes(range(32)), "card"))
    pin.check_line(2, KeyStore(str(path)).line_public_key(2))
    assert "2" in json.loads((path / PIN_FILE).read_text())["lines"]


def _files(path):
    """Every file under ``path`` and its bytes: what a refusal must leave as it was."""
    found = {}
    for root, _, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.relpath(os.path.join(root, name), path)] = f.read()
    return found


def _refusal_case(case, path, out, recovery_file, tmp_path):
    """``(backup file, options)`` of a restore refused as ``case`` says."""
    if case == "has a key store":
        return out, ["--recovery-key-file", recovery_file]
    os.unlink(path / "keys" / "keystore.json")
    bad = tmp_path / "bad.json"
    if case == "neither key":
        return out, []
    if case == "backup unreadable":
        return tmp_path / "no-such.json", ["--recovery-key-file", recovery_file]
    if case == "not JSON":
        bad.write_text("{not json")
    elif case == "not a backup":
        bad.write_text(json.dumps({"format": "something else"}))
    elif case == "another version":
        bad.write_text(json.dumps(dict(json.loads(out.read_text()), version=99)))
    elif case == "damaged":
        bad.write_text(json.dumps(dict(json.loads(out.read_text()), host=None)))
    elif case == "recovery key file unreadable":
        return out, ["--recovery-key-file", str(tmp_path / "no-such.txt")]
    elif case == "recovery key file empty":
        return out, ["--recovery-key-file", secret_file(tmp_path, "empty.txt", "")]
    elif case == "recovery key file not text":
        (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\n")
        (tmp_path / "binary.txt").chmod(0o600)
        return out, ["--recovery-key-file", str(tmp_path / "binary.txt")]
    elif case == "password file unreadable":
        return out, ["--user", "admin", "--password-file", str(tmp_path / "no-such-pw")]
    elif case == "wrong recovery key":
        other = KeyStore(str(tmp_path / "other"), CHEAP).initialise("admin", PASSWORD)
        return out, ["--recovery-key-file", secret_file(tmp_path, "other.txt", other)]
    else:
        raise AssertionError(case)
    return bad, ["--recovery-key-file", recovery_file]


@pytest.mark.parametrize(
    "case",
    [
        "has a key store",
        "neither key",
        "backup unreadable",
        "not JSON",
        "not a backup",
        "another version",
        "damaged",
        "recovery key file unreadable",
        "recovery key file empty",
        "recovery key file not text",
        "password file unreadable",
        "wrong recovery key",
    ],
)
def test_every_refusal_of_a_restore_says_nothing_was_changed_and_changes_nothing(box, tmp_path, capsys, case):
    """ "not a key store backup" and an unreadable recovery key file said nothing of it, where
    the command's other refusals end "nothing was changed"."""
    path, out, recovery_file = box
    copy, how = _refusal_case(case, path, out, recovery_file, tmp_path)
    before = _files(path)
    capsys.readouterr()
    assert restore(path, copy, *how) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.rstrip(".").lower().endswith("nothing was changed"), err
    assert _files(path) == before
