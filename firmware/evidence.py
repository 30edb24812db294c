"""Recordings as evidence: what is signed when a recording is sealed, and how it is checked.

A recording's *statement* names everything that makes it this call's
recording and this long (docs/FORMAT.md gives the bytes)::

    "linekeeper recording v1\\n" || canonical JSON of
      recording_id, call_id, line, direction, call_started_us, number,
      state ("complete" | "partial"), file_bytes, file_sha256, header_sha256,
      chunks (records in the file, the final one included), final (bool)

The box signs it with its device key (:mod:`firmware.signing`) when the
recording is sealed, or, for a recording a crash cut, when the start-up
recovery makes it partial; the signature is kept in the recording's row.
A recording cut short and relabelled ``partial``, one made elsewhere with the
public recording key, or one moved to another call's row, no longer matches
any statement the key signed.

The call fields come from the file's header (sealed when recording began,
authenticated by every chunk); :func:`binding_problems` also requires the
header, the row and the call log's call to agree. A recording whose file
holds no audio (removed at recovery, or never written: the card refused it)
is stated with ``file_sha256`` null and its call fields from the call log,
all but the number, which is null: an outbound call's number is still being
dialled when a recording that stored nothing may already have ended. (Its
signature from before 2026-12-04 covers the call log's number, and holds
while that number stands.)
"""

import hashlib
import json

from .recording.segment import inspect
from .signing import verify_signature
from .storage.fieldseal import is_sealed

STATEMENT_TAG = b"linekeeper recording v1\n"
CALL_FIELDS = ("line", "direction", "started_at", "number")


def canonical(value):
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII only."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def file_facts(path):
    """What the statement says about the file at ``path``, or None when there is no file.

    :raises TamperError: the file is not a recording (see :func:`inspect`)
    """
    try:
        info = inspect(path)
    except FileNotFoundError:
        return None
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        header = f.read(info["header_bytes"])
        h.update(header)
        size += len(header)
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
            size += len(block)
    return {
        "file_bytes": size,
        "file_sha256": h.hexdigest(),
        "header_sha256": hashlib.sha256(header).hexdigest(),
        "chunks": info["chunks"],
        "final": bool(info["closed"]),
        "header": info["header"],
    }


def call_fields(header, call_row):
    """The call's identifying fields: from the sealed header, else from the call log."""
    if header is not None:
        return {
            "call_id": header.get("call_id"),
            "line": header.get("line"),
            "direction": header.get("direction"),
            "call_started_us": header.get("call_started_us"),
            "number": header.get("number"),
        }
    if call_row is None:
        return {"call_id": None, "line": None, "direction": None, "call_started_us": None, "number": None}
    return {
        "call_id": call_row["id"],
        "line": call_row["line"],
        "direction": call_row["direction"],
        "call_started_us": call_row["started_at"],
        "number": call_row["number"],
    }


def statement(recording_id, state, facts, fields):
    """The bytes signed for a recording (see the module docstring)."""
    body = dict(
        fields,
        recording_id=recording_id,
        state=state,
        file_bytes=0,
        file_sha256=None,
        header_sha256=None,
        chunks=0,
        final=False,
    )
    if facts is not None:
        body.update({k: facts[k] for k in ("file_bytes", "file_sha256", "header_sha256", "chunks", "final")})
    return STATEMENT_TAG + canonical(body)


def recording_statement(row, path, call_row):
    """The statement for ``row`` as its file and call stand now."""
    return recording_statements(row, path, call_row)[0]


def recording_statements(row, path, call_row):
    """The statements ``row``'s signature may cover, the one made now first: for a
    recording with no header (no audio stored), also the one releases before
    2026-12-04 signed, with the call log's number."""
    facts = file_facts(path)
    header = facts and facts["header"]
    fields = call_fields(header, call_row)
    if header is not None:
        return [statement(row["id"], row["state"], facts, fields)]
    now = statement(row["id"], row["state"], facts, dict(fields, number=None))
    if fields["number"] is None:
        return [now]
    return [now, statement(row["id"], row["state"], facts, fields)]


def sign_recording(signer, row, path, call_row):
    """The device signature (64 bytes) of ``row``'s recording as it stands now."""
    return signer.sign(recording_statement(row, path, call_row))


def binding_problems(row, header, call_row, cipher=None):
    """Where the sealed header, the row and the call log's call disagree (a list of texts).

    ``header`` is None when the file holds none (no audio was stored).
    """
    where = "recording %s (call %s)" % (row["id"], row["call_id"])
    if call_row is None:
        return ["%s: its call is not in the call log" % where]
    if header is None:
        return []
    problems = []
    if header.get("recording_id") != row["id"]:
        problems.append("%s: the file is recording %s's" % (where, header.get("recording_id")))
    if header.get("call_id") != row["call_id"]:
        problems.append("%s: the file was recorded for call %s" % (where, header.get("call_id")))
    if header.get("created_us") is not None and header["created_us"] != row["started_at"]:
        problems.append("%s: the file began at another time than its row says" % where)
    wanted = {
        "line": header.get("line"),
        "direction": header.get("direction"),
        "started_at": header.get("call_started_us"),
        "number": header.get("number"),
    }
    for name in CALL_FIELDS:
        # The number may only be learnt after recording began (an outbound call's digits).
        if name == "number" and wanted[name] is None:
            continue
        if (
            name == "number"
            and wanted["direction"] == "out"
            and _dialled_on(wanted[name], call_row[name], cipher)
        ):
            continue
        if wanted[name] is not None and not _same(wanted[name], call_row[name], name, cipher):
            problems.append(
                "%s: the call log's %s (%r) is not the recording's (%r)"
                % (where, name.replace("_", " "), call_row[name], wanted[name])
            )
    return problems


