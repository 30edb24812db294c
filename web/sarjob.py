"""Subject access bundles made in the background, kept sealed until downloaded.

A bundle of hours of recordings takes minutes to make and is hundreds of MB:
made in the request, the page waited with no word and the web UI (384 MiB)
held it all. Here a :class:`SarJob` makes it in a thread of its own
(:func:`firmware.sar.release`, streamed), the page follows its progress
(``/sar/bundle/<token>.json``) and offers the download when it is logged.

Between the two the bundle waits on the card, in ``DATA_DIR/sar-bundles``,
only sealed (:class:`SealedSpool`: ChaCha20-Poly1305 in 64 KiB chunks under a
key made for it and held in this process's memory alone): its calls' audio
and details are never on the card in clear, and the file is unreadable once
the process ends, which is why the directory is emptied at start. It is deleted
once downloaded, or when it has waited :data:`KEEP_S` or the web UI stops (the
release is then audited as failed: "not downloaded"), or when making it failed.
One a crash or power cut left is named by its disclosure log entry
(:data:`LOGGED`, before that entry is committed), and audited so at the next
start before it is deleted (one whose entry never committed logged nothing,
and is deleted). So is one whose release failed after it was logged, or that
waited its time out (or the web UI stopped), and the audit trail refused to say
so (a full card), at the next sweep (or start): a bundle is deleted only once
its release is audited as not made. While the disclosure log cannot be read (a
damaged ``disclosures.db``) such a bundle is kept, and the problem logged, until
a later sweep can: the web UI still starts.
"""

import errno
import logging
import os
import secrets
import sqlite3
import struct
import threading
import time

from firmware.errors import LinekeeperError, TamperError
from firmware.sar import DisclosureLog
from firmware.storage import crypto, fsutil

DIR = "sar-bundles"
CHUNK_BYTES = 64 * 1024
KEEP_S = 30 * 60  # a bundle not downloaded within half an hour is deleted
RUNNING, DONE, FAILED = "running", "done", "failed"
# A bundle whose release is logged is named "<token>.disclosure-<entry id>".
LOGGED = ".disclosure-"
LEFT = "not downloaded: the web UI stopped unexpectedly (a crash or power cut): deleted"

log = logging.getLogger("linekeeper.web")


def _remove(path):
    """Delete a file of the bundles' folder that accounts for nothing; a failure is logged."""
    try:
        os.unlink(path)
    except OSError as exc:
        log.warning("cannot remove %s from the subject access bundles' folder: %s", path, exc)


class SealedSpool:
    """A bundle written to ``path`` sealed with a one-time key (:mod:`firmware.sarbundle`'s
    spool: ``write``, ``commit``, ``discard``), read back with :meth:`chunks`.

    Each chunk is ``length (4 bytes) +`` a chunk of the recordings' own STREAM sealing
    (:class:`firmware.storage.crypto.StreamSealer`: the chunk's number and the last one
    marked in its nonce): a file cut short, or chunks moved, does not open.
    """

    def __init__(self, path):
        self.path = path
        self._key = crypto.new_data_key()
        self._sealer = crypto.StreamSealer(self._key)
        self._buf = bytearray()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        self.entry_id = None  # the disclosure log entry it is named by (:meth:`logged`)
        self._sealed = False

    def _seal(self, data, last):
        sealed = self._sealer.seal(data, final=last)
        self._file.write(struct.pack(">I", len(sealed)) + sealed)

    def write(self, data):
        self._buf += data
        while len(self._buf) > CHUNK_BYTES:
            self._seal(self._buf[:CHUNK_BYTES], False)
            del self._buf[:CHUNK_BYTES]
        self.size += len(data)
        return len(data)

    def ready(self):
        """Seal the last chunk and close the file: the bundle is whole on the card before its
        release is logged (a full card refuses it now, and nothing is logged).

        :raises OSError: the card refused
        """
        if not self._sealed:
            self._seal(self._buf, True)
            self._buf = bytearray()
            self._file.close()
            self._sealed = True

    def logged(self, entry_id):
        """The release is being logged as disclosure ``entry_id``, in its transaction, before
        it is committed (:meth:`firmware.sar.DisclosureLog.add`): the file is renamed to say so
        (:data:`LOGGED`), durably, so that a start after a crash or power cut knows which
        release it held (:class:`SarJobs`: audited as not released; deleted when its entry
        never committed).

        :raises OSError: the card refused (nothing is logged)
        """
        named = "%s%s%d" % (self.path, LOGGED, entry_id)
        os.replace(self.path, named)
        self.path, self.entry_id = named, entry_id
        fsutil.fsync_dir(os.path.dirname(named))

    def commit(self, entry_id=None):
        """The release is logged and audited: the bundle waits to be downloaded (sealed, and
        named by ``entry_id``, already, as :func:`firmware.sar.release` has it)."""
        self.ready()
        if entry_id is not None and self.entry_id is None:
            self.logged(entry_id)

    def discard(self):
        self._buf = bytearray()
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.entry_id = None  # nothing left to account for

    def keep(self):
        """Stop writing, and leave the file (a release logged and not yet audited as not
        released: :meth:`SarJobs.settle` does that)."""
        self._buf = bytearray()
        try:
            self._file.close()
        except OSError:
            pass

    def chunks(self):
        """The bundle's bytes, chunk by chunk.

        :raises TamperError: the file was altered or cut short
        """
        opener = crypto.StreamOpener(self._key)
        with open(self.path, "rb") as f:
            while True:
                head = f.read(4)
                if len(head) != 4:
                    raise TamperError("the sealed bundle %s is cut short" % self.path)
                sealed = f.read(struct.unpack(">I", head)[0])
                last = f.peek(1) == b"" if hasattr(f, "peek") else False
                try:
                    yield opener.open(sealed, final=last)
                except TamperError:
                    raise TamperError("the sealed bundle %s was altered or cut short" % self.path) from None
                if last:
                    return


