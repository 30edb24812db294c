"""Text a person typed, checked before it is kept: one rule for the web pages and the CLI.

:func:`control_problem` refuses what would show as nothing, cut the text or show it in
another order on a page, a PDF or a notice, and a payment card number
(:func:`card_problem`: PCI DSS, the box keeps none in any form). :func:`given_reason` is
the rule for a reason the audit trail keeps (why a recording is played, exported or
erased; how a supervisor knows calls found by date alone are the requester's): 5 to 500
characters, its spaces run together, with no control character or card number.
"""

import unicodedata

from .policy import cards

REASON_MIN = 5
REASON_MAX = 500

# Characters that turn the text after them around (right-to-left overrides and
# isolates): "Acme\u202eeciovni.exe" shows as "Acmeexe.invoice".
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_problem(text, lines=False):
    """Why ``text`` cannot be stored as typed: a control character (a NUL, an escape)
    that would show as nothing, or cut the text, on a page, a PDF or a notice, or a
    direction override that shows it in another order; a line break only where
    ``lines`` allows one; or a payment card number (:func:`card_problem`). None if
    there is none."""
    for i, ch in enumerate(text):
        if ch in _BIDI_CONTROLS:
            return (
                "Remove the direction control U+%04X (character %d): it shows the text in another order."
                % (
                    ord(ch),
                    i + 1,
                )
            )
        if unicodedata.category(ch) == "Cc" and not (lines and ch in "\r\n\t"):
            return "Remove the control character U+%04X (character %d): it cannot be shown." % (
                ord(ch),
                i + 1,
            )
    return card_problem(text)


def card_problem(text):
    """Why ``text`` (typed by a person) cannot be kept: it holds what reads as a payment
    card number (PCI DSS: the box keeps none, in any form), or None."""
    spans = cards.typed_spans(text or "")
    if not spans:
        return None
    start, end = spans[0]
    return (
        "Take out the card number (characters %d to %d): the box keeps no card numbers. "
        "Give at most the last four digits." % (start + 1, end)
    )


def given_reason(text, too_short):
    """``(reason, problem)``: ``text`` as the audit trail keeps it (its spaces run together)
    and why it cannot be kept, or None: ``too_short`` (the caller's words saying what to
    give) for fewer than 5 characters, more than 500, or a control character or card
    number (:func:`control_problem`)."""
    reason = " ".join((text or "").split())
    if len(reason) < REASON_MIN:
        return reason, too_short
    if len(reason) > REASON_MAX:
        return reason, "At most %d characters." % REASON_MAX
    return reason, control_problem(reason)
