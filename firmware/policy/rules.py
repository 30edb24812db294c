"""The recording decision for one call, and the rule that made it.

:func:`decide` is a pure function of the settings and the call, evaluated
when the call becomes recordable: when an inbound call is answered, when an
outbound call starts (lines recording every call: the recording starts at
off-hook) or when it connects (every other line: its number is only known
once dialling ends). It returns a :class:`Decision`: ``record``, ``skip`` or
``pending`` (an on-demand line waiting to be asked), with its reason in words
and the rule's name.

The checks, in order (the first that settles the call wins):

1. the line's mode: ``never`` skips (``line 3 is private``), ``always``
   records, ``on_demand`` waits; ``by_rule`` goes on:
2. direction (``outbound calls are not recorded``);
3. number lists: an exclude list the number matches skips
   (``number excluded by rule "helplines"``: the reason, copied into the
   call log, names the rule, never the pattern, which may be a whole number); with any include list,
   a number on none of them skips. On a line with an outside-line digit, a number dialled
   beginning with it is excluded when it is listed with or without the digit, and included
   only when it is listed without it;
4. business hours and holidays (``outside business hours``,
   ``public holiday 2026-12-25``), in the configured time zone, at the call's
   start;
5. sampling (``sampled out (30 %)``): a hash of the line and the call's start
   time, so the same call always gets the same answer;
6. minimum duration: the call is recorded *provisionally* — its audio stays
   in memory — and :func:`too_short` skips it at its end if it talked less
   than ``min_duration_s`` (``shorter than 10 s``).

Numbers are compared in international form: on a UK box ``01632 960123`` is
``+441632960123`` and the pattern ``+44*`` matches it, as ``0*`` does; on a
US box ten digits ``NXXNXXXXXX`` are ``+1NXXNXXXXXX``.
"""

import dataclasses
import datetime as dt
import hashlib
import re
import zoneinfo
from dataclasses import dataclass, field

from firmware.storage.fieldseal import is_sealed
from telephony import countries

from .checks import (
    Checked,
    check_bool,
    check_choice,
    check_code,
    check_int,
    check_items,
    check_number,
    check_text,
    fail,
    shown,
)

RECORD, SKIP, PENDING = "record", "skip", "pending"
# Added to the reason of a call the rules would record on a box with no recording key
# yet (not set up): why it has no recording, rather than a recording lost.
# A call on a line the site settings say has nothing plugged in (BoxConfig.not_connected).
NOT_CONNECTED = "line %d is marked not connected: nothing should be plugged into its socket"
NOT_SET_UP = "but the box was not set up yet: it had no recording key"
# The reason of a call that ended unanswered (settled by the engine, no rule): the call page
# says it was never answered rather than that a rule left it out.
NEVER_CONNECTED = "never connected"
# Added to the reason of a call the rules would record (or record on demand) on a box that
# waits for a consent notice (``policy.consent.require_notice``, a box `linekeeper init`
# made): skipped, as nobody on it was told it might be recorded.
NO_NOTICE = "but the box was not set up yet: no consent notice was set, so nobody was told calls are recorded"
# The same on such a box where a notice had been set and every one was turned off since: it
# was set up, and the call is a skip for its consent settings (not "before_setup"). Calls
# skipped so by a development build of this release carry NO_NOTICE, which cannot tell the two apart.
NOTICES_OFF = (
    "but every consent notice had been turned off since one was set, so nobody was told calls are recorded"
)
# What happened to such a call, where a list gives one word for it (the calls CSV, the
# report): not "record", which it was not, nor "skip", which no rule said.
BEFORE_SETUP = "before_setup"


def outcome(decision, reason):
    """What the box did with a call the rules decided ``decision`` on, for ``reason``:
    the decision, or :data:`BEFORE_SETUP` for a call they would record on a box that had
    no recording key yet, or no consent notice yet (nothing was recorded). A call skipped
    because every notice had been turned off since one was set (:data:`NOTICES_OFF`) is a
    ``skip``: the box was set up."""
    if reason and (decision == RECORD and reason.endswith(NOT_SET_UP) or reason.endswith(NO_NOTICE)):
        return BEFORE_SETUP
    return decision


