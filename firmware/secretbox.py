"""Secrets the box must use unattended (the SMTP password), sealed on the card.

The recording key cannot protect these: its private half is in memory only
while someone has unlocked it, and an alarm must be mailed at 3 a.m. after a
power cut with nobody logged in. So each secret is sealed with
ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from two inputs:
a random 32-byte file ``DATA_DIR/secrets.key`` (the box's data mode: 0600, or 0660
for the appliance's two services) and the board's identity (:func:`board_identity`).
The sealed text never shows the secret in config files, exports, logs or the web
UI, and the secret's name is the associated data, so a sealed value cannot be
moved to another field.

What protects it from someone holding the card, on each kind of board (the MCU's
key vault plays no part here: the web UI, which mails, uploads and serves HTTPS,
must open these before the recorder has read the vault, or when it cannot):

* A Raspberry Pi whose ``/proc/cpuinfo`` has a ``Serial`` line: that serial,
  which is not on the card. It is weak: on the Pi 1 to 4 it is 16 hex
  digits whose first 8 are zeros, so it holds 32 unknown bits. With the card
  alone, either sealed value (or, more slowly, ``tls/key.sealed.pem``) lets
  someone try every serial offline: about 50 000 a second on one laptop core
  in Python (a day for all 2**32), far more in compiled code or on many cores.
  The right serial then opens every secret here.
* Any other board (a kernel that shows no serial, the simulated board, a PC):
  ``/etc/machine-id``, which on the box is on the card itself; with no machine
  id either, nothing. Then the card alone opens them at once.

So these secrets are kept out of sight (files, exports, logs, the UI), not from
whoever holds the card: treat a lost card as giving them away, as the whole box
or root on it does (docs/card-alone.md, docs/operating.md "lost or stolen").

A secret the box makes for itself needs nothing stored: :meth:`SecretBox.derive`
gives one per purpose from the same two inputs (HKDF with the purpose in its
``info``), the same on every start of the same box, and another on another board
or after ``secrets.key`` is lost. The web UI's HTTPS key is encrypted under one
(``web/tls.py``), with the same protection as above.
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware.storage.fsutil import write_new

from .errors import TamperError

PREFIX = "lksec1:"


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
    """

    def __init__(self, data_dir, identity=None):
        self.path = os.path.join(os.fspath(data_dir), "secrets.key")
        self._identity = board_identity() if identity is None else identity

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

    def _hkdf(self, info):
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=self._identity, info=info).derive(
            self._file_key()
        )

    def _key(self):
        return self._hkdf(b"linekeeper secrets v1")

    def derive(self, purpose):
        """A 32-byte secret for ``purpose`` (text), from ``secrets.key`` and the board's
        identity: never stored, the same whenever this box asks, unrelated to any other
        purpose's and to the key that seals the named secrets."""
        return self._hkdf(b"linekeeper derived: " + purpose.encode("utf-8"))

    def seal(self, name, secret):
        """``secret`` (text) sealed for field ``name``, as text to store."""
        nonce = os.urandom(12)
        sealed = ChaCha20Poly1305(self._key()).encrypt(nonce, secret.encode("utf-8"), name.encode("utf-8"))
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, name, sealed):
        """The secret sealed for ``name``.

        :raises TamperError: not a sealed value, sealed for another field, on
            another board, or changed
        """
        if not sealed.startswith(PREFIX):
            raise TamperError("the stored %s is not a sealed secret" % name)
        try:
            raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
            return (
                ChaCha20Poly1305(self._key())
                .decrypt(raw[:12], raw[12:], name.encode("utf-8"))
                .decode("utf-8")
            )
        except (InvalidTag, ValueError):
            raise TamperError(
                "the stored %s cannot be opened: it was changed, or sealed on "
                "another box; enter it again" % name
            ) from None
