"""`make bench` section "archive": what replicating a box's calls costs one core.

A data directory is filled with ended calls, each with a five-minute voice
recording of the voice profile's size (~4 MB/h: 1.1 kB of sealed audio a
second) written by the real segment writer, and replicated to a real S3
server (SeaweedFS's ``weed server -s3`` on 127.0.0.1, as the tests start it)
by :class:`firmware.archive.replicator.Replicator` — queue, sealed header,
sealed call record, checksums, all of it. Side by side, the baseline puts the
same recording files, as they are, with a bare boto3 ``put_object``.

Reported: CPU seconds of this process per recorded hour uploaded, for both,
their ratio, and ``busy_lines_per_core``: how many lines recording all the
time (one recorded hour per hour each) one core keeps replicated (target
≥ 64). CPU is the client's (``time.process_time``); the store runs in its own
process and is not counted. The server listens on ports found free, or from
``BENCH_S3_PORT`` (base..base+3, base+10..base+13).
"""

import base64
import os
import shutil
import sqlite3
import sys
import tempfile
import time

CALL_S = 300
BYTES_PER_S = 1100


def _server(tmp):
    tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    here = os.path.join(tests, "archive")
    sys.path[:0] = [here, tests]
    try:
        from s3server import S3Server

        port = os.environ.get("BENCH_S3_PORT")
        server = S3Server(os.path.join(tmp, "s3"), int(port) if port else None)
    finally:
        sys.path.remove(here)
        sys.path.remove(tests)
    return server.start()


def _fill(data, n_calls, start_us):
    """``n_calls`` ended calls with a recording each, through the box's own storage code."""
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.recording.segment import SegmentWriter
    from firmware.recording.store import RecordingStore
    from firmware.storage.crypto import new_data_key

    CallLog(os.path.join(data, "calls.db"), SimClock()).close()
    store = RecordingStore(data)
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    try:
        for i in range(n_calls):
            t0 = start_us + i * (CALL_S + 10) * 1_000_000
            cur = db.execute(
                "INSERT INTO calls (line, direction, started_at, answered_at, "
                "ended_at, clock_synced, number) VALUES (?, 'in', ?, ?, ?, 1, ?)",
                (1 + i % 64, t0, t0, t0 + CALL_S * 1_000_000, "0163296%04d" % i),
            )
            db.commit()
            rid = store.begin(cur.lastrowid, os.urandom(93), "voice", 1000, t0)
            w = SegmentWriter(
                store.path_of(rid),
                rid,
                new_data_key(),
                {"call_id": cur.lastrowid, "number": "0163296%04d" % i, "rate": 8000, "chunk_ms": 1000},
                fsync=False,
            )
            for _ in range(CALL_S):
                w.write_chunk(os.urandom(BYTES_PER_S - 16))
            w.close()
            store.finish(rid, "complete", float(CALL_S))
    finally:
        db.close()
        store.close()
    return [os.path.join(data, "recordings", f) for f in os.listdir(os.path.join(data, "recordings"))]


def run(quick=False):
    from firmware.archive.queue import write_secret
    from firmware.archive.replicator import Replicator
    from firmware.archive.settings import ArchiveSettings
    from firmware.archive.store import make_client
    from firmware.storage import crypto

    n_calls = 20 if quick else 80
    tmp = tempfile.mkdtemp(prefix="linekeeper-bench-archive-")
    server = _server(tmp)
    try:
        client = make_client(
            server.endpoint, "us-east-1", "linekeeper-test", "linekeeper-test-secret-0123456789", False
        )
        for name in ("bench-base", "bench-archive"):
            client.create_bucket(Bucket=name)
        data = os.path.join(tmp, "box")
        os.makedirs(data)
        files = _fill(data, n_calls, 1_772_442_000_000_000)
        stored = sum(os.path.getsize(f) for f in files)
        hours = n_calls * CALL_S / 3600

        c0, w0 = time.process_time(), time.monotonic()
        for f in files:
            with open(f, "rb") as fh:
                client.put_object(Bucket="bench-base", Key=os.path.basename(f), Body=fh.read())
        base_cpu, base_wall = time.process_time() - c0, time.monotonic() - w0

        write_secret(data, "linekeeper-test-secret-0123456789")
        settings = ArchiveSettings(
            enabled=True,
            endpoint=server.endpoint,
            bucket="bench-archive",
            box_id="bench",
            access_key_id="linekeeper-test",
            verify_tls=False,
            org_public_key=base64.b64encode(crypto.new_key_pair()[1]).decode(),
        )
        rep = Replicator(data, settings)
        try:
            c0, w0 = time.process_time(), time.monotonic()
            while rep.step(ignore_backoff=True) or rep.pending():
                pass
            cpu, wall = time.process_time() - c0, time.monotonic() - w0
            put = rep.stats["objects_put"]
        finally:
            rep.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    per_hour = cpu / hours
    return {
        "calls": n_calls,
        "recorded_hours": round(hours, 2),
        "stored_mb": round(stored / 1e6, 2),
        "objects_put": put,
        "cpu_s_per_recorded_hour": round(per_hour, 3),
        "baseline_cpu_s_per_recorded_hour": round(base_cpu / hours, 3),
        "cpu_ratio_vs_bare_put": round(cpu / base_cpu, 2) if base_cpu else None,
        "wall_s": round(wall, 2),
        "baseline_wall_s": round(base_wall, 2),
        "busy_lines_per_core": int(3600 / per_hour) if per_hour else None,
        "targets": {"busy_lines_per_core": ">= 64"},
    }
