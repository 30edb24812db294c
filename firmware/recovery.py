"""Start-up checks that protect the recordings, and ``linekeeper repair``.

Before a box opens its data directory for writing, :func:`preflight` looks
at what is there without changing anything. It refuses to start
(:class:`~firmware.errors.RecoveryRefused`, exit 2 on the command line) when
starting would put recordings at risk:

- recordings are present but the call log (``calls.db``) is missing, empty
  or damaged (not a database, or failing SQLite's quick check);
- sealed recordings are present that the call log does not know: it lost
  its latest writes (a deleted or damaged ``calls.db-wal``) — files are
  created after their row is committed (unless the card refused the row and
  the box stopped before it took it: docs/call-log-faults.md), and a
  recording that was deleted is named in the deletion log;
- recordings are present but the key store (``keys/keystore.json``) is
  missing: new keys would never open them.

:func:`repair` rebuilds what it can of the call log from the recordings' own
sealed headers (see :func:`firmware.recording.recorder.sealed_header`): every call and
recording row missing from the log, with the recording's wrapped key. A
damaged ``calls.db`` is moved aside (never deleted) first. Files it cannot
rebuild are quarantined and reported. docs/recovery.md is the procedure.
"""

import base64
import binascii
import datetime
import hashlib
import logging
import os
import sqlite3

from firmware import datadir
from firmware.recording.store import (
    CALL_COPY_SUFFIX,
    KEY_COPY_SUFFIX,
    QUARANTINE,
    RECORDING_SUFFIX,
    deleted_ids,
    read_call_copy,
    read_header,
)
from firmware.storage import fsutil

from .errors import RecoveryRefused
from .recording.segment import inspect

CALLS_DB = "calls.db"

log = logging.getLogger(__name__)


def recording_files(data_dir):
    """Names of the recording files in ``DATA_DIR/recordings`` (sorted)."""
    try:
        names = os.listdir(os.path.join(data_dir, "recordings"))
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(RECORDING_SUFFIX))


def _repair_hint(data_dir):
    return (
        "the box does not start, so nothing is touched: run `linekeeper repair --data-dir "
        "%s` to rebuild the call log from the recordings (docs/recovery.md)" % data_dir
    )


def preflight(data_dir, rebuilding=False):
    """Refuse to start on ``data_dir`` when that would put recordings at risk.

    ``rebuilding``: a rollback is pending (:func:`firmware.migrations.pending_rollback`),
    so recordings the call log lacks are expected: they get their rows back from their
    headers (:func:`rebuild_unknown_recordings`) rather than refusing.

    Reads only. :raises RecoveryRefused: the message says what is wrong and what to do
    """
    data_dir = os.fspath(data_dir)
    files = recording_files(data_dir)
    db_path = os.path.join(data_dir, CALLS_DB)
    rows = set()
    if not os.path.exists(db_path):
        if files:
            raise RecoveryRefused(
                "the call log %s is missing but %d recording(s) are in %s: %s"
                % (db_path, len(files), os.path.join(data_dir, "recordings"), _repair_hint(data_dir))
            )
    else:
        problem, rows, shredded = _read_log(db_path)
        if (problem or "").startswith("empty") and not files and not _journal_holds_records(data_dir):
            # A power cut while the box first made it (before SQLite wrote a page):
            # nothing at risk, no recording to rebuild it from. The box makes it again.
            log.warning("the call log %s is empty and no recording is here: it is made again", db_path)
            problem = None
        if problem is not None:
            raise RecoveryRefused(
                "the call log %s is %s%s: %s"
                % (
                    db_path,
                    problem,
                    " and %d recording(s) are present" % len(files) if files else "",
                    _repair_hint(data_dir),
                )
            )
        lost = [
            n
            for n in files
            if not rebuilding
            and n[: -len(RECORDING_SUFFIX)] not in rows | shredded
            and read_header(os.path.join(data_dir, "recordings", n)) is not None
        ]
        if lost:
            raise RecoveryRefused(
                "%d recording(s) are not in the call log %s (it lost its latest writes: a "
                "missing or damaged calls.db-wal?), e.g. %s: %s"
                % (len(lost), db_path, lost[0], _repair_hint(data_dir))
            )
    keystore = os.path.join(data_dir, "keys", "keystore.json")
    if not os.path.exists(keystore) and (files or rows):
        raise RecoveryRefused(
            "the key store %s is missing but %d recording(s) are here: restore it from your "
            "backup before starting (`linekeeper keystore restore`, docs/keys.md; new keys from "
            "`linekeeper init` could never open them)" % (keystore, max(len(files), len(rows)))
        )


