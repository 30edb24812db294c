"""Subject access: a number found in several forms, its bundle, checksums, encryption, the log."""

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import zipfile

import pytest

from firmware import cli
from firmware.box import open_audit
from firmware.sar import DisclosureLog, SarError, find_calls, request_numbers
from firmware.storage.keystore import Argon2Params, KeyStore

PASSWORD = "correct horse battery 7"
CALLS = [
    {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "caller_id": {"number": "01632960123"},
        "rings": 2,
        "talk": 6.0,
    },  # the subject
    {
        "line": 2,
        "at": 30.0,
        "direction": "in",
        "caller_id": {"number": "01712960123"},
        "rings": 2,
        "talk": 4.0,
    },  # same last digits
    {
        "line": 3,
        "at": 60.0,
        "direction": "out",
        "dial": {"digits": "00441632960123"},
        "talk": 5.0,
    },  # the subject, dialled
    {
        "line": 1,
        "at": 90.0,
        "direction": "in",
        "caller_id": {"number": "01632960123"},
        "rings": 2,
        "answer": False,
    },  # missed: a record only
    {
        "line": 4,
        "at": 120.0,
        "direction": "in",
        "caller_id": {"number": "02079460000"},
        "rings": 2,
        "talk": 3.0,
    },
    {
        "line": 2,
        "at": 150.0,
        "direction": "out",
        "dial": {"digits": "14101632960123"},
        "talk": 3.0,
    },  # the subject, dialled withholding the caller's number (141): the search missed it
]


@pytest.fixture(scope="module")
def sar_dir(tmp_path_factory):
    return make_box(tmp_path_factory.mktemp("sar"))


def make_box(root):
    """A data directory with :data:`CALLS` (calls 1 to 6) and their recordings."""
    data = str(root / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    (root / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 4, "calls": CALLS})
    )
    assert cli.main(["sim", str(root / "s.json"), "--data-dir", data]) == 0
    (root / "pw").write_text(PASSWORD + "\n")
    (root / "bundle-pw").write_text("give this by phone 7\n")
    return root, data


# A release of calls named after a search by date alone says how the user knows whose they are.
WHOSE = ("--whose", "withheld number; the times and line she gave")


def sar(root, data, out, *extra, read=True):
    """``linekeeper sar`` with the test's requester, recipient and reason. A release is made
    as its letter's reader makes it (``read``): its letter read first (``--letter``), and
    released with the digest that printed (``--letter-sha256``)."""
    args = [
        "sar",
        "--data-dir",
        data,
        "--password-file",
        str(root / "pw"),
        "--requester",
        "Ms Smith (caller)",
        "--recipient",
        "Ms Smith",
        "--reason",
        "subject access request",
        "--out",
        str(out),
    ] + list(extra)
    if read and not {"--letter", "--earlier", "--letter-sha256"} & set(extra):
        digest = letter_sha256(args)
        if digest is not None:
            args += ["--letter-sha256", digest]
    return cli.main(args)


def letter_sha256(args):
    """The letter's digest ``linekeeper sar ARGS --letter`` prints, or None if it refused."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        if cli.main(list(args) + ["--letter"]) != 0:
            return None
    return re.search(r"--letter-sha256 ([0-9a-f]{64})", err.getvalue()).group(1)


def test_bundle_holds_exactly_that_numbers_calls_and_verifies(sar_dir, tmp_path):
    root, data = sar_dir
    out = tmp_path / "smith.zip"
    assert sar(root, data, out, "--number", "+44 1632 960123") == 0
    z = zipfile.ZipFile(out)
    calls = json.loads(z.read("calls.json"))
    assert [(c["line"], c["direction"], c["number"]) for c in calls] == [
        (1, "in", "01632960123"),
        (3, "out", "00441632960123"),
        (1, "in", "01632960123"),
        (2, "out", "14101632960123"),
    ]
    assert sorted(n for n in z.namelist() if n.startswith("recordings/")) == sorted(
        "recordings/call-%d.wav" % calls[i]["id"] for i in (0, 1, 3)
    )
    # Each call's record says what its recording is (it said none: the calls were read
    # without their recordings).
    assert [c["recording"] for c in calls] == ["complete", "complete", None, "complete"]
    assert all(c["recording_duration_s"] > 1 for c in calls[:2])
    sums = dict(reversed(line.split("  ")) for line in z.read("SHA256SUMS").decode().splitlines())
    assert set(sums) == set(z.namelist()) - {"SHA256SUMS", "manifest.json"}
    for name, digest in sums.items():
        assert hashlib.sha256(z.read(name)).hexdigest() == digest
    manifest = json.loads(z.read("manifest.json"))
    assert manifest["calls"] == [c["id"] for c in calls]
    assert manifest["request"]["requester"] == "Ms Smith (caller)"
    [entry] = [e for e in DisclosureLog(data).entries() if e["bundle"] == "smith.zip"]
    assert entry["call_ids"] == ",".join(str(c["id"]) for c in calls)
    assert entry["bundle_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert entry["recordings"] == 3 and entry["encrypted"] == 0
    with open_audit(data) as audit:
        last = audit.entries(limit=1, action="disclosure")[0]
    assert last.actor == "admin" and last.details["calls"] == [c["id"] for c in calls]
    # The lines of its calls, by which a supervisor's year in review counts it.
    assert last.details["lines"] == [1, 2, 3]


def test_a_number_written_with_its_trunk_zero_in_brackets_is_found(sar_dir, tmp_path):
    """ "+44 (0)1632 960123", as a letterhead writes it, was taken for +4401632960123:
    the search found none of the person's calls, and the page said 0 calls."""
    root, data = sar_dir
    out = tmp_path / "smith.zip"
    assert sar(root, data, out, "--number", "+44 (0)1632 960123") == 0
    assert len(json.loads(zipfile.ZipFile(out).read("calls.json"))) == 4


def test_encrypted_bundle_needs_its_password(sar_dir, tmp_path):
    root, data = sar_dir
    out = tmp_path / "smith.zip.gpg"
    assert (
        sar(root, data, out, "--number", "01632 960123", "--bundle-password-file", str(root / "bundle-pw"))
        == 0
    )
    assert not zipfile.is_zipfile(out)

    def gpg(password):
        return subprocess.run(
            [
                "gpg",
                "--homedir",
                str(tmp_path),
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                password,
                "--decrypt",
                str(out),
            ],
            capture_output=True,
        )

    assert gpg("wrong password").returncode != 0
    opened = gpg("give this by phone 7")
    assert opened.returncode == 0
    z = zipfile.ZipFile(io.BytesIO(opened.stdout))
    assert len(json.loads(z.read("calls.json"))) == 4


def test_a_date_range_alone_releases_only_the_calls_named(sar_dir, tmp_path, capsys):
    """A date range alone released every caller's calls of those days to one requester.
    Without a number the calls to release are named (a withheld caller's, say), and, as they
    can be anyone's, how the user knows each is the requester's is said (``--whose``): it
    is in the release's audit entry, not in the bundle. Without it, or with a number
    searched (which says whose they are), nothing is released."""
    root, data = sar_dir
    out = tmp_path / "day.zip"
    day = ("--from", "2026-03-02", "--to", "2026-03-02")
    whose = "withheld number; the times and line she gave"

    def releases():
        with open_audit(data) as audit:
            return audit.entries(action="disclosure", newest_first=False)

    before = len(releases())
    assert sar(root, data, out, *day) == 2
    assert "a release names the requester's number" in capsys.readouterr().err and not out.exists()
    assert sar(root, data, out, *day, "--call", "2", "--call", "4") == 2
    err = capsys.readouterr().err
    assert "calls found by date alone can be any caller's: say how you know" in err and not out.exists()
    assert sar(root, data, out, *day, "--call", "2", "--whose", "  ") == 2 and not out.exists()
    # By the rule of a reason the trail keeps (5 to 500 characters, no control character):
    # a single "x" released the calls.
    assert sar(root, data, out, *day, "--call", "2", "--whose", "x") == 2 and not out.exists()
    assert "in 5 to 500 characters" in capsys.readouterr().err
    assert sar(root, data, out, *day, "--call", "2", "--whose", "she said \x1b[2J 9:05") == 2
    assert "whose calls they are: Remove the control character U+001B" in capsys.readouterr().err
    assert sar(root, data, out, *day, "--call", "2", "--whose", "x" * 501) == 2
    assert "whose calls they are: At most 500 characters." in capsys.readouterr().err
    assert not out.exists()
    assert sar(root, data, out, "--number", "01632960123", "--call", "1", "--whose", whose) == 2
    assert "whose the calls are is said only of calls found by date alone" in capsys.readouterr().err
    assert not out.exists() and len(releases()) == before
    assert sar(root, data, out, *day, "--call", "2", "--call", "4", "--whose", whose) == 0
    assert [c["id"] for c in json.loads(zipfile.ZipFile(out).read("calls.json"))] == [2, 4]
    assert whose not in zipfile.ZipFile(out).read("manifest.json").decode()
    released = releases()[-1]
    assert len(releases()) == before + 1 and released.details["calls"] == [2, 4]
    assert released.details["whose"] == whose
    assert sar(root, data, tmp_path / "x.zip", *day, "--call", "99", "--whose", whose) == 2
    assert "call 99 is not among the calls found" in capsys.readouterr().err


