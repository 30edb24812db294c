"""`make bench` section "recording": the whole recording chain on the simulated board.

``run(quick=False)`` returns a dict (``make bench`` writes it to
bench/results.json):

* ``chain``: the busy scenario of :mod:`bench.box` (four lines of back-to-back
  calls with caller ID, dialling and speech) is run twice in this process on
  20 ms capture periods (the HAT's ALSA period): once on a data dir that was
  never initialised (the box logs calls, records nothing) and once on an
  initialised one. The difference in CPU time is the recording chain -
  capture consumer → ring pre-roll → Opus encoder → STREAM sealing → append
  + fdatasync, the disk-reserve check and the call log's recording rows -
  given per hour of recorded audio (target ≤ 10 CPU-s) and as the number of
  lines one core keeps up with. Also hours per GB of these calls (mostly
  pauses, which DTX makes nearly free), bytes the recorder hands to the kernel
  per byte stored (target ≤ 1.1) and, honestly, the bytes ``/proc/self/io``
  says the whole box sent to the block device per byte stored (fdatasync
  rewrites the page it appends to once a second, and SQLite commits each
  recording's rows: both count there).
* ``pesq``: narrow-band PESQ of recorded calls against what the simulated line
  carried (round trip through the box, the 30 s of talk after the answer),
  and of the voice profile on the speech test set (target ≥ 3.0, worst
  voice), with the hours per GB of that continuous speech as stored (file
  header, Ogg, chunk lengths and tags included; target ≥ 250).
* ``diy``: the do-it-yourself alternative on the same audio: the recorded
  calls' line audio as WAV, ``opusenc`` then ``gpg --symmetric``
  (:func:`bench.codec._diy`).
* ``profiles``: the trade-off that chose the voice profile: encoder CPU,
  hours per GB and PESQ for Opus complexity / bit rate / frame size
  candidates (see :mod:`firmware.recording.codec`).

Set ``BENCH_TMP`` to a directory on the card (not tmpfs) for the device bytes
to mean anything.
"""

import json
import os
import tempfile
import time

import numpy as np

from bench import box as bench_box
from bench import codec as bench_codec
from bench import measure
from firmware.recording import codec, quality

PERIOD_MS = 20
LINES = 4
CANDIDATES = [  # (complexity, bit rate, frame ms); DTX on, narrow-band SILK
    (10, 9000, 60),
    (6, 9000, 60),
    (4, 10000, 60),
    (2, 10000, 40),
    (2, 11400, 120),
    (3, 11200, 120),  # complexity 3: the quality/size frontier moves out, at ~1.5x the encoder CPU
    (3, 11400, 120),
    (1, 11000, 60),
    (1, 11400, 60),
    (1, 11400, 40),
    (1, 11400, 80),
    (1, 11000, 120),
    (1, 11400, 120),
    (1, 11500, 120),  # SILK takes whole bytes per 60 ms: 11.4, 11.5 and 11.6 are adjacent steps
    (1, 11600, 120),
    (0, 12000, 60),
    (0, 12000, 120),
]
PESQ_CALLS = 4


def run(quick=False):
    from board.sim.scenario import loads_scenario
    from board.sim.speech import SpeechSynth

    hours = 0.25 if quick else 1.0
    scenario = loads_scenario(json.dumps(bench_box.busy_scenario(hours, LINES)))
    synth = SpeechSynth(cache_dir=os.path.join(os.path.dirname(__file__), ".cache", "speech"))
    result = {
        "lines": LINES,
        "scenario_hours": hours,
        "period_ms": PERIOD_MS,
        "profile": "voice",
        "voice": _profile_text(codec.PROFILES["voice"]),
    }
    with tempfile.TemporaryDirectory(prefix="lk-bench-rec-", dir=os.environ.get("BENCH_TMP")) as tmp:
        chain, data_dir, recorded = _chain(scenario, hours, synth, tmp)
        result["chain"] = chain
        result["pesq"] = _pesq(data_dir, recorded, synth)
        audio = np.concatenate([x for _, x, _ in recorded[: PESQ_CALLS * 2]])
        result["diy"] = bench_codec._diy(quality.speech_set(synth), audio, tmp)
    result["profiles"] = _profiles(quick)
    chosen = [p for p in result["profiles"] if p["chosen"]]
    if chosen:  # continuous speech, as stored (1 s chunks, sealed, file header): the worst case
        result["pesq"]["hours_per_gb_speech_set"] = chosen[0]["hours_per_gb"]
        result["pesq"]["targets"]["hours_per_gb_speech_set"] = ">= 250"
    diy = result["diy"].get("cpu_s_per_line_hour")
    result["chain"]["cheaper_than_diy"] = None if diy is None else chain["cpu_s_per_recorded_hour"] < diy
    return result


