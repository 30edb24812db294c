"""Ring: behaviour and bad arguments, for the C extension and the twin alike."""

import sys

import numpy as np
import pytest

import firmware.ring as ring_pkg


def pattern(n, start=0):
    return bytes((start + i) % 251 for i in range(n))


# -- the package ---------------------------------------------------------------


def test_package_picks_the_c_extension_when_built():
    if hasattr(ring_pkg, "CRing"):
        assert ring_pkg.IMPLEMENTATION == "c"
        assert ring_pkg.Ring is ring_pkg.CRing
        assert ring_pkg.deinterleave is ring_pkg.c_deinterleave
    else:
        assert ring_pkg.IMPLEMENTATION == "python"
        assert ring_pkg.Ring is ring_pkg.PyRing
    assert ring_pkg.py_deinterleave is not None


# -- writing and reading ---------------------------------------------------------


def test_new_ring_is_empty(impl):
    r = impl.Ring(64)
    assert (r.capacity, r.available, r.written, r.read_pos) == (64, 0, 0, 0)
    assert (r.overruns, r.lost_bytes) == (0, 0)
    assert r.read(10) == b""
    assert r.peek(10) == b""
    assert r.preroll(10) == b""
    assert r.skip(10) == 0


def test_fifo_order_and_positions(impl):
    r = impl.Ring(64)
    assert r.write(b"hello ") == 6
    assert r.write(b"world") == 5
    assert (r.available, r.written, r.read_pos) == (11, 11, 0)
    assert r.read(5) == b"hello"
    assert (r.available, r.written, r.read_pos) == (6, 11, 5)
    assert r.read(100) == b" world"
    assert r.read(1) == b""
    assert (r.overruns, r.lost_bytes) == (0, 0)


def test_wraps_around_the_end_of_the_storage(impl):
    r = impl.Ring(64)
    r.write(pattern(50))
    assert r.read(50) == pattern(50)
    r.write(pattern(40, 50))  # 14 bytes to the end, 26 from the start
    assert r.peek(40) == pattern(40, 50)
    assert r.read(40) == pattern(40, 50)
    assert r.read_pos == r.written == 90


def test_full_ring_holds_exactly_capacity(impl):
    r = impl.Ring(64)
    r.write(pattern(64))
    assert (r.available, r.overruns, r.lost_bytes) == (64, 0, 0)
    assert r.read(64) == pattern(64)


def test_overflow_overwrites_the_oldest_unread_bytes(impl):
    r = impl.Ring(64)
    r.write(pattern(60))
    r.write(pattern(10, 60))  # 6 oldest bytes go
    assert (r.overruns, r.lost_bytes, r.available) == (1, 6, 64)
    assert r.read_pos == 6
    assert r.read(64) == pattern(64, 6)
    assert r.read_pos == r.written == 70


def test_overruns_count_writes_not_bytes(impl):
    r = impl.Ring(64)
    r.write(pattern(64))
    for _i in range(5):
        r.write(b"x")
    assert (r.overruns, r.lost_bytes) == (5, 5)
    r.read(64)
    r.write(b"y")  # room again: no overrun
    assert r.overruns == 5


def test_write_longer_than_capacity_keeps_its_last_bytes(impl):
    r = impl.Ring(64)
    r.write(b"ab")
    assert r.write(pattern(200)) == 200
    assert r.written == 202
    assert r.overruns == 1
    # Everything the consumer will never see: the 2 unread bytes and the
    # first 136 bytes of the big write.
    assert r.lost_bytes == 202 - 64
    assert r.read(100) == pattern(200)[-64:]


def test_consumed_data_is_not_lost_when_overwritten(impl):
    r = impl.Ring(64)
    r.write(pattern(64))
    r.read(64)
    r.write(pattern(64))
    assert (r.overruns, r.lost_bytes) == (0, 0)


def test_peek_does_not_consume(impl):
    r = impl.Ring(64)
    r.write(b"abcdef")
    assert r.peek(3) == b"abc"
    assert r.peek(100) == b"abcdef"
    assert r.available == 6
    assert r.read(6) == b"abcdef"


