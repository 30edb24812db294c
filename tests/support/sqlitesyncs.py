"""What of each SQLite database a power cut would leave: its files as they were at their last sync.

The crash tests model a power cut that loses every write not yet synced. For
the recording files they see each write and sync (the writer's ``os``); a
database is written by SQLite's C code, out of Python's sight. This module
sees its syncs: a VFS in front of SQLite's default one (``unix``), registered
as the default for the connections this process opens while it is on, whose
files are SQLite's own with one method changed: ``xSync`` calls SQLite's and
then keeps a copy of the file as it stands (the database, its write-ahead
log). A database's image after a cut is then its file and its log as last
synced: with ``synchronous=FULL`` every commit, with ``NORMAL`` (the call log
under a hold-up capacitor) only what a later sync carried. SQLite recovers
the rest from the log when the image is opened, as it would on the box.

Syncs the box makes itself (``firmware.datadir.sync_wal``, an ``fsync`` of
the log from Python) are told with :meth:`SyncedFiles.synced`.

This is test scaffolding around the library the ``sqlite3`` module uses
(the same ``libsqlite3``, found by ctypes): the product code runs unchanged.
"""

import ctypes
import os
import threading

_LIB = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 module is linked with

_SYNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_OPEN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p
)


class _Vfs(ctypes.Structure):
    """``sqlite3_vfs`` (version 3); the methods as plain pointers, copied as they are."""

    _fields_ = [
        ("iVersion", ctypes.c_int),
        ("szOsFile", ctypes.c_int),
        ("mxPathname", ctypes.c_int),
        ("pNext", ctypes.c_void_p),
        ("zName", ctypes.c_char_p),
        ("pAppData", ctypes.c_void_p),
        ("xOpen", ctypes.c_void_p),
    ] + [
        (name, ctypes.c_void_p)
        for name in (
            "xDelete",
            "xAccess",
            "xFullPathname",
            "xDlOpen",
            "xDlError",
            "xDlSym",
            "xDlClose",
            "xRandomness",
            "xSleep",
            "xCurrentTime",
            "xGetLastError",
            "xCurrentTimeInt64",
            "xSetSystemCall",
            "xGetSystemCall",
            "xNextSystemCall",
        )
    ]


class _IoMethods(ctypes.Structure):
    """``sqlite3_io_methods`` (version 3)."""

    _fields_ = [("iVersion", ctypes.c_int)] + [
        (name, ctypes.c_void_p)
        for name in (
            "xClose",
            "xRead",
            "xWrite",
            "xTruncate",
            "xSync",
            "xFileSize",
            "xLock",
            "xUnlock",
            "xCheckReservedLock",
            "xFileControl",
            "xSectorSize",
            "xDeviceCharacteristics",
            "xShmMap",
            "xShmLock",
            "xShmBarrier",
            "xShmUnmap",
            "xFetch",
            "xUnfetch",
        )
    ]


_LIB.sqlite3_vfs_find.restype = ctypes.POINTER(_Vfs)
_LIB.sqlite3_vfs_find.argtypes = [ctypes.c_char_p]
_LIB.sqlite3_vfs_register.argtypes = [ctypes.POINTER(_Vfs), ctypes.c_int]
_LIB.sqlite3_vfs_unregister.argtypes = [ctypes.POINTER(_Vfs)]


class WrappingVfs:
    """While entered: a VFS in front of SQLite's default one, registered as the default,
    whose files under ``root`` get the io methods :meth:`_methods_for` makes of
    SQLite's own (for :class:`SyncedFiles` and :mod:`support.sqlitefaults`)."""

    NAME = b"linekeeper-wrapping"

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self._lock = threading.Lock()
        self._files = {}  # address of an open sqlite3_file -> its path
        self._methods = {}  # address of SQLite's io methods -> (ours, what they hold on to...)
        self._keep = []  # what SQLite holds pointers to, alive while registered
        self._vfs = None

    def _methods_for(self, real):
        """``(our _IoMethods, the callbacks it points at...)`` in place of SQLite's ``real``."""
        raise NotImplementedError

    def __enter__(self):
        real = _LIB.sqlite3_vfs_find(None)
        real_open = _OPEN(real.contents.xOpen)
        vfs = _Vfs()
        ctypes.pointer(vfs)[0] = real.contents
        vfs.zName = self.NAME
        vfs.pNext = None

        def x_open(_vfs, name, file, flags, out_flags):
            rc = real_open(ctypes.addressof(real.contents), name, file, flags, out_flags)
            if rc == 0 and name:
                self._wrap(file, os.fsdecode(ctypes.string_at(name)))
            return rc

        opener = _OPEN(x_open)
        vfs.xOpen = ctypes.cast(opener, ctypes.c_void_p).value
        self._keep += [opener, real_open]
        self._vfs = vfs
        if _LIB.sqlite3_vfs_register(ctypes.byref(vfs), 1) != 0:
            raise RuntimeError("SQLite refused the VFS %s" % self.NAME.decode())
        return self

    def __exit__(self, *exc):
        _LIB.sqlite3_vfs_unregister(ctypes.byref(self._vfs))
        # The connections opened meanwhile still point at it and its methods: kept.
        _KEPT.append(self._keep + [self._vfs, self._methods])

    def _wrap(self, file, path):
        methods_at = ctypes.c_void_p.from_address(file)
        if not methods_at.value or not os.path.abspath(path).startswith(self.root + os.sep):
            return
        with self._lock:
            self._files[file] = os.path.abspath(path)
            if methods_at.value not in self._methods:
                self._methods[methods_at.value] = self._methods_for(_IoMethods.from_address(methods_at.value))
            methods_at.value = ctypes.addressof(self._methods[methods_at.value][0])


class SyncedFiles(WrappingVfs):
    """While entered: every file of the databases under ``root`` as last synced.

    ``content(path)`` is the file's bytes at its last sync (or when this was
    entered, for a file there already: a database at rest), None for a file
    never synced since it was made.
    """

    NAME = b"linekeeper-syncs"

    def __init__(self, root):
        super().__init__(root)
        self._content = {}

    def __enter__(self):
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                if name.endswith((".db", ".db-wal")):
                    self.synced(os.path.join(folder, name))
        return super().__enter__()

    def _methods_for(self, real):
        real_sync = _SYNC(real.xSync)

        def x_sync(f, flags):
            rc = real_sync(f, flags)
            if rc == 0 and f in self._files:
                self.synced(self._files[f])
            return rc

        ours = _IoMethods()
        ctypes.pointer(ours)[0] = real
        sync = _SYNC(x_sync)
        ours.xSync = ctypes.cast(sync, ctypes.c_void_p).value
        return ours, sync, real_sync

    def synced(self, path):
        """``path`` was synced (by the box itself, not through SQLite): keep it as it is."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = None
        with self._lock:
            self._content[os.path.abspath(path)] = data

    def content(self, path):
        with self._lock:
            return self._content.get(os.path.abspath(path))


_KEPT = []
