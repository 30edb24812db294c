"""`linekeeper breach-scope`: what a misused account (a shared password, a leaver's) did over
a period, for a personal data breach report to the ICO (UK GDPR Article 33: the number of
data subjects and records concerned).

Before it, a DPO had the Audit trail page's CSV of the account's entries: call ids without
their numbers, a release's calls in its details, the logins among a year of other entries;
counting the callers affected meant opening each call's page (each view audited as the
account under investigation's never were). Now one command writes every call the account
viewed, played, exported, released or previewed, with its line and number, the lists and
reports it downloaded and its logins, and says how many distinct numbers: audited, for
auditors only, never over a file."""

import csv
import os
import sqlite3

import pytest

from firmware.breachscope import config_words, held_words, reports_words, scope, searches_words
from firmware.calls.calllog import CALLMETA_SCHEMA, RECORDINGS_SCHEMA, migrate
from firmware.cli import main
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore
from firmware.words import counted

PASSWORD = "correct horse battery"
CHEAP = Argon2Params(memory_kib=8, iterations=1)
S = 1_000_000
DAY = 86400 * S
T0 = 1_772_323_200_000_000  # 2026-03-01T00:00:00Z


def trail(path):
    return AuditLog(os.path.join(path, "audit.db"), os.path.join(path, "audit.head"))


def a_call(db, line, number, when, direction="in"):
    cur = db.execute(
        "INSERT INTO calls (line, direction, started_at, clock_synced, number) VALUES (?, ?, ?, 1, ?)",
        (line, direction, when, number),
    )
    return cur.lastrowid


@pytest.fixture
def box(tmp_path):
    """A box with four calls (two of one caller, in two forms, one with no number) and a
    trail of what sam did with them in March, besides sue's and before and after."""
    path = str(tmp_path / "box")
    os.makedirs(path)
    KeyStore(path, CHEAP).initialise("admin", PASSWORD)
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    migrate(db)
    db.executescript(RECORDINGS_SCHEMA + CALLMETA_SCHEMA)
    with db:
        one = a_call(db, 1, "01632960123", T0)
        same = a_call(db, 2, "+441632960123", T0 + S)
        other = a_call(db, 1, "02079460000", T0 + 2 * S)
        hidden = a_call(db, 3, None, T0 + 3 * S)
    db.close()
    with trail(path) as log:
        log.append("sam", "login", "sam", {"address": "192.0.2.7", "recording_key": True}, T0 + DAY)
        log.append("sam", "call_viewed", str(one), {"line": 1, "address": "192.0.2.7"}, T0 + DAY + 1)
        log.append("sam", "playback", str(one), {"line": 1, "address": "192.0.2.7"}, T0 + DAY + 2)
        log.append("sam", "export", "call:%d" % same, {"line": 2, "format": "wav"}, T0 + DAY + 3)
        log.append(
            "sam", "disclosure", "disclosure:1", {"calls": [other, hidden], "recordings": 2}, T0 + DAY + 4
        )
        log.append("sam", "export_list", "calls", {"rows": 40, "filter": "line 1"}, T0 + DAY + 5)
        log.append("sam", "call_viewed", "999", {"line": 4}, T0 + DAY + 6)  # deleted since
        log.append("sam", "login_failed", None, {"address": "198.51.100.9"}, T0 + DAY + 7)
        log.append("sue", "playback", str(other), {"line": 1}, T0 + DAY + 8)  # not sam's
        log.append("sam", "playback", str(other), {"line": 1}, T0 - DAY)  # before the period
        log.append("sam", "playback", str(other), {"line": 1}, T0 + 40 * DAY)  # after it
    password = tmp_path / "password.txt"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    return path, str(password), (one, same, other, hidden)


def run(box, out, *more, account="sam"):
    path, password, _ = box
    return main(
        ["breach-scope", account, str(out), "--from", "2026-03-01", "--to", "2026-03-31"]
        + ["--data-dir", path, "--password-file", password, *more]
    )


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def audited(path):
    with trail(path) as log:
        return [(e.actor, e.target, e.details) for e in log.entries(limit=100, action="breach_scope")][::-1]


def test_every_call_the_account_touched_with_its_number_and_how_many_callers(box):
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    got = [(r[2], r[3], r[5]) for r in rows]
    assert got == [
        ("login", "", ""),
        ("call_viewed", one, "01632960123"),
        ("playback", one, "01632960123"),
        ("export", same, "+441632960123"),
        ("disclosure", other, "02079460000"),
        ("disclosure", hidden, ""),
        ("export_list", "", ""),
        ("call_viewed", 999, ""),
        ("login_failed", "", ""),
    ]
    assert summary["calls"] == 5 and summary["recordings"] == 4
    # 01632 960123 in two forms is one caller; the call with no number is counted apart.
    assert summary["numbers"] == 2 and summary["calls_without_number"] == 1
    assert summary["calls_not_in_log"] == 1 and summary["bulk"] == 1
    assert summary["lines"] == [1, 2, 3]
    assert (summary["logins"], summary["failed_logins"]) == (1, 1)
    assert summary["addresses"] == ["192.0.2.7", "198.51.100.9"]
    assert summary["first_access"] == "2026-03-02T00:00:00.000Z"


def test_the_cli_writes_the_csv_prints_the_summary_and_is_audited_first(box, tmp_path, capsys):
    path = box[0]
    out = tmp_path / "scope.csv"
    assert run(box, out) == 0
    said = capsys.readouterr()
    assert "5 calls looked at" in said.out and "2 distinct callers' numbers" in said.out
    assert "1 login (" in said.out and "192.0.2.7" in said.out
    assert "breach-scope: 5/5 calls read" in said.err
    rows = read(out)
    assert [r["number"] for r in rows if r["action"] == "export"] == ["+441632960123"]
    assert rows[0]["address"] == "192.0.2.7"
    assert audited(path) == [
        (
            "admin",
            "sam",
            {"account": "sam", "from": "2026-03-01", "to": "2026-03-31", "file": "scope.csv", "via": "cli"},
        )
    ]
    # Its own entry is about admin, not sam: a second look shows the same.
    assert run(box, tmp_path / "again.csv") == 0
    assert read(tmp_path / "again.csv") == rows


def test_a_file_there_already_is_never_replaced(box, tmp_path, capsys):
    out = tmp_path / "scope.csv"
    out.write_text("mine")
    assert run(box, out) != 0
    assert "is there already: a breach scope never replaces a file" in capsys.readouterr().err
    assert out.read_text() == "mine"


