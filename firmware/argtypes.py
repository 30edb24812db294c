"""Types for the command line's options (argparse), shared by its commands."""

import argparse

# Every command's --data-dir: one wording wherever it is asked for.
DATA_DIR_HELP = "where the box keeps its data (its recordings, keys, call log and audit trail)"


def port(text):
    """A TCP port for argparse: 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a port number (1 to 65535), not %r" % text) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (1 to 65535), not %r" % text)
    return value


MAX_NUMBER = 32  # digits of a searched number, as the box's own search and the viewer's


def searched_number(text):
    """A phone number to search for, for argparse: digits 0-9 (and + # *, as dialled), at
    most 32, written with any spaces and - ( ) . / a person types; returned as typed.
    ``str.isdigit`` is not the test: it also takes other scripts' digits and superscripts,
    which no call's number holds, so the search said no call matched."""
    typed = "".join(c for c in text if not (c.isspace() or c in "().-/"))
    if not typed or any(c not in "0123456789+#*" for c in typed):
        raise argparse.ArgumentTypeError(
            "must be a number in digits 0-9 (and spaces, + # * - ( )), not %r" % text[:40]
        )
    if len(typed) > MAX_NUMBER:
        raise argparse.ArgumentTypeError(
            "must be at most %d digits (and + # *), not %d" % (MAX_NUMBER, len(typed))
        )
    return text