def test_times_of_day_narrow_a_search_by_date(tmp_path, capsys):
    """A withheld caller's call "about 9:01" was found only among every caller's of the
    whole day. ``--from-time``/``--to-time`` narrow the first and last day to the minutes
    given (both included), as the calls list's times do, and the search's audit entry says
    them beside its days."""
    root, data = make_box(tmp_path)
    minute = ("--from", "2026-03-02", "--to", "2026-03-02", "--from-time", "09:01", "--to-time", "09:01")
    out = tmp_path / "minute.zip"
    assert sar(root, data, out, *minute, "--call", "1", *WHOSE) == 2  # 09:00:01: not in that minute
    assert "call 1 is not among the calls found" in capsys.readouterr().err and not out.exists()
    assert sar(root, data, out, *minute, "--call", "3", *WHOSE, "--earlier") == 0
    with open_audit(data) as audit:
        [search] = audit.entries(action="disclosure_search")
    assert search.details == {
        "from": "2026-03-02",
        "from_time": "09:01",
        "to": "2026-03-02",
        "to_time": "09:01",
        "found": 2,  # calls 3 and 4, of 09:01:00 and 09:01:30
        "copies": [],
    }
    assert sar(root, data, out, *minute, "--call", "3", "--call", "4", *WHOSE) == 0
    assert [c["id"] for c in json.loads(zipfile.ZipFile(out).read("calls.json"))] == [3, 4]


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "give a number, a date range, or both"),
        (["--number", "12"], "is not a phone number"),
        (["--number", "07700900000"], "no calls match: nothing to release"),
        (["--from", "2026-03-05", "--to", "2026-03-01"], "the date range is backwards"),
        (["--from", "2026-03-05"], "give both --from and --to"),
        (["--from", "2025-01-01", "--to", "2026-03-02"], "a date range covers at most 366 days"),
        (
            ["--from", "2026-03-02", "--to", "2026-03-02", "--from-time", "9.05"],
            "--from time '9.05': Enter a time of day as HH:MM, 24-hour (for example 14:30).",
        ),
        (["--number", "01632960123", "--to-time", "09:05"], "Choose the day of this time too (--from)"),
        (
            ["--from", "2026-03-02", "--to", "2026-03-02", "--from-time", "10:00", "--to-time", "09:59"],
            "The end (Mon 2 Mar 2026 at 09:59) is before the start (Mon 2 Mar 2026 at 10:00)",
        ),
    ],
)
def test_bad_requests(sar_dir, tmp_path, capsys, extra, message):
    root, data = sar_dir
    out = tmp_path / "x.zip"
    assert sar(root, data, out, *extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_an_output_file_that_cannot_be_made_is_refused_before_the_release_is_logged(
    sar_dir, tmp_path, capsys, where
):
    """A release is logged before its bundle is written: ``--out`` naming a folder, or a
    file in a folder that is not there, left a disclosure on record that never happened."""
    root, data = sar_dir
    out = tmp_path if where == "folder" else tmp_path / "nowhere" / "x.zip"
    before = len(DisclosureLog(data).entries())
    assert sar(root, data, out, "--number", "01632960123") == 2
    err = capsys.readouterr().err
    assert str(out) in err and err.count("\n") == 1, err
    assert ("is a folder" if where == "folder" else "there is no folder") in err
    assert len(DisclosureLog(data).entries()) == before


def test_a_bundle_there_already_is_refused_not_replaced(sar_dir, tmp_path, capsys):
    """A release to a bundle there already replaced it: the earlier release's disclosure log
    entry and audit hash then named a file that no longer was. Refused, as audit-export's
    copy is, nothing written or logged, the refusal audited."""
    root, data = sar_dir
    out = tmp_path / "s8.zip"
    assert sar(root, data, out, "--number", "01632960123", "--call", "1") == 0
    earlier, logged = out.read_bytes(), len(DisclosureLog(data).entries())
    capsys.readouterr()
    assert sar(root, data, out, "--number", "01632960123", "--call", "3") == 2
    err = capsys.readouterr().err
    said = (
        "%s is there already: a subject access bundle never replaces a file; give a new file "
        "name — nothing was written" % out
    )
    assert said in err
    assert out.read_bytes() == earlier and len(DisclosureLog(data).entries()) == logged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s8.zip"]
    with open_audit(data) as audit:
        assert said in audit.entries(limit=1, action="disclosure_refused")[0].details["refused"]


def test_a_bundle_made_there_while_it_is_written_is_kept(sar_dir, tmp_path, capsys, monkeypatch):
    """A file made at the bundle's name while the bundle was written was replaced by its
    rename into place. It is kept and refused as at the start; the release is audited as
    not made, and no part of the bundle is left."""
    from firmware.sarbundle import FileSpool

    root, data = sar_dir
    out = tmp_path / "raced.zip"
    real = FileSpool.ready

    def made_meanwhile(self):
        real(self)
        out.write_bytes(b"made meanwhile")

    monkeypatch.setattr(FileSpool, "ready", made_meanwhile)
    assert sar(root, data, out, "--number", "01632960123", "--call", "1") == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(
        "%s is there already: a subject access bundle never replaces a file; give a new file "
        "name — nothing was written" % out
    ), err
    assert out.read_bytes() == b"made meanwhile" and [p.name for p in tmp_path.iterdir()] == ["raced.zip"]
    with open_audit(data) as audit:
        failed = audit.entries(limit=1, action="disclosure")[0].details["failed"]
    assert (
        failed == "%s is there already, made meanwhile: a subject access bundle never replaces a file" % out
    )


@pytest.mark.parametrize(
    "name, encrypted, said",
    [
        ("s11.txt", False, "a bundle is a .zip file (.zip.gpg when encrypted"),
        ("s11.zip.gpg", False, "a bundle is a .zip file (.zip.gpg when encrypted"),
        ("s11.zip", True, "an encrypted bundle (--bundle-password-file) is a .zip.gpg file"),
        ("s11.gpg", True, "an encrypted bundle (--bundle-password-file) is a .zip.gpg file"),
    ],
)
def test_a_bundle_named_other_than_zip_is_refused(sar_dir, tmp_path, capsys, name, encrypted, said):
    """--out s11.txt was accepted, though a bundle is a .zip (.zip.gpg encrypted), as its
    help says: refused as export refuses a name other than .wav or .ogg, nothing written."""
    root, data = sar_dir
    out = tmp_path / name
    extra = ("--bundle-password-file", str(root / "bundle-pw")) if encrypted else ()
    logged = len(DisclosureLog(data).entries())
    assert sar(root, data, out, "--number", "01632960123", *extra) == 2
    err = capsys.readouterr().err
    assert "--out %s: %s" % (out, said) in err and "nothing was written" in err
    assert not out.exists() and len(DisclosureLog(data).entries()) == logged
    # Named as it is, in any case, it goes.
    right = tmp_path / ("S11.ZIP.GPG" if encrypted else "S11.Zip")
    assert sar(root, data, right, "--number", "01632960123", *extra) == 0 and right.exists()


def wav_samples(data):
    import wave

    import numpy as np

    with wave.open(io.BytesIO(data)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def test_redacted_span_is_silence_and_the_rest_untouched(sar_dir, tmp_path):
    root, data = sar_dir
    plain, redacted = tmp_path / "plain.zip", tmp_path / "redacted.zip"
    assert sar(root, data, plain, "--number", "01632960123") == 0
    first = json.loads(zipfile.ZipFile(plain).read("calls.json"))[0]["id"]
    assert sar(root, data, redacted, "--number", "01632960123", "--redact", "%d:1-3.5" % first) == 0
    name = "recordings/call-%d.wav" % first
    a, rate = wav_samples(zipfile.ZipFile(plain).read(name))
    b, _ = wav_samples(zipfile.ZipFile(redacted).read(name))
    span = slice(1 * rate, int(3.5 * rate))
    assert a[span].any() and not b[span].any()
    assert (a[:rate] == b[:rate]).all() and (a[int(3.5 * rate) :] == b[int(3.5 * rate) :]).all()
    manifest = json.loads(zipfile.ZipFile(redacted).read("manifest.json"))
    assert manifest["redacted"] == [{"call": first, "from_s": 1.0, "to_s": 3.5}]
    sums = zipfile.ZipFile(redacted).read("SHA256SUMS").decode()
    assert hashlib.sha256(zipfile.ZipFile(redacted).read(name)).hexdigest() in sums


@pytest.mark.parametrize(
    "redact, message",
    [
        ("1:5-2", "is empty or backwards"),
        ("one:1-2", "a redaction is CALL:FROM-TO"),
        ("999:1-2", "call 999 is not in the release"),
    ],
)
def test_bad_redactions(sar_dir, tmp_path, capsys, redact, message):
    root, data = sar_dir
    out = tmp_path / "x.zip"
    assert sar(root, data, out, "--number", "01632960123", "--redact", redact) == 2
    assert message in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "redact, message",
    [
        # Minutes typed for seconds: nothing was silenced, and the letter said it was.
        ("1:100-200", "the redaction 1:100-200 is past the end of call 1's recording, which is 6.91 seconds"),
        ("1:6.911625-7", "the redaction 1:6.911625-7 is past the end of call 1's recording"),
        ("1:5-8", "the redaction 1:5-8 runs past the end of call 1's recording, which is 6.91 seconds"),
        ("4:1-2", "call 4 has no recording in the release: the redaction 4:1-2 silences nothing"),
    ],
)
def test_a_redaction_outside_the_recording_is_refused_and_audited(sar_dir, tmp_path, capsys, redact, message):
    """A span past the recording's end silenced nothing, while the letter told the person
    it was silenced: refused, with the recording's length, nothing written; the letter too
    (--letter), and the refusal audited as every refusal of a release is."""
    root, data = sar_dir
    out = tmp_path / "x.zip"
    with open_audit(data) as audit:
        before = len(audit.entries(limit=10000, action="disclosure_refused"))
    for extra in ((), ("--letter",)):
        assert sar(root, data, out, "--number", "01632960123", "--redact", redact, *extra, read=False) == 2
        err = capsys.readouterr().err
        assert message in err and "Nothing was released" in err and not out.exists()
    with open_audit(data) as audit:
        refused = audit.entries(limit=10000, action="disclosure_refused")
    assert len(refused) == before + 2 and message in refused[0].details["refused"]
    # A span that ends at the recording's end is all within it.
    assert sar(root, data, out, "--number", "01632960123", "--redact", "1:5-6.91") == 0


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


@pytest.mark.parametrize("fault", ["cut", "full"])
def test_a_release_is_logged_and_audited_before_the_bundle_is_written(sar_dir, tmp_path, monkeypatch, fault):
    """The bundle was written, then logged and audited: a cut between left every call of a
    person on a stick with no disclosure on record. The log and the trail now come first;
    a write the card refuses adds an entry that says so."""
    from firmware.storage import fsutil

    root, data = sar_dir

    def write(path, *args, **kwargs):
        if fault == "cut":
            raise _Cut()
        raise OSError(28, "No space left on device")

    with open_audit(data) as audit:
        before = len(audit.entries(limit=1000, action="disclosure"))
    out = tmp_path / ("%s.zip" % fault)
    monkeypatch.setattr(fsutil, "commit_new", write)
    if fault == "cut":
        with pytest.raises(_Cut):
            sar(root, data, out, "--number", "+44 1632 960123")
    else:
        assert sar(root, data, out, "--number", "+44 1632 960123") == 2
    monkeypatch.undo()
    assert not out.exists()
    assert [e["bundle"] for e in DisclosureLog(data).entries()].count(out.name) == 1
    with open_audit(data) as audit:
        found = audit.entries(limit=1000, action="disclosure")
    entries = found[: len(found) - before]  # this release's, newest first
    assert entries[-1].details["calls"]
    assert [("failed" in e.details) for e in entries] == ([True, False] if fault == "full" else [False])


def _said(data):
    """Each disclosure log entry of ``data`` as its audit trail says it, ``released`` or
    ``not released``, after asserting that the two agree (each entry audited, the trail
    naming no entry the log has not)."""
    ids = sorted(e["id"] for e in DisclosureLog(data).entries())
    with open_audit(data) as audit:
        audited = audit.entries(limit=1000, action="disclosure", newest_first=False)
    said = {}
    for a in audited:
        entry_id = int(a.target.split(":")[1])
        said[entry_id] = "not released" if "failed" in a.details else said.get(entry_id, "released")
    assert sorted(said) == ids, (said, ids)
    return said


# Each step of a command line release the card or stick can refuse, and where the bundle
# lies once each has (None: nowhere; a release refused before or as it is logged).
CLI_STEPS = ("ready", "insert", "audit", "rename", "placed")


@pytest.mark.parametrize("trail", ["open", "refuses"])
@pytest.mark.parametrize("step", CLI_STEPS)
def test_a_command_line_release_failing_at_any_step_leaves_the_log_the_trail_and_the_file_agreeing(
    sar_dir, tmp_path, monkeypatch, capsys, step, trail
):
    """``linekeeper sar``: a stick that took the bundle's rename into place and then refused
    to sync its folder left the bundle there, whole, with its release audited as not made;
    an audit trail that then refused to say a write failed (its card full, or locked) left
    the release audited as made with no bundle anywhere, and a trace of the trail's error.
    Now the bundle is deleted only once its release is audited as not made; the trail
    refusing that, it is kept, whole, and the release stays on record as made, said so."""
    import shutil

    from firmware.sarbundle import FileSpool
    from firmware.storage import fsutil
    from firmware.storage.audit import AuditLog

    root, data = sar_dir
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("lock", "*.sock"))
    before = _said(copy)
    stick = tmp_path / "stick"
    stick.mkdir()
    out = stick / "smith.zip"
    real_append, real_rename = AuditLog.append, fsutil.commit_new

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if step == "ready":
        monkeypatch.setattr(FileSpool, "ready", full)
    elif step == "insert":
        monkeypatch.setattr(DisclosureLog, "add", full)
    elif step == "audit":
        # The release's entry refused (the letter read before it, --letter, was audited).
        def refused(self, actor, action, *a, **kw):
            return full() if action == "disclosure" else real_append(self, actor, action, *a, **kw)

        monkeypatch.setattr(AuditLog, "append", refused)
    else:

        def rename(tmp, path, *args):
            if step == "placed":  # put in place, then its folder's sync refused
                real_rename(tmp, path, *args)
            full()

        monkeypatch.setattr(fsutil, "commit_new", rename)
    if trail == "refuses" and step in ("rename", "placed"):

        def append(self, actor, action, target, details, *a, **kw):
            if "failed" in details:  # the trail's card full by the time the write failed
                raise sqlite3.OperationalError("database is locked")
            return real_append(self, actor, action, target, details, *a, **kw)

        monkeypatch.setattr(AuditLog, "append", append)
    assert sar(root, copy, out, "--number", "+44 1632 960123") == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.splitlines()[-1]  # after the copies given before and the progress
    assert err.startswith("linekeeper: ")
    said = _said(copy)
    new = {k: v for k, v in said.items() if k not in before}
    left = sorted(os.listdir(stick))
    if step in ("ready", "insert", "audit"):
        assert new == {} and left == []
    elif trail == "open":
        assert list(new.values()) == ["not released"] and left == [], err
        assert err == "linekeeper: cannot write smith.zip: No space left on device"
    else:
        # Audited as made, and so it is: whole, at --out or beside it (named in the message).
        assert list(new.values()) == ["released"] and len(left) == 1, err
        kept = stick / left[0]
        assert "it stays on record as released" in err and str(kept) in err
        assert zipfile.ZipFile(kept).testzip() is None
        assert (left == [out.name]) == (step == "placed")


