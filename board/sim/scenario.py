"""Simulator scenarios: what happens on the lines, call by call.

:func:`load_scenario` reads a scenario file (JSON, or TOML for ``.toml``
files), checks every field and returns a frozen :class:`Scenario`; any problem
raises :class:`~telephony.errors.ScenarioError` naming the field
(``calls[2].rings``, lists counted from 0) and, for JSON, its line and column.
:func:`board.sim.timeline.compile_timeline` turns a scenario into pin edges,
audio and the truth the call log must reproduce.

The text between the two rulers below is Markdown, the same as in docs/scenarios.md.

----------------------------------------------------------------------------
## Writing a scenario

A scenario describes what happens on the lines of the simulated box: one JSON
object, or a TOML file (`.toml`) with `[[calls]]` tables. Times are seconds
(decimals allowed) counted from `start`. Unknown fields are an error, so a typo
is never silently ignored; every error names the field (`calls[2].rings`,
lists counted from 0) and, in JSON, its line and column. A scenario file is a
regular file of at most 8 MiB, nested at most 32 deep, with numbers of at most
40 characters. `demo` is the
built-in scenario (`board/sim/demo.json`) that `make run` plays.

```json
{"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 4,
 "calls": [
   {"line": 1, "at": 2.0, "direction": "in",
    "caller_id": {"number": "01632960123", "name": "ACME LTD"},
    "rings": 2, "talk": 20.0, "speech": "Hello, I would like to place an order"},
   {"line": 2, "at": 5.0, "direction": "out",
    "dial": {"digits": "02079460000", "mode": "dtmf"}, "talk": 15.0, "hangup": "remote"},
   {"line": 3, "at": 1.0, "direction": "in", "rings": 5, "answer": false}],
 "faults": [{"line": 4, "at": 30.0, "kind": "no_line_voltage", "duration": 8.0}]}
```

### Top level

| field | default | meaning |
|---|---|---|
| `start` | required | wall-clock time of t = 0: ISO 8601 with a zone, e.g. `"2026-03-02T09:00:00Z"`, from 1970 to 2999 (a later day at that time on a data directory a run left: see "The box's clock across runs"). It sets the box's clock: everything the box dates (the audit trail, calls, alarms, accounts made, passwords changed, the card's days in service) and every "today" it judges a date by are on it, in the web UI too. Only what is measured as time passing for a person (a session's idle and longest time, the login back-off) runs on the machine's clock |
| `country` | required | a country of `telephony/countries.py`, `"uk"` or `"us"`: ring cadence, caller-ID standard, tones, default voice |
| `lines` | required | lines in use, 1 to the HAT's line count |
| `calls` | required | list of calls (below); may be empty |
| `faults` | `[]` | list of line faults (below) |
| `power` | `[]` | the box's supply, `[{"at": s, "cut": true}, {"at": s, "cut": false}]`: cut and restored in turn, times increasing, starting with a cut; the HAT must have a supervisor MCU (both shipped HATs do). The MCU warns the box, whose hold-up capacitor then keeps it running for the hold-up time (see docs/power-fail.md); the calls under way end as `power_loss`, one still being dialled with the digits dialled before the cut as its number (masked as ever); a box that browned out starts again when the power returns |
| `hat` | `"lk-4l"` | HAT file of the simulated board: a shipped name, or a path (relative to the scenario file). The simulator plays this one and no other: a box configuration naming another HAT is refused before anything starts, naming the HAT and the file, whether it is `config` below, the data directory's `config.json` or `linekeeper sim --config FILE` (give the HAT here instead) |
| `bounce_ms` | `3` | contact chatter after each `hook`/`in_use` change, 0 to 10 ms; 0 disables it |
| `noise_dbm0` | `-65` | line noise floor, -100 to -20 dBm0 |
| `speech_level_dbm0` | `-18` | default active speech level, -25 to -10 dBm0 |
| `seed` | `0` | seeds the contact chatter and the noise: same seed, same run |
| `sources` | `{}` | what each line is plugged into: `{"2": "uk-dv-hub"}` maps a line to a hub or ATA profile (a shipped name from `board/adapters/`, or a path relative to the scenario file); lines not named are `"exchange"`. On an adapter's line its profile sets the caller-ID variant (a call's `caller_id.standard` may be left out; if given it must be the profile's), the ringing, the far end's clear and the tones (docs/adapters.md) |
| `config` | none | the box configuration to run with, exactly as in `DATA_DIR/config.json` (validated the same way: a bad field is named, e.g. `config.policy.rules.lines[0].mode`); without it the data directory's `config.json` is used, and `linekeeper sim --config FILE` overrides both. The scenario's `country` always wins over the configured one |

### A call

| field | default | meaning |
|---|---|---|
| `line` | required | 1 to `lines` |
| `at` | required | when the call's first signal appears (inbound: polarity reversal or first ring, >= 0; outbound: off-hook, > 0, since a line off-hook as the box starts is a call already under way) |
| `direction` | required | `"in"` or `"out"` |
| `caller_id` | none | inbound only: `{number, name, datetime, standard, absence}` (below) |
| `rings` | `2` | inbound: ring cycles, 1 to 50 (a UK cycle is the double burst) |
| `answer` | `true` | inbound: `false` makes a missed call (then `talk`, `speech`, `hangup` and the other answer fields are not allowed); outbound: `false` makes a call nobody answers, the caller hanging up `dial.answer_after` s after dialling; it needs `dial.ringback` (and so `dial.answer_after` > 0), since without a ringback tone the box takes the end of dialling for the answer, as on a real line (the same fields not allowed; truth `end_reason` `abandoned`) |
| `answer_delay` | `0.5` | inbound: off-hook this many seconds after the end of the last ring burst; less than the cadence's silence (uk 2.0, us 4.0) |
| `dial` | required | outbound only: `{digits, mode, delay, on_ms, off_ms, answer_after, ringback, caller_speech, dial_tone}` (below) |
| `talk` | `10` | seconds from the answer to the end of the call, > 0 |
| `speech` | none | a string (spoken 0.5 s after the answer) or a list of `{"at": s after the answer, "text": ..., "voice": ..., "level_dbm0": ...}`; `voice` (an espeak-ng voice) defaults to `en-gb` (uk) or `en-us` (us), `level_dbm0` (-25 to -10) to `speech_level_dbm0`; `at` must be less than `talk`, and speech is cut where the call ends |
| `hangup` | `"local"` | who clears: `"local"` (our side hangs up), `"remote"` (the far end), or `"line_lost"` (the line goes dead under the call: a broadband hub or ATA restarting, below) |
| `hangup_delay` | `2.0` | remote or line_lost only: seconds our side stays off-hook after the far end cleared or the line died, more than 0.2, at most 120 (with `line_lost`, less than `line_lost_for`) |
| `line_lost_for` | `90` | line_lost only: seconds the line has no voltage (the hub's or ATA's restart), 10 to 600 |
| `extension` | `false` | answered or placed on a parallel extension: `in_use` changes, `hook` does not |
| `polarity_on_answer` | `false` | the exchange reverses the line polarity when the call is answered; on an adapter's line only `true` with a profile that reverses on answer (`"answer_reversal": true`), which it then does anyway |
| `press` | `[]` | answered calls: buttons pressed during the call, `[{"at": s after the answer, "button": "record" or "pause"}]`; the HAT must wire that button on the line (`"hat": "lk-2lb"` has both) |
| `keys` | `[]` | answered calls: DTMF keyed on the handset during the call, `[{"at": s after the answer, "digits": "*1"}]` (1 to 32 of `0-9 * # A B C D`), e.g. the PCI pause code or card digits |
| `tags` | `[]` | the call's categories (1 to 32 of `a-z 0-9 _ -`, starting with a letter or digit), given to the call as an operator would tag it (see below) |

`caller_id`:

| field | default | meaning |
|---|---|---|
| `number` | none | 1 to 20 digits; required unless `absence` is given |
| `name` | none | 1 to 50 printable ASCII characters; not with DTMF caller ID |
| `datetime` | `start` + `at` | `"MMDDHHMM"` (a real day), in `start`'s time zone; not with DTMF caller ID, which sends no date |
| `standard` | uk `"v23"`, us `"bell202"`; on an adapter's line the profile's | `"v23"`, `"bell202"` or `"dtmf"` (on an adapter's line only the profile's); Bell 202 needs `rings` >= 2 |
| `absence` | none | `"private"` or `"unavailable"`: the number is withheld (then no `number` or `name`) |

`dial`:

| field | default | meaning |
|---|---|---|
| `digits` | required | 1 to 32 of `0-9 * # A B C D` (DTMF) or `0-9` (pulse) |
| `mode` | `"dtmf"` | `"dtmf"` or `"pulse"` (loop-disconnect, 10 pulses/s) |
| `delay` | `1.5` | seconds from off-hook to the first digit, 0.1 to 30 (dial tone meanwhile) |
| `on_ms`, `off_ms` | `70`, `80` | DTMF only: tone and gap, 20 to 1000 ms each |
| `answer_after` | `0` | seconds from the end of dialling to the far end answering, 0 to 60 (silence meanwhile, unless `ringback`) |
| `ringback` | `false` | the country's ringback tone plays from the end of dialling until the far end answers (needs `answer_after` > 0) |
| `caller_speech` | `[]` | the caller's own voice before the answer (talking while the far end is rung), `[{"at": s after the end of dialling, "text": ..., "voice": ..., "level_dbm0": ...}]` as in `speech`; `at` must be less than `answer_after`; mixed into the line's capture like all speech (the HAT hears both directions on one channel) and cut where the call ends |
| `dial_tone` | `true` | `false`: the line gives no dial tone (its service cut by the provider, a Digital Voice hub or ATA that lost its network, while the line still has voltage): the caller hears silence where the dial tone was for `delay` s (default 5 here) and hangs up without dialling. Needs `"answer": false`; `digits` and the other fields are not allowed. The call's truth: outbound, no number, `abandoned`. Two such calls in a row on a line whose dial tone the box has heard raise the `line_no_dial_tone` alarm (docs/operating.md) |

A fault is `{"line": n, "at": s, "kind": k, "duration": s}` (duration > 0):
`"no_line_voltage"` drops `power` for the duration; `"stuck_off_hook"` holds
`hook` and `in_use` active for it (no dialling).

A press, and the tones of a key sequence, must end before the call does.

A call occupies its line from `at` until 1 s after its last signal (a missed
call a further ring silence, 2 s uk / 4 s us: only then can anyone tell that
the ringing has stopped); a fault from `at` until 1 s after it ends. Calls and
faults on the same line must not overlap.
----------------------------------------------------------------------------

The timing rules that turn these fields into signals are in
:mod:`board.sim.timeline`.
"""

