"""`linekeeper report` is audited as the web UI's report download is: its callback list holds
callers' numbers, and a copy of personal data the audit trail does not show never appears in
a breach's scope. Before, the command wrote the same callers' numbers with no entry at all."""

import datetime as dt
import json
import os
import shutil
import subprocess
import time

import pytest

from firmware import cli
from firmware.box import open_audit
from firmware.breachscope import scope
from firmware.signing import run_dir
from firmware.storage import fsutil
from firmware.storage.audit import AuditLog
from firmware.storage.fieldseal import load_field_cipher
from web.accounts import Accounts
from web.db import WebDb

from support.cli import one_line, password_beside, report_args, run_linekeeper, secret_file, stop

PASSWORD = "correct horse battery 7"  # the week's key slot's (conftest.py)
UNTIL_2100_US = 4_102_444_800_000_000
WEEK = ("--from", "2026-03-02", "--to", "2026-03-08")
# What the web UI's download says of a report (web/views/reports.py), and the command's own.
WEB_DETAILS = {"format", "lines", "period", "callers", "calls"}


UNTIL_2100_US = 4_102_444_800_000_000
COPIED_US = {}  # each copy's data directory: when it was made (µs)


@pytest.fixture
def data(week_dir, tmp_path):
    """A copy of the week's data directory (whose trail the other tests' reports wrote to)."""
    path = str(tmp_path / "data")
    shutil.copytree(week_dir, path)
    COPIED_US[path] = time.time_ns() // 1000
    return path


def reports_of(data_dir):
    """The ``report`` entries of ``data_dir``'s trail written since it was copied, oldest first."""
    with open_audit(data_dir) as audit:
        return audit.entries(limit=100, action="report", since_us=COPIED_US[data_dir])[::-1]


def breach_scope(data_dir, account="admin"):
    """The summary of ``account``'s breach scope since ``data_dir`` was copied (firmware.breachscope)."""
    cipher = load_field_cipher(data_dir, run_dir=run_dir(), create=False)
    with open_audit(data_dir) as audit:
        calls_db = os.path.join(data_dir, "calls.db")
        return scope(audit, calls_db, account, COPIED_US[data_dir], UNTIL_2100_US, cipher=cipher)[1]


def test_a_report_written_is_audited_as_the_web_download_is(data, tmp_path):
    out = tmp_path / "r.json"
    status, said, err = run_linekeeper(*report_args(data, PASSWORD, *WEEK, "--out", out))
    assert status == 0, err
    doc = json.loads(out.read_text())
    (entry,) = reports_of(data)
    assert (entry.actor, entry.target) == ("admin", None)
    assert set(entry.details) == WEB_DETAILS | {"file", "via"}
    assert entry.details["file"] == str(out) and entry.details["via"] == "cli"
    assert entry.details["format"] == "json" and entry.details["lines"] == [1, 2, 3, 4]
    assert entry.details["period"] == "2026-03-02/2026-03-08"
    # Its callback list, as the file holds it: how many callers, and each one's last missed call.
    assert doc["callbacks"] and entry.details["callers"] == len(doc["callbacks"])
    assert entry.details["calls"] == [c["last_missed_call"] for c in doc["callbacks"]]


def test_the_pdf_of_a_period_not_over_says_so(data, tmp_path):
    """Standard error said the figures of a period not over were those so far, but the PDF
    written (the copy that is filed or sent) printed them without a word, as a whole period's."""
    today = dt.date.today()
    period = ("--from", str(today - dt.timedelta(days=1)), "--to", str(today + dt.timedelta(days=1)))
    out = tmp_path / "r.pdf"
    status, said, err = run_linekeeper(*report_args(data, PASSWORD, *period, "--format", "pdf", "--out", out))
    assert status == 0, err
    assert "This period is not over" in err
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "This period is not over (today is " in " ".join(text.split())


def test_a_report_to_standard_output_is_audited_as_stdout(data, capsys):
    assert cli.main(list(report_args(data, PASSWORD, *WEEK, "--line", "2", "--out", "-"))) == 0
    doc = json.loads(capsys.readouterr().out)
    (entry,) = reports_of(data)
    assert entry.details["file"] == "stdout" and entry.details["lines"] == [2]
    assert entry.details["callers"] == len(doc["callbacks"])