MODES = ("always", "never", "on_demand", "by_rule")
DIRECTIONS = ("in", "out")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_LINES = 64
PATTERN = re.compile(r"\+?[0-9?*][0-9?* ]{0,31}")
WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")
NAME = re.compile(r"\S(.{0,38}\S)?")
OUTSIDE_LINE = re.compile(r"[0-9]{0,2}")


@dataclass(frozen=True)
class Decision:
    """``decision`` is "record", "skip" or "pending"; ``reason`` says why, in words;
    ``rule`` names the setting that decided (``"line"``, ``"direction"``,
    ``"numbers:helplines"``, ``"hours"``, ``"sampling"``, ``"min_duration"``,
    ``"on_demand"``, ``"personal"``); ``min_talk_s`` > 0 makes a "record" provisional."""

    decision: str
    reason: str
    rule: str
    min_talk_s: float = 0


def decide(rules, line, direction, number, started_wall_us, country="uk"):
    """The :class:`Decision` for a call (see the module docstring).

    :param rules: :class:`~firmware.policy.settings.RecordingRules`
    :param number: caller ID (inbound) or dialled digits (outbound), or None
    :param started_wall_us: the call's start, µs since the epoch (UTC)
    """
    mode = rules.mode(line)
    if mode == "never":
        return Decision(SKIP, "line %d is private" % line, "line")
    if mode == "always":
        return Decision(RECORD, "line %d records every call" % line, "line")
    if mode == "on_demand":
        return Decision(PENDING, "line %d records on demand: not asked yet" % line, "on_demand")
    if direction not in rules.directions:
        return Decision(SKIP, "%s calls are not recorded" % _DIRECTION[direction], "direction")
    reasons = []
    # The line's outside-line digit begins only a number dialled on it, not a caller's.
    outside = rules.outside_line(line) if direction == "out" else ""
    listed = _numbers(rules.numbers, number, country, outside)
    if listed is not None:
        if listed.decision == SKIP:
            return listed
        reasons.append(listed.reason)
    if rules.hours is not None:
        when = _hours(rules.hours, started_wall_us)
        if when is not None:
            return when
        reasons.append("inside business hours")
    if rules.sample_percent < 100:
        if _sample(line, started_wall_us) >= rules.sample_percent:
            return Decision(SKIP, "sampled out (%s %%)" % _pct(rules.sample_percent), "sampling")
        reasons.append("sampled in (%s %%)" % _pct(rules.sample_percent))
    reason = "; ".join(reasons) or "the call passes every rule"
    return Decision(RECORD, reason, "rules", float(rules.min_duration_s))


def too_short(decision, answered_us, ended_us):
    """The "skip" :class:`Decision` of a provisional recording that talked too little, or None."""
    if decision.decision != RECORD or not decision.min_talk_s or answered_us is None:
        return None
    if ended_us - answered_us < decision.min_talk_s * 1_000_000:
        return Decision(SKIP, "shorter than %s s" % _pct(decision.min_talk_s), "min_duration")
    return None


_DIRECTION = {"in": "inbound", "out": "outbound"}


def _pct(x):
    return ("%d" % x) if float(x).is_integer() else ("%g" % x)


# ------------------------------------------------------------------ numbers
def normalise(number, country):
    """``number`` (digits, maybe ``+`` and spaces; wildcards kept) in international form.

    ``country`` says how national numbers are written there (its
    :class:`~telephony.countries.NumberFormat`).
    """
    # "+44 (0)1632 960123", as UK letterheads write a number: the (0) is the trunk
    # prefix, dialled only from inside the country, never after the country code. Only
    # after one: "(0)1632 960123", written without it, is 01632 960123.
    n = re.sub(r"(?<=\d)\s*\(\s*0\s*\)", "", number or "")
    n = re.sub(r"[\s().-]", "", n)
    if n.startswith("+"):
        return n
    fmt = countries.country(country).numbers
    wild = "*" in n or "?" in n
    if n.startswith(fmt.international_prefix):
        return "+" + n[len(fmt.international_prefix) :]
    if (
        fmt.trunk_prefix
        and n.startswith(fmt.trunk_prefix)
        and (fmt.national_digits is None or wild or len(n) == len(fmt.trunk_prefix) + fmt.national_digits)
    ):
        return "+" + fmt.country_code + n[len(fmt.trunk_prefix) :]
    if (
        fmt.national_first_digits
        and n[:1] in tuple(fmt.national_first_digits)
        and (wild or len(n) == fmt.national_digits)
    ):
        return "+" + fmt.country_code + n
    rest = n[len(fmt.country_code) :]
    if n.startswith(fmt.country_code) and len(rest) in fmt.significant_digits and rest[:1] not in ("", "0"):
        return "+" + n  # 441632960123: a caller's number as some networks send it
    return n


