"""The central viewer's index: every site's calls, rebuilt from the bucket alone.

:func:`rebuild_index` lists every ``BOX/calls/*.json`` object in the bucket
and writes one row per call to a SQLite index (replaced atomically, so a
rebuild that fails leaves the old index). With the organisation private key
(held in Argon2id key slots, like a box's: ``linekeeper archive init-org``)
each call record's sealed part is opened, so the caller's number and name
are searchable; without it only what the records hold in clear is indexed.
Losing the index loses nothing: the bucket is the archive.
"""

import base64
import json
import os
import sqlite3

from . import sealing

INDEX_SCHEMA = """
CREATE TABLE calls (
    box          TEXT NOT NULL,
    call_id      INTEGER NOT NULL,
    line         INTEGER,
    direction    TEXT,
    started_at   TEXT,
    ended_at     TEXT,
    answered     INTEGER,
    duration_s   REAL,
    number       TEXT,
    name         TEXT,
    recording_key TEXT,
    recording_sha256 TEXT,
    record_key   TEXT NOT NULL,
    PRIMARY KEY (box, call_id)
);
CREATE INDEX calls_number ON calls (number);
CREATE INDEX calls_started ON calls (started_at);
"""
COLUMNS = (
    "box",
    "call_id",
    "line",
    "direction",
    "started_at",
    "ended_at",
    "answered",
    "duration_s",
    "number",
    "name",
    "recording_key",
    "recording_sha256",
    "record_key",
)


def read_record(body, org_private_key=None):
    """A call record object as a dict; its sealed part opened into ``call`` and ``audit``
    when ``org_private_key`` is given.

    :raises TamperError: the sealed part does not open with that key
    :raises ValueError: not a call record
    """
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise ValueError("not a Linekeeper call record")
    if org_private_key is not None:
        context = ("%s/%d" % (doc["box"], doc["call_id"])).encode()
        private = json.loads(sealing.unseal(base64.b64decode(doc["sealed"]), org_private_key, context))
        doc["call"], doc["audit"] = private["call"], private["audit"]
        doc.setdefault("number", private["call"]["number"])
        doc.setdefault("name", private["call"]["name"])
    return doc


def rebuild_index(bucket, index_path, org_private_key=None):
    """Rebuild the index at ``index_path`` from ``bucket`` (a :class:`~.store.Bucket`).

    Returns ``(calls indexed, records skipped as unreadable)``.
    """
    tmp = index_path + ".new"
    if os.path.exists(tmp):
        os.remove(tmp)
    db = sqlite3.connect(tmp)
    skipped = 0
    try:
        db.executescript(INDEX_SCHEMA)
        n = 0
        for key in bucket.keys():
            parts = key.split("/")
            if len(parts) != 3 or parts[1] != "calls" or not parts[2].endswith(".json"):
                continue
            try:
                doc = read_record(bucket.get(key), org_private_key)
            except (ValueError, KeyError):
                skipped += 1
                continue
            rec = doc["recordings"][-1] if doc.get("recordings") else {}
            db.execute(
                "INSERT OR REPLACE INTO calls VALUES (%s)" % ",".join("?" * len(COLUMNS)),
                (
                    doc["box"],
                    doc["call_id"],
                    doc.get("line"),
                    doc.get("direction"),
                    doc.get("started_at"),
                    doc.get("ended_at"),
                    int(bool(doc.get("answered"))),
                    doc.get("duration_s"),
                    doc.get("number"),
                    doc.get("name"),
                    rec.get("key"),
                    rec.get("sha256"),
                    key,
                ),
            )
            n += 1
        db.commit()
    except BaseException:
        db.close()
        os.remove(tmp)  # the old index stays as it was
        raise
    db.close()
    os.replace(tmp, index_path)
    return n, skipped


def search(index_path, number=None, box=None, limit=1000):
    """Calls in the index (dicts), oldest first; ``number`` matches a trailing part too
    (``960123`` finds ``01632960123``)."""
    db = sqlite3.connect("file:%s?mode=ro" % index_path, uri=True)
    try:
        where, args = [], []
        if number:
            where.append("number LIKE ? ESCAPE '\\'")
            args.append("%" + number.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
        if box:
            where.append("box = ?")
            args.append(box)
        sql = "SELECT %s FROM calls" % ", ".join(COLUMNS)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, box, call_id LIMIT ?"
        return [dict(zip(COLUMNS, r, strict=False)) for r in db.execute(sql, args + [limit])]
    finally:
        db.close()
