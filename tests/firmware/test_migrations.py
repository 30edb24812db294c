"""Data migrations with a backup: the data brought to a release's schema at start, and
back to the older release's data after a rollback."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from firmware.migrations import (
    BACKUP_DIR,
    MigrationError,
    bring_up_to_date,
    data_schema,
    drop_backups,
    finish_migration,
    finish_rollback,
    pending_rollback,
    release_schema,
)

MIGRATION = """
import json
import os
import sqlite3
import subprocess


def apply(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    db.execute("ALTER TABLE calls ADD COLUMN {column} TEXT")
    db.commit()
    db.close()
"""


@pytest.fixture
def releases(tmp_path, monkeypatch):
    """Two migration packages: ``old`` (none) and ``new`` (two migrations)."""
    for name, migrations in (("old_rel", {}), ("new_rel", {"m001_site": "site", "m002_note": "note"})):
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        for module, column in migrations.items():
            (package / ("%s.py" % module)).write_text(MIGRATION.format(column=column))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "old_rel", "new_rel"
    for name in [m for m in sys.modules if m.startswith(("old_rel", "new_rel"))]:
        del sys.modules[name]


def _data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "calls.db")
    db.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY, number TEXT)")
    db.execute("INSERT INTO calls (number) VALUES ('01632960123')")
    db.commit()
    db.close()
    (data / "config.json").write_text('{"country": "uk"}')
    (data / "recordings").mkdir()
    (data / "recordings" / "1.lkr").write_bytes(b"audio")
    return str(data)


def _columns(data):
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    cols = [row[1] for row in db.execute("PRAGMA table_info(calls)")]
    rows = db.execute("SELECT number FROM calls").fetchall()
    db.close()
    return cols, rows


def test_a_newer_release_migrates_after_a_backup_and_a_rollback_restores_it(tmp_path, releases):
    old, new = releases
    data = _data(tmp_path)
    assert (release_schema(old), release_schema(new)) == (0, 2)

    assert bring_up_to_date(data, new) == {"event": "migrated", "from": 0, "to": 2}
    assert data_schema(data) == 2
    assert _columns(data)[0] == ["id", "number", "site", "note"]
    assert os.path.isfile(os.path.join(data, BACKUP_DIR, "schema-0", "calls.db"))
    # Until its audit entry is written, every start hands the migration back to be audited.
    assert bring_up_to_date(data, new) == {"event": "migrated", "from": 0, "to": 2}
    finish_migration(data)
    assert bring_up_to_date(data, new) is None  # nothing more to do

    # The new release failed its health check: the old one starts on the data it left.
    (tmp_path / "data" / "made-by-new.db").write_bytes(b"x")
    restored = bring_up_to_date(data, old)
    assert restored.pop("backup_at_us") > 0
    assert restored == {"event": "restored", "from": 2, "to": 0, "audit": "restored"}  # no trail here
    assert data_schema(data) == 0
    assert _columns(data) == (["id", "number"], [("01632960123",)])
    assert not os.path.exists(os.path.join(data, "made-by-new.db"))
    assert not os.path.exists(os.path.join(data, BACKUP_DIR))
    assert (tmp_path / "data" / "recordings" / "1.lkr").read_bytes() == b"audio"


def test_confirmed_the_new_release_keeps_its_data_and_an_old_one_is_refused(tmp_path, releases):
    old, new = releases
    data = _data(tmp_path)
    bring_up_to_date(data, new)
    drop_backups(data)
    with pytest.raises(MigrationError, match="schema 2, from a newer release; this release knows schema 0"):
        bring_up_to_date(data, old)
    assert data_schema(data) == 2


def test_backups_dropped_by_a_cut_short_drop_are_gone_whole(tmp_path, releases, monkeypatch):
    """Confirming an update drops the backups. A drop cut (or refused) part way through
    must not leave part of a backup: the box would take it for an update not yet
    confirmed (and keep stores in clear for a way back), and a rollback would put back
    what is left of it, removing every file the part lacks (the call log, say)."""
    from firmware.migrations import backup_kept

    _, new = releases
    data = _data(tmp_path)
    bring_up_to_date(data, new)
    finish_migration(data)
    real_unlink = os.unlink
    removed = []

    def cut_after_one(path, *args, **kwargs):
        if len(removed) == 1:
            raise KeyboardInterrupt("cut")  # stands for a power cut: nothing after it runs
        removed.append(path)
        return real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(os, "unlink", cut_after_one)
        drop_backups(data)
    assert len(removed) == 1
    # No backup is kept, whole or in part; the next start removes what the cut left.
    assert not backup_kept(data, below=1) and not os.path.exists(os.path.join(data, BACKUP_DIR))
    assert bring_up_to_date(data, new) is None
    assert [n for n in os.listdir(data) if n.startswith(BACKUP_DIR)] == []


def test_a_failed_migration_keeps_the_backup_and_says_where(tmp_path, releases):
    _, new = releases
    data = _data(tmp_path)
    with open(tmp_path / "new_rel" / "m002_note.py", "a") as f:
        f.write("\n\ndef apply(data_dir):\n    raise ValueError('the disk said no')\n")
    with pytest.raises(MigrationError, match="migration 2 .* the disk said no; the data as it was is in"):
        bring_up_to_date(data, new)
    assert data_schema(data) == 1
    assert os.path.isdir(os.path.join(data, BACKUP_DIR, "schema-0"))


def test_a_migration_cut_at_any_step_is_done_again_from_its_backup(tmp_path, releases, monkeypatch):
    """A cut as each file change of a forward migration begins (the backup's copies, its
    rename, the migration's note, the schema noted after each migration): the next
    start migrates from the data as the backup holds it, never a migration again over
    its own work (these two are not idempotent: a column added twice is an error), and
    a rollback after it still gives the older release its data back."""
    from support.cuts import PowerCut, Steps

    old, new = releases
    setup = _data(tmp_path)
    _append(setup, "before")
    pristine = tmp_path / "pristine"
    shutil.copytree(setup, pristine)
    uncut = Steps()
    with monkeypatch.context() as patch:
        uncut.install_migrations(patch.setattr)
        assert bring_up_to_date(setup, new) == {"event": "migrated", "from": 0, "to": 2}
    backup = {n: c for n, c in _state(setup).items() if n.startswith(BACKUP_DIR)}
    assert uncut.names.count("atomic_write") == 3, uncut.names  # the note, schema 1, schema 2
    for cut_at in range(1, len(uncut.names) + 1):
        what = "cut as %s (step %d) began" % (uncut.names[cut_at - 1], cut_at)
        data = str(tmp_path / ("cut-%d" % cut_at))
        shutil.copytree(pristine, data)
        with monkeypatch.context() as patch, pytest.raises(PowerCut):
            Steps(cut_at).install_migrations(patch.setattr)
            bring_up_to_date(data, new)
        assert bring_up_to_date(data, new) == {"event": "migrated", "from": 0, "to": 2}, what
        assert data_schema(data) == 2, what
        assert _columns(data) == (["id", "number", "site", "note"], [("01632960123",)]), what
        assert {n: c for n, c in _state(data).items() if n.startswith(BACKUP_DIR)} == backup, what
        finish_migration(data)
        with _audit(data) as audit:
            assert audit.verify() == [], what
        restored = bring_up_to_date(data, old)
        assert restored["event"] == "restored" and restored["audit"] == "kept", what
        finish_rollback(data)
        assert data_schema(data) == 0 and _columns(data) == (["id", "number"], [("01632960123",)]), what
        shutil.rmtree(data)


def test_this_release_is_at_schema_4_the_password_history():
    from firmware.migrations import migrations

    assert release_schema() == 4
    assert migrations() == [
        (1, "firmware.migrations.m001_seal_stores"),
        (2, "firmware.migrations.m002_seal_concerns"),
        (3, "firmware.migrations.m003_audit_indexes"),
        (4, "firmware.migrations.m004_password_history"),
    ]


OLD_USERS = """
CREATE TABLE users (
    name TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, roles TEXT NOT NULL,
    lines TEXT NOT NULL DEFAULT '', created_us INTEGER NOT NULL, pw_changed_us INTEGER NOT NULL
);
INSERT INTO users VALUES ('sam', 'the hash', 'supervisor', '1,2', 1, 2);
"""


def test_the_password_history_is_added_to_an_older_web_db(tmp_path):
    """A web.db of a release before schema 4 has no password history and no mark of a
    password to change: its accounts could not be read by this release. The migration adds
    both, empty, and keeps every account as it was; then the accounts work as a new box's."""
    from firmware.migrations import m004_password_history
    from web.accounts import Accounts
    from web.db import WebDb
    from web.passwords import CHEAP_COST, hash_password

    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "web.db")
    db.executescript(OLD_USERS)
    db.execute("UPDATE users SET pw_hash = ?", (hash_password("sams old password 1", CHEAP_COST),))
    db.commit()
    m004_password_history.apply(str(data))
    rows = db.execute("SELECT name, roles, lines, created_us, pw_history, must_change FROM users").fetchall()
    assert rows == [("sam", "supervisor", "1,2", 1, "[]", "")]
    db.close()
    web_db = WebDb(data / "web.db")
    try:
        accounts = Accounts(web_db, lambda: 5, CHEAP_COST)
        assert accounts.get("sam").must_change == ""
        with web_db.tx() as conn:
            accounts.set_password(conn, "sam", "sams new password 2")
        assert accounts.reused("sam", "sams old password 1")
    finally:
        web_db.close()
    m004_password_history.apply(str(tmp_path / "none"))  # no web.db: nothing to do


def test_the_audit_indexes_are_built_on_a_trail_without_them(tmp_path):
    """A trail of a release before schema 3 has no index by who or when: the audit page's
    filters read the whole trail. The migration builds them, and changes no entry."""
    from firmware.migrations import m003_audit_indexes
    from firmware.storage.audit import AuditLog

    data = tmp_path / "data"
    data.mkdir()
    with AuditLog(data / "audit.db", data / "audit.head") as audit:
        audit.append("sam", "login", None, {}, 1)
    db = sqlite3.connect(data / "audit.db")
    db.execute("DROP INDEX audit_actor")
    db.execute("DROP INDEX audit_wall")
    db.commit()
    before = db.execute("SELECT * FROM audit").fetchall()

    def plans():
        fresh = sqlite3.connect(data / "audit.db")  # (a connection's cached plans outlive an index)
        try:
            return [
                " ".join(
                    r[-1]
                    for r in fresh.execute(
                        "EXPLAIN QUERY PLAN SELECT * FROM audit WHERE %s ORDER BY seq DESC LIMIT 9" % where,
                        args,
                    )
                )
                for where, args in (("actor = ?", ("sam",)), ("wall_us >= ? AND wall_us < ?", (0, 9)))
            ]
        finally:
            fresh.close()

    assert not any("audit_actor" in p or "audit_wall" in p for p in plans())
    m003_audit_indexes.apply(str(data))
    assert plans() == [
        "SEARCH audit USING INDEX audit_actor (actor=?)",
        "SEARCH audit USING INDEX audit_wall (wall_us>? AND wall_us<?) USE TEMP B-TREE FOR ORDER BY",
    ]
    assert db.execute("SELECT * FROM audit").fetchall() == before
    db.close()
    with AuditLog(data / "audit.db", data / "audit.head") as audit:
        assert audit.verify() == []
    m003_audit_indexes.apply(str(tmp_path / "none"))  # no trail: nothing to do


AUDIT_MIGRATION = """
import json
import os
import sqlite3
import subprocess


def apply(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "audit.db"))
    db.execute("CREATE INDEX audit_by_hash ON audit (hash)")
    db.commit()
    db.close()
"""


def _audit(data):
    from firmware.storage.audit import AuditLog

    return AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))


