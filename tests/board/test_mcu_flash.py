"""Flashing the supervisor MCU through its loader, over the simulated I2C bus: the image
verified by its CRC read back, tried once, kept only when the new firmware reports."""

import os
import shutil
import zlib

import pytest

import board.mcu
from board.mcu.flash import McuFlasher, build_image, read_image
from board.mcu.link import McuError, McuLink
from board.mcu.lkmcu import VERSION, loader
from board.mcu.sim import SimMcu
from firmware.clock import SimClock

MCU_DIR = os.path.dirname(board.mcu.__file__)
OLD = (0, 9, 0)


def _mcu(version=OLD):
    mcu = SimMcu(SimClock(), firmware_version=version)
    link = McuLink(mcu.bus)
    link.open()
    return mcu, link, McuFlasher(mcu.bus, link, sleep=lambda s: None)


def _firmware(tmp_path, version=(2, 0, 0), broken=False):
    """A copy of the firmware folder declaring ``version`` (and, ``broken``, a syntax error)."""
    folder = tmp_path / "mcu"
    shutil.copytree(MCU_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    init = folder / "lkmcu" / "__init__.py"
    init.write_text(init.read_text().replace("VERSION = %r" % (VERSION,), "VERSION = %r" % (version,)))
    if broken:
        with open(folder / "lkmcu" / "core.py", "a") as f:
            f.write("\ndef broken(:\n")
    return str(folder)


def test_the_image_holds_every_firmware_file_and_its_version():
    image, version = build_image(MCU_DIR)
    assert version == VERSION
    declared, files = read_image(image)
    assert declared == VERSION
    assert "main.py" in files and "lkmcu/loader.py" in files and "lkmcu/core.py" in files
    with open(os.path.join(MCU_DIR, "lkmcu", "core.py"), "rb") as f:
        assert files["lkmcu/core.py"] == f.read()
    assert build_image(MCU_DIR)[0] == image  # the same folder, the same bytes
    assert len(image) <= loader.MAX_IMAGE


def test_a_good_image_is_sent_verified_tried_and_kept_once_it_reports(tmp_path):
    mcu, link, flasher = _mcu()
    image, version = build_image(_firmware(tmp_path))
    flasher.flash(image, version)
    assert link.open().firmware_version == (2, 0, 0)
    assert mcu.flash.kept == [(2, 0, 0)] and mcu.flash.version == (2, 0, 0)
    assert mcu.loader_mem[loader.L_STATE] == loader.LS_IDLE


def test_an_image_that_does_not_start_leaves_the_old_firmware(tmp_path):
    mcu, link, flasher = _mcu()
    image, version = build_image(_firmware(tmp_path, broken=True))
    with pytest.raises(McuError, match="firmware 2.0.0 did not start; the MCU runs its old firmware 0.9.0"):
        flasher.flash(image, version)
    assert link.open().firmware_version == OLD
    assert mcu.flash.kept == [] and mcu.flash.version == OLD


def test_an_image_damaged_on_the_way_is_never_tried(tmp_path):
    mcu, link, flasher = _mcu()
    image, version = build_image(_firmware(tmp_path))
    real_write = mcu.bus.write_i2c_block_data

    def noisy(address, register, data):
        if address == loader.ADDRESS and register == loader.L_DATA and not noisy.done:
            data = [data[0] ^ 0x10] + list(data[1:])  # one bit flipped on the wire
            noisy.done = True
        real_write(address, register, data)

    noisy.done = False
    mcu.bus.write_i2c_block_data = noisy
    with pytest.raises(McuError, match="did not arrive whole .* nothing was flashed"):
        flasher.flash(image, version)
    assert mcu.flash.spare is None and link.open().firmware_version == OLD
    assert zlib.crc32(image) != 0


def test_a_tried_image_not_confirmed_is_dropped_when_the_mcu_restarts(tmp_path):
    mcu, link, _ = _mcu()
    image, version = build_image(_firmware(tmp_path))
    mcu.flash.write_spare(image, version)
    mcu.flash.try_spare()
    assert link.open().firmware_version == (2, 0, 0)
    mcu.flash.restart()  # the Pi never confirmed (it died, or the new firmware misbehaved)
    assert link.open().firmware_version == OLD and mcu.flash.kept == []


def test_the_loader_refuses_writes_out_of_order_and_images_too_large():
    mcu, _, flasher = _mcu()
    with pytest.raises(McuError, match="refused command 1"):
        flasher.flash(b"x" * (loader.MAX_IMAGE + 1), (2, 0, 0))
    assert mcu.loader_mem[loader.L_ERROR] == loader.LE_SIZE
    mem = mcu.loader_mem
    loader.put_u32(mem, loader.L_TOTAL, 64)
    mem[loader.L_CMD] = loader.LC_BEGIN
    mcu.tick()
    loader.put_u32(mem, loader.L_OFFSET, 32)  # nothing was written at 0 yet
    mem[loader.L_LEN] = 32
    mem[loader.L_CMD] = loader.LC_WRITE
    mcu.tick()
    assert (mem[loader.L_STATE], mem[loader.L_ERROR]) == (loader.LS_ERROR, loader.LE_ORDER)


def test_the_loader_s_crc_is_zlib_s():
    data = os.urandom(300)
    assert loader.crc32(loader.crc32(0, data[:100]), data[100:]) == zlib.crc32(data)
