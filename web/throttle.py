"""Login throttling with exponential back-off, stored server-side in web.db.

Counted per key: ``acct:NAME|IP`` (one account guessed from one place),
``addr:IP`` (one place trying many accounts), ``any:NAME`` (one account
guessed from anywhere), ``setup:IP`` for the setup code and ``recovery:console`` for the
recovery key typed on the box's command line (web.consoleguess: it is no account's). An account's
own counter is per address, so an attacker who fails three times against a
supervisor's account locks out only themselves: the supervisor logs in from
their own desk as usual. After ``free`` attempts each further one doubles the
wait, from 1 s up to 15 min; the account's counter from anywhere lets 20 a
day go, then waits at most a minute: guesses from many addresses (a LAN
hands them out freely) went unthrottled, and a minute is what the real
person waits at worst. On top of the back-off, two lockouts (PCI DSS v4.0
8.3.4) of :data:`LOCKOUT_S` (30 minutes) each, at the :data:`LOCKOUT_AFTER`-th
(10th) failure in a row and again at each failure after, unless an installer
unlocks it sooner (:meth:`Throttle.unlock`, which clears the account's back-off
from every address too):

* ``lockat:NAME|IP``: the account from that address;
* ``lock:NAME``: the account from anywhere, except from an address it logged in
  from in the last :data:`KNOWN_FOR_S` (30 days; ``known:NAME|IP``, kept by
  :meth:`Throttle.succeeded`). One guess every 30 minutes kept the one lockout
  from anywhere going for good, and its owner out with it: now they log in from
  their own desk as usual (:meth:`Throttle.account_keys` leaves ``lock:NAME``
  out there), while the guesser, and anyone from an address the account has not
  logged in from, waits it out. Guesses from the owner's own address meet that
  address's lockout. The trade: someone new to the box, or at another desk,
  is locked out with the guesser until an installer unlocks them.

Both count for any name typed, as ``any:NAME`` does, so a lockout never tells
whether an account has the name. While a key is blocked its attempts are refused
without checking the password (so blocked guesses cost the attacker time, not the
box CPU).

:meth:`Throttle.attempt` checks and counts in one transaction, *before* the
password is checked: 48 guesses sent at once get exactly ``free`` password
checks, not however many ran between a check and a count. A success then
clears the counters (:meth:`Throttle.succeeded`): an address's too, so that a
shared desk where people mistype is not locked out for the day (an attacker
who logs in to an account of their own between guesses resets it as well:
the account's counter from anywhere still bounds the guesses at any one
account); failures older than a day are forgotten, and their rows deleted at the next
attempt (an address an account logged in from, after :data:`KNOWN_FOR_S`). Waits are
dated by the wall clock: one set back since a failure (the network
time correcting a clock that ran fast) makes the wait run from the next attempt for as
long as it was set for, not for the hours the clock went back as well.

Given the box's field cipher, the part of a key after its kind (an account
name and an address) is stored sealed
(:func:`firmware.storage.sealstores.seal_throttle_key`): the seal is
deterministic, so it is still the row's key, and the card alone shows no
address. Before the recorder has left the key since boot (the web UI can
start first) keys are kept as they are; the recorder seals those at its
next start.
"""

import math

from firmware.storage.fieldseal import FieldSealError
from firmware.storage.sealstores import THROTTLE_KEY
from firmware.storage.sealstores import seal_throttle_key as seal_key

BASE_S = 1
MAX_S = 15 * 60
FORGET_AFTER_S = 24 * 3600
LOCKOUT_AFTER = 10
LOCKOUT_S = 30 * 60
# How long an address an account logged in from stays its own (no lockout from anywhere there).
KNOWN_FOR_S = 30 * 24 * 3600
FREE_FAILURES = {
    "acct": 3,
    "user": 3,
    "addr": 10,
    "setup": 5,
    "any": 20,
    "lock": LOCKOUT_AFTER,
    "lockat": LOCKOUT_AFTER,
    "recovery": 5,
}
LONGEST_S = {"any": 60}  # a kind's longest wait, when shorter than MAX_S
# A kind that waits this long at each failure from its free ones.
FIXED_S = {"lock": LOCKOUT_S, "lockat": LOCKOUT_S}
LOCKS = ("lock", "lockat")  # the kinds that are an account's lockout (wait_said, locked_s)
# What a page says of an attempt refused while its account is locked out (wait_said).
LOCKED = "%s is locked after %d failed attempts in a row. Try again in %d minutes, or ask %s to unlock it."


def account_keys(name, address, known=False):
    """The keys a password guess for account ``name`` from ``address`` counts against;
    ``known``: the account logged in from there lately, so its lockout from anywhere is
    left out (:meth:`Throttle.account_keys` tells)."""
    keys = ["acct:%s|%s" % (name[:64], address), "addr:" + address, "any:%s" % name[:64]]
    keys.append("lockat:%s|%s" % (name[:64], address))
    return keys if known else keys + [_lock_key(name)]


