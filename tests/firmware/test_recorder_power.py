"""`linekeeper recorder` on the simulated board records again after a brownout.

The scenario cuts the power in the middle of a call; the HAT's MCU warns, the
box seals everything, the hold-up capacitor runs out (the simulated Pi stops)
and the power returns. On a real box systemd would start the recorder again;
on the simulated board the recorder starts a new box on the same data at the
power's return, and the call after it is recorded.
"""

import json
import signal
import subprocess
import sys
import threading

import pytest

from firmware.storage.keystore import KeyStore

from support.cli import calls_args
from support.recording_lab import CHEAP_KDF, PASSWORD

SCENARIO = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 4,
    "hat": "lk-4l",
    "power": [{"at": 6.0, "cut": True}, {"at": 20.0, "cut": False}],
    "calls": [
        {
            "line": 1,
            "at": 1.0,
            "direction": "in",
            "rings": 1,
            "talk": 12.0,
            "speech": "Hello, I would like to place an order",
        },
        {
            "line": 3,
            "at": 23.0,
            "direction": "in",
            "rings": 1,
            "talk": 4.0,
            "speech": "Glue the sheet to the dark blue background.",
        },
    ],
}


def linekeeper(*args):
    return subprocess.run(
        [sys.executable, "-m", "firmware.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_the_recorder_records_again_after_a_brownout_and_the_power_returning(tmp_path):
    data = tmp_path / "data"
    KeyStore(str(data), kdf_params=CHEAP_KDF).initialise("admin", PASSWORD)
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(SCENARIO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware.cli", "recorder", "--board", "sim", "--scenario", str(path)]
        + ["--data-dir", str(data), "--speed", "max"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe, always read: a full pipe would block the box
        text=True,
    )
    ended = threading.Event()
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "the scenario has ended" in line:
                ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ended.wait(90), "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # the reader keeps draining the pipe meanwhile
        reader.join(10)
        proc.stdout.close()
    assert proc.returncode == 0, "".join(lines)
    out = linekeeper(*calls_args(str(data), PASSWORD, "--json"))
    assert out.returncode == 0, out.stderr
    calls = {c["line"]: c for c in map(json.loads, out.stdout.splitlines())}
    assert calls[1]["end_reason"] == "power_loss" and calls[1]["recording"] == "complete"
    after = calls[3]
    assert after["started_at"] >= "2026-03-02T09:00:23" and after["answered"]
    assert after["end_reason"] != "power_loss" and after["recording"] == "complete"
    assert after["recording_duration_s"] >= 3.0
    verify = linekeeper("verify", "--data-dir", str(data))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_an_mcu_speaking_another_register_map_stops_the_box_before_it_starts(tmp_path):
    """A HAT whose MCU firmware is newer or older than this firmware's register map:
    one clear line naming both versions, and nothing started (no call logged)."""
    from board.mcu.link import McuError
    from board.mcu.lkmcu import regmap
    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_host
    from firmware.config import BoxConfig

    scenario = loads_scenario(json.dumps(dict(SCENARIO, power=[])), parse_config=BoxConfig.from_dict)
    host = open_sim_host(scenario, str(tmp_path / "data"))
    host.board.mcu.mem[regmap.REGMAP_VER] = regmap.VERSION + 1  # flashed with another map
    try:
        with pytest.raises(McuError, match="register map version 2; this firmware speaks version 1"):
            host.start()
        assert not host.box._started
        host.board.clock.run_until(3_000_000)  # the first call rings meanwhile: nobody listens
        assert host.box.calllog.calls() == []
    finally:
        host.stop()