def test_a_command_line_release_the_trail_and_the_log_both_refuse_says_what_the_log_holds(
    sar_dir, tmp_path, monkeypatch, capsys
):
    """The trail refusing the release and the log refusing to take its entry back: the
    command line said the entry "is audited as not released once the card has room", as the
    web UI's is, though nothing does that for the command line's. It says what is so."""
    import shutil

    from firmware.storage.audit import AuditLog

    root, data = sar_dir
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("lock", "*.sock"))
    before = {e["id"] for e in DisclosureLog(copy).entries()}

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    real_append = AuditLog.append

    def refused(self, actor, action, *a, **kw):  # the release's entry (the letter read before it is)
        return full() if action == "disclosure" else real_append(self, actor, action, *a, **kw)

    monkeypatch.setattr(AuditLog, "append", refused)
    monkeypatch.setattr(DisclosureLog, "remove", full)
    out = tmp_path / "smith.zip"
    assert sar(root, copy, out, "--number", "+44 1632 960123") == 2
    monkeypatch.undo()
    [entry] = [e["id"] for e in DisclosureLog(copy).entries() if e["id"] not in before]
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        "linekeeper: the audit trail refused the release (No space left on device): nothing was "
        "released; disclosure log entry %d could not be taken back (No space left on device): the "
        "log lists it as released, though nothing was" % entry
    )
    assert os.listdir(tmp_path) == ["data"]


