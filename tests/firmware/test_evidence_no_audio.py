"""The signed statement of a recording that stored no audio does not cover the number.

An outbound call's number is dialled digit by digit while its recording runs. A
recording that ends before it stored anything (the card refused its first write)
is finished, and signed, while the number is still being dialled; its statement
takes the call fields from the call log, and with the number among them every
later digit broke the signature: ``verify`` then called a card's hiccup tampering
(found by tests/recording/acceptance/test_io_faults.py).
"""

import sqlite3

from firmware import evidence
from firmware.calls.calllog import SCHEMA
from firmware.recording.store import RecordingStore
from firmware.signing import load_signer

T_US = 1_772_442_000_000_000


def _store_with_a_recording_that_stored_nothing(data_dir, number):
    db = sqlite3.connect(data_dir / "calls.db")
    db.executescript(SCHEMA)
    db.execute(
        "INSERT INTO calls (id, line, direction, started_at, number, clock_synced)"
        " VALUES (1, 2, 'out', ?, ?, 1)",
        (T_US, number),
    )
    db.commit()
    db.close()
    store = RecordingStore(data_dir, signer=load_signer(data_dir))
    rid = store.begin(1, None, "voice", 960, T_US + 5, recording_id="cd" * 16)
    store.finish(rid, "partial", 0.0)  # no file: nothing was stored
    return store, rid


def _dial(store, number):
    store._db.execute("UPDATE calls SET number = ? WHERE id = 1", (number,))


def test_the_number_dialled_after_it_ended_does_not_break_its_signature(tmp_path):
    store, rid = _store_with_a_recording_that_stored_nothing(tmp_path, "0")
    try:
        assert store.verify() == []
        _dial(store, "0207946")
        assert store.verify() == []
        # What the statement still binds: its call's start, line and direction.
        store._db.execute("UPDATE calls SET line = 3 WHERE id = 1")
        [problem] = store.verify()
        assert "its signature does not match" in problem
    finally:
        store.close()


def test_a_signature_made_before_2026_12_04_with_the_number_still_holds_while_it_stands(tmp_path):
    store, rid = _store_with_a_recording_that_stored_nothing(tmp_path, "02079460000")
    try:
        row, call = store.get(rid), store.call_row(1)
        path = store.path_of(rid)
        legacy = evidence.statement(rid, "partial", None, evidence.call_fields(None, call))
        assert legacy == evidence.recording_statements(row, path, call)[1]
        signature = store.signer.sign(legacy)
        store._db.execute("UPDATE recordings SET signature = ? WHERE id = ?", (signature, rid))
        assert store.verify() == []
        _dial(store, "02079460001")  # the number changed behind its back
        [problem] = store.verify()
        assert "its signature does not match" in problem
    finally:
        store.close()
