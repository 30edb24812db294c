"""The compiled timeline: cadences, caller-ID sequences, dialling, hang-ups,
contact bounce, faults and the truth each call must produce. A fake synth
stands in for espeak-ng (tests/sim/test_speech.py uses the real one)."""

import json

import numpy as np
import pytest

from board.sim.scenario import load_scenario, loads_scenario
from board.sim.timeline import CallTruth, FaultTruth, PinEdge, compile_timeline
from telephony import levels

S = 1_000_000  # µs per second


class FakeSynth:
    """A 300 Hz tone, 0.25 s per word, at a fixed level; records what it was asked."""

    def __init__(self):
        self.said = []

    def say(self, text, voice="en-gb", rate_wpm=160, pitch=50):
        self.said.append((text, voice))
        n = 2000 * len(text.split())
        return (3000 * np.sin(2 * np.pi * 300 * np.arange(n) / 8000)).astype(np.int16)


def scenario(calls, faults=(), **top):
    data = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 4,
        "calls": list(calls),
        "faults": list(faults),
    }
    data.update(top)
    return loads_scenario(json.dumps(data))


def compile_(calls, faults=(), synth=None, **top):
    return compile_timeline(scenario(calls, faults, **top), synth or FakeSynth())


def edges(tl, line, signal):
    return [(e.t_us, e.active) for e in tl.edges if e.line == line and e.signal == signal]


def nominal(tl, line, signal, bounce_ms=3):
    """The nominal changes: chatter follows within bounce_ms of each of them."""
    out = []
    for t, active in edges(tl, line, signal):
        if out and t < out[-1][0] + bounce_ms * 1000:
            continue
        out.append((t, active))
    return out


def bursts(tl, line, hz):
    """Ring bursts as (start, end): runs of pulses one ring period apart."""
    period = S // hz
    ons = [t for t, a in edges(tl, line, "ring") if a]
    out = []
    for t in ons:
        if out and t - out[-1][1] == period:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b + period) for a, b in out]


def segments(tl, line, kind=None):
    return [s for s in tl.audio[line] if kind is None or s.kind == kind]


# ------------------------------------------------------------------ ringing
def test_uk_ring_cadence_and_25_hz_half_wave():
    tl = compile_([{"line": 1, "at": 1.0, "direction": "in", "rings": 2, "answer": False}])
    assert bursts(tl, 1, 25) == [
        (1.0 * S, 1.4 * S),
        (1.6 * S, 2.0 * S),
        (4.0 * S, 4.4 * S),
        (4.6 * S, 5.0 * S),
    ]
    ring = edges(tl, 1, "ring")
    assert ring[:4] == [(1_000_000, True), (1_020_000, False), (1_040_000, True), (1_060_000, False)]
    assert len(ring) == 4 * 10 * 2 and ring[-1] == (4_980_000, False)
    assert edges(tl, 1, "polarity") == [] and edges(tl, 1, "hook") == []


def test_us_ring_cadence_and_20_hz():
    tl = compile_([{"line": 2, "at": 3.0, "direction": "in", "rings": 2, "answer": False}], country="us")
    assert bursts(tl, 2, 20) == [(3 * S, 5 * S), (9 * S, 11 * S)]
    ring = edges(tl, 2, "ring")
    assert ring[:2] == [(3_000_000, True), (3_025_000, False)] and len(ring) == 2 * 40 * 2


def test_answer_after_the_last_burst_and_local_hang_up():
    tl = compile_([{"line": 1, "at": 1.0, "direction": "in", "rings": 3, "answer_delay": 0.7, "talk": 12.0}])
    last_end = bursts(tl, 1, 25)[-1][1]
    assert last_end == (1.0 + 2 * 3.0 + 1.0) * S
    answered = last_end + 700_000
    for signal in ("hook", "in_use"):
        assert nominal(tl, 1, signal) == [(answered, True), (answered + 12 * S, False)]
    assert tl.truth == (
        CallTruth(
            index=0,
            line=1,
            direction="in",
            started_us=1 * S,
            answered_us=answered,
            ended_us=answered + 12 * S,
            number=None,
            name=None,
            absence=None,
            extension=False,
            end_reason="local",
        ),
    )


