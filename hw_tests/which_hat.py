"""Which HAT the hardware tests check (one place, for the conftest and the tests)."""

import os

DEFAULT_DATA_DIR = "/var/lib/linekeeper"


class HatUnknown(Exception):
    """The box's configuration, which names its HAT, cannot be read: no HAT is guessed."""


def hat_name():
    """The HAT under test: LINEKEEPER_HAT, else the box's own (its config.json), else lk-4l.

    A HAT named that is not one there is (a shipped name, board/hats, or a valid HAT file)
    raises :class:`HatUnknown`, naming the shipped ones, before anything else.

    lk-4l only when the box has no configuration: one that is there but cannot be read
    (the data directory is the services' alone, mode 2770, and the technician not in its
    group) or is not valid raises :class:`HatUnknown`, rather than check another HAT's pins.
    """
    if os.environ.get("LINEKEEPER_HAT"):
        return _known(os.environ["LINEKEEPER_HAT"])
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
        named = load_config_file(path).hat
    except ConfigError as exc:
        raise HatUnknown("cannot tell which HAT the box has: %s; %s" % (exc, todo)) from None
    return _known(named, path) if named else "lk-4l"


def _known(name, config=None):
    """``name`` when it is a HAT there is: a shipped one (board/hats) or a valid HAT file;
    else :class:`HatUnknown`, in one line naming the shipped HATs. ``config``: the box's
    configuration file that names it (else LINEKEEPER_HAT does)."""
    from board.hat import list_hats, load_hat
    from telephony.errors import HatError

    shipped = list_hats()
    where = "LINEKEEPER_HAT" if config is None else "the box's configuration %s names the HAT" % config
    if "/" not in name and not name.endswith(".json"):  # a name, as load_hat takes one
        if name in shipped:
            return name
        hats = " and ".join([", ".join(shipped[:-1]), shipped[-1]] if len(shipped) > 1 else shipped)
        raise HatUnknown(
            "%s %r%s no HAT there is: the HATs are %s (board/hats), or give the path to a HAT file of "
            "your own" % (where, name, " is" if config is None else ", which is", hats)
        )
    try:
        load_hat(name)
    except HatError as exc:
        raise HatUnknown("%s %s: %s" % (where, name, " ".join(str(exc).split()))) from None
    return name
