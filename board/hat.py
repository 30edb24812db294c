"""HAT data files: what a line-interface HAT wires where.

Each supported HAT is a JSON file in ``board/hats/`` (see ``lk-4l.json``), not
a code branch. :func:`load_hat` reads one, checks all of it and returns a
frozen :class:`Hat`; any problem raises :class:`~telephony.errors.HatError`
naming the field as a path (``lines[2].pins.ring.gpio``) and its line and
column in the file. Nothing is returned half-built.

The format (``"format": 1``)::

    {"format": 1, "id": "lk-4l", "name": "...", "description": "...",   (description optional)
     "audio": {"capture": ALSA PCM, "playback": ALSA PCM, "rate": 8000 | 16000 | 48000,
               "channels": 1..32, "format": "S16_LE", "period_frames": 16..8192 (default 160)},
     "i2c": {"bus": 0..31, "devices": [                                   (i2c optional)
               {"name": "codec", "address": 0x03..0x77,
                "init": [[register, value], ...]}]},                      (bytes 0x00..0xff)
     "mcu": {"address": 0x08..0x77, "regmap_version": 1,     (the supervisor MCU; needs i2c)
             "power_fail": PIN,                  (optional: the MCU's power-fail line)
             "holdup": {"farads": 0..100, "load_mw": 1..50000, "min_mv": 0..5000}},
     "lines": [{"line": 1, "capture_channel": 0, "playback_channel": 0,
                "pins": {"hook": PIN, "ring": PIN, "polarity": PIN,       (required)
                         "in_use": PIN, "power": PIN, "led": PIN,         (optional)
                         "record_button": PIN, "pause_button": PIN}}],   (optional)
     "sense": {"ring_vrms": [lo, hi], "loop_ma": [lo, hi],                (optional)
               "line_v": [lo, hi]}}

``sense`` states what the line detectors handle: ringing from ``lo`` to ``hi``
V rms makes the ``ring`` input pulse, a loop current in ``loop_ma`` shows on
``hook``, an on-hook line voltage in ``line_v`` on ``power``. Outside them the
input stays inactive (docs/adapters.md: a hub's or ATA's lower ringing
voltage and loop current must be inside).

A PIN is ``{"gpio": 0..27, "active": "high" | "low", "pull": "up" | "down" |
"floating"}`` (``active`` defaults to high, ``pull`` to floating) or a bare
GPIO number (active high, floating). Any whole number may also be written as a
``"0x.."`` string. Lines are numbered 1..N (any order in the file; the
:class:`Hat` lists them in order); each GPIO, I2C address and channel is used
once.

``mcu`` describes the supervisor MCU (``board/mcu``): its I2C address on the
``i2c`` bus, the register map version the HAT's MCU firmware speaks (the Pi
refuses another), the GPIO its power-fail warning arrives on (without one, the
box reads the warning from the MCU's status register), and the hold-up
capacitor (``farads`` 0 when the HAT has none), the load it feeds and the
voltage where the converter stops.
"""

import importlib.resources
import os
import re
from dataclasses import dataclass

from telephony.errors import HatError

from . import jsonpos
from .signals import INPUT_SIGNALS, OUTPUT_SIGNALS, REQUIRED_SIGNALS

HAT_FORMAT = 1
RATES = (8000, 16000, 48000)
SAMPLE_FORMATS = ("S16_LE",)
GPIO_MAX = 27
PULLS = ("up", "down", "floating")
_NAME = r"[a-z0-9][a-z0-9._-]*"


@dataclass(frozen=True)
class PinSpec:
    """One GPIO: ``active_low`` means the condition holds when the pin reads low."""

    gpio: int
    active_low: bool = False
    pull: str = "floating"


@dataclass(frozen=True)
class HatAudio:
    """The ALSA side: PCM names, sample rate (Hz), channels, sample format, period."""

    capture: str
    playback: str
    rate: int
    channels: int
    format: str = "S16_LE"
    period_frames: int = 160


