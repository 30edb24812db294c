"""Issue 4 acceptance: tampering is detected by ``verify`` and refused by ``export``.

A box records two calls to the end and is cut off (a power-cut image) in the
middle of a third, which the recovery sweep finishes as ``partial``. Each
test alters a fresh copy of that data dir the way an attacker holding the SD
card could - a flipped bit, a truncated file, two chunks swapped, a chunk
duplicated, a wrong password, an edited audit entry - sometimes also
rewriting the recording's row (size and SHA-256) to match, and checks:

* ``linekeeper verify`` exits non-zero and names the problem (with
  ``--password-file`` every chunk is authenticated, so a rewritten row does
  not help);
* ``linekeeper export`` exits 2 with a clear message, leaves no file behind,
  and the refusal is in the audit trail.
"""

import contextlib
import hashlib
import os
import shutil
import sqlite3
import struct

import pytest

from firmware.storage.audit import AuditLog

T_CUT_US = 9_000_000
CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "out",
        "dial": {"digits": "123"},
        "talk": 5.0,
        "speech": "The birch canoe slid on the smooth planks.",
    },
    {
        "line": 2,
        "at": 0.5,
        "direction": "in",
        "rings": 1,
        "talk": 4.0,
        "speech": "Glue the sheet to the dark blue background.",
    },
    {
        "line": 3,
        "at": 3.0,
        "direction": "in",
        "rings": 1,
        "talk": 12.0,
        "speech": "It's easy to tell the depth of a well.",
    },
]


@pytest.fixture(scope="module")
def base(module_lab):
    """The power-cut image, recovered: ``(data dir, {line: recording row})``."""
    lab = module_lab
    scenario = lab.load(lab.scenario_doc(CALLS, lines=3))
    live = lab.init_data_dir(lab.tmp_path / "live")
    image = str(lab.tmp_path / "image")
    lab.run(scenario, live, until_us=T_CUT_US + 100_000, snapshots=[(T_CUT_US, image)])
    store = lab.store(image)
    try:
        store.recover()
    finally:
        store.close()
    calls = {c["id"]: c for c in lab.calls(image)}
    rows = {calls[r["call_id"]]["line"]: r for r in lab.rows(image)}
    assert [rows[line]["state"] for line in (1, 2, 3)] == ["complete", "complete", "partial"]
    status, out, err = lab.verify(image)
    assert status == 0, out + err
    return image, rows


@pytest.fixture
def box(base, lab, tmp_path):
    """A fresh copy of the image, and its rows by line."""
    image, rows = base
    data_dir = str(tmp_path / "data")
    shutil.copytree(image, data_dir)
    return data_dir, rows


# ------------------------------------------------------------------ the file's records
def records(path):
    """``(header bytes, [record bytes, length field included])`` of a recording file."""
    with open(path, "rb") as f:
        data = f.read()
    header_len = 13 + struct.unpack_from(">I", data, 9)[0]
    pos, out = header_len, []
    while pos < len(data):
        n = 4 + struct.unpack_from(">I", data, pos)[0]
        out.append(data[pos : pos + n])
        pos += n
    return data[:header_len], out


def write_records(path, header, recs):
    with open(path, "wb") as f:
        f.write(header + b"".join(recs))


def rewrite_row(data_dir, row):
    """What an attacker who also edits the database does: make size and SHA-256 match again."""
    path = os.path.join(data_dir, "recordings", row["file"])
    with open(path, "rb") as f:
        data = f.read()
    with contextlib.closing(sqlite3.connect(os.path.join(data_dir, "calls.db"))) as db, db:
        db.execute(
            "UPDATE recordings SET bytes = ?, sha256 = ? WHERE id = ?",
            (len(data), hashlib.sha256(data).hexdigest(), row["id"]),
        )


def flip_bit(path, recs, header):
    data = bytearray(header + b"".join(recs))
    at = len(header) + len(recs[0]) + len(recs[1]) // 2  # inside chunk 1's ciphertext
    data[at] ^= 0x10
    with open(path, "wb") as f:
        f.write(data)


