"""The audit trail's index of the calls that pages of the calls list and reports named
(``audit_calls``): a search by number read each such entry, newest first, at most 10 000 of
them, so on a busy box the older ones were not searched unless a period was given."""

import os
import sqlite3

import pytest

from firmware.clock import SimClock
from firmware.storage import audit as audit_module
from firmware.storage.audit import SCHEMA_VERSION, AuditLog
from firmware.storage.fieldseal import FieldCipher, FieldSealError

T0_US = 1_700_000_000_000_000
S = 1_000_000


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "audit.db", tmp_path / "audit.head"


@pytest.fixture
def cipher():
    return FieldCipher(os.urandom(32))


def page(log, actor, at_s, calls, target="calls", action="list_viewed"):
    return log.append(actor, action, target, {"rows": len(calls), "calls": calls}, T0_US + at_s * S)


def index_rows(paths):
    db = sqlite3.connect(paths[0])
    try:
        return db.execute("SELECT call_id, seq FROM audit_calls ORDER BY seq, call_id").fetchall()
    finally:
        db.close()


def as_schema_1(paths):
    """The trail as a release before the index left it: no index, user_version 1."""
    db = sqlite3.connect(paths[0])
    db.executescript("DROP TABLE audit_calls; DROP TABLE audit_calls_state; PRAGMA user_version = 1;")
    db.close()


def stored(paths):
    """How many entries the card holds (``len(log)`` would commit those waiting first)."""
    db = sqlite3.connect(paths[0])
    try:
        return db.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        db.close()


def tamper(paths, *statements):
    db = sqlite3.connect(paths[0])
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


@pytest.mark.slow
def test_an_entry_older_than_ten_thousand_others_naming_a_call_is_found(paths, cipher):
    """The page that showed call 7 is followed by 10 001 other pages (group commits, as the
    box writes its own bookkeeping): the search still finds it, and says nothing was left."""
    clock = SimClock(start_wall_us=T0_US)
    with AuditLog(*paths, cipher=cipher, clock=clock, commit_us=S) as log:
        first = page(log, "sam", 0, [3, 7])
        for i in range(10_001):
            log.append_soon("sue", "list_viewed", "calls", {"rows": 1, "calls": [100 + i]}, clock.wall_us())
        log.flush()
        assert len(log) == 10_002
        assert log.calls_index_pending() == 0
        assert log.naming_calls([7], T0_US, 10_000) == ({first.seq: [7]}, None)
        # A page shown since is found with it, newest first or not: by its seq.
        later = log.append("sue", "list_viewed", "calls", {"rows": 1, "calls": [7]}, clock.wall_us())
        assert log.naming_calls([7, 10_050], T0_US, 1) == (
            {first.seq: [7], later.seq: [7], 10_050 - 100 + 2: [10_050]},
            None,
        )
        assert log.verify() == []


def test_the_index_holds_what_each_kind_named_and_only_those_kinds(paths, cipher):
    with AuditLog(*paths, cipher=cipher) as log:
        a = page(log, "sam", 1, [9, 1, 9])
        page(log, "sam", 2, [9], target="phonebook")  # not a list of calls
        r = page(log, "sue", 3, [4], target="report")
        d = page(log, "sam", 4, [5, True, "6", 2**70], target=None, action="report")
        log.append("sam", "playback", "9", {"calls": [9]}, T0_US)
        assert index_rows(paths) == [(1, a.seq), (9, a.seq), (4, r.seq), (5, d.seq)]
        assert log.naming_calls([9], 0, 100) == ({a.seq: [9, 9]}, None)
        assert log.naming_calls([9], 0, 100, actor="sue") == ({}, None)
        assert log.naming_calls([4, 5], 0, 100, [("report", None)]) == ({d.seq: [5]}, None)
        assert log.naming_calls([4, 5], 0, 100, since_us=T0_US + 4 * S) == ({d.seq: [5]}, None)
        assert log.naming_calls([4, 5], 0, 100, until_us=T0_US + 4 * S) == ({r.seq: [4]}, None)


