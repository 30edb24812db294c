"""A power cut that loses what was not synced, modelled as SQLite's crash tests do.

The box runs in this process with the system calls of the recording writer
(``firmware.recording.segment``) and of the recording journal observed: each
module's ``os`` is replaced by one that passes every call through to the real
``os`` and tells a :class:`Disk` model what was written and synced
(``write``, ``fdatasync``; ``fsync_dir`` for a file's name). The journal's
writes are durable when they return. The databases are seen by
:class:`~support.sqlitesyncs.SyncedFiles`, and the box's own syncs of a
write-ahead log (``firmware.datadir.sync_wal``) are told to it. The product
code runs unchanged: monkeypatching the modules' references, rather than
adding an injectable file-ops object, means the code under test is exactly the
code that ships.

:meth:`PowerCut.image` copies the data directory as a cut at that instant
could leave it (:func:`make_image`):

* everything synced is there;
* with a random generator, the unsynced writes of a recording file are cut
  into 512-byte sectors and each sector is, independently, kept, dropped
  (zeros: blocks never written) or garbled (random bytes); the file's size is
  its synced size or anything up to its full size, at a sector boundary; and
  a file whose directory entry was not yet synced may be missing altogether.
  Without one, every unsynced write is lost, and such a file is gone;
* each SQLite database is its files as SQLite or the box last synced them;
* every other file (key copies, the audit trail's head, the journal) is
  copied as it stands.

The model assumes "powersafe overwrite" (SQLite's default assumption too):
writing part of a sector does not damage the bytes of it written before.
"""

import contextlib
import os
import shutil

import pytest

from firmware import datadir
from firmware.recording import journal, segment

from support.sqlitesyncs import SyncedFiles

SECTOR = 512