@dataclass(frozen=True)
class I2cDevice:
    """A chip to configure at start-up: ``init`` is a tuple of (register, value) bytes."""

    name: str
    address: int
    init: tuple = ()


@dataclass(frozen=True)
class HatI2c:
    bus: int
    devices: tuple = ()


@dataclass(frozen=True)
class HatMcu:
    """The supervisor MCU: I2C address, register map version, power-fail pin, hold-up."""

    address: int
    regmap_version: int
    power_fail: PinSpec = None
    holdup_farads: float = 0.0
    holdup_load_mw: int = 4000
    holdup_min_mv: int = 2500


@dataclass(frozen=True)
class HatSense:
    """The ranges the line detectors handle: (lo, hi) V rms ringing, mA loop current, V idle."""

    ring_vrms: tuple = (20.0, 120.0)
    loop_ma: tuple = (10.0, 100.0)
    line_v: tuple = (20.0, 80.0)

    def outside(self, ring_vrms, loop_ma, idle_v):
        """Which of a line's levels the detectors would miss: names of the ranges."""
        levels = {"ring_vrms": ring_vrms, "loop_ma": loop_ma, "line_v": idle_v}
        return [k for k, v in levels.items() if not getattr(self, k)[0] <= v <= getattr(self, k)[1]]


@dataclass(frozen=True)
class HatLine:
    """One analogue line; ``pins`` maps signal name -> :class:`PinSpec` (do not modify)."""

    line: int
    capture_channel: int
    playback_channel: int
    pins: dict


@dataclass(frozen=True)
class Hat:
    """A whole HAT; ``lines`` is ordered by line number (1..N). ``i2c`` may be None."""

    id: str
    name: str
    audio: HatAudio
    i2c: HatI2c
    lines: tuple
    description: str = ""
    source: str = None
    mcu: HatMcu = None
    sense: HatSense = HatSense()

    def line(self, number):
        """The :class:`HatLine` numbered ``number`` (1-based)."""
        return self.lines[number - 1]

    def label(self):
        """How a message names this HAT: its id, and its file unless it is a shipped one.

        A new HAT starts as a copy of a shipped file, often still with that file's id:
        "the HAT 'lk-4l' has no supervisor MCU" would then name a HAT that has one.
        """
        if self.source is None or _shipped(self.source):
            return repr(self.id)
        return "%r (%s)" % (self.id, self.source)


def hats_dir():
    """The directory of the HAT files shipped with the package."""
    return importlib.resources.files("board") / "hats"


def _shipped(source):
    """Whether ``source`` (a HAT's file) is one of :func:`hats_dir`."""
    with importlib.resources.as_file(hats_dir()) as shipped:
        return os.path.dirname(os.path.abspath(source)) == os.path.abspath(shipped)


def list_hats():
    """Names of the shipped HAT files (``load_hat`` accepts each), sorted."""
    return sorted(p.name[:-5] for p in hats_dir().iterdir() if p.name.endswith(".json"))


def load_hat(name_or_path):
    """Load and validate a HAT file: a shipped name such as ``"lk-4l"`` or a path.

    A shipped file's ``id`` must be its name (``board/hats/lk-4l.json`` is ``"lk-4l"``).

    :raises HatError: the file is missing, malformed or invalid (field and position named)
    """
    text = os.fspath(name_or_path)
    if re.fullmatch(_NAME, text) and not text.endswith(".json"):
        resource = hats_dir() / (text + ".json")
        if not resource.is_file():
            raise HatError(
                "no such HAT %r; shipped HATs: %s (or give a path to a .json file)"
                % (text, ", ".join(list_hats()))
            )
        with importlib.resources.as_file(resource) as path:
            doc = jsonpos.load(path, error=HatError)
        hat = parse_hat(doc)
        if hat.id != text:
            # A copy of a shipped file that kept its id would be named as that HAT everywhere.
            doc.root.child("id").fail(
                "must be %r, the name of its file (%s.json), not %r" % (text, text, hat.id)
            )
        return hat
    return parse_hat(jsonpos.load(text, error=HatError))


