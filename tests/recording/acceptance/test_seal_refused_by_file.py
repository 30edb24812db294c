"""A recording's seal that the recording journal took but its file then refused.

The seal (the last chunk and the final record) is committed to the recording
journal first, then written into the file (docs/journal.md). When the card
refuses that write (an I/O error), the recording ends ``partial``: its row holds
the file's size and hash as they stand, without the seal, and the
``recording_failed`` alarm goes on. The journal still holds the seal, and the
next start's replay writes it into the file. Before, that left the file longer
than its row said, and ``verify`` reported it "changed since it was written",
tampering where there was only a card's hiccup. Now the start-up recovery
finishes the row again on what the replay made of the file, if the replay only
added to it, and audits it.
"""

import errno
import os

import pytest

from firmware.recording import journal
from firmware.recording.journal import Journal
from firmware.recording.segment import SegmentWriter

from .test_call_log_refused import CALLS  # two lines, a call on each


def _refuse_line_1s_seal_in_its_file(monkeypatch):
    """Every write into line 1's recording file fails from the commit of its seal on;
    returns the list its writers go into (those whose seal the journal committed)."""
    closing, refused = [], []
    close, commit, append = SegmentWriter.close, Journal.commit, SegmentWriter._append

    def on_close(writer, encoded=b""):
        if writer.header["line"] == 1:
            closing.append(writer)
        return close(writer, encoded)

    def on_commit(jnl, *args, **kwargs):
        done = commit(jnl, *args, **kwargs)
        refused.extend(w for w in closing if w not in refused)
        return done

    def on_append(writer, data, *args, **kwargs):
        if writer in refused:
            raise OSError(errno.EIO, "Input/output error")
        return append(writer, data, *args, **kwargs)

    monkeypatch.setattr(SegmentWriter, "close", on_close)
    monkeypatch.setattr(Journal, "commit", on_commit)
    monkeypatch.setattr(SegmentWriter, "_append", on_append)
    return refused


def _audit_actions(data_dir, recording_id):
    from firmware.storage.audit import AuditLog

    log = AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True)
    try:
        entries = log.entries(limit=-1, targets=["recording:" + recording_id], newest_first=False)
    finally:
        log.close()
    return [e.action for e in entries]


def _faulty_run(lab, monkeypatch, holdup_flush_ms=0):
    """The two calls, line 1's seal refused by its file; returns ``(data_dir, run,
    recording id, its row)``."""
    doc = lab.scenario_doc(CALLS, lines=2, hat="lk-4l", config={"holdup_flush_ms": holdup_flush_ms})
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    refused = _refuse_line_1s_seal_in_its_file(monkeypatch)
    run = lab.run(lab.load(doc), data_dir)
    monkeypatch.undo()
    assert refused, "the fault never struck"
    (rid,) = {w.header["recording_id"] for w in refused}
    rows = {r["id"]: r for r in lab.rows(data_dir)}
    assert rows[rid]["state"] == "partial"
    assert [r["state"] for i, r in rows.items() if i != rid] == ["complete"]
    return data_dir, run, rid, rows[rid]


def _next_start(lab, data_dir):
    """The box started again, for an idle second: the journal's replay, then the recovery."""
    return lab.run(lab.load(lab.scenario_doc([], lines=2, hat="lk-4l")), data_dir, until_us=1_000_000)


@pytest.mark.parametrize("holdup_flush_ms", [0, 2_000], ids=["journal", "holdup"])
def test_the_next_start_keeps_the_seal_the_file_refused_and_verify_passes(lab, monkeypatch, holdup_flush_ms):
    data_dir, run, rid, before = _faulty_run(lab, monkeypatch, holdup_flush_ms)
    failed = [a for a in run.alarms if a.kind == "recording_failed" and a.active]
    assert [a.line for a in failed] == [1], run.alarms
    key = lab.unlock(data_dir)
    store = lab.store(data_dir)
    try:
        # The file lacks its seal (on the journal path, where the file is written at the
        # seal, everything: it is empty).
        assert os.path.getsize(store.path_of(rid)) == before["bytes"]
        assert before["bytes"] == 0 or store.open_audio(rid, key)[1] is False
    finally:
        store.close()
    started = _next_start(lab, data_dir)
    assert ("resealed", rid, before["duration_s"]) in started.recovered, started.recovered
    store = lab.store(data_dir)
    try:
        assert store.open_audio(rid, key)[1] is True  # the seal the journal held, in the file now
    finally:
        store.close()
    (after,) = [r for r in lab.rows(data_dir) if r["id"] == rid]
    assert after["state"] == "partial"  # what the box said at the time
    assert after["duration_s"] == before["duration_s"] and after["bytes"] > before["bytes"]
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    # The replay's writing of the file is audited too: what a refused write leaves, no alarm.
    assert _audit_actions(data_dir, rid)[-3:] == [
        "recording_sealed",
        "recording_replayed",
        "recording_recovered",
    ]
    assert not [a for a in started.alarms if a.kind == "recording_rewritten"], started.alarms
    # The start after that finds nothing to do (the journal was emptied).
    assert not [d for d in _next_start(lab, data_dir).recovered if d[1] == rid]