@pytest.mark.parametrize("stop", ["fails", "ctrl-c", "sigterm"])
def test_a_command_line_release_stopped_part_way_removes_its_unfinished_bundle_and_says_so(
    sar_dir, tmp_path, monkeypatch, capsys, stop
):
    """A bundle stopped as its second recording was written: a recording failing its check and
    Ctrl-C left nothing, but said nothing of it, and SIGTERM ended the process where it stood,
    the half-written bundle left beside --out. Each removes what it began, and says so; nothing
    is logged."""
    import shutil
    import signal

    from firmware.errors import TamperError
    from firmware.recording.store import RecordingStore

    root, data = sar_dir
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("lock", "*.sock"))
    before = _said(copy)
    stick = tmp_path / "stick"
    stick.mkdir()
    real = RecordingStore.export_stream
    streamed = []

    def export_stream(self, *args, **kwargs):
        streamed.append(args)
        if len(streamed) == 2:
            assert os.listdir(stick), "the first recording is written beside --out"
            if stop == "fails":
                raise TamperError("recording 2 failed its check")
            if stop == "ctrl-c":
                raise KeyboardInterrupt
            signal.raise_signal(signal.SIGTERM)
        return real(self, *args, **kwargs)

    def killed(signum, frame):
        raise AssertionError("SIGTERM ended linekeeper sar where it stood")

    monkeypatch.setattr(RecordingStore, "export_stream", export_stream)
    old = signal.signal(signal.SIGTERM, killed)
    try:
        code = sar(root, copy, stick / "smith.zip", "--number", "+44 1632 960123")
    finally:
        signal.signal(signal.SIGTERM, old)
    monkeypatch.undo()
    assert code == {"fails": 2, "ctrl-c": 130, "sigterm": 128 + signal.SIGTERM}[stop]
    assert len(streamed) == 2 and os.listdir(stick) == [] and _said(copy) == before
    err = capsys.readouterr().err
    said = "the unfinished bundle beside %s was removed: nothing was released" % (stick / "smith.zip")
    assert said in err
    if stop == "sigterm":
        assert "linekeeper: interrupted (SIGTERM): " + said in err


def test_a_sigterm_as_a_command_line_release_is_logged_waits_for_it_to_be_finished(
    sar_dir, tmp_path, monkeypatch, capsys
):
    """A SIGTERM between the release's disclosure log entry and its audit entry left the
    two disagreeing: it waits for the release to be finished (logged, audited, renamed into
    place), which is then said."""
    import shutil
    import signal

    root, data = sar_dir
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("lock", "*.sock"))
    before = _said(copy)
    out = tmp_path / "smith.zip"
    real = DisclosureLog.add

    def add(self, *args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return real(self, *args, **kwargs)

    def killed(signum, frame):
        raise AssertionError("SIGTERM stopped linekeeper sar as it logged the release")

    monkeypatch.setattr(DisclosureLog, "add", add)
    old = signal.signal(signal.SIGTERM, killed)
    try:
        assert sar(root, copy, out, "--number", "+44 1632 960123") == 0
    finally:
        signal.signal(signal.SIGTERM, old)
    monkeypatch.undo()
    new = {k: v for k, v in _said(copy).items() if k not in before}
    assert list(new.values()) == ["released"] and zipfile.ZipFile(out).testzip() is None
    assert sorted(os.listdir(tmp_path)) == ["data", "smith.zip"]
    assert "SIGTERM came as the release was being logged: it was finished first" in capsys.readouterr().err


def test_a_recording_erased_or_deleted_is_said_so_in_the_bundle(sar_dir, tmp_path):
    """The call's record said "recording": null, as for a call never recorded: the person
    is owed when and why it went."""
    import shutil

    from firmware.clock import SimClock
    from firmware.policy.retention import RetentionSettings
    from firmware.policy.sweeper import RetentionSweeper
    from firmware.recording.store import RecordingStore

    root, data = sar_dir
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("lock", "*.sock"))
    store = RecordingStore(copy)
    with open_audit(copy) as audit:
        sweeper = RetentionSweeper(
            store, SimClock(start_wall_us=1_780_000_000_000_000), audit, RetentionSettings()
        )
        first = store.all()[0]["call_id"]
        assert sweeper.erase(first, "admin", "erasure request ref 5") == 1
    store.close()
    out = tmp_path / "smith.zip"
    assert sar(root, copy, out, "--number", "+44 1632 960123") == 0
    calls = {c["id"]: c for c in json.loads(zipfile.ZipFile(out).read("calls.json"))}
    assert calls[first]["recording"] == "deleted"
    assert calls[first]["recording_deleted"]["reason"] == "erasure"
    assert "recordings/call-%d.wav" % first not in zipfile.ZipFile(out).namelist()
    # The cover letter says it too, in the person's words and UK time.
    letter = zipfile.ZipFile(out).read("README.txt").decode("utf-8")
    assert "Call %d: Mon 2 Mar 2026, 09:00:01 GMT" % first in letter
    assert "erased on request on" in letter.split("Call %d:" % first)[1].split("Call ")[0]


def test_the_letter_lists_the_copies_of_the_persons_calls_given_before(tmp_path, monkeypatch):
    """UK GDPR Art. 15(1)(c): the person is told to whom their data was disclosed. The letter
    said only that a copy is logged. It now lists the earlier releases of their calls from
    the disclosure log (when, to whom, which calls), their calls alone: not another
    person's release, nor another person's calls released beside theirs, nor a release
    whose bundle never went."""
    from firmware.storage import fsutil

    root, data = make_box(tmp_path)
    day = ("--from", "2026-03-02", "--to", "2026-03-02")
    # Calls 1, 3, 4 and 6 are the subject's (01632 960123 in its forms); 2 and 5 others'.
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632 960123", "--call", "1") == 0
    police = ("--recipient", "Thames Valley\nPolice", "--requester", "PC 123 (Thames Valley Police)")
    assert sar(root, data, tmp_path / "b.zip", *day, "--call", "2", "--call", "3", *police, *WHOSE) == 0
    assert sar(root, data, tmp_path / "c.zip", "--number", "02079460000", "--recipient", "Mr Brown") == 0
    refused = tmp_path / "d.zip"

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil, "commit_new", full)
    assert sar(root, data, refused, "--number", "01632960123", "--recipient", "Mrs Never") == 2
    monkeypatch.undo()
    assert len(DisclosureLog(data).entries()) == 4

    out = tmp_path / "e.zip"
    assert sar(root, data, out, "--number", "+44 1632 960123") == 0
    text = zipfile.ZipFile(out).read("README.txt").decode().replace("\r\n", "\n")
    before = text.split("COPIES GIVEN BEFORE\n")[1].split("\n\n")[0].splitlines()
    assert before[0] == "The box's disclosure log records these copies of your calls given before this one:"
    assert before[1].endswith(", to Ms Smith: call 1.")
    assert before[2].endswith(", to Thames Valley Police: call 3.")  # a line break typed: one line
    assert len(before) == 4 and before[3].startswith("(Calls are numbered as in THE CALLS below")
    assert "Mr Brown" not in text and "Mrs Never" not in text and "PC 123" not in text


