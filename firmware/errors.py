"""One exception hierarchy for the whole product.

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


class HardwareError(LinekeeperError, OSError):
    """The configured hardware could not be opened or stopped working."""


class AudioFormatError(LinekeeperError, ValueError):
    """An audio file is missing, unreadable or not in a format we accept."""


class InputFileError(LinekeeperError, ValueError):
    """An input file cannot be read as one: no such file, not a regular file, too large.

    Raised by :func:`firmware.inputfile.read_input_file`; readers turn it into
    their own error (a scenario's, a HAT file's, an audio file's), naming the file.
    """


# --- Encryption, key store and audit trail -------------------------------------------


class TamperError(LinekeeperError, ValueError):
    """Authenticated data failed its check.

    The data was modified, truncated, reordered or duplicated, or it was opened
    with the wrong key or for the wrong recording. Nothing of it can be trusted.
    """


class StreamFinishedError(LinekeeperError, RuntimeError):
    """An encrypted stream was used after its final chunk was sealed."""


class KeyStoreError(LinekeeperError):
    """Base class of the errors of the box's recording key store."""


class NotInitialisedError(KeyStoreError, RuntimeError):
    """The box has no recording keys yet: run ``linekeeper init`` first."""


class AlreadyInitialisedError(KeyStoreError, RuntimeError):
    """The box already has recording keys; initialising again would orphan every recording."""


class WrongPasswordError(KeyStoreError, ValueError):
    """The user name, password or recovery key does not open the recording key."""


class RecoveryKeyFormatError(WrongPasswordError):
    """A recovery key was mistyped: wrong length, characters or checksum."""


class WeakPasswordError(KeyStoreError, ValueError):
    """A new password is not acceptable (too short)."""


class KeySlotError(KeyStoreError, ValueError):
    """A key slot change was refused: unknown or duplicate user, or the last password slot."""


class KeyForgottenError(KeyStoreError, RuntimeError):
    """An unlocked recording key was used after ``forget()``: unlock again."""


class AuditError(LinekeeperError, ValueError):
    """An audit entry could not be recorded as given (unknown action, bad details)."""


class CodecError(LinekeeperError, RuntimeError):
    """The audio codec library is missing, or it refused a setting or a frame."""


class DiskFullError(LinekeeperError, OSError):
    """The disk filled up while recording.

    The recording stopped cleanly: everything written before is kept and
    readable (a partial recording). Free space (or let retention delete old
    recordings) and recording works again.
    """
