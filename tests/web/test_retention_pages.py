"""The retention pages: preview = sweep, bad input changes nothing, the deletion log, the clock."""

import csv
import functools
import html
import io
import json
import os
import re
import sqlite3
import threading

from firmware.config import load_config
from web.services import StoreRecordings

from support.web import assert_remove_boxes, audited_change, chains_checked


def retention_form(box, client, **fields):
    data = {
        "csrf_token": box.token_of(client, "/retention"),
        "default_days": "",
        "sweep_interval_min": "60",
        "disk_warning_percent": "80",
        "disk_critical_percent": "95",
        "clock_tolerance_s": "120",
        "clock_max_ahead_days": "31",
        "requests_closed_days": "2192",
        "action": "save",
    }
    data.update(fields)
    return client.post("/retention", data=data)


def preview_counts(page):
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r'<tr id="preview-([^"]+)">.*?This rule deletes (\d+) recording', page, re.S)
    }


def test_the_preview_count_is_what_the_sweep_then_deletes(box, people):
    box.add_recordings(range(1, 21))  # calls 1-20: 40 days old, lines 1-4 in turn
    ivan = people["ivan"]
    resp = retention_form(
        box,
        ivan,
        **{
            "default_days": "30",
            "rule-0-name": "line one",
            "rule-0-line": "1",
            "rule-0-days": "60",
            "rule-1-name": "outbound",
            "rule-1-direction": "out",
            "rule-1-days": "35",
            "minimum-0-category": "regulated",
            "minimum-0-days": "1827",
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = ivan.get("/retention").get_data(as_text=True)
    counts = preview_counts(page)
    # Line 1 (calls 1, 5, ...) is kept 60 days; the others: even ids are outbound (35 days).
    assert counts == {"line one": 0, "outbound": 10, "default": 5}
    assert "a sweep now would delete <strong>15</strong>" in page
    result = box.sweeper.sweep()
    assert result.deleted == 15 and result.by_rule == {"outbound": 10, "default": 5}
    assert sorted(r["call_id"] for r in box.store.all()) == [1, 5, 9, 13, 17]


def test_the_preview_counts_recordings_and_days_as_the_total_does(box, people):
    """A rule's row said "deletes 1 calls" of what the total beneath calls recordings (a
    sweep deletes recordings; the call log keeps the calls), and "1 days"."""
    box.add_recordings([2])  # outbound, 40 days old
    ivan = people["ivan"]
    resp = retention_form(
        box,
        ivan,
        **{"default_days": "3650", "rule-0-name": "outbound", "rule-0-direction": "out", "rule-0-days": "1"},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = ivan.get("/retention").get_data(as_text=True)
    row = page.split('<tr id="preview-outbound">')[1].split("</tr>")[0]
    assert ">1 day</td>" in row and "This rule deletes 1 recording now" in row, row
    assert "a sweep now would delete <strong>1</strong> recording." in page


def test_saving_writes_config_json_applies_it_and_audits_the_change(box, people):
    resp = retention_form(box, people["ivan"], default_days="400", overwrite_oldest_when_full="on")
    assert resp.status_code == 302
    saved = load_config(box.data_dir).policy.retention
    assert saved.default_days == 400 and saved.overwrite_oldest_when_full
    assert box.sweeper.settings == saved and len(box.applied) == 1
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.actor == "ivan" and entry.target == "policy.retention"
    assert entry.details["changed"] == {"default_days": 400, "overwrite_oldest_when_full": True}


def test_preview_of_unsaved_settings_changes_nothing(box, people):
    box.add_recordings([1, 2, 3])
    n_audit = len(box.services.audit)
    resp = retention_form(box, people["ivan"], default_days="10", action="preview")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="previewing"' in page
    assert preview_counts(page)["default"] == 3
    assert not os.path.exists(os.path.join(box.data_dir, "config.json"))
    assert len(box.services.audit) == n_audit
    assert preview_counts(people["ivan"].get("/retention").get_data(as_text=True)) == {"default": 0}


def test_bad_input_is_refused_with_a_message_and_changes_nothing(box, people):
    ivan = people["ivan"]
    assert retention_form(box, ivan, default_days="90").status_code == 302
    with open(os.path.join(box.data_dir, "config.json"), "rb") as f:
        before = f.read()
    n_audit = len(box.services.audit)
    cases = [
        ({"default_days": "ninety"}, "default_days", "whole number"),
        ({"default_days": "0"}, "default_days", "from 1 to 36500"),
        # In the page's words: the setting's name in the configuration file meant nothing there.
        (
            {"disk_critical_percent": "70"},
            "disk_critical_percent",
            "Disk critical must be above Disk warning (80 % full).",
        ),
        ({"rule-0-name": "x", "rule-0-days": "-5"}, "rule-0-days", "whole number"),
        (
            {"rule-0-name": "x", "rule-0-line": "99"},
            "rule-0-line",
            "This box has lines 1 to 4: there is no line 99.",
        ),
        ({"rule-0-name": "x", "rule-0-line": "9"}, "rule-0-line", "there is no line 9"),
        ({"default_days": "\u00b2"}, "default_days", "whole number"),  # "²": isdigit(), not int()
        ({"rule-0-name": "x", "rule-0-days": "\u00b2"}, "rule-0-days", "whole number"),
        ({"rule-x-name": "x", "default_days": "0"}, "default_days", "from 1 to 36500"),
        ({"rule-\u00b2-name": "x", "default_days": "0"}, "default_days", "from 1 to 36500"),
        ({"rule-0-name": "a", "rule-1-name": "a"}, "rule-1-name", "already called"),
        ({"rule-0-name": "default"}, "rule-0-name", "default rule"),
        ({"rule-0-name": "x", "rule-0-category": "Not OK"}, "rule-0-category", "category"),
        ({"minimum-0-category": "Regulated!", "minimum-0-days": "5"}, "minimum-0-category", "category"),
        ({"minimum-0-category": "regulated", "minimum-0-days": ""}, "minimum-0-days", "whole number"),
        ({"sweep_interval_min": ""}, "sweep_interval_min", "whole number"),
    ]
    for fields, field, words in cases:
        resp = retention_form(box, ivan, **fields)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, fields
        m = re.search(r'id="error-%s" role="alert">([^<]+)<' % re.escape(field), page)
        assert m and words in m.group(1), (fields, page[:3000])
        assert 'id="retention-errors"' in page
    with open(os.path.join(box.data_dir, "config.json"), "rb") as f:
        assert f.read() == before
    assert len(box.services.audit) == n_audit
    assert box.sweeper.settings.default_days == 90
    # A forged row number draws no page of 20 000 rows.
    page = retention_form(box, ivan, **{"rule-20000-name": "", "action": "preview"}).get_data(as_text=True)
    assert len(page) < 200_000 and 'name="rule-20000-name"' not in page


def test_auditors_read_and_cannot_edit(box, people):
    page = people["audrey"].get("/retention").get_data(as_text=True)
    assert 'id="preview"' in page and 'id="save-button"' not in page
    assert 'name="default_days" class="short" value="" disabled' in page
    # No instructions to edit what they cannot: "tick its Remove box, then save" with every
    # box disabled and no Save button. They are told who changes it instead.
    assert "then save" not in page and "Remove box" not in page, page
    assert "Read only: an installer changes these settings." in page
    assert "then save" in people["ivan"].get("/retention").get_data(as_text=True)
    resp = people["audrey"].post(
        "/retention", data={"csrf_token": box.token_of(people["audrey"], "/retention"), "default_days": "1"}
    )
    assert resp.status_code == 403


def test_the_deletion_log_page_verifies_and_shows_an_edit(box, people):
    box.add_recordings([1, 2, 3])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 3
    box.recordings.audio.pop(1)  # the fake recordings follow the store
    page = html.unescape(people["sam"].get("/calls/1").get_data(as_text=True))
    # In the box's zone (Europe/London: BST from 29 March).
    assert 'deleted on Sat 11 Apr 2026, 10:00:00 BST by the retention rule "default"' in page
    chains_checked(box)
    page = people["audrey"].get("/retention/deletions").get_data(as_text=True)
    assert 'id="log-ok"' in page and "3 entries" in page
    assert "0207946" not in page  # the numbers of the calls are not in the log
    # The box's zone under a heading that says nothing else (it said "UTC"), in words.
    assert "(UTC)" not in page and "Sat 11 Apr 2026, 10:00:00 BST" in page
    assert ">Inbound</td>" in page and ">Outbound</td>" in page and 'data-label="Length">30 s</td>' in page
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.execute("DROP TRIGGER deletion_log_no_update")
    db.execute("UPDATE deletion_log SET line = 4 WHERE seq = 2")
    db.commit()
    db.close()
    # The whole log is checked again within ten minutes (hashing it takes seconds on a
    # big card; the page says when it was checked), at once when an entry is added.
    box.clock.advance(11 * 60)
    assert 'id="whole-check-running"' in people["audrey"].get("/retention/deletions").get_data(as_text=True)
    box.web.wait_whole_checks()
    page = people["audrey"].get("/retention/deletions").get_data(as_text=True)
    assert 'id="log-broken"' in page and "entry 2 was modified" in page


def test_a_clock_jump_is_shown_and_an_installer_confirms_the_time(box, people):
    box.add_recordings([1])
    retention_form(box, people["ivan"], default_days="30")
    box.box_clock.start_wall_us += 3600 * 10**6  # an hour's jump
    assert box.sweeper.sweep().refused == "jump"
    page = people["audrey"].get("/retention").get_data(as_text=True)
    assert 'id="clock-suspended"' in page and 'id="clock-form"' not in page
    # When it was seen, as the pages write a time: it read "(seen at 2026-04-11 10:00 UTC)".
    said = page.split('id="clock-suspended"')[1].split("</div>")[0]
    assert "(seen at Sat 11 Apr 2026, 11:00:00 BST)" in said and "UTC" not in said, said
    ivan = people["ivan"]
    page = ivan.get("/retention").get_data(as_text=True)
    assert 'id="clock-form"' in page
    token = box.token_of(ivan, "/retention")
    resp = ivan.post("/retention/clock", data={"csrf_token": token})
    assert resp.status_code == 400 and "Tick the box" in resp.get_data(as_text=True)
    assert box.sweeper.guard.suspended is not None
    resp = ivan.post("/retention/clock", data={"csrf_token": token, "confirm": "yes"})
    assert resp.status_code == 302 and box.sweeper.guard.suspended is None
    assert box.sweeper.sweep().deleted == 1
    confirm = [e for e in box.services.audit.entries(limit=50) if e.target == "retention.clock"]
    assert confirm[0].actor == "ivan"


def test_legal_hold_on_the_real_store_survives_the_sweep(box, people):
    box.add_recordings([1, 2])
    service = StoreRecordings(box.store, box.box_clock.wall_us)
    placed_us = box.box_clock.wall_us()
    service.set_legal_hold(1, True, by="sam")
    assert service.recording_info(1)["legal_hold"] and not service.recording_info(2)["legal_hold"]
    # When and by whom, which the call's page says beside the hold.
    info = service.recording_info(1)
    assert (info["legal_hold_since"], info["legal_hold_by"]) == (placed_us, "sam")
    assert service.recording_info(2)["legal_hold_since"] is None
    retention_form(box, people["ivan"], default_days="30")
    page = people["ivan"].get("/retention").get_data(as_text=True)
    assert "1 more is past its period but on legal hold" in page
    assert box.sweeper.sweep().deleted == 1
    assert [r["call_id"] for r in box.store.all()] == [1]
    service.set_legal_hold(1, False, by="sam")
    assert not service.recording_info(1)["legal_hold"]
    assert json.dumps(service.meta.held_calls()) == "[]"


def test_the_deletion_log_page_checks_only_the_entries_added_since_its_last_check(box, people, monkeypatch):
    """Each page of the log hashed all of it: 8.7 s a page with 594 445 entries; then its
    first visit in every ten minutes and every visit after a sweep did (8 to 13 s)."""
    from firmware.policy import deletions

    checked = []
    real = deletions._check_row
    monkeypatch.setattr(deletions, "_check_row", lambda row, *a: checked.append(row[0]) or real(row, *a))
    box.add_recordings([1, 2, 3])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 3
    audrey = people["audrey"]

    def page():
        return audrey.get("/retention/deletions").get_data(as_text=True)

    chains_checked(box)  # as the first visit starts it
    assert checked == [1, 2, 3]  # the first check is whole
    checked.clear()
    assert 'id="log-ok"' in page() and checked == []
    checked.clear()
    assert 'id="log-ok"' in page() and checked == []  # nothing new: nothing read
    box.add_recordings([4, 5])
    assert box.sweeper.sweep().deleted == 2
    assert "5 entries" in page() and checked == [4, 5]  # the sweep's two, chained on from 3
    # An entry added since and changed is seen at once; so is the last one checked
    # rewritten (with its hash: re-chained); an older one changed, at the next whole check.
    box.add_recordings([6])
    assert box.sweeper.sweep().deleted == 1
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.execute("DROP TRIGGER deletion_log_no_update")
    db.execute("UPDATE deletion_log SET line = 4 WHERE seq = 6")
    db.commit()
    checked.clear()
    text = page()
    assert 'id="log-broken"' in text and "entry 6 was modified" in text and checked == [6]
    db.execute("UPDATE deletion_log SET hash = ? WHERE seq = 6", ("0" * 64,))
    db.execute("UPDATE deletion_log SET line = 4 WHERE seq = 2")
    db.commit()
    db.close()
    text = page()
    assert "entry 6 no longer has the hash it was checked with" in text
    assert "entry 2 was modified" not in text
    box.clock.advance(11 * 60)
    checked.clear()
    page()
    box.web.wait_whole_checks()
    text = page()
    assert checked == [1, 2, 3, 4, 5, 6] and "entry 2 was modified" in text


def test_a_due_whole_check_of_the_deletion_log_runs_in_the_background(box, people, monkeypatch):
    """Its first visit in every ten minutes waited for the whole check (5 to 10 s on a box
    four years in service); the result shows once it ends, and stands."""
    from support.web import HeldWholeCheck

    box.add_recordings([1, 2, 3])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 3

    def page():
        return people["audrey"].get("/retention/deletions").get_data(as_text=True)

    chains_checked(box)
    assert 'id="log-ok"' in page()
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.execute("DROP TRIGGER deletion_log_no_update")
    db.execute("UPDATE deletion_log SET line = 4 WHERE seq = 2")
    db.commit()
    db.close()
    held = HeldWholeCheck(monkeypatch, box.services.retention)
    box.clock.advance(11 * 60)
    for _ in range(2):
        text = page()
        assert 'id="log-ok"' in text and 'id="whole-check-running"' in text
    assert held.in_request == 0 and held.started == 1
    held.release()
    box.web.wait_whole_checks()
    for _ in range(2):
        text = page()
        assert "entry 2 was modified" in text and 'id="whole-check-running"' not in text


def test_no_whole_check_starts_once_the_web_ui_stops_and_one_under_way_holds_nothing_up(
    box, people, monkeypatch
):
    from support.web import HeldWholeCheck

    box.add_recordings([1])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 1
    audrey = people["audrey"]
    chains_checked(box)
    assert 'id="log-ok"' in audrey.get("/retention/deletions").get_data(as_text=True)
    assert 'id="chain-ok"' in audrey.get("/audit").get_data(as_text=True)
    held = HeldWholeCheck(monkeypatch, box.services.audit)
    held_log = HeldWholeCheck(monkeypatch, box.services.retention)
    box.clock.advance(11 * 60)
    assert 'id="whole-check-running"' in audrey.get("/audit").get_data(as_text=True)
    checks = [t for t in threading.enumerate() if t.name.startswith("whole-check-")]
    assert len(checks) == 1 and checks[0].daemon  # the process's end does not wait for it
    box.web.stopping.set()
    text = audrey.get("/retention/deletions").get_data(as_text=True)
    assert 'id="log-ok"' in text and 'id="whole-check-running"' not in text
    assert held_log.started == held_log.in_request == 0
    held.release()
    held_log.release()
    box.web.wait_whole_checks()


def test_the_register_s_period_is_shown_and_set_here(box, people):
    """Closed requests are kept ``requests_closed_days`` (six years unless changed): the page
    says so and what a sweep now would delete of them; a period under a year is refused."""
    import datetime as dt

    from firmware.rights import ANSWERED, RightsRegister

    reg = RightsRegister(box.data_dir, box.services.cipher)
    try:
        for received, closed in ((dt.date(2019, 6, 3), dt.date(2019, 6, 20)), (dt.date(2024, 1, 8), None)):
            rid = reg.add(
                actor="sam",
                kind="access",
                received=received,
                requester="Ann",
                contact="ann@example.org",
                numbers="",
                details="a copy",
                today=received,
                wall_us=1,
            )
            if closed:
                reg.close_request(rid, status=ANSWERED, on=closed, outcome="sent", today=closed, wall_us=2)
    finally:
        reg.close()
    ivan = people["ivan"]
    page = ivan.get("/retention").get_data(as_text=True)
    line = re.search(r'<p id="preview-requests">(.*?)</p>', page, re.S).group(1)
    assert "2192 days after it was closed (six years)" in line and "<strong>1</strong> closed request" in line
    assert 'id="requests_closed_days" name="requests_closed_days"' in page and 'value="2192"' in page
    resp = retention_form(box, ivan, requests_closed_days="200")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-requests_closed_days"' in text and "from 365" in text
    assert load_config(box.data_dir).policy.retention.requests_closed_days == 2192
    assert retention_form(box, ivan, requests_closed_days="3000").status_code == 302
    assert load_config(box.data_dir).policy.retention.requests_closed_days == 3000
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.details["changed"] == {"requests_closed_days": 3000}
    # Back to the default: said in the trail too, though the file then leaves it out.
    assert retention_form(box, ivan, requests_closed_days="2192").status_code == 302
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.details["changed"] == {"requests_closed_days": 2192}
    assert "<strong>1</strong> closed request" in ivan.get("/retention").get_data(as_text=True)


def test_the_deletion_log_is_downloaded_whole_as_csv(box, people):
    """An inspector asks for a copy of what retention deleted: the log could only be read
    on the box, a hundred entries a page. The CSV holds every entry, oldest first, times
    in UTC, with the hashes that chain them; the download is audited."""
    box.add_recordings([1, 2, 3])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 3
    audrey = people["audrey"]
    page = audrey.get("/retention/deletions").get_data(as_text=True)
    assert 'id="deletions-csv" href="/retention/deletions.csv"' in page
    resp = audrey.get("/retention/deletions.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == "attachment; filename=deletions.csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    kept = box.sweeper.deletion_log(limit=10)[::-1]
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in kept] == [1, 2, 3]
    assert [r["hash"] for r in rows] == [e["hash"] for e in kept]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert rows[0]["deleted_at"] == "2026-04-11T09:00:00.000Z" and rows[0]["rule"] == "default"
    assert {r["call_id"] for r in rows} == {"1", "2", "3"} and "0207946" not in resp.get_data(as_text=True)
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.actor, exported.action, exported.target) == ("audrey", "export_list", "deletions")
    assert exported.details["rows"] == 3
    assert people["ivan"].get("/retention/deletions.csv").status_code == 200
    assert people["sam"].get("/retention/deletions.csv").status_code == 403


def test_the_deletion_log_csv_is_sent_as_it_is_read(box, people, monkeypatch):
    """The whole log is never held in memory to be sent (190 MB on a box four years in
    service, in a web UI of 384 MiB): the answer is a stream whose first rows leave after
    one batch of the log is read, the download audited and its headers set before then."""
    import functools

    import web.views
    from web.views import retention

    box.add_recordings([1, 2, 3, 4, 5])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 5
    # Batches and chunks of two entries stand for the view's thousand and five hundred.
    monkeypatch.setattr(retention, "_deletion_rows", functools.partial(retention._deletion_rows, batch=2))
    monkeypatch.setattr(web.views, "CSV_CHUNK_ROWS", 2)
    asked, real = [], box.sweeper.deletion_log
    box.sweeper.deletion_log = lambda **kw: asked.append(kw) or real(**kw)
    resp = people["audrey"].get("/retention/deletions.csv", buffered=False)
    assert resp.status_code == 200 and resp.is_streamed and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == "attachment; filename=deletions.csv"
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.action, exported.target, exported.details["rows"]) == ("export_list", "deletions", 5)
    sent = iter(resp.response)
    first = next(sent).decode()
    assert first.splitlines()[0].startswith("seq,") and len(first.splitlines()) == 3  # the head, two rows
    assert len(asked) == 1  # one batch of the log read when the first rows leave
    rest = b"".join(sent).decode()
    assert [int(r["seq"]) for r in csv.DictReader(io.StringIO(first + rest))] == [1, 2, 3, 4, 5]
    assert len(asked) == 3
    resp.close()


def test_the_deletion_log_csv_reads_the_log_a_batch_after_another(box, people):
    """A whole log of 600 000 entries read by OFFSET skipped ever more rows each batch;
    it is read on from the last entry, and one appended meanwhile is left to the next copy."""
    from web.views.retention import _deletion_rows

    box.add_recordings([1, 2, 3, 4, 5])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 5
    asked = []
    real = box.sweeper.deletion_log
    box.sweeper.deletion_log = lambda **kw: asked.append(kw) or real(**kw)
    assert [r[0] for r in _deletion_rows(box.sweeper, 4, batch=2)] == [1, 2, 3, 4]
    assert [kw["after_seq"] for kw in asked] == [0, 2]
    # A batch at a time as the file is sent, not the whole log before its first row: a
    # log of 190 MB in a web UI of 384 MiB (web.views.csv_download sends them so).
    asked.clear()
    rows = _deletion_rows(box.sweeper, 5, batch=2, since_us=0, until_us=2**62)
    assert next(rows)[0] == 1 and len(asked) == 1 and asked[0]["limit"] == 2
    assert [r[0] for r in rows] == [2, 3, 4, 5] and len(asked) == 3
    assert all((kw["since_us"], kw["until_us"]) == (0, 2**62) for kw in asked)


def test_a_field_with_a_label_is_named_by_its_label_s_words(box, people):
    """The closed requests' period was read "Days a closed request is kept": the field's
    aria-label hid its label, and with it "365 or more"; a voice user saying the words on
    the screen did not reach it. Only a table's cells, with no label, have an aria-label."""
    page = people["ivan"].get("/retention").get_data(as_text=True)
    labelled = re.findall(r'<label for="([^"]+)">', page)
    assert "requests_closed_days" in labelled and "default_days" in labelled
    for name in labelled:
        field = re.search(r'<(?:input|select)[^>]* id="%s"[^>]*>' % re.escape(name), page).group(0)
        assert "aria-label" not in field, field
    assert re.search(r'<input id="rule-0-days"[^>]* aria-label="Days of rule 1"', page)


def test_the_deletion_log_s_first_visit_answers_at_once_and_a_check_that_cannot_run_is_said(
    box, people, monkeypatch
):
    """Its first visit after the start waited for a whole check (8 to 13 s on a box four
    years in service); a background check that failed was only logged."""
    from support.web import HeldWholeCheck

    box.add_recordings([1, 2])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 2
    held = HeldWholeCheck(monkeypatch, box.services.retention)

    def page():
        return people["audrey"].get("/retention/deletions").get_data(as_text=True)

    text = page()
    assert 'id="log-unchecked"' in text and 'id="whole-check-running"' in text and 'id="log-ok"' not in text
    assert held.in_request == 0 and held.started == 1
    monkeypatch.setattr(
        box.sweeper.store.deletions, "_path", os.path.join(box.data_dir, "gone", "calls.db")
    )  # the whole check's own connection cannot open
    held.release()
    box.web.wait_whole_checks()
    text = page()
    assert 'id="whole-check-failed"' in text and 'id="log-ok"' not in text
    (alarm,) = [a for a in box.alarm_log.banner() if a["kind"] == "deletion_log_unverified"]
    assert alarm["cleared_us"] is None and alarm["message"].startswith(
        "the deletion log could not be checked ("
    )


def test_a_check_of_the_deletion_log_s_new_entries_that_cannot_run_is_said(box, people, monkeypatch):
    """The check of the entries added since the last one, made in the request, raising (a
    locked or damaged calls.db) answered the deletion log's page with a 500."""
    box.add_recordings([1, 2])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 2

    def page():
        return people["audrey"].get("/retention/deletions")

    page()
    box.web.wait_whole_checks()
    assert 'id="log-ok"' in page().get_data(as_text=True)
    real = box.services.retention.verify_after

    def verify_after(checked):
        if checked[0] != 0:  # not a whole check: none is due
            raise OSError(5, "Input/output error")
        return real(checked)

    monkeypatch.setattr(box.services.retention, "verify_after", verify_after)
    resp = page()
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="since-check-failed"' in text and "OSError: [Errno 5] Input/output error" in text
    assert 'id="log-ok"' not in text
    (alarm,) = [a for a in box.alarm_log.banner() if a["kind"] == "deletion_log_unverified"]
    assert alarm["cleared_us"] is None and alarm["message"].startswith(
        "the deletion log could not be checked (OSError"
    )


def test_the_deletion_log_csv_takes_the_days_an_auditor_asks_for(box, people):
    """The whole log of a box four years in service is a 190 MB file: an auditor could not
    take one month of it. Days in the box's zone, as the audit page's filter; a bad day is
    refused, naming it, and nothing is exported or audited."""
    box.add_recordings([1, 2])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 2  # on 2026-04-11
    box.box_clock.run_until(box.box_clock.now_us() + 2 * 86400 * 10**6)
    box.add_recordings([3])
    assert box.sweeper.sweep().deleted == 1  # on 2026-04-13
    audrey = people["audrey"]
    page = audrey.get("/retention/deletions").get_data(as_text=True)
    assert 'id="deletions-csv-period"' in page and 'action="/retention/deletions.csv"' in page

    def copy(query):
        resp = audrey.get("/retention/deletions.csv?" + query)
        assert resp.status_code == 200 and resp.is_streamed
        rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
        return resp, [r["call_id"] for r in rows], rows

    resp, calls, rows = copy("from=2026-04-13&to=2026-04-13")
    assert calls == ["3"] and rows[0]["deleted_at"].startswith("2026-04-13")
    assert (
        resp.headers["Content-Disposition"]
        == "attachment; filename=deletions_from_2026-04-13_to_2026-04-13.csv"
    )
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.action, exported.target) == ("export_list", "deletions")
    assert exported.details["rows"] == 1 and exported.details["filter"] == {
        "from": "2026-04-13",
        "to": "2026-04-13",
    }
    assert copy("to=2026-04-12")[1] == ["1", "2"]
    assert copy("from=2026-04-12")[1] == ["3"]
    assert copy("from=2026-04-01&to=2026-04-30")[1] == ["1", "2", "3"]
    assert copy("")[1] == ["1", "2", "3"]
    assert box.services.audit.entries(limit=1)[0].details["filter"] == "all entries"
    before = len(box.services.audit)
    for query, said in (
        ("from=2026-02-30", "2026-02-30 is not a day of the calendar."),
        ("to=April", "Enter a date as YYYY-MM-DD."),
        ("from=2026-04-13&to=2026-04-11", "The end date is before the start date."),
    ):
        resp = audrey.get("/retention/deletions.csv?" + query)
        assert resp.status_code == 400 and said in html.unescape(resp.get_data(as_text=True)), query
    assert len(box.services.audit) == before  # nothing exported, nothing audited


