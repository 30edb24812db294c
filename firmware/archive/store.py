"""The bucket, through boto3: verified puts, resumable multipart uploads, deleting the versions a box wrote.

Every upload is checked after the fact: the store's ETag of a single put is
the MD5 of the body, and of a multipart upload the MD5 of its parts' MD5s
followed by ``-N``; each is compared with what was computed locally, so a
body the store holds differently from what was sent is caught.
"""

import datetime
import hashlib
import threading
import time

from ..errors import LinekeeperError


class ArchiveError(LinekeeperError):
    """The archive refused or failed an operation; ``permanent`` when retrying cannot help;
    ``retry_after_s`` when it cannot succeed before then (an Object Lock)."""

    def __init__(self, message, permanent=False, retry_after_s=None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


def lock_args(lock_days, now=None):
    """The put arguments that lock an object in compliance mode for ``lock_days`` (0: none)."""
    if not lock_days:
        return {}
    now = now or datetime.datetime.now(datetime.UTC)
    return {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": now + datetime.timedelta(days=lock_days),
    }


# S3 error codes that no retry will cure (the installer must act).
PERMANENT_CODES = {
    "403",  # a HEAD request's AccessDenied, bad key or signature, or skewed clock
    "RequestTimeTooSkewed",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "AllAccessDisabled",
    "InvalidBucketName",
}


def make_client(endpoint, region, access_key_id, secret, verify_tls, connect_timeout_s=5, read_timeout_s=60):
    """A boto3 S3 client for one store (its own retries off: the replicator's backoff decides)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        verify=verify_tls,
        config=Config(
            retries={"max_attempts": 1},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


# What the installer does about them, in words (a HEAD request's refusal has no body:
# its code is the bare status, "403").
_REFUSALS = {
    "403": "the store refuses this box: its access key or secret is wrong, or the box's clock is off "
    "(every request carries the time)",
    "AccessDenied": "the store refuses this box: its access key may not write to the bucket",
    "InvalidAccessKeyId": "the store does not know this box's access key",
    "SignatureDoesNotMatch": "the store refuses this box's secret: set it again "
    "(linekeeper archive set-secret)",
    "RequestTimeTooSkewed": "the box's clock is too far from the store's: check the box's time server",
    "NoSuchBucket": "the bucket does not exist",
}


def describe(exc):
    """``(message, permanent)`` of an exception a boto3 call raised."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        said = "the store said %s: %s" % (code, exc.response.get("Error", {}).get("Message", ""))
        if code in _REFUSALS:
            said = "%s (%s)" % (_REFUSALS[code], said)
        return said, code in PERMANENT_CODES
    if isinstance(exc, ArchiveError):
        return str(exc), exc.permanent
    if isinstance(exc, BotoCoreError):
        return "cannot reach the store: %s" % (exc,), False
    return "%s: %s" % (type(exc).__name__, exc), False


class Throttle:
    """Keeps the bytes sent under ``kbps`` kilobits/s (0: no limit), on a monotonic clock.

    ``sleep`` and ``monotonic`` are passed in so tests can watch it without waiting.
    """

    def __init__(self, kbps, sleep=time.sleep, monotonic=time.monotonic):
        self.bytes_per_s = kbps * 1000 / 8
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next_free = None

    def take(self, n_bytes):
        """Wait until ``n_bytes`` more may go."""
        if not self.bytes_per_s:
            return
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next_free or now)
            self._next_free = start + n_bytes / self.bytes_per_s
            wait_s = start - now
        if wait_s > 0:
            self._sleep(wait_s)


def _version(version_id):
    """The arguments that name one version of an object (none: the current one)."""
    return {} if version_id is None else {"VersionId": version_id}


def _etag(response):
    return response["ETag"].strip('"')


