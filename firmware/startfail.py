"""Why the recorder could not start, kept where the failing card is not.

When the recorder cannot start (a card that refuses, a HAT that does not
answer, a config it cannot read) it exits with a one-line reason, and its
service starts it again 2 s later, for as long as it takes (docs/appliance.md).
Meanwhile no call is recorded, and the people who could act on it are not at
the console. So each failed start is noted in the RAM-only run directory
(``LINEKEEPER_RUN_DIR``), never on the card that may be what fails:

- the web UI shows the reason, since when and how many tries, where it would
  otherwise only say the recorder is not answering (``web/remote.py``);
- the web UI tells syslog, and after minutes mails the alarm recipients once
  (``web/startalarm.py``, ``web/startmail.py``);
- the start that works raises ``recorder_start_failed`` (an occurrence, mailed
  and kept on the banner until acknowledged) and audits how long the box
  recorded nothing and why, then removes the note.

The note is gone after a reboot, as the run directory is; without a run
directory (``linekeeper run`` on a desk) nothing is noted.

A Pi has no battery-backed clock: a start that fails at boot, before the network
time arrives, is dated by the time the Pi last saved, hours early. So each failure
is noted with the monotonic clock too (``since_mono_us``, ``last_mono_us``, with
this boot's id, and whether the wall clock was set: ``clock_synced``), and
:func:`read` dates the failures again from it by the clock as it reads them (the
same instant, however the wall clock was set meanwhile), as ``box_start`` is dated
again (firmware/uptime.py). Read by a clock not yet set, they say so
(``clock_synced`` false): a report gives such a time as approximate.
"""

import json
import logging
import os
import time

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


# What kind of fault stopped the start, in words with no detail of it (no path, no
# name): what a syslog alarm may carry off the box (web/startalarm.py).
CAUSES = ("hat", "hardware", "storage key", "card", "config", "recovery", "other")


def cause(exc):
    """The one of :data:`CAUSES` that ``exc`` (why a start failed) belongs to."""
    import sqlite3

    from .errors import ConfigError, HardwareError, HatError, KeyStoreError, RecoveryRefused, TamperError
    from .handover import HandoverError
    from .hatswap import HatMoveError
    from .storage.fieldseal import FieldSealError

    for kinds, name in (
        ((HatError, HatMoveError), "hat"),
        ((HardwareError,), "hardware"),
        ((FieldSealError, KeyStoreError, TamperError, HandoverError), "storage key"),
        ((RecoveryRefused,), "recovery"),
        ((ConfigError,), "config"),
        ((OSError, sqlite3.Error), "card"),
    ):
        if isinstance(exc, kinds):
            return name
    return "other"


def clocks_now():
    """``(wall_us, monotonic_us, clock_synced)`` now: the clocks a failure is dated by."""
    from .clock import kernel_clock_synchronised

    return time.time_ns() // 1000, time.monotonic_ns() // 1000, kernel_clock_synchronised()


def read(run_dir):
    """The note of the failed starts since the last start that worked, or None:
    ``{"error", "since_us", "last_us", "attempts"}`` (wall-clock microseconds), ``cause``
    (one of :data:`CAUSES`; absent in a note an older release wrote), and
    ``clock_synced`` (whether the clock that dates them was set; a note without it: as
    it was read before, set). A note that kept the monotonic clock in this boot is dated
    by the wall clock as it is now."""
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
    monos = [note.get(k) for k in ("since_mono_us", "last_mono_us")]
    if all(type(m) is int for m in monos) and note.get("boot_id") is not None:
        from .uptime import boot_id

        if note["boot_id"] == boot_id():
            # Dated again from the monotonic clock: a failure before the clock was set is
            # not dated by the time the Pi last saved.
            wall_us, mono_us, synced = clocks_now()
            note["since_us"], note["last_us"] = (wall_us - (mono_us - m) for m in monos)
            note["clock_synced"] = synced
    return note


def outage(note):
    """What names the run of failed starts ``note`` (:func:`read`) is of, the same at every
    read of it: its boot's id and first failure on the monotonic clock, or (a note without
    them) its ``since_us`` as written. Not ``since_us`` itself, which :func:`read` dates again
    at each read: it moves by a microsecond or two between reads, and by hours once the
    clock is set, while the failures are the same."""
    if type(note.get("since_mono_us")) is int and note.get("boot_id") is not None:
        return "%s/%d" % (note["boot_id"], note["since_mono_us"])
    return str(note["since_us"])


def record(run_dir, exc, wall_us, mono_us=None, clock_synced=True):
    """Note a failed start (``exc``, at ``wall_us``; ``mono_us``: the same instant on the
    monotonic clock, or None; ``clock_synced``: whether the wall clock was set): the
    reason is this failure's, the first failure's time and the count carry on. Returns
    the note, or None without a run directory. Never raises: the recorder's own exit
    must say why it stops."""
    if run_dir is None:
        return None
    earlier = read(run_dir)
    note = {
        "error": describe(exc),
        "cause": cause(exc),
        "since_us": earlier["since_us"] if earlier else wall_us,
        "last_us": wall_us,
        "attempts": (earlier["attempts"] if earlier else 0) + 1,
    }
    since_mono = (earlier.get("since_mono_us") if earlier else mono_us) if mono_us is not None else None
    if since_mono is not None:  # not for a first failure noted without it
        from .uptime import boot_id

        note.update(
            since_mono_us=since_mono,
            last_mono_us=mono_us,
            boot_id=boot_id(),
            clock_synced=bool(clock_synced),
        )
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
