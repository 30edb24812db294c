"""The command line's password guesses, counted and locked out with the web login's.

A ``linekeeper`` command proves ``--user`` by their password: one that only needs to know
who runs it (``calls``, ``report``, ``audit-export``, ...), and one that opens their key slot
(``export``, ``sar``, ``rekey``, ``hat-replaced``, ``verify``, ``repair``; ``keystore
restore``, the backup's), all by ``firmware.cli._proven``. Those
guesses were neither counted nor stopped by the account's lockout: whoever could run the
command could try an auditor's password as fast as Argon2id allowed, and an account the web
UI had locked after ten wrong passwords was still tried. They now go through web.db's
``throttle`` table, by :mod:`web.throttle`'s rules and counters: the account's own from
anywhere (``any:NAME``, 20 a day then a wait of at most a minute; ``lock:NAME``, the
lockout from anywhere, 30 minutes at the 10th failure in a row) and the console's, as one
more place guesses come from (``addr:console``: many names tried from there; ``lockat:NAME|
console``, the account's lockout there). A lockout the web began stops the command, and
failures on the command line count towards it, as at a web address, unless the account's
password was right on the command line in the last 30 days (``known:NAME|console``, as the
web keeps the addresses an account logged in from): then the console is a place its owner
uses, and the lockout from anywhere does not hold there (:func:`console_keys`). Without that,
ten wrong passwords sent to the web login from anywhere, and one more every 30 minutes,
kept the owner out of every command on the box's console for good. Counted for any
name typed, as the web counts them: a lockout says nothing of whether an account has it.
The failure that begins a lockout says so (:meth:`Guess.failed`), for its audit entry.

Before the recorder has left the field cipher since boot, a box that seals its personal data
(``storage.key`` on the card) has no key here, and the counters' keys are kept in clear
until the recorder seals them at its start. A name no account has (a password typed as
``--user``, most often) is then not counted by name at all, only as one more failure on the
console (``addr:console``): it would lie on the card in clear until then, and in free pages
after. Whoever runs the command reads web.db, where the accounts are listed, so nothing is
hidden from them by counting it (:meth:`Guess._keys`). A box that does not seal keeps these
in clear, as it keeps the call log and the web login's counters.

A recovery key typed on the command line (``hat-replaced``, ``keystore restore``) is no
account's: its tries count box-wide, against the console's recovery key
(:data:`RECOVERY_KEYS`, ``recovery:console``: five free, then a wait from 1 s doubling to
15 minutes; cleared by the right key, forgotten a day after the last wrong one), by
:func:`recovery_guess`. They were not counted at all: whoever could run the command could
try recovery keys without limit. A mistyped key (its checksum wrong) is no guess at the
key, and is not counted, as on the web's Users page.

The check reads web.db only; a failure is counted (and a success clears the counters) by
the file's owner (the web UI's user): a command run as root (``calls``, ``keystore
backup``) writes as that user for the moment, so the files SQLite makes beside web.db stay
the web UI's to write. A failure that cannot be counted (a read-only card) is logged and
the command refused all the same.
"""

import contextlib
import logging
import os
import sqlite3
import time

from firmware.errors import LinekeeperError
from firmware.storage.fieldseal import KEY_FILE, FieldSealError, load_field_cipher

from .db import WebDb
from .throttle import Throttle, wait_said

log = logging.getLogger("linekeeper")

# Where a guess on the command line comes from, as the web's counters name an address.
CONSOLE = "console"
# How old the console's mark as a place an account is used from may grow before a right
# password writes it again (it is kept for 30 days: web.throttle.KNOWN_FOR_S).
KEEP_KNOWN_US = 24 * 3600 * 1_000_000


def console_keys(throttle, name):
    """The :mod:`web.throttle` keys a password typed for ``name`` on the command line counts
    against, read from ``throttle``: the console's, the account's from anywhere, and its
    lockout from anywhere (``lock:NAME``) unless its password was right on the command line
    in the last 30 days (:meth:`web.throttle.Throttle.account_keys`, the console as its
    address): then its lockout at the console (``lockat:NAME|console``) alone holds there."""
    keys = ["addr:" + CONSOLE, "any:%s" % name[:64], "lockat:%s|%s" % (name[:64], CONSOLE)]
    return keys + [key for key in throttle.account_keys(name, CONSOLE) if key.startswith("lock:")]


# What a recovery key typed on the command line counts against: the box's, from the console.
RECOVERY_KEYS = ["recovery:" + CONSOLE]
RECOVERY_WAIT = (
    "--recovery-key-file: too many wrong recovery keys on this box's command line; wait %d s and try again"
)


class _ReadOnly:
    """web.db opened read-only, with the two reads :class:`web.throttle.Throttle` makes."""

    def __init__(self, path):
        self._db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)

    def one(self, sql, params=()):
        return self._db.execute(sql, params).fetchone()

    def query(self, sql, params=()):
        return self._db.execute(sql, params).fetchall()

    def has_counters(self):
        """Whether web.db has the throttle table (one made by hand, or by a test, may not)."""
        return self.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'throttle'") is not None

    def close(self):
        self._db.close()


def _wall_us():
    return time.time_ns() // 1000


def _cipher(data_dir, run_dir):
    """The field cipher web.db's throttle keys are sealed with, or None: kept in clear, as
    the web UI keeps them until the recorder has left the key (it seals them at its start)."""
    try:
        return load_field_cipher(data_dir, run_dir=run_dir, create=False)
    except (FieldSealError, OSError):
        return None