def test_a_copy_given_before_is_withheld_from_the_letter_with_its_reason(tmp_path, capsys):
    """A release to the police the person may not be told of (DPA 2018 Sch. 2 para 2) was
    listed in the letter with no way to hold it back. --earlier shows what the letter would
    list (releasing nothing); --withhold ID:REASON leaves one out, without the letter saying
    so, and names it with its reason in the audit entry and the disclosure log's entry."""
    root, data = make_box(tmp_path)
    police = ("--recipient", "Thames Valley Police", "--requester", "DC Wood")
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--call", "1", *police) == 0
    assert sar(root, data, tmp_path / "b.zip", "--number", "01632960123", "--call", "3") == 0
    capsys.readouterr()
    out = tmp_path / "c.zip"
    assert sar(root, data, out, "--number", "01632960123", "--earlier") == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("copy given before: entry 1, 2") and said[1].startswith(
        "copy given before: entry 2"
    )
    assert said[0].endswith("Z, to Thames Valley Police, 1 call(s): listed in the letter")
    assert not out.exists() and len(DisclosureLog(data).entries()) == 2
    for bad, why in [
        (("--withhold", "1"), "--withhold is ID:REASON"),
        (("--withhold", "1: "), "give the reason the copy of disclosure log entry 1 is withheld"),
        (("--withhold", "5:crime"), "disclosure log entry 5 is not among the copies of these calls"),
        (("--withhold", "1:a", "--withhold", "1:b"), "--withhold names entry 1 twice"),
    ]:
        assert sar(root, data, out, "--number", "01632960123", *bad) == 2
        assert why in capsys.readouterr().err
        assert not out.exists() and len(DisclosureLog(data).entries()) == 2

    reason = "exemption: crime prevention, DPA 2018 Sch 2 para 2"
    assert sar(root, data, out, "--number", "01632960123", "--withhold", "1:" + reason) == 0
    assert "entry 1, " in capsys.readouterr().err  # said before it is made
    text = zipfile.ZipFile(out).read("README.txt").decode().replace("\r\n", "\n")
    before = text.split("COPIES GIVEN BEFORE\n")[1].split("\n\n")[0].splitlines()
    assert len(before) == 3 and before[1].endswith(", to Ms Smith: call 3.")
    assert "Thames Valley" not in text and "withh" not in text.lower() and "exemption" not in text
    audit = open_audit(data)
    try:
        [entry] = [e for e in audit.entries(action="disclosure") if e.target == "disclosure:3"]
    finally:
        audit.close()
    assert entry.details["withheld"] == [{"disclosure": 1, "reason": reason}]
    assert json.loads(DisclosureLog(data).get(3)["withheld"]) == [{"disclosure": 1, "reason": reason}]


def test_the_letter_is_printed_as_the_bundle_would_hold_it_before_anything_is_released(tmp_path, capsys):
    """The letter names who was given copies before (a private person too); only the list
    could be read before the release, not the letter. --letter prints it, releasing nothing."""
    import re

    root, data = make_box(tmp_path)
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--recipient", "Mr Smith") == 0
    capsys.readouterr()
    out = tmp_path / "b.zip"
    assert sar(root, data, out, "--number", "01632960123", "--letter") == 0
    shown = capsys.readouterr().out
    assert ", to Mr Smith: calls 1, 3, 4 and 6." in shown.replace("\r\n", "\n")
    assert not out.exists() and len(DisclosureLog(data).entries()) == 1
    assert sar(root, data, out, "--number", "01632960123") == 0
    sent = zipfile.ZipFile(out).read("README.txt").decode("utf-8")

    def made(text):  # the letter says when it was made
        return re.sub(r"It was made on [^\r\n]*", "", text)

    assert made(shown) == made(sent)


def test_each_reading_of_the_letter_on_the_command_line_is_audited(tmp_path, capsys):
    """``--letter`` prints the letter (the person's calls, who was given copies before) and the
    trail said nothing of it, where the web's Preview is audited: each is audited
    (``disclosure_preview``), by ``--user``, before it is printed."""
    root, data = make_box(tmp_path)
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--recipient", "Mr Smith") == 0

    def readings():
        audit = open_audit(data)
        try:
            return audit.entries(action="disclosure_preview", newest_first=False)
        finally:
            audit.close()

    before = len(readings())
    reason = "his brother's name: Sch 2 para 16"
    assert (
        sar(
            root, data, tmp_path / "b.zip", "--number", "01632960123", "--letter", "--withhold", "1:" + reason
        )
        == 0
    )
    assert "Mr Smith" not in capsys.readouterr().out
    [read] = readings()[before:]
    assert read.actor == "admin" and read.target is None
    assert read.details == {"calls": [1, 3, 4, 6], "copies": [], "withheld": [1]}
    # Listing the copies given before (--earlier) prints no letter: nothing audited as read.
    assert sar(root, data, tmp_path / "b.zip", "--number", "01632960123", "--earlier") == 0
    assert len(readings()) == before + 1


def test_listing_the_copies_given_before_on_the_command_line_is_audited(tmp_path, capsys):
    """``--earlier`` prints the person's copies given before and their recipients, and the
    trail said nothing of it, where the web form's search is audited: one entry
    (``disclosure_search``: what was searched, how many calls, the copies shown), by
    ``--user``, before it is printed."""
    root, data = make_box(tmp_path)
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--recipient", "Mr Smith") == 0
    capsys.readouterr()
    assert sar(root, data, tmp_path / "b.zip", "--number", "01632960123", "--earlier") == 0
    assert "to Mr Smith" in capsys.readouterr().out
    audit = open_audit(data)
    try:
        [search] = audit.entries(action="disclosure_search")
    finally:
        audit.close()
    assert (search.actor, search.target) == ("admin", None)
    assert search.details == {"number": "01632960123", "found": 4, "copies": [1]}


def test_a_letter_whose_every_earlier_copy_is_withheld_reads_as_one_with_none(tmp_path):
    """With every copy given before withheld, the letter said the disclosure log recorded
    none: untrue, and unlike a first release's words only when something was held back.
    It now says the same as a first release: none to list."""
    root, data = make_box(tmp_path)
    police = ("--recipient", "Thames Valley Police", "--requester", "DC Wood")
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--call", "1", *police) == 0
    first = tmp_path / "first.zip"
    assert sar(root, data, first, "--number", "01712960123", "--call", "2") == 0
    out = tmp_path / "b.zip"
    assert sar(root, data, out, "--number", "01632960123", "--withhold", "1:crime prevention") == 0

    def copies(path):
        text = zipfile.ZipFile(path).read("README.txt").decode().replace("\r\n", "\n")
        return text.split("COPIES GIVEN BEFORE\n")[1].split("\n\n")[0]

    assert (
        copies(out) == copies(first) == "Copies of your calls given to anyone before this one: none to list."
    )


def test_a_first_release_says_no_copy_was_given_before(sar_dir, tmp_path):
    root, data = sar_dir
    out = tmp_path / "w.zip"
    assert sar(root, data, out, "--from", "2026-03-02", "--to", "2026-03-02", "--call", "5", *WHOSE) == 0
    text = zipfile.ZipFile(out).read("README.txt").decode()
    assert "Copies of your calls given to anyone before this one: none to list." in text


def test_earlier_releases_of_the_same_request_number_or_calls(tmp_path):
    """Which earlier releases are the person's: one made for the same register request
    (all its calls), one of the same number in another form (all its calls), any other
    holding one of these calls (those alone)."""
    from firmware.sar import earlier_releases
    from firmware.storage.audit import AuditLog

    log = DisclosureLog(str(tmp_path))
    entry = dict(actor="sam", requester="?", reason="?", recordings=1, bundle="b", bundle_sha256="0" * 64)
    for wall_us, recipient, search, call_ids, request_id in [
        (1, "Ms Smith", {"calls": [11, 12]}, "11,12", 7),  # withheld: the calls named
        (2, "Acme Ltd", {"number": "", "calls": [12, 14]}, "12,14", 8),  # another's, with one of hers
        (3, "Her solicitor", {"number": "01632 960123"}, "20", None),  # her number, another form
        (4, "Mr Brown", {"number": "02079460000"}, "15", None),
    ]:
        log.add(wall_us=wall_us, recipient=recipient, search=json.dumps(search), call_ids=call_ids,
                request_id=request_id, encrypted=0, **entry)  # fmt: skip
    log.close()
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    found = earlier_releases(str(tmp_path), audit, [{"id": 12}, {"id": 13}], {"number": "+441632960123"}, 7)
    audit.close()
    assert found == [
        {"id": 1, "wall_us": 1, "recipient": "Ms Smith", "calls": [11, 12], "actor": "sam", "held": [11, 12]},
        {"id": 2, "wall_us": 2, "recipient": "Acme Ltd", "calls": [12], "actor": "sam", "held": [12, 14]},
        {"id": 3, "wall_us": 3, "recipient": "Her solicitor", "calls": [20], "actor": "sam", "held": [20]},
    ]