def never_matched(pattern, country):
    """Why ``pattern`` (a number list's entry, as typed) can match no call on a box in
    ``country``, or None: one without a wildcard matches only that number exactly, and a
    national number (after the trunk prefix) or an international one of the country's
    own code shorter or longer than the country's plan allows
    (:attr:`~telephony.countries.NumberFormat.national_digits_range`) is no number a call has
    ("01632 96", meant as "01632 96*", matched nothing, and the staff notice counted it).
    Other numbers (short codes, extensions, other countries') are left as given."""
    n = re.sub(r"[\s().-]", "", pattern or "")
    if not n or "*" in n or "?" in n:
        return None
    fmt = countries.country(country).numbers
    fewest, most = (fmt.national_digits,) * 2 if fmt.national_digits else fmt.national_digits_range or (0, 0)
    if not most:
        return None
    intl = (
        "+"
        if n.startswith("+")
        else fmt.international_prefix
        if n.startswith(fmt.international_prefix)
        else ""
    )
    if intl:
        rest, begins = n[len(intl) :], intl + fmt.country_code
        if not rest.startswith(fmt.country_code):
            return None
        rest = rest[len(fmt.country_code) :]
    elif fmt.trunk_prefix and n.startswith(fmt.trunk_prefix):
        rest, begins = n[len(fmt.trunk_prefix) :], fmt.trunk_prefix
    else:
        return None
    if fewest <= len(rest) <= most:
        return None
    many = str(most) if fewest == most else "%d to %d" % (fewest, most)
    return "it is too %s to be a whole number (a number beginning %s has %s digits after it)" % (
        "short" if len(rest) < fewest else "long",
        begins,
        many,
    )


def called_number(number, country, outside=""):
    """``number`` without the prefixes dialled before the number called: to withhold or
    show the caller's own number (141 0800 123456 calls 0800 123456), or to call through
    a text relay service (Relay UK's 18001 0800 123456 calls 0800 123456 too): staff who
    withhold their number or call through the relay still call the number an exclude list
    names. Prefixes are taken off only before a national or international number, one
    after another (141 18001 0800 123456). ``outside``: the line's outside-line digit
    (:class:`LineMode`), taken off first where the number begins with it (9 141 0800
    123456 on a PBX extension calls 0800 123456 too)."""
    fmt = countries.country(country).numbers
    n = re.sub(r"[\s().-]", "", number)
    if outside and n.startswith(outside) and len(n) > len(outside):
        n = number = n[len(outside) :]
    called = _past_prefixes(n, fmt)
    return number if called is None else called


def _past_prefixes(n, fmt):
    """``n`` (digits) without the prefixes before it (:func:`called_number`), or None when
    no prefix stands before a national or international number."""
    for prefix in fmt.presentation_prefixes + fmt.relay_prefixes:
        if not n.startswith(prefix):
            continue
        rest = n[len(prefix) :]
        rest = _past_prefixes(rest, fmt) or rest
        national = (
            fmt.national_digits and len(rest) == fmt.national_digits and rest[:1] in fmt.national_first_digits
        )
        if rest.startswith(("+", fmt.international_prefix, fmt.trunk_prefix)) or national:
            return rest
    return None