class SarJob:
    """One bundle: made by ``actor``, followed by ``token`` (its page's address)."""

    def __init__(self, token, actor, spool, again=None):
        self.token = token
        # The release form's fields (``[(name, value)]``), posted back from the page to
        # preview the letter again should the job refuse the release.
        self.again = again
        self.actor = actor
        self.spool = spool
        self.state = RUNNING
        self.done = self.total = 0
        self.error = None
        self.entry_id = None
        self.name = None
        self.sha256 = None
        self.ended_s = None
        self.thread = None
        self.downloads = 0  # being sent now: not deleted under them

    def progress(self, done, total):
        self.done, self.total = done, total

    def status(self):
        """What the page shows (JSON)."""
        return {
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "name": self.name if self.state == DONE else None,
        }


class _Sending:
    """A bundle's download (a WSGI body): its chunks, then, sent whole, the bundle deleted.
    Closed (by the server, sent or not) it is no longer being sent, even if never begun."""

    def __init__(self, jobs, job):
        self._jobs, self._job = jobs, job
        self._chunks = job.spool.chunks()
        self._open = True

    def __iter__(self):
        yield from self._chunks
        self.close(whole=True)

    def close(self, whole=False):
        if not self._open:
            return
        self._open = False
        self._chunks.close()
        self._jobs.sent(self._job, whole)


