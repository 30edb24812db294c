"""The simulated board as an instrument: pins driven on the simulated clock
through gpiozero callbacks, and a capture stream only while lines are active."""

from collections import namedtuple
from types import SimpleNamespace

import numpy as np
import pytest

from board.hat import load_hat
from board.sim.board import SimBoard
from board.sim.timeline import AudioSegment
from firmware.clock import SimClock

Edge = namedtuple("Edge", "t_us line signal active")


def timeline(edges=(), audio=None, spans=None, end_us=5_000_000, lines=4):
    return SimpleNamespace(
        lines=lines, edges=list(edges), audio=audio or {}, active_spans=spans or {}, end_us=end_us
    )


def run(board, clock):
    edges, periods = [], []
    board.start(lambda *e: edges.append(e), lambda frames, t_us: periods.append((bytes(frames), t_us)))
    board.run()
    board.stop()
    return edges, periods


def test_edges_arrive_through_gpiozero_at_their_simulated_times():
    clock = SimClock()
    hat = load_hat("lk-4l")
    board = SimBoard(
        timeline([Edge(1000, 1, "hook", True), Edge(1500, 1, "hook", False), Edge(2000, 3, "ring", True)]),
        hat,
        clock,
    )
    edges, _ = run(board, clock)
    assert edges == [(1, "hook", True, 1000), (1, "hook", False, 1500), (3, "ring", True, 2000)]


def test_active_low_pins_are_driven_electrically_low():
    clock = SimClock()
    hat = load_hat("lk-4l")
    assert hat.line(2).pins["hook"].active_low
    board = SimBoard(timeline([Edge(10, 2, "hook", True)], end_us=20), hat, clock)
    board.start(lambda *e: None, lambda *a: None)
    board.run()
    pin, spec = board.gpio.pin(2, "hook")
    assert pin.state is False or pin.state == 0  # electrically low ...
    assert board.read(2, "hook") is True  # ... logically off-hook
    board.stop()


def test_audio_only_during_active_spans_on_a_fixed_grid():
    clock = SimClock()
    hat = load_hat("lk-4l")
    spans = {2: [(1_000_000, 1_100_000)], 4: [(3_000_000, 3_040_000)]}
    board = SimBoard(timeline(spans=spans), hat, clock, period_ms=20)
    _, periods = run(board, clock)
    starts = [t for _, t in periods]
    assert starts == list(range(1_000_000, 1_100_000, 20_000)) + [3_000_000, 3_020_000]
    assert all(len(frames) == 160 * 4 * 2 for frames, _ in periods)


def test_segments_and_playback_land_in_their_line_channel_and_time():
    clock = SimClock()
    hat = load_hat("lk-4l")
    tone = np.ones(800, dtype=np.int16) * 10000  # 100 ms at 8 kHz
    audio = {3: [AudioSegment(3, 1_050_000, "test", len(tone), lambda: tone)]}
    board = SimBoard(timeline(audio=audio, spans={3: [(1_000_000, 1_300_000)]}), hat, clock, noise_dbm0=-90)
    clock.call_at(1_200_000, lambda: board.play(1, np.full(160, -5000, dtype=np.int16)))
    _, periods = run(board, clock)
    data = np.frombuffer(b"".join(f for f, _ in periods), dtype=np.int16).reshape(-1, 4)
    ch3 = data[:, hat.line(3).capture_channel]
    loud = np.flatnonzero(np.abs(ch3) > 5000)
    assert loud[0] == 400 and loud[-1] == 1199  # 50 ms .. 150 ms after span start
    ch1 = data[:, hat.line(1).capture_channel]
    assert np.flatnonzero(ch1 < -4000).tolist() == list(range(1600, 1760))
    assert np.abs(data[:, hat.line(2).capture_channel]).max() < 100  # only noise elsewhere


def test_noise_floor_level():
    clock = SimClock()
    board = SimBoard(timeline(spans={1: [(0, 1_000_000)]}), load_hat("lk-4l"), clock, noise_dbm0=-40)
    _, periods = run(board, clock)
    data = np.frombuffer(b"".join(f for f, _ in periods), dtype=np.int16).reshape(-1, 4)
    rms = np.sqrt(np.mean(data[:, 0].astype(float) ** 2))
    assert 20 * np.log10(rms / 16090) == pytest.approx(-40, abs=0.5)