def test_missed_call_truth_and_no_hook_activity():
    tl = compile_(
        [
            {
                "line": 3,
                "at": 2.0,
                "direction": "in",
                "rings": 4,
                "answer": False,
                "caller_id": {"number": "01632960123", "name": "ACME LTD"},
            }
        ]
    )
    (truth,) = tl.truth
    last_end = bursts(tl, 3, 25)[-1][1]
    assert (truth.answered_us, truth.ended_us, truth.end_reason) == (None, last_end, "missed")
    assert (truth.number, truth.name) == ("01632960123", "ACME LTD")
    assert edges(tl, 3, "hook") == [] and edges(tl, 3, "in_use") == []
    # The caller-ID polarity reversal ends with the ringing.
    assert edges(tl, 3, "polarity") == [(2 * S, True), (last_end, False)]


# ------------------------------------------------------------------ caller ID
def test_uk_v23_caller_id_sequence():
    tl = compile_(
        [
            {
                "line": 1,
                "at": 2.0,
                "direction": "in",
                "talk": 5.0,
                "caller_id": {"number": "01632960123", "name": "ACME LTD"},
            }
        ]
    )
    (alert,) = segments(tl, 1, "alert")
    (fsk,) = segments(tl, 1, "fsk")
    assert (alert.t_us, alert.end_us) == (2_150_000, 2_250_000)
    assert fsk.t_us == 2_300_000 and fsk.end_us > fsk.t_us + 300_000
    first_burst = bursts(tl, 1, 25)[0]
    assert first_burst[0] == fsk.end_us + 250_000
    truth = tl.truth[0]
    assert edges(tl, 1, "polarity") == [(2 * S, True), (truth.ended_us, False)]
    assert (truth.number, truth.name, truth.cid_standard, truth.cid_datetime) == (
        "01632960123",
        "ACME LTD",
        "v23",
        "03020900",
    )


def test_dtmf_caller_id_sequence():
    tl = compile_(
        [
            {
                "line": 2,
                "at": 1.0,
                "direction": "in",
                "talk": 5.0,
                "caller_id": {"number": "01632960123", "standard": "dtmf"},
            }
        ]
    )
    (cid,) = segments(tl, 2, "dtmf_cid")
    assert cid.t_us == 1_300_000 and segments(tl, 2, "alert") == []
    assert bursts(tl, 2, 25)[0][0] == cid.end_us + 300_000
    assert edges(tl, 2, "polarity")[0] == (1 * S, True)
    assert tl.truth[0].cid_standard == "dtmf"


def test_us_bell202_caller_id_between_first_and_second_ring():
    tl = compile_(
        [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "rings": 3,
                "talk": 5.0,
                "caller_id": {"number": "2025550123", "name": "DOE JOHN"},
            }
        ],
        country="us",
    )
    (fsk,) = segments(tl, 1, "fsk")
    b = bursts(tl, 1, 20)
    assert b[0] == (1 * S, 3 * S)
    assert fsk.t_us == 3.5 * S and fsk.end_us <= b[1][0] - 200_000
    assert edges(tl, 1, "polarity") == []
    assert tl.truth[0].cid_standard == "bell202"


def test_withheld_number():
    tl = compile_(
        [{"line": 1, "at": 1.0, "direction": "in", "talk": 5.0, "caller_id": {"absence": "private"}}]
    )
    truth = tl.truth[0]
    assert (truth.number, truth.name, truth.absence) == (None, None, "private")
    assert len(segments(tl, 1, "fsk")) == 1


# ------------------------------------------------------------------ outbound
def test_outbound_dtmf_dial_tone_digits_and_answer():
    tl = compile_(
        [
            {
                "line": 2,
                "at": 5.0,
                "direction": "out",
                "talk": 10.0,
                "dial": {"digits": "0207946", "delay": 2.0, "on_ms": 60, "off_ms": 90},
            }
        ]
    )
    (tone,) = segments(tl, 2, "dial_tone")
    (dtmf,) = segments(tl, 2, "dtmf")
    assert (tone.t_us, tone.end_us) == (5 * S, 7 * S)
    assert dtmf.t_us == 7 * S
    end_of_dialling = 7 * S + 7 * 60_000 + 6 * 90_000
    assert dtmf.end_us == end_of_dialling
    truth = tl.truth[0]
    assert (truth.started_us, truth.answered_us, truth.ended_us) == (
        5 * S,
        end_of_dialling,
        end_of_dialling + 10 * S,
    )
    assert (truth.number, truth.dial_mode, truth.direction) == ("0207946", "dtmf", "out")
    assert nominal(tl, 2, "hook") == [(5 * S, True), (truth.ended_us, False)]


