"""Child process of the kill -9 test: runs a simulated box, reporting its progress.

    python crash_driver.py SCENARIO.json DATA_DIR SPEED SPEECH_CACHE

It opens the box exactly as ``linekeeper sim`` does (same recorder, same
recovery at start), on 20 ms capture periods (as the HAT's ALSA periods),
paced at SPEED simulated seconds per real second. After each capture period
has been handled - the audio handed to the recorder and every chunk it
completed written and synced - it writes the period's end time (clock µs) to
stdout, unbuffered. Whatever the parent reads last is therefore a time the box
had certainly reached when it was killed. SIGTERM stops the box cleanly (as
``linekeeper sim`` does); SIGKILL is a power cut.
"""

import os
import sys


def main(scenario_path, data_dir, speed, cache_dir):
    from board.sim.scenario import load_scenario
    from board.sim.speech import SpeechSynth
    from firmware.box import open_sim_box
    from firmware.cli import _on_signals

    os.umask(0o077)  # as the CLI does
    box = open_sim_box(
        load_scenario(scenario_path),
        data_dir,
        speed=float(speed),
        synth=SpeechSynth(cache_dir=cache_dir),
        period_ms=20,
    )
    on_audio, period_us = box.capture.on_audio, box.board.period_us

    def reporting(frames, t_us):
        on_audio(frames, t_us)
        os.write(1, b"%d\n" % (t_us + period_us))

    box.capture.on_audio = reporting
    # SIGTERM stops the box cleanly, as `linekeeper sim` and `run` do, and by the same
    # handler: the clock's stop takes a lock the interrupted main thread may hold.
    _on_signals(box.clock.stop)
    os.write(1, b"ready\n")
    box.start()
    try:
        box.board.run()
    finally:
        box.stop()
    os.write(1, b"done\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
