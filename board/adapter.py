"""Adapter profiles: what the phone port of a hub or ATA does, as data files.

A line's *source* is what the box's line side is plugged into: the
``exchange`` (a copper PSTN line) or the phone port of a Digital Voice hub or
analogue telephone adapter (ATA). Each adapter behaviour the firmware must
cope with is a JSON file in ``board/adapters/`` (documented, value by value,
with its source in ``docs/adapters.md``). The simulator plays a line as its
profile says (:mod:`board.sim.timeline`); ``linekeeper linecheck`` compares
what it observed on each line with the shipped profiles.

:func:`load_adapter` reads one file, checks all of it and returns a frozen
:class:`Adapter`; any problem raises :class:`~telephony.errors.ScenarioError`
naming the field and its position. The format (``"format": 1``)::

    {"format": 1, "id": "uk-dv-hub", "name": "...", "description": "...",
     "country": a box country of telephony/countries.py ("uk", "us"): cadence family, voice
     "caller_id": {"standard": "v23" | "bell202" | "dtmf",
                   "when": "before_ring" | "after_first_ring",
                   "reversal": bool,        idle-line reversal before the message
                   "dtas": bool,            dual-tone alert before the message (FSK)
                   "ring_pulse": bool},     a short ring pulse before the message (RP-AS)
     "ring": {"cadence_ms": [on, off, ...], "hz": 15..60, "vrms": 10..120},
     "loop_ma": 5..100,                     off-hook loop current
     "idle_v": 10..80,                      on-hook line voltage
     "answer_reversal": bool,               reverses polarity when a call is answered
     "disconnect": {"signal": "loop_break" | "reversal" | "tone" | "none",
                    "duration_ms": 20..2000, (loop_break: how long the feed is removed)
                    "tone": "busy" | "unobtainable" | "congestion" (after the signal, or the
                            signal itself; none: silence)},
     "tones": a box country ("uk", "us"),   the country setting of its dial and clear tones
     "sources": {"field": "where its value comes from", ...}}  (optional, for people)
"""

import importlib.resources
import os
import re
from dataclasses import dataclass

from telephony import countries
from telephony.errors import ScenarioError

from . import jsonpos

ADAPTER_FORMAT = 1
EXCHANGE = "exchange"
CID_WHEN = ("before_ring", "after_first_ring")
DISCONNECT_SIGNALS = ("loop_break", "reversal", "tone", "none")
CLEAR_TONES = ("busy", "unobtainable", "congestion")
#: disconnect signal -> the call's end_reason when the far end clears first
END_REASON = {
    "loop_break": "remote_break",
    "reversal": "remote_reversal",
    "tone": "remote_tone",
    "none": "remote_silence",
}
_NAME = r"[a-z0-9][a-z0-9._-]*"


@dataclass(frozen=True)
class AdapterCallerId:
    """How the adapter sends caller ID (see the module docstring)."""

    standard: str
    when: str
    reversal: bool = False
    dtas: bool = False
    ring_pulse: bool = False


@dataclass(frozen=True)
class AdapterRing:
    """Ringing: ``cadence_ms`` (on, off, ...), frequency ``hz``, level ``vrms``."""

    cadence_ms: tuple
    hz: int
    vrms: float


@dataclass(frozen=True)
class Disconnect:
    """How the adapter tells the far end cleared: ``signal``, its ``duration_ms``, a ``tone``."""

    signal: str
    duration_ms: int = None
    tone: str = None


@dataclass(frozen=True)
class Adapter:
    """A whole adapter profile (see the module docstring)."""

    id: str
    name: str
    country: str
    caller_id: AdapterCallerId
    ring: AdapterRing
    loop_ma: float
    idle_v: float
    answer_reversal: bool
    disconnect: Disconnect
    tones: str
    description: str = ""

    @property
    def end_reason(self):
        """The ``end_reason`` of a call the far end clears on this adapter."""
        return END_REASON[self.disconnect.signal]


def adapters_dir():
    """The directory of the adapter profiles shipped with the package."""
    return importlib.resources.files("board") / "adapters"


def list_adapters():
    """Names of the shipped adapter profiles, sorted."""
    return sorted(p.name[:-5] for p in adapters_dir().iterdir() if p.name.endswith(".json"))


