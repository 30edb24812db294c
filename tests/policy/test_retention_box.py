"""The box runs the retention sweep by itself, on its (simulated) clock."""

import json
import os

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.config import BoxConfig
from firmware.policy.settings import PolicySettings


def test_the_box_sweeps_every_interval_in_simulated_time(tmp_path, synth):
    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [{"line": 1, "at": 7300.0, "direction": "in", "rings": 1, "answer": False}],
            }
        )
    )
    config = BoxConfig(
        policy=PolicySettings.from_dict({"retention": {"default_days": 30, "sweep_interval_min": 60}})
    )
    box = open_sim_box(scenario, str(tmp_path / "data"), config=config, synth=synth)
    box.start()
    try:
        assert box.board.run()
        sweeps = [
            e for e in box.audit.entries(limit=100, newest_first=False) if e.action == "retention_sweep"
        ]
        # 09:00 + 7300 s and a little: sweeps at 10:00 and 11:00 of simulated time.
        assert [e.wall_us - scenario.start_wall_us for e in sweeps] == [3600 * 10**6, 7200 * 10**6]
        assert all(e.details["deleted"] == 0 and "refused" not in e.details for e in sweeps)
        assert box.alarms() == []
    finally:
        box.stop()


def test_the_box_s_sweep_deletes_closed_requests_past_their_period(tmp_path, synth):
    import datetime as dt

    from firmware.rights import ANSWERED, RightsRegister

    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    reg = RightsRegister(data_dir)
    received, closed = dt.date(2019, 6, 3), dt.date(2019, 6, 20)
    rid = reg.add(
        actor="sam",
        kind="erasure",
        received=received,
        requester="Ann",
        contact="ann@example.org",
        numbers="",
        details="erase my calls",
        today=received,
        wall_us=1,
    )
    reg.close_request(rid, status=ANSWERED, on=closed, outcome="erased", today=closed, wall_us=2)
    reg.close()
    scenario = loads_scenario(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []})
    )
    box = open_sim_box(scenario, data_dir, synth=synth)
    box.start()
    try:
        assert box.retention.sweep().requests_deleted == 1
        [entry] = [e for e in box.audit.entries(limit=100) if e.action == "data_request"]
        assert entry.target == "request:%d" % rid and entry.details["event"] == "deleted"
    finally:
        box.stop()
