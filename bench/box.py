"""CPU cost of the simulated box per line-hour.

A scenario keeps every line busy for the whole run with back-to-back calls
(caller ID, speech, both directions). It is run twice in this process: the
simulator alone (the same board producing the same edges and audio, with
callbacks that do nothing: the baseline) and the whole box (supervisor,
rings, DSP, call log). The firmware's share is the difference, less the HAT
MCU's own firmware: the simulated board runs it inside the box's I2C reads (the
power-fail poll), but on the HAT it runs on the MCU, not on the Pi, so it is
counted as the simulator's: the ticks it ran times the CPU time of one tick,
measured after the run (docs/bench.md).
"""

import json
import os
import tempfile
import time

from bench import measure

LINES = 4
MCU_TICKS_TIMED = 20_000  # ticks of the simulated MCU timed, three times, for the cost of one


# The busy calls talk for their first 25 s and then stay quiet, with no line
# noise, until they hang up at 4 minutes. The box would take that long silence
# for a far end gone (``silence_clear_s``, 60 s by default) and close the call
# early; every bench figure is for whole 4-minute calls, as it was before the
# silence clear came, so the busy scenario sets the longest silence clear.
BUSY_CONFIG = {"silence_clear_s": 600}


def busy_scenario(hours, lines=LINES):
    """Back-to-back calls filling ``lines`` lines for ``hours`` (with :data:`BUSY_CONFIG`)."""
    calls = []
    speech = [
        {"at": 0.5, "text": "Good morning, thank you for calling. How can I help you today?"},
        {"at": 8.0, "text": "I would like to check the status of my order, please."},
        {"at": 20.0, "text": "Of course. Could you give me the order number?"},
    ]
    for line in range(1, lines + 1):
        t = 1.0 + line * 0.7
        n = 0
        while t < hours * 3600 - 300:
            if n % 2 == 0:
                calls.append(
                    {
                        "line": line,
                        "at": round(t, 3),
                        "direction": "in",
                        "rings": 2,
                        "caller_id": {"number": "0163296%04d" % (n % 10000), "name": "CALLER %d" % n},
                        "talk": 240.0,
                        "speech": speech,
                    }
                )
            else:
                calls.append(
                    {
                        "line": line,
                        "at": round(t, 3),
                        "direction": "out",
                        "dial": {"digits": "02079460%03d" % (n % 1000), "mode": "dtmf"},
                        "talk": 240.0,
                        "speech": speech,
                    }
                )
            t += 270.0
            n += 1
    return {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": lines,
        "calls": calls,
        "config": dict(BUSY_CONFIG),
    }


# A conversation for the talking calls: agent and caller in turn (two voices), as on a
# line that is talking for most of the call rather than for its first 25 s.
CONVERSATION = (
    ("en-gb", "Good morning, thank you for calling. How can I help you today?"),
    ("en-gb+f3", "Hello, I would like to check the status of my order, please."),
    ("en-gb", "Of course. Could you give me the order number?"),
    ("en-gb+f3", "Yes, it is four seven two nine one, placed last Tuesday."),
    ("en-gb", "Thank you. I can see it here. It left our warehouse yesterday afternoon."),
    ("en-gb+f3", "That is good news. When should I expect it to arrive?"),
    ("en-gb", "It should be with you by Thursday, before midday at the latest."),
    ("en-gb+f3", "Could the driver leave it with my neighbour if I am out?"),
    ("en-gb", "Yes, I can add a note to the delivery for you now."),
    ("en-gb+f3", "Thank you, that is very helpful. Is there anything else I need to do?"),
)
SECONDS_PER_WORD = 0.36  # espeak-ng at 160 words a minute, measured on these sentences
TURN_GAP_S = 0.8  # the pause between one speaker and the next


def talking_speech(talk_s):
    """Speech filling a call of ``talk_s`` seconds: :data:`CONVERSATION` over and over,
    each sentence :data:`TURN_GAP_S` after the one before (timed from its words)."""
    speech, at, n = [], 0.5, 0
    while at < talk_s - 1.0:
        voice, text = CONVERSATION[n % len(CONVERSATION)]
        speech.append({"at": round(at, 2), "text": text, "voice": voice})
        at += len(text.split()) * SECONDS_PER_WORD + TURN_GAP_S
        n += 1
    return speech


def talking_scenario(hours, lines=LINES):
    """:func:`busy_scenario` with calls that talk from the answer to the hang-up."""
    sc = busy_scenario(hours, lines)
    for call in sc["calls"]:
        call["speech"] = talking_speech(call["talk"])
    return sc


def mcu_tick_cpu_s(mcu, ticks=MCU_TICKS_TIMED):
    """CPU seconds one tick of the simulated MCU's firmware takes: the least of three
    timings of ``ticks`` ticks in a row.

    Timing each tick of the run itself would cost about as much as the tick (reading a
    CPU clock is a system call here) and catch the machine's other work. The least of
    three errs low, so the firmware's share errs high, never flattered.
    """
    best = float("inf")
    for _ in range(3):
        cpu0 = measure.cpu_s()
        for _ in range(ticks):
            mcu.tick()
        best = min(best, measure.cpu_s() - cpu0)
    return best / ticks


def run(quick=False):
    from board.sim.scenario import loads_scenario
    from board.sim.speech import SpeechSynth
    from firmware.box import open_sim_box

    hours = 0.25 if quick else 1.0
    text = json.dumps(busy_scenario(hours))
    scenario = loads_scenario(text)
    cache = os.path.join(os.path.dirname(__file__), ".cache", "speech")
    synth = SpeechSynth(cache_dir=cache)
    results = {"lines": LINES, "scenario_hours": hours, "calls": len(scenario.calls)}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm the speech cache so neither run pays for espeak-ng.
        box = open_sim_box(scenario, os.path.join(tmp, "warm"), synth=synth)
        box.calllog.close()

        box = open_sim_box(scenario, os.path.join(tmp, "sim"), synth=synth)
        board = box.board
        cpu0, wall0 = measure.cpu_s(), time.monotonic()
        board.start(lambda *edge: None, lambda frames, t_us: None)
        board.run()
        board.stop()
        sim_cpu = measure.cpu_s() - cpu0
        sim_wall = time.monotonic() - wall0
        box.calllog.close()

        box = open_sim_box(scenario, os.path.join(tmp, "box"), synth=synth)
        mcu = box.board.mcu
        ticks0 = mcu.ticks if mcu is not None else 0
        cpu0, wall0 = measure.cpu_s(), time.monotonic()
        box.start()
        box.board.run()
        n_calls = len(box.calllog.calls())
        box.stop()
        box_cpu = measure.cpu_s() - cpu0
        box_wall = time.monotonic() - wall0
        mcu_cpu = (mcu.ticks - ticks0) * mcu_tick_cpu_s(mcu) if mcu is not None else 0.0

    line_hours = LINES * hours
    results.update(
        {
            "calls_logged": n_calls,
            "simulator_cpu_s_per_line_hour": round((sim_cpu + mcu_cpu) / line_hours, 3),
            "sim_mcu_cpu_s_per_line_hour": round(mcu_cpu / line_hours, 3),
            "box_cpu_s_per_line_hour": round(box_cpu / line_hours, 3),
            "firmware_cpu_s_per_line_hour": round((box_cpu - sim_cpu - mcu_cpu) / line_hours, 3),
            "speedup_vs_real_time": round(hours * 3600 / box_wall, 1),
            "simulator_wall_s": round(sim_wall, 2),
            "box_wall_s": round(box_wall, 2),
        }
    )
    return results
