"""Memory of the looping demo (`make run`): peak and steady RSS, round by round.

`linekeeper run --board sim --scenario demo --loop` runs in a child process,
at full speed (``--speed max``: the same code as ``make run``, without the
wait), with its web UI up. Each time the demo starts again the child logs a
line; the child's resident set size (VmRSS) is read from /proc then. After
:data:`ROUNDS` rounds it gets SIGTERM, and its peak (VmHWM) and how long it
took to stop are recorded.

Steady memory must not grow from round to round: ``growth_per_round_kb`` is
the slope of a least-squares line through the RSS after the rounds that
follow the first :data:`WARM_ROUNDS` (those fill bounded buffers: the
simulated board's log of its last 10,000 edges, the DSP's time anchors,
SQLite's page caches). The baseline, measured side by side, is the same child's
imports alone (``python -c "import firmware.box, web.server"``): the floor no
box can go below.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

ROUNDS = 7
ROUNDS_QUICK = 5
WARM_ROUNDS = 3
TARGET_PEAK_MB = 150


def _status(pid):
    """VmRSS and VmHWM of ``pid`` in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def _baseline_kb():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import firmware.box, web.server, board.sim.board, numpy\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout.strip())


def _demo(rounds):
    """Run the looping demo for ``rounds`` rounds; returns the measurements."""
    exe = os.path.join(os.path.dirname(sys.executable), "linekeeper")
    with tempfile.TemporaryDirectory(prefix="lk-bench-mem-") as data_dir:
        proc = subprocess.Popen(
            [
                exe,
                "-v",
                "run",
                "--board",
                "sim",
                "--scenario",
                "demo",
                "--loop",
                "--speed",
                "max",
                "--data-dir",
                data_dir,
                "--port",
                "0",
                "--https-port",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        rss_kb, t0 = [], time.monotonic()
        try:
            for line in proc.stderr:
                if "playing it again" in line:
                    rss_kb.append(_status(proc.pid)["VmRSS"])
                    if len(rss_kb) >= rounds:
                        break
            peak_kb = _status(proc.pid)["VmHWM"]
            wall_s = time.monotonic() - t0
            t_stop = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
            stop_s = time.monotonic() - t_stop
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if len(rss_kb) < rounds:
        raise RuntimeError("the demo ended after %d rounds (exit %s)" % (len(rss_kb), proc.returncode))
    return rss_kb, peak_kb, wall_s, stop_s


def _slope(values):
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / sum((i - mx) ** 2 for i in range(n))


def run(quick=False):
    rounds = ROUNDS_QUICK if quick else ROUNDS
    baseline_kb = _baseline_kb()
    rss_kb, peak_kb, wall_s, stop_s = _demo(rounds)
    steady = rss_kb[WARM_ROUNDS - 1 :]
    return {
        "rounds": rounds,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "baseline_imports_rss_mb": round(baseline_kb / 1024, 1),
        "peak_vs_baseline": round(peak_kb / baseline_kb, 2),
        "rss_after_each_round_mb": [round(v / 1024, 1) for v in rss_kb],
        "steady_rss_mb": round(steady[-1] / 1024, 1),
        "growth_per_round_kb": round(_slope(steady), 1),
        "demo_wall_s": round(wall_s, 1),
        "sigterm_to_exit_s": round(stop_s, 2),
        "targets": {"peak_rss_mb": "< %d" % TARGET_PEAK_MB, "growth_per_round_kb": "~0 (no growth)"},
    }
