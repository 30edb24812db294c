"""`make bench` section "evidence": what signing costs when a recording is sealed.

Side by side on the same files (issue 19):

* ``seal_ms``: :meth:`RecordingStore.finish` of a 3-minute voice recording
  (180 chunks of 1.6 kB, as the voice profile stores speech) without a
  signer and audit (the baseline: row update, file hash) and with both (the
  statement - the file read again - the Ed25519 signature, the row's
  signature and the ``recording_sealed`` audit entry, synced). ``ratio``
  is with / without.
* ``audit_append_ms``: one audit entry, unsigned and signed (both synced:
  SQLite ``synchronous=FULL`` plus the head file).

Run with ``BENCH_TMP`` on the card for the sync costs to mean anything.
"""

import os
import statistics
import tempfile
import time

from firmware.recording.segment import SegmentWriter
from firmware.recording.store import RecordingStore
from firmware.signing import load_signer
from firmware.storage import crypto
from firmware.storage.audit import AuditLog

CHUNKS = 180
CHUNK_BYTES = 1600


def _recording(store, n):
    rid = store.begin(n, b"w" * 93, "voice", 960, 1_000_000 + n)
    writer = SegmentWriter(
        store.path_of(rid),
        rid,
        crypto.new_data_key(),
        {"call_id": n, "line": 1, "direction": "in", "rate": 8000, "chunk_ms": 1000},
        fsync=False,
    )
    for _ in range(CHUNKS):
        writer.write_chunk(os.urandom(CHUNK_BYTES))
    writer.close()
    return rid


def _seal_ms(tmp, signed, rounds):
    data_dir = tempfile.mkdtemp(dir=tmp)
    audit = signer = None
    if signed:
        signer = load_signer(data_dir)
        audit = AuditLog(
            os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), signer=signer
        )
    store = RecordingStore(
        data_dir,
        signer=signer,
        on_audit=None
        if audit is None
        else (
            lambda action, rid, details: audit.append(
                "system", action, rid and "recording:" + rid, details, 1
            )
        ),
    )
    times = []
    for n in range(rounds):
        rid = _recording(store, n)
        t0 = time.perf_counter()
        store.finish(rid, "complete", 180.0)
        times.append((time.perf_counter() - t0) * 1000)
    store.close()
    if audit is not None:
        audit.close()
    return statistics.median(times)


def _append_ms(tmp, signed, rounds):
    data_dir = tempfile.mkdtemp(dir=tmp)
    log = AuditLog(
        os.path.join(data_dir, "audit.db"),
        os.path.join(data_dir, "audit.head"),
        signer=load_signer(data_dir) if signed else None,
    )
    times = []
    for n in range(rounds):
        t0 = time.perf_counter()
        log.append("sam", "playback", "call:%d" % n, {"line": 1}, n)
        times.append((time.perf_counter() - t0) * 1000)
    log.close()
    return statistics.median(times)


def run(quick=False):
    rounds = 5 if quick else 20
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        plain, signed = _seal_ms(tmp, False, rounds), _seal_ms(tmp, True, rounds)
        a_plain, a_signed = _append_ms(tmp, False, rounds * 5), _append_ms(tmp, True, rounds * 5)
    return {
        "seal_ms": {
            "unsigned": round(plain, 3),
            "signed": round(signed, 3),
            "ratio": round(signed / plain, 2),
        },
        "audit_append_ms": {
            "unsigned": round(a_plain, 3),
            "signed": round(a_signed, 3),
            "ratio": round(a_signed / a_plain, 2),
        },
        "recording": "%d chunks of %d bytes" % (CHUNKS, CHUNK_BYTES),
    }