# ------------------------------------------------------------------ the chain in the box
def _box_run(scenario, synth, data_dir):
    from firmware.box import open_sim_box

    box = open_sim_box(scenario, data_dir, synth=synth, period_ms=PERIOD_MS)
    io0, cpu0, wall0 = measure.device_write_bytes(), measure.cpu_s(), time.monotonic()
    box.start()
    box.board.run()
    box.stop()
    cpu, wall, io1 = measure.cpu_s() - cpu0, time.monotonic() - wall0, measure.device_write_bytes()
    return box, cpu, wall, (None if io0 is None or io1 is None else io1 - io0)


def _chain(scenario, hours, synth, tmp):
    from firmware.recording.store import RecordingStore
    from firmware.storage.keystore import Argon2Params, KeyStore

    line_hours = LINES * hours
    _box_run(scenario, synth, os.path.join(tmp, "warm"))  # speech cache, imports, libraries
    plain, plain_cpu, plain_wall, plain_io = _box_run(scenario, synth, os.path.join(tmp, "plain"))
    data_dir = os.path.join(tmp, "recording")
    KeyStore(data_dir, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "bench", "bench password"
    )
    box, cpu, wall, io = _box_run(scenario, synth, data_dir)
    store = RecordingStore(data_dir)
    rows = store.all()
    store.close()
    recorded_s = sum(r["duration_s"] for r in rows)
    stored = sum(r["bytes"] for r in rows)
    stats = box.recorder.stats
    chain_cpu = cpu - plain_cpu
    per_recorded_hour = chain_cpu / (recorded_s / 3600)
    out = {
        "recordings": len(rows),
        "complete": sum(r["state"] == "complete" for r in rows),
        "recorded_hours": round(recorded_s / 3600, 3),
        "box_cpu_s_per_line_hour_not_recording": round(plain_cpu / line_hours, 2),
        "box_cpu_s_per_line_hour_recording": round(cpu / line_hours, 2),
        "cpu_s_per_line_hour": round(chain_cpu / line_hours, 2),
        "cpu_s_per_recorded_hour": round(per_recorded_hour, 2),
        "lines_per_core_chain": int(3600 / per_recorded_hour),
        "lines_per_core_whole_box": int(3600 / (cpu / line_hours)),
        # These calls talk for 30 s of their 4 minutes: DTX makes the rest nearly free.
        "mb_per_hour_these_calls": round(stored / (recorded_s / 3600) / 1e6, 3),
        "hours_per_gb_these_calls": round(quality.hours_per_gb(stored / (recorded_s / 3600)), 1),
        "bytes_written_per_stored": round(stats["bytes_written"] / stored, 4),
        "speedup_vs_real_time": round(hours * 3600 / wall, 1),
    }
    if io is not None and plain_io is not None:
        out["device_bytes_per_stored"] = round(io / stored, 2)
        out["device_bytes_per_stored_recording_share"] = round((io - plain_io) / stored, 2)
    out["targets"] = {"cpu_s_per_recorded_hour": "<= 10, < diy", "bytes_written_per_stored": "<= 1.1"}
    return out, data_dir, _recorded_audio(scenario, synth, data_dir, rows)