def _dialled_on(header_value, row_value, cipher):
    """Whether an outbound call's number in the header is the start of the call log's: a
    recording begun while the number was still being dialled (from off-hook, its notice
    given as the far end answered) holds the digits dialled so far, and the call log the
    whole number. The demo's 0808 call failed verify, and would not play, for this."""
    if header_value is None or row_value is None:
        return False
    if is_sealed(header_value) or is_sealed(row_value):
        if cipher is None:
            return False
        try:
            header_value = cipher.open(header_value, "number") if is_sealed(header_value) else header_value
            row_value = cipher.open(row_value, "number") if is_sealed(row_value) else row_value
        except Exception:  # not this box's seal: the comparison below says so
            return False
    return bool(header_value) and row_value.startswith(header_value)


def _same(header_value, row_value, name, cipher):
    """Whether a header's value and the call log's are the same call's.

    A recording made before the box sealed personal data holds its number in clear
    while the call log's was sealed since (docs/card-alone.md): with the box's
    field cipher the two are compared opened; without it they cannot be, and the
    signature over the header still holds the number.
    """
    if header_value == row_value:
        return True
    if name != "number" or is_sealed(header_value) == is_sealed(row_value):
        return False
    if cipher is None:
        return True
    return cipher.open(header_value, name) == cipher.open(row_value, name)


def signature_problems(public_key, row, path, call_row):
    """Why ``row``'s signature does not hold (a list of texts; empty when it does).

    ``public_key``: the box's key (32 bytes), or its keys with their handovers
    (:class:`firmware.handover.TrustedKeys`, bound to the audit trail): then a
    replaced key's signature holds for the recordings it signed before its handover.
    """
    where = "recording %s (call %s)" % (row["id"], row["call_id"])
    if row["state"] == "recording":
        # Still being recorded (or cut by a crash the next start recovers): the box
        # signs it at its seal. A sealed one whose row was set back to this state is
        # caught by :func:`seal_problems` (the audit trail saw its seal).
        return []
    if "signature" not in row:
        return [
            "%s: not signed yet: this firmware signs the recordings made before it when the "
            "box next starts" % where
        ]
    signature = row.get("signature")
    if not signature:
        return [
            "%s: not signed by the box (signatures began with this firmware; a recording "
            "made since is always signed)" % where
        ]
    try:
        messages = recording_statements(row, path, call_row)
    except (ValueError, OSError) as exc:
        return ["%s: cannot be stated for its signature: %s" % (where, exc)]
    reasons = []
    for message in messages:
        if hasattr(public_key, "recording_holds"):
            ok, reason = public_key.recording_holds(row, signature, message)
            if reason:
                reasons.append(reason)
        else:
            ok = verify_signature(public_key, signature, message)
        if ok:
            return []
    if reasons:
        return ["%s: %s" % (where, reasons[0])]
    return [
        "%s: its signature does not match: the file, its state or its call was "
        "changed since the box sealed it" % where
    ]


def accounting_problems(created_ids, known_ids, on_card=()):
    """Recordings the audit trail says were created that neither a row nor a deletion accounts for.

    ``created_ids``: ids of ``recording_created`` audit entries; ``known_ids``:
    ids with a row, logged as deleted, or audited ``recording_deleted``; ``on_card``:
    ids whose file is still in ``recordings/`` or ``quarantine/``. Such a file is not
    gone: the call log lost its row (a ``calls.db-wal`` lost in a power cut), which
    repair rebuilds from it.
    """
    on_card = set(on_card)
    return [
        "recording %s: created (audit trail) but the call log has no row for it and no deletion "
        "was recorded; its file is still on the card: the call log lost it (`linekeeper repair` "
        "rebuilds it from the file)" % rid
        if rid in on_card
        else "recording %s: created (audit trail) but it has no row and no deletion was "
        "recorded: the recording was removed behind the box's back" % rid
        for rid in sorted(set(created_ids) - set(known_ids))
    ]


def seal_problems(sealed, rows):
    """Recordings whose file is not the one the audit trail saw sealed.

    ``sealed``: recording id -> SHA-256 of its file in its ``recording_sealed``
    audit entry (or in a later ``recording_recovered`` entry that names that
    SHA-256 as the one it extends: a seal the card refused, written from the
    recording journal at the next start); ``rows``: recording id -> row.
    Catches a sealed recording whose row was set back to ``recording`` so
    that the next start would sign a cut file as partial.
    """
    return [
        "recording %s: the audit trail saw it sealed with another file (SHA-256 %s...), "
        "now %s" % (rid, digest[:12], rows[rid]["state"])
        for rid, digest in sorted(sealed.items())
        if rid in rows and rows[rid]["state"] != "deleted" and rows[rid]["sha256"] != digest
    ]
