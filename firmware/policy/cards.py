"""Card numbers kept out of everything the box stores (PCI DSS).

A payment card number (PAN) is 13 to 19 digits whose last digit is the Luhn
check digit of the others, and whose first digit is 2 to 6 (the issuer
ranges in use: Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Maestro/Discover/
UnionPay 5/6). Any run of digits keyed on a line that contains such a
number is treated as one: :func:`scrub` replaces its digits with ``X`` before
the text is stored — in the call log's number field, the audit trail, the
notes of a call. A dialled number itself starts with 0 (trunk or
international prefix) or is too short to be a card, so it is left alone (one
dialled after a prefix withholding the caller's number, ``141``, ``*67``, or after
Relay UK's ``18001``, is judged without it where it is stored: :func:`scrub_dialled`); a
digit run that cannot be told apart from a card number loses those digits,
which is the side PCI DSS asks us to err on. A card number keyed straight on
after a dialled number is masked as the line supervisor recognises it
(:func:`mask_dialled`): from the number's shortest whole length on, where the
card may begin at the earliest (a key slipped may be its first), so the number
keeps its digits (docs/pci.md). There,
13 digits or more keyed on past that length are masked whatever their Luhn
check: no number has them, and a card keyed with a digit wrong is still almost
the card. Where the number's start says nothing of its length, a run of more
digits than any number has (:data:`NUMBER_MAX`) is masked from its first digit.

Digits keyed inside a pause (a card number, a CVV) are never decoded at all
(:mod:`firmware.policy.pause`), so nothing here needs to find them.

People write card numbers in groups (``4111 1111 1111 1111``). In what the
box writes, a run of digits may have a single space between its groups; a
number in groups counts only whole groups (a window of 13 to 19 digits that
starts where a group starts and ends where one ends), so two phone numbers
side by side are not read as one card. A dash does not join groups there:
the box's key fingerprints are dash-separated hex (``lk1:3001-4238-...``).
Text a person typed (a note, a tag, a reason) is read harder
(:func:`typed_spans`, :func:`has_typed_card`): any digits (full-width ones
too), groups apart by up to three of anything but a letter or digit (spaces,
dashes, dots, slashes, underscores), and a number written against a word
(``ref x4111111111111111``), which in the box's own text would be part of a
recording id or a hash.
"""

import re
import unicodedata

