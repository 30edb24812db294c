"""LineDsp: events API, hook-state routing, time keeping, stats and errors."""

import dataclasses
import json

import numpy as np
import pytest

from firmware.dsp.detector import LineDsp
from firmware.dsp.events import AlertTone, CallerId, CallerIdError, DtmfDigit, Tone
from telephony import generate as gen


def test_events_are_frozen_dataclasses_with_t_us_and_json():
    events = [
        DtmfDigit(1_234_000, "5", 1_284_000),
        CallerId(2_000_000, "v23", "01632960123", "ACME LTD", "03020900", None),
        CallerIdError(2_100_000, "checksum", "v23"),
        AlertTone(1_900_000),
        Tone(9_000_000, "busy"),
    ]
    for event in events:
        assert dataclasses.is_dataclass(event)
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.t_us = 0
        json.dumps(event.to_json())
    assert events[0].to_json() == {"t": 1.234, "event": "dtmf", "digit": "5", "duration_ms": 50}
    assert events[1].to_json() == {
        "t": 2.0,
        "event": "caller_id",
        "standard": "v23",
        "number": "01632960123",
        "name": "ACME LTD",
        "datetime": "03020900",
        "absence": None,
    }
    assert events[2].to_json() == {
        "t": 2.1,
        "event": "caller_id_error",
        "reason": "checksum",
        "standard": "v23",
    }
    assert events[3].to_json() == {"t": 1.9, "event": "alert_tone"}
    assert events[4].to_json(t0_us=1_000_000) == {"t": 8.0, "event": "tone", "name": "busy"}
    assert CallerId(0, "bell202", message_waiting=True).to_json()["message_waiting"] is True


def test_on_hook_dtmf_is_caller_id_off_hook_it_is_dialling():
    events = []
    dsp = LineDsp("uk", on_event=events.append)
    cid = gen.caller_id("dtmf", number="01632960123", dtmf_format="AC")
    dsp.feed(gen.concat(gen.silence(200), cid, gen.silence(300)), 0)
    dsp.set_off_hook(True)
    dsp.feed(gen.concat(gen.dtmf("A123C", -8), gen.silence(300)), 10_000_000)
    dsp.flush()
    assert [type(e) for e in events] == [CallerId] + [DtmfDigit] * 5
    assert "".join(e.digit for e in events[1:]) == "A123C"
    assert events[1].t_us == pytest.approx(10_000_000, abs=10_000)


def test_audio_fed_before_a_hook_change_is_judged_by_the_old_state():
    events = []
    dsp = LineDsp("uk", on_event=events.append)
    dsp.feed(gen.concat(gen.dtmf("5", -8), gen.silence(40)), 0)  # 140 ms: still buffered
    dsp.set_off_hook(True)
    dsp.feed(gen.silence(500), 140_000)
    dsp.flush()
    assert events == []  # one on-hook digit is not a caller ID and never a dialled digit


def test_hook_change_drops_a_dtmf_caller_id_in_progress_and_counts_it():
    events = []
    dsp = LineDsp("uk", on_event=events.append)
    dsp.feed(gen.concat(gen.dtmf("A0163296", -8, 60, 60), gen.silence(100)), 0)
    dsp.set_off_hook(True)
    dsp.flush()
    assert [(type(e), e.reason) for e in events] == [(CallerIdError, "framing")]
    assert dsp.stats["caller_id_error.framing"] == 1


def test_unknown_hook_state_dtmf_rule():
    """Offline: DTMF is caller ID while only caller-ID signals came before it."""
    events = []
    dsp = LineDsp("uk", on_event=events.append, off_hook=None)
    audio = gen.concat(
        gen.silence(300),
        gen.caller_id("dtmf", number="01632960123", dtmf_format="AC"),
        gen.silence(1500),
        gen.dtmf("0800123456", -8, 60, 60),
        gen.silence(1500),
        gen.dtmf("A0800C", -8, 60, 60),
        gen.silence(500),
    )
    dsp.feed(audio, 0)
    dsp.flush()
    kinds = [type(e).__name__ for e in sorted(events, key=lambda e: e.t_us)]
    assert kinds == ["CallerId"] + ["DtmfDigit"] * 10 + ["DtmfDigit"] * 6


def test_unknown_hook_state_tone_ends_the_caller_id_phase(detect):
    audio = gen.concat(gen.call_progress("dial", "uk", 1500), gen.dtmf("A123C", -8, 60, 60), gen.silence(500))
    events = detect(audio, off_hook=None)
    assert [type(e) for e in events] == [Tone] + [DtmfDigit] * 5


