"""What the archive seals to the organisation key: call records and recording headers.

A sealed blob is ``wrapped key (93 bytes) || nonce (12) || ChaCha20-Poly1305
ciphertext``: a fresh key, wrapped to the organisation X25519 public key
exactly as a recording's data key is wrapped to the box
(:func:`firmware.storage.crypto.wrap_data_key`), with ``context`` bound into both the
wrapping and the ciphertext, so a blob moved to another object does not open.

An archived recording is the box's file with its header sealed (the header
names the caller and holds the box-wrapped key)::

    MAGIC (8) || length (4, big-endian) || sealed header || the file's chunks as they are

:func:`restore_recording` gives back the box's file byte for byte, so its
SHA-256 and every chunk's authentication check as on the box.
"""

import base64
import contextlib
import hashlib
import os
import struct
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from firmware.storage import crypto

from ..errors import LinekeeperError, TamperError
from ..recording.segment import _read_header

MAGIC = b"\x89LKARC\r\n"
_PREFIX = struct.Struct(">8sI")


def seal(plaintext, org_public_key, context):
    """``plaintext`` sealed to the organisation key, bound to ``context`` (bytes)."""
    key = crypto.new_data_key()
    wrapped = crypto.wrap_data_key(key, org_public_key, context)
    nonce = os.urandom(crypto.NONCE_BYTES)
    return wrapped + nonce + ChaCha20Poly1305(key).encrypt(nonce, bytes(plaintext), context)


def unseal(blob, org_private_key, context):
    """The plaintext of :func:`seal`.

    ``org_private_key``: the 32 bytes, or an unlocked
    :class:`~firmware.storage.keystore.RecordingKey` (the viewer's key slots).

    :raises TamperError: damaged, for another key, or for another context
    """
    n = crypto.WRAPPED_KEY_BYTES
    if len(blob) < n + crypto.NONCE_BYTES + crypto.TAG_BYTES:
        raise TamperError("sealed blob is too short")
    if hasattr(org_private_key, "unwrap"):
        key = org_private_key.unwrap(blob[:n], context)
    else:
        key = crypto.unwrap_data_key(blob[:n], org_private_key, context)
    nonce = blob[n : n + crypto.NONCE_BYTES]
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, blob[n + crypto.NONCE_BYTES :], context)
    except InvalidTag:
        raise TamperError("sealed blob failed authentication") from None


def archive_prefix(path, recording_id, org_public_key):
    """``(archive prefix bytes, header length in the box's file)`` for recording file ``path``.

    The prefix replaces the file's clear header; the rest of the file follows it unchanged.

    :raises TamperError: the file has no readable header
    :raises OSError: it cannot be read
    """
    with open(path, "rb") as f:
        _, header_bytes = _read_header(f, path)
    sealed = seal(header_bytes, org_public_key, recording_id.encode())
    return _PREFIX.pack(MAGIC, len(sealed)) + sealed, len(header_bytes)


def restore_recording(blob, recording_id, org_private_key):
    """The box's recording file from an archived object (bytes).

    :raises TamperError: not an archived recording, or it does not open with this key
    """
    if len(blob) < _PREFIX.size:
        raise TamperError("archived recording is too short")
    magic, length = _PREFIX.unpack_from(blob)
    if magic != MAGIC or _PREFIX.size + length > len(blob):
        raise TamperError("not an archived Linekeeper recording")
    sealed = blob[_PREFIX.size : _PREFIX.size + length]
    header = unseal(sealed, org_private_key, recording_id.encode())
    return header + blob[_PREFIX.size + length :]


def last_archived(record):
    """The call record's last recording archived with a key for the organisation.

    :raises LinekeeperError: the call has no such recording (any more)
    """
    recs = [r for r in record.get("recordings") or [] if r.get("org_wrapped_key")]
    if not recs:
        raise LinekeeperError("call %s/%d has no archived recording" % (record["box"], record["call_id"]))
    return recs[-1]


@contextlib.contextmanager
def restored_copy(bucket, rec, org_private_key, tmp_dir):
    """The archived recording ``rec`` (an entry of a call record's ``recordings``) as
    the box's file, checked against its SHA-256, in a temporary file in ``tmp_dir``:
    yields ``(path, the file's bytes, its data key)``; the file is removed on leaving.
    It stays encrypted: only the caller's reading of it with the data key opens it.

    :raises TamperError: the object or its key does not open, or fails its hash
    """
    restored = restore_recording(bucket.get(rec["key"]), rec["id"], org_private_key)
    if hashlib.sha256(restored).hexdigest() != rec["sha256"]:
        raise TamperError("archived recording %s does not match its hash" % rec["id"])
    data_key = org_private_key.unwrap(base64.b64decode(rec["org_wrapped_key"]), rec["id"].encode())
    fd, path = tempfile.mkstemp(suffix=".lkrec", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(restored)
        yield path, restored, data_key
    finally:
        os.remove(path)
