"""The recorder indexes the calls named by an older trail's entries at its start: it has the
storage key that opens their details (firmware/storage/audit.py, build_calls_index)."""

import json
import logging
import sqlite3

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box

QUIET = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []}


def test_the_recorder_indexes_an_older_trail_at_its_start(tmp_path, synth, caplog):
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(QUIET)), data_dir, synth=synth)
    entry = box.audit.append("sam", "list_viewed", "calls", {"rows": 1, "calls": [7]}, box.clock.wall_us())
    box.stop()
    db = sqlite3.connect(data_dir + "/audit.db")  # as a release before the index left it
    db.executescript("DROP TABLE audit_calls; DROP TABLE audit_calls_state; PRAGMA user_version = 1;")
    db.close()

    again = open_sim_box(loads_scenario(json.dumps(QUIET)), data_dir, synth=synth)
    try:
        assert again.audit.calls_index_pending() > 0  # not before the lines record
        with caplog.at_level(logging.INFO, logger="firmware.box"):
            again.start()
            again._indexer.join(timeout=60)  # built beside them
        assert again.audit.calls_index_pending() == 0
        assert again.audit.naming_calls([7], 0, 0) == ({entry.seq: [7]}, None)
        assert "indexing the calls named in the audit trail" in caplog.text
    finally:
        again.stop()


def test_linekeeper_verify_reports_an_index_row_deleted(tmp_path, synth):
    from support.cli import run_linekeeper

    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(QUIET)), data_dir, synth=synth)
    entry = box.audit.append("sam", "list_viewed", "calls", {"rows": 2, "calls": [7, 8]}, box.clock.wall_us())
    box.stop()
    status, out, err = run_linekeeper("verify", "--data-dir", data_dir)
    assert status == 0, out + err
    db = sqlite3.connect(data_dir + "/audit.db")
    with db:
        db.execute("DELETE FROM audit_calls WHERE call_id = 8")
    db.close()
    status, out, err = run_linekeeper("verify", "--data-dir", data_dir)
    assert status == 1
    assert (
        "audit trail: audit entry %d named call 8, missing from the index of the calls named" % entry.seq
    ) in out