def test_bad_days_are_refused_naming_them_audited_and_nothing_written(box, tmp_path, capsys):
    path, password, _ = box
    out = tmp_path / "scope.csv"
    args = ["breach-scope", "sam", str(out), "--from", "2026-03-31", "--to", "2026-03-01"]
    assert main(args + ["--data-dir", path, "--password-file", password]) != 0
    assert "the date range is backwards" in capsys.readouterr().err
    assert not out.exists()
    [(actor, target, details)] = audited(path)
    assert (actor, target) == ("admin", "sam") and "backwards" in details["refused"]


def test_a_wrong_password_is_refused_and_audited(box, tmp_path, capsys):
    path, _, _ = box
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n")
    wrong.chmod(0o600)
    out = tmp_path / "scope.csv"
    args = ["breach-scope", "sam", str(out), "--from", "2026-03-01", "--to", "2026-03-31"]
    assert main(args + ["--data-dir", path, "--password-file", str(wrong)]) != 0
    assert capsys.readouterr().err == (
        "linekeeper: the breach scope was not written: --user admin: no such account or wrong "
        "password (the password in %s) (admin is the user when --user is not given: give --user "
        "and your own account's name)\n" % wrong
    )
    assert not out.exists()
    assert "refused" in audited(path)[0][2]


def test_only_an_auditor_reads_it(box, tmp_path, capsys):
    """A supervisor is refused (the callers' numbers of every line, and another account's
    use, are the auditor's to read), audited, nothing written."""
    path = box[0]
    db = sqlite3.connect(os.path.join(path, "web.db"))
    db.execute("CREATE TABLE users (name TEXT, roles TEXT, lines TEXT)")
    db.execute("INSERT INTO users VALUES ('admin', 'installer,supervisor', '1')")
    db.commit()
    db.close()
    out = tmp_path / "scope.csv"
    assert run(box, out) != 0
    assert "admin is not an auditor: only auditors read a breach's scope" in capsys.readouterr().err
    assert not out.exists()
    [(actor, target, details)] = audited(path)
    assert (actor, target) == ("admin", "sam") and "not an auditor" in details["refused"]


def test_the_year_in_review_downloaded_is_no_callers_data(box):
    """Its PDF holds counts only: audited as ``report`` saying so, it is a row of the scope
    but not a list or report of callers downloaded, nor an access to personal data."""
    path, _, _ = box
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        log.append(
            "sam",
            "report",
            None,
            {
                "document": "year_review",
                "format": "pdf",
                "period": "2025-03-01/2026-02-28",
                "personal_data": False,
            },
            T0 + 20 * DAY,
        )
        log.append("sam", "report", None, {"format": "csv", "lines": [1]}, T0 + 21 * DAY)
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    assert [r[2] for r in rows[-2:]] == ["report", "report"]
    assert summary["bulk"] == before["bulk"] + 1  # the report of callers alone
    assert summary["actions"]["report"] == 1 and summary["actions"]["report (no personal data)"] == 1
    assert summary["last_access"] == "2026-03-22T00:00:00.000Z"  # the report's, not the review's


