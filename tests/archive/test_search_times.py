"""``linekeeper archive search``: each call's times in its site's zone, as the viewer's pages.

Each call record carries its box's zone (``time_zone``); the command prints a call's start
in it with the zone named, ``--json`` adds the same instants as ISO 8601 with the zone's
offset beside the box's UTC ones, and ``--from``/``--to`` are each call's site's days, as
the Calls page's From and To (docs/archive-viewer.md, "Times and time zones").
"""

import json

import pytest

from firmware.archive.viewer import rebuild_index
from firmware.calls.calllog import iso_ms
from firmware.cli import main
from firmware.localtime import iso_to_us

from support.archive import MemoryBucket

LATE_JUNE = iso_to_us("2026-06-30T23:30:00.250Z")  # 00:30 BST on 1 Jul in London
TALK_US = 90_000_000


def _record(box, call_id, started_us, zone=None):
    doc = {
        "format": 1,
        "box": box,
        "call_id": call_id,
        "line": 1,
        "direction": "in",
        "started_at": iso_ms(started_us),
        "started_us": started_us,
        "ended_at": iso_ms(started_us + TALK_US),
        "answered": True,
        "recordings": [],
    }
    if zone is not None:
        doc["time_zone"] = zone
    return json.dumps(doc).encode()


@pytest.fixture
def index(tmp_path):
    """The same instant at a London site and at one whose archive says no zone."""
    path = tmp_path / "index.db"
    bucket = MemoryBucket(
        {
            "london/calls/0000000001.json": _record("london", 1, LATE_JUNE, "Europe/London"),
            "oldsite/calls/0000000001.json": _record("oldsite", 1, LATE_JUNE),
        }
    )
    rebuild_index(bucket, str(path))
    return path


def _search(capsys, index, *args):
    assert main(["archive", "search", "--index", str(index), *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_each_call_s_start_is_printed_in_its_site_s_zone_with_the_zone_named(index, capsys):
    london, old = _search(capsys, index)
    assert london.startswith("london ") and "Wed 1 Jul 2026, 00:30:00 BST (Europe/London)" in london
    assert old.startswith("oldsite ")
    assert "Tue 30 Jun 2026, 23:30:00 UTC (the site's archive does not say its zone)" in old


def test_json_keeps_the_box_s_utc_times_and_adds_them_in_the_site_s_zone(index, capsys):
    london, old = (json.loads(line) for line in _search(capsys, index, "--json"))
    assert london["started_at"] == "2026-06-30T23:30:00.250Z"  # as the box wrote it
    assert london["local_zone"] == "Europe/London" and london["time_zone"] == "Europe/London"
    assert london["started_local"] == "2026-07-01T00:30:00.250+01:00"
    assert london["ended_local"] == "2026-07-01T00:31:30.250+01:00"
    assert old["local_zone"] == "UTC" and old["time_zone"] is None
    assert old["started_local"] == "2026-06-30T23:30:00.250+00:00"


def test_from_and_to_are_each_call_s_site_s_days_as_on_the_calls_page(index, capsys):
    """1 Jul in London is 30 Jun in UTC: each call is found on the day it is printed with."""

    def found(*days):
        return [line.split()[0] for line in _search(capsys, index, *days)]

    assert found("--from", "2026-07-01", "--to", "2026-07-01") == ["london"]
    assert found("--from", "2026-06-30", "--to", "2026-06-30") == ["oldsite"]
    assert found("--from", "2026-07-01") == ["london"]
    assert found("--to", "2026-06-30") == ["oldsite"]
    assert found("--from", "2026-06-30", "--to", "2026-07-01") == ["london", "oldsite"]


@pytest.mark.parametrize("day", ["20260701", "2026-W27-3", "2026-07-32", "yesterday"])
def test_a_day_not_written_yyyy_mm_dd_is_refused_naming_the_option(index, capsys, day):
    before = index.read_bytes()
    with pytest.raises(SystemExit) as exited:
        main(["archive", "search", "--index", str(index), "--to", day])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --to: %r is not a date like 2026-03-02 (YYYY-MM-DD)" % day in err
    assert index.read_bytes() == before


def test_a_last_day_before_the_first_is_refused(index, capsys):
    args = ["archive", "search", "--index", str(index), "--from", "2026-07-02", "--to", "2026-07-01"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--to: the last day (2026-07-01) is before the first (2026-07-02)" in captured.err


def test_a_search_that_matches_more_than_it_prints_says_so(index, capsys, monkeypatch):
    """The search printed the oldest 1000 and said nothing, as if they were all."""
    from firmware.archive import cli

    monkeypatch.setattr(cli, "SEARCH_MAX", 1)
    assert [line.split()[0] for line in _search(capsys, index)] == ["london"]
    assert main(["archive", "search", "--index", str(index)]) == 0
    err = capsys.readouterr().err
    assert "more than 1 calls match: these are the oldest 1; narrow the search" in err
    assert main(["archive", "search", "--index", str(index), "--box", "oldsite"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("box", ["York!", "york leeds", "-york", "y" * 64])
def test_a_box_that_is_no_box_id_is_refused_naming_the_option(index, capsys, box):
    """``--box York!`` searched for it, found nothing and exited 0, where the viewer
    refuses the same text as no site (404, the rule named)."""
    with pytest.raises(SystemExit) as exited:
        main(["archive", "search", "--index", str(index), "--box=" + box])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    said = "argument --box: %r is not a box id (lower-case letters, digits and hyphens, up to 63)"
    assert said % box[:20] in err, err


def test_a_search_that_matches_nothing_says_so_on_stderr_with_the_search(index, tmp_path, capsys):
    """A search that found no call printed nothing and exited 0, as if it had not run (as
    ``linekeeper calls`` says it, the search as given)."""
    assert _search(capsys, index, "--box", "nowhere") == []
    assert capsys.readouterr().err == ""  # _search read it: say it again
    assert main(["archive", "search", "--index", str(index), "--box", "nowhere"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "linekeeper: no calls match --box nowhere\n"
    args = ["--number", "999", "--box", "london", "--from", "2026-07-01", "--to", "2026-07-02", "--json"]
    assert main(["archive", "search", "--index", str(index), *args]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "linekeeper: no calls match --number 999 --box london --from 2026-07-01 --to 2026-07-02\n"
    )
    empty = tmp_path / "empty.db"
    rebuild_index(MemoryBucket({}), str(empty))
    assert main(["archive", "search", "--index", str(empty)]) == 0
    assert capsys.readouterr().err == "linekeeper: the index holds no calls\n"