def test_the_breach_scope_counts_the_callers_of_a_report_written(data, tmp_path):
    before = breach_scope(data)
    assert (before["reports"], before["report_callers"], before["report_numbers"]) == (0, 0, 0)
    csv = ("--format", "csv", "--out", tmp_path / "r.csv")
    assert run_linekeeper(*report_args(data, PASSWORD, *WEEK, *csv))[0] == 0
    (entry,) = reports_of(data)
    after = breach_scope(data)
    assert (after["reports"], after["reports_named"]) == (1, 1)
    assert after["report_callers"] == entry.details["callers"] > 0
    # Made distinct from the call log: the week's missed callers, each one person.
    assert after["report_numbers"] + after["report_numbers_without_number"] == entry.details["callers"]


def test_a_report_not_written_is_audited_as_failed_and_not_counted(data, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil, "write_new", full)
    out = tmp_path / "r.json"
    status, _, err = run_linekeeper(*report_args(data, PASSWORD, *WEEK, "--out", out))
    assert status == 2 and one_line(err) == ("linekeeper: cannot write %s: No space left on device" % out)
    assert not out.exists()
    made, failed = reports_of(data)  # the entry first, then its failure with the same details
    assert failed.details == dict(made.details, failed="not written: No space left on device")
    summary = breach_scope(data)
    assert summary["actions"] == {"report (failed)": 2}
    assert (summary["report_callers"], summary["reports_named"]) == (0, 0)


def test_a_report_stopped_as_it_is_written_is_audited_as_stopped(data, tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "write_new", stop)
    out = tmp_path / "r.json"
    status, _, err = run_linekeeper(*report_args(data, PASSWORD, *WEEK, "--out", out))
    assert status == 130 and not out.exists()
    assert one_line(err) == (
        "linekeeper: report stopped after its audit entry was made, before %s was whole (it is as "
        "it was): the audit trail shows the stop; run it again to make the file" % out
    )
    made, failed = reports_of(data)
    assert failed.details == dict(made.details, failed="stopped")
    assert breach_scope(data)["report_callers"] == 0


def test_a_report_the_trail_cannot_take_is_not_written(data, tmp_path, monkeypatch):
    real = AuditLog.append

    def refused(self, actor, action, *args, **kwargs):
        if action == "report":
            raise OSError(28, "No space left on device")
        return real(self, actor, action, *args, **kwargs)

    monkeypatch.setattr(AuditLog, "append", refused)
    out = tmp_path / "r.json"
    status, said, err = run_linekeeper(*report_args(data, PASSWORD, *WEEK, "--out", out))
    assert status == 2 and not out.exists() and said == ""
    assert "the report was not written: it could not be audited" in one_line(err)
    monkeypatch.undo()
    assert reports_of(data) == []


def test_a_wrong_password_is_refused_audited_and_nothing_written(data, tmp_path):
    out = tmp_path / "r.json"
    wrong = secret_file(tmp_path, "wrong", "not the password")
    args = ("report", "--data-dir", data, "--password-file", wrong, *WEEK, "--out", out)
    status, _, err = run_linekeeper(*args)
    assert status == 2 and not out.exists()
    assert one_line(err).startswith("linekeeper: the report was not written: ")
    (entry,) = reports_of(data)
    assert entry.details["refused"] and entry.details["file"] == str(out)
    summary = breach_scope(data)
    assert summary["actions"] == {"report (refused)": 1} and summary["report_callers"] == 0


def accounts(data_dir, **people):
    """Web UI accounts on ``data_dir``, each with a key slot of its own granting its lines:
    ``name=(roles, lines)``; admin (the key slot's owner) an auditor. Their password:
    :data:`THEIRS`."""
    import time

    from firmware.storage.keystore import Argon2Params, KeyStore

    web_db = WebDb(os.path.join(data_dir, "web.db"))
    try:
        made = Accounts(web_db, lambda: int(time.time() * 1e6))
        with web_db.tx() as conn:
            made.create(conn, "admin", THEIRS, {"auditor"}, [])
            for name, (roles, lines) in people.items():
                made.create(conn, name, THEIRS, set(roles), lines)
    finally:
        web_db.close()
    store = KeyStore(data_dir, Argon2Params(memory_kib=8, iterations=1))
    unlocked = store.unlock("admin", PASSWORD)
    try:
        for name, (_, lines) in people.items():
            store.add_slot(name, THEIRS, unlocked, lines)
    finally:
        unlocked.forget()


