"""Retention settings: how long recordings are kept, and which rule says so.

A typed, validated model (:class:`RetentionSettings`) that the box's
configuration embeds as ``policy.retention``. Periods are whole days counted
from the start of the call.

How the period of one recording is decided (:meth:`RetentionSettings.decide`):

1. The rules are checked top to bottom; the first whose line, direction and
   category all match the call wins (an unset field matches anything). No
   match: the default rule (``default_days``).
2. A rule's ``days`` of ``None`` keeps the recording (no automatic deletion).
3. A category's minimum period (``minimum_days``) is a floor no rule can
   undercut: the period is the larger of the rule's and the longest minimum
   of the call's categories. Legal hold (see :mod:`firmware.policy.callmeta`)
   overrides everything.

The default keeps recordings until a period is configured: deleting is
irreversible, and a box that deleted regulated calls because nobody set it up
would do more harm than one that kept them a little long (the retention page
warns about the missing period).

Example, in ``config.json``::

    "retention": {"default_days": 365,
                  "rules": [{"name": "sales", "line": 1, "direction": "in", "days": 90},
                            {"name": "complaints", "category": "complaint", "days": null}],
                  "minimum_days": {"regulated": 1827},
                  "sweep_interval_min": 60,
                  "disk_warning_percent": 80, "disk_critical_percent": 95,
                  "overwrite_oldest_when_full": false,
                  "clock_tolerance_s": 120, "clock_max_ahead_days": 31,
                  "requests_closed_days": 2192, "call_details_days": 730}
"""

import dataclasses
import re
from dataclasses import dataclass, field

from ..errors import ConfigError
from .checks import check_int

DAY_US = 86_400 * 1_000_000
MAX_DAYS = 36_500  # a hundred years
MAX_RULES = 100
CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DIRECTIONS = ("in", "out")
DEFAULT_RULE = "default"
# The register of data subjects' requests (firmware/rightsretention.py).
REQUESTS_DEFAULT_DAYS = 6 * 365 + 2  # six years, whatever the leap years in them
REQUESTS_MIN_DAYS = 365


def check_category(name, path):
    """Raise :class:`ConfigError` unless ``name`` is a valid category (a call tag)."""
    if not isinstance(name, str) or not CATEGORY.match(name):
        raise ConfigError(
            "a category is 1 to 32 lower-case letters, digits, '-' or '_' "
            '(for example "regulated"), not %r' % (name,),
            field=path,
        )


@dataclass(frozen=True)
class RetentionRule:
    """Recordings of calls matching ``line``, ``direction`` and ``category`` are kept ``days``.

    ``name``      shown in previews and written in the deletion log
    ``days``      1 to 36500, or None: never delete automatically
    ``line``      a line number, or None for any line
    ``direction`` "in", "out", or None for both
    ``category``  a call tag, or None for any call
    """

    name: str
    days: int = None
    line: int = None
    direction: str = None
    category: str = None

    def check(self, path):
        if (
            not isinstance(self.name, str)
            or not 1 <= len(self.name.strip()) <= 40
            or self.name != self.name.strip()
        ):
            raise ConfigError("give the rule a name of 1 to 40 characters", field=path + ".name")
        if self.name == DEFAULT_RULE:
            raise ConfigError(
                '"default" is the name of the default rule: choose another', field=path + ".name"
            )
        if self.days is not None:
            check_int(self.days, 1, MAX_DAYS, path + ".days", "days")
        if self.line is not None:
            check_int(self.line, 1, 64, path + ".line", None)
        if self.direction not in (None,) + DIRECTIONS:
            raise ConfigError(
                'must be "in", "out" or null (both), not %r' % (self.direction,), field=path + ".direction"
            )
        if self.category is not None:
            check_category(self.category, path + ".category")

    def matches(self, line, direction, categories):
        return (
            (self.line is None or self.line == line)
            and (self.direction is None or self.direction == direction)
            and (self.category is None or self.category in categories)
        )

    def describe(self, line_names=None):
        """Which calls the rule is for, in words: "line 1 (Office), inbound, category
        regulated". ``line_names``: ``{line: name}`` of the site settings, to name the line
        as the pages and the mail do (:func:`firmware.words.line_said`)."""
        from firmware import words

        parts = []
        if self.line is not None:
            parts.append(words.line_said(self.line, (line_names or {}).get(self.line)))
        if self.direction is not None:
            parts.append("inbound" if self.direction == "in" else "outbound")
        if self.category is not None:
            parts.append("category %s" % self.category)
        return ", ".join(parts) or "every call"


