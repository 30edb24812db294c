"""The policy settings: typed, validated, versioned; ``config.json``'s ``policy`` section.

Every class is a frozen dataclass that checks itself when built, so a
settings object that exists is valid. :meth:`PolicySettings.from_dict` reads
the JSON object (migrating older versions first) and rejects it whole at the
first bad field, which the :class:`~firmware.errors.ConfigError` names as a
dotted path from the top of the configuration (``policy.rules.lines[2].mode``).
:meth:`PolicySettings.to_dict` writes it back. Example (every field shown has
its default unless marked)::

    "policy": {
      "version": 1,
      "rules": {
        "default_mode": "always",
        "lines": [{"line": 3, "mode": "never"},                        (example)
                  {"line": 2, "mode": "by_rule"}, {"line": 4, "mode": "on_demand"}],
        "directions": ["in", "out"],
        "hours": {"timezone": "Europe/London",                          (default null)
                  "days": {"mon": ["09:00-17:30"], "tue": ["09:00-12:30", "13:30-17:30"]},
                  "holidays": ["2026-12-25", "2026-12-26"]},
        "numbers": [{"name": "helplines", "action": "exclude",          (default [])
                     "patterns": ["0800*", "0808*"]}],
        "min_duration_s": 0,
        "sample_percent": 100,
        "on_demand": {"dtmf_code": "*9", "button": true, "from_start": true, "lookback_s": 30}
      },
      "consent": {
        "inbound": "off", "outbound": "off",
        "announcement": {"text": "This call may be recorded.", "voice": null,
                         "file": null, "level_dbm0": -16},
        "warning_tone": {"enabled": false, "frequency_hz": 1400, "duration_ms": 500,
                         "interval_s": 15, "level_dbm0": -13},
        "record_if_notice_failed": false
      },
      "pci": {"pause_code": "*1", "resume_code": "*2", "button": true, "auto_resume_s": 120,
              "mask_dtmf": true},
      "retention": {...}                      (firmware.policy.retention.RetentionSettings)
    }

What each field means is in the docstring of its class. The defaults record
every answered call with no notice, as the box did before the policy existed:
an installer turns the notices on (the setup wizard's "private" lines become
``"never"``).
"""

import dataclasses
import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass, field

from ..errors import ConfigError

POLICY_VERSION = 1
MODES = ("always", "never", "on_demand", "by_rule")
DIRECTIONS = ("in", "out")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NOTICES = ("off", "tone", "announcement")
MAX_LINES = 64
DTMF_CODE = re.compile(r"[0-9*#A-D]{1,8}")
PATTERN = re.compile(r"\+?[0-9?*][0-9?* ]{0,31}")
WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")
NAME = re.compile(r"\S(.{0,38}\S)?")
VOICE = re.compile(r"[A-Za-z0-9_+-]{1,40}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.wav")
DEFAULT_ANNOUNCEMENT = (
    "This call may be recorded, for training and quality purposes, and to keep a record of what was agreed."
)


# ------------------------------------------------------------------ checks
def _fail(path, message):
    raise ConfigError(message, field=path)


def _int(value, lo, hi, path, unit=""):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(
            path,
            "must be a whole number%s from %d to %d, not %r" % (" of " + unit if unit else "", lo, hi, value),
        )


def _number(value, lo, hi, path, unit=""):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        _fail(
            path, "must be a number%s from %g to %g, not %r" % (" of " + unit if unit else "", lo, hi, value)
        )


def _bool(value, path):
    if not isinstance(value, bool):
        _fail(path, "must be true or false, not %r" % (value,))


def _choice(value, choices, path):
    if value not in choices:
        _fail(path, "must be one of %s, not %r" % (", ".join('"%s"' % c for c in choices), value))


def _text(value, pattern, path, what):
    if not isinstance(value, str) or not pattern.fullmatch(value):
        _fail(path, "must be %s, not %r" % (what, value))


def _code(value, path, optional=True):
    if value is None and optional:
        return
    _text(value, DTMF_CODE, path, "1 to 8 DTMF keys (0-9 * # A-D), or null to turn it off")


class _Checked:
    """Checks itself when built, at its place in the configuration (``_PATH``)."""

    _PATH = None

    def __post_init__(self):
        self.check(self._PATH)


