"""``linekeeper run``: the whole box, recorder and web UI, as two processes in one command.

On the box, systemd runs the two services (``linekeeper recorder`` and
``linekeeper web``). For ``make run`` and a developer's terminal, this starts
the same two commands as child processes, restarts either one that dies (the
other goes on: a web UI that crashes never stops a recording), and stops both,
the web UI first, on SIGINT or SIGTERM. A child that fails at once with a
usage or configuration error (exit 2) stops the whole run with that error:
starting it again would only fail again.
"""

import signal
import subprocess
import sys
import time

# A child that exits within this of its start failed "at once". Its start is mostly
# Python importing the firmware: on a loaded two-core machine that alone took over
# 5 s, and a recorder refused a read-only card was restarted instead of the run
# stopping with its one line.
QUICK_FAILURE_S = 30.0
STOP_TIMEOUT_S = 15.0


class Child:
    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.proc = None
        self.started = None
        self.restarts = 0
        self.backoff_s = 1.0

    def start(self):
        self.proc = subprocess.Popen(self.argv)
        self.started = time.monotonic()

    def exited(self):
        return self.proc is not None and self.proc.poll() is not None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def commands(args):
    """The ``recorder`` and ``web`` command lines for ``run``'s arguments."""
    base = [sys.executable, "-m", "firmware.cli"] + (["-v"] if args.verbose else [])
    recorder = base + [
        "recorder",
        "--data-dir",
        args.data_dir,
        "--scenario",
        args.scenario,
        "--speed",
        "max" if args.speed is None else repr(args.speed),
    ]
    if args.loop:
        recorder.append("--loop")
    if args.board:
        recorder += ["--board", args.board]
    web = base + [
        "web",
        "--data-dir",
        args.data_dir,
        "--port",
        str(args.port),
        "--https-port",
        str(args.https_port),
    ]
    if args.host:
        web += ["--host", args.host]
    if getattr(args, "name", None):
        web += ["--name", args.name]
    return recorder, web


def run_box(args, stopping=None):
    """Run both processes until SIGINT/SIGTERM (or ``stopping`` is set); the exit status."""
    if stopping is None:
        from .cli import _on_signals

        stopping = _on_signals(lambda: None)
    recorder_argv, web_argv = commands(args)
    children = [Child("recorder", recorder_argv), Child("web UI", web_argv)]
    status = 0
    try:
        for child in children:
            child.start()
        while not stopping.wait(0.2):
            for child in children:
                if not child.exited():
                    continue
                code = child.proc.returncode
                if code == 2 and time.monotonic() - child.started < QUICK_FAILURE_S:
                    return 2  # its own message said what was wrong
                print(
                    "linekeeper: the %s stopped (exit status %s); starting it again in %.0f s"
                    % (child.name, code, child.backoff_s),
                    file=sys.stderr,
                    flush=True,
                )
                if stopping.wait(child.backoff_s):
                    break
                quick = time.monotonic() - child.started < QUICK_FAILURE_S
                child.backoff_s = min(30.0, child.backoff_s * 2) if quick else 1.0
                child.restarts += 1
                child.start()
    finally:
        for child in reversed(children):  # the web UI first, then the recorder
            child.stop()
    return status
