"""cffi binding to libopus, in ABI mode (like :mod:`telephony.spandsp`).

Why ABI mode: ``ffi.dlopen("libopus.so.0")`` with the few declarations below
written out means nothing is compiled at install time and the Debian runtime
package ``libopus0`` is the only dependency. Encoder and decoder states are
created by libopus itself, so no struct layout is assumed; only the stable
public API of opus.h / opus_defines.h (libopus 1.x) is declared.

Nothing happens at import time: :func:`load` opens the library on first use.
A missing library raises :class:`~firmware.errors.CodecError` saying which
Debian package to install.
"""

import functools

import numpy as np

from firmware.errors import CodecError

LIBRARY = "libopus.so.0"

CDEF = """
typedef struct OpusEncoder OpusEncoder;
typedef struct OpusDecoder OpusDecoder;
OpusEncoder *opus_encoder_create(int32_t Fs, int channels, int application, int *error);
int32_t opus_encode(OpusEncoder *st, const int16_t *pcm, int frame_size,
                    unsigned char *data, int32_t max_data_bytes);
int opus_encoder_ctl(OpusEncoder *st, int request, ...);
void opus_encoder_destroy(OpusEncoder *st);
OpusDecoder *opus_decoder_create(int32_t Fs, int channels, int *error);
int opus_decode(OpusDecoder *st, const unsigned char *data, int32_t len,
                int16_t *pcm, int frame_size, int decode_fec);
void opus_decoder_destroy(OpusDecoder *st);
int opus_packet_get_nb_samples(const unsigned char *packet, int32_t len, int32_t Fs);
const char *opus_strerror(int error);
const char *opus_get_version_string(void);
"""

# opus_defines.h
APPLICATION_VOIP = 2048
APPLICATION_AUDIO = 2049
SIGNAL_VOICE = 3001
BANDWIDTH_NARROWBAND = 1101
SET_BITRATE = 4002
SET_MAX_BANDWIDTH = 4004
SET_VBR = 4006
SET_COMPLEXITY = 4010
SET_DTX = 4016
SET_VBR_CONSTRAINT = 4020
SET_SIGNAL = 4024
GET_LOOKAHEAD = 4027

MAX_PACKET_BYTES = 1500  # opus_demo's limit; far above any mono packet we make


@functools.cache
def load():
    """``(ffi, lib)`` for libopus, opened once per process.

    :raises CodecError: libopus is not installed
    """
    import cffi  # imported here so importing this module stays free

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    try:
        lib = ffi.dlopen(LIBRARY)
    except OSError as exc:
        raise CodecError(
            "cannot open %s (%s); install the Debian package libopus0 (scripts/install-deps)" % (LIBRARY, exc)
        ) from exc
    return ffi, lib


def version():
    """The libopus version string, e.g. ``'libopus 1.3.1'``."""
    ffi, lib = load()
    return ffi.string(lib.opus_get_version_string()).decode()


def _check(ffi, lib, code, what):
    if code < 0:
        raise CodecError("libopus %s failed: %s" % (what, ffi.string(lib.opus_strerror(code)).decode()))
    return code


class OpusEncoder:
    """One libopus encoder: mono int16 frames in, Opus packets out.

    :param rate: input sample rate in Hz (8000, 12000, 16000, 24000 or 48000)
    :param bitrate_bps: target bit rate in bits per second
    :param complexity: 0-10, CPU against quality
    :param vbr: variable bit rate (unconstrained) when true, else constant
    :param dtx: discontinuous transmission (tiny packets in silence)
    :param application: ``APPLICATION_VOIP`` or ``APPLICATION_AUDIO``
    :raises CodecError: libopus is missing or rejected a setting
    """

    def __init__(self, rate, bitrate_bps, complexity=10, vbr=True, dtx=False, application=APPLICATION_VOIP):
        ffi, lib = self._ffi, self._lib = load()
        err = ffi.new("int *")
        st = lib.opus_encoder_create(rate, 1, application, err)
        _check(ffi, lib, err[0], "encoder_create")
        self._st = ffi.gc(st, lib.opus_encoder_destroy)
        for request, value in (
            (SET_BITRATE, bitrate_bps),
            (SET_COMPLEXITY, complexity),
            (SET_VBR, int(vbr)),
            (SET_VBR_CONSTRAINT, 0),
            (SET_DTX, int(dtx)),
            (SET_SIGNAL, SIGNAL_VOICE),
            (SET_MAX_BANDWIDTH, BANDWIDTH_NARROWBAND),
        ):
            _check(
                ffi,
                lib,
                lib.opus_encoder_ctl(self._st, request, ffi.cast("int32_t", value)),
                "encoder_ctl(%d)" % request,
            )
        out = ffi.new("int32_t *")
        _check(ffi, lib, lib.opus_encoder_ctl(self._st, GET_LOOKAHEAD, out), "lookahead")
        self.lookahead = out[0]  # samples at `rate`: the decoder's delay
        self._buf = ffi.new("unsigned char[]", MAX_PACKET_BYTES)

    def encode(self, frame):
        """Encode one frame (int16 array of 2.5/5/10/20/40/60 ms); returns the packet bytes."""
        ffi, lib = self._ffi, self._lib
        frame = np.ascontiguousarray(frame, dtype=np.int16)
        n = lib.opus_encode(
            self._st, ffi.from_buffer("int16_t[]", frame), len(frame), self._buf, MAX_PACKET_BYTES
        )
        _check(ffi, lib, n, "encode")
        return ffi.buffer(self._buf, n)[:]


class OpusDecoder:
    """One libopus decoder: Opus packets in, mono int16 samples at ``rate`` out."""

    MAX_FRAME_S = 0.12  # the longest packet Opus allows

    def __init__(self, rate):
        ffi, lib = self._ffi, self._lib = load()
        err = ffi.new("int *")
        st = lib.opus_decoder_create(rate, 1, err)
        _check(ffi, lib, err[0], "decoder_create")
        self._st = ffi.gc(st, lib.opus_decoder_destroy)
        self._rate = rate
        self._max = int(rate * self.MAX_FRAME_S)
        self._out = np.empty(self._max, np.int16)

    def decode(self, packet):
        """Decode one packet; returns a new int16 array.

        :raises CodecError: the packet is corrupt
        """
        ffi, lib = self._ffi, self._lib
        n = lib.opus_decode(
            self._st,
            ffi.from_buffer(packet),
            len(packet),
            ffi.from_buffer("int16_t[]", self._out),
            self._max,
            0,
        )
        _check(ffi, lib, n, "decode")
        return self._out[:n].copy()

    def samples_in(self, packet):
        """How many samples :meth:`decode` gives for ``packet``, read from its table of
        contents without decoding it (an empty packet, a lost one, is concealed with the
        longest frame).

        :raises CodecError: the packet is corrupt
        """
        if not packet:
            return self._max
        ffi, lib = self._ffi, self._lib
        return _check(
            ffi,
            lib,
            lib.opus_packet_get_nb_samples(ffi.from_buffer(packet), len(packet), self._rate),
            "packet",
        )