def test_the_summary_says_when_the_account_was_made_after_the_period_began(box, tmp_path, capsys):
    """The trail names accounts by name: a leaver's name given to a new account, the scope of
    a period from before it was made printed the leaver's entries as the new person's, under
    "What sam did", with nothing to tell the two apart (the web page said so; the command did
    not)."""
    path = box[0]
    db = sqlite3.connect(os.path.join(path, "web.db"))
    db.execute("CREATE TABLE users (name TEXT, roles TEXT, lines TEXT, created_us INTEGER)")
    db.execute("INSERT INTO users VALUES ('admin', 'installer,auditor', '', ?)", (T0 - 90 * DAY,))
    db.execute("INSERT INTO users VALUES ('sam', 'supervisor', '1', ?)", (T0 + DAY // 2,))
    db.commit()
    db.close()
    # Every entry by sam is from after the account was made: nothing of another's to tell apart.
    assert run(box, tmp_path / "mine.csv") == 0
    assert "was made at" not in capsys.readouterr().out
    with trail(path) as log:  # a leaver's of the same name, that morning
        log.append("sam", "playback", "7", {"line": 1}, T0 + DAY // 4)
    assert run(box, tmp_path / "scope.csv") == 0
    said = capsys.readouterr().out
    assert (
        "the account sam was made at 2026-03-01T12:00:00.000Z (UTC), after the period began: "
        "any entries by sam before then are an earlier account of the same name's" in said
    )
    # An account made before the period began: its entries are its own, nothing said.
    assert run(box, tmp_path / "admin.csv", account="admin") == 0
    assert "was made at" not in capsys.readouterr().out


def test_a_refused_export_is_a_row_but_no_recording_or_caller_exposed(box):
    """`linekeeper export` audits a refused export as ``export`` with ``refused`` (a wrong
    password, a call on a line not granted): nothing left the box, and the refusal said no
    more than that the call has no recording. It counted as a recording exported and its
    caller as a data subject affected, which a DPO would have reported to the ICO."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        fresh = a_call_in(path, 4, "07700900555", T0 + 4 * S)
        log.append(
            "sam",
            "export",
            "call:%d" % fresh,
            {"refused": "call %d has no recording" % fresh, "file": "x.ogg"},
            T0 + 20 * DAY,
        )
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    assert [(r[2], r[3], r[5]) for r in rows[-1:]] == [("export", fresh, "")]
    for key in ("calls", "recordings", "numbers", "calls_without_number", "lines", "last_access"):
        assert summary[key] == before[key], key
    assert summary["actions"]["export (refused)"] == 1


def a_call_in(path, line, number, when):
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        call_id = a_call(db, line, number, when)
    db.close()
    return call_id


def test_the_lists_downloaded_are_counted_by_the_rows_they_held(box, tmp_path, capsys):
    """A calls list downloaded is one action exposing every call in it: the scope said "1
    calls lists or reports downloaded" whether it held 3 calls or 40 000, and called an
    audit trail or phonebook CSV a calls list. Each kind of list's rows are added up (a
    download cut short by the rows it did hold), and the summary says what a row is."""
    path = box[0]
    with trail(path) as log:
        log.append("sam", "export_list", "calls", {"rows": 200, "filter": "all calls"}, T0 + 10 * DAY)
        log.append("sue", "export_list_cut", "calls", {"rows": 5, "of": 60}, T0 + 10 * DAY + 1)  # sue's
        log.append("sam", "export_list_cut", "calls", {"rows": 120, "of": 200}, T0 + 10 * DAY + 2)
        log.append("sam", "export_list", "phonebook", {"rows": 15}, T0 + 11 * DAY)
        log.append("sam", "export_list", "audit", {"filter": "all entries"}, T0 + 12 * DAY)  # no rows
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    assert summary["held"] == {
        "audit": {"lists": 1, "rows": 0, "unknown": 1},
        "calls": {"lists": 2, "rows": 40 + 120, "unknown": 0},
        "phonebook": {"lists": 1, "rows": 15, "unknown": 0},
    }
    assert [r[2] for r in rows if r[2].startswith("export_list")] == ["export_list"] * 2 + [
        "export_list_cut",
        "export_list",
        "export_list",
    ]
    assert run(box, tmp_path / "scope.csv") == 0
    said = capsys.readouterr().out
    assert "calls list downloaded 2 times: 160 rows (calls, each with its caller's number)" in said
    assert "up to that many more calls and callers were exposed" in said
    assert "phonebook list downloaded 1 time: 15 rows (phonebook entries, names and numbers)" in said
    assert "audit list downloaded 1 time: 0 rows (audit trail entries), and 1 download whose rows" in said
    assert "calls lists or reports downloaded" not in said


def test_a_release_whose_bundle_never_went_exposed_no_recording(box):
    """A release is audited before its bundle is written, and again as ``failed`` against
    the same ``disclosure:N`` when the bundle never went (it failed, or waited undownloaded).
    Its calls were still counted as recordings released, and the failure as an access."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        fresh = a_call_in(path, 4, "07700900555", T0 + 4 * S)
        log.append("sam", "disclosure", "disclosure:9", {"calls": [fresh], "recordings": 1}, T0 + 20 * DAY)
        log.append("sam", "disclosure", "disclosure:9", {"failed": "not downloaded"}, T0 + 25 * DAY)
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    assert [(r[2], r[3], r[5]) for r in rows[-2:]] == [
        ("disclosure", fresh, "07700900555"),
        ("disclosure", "", ""),
    ]
    # Chosen for the release, so looked at (its number shown in the search): not released.
    assert summary["calls"] == before["calls"] + 1 and summary["numbers"] == before["numbers"] + 1
    assert summary["recordings"] == before["recordings"]
    assert summary["last_access"] == "2026-03-21T00:00:00.000Z"  # the release's, not its failure's


def test_a_person_whose_calls_a_subject_access_search_found_is_a_data_subject(box, tmp_path, capsys):
    """A subject access search (``disclosure_search``) shows the account every call of the
    number searched: that person is a data subject affected, counted once with the callers
    of the calls it viewed (the number in another form is the same person). It was a row
    alone, not among the distinct numbers; a search that found nothing exposed nobody."""
    path = box[0]
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        log.append("sam", "disclosure_search", None, {"number": "07700 900555", "found": 3}, T0 + 20 * DAY)
        log.append(
            "sam", "disclosure_search", None, {"number": "+441632960123", "found": 2}, T0 + 20 * DAY + 1
        )
        log.append("sam", "disclosure_search", None, {"number": "07700900999", "found": 0}, T0 + 20 * DAY + 2)
        log.append(
            "sam", "disclosure_search", None, {"lines": [1], "from": "2026-03-01", "found": 4}, T0 + 21 * DAY
        )
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    assert summary["numbers"] == before["numbers"] + 1  # 07700 900555 alone: 01632 960123 is counted
    assert [r[2] for r in rows[-4:]] == ["disclosure_search"] * 4


def a_recording(path, call_id):
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        db.execute(
            "INSERT INTO recordings (id, call_id, file, profile, state, started_at, chunk_ms)"
            " VALUES (?, ?, 'x.lkr', 'voice', 'complete', ?, 1000)",
            ("rec-%d" % call_id, call_id, T0),
        )
    db.close()


def test_a_release_counts_the_recordings_its_bundle_held_not_its_calls(box, tmp_path, capsys):
    """A release's details say which calls it gave and how many recordings (``recordings``):
    a call with no recording went as its record alone. Every call of a release was counted
    as a recording released. Now a release of none counts none; one of fewer than its calls
    counts the calls that could have had one when there are just that many, and says how
    many more it cannot place otherwise; every release's calls are still looked at."""
    path = box[0]
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        none, recorded, bare, two, three = (
            a_call_in(path, 4, "0770090055%d" % n, T0 + (5 + n) * S) for n in range(5)
        )
        for call_id in (recorded, two, three):
            a_recording(path, call_id)
        log.append("sam", "disclosure", "disclosure:5", {"calls": [none], "recordings": 0}, T0 + 20 * DAY)
        half = {"calls": [recorded, bare], "recordings": 1}
        log.append("sam", "disclosure", "disclosure:6", half, T0 + 20 * DAY + 1)
        log.append(
            "sam", "disclosure", "disclosure:7", {"calls": [two, three], "recordings": 1}, T0 + 20 * DAY + 2
        )
        rows, summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)
    assert summary["calls"] == before["calls"] + 5 and summary["numbers"] == before["numbers"] + 5
    assert summary["recordings"] == before["recordings"] + 1  # `recorded`'s alone
    assert summary["recordings_unplaced"] == 1  # one of two and three's
    assert run(box, tmp_path / "scope.csv") == 0
    said = capsys.readouterr().out
    assert (
        "%d of them with their recording played, exported or released; and 1 more recording released "
        % (before["recordings"] + 1)
        in said
    )


def test_the_callers_a_reports_callback_list_named_are_counted(box, tmp_path, capsys):
    """A report downloaded holds its callback list, callers' numbers: its entry says how many
    (``callers``), which are added up apart from the distinct numbers (which they were is
    not on record). One downloaded before its entry said so is said to hold up to every
    number its lines missed in its period; the year in review (counts only) holds none."""
    path = box[0]
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        for callers in (7, 0, 3):
            log.append(
                "sam", "report", None, {"format": "csv", "lines": [1], "callers": callers}, T0 + 9 * DAY
            )
        log.append("sam", "report", None, {"format": "pdf", "lines": [1, 2]}, T0 + 10 * DAY)
        log.append("sam", "report", None, {"document": "year_review", "personal_data": False}, T0 + 11 * DAY)
        summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
    assert (summary["reports"], summary["report_callers"], summary["reports_callers_unknown"]) == (4, 10, 1)
    assert summary["numbers"] == before["numbers"]
    assert run(box, tmp_path / "scope.csv") == 0
    said = capsys.readouterr().out
    assert (
        "4 reports downloaded (each a row of the CSV with its period and lines); the callback lists" in said
    )
    # A sum over three reports: up to 10 people, a caller in two of them counted in each.
    assert "lists of 3 of them held up to 10 callers' numbers (missed, not called back), a sum over " in said
    assert "so a caller in two reports is counted in each; 1 of them downloaded " in said
    assert "each held up to every number its lines missed in its period" in said
    assert "up to that many more callers were exposed" in said


def test_a_subject_access_search_not_of_one_number_may_cover_several_people(box, tmp_path, capsys):
    """A search by a number pattern (``*``, ``?``, as the recording rules' patterns) was
    counted as one data subject, the pattern itself among the distinct numbers; a search by
    line or day alone showed every caller's calls and was counted as none. Both are said
    apart, with the calls they showed: up to that many more callers."""
    path = box[0]
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        log.append("sam", "disclosure_search", None, {"number": "01632 96*", "found": 3}, T0 + 20 * DAY)
        log.append("sam", "disclosure_search", None, {"number": "0770090055?", "found": 0}, T0 + 20 * DAY)
        log.append(
            "sam", "disclosure_search", None, {"lines": [1], "from": "2026-03-01", "found": 4}, T0 + 21 * DAY
        )
        summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
    assert summary["numbers"] == before["numbers"]
    assert summary["broad_searches"] == {"searches": 2, "calls": 7, "patterns": 1}
    assert run(box, tmp_path / "scope.csv") == 0
    said = capsys.readouterr().out
    assert (
        "2 subject access searches not of one person's number (1 by line or day alone; 1 by a number "
        "pattern (with * or ?), which may match several people's numbers, not one) showed 7 calls" in said
    )


def test_a_call_not_in_the_call_log_is_not_said_to_be_deleted_by_retention(box, tmp_path, capsys):
    """Retention deletes recordings and keeps every call's record: a call the trail names
    that the call log does not hold was lost with a damaged call log or never written to it.
    The summary said "deleted by retention", a reason a DPO would have passed on."""
    assert run(box, tmp_path / "scope.csv") == 0  # sam viewed call 999, never in the log
    said = capsys.readouterr().out
    assert "1 call not in the call log (lost with a damaged call log, or never written to it" in said
    assert "deleted by retention" not in said


def test_a_search_for_a_number_beginning_with_the_outside_line_digit_is_one_person_with_its_call(box):
    """Line 1 takes 9 for an outside line; 9123 dialled on it may be an extension dialled
    straight past it, and a subject access search finds it by 9123 as dialled. The search
    and the call it showed were counted as two people (9123 and 123). A number dialled
    after the 9 is still its caller's without it, and one alone is counted without it."""
    path = box[0]
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        ext = a_call(db, 1, "9123", T0 + 4 * S, "out")
        outside = a_call(db, 1, "901632960123", T0 + 5 * S, "out")
        alone = a_call(db, 1, "97001", T0 + 6 * S, "out")
    db.close()
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        log.append("sam", "disclosure_search", None, {"number": "9123", "found": 1}, T0 + 20 * DAY)
        for call_id in (ext, outside, alone):
            log.append("sam", "call_viewed", str(call_id), {"line": 1}, T0 + 20 * DAY + call_id)
        summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY, outside={1: "9"})[1]
    # 9123 (the search and its call): one; 9 01632 960123 is 01632 960123, counted already;
    # 97001, nobody else's number either way: one.
    assert summary["numbers"] == before["numbers"] + 2