def decode_pulses(changes):
    """Digits, break lengths, make lengths and inter-digit gaps from hook changes."""
    breaks = [(t, changes[i + 1][0]) for i, (t, a) in enumerate(changes[:-1]) if not a]
    digits, widths, makes, gaps = [], [], [], []
    count = 0
    for i, (start, end) in enumerate(breaks):
        widths.append(end - start)
        count += 1
        nxt = breaks[i + 1][0] if i + 1 < len(breaks) else None
        if nxt is not None and nxt - end < 300_000:
            makes.append(nxt - end)
        else:
            digits.append("0" if count == 10 else str(count))
            count = 0
            if nxt is not None:
                gaps.append(nxt - end)
    return "".join(digits), widths, makes, gaps


def test_outbound_pulse_dialling_timing():
    tl = compile_(
        [{"line": 4, "at": 2.0, "direction": "out", "talk": 5.0, "dial": {"digits": "3102", "mode": "pulse"}}]
    )
    for signal in ("hook", "in_use"):
        changes = nominal(tl, 4, signal)
        digits, widths, makes, gaps = decode_pulses(changes[:-1])  # without the final on-hook
        assert digits == "3102"
        assert set(widths) == {66_000} and set(makes) == {34_000}
        assert set(gaps) == {34_000 + 800_000}
    assert changes[1][0] == 3.5 * S  # the first break comes dial.delay after off-hook
    truth = tl.truth[0]
    last_make = changes[-2][0]
    assert truth.answered_us == last_make and truth.number == "3102"
    assert truth.dial_mode == "pulse"
    (tone,) = segments(tl, 4, "dial_tone")
    assert (tone.t_us, tone.end_us) == (2 * S, 3.5 * S)


def test_extension_changes_in_use_but_never_hook():
    tl = compile_(
        [
            {"line": 1, "at": 1.0, "direction": "in", "extension": True, "talk": 5.0},
            {
                "line": 2,
                "at": 1.0,
                "direction": "out",
                "extension": True,
                "talk": 5.0,
                "dial": {"digits": "21", "mode": "pulse"},
            },
        ]
    )
    assert edges(tl, 1, "hook") == [] and edges(tl, 2, "hook") == []
    assert nominal(tl, 1, "in_use") == [(tl.truth[0].answered_us, True), (tl.truth[0].ended_us, False)]
    assert decode_pulses(nominal(tl, 2, "in_use")[:-1])[0] == "21"
    assert all(t.extension for t in tl.truth)


def test_polarity_reversal_on_answer():
    tl = compile_(
        [
            {
                "line": 1,
                "at": 1.0,
                "direction": "out",
                "polarity_on_answer": True,
                "dial": {"digits": "123"},
                "talk": 5.0,
            }
        ]
    )
    truth = tl.truth[0]
    assert edges(tl, 1, "polarity") == [(truth.answered_us, True), (truth.ended_us, False)]


# ------------------------------------------------------------------ hang-up
def test_remote_hang_up_k_break_clear_tone_then_on_hook():
    tl = compile_(
        [{"line": 1, "at": 1.0, "direction": "in", "talk": 10.0, "hangup": "remote", "hangup_delay": 3.0}]
    )
    truth = tl.truth[0]
    clear = truth.answered_us + 10 * S
    assert (truth.ended_us, truth.end_reason) == (clear, "remote_break")
    assert edges(tl, 1, "power") == [(0, True), (clear, False), (clear + 200_000, True)]
    (tone,) = segments(tl, 1, "clear_tone")
    assert (tone.t_us, tone.end_us) == (clear + 200_000, clear + 3 * S)
    assert nominal(tl, 1, "hook")[-1] == (clear + 3 * S, False)