# ------------------------------------------------------------------ recording rules
@dataclass(frozen=True)
class LineMode:
    """How one line is recorded: ``mode`` is one of :data:`MODES`.

    ``always``     every answered call
    ``never``      a private line: nothing of it is ever recorded
    ``on_demand``  only once someone asks (button or DTMF code) during the call
    ``by_rule``    when the call passes the rules (direction, hours, numbers,
                   sampling, minimum duration)
    """

    line: int
    mode: str = "always"


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

    name: str
    action: str
    patterns: tuple = ()


@dataclass(frozen=True)
class BusinessHours(_Checked):
    """When "by_rule" lines record: inside these hours, except on the holidays.

    ``timezone`` an IANA zone name; ``days`` maps "mon".."sun" to windows
    "HH:MM-HH:MM" (a day left out is closed; "24:00" ends at midnight);
    ``holidays`` "YYYY-MM-DD" dates on which nothing is "inside".
    """

    _PATH = "policy.rules.hours"

    timezone: str = "Europe/London"
    days: dict = field(default_factory=dict)
    holidays: tuple = ()

    def check(self, path):
        _text(
            self.timezone,
            re.compile(r"[A-Za-z0-9_+/-]{1,64}"),
            path + ".timezone",
            'a time zone name such as "Europe/London"',
        )
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            _fail(path + ".timezone", "unknown time zone %r" % self.timezone)
        if not isinstance(self.days, dict):
            _fail(path + ".days", "must be an object of weekday: windows")
        for day, windows in self.days.items():
            where = "%s.days.%s" % (path, day)
            _choice(day, WEEKDAYS, where)
            if not isinstance(windows, tuple):
                _fail(where, 'must be a list of "HH:MM-HH:MM" windows')
            for i, window in enumerate(windows):
                _window(window, "%s[%d]" % (where, i))
        if not isinstance(self.holidays, tuple):
            _fail(path + ".holidays", "must be a list of dates")
        for i, day in enumerate(self.holidays):
            try:
                dt.date.fromisoformat(day)
            except (TypeError, ValueError):
                _fail("%s.holidays[%d]" % (path, i), 'must be a date "YYYY-MM-DD", not %r' % (day,))

    @property
    def zone(self):
        return zoneinfo.ZoneInfo(self.timezone)

    def windows(self, weekday):
        """``[(start_min, end_min)]`` of weekday ``weekday`` (0 = Monday), minutes from midnight."""
        return [_window(w, None) for w in self.days.get(WEEKDAYS[weekday], ())]


def _window(text, path):
    m = WINDOW.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        _fail(path, 'must be a window "HH:MM-HH:MM" such as "09:00-17:30", not %r' % (text,))
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end > 24 * 60 or end <= start:
        _fail(path, "must end after it starts, by 24:00 at the latest: %r" % text)
    return start, end


@dataclass(frozen=True)
class OnDemand(_Checked):
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
        _code(self.dtmf_code, path + ".dtmf_code")
        _bool(self.button, path + ".button")
        _bool(self.from_start, path + ".from_start")
        _int(self.lookback_s, 8, 600, path + ".lookback_s", "seconds")


