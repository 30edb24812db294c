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
  migration runs in order and the new schema is noted after each one; a start that
  finds a migration cut short (its note, the data not at its schema) puts that backup
  back and runs them all again, so a migration need not be idempotent;
- data newer than the release (an update rolled back after the new release had
  migrated): the backup of this release's schema is put back, file by file, and
  the backup dropped; without one the box refuses to start, naming both schemas.
  What the newer release wrote after the backup (during its health check) is
  kept: its audit entries stay where its trail extends the backup's (or, when a
  migration changed the trail's tables, come back as one signed entry carrying
  them), and the calls it recorded are rebuilt by the old release from their
  recordings' sealed headers (the recorder does that, :mod:`firmware.box`).
  What the rollback will do is decided once, on the untouched data, and noted in
  ``DATA_DIR/rollback.json`` before anything changes; until the recorder has
  audited the rollback and called :func:`finish_rollback`, every start carries on
  from that note, so a power cut at any step either changed nothing or is
  finished by the next start;
- ``linekeeper update`` drops the backups once the new release passed its health
  check (:func:`drop_backups`).

Recordings (``recordings/``) are never touched by a migration and are not copied.
A migration that changes another folder backs it up itself. See docs/updates.md.
"""

import contextlib
import importlib
import json
import logging
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
# The backups' folder as it is being dropped (:func:`drop_backups`).
DROPPED_DIR = BACKUP_DIR + ".dropped"
# A rollback begun and not yet finished: what it does, decided before it changed anything.
ROLLBACK_NAME = "rollback.json"
# A migration the audit trail has not taken yet: written before the first step, gone
# once audited (:func:`finish_migration`), so a start cut between the migration and its
# entry still audits it.
MIGRATION_NOTE = "migration.json"
log = logging.getLogger(__name__)
_MODULE = re.compile(r"^m(\d{3})_\w+$")
# Never copied or restored: the lock of the running process, sockets, the backups, the
# rollback's own note.
_SKIP = {"lock", BACKUP_DIR, ROLLBACK_NAME}


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
AUDIT_FILES = ("audit.db", "audit.db-wal", "audit.db-shm", "audit.head", "audit.head.prev")


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


def _restore(data_dir, schema, audit, keep=()):
    """Put the backup of ``schema`` back, the audit files too unless ``audit`` is
    ``"kept"`` (see :func:`_audit_after_rollback`); files named in ``keep`` stay as
    they are. Each file is replaced whole and the
    schema note comes back last, so a restore cut short is done again whole at the
    next start (with the same ``audit``: :func:`_roll_back`)."""
    source = _backup_path(data_dir, schema)
    saved = set(_files(source))
    keep = set(keep) | (set(AUDIT_FILES) if audit == "kept" else set())
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


def pending_rollback(data_dir):
    """The rollback begun on ``data_dir`` and not finished yet (the dict
    :func:`bring_up_to_date` returned for it), or None.

    :raises MigrationError: its note is unreadable
    """
    try:
        with open(os.path.join(data_dir, ROLLBACK_NAME)) as f:
            done = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MigrationError(
            "%s is unreadable (%s): cannot finish the rollback it notes" % (ROLLBACK_NAME, exc)
        ) from None
    if not isinstance(done, dict) or done.get("event") != "restored" or not isinstance(done.get("to"), int):
        raise MigrationError("%s is not a rollback's note: cannot finish the rollback" % ROLLBACK_NAME)
    return done


def _note_rollback(data_dir, done):
    atomic_write(os.path.join(data_dir, ROLLBACK_NAME), json.dumps(done, sort_keys=True).encode(), mode=0o600)


def note_rebuilding(data_dir, recording_ids):
    """Note in the pending rollback the recordings whose calls are about to be rebuilt
    (with those a cut-short start noted), so that a later start still names them all.

    :raises OSError: the note cannot be written
    """
    done = pending_rollback(data_dir)
    done["rebuilding"] = sorted(set(done.get("rebuilding", ())) | set(recording_ids))
    _note_rollback(data_dir, done)


def finish_rollback(data_dir):
    """The rollback is audited: its note goes (the next start has nothing to carry on)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(data_dir, ROLLBACK_NAME))
        fsync_dir(data_dir)


def _plan_rollback(data_dir, have, want):
    """What a rollback from ``have`` to ``want`` will do, read from the untouched data."""
    source = _backup_path(data_dir, want)
    backup_at_us = os.stat(source).st_mtime_ns // 1000
    audit, since = _audit_after_rollback(data_dir, source)
    done = {"event": "restored", "from": have, "to": want, "backup_at_us": backup_at_us, "audit": audit}
    if audit == "kept":
        done["audit_entries_since"] = since
    elif audit == "carried":
        # The caller appends them, signed, as "carried over from the rolled-back release".
        done["carried_over"] = since
    return done


def _roll_back(data_dir, have, want):
    """Put the backup of ``want`` back, or carry on with the rollback a cut left
    pending; returns the rollback's dict (see :func:`bring_up_to_date`).

    Steps, each safe to cut: the plan noted (before it: nothing changed); the files
    restored (the schema note last); the backups dropped. Until the caller's
    :func:`finish_rollback` every start returns the same plan.
    """
    done = pending_rollback(data_dir)
    if done is not None and done["to"] != want:
        raise MigrationError(
            "%s notes a rollback to schema %d, unfinished; this release knows schema %d: start the "
            "release of schema %d to finish it" % (ROLLBACK_NAME, done["to"], want, done["to"])
        )
    backups = os.path.join(data_dir, BACKUP_DIR)
    source = _backup_path(data_dir, want)
    if done is None:
        if not os.path.isdir(source):
            raise MigrationError(
                "the data directory has schema %d, from a newer release; this release "
                "knows schema %d and there is no backup of it to go back to" % (have, want)
            )
        done = _plan_rollback(data_dir, have, want)
        _note_rollback(data_dir, done)  # decided on the untouched data, before anything changes
    if have != want:
        if have < want or not os.path.isdir(source):
            raise MigrationError(
                "%s notes a rollback to schema %d but the data has schema %d and %s"
                % (ROLLBACK_NAME, want, have, "a backup" if os.path.isdir(source) else "no backup")
            )
        _restore(data_dir, want, done["audit"])  # again whole, as planned, after a cut
    if os.path.isdir(backups):
        shutil.rmtree(backups)
        fsync_dir(data_dir)
    return done