import calendar
import datetime as dt
import importlib.resources
import os
import re
from dataclasses import dataclass, replace

from telephony import countries
from telephony.errors import ConfigError, HatError, ScenarioError

from .. import jsonpos
from ..adapter import EXCHANGE, load_adapter
from ..hat import load_hat
from .timeline import (  # the timeline owns the timing rules
    KEY_OFF_MS,
    KEY_ON_MS,
    PRESS_US,
    occupancy_us,
    ring_silence_us,
)

ABSENCE = ("private", "unavailable")
BUTTONS = {"record": "record_button", "pause": "pause_button"}
TAG = (
    r"[a-z0-9][a-z0-9_-]{0,31}",
    "must be 1 to 32 of a-z, 0-9, '_' or '-', starting with a letter or digit",
)
FAULT_KINDS = ("no_line_voltage", "stuck_off_hook")
MAX_S = 7 * 24 * 3600.0  # a week: plenty for any scenario, and catches ms-for-s mistakes
MIN_START = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_START = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class CallerId:
    """Caller ID sent with an inbound call; ``standard`` and ``datetime`` are resolved."""

    standard: str
    datetime: str
    number: str = None
    name: str = None
    absence: str = None


@dataclass(frozen=True)
class Dial:
    """How an outbound call dials ``digits`` ("dtmf" or "pulse")."""

    digits: str
    mode: str = "dtmf"
    delay_s: float = 1.5
    on_ms: float = 70
    off_ms: float = 80
    answer_after_s: float = 0.0
    ringback: bool = False
    caller_speech: tuple = ()  # Utterance, ``at_s`` from the end of dialling
    dial_tone: bool = True  # False: silence where the dial tone was, and no digits dialled


