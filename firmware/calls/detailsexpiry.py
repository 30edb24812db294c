"""Callers' details past their retention period in web.db: notes' texts, corrected names.

The retention sweep removes a caller's number and name from the call log once the call
ended ``policy.retention.call_details_days`` ago (:meth:`CallLog.expire_details
<firmware.calls.calllog.CallLog.expire_details>`). The web UI keeps more of them in
``DATA_DIR/web.db``: the text of the call's notes and the names it was corrected to on
request. :func:`expire_web_details` empties those of every call the call log marks
removed, as an erasure on request empties them (an empty text: the note or correction
existed, who made it and when stay), with ``secure_delete`` on and the write-ahead log
checkpointed and truncated. It reads which calls from the call log each time, so a
sweep that could not write web.db (the web UI's lock, a full card) is made good by the
next one. The recorder writes web.db here as it writes the web UI's register of requests
(:mod:`firmware.rightsretention`): both services open it in WAL mode.
"""

import os
import sqlite3

from firmware.calls.corrected import ERASED_NAME

ERASED_NOTE = ""  # as web.phonebook's: no note is ever empty
CHUNK = 500  # call ids per statement (SQLite's parameters stay few)


def expire_web_details(data_dir, expired_of):
    """Empty the notes' texts and corrected names, in ``DATA_DIR/web.db``, of the calls
    ``expired_of(call_ids)`` says had their details removed by retention. Returns
    ``(notes, names)``: how many were emptied ((0, 0) on a box whose web UI never ran).

    :raises sqlite3.Error: web.db refused (nothing of it changed)
    """
    path = os.path.join(os.fspath(data_dir), "web.db")
    if not os.path.exists(path):
        return 0, 0
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"call_notes", "call_corrections"} <= tables:
            return 0, 0
        ids = [
            r[0]
            for r in db.execute(
                "SELECT call_id FROM call_notes WHERE note != ? UNION "
                "SELECT call_id FROM call_corrections WHERE name != ?",
                (ERASED_NOTE, ERASED_NAME),
            )
        ]
        due = sorted(set(expired_of(ids)))
        if not due:
            return 0, 0
        notes = names = 0
        db.execute("PRAGMA secure_delete=ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            for at in range(0, len(due), CHUNK):
                part = due[at : at + CHUNK]
                marks = ",".join("?" * len(part))
                notes += db.execute(
                    "UPDATE call_notes SET note = ? WHERE note != ? AND call_id IN (%s)" % marks,
                    [ERASED_NOTE, ERASED_NOTE] + part,
                ).rowcount
                names += db.execute(
                    "UPDATE call_corrections SET name = ? WHERE name != ? AND call_id IN (%s)" % marks,
                    [ERASED_NAME, ERASED_NAME] + part,
                ).rowcount
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return notes, names
    finally:
        db.close()