def test_two_different_numbers_dialled_on_a_line_with_an_outside_line_digit_are_two_callers(box):
    """Line 1 takes 9 for an outside line. 9123 dialled on it is 123 after the 9, or an
    extension dialled straight past the switchboard; 123 dialled on it is another number.
    Both were counted as 123: one caller where the call log holds two different numbers. A
    short number after the digit is counted as dialled; a full one (9 01632 960123) is still
    its caller's number without the digit."""
    path = box[0]
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        nine = a_call(db, 1, "9123", T0 + 4 * S, "out")
        plain = a_call(db, 1, "123", T0 + 5 * S, "out")
        full = a_call(db, 1, "901632960123", T0 + 6 * S, "out")
    db.close()
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        for call_id in (nine, plain, full):
            log.append("sam", "call_viewed", str(call_id), {"line": 1}, T0 + 20 * DAY + call_id)
        summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY, outside={1: "9"})[1]
    # 9123 and 123: two; 9 01632 960123 is 01632 960123, one of sam's callers already.
    assert summary["numbers"] == before["numbers"] + 2


def test_the_callers_of_the_calls_shown_in_a_list_only_are_made_distinct(box, tmp_path, capsys):
    """A page of the calls list names its calls, so their callers' numbers are in the call
    log: the figure of people exposed by the calls list counted each page's rows, a caller
    on two pages (or with two calls on them) twice. Their callers are now made distinct from
    the call log, apart from the numbers of the calls looked at (not counted again), with the
    calls that have no number and those not in the log said apart."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "call_viewed", str(other), {"line": 1}, T0 + DAY)  # opened: its caller counted
        log.append("dan", "list_viewed", "calls", {"rows": 2, "calls": [one, other]}, T0 + 2 * DAY)
        log.append(
            "dan", "list_viewed", "calls", {"rows": 4, "calls": [same, other, hidden, 999]}, T0 + 3 * DAY
        )
        summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)[1]
    assert summary["numbers"] == 1 and summary["calls_listed_only"] == 4  # one, same, hidden, 999
    # one and same are 01632 960123 in two forms: one more person, not two; other is counted.
    assert summary["listed_only_numbers"] == 1
    assert summary["listed_only_without_number"] == 1 and summary["listed_only_not_in_log"] == 1
    assert summary["shown"]["calls"]["rows"] == 6  # the pages' sum: an upper bound
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert (
        "made distinct from the call log (a caller on two pages, or with two calls in them, is one): " in out
    )
    assert "1 more distinct caller's number not among those above, 1 call with no number on record" in out
    assert ", 1 call not in the call log (number not known here)" in out
    assert (
        "6 calls (each with its caller's number), a sum over the pages: one shown on two is counted "
        "on each. An upper bound" in out
    )


def test_the_callers_the_reports_named_are_made_distinct(box, tmp_path, capsys):
    """A report's entry said how many numbers its callback list held, not which: two reports
    naming the same caller counted it twice. Its entry now names its callback list's calls
    (each caller's last missed call), so their callers are made distinct from the call log,
    apart from the numbers counted already; a report whose entry does not name them is
    still a sum, "up to"."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "call_viewed", str(other), {"line": 1}, T0 + DAY)  # its caller counted
        log.append("dan", "report", None, {"lines": [1], "callers": 2, "calls": [one, other]}, T0 + 2 * DAY)
        log.append(
            "dan",
            "list_viewed",
            "report",
            {"lines": [1, 2], "callers": 3, "calls": [same, other, 999]},
            T0 + 3 * DAY,
        )
        log.append("dan", "report", None, {"lines": [2], "callers": 4}, T0 + 4 * DAY)  # names none
        summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)[1]
    assert summary["numbers"] == 1 and summary["reports_named"] == 2
    # one and same are 01632 960123 in two forms: one person; other is counted; 999 is lost.
    assert summary["report_numbers"] == 1 and summary["report_numbers_not_in_log"] == 1
    assert summary["report_callers"] == 6  # the downloads' sum, still said "up to"
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert "held up to 6 callers' numbers" in out
    assert (
        "  the callback lists of the 2 reports downloaded or shown whose entries name their callers' "
        "calls, made distinct from the call log (a caller in two reports, or missed on two lines, is "
        "one): 1 more distinct caller's number not among those above, 1 caller whose call is not in "
        "the call log" in out
    )