@dataclass(frozen=True)
class Utterance:
    """Speech on the line ``at_s`` seconds after the call is answered (the caller's own,
    in ``Dial.caller_speech``: after the end of dialling)."""

    at_s: float
    text: str
    voice: str
    level_dbm0: float


@dataclass(frozen=True)
class Press:
    """A button (``"record"`` or ``"pause"``) pressed ``at_s`` seconds after the answer."""

    at_s: float
    button: str


@dataclass(frozen=True)
class Keys:
    """DTMF ``digits`` keyed on the handset from ``at_s`` seconds after the answer."""

    at_s: float
    digits: str


@dataclass(frozen=True)
class ScenarioCall:
    """One call of a scenario; ``index`` is its place in ``calls`` (from 0).

    Fields that do not apply (``rings`` of an outbound call, ``talk`` of a
    missed one) are None.
    """

    index: int
    line: int
    at_s: float
    direction: str
    answer: bool = True
    rings: int = None
    answer_delay_s: float = None
    caller_id: CallerId = None
    dial: Dial = None
    talk_s: float = None
    speech: tuple = ()
    hangup: str = None
    hangup_delay_s: float = None
    line_lost_s: float = None
    extension: bool = False
    polarity_on_answer: bool = False
    tags: tuple = ()
    press: tuple = ()
    keys: tuple = ()


@dataclass(frozen=True)
class PowerEvent:
    """The box's supply cut (``cut``) or restored at ``at_s``."""

    index: int
    at_s: float
    cut: bool


@dataclass(frozen=True)
class Fault:
    """A line fault from ``at_s`` for ``duration_s`` seconds."""

    index: int
    line: int
    at_s: float
    kind: str
    duration_s: float


