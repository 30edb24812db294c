"""The central viewer's accounts: a small user file with Argon2id hashes, roles and site grants.

``VIEWER_DIR/users.json`` (mode 0600, written atomically, each change made holding the
``flock`` of ``users.json.lock`` beside it: the viewer and ``linekeeper archive`` both change it)::

    {"version": 1, "users": {"name": {"hash": "$argon2id$...", "roles": ["supervisor"],
                                      "sites": ["leeds", "york"]}}}

``sites`` are the box ids (prefixes in the bucket) whose calls the account may
see, like the box's line grants: a supervisor of ``leeds`` searches, opens,
plays, exports and reports on ``leeds`` only. ``"sites": "all"`` (and an entry
without ``sites``, as written before grants existed) is every site.

The roles are three of the box's (:data:`VIEWER_ROLES`; no ``staff``): a ``supervisor``
searches, plays and reads reports; an ``auditor`` searches (no audio), reads
reports and the viewer's audit trail; an ``installer`` only sees the sites
and the state of the index. A supervisor also needs a slot of the
organisation key (``linekeeper archive add-user`` makes it): the login
password opens it, so the key is in memory only while they are logged in,
exactly as on a box. No account's file entry opens anything.

The box's password rules hold here too (PCI DSS v4.0 8.3, docs/security.md),
with the box's code: each entry keeps the hashes of its previous passwords
(``history``, newest first, never the passwords) so that a new one can be
refused when it is one of the last four (:func:`web.accounts.reused`), and says
why its password must be changed before anything else (``must_change``, a key
of :data:`MUST_CHANGE`): one set at the command line by whoever runs the viewer,
or one from before the rules that the login found breaking them. A change of a
supervisor's password writes two files, the key slot and this one: the new hash
waits in ``pending`` until the slot has it, and the next login settles which
of the two the slot opens with (:meth:`ArchiveUsers.settle`).

An account nobody has used for 90 days is disabled, by the box's rule and code
(:mod:`web.inactive`, PCI DSS v4.0 8.2.6): ``created_us`` (when it was made; one from an
earlier release gets it at its first check), ``disabled_us``/``disabled_why`` (when and
why it was disabled) and ``enabled_us`` (when it was last enabled again:
``linekeeper archive enable-user``). Its days count from its last login in the viewer's
audit trail, else from when it was made, and from when it was enabled if later; the last
enabled installer is never disabled (:meth:`ArchiveUsers.disable_unused`).
"""

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import time

from firmware.archive.settings import BOX_ID
from firmware.errors import LinekeeperError
from firmware.storage.fsutil import atomic_write, file_lock

from .. import inactive, passwords
from ..accounts import ROLES, history_after, name_problem, reused

# The box's roles the viewer has pages for (docs/archive-viewer.md): ``staff``, who make and
# play their own lines' calls on a box, have none here.
VIEWER_ROLES = tuple(r for r in ROLES if r != "staff")

USERS_FILE = "users.json"
# Held (flock) over every change of the user file (:func:`_locked`).
LOCK_SUFFIX = ".lock"
ALL_SITES = "all"
# Why ``linekeeper archive disable-user`` disabled an account (its entry, the login's words).
BY_HAND = "by whoever runs the viewer"
# Why an account's password must be changed before it may use any other page.
MUST_CHANGE = {
    "set_by_other": "Whoever runs the viewer set this password for you: choose your own now, "
    "which only you know.",
    "rules": "Your password was set before the password rules and does not meet them: choose a new one now.",
}


@dataclasses.dataclass(frozen=True)
class ArchiveUser:
    """A viewer account: ``roles`` a frozenset; ``sites`` a frozenset of granted box ids,
    or None for every site."""

    name: str
    roles: frozenset
    sites: frozenset | None
    must_change: str = ""  # a key of MUST_CHANGE: the password must be changed first
    disabled_us: int | None = None  # when it was disabled, or None: enabled
    disabled_why: str = ""  # why (web.inactive.UNUSED_REASON, or BY_HAND)

    def has(self, *roles):
        """True when the user holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    def may_see(self, box):
        """True when site ``box``'s calls are granted to this account."""
        return self.sites is None or box in self.sites

    def sites_text(self):
        return ALL_SITES if self.sites is None else ",".join(sorted(self.sites))