def test_one_line_is_said_as_one(box, tmp_path, capsys):
    """The summary said "on lines 1" of the calls looked at and of those erased on one line,
    and "(1 rows)" of its CSV: lines are named as a sentence names them, "on line 1", "on
    lines 1 and 2", and one row is "1 row"."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "call_viewed", str(one), {"line": 1}, T0 + DAY)
        log.append("dan", "erase_details", str(other), {"line": 1}, T0 + 2 * DAY)
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert "  1 call looked at (page viewed, played, exported, released or previewed), on line 1\n" in out
    assert "1 call whose recording or details it erased, 0 legal holds it released, on line 1; " in out
    assert "dan.csv (2 rows)\n" in out
    assert run(box, tmp_path / "sam.csv") == 0
    assert "previewed), on lines 1, 2 and 3\n" in capsys.readouterr().out
    with trail(path) as log:  # one row: "(1 row)", not "(1 rows)"
        log.append("eve", "login", "eve", {"address": "192.0.2.8"}, T0 + DAY)
    assert run(box, tmp_path / "eve.csv", account="eve") == 0
    assert "eve.csv (1 row)\n" in capsys.readouterr().out


def test_one_of_a_thing_is_said_as_one():
    """The summary said "showed 1 calls" and "1 calls not in the call log": a count of one
    takes the singular, wherever the summary counts."""
    broad = {"searches": 1, "calls": 1, "patterns": 0}
    assert searches_words(broad).startswith(
        "1 subject access search not of one person's number (1 by line or day alone) showed 1 call:"
    )
    assert held_words("calls", {"lists": 1, "rows": 1, "unknown": 0}).startswith(
        "calls list downloaded 1 time: 1 row ("
    )
    assert "held 1 caller's number (missed" in reports_words({"reports": 1, "report_callers": 1})
    assert counted(2, "call") == "2 calls" and counted(0, "call") == "0 calls"


def test_a_number_dialled_with_a_card_number_keyed_on_after_it_is_its_callers(box):
    """A card number keyed after a number dialled is kept masked at its end
    (01632960123XXXXXXXXXXXXXXXX): the scope counted it as a caller of its own, beside the
    01632 960123 it is, one person counted twice in a breach report."""
    path = box[0]
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        paid = a_call(db, 2, "01632960123" + "X" * 16, T0 + 7 * S, "out")
    db.close()
    with trail(path) as log:
        before = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
        log.append("sam", "call_viewed", str(paid), {"line": 2}, T0 + 20 * DAY)
        summary = scope(log, os.path.join(path, "calls.db"), "sam", T0, T0 + 31 * DAY)[1]
    assert summary["calls"] == before["calls"] + 1
    assert summary["numbers"] == before["numbers"]  # 01632 960123, counted already


def erase_details_of(path, call_id):
    """The call log as an erasure of the caller's details leaves it: no number, ``erased``."""
    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        db.execute("UPDATE calls SET number = NULL, absence = 'erased' WHERE id = ?", (call_id,))
    db.close()


def test_what_the_account_erased_or_unprotected_is_in_its_scope(box, tmp_path, capsys):
    """Erasing a call's recording (``delete``), a caller's details (``erase_details``) or
    releasing a legal hold (retention may then delete the recording) is a breach too: loss
    of availability. They were no row and not counted: an account that erased calls read
    as one that did nothing. Now each is a row with its call and line, counted apart, their
    callers among the distinct numbers (not known where the details were erased)."""
    path, _, (one, same, other, hidden) = box
    erase_details_of(path, other)
    with trail(path) as log:
        log.append(
            "dan",
            "delete",
            "call:%d" % one,
            {"request": "erasure request", "reason": "x", "recordings": [1], "address": "192.0.2.8"},
            T0 + 2 * DAY,
        )
        log.append(
            "dan", "legal_hold", str(same), {"line": 2, "on": True, "reason": "ref 1"}, T0 + 2 * DAY + 1
        )
        log.append("dan", "legal_hold", str(same), {"line": 2, "on": False, "reason": "x"}, T0 + 2 * DAY + 2)
        log.append(
            "dan",
            "erase_details",
            "call:%d" % other,
            {"request": "erasure request", "reason": "x"},
            T0 + 2 * DAY + 3,
        )
        log.append(
            "sue",
            "delete",
            "call:%d" % hidden,
            {"request": "erasure request", "reason": "x"},
            T0 + 2 * DAY + 4,
        )
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
    assert [(r[2], r[3], r[4], r[5], r[7]) for r in rows] == [
        ("delete", one, 1, "01632960123", "192.0.2.8"),
        ("legal_hold", same, 2, "+441632960123", ""),
        ("erase_details", other, 1, "", ""),
    ]
    assert (summary["erased"], summary["holds_released"]) == (2, 1)
    assert summary["destroyed_lines"] == [1, 2]
    # 01632 960123 in two forms is one caller; the erased caller's number is not known.
    assert summary["numbers"] == 1 and summary["destroyed_without_number"] == 1
    assert summary["calls"] == 0  # looked at: none
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert (
        "  2 calls whose recording or details it erased, 1 legal hold it released, on lines 1 and 2; "
        "the callers of the 2 calls with a number on record are among the distinct numbers; 1 call "
        "whose caller's number is not known here "
        "(erased on request, removed after its retention period, withheld, or not in the call log)\n"
        "  0 calls whose caller's name it corrected\n"
        "  1 distinct caller's number (data subjects)"
    ) in out
    assert [(r["action"], r["call_id"]) for r in read(tmp_path / "dan.csv")] == [
        ("delete", str(one)),
        ("legal_hold", str(same)),
        ("erase_details", str(other)),
    ]


