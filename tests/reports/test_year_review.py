"""The year in review against the simulated week (tests/reports/week.py): its figures are the
week's report's, over a period covering it; the register's figures by hand."""

import datetime as dt
import json
import subprocess

import pytest

from firmware import cli, rights
from firmware.reports.period import parse_period
from firmware.reports.yearreview import default_period, requests_figures

from support.cli import password_beside

PASSWORD = "correct horse battery 7"  # the week's key slot's (conftest.py)


def year_review_args(data_dir, *args):
    """``linekeeper year-review`` of ``data_dir`` as its key slot's owner (admin), then ``args``."""
    password = password_beside(data_dir, PASSWORD)
    return ["year-review", "--data-dir", data_dir, "--password-file", password, *args]


def review(week_dir, tmp_path, *args, fmt="json"):
    """The file ``linekeeper year-review`` writes, a new one each time (it never replaces one)."""
    out, n = tmp_path / ("review." + fmt), 1
    while out.exists():
        n += 1
        out = tmp_path / ("review-%d.%s" % (n, fmt))
    status = cli.main(year_review_args(week_dir, "--format", fmt, "--out", str(out), *args))
    assert status == 0
    return out


def test_the_weeks_figures(week_dir, tmp_path):
    doc = json.loads(review(week_dir, tmp_path, "--from", "2026-03-01", "--to", "2026-03-31").read_text())
    assert doc["period"] == {"from": "2026-03-01", "to": "2026-03-31", "tz": "Europe/London", "days": 31}
    calls = doc["calls"]
    assert (calls["calls"], calls["connected"], calls["recorded"], calls["private"], calls["excluded"]) == (
        14,
        8,
        5,
        2,
        1,
    )
    assert calls["excluded_by_reason"] == {'number excluded by rule "helplines"': 1}
    assert (calls["personal"], calls["failed"], calls["before_setup"]) == (0, 0, 0)
    assert doc["consent"] == {"given": 4, "failed": 0, "unheard": 0, "off": 1}
    # sam played 3 (one after the week, in March still), sue 1; sam exported 1, sue's refused.
    # Neither has an account on this box: counted together, by account, never named.
    assert list(doc["access"].values()) == [{"accounts": 2, "playback": 4, "export": 1, "release": 0}]
    assert "sam" not in json.dumps(doc)
    assert doc["alarms"] == {"disk_warning": 1, "no_line_voltage": 1}
    assert doc["line_outages"] == {"times": 1, "out_s": 3600}
    assert doc["deletions"] == {"total": 0, "by_rule": 0, "by_erasure_request": 0}
    assert doc["todo"] is None  # the checklist is the running box's: its web page has it


def test_the_pdf_in_plain_words(week_dir, tmp_path):
    out = review(week_dir, tmp_path, "--from", "2026-03-01", "--to", "2026-03-31", fmt="pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, check=True
    ).stdout.decode()
    assert "The year in review" in text
    assert "Not recorded: a private line" in text and "No line was out of service" not in text
    assert "+44" not in text and "01632" not in text  # no caller's number
    # One fault on a line: it read "1 times".
    assert "Lines out of service (a line fault): 1 time, " in " ".join(text.split())


@pytest.mark.parametrize(
    "args,said",
    [
        (["--from", "2026-03-08", "--to", "2026-03-02"], "the date range is backwards"),
        (["--from", "2026-03-02"], "give both dates of the period"),
        (["--from", "2025-01-01", "--to", "2026-03-02"], "a date range covers at most 366 days"),
        (["--from", "2026-02-30", "--to", "2026-03-02"], "is not a date like 2026-03-02"),
    ],
)
def test_bad_input_is_named_and_nothing_written(week_dir, tmp_path, capsys, args, said):
    out = tmp_path / "review.pdf"
    assert cli.main(year_review_args(week_dir, "--out", str(out), *args)) == 2
    assert said in capsys.readouterr().err
    assert not out.exists()


def test_the_default_is_the_last_twelve_whole_months():
    assert default_period(dt.date(2026, 12, 6)) == (dt.date(2025, 12, 1), dt.date(2026, 11, 30))
    assert default_period(dt.date(2027, 1, 1)) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


def entry(i, kind, received, status, closed_on=None, extension_months=0):
    e = {"id": i, "kind": kind, "received": received, "status": status, "closed_on": closed_on}
    e.update(paused_days=0, extension_months=extension_months, id_received=None)
    e["due"], e["first_due"] = rights._deadlines(e, "ENG")
    return e


