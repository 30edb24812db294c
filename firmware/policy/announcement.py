"""The consent announcement's audio: an uploaded WAV, checked, or the default made by espeak-ng.

:func:`validate_announcement_wav` is the upload check (the web page's and
the box's): it parses the RIFF structure strictly
(:func:`firmware.wavfile.parse_wav`), so a header that lies about the length
of the file or of its audio is caught rather than read as far as it goes,
converts any PCM WAV (8 to 32-bit integer or 32-bit float, any number of
channels, 8 to 48 kHz) to mono 8 kHz int16 and refuses, with a message
saying what to do, anything that is not a WAV, compressed, too large (> 5
MB), too short (< 1 s: a click or the wrong file, which would stand as the
notice), too long (> 30 s), silent or too quiet (active level below -35 dBm0, so
callers could not hear it over the line).

:class:`Announcements` gives the samples to play: the uploaded file
(``DATA_DIR/announcements/NAME.wav``, checked again when loaded: the card
may have changed under it) or, without one, the configured text spoken by
espeak-ng, made the first time it is needed and cached beside the uploads as
``tts-<hash>.wav``. The cache is not secret (it is the notice every caller
hears); it is written atomically, 0600, like everything in the data dir. A
cache that cannot be written (a full card) is logged and the samples made in
memory are played all the same: the card-full alarms say the rest.
"""

import hashlib
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading

import numpy as np

from board.inputfile import read_input_file
from firmware.storage.fsutil import atomic_write, make_private_dir
from telephony import countries
from telephony.levels import active_level_dbm0, set_active_level

from ..errors import AudioFormatError, InputFileError, LinekeeperError
from ..wavfile import WAVE_FLOAT, WAVE_PCM, format_name, parse_wav

log = logging.getLogger(__name__)

RATE = 8000
MAX_BYTES = 5 * 1024 * 1024
MAX_SECONDS = 30.0
MIN_SECONDS = 1.0  # the shortest notice a caller can take in ("This call is recorded.")
MIN_ACTIVE_DBM0 = -35.0
RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_CHANNELS = 8
DIR_NAME = "announcements"
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.wav")  # an uploaded announcement's name


class AnnouncementError(LinekeeperError, RuntimeError):
    """The announcement cannot be given: its file is missing or invalid, or TTS failed."""


