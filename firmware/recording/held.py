"""A recording held in memory until it may reach the card.

A call whose recording depends on how long it lasts (the policy's minimum
duration) must not touch the card if it turns out too short. Its audio is
encoded as usual, chunk by chunk, but the chunks stay in RAM
(:class:`HeldChunks`); once the call has lasted long enough,
:meth:`HeldPipeline.release_into` writes them into a real
:class:`~firmware.recording.stages.RecordingPipeline` and hands it the
running encoder, so the recording carries on where it was. Dropped, nothing
of it was ever written: no file, no row, no key.

::

    samples ─► EncoderStage ──chunks──► HeldChunks            (held)
    samples ─► EncoderStage ──chunks──► SegmentWriter / DiskReserve  (released)
"""

from .codec import get_profile
from .stages import ChunkPolicy, EncoderStage


class HeldChunks:
    """An encoder output that keeps every chunk in memory."""

    def __init__(self):
        self.chunks = []
        self.bytes = 0

    def write_chunk(self, data):
        self.chunks.append(bytes(data))
        self.bytes += len(data)

    def close(self, data):
        raise RuntimeError("a held recording is released or dropped, never closed")

    def abort(self):
        self.chunks.clear()
        self.bytes = 0


class HeldPipeline:
    """The interface of a :class:`RecordingPipeline` (``feed``, ``abort``, ``info``), in RAM.

    :param profile: codec profile name
    :param flush_ms: audio per chunk (as the pipeline it will be released into)
    :param first_chunk_ms: the first chunk's audio, as that pipeline's (None: ``flush_ms``)
    :param rate: sample rate in Hz
    """

    held = True

    def __init__(self, profile, flush_ms, rate=8000, first_chunk_ms=None):
        self.profile = get_profile(profile).name
        self.rate = rate
        self.output = HeldChunks()
        first = None if first_chunk_ms is None else rate * first_chunk_ms // 1000
        self.encoder = EncoderStage(
            self.profile, rate, ChunkPolicy(flush_ms), output=self.output, first_chunk_samples=first
        )
        self.first_t_us = None
        self.state = "held"

    def feed(self, samples, t_us):
        if self.state != "held":
            raise ValueError("feed() after the held recording was %s" % self.state)
        if self.first_t_us is None:
            self.first_t_us = t_us
        self.encoder.feed(samples)

    def abort(self):
        """Drop everything: nothing of it was ever written."""
        if self.state == "held":
            self.encoder.abort()
            self.state = "dropped"
        return self.info()

    def release_into(self, pipeline):
        """Write the held chunks into ``pipeline`` (just opened, its output wired)
        and let it carry on with this encoder.

        :raises OSError: (e.g. DiskFullError) from writing a held chunk; the
            pipeline then holds the chunks written before
        """
        output = pipeline.encoder.output
        chunks, self.output.chunks = self.output.chunks, []
        self.encoder.output = output
        pipeline.encoder = self.encoder
        pipeline.first_t_us = self.first_t_us
        self.state = "released"
        stored = self.encoder.stored_samples
        # The encoder counted the held chunks as stored; count them again as they land.
        self.encoder.stored_samples = 0
        for i, chunk in enumerate(chunks):
            output.write_chunk(chunk)
            self.encoder.stored_samples += (
                self.encoder.first_chunk_samples if i == 0 else self.encoder.chunk_samples
            )
        self.encoder.stored_samples = stored

    def info(self):
        return {
            "state": self.state,
            "duration_s": self.encoder.stored_samples / self.rate,
            "bytes": 0,
            "bytes_written": 0,
            "chunks": 0,
            "disk_full": False,
            "first_t_us": self.first_t_us,
        }
