"""A pipeline stage that ends a recording while the disk still has room to spare.

::

    EncoderStage ──chunks──► DiskReserve ──► SegmentWriter

The call log (SQLite) shares the SD card with the recordings. If recordings
were allowed to fill the card, the next commit of the call log (a call
ending, a recording being finished) would fail with "database or disk is
full". :class:`DiskReserve` therefore stops the recording *before* that: when
writing the next chunk would leave less than ``reserve_bytes`` free, it
writes that chunk and the stream's final chunk (so the file is sealed and a
truncation of it can be detected) and then drops everything after. The
recorder sees :attr:`DiskReserve.tripped`, marks the recording ``partial``
and raises the ``disk_full`` alarm.

Free space is read with one ``statvfs`` per chunk (about one a second per
line): cheap, and nothing in between can use more than a chunk.
"""

import os


def free_bytes(path):
    """Bytes an unprivileged writer may still use on the file system holding ``path``.

    :raises OSError: ``path`` does not exist
    """
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class DiskReserve:
    """Wraps an output stage; seals and stops it when free space would drop below the reserve.

    :param output: the next stage (``write_chunk``, ``close``, ``abort``),
        normally a :class:`~firmware.recording.segment.SegmentWriter`
    :param directory: a path on the file system to watch
    :param reserve_bytes: the free space to leave for everything else
    :param free: ``free(directory) -> bytes``; :func:`free_bytes` unless a test
        passes another
    """

    # Length field and tag of this chunk and of the final chunk, with room to spare.
    OVERHEAD_BYTES = 64

    def __init__(self, output, directory, reserve_bytes, free=free_bytes):
        if reserve_bytes < 0:
            raise ValueError("reserve_bytes must not be negative, not %r" % (reserve_bytes,))
        self.output = output
        self.directory = os.fspath(directory)
        self.reserve_bytes = int(reserve_bytes)
        self._free = free
        self.tripped = False  # the reserve was reached: the output is sealed, input dropped

    def write_chunk(self, data):
        """Pass ``data`` on; if that leaves less than the reserve, pass it as the last chunk.

        :raises OSError: from the output (e.g. a real ENOSPC)
        """
        if self.tripped or not data:
            return
        if self._free(self.directory) - len(data) - self.OVERHEAD_BYTES < self.reserve_bytes:
            self.tripped = True
            self.output.close(data)
            return
        self.output.write_chunk(data)

    def close(self, data=b""):
        """End the stream (nothing to do once tripped: it is already sealed)."""
        if not self.tripped:
            self.output.close(data)

    def abort(self):
        if not self.tripped:
            self.output.abort()
