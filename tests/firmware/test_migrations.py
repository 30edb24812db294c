"""Data migrations with a backup: the data brought to a release's schema at start, and
back to the older release's data after a rollback."""

import os
import sqlite3
import sys

import pytest

from firmware.migrations import (
    BACKUP_DIR,
    MigrationError,
    bring_up_to_date,
    data_schema,
    drop_backups,
    release_schema,
)

MIGRATION = """
import os
import sqlite3


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
    assert bring_up_to_date(data, new) is None  # nothing more to do

    # The new release failed its health check: the old one starts on the data it left.
    (tmp_path / "data" / "made-by-new.db").write_bytes(b"x")
    restored = bring_up_to_date(data, old)
    assert restored.pop("backup_at_us") > 0
    assert restored == {"event": "restored", "from": 2, "to": 0}
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


def test_a_failed_migration_keeps_the_backup_and_says_where(tmp_path, releases):
    _, new = releases
    data = _data(tmp_path)
    with open(tmp_path / "new_rel" / "m002_note.py", "a") as f:
        f.write("\n\ndef apply(data_dir):\n    raise ValueError('the disk said no')\n")
    with pytest.raises(MigrationError, match="migration 2 .* the disk said no; the data as it was is in"):
        bring_up_to_date(data, new)
    assert data_schema(data) == 1
    assert os.path.isdir(os.path.join(data, BACKUP_DIR, "schema-0"))


def test_this_release_has_no_migration_yet():
    assert release_schema() == 0
