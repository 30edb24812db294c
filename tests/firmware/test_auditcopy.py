"""linekeeper verify-audit on copies holding entries from before the box signed.

An entry written before the box signed (a box updated from a release that did not sign) is
proved only by the first signed entry after it, whose hash chains it. In a filtered copy an
unsigned entry with the entries after it left out is chained to nothing in the copy: it could
be changed (its hash recomputed) or made up, and the copy still said "intact".
"""

import base64
import csv
import json

import pytest

from firmware.auditcopy import COLUMNS, check_copy
from firmware.calls.calllog import iso_ms
from firmware.errors import LinekeeperError
from firmware.signing import Signer
from firmware.storage.audit import GENESIS_HASH, SIG_TAG, body_hash, entry_body

SIGNER = Signer(bytes(range(32)), "card")
T_US = 1_782_900_000_000_000


def _entries(n_unsigned, n_signed):
    """The rows of a whole trail: ``n_unsigned`` entries written before the box signed,
    then ``n_signed`` signed ones, as ``{column: value}``."""
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n_unsigned + n_signed + 1):
        details = {"call": seq}
        body = entry_body(seq, T_US + seq, "alice", "playback", "call:%d" % seq, details)
        digest = body_hash(prev, body)
        signed = seq > n_unsigned
        rows.append(
            {
                "seq": seq,
                "at": iso_ms(T_US + seq),
                "actor": "alice",
                "action": "playback",
                "what": "Played a recording",
                "about": "call:%d" % seq,
                "details": json.dumps(details),
                "prev_hash": prev,
                "hash": digest,
                "wall_us": T_US + seq,
                "hashed_entry": body,
                "signature": SIGNER.sign(SIG_TAG + bytes.fromhex(digest)).hex() if signed else "",
                "signing_key": base64.b64encode(SIGNER.public_key).decode("ascii") if signed else "",
            }
        )
        prev = digest
    return rows


def _forged(row, actor):
    """``row`` said to be ``actor``'s, its hash made again to match (no key needed unsigned)."""
    body = json.loads(row["hashed_entry"])
    text = entry_body(body["seq"], body["wall_us"], actor, body["action"], body["target"], body["details"])
    return dict(row, actor=actor, hashed_entry=text, hash=body_hash(row["prev_hash"], text))


def _write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\r\n")
        out.writerow(COLUMNS)
        for row in rows:
            out.writerow([row[c] for c in COLUMNS])
    return str(path)


def test_a_whole_copy_with_entries_from_before_signing_verifies(tmp_path):
    problems, summary = check_copy(_write(tmp_path / "audit.csv", _entries(3, 2)), [SIGNER.fingerprint])
    assert problems == [] and summary["rows"] == 5 and summary["signed"] == 2


def test_an_unsigned_entry_no_signed_entry_in_the_copy_chains_is_not_called_intact(tmp_path):
    rows = _entries(3, 2)
    # A filtered copy (entry 3 left out) whose entry 2 was then said to be bob's.
    copy = [rows[0], _forged(rows[1], "bob"), rows[3], rows[4]]
    problems, _ = check_copy(_write(tmp_path / "audit.csv", copy), [SIGNER.fingerprint])
    assert len(problems) == 2, problems
    assert problems[0].startswith("line 2: entry 1 is not signed and no signed entry in the copy chains it")
    assert problems[1].startswith("line 3: entry 2 is not signed and no signed entry in the copy chains it")
    # The same copy with entry 3 in it: entry 2's change is found by entry 3's chain.
    problems, _ = check_copy(
        _write(tmp_path / "whole.csv", [rows[0], _forged(rows[1], "bob")] + rows[2:]), [SIGNER.fingerprint]
    )
    assert problems and "entry 3 does not follow entry 2" in problems[0]


def test_a_missing_file_or_one_not_text_is_said_plainly(tmp_path):
    """`verify-audit missing.csv` printed "[Errno 2] No such file or directory: 'missing.csv'"
    and `verify-audit out/r.pdf` "'utf-8' codec can't decode byte 0x93 ..."."""
    missing = str(tmp_path / "missing.csv")
    with pytest.raises(LinekeeperError) as err:
        check_copy(missing, [SIGNER.fingerprint])
    assert str(err.value) == "%s: no such file" % missing
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.4\n\x93\x94\xa0 a report, not an audit export")
    with pytest.raises(LinekeeperError) as err:
        check_copy(str(pdf), [SIGNER.fingerprint])
    assert str(err.value) == (
        "%s is not an audit export: it is not text (give the CSV file `linekeeper audit-export` or "
        "the Audit page wrote)" % pdf
    )
