"""The box's recording key pair, and the key slots that guard its private key.

Recordings are encrypted to one X25519 *recording key pair* per box. The
public key is stored in clear: the recorder needs nothing else. The private
key is stored only inside *key slots*, each sealing it (ChaCha20-Poly1305)
under a key derived from a secret the box does not store:

- one **password slot** per user: Argon2id of the user's password
  (:data:`DEFAULT_KDF`: 64 MiB, 3 passes, 1 lane -- RFC 9106's second
  recommendation with one lane, as OpenSSL computes lanes on one thread
  anyway. 0.27 s per unlock on an x86 server core; expect roughly 1 s on a
  Pi 4, and a few logins at once still fit a 2 GB box. Each slot records its
  own parameters, so they can be raised later without locking anyone out);
- one **recovery slot**: HKDF-SHA256 of a 128-bit random recovery key, shown
  once at initialisation as ``XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX``
  (base32 with a 32-bit checksum, so a typo is reported as such). A random
  128-bit key needs no stretching.

Each slot's associated data binds its kind, user and KDF parameters, so a
slot cannot be moved to another user unnoticed; a slot from another box, or a
replaced public key, is caught by checking the opened private key against the
stored public key (:class:`TamperError`).

Everything lives in ``DATA_DIR/keys/keystore.json`` (mode 0600, directory
0700), replaced atomically on every change (temp, fsync, rename, fsync dir),
so after a power cut either the old or the new set of slots is in force.
Changes are serialised between threads and processes with ``flock``.

Slot policy: the recovery slot cannot be removed (only replaced, by
:meth:`KeyStore.new_recovery_key`), and the last password slot cannot be
removed either, so a box never ends up openable by its offline recovery key
alone. A user who forgot their password is helped by someone else's unlocked
key, or the recovery key, through :meth:`KeyStore.reset_password`.

Limits: an unlocked private key lives in a ``bytearray`` that
:meth:`RecordingKey.forget` overwrites, but Python and OpenSSL make transient
copies that cannot be wiped. Without secure boot, whoever holds the SD card
can replace the public key so that *future* recordings go to them;
:meth:`KeyStore.unlock` at least detects a public key that does not match
the private key.
"""

import base64
import binascii
import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware.errors import (
    AlreadyInitialisedError,
    KeyForgottenError,
    KeySlotError,
    NotInitialisedError,
    RecoveryKeyFormatError,
    TamperError,
    WeakPasswordError,
    WrongPasswordError,
)
from firmware.storage import crypto
from firmware.storage.fsutil import atomic_write, data_mode, make_private_dir, remove_stale_temps

FILE_FORMAT = "linekeeper-keystore"
FILE_VERSION = 1
MIN_PASSWORD_CHARS = 8
MAX_USER_CHARS = 64
SALT_BYTES = 16
RECOVERY_SECRET_BYTES = 16  # 128 bits
RECOVERY_CHECKSUM_BYTES = 4
_SLOT_AAD = b"linekeeper key slot v1\n"
_RECOVERY_INFO = b"linekeeper recovery slot"
_RECOVERY_CHECKSUM = b"linekeeper recovery key checksum"
# Characters people type for the base32 letters they look like.
_RECOVERY_TYPOS = str.maketrans({"0": "O", "1": "I", "8": "B"})


