"""Data schema 4, "password history": web.db's accounts keep the hashes of their previous
passwords (``pw_history``, so that a new password can be refused when it is one of the
last four, PCI DSS v4.0 8.3.7) and say why their password must be changed before
anything else (``must_change``: set by an installer, 8.3.5, or from before the password
rules, 8.3.6). A new web.db has the columns from the start; this step adds them to an
older one, empty (no history, nothing to change: the login finds a password that breaks
the rules), in one transaction. An older release reads the accounts the same with them
(it names the columns it writes), and a rollback puts back the backup, which has none.
"""

import os
import sqlite3

SCHEMA = 4

COLUMNS = (
    ("pw_history", "TEXT NOT NULL DEFAULT '[]'"),
    ("must_change", "TEXT NOT NULL DEFAULT ''"),
)


def apply(data_dir):
    """Add the columns to ``data_dir``'s web.db (nothing to do without one, or its accounts)."""
    path = os.path.join(data_dir, "web.db")
    if not os.path.exists(path):
        return
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        have = {row[1] for row in db.execute("PRAGMA table_info(users)")}
        if have:  # (a web.db made before any account: the web UI makes the table whole)
            for name, kind in COLUMNS:
                if name not in have:
                    db.execute("ALTER TABLE users ADD COLUMN %s %s" % (name, kind))
        db.execute("COMMIT")
    finally:
        db.close()
