"""Streaming voice encoder: int16 samples in, a playable byte stream out.

Profiles (:data:`PROFILES`):

``voice`` (default)
    Ogg/Opus, narrow-band SILK at complexity 1, 11.4 kbit/s VBR with DTX in
    120 ms packets: on the espeak-ng speech set (continuous speech) 3.98 MB
    per hour with container and encryption (251 hours per GB; a conversation,
    with its pauses, takes far less), PESQ MOS-LQO 3.39 (worst voice 2.99,
    on the 3.0 target's edge: docs/voice-profile.md), and ~5.3 CPU-s per
    hour of audio for the encoder on the dev machine.
    Complexity 10 at 9 kbit/s in 60 ms packets (the earlier setting) scores
    PESQ 3.47 (worst 3.22) at 308 h/GB but costs ~23-26 CPU-s per hour,
    more than the whole chain's budget of 10 (``bench/recording.py`` has the
    full trade-off table): lower complexity needs more bits for the same
    quality; 120 ms packets win back the container overhead, and the SILK
    rate steps (one byte per 60 ms, 133 bit/s) so that the next step up,
    11.5 kbit/s, falls under 250 h/GB and the next down under PESQ 3.0.
``high``
    Ogg/Opus at 24 kbit/s in 20 ms packets.
``alaw``, ``pcm``
    G.711 A-law or 16-bit PCM in a WAV stream.

Every profile's output can be cut at any :meth:`Encoder.flush` and the prefix
is a valid file of its kind (for Ogg/Opus: the pages so far, each with the
right granule position, so players show the duration reached; for WAV: the
header says "length unknown", the streaming convention). Chromium plays all
of them natively. :func:`decode` turns any such prefix back into samples;
:class:`StreamDecoder` does so for a stream given in pieces, holding none of it whole.

Opus goes through libopus (:mod:`.libopus`) with our own page writer
(:mod:`.ogg`); ``bench/codec.py`` measured this against soundfile's bundled
libsndfile and explains the choice.
"""

import dataclasses
import functools
import os
import struct

import numpy as np

from firmware.errors import AudioFormatError, ConfigError
from firmware.recording import libopus, ogg


@dataclasses.dataclass(frozen=True)
class Profile:
    """How one profile encodes. ``container`` is ``"ogg"`` (Opus) or ``"wav"``."""

    name: str
    container: str
    bitrate_bps: int = 0
    frame_ms: int = 20
    complexity: int = 10
    dtx: bool = False
    wav_format: int = 1  # WAVE_FORMAT_PCM; 6 is WAVE_FORMAT_ALAW


PROFILES = {
    "voice": Profile("voice", "ogg", bitrate_bps=11400, frame_ms=120, complexity=1, dtx=True),
    "high": Profile("high", "ogg", bitrate_bps=24000, frame_ms=20, complexity=10),
    "alaw": Profile("alaw", "wav", wav_format=6),
    "pcm": Profile("pcm", "wav", wav_format=1),
}
DEFAULT_PROFILE = "voice"
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def get_profile(profile):
    """The :class:`Profile` for a name (or a Profile, returned as is).

    :raises ConfigError: unknown profile name
    """
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ConfigError(
            "unknown recording profile %r; choose one of %s" % (profile, ", ".join(PROFILES)), field="profile"
        ) from None


def mime_type(profile):
    """The MIME type a browser needs to play this profile's output."""
    return 'audio/ogg; codecs="opus"' if get_profile(profile).container == "ogg" else "audio/wav"


def file_extension(profile):
    """The file name extension (with the dot) for this profile's output."""
    return ".ogg" if get_profile(profile).container == "ogg" else ".wav"