def wait_said(throttle, keys, throttled, wait, account="This account", unlocker="an installer"):
    """What a page says of a password (or recovery key) refused unchecked, ``keys`` throttled
    for ``wait`` s: while the account is locked out, the lockout's words (:data:`LOCKED`: the
    ``account`` locked, how long, and that ``unlocker`` can unlock it), else ``throttled``
    (``%d``: the wait). The box's pages and the archive viewer's say it alike. The password was
    not checked: nothing here says whether it was right."""
    locked_s = max((s for kind, s in throttle.locks(keys).items() if kind in LOCKS), default=0)
    if locked_s:
        return LOCKED % (account, LOCKOUT_AFTER, math.ceil(locked_s / 60), unlocker)
    return throttled % wait


def _lock_key(name):
    return "lock:%s" % name[:64]


def _known_key(name, address):
    return "known:%s|%s" % (name[:64], address)


def _block_end(blocked_until_us, last_us, now_us):
    """When a key's wait ends: as stored, unless the wall clock was set back since the
    failure that set it (``last_us`` after ``now_us``, the network time correcting a clock
    that ran fast): then as long from now as it was set for, not the hours the clock went
    back besides (a 30-minute lockout lasted two and a half hours after a 2-hour step)."""
    if last_us <= now_us:
        return blocked_until_us
    return now_us + max(0, blocked_until_us - last_us)