class Bucket:
    """One bucket of one store: ``client`` a boto3 S3 client."""

    def __init__(self, client, name, throttle=None):
        self.client = client
        self.name = name
        self.throttle = throttle or Throttle(0)

    def head(self, key, version_id=None):
        """The object's metadata (of its version ``version_id``, or the current), or None when
        there is none."""
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.name, Key=key, **_version(version_id))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, key, body, metadata=None, lock=None, written=None):
        """Put ``body`` (bytes) and check the store's ETag is its MD5; ``lock``: the
        :func:`lock_args` to lock it with; ``written(version id, ETag, intact)`` is told the
        version the store made as soon as it answers, before the check (``intact``: its ETag
        is the upload's), so a version it holds otherwise than sent is still known as the one
        this put made, and known damaged.

        :raises ArchiveError: the ETag does not match (the store holds something else)
        """
        md5 = hashlib.md5(body).hexdigest()
        self.throttle.take(len(body))
        response = self.client.put_object(
            Bucket=self.name, Key=key, Body=body, Metadata=metadata or {}, **(lock or {})
        )
        if written is not None:
            written(response.get("VersionId"), _etag(response), _etag(response) == md5)
        if _etag(response) != md5:
            raise ArchiveError(
                "%s: the store's checksum %s is not the upload's %s" % (key, _etag(response), md5)
            )
        return md5

    def upload_multipart(
        self, key, read_part, n_parts, state, metadata=None, stop=None, lock=None, written=None
    ):
        """Upload ``n_parts`` parts (``read_part(i) -> bytes``, i from 1) resumably;
        ``written`` is told the version made, as :meth:`put` tells it.

        ``state`` persists progress: ``state.upload_id`` / ``state.set_upload_id(id)``,
        ``state.parts()`` ``{number: md5}`` done, ``state.part_done(number, md5)``.
        A part the store lists as held with the same ETag is not sent again.

        :raises ArchiveError: a part's or the whole object's checksum does not match
        """
        upload_id = state.upload_id
        if upload_id is None:
            upload_id = self.client.create_multipart_upload(
                Bucket=self.name, Key=key, Metadata=metadata or {}, **(lock or {})
            )["UploadId"]
            state.set_upload_id(upload_id)
        done = state.parts()
        for number in range(1, n_parts + 1):
            if number in done:
                continue
            if stop is not None and stop.is_set():
                raise ArchiveError("stopped mid-upload (resumes at part %d)" % number)
            body = read_part(number)
            md5 = hashlib.md5(body).hexdigest()
            self.throttle.take(len(body))
            response = self.client.upload_part(
                Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            if _etag(response) != md5:
                raise ArchiveError("%s part %d: the store's checksum is not the upload's" % (key, number))
            state.part_done(number, md5)
            done[number] = md5
        parts = [{"PartNumber": n, "ETag": '"%s"' % done[n]} for n in range(1, n_parts + 1)]
        response = self.client.complete_multipart_upload(
            Bucket=self.name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        expected = (
            hashlib.md5(b"".join(bytes.fromhex(done[n]) for n in range(1, n_parts + 1))).hexdigest()
            + "-%d" % n_parts
        )
        if written is not None:
            written(response.get("VersionId"), _etag(response), _etag(response) == expected)
        if _etag(response) != expected:
            raise ArchiveError(
                "%s: the store's checksum %s is not the upload's %s" % (key, _etag(response), expected)
            )
        return expected

    def forget_upload(self, key, upload_id):
        """Abort an unfinished multipart upload (its parts are then dropped by the store)."""
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
        except ClientError:
            pass

    def delete_versions(self, key, ours):
        """Delete the versions of ``key`` this box wrote, and its delete markers (they hold
        nothing); returns ``(how many went, [(version id, why it was left), ...])``.

        ``ours(version_id, etag) -> None | str`` decides each version (``version_id`` None:
        the object of an unversioned bucket): None, it is this box's and goes; else what it
        is instead, and it is left. A key reused by another box (the same box_id), or holding
        evidence someone else put there, keeps what is not this box's.

        :raises ArchiveError: a version is under an Object Lock (``retry_after_s`` says
            how long it has left)
        """
        versions, markers = self._listed(key)
        gone, left = 0, []
        for version_id, etag in versions:
            why = ours(version_id, etag)
            if why is not None:
                left.append((version_id, why))
                continue
            self._delete_version(key, version_id)
            gone += 1
        for version_id in markers:
            self._delete_version(key, version_id)
            gone += 1
        return gone, left

    def versions(self, key):
        """Every version of ``key`` (not its delete markers): ``[(version id, ETag), ...]``;
        the version id is None for the object of an unversioned bucket."""
        return self._listed(key)[0]

    def _listed(self, key):
        versions, markers = [], []
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.name, Prefix=key):
            versions += [(v["VersionId"], _etag(v)) for v in page.get("Versions", []) if v["Key"] == key]
            markers += [m["VersionId"] for m in page.get("DeleteMarkers", []) if m["Key"] == key]
        if not versions and not markers:
            head = self.head(key)
            if head is not None:  # an unversioned bucket lists no versions
                versions = [(None, _etag(head))]
        return versions, markers

    def _delete_version(self, key, version_id):
        from botocore.exceptions import ClientError

        try:
            if version_id is None:
                self.client.delete_object(Bucket=self.name, Key=key)
            else:
                self.client.delete_object(Bucket=self.name, Key=key, VersionId=version_id)
        except ClientError as exc:
            if version_id is not None:
                self._locked(exc, key, version_id)
            raise

    def _locked(self, exc, key, version_id):
        """Raise :class:`ArchiveError` with the time left when ``exc`` (a refused delete) is
        an Object Lock's doing; return when it is not."""
        from botocore.exceptions import ClientError

        if exc.response.get("Error", {}).get("Code") != "AccessDenied":
            return
        try:
            retention = self.client.get_object_retention(Bucket=self.name, Key=key, VersionId=version_id)
        except ClientError:
            return
        until = retention.get("Retention", {}).get("RetainUntilDate")
        if until is None:
            return
        left_s = (until - datetime.datetime.now(datetime.UTC)).total_seconds()
        if left_s > 0:
            raise ArchiveError(
                "%s is locked (Object Lock, compliance mode) until %s: deleted then"
                % (key, until.strftime("%Y-%m-%dT%H:%M:%SZ")),
                retry_after_s=left_s + 60,
            ) from None

    def keys(self, prefix=""):
        """Every current object key under ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def get(self, key, version_id=None):
        """The object's bytes (of its version ``version_id``, or the current).

        :raises ArchiveError: it is not in the bucket (removed, or never there)
        """
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.name, Key=key, **_version(version_id))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ArchiveError("%s is not in the bucket (removed, or never archived)" % key) from None
            raise
