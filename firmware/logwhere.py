"""Where the ``linekeeper`` command's log goes.

A service (the recorder, the web UI, the console banner, the updater watching its inbox)
has nobody at a terminal: what it logs is what it says, on stderr, which systemd hands to
the journal; run by hand (``make run``), its log is on the terminal as before. A command a
person runs (``sar``, ``export``, ``verify``...) says what went wrong itself, in one line
(``linekeeper: ...``); its log records — a refusal, also in the audit trail — go to the
system log, not doubled on the terminal. ``--verbose`` puts them on the terminal too.
Without a system log, its warnings and errors are on the terminal: nowhere else keeps them;
but not a record the command says itself (logged with ``extra=SAID``, a refusal it prints
as its ``linekeeper:`` line), which would read twice there.
"""

import logging
import os
import sys
from logging.handlers import SysLogHandler

FORMAT = "%(asctime)s %(name)s: %(message)s"

# The system log's socket (journald's or syslog's, on the box).
SYSLOG_ADDRESS = "/dev/log"

# A log record's ``extra`` saying the command prints it itself (its ``linekeeper:`` line):
# kept by the system log, not shown again on the terminal without one.
SAID = {"said": True}

# Commands that run as a service, or run the box itself: their log is their output.
SERVICE_COMMANDS = frozenset({"run", "recorder", "web", "banner", "sim"})


def is_service(args):
    """Whether the parsed ``args`` are a command that runs as a service (its log on stderr)."""
    if args.command in SERVICE_COMMANDS:
        return True
    if args.command == "update":  # the inbox's watcher and the recovery at boot, not a bundle by hand
        return bool(getattr(args, "watch", None) or getattr(args, "recover", False))
    return args.command == "archive" and getattr(args, "archive_command", None) == "serve"


def stderr_is_journal(environ=None, stream=None):
    """Whether stderr is the journal: systemd says so in ``JOURNAL_STREAM`` (``device:inode``
    of the stream it gave the unit), for any command a unit runs."""
    environ = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    try:
        device, inode = (int(n) for n in environ.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def log_handlers(args, syslog_address=None):
    """The handlers for the root logger of a process running the parsed ``args``.

    Where there is no system log at ``syslog_address`` (default :data:`SYSLOG_ADDRESS`), or
    it cannot be connected (a development machine, a container), a person's command shows
    its warnings and errors on stderr: kept nowhere else, they would be lost."""
    if is_service(args) or stderr_is_journal():
        return [_formatted(logging.StreamHandler())]
    handlers = [_formatted(logging.StreamHandler())] if args.verbose else []
    syslog = _syslog(SYSLOG_ADDRESS if syslog_address is None else syslog_address)
    if syslog is not None:
        handlers.append(syslog)
    elif not args.verbose:
        shown = _formatted(logging.StreamHandler())
        shown.setLevel(logging.WARNING)
        shown.addFilter(_unsaid)
        handlers.append(shown)
    return handlers


def _unsaid(record):
    """Whether ``record`` is one the command does not print itself (:data:`SAID`)."""
    return not getattr(record, "said", False)


def _syslog(address):
    """A handler sending records to the system log at ``address``, or None if there is none
    or it takes nothing (cannot be connected)."""
    if not os.path.exists(address):
        return None
    try:
        handler = SysLogHandler(address=address)
    except OSError:
        return None
    sock = getattr(handler, "socket", None)
    if sock is None or sock.fileno() < 0:  # Python 3.11 on: not connected, and not raised
        handler.close()
        return None
    handler.ident = "linekeeper: "  # the journal's SYSLOG_IDENTIFIER; it keeps its own time
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def _formatted(handler):
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def configure(args):
    """Send the root logger's records where :func:`log_handlers` says, unless the process
    running the command has its own (a test running it in-process)."""
    root = logging.getLogger()
    if root.handlers:
        return
    for handler in log_handlers(args):
        root.addHandler(handler)
    root.setLevel(logging.INFO if args.verbose else logging.WARNING)
