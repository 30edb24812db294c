"""A backup of the key store, and putting it back (docs/keys.md, docs/recovery.md).

``keys/keystore.json`` holds the box's recording keys sealed in password and recovery
slots: without it, no recording on the card can ever be opened again. A backup is the
file as it is, in a JSON document that says which box and when::

    {"format": "linekeeper-keystore-backup", "version": 1,
     "made_at": "2026-03-02T09:00:00Z", "host": "linekeeper-3f2a",
     "signing_key": "lk1:…" or null, "key_store": "ks1:…",
     "keystore": "<keystore.json's text>"}

``key_store`` is the fingerprint of the key store's admin public key (the settings
page shows the current one): a rekey makes new keys, and a backup made before it
names another. The copy opens nothing without a password or the recovery key.

Putting it back (:func:`restore`) is for a card whose ``keystore.json`` is missing:
only then, and only a copy that opens with the recovery key or a password given, and
that is this box's (its admin key is the one pinned in ``recording-key.pin``, else
its signing key is this box's or one it took over from). The file is written
atomically; the caller audits it.
"""

import base64
import datetime as dt
import hashlib
import json
import os
import socket

from .errors import LinekeeperError
from .handover import HandoverError, chain_of, read_handovers
from .keypin import PIN_FILE
from .signing import SigningKeyError, fingerprint, read_public_record
from .storage.keystore import KeyStore, decode_document, open_copy

BACKUP_FORMAT = "linekeeper-keystore-backup"
BACKUP_VERSION = 1
MAX_BACKUP_BYTES = 4 * 1024 * 1024  # a key store of every line and many users is a few KiB


class KeyBackupError(LinekeeperError, ValueError):
    """A key store backup that is not one, not this box's, or not to be put back now."""


def key_store_fingerprint(public_key):
    """The fingerprint of a key store (its admin public key): ``ks1:`` and 8 groups of 4 hex digits."""
    digest = hashlib.sha256(b"linekeeper key store\x00" + bytes(public_key)).hexdigest()[:32]
    return "ks1:" + "-".join(digest[i : i + 4] for i in range(0, 32, 4))


def key_store_contents(raw):
    """What the key store file ``raw`` (its bytes) holds, as each backup's audit entry
    records it (``contents``) to tell later whether the key store changed since:
    ``{"digest", "slots", "recovery", "lines"}``, the file's SHA-256 (its first 32 hex
    digits), the users with a password slot, a digest of the recovery slot and the lines
    with a key. A rekey changes the fingerprint; a key slot added or removed, a new
    recovery key or password, a line's key or grant changes only these.

    :raises ValueError: ``raw`` is not a key store (:meth:`KeyStore.copy_bytes` checks it)
    """
    try:
        doc = decode_document(raw)
    except (KeyError, TypeError) as exc:
        raise ValueError("not a key store: %s" % exc) from None
    recovery = [slot.get("kdf") for slot in doc.slots if slot["kind"] == "recovery"]
    return {
        "digest": hashlib.sha256(raw).hexdigest()[:32],
        "slots": sorted(slot["user"] for slot in doc.slots if slot["kind"] == "password"),
        "recovery": hashlib.sha256(json.dumps(recovery, sort_keys=True).encode()).hexdigest()[:16],
        "lines": sorted(doc.lines),
    }


def _iso(wall_us):
    return dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signing_fingerprint(data_dir):
    try:
        record = read_public_record(data_dir)
    except SigningKeyError:
        return None
    return None if record is None else fingerprint(record["public_key"])


