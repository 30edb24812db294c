"""Voice onsets (issue 20): the far end answering an outbound call, told from the tones."""

import numpy as np
import pytest

from firmware.dsp.answer import VoiceOnset
from firmware.dsp.events import Speech
from telephony import generate as gen


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    from board.sim.speech import SpeechSynth
    from telephony import levels

    synth = SpeechSynth(cache_dir=str(tmp_path_factory.mktemp("speech")))
    return levels.set_active_level(
        synth.say("Thank you for calling. Press one for sales.", voice="en-gb"), -18
    )


def onsets(signal, block=160):
    detector, found = VoiceOnset(), []
    for start in range(0, len(signal), block):
        found += detector.feed(signal[start : start + block])
    return [f / 8000 for f in found]


@pytest.mark.parametrize(
    "name,country",
    [
        ("dial", "uk"),
        ("ringback", "uk"),
        ("busy", "uk"),
        ("unobtainable", "uk"),
        ("ringback", "us"),
        ("busy", "us"),
    ],
)
def test_call_progress_tones_are_not_voice(name, country):
    signal = gen.mix(gen.call_progress(name, country, 9000), gen.white_noise(72000, -65, seed=1))
    assert onsets(signal) == []


@pytest.mark.parametrize("on_ms,off_ms", [(50, 50), (70, 80), (100, 100)])
def test_dtmf_is_not_voice(on_ms, off_ms):
    assert onsets(gen.dtmf("0123456789*#ABCD" * 2, on_ms=on_ms, off_ms=off_ms)) == []


def test_voice_after_ringback_is_found_where_it_starts(voice):
    ringback = gen.call_progress("ringback", "uk", 6000)
    signal = gen.mix(gen.concat(ringback, voice), gen.white_noise(48000 + len(voice), -65, seed=2))
    (t,) = onsets(signal)
    first = np.flatnonzero(np.abs(voice) > 300)[0] / 8000  # the first audible sample
    assert 6.0 + first - 0.05 <= t <= 6.0 + first + 0.15


def test_line_dsp_reports_voice_only_off_hook(detect, voice):
    signal = gen.concat(gen.silence(500), voice)
    assert [type(e) for e in detect(signal, off_hook=True)] == [Speech]
    assert detect(signal, off_hook=False) == []
    assert not any(isinstance(e, Speech) for e in detect(signal, off_hook=None))
