"""The alarms that are on now: what the dashboard's health panel lists.

Parts of the box publish :class:`firmware.bus.Alarm` events when an
alarm goes on or off (``disk_full``, ``disk_warning``, ``disk_critical``,
``clock_jump``, ``clock_unsynchronised``, ``call_log``, ``quarantine``,
``retention_failed`` ...). :class:`AlarmBoard` keeps the
latest state of each (kind, line) and, called, returns those
that are on in :mod:`firmware.words`' words.
"""

import threading

from . import words
from .bus import Alarm


class AlarmBoard:
    """The active alarms, from the bus."""

    def __init__(self):
        self._lock = threading.Lock()
        self._active = {}

    def attach(self, bus):
        bus.subscribe(Alarm, self._on_alarm)

    def _on_alarm(self, alarm):
        with self._lock:
            key = (alarm.kind, alarm.line)
            if alarm.active:
                self._active[key] = alarm
            else:
                self._active.pop(key, None)

    def active(self):
        """The alarms that are on, oldest first."""
        with self._lock:
            return sorted(self._active.values(), key=lambda a: a.t_us)

    def __call__(self):
        """The messages of the alarms that are on (the web UI's ``alarms()``)."""
        return [text for _line, text in self.described()]

    def described(self):
        """``[(line, message)]`` of the alarms that are on (line 0: the whole box), oldest
        first: the web UI shows an alarm of a line only to those who may see that line."""
        return [(a.line, alarm_words(a.kind, a.line, a.message)) for a in self.active()]


# The roles that see the box's alarms (web.accounts.OFFICE_ROLES); staff do not.
ALARM_ROLES = ("installer", "supervisor", "auditor")


def sees_alarms_of(roles, lines, line):
    """Whether an account of ``roles`` granted ``lines`` sees the alarms of ``line`` (0: the
    whole box, which every role that sees alarms sees): every line for an installer, who
    commissions and mends the lines, and for an auditor, who checks every line's calls; a
    supervisor's granted lines. The one rule for the pages (:func:`web.security.alarm_lines`)
    and the alarm mails (:func:`firmware.mail.alarms.recipients_for`)."""
    roles = set(roles)
    if not roles & set(ALARM_ROLES):
        return False
    return not line or bool(roles & {"installer", "auditor"}) or ("supervisor" in roles and line in lines)


def health_alarms(alarms):
    """The ``alarms`` and ``alarm_lines`` of a health answer from ``alarms`` (an
    :class:`AlarmBoard`, or any callable giving the messages): ``alarm_lines`` maps the
    message of each alarm of one line to that line (an alarm of the whole box has none)."""
    described = alarms.described() if hasattr(alarms, "described") else [(0, t) for t in alarms()]
    return {
        "alarms": [text for _line, text in described],
        "alarm_lines": {text: line for line, text in described if line},
    }


def alarm_words(kind, line, message):
    """An alarm that is on, as the health panel lists it: its title, its line, and what
    its message says beyond the title ("No voltage on the line ... (line 2): ...")."""
    text = words.alarm_text(kind, message)
    where = " (line %d)" % line if line else ""
    return "%s%s%s" % (words.say("alarm", kind), where, ": " + text if text else "")


def reminder_words(kind):
    """A reminder that is on (:data:`firmware.alarmchecks.REMINDER_KINDS`: a setting the box
    still lacks, not a fault), as the dashboard's health panel lists it: the alarm's title
    and what to do, in the words its history and mail use ("No retention period is set:
    every recording is kept for ever. An installer sets how long ...")."""
    advice = words.alarm_advice(kind)
    return "%s. %s." % (words.say("alarm", kind), advice[0].upper() + advice[1:])
