"""The bucket's contents scanned, without an S3 server: everything one simulated box's real
replicator puts (recordings, call records with their clear times and seals, audit heads, the
public signing key) is searched byte for byte for what must never be there in clear.

Never: a key (a recording's data key, the box's wrapped keys, the box's storage or signing
private key), a word of audio (the decrypted chunks), the recording file's clear header, or a
number (the caller's, the dialled one, in national or international form). Numbers appear only
when the installer sets ``clear_numbers``, and then only in the call records' ``number`` field.

The same scan over a real SeaweedFS bucket of three boxes is test_replication.py's (slow).
"""

import base64
import json
import os
import sqlite3

import pytest
from conftest import archive_settings, prepare_box
from test_export import MemoryBucket, Nowhere
from test_replication import drain

from board.sim.scenario import loads_scenario
from firmware.archive import sealing
from firmware.archive.replicator import Replicator
from firmware.archive.viewer import read_record
from firmware.box import open_sim_box
from firmware.recording.segment import SegmentReader
from firmware.signing import KEY_FILE
from firmware.storage import crypto
from firmware.storage.keystore import KeyStore, RecordingKey

CALLER, DIALLED = "01632960101", "01632960977"
NUMBERS = (CALLER, DIALLED)


def run_box(tmp, box_id, org_public, synth, **extra):
    """A box that took one call in and made one out, replicated into a bucket in memory."""
    data = str(tmp / box_id)
    prepare_box(data, Nowhere, "lk-scan", box_id, org_public, **extra)
    calls = [
        {"line": 1, "direction": "in", "rings": 1, "talk": 2.0, "at": 1.0, "caller_id": {"number": CALLER}},
        {"line": 1, "direction": "out", "dial": {"digits": DIALLED}, "talk": 2.0, "at": 12.0},
    ]
    scenario = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": calls}
    box = open_sim_box(loads_scenario(json.dumps(scenario)), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    bucket = MemoryBucket()
    rep = Replicator(data, archive_settings(Nowhere, "lk-scan", box_id, org_public, **extra), bucket=bucket)
    try:
        drain(rep)
    finally:
        rep.close()
    return data, bucket


def number_forms(number):
    """The ways a UK number may be written: 01632 960101, 1632960101, +441632960101."""
    return [number.encode(), number[1:].encode(), ("44" + number[1:]).encode()]


def secrets_of(data, bucket, org_key, tmp):
    """Everything of the box's that must not be in the bucket in clear: its storage and
    signing private keys, each recording's box-wrapped and plain data key, its audio."""
    found = [b"\x89LKREC", b"call_started_us"]
    with KeyStore(data).unlock("admin", "pw-pw-pw-pw") as box_key:
        found.append(bytes(box_key._private))
    seed_path = os.path.join(data, KEY_FILE)
    if os.path.exists(seed_path):
        with open(seed_path, "rb") as f:
            found.append(f.read())
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    try:
        for (wrapped,) in db.execute("SELECT wrapped_key FROM recordings"):
            found += [bytes(wrapped), base64.b64encode(wrapped)]
    finally:
        db.close()
    n_audio = 0
    for key in bucket.keys():
        if "/calls/" not in key:
            continue
        for rec in read_record(bucket.get(key), org_key)["recordings"]:
            data_key = org_key.unwrap(base64.b64decode(rec["org_wrapped_key"]), rec["id"].encode())
            found += [bytes(data_key), base64.b64encode(data_key), bytes(data_key).hex().encode()]
            path = tmp / ("%s.lkrec" % rec["id"])
            path.write_bytes(sealing.restore_recording(bucket.get(rec["key"]), rec["id"], org_key))
            for chunk in SegmentReader(str(path), data_key).chunks():
                # Every 16 bytes of the audio, so no run of it is in the bucket in clear.
                pieces = [bytes(chunk[i : i + 16]) for i in range(0, len(chunk) - 15, 16)]
                found += pieces
                n_audio += len(pieces)
            path.unlink()
    assert n_audio > 200, "too little audio to scan for"
    return found


@pytest.fixture(scope="module")
def org():
    private, public = crypto.new_key_pair()
    return RecordingKey(private, public), public


def _scan(bucket, forbidden, allowed=lambda key, doc: doc):
    """(object key, forbidden bytes) found; ``allowed`` strips from an object what may be there."""
    hits = []
    for key in bucket.keys():
        body = bucket.get(key)
        if key.endswith(".json"):
            body = json.dumps(allowed(key, json.loads(body)), sort_keys=True).encode()
        hits += [(key, word) for word in forbidden if word in body]
    return hits


def test_nothing_in_clear_in_the_bucket(tmp_path, synth, org):
    org_key, org_public = org
    data, bucket = run_box(tmp_path, "leeds", org_public, synth)
    keys = bucket.keys()
    # Every kind of object the box puts is here to be scanned.
    assert any("/recordings/" in k for k in keys) and any("/audit-heads/" in k for k in keys)
    assert "leeds/signing-key.json" in keys and len([k for k in keys if "/calls/" in k]) == 2
    record = json.loads(bucket.get("leeds/calls/0000000001.json"))
    assert record["started_us"] and record["recordings"][0]["signature"] and "number" not in record
    forbidden = secrets_of(data, bucket, org_key, tmp_path)
    forbidden += [w for n in NUMBERS for w in number_forms(n)]
    assert _scan(bucket, forbidden) == []
    # The numbers are there, sealed: the organisation key opens them.
    opened = [read_record(bucket.get(k), org_key)["call"]["number"] for k in keys if "/calls/" in k]
    assert sorted(opened) == sorted(NUMBERS)


def test_clear_numbers_puts_them_in_the_call_records_only(tmp_path, synth, org):
    org_key, org_public = org
    data, bucket = run_box(tmp_path, "york", org_public, synth, clear_numbers=True)
    numbers = [json.loads(bucket.get(k))["number"] for k in bucket.keys() if "/calls/" in k]
    assert sorted(numbers) == sorted(NUMBERS)

    def without_number(key, doc):
        if "/calls/" in key:
            doc = dict(doc, number=None)
        return doc

    forbidden = secrets_of(data, bucket, org_key, tmp_path)
    forbidden += [w for n in NUMBERS for w in number_forms(n)]
    assert _scan(bucket, forbidden, without_number) == []
    # Anywhere else a number would show: without the field stripped, the records hold them.
    assert {k for k, _ in _scan(bucket, number_forms(CALLER))} == {"york/calls/0000000001.json"}
