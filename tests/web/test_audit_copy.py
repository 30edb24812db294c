"""The auditor's copy of the audit trail, checked off the box with only its fingerprint.

The CSV held each entry's hashes, but not the text they were taken over nor the
signatures: a copy taken away (to an inspector, before the box was replaced) could not be
checked by anyone, and a cell changed in it (who played a recording, its details) could
not be told from the box's own. Now each row also holds what was hashed and signed, and
``linekeeper verify-audit`` checks it with the fingerprint alone."""

import csv
import io

import pytest

from firmware import cli
from firmware.auditcopy import check_copy
from firmware.errors import LinekeeperError
from firmware.signing import Signer, write_public_record


@pytest.fixture
def signed(box, people):
    """The box signing its trail from now on, as the recorder makes it do at its first start."""
    signer = Signer(b"\x07" * 32, "card")
    write_public_record(box.data_dir, signer)
    box.services.audit.signer = signer
    box.services.audit.append("sam", "playback", "1", {"line": 1, "duration_s": 3.0}, box.clock())
    box.services.audit.append("sam", "export", "1", {"line": 1, "reason": "complaint ref 12"}, box.clock())
    return signer


def download(people, tmp_path, query=""):
    text = people["audrey"].get("/audit.csv" + query).get_data(as_text=True)
    path = tmp_path / "audit.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path, list(csv.reader(io.StringIO(text)))


def rewrite(path, rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8", newline="")


def test_the_auditors_copy_verifies_off_the_box_with_the_fingerprint(box, people, signed, tmp_path, capsys):
    path, rows = download(people, tmp_path)
    header = rows[0]
    assert header[-4:] == ["wall_us", "hashed_entry", "signature", "signing_key"]
    problems, summary = check_copy(path, [signed.fingerprint])
    assert problems == []
    assert summary["rows"] == len(rows) - 1 and summary["gaps"] == []
    assert summary["signed"] == 2  # the entries written before the box signed are chained by them
    assert cli.main(["verify-audit", str(path), "--key", signed.fingerprint]) == 0
    out = capsys.readouterr().out
    assert (
        "intact" in out and "none missing" in out and "last entry %s:%s" % (rows[-1][0], rows[-1][8]) in out
    )
    # A filtered copy (one user's entries) says entries lie between; sam's entries from before
    # the box signed are chained by nothing in it (the entries after them are left out), so
    # nothing shows they are the box's: each is named, not called intact. The signed ones are.
    path, rows = download(people, tmp_path, "?who=sam")
    problems, summary = check_copy(path, [signed.fingerprint])
    unsigned = [row[0] for row in rows[1:] if not row[11]]
    assert unsigned and summary["gaps"] and summary["signed"] == 2
    assert problems == [
        "line %d: entry %s is not signed and no signed entry in the copy chains it (the entries after "
        "it are not in the copy): nothing shows it is the box's; a copy with them (no filter) proves it"
        % (rows.index(row) + 1, row[0])
        for row in rows[1:]
        if not row[11]
    ]


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda rows: rows[-1].__setitem__(2, "ivan"), "actor is not the one hashed"),
        (
            lambda rows: rows[-1].__setitem__(6, '{"line": 2, "reason": "complaint ref 12"}'),
            "details are not",
        ),
        (lambda rows: rows[-1].__setitem__(5, "2"), "about is not the one hashed"),
        (lambda rows: rows[-1].__setitem__(7, rows[-3][8]), "hash is not"),
        (lambda rows: rows[-1].__setitem__(10, rows[-1][10].replace("ref 12", "ref 13")), "hash is not"),
        (lambda rows: rows[-1].__setitem__(11, "00" * 64), "signature does not match"),
    ],
    ids=["who", "details", "about", "rechained", "rehashed", "signature"],
)
def test_a_copy_changed_after_it_left_the_box_does_not_verify(box, people, signed, tmp_path, change, problem):
    path, rows = download(people, tmp_path)
    change(rows)
    rewrite(path, rows)
    problems, _ = check_copy(path, [signed.fingerprint])
    assert any(problem in p for p in problems), problems
    assert cli.main(["verify-audit", str(path), "--key", signed.fingerprint]) == 1


def test_an_entry_taken_out_of_a_whole_copy_is_said(box, people, signed, tmp_path, capsys):
    """A copy cannot say which entries a filter left out, so one taken out of it is not a
    problem the check can prove; it names what is not in the copy."""
    box.services.audit.append("sam", "playback", "2", {"line": 1, "duration_s": 4.0}, box.clock())
    path, rows = download(people, tmp_path)
    seq = rows.pop(-2)[0]  # the box's export entry, signed, between two signed ones
    rewrite(path, rows)
    problems, summary = check_copy(path, [signed.fingerprint])
    assert problems == [] and summary["gaps"] == [(int(seq) - 1, int(seq) + 1)]
    assert cli.main(["verify-audit", str(path), "--key", signed.fingerprint]) == 0
    assert "1 entry between them not in the copy: a filtered copy, or removed" in capsys.readouterr().out
    # The first signed entry taken out: the entries from before the box signed, which only it
    # chained, could then be anything; each is named.
    first_signed = next(i for i, row in enumerate(rows) if i and row[11])
    unsigned = rows[1:first_signed]
    del rows[first_signed]
    rewrite(path, rows)
    problems, _ = check_copy(path, [signed.fingerprint])
    assert len(problems) == len(unsigned) and all(
        "entry %s is not signed and no signed entry in the copy chains it" % row[0] in problem
        for row, problem in zip(unsigned, problems, strict=True)
    )


