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
   (``number 0800* excluded by rule "helplines"``); with any include list,
   a number on none of them skips;
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

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from telephony import countries

RECORD, SKIP, PENDING = "record", "skip", "pending"


@dataclass(frozen=True)
class Decision:
    """``decision`` is "record", "skip" or "pending"; ``reason`` says why, in words;
    ``rule`` names the setting that decided (``"line"``, ``"direction"``,
    ``"numbers:helplines"``, ``"hours"``, ``"sampling"``, ``"min_duration"``,
    ``"on_demand"``); ``min_talk_s`` > 0 makes a "record" provisional."""

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
    listed = _numbers(rules.numbers, number, country)
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
    n = re.sub(r"[\s().-]", "", number or "")
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
    return n


def matches(pattern, number, country="uk"):
    """Whether ``number`` matches ``pattern`` (``*`` any digits, ``?`` one digit).

    Both sides are compared in international form, so ``+44*`` and ``0*``
    both match the UK number ``01632960123``; a national pattern also matches
    the number written as dialled (a short code, an extension).
    """
    if not number:
        return False
    candidates = {normalise(number, country), re.sub(r"\s", "", number)}
    regexes = {_regex(normalise(pattern, country)), _regex(re.sub(r"\s", "", pattern))}
    return any(r.fullmatch(c) for r in regexes for c in candidates)


def _regex(pattern):
    out = []
    for ch in pattern:
        out.append({"*": r"[0-9*#]*", "?": r"[0-9*#]"}.get(ch, re.escape(ch)))
    return re.compile("".join(out))


def _numbers(lists, number, country):
    if not lists:
        return None
    for item in lists:
        if item.action != "exclude":
            continue
        for pattern in item.patterns:
            if matches(pattern, number, country):
                return Decision(
                    SKIP, 'number %s excluded by rule "%s"' % (pattern, item.name), "numbers:" + item.name
                )
    includes = [item for item in lists if item.action == "include"]
    if not includes:
        return None
    for item in includes:
        for pattern in item.patterns:
            if matches(pattern, number, country):
                return Decision(
                    RECORD, 'number %s included by rule "%s"' % (pattern, item.name), "numbers:" + item.name
                )
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
