"""``linekeeper run``'s two children (firmware/runner.py)."""

import sys
import threading

from firmware import runner


def test_a_child_failing_with_a_usage_error_after_a_slow_start_stops_the_run(monkeypatch, capsys):
    """A recorder whose start (Python importing the firmware) took over 5 s on a loaded
    machine and then failed with its one-line error (exit 2) was started again, its
    error said twice, instead of the run stopping with it."""
    slow_failure = [sys.executable, "-c", "import time, sys; time.sleep(6); sys.exit(2)"]
    waits = [sys.executable, "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(runner, "commands", lambda args: (slow_failure, waits))
    stopping = threading.Event()
    timer = threading.Timer(20, stopping.set)  # a run that went on: stopped, to fail
    timer.start()
    try:
        assert runner.run_box(None, stopping=stopping) == 2
    finally:
        timer.cancel()
    assert "starting it again" not in capsys.readouterr().err