def test_a_journal_commit_the_card_refused_is_written_by_the_next(lab, monkeypatch):
    """On the journal path a recording's chunks reach the card in the journal's commit,
    once a capture pass, and its file only at its seal. A commit the card refused used
    to be dropped: those chunks were then on the card nowhere until the seal, and a
    power cut before ext4 wrote the file left a hole in it that the replay could not
    fill. Now they stay staged and the next commit writes them: the journal covers
    every byte of every recording file, as a replay needs."""
    write_at_end = Journal._write_at_end
    refused = []

    def full_once(jnl, data):
        if not refused and jnl.commits >= 12:  # a few seconds into the calls
            refused.append(jnl.commits)
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_at_end(jnl, data)

    monkeypatch.setattr(Journal, "_write_at_end", full_once)
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    lab.run(lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir)
    monkeypatch.undo()
    assert refused
    rows = lab.rows(data_dir)
    assert [r["state"] for r in rows] == ["complete", "complete"]
    covered = {}
    for rid, offset, data in journal.read_records(journal.journal_path(data_dir)):
        covered.setdefault(rid, set()).update(range(offset, offset + len(data)))
    for row in rows:
        size = os.path.getsize(os.path.join(data_dir, "recordings", row["file"]))
        assert covered.get(row["id"]) == set(range(size)), (row["id"], size)
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)


def test_a_replay_that_would_change_what_the_row_sealed_is_not_signed_again(lab, monkeypatch):
    """Only a replay that adds to the file as its row sealed it is finished again: a
    file whose sealed bytes differ stays as it is, for ``verify`` to report. (On the
    power-fail path, where the file holds the chunks the group synced before its seal.)"""
    data_dir, _run, rid, before = _faulty_run(lab, monkeypatch, holdup_flush_ms=2_000)
    assert before["bytes"] > 200
    store = lab.store(data_dir)
    path = store.path_of(rid)
    store.close()
    with open(path, "r+b") as f:  # one byte of a sealed chunk changed on the card
        f.seek(200)
        b = f.read(1)
        f.seek(200)
        f.write(bytes([b[0] ^ 1]))
    started = _next_start(lab, data_dir)
    assert not [d for d in started.recovered if d[1] == rid], started.recovered
    (after,) = [r for r in lab.rows(data_dir) if r["id"] == rid]
    assert (after["state"], after["bytes"], after["sha256"]) == ("partial", before["bytes"], before["sha256"])
    status, out, err = lab.verify(data_dir)
    assert status != 0 and "file changed since it was written" in out + err, (out, err)


class _Cut(Exception):
    """The power went, here."""


def _cut_at(monkeypatch, where):
    """Make the next start stop (as a power cut would) at ``where`` in its reseal."""
    from firmware import evidence
    from firmware.recording import journal
    from firmware.storage.audit import AuditLog

    def cut(*args, **kwargs):
        raise _Cut()

    if where == "at-the-audit-entry":
        append = AuditLog.append

        def cut_reseal(log, actor, action, *args, **kwargs):
            if action == "recording_recovered":
                raise _Cut()
            return append(log, actor, action, *args, **kwargs)

        monkeypatch.setattr(AuditLog, "append", cut_reseal)
    elif where == "at-the-row":
        monkeypatch.setattr(evidence, "sign_recording", cut)  # just before the row's update
    else:
        monkeypatch.setattr(journal, "reset", cut)  # the row is in, the journal not yet emptied


@pytest.mark.parametrize("where", ["at-the-audit-entry", "at-the-row", "at-the-journal-reset"])
def test_a_cut_while_the_next_start_reseals_leaves_the_start_after_to_finish_it(lab, monkeypatch, where):
    """The reseal is durable in this order before the journal is emptied: its audit
    entry, then its row. A cut at any step, and the start after that still ends
    with the row and the file agreeing and ``verify`` passing (with the row first,
    a cut before the audit entry fails it; with the journal emptied first, a cut
    before the row)."""
    data_dir, _run, rid, before = _faulty_run(lab, monkeypatch, holdup_flush_ms=2_000)
    _cut_at(monkeypatch, where)
    with pytest.raises(_Cut):
        _next_start(lab, data_dir)
    monkeypatch.undo()
    (row,) = [r for r in lab.rows(data_dir) if r["id"] == rid]
    assert (row["sha256"] == before["sha256"]) == (where != "at-the-journal-reset")
    started = _next_start(lab, data_dir)
    assert [d[0] for d in started.recovered if d[1] == rid] == (
        [] if where == "at-the-journal-reset" else ["resealed"]
    ), started.recovered
    (after,) = [r for r in lab.rows(data_dir) if r["id"] == rid]
    assert after["bytes"] > before["bytes"]
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