def loads_hat(text, source=None):
    """Validate a HAT file given as JSON text (for tests and tools)."""
    return parse_hat(jsonpos.loads(text, source, error=HatError))


def parse_hat(doc):
    """Build a :class:`Hat` from a parsed :class:`~board.jsonpos.Document`."""
    root = doc.root.object(("format", "id", "name", "audio", "lines"), ("description", "i2c", "mcu", "sense"))
    if root.get_int("format") != HAT_FORMAT:
        root.child("format").fail("unsupported HAT file format; this firmware reads format %d" % HAT_FORMAT)
    hat_id = root.get_str(
        "id", pattern=(_NAME, "must be lower-case letters, digits, '.', '_' or '-'"), max_len=40
    )
    audio = _audio(root.child("audio"))
    i2c = _i2c(root.child("i2c")) if root.has("i2c") else None
    gpios = {}
    lines = _lines(root.child("lines"), audio, gpios)
    mcu = _mcu(root.child("mcu"), i2c, gpios) if root.has("mcu") else None
    return Hat(
        id=hat_id,
        name=root.get_str("name", max_len=200),
        audio=audio,
        i2c=i2c,
        lines=lines,
        description=root.get_str("description", ""),
        source=str(doc.source) if doc.source else None,
        mcu=mcu,
        sense=_sense(root.child("sense")) if root.has("sense") else HatSense(),
    )


def _sense(node):
    node.object((), ("ring_vrms", "loop_ma", "line_v"))
    out = {}
    for key, hi in (("ring_vrms", 200), ("loop_ma", 150), ("line_v", 150)):
        if not node.has(key):
            continue
        pair = node.child(key).items()
        if len(pair) != 2:
            node.child(key).fail("must be a [lowest, highest] pair")
        lo_, hi_ = (p.as_number(lo=0, hi=hi) for p in pair)
        if lo_ >= hi_:
            node.child(key).fail("the lowest must be below the highest")
        out[key] = (lo_, hi_)
    return HatSense(**out)


def _audio(node):
    node.object(("capture", "playback", "rate", "channels"), ("format", "period_frames"))
    rate = node.get_int("rate", hex_ok=True)
    if rate not in RATES:
        node.child("rate").fail("must be one of %s Hz, not %d" % (", ".join(map(str, RATES)), rate))
    return HatAudio(
        capture=_pcm(node, "capture"),
        playback=_pcm(node, "playback"),
        rate=rate,
        channels=node.get_int("channels", lo=1, hi=32, hex_ok=True),
        format=node.get_str("format", "S16_LE", choices=SAMPLE_FORMATS),
        period_frames=node.get_int("period_frames", 160, lo=16, hi=8192, hex_ok=True),
    )


def _pcm(node, key):
    return node.get_str(key, pattern=(r"\S+", "must be an ALSA PCM name without spaces"), max_len=200)


def _i2c(node):
    node.object(("bus", "devices"))
    devices, seen = [], {}
    for dev in node.child("devices").items():
        dev.object(("name", "address"), ("init",))
        address = dev.get_int("address", lo=0x03, hi=0x77, hex_ok=True)
        if address in seen:
            dev.child("address").fail(
                "address 0x%02x is already used by devices[%d]" % (address, seen[address])
            )
        seen[address] = dev.path[-1]
        init = []
        for step in dev.child("init").items() if dev.has("init") else ():
            pair = step.items()
            if len(pair) != 2:
                step.fail("must be a [register, value] pair")
            init.append(tuple(p.as_int(0, 0xFF, hex_ok=True) for p in pair))
        devices.append(I2cDevice(dev.get_str("name", max_len=40), address, tuple(init)))
    return HatI2c(node.get_int("bus", lo=0, hi=31, hex_ok=True), tuple(devices))


