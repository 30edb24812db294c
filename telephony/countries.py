"""The telephony conventions of each country, in one table.

Everything that differs between countries' phone networks is here and
nowhere else: which caller-ID standards a line carries, the ring cadence and
frequency, how long after the last ring a call counts as missed, the
call-progress tones (to make them and to recognise them), the tone the
exchange sends when the far end clears, the default voice for spoken
notices, and how national numbers are written. The box's configuration, the
simulator, ``linekeeper analyze``, the detectors and the web UI all read
this table, so adding a country is one :class:`Country` entry in
:data:`COUNTRIES` (plus its tests).

Entries with ``box=False`` are analysis profiles (``etsi``, ``dtmf``): a set
of caller-ID standards ``linekeeper analyze`` and the detectors accept, not a
country a box can be set to.

The numbers come from published specifications (caller ID: BT SIN 227 and
SIN 242, ETSI EN 300 659, Telcordia GR-30; tones and cadences: the national
tone plans ITU-T E.180 collects); docs/telephony.md lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class FskModulation:
    """An FSK caller-ID modulation.

    ``space_hz``/``mark_hz`` are the tones of a 0 and a 1 bit, ``bit_rate`` in
    bit/s. The receiver band-pass filters the line to ``band_low_hz`` ..
    ``band_high_hz`` with ``filter_taps`` taps before demodulating.
    ``spandsp_fsk`` and ``spandsp_adsi`` name spandsp's preset for the
    modulation and its ADSI standard (constants of :mod:`telephony.spandsp`).
    ``preamble`` names the default preamble of :data:`telephony.generate.PREAMBLES`.
    """

    space_hz: int
    mark_hz: int
    bit_rate: int
    band_low_hz: float
    band_high_hz: float
    filter_taps: int
    spandsp_fsk: str
    spandsp_adsi: str
    preamble: str


#: The FSK caller-ID modulations, by the name scenarios and events use.
FSK_MODULATIONS: Mapping[str, FskModulation] = MappingProxyType(
    {
        # ITU-T V.23 channel 1, as BT SIN 227 and ETSI EN 300 659 use it.
        "v23": FskModulation(
            2100, 1300, 1200, 1000.0, 2400.0, 95, "FSK_V23CH1", "ADSI_STANDARD_CLIP", "etsi"
        ),
        # Bell 202, as Telcordia GR-30 uses it.
        "bell202": FskModulation(
            2200, 1200, 1200, 900.0, 2500.0, 31, "FSK_BELL202", "ADSI_STANDARD_CLASS", "bellcore"
        ),
    }
)

#: Caller ID sent as DTMF digits (``A<number>C`` ...), used in several countries.
DTMF = "dtmf"


def cid_standards() -> tuple[str, ...]:
    """Every caller-ID standard the box knows: the FSK modulations, then ``"dtmf"``."""
    return tuple(FSK_MODULATIONS) + (DTMF,)


@dataclass(frozen=True)
class Tone:
    """A call-progress tone to generate: one or two frequencies and a cadence.

    ``f2_hz`` is 0 for a single tone; ``cadence_ms`` is (on, off, on, off),
    all 0 for a continuous tone.
    """

    f1_hz: int
    f2_hz: int
    cadence_ms: tuple[int, int, int, int] = (0, 0, 0, 0)


#: A tone to recognise: name and spandsp ``super_tone_rx`` elements
#: ``(f1 Hz, f2 Hz or 0, min ms, max ms or 0)``; (0, 0, ...) is a silence.
ToneSpec = tuple[str, tuple[tuple[int, int, int, int], ...]]


@dataclass(frozen=True)
class NumberFormat:
    """How the country writes phone numbers, to put them in international form.

    A number starting with ``international_prefix`` is already international
    after it; one starting with ``trunk_prefix`` is national (and, when
    ``national_digits`` is set, must then have that many digits after the
    prefix, or contain a wildcard); one of exactly ``national_digits`` digits
    starting with one of ``national_first_digits`` is a national number
    dialled without the trunk prefix; one of the country code and
    ``significant_digits`` more is international without its ``+``.
    ``presentation_prefixes`` are dialled before a
    number only to withhold or show the caller's own number (the UK's 141 and 1470,
    North America's *67 and *82, and GSM's #31#, which a mobile network takes in
    either, through a GSM gateway): the number called is what follows.
    ``relay_prefixes`` are dialled before a number to call it through a relay service for
    deaf and speech-impaired people (the UK's Relay UK: 18001 from a textphone, 18002 to
    one; North America's 711, which no number begins with, an area code or an exchange
    never being N11): the number called is what follows, whatever it begins with (a
    national or international number, a service number, 999).
    ``emergency_numbers`` are whole numbers of their own (the UK's 999 and 112, and 18000,
    999 through Relay UK for deaf and speech-impaired people; North America's 911): nothing
    longer begins with one, so a key after one is not the number's.
    ``service_numbers`` are ``(start, digits)``: a number beginning ``start`` is a
    service of that many digits, as whole as an emergency number (the UK's directory
    enquiry services, 118 and three digits; the European helplines, 116 and three; 100,
    101, 105 and 111; the speaking clock, 123; call return, 1471). Only where a card
    number cannot begin the same way: a card begins 2 to 6, so none may start North
    America's 411 (a card keyed with no number, 4111 ..., would keep its first digits in
    the call log); and only where the plan fixes the length for every provider (not 150
    or BT's voicemail, 1571)."""

    country_code: str
    international_prefix: str
    trunk_prefix: str
    national_digits: int | None = None
    national_first_digits: str = ""
    presentation_prefixes: tuple[str, ...] = ()
    relay_prefixes: tuple[str, ...] = ()
    #: how many digits a national number has after its trunk prefix: a number of the
    #: country code and that many digits (not starting with 0) is in international form
    #: without its ``+``, as some networks send a caller's number
    significant_digits: tuple[int, ...] = ()
    #: the fewest and the most digits any national number has after its trunk prefix (the
    #: UK's shortest is 0800 1111, seven), where ``national_digits`` does not fix it: a
    #: number list's entry without a wildcard outside them matches no call
    national_digits_range: tuple[int, int] | None = None
    emergency_numbers: tuple[str, ...] = ()
    service_numbers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Country:
    """One country's telephony conventions (see the module docstring)."""

    code: str
    name: str
    #: caller-ID standards a line carries; the first is the simulator's default
    cid_standards: tuple[str, ...]
    #: ring cadence (on, off, ...) in ms; the last "off" is the long silence
    ring_cadence_ms: tuple[int, ...]
    ring_hz: int
    #: no ring for this long after a burst: the caller gave up (missed call);
    #: longer than the cadence's longest silence
    ring_timeout_ms: int
    tones: Mapping[str, Tone]
    tone_detection: tuple[ToneSpec, ...]
    #: the tone the exchange sends when the far end has cleared
    clear_tone: str
    #: espeak-ng voice of spoken notices and simulated speech
    voice: str
    numbers: NumberFormat
    #: other names a tone is asked for by (e.g. the US "reorder")
    tone_aliases: Mapping[str, str] = field(default_factory=dict)
    #: False: an analysis profile only, not a country a box can be set to
    box: bool = True

    @property
    def ring_silence_ms(self) -> int:
        """The long silence of the ring cadence: after it the caller may have given up."""
        return self.ring_cadence_ms[-1]

    def tone(self, name: str) -> Tone:
        """The call-progress tone ``name`` (aliases allowed); :class:`ValueError` if none."""
        key = self.tone_aliases.get(name, name)
        if key not in self.tones:
            raise ValueError("%s has no %r tone (%s)" % (self.code, name, ", ".join(sorted(self.tones))))
        return self.tones[key]


_UK_TONES = MappingProxyType(
    {
        "dial": Tone(350, 450),
        "busy": Tone(400, 0, (375, 375, 0, 0)),
        "congestion": Tone(400, 0, (400, 350, 225, 525)),
        "unobtainable": Tone(400, 0),
        "ringback": Tone(400, 450, (400, 200, 400, 2000)),
    }
)

_UK_TONE_DETECTION: tuple[ToneSpec, ...] = (
    ("dial", ((350, 450, 800, 0),)),
    ("unobtainable", ((400, 0, 1200, 0),)),
    ("busy", ((400, 0, 300, 450), (0, 0, 300, 450), (400, 0, 300, 450), (0, 0, 300, 450))),
    # one burst more than a cycle: a busy tone cut short mid-burst must not pass for it
    (
        "congestion",
        ((400, 0, 320, 480), (0, 0, 280, 420), (400, 0, 170, 280), (0, 0, 420, 630), (400, 0, 320, 480)),
    ),
    ("ringback", ((400, 450, 300, 500), (0, 0, 150, 300), (400, 450, 300, 500), (0, 0, 600, 2500))),
)

_UK_NUMBERS = NumberFormat(
    country_code="44",
    international_prefix="00",
    trunk_prefix="0",
    presentation_prefixes=("1470", "141", "#31#"),
    relay_prefixes=("18001", "18002"),
    significant_digits=(9, 10),
    national_digits_range=(7, 10),
    emergency_numbers=("999", "112", "18000"),
    service_numbers=(
        ("100", 3),
        ("101", 3),
        ("105", 3),
        ("111", 3),
        ("116", 6),
        ("118", 6),
        ("123", 3),
        ("1471", 4),
    ),
)

_UK = Country(
    code="uk",
    name="United Kingdom",
    cid_standards=("v23", DTMF),
    ring_cadence_ms=(400, 200, 400, 2000),
    ring_hz=25,
    ring_timeout_ms=3500,
    tones=_UK_TONES,
    tone_detection=_UK_TONE_DETECTION,
    clear_tone="unobtainable",
    voice="en-gb",
    numbers=_UK_NUMBERS,
    tone_aliases=MappingProxyType(
        {"reorder": "congestion", "nu": "unobtainable", "number_unobtainable": "unobtainable"}
    ),
)

_US = Country(
    code="us",
    name="United States",
    cid_standards=("bell202", DTMF),
    ring_cadence_ms=(2000, 4000),
    ring_hz=20,
    ring_timeout_ms=5500,
    tones=MappingProxyType(
        {
            "dial": Tone(350, 440),
            "busy": Tone(480, 620, (500, 500, 0, 0)),
            "congestion": Tone(480, 620, (250, 250, 0, 0)),
            "ringback": Tone(440, 480, (2000, 4000, 0, 0)),
        }
    ),
    tone_detection=(
        ("dial", ((350, 440, 800, 0),)),
        ("busy", ((480, 620, 400, 600), (0, 0, 400, 600))),
        ("congestion", ((480, 620, 200, 300), (0, 0, 200, 300))),
        ("ringback", ((440, 480, 1600, 2400), (0, 0, 1000, 4800))),
    ),
    clear_tone="busy",
    voice="en-us",
    numbers=NumberFormat(
        country_code="1",
        international_prefix="011",
        trunk_prefix="1",
        national_digits=10,
        national_first_digits="23456789",
        presentation_prefixes=("*67", "*82", "#31#"),
        relay_prefixes=("711",),
        emergency_numbers=("911",),
    ),
    # North America signals an unobtainable number with reorder (congestion)
    tone_aliases=MappingProxyType(
        {
            "reorder": "congestion",
            "nu": "congestion",
            "number_unobtainable": "congestion",
            "unobtainable": "congestion",
        }
    ),
)

#: Every country and analysis profile, by code. Read it through :func:`country`,
#: :func:`box_countries` and :func:`profiles`; a test may add an entry.
COUNTRIES: dict[str, Country] = {
    "uk": _UK,
    "us": _US,
    # Analysis profiles: the UK's tones with other caller-ID standards.
    "etsi": Country(**{**_UK.__dict__, "code": "etsi", "name": "ETSI (V.23 and DTMF)", "box": False}),
    "dtmf": Country(
        **{
            **_UK.__dict__,
            "code": "dtmf",
            "name": "DTMF caller ID only",
            "cid_standards": (DTMF,),
            "box": False,
        }
    ),
}


def country(code: str) -> Country:
    """The entry for ``code``; :class:`ValueError` naming the known codes if there is none."""
    try:
        return COUNTRIES[code]
    except (KeyError, TypeError):
        raise ValueError("unknown country %r (%s)" % (code, ", ".join(COUNTRIES))) from None


def box_countries() -> dict[str, str]:
    """The countries a box can be set to: code -> name, in table order."""
    return {c.code: c.name for c in COUNTRIES.values() if c.box}


def profiles() -> tuple[str, ...]:
    """Every code the detectors and ``linekeeper analyze`` accept (countries and profiles)."""
    return tuple(COUNTRIES)
