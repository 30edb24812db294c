"""Data schema 3, "audit indexes": the audit trail indexed by who did what and when
(:data:`firmware.storage.audit.INDEXES`), so that the audit page's filters by user and by
date, and their CSV copies, read the entries they show, not the whole trail.

A box four years in service holds about 1.5 million entries: without them, a filter by a
user who left or a date range long ago read every one of them, for each page of 100 (and
a copy of 100 000 entries read them a thousand times over). A new trail has the indexes
from the start; this step builds them on an older one, in one transaction (an old
release reads the trail the same with them, and a rollback puts back the backup, which has
none).
"""

import os
import sqlite3

from firmware.storage.audit import INDEXES

SCHEMA = 3


def apply(data_dir):
    """Build the indexes of ``data_dir``'s audit trail (nothing to do without one)."""
    path = os.path.join(data_dir, "audit.db")
    if not os.path.exists(path):
        return
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        for statement in INDEXES:
            db.execute(statement)
        db.execute("COMMIT")
    finally:
        db.close()
