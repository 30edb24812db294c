"""The box's device signing key: Ed25519, kept off the card when the HAT has its MCU.

Recordings are signed when they are sealed (:mod:`firmware.evidence`), the
audit trail's entries are signed as they are appended (:mod:`firmware.storage.audit`)
and exports carry a signed manifest. Checking any of these needs only the
public key, so a copy of an export can be checked on any machine with the
box's fingerprint (:func:`fingerprint`), printed by ``linekeeper keys
--fingerprint`` and on the security page.

Where the private key comes from (:func:`load_signer`):

* **the HAT's supervisor MCU**: its key vault holds a 32-byte audit key in
  its own flash, readable once per boot. The signing key is derived from it
  (HKDF-SHA256, info :data:`VAULT_INFO`), so the register map is unchanged
  and the card never holds the key. The process that reads the vault at
  start-up may leave a copy in a RAM-only run directory (``/run``, tmpfs) for
  the box's other processes; it is gone at power-off.
* **no MCU**: a random key in ``DATA_DIR/signing.key`` (the box's data mode:
  0660 on the appliance, where the web UI's process signs its audit entries
  with it too, as the recorder's group; 0600 elsewhere). Whoever
  holds the card then holds the key: a signature proves only that the
  recording or export was made with this card's key, not that nobody with
  the card re-signed it. docs/evidence.md says so plainly.

A new HAT makes a new key: the old one is never carried or escrowed, but handed
over (:mod:`firmware.handover`, ``linekeeper hat-replaced``).

``DATA_DIR/signing.pub`` records the public key and where its private half
lives (``"vault"`` or ``"card"``); it is a convenience, not a trust anchor:
pin the fingerprint (``--key``) to check against the real box's key.
"""

import base64
import hashlib
import json
import logging
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.storage import fsutil

from .errors import LinekeeperError

VAULT_INFO = b"linekeeper device signing key v1"
KEY_FILE = "signing.key"
PUBLIC_FILE = "signing.pub"
RUN_KEY_FILE = "device-signing.key"
# Left by an unreleased firmware that carried the old HAT's seed to a new one: removed at start.
CARRIED_FILE = "signing.seal"
FINGERPRINT_BYTES = 16

log = logging.getLogger(__name__)


class SigningKeyError(LinekeeperError):
    """The device signing key cannot be had (vault locked, file damaged) or does not match."""


