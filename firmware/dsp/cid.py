"""Caller-ID message parsing: FSK (SDMF/MDMF) bytes and DTMF digit strings.

Pure Python, no signal processing.  Parsing is strict on purpose: a message
whose checksum happens to be right but whose structure is impossible
(parameters not tiling the message, a date that is not a date, letters in a
number) raises :class:`CidStructureError`, so noise can never turn into a
wrong number.  Sources: ETSI EN 300 659-3, BT SIN 227/242, Bellcore GR-30-CORE.
"""

from dataclasses import dataclass

from firmware.errors import LinekeeperError

NUMBER_CHARS = frozenset("0123456789*#+")
ABSENCE_CODES = {"P": "private", "O": "unavailable"}

# MDMF parameter types (ETSI / Bellcore agree on these)
P_DATETIME, P_NUMBER, P_DIALLED, P_ABSENCE, P_NAME, P_NAME_ABSENCE = 0x01, 0x02, 0x03, 0x04, 0x07, 0x08
P_VISUAL_INDICATOR = 0x0B


class CidStructureError(LinekeeperError, ValueError):
    """A caller-ID message that cannot be right (the reason is the message)."""


@dataclass(frozen=True)
class CidInfo:
    """What a caller-ID message said.  Absent fields are ``None``."""

    number: str = None
    name: str = None
    datetime: str = None
    absence: str = None  # "private" or "unavailable"
    message_waiting: bool = None


def parse_fsk(message):
    """Parse an FSK caller-ID message (type, length, body; checksum already removed).

    Returns a :class:`CidInfo`; raises :class:`CidStructureError`.
    """
    message = bytes(message)
    if len(message) < 2 or message[1] != len(message) - 2:
        raise CidStructureError("length byte does not match the message")
    kind, body = message[0], message[2:]
    if kind == 0x04:
        return _parse_sdmf(body)
    if kind == 0x06:
        if body in (b"\x42\x42\x42", b"\x6f\x6f\x6f"):
            return CidInfo(message_waiting=body[0] == 0x42)
        raise CidStructureError("bad SDMF message-waiting body")
    if kind in (0x80, 0x82):
        params = _split_params(body)
        if kind == 0x82:
            flag = params.get(P_VISUAL_INDICATOR)
            if flag is None or len(flag) != 1 or flag[0] not in (0x00, 0xFF):
                raise CidStructureError("message-waiting message without a valid indicator")
            return CidInfo(message_waiting=flag[0] == 0xFF)
        return _parse_mdmf(params)
    raise CidStructureError("unknown message type 0x%02x" % kind)


def _parse_sdmf(body):
    if len(body) < 9:
        raise CidStructureError("SDMF message too short")
    when = _datetime(body[:8])
    rest = body[8:].decode("latin-1")
    if rest in ABSENCE_CODES:
        return CidInfo(datetime=when, absence=ABSENCE_CODES[rest])
    return CidInfo(number=_number(body[8:]), datetime=when)


def _split_params(body):
    params, pos = {}, 0
    while pos < len(body):
        if pos + 2 > len(body):
            raise CidStructureError("truncated parameter header")
        kind, size = body[pos], body[pos + 1]
        value = body[pos + 2 : pos + 2 + size]
        if size == 0 or len(value) != size:
            raise CidStructureError("parameter 0x%02x overruns the message" % kind)
        if kind in params:
            raise CidStructureError("parameter 0x%02x repeated" % kind)
        params[kind] = value
        pos += 2 + size
    return params


def _parse_mdmf(params):
    number = name = when = absence = None
    if P_DATETIME in params:
        when = _datetime(params[P_DATETIME])
    if P_NUMBER in params:
        number = _number(params[P_NUMBER])
    if P_DIALLED in params:
        _number(params[P_DIALLED])
    if P_ABSENCE in params:
        absence = _absence(params[P_ABSENCE])
        if number is not None:
            raise CidStructureError("both a number and a reason for its absence")
    if P_NAME in params:
        name = _name(params[P_NAME])
    if P_NAME_ABSENCE in params:
        name_absence = _absence(params[P_NAME_ABSENCE])
        if name is not None:
            raise CidStructureError("both a name and a reason for its absence")
        if number is None and absence is None:
            absence = name_absence
    if number is None and absence is None and name is None:
        raise CidStructureError("caller-ID message with neither number, name nor absence")
    return CidInfo(number=number, name=name, datetime=when, absence=absence)


