"""A card number keyed straight on after the number dialled, in the archive.

The box masks the card in the number and withholds what follows it (a security code),
and says so (``digits_withheld``, docs/pci.md). The review found the archive's index of
calls (the central viewer's) without it, and a search there for the number dialled
missing the call: the number ends in the card's X's, the search matches last digits.
"""

import json
import os
import sqlite3

import pytest
from conftest import archive_settings, prepare_box
from test_export import MemoryBucket, Nowhere
from test_replication import drain

from board.sim.scenario import loads_scenario
from firmware.archive import viewer
from firmware.archive.replicator import Replicator
from firmware.box import open_sim_box
from firmware.storage import crypto
from firmware.storage.keystore import RecordingKey

from support.cardscan import scan

DIALLED, CARD, CODE = "01632960977", "4111111111111111", "737"
KEY_S = 0.07 + 0.08  # the simulator's key: 70 ms on, 80 ms off


@pytest.fixture(scope="module")
def archived(tmp_path_factory, synth):
    """One box that dialled and had a card and its code keyed straight on, archived."""
    tmp = tmp_path_factory.mktemp("cards")
    private, public = crypto.new_key_pair()
    org_key = RecordingKey(private, public)
    data = str(tmp / "leeds")
    prepare_box(data, Nowhere, "lk-cards", "leeds", public, clear_numbers=True)
    after = 0.3 + len(CARD) * KEY_S + 0.4
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": DIALLED},
        "talk": 10.0,
        "keys": [{"at": 0.3, "digits": CARD}, {"at": after, "digits": CODE}],
    }
    scenario = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": [call]}
    box = open_sim_box(loads_scenario(json.dumps(scenario)), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    bucket = MemoryBucket()
    settings = archive_settings(Nowhere, "lk-cards", "leeds", public, clear_numbers=True)
    rep = Replicator(data, settings, bucket=bucket)
    try:
        drain(rep)
    finally:
        rep.close()
    return tmp, bucket, org_key


@pytest.mark.parametrize("with_key", [True, False])
def test_the_index_says_digits_were_withheld_and_finds_the_number_dialled(archived, with_key):
    tmp, bucket, org_key = archived
    path = str(tmp / ("index-%s.db" % with_key))
    assert viewer.rebuild_index(bucket, path, org_key if with_key else None) == (1, 0)
    (found,) = viewer.search(path, number=DIALLED)
    assert found["number"].startswith(DIALLED + "X") and found["digits_withheld"] == 1
    db = viewer.open_index(path)
    try:
        assert viewer.get_call(db, "leeds", found["call_id"])["digits_withheld"] == 1
    finally:
        db.close()
    # Neither the card nor its code is in the bucket or the index, in any form.
    objects = tmp / ("objects-%s" % with_key)
    objects.mkdir()
    for i, key in enumerate(bucket.keys()):
        (objects / str(i)).write_bytes(bucket.get(key))
    assert scan(str(objects), [CARD, DIALLED + CODE]) == []
    assert scan(os.path.dirname(path), [CARD]) == []


def test_an_index_written_before_the_column_still_opens_a_call(archived):
    """The viewer's index is rebuilt from the bucket: until then, one from before says
    nothing of withheld digits, and its call pages and searches still answer."""
    tmp, bucket, org_key = archived
    path = str(tmp / "old-index.db")
    viewer.rebuild_index(bucket, path, org_key)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE calls DROP COLUMN digits_withheld")
    db.commit()
    db.close()
    (found,) = viewer.search(path, box="leeds")
    assert found["digits_withheld"] is None
    db = viewer.open_index(path)
    try:
        assert viewer.get_call(db, "leeds", found["call_id"])["digits_withheld"] is None
    finally:
        db.close()
