"""Retention acceptance: rules, legal hold, minimum periods, preview = sweep, the deletion log."""

import os
import sqlite3

import pytest

from firmware.policy.retention import RetentionSettings

from support.retention import settings


def test_rules_by_line_direction_and_category_first_match_wins(shelf):
    shelf.sweeper.update_settings(
        settings(
            default_days=365,
            rules=[
                {"name": "sales-in", "line": 1, "direction": "in", "days": 30},
                {"name": "complaints", "category": "complaint", "days": None},
                {"name": "line-2", "line": 2, "days": 60},
            ],
        )
    )
    old_sales = shelf.add_call(40, line=1, direction="in")
    new_sales = shelf.add_call(20, line=1, direction="in")
    out_line1 = shelf.add_call(40, line=1, direction="out")  # default: 365 days
    complaint = shelf.add_call(400, line=2, tags=["complaint"])  # kept forever
    line2 = shelf.add_call(61, line=2, direction="out")
    ancient = shelf.add_call(366, line=3)
    preview = shelf.sweeper.preview()
    assert {c.call_id: c.rule for c in preview} == {
        old_sales: "sales-in",
        line2: "line-2",
        ancient: "default",
    }
    result = shelf.sweeper.sweep()
    assert result.deleted == 3 and result.refused is None
    assert shelf.recorded() == sorted([new_sales, out_line1, complaint])