def load_adapter(name_or_path):
    """Load and validate an adapter profile: a shipped name (``"uk-dv-hub"``) or a path.

    :raises ScenarioError: missing, malformed or invalid (field and position named)
    """
    text = os.fspath(name_or_path)
    if re.fullmatch(_NAME, text) and not text.endswith(".json"):
        resource = adapters_dir() / (text + ".json")
        if not resource.is_file():
            raise ScenarioError(
                "no such adapter profile %r; shipped: %s, or %r (or a path to "
                "a .json file)" % (text, ", ".join(list_adapters()), EXCHANGE)
            )
        with importlib.resources.as_file(resource) as path:
            return parse_adapter(jsonpos.load(path, error=ScenarioError))
    return parse_adapter(jsonpos.load(text, error=ScenarioError))


def parse_adapter(doc):
    """Build an :class:`Adapter` from a parsed :class:`~board.jsonpos.Document`."""
    root = doc.root.object(
        ("format", "id", "name", "country", "caller_id", "ring", "loop_ma", "idle_v", "disconnect", "tones"),
        ("description", "answer_reversal", "sources"),
    )
    if root.get_int("format") != ADAPTER_FORMAT:
        root.child("format").fail(
            "unsupported adapter profile format; this firmware reads format %d" % ADAPTER_FORMAT
        )
    if root.has("sources"):  # where each value comes from, for people: text only
        sources = root.child("sources").require()
        for key in sources.value:
            sources.child(key).as_str(max_len=500)
    return Adapter(
        id=root.get_str(
            "id", pattern=(_NAME, "must be lower-case letters, digits, '.', '_' or '-'"), max_len=40
        ),
        name=root.get_str("name", max_len=120),
        description=root.get_str("description", "", max_len=2000),
        country=root.get_str("country", choices=tuple(countries.box_countries())),
        caller_id=_caller_id(root.child("caller_id")),
        ring=_ring(root.child("ring")),
        loop_ma=root.get_number("loop_ma", lo=5, hi=100),
        idle_v=root.get_number("idle_v", lo=10, hi=80),
        answer_reversal=root.get_bool("answer_reversal", False),
        disconnect=_disconnect(root.child("disconnect")),
        tones=root.get_str("tones", choices=tuple(countries.box_countries())),
    )


def _caller_id(node):
    node.object(("standard", "when"), ("reversal", "dtas", "ring_pulse"))
    standard = node.get_str("standard", choices=countries.cid_standards())
    when = node.get_str("when", choices=CID_WHEN)
    reversal, dtas = node.get_bool("reversal", False), node.get_bool("dtas", False)
    ring_pulse = node.get_bool("ring_pulse", False)
    if when == "after_first_ring" and (reversal or dtas or ring_pulse):
        node.fail(
            "caller ID after the first ring is alerted by the ring itself: no reversal, dtas or ring_pulse"
        )
    if ring_pulse and (dtas or standard == "dtmf"):
        node.fail("a ring pulse (RP-AS) alerts FSK caller ID on its own: no dtas, not DTMF")
    if standard == "dtmf" and (dtas or when != "before_ring"):
        node.fail("DTMF caller ID is sent before the first ring, without a dual-tone alert")
    return AdapterCallerId(standard, when, reversal, dtas, ring_pulse)


def _ring(node):
    node.object(("cadence_ms", "hz", "vrms"))
    cadence = tuple(item.as_int(lo=100, hi=10000) for item in node.child("cadence_ms").items(2))
    if len(cadence) % 2:
        node.child("cadence_ms").fail("must be pairs of on and off times (ms)")
    return AdapterRing(cadence, node.get_int("hz", lo=15, hi=60), node.get_number("vrms", lo=10, hi=120))


def _disconnect(node):
    node.object(("signal",), ("duration_ms", "tone"))
    signal = node.get_str("signal", choices=DISCONNECT_SIGNALS)
    duration = None
    if signal == "loop_break":
        duration = node.get_int("duration_ms", lo=20, hi=2000)
    elif node.has("duration_ms"):
        node.child("duration_ms").fail("only a loop_break has a duration")
    tone = node.get_str("tone", None, choices=CLEAR_TONES)
    if signal == "tone" and tone is None:
        node.fail('a "tone" disconnect names its tone ("busy", "unobtainable" or "congestion")')
    if signal == "none" and tone is not None:
        node.child("tone").fail('an adapter that signals "none" plays no tone either')
    return Disconnect(signal, duration, tone)
