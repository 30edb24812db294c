"""Speech spans found as a recording is made (the call page's speech/silence lane)."""

import numpy as np

from firmware.recording.activity import MAX_SPANS, SpeechActivity
from telephony.levels import DBM0_RMS

RATE = 8000


def tone(seconds, dbm0):
    t = np.arange(int(seconds * RATE)) / RATE
    amp = DBM0_RMS * 10 ** (dbm0 / 20) * np.sqrt(2)
    return np.rint(amp * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def quiet(seconds, dbm0=-65.0, seed=1):
    rng = np.random.default_rng(seed)
    return np.rint(rng.normal(0, DBM0_RMS * 10 ** (dbm0 / 20), int(seconds * RATE))).astype(np.int16)


def spans_of(parts, chunk=None):
    x = np.concatenate(parts)
    activity = SpeechActivity(RATE)
    chunk = chunk or len(x)
    for i in range(0, len(x), chunk):
        activity.feed(x[i : i + chunk])
    return activity.spans()


def test_sound_over_the_noise_floor_is_a_span_and_the_line_noise_is_not():
    parts = [quiet(1.0), tone(1.5, -20), quiet(2.0), tone(0.5, -30), quiet(1.0)]
    assert spans_of(parts) == [(1.0, 2.5), (4.5, 5.0)]
    assert spans_of(parts, chunk=137) == [(1.0, 2.5), (4.5, 5.0)]  # however the audio arrives


def test_gaps_between_words_join_and_clicks_are_dropped():
    words = [tone(0.4, -20), quiet(0.2), tone(0.4, -20)]  # a 200 ms gap: one stretch
    assert spans_of([quiet(0.5)] + words + [quiet(0.5)]) == [(0.5, 1.5)]
    assert spans_of([quiet(0.5), tone(0.04, -10), quiet(1.0)]) == []  # 40 ms: a click
    assert spans_of([quiet(0.5), tone(1.0, -50), quiet(0.5)]) == []  # below -45 dBm0


def test_a_very_long_call_keeps_a_bounded_list():
    burst = np.concatenate([tone(0.2, -20), quiet(0.5)])
    activity = SpeechActivity(RATE)
    for _ in range(MAX_SPANS + 50):
        activity.feed(burst)
    spans = activity.spans()
    assert len(spans) == MAX_SPANS
    assert spans[-1][1] == round((MAX_SPANS + 50 - 1) * 0.7 + 0.2, 2)  # the last runs to the end


def test_the_spans_are_kept_with_the_recording_and_go_with_it(tmp_path):
    from firmware.recording.store import RecordingStore

    store = RecordingStore(tmp_path)
    assert store.speech_of("r1") is None  # made before spans were kept
    store.set_speech("r1", [(0.5, 1.5), (2.0, 3.25)])
    assert store.speech_of("r1") == [(0.5, 1.5), (2.0, 3.25)]
    store.shred_file("r1")  # retention: the file and when people spoke on it
    assert store.speech_of("r1") is None
    store.close()
