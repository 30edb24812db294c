"""The recorder's worker that destroys recordings, as the box stops (Recorder.close).

The clean stop waits for every destruction handed to it. At the power-fail warning the
stop leaves those not begun whose row on the card says they were decided to the next
start (which finishes them: RecordingStore.recover), and waits for the rest only once
the box's seal is done (finish_destructions). These drive the worker directly: a
destruction whose file no row names comes only from a recording that failed to start
while the call log refused its row, which no scenario can bring about on purpose.
"""

import threading
from types import SimpleNamespace

from firmware.capture import LineAudio
from firmware.recording.recorder import Recorder

WHY = "marked personal"


class _Capture:
    rate = 8000

    def __init__(self):
        self.lines = {1: LineAudio(1, 8000, 8)}

    def add_consumer(self, line, fn):
        pass


def _worker_blocked_in_first():
    """A recorder whose worker is blocked in destroying ``a`` (until ``go`` is set), with
    ``b`` (its row says it was decided) and ``c`` (no row names its file) queued behind."""
    rec = Recorder(_Capture(), store=None, clock=None, bus=None, public_key=None)
    call = SimpleNamespace(line=1, id=7)
    started, go, done = threading.Event(), threading.Event(), []

    def shred(recording_id, why, call, row=True):
        if recording_id == "a":
            started.set()
            go.wait(timeout=10)
        done.append(recording_id)

    rec._shred = shred  # the card's part of each destruction, stood in for
    rec._to_shredder("a", WHY, call)
    assert started.wait(timeout=10)
    rec._to_shredder("b", WHY, call)
    rec._to_shredder("c", WHY, call, row=False)
    return rec, go, done


def test_at_the_warning_only_what_the_next_start_can_finish_is_left_to_it():
    rec, go, done = _worker_blocked_in_first()
    assert rec.close(cancel_destructions=True) == 1  # b
    assert done == []  # the close did not wait for the destruction under way
    go.set()
    rec.finish_destructions()
    assert done == ["a", "c"]  # c has no row to tell the next start: done in this run


def test_the_clean_stop_waits_for_every_destruction():
    rec, go, done = _worker_blocked_in_first()
    threading.Timer(0.2, go.set).start()
    assert rec.close() == 0
    assert done == ["a", "b", "c"]
    rec.finish_destructions()  # nothing left: returns at once
