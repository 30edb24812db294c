"""Object Lock in compliance mode on a real SeaweedFS bucket made with Object Lock on."""

import datetime
import json
import types

import pytest
from botocore.exceptions import ClientError
from conftest import archive_settings, prepare_box
from test_replication import bucket_of, drain, run_box

from firmware.archive.replicator import Replicator, call_key, recording_key
from firmware.archive.settings import ArchiveSettings
from firmware.errors import ConfigError
from firmware.storage import crypto

pytestmark = pytest.mark.slow


def test_every_object_is_locked_and_a_retention_deletion_waits_for_the_lock(tmp_path, synth, s3):
    client = s3.client()
    client.create_bucket(Bucket="locked-calls", ObjectLockEnabledForBucket=True)
    _, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, s3, "locked-calls", "leeds", org_public, lock_days=2)
    run_box(data, synth, "01632960101", n_calls=1)
    rep = Replicator(data, archive_settings(s3, "locked-calls", "leeds", org_public, lock_days=2))
    try:
        drain(rep)
        (rec_id, sha, call_id, started, duration, size), = rep.calls.query(
            "SELECT id, sha256, call_id, started_at, duration_s, bytes FROM recordings"
        )  # fmt: skip
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
        for key in (recording_key("leeds", sha), call_key("leeds", call_id)):
            version = client.head_object(Bucket="locked-calls", Key=key)["VersionId"]
            retention = client.get_object_retention(Bucket="locked-calls", Key=key, VersionId=version)
            assert retention["Retention"]["Mode"] == "COMPLIANCE"
            assert abs((retention["Retention"]["RetainUntilDate"] - soon).total_seconds()) < 120
            # The store itself refuses to delete it: not the box, not anyone with the keys.
            with pytest.raises(ClientError, match="AccessDenied"):
                client.delete_object(Bucket="locked-calls", Key=key, VersionId=version)

        # Retention on the box destroyed the recording: the archive deletion waits for the lock.
        doomed = types.SimpleNamespace(
            recording_id=rec_id, sha256=sha, call_id=call_id, rule="default", line=1, direction="in",
            categories=(), started_at=started, duration_s=duration, bytes=size,
        )  # fmt: skip
        rep.forget([doomed])
        rep.step(ignore_backoff=True)
        (state, error, next_try), = rep.queue.query(
            "SELECT state, error, next_try FROM jobs WHERE kind = 'delete'"
        )  # fmt: skip
        assert state == "queued" and "locked (Object Lock, compliance mode) until" in error
        assert next_try - rep._monotonic() > 86_400  # not retried before the lock ends
        assert client.head_object(Bucket="locked-calls", Key=recording_key("leeds", sha))
        assert json.loads(bucket_of(s3, "locked-calls").get(call_key("leeds", call_id)))["recordings"]
    finally:
        rep.close()


def test_lock_days_is_checked():
    with pytest.raises(ConfigError, match="lock_days"):
        ArchiveSettings.from_dict({"lock_days": -1})
    with pytest.raises(ConfigError, match="lock_days"):
        ArchiveSettings.from_dict({"lock_days": "30"})
    assert ArchiveSettings.from_dict({"lock_days": 365}).lock_days == 365
