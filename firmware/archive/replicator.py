"""The box's side of the archive: an on-disk queue and the uploader thread that drains it.

What goes up, per call, once it has ended and its recording is sealed:

* ``BOX/recordings/SHA256.lkarc``: the recording file as it is, its clear
  header sealed to the organisation key (:mod:`firmware.archive.sealing`),
  keyed by the SHA-256 of the box's file, so the same recording is never
  stored twice;
* ``BOX/calls/CALL_ID.json``: the call record. In clear only what an index
  needs without the organisation key (times, line, direction, the recording's
  object key and hash, its data key wrapped to the organisation key); the
  whole call record (number, name, tags, consent, pauses) and the call's audit
  trail entries sealed to the organisation key. ``clear_numbers`` also puts
  the number and name in clear.

The queue (``DATA_DIR/archive-queue.db``) survives restarts and outages: a
call is queued when the uploader first sees it ended, multipart progress is
kept part by part, and a failed attempt is retried with exponential backoff
(2 s doubling to 10 min). Each call's status (``queued``, ``archived``,
``failed``, with why) is kept in the call log's database (``archive_status``).

The recorder never waits for the network: it only hands each new
recording's data key to :meth:`Replicator.escrow`, which wraps it to the
organisation key and writes it to the local queue; everything else runs on
the uploader's own thread.

Retention: :meth:`Replicator.forget` queues, for every recording the sweep
destroyed, the deletion of its archived object (every version that is this
recording) and of the call record's versions (which held its wrapped key; those that
are this call's); the call record is then
put again without the recording, and the deletion log gets an ``archive``
entry.

Erasure of a caller's details (:meth:`firmware.calls.calllog.CallLog.erase_details`,
from whichever process): a trigger in the call log notes the call
(``archive_erased``); the uploader then deletes every version of its call record
that is this call's (older versions held the number, in clear with ``clear_numbers``
and sealed) and
puts the erased record, whatever the order in which a recording's deletion job of
the same erasure runs. It then puts ``BOX/erasures/CALL_ID.json`` (the box, the call and
when; nothing of the person), from which the central viewer's index drops the call's
number and name without a rebuild (:func:`firmware.archive.viewer.apply_erasures`).

A deletion deletes only the box's own versions (:meth:`Replicator._delete_own`): those it
put itself (remembered in the queue as the store named them, so one the store holds damaged
too), and those that show they are this call's or recording. A version that is another
call's (a box_id given to a second box), damaged and not put by this box, or not this
recording (evidence kept under its key) is left, logged, and named in the call's status.

What a job did to a call's copies is written to the box's audit trail, once, by the attempt
that did it (``archive_copied``, ``archive_replaced``, ``archive_deleted``, ``archive_left``:
:meth:`Replicator._audited`).
"""

import base64
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time

from firmware.calls.calllog import ERASED, EXPIRED, call_json
from firmware.calls.corrected import corrected_names
from firmware.datadir import site_zone
from firmware.handover import HandoverError, chain_of, read_handovers
from firmware.signing import SigningKeyError, fingerprint, read_public_record
from firmware.storage import crypto
from firmware.storage.audit import open_audit, read_head
from firmware.storage.fieldseal import FieldSealError

from ..alarminbox import ARCHIVE_FAILED, post_note
from ..policy import deletions
from . import sealing
from .queue import (
    ERASED_TRIGGER,
    QUEUE_DB,
    QUEUE_SCHEMA,
    STATUS_SCHEMA,
    Db,
    Upload,
    read_secret,
    reseal_secret,
)
from .store import ArchiveError, Bucket, Throttle, describe, lock_args, make_client

log = logging.getLogger(__name__)

RECORD_FORMAT = 1
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 600.0
HEAD_INTERVAL_S = 300.0


def recording_key(box_id, sha256):
    return "%s/recordings/%s.lkarc" % (box_id, sha256)


def call_key(box_id, call_id):
    return "%s/calls/%010d.json" % (box_id, call_id)


def erasure_key(box_id, call_id):
    """The object that says call ``call_id``'s caller's details were erased (no personal data):
    the central viewer's index drops them when it sees it (:func:`~.viewer.apply_erasures`)."""
    return "%s/erasures/%010d.json" % (box_id, call_id)


def head_key(box_id, seq):
    return "%s/audit-heads/%012d.json" % (box_id, seq)


def signing_key_key(box_id):
    return "%s/signing-key.json" % box_id


def readable(body, fields):
    """``(doc, None)`` when ``body`` (an archived object's bytes) is a JSON object with every
    one of ``fields``; else ``(None, what is wrong)``: it is damaged (cut short, not JSON, not
    what it should be), so it shows neither whose it is nor that it is this box's."""
    try:
        doc = json.loads(body)
    except ValueError as exc:  # a UnicodeDecodeError too
        return None, "not JSON, or cut short: %s" % exc
    if not isinstance(doc, dict):
        return None, "not a JSON object"
    missing = [f for f in fields if doc.get(f) is None]
    if missing:
        return None, "no %s in it" % ", ".join(missing)
    return doc, None


