"""Retention and erasure delete only the archived versions the box wrote, on a real S3 server.

A key's older versions need not be what its current one is: a box_id given to a second box
(a new card, a box set up again) put that box's call there first; a damaged copy the box's
own record replaced stays beneath it; evidence someone put under a recording's key. Deleting
every version of the key took them all; only the box's own go now, the others are left and
named in the call's archive status and the log. A version the box put itself goes whatever
it holds: one the store kept damaged (a put cut short, then retried) is still the box's.
What each job did is in the box's audit trail, once, however often it was tried.
"""

import json
import os
import sqlite3

import pytest
from conftest import archive_settings, prepare_box
from test_new_card import destroyed
from test_replication import all_versions, bucket_of, drain, restores_exactly, run_box

from firmware.archive.queue import statuses
from firmware.archive.replicator import Replicator, call_key, recording_key
from firmware.archive.store import Bucket
from firmware.calls.calllog import CallLog
from firmware.clock import SimClock
from firmware.storage.audit import open_audit

pytestmark = pytest.mark.slow

NUMBER = "01632960101"
THEIRS = json.dumps(
    {
        "format": 1,
        "box": "leeds",
        "call_id": 1,
        "line": 2,
        "started_at": "2025-01-06T10:00:00.000Z",
        "number": "01632960999",
        "recordings": [],
    }  # fmt: skip
).encode()
DAMAGED = b'{"format": 1, "box": "leeds", "li'
EVIDENCE = b"evidence kept under this key by the organisation"


def audited(data, *actions):
    """``{action: [(target, details)]}`` of the archive's entries in the box's audit trail."""
    with open_audit(data) as audit:
        return {a: [(e.target, e.details) for e in audit.entries(limit=50, action=a)] for a in actions}


ARCHIVE_ACTIONS = ("archive_copied", "archive_replaced", "archive_deleted", "archive_left")


def bodies(bucket, name, key):
    """Every version of ``key`` as bytes."""
    versions = [v for v in all_versions(bucket.client, name) if v["Key"] == key and "Size" in v]
    return [
        bucket.client.get_object(Bucket=name, Key=key, VersionId=v["VersionId"])["Body"].read()
        for v in versions
    ]


@pytest.fixture
def site(tmp_path, synth, s3, bucket_name, org_keys):
    """Box ``leeds``, one call, archived over another box's call 1 and a damaged copy of it,
    and over evidence under its recording's key: ``(data dir, replicator, bucket, recording key)``."""
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_keys[1], clear_numbers=True)
    run_box(data, synth, NUMBER, n_calls=1)
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    (sha,) = db.execute("SELECT sha256 FROM recordings WHERE call_id = 1").fetchone()
    db.close()
    bucket = bucket_of(s3, bucket_name)
    bucket.put(call_key("leeds", 1), THEIRS)
    bucket.put(call_key("leeds", 1), DAMAGED)
    bucket.put(recording_key("leeds", sha), EVIDENCE, {"sha256": "0" * 64})
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_keys[1], clear_numbers=True))
    try:
        drain(rep)
        assert statuses(rep.calls.raw())[1][0] == "archived"
        assert len(bodies(bucket, bucket_name, call_key("leeds", 1))) == 3
        assert len(bodies(bucket, bucket_name, recording_key("leeds", sha))) == 2
        # One entry for the call's copy, over the damaged record it replaced.
        said = audited(data, *ARCHIVE_ACTIONS)
        assert said["archive_copied"] == [] and said["archive_deleted"] == said["archive_left"] == []
        ((target, details),) = said["archive_replaced"]
        assert target == "call:1" and details["box_id"] == "leeds"
        assert details["put"] == [recording_key("leeds", sha), call_key("leeds", 1)]
        assert details["damaged"].startswith("not JSON, or cut short")
        yield data, rep, bucket, recording_key("leeds", sha)
    finally:
        rep.close()


