"""`linekeeper audit-export`: the whole audit trail, entry 1 to the head, to a file that
`linekeeper verify-audit` checks with the box's current fingerprint alone.

The Audit trail page's CSV holds at most 100 000 entries, so a trail years old (1.5 million)
could not leave the box whole, and a copy by dates could not prove no entry was missing;
and after a HAT replacement the entries the old key signed checked only with that key's
fingerprint given as well. The whole-trail copy is streamed, audited (its own entry is its
last: the head it was made at), never replaces a file, leaves nothing when it fails, and
carries the handover statements, so the check follows the chain of keys itself."""

import base64
import csv
import json
import os
import sqlite3

import pytest

from firmware import auditcopy
from firmware.auditcopy import check_copy, write_whole
from firmware.cli import main
from firmware.handover import append_handover, make_handover
from firmware.signing import Signer, write_public_record
from firmware.storage import audit as audit_module
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore

PASSWORD = "correct horse battery"
CHEAP = Argon2Params(memory_kib=8, iterations=1)
OLD = Signer(b"\x03" * 32, "card")
NEW = Signer(b"\x04" * 32, "vault")
T0 = 1_772_000_000_000_000


def trail(path, signer=None):
    return AuditLog(os.path.join(path, "audit.db"), os.path.join(path, "audit.head"), signer=signer)


def entries(path, action="audit_export"):
    with trail(path) as log:
        return [(e.actor, e.details) for e in log.entries(limit=100, action=action)][::-1]


@pytest.fixture
def box(tmp_path, monkeypatch):
    """A box with keys, a trail of 250 entries signed by its key, and its admin's password."""
    path = tmp_path / "box"
    os.makedirs(path)
    KeyStore(str(path), CHEAP).initialise("admin", PASSWORD)
    write_public_record(str(path), OLD)
    with trail(str(path), OLD) as log:
        for n in range(250):
            log.append("sam", "playback", "call:%d" % n, {"line": 1}, T0 + n)
    monkeypatch.setattr(audit_module, "device_signer", lambda data_dir: current[0])
    current = [OLD]
    password = tmp_path / "password.txt"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    return str(path), str(password), current


def export(box, out, *more):
    path, password, _ = box
    return main(["audit-export", str(out), "--data-dir", path, "--password-file", password, *more])


def hand_over(box):
    """The HAT replaced: the new key takes over from the old at the trail's last entry
    (as `linekeeper hat-replaced` does), then signs 10 entries more."""
    path, _, current = box
    with trail(path) as log:
        seq, digest = log.last()
    append_handover(path, make_handover(NEW, OLD.public_key, seq, digest, T0 + 10_000))
    write_public_record(path, NEW)
    current[0] = NEW
    with trail(path, NEW) as log:
        for n in range(10):
            log.append("sam", "export", "call:%d" % n, {"line": 1}, T0 + 20_000 + n)
    return seq


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)


def test_the_whole_trail_leaves_the_box_and_verify_audit_says_it_is_whole(box, tmp_path, capsys):
    out = tmp_path / "trail.csv"
    assert export(box, out) == 0
    said = capsys.readouterr()
    assert "audit-export: 251/251 entries written" in said.err  # progress, as it goes
    assert "entries 1 to 251 (the head, this copy's own entry)" in said.out
    rows = read(out)
    assert rows[0] == list(auditcopy.COLUMNS) and [r[0] for r in rows[1:]] == [str(n) for n in range(1, 252)]
    assert rows[-1][2:4] == ["admin", "audit_export"]  # its own entry: the head it was made at
    assert entries(box[0]) == [("admin", {"file": "trail.csv", "handovers": 0, "via": "cli"})]
    assert main(["verify-audit", str(out), "--key", OLD.fingerprint]) == 0
    out_text = capsys.readouterr().out
    assert "whole: every entry from 1 to 251, none missing, up to the head when admin copied" in out_text


def test_a_wrong_key_is_said_once_for_the_entries_it_did_not_sign(box, tmp_path, capsys):
    """A fingerprint mistyped, or the replaced HAT's, printed a line for every entry signed
    (a million lines for a box's trail, all kept in memory first); one line says them now."""
    out = tmp_path / "trail.csv"
    assert export(box, out) == 0
    capsys.readouterr()
    assert main(["verify-audit", str(out), "--key", NEW.fingerprint]) == 1
    said = capsys.readouterr().err.splitlines()
    assert said == [
        "%s: lines 2 to 252: 251 entries, 1 to 251, are signed by %s, not by the key given (%s)"
        % (out, OLD.fingerprint, NEW.fingerprint),
        "%s: does NOT verify (1 problem)" % out,
    ]


