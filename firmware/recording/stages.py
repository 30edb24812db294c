"""The recording pipeline's stages, connected explicitly (as picamera2's encoders and outputs).

::

    samples ─► EncoderStage ──chunks──► SegmentWriter (seals and appends each chunk)
                              └───────► further outputs (through a Fanout)

A stage's ``output`` is any object with ``write_chunk(bytes)``,
``close(bytes)`` and ``abort()``: :class:`~firmware.recording.segment.SegmentWriter`
is the one that encrypts and writes, tests pass a list-backed stand-in.
:class:`Fanout` gives one encoder several outputs (the encrypted file first),
so a later consumer of the encoded stream hooks in without a second encoder.
:class:`RecordingPipeline` builds the chain for one call.

Stages are used by one thread (the line's recorder); they take no locks.
"""

import errno
import logging
import os

from firmware.errors import DiskFullError
from firmware.recording.codec import DEFAULT_PROFILE, Encoder, get_profile
from firmware.recording.segment import SegmentWriter

log = logging.getLogger(__name__)

DEFAULT_FLUSH_MS = 1000


class ChunkPolicy:
    """How much audio goes into one chunk: at most ``flush_ms``, in whole encoder frames.

    Each chunk reaches the disk when its last sample has been fed, so no
    sample waits longer than ``flush_ms`` (plus the write) to be stored.

    :raises ValueError: ``flush_ms`` is not positive
    """

    def __init__(self, flush_ms=DEFAULT_FLUSH_MS):
        if flush_ms <= 0:
            raise ValueError("flush_ms must be positive, not %r" % (flush_ms,))
        self.flush_ms = int(flush_ms)

    def samples_per_chunk(self, rate, frame_samples):
        """Samples per chunk: ``flush_ms`` of audio rounded down to whole encoder frames.

        :raises ValueError: ``flush_ms`` is shorter than one frame
        """
        limit = rate * self.flush_ms // 1000
        if limit < frame_samples:
            raise ValueError(
                "flush_ms=%d is shorter than one encoder frame (%d ms)"
                % (self.flush_ms, 1000 * frame_samples // rate)
            )
        return limit - limit % frame_samples


class EncoderStage:
    """Encodes samples and hands the output on in chunks of at most ``policy.flush_ms``.

    Every chunk ends at an encoder flush, so the chunks written so far always
    decode on their own (a crash leaves a playable prefix).

    :param profile: codec profile name (see :mod:`.codec`)
    :param rate: input sample rate in Hz
    :param policy: a :class:`ChunkPolicy`
    :param output: the next stage (may be set later, before the first ``feed``)
    :param first_chunk_samples: the first chunk's length (whole frames, at most a
        chunk), so that later chunks end on a grid shared by every line; None:
        a whole chunk
    """

    def __init__(
        self, profile=DEFAULT_PROFILE, rate=8000, policy=None, output=None, first_chunk_samples=None
    ):
        self.encoder = Encoder(profile, rate)
        self.policy = policy or ChunkPolicy()
        self.output = output
        self.chunk_samples = self.policy.samples_per_chunk(rate, self.encoder.frame_samples)
        self.first_chunk_samples = first_chunk_samples or self.chunk_samples
        self.stored_samples = 0  # audio in chunks the output has accepted
        self._limit = self.first_chunk_samples
        self._in_chunk = 0
        self._pending = b""

    @property
    def due_samples(self):
        """Samples still to be fed before the chunk being filled is complete."""
        return self._limit - self._in_chunk

    def feed(self, samples):
        """Encode ``samples`` (int16); write each chunk that fills up.

        :raises: whatever the output raises (e.g. :class:`DiskFullError`)
        """
        pos = 0
        while pos < len(samples):
            take = min(len(samples) - pos, self._limit - self._in_chunk)
            self._pending += self.encoder.encode(samples[pos : pos + take])
            pos += take
            self._in_chunk += take
            if self._in_chunk == self._limit:
                data, self._pending = self._pending + self.encoder.flush(), b""
                self.output.write_chunk(data)
                self.stored_samples += self._in_chunk
                self._in_chunk = 0
                self._limit = self.chunk_samples

    def close(self):
        """End the stream: the rest and the encoder's tail go out with the output's ``close``."""
        data, self._pending = self._pending + self.encoder.finish(), b""
        self.output.close(data)
        self.stored_samples += self._in_chunk
        self._in_chunk = 0

    def abort(self):
        """Drop what is not yet written; the output keeps what it has."""
        self._pending = b""
        self.output.abort()


class Fanout:
    """One encoder, several outputs: each chunk goes to ``primary``, then to each of ``others``.

    The primary output is the recording (the encrypted file): what it raises
    reaches the encoder, as without a fan-out. Another output that fails is
    logged, aborted and dropped, and the recording goes on: an extra consumer
    can never cost audio.
    """

    def __init__(self, primary, others=()):
        self.primary = primary
        self.others = list(others)

    def write_chunk(self, data):
        self.primary.write_chunk(data)
        self._each("write_chunk", data)

    def close(self, data=b""):
        self.primary.close(data)
        self._each("close", data)

    def abort(self):
        try:
            self.primary.abort()
        finally:
            self._each("abort")

    def _each(self, method, *args):
        for output in list(self.others):
            try:
                getattr(output, method)(*args)
            except Exception:
                log.exception("recording output %r failed in %s; dropped", output, method)
                self.others.remove(output)
                if method != "abort":
                    try:
                        output.abort()
                    except Exception:
                        log.exception("recording output %r failed to abort", output)


class RecordingPipeline:
    """Encoder → encrypted segment file, for one call.

    :param path: the new recording file (under ``DATA_DIR/recordings/``)
    :param recording_id: the recording's id (in the header)
    :param data_key: its 32-byte data key
    :param header: further header fields (call id, line, created wall µs)
    :param profile: codec profile name
    :param flush_ms: the most audio one chunk holds (and so the longest a
        sample waits before it is on the card)
    :param rate: sample rate in Hz
    :param fsync: ``False`` only in tests and benchmarks
    :param outputs: further outputs of the encoded stream, after the file (see :class:`Fanout`)
    :param journal: the shared :class:`~firmware.recording.journal.Journal` that
        commits each chunk (None: the file is appended and synced chunk by chunk)
    :param first_chunk_ms: the first chunk's audio (whole frames, at most
        ``flush_ms``; in the header as ``first_chunk_ms``); None: ``flush_ms``
    :param sync_create: False: the new file's header is synced with its first
        chunk, not on its own (see :class:`SegmentWriter`)
    :param before_create: ``fn()``: the file is created by its first write,
        just after ``fn()`` (see :class:`SegmentWriter`)
    :param sync_group: a :class:`~firmware.recording.segment.SyncGroup` each
        chunk's sync is left to (see :class:`SegmentWriter`)
    :raises DiskFullError: no room to create the file (nothing is left behind)
    :raises ConfigError: unknown profile
    :raises OSError: the file cannot be created
    """

    def __init__(
        self,
        path,
        recording_id,
        data_key,
        header,
        profile=DEFAULT_PROFILE,
        flush_ms=DEFAULT_FLUSH_MS,
        rate=8000,
        fsync=True,
        outputs=(),
        journal=None,
        first_chunk_ms=None,
        sync_create=True,
        before_create=None,
        sync_group=None,
    ):
        self.profile = get_profile(profile).name
        self.rate = rate
        first = None if first_chunk_ms is None else rate * first_chunk_ms // 1000
        self.encoder = EncoderStage(self.profile, rate, ChunkPolicy(flush_ms), first_chunk_samples=first)
        header = dict(header, profile=self.profile, rate=rate, chunk_ms=flush_ms)
        if first_chunk_ms is not None:
            header["first_chunk_ms"] = int(first_chunk_ms)
        self.writer = SegmentWriter(
            path,
            recording_id,
            data_key,
            header,
            fsync=fsync,
            journal=journal,
            sync_create=sync_create,
            before_create=before_create,
            sync_group=sync_group,
        )
        self.encoder.output = Fanout(self.writer, outputs) if outputs else self.writer
        self.first_t_us = None
        self.last_t_us = None
        self.state = "recording"  # then "complete" or "partial"
        self.disk_full = False
        self._failure = None  # the OSError that stopped the recording

    def feed(self, samples, t_us):
        """Record ``samples`` (int16, mono) captured from wall time ``t_us`` (µs) on.

        After the disk filled up (or a write failed), further audio is dropped.

        :raises DiskFullError: once, when the disk fills; the file keeps every
            chunk written before (a partial recording) and nothing else is touched
        :raises OSError: once, for any other write failure (same outcome)
        :raises ValueError: the pipeline was closed or aborted
        """
        if self.state != "recording":
            if self._failure is None:
                raise ValueError(
                    "feed() after the recording was %s"
                    % ("closed" if self.state == "complete" else "aborted")
                )
            return
        if self.first_t_us is None:
            self.first_t_us = t_us
        self.last_t_us = t_us
        try:
            self.encoder.feed(samples)
        except OSError as exc:
            self._failed(exc)
            raise

    def close(self):
        """Finish the recording; returns :meth:`info`. Safe to call again.

        :raises DiskFullError, OSError: the final chunk could not be written
            (the file stays a valid partial recording)
        """
        if self.state == "recording":
            try:
                self.encoder.close()
            except OSError as exc:
                self._failed(exc)
                raise
            self.state = "complete"
        return self.info()

    def abort(self):
        """Stop without finishing: the file stays, as a partial recording. Returns :meth:`info`."""
        if self.state == "recording":
            self.encoder.abort()
            self.state = "partial"
        return self.info()

    def discard(self):
        """Stop without writing or syncing anything more (the recording is to be destroyed:
        :meth:`SegmentWriter.discard`); the file stays as it is, for its destruction."""
        if self.state == "recording":
            self.state = "partial"
        self.writer.discard()

    def info(self):
        """``{"state", "duration_s", "bytes", "bytes_written", "chunks", "disk_full", "first_t_us"}``.

        ``duration_s`` is the audio stored in the file; ``bytes`` its size.
        """
        try:
            size = os.path.getsize(self.writer.path)
        except OSError:
            size = 0
        return {
            "state": self.state,
            "duration_s": self.encoder.stored_samples / self.rate,
            "bytes": size,
            "bytes_written": self.writer.bytes_written,
            "chunks": self.writer.chunks,
            "disk_full": self.disk_full,
            "first_t_us": self.first_t_us,
        }

    def _failed(self, exc):
        self._failure = exc
        self.disk_full = isinstance(exc, DiskFullError) or exc.errno == errno.ENOSPC
        self.state = "partial"
        self.writer.abort()