class Disk:
    """What is durable of each file the segment writer opened, and what is still in flight."""

    def __init__(self):
        self.files = {}  # path -> {"synced": bytes, "written": bytearray, "named": bool}
        self.fds = {}

    def opened(self, fd, path):
        self.fds[fd] = path
        self.files[path] = {"synced": b"", "written": bytearray(), "named": False}

    def wrote(self, fd, data):
        self.files[self.fds[fd]]["written"] += data  # O_APPEND: always at the end

    def synced(self, fd):
        f = self.files[self.fds[fd]]
        f["synced"] = bytes(f["written"])

    def dir_synced(self, directory):
        for path, f in self.files.items():
            if os.path.dirname(os.path.abspath(path)) == directory:
                f["named"] = True

    def image_of(self, path, rng=None):
        """The content a power cut now could leave at ``path`` (None: the file is gone).

        ``rng`` draws what became of each unsynced sector; without it every
        unsynced write is lost (and a file whose name was not synced is gone).
        """
        f = self.files[path]
        if not f["named"] and (rng is None or rng.random() < 0.5):
            return None
        if rng is None:
            return f["synced"]
        synced, written = f["synced"], bytes(f["written"])
        if len(written) == len(synced):
            return synced
        bounds = sorted(
            {len(synced), len(written)}
            | set(range((len(synced) // SECTOR + 1) * SECTOR, len(written), SECTOR))
        )
        size = rng.choice(bounds)
        out = bytearray(written[:size])
        start = len(synced)
        while start < size:
            end = min(size, (start // SECTOR + 1) * SECTOR)
            fate = rng.choice(("kept", "dropped", "garbled"))
            if fate == "dropped":
                out[start:end] = bytes(end - start)
            elif fate == "garbled":
                out[start:end] = rng.randbytes(end - start)
            start = end
        return bytes(out)


class JournalOs:
    """The ``os`` module as journal.py sees it, with each commit's write reported (the
    journal's writes are durable when they return: ``O_DIRECT | O_DSYNC``, or an
    ``fdatasync`` just after, so its file is copied as it stands). Only once a
    recording has begun: before, a power cut has nothing to lose."""

    def __init__(self, disk, on_call):
        self._disk, self._on_call = disk, on_call

    def __getattr__(self, name):
        return getattr(os, name)

    def pwrite(self, fd, data, offset):
        recording = bool(self._disk.files)
        if recording:
            self._on_call("before journal write")
        n = os.pwrite(fd, data, offset)
        if recording:
            self._on_call("after journal write")
        return n


class ObservedOs:
    """The ``os`` module as segment.py sees it, with its writes and syncs reported."""

    def __init__(self, disk, on_call):
        self._disk, self._on_call = disk, on_call

    def __getattr__(self, name):
        return getattr(os, name)

    def open(self, path, flags, mode=0o777):
        fd = os.open(path, flags, mode)
        self._disk.opened(fd, os.fspath(path))
        return fd

    def write(self, fd, data):
        self._on_call("before write")
        n = os.write(fd, data)
        self._disk.wrote(fd, bytes(data[:n]))
        self._on_call("after write")
        return n

    def fdatasync(self, fd):
        self._on_call("before fdatasync")
        os.fdatasync(fd)
        self._disk.synced(fd)


def make_image(data_dir, image, disk, databases, rng=None):
    """Copy ``data_dir`` to ``image`` as a power cut now would leave it: each recording
    file as :meth:`Disk.image_of` draws it (with ``rng``; without, its synced bytes),
    each database as last synced, every other file as it is."""
    for src, target, name in _files(data_dir, image):
        if name.endswith(".db"):
            _copy_database(src, target, databases)
        elif src in disk.files:
            content = disk.image_of(src, rng)
            if content is not None:
                with open(os.path.join(target, name), "wb") as f:
                    f.write(content)
        else:
            shutil.copy2(src, target)


def _files(data_dir, dest):
    """``(path, folder in dest, name)`` of every file under ``data_dir`` but the databases'
    logs and shared memory (each folder made in ``dest``)."""
    for root, _dirs, files in os.walk(data_dir):
        target = os.path.join(dest, os.path.relpath(root, data_dir))
        os.makedirs(target, exist_ok=True)
        for name in files:
            if not name.endswith((".db-wal", ".db-shm")):
                yield os.path.join(root, name), target, name


def _copy_database(src, target, databases):
    """Copy the database at ``src`` into the folder ``target`` as last synced: its file
    and its write-ahead log (none where it was never synced)."""
    for suffix in ("", "-wal"):
        content = databases.content(src + suffix)
        if content is not None:
            with open(os.path.join(target, os.path.basename(src) + suffix), "wb") as f:
                f.write(content)


class PowerCut:
    """The box's writes under ``data_dir`` observed (:meth:`observing`), and the image a
    cut would leave (:meth:`image`). ``on_call(name)``: told of every observed
    system call, before and after (``"before write"``, ``"after journal write"``...)."""

    def __init__(self, data_dir, on_call=None):
        self.data_dir = str(data_dir)
        self.disk = Disk()
        self.on_call = on_call or (lambda name: None)
        self.databases = None

    @contextlib.contextmanager
    def observing(self):
        original_fsync_dir = segment.fsync_dir
        original_sync_wal = datadir.sync_wal

        def observed_fsync_dir(path):
            original_fsync_dir(path)
            self.disk.dir_synced(os.path.dirname(os.path.abspath(path)))

        def observed_sync_wal(db_path):
            original_sync_wal(db_path)
            self.databases.synced(os.fspath(db_path) + "-wal")

        with pytest.MonkeyPatch.context() as mp, SyncedFiles(self.data_dir) as self.databases:
            mp.setattr(segment, "os", ObservedOs(self.disk, self.on_call))
            mp.setattr(journal, "os", JournalOs(self.disk, self.on_call))
            mp.setattr(segment, "fsync_dir", observed_fsync_dir)
            mp.setattr(datadir, "sync_wal", observed_sync_wal)
            yield self

    @property
    def in_flight(self):
        """Whether a recording file has writes, or a name, not yet synced."""
        return any(bytes(f["written"]) != f["synced"] or not f["named"] for f in self.disk.files.values())

    def image(self, dest, rng=None):
        """Copy the data directory to ``dest`` as a cut now would leave it (see :func:`make_image`)."""
        make_image(self.data_dir, str(dest), self.disk, self.databases, rng)


class AfterImage:
    """A power cut at any write or sync of the box, its start's included.

    The box's start rewrites files in place: the journal's replay writes its
    records into the recording files (over bytes already there, and past their
    end), then syncs them, and only then empties the journal. :class:`Disk`
    follows appends of the files it saw created; this follows every file under
    ``recordings/`` the modules that write recordings (the journal, the writer,
    the store, :mod:`firmware.storage.fsutil`, and ``modules``) open while it
    observes, and every name they change under the data directory:

    * a file written since its last sync (or since this began) keeps, in each
      512-byte sector written since, independently, the bytes written there
      as they were, as written, or garbled (the sector's other bytes intact:
      powersafe overwrite); and its size is the old, the new, or a sector
      boundary between;
    * a file created meanwhile whose directory was not synced since may be gone;
    * of the names changed (a file renamed over another, renamed away, removed)
      since their directory's last sync, the first few reached the card, in
      order as a journalling file system commits them, and the rest did not
      (the old file, or none, is there);
    * every other file as it stands (the content of key stores, pins, marks,
      the audit head: written whole, synced, before their rename);
    * each database as last synced (:class:`SyncedFiles`).

    ``on_call(name)`` is told before each observed call of those modules, and
    after each sync of a database (``"after database sync"``).
    """

    CALLS = ("write", "pwrite", "ftruncate", "fdatasync", "fsync", "unlink", "replace", "rename")

    def __init__(self, data_dir, on_call, modules=()):
        self.modules = tuple(modules)  # more modules whose calls are observed (their ``os``)
        self.data_dir = os.path.abspath(data_dir)
        self.recordings = os.path.join(self.data_dir, "recordings")
        self.on_call = on_call
        self.fds = {}  # fd -> path, of the files followed
        self.durable = {}  # path -> its content at its last sync (None: made since, never synced)
        self.written = {}  # path -> bytearray, 1 where written since its last sync
        self.unnamed = set()  # paths created since their directory's last sync
        # Names changed (renamed over, renamed away, removed) since their directory's
        # last sync, in order: [(path, what it was: bytes, or None for no file)].
        self.renamed = []
        self.names_lost = 0  # name changes the images so far left out (how much this bites)
        self.databases = None

    def _followed(self, path):
        return os.path.dirname(os.path.abspath(path)) == self.recordings

    def _os(self):
        model = self

        class Observed:
            def __getattr__(self, name):
                real = getattr(os, name)
                if name == "open":
                    return model._open
                if name not in AfterImage.CALLS:
                    return real

                def call(*args):
                    model.on_call("before " + name)
                    model._before(name, args)
                    result = real(*args)
                    model._after(name, args)
                    return result

                return call

        return Observed()

    def _open(self, path, flags, mode=0o777, *, dir_fd=None):
        path = os.path.abspath(os.fspath(path))
        existed = os.path.exists(path)
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
        self.fds.pop(fd, None)  # (a number closed and given again)
        if os.path.isdir(path):
            self.fds[fd] = path
        elif self._followed(path) and flags & (os.O_WRONLY | os.O_RDWR):
            self.fds[fd] = path
            if not existed:
                self.durable[path] = None
                self.unnamed.add(path)
        return fd

    def _before(self, name, args):
        if name in ("unlink", "replace", "rename"):
            for arg in args[:2]:
                path = os.path.abspath(os.fspath(arg))
                if not path.startswith(self.data_dir + os.sep) or any(p == path for p, _ in self.renamed):
                    continue
                was = None
                if os.path.isfile(path) and path not in self.unnamed:
                    with open(path, "rb") as f:
                        was = f.read()
                self.renamed.append((path, was))
        if name in ("write", "pwrite", "ftruncate"):
            path = self.fds.get(args[0])
            if path is None:
                return
            if path not in self.durable:
                with open(path, "rb") as f:
                    self.durable[path] = f.read()
            if name != "ftruncate":
                fd, data = args[0], args[1]
                if name == "pwrite":
                    at = args[2]
                else:
                    at = os.fstat(fd).st_size if _appends(fd) else os.lseek(fd, 0, os.SEEK_CUR)
                mask = self.written.setdefault(path, bytearray())
                end = at + len(memoryview(data).cast("B"))
                mask.extend(bytes(max(0, end - len(mask))))
                mask[at:end] = b"\1" * (end - at)

    def _after(self, name, args):
        if name in ("fdatasync", "fsync"):
            path = self.fds.get(args[0])
            if path is None:
                return
            if os.path.isdir(path):
                self.unnamed = {p for p in self.unnamed if os.path.dirname(p) != path}
                self.renamed = [(p, was) for p, was in self.renamed if os.path.dirname(p) != path]
            elif path in self.durable:
                with open(path, "rb") as f:
                    self.durable[path] = f.read()
                self.written.pop(path, None)
                if path not in self.unnamed:
                    del self.durable[path]
        elif name in ("unlink", "replace", "rename"):
            for arg in args:
                path = os.path.abspath(os.fspath(arg))
                self.durable.pop(path, None)
                self.written.pop(path, None)
                self.unnamed.discard(path)

    @contextlib.contextmanager
    def observing(self):
        from firmware.recording import store
        from firmware.storage import fsutil

        with pytest.MonkeyPatch.context() as mp, SyncedFiles(self.data_dir) as self.databases:
            for module in (segment, journal, store, fsutil) + self.modules:
                mp.setattr(module, "os", self._os())
            original, original_sync_wal = self.databases.synced, datadir.sync_wal

            def synced(path):
                original(path)
                self.on_call("after database sync")

            mp.setattr(self.databases, "synced", synced)

            def sync_wal(db_path):
                original_sync_wal(db_path)
                synced(os.fspath(db_path) + "-wal")

            mp.setattr(datadir, "sync_wal", sync_wal)
            yield self

    def image(self, dest, rng):
        """Copy the data directory to ``dest`` as a cut now could leave it."""
        self._image(dest, rng)
        # Of the names changed since their directory's sync, the first few reached the
        # card (in order, as a journalling file system commits them); the rest did not.
        kept = rng.randrange(len(self.renamed) + 1)
        self.names_lost += len(self.renamed) - kept
        for path, was in self.renamed[kept:]:
            where = os.path.join(str(dest), os.path.relpath(path, self.data_dir))
            if was is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(where)
            else:
                with open(where, "wb") as f:
                    f.write(was)

    def _image(self, dest, rng):
        for src, target, name in _files(self.data_dir, str(dest)):
            if name.endswith(".db"):
                _copy_database(src, target, self.databases)
            elif src in self.unnamed and rng.random() < 0.5:
                continue
            elif src in self.durable:
                with open(src, "rb") as f:
                    content = _torn(self.durable[src] or b"", f.read(), self.written.get(src, b""), rng)
                with open(os.path.join(target, name), "wb") as f:
                    f.write(content)
            else:
                shutil.copy2(src, target)


def _appends(fd):
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def _torn(old, new, written, rng):
    """What a cut leaves of a file that was ``old`` at its last sync and is now ``new``,
    ``written`` (a mask, 1 for each byte) since: in each 512-byte sector written,
    those bytes as they were (zeros past the old end), as written or garbled;
    the size the old, the new or a sector boundary between."""
    lo, hi = sorted((len(old), len(new)))
    size = rng.choice(sorted({lo, hi} | set(range((lo // SECTOR + 1) * SECTOR, hi, SECTOR))))
    was = old[:size].ljust(size, b"\0")
    out = bytearray(new[:size]) + was[len(new) :]  # (past the new end: a truncate lost)
    for start in range(0, size, SECTOR):
        end = min(size, start + SECTOR)
        touched = [i for i in range(start, min(end, len(written), len(new))) if written[i]]
        if not touched:
            continue
        fate = rng.choice(("old", "new", "garbled"))
        for i in touched:
            if fate == "old":
                out[i] = was[i]
            elif fate == "garbled":
                out[i] = rng.randrange(256)
    return bytes(out)
