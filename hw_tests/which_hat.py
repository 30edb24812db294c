"""Which HAT the hardware tests check (one place, for the conftest and the tests)."""

import os


def hat_name():
    """The HAT under test: LINEKEEPER_HAT, else the box's own (its config.json), else lk-4l."""
    if os.environ.get("LINEKEEPER_HAT"):
        return os.environ["LINEKEEPER_HAT"]
    from firmware.config import load_config

    return load_config(os.environ.get("LINEKEEPER_DATA_DIR", "/var/lib/linekeeper")).hat or "lk-4l"