def test_retention_deletes_only_the_boxs_own_versions(site, bucket_name, caplog):
    data, rep, bucket, rec_key = site
    key = call_key("leeds", 1)
    with caplog.at_level("WARNING", logger="firmware.archive.replicator"):
        rep.forget([destroyed(data, 1)])
        drain(rep)
    # The other box's call, the damaged copy and the evidence are left; the box's record went,
    # and is put again (the recording is still on this box: only its archived copy goes).
    left = bodies(bucket, bucket_name, key)
    assert THEIRS in left and DAMAGED in left and len(left) == 3
    (ours,) = [json.loads(b) for b in left if b not in (THEIRS, DAMAGED)]
    assert ours["line"] == 1 and ours["number"] == NUMBER
    assert bodies(bucket, bucket_name, rec_key) == [EVIDENCE]
    state, reason = statuses(rep.calls.raw())[1]
    assert state == "archived" and "3 archived version(s) not this call's left in the archive" in reason
    assert "another call (line 2, started 2025-01-06T10:00:00.000Z)" in reason
    assert "damaged (not JSON" in reason and rec_key in reason and "its sha256 is " + "0" * 64 in reason
    said = [r.getMessage() for r in caplog.records if "left in the archive" in r.getMessage()]
    assert len(said) == 3 and all("call 1" in m and "box_id leeds" in m for m in said), said
    # In the box's audit trail: what the deletion deleted, and what it left, one entry each.
    said = audited(data, "archive_deleted", "archive_left")
    ((target, deleted),) = said["archive_deleted"]
    assert target == "call:1" and deleted["trigger"] == "retention" and deleted["keys"] == [rec_key, key]
    assert deleted["versions_deleted"] == 2 and deleted["recording_id"]  # the box's recording and record
    ((target, left),) = said["archive_left"]
    assert target == "call:1" and len(left["left"]) == 3
    assert any(v.startswith(rec_key) and "its sha256 is " + "0" * 64 in v for v in left["left"])
    assert any(v.startswith(key) and "another call (line 2" in v for v in left["left"])


def test_erasure_deletes_only_the_boxs_own_versions(site, bucket_name):
    data, rep, bucket, rec_key = site
    key = call_key("leeds", 1)
    log = CallLog(os.path.join(data, "calls.db"), SimClock())
    try:
        log.erase_details(1)
    finally:
        log.close()
    rep.enqueue_erased()
    drain(rep)
    left = bodies(bucket, bucket_name, key)
    assert THEIRS in left and DAMAGED in left and len(left) == 3
    (ours,) = [json.loads(b) for b in left if b not in (THEIRS, DAMAGED)]
    assert ours["number"] is None and ours["line"] == 1
    assert len(bodies(bucket, bucket_name, rec_key)) == 2  # the recording is not the erasure's
    state, reason = statuses(rep.calls.raw())[1]
    assert state == "archived" and "2 archived version(s) not this call's left" in reason
    said = audited(data, "archive_deleted", "archive_left")
    assert [(t, d["trigger"], d["keys"], d["versions_deleted"]) for t, d in said["archive_deleted"]] == [
        ("call:1", "erasure", [key], 1)
    ]
    ((target, left),) = said["archive_left"]
    assert target == "call:1" and len(left["left"]) == 2 and all(v.startswith(key) for v in left["left"])


class Cutting:
    """A boto3 client whose first put of ``key`` reaches the store cut short (a proxy, or the
    store's own fault): the store keeps that damaged version, its ETag not the upload's."""

    def __init__(self, client, key):
        self._client, self.key, self.cut = client, key, False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def put_object(self, **kwargs):
        if kwargs["Key"] == self.key and not self.cut:
            self.cut = True
            kwargs = dict(kwargs, Body=kwargs["Body"][:40])
        return self._client.put_object(**kwargs)


@pytest.mark.parametrize("how", ["erasure", "retention"])
def test_a_damaged_version_the_box_put_itself_is_deleted(tmp_path, synth, s3, bucket_name, org_keys, how):
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_keys[1], clear_numbers=True)
    run_box(data, synth, NUMBER, n_calls=1)
    key = call_key("leeds", 1)
    plain = bucket_of(s3, bucket_name)
    cutting = Bucket(Cutting(plain.client, key), bucket_name)
    settings = archive_settings(s3, bucket_name, "leeds", org_keys[1], clear_numbers=True)
    rep = Replicator(data, settings, bucket=cutting)
    try:
        drain(rep)  # the cut put fails its checksum and is retried
        assert cutting.client.cut and any(len(b) == 40 for b in bodies(plain, bucket_name, key))
        # Audited once, by the attempt that succeeded (over the cut copy), not by the one that failed.
        said = audited(data, "archive_copied", "archive_replaced")
        ((target, replaced),) = said["archive_replaced"]
        assert target == "call:1" and key in replaced["put"] and said["archive_copied"] == []
        if how == "erasure":
            log = CallLog(os.path.join(data, "calls.db"), SimClock())
            try:
                log.erase_details(1)
            finally:
                log.close()
            rep.enqueue_erased()
        else:
            rep.forget([destroyed(data, 1)])
        drain(rep)
        # Nothing in the damaged version shows whose it is; the box remembered it put it.
        (left,) = bodies(plain, bucket_name, key)
        assert json.loads(left)["number"] == (None if how == "erasure" else NUMBER)
        state, reason = statuses(rep.calls.raw())[1]
        assert state == "archived" and "left in the archive" not in (reason or ""), reason
        ((_, deleted),) = audited(data, "archive_deleted")["archive_deleted"]
        assert deleted["versions_deleted"] == (2 if how == "erasure" else 3)  # the recording too
        assert audited(data, "archive_left")["archive_left"] == []
    finally:
        rep.close()


