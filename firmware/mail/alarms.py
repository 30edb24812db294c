"""Alarms by e-mail, at most one per alarm (kind and line) per rate window.

A flapping line raises its fault again and again; each occurrence is kept in
the alarm history, but mail goes out for the first, and then for the first
one after ``rate_window_s`` has passed, saying how many were not mailed in
between. A staff concern, a power cut and a failed start are mailed every time
(:data:`EVERY_ONE_MAILED`).
"""

import logging
import threading

from .compose import alarm_message

log = logging.getLogger(__name__)
# Each occurrence of these is news of its own, never a repeat: a second staff concern
# says something else than the first, and every power cut or failed start is one.
EVERY_ONE_MAILED = frozenset({"staff_concern", "power_fail", "power_loss_restart", "recorder_start_failed"})


class AlarmMailer:
    """Queue a mail for each alarm raised (an :class:`~firmware.alarmlog.AlarmLog` listener).

    :param queue: a :class:`~firmware.mail.queue.MailQueue`
    :param settings: ``() -> MailSettings``
    :param wall_us: ``() -> µs``
    :param on_queued: called after a mail is queued (wakes the delivery thread)
    """

    def __init__(self, queue, settings, wall_us, box_name="Linekeeper", on_queued=None, site=None):
        self.queue = queue
        self.settings = settings
        self.wall_us = wall_us
        self.box_name = box_name
        self.on_queued = on_queued
        # () -> (box's name, LocalTime, {line: name}): what the mails say, as saved now.
        self.site = site or (lambda: (self.box_name, None, {}))
        self._lock = threading.Lock()
        self._last_us = {}  # (kind, line) -> when the last mail was queued
        self._suppressed = {}  # (kind, line) -> occurrences not mailed since

    def __call__(self, row):
        settings = self.settings()
        if not settings.configured or not settings.alarm_to:
            log.warning("alarm %s not e-mailed: no mail server or alarm recipients set", row["kind"])
            return
        key = (row["kind"], row["line"])
        now = int(self.wall_us())
        with self._lock:
            last = self._last_us.get(key)
            if (
                row["kind"] not in EVERY_ONE_MAILED
                and last is not None
                and now - last < settings.rate_window_s * 1_000_000
            ):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last_us[key] = now
            suppressed = self._suppressed.pop(key, 0)
        name, local_time, lines = self.site()
        self.queue.enqueue(alarm_message(settings, row, name, now, suppressed, local_time, lines))
        if self.on_queued is not None:
            self.on_queued()
