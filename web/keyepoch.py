"""Which recording keys are in force, so that sessions opened under older ones end.

A session keeps the recording key its login opened (:mod:`web.sessions`). A
rekey (``linekeeper rekey``, or the rekey page) replaces every key of the box:
the old ones open nothing recorded since, and a session still holding them
would show a new recording as damaged. So every session is tagged with the
admin public key in force when it was opened, and one tagged with another is
ended (the person logs in again and gets the new keys).

A rekey puts its keys in force by renaming a new ``keys/keystore.json`` over
the old one (:mod:`firmware.rekey`); the admin public key names them. The file
is read again only when its identity or size or time changes, so a request
costs one ``stat``.
"""

import os
import threading

from firmware.errors import KeyStoreError, TamperError


class KeysInForce:
    """The admin public key of ``keystore`` (a :class:`firmware.storage.keystore.KeyStore`)."""

    def __init__(self, keystore):
        self._keystore = keystore
        self._lock = threading.Lock()
        self._seen = None  # (inode, mtime ns, size) of the file last read
        self._public = None

    def current(self):
        """The admin public key in force (32 bytes), or None before the box has keys.

        A damaged or unreadable key store keeps the last key read: it is reported
        where it is used (login, playback), and must not log everyone out.
        """
        path = getattr(self._keystore, "path", None)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError:  # unreadable for a moment: the keys last read still stand
            with self._lock:
                return self._public
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._seen:
                try:
                    self._public = bytes(self._keystore.public_key())
                    self._seen = stamp
                except (KeyStoreError, TamperError, OSError):
                    pass
            return self._public