def _datetime(raw):
    text = raw.decode("latin-1")
    if len(text) != 8 or not text.isdigit():
        raise CidStructureError("date/time is not MMDDHHMM")
    month, day, hour, minute = (int(text[i : i + 2]) for i in (0, 2, 4, 6))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59):
        raise CidStructureError("date/time out of range")
    return text


def _number(raw):
    text = raw.decode("latin-1")
    if not 1 <= len(text) <= 20 or not set(text) <= NUMBER_CHARS:
        raise CidStructureError("number is not a phone number")
    return text


def _name(raw):
    text = raw.decode("latin-1")
    if not 1 <= len(text) <= 50 or any(not (0x20 <= ord(c) < 0x7F) for c in text):
        raise CidStructureError("name is not printable")
    return text


def _absence(raw):
    text = raw.decode("latin-1")
    if text not in ABSENCE_CODES:
        raise CidStructureError("unknown reason for absence %r" % text)
    return ABSENCE_CODES[text]


# ------------------------------------------------------------------ DTMF

DTMF_TERMINATORS = "C#"
DTMF_ABSENCE = {"00": "unavailable", "0": "unavailable", "10": "private", "01": "private", "1": "private"}


def looks_like_dtmf_cid(digits):
    """Whether a DTMF digit string could be the start of a caller-ID message."""
    return bool(digits) and (digits[0] in "ABD" or digits[0].isdigit())


def parse_dtmf(digits):
    """Parse a complete DTMF caller-ID message, terminator included.

    Formats: ``A<number>C``, ``A<number>#``, ``D<number>C`` (Taiwan, Kuwait),
    ``<number>#``; absence codes ``B00``/``D00``/``00`` (unavailable) and
    ``B10``/``D01``/``D1``/``01`` (private), e.g. ``B10C``, ``D01#``, ``01#``.
    In C-terminated messages with an ``A`` field, ``D`` is a redirecting
    number (ignored) and ``B`` may flag the number as private (both kept).  Returns :class:`CidInfo`; raises
    :class:`CidStructureError`.
    """
    if len(digits) < 2 or digits[-1] not in DTMF_TERMINATORS:
        raise CidStructureError("DTMF caller ID must end in C or #")
    body = digits[:-1]
    fields = {}
    key, value = ("", "")
    for ch in body:
        if ch.isdigit():
            value += ch
            continue
        if ch not in "ABD":
            raise CidStructureError("unexpected DTMF %r in caller ID" % ch)
        if key or value:
            _add_field(fields, key, value)
        key, value = ch, ""
    _add_field(fields, key, value)
    if "" in fields and len(fields) > 1:
        raise CidStructureError("digits before the first DTMF caller-ID field")
    number = absence = None
    for key, value in fields.items():
        if key == "A" or (key in ("", "D") and len(value) > 2 and "A" not in fields):
            number = value
        elif key == "B" or (key in ("", "D") and len(value) <= 2):
            absence = DTMF_ABSENCE.get(value, "unavailable")
        # else: D with an A field is a redirecting number; not recorded
    if number is None and absence is None:
        raise CidStructureError("DTMF caller ID without a number or absence code")
    if number is not None and len(number) < 3:
        raise CidStructureError("number too short")
    return CidInfo(number=number, absence=absence)


def _add_field(fields, key, value):
    if not value:
        raise CidStructureError("empty DTMF caller-ID field %r" % key)
    if key in fields:
        raise CidStructureError("DTMF caller-ID field %r repeated" % key)
    if len(value) > 20:
        raise CidStructureError("DTMF caller-ID field too long")
    fields[key] = value
