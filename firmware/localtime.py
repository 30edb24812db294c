"""Times and durations as people read them, in the box's time zone.

Storage, JSON and exports keep UTC (µs since the epoch, ISO 8601 with
``Z``); everything shown to a person goes through :class:`LocalTime`, which
knows the box's IANA zone (``Europe/London`` unless set otherwise in the
setup wizard or the settings page). One format everywhere::

    Mon 2 Mar 2026, 09:05:40 GMT      (a time, with the zone in force then)
    3 min ago                          (relative, where recency matters)
    4 min 12 s                         (a duration)

The zone's abbreviation is the one in force at that instant, so a call in
July reads ``BST`` and one in March ``GMT``. zoneinfo reads the system's
zone database, or the ``tzdata`` package where the system has none.
"""

import datetime
import functools
import re
import zoneinfo

DAY_US = 86_400_000_000

DEFAULT_ZONE = "Europe/London"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def check_zone(name):
    """The :class:`zoneinfo.ZoneInfo` called ``name``; raises ValueError naming a bad one."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise ValueError("%r is not a time zone name (such as Europe/London)" % (name,))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("%r is not a known time zone (such as Europe/London)" % (name,)) from None


def box_zone(saved=None):
    """The box's zone, the one every page, report and mail dates in: ``saved`` (the site
    settings' ``time_zone``) when it is a zone this box knows, else :data:`DEFAULT_ZONE`
    (a box not set up yet, or one whose saved zone this box's zone database lacks).
    The web UI and the box's other processes all ask it, so one box shows one time."""
    if saved:
        try:
            check_zone(saved)
            return saved
        except ValueError:
            pass
    return DEFAULT_ZONE


@functools.lru_cache(maxsize=1)
def zone_names():
    """Every IANA zone name this box knows, sorted (for the settings page's list)."""
    # Cached: the list reads the zone database from disk, and it changes only
    # with a software update (a restart).
    return sorted(
        n
        for n in zoneinfo.available_timezones()
        if "/" in n and not n.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    ) + ["UTC"]


def duration_text(seconds):
    """``4 min 12 s``, ``1 h 3 min``, ``12 s``; None (unknown) gives ``""``."""
    if seconds is None:
        return ""
    if 0 < float(seconds) < 9.95 and float(seconds) != int(seconds):
        return ("%.1f s" % float(seconds)).replace(".0 s", " s")  # a beep: 0.5 s, not 0 s
    total = int(round(max(0.0, float(seconds))))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%d h %d min" % (hours, minutes) if minutes else "%d h" % hours
    if minutes:
        return "%d min %d s" % (minutes, secs) if secs else "%d min" % minutes
    return "%d s" % secs


def day_words(date):
    """A calendar date (a :class:`datetime.date`, or ``YYYY-MM-DD``) as the pages write
    dates: ``Mon 2 Mar 2026``. Text that is not such a date is given back as it is; None
    (no date) as ``""``."""
    if date is None:
        return ""
    if isinstance(date, str):
        try:
            date = datetime.date.fromisoformat(date)
        except ValueError:
            return date
    return "%s %d %s %d" % (_DAYS[date.weekday()], date.day, _MONTHS[date.month - 1], date.year)


def days_words(first, last):
    """The days ``first`` to ``last`` (dates, or ``YYYY-MM-DD``) as the pages write dates
    (:func:`day_words`), the year said once when both are in it: ``Mon 2 Mar 2026``
    (one day), ``Mon 2 Mar - Sun 8 Mar 2026``, ``Mon 29 Dec 2025 - Sun 4 Jan 2026``."""
    start, end = day_words(first), day_words(last)
    if start == end:
        return start
    if start.rsplit(" ", 1)[-1] == end.rsplit(" ", 1)[-1]:
        start = start.rsplit(" ", 1)[0]
    return "%s - %s" % (start, end)


# A time of day as the search forms take it ("14:30", 24-hour), and what they say of text
# that is not one: the calls list's and the subject access search's alike.
_TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
TIME_OF_DAY_PROBLEM = "Enter a time of day as HH:MM, 24-hour (for example 14:30)."


def time_of_day(text):
    """The :class:`datetime.time` of ``text`` (``HH:MM``, 24-hour), or None when it is not one
    (say :data:`TIME_OF_DAY_PROBLEM`)."""
    m = _TIME_OF_DAY.fullmatch(text or "")
    return None if m is None else datetime.time(int(m.group(1)), int(m.group(2)))


# A date or a time in UTC as a message may hold one (an alarm's): ``2026-12-03`` alone, or
# with its time ``T10:00:00`` (seconds and their fraction optional, ``Z`` or ``+00:00``
# optional: UTC, as the box keeps times) or `` 10:00:00 UTC``. Not inside a longer word or
# number (a file's name), not a date followed by a time of no zone, and not a time in
# another zone (``+01:00``: said as if UTC, it was an hour out).
_DATE_IN_TEXT = re.compile(
    r"(?<![\w.:-])(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]00:?00)?| (\d{2}):(\d{2})(?::(\d{2}))? UTC)?"
    r"(?![\w-]|[.:+]\d| \d)"
)


class LocalTime:
    """Formats wall times (µs since the epoch, UTC) in the zone ``zone_name``.

    :raises ValueError: ``zone_name`` is not a known IANA zone
    """

    def __init__(self, zone_name=DEFAULT_ZONE):
        self.zone = check_zone(zone_name)
        self.zone_name = zone_name

    def local(self, wall_us):
        """The aware local datetime of ``wall_us``."""
        utc = datetime.datetime.fromtimestamp(int(wall_us) / 1e6, datetime.UTC)
        return utc.astimezone(self.zone)

    def when(self, wall_us):
        """``Mon 2 Mar 2026, 09:05:40 GMT``; None gives ``""``."""
        if wall_us is None:
            return ""
        t = self.local(wall_us)
        return "%s %d %s %d, %02d:%02d:%02d %s" % (
            _DAYS[t.weekday()],
            t.day,
            _MONTHS[t.month - 1],
            t.year,
            t.hour,
            t.minute,
            t.second,
            t.tzname() or self.zone_name,
        )

    def dates_in(self, text):
        """``text`` with each date and time in it written as the pages write them: a time
        (UTC, ``2026-12-03T10:00:00Z`` or ``2026-12-03 10:00 UTC``) as :meth:`when` says it in
        this zone, a date alone (``2026-12-03``) as :func:`day_words`. What is not a date of
        the calendar, or whose local date is not (the year 0 or 10000), is left as it is; so
        is the text stored, only shown so."""

        def said(m):
            year, month, day = m.group(1, 2, 3)
            # The time's hour, minute and second: after a T (groups 4-6) or before " UTC" (7-9).
            hour, minute, second = m.group(4, 5, 6) if m.group(4) is not None else m.group(7, 8, 9)
            try:
                date = datetime.date(int(year), int(month), int(day))
                if hour is None:
                    return day_words(date)
                t = datetime.datetime.combine(
                    date, datetime.time(int(hour), int(minute), int(second or 0)), datetime.UTC
                )
                # Its local date can be out of the calendar's range (the year 1 in a zone west
                # of UTC, 9999 east of it): a staff concern's words are in the message too.
                return self.when(int(t.timestamp()) * 1_000_000)
            except (ValueError, OverflowError):
                return m.group(0)

        return _DATE_IN_TEXT.sub(said, text or "")

    def day(self, wall_us):
        """``Mon 2 Mar 2026`` (the local date)."""
        return day_words(self.local(wall_us).date())

    def iso_date(self, wall_us):
        """The local date as ``YYYY-MM-DD`` (for date inputs)."""
        return self.local(wall_us).date().isoformat()

    def day_start_us(self, date):
        """µs since the epoch of local midnight starting ``date`` (a :class:`datetime.date`).

        Midnight is taken as the first instant of that date in the zone, so a
        day of a clock change is 23 or 25 hours long, as it was lived.
        """
        t = datetime.datetime(date.year, date.month, date.day, tzinfo=self.zone)
        return int(t.timestamp()) * 1_000_000

    def minute_start_us(self, date, time, last=False):
        """µs since the epoch of the local wall-clock ``time`` (a :class:`datetime.time`) on
        ``date``. A time the clocks went back over happens twice: its first, or with
        ``last`` its second; one the clocks skipped (the hour lost in spring) is read as
        the clock before the change would have shown it (01:30 is 02:30 summer time)."""
        t = datetime.datetime.combine(date, time, tzinfo=self.zone)
        if last:
            second = t.replace(fold=1)
            # Only a time the clocks went back over has a second reading; for one they
            # skipped, fold 1 is the clock after the change (01:30 read as 00:30 GMT),
            # which never showed it either: the first reading stands, at both ends.
            if datetime.datetime.fromtimestamp(second.timestamp(), self.zone).time() == time:
                t = second
        return int(t.timestamp() * 1_000_000)

    def day_end_us(self, date):
        """µs since the epoch of the local midnight that ends ``date`` (the next day's start).
        The calendar's last day (9999-12-31, which a date field takes) has no next day:
        it is taken as 24 hours long."""
        if date == datetime.date.max:
            return self.day_start_us(date) + DAY_US
        return self.day_start_us(date + datetime.timedelta(days=1))

    @staticmethod
    def ago(wall_us, now_us):
        """``just now``, ``3 min ago``, ``2 h ago``, ``5 days ago``, or ``in 4 min``."""
        if wall_us is None:
            return ""
        delta_s = (now_us - wall_us) / 1e6
        future = delta_s < 0
        delta_s = abs(delta_s)
        if delta_s < 45:
            return "just now"
        if delta_s < 3600:
            text = "%d min" % max(1, round(delta_s / 60))
        elif delta_s < 86400:
            text = "%d h" % round(delta_s / 3600)
        else:
            days = round(delta_s / 86400)
            text = "%d day%s" % (days, "" if days == 1 else "s")
        return "in " + text if future else text + " ago"


def iso_to_us(text):
    """µs since the epoch of an ISO 8601 UTC time (``2026-03-02T09:00:10.020Z``); None passes."""
    if not text:
        return None
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return int(round(t.timestamp() * 1_000_000))