def test_skip_consumes_without_copying(impl):
    r = impl.Ring(64)
    r.write(b"abcdef")
    assert r.skip(2) == 2
    assert r.skip(0) == 0
    assert r.read(2) == b"cd"
    assert r.skip(100) == 2
    assert r.available == 0


def test_reset_drops_unread_data(impl):
    r = impl.Ring(64)
    r.write(pattern(100))
    r.reset()
    assert (r.available, r.read_pos, r.written) == (0, 100, 100)
    assert r.lost_bytes == 36  # lost before the reset stays counted
    r.write(b"new")
    assert r.read(10) == b"new"


@pytest.mark.parametrize(
    "make",
    [
        bytearray,
        lambda n: memoryview(bytearray(n)),
        lambda n: np.zeros(n // 2, dtype=np.int16),
    ],
    ids=["bytearray", "memoryview", "int16"],
)
def test_readinto_fills_writable_buffers(impl, make):
    r = impl.Ring(64)
    r.write(pattern(10))
    buf = make(8)
    assert r.readinto(buf) == 8
    assert bytes(memoryview(buf).cast("B")) == pattern(8)
    buf = make(8)
    assert r.readinto(buf) == 2
    assert bytes(memoryview(buf).cast("B"))[:2] == pattern(10)[8:]
    assert r.readinto(make(8)) == 0


def test_readinto_an_empty_buffer(impl):
    r = impl.Ring(64)
    r.write(b"abc")
    assert r.readinto(bytearray()) == 0
    assert r.available == 3


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x02\x03\x04",
        bytearray(b"\x01\x02\x03\x04"),
        memoryview(b"\x00\x01\x02\x03\x04\x05")[1:5],
        np.array([0x0201, 0x0403], dtype="<i2"),
        np.array([[0x0201], [0x0403]], dtype="<i2"),
    ],
    ids=["bytes", "bytearray", "memoryview", "int16", "int16-2d"],
)
def test_write_accepts_contiguous_bytes_like(impl, data):
    r = impl.Ring(64)
    assert r.write(data) == 4  # bytes, also for int16 arrays
    assert r.read(10) == b"\x01\x02\x03\x04"


def test_write_of_its_own_storage(impl):
    r = impl.Ring(64)
    r.write(pattern(60))
    r.skip(20)
    regions = r.regions(64)
    assert r.write(regions[0]) == 40  # wraps over part of its own source
    del regions
    assert r.read(80) == pattern(60)[36:60] + pattern(60)[20:60]


def test_large_copies_release_the_gil_and_stay_correct(impl):
    r = impl.Ring(1 << 16)
    data = pattern(50_000)
    for _ in range(4):
        r.write(data)
        assert r.peek(50_000) == data
        buf = bytearray(50_000)
        assert r.readinto(buf) == 50_000
        assert buf == data
    r.write(pattern(100_000))
    assert r.lost_bytes == 100_000 - (1 << 16)
    assert r.preroll(1 << 16) == pattern(100_000)[-(1 << 16) :]


# -- pre-roll and seek_back -------------------------------------------------------


def test_preroll_is_the_last_bytes_written_whatever_was_read(impl):
    r = impl.Ring(64)
    r.write(pattern(10))
    assert r.preroll(4) == pattern(10)[-4:]
    assert r.preroll(64) == pattern(10)  # fewer ever written
    r.read(10)
    assert r.preroll(4) == pattern(10)[-4:]  # the read position does not matter
    r.write(pattern(100, 10))
    assert r.preroll(64) == pattern(110)[-64:]
    assert r.preroll(0) == b""
    assert r.available == 64  # preroll consumes nothing


def test_seek_back_starts_the_next_read_before_now(impl):
    r = impl.Ring(64)
    r.write(pattern(30))
    r.read(30)
    assert r.seek_back(8) == 8
    assert (r.available, r.read_pos) == (8, 22)
    assert r.read(100) == pattern(30)[-8:]