PAN_MIN, PAN_MAX = 13, 19
# No number has more digits than this (E.164, its international prefix aside).
NUMBER_MAX = 15
ISSUER_FIRST = "23456"
# The most of a card number's first digits PCI DSS lets be shown (its issuer's): a card
# keyed on after a number and cut short (the dialling ended first) keeps no more.
SHOWN_FIRST = 6
MASK = "X"
# A run of digits, its groups apart by one space, not inside a word of lower-case
# hex or text (a recording id, a hash): DTMF strings use only 0-9 * # and A-D.
_DIGIT_RUN = re.compile(r"(?<![0-9a-z])[0-9]+(?: [0-9]+)*(?![0-9a-z])")
# What a person typed: any decimal digits, groups apart by up to three non-alphanumerics.
_TYPED_RUN = re.compile(r"\d+(?:[\W_]{1,3}\d+)*")
_GROUP = re.compile(r"\d+")


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

    Every window of 13 to 19 digits that starts with an issuer digit and passes
    the Luhn check counts: inside one group of digits anywhere (a card number
    keyed straight after a dialled number joins it), across groups only from a
    group's start to a group's end (the spaces between not counted).
    """
    return _merged(_windows(text, _runs))


def _merged(spans):
    """``spans`` (``[(start, end)]``) in order, those that overlap or touch made one."""
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _windows(text, runs):
    """``[(start, end)]`` of each window :func:`card_spans` counts, not merged."""
    spans = []
    for run in runs.finditer(text):
        at, digits, bounds = [], [], []
        for group in _GROUP.finditer(run.group()):
            first = len(digits)
            for j in range(run.start() + group.start(), run.start() + group.end()):
                at.append(j)
                digits.append(str(unicodedata.decimal(text[j])))
            bounds.append((first, len(digits)))
        s = "".join(digits)
        for first, end in bounds:  # inside one group: any window
            for i in range(first, end - PAN_MIN + 1):
                if s[i] not in ISSUER_FIRST:
                    continue
                for n in range(PAN_MIN, min(PAN_MAX, end - i) + 1):
                    if luhn_ok(s[i : i + n]):
                        spans.append((at[i], at[i + n - 1] + 1))
        for a in range(len(bounds)):  # across groups: whole groups only
            i = bounds[a][0]
            for b in range(a + 1, len(bounds)):
                j = bounds[b][1]
                if j - i > PAN_MAX:
                    break
                if j - i >= PAN_MIN and s[i] in ISSUER_FIRST and luhn_ok(s[i:j]):
                    spans.append((at[i], at[j - 1] + 1))
    return spans


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
        out.append(re.sub(r"\d", MASK, text[start:end]))  # what is between the groups stays
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


def scrub_dialled(number, whole=0, prefix=0):
    """:func:`scrub` for a number dialled (``number``: an outbound call's number as the
    call log, a recording's header and the live view keep it), judged as the line
    supervisor judges it (:func:`dialled_card_start`): a window that ends within the
    number's shortest whole length ``whole`` is the number's own digits, not a card (a
    number with ``141`` or ``*67`` before it has 14: ``14107945807302`` and
    ``*6712125550123`` hold a Luhn-valid window of 13 from the prefix's second key), and
    the keys of a ``prefix`` are never masked (a window that begins in them is masked
    from the prefix's end). Every other window is masked as :func:`scrub` masks it.

    Anything not a string is returned as it is.
    """
    if not isinstance(number, str):
        return number
    windows = [(max(start, prefix), end) for start, end in _windows(number, _DIGIT_RUN) if end > whole]
    return _masked(number, _merged(windows))


def dialled_card_start(number, whole=0, prefix=0, optional=0):
    """Where a card number keyed on after the dialled digits ``number`` begins, at the
    earliest (an index into ``number``), or None when it holds none (:func:`has_card`).

    ``prefix``: how many of its first keys were dialled before the number only to
    withhold or give the caller's own number (``141``, ``*67``) or to call it through a
    relay service (``18001``): :func:`firmware.calls.supervisor.dialling_prefix`. None of
    them is masked, and they are not counted in a run of digits (``*67`` joins the
    number's digits in one run). A window that begins in them still finds a card (``*``
    and a Maestro card ``6767...``
    read as ``*67`` and a number: what follows the card, its code, is withheld), masked
    from the prefix's end.

    ``whole``: how many digits the number dialled has at least, the shortest whole
    number its start allows (UK 0 and 10 digits, 0 and 9 in Brampton and under 0800:
    :func:`firmware.calls.supervisor.shortest_number`). A card keyed on after it
    begins there or later, so those digits are the number's and never masked: a window
    within them is not the card (a number with ``141`` before it has 14), and one across
    the number's last digits masks only what was keyed past them.

    The card is recognised when a window ends past ``whole`` at the digit just dialled,
    which may be before the card's own end: a window from its second or third digit, or
    one across the number's end, the card still being keyed. Past ``whole`` its first
    digit cannot be told: a key slipped may be it (a 5 keyed as a 7), a menu key may be
    before it. So the mask runs from ``whole`` on, whatever window found it (the doubt
    goes to the card, docs/pci.md). Where the number's start says nothing (``whole`` 0:
    a short code, a card with no number) the card begins at the earliest issuer digit at
    most ``PAN_MAX - 1`` digits back from the window's start in the same run of digits.

    With no such window at all, a run of 13 digits or more keyed on past ``whole`` (when
    the number's start tells it) is masked all the same, from ``whole``, and where the
    start says nothing a run of more than :data:`NUMBER_MAX` digits, from its first
    (:func:`_keyed_on_start`): a card number keyed with a digit wrong fails the Luhn
    check, and is still almost the card (docs/pci.md).

    ``optional``: how many digits past ``whole`` the number may still have (an 0800
    number, 0 and 9 or 10 digits: 1). Where the mask would run from ``whole``, those of
    them that cannot begin a card (0, 1, 7-9) are the number's, or a key slipped, no
    digit of the card, and it runs from past them: ``0800 123 4567`` keeps its last
    digit. One that may begin a card (2-6) is masked, with what follows it.
    """
    # A window that ends within the number's shortest length is the number's own digits.
    starts = [max(start, prefix) for start, end in _windows(number, _DIGIT_RUN) if end > whole]
    if not starts:
        start = _keyed_on_start(number, whole, prefix)
        return _past_optional(number, whole, optional) if whole and start == whole else start
    if whole:
        return _past_optional(number, whole, optional)
    return _issuer_back(number, min(starts), max(prefix, len(number) - PAN_MAX + 1))


def _past_optional(number, whole, optional):
    """``whole``, moved past up to ``optional`` digits after it that no card begins with
    (0, 1, 7-9): where a card keyed on after the number may begin (:func:`dialled_card_start`)."""
    while optional and number[whole : whole + 1].isdigit() and number[whole] not in ISSUER_FIRST:
        whole, optional = whole + 1, optional - 1
    return whole


def _keyed_on_start(number, whole, prefix=0):
    """Where a run of :data:`PAN_MIN` digits or more keyed on past the number's shortest
    whole length ``whole`` begins (``whole``, or the run's start if later), or None.

    No number has that many digits past its shortest length (an international one 8 at
    most), so they are keys: a card number that fails the Luhn check (a digit slipped
    is still almost the card), or anything else the doubt goes to. Which of them is its
    first cannot be told without the check: the mask runs from ``whole`` on.

    Where the number's start says nothing (``whole`` 0: a short code, ``*67`` before a
    number, a North American number without its 1) its digits cannot be told from keys
    by their place, only by their count: a run of more than :data:`NUMBER_MAX` digits is
    longer than any number, so keys were keyed on (or it is no number at all), and a
    card keyed with a digit wrong may begin at any of its digits (one keyed with no
    number, at its first): the mask runs from the run's first digit, the number's too.
    A shorter run stays (a number and a few menu keys, or a card that fails the check
    keyed on after a short code: the trade, docs/pci.md). The digits of a ``prefix``
    (:func:`dialled_card_start`) are neither counted nor masked."""
    for run in re.finditer(r"[0-9]+", number):
        if not whole:
            first = max(prefix, run.start())
            if run.end() - first > NUMBER_MAX:
                return first
            continue
        start = max(whole, run.start())
        if run.end() - start >= PAN_MIN:
            return start
    return None


def _issuer_back(number, at, floor):
    """The earliest issuer digit back from ``at`` to ``floor`` in the run of digits
    ``at`` ends, or ``at`` itself when there is none."""
    first = at
    while at > floor and number[at - 1].isdigit():
        at -= 1
        if number[at] in ISSUER_FIRST:
            first = at
    return first


def mask_dialled(number, whole=0, prefix=0, optional=0):
    """``number`` (dialled digits) with the card number it holds masked from its earliest
    start to the end (:func:`dialled_card_start`), or as it is when it holds none."""
    start = dialled_card_start(number, whole, prefix, optional)
    if start is None:
        return number
    return number[:start] + re.sub(r"\d", MASK, number[start:])


def mask_cut_short(number, whole, optional=0, spare=0):
    """``number`` (dialled digits, the dialling over) with the keys past the number's
    shortest whole length ``whole`` masked from there (past up to ``optional`` digits no
    card begins with, as :func:`dialled_card_start`) when they have more digits than the
    number may still have besides those (``spare``: none where the plan fixes its length,
    8 abroad) and the :data:`SHOWN_FIRST` digits of a card; as it is otherwise, or where
    the number's start says nothing (``whole`` 0) or a card was already masked in it.

    A card keyed on is recognised at its last digit (or at its 13th, keyed with a digit
    wrong), but the dialling may end before it: the caller hangs up, the power is cut,
    or the keys stop long enough for the call to be taken as answered. Its first digits
    were more of the number, and the call log kept them: ten digits of a 16-digit card
    leave its other six to guess, one in ten passing the Luhn check. No number has more
    than ``spare`` digits past its shortest length, so these are keys; a few of a menu
    keep their digits, more lose them, as a card's would (docs/pci.md)."""
    if not whole or MASK in number or len(number) <= whole:
        return number
    if sum(ch.isdigit() for ch in number[whole:]) <= spare + SHOWN_FIRST:
        return number
    start = _past_optional(number, whole, optional)
    return number[:start] + re.sub(r"\d", MASK, number[start:])


def mask_unfinished(number, whole=0, prefix=0):
    """``number`` (dialled digits, the dialling not over) with every digit where a card
    number keyed on may begin masked, as :func:`mask_dialled` stores it once it is
    recognised: past the number's shortest whole length ``whole``, every digit (a key
    slipped may be a card's first); where the number's start says nothing (``whole``
    0), from its first issuer digit past a ``prefix`` (:func:`dialled_card_start`). A
    card number being keyed on after the number is one only at its last digit, and a
    view of the number meanwhile shows none of its digits."""
    if whole:
        return number[:whole] + re.sub(r"\d", MASK, number[whole:])
    for at in range(prefix, len(number)):
        if number[at] in ISSUER_FIRST:
            return number[:at] + re.sub(r"\d", MASK, number[at:])
    return number


def scrub_json(value):
    """A copy of plain JSON data (dicts, lists, strings) with every string scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_json(v) for v in value]
    return value
