"""Hardware tests: run on a real box only (`make hwtest`), never in CI.

They need a Raspberry Pi with its line HAT and the recorder stopped (it owns
the GPIO, the codec and the MCU). The HAT is the one the box is configured
with (``"hat"`` in ``LINEKEEPER_DATA_DIR/config.json``, default
/var/lib/linekeeper), or LINEKEEPER_HAT when set; lk-4l when neither says. A
configuration there that cannot be read or is not valid stops the run (usage error).
Anywhere else they collect (``pytest --collect-only hw_tests`` checks they
import) but refuse to run, with one clear message: a hardware test that
passes without hardware would be a lie, and one skipped would look green.

Tests that need a person are marked and left out of `make hwtest`:
``line_sim`` (a line simulator on the line LINEKEEPER_HW_LINE, default 1,
and someone to ring and answer it: `make hwtest-call`) and ``pull_power``
(someone pulls the plug: `make hwtest-power`). At the end a pass/fail report
names the HAT and every check, for the technician's record.
"""

import os
import sys

import pytest

from board.hat import load_hat

# The tests import the one answer to "which HAT" (hw_tests/which_hat.py); pytest's
# importlib mode puts no test folder on the path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from which_hat import HatUnknown, hat_name  # noqa: E402

MARKERS = {
    "line_sim": "needs a line simulator on LINEKEEPER_HW_LINE and a person to ring and answer it",
    "pull_power": "needs a person to pull the power plug",
}


def on_a_pi():
    """Whether this machine is a Raspberry Pi (its device tree says so)."""
    try:
        with open("/proc/device-tree/model") as f:
            return "Raspberry Pi" in f.read()
    except OSError:
        return False


def pytest_configure(config):
    for name, why in MARKERS.items():
        config.addinivalue_line("markers", "%s: %s" % (name, why))
    try:
        hat_name()  # before the tests import: one line, not a traceback per module
    except HatUnknown as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_modifyitems(config, items):
    if config.option.collectonly or not items or on_a_pi():
        return
    raise pytest.UsageError(
        "hw_tests run on a Raspberry Pi with the line HAT %r only (`make hwtest` on the box); "
        "this machine is not one. The tests of everything else run on the simulated board: "
        "`make test`" % hat_name()
    )


def pytest_terminal_summary(terminalreporter):
    """The technician's record: the HAT, then PASS/FAIL per check."""
    reports = [
        r
        for key in ("passed", "failed", "error")
        for r in terminalreporter.stats.get(key, [])
        if r.when == "call" or r.outcome != "passed"
    ]
    if not reports:
        return
    write = terminalreporter.write_line
    write("")
    write("Linekeeper hardware check, HAT %s" % hat_name())
    for r in sorted(reports, key=lambda r: r.nodeid):
        write("  %-4s  %s" % ("PASS" if r.outcome == "passed" else "FAIL", r.nodeid.split("::", 1)[-1]))
    failed = sum(r.outcome != "passed" for r in reports)
    write("RESULT: %s (%d checks, %d failed)" % ("PASS" if not failed else "FAIL", len(reports), failed))


@pytest.fixture(scope="session")
def hat():
    return load_hat(hat_name())


@pytest.fixture(scope="session")
def test_line(hat):
    """The line the line simulator is plugged into (LINEKEEPER_HW_LINE, default 1)."""
    line = int(os.environ.get("LINEKEEPER_HW_LINE", "1"))
    assert line in [spec.line for spec in hat.lines], "the HAT %r has no line %d" % (hat.id, line)
    return line
