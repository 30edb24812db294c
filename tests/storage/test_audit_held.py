"""A SIGINT or SIGTERM that comes while an audit entry is appended is delivered once the entry
and the trail's head are written (firmware.storage.held): never half an append.

Real signals, sent by the process to itself in the middle of the append, in a process of its
own (the test's runner has handlers of its own)."""

import json
import subprocess
import sys
import textwrap

import pytest

# The append, with the signal sent as the trail's head is written (the entry committed):
# what came of it, as JSON on standard output.
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from firmware.storage import audit
    from firmware.storage.held import SignalsHeld

    signum = getattr(signal, sys.argv[2])
    if signum == signal.SIGTERM:
        def stop(*_):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, stop)
    real = audit.write_head_file

    def signalled(path, data):
        os.kill(os.getpid(), signum)
        real(path, data)

    audit.write_head_file = signalled
    log = audit.AuditLog(sys.argv[1] + "/audit.db", sys.argv[1] + "/audit.head")
    said = {"appended": False, "noted_before_the_stop": False}
    try:
        if sys.argv[3] == "held":
            with SignalsHeld():
                log.append("admin", "export", "call:1", {"file": "x.ogg"}, 1)
                said["noted_before_the_stop"] = True
        else:
            log.append("admin", "export", "call:1", {"file": "x.ogg"}, 1)
        said["appended"] = True
    except KeyboardInterrupt:
        said["stopped"] = True
    audit.write_head_file = real
    said["last"], said["head"] = list(log.last()), list(log.head() or ())
    print(json.dumps(said))
    """
)


def appended(tmp_path, signame, how="bare"):
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), signame, how], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_append_comes_after_the_entry_and_its_head(tmp_path, signame):
    said = appended(tmp_path, signame)
    # The stop still stops the process's work, once the append is whole: the entry and the
    # head that follows it, never the entry with a head that lags it.
    assert said["stopped"] and not said["appended"]
    assert said["last"][0] == 1 and said["head"] == said["last"]


def test_a_writer_that_holds_signals_notes_its_entry_before_the_stop(tmp_path):
    said = appended(tmp_path, "SIGINT", "held")
    assert said["stopped"] and said["noted_before_the_stop"] and not said["appended"]
    assert said["head"] == said["last"] and said["last"][0] == 1


BOTH = textwrap.dedent(
    """
    import json, os, signal
    from firmware.storage.held import SignalsHeld

    termed = []
    signal.signal(signal.SIGTERM, lambda *_: termed.append(True))
    stopped = False
    try:
        with SignalsHeld():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
    except KeyboardInterrupt:
        stopped = True
    print(json.dumps({"stopped": stopped, "termed": termed}))
    """
)


def test_a_sigterm_held_with_a_ctrl_c_still_reaches_its_handler():
    """Ctrl-C's handler raises as it is delivered: the SIGTERM that came with it was lost."""
    out = subprocess.run([sys.executable, "-c", BOTH], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == {"stopped": True, "termed": [True]}