def make_backup(data_dir, wall_us):
    """``(file bytes, backup document)`` of ``data_dir``'s key store, made at ``wall_us``.

    :raises NotInitialisedError: the box has no key store
    :raises TamperError: it is damaged (a copy of it would restore nothing)
    """
    raw, public = KeyStore(data_dir).copy_bytes()
    doc = {
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "made_at": _iso(wall_us),
        "host": socket.gethostname(),
        "signing_key": _signing_fingerprint(data_dir),
        "key_store": key_store_fingerprint(public),
        "keystore": raw.decode("ascii"),
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("ascii"), doc


def backup_file_name(doc):
    """What a backup is saved as: ``linekeeper-keystore-HOST-DATE.json``."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in doc["host"])[:63] or "box"
    return "linekeeper-keystore-%s-%s.json" % (host, doc["made_at"][:10])


def read_backup(raw, source):
    """The backup document in ``raw`` (the bytes of the file ``source``), checked.

    :raises KeyBackupError: it is not a key store backup, saying what is wrong
    """
    if len(raw) > MAX_BACKUP_BYTES:
        raise KeyBackupError("%s is not a key store backup: %d bytes, more than any" % (source, len(raw)))
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyBackupError("%s is not a key store backup: not JSON (%s)" % (source, exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise KeyBackupError(
            "%s is not a key store backup (format %r, not %r): a backup is what the settings "
            "page or `linekeeper keystore backup` saves"
            % (source, doc.get("format") if isinstance(doc, dict) else None, BACKUP_FORMAT)
        )
    if doc.get("version") != BACKUP_VERSION:
        raise KeyBackupError(
            "%s is a key store backup of version %r; this release reads version %d"
            % (source, doc.get("version"), BACKUP_VERSION)
        )
    for field in ("made_at", "host", "key_store", "keystore"):
        if not isinstance(doc.get(field), str):
            raise KeyBackupError("%s is damaged: its %s is missing or not text" % (source, field))
    return doc


def _pinned_public_key(data_dir):
    """The admin public key ``recording-key.pin`` holds, or None (no pin, or unreadable)."""
    try:
        with open(os.path.join(data_dir, PIN_FILE), "rb") as f:
            return base64.b64decode(json.loads(f.read())["public_key"], validate=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _another_box(data_dir, doc, public):
    """Why the copy (``doc``, admin key ``public``) is not this box's key store, or None."""
    pinned = _pinned_public_key(data_dir)
    if pinned is not None:
        if pinned == public:
            return None
        return (
            "its key store %s is not the one this box records to (%s, pinned in %s): it is another "
            "box's, or this box's from before a rekey, and opens none of the recordings made since"
            % (doc["key_store"], key_store_fingerprint(pinned), PIN_FILE)
        )
    theirs = doc.get("signing_key")
    try:
        record = read_public_record(data_dir)
        keys = chain_of(record["public_key"], read_handovers(data_dir))[0] if record else None
    except (SigningKeyError, HandoverError):
        keys = None
    if keys is None or not isinstance(theirs, str):
        return None  # nothing on the card says which box it is: opening it is the check
    ours = [keys.current] + [old["key"] for old in keys.handed_over]
    if theirs in {fingerprint(k) for k in ours}:
        return None
    return "it was made on the box whose signing key is %s; this box's is %s" % (
        theirs,
        fingerprint(keys.current),
    )


def restore(data_dir, raw, source, recovery_key=None, user=None, password=None, audited=None):
    """Put the key store in the backup ``raw`` (read from ``source``) back into ``data_dir``.

    The copy must open with ``recovery_key``, or ``user``'s ``password``, and be this box's;
    ``keys/keystore.json`` must be missing. ``audited(details)`` is called once the copy is
    checked, before the file is written (a cut leaves the entry, never a key store put
    back that the trail does not show). Returns the backup document.

    :raises KeyBackupError: nothing was written, saying why
    """
    store = KeyStore(data_dir)
    if store.is_initialised:
        raise KeyBackupError(
            "%s has a key store (keys/keystore.json): a backup is put back only where it is "
            "missing; nothing was changed" % data_dir
        )
    doc = read_backup(raw, source)
    keystore = doc["keystore"].encode("utf-8")
    try:
        key, public = open_copy(keystore, recovery_key=recovery_key, user=user, password=password)
    except LinekeeperError as exc:
        how = "the recovery key" if recovery_key is not None else "%s's password" % user
        raise KeyBackupError(
            "the key store in %s does not open with %s (%s): nothing was changed"
            % (source, how, str(exc).rstrip("."))
        ) from None
    key.forget()
    if key_store_fingerprint(public) != doc["key_store"]:
        raise KeyBackupError(
            "%s is damaged: it names key store %s, and holds %s; nothing was changed"
            % (source, doc["key_store"], key_store_fingerprint(public))
        )
    why = _another_box(data_dir, doc, public)
    if why:
        raise KeyBackupError("%s is not this box's key store backup: %s. Nothing was changed" % (source, why))
    details = {
        "phase": "restored",
        "key_store": doc["key_store"],
        "made_at": doc["made_at"],
        "host": doc["host"],
        "via": "recovery key" if recovery_key is not None else "password",
    }
    if audited is not None:
        audited(details)
    try:
        store.put_back(keystore)
    except (LinekeeperError, OSError) as exc:
        said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if audited is not None:
            audited(dict(details, phase="failed", reason=said))
        raise KeyBackupError("the key store was not put back: %s; nothing was changed" % said) from None
    return doc
