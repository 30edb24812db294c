"""Signed export manifests: a recording handed over can be checked without the box.

``linekeeper export --out FILE`` writes ``FILE`` and, beside it,
``FILE.manifest.json``: what was exported (size and SHA-256 of the exported
file), from which recording and call, the recording's own sealed statement
and the signature the box made when it sealed it, and the box's public
signing key; all of it signed by the box's device key (docs/FORMAT.md has
the bytes). ``linekeeper verify-export FILE --key FINGERPRINT`` checks it on
any machine with only the fingerprint (:func:`verify_export`): one changed
byte in the file or the manifest fails it.

The central archive viewer cannot sign as a box (it never holds a box's
key), so its export (:data:`ARCHIVE_FORMAT`, made by
:mod:`firmware.archive.export`) carries what the box itself signed: the box's
recording file byte for byte (still encrypted), the seal the box made of it
when it was sealed, the box's public key, that recording's data key, the
audio decrypted, and the call record. :func:`verify_export` then checks the
seal over the file with the pinned fingerprint, restates the seal from the
file itself, decrypts the file with the data key and requires the audio to be
exactly what it holds, and the call record to name the sealed call. The
manifest's own remarks (who exported, when, why) are not signed: the viewer's
audit trail records them.
"""

import base64
import hashlib
import json
import os
import shutil
import tempfile
import zipfile

from .errors import LinekeeperError, TamperError
from .evidence import call_fields, canonical, file_facts, statement
from .handover import chain_of
from .recording.segment import SegmentReader
from .signing import fingerprint, normalise_fingerprint, verify_signature

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_TAG = b"linekeeper export manifest v1\n"
FORMAT = "linekeeper-export-manifest"
ARCHIVE_FORMAT = "linekeeper-archive-export-manifest"
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

    ``path`` may be the zip the call page's export "with signed manifest" gives (the audio
    and its manifest, or a central viewer's export): it is checked as the files in it.
    """
    pinned = normalise_fingerprint(pinned_fingerprint)
    if manifest_file is None and not os.path.exists(manifest_path(path)) and zipfile.is_zipfile(path):
        return _verify_zip(path, pinned)
    manifest_file = manifest_file or manifest_path(path)
    try:
        with open(manifest_file, "rb") as f:
            doc = json.loads(f.read())
        if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, ARCHIVE_FORMAT):
            raise ValueError("not a Linekeeper export manifest")
        if doc.get("version") != VERSION:
            raise ValueError("unknown manifest version %r" % doc.get("version"))
        if doc["format"] == ARCHIVE_FORMAT:
            signature = None
        else:
            signature = bytes.fromhex(doc.pop("signature"))
        public_key = base64.b64decode(doc["signing_key"], validate=True)
    except FileNotFoundError:
        if not os.path.exists(path):  # the export itself, not only its manifest
            raise LinekeeperError("%s: no such file" % path) from None
        raise LinekeeperError(
            "no manifest %s beside %s: a plain Ogg or WAV download from a call's page carries none; "
            'export the call again "with signed manifest (.zip)" and check that zip' % (manifest_file, path)
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TamperError("%s is damaged: %s" % (manifest_file, exc)) from None
    if signature is None:
        return _verify_archive_export(path, pinned, doc, os.path.dirname(os.path.abspath(manifest_file)))
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


# A box's zip holds two files, a central viewer's four: more is not an export's.
ZIP_MEMBERS_MAX = 8


def _verify_zip(path, pinned):
    """:func:`verify_export` of an export's zip: its files unpacked into a private folder
    that is removed after, the one its manifest is beside checked; what fails is said of
    the file's name in the zip, never of the folder."""
    with zipfile.ZipFile(path) as z:
        names = [i.filename for i in z.infolist() if not i.is_dir()]
        for name in names:
            if os.path.basename(name) != name or name in (".", "..") or "\\" in name:
                raise TamperError("%s holds a file in a folder (%r): not an export's zip" % (path, name))
        if len(names) > ZIP_MEMBERS_MAX or len(set(names)) != len(names):
            raise TamperError("%s holds %d files: not an export's zip" % (path, len(names)))
        manifests = [n for n in names if n.endswith(MANIFEST_SUFFIX)]
        if len(manifests) != 1:
            raise LinekeeperError(
                "%s holds %s (a file ending %s): it is not the zip of an export with a signed manifest"
                % (path, "no manifest" if not manifests else "%d manifests" % len(manifests), MANIFEST_SUFFIX)
            )
        where = tempfile.mkdtemp(prefix="verify-export-")
        try:
            for name in names:
                with z.open(name) as src, open(os.path.join(where, name), "xb") as dst:
                    shutil.copyfileobj(src, dst)
            exported = os.path.join(where, manifests[0][: -len(MANIFEST_SUFFIX)])
            try:
                return verify_export(exported, pinned)
            except LinekeeperError as exc:
                said = str(exc).replace(where + os.sep, "")
                kind = TamperError if isinstance(exc, TamperError) else LinekeeperError
                raise kind("in %s: %s" % (path, said)) from None
        finally:
            shutil.rmtree(where, ignore_errors=True)