def test_a_callers_name_the_account_corrected_is_in_its_scope(box, tmp_path, capsys):
    """Correcting a caller's name for a call (``correct_details``, UK GDPR Art. 16) alters
    their data: a misused account's corrections are a breach of integrity (Art. 4(12)). They
    were no row and not counted. Now each is a row with its call, line and number, counted
    apart, their callers among the distinct numbers, within the first and last access."""
    path, _, (one, same, other, hidden) = box
    corrected = {"fields": ["name"], "reason": "rectification request 12"}
    with trail(path) as log:
        log.append("dan", "correct_details", str(one), dict(corrected, line=1), T0 + 2 * DAY)
        log.append("dan", "correct_details", str(hidden), dict(corrected, line=3), T0 + 3 * DAY)
        log.append("sue", "correct_details", str(other), dict(corrected, line=1), T0 + 2 * DAY)
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        ("correct_details", one, 1, "01632960123"),
        ("correct_details", hidden, 3, ""),
    ]
    assert (summary["altered"], summary["altered_lines"], summary["altered_without_number"]) == (2, [1, 3], 1)
    assert summary["numbers"] == 1 and summary["calls"] == 0 and summary["erased"] == 0
    assert (summary["first_access"], summary["last_access"]) == (
        "2026-03-03T00:00:00.000Z",
        "2026-03-04T00:00:00.000Z",
    )
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert (
        "  2 calls whose caller's name it corrected, on lines 1 and 3; the callers of the 1 call with "
        "a number on record are among the distinct numbers; 1 call whose caller's number is not known "
        "here (erased on request, "
        "removed after its retention period, withheld, or not in the call log)\n"
    ) in out
    assert [(r["action"], r["call_id"], r["number"]) for r in read(tmp_path / "dan.csv")] == [
        ("correct_details", str(one), "01632960123"),
        ("correct_details", str(hidden), ""),
    ]


def test_an_erasure_refused_or_a_release_not_made_is_a_row_but_destroyed_nothing(box):
    """An erasure is audited before it is made: one refused after its entry (a hold placed
    in between), a release of a hold the box stopped before making (``not_made`` by
    ``system``), changed nothing. A ``delete`` whose caller's details alone were then
    refused did erase the recording."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "delete", "call:%d" % one, {"request": "erasure request", "reason": "x"}, T0 + DAY)
        log.append(
            "dan",
            "delete",
            "call:%d" % one,
            {"request": "erasure request", "refused": "on hold"},
            T0 + DAY + 1,
        )
        log.append(
            "dan",
            "erase_details",
            "call:%d" % hidden,
            {"request": "erasure request", "reason": "x"},
            T0 + DAY + 2,
        )
        log.append(
            "dan",
            "erase_details",
            "call:%d" % hidden,
            {"request": "erasure request", "details": True, "refused": "the card refused"},
            T0 + DAY + 3,
        )
        log.append(
            "dan",
            "legal_hold",
            str(same),
            {"line": 2, "on": False, "reason": "x", "change_id": "c1"},
            T0 + DAY + 4,
        )
        log.append(
            "system", "legal_hold", str(same), {"change_id": "c1", "not_made": "stopped"}, T0 + DAY + 5
        )
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
        assert [(r[2], r[3], r[5]) for r in rows] == [
            ("delete", one, ""),
            ("delete", one, ""),
            ("erase_details", hidden, ""),
            ("erase_details", hidden, ""),
            ("legal_hold", same, ""),
        ]
        assert (summary["erased"], summary["holds_released"], summary["numbers"]) == (0, 0, 0)
        assert summary["actions"] == {
            "delete (not made)": 1,
            "delete (refused)": 1,
            "erase_details (not made)": 1,
            "erase_details (refused)": 1,
            "legal_hold (not made)": 1,
        }
        log.append(
            "dan",
            "delete",
            "call:%d" % other,
            {"request": "erasure request", "reason": "x", "details": True},
            T0 + DAY + 6,
        )
        log.append(
            "dan",
            "delete",
            "call:%d" % other,
            {"request": "erasure request", "details": True, "refused": "the card refused"},
            T0 + DAY + 7,
        )
        summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)[1]
    assert (summary["erased"], summary["numbers"]) == (1, 1)


def test_a_look_at_the_audit_trail_by_number_is_of_that_persons_calls(box):
    """The Audit trail page filtered by a number (``audit_view``), or its CSV
    (``export_list`` of ``audit``), shows every entry about that person's calls: the person
    is a data subject, counted once with the callers of the calls it viewed. It was not
    counted; a look that showed no entry, or not by number, exposed nobody."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "call_viewed", str(one), {"line": 1}, T0 + DAY)
        log.append(
            "dan",
            "audit_view",
            "audit",
            {"filter": {"number": "01632 960123"}, "page": 1, "rows": 3},
            T0 + DAY + 1,
        )
        log.append(
            "dan",
            "audit_view",
            "audit",
            {"filter": {"number": "07700 900999"}, "page": 1, "rows": 0},
            T0 + DAY + 2,
        )
        log.append(
            "dan", "audit_view", "audit", {"filter": "all entries", "page": 1, "rows": 100}, T0 + DAY + 3
        )
        log.append(
            "dan", "audit_view", "audit", {"filter": {"who": "sam"}, "page": 1, "rows": 100}, T0 + DAY + 4
        )
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
        assert [(r[2], r[3]) for r in rows] == [("call_viewed", one), ("audit_view", ""), ("audit_view", "")]
        assert summary["numbers"] == 1
        log.append(
            "dan", "export_list", "audit", {"filter": {"number": "+44 20 7946 0000"}, "rows": 2}, T0 + DAY + 5
        )
        log.append(
            "dan",
            "audit_view",
            "audit",
            {"filter": {"number": "07700 900555"}, "page": 1, "rows": 1},
            T0 + 2 * DAY,
        )
        summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)[1]
    assert summary["numbers"] == 3
    assert summary["last_access"] == "2026-03-03T00:00:00.000Z"


def test_a_name_no_account_ever_had_is_refused_not_scoped_as_nothing(box, tmp_path, capsys):
    """A mistyped account name wrote an empty scope ("0 calls looked at") with status 0,
    which a DPO could pass on to the ICO. A name that is no account now and has no entry in
    the trail is refused, saying so, and no file is written; the refusal is audited."""
    out = tmp_path / "scope.csv"
    assert run(box, out, account="smа") == 2  # a Cyrillic а: no one's
    said = capsys.readouterr().err
    assert "no account is named smа, and the audit trail has no entry by that name" in said
    assert not out.exists()
    with trail(box[0]) as log:
        refused = log.entries(limit=1)[0]
    assert (refused.action, refused.target) == ("breach_scope", "smа") and "refused" in refused.details


