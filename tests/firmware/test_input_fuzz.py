"""Fuzzing every input reader: scenarios, HAT files, configs, WAVs (analyze and uploads).

A generated corpus (seeded, so every run is the same) of malformed inputs of
the kinds that used to crash or hang: numbers too big for a date or for
Python's int conversion, nesting thousands deep, HAT paths naming a device, a
FIFO or holding a NUL, WAV chunks of odd or lying sizes, sample rates of 1 Hz
and 2^32-1 Hz, headers asking for gigabytes. Each input must end, within
:data:`LIMIT_S`, in either a result or the reader's own error (one line, the
file named): never another exception (a traceback) and never a hang.
"""

import contextlib
import copy
import json
import multiprocessing
import os
import random
import signal
import struct
import threading

import numpy as np
import pytest

from board.hat import load_hat, loads_hat
from board.sim.scenario import load_scenario, loads_scenario
from board.sim.timeline import compile_timeline
from firmware.config import load_config_file
from firmware.dsp import analyze
from firmware.errors import AudioFormatError, ConfigError
from firmware.policy.announcement import validate_announcement_wav

LIMIT_S = 10
N_SCENARIOS = 520
N_WAVS = 240


class Hang(Exception):
    """An input took longer than LIMIT_S."""


@contextlib.contextmanager
def deadline(seconds=LIMIT_S):
    """Raise :class:`Hang` in the main thread if the block runs longer than ``seconds``.

    SIGALRM interrupts blocking system calls too (an ``open`` of a FIFO with no
    writer), so a hang of any kind ends as a test failure, not a stuck suite.
    """
    assert threading.current_thread() is threading.main_thread()

    def fire(signum, frame):
        raise Hang("took more than %d s" % seconds)

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(call, expected):
    """``"ok"``, ``"refused"`` (the reader's own one-line error) or a description of a failure."""
    try:
        with deadline():
            call()
        return "ok"
    except Hang as exc:
        return "hang: %s" % exc
    except expected as exc:
        text = str(exc)
        if "\n" in text or not text:
            return "error message not one line: %r" % text
        return "refused"
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a traceback
        return "traceback: %s: %s" % (type(exc).__name__, exc)


def _worker(conn, cases, start, run, expected):
    for i in range(start, len(cases)):
        conn.send(("start", i))
        conn.send(("done", i, outcome(lambda i=i: run(cases[i][1]), expected)))
    conn.send(("end", None))


def check_all(cases, run, expected):
    """Run every case in a child process; returns the counts of outcomes; fails listing the bad.

    The child also times each input itself (SIGALRM), but some hangs cannot
    be interrupted from inside (a C loop reading /dev/zero into memory): the
    parent kills a child silent for more than ``LIMIT_S`` + 5 s, counts a hang
    and carries on with the next input in a new child.
    """
    ctx = multiprocessing.get_context("fork")
    counts, bad, start = {"ok": 0, "refused": 0}, [], 0
    while start < len(cases):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(child, cases, start, run, expected))
        proc.start()
        child.close()
        current = start
        try:
            while True:
                if not parent.poll(LIMIT_S + 5):
                    bad.append("%s: hang (killed)" % cases[current][0])
                    start = current + 1
                    break
                msg = parent.recv()
                if msg[0] == "start":
                    current = msg[1]
                elif msg[0] == "done":
                    result = msg[2]
                    if result in counts:
                        counts[result] += 1
                    else:
                        bad.append("%s: %s" % (cases[msg[1]][0], result[:300]))
                else:
                    start = len(cases)
                    break
        except EOFError:  # the child died (a crash of the interpreter itself)
            bad.append("%s: the process died" % cases[current][0])
            start = current + 1
        finally:
            proc.kill()
            proc.join()
            parent.close()
    assert not bad, "%d of %d inputs failed:\n%s" % (len(bad), len(cases), "\n".join(bad[:20]))
    return counts


