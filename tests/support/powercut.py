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
    for root, _dirs, files in os.walk(data_dir):
        target = os.path.join(image, os.path.relpath(root, data_dir))
        os.makedirs(target, exist_ok=True)
        for name in files:
            src = os.path.join(root, name)
            if name.endswith((".db-wal", ".db-shm")):
                continue
            if name.endswith(".db"):
                for suffix in ("", "-wal"):
                    content = databases.content(src + suffix)
                    if content is not None:
                        with open(os.path.join(target, name + suffix), "wb") as f:
                            f.write(content)
            elif src in disk.files:
                content = disk.image_of(src, rng)
                if content is not None:
                    with open(os.path.join(target, name), "wb") as f:
                        f.write(content)
            else:
                shutil.copy2(src, target)


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