# ------------------------------------------------------------------ checking an upload
def validate_announcement_wav(data):
    """The announcement in ``data`` (a WAV file's bytes) as mono int16 samples at 8 kHz.

    :raises AudioFormatError: saying what is wrong with the file and what to do
    """
    if len(data) > MAX_BYTES:
        raise AudioFormatError(
            "the file is %.1f MB; an announcement file may be at most 5 MB: save it as mono "
            "at 8000 Hz (30 s of it is under 0.5 MB)" % (len(data) / 1e6)
        )
    if not data:  # a file of nothing (a save that failed), which is not "not a WAV file"
        raise AudioFormatError(
            "the file is empty (0 bytes): save the announcement as WAV again and choose that"
        )
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(
            "this is not a WAV file: save the announcement as WAV (16-bit PCM, mono, 8 kHz is best)"
        )
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 != len(data) and riff_size + 9 != len(data):
        raise AudioFormatError(
            "the WAV header says the file is %d bytes but it is %d: the file "
            "is cut short or damaged; save it again" % (riff_size + 8, len(data))
        )
    try:
        info = parse_wav(data)
    except AudioFormatError as exc:
        raise AudioFormatError("%s; save it again" % exc) from None
    tag, channels, rate, block, bits, audio = (
        info.tag,
        info.channels,
        info.rate,
        info.block,
        info.bits,
        info.audio,
    )
    if tag not in (WAVE_PCM, WAVE_FLOAT):
        raise AudioFormatError(
            "the WAV holds %s audio; save it as uncompressed PCM (16-bit)" % format_name(tag)
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(
            "the WAV has %d channels; at most %d are taken: save it as mono" % (channels, MAX_CHANNELS)
        )
    if rate not in RATES:
        raise AudioFormatError(
            "a sample rate of %d Hz is not supported: save it at %d Hz (best), or %s or %d Hz"
            % (rate, RATES[0], ", ".join(str(r) for r in RATES[1:-1]), RATES[-1])
        )
    width = bits // 8
    if bits not in (8, 16, 24, 32) or (tag == WAVE_FLOAT and bits != 32) or block != channels * width:
        raise AudioFormatError(
            "%d-bit %s samples are not supported; save as 16-bit PCM"
            % (bits, "float" if tag == WAVE_FLOAT else "integer")
        )
    if len(audio) % block:
        raise AudioFormatError(
            "the audio is not a whole number of samples: the file is damaged; save it again"
        )
    if not audio:
        raise AudioFormatError("the WAV file holds no audio")
    seconds = len(audio) / block / rate
    if seconds < MIN_SECONDS:
        raise AudioFormatError(
            "the announcement lasts %.1f s: too short to tell a caller anything (at least %d s): "
            "check it is the right file" % (seconds, MIN_SECONDS)
        )
    if seconds > MAX_SECONDS:
        raise AudioFormatError(
            "the announcement lasts %.1f s; keep it to at most %d s" % (seconds, MAX_SECONDS)
        )
    samples = _to_mono_8k(audio, tag, channels, rate, width)
    level = active_level_dbm0(samples)
    if level < MIN_ACTIVE_DBM0:
        raise AudioFormatError(
            "the announcement is too quiet (%s; at least %d dBm0 is "
            "needed to be heard on the line): record it louder or normalise it"
            % ("it is silent" if math.isinf(level) else "%.1f dBm0" % level, MIN_ACTIVE_DBM0)
        )
    return samples


def _to_mono_8k(audio, tag, channels, rate, width):
    if tag == WAVE_FLOAT:
        x = np.frombuffer(audio, "<f4").astype(np.float64) * 32767.0
    elif width == 1:
        x = (np.frombuffer(audio, np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        x = np.frombuffer(audio, "<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(audio, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / 256.0).astype(np.float64)
    else:
        x = np.frombuffer(audio, "<i4").astype(np.float64) / 65536.0
    if not np.all(np.isfinite(x)):
        raise AudioFormatError("the WAV's float samples include NaN or infinity: it is damaged")
    x = x.reshape(-1, channels).mean(axis=1)
    samples = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    if rate != RATE:
        from firmware.dsp.analyze import resample

        samples = resample(samples, rate)
    return samples


def wav_bytes(samples, rate=RATE):
    """A mono 16-bit PCM WAV file of ``samples``."""
    body = np.asarray(samples, dtype="<i2").tobytes()
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(body))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )


# ------------------------------------------------------------------ a test call
class TestCallRefused(LinekeeperError, ValueError):
    """The line's state forbids a test call now (:func:`test_call_refusal` says why); over
    the control socket its ``kind`` is the class's name."""


def test_call_refusal(line, state, number):
    """Why the announcement may not be played into ``line`` as a test now, or None: it may.

    The HAT plays into the line's pair, which only someone off-hook hears: the test
    is for a handset lifted on the line with nothing dialled yet (the installer's,
    hearing the dial tone). On an idle line nobody would hear it; into a ringing
    line, a call or a number being dialled it would reach a caller.

    :param state: the line's state (:data:`firmware.calls.supervisor.STATES`; ``unknown``:
        the recorder is not answering, :class:`web.remote.RemoteStatus`)
    :param number: what has been dialled on the line's call so far (None or "": nothing)
    """
    if state == "unknown":  # not a call: nobody can tell what the line is doing
        return (
            "the recorder is not answering, so the state of line %d is not known: try again "
            "when the dashboard shows the lines" % line
        )
    if state == "fault":
        return "line %d has a fault: nothing can be played into it" % line
    if state == "idle":
        return (
            "nobody is off-hook on line %d, so nobody would hear it: lift a handset on the line "
            "and play the announcement while you hear the dial tone" % line
        )
    if state == "dialling" and not number:
        return None
    return "line %d is in a call: try again when it is free" % line


# ------------------------------------------------------------------ the box's announcement
def announcements_dir(data_dir):
    return os.path.join(os.fspath(data_dir), DIR_NAME)


def store_announcement(data_dir, name, data):
    """Check ``data`` (an uploaded WAV) and keep it as ``DATA_DIR/announcements/NAME``.

    Returns the samples. Nothing is written when the file is refused.

    :raises AudioFormatError: the file is not acceptable (see :func:`validate_announcement_wav`)
    :raises ValueError: ``name`` is not a plain ``.wav`` file name
    """
    if not FILE_NAME.fullmatch(name or "") or name.startswith("tts-"):
        raise ValueError(
            "an announcement file name is letters, digits, '.', '_' or '-' "
            "ending in .wav (not starting tts-), not %r" % (name,)
        )
    samples = validate_announcement_wav(data)
    make_private_dir(announcements_dir(data_dir))
    # What is kept is what was checked, as played: mono 16-bit 8 kHz.
    atomic_write(os.path.join(announcements_dir(data_dir), name), wav_bytes(samples))
    return samples


class Announcements:
    """The announcement to play, for the configured :class:`~firmware.policy.settings.Announcement`.

    :param data_dir: the box's data directory
    :param country: picks the default voice (en-gb, en-us)
    :param program: the espeak-ng executable
    """

    def __init__(self, data_dir, country="uk", program="espeak-ng"):
        self.data_dir = os.fspath(data_dir)
        self.country = country
        self.program = program
        self._lock = threading.Lock()
        self._cache = {}

    def samples(self, settings):
        """The announcement's int16 samples at 8 kHz.

        :raises AnnouncementError: the uploaded file is missing or invalid, or
            espeak-ng failed or could not be started (the message says which)
        """
        key = (settings.file, settings.text, settings.voice, settings.level_dbm0, self.country)
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = self._load(settings.file) if settings.file else self._spoken(settings)
                except OSError as exc:
                    # espeak-ng not started (no memory to fork it, no room for its file): a
                    # reason like any other, for the recorder (which starts and raises
                    # announcement_unplayable) as for the pages, never an escaped OSError.
                    raise AnnouncementError(
                        "the announcement cannot be made: %s" % (exc.strerror or exc)
                    ) from None
            return self._cache[key]

    def forget(self):
        """Drop what is cached in memory (the files may have changed)."""
        with self._lock:
            self._cache.clear()

    def _load(self, name):
        path = os.path.join(announcements_dir(self.data_dir), name)
        try:
            data = read_input_file(path, MAX_BYTES)  # only a regular file (not a FIFO)
        except InputFileError as exc:
            raise AnnouncementError(
                "the announcement file %s cannot be read (%s): upload it again" % (name, exc)
            ) from None
        try:
            return validate_announcement_wav(data)
        except AudioFormatError as exc:
            raise AnnouncementError("the announcement file %s is not usable: %s" % (name, exc)) from None

    def _spoken(self, settings):
        voice = settings.voice or countries.country(self.country).voice
        digest = hashlib.sha256(repr((1, settings.text, voice, settings.level_dbm0)).encode())
        name = "tts-%s.wav" % digest.hexdigest()[:16]
        path = os.path.join(announcements_dir(self.data_dir), name)
        if os.path.exists(path):
            try:
                return self._load(os.path.basename(path))
            except AnnouncementError:
                pass  # a damaged cache is made again
        samples = set_active_level(self._espeak(settings.text, voice), settings.level_dbm0)
        try:
            make_private_dir(announcements_dir(self.data_dir))
            atomic_write(path, wav_bytes(samples))
        except OSError as exc:
            # The samples are made: the caller hears them. Only the cache is lost (made
            # again next time); a full card says so in its own alarms.
            log.warning("the spoken announcement's cache %s was not written: %s", path, exc)
        return samples

    def _espeak(self, text, voice):
        exe = shutil.which(self.program)
        if exe is None:
            raise AnnouncementError(
                "%s is not installed, so the default announcement cannot "
                "be made: install it, or upload an announcement" % self.program
            )
        with tempfile.TemporaryDirectory(prefix="linekeeper-tts-") as tmp:
            out = os.path.join(tmp, "a.wav")
            proc = subprocess.run(
                [exe, "--stdin", "-w", out, "-v", voice, "-s", "150"],
                input=text.encode("utf-8"),
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0 or not os.path.exists(out):
                raise AnnouncementError(
                    "espeak-ng could not speak the announcement (voice %r): %s"
                    % (
                        voice,
                        proc.stderr.decode("utf-8", "replace").strip() or "exit status %d" % proc.returncode,
                    )
                )
            with open(out, "rb") as f:
                data = f.read()
        # espeak-ng writes a streaming header (sizes 0x7fffffff): read its audio as it is.
        data = _fix_stream_header(data)
        try:
            return validate_announcement_wav(data)
        except AudioFormatError as exc:
            raise AnnouncementError("espeak-ng made an unusable announcement: %s" % exc) from None


def _fix_stream_header(data):
    """Put the real sizes into a WAV written as a stream (sizes unknown when it started)."""
    if len(data) < 44 or data[:4] != b"RIFF":
        return data
    out = bytearray(data)
    out[4:8] = struct.pack("<I", len(data) - 8)
    pos = 12
    while pos + 8 <= len(out):
        cid = bytes(out[pos : pos + 4])
        size = struct.unpack("<I", out[pos + 4 : pos + 8])[0]
        if cid == b"data":
            out[pos + 4 : pos + 8] = struct.pack("<I", len(out) - pos - 8)
            break
        pos += 8 + size + (size & 1)
    return bytes(out)
