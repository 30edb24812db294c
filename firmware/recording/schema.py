"""The ``recordings`` table of calls.db.

Apart from :mod:`firmware.recording.store` so that the call log, which
creates every table of its database, need not import the store (the store
reads the call log's tables, and creates them, through
:func:`firmware.calls.calllog.migrate`).
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id          TEXT PRIMARY KEY,
    call_id     INTEGER NOT NULL,
    file        TEXT NOT NULL,
    wrapped_key BLOB,
    profile     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('recording', 'complete', 'partial', 'deleted')),
    started_at  INTEGER NOT NULL,
    duration_s  REAL,
    bytes       INTEGER,
    sha256      TEXT,
    chunk_ms    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_call ON recordings (call_id);
CREATE TABLE IF NOT EXISTS recording_speech (
    recording_id TEXT PRIMARY KEY,
    spans        TEXT NOT NULL
);
"""
