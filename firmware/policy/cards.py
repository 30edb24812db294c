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
"""

import re

PAN_MIN, PAN_MAX = 13, 19
ISSUER_FIRST = "23456"
MASK = "X"
# A run of digits not inside a word of lower-case hex or text (a recording id, a
# hash): DTMF strings use only 0-9 * # and A-D.
_DIGIT_RUN = re.compile(r"(?<![0-9a-z])[0-9]{%d,}(?![0-9a-z])" % PAN_MIN)


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


def card_spans(text):
    """``[(start, end)]`` of every card-number-like run of digits in ``text``, merged.

    Every window of 13 to 19 digits (inside a longer run too: a card number
    keyed straight after a dialled number joins it) that starts with an
    issuer digit and passes the Luhn check counts.
    """
    spans = []
    for run in _DIGIT_RUN.finditer(text):
        s = run.group()
        for i in range(len(s) - PAN_MIN + 1):
            if s[i] not in ISSUER_FIRST:
                continue
            for n in range(PAN_MIN, min(PAN_MAX, len(s) - i) + 1):
                if luhn_ok(s[i : i + n]):
                    spans.append((run.start() + i, run.start() + i + n))
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def has_card(text):
    """Whether ``text`` holds anything :func:`scrub` would mask."""
    return isinstance(text, str) and bool(card_spans(text))


def scrub(text):
    """``text`` with the digits of every card-number-like run replaced by ``X``.

    Anything not a string is returned as it is.
    """
    if not isinstance(text, str):
        return text
    spans = card_spans(text)
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(MASK * (end - start))
        last = end
    out.append(text[last:])
    return "".join(out)


def scrub_json(value):
    """A copy of plain JSON data (dicts, lists, strings) with every string scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_json(v) for v in value]
    return value