def _recorded_audio(scenario, synth, data_dir, rows):
    """``[(row, line audio it recorded, index of the answer)]``: the first complete recordings."""
    from board.hat import load_hat
    from board.sim.board import SimBoard
    from board.sim.timeline import compile_timeline
    from firmware.clock import SimClock

    timeline = compile_timeline(scenario, synth)
    board = SimBoard(
        timeline,
        load_hat(scenario.hat),
        SimClock(),
        period_ms=PERIOD_MS,
        noise_dbm0=scenario.noise_dbm0,
        seed=scenario.seed,
    )
    period_us, frames = board.period_us, board.period_frames
    out = []
    lines = {}
    for row in sorted(rows, key=lambda r: r["started_at"]):
        if row["state"] != "complete" or len(out) >= PESQ_CALLS * 2:
            continue
        t0 = row["started_at"] - scenario.start_wall_us
        line, answered_at = _call_of(data_dir, row["call_id"])
        if lines.get(line, -1) >= t0:
            continue
        n = int(row["duration_s"] * 8000)
        first = t0 - t0 % period_us
        skip = (t0 - first) * 8000 // 1_000_000
        pieces = [
            board.line_audio(line, first + k * period_us, frames) for k in range(-(-(skip + n) // frames))
        ]
        lines[line] = t0 + n * 125
        talk = (answered_at - row["started_at"]) * 8000 // 1_000_000
        out.append((row, np.concatenate(pieces)[skip : skip + n], talk))
    return out


def _call_of(data_dir, call_id):
    import sqlite3

    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    try:
        return db.execute("SELECT line, answered_at FROM calls WHERE id = ?", (call_id,)).fetchone()
    finally:
        db.close()


# ------------------------------------------------------------------ quality
def _pesq(data_dir, recorded, synth):
    """Round trip through the box (talk portion), and the voice profile on the speech set."""
    from firmware.recording.store import RecordingStore
    from firmware.storage.keystore import KeyStore

    scores = []
    store = RecordingStore(data_dir)
    try:
        with KeyStore(data_dir).unlock("bench", "bench password") as key:
            for row, x, talk in recorded[:PESQ_CALLS]:
                _, data = store.read_verified(row["id"], key)
                y = codec.decode(data, row["profile"])
                # From the answer (before it: pre-roll or dialling, not speech) over the
                # 30 s that hold the call's three utterances (then it is quiet).
                end = talk + 30 * 8000
                scores.append(quality.pesq_nb(x[talk:end], y[talk:end]))
    finally:
        store.close()
    items = quality.speech_set(synth)
    set_scores = [quality.pesq_nb(x, _roundtrip(x, codec.PROFILES["voice"])) for _, x in items]
    return {
        "round_trip_mean": round(float(np.mean(scores)), 3),
        "round_trip_worst": round(min(scores), 3),
        "speech_set_mean": round(float(np.mean(set_scores)), 3),
        "speech_set_worst": round(min(set_scores), 3),
        "targets": {"speech_set_worst": ">= 3.0", "round_trip_worst": ">= 3.0"},
    }


def _roundtrip(x, profile):
    enc = codec.Encoder(profile)
    data = b"".join(enc.encode(x[i : i + 160]) for i in range(0, len(x), 160)) + enc.finish()
    return codec.decode(data, profile)


# ------------------------------------------------------------------ profile trade-off
def _profile_text(p):
    return "Opus complexity %d, %.1f kbit/s VBR, %d ms frames%s" % (
        p.complexity,
        p.bitrate_bps / 1000,
        p.frame_ms,
        ", DTX" if p.dtx else "",
    )


def _profiles(quick):
    from firmware.recording.segment import SegmentWriter
    from firmware.recording.stages import ChunkPolicy, EncoderStage
    from firmware.storage import crypto

    items = quality.speech_set()
    call = np.concatenate([x for _, x in items] * (2 if quick else 6))
    hours = len(call) / 8000 / 3600
    rows = []
    with tempfile.TemporaryDirectory(prefix="lk-bench-prof-") as tmp:
        for i, (cx, bps, frame_ms) in enumerate(CANDIDATES):
            profile = codec.Profile(
                "voice", "ogg", bitrate_bps=bps, frame_ms=frame_ms, complexity=cx, dtx=True
            )
            best = None
            for _ in range(3):  # the least disturbed of three (shared cores)
                enc = codec.Encoder(profile)
                cpu0 = time.thread_time()
                for s in range(0, len(call), 160):
                    enc.encode(call[s : s + 160])
                enc.finish()
                cpu = time.thread_time() - cpu0
                best = cpu if best is None else min(best, cpu)
            # Stored size as the recorder stores it: 1 s chunks, sealed, with the file header.
            path = os.path.join(tmp, "p%d" % i)
            writer = SegmentWriter(
                path,
                "bench",
                crypto.new_data_key(),
                {
                    "call_id": 0,
                    "line": 1,
                    "created_us": 0,
                    "profile": "voice",
                    "rate": 8000,
                    "chunk_ms": 1000,
                },
                fsync=False,
            )
            stage = EncoderStage(profile, 8000, ChunkPolicy(1000), output=writer)
            for s in range(0, len(call), 160):
                stage.feed(call[s : s + 160])
            stage.close()
            scores = [quality.pesq_nb(x, _roundtrip(x, profile)) for _, x in items]
            rows.append(
                {
                    "complexity": cx,
                    "kbps": bps / 1000,
                    "frame_ms": frame_ms,
                    "encoder_cpu_s_per_hour": round(best / hours, 2),
                    "hours_per_gb": round(quality.hours_per_gb(os.path.getsize(path) / hours), 1),
                    "pesq_mean": round(float(np.mean(scores)), 3),
                    "pesq_worst": round(min(scores), 3),
                    "chosen": _same(profile, codec.PROFILES["voice"]),
                }
            )
    return rows


def _same(a, b):
    return (a.complexity, a.bitrate_bps, a.frame_ms, a.dtx) == (
        b.complexity,
        b.bitrate_bps,
        b.frame_ms,
        b.dtx,
    )


def table(section):
    rows = []
    for key in ("voice", "scenario_hours", "period_ms"):
        rows.append(("recording." + key, section[key], ""))
    for part in ("chain", "pesq"):
        targets = section[part].get("targets", {})
        for key, value in section[part].items():
            if key != "targets":
                rows.append(("recording.%s.%s" % (part, key), value, targets.get(key, "")))
    diy = section["diy"]
    for key in ("cpu_s_per_line_hour", "hours_per_gb", "pesq_worst", "skipped"):
        if key in diy:
            rows.append(("recording.diy.%s" % key, diy[key], ""))
    for p in section["profiles"]:
        rows.append(
            (
                "recording.profile c%d %.1fk %dms%s"
                % (p["complexity"], p["kbps"], p["frame_ms"], " (voice)" if p["chosen"] else ""),
                "%5.1f cpu-s/h %5.0f h/GB PESQ %.2f/%.2f"
                % (p["encoder_cpu_s_per_hour"], p["hours_per_gb"], p["pesq_mean"], p["pesq_worst"]),
                "",
            )
        )
    return rows
