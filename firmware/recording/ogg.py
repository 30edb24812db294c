"""A small Ogg page writer and reader (RFC 3533), enough for one Opus stream.

Why our own instead of libogg: we need exact control over when a page is cut
(at every flush, so each flushed prefix is a valid stream) and the format is
a 27-byte header plus a lacing table; the CRC runs in C through ``zlib``.
"""

import struct
import zlib

from firmware.errors import AudioFormatError

CAPTURE = b"OggS"
CONTINUED, BOS, EOS = 0x01, 0x02, 0x04
MAX_SEGMENTS = 255
_HEADER = struct.Struct("<4sBBqIIIB")

_REVERSE_BITS = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc32(data):
    """Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial 0, no final xor.

    It is zlib's CRC-32 (the reflected twin) run over bit-reversed bytes with
    the initial and final inversions cancelled, then bit-reversed back.
    """
    raw = zlib.crc32(data.translate(_REVERSE_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def lacing(length):
    """The lacing values of one whole packet of ``length`` bytes."""
    return bytes([255] * (length // 255) + [length % 255])


def page(serial, sequence, granule, packets, flags=0):
    """One Ogg page holding whole ``packets`` (a list of bytes).

    :param granule: granule position after the last packet (-1: none ends here)
    :raises ValueError: the packets need more than 255 lacing values
    """
    table = b"".join(lacing(len(p)) for p in packets)
    if len(table) > MAX_SEGMENTS:
        raise ValueError("%d lacing values do not fit one Ogg page" % len(table))
    header = _HEADER.pack(CAPTURE, 0, flags, granule, serial, sequence, 0, len(table)) + table
    body = b"".join(packets)
    crc = crc32(header + body)
    return header[:22] + struct.pack("<I", crc) + header[26:] + body


class PageWriter:
    """Gathers packets of one logical stream into pages.

    ``add(packet, granule)`` queues a packet; ``pages()`` returns the bytes of
    the pages that are full; ``flush(eos=False)`` cuts a page now, so that all
    bytes returned so far form a complete, valid Ogg stream prefix.
    """

    def __init__(self, serial):
        self.serial = serial
        self._sequence = 0
        self._packets = []
        self._segments = 0
        self._granule = -1
        self._ready = []
        self._bos = True

    def add(self, packet, granule):
        """Queue ``packet``, which ends at ``granule``."""
        n = len(packet) // 255 + 1
        if self._segments + n > MAX_SEGMENTS:
            self._cut(0)
        self._packets.append(bytes(packet))
        self._segments += n
        self._granule = granule

    def add_page(self, packet, granule):
        """Put ``packet`` alone on its own page (Ogg Opus header packets)."""
        if self._packets:
            self._cut(0)
        self.add(packet, granule)
        self._cut(0)

    def pages(self):
        """The bytes of every page completed since the last call."""
        if not self._ready:  # most calls: a 20 ms piece rarely completes a page
            return b""
        out, self._ready = b"".join(self._ready), []
        return out

    def flush(self, eos=False):
        """Cut a page from whatever is queued (an empty one only for ``eos``); return all pages."""
        if self._packets or eos:
            self._cut(EOS if eos else 0)
        return self.pages()

    def _cut(self, flags):
        if self._bos:
            flags |= BOS
            self._bos = False
        self._ready.append(page(self.serial, self._sequence, self._granule, self._packets, flags))
        self._sequence += 1
        self._packets, self._segments = [], 0


def read_pages(data):
    """Yield ``(flags, granule, serial, sequence, packets, continues)`` per whole page in ``data``.

    ``packets`` lists the packet parts on the page; ``continues`` is true when
    the last one goes on in the next page. A torn last page (cut short) ends
    the iteration quietly: the caller decides whether a prefix is acceptable.

    :raises AudioFormatError: a page is not Ogg or its CRC is wrong
    """
    for _end, found in _pages(data):
        yield found


class PageReader:
    """:func:`read_pages` over a stream given in pieces (:meth:`feed`): holds only the
    page not yet whole. What is left at the end (:attr:`pending`) is a torn last page."""

    def __init__(self):
        self._buf = bytearray()

    @property
    def pending(self):
        return len(self._buf)

    def feed(self, data):
        """The pages made whole by ``data`` (a list, as :func:`read_pages` gives them).

        :raises AudioFormatError: a page is not Ogg or its CRC is wrong
        """
        self._buf += data
        found, used = [], 0
        for end, page_ in _pages(bytes(self._buf)):
            found.append(page_)
            used = end
        del self._buf[:used]
        return found


def _pages(data):
    """:func:`read_pages`, each page with the offset it ends at."""
    pos, n = 0, len(data)
    view = memoryview(data)
    while pos < n:
        if n - pos < _HEADER.size:
            return
        capture, version, flags, granule, serial, seq, crc, nseg = _HEADER.unpack_from(data, pos)
        if capture != CAPTURE or version != 0:
            raise AudioFormatError("not an Ogg page at byte %d" % pos)
        table = view[pos + _HEADER.size : pos + _HEADER.size + nseg]
        body_start = pos + _HEADER.size + nseg
        end = body_start + sum(table)
        if len(table) < nseg or end > n:
            return
        raw = bytearray(view[pos:end])
        raw[22:26] = b"\0\0\0\0"
        if crc32(bytes(raw)) != crc:
            raise AudioFormatError("Ogg page %d has a bad checksum" % seq)
        packets, start, length = [], body_start, 0
        for value in table:
            length += value
            if value < 255:
                packets.append(bytes(view[start : start + length]))
                start, length = start + length, 0
        continues = bool(nseg) and table[-1] == 255
        if continues:
            packets.append(bytes(view[start : start + length]))
        yield end, (flags, granule, serial, seq, packets, continues)
        pos = end
