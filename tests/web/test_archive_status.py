"""The box's pages show the archive: a dashboard tile and each call's state (issue 17)."""

import os
import sqlite3

from firmware.archive.queue import STATUS_SCHEMA, ArchiveStatus


def _statuses(box, rows):
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.executescript(STATUS_SCHEMA)
    db.executemany("INSERT OR REPLACE INTO archive_status VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    box.services.archive = ArchiveStatus(os.path.join(box.data_dir, "calls.db"))


def test_the_dashboard_shows_queued_last_upload_and_errors(box, people):
    t = box.T0_US
    _statuses(
        box,
        [
            (1, "archived", None, t + 10_000_000),
            (2, "archived", None, t + 20_000_000),
            (3, "queued", "retrying: cannot reach the store: timed out", t + 30_000_000),
            (4, "failed", "the store said AccessDenied: no", t + 40_000_000),
        ],
    )
    page = people["ivan"].get("/").get_data(as_text=True)
    assert 'id="archive"' in page
    assert "2 calls; the last at" in page
    assert '<dd id="archive-queued">1 call</dd>' in page
    assert "call 4: the store said AccessDenied: no" in page
    assert "call 3: retrying: cannot reach the store" in page
    assert page.index("call 4:") < page.index("call 3:")  # newest problem first


def test_a_box_without_the_archive_says_its_calls_have_no_copy_off_it(box, people):
    page = people["ivan"].get("/").get_data(as_text=True)
    assert 'id="archive"' not in page
    # Nothing said the recordings had no copy off the box: an owner whose box was stolen
    # learnt then that a year of calls went with it.
    said = page.split('id="no-archive">')[1].split("</p>")[0]
    assert said.startswith("No archive is set up: the recordings and the call log are kept only")
    assert "lost or stolen, they are gone" in said
    # It said "ask the installer to set one up" to the installer too: it says what an archive
    # needs and where it is described, not who to ask.
    assert "ask the installer" not in said
    assert "S3-compatible storage" in said and "<code>docs/archive.md</code>" in said
    assert "<code>linekeeper archive set-secret</code>" in said and "the box's command line" in said
    assert 'id="f-archive"' not in people["sam"].get("/calls/1").get_data(as_text=True)
    _statuses(box, [])  # an archive set up: its tile, and no such notice
    page = people["ivan"].get("/").get_data(as_text=True)
    assert 'id="archive"' in page and 'id="no-archive"' not in page


def test_the_call_page_says_whether_the_call_is_archived(box, people):
    _statuses(box, [(1, "archived", None, box.T0_US), (5, "failed", "recording changed on the card", 0)])
    sam = people["sam"]
    assert "archived (" in _archive_field(sam.get("/calls/1").get_data(as_text=True))
    assert "not archived</strong>: recording changed" in _archive_field(
        sam.get("/calls/5").get_data(as_text=True)
    )
    assert _archive_field(sam.get("/calls/2").get_data(as_text=True)) == "not archived yet"


def test_the_tile_reads_a_call_log_the_archive_never_touched(tmp_path):
    db = sqlite3.connect(str(tmp_path / "calls.db"))
    db.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY)")
    db.close()
    status = ArchiveStatus(str(tmp_path / "calls.db"))
    assert status.summary() is None and status.of(1) is None
    assert ArchiveStatus(str(tmp_path / "none.db")).summary() is None


def _archive_field(page):
    start = page.index('id="f-archive">') + len('id="f-archive">')
    return page[start : page.index("</dd>", start)]