# ------------------------------------------------------------------ bounce
MIXED = [
    {"line": 1, "at": 1.0, "direction": "in", "talk": 4.0, "caller_id": {"number": "01632960123"}},
    {
        "line": 2,
        "at": 1.0,
        "direction": "out",
        "talk": 4.0,
        "dial": {"digits": "907", "mode": "pulse"},
        "hangup": "remote",
    },
    {"line": 3, "at": 2.0, "direction": "in", "extension": True, "talk": 3.0, "polarity_on_answer": True},
    {"line": 4, "at": 0.5, "direction": "out", "dial": {"digits": "42"}, "talk": 2.0},
]
MIXED_FAULTS = [
    {"line": 4, "at": 20.0, "kind": "stuck_off_hook", "duration": 5.0},
    {"line": 3, "at": 20.0, "kind": "no_line_voltage", "duration": 2.0},
]


def by_signal(tl):
    out = {}
    for e in tl.edges:
        out.setdefault((e.line, e.signal), []).append((e.t_us, e.active))
    return out


@pytest.mark.parametrize("bounce_ms", [1, 3, 10])
def test_bounce_chatter_stays_within_bounce_ms_and_ends_in_the_new_level(bounce_ms):
    clean = by_signal(compile_(MIXED, MIXED_FAULTS, bounce_ms=0))
    bouncy = by_signal(compile_(MIXED, MIXED_FAULTS, bounce_ms=bounce_ms))
    assert clean.keys() == bouncy.keys()
    chatter_seen = 0
    for key, nominal_edges in clean.items():
        got = bouncy[key]
        if key[1] not in ("hook", "in_use"):
            assert got == nominal_edges, key  # ring, polarity, power never bounce
            continue
        times = [t for t, _ in nominal_edges]
        for i, (t, active) in enumerate(nominal_edges):
            nxt = times[i + 1] if i + 1 < len(times) else float("inf")
            run = [(u, a) for u, a in got if t <= u < nxt]
            assert run[0] == (t, active), key  # the change happens at its nominal time
            assert run[-1][1] == active, key  # ... and ends in the new level
            assert all(u < t + bounce_ms * 1000 for u, _ in run), key
            assert len(run) - 1 in (2, 4, 6), key
            chatter_seen += len(run) - 1
    assert chatter_seen > 0


def test_every_input_alternates_and_power_starts_active():
    tl = compile_(MIXED, MIXED_FAULTS)
    for (line, signal), seq in by_signal(tl).items():
        levels = [a for _, a in seq]
        assert levels == [i % 2 == 0 for i in range(len(levels))], (line, signal)
        assert [t for t, _ in seq] == sorted(t for t, _ in seq)
    for line in range(1, 5):
        assert edges(tl, line, "power")[0] == (0, True)
    assert tl.initial == {"hook": False, "ring": False, "polarity": False, "in_use": False, "power": True}
    assert list(tl.edges) == sorted(tl.edges, key=lambda e: e.t_us)
    assert all(isinstance(e, PinEdge) for e in tl.edges)


def test_truth_times_are_nominal_not_chatter():
    tl = compile_(MIXED, bounce_ms=10)
    clean = compile_(MIXED, bounce_ms=0)
    assert tl.truth == clean.truth


# ------------------------------------------------------------------ determinism
def test_same_seed_same_timeline_other_seed_other_chatter():
    a = compile_(MIXED, MIXED_FAULTS, seed=5)
    b = compile_(MIXED, MIXED_FAULTS, seed=5)
    c = compile_(MIXED, MIXED_FAULTS, seed=6)
    assert a.edges == b.edges and a.truth == b.truth and a.end_us == b.end_us
    assert a.active_spans == b.active_spans
    for line in a.audio:
        assert [(s.t_us, s.kind) for s in a.audio[line]] == [(s.t_us, s.kind) for s in b.audio[line]]
        pairs = zip(a.audio[line], b.audio[line], strict=True)
        assert all(np.array_equal(x.samples, y.samples) for x, y in pairs)
    assert a.edges != c.edges and a.truth == c.truth


