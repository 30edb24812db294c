"""ALSA capture and playback for a HAT's codec (through pyalsaaudio).

Capture runs on its own thread, reading one period at a time and handing it
to the firmware's callback, which must not block. Each period is stamped with
the clock time of its first frame: consecutive periods are contiguous, and an
overrun (reported by ALSA as a negative length) restarts the timing from the
clock.
"""

import logging
import threading

from telephony.errors import HardwareError

log = logging.getLogger(__name__)

BYTES_PER_SAMPLE = 2


def _alsaaudio():
    try:
        import alsaaudio
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise HardwareError("pyalsaaudio is not installed: run `make setup`") from exc
    return alsaaudio


def _open_pcm(kind, device, rate, channels, period_frames, periods):
    """An S16_LE ALSA PCM for ``kind`` ("capture" or "playback"), or a HardwareError."""
    alsaaudio = _alsaaudio()
    pcm_type = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    try:
        return alsaaudio.PCM(
            type=pcm_type,
            mode=alsaaudio.PCM_NORMAL,
            device=device,
            rate=rate,
            channels=channels,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=period_frames,
            periods=periods,
        )
    except alsaaudio.ALSAAudioError as exc:
        raise HardwareError("cannot open ALSA %s device %r: %s" % (kind, device, exc)) from exc


class _PcmThread:
    """An ALSA PCM worked by a thread of its own: what capture and playback share (the
    thread started on a fresh stop flag; on stop, the thread joined, then the PCM closed).
    A subclass sets ``_pcm``, ``_thread`` (None) and ``_stop`` (an Event) and has ``_run``."""

    def _start(self, name, *args):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=args, name=name, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._pcm is not None:
            self._pcm.close()
            self._pcm = None


class AlsaCapture(_PcmThread):
    """Read interleaved S16_LE periods from ``device`` on a thread.

    :param device: ALSA PCM name, e.g. ``hw:CARD=LK4L,DEV=0``
    :param rate: frames per second
    :param channels: channels per frame
    :param period_frames: frames per read
    :param clock: stamps each period
    """

    def __init__(self, device, rate, channels, period_frames, clock):
        self.device = device
        self.rate = rate
        self.channels = channels
        self.period_frames = period_frames
        self._clock = clock
        self._pcm = None
        self._thread = None
        self._stop = threading.Event()
        self.overruns = 0
        self.periods = 0
        self.errors = 0

    def open(self):
        self._pcm = _open_pcm("capture", self.device, self.rate, self.channels, self.period_frames, periods=8)

    def start(self, on_audio):
        if self._pcm is None:
            self.open()
        self._start("linekeeper-capture", on_audio)

    def read_period(self):
        """One blocking read: ``(frames, data)``; ``frames < 0`` on overrun."""
        return self._pcm.read()

    def _run(self, on_audio):
        period_us = self.period_frames * 1_000_000 // self.rate
        frame_bytes = self.channels * BYTES_PER_SAMPLE
        next_t_us = None
        while not self._stop.is_set():
            try:
                n, data = self.read_period()
            except Exception:
                # A read error must not end capture for good: say so, breathe, go on.
                self.errors += 1
                log.exception("ALSA capture read failed on %s", self.device)
                self._stop.wait(0.1)
                next_t_us = None
                continue
            now_us = self._clock.now_us()
            if n < 0:
                self.overruns += 1
                next_t_us = None
                continue
            if n == 0:
                continue
            data = data[: n * frame_bytes]
            t_us = now_us - n * 1_000_000 // self.rate
            # Keep periods contiguous unless the clock says we lost some.
            if next_t_us is not None and abs(t_us - next_t_us) < 2 * period_us:
                t_us = next_t_us
            next_t_us = t_us + n * 1_000_000 // self.rate
            self.periods += 1
            try:
                on_audio(data, t_us)
            except Exception:
                self.errors += 1
                log.exception("capture callback failed")


class AlsaPlayback(_PcmThread):
    """Queue mono samples per channel and write them interleaved to ``device``.

    The write thread sends silence when nothing is queued, so the codec's
    playback stream never underruns between announcements. A write that fails does
    not end it: it tries again, and meanwhile :meth:`queue` refuses (:attr:`error`
    says why), so a notice nobody can hear is never taken for one given.
    """

    def __init__(self, device, rate, channels, period_frames):
        self.device = device
        self.rate = rate
        self.channels = channels
        self.period_frames = period_frames
        self._queues = [bytearray() for _ in range(channels)]
        self._lock = threading.Lock()
        self._pcm = None
        self._thread = None
        self._stop = threading.Event()
        self.error = None  # why the last write failed; None once one succeeds
        self.errors = 0

    def open(self):
        self._pcm = _open_pcm(
            "playback", self.device, self.rate, self.channels, self.period_frames, periods=4
        )
        self._start("linekeeper-playback")

    def queue(self, channel, samples):
        """Queue ``samples`` (S16_LE bytes) for ``channel``.

        :raises HardwareError: the playback device's writes are failing: nothing queued
        """
        with self._lock:
            if self.error is not None:
                raise HardwareError(
                    "cannot play into the line: the playback device %r failed: %s" % (self.device, self.error)
                )
            self._queues[channel] += bytes(samples)

    def drop(self, channel):
        """Forget what is queued for ``channel`` and not yet written."""
        with self._lock:
            self._queues[channel].clear()

    def next_period(self):
        """The next interleaved period: queued samples, silence where none."""
        import numpy as np

        n = self.period_frames
        frames = np.zeros((n, self.channels), dtype=np.int16)
        with self._lock:
            for ch, q in enumerate(self._queues):
                take = min(len(q), n * BYTES_PER_SAMPLE)
                if take:
                    frames[: take // BYTES_PER_SAMPLE, ch] = np.frombuffer(bytes(q[:take]), np.int16)
                    del q[:take]
        return frames.tobytes()

    def _run(self):
        while not self._stop.is_set():
            try:
                self._pcm.write(self.next_period())
            except Exception as exc:
                # As for capture: say so, breathe, go on. What was queued is dropped (a
                # notice played late would be heard in the wrong call), and queue()
                # refuses until a write succeeds.
                with self._lock:
                    self.error = str(exc) or type(exc).__name__
                    for q in self._queues:
                        q.clear()
                self.errors += 1
                log.exception("ALSA playback write failed on %s", self.device)
                self._stop.wait(0.1)
                continue
            if self.error is not None:
                with self._lock:
                    self.error = None