def _append(data, *events):
    with _audit(data) as audit:
        for n, event in enumerate(events):
            audit.append("system", "update", "data", {"event": event}, 1_700_000_000_000_000 + n)


def test_a_rollback_keeps_the_audit_entries_the_newer_release_wrote(tmp_path, releases):
    old, new = releases
    data = _data(tmp_path)
    _append(data, "before")
    bring_up_to_date(data, new)
    _append(data, "migrated", "health-check login")  # the new release's own entries

    restored = bring_up_to_date(data, old)

    assert (restored["audit"], restored["audit_entries_since"]) == ("kept", 2)
    assert _columns(data)[0] == ["id", "number"]  # the rest of the data is as it was
    with _audit(data) as audit:
        events = [e.details["event"] for e in audit.entries()][::-1]
        assert events == ["before", "migrated", "health-check login"]
        audit.append("system", "update", "data", restored, 1_700_000_000_000_009)
        assert audit.verify() == []


def test_a_rollback_carries_over_the_entries_when_a_migration_changed_the_trail(tmp_path, releases):
    old, new = releases
    (tmp_path / "new_rel" / "m003_audit.py").write_text(AUDIT_MIGRATION)
    data = _data(tmp_path)
    _append(data, "before")
    bring_up_to_date(data, new)
    _append(data, "migrated", "health-check login")

    restored = bring_up_to_date(data, old)

    assert restored["audit"] == "carried"
    carried = restored["carried_over"]
    assert [json.loads(row["details"])["event"] for row in carried] == ["migrated", "health-check login"]
    assert [row["seq"] for row in carried] == [2, 3] and all(len(row["hash"]) == 64 for row in carried)
    with _audit(data) as audit:
        assert [e.details["event"] for e in audit.entries()] == ["before"]  # the trail of before
        audit.append("system", "update", "data", restored, 1_700_000_000_000_009)  # the carrying entry
        assert audit.verify() == []
        assert audit.entries()[0].details["carried_over"][1]["seq"] == 3


