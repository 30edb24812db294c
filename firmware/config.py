"""The box configuration: a typed, validated, versioned model.

Stored as ``DATA_DIR/config.json``. Unknown fields and wrong types are
rejected whole with the field named; a missing file means the defaults.
Sections have dataclasses of their own, versions and migrations: ``policy``
(recording rules, consent notices, PCI pause, retention) is
:class:`firmware.policy.settings.PolicySettings`. :func:`save_config` writes
the file atomically with mode 0600.
"""

import contextlib
import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field

from board import jsonpos
from firmware.storage.fieldseal import is_sealed
from firmware.storage.fsutil import atomic_write, fsync_dir
from firmware.storage.sealstores import open_rule_patterns, seal_rule_patterns
from telephony import countries

from .archive.settings import ArchiveSettings
from .errors import ConfigError
from .migrations.m001_seal_stores import older_release_may_return
from .policy.settings import PolicySettings

CONFIG_VERSION = 1
MAX_LINES = 64  # the most lines a box's not_connected may name
MAX_CONFIG_BYTES = 1 << 20  # a config is a few KiB; more is not one


# A setting's type in a message's words: "must be a whole number", not "must be a int".
TYPE_WORDS = {int: "a whole number", str: "text (in quotes)", bool: "true or false", list: "a list"}


