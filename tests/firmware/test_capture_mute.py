"""Capture: a muted line's ring holds digital silence; only the listener hears the line."""

import numpy as np

from firmware.capture import Capture


class Board:
    lines, rate, channels = 3, 8000, 3

    def channel_of(self, line):
        return line - 1


def period(t0, n=160):
    """Interleaved frames: line L carries the value L * 1000 + sample index."""
    base = np.arange(n, dtype=np.int16)
    return np.stack([base + 1000 * line for line in (1, 2, 3)], axis=1).tobytes()


def test_mute_zeroes_the_line_before_its_ring_and_tells_the_listener():
    capture = Capture(Board())
    got = {1: [], 2: [], 3: []}
    for line in got:
        capture.add_consumer(line, lambda x, t, line=line: got[line].append((x.copy(), t)))
    heard, edges = [], []
    capture.on_mute_change = lambda line, muted, t_us: edges.append((line, muted, t_us))
    capture.on_audio(period(0), 0)
    capture.mute(2, lambda x, t: heard.append((x.copy(), t)))
    assert capture.is_muted(2) and not capture.is_muted(1)
    capture.on_audio(period(1), 20_000)
    capture.on_audio(period(2), 40_000)
    capture.unmute(2)
    capture.on_audio(period(3), 60_000)
    line2 = np.concatenate([x for x, _ in got[2]])
    assert np.array_equal(line2[:160], np.arange(160) + 2000)
    assert not np.any(line2[160:480])  # in the ring: silence
    assert np.array_equal(line2[480:], np.arange(160) + 2000)
    assert [t for _, t in heard] == [20_000, 40_000]  # the listener heard the line
    assert all(np.array_equal(x, np.arange(160) + 2000) for x, _ in heard)
    for line in (1, 3):  # the other lines untouched
        assert np.array_equal(
            np.concatenate([x for x, _ in got[line]]), np.tile(np.arange(160) + 1000 * line, 4)
        )
    assert edges == [(2, True, 20_000), (2, False, 60_000)]
    # The ring itself, read back as a pre-roll would: the muted span is zeros.
    ring = capture.lines[2].ring
    assert not np.any(np.frombuffer(ring.preroll(4 * 160 * 2), np.int16)[160:480])