class Encoder:
    """Streaming encoder for one recording.

    :param profile: a name from :data:`PROFILES` (or a :class:`Profile`)
    :param rate: sample rate of the input in Hz (phone lines: 8000)
    :raises ConfigError: unknown profile, or a rate Opus does not take
    :raises CodecError: libopus is missing

    ``encode`` and ``flush`` return bytes to append to the output; once
    ``finish`` has been called the encoder refuses more input.
    """

    def __init__(self, profile=DEFAULT_PROFILE, rate=8000):
        self.profile = get_profile(profile)
        self.rate = int(rate)
        if self.profile.container == "ogg":
            self._stream = _OpusStream(self.profile, self.rate)
        else:
            self._stream = _WavStream(self.profile, self.rate)
        self.frame_samples = self._stream.frame_samples
        self.duration_samples = 0  # samples given to encode() so far
        self.finished = False

    def encode(self, samples):
        """Add mono int16 ``samples``; return whatever complete output is ready (maybe ``b""``)."""
        if self.finished:
            raise ValueError("encode() after finish()")
        samples = np.asarray(samples)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError("samples must be a 1-D int16 array, not %s %s" % (samples.ndim, samples.dtype))
        self.duration_samples += len(samples)
        return self._stream.encode(samples)

    def flush(self):
        """Return everything encodable now, so all output so far is a decodable prefix.

        Opus encodes whole frames only: up to ``frame_samples - 1`` samples
        stay buffered for the next frame (see :attr:`buffered_samples`).
        """
        return self._stream.flush()

    @property
    def buffered_samples(self):
        """Samples taken by ``encode`` that are not yet in flushed output."""
        return self._stream.buffered

    def finish(self):
        """End the stream (pads the last frame, trims it by granule position); return the rest."""
        if self.finished:
            return b""
        self.finished = True
        return self._stream.finish(self.duration_samples)


