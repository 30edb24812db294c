"""Encryption at rest: a streaming AEAD for audio and envelope-wrapped data keys.

Every recording has its own random data key (:func:`new_data_key`). Its audio
is sealed chunk by chunk with :class:`StreamSealer`, the STREAM construction
(Hoang, Reyhanitabar, Rogaway, Vizár 2015) as used by age and libsodium's
secretstream, over ChaCha20-Poly1305::

    nonce = chunk counter (11 bytes, big-endian, from 0) || final flag (1 byte)

The flag is 0x01 on the last chunk only. Each chunk is authenticated with the
same associated data (the file header), so swapping, dropping, duplicating or
appending chunks, cutting the stream after any chunk, or flipping any bit all
make :class:`StreamOpener` raise :class:`TamperError`.

The data key is then wrapped to the box's recording public key
(:func:`wrap_data_key`): an ephemeral X25519 key agreement, HKDF-SHA256 and
ChaCha20-Poly1305, as age's X25519 recipients do. Recording therefore needs
only the public key; the private key is needed to play back
(:func:`unwrap_data_key`). The ``context`` (the recording id) is bound into
the wrapped key, so a wrapped key copied to another recording does not open.

Only the ``cryptography`` package's primitives are used. Keys are bytes (or
bytearrays) of :data:`KEY_BYTES`; a key of the wrong size raises
:class:`ValueError`.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from firmware.errors import StreamFinishedError, TamperError

KEY_BYTES = 32
TAG_BYTES = 16  # Poly1305 tag added to every sealed chunk
NONCE_BYTES = 12
COUNTER_BYTES = NONCE_BYTES - 1
MAX_CHUNKS = 1 << (8 * COUNTER_BYTES)

WRAP_VERSION = 1
WRAPPED_KEY_BYTES = 1 + 32 + NONCE_BYTES + KEY_BYTES + TAG_BYTES  # 93
_WRAP_INFO = b"linekeeper data key"


def _check_key(key, what="key"):
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        raise ValueError("%s must be %d bytes" % (what, KEY_BYTES))


def new_data_key():
    """A fresh random data key (:data:`KEY_BYTES` bytes from the OS CSPRNG)."""
    return os.urandom(KEY_BYTES)


def _stream_nonce(counter, final):
    return counter.to_bytes(COUNTER_BYTES, "big") + (b"\x01" if final else b"\x00")


class _Stream:
    """One stream's AEAD and place: ``key`` is its data key (never reused for another
    stream), ``aad`` authenticated with every chunk (typically the file header); the
    chunk counter and final flag make each chunk's nonce (:func:`_stream_nonce`)."""

    def __init__(self, key, aad=b""):
        _check_key(key, "data key")
        self._aead = ChaCha20Poly1305(key)
        self._aad = bytes(aad)
        self._counter = 0
        self._finished = False

    @property
    def finished(self):
        """True once the final chunk has been sealed (or opened)."""
        return self._finished


class StreamSealer(_Stream):
    """Seals one stream, chunk by chunk, in order.

    ``key`` is the stream's data key (never reuse it for another stream);
    ``aad`` is authenticated with every chunk, typically the file header.
    """

    @property
    def chunks_sealed(self):
        """How many chunks have been sealed so far."""
        return self._counter

    def seal(self, plaintext, final=False):
        """Encrypt the next chunk; returns ciphertext || tag (``len + TAG_BYTES`` bytes).

        Pass ``final=True`` for the last chunk (it may be empty). Raises
        :class:`StreamFinishedError` after the final chunk, or when the chunk
        counter would wrap.
        """
        if self._finished:
            raise StreamFinishedError("this stream is finished: its final chunk was sealed")
        if self._counter >= MAX_CHUNKS:
            raise StreamFinishedError("this stream has reached its chunk limit")
        sealed = self._aead.encrypt(_stream_nonce(self._counter, final), bytes(plaintext), self._aad)
        self._counter += 1
        self._finished = final
        return sealed