def test_what_the_account_erased_or_released_spans_its_first_and_last_access(box):
    """Erasing recordings or callers' details, or releasing a hold, is using the account on
    callers' data: an account that only erased read "first access none, last none". A
    refused erasure changed nothing and moves neither."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "delete", "call:%d" % one, {"request": "erasure request", "reason": "x"}, T0 + DAY)
        log.append("dan", "legal_hold", str(same), {"line": 2, "on": False, "reason": "x"}, T0 + 2 * DAY)
        log.append(
            "dan",
            "erase_details",
            "call:%d" % other,
            {"request": "erasure request", "reason": "x"},
            T0 + 3 * DAY,
        )
        log.append(
            "dan",
            "erase_details",
            "call:%d" % hidden,
            {"request": "erasure request", "refused": "the card refused"},
            T0 + 4 * DAY,
        )
        summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)[1]
    assert (summary["first_access"], summary["last_access"]) == (
        "2026-03-02T00:00:00.000Z",
        "2026-03-04T00:00:00.000Z",
    )


def test_a_copy_that_failed_handed_nothing_over_even_when_its_failure_is_after_the_period(box):
    """A copy of the trail (``audit_export``) or a breach scope's CSV is audited before it is
    written and, when it fails, again with ``failed`` and the same details. The first entry
    counted as a list taken all the same; now only a copy with no failure after it is, the
    failure found after the period too (a long copy ends after it)."""
    path = box[0]
    made = {"file": "a.csv", "handovers": 0, "via": "cli"}
    looked = {"account": "sam", "from": "2026-03-01", "to": "2026-03-31", "file": "s.csv", "via": "cli"}
    with trail(path) as log:
        log.append("ann", "audit_export", "audit", made, T0 + DAY)
        log.append("ann", "audit_export", "audit", dict(made, failed="No space left on device"), T0 + DAY + 1)
        kept = log.append("ann", "audit_export", "audit", made, T0 + 2 * DAY)  # tried again: written
        log.append("ann", "breach_scope", "sam", looked, T0 + 31 * DAY - 1)
        log.append("ann", "breach_scope", "sam", dict(looked, failed="stopped"), T0 + 31 * DAY + 5)
        log.append(
            "bob", "breach_scope", "sam", dict(looked, failed="stopped"), T0 + 31 * DAY + 6
        )  # not ann's
        rows, summary = scope(log, os.path.join(path, "calls.db"), "ann", T0, T0 + 31 * DAY)
    assert summary["held"] == {"audit": {"lists": 1, "rows": kept.seq, "unknown": 0}}
    assert summary["last_access"] == "2026-03-03T00:00:00.000Z"
    assert [r[2] for r in rows] == ["audit_export"] * 3 + ["breach_scope"]  # each a row all the same


def test_a_breach_scope_the_command_failed_to_write_is_not_counted_as_taken(box, tmp_path, monkeypatch):
    """`linekeeper breach-scope` that cannot write its file audits the failure after its
    entry: the auditor's own scope then counts no breach scope taken."""
    from firmware.sarbundle import FileSpool

    def full_card(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSpool, "write", full_card)
    path = box[0]
    assert run(box, tmp_path / "scope.csv") != 0
    with trail(path) as log:
        entries = log.entries(limit=10, action="breach_scope", newest_first=False)
        assert ["failed" in e.details for e in entries] == [False, True]
        at = entries[0].wall_us
        summary = scope(log, os.path.join(path, "calls.db"), "admin", at - DAY, at + DAY)[1]
    assert summary["held"] == {} and summary["first_access"] is None


