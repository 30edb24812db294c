"""Speech through the real espeak-ng: 8 kHz output, caching, clear errors, and
one scenario compiled with real speech at its stated level."""

import json

import numpy as np
import pytest

from board.sim.scenario import loads_scenario
from board.sim.speech import SpeechError, SpeechSynth, resample
from board.sim.timeline import compile_timeline
from telephony import levels


def band_power(x, lo, hi, rate=8000):
    spectrum = np.abs(np.fft.rfft(x.astype(float))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return spectrum[(freqs >= lo) & (freqs < hi)].sum()


def test_real_speech_at_8_khz_is_cached_in_memory_and_on_disk(tmp_path):
    synth = SpeechSynth(cache_dir=tmp_path)
    x = synth.say("Hello, I would like to place an order.")
    assert x.dtype == np.int16 and 1.0 < len(x) / 8000 < 6.0
    assert band_power(x, 200, 3400) > 100 * band_power(x, 3900, 4000)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".s16"
    again = SpeechSynth(cache_dir=tmp_path).say("Hello, I would like to place an order.")
    assert np.array_equal(x, again)
    x[:] = 0  # callers get a copy
    assert np.abs(synth.say("Hello, I would like to place an order.")).max() > 1000
    assert not np.array_equal(synth.say("Hello", voice="en-us"), synth.say("Hello"))


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(SpeechError, match="nosuchvoice"):
        SpeechSynth().say("hello", voice="nosuchvoice")


def test_missing_espeak_names_install_deps():
    with pytest.raises(SpeechError, match="scripts/install-deps"):
        SpeechSynth(program="espeak-ng-not-here").say("hello")


def test_resample_keeps_the_band_and_removes_what_would_alias():
    t = np.arange(22050) / 22050
    low = resample((10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16), 22050, 8000)
    high = resample((10000 * np.sin(2 * np.pi * 5000 * t)).astype(np.int16), 22050, 8000)
    assert len(low) == 8000
    assert np.std(low[1000:7000]) * np.sqrt(2) == pytest.approx(10000, rel=0.01)
    assert np.std(high[1000:7000]) < 10


def test_a_scenario_with_real_speech_at_its_level(tmp_path):
    sc = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [
                    {
                        "line": 1,
                        "at": 0.5,
                        "direction": "in",
                        "rings": 1,
                        "talk": 8.0,
                        "speech": [{"at": 0.5, "text": "Good morning, how can I help?", "level_dbm0": -22}],
                    }
                ],
            }
        )
    )
    tl = compile_timeline(sc, SpeechSynth(cache_dir=tmp_path))
    (seg,) = [s for s in tl.audio[1] if s.kind == "speech"]
    assert seg.t_us == tl.truth[0].answered_us + 500_000
    assert levels.active_level_dbm0(seg.samples) == pytest.approx(-22, abs=0.5)
