"""The period a report covers: whole days from one date to another, in a time zone."""

import dataclasses
import datetime as dt
import zoneinfo

from ..errors import ReportError
from ..localtime import check_zone, day_words, days_words

MAX_DAYS = 366


@dataclasses.dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last`` (dates, both included) in time zone ``tz`` (IANA name).

    ``start_us`` / ``end_us``: the period as µs since the epoch (UTC), end excluded.
    """

    first: dt.date
    last: dt.date
    tz: str = "UTC"

    @property
    def zone(self):
        return zoneinfo.ZoneInfo(self.tz)

    def _midnight_us(self, day):
        t = dt.datetime.combine(day, dt.time(0), tzinfo=self.zone)
        return int(t.timestamp()) * 1_000_000

    @property
    def start_us(self):
        return self._midnight_us(self.first)

    @property
    def end_us(self):
        if self.last == dt.date.max:  # no next day (a date field takes 9999-12-31): 24 h
            return self._midnight_us(self.last) + 86_400_000_000
        return self._midnight_us(self.last + dt.timedelta(days=1))

    @property
    def days(self):
        return (self.last - self.first).days + 1

    def label(self):
        if self.first == self.last:
            return self.first.isoformat()
        return "%s to %s" % (self.first.isoformat(), self.last.isoformat())

    def local(self, wall_us):
        """The local datetime of ``wall_us`` (µs since the epoch) in this period's zone."""
        return dt.datetime.fromtimestamp(wall_us / 1e6, self.zone)

    def not_over(self, now_us):
        """What a report must say of a period not over at wall time ``now_us`` (its figures
        are those so far, or none yet), or None when it is over. Today is said as the pages
        write a date (``Mon 2 Mar 2026``): a person reads it, on the page, in the PDF."""
        today = self.local(now_us).date()
        if self.first > today:
            return "This period has not begun (today is %s): there is nothing to count yet." % (
                day_words(today)
            )
        if self.last >= today:
            return "This period is not over (today is %s): the figures are those so far." % day_words(today)
        return None


def _date(text, name):
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise ReportError("the %s date %r is not a date like 2026-03-02" % (name, text)) from None


def parse_period(first, last, tz="UTC"):
    """A :class:`Period` from ISO dates ``first`` and ``last`` (text or dates).

    :raises ReportError: a date is not a date, ``last`` is before ``first``
        (a backwards range), the range is longer than :data:`MAX_DAYS`, or
        ``tz`` is not a known time zone
    """
    a = first if isinstance(first, dt.date) else _date(first, "from")
    b = last if isinstance(last, dt.date) else _date(last, "to")
    if b < a:
        raise ReportError(
            "the date range is backwards: 'to' (%s) is before 'from' (%s)" % (day_words(b), day_words(a))
        )
    if (b - a).days + 1 > MAX_DAYS:
        raise ReportError(
            "a date range covers at most %d days; %s is %d days"
            % (MAX_DAYS, days_words(a, b), (b - a).days + 1)
        )
    try:
        check_zone(tz)  # "Europe" (a folder) or a name too long is refused too, not a 500
    except ValueError:
        raise ReportError("unknown time zone %r" % (tz[:64] if isinstance(tz, str) else tz)) from None
    return Period(a, b, tz)


def named_period(kind, today, tz="UTC"):
    """The last complete day / week (Monday to Sunday) / month before ``today``.

    :param kind: ``"daily"``, ``"weekly"`` or ``"monthly"``
    """
    if kind == "daily":
        d = today - dt.timedelta(days=1)
        return Period(d, d, tz)
    if kind == "weekly":
        monday = today - dt.timedelta(days=today.weekday())
        return Period(monday - dt.timedelta(days=7), monday - dt.timedelta(days=1), tz)
    if kind == "monthly":
        first_this = today.replace(day=1)
        last_prev = first_this - dt.timedelta(days=1)
        return Period(last_prev.replace(day=1), last_prev, tz)
    raise ReportError("a schedule is daily, weekly or monthly, not %r" % (kind,))