# ------------------------------------------------------------------ special files
@pytest.fixture(scope="module")
def specials(tmp_path_factory):
    """Paths that are not regular files: a FIFO with no writer, a directory, devices."""
    tmp = tmp_path_factory.mktemp("specials")
    fifo = tmp / "fifo.json"
    os.mkfifo(fifo)
    return {
        "fifo": str(fifo),
        "dir": str(tmp),
        "zero": "/dev/zero",
        "null": "/dev/null",
        "urandom": "/dev/urandom",
        "nul": str(tmp / "a\0b.json"),
        "missing": str(tmp / "missing.json"),
        "proc": "/proc/self/mem",
    }


# ------------------------------------------------------------------ scenarios
BASE = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 4,
    "seed": 3,
    "calls": [
        {
            "line": 1,
            "at": 2.0,
            "direction": "in",
            "caller_id": {"number": "01632960123", "name": "ACME LTD"},
            "rings": 2,
            "talk": 6.0,
            "speech": "Hello there",
            "tags": ["orders"],
            "keys": [{"at": 1.0, "digits": "*1"}],
        },
        {
            "line": 2,
            "at": 5.0,
            "direction": "out",
            "dial": {"digits": "02079460000", "mode": "dtmf"},
            "talk": 5.0,
            "hangup": "remote",
        },
        {"line": 3, "at": 1.0, "direction": "in", "rings": 3, "answer": False},
    ],
    "faults": [{"line": 4, "at": 3.0, "kind": "no_line_voltage", "duration": 2.0}],
}

# Values that replace a field: numbers too big (for a date, for int(), for a float),
# deep structures, odd strings. Raw JSON text, so numbers Python would refuse stay literal.
NASTY = [
    "1e400",
    "-1e400",
    "1e308",
    "-1e308",
    "9" * 30,
    "9" * 5000,
    "-" + "9" * 25,
    "123456789012345678901234567890.5",
    "0.0000000000000000000001",
    "-0.0",
    "0",
    "-1",
    "4294967296",
    "18446744073709551617",
    "1e-400",
    "null",
    "true",
    "false",
    '""',
    '"x"',
    '"' + "x" * 20000 + '"',
    '"\\u0000"',
    '"a\\u0000b"',
    "[]",
    "{}",
    "[" * 40 + "]" * 40,
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    '"9999-12-31T23:59:59-23:59"',
    '"0001-01-01T00:00:00+23:59"',
    '"2026-03-02T09:00:00+25:00"',
    '"99999-01-01T00:00:00Z"',
    '"2026-02-30T00:00:00Z"',
    '"2999-12-31T23:59:59Z"',
    '"1969-12-31T23:59:59Z"',
    '"\\ud800"',
    '"0x1f"',
    '"0x' + "f" * 5000 + '"',
]


