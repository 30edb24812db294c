"""``linekeeper analyze``: good files give events in time order, bad files exit 2 with a message."""

import argparse
import json
import wave

import numpy as np
import pytest

from firmware.dsp import analyze
from telephony import generate as gen


def write_wav(path, samples, rate=8000, channels=1, width=2):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples).tobytes())
    return path


def run(capsys, *argv):
    parser = argparse.ArgumentParser()
    analyze.add_arguments(parser)
    code = analyze.run(parser.parse_args([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def uk_call():
    """An inbound UK call's signalling, then a remote clear."""
    return gen.concat(
        gen.silence(1800),
        gen.alert_tone(-13, 100),
        gen.silence(100),
        gen.caller_id("v23", number="01632960123", name="ACME LTD", datetime="03020900"),
        gen.silence(3000),
        gen.call_progress("busy", "uk", 3000),
    )


def test_json_lines_in_time_order(tmp_path, capsys, uk_call):
    code, out, err = run(capsys, write_wav(tmp_path / "call.wav", uk_call), "--json")
    assert code == 0 and err == ""
    events = [json.loads(line) for line in out.splitlines()]
    assert events == [
        {"t": pytest.approx(1.8, abs=0.02), "event": "alert_tone"},
        {
            "t": pytest.approx(2.0, abs=0.02),
            "event": "caller_id",
            "standard": "v23",
            "number": "01632960123",
            "name": "ACME LTD",
            "datetime": "03020900",
            "absence": None,
        },
        {"t": pytest.approx(len(uk_call) / 8000 - 3.0, abs=0.03), "event": "tone", "name": "busy"},
    ]
    assert all(round(e["t"], 3) == e["t"] for e in events)


def test_table_output(tmp_path, capsys, uk_call):
    code, out, _err = run(capsys, write_wav(tmp_path / "call.wav", uk_call))
    assert code == 0
    assert "caller_id" in out and "number=01632960123" in out and "alert_tone" in out


def test_other_sample_rates_are_resampled(tmp_path, capsys):
    audio = gen.concat(gen.silence(300), gen.dtmf("1*59", -8), gen.silence(300))
    t = np.arange(len(audio) * 2) / 2
    audio16 = np.interp(t, np.arange(len(audio)), audio.astype(float)).astype(np.int16)
    code, out, _err = run(
        capsys, write_wav(tmp_path / "x16k.wav", audio16, rate=16000), "--json", "--standard", "dtmf"
    )
    assert code == 0
    assert [json.loads(line)["digit"] for line in out.splitlines()] == list("1*59")


def test_us_standard(tmp_path, capsys):
    audio = gen.concat(
        gen.silence(500),
        gen.caller_id("bell202", number="6095551212", datetime="10011750", sdmf=True),
        gen.silence(500),
    )
    code, out, _err = run(capsys, write_wav(tmp_path / "us.wav", audio), "--json", "--standard", "us")
    assert [json.loads(line)["number"] for line in out.splitlines()] == ["6095551212"]


def test_dtmf_caller_id_then_dialled_digits(tmp_path, capsys):
    audio = gen.concat(
        gen.silence(300),
        gen.caller_id("dtmf", number="01632960123", dtmf_format="AC"),
        gen.silence(1500),
        gen.dtmf("0123", -8, 60, 60),
        gen.silence(1500),
    )
    code, out, _err = run(capsys, write_wav(tmp_path / "d.wav", audio), "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["caller_id"] + ["dtmf"] * 4
    assert events[0]["number"] == "01632960123"


def test_empty_recording(tmp_path, capsys):
    code, out, _err = run(capsys, write_wav(tmp_path / "empty.wav", np.zeros(0, np.int16)), "--json")
    assert (code, out) == (0, "")
    code, out, _err = run(capsys, write_wav(tmp_path / "empty.wav", np.zeros(0, np.int16)))
    assert code == 0 and "no signalling" in out


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p / "missing.wav", "no such file"),
        (lambda p: p, "directory"),
        (lambda p: (p / "text.wav").write_text("hello") and p / "text.wav", "not a PCM WAV"),
        (lambda p: (p / "empty").write_bytes(b"") or p / "empty", "not a PCM WAV"),
        (lambda p: write_wav(p / "stereo.wav", np.zeros(1600, np.int16), channels=2), "2 channels"),
        (lambda p: write_wav(p / "8bit.wav", np.zeros(800, np.uint8), width=1), "8-bit"),
        (lambda p: write_wav(p / "24bit.wav", np.zeros(2400, np.uint8), width=3), "24-bit"),
    ],
)
def test_bad_files_exit_2_with_one_line_on_stderr(tmp_path, capsys, make, problem):
    path = make(tmp_path)
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and problem in err and str(path) in err


def test_truncated_riff_header(tmp_path, capsys):
    path = tmp_path / "trunc.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")
    code, _out, err = run(capsys, path)
    assert code == 2 and "not a PCM WAV" in err


def test_module_entry_point(tmp_path, capsys):
    code = analyze.main([str(write_wav(tmp_path / "s.wav", np.zeros(800, np.int16))), "--json"])
    assert code == 0


def test_reader_closing_the_pipe_is_not_an_error(tmp_path):
    import subprocess
    import sys

    path = write_wav(tmp_path / "many.wav", gen.dtmf("1*" * 1200, -8, 40, 40))  # > 64 KB of JSON
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware.dsp.analyze", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0 and b"Traceback" not in err
    assert json.loads(first)["digit"] == "1"
