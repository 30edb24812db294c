"""The recording file: append-only, sealed chunk by chunk, safe against crashes.

Layout (all integers big-endian)::

    magic (8) | version (1) | header length (4) | header JSON (UTF-8)
    record*:  length (4) | StreamSealer ciphertext (length bytes, tag included)

The header bytes (magic to the end of the JSON) are the associated data of
every chunk, so an edited header fails authentication. The last record is
the final chunk of the STREAM (:mod:`firmware.storage.crypto`), which
:class:`SegmentWriter` always seals empty: a file whose last record is 16
bytes long has, most likely, been closed (:func:`inspect` says so without a
key; only :class:`SegmentReader` proves it).

The writer only appends; each chunk is on the card (``fdatasync``) before
:meth:`SegmentWriter.write_chunk` returns, or, with a :class:`SyncGroup`
(under a hold-up capacitor), when the group is synced, and always before the
file's next chunk is written. A crash can leave a torn last
record - cut short, with a garbled length field, or with zeros where its
blocks never landed - which the reader ignores; the file then reads as
*partial*. Any other
damage - a flipped bit, a cut inside the chunk sequence, reordered or repeated
chunks, bytes after the final chunk, a wrong key - raises
:class:`~firmware.errors.TamperError`.
"""

import errno
import json
import logging
import os
import struct

from firmware.errors import DiskFullError, TamperError
from firmware.storage import crypto, fsutil

log = logging.getLogger(__name__)

MAGIC = b"\x89LKREC\r\n"  # non-ASCII first byte and CR LF catch text-mode mangling
VERSION = 1
_PREFIX = struct.Struct(">8sBI")
_LENGTH = struct.Struct(">I")
MAX_HEADER_BYTES = 64 * 1024
EXTRA_CHUNK_BYTES = 16 * 1024  # room for container headers in a chunk
# With a journal: the records a file holds in memory, in as much room reserved for them on
# the card, before they are written into it (docs/journal.md).
HOLD_BYTES = 256 * 1024


def max_chunk_bytes(header):
    """The largest plaintext one chunk may hold for this header.

    Four bytes per sample of ``chunk_ms`` (twice 16-bit PCM) plus room for
    container headers: bounds the memory a reader spends, and how long a torn
    tail can genuinely be.
    """
    rate, chunk_ms = int(header.get("rate", 8000)), int(header.get("chunk_ms", 1000))
    return 4 * rate * chunk_ms // 1000 + EXTRA_CHUNK_BYTES


def _header_bytes(header):
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError("recording header is %d bytes, more than %d" % (len(body), MAX_HEADER_BYTES))
    return _PREFIX.pack(MAGIC, VERSION, len(body)) + body


def _disk_full(exc, path):
    return DiskFullError(
        errno.ENOSPC,
        "the disk is full: recording %s stopped; it keeps what "
        "was written so far. Free space to record again" % path,
        path,
    )