def test_a_release_goes_only_with_the_letter_read_and_refuses_one_changed_since(tmp_path, capsys):
    """The web form releases a letter naming who was given copies before only once it was
    read, and refuses one that changed since (LetterChanged). The command line released
    whatever the letter had become: --letter now prints the letter's SHA-256, a release whose
    letter names a copy given before needs it (--letter-sha256), and one whose letter is no
    longer that one is refused, nothing released."""
    root, data = make_box(tmp_path)
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--call", "1") == 0
    capsys.readouterr()
    out = tmp_path / "b.zip"
    assert sar(root, data, out, "--number", "01632960123", read=False) == 2
    assert "read it with --letter" in capsys.readouterr().err
    assert not out.exists() and len(DisclosureLog(data).entries()) == 1
    assert sar(root, data, out, "--number", "01632960123", "--letter-sha256", "abc") == 2
    assert "--letter-sha256 abc is not a letter's SHA-256" in capsys.readouterr().err
    assert sar(root, data, out, "--number", "01632960123", "--letter") == 0
    said = capsys.readouterr()
    digest = re.search(r"letter sha256 ([0-9a-f]{64}):", said.err).group(1)
    # Another release of the person's calls meanwhile: the letter would name its recipient too.
    police = ("--recipient", "Thames Valley Police", "--requester", "DC Wood")
    assert sar(root, data, tmp_path / "c.zip", "--number", "01632960123", "--call", "3", *police) == 0
    capsys.readouterr()
    assert sar(root, data, out, "--number", "01632960123", "--letter-sha256", digest) == 2
    assert (
        "the letter this release would give is not the one whose SHA-256 was given" in capsys.readouterr().err
    )
    assert not out.exists() and len(DisclosureLog(data).entries()) == 2
    # Read again, the letter as it is now goes.
    assert sar(root, data, out, "--number", "01632960123", "--letter") == 0
    digest = re.search(r"letter sha256 ([0-9a-f]{64}):", capsys.readouterr().err).group(1)
    assert sar(root, data, out, "--number", "01632960123", "--letter-sha256", digest) == 0
    assert "Thames Valley Police" in zipfile.ZipFile(out).read("README.txt").decode()


def test_a_letter_sha256_of_other_options_says_so_not_a_form(sar_dir, tmp_path, capsys):
    """The SHA-256 --letter printed without --redact, given to a release with --redact, was
    refused as "not the one shown on the form: the copies of these calls given before (or
    their recordings) changed since": nothing had changed, and there is no form. It says
    what is so on the command line: the letter differs from the one of that SHA-256; run
    --letter with the same options, --redact too."""
    root, data = sar_dir
    out = tmp_path / "x.zip"
    assert sar(root, data, out, "--number", "01632960123", "--letter") == 0
    digest = re.search(r"letter sha256 ([0-9a-f]{64}):", capsys.readouterr().err).group(1)
    redact = ("--redact", "1:1-2")
    with open_audit(data) as audit:
        before = len(audit.entries(limit=10000, action="disclosure_refused"))
    assert sar(root, data, out, "--number", "01632960123", *redact, "--letter-sha256", digest) == 2
    err = capsys.readouterr().err
    assert (
        "the letter this release would give is not the one whose SHA-256 was given (--letter-sha256 %s)"
        % digest
    ) in err
    assert "Run --letter again with this release's options, --redact too" in err
    assert "form" not in err and "changed since" not in err and not out.exists()
    with open_audit(data) as audit:
        refused = audit.entries(limit=10000, action="disclosure_refused")
    assert len(refused) == before + 1 and digest in refused[0].details["refused"]
    # The letter of the release's own options goes.
    assert sar(root, data, out, "--number", "01632960123", *redact, "--letter") == 0
    digest = re.search(r"letter sha256 ([0-9a-f]{64}):", capsys.readouterr().err).group(1)
    assert sar(root, data, out, "--number", "01632960123", *redact, "--letter-sha256", digest) == 0


def test_a_letter_changed_as_the_release_began_is_said_in_the_command_lines_words(
    sar_dir, tmp_path, capsys, monkeypatch
):
    """The letter is made again as the bundle is begun (firmware.sar.release): one changed
    between (another's release logged meanwhile) is refused in the command line's words too."""
    from firmware import sar as sar_module

    root, data = sar_dir
    out = tmp_path / "x.zip"
    assert sar(root, data, out, "--number", "01632960123", "--letter") == 0
    digest = re.search(r"letter sha256 ([0-9a-f]{64}):", capsys.readouterr().err).group(1)
    real, made = sar_module.letter_digest, []

    def changed_meanwhile(text):
        made.append(text)
        return real(text) if len(made) == 1 else "0" * 64  # the second: release()'s

    monkeypatch.setattr(sar_module, "letter_digest", changed_meanwhile)
    assert sar(root, data, out, "--number", "01632960123", "--letter-sha256", digest) == 2
    err = capsys.readouterr().err
    assert len(made) == 2 and "is not the one whose SHA-256 was given (--letter-sha256 %s)" % digest in err
    assert "form" not in err and not out.exists()


def _accounts(root, data):
    """Web UI accounts on the box of :func:`make_box`: admin (supervisor, every line), sam
    (supervisor of lines 1 and 2, with a key slot for them) and audrey (auditor)."""
    from web.accounts import Accounts
    from web.db import WebDb
    from web.passwords import CHEAP_COST

    keys = KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1))
    keys.add_slot("sam", "sams password 12", keys.unlock("admin", PASSWORD), lines=[1, 2])
    (root / "sam-pw").write_text("sams password 12\n")
    db = WebDb(os.path.join(data, "web.db"))
    try:
        accounts = Accounts(db, lambda: 5, CHEAP_COST)
        with db.tx() as conn:
            accounts.create(conn, "admin", PASSWORD, {"installer", "supervisor"}, [1, 2, 3, 4])
            accounts.create(conn, "sam", "sams password 12", {"supervisor"}, [1, 2])
            accounts.create(conn, "audrey", "audreys password 1", {"auditor"}, [])
    finally:
        db.close()


def _audreys(root):
    """A file holding audrey's password (:func:`_accounts`): its path."""
    path = root / "audrey-pw"
    path.write_text("audreys password 1\n")
    path.chmod(0o600)
    return str(path)


def test_a_copy_given_before_the_user_may_not_see_is_not_shown_nor_released_by_them(tmp_path, capsys):
    """The web form shows a supervisor a copy given before only if they may see its release
    (theirs, or of calls all on their lines); the letter naming one they may not see is
    neither previewed nor released by them. --earlier and --letter printed every copy's
    recipient whatever --user's lines. They now follow the same rule, for --user."""
    root, data = make_box(tmp_path)
    _accounts(root, data)
    police = ("--recipient", "Thames Valley Police", "--requester", "DC Wood")
    # Call 3 (line 3) is the subject's, released by admin: not all on sam's lines.
    assert sar(root, data, tmp_path / "a.zip", "--number", "01632960123", "--call", "3", *police) == 0
    capsys.readouterr()
    sam = ("--user", "sam", "--password-file", str(root / "sam-pw"), "--number", "01632960123")
    out = tmp_path / "b.zip"
    assert sar(root, data, out, *sam, "--earlier") == 0
    said = capsys.readouterr().out
    assert said.startswith("copy given before: a copy given 2")
    assert "recorded by another member of staff; details not shown" in said
    assert "Thames Valley" not in said and "entry 1" not in said
    for extra in (("--letter",), ()):
        assert sar(root, data, out, *sam, *extra) == 2
        said = capsys.readouterr()
        assert "Thames Valley" not in said.out + said.err
        assert "ask a supervisor of every line its calls are on to make this release" in said.err
        assert not out.exists() and len(DisclosureLog(data).entries()) == 1
    # As on the web, sam's search finds the calls on sam's lines only (call 5 is on line 4).
    sam_other = ("--user", "sam", "--password-file", str(root / "sam-pw"), "--number", "02079460000")
    assert sar(root, data, out, *sam_other, "--earlier") == 2
    assert "no calls match" in capsys.readouterr().err
    # A copy of calls all on sam's lines, though admin's, sam sees (as the Disclosures page).
    assert sar(root, data, tmp_path / "c.zip", "--number", "01632960123", "--call", "1") == 0
    capsys.readouterr()
    assert sar(root, data, out, *sam, "--earlier") == 0
    said = capsys.readouterr().out.splitlines()
    assert "details not shown" in said[0] and said[1].startswith("copy given before: entry 2, ")
    assert said[1].endswith(", to Ms Smith, 1 call(s): listed in the letter")
    # admin (every line) sees the police's copy too, and may release the letter naming it.
    assert sar(root, data, out, "--number", "01632960123", "--earlier") == 0
    assert "entry 1, 2" in capsys.readouterr().out
    assert sar(root, data, out, "--number", "01632960123") == 0
    assert "Thames Valley Police" in zipfile.ZipFile(out).read("README.txt").decode()
    # An auditor answers no request (said once her own password is taken); a name with no
    # account neither. (A new file: one there already is refused before any password.)
    for who in ("audrey", "nobody"):
        args = ("--number", "01632960123", "--user", who, "--password-file", _audreys(root), "--earlier")
        assert sar(root, data, tmp_path / "d.zip", *args) == 2
        assert ("%s is not a supervisor" % who if who == "audrey" else "--user nobody: no such account") in (
            capsys.readouterr().err
        )


