"""Personal data in the call log and audit trail, sealed under a key the card does not hold.

Callers' and called numbers, caller-ID names and the audit trail's details
(addresses, reasons, notes) are stored as *sealed text*::

    "lkp1:" || base64(nonce (12 bytes) || ChaCha20-Poly1305(text, aad=field))
    nonce = HMAC-SHA256(nonce key, field || 0x00 || text), first 12 bytes

under the box's *storage data key*, a random 32-byte key made once per box.
The card holds that key only wrapped (``storage.key``, JSON: the wrapping
nonce and sealed key, and where the wrapping key lives). The wrapping key is
the HAT's MCU vault's storage key (``read_key("storage")``), which lives in
the MCU's own flash and is read over I2C once per boot; the recorder leaves
the unwrapped data key in the RAM-only run directory (``/run``, tmpfs) for
the box's other processes (web UI, ``linekeeper calls``), as it does the
device signing key (:mod:`firmware.signing`).

A box whose HAT has no MCU has nowhere but the card to keep a wrapping key,
and a key on the card beside the data protects nothing: such a box keeps the
fields in clear, and the security page and docs/card-alone.md say so.

The nonce is synthetic (deterministic): one text of one field always seals
the same, so a recording header's number still matches its call-log row and
the signed statements stay stable. The card therefore shows which calls
share a number or name (as a blind index would), never the number or name.

Values written before sealing began (plain text, no ``lkp1:`` prefix) are
read as they are; :func:`seal_call_log` seals them in place (the migration).
Number searches run over the opened values inside SQLite (``lk_open``, a
function registered on the search connection): a page of calls is filled by
opening numbers in time order, so nothing on the card can be matched without
the key.
"""

import base64
import binascii
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware.errors import LinekeeperError, TamperError
from firmware.signing import run_dir_words
from firmware.storage import crypto, fsutil

PREFIX = "lkp1:"
KEY_FILE = "storage.key"  # the wrapped data key, on the card
RUN_KEY_FILE = "storage-data.key"  # the unwrapped data key, in the RAM run directory
KEY_BYTES = 32
NONCE_BYTES = 12
_FIELD_INFO = b"linekeeper field seal v1"
_DERIVE_INFO = b"linekeeper storage derived v1"
_WRAP_AAD = b"linekeeper storage data key v1"
# Contexts of the escrow copies (wrapped to the recording public key), so one never opens as the other.
ESCROW_DATA_KEY = b"linekeeper storage data key escrow v1"
# The call log's columns that hold personal data: a person's number and caller-ID name.
CALL_FIELDS = ("number", "name")


class FieldSealError(LinekeeperError):
    """Sealed personal data cannot be opened: no key, another box's key, or damaged."""


class FieldCipher:
    """Seals and opens text fields with the box's storage data key (32 bytes)."""

    def __init__(self, data_key):
        if not isinstance(data_key, (bytes, bytearray)) or len(data_key) != KEY_BYTES:
            raise ValueError("the storage data key must be %d bytes" % KEY_BYTES)
        keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_FIELD_INFO).derive(bytes(data_key))
        self._aead = ChaCha20Poly1305(keys[:32])
        self._nonce_key = keys[32:]
        # What other keys are derived from (derive), never the data key itself.
        self._derive_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVE_INFO).derive(
            bytes(data_key)
        )

    def derive(self, purpose):
        """32 bytes for ``purpose`` (bytes), derived from the storage data key (HKDF, the
        purpose in its ``info``): the same whenever this box asks, unrelated to the field
        keys, to any other purpose's and to the data key (which none of them gives away)."""
        info = b"linekeeper derived: " + purpose
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._derive_key)

    def seal(self, text, field):
        """``text`` (str or None) as sealed text bound to ``field`` (a column name); None stays None."""
        if text is None or is_sealed(text):
            return text
        plain = str(text).encode("utf-8")
        # A synthetic nonce (as AES-SIV makes one): the same text of the same field seals
        # the same, so a call's number in its recording's header matches its call-log
        # row, while distinct texts never share a nonce.
        nonce = hmac.new(self._nonce_key, field.encode("ascii") + b"\0" + plain, "sha256").digest()
        nonce = nonce[:NONCE_BYTES]
        sealed = self._aead.encrypt(nonce, plain, field.encode("ascii"))
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, value, field):
        """The text a sealed ``value`` holds; plain text and None come back as they are.

        :raises FieldSealError: sealed with another key or for another field, or damaged
        """
        if not is_sealed(value):
            return value
        try:
            raw = base64.b64decode(value[len(PREFIX) :], validate=True)
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], field.encode("ascii"))
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise FieldSealError(
                "a sealed %s in the call log or audit trail does not open with this box's "
                "storage key (another box's card, or damaged)" % field
            ) from exc
        return plain.decode("utf-8")

    def open_quietly(self, value, field):
        """:meth:`open`, with None for a value that does not open (SQL functions must not raise)."""
        try:
            return self.open(value, field)
        except FieldSealError:
            return None

    def __reduce__(self):
        raise TypeError("a FieldCipher holds a key and is not pickled")