def test_a_hold_release_not_made_is_not_counted_when_that_is_audited_after_the_period(box):
    """A release of a legal hold is audited before it is made; one the box stopped before
    making is audited ``not_made`` (by ``system``) at the next start, which may be after the
    period. It was counted as released: now the not-made entry is looked for after it."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append(
            "dan",
            "legal_hold",
            str(same),
            {"line": 2, "on": False, "reason": "x", "change_id": "c1"},
            T0 + 31 * DAY - 1,
        )
        log.append(
            "system", "legal_hold", str(same), {"change_id": "c1", "not_made": "stopped"}, T0 + 32 * DAY
        )
        summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)[1]
    assert summary["holds_released"] == 0
    assert summary["actions"] == {"legal_hold (not made)": 1}


def test_the_calls_list_and_reports_shown_on_screen_are_counted_by_what_they_showed(box, tmp_path, capsys):
    """Each page of the calls list, and each report, shown on screen is audited
    (``list_viewed``) with the calls or callers' numbers it showed: the scope counts them,
    not one by one (not among the distinct numbers), within the first and last access."""
    path = box[0]
    with trail(path) as log:
        log.append("dan", "list_viewed", "calls", {"filter": "all calls", "rows": 50}, T0 + DAY)
        log.append("dan", "list_viewed", "calls", {"filter": {"number": "01632"}, "rows": 3}, T0 + 2 * DAY)
        log.append("dan", "list_viewed", "report", {"lines": [1], "period": "x", "callers": 4}, T0 + 3 * DAY)
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
    assert summary["shown"] == {
        "calls": {"pages": 2, "rows": 53, "unknown": 0, "printed": 0},
        "report": {"pages": 1, "rows": 4, "unknown": 0, "printed": 0},
    }
    assert summary["numbers"] == 0 and summary["calls"] == 0
    assert (summary["first_access"], summary["last_access"]) == (
        "2026-03-02T00:00:00.000Z",
        "2026-03-04T00:00:00.000Z",
    )
    assert [r[2] for r in rows] == ["list_viewed"] * 3
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert (
        "  calls list page shown on screen 2 times: 53 calls (each with its caller's number), a sum over "
        in out
    )
    assert "  report shown on screen 1 time: 4 callers' numbers (in the reports' callback lists" in out


def test_calls_shown_in_a_list_only_are_a_figure_of_their_own(box, tmp_path, capsys):
    """A page of the calls list names the calls it showed: those the account saw only there,
    never opening, playing, exporting or releasing them, are counted apart ("shown in a list
    only"), so the ICO is told which calls were opened and which were only listed; they are
    not among the calls looked at, nor their callers among the distinct numbers. A page
    whose entry does not name its calls (written before entries did) is said to be missing."""
    path, _, (one, same, other, hidden) = box
    with trail(path) as log:
        log.append("dan", "list_viewed", "calls", {"filter": "all calls", "rows": 50}, T0 + DAY)  # unnamed
        log.append(
            "dan",
            "list_viewed",
            "calls",
            {"filter": "all calls", "rows": 3, "calls": [hidden, other, one]},
            T0 + 2 * DAY,
        )
        log.append(
            "dan",
            "list_viewed",
            "calls",
            {"filter": {"line": ["1"]}, "rows": 2, "calls": [other, one]},
            T0 + 3 * DAY,
        )
        log.append("dan", "call_viewed", str(one), {"line": 1}, T0 + 4 * DAY)  # opened: not "only"
        log.append("dan", "playback", str(same), {"line": 2}, T0 + 5 * DAY)  # opened, never listed
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
    assert summary["calls_listed_only"] == 2  # other and hidden
    assert summary["list_pages_unnamed"] == 1
    assert summary["calls"] == 2 and summary["numbers"] == 1  # one and same: one caller
    assert summary["shown"]["calls"] == {"pages": 3, "rows": 55, "unknown": 0, "printed": 0}
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert "  2 calls shown in a list only: on a page of the calls list the account was shown" in out
    assert "; and 1 page of the calls list whose entries do not name the calls shown" in out
    # An account shown no page of the calls list has no such line.
    assert run(box, tmp_path / "sam.csv") == 0
    assert "shown in a list only" not in capsys.readouterr().out


def test_the_data_subjects_requests_the_account_opened_are_counted(box, tmp_path, capsys):
    """A data subject's request's page shows who asked, how to reach them and what they asked
    (audited ``request_viewed``, once per login and request, web.views.rights): a breach
    scope counts the requests opened, each a row naming its request, within the first and
    last access. It left them out: a report to the ICO missed whose contact details were read."""
    path = box[0]
    with trail(path) as log:
        log.append("dan", "request_viewed", "request:12", {"address": "192.0.2.8"}, T0 + DAY)
        log.append("dan", "request_viewed", "request:3", {"address": "192.0.2.8"}, T0 + 2 * DAY)
        # the same request again, in another login
        log.append("dan", "request_viewed", "request:12", {"address": "192.0.2.9"}, T0 + 3 * DAY)
        log.append("sue", "request_viewed", "request:4", {}, T0 + DAY)  # not dan's
        rows, summary = scope(log, os.path.join(path, "calls.db"), "dan", T0, T0 + 31 * DAY)
    assert (summary["requests_viewed"], summary["requests"]) == (2, ["request:3", "request:12"])
    assert summary["numbers"] == 0 and summary["calls"] == 0
    assert (summary["first_access"], summary["last_access"]) == (
        "2026-03-02T00:00:00.000Z",
        "2026-03-04T00:00:00.000Z",
    )
    assert [(r[2], r[7], r[8]) for r in rows] == [
        ("request_viewed", "192.0.2.8", '{"request": "request:12"}'),
        ("request_viewed", "192.0.2.8", '{"request": "request:3"}'),
        ("request_viewed", "192.0.2.9", '{"request": "request:12"}'),
    ]
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert (
        "  2 data subjects' requests opened (each page shows who asked, how to reach them, their "
        "numbers and what they asked): each a person whose contact details the account read, not "
        "among the distinct callers' numbers above (the Requests page names them): request:3, request:12\n"
    ) in out
    assert [r["action"] for r in read(tmp_path / "dan.csv")] == ["request_viewed"] * 3


def test_the_configuration_an_account_exported_is_counted_with_its_patterns(box, tmp_path, monkeypatch):
    """`linekeeper config export` writes the recording rules' number patterns (staff's or
    callers' numbers, the sealed ones opened) to a file in clear, and audits it
    (``config_export``). A breach scope of the account left it out: no row, no figure, no
    access. Now a row, and the summary says how many patterns the files held; one whose
    file could not be written (audited ``failed`` after it) is a row but no copy taken."""
    import time

    import firmware.storage.fsutil
    from firmware.breachscope import summary_lines
    from firmware.config import BoxConfig, save_config
    from firmware.policy.settings import PolicySettings

    path = box[0]
    rules = [{"name": "staff mobiles", "action": "exclude", "patterns": ["07700 900123", "07700 900456"]}]
    save_config(path, BoxConfig(policy=PolicySettings.from_dict({"rules": {"numbers": rules}})))
    before = int(time.time() * S) - S
    assert main(["config", "export", str(tmp_path / "a.json"), "--data-dir", path]) == 0
    monkeypatch.setattr(
        firmware.storage.fsutil, "write_new", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space"))
    )
    assert main(["config", "export", str(tmp_path / "b.json"), "--data-dir", path]) == 2
    with trail(path) as log:
        rows, summary = scope(log, os.path.join(path, "calls.db"), "cli", before, int(time.time() * S) + S)
    assert [r[2] for r in rows] == ["config_export"] * 3  # the copy, and the failed one with its failure
    assert str(tmp_path / "a.json") in rows[0][8]
    assert summary["config_exports"] == {"files": 1, "patterns": 2, "unknown": 0}
    assert summary["first_access"] is not None and summary["first_access"] == summary["last_access"]
    said = "\n".join(summary_lines(summary))
    assert (
        "the box's configuration exported to a file 1 time (`linekeeper config export`): 2 number "
        "patterns in clear"
    ) in said
    assert "07700" not in said
    # A box whose rules name no number: its file held none, said so.
    none = dict(summary["config_exports"], patterns=0)
    assert "`linekeeper config export`): no number pattern (the recording rules named none)." in (
        config_words(none)
    )


def test_calls_erased_with_their_callers_details_do_not_say_their_callers_are_counted(box, tmp_path, capsys):
    """A person's calls erased with their details (the request page's bulk erasure, or
    `linekeeper erase-calls`) leave no number in the call log: the summary said "their
    callers are among the distinct numbers" of calls none of whose callers were counted
    (seen on a box: 12 calls erased, 0 numbers known, and that line)."""
    path, _, (one, same, other, hidden) = box
    for call in (one, same):
        erase_details_of(path, call)
    with trail(path) as log:
        for at, call in enumerate((one, same)):
            details = {"request": "erasure request", "reason": "erasure request #1", "details": True}
            log.append("dan", "delete", "call:%d" % call, details, T0 + 2 * DAY + at)
    assert run(box, tmp_path / "dan.csv", account="dan") == 0
    out = capsys.readouterr().out
    assert (
        "  2 calls whose recording or details it erased, 0 legal holds it released, on lines 1 and 2; "
        "2 calls whose caller's number is not known here (erased on request, removed after its "
        "retention period, withheld, or not in the call log)\n"
    ) in out
    assert "0 distinct callers' numbers (data subjects)" in out
