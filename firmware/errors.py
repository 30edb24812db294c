"""One exception hierarchy for the whole product.

Each error that can reach a person says what was wrong and, where it helps,
what to do about it. Subclasses also inherit the builtin they resemble, so
callers that only know ``ValueError`` or ``OSError`` still catch them.
"""

# The errors the lower layers (telephony/, board/) raise live at the bottom, in
# telephony/errors.py, so that board/ never imports firmware/; they are part of
# this hierarchy all the same.
from telephony.errors import (  # noqa: F401  (re-exported)
    ConfigError,
    HardwareError,
    HatError,
    InputFileError,
    LinekeeperError,
    ScenarioError,
)


class AudioFormatError(LinekeeperError, ValueError):
    """An audio file is missing, unreadable or not in a format we accept."""


# --- Encryption, key store and audit trail -------------------------------------------


class TamperError(LinekeeperError, ValueError):
    """Authenticated data failed its check.

    The data was modified, truncated, reordered or duplicated, or it was opened
    with the wrong key or for the wrong recording. Nothing of it can be trusted.
    """


class LineKeyLostError(TamperError):
    """A recording's line key is in no copy of the key store: the key store was put back from
    a backup made before that key (``keystore restore --accept-lost-lines``). The recording
    cannot be opened, which says nothing of whether it was altered."""


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


class NotGrantedError(KeyStoreError, PermissionError):
    """An unlocked key does not hold the line key a recording was wrapped to.

    A supervisor's key slot holds only the private keys of the lines granted
    to them: this is the cryptography saying no, not an access rule.
    """


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


class StorageError(LinekeeperError, OSError):
    """The card refused a read or write: full, read-only, no permission, I/O error,
    or a database that is damaged or not a database. The message says which and where."""

    def __str__(self):
        return self.strerror or super().__str__()  # without OSError's "[Errno N]"


class RecoveryRefused(LinekeeperError, RuntimeError):
    """The box will not start on this data directory as it is: starting would risk
    recordings (a lost or damaged call log, missing keys). The message says what to do."""


class ReportError(LinekeeperError, ValueError):
    """A report cannot be made as asked (a bad date range, too many calls, bad format)."""


class UpdateError(LinekeeperError, RuntimeError):
    """A firmware update was refused or failed (its message says why; nothing changed
    unless it says it rolled back)."""


class RekeyBusyError(KeyStoreError):
    """A rekey was asked for while one is running."""
