"""The shared recording journal: one append-only file for the chunks of every line.

Why: syncing each line's recording file every second rewrites that file's
last 4 KiB page and commits the file system's journal, line by line - about
20 bytes sent to the card per byte stored (``make bench``). Here each chunk
is appended, already sealed, to one journal shared by all lines, written in
512-byte sectors with ``O_DIRECT | O_DSYNC`` (only the sectors touched go to
the card, and the write is durable when it returns). The recording files
themselves get the chunks when a recording is sealed, written and synced once
(until then each file holds them in memory, in room reserved for it on the
card; when the room is used up, or the journal wraps round, they are written
into the file earlier), never chunk by chunk. A file is also created, and
sealed, without a sync of its own: its header and its final record are
committed here like its chunks, and ext4's next commit carries its name and
its content to the card; until the journal wraps round (or closes), which syncs
such files first, replay can make the file again from the journal alone.

Layout (docs/FORMAT.md, "Recording journal"), big-endian::

    sector 0:  magic (8) | version (1) | generation (8) | zeros to 512 bytes
    commit*:   record+ | zeros to the end of its last sector
    record:    mark 4A (1) | length (4) | generation (8) | recording id (16) | offset (8)
               | CRC-32 of the 37 bytes before it and the data (4) | data (length)

A record says: these bytes belong at ``offset`` in ``recordings/ID.lkrec``
(offset 0: the file's header, from which replay may create a file a crash
left missing). Replay (:func:`replay`) writes them there; a record of another generation, a
bad CRC or a zero length ends the journal (what a crash or an earlier lap
left). A zero byte where a record would start is a commit's padding: the next
commit starts at the next sector. :meth:`Journal._wrap` starts a new generation once every file with
records in the old one has been synced.
"""

import binascii
import errno
import logging
import mmap
import os
import struct
import threading

from firmware.storage import fsutil

log = logging.getLogger(__name__)

MAGIC = b"\x89LKJNL\r\n"
VERSION = 1
SECTOR = 512
JOURNAL_NAME = "recordings.lkj"
DEFAULT_SIZE_BYTES = 4 << 20  # preallocated; wraps round when full
_HEAD = struct.Struct(">8sBQ")
_RECORD = struct.Struct(">BIQ16sQ")
RECORD_MARK = 0x4A  # "J": a record never starts with the zero byte of a commit's padding
_CRC = struct.Struct(">I")
RECORD_OVERHEAD = _RECORD.size + _CRC.size


def journal_path(data_dir):
    """Where the journal of the data directory ``data_dir`` lives."""
    return os.path.join(os.fspath(data_dir), "journal", JOURNAL_NAME)


def _record(generation, recording_id, offset, data):
    head = _RECORD.pack(RECORD_MARK, len(data), generation, bytes.fromhex(recording_id), offset)
    return head + _CRC.pack(binascii.crc32(data, binascii.crc32(head))) + data