def matches(pattern, number, country="uk", outside=""):
    """Whether ``number`` matches ``pattern`` (``*`` any digits, ``?`` one digit).

    Both sides are compared in international form, so ``+44*`` and ``0*``
    both match the UK number ``01632960123``; a national pattern also matches
    the number written as dialled (a short code, an extension). ``outside``: the
    line's outside-line digit, which is not part of the number (:func:`called_number`).
    """
    if not number:
        return False
    number = called_number(number, country, outside)
    candidates = {normalise(number, country), re.sub(r"\s", "", number)}
    regexes = {_regex(normalise(pattern, country)), _regex(re.sub(r"\s", "", pattern))}
    return any(r.fullmatch(c) for r in regexes for c in candidates)


def _regex(pattern):
    out = []
    for ch in pattern:
        out.append({"*": r"[0-9*#]*", "?": r"[0-9*#]"}.get(ch, re.escape(ch)))
    return re.compile("".join(out))


def _numbers(lists, number, country, outside=""):
    if not lists:
        return None
    if any(is_sealed(p) for item in lists for p in item.patterns):
        # Rules read without the storage key (the box opens them): they cannot be
        # applied, and what they might exclude must not be recorded.
        return Decision(SKIP, "the number rules are sealed and this process has no key", "numbers")
    for item in lists:
        if item.action != "exclude":
            continue
        for pattern in item.patterns:
            # On a line with an outside-line digit, a number beginning with it may have been
            # dialled after it (9 0800...) or without it, past the switchboard (999 on one
            # that passes it straight through, an extension): excluded if either is listed.
            if matches(pattern, number, country, outside) or (outside and matches(pattern, number, country)):
                return Decision(SKIP, 'number excluded by rule "%s"' % item.name, "numbers:" + item.name)
    includes = [item for item in lists if item.action == "include"]
    if not includes:
        return None
    # An include list is matched against the number without the outside-line digit only:
    # the number as dialled is a second reading, there to keep out what must not be
    # recorded, never a reason to record a call (docs/policy.md).
    for item in includes:
        for pattern in item.patterns:
            if matches(pattern, number, country, outside):
                return Decision(RECORD, 'number included by rule "%s"' % item.name, "numbers:" + item.name)
    if not number:
        return Decision(SKIP, "number withheld: not on an include list", "numbers")
    return Decision(
        SKIP, "number not on an include list (%s)" % ", ".join('"%s"' % i.name for i in includes), "numbers"
    )


# ------------------------------------------------------------------ hours
def _hours(hours, wall_us):
    """None inside business hours, else the "skip" Decision."""
    local = dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).astimezone(hours.zone)
    day = local.date().isoformat()
    if day in hours.holidays:
        return Decision(SKIP, "public holiday %s" % day, "hours")
    minute = local.hour * 60 + local.minute
    if any(start <= minute < end for start, end in hours.windows(local.weekday())):
        return None
    return Decision(SKIP, "outside business hours", "hours")


# ------------------------------------------------------------------ sampling
def _sample(line, started_wall_us):
    """A number in [0, 100) fixed for the call (its line and start), spread evenly."""
    digest = hashlib.sha256(b"linekeeper-sample/%d/%d" % (line, started_wall_us)).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


# ------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class LineMode:
    """How one line is recorded: ``mode`` is one of :data:`MODES`.

    ``always``     every answered call
    ``never``      a private line: nothing of it is ever recorded
    ``on_demand``  only once someone asks (button or DTMF code) during the call
    ``by_rule``    when the call passes the rules (direction, hours, numbers,
                   sampling, minimum duration)

    ``outside_line`` the digit (1 or 2 digits) the line's switchboard takes before an
                   outside number, a line on a PBX extension (``9``, sometimes ``0``);
                   "" (the default, left out of the file): none. A number dialled after
                   it is judged without it (number lists, card numbers keyed on:
                   :func:`firmware.calls.supervisor.dialling_prefix`); an exclude list
                   also matches it as dialled, as it may have been dialled past the
                   switchboard (999, an extension)
    """

    line: int
    mode: str = "always"
    outside_line: str = ""


@dataclass(frozen=True)
class NumberList:
    """A named list of number patterns that includes or excludes calls.

    ``action``   "include": with any include list, only calls whose number is
                 on one are recorded; "exclude": calls whose number is on it
                 are not (excludes win)
    ``patterns`` numbers with wildcards: ``*`` any digits, ``?`` one digit;
                 spaces are ignored and ``+CC`` matches the national form
                 (``+44*`` matches 01632 960123 on a UK box)
    """

    _LISTS = ("patterns",)

    name: str
    action: str
    patterns: tuple = ()


