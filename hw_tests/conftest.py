"""Hardware tests: run on a real box only (`make hwtest`), never in CI.

They need a Raspberry Pi with the HAT named by LINEKEEPER_HAT (default
lk-4l) and skip themselves anywhere else.
"""

import os

import pytest


def _on_a_pi():
    try:
        with open("/proc/device-tree/model") as f:
            return "Raspberry Pi" in f.read()
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    if _on_a_pi():
        return
    skip = pytest.mark.skip(reason="needs a Raspberry Pi with a line HAT")
    for item in items:
        item.add_marker(skip)


@pytest.fixture
def hat():
    from board.hat import load_hat

    return load_hat(os.environ.get("LINEKEEPER_HAT", "lk-4l"))
