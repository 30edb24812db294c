"""The base of Linekeeper's one exception hierarchy.

It sits in the bottom layer so that every layer can raise it: ``telephony``
and ``board`` raise these, ``firmware.errors`` re-exports them and adds the
firmware's own. Catch them through :mod:`firmware.errors`; define new errors
there (or here, if ``board`` or ``telephony`` must raise them).

Each error that can reach a person says what was wrong and, where it helps,
what to do about it. Subclasses also inherit the builtin they resemble, so
callers that only know ``ValueError`` or ``OSError`` still catch them.
"""


class LinekeeperError(Exception):
    """Base class of every error Linekeeper raises on purpose."""


class ConfigError(LinekeeperError, ValueError):
    """A configuration, scenario or HAT file is invalid.

    ``source`` names the file (or ``None``), ``field`` the offending field as a
    dotted path such as ``calls[2].rings``, and ``position`` the line and column
    in the file where that is known.
    """

    def __init__(self, message, *, source=None, field=None, position=None):
        self.source = source
        self.field = field
        self.position = position
        parts = []
        if source:
            where = str(source)
            if position:
                where += ":%d:%d" % position
            parts.append(where)
        if field:
            parts.append(field)
        parts.append(message)
        super().__init__(": ".join(parts))
        self.message = message


class ScenarioError(ConfigError):
    """A simulator scenario file is invalid."""


class HatError(ConfigError):
    """A HAT data file is invalid."""


class InputFileError(LinekeeperError, ValueError):
    """An input file cannot be read as one: no such file, not a regular file, too large.

    Raised by :func:`board.inputfile.read_input_file`; readers turn it into
    their own error (a scenario's, a HAT file's, an audio file's), naming the file.
    """


class HardwareError(LinekeeperError, OSError):
    """The configured hardware could not be opened or stopped working."""