@dataclass(frozen=True)
class BusinessHours(Checked):
    """When "by_rule" lines record: inside these hours, except on the holidays.

    ``timezone`` an IANA zone name; ``days`` maps "mon".."sun" to windows
    "HH:MM-HH:MM" (a day left out is closed; "24:00" ends at midnight);
    ``holidays`` "YYYY-MM-DD" dates on which nothing is "inside".
    """

    _PATH = "policy.rules.hours"
    _LISTS = ("holidays",)
    _ADAPT = {"days": lambda value, where: _days(value, where)}

    timezone: str = "Europe/London"
    days: dict = field(default_factory=dict)
    holidays: tuple = ()

    def check(self, path):
        check_text(
            self.timezone,
            re.compile(r"[A-Za-z0-9_+/-]{1,64}"),
            path + ".timezone",
            'a time zone name such as "Europe/London"',
        )
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            fail(
                path + ".timezone",
                'unknown time zone %r: give a time zone name such as "Europe/London"' % self.timezone,
            )
        if not isinstance(self.days, dict):
            fail(path + ".days", "must be an object of weekday: windows")
        for day, windows in self.days.items():
            where = "%s.days.%s" % (path, day)
            check_choice(day, WEEKDAYS, where)
            if not isinstance(windows, tuple):
                fail(where, 'must be a list of "HH:MM-HH:MM" windows')
            for i, window in enumerate(windows):
                _window(window, "%s[%d]" % (where, i))
        if not isinstance(self.holidays, tuple):
            fail(path + ".holidays", "must be a list of dates")
        for i, day in enumerate(self.holidays):
            try:
                dt.date.fromisoformat(day)
            except (TypeError, ValueError):
                fail("%s.holidays[%d]" % (path, i), 'must be a date "YYYY-MM-DD", not %r' % (day,))

    @property
    def zone(self):
        return zoneinfo.ZoneInfo(self.timezone)

    def windows(self, weekday):
        """``[(start_min, end_min)]`` of weekday ``weekday`` (0 = Monday), minutes from midnight."""
        return [_window(w, None) for w in self.days.get(WEEKDAYS[weekday], ())]


def _days(value, where):
    """``days`` as JSON gives it: an object of weekday: list of windows (made tuples)."""
    if not isinstance(value, dict):
        fail(where, "must be an object of weekday: windows")
    return {day: tuple(w) if isinstance(w, list) else w for day, w in value.items()}


def _window(text, path):
    m = WINDOW.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        fail(path, 'must be a window "HH:MM-HH:MM" such as "09:00-17:30", not %r' % (text,))
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end > 24 * 60 or end <= start:
        fail(path, "must end after it starts, by 24:00 at the latest: %r" % text)
    return start, end


@dataclass(frozen=True)
class OnDemand(Checked):
    """How an "on_demand" line is asked to record.

    ``dtmf_code``  keys typed on the handset during the call (None: off)
    ``button``     the line's ``record_button`` input (if the HAT has one)
    ``from_start`` True: the recording includes the call from its start (as
                   far back as the line's ring buffer reaches: ``lookback_s``);
                   False: only from the press
    ``lookback_s`` how much audio each line's ring buffer keeps, 8 to 600 s;
                   memory is 16 KB a second per line, rounded up to a power of two
    """

    _PATH = "policy.rules.on_demand"

    dtmf_code: str = "*9"
    button: bool = True
    from_start: bool = True
    lookback_s: int = 30

    def check(self, path):
        check_code(self.dtmf_code, path + ".dtmf_code")
        check_bool(self.button, path + ".button")
        check_bool(self.from_start, path + ".from_start")
        check_int(self.lookback_s, 8, 600, path + ".lookback_s", "seconds")


# The reason of a call a staff member keyed the personal-call code on (rule "personal"): in
# the call log, the calls list and the reports, which count such calls per line.
PERSONAL_REASON = "marked personal by the staff member (personal-call code): not recorded"