def test_the_registers_figures():
    period = parse_period("2026-01-01", "2026-12-31")
    entries = [
        entry(
            1, "access", "2025-12-01", rights.ANSWERED, "2026-01-05"
        ),  # due Thu 1 Jan 2026 (a holiday): Fri 2nd: late
        entry(2, "access", "2026-02-02", rights.ANSWERED, "2026-02-20"),  # on time
        entry(3, "erasure", "2026-03-02", rights.REFUSED, "2026-03-03"),  # on time, refused
        entry(4, "objection", "2026-04-01", rights.EXTENDED, extension_months=1),  # due 1 Jun: overdue
        entry(5, "access", "2026-12-01", rights.OPEN),  # due 4 Jan 2027 (the 1st a holiday): not yet
        entry(6, "access", "2025-06-01", rights.ANSWERED, "2025-06-20"),  # all before the period
    ]
    got = requests_figures(entries, period, dt.date(2026, 12, 6))
    assert got == {
        "received": 4,
        "received_by_kind": {"access": 2, "rectification": 0, "erasure": 1, "restriction": 0, "objection": 1},
        "closed": 3,
        "closed_on_time": 2,
        "closed_late": 1,
        "refused": 1,
        "extended": 1,
        "open_now": 2,
        "overdue_now": 1,
    }


def test_a_year_over_the_reports_limit_is_read_a_call_at_a_time(week_dir, tmp_path, monkeypatch, capsys):
    """A busy box's year (400 000 calls) is more than a report holds (MAX_CALLS): the review
    reads the calls one at a time and keeps none, every figure the same as a report's,
    with its progress shown by days read (the month of March, in London: the clocks go
    forward on the 29th)."""
    from firmware.reports import compute

    args = ("--from", "2026-03-01", "--to", "2026-03-31")
    whole = json.loads(review(week_dir, tmp_path, *args).read_text())
    capsys.readouterr()
    monkeypatch.setattr(compute, "MAX_CALLS", 3)  # the week has 14
    limited = json.loads(review(week_dir, tmp_path, *args).read_text())
    assert limited == whole and limited["calls"]["calls"] == 14
    err = capsys.readouterr().err
    assert "linekeeper: year-review: 31/31 days of calls read" in err
    assert "a report holds at most" not in err


def test_the_figures_read_a_call_at_a_time_are_the_reports(week_dir, monkeypatch):
    """In a zone whose clocks change in the period, over the limit: the same figures as the
    report of the same period (within the limit), day by day in the progress."""
    from firmware.reports import compute
    from firmware.reports.source import ReportSource
    from firmware.reports.yearreview import gather

    source = ReportSource(week_dir, tz="Europe/London", n_lines=4)
    period = source.period("2026-03-01", "2026-03-31")

    def made(**kw):
        return gather(
            source,
            period,
            audit=None,
            roles_of={},
            site={},
            retention=None,
            todo=None,
            today=dt.date(2026, 4, 1),
            **kw,
        )

    whole = made()
    monkeypatch.setattr(compute, "MAX_CALLS", 3)
    seen = []
    assert made(progress=lambda done, total: seen.append((done, total))) == whole
    assert seen[0][0] >= 1 and seen[-1] == (31, 31) and all(t == 31 for _, t in seen)
    assert [d for d, _ in seen] == sorted(set(d for d, _ in seen))
    report = source.report(period, max_calls=100)
    assert whole["calls"]["calls"] == report["box"]["calls"] == 14
    assert whole["consent"] == report["box"]["consent"]


def test_a_supervisors_requests_are_those_of_their_lines_or_none(week_dir, monkeypatch):
    from firmware.reports import yearreview
    from firmware.reports.source import ReportSource

    mine = dict(entry(1, "access", "2026-03-02", rights.OPEN), lines=[1])
    theirs = dict(entry(2, "erasure", "2026-03-03", rights.OPEN), lines=[3])
    anyones = dict(entry(3, "objection", "2026-03-04", rights.OPEN), lines=[])
    monkeypatch.setattr(yearreview.rights, "read_clear", lambda *a: [mine, theirs, anyones])
    source = ReportSource(week_dir, n_lines=4)
    period = source.period("2026-03-01", "2026-03-31")

    def made(lines):
        return yearreview.gather(
            source,
            period,
            audit=None,
            roles_of={},
            site={},
            retention=None,
            todo=None,
            today=dt.date(2026, 4, 1),
            lines=lines,
        )

    sams = made([1, 2])
    assert sams["requests"]["received_by_kind"] == {
        "access": 1,
        "rectification": 0,
        "erasure": 0,
        "restriction": 0,
        "objection": 1,
    }
    assert sams["lines"] == [1, 2] and sams["calls"]["calls"] == 10  # lines 1 and 2: 6 and 4
    assert made(None)["requests"]["received"] == 3 and made(None)["calls"]["calls"] == 14


