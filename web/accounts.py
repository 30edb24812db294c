"""Web accounts: names, Argon2id password hashes, roles and granted lines.

Roles (one account may hold several):

``installer``   system settings, lines and users; no audio, no key slot
``supervisor``  search, play, export and legal hold, on the granted lines only
``auditor``     the audit trail; no audio, no key slot
``staff``       a person whose phone is recorded: a read-only "my line" page
                (their granted lines' recording status, what is kept, the
                staff notice) and the concern form; no calls, no audio, no
                alarms, no key slot

Only supervisors have a key slot: an installer-only or auditor account holds
nothing that opens a recording, on the web or at the command line.

There are no default accounts: the first one is made by the setup wizard.

Each account keeps the hashes of its previous passwords (never the passwords),
so that a new one can be refused when it is one of the last
:data:`HISTORY` (PCI DSS v4.0 8.3.7), and says whether its password must be
changed before anything else (:data:`MUST_CHANGE`): one an installer set for
the person (8.3.5), or one from before the box's password rules that the login
found breaking them (8.3.6).

An account may be *disabled* (``disabled_us``, ``disabled_why``): nobody logs in to it
until an installer enables it again, which starts its unused days again (``enabled_us``).
Its password hash is kept marked meanwhile (:data:`web.db.DISABLED_MARK`), so that a release
from before disabled accounts, which ignores those columns, opens nothing with it either.
One unused for 90 days is disabled by the box (PCI DSS v4.0 8.2.6, :mod:`web.inactive`);
an installer may disable one by hand.
"""

import dataclasses
import json
import re

from firmware import words

from . import passwords
from .db import DISABLED_MARK

ROLES = ("installer", "supervisor", "auditor", "staff")
ROLE_LABELS = words.ROLES
# The roles that run or check the box: they see every line's state and the alarms.
OFFICE_ROLES = ("installer", "supervisor", "auditor")
# The roles whose granted lines mean something: a supervisor's calls, a staff member's own
# line. An installer or auditor sees every line's state and alarms, whatever its lines.
LINE_ROLES = ("supervisor", "staff")
_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
# A new password may not be any of the account's last 4, the one in force among them.
HISTORY = 4
# Why an installer's disabling of an account says it was (its audit entry, the Users page).
BY_HAND = "by an installer"
# Why an account's password must be changed before it may use any other page.
MUST_CHANGE = {
    "set_by_other": "An installer set this password for you: choose your own now, which only you know.",
    "rules": "Your password was set before the box's password rules and does not meet them: "
    "choose a new one now.",
}