class StreamOpener(_Stream):
    """Opens the chunks of one stream, in order, verifying each.

    A failed :meth:`open` does not advance the stream, so a reader that does
    not know whether a chunk is the last can try ``final=False`` and then
    ``final=True``. A stream whose last available chunk opens only with
    ``final=False`` has been cut short.
    """

    @property
    def chunks_opened(self):
        """How many chunks have been opened so far."""
        return self._counter

    def open(self, ciphertext, final):
        """Decrypt and verify the next chunk; returns its plaintext.

        Raises :class:`TamperError` if the chunk is not the next chunk of this
        stream under this key and header with this final flag, or if the stream
        already ended.
        """
        if self._finished:
            raise TamperError("data follows the final chunk of the stream")
        if self._counter >= MAX_CHUNKS or len(ciphertext) < TAG_BYTES:
            raise TamperError("chunk %d is damaged" % self._counter)
        try:
            plaintext = self._aead.decrypt(_stream_nonce(self._counter, final), bytes(ciphertext), self._aad)
        except InvalidTag:
            raise TamperError(
                "chunk %d failed authentication%s" % (self._counter, " as the final chunk" if final else "")
            ) from None
        self._counter += 1
        self._finished = final
        return plaintext


def new_key_pair():
    """A new X25519 key pair as ``(private_key, public_key)``, 32 bytes each."""
    private = X25519PrivateKey.generate()
    return _raw_private(private), _raw_public(private.public_key())


def public_key_of(private_key):
    """The X25519 public key (32 bytes) of ``private_key`` (32 bytes)."""
    _check_key(private_key, "private key")
    return _raw_public(X25519PrivateKey.from_private_bytes(private_key).public_key())


def _raw_public(public):
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(private):
    return private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _wrap_key(shared, eph_pub, recipient_pub, context):
    if not isinstance(context, (bytes, bytearray, memoryview)):
        # bytes(7) would quietly mean seven zero bytes: insist on bytes.
        raise TypeError(
            "context must be bytes (e.g. the recording id, encoded), not %s" % type(context).__name__
        )
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=eph_pub + recipient_pub,
        info=_WRAP_INFO + bytes(context),
    ).derive(shared)


def wrap_data_key(data_key, recipient_public, context):
    """Encrypt ``data_key`` to the holder of ``recipient_public``'s private key.

    ``context`` (bytes, e.g. the recording id) must be given again to unwrap.
    Returns ``version (1) || ephemeral public key (32) || nonce (12) ||
    ciphertext+tag (48)``, :data:`WRAPPED_KEY_BYTES` bytes. Raises
    :class:`ValueError` if a key has the wrong size or the public key is not
    usable.
    """
    _check_key(data_key, "data key")
    _check_key(recipient_public, "recipient public key")
    recipient_pub = bytes(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    eph_pub = _raw_public(ephemeral.public_key())
    # Raises ValueError for a low-order point (all-zero shared secret).
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_pub))
    nonce = os.urandom(NONCE_BYTES)
    header = bytes([WRAP_VERSION]) + eph_pub + nonce
    sealed = ChaCha20Poly1305(_wrap_key(shared, eph_pub, recipient_pub, context)).encrypt(
        nonce, bytes(data_key), header
    )
    return header + sealed


def unwrap_data_key(wrapped, private_key, context):
    """Recover the data key wrapped by :func:`wrap_data_key`.

    ``private_key`` is the recipient's X25519 private key (32 bytes) and
    ``context`` the same bytes given when wrapping. Raises
    :class:`TamperError` if ``wrapped`` is damaged, was made for another key
    or context, or has an unknown version.
    """
    _check_key(private_key, "private key")
    # A bytearray is passed as it is, so the caller can wipe its only copy.
    private = X25519PrivateKey.from_private_bytes(private_key)
    wrapped = bytes(wrapped)
    if len(wrapped) != WRAPPED_KEY_BYTES:
        raise TamperError("wrapped data key has %d bytes, expected %d" % (len(wrapped), WRAPPED_KEY_BYTES))
    if wrapped[0] != WRAP_VERSION:
        raise TamperError("wrapped data key has unknown version %d" % wrapped[0])
    eph_pub = wrapped[1:33]
    nonce = wrapped[33 : 33 + NONCE_BYTES]
    header = wrapped[: 33 + NONCE_BYTES]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError:
        raise TamperError("wrapped data key has an invalid ephemeral key") from None
    recipient_pub = _raw_public(private.public_key())
    aead = ChaCha20Poly1305(_wrap_key(shared, eph_pub, recipient_pub, context))
    try:
        return aead.decrypt(nonce, wrapped[33 + NONCE_BYTES :], header)
    except InvalidTag:
        raise TamperError("wrapped data key does not open with this key for this recording") from None