def test_its_progress_in_a_log_is_whole_lines(box, tmp_path, capsys):
    """Redirected (a file, the journal), the progress was carriage returns alone, which made
    one long line of a log, as repair's did before Progress: whole lines there, as repair's."""
    assert export(box, tmp_path / "trail.csv") == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines() == ["linekeeper: audit-export: 251/251 entries written"]


def test_a_copy_cut_short_or_with_an_entry_taken_out_is_not_said_to_be_whole(box, tmp_path, capsys):
    out = tmp_path / "trail.csv"
    assert export(box, out) == 0
    rows = read(out)
    for cut in (rows[:-1], rows[:100] + rows[101:]):
        write(out, cut)
        capsys.readouterr()
        assert main(["verify-audit", str(out), "--key", OLD.fingerprint]) == 0
        assert "whole" not in capsys.readouterr().out
    # The web page's copy of the same trail ends at the entry before its own: not whole.
    problems, summary = check_copy(out, [OLD.fingerprint])
    assert problems == [] and summary["whole"] is None


def test_the_copy_is_read_a_batch_at_a_time(box):
    """Constant memory: the trail is read a batch at a time, each going on from the last
    entry read, and written out as it goes."""
    path = box[0]

    class Sink:
        writes = 0

        def write(self, data):
            self.writes += 1

    sink, statements = Sink(), []
    with trail(path) as log:
        log._db.set_trace_callback(statements.append)
        assert write_whole(log, sink, 250, None, [], batch=10) == 250
    reads = [s for s in statements if s.startswith("SELECT seq, wall_us")]
    assert len(reads) == 25 and all(s.endswith("LIMIT 10 OFFSET 0") for s in reads)
    assert sink.writes == 26  # a batch at a time, then what is left


def test_an_existing_file_is_never_replaced(box, tmp_path, capsys):
    out = tmp_path / "trail.csv"
    out.write_text("the only copy of something else")
    assert export(box, out) != 0
    assert "trail.csv is there already" in capsys.readouterr().err
    assert out.read_text() == "the only copy of something else" and entries(box[0]) == []


def test_a_file_made_there_as_the_copy_is_written_is_kept(box, tmp_path, capsys, monkeypatch):
    """Made at the copy's name after the look at the start, it is kept and refused as at
    the start, the copy audited as not written."""
    from firmware.sarbundle import FileSpool

    out = tmp_path / "trail.csv"
    real = FileSpool.ready

    def made_meanwhile(self):
        real(self)
        out.write_text("made meanwhile")

    monkeypatch.setattr(FileSpool, "ready", made_meanwhile)
    assert export(box, out) != 0
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "%s is there already: a copy of the audit trail never replaces a file; give a new file "
            "name — nothing was written" % out
        )
    )
    assert out.read_text() == "made meanwhile"
    assert sorted(os.listdir(tmp_path)) == ["box", "password.txt", "trail.csv"]
    made = {"file": "trail.csv", "handovers": 0, "via": "cli"}
    assert entries(box[0]) == [
        ("admin", made),
        ("admin", dict(made, failed="not written: a file was made there meanwhile")),
    ]


def test_a_failure_part_way_leaves_no_file_and_is_audited(box, tmp_path, capsys, monkeypatch):
    from firmware.sarbundle import FileSpool

    real = FileSpool.write

    def full_card(self, data):  # half of it written, then the card is full
        real(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSpool, "write", full_card)
    out = tmp_path / "trail.csv"
    assert export(box, out) != 0
    assert "cannot write %s: No space left on device" % out in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["box", "password.txt"]  # no part of it, nor its spool
    made = {"file": "trail.csv", "handovers": 0, "via": "cli"}
    assert entries(box[0]) == [("admin", made), ("admin", dict(made, failed="No space left on device"))]


