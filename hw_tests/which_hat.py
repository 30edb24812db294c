"""Which HAT the hardware tests check (one place, for the conftest and the tests)."""

import os

DEFAULT_DATA_DIR = "/var/lib/linekeeper"


class HatUnknown(Exception):
    """The box's configuration, which names its HAT, cannot be read: no HAT is guessed."""


def hat_name():
    """The HAT under test: LINEKEEPER_HAT, else the box's own (its config.json), else lk-4l.

    lk-4l only when the box has no configuration: one that is there but cannot be read
    (the data directory is the services' alone, mode 2770, and the technician not in its
    group) or is not valid raises :class:`HatUnknown`, rather than check another HAT's pins.
    """
    if os.environ.get("LINEKEEPER_HAT"):
        return os.environ["LINEKEEPER_HAT"]
    from firmware.config import config_path, load_config_file
    from telephony.errors import ConfigError

    named = os.environ.get("LINEKEEPER_DATA_DIR")
    data_dir = named or DEFAULT_DATA_DIR
    path = config_path(data_dir)
    todo = "name the HAT for the run instead (LINEKEEPER_HAT=lk-2lb make hwtest, say)"
    if named and not os.path.isdir(data_dir):
        raise HatUnknown(
            "LINEKEEPER_DATA_DIR %s is not a directory: give the box's data directory, or %s"
            % (data_dir, todo)
        )
    try:
        os.stat(path)
    except FileNotFoundError:
        return "lk-4l"  # no configuration: the default
    except OSError as exc:
        raise HatUnknown(
            "cannot read the box's configuration %s, which names its HAT (%s): run the tests as root "
            "or a member of the data directory's group, or %s" % (path, exc.strerror or exc, todo)
        ) from None
    try:
        return load_config_file(path).hat or "lk-4l"
    except ConfigError as exc:
        raise HatUnknown("cannot tell which HAT the box has: %s; %s" % (exc, todo)) from None
