"""Server-side sessions: an opaque random id in the cookie, everything else here.

The cookie holds 256 random bits; the database holds only their SHA-256,
with the user, the session's CSRF token and two times. A session ends at
logout (the row is deleted), after ``idle_timeout_s`` without a request, or
``max_age_s`` after login, whichever comes first.

What must never reach the disk lives in :attr:`Sessions.memory`, keyed the
same way: the user's unlocked :class:`firmware.storage.keystore.RecordingKey`, a
recovery key waiting to be confirmed, the playback tokens and the calls whose page
the session opened (``viewed``, see ``web.views.calls``) and the admin public key of
the keys in force at login (``keys``; see :mod:`web.keyepoch`). It is forgotten when the session ends,
and all of it is gone when the process stops, so the app clears the table at
start-up: a restart logs everyone out.

A rekey ends every session opened under the old keys
(:meth:`Sessions.end_other_keys`); the login page then says why
(:meth:`Sessions.end_reason`).
"""

import contextlib
import dataclasses
import hashlib
import secrets
import threading

REASONS_KEPT = 1000  # why recent sessions were ended, for the login page's message


@dataclasses.dataclass(frozen=True)
class Session:
    id_hash: str
    user: str
    csrf: str
    created_us: int
    seen_us: int


def id_hash(cookie_value):
    return hashlib.sha256(cookie_value.encode("ascii", "replace")).hexdigest()


class Sessions:
    """Sessions in :class:`web.db.WebDb` ``db``; ``wall_us()`` gives now in µs."""

    TOUCH_EVERY_US = 30 * 1_000_000  # spare the SD card a write per request

    def __init__(self, db, wall_us, idle_timeout_s=900, max_age_s=12 * 3600):
        self._db = db
        self._wall_us = wall_us
        self.idle_timeout_us = int(idle_timeout_s * 1_000_000)
        self.max_age_us = int(max_age_s * 1_000_000)
        self._lock = threading.Lock()
        self.memory = {}
        self._reasons = {}  # id hash -> why the box ended that session ("rekey")
        self._recovery_made = 0  # requests making a recovery key for their session now

    def clear_all(self):
        """End every session (at start-up: their in-memory keys are gone). Their keys go
        from memory even when web.db refuses the deletion of their rows (which raises)."""
        try:
            with self._db.tx() as conn:
                conn.execute("DELETE FROM sessions")
        finally:
            self._forget_all()

    def create(self, user, recording_key=None, keys_public=None):
        """A new session for ``user``: returns ``(cookie value, Session)``.

        ``keys_public``: the admin public key in force (bytes, or None before the
        box has keys); ``recording_key``'s own, when given, is the one kept.
        """
        value = secrets.token_urlsafe(32)
        now = self._wall_us()
        session = Session(id_hash(value), user, secrets.token_urlsafe(32), now, now)
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO sessions (id_hash, user, csrf, created_us, seen_us) VALUES (?, ?, ?, ?, ?)",
                (session.id_hash, user, session.csrf, now, now),
            )
        with self._lock:
            self.memory[session.id_hash] = {
                "key": recording_key,
                "recovery": None,
                "playbacks": {},
                "keys": getattr(recording_key, "public_key", None) or keys_public,
            }
        return value, session

    def load(self, cookie_value, touch=True):
        """``(Session or None, expired)`` for a cookie value.

        ``touch`` counts the request as activity (resets the idle timer);
        the pages' own background requests pass False.
        """
        if not cookie_value:
            return None, False
        row = self._db.one("SELECT * FROM sessions WHERE id_hash = ?", (id_hash(cookie_value),))
        if row is None:
            return None, False
        session = Session(**dict(row))
        now = self._wall_us()
        if self._expired(session, now):
            self.end(session.id_hash)
            return None, True
        if touch and now - session.seen_us >= self.TOUCH_EVERY_US:
            with self._db.tx() as conn:
                conn.execute("UPDATE sessions SET seen_us = ? WHERE id_hash = ?", (now, session.id_hash))
            session = dataclasses.replace(session, seen_us=now)
        return session, False

    def _expired(self, session, now):
        return now - session.seen_us > self.idle_timeout_us or now - session.created_us > self.max_age_us

    def end(self, session_id_hash, reason=None):
        """Delete the session and forget its keys; ``reason`` (the box ended it, e.g.
        "rekey") is kept for :meth:`end_reason`."""
        with self._db.tx() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (session_id_hash,))
        self._forget(session_id_hash)
        if reason is not None:
            with self._lock:
                self._reasons[session_id_hash] = reason
                while len(self._reasons) > REASONS_KEPT:
                    self._reasons.pop(next(iter(self._reasons)))

    def end_user(self, user):
        """End every session of ``user`` (deleted, or password changed elsewhere)."""
        rows = self._db.query("SELECT id_hash FROM sessions WHERE user = ?", (user,))
        for row in rows:
            self.end(row["id_hash"])

    def end_other_keys(self, keys_public):
        """End every session opened under other keys than ``keys_public`` (a rekey
        replaced them); returns the users of the sessions ended, one per session.

        Each stale session is taken out of memory under the lock first, so of two
        requests racing here only one ends (and reports) it.
        """
        with self._lock:
            stale = {
                h: self.memory.pop(h)
                for h, mem in list(self.memory.items())
                if mem.get("keys") not in (None, keys_public)
            }
        users = []
        for h, mem in stale.items():
            if mem.get("key") is not None:
                mem["key"].forget()
            row = self._db.one("SELECT user FROM sessions WHERE id_hash = ?", (h,))
            self.end(h, reason="rekey")
            if row is not None:
                users.append(row["user"])
        return users

    def end_reason(self, cookie_value):
        """Why the box ended the session of ``cookie_value`` ("rekey"), once; else None."""
        if not cookie_value:
            return None
        with self._lock:
            return self._reasons.pop(id_hash(cookie_value), None)

    def sweep(self):
        """End the sessions that have expired; returns how many."""
        now = self._wall_us()
        rows = self._db.query(
            "SELECT id_hash FROM sessions WHERE seen_us < ? OR created_us < ?",
            (now - self.idle_timeout_us, now - self.max_age_us),
        )
        for row in rows:
            self.end(row["id_hash"])
        # Memory without a row (a row deleted by another path) goes too.
        live = {r["id_hash"] for r in self._db.query("SELECT id_hash FROM sessions")}
        for stale in [h for h in list(self.memory) if h not in live]:
            self._forget(stale)
        return len(rows)

    def mem(self, session):
        """The in-memory part of ``session`` (a dict; empty if none)."""
        with self._lock:
            return self.memory.setdefault(
                session.id_hash, {"key": None, "recovery": None, "playbacks": {}, "keys": None}
            )

    def recovery_waiting(self):
        """Whether a session holds a recovery key it showed and that was not confirmed yet,
        or one is being made for a session (:meth:`showing_recovery`)."""
        with self._lock:
            return self._recovery_made > 0 or any(mem.get("recovery") for mem in self.memory.values())

    @contextlib.contextmanager
    def showing_recovery(self):
        """While a request makes a recovery key and hands it to its session to be shown
        (the key marked unconfirmed first): :meth:`recovery_waiting` says so."""
        with self._lock:
            self._recovery_made += 1
        try:
            yield
        finally:
            with self._lock:
                self._recovery_made -= 1

    def _forget(self, session_id_hash):
        with self._lock:
            mem = self.memory.pop(session_id_hash, None)
        if mem and mem.get("key") is not None:
            mem["key"].forget()

    def _forget_all(self):
        for h in list(self.memory):
            self._forget(h)