def test_chatter_does_not_depend_on_other_calls():
    alone = compile_(MIXED[:1])
    together = compile_(MIXED)
    assert by_signal(alone)[(1, "hook")] == by_signal(together)[(1, "hook")]


# ------------------------------------------------------------------ faults
def test_faults():
    tl = compile_([], MIXED_FAULTS)
    assert tl.fault_truth == (
        FaultTruth(0, 4, "stuck_off_hook", 20 * S, 25 * S),
        FaultTruth(1, 3, "no_line_voltage", 20 * S, 22 * S),
    )
    assert nominal(tl, 4, "hook") == [(20 * S, True), (25 * S, False)]
    assert nominal(tl, 4, "in_use") == [(20 * S, True), (25 * S, False)]
    assert edges(tl, 3, "power") == [(0, True), (20 * S, False), (22 * S, True)]
    assert edges(tl, 3, "hook") == [] and edges(tl, 4, "ring") == []
    assert tl.truth == ()


def test_no_line_voltage_from_time_zero_never_shows_power():
    tl = compile_([], [{"line": 1, "at": 0, "kind": "no_line_voltage", "duration": 3}])
    assert edges(tl, 1, "power") == [(3 * S, True)]


# ------------------------------------------------------------------ speech
def test_speech_placement_level_voice_and_cut_at_the_end():
    synth = FakeSynth()
    words = " ".join(["word"] * 40)  # 10 s of fake speech in a 4 s call
    tl = compile_(
        [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "talk": 4.0,
                "speech": [
                    {"at": 0.5, "text": "one two", "level_dbm0": -12},
                    {"at": 1.0, "text": words, "voice": "en-gb-x-rp"},
                ],
            }
        ],
        synth=synth,
        speech_level_dbm0=-20,
    )
    truth = tl.truth[0]
    a, b = segments(tl, 1, "speech")
    assert a.t_us == truth.answered_us + 500_000 and len(a.samples) == 4000
    assert levels.active_level_dbm0(a.samples) == pytest.approx(-12, abs=0.1)
    assert b.t_us == truth.answered_us + S
    assert b.end_us == truth.ended_us  # cut where the call ends
    assert levels.active_level_dbm0(b.samples) == pytest.approx(-20, abs=0.1)
    assert synth.said[:2] == [("one two", "en-gb"), (words, "en-gb-x-rp")]  # then again, to play
    assert all(s.samples.dtype == np.int16 for s in tl.audio[1])


def test_a_voice_the_synth_has_not_got_is_named_as_the_call_it_is_in():
    """It came out as espeak-ng's error alone, naming no call (every other error names its field)."""
    from telephony.errors import ScenarioError

    call = {"line": 1, "at": 1.0, "direction": "in", "speech": [{"at": 0.5, "text": "hi", "voice": "zz"}]}
    with pytest.raises(ScenarioError, match=r"calls\[1\]: espeak-ng failed for voice 'zz'"):
        compile_([dict(call, line=2, speech="fine"), call], synth=_NoVoiceFor("zz"))


class _NoVoiceFor(FakeSynth):
    def __init__(self, missing):
        super().__init__()
        self.missing = missing

    def say(self, text, voice="en-gb", rate_wpm=160, pitch=50):
        from board.sim.speech import SpeechError

        if voice == self.missing:
            raise SpeechError("espeak-ng failed for voice %r: no such voice" % voice)
        return super().say(text, voice, rate_wpm, pitch)


def test_plain_string_speech_starts_half_a_second_after_answer():
    tl = compile_(
        [{"line": 2, "at": 1.0, "direction": "out", "dial": {"digits": "1"}, "speech": "hello there"}],
        country="us",
    )
    (seg,) = segments(tl, 2, "speech")
    assert seg.t_us == tl.truth[0].answered_us + 500_000
    assert levels.active_level_dbm0(seg.samples) == pytest.approx(-18, abs=0.1)


def test_speech_cut_at_the_remote_clear():
    tl = compile_(
        [
            {
                "line": 1,
                "at": 1.0,
                "direction": "in",
                "talk": 2.0,
                "hangup": "remote",
                "speech": " ".join(["word"] * 40),
            }
        ]
    )
    (seg,) = segments(tl, 1, "speech")
    assert seg.end_us == tl.truth[0].ended_us


