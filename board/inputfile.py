"""Reading an input file someone handed us: a scenario, a HAT file, a config, a WAV.

:func:`read_input_file` reads only a *regular* file and at most a given number
of bytes. A FIFO would block the reader for ever, a device such as
``/dev/zero`` never ends and ``/dev/random`` never stops; a path holding a NUL
character cannot name a file at all. Each of these, like a missing or
unreadable file, becomes one :class:`~telephony.errors.InputFileError` whose
message says what is wrong, for the caller to turn into its own error.
"""

import os
import stat

from telephony.errors import InputFileError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_input_file(path, max_bytes):
    """The whole content (bytes) of the regular file at ``path``, at most ``max_bytes`` long.

    The file is opened non-blocking (so a FIFO cannot hold us up) and checked
    with ``fstat`` on the open descriptor, so the check is of the file read.

    :raises InputFileError: the path is not a usable name, the file is missing,
        unreadable, not a regular file, or larger than ``max_bytes``
    """
    name = os.fspath(path)
    if "\0" in (name.decode("latin-1") if isinstance(name, bytes) else name):
        raise InputFileError("the file name holds a NUL character")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise InputFileError("cannot read the file: no such file") from None
    except PermissionError:
        raise InputFileError("cannot read the file: permission denied") from None
    except OSError as exc:
        raise InputFileError("cannot read the file: %s" % (exc.strerror or exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
            raise InputFileError("is %s, not a regular file" % kind)
        if st.st_size > max_bytes:
            raise InputFileError("the file is %s; at most %s is read" % (_size(st.st_size), _size(max_bytes)))
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while we read it
                raise InputFileError("the file is larger than %s" % _size(max_bytes))
        return b"".join(chunks)
    except OSError as exc:
        raise InputFileError("cannot read the file: %s" % (exc.strerror or exc)) from None
    finally:
        os.close(fd)


def printable_name(path):
    """A file name as it can be shown in a one-line message (NULs and controls escaped)."""
    name = os.fsdecode(path)
    return name if name.isprintable() else repr(name)[1:-1]


def _size(n_bytes):
    if n_bytes >= 1 << 20:
        return "%.1f MiB" % (n_bytes / (1 << 20))
    if n_bytes >= 1 << 10:
        return "%.1f KiB" % (n_bytes / (1 << 10))
    return "%d bytes" % n_bytes