class _OpusStream:
    def __init__(self, profile, rate):
        if rate not in OPUS_RATES:
            raise ConfigError("Opus cannot take %d Hz; use one of %s" % (rate, OPUS_RATES), field="rate")
        self.frame_samples = rate * profile.frame_ms // 1000
        self._to48k = 48000 // rate
        self._enc = libopus.OpusEncoder(rate, profile.bitrate_bps, profile.complexity, dtx=profile.dtx)
        self._lookahead = self._enc.lookahead
        # The frame being filled: capture hands 20 ms at a time, a frame is up to 120 ms.
        # Filled in place (libopus copies what it reads), not concatenated per piece.
        self._frame = np.zeros(self.frame_samples, np.int16)
        self._filled = 0
        self._granule = 0  # 48 kHz samples in the packets so far
        self._pages = ogg.PageWriter(serial=int.from_bytes(os.urandom(4), "little"))
        head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, self._lookahead * self._to48k, rate, 0, 0)
        vendor = libopus.version().encode()
        tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
        self._pages.add_page(head, 0)
        self._pages.add_page(tags, 0)

    @property
    def buffered(self):
        return self._filled

    def encode(self, samples):
        n, pos, total = self.frame_samples, 0, len(samples)
        while pos < total:
            if not self._filled and total - pos >= n:  # a whole frame in the input: no copy
                self._add(self._enc.encode(samples[pos : pos + n]))
                pos += n
                continue
            take = min(n - self._filled, total - pos)
            self._frame[self._filled : self._filled + take] = samples[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == n:
                self._add(self._enc.encode(self._frame))
                self._filled = 0
        return self._pages.pages()

    def _add(self, packet, granule=None):
        self._granule += self.frame_samples * self._to48k
        self._pages.add(packet, self._granule if granule is None else granule)

    def flush(self):
        return self._pages.flush()

    def finish(self, total):
        # Enough frames that the decoder's delay (the pre-skip) is covered too;
        # the last page's granule position then trims the padding away.
        n = self.frame_samples
        need = total + self._lookahead - (self._granule // self._to48k)
        frames = max(1, -(-need // n))
        pad = np.zeros(frames * n, np.int16)
        pad[: self._filled] = self._frame[: self._filled]
        self._filled = 0
        end = (total + self._lookahead) * self._to48k
        for i in range(frames):
            self._add(self._enc.encode(pad[i * n : (i + 1) * n]), end if i == frames - 1 else None)
        return self._pages.flush(eos=True)


class _WavStream:
    frame_samples = 1
    buffered = 0

    def __init__(self, profile, rate):
        self._alaw = profile.wav_format == 6
        width = 1 if self._alaw else 2
        fmt = struct.pack("<HHIIHH", profile.wav_format, 1, rate, rate * width, width, 8 * width)
        if self._alaw:
            fmt += struct.pack("<H", 0)  # cbSize: non-PCM formats carry it
        # 0xFFFFFFFF sizes: "length unknown", how streaming WAV writers mark it.
        self._header = (
            b"RIFF"
            + struct.pack("<I", 0xFFFFFFFF)
            + b"WAVE"
            + b"fmt "
            + struct.pack("<I", len(fmt))
            + fmt
            + b"data"
            + struct.pack("<I", 0xFFFFFFFF)
        )

    def _take_header(self):
        header, self._header = self._header, b""
        return header

    def encode(self, samples):
        body = alaw_encode(samples) if self._alaw else samples.astype("<i2").tobytes()
        return self._take_header() + body

    def flush(self):
        return self._take_header()

    def finish(self, total):
        return self._take_header()


# ------------------------------------------------------------------ decoding
def decode(data, profile):
    """Samples back from an :class:`Encoder`'s output, or from a prefix of it cut at a flush.

    :returns: mono int16 array at the rate the stream was made at
    :raises AudioFormatError: the data is not in this profile's format
    """
    return decode_with_rate(data, profile)[0]


def decode_with_rate(data, profile):
    """Like :func:`decode`, returns ``(samples, rate)``."""
    dec = StreamDecoder(profile)
    parts = dec.feed(data) + dec.finish()
    pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    first, n = dec.span()
    return pcm[first : first + n].copy(), dec.rate


class StreamDecoder:
    """:func:`decode` over a stream given in pieces (a recording's chunks as they are
    opened), holding only what is not yet whole (an Ogg page, a WAV header): memory
    bounded whatever the length.

    :meth:`feed` and :meth:`finish` give the samples decoded (int16 arrays); of all of
    them, those :func:`decode` gives are :meth:`span` (known once finished: an Ogg/Opus
    stream's end is its last page's granule position). ``count_only``: nothing is decoded
    (the arrays are not made; an Opus packet's length is read from its table of
    contents), for the span alone, quickly.

    :raises AudioFormatError: the data is not in this profile's format
    """

    def __init__(self, profile, count_only=False):
        self._ogg = get_profile(profile).container == "ogg"
        self._count_only = count_only
        self.rate = None
        self.bytes = 0  # given to feed
        self.samples = 0  # decoded (or counted)
        self._first = 0
        self._end = None
        if self._ogg:
            self._pages, self._packets, self._partial = ogg.PageReader(), 0, b""
            self._decoder, self._granule = None, -1
        else:
            self._head, self._fmt, self._left, self._odd = bytearray(), None, None, b""

    def feed(self, data):
        """The samples ``data`` completes (a list of int16 arrays; empty when counting)."""
        self.bytes += len(data)
        out = self._feed_ogg(data) if self._ogg else self._feed_wav(data)
        self.samples += sum(out) if self._count_only else sum(len(p) for p in out)
        return [] if self._count_only else out

    def finish(self):
        """The end of the stream: the samples left (none: a torn last page or odd byte is
        not audio), and the checks only the whole can pass."""
        if self._ogg:
            if self._packets < 2:
                raise AudioFormatError("not an Ogg/Opus stream (no OpusHead)")
            self._end = max(0, self._granule) // (48000 // self.rate)
        elif self._left is None:
            if len(self._head) < 12 or self._head[:4] != b"RIFF" or self._head[8:12] != b"WAVE":
                raise AudioFormatError("not a WAV stream")
            raise AudioFormatError("WAV stream has no data chunk")
        return []

    def span(self):
        """``(first, n)``: the stream's audio is ``n`` samples from the ``first`` decoded
        (Opus: the decoder's delay skipped, the last frame's padding cut)."""
        end = self.samples if self._end is None else min(self._end, self.samples)
        first = min(self._first, self.samples)
        return first, max(0, end - first)

    def _feed_ogg(self, data):
        out = []
        for _flags, granule, _serial, _seq, parts, continues in self._pages.feed(data):
            if self._partial:
                parts = [self._partial + parts[0]] + parts[1:]
            self._partial = parts.pop() if continues else b""
            for packet in parts:
                self._packet(packet, out)
            if granule != -1:
                self._granule = granule
        return out

    def _packet(self, packet, out):
        self._packets += 1
        if self._packets == 1:
            if not packet.startswith(b"OpusHead"):
                raise AudioFormatError("not an Ogg/Opus stream (no OpusHead)")
            _magic, _ver, channels, pre_skip, rate, _gain, _family = struct.unpack_from("<8sBBHIhB", packet)
            if channels != 1:
                raise AudioFormatError("expected mono Opus, found %d channels" % channels)
            self.rate = rate if rate in OPUS_RATES else 48000
            self._first = pre_skip // (48000 // self.rate)
            self._decoder = libopus.OpusDecoder(self.rate)
            return
        if self._packets == 2:
            return  # OpusTags
        try:
            if self._count_only:
                out.append(self._decoder.samples_in(packet))
            else:
                out.append(self._decoder.decode(packet))
        except Exception as exc:
            raise AudioFormatError("corrupt Opus packet: %s" % exc) from exc

    def _feed_wav(self, data):
        if self._left is None:
            self._head += data
            body = self._wav_header()
            if body is None:
                return []
            data = body
        take = bytes(data[: self._left])
        self._left -= len(take)
        if self._fmt[0] == 6:
            return [len(take)] if self._count_only else [alaw_decode(take)]
        take, self._odd = self._odd + take, b""
        if len(take) % 2:
            take, self._odd = take[:-1], take[-1:]
        if self._count_only:
            return [len(take) // 2]
        return [np.frombuffer(take, "<i2").astype(np.int16)]

    def _wav_header(self):
        """The bytes after the data chunk's header once it is here (else None)."""
        head = self._head
        if len(head) < 12:
            return None
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise AudioFormatError("not a WAV stream")
        pos = 12
        while pos + 8 <= len(head):
            cid, size = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
            pos += 8
            if cid == b"fmt ":
                if pos + 16 > len(head):
                    return None
                self._fmt = struct.unpack_from("<HHIIHH", head, pos)
            elif cid == b"data":
                if self._fmt is None:
                    raise AudioFormatError("WAV data before its fmt chunk")
                tag, channels, rate, _byte_rate, _align, bits = self._fmt
                if channels != 1 or (tag, bits) not in ((1, 16), (6, 8)):
                    raise AudioFormatError(
                        "unsupported WAV format %d/%d bits/%d channels" % (tag, bits, channels)
                    )
                self.rate, self._left = rate, size  # a size past the end means "to the end"
                body, self._head = bytes(head[pos:]), None
                return body
            pos += size + (size & 1)
        return None


def finalize(data, profile):
    """A standalone file from a (possibly partial) stream: WAV sizes filled in; Ogg as is."""
    data = bytes(data)
    if get_profile(profile).container == "ogg":
        return data
    samples, rate = decode_with_rate(data, profile)
    out = Encoder(get_profile(profile), rate)
    body = out.encode(samples) + out.finish()
    at = body.index(b"data") + 4
    data_size = len(body) - at - 4
    body += b"\0" * (data_size & 1)  # RIFF pads odd-sized chunks
    return (
        body[:4]
        + struct.pack("<I", len(body) - 8)
        + body[8:at]
        + struct.pack("<I", data_size)
        + body[at + 4 :]
    )


# ------------------------------------------------------------ G.711 A-law
@functools.cache
def _alaw_tables():
    """(int16 -> A-law byte over all 65536 inputs, A-law byte -> int16); ITU-T G.711."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    to_linear = np.where(a & 0x80, t, -t).astype(np.int16)

    x = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return (aval ^ mask).astype(np.uint8), to_linear


def alaw_encode(samples):
    """int16 samples to G.711 A-law bytes."""
    table = _alaw_tables()[0]
    return table[np.asarray(samples, np.int16).view(np.uint16)].tobytes()


def alaw_decode(data):
    """G.711 A-law bytes to int16 samples."""
    return _alaw_tables()[1][np.frombuffer(data, np.uint8)]
