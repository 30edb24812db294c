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

Each line's public key (``keys/keystore.json`` → ``lines``) is pinned the
same way, in the pin file's ``lines`` (``{"N": {"public_key", "sig"}}``,
``sig`` over ``"linekeeper line public key v1\n" || line in decimal || 00 ||
key``), the first time that line records.

With the signing key in the HAT MCU's vault a card holder cannot forge a new
pin; with it on the card (no MCU) they can (docs/evidence.md).
"""

import base64
import json
import logging
import os

from firmware.storage import fsutil

from .errors import TamperError
from .signing import verify_signature

PIN_FILE = "recording-key.pin"
TAG = b"linekeeper recording public key v1\n"
LINE_TAG = b"linekeeper line public key v1\n"

log = logging.getLogger(__name__)


class RecordingKeyPin:
    """Checks the recording public key against the pin in ``data_dir``.

    :param signer: the device :class:`~firmware.signing.Signer`
    """

    def __init__(self, data_dir, signer):
        self.path = os.path.join(os.fspath(data_dir), PIN_FILE)
        self.signer = signer
        self._checked = None  # the key last found pinned (no need to read it again)
        self._lines_checked = {}
        # The admin key taken on first use whose pin the card refused (pinned next time).
        self._unpinned = None

    def check_line(self, line, public_key):
        """As :meth:`check`, for line ``line``'s public key (pinned beside the admin key).

        :raises TamperError: another key is pinned for the line, or its pin is not the box's
        """
        public_key, line = bytes(public_key), int(line)
        if self._lines_checked.get(line) == public_key:
            return
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            if self._unpinned is None:
                raise TamperError("%s is missing: the admin key is pinned first" % self.path) from None
            # The admin key was taken with its pin refused by the card: both pinned now.
            self._pin_first(self._unpinned, {line: public_key})
            return
        except ValueError as exc:
            raise TamperError("%s is damaged: %s" % (self.path, exc)) from None
        except OSError as exc:  # not a file, no permission, the card's error: it cannot check
            raise TamperError("%s cannot be read: %s" % (self.path, exc)) from None
        entry = doc.get("lines", {}).get(str(line))
        if entry is None:
            doc.setdefault("lines", {})[str(line)] = self._line_entry(line, public_key)
            if self._write(doc):
                self._lines_checked[line] = public_key
            return
        self._check_line_entry(line, entry, public_key)
        self._lines_checked[line] = public_key

    def _check_line_entry(self, line, entry, public_key):
        """:raises TamperError: ``entry`` (line ``line``'s pin) is not the box's or pins another key"""
        try:
            pinned = base64.b64decode(entry["public_key"], validate=True)
            genuine = verify_signature(
                self.signer.public_key, bytes.fromhex(entry["sig"]), line_message(line, pinned)
            )
        except (ValueError, KeyError, TypeError):
            genuine = False
        if not genuine or pinned != public_key:
            raise TamperError(
                "line %d's recording public key in keys/keystore.json is not the one this box "
                "pinned%s: its recordings go to the admin key until it is looked into"
                % (line, "" if genuine else " (the pin was not made by this box)")
            )

    def repin(self, public_key, line_keys):
        """Pin a new admin key and line keys (``{line: key}``), replacing the pin (after `rekey`)."""
        doc = self._pin_doc(public_key, line_keys)
        fsutil.atomic_write(self.path, (json.dumps(doc, sort_keys=True) + "\n").encode("ascii"))
        self._checked, self._lines_checked = bytes(public_key), {}

    def _pin_doc(self, public_key, line_keys=None):
        """A new pin of ``public_key`` and, when given, of ``line_keys`` (``{line: key}``)."""
        public_key = bytes(public_key)
        doc = {
            "version": 1,
            "public_key": base64.b64encode(public_key).decode("ascii"),
            "sig": self.signer.sign(TAG + public_key).hex(),
        }
        if line_keys is not None:
            doc["lines"] = {str(line): self._line_entry(line, key) for line, key in sorted(line_keys.items())}
        return doc

    def _line_entry(self, line, key):
        """Line ``line``'s pin of ``key``."""
        key = bytes(key)
        return {
            "public_key": base64.b64encode(key).decode("ascii"),
            "sig": self.signer.sign(line_message(int(line), key)).hex(),
        }

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
            self._pin_first(public_key)
            return
        except ValueError as exc:
            raise TamperError("%s is damaged: %s" % (self.path, exc)) from None
        except OSError as exc:  # not a file, no permission, the card's error: it cannot check
            raise TamperError("%s cannot be read: %s" % (self.path, exc)) from None
        self._check_admin(doc, public_key)
        self._checked = public_key

    def _pin_first(self, public_key, line_keys=None):
        """Pin ``public_key`` (and ``line_keys``, ``{line: key}``) in a new pin file: trust on
        first use. A card that refuses the write does not refuse the key: it is taken, the
        error logged, and pinned at the next check."""
        doc = self._pin_doc(public_key, line_keys or None)
        # (The first pin's bytes are frozen: its keys in this order; with lines, sorted.)
        if self._write(doc, sort_keys=bool(line_keys)):
            self._checked, self._unpinned = public_key, None
            self._lines_checked.update({int(line): bytes(key) for line, key in (line_keys or {}).items()})
        else:
            self._unpinned = public_key

    def _write(self, doc, sort_keys=True):
        """Write the pin file; False (logged) when the card refuses it."""
        try:
            fsutil.atomic_write(self.path, (json.dumps(doc, sort_keys=sort_keys) + "\n").encode("ascii"))
        except OSError as exc:
            log.error("cannot write %s (%s): the key is used, and pinned at its next check", self.path, exc)
            return False
        return True

    def pin_all(self, public_key, line_keys):
        """:meth:`check` the admin key and :meth:`check_line` each of ``line_keys``
        (``{line: key}``) at once, pinning what is not pinned yet in one write of the pin
        file (none when everything is pinned already): the box's start, so that its first
        recordings on each line write nothing here.

        :raises TamperError: as :meth:`check` and :meth:`check_line`
        """
        public_key = bytes(public_key)
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            doc = None
        except ValueError as exc:
            raise TamperError("%s is damaged: %s" % (self.path, exc)) from None
        except OSError as exc:  # not a file, no permission, the card's error: it cannot check
            raise TamperError("%s cannot be read: %s" % (self.path, exc)) from None
        changed = doc is None
        if doc is None:
            doc = self._pin_doc(public_key)
        else:
            self._check_admin(doc, public_key)
        pinned_lines = doc.setdefault("lines", {})
        for line, key in sorted(line_keys.items()):
            key, line = bytes(key), int(line)
            if str(line) in pinned_lines:
                self._check_line_entry(line, pinned_lines[str(line)], key)
                continue
            pinned_lines[str(line)] = self._line_entry(line, key)
            changed = True
        if changed:
            fsutil.atomic_write(self.path, (json.dumps(doc, sort_keys=True) + "\n").encode("ascii"))
        self._checked = public_key
        self._lines_checked.update({int(line): bytes(key) for line, key in line_keys.items()})

    def _check_admin(self, doc, public_key):
        """:raises TamperError: ``doc`` (the pin) is not the box's, or pins another admin key"""
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


def line_message(line, public_key):
    """What the device key signs to pin line ``line``'s public key."""
    return LINE_TAG + b"%d\x00" % int(line) + bytes(public_key)


def repin(data_dir, old_public_key, new_signer):
    """Sign the pin again with ``new_signer`` after a key handover (a new HAT).

    The pin must be the replaced key's (``old_public_key``) first: the new key
    vouches only for what the old one signed. A pin the new key signed already (a
    handover cut short after this step: only the new HAT's vault makes that key) is
    signed again as it is. Returns the pinned recording key, or None when nothing is
    pinned yet.

    :raises TamperError: the pin is damaged or was not made by the old key
    """
    path = os.path.join(os.fspath(data_dir), PIN_FILE)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        pinned = base64.b64decode(doc["public_key"], validate=True)
        genuine = any(
            verify_signature(key, bytes.fromhex(doc["sig"]), TAG + pinned)
            for key in (old_public_key, new_signer.public_key)
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        genuine = False
    if not genuine:
        raise TamperError(
            "the recording key pin %s was not made by this box's signing key: the card was "
            "tampered with; the key is not handed over" % path
        )
    lines = {}
    for name, entry in (doc.get("lines") or {}).items():
        # Each line's pin must be the old key's too; the new key signs it again.
        try:
            public = base64.b64decode(entry["public_key"], validate=True)
            genuine = any(
                verify_signature(key, bytes.fromhex(entry["sig"]), line_message(name, public))
                for key in (old_public_key, new_signer.public_key)
            )
        except (ValueError, KeyError, TypeError):
            genuine = False
        if not genuine:
            raise TamperError(
                "line %s's key pin in %s was not made by this box's signing key: the card was "
                "tampered with; the key is not handed over" % (name, path)
            )
        lines[name] = {
            "public_key": entry["public_key"],
            "sig": new_signer.sign(line_message(name, public)).hex(),
        }
    doc = {"version": 1, "public_key": doc["public_key"], "sig": new_signer.sign(TAG + pinned).hex()}
    if lines:
        doc["lines"] = lines
    fsutil.atomic_write(path, (json.dumps(doc, sort_keys=True) + "\n").encode("ascii"))
    return pinned