def _mcu(node, i2c, gpios):
    node.object(("address", "regmap_version"), ("power_fail", "holdup"))
    if i2c is None:
        node.fail('the supervisor MCU talks over I2C: give the HAT an "i2c" section')
    address = node.get_int("address", lo=0x08, hi=0x77, hex_ok=True)
    for device in i2c.devices:
        if device.address == address:
            node.child("address").fail(
                "address 0x%02x is already used by the I2C device %r" % (address, device.name)
            )
    power_fail = None
    if node.has("power_fail"):
        power_fail = _pin(node.child("power_fail"), gpios, jsonpos.format_path(node.path + ("power_fail",)))
    farads, load_mw, min_mv = 0.0, 4000, 2500
    if node.has("holdup"):
        holdup = node.child("holdup")
        holdup.object(("farads", "load_mw", "min_mv"))
        farads_node = holdup.child("farads")
        farads = farads_node.value
        if isinstance(farads, bool) or not isinstance(farads, (int, float)) or not 0 <= farads <= 100:
            farads_node.fail("must be a number of farads from 0 to 100")
        load_mw = holdup.get_int("load_mw", lo=1, hi=50_000)
        min_mv = holdup.get_int("min_mv", lo=0, hi=5000)
    from .mcu.link import SUPPORTED_REGMAPS

    regmap_version = node.get_int("regmap_version", lo=1, hi=255)
    if regmap_version not in SUPPORTED_REGMAPS:
        # Its MCU would be misread (or refused only once the box runs): say so now.
        node.child("regmap_version").fail(
            "this firmware speaks register map version %s, not %d: a HAT whose MCU speaks "
            "version %d needs a Linekeeper release that does"
            % (", ".join(map(str, SUPPORTED_REGMAPS)), regmap_version, regmap_version)
        )
    return HatMcu(address, regmap_version, power_fail, float(farads), load_mw, min_mv)


def _lines(node, audio, gpios):
    by_number, channels = {}, {"capture_channel": {}, "playback_channel": {}}
    items = node.items(min_len=1)
    for item in items:
        item.object(("line", "capture_channel", "playback_channel", "pins"))
        number = item.get_int("line", lo=1, hi=len(items), hex_ok=True)
        if number in by_number:
            item.child("line").fail(
                "line %d is already defined by lines[%d]" % (number, by_number[number][0])
            )
        for key, used in channels.items():
            ch = item.get_int(key, lo=0, hi=audio.channels - 1, hex_ok=True)
            if ch in used:
                item.child(key).fail("channel %d is already used by line %d" % (ch, used[ch]))
            used[ch] = number
        pins = _pins(item.child("pins"), gpios)
        by_number[number] = (
            item.path[-1],
            HatLine(
                number,
                item.get_int("capture_channel", hex_ok=True),
                item.get_int("playback_channel", hex_ok=True),
                pins,
            ),
        )
    # Numbers are unique and within 1..N, so all of 1..N are there.
    return tuple(by_number[n][1] for n in sorted(by_number))


def _pins(node, gpios):
    known = INPUT_SIGNALS + OUTPUT_SIGNALS
    node.object(REQUIRED_SIGNALS, tuple(s for s in known if s not in REQUIRED_SIGNALS))
    pins = {}
    for signal in known:
        if node.has(signal):
            pins[signal] = _pin(node.child(signal), gpios, jsonpos.format_path(node.path + (signal,)))
    return pins


def _pin(pin, gpios, name):
    """A PIN (see the module docstring) whose GPIO no other pin uses; noted in ``gpios``."""
    if isinstance(pin.value, dict):
        pin.object(("gpio",), ("active", "pull"))
        gpio_node = pin.child("gpio")
        active = pin.get_str("active", "high", choices=("high", "low"))
        spec = PinSpec(
            gpio_node.as_int(0, GPIO_MAX, hex_ok=True),
            active == "low",
            pin.get_str("pull", "floating", choices=PULLS),
        )
    else:
        gpio_node = pin
        spec = PinSpec(pin.as_int(0, GPIO_MAX, hex_ok=True))
    if spec.gpio in gpios:
        gpio_node.fail("GPIO %d is already used by %s" % (spec.gpio, gpios[spec.gpio]))
    gpios[spec.gpio] = name
    return spec
