"""The box's report says how its calls stand in the archive: archived, waiting, failed (and why).

No S3 server: the box's real replicator uploads into a bucket in memory that refuses one
call's record for good, as a store denying access would.
"""

import csv
import io
import json

from conftest import archive_settings, prepare_box
from test_export import MemoryBucket, Nowhere
from test_replication import run_box

from firmware import cli
from firmware.archive.replicator import Replicator, call_key
from firmware.archive.store import ArchiveError
from firmware.storage import crypto
from firmware.storage.keystore import Argon2Params, KeyStore

from support.cli import report_args


class RefusingBucket(MemoryBucket):
    """Refuses, for good, to store the object ``refused_key``."""

    def __init__(self, refused_key):
        super().__init__()
        self.refused_key = refused_key

    def put(self, key, body, metadata=None, lock=None, written=None):
        if key == self.refused_key:
            raise ArchiveError("the store said AccessDenied: not for this key", permanent=True)
        super().put(key, body, metadata, lock, written)


def report(data, capsys, fmt="json", *extra):
    args = list(
        report_args(data, "pw-pw-pw-pw", "--from", "2026-03-02", "--to", "2026-03-02", "--format", fmt)
    )
    assert cli.main(args + ["--out", "-", *extra]) == 0
    return capsys.readouterr().out


def archive_rows(text):
    """The archive table's rows in the CSV report."""
    rows = list(csv.reader(io.StringIO(text)))
    at = rows.index(["Archive: ended calls of the period"])
    assert rows[at + 1] == ["Status", "Calls"]
    return rows[at + 2 : rows.index([], at)]


def test_the_report_counts_archived_waiting_and_failed_calls(tmp_path, synth, capsys):
    _, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, Nowhere, "lk-report", "leeds", org_public)
    run_box(data, synth, "01632960101", n_calls=3)
    settings = archive_settings(Nowhere, "lk-report", "leeds", org_public)

    # Nothing reached the store yet: every ended call waits.
    rep = Replicator(data, settings, bucket=RefusingBucket(call_key("leeds", 2)))
    try:
        rep.enqueue_ended()
        doc = json.loads(report(data, capsys))
        assert doc["archive"] == {"archived": 0, "waiting": 3, "failed": 0, "failed_by_reason": {}}
        for _ in range(20):
            rep.step(ignore_backoff=True)
    finally:
        rep.close()

    doc = json.loads(report(data, capsys))
    why = "the store said AccessDenied: not for this key"
    assert doc["archive"] == {"archived": 2, "waiting": 0, "failed": 1, "failed_by_reason": {why: 1}}
    assert archive_rows(report(data, capsys, "csv")) == [
        ["Archived", "2"], ["Waiting", "0"], ["Failed", "1"], ["Failed: " + why, "1"]
    ]  # fmt: skip
    # One line's report counts that line's calls only (the scenario's calls alternate lines 1, 2).
    doc = json.loads(report(data, capsys, "json", "--line", "2"))
    assert doc["archive"] == {"archived": 0, "waiting": 0, "failed": 1, "failed_by_reason": {why: 1}}


def test_a_box_without_the_archive_has_no_archive_section(tmp_path, synth, capsys):
    data = str(tmp_path / "plain")  # keys, no archive configured
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    run_box(data, synth, "01632960101", n_calls=1)
    doc = json.loads(report(data, capsys))
    assert doc["archive"] is None and doc["box"]["calls"] == 1
    assert "Archive:" not in report(data, capsys, "csv")
