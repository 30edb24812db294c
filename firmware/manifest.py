"""Signed export manifests: a recording handed over can be checked without the box.

``linekeeper export --out FILE`` writes ``FILE`` and, beside it,
``FILE.manifest.json``: what was exported (size and SHA-256 of the exported
file), from which recording and call, the recording's own sealed statement
and the signature the box made when it sealed it, and the box's public
signing key; all of it signed by the box's device key (docs/FORMAT.md has
the bytes). ``linekeeper verify-export FILE --key FINGERPRINT`` checks it on
any machine with only the fingerprint (:func:`verify_export`): one changed
byte in the file or the manifest fails it.
"""

import base64
import hashlib
import json
import os

from .errors import LinekeeperError, TamperError
from .evidence import canonical
from .handover import chain_of
from .signing import fingerprint, normalise_fingerprint, verify_signature

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_TAG = b"linekeeper export manifest v1\n"
FORMAT = "linekeeper-export-manifest"
VERSION = 1


def manifest_path(export_path):
    return os.fspath(export_path) + MANIFEST_SUFFIX


def build_manifest(signer, payload, file_name, row, statement, exported_by, exported_at_us, handovers=()):
    """The signed manifest (bytes, JSON) of an export.

    :param payload: the exported file's bytes
    :param row: the recording's row (``id``, ``state``, ``call_id``, ``signature``)
    :param statement: the recording's signed statement (:func:`firmware.evidence.statement`)
    :param handovers: the box's key handover statements (:mod:`firmware.handover`): carried
        in the manifest when the recording was signed by a key a replaced HAT handed over
    """
    body = {
        "format": FORMAT,
        "version": VERSION,
        "file": {
            "name": os.path.basename(file_name),
            "bytes": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        },
        "recording": {
            "id": row["id"],
            "state": row["state"],
            "call_id": row["call_id"],
            "statement": statement.decode("ascii"),
            "signature": bytes(row["signature"]).hex() if row.get("signature") else None,
        },
        "exported_by": exported_by,
        "exported_at_us": int(exported_at_us),
        "signing_key": base64.b64encode(signer.public_key).decode("ascii"),
        "fingerprint": signer.fingerprint,
    }
    signature = row.get("signature")
    if handovers and signature and not verify_signature(signer.public_key, bytes(signature), statement):
        body["handovers"] = list(handovers)
    body["signature"] = signer.sign(MANIFEST_TAG + canonical(body)).hex()
    return json.dumps(body, indent=1, sort_keys=True).encode("ascii") + b"\n"


def verify_export(path, pinned_fingerprint, manifest_file=None):
    """Check an export against its manifest and the box's fingerprint; returns the manifest.

    :raises TamperError: the file, the manifest or a signature does not hold
    :raises LinekeeperError: no manifest, or the fingerprint is malformed
    """
    pinned = normalise_fingerprint(pinned_fingerprint)
    manifest_file = manifest_file or manifest_path(path)
    try:
        with open(manifest_file, "rb") as f:
            doc = json.loads(f.read())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a Linekeeper export manifest")
        if doc.get("version") != VERSION:
            raise ValueError("unknown manifest version %r" % doc.get("version"))
        signature = bytes.fromhex(doc.pop("signature"))
        public_key = base64.b64decode(doc["signing_key"], validate=True)
    except FileNotFoundError:
        raise LinekeeperError("no manifest %s beside %s" % (manifest_file, path)) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TamperError("%s is damaged: %s" % (manifest_file, exc)) from None
    if fingerprint(public_key) != pinned:
        raise TamperError(
            "the manifest was signed by key %s, not by the box %s" % (fingerprint(public_key), pinned)
        )
    if not verify_signature(public_key, signature, MANIFEST_TAG + canonical(doc)):
        raise TamperError("the manifest's signature does not match: the manifest was changed")
    if not _sealed_by_box(public_key, doc):
        raise TamperError("the recording's seal in the manifest is not the box's")
    with open(path, "rb") as f:
        data = f.read()
    if (len(data), hashlib.sha256(data).hexdigest()) != (doc["file"]["bytes"], doc["file"]["sha256"]):
        raise TamperError(
            "%s is not the file that was exported (%d bytes, SHA-256 differs "
            "or size was %d)" % (path, len(data), doc["file"]["bytes"])
        )
    return doc


def _sealed_by_box(public_key, doc):
    """Whether the recording's signature in ``doc`` is the box's: its key's, or a key it took
    over from a replaced HAT, by a handover chain the manifest carries (:mod:`firmware.handover`)."""
    recording = doc["recording"]
    try:
        signature = bytes.fromhex(recording["signature"] or "")
        message = recording["statement"].encode("ascii")
    except (ValueError, TypeError, AttributeError):
        return False
    if not signature:
        return False
    if verify_signature(public_key, signature, message):
        return True
    try:
        keys = chain_of(public_key, doc.get("handovers") or [])[0]
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return keys.signed_by_handed_over(signature, message)