# ------------------------------------------------------------------ spans and end
def test_active_spans_cover_every_signal_and_end_us():
    tl = compile_(MIXED, MIXED_FAULTS)

    def covered(line, t):
        return any(a <= t < b for a, b in tl.active_spans[line])

    for e in tl.edges:
        if e.t_us > 0:
            assert covered(e.line, e.t_us), e
    for line, segs in tl.audio.items():
        for seg in segs:
            assert covered(line, seg.t_us) and covered(line, seg.end_us - 1)
    for spans in tl.active_spans.values():
        assert list(spans) == sorted(spans)
        assert all(b < c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))  # merged
    last = max(e.t_us for e in tl.edges)
    assert tl.end_us >= last + 10 * S - 10_000
    assert tl.active_spans[4][0][0] == 0.5 * S


def test_idle_lines_have_empty_spans_and_audio():
    tl = compile_([{"line": 1, "at": 1.0, "direction": "in", "answer": False}])
    assert tl.active_spans[2] == () and tl.audio[3] == () and tl.lines == 4


# ------------------------------------------------------------------ the demo
def test_the_demo_compiles_and_its_calls_do_not_overlap():
    sc = load_scenario("demo")
    tl = compile_timeline(sc, FakeSynth())
    assert len(tl.truth) == len(sc.calls) and len(tl.fault_truth) == 1
    per_line = {}
    for truth in tl.truth:
        per_line.setdefault(truth.line, []).append(truth)
    for calls in per_line.values():
        calls.sort(key=lambda c: c.started_us)
        for a, b in zip(calls, calls[1:], strict=False):
            assert b.started_us > a.ended_us + S
    assert 500 * S < tl.end_us < 700 * S
    reasons = {t.end_reason for t in tl.truth}
    assert reasons == {"local", "remote_break", "missed"}
    assert tl.truth[0].started_us == 3 * S


def _outbound(answer=True, **dial):
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": "0123", "delay": 1.0, "answer_after": 6.0, "ringback": True, **dial},
    }
    if not answer:
        call["answer"] = False
    return call


def test_the_callers_speech_is_timed_from_the_end_of_dialling():
    tl = compile_([_outbound(caller_speech=[{"at": 1.0, "text": "come on pick up"}])])
    (truth,) = tl.truth
    dialled_us = truth.answered_us - 6_000_000
    (speech,) = segments(tl, 1, "speech")
    assert speech.t_us == dialled_us + 1_000_000
    assert truth.end_reason == "local"


def test_an_outbound_call_nobody_answers_ends_when_the_caller_hangs_up():
    tl = compile_([_outbound(answer=False, caller_speech=[{"at": 5.5, "text": "nobody there at all"}])])
    (truth,) = tl.truth
    assert truth.answered_us is None and truth.end_reason == "abandoned"
    assert nominal(tl, 1, "hook") == [(truth.started_us, True), (truth.ended_us, False)]
    (ringback,) = segments(tl, 1, "ringback")
    (speech,) = segments(tl, 1, "speech")
    assert ringback.t_us + ringback.n_samples * 125 == truth.ended_us  # rings until the hang-up
    assert speech.t_us + speech.n_samples * 125 <= truth.ended_us  # cut where the call ends


@pytest.mark.parametrize(
    "call,message",
    [
        (_outbound(caller_speech=[{"at": 6.0, "text": "hi"}]), r"less than \"answer_after\""),
        (_outbound(caller_speech=[{"at": 1.0}]), "text"),
        (_outbound(answer=False, answer_after=0, ringback=False), r"needs \"answer_after\" > 0"),
        (_outbound(answer=False, ringback=False), r"needs \"ringback\": true"),
        ({**_outbound(answer=False), "talk": 5.0}, "has no talk"),
    ],
)
def test_bad_caller_speech_and_unanswered_outbound_calls_are_refused(call, message):
    from firmware.errors import ScenarioError

    with pytest.raises(ScenarioError, match=message):
        scenario([call])