def test_refuses_a_scenario_with_more_lines_than_the_hat():
    with pytest.raises(ValueError, match="only 4"):
        SimBoard(timeline(lines=6), load_hat("lk-4l"), SimClock())


def test_a_board_started_again_after_a_brownout_joins_the_lines_as_they_are_then():
    """The MCU's hold-up runs out: the board stops and says so; started again after the
    power returns, its pins show what happened meanwhile and only later edges arrive."""
    from board.sim.scenario import PowerEvent

    clock = SimClock()
    hat = load_hat("lk-2lb")
    board = SimBoard(
        timeline(
            [
                Edge(1_000_000, 1, "hook", True),
                Edge(9_000_000, 1, "hook", False),
                Edge(12_000_000, 2, "hook", True),
            ],
            end_us=15_000_000,
            lines=2,
        ),
        hat,
        clock,
        power=(PowerEvent(0, 2.0, True), PowerEvent(1, 10.0, False)),
    )
    heard, edges = [], []
    board.on_power.append(lambda event, t_us: heard.append((event, t_us)))
    warnings = []
    assert board.watch_power_fail(lambda active, t_us: warnings.append((active, t_us)))
    board.start(lambda *e: edges.append(e), lambda *a: None)
    clock.run_until(9_500_000)
    holdup_us = board.mcu.holdup_us()
    assert warnings == [(True, 2_003_000)]
    assert heard == [("brownout", 2_000_000 + holdup_us)] and not board.pi_on
    assert edges == [(1, "hook", True, 1_000_000)]  # the Pi heard nothing after it stopped
    with pytest.raises(RuntimeError, match="no power"):
        board.start(lambda *e: None, lambda *a: None)
    clock.run_until(10_000_000)
    assert heard[-1] == ("restored", 10_000_000) and board.pi_on
    edges.clear()
    board.start(lambda *e: edges.append(e), lambda *a: None)
    assert board.read(1, "hook") is False  # hung up while the Pi was off
    board.run()
    board.stop()
    assert edges == [(2, "hook", True, 12_000_000)]


def test_power_needs_a_hat_with_an_mcu():
    import dataclasses

    from board.sim.scenario import PowerEvent

    hat = dataclasses.replace(load_hat("lk-4l"), mcu=None)
    with pytest.raises(ValueError, match="no supervisor MCU"):
        SimBoard(timeline(), hat, SimClock(), power=(PowerEvent(0, 1.0, True),))
    assert SimBoard(timeline(), hat, SimClock()).mcu_bus() is None


def test_replaying_keeps_memory_bounded():
    """`run --loop`: rounds after rounds hold the same timers, segments and log, not more.

    Audio is made when a segment plays and let go after it; the board keeps
    one pending edge timer and one audio timer, not a list of every timer.
    """
    import gc

    from board.sim.board import LOG_ENTRIES

    made = []

    def tone():
        made.append(1)
        return np.full(800, 1000, dtype=np.int16)

    edges = [Edge(t, 1, "hook", t // 1000 % 2 == 0) for t in range(100_000, 1_000_000, 1_000)]
    audio = {1: [AudioSegment(1, 200_000, "test", 800, tone)]}
    board = SimBoard(
        timeline(edges, audio, spans={1: [(100_000, 1_000_000)]}, end_us=1_100_000),
        load_hat("lk-4l"),
        clock := SimClock(),
    )
    seen = []
    board.start(lambda *e: seen.append(e), lambda frames, t_us: None)
    sizes = []
    for _ in range(8):
        assert board.run()
        board.replay()
        gc.collect()
        sizes.append((len(clock._heap), sum(len(s) for s in board._segments.values()), len(board.log)))
    board.stop()
    assert len(seen) == 8 * len(edges)  # every round played every edge
    assert len(made) >= 8  # the tone was made for each round it played
    assert all(size[:2] == sizes[0][:2] for size in sizes)  # timers and segments: constant
    assert sizes[-1][0] <= 3 and sizes[-1][2] == min(LOG_ENTRIES, 8 * len(edges))