def _journal_holds_records(data_dir):
    """Whether the recording journal holds records (recordings a replay could make)."""
    from firmware.recording import journal

    try:
        return bool(journal.read_records(journal.journal_path(data_dir)))
    except OSError:
        return True  # unreadable: assume it does


def _read_log(db_path):
    """``(problem or None, recording ids, deleted ids)`` of the call log at ``db_path``."""
    if os.path.getsize(db_path) == 0:
        return "empty", set(), set()
    try:
        db = datadir.connect_readonly(db_path)
    except Exception as exc:  # StorageError: not a database, unreadable
        return "unreadable (%s)" % exc, set(), set()
    try:
        check = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        if check != ["ok"]:
            return "damaged (%s)" % "; ".join(check[:3]), set(), set()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "calls" not in tables or "recordings" not in tables:
            return "empty (no calls table)", set(), set()
        rows = {r[0] for r in db.execute("SELECT id FROM recordings")}
        return None, rows, deleted_ids(db)
    except sqlite3.Error as exc:
        return "damaged (%s)" % datadir.storage_error(exc, "reading it failed"), set(), set()
    finally:
        db.close()


# ------------------------------------------------------------------ repair
def repair(data_dir, clock, audit=None, progress=None, wall_us=None, recording_key=None):
    """Rebuild the call log's missing rows from the recordings' sealed headers.

    Keeps a usable ``calls.db`` and adds what it lacks; moves a damaged or
    empty one aside (with its ``-wal`` and ``-shm``) as
    ``calls.db.damaged-<UTC time>``. Every ``.lkrec`` file in ``recordings/``
    and ``quarantine/`` whose header is intact and carries its wrapped key,
    and that the log does not know, gets its call row (if missing) and its
    recording row back; quarantined ones move back to ``recordings/``. Files
    that cannot be rebuilt are left in (or moved to) the quarantine folder.
    Call the caller with the data directory locked.

    :param clock: only for the wall time of the audit entry and of the name a damaged call
        log is kept as (``wall_us``, µs since the epoch, wins)
    :param audit: an :class:`~firmware.storage.audit.AuditLog` for a ``repair`` entry
    :param progress: ``f(done, total, name)`` after each file
    :param recording_key: an unlocked :class:`~firmware.storage.keystore.RecordingKey`:
        each rebuilt recording is then authenticated, and its state and
        duration are the exact ones (without it, counted in whole chunks)
    :returns: dict ``rebuilt`` [(file, call id)], ``known`` (count already in
        the log), ``failed`` [(file, reason)], ``moved_aside`` (path or None),
        ``unknown`` [(file, [call fields its header could not say, left unknown])]
        (:func:`unknown_fields`; what no header carries is :data:`NOT_IN_HEADERS`)
    """
    from firmware.calls.calllog import CallLog
    from firmware.recording.store import RecordingStore

    data_dir = os.fspath(data_dir)
    db_path = os.path.join(data_dir, CALLS_DB)
    moved = None
    if os.path.exists(db_path):
        problem = _read_log(db_path)[0]
        if problem is not None and not problem.startswith("empty (no calls"):
            # Named by the time the repair is audited at: a simulated box's clock on its data.
            moved = _move_aside(db_path, wall_us if wall_us is not None else clock.wall_at(clock.now_us()))
    calllog = CallLog(db_path, clock)  # creates or migrates every table
    from .signing import device_signer

    # Rebuilt rows are signed as they are rebuilt (a repair is audited; see docs/evidence.md).
    store = RecordingStore(data_dir, signer=device_signer(data_dir))
    report = {"rebuilt": [], "known": 0, "failed": [], "moved_aside": moved, "unknown": []}
    read = [0, None]  # files read, of how many
    try:
        known = store.known_ids()
        candidates = [("recordings", n) for n in recording_files(data_dir)]
        # A key copy (ID.lkkey) goes with its recording's file, not on its own.
        candidates += [
            (QUARANTINE, n)
            for n in store.quarantined()
            if not n.endswith(KEY_COPY_SUFFIX) and not n.endswith(CALL_COPY_SUFFIX)
        ]
        for done, (folder, name) in enumerate(candidates, 1):
            path = os.path.join(data_dir, folder, name)
            rid = name[: -len(RECORDING_SUFFIX)] if name.endswith(RECORDING_SUFFIX) else None
            if rid is not None and rid in known:
                if folder == "recordings":
                    report["known"] += 1
                else:
                    report["failed"].append(
                        (name, "quarantined, and its recording id is already in the call log (a copy?)")
                    )
            else:
                reason = _rebuild(store, path, rid)
                if reason is None:
                    if folder == QUARANTINE:
                        _move(path, store.path_of(rid))
                        for beside, home in (
                            (rid + KEY_COPY_SUFFIX, store.key_copy_path(rid)),
                            (rid + CALL_COPY_SUFFIX, store.call_copy_path(rid)),
                        ):
                            beside = os.path.join(os.path.dirname(path), beside)
                            if os.path.exists(beside) and not os.path.exists(home):
                                _move(beside, home)
                    if recording_key is not None:
                        problem = _authenticate(store, rid, recording_key)
                        if problem is not None:
                            report["failed"].append((name, problem))
                    store.sign(rid)
                    header = read_header(store.path_of(rid))
                    report["rebuilt"].append((name, header["call_id"]))
                    missing = unknown_fields(header)
                    if missing:
                        report["unknown"].append((name, missing))
                    known.add(rid)
                else:
                    if folder == "recordings":
                        store.quarantine(name)
                        for copy in (KEY_COPY_SUFFIX, CALL_COPY_SUFFIX) if rid is not None else ():
                            if os.path.exists(os.path.join(store.dir, rid + copy)):
                                store.quarantine(rid + copy)  # kept beside it, for a later repair
                    report["failed"].append((name, reason))
            read[:] = done, len(candidates)
            if progress is not None:
                progress(done, len(candidates), name)
        # Anything else in the recordings folder is not a recording.
        for name in store.unmatched():
            store.quarantine(name)
            report["failed"].append((name, "not a recording file (quarantined)"))
    except BaseException as exc:
        # Stopped (Ctrl-C) or failed part way: what was rebuilt, moved aside or
        # quarantined so far is in the call log and on the card, so it is audited too.
        if audit is not None:
            why = "stopped" if isinstance(exc, KeyboardInterrupt) else str(exc) or type(exc).__name__
            try:
                _audit_repair(audit, clock, wall_us, report, cut_short=why, read=read)
            except (OSError, sqlite3.Error) as failed:  # a full card: the first error is the one said
                log.error("the repair cut short could not be audited: %s", failed)
        raise
    finally:
        store.close()
        calllog.close()
    if audit is not None:
        _audit_repair(audit, clock, wall_us, report)
    return report