def derive_from_vault_key(audit_key):
    """The Ed25519 seed (32 bytes) derived from the MCU vault's 32-byte audit key."""
    if not isinstance(audit_key, (bytes, bytearray)) or len(audit_key) != 32:
        raise ValueError("the vault's audit key must be 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=VAULT_INFO).derive(bytes(audit_key))


def fingerprint(public_key):
    """The fingerprint of a 32-byte Ed25519 public key: ``lk1:`` and 8 groups of 4 hex digits.

    SHA-256 of the raw key, first :data:`FINGERPRINT_BYTES` bytes.
    """
    digest = hashlib.sha256(b"linekeeper signing key\x00" + bytes(public_key)).hexdigest()
    hexpart = digest[: 2 * FINGERPRINT_BYTES]
    return "lk1:" + "-".join(hexpart[i : i + 4] for i in range(0, len(hexpart), 4))


def normalise_fingerprint(text):
    """A fingerprint as typed (any case, with or without ``lk1:`` and dashes) in canonical form.

    :raises SigningKeyError: not a fingerprint
    """
    raw = text.strip().lower()
    if raw.startswith("lk1:"):
        raw = raw[4:]
    raw = raw.replace("-", "").replace(" ", "")
    if len(raw) != 2 * FINGERPRINT_BYTES or any(c not in "0123456789abcdef" for c in raw):
        raise SigningKeyError(
            "a signing key fingerprint is lk1: and 32 hex digits "
            "(as `linekeeper keys --fingerprint` prints), not %r" % text
        )
    return "lk1:" + "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


class Signer:
    """Signs with the device key; ``source`` is ``"vault"`` or ``"card"``."""

    def __init__(self, seed, source):
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self.source = source
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def fingerprint(self):
        return fingerprint(self.public_key)

    def sign(self, message):
        """The 64-byte Ed25519 signature of ``message`` (bytes)."""
        return self._key.sign(bytes(message))

    def __repr__(self):
        return "<Signer %s %s>" % (self.source, self.fingerprint)

    def __reduce__(self):
        raise TypeError("a Signer holds a private key and is not pickled")


def verify_signature(public_key, signature, message):
    """True when ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(bytes(signature), bytes(message))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def load_signer(data_dir, vault=None, run_dir=None, create=True):
    """The box's :class:`Signer`.

    :param vault: the MCU link (anything with ``read_key("audit")``), when the
        HAT has one: the key is derived from the vault and, if ``run_dir`` is
        given, a copy is left there for the box's other processes
    :param run_dir: a RAM-only directory (``/run/linekeeper``): where a process
        that did not read the vault finds the key
    :param create: make the key when the box has none yet (the recorder does;
        other processes wait for it, so that a command run before the recorder's
        first start does not put a key on the card of a box whose MCU keeps it)
    :raises SigningKeyError: the vault is locked or the key on record is another
    """
    record = read_public_record(data_dir)
    run_copy = None if run_dir is None else os.path.join(run_dir, RUN_KEY_FILE)
    if vault is not None:
        try:
            seed = _vault_seed(data_dir, vault)
        except OSError as exc:
            # Locked since this boot's first start: a restarted recorder takes the RAM copy.
            if run_copy is None or not os.path.exists(run_copy):
                raise SigningKeyError("the MCU key vault did not give its key: %s" % exc) from exc
            seed = _read_seed(run_copy)
        signer = Signer(seed, "vault")
        if run_copy is not None:
            os.makedirs(run_dir, mode=0o750, exist_ok=True)
            fsutil.atomic_write(run_copy, seed, mode=0o640)
    elif run_copy is not None and os.path.exists(run_copy):
        signer = Signer(_read_seed(run_copy), "vault")
    elif record is not None and record["source"] == "vault":
        raise SigningKeyError(
            "this box's signing key is in the HAT's MCU key vault and this process has no copy "
            "of it (%s: is the recorder running?)" % run_dir_words(run_dir)
        )
    elif record is None and not create:
        raise SigningKeyError("this box has no signing key yet (the recorder makes it when it first starts)")
    else:
        signer = Signer(_card_seed(data_dir), "card")
    _check_record(data_dir, record, signer)
    return signer


def _vault_seed(data_dir, vault):
    """The seed derived from the vault's audit key; it never leaves the box's RAM.

    :raises OSError: the vault did not answer or is locked
    """
    return derive_from_vault_key(vault.read_key("audit"))


def drop_carried(data_dir):
    """Remove ``signing.seal`` (an old HAT's seed carried to a new one by a firmware that was
    never released): a replaced HAT's key is handed over instead (:mod:`firmware.handover`).
    Returns True when there was one; the box then asks for ``linekeeper hat-replaced``."""
    path = os.path.join(data_dir, CARRIED_FILE)
    if not os.path.exists(path):
        return False
    fsutil.remove_durable(path)
    return True


def write_public_record(data_dir, signer):
    """Record ``signer``'s public key in ``signing.pub`` (replacing any other: a handover)."""
    doc = {
        "version": 1,
        "algorithm": "ed25519",
        "source": signer.source,
        "public_key": base64.b64encode(signer.public_key).decode("ascii"),
        "fingerprint": signer.fingerprint,
    }
    fsutil.atomic_write(
        os.path.join(data_dir, PUBLIC_FILE), (json.dumps(doc, indent=1) + "\n").encode("ascii")
    )


def _card_seed(data_dir):
    path = os.path.join(data_dir, KEY_FILE)
    if not os.path.exists(path):
        fsutil.atomic_write(path, os.urandom(32), mode=fsutil.data_mode())
    else:
        _share(path)
    return _read_seed(path)


def _share(path):
    """Give a key an older firmware made 0600 the box's data mode, so that the web UI's
    process (another user in the box's group) can sign with it; only its owner can."""
    try:
        st = os.stat(path)
        if st.st_uid == os.geteuid() and st.st_mode & 0o777 != fsutil.data_mode():
            os.chmod(path, fsutil.data_mode())
    except OSError as exc:
        log.warning("cannot give %s the box's data mode: %s", path, exc)


def _read_seed(path):
    with open(path, "rb") as f:
        seed = f.read()
    if len(seed) != 32:
        raise SigningKeyError("%s is damaged: %d bytes, not 32" % (path, len(seed)))
    return seed


def _check_record(data_dir, record, signer):
    if record is None:
        write_public_record(data_dir, signer)
    elif record["public_key"] != signer.public_key:
        raise SigningKeyError(
            "the signing key on record in %s (%s) is not this box's (%s): the card was "
            "moved to another box, or its key record was replaced%s"
            % (
                PUBLIC_FILE,
                fingerprint(record["public_key"]),
                signer.fingerprint,
                _REPLACED_HAT_HINT if signer.source == "vault" else "",
            )
        )


_REPLACED_HAT_HINT = (
    ", or the HAT was replaced: then run `linekeeper hat-replaced` with the recovery key (docs/operating.md)"
)


def read_public_record(data_dir):
    """``{"public_key": bytes, "source": str}`` from ``signing.pub``, or None when absent.

    :raises SigningKeyError: the file is damaged
    """
    path = os.path.join(data_dir, PUBLIC_FILE)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        key = base64.b64decode(doc["public_key"], validate=True)
        if len(key) != 32 or doc["source"] not in ("vault", "card"):
            raise ValueError("bad key or source")
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError("%s is damaged: %s" % (path, exc)) from None
    return {"public_key": key, "source": doc["source"]}


def trusted_public_key(data_dir, pinned=None):
    """``(public key, pinned: bool)`` to check signatures with.

    ``pinned`` is a fingerprint kept off the box: the key on record must
    have it. Without one the key on the card is used, which only proves
    anything if the card's record is genuine (the caller says so).

    :raises SigningKeyError: no key on record, or it has another fingerprint
    """
    record = read_public_record(data_dir)
    if record is None:
        raise SigningKeyError("this box has no signing key yet (it is made when the recorder first starts)")
    if pinned is not None and fingerprint(record["public_key"]) != normalise_fingerprint(pinned):
        raise SigningKeyError(
            "the signing key on this card is %s, not %s: the key record was "
            "replaced, or this is another box's card"
            % (fingerprint(record["public_key"]), normalise_fingerprint(pinned))
        )
    return record["public_key"], pinned is not None


# The appliance's run directory (scripts/system/linekeeper.tmpfiles), which its services are
# given as LINEKEEPER_RUN_DIR.
APPLIANCE_RUN_DIR = "/run/linekeeper"


def run_dir():
    """The RAM-only directory where the recorder leaves the vault's keys for the box's other
    processes, or None: ``LINEKEEPER_RUN_DIR`` when it is set (the services are given it);
    else :data:`APPLIANCE_RUN_DIR` when it exists (a root shell on the box, which is not);
    else none (off the box, or a box run by hand without it). :func:`run_dir_words` says
    where this looked, for a message that found no key there."""
    named = os.environ.get("LINEKEEPER_RUN_DIR")
    if named:
        return named
    if os.path.isdir(APPLIANCE_RUN_DIR):
        return APPLIANCE_RUN_DIR
    return None


def own_run_dir():
    """The run directory the recorder itself writes in (the keys it hands over, its start
    failures): ``LINEKEEPER_RUN_DIR`` only, or None. Never :data:`APPLIANCE_RUN_DIR`
    unasked: a box run by hand as root on an appliance (``make run``, a test) would
    otherwise overwrite the running recorder's copies there, or clear its failures."""
    return os.environ.get("LINEKEEPER_RUN_DIR") or None


def run_dir_words(found):
    """Where :func:`run_dir` looked, in words, when ``found`` (what it returned) holds no
    copy of the key a command wanted: for the messages that say it found none."""
    named = os.environ.get("LINEKEEPER_RUN_DIR")
    if named and found == named:
        return "LINEKEEPER_RUN_DIR is %s, which holds no copy of it" % found
    if found is None:
        return "LINEKEEPER_RUN_DIR is not set, and there is no %s (the box's run directory)" % (
            APPLIANCE_RUN_DIR
        )
    if found == APPLIANCE_RUN_DIR:
        return "LINEKEEPER_RUN_DIR is not set, and %s, the box's run directory, holds no copy of it" % found
    return "the run directory %s holds no copy of it" % found


def own_public_key(run_dir):
    """The public half of the device key the recorder left in ``run_dir`` (this box's own,
    read from its MCU vault at boot), or None when there is no copy there."""
    if run_dir is None:
        return None
    path = os.path.join(run_dir, RUN_KEY_FILE)
    if not os.path.exists(path):
        return None
    return Signer(_read_seed(path), "vault").public_key


def device_signer(data_dir):
    """The device :class:`~firmware.signing.Signer` this process can have, or None
    (a box whose key is in the MCU vault, and no copy was left in the run directory)."""
    try:
        return load_signer(data_dir, run_dir=run_dir(), create=False)
    except SigningKeyError as exc:
        log.warning("audit entries from this process are not signed: %s", exc)
        return None


class LazySigner:
    """A process's device signer, found once the recorder has made the key.

    For processes that may start before the recorder's first start (the web
    UI): each use looks again until the key is there, then keeps it.
    """

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._signer = None

    def get(self):
        """The :class:`Signer`, or None while this process cannot have one."""
        if self._signer is None:
            try:
                self._signer = load_signer(self.data_dir, run_dir=run_dir(), create=False)
            except SigningKeyError:
                return None
        return self._signer