@dataclass(frozen=True)
class Decision:
    """How long one call's recording is kept, and why.

    ``rule``  the name of the rule that matched (``"default"`` for none)
    ``rule_days`` that rule's period (None: keep)
    ``floor_days`` the longest minimum period of the call's categories (0: none)
    ``floor_category`` the category that sets ``floor_days``
    ``days``  the period that applies: None (kept) or max(rule, floor)
    """

    rule: str
    rule_days: int
    floor_days: int
    floor_category: str
    days: int


def retention_words(settings, line_names=None):
    """How long recordings are kept, in a sentence for a notice (the staff notice, the
    checklist): the default period, the rules that delete sooner or later or never, and
    the minimum periods no rule undercuts, then the callers' details' period when one is
    set (:func:`details_words`). None when no recording is ever deleted automatically.
    ``line_names``: ``{line: name}`` of the site settings, to name a rule's line as the pages
    and the mail do, "line 2 (Office)" (:func:`firmware.words.line_said`)."""
    from firmware import words

    deleting = [r for r in settings.rules if r.days]
    if not settings.default_days and not deleting and not settings.overwrite_oldest_when_full:
        return None
    parts = []
    for rule in settings.rules:
        if not rule.days and not settings.default_days:
            continue  # "other recordings are kept until deleted by hand" says it
        which = " ".join(
            x
            for x in (
                words.line_said(rule.line, (line_names or {}).get(rule.line)) if rule.line else "",
                {"in": "incoming", "out": "outgoing"}.get(rule.direction, ""),
                "calls tagged %s" % rule.category if rule.category else "calls",
            )
            if x
        )
        kept = words.counted(rule.days, "day") if rule.days else "kept until deleted by hand"
        parts.append("%s: %s" % (which, kept))
    for category, days in sorted(settings.minimum_days.items()):
        parts.append("calls tagged %s: never less than %s" % (category, words.counted(days, "day")))
    if settings.default_days:
        head = words.counted(settings.default_days, "day")
        if parts:
            head += " (%s)" % "; ".join(parts)
    elif parts:
        head = "%s; other recordings are kept until deleted by hand" % "; ".join(parts)
    else:
        head = "recordings are kept until deleted by hand"
    if settings.overwrite_oldest_when_full:
        head += (
            "; when the card is full, the oldest recordings past their minimum period are deleted "
            "sooner to make room"
        )
    head += ", unless a recording is held for a dispute"
    details = details_words(settings)
    # Staff and callers must be told how long their details are kept, not the recordings alone.
    return head + "; " + details if details else head


def details_words(settings):
    """How long the call log keeps callers' details (``call_details_days``), in words for a
    notice; None when it is not set (kept as long as the call log)."""
    from firmware import words

    if settings.call_details_days is None:
        return None
    return (
        "callers' numbers and names in the call log, and the text of notes on their calls, are "
        "removed %s after the call (later while its recording is kept or held for a dispute)"
        % words.counted(settings.call_details_days, "day")
    )