def test_the_dashboard_says_when_no_retention_period_is_set(box, people):
    """Only the checklist (installers and auditors) said no retention period was set: the
    dashboard said "Alarms: none" of a box keeping every recording for ever."""
    import dataclasses

    said = "No retention period is set: every recording is kept for ever."
    page = html.unescape(people["sam"].get("/").get_data(as_text=True))
    assert said in page[page.index('id="alarms"') :]
    assert any(a.startswith(said) for a in people["sam"].get("/api/health").get_json()["alarms"])
    config = box.config_store.get()
    retention = dataclasses.replace(config.policy.retention, default_days=90)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, retention=retention)))
    assert "No retention period" not in people["sam"].get("/").get_data(as_text=True)


def test_the_dashboard_says_a_reminder_once_when_its_alarm_is_on(box, people):
    """The reminders are alarms in the history too (firmware.alarmchecks.DateChecks): the
    health panel says each once, in its alarm's words with what to do, as it is now."""
    import dataclasses

    box.alarm_log.set("retention_unset", True)
    alarms = people["sam"].get("/api/health").get_json()["alarms"]
    assert [a for a in alarms if a.startswith("No retention period")] == [
        "No retention period is set: every recording is kept for ever. An installer sets how "
        "long recordings are kept on the Retention page."
    ]
    config = box.config_store.get()
    retention = dataclasses.replace(config.policy.retention, default_days=90)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, retention=retention)))
    # Set a moment ago: no longer asked for, before the next round clears its alarm.
    assert not [a for a in people["sam"].get("/api/health").get_json()["alarms"] if "retention" in a]


