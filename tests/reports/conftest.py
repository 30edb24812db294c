"""The simulated week, run once through ``linekeeper sim`` into an initialised data directory,
with playbacks, exports and alarms of that week added the way the box writes them."""

import importlib.util
import json
import os

import pytest

from firmware import cli
from firmware.alarmlog import AlarmLog
from firmware.box import open_audit
from firmware.simtime import SIM_CLOCK_NAME
from firmware.storage.keystore import Argon2Params, KeyStore

_spec = importlib.util.spec_from_file_location("week", os.path.join(os.path.dirname(__file__), "week.py"))
week = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(week)

MON_US = 1_772_409_600_000_000  # 2026-03-02T00:00:00Z


class FixedClock:
    def __init__(self, wall_us):
        self.t = wall_us

    def wall_us(self):
        return self.t


@pytest.fixture(scope="session")
def week_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("week")
    data_dir = str(root / "data")
    KeyStore(data_dir, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "admin", "correct horse battery 7"
    )
    path = root / "week.json"
    path.write_text(json.dumps(week.scenario()))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    # A real box's week: the commands run on it date by the machine's clock (docs/scenarios.md).
    os.remove(os.path.join(data_dir, SIM_CLOCK_NAME))
    hour = 3_600_000_000
    with open_audit(data_dir) as audit:
        for actor, action, h, details in (
            ("sam", "playback", 10, {"line": 1}),
            ("sam", "playback", 30, {"line": 2}),
            ("sue", "playback", 50, {"line": 1}),
            ("sam", "export", 51, {"line": 1}),
            ("sue", "export", 52, {"refused": "wrong password"}),
            ("sam", "playback", 24 * 7 + 1, {"line": 1}),
        ):  # after the week
            audit.append(actor, action, "1", details, MON_US + h * hour)
        alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), FixedClock(0), audit)
        alarms.set("no_line_voltage", True, line=2, message="no line voltage", wall_us=MON_US + 20 * hour)
        alarms.set("no_line_voltage", False, line=2, wall_us=MON_US + 21 * hour)
        alarms.set("disk_warning", True, message="the card is 85% full", wall_us=MON_US + 60 * hour)
        alarms.acknowledge(2, "ivan", wall_us=MON_US + 61 * hour)
        alarms.close()
    return data_dir