@dataclass(frozen=True)
class RecordingRules(_Checked):
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
    """

    _PATH = "policy.rules"

    default_mode: str = "always"
    lines: tuple = ()
    directions: tuple = DIRECTIONS
    hours: BusinessHours = None
    numbers: tuple = ()
    min_duration_s: float = 0
    sample_percent: float = 100
    on_demand: OnDemand = field(default_factory=OnDemand)

    def check(self, path):
        _choice(self.default_mode, MODES, path + ".default_mode")
        seen = {}
        for i, item in enumerate(_items(self.lines, LineMode, path + ".lines")):
            where = "%s.lines[%d]" % (path, i)
            _int(item.line, 1, MAX_LINES, where + ".line")
            if item.line in seen:
                _fail(where + ".line", "line %d is already set by lines[%d]" % (item.line, seen[item.line]))
            seen[item.line] = i
            _choice(item.mode, MODES, where + ".mode")
        if not isinstance(self.directions, tuple) or not self.directions:
            _fail(path + ".directions", 'must be a list of "in" and/or "out"')
        for i, d in enumerate(self.directions):
            _choice(d, DIRECTIONS, "%s.directions[%d]" % (path, i))
        if self.hours is not None:
            if not isinstance(self.hours, BusinessHours):
                _fail(path + ".hours", "must be an object or null")
            self.hours.check(path + ".hours")
        names = {}
        for i, item in enumerate(_items(self.numbers, NumberList, path + ".numbers")):
            where = "%s.numbers[%d]" % (path, i)
            _text(item.name, NAME, where + ".name", "a name of 1 to 40 characters")
            if item.name in names:
                _fail(where + ".name", "numbers[%d] already has this name" % names[item.name])
            names[item.name] = i
            _choice(item.action, ("include", "exclude"), where + ".action")
            if not isinstance(item.patterns, tuple) or not item.patterns:
                _fail(where + ".patterns", "must be a list of at least one pattern")
            for k, pattern in enumerate(item.patterns):
                _text(
                    pattern,
                    PATTERN,
                    "%s.patterns[%d]" % (where, k),
                    "a number pattern of digits, '*' and '?' (an optional leading '+', "
                    'spaces allowed), e.g. "0800*" or "01632 96????"',
                )
        _number(self.min_duration_s, 0, 600, path + ".min_duration_s", "seconds")
        _number(self.sample_percent, 0, 100, path + ".sample_percent", "percent")
        if not isinstance(self.on_demand, OnDemand):
            _fail(path + ".on_demand", "must be an object")
        self.on_demand.check(path + ".on_demand")

    def mode(self, line):
        """The mode of ``line``."""
        for item in self.lines:
            if item.line == line:
                return item.mode
        return self.default_mode

    def with_modes(self, modes):
        """A copy with ``{line: mode}`` set (other lines keep theirs)."""
        kept = [m for m in self.lines if m.line not in modes]
        new = [LineMode(line, mode) for line, mode in sorted(modes.items())]
        return dataclasses.replace(self, lines=tuple(sorted(kept + new, key=lambda m: m.line)))


def _items(value, cls, path):
    if not isinstance(value, tuple):
        _fail(path, "must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, cls):
            _fail("%s[%d]" % (path, i), "must be an object")
    return value


# ------------------------------------------------------------------ consent
@dataclass(frozen=True)
class Announcement(_Checked):
    """The spoken notice.

    ``file``       an uploaded WAV in ``DATA_DIR/announcements/`` (validated
                   when uploaded and again when loaded), or None: ``text``
                   spoken by espeak-ng (made at first use, then cached)
    ``text``       what the default announcement says
    ``voice``      espeak-ng voice; None: en-gb (uk) or en-us (us)
    ``level_dbm0`` the active speech level the spoken text is scaled to
    """

    _PATH = "policy.consent.announcement"

    text: str = DEFAULT_ANNOUNCEMENT
    voice: str = None
    file: str = None
    level_dbm0: float = -16

    def check(self, path):
        if not isinstance(self.text, str) or not self.text.strip() or len(self.text) > 500:
            _fail(path + ".text", "must be 1 to 500 characters of text")
        if self.voice is not None:
            _text(self.voice, VOICE, path + ".voice", 'an espeak-ng voice name such as "en-gb"')
        if self.file is not None:
            _text(
                self.file,
                FILE_NAME,
                path + ".file",
                "the name of an uploaded .wav file (letters, digits, '.', '_', '-')",
            )
        _number(self.level_dbm0, -30, -6, path + ".level_dbm0", "dBm0")


@dataclass(frozen=True)
class WarningTone(_Checked):
    """The periodic beep while a recorded call is connected (defaults: US practice, FCC 64.501).

    First ``interval_s`` after the answer, then every ``interval_s``.
    """

    _PATH = "policy.consent.warning_tone"

    enabled: bool = False
    frequency_hz: int = 1400
    duration_ms: int = 500
    interval_s: float = 15
    level_dbm0: float = -13

    def check(self, path):
        _bool(self.enabled, path + ".enabled")
        _int(self.frequency_hz, 300, 3400, path + ".frequency_hz", "Hz")
        _int(self.duration_ms, 50, 2000, path + ".duration_ms", "ms")
        _number(self.interval_s, 5, 600, path + ".interval_s", "seconds")
        if self.duration_ms >= self.interval_s * 1000:
            _fail(path + ".duration_ms", "must be shorter than interval_s")
        _number(self.level_dbm0, -30, -6, path + ".level_dbm0", "dBm0")


@dataclass(frozen=True)
class ConsentSettings(_Checked):
    """The notice that calls may be recorded, given on every call that may be.

    ``inbound``   at the answer of an inbound call: "announcement", "tone"
                  (one beep as :class:`WarningTone` makes it) or "off"
    ``outbound``  the same, once dialling ends on an outbound call
    ``announcement`` :class:`Announcement`
    ``warning_tone`` :class:`WarningTone` (periodic, independent of the above)
    ``record_if_notice_failed`` when the notice could not be given (the
                  board refused to play, the announcement file is missing or
                  invalid): record anyway (True) or not (False). Either way the
                  call says the notice failed.
    """

    _PATH = "policy.consent"

    inbound: str = "off"
    outbound: str = "off"
    announcement: Announcement = field(default_factory=Announcement)
    warning_tone: WarningTone = field(default_factory=WarningTone)
    record_if_notice_failed: bool = False

    def check(self, path):
        _choice(self.inbound, NOTICES, path + ".inbound")
        _choice(self.outbound, NOTICES, path + ".outbound")
        if not isinstance(self.announcement, Announcement):
            _fail(path + ".announcement", "must be an object")
        self.announcement.check(path + ".announcement")
        if not isinstance(self.warning_tone, WarningTone):
            _fail(path + ".warning_tone", "must be an object")
        self.warning_tone.check(path + ".warning_tone")
        _bool(self.record_if_notice_failed, path + ".record_if_notice_failed")


# ------------------------------------------------------------------ PCI DSS
@dataclass(frozen=True)
class PciSettings(_Checked):
    """Pausing a recording while card details are given (PCI DSS).

    ``pause_code`` / ``resume_code``  keys typed on the handset (None: off)
    ``button``     the line's ``pause_button`` input toggles the pause
    ``auto_resume_s`` a pause ends by itself after this long (10 to 1800 s)
    ``mask_dtmf``  keys pressed after the answer are cut out of the recording
                   (silence), their places marked on the call, not the keys
    """

    _PATH = "policy.pci"

    pause_code: str = "*1"
    resume_code: str = "*2"
    button: bool = True
    auto_resume_s: int = 120
    mask_dtmf: bool = True

    def check(self, path):
        _code(self.pause_code, path + ".pause_code")
        _code(self.resume_code, path + ".resume_code")
        if self.pause_code is not None and self.pause_code == self.resume_code:
            _fail(path + ".resume_code", "must differ from pause_code")
        _bool(self.button, path + ".button")
        _int(self.auto_resume_s, 10, 1800, path + ".auto_resume_s", "seconds")
        _bool(self.mask_dtmf, path + ".mask_dtmf")


# ------------------------------------------------------------------ the section
def _retention_class():
    # firmware.policy.retention is its own module (retention, legal hold, sweep).
    from .retention import RetentionSettings

    return RetentionSettings


def _default_retention():
    return _retention_class()()


@dataclass(frozen=True)
class PolicySettings:
    """The whole ``policy`` section of the configuration (see the module docstring)."""

    version: int = POLICY_VERSION
    rules: RecordingRules = field(default_factory=RecordingRules)
    consent: ConsentSettings = field(default_factory=ConsentSettings)
    pci: PciSettings = field(default_factory=PciSettings)
    retention: "firmware.policy.retention.RetentionSettings" = field(  # noqa: F821
        default_factory=_default_retention
    )

    def __post_init__(self):
        self.check()

    def check(self, path="policy"):
        """Raise :class:`ConfigError` naming the first bad field."""
        if self.version != POLICY_VERSION:
            _fail(path + ".version", "unsupported policy version %r" % (self.version,))
        for name, cls in (("rules", RecordingRules), ("consent", ConsentSettings), ("pci", PciSettings)):
            value = getattr(self, name)
            if not isinstance(value, cls):
                _fail("%s.%s" % (path, name), "must be an object")
            value.check("%s.%s" % (path, name))
        if not isinstance(self.retention, _retention_class()):
            _fail(path + ".retention", "must be an object")
        codes = {
            "rules.on_demand.dtmf_code": self.rules.on_demand.dtmf_code,
            "pci.pause_code": self.pci.pause_code,
            "pci.resume_code": self.pci.resume_code,
        }
        seen = {}
        for where, code in codes.items():
            if code is None:
                continue
            for other, other_code in seen.items():
                if code.startswith(other_code) or other_code.startswith(code):
                    _fail(
                        "%s.%s" % (path, where),
                        "%r clashes with %s (%r): one would be "
                        "typed on the way to the other" % (code, other, other_code),
                    )
            seen[where] = code

    # ------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, data, path="policy"):
        """Settings from the JSON object ``data`` (older versions migrated first).

        :raises ConfigError: naming the first unknown, mistyped or out-of-range field
        """
        data = migrate(data, path)
        values = _build(cls, data, path)
        retention = data.get("retention")
        values["retention"] = (
            _default_retention()
            if retention is None
            else _retention_class().from_dict(retention, path + ".retention")
        )
        return cls(**values)

    def to_dict(self):
        out = {"version": self.version}
        for name in ("rules", "consent", "pci"):
            out[name] = _plain(dataclasses.asdict(getattr(self, name)))
        out["retention"] = self.retention.to_dict()
        return out


#: Ordered migrations: ``MIGRATIONS[v]`` turns a version-``v`` section into
#: version ``v + 1``. Version 1 is the first; a section without ``version``
#: is taken as the current one.
MIGRATIONS = {}


def migrate(data, path="policy"):
    """``data`` (a ``policy`` JSON object) brought to :data:`POLICY_VERSION`."""
    if not isinstance(data, dict):
        _fail(path, "must be an object")
    version = data.get("version", POLICY_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        _fail(path + ".version", "must be a whole number from 1, not %r" % (version,))
    if version > POLICY_VERSION:
        _fail(
            path + ".version",
            "version %d was written by a newer firmware (this one reads "
            "up to %d): update the firmware or restore an older configuration" % (version, POLICY_VERSION),
        )
    while version < POLICY_VERSION:
        data = MIGRATIONS[version](dict(data))
        version += 1
        data["version"] = version
    return data


# Nested classes the JSON builder descends into, per (class, field).
_NESTED = {
    (RecordingRules, "lines"): [LineMode],
    (RecordingRules, "hours"): BusinessHours,
    (RecordingRules, "numbers"): [NumberList],
    (RecordingRules, "on_demand"): OnDemand,
    (ConsentSettings, "announcement"): Announcement,
    (ConsentSettings, "warning_tone"): WarningTone,
    (PolicySettings, "rules"): RecordingRules,
    (PolicySettings, "consent"): ConsentSettings,
    (PolicySettings, "pci"): PciSettings,
}
_LIST_FIELDS = {(RecordingRules, "directions"), (NumberList, "patterns"), (BusinessHours, "holidays")}


def _build(cls, data, path):
    """Keyword arguments for ``cls`` from JSON object ``data``: nested objects built,
    lists made tuples, unknown keys refused. Values are checked by the classes."""
    if not isinstance(data, dict):
        _fail(path, "must be an object, not %r" % (data,))
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        where = "%s.%s" % (path, key)
        if key not in names:
            _fail(where, "unknown setting (known here: %s)" % ", ".join(names))
        if key == "retention" and cls is PolicySettings:
            continue
        nested = _NESTED.get((cls, key))
        if isinstance(nested, list):
            if not isinstance(value, list):
                _fail(where, "must be a list")
            value = tuple(
                nested[0](**_build(nested[0], item, "%s[%d]" % (where, i))) for i, item in enumerate(value)
            )
        elif nested is not None and value is not None:
            value = nested(**_build(nested, value, where))
        elif (cls, key) in _LIST_FIELDS:
            if not isinstance(value, list):
                _fail(where, "must be a list")
            value = tuple(value)
        elif cls is BusinessHours and key == "days":
            if not isinstance(value, dict):
                _fail(where, "must be an object of weekday: windows")
            value = {day: tuple(w) if isinstance(w, list) else w for day, w in value.items()}
        values[key] = value
    for f in dataclasses.fields(cls):
        if (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and f.name not in values
        ):
            _fail("%s.%s" % (path, f.name), "is required")
    return values


def _plain(value):
    """``dataclasses.asdict`` output as plain JSON data (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
