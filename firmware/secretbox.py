"""Secrets the box must use unattended (the SMTP password), sealed on the card.

The recording key cannot protect these: its private half is in memory only
while someone has unlocked it, and an alarm must be mailed at 3 a.m. after a
power cut with nobody logged in. So each secret is sealed with
ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from a random 32-byte file
``DATA_DIR/secrets.key`` (the box's data mode: 0600, or 0660 for the appliance's
two services), the board's identity (:func:`board_identity`) and, on a box that
seals, the storage data key (below).
The sealed text never shows the secret in config files, exports, logs or the web
UI, and the secret's name is the associated data, so a sealed value cannot be
moved to another field.

What protects it from someone holding the card depends on the board.

* A HAT with the MCU's key vault (a box that seals, :mod:`firmware.storage.fieldseal`):
  the key is derived from ``secrets.key``, the board's identity *and* 32 bytes
  derived from the storage data key (:meth:`FieldCipher.derive
  <firmware.storage.fieldseal.FieldCipher.derive>`, its own purpose; never the data
  key itself), which the vault unwraps and the card holds only wrapped. Such
  values are :data:`VAULT_PREFIX`; the card alone opens none of them, whatever the
  serial. What does open them: the whole box, or the card with a key slot's password
  or the recovery key (the data key's escrow copy) and the board's identity.
* Every other board, and on any board a value sealed while the key was not at hand
  (:data:`PREFIX`): ``secrets.key`` and the identity alone. On a Raspberry Pi whose
  ``/proc/cpuinfo`` has a ``Serial`` line the identity is that serial, not on the
  card but weak: on the Pi 1 to 4 it is 16 hex digits whose first 8 are zeros, 32
  unknown bits. With the card alone, one such sealed value (or, more slowly,
  ``tls/key.sealed.pem``) lets someone try every serial offline: about 50 000 a
  second on one laptop core in Python (a day for all 2**32), far more in compiled
  code or on many cores. Elsewhere (a kernel that shows no serial, the simulated
  board, a PC) it is ``/etc/machine-id``, on the box's card itself, and the card
  alone opens them at once.

Values of the second kind on a box that seals are sealed again as the first
(:meth:`SecretBox.reseal`) by the process that keeps them (the web UI: its mail
round, the archive uploader's round) once it has the storage key, atomically:
until then, and if that is cut, the old value opens as before. A value is sealed
without the key when the process has none yet (the web UI before the recorder has
started since boot: nobody is locked out of saving a password then) and while an
update is on trial (its rollback's release opens only the old kind). A value of the
first kind opens only with the key (:class:`~firmware.storage.fieldseal.FieldSealError`
otherwise, saying so): before the recorder has started since boot the web UI
neither mails (its queued mail is sealed with that key too) nor uploads to the
archive, and both wait for it.

A secret the box makes for itself needs nothing stored: :meth:`SecretBox.derive`
gives one per purpose from ``secrets.key`` and the identity (HKDF with the purpose in its
``info``), the same on every start of the same box, and another on another board
or after ``secrets.key`` is lost. The web UI's HTTPS key is encrypted under one
(``web/tls.py``). It does not use the storage key: the web UI serves with it from its
start, before the recorder has handed the key over, and when the recorder cannot
start. So on every board it has the second kind's protection.
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware.storage.fieldseal import FieldSealError, LazyFieldCipher
from firmware.storage.fsutil import write_new

from .errors import TamperError
from .signing import run_dir

PREFIX = "lksec1:"  # sealed under secrets.key and the board's identity
VAULT_PREFIX = "lksec2:"  # ... and a key derived from the vault-backed storage data key
_STORAGE_PURPOSE = b"unattended secrets v2"  # FieldCipher.derive's purpose for that key
_NONCE_BYTES = 12


def is_sealed(text):
    """True when ``text`` is a value :meth:`SecretBox.seal` made (either kind)."""
    return isinstance(text, str) and text.startswith((PREFIX, VAULT_PREFIX))


def board_identity():
    """The Raspberry Pi's serial number, else the machine id, else b"" (bytes).

    Not a secret: a Pi's serial has 32 unknown bits at most, and the machine id is on
    the card (see the module's text)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Serial"):
                    return line.split(":", 1)[1].strip().encode()
    except OSError:
        pass
    try:
        with open("/etc/machine-id", "rb") as f:
            return f.read().strip()
    except OSError:
        return b""


class SecretBox:
    """Seal and open the box's unattended secrets.

    :param data_dir: where ``secrets.key`` lives (made on first use)
    :param identity: the board's identity (bytes); default :func:`board_identity`
    :param cipher: the box's field cipher (:class:`~firmware.storage.fieldseal.FieldCipher`
        or :class:`~firmware.storage.fieldseal.LazyFieldCipher`), whose storage data key
        the HAT's MCU vault unwraps; default: the recorder's copy in the run directory,
        looked for at each use. None of it (a box without the vault, or before the
        recorder has handed the key over since boot): the key of secrets.key and the
        identity alone
    :param on_trial: ``fn()``, true while an update is on trial (default: ``data_dir``'s
        update inbox says so): its rollback's release opens only :data:`PREFIX` values,
        so nothing is sealed with the storage key meanwhile
    """

    def __init__(self, data_dir, identity=None, cipher=None, on_trial=None):
        data_dir = os.fspath(data_dir)
        self.path = os.path.join(data_dir, "secrets.key")
        self._identity = board_identity() if identity is None else identity
        self._cipher = LazyFieldCipher(data_dir, run_dir()) if cipher is None else cipher
        self._on_trial = (lambda: _update_on_trial(data_dir)) if on_trial is None else on_trial

    def _file_key(self):
        try:
            with open(self.path, "rb") as f:
                file_key = f.read()
        except FileNotFoundError:
            # Made once, in the box's data mode (both services open secrets). Never over
            # one the other service made a moment before (both start at boot, and the web
            # UI's HTTPS key is sealed by it at once): that one is read instead.
            try:
                write_new(self.path, os.urandom(32))
            except FileExistsError:
                pass
            with open(self.path, "rb") as f:
                file_key = f.read()
        return file_key

    def _hkdf(self, info, extra=b""):
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=self._identity, info=info).derive(
            self._file_key() + extra
        )

    def _key(self):
        return self._hkdf(b"linekeeper secrets v1")

    def _storage_part(self):
        """32 bytes derived from the storage data key, or None: the box does not seal (no
        vault), or this process has no copy of the key (yet)."""
        try:
            return self._cipher.derive(_STORAGE_PURPOSE)
        except FieldSealError:
            return None

    def _vault_key(self, part):
        return self._hkdf(b"linekeeper secrets v2", part)

    def derive(self, purpose):
        """A 32-byte secret for ``purpose`` (text), from ``secrets.key`` and the board's
        identity: never stored, the same whenever this box asks, unrelated to any other
        purpose's and to the key that seals the named secrets. Not from the storage data
        key: the web UI needs its HTTPS key before the recorder has handed that over."""
        return self._hkdf(b"linekeeper derived: " + purpose.encode("utf-8"))

    def seal(self, name, secret):
        """``secret`` (text) sealed for field ``name``, as text to store: with the storage
        data key too (:data:`VAULT_PREFIX`) when this process has it and no update is on
        trial, else without (:data:`PREFIX`; :meth:`reseal` makes it the former later)."""
        part = None if self._on_trial() else self._storage_part()
        prefix, key = (PREFIX, self._key()) if part is None else (VAULT_PREFIX, self._vault_key(part))
        nonce = os.urandom(_NONCE_BYTES)
        sealed = ChaCha20Poly1305(key).encrypt(nonce, secret.encode("utf-8"), name.encode("utf-8"))
        return prefix + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, name, sealed):
        """The secret sealed for ``name``.

        :raises TamperError: not a sealed value, sealed for another field, on
            another board (one with the vault, on a box without), or changed
        :raises FieldSealError: sealed with the storage data key, and this process has no
            copy of it (the recorder has not started since boot)
        """
        if sealed.startswith(PREFIX):
            key, body = self._key(), sealed[len(PREFIX) :]
        elif sealed.startswith(VAULT_PREFIX):
            try:
                part = self._cipher.derive(_STORAGE_PURPOSE)
            except FieldSealError:
                raise FieldSealError(
                    "the stored %s is sealed with a key kept in the HAT's MCU vault and this "
                    "process has no copy of it yet: it opens once the recorder has started" % name
                ) from None
            if part is None:  # this box keeps no storage key: it never opens here
                raise TamperError(
                    "the stored %s was sealed on a box whose HAT has the MCU's key vault, and "
                    "this box has none: enter it again" % name
                )
            key, body = self._vault_key(part), sealed[len(VAULT_PREFIX) :]
        else:
            raise TamperError("the stored %s is not a sealed secret" % name)
        try:
            raw = base64.b64decode(body, validate=True)
            return (
                ChaCha20Poly1305(key)
                .decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], name.encode("utf-8"))
                .decode("utf-8")
            )
        except (InvalidTag, ValueError):
            raise TamperError(
                "the stored %s cannot be opened: it was changed, or sealed on "
                "another box; enter it again" % name
            ) from None

    def weaker(self, sealed):
        """True when ``sealed`` is of the kind sealed without the storage data key
        (:data:`PREFIX`) on a box that seals (its HAT has the MCU's key vault): there the
        card and a search of the board's serial open it, until :meth:`reseal` seals it
        again. False for a value sealed with the key, and on a box without the vault,
        whose values are all of that kind and cannot be sealed better."""
        if not isinstance(sealed, str) or not sealed.startswith(PREFIX):
            return False
        try:
            return self._cipher.derive(_STORAGE_PURPOSE) is not None
        except FieldSealError:  # the box seals; this process has no copy of the key yet
            return True

    def reseal(self, name, sealed):
        """``sealed`` sealed again with the storage data key, or None when it needs not or
        cannot be now (already so, no key here, an update on trial).

        :raises TamperError: as :meth:`open`
        """
        if not sealed.startswith(PREFIX) or self._on_trial() or self._storage_part() is None:
            return None
        return self.seal(name, self.open(name, sealed))


def _update_on_trial(data_dir):
    from firmware.update.inbox import on_trial

    return on_trial(data_dir) is not None
