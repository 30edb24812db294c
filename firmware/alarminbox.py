"""Alarms from other processes: a note left in ``DATA_DIR/alarm-inbox/``, raised by the box.

The alarm history, its e-mail and its syslog live in the recorder process;
the update command (``linekeeper update``, run by root from a USB stick or
a technician) is another process that may run while the recorder is
stopped or restarting. So the updater does not raise the alarm itself: it
leaves a note (one small JSON file, written atomically) and the recorder's
periodic round (:class:`AlarmInbox`, every minute and at start-up) raises it
through :class:`~firmware.alarmlog.AlarmLog`, which shows, mails and audits
it like any other, then removes the note. A note survives the restart an
update brings, and a power cut.

Each note is an occurrence of its own (raised and cleared at once, kept on
the banner until acknowledged), like ``power_loss_restart``: two failed
updates are two alarms, two mails.
"""

import json
import logging
import os
import secrets
import threading

from .storage.fsutil import atomic_write, hand_to_data_dir_owner, make_private_dir, remove_durable

log = logging.getLogger(__name__)

INBOX = "alarm-inbox"
UPDATE_FAILED = "update_failed"
ARCHIVE_FAILED = "archive_failed"  # the uploads run in the web UI's process
# The kinds a note may raise (a note is a file anyone with write access to the
# data directory could leave: it may not raise, say, a fake line fault).
KINDS = frozenset({UPDATE_FAILED, ARCHIVE_FAILED})
MAX_NOTE_BYTES = 16 * 1024
_OUTCOMES = {
    "refused": "was refused (nothing was changed)",
    "not_switched": "was installed but not switched to",
    "rolled_back": "failed and was rolled back",
    "failed": "failed",
}


def post_update_result(data_dir, result, wall_us):
    """The updater's call: leave an ``update_failed`` note for an update that did not
    install (``result``: an :class:`firmware.update.flow.UpdateResult`); returns the
    note's path, or None (installed, or the note could not be written).

    Never raises: the update's own report and audit entry are already written,
    and an update must not be undone because its alarm could not be noted
    (the failure is logged).
    """
    if result.outcome not in _OUTCOMES:
        return None
    message = "the update %s %s: %s" % (result.bundle, _OUTCOMES[result.outcome], result.message)
    return post_note(data_dir, UPDATE_FAILED, message, wall_us)


def post_note(data_dir, kind, message, wall_us):
    """Leave a note raising ``kind`` (one of :data:`KINDS`) with ``message``; its path, or
    None when it could not be written (logged, never raised)."""
    note = {"kind": kind, "message": message[:2000], "wall_us": int(wall_us)}
    inbox = os.path.join(data_dir, INBOX)
    path = os.path.join(inbox, "%020d-%s-%s.json" % (int(wall_us), kind, secrets.token_hex(4)))
    try:
        # The box's data mode: the web UI (the archive) and root (updates) leave notes,
        # the recorder raises and removes them.
        make_private_dir(inbox)
        atomic_write(path, json.dumps(note).encode())
        hand_to_data_dir_owner(data_dir, (inbox, path))
    except OSError as exc:
        log.error("cannot leave the %s alarm for the box (%s): %s", kind, path, exc)
        return None
    return path


class AlarmInbox:
    """Raise the notes in ``DATA_DIR/alarm-inbox`` on ``alarm_log`` and remove them
    (a periodic check: call it)."""

    def __init__(self, data_dir, alarm_log):
        self.dir = os.path.join(data_dir, INBOX)
        self.alarm_log = alarm_log
        self._lock = threading.Lock()  # one round at a time: a note is raised once

    def __call__(self):
        """Raise every note waiting; returns how many were raised."""
        with self._lock:
            return self._drain()

    def _drain(self):
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        except FileNotFoundError:
            return 0
        raised = 0
        for name in names:
            path = os.path.join(self.dir, name)
            note = self._read(path)
            if note is not None:
                kind, message, wall_us = note
                self.alarm_log.set(kind, True, message=message, wall_us=wall_us)
                self.alarm_log.set(kind, False, wall_us=wall_us)
                raised += 1
            remove_durable(path)
        return raised

    def _read(self, path):
        """``(kind, message, wall_us)`` of the note at ``path``, or None (logged) when it
        is not a note this box raises."""
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read(MAX_NOTE_BYTES + 1))
            kind, message, wall_us = data["kind"], str(data["message"]), int(data["wall_us"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("an unreadable alarm note %s was dropped: %s", path, exc)
            return None
        if kind not in KINDS:
            log.error("an alarm note %s asks for %r, which no other process raises: dropped", path, kind)
            return None
        return kind, message, wall_us
