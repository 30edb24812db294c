"""The debouncer and the ring-burst detector, on a simulated clock."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.calls.debounce import Debouncer, RingDetector
from firmware.clock import SimClock

MS = 1000


def bouncy(edges, chatter):
    """Raw edges for ``edges`` ([(t_us, level)]): each change followed by ``chatter(t_us)``.

    ``chatter`` returns sorted offsets (µs, even count) at which the contact
    toggles after the change before it settles at the new level.
    """
    raw = []
    for t, level in edges:
        raw.append((t, level))
        for i, off in enumerate(chatter(t)):
            raw.append((t + off, level if i % 2 else not level))
    return raw


def drive(clock, target, raw):
    for t, level in raw:
        clock.call_at(t, lambda t=t, level=level: target.edge(level, t))


def debounced(raw, debounce_ms=15, until_us=None, level=False):
    clock = SimClock()
    changes = []
    deb = Debouncer(clock, debounce_ms * MS, lambda a, t: changes.append((t, a, clock.now_us())), level=level)
    drive(clock, deb, raw)
    clock.run_until(until_us if until_us is not None else raw[-1][0] + 100 * MS)
    return changes, deb


def test_a_clean_change_is_reported_at_its_edge_once_stable():
    changes, deb = debounced([(1000 * MS, True)])
    assert changes == [(1000 * MS, True, 1015 * MS)]
    assert deb.level is True and deb.pending_since is None


def test_chatter_gives_one_change_dated_by_its_first_edge():
    raw = bouncy([(100 * MS, True), (300 * MS, False)], lambda t: [1500, 2000, 4000, 7900])
    changes, _ = debounced(raw)
    assert [(t, a) for t, a, _ in changes] == [(100 * MS, True), (300 * MS, False)]
    # confirmed debounce_ms after the last bounce
    assert changes[0][2] == 100 * MS + 7900 + 15 * MS


def test_a_glitch_shorter_than_debounce_is_no_change():
    changes, deb = debounced([(100 * MS, True), (100 * MS + 5000, False)])
    assert changes == []
    assert deb.level is False


def test_pending_since_marks_an_unconfirmed_run():
    clock = SimClock()
    deb = Debouncer(clock, 15 * MS, lambda a, t: None)
    deb.edge(True, 0)
    assert deb.pending_since == 0
    clock.run_until(14 * MS)
    assert deb.pending_since == 0
    clock.run_until(15 * MS)
    assert deb.pending_since is None and deb.level


def test_repeated_reports_of_the_same_level_are_not_edges():
    changes, _ = debounced([(0, True), (5 * MS, True), (100 * MS, True)])
    assert [(t, a) for t, a, _ in changes] == [(0, True)]


def test_pulse_dialling_breaks_and_makes_survive_debouncing():
    # 10 pulses/s, 66 ms break, 34 ms make, with 8 ms of chatter on every edge.
    edges = []
    for k in range(10):
        edges += [(k * 100 * MS, False), (k * 100 * MS + 66 * MS, True)]
    raw = bouncy(edges, lambda t: [2000, 3000, 6000, 8000])
    changes, _ = debounced(raw, level=True)
    assert [(t, a) for t, a, _ in changes] == edges


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    bounce_ms=st.integers(0, 8),
    gaps_ms=st.lists(st.integers(25, 2000), min_size=1, max_size=20),
)
def test_random_chatter_gives_exactly_the_true_changes(data, bounce_ms, gaps_ms):
    edges, t, level = [], 0, False
    for gap in gaps_ms:
        t += gap * MS
        level = not level
        edges.append((t, level))

    def chatter(_t):
        offs = data.draw(st.lists(st.integers(1, max(1, bounce_ms * MS)), max_size=6, unique=True))
        offs = sorted(offs)
        return offs[: len(offs) // 2 * 2] if bounce_ms else []

    changes, _ = debounced(bouncy(edges, chatter))
    assert [(t, a) for t, a, _ in changes] == edges


def test_negative_debounce_is_refused():
    with pytest.raises(ValueError):
        Debouncer(SimClock(), -1, lambda a, t: None)


# ------------------------------------------------------------------ rings


def ring_pulses(start_us, dur_ms, hz):
    """A burst as the half-wave detector shows it; returns (edges, end of its last cycle)."""
    period = 1_000_000 // hz
    n = max(1, round(dur_ms * MS / period))
    edges = []
    for k in range(n):
        edges += [(start_us + k * period, True), (start_us + k * period + period // 2, False)]
    return edges, start_us + n * period


def bursts(raw, gap_ms=150, until_us=None):
    clock = SimClock()
    seen = []
    det = RingDetector(
        clock,
        gap_ms * MS,
        lambda t: seen.append(("start", t, clock.now_us())),
        lambda t: seen.append(("end", t, clock.now_us())),
    )
    drive(clock, det, raw)
    clock.run_until(until_us or raw[-1][0] + 1_000_000)
    return seen, det


def test_uk_double_ring_is_two_bursts_with_true_start_and_end():
    a, a_end = ring_pulses(0, 400, 25)
    b, b_end = ring_pulses(600 * MS, 400, 25)
    seen, det = bursts(a + b)
    assert [(k, t) for k, t, _ in seen] == [("start", 0), ("end", a_end), ("start", 600 * MS), ("end", b_end)]
    # the start is known after one ring period, the end after the gap
    assert seen[0][2] == 40 * MS
    assert seen[1][2] == a_end - 20 * MS + 150 * MS  # the gap runs from the last edge
    assert not det.in_burst


def test_us_ring_burst_at_20_hz():
    a, a_end = ring_pulses(1_000_000, 2000, 20)
    seen, _ = bursts(a)
    assert [(k, t) for k, t, _ in seen] == [("start", 1_000_000), ("end", a_end)]


def test_a_lone_spike_or_chatter_is_no_ring():
    raw = [(0, True), (1000, False), (3000, True), (4000, False)]
    seen, det = bursts(raw)
    assert seen == [] and det.pending_since is None


def test_a_held_ring_input_is_a_burst():
    seen, _ = bursts([(0, True), (400 * MS, False)])
    assert [(k, t) for k, t, _ in seen] == [("start", 0), ("end", 400 * MS)]
    assert seen[0][2] == 30 * MS


def test_pending_since_while_a_burst_is_unconfirmed():
    clock = SimClock()
    det = RingDetector(clock, 150 * MS, lambda t: None, lambda t: None)
    det.edge(True, 0)
    det.edge(False, 20 * MS)
    assert det.pending_since == 0
    det.edge(True, 40 * MS)
    assert det.pending_since is None and det.in_burst
