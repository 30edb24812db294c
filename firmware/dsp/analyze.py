"""``linekeeper analyze FILE.wav``: find the line signalling in a recording.

Reads a mono 16-bit PCM WAV (8000 Hz; other rates are resampled), runs one
:class:`~firmware.dsp.detector.LineDsp` over it and prints the events in time
order.  With ``--json`` each event is one JSON object per line::

    {"t": 1.234, "event": "dtmf", "digit": "5", "duration_ms": 50}
    {"t": 1.9, "event": "alert_tone"}
    {"t": 2.0, "event": "caller_id", "standard": "v23", "number": "01632960123",
     "name": "ACME LTD", "datetime": "03020900", "absence": null}
    {"t": 2.1, "event": "caller_id_error", "reason": "checksum", "standard": "v23"}
    {"t": 9.0, "event": "tone", "name": "busy"}

``t`` is seconds from the start of the file to the start of the event,
rounded to the millisecond.  ``standard`` of a caller ID is ``v23``,
``bell202`` or ``dtmf``; ``absence`` is ``null``, ``"private"`` or
``"unavailable"``; a message-waiting indication adds ``"message_waiting"``.
Tone names: dial, busy, unobtainable (UK), ringback, congestion.
Caller-ID error reasons: checksum, framing, structure.

``--standard`` picks the caller-ID standards as for a line's country: uk and
etsi (V.23 FSK + DTMF), us (Bell 202 FSK + DTMF), dtmf (DTMF only); default uk.

The hook state is unknown offline, so DTMF is taken as caller ID when it forms
a complete caller-ID message (``A…C``, ``A…#``, ``D…C``, ``<number>#``,
absence codes) and nothing but caller-ID signals (FSK caller ID, alert tone)
came before it in the file; any other DTMF, and all DTMF after a call-progress
tone or after DTMF that was not caller ID, is reported as dialled digits.

Exit status: 0 after analysing, 2 with a one-line message on stderr when the
file is missing, unreadable, not a regular file, not a WAV file, damaged, not
16-bit PCM, not mono, sampled at less than 8 kHz or more than 192 kHz, longer
than 4 hours or larger than 256 MiB.
"""

import argparse
import json
import os
import sys

from board.inputfile import printable_name, read_input_file
from firmware.errors import AudioFormatError, InputFileError
from firmware.wavfile import WAVE_PCM, format_name, parse_wav
from telephony import countries

SAMPLE_RATE = 8000
MIN_RATE = 8000  # below this the signalling (up to 3.4 kHz) is not in the file
MAX_RATE = 192000
MAX_SECONDS = 4 * 3600  # a long call; more is not one recording of a line
MAX_BYTES = 256 << 20  # 4 h at 16 kHz, or 45 min at 48 kHz
FEED_SAMPLES = 8000