def test_a_failed_write_leaves_neither_the_entries_nor_their_index_rows(paths, cipher):
    """One transaction: an index row the card refuses takes its entry (and the group it was
    committed with) back too, and an entry refused leaves no index row behind."""
    clock = SimClock(start_wall_us=T0_US)
    with AuditLog(*paths, cipher=cipher, clock=clock, commit_us=S) as log:
        kept = page(log, "sam", 0, [1])
        tamper(
            paths,
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_calls WHEN new.call_id = 66"
            " BEGIN SELECT RAISE(ABORT, 'the card refused the write'); END",
        )
        log.append_soon("system", "recording_created", "recording:1", {}, clock.wall_us())
        with pytest.raises(sqlite3.Error, match="refused"):
            log.append("sam", "list_viewed", "calls", {"rows": 2, "calls": [5, 66]}, clock.wall_us())
        assert stored(paths) == 1 and index_rows(paths) == [(1, kept.seq)]
        tamper(
            paths,
            "DROP TRIGGER refuse",
            "CREATE TRIGGER refuse BEFORE INSERT ON audit WHEN new.actor = 'sue'"
            " BEGIN SELECT RAISE(ABORT, 'the card refused the write'); END",
        )
        with pytest.raises(sqlite3.Error, match="refused"):
            log.append("sue", "list_viewed", "calls", {"rows": 1, "calls": [5]}, clock.wall_us())
        assert stored(paths) == 1 and index_rows(paths) == [(1, kept.seq)]
        tamper(paths, "DROP TRIGGER refuse")
        log.flush()  # the group's entry, left waiting, is written now
        assert stored(paths) == 2 and log.verify() == []


def test_an_old_trail_is_migrated_and_indexed_once_the_key_is_there(paths, cipher):
    """Schema 1 -> 2: the trail opens without the key (the web UI may start first) and
    indexes what is written from then on; the entries from before are indexed only with the
    key (their details are sealed), and until then a search reads them one by one, as before
    the index, and says where it stopped, never "nobody" from the index alone."""
    with AuditLog(*paths, cipher=cipher) as log:
        old = [page(log, "sam", i, [7, i]) for i in range(5)]
    as_schema_1(paths)

    with AuditLog(*paths) as log:  # no key: migrated all the same, nothing indexed
        assert log._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert log.calls_index_pending() == 5
        with pytest.raises(FieldSealError):
            log.build_calls_index()
        assert log.calls_index_pending() == 5 and index_rows(paths) == []

    with AuditLog(*paths, cipher=cipher) as log:
        assert log.calls_index_pending() == 5
        new = page(log, "sue", 10, [7])
        assert index_rows(paths) == [(7, new.seq)]
        # The index for the new one, the old ones read newest first, 2 at most: cut, and said.
        assert log.naming_calls([7], T0_US, 2) == (
            {new.seq: [7], old[4].seq: [7], old[3].seq: [7]},
            T0_US + 3 * S,
        )
        assert log.naming_calls([7], T0_US, 100)[1] is None
        assert log.verify() == []  # (the part indexed checks out; the rest is still to do)
        progress = []
        assert log.build_calls_index(batch=2, progress=lambda *a: progress.append(a)) == 5
        assert progress == [(2, 5), (4, 5), (5, 5)]
        assert log.calls_index_pending() == 0
        assert log.naming_calls([7], T0_US, 2) == ({e.seq: [7] for e in old + [new]}, None)
        assert log.build_calls_index() == 0
        assert log.verify() == []
    # Opened again, nothing is migrated twice (a full card must still open).
    with AuditLog(*paths, cipher=cipher) as log:
        assert log.calls_index_pending() == 0


def test_a_build_cut_short_goes_on_where_it_stopped(paths, cipher, monkeypatch):
    with AuditLog(*paths, cipher=cipher) as log:
        old = [page(log, "sam", i, [7]) for i in range(4)]
    as_schema_1(paths)
    with AuditLog(*paths, cipher=cipher) as log:

        def stop(done, total):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            log.build_calls_index(batch=3, progress=stop)
        assert log.calls_index_pending() == 1
        assert [seq for _, seq in index_rows(paths)] == [e.seq for e in old[1:]]
        assert log.build_calls_index(batch=3) == 1
        assert [seq for _, seq in index_rows(paths)] == [e.seq for e in old]


