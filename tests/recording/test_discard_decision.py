"""The policy's skip is on the card with the decision to destroy a call's recording.

:meth:`RecordingStore.unname_file` decides a destruction; given the call's skip reason it
writes the call's ``skip`` in the same transaction, so that no crash leaves a call saying
``record`` whose recording the next start destroys (docs/recovery.md). A destruction
decided at the start from the note of one the card refused (``discards-pending.json``)
writes the call's skip the same way.
"""

import contextlib
import sqlite3
import uuid

from firmware.calls.calllog import migrate
from firmware.policy.callmeta import SCHEMA as CALLMETA_SCHEMA
from firmware.policy.rules import PERSONAL_REASON
from firmware.recording.store import RecordingStore

WRAPPED = bytes(range(93))


def _box(tmp_path):
    """A store whose call log has call 1, decided ``record``, and a recording of it in progress."""
    data_dir = tmp_path / "box"
    data_dir.mkdir()
    with contextlib.closing(sqlite3.connect(data_dir / "calls.db")) as db:
        migrate(db)
        db.executescript(CALLMETA_SCHEMA)
        db.execute(
            "INSERT INTO calls (id, line, direction, started_at, clock_synced, policy_decision,"
            " policy_reason) VALUES (1, 1, 'in', 1700000000000000, 1, 'record', 'line 1 records every call')"
        )
        db.commit()
    store = RecordingStore(data_dir)
    rid = store.begin(1, WRAPPED, "voice", 600, 1_700_000_000_000_000, recording_id=uuid.uuid4().hex)
    return store, rid


def _decision(store):
    with contextlib.closing(sqlite3.connect(store.data_dir + "/calls.db")) as db:
        return db.execute("SELECT policy_decision, policy_reason FROM calls WHERE id = 1").fetchone()


def test_the_call_is_skipped_in_the_transaction_that_decides_the_destruction(tmp_path):
    store, rid = _box(tmp_path)
    seen = []

    def decided():
        # Inside the transaction: another writer of calls.db cannot write before its commit.
        other = sqlite3.connect(store.data_dir + "/calls.db", timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            seen.append(str(exc))
        finally:
            other.close()

    try:
        assert store.unname_file(rid, 1, PERSONAL_REASON, skip=PERSONAL_REASON, decided=decided)
        assert seen == ["database is locked"]
        assert _decision(store) == ("skip", PERSONAL_REASON)
        assert store.get(rid)["file"] == ""
    finally:
        store.close()


def test_a_destruction_without_a_skip_leaves_the_decision_as_it_was(tmp_path):
    """A recording that failed to start, or was not a call: the policy still says record."""
    store, rid = _box(tmp_path)
    try:
        assert store.unname_file(rid, 1)
        assert _decision(store) == ("record", "line 1 records every call")
    finally:
        store.close()


def test_a_call_on_legal_hold_keeps_its_decision_and_recording(tmp_path):
    store, rid = _box(tmp_path)
    called = []
    try:
        with store.transaction() as db:
            db.execute("INSERT INTO legal_holds (call_id, placed_by, placed_at) VALUES (1, 'sam', 1)")
        assert not store.unname_file(
            rid, 1, PERSONAL_REASON, skip=PERSONAL_REASON, decided=lambda: called.append(1)
        )
        assert called == []
        assert _decision(store) == ("record", "line 1 records every call")
        assert store.get(rid)["file"] == rid + ".lkrec"
    finally:
        store.close()


def test_a_destruction_decided_at_the_start_from_its_note_skips_the_call(tmp_path):
    """The card refused the decision and the box died before it took it: the note says
    why the call is not recorded, and the start writes it with the decision."""
    store, rid = _box(tmp_path)
    store.note_discard(rid, 1, PERSONAL_REASON, PERSONAL_REASON)
    store.close()
    store = RecordingStore(tmp_path / "box")
    try:
        assert ("discarded", rid, None) in store.recover()
        assert store.get(rid) is None
        assert _decision(store) == ("skip", PERSONAL_REASON)
    finally:
        store.close()
