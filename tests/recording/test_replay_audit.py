"""The start's replay of the recording journal audits every file it writes again.

A technician cut a sealed recording's file to 3000 bytes (``verify`` reported it),
started the box, and the replay rewrote the file whole: ``verify`` passed and nothing
said a recording's file had been written. The restore is right (the journal holds the
sealed bytes), but an action on a recording is audited, and what no power cut leaves
(a file synced whole at a clean stop, now shorter) raises an alarm (docs/journal.md).
"""

import json
import os
import uuid

import pytest

from board.sim.scenario import loads_scenario
from firmware import words
from firmware.alarmlog import AlarmLog
from firmware.box import open_sim_box
from firmware.recording import journal
from firmware.recording.journal import Journal, replay
from firmware.recording.segment import SegmentReader, SegmentWriter
from firmware.recording.store import RecordingStore
from firmware.storage.audit import AuditLog

from support.simbox import keyed_sim_box

HEADER = {"call_id": 7, "line": 1, "profile": "voice", "rate": 8000, "chunk_ms": 600}
KEY = bytes(range(32))
WRAPPED = bytes(range(93))
CHUNKS = [b"%d" % i * 900 for i in range(6)]


def _sealed(tmp_path):
    """A store with one recording sealed through the journal (its row complete), the journal
    closed as a clean stop closes it (the file synced); ``(store, rid, path, audited)``."""
    audited = []
    store = RecordingStore(tmp_path / "box", on_audit=lambda *a: audited.append(a))
    rid = uuid.uuid4().hex
    store.begin(1, WRAPPED, "voice", 600, 1_700_000_000_000_000, recording_id=rid)
    jnl = store.open_journal()
    w = SegmentWriter(store.path_of(rid), rid, KEY, HEADER, fsync=True, journal=jnl, sync_create=False)
    store.write_key_copy(rid, WRAPPED, new=True)
    for c in CHUNKS:
        w.write_chunk(c)
    w.close()
    store.finish(rid, "complete", 3.6)
    jnl.close()
    store.journal = None
    audited.clear()
    return store, rid, store.path_of(rid), audited


def _replayed(audited):
    return [(rid, details) for action, rid, details in audited if action == "recording_replayed"]


def test_a_sealed_file_cut_short_after_a_clean_stop_is_audited_and_kept_for_an_alarm(tmp_path):
    store, rid, path, audited = _sealed(tmp_path)
    whole = os.path.getsize(path)
    os.truncate(path, 3000)
    store.replay_journal(stopped_cleanly=True)
    assert SegmentReader(path, KEY).read_all() == (b"".join(CHUNKS), True)  # restored as before
    [(who, details)] = _replayed(audited)
    assert who == rid
    assert details["file_was"] == "shorter" and details["file_bytes"] == 3000
    assert details["missing_bytes"] == whole - 3000 and details["journal_to"] == whole
    assert details["cause"] == "clean_stop"
    assert store.rewritten == [(rid, details)]
    text = words.replay_text(details)
    assert "3000 bytes" in text and "stopped cleanly" in text
    store.close()


def test_a_file_a_power_cut_took_is_audited_as_such_with_no_alarm(tmp_path):
    store, rid, path, audited = _sealed(tmp_path)
    os.unlink(path)
    store.replay_journal(stopped_cleanly=False)
    assert SegmentReader(path, KEY).read_all()[1] is True
    [(who, details)] = _replayed(audited)
    assert (who, details["file_was"], details["cause"]) == (rid, "missing", "power_cut")
    assert "file_bytes" not in details
    assert store.rewritten == []
    store.close()


def test_bytes_that_differ_are_counted_and_a_file_found_whole_is_not_audited(tmp_path):
    store, rid, path, audited = _sealed(tmp_path)
    with open(path, "r+b") as f:
        f.seek(200)
        f.write(bytes(b ^ 0xFF for b in f.read(5)))
    size = os.path.getsize(path)
    store.replay_journal(stopped_cleanly=False)
    [(_, details)] = _replayed(audited)
    assert details["file_was"] == "differing" and details["differing_bytes"] == 5
    assert details["missing_bytes"] == 0 and details["file_bytes"] == size
    audited.clear()
    store.replay_journal(stopped_cleanly=True)  # (the journal is empty now)
    assert _replayed(audited) == [] and store.rewritten == []
    store.close()


