"""What ``linekeeper repair`` makes of a header's ``absence`` (why no number came): the
call as the header says it; from a header older than the field, unknown and named."""

import json
import os
import sqlite3
from pathlib import Path

import pytest

from firmware.clock import SimClock
from firmware.recording.segment import SegmentWriter
from firmware.recovery import repair

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "format"


@pytest.mark.parametrize(
    "fields, absence, unknown",
    [
        ({"absence": "private"}, "private", []),
        ({"absence": "unavailable"}, "unavailable", []),
        ({"absence": None}, None, []),  # none came, and the header says so
        ({}, None, ["absence"]),  # an older header: it could not say
    ],
)
def test_a_numberless_call_is_rebuilt_as_its_header_says(tmp_path, fields, absence, unknown):
    r = json.loads((FIXTURES / "known_answers.json").read_text())["recording_keycopy"]
    rid = r["recording_id"]
    header = dict(r["header"], number=None, **fields)
    data_dir = str(tmp_path)
    os.makedirs(os.path.join(data_dir, "recordings"))
    name = os.path.join(data_dir, "recordings", rid)
    writer = SegmentWriter(name + ".lkrec", rid, bytes(range(32)), header, fsync=False)
    writer.write_chunk(b"audio")
    writer.close()
    Path(name + ".lkkey").write_bytes((FIXTURES / r["key_copy"]).read_bytes())
    report = repair(data_dir, SimClock())
    assert report["failed"] == [] and report["unknown"] == [(rid + ".lkrec", f) for f in [unknown] if f]
    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    try:
        assert db.execute("SELECT number, absence FROM calls").fetchall() == [(None, absence)]
    finally:
        db.close()
