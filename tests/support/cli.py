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


def export_args(data_dir, call_id, out, password_file, reason="a test export of the call"):
    """The arguments of ``linekeeper export`` of ``call_id`` to ``out``, with its reason."""
    return ("export", call_id, "--data-dir", data_dir, "--password-file", password_file,
            "--reason", reason, "--out", out)  # fmt: skip