@dataclass(frozen=True)
class RetentionSettings:
    """How long recordings are kept, the automatic sweep, and the disk alarms.

    ``default_days``  period of calls no rule matches; None keeps them
    ``rules``         :class:`RetentionRule` s, checked in order, first match wins
    ``minimum_days``  {category: days}: periods no rule can undercut
                      (e.g. ``{"regulated": 1827}``, five years)
    ``sweep_interval_min`` minutes between automatic sweeps (1 to 1440)
    ``disk_warning_percent`` / ``disk_critical_percent`` disk use (of the card
                      holding the data directory) that raises the
                      ``disk_warning`` / ``disk_critical`` alarm
    ``overwrite_oldest_when_full`` when the disk is critically full, delete
                      the oldest recordings past their minimum period (and
                      not on hold) until it is not; off by default
    ``clock_tolerance_s`` how far wall time may drift from the monotonic
                      clock between sweeps before it counts as a jump
    ``clock_max_ahead_days`` wall time further than this past the last sweep
                      (or the newest call) counts as a jump: no deletion until
                      an installer confirms the clock
    ``requests_closed_days`` days an answered or refused request stays in the
                      register of data subjects' requests after the day it was
                      closed, then the sweep deletes it (:mod:`firmware.rightsretention`);
                      365 to 36500, 2192 (six years: the time a claim may be
                      brought in) by default. Never for ever: the register
                      holds who asked and how to reach them
    ``call_details_days`` days the call log keeps a caller's details (number,
                      caller-ID name, the text of notes, corrected names) after
                      the call ended; then the sweep removes them, leaving the
                      call's times, line and direction (absence ``expired``).
                      1 to 36500, or None (the default): kept as long as the
                      call log. A call on legal hold, or whose recording is still
                      kept (its header holds the same details), keeps them until
                      neither is so: no detail outlives both periods
    """

    default_days: int = None
    rules: tuple = ()
    minimum_days: dict = field(default_factory=dict)
    sweep_interval_min: int = 60
    disk_warning_percent: int = 80
    disk_critical_percent: int = 95
    overwrite_oldest_when_full: bool = False
    clock_tolerance_s: int = 120
    clock_max_ahead_days: int = 31
    requests_closed_days: int = REQUESTS_DEFAULT_DAYS
    call_details_days: int = None

    def __post_init__(self):
        self.check()

    def check(self, path="policy.retention"):
        """Raise :class:`ConfigError` naming the first bad field (dotted, from ``path``)."""
        if self.default_days is not None:
            check_int(self.default_days, 1, MAX_DAYS, path + ".default_days", "days")
        if not isinstance(self.rules, tuple):
            raise ConfigError("must be a list of rules", field=path + ".rules")
        if len(self.rules) > MAX_RULES:
            raise ConfigError("at most %d rules" % MAX_RULES, field=path + ".rules")
        names = set()
        for i, rule in enumerate(self.rules):
            where = "%s.rules[%d]" % (path, i)
            if not isinstance(rule, RetentionRule):
                raise ConfigError("must be a rule object", field=where)
            rule.check(where)
            if rule.name in names:
                raise ConfigError("another rule is already called %r" % rule.name, field=where + ".name")
            names.add(rule.name)
        if not isinstance(self.minimum_days, dict):
            raise ConfigError("must be an object of category: days", field=path + ".minimum_days")
        for category, days in self.minimum_days.items():
            check_category(category, "%s.minimum_days" % path)
            check_int(days, 1, MAX_DAYS, "%s.minimum_days.%s" % (path, category), "days")
        check_int(self.sweep_interval_min, 1, 1440, path + ".sweep_interval_min", "minutes")
        check_int(self.disk_warning_percent, 50, 99, path + ".disk_warning_percent", "percent")
        check_int(self.disk_critical_percent, 51, 99, path + ".disk_critical_percent", "percent")
        if self.disk_critical_percent <= self.disk_warning_percent:
            raise ConfigError(
                "must be above disk_warning_percent (%d)" % self.disk_warning_percent,
                field=path + ".disk_critical_percent",
            )
        if not isinstance(self.overwrite_oldest_when_full, bool):
            raise ConfigError("must be true or false", field=path + ".overwrite_oldest_when_full")
        check_int(self.clock_tolerance_s, 1, 3600, path + ".clock_tolerance_s", "seconds")
        check_int(self.clock_max_ahead_days, 1, 366, path + ".clock_max_ahead_days", "days")
        check_int(
            self.requests_closed_days, REQUESTS_MIN_DAYS, MAX_DAYS, path + ".requests_closed_days", "days"
        )
        if self.call_details_days is not None:
            check_int(self.call_details_days, 1, MAX_DAYS, path + ".call_details_days", "days")

    # ------------------------------------------------------------ decisions
    def decide(self, line, direction, categories):
        """The :class:`Decision` for a call on ``line`` in ``direction`` tagged ``categories``."""
        categories = frozenset(categories or ())
        for rule in self.rules:
            if rule.matches(line, direction, categories):
                name, rule_days = rule.name, rule.days
                break
        else:
            name, rule_days = DEFAULT_RULE, self.default_days
        floor_days, floor_category = self.floor(categories)
        days = None if rule_days is None else max(rule_days, floor_days)
        return Decision(name, rule_days, floor_days, floor_category, days)

    def floor(self, categories):
        """``(days, category)``: the longest minimum period among ``categories`` (0, None)."""
        best = (0, None)
        for category in sorted(categories or ()):
            days = self.minimum_days.get(category, 0)
            if days > best[0]:
                best = (days, category)
        return best

    def shortest_days(self):
        """The shortest period any recording can be kept under these settings, or None."""
        periods = [r.days for r in self.rules if r.days is not None]
        if self.default_days is not None:
            periods.append(self.default_days)
        return min(periods) if periods else None

    # ------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, data, path="policy.retention"):
        """Settings from the JSON object ``data``; errors name the field under ``path``.

        :raises ConfigError: unknown or mistyped fields, values out of range
        """
        if not isinstance(data, dict):
            raise ConfigError("must be an object", field=path)
        _known(data, cls, path)
        values = dict(data)
        rules = values.get("rules", [])
        if not isinstance(rules, list):
            raise ConfigError("must be a list of rules", field=path + ".rules")
        parsed = []
        for i, rule in enumerate(rules):
            where = "%s.rules[%d]" % (path, i)
            if not isinstance(rule, dict):
                raise ConfigError("must be an object", field=where)
            _known(rule, RetentionRule, where)
            if "name" not in rule:
                raise ConfigError("is required", field=where + ".name")
            parsed.append(RetentionRule(**rule))
        values["rules"] = tuple(parsed)
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(exc.message, field=_reroot(exc.field, path)) from None

    def to_dict(self):
        out = {
            "default_days": self.default_days,
            "rules": [dataclasses.asdict(r) for r in self.rules],
            "minimum_days": dict(sorted(self.minimum_days.items())),
            "sweep_interval_min": self.sweep_interval_min,
            "disk_warning_percent": self.disk_warning_percent,
            "disk_critical_percent": self.disk_critical_percent,
            "overwrite_oldest_when_full": self.overwrite_oldest_when_full,
            "clock_tolerance_s": self.clock_tolerance_s,
            "clock_max_ahead_days": self.clock_max_ahead_days,
        }
        # Written only when changed: a release from before the setting (the one an update
        # rolls back to) rejects a configuration naming it (docs/updates.md).
        if self.requests_closed_days != REQUESTS_DEFAULT_DAYS:
            out["requests_closed_days"] = self.requests_closed_days
        if self.call_details_days is not None:  # (the same)
            out["call_details_days"] = self.call_details_days
        return out


def _reroot(field_path, path):
    """``field_path`` (from the default root "policy.retention") under ``path``."""
    root = "policy.retention"
    if field_path and field_path.startswith(root):
        return path + field_path[len(root) :]
    return field_path


def _known(data, cls, path):
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(
                "unknown setting (known: %s)" % ", ".join(sorted(names)), field="%s.%s" % (path, key)
            )