THEIRS = "an account password 1"


def test_a_supervisor_has_the_report_of_their_lines_only(data, tmp_path):
    """As on the web: a supervisor sees the lines granted to them (and the playbacks and
    exports of their calls alone); another line is refused, and so is an installer."""
    accounts(data, sam=(("supervisor",), [2]), ivan=(("installer",), [1]))
    out = tmp_path / "r.json"
    for name, more, said in (
        ("ivan", (), "ivan is not a supervisor or an auditor: only they have reports"),
        ("sam", ("--line", "3"), "line 3 is not granted to sam: choose one of 2"),
    ):
        args = report_args(data, THEIRS, *WEEK, "--user", name, *more, "--out", out)
        status, _, err = run_linekeeper(*args)
        assert status == 2 and not out.exists()
        assert one_line(err) == "linekeeper: the report was not written: " + said
        assert reports_of(data)[-1].details["refused"] == said
    status, _, err = run_linekeeper(*report_args(data, THEIRS, *WEEK, "--user", "sam", "--out", out))
    assert status == 0, err
    doc = json.loads(out.read_text())
    assert doc["lines"] == [2]
    entry = reports_of(data)[-1]
    assert (entry.actor, entry.details["lines"]) == ("sam", [2])
    assert entry.details["callers"] == len(doc["callbacks"])


def year_review(data_dir, password, out, *more):
    args = ("year-review", "--data-dir", data_dir, "--format", "json", "--out", out)
    return run_linekeeper(*args, "--password-file", password_beside(data_dir, password), *more)


def test_the_year_in_review_written_is_audited_as_the_web_pdf_is(data, tmp_path):
    """As the web UI's PDF: a ``report`` of the ``year_review`` document, counts only, which a
    breach's scope does not count as callers' data."""
    out = tmp_path / "review.json"
    status, _, err = year_review(data, PASSWORD, out, *WEEK)
    assert status == 0, err
    (entry,) = reports_of(data)
    assert (entry.actor, entry.target) == ("admin", None)
    assert entry.details == {
        "document": "year_review",
        "format": "json",
        "period": "2026-03-02/2026-03-08",
        "personal_data": False,
        "file": str(out),
        "via": "cli",
    }
    summary = breach_scope(data)
    assert summary["actions"] == {"report (no personal data)": 1} and summary["report_callers"] == 0


def test_the_year_in_review_not_written_or_refused_is_audited(data, tmp_path, monkeypatch):
    out = tmp_path / "review.json"
    status, _, err = year_review(data, "not the password", out, *WEEK)
    assert status == 2 and not out.exists()
    assert one_line(err).startswith("linekeeper: the report was not written: ")
    assert reports_of(data)[-1].details["refused"]
    monkeypatch.setattr(fsutil, "write_new", stop)
    status, _, err = year_review(data, PASSWORD, out, *WEEK)
    assert status == 130 and not out.exists()
    # (its progress lines before: standard error is not a terminal here)
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "linekeeper: year-review stopped after its audit entry was made, before %s was whole" % out
        )
    )
    refused, made, failed = reports_of(data)
    assert failed.details == dict(made.details, failed="stopped")


def test_a_supervisors_year_in_review_is_of_their_lines(data, tmp_path):
    accounts(data, sam=(("supervisor",), [2]), vic=(("staff",), [1]))
    out = tmp_path / "review.json"
    status, _, err = year_review(data, THEIRS, out, *WEEK, "--user", "vic")
    assert status == 2 and not out.exists()
    assert one_line(err) == (
        "linekeeper: the report was not written: vic is not a supervisor or an auditor or an "
        "installer: only they have the year in review"
    )
    assert year_review(data, THEIRS, out, *WEEK, "--user", "sam")[0] == 0
    mine = json.loads(out.read_text())
    out = tmp_path / "every.json"  # (the year in review never replaces a file)
    assert year_review(data, PASSWORD, out, *WEEK)[0] == 0  # admin, an auditor: every line
    every = json.loads(out.read_text())
    assert mine != every
    assert [e.actor for e in reports_of(data)[-2:]] == ["sam", "admin"]
