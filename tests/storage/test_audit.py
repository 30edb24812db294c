import hashlib
import json
import os
import sqlite3
import threading

import pytest

from firmware.errors import AuditError, LinekeeperError
from firmware.storage import audit as audit_module
from firmware.storage.audit import ACTIONS, GENESIS_HASH, AuditLog

T0_US = 1_700_000_000_000_000


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "audit.db", tmp_path / "audit.head"


@pytest.fixture
def log(paths):
    with AuditLog(*paths) as log:
        yield log


def fill(log, n=5):
    return [
        log.append("alice", "playback", "call-%d" % i, {"line": i % 2, "ms": i * 10}, T0_US + i)
        for i in range(n)
    ]


def tamper(paths, *statements):
    """Edit the database behind the log's back, as someone with the SD card would."""
    db = sqlite3.connect(paths[0])
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for statement in statements:
        db.execute(*statement) if isinstance(statement, tuple) else db.execute(statement)
    db.commit()
    db.close()


def rows(paths):
    db = sqlite3.connect(paths[0])
    try:
        return db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    finally:
        db.close()


def test_append_chains_entries(log, paths):
    entries = fill(log, 3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    assert log.verify() == []
    assert log.head() == (3, entries[2].hash)
    assert json.loads(paths[1].read_text()) == {"seq": 3, "hash": entries[2].hash}
    assert len(log) == 3


def test_a_new_head_file_is_made_in_one_commit_of_the_file_system(log, paths, monkeypatch):
    """The first head (and its copy): a new file renamed into place, its temporary file
    not synced on its own (fsutil.atomic_write one_commit, docs/journal.md)."""
    writes = []
    real = audit_module.atomic_write
    monkeypatch.setattr(
        audit_module,
        "atomic_write",
        lambda *a, **kw: writes.append((os.path.basename(a[0]), kw)) or real(*a, **kw),
    )
    entries = fill(log, 2)
    assert writes == [("audit.head.prev", {"one_commit": True}), ("audit.head", {"one_commit": True})]
    assert json.loads(paths[1].read_text()) == {"seq": 2, "hash": entries[1].hash}


def test_hash_is_sha256_of_prev_hash_and_canonical_entry(log):
    entry = log.append("bob", "export", "call-9", {"format": "wav", "ünï": [1, 2.5, None]}, T0_US)
    body = (
        '{"action":"export","actor":"bob","details":{"format":"wav","\\u00fcn\\u00ef":[1,2.5,null]},'
        '"seq":1,"target":"call-9","wall_us":%d}' % T0_US
    )
    assert entry.hash == hashlib.sha256(bytes(32) + body.encode()).hexdigest()


def test_details_are_stored_canonically(log, paths):
    log.append("system", "retention_sweep", None, {"b": 1, "a": {"z": [], "y": "x"}}, T0_US)
    assert rows(paths)[0][5] == '{"a":{"y":"x","z":[]},"b":1}'


def test_entries_newest_first_with_paging_and_filter(log):
    fill(log, 5)
    log.append("alice", "login", None, {}, T0_US + 100)
    log.append("bob", "login_failed", None, {"reason": "password"}, T0_US + 200)
    assert [e.seq for e in log.entries(limit=3)] == [7, 6, 5]
    assert [e.seq for e in log.entries(limit=3, offset=3)] == [4, 3, 2]
    assert [e.seq for e in log.entries(limit=10, newest_first=False)] == list(range(1, 8))
    (failed,) = log.entries(limit=10, action="login_failed")
    assert (failed.actor, failed.target, failed.details) == ("bob", None, {"reason": "password"})
    assert [e.seq for e in log.entries(limit=10, action="playback")] == [5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    "args, message",
    [
        (("alice", "listen", "call-1", {}), "unknown audit action"),
        (("", "playback", "call-1", {}), "actor"),
        (("alice", "playback", 7, {}), "target"),
        (("alice", "playback", None, []), "dict"),
        (("alice", "playback", None, {"x": float("nan")}), "cannot hold"),
        (("alice", "playback", None, {"x": [float("inf")]}), "cannot hold"),
        (("alice", "playback", None, {1: "one"}), "keys must be text"),
        (("alice", "playback", None, {"x": {1, 2}}), "plain JSON"),
    ],
)
def test_bad_entries_are_refused_and_not_recorded(log, args, message):
    with pytest.raises(AuditError, match=message):
        log.append(*args, wall_us=T0_US)
    with pytest.raises(AuditError, match="wall_us"):
        log.append("alice", "playback", None, {}, 1.5)
    assert len(log) == 0 and log.verify() == []


def test_all_documented_actions_are_accepted(log):
    for action in sorted(ACTIONS):
        log.append("system", action, None, {}, T0_US)
    assert len(ACTIONS) == 72 and log.verify() == []
    assert issubclass(AuditError, LinekeeperError) and issubclass(AuditError, ValueError)


def test_log_is_append_only_for_ordinary_sql(log, paths):
    fill(log, 2)
    db = sqlite3.connect(paths[0])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET actor = 'eve' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")
    db.close()


def test_durable_settings(log, paths):
    fill(log, 1)
    db = sqlite3.connect(paths[0])
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_reopened_log_continues_the_chain(paths):
    with AuditLog(*paths) as log:
        first = fill(log, 2)
    with AuditLog(*paths) as log:
        entry = log.append("alice", "logout", None, {}, T0_US + 9)
        assert entry.seq == 3 and entry.prev_hash == first[-1].hash
        assert log.verify() == []


# --- tampering -------------------------------------------------------------------------------


def test_edited_entry_is_reported(log, paths):
    fill(log)
    tamper(paths, "UPDATE audit SET target = 'call-99' WHERE seq = 3")
    assert log.verify() == ["audit entry 3 was modified: its content does not match its hash"]


def test_edited_details_are_reported(log, paths):
    fill(log)
    tamper(paths, """UPDATE audit SET details = '{"line":0,"ms":0}' WHERE seq = 2""")
    assert log.verify() == ["audit entry 2 was modified: its content does not match its hash"]


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(log, paths):
    entries = fill(log)
    forged = audit_module.entry_hash(
        entries[1].hash, 3, T0_US + 2, "mallory", "playback", "call-2", {"line": 0, "ms": 20}
    )
    tamper(paths, ("UPDATE audit SET actor = 'mallory', hash = ? WHERE seq = 3", (forged,)))
    problems = log.verify()
    assert problems == [
        "audit entry 4 does not follow the entry before it (inserted, reordered, "
        "or an earlier entry was rewritten)"
    ]


def test_deleted_middle_entry_is_reported(log, paths):
    fill(log)
    tamper(paths, "DELETE FROM audit WHERE seq = 2")
    assert log.verify() == ["audit entry 2 was missing before entry 3 (deleted?)"]


def test_deleted_last_entry_is_reported_through_the_head(log, paths):
    fill(log)
    tamper(paths, "DELETE FROM audit WHERE seq >= 4")
    assert log.verify() == ["audit log ends at entry 3 but its head says 5: entries 4-5 were deleted"]


def test_emptied_log_is_reported(log, paths):
    fill(log)
    tamper(paths, "DELETE FROM audit")
    assert log.verify() == ["audit log ends at entry 0 but its head says 5: entries 1-5 were deleted"]


def test_reordered_entries_are_reported(log, paths):
    fill(log)
    two, three = rows(paths)[1], rows(paths)[2]
    swap = (
        "UPDATE audit SET wall_us=?, actor=?, action=?, target=?, details=?, prev_hash=?, hash=? WHERE seq=?"
    )
    tamper(paths, (swap, three[1:] + (2,)), (swap, two[1:] + (3,)))
    problems = log.verify()
    assert any("entry 2" in p for p in problems) and any("entry 3" in p for p in problems)


def test_inserted_entry_is_reported(log, paths):
    """Renumber the tail and slip a well-formed, correctly hashed entry in at seq 3."""
    entries = fill(log)
    forged = audit_module.entry_hash(
        entries[1].hash,
        3,
        T0_US + 2,
        "mallory",
        "delete",
        "call-1",
        {},
    )
    tamper(
        paths,
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit SET seq = seq - 99 WHERE seq >= 103",
        (
            "INSERT INTO audit VALUES (3, ?, 'mallory', 'delete', 'call-1', '{}', ?, ?)",
            (T0_US + 2, entries[1].hash, forged),
        ),
    )
    problems = log.verify()
    assert (
        "audit entry 4 does not follow the entry before it (inserted, reordered, "
        "or an earlier entry was rewritten)" in problems
    )
    assert any("head" in p for p in problems)


def test_appended_entries_behind_the_logs_back_are_reported(log, paths):
    entries = fill(log, 2)
    prev = entries[-1].hash
    statements = []
    for seq in (3, 4):
        digest = audit_module.entry_hash(prev, seq, T0_US, "mallory", "login", None, {})
        statements.append(
            (
                "INSERT INTO audit VALUES (?, ?, 'mallory', 'login', NULL, '{}', ?, ?)",
                (seq, T0_US, prev, digest),
            )
        )
        prev = digest
    tamper(paths, *statements)
    assert log.verify() == [
        "audit head says entry 2 but the log goes on to 4: entries were added behind the log's back"
    ]


def test_changed_head_file_is_reported(log, paths):
    fill(log)
    paths[1].write_text(json.dumps({"seq": 5, "hash": "ab" * 32}))
    assert log.verify() == ["audit entry 5 does not match the head's hash: the log was rewritten"]


@pytest.mark.parametrize("content", ["", "{", '{"seq": 5}', '["x"]'])
def test_damaged_head_file_is_reported(log, paths, content):
    fill(log)
    paths[1].write_text(content)
    (paths[1].parent / (paths[1].name + ".prev")).write_text(content)  # its copy too
    (problem,) = log.verify()
    assert "head file" in problem and "damaged" in problem


def test_the_head_is_rewritten_in_place_after_its_copy(log, paths, monkeypatch):
    """No new file, rename or directory sync per commit (docs/audit-writes.md); the
    file stays one JSON document for any reader, an older release's included."""
    copy = paths[1].parent / (paths[1].name + ".prev")
    fill(log, 1)
    inodes = (paths[1].stat().st_ino, copy.stat().st_ino)
    order = []
    real = audit_module.overwrite_in_place
    monkeypatch.setattr(
        audit_module,
        "overwrite_in_place",
        lambda p, d, **kw: order.append((p, len(d))) or real(p, d, **kw),
    )
    replaced = []
    monkeypatch.setattr(audit_module, "atomic_write", lambda *a, **kw: replaced.append(a))
    entries = fill(log, 3)
    assert replaced == [] and (paths[1].stat().st_ino, copy.stat().st_ino) == inodes
    # Only the first sector of each is written: the card gets one sector, not a block.
    assert order == [(str(copy), 512), (str(paths[1]), 512)] * 3
    assert paths[1].stat().st_size == audit_module.HEAD_BYTES == 4096
    assert json.loads(paths[1].read_bytes()) == {"seq": 4, "hash": entries[-1].hash}
    assert copy.read_bytes() == paths[1].read_bytes()


@pytest.mark.parametrize("torn", ["", '{"seq": 3, "ha', "\0" * 512])
def test_a_head_a_power_cut_tore_is_read_from_its_copy(log, paths, torn):
    entries = fill(log, 3)
    paths[1].write_text(torn)
    assert log.verify() == []
    assert log.head() == (3, entries[-1].hash)
    assert audit_module.read_head(paths[1]) == (3, entries[-1].hash)
    # A head that reads (written by an older release, say) is the head, copy or not.
    paths[1].write_text(json.dumps({"seq": 3, "hash": entries[-1].hash}) + "\n")
    assert log.verify() == [] and log.head() == (3, entries[-1].hash)


def test_a_head_an_older_release_wrote_is_replaced_once(log, paths):
    fill(log, 1)
    paths[1].write_text(json.dumps({"seq": 1, "hash": log.last()[1]}) + "\n")  # unpadded
    old_inode = paths[1].stat().st_ino
    fill(log, 1)
    assert paths[1].stat().st_ino != old_inode and paths[1].stat().st_size == audit_module.HEAD_BYTES
    inode = paths[1].stat().st_ino
    fill(log, 1)
    assert paths[1].stat().st_ino == inode and log.verify() == []


def test_a_reader_waits_for_a_head_being_written(log, paths):
    """Rewritten in place, a head read meanwhile could be half old, half new: readers
    share the appenders' lock."""
    import fcntl

    fill(log, 2)
    got = []
    with open(str(paths[1]) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process appending
        reader = threading.Thread(target=lambda: got.append(audit_module.read_head(paths[1])))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and got == []
    reader.join(5)
    assert got and got[0][0] == 2


def test_missing_head_file_is_reported(log, paths):
    fill(log)
    paths[1].unlink()
    os.unlink(str(paths[1]) + audit_module.HEAD_COPY_SUFFIX)
    assert log.verify() == ["audit head file %s is missing but the log has 5 entries" % paths[1]]


def test_a_head_missing_beside_its_copy_is_read_from_the_copy(log, paths):
    """A power cut as the head was first made: its copy is made just before it."""
    fill(log)
    head = log.head()
    paths[1].unlink()
    assert log.head() == head and log.verify() == []
    paths[1].parent.joinpath(paths[1].name + audit_module.HEAD_COPY_SUFFIX).write_text("{}")
    problems = log.verify()
    assert problems and "damaged" in problems[0]


def test_power_cut_between_commit_and_head_is_not_tampering(log, paths, monkeypatch):
    """The head is written after the commit; losing that one write is the only lag allowed.
    (A power cut there leaves the card as a head write the card refused does.)"""
    fill(log, 3)

    def power_cut(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(audit_module, "write_head_file", power_cut)
    log.append("alice", "export", "call-3", {}, T0_US + 3)  # committed: only the head lags
    monkeypatch.undo()
    assert log.head()[0] == 3 and len(log) == 4
    assert log.verify() == []
    log.append("alice", "logout", None, {}, T0_US + 4)
    assert log.head()[0] == 5 and log.verify() == []


def test_a_head_the_card_refused_is_written_by_the_next_commit_or_the_close(paths, monkeypatch, caplog):
    """A card that refuses the head's write after a commit: the entries are committed (the
    append does not fail), the error is logged, and the head follows with the next commit,
    or at the close, so that a box stopped cleanly has a head covering every entry."""

    def refused(*args, **kwargs):
        raise OSError(5, "Input/output error")

    for then in ("next commit", "close"):
        for path in paths:
            if path.exists():
                path.unlink()
        log = AuditLog(*paths)
        fill(log, 3)
        monkeypatch.setattr(audit_module, "write_head_file", refused)
        log.append("alice", "export", "call-3", {}, T0_US + 3)
        monkeypatch.undo()
        assert "the card refused the audit trail's head" in caplog.text
        assert log.head()[0] == 3 and len(log) == 4
        if then == "next commit":
            log.append("alice", "logout", None, {}, T0_US + 4)
            assert log.head()[0] == 5
        log.close()
        with AuditLog(*paths) as again:
            assert again.head()[0] == len(again)
            assert again.verify(stopped_cleanly=True) == []


# --- concurrency -------------------------------------------------------------------------------


def test_appends_from_many_threads_form_one_chain(log):
    errors = []

    def worker(n):
        try:
            for i in range(10):
                log.append("user%d" % n, "playback", "call-%d" % i, {"i": i}, T0_US + i)
        except Exception as err:  # reported below, not swallowed
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    verdicts = [log.verify() for _ in range(3)]  # verifying while appends go on
    for t in threads:
        t.join()
    assert errors == []
    assert verdicts == [[], [], []]
    assert len(log) == 80 and log.head()[0] == 80
    assert log.verify() == []


def test_two_logs_on_one_database_share_the_chain(paths):
    """Two processes (here: two connections) appending to the same trail."""
    with AuditLog(*paths) as a, AuditLog(*paths) as b:

        def worker(log, actor):
            for i in range(20):
                log.append(actor, "login", None, {"i": i}, T0_US + i)

        threads = [
            threading.Thread(target=worker, args=(a, "a")),
            threading.Thread(target=worker, args=(b, "b")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(a) == 40 and a.head()[0] == 40
        assert a.verify() == [] and b.verify() == []


# --- group commit (docs/audit-writes.md) --------------------------------------------------------

GROUP_US = 1_000_000


@pytest.fixture
def clock():
    from firmware.clock import SimClock

    return SimClock(start_wall_us=T0_US)


@pytest.fixture
def grouped(paths, clock):
    with AuditLog(*paths, clock=clock, commit_us=GROUP_US) as log:
        yield log


def committed(paths):
    return [r[0] for r in rows(paths)]


def soon(log, clock, action="recording_created", n=1):
    for _ in range(n):
        log.append_soon("system", action, "recording:%d" % clock.now_us(), {}, clock.wall_us())


def test_entries_close_together_are_one_commit_and_one_head(grouped, paths, clock, monkeypatch):
    heads = []
    write = audit_module.write_head_file
    monkeypatch.setattr(audit_module, "write_head_file", lambda *a, **k: heads.append(a[0]) or write(*a, **k))
    soon(grouped, clock)
    clock.run_until(400_000)
    soon(grouped, clock, "recording_sealed")
    assert committed(paths) == [] and grouped.waiting == 2
    clock.run_until(GROUP_US)  # a second after the first: both go in one transaction
    assert committed(paths) == [1, 2] and grouped.commits == 1 and len(heads) == 1
    head = json.loads(paths[1].read_text())
    assert head["seq"] == 2 and head["group_us"] == GROUP_US
    assert grouped.verify() == []


def test_an_append_takes_what_waits_with_it(grouped, paths, clock):
    soon(grouped, clock, n=3)
    entry = grouped.append("alice", "playback", "call-1", {}, clock.wall_us())
    assert entry.seq == 4 and committed(paths) == [1, 2, 3, 4] and grouped.commits == 1
    assert grouped.waiting == 0 and grouped.head() == (4, entry.hash)


def test_reads_and_close_write_what_waits(paths, clock):
    log = AuditLog(*paths, clock=clock, commit_us=GROUP_US)
    soon(log, clock)
    assert len(log) == 1  # a read in the same process sees it (it is committed first)
    soon(log, clock)
    assert [e.seq for e in log.entries()] == [2, 1]
    soon(log, clock)
    log.close()  # the clean stop: nothing left in memory, the head exact
    assert committed(paths) == [1, 2, 3] and json.loads(paths[1].read_text())["seq"] == 3


def test_a_group_never_spans_more_than_its_window(grouped, paths, clock):
    soon(grouped, clock)
    # An entry whose wall time lies further than the window from the group's: the group
    # is committed first, so that no commit spans more than group_us.
    grouped.append_soon("system", "recording_sealed", "recording:x", {}, clock.wall_us() + GROUP_US + 1)
    assert committed(paths) == [1] and grouped.waiting == 1


def test_a_group_has_at_most_group_entries_max(grouped, paths, clock):
    soon(grouped, clock, n=audit_module.GROUP_ENTRIES_MAX)
    assert len(committed(paths)) == audit_module.GROUP_ENTRIES_MAX and grouped.waiting == 0


def test_without_a_clock_append_soon_commits_at_once(log, paths):
    log.append_soon("system", "recording_created", "recording:1", {}, T0_US)
    assert committed(paths) == [1] and "group_us" not in json.loads(paths[1].read_text())


def test_a_refused_group_commit_waits_in_memory_and_is_tried_again(grouped, paths, clock, monkeypatch):
    soon(grouped, clock)

    def refused(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(grouped, "_commit", refused)
    clock.run_until(GROUP_US)
    assert grouped.waiting == 1 and committed(paths) == []
    monkeypatch.undo()
    clock.run_until(2 * GROUP_US)
    assert committed(paths) == [1] and grouped.waiting == 0


def crash_before_head(log, monkeypatch):
    """The power goes between a group's commit and its head write."""

    def power_cut(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(audit_module, "write_head_file", power_cut)
    log.flush()  # the group is committed; the head's failure is logged, not raised
    monkeypatch.undo()


def test_a_crash_between_a_group_and_its_head_is_not_tampering(grouped, paths, clock, monkeypatch):
    soon(grouped, clock)
    grouped.flush()
    soon(grouped, clock, n=5)  # one group of five: the head stays at entry 1
    crash_before_head(grouped, monkeypatch)
    assert json.loads(paths[1].read_text())["seq"] == 1 and len(rows(paths)) == 6
    assert grouped.verify() == []
    # A web process's log (no group commit) reading the same card agrees.
    with AuditLog(*paths) as other:
        assert other.verify() == []
        # After a clean stop the box's head covers every group: then it is tampering.
        assert other.verify(stopped_cleanly=True) == [
            "audit head says entry 1 but the log goes on to 6: entries were added behind the "
            "log's back (the box stopped cleanly: its head covers every group)"
        ]


def forge_after_head(paths, walls):
    """Append well-chained entries with these wall times behind the log's back."""
    last = rows(paths)[-1]
    prev, seq = last[7], last[0]
    statements = []
    for wall in walls:
        seq += 1
        digest = audit_module.entry_hash(prev, seq, wall, "mallory", "login", None, {})
        statements.append(
            (
                "INSERT INTO audit VALUES (?, ?, 'mallory', 'login', NULL, '{}', ?, ?)",
                (seq, wall, prev, digest),
            )
        )
        prev = digest
    tamper(paths, *statements)


def test_entries_after_the_head_spanning_more_than_a_group_are_reported(grouped, paths, clock):
    soon(grouped, clock, n=2)
    grouped.flush()
    forge_after_head(paths, [T0_US, T0_US + GROUP_US + 1])
    assert grouped.verify() == [
        "audit head says entry 2 but the log goes on to 4: entries were added behind the "
        "log's back (more than one group commit after the head)"
    ]


def test_more_entries_after_the_head_than_a_group_holds_are_reported(grouped, paths, clock):
    soon(grouped, clock)
    grouped.flush()
    forge_after_head(paths, [T0_US] * (audit_module.GROUP_ENTRIES_MAX + 1))
    (problem,) = grouped.verify()
    assert "entries were added behind the log's back" in problem


def test_a_head_cannot_claim_a_window_longer_than_the_longest_a_box_uses(paths, clock):
    with AuditLog(*paths, clock=clock, commit_us=10**12) as log:
        assert log.commit_us == audit_module.GROUP_SPAN_MAX_US
    head = {"seq": 0, "hash": GENESIS_HASH, "group_us": 10**12}
    assert audit_module._group_us(head) == audit_module.GROUP_SPAN_MAX_US


def test_a_grouped_trail_cut_short_fails_verify(grouped, paths, clock):
    soon(grouped, clock, n=3)
    clock.run_until(GROUP_US)
    soon(grouped, clock, n=3)
    grouped.flush()
    assert grouped.verify() == []
    # Truncated: the last group deleted.
    tamper(paths, "DELETE FROM audit WHERE seq > 3")
    assert grouped.verify() == ["audit log ends at entry 3 but its head says 6: entries 4-6 were deleted"]


def test_a_grouped_trail_rewritten_fails_verify(grouped, paths, clock):
    soon(grouped, clock, n=3)
    grouped.flush()
    tamper(paths, "UPDATE audit SET target = 'recording:other' WHERE seq = 2")
    assert "audit entry 2 was modified: its content does not match its hash" in grouped.verify()


def test_a_log_without_group_commit_keeps_the_boxs_window_in_the_head(grouped, paths, clock):
    """The web's log commits each entry at once but writes the box's window into the head:
    the box's next group may still be cut off from its head by a crash."""
    soon(grouped, clock)
    grouped.flush()
    with AuditLog(*paths) as web:
        web.append("alice", "playback", "call-1", {}, T0_US)
    assert json.loads(paths[1].read_text())["group_us"] == GROUP_US


def test_signed_groups_verify_and_a_forged_group_does_not(paths, clock, monkeypatch):
    from firmware.signing import Signer

    signer = Signer(bytes(range(32)), "test")
    with AuditLog(*paths, signer=signer, clock=clock, commit_us=GROUP_US) as log:
        soon(log, clock, n=3)
        log.flush()
        soon(log, clock, n=2)
        crash_before_head(log, monkeypatch)
        assert log.verify(public_key=signer.public_key) == []
        forge_after_head(paths, [T0_US])  # well chained, within the window, but not signed
        assert log.verify(public_key=signer.public_key) == [
            "audit entry 6 is not signed by the box's key (added or rewritten without it)"
        ]


# --- a head the card refused until the stop ----------------------------------------------------


def refused_until_close(paths, signer, n=3):
    """A signed log whose head the card refused from its second entry until it closed:
    the head says 1, the log goes on to ``n + 1``."""
    with AuditLog(*paths, signer=signer) as log:
        fill(log, 1)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(
                audit_module, "write_head_file", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full"))
            )
            fill(log, n)
            log.close()


def test_a_head_the_card_refused_until_the_stop_is_restored_when_every_entry_is_the_boxs(paths):
    from firmware.signing import Signer

    signer = Signer(bytes(range(32)), "test")
    refused_until_close(paths, signer)
    with AuditLog(*paths, signer=signer) as log:
        assert log.head()[0] == 1
        problem = "audit head says entry 1 but the log goes on to 4: entries were added behind the log's back"
        assert log.verify(public_key=signer.public_key) == [problem]
        assert log.restore_head() == (1, 4, False)
        assert log.head() == (4, rows(paths)[-1][7])
        assert log.verify(public_key=signer.public_key, stopped_cleanly=True) == []
        assert log.restore_head() is None  # nothing lags now


def test_entries_someone_else_added_after_the_head_are_not_restored(paths):
    from firmware.signing import Signer

    signer = Signer(bytes(range(32)), "test")
    with AuditLog(*paths, signer=signer) as log:
        fill(log, 2)
    forge_after_head(paths, [T0_US, T0_US + 1])  # chained, but not signed by the box
    with AuditLog(*paths, signer=signer) as log:
        assert log.restore_head() is None
        assert log.head()[0] == 2
        problems = log.verify(public_key=signer.public_key)
        assert any("entries were added behind the log's back" in p for p in problems)
    # Signed by another key: the same.
    other = Signer(bytes(range(1, 33)), "test")
    refused_until_close(paths, other, n=2)
    with AuditLog(*paths, signer=signer) as log:
        assert log.restore_head() is None


def test_a_head_a_crash_left_one_group_behind_is_caught_up_at_the_start(paths, clock, monkeypatch):
    """verify allows a crash's group after the head, but not once the box has stopped
    cleanly: a run after the crash that appended nothing would otherwise leave the
    lag to its clean stop, and verify would then report the group as forged."""
    from firmware.signing import Signer

    signer = Signer(bytes(range(32)), "test")
    with AuditLog(*paths, signer=signer, clock=clock, commit_us=GROUP_US) as log:
        soon(log, clock)
        log.flush()
        soon(log, clock, n=3)
        crash_before_head(log, monkeypatch)
        assert log.head()[0] == 1 and log.verify(public_key=signer.public_key) == []
        assert log.verify(public_key=signer.public_key, stopped_cleanly=True) != []
        log._head_due = False  # the power is gone: its close writes nothing more
    with AuditLog(*paths, signer=signer, clock=clock, commit_us=GROUP_US) as log:
        assert log.restore_head() == (1, 4, True)  # what a crash leaves
    with AuditLog(*paths, signer=signer) as log:  # the run appended nothing, and stopped cleanly
        assert log.verify(public_key=signer.public_key, stopped_cleanly=True) == []


def test_a_missing_or_damaged_head_is_not_restored(paths):
    from firmware.signing import Signer

    signer = Signer(bytes(range(32)), "test")
    with AuditLog(*paths, signer=signer) as log:
        fill(log, 3)
    paths[1].unlink()
    for copy in paths[1].parent.glob("audit.head*"):
        if copy.name != "audit.head.lock":
            copy.unlink()
    with AuditLog(*paths, signer=signer) as log:
        assert log.restore_head() is None
        assert log.head() is None


def test_a_cut_before_the_first_head_leaves_one_entry_that_verifies_and_is_caught_up(paths):
    from firmware.signing import Signer

    signer = Signer(bytes(range(32)), "test")
    with AuditLog(*paths, signer=signer) as log:
        fill(log, 1)
    for head in (paths[1], paths[1].parent / (paths[1].name + audit_module.HEAD_COPY_SUFFIX)):
        head.unlink()  # the power went after the first commit, before the head's copy
    with AuditLog(*paths, signer=signer) as log:
        assert log.head() is None
        assert log.verify(public_key=signer.public_key) == []
        assert log.restore_head(stopped_cleanly=True) == (0, 1, True)
        assert log.head()[0] == 1 and log.verify(public_key=signer.public_key, stopped_cleanly=True) == []
    # Two entries and no head: not what that cut leaves.
    with AuditLog(*paths, signer=signer) as log:
        fill(log, 1)
    for head in (paths[1], paths[1].parent / (paths[1].name + audit_module.HEAD_COPY_SUFFIX)):
        head.unlink()
    with AuditLog(*paths, signer=signer) as log:
        assert log.restore_head() is None
        assert log.verify(public_key=signer.public_key) == [
            "audit head file %s is missing but the log has 2 entries" % paths[1]
        ]


def _plan(log, **filters):
    where, args = log._where(
        filters.get("action"), None, filters.get("actor"), filters.get("since_us"), filters.get("until_us")
    )
    rows = log._db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM audit %s ORDER BY seq DESC LIMIT 101" % where, args
    ).fetchall()
    return " ".join(r[-1] for r in rows)


def test_the_filters_by_who_and_when_read_an_index_not_the_whole_trail(log):
    """The audit page's filters by user and by date: on a trail of a box years in service
    a user who left, or a week long ago, read every entry for each page."""
    fill(log, 3)
    assert "USING INDEX audit_actor" in _plan(log, actor="sam")
    assert "USING INDEX audit_actor" in _plan(log, actor="sam", action="login")
    assert "USING INDEX audit_wall" in _plan(log, since_us=T0_US, until_us=T0_US + 86_400_000_000)


def test_entries_after_a_seq_go_on_oldest_first_under_the_filters(log):
    fill(log, 5)
    log.append("bob", "login", None, {}, T0_US + 100)
    log.append("alice", "login", None, {}, T0_US + 200)
    assert [e.seq for e in log.entries(limit=2, after_seq=0)] == [1, 2]
    assert [e.seq for e in log.entries(limit=2, after_seq=2)] == [3, 4]
    assert [e.seq for e in log.entries(limit=10, after_seq=3, actor="alice")] == [4, 5, 7]
    assert [e.seq for e in log.entries(limit=10, after_seq=5, action="login")] == [6, 7]
    assert log.entries(limit=10, after_seq=7) == []


def test_entries_before_a_seq_go_on_newest_first_under_the_filters(log):
    fill(log, 5)
    log.append("bob", "login", None, {}, T0_US + 100)
    log.append("alice", "login", None, {}, T0_US + 200)
    assert [e.seq for e in log.entries(limit=2, before_seq=8)] == [7, 6]
    assert [e.seq for e in log.entries(limit=2, before_seq=6)] == [5, 4]
    assert [e.seq for e in log.entries(limit=10, before_seq=7, actor="alice")] == [5, 4, 3, 2, 1]
    assert [e.seq for e in log.entries(limit=10, before_seq=7, action="login")] == [6]
    assert log.entries(limit=10, before_seq=1) == []


def test_a_whole_check_hashes_the_details_as_stored_without_parsing_them(log, paths, monkeypatch):
    """Parsing each entry's details and writing them again was two thirds of a whole check
    (1.5 million entries: 12 s); the stored text is canonical already. One that is not
    (the same details spaced out) is still checked the long way, as before."""
    fill(log, 4)
    log.append("alice", "login", None, {"address": "192.0.2.1", "note": 'caf\u00e9 "x"'}, T0_US + 9)
    calls = []
    real = audit_module.entry_hash
    monkeypatch.setattr(audit_module, "entry_hash", lambda *a: calls.append(a[1]) or real(*a))
    assert log.verify() == [] and calls == []
    tamper(paths, "UPDATE audit SET details = replace(details, ':', ': ') WHERE seq = 2")
    assert log.verify() == [] and calls == [2]
    tamper(paths, "UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    assert log.verify() == ["audit entry 3 was modified: its content does not match its hash"]


def test_the_entries_of_a_period_are_read_through_the_indexes(paths):
    """My line counts a line's playbacks of the last 90 days on each view: read so, not
    the whole trail of a box years in service (1.5 M entries), and with the clock once set
    back (a later entry written earlier) the period's entries all the same."""
    from firmware.storage.fieldseal import FieldCipher, FieldSealError

    day = 86_400_000_000
    with AuditLog(*paths, cipher=FieldCipher(os.urandom(32))) as log:
        log.append("sam", "playback", "1", {"line": 4}, T0_US)  # before the period
        log.append("sam", "playback", "2", {"line": 4}, T0_US + 10 * day)
        log.append("sam", "login", "sam", {}, T0_US + 11 * day)  # not asked for
        log.append("sue", "export", "3", {"line": 1}, T0_US + 30 * day)  # the clock ahead here
        log.append("sam", "disclosure", "disclosure:1", {"calls": [2]}, T0_US + 12 * day)  # set back
        log.append("sam", "playback", "4", {"line": 4}, T0_US + 40 * day)  # after the period
        statements = []
        log._db.set_trace_callback(statements.append)
        found = log.in_period(["playback", "export", "disclosure"], T0_US + day, T0_US + 40 * day)
        log._db.set_trace_callback(None)
        assert sorted((e.target, e.actor, e.details) for e in found) == [
            ("2", "sam", {"line": 4}),
            ("3", "sue", {"line": 1}),
            ("disclosure:1", "sam", {"calls": [2]}),
        ]
        assert log.in_period([], T0_US, T0_US + 40 * day) == []
        assert log.in_period(["playback"], T0_US + 50 * day, T0_US + 60 * day) == []
        (sql,) = [s for s in statements if s.startswith("SELECT")]
        plan = " ".join(r[-1] for r in log._db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "SEARCH audit USING INDEX audit_action (action=? AND seq>?)" in plan
        assert "SEARCH audit USING COVERING INDEX audit_wall" in plan
        assert "SCAN audit" not in plan
    with AuditLog(*paths) as log:  # sealed, and no key: said, never read as nothing
        with pytest.raises(FieldSealError):
            log.in_period(["playback"], T0_US, T0_US + 40 * day)


def test_naming_calls_reads_the_entries_the_index_does_not_cover_newest_first_and_bounded(paths):
    """The entries that named one of some calls, for the audit page's search by number, in a
    trail from before the index of the calls named (tests/storage/test_audit_calls_index.py),
    until it is built: pages of the calls list, reports shown and reports downloaded (of the
    kinds asked), not other pages; only those written from the first entry at ``from_us`` on,
    of the user and period asked, and at most ``most`` of them read, whatever their kind:
    then the time of the oldest read says where the reading stopped."""
    S = 1_000_000
    log = AuditLog(*paths)

    def page(actor, at_s, calls, target="calls", action="list_viewed"):
        return log.append(actor, action, target, {"rows": len(calls), "calls": calls}, T0_US + at_s * S)

    page("sam", 0, [7])  # before the call began: not read
    a = page("sam", 10, [1, 7, 9])
    page("sue", 11, [2, 3])
    page("sue", 11, [9], target="phonebook")  # not a list of calls
    r = page("sue", 12, [9], target="report")  # a report shown
    b = page("sue", 13, [9])
    d = page("sam", 13, [4, 7], target=None, action="report")  # a report downloaded
    c = page("sam", 14, [8, 7])
    lists = [("list_viewed", "calls")]
    log.close()
    db = sqlite3.connect(paths[0])  # as a release before the index left it
    db.executescript("DROP TABLE audit_calls; DROP TABLE audit_calls_state; PRAGMA user_version = 1;")
    db.close()
    log = AuditLog(*paths)
    assert log.calls_index_pending() == c.seq

    assert log.naming_calls([7, 9], T0_US + 5 * S, 100) == (
        {a.seq: [7, 9], r.seq: [9], b.seq: [9], d.seq: [7], c.seq: [7]},
        None,
    )
    assert log.naming_calls([7, 9], T0_US + 5 * S, 100, lists) == (
        {a.seq: [7, 9], b.seq: [9], c.seq: [7]},
        None,
    )
    assert log.naming_calls([7, 9], T0_US + 5 * S, 100, [("report", None)]) == ({d.seq: [7]}, None)
    assert log.naming_calls([7, 9], T0_US + 5 * S, 100, []) == ({}, None)
    assert log.naming_calls([7, 9], T0_US + 5 * S, 100, actor="sam") == (
        {a.seq: [7, 9], d.seq: [7], c.seq: [7]},
        None,
    )
    assert log.naming_calls([7], T0_US, 100, lists, until_us=T0_US + 10 * S) == ({1: [7]}, None)
    assert log.naming_calls([7, 9], T0_US + 5 * S, 100, since_us=T0_US + 13 * S) == (
        {b.seq: [9], d.seq: [7], c.seq: [7]},
        None,
    )
    # At most 2 pages read, newest first, one batch at a time: the older ones are said to be left.
    assert log.naming_calls([7, 9], T0_US + 5 * S, 2, lists, batch=1) == (
        {b.seq: [9], c.seq: [7]},
        T0_US + 13 * S,
    )
    assert log.naming_calls([7, 9], T0_US + 5 * S, 3, lists) == ({b.seq: [9], c.seq: [7]}, T0_US + 11 * S)
    assert log.naming_calls([7, 9], T0_US + 5 * S, 4, lists) == (
        {a.seq: [7, 9], b.seq: [9], c.seq: [7]},
        None,
    )
    # Every kind counts towards the most read, newest first across them.
    assert log.naming_calls([7, 9], T0_US + 5 * S, 3, batch=1) == (
        {b.seq: [9], d.seq: [7], c.seq: [7]},
        T0_US + 13 * S,
    )
    assert log.naming_calls([7, 9], T0_US + 5 * S, 4, batch=2) == (
        {r.seq: [9], b.seq: [9], d.seq: [7], c.seq: [7]},
        T0_US + 12 * S,
    )
    assert log.naming_calls([7, 9], T0_US + 5 * S, 5) == (
        {r.seq: [9], b.seq: [9], d.seq: [7], c.seq: [7]},
        T0_US + 11 * S,
    )
    assert log.naming_calls([7, 9], T0_US + 5 * S, 6)[1] is None
    assert log.naming_calls([7], T0_US + 20 * S, 100) == ({}, None)  # nothing written since
    log.close()
