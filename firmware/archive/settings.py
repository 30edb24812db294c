"""The archive settings: ``config.json``'s ``archive`` section, typed and validated.

Example (defaults shown unless marked)::

    "archive": {
      "version": 1,
      "enabled": false,
      "endpoint": "https://s3.eu-west-2.amazonaws.com",            (example)
      "region": "us-east-1",
      "bucket": "acme-calls",                                        (example)
      "box_id": "leeds-1",                                           (example)
      "verify_tls": true,
      "access_key_id": "AKIA...",                                    (example)
      "org_public_key": "base64 of 32 bytes",                        (example)
      "bandwidth_kbps": 0,
      "part_size_mb": 8,
      "clear_numbers": false,
      "lock_days": 0
    }

The secret access key is never in ``config.json`` (which ``linekeeper config
export`` copies off the box): it is in ``DATA_DIR/archive.secret``, sealed, readable
by the box's services only (see :func:`firmware.archive.queue.read_secret` and docs/archive.md).
"""

import base64
import binascii
import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from ..errors import ConfigError

ARCHIVE_VERSION = 1
BOX_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
MIN_PART_MB = 5  # S3's smallest part but the last
MAX_LOCK_DAYS = 36_500  # S3's own limit on a retention period is 100 years


@dataclass(frozen=True)
class ArchiveSettings:
    """Where and how a box replicates its calls.

    ``enabled``        replicate at all (off: nothing is queued)
    ``endpoint``       the S3 API's URL (http:// only for a store on this host)
    ``region``         the S3 region name the store expects
    ``bucket``         the bucket every box of the organisation shares
    ``box_id``         this box's prefix in the bucket (lower-case letters,
                       digits, hyphens): distinct for every box
    ``verify_tls``     check the store's certificate (off only for a test store)
    ``access_key_id``  the S3 access key id (the secret is in ``archive.secret``)
    ``org_public_key`` the organisation archive X25519 public key (base64): every
                       recording's data key and every call record is also sealed to it
    ``bandwidth_kbps`` the most the uploader sends, kilobits/s (0: no limit)
    ``part_size_mb``   multipart part size, MiB; larger files go up in parts, resumably
    ``clear_numbers``  also put the caller's number and name in clear in the call
                       record (off: only sealed to the organisation key)
    ``lock_days``      S3 Object Lock in compliance mode: every object put is locked for
                       this many days, so nobody (not the box, not the store's admin) can
                       delete or overwrite it before then; needs a bucket made with Object
                       Lock on. 0: no lock. A retention deletion waits for the lock to end.
    """

    version: int = ARCHIVE_VERSION
    enabled: bool = False
    endpoint: str = None
    region: str = "us-east-1"
    bucket: str = None
    box_id: str = None
    verify_tls: bool = True
    access_key_id: str = None
    org_public_key: str = None
    bandwidth_kbps: int = 0
    part_size_mb: int = 8
    clear_numbers: bool = False
    lock_days: int = 0

    def __post_init__(self):
        if self.version != ARCHIVE_VERSION:
            raise ConfigError("unsupported archive version %r" % (self.version,), field="version")
        for name in ("enabled", "verify_tls", "clear_numbers"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError("must be true or false", field=name)
        for name in ("bandwidth_kbps", "part_size_mb", "lock_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError("must be a whole number", field=name)
        if not 0 <= self.bandwidth_kbps <= 10_000_000:
            raise ConfigError("must be from 0 (no limit) to 10000000 kbit/s", field="bandwidth_kbps")
        if not 0 <= self.lock_days <= MAX_LOCK_DAYS:
            raise ConfigError("must be from 0 (no lock) to %d days" % MAX_LOCK_DAYS, field="lock_days")
        if not MIN_PART_MB <= self.part_size_mb <= 512:
            raise ConfigError("must be from %d to 512 MiB" % MIN_PART_MB, field="part_size_mb")
        for name in ("endpoint", "region", "bucket", "box_id", "access_key_id", "org_public_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError("must be a string", field=name)
        if self.endpoint is not None and endpoint_problem(self.endpoint):
            raise ConfigError(endpoint_problem(self.endpoint), field="endpoint")
        if self.bucket is not None and not BUCKET.fullmatch(self.bucket):
            raise ConfigError(
                "must be an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)", field="bucket"
            )
        if self.box_id is not None and not BOX_ID.fullmatch(self.box_id):
            raise ConfigError("must be lower-case letters, digits and hyphens (up to 63)", field="box_id")
        if self.org_public_key is not None:
            org_key_bytes(self.org_public_key)
        if self.enabled:
            for name in ("endpoint", "bucket", "box_id", "access_key_id", "org_public_key"):
                if getattr(self, name) is None:
                    raise ConfigError("must be set when the archive is enabled", field=name)

    @property
    def org_key(self):
        """The organisation public key as 32 bytes (None when not set)."""
        return None if self.org_public_key is None else org_key_bytes(self.org_public_key)

    @classmethod
    def from_dict(cls, data, path="archive"):
        """Settings from the JSON object ``data``.

        :raises ConfigError: naming the first unknown or invalid field (``archive.bucket``)
        """
        if not isinstance(data, dict):
            raise ConfigError("must be an object", field=path)
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError("unknown setting", field="%s.%s" % (path, key))
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(exc.message, field="%s.%s" % (path, exc.field)) from None

    def to_dict(self):
        return dataclasses.asdict(self)


def org_key_bytes(text):
    """The 32 bytes of a base64 X25519 public key.

    :raises ConfigError: not base64 of 32 bytes
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            "must be the base64 of a 32-byte X25519 public key (`linekeeper archive init-org` prints one)",
            field="org_public_key",
        )
    return raw


def endpoint_problem(endpoint):
    """Why ``endpoint`` cannot be an S3 store's address, or None."""
    try:
        url = urlparse(endpoint)
        scheme, host = url.scheme, url.hostname
    except ValueError:  # an address that cannot be parsed (an unclosed "[")
        scheme, host = None, None
    if scheme not in ("http", "https") or not host:
        return "must be an http(s) URL such as https://s3.example.com"
    if scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        return "must be https:// (plain http only for a store on this host)"
    return None