def is_sealed(value):
    return isinstance(value, str) and value.startswith(PREFIX)


def opener(cipher):
    """``fn(value, field)`` opening sealed text with ``cipher``, or leaving it as it is
    when there is no cipher (a box that does not seal)."""
    if cipher is None:
        return lambda value, field: value
    return cipher.open


def register_sql(db, cipher):
    """Give connection ``db`` the SQL function ``lk_open(value, field)``."""
    fn = (lambda value, field: value) if cipher is None else cipher.open_quietly
    db.create_function("lk_open", 2, fn, deterministic=True)


class LazyFieldCipher:
    """A process's field cipher, found once the recorder has left the key in the run
    directory (for the web UI, which may start before the recorder after a boot).

    Duck-types :class:`FieldCipher`. While the box does not seal (no ``storage.key``)
    it seals nothing and opens only plain text; once it does, each use looks for
    the recorder's copy until it is there.
    """

    def __init__(self, data_dir, run_dir):
        self.data_dir = data_dir
        self.run_dir = run_dir
        self._cipher = None

    def get(self):
        """The :class:`FieldCipher`, or None while the box does not seal.

        :raises FieldSealError: the box seals and the recorder's copy is not there
        """
        if self._cipher is None:
            self._cipher = load_field_cipher(self.data_dir, run_dir=self.run_dir, create=False)
        return self._cipher

    def seal(self, text, field):
        cipher = self.get()
        return text if cipher is None else cipher.seal(text, field)

    def open(self, value, field):
        if not is_sealed(value):
            return value
        cipher = self.get()
        if cipher is None:
            raise FieldSealError("a sealed %s, and this box keeps no storage key" % field)
        return cipher.open(value, field)

    def open_quietly(self, value, field):
        try:
            return self.open(value, field)
        except FieldSealError:
            return None

    def derive(self, purpose):
        """:meth:`FieldCipher.derive`, or None while the box does not seal.

        :raises FieldSealError: the box seals and the recorder's copy is not there
        """
        cipher = self.get()
        return None if cipher is None else cipher.derive(purpose)


# ---------------------------------------------------------------- the key
def load_field_cipher(data_dir, vault=None, run_dir=None, create=True, escrow=None):
    """The box's :class:`FieldCipher`, or None when this box does not seal (no MCU).

    :param vault: the MCU link (``read_key("storage")``), when the HAT has one;
        the data key is unwrapped with its key (made and wrapped the first
        time) and, when ``run_dir`` is given, left there for the box's other
        processes
    :param run_dir: the RAM-only run directory, where processes that did not
        read the vault find the data key
    :param create: make the data key when the box has none yet (the recorder)
    :param escrow: the recording public key (32 bytes): when ``storage.key``
        has no escrow copy yet, the data key is wrapped to it and added
        (:func:`read_escrow`), so the recovery key can move it to a new HAT (the
        recorder passes it). An escrow copy that still holds a signing seed (an
        unreleased firmware made one) loses it here. The signing key is never
        escrowed: a new HAT makes its own and takes over (:mod:`firmware.handover`)
    :raises FieldSealError: the card's data is sealed and this process cannot
        have the key (vault locked and no run copy, another box's vault)
    """
    path = os.path.join(data_dir, KEY_FILE)
    record = _read_record(path)
    run_copy = None if run_dir is None else os.path.join(run_dir, RUN_KEY_FILE)
    if vault is not None:
        try:
            wrapping = vault.read_key("storage")
        except OSError as exc:
            if run_copy is None or not os.path.exists(run_copy):
                raise FieldSealError("the MCU key vault did not give its storage key: %s" % exc) from exc
            data_key = _read_key(run_copy)
            _complete_escrow(path, record, data_key, escrow)
            return FieldCipher(data_key)
        if record is None:
            if not create:
                return None
            data_key = os.urandom(KEY_BYTES)
            record = wrap_record(wrapping, data_key)
            _write_record(path, record, None if escrow is None else _escrow_doc(data_key, escrow))
        else:
            data_key = _unwrap(record, wrapping, path)
            _complete_escrow(path, record, data_key, escrow)
        if run_copy is not None:
            os.makedirs(run_dir, mode=0o750, exist_ok=True)
            fsutil.atomic_write(run_copy, data_key, mode=0o640)
        return FieldCipher(data_key)
    if run_copy is not None and os.path.exists(run_copy):
        return FieldCipher(_read_key(run_copy))
    if record is not None:
        raise FieldSealError(
            "the call log's personal data is sealed with a key kept in the HAT's MCU vault and "
            "this process has no copy of it (%s: run this on the box, with the recorder running)"
            % run_dir_words(run_dir)
        )
    return None