def _audit_repair(audit, clock, wall_us, report, cut_short=None, read=None):
    """The ``repair`` entry of :func:`repair`'s ``report``; ``cut_short``: why it stopped
    part way (``"stopped"``: interrupted), with ``read`` ``[files read, of how many]``."""
    moved = report["moved_aside"]
    details = {
        "rebuilt": len(report["rebuilt"]),
        "already_known": report["known"],
        "not_rebuilt": [name for name, _ in report["failed"]][:100],
        "fields_unknown": [name for name, _ in report["unknown"]][:100],
        "moved_aside": os.path.basename(moved) if moved else None,
    }
    if cut_short is not None:
        details["cut_short"] = cut_short
        details["files_read"] = "%d/%s" % (read[0], "?" if read[1] is None else read[1])
    when_us = wall_us if wall_us is not None else clock.wall_at(clock.now_us())
    audit.append("cli", "repair", "calls.db", details, when_us)


def rebuild_unknown_recordings(store, data_dir, begun=(), before=None):
    """Give the call log back the recordings in ``recordings/`` it does not know.

    After a rollback restored the call log of before an update, the calls the
    newer release recorded meanwhile are files the log lost: each gets its call
    and recording rows back from its sealed header (as :func:`repair` does) and is
    signed with ``store``'s signer. Run before :meth:`RecordingStore.recover`,
    which would otherwise quarantine them.

    Resumable: ``before`` (when given) is called with the ids about to be rebuilt
    before any is; ``begun`` are the ids a run cut short was given, so those it
    rebuilt are signed again (the cut may have come before their signature) and
    still counted as rebuilt.

    :returns: ``(rebuilt recording ids, [(file, why not)])``
    """
    known = store.known_ids()
    unknown = [name for name in recording_files(data_dir) if name[: -len(RECORDING_SUFFIX)] not in known]
    if before is not None and unknown:
        before([name[: -len(RECORDING_SUFFIX)] for name in unknown])
    rebuilt, failed = [], []
    for rid in sorted(begun):
        if rid in known and store.get(rid) is not None:
            store.sign(rid)
            rebuilt.append(rid)
    for name in unknown:
        rid = name[: -len(RECORDING_SUFFIX)]
        reason = _rebuild(store, store.path_of(rid), rid)
        if reason is None:
            store.sign(rid)
            rebuilt.append(rid)
        else:
            failed.append((name, reason))  # recover() quarantines it and says so
    return rebuilt, failed


