"""The last few seconds of a line's audio, kept as the blocks that were processed.

Receivers that double-check a detection on the audio (DTMF duration, tone
purity) need the recent past only when spandsp reports something, so the
blocks are kept as they are and joined only on demand: nothing is copied per
block.  Blocks must not be modified after :meth:`AudioHistory.append`.
"""

import collections

import numpy as np


class AudioHistory:
    """The newest block plus at least ``max_samples`` before it, addressed by absolute sample position."""

    def __init__(self, max_samples):
        self.max_samples = max_samples
        self.end = 0  # absolute position just after the newest sample
        self._blocks = collections.deque()  # (start position, int16 array)
        self._held = 0

    def append(self, block):
        """Add the next block (int16 array, not to be modified afterwards)."""
        if len(block) == 0:
            return
        self._blocks.append((self.end, block))
        self.end += len(block)
        self._held += len(block)
        while self._held - len(self._blocks[0][1]) - len(block) >= self.max_samples:
            self._held -= len(self._blocks.popleft()[1])

    @property
    def start(self):
        """Absolute position of the oldest sample held."""
        return self.end - self._held

    def get(self, start, end):
        """Samples ``[start, end)`` (clipped to what is held) as one int16 array."""
        start, end = max(start, self.start), min(end, self.end)
        parts = [
            block[max(0, start - pos) : max(0, end - pos)]
            for pos, block in self._blocks
            if pos < end and pos + len(block) > start
        ]
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