def bring_up_to_date(data_dir, package=__name__):
    """Migrate ``data_dir`` to this release's schema, or restore the backup of it.

    Call with the data directory's lock held and nothing open. Returns what was
    done, for the audit trail: None, or ``{"event": "migrated"|"restored", "from", "to"}``.
    A rollback stays pending (every start returns it again, ``rebuilding`` added
    once :func:`note_rebuilding` noted it) until the caller, having audited it,
    calls :func:`finish_rollback`.

    :raises MigrationError: newer data without a backup, or a migration failed
        (the backup stays; the next start retries from it), or an unreadable
        rollback note
    """
    _remove_dropped(data_dir)  # (what a drop cut short left)
    want = release_schema(package)
    have = data_schema(data_dir)
    if have < want and note_if_fresh(data_dir, package):
        return None  # a new data directory: made at this schema, nothing to migrate
    if have > want or pending_rollback(data_dir) is not None:
        return _roll_back(data_dir, have, want)
    if have == want:
        return _unaudited_migration(data_dir, want)
    have = _undo_cut_migration(data_dir, have, want)
    _backup(data_dir, have)
    done = {"event": "migrated", "from": have, "to": want}
    atomic_write(os.path.join(data_dir, MIGRATION_NOTE), json.dumps(done).encode(), mode=0o600)
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
    return done


def _migration_began(data_dir, schema):
    """The schema that the migration to ``schema`` noted in :data:`MIGRATION_NOTE`
    began from, or None: no note, one cut while it was written (no migration had
    begun), or another migration's."""
    try:
        with open(os.path.join(data_dir, MIGRATION_NOTE), "rb") as f:
            note = json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return None
    began = note.get("from") if isinstance(note, dict) and note.get("to") == schema else None
    return began if isinstance(began, int) and not isinstance(began, bool) else None


def _undo_cut_migration(data_dir, have, want):
    """The schema to migrate from: ``have``, or, where a migration to ``want`` was cut
    short (its note is there, the data not yet at ``want``), the schema it began from,
    its backup put back first. A migration is not required to be idempotent: a cut
    after it changed the data but before its schema was noted must not run it again
    over its own work (a column added twice, say), so the data goes back to the
    backup and every migration runs again from there. The note stays until the
    restore is whole: a cut during it restores again at the next start."""
    began = _migration_began(data_dir, want)
    if began is None or not 0 <= began <= have or not os.path.isdir(_backup_path(data_dir, began)):
        return have
    _restore(data_dir, began, "restored", keep=(MIGRATION_NOTE,))
    return began


def _unaudited_migration(data_dir, schema):
    """The migration to ``schema`` whose audit entry a cut start did not write, or None."""
    began = _migration_began(data_dir, schema)
    if began is None:
        finish_migration(data_dir)  # (another migration's note, or one cut while written)
        return None
    return {"event": "migrated", "from": began, "to": schema}


def finish_migration(data_dir):
    """The migration is audited: its note goes."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(data_dir, MIGRATION_NOTE))
        fsync_dir(data_dir)


def backup_kept(data_dir, below):
    """Whether ``data_dir`` keeps a backup of a schema below ``below``: an update that
    migrated past that schema is not confirmed yet, and a rollback may still put the
    older release (and its data) back."""
    try:
        names = os.listdir(os.path.join(data_dir, BACKUP_DIR))
    except FileNotFoundError:
        return False
    found = (re.fullmatch(r"schema-(\d+)", name) for name in names)
    return any(int(m.group(1)) < below for m in found if m)


def backups_kept(data_dir):
    """The names of the backups ``data_dir`` keeps (``schema-N``), oldest first."""
    try:
        names = os.listdir(os.path.join(data_dir, BACKUP_DIR))
    except FileNotFoundError:
        return []
    return sorted((n for n in names if re.fullmatch(r"schema-\d+", n)), key=lambda n: int(n[7:]))


def drop_backups(data_dir):
    """The new release is confirmed: its data stays, the backups go.

    Their folder is renamed away first, in one step a cut cannot split, and only then
    removed: a drop cut part way through must not leave part of a backup, which the box
    would take for an update not confirmed yet (and a rollback would put back, removing
    every file the part lacks). What a cut leaves of the renamed folder goes at the next
    drop or start (:func:`_remove_dropped`). A card that refuses leaves the backups as
    they were (logged): the update is then not confirmed."""
    backups = os.path.join(data_dir, BACKUP_DIR)
    if os.path.isdir(backups):
        _remove_dropped(data_dir)
        try:
            os.replace(backups, os.path.join(data_dir, DROPPED_DIR))
            fsync_dir(data_dir)
        except OSError as exc:
            log.warning("cannot drop the migration backups in %s: %s", data_dir, exc)
            return
    _remove_dropped(data_dir)


def _remove_dropped(data_dir):
    dropped = os.path.join(data_dir, DROPPED_DIR)
    if os.path.isdir(dropped):
        shutil.rmtree(dropped, ignore_errors=True)
