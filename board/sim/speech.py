"""Speech for the simulated line, made with espeak-ng.

:class:`SpeechSynth` is the timeline's audio provider: ``say(text, ...)``
returns the text spoken at 8 kHz as int16 samples. espeak-ng writes a 22 050 Hz
WAV file, which is resampled here with a low-pass at 3.6-3.9 kHz so nothing
aliases. Results are cached in memory and, with ``cache_dir``, on disk (keyed
by a hash of every argument and the espeak-ng version), so a scenario only
pays for synthesis once.

Levels are left as espeak-ng makes them; the timeline scales each utterance
to its scenario level (:func:`telephony.levels.set_active_level`).

Tests that need no real speech pass any object with the same ``say``
signature instead.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np

from telephony.errors import LinekeeperError

RATE = 8000
_CACHE_FORMAT = 1  # bump when the output for the same arguments changes


class SpeechError(LinekeeperError, RuntimeError):
    """espeak-ng is missing or failed to speak."""


class SpeechSynth:
    """Text to 8 kHz int16 speech through the ``espeak-ng`` program.

    :param cache_dir: directory for cached utterances (created on demand), or None
    :param program: the espeak-ng executable
    """

    def __init__(self, cache_dir=None, program="espeak-ng"):
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.program = program
        self._memory = {}
        self._version = None

    def say(self, text, voice="en-gb", rate_wpm=160, pitch=50):
        """``text`` spoken by espeak-ng ``voice`` at ``rate_wpm`` words/minute.

        :returns: int16 numpy array at 8000 Hz (a copy; safe to modify)
        :raises SpeechError: espeak-ng is not installed, or rejected the voice
        """
        key = (text, voice, int(rate_wpm), int(pitch))
        samples = self._memory.get(key)
        if samples is None:
            path = self._cache_path(key)
            samples = self._read_cache(path) if path else None
            if samples is None:
                samples = self._synthesise(*key)
                if path:
                    self._write_cache(path, samples)
            self._memory[key] = samples
        return samples.copy()

    # ------------------------------------------------------------ internals
    def _executable(self):
        exe = shutil.which(self.program)
        if exe is None:
            raise SpeechError(
                "%s is not installed, so the simulator cannot speak; run scripts/install-deps "
                "(it installs the Debian package espeak-ng)" % self.program
            )
        return exe

    def version(self):
        """The espeak-ng version line (part of the disk-cache key)."""
        if self._version is None:
            out = subprocess.run(
                [self._executable(), "--version"], capture_output=True, text=True, check=False
            )
            self._version = out.stdout.split("Data at")[0].strip()
        return self._version

    def _synthesise(self, text, voice, rate_wpm, pitch):
        exe = self._executable()
        with tempfile.TemporaryDirectory(prefix="linekeeper-speech-") as tmp:
            wav_path = os.path.join(tmp, "out.wav")
            # Text goes through stdin so that text starting with "-" is not an option.
            proc = subprocess.run(
                [exe, "--stdin", "-w", wav_path, "-v", voice, "-s", str(rate_wpm), "-p", str(pitch)],
                input=text.encode("utf-8"),
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0 or not os.path.exists(wav_path):
                raise SpeechError(
                    "espeak-ng failed for voice %r: %s"
                    % (
                        voice,
                        proc.stderr.decode("utf-8", "replace").strip() or "exit code %d" % proc.returncode,
                    )
                )
            with wave.open(wav_path, "rb") as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    raise SpeechError("espeak-ng wrote an unexpected WAV format: %r" % (w.getparams(),))
                rate = w.getframerate()
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return resample(x, rate, RATE)

    def _cache_path(self, key):
        if self.cache_dir is None:
            return None
        h = hashlib.sha256(repr((_CACHE_FORMAT, self.version()) + key).encode("utf-8"))
        return os.path.join(self.cache_dir, h.hexdigest()[:32] + ".s16")

    @staticmethod
    def _read_cache(path):
        try:
            with open(path, "rb") as f:
                return np.frombuffer(f.read(), dtype="<i2").astype(np.int16)
        except FileNotFoundError:
            return None

    @staticmethod
    def _write_cache(path, samples):
        # Temp file + rename: a crash never leaves a truncated utterance behind.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(samples.astype("<i2").tobytes())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def resample(x, rate_in, rate_out, passband_hz=3600.0, stopband_hz=3900.0):
    """Resample int16 ``x`` by FFT, with a raised-cosine low-pass between the two edges.

    Zero padding keeps the FFT's wrap-around away from the signal. Returns int16.
    """
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.int16).copy()
    x = np.asarray(x, dtype=np.float64)
    n_out = int(round(len(x) * rate_out / rate_in))
    pad = rate_in // 10
    padded = np.concatenate([x, np.zeros(pad)])
    spectrum = np.fft.rfft(padded)
    freqs = np.fft.rfftfreq(len(padded), 1.0 / rate_in)
    edge = np.clip((freqs - passband_hz) / (stopband_hz - passband_hz), 0.0, 1.0)
    spectrum *= 0.5 * (1 + np.cos(np.pi * edge))
    m = int(round(len(padded) * rate_out / rate_in))
    kept = spectrum[: m // 2 + 1]
    y = np.fft.irfft(kept, m) * (m / len(padded))
    return np.clip(np.rint(y[:n_out]), -32768, 32767).astype(np.int16)
