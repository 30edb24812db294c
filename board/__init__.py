"""Board support: the Board interface and its implementations.

:func:`open_board` is the one place that picks an implementation. The
simulated board is the default only when no HAT is configured; a configured
HAT whose hardware cannot be opened is an error, never a quiet fall-back.
"""

import os

from telephony.errors import ConfigError

BOARDS = ("sim", "rpi")


def choose_board(requested=None, configured=None, environ=None):
    """Return ``"sim"`` or ``"rpi"``: an explicit request (a command-line
    option) wins, then ``LINEKEEPER_BOARD``, then the configured value, then
    ``"sim"``."""
    environ = os.environ if environ is None else environ
    name = requested or environ.get("LINEKEEPER_BOARD") or configured or "sim"
    if name not in BOARDS:
        raise ConfigError("unknown board %r; use one of: %s" % (name, ", ".join(BOARDS)), field="board")
    return name