@pytest.mark.parametrize("what", ["record", "recording"])
def test_a_put_that_reached_the_store_cut_short_is_not_taken_as_sent(
    tmp_path, synth, s3, bucket_name, org_keys, what
):
    """The cut version carries the metadata the box sent (the record's content-sha256, the
    recording's sha256), which is what says "already there": the retry passed over it, and
    the archive kept the damaged copy as the call's, its status archived."""
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_keys[1], clear_numbers=True)
    run_box(data, synth, NUMBER, n_calls=1)
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    rows = db.execute("SELECT id, sha256 FROM recordings WHERE call_id = 1").fetchall()
    db.close()
    key = call_key("leeds", 1) if what == "record" else recording_key("leeds", rows[0][1])
    plain = bucket_of(s3, bucket_name)
    cutting = Bucket(Cutting(plain.client, key), bucket_name)
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_keys[1]), bucket=cutting)
    try:
        drain(rep)
        assert cutting.client.cut and statuses(rep.calls.raw())[1][0] == "archived"
    finally:
        rep.close()
    assert len(bodies(plain, bucket_name, key)) == 2  # the cut version, and the one sent again
    if what == "record":
        assert json.loads(plain.get(key))["line"] == 1
    else:
        restores_exactly(plain, "leeds", rows, org_keys[0])


class FailingOnce:
    """A boto3 client whose ``armed`` put of ``key`` finds the store unreachable, once."""

    def __init__(self, client, key):
        self._client, self.key, self.armed, self.failed = client, key, False, False

    def __getattr__(self, name):
        return getattr(self._client, name)

    def put_object(self, **kwargs):
        if kwargs["Key"] == self.key and self.armed and not self.failed:
            from botocore.exceptions import EndpointConnectionError

            self.failed = True
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return self._client.put_object(**kwargs)


def test_a_deletion_retried_is_audited_once_with_every_version_it_deleted(
    tmp_path, synth, s3, bucket_name, org_keys
):
    """The store went away after the versions were deleted, before the record went up again:
    the retry deletes nothing more, and the one entry still counts what the first try did."""
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_keys[1])
    run_box(data, synth, NUMBER, n_calls=1)
    key = call_key("leeds", 1)
    failing = Bucket(FailingOnce(bucket_of(s3, bucket_name).client, key), bucket_name)
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_keys[1]), bucket=failing)
    try:
        drain(rep)
        failing.client.armed = True
        rep.forget([destroyed(data, 1)])
        drain(rep)
        assert failing.client.failed
    finally:
        rep.close()
    said = audited(data, "archive_copied", "archive_deleted")
    assert [t for t, _ in said["archive_copied"]] == ["call:1"]
    ((target, deleted),) = said["archive_deleted"]
    assert target == "call:1" and deleted["versions_deleted"] == 2  # the recording and the record


def test_a_deletion_retried_after_it_was_audited_is_audited_once(site, bucket_name, monkeypatch):
    """Audited before the deletion log: an attempt whose deletion log then failed (calls.db
    locked by the other process) left its archive_deleted entry, and the retry wrote another,
    counting the record it had put again itself, two entries for one deletion."""
    import firmware.archive.replicator as replicator_module

    data, rep, bucket, rec_key = site
    real = replicator_module.deletions.append
    refused = []

    def append(db, row):
        if not refused:
            refused.append(row)
            raise sqlite3.OperationalError("database is locked")
        return real(db, row)

    monkeypatch.setattr(replicator_module.deletions, "append", append)
    rep.forget([destroyed(data, 1)])
    rep.step(ignore_backoff=True)  # deleted and audited; its deletion log refused
    assert refused and rep.pending() == 1
    rep.step(ignore_backoff=True)
    assert rep.pending() == 0
    ((target, deleted),) = audited(data, "archive_deleted")["archive_deleted"]
    assert target == "call:1" and deleted["versions_deleted"] == 2  # the box's recording and record
    assert len(audited(data, "archive_left")["archive_left"]) == 1
