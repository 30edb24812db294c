"""The recorder makes the HAT's MCU run the firmware its release carries: flashed at start
when the MCU runs another version (after an update's switch or a rollback), audited; a
flash that fails stops the start, so an update's health check fails and rolls back."""

import pytest

from board.mcu.link import McuError
from board.mcu.lkmcu import VERSION
from firmware.box import open_audit, open_sim_host

OLD = (0, 9, 0)


def _host(lab, name):
    doc = lab.scenario_doc([], lines=4, hat="lk-4l")
    host = open_sim_host(lab.load(doc), lab.init_data_dir(lab.tmp_path / name), synth=lab.synth)
    host.board.mcu.flash.version = OLD  # the MCU still runs an older release's firmware
    host.board.mcu.report_version(OLD)
    return host


def _mcu_audit(data_dir):
    with open_audit(data_dir) as audit:
        return [e.details for e in audit.entries(action="update", newest_first=False)]


def test_an_mcu_running_other_firmware_is_flashed_at_start_and_audited(lab):
    host = _host(lab, "flash")
    host.start()
    try:
        assert host.board.mcu.flash.kept == [VERSION]
        assert host.box.power_watch is not None  # the start went on with the new firmware
    finally:
        host.stop()
    (entry,) = _mcu_audit(host.box.data_dir)
    assert entry == {
        "event": "mcu_flash",
        "from": "0.9.0",
        "to": "%d.%d.%d" % VERSION,
        "outcome": "installed",
    }


def test_a_flash_that_fails_stops_the_start_and_the_mcu_keeps_its_firmware(lab):
    host = _host(lab, "fails")
    host.board.mcu.flash.try_spare = host.board.mcu.loader.fell_back  # the new image never comes up
    with pytest.raises(McuError, match="did not start; the MCU runs its old firmware 0.9.0"):
        host.start()
    host.stop()
    assert host.board.mcu.flash.version == OLD and host.board.mcu.flash.kept == []
    (entry,) = _mcu_audit(host.box.data_dir)
    assert entry["outcome"] == "failed" and "did not start" in entry["message"]