class SegmentWriter:
    """Writes one recording file; creating it is durable before the constructor returns
    (unless ``before_create`` defers it to the first write, or ``sync_create=False``
    with a journal leaves it to the journal and ext4's next commit).

    :param path: the new file (must not exist)
    :param recording_id: stored in the header as ``recording_id``
    :param data_key: the recording's 32-byte data key
    :param header: the other header fields (call id, line, created wall µs,
        profile, rate, chunk_ms); must be JSON-serialisable
    :param fsync: ``False`` skips fdatasync/fsync (tests and benchmarks only)
    :param journal: a :class:`~firmware.recording.journal.Journal`: each record
        is committed there, and held here in memory (up to :data:`HOLD_BYTES`,
        in room reserved for it on the card, so a full disk shows at once),
        written into the file when it is closed, when the journal wraps round or
        when the room is used up, and synced then only; None appends and syncs
        every record here
    :param sync_create: sync the header and the file's name at once (default);
        False, under a HAT's hold-up capacitor (docs/holdup-writes.md): they
        reach the card with the first chunk's sync, in the same page; False
        with a journal: the file is created and sealed without a sync of its
        own, its header (a record at offset 0) and its final record committed
        to the journal like its chunks, and ext4's next commit carries it to
        the card (the journal syncs it before it wraps round, and a replay
        after a power cut creates it again: docs/journal.md)
    :param before_create: ``fn()`` (without a journal only): the file is not
        created here but by its first write (a chunk, :meth:`close` or
        :meth:`abort`), just after ``fn()`` ran; under a hold-up capacitor the
        box syncs the call log there, so the card never holds a recording file
        without its row (docs/holdup-writes.md). A full disk then shows at
        that write.
    :param sync_group: a :class:`SyncGroup` (without a journal only, under a
        hold-up capacitor): :meth:`write_chunk` writes the chunk and leaves its
        sync to the group, which syncs every line's file together; the file's
        next chunk, :meth:`close` and :meth:`abort` sync it first if the group
        has not (one chunk in flight per file)
    :raises FileExistsError: ``path`` exists (a file is never rewritten)
    :raises DiskFullError: no room even for the header (nothing is left behind)
    :raises OSError: any other failure to create it
    """

    def __init__(
        self,
        path,
        recording_id,
        data_key,
        header,
        fsync=True,
        journal=None,
        sync_create=True,
        before_create=None,
        sync_group=None,
    ):
        self.path = os.fspath(path)
        # Under a hold-up capacitor with a journal, chunks go straight to the file as
        # without one (synced with the other lines', by the group); only the seal goes
        # through the journal, with no sync of the file's own (docs/holdup-writes.md).
        self._seal_journal = journal if journal is not None and sync_group is not None and fsync else None
        if self._seal_journal is not None:
            journal = None
        self.header = dict(header, recording_id=str(recording_id))
        self.header_bytes = _header_bytes(self.header)
        self.max_chunk_bytes = max_chunk_bytes(self.header)
        self._sealer = crypto.StreamSealer(data_key, aad=self.header_bytes)
        self._fsync = fsync
        self.journal = journal
        self._pending = bytearray()  # journaled records not yet in the file
        self._hold = journal is not None  # False once the file system cannot reserve room
        # Created and sealed with no sync of its own: the journal holds it all until synced.
        self._lazy = journal is not None and not sync_create
        self._reserved = 0  # the file's blocks are reserved up to this offset
        self._file_bytes = 0  # bytes handed to the file so far
        self.bytes_written = 0  # every byte handed to the OS, torn ones included
        self.chunks = 0
        self.closed = False
        self._named = not fsync  # whether the file's name is synced (or need not be)
        self._fd = None
        self._group = sync_group if journal is None and fsync else None
        self._unsynced = False  # a chunk written, its sync left to the group
        self._before_create = before_create if journal is None else None
        if self._before_create is not None:
            if os.path.lexists(self.path):
                raise FileExistsError(errno.EEXIST, "%s exists" % self.path, self.path)
            return  # created by the first write
        self._create(self.header_bytes, sync=sync_create)

    def _create(self, data, sync):
        """Create the file with ``data`` (the header, and the first record when deferred).

        On failure nothing is left behind: the file would hold no whole chunk.
        """
        if self._before_create is not None:
            hook, self._before_create = self._before_create, None
            hook()
        self._fd = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, fsutil.data_mode()
        )
        try:
            if self._lazy:
                self._journal_record(data)
            else:
                self._append(data, sync=sync)
        except BaseException as exc:
            os.close(self._fd)
            self.closed = True
            os.unlink(self.path)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise _disk_full(exc, self.path) from exc
            raise

    def write_chunk(self, encoded):
        """Seal ``encoded`` as the next chunk, append it and wait until it is on disk
        (with a ``sync_group``: until the group or the file's next write syncs it).

        Empty input writes nothing. On any ``OSError`` the writer closes
        (the file stays a valid partial recording).

        :raises ValueError: more than :attr:`max_chunk_bytes`, or the writer is closed
        :raises DiskFullError: the disk is full
        :raises OSError: another write or sync failure
        """
        self._write_chunk(encoded, defer=self._group is not None)

    def _write_chunk(self, encoded, defer=False):
        if not encoded:
            return
        if len(encoded) > self.max_chunk_bytes:
            raise ValueError("chunk of %d bytes exceeds %d" % (len(encoded), self.max_chunk_bytes))
        self._write_record(self._sealer.seal(encoded), defer=defer)

    def sync_chunk(self):
        """Sync the chunk whose sync was left to the ``sync_group``, if it is still waiting.

        :raises DiskFullError, OSError: the sync failed; the writer has closed
            (the file stays a partial recording, as after a failed write)
        """
        if not self._unsynced or self.closed:
            return
        self._unsynced = False
        if self._group is not None:
            self._group.discard(self)
        try:
            self._sync()
        except OSError as exc:
            self.abort()
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, self.path) from exc
            raise

    def close(self, encoded=b""):
        """Write ``encoded`` (if any) and the final chunk, sync file and directory, close.

        After this the file reads as *complete*. Calling it again does nothing.
        :raises DiskFullError, OSError: as :meth:`write_chunk` (the file stays partial)
        """
        if self.closed:
            return
        if self._seal_journal is not None:
            self._seal_through_journal(encoded)
            return
        self._write_chunk(encoded)
        unsealed = (self._file_bytes, len(self._pending))
        self._write_record(self._sealer.seal(b"", final=True), final=True)
        if self.journal is not None:
            try:
                if self._lazy:
                    # The seal is on the card, in the journal, when this returns; the
                    # file gets it now, unsynced, for ext4's next commit to carry.
                    try:
                        self.journal.commit()
                    except OSError:
                        self._keep_unsealed(*unsealed)
                        raise
                self.sync_file(last=True, sync=not self._lazy)
            except OSError as exc:
                self._close_fd()  # the journal keeps the records for the next start
                if exc.errno == errno.ENOSPC:
                    raise _disk_full(exc, self.path) from exc
                raise
        if self._fsync and not self._lazy:
            fsync_dir(self.path)
        self._close_fd(synced=not self._lazy)

    def _seal_through_journal(self, encoded):
        """:meth:`close` under a hold-up capacitor with a journal: the last chunk and the
        final record are committed to the journal in one write, then handed to the file
        unsynced. Every earlier chunk is in the file, synced (by the group); the journal
        syncs the file before it wraps round or closes, and a replay after a power cut
        writes them there again. The file's own sync would commit ext4's journal twice
        (its new size with the last chunk, then with the final record): a few 4 KiB
        blocks each, for every recording. A journal that refuses them leaves the file
        synced on its own, as without a journal.

        The journal first: the seal is two records, and in the file before the
        journal had them, a power cut the warning did not announce could tear the
        last chunk and keep the final record after it, damage the reader rightly
        takes for tampering (tests/recording/acceptance/test_crash_unsynced.py).
        Held in memory meanwhile, as on the journal path: a journal that wraps
        round in this commit writes and syncs them into the file first."""
        if len(encoded) > self.max_chunk_bytes:
            raise ValueError("chunk of %d bytes exceeds %d" % (len(encoded), self.max_chunk_bytes))
        self.sync_chunk()  # one chunk in flight: the group's waiting one first
        head = b""
        try:
            if self._fd is None:  # no chunk yet: created now (its row synced first), header and all
                self._create(b"", sync=False)
                head = self.header_bytes
        except OSError as exc:
            self.abort()
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, self.path) from exc
            raise
        sealed = [self._sealer.seal(encoded)] if encoded else []
        sealed.append(self._sealer.seal(b"", final=True))
        data = head + b"".join(_LENGTH.pack(len(s)) + s for s in sealed)
        offset = self._file_bytes + len(self._pending)
        self._pending += data
        try:
            self._seal_journal.append(self, self.header["recording_id"], offset, data)
            self._seal_journal.commit()
        except OSError as refused:
            log.warning(
                "the recording journal refused the seal of %s (%s): synced on its own", self.path, refused
            )
            try:
                self._write_pending()
                self._sync()
                fsync_dir(self.path)
            except OSError as exc:
                self._close_fd()  # a partial recording: the seal is on the card nowhere
                if exc.errno == errno.ENOSPC:
                    raise _disk_full(exc, self.path) from exc
                raise
            self.chunks += len(sealed)
            self._close_fd()
            return
        self.chunks += len(sealed)
        try:
            self._write_pending()  # (already there if the commit wrapped the journal round)
        except OSError as exc:
            self._close_fd()  # the journal keeps the seal for the next start
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, self.path) from exc
            raise
        self._close_fd(synced=False)

    def discard(self):
        """Stop for good, writing and syncing nothing more: the recording is about to be
        destroyed. What waits in memory for the file is dropped, a file still to be
        created (its first chunk not come) never is, and the journal drops what it has
        not committed of it: :meth:`abort` would write and sync all of that, only for the
        destruction to overwrite and remove it."""
        if self.closed:
            return
        self._pending.clear()
        self._unsynced = False
        self._reserved = 0
        journal = self.journal if self.journal is not None else self._seal_journal
        if journal is not None:
            journal.drop(self)
        self._close_fd()

    def abort(self):
        """Stop without the final chunk: the file stays, as a partial recording."""
        if not self.closed and self._fd is None:
            try:  # a deferred file not created yet: its header only (no audio reached it)
                self._create(self.header_bytes, sync=True)
            except OSError as exc:
                log.error("cannot create recording %s: %s", self.path, exc)
                self.closed = True
                return
        if not self.closed:
            if self._unsynced:  # the group's sync had not come yet: the chunk is kept
                self._unsynced = False
                try:
                    self._sync()
                except OSError as exc:
                    log.error("cannot sync recording %s: %s", self.path, exc)
            if self.journal is not None:
                try:
                    self.sync_file(last=True)
                except OSError as exc:  # the journal still holds it for the next start
                    log.error("cannot write recording %s from memory: %s", self.path, exc)
            self._close_fd()

    def _keep_unsealed(self, file_bytes, held):
        """The journal refused the seal: the file ends before its final record (which is
        on the card nowhere) and gets, synced, the chunks the journal does hold: a
        partial recording, as the journal's replay would leave it."""
        del self._pending[held:]
        try:
            if self._file_bytes > file_bytes:  # written straight into the file (no room held)
                os.ftruncate(self._fd, file_bytes)
                self._file_bytes = file_bytes
            self.sync_file(last=True)
        except OSError as exc:  # the journal's replay puts them there at the next start
            log.error("cannot write recording %s from memory: %s", self.path, exc)

    def sync_file(self, last=False, sync=True):
        """Write every journaled record into the file and sync it (the journal wraps round).

        ``last``: nothing follows (the file is closing); the room reserved past
        its end is given back, in the same sync. ``sync=False``: written, not
        synced (a seal the journal holds).

        :raises OSError: the write or sync failed
        """
        if self.closed:
            return
        self._write_pending()
        if last and self._reserved:
            fsutil.release_reserve(self._fd)
            self._reserved = 0
        if self._fsync and sync:
            self._sync()

    def _write_record(self, sealed, final=False, defer=False):
        if self.closed:
            raise ValueError("recording %s is closed" % self.path)
        record = _LENGTH.pack(len(sealed)) + sealed
        # One chunk in flight: the one the group has not synced yet is synced first.
        self.sync_chunk()
        if self._fd is None:  # deferred (before_create): the header goes with the first record
            self._create(self.header_bytes + record, sync=not defer)
            self.chunks += 1
            self._left_to_group(defer)
            return
        try:
            if self.journal is None:
                self._append(record, sync=not defer)
            elif final and not self._lazy:
                self._pending += record  # close() writes and syncs it with the rest
            else:
                self._journal_record(record)
        except OSError as exc:
            self.abort()
            if exc.errno == errno.ENOSPC:
                raise _disk_full(exc, self.path) from exc
            raise
        self.chunks += 1
        self._left_to_group(defer)

    def _journal_record(self, record):
        """Commit ``record`` (the file's next bytes) to the journal; the file holds it in
        memory (in room reserved for it) or, where it cannot, gets it now, unsynced."""
        offset = self._file_bytes + len(self._pending)
        # Handed to the file first (a full disk shows here, at this chunk), so
        # that a journal wrapping round in this append syncs it with the rest.
        held = self._make_room(len(record))
        if held:
            self._pending += record
        else:  # into the page cache, unsynced: the kernel writes it back in its time
            self._append(record, sync=False)
        try:
            self.journal.append(self, self.header["recording_id"], offset, record)
        except OSError:
            if held:  # not on the card: the file ends before it, as the journal does
                del self._pending[-len(record) :]
            raise

    def _make_room(self, n):
        """Whether the next ``n`` bytes can wait in memory, in room reserved for them.

        The card then gets the file's records once, at its seal, not a page of
        them each time the kernel writes back (nor an inode for ext4's 5 s
        commit to carry). When the room is used up, what is held goes into the
        file (unsynced) and more is reserved: :data:`HOLD_BYTES`, or, on a disk
        too full for that, room for these ``n`` bytes only. False where the
        file system cannot reserve: records then go into the file as they come.

        :raises OSError: ENOSPC: the disk is full (not even ``n`` bytes of room)
        """
        if not self._hold:
            return False
        if self._file_bytes + len(self._pending) + n <= self._reserved:
            return True
        self._write_pending()
        room = max(HOLD_BYTES, n)
        try:
            reserved = fsutil.reserve(self._fd, self._file_bytes, room)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or room == n:
                raise
            room = n
            reserved = fsutil.reserve(self._fd, self._file_bytes, room)
        if not reserved:
            self._hold = False
            return False
        self._reserved = self._file_bytes + room
        return True

    def _left_to_group(self, defer):
        if defer:
            self._unsynced = True
            self._group.add(self)

    def _append(self, data, sync=True):
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self.bytes_written += n
            self._file_bytes += n
            view = view[n:]
        if self._fsync and sync:
            self._sync()

    def _sync(self):
        os.fdatasync(self._fd)
        if not self._named:
            fsync_dir(self.path)
            self._named = True

    def _write_pending(self, n=None):
        n = len(self._pending) if n is None else n
        if n:
            self._append(bytes(self._pending[:n]), sync=False)
            del self._pending[:n]

    def _close_fd(self, synced=True):
        self.closed = True
        if self._group is not None:
            self._group.discard(self)
        if self._fd is not None:
            os.close(self._fd)
        journal = self.journal if self.journal is not None else self._seal_journal
        if journal is not None:
            journal.forget(self, synced=synced or not self._fsync)

    @property
    def fd(self):
        """The open file's descriptor (None before the file exists or once closed)."""
        return None if self.closed else self._fd


