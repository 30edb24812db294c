"""Types for the command line's options (argparse), shared by its commands."""

import argparse


def port(text):
    """A TCP port for argparse: 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a port number (1 to 65535), not %r" % text) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (1 to 65535), not %r" % text)
    return value
