import os
import shutil
import sys
import tempfile
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from s3server import ACCESS_KEY, SECRET_KEY, S3Server  # noqa: E402

# The session's server: on ports found free, or from this base (and its outage
# tests' own server from 20 above it) where LINEKEEPER_TEST_S3_PORT says.
BASE_PORT = int(os.environ["LINEKEEPER_TEST_S3_PORT"]) if os.environ.get("LINEKEEPER_TEST_S3_PORT") else None


@pytest.fixture(scope="session")
def s3():
    """A real SeaweedFS S3 server for the session (data in a temporary directory)."""
    data = tempfile.mkdtemp(prefix="linekeeper-s3-")
    server = S3Server(data, BASE_PORT).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def bucket_name(s3):
    """A new versioned bucket for one test, deleted with all it holds after it.

    SeaweedFS gives each bucket its own collection of 7 volumes, of the server's
    ``-volume.max``: buckets left behind used them all up after a few dozen tests, and
    every put then failed with InternalError ("failed to find writable volumes")."""
    name = "lk-" + uuid.uuid4().hex[:12]
    client = s3.client()
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    # -s3.allowDeleteBucketNotEmpty (on by default) deletes what the bucket holds with it,
    # and its collection's volumes.
    client.delete_bucket(Bucket=name)


@pytest.fixture
def org_keys():
    from firmware.storage import crypto

    return crypto.new_key_pair()


def archive_settings(s3, bucket, box_id, org_public, **extra):
    import base64

    from firmware.archive.settings import ArchiveSettings

    return ArchiveSettings(
        enabled=True,
        endpoint=s3.endpoint,
        bucket=bucket,
        box_id=box_id,
        access_key_id=ACCESS_KEY,
        verify_tls=False,
        org_public_key=base64.b64encode(org_public).decode(),
        **extra,
    )


def prepare_box(data_dir, s3, bucket, box_id, org_public, **extra):
    """A box data directory with keys, the archive configured and its secret stored."""
    from firmware.archive.queue import write_secret
    from firmware.config import BoxConfig, save_config
    from firmware.storage.keystore import Argon2Params, KeyStore

    os.makedirs(data_dir, exist_ok=True)
    KeyStore(data_dir, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    config = BoxConfig(archive=archive_settings(s3, bucket, box_id, org_public, **extra))
    save_config(data_dir, config)
    write_secret(data_dir, SECRET_KEY)
    return config
