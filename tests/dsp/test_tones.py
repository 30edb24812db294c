"""Alert signal and call-progress tones (issue 3): each recognised, none confused with another."""

import pytest

from firmware.dsp.events import AlertTone, Tone
from telephony import generate as gen

UK = ["dial", "busy", "unobtainable", "ringback", "congestion"]
US = ["dial", "busy", "ringback", "congestion"]
# Longest time to recognise each tone from its start (cadence needed to tell it apart)
RECOGNISED_WITHIN_MS = {
    "dial": 1000,
    "busy": 1600,
    "unobtainable": 1400,
    "congestion": 2200,
    "ringback": 3200,
}


def tones(events):
    return [e.name for e in events if isinstance(e, Tone)]


@pytest.mark.parametrize("country, name", [("uk", n) for n in UK] + [("us", n) for n in US])
@pytest.mark.parametrize("level", [-13, -30])
def test_each_call_progress_tone_recognised_once_and_not_confused(detect, country, name, level):
    signal = gen.concat(
        gen.silence(500), gen.call_progress(name, country, 8000, level_dbm0=level), gen.silence(500)
    )
    events = detect(signal, country=country, off_hook=True, t0_us=1_000_000)
    assert tones(events) == [name]
    assert events[0].t_us == pytest.approx(1_500_000, abs=40_000)


@pytest.mark.parametrize("country, name", [("uk", n) for n in UK] + [("us", n) for n in US])
def test_each_tone_recognised_quickly(detect, country, name):
    """A remote clear must end the call within 3 s: the tone is known well before."""
    limit = RECOGNISED_WITHIN_MS[name]
    signal = gen.concat(gen.silence(500), gen.call_progress(name, country, limit))
    assert tones(detect(signal, country=country, off_hook=True, block=80)) == [name]


@pytest.mark.parametrize("country, name", [("uk", n) for n in UK] + [("us", n) for n in US])
@pytest.mark.parametrize("seconds", [30.0, 30.25, 30.5, 30.9])
def test_a_long_tone_cut_anywhere_is_one_event(detect, country, name, seconds):
    signal = gen.concat(gen.call_progress(name, country, seconds * 1000), gen.silence(6000))
    assert tones(detect(signal, country=country, off_hook=True, block=8000)) == [name]


def test_us_unobtainable_is_reorder():
    assert (
        gen.call_progress("unobtainable", "us", 2000) == gen.call_progress("congestion", "us", 2000)
    ).all()


def test_tones_with_noise_20_db_below(detect):
    for country, names in (("uk", UK), ("us", US)):
        for name in names:
            tone = gen.call_progress(name, country, 8000, level_dbm0=-20)
            signal = gen.mix(tone, gen.white_noise(len(tone), -40, seed=len(name)))
            assert tones(detect(signal, country=country, off_hook=True)) == [name]


def test_unknown_tone_name_rejected():
    with pytest.raises(ValueError, match="unobtainable|no 'howler'"):
        gen.call_progress("howler", "uk", 1000)
    with pytest.raises(ValueError):
        gen.call_progress("dial", "fr", 1000)


@pytest.mark.parametrize("duration_ms", [88, 100, 110])
@pytest.mark.parametrize("level", [-13, -30])
def test_alert_tone_recognised(detect, duration_ms, level):
    signal = gen.concat(gen.silence(400), gen.alert_tone(level, duration_ms), gen.silence(300))
    events = detect(signal, t0_us=10_000_000)
    assert [type(e) for e in events] == [AlertTone]
    assert events[0].t_us == pytest.approx(10_400_000, abs=20_000)


def test_long_2130_2750_tone_is_not_an_alert(detect):
    signal = gen.concat(gen.silence(400), gen.alert_tone(-13, 400), gen.silence(300))
    assert detect(signal) == []


def test_each_hook_state_looks_only_for_its_own_tones(detect):
    """On-hook: the alert (caller ID); off-hook: call progress; unknown (offline): both."""
    alert = gen.concat(gen.silence(400), gen.alert_tone(-13, 100), gen.silence(300))
    busy = gen.call_progress("busy", "uk", 3000)
    assert detect(alert, off_hook=True) == []
    assert detect(busy, off_hook=False) == []
    assert [type(e) for e in detect(gen.concat(alert, busy), off_hook=None)] == [AlertTone, Tone]


def test_speech_band_noise_alone_gives_no_tones(detect):
    signal = gen.white_noise(8000 * 20, -20, seed=3)
    # Loud noise off-hook is not tonal: the voice-onset detector may call it voice.
    assert [e for e in detect(signal, off_hook=True) if type(e).__name__ != "Speech"] == []
    assert detect(signal, country="us", off_hook=False) == []


@pytest.mark.parametrize("country", ["uk", "us"])
@pytest.mark.parametrize("block", [128, 960, 4000])
def test_long_silences_counted_not_analysed_change_nothing(country, block):
    """Past the longest tone element, silent blocks are counted instead of given to spandsp:
    every tone (call progress and alert), and where it started, is as it is with all of
    them given to spandsp; the silences are long enough that most of them is counted."""
    from firmware.dsp import tones as tones_module

    names = UK if country == "uk" else US
    parts = [gen.white_noise(8000 * 7, -65, seed=5)]
    for i, name in enumerate(names + ["busy", "ringback"]):
        parts.append(gen.call_progress(name, country, 2500 + 900 * i))
        parts.append(gen.white_noise(8000 * (3 + 2 * i) + 37 * i, -65, seed=i))
        parts.append(gen.concat(gen.alert_tone(), gen.white_noise(4000 + 128 * i, -65, seed=9 + i)))
    signal = gen.concat(*parts)

    counted_ms = []

    def found(receiver):
        out = []
        for start in range(0, len(signal), block):
            out += receiver.feed(signal[start : start + block])
            counted_ms.append(receiver._skipped_ms)
        return out, receiver.samples, receiver._segment_starts[-1]

    skipping = tones_module.ToneReceiver(country)
    given = tones_module.ToneReceiver(country)
    given._skip_after = len(signal)  # never: every block goes to spandsp
    expected = found(given)
    assert max(counted_ms) == 0
    assert found(skipping) == expected
    assert max(counted_ms) > 1000  # seconds of silence were counted, not analysed
    assert len(expected[0]) >= len(names) + 2
