"""A central export checked offline, without an S3 server: one simulated box's call, its
archived objects kept in memory, exported as the viewer does and verified as an auditor would.

The real store is tests/archive/test_viewer.py's (slow); this one runs in ``make test-fast``.
"""

import base64
import hashlib
import io
import json
import zipfile

import pytest
from conftest import archive_settings, prepare_box
from test_replication import drain

from board.sim.scenario import loads_scenario
from firmware.archive.export import export_call
from firmware.archive.replicator import Replicator, signing_key_key
from firmware.archive.viewer import read_record
from firmware.box import open_sim_box
from firmware.errors import LinekeeperError, TamperError
from firmware.manifest import verify_export
from firmware.signing import fingerprint, read_public_record
from firmware.storage import crypto
from firmware.storage.keystore import RecordingKey


class Nowhere:
    """Settings' endpoint for the box's own replicator: nothing listens (its uploads queue)."""

    endpoint = "http://127.0.0.1:29299"


class MemoryBucket:
    """What the replicator and the export use of a bucket, in a dict."""

    def __init__(self):
        self.objects = {}

    def head(self, key):
        return {"Metadata": self.objects[key][1]} if key in self.objects else None

    def put(self, key, body, metadata=None, lock=None, written=None):
        self.objects[key] = (bytes(body), dict(metadata or {}))
        if written is not None:
            written(None, hashlib.md5(body).hexdigest(), True)

    def get(self, key):
        return self.objects[key][0]

    def keys(self, prefix=""):
        return sorted(k for k in self.objects if k.startswith(prefix))


@pytest.fixture(scope="module")
def archived(tmp_path_factory, synth):
    """(box data dir, bucket, org key, the call record with a recording)."""
    tmp = tmp_path_factory.mktemp("export")
    org_private, org_public = crypto.new_key_pair()
    data = str(tmp / "box")
    prepare_box(data, Nowhere, "lk-export", "leeds", org_public)
    calls = [{"line": 1, "direction": "in", "rings": 1, "talk": 2.0, "at": 1.0,
              "caller_id": {"number": "01632960101"}}]  # fmt: skip
    scenario = json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": calls})
    box = open_sim_box(loads_scenario(scenario), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    bucket = MemoryBucket()
    rep = Replicator(data, archive_settings(Nowhere, "lk-export", "leeds", org_public), bucket=bucket)
    try:
        drain(rep)
    finally:
        rep.close()
    key = RecordingKey(org_private, org_public)
    record = read_record(bucket.get("leeds/calls/0000000001.json"), key)
    assert record["recordings"] and record["recordings"][-1]["signature"]
    return data, bucket, key, record


def unpacked(body, folder):
    zipfile.ZipFile(io.BytesIO(body)).extractall(folder)
    return folder / "recording.lkrec"


def test_an_export_verifies_with_the_fingerprint_and_a_changed_byte_fails(archived, tmp_path):
    data, bucket, key, record = archived
    body, summary = export_call(
        bucket, record, key, str(tmp_path), "admin", 1_772_442_000_000_000, reason="court order ref 77"
    )
    fp = fingerprint(read_public_record(data)["public_key"])
    assert summary["fingerprint"] == fp and summary["recording_id"] == record["recordings"][-1]["id"]
    path = unpacked(body, tmp_path / "ok")
    doc = verify_export(path, fp)
    assert (doc["exported_by"], doc["recording"]["call_id"]) == ("admin", 1)
    # Who, when and why: whoever is handed the zip reads why it was taken.
    assert (doc["exported_at_us"], doc["reason"]) == (1_772_442_000_000_000, "court order ref 77")
    assert not list(tmp_path.glob("*.lkrec"))  # the temporary copy is gone
    # The zip as the viewer gave it is checked as it is, as a box's own zip is.
    (tmp_path / "export.zip").write_bytes(body)
    assert verify_export(tmp_path / "export.zip", fp)["reason"] == "court order ref 77"

    spoilt = bytearray(path.read_bytes())
    spoilt[-1] ^= 1
    path.write_bytes(bytes(spoilt))
    with pytest.raises(TamperError, match="not the recording the box sealed"):
        verify_export(path, fp)


def test_a_manifest_naming_a_file_outside_its_folder_is_refused(archived, tmp_path):
    _, bucket, key, record = archived
    body, summary = export_call(bucket, record, key, str(tmp_path), "admin", 0, reason="complaint ref 1234")
    path = unpacked(body, tmp_path / "x")
    manifest = path.with_name("recording.lkrec.manifest.json")
    doc = json.loads(manifest.read_bytes())
    doc["audio"]["name"] = "../../etc/passwd"
    manifest.write_text(json.dumps(doc))
    with pytest.raises(TamperError, match="outside its folder"):
        verify_export(path, summary["fingerprint"])


def test_a_call_archived_without_the_seal_or_the_key_is_refused_by_name(archived, tmp_path):
    _, bucket, key, record = archived
    unsealed = dict(record, recordings=[dict(r, signature=None) for r in record["recordings"]])
    with pytest.raises(LinekeeperError, match="without the box's seal"):
        export_call(bucket, unsealed, key, str(tmp_path), "admin", 0, reason="complaint ref 1234")
    keyless = MemoryBucket()
    keyless.objects = {k: v for k, v in bucket.objects.items() if k != signing_key_key("leeds")}
    with pytest.raises(LinekeeperError, match="has not archived its public signing key"):
        export_call(keyless, record, key, str(tmp_path), "admin", 0, reason="complaint ref 1234")
    assert base64.b64decode(json.loads(bucket.get(signing_key_key("leeds")))["public_key"])
