"""A card that refuses one of SQLite's writes or syncs: an I/O error where SQLite meets the disk.

The box's databases are written by SQLite's C code, out of Python's sight. As
:mod:`support.sqlitesyncs` does to observe their syncs, this puts a VFS in front of
SQLite's default one (``unix``) for the connections this process opens while it is
on, whose files are SQLite's own with two methods changed: ``xWrite`` and ``xSync``
of a file under ``root`` count themselves and, at the count ``fail_at``, return
``SQLITE_IOERR_WRITE`` or ``SQLITE_IOERR_FSYNC`` without touching the file, as
SQLite does when the system call fails. SQLite then fails the statement (or the
checkpoint) as it would on the card; the product code runs unchanged.
"""

import ctypes
import os
import threading

from support.sqlitesyncs import _KEPT, _LIB, _OPEN, _SYNC, _IoMethods, _Vfs

SQLITE_IOERR_WRITE = 10 | (3 << 8)
SQLITE_IOERR_FSYNC = 10 | (4 << 8)
_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64)


class SqliteFaults:
    """While entered: the ``fail_at``-th write or sync (from 1, once :attr:`armed`) of the
    databases under ``root`` fails. :attr:`count` counts them; :attr:`struck` says
    which failed (``(method, file name, count)``)."""

    def __init__(self, root, fail_at=None):
        self.root = os.path.abspath(root)
        self.fail_at = fail_at
        self.armed = False
        self.count = 0
        self.struck = None
        self._lock = threading.Lock()
        self._files = {}
        self._methods = {}
        self._keep = []
        self._vfs = None

    def _strikes(self, method, f):
        """Whether this call fails (counting it)."""
        if not self.armed or f not in self._files:
            return False
        with self._lock:
            self.count += 1
            if self.count != self.fail_at:
                return False
            self.struck = (method, os.path.basename(self._files[f]), self.count)
            return True

    def __enter__(self):
        real = _LIB.sqlite3_vfs_find(None)
        real_open = _OPEN(real.contents.xOpen)
        vfs = _Vfs()
        ctypes.pointer(vfs)[0] = real.contents
        vfs.zName = b"linekeeper-faults"
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
            raise RuntimeError("SQLite refused the fault-injecting VFS")
        return self

    def __exit__(self, *exc):
        _LIB.sqlite3_vfs_unregister(ctypes.byref(self._vfs))
        _KEPT.append(self._keep + [self._vfs, self._methods])  # connections still point at them

    def _wrap(self, file, path):
        methods_at = ctypes.c_void_p.from_address(file)
        if not methods_at.value or not os.path.abspath(path).startswith(self.root + os.sep):
            return
        with self._lock:
            self._files[file] = os.path.abspath(path)
            if methods_at.value not in self._methods:
                real = _IoMethods.from_address(methods_at.value)
                real_write, real_sync = _WRITE(real.xWrite), _SYNC(real.xSync)

                def x_write(f, data, amount, offset, real_write=real_write):
                    if self._strikes("write", f):
                        return SQLITE_IOERR_WRITE
                    return real_write(f, data, amount, offset)

                def x_sync(f, flags, real_sync=real_sync):
                    if self._strikes("sync", f):
                        return SQLITE_IOERR_FSYNC
                    return real_sync(f, flags)

                ours = _IoMethods()
                ctypes.pointer(ours)[0] = real
                write, sync = _WRITE(x_write), _SYNC(x_sync)
                ours.xWrite = ctypes.cast(write, ctypes.c_void_p).value
                ours.xSync = ctypes.cast(sync, ctypes.c_void_p).value
                self._methods[methods_at.value] = (ours, write, sync, real_write, real_sync)
            methods_at.value = ctypes.addressof(self._methods[methods_at.value][0])
