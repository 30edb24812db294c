"""The ringback watch: where the ringback tone stopped (a far end answering in silence)."""

import numpy as np
import pytest

from firmware.dsp.ringback import GIVE_UP_S, RingbackWatch, ringback_cadence
from telephony import generate

RATE = 8000


def tone(name, ms, country="uk"):
    return np.asarray(generate.call_progress(name, country, ms), np.int16)[: ms * 8]


def silence(ms, seed=0):
    return np.random.default_rng(seed).normal(0, 5, ms * 8).astype(np.int16)  # about -70 dBm0


def watch(audio, country="uk", chunk=160):
    """``[(event, at_ms)]``: what the watch found and when (ms of audio fed by then)."""
    w, out = RingbackWatch(country), []
    for i in range(0, len(audio), chunk):
        out += [(e, (i + chunk) / 8) for e in w.feed(audio[i : i + chunk])]
    return out


def stopped(found):
    (hit,) = [(e, at) for e, at in found if e[0] == "stopped"]
    return hit[0][1] / 8, hit[0][2], hit[1]  # ms of the end, cut, ms noticed


@pytest.mark.parametrize(
    "answer_ms, dated_ms, cut, noticed_by_ms",
    [
        (850, 850, True, 1000),  # in the second burst: cut short
        (500, 400, False, 750),  # in the short gap: the next burst overdue
        (1500, 1000, False, 3450),  # in the long gap: 2.3 s + 0.1 s after the burst
        (3100, 3100, True, 3250),  # the next cycle's first burst, cut
    ],
)
def test_where_ringback_stopped(answer_ms, dated_ms, cut, noticed_by_ms):
    audio = np.concatenate([silence(300), tone("ringback", answer_ms), silence(4000, 1)])
    end_ms, was_cut, at_ms = stopped(watch(audio))
    assert abs(end_ms - 300 - dated_ms) <= 20 and was_cut == cut
    assert at_ms - 300 <= noticed_by_ms


def test_the_first_burst_is_reported_as_ringback():
    found = watch(np.concatenate([silence(300), tone("ringback", 3000)]))
    assert found[0][0][0] == "ringback" and abs(found[0][0][1] / 8 - 300) <= 20
    assert found[0][1] <= 300 + 400 + 100  # at the end of the first burst


@pytest.mark.parametrize("other", ["busy", "unobtainable", "congestion"])
def test_another_tone_after_ringback_is_not_an_answer(other):
    audio = np.concatenate([tone("ringback", 2900), silence(100), tone(other, 4000), silence(3000)])
    assert not [e for e, _at in watch(audio) if e[0] == "stopped"]


@pytest.mark.parametrize("blip_ms", [64, 128])
def test_a_voices_short_harmonic_at_one_ringback_frequency_is_not_another_tone(blip_ms):
    """A far end's voice after answering in the long gap can hold a harmonic near 400 Hz
    for a syllable: not another tone (those burst for 225 ms or more), so the ringback's
    end is still reported - it had been lost, and with it the answer."""
    blip = generate.sine([400], [-18], blip_ms)
    audio = np.concatenate([silence(300), tone("ringback", 1500), silence(300, 1), blip, silence(4000, 2)])
    end_ms, was_cut, _at = stopped(watch(audio))
    assert abs(end_ms - 300 - 1000) <= 20 and not was_cut


def test_talking_over_the_ringback_does_not_end_a_burst():
    rng = np.random.default_rng(3)
    talk = (rng.normal(0, 900, 6000 * 8)).astype(np.int16)  # about -25 dBm0 of noise-like voice
    audio = np.clip(tone("ringback", 6000).astype(np.int32) + talk, -32768, 32767).astype(np.int16)
    found = [e[0] for e, _at in watch(audio)]
    assert found == ["ringback"]  # heard through the talk, and never taken as stopped


def test_us_ringback():
    audio = np.concatenate([silence(300), tone("ringback", 7000, "us"), silence(6000)])
    end_ms, cut, _at = stopped(watch(audio, "us"))
    assert abs(end_ms - 300 - 7000) <= 20 and cut  # cut in the second cycle's burst


def test_gives_up_without_ringback():
    w = RingbackWatch("uk")
    w.feed(silence((GIVE_UP_S + 1) * 1000))
    assert w.done and w.feed(tone("ringback", 3000)) == []


def test_a_country_without_a_cadenced_ringback_is_refused():
    assert ringback_cadence("uk")[2] == ((400, 200), (400, 2000))
    with pytest.raises(ValueError):
        ringback_cadence("nowhere")