def test_a_copy_rehashed_and_resigned_with_another_key_names_that_key(box, people, signed, tmp_path):
    """Whoever edits a copy can recompute its hashes, and sign with a key of their own; not
    with the box's, whose fingerprint the inspector was given."""
    import base64
    import json

    from firmware.storage.audit import SIG_TAG, body_hash, canonical_json

    path, rows = download(people, tmp_path)
    forger = Signer(b"\x09" * 32, "card")
    last = rows[-1]
    body = json.loads(last[10])
    body["actor"] = last[2] = "ivan"
    last[10] = canonical_json(body)
    last[8] = body_hash(last[7], last[10])
    last[11] = forger.sign(SIG_TAG + bytes.fromhex(last[8])).hex()
    last[12] = base64.b64encode(forger.public_key).decode()
    rewrite(path, rows)
    problems, _ = check_copy(path, [signed.fingerprint])
    assert problems == ["line %d: entry %s is signed by %s, not by the key given (%s)"
                        % (len(rows), last[0], forger.fingerprint, signed.fingerprint)]  # fmt: skip


def test_a_file_that_is_not_such_a_copy_is_named_and_refused(box, people, tmp_path, capsys):
    path = tmp_path / "audit.csv"
    path.write_text("seq,at,actor,action,what,about,details,prev_hash,hash\r\n")
    assert cli.main(["verify-audit", str(path), "--key", "lk1:" + "0" * 32]) != 0
    assert "is not a copy of the audit trail that can be checked" in capsys.readouterr().err
    assert cli.main(["verify-audit", str(path), "--key", "nonsense"]) != 0
    assert "a signing key fingerprint is lk1:" in capsys.readouterr().err


def test_sealed_entries_verify_by_their_sealed_text(box, people, signed, tmp_path):
    """On a box whose HAT seals the details (and a phonebook entry's number), the copy shows
    them opened and the hash covers them sealed: the check holds by the sealed text, and
    counts the entries whose shown details only the box can vouch for."""
    import os

    from firmware.storage.fieldseal import FieldCipher

    box.services.audit.cipher = FieldCipher(os.urandom(32))
    box.services.audit.append("sam", "export", "2", {"line": 1, "reason": "sealed reason"}, box.clock())
    box.services.audit.append("sam", "phonebook", "+441632960777", {"name": "Bob"}, box.clock())
    path, rows = download(people, tmp_path)
    assert rows[-2][6] == '{"line": 1, "reason": "sealed reason"}' and "sealed reason" not in rows[-2][10]
    assert rows[-1][5] == "+441632960777" and "+441632960777" not in rows[-1][10]
    problems, summary = check_copy(path, [signed.fingerprint])
    assert problems == [] and summary["sealed"] == 2


def test_each_entry_names_the_key_that_signed_it_across_hat_replacements():
    """After two HAT replacements (handovers at entries 100 and 500) the copy names the
    first HAT's key up to entry 100, the second's up to 500, the current one after."""
    import base64

    from firmware.auditcopy import signing_key_of

    k0, k1, k2 = b"\x00" * 32, b"\x01" * 32, b"\x02" * 32
    key_of = signing_key_of(k2, [{"key": k1, "audit_seq": 500}, {"key": k0, "audit_seq": 100}])
    names = {base64.b64encode(k).decode(): n for n, k in enumerate((k0, k1, k2))}
    assert [names[key_of(seq)] for seq in (1, 100, 101, 500, 501)] == [0, 0, 1, 1, 2]
    assert signing_key_of(None, [])(1) == ""


def test_a_copy_found_by_number_verifies_and_a_column_more_would_not(box, people, signed, tmp_path):
    """The copy of a search by number holds the pages of the calls list that showed the
    number's calls, and verifies; why each was found is not in it, because verify-audit
    ignores no column: a reason added after the last makes the copy fail its check
    (docs/security.md says so)."""
    log = box.services.audit
    log.append("sam", "list_viewed", "calls", {"filter": "all calls", "rows": 1, "calls": [1]}, box.clock())
    log.append("sam", "playback", "1", {"line": 1, "duration_s": 3.0}, box.clock())
    path, rows = download(people, tmp_path, "?number=02079460000")
    assert [row[3] for row in rows[1:]] == ["playback", "export", "list_viewed", "playback"]
    assert check_copy(path, [signed.fingerprint])[0] == []
    rewrite(path, [rows[0] + ["why"]] + [row + ["shown in a list: call 1"] for row in rows[1:]])
    with pytest.raises(LinekeeperError, match="its first line must be seq,at,"):
        check_copy(path, [signed.fingerprint])
    rewrite(path, [rows[0]] + [row + ["shown in a list: call 1"] for row in rows[1:]])
    problems = check_copy(path, [signed.fingerprint])[0]
    assert problems == ["line %d: 14 cells, not 13" % n for n in range(2, len(rows) + 1)]