@dataclass(frozen=True)
class Scenario:
    """A whole validated scenario (see the module docstring for each field)."""

    start: dt.datetime
    country: str
    lines: int
    calls: tuple
    faults: tuple = ()
    power: tuple = ()
    hat: str = "lk-4l"
    bounce_ms: float = 3
    noise_dbm0: float = -65.0
    speech_level_dbm0: float = -18.0
    seed: int = 0
    source: str = None
    config: object = None  # what parse_config made of it (a BoxConfig), or None
    sources: dict = None  # line -> board.adapter.Adapter; lines not in it: the exchange
    hat_sense: object = None  # the HAT's board.hat.HatSense: the levels its detectors handle

    def adapter(self, line):
        """The :class:`~board.adapter.Adapter` behind ``line``, or None for the exchange."""
        return (self.sources or {}).get(line)

    @property
    def start_wall_us(self):
        """``start`` as microseconds since the Unix epoch."""
        return _us((self.start - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds())


def _us(seconds):
    return int(round(seconds * 1_000_000))


def builtin_scenarios():
    """Names :func:`load_scenario` accepts besides paths (``"demo"``)."""
    here = importlib.resources.files("board") / "sim"
    return sorted(p.name[:-5] for p in here.iterdir() if p.name.endswith(".json"))


def load_scenario(path_or_name, *, parse_config=None):
    """Load and validate a scenario file, or a built-in one by name (``"demo"``).

    ``parse_config(data)`` turns the scenario's ``config`` object into the
    firmware's configuration, raising :class:`ConfigError` naming the field
    (the firmware passes its own; the simulator does not know that model).
    Without it the object is kept as parsed JSON.

    :raises ScenarioError: the file is missing, malformed or invalid
    """
    text = os.fspath(path_or_name)
    if re.fullmatch(r"[a-z0-9_-]+", text) and not os.path.exists(text):
        resource = importlib.resources.files("board") / "sim" / (text + ".json")
        if not resource.is_file():
            raise ScenarioError(
                "no such file or built-in scenario %r (built-in: %s)" % (text, ", ".join(builtin_scenarios()))
            )
        with importlib.resources.as_file(resource) as path:
            return parse_scenario(jsonpos.load(path, error=ScenarioError), parse_config)
    return parse_scenario(jsonpos.load(text, error=ScenarioError), parse_config)


def loads_scenario(text, source=None, *, toml=False, parse_config=None):
    """Validate a scenario given as text (JSON, or TOML with ``toml=True``)."""
    return parse_scenario(jsonpos.loads(text, source, error=ScenarioError, toml=toml), parse_config)


def parse_scenario(doc, parse_config=None):
    """Build a :class:`Scenario` from a parsed :class:`~board.jsonpos.Document`."""
    root = doc.root.object(
        ("start", "country", "lines", "calls"),
        (
            "faults",
            "hat",
            "bounce_ms",
            "noise_dbm0",
            "speech_level_dbm0",
            "seed",
            "config",
            "power",
            "sources",
        ),
    )
    country = root.get_str("country", choices=tuple(countries.box_countries()))
    hat_name, hat_lines, hat = _hat(root, doc.source)
    base = Scenario(
        start=_start(root.child("start")),
        country=country,
        lines=_lines(root, hat),
        calls=(),
        hat=hat_name,
        hat_sense=hat.sense,
        bounce_ms=root.get_number("bounce_ms", 3, lo=0, hi=10),
        noise_dbm0=root.get_number("noise_dbm0", -65.0, lo=-100, hi=-20),
        speech_level_dbm0=root.get_number("speech_level_dbm0", -18.0, lo=-25, hi=-10),
        seed=root.get_int("seed", 0, lo=0, hi=2**32 - 1),
        source=str(doc.source) if doc.source else None,
        config=_config(root.child("config"), parse_config, root.get_str("hat", "lk-4l"))
        if root.has("config")
        else None,
    )
    base = replace(base, sources=_sources(root, base.lines))
    calls = tuple(_call(node, base, hat) for node in root.child("calls").items())
    faults = tuple(
        _fault(node, base) for node in (root.child("faults").items() if root.has("faults") else ())
    )
    power = _power(root.child("power"), hat) if root.has("power") else ()
    scenario = replace(base, calls=calls, faults=faults, power=power)
    _check_occupancy(scenario, root)
    return scenario


def _start(node):
    value = node.value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            node.fail('must be an ISO 8601 date and time such as "2026-03-02T09:00:00Z", not %r' % node.value)
    if not isinstance(value, dt.datetime):
        node.fail('must be an ISO 8601 date and time such as "2026-03-02T09:00:00Z"')
    if value.tzinfo is None or value.utcoffset() is None:
        node.fail('needs a time zone, e.g. "Z" or "+01:00": %r' % str(node.value))
    # Every time of the run is start + at most a few weeks, in Unix microseconds.
    if not MIN_START <= value <= MAX_START:
        try:
            in_utc = "%s UTC" % value.astimezone(dt.UTC).isoformat()
        except OverflowError:
            in_utc = "past the last year a date can have, in UTC"
        node.fail(
            "must be from %d to %d in UTC, not %r (%s)"
            % (MIN_START.year, MAX_START.year - 1, str(node.value), in_utc)
        )
    return value


def _hat(root, source):
    name = root.get_str("hat", "lk-4l")
    if os.sep in name or "/" in name or name.endswith(".json"):
        if source and not os.path.isabs(name):
            name = os.path.join(os.path.dirname(os.path.abspath(source)), name)
    try:
        hat = load_hat(name)
    except HatError as exc:
        _at(root, "hat").fail("the HAT file is not usable: %s" % exc)
    return name, len(hat.lines), hat


def _lines(root, hat):
    """``lines``: 1 to the HAT's line count, the HAT named when it has fewer."""
    lines = root.get_int("lines", lo=1)
    if lines > len(hat.lines):
        root.child("lines").fail(
            "must be 1 to %d, not %d: the HAT %s has %d line%s"
            % (len(hat.lines), lines, hat.label(), len(hat.lines), "" if len(hat.lines) == 1 else "s")
        )
    return lines


def _sources(root, lines):
    """``"sources": {"2": "uk-dv-hub"}``: what each line is plugged into (default exchange)."""
    if not root.has("sources"):
        return {}
    node = root.child("sources").require()
    out = {}
    for key in node.value:
        item = node.child(key)
        if not re.fullmatch(r"[1-9][0-9]*", str(key)) or int(key) > lines:
            root.doc.fail("must be a line number from 1 to %d" % lines, item.path, at_key=True)
        name = item.as_str(
            pattern=(r"[A-Za-z0-9_./-]{1,200}", 'must be "exchange", an adapter profile name or a path')
        )
        if name == EXCHANGE:
            continue
        if ("/" in name or name.endswith(".json")) and root.doc.source and not os.path.isabs(name):
            name = os.path.join(os.path.dirname(os.path.abspath(root.doc.source)), name)
        try:
            out[int(key)] = load_adapter(name)
        except ScenarioError as exc:
            item.fail("the adapter profile is not usable: %s" % exc)
    return out


def _config(node, parse_config, hat):
    """The box configuration carried by the scenario, checked as config.json is; its
    ``hat``, if any, must be the scenario's (``hat``), the one the simulator plays."""
    node.require()
    configured = node.value.get("hat") if isinstance(node.value, dict) else None
    if isinstance(configured, str) and configured != hat:
        node.child("hat").fail(
            'the simulated board has the scenario\'s "hat" (%r), not this one: give the HAT '
            'as "hat": "%s" at the top of the scenario' % (hat, configured)
        )
    if parse_config is None:
        return node.value
    try:
        return parse_config(node.value)
    except ConfigError as exc:
        raise jsonpos.located(node.doc, exc, node.path) from None


def _call(node, sc, hat):
    direction = node.require("line", "at", "direction").get_str("direction", choices=("in", "out"))
    inbound = direction == "in"
    answer = node.get_bool("answer", True)
    common = ("extension", "polarity_on_answer", "tags")
    talking = ("talk", "speech", "hangup", "hangup_delay", "line_lost_for", "press", "keys")
    if inbound and answer:
        allowed = ("answer", "rings", "answer_delay", "caller_id") + talking + common
    elif inbound:
        allowed = ("answer", "rings", "caller_id", "tags")
    elif answer:
        allowed = ("answer", "dial") + talking + common
    else:
        allowed = ("answer", "dial", "tags")
    _only(node, ("line", "at", "direction") + allowed, answer)
    call = dict(
        index=node.path[-1],
        line=node.get_int("line", lo=1, hi=sc.lines),
        at_s=node.get_number("at", lo=0, hi=MAX_S),
        direction=direction,
        answer=answer,
        tags=_tags(node),
    )
    if inbound:
        call.update(_inbound(node, sc, call["at_s"], answer))
    else:
        if call["at_s"] == 0:
            # Off-hook as the box starts is a call already under way (the power came
            # back mid-call): its number is not dialled to the box, which never hears it.
            node.child("at").fail(
                "an outbound call must start after 0 s: a line off-hook as the box starts "
                "is taken for a call already under way, its number unknown"
            )
        if not node.has("dial"):
            node.fail('an outbound call needs "dial": {"digits": ...}')
        call["dial"] = _dial(node.child("dial"), sc, answer)
    if answer:
        call.update(_talk(node, sc))
        call["press"] = _presses(node, call["line"], call["talk_s"], hat)
        call["keys"] = _keys(node, call["talk_s"])
    return ScenarioCall(**call)


def _presses(node, line, talk_s, hat):
    if not node.has("press"):
        return ()
    out = []
    for item in node.child("press").items():
        item.object(("at", "button"))
        button = item.get_str("button", choices=tuple(BUTTONS))
        if BUTTONS[button] not in hat.line(line).pins:
            item.child("button").fail(
                'the HAT %s has no %s button on line %d ("hat": '
                '"lk-2lb" has both buttons)' % (hat.label(), button, line)
            )
        at_s = item.get_number("at", lo=0)
        if at_s + PRESS_US / 1e6 >= talk_s:
            item.child("at").fail(
                "the press (%g s) must end before the call does (talk %g s)" % (PRESS_US / 1e6, talk_s)
            )
        out.append(Press(at_s, button))
    return tuple(out)


def _keys(node, talk_s):
    if not node.has("keys"):
        return ()
    out = []
    for item in node.child("keys").items():
        item.object(("at", "digits"))
        digits = item.get_str("digits", pattern=(r"[0-9*#A-D]{1,32}", "must be 1 to 32 of 0-9 * # A B C D"))
        at_s = item.get_number("at", lo=0)
        end_s = at_s + (len(digits) * (KEY_ON_MS + KEY_OFF_MS) - KEY_OFF_MS) / 1000
        if end_s >= talk_s:
            item.child("at").fail("the keys end at %g s, after the call (talk %g s)" % (end_s, talk_s))
        out.append(Keys(at_s, digits))
    return tuple(out)


def _inbound(node, sc, at_s, answer):
    """The fields of an inbound call: rings, caller ID, answer delay."""
    out = {"rings": node.get_int("rings", 2, lo=1, hi=50)}
    adapter = sc.adapter(node.get_int("line", lo=1, hi=sc.lines))
    if node.has("caller_id"):
        out["caller_id"] = cid = _caller_id(node.child("caller_id"), sc, at_s, adapter)
        after_ring = adapter.caller_id.when == "after_first_ring" if adapter else cid.standard == "bell202"
        if after_ring and out["rings"] < 2:
            _at(node, "rings").fail(
                "this caller ID is sent after the first ring, so the call must ring at least twice"
            )
    if answer:
        silence_s = ring_silence_us(sc, adapter) / 1e6
        out["answer_delay_s"] = node.get_number("answer_delay", 0.5, lo=0)
        if out["answer_delay_s"] >= silence_s:
            node.child("answer_delay").fail(
                "must be less than %g s: by then it would have rung again; add a ring instead" % silence_s
            )
    return out


def _talk(node, sc):
    """The fields of an answered call: talk time, speech, hang-up, extension, polarity."""
    talk = node.get_number("talk", 10.0, lo=0, hi=MAX_S, lo_open=True)
    hangup = node.get_str("hangup", "local", choices=("local", "remote", "line_lost"))
    if node.has("hangup_delay") and hangup == "local":
        node.child("hangup_delay").fail('only applies to "hangup": "remote" or "line_lost"')
    if node.has("line_lost_for") and hangup != "line_lost":
        node.child("line_lost_for").fail('only applies to "hangup": "line_lost"')
    delay = lost = None
    if hangup != "local":
        delay = node.get_number("hangup_delay", 2.0, lo=0.2, hi=120, lo_open=True)
    if hangup == "line_lost":
        lost = node.get_number("line_lost_for", 90.0, lo=10, hi=600)
        if delay >= lost:
            # Off-hook when the port came back, the box would see a new call (docs/adapters.md).
            node.child("hangup_delay").fail(
                "must be less than line_lost_for (%g s): our side hangs up while the line is dead" % lost
            )
    return dict(
        talk_s=talk,
        hangup=hangup,
        hangup_delay_s=delay,
        line_lost_s=lost,
        speech=_speech(node, sc, talk),
        extension=node.get_bool("extension", False),
        polarity_on_answer=_polarity_on_answer(node, sc),
    )


def _polarity_on_answer(node, sc):
    """The call's ``polarity_on_answer``: an adapter's line reverses as its profile says."""
    reverses = node.get_bool("polarity_on_answer", False)
    adapter = sc.adapter(node.get_int("line", lo=1, hi=sc.lines))
    if reverses and adapter is not None and not adapter.answer_reversal:
        node.child("polarity_on_answer").fail(
            "the line's adapter %r does not reverse the polarity on answer; leave "
            '"polarity_on_answer" out on its lines, or use a profile with "answer_reversal": '
            "true (etsi-dtas-hub)" % adapter.id
        )
    return reverses


_CALL_FIELDS = (
    "line",
    "at",
    "direction",
    "answer",
    "rings",
    "answer_delay",
    "caller_id",
    "dial",
    "talk",
    "speech",
    "hangup",
    "hangup_delay",
    "line_lost_for",
    "extension",
    "polarity_on_answer",
    "tags",
    "press",
    "keys",
)
_NOT_FOR = {
    "dial": "an inbound call does not dial",
    "caller_id": 'an outbound call has no caller ID (its number is in "dial")',
    "rings": "an outbound call does not ring",
    "answer_delay": "an outbound call counts as answered when dialling ends",
}


def _only(node, allowed, answer):
    """Reject fields this kind of call has no use for, saying why."""
    for key in node.value:
        if key in allowed or key not in _CALL_FIELDS:
            continue  # unknown fields are reported by node.object() below
        if not answer and key not in ("dial",):
            why = 'a missed call ("answer": false) has no %s' % key
        else:
            why = _NOT_FOR.get(key, "does not apply here")
        node.doc.fail(why, node.path + (key,), at_key=True)
    node.object((), allowed)


def _at(node, key):
    return node.child(key) if node.has(key) else node


def _tags(node):
    if not node.has("tags"):
        return ()
    return tuple(t.as_str(pattern=TAG) for t in node.child("tags").items())


def _caller_id(node, sc, at_s, adapter=None):
    node.object((), ("number", "name", "datetime", "standard", "absence"))
    default = adapter.caller_id.standard if adapter else countries.country(sc.country).cid_standards[0]
    standard = node.get_str("standard", default, choices=countries.cid_standards())
    if adapter and standard != default:
        node.child("standard").fail(
            "the line's adapter %r sends %s caller ID; leave "
            '"standard" out on its lines' % (adapter.id, default)
        )
    absence = node.get_str("absence", None, choices=ABSENCE)
    number = node.get_str("number", None, pattern=(r"[0-9]{1,20}", "must be 1 to 20 digits"))
    name = node.get_str("name", None, pattern=(r"[ -~]{1,50}", "must be 1 to 50 printable ASCII characters"))
    if absence and (number or name):
        node.child("number" if number else "name").fail(
            "a withheld call (absence %r) carries no number or name" % absence
        )
    if not absence and not number:
        node.fail('needs a "number" (or an "absence": "private" / "unavailable")')
    if name and standard == "dtmf":
        node.child("name").fail("DTMF caller ID cannot carry a name")
    if standard == "dtmf":
        # DTMF caller ID sends the number alone: a date would be truth no box can log.
        if node.has("datetime"):
            node.child("datetime").fail("DTMF caller ID cannot carry a date and time")
        return CallerId(standard=standard, datetime=None, number=number, name=name, absence=absence)
    default_dt = (sc.start + dt.timedelta(seconds=at_s)).strftime("%m%d%H%M")
    when = node.get_str(
        "datetime",
        default_dt,
        pattern=(
            r"(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])([01][0-9]|2[0-3])[0-5][0-9]",
            'must be "MMDDHHMM" (month, day, hour, minute)',
        ),
    )
    if int(when[2:4]) > calendar.monthrange(2024, int(when[:2]))[1]:  # a leap year: 29 February is a day
        node.child("datetime").fail("%r: month %s has no day %s" % (when, when[:2], when[2:4]))
    return CallerId(standard=standard, datetime=when, number=number, name=name, absence=absence)


def _dial(node, sc, answer):
    # (Not an object: node.object below says so.)
    if isinstance(node.value, dict) and not node.get_bool("dial_tone", True):
        return _no_dial_tone(node, answer)
    node.object(
        ("digits",),
        ("mode", "delay", "on_ms", "off_ms", "answer_after", "ringback", "caller_speech", "dial_tone"),
    )
    mode = node.get_str("mode", "dtmf", choices=("dtmf", "pulse"))
    if mode == "pulse":
        digits = node.get_str("digits", pattern=(r"[0-9]{1,32}", "pulse dialling sends 1 to 32 digits 0-9"))
        for key in ("on_ms", "off_ms"):
            if node.has(key):
                node.doc.fail(
                    "only applies to DTMF dialling (pulse timing is fixed: 10 pulses/s)",
                    node.path + (key,),
                    at_key=True,
                )
    else:
        digits = node.get_str("digits", pattern=(r"[0-9*#A-D]{1,32}", "must be 1 to 32 of 0-9 * # A B C D"))
    answer_after_s = node.get_number("answer_after", 0.0, lo=0, hi=60)
    ringback = node.get_bool("ringback", False)
    if ringback and answer_after_s <= 0:
        node.doc.fail(
            'needs "answer_after" > 0: ringback plays until the far end answers',
            node.path + ("ringback",),
            at_key=True,
        )
    if not answer and answer_after_s <= 0:
        node.doc.fail(
            'an unanswered call needs "answer_after" > 0: the caller hangs up that long after dialling',
            node.path,
        )
    if not answer and not ringback:
        node.doc.fail(
            'an unanswered call needs "ringback": true: with no ringback tone the box takes the end '
            "of dialling for the answer, as it must on a real line, and records the call",
            node.path,
        )
    return Dial(
        caller_speech=_caller_speech(node, sc, answer_after_s),
        digits=digits,
        mode=mode,
        delay_s=node.get_number("delay", 1.5, lo=0.1, hi=30),
        on_ms=node.get_number("on_ms", 70, lo=20, hi=1000),
        off_ms=node.get_number("off_ms", 80, lo=20, hi=1000),
        answer_after_s=answer_after_s,
        ringback=ringback,
    )


def _no_dial_tone(node, answer):
    """A call out on a line that gives no dial tone: the caller hears silence for ``delay``
    and hangs up without dialling (the line's service is cut, an adapter lost its network)."""
    for key in node.value:
        if key not in ("dial_tone", "delay"):
            node.doc.fail(
                'a line with no dial tone ("dial_tone": false) dials nothing: the caller hears '
                'silence for "delay" s and hangs up; only "delay" may be given',
                node.path + (key,),
                at_key=True,
            )
    if answer:
        node.doc.fail(
            'a call with no dial tone ("dial_tone": false) needs "answer": false: nothing on such '
            "a line answers",
            node.path + ("dial_tone",),
            at_key=True,
        )
    return Dial(digits="", delay_s=node.get_number("delay", 5.0, lo=0.1, hi=30), dial_tone=False)


def _caller_speech(node, sc, answer_after_s):
    """The caller's own utterances while the far end is rung (``at`` from the end of dialling)."""
    if not node.has("caller_speech"):
        return ()
    voice = countries.country(sc.country).voice
    out = []
    for item in node.child("caller_speech").items():
        if not isinstance(item.value, dict):
            item.fail('must be an object {"at": s, "text": ...}')
        item.object(("at", "text"), ("voice", "level_dbm0"))
        at_s = item.get_number("at", lo=0)
        if at_s >= answer_after_s:
            item.child("at").fail(
                'must be less than "answer_after" (%g s): the caller speaks before the answer'
                % answer_after_s
            )
        out.append(_utterance(item, at_s, voice, sc))
    return tuple(out)


def _utterance(item, at_s, voice, sc):
    return Utterance(
        at_s,
        item.get_str("text", pattern=(r"(?s).*\S.*", "must not be empty"), max_len=5000),
        item.get_str("voice", voice, pattern=(r"[A-Za-z0-9_+-]{1,40}", "must be an espeak-ng voice name")),
        item.get_number("level_dbm0", sc.speech_level_dbm0, lo=-25, hi=-10),
    )


def _speech(node, sc, talk_s):
    if not node.has("speech"):
        return ()
    speech = node.child("speech")
    voice = countries.country(sc.country).voice
    if isinstance(speech.value, str):
        text = speech.as_str(pattern=(r"(?s).*\S.*", "must not be empty"), max_len=5000)
        if talk_s <= 0.5:
            speech.fail("a call talking only %g s has no time for speech" % talk_s)
        return (Utterance(0.5, text, voice, sc.speech_level_dbm0),)
    if not isinstance(speech.value, list):
        speech.fail('must be a string (spoken 0.5 s after the answer) or a list of {"at": s, "text": ...}')
    out = []
    for item in speech.items():
        if not isinstance(item.value, dict):
            item.fail('must be an object {"at": s, "text": ...} (or make "speech" a string)')
        item.object(("at", "text"), ("voice", "level_dbm0"))
        at_s = item.get_number("at", lo=0)
        if at_s >= talk_s:
            item.child("at").fail("must be less than the call's talk time (%g s)" % talk_s)
        out.append(
            Utterance(
                at_s,
                item.get_str("text", pattern=(r"(?s).*\S.*", "must not be empty"), max_len=5000),
                item.get_str(
                    "voice", voice, pattern=(r"[A-Za-z0-9_+-]{1,40}", "must be an espeak-ng voice name")
                ),
                item.get_number("level_dbm0", sc.speech_level_dbm0, lo=-25, hi=-10),
            )
        )
    return tuple(out)


def _fault(node, sc):
    node.object(("line", "at", "kind", "duration"))
    return Fault(
        index=node.path[-1],
        line=node.get_int("line", lo=1, hi=sc.lines),
        at_s=node.get_number("at", lo=0, hi=MAX_S),
        kind=node.get_str("kind", choices=FAULT_KINDS),
        duration_s=node.get_number("duration", lo=0, hi=MAX_S, lo_open=True),
    )


def _power(node, hat):
    """The supply's cuts and restorations: alternating, in time order, starting with a cut."""
    if hat.mcu is None:
        node.fail(
            "the HAT %s has no supervisor MCU to warn of a power cut (both shipped HATs have one)"
            % hat.label()
        )
    if hat.mcu.holdup_farads <= 0:
        node.fail(
            "the HAT %s has no hold-up capacitor: without a warning a power cut is a "
            "crash, which the simulator does not model (see the kill -9 tests)" % hat.label()
        )
    out = []
    for item in node.items():
        item.object(("at", "cut"))
        at_s = item.get_number("at", lo=0, hi=MAX_S)
        cut = item.get_bool("cut")
        if out and at_s <= out[-1].at_s:
            item.child("at").fail("must be later than the previous power change (%g s)" % out[-1].at_s)
        expected = not out[-1].cut if out else True
        if cut != expected:
            item.child("cut").fail(
                "the power is already %s: cut and restore it in turn, "
                "starting with a cut" % ("off" if cut else "on")
            )
        out.append(PowerEvent(item.path[-1], at_s, cut))
    return tuple(out)


def _check_occupancy(scenario, root):
    """Calls and faults on one line must not overlap (occupancy per the timeline rules)."""
    spans = []
    for call in scenario.calls:
        try:
            span = occupancy_us(scenario, call)
        except ScenarioError as exc:  # a caller-ID message that does not fit its slot
            root.doc.fail(exc.message, ("calls", call.index, "caller_id"))
        spans.append((call.line,) + span + (("calls", call.index),))
    for fault in scenario.faults:
        spans.append((fault.line,) + occupancy_us(scenario, fault) + (("faults", fault.index),))
    spans.sort()
    for prev, cur in zip(spans, spans[1:], strict=False):
        if prev[0] == cur[0] and cur[1] < prev[2]:
            kinds = {p[3][0]: p[3][1] for p in (prev, cur)}
            hint = ""
            if (
                set(kinds) == {"calls", "faults"}
                and scenario.faults[kinds["faults"]].kind == "no_line_voltage"
            ):
                hint = (
                    " (for a line that dies during a call, as when its hub or ATA restarts, give the call "
                    '"hangup": "line_lost")'
                )
            root.doc.fail(
                "overlaps %s on line %d, which occupies the line until %.3f s; start this one later%s"
                % (jsonpos.format_path(prev[3]), cur[0], prev[2] / 1e6, hint),
                cur[3] + ("at",),
            )