def test_event_times_follow_the_feed_clock_across_gaps():
    events = []
    dsp = LineDsp("uk", on_event=events.append, off_hook=True)
    dsp.feed(gen.concat(gen.silence(100), gen.dtmf("1", -8)), 5_000_000)
    dsp.feed(gen.concat(gen.silence(100), gen.dtmf("2", -8)), 60_000_000)  # the clock jumped
    dsp.flush()
    assert [e.digit for e in events] == ["1", "2"]
    assert events[0].t_us == pytest.approx(5_100_000, abs=5_000)
    assert events[1].t_us == pytest.approx(60_100_000, abs=5_000)


def test_events_delivered_in_time_order_within_a_block(detect):
    audio = gen.concat(
        gen.dtmf("1", -8, on_ms=80), gen.silence(40), gen.dtmf("2", -8, on_ms=80), gen.silence(200)
    )
    events = detect(audio, off_hook=True, block=len(audio))
    assert [e.t_us for e in events] == sorted(e.t_us for e in events)


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(800, np.int16).tobytes(),
        bytearray(1600),
        np.zeros(800, np.int32),
        list(range(10)),
        np.zeros(1600, np.int16)[::2],
    ],
)
def test_feed_accepts_bytes_and_integer_arrays(samples):
    dsp = LineDsp("uk")
    dsp.feed(samples, 0)
    dsp.flush()
    n = len(samples) // 2 if isinstance(samples, (bytes, bytearray)) else len(samples)
    assert dsp.stats["samples"] == n


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: x.tobytes(),
        lambda x: bytearray(x.tobytes()),
        lambda x: x.astype(np.int32),
        lambda x: x.tolist(),
        lambda x: np.repeat(x, 2)[::2],
    ],
)
def test_every_accepted_input_decodes_the_same(convert):
    audio = gen.concat(gen.silence(100), gen.dtmf("42", -8, on_ms=80, off_ms=80), gen.silence(200))
    events = []
    dsp = LineDsp("uk", on_event=events.append, off_hook=True)
    dsp.feed(convert(audio), 0)
    dsp.flush()
    assert [e.digit for e in events] == ["4", "2"]


def test_feed_copies_so_callers_may_reuse_their_buffer():
    events = []
    dsp = LineDsp("uk", on_event=events.append, off_hook=True)
    tone = gen.dtmf("7", -8, on_ms=100, off_ms=100)
    buf = np.zeros(160, np.int16)
    for i in range(0, len(tone), 160):
        buf[:] = tone[i : i + 160]
        dsp.feed(buf, i * 125)
    buf[:] = 0
    dsp.feed(np.zeros(4000, np.int16), 200_000)
    dsp.flush()
    assert [e.digit for e in events] == ["7"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="country"):
        LineDsp("fr")
    with pytest.raises(ValueError, match="standard"):
        LineDsp("uk", standard="v21")
    with pytest.raises(ValueError, match="even number of bytes"):
        LineDsp("uk").feed(b"\x00\x01\x02", 0)


def test_stats_count_events(detect_stats, pad):
    audio = pad(
        gen.caller_id("v23", number="123", bad_checksum=True),
        gen.silence(500),
        gen.caller_id("v23", number="123"),
    )
    events, stats = detect_stats(audio)
    assert stats["CallerId"] == 1 and stats["CallerIdError"] == 1 and stats["caller_id_error.checksum"] == 1


def test_handler_exceptions_propagate():
    def boom(event):
        raise RuntimeError("handler failed")

    dsp = LineDsp("uk", on_event=boom, off_hook=True)
    with pytest.raises(RuntimeError, match="handler failed"):
        dsp.feed(gen.concat(gen.dtmf("1", -8), gen.silence(500)), 0)
        dsp.flush()


def test_hours_of_silence_keep_positions_exact():
    events = []
    dsp = LineDsp("uk", on_event=events.append, off_hook=True, block_ms=1000)
    second = np.zeros(8000, np.int16)
    for s in range(3600):
        dsp.feed(second, s * 1_000_000)
    dsp.feed(gen.concat(gen.dtmf("9", -8), gen.silence(500)), 3600 * 1_000_000)
    dsp.flush()
    digits = [e for e in events if hasattr(e, "digit")]  # (the silence is reported too)
    assert [(e.digit, round(e.t_us / 1000)) for e in digits] == [("9", 3_600_000)]


def test_every_event_kind_the_supervisor_knows_is_an_event_the_detector_reports():
    """The supervisor tells DSP events apart by class name (events.KINDS): each names
    an event class, and the detector exports them all."""
    from firmware.dsp import detector, events

    assert all(dataclasses.is_dataclass(getattr(events, kind)) for kind in events.KINDS)
    assert set(detector.__all__) == {"LineDsp", *events.KINDS}
