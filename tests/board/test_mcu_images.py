"""The MCU keeps two firmware images on its own flash: a new one is written whole
to the spare, tried once, kept only when the Pi confirms it, and the old one runs
again after any restart before that. ``main.py`` itself is run under CPython with
a fake ``machine`` and ``time``, as on the RP2040."""

import os
import shutil
import sys
from pathlib import Path

import pytest

import board.mcu
from board.mcu import fakes
from board.mcu.flash import build_image
from board.mcu.lkmcu import images, loader, regmap
from board.mcu.lkmcu.images import BOOT_FELL_BACK, BOOT_RUN, BOOT_TRY, FlashImages

MCU_DIR = Path(board.mcu.__file__).parent


def _firmware(tmp_path, version):
    """A copy of the MCU firmware declaring ``version``: ``(folder, image bytes)``."""
    folder = tmp_path / ("fw-%d%d%d" % version)
    shutil.copytree(MCU_DIR / "lkmcu", folder / "lkmcu", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(MCU_DIR / "main.py", folder / "main.py")
    init = folder / "lkmcu" / "__init__.py"
    init.write_text(init.read_text().replace("VERSION = (1, 0, 0)", "VERSION = %r" % (version,)))
    image, declared = build_image(str(folder))
    assert declared == version
    return folder, image


def _flash_root(tmp_path):
    """The MCU's flash with the release's firmware at its top (as installed)."""
    root = tmp_path / "flash"
    shutil.copytree(MCU_DIR / "lkmcu", root / "lkmcu", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(MCU_DIR / "main.py", root / "main.py")
    return root


def _resets():
    made = []

    def reset():
        made.append(True)

    return made, reset


def test_a_spare_is_tried_once_and_falls_back_unless_confirmed(tmp_path):
    root = _flash_root(tmp_path)
    resets, reset = _resets()
    flash = FlashImages(os, reset, root=str(root))
    _, image = _firmware(tmp_path, (1, 0, 1))

    assert flash.write_spare(image, (1, 0, 1))
    assert (root / "spare" / "lkmcu" / "__init__.py").read_text().count("(1, 0, 1)") == 1
    flash.try_spare()
    assert resets == [True]
    assert flash.boot() == BOOT_TRY  # the restart runs the spare ...
    assert flash.boot() == BOOT_FELL_BACK  # ... once: restarted unconfirmed, the old one runs
    assert flash.boot() == BOOT_RUN
    assert "(1, 0, 0)" in (root / "lkmcu" / "__init__.py").read_text()


def test_a_confirmed_spare_becomes_the_firmware_even_if_cut_in_the_middle(tmp_path):
    root = _flash_root(tmp_path)
    _, reset = _resets()
    flash = FlashImages(os, reset, root=str(root))
    folder, image = _firmware(tmp_path, (1, 0, 1))
    flash.write_spare(image, (1, 0, 1))
    flash.try_spare()
    assert flash.boot() == BOOT_TRY
    # The power goes after the copies and the "keep" note, before the renames.
    real_finish = flash._finish_keep
    flash._finish_keep = lambda names: None
    flash.keep_spare()
    flash._finish_keep = real_finish
    assert (root / "fwstate").read_text() == "keep"

    assert flash.boot() == BOOT_RUN  # the next start finishes the renames
    for name in ["main.py"] + ["lkmcu/" + n for n in os.listdir(folder / "lkmcu")]:
        assert (root / name).read_bytes() == (folder / name).read_bytes(), name
    assert not (root / "spare").exists() and not (root / "fwstate").exists()
    assert not list(root.glob("**/*.new"))


@pytest.mark.parametrize(
    "damage", [lambda image: image[:-10], lambda image: b"XXXX" + image[4:], lambda image: image]
)
def test_a_damaged_image_or_another_version_is_refused_and_leaves_no_spare(tmp_path, damage):
    root = _flash_root(tmp_path)
    flash = FlashImages(os, _resets()[1], root=str(root))
    _, image = _firmware(tmp_path, (1, 0, 1))
    assert not flash.write_spare(damage(image), (1, 0, 2))
    assert not (root / "spare").exists() and not (root / "spare.part").exists()
    assert flash.boot() == BOOT_RUN


def _run_main(monkeypatch, flash_root, machine, ticks=20):
    """Start the MCU: run the top ``main.py`` in ``flash_root`` (the cwd) until ``ticks`` ms."""
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "time", fakes.time_module(stop_after_ms=ticks))
    monkeypatch.chdir(flash_root)
    monkeypatch.setattr(sys, "path", [str(flash_root)] + [p for p in sys.path if p != str(flash_root)])
    # A restart starts with no import caches. The spare runs from ``spare`` on the path, a
    # relative name: its finder, cached by that name, held an earlier test's flash folder
    # (absolute), and a later test imported from there while that folder was kept.
    monkeypatch.setattr(sys, "path_importer_cache", {})
    for name in [n for n in sys.modules if n == "lkmcu" or n.startswith("lkmcu.")]:
        monkeypatch.delitem(sys.modules, name)
    source = (flash_root / "main.py").read_text()
    with pytest.raises(fakes.StopLoop):
        exec(compile(source, "main.py", "exec"), {"__name__": "__main__"})
    targets = {t.addr: t for t in machine.made["targets"]}
    return targets[regmap.ADDRESS].mem, targets[loader.ADDRESS].mem


def _version(mem):
    return tuple(mem[regmap.FW_VERSION : regmap.FW_VERSION + 3])


def test_main_serves_the_loader_and_runs_a_new_image_once(monkeypatch, tmp_path):
    root = _flash_root(tmp_path)
    _, image = _firmware(tmp_path, (1, 0, 1))
    adc = {26: 2550, 27: 2550}

    # The Pi sends the image through the loader's own address, as board.mcu.flash does.
    machine = fakes.machine_module(adc_mv=adc)
    mem, lmem = _run_main(monkeypatch, root, machine)
    assert _version(mem) == (1, 0, 0) and bytes(lmem[:2]) == b"LB"
    assert machine.made["targets"][1].bus == 1  # the loader on the second I2C block
    ldr = loader.Loader(lmem, FlashImages(os, machine.reset))
    loader.put_u32(lmem, loader.L_TOTAL, len(image))
    lmem[loader.L_VERSION : loader.L_VERSION + 3] = bytes((1, 0, 1))
    lmem[loader.L_CMD] = loader.LC_BEGIN
    ldr.tick()
    for offset in range(0, len(image), loader.DATA_LEN):
        chunk = image[offset : offset + loader.DATA_LEN]
        lmem[loader.L_DATA : loader.L_DATA + len(chunk)] = chunk
        loader.put_u32(lmem, loader.L_OFFSET, offset)
        lmem[loader.L_LEN] = len(chunk)
        lmem[loader.L_CMD] = loader.LC_WRITE
        ldr.tick()
    lmem[loader.L_CMD] = loader.LC_COMMIT
    ldr.tick()
    assert lmem[loader.L_STATE] == loader.LS_STAGED
    lmem[loader.L_CMD] = loader.LC_ACTIVATE
    with pytest.raises(fakes.Reset):
        ldr.tick()

    # The restart runs the new image: it reports its version.
    mem, lmem = _run_main(monkeypatch, root, fakes.machine_module(adc_mv=adc))
    assert _version(mem) == (1, 0, 1)
    assert (root / images.STATE_FILE).read_text() == "tried"

    # Restarted before the Pi confirmed it: the old image again, and the loader says so.
    mem, lmem = _run_main(monkeypatch, root, fakes.machine_module(adc_mv=adc))
    assert _version(mem) == (1, 0, 0) and lmem[loader.L_STATE] == loader.LS_FELL_BACK


def test_a_confirmed_image_runs_from_then_on(monkeypatch, tmp_path):
    root = _flash_root(tmp_path)
    _, image = _firmware(tmp_path, (1, 0, 1))
    adc = {26: 2550, 27: 2550}
    flash = FlashImages(os, lambda: None, root=str(root))
    flash.write_spare(image, (1, 0, 1))
    flash.try_spare()
    mem, lmem = _run_main(monkeypatch, root, fakes.machine_module(adc_mv=adc))
    assert _version(mem) == (1, 0, 1)
    # The Pi confirms through the loader the new image serves.
    assert lmem[loader.L_STATE] == loader.LS_TRYING
    ldr = loader.Loader(bytearray(loader.SIZE), FlashImages(os, lambda: None))
    ldr.mem = lmem  # (the running image's loader, on the memory main.py serves)
    lmem[loader.L_CMD] = loader.LC_CONFIRM
    ldr.tick()
    assert lmem[loader.L_STATE] == loader.LS_IDLE

    for _ in range(2):  # and on every start after
        mem, _ = _run_main(monkeypatch, root, fakes.machine_module(adc_mv=adc))
        assert _version(mem) == (1, 0, 1)