def test_a_trail_that_is_not_the_backups_continued_is_never_merged(tmp_path, releases):
    old, new = releases
    data = _data(tmp_path)
    _append(data, "before")
    bring_up_to_date(data, new)
    for name in ("audit.db", "audit.db-wal", "audit.db-shm", "audit.head"):
        if os.path.exists(os.path.join(data, name)):
            os.unlink(os.path.join(data, name))
    _append(data, "someone else's", "trail", "longer")

    restored = bring_up_to_date(data, old)

    assert restored["audit"] == "restored" and "carried_over" not in restored
    with _audit(data) as audit:
        assert [e.details["event"] for e in audit.entries()] == ["before"]


def test_a_trail_that_cannot_be_read_is_not_merged_and_the_rest_is_restored(tmp_path, releases):
    old, new = releases
    data = _data(tmp_path)
    _append(data, "before")
    bring_up_to_date(data, new)
    with open(os.path.join(data, "audit.db"), "r+b") as f:
        f.write(b"not a database at all" * 10)

    restored = bring_up_to_date(data, old)

    assert restored["audit"] == "restored" and data_schema(data) == 0
    with _audit(data) as audit:
        assert [e.details["event"] for e in audit.entries()] == ["before"] and audit.verify() == []


def _call_at(start, speech):
    return {
        "start": start,
        "country": "uk",
        "lines": 2,
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0, "speech": speech}],
    }


