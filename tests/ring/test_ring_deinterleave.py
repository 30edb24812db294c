"""deinterleave: N-channel interleaved frames into one ring per channel."""

import random

import numpy as np
import pytest

import firmware.ring as ring_pkg


def interleave(channels, width=2):
    """Frames from per-channel byte strings of equal length."""
    n = len(channels[0]) // width
    return b"".join(ch[i * width : (i + 1) * width] for i in range(n) for ch in channels)


def test_four_line_period(impl):
    samples = np.arange(160 * 4, dtype="<i2").reshape(160, 4)
    rings = [impl.Ring(1024) for _ in range(4)]
    assert impl.deinterleave(samples.tobytes(), rings) == 160
    for ch, ring in enumerate(rings):
        assert ring.read(1000) == samples[:, ch].tobytes()


def test_none_skips_a_channel(impl):
    a, b = impl.Ring(64), impl.Ring(64)
    frames = interleave([b"A1A2A3", b"B1B2B3", b"C1C2C3"])
    assert impl.deinterleave(frames, [a, None, b]) == 3
    assert a.read(10) == b"A1A2A3"
    assert b.read(10) == b"C1C2C3"


def test_all_channels_skipped_still_counts_frames(impl):
    assert impl.deinterleave(bytes(12), [None, None]) == 3


@pytest.mark.parametrize("width", [1, 2, 3, 4, 8])
def test_sample_widths(impl, width):
    rnd = random.Random(width)
    chans = [rnd.randbytes(width * 10) for _ in range(3)]
    rings = [impl.Ring(128) for _ in chans]
    assert impl.deinterleave(interleave(chans, width), rings, sample_width=width) == 10
    assert [r.read(100) for r in rings] == chans


def test_accepts_numpy_frames_and_a_tuple_of_rings(impl):
    samples = np.array([[1, -1], [2, -2]], dtype="<i2")
    a, b = impl.Ring(64), impl.Ring(64)
    assert impl.deinterleave(samples, (a, b)) == 2
    assert np.frombuffer(b.read(4), "<i2").tolist() == [-1, -2]


def test_keyword_arguments(impl):
    a = impl.Ring(64)
    assert impl.deinterleave(frames=b"abcd", rings=[a], sample_width=4) == 1
    assert a.read(4) == b"abcd"


def test_empty_frames(impl):
    a = impl.Ring(64)
    assert impl.deinterleave(b"", [a]) == 0
    assert a.written == 0


def test_overflow_and_wrap_follow_the_write_rule(impl):
    rnd = random.Random(1)
    a, b = impl.Ring(64), impl.Ring(64)
    a.write(b"x")  # odd offset: samples straddle the wrap
    chans = [rnd.randbytes(100), rnd.randbytes(100)]
    impl.deinterleave(interleave(chans), [a, b])
    assert (a.written, a.overruns, a.lost_bytes) == (101, 1, 37)
    assert a.read(100) == chans[0][-64:]
    assert b.read(100) == chans[1][-64:]
    chans = [rnd.randbytes(40), rnd.randbytes(40)]
    impl.deinterleave(interleave(chans), [a, b])
    assert a.read(100) == chans[0]
    assert b.read(100) == chans[1]


def test_large_periods_match_the_twin(impl):
    # 8 KiB periods take the GIL-free path in C; compare with numpy.
    samples = np.random.default_rng(2).integers(-32768, 32767, (2048, 2), dtype="<i2")
    a, b = impl.Ring(1 << 13), impl.Ring(1 << 13)
    for _ in range(3):
        impl.deinterleave(samples.tobytes(), [a, b])
        assert a.read(1 << 13) == samples[:, 0].tobytes()
        assert b.read(1 << 13) == samples[:, 1].tobytes()


def test_frames_from_a_rings_own_storage(impl):
    a = impl.Ring(64)
    a.write(b"a1b1a2b2")
    (view,) = a.regions(8)
    impl.deinterleave(view, [a, None])
    assert a.read(100) == b"a1b1a2b2a1a2"


def test_same_ring_twice(impl):
    a = impl.Ring(64)
    impl.deinterleave(b"L1R1L2R2", [a, a])
    assert a.read(100) == b"L1L2R1R2"


# -- bad arguments -------------------------------------------------------------------


def test_partial_frame_is_rejected(impl):
    a = impl.Ring(64)
    with pytest.raises(
        ValueError, match="frames is 6 bytes, not a whole number of 2-channel frames of 2-byte samples"
    ):
        impl.deinterleave(b"abcdef", [a, None])
    assert a.written == 0


def test_empty_rings_are_rejected(impl):
    with pytest.raises(ValueError, match="rings must not be empty"):
        impl.deinterleave(b"", [])


@pytest.mark.parametrize("entry", [0, "ring", object()])
def test_ring_entries_must_be_rings_or_none(impl, entry):
    a = impl.Ring(64)
    with pytest.raises(TypeError, match=r"rings\[1\] must be a Ring or None"):
        impl.deinterleave(b"abcd", [a, entry])
    assert a.written == 0


def test_rings_of_the_other_implementation_are_rejected(impl):
    other = ring_pkg.PyRing if impl.name == "c" else ring_pkg.CRing
    with pytest.raises(TypeError, match="must be a Ring or None"):
        impl.deinterleave(b"ab", [other(64)])


def test_rings_must_be_a_sequence(impl):
    with pytest.raises(TypeError, match="rings must be a sequence"):
        impl.deinterleave(b"ab", 42)


@pytest.mark.parametrize("width", [0, 9, -1])
def test_sample_width_range(impl, width):
    with pytest.raises(ValueError, match="sample_width"):
        impl.deinterleave(b"", [None], sample_width=width)


def test_frames_must_be_bytes_like(impl):
    with pytest.raises(TypeError, match="frames must be a bytes-like object"):
        impl.deinterleave("abcd", [None])
    with pytest.raises(TypeError, match="C-contiguous"):
        impl.deinterleave(memoryview(b"abcdefgh")[::2], [None])


def test_argument_errors(impl):
    with pytest.raises(TypeError):
        impl.deinterleave(b"ab")
    with pytest.raises(TypeError):
        impl.deinterleave(b"ab", [None], 2, 3)
    with pytest.raises(TypeError):
        impl.deinterleave(b"ab", [None], width=2)
    with pytest.raises(TypeError):
        impl.deinterleave(b"ab", [None], frames=b"ab")
