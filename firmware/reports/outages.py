"""When a line of the box was not in service in a report's period: the line-fault alarms
(:data:`firmware.bus.LINE_FAULTS`) of its alarm history that overlap the period.

The **Alarms** table lists the alarms *raised* in a period; a line dead since before
it, or still dead, is not among them, though no call could be made, received or
recorded on it. This reads every occurrence on during the period instead: raised
before its end and cleared after its start, or not cleared yet.
"""

from ..bus import LINE_FAULTS


def line_outages(alarms, period, lines, now_us, not_connected=()):
    """When lines of ``lines`` were not in service in ``period``, a dict:

    - ``out``: each line-fault occurrence on during the period, oldest first: ``line``,
      ``cause`` (a kind of :data:`~firmware.bus.LINE_FAULTS`), ``from_us``, ``to_us``
      (None: not cleared when the report was made), ``in_period_us`` (its part in the
      period; one not cleared counts up to ``now_us`` or the period's end);
    - ``out_us_by_line``: ``{line (str): µs}``, each line's time not in service in the
      period, two faults at once (no voltage while off-hook) counted once;
    - ``not_connected`` (only when there is one): the lines of ``lines`` in
      ``not_connected`` (marked as having nothing plugged in: what an empty socket shows
      is no outage), left out of the rest.

    :param alarms: an :class:`~firmware.alarmlog.AlarmLog`
    :param now_us: when the report is made (µs since the epoch, UTC)
    """
    start_us, end_us = period.start_us, min(period.end_us, max(now_us, period.start_us))
    out, spans = [], {}
    unplugged = sorted(set(lines) & set(not_connected))
    watched = set(lines) - set(unplugged)
    for row in alarms.overlapping(LINE_FAULTS, period.start_us, period.end_us, watched):
        lo = max(row["raised_us"], start_us)
        hi = end_us if row["cleared_us"] is None else min(row["cleared_us"], end_us)
        if hi <= lo:
            continue
        out.append(
            {
                "line": row["line"],
                "cause": row["kind"],
                "from_us": row["raised_us"],
                "to_us": row["cleared_us"],
                "in_period_us": hi - lo,
            }
        )
        spans.setdefault(row["line"], []).append((lo, hi))
    said = {"out": out, "out_us_by_line": {str(n): _union_us(s) for n, s in sorted(spans.items())}}
    if unplugged:  # (a report of a box with none has the shape it had)
        said["not_connected"] = unplugged
    return said


def _union_us(spans):
    total, reach = 0, None
    for lo, hi in sorted(spans):
        if reach is not None and lo < reach:
            lo = reach
        if hi > lo:
            total += hi - lo
            reach = hi
    return total