def test_legal_hold_overrides_every_deletion(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    held = shelf.add_call(100, hold=True)
    free = shelf.add_call(100)
    assert [c.call_id for c in shelf.sweeper.preview()] == [free]
    result = shelf.sweeper.sweep()
    assert result.deleted == 1 and result.held == 1
    assert shelf.recorded() == [held]
    # Cleared, the hold no longer protects it: the next sweep deletes it.
    shelf.meta.set_legal_hold(held, False, "sam", shelf.clock.wall_us())
    shelf.advance(3600)
    assert shelf.sweeper.sweep().deleted == 1
    assert shelf.recorded() == []


def test_a_hold_placed_after_the_preview_still_wins(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    call = shelf.add_call(100)
    doomed = shelf.sweeper.preview()
    shelf.meta.set_legal_hold(call, True, "sam", shelf.clock.wall_us())
    assert shelf.sweeper._destroy(doomed, "retention", shelf.clock.wall_us()) == 0
    assert shelf.recorded() == [call]


def test_a_five_year_minimum_survives_a_30_day_rule(shelf):
    shelf.sweeper.update_settings(
        settings(
            default_days=30,
            rules=[{"name": "short", "line": 1, "days": 30}],
            minimum_days={"regulated": 1827},
        )
    )
    regulated = shelf.add_call(1826, tags=["regulated"])  # a day short of five years
    regulated_old = shelf.add_call(1828, tags=["regulated", "sales"])
    plain = shelf.add_call(31)
    decision = shelf.sweeper.settings.decide(1, "in", {"regulated"})
    assert (decision.rule, decision.days, decision.floor_category) == ("short", 1827, "regulated")
    assert shelf.sweeper.sweep().deleted == 2
    assert shelf.recorded() == [regulated]
    assert {e["call_id"] for e in shelf.sweeper.deletion_log()} == {regulated_old, plain}


def test_preview_count_equals_what_the_sweep_then_deletes(shelf):
    shelf.sweeper.update_settings(
        settings(
            default_days=90,
            rules=[{"name": "line-3", "line": 3, "days": 10}],
            minimum_days={"regulated": 1827},
        )
    )
    for i in range(40):
        shelf.add_call(
            days_ago=i * 5,
            line=1 + i % 4,
            direction="in" if i % 3 else "out",
            tags=["regulated"] if i % 7 == 0 else (),
            hold=i % 11 == 0,
        )
    preview = shelf.sweeper.preview()
    counts = shelf.sweeper.counts(preview)
    assert len(preview) > 10 and set(counts) == {"default", "line-3"}
    result = shelf.sweeper.sweep()
    assert result.deleted == len(preview)
    assert result.by_rule == counts
    assert sorted(e["recording_id"] for e in shelf.sweeper.deletion_log(limit=1000)) == sorted(
        c.recording_id for c in preview
    )
    assert shelf.sweeper.preview() == []


def test_no_period_configured_deletes_nothing(shelf):
    assert RetentionSettings().default_days is None
    shelf.add_call(5000)
    assert shelf.sweeper.preview() == []
    assert shelf.sweeper.sweep().deleted == 0


def test_every_sweep_is_audited_with_its_counts(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    shelf.add_call(31)
    shelf.add_call(31, hold=True)
    shelf.sweeper.sweep()
    (entry,) = shelf.sweeps()
    assert entry.actor == "system"
    assert entry.details["deleted"] == 1 and entry.details["held"] == 1
    assert entry.details["by_rule"] == {"default": 1}
    assert entry.details["deletion_log"]["seq"] == 1


def test_the_sweep_runs_by_itself_on_the_clock(shelf):
    shelf.sweeper.update_settings(settings(default_days=30, sweep_interval_min=60))
    call = shelf.add_call(29.99)  # 30 days old in about 15 minutes
    shelf.sweeper.start()
    shelf.advance(59 * 60)
    assert shelf.recorded() == [call] and shelf.sweeps() == []
    shelf.advance(61)
    assert shelf.recorded() == [] and len(shelf.sweeps()) == 1
    shelf.advance(3600)
    assert len(shelf.sweeps()) == 2


def test_the_deletion_log_proves_the_deletion_without_personal_data(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    call = shelf.add_call(31, line=2, direction="out", tags=["sales"], number="01632960999")
    row = shelf.store.for_call(call)
    shelf.sweeper.sweep()
    (entry,) = shelf.sweeper.deletion_log()
    assert entry["recording_id"] == row["id"] and entry["call_id"] == call
    assert (entry["line"], entry["direction"], entry["categories"]) == (2, "out", ["sales"])
    assert entry["rule"] == "default" and entry["reason"] == "retention"
    assert entry["file_sha256"] == row["sha256"] and entry["duration_s"] == 60.0
    assert entry["deleted_at"] == shelf.clock.wall_us()
    assert entry["call_date"] == "2026-01-30"
    text = repr(entry)
    assert "01632960999" not in text and "ACME" not in text
    assert shelf.sweeper.verify() == []


def test_a_calls_deletions_and_a_periods_are_found_by_index(shelf):
    """A report read the whole deletion log for each of its calls: a box that had deleted
    for a year or two (600 000 entries) could not make a month's report. (Its speed is
    make bench's; here, that the log is searched by index, not scanned.)"""
    db = shelf.db
    for sql in (
        "SELECT 1 FROM deletion_log d WHERE d.call_id = 5",
        "SELECT line, rule FROM deletion_log WHERE deleted_at >= 1 AND deleted_at < 2",
    ):
        plan = " ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)


def test_the_deletion_log_detects_an_edit_a_removal_and_a_truncation(shelf, tmp_path):
    shelf.sweeper.update_settings(settings(default_days=30))
    for _ in range(3):
        shelf.add_call(31)
    shelf.sweeper.sweep()
    assert shelf.sweeper.verify() == []
    path = shelf.data_dir + "/calls.db"

    def tamper(sql):
        db = sqlite3.connect(path)
        db.execute("DROP TRIGGER IF EXISTS deletion_log_no_update")
        db.execute("DROP TRIGGER IF EXISTS deletion_log_no_delete")
        db.execute(sql)
        db.commit()
        db.close()

    tamper("UPDATE deletion_log SET rule = 'legal-request' WHERE seq = 2")
    problems = shelf.sweeper.verify()
    assert any("entry 2 was modified" in p for p in problems), problems

    tamper("UPDATE deletion_log SET rule = 'default' WHERE seq = 2")
    assert shelf.sweeper.verify() == []
    tamper("DELETE FROM deletion_log WHERE seq = 3")  # the end: only the audit anchor shows it
    problems = shelf.sweeper.verify()
    assert any("reached entry 3" in p for p in problems), problems
    tamper("DELETE FROM deletion_log WHERE seq = 1")
    assert any("entries 1-1 are missing" in p or "missing" in p for p in shelf.sweeper.verify())


@pytest.mark.parametrize("how", ["verify_after", "verify"])
def test_a_whole_check_of_the_deletion_log_does_not_hold_the_store_while_it_reads(shelf, monkeypatch, how):
    """The web UI makes the whole check in the background, but it held the store's lock
    throughout (seconds on a box years in service): the deletion log's page, and every
    other read of the store, waited for it all the same. ``verify`` (the sweeper's whole
    check, the retention service's) held it too: the recorder's sealing waited for it."""
    import threading

    from firmware.policy import deletions
    from firmware.storage.audit import GENESIS_HASH

    shelf.sweeper.update_settings(settings(default_days=30))
    for _ in range(3):
        shelf.add_call(31)
    assert shelf.sweeper.sweep().deleted == 3
    reading, go, held = threading.Event(), threading.Event(), []
    real = deletions._check_row

    def check_row(row, *rest):
        reading.set()
        go.wait()
        return real(row, *rest)

    monkeypatch.setattr(deletions, "_check_row", check_row)
    found = []
    if how == "verify":
        check = shelf.sweeper.verify
        expected = []
    else:
        check = lambda: shelf.sweeper.verify_after((0, GENESIS_HASH))  # noqa: E731
        expected = ([], shelf.store.deletions.head())
    whole = threading.Thread(target=lambda: found.append(check()))
    whole.start()
    reading.wait()
    held.append(shelf.store._lock.acquire(blocking=False))  # the check is part way through
    if held[0]:
        shelf.store._lock.release()
    go.set()
    whole.join()
    assert held == [True]
    assert found == [expected]


def test_a_check_of_the_entries_since_the_last_still_checks_the_anchor(shelf, tmp_path):
    """verify_after (the deletion log's page between whole checks) reads the entries after
    the one a check reached; the head the audit trail anchored is still checked."""
    from firmware.storage.audit import GENESIS_HASH

    shelf.sweeper.update_settings(settings(default_days=30))
    for _ in range(3):
        shelf.add_call(31)
    shelf.sweeper.sweep()
    problems, reached = shelf.sweeper.verify_after((0, GENESIS_HASH))
    assert problems == [] and reached == shelf.store.deletions.head() and reached[0] == 3
    assert shelf.sweeper.verify_after(reached) == ([], reached)
    shelf.add_call(31)
    shelf.sweeper.sweep()
    problems, reached = shelf.sweeper.verify_after(reached)
    assert problems == [] and reached[0] == 4
    db = sqlite3.connect(shelf.data_dir + "/calls.db")
    db.execute("DROP TRIGGER deletion_log_no_delete")
    db.execute("DELETE FROM deletion_log WHERE seq = 4")
    db.commit()
    db.close()
    assert shelf.sweeper.verify_after(reached)[0] == [
        "deletion log entry 4, checked before, is gone: entries were deleted",
        "the audit trail says the deletion log reached entry 4, but it ends at 3: entries were removed",
    ]


def test_a_whole_check_hashes_each_entry_as_stored_without_parsing_it(shelf, monkeypatch):
    """Parsing each entry and writing it as canonical JSON again was most of a whole check
    (600 000 entries: 7 s); the stored values are canonical as they are (a list of
    categories but for its spaces). A row whose text is not canonical (its categories
    spaced out otherwise) is still checked the long way, as before."""
    from firmware.policy import deletions

    shelf.sweeper.update_settings(settings(default_days=30))
    shelf.add_call(31, tags=["sales"])
    shelf.add_call(31, tags=["sales", "support"], direction="out")
    shelf.add_call(31, line=3)
    shelf.sweeper.sweep()
    assert [e["categories"] for e in shelf.sweeper.deletion_log()] == [[], ["sales", "support"], ["sales"]]
    calls = []
    real = deletions.entry_hash
    monkeypatch.setattr(deletions, "entry_hash", lambda *a: calls.append(a[1]["seq"]) or real(*a))
    assert shelf.sweeper.verify() == [] and calls == []
    db = sqlite3.connect(shelf.data_dir + "/calls.db")
    db.execute("DROP TRIGGER deletion_log_no_update")
    db.execute("""UPDATE deletion_log SET categories = '[ "sales" ]' WHERE seq = 1""")
    db.commit()
    assert shelf.sweeper.verify() == [] and calls == [1]
    db.execute("UPDATE deletion_log SET line = 2 WHERE seq = 3")
    db.commit()
    db.close()
    (problem,) = shelf.sweeper.verify()
    assert problem == "deletion log entry 3 was modified: its content does not match its hash"


def test_an_erased_recordings_archived_copy_is_said_to_be_erased_too(shelf):
    """With an archive, the log's last entry of the call is the archive's (reason
    'archive', rule 'erasure request'): the call page, the export's refusal and the
    subject access bundle said the archived copy was deleted 'by the retention rule
    "erasure request"', and no word of the erasure."""
    from firmware.calls.calllog import deleted_recordings
    from firmware.policy import deletions

    call = shelf.add_call(3)
    assert shelf.sweeper.erase(call, "sam", "erasure request ref 1") == 1
    (entry,) = shelf.sweeper.deletion_log()
    with shelf.store.transaction() as db:  # as the archive's replicator logs its copy's deletion
        deletions.append(db, dict({k: entry[k] for k in deletions.FIELDS if k != "seq"}, reason="archive"))
    gone = deleted_recordings(shelf.db, [call])[call]
    assert gone["reason"] == "erasure"
    said = [deletions.describe(e, "today") for e in shelf.sweeper.deletions_of_call(call)]
    assert said == [
        "Its recording was erased on today, on request (the audit trail says who asked and why).",
        "Its archived copy was erased on today, on request.",
    ]


def test_an_erasure_without_its_audit_entry_is_reported(shelf, monkeypatch):
    """Who asked for an erasure and why is in the trail before anything is destroyed; a
    deletion-log erasure the trail has no `delete` entry of is a problem for verify."""
    call = shelf.add_call(3)
    shelf.sweeper.erase(call, "sam", "erasure request ref 2")
    assert shelf.sweeper.verify() == []
    (asked,) = shelf.audit.entries(action="delete")
    sweep = shelf.audit.entries(action="retention_sweep")[0]
    assert asked.seq < sweep.seq and sweep.details["trigger"] == "erasure"  # asked, then done
    monkeypatch.setattr(shelf.audit, "targets_of", lambda action: set())
    (problem,) = shelf.sweeper.verify()
    assert "erased with no `delete` entry in the audit trail" in problem


def test_a_report_counts_an_erased_recording_once_with_an_archive(shelf):
    """With an archive, the archived copy's deletion was counted as a second retention
    deletion of the same recording."""
    from firmware.policy import deletions
    from firmware.reports.compute import build_report
    from firmware.reports.period import parse_period

    call = shelf.add_call(3)
    shelf.sweeper.erase(call, "sam", "erasure request ref 3")
    (entry,) = shelf.sweeper.deletion_log()
    with shelf.store.transaction() as db:  # as the archive's replicator logs its copy's deletion
        deletions.append(db, dict({k: entry[k] for k in deletions.FIELDS if k != "seq"}, reason="archive"))
    day = shelf.clock.wall_us() // 1_000_000
    import datetime

    today = datetime.datetime.fromtimestamp(day, datetime.UTC).date()
    report = build_report(os.path.join(shelf.data_dir, "calls.db"), parse_period(today, today))
    assert report["box"]["deletions"] == 1 and report["deletions_by_rule"] == {"erasure request": 1}


def test_an_erasure_refused_after_it_was_asked_says_so_in_the_trail(shelf, monkeypatch):
    """A hold placed between the request's entry and the destruction: the trail kept an
    erasure asked for, with nothing to say it was not done."""
    import pytest

    from firmware.policy.sweeper import ErasureRefused

    call = shelf.add_call(3)
    monkeypatch.setattr(shelf.store, "destroy_rows", lambda entries: [])  # a hold won meanwhile
    with pytest.raises(ErasureRefused):
        shelf.sweeper.erase(call, "sam", "erasure request ref 4")
    asked, refused = shelf.audit.entries(action="delete", newest_first=False)
    assert asked.details["reason"] == "erasure request ref 4" and "refused" in refused.details
    assert shelf.recorded() == [call]
