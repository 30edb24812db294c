"""Data migrations: the data directory's schema brought to the one a release expects,
with a backup so that a rollback finds its data as it left it.

The data directory notes its schema in ``DATA_DIR/data-schema`` (a whole number;
absent: 0; a new data directory notes this release's, :func:`note_if_fresh`). A
release's schema is the highest number among its migrations, the modules
``mNNN_name.py`` in this package, each with ``apply(data_dir)``. At start,
before anything is opened (the data directory's lock held):

- data older than the release: the top-level files of the data directory (the
  databases with their ``-wal`` files, config, heads: what a migration changes)
  are copied to ``DATA_DIR/migration-backup/schema-N/`` first, then each pending
  migration runs in order and the new schema is noted after each one;
- data newer than the release (an update rolled back after the new release had
  migrated): the backup of this release's schema is put back, file by file, and
  the backup dropped; without one the box refuses to start, naming both schemas.
  What the newer release wrote after the backup (during its health check) is
  kept: its audit entries stay where its trail extends the backup's (or, when a
  migration changed the trail's tables, come back as one signed entry carrying
  them), and the calls it recorded are rebuilt by the old release from their
  recordings' sealed headers (the recorder does that, :mod:`firmware.box`);
- ``linekeeper update`` drops the backups once the new release passed its health
  check (:func:`drop_backups`).

Recordings (``recordings/``) are never touched by a migration and are not copied.
A migration that changes another folder backs it up itself. See docs/updates.md.
"""

import contextlib
import importlib
import os
import pkgutil
import re
import shutil
import sqlite3

from firmware.datadir import connect_readonly
from firmware.storage.fsutil import atomic_write, fsync_dir

from ..errors import LinekeeperError

SCHEMA_NAME = "data-schema"
BACKUP_DIR = "migration-backup"
_MODULE = re.compile(r"^m(\d{3})_\w+$")
# Never copied or restored: the lock of the running process, sockets, the backups.
_SKIP = {"lock", BACKUP_DIR}


class MigrationError(LinekeeperError, RuntimeError):
    """The data directory cannot be brought to this release's schema (or back)."""


def migrations(package=__name__):
    """``[(number, module name)]`` of the migrations in ``package``, in order."""
    found = []
    path = importlib.import_module(package).__path__
    for info in pkgutil.iter_modules(path):
        match = _MODULE.match(info.name)
        if match:
            found.append((int(match.group(1)), "%s.%s" % (package, info.name)))
    return sorted(found)


def release_schema(package=__name__):
    """The data schema this release expects: its highest migration's number (0: none)."""
    found = migrations(package)
    return found[-1][0] if found else 0


def data_schema(data_dir):
    """The schema ``data_dir`` notes (0 when it notes none)."""
    try:
        with open(os.path.join(data_dir, SCHEMA_NAME)) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError:
        raise MigrationError("%s is unreadable: cannot tell the data's schema" % SCHEMA_NAME) from None


def _note(data_dir, schema):
    atomic_write(os.path.join(data_dir, SCHEMA_NAME), b"%d\n" % schema, mode=0o600)


# A data directory holding none of these has nothing a migration could change: it is
# made at this release's schema by the release itself.
_DATABASES = ("calls.db", "audit.db", "web.db")


def note_if_fresh(data_dir, package=__name__):
    """Note this release's schema in a new data directory (no databases yet), so that
    no migration runs on data this release makes itself. True when noted.

    :raises OSError: the note cannot be written
    """
    if os.path.exists(os.path.join(data_dir, SCHEMA_NAME)):
        return False
    if any(os.path.exists(os.path.join(data_dir, name)) for name in _DATABASES):
        return False
    os.makedirs(data_dir, exist_ok=True)
    _note(data_dir, release_schema(package))
    return True


def _backup_path(data_dir, schema):
    return os.path.join(data_dir, BACKUP_DIR, "schema-%d" % schema)


def _files(folder):
    """The regular files at the top of ``folder`` (no links, folders or the lock)."""
    names = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name not in _SKIP and os.path.isfile(path) and not os.path.islink(path):
            names.append(name)
    return sorted(names)


def _backup(data_dir, schema):
    """Copy the top-level files to the backup of ``schema`` (whole, or not at all)."""
    target = _backup_path(data_dir, schema)
    if os.path.isdir(target):
        return target  # a migration cut short: the backup from before it is the one to keep
    part = target + ".part"
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(part)
    for name in _files(data_dir):
        shutil.copy2(os.path.join(data_dir, name), os.path.join(part, name))
        with open(os.path.join(part, name), "rb+") as f:
            os.fsync(f.fileno())
    fsync_dir(part)
    os.replace(part, target)
    fsync_dir(os.path.dirname(target))
    return target


# The audit trail's files: kept as the newer release left them when its chain extends
# the backup's (see :func:`_audit_after_rollback`), never put back over it.
AUDIT_FILES = ("audit.db", "audit.db-wal", "audit.db-shm", "audit.head")


def _audit_tip(db_path):
    """``(last seq, its hash, schema)`` of the audit database ``db_path`` (0, None when empty)."""
    if not os.path.isfile(db_path):
        return 0, None, []
    db = connect_readonly(db_path)
    try:
        row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        schema.append(("user_version", db.execute("PRAGMA user_version").fetchone()[0], None))
    except sqlite3.Error:
        return 0, None, []
    finally:
        db.close()
    return (row[0], row[1], schema) if row else (0, None, schema)


