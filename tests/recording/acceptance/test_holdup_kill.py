"""kill -9 on the power-fail path (``holdup_flush_ms``): what a crash without the warning costs.

On a HAT whose MCU warns of power cuts, the box writes audio, call states,
recordings' rows and audit entries once per ``holdup_flush_ms`` and relies on
the warning to seal the rest (docs/holdup-writes.md). A crash that gives no
warning - here SIGKILL of ``crash_driver.py`` running the LK-4L with a 10 s
interval - may then lose up to that interval of everything, and nothing older:

* the call log is intact, the start-up recovery leaves every recording
  ``complete`` or ``partial`` and ``verify`` passes;
* every partial recording exports the line's audio up to within one interval
  (and a capture period) of the kill;
* a call that ended within the interval before the kill, its end still in
  memory, is closed as ``power_loss`` at its last evidence (no later than its
  true end); its recording, sealed and committed, is ``complete``;
* every call has an end.
"""

import os

import pytest

from firmware.calls.calllog import CallLog
from firmware.clock import SimClock

from .test_crash_kill import PERIOD_US, S, kill_driver_at

pytestmark = pytest.mark.slow  # kills a real box process mid-call

HOLDUP_FLUSH_MS = 10_000
SPEED = 10
KILLS_US = (7_000_000, 9_500_000)  # the first interval's sync comes at about 10.5 s
CALLS = [
    # Ends at about 4 s: its end waits for the interval when the kill comes.
    {"line": 1, "at": 0.5, "direction": "in", "rings": 1, "talk": 3.0, "speech": [{"at": 0.2, "text": S[0]}]},
    {
        "line": 2,
        "at": 0.6,
        "direction": "out",
        "dial": {"digits": "17", "delay": 0.2},
        "talk": 14.0,
        "speech": [{"at": 0.3, "text": S[2]}, {"at": 4.0, "text": S[3]}],
    },
    {
        "line": 3,
        "at": 0.8,
        "direction": "in",
        "rings": 1,
        "talk": 14.0,
        "speech": [{"at": 0.2, "text": S[1]}],
    },
]


@pytest.mark.parametrize("kill_us", KILLS_US)
def test_kill_9_on_the_power_fail_path_loses_at_most_the_interval(lab, kill_us):
    doc = lab.scenario_doc(CALLS, hat="lk-4l", config={"holdup_flush_ms": HOLDUP_FLUSH_MS})
    path = lab.write_scenario(doc, "holdup-kill.json")
    scenario = lab.load(doc)
    lab.timeline(scenario)
    data_dir = lab.init_data_dir(lab.tmp_path / "data")
    t_last = kill_driver_at(lab, path, data_dir, kill_us, SPEED)
    t_hi_us = t_last + PERIOD_US
    # What the box does when it starts: recordings finished, then the calls left open
    # closed at their last evidence (not a clean stop: power_loss).
    store = lab.store(data_dir)
    try:
        store.recover()
    finally:
        store.close()
    calllog = CallLog(os.path.join(data_dir, "calls.db"), SimClock())
    try:
        calllog.close_open("power_loss")
    finally:
        calllog.close()
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    rows = {r["call_id"]: r for r in lab.rows(data_dir)}
    calls = {c["line"]: c for c in lab.calls(data_dir)}
    assert sorted(calls) == [1, 2, 3]
    assert {r["state"] for r in rows.values()} <= {"complete", "partial"}
    ended = calls[1]
    # The end was in the process's memory: the recovery closes the call at its last
    # evidence (its recording's end), well before the kill.
    assert ended["end_reason"] == "power_loss", ended
    assert rows[ended["id"]]["state"] == "complete"
    assert lab.clock_us(scenario, _wall(ended["ended_at"])) <= 6_000_000 < t_last
    for line in (2, 3):
        row = rows[calls[line]["id"]]
        assert row["state"] == "partial", row
        wav = str(lab.tmp_path / ("line%d.wav" % line))
        status, out, err = lab.export(data_dir, row["call_id"], wav)
        t0_us = lab.clock_us(scenario, row["started_at"])
        if status != 0:
            assert "holds no audio" in err, err
            end_us = t0_us
        else:
            end_us = t0_us + len(lab.read_wav(wav)) * 125
        loss_us = t_hi_us - end_us
        print("kill at %d ms, line %d: %d ms lost" % (t_last // 1000, line, loss_us // 1000))
        assert 0 <= loss_us <= HOLDUP_FLUSH_MS * 1000 + 2 * PERIOD_US, (line, loss_us)
    for call in calls.values():
        assert call["ended_at"] is not None and call["end_reason"] is not None, call


def _wall(iso):
    import datetime

    t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)
    return int(t.timestamp() * 1_000_000)