def test_a_rule_name_with_a_control_character_is_named_and_nothing_is_saved(box, people):
    """As a list of numbers' name on the Rules page: shown on the pages and in the audit
    trail as typed, one with a control character was saved."""
    config = os.path.join(box.data_dir, "config.json")
    before = open(config, "rb").read() if os.path.exists(config) else None
    entries = len(box.audit.entries(limit=1000))
    resp = retention_form(box, people["ivan"], **{"rule-0-name": "Sales\x1b[2J", "rule-0-days": "30"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-rule-0-name"' in page
    assert "Remove the control character U+001B" in page
    assert (open(config, "rb").read() if os.path.exists(config) else None) == before
    assert len(box.audit.entries(limit=1000)) == entries


def _unzip(resp, into):
    """The members of a downloaded zip written into ``into``; their names."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(resp.get_data())) as zf:
        zf.extractall(into)
        return zf.namelist()


def test_the_deletion_log_signed_by_the_box_verifies_off_the_box_and_an_edit_does_not(
    box, people, tmp_path, capsys
):
    """An auditor shows a regulator the deletion log: as a bare CSV nobody off the box could
    tell it was not edited. The zip holds the CSV and the box's signed statement of it
    (its SHA-256, the entries it holds, the last one's hash), which `linekeeper
    verify-statement` checks with the fingerprint alone; one changed cell and it fails.
    The download is audited as the CSV's is, with the key that signed it."""
    from firmware.cli import main
    from firmware.signing import load_signer

    signer = load_signer(box.data_dir)  # the recorder makes it at its first start
    box.add_recordings([1, 2, 3])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 3
    audrey = people["audrey"]
    page = audrey.get("/retention/deletions").get_data(as_text=True)
    assert 'id="deletions-zip" href="/retention/deletions.zip"' in page
    assert 'formaction="/retention/deletions.zip"' in page
    resp = audrey.get("/retention/deletions.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip" and resp.is_streamed
    assert resp.headers["Content-Disposition"] == "attachment; filename=deletions.zip"
    out = tmp_path / "auditor"
    assert sorted(_unzip(resp, out)) == ["deletions.csv", "deletions.csv.statement.json"]
    # The CSV is the one the plain download gives.
    assert (out / "deletions.csv").read_bytes() == audrey.get("/retention/deletions.csv").get_data()
    exported = box.services.audit.entries(limit=2)[1]
    assert (exported.actor, exported.action, exported.target) == ("audrey", "export_list", "deletions")
    assert exported.details["rows"] == 3 and exported.details["signed"] == signer.fingerprint
    statement = json.loads((out / "deletions.csv.statement.json").read_text())
    head = box.sweeper.deletion_log(limit=1)[0]
    assert statement["details"]["entries"] == 3 and statement["details"]["last_seq"] == 3
    assert (
        statement["details"]["last_hash"] == head["hash"]
        and statement["details"]["audit_seq"] == exported.seq
    )

    check = ["verify-statement", str(out / "deletions.csv.statement.json"), "--key", signer.fingerprint]
    capsys.readouterr()
    assert main(check) == 0
    said = capsys.readouterr().out
    assert "intact, signed by %s" % signer.fingerprint in said
    assert "a copy of the deletion log" in said and "it holds 3 entries, every entry, numbers 1 to 3" in said
    assert "deletions.csv beside it is the file it speaks of" in said

    copy = (out / "deletions.csv").read_bytes()
    (out / "deletions.csv").write_bytes(copy.replace(b",default,", b",regulated,", 1))
    assert main(check) == 2
    assert "is NOT the file it speaks of" in capsys.readouterr().err
    (out / "deletions.csv").write_bytes(copy)
    forged = dict(statement, file_sha256="0" * 64)
    (out / "deletions.csv.statement.json").write_text(json.dumps(forged))
    assert main(check) == 2
    assert "changed after it was signed" in capsys.readouterr().err


def test_a_period_of_the_deletion_log_is_signed_and_bad_days_or_no_key_change_nothing(box, people, tmp_path):
    """The days an auditor asks for are signed as the whole log is, and the statement says
    which days; a bad day is refused, naming it, and a box that cannot sign says so: neither
    exports nor audits anything."""
    audrey = people["audrey"]
    box.add_recordings([1, 2])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 2  # on 2026-04-11
    before = len(box.services.audit)
    resp = audrey.get("/retention/deletions.zip")
    assert resp.status_code == 503
    assert "cannot sign a copy of the deletion log" in html.unescape(resp.get_data(as_text=True))
    from firmware.signing import load_signer

    load_signer(box.data_dir)
    resp = audrey.get("/retention/deletions.zip?from=2026-02-30")
    assert resp.status_code == 400 and "2026-02-30 is not a day of the calendar." in html.unescape(
        resp.get_data(as_text=True)
    )
    assert len(box.services.audit) == before
    resp = audrey.get("/retention/deletions.zip?from=2026-04-11&to=2026-04-11")
    assert resp.status_code == 200
    assert (
        resp.headers["Content-Disposition"]
        == "attachment; filename=deletions_from_2026-04-11_to_2026-04-11.zip"
    )
    names = _unzip(resp, tmp_path / "out")
    assert "deletions_from_2026-04-11_to_2026-04-11.csv.statement.json" in names
    statement = json.loads((tmp_path / "out" / names[1]).read_text())
    assert statement["details"]["period"] == {"from": "2026-04-11", "to": "2026-04-11"}
    assert statement["details"]["first_seq"] == 1 and statement["details"]["entries"] == 2
    assert people["sam"].get("/retention/deletions.zip").status_code == 403


def test_a_signed_copy_cut_short_carries_no_statement(box, people, tmp_path, monkeypatch):
    """A read that fails part way ends the CSV with the row saying so, as the plain CSV
    does; the box does not sign a copy that is not whole."""
    from firmware.signing import load_signer
    from web.views import retention

    load_signer(box.data_dir)
    box.add_recordings([1, 2, 3])
    retention_form(box, people["ivan"], default_days="30")
    assert box.sweeper.sweep().deleted == 3

    def failing(*args, **kw):
        yield [1] + [""] * (len(retention.DELETION_COLUMNS) - 1)
        raise OSError("card error")

    monkeypatch.setattr(retention, "_deletion_rows", failing)
    resp = people["audrey"].get("/retention/deletions.zip")
    assert _unzip(resp, tmp_path / "out") == ["deletions.csv"]
    assert "EXPORT STOPPED EARLY" in (tmp_path / "out" / "deletions.csv").read_text()
    assert box.services.audit.entries(limit=1)[0].action == "export_list_cut"


def test_a_row_with_something_typed_but_no_name_or_category_is_refused_and_kept(box, people):
    """Days 30 and a line typed in the blank row, its name left empty: the page said
    "Saved" and the row came back empty, the rule dropped unsaid; so did minimum days of
    400 with the category left at "none". Each is refused beside the field it misses,
    with what was typed kept; a row left wholly empty is still left out."""
    ivan = people["ivan"]
    saved = {"default_days": "90", "rule-0-name": "sales", "rule-0-line": "1", "rule-0-days": "60"}
    assert retention_form(box, ivan, **saved).status_code == 302
    config = os.path.join(box.data_dir, "config.json")
    before = open(config, "rb").read()
    entries = len(box.audit.entries(limit=1000))
    blank = {
        "rule-2-name": "",
        "rule-2-line": "",
        "rule-2-direction": "",
        "rule-2-category": "",
        "rule-2-days": "",
    }
    cases = [
        (
            {"rule-1-line": "2", "rule-1-days": "30"},
            "rule-1-name",
            "A rule with a line and days needs a name",
        ),
        ({"rule-1-days": "30"}, "rule-1-name", "A rule with days needs a name"),
        ({"rule-1-direction": "out"}, "rule-1-name", "A rule with a direction needs a name"),
        ({"rule-1-category": "regulated"}, "rule-1-name", "A rule with a category needs a name"),
        (
            {"rule-1-line": "3", "rule-1-direction": "in", "rule-1-days": "7"},
            "rule-1-name",
            "A rule with a line, a direction and days needs a name",
        ),
        (
            {"minimum-0-category": "", "minimum-0-days": "400"},
            "minimum-0-category",
            "Minimum days need a category",
        ),
    ]
    for fields, field, words in cases:
        for action in ("save", "preview"):
            resp = retention_form(box, ivan, action=action, **saved, **blank, **fields)
            page = resp.get_data(as_text=True)
            assert resp.status_code == 400, (fields, action)
            m = re.search(r'id="error-%s" role="alert">([^<]+)<' % re.escape(field), page)
            assert m and m.group(1).startswith(words), (fields, re.findall(r'role="alert">([^<]+)<', page))
            assert 'id="retention-errors"' in page and 'id="saved"' not in page
            for name, value in fields.items():  # every value typed is on the page again
                if name.endswith(("-line", "-direction", "-category")) and value:
                    said = page.split('name="%s"' % name)[1].split("</select>")[0]
                    assert '<option value="%s" selected>' % value in said, (name, said)
                elif value:
                    assert re.search(r'name="%s"[^>]*value="%s"' % (re.escape(name), value), page), name
    assert open(config, "rb").read() == before
    assert len(box.audit.entries(limit=1000)) == entries
    assert [r.name for r in box.sweeper.settings.rules] == ["sales"]
    # Rows left wholly empty, as the page sends its blank ones, are still left out.
    empty_minimum = {"minimum-0-category": "", "minimum-0-days": ""}
    assert (
        retention_form(box, ivan, **dict(saved, default_days="91"), **blank, **empty_minimum).status_code
        == 302
    )
    assert [r.name for r in box.sweeper.settings.rules] == ["sales"] and not box.sweeper.settings.minimum_days


def test_clearing_a_saved_rules_name_or_a_minimums_category_still_removes_it(box, people):
    """The page says a saved rule is removed by its Remove box "(or clear its name)": a
    saved row (its hidden ``saved`` mark) whose name is cleared, the rest of it left as it
    was, is removed, not refused as a new row missing its name would be. So is a saved
    minimum whose category is set to none."""
    ivan = people["ivan"]
    saved = {
        "default_days": "90",
        "rule-0-name": "sales",
        "rule-0-line": "1",
        "rule-0-days": "60",
        "rule-1-name": "support",
        "rule-1-days": "30",
        "minimum-0-category": "regulated",
        "minimum-0-days": "400",
    }
    assert retention_form(box, ivan, **saved).status_code == 302
    assert [r.name for r in box.sweeper.settings.rules] == ["sales", "support"]
    page = ivan.get("/retention").get_data(as_text=True)
    for field in ("rule-0-saved", "rule-1-saved", "minimum-0-saved"):
        assert 'name="%s" value="1"' % field in page, field
    marks = {"rule-0-saved": "1", "rule-1-saved": "1", "minimum-0-saved": "1"}
    cleared = dict(saved, **{"rule-0-name": "", "minimum-0-category": ""})
    assert retention_form(box, ivan, **cleared, **marks).status_code == 302
    assert [r.name for r in box.sweeper.settings.rules] == ["support"]
    assert not box.sweeper.settings.minimum_days


def test_a_saved_rules_remove_box_removes_it_audited_as_clearing_its_name_does(box, people):
    """A rule was removed only by clearing its name. Each saved row now has a Remove box:
    ticked, the rule goes on save, whatever the rest of its row says, with the same
    `config_change` entry as clearing its name makes. A new row has no box."""
    ivan = people["ivan"]
    saved = {
        "default_days": "90",
        "rule-0-name": "sales",
        "rule-0-line": "1",
        "rule-0-days": "60",
        "rule-1-name": "support",
        "rule-1-days": "30",
    }
    marks = {"rule-0-saved": "1", "rule-1-saved": "1"}

    def removed(**how):
        post = functools.partial(retention_form, box, ivan)
        names = lambda: [r.name for r in box.sweeper.settings.rules]  # noqa: E731
        return audited_change(box, post, saved, dict(marks, **how), names, ["sales", "support"], ["support"])

    assert retention_form(box, ivan, **saved).status_code == 302
    page = ivan.get("/retention").get_data(as_text=True)
    assert_remove_boxes(page, "rule", "rule")
    cleared = removed(**{"rule-0-name": ""})
    assert removed(**{"rule-0-remove": "on"}) == cleared
    assert ("config_change", "policy.retention") in [e[:2] for e in cleared]
    # Ticked on a row whose days are not a number: removed, nothing to correct.
    assert removed(**{"rule-0-remove": "on", "rule-0-days": "sixty"}) == cleared


def test_a_saved_minimums_remove_box_removes_it_audited_as_clearing_its_category_does(box, people):
    """A minimum period was removed only by setting its category to none. Each saved row
    now has a Remove box, as a rule has: ticked, the minimum goes on save, whatever the
    rest of its row says, with the same `config_change` entry. A new row has no box."""
    ivan = people["ivan"]
    saved = {
        "default_days": "90",
        "minimum-0-category": "complaint",
        "minimum-0-days": "400",
        "minimum-1-category": "regulated",
        "minimum-1-days": "1827",
    }
    marks = {"minimum-0-saved": "1", "minimum-1-saved": "1"}

    def removed(**how):
        post = functools.partial(retention_form, box, ivan)
        days = lambda: box.sweeper.settings.minimum_days  # noqa: E731
        both, one = {"complaint": 400, "regulated": 1827}, {"regulated": 1827}
        return audited_change(box, post, saved, dict(marks, **how), days, both, one)

    assert retention_form(box, ivan, **saved).status_code == 302
    page = ivan.get("/retention").get_data(as_text=True)
    assert_remove_boxes(page, "minimum", "minimum period")
    cleared = removed(**{"minimum-0-category": ""})
    assert removed(**{"minimum-0-remove": "on"}) == cleared
    assert ("config_change", "policy.retention") in [e[:2] for e in cleared]
    # Ticked on a row whose days are not a number: removed, nothing to correct.
    assert removed(**{"minimum-0-remove": "on", "minimum-0-days": "four hundred"}) == cleared
    # Sent for a new row (no saved mark), the tick is ignored: the row is saved.
    new = {"minimum-2-category": "sales", "minimum-2-days": "30", "minimum-2-remove": "on"}
    assert retention_form(box, ivan, **dict(saved, **marks, **new)).status_code == 302
    assert box.sweeper.settings.minimum_days == {"complaint": 400, "regulated": 1827, "sales": 30}


def test_a_signed_copy_of_an_empty_deletion_log_says_it_was_empty(box, people, tmp_path, capsys):
    """Before anything was deleted, `linekeeper verify-statement` told an inspector "the log
    then ended at entry 0, hash " (no hash): it says the log was empty."""
    from firmware.cli import main
    from firmware.signing import load_signer

    signer = load_signer(box.data_dir)
    resp = people["audrey"].get("/retention/deletions.zip")
    assert resp.status_code == 200
    out = tmp_path / "auditor"
    _unzip(resp, out)
    capsys.readouterr()
    check = ["verify-statement", str(out / "deletions.csv.statement.json"), "--key", signer.fingerprint]
    assert main(check) == 0
    said = capsys.readouterr().out
    assert "it holds no entry (every entry)" in said
    assert "the log was then empty: nothing had been deleted" in said
    assert "entry 0" not in said


def test_the_callers_details_period_is_set_here_and_bad_input_is_refused(box, people):
    """Callers' details in the call log are kept as long as the call log unless a period is
    set: the form sets it (audited), refuses 0 or words naming the field, and clearing it
    keeps them again."""
    ivan = people["ivan"]
    page = ivan.get("/retention").get_data(as_text=True)
    assert '<label for="call_details_days">' in page and 'id="call-details-hint"' in page
    assert load_config(box.data_dir).policy.retention.call_details_days is None
    for bad, said in (("0", "from 1 to 36500"), ("ninety", "Enter a whole number")):
        resp = retention_form(box, ivan, call_details_days=bad)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and 'id="error-call_details_days"' in text and said in text
        assert load_config(box.data_dir).policy.retention.call_details_days is None
    assert retention_form(box, ivan, call_details_days="730").status_code == 302
    assert load_config(box.data_dir).policy.retention.call_details_days == 730
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.details["changed"] == {"call_details_days": 730}
    assert 'value="730"' in ivan.get("/retention").get_data(as_text=True)
    assert retention_form(box, ivan, call_details_days="").status_code == 302
    assert load_config(box.data_dir).policy.retention.call_details_days is None
    entry = [e for e in box.services.audit.entries(limit=50) if e.action == "config_change"][0]
    assert entry.details["changed"] == {"call_details_days": None}