def _sim(tmp_path, data, spec):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(spec))
    done = _linekeeper("sim", str(path), "--data-dir", str(data))
    assert done.returncode == 0, done.stdout + done.stderr


def _linekeeper(*args):
    command = [sys.executable, "-m", "firmware.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


THIRD_CALL = _call_at("2026-03-02T11:00:00Z", "The birch canoe slid on the smooth planks.")


def _rolled_back_box(tmp_path, data, new):
    """A box's data directory as the old release finds it after a rollback: a call
    recorded, then the newer release (a package with one migration more than this
    release's, made next to ``new``) migrated it and recorded a call during its health
    check, which then failed."""
    from firmware.storage.keystore import KeyStore

    from support.recording_lab import CHEAP_KDF, PASSWORD

    newer = release_schema() + 1
    package = tmp_path / ("%s_next" % new)
    if not package.exists():
        package.mkdir()
        (package / "__init__.py").write_text("")
        for n in range(1, newer + 1):
            (package / ("m%03d_c%d.py" % (n, n))).write_text(MIGRATION.format(column="c%d" % n))
    KeyStore(str(data), kdf_params=CHEAP_KDF).initialise("admin", PASSWORD)
    _sim(tmp_path, data, _call_at("2026-03-02T09:00:00Z", "Hello, I would like to place an order"))
    assert bring_up_to_date(str(data), package.name)["from"] == release_schema()
    (data / "data-schema").write_text("%d\n" % release_schema())  # (this firmware plays the newer one)
    _sim(tmp_path, data, _call_at("2026-03-02T10:00:00Z", "Glue the sheet to the dark blue background."))
    (data / "data-schema").write_text("%d\n" % newer)


def _check_rolled_back(data, what=""):
    """The old release's data after its start on :func:`_rolled_back_box` (with
    :data:`THIRD_CALL`): the three calls, the second rebuilt and named once in the one
    ``restored`` entry, nothing of the rollback left, and verify passes. ``what``: for
    the messages."""
    from firmware.storage.audit import AuditLog

    from support.cli import calls_args, run_linekeeper
    from support.recording_lab import PASSWORD

    assert data_schema(str(data)) == release_schema() and not (data / BACKUP_DIR).exists(), what
    assert not (data / "rollback.json").exists(), what
    # In this process (the same commands, without starting one): the cut test checks 33 starts.
    status, out, err = run_linekeeper(*calls_args(str(data), PASSWORD, "--json"))
    assert status == 0, (what, err)
    calls = [json.loads(line) for line in out.splitlines()]
    started = sorted(c["started_at"][:13] for c in calls)
    assert started == ["2026-03-02T09", "2026-03-02T10", "2026-03-02T11"], what
    assert all(c["recording"] == "complete" for c in calls), (what, calls)
    status, out, err = run_linekeeper("verify", "--data-dir", str(data))
    assert status == 0, (what, out + err)
    with AuditLog(data / "audit.db", data / "audit.head", readonly=True) as audit:
        restored = [e.details for e in audit.entries() if e.action == "update" and "event" in e.details]
    assert [d["event"] for d in restored] == ["restored"], what
    assert restored[0]["audit"] == "kept" and len(restored[0]["calls_rebuilt"]) == 1, what


def test_a_rollback_keeps_a_call_the_rolled_back_release_recorded_and_verify_passes(tmp_path, releases):
    """The recorder after a rollback: the call log of before the update comes back, the
    call recorded since is rebuilt from its recording's header, the trail carries on."""
    _, new = releases
    data = tmp_path / "box"
    _rolled_back_box(tmp_path, data, new)

    # The old release starts again (this firmware): it puts its data back.
    _sim(tmp_path, data, THIRD_CALL)

    _check_rolled_back(data)


def test_a_new_data_directory_is_made_at_the_releases_schema_and_never_migrated(tmp_path, releases):
    _, new = releases
    data = str(tmp_path / "fresh")
    # The migrations alter a calls table a new directory does not have yet: they must not run.
    assert bring_up_to_date(data, new) is None
    assert data_schema(data) == 2 and not os.path.exists(os.path.join(data, BACKUP_DIR))
    # Data made by an older release (a call log, no note) is migrated as before.
    older = _data(tmp_path)
    assert bring_up_to_date(older, new)["event"] == "migrated"


def test_linekeeper_init_records_the_data_schema(tmp_path, monkeypatch):
    import firmware.migrations
    from firmware.cli import main
    from firmware.storage import keystore

    from support.recording_lab import CHEAP_KDF, PASSWORD

    monkeypatch.setattr(keystore, "DEFAULT_KDF", CHEAP_KDF)
    monkeypatch.setattr(firmware.migrations, "release_schema", lambda package=None: 7)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    data = tmp_path / "box"
    assert main(["init", "--data-dir", str(data), "--password-file", str(pw)]) == 0
    assert data_schema(str(data)) == 7
    # The recorder's first start then has nothing to migrate.
    monkeypatch.setattr(firmware.migrations, "migrations", lambda package=None: [(7, "no.such.module")])
    assert bring_up_to_date(str(data)) is None


def _state(data):
    """What a test can see of ``data``: its files, name: bytes (the backups' too). A
    reader's traces are left out: SQLite's shared-memory index and an empty -wal."""
    seen = {}
    for root, _, names in os.walk(data):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                content = f.read()
            if not name.endswith("-shm") and (content or not name.endswith("-wal")):
                seen[os.path.relpath(path, data)] = content
    return seen


def _rolled_back_setup(tmp_path, releases, audit_migration):
    """Data migrated by the newer release, which then wrote two audit entries: the
    state a rollback starts from (its path)."""
    old, new = releases
    if audit_migration:
        (tmp_path / "new_rel" / "m003_audit.py").write_text(AUDIT_MIGRATION)
    data = _data(tmp_path)
    _append(data, "before")
    bring_up_to_date(data, new)
    _append(data, "migrated", "health-check login")
    (tmp_path / "data" / "made-by-new.db").write_bytes(b"x")
    return data


@pytest.mark.parametrize("audit_migration", [False, True], ids=["trail-kept", "trail-carried"])
def test_a_rollback_cut_at_any_step_is_finished_by_the_next_start(
    tmp_path, releases, audit_migration, monkeypatch
):
    """A cut as each file change of the restore begins (fault injection: tests/support/cuts.py):
    the next start finishes the rollback as planned, the audit entries written since the
    backup are still kept or carried, and a cut before the plan is noted changed nothing."""
    from support.cuts import PowerCut, Steps

    old, _ = releases
    setup = _rolled_back_setup(tmp_path, releases, audit_migration)
    pristine = tmp_path / "pristine"
    shutil.copytree(setup, pristine)
    before = _state(setup)
    uncut = Steps()
    with monkeypatch.context() as patch:
        uncut.install_migrations(patch.setattr)
        expected = bring_up_to_date(setup, old)
    finish_rollback(setup)
    finished = set(_state(setup))
    assert "config.json" in finished and not [n for n in finished if "backup" in n or "rollback" in n]
    assert uncut.names[0] == "atomic_write" and uncut.names[-1] == "shutil.rmtree"
    assert len(uncut.names) >= 8, uncut.names
    for cut_at in range(1, len(uncut.names) + 1):
        data = str(tmp_path / ("cut-%d" % cut_at))
        shutil.copytree(pristine, data)
        steps = Steps(cut_at)
        with monkeypatch.context() as patch, pytest.raises(PowerCut):
            steps.install_migrations(patch.setattr)
            bring_up_to_date(data, old)
        planned = pending_rollback(data)
        if cut_at == 1:
            assert planned is None and _state(data) == before  # nothing changed before the plan
        # The next start (uncut) finishes it, as planned; the one after has nothing more to do.
        done = bring_up_to_date(data, old)
        assert done == (planned or done), uncut.names[cut_at - 1]
        # (A copy's backup has the copy's time.)
        assert dict(done, backup_at_us=0) == dict(expected, backup_at_us=0), uncut.names[cut_at - 1]
        finish_rollback(data)
        assert bring_up_to_date(data, old) is None
        assert data_schema(data) == 0 and _columns(data) == (["id", "number"], [("01632960123",)])
        assert set(_state(data)) == finished, uncut.names[cut_at - 1]  # no backup, note or temp file left
        with _audit(data) as audit:
            audit.append("system", "update", "data", expected, 1_700_000_000_000_009)
            events = [e.details.get("event") for e in audit.entries()][::-1]
            assert audit.verify() == []
        if audit_migration:
            assert events == ["before", "restored"]
            assert [json.loads(r["details"])["event"] for r in expected["carried_over"]] == [
                "migrated",
                "health-check login",
            ]
        else:
            assert events == ["before", "migrated", "health-check login", "restored"]


def test_an_unreadable_rollback_note_is_refused_and_changes_nothing(tmp_path, releases):
    old, _ = releases
    data = _rolled_back_setup(tmp_path, releases, False)
    with open(os.path.join(data, "rollback.json"), "w") as f:
        f.write('{"event": "restored", "to"')
    before = _state(data)
    with pytest.raises(MigrationError, match="rollback.json is unreadable"):
        bring_up_to_date(data, old)
    assert _state(data) == before


def _cut_sim(tmp_path, data, spec, cut_at):
    """``linekeeper sim`` in a child process killed as the rollback's step ``cut_at``
    begins (0: not cut; tests/support/cuts.py); returns (exit status, steps seen)."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(spec))
    steps = tmp_path / ("steps-%d" % cut_at)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__))]))
    command = [sys.executable, "-m", "support.cuts", str(cut_at), str(steps), "sim", str(path)]
    done = subprocess.run(
        command + ["--data-dir", str(data)], capture_output=True, text=True, timeout=180, env=env
    )
    return done, steps.read_text().split()


@pytest.mark.slow
def test_a_recorders_rollback_cut_at_any_step_is_finished_by_its_next_start(tmp_path, releases):
    """The recorder's start after a rollback, killed as each of its steps begins (the
    restore's file changes, the note of the calls to rebuild, each call's rows, their
    signature, the audit entry, the rollback's end): the next start finishes it without
    `linekeeper repair`; the call the newer release recorded is rebuilt and named once,
    and verify passes."""
    _, new = releases
    setup = tmp_path / "setup"
    _rolled_back_box(tmp_path, setup, new)
    pristine = tmp_path / "pristine"
    shutil.copytree(setup, pristine)

    done, names = _cut_sim(tmp_path, setup, THIRD_CALL, 0)
    assert done.returncode == 0, done.stdout + done.stderr
    assert names[0] == "atomic_write", names
    assert names[-4:] == ["sign", "audit", "finish_rollback", "os.unlink"], names
    assert {"note_rebuilding", "rebuild", "shutil.rmtree"} <= set(names), names
    for cut_at in range(1, len(names) + 1):
        data = tmp_path / ("cut-%d" % cut_at)
        shutil.copytree(pristine, data)
        done, _ = _cut_sim(tmp_path, data, THIRD_CALL, cut_at)
        assert done.returncode == 137, (names[cut_at - 1], done.stdout + done.stderr)
        _sim(tmp_path, data, THIRD_CALL)  # the next start: no repair by hand
        _check_rolled_back(data, "cut as %s began" % names[cut_at - 1])
        shutil.rmtree(data)


def test_a_kept_backup_below_a_schema_means_the_update_is_not_confirmed(tmp_path, releases):
    from firmware.migrations import backup_kept

    _, new = releases
    data = _data(tmp_path)
    assert not backup_kept(data, below=1)
    bring_up_to_date(data, new)  # from schema 0: the backup of schema 0 is kept
    assert backup_kept(data, below=1) and not backup_kept(data, below=0)
    drop_backups(data)  # marked good
    assert not backup_kept(data, below=1)