def _paths(value, path=()):
    """Every (path, value) in a JSON-like structure."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, path + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, path + (i,))


MARK = "__FUZZ__"


def _replace(doc, path, marker=MARK):
    doc = copy.deepcopy(doc)
    if not path:
        return marker
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = marker
    return doc


def _with(doc, path, raw):
    """``doc`` as JSON text with the value at ``path`` replaced by the raw JSON ``raw``."""
    return json.dumps(_replace(doc, path)).replace('"%s"' % MARK, raw, 1)


def scenario_corpus(specials):
    rng = random.Random(20260302)
    paths = list(_paths(BASE))
    cases = []
    for _ in range(260):  # a nasty value in a random field
        path = rng.choice(paths)
        cases.append(("value %s" % (path,), ("json", _with(BASE, path, rng.choice(NASTY)))))
    for key in specials:  # the HAT path: devices, a FIFO, a NUL, a directory
        raw = json.dumps(specials[key])
        cases.append(("hat %s" % key, ("json", _with(BASE, ("hat",), raw))))
    for extra in (
        "/dev/zero",
        "/dev/stdin",
        "/proc/self/fd/0",
        "a\0b",
        "\0",
        "lk-4l\0.json",
        "../" * 40 + "dev/zero",
        "x" * 5000 + ".json",
    ):
        cases.append(("hat %r" % extra[:20], ("json", _with(BASE, ("hat",), json.dumps(extra)))))
    text = json.dumps(BASE, indent=1)
    for _ in range(150):  # damaged text: cut, flipped, inserted, duplicated
        cut = rng.randrange(len(text))
        kind = rng.choice(("cut", "flip", "insert", "dup"))
        if kind == "cut":
            bad = text[:cut]
        elif kind == "flip":
            bad = text[:cut] + chr(rng.randrange(1, 0x3000)) + text[cut + 1 :]
        elif kind == "insert":
            bad = text[:cut] + rng.choice(NASTY) + text[cut:]
        else:
            bad = text[:cut] + text[max(0, cut - 200) : cut] + text[cut:]
        cases.append(("text %s at %d" % (kind, cut), ("json", bad)))
    for depth in (31, 32, 33, 100, 990, 1000, 5000, 200000):
        cases.append(("deep list %d" % depth, ("json", "[" * depth + "]" * depth)))
        cases.append(
            ("deep calls %d" % depth, ("json", _with(BASE, ("calls", 0, "tags"), "[" * depth + "]" * depth)))
        )
    toml = (
        'start = %s\ncountry = "uk"\nlines = %s\n[[calls]]\nline = 1\nat = %s\ndirection = "in"\nrings = %s\n'
    )
    values = [
        "2026-03-02T09:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+23:59",
        "1979-05-27",
        "07:32:00",
        "9" * 5000,
        "1e400",
        "[" * 3000 + "]" * 3000,
        "inf",
        "nan",
        "0x" + "f" * 200,
        "1",
        "2.5",
        "-1",
    ]
    for i in range(60):
        picks = [rng.choice(values) for _ in range(4)]
        picks[0] = picks[0] if rng.random() < 0.5 else values[0]
        cases.append(("toml %d" % i, ("toml", toml % tuple(picks))))
    cases.append(("toml deep table", ("toml", "a = " + "{b = " * 2000 + "1" + "}" * 2000)))
    for key in specials:  # the scenario file itself is not a regular file
        cases.append(("scenario file %s" % key, ("path", specials[key])))
    return cases


class FakeSynth:
    """A short tone per word (espeak-ng is not what is being fuzzed)."""

    def say(self, text, voice="en-gb", rate_wpm=160, pitch=50):
        n = min(2000 * len(text.split()), 80000)
        return (3000 * np.sin(2 * np.pi * 300 * np.arange(n) / 8000)).astype(np.int16)


def test_scenario_corpus_has_no_tracebacks_or_hangs(specials, tmp_path):
    cases = scenario_corpus(specials)
    assert len(cases) >= 500

    def run(case):
        kind, text = case
        if kind == "path":
            sc = load_scenario(text)
        else:
            path = tmp_path / ("s.toml" if kind == "toml" else "s.json")
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            sc = load_scenario(str(path))
        compile_timeline(sc, FakeSynth())  # what is accepted must also compile

    counts = check_all(cases, run, ConfigError)
    assert counts["refused"] > 400 and counts["ok"] >= 1, counts


def test_loads_scenario_refuses_huge_numbers_with_a_position():
    with pytest.raises(ConfigError) as info:
        loads_scenario(_with(BASE, ("calls", 0, "at"), "9" * 5000), "s.json")
    assert info.value.position is not None and "too long" in str(info.value)
    with pytest.raises(ConfigError, match="must be from 1970 to 2999"):
        loads_scenario(_with(BASE, ("start",), '"9999-12-31T23:59:59-23:59"'), "s.json")
    with pytest.raises(ConfigError, match="nested more than 32 deep"):
        loads_scenario(_with(BASE, ("calls", 0, "tags"), "[" * 990 + "]" * 990), "s.json")


@pytest.mark.parametrize(
    "key, says", [("fifo", "FIFO"), ("zero", "character device"), ("dir", "directory"), ("nul", "NUL")]
)
def test_a_hat_path_that_is_no_file_is_named(specials, key, says):
    with deadline():
        with pytest.raises(ConfigError) as info:
            loads_scenario(_with(BASE, ("hat",), json.dumps(specials[key])), "s.json")
    assert says in str(info.value) and info.value.field == "hat"
    assert "\0" not in str(info.value)


# ------------------------------------------------------------------ HAT files and configs
def test_hat_and_config_corpus_has_no_tracebacks_or_hangs(specials, tmp_path):
    rng = random.Random(27)
    with open(os.path.join(os.path.dirname(load_hat("lk-4l").source), "lk-4l.json")) as f:
        hat = json.load(f)
    hat_paths = list(_paths(hat))
    config = {
        "country": "uk",
        "debounce_ms": 30,
        "preroll_ms": 500,
        "policy": {"retention": {"default_days": 30}},
    }
    config_paths = list(_paths(config))
    cases = []
    for _i in range(120):
        cases.append(("hat value", ("hat", _with(hat, rng.choice(hat_paths), rng.choice(NASTY)))))
        cases.append(("config value", ("config", _with(config, rng.choice(config_paths), rng.choice(NASTY)))))
    for key in specials:
        cases.append(("hat file %s" % key, ("hat-path", specials[key])))
        cases.append(("config file %s" % key, ("config-path", specials[key])))

    def run(case):
        kind, text = case
        if kind == "hat":
            loads_hat(text, "h.json")
        elif kind == "hat-path":
            load_hat(text)
        elif kind == "config":
            path = tmp_path / "config.json"
            path.write_text(text)
            load_config_file(str(path))
        else:
            load_config_file(text)

    check_all(cases, run, ConfigError)


# ------------------------------------------------------------------ WAV files
def wav(
    body=b"\0\0" * 800,
    *,
    tag=1,
    channels=1,
    rate=8000,
    byte_rate=None,
    block=None,
    bits=16,
    fmt_size=16,
    data_size=None,
    riff_size=None,
    extra=b"",
    order="fd",
):
    """A WAV file with every header field open to lies."""
    block = channels * bits // 8 if block is None else block
    byte_rate = rate * block if byte_rate is None else byte_rate
    fmt = struct.pack(
        "<HHIIHH", tag, channels, rate & 0xFFFFFFFF, byte_rate & 0xFFFFFFFF, block & 0xFFFF, bits & 0xFFFF
    )
    fmt = (fmt + b"\0" * 64)[:fmt_size]
    chunks = {
        "f": b"fmt " + struct.pack("<I", fmt_size) + fmt + b"\0" * (fmt_size & 1),
        "d": b"data" + struct.pack("<I", len(body) if data_size is None else data_size) + body,
    }
    inner = b"WAVE" + extra + b"".join(chunks[c] for c in order)
    return b"RIFF" + struct.pack("<I", len(inner) if riff_size is None else riff_size) + inner


def wav_corpus():
    rng = random.Random(8000)
    tone = (8000 * np.sin(2 * np.pi * 1000 * np.arange(4000) / 8000)).astype("<i2").tobytes()
    cases = [
        ("valid", wav(tone)),
        ("rate 1 Hz", wav(tone, rate=1)),
        ("rate 2^32-1 Hz", wav(tone, rate=2**32 - 1)),
        ("rate 0", wav(tone, rate=0)),
        ("rate 7999", wav(tone, rate=7999)),
        ("rate 192001", wav(tone, rate=192001)),
        ("rate 192000", wav(tone, rate=192000)),
        ("data asks 4 GB", wav(tone, data_size=0xFFFFFFFF)),
        ("data asks 2 GB", wav(tone, data_size=0x7FFFFFFF, riff_size=0x7FFFFFFF)),
        ("riff asks 4 GB", wav(tone, riff_size=0xFFFFFFFF)),
        ("fmt asks 4 GB", wav(tone, fmt_size=16)[:16] + struct.pack("<I", 0xFFFFFFFF) + wav(tone)[20:]),
        ("odd fmt size", wav(tone, fmt_size=17)),
        ("fmt 15 bytes", wav(tone, fmt_size=15)),
        ("fmt 0 bytes", wav(tone, fmt_size=0)),
        ("odd data", wav(tone + b"\1")),
        ("odd extra chunk", wav(tone, extra=b"LIST" + struct.pack("<I", 3) + b"abc\0")),
        ("odd extra chunk unpadded", wav(tone, extra=b"LIST" + struct.pack("<I", 3) + b"abc")),
        ("no data", wav(order="f")),
        ("no fmt", wav(order="d")),
        ("two data", wav(order="fdd")),
        ("data first", wav(order="df")),
        ("two fmt", wav(order="ffd")),
        ("extensible short", wav(tone, tag=0xFFFE, fmt_size=18)),
        ("extensible", wav(tone, tag=0xFFFE, fmt_size=40)),
        ("block 0", wav(tone, block=0)),
        ("block 65535", wav(tone, block=65535)),
        ("channels 0", wav(tone, channels=0, block=2)),
        ("channels 65535", wav(tone, channels=65535)),
        ("bits 0", wav(tone, bits=0, block=2)),
        ("bits 65535", wav(tone, bits=65535, block=2)),
        ("float", wav(np.full(400, np.nan, "<f4").tobytes(), tag=3, bits=32)),
        ("float inf", wav(np.full(400, np.inf, "<f4").tobytes(), tag=3, bits=32)),
        ("alaw", wav(tone, tag=6, bits=8)),
        ("empty", b""),
        ("RIFF only", b"RIFF"),
        ("header only", wav(b"")[:44]),
        ("text", b"hello, world\n" * 10),
        ("zero chunk id", wav(tone)[:12] + b"\0" * 8 + wav(tone)[12:]),
        ("long 8 kHz", wav(b"\0\0" * 8000 * 30)),
    ]
    rates = (1, 2, 7999, 8000, 11025, 44100, 48000, 96000, 192000, 192001, 2**31, 2**32 - 1)
    for _ in range(110):  # random header fields
        kw = dict(
            tag=rng.choice((1, 1, 1, 3, 6, 0xFFFE, 0)),
            channels=rng.choice((0, 1, 1, 2, 7)),
            rate=rng.choice(rates),
            bits=rng.choice((0, 8, 16, 16, 24, 32, 33)),
            fmt_size=rng.choice((14, 16, 16, 17, 18, 40)),
        )
        if rng.random() < 0.3:
            kw["data_size"] = rng.choice((0, 1, 3, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 30))
        if rng.random() < 0.3:
            kw["riff_size"] = rng.choice((0, 4, 0xFFFFFFFF, 1 << 31))
        if rng.random() < 0.3:
            kw["block"] = rng.choice((0, 1, 2, 3, 4, 65535))
        cases.append(("header %s" % kw, wav(tone[: rng.randrange(0, len(tone))], **kw)))
    good = wav(tone)
    for i in range(80):  # damaged bytes
        data = bytearray(good)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(0, 60)] = rng.randrange(256)
        cut = rng.choice((len(data), rng.randrange(0, len(data))))
        cases.append(("damaged %d" % i, bytes(data[:cut])))
    return cases


def test_wav_corpus_has_no_tracebacks_or_hangs(specials, tmp_path):
    cases = [(label, ("bytes", data)) for label, data in wav_corpus()]
    cases += [("file %s" % key, ("path", path)) for key, path in specials.items()]
    assert len(cases) >= 200
    path = tmp_path / "in.wav"

    def run_analyze(case):
        kind, data = case
        if kind == "path":
            samples = analyze.read_wav(data)
        else:
            path.write_bytes(data)
            samples = analyze.read_wav(path)
        analyze.analyse(samples)

    def run_upload(case):
        kind, data = case
        if kind == "bytes":
            validate_announcement_wav(data)

    counts = check_all(cases, run_analyze, AudioFormatError)
    assert counts["refused"] > 150 and counts["ok"] >= 5, counts
    check_all(cases, run_upload, AudioFormatError)


@pytest.mark.parametrize(
    "key, says", [("fifo", "FIFO"), ("zero", "character device"), ("nul", "NUL"), ("dir", "directory")]
)
def test_analyze_cli_refuses_what_is_not_a_file_in_one_line(specials, capsys, key, says):
    with deadline():
        code = analyze.main([specials[key]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err and "\0" not in err


@pytest.mark.parametrize("rate", [1, 2**32 - 1])
def test_analyze_refuses_absurd_sample_rates(tmp_path, rate):
    path = tmp_path / "r.wav"
    path.write_bytes(wav(rate=rate))
    with pytest.raises(AudioFormatError, match="%d Hz is not supported" % rate):
        analyze.read_wav(path)


def test_a_cut_recording_is_analysed_as_far_as_it_goes(tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(wav(b"\1\0" * 8000, data_size=0x7FFFFFFF, riff_size=0x7FFFFFFF))
    assert len(analyze.read_wav(path)) == 8000