def parse_sites(text):
    """``"all"`` -> None (every site); ``"leeds,york"`` -> a frozenset of box ids.

    :raises LinekeeperError: an empty list or a name that is not a box id (named)
    """
    text = (text or "").strip()
    if text == ALL_SITES:
        return None
    sites = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in sites if not BOX_ID.fullmatch(s)]
    if bad:
        raise LinekeeperError("sites: %r is not a box id (lower-case letters, digits and hyphens)" % bad[0])
    if not sites:
        raise LinekeeperError("sites: give box ids separated by commas, or 'all'")
    return frozenset(sites)


def _user(name, entry):
    sites = entry.get("sites", ALL_SITES)
    return ArchiveUser(
        name,
        frozenset(entry["roles"]),
        None if sites == ALL_SITES else frozenset(sites),
        entry.get("must_change", ""),
        entry.get("disabled_us"),
        entry.get("disabled_why", ""),
    )


def _locked(method):
    """Run ``method``, a read-modify-write of the user file, holding its lock: the viewer
    (logins, its look for unused accounts) and ``linekeeper archive`` (add-user,
    enable-user, ...) change it from two processes, and one's write dropped the other's
    change. ``flock`` is per open file, so a locked method never calls another."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with file_lock(self.path + LOCK_SUFFIX, "the viewer's user file"):
            return method(self, *args, **kwargs)

    return locked


class ArchiveUsers:
    """The user file of one viewer directory; ``cost`` the Argon2id cost of new hashes.

    Every change reads, changes and writes the whole file with its lock held
    (:func:`_locked`), so that changes made at once, in threads or processes, are all kept."""

    def __init__(self, viewer_dir, cost=passwords.DEFAULT_COST, wall_us=None):
        self.path = os.path.join(os.fspath(viewer_dir), USERS_FILE)
        self.cost = cost
        self.wall_us = wall_us or (lambda: time.time_ns() // 1000)

    def _load(self):
        if not os.path.exists(self.path):
            return {}
        with open(self.path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("users"), dict):
            raise LinekeeperError("%s is not a Linekeeper viewer user file" % self.path)
        return doc["users"]

    def get(self, name):
        """The :class:`ArchiveUser` called ``name``, or None."""
        entry = self._load().get(name)
        if entry is None:
            return None
        return _user(name, entry)

    def stamp(self, name):
        """A mark of ``name``'s password (of its hash), or None without the account: a
        session made under another password is over."""
        entry = self._load().get(name)
        if entry is None:
            return None
        return hashlib.sha256(entry["hash"].encode()).hexdigest()[:16]

    def names(self):
        return sorted(self._load())

    def all(self):
        """Every :class:`ArchiveUser`, by name."""
        return [_user(name, entry) for name, entry in sorted(self._load().items())]

    @_locked
    def disable_unused(self, audit_log, now_us=None):
        """Disable every enabled account unused for :data:`web.inactive.UNUSED_DAYS` or more
        but the last enabled installer (:func:`web.inactive.disable_due`: the box's rule),
        each audited in the viewer's trail ``audit_log`` first (``account_disabled``, by
        ``system``); returns the names disabled. An entry from an earlier release, with no
        ``created_us``, has its days counted from now (``now_us``, else the clock's)."""
        now = int(self.wall_us() if now_us is None else now_us)
        users = self._load()
        if any("created_us" not in e for e in users.values()):
            for entry in users.values():
                entry.setdefault("created_us", now)
            self._save(users)
        accounts = [_user(name, entry) for name, entry in sorted(users.items())]
        logins = inactive.unused_days(
            accounts,
            now,
            lambda name: audit_log.last_at("login", name),
            lambda name: users[name].get("created_us"),
            lambda name: users[name].get("enabled_us"),
        )
        if not inactive.due(accounts, logins):
            return []

        def disable(name):
            users[name]["disabled_us"], users[name]["disabled_why"] = now, inactive.UNUSED_REASON
            self._save(users)

        return inactive.disable_due(
            accounts,
            logins,
            lambda name: users[name].get("disabled_us") is None,
            lambda name: self._other_enabled_installer(users, name),
            lambda name, details: audit_log.append("system", "account_disabled", name, details, now),
            disable,
        )

    @staticmethod
    def _other_enabled_installer(users, name):
        return any(
            n != name and e.get("disabled_us") is None and "installer" in e["roles"] for n, e in users.items()
        )

    @_locked
    def disable(self, name, why=BY_HAND):
        """Disable ``name``'s account by hand.

        :raises LinekeeperError: no such account, disabled already, or the last enabled
            installer's (named; nothing changed)"""
        users = self._load()
        entry = users.get(name)
        if entry is None:
            raise LinekeeperError("no viewer account %r" % name)
        if entry.get("disabled_us") is not None:
            raise LinekeeperError("%s is disabled already: nothing to disable" % name)
        if "installer" in entry["roles"] and not self._other_enabled_installer(users, name):
            raise LinekeeperError(
                "%s is the viewer's last enabled installer: enable or add another installer first" % name
            )
        entry["disabled_us"], entry["disabled_why"] = int(self.wall_us()), why
        self._save(users)

    @_locked
    def enable(self, name):
        """Enable ``name``'s disabled account: its unused days count from now.

        :raises LinekeeperError: no such account, or not disabled (nothing changed)"""
        users = self._load()
        entry = users.get(name)
        if entry is None:
            raise LinekeeperError("no viewer account %r" % name)
        if entry.get("disabled_us") is None:
            raise LinekeeperError("%s is not disabled: nothing to enable" % name)
        entry["disabled_us"], entry["disabled_why"] = None, ""
        entry["enabled_us"] = int(self.wall_us())
        self._save(users)

    def check(self, name, password):
        """The user when ``password`` is theirs, else None (the same time for an unknown name)."""
        entry = self._load().get(name)
        if entry is None:
            passwords.dummy_check(self.cost)
            return None
        pending = entry.get("pending")
        if not passwords.check_password(password, entry["hash"]) and not (
            pending and passwords.check_password(password, pending)
        ):
            return None
        return _user(name, entry)

    @_locked
    def settle(self, name, password):
        """After a login with ``password`` (its key slot opened with it, for a supervisor):
        a change cut part way is finished when it was the new password (the slot has it),
        else dropped (the slot kept the old one)."""
        users = self._load()
        entry = users.get(name)
        if entry is None or not entry.get("pending"):
            return
        if passwords.check_password(password, entry["pending"]):
            self._finish(entry)
        else:
            del entry["pending"]
        self._save(users)

    def reused(self, name, password):
        """True when ``password`` is one of ``name``'s last passwords (the box's rule,
        :func:`web.accounts.reused`)."""
        entry = self._load().get(name)
        return entry is not None and reused(password, entry["hash"], entry.get("history", []))

    @_locked
    def require_change(self, name, why):
        """Mark ``name``'s password as one to change before anything else (``why``: a key
        of :data:`MUST_CHANGE`), unless it already is."""
        users = self._load()
        if name in users and not users[name].get("must_change"):
            users[name]["must_change"] = why
            self._save(users)

    @_locked
    def begin_change(self, name, password):
        """The first step of ``name``'s own change of password: its hash waits in ``pending``
        (before a supervisor's key slot is changed; :meth:`finish_change` after)."""
        users = self._load()
        users[name]["pending"] = passwords.hash_password(password, self.cost)
        self._save(users)

    @_locked
    def finish_change(self, name):
        """Put the password :meth:`begin_change` noted in force: the one it replaces joins
        the history, and nothing is left to change."""
        users = self._load()
        self._finish(users[name])
        self._save(users)

    @staticmethod
    def _finish(entry):
        entry["history"] = history_after(entry["hash"], entry.get("history", []))
        entry["hash"] = entry.pop("pending")
        entry["must_change"] = ""

    @staticmethod
    def check_account(name, password, roles, sites=None, rules=True):
        """Raise :class:`LinekeeperError` (named) for what :meth:`set` would refuse
        (``rules`` False: the password's rules are not asked)."""
        problem = name_problem(name) or (passwords.password_problem(password, name) if rules else None)
        bad = [r for r in roles if r not in VIEWER_ROLES]
        if bad or not roles:
            given = ", ".join(roles) or "none"
            problem = "roles must be some of %s (got %s)" % (", ".join(VIEWER_ROLES), given)
        if problem:
            raise LinekeeperError(problem)
        if sites is not None and not sites:
            raise LinekeeperError("sites: give box ids separated by commas, or 'all'")

    @contextlib.contextmanager
    def held(self):
        """Hold the user file's lock over a check and the change it allows, made as one
        step (``linekeeper archive add-user``: a new password checked against the last four,
        then its key slot and the entry): a change from the viewer meanwhile (the person's
        own new password) waits until it is written. Inside, read as usual and write with
        ``set(..., held=True)``: ``flock`` is per open file, and a second lock would wait
        for this one."""
        with file_lock(self.path + LOCK_SUFFIX, "the viewer's user file"):
            yield

    def set(self, name, password, roles, sites=None, must_change="", held=False, rules=True):
        """Add or replace ``name`` with ``password``, ``roles`` and ``sites`` (a set of box
        ids; None: every site). A password new to the account is marked ``must_change`` (a
        key of :data:`MUST_CHANGE`: "set_by_other" when someone else chose it), and the one
        it replaces joins the history; the password it already has keeps its mark.
        ``held``: the caller holds the file's lock already (:meth:`held`). ``rules`` False:
        a password from before the rules (a slot's own, which the caller checked opens it),
        taken as the viewer's login takes one, to be marked ``must_change`` "rules".

        :raises LinekeeperError: a bad name, role or password (named)
        """
        if held:
            self._set(name, password, roles, sites, must_change, rules)
            return
        with file_lock(self.path + LOCK_SUFFIX, "the viewer's user file"):
            self._set(name, password, roles, sites, must_change, rules)

    def _set(self, name, password, roles, sites, must_change, rules=True):
        self.check_account(name, password, roles, sites, rules)
        users = self._load()
        entry = users.get(name, {})
        if not entry or not passwords.check_password(password, entry["hash"]):
            if entry:
                entry["history"] = history_after(entry["hash"], entry.get("history", []))
            entry["hash"] = passwords.hash_password(password, self.cost)
            entry["must_change"] = must_change
        entry.setdefault("created_us", int(self.wall_us()))  # (its unused days count from then)
        entry.pop("pending", None)  # a change cut part way: the password is set anew
        entry["roles"] = sorted(set(roles))
        entry["sites"] = ALL_SITES if sites is None else sorted(sites)
        users[name] = entry
        self._save(users)

    @_locked
    def set_sites(self, name, sites):
        """Grant ``name`` exactly ``sites`` (a set of box ids; None: every site).

        :raises LinekeeperError: no such account, or an empty grant
        """
        if sites is not None and not sites:
            raise LinekeeperError("sites: give box ids separated by commas, or 'all'")
        users = self._load()
        if name not in users:
            raise LinekeeperError("no viewer account %r" % name)
        users[name]["sites"] = ALL_SITES if sites is None else sorted(sites)
        self._save(users)

    def _save(self, users):
        data = json.dumps({"version": 1, "users": users}, indent=1, sort_keys=True).encode()
        atomic_write(self.path, data, mode=0o600)
