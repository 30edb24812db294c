"""One call's recording exported from the archive, checkable offline with ``verify-export``.

The central viewer holds no box's signing key, so it cannot sign an export
as a box does; what it hands over is what the box itself signed. A zip of::

    recording.lkrec                 the box's recording file, byte for byte (encrypted)
    recording.lkrec.manifest.json   the box's seal of it, its public key, the data key;
                                    who exported it, when and why (the viewer's remarks)
    audio.ogg (or .wav)             the audio the file holds, decrypted
    call.json                       the call record (its sealed part opened)

Unpacked, ``linekeeper verify-export recording.lkrec --key FINGERPRINT``
checks it without the box, the bucket or any password
(:func:`firmware.manifest.verify_export`). The manifest carries that one
recording's data key: it opens only this file, whose audio is in the zip in
clear anyway, and it is what lets the auditor prove the audio is the sealed
file's.
"""

import base64
import hashlib
import io
import json
import zipfile

from ..errors import LinekeeperError
from ..evidence import call_fields, file_facts, statement
from ..manifest import ARCHIVE_FORMAT, MANIFEST_SUFFIX, VERSION, decrypt_recording
from ..signing import fingerprint, verify_signature
from . import sealing
from .replicator import signing_key_key

RECORDING_NAME = "recording.lkrec"
CALL_NAME = "call.json"


def box_public_key(bucket, box):
    """The box's public signing key as it archived it (``BOX/signing-key.json``).

    :raises LinekeeperError: the box never sent one (a box archiving with older firmware)
    """
    return box_signing_key(bucket, box)[0]


def box_signing_key(bucket, box):
    """``(public key, handover statements)`` as the box archived them (``BOX/signing-key.json``;
    the statements by which its key took over from a replaced HAT's, [] when none).

    :raises LinekeeperError: the box never sent one (a box archiving with older firmware)
    """
    key = signing_key_key(box)
    if bucket.head(key) is None:
        raise LinekeeperError(
            "site %s has not archived its public signing key (its firmware predates central "
            "exports): export the call on the box itself" % box
        )
    doc = json.loads(bucket.get(key))
    return base64.b64decode(doc["public_key"], validate=True), list(doc.get("handovers") or [])


def export_call(bucket, record, org_key, tmp_dir, exported_by, exported_at_us, audio_ext="ogg", *, reason):
    """``(zip bytes, summary dict)`` of a call's (last) archived recording.

    ``record``: the call record read by :func:`firmware.archive.viewer.read_record`
    with ``org_key``. The still-encrypted file passes through a temporary file in
    ``tmp_dir``, removed before this returns. ``reason``: why it is exported, as the
    person gave it (:func:`web.site.given_reason`); the manifest carries it beside who
    and when, so whoever is handed the zip reads why it was taken. Like them it is the
    viewer's remark, not signed by the box: the viewer's ``export`` entry is the record.

    :raises LinekeeperError: no recording, no seal by the box, or no public key archived
    :raises TamperError: the archived object does not match its hash, or its seal
    """
    rec = sealing.last_archived(record)
    if not rec.get("signature"):
        raise LinekeeperError(
            "recording %s was archived without the box's seal (older firmware): export it on the box"
            % rec["id"]
        )
    public_key, handovers = box_signing_key(bucket, record["box"])
    with sealing.restored_copy(bucket, rec, org_key, tmp_dir) as (path, restored, data_key):
        facts = file_facts(path)
        stated = statement(rec["id"], rec["state"], facts, call_fields(facts["header"], None))
        audio, complete = decrypt_recording(path, data_key, rec["state"])
    call = {k: v for k, v in record.items() if k != "sealed"}
    call_bytes = json.dumps(call, indent=1, sort_keys=True).encode() + b"\n"
    audio_name = "audio." + audio_ext
    manifest = {
        "format": ARCHIVE_FORMAT,
        "version": VERSION,
        "box": record["box"],
        "file": _described(RECORDING_NAME, restored),
        "audio": _described(audio_name, audio),
        "call_record": _described(CALL_NAME, call_bytes),
        "recording": {
            "id": rec["id"],
            "state": rec["state"],
            "call_id": record["call_id"],
            "statement": stated.decode("ascii"),
            "signature": rec["signature"],
        },
        "data_key": data_key.hex(),
        "signing_key": base64.b64encode(public_key).decode("ascii"),
        "fingerprint": fingerprint(public_key),
        "exported_by": exported_by,
        "exported_at_us": int(exported_at_us),
        "reason": reason,
        "exported_from": "archive viewer (not signed: its audit trail records the export)",
    }
    if handovers and not verify_signature(public_key, bytes.fromhex(rec["signature"]), stated):
        # Sealed by a replaced HAT's key: the chain to the box's key, as the box's own export
        # carries it (firmware.manifest), for verify-export --key with the current fingerprint.
        manifest["handovers"] = handovers
    manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode("ascii") + b"\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr(RECORDING_NAME, restored)
        z.writestr(RECORDING_NAME + MANIFEST_SUFFIX, manifest_bytes)
        z.writestr(audio_name, audio)
        z.writestr(CALL_NAME, call_bytes)
    body = out.getvalue()
    summary = {
        "recording_id": rec["id"],
        "recording_sha256": rec["sha256"],
        "zip_sha256": hashlib.sha256(body).hexdigest(),
        "zip_bytes": len(body),
        "complete": complete,
        "fingerprint": manifest["fingerprint"],
    }
    return body, summary


def _described(name, data):
    return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
