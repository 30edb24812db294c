"""The RIFF/WAVE structure of a WAV file held in memory, parsed strictly.

:func:`parse_wav` walks the chunks itself rather than trusting :mod:`wave`:
a header that lies about the length of the file or of a chunk, an odd chunk
size, a missing or repeated chunk, a format chunk too short to hold its
fields, all become one :class:`~firmware.errors.AudioFormatError` saying what
is wrong. It only reads the structure; what a caller accepts (formats,
channels, sample rates, duration) is the caller's to check.
"""

import struct
from dataclasses import dataclass

from .errors import AudioFormatError

WAVE_PCM = 1
WAVE_FLOAT = 3
WAVE_EXTENSIBLE = 0xFFFE
FORMAT_NAMES = {
    1: "PCM",
    3: "float",
    6: "A-law",
    7: "mu-law",
    2: "ADPCM",
    0x11: "IMA ADPCM",
    0x55: "MP3",
    0xFFFE: "extensible",
}


@dataclass(frozen=True)
class WavInfo:
    """The format of a WAV and its audio bytes.

    ``tag`` is the format code (1 PCM, 3 float; an extensible file's sub-format),
    ``rate`` samples per second, ``block`` bytes per frame, ``truncated`` true
    when the audio chunk was cut short and only what is there is given.
    """

    tag: int
    channels: int
    rate: int
    byte_rate: int
    block: int
    bits: int
    audio: bytes
    truncated: bool = False


def parse_wav(data, *, allow_truncated=False):
    """Parse the WAV file ``data`` (bytes).

    :param allow_truncated: accept an audio chunk (the last one) that runs past
        the end of the file, as a recording cut off by a power cut or a file
        written as a stream is, and give the whole frames that are there
    :raises AudioFormatError: not a WAV file, or its structure is damaged
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a WAV file (no RIFF/WAVE header)")
    pos, fmt, audio, truncated = 12, None, None, False
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if body + size > len(data):
            if cid == b"data" and audio is None and allow_truncated:
                size, truncated = len(data) - body, True
            else:
                raise AudioFormatError(
                    "the WAV header says its %r chunk holds %d bytes but only %d follow: the "
                    "file is cut short or its header is wrong"
                    % (cid.decode("latin-1"), size, len(data) - body)
                )
        if cid == b"fmt ":
            if fmt is not None:
                raise AudioFormatError("the WAV has two format chunks")
            fmt = _fmt(data, body, size)
        elif cid == b"data":
            if audio is not None:
                raise AudioFormatError("the WAV has two audio chunks")
            audio = data[body : body + size]
        pos = body + size + (size & 1)
    if fmt is None or audio is None:
        raise AudioFormatError(
            "the WAV has no %s chunk: it is damaged" % ("format" if fmt is None else "audio")
        )
    tag, channels, rate, byte_rate, block, bits = fmt
    if truncated and block:
        audio = audio[: len(audio) - len(audio) % block]
    return WavInfo(tag, channels, rate, byte_rate, block, bits, audio, truncated)


def _fmt(data, body, size):
    """The format chunk's fields, the sub-format of an extensible one resolved."""
    if size < 16:
        raise AudioFormatError("the WAV format chunk is damaged (%d bytes)" % size)
    tag, channels, rate, byte_rate, block, bits = struct.unpack("<HHIIHH", data[body : body + 16])
    if tag == WAVE_EXTENSIBLE:
        # WAVE_FORMAT_EXTENSIBLE: the real format opens the sub-format GUID at offset 24.
        if size < 40:
            raise AudioFormatError("the WAV's extended format header is damaged")
        tag = struct.unpack("<H", data[body + 24 : body + 26])[0]
    return tag, channels, rate, byte_rate, block, bits


def format_name(tag):
    """A readable name for WAV format code ``tag``."""
    return FORMAT_NAMES.get(tag, "format %d" % tag)
