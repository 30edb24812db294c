"""The recorder: records every answered call of every line.

It listens on the bus for calls being answered and ending, and takes each
line's audio from the capture readers. A recording starts ``preroll_ms``
before the answer — the ring buffer still holds that audio — so speech right
after the answer is never clipped. The recorder holds no secret: each
recording's data key is wrapped to the box's public key at once.

Until the policy issue adds rules, every answered call is recorded; a box
whose keys were never initialised records nothing (and says so).
"""

import logging
import threading
import uuid
from dataclasses import dataclass

import numpy as np

from .bus import CallAnswered, CallEnded, Event
from .errors import DiskFullError
from .recording.stages import RecordingPipeline
from .recordings import new_wrapped_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alarm(Event):
    """Something an operator must see: ``kind`` is e.g. ``"disk_full"``."""
    kind: str
    active: bool
    message: str = ""


class _Active:
    """One recording in progress."""

    def __init__(self, call, recording_id, pipeline, start_us):
        self.call = call
        self.recording_id = recording_id
        self.pipeline = pipeline
        self.next_us = start_us      # audio before this is already in the pipeline
        self.end_us = None           # set when the call ends
        self.timer = None


class Recorder:
    """Record answered calls into ``store``.

    :param capture: the :class:`~firmware.capture.Capture` (rings and readers)
    :param store: the :class:`~firmware.recordings.RecordingStore`
    :param clock: for wall times and the end-of-call timer
    :param bus: to publish :class:`Alarm`
    :param public_key: the box's recording public key, or None (not initialised)
    :param preroll_ms: audio kept from before the answer
    :param flush_ms: the most audio that waits in memory before reaching the card
    :param profile: codec profile
    """

    END_GRACE_US = 500_000

    def __init__(self, capture, store, clock, bus, public_key, *, preroll_ms=1000,
                 flush_ms=1000, profile="voice", fsync=True):
        self.capture = capture
        self.store = store
        self.clock = clock
        self.bus = bus
        self.public_key = public_key
        self.preroll_us = preroll_ms * 1000
        self.flush_ms = flush_ms
        self.profile = profile
        self.fsync = fsync
        self._lock = threading.RLock()
        self._active = {}
        self._disk_full = False
        self.rate = capture.rate

    @property
    def enabled(self):
        return self.public_key is not None

    def attach(self, bus):
        bus.subscribe(CallAnswered, self._answered)
        bus.subscribe(CallEnded, self._ended)
        for line in self.capture.lines:
            self.capture.add_consumer(line, self._consumer(line))

    # ------------------------------------------------------------ call events
    def _answered(self, ev):
        if not self.enabled:
            return
        call = ev.call
        with self._lock:
            if call.line in self._active:
                return
            start_us = max(call.answered_us - self.preroll_us, call.started_us)
            try:
                active = self._open(call, start_us)
            except DiskFullError as exc:
                self._alarm(call.line, "disk_full", True, str(exc))
                return
            self._active[call.line] = active
            self._feed_preroll(active)

    def _open(self, call, start_us):
        recording_id = uuid.uuid4().hex
        data_key, wrapped = new_wrapped_key(self.public_key, recording_id)
        self.store.begin(call.id, wrapped, self.profile, self.flush_ms,
                         self.clock.wall_at(start_us), recording_id=recording_id)
        header = {"recording_id": recording_id, "call_id": call.id, "line": call.line,
                  "created_us": self.clock.wall_at(start_us)}
        try:
            pipeline = RecordingPipeline(self.store.path_of(recording_id), recording_id, data_key,
                                         header, profile=self.profile, flush_ms=self.flush_ms,
                                         rate=self.rate, fsync=self.fsync)
        except BaseException:
            self.store.drop(recording_id)
            raise
        if self._disk_full:
            self._disk_full = False
            self._alarm(call.line, "disk_full", False, "recording again")
        return _Active(call, recording_id, pipeline, start_us)

    def _feed_preroll(self, active):
        """Give the pipeline what the ring holds from its start to now."""
        audio = self.capture.lines[active.call.line]
        ring = audio.ring
        end_pos = ring.written
        end_us = audio.time_of(end_pos)
        want = (end_us - active.next_us) * self.rate // 1_000_000 * 2
        if want <= 0:
            return
        data = ring.preroll(min(want, ring.capacity))
        # preroll() may cross a gap in capture; time_of tells where the data really starts.
        start_us = audio.time_of(end_pos - len(data))
        self._feed(active, np.frombuffer(data, dtype=np.int16), start_us)

    def _ended(self, ev):
        with self._lock:
            active = self._active.get(ev.line)
            if active is None or active.call is not ev.call:
                return
            active.end_us = ev.call.ended_us
            # Audio up to the end may still be on its way from the rings.
            active.timer = self.clock.call_later(self.END_GRACE_US, lambda: self._close(active))

    def _close(self, active):
        with self._lock:
            if self._active.get(active.call.line) is not active:
                return
            del self._active[active.call.line]
            if active.timer is not None:
                active.timer.cancel()
            try:
                info = active.pipeline.close()
            except OSError as exc:
                info = active.pipeline.info()
                self._failed(active, exc)
            self.store.finish(active.recording_id, info["state"], info["duration_s"])

    def close(self):
        """Finish every recording in progress (the box is stopping)."""
        with self._lock:
            for active in list(self._active.values()):
                self._close(active)

    # ------------------------------------------------------------ audio
    def _consumer(self, line):
        def consume(samples, t_us):
            with self._lock:
                active = self._active.get(line)
                if active is not None:
                    self._feed(active, samples, t_us)
        return consume

    def _feed(self, active, samples, t_us):
        n = len(samples)
        end_us = t_us + n * 1_000_000 // self.rate
        # Drop what the pipeline already has (pre-roll and reader overlap)...
        if t_us < active.next_us:
            skip = (active.next_us - t_us) * self.rate // 1_000_000
            samples, t_us = samples[skip:], active.next_us
        # ... and what comes after the call's end.
        if active.end_us is not None and end_us > active.end_us:
            samples = samples[:max(0, (active.end_us - t_us) * self.rate // 1_000_000)]
        if len(samples):
            try:
                active.pipeline.feed(samples, t_us)
            except OSError as exc:
                self._failed(active, exc)
            active.next_us = t_us + len(samples) * 1_000_000 // self.rate
        if active.end_us is not None and active.next_us >= active.end_us:
            self._close(active)

    def _failed(self, active, exc):
        if isinstance(exc, DiskFullError):
            self._disk_full = True
            self._alarm(active.call.line, "disk_full", True, str(exc))
        else:
            log.error("recording %s failed: %s", active.recording_id, exc)
            self._alarm(active.call.line, "recording_failed", True, str(exc))

    def _alarm(self, line, kind, active, message):
        log.warning("alarm %s on line %d: %s", kind, line, message)
        self.bus.publish(Alarm(line=line, t_us=self.clock.now_us(), kind=kind, active=active,
                               message=message))