def test_a_command_line_refusal_is_logged_and_audited_as_the_web_forms_is(tmp_path, capsys, caplog):
    """``linekeeper sar`` refused bad input, a user who is not a supervisor and a copy given
    before withheld that the letter does not list, on stderr alone: the trail had no word of
    any. Each is logged and audited (``disclosure_refused``, by ``--user``, with what was said),
    as the web form's refusals are; a release that then goes is no refusal."""
    root, data = make_box(tmp_path)
    _accounts(root, data)
    out = tmp_path / "b.zip"

    def refusals():
        audit = open_audit(data)
        try:
            return [
                (e.actor, e.details) for e in audit.entries(action="disclosure_refused", newest_first=False)
            ]
        finally:
            audit.close()

    cases = [
        (("--number", "12"), "admin", "12 is not a phone number: give at least 4 of its digits"),
        (  # said once her own password is taken
            ("--number", "01632960123", "--user", "audrey", "--password-file", _audreys(root)),
            "audrey",
            "audrey is not a supervisor",
        ),
        (
            ("--number", "01632960123", "--withhold", "7:exemption: crime prevention"),
            "admin",
            "disclosure log entry 7 is not among the copies of these calls given before",
        ),
    ]
    for extra, who, said in cases:
        caplog.clear()
        assert sar(root, data, out, *extra, read=False) == 2
        assert said in capsys.readouterr().err
        [(actor, details)] = refusals()[-1:]
        assert actor == who and said in details["refused"] and set(details) == {"refused"}
        [logged] = [r for r in caplog.records if r.name == "linekeeper.sar"]
        assert "release by %s refused" % who in logged.getMessage() and said in logged.getMessage()
        assert not out.exists() and DisclosureLog(data).entries() == []
    assert len(refusals()) == len(cases)
    assert sar(root, data, out, "--number", "01632960123") == 0
    assert len(refusals()) == len(cases)


def test_a_refused_user_name_no_account_has_is_not_written_to_the_trail(tmp_path, capsys, caplog):
    """``linekeeper sar``'s refusals come before the key slot's password is checked, and
    were audited by ``--user`` as typed: a password typed there stayed in the trail. As a
    failed login's entry, a name no account has (on a box not set up: no key slot) is not
    kept: the actor is ``anonymous`` and the entry says so (``no_account``)."""
    root, data = make_box(tmp_path)
    out = tmp_path / "b.zip"
    typed = "correct horse battery 7"

    def refusals():
        audit = open_audit(data)
        try:
            return [
                (e.actor, e.details) for e in audit.entries(action="disclosure_refused", newest_first=False)
            ]
        finally:
            audit.close()

    # A box not set up: the key slot's owner is named, any other name is not.
    assert sar(root, data, out, "--number", "12", "--user", typed, read=False) == 2
    assert sar(root, data, out, "--number", "12", read=False) == 2
    _accounts(root, data)
    # Set up: an account is named; a name none has is not, nor in the reason said.
    assert sar(root, data, out, "--number", "01632960123", "--user", typed, read=False) == 2
    # Said as a wrong password is: no refusal tells which names are accounts.
    assert "--user %s: no such account or wrong password" % typed in capsys.readouterr().err
    assert sar(root, data, out, "--number", "01632960123", "--user", "audrey", read=False) == 2
    found = refusals()
    assert [(actor, details.get("no_account")) for actor, details in found] == [
        ("anonymous", True),
        ("admin", None),
        ("anonymous", True),
        ("audrey", None),
    ]
    assert found[2][1] == {"refused": "--user has no account on this box", "no_account": True}
    assert typed not in repr(found) and not [r for r in caplog.records if typed in r.getMessage()]


def test_whose_calls_is_kept_as_checked(sar_dir, tmp_path):
    """How the user knows whose the calls are is checked with its spaces run together (the
    rule of a reason the trail keeps), but was kept as typed: a line break, or an unseen
    separator (U+001F, a space to the check), went into the release's audit entry."""
    root, data = sar_dir
    out = tmp_path / "day.zip"
    day = ("--from", "2026-03-02", "--to", "2026-03-02")
    typed = "withheld number;\n the times\x1f and  line she gave "
    assert sar(root, data, out, *day, "--call", "2", "--whose", typed) == 0
    with open_audit(data) as audit:
        released = audit.entries(action="disclosure", newest_first=False)[-1]
    assert released.details["whose"] == "withheld number; the times and line she gave"


def test_a_search_by_line_releases_every_call_on_it_once_whose_they_are_is_said(tmp_path, capsys):
    """A staff member asks for their own recordings (My line): the calls on their line,
    whoever was at the other end. Found only by date and picked one by one before,
    ``--line N`` (again for more) finds every call on --user's lines named over --from to
    --to, audited as a search with its lines; the release asks how the user knows they are
    the requester's (a line is a staff member's only if it is theirs alone), and a line not
    granted to --user, not a line, or a line without days is refused, nothing released."""
    root, data = make_box(tmp_path)
    _accounts(root, data)
    day = ("--from", "2026-03-02", "--to", "2026-03-02")
    out = tmp_path / "line.zip"
    sam = ("--user", "sam", "--password-file", str(root / "sam-pw"))

    def entries(action):
        with open_audit(data) as audit:
            return audit.entries(action=action, newest_first=False)

    whose = "line 2 is Ms Smith's own phone, nobody else's"
    assert sar(root, data, out, *sam, *day, "--line", "2", "--whose", whose, "--earlier") == 0
    [search] = entries("disclosure_search")
    assert search.details == {
        "lines": [2],
        "from": "2026-03-02",
        "to": "2026-03-02",
        "found": 2,
        "copies": [],
    }
    for bad, said in (
        (("--line", "3", *day), "--line 3 is not granted to you: search only your lines (1, 2)"),
        (("--line", "x", *day), "--line x is not one of the box's lines"),
        (("--line", "2"), "a search by line is over a date range: give its first day (From) too"),
        (("--line", "2", *day), "calls found by line are every call on those lines"),
    ):
        capsys.readouterr()
        assert sar(root, data, out, *sam, *bad) == 2, bad
        assert said in capsys.readouterr().err and not out.exists()
    assert entries("disclosure") == []
    assert sar(root, data, out, *sam, *day, "--line", "2", "--line", "1", "--whose", whose) == 0
    assert [c["id"] for c in json.loads(zipfile.ZipFile(out).read("calls.json"))] == [1, 2, 4, 6]
    [released] = entries("disclosure")
    assert released.actor == "sam" and released.details["whose"] == whose
    assert released.details["calls"] == [1, 2, 4, 6]
    assert json.loads(DisclosureLog(data).get(1)["search"])["lines"] == [1, 2]


def test_a_number_dialled_after_the_lines_outside_line_digit_is_the_subjects(tmp_path):
    """On a PBX extension (the line's outside-line digit, 9) the call keeps the number as
    dialled, 9 01632 960123: a search by the subject's number missed it, as it missed one
    dialled with 141 before."""
    calls = [
        {"line": 2, "at": 1.0, "direction": "out", "dial": {"digits": "901632960123"}, "talk": 3.0},
        {"line": 1, "at": 30.0, "direction": "in", "caller_id": {"number": "901632960123"}, "rings": 1},
    ]
    (tmp_path / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": calls})
    )
    data = str(tmp_path / "data")
    assert cli.main(["sim", str(tmp_path / "s.json"), "--data-dir", data]) == 0
    calls_db = os.path.join(data, "calls.db")
    found = find_calls(calls_db, number="01632 960123", outside={2: "9"})
    assert [(c["line"], c["direction"], c["number"]) for c in found] == [(2, "out", "901632960123")]
    # A line without the digit, or a caller's number (the network's): as it is.
    assert find_calls(calls_db, number="01632 960123") == []
    assert find_calls(calls_db, number="01632 960123", outside={1: "9"}) == []