def decrypt_recording(path, data_key, state):
    """``(audio bytes, complete)`` of the recording file at ``path``, every chunk verified;
    a ``partial`` recording gives what precedes its damage.

    :raises TamperError: a ``complete`` recording's chunk does not verify
    """
    reader = SegmentReader(path, data_key)
    chunks = []
    try:
        for chunk in reader.chunks():
            chunks.append(chunk)
    except TamperError:
        if state != "partial":
            raise
        return b"".join(chunks), False
    return b"".join(chunks), bool(reader.complete)


def _sibling(where, name):
    """The file ``name`` (a bare name from the manifest) in directory ``where``."""
    if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
        raise TamperError("the manifest names a file %r outside its folder" % (name,))
    return os.path.join(where, name)


def _verify_archive_export(path, pinned, doc, where):
    """:func:`verify_export` for a central viewer's export (see the module docstring)."""
    try:
        public_key = base64.b64decode(doc["signing_key"], validate=True)
        recording = doc["recording"]
        seal = bytes.fromhex(recording["signature"])
        data_key = bytes.fromhex(doc["data_key"])
        audio_name, call_name = doc["audio"]["name"], doc["call_record"]["name"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TamperError("the manifest is damaged: %s" % exc) from None
    if fingerprint(public_key) != pinned:
        raise TamperError(
            "the recording was sealed by key %s, not by the box %s" % (fingerprint(public_key), pinned)
        )
    try:
        facts = file_facts(path)
    except FileNotFoundError:
        raise LinekeeperError("no file %s" % path) from None
    if facts is None or facts["header"] is None:
        raise TamperError("%s holds no recording header" % path)
    stated = statement(recording["id"], recording["state"], facts, call_fields(facts["header"], None))
    if not _signed_by(public_key, seal, stated, doc):
        raise TamperError(
            "%s is not the recording the box sealed: its seal does not match the file, "
            "its state or its call" % path
        )
    if stated.decode("ascii") != recording.get("statement"):
        raise TamperError("the manifest's statement of the recording is not the file's")
    try:
        with open(_sibling(where, audio_name), "rb") as f:
            audio = f.read()
        with open(_sibling(where, call_name), "rb") as f:
            call = json.loads(f.read())
        said = {
            "call_id": call["call_id"],
            "line": call["line"],
            "direction": call["direction"],
            "call_started_us": call["started_us"],
        }
    except FileNotFoundError as exc:
        raise LinekeeperError("the export is incomplete: no %s" % exc.filename) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperError("%s is damaged: %s" % (call_name, exc)) from None
    try:
        decrypted, _ = decrypt_recording(path, data_key, recording["state"])
    except TamperError as exc:
        raise TamperError("the data key in the manifest does not open %s: %s" % (path, exc)) from None
    if decrypted != audio:
        raise TamperError("%s is not the audio the sealed recording holds" % audio_name)
    fields = call_fields(facts["header"], None)
    wrong = [k for k, v in said.items() if fields[k] is not None and v != fields[k]]
    if wrong:
        raise TamperError("%s is not the sealed recording's call (%s differ)" % (call_name, ", ".join(wrong)))
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
    return _signed_by(public_key, signature, message, doc)


def _signed_by(public_key, signature, message, doc):
    """Whether ``public_key``, or a key it took over by the handover chain ``doc`` carries,
    made ``signature`` over ``message``."""
    if verify_signature(public_key, signature, message):
        return True
    try:
        keys = chain_of(public_key, doc.get("handovers") or [])[0]
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return keys.signed_by_handed_over(signature, message)