def _read_record(path):
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        sealed = base64.b64decode(doc["sealed"], validate=True)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        if doc["version"] != 1 or doc["wrapped_by"] != "vault" or len(nonce) != NONCE_BYTES:
            raise ValueError("unknown version or wrapping")
        escrow = doc.get("escrow")
        if escrow is not None:
            carried_seed = "signing_seed" in escrow
            escrow = {
                name: _unb64(escrow[name], size)
                for name, size in (("public_key", KEY_BYTES), ("data_key", crypto.WRAPPED_KEY_BYTES))
            }
            if carried_seed:
                escrow["signing_seed"] = True  # only noted: dropped at the recorder's next start
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise FieldSealError("%s is damaged: %s" % (path, exc)) from None
    return {"nonce": nonce, "sealed": sealed, "escrow": escrow}


def _unb64(text, size):
    raw = base64.b64decode(text, validate=True)
    if len(raw) != size:
        raise ValueError("an escrow field has %d bytes, not %d" % (len(raw), size))
    return raw


def wrap_record(wrapping, data_key):
    """``data_key`` wrapped under a vault's storage key ``wrapping``, as a record (no escrow)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = ChaCha20Poly1305(bytes(wrapping)).encrypt(nonce, bytes(data_key), _WRAP_AAD)
    return {"nonce": nonce, "sealed": sealed, "escrow": None}


def _escrow_doc(data_key, recording_public_key):
    """The escrow copy: the data key wrapped to the recording public key, whose private key
    opens only with a password or the recovery key."""
    return {
        "public_key": bytes(recording_public_key),
        "data_key": crypto.wrap_data_key(data_key, recording_public_key, ESCROW_DATA_KEY),
    }


def _complete_escrow(path, record, data_key, escrow):
    """Make the escrow copy of a box from before it, or drop a signing seed an unreleased
    firmware put in it (whoever opened it could sign as the box, docs/evidence.md)."""
    if record is None:
        return
    if escrow is not None and (record["escrow"] is None or record["escrow"]["public_key"] != bytes(escrow)):
        # A box from before the escrow, or after `rekey` replaced the recording key (the
        # old copy would open only with keys that no longer exist): made now, while the
        # key is open.
        _write_record(path, record, _escrow_doc(data_key, escrow))
    elif record["escrow"] is not None and record["escrow"].pop("signing_seed", None):
        _write_record(path, record, record["escrow"])


def _write_record(path, record, escrow):
    doc = {
        "version": 1,
        "wrapped_by": "vault",
        "nonce": base64.b64encode(record["nonce"]).decode("ascii"),
        "sealed": base64.b64encode(record["sealed"]).decode("ascii"),
    }
    if escrow is not None:
        doc["escrow"] = {name: base64.b64encode(value).decode("ascii") for name, value in escrow.items()}
    fsutil.atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode("ascii"), mode=0o600)


def _unwrap(record, wrapping, path):
    try:
        return ChaCha20Poly1305(bytes(wrapping)).decrypt(record["nonce"], record["sealed"], _WRAP_AAD)
    except InvalidTag:
        raise FieldSealError(
            "%s does not open with this HAT's MCU vault: the card was moved to another box, "
            "or the HAT was replaced (then run `linekeeper hat-replaced` with the recovery key, "
            "docs/operating.md)" % path
        ) from None


# ---------------------------------------------------------------- the escrow (a new HAT)
def read_escrow(data_dir):
    """The escrow copy in ``storage.key``: ``{"public_key", "data_key"}`` (the data key
    wrapped by :func:`firmware.storage.crypto.wrap_data_key`), or None.

    :raises FieldSealError: the box does not seal (no ``storage.key``) or the file is damaged
    """
    path = os.path.join(data_dir, KEY_FILE)
    record = _read_record(path)
    if record is None:
        raise FieldSealError(
            "%s has no %s: this box seals nothing, so there is no key to move" % (data_dir, KEY_FILE)
        )
    return record["escrow"]


def opens_with(data_dir, wrapping):
    """True when ``storage.key`` opens with the vault storage key ``wrapping``."""
    record = _read_record(os.path.join(data_dir, KEY_FILE))
    try:
        ChaCha20Poly1305(bytes(wrapping)).decrypt(record["nonce"], record["sealed"], _WRAP_AAD)
    except InvalidTag:
        return False
    return True


def open_with(data_dir, wrapping):
    """The data key in ``storage.key``, unwrapped with the vault storage key ``wrapping``.

    :raises FieldSealError: it does not open with that key
    """
    path = os.path.join(data_dir, KEY_FILE)
    return _unwrap(_read_record(path), wrapping, path)


def open_escrow(escrow, unlocked):
    """The storage data key from the escrow copy, with an unlocked recording key
    (:class:`firmware.storage.keystore.RecordingKey`).

    :raises FieldSealError: the escrow copy was made for another recording key, or is damaged
    """
    if unlocked.public_key != escrow["public_key"]:
        raise FieldSealError(
            "the escrow copy in %s was made for another recording key than this box's" % KEY_FILE
        )
    try:
        return unlocked.unwrap(escrow["data_key"], ESCROW_DATA_KEY)
    except TamperError as exc:
        raise FieldSealError("the escrow copy in %s is damaged: %s" % (KEY_FILE, exc)) from None


def rewrap(data_dir, wrapping, data_key):
    """Wrap ``data_key`` under a (new) vault storage key ``wrapping``, keeping the escrow copy."""
    path = os.path.join(data_dir, KEY_FILE)
    escrow = _read_record(path)["escrow"]
    if escrow is not None:
        escrow.pop("signing_seed", None)
    _write_record(path, wrap_record(wrapping, data_key), escrow)


def _read_key(path):
    with open(path, "rb") as f:
        key = f.read()
    if len(key) != KEY_BYTES:
        raise FieldSealError("%s is damaged: %d bytes, not %d" % (path, len(key), KEY_BYTES))
    return key


# ---------------------------------------------------------------- migration
def seal_call_log(db, cipher, batch=500):
    """Seal, in place, every personal field of ``calls`` still in clear; returns how many rows.

    ``db``: an open ``calls.db`` connection (autocommit). Batched transactions,
    so a card cut mid-way keeps what was done; running it again finishes the
    job. Afterwards the database is vacuumed so the clear values do not linger
    in free pages (and the write-ahead log is checkpointed and truncated).
    """
    changed = 0
    cols = ", ".join(CALL_FIELDS)
    clear = " OR ".join("(%s IS NOT NULL AND substr(%s, 1, 5) != '%s')" % (c, c, PREFIX) for c in CALL_FIELDS)
    while True:
        rows = db.execute("SELECT id, %s FROM calls WHERE %s LIMIT ?" % (cols, clear), (batch,)).fetchall()
        if not rows:
            break
        db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                values = [cipher.seal(v, f) for v, f in zip(row[1:], CALL_FIELDS, strict=True)]
                db.execute(
                    "UPDATE calls SET %s WHERE id = ?" % ", ".join("%s = ?" % c for c in CALL_FIELDS),
                    values + [row[0]],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        changed += len(rows)
    if changed:
        _forget_clear_text(db)
    return changed


def _forget_clear_text(db):
    """Rebuild the trigram indexes (they held the clear numbers and names), vacuum, and
    truncate the write-ahead log."""
    for table in ("calls_number_fts", "calls_name_fts"):
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
            db.execute("INSERT INTO %s (%s) VALUES ('rebuild')" % (table, table))
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
