"""The detector on hub and ATA ports (issue 18): every FSK caller-ID variant on any
line with the standard told from the signal, other countries' clear-down tones,
and the silence watch that lets a call end when an adapter signals nothing."""

import numpy as np
import pytest

from board.sim import signals
from firmware.dsp.detector import LineDsp
from firmware.dsp.events import CallerId, Quiet, Sound, Tone

RATE = 8000


def zeros(ms):
    return np.zeros(ms * RATE // 1000, np.int16)


def speechlike(ms, level_dbm0=-20):
    """Noise at a speech level: sound, not a tone."""
    rng = np.random.default_rng(1)
    rms = 16090 * 10 ** (level_dbm0 / 20)
    return np.clip(rng.standard_normal(ms * RATE // 1000) * rms, -32768, 32767).astype(np.int16)


def run(dsp_args, *parts):
    events = []
    dsp = LineDsp(on_event=events.append, **dsp_args)
    dsp.feed(np.concatenate(parts), 0)
    dsp.flush()
    return events


@pytest.mark.parametrize("country", ["uk", "us"])
@pytest.mark.parametrize("sent", ["v23", "bell202"])
def test_either_fsk_is_decoded_on_any_line_and_named_right(country, sent):
    cid = signals.caller_id(sent, number="01632960123", name="ACME LTD", datetime="03020900")
    events = run({"country": country}, zeros(1500), cid, zeros(2000))
    (ev,) = [e for e in events if isinstance(e, CallerId)]
    assert (ev.standard, ev.number, ev.name) == (sent, "01632960123", "ACME LTD")
    assert abs(ev.t_us - 1_500_000) <= 20_000


def test_another_countrys_busy_tone_is_heard_when_configured():
    busy = signals.call_progress("busy", "us", 3000)
    heard = run(
        {"country": "uk", "off_hook": True, "tone_countries": ("us",)},
        speechlike(1000),
        zeros(1000),
        busy,
        zeros(1000),
    )
    (tone,) = [e for e in heard if isinstance(e, Tone)]
    assert tone.name == "busy" and abs(tone.t_us - 2_000_000) <= 20_000
    not_heard = run({"country": "uk", "off_hook": True}, zeros(1000), busy, zeros(1000))
    assert [e for e in not_heard if isinstance(e, Tone) and e.name == "busy"] == []


def test_an_unknown_tone_country_is_refused():
    with pytest.raises(ValueError, match="unknown tone country"):
        LineDsp("uk", tone_countries=("fr",))


@pytest.mark.parametrize("block_ms", [20, 500, 10_000])
def test_quiet_is_reported_where_the_sound_stopped_and_sound_where_it_came_back(block_ms):
    audio = np.concatenate([speechlike(1230), zeros(5000), speechlike(500), zeros(1000)])
    events = []
    dsp = LineDsp("uk", on_event=events.append, off_hook=True)
    step = block_ms * RATE // 1000
    for k in range(0, len(audio), step):
        dsp.feed(audio[k : k + step], k * 125)
    dsp.flush()
    watch = [(type(e).__name__, round(e.t_us / 1000)) for e in events if isinstance(e, (Quiet, Sound))]
    assert watch == [("Quiet", 1240), ("Sound", 6220)]  # to the 20 ms frame


def test_line_noise_and_short_pauses_are_not_sound_or_quiet():
    noise = speechlike(6000, level_dbm0=-65)
    events = run({"country": "uk", "off_hook": True}, speechlike(1000), noise)
    assert [round(e.t_us / 1000) for e in events if isinstance(e, Quiet)] == [1000]
    pauses = run(
        {"country": "uk", "off_hook": True},
        *[part for _ in range(4) for part in (speechlike(800), zeros(1500))],
    )
    assert not any(isinstance(e, (Quiet, Sound)) for e in pauses)


def test_no_silence_watch_on_hook():
    events = run({"country": "uk"}, zeros(10000))
    assert not any(isinstance(e, (Quiet, Sound)) for e in events)
