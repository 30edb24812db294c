"""Retention on what the simulated box really recorded: tags from the scenario, real keys."""

import json
import os

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.clock import SimClock
from firmware.policy.retention import DAY_US, RetentionSettings
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore


def test_a_tagged_regulated_call_outlives_a_30_day_rule_and_the_other_is_shredded(tmp_path, synth):
    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    call = {"line": 1, "direction": "in", "rings": 1, "talk": 3.0, "caller_id": {"number": "01632960123"}}
    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [dict(call, at=1.0, tags=["regulated"]), dict(call, at=20.0)],
            }
        )
    )
    box = open_sim_box(scenario, data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    store = RecordingStore(data)
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    rows = {r["call_id"]: r for r in store.all()}
    assert len(rows) == 2
    clock = SimClock(start_wall_us=scenario.start_wall_us + 40 * DAY_US)
    sweeper = RetentionSweeper(
        store,
        clock,
        audit,
        RetentionSettings.from_dict({"default_days": 30, "minimum_days": {"regulated": 1827}}),
    )
    sweeper.guard.confirm(clock.wall_us())  # an installer vouched for the time
    try:
        (gone,) = [c.call_id for c in sweeper.preview()]
        result = sweeper.sweep()
        assert result.deleted == 1
        kept = [c for c in rows if c != gone]
        assert [r["call_id"] for r in store.all()] == kept
        (entry,) = sweeper.deletion_log()
        assert entry["categories"] == [] and entry["file_sha256"] == rows[gone]["sha256"]
        assert not os.path.exists(store.path_of(rows[gone]["id"]))
        with open(os.path.join(data, "calls.db"), "rb") as f:
            db = f.read()
        assert rows[gone]["wrapped_key"] not in db and rows[kept[0]]["wrapped_key"] in db
        assert store.verify() == [] and sweeper.verify() == []
    finally:
        sweeper.close()
        store.close()
        audit.close()
