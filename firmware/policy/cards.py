"""Card numbers kept out of everything the box stores (PCI DSS).

A payment card number (PAN) is 13 to 19 digits whose last digit is the Luhn
check digit of the others, and whose first digit is 2 to 6 (the issuer
ranges in use: Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Maestro/Discover/
UnionPay 5/6). Any run of digits keyed on a line that contains such a
number is treated as one: :func:`scrub` replaces its digits with ``X`` before
the text is stored — in the call log's number field, the audit trail, the
notes of a call. A dialled number itself starts with 0 (trunk or
international prefix) or is too short to be a card, so it is left alone; a
digit run that cannot be told apart from a card number loses those digits,
which is the side PCI DSS asks us to err on.

Digits keyed inside a pause (a card number, a CVV) are never decoded at all
(:mod:`firmware.policy.pause`), so nothing here needs to find them.

People write card numbers in groups (``4111 1111 1111 1111``,
``4111-1111-1111-1111``): a run of digits may have a single space or dash
between its groups, here as in what the box writes. Text a person typed
(a note, a tag, a reason) is read harder still (:func:`typed_spans`,
:func:`has_typed_card`): a dot between groups counts too, and so does a
number written against a word (``ref x4111111111111111``), which in the
box's own text would be part of a recording id or a hash.
"""

import re

PAN_MIN, PAN_MAX = 13, 19
ISSUER_FIRST = "23456"
MASK = "X"
# A run of digits, its groups apart by at most one space or dash, not inside a word
# of lower-case hex or text (a recording id, a hash): DTMF strings use only 0-9 * #
# and A-D.
_DIGIT_RUN = re.compile(r"(?<![0-9a-z])[0-9]+(?:[ -][0-9]+)*(?![0-9a-z])")
# What a person typed: groups apart by one space, dash or dot, against anything.
_TYPED_RUN = re.compile(r"[0-9]+(?:[ .-][0-9]+)*")


def luhn_ok(digits):
    """Whether the string of decimal ``digits`` passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_spans(text, _runs=_DIGIT_RUN):
    """``[(start, end)]`` of every card-number-like run of digits in ``text``, merged.

    Every window of 13 to 19 digits (inside a longer run too: a card number
    keyed straight after a dialled number joins it; the spaces or dashes
    between a run's groups not counted) that starts with an issuer digit and
    passes the Luhn check counts.
    """
    spans = []
    for run in _runs.finditer(text):
        at = [run.start() + j for j, ch in enumerate(run.group()) if "0" <= ch <= "9"]
        s = "".join(text[j] for j in at)
        for i in range(len(s) - PAN_MIN + 1):
            if s[i] not in ISSUER_FIRST:
                continue
            for n in range(PAN_MIN, min(PAN_MAX, len(s) - i) + 1):
                if luhn_ok(s[i : i + n]):
                    spans.append((at[i], at[i + n - 1] + 1))
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def typed_spans(text):
    """:func:`card_spans` of text a person typed: groups apart by a dot too, and a
    number against a word (``x4111111111111111``) found as well."""
    return card_spans(text, _TYPED_RUN)


def has_card(text):
    """Whether ``text`` holds anything :func:`scrub` would mask."""
    return isinstance(text, str) and bool(card_spans(text))


def has_typed_card(text):
    """Whether ``text`` (typed by a person) holds anything :func:`scrub_typed` would mask."""
    return isinstance(text, str) and bool(typed_spans(text))


def _masked(text, spans):
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(re.sub("[0-9]", MASK, text[start:end]))  # the groups' spaces stay
        last = end
    out.append(text[last:])
    return "".join(out)


def scrub(text):
    """``text`` with the digits of every card-number-like run replaced by ``X``.

    Anything not a string is returned as it is.
    """
    if not isinstance(text, str):
        return text
    return _masked(text, card_spans(text))


def scrub_typed(text):
    """:func:`scrub` for text a person typed (:func:`typed_spans`)."""
    if not isinstance(text, str):
        return text
    return _masked(text, typed_spans(text))


def scrub_json(value):
    """A copy of plain JSON data (dicts, lists, strings) with every string scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_json(v) for v in value]
    return value
