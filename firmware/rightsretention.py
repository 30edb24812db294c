"""How long the register of requests keeps a closed request, and the sweep that deletes it.

UK GDPR's storage limitation applies to the register itself: an answered or
refused request still holds who asked, how to reach them and their numbers
(sealed, :mod:`firmware.rights`). It is kept ``requests_closed_days`` after the
day it was closed (:class:`~firmware.policy.retention.RetentionSettings`; six
years by default, the time within which a claim about how the request was
handled may be brought, Limitation Act 1980), then deleted by the retention
sweep (:meth:`firmware.policy.sweeper.RetentionSweeper.sweep`, under the same
clock guard as the recordings). An open, waiting or extended request is never
deleted, whatever its age; a closed one that names a call on legal hold is kept
while the hold stands (the dispute may need to show how the person was answered);
a request and its follow-ups go together, when the last of them is past its period.

A deletion removes the whole row, and the request's corrections of who asked, how to reach
them and their numbers (:meth:`~firmware.rights.RightsRegister.correct`: the old and new values), with
``secure_delete`` on and then checkpoints and truncates the write-ahead log, as the erasure
of a caller's details does, so neither ``rights.db`` nor its WAL keeps the sealed fields. Each is audited
first (``data_request``, ``event`` ``deleted``) with only the request's number,
kind, state and dates: never who asked.

Only the clear columns are read: the recorder deletes without opening the key.
"""

import datetime as dt
import logging
import os
import sqlite3

from .localtime import check_zone
from .rights import CLOSED, FILE

log = logging.getLogger(__name__)


def _past(db, today, days, held):
    """``(doomed, kept)``: the closed requests past their period, as dicts of their clear
    columns (``id``, ``kind``, ``status``, ``received``, ``closed_on``), and those past it
    kept because they, or a request linked to them, name a held call.

    A request and its follow-ups (:meth:`~firmware.rights.RightsRegister.add`,
    ``follows``) go together: only when every one of them is closed and past its period,
    so the answer a follow-up complains of stays as long as the follow-up does.
    """
    cutoff = (today - dt.timedelta(days=days)).isoformat()
    have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    follows = "follows" if "follows" in have else "NULL"
    rows = db.execute(
        "SELECT id, kind, status, received, closed_on, call_ids, %s FROM requests ORDER BY id" % follows
    ).fetchall()
    group = {r[0]: r[0] for r in rows}

    def root(rid):
        while group[rid] != rid:
            rid = group[rid]
        return rid

    for r in rows:
        if r[6] in group:
            group[root(r[0])] = root(r[6])
    entries, past, blocked, on_hold = {}, set(), set(), set()
    for rid, kind, status, received, closed_on, call_ids, _ in rows:
        calls = {int(c) for c in (call_ids or "").split(",") if c.strip().isdigit()}
        if status in CLOSED and closed_on and closed_on < cutoff:
            past.add(rid)
            entries[rid] = {
                "id": rid,
                "kind": kind,
                "status": status,
                "received": received,
                "closed_on": closed_on,
            }
        else:
            blocked.add(root(rid))
        if calls & held:
            on_hold.add(root(rid))
    doomed = [entries[i] for i in sorted(past) if root(i) not in blocked | on_hold]
    kept = [entries[i] for i in sorted(past) if root(i) in on_hold and root(i) not in blocked]
    return doomed, kept


class RegisterRetention:
    """Closed requests past their period in ``DATA_DIR/rights.db``: previewed and deleted.

    :param data_dir: the box's data directory (no register there: nothing to delete)
    :param zone: ``() -> IANA zone name``: the box's time zone, whose dates the
        register's are (UTC when None or not a zone)
    :param held_calls: ``() -> call ids on legal hold`` (None: no holds)
    """

    def __init__(self, data_dir, *, zone=None, held_calls=None):
        self.path = os.path.join(data_dir, FILE)
        self.zone = zone
        self.held_calls = held_calls

    def today(self, wall_us):
        """The box's local date at wall time ``wall_us`` (µs)."""
        try:
            zone = check_zone(self.zone() if self.zone is not None else "UTC")
        except ValueError:
            zone = dt.UTC
        return dt.datetime.fromtimestamp(wall_us / 1e6, zone).date()

    def _held(self):
        return set(self.held_calls()) if self.held_calls is not None else set()

    def preview(self, wall_us, days):
        """``(doomed, kept)`` a sweep at ``wall_us`` would delete and keep for a hold (read-only)."""
        if not os.path.exists(self.path):
            return [], []
        db = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(self.path), uri=True)
        try:
            return _past(db, self.today(wall_us), days, self._held())
        finally:
            db.close()

    def expire(self, wall_us, days, audit):
        """Delete the closed requests past ``days`` at ``wall_us``; ``audit(entry)`` is called
        for each before it goes, so nothing is deleted that the trail does not show (an
        error there or in the deletion deletes nothing, and the next sweep tries again,
        audited again). Returns ``(deleted, kept)``.

        :raises sqlite3.Error: the card refused (nothing deleted)
        """
        if not os.path.exists(self.path):
            return [], []
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        try:
            db.execute("PRAGMA secure_delete=ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                doomed, kept = _past(db, self.today(wall_us), days, self._held())
                for entry in doomed:
                    audit(entry)
                db.executemany("DELETE FROM requests WHERE id = ?", [(e["id"],) for e in doomed])
                # Its corrections hold who asked, how to reach them and their numbers, as they
                # were and became.
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'corrections'").fetchone():
                    db.executemany(
                        "DELETE FROM corrections WHERE request_id = ?", [(e["id"],) for e in doomed]
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if doomed:
                # The deleted rows' pages are zeroed in the WAL; moved into rights.db and the
                # WAL emptied, so no copy of the sealed fields is left in either file.
                busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if busy:
                    log.warning("rights.db checkpoint was busy: the deleted requests stay in its WAL a while")
                log.info("%d closed request(s) deleted from the register after %d days", len(doomed), days)
            return doomed, kept
        finally:
            db.close()