def test_a_file_ending_before_the_journals_first_byte_for_it_is_no_cut(tmp_path):
    found = {"file_was": "shorter", "file_bytes": 100, "journal_from": 4096, "journal_to": 5000}
    from firmware.recording.store import replay_cause

    assert replay_cause(found, "partial", stopped_cleanly=False) == "gap"
    assert replay_cause(dict(found, file_bytes=4096), "complete", False) == "power_cut"
    assert replay_cause(dict(found, file_bytes=4096), "partial", True) == "card_refused"
    assert replay_cause(dict(found, file_bytes=4096), "complete", True) == "clean_stop"


def test_the_audit_comes_before_the_file_changes(tmp_path):
    jnl = Journal(tmp_path / "journal" / journal.JOURNAL_NAME, size_bytes=1 << 20)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    rid = uuid.uuid4().hex
    path = recordings / (rid + ".lkrec")
    w = SegmentWriter(path, rid, KEY, HEADER, fsync=True, journal=jnl, sync_create=False)
    for c in CHUNKS:
        w.write_chunk(c)
    w.close()
    jnl.close()
    os.truncate(path, 10)
    seen = []
    replay(jnl.path, str(recordings), before_write=lambda found: seen.append((found, os.path.getsize(path))))
    [(found, size)] = seen
    assert size == 10 and found[rid]["file_was"] == "shorter"


CALLS = [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 4.0}]


def test_the_box_started_after_a_file_was_cut_raises_the_alarm_and_audits_it(tmp_path, synth):
    box, data_dir = keyed_sim_box(tmp_path, synth, CALLS, lines=1)
    box.start()
    assert box.board.run()
    box.stop()
    folder = os.path.join(data_dir, "recordings")
    [name] = [n for n in os.listdir(folder) if n.endswith(".lkrec")]
    rid = name[: -len(".lkrec")]
    cut = os.path.getsize(os.path.join(folder, name)) // 2
    os.truncate(os.path.join(folder, name), cut)  # `verify` reports it
    doc = {"start": "2026-03-02T10:00:00Z", "country": "uk", "lines": 1, "calls": []}
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    box.start()
    box.stop()
    log = AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True)
    try:
        [entry] = [
            e
            for e in log.entries(limit=-1, targets=["recording:" + rid], newest_first=False)
            if e.action == "recording_replayed"
        ]
    finally:
        log.close()
    assert entry.details["file_was"] == "shorter" and entry.details["cause"] == "clean_stop"
    assert entry.details["file_bytes"] == cut
    assert words.say("action", "recording_replayed").startswith("Wrote a recording's file again")
    alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), box.clock)
    try:
        [alarm] = [a for a in alarms.history() if a["kind"] == "recording_rewritten"]
    finally:
        alarms.close()
    assert rid in alarm["message"] and "(%d bytes," % cut in alarm["message"] and alarm["line"] == 1


def _unreadable(monkeypatch, path, how):
    """The card answers EIO to a read of ``path`` (``how``: at its open, or at a read)."""
    real_open, real_pread = os.open, os.pread
    eio = OSError(5, os.strerror(5))

    def opened(p, flags, *args, **kw):
        if how == "open" and os.fspath(p) == os.fspath(path) and not flags & (os.O_WRONLY | os.O_RDWR):
            raise eio
        return real_open(p, flags, *args, **kw)

    def pread(fd, n, offset):
        if how == "read" and os.readlink("/proc/self/fd/%d" % fd) == os.fspath(path):
            raise eio
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "open", opened)
    monkeypatch.setattr(os, "pread", pread)


@pytest.mark.parametrize("how", ["open", "read"])
def test_a_file_the_card_cannot_read_is_audited_alarmed_and_written_all_the_same(tmp_path, monkeypatch, how):
    # A failing card's I/O error on the read before the write stopped the box's start
    # (the replay raised); before the replay read the files, it only wrote them.
    store, rid, path, audited = _sealed(tmp_path)
    os.truncate(path, 3000)
    with monkeypatch.context() as m:
        _unreadable(m, path, how)
        done = store.replay_journal(stopped_cleanly=True)
    assert rid in done
    assert SegmentReader(path, KEY).read_all() == (b"".join(CHUNKS), True)  # written as before
    [(who, details)] = _replayed(audited)
    assert who == rid and details["file_was"] == "unreadable" and details["cause"] == "card_error"
    assert details["read_error"] == os.strerror(5) and "file_bytes" not in details
    assert store.rewritten == [(rid, details)]
    text = words.replay_text(details)
    assert "not readable, the card answering with an error (%s):" % os.strerror(5) in text
    assert "could not read the file" in text
    assert words.say("detail", "read_error") == "Why it could not be read"
    store.close()