def add_arguments(parser):
    """Add the ``analyze`` command's arguments to an argparse parser."""
    parser.add_argument("file", metavar="FILE.wav", help="mono 16-bit PCM WAV recording of a line")
    parser.add_argument(
        "--standard",
        choices=countries.profiles(),
        default="uk",
        help="caller-ID standards to look for, as on a line of that country: "
        + "; ".join(
            "%s (%s)" % (code, " + ".join(countries.country(code).cid_standards))
            for code in countries.profiles()
        )
        + "; default uk",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")


def run(args):
    """Analyse ``args.file``; print the events; return the exit status (0, or 2 for a bad file)."""
    try:
        samples = read_wav(args.file)
    except AudioFormatError as exc:
        print("linekeeper analyze: %s" % exc, file=sys.stderr)
        return 2
    events = analyse(samples, args.standard)
    out = sys.stdout
    try:
        if args.json:
            for event in events:
                out.write(json.dumps(event.to_json()) + "\n")
        else:
            out.write(format_table(events))
        out.flush()
    except BrokenPipeError:
        # The reader went away (``... | head``): not an error.  Point stdout at
        # /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return 0


def analyse(samples, standard="uk"):
    """Run the detector over int16 ``samples`` (8000 Hz); return the events in time order."""
    # imported here: loading libspandsp is work, not for import time
    from firmware.dsp.detector import LineDsp

    events = []
    dsp = LineDsp(standard, on_event=events.append, off_hook=None)
    for start in range(0, len(samples), FEED_SAMPLES):
        dsp.feed(samples[start : start + FEED_SAMPLES], start * 1_000_000 // SAMPLE_RATE)
    dsp.flush()
    return sorted(events, key=lambda e: e.t_us)


def format_table(events):
    """The events as a readable table (one line each)."""
    if not events:
        return "no signalling found\n"
    lines = ["%9s  %-15s  %s" % ("t (s)", "event", "details")]
    for event in events:
        d = event.to_json()
        t, kind = d.pop("t"), d.pop("event")
        details = "  ".join("%s=%s" % (k, v) for k, v in d.items() if v is not None)
        lines.append("%9.3f  %-15s  %s" % (t, kind, details))
    return "\n".join(lines) + "\n"


def read_wav(path):
    """Read a mono 16-bit PCM WAV as int16 samples at 8000 Hz (resampled if needed).

    Only a regular file is read, of at most :data:`MAX_BYTES`, at
    :data:`MIN_RATE` to :data:`MAX_RATE` Hz and at most :data:`MAX_SECONDS`
    long. An audio chunk cut short (a recording interrupted by a power cut)
    is read as far as it goes.

    :raises AudioFormatError: naming the file and the problem
    """
    import numpy as np  # here, not at import: `linekeeper`'s every command builds this parser

    name = printable_name(path)
    try:
        data = read_input_file(path, MAX_BYTES)
    except InputFileError as exc:
        raise AudioFormatError("%s: %s" % (name, exc)) from None
    try:
        wav = parse_wav(data, allow_truncated=True)
    except AudioFormatError as exc:
        raise AudioFormatError("%s: not a PCM WAV file (%s)" % (name, exc)) from None
    if wav.tag != WAVE_PCM:
        raise AudioFormatError(
            "%s: %s audio; need 16-bit PCM (convert with: sox %s -e signed "
            "-b 16 out.wav)" % (name, format_name(wav.tag), name)
        )
    if wav.bits != 16:
        raise AudioFormatError(
            "%s: %d-bit samples; need 16-bit PCM (convert with: sox %s -b 16 "
            "out.wav)" % (name, wav.bits, name)
        )
    if wav.channels != 1:
        raise AudioFormatError(
            "%s: %d channels; need mono (convert with: sox %s -c 1 out.wav)" % (name, wav.channels, name)
        )
    if not MIN_RATE <= wav.rate <= MAX_RATE:
        raise AudioFormatError(
            "%s: a sample rate of %d Hz is not supported (%d to %d Hz)" % (name, wav.rate, MIN_RATE, MAX_RATE)
        )
    if wav.block != 2:
        raise AudioFormatError(
            "%s: not a PCM WAV file (its format chunk says %d bytes per sample, not 2)" % (name, wav.block)
        )
    if len(wav.audio) / 2 / wav.rate > MAX_SECONDS:
        raise AudioFormatError(
            "%s: %.0f s of audio; at most %d s (%d hours) are analysed"
            % (name, len(wav.audio) / 2 / wav.rate, MAX_SECONDS, MAX_SECONDS // 3600)
        )
    samples = np.frombuffer(wav.audio[: len(wav.audio) - len(wav.audio) % 2], dtype="<i2")
    samples = samples.astype(np.int16)
    if wav.rate != SAMPLE_RATE:
        samples = resample(samples, wav.rate)
    return samples


def resample(samples, rate):
    """Resample int16 ``samples`` from ``rate`` Hz to 8000 Hz (numpy only).

    A windowed-sinc low-pass at 3.6 kHz (when downsampling) followed by linear
    interpolation; good enough for signalling, which lives below 3.4 kHz.
    """
    import numpy as np

    if rate <= 0:
        raise AudioFormatError("sample rate %d Hz is not valid" % rate)
    x = samples.astype(np.float64)
    if rate > SAMPLE_RATE:
        cutoff = 3600.0 / rate
        taps = int(8 * rate / 1000) | 1
        n = np.arange(taps) - taps // 2
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(taps)
        x = np.convolve(x, h / h.sum(), mode="same")
    t = np.arange(int(len(x) * SAMPLE_RATE / rate)) * (rate / SAMPLE_RATE)
    y = np.interp(t, np.arange(len(x)), x)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def main(argv=None):
    """``python -m firmware.dsp.analyze FILE.wav [--standard ...] [--json]``."""
    parser = argparse.ArgumentParser(prog="linekeeper analyze", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
