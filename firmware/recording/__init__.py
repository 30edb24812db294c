"""Recording: encode call audio, seal it in chunks, write it crash-safely.

Stages (one job each, connected explicitly in :mod:`.stages`):
samples → :class:`.codec.Encoder` → :class:`.segment.SegmentWriter`
(encrypts each chunk with :mod:`firmware.storage.crypto` and appends it with fsync).
"""