class _NoKeyCopy(Exception):
    """A recording with no wrapped key in its header and no key copy file."""


def _wrapped_key_copy(store, header, rid, path):
    """The recording's wrapped data key: in its header (recordings made before `rekey`
    existed), else in its key copy file ``ID.lkkey``, in recordings/ or beside the file
    ``path`` (in quarantine/, where the recovery sweep moves both).

    :raises _NoKeyCopy: it has neither"""
    if "wrapped_key" in header:
        return base64.b64decode(header["wrapped_key"], validate=True)
    name = rid + KEY_COPY_SUFFIX
    for copy in (store.key_copy_path(rid), os.path.join(os.path.dirname(path), name)):
        try:
            with open(copy, "rb") as f:
                return f.read()
        except FileNotFoundError:
            continue
    raise _NoKeyCopy(
        "its key copy %s is missing (neither in recordings/ nor beside it): its data key is "
        "lost, and it cannot be rebuilt" % name
    )


def _rebuild(store, path, rid):
    """Add the rows of the recording file ``path``; returns None, or why it cannot be."""
    header = read_header(path)
    if header is None:
        return "no readable header (not a recording, or damaged at its start)"
    if rid is None or header.get("recording_id") != rid:
        return "its name does not match the recording id in its header"
    try:
        wrapped = _wrapped_key_copy(store, header, rid, path)
    except _NoKeyCopy as exc:
        return str(exc)
    except (TypeError, ValueError, binascii.Error) as exc:
        return "its header is malformed (%s)" % exc
    try:
        header = _with_call_copy(store, header, rid, path)
    except ValueError as exc:
        return str(exc)
    try:
        call_id, line = int(header["call_id"]), int(header["line"])
        created_us, chunk_ms = int(header["created_us"]), int(header["chunk_ms"])
        profile = str(header["profile"])
    except KeyError as exc:
        return (
            "its header has no %s (recorded by an older version, before headers "
            "carried it): cannot be rebuilt" % exc
        )
    except (TypeError, ValueError, binascii.Error) as exc:
        return "its header is malformed (%s)" % exc
    try:
        info = inspect(path)
    except Exception as exc:
        return "damaged beyond its last chunk (%s)" % exc
    data_chunks = info["chunks"] - (1 if info["closed"] else 0)
    # A recording on the journal's shared grid has a shorter first chunk (docs/FORMAT.md).
    first_ms = int(header.get("first_chunk_ms") or chunk_ms)
    duration_s = (first_ms + (data_chunks - 1) * chunk_ms) / 1000.0 if data_chunks else 0.0
    state = "complete" if info["closed"] else "partial"
    size, digest = _digest(path)
    direction = header.get("direction") if header.get("direction") in ("in", "out") else "in"
    started = header.get("call_started_us") or created_us
    ended = created_us + int(duration_s * 1e6)
    with store.transaction() as db:
        have = db.execute("SELECT line FROM calls WHERE id = ?", (call_id,)).fetchone()
        if have is not None and have[0] != line:
            return "the call log's call %d is on line %d, the recording's on line %d" % (
                call_id,
                have[0],
                line,
            )
        if have is None:
            _insert_call(db, header, call_id, line, direction, started, ended)
        db.execute(
            "INSERT INTO recordings (id, call_id, file, wrapped_key, profile, state,"
            " started_at, duration_s, bytes, sha256, chunk_ms) VALUES (?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?)",
            (
                rid,
                call_id,
                rid + RECORDING_SUFFIX,
                wrapped,
                profile,
                state,
                created_us,
                duration_s,
                size,
                digest,
                chunk_ms,
            ),
        )
    return None


# What a rebuilt call row cannot hold, as no recording's header carries it: left
# empty (unknown), never guessed. ``end_reason`` says ``repaired`` and ``ended_at`` is
# the end of the audio instead.
NOT_IN_HEADERS = (
    "end_reason",
    "cid_standard",
    "cid_datetime",
    "dial_method",
    "extension",
    "policy_decision",
    "consent",
    "pause_spans",
    "key_times",
)


# :data:`NOT_IN_HEADERS` as repair says them to a technician, in the call page's words.
NOT_IN_HEADERS_WORDS = (
    "how the call ended (it says repaired, and ends at the end of its audio), how the caller ID "
    "came and the time it sent, how the number was dialled, the extension, the recording "
    "rules' decision, the consent notice, pauses and keys pressed"
)