class Throttle:
    """Back-off counters in :class:`web.db.WebDb` ``db``; ``wall_us()`` gives now."""

    def __init__(self, db, wall_us, cipher=None):
        self._db = db
        self._wall_us = wall_us
        self._cipher = cipher

    def _stored(self, keys):
        """``keys`` as the table holds them: sealed after their kind, with a cipher."""
        if self._cipher is None:
            return list(keys)
        try:
            return [seal_key(key, self._cipher) for key in keys]
        except FieldSealError:
            return list(keys)  # no key here yet: counted in clear until the recorder seals them

    def account_keys(self, name, address):
        """:func:`account_keys` of a guess for ``name`` from ``address``: without the lockout
        from anywhere when the account logged in from there in the last :data:`KNOWN_FOR_S`."""
        at_us = self.known_us(name, address)
        known = at_us is not None and self._wall_us() - at_us < KNOWN_FOR_S * 1_000_000
        return account_keys(name, address, known)

    def known_us(self, name, address):
        """When the account ``name`` last logged in from ``address`` (µs, ``known:NAME|IP``,
        kept by :meth:`succeeded`), or None: never, or forgotten since."""
        row = self._db.one(
            "SELECT last_us FROM throttle WHERE key = ?", (self._stored([_known_key(name, address)])[0],)
        )
        return None if row is None else row[0]

    def counted(self, keys):
        """Whether any of ``keys`` has a counter (a failure, or a wait, kept)."""
        return any(self._db.one("SELECT 1 FROM throttle WHERE key = ?", (key,)) for key in self._stored(keys))

    def wait_s(self, keys):
        """Whole seconds until every one of ``keys`` may try again (0: now)."""
        return max(self.locks(keys).values(), default=0)

    def locks(self, keys):
        """``{kind: whole seconds}`` for those of ``keys`` that may not try again now
        (``acct``: the account from this address, ``addr``, ``any``: the account from
        anywhere); empty when none is blocked."""
        now = self._wall_us()
        found = {}
        for key, stored in zip(keys, self._stored(keys), strict=True):
            row = self._db.one("SELECT blocked_until_us, last_us FROM throttle WHERE key = ?", (stored,))
            until = None if row is None else _block_end(row[0], row[1], now)
            if until is not None and until > now:
                kind = key.split(":", 1)[0]
                found[kind] = max(found.get(kind, 0), math.ceil((until - now) / 1e6))
        return found

    def lockout(self, keys):
        """Details for a failed attempt's audit entry when it locked further attempts out:
        which counters (``acct``, ``addr``, ``any``, ``lock``: firmware.words.LOCKOUTS) and
        for how long; empty when it locked nothing.

        Only the failure that begins (or lengthens) a lockout says so: attempts refused while
        it lasts are not checked and not audited one by one, which would let anyone on the
        network write entries as fast as they can send requests. Any lock in force now is
        this attempt's: one already in force refused it before its password was checked."""
        locks = self.locks(keys)
        if not locks:
            return {}
        return {"locked": sorted(locks), "locked_s": max(locks.values())}

    def attempt(self, keys):
        """Check and count one attempt against ``keys``, atomically.

        Returns 0 when the attempt may go ahead (it is counted as a failure
        until :meth:`succeeded` says otherwise), else the whole seconds to
        wait (nothing counted).
        """
        now = self._wall_us()
        keys = self._stored(keys)
        with self._db.tx() as conn:
            worst = 0
            for key in keys:
                row = conn.execute(
                    "SELECT blocked_until_us, last_us FROM throttle WHERE key = ?", (key,)
                ).fetchone()
                if row is None:
                    continue
                until = _block_end(row[0], row[1], now)
                if until != row[0]:  # the clock was set back: the wait runs from now
                    conn.execute(
                        "UPDATE throttle SET blocked_until_us = ?, last_us = ? WHERE key = ?",
                        (until, now, key),
                    )
                if until > now:
                    worst = max(worst, until - now)
            if worst:
                return math.ceil(worst / 1e6)
            self._count(conn, keys, now)
            # Counters forgotten go: each row holds the name typed (perhaps a password, in
            # the wrong field) and an address, and the table would grow with every name tried.
            conn.execute(
                "DELETE FROM throttle WHERE blocked_until_us <= ? AND last_us < "
                "CASE WHEN key LIKE 'known:%' THEN ? ELSE ? END",
                (now, now - KNOWN_FOR_S * 1_000_000, now - FORGET_AFTER_S * 1_000_000),
            )
        return 0

    def failed(self, keys):
        """Count a failure against each of ``keys``."""
        now = self._wall_us()
        with self._db.tx() as conn:
            self._count(conn, self._stored(keys), now)

    @staticmethod
    def _count(conn, keys, now):
        for key in keys:
            row = conn.execute("SELECT failures, last_us FROM throttle WHERE key = ?", (key,)).fetchone()
            failures = 1
            if row is not None and now - row[1] < FORGET_AFTER_S * 1_000_000:
                failures = row[0] + 1
            kind = key.split(":", 1)[0]
            free = FREE_FAILURES[kind]
            blocked_until = now
            if failures >= free and kind in FIXED_S:
                blocked_until = now + FIXED_S[kind] * 1_000_000
            elif failures >= free:
                delay_s = min(LONGEST_S.get(kind, MAX_S), BASE_S * 2 ** min(failures - free, 20))
                blocked_until = now + delay_s * 1_000_000
            conn.execute(
                "INSERT OR REPLACE INTO throttle (key, failures, last_us, "
                "blocked_until_us) VALUES (?, ?, ?, ?)",
                (key, failures, now, blocked_until),
            )

    def locked_s(self, name):
        """Whole seconds until the account ``name`` is no longer locked out, from anywhere
        or from any one address (0: it is not)."""
        now = self._wall_us()
        longest = self.locks([_lock_key(name)]).get("lock", 0)
        for key in self._keys_of("lockat", name):
            row = self._db.one("SELECT blocked_until_us, last_us FROM throttle WHERE key = ?", (key,))
            until = None if row is None else _block_end(row[0], row[1], now)
            if until is not None and until > now:
                longest = max(longest, math.ceil((until - now) / 1e6))
        return longest

    def _keys_of(self, kind, name):
        """The stored keys ``KIND:NAME|ADDRESS`` of the account ``name``, from every address."""
        rows = self._db.query("SELECT key FROM throttle WHERE key LIKE ?", (kind + ":%",))
        return [key for (key,) in rows if self._name_of(key) == name[:64]]

    def unlock(self, name):
        """End the lockout of the account ``name`` (an installer who knows it is the
        person): every counter only failures at that name made goes, its lockouts (from
        anywhere and from each address), its count from anywhere and its back-off from each
        address (``acct:NAME|ADDRESS``), which otherwise still made the person wait at their
        own desk. An address's counter (``addr:``) stays: it counts guesses at every name
        from there, and unlocking one account says nothing of the others; so do the
        addresses it logged in from. True when it was locked."""
        locked = self.locked_s(name) > 0
        with self._db.tx() as conn:
            for key in self._stored([_lock_key(name), "any:%s" % name[:64]]):
                conn.execute("DELETE FROM throttle WHERE key = ?", (key,))
            for kind in ("acct", "lockat"):
                for key in self._keys_of(kind, name):
                    conn.execute("DELETE FROM throttle WHERE key = ?", (key,))
        return locked

    def _name_of(self, key):
        """The account name of a stored ``acct:NAME|ADDRESS`` key (None if it does not open)."""
        rest = key.partition(":")[2]
        if self._cipher is not None:
            rest = self._cipher.open_quietly(rest, THROTTLE_KEY)
        return None if rest is None else rest.rpartition("|")[0]

    def succeeded(self, keys):
        """The password (or recovery key) counted against ``keys`` was right: their counters
        go, and the address of an account's keys is kept as one it logged in from
        (``known:NAME|IP``, for :data:`KNOWN_FOR_S`): the lockout from anywhere does not
        hold there. A lockout from anywhere still running stays for the other addresses
        (left out of the keys of a known address, it is not cleared by its success)."""
        now = self._wall_us()
        known = ["known:" + key.partition(":")[2] for key in keys if key.startswith("acct:")]
        with self._db.tx() as conn:
            for key in self._stored(keys):
                conn.execute("DELETE FROM throttle WHERE key = ?", (key,))
            for key in self._stored(known):
                conn.execute(
                    "INSERT OR REPLACE INTO throttle (key, failures, last_us, blocked_until_us) "
                    "VALUES (?, 0, ?, 0)",
                    (key, now),
                )
