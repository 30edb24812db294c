"""A rebuild of the central viewer's index while a caller's details are erased on the box.

The rebuild reads a site's call records before its erasure notes (``calls/`` lists before
``erasures/``), so a record read before its erasure still holds the number; the new index
must not hold it at any moment it is in place (the pages read it as soon as it is)."""

import json
import os

from test_export import MemoryBucket

from firmware.archive import viewer
from firmware.archive.replicator import call_key, erasure_key

NUMBER, OTHER = "01632960101", "01632960202"


def _record(call_id, number):
    return json.dumps(
        {
            "format": 1,
            "box": "leeds",
            "call_id": call_id,
            "line": 1,
            "direction": "in",
            "started_at": "2026-03-02T09:00:01.000Z",
            "started_us": 1772442001000000 + call_id,
            "answered": False,
            "recordings": [],
            "number": number,
            "name": "Ann Example",
        }
    ).encode()


def _held(path):
    """How many times the file's bytes hold the erased number, forwards or reversed."""
    with open(path, "rb") as f:
        raw = f.read()
    return raw.count(NUMBER.encode()) + raw.count(NUMBER[::-1].encode())


def test_a_rebuilt_index_never_holds_an_erased_callers_details(tmp_path, monkeypatch):
    """The index was put in place with the number and emptied after: a page read in between
    showed it, and had the emptying failed it stayed until the next look for erasures."""
    bucket = MemoryBucket()
    bucket.put(call_key("leeds", 1), _record(1, NUMBER))
    bucket.put(call_key("leeds", 2), _record(2, OTHER))
    bucket.put(erasure_key("leeds", 1), b"{}")
    index = str(tmp_path / "index.db")
    in_place = []
    replace = os.replace

    def watched(src, dst):
        replace(src, dst)
        if dst == index:
            in_place.append(_held(index))

    monkeypatch.setattr(os, "replace", watched)
    assert viewer.rebuild_index(bucket, index) == (2, 0)
    assert in_place == [0]
    assert _held(index) == 0
    found = {c["call_id"]: (c["number"], c["name"]) for c in viewer.search(index)}
    assert found == {1: (None, None), 2: (OTHER, "Ann Example")}
