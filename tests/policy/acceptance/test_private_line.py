"""Issue 6 acceptance: a private line leaves no audio anywhere in the data directory.

A day of calls on line 3 (private: mode "never") beside recorded lines 1 and
2, every call with speech of its own. Afterwards:

* the call log has every line-3 call, each decided "skip" because the line is
  private, and none has a recording row;
* no recording file's header names line 3;
* no file under the data directory — databases, their WAL files, recordings,
  keys, announcements — holds any stretch of line 3's audio as the box
  captured it (raw 16-bit PCM, 4 ms windows every 250 ms of every line-3 call,
  pre-roll included);
* every recording, decrypted and decoded, carries its own line's audio
  (correlation with what was on that line) and none of line 3's, which was
  talking at the same time.
"""

import os

import numpy as np
import pytest

from firmware.recording.segment import inspect

SECRET = [
    "The merger with Hawthorne closes on Friday at noon.",
    "Tell nobody that the Nightingale project is cancelled.",
    "My own doctor says the results came back clear.",
    "The safe combination is eleven, forty, twenty two.",
]
PUBLIC = [
    "Good morning, thank you for calling the shop.",
    "Your order will be delivered on Tuesday.",
    "Can I take a card payment for the deposit?",
]


def day(lab):
    calls = []
    for k in range(8):  # 09:00 to 16:00, one an hour
        at = 60.0 + k * 3600.0
        speech = [{"at": 0.6, "text": SECRET[k % 4]}]
        if k == 5:
            calls.append({"line": 3, "at": at, "direction": "in", "rings": 3, "answer": False})
        elif k % 2:
            calls.append(
                {
                    "line": 3,
                    "at": at,
                    "direction": "out",
                    "talk": 9.0,
                    "dial": {"digits": "0207946%04d" % k},
                    "speech": speech,
                }
            )
        else:
            calls.append(
                {
                    "line": 3,
                    "at": at,
                    "direction": "in",
                    "rings": 1,
                    "talk": 9.0,
                    "caller_id": {"number": "0163296%04d" % k},
                    "speech": speech,
                }
            )
    for k in range(4):  # beside line 3's inbound calls, talking at the same time
        calls.append(
            {
                "line": 1 + k % 2,
                "at": 60.0 + k * 7200.0,
                "direction": "in",
                "rings": 1,
                "talk": 9.0,
                "caller_id": {"number": "0118496%04d" % k},
                "speech": [{"at": 0.6, "text": PUBLIC[k % 3]}],
            }
        )
    config = lab.policy(rules={"lines": [{"line": 3, "mode": "never"}]})
    return lab.scenario(calls, config=config)


@pytest.fixture(scope="module")
def private_day(module_lab):
    lab = module_lab
    doc = day(lab)
    data_dir, calls = lab.sim(doc)
    return lab, doc, data_dir, calls


def test_the_call_log_has_every_private_call_and_no_recording_of_them(private_day):
    lab, doc, data_dir, calls = private_day
    assert max(c["at"] for c in doc["calls"]) > 7 * 3600  # a working day
    line3 = [c for c in calls if c["line"] == 3]
    assert len(line3) == 8
    assert {(c["policy_decision"], c["policy_reason"]) for c in line3} == {("skip", "line 3 is private")}
    assert all(c["recording"] is None and c["consent"] is None for c in line3)
    others = [c for c in calls if c["line"] != 3]
    assert [c["policy_decision"] for c in others] == ["record"] * 4
    rows = lab.recordings(data_dir)
    assert {r["call_id"] for r in rows} == {c["id"] for c in others}
    for row in rows:
        header = inspect(os.path.join(data_dir, "recordings", row["file"]))["header"]
        assert header["line"] != 3


def test_no_file_holds_any_of_the_private_lines_audio(private_day):
    lab, doc, data_dir, calls = private_day
    windows = []
    for call in (c for c in calls if c["line"] == 3):
        t0 = lab.wall_us(call["started_at"]) - lab.wall_us("2026-03-02T09:00:00.000Z")
        n = (lab.wall_us(call["ended_at"]) - lab.wall_us(call["started_at"])) * 8 // 1000
        audio = lab.source(doc, 3, t0 - 1_000_000, n + 8000)  # and the second before
        for k in range(0, len(audio) - 32, 2000):
            window = audio[k : k + 32]
            if np.abs(window.astype(int)).max() > 0:
                windows.append(window.astype("<i2").tobytes())
    assert len(windows) > 200
    files = list(lab.files(data_dir))
    assert any(p.endswith("calls.db") for p, _ in files)
    for path, data in files:
        for window in windows:
            assert window not in data, "line 3 audio found in %s" % path


def test_every_recording_is_its_own_lines_and_none_of_the_private_speech(private_day):
    lab, doc, data_dir, calls = private_day
    start_us = lab.wall_us("2026-03-02T09:00:00.000Z")
    by_id = {c["id"]: c for c in calls}
    for row in lab.recordings(data_dir):
        call = by_id[row["call_id"]]
        samples, t0_wall = lab.decode(data_dir, row["call_id"])
        t0 = t0_wall - start_us
        own = lab.source(doc, call["line"], t0, len(samples))
        private = lab.source(doc, 3, t0, len(samples))
        # The private line was talking at the same time (the test would prove nothing else).
        assert lab.level_dbm0(private) > -30, call
        assert _likeness(samples, own) > 0.8, call  # about 0.93 through Opus
        assert _likeness(samples, private) < 0.2, call  # about 0.02 to 0.07


def _likeness(decoded, source, max_lag=40):
    """Peak normalised correlation of two signals over lags of up to 5 ms."""
    a = np.asarray(decoded, dtype=np.float64)
    b = np.asarray(source, dtype=np.float64)
    n = min(len(a), len(b)) - 2 * max_lag
    best = 0.0
    for lag in range(-max_lag, max_lag + 1):
        x = a[max_lag : max_lag + n]
        y = b[max_lag + lag : max_lag + lag + n]
        best = max(best, float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9)))
    return best