def test_a_build_writes_a_few_thousand_rows_a_transaction_and_stops_between_them(paths, cipher, monkeypatch):
    """A read of 20 000 entries' worth of seq went in one transaction, whatever it named: a
    trail of calls-list pages (50 calls each) held every append, the power failure's too,
    for seconds. Now at most ``rows_max`` rows a transaction, and ``stop`` ends the build
    between two of them, the rest left for the next."""
    with AuditLog(*paths, cipher=cipher) as log:
        old = [page(log, "sam", i, list(range(i * 50, i * 50 + 50))) for i in range(6)]
    as_schema_1(paths)
    with AuditLog(*paths, cipher=cipher) as log:
        writes = []
        real = log._index_rows
        monkeypatch.setattr(
            log, "_index_rows", lambda named, after: (writes.append(len(named)), real(named, after))
        )
        assert log.build_calls_index(rows_max=100, stop=lambda: len(writes) == 2) == 6
        assert writes == [100, 100]  # two entries each; the third transaction not begun
        assert log.calls_index_pending() == old[1].seq  # those up to it not in yet
        assert {seq for _, seq in index_rows(paths)} == {e.seq for e in old[2:]}
        assert log.build_calls_index(rows_max=100) == old[1].seq
        assert writes == [100, 100, 100]  # the last with the read's mark: all entries in
        assert log.calls_index_pending() == 0
        assert len(index_rows(paths)) == 300


def test_a_trail_an_older_release_wrote_to_after_the_index_is_indexed_again(paths, cipher):
    """An older release (after a rollback) writes entries without index rows and sets the
    schema back to 1: opened again, the whole trail is to be indexed again."""
    with AuditLog(*paths, cipher=cipher) as log:
        a = page(log, "sam", 1, [7])
    tamper(paths, "DELETE FROM audit_calls", "PRAGMA user_version = 1")
    with AuditLog(*paths, cipher=cipher) as log:
        assert log.calls_index_pending() == a.seq
        log.build_calls_index()
        assert log.naming_calls([7], 0, 100) == ({a.seq: [7]}, None)


def test_verify_rebuilds_the_index_and_reports_a_row_deleted_or_added(paths, cipher):
    with AuditLog(*paths, cipher=cipher) as log:
        a = page(log, "sam", 1, [7, 8])
        b = page(log, "sam", 2, [9])
        c = log.append("sam", "playback", "7", {"line": 1}, T0_US + 3 * S)
        assert log.verify() == []
        tamper(paths, "DELETE FROM audit_calls WHERE call_id = 7")
        assert log.naming_calls([7], 0, 100) == ({}, None)  # hidden from the search...
        assert log.verify() == [  # ...and found by verify
            "audit entry %d named call 7, missing from the index of the calls named: index rows "
            "were deleted (a search by number would not find the entry)" % a.seq
        ]
        tamper(
            paths,
            "INSERT INTO audit_calls VALUES (7, %d)" % a.seq,
            "INSERT INTO audit_calls VALUES (7, %d)" % b.seq,
            "INSERT INTO audit_calls VALUES (5, %d)" % c.seq,
            "INSERT INTO audit_calls VALUES (6, %d)" % (c.seq + 1),
        )
        # A search opens each entry the index gives: one that does not name the call is not a hit.
        assert log.naming_calls([7, 5], 0, 100) == ({a.seq: [7]}, None)
        assert log.verify() == [
            "the index of the calls named says entry %d named call 7, which its details do not: "
            "index rows were added" % b.seq,
            "the index of the calls named says entry %d named call 5, which its details do not: "
            "index rows were added" % c.seq,
            "the index of the calls named says entry %d named call 6, and no such entry is in "
            "the trail: an index row was added" % (c.seq + 1),
        ]
        assert log.calls_index_unchecked is None


def test_verify_without_the_key_checks_the_chain_and_says_the_index_was_not_checked(paths, cipher):
    with AuditLog(*paths, cipher=cipher) as log:
        page(log, "sam", 1, [7])
    tamper(paths, "DELETE FROM audit_calls")
    with AuditLog(*paths, readonly=True) as log:
        assert log.verify() == []
        assert "no key" in log.calls_index_unchecked
    with AuditLog(*paths, readonly=True, cipher=cipher) as log:
        assert len(log.verify()) == 1 and log.calls_index_unchecked is None


def test_an_old_trail_opened_read_only_is_searched_one_by_one(paths, cipher):
    with AuditLog(*paths, cipher=cipher) as log:
        a = page(log, "sam", 1, [7])
    as_schema_1(paths)
    with AuditLog(*paths, readonly=True, cipher=cipher) as log:
        assert log.calls_index_pending() == a.seq
        assert log.naming_calls([7], 0, 100) == ({a.seq: [7]}, None)
        assert log.build_calls_index() == 0
        assert log.verify() == [] and "no index" in log.calls_index_unchecked


def test_the_schema_number_is_two(paths):
    assert audit_module.SCHEMA_VERSION == 2
    with AuditLog(*paths) as log:
        assert log._db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert log.calls_index_pending() == 0