@contextlib.contextmanager
def _as_owner(path):
    """Run the block with the effective user and group of the file ``path``'s owner when
    root runs it: a journal or WAL file SQLite makes beside it is then theirs, not root's
    (the web UI could no longer write web.db)."""
    st = os.stat(path)
    if os.geteuid() != 0 or st.st_uid == 0:
        yield
        return
    os.setegid(st.st_gid)
    os.seteuid(st.st_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


class Guess:
    """One password typed for ``name`` on the command line, against ``data_dir``'s web.db.

    :meth:`refusal` says whether it may be checked at all; then :meth:`failed` or
    :meth:`succeeded` says how the check went. ``keys`` and ``throttled`` (what a refusal
    says, ``%d`` the wait) are those of a recovery key's (:func:`recovery_guess`) in place of
    ``name``'s password."""

    def __init__(self, data_dir, name, run_dir=None, wall_us=_wall_us, keys=None, throttled=None):
        self._path = os.path.join(data_dir, "web.db")
        self._name = name
        self._fixed = None if keys is None else list(keys)  # None: the account's (console_keys)
        self._throttled = throttled or "--user %s: too many failed attempts; wait %%d s and try again" % name
        self._wall_us = wall_us
        self._cipher = _cipher(data_dir, run_dir)
        # The box seals and this process has no key: a name no account has is not kept.
        self._in_clear = self._cipher is None and os.path.exists(os.path.join(data_dir, KEY_FILE))

    def refusal(self):
        """Why the password may not be checked now (the account locked out, or the
        guesses at it or from the console waiting), in words, or None.

        :raises sqlite3.Error: web.db cannot be read"""
        db = _ReadOnly(self._path)
        try:
            if not db.has_counters():
                return None
            throttle = Throttle(db, self._wall_us, self._cipher)
            keys = self._keys(db, throttle)
            wait = throttle.wait_s(keys)
            if not wait:
                return None
            return wait_said(
                throttle,
                keys,
                self._throttled,
                wait,
                account="--user %s" % self._name,
            ).rstrip(".")
        finally:
            db.close()

    def failed(self):
        """Count the wrong password (or unknown name) against the guess's keys; logged when
        web.db cannot take it (the refusal stands all the same).

        Returns the details of the lockout this failure began or lengthened, for its audit
        entry as the web login's failure says it (:meth:`web.throttle.Throttle.lockout`:
        ``locked``, ``locked_s``), or ``{}``: none, or not counted. Any lock in force now is
        this failure's: one in force before refused the password unchecked (:meth:`refusal`)."""

        def count(db, throttle):
            keys = self._keys(db, throttle)
            throttle.failed(keys)
            return throttle.lockout(keys)

        try:
            return self._write(count)
        except (OSError, sqlite3.Error, LinekeeperError) as exc:
            log.warning("a failed password on the command line was not counted (web.db: %s)", exc)
            return {}

    def succeeded(self):
        """The password was right: the counters it would have added to go (written only
        when there are any: a command proven on a read-only card writes nothing)."""
        db = _ReadOnly(self._path)
        try:
            throttle = Throttle(db, self._wall_us, self._cipher)
            counted = db.has_counters() and throttle.counted(self._keys(db, throttle))
        finally:
            db.close()
        if not counted:
            return
        try:
            self._write(lambda db, throttle: throttle.succeeded(self._keys(db, throttle)))
        except (OSError, sqlite3.Error, LinekeeperError) as exc:
            log.warning(
                "the failed tries of %s on the command line were not cleared (web.db: %s)",
                self._name,
                exc,
            )

    def used_here(self):
        """The account's own password was right and the command goes on in its name: the
        console is kept as a place its owner uses (``known:NAME|console``, for 30 days:
        :func:`console_keys`), as the web keeps an address at a login. Written when it is
        not kept, or was kept more than a day ago (a command run again and again on a
        read-only card tries once a day, logged, and is not refused for it). Not for a
        refused command: a disabled account, a password an installer set."""
        if self._fixed is not None:
            return
        db = _ReadOnly(self._path)
        try:
            if not db.has_counters():
                return
            at_us = Throttle(db, self._wall_us, self._cipher).known_us(self._name, CONSOLE)
        finally:
            db.close()
        if at_us is not None and self._wall_us() - at_us < KEEP_KNOWN_US:
            return
        # Throttle.succeeded keeps the address of an account's own key (acct:NAME|ADDRESS)
        # as one it logged in from; the console counts no such key, so it is named for that.
        known = ["acct:%s|%s" % (self._name[:64], CONSOLE)]
        try:
            self._write(lambda db, throttle: throttle.succeeded(known))
        except (OSError, sqlite3.Error, LinekeeperError) as exc:
            log.warning(
                "the console was not kept as a place %s uses (web.db: %s)",
                self._name,
                exc,
            )

    def _keys(self, db, throttle):
        """The keys the guess counts against, read from ``db`` (web.db) and ``throttle``:
        the console's alone for a name no account has while the keys would be kept in clear
        on a box that seals (the module's docstring)."""
        if self._fixed is not None:
            return self._fixed
        if self._in_clear and db.one("SELECT 1 FROM users WHERE name = ?", (self._name,)) is None:
            return ["addr:" + CONSOLE]
        return console_keys(throttle, self._name)

    def _write(self, change):
        with _as_owner(self._path):
            db = WebDb(self._path)
            try:
                return change(db, Throttle(db, self._wall_us, self._cipher))
            finally:
                db.close()


def recovery_guess(data_dir, run_dir=None, wall_us=_wall_us):
    """A recovery key typed on ``data_dir``'s command line, counted box-wide
    (:data:`RECOVERY_KEYS`), or None: the box has no web.db (not set up) to count it in."""
    if not os.path.exists(os.path.join(data_dir, "web.db")):
        return None
    return Guess(data_dir, "the recovery key", run_dir, wall_us, keys=RECOVERY_KEYS, throttled=RECOVERY_WAIT)