@dataclasses.dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost: ``memory_kib`` KiB of memory, ``iterations`` passes, ``lanes``.

    Raises :class:`ValueError` when out of the range a 2 GB box can afford
    or Argon2 accepts.
    """

    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 1

    def __post_init__(self):
        for name, low, high in (
            ("lanes", 1, 16),
            ("iterations", 1, 64),
            ("memory_kib", 8 * self.lanes, 1 << 20),
        ):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(
                    "Argon2id %s must be an integer from %d to %d, not %r" % (name, low, high, value)
                )


DEFAULT_KDF = Argon2Params()


class RecordingKey:
    """The recording private key, unlocked in memory for one session.

    Use :meth:`unwrap` to open a recording's data key and :meth:`forget` (or
    a ``with`` block) when done. Never pickled, never printed.
    """

    __slots__ = ("_private", "_public")

    def __init__(self, private_key: bytes | bytearray, public_key: bytes) -> None:
        # A bytearray is taken over, not copied, so forget() wipes the only copy.
        self._private: bytearray | None = (
            private_key if isinstance(private_key, bytearray) else bytearray(private_key)
        )
        self._public = bytes(public_key)

    @property
    def public_key(self) -> bytes:
        """The matching public key (32 bytes)."""
        return self._public

    @property
    def forgotten(self) -> bool:
        """True once :meth:`forget` has run."""
        return self._private is None

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """The data key in ``wrapped`` (see :func:`firmware.storage.crypto.unwrap_data_key`).

        Raises :class:`TamperError`, or :class:`KeyForgottenError` after :meth:`forget`.
        """
        if self._private is None:
            raise KeyForgottenError("this recording key was forgotten: unlock the box again")
        return crypto.unwrap_data_key(wrapped, self._private, context)

    def forget(self) -> None:
        """Overwrite the private key in memory; the object is unusable afterwards."""
        if self._private is not None:
            self._private[:] = bytes(len(self._private))
            self._private = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.forget()

    def __del__(self):
        self.forget()

    def __repr__(self):
        state = "forgotten" if self._private is None else "unlocked"
        return "<RecordingKey %s public=%s...>" % (state, self._public[:4].hex())

    def __reduce__(self):
        raise TypeError("a RecordingKey stays in memory: it is never pickled or stored")


# --- recovery key text ---------------------------------------------------------------


def _recovery_checksum(secret):
    return hashlib.sha256(_RECOVERY_CHECKSUM + secret).digest()[:RECOVERY_CHECKSUM_BYTES]


def format_recovery_key(secret: bytes) -> str:
    """The human form of a 16-byte recovery secret: 8 groups of 4 base32 characters."""
    text = base64.b32encode(secret + _recovery_checksum(secret)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_recovery_key(text: str) -> bytes:
    """The 16-byte secret in a recovery key as typed by a person.

    Case, spaces and dashes do not matter, and 0/1/8 are read as O/I/B.
    Raises :class:`RecoveryKeyFormatError` for a wrong length, character or
    checksum.
    """
    compact = "".join(str(text).split()).replace("-", "").upper().translate(_RECOVERY_TYPOS)
    expected = (RECOVERY_SECRET_BYTES + RECOVERY_CHECKSUM_BYTES) * 8 // 5
    if len(compact) != expected:
        raise RecoveryKeyFormatError(
            "a recovery key has %d letters and digits (8 groups of 4), this one has %d"
            % (expected, len(compact))
        )
    try:
        raw = base64.b32decode(compact)
    except binascii.Error:
        raise RecoveryKeyFormatError("a recovery key uses only the letters A-Z and digits 2-7") from None
    secret, checksum = raw[:RECOVERY_SECRET_BYTES], raw[RECOVERY_SECRET_BYTES:]
    if not hmac.compare_digest(checksum, _recovery_checksum(secret)):
        raise RecoveryKeyFormatError("this recovery key has a typo: check every group")
    return secret


# --- input checks ---------------------------------------------------------------------


def _check_user(user):
    if not isinstance(user, str):
        raise KeySlotError("a user name must be text")
    user = unicodedata.normalize("NFC", user)
    if not user or user != user.strip() or len(user) > MAX_USER_CHARS or not user.isprintable():
        raise KeySlotError(
            "user name %r is not valid: 1 to %d printable characters, "
            "no leading or trailing spaces" % (user, MAX_USER_CHARS)
        )
    return user


def _password_bytes(password):
    if not isinstance(password, str):
        raise TypeError("a password must be text")
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _check_new_password(password):
    encoded = _password_bytes(password)
    if len(unicodedata.normalize("NFC", password)) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError("a password needs at least %d characters" % MIN_PASSWORD_CHARS)
    return encoded


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text, size=None):
    raw = base64.b64decode(text, validate=True)
    if size is not None and len(raw) != size:
        raise ValueError("expected %d bytes" % size)
    return raw


def _argon2(password, salt, params):
    return Argon2id(
        salt=salt,
        length=crypto.KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(password)


def _recovery_slot_key(secret, salt):
    return HKDF(algorithm=hashes.SHA256(), length=crypto.KEY_BYTES, salt=salt, info=_RECOVERY_INFO).derive(
        secret
    )


def _slot_aad(slot):
    # The public key is not bound here but checked after opening, so that a
    # replaced public key is reported as tampering, not as a wrong password.
    bound = {"kind": slot["kind"], "user": slot["user"], "kdf": slot["kdf"]}
    return _SLOT_AAD + json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()


def _seal_slot(kind, user, kdf, slot_key, private_key):
    slot = {"kind": kind, "user": user, "kdf": kdf}
    nonce = os.urandom(crypto.NONCE_BYTES)
    sealed = ChaCha20Poly1305(slot_key).encrypt(nonce, bytes(private_key), _slot_aad(slot))
    slot.update(nonce=_b64(nonce), sealed=_b64(sealed))
    return slot


def _open_slot(slot, slot_key, public_key):
    """The private key in ``slot`` as a bytearray, or ``None`` if ``slot_key`` is wrong."""
    try:
        private = bytearray(
            ChaCha20Poly1305(slot_key).decrypt(
                _unb64(slot["nonce"], crypto.NONCE_BYTES), _unb64(slot["sealed"]), _slot_aad(slot)
            )
        )
    except (InvalidTag, ValueError):
        return None
    if crypto.public_key_of(private) != public_key:
        raise TamperError(
            "the stored recording public key does not match the private key: "
            "the key store was tampered with; record nothing until it is re-checked"
        )
    return private


def _password_slot(user, password, params, private_key):
    salt = os.urandom(SALT_BYTES)
    kdf = {"name": "argon2id", "salt": _b64(salt), **dataclasses.asdict(params)}
    return _seal_slot("password", user, kdf, _argon2(password, salt, params), private_key)


def _recovery_slot(secret, private_key):
    salt = os.urandom(SALT_BYTES)
    kdf = {"name": "hkdf-sha256", "salt": _b64(salt)}
    return _seal_slot("recovery", None, kdf, _recovery_slot_key(secret, salt), private_key)


class KeyStore:
    """The recording keys of the box whose data directory is ``data_dir``.

    ``kdf_params`` (an :class:`Argon2Params`) sets the cost of password
    slots created from now on; tests pass a cheap one. Existing slots keep the
    cost they were made with.
    """

    FILE_NAME = "keystore.json"

    def __init__(self, data_dir: str | os.PathLike[str], kdf_params: Argon2Params | None = None) -> None:
        self.keys_dir = Path(data_dir) / "keys"
        self.path = self.keys_dir / self.FILE_NAME
        self.kdf_params = DEFAULT_KDF if kdf_params is None else kdf_params
        if not isinstance(self.kdf_params, Argon2Params):
            raise TypeError("kdf_params must be an Argon2Params")
        self._thread_lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------

    @property
    def is_initialised(self) -> bool:
        """True when the box has recording keys."""
        return self.path.exists()

    def public_key(self) -> bytes:
        """The recording public key (32 bytes). Raises :class:`NotInitialisedError`."""
        return self._load()[0]

    def slots(self) -> list[str]:
        """The users that have a password slot, sorted."""
        return sorted(slot["user"] for slot in self._load()[1] if slot["kind"] == "password")

    def unlock(self, user: str, password: str) -> RecordingKey:
        """The private key, opened with ``user``'s password, as a :class:`RecordingKey`.

        Raises :class:`WrongPasswordError` (unknown user or wrong password,
        which take the same time), :class:`NotInitialisedError`, or
        :class:`TamperError` if the key store is inconsistent.
        """
        public, slots = self._load()
        secret = _password_bytes(password)
        try:
            slot = self._find(slots, "password", _check_user(user))
        except KeySlotError:
            slot = None
        if slot is None:
            _argon2(secret, bytes(SALT_BYTES), self.kdf_params)  # same time as a real try
        else:
            kdf = slot["kdf"]
            key = _argon2(
                secret, _unb64(kdf["salt"]), Argon2Params(kdf["memory_kib"], kdf["iterations"], kdf["lanes"])
            )
            private = _open_slot(slot, key, public)
            if private is not None:
                return RecordingKey(private, public)
        raise WrongPasswordError("wrong user name or password")

    def unlock_recovery(self, recovery_key: str) -> RecordingKey:
        """The private key, opened with the recovery key (text as shown at initialisation).

        Raises :class:`RecoveryKeyFormatError` for a mistyped key,
        :class:`WrongPasswordError` for a well-formed but wrong one.
        """
        public, slots = self._load()
        secret = parse_recovery_key(recovery_key)
        slot = self._find(slots, "recovery", None)
        if slot is not None:
            private = _open_slot(slot, _recovery_slot_key(secret, _unb64(slot["kdf"]["salt"])), public)
            if private is not None:
                return RecordingKey(private, public)
        raise WrongPasswordError("this is not the recovery key of this box")

    # --- changing ----------------------------------------------------------------------

    def initialise(self, user: str, password: str, show: Callable[[str], None] | None = None) -> str:
        """Create the recording key pair, ``user``'s password slot and the recovery slot.

        Returns the recovery key text, which is stored nowhere: show it once.
        With ``show``, ``show(recovery key text)`` is called before anything
        is committed: if it raises (or the process is killed meanwhile) there
        are no keys, and ``init`` can simply run again; once the key store is
        written, its recovery key has been shown.
        Raises :class:`AlreadyInitialisedError`, :class:`WeakPasswordError`,
        :class:`KeySlotError` (bad user name), :class:`OSError`.
        """
        user = _check_user(user)
        secret_password = _check_new_password(password)
        make_private_dir(self.keys_dir)
        os.chmod(self.keys_dir, data_mode(directory=True))
        with self._locked():
            if self.is_initialised:
                raise AlreadyInitialisedError(
                    "%s already has recording keys; initialising again would make every "
                    "recording unreadable" % self.keys_dir.parent
                )
            private, public = crypto.new_key_pair()
            private = bytearray(private)
            recovery = os.urandom(RECOVERY_SECRET_BYTES)
            try:
                slots = [
                    _password_slot(user, secret_password, self.kdf_params, private),
                    _recovery_slot(recovery, private),
                ]
                if show is not None:
                    show(format_recovery_key(recovery))
                remove_stale_temps(self.keys_dir)  # a killed init's half-written file
                self._store(public, slots)
            finally:
                private[:] = bytes(len(private))
            return format_recovery_key(recovery)

    def add_slot(self, user: str, password: str, unlocked: RecordingKey) -> None:
        """Give ``user`` a password slot, using an already unlocked key.

        Raises :class:`KeySlotError` if ``user`` already has one or
        ``unlocked`` belongs to another box, :class:`WeakPasswordError`.
        """
        user = _check_user(user)
        secret = _check_new_password(password)
        with self._changing(unlocked) as (public, slots):
            if self._find(slots, "password", user) is not None:
                raise KeySlotError("user %r already has a key slot; change its password instead" % user)
            slots.append(_password_slot(user, secret, self.kdf_params, unlocked._private))

    def reset_password(self, user: str, new_password: str, unlocked: RecordingKey) -> None:
        """Replace ``user``'s password slot without the old password, using an unlocked key.

        For a forgotten password: unlock with another user's password or the
        recovery key first. Raises :class:`KeySlotError` for an unknown user.
        """
        user = _check_user(user)
        secret = _check_new_password(new_password)
        with self._changing(unlocked) as (public, slots):
            index = self._index(slots, user)
            slots[index] = _password_slot(user, secret, self.kdf_params, unlocked._private)

    def change_password(self, user: str, old_password: str, new_password: str) -> None:
        """Replace ``user``'s password. Raises :class:`WrongPasswordError`, :class:`WeakPasswordError`."""
        _check_new_password(new_password)
        with self.unlock(user, old_password) as unlocked:
            self.reset_password(user, new_password, unlocked)

    def remove_slot(self, user: str) -> None:
        """Remove ``user``'s password slot.

        Raises :class:`KeySlotError` for an unknown user, or when it is the
        last password slot (add another user's slot first).
        """
        user = _check_user(user)
        with self._changing(None) as (_, slots):
            index = self._index(slots, user)
            if sum(slot["kind"] == "password" for slot in slots) == 1:
                raise KeySlotError(
                    "%r has the last password slot; add another user's slot before removing it, "
                    "so the box never opens with the recovery key alone" % user
                )
            del slots[index]

    def new_recovery_key(self, unlocked: RecordingKey) -> str:
        """Replace the recovery slot with one for a new recovery key, returned as text.

        The old recovery key stops working. Show the new one once.
        """
        recovery = os.urandom(RECOVERY_SECRET_BYTES)
        with self._changing(unlocked) as (public, slots):
            slots[:] = [slot for slot in slots if slot["kind"] != "recovery"]
            slots.append(_recovery_slot(recovery, unlocked._private))
        return format_recovery_key(recovery)

    # --- storage -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        """Serialise changes between threads (lock) and processes (flock)."""
        with self._thread_lock:
            fd = os.open(self.keys_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, data_mode())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _changing(self, unlocked):
        """Load the slots under the lock, let the caller edit them, then store them."""
        if unlocked is not None and unlocked.forgotten:
            raise KeyForgottenError("this recording key was forgotten: unlock the box again")
        if not self.is_initialised:
            raise NotInitialisedError(
                "%s has no recording keys yet: run `linekeeper init`" % self.keys_dir.parent
            )
        with self._locked():
            public, slots = self._load()
            if unlocked is not None and unlocked.public_key != public:
                raise KeySlotError("this unlocked key belongs to another box")
            yield public, slots
            self._store(public, slots)

    def _store(self, public, slots):
        document = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "public_key": _b64(public),
            "slots": slots,
        }
        atomic_write(self.path, json.dumps(document, indent=1, sort_keys=True).encode() + b"\n")

    def _load(self):
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise NotInitialisedError(
                "%s has no recording keys yet: run `linekeeper init`" % self.keys_dir.parent
            ) from None
        try:
            document = json.loads(raw)
            if document["format"] != FILE_FORMAT or document["version"] != FILE_VERSION:
                raise ValueError("unknown format or version")
            public = _unb64(document["public_key"], crypto.KEY_BYTES)
            slots = document["slots"]
            for slot in slots:
                _check_slot(slot)
        except (ValueError, KeyError, TypeError) as err:
            raise TamperError(
                "key store %s is damaged (%s); restore it from a backup" % (self.path, err)
            ) from None
        return public, slots

    @staticmethod
    def _find(slots, kind, user):
        for slot in slots:
            if slot["kind"] == kind and slot["user"] == user:
                return slot
        return None

    @staticmethod
    def _index(slots, user):
        for index, slot in enumerate(slots):
            if slot["kind"] == "password" and slot["user"] == user:
                return index
        raise KeySlotError("user %r has no key slot" % user)


def _check_slot(slot):
    """Raise ValueError/KeyError/TypeError unless ``slot`` is well formed."""
    kind, kdf = slot["kind"], slot["kdf"]
    _unb64(slot["nonce"], crypto.NONCE_BYTES)
    _unb64(slot["sealed"], crypto.KEY_BYTES + crypto.TAG_BYTES)
    _unb64(kdf["salt"], SALT_BYTES)
    if kind == "password" and kdf["name"] == "argon2id" and isinstance(slot["user"], str):
        Argon2Params(kdf["memory_kib"], kdf["iterations"], kdf["lanes"])  # bounds a tampered cost
    elif not (kind == "recovery" and kdf["name"] == "hkdf-sha256" and slot["user"] is None):
        raise ValueError("unknown key slot kind %r" % kind)