TAMPER = {
    "flipped bit": flip_bit,
    "truncated at a chunk": lambda path, recs, header: write_records(path, header, recs[:-2]),
    "truncated inside a chunk": lambda path, recs, header: write_records(
        path, header, recs[:-2] + [recs[-2][: len(recs[-2]) // 2]]
    ),
    "chunks swapped": lambda path, recs, header: write_records(
        path, header, [recs[0], recs[2], recs[1]] + recs[3:]
    ),
    "chunk duplicated": lambda path, recs, header: write_records(
        path, header, recs[:2] + [recs[1]] + recs[2:]
    ),
}


# ------------------------------------------------------------------ checks
def export_refused(lab, data_dir, call_id, tmp_path, password_file=None, expect="not exported"):
    out_dir = tmp_path / "exports"
    out_dir.mkdir(exist_ok=True)
    before = _exports(data_dir)
    status, out, err = lab.export(data_dir, call_id, out_dir / "call.wav", password_file)
    assert status == 2, (status, out, err)
    assert "not exported" in err and expect in err, err
    assert os.listdir(out_dir) == [], "a refused export left %s" % os.listdir(out_dir)
    after = _exports(data_dir)
    assert len(after) == len(before) + 1
    assert after[0].details["refused"] and after[0].target == "call:%d" % call_id
    return err


def _exports(data_dir):
    with AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head")) as log:
        return log.entries(action="export")


def verify_fails(lab, data_dir, with_key, expect):
    status, out, err = lab.verify(data_dir, with_key=with_key)
    assert status == 1, (status, out, err)
    assert expect in out, out
    return out


# ------------------------------------------------------------------ tests
def test_an_intact_export_is_made_and_audited(lab, box, tmp_path):
    data_dir, rows = box
    for line in (1, 3):  # complete, and partial (cut by the power)
        out = tmp_path / ("line%d.wav" % line)
        status, stdout, err = lab.export(data_dir, rows[line]["call_id"], out)
        assert status == 0, err
        assert len(lab.read_wav(out)) > 8000
        assert os.stat(out).st_mode & 0o777 == 0o600
        entry = _exports(data_dir)[0]
        assert entry.details == {
            "recording": rows[line]["id"],
            "file": out.name,
            "state": rows[line]["state"],
            "reason": "a test export of the call",
        }


def test_an_export_without_a_fit_reason_is_neither_made_nor_audited(lab, box, tmp_path):
    """The web export asks why; the command line did not, and its entry said nothing."""
    data_dir, rows = box
    before = _exports(data_dir)
    for reason, said in (("why", "in 5 to 500 characters"), ("ref \u202e1234", "direction control")):
        out = tmp_path / "x.wav"
        status, _, err = lab.export(data_dir, rows[1]["call_id"], out, reason=reason)
        assert status == 2 and said in err, err
        assert not out.exists()
    assert len(_exports(data_dir)) == len(before)


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


def test_an_export_cut_as_it_is_written_is_audited_already(lab, box, tmp_path, monkeypatch):
    """The command line audited an export after writing the audio and its manifest: a cut
    between left audio on the stick that no entry showed. The entry now comes once the
    audio is checked and signed in memory, before any of it is written."""
    from firmware.storage import fsutil

    data_dir, rows = box
    out = tmp_path / "cut.wav"
    real = fsutil.write_new

    def write_new(path, data, *args, **kwargs):
        real(path, data, *args, **kwargs)
        if os.fspath(path) == os.fspath(out):
            raise _Cut()  # the audio is out, its manifest not yet

    before = _exports(data_dir)
    monkeypatch.setattr(fsutil, "write_new", write_new)
    with pytest.raises(_Cut):
        lab.export(data_dir, rows[1]["call_id"], out)
    monkeypatch.undo()
    assert out.exists()
    after = _exports(data_dir)
    assert len(after) == len(before) + 1 and after[0].details["file"] == out.name
    assert "refused" not in after[0].details


@pytest.mark.parametrize("kind", sorted(TAMPER))
@pytest.mark.parametrize("row_rewritten", [False, True], ids=["file only", "file and row"])
def test_altered_recording_is_detected_and_refused(lab, box, tmp_path, kind, row_rewritten):
    data_dir, rows = box
    row = rows[1]
    path = os.path.join(data_dir, "recordings", row["file"])
    header, recs = records(path)
    assert len(recs) >= 5
    TAMPER[kind](path, recs, header)
    rid = row["id"]
    if row_rewritten:
        rewrite_row(data_dir, row)
    else:
        # The cheap check (no password): size and SHA-256 against the row.
        verify_fails(lab, data_dir, False, "recording %s (call %d): file changed" % (rid, row["call_id"]))
    # Authenticated: every chunk's tag, its place in the stream, the final chunk.
    out = verify_fails(lab, data_dir, True, "recording %s" % rid)
    # The other recordings are fine (the audit trail's record of the seal also names this one).
    assert {line.split(":")[0].split(" (")[0] for line in out.splitlines()} == {"recording %s" % rid}, out
    err = export_refused(lab, data_dir, row["call_id"], tmp_path)
    assert rid in err


def test_truncated_partial_recording_is_detected_and_refused(lab, box, tmp_path):
    """A crash partial has no final chunk: its row's size and hash are what catch a cut."""
    data_dir, rows = box
    row = rows[3]
    path = os.path.join(data_dir, "recordings", row["file"])
    header, recs = records(path)
    write_records(path, header, recs[:-1])
    for with_key in (False, True):
        verify_fails(
            lab, data_dir, with_key, "recording %s (call %d): file changed" % (row["id"], row["call_id"])
        )
    export_refused(lab, data_dir, row["call_id"], tmp_path, expect="file changed")


def test_altered_partial_recording_is_detected_even_with_its_row_rewritten(lab, box, tmp_path):
    """Only a partial recording's last record may fail authentication (a torn write)."""
    data_dir, rows = box
    row = rows[3]
    path = os.path.join(data_dir, "recordings", row["file"])
    header, recs = records(path)
    flip_bit(path, recs, header)
    rewrite_row(data_dir, row)
    out = verify_fails(lab, data_dir, True, "recording %s" % row["id"])
    assert "chunk 1 failed authentication" in out
    export_refused(lab, data_dir, row["call_id"], tmp_path, expect="altered or damaged")


def test_deleted_file_is_detected_and_refused(lab, box, tmp_path):
    data_dir, rows = box
    os.unlink(os.path.join(data_dir, "recordings", rows[2]["file"]))
    verify_fails(lab, data_dir, False, "file missing")
    export_refused(lab, data_dir, rows[2]["call_id"], tmp_path, expect="file missing")


def test_wrong_password_is_detected_and_refused(lab, box, tmp_path):
    data_dir, rows = box
    wrong = lab.password_file("correct horse battery staple", name="wrong")
    status, out, err = lab.verify(data_dir, password_file=wrong)
    # The person's mistake, not the data's: refused in one line, no problem counted.
    said = "--user admin: no such account or wrong password (the password in %s)" % wrong
    assert (status, out) == (2, "") and said in err and "problem" not in err, (out, err)
    err = export_refused(lab, data_dir, rows[1]["call_id"], tmp_path, password_file=wrong, expect=said)
    assert _exports(data_dir)[0].actor == "admin"


def test_edited_audit_entry_is_detected_and_refuses_exports(lab, box, tmp_path):
    data_dir, rows = box
    status, out, err = lab.export(data_dir, rows[1]["call_id"], tmp_path / "first.wav")
    assert status == 0
    os.unlink(tmp_path / "first.wav")
    # The attacker rewrites who exported it (the triggers only stop honest mistakes).
    with contextlib.closing(sqlite3.connect(os.path.join(data_dir, "audit.db"))) as db, db:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("UPDATE audit SET actor = 'nobody' WHERE action = 'export'")
    out = verify_fails(lab, data_dir, True, "audit trail: audit entry")
    assert "was modified" in out
    export_refused(lab, data_dir, rows[1]["call_id"], tmp_path, expect="audit trail is damaged")