class SyncGroup:
    """Recording files whose newest chunk is written but not yet synced, synced together
    (under a hold-up capacitor, docs/holdup-writes.md).

    The recorder puts every line's chunks on a shared clock grid and syncs the
    group at the end of the capture pass in which the lines' chunks due at a
    grid point have all been written (``Recorder._sync_pass``): their pages go
    to the device together (:func:`~firmware.storage.fsutil.write_back`), then
    each file is synced. The first ``fdatasync`` then commits ext4's own journal
    for all of them, and the others find nothing left to commit, instead of one
    commit per file. A file never has more than one chunk waiting here: its
    next chunk, its end and its abort sync the waiting one first
    (:class:`SegmentWriter`).
    """

    def __init__(self):
        self._waiting = {}  # writer -> None, in the order their chunks were written

    def __len__(self):
        return len(self._waiting)

    def __contains__(self, writer):
        return writer in self._waiting

    def add(self, writer):
        self._waiting[writer] = None

    def discard(self, writer):
        self._waiting.pop(writer, None)

    def sync(self):
        """Sync every waiting file; ``[(writer, OSError)]`` for those whose sync failed
        (each writer has closed: its file is a partial recording, as after a failed write)."""
        waiting = [w for w in self._waiting if w.fd is not None]
        if not waiting:
            self._waiting.clear()
            return []
        fsutil.write_back([w.fd for w in waiting])
        failed = []
        for writer in waiting:
            try:
                writer.sync_chunk()
            except OSError as exc:
                failed.append((writer, exc))
        self._waiting.clear()
        return failed