@dataclass(frozen=True)
class Personal(Checked):
    """The personal-call code: keyed on the handset during a connected call, the call is
    not recorded (what was recorded of it is discarded) and is logged as marked personal.

    ``dtmf_code``  keys typed during the call: None (the default) is off; else ``*`` or
                   ``#`` and 1 to 7 more keys, so that keys pressed for a menu or an
                   extension cannot make a call personal
    ``lines``      the lines the code works on (None: every line)
    """

    _PATH = "policy.rules.personal"
    _ADAPT = {"lines": lambda value, where: tuple(value) if isinstance(value, list) else value}

    dtmf_code: str = None
    lines: tuple = None

    def check(self, path):
        check_code(self.dtmf_code, path + ".dtmf_code")
        code = self.dtmf_code
        if code is not None and (code[0] not in "*#" or len(code) < 2):
            fail(
                path + ".dtmf_code",
                "must start with * or # and have 2 to 8 keys, so that keys pressed for a menu "
                "cannot make a call personal, not %r" % (code,),
            )
        if self.lines is None:
            return
        if not isinstance(self.lines, tuple) or not self.lines:
            fail(path + ".lines", "must be a list of at least one line number, or null for every line")
        seen = set()
        for i, line in enumerate(self.lines):
            check_int(line, 1, MAX_LINES, "%s.lines[%d]" % (path, i))
            if line in seen:
                fail("%s.lines[%d]" % (path, i), "line %d is listed twice" % line)
            seen.add(line)

    def on(self, line):
        """Whether the code works on ``line``."""
        return self.dtmf_code is not None and (self.lines is None or line in self.lines)


