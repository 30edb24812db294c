"""Signing key handovers: a replaced HAT's key vouched for by the new HAT's key.

The device signing key lives in the HAT's MCU vault and never leaves it: a
new HAT makes a new key. ``linekeeper hat-replaced`` then has the box write a
*handover statement* (``DATA_DIR/signing.handover``, docs/FORMAT.md gives the
bytes), signed by the NEW key, naming the OLD public key and the audit entry
(sequence number and hash) up to which the old key signed::

    "linekeeper signing key handover v1\\n" || canonical JSON of
      old_key, new_key (base64 raw Ed25519), audit_seq, audit_hash, made_us

Checking starts from the key that counts (the box's own, or a pinned
fingerprint) and walks back: a statement signed by that key names the key
before it, and so on (:func:`trusted_keys`). A signature by an older key then
holds only for audit entries up to its handover's ``audit_seq`` and for
recordings as the audit trail saw them sealed or recovered by then; one made
or relabelled after fails. A
statement signed by any other key (made with the card alone) is ignored and
reported. Nothing here can make a signature: the card still cannot forge one.
"""

import base64
import json
import os

from firmware.storage import fsutil

from .errors import LinekeeperError
from .evidence import canonical
from .signing import fingerprint, verify_signature

HANDOVER_FILE = "signing.handover"
HANDOVER_TAG = b"linekeeper signing key handover v1\n"
VERSION = 1
_BODY_FIELDS = ("old_key", "new_key", "audit_seq", "audit_hash", "made_us")


class HandoverError(LinekeeperError):
    """The handover file is damaged."""


def statement_bytes(body):
    """The bytes a handover's signature covers (``body`` without its signature)."""
    return HANDOVER_TAG + canonical({name: body[name] for name in _BODY_FIELDS})


def make_handover(new_signer, old_public_key, audit_seq, audit_hash, made_us):
    """A handover statement (dict) signed by ``new_signer``: ``old_public_key`` signed the
    audit trail up to entry ``audit_seq`` (whose hash is ``audit_hash``, 64 hex digits)."""
    body = {
        "old_key": base64.b64encode(bytes(old_public_key)).decode("ascii"),
        "new_key": base64.b64encode(new_signer.public_key).decode("ascii"),
        "audit_seq": int(audit_seq),
        "audit_hash": audit_hash,
        "made_us": int(made_us),
    }
    body["signature"] = new_signer.sign(statement_bytes(body)).hex()
    return body


def read_handovers(data_dir):
    """The statements in ``signing.handover`` (oldest first), or [] when there is none.

    :raises HandoverError: the file is damaged
    """
    path = os.path.join(os.fspath(data_dir), HANDOVER_FILE)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        if doc.get("version") != VERSION or not isinstance(doc.get("handovers"), list):
            raise ValueError("unknown version or no list of handovers")
        for item in doc["handovers"]:
            _parse(item)
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HandoverError("%s is damaged: %s" % (path, exc)) from None
    return doc["handovers"]


def append_handover(data_dir, statement):
    """Add ``statement`` to ``signing.handover`` (written whole, atomically)."""
    doc = {"version": VERSION, "handovers": read_handovers(data_dir) + [statement]}
    fsutil.atomic_write(
        os.path.join(os.fspath(data_dir), HANDOVER_FILE), (json.dumps(doc, indent=1) + "\n").encode("ascii")
    )


def begun_handover(data_dir, old_public_key, new_public_key):
    """The statement handing ``old_public_key`` over to ``new_public_key`` that
    ``signing.handover`` already holds, signed by the new key, or None: a move to a new
    HAT cut short after it was written (:func:`firmware.hatswap.move_to_new_hat` then
    finishes that move rather than making a second statement).

    :raises HandoverError: ``signing.handover`` is damaged
    """
    for item in read_handovers(data_dir):
        old_key, new_key, _, _, signature = _parse(item)
        if (old_key, new_key) == (bytes(old_public_key), bytes(new_public_key)) and verify_signature(
            new_key, signature, statement_bytes(item)
        ):
            return item
    return None


def _parse(item):
    """``(old_key, new_key, audit_seq, audit_hash, signature)`` of one statement.

    :raises ValueError: a field is missing or malformed
    """
    old_key = base64.b64decode(item["old_key"], validate=True)
    new_key = base64.b64decode(item["new_key"], validate=True)
    digest, seq = item["audit_hash"], item["audit_seq"]
    if len(old_key) != 32 or len(new_key) != 32:
        raise ValueError("a key is not 32 bytes")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(item["made_us"], int):
        raise ValueError("audit_seq and made_us must be whole numbers")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("audit_hash must be 64 lower-case hex digits")
    return old_key, new_key, seq, digest, bytes.fromhex(item["signature"])


