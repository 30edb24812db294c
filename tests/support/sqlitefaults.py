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

from support.sqlitesyncs import _SYNC, WrappingVfs, _IoMethods

SQLITE_IOERR_WRITE = 10 | (3 << 8)
SQLITE_IOERR_FSYNC = 10 | (4 << 8)
_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64)


class SqliteFaults(WrappingVfs):
    """While entered: the ``fail_at``-th write or sync (from 1, once :attr:`armed`) of the
    databases under ``root`` fails, and the ``span - 1`` after it. :attr:`count` counts
    them; :attr:`struck` says which failed first (``(method, file name, count)``)."""

    NAME = b"linekeeper-faults"

    def __init__(self, root, fail_at=None, span=1):
        super().__init__(root)
        self.fail_at = fail_at
        self.span = span
        self.armed = False
        self.count = 0
        self.struck = None

    def _strikes(self, method, f):
        """Whether this call fails (counting it)."""
        if not self.armed or f not in self._files:
            return False
        with self._lock:
            self.count += 1
            if self.fail_at is None or not 0 <= self.count - self.fail_at < self.span:
                return False
            self.struck = self.struck or (method, os.path.basename(self._files[f]), self.count)
            return True

    def _methods_for(self, real):
        real_write, real_sync = _WRITE(real.xWrite), _SYNC(real.xSync)

        def x_write(f, data, amount, offset):
            if self._strikes("write", f):
                return SQLITE_IOERR_WRITE
            return real_write(f, data, amount, offset)

        def x_sync(f, flags):
            if self._strikes("sync", f):
                return SQLITE_IOERR_FSYNC
            return real_sync(f, flags)

        ours = _IoMethods()
        ctypes.pointer(ours)[0] = real
        write, sync = _WRITE(x_write), _SYNC(x_sync)
        ours.xWrite = ctypes.cast(write, ctypes.c_void_p).value
        ours.xSync = ctypes.cast(sync, ctypes.c_void_p).value
        return ours, write, sync, real_write, real_sync
