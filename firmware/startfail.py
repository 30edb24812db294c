"""Why the recorder could not start, kept where the failing card is not.

When the recorder cannot start (a card that refuses, a HAT that does not
answer, a config it cannot read) it exits with a one-line reason, and its
service starts it again 2 s later, for as long as it takes (docs/appliance.md).
Meanwhile no call is recorded, and the people who could act on it are not at
the console. So each failed start is noted in the RAM-only run directory
(``LINEKEEPER_RUN_DIR``), never on the card that may be what fails:

- the web UI shows the reason, since when and how many tries, where it would
  otherwise only say the recorder is not answering (``web/remote.py``);
- the start that works raises ``recorder_start_failed`` (an occurrence, mailed
  and kept on the banner until acknowledged) and audits how long the box
  recorded nothing and why, then removes the note.

The note is gone after a reboot, as the run directory is; without a run
directory (``linekeeper run`` on a desk) nothing is noted.
"""

import json
import logging
import os

log = logging.getLogger(__name__)

FILE = "recorder-start.json"
MODE = 0o640  # the web UI reads it through the box's group


def describe(exc):
    """The one line the recorder prints for ``exc`` as it exits."""
    import sqlite3

    from .errors import LinekeeperError

    if isinstance(exc, LinekeeperError):
        return " ".join(str(exc).split())
    if isinstance(exc, (OSError, sqlite3.Error)):
        from .datadir import storage_error

        return str(storage_error(exc, "storage error"))
    return " ".join(("%s: %s" % (type(exc).__name__, exc)).split())


def read(run_dir):
    """The note of the failed starts since the last start that worked, or None:
    ``{"error", "since_us", "last_us", "attempts"}`` (wall-clock microseconds)."""
    if run_dir is None:
        return None
    try:
        with open(os.path.join(run_dir, FILE), encoding="utf-8") as f:
            note = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the note of the recorder's failed starts: %s", exc)
        return None
    if not (
        isinstance(note, dict)
        and isinstance(note.get("error"), str)
        and all(
            isinstance(note.get(k), int) and not isinstance(note.get(k), bool)
            for k in ("since_us", "last_us", "attempts")
        )
    ):
        log.warning("the note of the recorder's failed starts is not one: ignored")
        return None
    return note


def record(run_dir, exc, wall_us):
    """Note a failed start (``exc``, at ``wall_us``): the reason is this failure's, the
    first failure's time and the count carry on. Returns the note, or None without a
    run directory. Never raises: the recorder's own exit must say why it stops."""
    if run_dir is None:
        return None
    earlier = read(run_dir)
    note = {
        "error": describe(exc),
        "since_us": earlier["since_us"] if earlier else wall_us,
        "last_us": wall_us,
        "attempts": (earlier["attempts"] if earlier else 0) + 1,
    }
    path = os.path.join(run_dir, FILE)
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, MODE)
        try:
            os.fchmod(fd, MODE)
            os.write(fd, json.dumps(note).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)  # RAM: no sync
    except OSError as exc2:
        log.warning("cannot note the failed start in %s: %s", run_dir, exc2)
        return None
    return note


def clear(run_dir):
    """Remove the note (the recorder has started) and return it, or None if there was none."""
    note = read(run_dir)
    if run_dir is not None:
        try:
            os.unlink(os.path.join(run_dir, FILE))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the note of the recorder's failed starts: %s", exc)
    return note
