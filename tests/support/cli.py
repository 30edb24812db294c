"""The `linekeeper` command run in the test's own process."""

import contextlib
import io


def run_linekeeper(*args):
    """``(exit status, stdout, stderr)`` of ``linekeeper ARGS`` run in this process
    (argparse's exits are a status too)."""
    from firmware.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()
