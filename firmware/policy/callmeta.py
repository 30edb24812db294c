"""What the policy keeps about a call beside the call log: its tags and a legal hold.

Both live in the call log's database (``calls.db``), in tables of their own:

``call_tags``    (call_id, tag): a call's categories ("regulated",
                 "complaint"), set by scenario, rule or person; retention rules
                 and minimum periods match them
``legal_holds``  one row per call on hold: when and by whom it was placed.
                 A held call's recordings are never deleted, by any rule,
                 minimum period or the overwrite mode

They are tables rather than columns of ``calls`` so that the call log's
writer, which updates its rows all through a call, never races a person
placing a hold, and so that a hold carries who placed it. Placing and
clearing a hold is audited by the caller (the web view or the service that
has the person's name).
"""

import sqlite3

from .retention import check_category

SCHEMA = """
CREATE TABLE IF NOT EXISTS call_tags (
    call_id    INTEGER NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (call_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS call_tags_tag ON call_tags (tag, call_id);
CREATE TABLE IF NOT EXISTS legal_holds (
    call_id    INTEGER PRIMARY KEY,
    placed_at  INTEGER NOT NULL,
    placed_by  TEXT NOT NULL
);
"""


def ensure_schema(db):
    """Create the tables in the open connection ``db`` (to calls.db) if missing."""
    db.executescript(SCHEMA)


def held_since(db):
    """``{call id: when its legal hold was placed (µs since the epoch, UTC)}`` of every call
    on hold, from a call-log connection (empty before any hold was placed)."""
    try:
        return dict(db.execute("SELECT call_id, placed_at FROM legal_holds"))
    except sqlite3.Error:
        return {}


class CallMeta:
    """Tags and legal holds of calls, in the database at ``path`` (calls.db).

    Every write is committed (``synchronous=FULL``) before the method returns.
    """

    def __init__(self, path):
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        ensure_schema(self._db)

    def close(self):
        self._db.close()

    def add_tags(self, call_id, tags):
        """Tag call ``call_id`` with each of ``tags`` (already there: no change).

        :raises ConfigError: a tag is not a valid category name
        """
        tags = list(tags)
        for tag in tags:
            check_category(tag, "tags")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO call_tags (call_id, tag) VALUES (?, ?)",
                [(int(call_id), tag) for tag in tags],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def remove_tag(self, call_id, tag):
        """Take ``tag`` off call ``call_id``; True when it was there."""
        cur = self._db.execute("DELETE FROM call_tags WHERE call_id = ? AND tag = ?", (int(call_id), tag))
        return cur.rowcount > 0

    def tags(self, call_id):
        """The sorted tags of call ``call_id``."""
        rows = self._db.execute(
            "SELECT tag FROM call_tags WHERE call_id = ? ORDER BY tag", (int(call_id),)
        ).fetchall()
        return [r[0] for r in rows]

    def set_legal_hold(self, call_id, on, by, wall_us):
        """Place (``on``) or clear the legal hold on call ``call_id``; True when it changed."""
        if on:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO legal_holds (call_id, placed_at, placed_by) VALUES (?, ?, ?)",
                (int(call_id), int(wall_us), by),
            )
        else:
            cur = self._db.execute("DELETE FROM legal_holds WHERE call_id = ?", (int(call_id),))
        return cur.rowcount > 0

    def note_changed(self, call_id):
        """Note call ``call_id`` for the archive to put its record again (``archive_changed``,
        as the triggers on tags and legal holds do) after a change kept outside the call log
        (a caller's name corrected, in web.db); nothing on a box whose archive never ran."""
        try:
            self._db.execute("INSERT OR IGNORE INTO archive_changed VALUES (?)", (int(call_id),))
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise

    def legal_hold(self, call_id):
        """``{"placed_at", "placed_by"}`` of the hold on ``call_id``, or None."""
        row = self._db.execute(
            "SELECT placed_at, placed_by FROM legal_holds WHERE call_id = ?", (int(call_id),)
        ).fetchone()
        return None if row is None else {"placed_at": row[0], "placed_by": row[1]}

    def held_calls(self):
        """Ids of every call on hold."""
        return [r[0] for r in self._db.execute("SELECT call_id FROM legal_holds ORDER BY call_id")]