class Replicator:
    """Replicates one box's ended calls to the archive bucket.

    :param data_dir: the box's data directory
    :param settings: an enabled :class:`~firmware.archive.settings.ArchiveSettings`
    :param bucket: a :class:`~firmware.archive.store.Bucket` (None: one is made
        from ``settings`` and ``DATA_DIR/archive.secret`` on first use)
    :param wall_us: ``f() -> int``, the wall clock (µs) for status and deletion times
    :param monotonic: ``f() -> float`` seconds, for the backoff
    :param poll_s: how often the thread looks for newly ended calls
    :param head_interval_s: how often the audit trail's head is sent (when it moved)
    :param audit: the box's audit trail (:class:`~firmware.storage.audit.AuditLog`), where
        each action on a call's archived copies is written (:meth:`_audited`); None: the
        data directory's, opened as this process can (:func:`~firmware.storage.audit.open_audit`)
        when first needed and closed with the replicator
    """

    def __init__(
        self,
        data_dir,
        settings,
        *,
        bucket=None,
        wall_us=None,
        monotonic=time.monotonic,
        poll_s=1.0,
        head_interval_s=HEAD_INTERVAL_S,
        audit=None,
    ):
        self.data_dir = os.fspath(data_dir)
        self._audit = audit
        self._audit_opened = False  # opened here (audit None), so closed here
        self.settings = settings
        self._bucket = bucket
        self._wall_us = wall_us or (lambda: time.time_ns() // 1000)
        self._monotonic = monotonic
        self.poll_s = poll_s
        # The box's field cipher: the archived call record carries the number and name
        # opened (inside the part sealed for the organisation), as users see them.
        self.field_cipher = None
        self.uploads_here = True  # whether :meth:`start` runs the uploads in this process
        self.queue = Db(os.path.join(self.data_dir, QUEUE_DB), QUEUE_SCHEMA)
        self.calls = Db(os.path.join(self.data_dir, "calls.db"), STATUS_SCHEMA)
        deletions.ensure_schema(self.calls.raw())
        self._erasures_watched = False
        self._watch_erasures()
        # A restart retries what failed for good last time (the installer may have fixed it).
        self.queue.execute("UPDATE jobs SET state = 'queued', next_try = 0 WHERE state = 'failed'")
        # next_try is on the monotonic clock of the process that set it: a new one starts afresh.
        self.queue.execute("UPDATE jobs SET next_try = 0 WHERE state = 'queued'")
        self._scan_after = 0  # calls up to this id are all queued (or were)
        # The store as a whole: unreachable, it is tried again after BACKOFF_MIN_S,
        # doubling to BACKOFF_MAX_S (each job's own backoff let a backlog try the
        # next job every poll: the store contacted, and a warning logged, every second).
        self._down_until = 0.0
        self._down_for = 0.0
        self._refusal_noted = False  # an archive_failed alarm left for this run
        self.head_interval_s = head_interval_s
        self._head_due = 0.0
        self._head_sent = None
        self._heads_checked = False  # the latest archived head is of this box's trail
        self._signing_key_sent = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None
        self.stats = {"uploaded_bytes": 0, "objects_put": 0, "objects_skipped": 0, "attempts_failed": 0}

    # ------------------------------------------------------------ the box's hooks
    def escrow(self, recording_id, data_key):
        """Keep ``data_key`` wrapped to the organisation key (local disk only; the recorder calls it)."""
        wrapped = crypto.wrap_data_key(data_key, self.settings.org_key, recording_id.encode())
        self.queue.execute("INSERT OR REPLACE INTO org_keys VALUES (?, ?)", (recording_id, wrapped))

    def forget(self, candidates):
        """Queue the archive deletion of recordings retention destroyed (``sweeper.Candidate`` s)."""
        for c in candidates:
            detail = {
                "recording_id": c.recording_id,
                "sha256": c.sha256,
                "rule": c.rule,
                "line": c.line,
                "direction": c.direction,
                "categories": list(c.categories),
                "started_at": c.started_at,
                "duration_s": c.duration_s,
                "bytes": c.bytes,
            }
            self.queue.execute(
                "INSERT INTO jobs (kind, call_id, detail, state) VALUES ('delete', ?, ?, 'queued')",
                (c.call_id, json.dumps(detail)),
            )
        self._wake.set()

    # ------------------------------------------------------------ the thread
    def start(self):
        """Start the uploads' thread, unless :attr:`uploads_here` is off (the recorder on the
        box, which has no network: the web UI's process uploads, :func:`uploader`)."""
        if not self.uploads_here:
            return
        self._thread = threading.Thread(target=self._run, name="linekeeper-archive", daemon=True)
        self._thread.start()

    def wake(self):
        self._wake.set()

    def close(self, timeout_s=10.0):
        """Stop the thread (an upload in progress stops between parts and resumes next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._thread is None or not self._thread.is_alive():
            self.queue.close()
            self.calls.close()
            if self._audit_opened:
                self._audit.close()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the uploader must outlive any one bad job
                log.exception("archive replication step failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def step(self, ignore_backoff=False):
        """Queue newly ended calls and archived calls that changed since, then run every
        job that is due; returns how many ran."""
        # The client keeps the secret it read once: one read before the storage key was
        # handed over, or while an update was on trial, is sealed with it from a round here.
        reseal_secret(self.data_dir)
        self.enqueue_ended()
        self.enqueue_changed()
        self.enqueue_erased()
        ran = 0
        if not ignore_backoff and self._monotonic() < self._down_until:
            return ran  # the store was down: not before its backoff
        for job_id, kind, call_id, detail in self._due(ignore_backoff):
            if self._stop.is_set():
                break
            reached = self._attempt(job_id, kind, call_id, detail)
            ran += 1
            if not reached:
                # The store is down: every job waits, the whole store backs off.
                self._down_for = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, self._down_for * 2))
                self._down_until = self._monotonic() + self._down_for
                return ran
            self._down_for = 0.0
        self.send_audit_head()
        return ran

    def send_audit_head(self, force=False):
        """Put the audit trail's head (``BOX/audit-heads/SEQ.json``: seq, hash, and its
        signature where the box signs) when it moved since the last one sent and
        ``head_interval_s`` has passed. Kept off the box, a head makes a later rewrite
        of the trail on the box show: ``linekeeper verify --head SEQ:HASH`` (the
        ``archive audit-head`` command prints the latest) no longer finds it.

        Returns the head sent, or None. A store that cannot be reached is retried at the
        next interval (logged), and never holds up the calls' uploads.
        """
        now = self._monotonic()
        if not force and now < self._head_due:
            return None
        self._head_due = now + self.head_interval_s
        head = read_head(os.path.join(self.data_dir, "audit.head"))
        if head is None or head == self._head_sent:
            return None
        with open(os.path.join(self.data_dir, "audit.head"), "rb") as f:
            doc = json.loads(f.read())
        if (doc["seq"], doc["hash"]) != head:
            return None  # it moved while read: the next interval sends it
        doc.update(box=self.settings.box_id, sent_at_us=int(self._wall_us()))
        key = head_key(self.settings.box_id, head[0])
        try:
            if not self._heads_checked:
                self._refuse_another_latest_head()
                self._heads_checked = True
            archived = self.bucket.head(key) is not None
            damage = self._refuse_another_trail(key) if archived else None
            if not archived or damage:
                self._put(key, json.dumps(doc, sort_keys=True).encode())
            if damage:
                log.warning(
                    "archive: the archived audit head %d under box_id %s was damaged (%s): "
                    "this box's head %d:%s replaced it",
                    head[0],
                    self.settings.box_id,
                    damage,
                    head[0],
                    head[1],
                )
        except Exception as exc:  # whatever boto3 raised: the next interval tries again
            self._head_due = now + min(self.head_interval_s, BACKOFF_MIN_S * 8)
            message, permanent = describe(exc)
            if permanent and isinstance(exc, ArchiveError):  # another trail's heads
                log.error("archive: the audit head was not sent: %s", message)
                self._note_refusal("the archive did not take the audit head: %s" % message)
            else:
                log.warning("archive: the audit head was not sent: %s", message)
            return None
        self._head_sent = head
        return head

    def _refuse_another_latest_head(self):
        """:meth:`_refuse_another_trail` for the latest audit head archived under this box_id
        that can be read (a damaged one shows nothing: the one before it is checked)."""
        keys = [k for k in self.bucket.keys("%s/audit-heads/" % self.settings.box_id) if k.endswith(".json")]
        for key in sorted(keys, reverse=True):
            damage = self._refuse_another_trail(key)
            if damage is None:
                return
            log.warning(
                "archive: the archived audit head %s is damaged (%s): the one before is checked", key, damage
            )

    def _refuse_another_trail(self, key):
        """Raise a permanent :class:`ArchiveError` unless the audit head archived at ``key``
        is one of this box's own trail: the entry at its sequence number is on the box, with
        its hash. Returns None, or what is wrong with a damaged head (not JSON, cut short, no
        seq or hash), which is neither refused nor taken as this box's: its own head
        replaces it (:meth:`send_audit_head`), as a damaged call record is (:meth:`_archive_call`).

        Sequence numbers are the trail's own: a new card (the old one died) or a box set up
        again, given the box_id of the one before, numbers its trail from 1 again. Its head
        at a number the old card's heads used would be skipped, the others added among them,
        and ``archive audit-head`` would print the new card's head for the old card's trail.
        """
        theirs, damage = readable(self.bucket.get(key), ("seq", "hash"))
        if damage:
            return damage
        seq, digest = theirs["seq"], theirs["hash"]
        path = os.path.join(self.data_dir, "audit.db")
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
        try:
            row = db.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        finally:
            db.close()
        if row is not None and row[0] == digest:
            return None
        raise ArchiveError(
            "the archive holds audit head %s:%s under box_id %s, and this box's audit trail %s. "
            "That is another trail (another card, or another box, given this box_id): nothing "
            "was put, so the archived heads still check the trail they came from: give this box "
            "a box_id of its own (archive.box_id in config.json, docs/archive.md) and restart it"
            % (
                seq,
                digest,
                self.settings.box_id,
                "has no entry %s" % seq if row is None else "has another entry at %s" % seq,
            ),
            permanent=True,
        )

    def _note_refusal(self, message):
        """Leave the ``archive_failed`` alarm, once a run (the recorder raises it:
        docs/reports.md)."""
        if self._refusal_noted:
            return
        self._refusal_noted = True
        post_note(
            self.data_dir,
            ARCHIVE_FAILED,
            "%s. Put the archive settings right (docs/archive.md); what failed is tried again "
            "when the box starts" % message,
            self._wall_us(),
        )

    def pending(self):
        """How many jobs are still queued."""
        return self.queue.query("SELECT count(*) FROM jobs WHERE state = 'queued'")[0][0]

    # ------------------------------------------------------------ the queue
    def enqueue_ended(self):
        """Queue every ended call whose recordings are all sealed and that is not queued yet.

        Only calls after the oldest one still open at the last look are read,
        so a box with a long history is not rescanned every second.
        """
        rows = self.calls.query(
            "SELECT id, ended_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recordings r WHERE "
            "r.call_id = calls.id AND r.state = 'recording') FROM calls WHERE id > ? ORDER BY id",
            (self._scan_after,),
        )
        known = {
            r[0]
            for r in self.queue.query(
                "SELECT call_id FROM jobs WHERE kind = 'call' AND call_id > ?", (self._scan_after,)
            )
        }
        new = [call_id for call_id, ended in rows if ended and call_id not in known]
        for call_id in new:
            self.queue.execute(
                "INSERT OR IGNORE INTO jobs (kind, call_id, state) VALUES ('call', ?, 'queued')", (call_id,)
            )
            self._status(call_id, "queued", None)
        still_open = [call_id for call_id, ended in rows if not ended]
        if still_open:
            self._scan_after = still_open[0] - 1
        elif rows:
            self._scan_after = rows[-1][0]
        return len(new)

    def enqueue_changed(self):
        """Queue again every archived call whose tags or legal hold changed since (the
        call-log triggers list them in ``archive_changed``): its record goes up again as
        a new version. A call not archived yet needs nothing: its upload is still to come."""
        changed = [r[0] for r in self.calls.query("SELECT call_id FROM archive_changed")]
        for call_id in changed:
            n = self.queue.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, next_try = 0, error = NULL"
                " WHERE kind = 'call' AND call_id = ? AND state = 'done'",
                (call_id,),
            )
            if n:
                self._status(call_id, "queued", "changed: the record goes up again")
            self.calls.execute("DELETE FROM archive_changed WHERE call_id = ?", (call_id,))
        return len(changed)

    def _watch_erasures(self):
        """Put the call log's erasure trigger in place, once its ``calls`` table exists."""
        if self._erasures_watched:
            return
        with self.calls.lock:
            db = self.calls.raw()
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'").fetchone():
                db.executescript(ERASED_TRIGGER)
                self._erasures_watched = True

    def enqueue_erased(self):
        """Queue, for every call whose caller's details were erased since (the call-log
        trigger lists them in ``archive_erased``), the deletion of every version of its
        archived record that is this call's and the put of the erased one (:meth:`_delete`, ``details``).
        Queued whether or not the call was archived yet: an upload that ran before the
        erasure, or a recording's deletion job that put the record again before it, left
        the number in a version."""
        self._watch_erasures()
        erased = [r[0] for r in self.calls.query("SELECT call_id FROM archive_erased")]
        for call_id in erased:
            self.queue.execute(
                "INSERT INTO jobs (kind, call_id, detail, state) VALUES ('delete', ?, ?, 'queued')",
                (call_id, json.dumps({"details": True})),
            )
            self._status(call_id, "queued", "the caller's details were erased: the record goes up again")
            self.calls.execute("DELETE FROM archive_erased WHERE call_id = ?", (call_id,))
        if erased:
            self._wake.set()
        return len(erased)

    def _due(self, ignore_backoff):
        now = self._monotonic()
        return self.queue.query(
            "SELECT id, kind, call_id, detail FROM jobs WHERE state = 'queued' AND (? OR next_try <= ?)"
            " ORDER BY kind = 'delete', id",
            (int(ignore_backoff), now),
        )

    def _attempt(self, job_id, kind, call_id, detail):
        """Run one job; returns False when the store could not be reached (else True)."""
        try:
            if kind == "call":
                self._status(call_id, "archived", self._archive_call(call_id))
            else:
                self._delete(call_id, json.loads(detail), job_id)
        except Exception as exc:
            message, permanent = describe(exc)
            self.stats["attempts_failed"] += 1
            attempts = self.queue.query("SELECT attempts FROM jobs WHERE id = ?", (job_id,))[0][0] + 1
            delay_s = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** (attempts - 1))
            if getattr(exc, "retry_after_s", None):
                delay_s = max(delay_s, exc.retry_after_s)  # an Object Lock: not before it ends
            self.queue.execute(
                "UPDATE jobs SET attempts = ?, next_try = ?, error = ?, state = ? WHERE id = ?",
                (attempts, self._monotonic() + delay_s, message, "failed" if permanent else "queued", job_id),
            )
            if kind == "call":
                self._status(
                    call_id,
                    "failed" if permanent else "queued",
                    message if permanent else "retrying: " + message,
                )
            log.warning("archive %s of call %d: %s", kind, call_id, message)
            if permanent:
                # The calls list says which calls failed.
                self._note_refusal("the archive did not take call %d: %s" % (call_id, message))
            return not message.startswith("cannot reach")
        self.queue.execute("UPDATE jobs SET state = 'done', error = NULL WHERE id = ?", (job_id,))
        return True

    def _status(self, call_id, status, reason):
        self.calls.execute(
            "INSERT OR REPLACE INTO archive_status VALUES (?, ?, ?, ?)",
            (call_id, status, reason, self._wall_us()),
        )

    # ------------------------------------------------------------ uploading
    @property
    def bucket(self):
        if self._bucket is None:
            s = self.settings
            client = make_client(
                s.endpoint, s.region, s.access_key_id, read_secret(self.data_dir), s.verify_tls
            )
            self._bucket = Bucket(client, s.bucket, Throttle(s.bandwidth_kbps))
        return self._bucket

    def _archive_call(self, call_id):
        """Put call ``call_id``'s recordings and record; returns None, or the note for its
        archive status when its record replaced a damaged one."""
        self._send_signing_key()  # first: nothing goes up under another box's key
        recordings = self._recordings(call_id)
        key = call_key(self.settings.box_id, call_id)
        body, content = self.call_record(call_id, recordings, with_content_hash=True)
        head = self.bucket.head(key)
        # The record is sealed afresh each time; what it says is compared by its content hash.
        same = (
            head is not None
            and head.get("Metadata", {}).get("content-sha256") == content
            and not self._damaged(key, head)  # a put of its own that reached the store cut short
        )
        damage = None
        if head is not None and not same:
            damage = self._refuse_another_call(key, call_id, body)  # before anything of the call goes up
        put = [
            recording_key(self.settings.box_id, r["sha256"]) for r in recordings if self._upload_recording(r)
        ]
        if same:
            self.stats["objects_skipped"] += 1
        else:
            self._put(key, body, {"content-sha256": content}, own=True)
            put.append(key)
        if not damage:
            if put:
                self._audited("archive_copied", call_id, {"put": put})
            return None
        log.warning(
            "archive: the archived record of call %d under box_id %s was damaged (%s): this box's "
            "record replaced it (the damaged one stays an older version)",
            call_id,
            self.settings.box_id,
            damage,
        )
        self._audited("archive_replaced", call_id, {"put": put, "damaged": damage})
        return "a damaged copy in the archive (%s) was replaced" % damage

    def _audited(self, action, call_id, details):
        """Write ``action`` on call ``call_id``'s archived copies to the box's audit trail
        (actor ``system``, target ``call:N``, the call page's): once for what a job did, when
        it did it (an attempt that fails writes nothing; the one that succeeds writes it)."""
        if self._audit is None:
            self._audit = open_audit(self.data_dir)
            self._audit_opened = True
        details = dict(details, box_id=self.settings.box_id)
        self._audit.append("system", action, "call:%d" % call_id, details, int(self._wall_us()))

    def _refuse_another_call(self, key, call_id, body):
        """Raise a permanent :class:`ArchiveError` when the record at ``key`` is of another
        call than ``body``'s (started at another time or on another line). Returns None, or
        what is wrong with a damaged record (not JSON, cut short, no line or start): that
        shows no other call, and this box's record replaces it.

        Call ids are the card's own: a new card (the old one died) or a box set up again,
        given the box_id of the one before (its configuration imported), numbers its calls
        from 1 again, and its call 1 would replace, or its retention delete, every version
        of the old card's call 1 — by then the only copy of it."""
        theirs, damage = readable(self.bucket.get(key), ("line", "started_at"))
        if damage:
            return damage
        ours = json.loads(body)
        if _same_call(theirs, ours):
            return None
        raise ArchiveError(
            "the archive already holds another call %d under box_id %s, readable and not this "
            "one (line %s, started %s; this one: line %s, started %s): another card's or box's. "
            "This card numbers its calls afresh (a new card, or "
            "a box set up again, given the box_id of the one before). Nothing of it was put or "
            "deleted, so the archived call stays as it was: give this box a box_id of its own "
            "(archive.box_id in config.json, docs/archive.md) and restart it"
            % (
                call_id,
                self.settings.box_id,
                theirs["line"],
                theirs["started_at"],
                ours["line"],
                ours["started_at"],
            ),
            permanent=True,
        )

    def _refuse_unless_ours(self, key, call_id):
        """:meth:`_refuse_another_call` for a deletion: the record at ``key``, if any, must be
        this call's before any version of it is deleted (a damaged one shows no other call:
        the deletion goes ahead, and leaves it, :meth:`_other_record`)."""
        if self.bucket.head(key) is None:
            return
        self._refuse_another_call(key, call_id, self.call_record(call_id, self._recordings(call_id)))

    def _wrote(self, key):
        """``written(version id, ETag, intact)`` for :meth:`Bucket.put`: remembers (the
        queue's ``written``) that this box put that version of ``key``. Told as soon as the
        store answers, so a version the store holds damaged (its ETag not the upload's: the
        put is retried) is remembered too: nothing in it shows whose it is, this does; nor
        is it taken for sent (:meth:`_damaged`)."""

        def written(version_id, etag, intact):
            self.queue.execute(
                "INSERT OR REPLACE INTO written VALUES (?, ?, ?, ?)",
                (key, version_id or "null", etag, int(intact)),
            )

        return written

    def _damaged(self, key, head):
        """Whether the version of ``key`` that ``head`` (its metadata) describes is one this
        box put and the store holds otherwise than sent (:meth:`_wrote`): its metadata says
        what the box meant to send, its bytes are not that."""
        rows = self.queue.query(
            "SELECT etag, intact FROM written WHERE key = ? AND version_id = ?",
            (key, head.get("VersionId") or "null"),
        )
        return bool(rows) and rows[0][0] == head.get("ETag", "").strip('"') and not rows[0][1]

    def _delete_own(self, key, judge):
        """Delete the versions of ``key`` that are this box's, and its delete markers:
        those it put itself (:meth:`_wrote`: the version id and ETag the store gave it),
        whatever they hold, and those ``judge(version_id) -> None | why`` finds are
        (:meth:`_other_record`, :meth:`_other_recording`: put before the box remembered its
        versions). Returns ``(how many went, [(key, version id, why it was left), ...])``."""
        mine = dict(self.queue.query("SELECT version_id, etag FROM written WHERE key = ?", (key,)))

        def ours(version_id, etag):
            if mine.get(version_id or "null") == etag:
                return None
            return judge(version_id)

        gone, kept = self.bucket.delete_versions(key, ours)
        # Every version the box put went (a locked one raised): none is left to remember.
        self.queue.execute("DELETE FROM written WHERE key = ?", (key,))
        return gone, [(key, version_id, why) for version_id, why in kept]

    def _other_record(self, key, call_id):
        """``f(version_id) -> None | why`` for :meth:`_delete_own`: None when that
        version of ``key`` is a record of call ``call_id`` (its line and start, as
        :meth:`_refuse_another_call` compares them), else what it is. Older versions are not
        what the current one is: a box_id reused, a damaged record replaced, put them there."""
        ours = json.loads(self.call_record(call_id, self._recordings(call_id)))

        def why(version_id):
            theirs, damage = readable(self.bucket.get(key, version_id), ("line", "started_at"))
            if damage:
                return "damaged (%s), so not shown to be this call's" % damage
            if _same_call(theirs, ours):
                return None
            return "another call (line %s, started %s)" % (theirs["line"], theirs["started_at"])

        return why

    def _other_recording(self, key, sha256):
        """``f(version_id) -> None | why`` for :meth:`_delete_own`: None when that
        version of ``key`` is the recording with hash ``sha256``: its ``sha256`` metadata (as
        :meth:`_upload_recording` puts it) says so, or its bytes are those of a version that
        does (the same ETag: a copy of it is the recording too). Else what it is."""
        listed = self.bucket.versions(key)
        said = {v: (self.bucket.head(key, v) or {}).get("Metadata", {}).get("sha256") for v, _ in listed}
        etags = dict(listed)
        ours = {etag for v, etag in listed if said[v] == sha256}

        def why(version_id):
            if said.get(version_id) == sha256 or etags.get(version_id) in ours:
                return None
            if said.get(version_id):
                return "not this recording (its sha256 is %s)" % said[version_id]
            return "not this box's recording (no sha256, and not a copy of it)"

        return why

    def _deleted_over_attempts(self, job_id, detail, gone):
        """How many versions deletion job ``job_id`` has deleted over its attempts, ``gone``
        by this one (kept in its ``detail``: a retry after the store failed part way deletes
        only the rest, and its audit entry counts them all)."""
        detail["deleted"] = detail.get("deleted", 0) + gone
        self._save_detail(job_id, detail)
        return detail["deleted"]

    def _save_detail(self, job_id, detail):
        """Keep deletion job ``job_id``'s ``detail`` for its next attempt (None: no job)."""
        if job_id is not None:
            self.queue.execute("UPDATE jobs SET detail = ? WHERE id = ?", (json.dumps(detail), job_id))

    def _audited_deletion(self, call_id, details, keys, deleted, left, job_id=None, detail=None):
        """Audit a deletion job's work on call ``call_id``'s archived copies: the versions of
        ``keys`` it deleted (``archive_deleted``), and those it left, not the box's own
        (``archive_left``, with what each is: :meth:`_left`). Once for the job: that it was
        is kept in its ``detail``, so an attempt that fails after it (the deletion log or the
        call's status refused: calls.db locked by the other process) is retried without a
        second entry (the retry deletes only the record it put again itself)."""
        if detail is not None and detail.get("audited"):
            return
        self._audited("archive_deleted", call_id, dict(details, keys=keys, versions_deleted=deleted))
        if left:
            self._audited("archive_left", call_id, dict(details, left=_named(left)))
        if detail is not None:
            detail["audited"] = True
            self._save_detail(job_id, detail)

    def _left(self, call_id, left):
        """Log each version a deletion of call ``call_id`` left (``(key, version id, why)``),
        and return the note for the call's archive status (None: none was left)."""
        for key, version_id, why in left:
            log.warning(
                "archive: call %d: version %s of %s under box_id %s was left in the archive, not "
                "deleted: %s. Only this box's own versions are deleted: see to it centrally",
                call_id,
                version_id or "(unversioned)",
                key,
                self.settings.box_id,
                why,
            )
        if not left:
            return None
        return "%d archived version(s) not this call's left in the archive, not deleted: %s" % (
            len(left),
            "; ".join(_named(left)),
        )

    def _send_signing_key(self):
        """Put the box's public signing key (``BOX/signing-key.json``) once per process, so a
        central export carries the key the recordings' seals verify with, and the handover
        statements by which it took over from a replaced HAT's key (``handovers``, only when
        there are any), so an export of a recording the old key sealed checks too. A box
        without a key yet (its recorder never ran) sends none; the next call tries again.

        :raises ArchiveError: (permanent) the archive holds another key under this box_id that
            this box's key did not take over (another card or box given the same box_id):
            it is left as it is, and the call is not put
        """
        if self._signing_key_sent:
            return
        try:
            record = read_public_record(self.data_dir)
            keys = chain_of(record["public_key"], read_handovers(self.data_dir))[0] if record else None
        except (SigningKeyError, HandoverError) as exc:
            log.warning("archive: the box's public signing key was not sent: %s", exc)
            return
        if record is None or keys is None:
            return
        doc = {
            "box": self.settings.box_id,
            "public_key": base64.b64encode(record["public_key"]).decode("ascii"),
            "fingerprint": fingerprint(record["public_key"]),
            "source": record["source"],
        }
        if keys.statements:
            doc["handovers"] = keys.statements
        body = json.dumps(doc, sort_keys=True).encode()
        key = signing_key_key(self.settings.box_id)
        if self.bucket.head(key) is None:
            self._put(key, body)
        else:
            archived = self.bucket.get(key)
            if archived != body:
                self._refuse_another_key(archived, keys)
                self._put(key, body)
        self._signing_key_sent = True

    def _refuse_another_key(self, archived, keys):
        """Raise unless the key in ``archived`` (the archive's ``signing-key.json``) is this
        box's or one it took over (``keys``: :class:`~firmware.handover.TrustedKeys`)."""
        doc, damage = readable(archived, ("public_key",))
        if doc is not None:
            try:
                theirs = base64.b64decode(doc["public_key"], validate=True)
            except (ValueError, TypeError) as exc:
                damage = "its public_key is not base64: %s" % exc
        if damage:
            # Damaged, it shows no other key: this box's own replaces it (the damaged one
            # stays an older version).
            log.warning(
                "archive: the archived %s was damaged (%s): this box's public key %s replaced it",
                signing_key_key(self.settings.box_id),
                damage,
                fingerprint(keys.current),
            )
            return
        if theirs == keys.current or any(theirs == old["key"] for old in keys.handed_over):
            return
        raise ArchiveError(
            "the archive holds the signing key %s under box_id %s, and this box's key %s did not "
            "take over from it (no handover: that is another card, or another box, given this "
            "box_id). Nothing was put, so the calls archived under it still check: give this box "
            "a box_id of its own (archive.box_id in config.json, docs/archive.md) and restart it"
            % (fingerprint(theirs), self.settings.box_id, fingerprint(keys.current)),
            permanent=True,
        )

    def _recordings(self, call_id):
        # The signature column is there once the box's recordings store has run (every box
        # that records); the box's seal of each recording goes into the call record.
        columns = {r[1] for r in self.calls.query("PRAGMA table_info(recordings)")}
        signature = "signature" if "signature" in columns else "NULL"
        names = ("id", "state", "duration_s", "bytes", "sha256", "profile", "signature")
        rows = self.calls.query(
            "SELECT id, state, duration_s, bytes, sha256, profile, %s FROM recordings WHERE "
            "call_id = ? AND state IN ('complete', 'partial') ORDER BY started_at" % signature,
            (call_id,),
        )
        return [dict(zip(names, r, strict=False)) for r in rows]

    def _lock(self):
        return lock_args(self.settings.lock_days)

    def _put(self, key, body, metadata=None, own=False):
        """Put ``body`` at ``key``; with ``own`` (a call record), the version the store made is
        remembered as this box's (:meth:`_wrote`)."""
        self.bucket.put(key, body, metadata, lock=self._lock(), written=self._wrote(key) if own else None)
        self.stats["objects_put"] += 1
        self.stats["uploaded_bytes"] += len(body)

    def _upload_recording(self, rec):
        """Upload one recording unless the bucket already holds it (same hash); returns
        whether it was put."""
        key = recording_key(self.settings.box_id, rec["sha256"])
        head = self.bucket.head(key)
        if (
            head is not None
            and head.get("Metadata", {}).get("sha256") == rec["sha256"]
            and not self._damaged(key, head)
        ):
            self.stats["objects_skipped"] += 1
            return False
        path = os.path.join(self.data_dir, "recordings", rec["id"] + ".lkrec")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != rec["sha256"]:
            raise ArchiveError(
                "recording %s does not match its hash in the call log (changed "
                "on the card?): not archived; run `linekeeper verify`" % rec["id"],
                permanent=True,
            )
        prefix, header_bytes, upload_id = self._prefix(rec["id"], path)
        size = len(prefix) + rec["bytes"] - header_bytes
        part = self.settings.part_size_mb << 20
        meta = {"sha256": rec["sha256"], "recording-id": rec["id"]}

        def read(offset, n):
            """Bytes [offset, offset+n) of the archived form: prefix, then the file's body."""
            out = prefix[offset : offset + n]
            if len(out) < n:
                with open(path, "rb") as f:
                    f.seek(header_bytes + max(0, offset - len(prefix)))
                    out += f.read(n - len(out))
            return out

        if size <= part:
            body = read(0, size)
            self.bucket.put(key, body, meta, lock=self._lock(), written=self._wrote(key))
        else:
            n_parts = -(-size // part)
            self.bucket.upload_multipart(
                key,
                lambda i: read((i - 1) * part, part),
                n_parts,
                Upload(self.queue, rec["id"], upload_id),
                meta,
                stop=self._stop,
                lock=self._lock(),
                written=self._wrote(key),
            )
        self.stats["objects_put"] += 1
        self.stats["uploaded_bytes"] += size
        self.queue.execute("DELETE FROM parts WHERE recording_id = ?", (rec["id"],))
        self.queue.execute("DELETE FROM uploads WHERE recording_id = ?", (rec["id"],))
        return True

    def _prefix(self, recording_id, path):
        """The sealed-header prefix of a recording's archived form, made once and kept, so
        a resumed multipart upload sends the same bytes."""
        row = self.queue.query(
            "SELECT prefix, header_bytes, upload_id FROM uploads WHERE recording_id = ?", (recording_id,)
        )
        if row:
            return row[0]
        prefix, header_bytes = sealing.archive_prefix(path, recording_id, self.settings.org_key)
        self.queue.execute("INSERT INTO uploads VALUES (?, ?, ?, NULL)", (recording_id, prefix, header_bytes))
        return prefix, header_bytes, None

    def call_record(self, call_id, recordings, with_content_hash=False):
        """The call record object's bytes (JSON; the call itself and its audit entries sealed);
        with ``with_content_hash``, ``(bytes, SHA-256 of what it says before sealing)``."""
        cur = self.calls.raw()
        with self.calls.lock:
            c = cur.execute(
                "SELECT calls.*, (SELECT group_concat(tag, ',') FROM call_tags WHERE "
                "call_id = calls.id) AS tags FROM calls WHERE id = ?",
                (call_id,),
            )
            names = [d[0] for d in c.description]
            row = dict(zip(names, c.fetchone(), strict=False))
        call = call_json(row, self.field_cipher)
        # The name corrected on request (UK GDPR Art. 16), as the box's pages show it and
        # ``linekeeper calls --json`` gives it: beside ``name``, what the caller-ID sent.
        # None once the caller's details are erased, or removed by retention: the call log
        # empties them first, web.db the corrected names after, and a record read between the
        # two carried the name (in clear with clear_numbers), where the erasure is put once.
        erased = call.get("absence") in (ERASED, EXPIRED)
        call["corrected_name"] = None if erased else self._corrected_name(call_id)
        org_keys = (
            dict(
                self.queue.query(
                    "SELECT recording_id, wrapped FROM org_keys WHERE recording_id IN (%s)"
                    % ",".join("?" * len(recordings)),
                    [r["id"] for r in recordings],
                )
            )
            if recordings
            else {}
        )
        recs = [
            {
                "id": r["id"],
                "key": recording_key(self.settings.box_id, r["sha256"]),
                "sha256": r["sha256"],
                "bytes": r["bytes"],
                "state": r["state"],
                "duration_s": r["duration_s"],
                "profile": r["profile"],
                "org_wrapped_key": (
                    base64.b64encode(org_keys[r["id"]]).decode() if r["id"] in org_keys else None
                ),
                # The box's Ed25519 seal of the recording (firmware/evidence.py): a central
                # export carries it, so an auditor checks the file with the box's key alone.
                "signature": bytes(r["signature"]).hex() if r.get("signature") else None,
            }
            for r in recordings
        ]
        private = {"call": call, "audit": self._audit_entries(call_id, recordings)}
        context = ("%s/%d" % (self.settings.box_id, call_id)).encode()
        plain = json.dumps(private, sort_keys=True).encode()
        sealed = sealing.seal(plain, self.settings.org_key, context)
        doc = {
            "format": RECORD_FORMAT,
            "box": self.settings.box_id,
            "call_id": call_id,
            "line": call["line"],
            "direction": call["direction"],
            "started_at": call["started_at"],
            "ended_at": call["ended_at"],
            "answered": call["answered"],
            "duration_s": call["duration_s"],
            # The times to the µs, as the box's reports count them (the ISO times are to the ms).
            "started_us": row["started_at"],
            "answered_us": row["answered_at"],
            "ended_us": row["ended_at"],
            "end_reason": call["end_reason"],
            # PCI DSS: digits keyed after a card number were not kept (never which, nor how many).
            "digits_withheld": call["digits_withheld"],
            "recordings_deleted": self._deleted_count(call_id),
            "legal_hold": self._held(call_id),
            "recordings": recs,
            "sealed": base64.b64encode(sealed).decode(),
            # The zone the box's own pages date in: the central viewer shows the call's
            # times in it, as this site's people read them (docs/archive-viewer.md).
            "time_zone": site_zone(self.data_dir),
        }
        if self.settings.clear_numbers:
            doc.update(number=call["number"], name=call["corrected_name"] or call["name"])
        body = json.dumps(doc, sort_keys=True).encode()
        if not with_content_hash:
            return body
        doc["sealed"] = hashlib.sha256(plain).hexdigest()
        return body, hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _corrected_name(self, call_id):
        """The name call ``call_id`` was corrected to on the box (web.db, the newest), or
        None: none, or erased since. One that does not open is left out (logged): the
        record then holds what the caller-ID sent, as before corrections reached it."""
        try:
            return corrected_names(self.data_dir, [call_id], self.field_cipher).get(call_id)
        except (FieldSealError, sqlite3.Error) as exc:
            log.warning("archive: call %d's corrected name not read: %s", call_id, exc)
            return None

    def _held(self, call_id):
        return bool(self.calls.query("SELECT 1 FROM legal_holds WHERE call_id = ?", (call_id,)))

    def _deleted_count(self, call_id):
        """How many of the call's recordings retention has destroyed (they still count as
        recorded in a report)."""
        rows = self.calls.query(
            "SELECT count(*) FROM recordings WHERE call_id = ? AND state = 'deleted'", (call_id,)
        )
        return rows[0][0]

    def _audit_entries(self, call_id, recordings):
        """The call's entries in the audit trail: named ``call:N`` (the recorder, the command
        line, the uploader) or by the bare id ``N`` (the web UI: call_viewed, playback,
        export, legal_hold, call_note, correct_details), as the call's page reads them; and
        its recordings' own, named ``recording:ID`` (created, sealed, recovered, deleted) or,
        for a file quarantined, ``recordings/ID.lkrec``."""
        targets = ["call:%d" % call_id, str(call_id)]
        for r in recordings:
            targets += ["recording:%s" % r["id"], "recordings/%s.lkrec" % r["id"]]
        path = os.path.join(self.data_dir, "audit.db")
        if not os.path.exists(path):
            return []
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
        try:
            rows = db.execute(
                "SELECT seq, wall_us, actor, action, target, details, hash FROM audit"
                " WHERE target IN (%s) ORDER BY seq" % ",".join("?" * len(targets)),
                targets,
            ).fetchall()
        finally:
            db.close()
        return [
            dict(zip(("seq", "wall_us", "actor", "action", "target", "details", "hash"), r, strict=False))
            for r in rows
        ]

    # ------------------------------------------------------------ retention
    def _delete(self, call_id, detail, job_id=None):
        """Delete a destroyed recording's archived object and call-record versions (the box's
        own: :meth:`_delete_own`); log it.
        ``detail["details"]``: the caller's details were erased, only the call record's
        versions go (and the erased record is put)."""
        if detail.get("details"):
            self._erase_record(call_id, detail, job_id)
            return
        box = self.settings.box_id
        key = call_key(box, call_id)
        self._refuse_unless_ours(key, call_id)
        gone, left = 0, []
        if detail.get("sha256"):
            rec_key = recording_key(box, detail["sha256"])
            gone, left = self._delete_own(rec_key, self._other_recording(rec_key, detail["sha256"]))
        n, kept = self._delete_own(key, self._other_record(key, call_id))
        gone, left = gone + n, left + kept
        deleted = self._deleted_over_attempts(job_id, detail, gone)
        # The call stays in the box's log: its record goes up again without the recording.
        self._put(key, self.call_record(call_id, self._recordings(call_id)), own=True)
        note = self._left(call_id, left)
        if note:
            self._status(call_id, "archived", note)
        self.queue.execute("DELETE FROM org_keys WHERE recording_id = ?", (detail["recording_id"],))
        keys = [recording_key(box, detail["sha256"])] if detail.get("sha256") else []
        self._audited_deletion(
            call_id,
            {"trigger": "retention", "recording_id": detail["recording_id"]},
            keys + [key],
            deleted,
            left,
            job_id,
            detail,
        )
        db = self.calls.raw()
        with self.calls.lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                deletions.append(
                    db,
                    {
                        "deleted_at": self._wall_us(),
                        "reason": "archive",
                        "rule": detail["rule"],
                        "recording_id": detail["recording_id"],
                        "call_id": call_id,
                        "line": detail["line"],
                        "direction": detail["direction"],
                        "categories": detail["categories"],
                        "call_date": _date(detail["started_at"]),
                        "duration_s": detail["duration_s"],
                        "bytes": detail["bytes"],
                        "file_sha256": detail["sha256"],
                    },
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        log.info(
            "archive: recording %s of call %d deleted (%d object versions)",
            detail["recording_id"],
            call_id,
            gone,
        )

    def _erase_record(self, call_id, detail, job_id=None):
        """Replace every version of call ``call_id``'s record (the box's own, :meth:`_delete_own`:
        another box's, or a damaged one the box did not put, is left and logged) with the
        erased one."""
        key = call_key(self.settings.box_id, call_id)
        self._refuse_unless_ours(key, call_id)
        gone, kept = self._delete_own(key, self._other_record(key, call_id))
        deleted = self._deleted_over_attempts(job_id, detail, gone)
        body, content = self.call_record(call_id, self._recordings(call_id), with_content_hash=True)
        self._put(key, body, {"content-sha256": content}, own=True)
        # Then the note of it, which tells the central viewer's index (rebuilt or not) to drop
        # the details it holds: the box, the call and when, nothing of the person.
        note = {
            "format": 1,
            "box": self.settings.box_id,
            "call_id": call_id,
            "erased_us": int(self._wall_us()),
        }
        self._put(erasure_key(self.settings.box_id, call_id), json.dumps(note).encode())
        self._audited_deletion(call_id, {"trigger": "erasure"}, [key], deleted, kept, job_id, detail)
        self._status(call_id, "archived", self._left(call_id, kept))
        log.info(
            "archive: call %d's record put again without the caller's details (%d versions deleted)",
            call_id,
            gone,
        )


def _named(left):
    """Versions a deletion left (``(key, version id, why)``), each in words."""
    return ["%s %s: %s" % (key, version_id or "(unversioned)", why) for key, version_id, why in left]


def _same_call(theirs, ours):
    """Whether the readable call record ``theirs`` is of the same call as this box's ``ours``:
    on the same line, started at the same time (to the µs where it says)."""
    field = "started_us" if theirs.get("started_us") is not None else "started_at"
    return theirs.get(field) == ours[field] and theirs["line"] == ours["line"]


def _date(wall_us):
    import datetime

    return datetime.datetime.fromtimestamp(wall_us / 1e6, datetime.UTC).strftime("%Y-%m-%d")


def uploader(data_dir, wall_us, field_cipher, audit):
    """A :class:`Replicator` for a process beside the recorder that has the network (the
    web UI's): it uploads what the recorder queues (the recorder hands its data keys and
    destroyed recordings to its own, through the same queue on disk), and writes what it
    did to ``audit``, the process's audit trail. None when the archive is off, or its
    queue cannot be opened (logged)."""
    from firmware.config import load_config

    settings = load_config(data_dir).archive
    if not settings.enabled:
        return None
    try:
        replicator = Replicator(data_dir, settings, wall_us=lambda: int(wall_us()), audit=audit)
    except (sqlite3.Error, OSError) as exc:
        log.error("the archive queue in %s cannot be opened (%s): nothing is uploaded", data_dir, exc)
        return None
    replicator.field_cipher = field_cipher
    return replicator


def attach(box):
    """Wire a :class:`Replicator` into ``box`` when its configuration enables the archive.

    Returns the replicator (or None). The recorder hands it each data key, the
    retention sweeper each destroyed recording; the box starts and closes it.
    """
    settings = box.config.archive
    if not settings.enabled:
        return None
    clock = box.clock
    try:
        replicator = Replicator(box.data_dir, settings, wall_us=lambda: int(clock.wall_us()), audit=box.audit)
    except (sqlite3.Error, OSError) as exc:
        # Recording comes first: a box whose archive queue cannot be opened still records.
        log.error(
            "the archive queue in %s cannot be opened (%s): nothing is replicated until it can",
            box.data_dir,
            exc,
        )
        return None
    box.recorder.on_data_key = replicator.escrow
    replicator.field_cipher = getattr(box, "cipher", None)
    box.retention.on_destroyed.append(replicator.forget)
    return replicator
