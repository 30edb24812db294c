"""Issue 9 acceptance: kill -9 and SIGTERM at random moments, then a restart closes every call.

:data:`TRIALS` runs of ``crash_driver.py`` on the four busy lines of
test_crash_kill's scenario, each stopped at a random simulated time (fixed
seed) by SIGKILL (a power cut) or SIGTERM (a clean stop), chosen at random.
Then:

* SIGKILL: the guarantees of test_crash_kill (database intact, verify with
  the key passes, every partial recording exports the line's audio up to
  within 1 s of the kill);
* SIGTERM: the box stopped by itself, its recordings ``complete`` and
  reaching to within 1 s of the stop, the calls open at the stop ended
  ``shutdown`` at the stop;
* the box is started again on the data dir: every call has ``ended_at`` and
  ``end_reason``; the calls the crash left open end ``power_loss`` at their
  last evidence (never after the kill), none ``shutdown``.
"""

import concurrent.futures
import os
import random
import signal
import subprocess
import sys

import pytest

from firmware.calls.calllog import iso_ms

from .test_crash_kill import CALLS, DRIVER, PERIOD_US, SPEED, WINDOW_US

TRIALS = 30
SEED = 9


@pytest.fixture(scope="module")
def stops(module_lab):
    lab = module_lab
    doc = lab.scenario_doc(CALLS)
    path = lab.write_scenario(doc, "crash.json")
    scenario = lab.load(doc)
    lab.timeline(scenario)
    rng = random.Random(SEED)
    plan = [(rng.randrange(*WINDOW_US), rng.choice((signal.SIGKILL, signal.SIGTERM))) for _ in range(TRIALS)]
    dirs = [lab.init_data_dir(lab.tmp_path / ("stop%02d" % i)) for i in range(TRIALS)]

    def one(i):
        target, sig = plan[i]
        proc = subprocess.Popen(
            [sys.executable, DRIVER, path, dirs[i], str(SPEED), lab.speech_cache], stdout=subprocess.PIPE
        )
        t_last = None
        for line in proc.stdout:
            if line.strip().isdigit():
                t_last = int(line)
                if t_last >= target:
                    os.kill(proc.pid, sig)
                    break
        for line in proc.stdout:
            if line.strip().isdigit():
                t_last = int(line)
        status = proc.wait(timeout=60)
        proc.stdout.close()
        assert status == (-signal.SIGKILL if sig == signal.SIGKILL else 0), (i, status)
        return i, sig, dirs[i], t_last

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(TRIALS)))
    return lab, scenario, results


@pytest.mark.slow
def test_every_call_is_closed_after_a_kill_or_a_stop_with_the_right_reason(stops):
    lab, scenario, results = stops
    losses = {signal.SIGKILL: [], signal.SIGTERM: []}
    reasons = {"power_loss": 0, "shutdown": 0}
    for i, sig, data_dir, t_last in results:
        what = "trial %d (%s)" % (i, signal.Signals(sig).name)
        kill_wall = iso_ms(scenario.start_wall_us + t_last + PERIOD_US)
        if sig == signal.SIGKILL:
            found = lab.check_after_crash(data_dir, scenario, t_last, t_last + PERIOD_US, what)
            losses[sig] += found["loss_us"]
            open_ids = {c["id"] for c in lab.calls(data_dir) if c["ended_at"] is None}
        else:
            calls = lab.calls(data_dir)
            assert all(c["ended_at"] and c["end_reason"] for c in calls), (what, calls)
            status, out, err = lab.verify(data_dir)
            assert status == 0, (what, out, err)
            rows = lab.rows(data_dir)
            assert {r["state"] for r in rows} <= {"complete"}, (what, rows)
            stopped = [c for c in calls if c["end_reason"] == "shutdown"]
            for call in stopped:
                assert call["ended_at"] <= kill_wall, (what, call)
            for row in rows:
                call = next(c for c in calls if c["id"] == row["call_id"])
                if call["end_reason"] == "shutdown":
                    end_us = row["started_at"] - scenario.start_wall_us + row["duration_s"] * 1e6
                    loss_us = t_last + PERIOD_US - end_us
                    assert loss_us <= 1_000_000, (what, row, loss_us)
                    losses[sig].append(loss_us)
            open_ids = set()
        before = {c["id"]: c for c in lab.calls(data_dir)}
        lab.run(lab.load(lab.scenario_doc([])), data_dir)  # the box starts again
        after = lab.calls(data_dir)
        assert len(after) == len(before), what
        for call in after:
            assert call["ended_at"] and call["end_reason"], (what, call)
            if call["id"] in open_ids:
                assert call["end_reason"] == "power_loss", (what, call)
                assert call["ended_at"] <= kill_wall, (what, call, kill_wall)
            else:
                assert call == before[call["id"]], (what, call)
            assert call["end_reason"] != ("shutdown" if sig == signal.SIGKILL else "power_loss")
            reasons[call["end_reason"]] = reasons.get(call["end_reason"], 0) + 1
        status, out, err = lab.verify(data_dir)
        assert status == 0, (what, out, err)
    all_losses = losses[signal.SIGKILL] + losses[signal.SIGTERM]
    print(
        "%d trials (%d kill -9, %d SIGTERM): end reasons %s; audio lost before the stop "
        "%d..%d ms"
        % (
            len(results),
            sum(r[1] == signal.SIGKILL for r in results),
            sum(r[1] == signal.SIGTERM for r in results),
            reasons,
            min(all_losses) // 1000,
            max(all_losses) // 1000,
        )
    )
    assert reasons["power_loss"] and reasons["shutdown"]
