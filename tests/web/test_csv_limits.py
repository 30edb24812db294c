"""A CSV download that would hold more than one download holds is refused, saying how many
and what to do. Cut to the first rows, the copy looked whole to whoever it was handed to:
nothing in the file said the rest were left out (the calls list's is in test_calls.py)."""

import html
import os

from web.views import alarms as alarms_view
from web.views import audit as audit_view


def refused(resp):
    assert resp.status_code == 400
    return html.unescape(resp.get_data(as_text=True))


def test_an_audit_trail_csv_of_more_entries_than_one_download_is_refused(box, people, monkeypatch):
    audrey = people["audrey"]
    entries = box.services.audit.count()
    monkeypatch.setattr(audit_view, "CSV_MAX_ROWS", entries - 1)
    said = refused(audrey.get("/audit.csv"))
    assert "This selects %d entries, more than the %d one download holds" % (entries, entries - 1) in said
    assert "Choose a shorter period (from and to), or an action, and download each part." in said
    # The whole trail has its own copy, on the box; the refusal (and the page's help) never
    # named it: an auditor told to "download it with no filter" had no way to a whole copy.
    assert (
        "For the whole trail in one file, run on the box: linekeeper audit-export trail.csv "
        "--data-dir %s --user audrey --password-file FILE (FILE holding your password)"
        % os.path.abspath(box.data_dir)
    ) in said, said
    help_page = html.unescape(audrey.get("/help/audit").get_data(as_text=True))
    assert "linekeeper audit-export" in help_page, help_page
    assert box.services.audit.count() == entries  # nothing said to be exported
    monkeypatch.setattr(audit_view, "CSV_MAX_ROWS", entries)
    assert audrey.get("/audit.csv").status_code == 200


def test_an_alarm_history_csv_of_more_occurrences_than_one_download_is_refused(box, people, monkeypatch):
    log = box.alarm_log
    for n in range(3):
        log.set("disk_warning", n % 2 == 0, message="card %d" % n, wall_us=box.T0_US + n * 60_000_000)
    audrey = people["audrey"]
    held = len(log.history())
    monkeypatch.setattr(alarms_view, "CSV_MAX_ROWS", held - 1)
    before = box.services.audit.count()
    said = refused(audrey.get("/alarms.csv"))
    assert "This selects more than the %d alarm occurrences one download holds" % (held - 1) in said
    assert box.services.audit.count() == before
    monkeypatch.setattr(alarms_view, "CSV_MAX_ROWS", held)
    assert audrey.get("/alarms.csv").status_code == 200