class TrustedKeys:
    """The box's current public key and the keys it took over, each with its bound.

    ``handed_over``: newest first, ``{"key", "audit_seq", "audit_hash", "made_us"}`` per older
    key (``made_us``: when the new key took it over, by the box's clock; µs since the epoch).
    :meth:`bind_recordings` names the recordings each older key may have signed.
    """

    def __init__(self, current, handed_over=()):
        self.current = bytes(current)
        self.handed_over = list(handed_over)
        self._recordings = None  # old key -> {recording id: (state, sha256)} as sealed up to its bound
        self._upgrade_seq, self._seen = None, set()
        self.statements = []  # the handover statements of the chain, as stored (for export manifests)

    def audit_problem(self, seq, signature, message):
        """None when ``signature`` by a trusted key holds for audit entry ``seq``, else why not."""
        if verify_signature(self.current, signature, message):
            return None
        for old in self.handed_over:
            if verify_signature(old["key"], signature, message):
                if seq <= old["audit_seq"]:
                    return None
                return (
                    "audit entry %d is signed by the replaced key %s after its handover at "
                    "entry %d (a key that no longer signs for this box)"
                    % (seq, fingerprint(old["key"]), old["audit_seq"])
                )
        return (
            "audit entry %d: its signature does not match (rewritten or re-chained without the box's key)"
            % seq
        )

    def bind_recordings(self, seals):
        """Name what each older key may have signed: each recording as the audit trail saw it
        last sealed or recovered up to that key's handover (``seals``:
        :meth:`~firmware.storage.audit.AuditLog.recording_seals` of the whole trail)."""
        self._recordings = {old["key"]: {} for old in self.handed_over}
        self._upgrade_seq, self._seen = None, set()
        for seq, action, target, details in seals:
            if action == "recording_signed_at_upgrade":
                self._upgrade_seq = seq if self._upgrade_seq is None else self._upgrade_seq
                continue
            if not target or not target.startswith("recording:") or not isinstance(details, dict):
                continue
            rid = target.split(":", 1)[1]
            self._seen.add(rid)
            for old in self.handed_over:
                if seq <= old["audit_seq"]:
                    self._recordings[old["key"]][rid] = (details.get("state"), details.get("sha256"))

    def recording_holds(self, row, signature, message):
        """``(ok, reason)``: whether a recording's signature is the box's, now or before a handover.

        An older key's signature holds for ``row`` (its ``id``, ``state``, ``sha256``) only
        as the audit trail saw the recording sealed or recovered before that key's
        handover; or, for a recording from before the trail recorded recordings, when
        the box signed such recordings before the handover.
        """
        if verify_signature(self.current, signature, message):
            return True, None
        for old in self.handed_over:
            if not verify_signature(old["key"], signature, message):
                continue
            if self._recordings is not None:
                seen = self._recordings[old["key"]].get(row["id"])
                if seen == (row["state"], row["sha256"]):
                    return True, None
                older = self._upgrade_seq is not None and self._upgrade_seq <= old["audit_seq"]
                if seen is None and row["id"] not in self._seen and older:
                    return True, None
            return False, (
                "signed by the replaced key %s, but the audit trail did not see it sealed so "
                "before that key's handover (made or re-signed after it)" % fingerprint(old["key"])
            )
        return False, None

    def signed_by_handed_over(self, signature, message):
        """True when a replaced key of the chain made ``signature`` (no bound: for a manifest
        the current key signed, which vouches that the box checked the recording)."""
        return any(verify_signature(o["key"], signature, message) for o in self.handed_over)


def trusted_keys(data_dir, current):
    """``(TrustedKeys, problems)``: the handover chain in ``signing.handover`` that
    ``current`` vouches for (see :func:`chain_of`).

    :raises HandoverError: ``signing.handover`` is damaged
    """
    return chain_of(current, read_handovers(data_dir))


def chain_of(current, items):
    """``(TrustedKeys, problems)``: the chain of handover statements ``items`` that ``current``
    vouches for. Each link is a statement signed by the key after it; its bound may not
    be later than the next link's. Statements outside the chain are reported, not used.

    :raises ValueError: a statement is malformed
    """
    statements = [(_parse(item), item) for item in items]
    chain, used, key, bound = [], set(), bytes(current), None
    while True:
        found = None
        for i, ((old_key, new_key, seq, digest, sig), item) in enumerate(statements):
            if i in used or new_key != key or old_key == key:
                continue
            if bound is not None and seq > bound:
                continue
            if verify_signature(new_key, sig, statement_bytes(item)):
                found = i, old_key, seq, digest
                break
        if found is None or found[1] == bytes(current) or any(link["key"] == found[1] for link in chain):
            break
        i, key, bound, digest = found
        used.add(i)
        chain.append(
            {"key": key, "audit_seq": bound, "audit_hash": digest, "made_us": statements[i][1]["made_us"]}
        )
    problems = [
        "%s: a handover from %s to %s is not vouched for by this box's key (made elsewhere, "
        "or damaged): ignored" % (HANDOVER_FILE, fingerprint(s[0]), fingerprint(s[1]))
        for i, (s, _) in enumerate(statements)
        if i not in used
    ]
    keys = TrustedKeys(current, chain)
    keys.statements = [statements[i][1] for i in sorted(used)]
    return keys, problems


def box_keys(data_dir, public_key, audit):
    """The keys that playback and export check a recording's seal with: ``public_key`` (the
    box's, on record) and the replaced keys it vouches for, bound to ``audit`` (an
    :class:`~firmware.storage.audit.AuditLog`); None when the box has no key yet.
    Statements it does not vouch for are left out here; ``verify`` reports them."""
    if public_key is None:
        return None
    keys = trusted_keys(data_dir, public_key)[0]
    if keys.handed_over:
        keys.bind_recordings(audit.recording_seals())
    return keys