@dataclass(frozen=True)
class BoxConfig:
    """The settings the foundation needs.

    ``board``      "sim" or "rpi"; None picks "rpi" when ``hat`` is set, else "sim"
    ``hat``        HAT data file name (``board/hats/NAME.json``) or path
    ``country``    signalling conventions: a box country of
                   :mod:`telephony.countries` ("uk", "us")
    ``debounce_ms`` hook-contact debounce time
    ``stuck_off_hook_min`` minutes off-hook after which a line is reported as
                   a fault (a handset left off its cradle)
    ``no_voltage_fault_s`` seconds without line voltage before it is a fault
    ``preroll_ms`` audio from before the answer that a recording keeps
    ``flush_ms``   the most audio held in memory before it is on the card, the
                   recorder's delay line (``firmware.box.RECORDER_DELAY_MS``)
                   included; so never less than that delay and one frame
    ``holdup_flush_ms`` 0 (off), or how long audio may wait in memory instead
                   when the HAT's MCU warns of power cuts and has a hold-up
                   capacitor (docs/power-fail.md): fewer, larger writes; the
                   warning seals everything on a power cut, but a crash of the
                   software itself may then lose this much
    ``write_journal`` true (default): every line's chunks are committed to one
                   shared journal and the recording files written in whole
                   pages (docs/journal.md); under ``holdup_flush_ms`` only the
                   recordings' seals (docs/holdup-writes.md); false: each
                   line's file is appended and synced chunk by chunk (the
                   older path)
    ``audio_profile`` "voice" (Opus, ~4 MB/h), "high" (Opus 24 kbit/s),
                   "alaw" or "pcm" (WAV)
    ``disk_reserve_mb`` free space (MiB) recordings leave on the card so the
                   call log can still be written: a recording that would eat
                   into it stops as ``partial`` with a ``disk_full`` alarm
    ``loop_break_min_ms`` a loss of line voltage at least this long during a call
                   is the far end clearing it (an exchange K-break, a hub's or
                   ATA's open-loop disconnect), 20 to 800 ms
    ``hook_flash_max_ms`` a loop break (ours) up to this long during a call is a
                   hook flash, not a hang-up; None: no hook flash (150 to 1000 ms)
    ``silence_clear_s`` seconds of silence on a connected line after which the far
                   end is taken to have gone (an adapter that signals nothing), 10 to 600
    ``ring_timeout_ms`` no ring for this long after a burst: the call was missed;
                   None: the country's (3500 ms uk, 5500 ms us). Must outlast the
                   longest pause of the line's ringing: an adapter ringing with US
                   cadence (4 s pause) on a UK box needs 5500. 1000 to 20000
    ``tone_countries`` other countries ("uk", "us") whose busy, unobtainable and
                   congestion tones also end a call (an adapter left on another
                   region's tones)
    ``policy``     :class:`~firmware.policy.settings.PolicySettings`: what is
                   recorded, the notices, the PCI pause, retention
    ``archive``    :class:`~firmware.archive.settings.ArchiveSettings`: replication
                   to S3-compatible object storage (docs/archive.md)
    ``not_connected`` the lines with nothing plugged into their socket (a 4-line HAT
                   at a site with 2 lines): no line-fault alarm, never recorded, and a
                   call seen on one raises ``line_not_connected_in_use``. Kept in
                   :data:`NOT_CONNECTED_MARKER`, not in ``config.json`` (the release
                   before refuses a setting it does not know)
    """

    version: int = CONFIG_VERSION
    board: str = None
    hat: str = None
    country: str = "uk"
    debounce_ms: int = 15
    stuck_off_hook_min: int = 120
    no_voltage_fault_s: int = 3
    preroll_ms: int = 1000
    flush_ms: int = 1000
    holdup_flush_ms: int = 0
    write_journal: bool = True
    audio_profile: str = "voice"
    disk_reserve_mb: int = 64
    loop_break_min_ms: int = 90
    hook_flash_max_ms: int = None
    silence_clear_s: int = 60
    ring_timeout_ms: int = None
    tone_countries: list = field(default_factory=list)
    policy: PolicySettings = field(default_factory=PolicySettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    not_connected: list = field(default_factory=list)

    def __post_init__(self):
        if self.version != CONFIG_VERSION:
            raise ConfigError("unsupported config version %r" % (self.version,), field="version")
        if self.board not in (None, "sim", "rpi"):
            raise ConfigError('must be "sim" or "rpi", not %r' % (self.board,), field="board")
        known = countries.box_countries()
        if self.country not in known:
            raise ConfigError("must be one of %s, not %r" % (", ".join(known), self.country), field="country")
        if not isinstance(self.debounce_ms, int) or not 1 <= self.debounce_ms <= 30:
            raise ConfigError(
                "must be a whole number of ms from 1 to 30 (pulse dialling makes last about 33 ms)",
                field="debounce_ms",
            )

        if not isinstance(self.stuck_off_hook_min, int) or not 1 <= self.stuck_off_hook_min <= 24 * 60:
            raise ConfigError("must be a whole number of minutes from 1 to 1440", field="stuck_off_hook_min")
        if not isinstance(self.no_voltage_fault_s, int) or not 1 <= self.no_voltage_fault_s <= 600:
            raise ConfigError("must be a whole number of seconds from 1 to 600", field="no_voltage_fault_s")

        if not isinstance(self.preroll_ms, int) or not 0 <= self.preroll_ms <= 5000:
            raise ConfigError("must be a whole number of ms from 0 to 5000", field="preroll_ms")
        if not isinstance(self.flush_ms, int) or not 100 <= self.flush_ms <= 1000:
            raise ConfigError(
                "must be a whole number of ms from 100 to 1000 (audio must reach the card within a second)",
                field="flush_ms",
            )
        if self.audio_profile not in ("voice", "high", "alaw", "pcm"):
            raise ConfigError("must be one of voice, high, alaw, pcm", field="audio_profile")
        frame = frame_ms(self.audio_profile)
        if self.flush_ms < frame:
            raise ConfigError(
                "must be at least %d ms: the %s profile encodes %d ms frames, and a "
                "chunk holds whole frames" % (frame, self.audio_profile, frame),
                field="flush_ms",
            )
        if (
            not isinstance(self.holdup_flush_ms, int)
            or isinstance(self.holdup_flush_ms, bool)
            or not (self.holdup_flush_ms == 0 or 1000 <= self.holdup_flush_ms <= 60_000)
        ):
            raise ConfigError(
                "must be 0 (off) or a whole number of ms from 1000 to 60000", field="holdup_flush_ms"
            )
        if not isinstance(self.write_journal, bool):
            raise ConfigError("must be true or false", field="write_journal")
        if not isinstance(self.disk_reserve_mb, int) or not 0 <= self.disk_reserve_mb <= 65536:
            raise ConfigError("must be a whole number of MiB from 0 to 65536", field="disk_reserve_mb")
        self._check_line_signals()
        if not isinstance(self.not_connected, (list, tuple)):
            raise ConfigError("must be a list of line numbers", field="not_connected")
        for i, line in enumerate(self.not_connected):
            if not isinstance(line, int) or isinstance(line, bool) or not 1 <= line <= MAX_LINES:
                raise ConfigError(
                    "must be a line number from 1 to %d, not %r" % (MAX_LINES, line),
                    field="not_connected[%d]" % i,
                )
        if len(set(self.not_connected)) != len(self.not_connected):
            raise ConfigError("names a line twice", field="not_connected")
        if not isinstance(self.policy, PolicySettings):
            raise ConfigError("must be an object", field="policy")
        if not isinstance(self.archive, ArchiveSettings):
            raise ConfigError("must be an object", field="archive")

    def _check_line_signals(self):
        """The settings of the far end's clear (adapters and exchanges)."""
        if not isinstance(self.loop_break_min_ms, int) or not 20 <= self.loop_break_min_ms <= 800:
            raise ConfigError("must be a whole number of ms from 20 to 800", field="loop_break_min_ms")
        flash = self.hook_flash_max_ms
        if flash is not None and (not isinstance(flash, int) or not 150 <= flash <= 1000):
            raise ConfigError(
                "must be a whole number of ms from 150 to 1000, or null (no hook flash)",
                field="hook_flash_max_ms",
            )
        if not isinstance(self.silence_clear_s, int) or not 10 <= self.silence_clear_s <= 600:
            raise ConfigError("must be a whole number of seconds from 10 to 600", field="silence_clear_s")
        timeout = self.ring_timeout_ms
        if timeout is not None and (not isinstance(timeout, int) or not 1000 <= timeout <= 20000):
            raise ConfigError(
                "must be a whole number of ms from 1000 to 20000, or null (the country's)",
                field="ring_timeout_ms",
            )
        if not isinstance(self.tone_countries, (list, tuple)):
            raise ConfigError("must be a list of countries", field="tone_countries")
        for i, country in enumerate(self.tone_countries):
            known = countries.box_countries()
            if country not in known:
                raise ConfigError(
                    "must be one of %s, not %r" % (", ".join(known), country), field="tone_countries[%d]" % i
                )

    @property
    def board_name(self):
        return self.board or ("rpi" if self.hat else "sim")

    @classmethod
    def from_dict(cls, data, source=None):
        if not isinstance(data, dict):
            raise ConfigError("the configuration must be a JSON object", source=source)
        names = {f.name: f for f in dataclasses.fields(cls)}
        data = dict(data)
        try:
            for key, value in data.items():
                if key not in names:
                    raise ConfigError("unknown setting", field=key)
                if key in ("policy", "archive"):
                    continue
                expected = names[key].type
                # bool is an int in Python: only a bool setting takes true/false.
                wrong_bool = isinstance(value, bool) and expected is not bool
                if value is not None and (not isinstance(value, expected) or wrong_bool):
                    raise ConfigError("must be %s" % TYPE_WORDS[expected], field=key)
            if "policy" in data:
                data["policy"] = PolicySettings.from_dict(data["policy"], "policy")
            if "archive" in data:
                data["archive"] = ArchiveSettings.from_dict(data["archive"], "archive")
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(exc.message, source=source, field=exc.field) from None

    def to_dict(self):
        """The configuration as the JSON object :meth:`from_dict` reads."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["tone_countries"] = list(self.tone_countries)
        out["not_connected"] = sorted(self.not_connected)
        if not self.not_connected:
            del out["not_connected"]  # a file a release without it reads as before
        out["policy"] = self.policy.to_dict()
        out["archive"] = self.archive.to_dict()
        return out

    def replace(self, **changes):
        """A copy with ``changes`` (validated like any new configuration)."""
        return dataclasses.replace(self, **changes)


def frame_ms(profile):
    """The encoder frame (ms) of audio profile ``profile``; 0 for a frameless one."""
    from .recording.codec import get_profile

    p = get_profile(profile)
    return p.frame_ms if p.container == "ogg" else 0


def config_path(data_dir):
    return os.path.join(data_dir, "config.json")


def load_config_file(path, cipher=None):
    """Read and validate a configuration file (``config.json`` or one given with ``--config``).

    Only a regular file of at most :data:`MAX_CONFIG_BYTES` is read. With
    ``cipher`` (the box's field cipher) the rules' sealed number patterns are
    opened (:mod:`firmware.storage.sealstores`); without it they stay sealed,
    and a sealed pattern never lets a call be recorded.

    :raises ConfigError: the file is unreadable, not JSON, or invalid; the
        message says ``file:line:col: field.path: what is wrong``
    :raises FieldSealError: a sealed pattern does not open with ``cipher``
    """
    doc = jsonpos.load(path, max_bytes=MAX_CONFIG_BYTES)
    try:
        data = doc.data
        if cipher is not None and isinstance(data, dict):
            data = open_rule_patterns(copy.deepcopy(data), cipher)
        return BoxConfig.from_dict(data)
    except ConfigError as exc:
        raise jsonpos.located(doc, exc) from None


# A box that records no line until a consent notice is set (``policy.consent.require_notice``,
# which ``linekeeper init`` sets): this file in the data directory says it, not
# ``config.json``, whose reader in the release before refuses a setting it does not know
# (the recorder would not load its configuration after an update rolled back before it was
# marked good). That release never reads this file: it records, as it always did.
NOTICE_MARKER = "waits-for-notice"


def _notice_marker(data_dir):
    return os.path.join(os.fspath(data_dir), NOTICE_MARKER)


def _read_marker(data_dir):
    """None (no marker), or whether a notice has been set since (``notice_was_set``)."""
    try:
        with open(_notice_marker(data_dir), "rb") as f:
            doc = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return False  # there, but not read: still waits (a box never records for want of it)
    return isinstance(doc, dict) and doc.get("notice_was_set") is True


def _write_marker(data_dir, notice_was_set):
    doc = {
        "what": "no line is recorded while no consent notice is set (policy.consent.require_notice)",
        "notice_was_set": notice_was_set,
    }
    atomic_write(_notice_marker(data_dir), (json.dumps(doc) + "\n").encode())


def _with_require_notice(config, notice_was_set):
    consent = dataclasses.replace(config.policy.consent, require_notice=True, notice_was_set=notice_was_set)
    return config.replace(policy=dataclasses.replace(config.policy, consent=consent))


# The lines with nothing plugged in (``not_connected``): this file in the data directory
# says them, not ``config.json``, for the same reason as NOTICE_MARKER. The release before
# never reads it: it raises its line-fault alarms on those lines, as it always did.
NOT_CONNECTED_MARKER = "lines-not-connected"


def _read_not_connected(data_dir):
    """The lines :data:`NOT_CONNECTED_MARKER` names ([] without it). One that cannot be read
    names none: every line is then supervised, and a fault on one is said, not hidden."""
    try:
        with open(os.path.join(os.fspath(data_dir), NOT_CONNECTED_MARKER), "rb") as f:
            doc = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return []
    lines = doc.get("lines") if isinstance(doc, dict) else None
    if not isinstance(lines, list):
        return []
    return sorted(
        {n for n in lines if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_LINES}
    )


def _write_not_connected(data_dir, lines):
    path = os.path.join(os.fspath(data_dir), NOT_CONNECTED_MARKER)
    if lines:
        doc = {"what": "the lines with nothing plugged in (not_connected)", "lines": sorted(lines)}
        atomic_write(path, (json.dumps(doc) + "\n").encode())
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            fsync_dir(os.fspath(data_dir))


def save_config(data_dir, config, cipher=None):
    """Write ``config`` to ``DATA_DIR/config.json`` atomically (the data's mode); with
    ``cipher``, the rules' number patterns sealed, unless an update to the sealed stores
    is not marked good yet (the release it would roll back to reads them only in clear:
    :mod:`firmware.migrations.m001_seal_stores`). ``policy.consent.require_notice`` goes
    in :data:`NOTICE_MARKER`, not in the file: the marker made before the file is
    written, or removed after it; ``not_connected`` in :data:`NOT_CONNECTED_MARKER`.

    :raises OSError: it could not be written (the old file is then untouched)
    """
    doc = config.to_dict()
    doc["policy"]["consent"].pop("require_notice", None)
    doc.pop("not_connected", None)
    if cipher is not None and not older_release_may_return(data_dir):
        seal_rule_patterns(doc, cipher)
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    consent = config.policy.consent
    if consent.require_notice:
        # Once a notice has been set, it stays said (a call skipped after every notice is
        # turned off again says so, not that the box was not set up).
        was_set = bool(_read_marker(data_dir)) or consent.notice_was_set or not consent.gives_none()
        _write_marker(data_dir, was_set)
    _write_not_connected(data_dir, config.not_connected)
    atomic_write(config_path(data_dir), text.encode("utf-8"))
    if not config.policy.consent.require_notice:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_notice_marker(data_dir))
            fsync_dir(os.fspath(data_dir))


def load_config(data_dir, cipher=None):
    """Read ``DATA_DIR/config.json``, or the defaults when there is none (``cipher``:
    as for :func:`load_config_file`); ``policy.consent.require_notice`` where
    :data:`NOTICE_MARKER` is there (or, as a development build of this release wrote it, the file
    says it: :func:`move_require_notice` moves it); ``not_connected`` from
    :data:`NOT_CONNECTED_MARKER`."""
    path = config_path(data_dir)
    config = load_config_file(path, cipher) if os.path.exists(path) else BoxConfig()
    marker = _read_marker(data_dir)
    if marker is not None:
        config = _with_require_notice(config, marker)
    not_connected = _read_not_connected(data_dir)
    if not_connected:
        config = config.replace(not_connected=not_connected)
    return config


def move_require_notice(data_dir):
    """Move ``policy.consent.require_notice`` out of ``config.json``, where a development
    build of this release wrote it, to :data:`NOTICE_MARKER`, so that the release before reads the
    file again; True when it did. The file is edited as it stands (its sealed patterns
    untouched); one that is not JSON is left to the loader to report.

    :raises OSError: the card refused it (the file is then as it was)
    """
    path = config_path(data_dir)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return False
    policy = doc.get("policy") if isinstance(doc, dict) else None
    consent = policy.get("consent") if isinstance(policy, dict) else None
    if not isinstance(consent, dict) or "require_notice" not in consent:
        return False
    if consent.pop("require_notice") is True:
        told = any(consent.get(d, "off") != "off" for d in ("inbound", "outbound"))
        tone = consent.get("warning_tone")
        _write_marker(data_dir, told or (isinstance(tone, dict) and tone.get("enabled") is True))
    atomic_write(path, (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode("utf-8"))
    return True


def rules_sealed(config):
    """Whether any of ``config``'s number patterns is still sealed (read without the key)."""
    return any(is_sealed(p) for item in config.policy.rules.numbers for p in item.patterns)


def open_sealed_rules(config, cipher):
    """``config`` with its rules' sealed number patterns opened by ``cipher`` (the
    same ``config`` when there is no cipher or nothing sealed).

    :raises FieldSealError: a pattern does not open with ``cipher``
    """
    if cipher is None or not rules_sealed(config):
        return config
    return BoxConfig.from_dict(open_rule_patterns(config.to_dict(), cipher))
