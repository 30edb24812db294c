"""The central viewer's accounts: a small user file with Argon2id hashes and roles.

``VIEWER_DIR/users.json`` (mode 0600, written atomically)::

    {"version": 1, "users": {"name": {"hash": "$argon2id$...", "roles": ["supervisor"]}}}

The roles are the box's (:data:`web.accounts.ROLES`): a ``supervisor``
searches, plays and reads reports; an ``auditor`` searches (no audio), reads
reports and the viewer's audit trail; an ``installer`` only sees the sites
and the state of the index. A supervisor also needs a slot of the
organisation key (``linekeeper archive add-user`` makes it): the login
password opens it, so the key is in memory only while they are logged in,
exactly as on a box. No account's file entry opens anything.
"""

import json
import os

from firmware.errors import LinekeeperError
from firmware.storage.fsutil import atomic_write

from .. import passwords
from ..accounts import ROLES, User, name_problem

USERS_FILE = "users.json"


class ArchiveUsers:
    """The user file of one viewer directory; ``cost`` the Argon2id cost of new hashes."""

    def __init__(self, viewer_dir, cost=passwords.DEFAULT_COST):
        self.path = os.path.join(os.fspath(viewer_dir), USERS_FILE)
        self.cost = cost

    def _load(self):
        if not os.path.exists(self.path):
            return {}
        with open(self.path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("users"), dict):
            raise LinekeeperError("%s is not a Linekeeper viewer user file" % self.path)
        return doc["users"]

    def get(self, name):
        """The :class:`~web.accounts.User` called ``name`` (every site's lines), or None."""
        entry = self._load().get(name)
        if entry is None:
            return None
        return User(name, frozenset(entry["roles"]), ())

    def names(self):
        return sorted(self._load())

    def check(self, name, password):
        """The user when ``password`` is theirs, else None (the same time for an unknown name)."""
        entry = self._load().get(name)
        if entry is None:
            passwords.dummy_check(self.cost)
            return None
        if not passwords.check_password(password, entry["hash"]):
            return None
        return User(name, frozenset(entry["roles"]), ())

    def set(self, name, password, roles):
        """Add or replace ``name`` with ``password`` and ``roles``.

        :raises LinekeeperError: a bad name, role or password (named)
        """
        problem = name_problem(name) or passwords.password_problem(password, name)
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            problem = "roles must be some of %s (got %s)" % (", ".join(ROLES), ", ".join(roles) or "none")
        if problem:
            raise LinekeeperError(problem)
        users = self._load()
        users[name] = {"hash": passwords.hash_password(password, self.cost), "roles": sorted(set(roles))}
        data = json.dumps({"version": 1, "users": users}, indent=1, sort_keys=True).encode()
        atomic_write(self.path, data, mode=0o600)
