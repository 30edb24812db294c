"""A copy of the audit trail that can be checked off the box (``linekeeper verify-audit``).

The auditor's CSV copy (``/audit.csv``, web/views/audit.py) shows each entry as the page
does (its time, who, the action's words, its details opened) and also as the box hashed and
signed it, so that a copy taken away (to the ICO, to an auditor's office, before the box is
replaced) still proves itself with nothing but the box's fingerprint:

``wall_us``
    the entry's time, µs since the epoch, as hashed;
``hashed_entry``
    the canonical text the entry's hash covers (:func:`firmware.storage.audit.entry_body`):
    seq, time, actor, action, target and details as stored, sealed ones sealed;
``signature``
    the box's Ed25519 signature of the entry's hash (empty for one written before the box
    signed, which the first signed entry after it chains);
``signing_key``
    the public key (base64) of the key the box says signed it: its own, or for an entry up
    to a HAT replacement's handover the key it took over from (docs/evidence.md).

:func:`check_copy` recomputes every hash from ``hashed_entry`` and the row's previous hash,
checks the row's shown columns say what ``hashed_entry`` says (its details too, unless they
are sealed, when only the box can open them), that each row follows the one before where
nothing lies between them, and each signature against the keys whose fingerprints it is
given. What it cannot tell: entries after the copy's last row, or between rows a filter
left out; compare the last row with a head kept off the box (docs/security.md).
"""

import base64
import csv
import json

from firmware.calls.calllog import iso_ms
from firmware.csvsafe import unquote
from firmware.errors import LinekeeperError
from firmware.signing import fingerprint, normalise_fingerprint, verify_signature
from firmware.storage.audit import SEALED_KEY, SIG_TAG, body_hash, canonical_json
from firmware.storage.fieldseal import is_sealed

COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "what",
    "about",
    "details",
    "prev_hash",
    "hash",
    "wall_us",
    "hashed_entry",
    "signature",
    "signing_key",
)
CUT_MARK = "EXPORT STOPPED EARLY"


def signing_key_of(current, handed_over):
    """A function of an entry's seq giving the public key (base64) the box signed it with:
    ``current`` (bytes, or None when the box has no key) after every handover, else the
    replaced key whose handover bound is the first at or after it (``handed_over``: newest
    first, as :class:`firmware.handover.TrustedKeys` holds them)."""
    current_text = base64.b64encode(current).decode("ascii") if current is not None else ""
    bounds = [(old["audit_seq"], base64.b64encode(old["key"]).decode("ascii")) for old in handed_over]

    def key(seq):
        found = current_text
        for bound, old in bounds:  # newest first: the last that holds is the oldest key
            if seq <= bound:
                found = old
        return found

    return key


