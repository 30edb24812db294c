"""Lines with nothing plugged into their socket (``BoxConfig.not_connected``).

A 4-line HAT fitted where the site has 2 lines has two sockets with no line: their
supervisors see no line voltage, and each raised a ``no_line_voltage`` alarm that
never cleared, and reports listed them as not in service, for good. Choosing a
2-line HAT in the configuration hid it, but says the hardware is what it is not.

So the installer marks such a line not connected (Settings, Lines). Its faults raise
no alarm (the line supervisor still watches it: the history keeps nothing, the
dashboard says "not connected"), and an occurrence open when it was marked clears.
It is never recorded (:class:`firmware.policy.engine.PolicyEngine`). But a call
seen on it (a ring, an off-hook) is still logged, and raises
``line_not_connected_in_use``: a line is plugged in after all, and its calls are
not being recorded. It stays open until the line is marked connected again; its
faults that are on then raise their alarms at once.
"""

from . import words
from .bus import LINE_FAULTS, CallStarted

IN_USE = "line_not_connected_in_use"
# What the history says of an occurrence that ended as its line was marked (or unmarked).
MARKED = "line %d was marked not connected in the site settings"
UNMARKED = "line %d was marked connected in the site settings"


class NotConnectedLines:
    """The not-connected lines' alarms.

    :param lines: ``() -> the lines marked not connected now`` (the box's configuration)
    :param alarm_log: a :class:`firmware.alarmlog.AlarmLog`
    :param faults: ``(line) -> the line faults on now`` (the line supervisor's)
    """

    def __init__(self, lines, alarm_log, faults):
        self._lines = lines
        self._alarm_log = alarm_log
        self._faults = faults

    def quiet(self, line):
        """Whether a fault of ``line`` raises no alarm (the alarm log's filter)."""
        return line in self._lines()

    def attach(self, bus):
        bus.subscribe(CallStarted, self._started)

    def _started(self, ev):
        if ev.line not in self._lines():
            return
        call = ev.call
        self._alarm_log.set(
            IN_USE,
            True,
            line=ev.line,
            message="a call %s on line %d, marked not connected: it is in the call log, and was not "
            "recorded" % ("came in" if call.direction == "in" else "was made", ev.line),
            call_id=getattr(call, "id", None),
        )

    def restore(self, open_faults):
        """``open_faults`` (``{line: kinds}``, the last run's, as the history has them)
        without those of the lines marked not connected now, which are cleared; and an
        in-use alarm of a line no longer marked cleared."""
        marked = set(self._lines())
        for line in sorted(open_faults):
            kinds = open_faults[line]
            if line in marked:
                for kind in sorted(kinds & set(LINE_FAULTS)):
                    self._alarm_log.set(kind, False, line=line, message=MARKED % line)
                kinds -= set(LINE_FAULTS)
            elif IN_USE in kinds:
                self._alarm_log.set(IN_USE, False, line=line, message=UNMARKED % line)
                kinds.discard(IN_USE)
        return {line: kinds for line, kinds in open_faults.items() if kinds}

    def changed(self, old, new):
        """The lines marked not connected went from ``old`` to ``new``: the faults of a line
        marked clear, an unmarked line's in-use alarm clears and its faults on now are raised."""
        for line in sorted(set(new) - set(old)):
            for kind in sorted(LINE_FAULTS):
                self._alarm_log.set(kind, False, line=line, message=MARKED % line)
        for line in sorted(set(old) - set(new)):
            self._alarm_log.set(IN_USE, False, line=line, message=UNMARKED % line)
            for kind in sorted(self._faults(line) & set(LINE_FAULTS)):
                self._alarm_log.set(kind, True, line=line, message=words.say("fault", kind))
