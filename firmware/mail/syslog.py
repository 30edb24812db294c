"""Alarms also to a syslog server (RFC 5424 over UDP), as the installer chose.

Sent as they are raised, with no queue: syslog over UDP is fire and forget,
and the alarm history and e-mail are the record. A send that fails is
logged, never raised into the part of the box that raised the alarm.
"""

import datetime as dt
import json
import logging
import socket

from firmware.alarmlog import PRIVATE_KINDS
from firmware.storage import fsutil

log = logging.getLogger(__name__)
FACILITY_LOCAL0 = 16
SEVERITY = {"warning": 4, "error": 3}
# Alarms that mean calls are not recorded, or may not be lawful to record: errors.
ERRORS = frozenset(
    {
        "no_line_voltage",
        "line_not_connected_in_use",
        "recording_failed",
        "disk_full",
        "ico_expired",
        "key_tampered",
        "recorder_start_failed",
        "call_log",
        "consent_notice_failed",
        "announcement_unplayable",
    }
)
# Alarms whose message is a person's own words (a staff concern may name a caller):
# the log server gets that there is one, never what it says (the box does, after a login).
PRIVATE_MESSAGES = PRIVATE_KINDS
# How far back the first relay of a box's alarm history goes (seconds).
FIRST_LOOK_S = 24 * 3600


def address(setting):
    """``(host, port)`` of a ``host`` or ``host:port`` setting."""
    if ":" in setting:
        host, port = setting.rsplit(":", 1)
        return host.strip("[]"), int(port)
    return setting, 514


def message(row, hostname="linekeeper"):
    """The RFC 5424 datagram for alarm occurrence ``row``."""
    severity = SEVERITY["error"] if row["kind"] in ERRORS else SEVERITY["warning"]
    when = dt.datetime.fromtimestamp(row["raised_us"] / 1e6, dt.UTC)
    where = 'line="%d"' % row["line"]
    text = '<%d>1 %s %s linekeeper - alarm [alarm@32473 kind="%s" %s] %s' % (
        FACILITY_LOCAL0 * 8 + severity,
        when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        hostname,
        row["kind"],
        where,
        "(read it on the box)" if row["kind"] in PRIVATE_MESSAGES else row["message"] or row["kind"],
    )
    return text.encode("utf-8")


class SyslogAlarms:
    """An :class:`~firmware.alarmlog.AlarmLog` listener; ``settings() -> MailSettings``.

    ``live`` off: the listener sends nothing (a process with no network, the recorder
    on the box). The process that has it sends every occurrence instead with
    :meth:`catch_up`, those other processes raised included.
    """

    def __init__(self, settings, hostname=None):
        self.settings = settings
        self.hostname = hostname or socket.gethostname() or "linekeeper"
        self.live = True
        self._relayed = None  # the last occurrence :meth:`catch_up` sent (None: not read yet)

    def __call__(self, row):
        if self.live:
            self.send(row)

    def send(self, row):
        target = self.settings().syslog
        if not target:
            return
        try:
            host, port = address(target)
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(message(row, self.hostname), (host, port))
        except OSError as exc:
            log.warning("alarm %s not sent to syslog %s: %s", row["kind"], target, exc)

    def catch_up(self, alarm_log, state_path, now_us=None):
        """Send the occurrences ``alarm_log`` has gained since the last call (any process
        raised them), in order; the last one sent is kept in ``state_path`` across
        restarts. Returns how many were sent.

        The first call ever (no ``state_path``: a new box, a box updated from a release
        that sent from the recorder, a lost file) sends those raised in the
        :data:`FIRST_LOOK_S` before ``now_us``, each with the time it was raised, and
        not the older ones: a box's whole history at once would bury a syslog server
        in alarms long dealt with, which the alarm history and the audit trail keep.
        """
        last = self._relayed
        if last is None:  # read once; this process keeps it from then on
            try:
                with open(state_path) as f:
                    last = int(json.load(f)["last_id"])
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                last = None
        rows = alarm_log.since(last or 0)
        newest = rows[-1]["id"] if rows else (last or 0)
        if last is None:
            since_us = None if now_us is None else now_us - FIRST_LOOK_S * 1_000_000
            rows = [r for r in rows if since_us is not None and r["raised_us"] >= since_us]
        for row in rows:
            self.send(row)
        if newest != last:  # (a first look at an empty history notes 0: the next alarm goes)
            fsutil.atomic_write(state_path, json.dumps({"last_id": newest}).encode(), sync_dir=False)
        self._relayed = newest
        return len(rows)