def test_seek_back_can_also_move_forward(impl):
    r = impl.Ring(64)
    r.write(pattern(30))
    assert r.seek_back(5) == 5
    assert r.read(100) == pattern(30)[-5:]


def test_seek_back_is_clamped_to_what_the_ring_holds(impl):
    r = impl.Ring(64)
    r.write(pattern(20))
    assert r.seek_back(1000) == 20  # fewer ever written
    assert r.read(100) == pattern(20)
    r.write(pattern(200, 20))
    r.read(500)
    assert r.seek_back(1000) == 64  # only the capacity is left
    assert r.read(100) == pattern(220)[-64:]


# -- zero-copy regions and the buffer protocol ---------------------------------------


def test_regions_one_view_when_contiguous(impl):
    r = impl.Ring(64)
    r.write(b"abcdef")
    (view,) = r.regions(4)
    assert view.readonly and bytes(view) == b"abcd"
    assert r.available == 6  # regions do not consume
    assert r.skip(len(view)) == 4
    assert r.read(10) == b"ef"


def test_regions_two_views_when_wrapping(impl):
    r = impl.Ring(64)
    r.write(pattern(50))
    r.skip(50)
    r.write(pattern(30, 50))
    first, second = r.regions(100)
    assert (len(first), len(second)) == (14, 16)
    assert bytes(first) + bytes(second) == pattern(30, 50)
    assert first.readonly and second.readonly
    with pytest.raises(TypeError):
        first[0] = 1


def test_regions_of_an_empty_ring_is_one_empty_view(impl):
    r = impl.Ring(64)
    (view,) = r.regions(10)
    assert len(view) == 0


def test_regions_views_keep_the_ring_alive(impl):
    r = impl.Ring(64)
    r.write(b"keep")
    (view,) = r.regions(4)
    del r
    assert bytes(view) == b"keep"


def test_memoryview_of_ring_is_the_whole_storage_read_only(impl):
    r = impl.Ring(64)
    if impl.name == "python" and sys.version_info < (3, 12):
        # A Python class can export buffers only from 3.12 (PEP 688); before
        # that the twin's zero-copy access is regions() alone.
        with pytest.raises(TypeError):
            memoryview(r)
        return
    r.write(b"xyz")
    view = memoryview(r)
    assert view.readonly and len(view) == 64
    assert bytes(view[:3]) == b"xyz"


def test_repr_says_what_is_inside(impl):
    r = impl.Ring(64)
    r.write(pattern(70))
    assert repr(r) == "Ring(capacity=64, available=64, written=70, overruns=1, lost_bytes=6)"


def test_ring_cannot_be_subclassed(impl):
    with pytest.raises(TypeError):
        type("Sub", (impl.Ring,), {})


# -- bad arguments -------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 1, 32, 63, 65, 100, 3 << 10, -64, 1 << 31, 1 << 70])
def test_capacity_must_be_a_power_of_two_from_64(impl, capacity):
    with pytest.raises(ValueError, match="capacity must be a power of two from 64 to"):
        impl.Ring(capacity)


@pytest.mark.parametrize("capacity", [64.0, "64", None])
def test_capacity_must_be_an_int(impl, capacity):
    with pytest.raises(TypeError):
        impl.Ring(capacity)


def test_capacity_accepts_any_integer_type(impl):
    assert impl.Ring(64).capacity == 64
    assert impl.Ring(np.int64(128)).capacity == 128


@pytest.mark.parametrize("method", ["read", "peek", "skip", "preroll", "seek_back", "regions"])
def test_negative_sizes_are_rejected(impl, method):
    r = impl.Ring(64)
    r.write(b"abc")
    with pytest.raises(ValueError, match=r"%s\(\) size must not be negative, got -1" % method):
        getattr(r, method)(-1)
    with pytest.raises(ValueError, match="must not be negative"):
        getattr(r, method)(-(1 << 80))
    with pytest.raises(TypeError):
        getattr(r, method)(1.5)
    assert r.available == 3