def test_a_number_beginning_with_the_outside_line_digit_is_found_as_dialled_too(tmp_path):
    """On a line whose switchboard takes 9 for an outside line, 9123 may be an extension
    dialled straight past it: the search took it for 123 only, and ``linekeeper sar
    --number 9123`` left the call out of the person's copy. Either reading is found: 9123
    as dialled, and 9 01632 960123 as 01632 960123."""
    from firmware.config import load_config, save_config
    from firmware.policy.rules import LineMode

    data = str(tmp_path / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    calls = [
        {"line": 2, "at": 1.0, "direction": "out", "dial": {"digits": "9123"}, "talk": 3.0},
        {"line": 2, "at": 30.0, "direction": "out", "dial": {"digits": "901632960123"}, "talk": 3.0},
        {"line": 1, "at": 60.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1},
    ]
    (tmp_path / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": calls})
    )
    assert cli.main(["sim", str(tmp_path / "s.json"), "--data-dir", data]) == 0
    config = load_config(data)
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(2, "always", "9"),))
    save_config(data, dataclasses.replace(config, policy=dataclasses.replace(config.policy, rules=rules)))
    (tmp_path / "pw").write_text(PASSWORD + "\n")

    def released(number, out):
        assert sar(tmp_path, data, out, "--number", number) == 0
        return [(c["line"], c["number"]) for c in json.loads(zipfile.ZipFile(out).read("calls.json"))]

    assert released("9123", tmp_path / "ext.zip") == [(2, "9123")]
    assert released("01632 960123", tmp_path / "smith.zip") == [(2, "901632960123"), (1, "01632960123")]


def test_a_number_dialled_with_a_card_number_keyed_on_after_it_is_the_subjects(tmp_path):
    """Staff dialled the person, then keyed a card number straight on: the call log keeps
    the number with the card's digits masked (01632960123XXXXXX, docs/pci.md). A search by
    the person's number missed every such call, on each line (with 141, after a line's
    outside-line digit): left out of their copy, and of what an erasure request finds."""
    card = "4111111111111111"
    calls = [
        {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "01632960123" + card}, "talk": 3.0},
        {"line": 2, "at": 1.0, "direction": "out", "dial": {"digits": "901632960123" + card}, "talk": 3.0},
        {"line": 3, "at": 1.0, "direction": "out", "dial": {"digits": "14101632960123" + card}, "talk": 3.0},
        {"line": 4, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1},
        {"line": 1, "at": 30.0, "direction": "out", "dial": {"digits": "01632960124" + card}, "talk": 3.0},
    ]
    (tmp_path / "s.json").write_text(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 4,
                "calls": calls,
                "config": {"policy": {"rules": {"lines": [{"line": 2, "outside_line": "9"}]}}},
            }
        )
    )
    data = str(tmp_path / "data")
    assert cli.main(["sim", str(tmp_path / "s.json"), "--data-dir", data]) == 0
    found = find_calls(os.path.join(data, "calls.db"), number="+44 1632 960123", outside={2: "9"})
    assert sorted((c["line"], c["number"]) for c in found) == [
        (1, "01632960123XXXXXX"),
        (2, "901632960123XXXXXX"),
        (3, "14101632960123XXXXXX"),
        (4, "01632960123"),
    ]


def test_the_letter_says_what_the_x_of_a_masked_number_are(tmp_path):
    """A number dialled with a card number keyed on after it is in the letter as the call
    log keeps it, ``01632960123XXXXXX``: the person was not told what the X's were."""
    card = "4111111111111111"
    data = str(tmp_path / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    calls = [
        {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "01632960123" + card}, "talk": 3.0},
        {"line": 1, "at": 30.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1},
    ]
    (tmp_path / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": calls})
    )
    assert cli.main(["sim", str(tmp_path / "s.json"), "--data-dir", data]) == 0
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    out = tmp_path / "smith.zip"
    assert sar(tmp_path, data, out, "--number", "01632 960123") == 0
    letter = zipfile.ZipFile(out).read("README.txt").decode("utf-8")
    masked, plain = [block for block in letter.split("\r\n\r\n") if block.startswith("Call ")]
    assert "01632960123XXXXXX" in masked
    said = (
        "Each X in the number is a key pressed after the number was dialled, taken for a card "
        "number: the box keeps none of those digits, nor any keyed after them."
    )
    assert said in masked.replace("\r\n", " ")
    assert "X" not in plain and said not in letter.replace(masked, "")


def test_a_number_dialled_through_relay_uk_is_the_subjects(tmp_path):
    """Staff called the person through Relay UK (18001 before the number, from a textphone),
    withholding their own number too: a search by the person's number missed the call, left
    out of their copy and of what an erasure request finds."""
    calls = [
        {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "1800101632960123"}, "talk": 3.0},
        # A digit short: another number.
        {"line": 2, "at": 1.0, "direction": "out", "dial": {"digits": "141180010163296012"}, "talk": 3.0},
        {"line": 3, "at": 1.0, "direction": "out", "dial": {"digits": "1411800101632960123"}, "talk": 3.0},
    ]
    (tmp_path / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 3, "calls": calls})
    )
    data = str(tmp_path / "data")
    assert cli.main(["sim", str(tmp_path / "s.json"), "--data-dir", data]) == 0
    found = find_calls(os.path.join(data, "calls.db"), number="01632 960123")
    assert sorted((c["line"], c["number"]) for c in found) == [
        (1, "1800101632960123"),
        (3, "1411800101632960123"),
    ]


def test_a_command_line_release_stopped_before_its_bundle_was_begun_says_nothing_was_released(
    sar_dir, tmp_path, monkeypatch, capsys
):
    """Ctrl-C before the bundle's file was begun (the password checked, the calls found)
    exited 130 without a word."""
    import shutil

    from firmware import sarbundle

    root, data = sar_dir
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("lock", "*.sock"))
    before = _said(copy)
    stick = tmp_path / "stick"
    stick.mkdir()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sarbundle.FileSpool, "__init__", stopped)
    capsys.readouterr()
    assert sar(root, copy, stick / "smith.zip", "--number", "+44 1632 960123") == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "linekeeper: sar stopped before its bundle was begun; nothing was released"
    )
    assert os.listdir(stick) == [] and _said(copy) == before


def test_a_requests_numbers_are_each_a_number_the_search_takes():
    """A correction of a register request's numbers: each piece one the search takes, stripped,
    each once (the same digits twice: the first); a piece that is not one is named."""
    assert request_numbers(" 020 7946 0000;\n+44 1632 960555 ,02079460000, ") == (
        "020 7946 0000, +44 1632 960555"
    )
    assert request_numbers("") == request_numbers(" , ") == ""
    for text, named in (
        ("020 7946 0000, home", "home is not"),
        ("01632 96O555", "96O555 is not"),
        ("123", "123 is"),
    ):
        with pytest.raises(SarError, match=named):
            request_numbers(text)


def test_no_user_given_on_a_box_with_no_admin_account_says_to_give_one(tmp_path, capsys):
    """The DPO ran `linekeeper sar` as docs/reports.md shows it, without the optional
    --user: it said only "admin has no account on this box", a name they never typed. It
    says that admin is --user's default and to give their own; nothing is released."""
    from web.accounts import Accounts
    from web.db import WebDb
    from web.passwords import CHEAP_COST

    root, data = make_box(tmp_path)
    db = WebDb(os.path.join(data, "web.db"))
    try:
        with db.tx() as conn:
            Accounts(db, lambda: 5, CHEAP_COST).create(conn, "dana", "danas password 12", {"supervisor"}, [1])
    finally:
        db.close()
    out = tmp_path / "b.zip"
    capsys.readouterr()
    assert sar(root, data, out, "--number", "01632960123", read=False) == 2
    err = capsys.readouterr().err
    assert (
        "admin has no account on this box (admin is the user when --user is not given: give --user "
        "and your own account's name)" in err
    )
    assert not out.exists() and DisclosureLog(data).entries() == []
