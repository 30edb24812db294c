"""Start-up: from starting `linekeeper recorder` to READY, with 1 M calls in the log.

READY is what systemd waits for (``Type=notify``): the recorder sends it once
the board is started, every line supervised and the control socket open. The
bench binds its own notify socket, starts the recorder with ``NOTIFY_SOCKET``
pointing at it on a data directory whose call log holds a million calls (made
by :func:`bench.web.make_log`), and times the arrival of ``READY=1``. Side by
side: the same on an empty data directory, and the interpreter merely
importing the command (the floor any Python start-up pays).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

from firmware.recording.store import RecordingStore

from .web import make_log

TARGET_S = 3.0
RUNS = 3
SCENARIO = (
    '{"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 4, '
    '"calls": [{"line": 1, "at": 3600.0, "direction": "in", "rings": 1, "talk": 5.0}]}'
)


def _ready_s(data_dir, scenario, tmp):
    path = os.path.join(tmp, "notify-%d" % time.monotonic_ns())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(120)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "firmware.cli",
                "recorder",
                "--data-dir",
                data_dir,
                "--scenario",
                scenario,
                "--speed",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                message = sock.recv(4096).decode()
                if "READY=1" in message:
                    return time.monotonic() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _import_s():
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import firmware.cli, firmware.box, web.server"], check=True)
    return time.monotonic() - t0


def run(quick=False):
    n_calls = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="lk-bench-startup-") as tmp:
        scenario = os.path.join(tmp, "scenario.json")
        with open(scenario, "w") as f:
            f.write(SCENARIO)
        big, empty = os.path.join(tmp, "big"), os.path.join(tmp, "empty")
        os.makedirs(big, mode=0o700)
        os.makedirs(empty, mode=0o700)
        t0 = time.monotonic()
        make_log(os.path.join(big, "calls.db"), n_calls)
        RecordingStore(big).close()  # the box's tables beside the calls
        generate_s = time.monotonic() - t0
        big_s = sorted(_ready_s(big, scenario, tmp) for _ in range(RUNS))
        empty_s = sorted(_ready_s(empty, scenario, tmp) for _ in range(RUNS))
        import_s = sorted(_import_s() for _ in range(RUNS))
    return {
        "calls": n_calls,
        "generate_s": round(generate_s, 1),
        "ready_s": round(big_s[RUNS // 2], 2),
        "ready_empty_s": round(empty_s[RUNS // 2], 2),
        "import_only_s": round(import_s[RUNS // 2], 2),
        "ready_vs_empty": round(big_s[RUNS // 2] / empty_s[RUNS // 2], 2),
        "targets": {"ready_s": "< %.0f" % TARGET_S},
    }