def fsync_dir(path):
    """fsync the directory holding ``path`` (so the file's name survives a power cut)."""
    fsutil.fsync_dir(os.path.dirname(os.path.abspath(path)))


def _read_header(f, path):
    """``(header dict, header bytes)`` from an open file; :class:`TamperError` if malformed."""
    prefix = f.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise TamperError("%s is too short to be a recording" % path)
    magic, version, length = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise TamperError("%s is not a Linekeeper recording (bad magic)" % path)
    if version != VERSION:
        raise TamperError("%s has unknown recording format version %d" % (path, version))
    if length > MAX_HEADER_BYTES:
        raise TamperError("%s has a damaged header length" % path)
    body = f.read(length)
    try:
        header = json.loads(body.decode("utf-8"))
        if len(body) < length or not isinstance(header, dict):
            raise ValueError("not a JSON object")
        max_chunk_bytes(header)
    except (ValueError, TypeError) as exc:
        raise TamperError("%s has a damaged header: %s" % (path, exc)) from None
    return header, prefix + body


class SegmentReader:
    """Reads and verifies one recording file.

    :param path: the file
    :param data_key: its 32-byte data key
    :raises TamperError: the header is malformed
    :raises OSError: the file cannot be read

    After :meth:`chunks` has run to the end, :attr:`complete` tells whether
    the final chunk was there and :attr:`torn_bytes` how many bytes of a torn
    last record were ignored.
    """

    def __init__(self, path, data_key):
        self.path = os.fspath(path)
        self._key = data_key
        with open(self.path, "rb") as f:
            self.header, self.header_bytes = _read_header(f, self.path)
        self.complete = None
        self.torn_bytes = None

    def chunks(self):
        """Yield each chunk's plaintext, in order, each verified before it is yielded.

        :raises TamperError: any damage other than a torn last record
        """
        opener = crypto.StreamOpener(self._key, aad=self.header_bytes)
        limit = max_chunk_bytes(self.header) + crypto.TAG_BYTES
        self.complete, self.torn_bytes = False, 0
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(len(self.header_bytes))
            while True:
                start = f.tell()
                raw_length = f.read(_LENGTH.size)
                if not raw_length:
                    return
                if opener.finished:
                    raise TamperError("%s has data after its final chunk" % self.path)
                if len(raw_length) == _LENGTH.size:
                    length = _LENGTH.unpack(raw_length)[0]
                    if crypto.TAG_BYTES <= length <= limit:
                        sealed = f.read(length)
                        if len(sealed) == length and not (f.tell() == size and _zero_filled(sealed)):
                            yield self._open(opener, sealed)
                            self.complete = opener.finished
                            continue
                f.seek(start)
                self._check_torn(opener, f.read(_LENGTH.size + limit + 1), limit, start)
                return

    def _open(self, opener, sealed):
        try:
            return opener.open(sealed, final=False)
        except TamperError:
            # A failed open does not advance the opener, so try it as the last.
            return opener.open(sealed, final=True)

    def _check_torn(self, opener, tail, limit, start):
        """Accept ``tail`` (from file offset ``start``) as the last record torn or garbled
        by a crash, if it can be one.

        It must be no longer than one record, and must not hide an authentic
        chunk: a record whose length field was altered looks torn, but a
        prefix of what follows its length field then still opens as the next
        chunk (with whole records after it up to the end), which a torn
        write - part of one sealed chunk, or garbage - does only in one case
        (:func:`_torn_before_its_body`): the length field's first bytes, alone in
        the card's sector that the last synced record ends in.
        """
        if len(tail) > _LENGTH.size + limit:
            raise TamperError("%s: chunk %d is damaged" % (self.path, opener.chunks_opened))
        body = tail[_LENGTH.size :]
        for end in _record_ends(body, limit):
            for final in (False, True):
                try:
                    opener.open(body[:end], final=final)
                except TamperError:
                    continue
                if _torn_before_its_body(tail[: _LENGTH.size], end, start):
                    self.torn_bytes = len(tail)
                    return
                raise TamperError(
                    "%s: chunk %d has a damaged length field" % (self.path, opener.chunks_opened - 1)
                )
        self.torn_bytes = len(tail)

    def read_all(self):
        """``(plaintext bytes of every verified chunk, complete: bool)``.

        :raises TamperError: see :meth:`chunks`
        """
        data = b"".join(self.chunks())
        return data, self.complete


