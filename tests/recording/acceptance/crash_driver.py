"""Child process of the kill -9 test: runs a simulated box, reporting its progress.

    python crash_driver.py SCENARIO.json DATA_DIR SPEED SPEECH_CACHE [refuse-destructions]

It opens the box exactly as ``linekeeper sim`` does (same recorder, same
recovery at start), on 20 ms capture periods (as the HAT's ALSA periods),
paced at SPEED simulated seconds per real second. After each capture period
has been handled - the audio handed to the recorder and every chunk it
completed written and synced - it writes the period's end time (clock µs) to
stdout, unbuffered. Whatever the parent reads last is therefore a time the box
had certainly reached when it was killed. SIGTERM stops the box cleanly (as
``linekeeper sim`` does); SIGKILL is a power cut. ``refuse-destructions``: the card
refuses every decision to destroy a recording (the recordings store's ``unname_file``
raises a disk I/O error, as ``support.simbox.refusing_destructions`` makes it in-process).
"""

import os
import sys


def main(scenario_path, data_dir, speed, cache_dir, fault=None):
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
    if fault == "refuse-destructions":
        _refuse_destructions(box.recorder.store)
    elif fault is not None:
        raise SystemExit("unknown fault %r" % fault)
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


def _refuse_destructions(store):
    import sqlite3

    def unname_file(recording_id, call_id=None, why=None, skip=None, decided=None):
        raise sqlite3.OperationalError("disk I/O error")

    store.unname_file = unname_file


if __name__ == "__main__":
    main(*sys.argv[1:])
