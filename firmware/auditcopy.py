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
given. An unsigned entry (written before the box signed) is proved only by the first signed
entry after it, through the rows between: one whose next rows are not in the copy (a filter
left them out) is named, not called intact. What it cannot tell: entries after the copy's
last row, or between rows a filter left out; compare the last row with a head kept off the
box (docs/security.md).

The whole trail (``linekeeper audit-export``, :func:`write_whole`) is the same file, with
no row limit, written from entry 1 up to and including its own ``audit_export`` entry (the
head when it was made), and, before the entries, one row per handover statement of the
box's key chain (:data:`HANDOVER_MARK` in ``seq``, the statement's JSON in ``at``, as
``signing.handover`` keeps it: signed by the new HAT's key, naming the key it took over
and the entry up to which that key signed). :func:`check_copy` follows that chain back
from the fingerprint it is given, so the current key alone checks every entry, each
replaced key's only up to its handover; and says a copy is *whole* when it holds every
entry from 1 on, none missing, up to such an export's own entry.
"""

import base64
import csv
import io
import json

from firmware import csvsafe, words
from firmware.calls.calllog import iso_ms
from firmware.csvsafe import unquote
from firmware.errors import LinekeeperError
from firmware.handover import chain_of
from firmware.signing import fingerprint, normalise_fingerprint, verify_signature
from firmware.storage.audit import GENESIS_HASH, SEALED_KEY, SIG_TAG, body_hash, canonical_json
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
# The first cell of a row holding a handover statement (the whole trail's, before its entries).
HANDOVER_MARK = "handover"
# The action of the entry a whole-trail export writes before it copies the trail up to it.
WHOLE_ACTION = "audit_export"


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


def keys_on_record(data_dir):
    """``(key_of, statements)``: :func:`signing_key_of` the key on record in ``signing.pub``
    and those it took over, and the handover statements of that chain as the box keeps them
    (:class:`firmware.handover.TrustedKeys`); ``(signing_key_of(None, []), [])`` before the
    recorder first made a key.

    :raises LinekeeperError: the key record or ``signing.handover`` is damaged
    :raises ValueError: a handover statement is malformed
    """
    from firmware.handover import trusted_keys
    from firmware.signing import read_public_record

    record = read_public_record(data_dir)
    if record is None:
        return signing_key_of(None, []), []
    keys = trusted_keys(data_dir, record["public_key"])[0]
    return signing_key_of(record["public_key"], keys.handed_over), keys.statements


def copy_rows(log, key_of=None, filters=None, count=None, up_to=None, batch=1000):
    """The CSV rows (under :data:`COLUMNS`) of the entries of ``log`` that ``filters``
    select, oldest first: the first ``count``, or those up to entry ``up_to``. Read
    ``batch`` entries at a time, each batch going on from the last entry read: memory
    stays that of one batch, however long the trail."""
    filters = filters or {}
    done, seq = 0, 0
    while count is None or done < count:
        limit = batch if count is None else min(batch, count - done)
        entries = log.entries(limit=limit, after_seq=seq, stored=True, **filters)
        for e in entries:
            if up_to is not None and e.seq > up_to:
                return
            yield [
                e.seq,
                iso_ms(e.wall_us),
                e.actor,
                e.action,
                words.say("action", e.action),
                e.target or "",
                json.dumps(e.details, sort_keys=True, ensure_ascii=False),
                e.prev_hash,
                e.hash,
                e.wall_us,
                e.body,
                e.sig or "",
                key_of(e.seq) if e.sig and key_of else "",
            ]
        if not entries or (up_to is not None and entries[-1].seq >= up_to):
            return
        done, seq = done + len(entries), entries[-1].seq


def write_whole(log, out, up_to, key_of, statements, progress=None, batch=1000):
    """Write the whole trail of ``log`` to ``out`` (a binary file), from entry 1 up to and
    including entry ``up_to`` (the export's own), as UTF-8 CSV under :data:`COLUMNS`: first
    a row per handover statement (``statements``, as the box keeps them), then the entries.
    ``progress(done, total)`` after each batch. Returns the number of entries written.

    :raises LinekeeperError: the trail ends before ``up_to``, or an entry is missing
    """
    text = io.StringIO()
    writer = csvsafe.Writer(text)
    writer.writerow(COLUMNS)
    for item in statements:
        writer.writerow([HANDOVER_MARK, json.dumps(item, sort_keys=True)] + [""] * (len(COLUMNS) - 2))
    written = 0
    for row in copy_rows(log, key_of, up_to=up_to, batch=batch):
        written += 1
        if row[0] != written:
            raise LinekeeperError("the audit trail has no entry %d (the next is %d)" % (written, row[0]))
        writer.writerow(row)
        if written % batch == 0:
            out.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
            if progress is not None:
                progress(written, up_to)
    if written != up_to:
        raise LinekeeperError("the audit trail ends at entry %d, before its head %d" % (written, up_to))
    out.write(text.getvalue().encode("utf-8"))
    if progress is not None:
        progress(written, up_to)
    return written


def check_copy(path, fingerprints):
    """``(problems, summary)`` of the audit CSV at ``path`` checked against the box's key
    fingerprints (the current one, and any replaced HAT's). ``summary``: ``rows``,
    ``first``/``last`` ``(seq, hash)``, ``signed`` rows, ``sealed`` rows (details only the box
    can open), ``gaps`` (``(after seq, before seq)`` of entries not in the copy),
    ``handed_over`` (the fingerprints of the replaced keys the copy's handover statements
    chain to the key given, each with the entry up to which it signed) and ``whole``
    (``(actor, at)`` of the export's own entry when the copy holds the whole trail up to
    it, else None). Read a row at a time: a trail of millions of entries is checked in the
    memory of one.

    :raises LinekeeperError: not an audit CSV with the columns to check, or a bad fingerprint
    """
    pinned = {normalise_fingerprint(f): None for f in fingerprints}
    if not pinned:
        raise LinekeeperError("give the box's signing key fingerprint (--key), kept off the box")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return _check_rows(path, csv.reader(f), pinned)
    except FileNotFoundError:
        raise LinekeeperError("%s: no such file" % path) from None
    except UnicodeDecodeError:
        raise LinekeeperError(
            "%s is not an audit export: it is not text (give the CSV file `linekeeper audit-export` or "
            "the Audit page wrote)" % path
        ) from None
    except (OSError, csv.Error) as exc:
        raise LinekeeperError(
            "%s cannot be read as a CSV file: %s" % (path, getattr(exc, "strerror", None) or exc)
        ) from None


def _check_rows(path, reader, pinned):
    """:func:`check_copy` of the rows ``reader`` gives; ``pinned``: fingerprint -> None."""
    if tuple(next(reader, ())) != COLUMNS:
        raise LinekeeperError(
            "%s is not a copy of the audit trail that can be checked: its first line must be %s "
            "(download the copy again from the Audit trail page)" % (path, ",".join(COLUMNS))
        )
    problems = []
    summary = {
        "rows": 0,
        "first": None,
        "last": None,
        "signed": 0,
        "sealed": 0,
        "gaps": [],
        "handed_over": [],
        "whole": None,
    }
    statements = []
    keys = None  # fingerprint -> the last entry it may sign (None: any), once the entries begin
    bounds = {}  # seq -> (hash, fingerprint) named by a handover statement
    prev = None  # (seq, hash) of the row before
    first_signed = None
    starts_whole, last_action = False, None
    # Unsigned rows (written before the box signed) that no signed row of the copy chains yet:
    # only the first signed entry after them, chained to them row by row, proves them.
    unchained = []
    for number, raw in enumerate(reader, start=2):
        if raw and raw[0].startswith(CUT_MARK):
            problems.append("line %d: the copy says it stopped early: it is not complete" % number)
            last_action = None
            continue
        if len(raw) != len(COLUMNS):
            problems.append("line %d: %d cells, not %d" % (number, len(raw), len(COLUMNS)))
            continue
        row = dict(zip(COLUMNS, (unquote(cell) for cell in raw), strict=True))
        if row["seq"] == HANDOVER_MARK:
            if keys is not None:
                problems.append("line %d: a handover statement after the entries: ignored" % number)
            else:
                problems += _read_statement(number, row["at"], statements)
            continue
        if keys is None:
            keys, bounds = _key_chain(pinned, statements, problems, summary)
        problems += _check_row(number, row, summary)
        try:
            seq = int(row["seq"])
        except ValueError:
            continue
        if prev is None:
            starts_whole = seq == 1 and row["prev_hash"] == GENESIS_HASH
        else:
            if seq <= prev[0]:
                problems += _unchained(unchained)
                problems.append(
                    "line %d: entry %d comes after entry %d (out of order)" % (number, seq, prev[0])
                )
            elif seq == prev[0] + 1 and row["prev_hash"] != prev[1]:
                unchained.clear()  # not chained either: the break is said
                problems.append(
                    "line %d: entry %d does not follow entry %d (its previous hash is not that "
                    "entry's hash): an entry was changed, removed or put in" % (number, seq, prev[0])
                )
            elif seq > prev[0] + 1:
                problems += _unchained(unchained)  # the entries after them are not in the copy
                summary["gaps"].append((prev[0], seq))
        if seq in bounds and row["hash"] != bounds[seq][0]:
            problems.append(
                "line %d: entry %d is not the one the handover from %s names (its hash differs): "
                "the trail was changed up to that handover" % (number, seq, bounds[seq][1])
            )
        if row["signature"]:
            first_signed = first_signed or seq
            summary["signed"] += 1
            _add_signature_problems(problems, _check_signature(number, seq, row, keys))
            unchained.clear()  # its hash chains them
        elif first_signed is None:
            unchained.append((number, seq))
        else:
            problems.append(
                "line %d: entry %d is not signed, yet entry %d before it is (added or rewritten "
                "without the box's key)" % (number, seq, first_signed)
            )
        prev = (seq, row["hash"])
        last_action = (row["action"], row["actor"], row["at"])
        summary["rows"] += 1
        summary["first"] = summary["first"] or prev
        summary["last"] = prev
    if keys is None:
        _key_chain(pinned, statements, problems, summary)
    if summary["rows"] and first_signed is None:
        problems.append("no entry in the copy is signed: nothing in it shows it is the box's")
    else:
        problems += _unchained(unchained)
    if starts_whole and not summary["gaps"] and last_action and last_action[0] == WHOLE_ACTION:
        summary["whole"] = last_action[1:]
    return [str(problem) for problem in problems], summary


def _unchained(unchained):
    """The problems of the unsigned rows ``[(line, seq)]`` that no signed row of the copy
    chains (the entries after them are not in it), emptying the list."""
    out = [
        "line %d: entry %d is not signed and no signed entry in the copy chains it (the entries "
        "after it are not in the copy): nothing shows it is the box's; a copy with them (no "
        "filter) proves it" % (number, seq)
        for number, seq in unchained
    ]
    unchained.clear()
    return out


def _read_statement(number, text, statements):
    """Add the handover statement of a row (its JSON) to ``statements``; its problems."""
    try:
        item = json.loads(text)
        if not isinstance(item, dict):
            raise ValueError("not a statement")
        chain_of(b"\0" * 32, [item])  # its fields, as the box reads them
    except (ValueError, KeyError, TypeError) as exc:
        return ["line %d: a handover statement that cannot be read (%s): ignored" % (number, exc)]
    statements.append(item)
    return []


def _key_chain(pinned, statements, problems, summary):
    """``(keys, bounds)``: the fingerprints whose signatures hold (``pinned``, with no bound,
    and the replaced keys the copy's handover statements chain to one of them, each up to
    its handover's entry), and the entries the handovers name (seq -> (hash, fingerprint)).
    A statement no key given vouches for is a problem (made elsewhere, or changed)."""
    keys, bounds = dict(pinned), {}
    used = set()
    for wanted in pinned:
        current = next(
            (
                base64.b64decode(item[side])
                for item in statements
                for side in ("new_key", "old_key")
                if fingerprint(base64.b64decode(item[side])) == wanted
            ),
            None,
        )
        if current is None:
            continue
        chain = chain_of(current, statements)[0]
        used.update(id(item) for item in chain.statements)
        for old in chain.handed_over:
            name = fingerprint(old["key"])
            keys[name] = old["audit_seq"]  # given with --key too, it still signs no later entry
            bounds[old["audit_seq"]] = (old["audit_hash"], name)
            summary["handed_over"].append((name, old["audit_seq"]))
    problems += [
        "a handover from %s to %s is not vouched for by the key given (made elsewhere, or "
        "changed): ignored"
        % (fingerprint(base64.b64decode(item["old_key"])), fingerprint(base64.b64decode(item["new_key"])))
        for item in statements
        if id(item) not in used
    ]
    return keys, bounds


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


class _OtherKey:
    """Entries one after another signed by a key not given, said once: a wrong --key (a
    typing mistake, the replaced HAT's key) printed a line for every entry, a million
    lines for a box's trail, and kept them all in memory."""

    def __init__(self, number, seq, signer, given):
        self.first, self.last, self.signer, self.given = (number, seq), (number, seq), signer, given
        self.rows = 1

    def takes(self, other):
        """Extend this run with ``other`` when it is the next row's, signed by the same key (a
        copy of some entries only has gaps between them: its rows are counted)."""
        if (
            isinstance(other, _OtherKey)
            and other.signer == self.signer
            and other.first[0] == self.last[0] + 1
        ):
            self.last = other.last
            self.rows += 1
            return True
        return False

    def __str__(self):
        if self.first == self.last:
            return "line %d: entry %d is signed by %s, not by the key given (%s)" % (
                *self.first,
                self.signer,
                self.given,
            )
        return "lines %d to %d: %d entries, %d to %d, are signed by %s, not by the key given (%s)" % (
            self.first[0],
            self.last[0],
            self.rows,
            self.first[1],
            self.last[1],
            self.signer,
            self.given,
        )


def _add_signature_problems(problems, found):
    """Add ``found`` to ``problems``, a run of entries signed by the same key not given as one."""
    for problem in found:
        if not (problems and isinstance(problems[-1], _OtherKey) and problems[-1].takes(problem)):
            problems.append(problem)


def _check_signature(number, seq, row, keys):
    """The problems of a row's signature; ``keys``: fingerprint -> the last entry it signs
    (None: any), as :func:`_key_chain` gives them."""
    try:
        key = base64.b64decode(row["signing_key"], validate=True)
        signature = bytes.fromhex(row["signature"])
        message = SIG_TAG + bytes.fromhex(row["hash"])
    except ValueError:
        return ["line %d: entry %d's signature or signing key is damaged" % (number, seq)]
    if len(key) != 32 or fingerprint(key) not in keys:
        return [
            _OtherKey(number, seq, fingerprint(key) if len(key) == 32 else "no key", ", ".join(sorted(keys)))
        ]
    bound = keys[fingerprint(key)]
    if bound is not None and seq > bound:
        return [
            "line %d: entry %d is signed by the replaced key %s after its handover at entry %d "
            "(a key that no longer signs for the box)" % (number, seq, fingerprint(key), bound)
        ]
    if not verify_signature(key, signature, message):
        return ["line %d: entry %d's signature does not match: the entry was changed" % (number, seq)]
    return []
