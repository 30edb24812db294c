"""`make bench` section "codec": the recording chain against its alternatives.

On the same audio (the espeak-ng speech set of :mod:`firmware.recording.quality`,
repeated to make a longer call) this measures, per line-hour:

* ``chosen``: our chain - libopus (cffi) + own Ogg pages → STREAM sealing →
  append + fdatasync once per chunk (:class:`RecordingPipeline`, voice profile);
* ``soundfile``: the same chain with soundfile's bundled libsndfile doing
  Ogg/Opus (at the lowest setting that reaches similar quality);
* ``diy``: the do-it-yourself way - ``opusenc`` on a WAV file, then
  ``gpg --symmetric``; CPU taken from the children's rusage.

and reports CPU seconds per line-hour, MB per hour and hours per GB (all
container and encryption overhead included), PESQ (narrow-band MOS-LQO, per
voice), bytes the recorder writes per byte stored, bytes the kernel sent to
the block device per byte stored (``/proc/self/io``: page rewrites of the
once-a-second fdatasync), and how many lines one core keeps up with.

Measured on the dev machine (AMD EPYC, 2 shared cores, 3 December 2026, a 6-minute call):

=========  ========  =====  ======  ===========  ========
chain      CPU-s/h   MB/h   h/GB    PESQ mean    worst
=========  ========  =====  ======  ===========  ========
chosen        6.0    3.98    251      3.39        2.99
soundfile    50.0    3.73    268      3.28        2.97
diy          48.1    5.48    183      3.46        3.25   (opusenc 13 kbit/s + gpg)
=========  ========  =====  ======  ===========  ========

Of the chosen chain's 6.0 CPU-s/h, 5.1 are the encoder (almost all of it
libopus at complexity 1, docs/voice-profile.md); sealing, writing and
fdatasync take the rest. The recorder writes 1.00 byte per byte stored; the
kernel sends ~4.9 bytes to the device per byte stored, because each
once-a-second fdatasync rewrites a whole page for ~1100 new bytes (the price
of losing at most 1 s).
``bench/results.json`` holds the latest run.
"""

import importlib.util
import io
import os
import resource
import shutil
import subprocess
import tempfile
import time
import wave

import numpy as np

from bench import measure
from firmware.recording import codec, quality
from firmware.recording.segment import SegmentWriter
from firmware.recording.stages import RecordingPipeline
from firmware.storage import crypto

RATE = 8000
PIECE = 160  # 20 ms, as the capture ring hands audio out
HEADER = {"call_id": 1, "line": 1, "created_us": 0}
SOUNDFILE_LEVEL = 0.99  # soundfile's compression_level: its lowest rate that still reaches ~PESQ 3
# opusenc codes 8 kHz input at 48 kHz: it needs ~13 kbit/s for the PESQ our 9 kbit/s reaches.
DIY_BITRATE_KBPS = "13"


def run(quick=False):
    items = quality.speech_set()
    call = np.concatenate([x for _, x in items] * (2 if quick else 12))
    with tempfile.TemporaryDirectory(prefix="lk-bench-codec-", dir=_disk_tmp()) as tmp:
        chosen = _chosen(items, call, tmp)
        alternatives = {"soundfile": _soundfile(items, call, tmp), "diy": _diy(items, call, tmp)}
    result = {
        "call_s": round(len(call) / RATE, 1),
        "profile": "voice",
        "libopus": codec.libopus.version(),
        "chosen": chosen,
    }
    result.update(alternatives)
    return result


def _disk_tmp():
    """Where to write: ``$BENCH_TMP``, else the system's temporary directory.

    It should be on the card or disk (not tmpfs) for fdatasync and device bytes to count.
    """
    return os.environ.get("BENCH_TMP") or None


def _cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _per_hour(value, samples):
    return value / (samples / RATE) * 3600


def _summary(cpu_s, stored_bytes, samples, scores):
    per_hour = _per_hour(stored_bytes, samples)
    cpu_h = _per_hour(cpu_s, samples)
    return {
        "cpu_s_per_line_hour": round(cpu_h, 2),
        "mb_per_hour": round(per_hour / 1e6, 3),
        "hours_per_gb": round(quality.hours_per_gb(per_hour), 1),
        "pesq_mean": round(float(np.mean(scores)), 3),
        "pesq_worst": round(min(scores), 3),
        "lines_per_core": int(3600 / cpu_h) if cpu_h else None,
    }


def _record(path, samples, key, fsync=True):
    pipe = RecordingPipeline(path, "bench", key, HEADER, profile="voice", fsync=fsync)
    for start in range(0, len(samples), PIECE):
        pipe.feed(samples[start : start + PIECE], start * 125)
    return pipe.close()


def _decode_file(path, key):
    from firmware.recording.segment import SegmentReader

    data, _complete = SegmentReader(path, key).read_all()
    return codec.decode(data, "voice")


