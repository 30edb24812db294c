"""Voice onsets (issue 20): the far end answering an outbound call, told from the tones."""

import numpy as np
import pytest

from firmware.dsp.answer import VoiceOnset
from firmware.dsp.events import AnswerWithdrawn, RingbackStopped, Speech
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


def _dialled_then_ringback(ringback_ms, voice_at_ms, voice, seed=3):
    """Off-hook audio: a dialled number, 300 ms, ringback for ``ringback_ms`` (UK cadence),
    then silence; ``voice`` mixed in ``voice_at_ms`` after the ringback began. Returns the
    signal and the sample where the ringback began."""
    dialled = gen.concat(gen.dtmf("01632960302", on_ms=70, off_ms=80), gen.silence(300))
    ring_at = len(dialled)
    total = ring_at + ringback_ms * 8 + 4 * 8000
    line = gen.mix(
        gen.concat(dialled, gen.call_progress("ringback", "uk", ringback_ms)),
        gen.concat(gen.silence(len(dialled) // 8 + voice_at_ms), voice),
        gen.white_noise(total, -65, seed=seed),
    )
    return line, ring_at


def _answer_events(signal):
    """The line detector's answer events (Speech, AnswerWithdrawn, RingbackStopped), in order."""
    from support.dsp import run_dsp

    events, _stats = run_dsp(signal, block=160, off_hook=True)
    return [e for e in events if type(e).__name__ in ("Speech", "AnswerWithdrawn", "RingbackStopped")]


def _line_events(signal):
    """The answer events left standing: a provisional Speech withdrawn later is gone."""
    standing = []
    for event in _answer_events(signal):
        if isinstance(event, AnswerWithdrawn):
            assert standing and standing[-1].provisional, standing  # only a provisional one
            assert event.t_us > standing.pop().t_us
        else:
            standing.append(event)
    return standing


@pytest.mark.parametrize("gain_db", [0, 8])  # the voice at -18 dBm0, and loud: -10 (over -13 ringback)
@pytest.mark.parametrize("voice_at_ms", [150, 500, 700, 1300, 4200])  # bursts, short gap, long gaps
def test_the_callers_voice_during_ringback_is_not_an_answer(voice, voice_at_ms, gain_db):
    """The caller talking while the far end is rung (one capture channel carries both
    directions): ringback goes on after the voice, so it is nobody's answer - even talk
    loud enough to drown a burst's share of the line's energy."""
    voice = np.clip(voice * 10 ** (gain_db / 20), -32768, 32767).astype(np.int16)
    ringback_ms = voice_at_ms + len(voice) // 8 + 3000 * 3  # three more cycles after it
    signal, _ring_at = _dialled_then_ringback(ringback_ms, voice_at_ms, voice)
    assert _line_events(signal[: -4 * 8000]) == []


def test_a_voice_in_the_long_gap_is_the_answer_when_ringback_does_not_come_back(voice):
    """The far end answering with a voice early in the long gap: ringback stops there, and
    the answer is dated at the voice, not at the end of the last burst."""
    signal, ring_at = _dialled_then_ringback(1100, 1100, voice)  # answered 0.1 s into the gap
    event, confirmed = _line_events(signal)
    first = np.flatnonzero(np.abs(voice) > 300)[0]  # the first audible sample
    t_s = event.t_us / 1e6 - (ring_at + 1100 * 8 + first) / 8000
    assert type(event).__name__ == "Speech" and -0.05 <= t_s <= 0.15, (event, t_s)
    # reported at once, as a provisional answer; confirmed when the next burst is overdue
    assert event.provisional and isinstance(confirmed, RingbackStopped) and not confirmed.cut
    assert abs(confirmed.t_us - (ring_at * 125 + 1_000_000)) <= 32_000  # the last burst's end


def test_a_voice_in_the_long_gap_is_a_provisional_answer_at_once(voice):
    """A voice early in the long gap is reported at once, provisionally (within the voice
    detector's quarter second and the 0.2 s it is run every while ringback goes on, not
    the detector's 0.5 s block), and withdrawn at the start
    of the next burst, which came on time: it was the caller's."""
    from firmware.dsp.detector import LineDsp

    signal, ring_at = _dialled_then_ringback(1300 + 3000 * 3, 1300, voice)
    found = []  # (event, sample position fed when it was reported)
    fed = [0]
    dsp = LineDsp(on_event=lambda e: found.append((e, fed[0])), off_hook=True)
    for start in range(0, len(signal), 160):
        fed[0] = start + 160
        dsp.feed(signal[start : start + 160], start * 125)
    kinds = ("Speech", "AnswerWithdrawn", "RingbackStopped")
    answers = [(e, at) for e, at in found if type(e).__name__ in kinds]
    (speech, heard_at), (withdrawn, _at) = answers[:2]
    onset_s = (ring_at + 1300 * 8 + np.flatnonzero(np.abs(voice) > 300)[0]) / 8000
    assert isinstance(speech, Speech) and speech.provisional and abs(speech.t_us / 1e6 - onset_s) <= 0.1
    # a quarter second of voice, the guard frames, and at most EARLY_VOICE_SAMPLES (0.2 s)
    assert heard_at / 8000 - onset_s <= 0.25 + 0.05 + 0.2, heard_at / 8000 - onset_s
    assert isinstance(withdrawn, AnswerWithdrawn)
    assert abs(withdrawn.t_us / 1e6 - (ring_at / 8000 + 3.0)) <= 0.05  # the next cycle's first burst
    assert dsp.stats["answer_withdrawn"] >= 1


@pytest.fixture(scope="module")
def loud_talk(tmp_path_factory):
    """A long sentence at -10 dBm0: louder than the ringback (-13), over a whole burst."""
    from board.sim.speech import SpeechSynth
    from telephony import levels

    synth = SpeechSynth(cache_dir=str(tmp_path_factory.mktemp("speech")))
    said = synth.say("Yes, I am holding for accounts, one moment please.", voice="en-gb")
    return levels.set_active_level(said, -10)


@pytest.mark.parametrize("voice_at_ms", [150, 2550])
def test_a_burst_under_loud_talk_is_still_ringback(loud_talk, voice_at_ms):
    """Talk over a burst dilutes both ringback frequencies' shares of its energy alike;
    the burst is still ringback (their balance), so ringback is not taken as stopped."""
    ringback_ms = voice_at_ms + len(loud_talk) // 8 + 3000 * 3
    signal, _ring_at = _dialled_then_ringback(ringback_ms, voice_at_ms, loud_talk, seed=voice_at_ms)
    assert _line_events(signal[: -4 * 8000]) == []


def _feed(dsp, signal, block=960):
    for start in range(0, len(signal), block):
        dsp.feed(signal[start : start + block], start * 125)
    dsp.flush()


def test_once_told_the_call_is_answered_the_line_dsp_stops_the_answer_watch(voice):
    """After ``answered()`` the voice onsets and the ringback watch stop (the box tells it
    at the supervisor's CallAnswered), and everything else is reported as before; the
    next time the line goes off-hook the answer watch runs again."""
    from firmware.dsp.detector import LineDsp

    signal, _ring_at = _dialled_then_ringback(1100, 1100, voice)
    signal = gen.concat(signal, gen.silence(2500), gen.dtmf("5", on_ms=70, off_ms=80), gen.silence(3000))
    kinds = lambda events: [type(e).__name__ for e in events]  # noqa: E731

    events = []
    dsp = LineDsp(on_event=events.append, off_hook=True)
    _feed(dsp, signal)
    assert {"Speech", "Tone", "DtmfDigit", "Quiet", "Sound"} <= set(kinds(events))
    told = []
    dsp = LineDsp(on_event=told.append, off_hook=True)
    dsp.answered()
    _feed(dsp, signal)
    expected = [e for e in events if type(e).__name__ not in ("Speech", "RingbackStopped", "Tone")]
    assert [e for e in told if type(e).__name__ != "Tone"] == expected
    assert "Speech" not in kinds(told) and "RingbackStopped" not in kinds(told)

    dsp.set_off_hook(False)
    dsp.set_off_hook(True)
    again = []
    dsp.on_event = again.append
    _feed(dsp, signal)
    assert "Speech" in kinds(again)


def test_answered_on_hook_changes_nothing(voice):
    from firmware.dsp.detector import LineDsp

    events = []
    dsp = LineDsp(on_event=events.append, off_hook=False)
    dsp.answered()  # on-hook: no call to be answered
    dsp.set_off_hook(True)
    _feed(dsp, gen.concat(gen.silence(500), voice))
    assert "Speech" in [type(e).__name__ for e in events]


def test_a_voice_while_dialling_leaves_the_answer_watch_running(voice):
    """The caller saying the number aloud between two keys: the voice onset is reported,
    and the supervisor leaves it (it began before the last digit). The watch stopped
    there for good, so the far end's voice after a dial timeout's assumed answer was
    never reported: the call waited for a sign that could not come, and was neither told
    nor recorded. Only the box's ``answered()`` stops it."""
    from firmware.dsp.detector import LineDsp

    said = voice[: 8000 + 2000]  # about a second of it
    line = gen.concat(
        gen.dtmf("0163", on_ms=70, off_ms=80),
        gen.silence(100),
        said,
        gen.silence(700),
        gen.dtmf("2960302", on_ms=70, off_ms=80),
        gen.silence(4500),
        voice,
        gen.silence(1000),
    )
    signal = gen.mix(line, gen.white_noise(len(line), -65, seed=4))
    events = []
    dsp = LineDsp(on_event=events.append, off_hook=True)
    _feed(dsp, signal)
    digits = [e for e in events if type(e).__name__ == "DtmfDigit"]
    speech = [e for e in events if isinstance(e, Speech)]
    assert len(digits) == 11
    assert speech[0].t_us < digits[4].t_us  # the caller's, between the keys
    assert any(s.t_us > digits[-1].end_us + 4_000_000 for s in speech)  # the far end's