class SarJobs:
    """The bundles being made or waiting to be downloaded in ``DATA_DIR/sar-bundles``.

    One is made at a time (the box records meanwhile). :param now_s: a monotonic clock
    (seconds) for :data:`KEEP_S`; :param expired: ``fn(entry_id, actor, why)``, told of a
    bundle deleted undownloaded, its disclosure log entry and who made it (None: one a
    crash left, :meth:`settle`); the web UI audits it."""

    def __init__(self, data_dir, now_s=time.monotonic, expired=None):
        self.dir = os.path.join(data_dir, DIR)
        fsutil.make_private_dir(self.dir)
        # Sealed under keys that died with the process that made them: unreadable now.
        # Those whose release was logged are kept until it is audited as not made
        # (:meth:`settle`): the disclosure log said them released for ever. Anything else
        # put there (a folder) is left, and said: the web UI still starts.
        self._left = []
        # One :meth:`settle` at a time: the server's sweep and a page's ran it together, and
        # audited a bundle's "not released" twice, then each deleted the first of the list,
        # one of them the next bundle's, left unaudited until the next start.
        self._settling = threading.Lock()
        self._data_dir = data_dir
        self._unchecked = []  # named by an entry the disclosure log could not be asked of yet
        for name in sorted(os.listdir(self.dir)):
            path = os.path.join(self.dir, name)
            _, logged, entry_id = name.partition(LOGGED)
            if logged and entry_id.isascii() and entry_id.isdigit() and os.path.isfile(path):
                self._unchecked.append((int(entry_id), path))
                continue
            _remove(path)
        self._check_left()
        self._now_s = now_s
        self._expired = expired
        self._lock = threading.Lock()
        self._jobs = {}

    def _check_left(self):
        """Sort the bundles a cut left named by a disclosure log entry: one whose entry was
        committed waits for :meth:`settle`; one whose entry never committed logged nothing,
        and is deleted. A disclosure log that cannot be read (damaged, or not a file) is
        logged, and the bundles kept as they are for a later sweep: the web UI still starts.
        Whether none is left unsorted."""
        if not self._unchecked:
            return True
        try:
            known = DisclosureLog(self._data_dir)
            try:
                found = [(entry_id, path, known.has(entry_id)) for entry_id, path in self._unchecked]
            finally:
                known.close()
        except (sqlite3.Error, OSError) as exc:
            log.error(
                "the disclosure log (disclosures.db) cannot be read (%s): %d subject access "
                "bundle(s) a cut left are kept until it can be",
                exc,
                len(self._unchecked),
            )
            return False
        for entry_id, path, committed in found:
            if committed:
                self._left.append((entry_id, path, None, LEFT))
            else:
                _remove(path)
        self._unchecked = []
        return True

    def settle(self):
        """The bundles a crash or power cut left (logged, never downloaded), and those of
        releases that failed after they were logged while the trail refused to say so: each
        release is audited as not made (``expired``), then its file deleted. One settles at
        a time (the server's sweep and a page's): another waits, and finds those settled gone.

        :raises: what ``expired`` raises (the audit trail not open yet), or LinekeeperError
            while the disclosure log cannot be read: the web UI tries again at its next sweep
            (:meth:`web.Web.settle`)
        """
        with self._settling:  # another settling meanwhile is waited for: each audited once
            checked = self._check_left()
            while True:
                with self._lock:  # (a job that fails meanwhile adds its own: _audit_then_delete)
                    if not self._left:
                        break
                    left = self._left[0]
                entry_id, path, actor, why = left
                if self._expired is not None:
                    self._expired(entry_id, actor, why)
                try:
                    fsutil.remove_durable(path)
                except OSError as exc:  # audited already: not again at each sweep
                    log.warning("cannot remove %s from the subject access bundles' folder: %s", path, exc)
                with self._lock:
                    self._left.remove(left)
        if not checked:
            raise LinekeeperError(
                "the disclosure log cannot be read: the subject access bundles a cut left wait for it"
            )

    def start(self, actor, work, again=None):
        """Run ``work(spool, progress)`` in a thread; the job. ``work`` returns ``(disclosure
        entry id, file name, SHA-256)`` or raises :class:`LinekeeperError` (shown to the user).
        ``again``: the form's fields, which the page offers to show again if it fails
        (:attr:`SarJob.again`).

        :raises LinekeeperError: a bundle is being made already
        """
        self.sweep()
        with self._lock:
            busy = [j for j in self._jobs.values() if j.state == RUNNING]
            if busy:
                raise LinekeeperError(
                    "a bundle is being made already (by %s): wait for it, then release this one"
                    % busy[0].actor
                )
            token = secrets.token_urlsafe(16)
            job = SarJob(token, actor, SealedSpool(os.path.join(self.dir, token)), again)
            self._jobs[token] = job
        job.thread = threading.Thread(target=self._run, args=(job, work), name="sar-bundle", daemon=True)
        job.thread.start()
        return job

    def _run(self, job, work):
        try:
            job.entry_id, job.name, job.sha256 = work(job.spool, job.progress)
            job.ended_s, job.state = self._now_s(), DONE
        except LinekeeperError as exc:
            self._abandon(job, str(exc))
            job.error, job.ended_s, job.state = str(exc), self._now_s(), FAILED
        except OSError as exc:  # the spool's card: nothing was logged (firmware.sar.release)
            self._abandon(job, exc.strerror or str(exc))
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                why = (
                    "The box's card is full: the bundle could not be written (%d MB of it were). "
                    "Release fewer calls at once, or ask the installer to free space on the card"
                    % (job.spool.size // 1_000_000)
                )
            else:
                why = "The bundle could not be written on the box's card (%s)" % (exc.strerror or exc)
            log.error("subject access bundle by %s: %s", job.actor, why)
            job.error, job.ended_s, job.state = why, self._now_s(), FAILED
        except Exception as exc:  # shown, not swallowed: the page says it failed and why
            self._abandon(job, str(exc))
            job.error, job.ended_s, job.state = (
                "the bundle could not be made (%s)" % exc,
                self._now_s(),
                FAILED,
            )
            raise

    def _abandon(self, job, why):
        """A job failed: its bundle is deleted. One whose release was logged already (a step
        after it failed, or the trail refused it and its entry could not be taken back) is
        audited as not released first; the trail refusing that too, it is kept for
        :meth:`settle` (at the next sweep, or start), not deleted unaudited."""
        self._audit_then_delete(job, job.spool.entry_id, "not released: %s" % why)

    def _audit_then_delete(self, job, entry_id, why):
        """Audit the release of ``job`` (disclosure ``entry_id``; None: none was logged) as
        not made, then delete its bundle; the trail refusing, the bundle is kept for
        :meth:`settle` (at the next sweep, or start): never deleted unaudited."""
        if entry_id is not None and self._expired is not None:
            try:
                self._expired(entry_id, job.actor, why)
            except Exception as exc:
                log.error("subject access release %d failed, and cannot be audited so yet: %s", entry_id, exc)
                job.spool.keep()
                with self._lock:
                    self._left.append((entry_id, job.spool.path, job.actor, why))
                return
        job.spool.discard()

    def get(self, token, actor):
        """The job ``token`` if ``actor`` started it (else None: another's is not theirs)."""
        self.sweep()
        with self._lock:
            job = self._jobs.get(token)
        return job if job is not None and job.actor == actor else None

    def sending(self, job):
        """The bundle's bytes for its download, or None when it is gone already.

        While it is being sent :meth:`sweep` leaves it: a download of a large bundle that
        began before :data:`KEEP_S` ran out and ends after was deleted under it and the
        release audited "not downloaded", though the person had it. Sent whole, it is
        deleted (:meth:`downloaded`); a broken download may be tried again.
        """
        with self._lock:
            if self._jobs.get(job.token) is not job or job.state != DONE:
                return None
            job.downloads += 1
        return _Sending(self, job)

    def sent(self, job, whole):
        """A download of ``job`` ended, ``whole`` or broken off."""
        with self._lock:
            job.downloads -= 1
        if whole:
            self.downloaded(job)

    def downloaded(self, job):
        """The bundle went: delete it."""
        with self._lock:
            self._jobs.pop(job.token, None)
        job.spool.discard()

    def sweep(self):
        """Delete the bundles that waited :data:`KEEP_S` (and forget the failed ones); settle
        those left unaudited (:meth:`settle`)."""
        if self._left or self._unchecked:
            try:
                self.settle()
            except Exception as exc:  # the trail still refuses: at the next sweep
                log.error("subject access bundles left unaudited, still: %s", exc)
        now = self._now_s()
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.state != RUNNING
                and not j.downloads  # being sent: deleted when sent, or left after
                and now - j.ended_s > KEEP_S
            ]
            for job in old:
                del self._jobs[job.token]
        for job in old:
            # (A failed one's bundle went when it failed, or waits for :meth:`settle`.)
            if job.state == DONE:
                self._audit_then_delete(
                    job, job.entry_id, "not downloaded within %d minutes: deleted" % (KEEP_S // 60)
                )

    def stop(self):
        """The web UI stops: the bundles waiting are deleted (their keys end with the
        process) and their releases audited as not made, not left "released" for ever."""
        with self._lock:
            left = [j for j in self._jobs.values() if j.state == DONE]
            for job in left:
                del self._jobs[job.token]
        for job in left:
            # The trail refusing, the bundle stays for the next start to audit (LOGGED).
            self._audit_then_delete(job, job.entry_id, "not downloaded before the web UI stopped: deleted")

    def wait(self, timeout_s=None):
        """Wait for the bundles being made (tests, and a clean stop)."""
        with self._lock:
            threads = [j.thread for j in self._jobs.values() if j.thread is not None]
        for thread in threads:
            thread.join(timeout_s)