def check_copy(path, fingerprints):
    """``(problems, summary)`` of the audit CSV at ``path`` checked against the box's key
    fingerprints (the current one, and any replaced HAT's). ``summary``: ``rows``,
    ``first``/``last`` ``(seq, hash)``, ``signed`` rows, ``sealed`` rows (details only the box
    can open) and ``gaps`` (``(after seq, before seq)`` of entries not in the copy).

    :raises LinekeeperError: not an audit CSV with the columns to check, or a bad fingerprint
    """
    pinned = {normalise_fingerprint(f) for f in fingerprints}
    if not pinned:
        raise LinekeeperError("give the box's signing key fingerprint (--key), kept off the box")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LinekeeperError("%s cannot be read as a CSV file: %s" % (path, exc)) from None
    if not rows or tuple(rows[0]) != COLUMNS:
        raise LinekeeperError(
            "%s is not a copy of the audit trail that can be checked: its first line must be %s "
            "(download the copy again from the Audit trail page)" % (path, ",".join(COLUMNS))
        )
    problems = []
    summary = {"rows": 0, "first": None, "last": None, "signed": 0, "sealed": 0, "gaps": []}
    prev = None  # (seq, hash) of the row before
    first_signed = None
    for number, raw in enumerate(rows[1:], start=2):
        if raw and raw[0].startswith(CUT_MARK):
            problems.append("line %d: the copy says it stopped early: it is not complete" % number)
            continue
        if len(raw) != len(COLUMNS):
            problems.append("line %d: %d cells, not %d" % (number, len(raw), len(COLUMNS)))
            continue
        row = dict(zip(COLUMNS, (unquote(cell) for cell in raw), strict=True))
        problems += _check_row(number, row, summary)
        try:
            seq = int(row["seq"])
        except ValueError:
            continue
        if prev is not None:
            if seq <= prev[0]:
                problems.append(
                    "line %d: entry %d comes after entry %d (out of order)" % (number, seq, prev[0])
                )
            elif seq == prev[0] + 1 and row["prev_hash"] != prev[1]:
                problems.append(
                    "line %d: entry %d does not follow entry %d (its previous hash is not that "
                    "entry's hash): an entry was changed, removed or put in" % (number, seq, prev[0])
                )
            elif seq > prev[0] + 1:
                summary["gaps"].append((prev[0], seq))
        if row["signature"]:
            first_signed = first_signed or seq
            summary["signed"] += 1
            problems += _check_signature(number, seq, row, pinned)
        elif first_signed is not None:
            problems.append(
                "line %d: entry %d is not signed, yet entry %d before it is (added or rewritten "
                "without the box's key)" % (number, seq, first_signed)
            )
        prev = (seq, row["hash"])
        summary["rows"] += 1
        summary["first"] = summary["first"] or prev
        summary["last"] = prev
    if summary["rows"] and first_signed is None:
        problems.append("no entry in the copy is signed: nothing in it shows it is the box's")
    return problems, summary


def _check_row(number, row, summary):
    """The problems of one row: its hash, and its shown columns against what was hashed."""
    where = "line %d" % number
    try:
        body = json.loads(row["hashed_entry"])
        if not isinstance(body, dict) or canonical_json(body) != row["hashed_entry"]:
            raise ValueError("not the canonical text of an entry")
        seq, wall_us = body["seq"], body["wall_us"]
        if body_hash(row["prev_hash"], row["hashed_entry"]) != row["hash"]:
            return [
                "%s: entry %s's hash is not that of its hashed_entry and previous hash: changed"
                % (where, seq)
            ]
    except (ValueError, KeyError, TypeError) as exc:
        return ["%s: its hashed_entry or hashes are damaged (%s)" % (where, exc)]
    problems = []
    shown = {
        "seq": str(seq),
        "wall_us": str(wall_us),
        "at": iso_ms(wall_us) if isinstance(wall_us, int) else None,
        "actor": body.get("actor"),
        "action": body.get("action"),
    }
    target = body.get("target")
    if not is_sealed(target):
        shown["about"] = target or ""
    details = body.get("details")
    if isinstance(details, dict) and set(details) == {SEALED_KEY}:
        summary["sealed"] += 1  # sealed: only the box opens them; the hash covers the sealed text
    else:
        try:
            if json.loads(row["details"]) != details:
                problems.append("%s: entry %s's details are not the ones hashed: changed" % (where, seq))
        except ValueError:
            problems.append("%s: entry %s's details are not JSON" % (where, seq))
    for column, value in shown.items():
        if row[column] != value:
            problems.append("%s: entry %s's %s is not the one hashed: changed" % (where, seq, column))
    return problems


def _check_signature(number, seq, row, pinned):
    try:
        key = base64.b64decode(row["signing_key"], validate=True)
        signature = bytes.fromhex(row["signature"])
        message = SIG_TAG + bytes.fromhex(row["hash"])
    except ValueError:
        return ["line %d: entry %d's signature or signing key is damaged" % (number, seq)]
    if len(key) != 32 or fingerprint(key) not in pinned:
        return [
            "line %d: entry %d is signed by %s, not by the key given (%s)"
            % (number, seq, fingerprint(key) if len(key) == 32 else "no key", ", ".join(sorted(pinned)))
        ]
    if not verify_signature(key, signature, message):
        return ["line %d: entry %d's signature does not match: the entry was changed" % (number, seq)]
    return []