def test_no_callers_number_is_opened(week_dir):
    """The review needs no number (it has no callback list): none is opened, on a box that
    seals them (a busy year's 400 000 openings of the field cipher on a Pi, for nothing)."""
    from firmware.reports.source import ReportSource
    from firmware.reports.yearreview import gather

    class Counting:
        opened = 0

        def open_quietly(self, value, field):
            Counting.opened += 1
            return value

    source = ReportSource(week_dir, n_lines=4, cipher=Counting())
    period = source.period("2026-03-01", "2026-03-31")
    review = gather(
        source, period, audit=None, roles_of={}, site={}, retention=None, todo=None, today=dt.date(2026, 4, 1)
    )
    assert review["calls"]["calls"] == 14 and Counting.opened == 0
    source.report(period)  # a report's callback list opens them
    assert Counting.opened == 14


def test_the_pause_and_deletion_sentences_count_in_words(week_dir, tmp_path):
    """ "paused for card details 1 times, on 1 calls" and "1 recordings were deleted"; with
    none, "paused 0 times, on 0 calls, for no time in all: the card details were never
    recorded" claimed of card details what the box cannot know."""
    from firmware.reports.yearreview import review_blocks

    doc = json.loads(review(week_dir, tmp_path, "--from", "2026-03-01", "--to", "2026-03-31").read_text())

    def said(heading):
        blocks = review_blocks(doc)
        return blocks[blocks.index(("h", heading)) + 1][1]

    doc["pci"] = {"pauses": 0, "paused_calls": 0, "paused_s": 0}
    doc["deletions"] = {"total": 0, "by_rule": 0, "by_erasure_request": 0}
    assert said("Card payments") == "Recording was never paused for card details."
    assert said("Recordings deleted") == "No recording was deleted."
    doc["pci"] = {"pauses": 1, "paused_calls": 1, "paused_s": 90}
    doc["deletions"] = {"total": 1, "by_rule": 0, "by_erasure_request": 1}
    assert said("Card payments").startswith(
        "Recording was paused for card details 1 time, on 1 call, for 1 minute in all"
    )
    assert said("Recordings deleted").startswith("1 recording was deleted: 0 by the retention rules")
    doc["pci"] = {"pauses": 3, "paused_calls": 2, "paused_s": 200}
    assert said("Card payments").startswith("Recording was paused for card details 3 times, on 2 calls,")


def _archiving(week_dir, tmp_path):
    """A copy of the week's box whose archive has run (its call log has archive_status)."""
    import shutil
    import sqlite3

    from firmware.archive.queue import STATUS_SCHEMA

    data_dir = str(tmp_path / "archiving")
    shutil.copytree(week_dir, data_dir)
    with sqlite3.connect(str(tmp_path / "archiving" / "calls.db")) as db:
        db.executescript(STATUS_SCHEMA)
    db.close()
    return data_dir


def test_a_box_that_archives_says_the_viewer_s_playbacks_are_not_counted(week_dir, tmp_path):
    """The year in review said "Nobody played, copied or released a recording" of a box whose
    calls the central archive viewer plays: those playbacks are written to the viewer's own
    audit trail, which the box never sees. Where the box archives, it says so plainly; where
    it does not, nothing is added."""
    from firmware.reports.yearreview import review_blocks

    def said(doc):
        blocks = review_blocks(doc)
        at = blocks.index(("h", "Who listened to, copied or released recordings"))
        return blocks[at + 1 : at + 3]

    period = ("--from", "2026-03-01", "--to", "2026-03-31")
    plain = json.loads(review(week_dir, tmp_path, *period).read_text())
    assert said(plain)[1][0] == "h"  # the table, then the next heading: nothing added
    doc = json.loads(review(_archiving(week_dir, tmp_path), tmp_path, *period).read_text())
    assert said(doc)[1] == (
        "p",
        "These are the box's own. The box archives its calls: playbacks and copies in the "
        "central archive viewer are in the viewer's own audit trail, not counted here.",
    )
    assert doc["access"] == plain["access"]  # the box's own, counted as before


def test_the_report_of_a_box_that_archives_says_whose_playbacks_it_counts(week_dir, tmp_path):
    """The report's "Playbacks and exports by user" (screen, CSV, PDF: one table) counted only
    the box's audit trail; on a box that archives its title says the viewer's are not in it."""
    from firmware.reports.source import ReportSource
    from firmware.reports.tables import tables

    period = parse_period("2026-03-01", "2026-03-31", "Europe/London")

    def title(data_dir):
        report = ReportSource(data_dir, n_lines=4).report(period)
        return next(t for t, _, _ in tables(report) if t.startswith("Playbacks and exports by user"))

    assert title(week_dir) == "Playbacks and exports by user"
    assert title(_archiving(week_dir, tmp_path)) == (
        "Playbacks and exports by user (on this box; the archive viewer's are in its own audit "
        "trail, not counted here)"
    )
