"""The box's recording keys: an admin key pair, a key pair per line, and the key slots.

Recordings are encrypted to the X25519 key pair of their line (key store
version 2, docs/FORMAT.md and docs/keys.md). Each line's private key is kept
wrapped to the *admin* key pair, which therefore opens everything; public
keys are stored in clear, so the recorder needs no secret and makes a line's
pair the first time the line records. The admin private key is sealed in the
recovery slot; a user's password slot seals the user's own key pair, to which
the lines granted to them (or the admin key, "all") are wrapped, so a
supervisor's password opens their lines and no other, even with the card.
Version 1 files (one box key pair, sealed directly in every slot) are read as
they are; their box key is the admin key. Slot keys come from secrets the box
does not store:

- one **password slot** per user: Argon2id of the user's password, split
  with HKDF into the slot key and a login verifier in version 2 slots
  (:data:`DEFAULT_KDF`: 64 MiB, 3 passes, 1 lane -- RFC 9106's second
  recommendation with one lane, as OpenSSL computes lanes on one thread
  anyway. 0.27 s per unlock on an x86 server core; expect roughly 1 s on a
  Pi 4, and a few logins at once still fit a 2 GB box. Each slot records its
  own parameters, so they can be raised later without locking anyone out);
- one **recovery slot**: HKDF-SHA256 of a 128-bit random recovery key, shown
  once at initialisation as ``XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX``
  (base32 with a 32-bit checksum, so a typo is reported as such). A random
  128-bit key needs no stretching.

Each slot's associated data binds its kind, user and KDF parameters (and a
version 2 slot's user public key), and each grant's wrap context names its
user and line, so neither can be moved to another user unnoticed; a slot from another box, or a
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
import errno
import fcntl
import hashlib
import hmac
import json
import os
import threading
import unicodedata
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
    NotGrantedError,
    NotInitialisedError,
    RecoveryKeyFormatError,
    TamperError,
    WeakPasswordError,
    WrongPasswordError,
)
from firmware.storage import crypto
from firmware.storage.fsutil import atomic_write, data_mode, fsync_dir, make_private_dir, remove_stale_temps

FILE_FORMAT = "linekeeper-keystore"
FILE_VERSION = 2
READ_VERSIONS = (1, 2)
NEXT_FILE_NAME = "keystore.next.json"  # `rekey`'s next key store, until it is put in force
ALL_LINES = "all"  # a grant of the admin key: every line, every recording
MAX_LINE = 64
MIN_PASSWORD_CHARS = 8
MAX_USER_CHARS = 64
SALT_BYTES = 16
RECOVERY_SECRET_BYTES = 16  # 128 bits
RECOVERY_CHECKSUM_BYTES = 4
_SLOT_AAD = b"linekeeper key slot v1\n"
_RECOVERY_INFO = b"linekeeper recovery slot"
_RECOVERY_CHECKSUM = b"linekeeper recovery key checksum"
_LOGIN_SPLIT_INFO = b"linekeeper login v2: slot key || login verifier"
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
    """What one unlock opened, held in memory for one session.

    ``private_key`` is the box's *admin* private key (every recording, every
    line key) or None; ``lines`` maps line numbers to the private keys of the
    lines granted (a supervisor's slot holds only these). ``line_source``
    (``fn(line, admin private) -> bytearray or None``; line None: a dict of
    every line's) lets an admin key open line keys made after it was unlocked. Use :meth:`unwrap` to open a
    recording's data key and :meth:`forget` (or a ``with`` block) when done.
    Never pickled, never printed.
    """

    __slots__ = ("_private", "_public", "_lines", "_line_source", "_forgotten", "granted")

    def __init__(self, private_key, public_key, lines=None, line_source=None, granted=None):
        # A bytearray is taken over, not copied, so forget() wipes the only copy.
        if private_key is not None and not isinstance(private_key, bytearray):
            private_key = bytearray(private_key)
        self._private = private_key
        self._public = bytes(public_key)
        self._lines = {
            int(n): k if isinstance(k, bytearray) else bytearray(k) for n, k in (lines or {}).items()
        }
        self._line_source = line_source
        self._forgotten = False
        #: ``ALL_LINES`` or the sorted line numbers this key was granted (for re-granting).
        self.granted = (
            granted
            if granted is not None
            else (ALL_LINES if private_key is not None else tuple(sorted(self._lines)))
        )

    @property
    def public_key(self):
        """The box's admin public key (32 bytes)."""
        return self._public

    @property
    def forgotten(self):
        """True once :meth:`forget` has run."""
        return self._forgotten

    @property
    def holds_all(self):
        """True when this is the admin key (recovery key, or a slot granted every line)."""
        return self._private is not None

    @property
    def lines(self):
        """The line numbers whose private keys this key holds now (sorted)."""
        return tuple(sorted(self._lines))

    def line_private(self, line):
        """Line ``line``'s private key (a bytearray owned by this object), or None if not held."""
        self._check()
        line = int(line)
        if line not in self._lines and self._private is not None and self._line_source is not None:
            found = self._line_source(line, self._private)
            if found is not None:
                self._lines[line] = found
        return self._lines.get(line)

    def unwrap(self, wrapped, context, line=None):
        """The data key in ``wrapped`` (see :func:`firmware.storage.crypto.unwrap_data_key`).

        ``line`` is the recording's line: its line key is tried first, then
        the admin key (recordings made before line keys were wrapped to it).
        Raises :class:`TamperError` (no held key opens it),
        :class:`NotGrantedError` (this key holds neither), or
        :class:`KeyForgottenError` after :meth:`forget`.
        """
        self._check()
        candidates = []
        if line is not None:
            held = self.line_private(line)
            if held is not None:
                candidates.append(held)
        else:
            if self._private is not None and self._line_source is not None:
                for found_line, found in self._line_source(None, self._private).items():
                    self._lines.setdefault(found_line, found)
            candidates += list(self._lines.values())
        if self._private is not None:
            candidates.append(self._private)
        if not candidates:
            raise NotGrantedError(
                "this key holds no key of line %s: its recordings do not open with it" % line
            )
        for candidate in candidates[:-1]:
            try:
                return crypto.unwrap_data_key(wrapped, candidate, context)
            except TamperError:
                continue
        return crypto.unwrap_data_key(wrapped, candidates[-1], context)

    def _check(self):
        if self._forgotten:
            raise KeyForgottenError("this recording key was forgotten: unlock the box again")

    def forget(self):
        """Overwrite every private key in memory; the object is unusable afterwards."""
        if self._forgotten:
            return
        self._forgotten = True
        if self._private is not None:
            self._private[:] = bytes(len(self._private))
            self._private = None
        for key in self._lines.values():
            key[:] = bytes(len(key))
        self._lines = {}
        self._line_source = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.forget()

    def __del__(self):
        self.forget()

    def __repr__(self):
        state = "forgotten" if self._forgotten else "unlocked"
        return "<RecordingKey %s public=%s... granted=%s>" % (state, self._public[:4].hex(), self.granted)

    def __reduce__(self):
        raise TypeError("a RecordingKey stays in memory: it is never pickled or stored")


# --- recovery key text ---------------------------------------------------------------


def _recovery_checksum(secret):
    return hashlib.sha256(_RECOVERY_CHECKSUM + secret).digest()[:RECOVERY_CHECKSUM_BYTES]


def format_recovery_key(secret):
    """The human form of a 16-byte recovery secret: 8 groups of 4 base32 characters."""
    text = base64.b32encode(secret + _recovery_checksum(secret)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_recovery_key(text):
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
    # The public key a slot's private key must match is checked after opening
    # (so that a replaced key is reported as tampering, not as a wrong
    # password); a version 2 password slot binds its user public key too.
    bound = {"kind": slot["kind"], "user": slot["user"], "kdf": slot["kdf"]}
    if "public_key" in slot:
        bound["public_key"] = slot["public_key"]
    return _SLOT_AAD + json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()


def _seal_slot(kind, user, kdf, slot_key, private_key, public_key=None):
    slot = {"kind": kind, "user": user, "kdf": kdf}
    if public_key is not None:
        slot["public_key"] = _b64(public_key)
    nonce = os.urandom(crypto.NONCE_BYTES)
    sealed = ChaCha20Poly1305(slot_key).encrypt(nonce, bytes(private_key), _slot_aad(slot))
    slot.update(nonce=_b64(nonce), sealed=_b64(sealed))
    return slot


def _open_slot(slot, slot_key, public_key):
    """The private key in ``slot`` as a bytearray, or ``None`` if ``slot_key`` is wrong.

    ``public_key`` is what the private key must match (the admin public key
    for a recovery or version 1 password slot, the user's for a version 2 one).
    """
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


def _kdf_record(salt, params):
    return {"name": "argon2id", "salt": _b64(salt), **dataclasses.asdict(params)}


def _password_slot(user, password, params, private_key, public_key=None, salt=None):
    """A password slot sealing ``private_key`` (a user's, given ``public_key``; else the admin's)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    kdf = _kdf_record(salt, params)
    slot_key = _split_login_key(_argon2(password, salt, params))[0]
    return _seal_slot("password", user, kdf, slot_key, private_key, public_key)


def _recovery_slot(secret, private_key):
    salt = os.urandom(SALT_BYTES)
    kdf = {"name": "hkdf-sha256", "salt": _b64(salt)}
    return _seal_slot("recovery", None, kdf, _recovery_slot_key(secret, salt), private_key)


def _split_login_key(stretched):
    """``(slot key, login verifier)`` from one Argon2id output, split with HKDF.

    A version 2 password slot is sealed under the first; the second is what
    a login compares (:meth:`KeyStore.login_verifier`), so a password is
    stretched once per login and the card holds no cheaper guess.
    """
    out = HKDF(
        algorithm=hashes.SHA256(), length=2 * crypto.KEY_BYTES, salt=None, info=_LOGIN_SPLIT_INFO
    ).derive(bytes(stretched))
    return out[: crypto.KEY_BYTES], out[crypto.KEY_BYTES :]


def line_key_context(line):
    """The wrap context of line ``line``'s private key wrapped to the admin public key."""
    return b"linekeeper line key\x00line=%d" % int(line)


def grant_context(user, line):
    """The wrap context of a grant: line ``line``'s private key (or the admin
    private key, ``line`` = :data:`ALL_LINES`) wrapped to ``user``'s public key."""
    return b"linekeeper grant\x00user=%s\x00line=%s" % (user.encode("utf-8"), str(line).encode("ascii"))


class _Doc:
    """The key store document in memory: admin public key, line keys, slots, grants."""

    def __init__(self, public, slots, lines=None, grants=None):
        self.public = public
        self.slots = slots
        self.lines = {} if lines is None else lines  # line (int) -> {"public_key", "wrapped"}
        self.grants = [] if grants is None else grants  # {"user", "line", "wrapped"}

    def line_public(self, line):
        entry = self.lines.get(int(line))
        return None if entry is None else _unb64(entry["public_key"], crypto.KEY_BYTES)


class KeyStore:
    """The recording keys of the box whose data directory is ``data_dir``.

    ``kdf_params`` (an :class:`Argon2Params`) sets the cost of password
    slots created from now on; tests pass a cheap one. Existing slots keep the
    cost they were made with.
    """

    FILE_NAME = "keystore.json"

    def __init__(self, data_dir, kdf_params=None):
        self.keys_dir = Path(data_dir) / "keys"
        self.path = self.keys_dir / self.FILE_NAME
        self.kdf_params = DEFAULT_KDF if kdf_params is None else kdf_params
        if not isinstance(self.kdf_params, Argon2Params):
            raise TypeError("kdf_params must be an Argon2Params")
        self._thread_lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------

    @property
    def is_initialised(self):
        """True when the box has recording keys."""
        return self.path.exists()

    def public_key(self):
        """The admin recording public key (32 bytes). Raises :class:`NotInitialisedError`."""
        return self._load().public

    def slots(self):
        """The users that have a password slot, sorted."""
        return sorted(slot["user"] for slot in self._load().slots if slot["kind"] == "password")

    def slot_fingerprint(self, user, kind="password"):
        """A SHA-256 hex of ``user``'s password slot's salt and public key (``kind``
        "recovery": of the recovery slot, ``user`` None), None without a slot.

        Every change of a password makes a new slot with a new salt and a new key
        pair (a new recovery key, a new salt), so two fingerprints that differ say a
        slot was made in between: the web UI tells from it whether a change cut short
        reached the card. An edit of the sealed key (what the ``key_tampered`` alarm
        is for) leaves the fingerprint as it was.
        """
        slot = self._find(self._load().slots, kind, None if user is None else _check_user(user))
        if slot is None:
            return None
        made = [slot.get("kdf"), slot.get("public_key")]
        return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()

    def granted_lines(self, user):
        """What ``user``'s slot opens: :data:`ALL_LINES`, or a sorted tuple of line numbers.

        Raises :class:`KeySlotError` for a user without a slot.
        """
        doc = self._load()
        self._index(doc.slots, _check_user(user))
        return _granted(doc, user)

    def line_public_keys(self):
        """``{line: public key}`` of every line key made so far."""
        doc = self._load()
        return {line: doc.line_public(line) for line in sorted(doc.lines)}

    def line_public_key(self, line, create=True):
        """Line ``line``'s recording public key: new recordings on it are wrapped to it.

        Made on first use (only the admin public key is needed: the line's
        private key is wrapped to it), so an existing box needs no password
        to start recording per line. None when ``create`` is False and there
        is none. Raises :class:`NotInitialisedError`.
        """
        line = _check_line(line)
        found = self._load().line_public(line)
        if found is not None or not create:
            return found
        with self._changing(None) as doc:
            if line not in doc.lines:
                _new_line_key(doc, line)
            return doc.line_public(line)

    def ensure_line_keys(self, lines):
        """``{line: public key}`` of each of ``lines``, making the missing ones in one write
        of the key store (none when every line has its key): the box's start, so that the
        first recording on each line writes nothing here. Raises :class:`NotInitialisedError`."""
        lines = [_check_line(line) for line in lines]
        doc = self._load()
        if any(doc.line_public(line) is None for line in lines):
            with self._changing(None) as doc:
                for line in lines:
                    if line not in doc.lines:
                        _new_line_key(doc, line)
        return {line: doc.line_public(line) for line in lines}

    def unlock(self, user, password):
        """What ``user``'s password opens, as a :class:`RecordingKey`.

        Raises :class:`WrongPasswordError` (unknown user or wrong password,
        which take the same time), :class:`NotInitialisedError`, or
        :class:`TamperError` if the key store is inconsistent.
        """
        return self.login(user, password)[0]

    def login(self, user, password):
        """``(RecordingKey, login verifier or None)`` from one Argon2id of ``password``.

        The verifier (32 bytes) is derived from the same stretched password as
        the slot key (:func:`_split_login_key`), for a version 2 slot; None for
        a version 1 slot (made before the split). Raises as :meth:`unlock`.
        """
        doc = self._load()
        secret = _password_bytes(password)
        try:
            slot = self._find(doc.slots, "password", _check_user(user))
        except KeySlotError:
            slot = None
        if slot is None:
            _argon2(secret, bytes(SALT_BYTES), self.kdf_params)  # same time as a real try
            raise WrongPasswordError("wrong user name or password")
        kdf = slot["kdf"]
        stretched = _argon2(
            secret, _unb64(kdf["salt"]), Argon2Params(kdf["memory_kib"], kdf["iterations"], kdf["lanes"])
        )
        if "public_key" not in slot:  # version 1: the slot key is Argon2id's output itself
            private = _open_slot(slot, stretched, doc.public)
            if private is None:
                raise WrongPasswordError("wrong user name or password")
            return RecordingKey(private, doc.public, line_source=self._line_source), None
        slot_key, verifier = _split_login_key(stretched)
        private = _open_slot(slot, slot_key, _unb64(slot["public_key"], crypto.KEY_BYTES))
        if private is None:
            raise WrongPasswordError("wrong user name or password")
        try:
            return self._open_grants(doc, slot["user"], private), verifier
        finally:
            private[:] = bytes(len(private))

    def unlock_recovery(self, recovery_key):
        """The admin key, opened with the recovery key (text as shown at initialisation).

        Raises :class:`RecoveryKeyFormatError` for a mistyped key,
        :class:`WrongPasswordError` for a well-formed but wrong one.
        """
        doc = self._load()
        secret = parse_recovery_key(recovery_key)
        slot = self._find(doc.slots, "recovery", None)
        if slot is not None:
            private = _open_slot(slot, _recovery_slot_key(secret, _unb64(slot["kdf"]["salt"])), doc.public)
            if private is not None:
                return RecordingKey(private, doc.public, line_source=self._line_source)
        raise WrongPasswordError("this is not the recovery key of this box")

    def _open_grants(self, doc, user, user_private):
        admin, lines = None, {}
        for grant in doc.grants:
            if grant["user"] != user:
                continue
            opened = bytearray(
                crypto.unwrap_data_key(
                    _unb64(grant["wrapped"]), user_private, grant_context(user, grant["line"])
                )
            )
            expected = doc.public if grant["line"] == ALL_LINES else doc.line_public(grant["line"])
            if expected is None or crypto.public_key_of(opened) != expected:
                raise TamperError(
                    "the key store's grant of line %s to %s does not match the line's public key: "
                    "the key store was tampered with" % (grant["line"], user)
                )
            if grant["line"] == ALL_LINES:
                admin = opened
            else:
                lines[int(grant["line"])] = opened
        return RecordingKey(
            admin,
            doc.public,
            lines=lines,
            line_source=self._line_source if admin is not None else None,
            granted=_granted(doc, user),
        )

    def _line_source(self, line, admin_private):
        """Line ``line``'s private key, opened with the admin private key (None if it has none);
        for ``line`` None, ``{line: private key}`` of every line."""
        doc = self._load()
        if line is None:
            return {n: _open_line_key(doc, n, admin_private) for n in sorted(doc.lines)}
        return _open_line_key(doc, int(line), admin_private)

    # --- changing ----------------------------------------------------------------------

    def initialise(self, user, password, show=None, lines=()):
        """Create the admin key pair, ``user``'s password slot (granted every line) and the recovery slot.

        ``lines``: line numbers whose recording keys are made with them, in the same write (a
        key store backup made next holds them; the box makes any other at its start).

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
            doc, recovery = self._new_document(user, secret_password, [_check_line(n) for n in lines])
            if show is not None:
                show(format_recovery_key(recovery))
            remove_stale_temps(self.keys_dir)  # a killed init's half-written file
            self._store(doc)
            return format_recovery_key(recovery)

    def _new_document(self, user, secret_password, lines=()):
        """A new key store document: admin pair, keys of ``lines``, ``user``'s slot
        granted every line, a recovery slot; returns ``(doc, recovery secret)``."""
        private, public = crypto.new_key_pair()
        private = bytearray(private)
        recovery = os.urandom(RECOVERY_SECRET_BYTES)
        try:
            doc = _Doc(public, [_recovery_slot(recovery, private)])
            for line in lines:
                _new_line_key(doc, line)
            self._put_user(doc, user, secret_password, ALL_LINES, private, {})
        finally:
            private[:] = bytes(len(private))
        return doc, recovery

    def add_slot(self, user, password, unlocked, lines=None):
        """Give ``user`` a password slot granting ``lines`` (None: every line), using an unlocked key.

        A line is granted by wrapping its private key, held by ``unlocked``,
        to the user's new key pair: the slot opens those lines' recordings
        and no others, even to someone holding the card.
        Raises :class:`KeySlotError` if ``user`` already has one, ``unlocked``
        belongs to another box or does not hold a line granted,
        :class:`WeakPasswordError`.
        """
        user = _check_user(user)
        secret = _check_new_password(password)
        with self._changing(unlocked) as doc:
            if self._find(doc.slots, "password", user) is not None:
                raise KeySlotError("user %r already has a key slot; change its password instead" % user)
            self._put_user(doc, user, secret, _lines_arg(lines), unlocked._private, unlocked)

    def reset_password(self, user, new_password, unlocked, lines=None):
        """Replace ``user``'s password slot without the old password, using an unlocked key.

        For a forgotten password: unlock with another user's password or the
        recovery key first. The user gets a new key pair; ``lines`` (None: as
        granted before) are granted again from ``unlocked``, so an old copy of
        the key store opens nothing with the old password once lines are
        re-keyed. Raises :class:`KeySlotError` for an unknown user or a line
        ``unlocked`` does not hold.
        """
        user = _check_user(user)
        secret = _check_new_password(new_password)
        with self._changing(unlocked) as doc:
            index = self._index(doc.slots, user)
            granted = _granted(doc, user) if lines is None else _lines_arg(lines)
            del doc.slots[index]
            self._put_user(doc, user, secret, granted, unlocked._private, unlocked)

    def change_password(self, user, old_password, new_password):
        """Replace ``user``'s password. Raises :class:`WrongPasswordError`, :class:`WeakPasswordError`."""
        _check_new_password(new_password)
        with self.unlock(user, old_password) as unlocked:
            self.reset_password(user, new_password, unlocked, lines=unlocked.granted)

    def set_lines(self, user, lines, unlocked=None):
        """Grant ``user`` exactly ``lines`` (a set of line numbers, or :data:`ALL_LINES`).

        Lines taken away need no key (their grants are deleted; `rekey` makes
        sure a copy kept elsewhere opens nothing new); lines added are wrapped
        from ``unlocked``. Raises :class:`KeySlotError` for an unknown user,
        a line ``unlocked`` does not hold, or lines added without a key.
        """
        user = _check_user(user)
        wanted = _lines_arg(lines)
        with self._changing(unlocked) as doc:
            slot = doc.slots[self._index(doc.slots, user)]
            have = _granted(doc, user)
            if "public_key" not in slot:
                raise KeySlotError(
                    "%s's key slot predates line keys and opens every line: reset their password "
                    "to give them a slot for their lines" % user
                )
            if wanted == have:
                return
            keep = [] if wanted == ALL_LINES or have == ALL_LINES else [n for n in have if n in wanted]
            doc.grants = [
                g for g in doc.grants if g["user"] != user or (g["line"] != ALL_LINES and g["line"] in keep)
            ]
            adding = [ALL_LINES] if wanted == ALL_LINES else [n for n in wanted if n not in keep]
            if adding and unlocked is None:
                raise KeySlotError("granting lines %s needs an unlocked key that holds them" % adding)
            public = _unb64(slot["public_key"], crypto.KEY_BYTES)
            for line in adding:
                doc.grants.append(_grant(doc, user, public, line, unlocked))

    def remove_slot(self, user):
        """Remove ``user``'s password slot and grants.

        Raises :class:`KeySlotError` for an unknown user, or when it is the
        last password slot (add another user's slot first).
        """
        user = _check_user(user)
        with self._changing(None) as doc:
            index = self._index(doc.slots, user)
            if sum(slot["kind"] == "password" for slot in doc.slots) == 1:
                raise KeySlotError(
                    "%r has the last password slot; add another user's slot before removing it, "
                    "so the box never opens with the recovery key alone" % user
                )
            del doc.slots[index]
            doc.grants = [g for g in doc.grants if g["user"] != user]

    def new_recovery_key(self, unlocked):
        """Replace the recovery slot with one for a new recovery key, returned as text.

        The old recovery key stops working. Show the new one once. Needs the
        admin key (raises :class:`KeySlotError` for a key granted some lines only).
        """
        if not unlocked.forgotten and not unlocked.holds_all:
            raise KeySlotError("a new recovery key needs a key that opens every line")
        recovery = os.urandom(RECOVERY_SECRET_BYTES)
        with self._changing(unlocked) as doc:
            doc.slots[:] = [slot for slot in doc.slots if slot["kind"] != "recovery"]
            doc.slots.append(_recovery_slot(recovery, unlocked._private))
        return format_recovery_key(recovery)

    # --- backup (firmware/keybackup.py) ----------------------------------------------------

    def copy_bytes(self):
        """The key store file's bytes as they are, checked to be a whole key store, and its
        admin public key: what a backup holds. Raises :class:`NotInitialisedError`,
        :class:`TamperError` (damaged)."""
        with self._locked():
            doc = self._load()
            return self.path.read_bytes(), doc.public

    def put_back(self, raw):
        """Write ``raw`` (a key store's bytes, already checked: :func:`open_copy`) as the key
        store, atomically, only while there is none.

        Raises :class:`AlreadyInitialisedError` when the box has a key store, :class:`OSError`.
        """
        make_private_dir(self.keys_dir)
        with self._locked():
            if self.is_initialised:
                raise AlreadyInitialisedError(
                    "%s has a key store (keys/keystore.json): a backup is put back only where it "
                    "is missing" % self.keys_dir.parent
                )
            remove_stale_temps(self.keys_dir)
            atomic_write(self.path, raw)

    # --- rekey (firmware/rekey.py drives it) ----------------------------------------------

    @property
    def next_path(self):
        """Where `rekey` writes the next key store before it is put in force."""
        return self.keys_dir / NEXT_FILE_NAME

    def write_next(self, admin, user, password, lines=()):
        """Write the next key store (every key new) beside the current one; nothing is in force yet.

        ``admin`` is an unlocked key that opens every line; ``user`` (whose
        ``password`` it is) gets a new slot granted every line. Every other
        version 2 slot is carried over with the same lines, now wrapped to it
        with the new line keys (its password is not needed); version 1 slots
        (they hold the old admin key itself) cannot be, and are left out.
        Returns ``(recovery key text, {line: new public key}, kept users,
        users left out)``. Raises :class:`KeySlotError` when ``admin`` does
        not open every line, :class:`WeakPasswordError`.
        """
        user = _check_user(user)
        secret = _check_new_password(password)
        if admin.forgotten or not admin.holds_all:
            raise KeySlotError("rekey needs a key that opens every line (an admin's password)")
        with self._locked():
            old = self._load()
            if admin.public_key != old.public:
                raise KeySlotError("this unlocked key belongs to another box")
            doc, recovery = self._new_document(user, secret, sorted(set(old.lines) | set(lines)))
            kept, dropped = [], []
            admin_private = _open_slot_private(doc, recovery)
            try:
                for slot in old.slots:
                    other = slot["user"]
                    if slot["kind"] != "password" or other == user:
                        continue
                    if "public_key" not in slot:
                        dropped.append(other)
                        continue
                    granted = _granted(old, other)
                    public = _unb64(slot["public_key"], crypto.KEY_BYTES)
                    doc.slots.append(slot)
                    for line in [ALL_LINES] if granted == ALL_LINES else granted:
                        doc.grants.append(_grant(doc, other, public, line, None, admin_private))
                    kept.append(other)
            finally:
                admin_private[:] = bytes(len(admin_private))
            self._store(doc, self.next_path)
            return (
                format_recovery_key(recovery),
                {line: doc.line_public(line) for line in sorted(doc.lines)},
                (doc.public, kept, dropped),
            )

    def next_key(self, recovery_key):
        """The next key store's admin key (opened with its recovery key) while a rekey runs."""
        doc = self._load(self.next_path)
        slot = self._find(doc.slots, "recovery", None)
        secret = parse_recovery_key(recovery_key)
        private = _open_slot(slot, _recovery_slot_key(secret, _unb64(slot["kdf"]["salt"])), doc.public)
        if private is None:
            raise WrongPasswordError("not the next key store's recovery key")

        def line_source(line, admin_private):
            if line is None:
                return {n: _open_line_key(doc, n, admin_private) for n in sorted(doc.lines)}
            return _open_line_key(doc, int(line), admin_private)

        return RecordingKey(private, doc.public, line_source=line_source)

    def next_public_key(self):
        """The admin public key of the next key store, or None when there is none."""
        try:
            return self._load(self.next_path).public
        except NotInitialisedError:
            return None

    def put_next_in_force(self):
        """Replace the key store with the next one, atomically (rename, then sync the directory)."""
        with self._locked():
            os.replace(self.next_path, self.path)
            fsync_dir(self.keys_dir)

    def drop_next(self):
        """Remove a next key store that was never put in force."""
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.next_path)
                fsync_dir(self.keys_dir)

    def _put_user(self, doc, user, secret_password, granted, admin_private, unlocked):
        """Add ``user``'s version 2 slot (a new user key pair) and grants to ``doc``."""
        user_private, user_public = crypto.new_key_pair()
        user_private = bytearray(user_private)
        try:
            doc.slots.append(
                _password_slot(user, secret_password, self.kdf_params, user_private, user_public)
            )
        finally:
            user_private[:] = bytes(len(user_private))
        doc.grants = [g for g in doc.grants if g["user"] != user]
        for line in [ALL_LINES] if granted == ALL_LINES else granted:
            doc.grants.append(_grant(doc, user, user_public, line, unlocked, admin_private))

    # --- storage -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        """Serialise changes between threads (lock) and processes (flock)."""
        with self._thread_lock:
            try:
                fd = os.open(self.keys_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, data_mode())
            except OSError as exc:
                if exc.errno != errno.EROFS:
                    raise
                fd = None
            if fd is None:
                # A card remounted read-only (as a failing one is): no process can change
                # the store, so there is nothing to wait for; reading it (a backup) goes on,
                # and a change fails on its own write.
                yield
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _missing(self):
        """Why there are no keys, and what to do: ``init`` only where nothing was recorded."""
        data_dir = self.keys_dir.parent
        try:
            recorded = any(n.endswith(".lkrec") for n in os.listdir(data_dir / "recordings"))
        except OSError:
            recorded = False
        if recorded:
            return (
                "%s has recordings but no key store (keys/keystore.json is missing): restore it "
                "from a backup; `linekeeper init` would make new keys that can never open them "
                "(`linekeeper keystore restore`, docs/keys.md)" % data_dir
            )
        return "%s has no recording keys yet: run `linekeeper init`" % data_dir

    @contextlib.contextmanager
    def _changing(self, unlocked):
        """Load the document under the lock, let the caller edit it, then store it."""
        if unlocked is not None and unlocked.forgotten:
            raise KeyForgottenError("this recording key was forgotten: unlock the box again")
        if not self.is_initialised:
            raise NotInitialisedError(self._missing())
        with self._locked():
            doc = self._load()
            if unlocked is not None and unlocked.public_key != doc.public:
                raise KeySlotError("this unlocked key belongs to another box")
            yield doc
            self._store(doc)

    def _store(self, doc, path=None):
        atomic_write(self.path if path is None else path, encode_document(doc))

    def _load(self, path=None):
        path = self.path if path is None else path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotInitialisedError(self._missing()) from None
        try:
            return decode_document(raw)
        except (ValueError, KeyError, TypeError) as err:
            raise TamperError(
                "key store %s is damaged (%s); restore it from a backup (move it aside, then "
                "`linekeeper keystore restore`)" % (path, err)
            ) from None

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


class _Copy(KeyStore):
    """A key store held in memory (a backup's), opened as the box's would be."""

    def __init__(self, doc):
        super().__init__(os.devnull)
        self._doc = doc

    def _load(self, path=None):
        return self._doc


def open_copy(raw, recovery_key=None, user=None, password=None):
    """Open the key store in ``raw`` (a copy of ``keystore.json``) with its recovery key,
    or ``user``'s password: the :class:`RecordingKey` it gives, and the admin public key.

    Raises :class:`TamperError` (not a whole key store), :class:`RecoveryKeyFormatError`,
    :class:`WrongPasswordError` (the key or password does not open it).
    """
    try:
        doc = decode_document(raw)
    except (ValueError, KeyError, TypeError) as err:
        raise TamperError("it holds no whole key store (%s)" % err) from None
    copy = _Copy(doc)
    key = copy.unlock_recovery(recovery_key) if recovery_key is not None else copy.unlock(user, password)
    return key, doc.public


def encode_document(doc):
    """The bytes of key store document ``doc`` (version 2; docs/FORMAT.md)."""
    document = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "public_key": _b64(doc.public),
        "lines": {str(line): doc.lines[line] for line in sorted(doc.lines)},
        "grants": doc.grants,
        "slots": doc.slots,
    }
    return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def decode_document(raw):
    """The :class:`_Doc` in ``raw`` (version 1 or 2). Raises ValueError/KeyError/TypeError."""
    document = json.loads(raw)
    if document["format"] != FILE_FORMAT or document["version"] not in READ_VERSIONS:
        raise ValueError("unknown format or version")
    public = _unb64(document["public_key"], crypto.KEY_BYTES)
    slots = document["slots"]
    for slot in slots:
        _check_slot(slot)
    lines, grants = {}, []
    if document["version"] >= 2:
        for name, entry in document["lines"].items():
            _unb64(entry["public_key"], crypto.KEY_BYTES)
            _unb64(entry["wrapped"], crypto.WRAPPED_KEY_BYTES)
            lines[_check_line(int(name))] = {"public_key": entry["public_key"], "wrapped": entry["wrapped"]}
        grants = document["grants"]
        for grant in grants:
            _unb64(grant["wrapped"], crypto.WRAPPED_KEY_BYTES)
            _check_user(grant["user"])
            if grant["line"] != ALL_LINES and int(grant["line"]) not in lines:
                raise ValueError("a grant of line %r, which has no key" % grant["line"])
    return _Doc(public, slots, lines, grants)


def _open_slot_private(doc, recovery_secret):
    """The admin private key of ``doc``, opened from its recovery slot."""
    slot = KeyStore._find(doc.slots, "recovery", None)
    return _open_slot(slot, _recovery_slot_key(recovery_secret, _unb64(slot["kdf"]["salt"])), doc.public)


def _check_line(line):
    if type(line) is not int or not 1 <= line <= MAX_LINE:
        raise KeySlotError("line %r is not a line number (1 to %d)" % (line, MAX_LINE))
    return line


def _lines_arg(lines):
    if lines is None or lines == ALL_LINES:
        return ALL_LINES
    return tuple(sorted({_check_line(int(n)) for n in lines}))


def _granted(doc, user):
    """:data:`ALL_LINES` or the sorted line numbers ``user``'s slot opens."""
    slot = KeyStore._find(doc.slots, "password", user)
    if slot is not None and "public_key" not in slot:
        return ALL_LINES  # a version 1 slot holds the admin key itself
    lines = [g["line"] for g in doc.grants if g["user"] == user]
    return ALL_LINES if ALL_LINES in lines else tuple(sorted(int(n) for n in lines))


def _new_line_key(doc, line):
    """Make line ``line``'s key pair; its private key is kept wrapped to the admin public key."""
    private, public = crypto.new_key_pair()
    wrapped = crypto.wrap_data_key(private, doc.public, line_key_context(line))
    doc.lines[line] = {"public_key": _b64(public), "wrapped": _b64(wrapped)}


def _open_line_key(doc, line, admin_private):
    entry = doc.lines.get(line)
    if entry is None:
        return None
    private = bytearray(
        crypto.unwrap_data_key(_unb64(entry["wrapped"]), admin_private, line_key_context(line))
    )
    if crypto.public_key_of(private) != doc.line_public(line):
        raise TamperError("line %d's public key in the key store does not match its private key" % line)
    return private


def _grant(doc, user, user_public, line, unlocked, admin_private=None):
    """A grant of ``line`` to ``user``: its private key (the admin one for :data:`ALL_LINES`),
    taken from ``unlocked`` (or ``admin_private``), wrapped to ``user_public``."""
    admin = (
        admin_private if admin_private is not None else (unlocked._private if unlocked is not None else None)
    )
    if line == ALL_LINES:
        if admin is None:
            raise KeySlotError("granting every line needs a key that opens every line (the recovery key)")
        secret = admin
    else:
        if line not in doc.lines:
            if admin is None and unlocked is None:
                raise KeySlotError("line %d has no key yet" % line)
            _new_line_key(doc, line)
        secret = _open_line_key(doc, line, admin) if admin is not None else unlocked.line_private(line)
        if secret is None:
            raise KeySlotError(
                "line %d cannot be granted with this key: it holds only lines %s"
                % (line, ", ".join(map(str, unlocked.lines)) or "none")
            )
    return {
        "user": user,
        "line": line,
        "wrapped": _b64(crypto.wrap_data_key(secret, user_public, grant_context(user, line))),
    }


def _check_slot(slot):
    """Raise ValueError/KeyError/TypeError unless ``slot`` is well formed."""
    kind, kdf = slot["kind"], slot["kdf"]
    _unb64(slot["nonce"], crypto.NONCE_BYTES)
    _unb64(slot["sealed"], crypto.KEY_BYTES + crypto.TAG_BYTES)
    _unb64(kdf["salt"], SALT_BYTES)
    if "public_key" in slot:
        _unb64(slot["public_key"], crypto.KEY_BYTES)
    if kind == "password" and kdf["name"] == "argon2id" and isinstance(slot["user"], str):
        Argon2Params(kdf["memory_kib"], kdf["iterations"], kdf["lanes"])  # bounds a tampered cost
    elif not (kind == "recovery" and kdf["name"] == "hkdf-sha256" and slot["user"] is None):
        raise ValueError("unknown key slot kind %r" % kind)