@dataclass(frozen=True)
class RecordingRules(Checked):
    """Which calls are recorded (see :mod:`firmware.policy.rules` for the order of checks).

    ``default_mode``   the mode of lines not listed in ``lines``
    ``lines``          :class:`LineMode` per line (each line at most once)
    ``directions``     "by_rule" lines record calls in these directions
    ``hours``          :class:`BusinessHours`, or None for any time
    ``numbers``        :class:`NumberList` s
    ``min_duration_s`` "by_rule" calls talking less than this keep no recording
                       (0 to 600); their audio stays in memory until then
    ``sample_percent`` share of the "by_rule" calls that pass every other rule
                       which is recorded (0 to 100; chosen per call, repeatably)
    ``on_demand``      :class:`OnDemand`
    ``personal``       :class:`Personal` (off by default)
    """

    _PATH = "policy.rules"
    _NESTED = {
        "lines": [LineMode],
        "hours": BusinessHours,
        "numbers": [NumberList],
        "on_demand": OnDemand,
        "personal": Personal,
    }
    _LISTS = ("directions",)

    default_mode: str = "always"
    lines: tuple = ()
    directions: tuple = DIRECTIONS
    hours: BusinessHours = None
    numbers: tuple = ()
    min_duration_s: float = 0
    sample_percent: float = 100
    on_demand: OnDemand = field(default_factory=OnDemand)
    personal: Personal = field(default_factory=Personal)

    def check(self, path):
        check_choice(self.default_mode, MODES, path + ".default_mode")
        seen = {}
        for i, item in enumerate(check_items(self.lines, LineMode, path + ".lines")):
            where = "%s.lines[%d]" % (path, i)
            check_int(item.line, 1, MAX_LINES, where + ".line")
            if item.line in seen:
                fail(where + ".line", "line %d is already set by lines[%d]" % (item.line, seen[item.line]))
            seen[item.line] = i
            check_choice(item.mode, MODES, where + ".mode")
            digit = item.outside_line
            if not isinstance(digit, str) or not OUTSIDE_LINE.fullmatch(digit):
                # A long paste is said back as its start (config import, the recorder's start).
                fail(
                    where + ".outside_line",
                    "line %d's outside-line digit must be 1 or 2 digits (what its switchboard takes "
                    'before an outside number, such as "9"), or "" for none, not %s'
                    % (item.line, repr(shown(digit)) if isinstance(digit, str) else shown(repr(digit))),
                )
        if not isinstance(self.directions, tuple) or not self.directions:
            fail(path + ".directions", 'must be a list of "in" and/or "out"')
        for i, d in enumerate(self.directions):
            check_choice(d, DIRECTIONS, "%s.directions[%d]" % (path, i))
        if self.hours is not None:
            if not isinstance(self.hours, BusinessHours):
                fail(path + ".hours", "must be an object or null")
            self.hours.check(path + ".hours")
        names = {}
        for i, item in enumerate(check_items(self.numbers, NumberList, path + ".numbers")):
            where = "%s.numbers[%d]" % (path, i)
            check_text(item.name, NAME, where + ".name", "a name of 1 to 40 characters")
            if item.name in names:
                fail(where + ".name", "numbers[%d] already has this name" % names[item.name])
            names[item.name] = i
            check_choice(item.action, ("include", "exclude"), where + ".action")
            if not isinstance(item.patterns, tuple) or not item.patterns:
                fail(where + ".patterns", "must be a list of at least one pattern")
            for k, pattern in enumerate(item.patterns):
                if is_sealed(pattern):
                    continue  # sealed on the card (firmware.storage.sealstores): opened by the box
                check_text(
                    pattern,
                    PATTERN,
                    "%s.patterns[%d]" % (where, k),
                    "a number pattern of digits, '*' and '?' (an optional leading '+', "
                    'spaces allowed), e.g. "0800*" or "01632 96????"',
                )
        check_number(self.min_duration_s, 0, 600, path + ".min_duration_s", "seconds")
        check_number(self.sample_percent, 0, 100, path + ".sample_percent", "percent")
        if not isinstance(self.on_demand, OnDemand):
            fail(path + ".on_demand", "must be an object")
        self.on_demand.check(path + ".on_demand")
        if not isinstance(self.personal, Personal):
            fail(path + ".personal", "must be an object")
        self.personal.check(path + ".personal")

    def mode(self, line):
        """The mode of ``line``."""
        for item in self.lines:
            if item.line == line:
                return item.mode
        return self.default_mode

    def closed_all_week(self, n_lines=None):
        """The "by_rule" lines that record no call at all because business hours are on
        and no day has any: ``(lines, default)``, the lines among 1 to ``n_lines`` (those
        listed in ``lines`` if None) and whether lines added later are such too. The Rules
        page refuses it; a ``config.json`` or an import may hold it, and is loaded as it
        is. ``([], False)`` when hours are off or a day has a window."""
        if self.hours is None or any(self.hours.days.values()):
            return [], False
        numbers = range(1, n_lines + 1) if n_lines is not None else sorted(item.line for item in self.lines)
        return [n for n in numbers if self.mode(n) == "by_rule"], self.default_mode == "by_rule"

    def outside_line(self, line):
        """The outside-line digit of ``line`` (:class:`LineMode`), or "" for none."""
        for item in self.lines:
            if item.line == line:
                return item.outside_line
        return ""

    def outside_lines(self):
        """``{line: outside-line digit}`` of every line that has one."""
        return {item.line: item.outside_line for item in self.lines if item.outside_line}

    def with_modes(self, modes):
        """A copy with ``{line: mode}`` set (other lines keep theirs, and every line its
        outside-line digit)."""
        kept = [m for m in self.lines if m.line not in modes]
        new = [LineMode(line, mode, self.outside_line(line)) for line, mode in sorted(modes.items())]
        return dataclasses.replace(self, lines=tuple(sorted(kept + new, key=lambda m: m.line)))

    def newly_set_for_release_before(self, saved):
        """The settings of these rules that the release before refuses in ``config.json``
        and that ``saved`` (the rules saved now) does not have: ``("personal", None)`` when
        the personal-call code is turned on, ``("outside_line", line)`` for each line given
        an outside-line digit where it had none. A release on trial must not write them: a
        rollback would start the release before on that file (docs/updates.md)."""
        out = []
        if self.personal.dtmf_code is not None and saved.personal.dtmf_code is None:
            out.append(("personal", None))
        for line in sorted(self.outside_lines()):
            if not saved.outside_line(line):
                out.append(("outside_line", line))
        return out