class Journal:
    """The journal file, open for appending; thread-safe.

    :param path: the journal file (created, preallocated, if missing)
    :param fsync: ``False`` writes without syncing (tests and benchmarks only)
    :param size_bytes: its preallocated size; a commit that does not fit wraps it
    :raises OSError: it cannot be created or opened
    """

    def __init__(self, path, fsync=True, size_bytes=DEFAULT_SIZE_BYTES):
        self.path = os.fspath(path)
        self.fsync = fsync
        self.size_bytes = max(int(size_bytes) // SECTOR * SECTOR, 4 * SECTOR)
        self.bytes_written = 0  # every byte handed to the OS (sectors rewritten included)
        self.commits = 0
        # True: append() only stages; commit() writes everything staged at once
        # (the recorder commits once per capture period, for every line).
        self.deferred = False
        self._staged = []  # (writer, recording_id, offset, data)
        self._lock = threading.Lock()
        self._writers = set()  # writers with records in this generation
        self._sealed = set()  # paths of files sealed, with records here, not yet synced
        self._generation = _read_generation(self.path) + 1
        fsutil.make_private_dir(os.path.dirname(self.path))
        self._fd, self.direct = _open(self.path, fsync)
        self._buf = mmap.mmap(-1, 64 * 1024)  # page-aligned, as O_DIRECT needs
        try:
            if fsync:
                _preallocate(self._fd, self.size_bytes)
                fsutil.fsync_dir(os.path.dirname(self.path))
            self._start_generation()
        except BaseException:
            self.close()
            raise

    def append(self, writer, recording_id, offset, data):
        """Commit ``data`` (bytes for ``offset`` in ``recording_id``'s file) to the card.

        Durable when this returns (unless ``fsync`` is off); with :attr:`deferred`,
        when the next :meth:`commit` returns. ``writer`` must hand the same bytes
        to its file (in memory, or unsynced): before the journal wraps round it
        is told to write and sync them (``writer.sync_file()``).

        :raises OSError: the write failed (nothing of it is to be trusted)
        """
        with self._lock:
            self._writers.add(writer)
            self._staged.append((writer, recording_id, offset, bytes(data)))
            if not self.deferred:
                self._commit()

    def commit(self):
        """Write everything staged in one commit (one sync for every line).

        :raises OSError: the write failed; what was staged stays staged, for the next
            commit to write (a card that refused one write may take the next), up to
            half the journal's size: a journal refused for longer drops them
        """
        with self._lock:
            self._commit()

    def _commit(self):
        staged, self._staged = self._staged, []
        if not staged:
            return
        batch = b"".join(_record(self._generation, rid, off, data) for _, rid, off, data in staged)
        try:
            if self._pos + _sectors(len(batch)) > self.size_bytes:
                # Wrapping syncs every file with records in this generation, these included.
                self._wrap()
                return
            self._write_at_end(batch)
        except OSError:
            if len(batch) <= self.size_bytes // 2:
                self._staged = staged + self._staged
            else:  # refused for a while: memory is bounded (the files get them at their seals)
                log.error("the recording journal refused %d bytes of records: dropped", len(batch))
            raise
        self.commits += 1

    def forget(self, writer, synced=True):
        """``writer``'s file is closed: it needs nothing from the journal once synced.

        ``synced=False``: it was sealed without a sync of its own (its records,
        header and final one included, are committed here); it is synced
        before this generation's records are overwritten, or at :meth:`close`.
        """
        with self._lock:
            self._writers.discard(writer)
            if not synced:
                self._sealed.add(writer.path)

    def drop(self, writer):
        """``writer``'s recording is to be destroyed: forgotten, and its records not yet
        committed are never written (what a commit took stays until overwritten, and the
        start's replay creates no file for a recording whose row names none)."""
        with self._lock:
            self._writers.discard(writer)
            self._staged = [entry for entry in self._staged if entry[0] is not writer]

    def _sync_sealed(self):
        """Sync the files sealed since the last wrap, and their folders (once each); a
        file gone since (deleted) needs nothing. :raises OSError: a sync failed (the
        journal still holds their records)"""
        if not self.fsync:
            self._sealed.clear()
            return
        folders = set()
        for path in sorted(self._sealed):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                os.fdatasync(fd)  # the first commits ext4's journal for them all
            finally:
                os.close(fd)
            folders.add(os.path.dirname(path))
        for folder in sorted(folders):
            fsutil.fsync_dir(folder)
        self._sealed.clear()

    def close(self):
        """Close the journal; the files sealed without a sync are synced first.

        :raises OSError: that sync failed (the journal is closed all the same, and
            holds their records for the next start's replay)
        """
        with self._lock:
            try:
                if self._fd is not None:
                    self._sync_sealed()
            finally:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                self._buf.close()

    def _wrap(self):
        """Start a new generation: every file with records in this one is synced first."""
        for writer in list(self._writers):
            writer.sync_file()
        self._writers.clear()
        self._sync_sealed()
        self._generation += 1
        self._start_generation()

    def _start_generation(self):
        self._pos = 0
        self._write_at_end(_HEAD.pack(MAGIC, VERSION, self._generation))

    def _write_at_end(self, data):
        """Write ``data`` from the next whole sector on, zero-padded to whole sectors.

        Each commit starts a sector of its own: a sector already on the card is
        never written again (the padding costs less than rewriting it).
        """
        n = -(-len(data) // SECTOR) * SECTOR
        if n > len(self._buf):
            self._buf.close()
            self._buf = mmap.mmap(-1, -(-n // mmap.PAGESIZE) * mmap.PAGESIZE)
        self._buf[: len(data)] = data
        self._buf[len(data) : n] = bytes(n - len(data))
        view = memoryview(self._buf)[:n]
        try:
            done = 0
            while done < n:
                done += os.pwrite(self._fd, view[done:], self._pos + done)
        finally:
            view.release()
        self.bytes_written += n
        if self.fsync and not self.direct:
            os.fdatasync(self._fd)
        self._pos += n


def _sectors(n):
    return -(-n // SECTOR) * SECTOR


def _preallocate(fd, size):
    """Give the journal its ``size`` on the card, written: a new journal is filled with
    zeroes once, here.

    Blocks that are only allocated (``posix_fallocate``: ext4's *unwritten* extents)
    would cost more on every commit of the first generation: ext4 records each block's
    change to written in its own journal, and with ``O_DSYNC`` commits that journal
    at each of the box's commits. Written once, the blocks are overwritten in place
    ever after. A journal that exists (perhaps cut short by a crash here) is only
    extended with allocated blocks, as before.
    """
    end = os.fstat(fd).st_size
    if end >= size:
        return
    os.posix_fallocate(fd, end, size - end)  # a full card says so now, before any write
    if not end:
        _write_zeroes(fd, size)


def _write_zeroes(fd, size):
    """Write ``size`` bytes of zeroes from the start of ``fd`` and sync them."""
    zeroes = mmap.mmap(-1, max(1, min(size, 1 << 20)))  # page-aligned, as O_DIRECT needs
    try:
        pos = 0
        while pos < size:
            pos += os.pwrite(fd, memoryview(zeroes)[: min(len(zeroes), size - pos)], pos)
    finally:
        zeroes.close()
    os.fdatasync(fd)


def _open(path, fsync):
    """``(fd, direct)``: O_DIRECT|O_DSYNC where the file system takes it (not tmpfs)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    if fsync and hasattr(os, "O_DIRECT"):
        try:
            return os.open(path, flags | os.O_DIRECT | os.O_DSYNC, fsutil.data_mode()), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    return os.open(path, flags, fsutil.data_mode()), False


def _read_generation(path):
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
    except FileNotFoundError:
        return 0
    if len(head) < _HEAD.size:
        return 0
    magic, _, generation = _HEAD.unpack(head)
    return generation if magic == MAGIC else 0


def read_records(path):
    """The valid records of the journal's current generation, in order.

    :returns: list of ``(recording_id, offset, data)``; empty when there is no journal
    :raises OSError: it cannot be read
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    if len(raw) < SECTOR:
        return []
    magic, version, generation = _HEAD.unpack_from(raw)
    if magic != MAGIC or version != VERSION:
        log.error("%s is not a recording journal of version %d: ignored", path, VERSION)
        return []
    out, pos = [], SECTOR
    while pos + RECORD_OVERHEAD <= len(raw):
        if raw[pos] == 0 and pos % SECTOR:  # the padding of a commit: the next starts a sector
            pos = _sectors(pos)
            continue
        mark, length, gen, rid, offset = _RECORD.unpack_from(raw, pos)
        end = pos + RECORD_OVERHEAD + length
        if mark != RECORD_MARK or length == 0 or gen != generation or end > len(raw):
            break
        head = raw[pos : pos + _RECORD.size]
        data = raw[pos + RECORD_OVERHEAD : end]
        if _CRC.unpack_from(raw, pos + _RECORD.size)[0] != binascii.crc32(data, binascii.crc32(head)):
            break
        out.append((rid.hex(), offset, data))
        pos = end
    return out


def replay(path, recordings_dir, suffix=".lkrec", may_create=None, before_write=None, doomed=None):
    """Write every record of the journal at ``path`` into its recording file, and sync them.

    A record whose file is missing is skipped (the recording was discarded or
    deleted), unless ``may_create(recording_id)`` says the recording is still
    wanted and the journal holds its header (a record at offset 0, the first of
    the file's in this generation): a file created and sealed without a sync of
    its own that a power cut took before ext4 committed it is then created
    again. Bytes already in place are written again unchanged. Returns
    ``{recording_id: bytes replayed}``.

    ``doomed(recording_id)``: the recording's destruction was decided (its writer
    dropped what the file had not got yet, :meth:`Journal.drop`): its records are
    skipped, even where its file is there, which the start is about to destroy.

    ``before_write(found)``, before anything is written: what the replay finds in
    each file it is about to change, ``{recording_id: details}`` (:func:`compare`;
    a file that already holds every byte the journal has for it is not in it). A
    file that cannot be read is in it as ``"unreadable"`` and is written as any other.

    :raises OSError: a file cannot be written (the journal is left as it is)
    """
    records = read_records(path)
    if doomed is not None:
        records = [record for record in records if not doomed(record[0])]
    if before_write is not None:
        found = compare(records, recordings_dir, suffix, may_create)
        before_write({rid: details for rid, details in found.items() if details["file_was"]})
    done = {}
    fds = {}
    created = False
    try:
        for rid, offset, data in records:
            if rid not in fds:
                file_path = os.path.join(recordings_dir, rid + suffix)
                try:
                    fds[rid] = os.open(file_path, os.O_WRONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    fds[rid] = None
                    if offset == 0 and may_create is not None and may_create(rid):
                        fds[rid] = os.open(
                            file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, fsutil.data_mode()
                        )
                        created = True
            if fds[rid] is None:
                continue
            view, at = memoryview(data), offset
            while view:
                n = os.pwrite(fds[rid], view, at)
                view, at = view[n:], at + n
            done[rid] = done.get(rid, 0) + len(data)
        for fd in fds.values():
            if fd is not None:
                fsutil.release_reserve(fd)  # the room its writer had reserved past its end
                os.fdatasync(fd)
        if created:
            fsutil.fsync_dir(recordings_dir)
    finally:
        for fd in fds.values():
            if fd is not None:
                os.close(fd)
    return done


def compare(records, recordings_dir, suffix=".lkrec", may_create=None):
    """What each file that :func:`replay` would write ``records`` into holds now.

    Returns ``{recording_id: details}``, one for each file the replay writes (one it
    skips, missing and not to be created, has none): ``file_was``, what the replay
    changes, ``"missing"`` (made again from the journal), ``"differing"`` (bytes in
    place that are not the journal's, written over), ``"shorter"`` (the file ends
    before the journal's last byte for it: its end written) or None (every byte
    already in place); ``journal_from`` and ``journal_to``, the first and the end
    of the bytes the journal holds for it; and for a file that is there,
    ``file_bytes`` (its size), ``differing_bytes`` and ``missing_bytes`` (of the
    journal's bytes, those the file holds otherwise, and those past its end).

    A file that is there but cannot be read (an I/O error on a failing card) is
    ``"unreadable"``, with ``read_error`` (the system's words): the replay writes it
    all the same, as it did before it read the files (a file it cannot read must not
    stop the box from starting).
    """
    by_file = {}
    for rid, offset, data in records:
        by_file.setdefault(rid, []).append((offset, data))
    out = {}
    for rid, recs in by_file.items():
        first = recs[0][0]
        span = {"journal_from": min(o for o, _ in recs), "journal_to": max(o + len(d) for o, d in recs)}
        try:
            fd = os.open(os.path.join(recordings_dir, rid + suffix), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if first == 0 and may_create is not None and may_create(rid):
                out[rid] = {"file_was": "missing", **span}
            continue
        except OSError as exc:
            out[rid] = {"file_was": "unreadable", **span, "read_error": exc.strerror or str(exc)}
            continue
        try:
            size = os.fstat(fd).st_size
            differing = missing = 0
            for offset, data in recs:
                held = os.pread(fd, len(data), offset) if offset < size else b""
                missing += len(data) - len(held)
                if held != data[: len(held)]:
                    differing += sum(a != b for a, b in zip(held, data, strict=False))
        except OSError as exc:
            out[rid] = {"file_was": "unreadable", **span, "read_error": exc.strerror or str(exc)}
            continue
        finally:
            os.close(fd)
        found = "differing" if differing else "shorter" if missing else None
        out[rid] = {
            "file_was": found,
            **span,
            "file_bytes": size,
            "differing_bytes": differing,
            "missing_bytes": missing,
        }
    return out


def wipe(path):
    """Overwrite the whole journal with zeros, then empty it (after a replay).

    For a card that an older release left in clear, once its stores are sealed:
    the records of earlier generations (recordings' headers among them) stay in
    the file until later commits overwrite them.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        _write_zeroes(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    reset(path)


def reset(path):
    """Empty the journal after a replay: a new generation, nothing in it (durable)."""
    if os.path.exists(path):
        Journal(path, fsync=True, size_bytes=max(os.path.getsize(path), 4 * SECTOR)).close()
