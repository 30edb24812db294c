"""The archive after the box's signing key changed: a replaced HAT, or another box's key.

A HAT replacement hands the old key over to the new HAT's (docs/evidence.md). The box then
archives its new key with the handover statements, so a central export of a call the old key
sealed still checks with ``verify-export --key NEW``, as the box's own export does. A key
that did not take over from the archived one (another card or box given this box_id) does
not replace it: the calls archived under the box_id still check, and the call is refused,
saying why. Without an S3 server: the box's real replicator into a bucket kept in memory.
"""

import base64
import json
import os
import shutil
import sqlite3

from conftest import archive_settings
from test_export import MemoryBucket, Nowhere, unpacked
from test_export import archived as archived  # the fixture
from test_replication import drain

from firmware.archive.export import export_call
from firmware.archive.replicator import Replicator, signing_key_key
from firmware.handover import append_handover, make_handover
from firmware.manifest import verify_export
from firmware.signing import Signer, fingerprint, read_public_record, write_public_record
from firmware.storage.audit import read_head


def swapped(archived, tmp_path, handover):
    """(data dir, bucket, the new signer): a copy of the archived box whose signing key was
    replaced (with a handover from the old key, or without one), then its call 1 tagged, so
    the replicator puts its record again."""
    data, bucket, _, _ = archived
    data = str(shutil.copytree(data, tmp_path / "box"))
    copy = MemoryBucket()
    copy.objects = dict(bucket.objects)
    old = read_public_record(data)["public_key"]
    new = Signer(os.urandom(32), "vault")
    if handover:
        seq, digest = read_head(os.path.join(data, "audit.head"))
        append_handover(data, make_handover(new, old, seq, digest, 1_772_500_000_000_000))
    write_public_record(data, new)
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    with db:
        db.execute("INSERT INTO call_tags (call_id, tag) VALUES (1, 'complaint')")
    db.close()
    return data, copy, new


def replicate(data, bucket):
    settings = archive_settings(Nowhere, "lk-export", "leeds", _org_public(data))
    rep = Replicator(data, settings, bucket=bucket)
    try:
        drain(rep)
    finally:
        rep.close()


def _org_public(data):
    with open(os.path.join(data, "config.json")) as f:
        return base64.b64decode(json.load(f)["archive"]["org_public_key"])


def test_after_a_hat_replacement_a_central_export_of_a_call_the_old_key_sealed_checks(archived, tmp_path):
    _, _, org_key, record = archived
    data, bucket, new = swapped(archived, tmp_path, handover=True)
    replicate(data, bucket)
    doc = json.loads(bucket.get(signing_key_key("leeds")))
    assert doc["fingerprint"] == new.fingerprint and len(doc["handovers"]) == 1
    body, summary = export_call(bucket, record, org_key, str(tmp_path), "admin", 0, reason="court order 7")
    assert summary["fingerprint"] == new.fingerprint
    path = unpacked(body, tmp_path / "export")
    assert verify_export(path, new.fingerprint)["handovers"] == doc["handovers"]


def test_another_key_under_the_box_id_does_not_replace_the_archived_one(archived, tmp_path):
    _, _, org_key, record = archived
    old_fp = fingerprint(read_public_record(archived[0])["public_key"])
    data, bucket, new = swapped(archived, tmp_path, handover=False)
    before = dict(bucket.objects)
    replicate(data, bucket)
    assert bucket.objects == before
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    state, reason = db.execute("SELECT status, reason FROM archive_status WHERE call_id = 1").fetchone()
    db.close()
    assert state == "failed"
    assert "the archive holds the signing key %s under box_id leeds" % old_fp in reason
    assert "this box's key %s did not take over from it" % new.fingerprint in reason
    assert "give this box a box_id of its own" in reason
    # The archived calls still check with the box's own fingerprint.
    body, _ = export_call(bucket, record, org_key, str(tmp_path), "admin", 0, reason="complaint ref 1234")
    assert verify_export(unpacked(body, tmp_path / "export"), old_fp)