def test_huge_sizes_mean_everything(impl):
    huge = 1 << 80
    r = impl.Ring(64)
    r.write(b"abc")
    assert r.peek(huge) == b"abc" and r.available == 3
    assert b"".join(bytes(v) for v in r.regions(huge)) == b"abc" and r.available == 3
    assert r.read(huge) == b"abc" and r.available == 0
    assert r.seek_back(huge) == 3 and r.available == 3  # all the ring still holds
    assert r.skip(huge) == 3 and r.available == 0
    r.write(b"de")
    assert r.read(huge) == b"de"


def test_preroll_longer_than_capacity_is_rejected(impl):
    r = impl.Ring(64)
    with pytest.raises(ValueError, match=r"at most the capacity \(64 bytes\), got 65"):
        r.preroll(65)
    with pytest.raises(ValueError, match="at most the capacity"):
        r.preroll(1 << 80)


@pytest.mark.parametrize("data", ["text", 42, None, [1, 2]])
def test_write_needs_bytes_like(impl, data):
    r = impl.Ring(64)
    with pytest.raises(TypeError, match="write.. argument must be a bytes-like object, not"):
        r.write(data)
    assert r.written == 0


@pytest.mark.parametrize(
    "data",
    [
        memoryview(b"abcdef")[::2],
        np.zeros((4, 4), dtype=np.int16)[:, 1],
        np.zeros((4, 4), dtype=np.int16, order="F"),
    ],
    ids=["strided-view", "numpy-column", "fortran"],
)
def test_write_needs_c_contiguous(impl, data):
    r = impl.Ring(64)
    with pytest.raises(TypeError, match="must be a C-contiguous bytes-like object"):
        r.write(data)
    assert r.written == 0


@pytest.mark.parametrize(
    "buf",
    [b"abcd", memoryview(bytearray(4)).toreadonly(), np.zeros(4, dtype=np.int16)[::2]],
    ids=["bytes", "readonly-view", "strided"],
)
def test_readinto_needs_writable_contiguous_buffer(impl, buf):
    r = impl.Ring(64)
    r.write(b"abcd")
    with pytest.raises(TypeError, match="C-contiguous writable bytes-like object"):
        r.readinto(buf)
    assert r.available == 4


def test_readinto_rejects_non_buffers(impl):
    r = impl.Ring(64)
    with pytest.raises(TypeError, match="must be a writable bytes-like object, not 'str'"):
        r.readinto("abcd")


def test_readinto_rejects_the_rings_own_storage(impl):
    r = impl.Ring(64)
    r.write(b"abcd")
    with pytest.raises(TypeError):
        r.readinto(r.regions(4)[0])


def address(view):
    return np.frombuffer(view, dtype=np.uint8).ctypes.data


@pytest.mark.parametrize("size", [2048, 2048 + 13, 5000, 8191])
def test_copies_at_every_alignment_near_the_storage(impl, size):
    # The C ring copies differently when the other buffer is 1..63 bytes
    # past its storage modulo 4 KiB (an x86 memcpy cliff): check every
    # offset around that window, in both directions, with odd sizes.
    arena = bytearray(3 << 14)
    arena_at = address(arena)
    for delta in list(range(0, 70)) + [4032, 4095]:
        r = impl.Ring(1 << 13)
        r.write(b"\x00" * 7)  # the data starts mid-storage
        r.skip(7)
        at = address(r.regions(1)[0])  # storage address of the next byte
        start = (at - delta - arena_at) % 4096 + 4096  # storage = src + delta
        src = memoryview(arena)[start : start + size]
        src[:] = pattern(size, delta)
        r.write(src)
        start = (at + delta - arena_at) % 4096 + 4096 * 3  # dst = storage + delta
        dst = memoryview(arena)[start : start + size]
        assert r.readinto(dst) == size
        assert dst == pattern(size, delta), delta