def unknown_fields(header):
    """The call fields ``header`` could carry but does not (an older recording's):
    ``absence`` (why no number came) before headers carried it. Left unknown."""
    return [] if "absence" in header or header.get("number") is not None else ["absence"]


def _with_call_copy(store, header, rid, path):
    """``header`` with what the recording's call copy says (``ID.lkcall``, in recordings/
    or beside ``path``): the number as the call log held it once recording ended, where
    the header has the digits dialled as recording began. Recordings without one (made
    before call copies existed, or whose header had the number already) keep the header's.

    :raises ValueError: a call copy that cannot be used (the message says why)"""
    for copy in (store.call_copy_path(rid), os.path.join(os.path.dirname(path), rid + CALL_COPY_SUFFIX)):
        fields = read_call_copy(copy, header)
        if fields is not None:
            return dict(header, **fields)
    return header


def _insert_call(db, header, call_id, line, direction, started, ended):
    """The call row a recording's sealed header tells of (``end_reason`` ``repaired``)."""
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, answered_at, ended_at,"
        " clock_synced, number, name, absence, digits_withheld, end_reason) VALUES (?, ?, ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, 'repaired')",
        (
            call_id,
            line,
            direction,
            started,
            header.get("answered_us"),
            ended,
            int(bool(header.get("clock_synced"))),
            header.get("number"),
            header.get("name"),
            header.get("absence"),
            int(bool(header.get("digits_withheld"))),
        ),
    )


def restore_missing_calls(store):
    """Put back the calls whose recordings the log has but whose own rows it never took.

    The card refused a call's row (I/O error, full) and the box stopped before
    it took it again: the call's recording row and sealed header still name
    the call id the box gave it. Each such call is rebuilt from the header,
    as :func:`repair` does (``end_reason`` ``repaired``, ended at the end of
    its audio). A recording whose header does not name its row's call (or has
    none) is left for ``verify`` to report.

    :returns: ``[(call id, recording id)]`` of the calls put back
    """
    restored = []
    try:
        orphans = store.rows_without_call()
    except sqlite3.Error:
        return restored  # no call log here (tests, tools)
    for row in orphans:
        rid, call_id = row["id"], row["call_id"]
        header = read_header(store.path_of(rid))
        if (
            header is None
            or header.get("call_id") != call_id
            or header.get("recording_id") != rid
            or not isinstance(header.get("line"), int)
        ):
            continue  # left for verify to report
        try:
            header = _with_call_copy(store, header, rid, store.path_of(rid))
        except ValueError as exc:
            log.error("recording %s: %s; its call is rebuilt with its header's number", rid, exc)
        direction = header.get("direction") if header.get("direction") in ("in", "out") else "in"
        started = header.get("call_started_us") or row["started_at"]
        ended = row["started_at"] + int(round((row["duration_s"] or 0) * 1e6))
        with store.transaction() as db:
            if db.execute("SELECT 1 FROM calls WHERE id = ?", (call_id,)).fetchone() is not None:
                continue  # a second recording of a call already put back
            _insert_call(db, header, call_id, header["line"], direction, started, ended)
        restored.append((call_id, rid))
    return restored


def _authenticate(store, rid, recording_key):
    """Set a rebuilt recording's exact state and duration from its audio; None, or a problem."""
    from .errors import TamperError
    from .recording import codec

    row = store.get(rid)
    try:
        data, complete = store.open_audio(rid, recording_key)
    except TamperError as exc:
        return "rebuilt, but it fails authentication (%s): verify reports it" % exc
    samples, rate = codec.decode_with_rate(data, row["profile"]) if data else ((), 1)
    store.set_measured(rid, "complete" if complete else "partial", len(samples) / rate)
    return None


def _digest(path):
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def _move(src, dest):
    os.rename(src, dest)
    fsutil.fsync_dir(os.path.dirname(dest))
    fsutil.fsync_dir(os.path.dirname(src))


def _move_aside(db_path, wall_us):
    """Rename a damaged ``calls.db`` (and its WAL files) out of the way, named by the UTC time
    ``wall_us`` (µs since the epoch); returns the new name."""
    stamp = datetime.datetime.fromtimestamp(wall_us / 1e6, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = "%s.damaged-%s" % (db_path, stamp)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.rename(db_path + suffix, dest + suffix)
    fsutil.fsync_dir(os.path.dirname(db_path))
    return dest
