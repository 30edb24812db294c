"""The recording public key, pinned by the device signing key.

Whoever can write the card can replace the recording public key in
``keys/keystore.json``, so that *future* recordings are encrypted to a key
they hold. The box therefore pins the key it records to: ``DATA_DIR/
recording-key.pin`` holds the public key and the device key's Ed25519
signature of ``"linekeeper recording public key v1\\n" || key`` (made the first
time the box records, trust on first use). Before every recording the box
checks the key store's public key against the pin; a mismatch, or a pin the
device key did not sign, is tampering: the box records nothing and raises
the ``key_tampered`` alarm.

With the signing key in the HAT MCU's vault a card holder cannot forge a new
pin; with it on the card (no MCU) they can (docs/evidence.md).
"""

import base64
import json
import os

from firmware.storage import fsutil

from .errors import TamperError
from .signing import verify_signature

PIN_FILE = "recording-key.pin"
TAG = b"linekeeper recording public key v1\n"


class RecordingKeyPin:
    """Checks the recording public key against the pin in ``data_dir``.

    :param signer: the device :class:`~firmware.signing.Signer`
    """

    def __init__(self, data_dir, signer):
        self.path = os.path.join(os.fspath(data_dir), PIN_FILE)
        self.signer = signer
        self._checked = None  # the key last found pinned (no need to read it again)

    def check(self, public_key):
        """Pin ``public_key`` if nothing is pinned yet; else require it to be the pinned one.

        :raises TamperError: another key is pinned, or the pin is not the box's
        """
        public_key = bytes(public_key)
        if public_key == self._checked:
            return
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            sig = self.signer.sign(TAG + public_key)
            doc = {"version": 1, "public_key": base64.b64encode(public_key).decode("ascii"), "sig": sig.hex()}
            fsutil.atomic_write(self.path, (json.dumps(doc) + "\n").encode("ascii"))
            self._checked = public_key
            return
        except ValueError as exc:
            raise TamperError("%s is damaged: %s" % (self.path, exc)) from None
        try:
            pinned = base64.b64decode(doc["public_key"], validate=True)
            genuine = verify_signature(self.signer.public_key, bytes.fromhex(doc["sig"]), TAG + pinned)
        except (ValueError, KeyError, TypeError):
            genuine = False
        if not genuine:
            raise TamperError(
                "the recording key pin %s was not made by this box: the card "
                "was tampered with; nothing is recorded until it is looked into" % self.path
            )
        if pinned != public_key:
            raise TamperError(
                "the recording public key in keys/keystore.json is not the one "
                "this box pinned: it was replaced (recordings would go to another "
                "key); nothing is recorded until it is looked into"
            )
        self._checked = public_key


def repin(data_dir, old_public_key, new_signer):
    """Sign the pin again with ``new_signer`` after a key handover (a new HAT).

    The pin must be the replaced key's (``old_public_key``) first: the new key
    vouches only for what the old one signed. Returns the pinned recording key,
    or None when nothing is pinned yet.

    :raises TamperError: the pin is damaged or was not made by the old key
    """
    path = os.path.join(os.fspath(data_dir), PIN_FILE)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        pinned = base64.b64decode(doc["public_key"], validate=True)
        genuine = verify_signature(old_public_key, bytes.fromhex(doc["sig"]), TAG + pinned)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        genuine = False
    if not genuine:
        raise TamperError(
            "the recording key pin %s was not made by this box's signing key: the card was "
            "tampered with; the key is not handed over" % path
        )
    doc = {"version": 1, "public_key": doc["public_key"], "sig": new_signer.sign(TAG + pinned).hex()}
    fsutil.atomic_write(path, (json.dumps(doc) + "\n").encode("ascii"))
    return pinned
