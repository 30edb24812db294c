"""The recordings' catalogue, their recovery after a crash, verification and export.

Each recording is one encrypted segment file under ``DATA_DIR/recordings/``
and one row in the ``recordings`` table of the call log's database. The row
holds the recording's data key wrapped to the box's recording public key;
deleting a recording destroys that row (with ``secure_delete`` on, SQLite
overwrites it) as well as the file — crypto-shredding, since overwriting
flash does not erase it.

Order of writes for a new recording: the intent row (state ``recording``,
wrapped key) is committed, then the file is created, then every chunk is
appended and synced; at the end the row is set ``complete`` with the
duration, size and SHA-256 of the file. At start-up :meth:`RecordingStore.recover`
finishes what a crash cut: every row still ``recording`` becomes ``partial``
(playable up to its last whole chunk, with that duration), and files with
no row are removed.
"""

import hashlib
import os
import sqlite3
import threading
import uuid

from . import crypto
from .errors import LinekeeperError, TamperError
from .recording import codec
from .recording.segment import SegmentReader, inspect

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
"""


class RecordingStore:
    """The ``recordings`` table beside the call log, and the files it names.

    :param data_dir: the box's data directory
    """

    def __init__(self, data_dir):
        self.data_dir = os.fspath(data_dir)
        self.dir = os.path.join(self.data_dir, "recordings")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(os.path.join(self.data_dir, "calls.db"),
                                   check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    def path_of(self, recording_id):
        return os.path.join(self.dir, recording_id + ".lkrec")

    # ------------------------------------------------------------ writing
    def begin(self, call_id, wrapped_key, profile, chunk_ms, started_wall_us, recording_id=None):
        """Commit the intent row of a new recording; returns its id (the file comes next)."""
        recording_id = recording_id or uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO recordings (id, call_id, file, wrapped_key, profile, state, started_at,"
                " chunk_ms) VALUES (?, ?, ?, ?, ?, 'recording', ?, ?)",
                (recording_id, call_id, recording_id + ".lkrec", wrapped_key, profile,
                 started_wall_us, chunk_ms))
        return recording_id

    def finish(self, recording_id, state, duration_s):
        """Record the end of a recording: its state, duration, size and file hash."""
        size, digest = _file_digest(self.path_of(recording_id))
        with self._lock:
            self._db.execute(
                "UPDATE recordings SET state = ?, duration_s = ?, bytes = ?, sha256 = ? WHERE id = ?",
                (state, duration_s, size, digest, recording_id))

    def drop(self, recording_id):
        """Forget a recording that never got a file (creating it failed)."""
        with self._lock:
            self._db.execute("DELETE FROM recordings WHERE id = ? AND state = 'recording'",
                             (recording_id,))

    # ------------------------------------------------------------ reading
    def get(self, recording_id):
        with self._lock:
            cur = self._db.execute("SELECT * FROM recordings WHERE id = ?", (recording_id,))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row)) if row else None

    def for_call(self, call_id):
        """The newest recording of ``call_id`` as a dict, or None."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM recordings WHERE call_id = ? ORDER BY started_at DESC LIMIT 1",
                (call_id,))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row)) if row else None

    def all(self):
        with self._lock:
            cur = self._db.execute("SELECT * FROM recordings ORDER BY started_at, id")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def open_audio(self, recording_id, recording_key):
        """The decrypted audio stream (codec bytes) and whether the file is complete.

        :raises TamperError: the file or its key has been altered
        """
        row = self.get(recording_id)
        if row is None or row["state"] == "deleted":
            raise LinekeeperError("no such recording %s" % recording_id)
        data_key = recording_key.unwrap(row["wrapped_key"], recording_id.encode())
        return SegmentReader(self.path_of(recording_id), data_key).read_all()

    def export(self, recording_id, recording_key, out_path):
        """Write the recording to ``out_path`` as ``.wav`` or ``.ogg`` (as recorded)."""
        row = self.get(recording_id)
        data, _ = self.open_audio(recording_id, recording_key)
        ext = os.path.splitext(out_path)[1].lower()
        if ext == ".wav":
            import wave
            samples = codec.decode(data, row["profile"])
            tmp = out_path + ".tmp"
            with wave.open(tmp, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(8000)
                w.writeframes(samples.tobytes())
            os.replace(tmp, out_path)
        elif ext == codec.file_extension(row["profile"]):
            payload = codec.finalize(data, row["profile"])
            with open(out_path + ".tmp", "wb") as f:
                f.write(payload)
            os.replace(out_path + ".tmp", out_path)
        else:
            raise LinekeeperError("can only export to .wav or %s, not %r"
                                  % (codec.file_extension(row["profile"]), ext or out_path))

    # ------------------------------------------------------------ crash recovery
    def recover(self):
        """Finish what a crash cut short; returns a list of what was done (for the log)."""
        done = []
        for row in self.all():
            if row["state"] != "recording":
                continue
            path = self.path_of(row["id"])
            try:
                info = inspect(path)
            except FileNotFoundError:
                info = None
            except TamperError:
                info = {"chunks": 0, "header": None}
            # Every chunk but the final one holds exactly chunk_ms of audio.
            chunks = info["chunks"] if info and info["header"] else 0
            duration_s = chunks * row["chunk_ms"] / 1000.0
            if info is None:
                with self._lock:
                    self._db.execute("UPDATE recordings SET state = 'partial', duration_s = 0,"
                                     " bytes = 0 WHERE id = ?", (row["id"],))
            else:
                self.finish(row["id"], "partial", duration_s)
            done.append(("partial", row["id"], duration_s))
        known = {row["file"] for row in self.all()}
        for name in os.listdir(self.dir):
            if name not in known:
                os.unlink(os.path.join(self.dir, name))
                done.append(("orphan_removed", name, None))
        return done

    # ------------------------------------------------------------ verification
    def verify(self, recording_key=None):
        """Check every recording; returns a list of problems (empty when all is intact).

        Without a key, each finished file is checked against the size and
        SHA-256 recorded when it was finished. With the recording key every
        chunk is also authenticated.
        """
        problems = []
        for row in self.all():
            if row["state"] == "deleted":
                continue
            path = self.path_of(row["id"])
            rid = row["id"]
            if not os.path.exists(path):
                problems.append("recording %s (call %s): file missing" % (rid, row["call_id"]))
                continue
            if row["state"] in ("complete", "partial") and row["sha256"]:
                size, digest = _file_digest(path)
                if (size, digest) != (row["bytes"], row["sha256"]):
                    problems.append("recording %s (call %s): file changed since it was written"
                                    " (%d bytes, was %d)" % (rid, row["call_id"], size, row["bytes"]))
                    continue
            if recording_key is not None:
                try:
                    _, complete = self.open_audio(rid, recording_key)
                except TamperError as exc:
                    problems.append("recording %s (call %s): %s" % (rid, row["call_id"], exc))
                    continue
                if row["state"] == "complete" and not complete:
                    problems.append("recording %s (call %s): truncated" % (rid, row["call_id"]))
        return problems


def _file_digest(path):
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                h.update(block)
                size += len(block)
    except FileNotFoundError:
        return 0, None
    return size, h.hexdigest()


def new_wrapped_key(public_key, recording_id):
    """A fresh data key and its copy wrapped to the box (bound to ``recording_id``)."""
    data_key = crypto.new_data_key()
    return data_key, crypto.wrap_data_key(data_key, public_key, recording_id.encode())
