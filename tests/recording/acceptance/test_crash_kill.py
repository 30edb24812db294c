"""Issue 4 acceptance: kill -9 of the recorder at random moments during calls.

Each of :data:`KILLS` runs ``crash_driver.py`` - the box as ``linekeeper sim``
opens it, on 20 ms capture periods, paced at :data:`SPEED` times real time -
on a scenario of overlapping calls on four lines, and kills it with SIGKILL
once it reports a randomly chosen simulated time (fixed seed). Then:

* the call log opens and passes SQLite's integrity check;
* the recovery sweep the box runs at start (:meth:`RecordingStore.recover`)
  leaves every recording ``complete`` or ``partial``, none ``recording``;
* ``linekeeper verify --password-file`` passes;
* every partial recording exports, its audio is the line's audio (checked
  against the simulated source) and it reaches to within 1 s of the kill.

Error budget of "within 1 s of the kill". The driver reports after each
capture period, so the kill fell in ``[t_last, t_last + 20 ms]`` (``t_last``:
the last report read); the check uses the later end. The recorder's own
bound, with 960 ms chunks (16 Opus frames of 60 ms, the most that fit in
``flush_ms`` = 1000) written when their last sample arrives: at most 960 ms
+ one period (20 ms) + the decoder's look-ahead (6.5 ms, never decodable
from a prefix) = 986.5 ms. One moment is outside any bound: between a call's
start being detected and its first chunk reaching the card (a few ms of
real time: the intent row, creating the file, the first sync), the kill
leaves an inbound recording with no audio - recovery makes it ``partial``,
0 s - while its pre-roll was already a second old: for an empty inbound
recording the bound is 1 s + two periods. (An outbound recording starts at
off-hook with no pre-roll: until its first 960 ms chunk it is empty, within
the 1 s like any other.)

Since issue 20 the box's recorder holds each line's audio back
``RECORDER_DELAY_MS`` before encoding it (so a key can still be masked); its
chunks are shorter by as much (``recorder_flush_ms``), so the bound stays 1 s.
"""

import concurrent.futures
import os
import random
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # kills a real box process mid-call

KILLS = 20
PERIOD_US = 20_000  # crash_driver.py's capture period
SPEED = 10
SEED = int(os.environ.get("LK_KILL_SEED", "4"))  # fixed; the variable explores others
DRIVER = os.path.join(os.path.dirname(__file__), "crash_driver.py")

S = [
    "Good morning, thank you for calling.",
    "I would like to check my order, please.",
    "Could you give me the order number?",
    "It is four five six, seven eight nine.",
    "Thank you, it was sent yesterday.",
    "Goodbye, and thank you.",
]
CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "in",
        "rings": 1,
        "talk": 7.0,
        "speech": [{"at": 0.2, "text": S[0]}, {"at": 3.0, "text": S[1]}],
    },
    {
        "line": 2,
        "at": 0.4,
        "direction": "out",
        "dial": {"digits": "17", "delay": 0.2},
        "talk": 6.0,
        "speech": [{"at": 0.3, "text": S[2]}, {"at": 3.2, "text": S[3]}],
    },
    {
        "line": 3,
        "at": 1.5,
        "direction": "in",
        "rings": 1,
        "talk": 6.5,
        "hangup": "remote",
        "hangup_delay": 0.5,
        "speech": [{"at": 0.1, "text": S[4]}, {"at": 3.5, "text": S[5]}],
    },
    {
        "line": 4,
        "at": 2.0,
        "direction": "out",
        "dial": {"digits": "7", "delay": 0.3},
        "talk": 5.0,
        "speech": [{"at": 0.5, "text": S[1]}],
    },
    {"line": 2, "at": 8.0, "direction": "in", "rings": 1, "talk": 4.0, "speech": [{"at": 0.2, "text": S[3]}]},
    {
        "line": 1,
        "at": 10.0,
        "direction": "out",
        "dial": {"digits": "9", "delay": 0.2},
        "talk": 3.0,
        "speech": [{"at": 0.4, "text": S[0]}],
    },
]
WINDOW_US = (800_000, 13_200_000)


def kill_driver_at(lab, path, data_dir, target_us, speed):
    """Run the driver on scenario file ``path``, SIGKILL it once it reports clock time
    ``target_us``; returns the last clock time (µs) it reported before it died."""
    proc = subprocess.Popen(
        [sys.executable, DRIVER, path, data_dir, str(speed), lab.speech_cache], stdout=subprocess.PIPE
    )
    t_last = None
    for line in proc.stdout:
        if line.strip().isdigit():
            t_last = int(line)
            if t_last >= target_us:
                os.kill(proc.pid, signal.SIGKILL)
                break
    for line in proc.stdout:  # whatever it wrote before it died
        if line.strip().isdigit():
            t_last = int(line)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the driver ended before the kill"
    proc.stdout.close()
    return t_last


@pytest.fixture(scope="module")
def crashes(module_lab):
    """Run the kills; returns ``[(kill, data dir, t_last_us)]``."""
    lab = module_lab
    doc = lab.scenario_doc(CALLS)
    path = lab.write_scenario(doc, "crash.json")
    scenario = lab.load(doc)
    lab.timeline(scenario)  # speech into the shared cache, before any child runs
    rng = random.Random(SEED)
    targets = [rng.randrange(*WINDOW_US) for _ in range(KILLS)]
    dirs = [lab.init_data_dir(lab.tmp_path / ("kill%02d" % kill)) for kill in range(KILLS)]

    def one(kill):
        return kill, dirs[kill], kill_driver_at(lab, path, dirs[kill], targets[kill], SPEED)

    # Two at a time: each child is busy only part of the time it is paced over.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(KILLS)))
    return lab, scenario, results


def test_kill_9_during_calls_loses_at_most_the_last_second(crashes):
    lab, scenario, results = crashes
    losses, empty = [], 0
    for kill, data_dir, t_last in results:
        found = lab.check_after_crash(data_dir, scenario, t_last, t_last + PERIOD_US, "kill %d" % kill)
        losses += found["loss_us"]
        empty += found["empty"]
    print(
        "kill -9: %d kills, %d partial recordings (%d still empty), audio lost before the "
        "kill %d..%d ms" % (len(results), len(losses), empty, min(losses) // 1000, max(losses) // 1000)
    )
    assert len(losses) >= KILLS
