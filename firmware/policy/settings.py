"""The policy settings: typed, validated, versioned; ``config.json``'s ``policy`` section.

Each part's settings type lives beside its engine: :class:`RecordingRules`
in :mod:`firmware.policy.rules`, :class:`ConsentSettings` in
:mod:`firmware.policy.consent`, :class:`PciSettings` in
:mod:`firmware.policy.pause`, :class:`RetentionSettings` in
:mod:`firmware.policy.retention`; this module gathers them into
:class:`PolicySettings` and reads and writes the whole section. Every class
is a frozen dataclass that checks itself when built (one approach for all:
:mod:`firmware.policy.checks`), so a settings object that exists is valid.
:meth:`PolicySettings.from_dict` reads the JSON object (migrating older
versions first) and rejects it whole at the first bad field, which the
:class:`~firmware.errors.ConfigError` names as a dotted path from the top of
the configuration (``policy.rules.lines[2].mode``).
:meth:`PolicySettings.to_dict` writes it back. Example (every field shown has
its default unless marked)::

    "policy": {
      "version": 1,
      "rules": {
        "default_mode": "always",
        "lines": [{"line": 3, "mode": "never"},                        (example)
                  {"line": 2, "mode": "by_rule"}, {"line": 4, "mode": "on_demand"},
                  {"line": 1, "mode": "always", "outside_line": "9"}],  (default "", left out)
        "directions": ["in", "out"],
        "hours": {"timezone": "Europe/London",                          (default null)
                  "days": {"mon": ["09:00-17:30"], "tue": ["09:00-12:30", "13:30-17:30"]},
                  "holidays": ["2026-12-25", "2026-12-26"]},
        "numbers": [{"name": "helplines", "action": "exclude",          (default [])
                     "patterns": ["0800*", "0808*"]}],
        "min_duration_s": 0,
        "sample_percent": 100,
        "on_demand": {"dtmf_code": "*9", "button": true, "from_start": true, "lookback_s": 30},
        "personal": {"dtmf_code": "*7", "lines": [1, 2]}   (default: off, and left out)
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
from dataclasses import dataclass, field

from .checks import build, fail, plain
from .consent import DEFAULT_ANNOUNCEMENT, NOTICES, VOICE, Announcement, ConsentSettings, WarningTone
from .pause import PciSettings
from .retention import RetentionSettings
from .rules import (
    DIRECTIONS,
    MAX_LINES,
    MODES,
    WEEKDAYS,
    BusinessHours,
    LineMode,
    NumberList,
    OnDemand,
    Personal,
    RecordingRules,
)

__all__ = [
    "DEFAULT_ANNOUNCEMENT",
    "DIRECTIONS",
    "MAX_LINES",
    "MIGRATIONS",
    "MODES",
    "NOTICES",
    "POLICY_VERSION",
    "VOICE",
    "WEEKDAYS",
    "Announcement",
    "BusinessHours",
    "ConsentSettings",
    "LineMode",
    "NumberList",
    "OnDemand",
    "PciSettings",
    "Personal",
    "PolicySettings",
    "RecordingRules",
    "RetentionSettings",
    "WarningTone",
    "migrate",
]

POLICY_VERSION = 1


PERSONAL_CODE = "rules.personal.dtmf_code"


@dataclass(frozen=True)
class PolicySettings:
    """The whole ``policy`` section of the configuration (see the module docstring)."""

    version: int = POLICY_VERSION
    rules: RecordingRules = field(default_factory=RecordingRules)
    consent: ConsentSettings = field(default_factory=ConsentSettings)
    pci: PciSettings = field(default_factory=PciSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    _NESTED = {"rules": RecordingRules, "consent": ConsentSettings, "pci": PciSettings}

    def __post_init__(self):
        self.check()

    def check(self, path="policy"):
        """Raise :class:`ConfigError` naming the first bad field."""
        if self.version != POLICY_VERSION:
            fail(path + ".version", "unsupported policy version %r" % (self.version,))
        for name, cls in (("rules", RecordingRules), ("consent", ConsentSettings), ("pci", PciSettings)):
            value = getattr(self, name)
            if not isinstance(value, cls):
                fail("%s.%s" % (path, name), "must be an object")
            value.check("%s.%s" % (path, name))
        if not isinstance(self.retention, RetentionSettings):
            fail(path + ".retention", "must be an object")
        codes = {
            "rules.on_demand.dtmf_code": self.rules.on_demand.dtmf_code,
            "rules.personal.dtmf_code": self.rules.personal.dtmf_code,
            "pci.pause_code": self.pci.pause_code,
            "pci.resume_code": self.pci.resume_code,
        }
        named = {
            "rules.on_demand.dtmf_code": "the code that asks for a recording",
            "rules.personal.dtmf_code": "the personal-call code",
            "pci.pause_code": "the pause code for card details",
            "pci.resume_code": "the resume code",
        }
        seen = {}
        for where, code in codes.items():
            if code is None:
                continue
            for other, other_code in seen.items():
                if code.startswith(other_code) or other_code.startswith(code):
                    fail(
                        "%s.%s" % (path, where),
                        "%s (%s) clashes with %s (%s): one would be typed on the way to the "
                        "other; choose another" % (named[where], code, named[other], other_code),
                    )
                if PERSONAL_CODE in (where, other) and (
                    code.endswith(other_code) or other_code.endswith(code)
                ):
                    # The keys are matched by how those typed so far end (CallPolicy.on_key):
                    # the longer code would never be taken for itself. Only where the
                    # personal-call code is one of them: it is new in this release, so no
                    # config.json that loaded before fails to load after an update for it
                    # (a pause and resume pair so made is a known limit, docs/policy.md).
                    fail(
                        "%s.%s" % (path, where),
                        "%s (%s) clashes with %s (%s): the longer, keyed, would be taken for the shorter at "
                        "its last key; choose another" % (named[where], code, named[other], other_code),
                    )
            seen[where] = code

    # ------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, data, path="policy"):
        """Settings from the JSON object ``data`` (older versions migrated first).

        :raises ConfigError: naming the first unknown, mistyped or out-of-range field
        """
        data = migrate(data, path)
        values = build(cls, data, path)
        retention = data.get("retention")
        values["retention"] = (
            RetentionSettings()
            if retention is None
            else RetentionSettings.from_dict(retention, path + ".retention")
        )
        return cls(**values)

    def to_dict(self):
        out = {"version": self.version}
        for name in ("rules", "consent", "pci"):
            out[name] = plain(dataclasses.asdict(getattr(self, name)))
        if not self.consent.require_notice:
            # Written only where it is set (a box `linekeeper init` made): every other
            # configuration stays one the release before it reads.
            del out["consent"]["require_notice"]
        if self.rules.personal.dtmf_code is None:
            # Off (the default): left out, so a configuration that does not use it stays one
            # the release before reads (it refuses a setting it does not know).
            del out["rules"]["personal"]
        for line in out["rules"]["lines"]:
            if not line["outside_line"]:
                # No outside-line digit (the default): left out, as the personal-call code
                # is, so a configuration without one stays one the release before reads.
                del line["outside_line"]
        del out["consent"]["notice_was_set"]  # the box's state, not a setting (firmware.config)
        out["retention"] = self.retention.to_dict()
        return out


#: Ordered migrations: ``MIGRATIONS[v]`` turns a version-``v`` section into
#: version ``v + 1``. Version 1 is the first; a section without ``version``
#: is taken as the current one.
MIGRATIONS = {}


def migrate(data, path="policy"):
    """``data`` (a ``policy`` JSON object) brought to :data:`POLICY_VERSION`."""
    if not isinstance(data, dict):
        fail(path, "must be an object")
    version = data.get("version", POLICY_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        fail(path + ".version", "must be a whole number from 1, not %r" % (version,))
    if version > POLICY_VERSION:
        fail(
            path + ".version",
            "version %d was written by a newer firmware (this one reads "
            "up to %d): update the firmware or restore an older configuration" % (version, POLICY_VERSION),
        )
    while version < POLICY_VERSION:
        data = MIGRATIONS[version](dict(data))
        version += 1
        data["version"] = version
    return data