def _zero_filled(sealed):
    """True when a record's tag is all zeros, as in blocks a power cut left unwritten.

    (A genuine tag is all zeros with probability 2**-128.)
    """
    return sealed[-crypto.TAG_BYTES :] == bytes(crypto.TAG_BYTES)


# The smallest sector a card writes whole: a power cut garbles (or leaves unwritten)
# what a write put in a sector, and nothing outside the sectors being written.
_SECTOR = 512


def _torn_before_its_body(raw_length, length, start):
    """Whether a power cut could have left the length field ``raw_length`` at file offset
    ``start`` with only its first bytes wrong (the record's true length ``length``):
    those bytes are all that the record put in the sector the file's synced part ends
    in (a sector boundary falls inside the field), and a cut may garble or drop the
    new part of that sector while the next sectors, with the record's body, reach the
    card whole. Nothing else of a record can go wrong and leave its body authentic."""
    boundary = (start // _SECTOR + 1) * _SECTOR
    if boundary >= start + _LENGTH.size:
        return False  # the body begins in the same sector: it would be damaged too
    wanted = _LENGTH.pack(length)
    return all(start + i < boundary for i in range(_LENGTH.size) if raw_length[i] != wanted[i])


def _record_ends(body, limit):
    """Ends of a first record in ``body`` after which whole, sane records reach the end exactly."""
    n = len(body)
    reaches_end = bytearray(n + 1)  # reaches_end[p]: records from p line up to n
    reaches_end[n] = 1
    for p in range(n - _LENGTH.size, -1, -1):
        length = _LENGTH.unpack_from(body, p)[0]
        q = p + _LENGTH.size + length
        reaches_end[p] = crypto.TAG_BYTES <= length <= limit and q <= n and reaches_end[q]
    return [end for end in range(crypto.TAG_BYTES, n + 1) if reaches_end[end]]


def inspect(path):
    """What a recording file holds, without its key (for the recovery sweep).

    :returns: dict with ``header`` (dict, or ``None`` when a crash cut the
        file inside its header), ``header_bytes``, ``chunks`` (whole records),
        ``torn_bytes`` (a trailing torn record), ``file_bytes`` and ``closed``
        (the last record has the size of the empty final chunk - not
        authenticated: :class:`SegmentReader` proves it)
    :raises TamperError: not a recording, or damage beyond a torn last record
    :raises OSError: the file cannot be read
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(_PREFIX.size)
        if not MAGIC.startswith(prefix[: len(MAGIC)]):
            raise TamperError("%s is not a Linekeeper recording (bad magic)" % path)
        if len(prefix) < _PREFIX.size or size < _PREFIX.size + _PREFIX.unpack(prefix)[2]:
            return {
                "header": None,
                "header_bytes": 0,
                "chunks": 0,
                "torn_bytes": size,
                "file_bytes": size,
                "closed": False,
            }
        f.seek(0)
        header, header_bytes = _read_header(f, path)
        limit = max_chunk_bytes(header) + crypto.TAG_BYTES
        pos, chunks, last = len(header_bytes), 0, None
        while pos + _LENGTH.size <= size:
            length = _LENGTH.unpack(f.read(_LENGTH.size))[0]
            if not crypto.TAG_BYTES <= length <= limit or pos + _LENGTH.size + length > size:
                break
            f.seek(length, os.SEEK_CUR)
            pos += _LENGTH.size + length
            chunks, last = chunks + 1, length
    if size - pos > _LENGTH.size + limit:
        raise TamperError("%s: record %d is damaged" % (path, chunks))
    return {
        "header": header,
        "header_bytes": len(header_bytes),
        "chunks": chunks,
        "torn_bytes": size - pos,
        "file_bytes": size,
        "closed": last == crypto.TAG_BYTES and pos == size,
    }