def test_only_an_auditor_with_their_password_copies_it_audited(box, tmp_path, capsys):
    path = box[0]
    out = tmp_path / "trail.csv"
    (tmp_path / "wrong.txt").write_text("not the password\n")
    (tmp_path / "wrong.txt").chmod(0o600)
    assert (
        main(["audit-export", str(out), "--data-dir", path, "--password-file", str(tmp_path / "wrong.txt")])
        != 0
    )
    err = capsys.readouterr().err
    assert err == (
        "linekeeper: the audit trail was not copied: --user admin: no such account or wrong password "
        "(the password in %s) (admin is the user when --user is not given: give --user and your own "
        "account's name)\n" % (tmp_path / "wrong.txt")
    )
    db = sqlite3.connect(os.path.join(path, "web.db"))
    db.execute("CREATE TABLE users (name TEXT, roles TEXT, lines TEXT)")
    db.execute("INSERT INTO users VALUES ('admin', 'installer,supervisor', '1')")
    db.commit()
    db.close()
    assert export(box, out) != 0
    assert "admin is not an auditor: only auditors copy the audit trail" in capsys.readouterr().err
    assert not out.exists()
    refusals = [d["refused"] for _, d in entries(path)]
    assert len(refusals) == 2 and "admin is not an auditor" in refusals[1]


def test_after_a_hat_replacement_the_current_fingerprint_alone_checks_the_whole_copy(box, tmp_path, capsys):
    bound = hand_over(box)
    out = tmp_path / "trail.csv"
    assert export(box, out) == 0
    rows = read(out)
    assert rows[1][0] == "handover" and json.loads(rows[1][1])["audit_seq"] == bound
    capsys.readouterr()
    assert main(["verify-audit", str(out), "--key", NEW.fingerprint]) == 0
    said = capsys.readouterr().out
    assert "the replaced key %s signed up to entry %d" % (OLD.fingerprint, bound) in said
    assert "whole: every entry from 1 to %d" % (bound + 11) in said
    # The copy's statement taken out: the old key's entries are not the key given's.
    write(out, rows[:1] + rows[2:])
    problems, _ = check_copy(out, [NEW.fingerprint])
    assert problems == [
        "lines 2 to %d: %d entries, 1 to %d, are signed by %s, not by the key given (%s)"
        % (bound + 1, bound, bound, OLD.fingerprint, NEW.fingerprint)
    ]
    # Still, as before, with each key given (a copy without the statements).
    assert check_copy(out, [NEW.fingerprint, OLD.fingerprint])[0] == []


def test_a_handover_statement_is_followed_only_as_the_current_key_signed_it(box, tmp_path):
    bound = hand_over(box)
    out = tmp_path / "trail.csv"
    assert export(box, out) == 0
    rows = read(out)
    statement = json.loads(rows[1][1])
    # A bound moved later: the statement's signature no longer holds.
    moved = dict(statement, audit_seq=bound + 5)
    write(out, rows[:1] + [["handover", json.dumps(moved)] + [""] * 11] + rows[2:])
    problems, _ = check_copy(out, [NEW.fingerprint])
    assert any("not vouched for by the key given" in p for p in problems)
    # An entry after the handover signed with the old key (the card's holder had it).
    from firmware.storage.audit import SIG_TAG

    last = rows[-1]
    last[11] = OLD.sign(SIG_TAG + bytes.fromhex(last[8])).hex()
    last[12] = base64.b64encode(OLD.public_key).decode()
    write(out, rows)
    problems, _ = check_copy(out, [NEW.fingerprint])
    assert problems == [
        "line %d: entry %s is signed by the replaced key %s after its handover at entry %d "
        "(a key that no longer signs for the box)" % (len(rows), last[0], OLD.fingerprint, bound)
    ]


def test_an_export_stopped_part_way_leaves_no_file(box, tmp_path, monkeypatch, capsys):
    """A long copy stopped (Ctrl-C) leaves no part of it beside FILE either, and says so
    (it exited 130 without a word)."""
    from firmware.sarbundle import FileSpool

    real = FileSpool.write

    def stopped(self, data):
        real(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(FileSpool, "write", stopped)
    capsys.readouterr()
    assert export(box, tmp_path / "trail.csv") == 130
    assert sorted(os.listdir(tmp_path)) == ["box", "password.txt"]
    assert entries(box[0])[-1][1]["failed"] == "stopped"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "linekeeper: audit-export stopped before %s was whole: none of it was left there, and the "
        "audit trail shows the stop; run it again to make the file" % (tmp_path / "trail.csv")
    )