def _chosen(items, call, tmp):
    key = crypto.new_data_key()
    path = os.path.join(tmp, "chosen.lkr")
    io0, cpu0 = measure.device_write_bytes(), measure.cpu_s()
    info = _record(path, call, key)
    cpu = measure.cpu_s() - cpu0
    io1 = measure.device_write_bytes()
    scores = []
    for i, (_, x) in enumerate(items):
        item_path = os.path.join(tmp, "item%d.lkr" % i)
        _record(item_path, x, key, fsync=False)
        scores.append(quality.pesq_nb(x, _decode_file(item_path, key)))
    out = _summary(cpu, info["bytes"], len(call), scores)
    enc = codec.Encoder("voice")
    cpu0 = measure.cpu_s()
    for start in range(0, len(call), PIECE):
        enc.encode(call[start : start + PIECE])
    enc.finish()
    out["encode_only_cpu_s_per_line_hour"] = round(_per_hour(measure.cpu_s() - cpu0, len(call)), 2)
    out["bytes_written_per_stored"] = round(info["bytes_written"] / info["bytes"], 3)
    if io0 is not None and io1 is not None:
        out["device_bytes_per_stored"] = round((io1 - io0) / info["bytes"], 2)
    out["targets"] = {
        "cpu_s_per_line_hour": "<= 10, < diy",
        "hours_per_gb": ">= 250",
        "pesq_worst": ">= 3.0",
        "bytes_written_per_stored": "<= 1.1",
    }
    return out


def _soundfile_stream(samples, out_chunk):
    """Encode with soundfile's Ogg/Opus; ``out_chunk(bytes)`` gets new output every ~1 s."""
    import soundfile

    buf = io.BytesIO()
    taken = 0
    f = soundfile.SoundFile(
        buf, "w", samplerate=RATE, channels=1, format="OGG", subtype="OPUS", compression_level=SOUNDFILE_LEVEL
    )
    step = 7680
    for start in range(0, len(samples), step):
        f.write(samples[start : start + step])
        f.flush()
        data = buf.getvalue()
        out_chunk(data[taken:])
        taken = len(data)
    f.close()
    data = buf.getvalue()
    out_chunk(data[taken:])
    return data


def _soundfile(items, call, tmp):
    if importlib.util.find_spec("soundfile") is None:
        return {"skipped": "soundfile is not installed (pip install soundfile)"}
    key = crypto.new_data_key()
    path = os.path.join(tmp, "soundfile.lkr")
    cpu0 = measure.cpu_s()
    writer = SegmentWriter(path, "bench", key, dict(HEADER, profile="voice", rate=RATE, chunk_ms=1000))
    _soundfile_stream(call, writer.write_chunk)
    writer.close()
    cpu = measure.cpu_s() - cpu0
    scores = [
        quality.pesq_nb(x, codec.decode(_soundfile_stream(x, lambda b: None), "voice")) for _, x in items
    ]
    out = _summary(cpu, os.path.getsize(path), len(call), scores)
    out["compression_level"] = SOUNDFILE_LEVEL
    return out


def _write_wav(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def _diy_encode(wav, opus, gpg_out):
    subprocess.run(
        ["opusenc", "--quiet", "--bitrate", DIY_BITRATE_KBPS, "--framesize", "60", "--speech", wav, opus],
        check=True,
    )
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--yes",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "bench",
            "--symmetric",
            "-o",
            gpg_out,
            opus,
        ],
        check=True,
        env=dict(os.environ, GNUPGHOME=os.path.dirname(gpg_out)),
    )


def _diy(items, call, tmp):
    missing = [p for p in ("opusenc", "gpg") if shutil.which(p) is None]
    if missing:
        return {"skipped": "not installed: %s (Debian opus-tools, gnupg)" % ", ".join(missing)}
    gnupg = os.path.join(tmp, "gnupg")
    os.mkdir(gnupg, 0o700)
    wav, opus, sealed = (os.path.join(tmp, n) for n in ("call.wav", "call.opus", "call.gpg"))
    _write_wav(wav, call)
    wall0, cpu0 = time.monotonic(), _cpu_children()
    _diy_encode(wav, opus, os.path.join(gnupg, "call.gpg"))
    cpu = _cpu_children() - cpu0
    os.replace(os.path.join(gnupg, "call.gpg"), sealed)
    scores = []
    for i, (_, x) in enumerate(items):
        w, o = os.path.join(tmp, "i%d.wav" % i), os.path.join(tmp, "i%d.opus" % i)
        _write_wav(w, x)
        subprocess.run(
            ["opusenc", "--quiet", "--bitrate", DIY_BITRATE_KBPS, "--framesize", "60", "--speech", w, o],
            check=True,
        )
        with open(o, "rb") as f:
            scores.append(quality.pesq_nb(x, codec.decode(f.read(), "voice")))
    out = _summary(cpu, os.path.getsize(sealed), len(call), scores)
    out["opusenc_kbps"] = float(DIY_BITRATE_KBPS)
    out["wall_s"] = round(time.monotonic() - wall0, 2)
    out["note"] = "batch after the call: nothing on the card until it ends; gpg S2K once per file"
    return out