def _audit_since(db_path, seq):
    """The audit rows after ``seq`` (each a dict of its stored columns, its signature too)."""
    db = connect_readonly(db_path)
    try:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM audit WHERE seq > ? ORDER BY seq", (seq,))]
        try:
            sigs = dict(db.execute("SELECT seq, sig FROM audit_sig WHERE seq > ?", (seq,)).fetchall())
        except sqlite3.Error:
            sigs = {}
    finally:
        db.close()
    for row in rows:
        row["sig"] = sigs.get(row["seq"])
    return rows


def _audit_after_rollback(data_dir, source):
    """How the audit entries written since the backup survive the restore.

    ``("kept", n)``: the newer release's trail is the backup's with ``n`` entries
    appended, in the same tables: it stays as it is (the chain simply goes on).
    ``("carried", rows)``: a migration changed the trail's tables, so the backup's
    comes back and the rows written since are handed to the caller, to be appended
    as one signed entry. The chain then verifies either way.
    """
    try:
        return _audit_continued(data_dir, source)
    except (sqlite3.Error, LinekeeperError):
        return "restored", []  # a trail that cannot be read is not merged into the backup's


def _audit_continued(data_dir, source):
    current = os.path.join(data_dir, "audit.db")
    saved_seq, saved_hash, saved_schema = _audit_tip(os.path.join(source, "audit.db"))
    seq, _, schema = _audit_tip(current)
    if not os.path.isfile(current) or seq < saved_seq:
        return "restored", []
    db = connect_readonly(current)
    try:
        at = db.execute("SELECT hash FROM audit WHERE seq = ?", (saved_seq,)).fetchone()
    except sqlite3.Error:
        at = None
    finally:
        db.close()
    extends = saved_seq == 0 or (at is not None and at[0] == saved_hash)
    if extends and (schema == saved_schema or saved_seq == 0 and not saved_schema):
        return "kept", seq - saved_seq
    if not extends:
        return "restored", []  # not the backup's chain: never merged into it
    return "carried", _audit_since(current, saved_seq)


def _restore(data_dir, schema):
    """Put the backup of ``schema`` back; returns how the audit trail fared (see
    :func:`_audit_after_rollback`). The schema note comes back last, so a restore cut
    short is done again whole at the next start."""
    source = _backup_path(data_dir, schema)
    saved = set(_files(source))
    audit, since = _audit_after_rollback(data_dir, source)
    keep = set(AUDIT_FILES) if audit == "kept" else set()
    # Files the newer release made (a new database, its -wal) go; the saved ones come back.
    for name in _files(data_dir):
        if name not in saved and name not in keep and name != SCHEMA_NAME:
            os.unlink(os.path.join(data_dir, name))
    for name in sorted(saved - keep, key=lambda n: n == SCHEMA_NAME):
        tmp = os.path.join(data_dir, name + ".restore")
        shutil.copy2(os.path.join(source, name), tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(data_dir, name))
    if SCHEMA_NAME not in saved:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(data_dir, SCHEMA_NAME))
    fsync_dir(data_dir)
    shutil.rmtree(os.path.join(data_dir, BACKUP_DIR))
    fsync_dir(data_dir)
    return audit, since


def bring_up_to_date(data_dir, package=__name__):
    """Migrate ``data_dir`` to this release's schema, or restore the backup of it.

    Call with the data directory's lock held and nothing open. Returns what was
    done, for the audit trail: None, or ``{"event": "migrated"|"restored", "from", "to"}``.

    :raises MigrationError: newer data without a backup, or a migration failed
        (the backup stays; the next start retries from it)
    """
    want = release_schema(package)
    have = data_schema(data_dir)
    if have < want and note_if_fresh(data_dir, package):
        return None  # a new data directory: made at this schema, nothing to migrate
    if have == want:
        return None
    if have > want:
        if not os.path.isdir(_backup_path(data_dir, want)):
            raise MigrationError(
                "the data directory has schema %d, from a newer release; this release "
                "knows schema %d and there is no backup of it to go back to" % (have, want)
            )
        backup_at_us = os.stat(_backup_path(data_dir, want)).st_mtime_ns // 1000
        audit, since = _restore(data_dir, want)
        done = {"event": "restored", "from": have, "to": want, "backup_at_us": backup_at_us, "audit": audit}
        if audit == "kept":
            done["audit_entries_since"] = since
        elif audit == "carried":
            # The caller appends them, signed, as "carried over from the rolled-back release".
            done["carried_over"] = since
        return done
    _backup(data_dir, have)
    for number, module in migrations(package):
        if have < number <= want:
            try:
                importlib.import_module(module).apply(data_dir)
            except Exception as exc:
                raise MigrationError(
                    "data migration %d (%s) failed: %s; the data as it was is in %s"
                    % (number, module.rsplit(".", 1)[-1], exc, _backup_path(data_dir, have))
                ) from exc
            _note(data_dir, number)
    return {"event": "migrated", "from": have, "to": want}


def drop_backups(data_dir):
    """The new release is confirmed: its data stays, the backups go."""
    shutil.rmtree(os.path.join(data_dir, BACKUP_DIR), ignore_errors=True)