@dataclasses.dataclass(frozen=True)
class User:
    """An account: ``roles`` a frozenset, ``lines`` a sorted tuple of granted lines."""

    name: str
    roles: frozenset
    lines: tuple
    must_change: str = ""  # a key of MUST_CHANGE: the password must be changed first
    disabled_us: int | None = None  # when it was disabled, or None: enabled
    disabled_why: str = ""  # why (web.inactive.UNUSED_REASON, or BY_HAND)

    def has(self, *roles):
        """True when the user holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    @property
    def needs_key_slot(self):
        """Only supervisors play recordings, so only they hold a key slot."""
        return self.has("supervisor")


def name_problem(name):
    """Why ``name`` cannot be a user name, or None."""
    if not name:
        return "Enter a user name."
    if not _NAME.match(name):
        return (
            "A user name is 1 to 32 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter."
        )
    return None


def who_typed(name, account_of, field="target"):
    """The details naming a user by the ``name`` typed before its password was checked, for
    an audit entry (``field``: the target of a failed login's, ``slot`` on the Rekey page),
    on a box and on the archive viewer alike; ``account_of(name)``: its account, or None.

    A name that is no account is not kept: people type their password into the name
    field, and the trail, append-only and hash-chained, could never let it go again
    (PCI DSS 8.3.2: no password readable in a log); the entry says no account had it."""
    if name and account_of(name) is not None:
        return {field: name}
    return {field: None, "no_account": True}


def _in_force(phc):
    """The hash of an account's password, without the mark of a disabled account."""
    return phc[len(DISABLED_MARK) :] if phc.startswith(DISABLED_MARK) else phc


def _row_user(row):
    roles = frozenset(r for r in row["roles"].split(",") if r)
    lines = tuple(sorted(int(x) for x in row["lines"].split(",") if x))
    return User(row["name"], roles, lines, row["must_change"], row["disabled_us"], row["disabled_why"])


class Accounts:
    """The ``users`` table of :class:`web.db.WebDb`.

    :param wall_us: callable giving now in µs since the epoch
    :param cost: :class:`web.passwords.HashCost` of new hashes
    """

    def __init__(self, db, wall_us, cost=passwords.DEFAULT_COST):
        self._db = db
        self._wall_us = wall_us
        self._cost = cost

    def get(self, name):
        row = self._db.one("SELECT * FROM users WHERE name = ?", (name,))
        return None if row is None else _row_user(row)

    def all(self):
        return [_row_user(r) for r in self._db.query("SELECT * FROM users ORDER BY name")]

    def count(self):
        return self._db.one("SELECT count(*) FROM users")[0]

    def lines(self):
        """``{name: (roles, lines)}`` of every enabled account, as the alarm mails take them
        (:func:`firmware.datadir.account_lines`, :func:`firmware.mail.alarms.recipients_for`):
        an address tied to a disabled one is mailed as one tied to a deleted one."""
        return {u.name: (u.roles, u.lines) for u in self.all() if u.disabled_us is None}

    def created_us(self, name):
        """When the account ``name`` was made (µs since the epoch), or None: no such account."""
        row = self._db.one("SELECT created_us FROM users WHERE name = ?", (name,))
        return None if row is None else int(row[0])

    def enabled_us(self, name):
        """When an installer last enabled ``name``'s account (µs), or None: never disabled
        and enabled again, or no such account."""
        row = self._db.one("SELECT enabled_us FROM users WHERE name = ?", (name,))
        return None if row is None or row[0] is None else int(row[0])

    def disable(self, conn, name, why):
        """Disable ``name``'s account in the transaction ``conn``, saying ``why``; one
        disabled already stays as it was (its date and reason)."""
        conn.execute(
            "UPDATE users SET disabled_us = ?, disabled_why = ?, pw_hash = ? || pw_hash "
            "WHERE name = ? AND disabled_us IS NULL AND substr(pw_hash, 1, ?) != ?",
            (self._wall_us(), why, DISABLED_MARK, name, len(DISABLED_MARK), DISABLED_MARK),
        )
        conn.execute(  # (marked already: by an earlier start, web.db._mark_disabled)
            "UPDATE users SET disabled_us = ?, disabled_why = ? WHERE name = ? AND disabled_us IS NULL",
            (self._wall_us(), why, name),
        )

    def enable(self, conn, name):
        """Enable ``name``'s account in the transaction ``conn``: its unused days count
        from now."""
        conn.execute(
            "UPDATE users SET disabled_us = NULL, disabled_why = '', enabled_us = ?, "
            "pw_hash = CASE WHEN substr(pw_hash, 1, ?) = ? THEN substr(pw_hash, ?) ELSE pw_hash END "
            "WHERE name = ?",
            (self._wall_us(), len(DISABLED_MARK), DISABLED_MARK, len(DISABLED_MARK) + 1, name),
        )

    def verify(self, name, password):
        """The :class:`User` if ``password`` is theirs, else None (same time either way)."""
        row = self._db.one("SELECT * FROM users WHERE name = ?", (name,))
        if row is None:
            passwords.dummy_check(self._cost)
            return None
        if not passwords.check_password(password, _in_force(row["pw_hash"])):
            return None
        return _row_user(row)

    def dummy_check(self):
        """Take as long as :meth:`verify` does, checking nothing (evens out the time of a
        failed login whatever path it took)."""
        passwords.dummy_check(self._cost)

    def create(self, conn, name, password, roles, lines, must_change=""):
        """Insert a validated account inside the transaction ``conn``; ``must_change``: a
        key of :data:`MUST_CHANGE` when someone else chose the password."""
        now = self._wall_us()
        conn.execute(
            "INSERT INTO users (name, pw_hash, roles, lines, created_us, pw_changed_us, must_change) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                passwords.hash_password(password, self._cost),
                _roles_text(roles),
                _lines_text(lines),
                now,
                now,
                must_change,
            ),
        )

    def reused(self, name, password):
        """True when ``password`` is one of ``name``'s last :data:`HISTORY` passwords (the
        one in force and those kept before it)."""
        row = self._db.one("SELECT pw_hash, pw_history FROM users WHERE name = ?", (name,))
        if row is None:
            return False
        return reused(password, _in_force(row["pw_hash"]), json.loads(row["pw_history"]))

    def require_change(self, name, why):
        """Mark ``name``'s password as one to change before anything else (``why``: a key
        of :data:`MUST_CHANGE`), unless it already is."""
        with self._db.tx() as conn:
            conn.execute("UPDATE users SET must_change = ? WHERE name = ? AND must_change = ''", (why, name))

    def update(self, conn, name, roles, lines):
        conn.execute(
            "UPDATE users SET roles = ?, lines = ? WHERE name = ?",
            (_roles_text(roles), _lines_text(lines), name),
        )

    def set_password(self, conn, name, password, must_change=""):
        """Set ``name``'s password in the transaction ``conn``: the hash it replaces joins
        the history; ``must_change`` as for :meth:`create` ("" when the person chose it).
        A disabled account's new hash is marked as its old one was."""
        row = conn.execute(
            "SELECT pw_hash, pw_history, disabled_us FROM users WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return
        history = history_after(_in_force(row["pw_hash"]), json.loads(row["pw_history"]))
        mark = DISABLED_MARK if row["disabled_us"] is not None else ""
        conn.execute(
            "UPDATE users SET pw_hash = ?, pw_changed_us = ?, pw_history = ?, must_change = ? WHERE name = ?",
            (
                mark + passwords.hash_password(password, self._cost),
                self._wall_us(),
                json.dumps(history),
                must_change,
                name,
            ),
        )

    def delete(self, conn, name):
        conn.execute("DELETE FROM users WHERE name = ?", (name,))


def reused(password, current, history):
    """True when ``password`` is one of an account's last :data:`HISTORY` passwords: the
    one in force (hash ``current``) or those before it (``history``, newest first). The
    archive viewer's accounts ask it too (web/archive/users.py)."""
    hashes = [current] + list(history)[: HISTORY - 1]
    return any(passwords.check_password(password, phc) for phc in hashes)


def change_problems(name, old, new, confirm, old_ok, reused):
    """The password form's errors (``{field: sentence}``, empty when none) for ``name``'s
    change of their own password ``old`` to ``new``, typed again as ``confirm``: the box's
    rules, not the password in force, the two alike, and none of the last :data:`HISTORY`
    (``reused(name, new)``), asked last and only when ``old_ok`` (the current password was
    right): each costs a hash check, and it must not tell a guesser anything (PCI DSS
    8.3.7). The box's Account page and the archive viewer's Password page both ask it."""
    problem = passwords.password_problem(new, name)
    if problem:
        return {"new": problem}
    if old_ok and passwords.normalise(new) == passwords.normalise(old):
        return {"new": "That is your current password: choose a new one."}
    if new != confirm:
        return {"confirm": "The two new passwords differ."}
    if old_ok and reused(name, new):
        return {"new": "That is one of your last %d passwords: choose one you have not used here." % HISTORY}
    return {}


def history_after(current, history):
    """The hashes an account keeps once its password ``current`` is replaced: it, then
    ``history``, newest first, as many as :func:`reused` reads."""
    return ([current] + list(history))[: HISTORY - 1]


def _roles_text(roles):
    return ",".join(r for r in ROLES if r in roles)


def _lines_text(lines):
    return ",".join(str(int(x)) for x in sorted(set(lines)))
