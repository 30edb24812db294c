"""The C extension must not leak memory or references, on success or error paths."""

import gc
import os
import sys
import tracemalloc

import pytest

ROUNDS = 30


def exercise(impl, data, buf, frames):
    """Every entry point once, including the error paths."""
    ring = impl.Ring(4096)
    for _ in range(20):
        ring.write(data)
        ring.write(bytearray(data))
        ring.write(memoryview(data)[3:90])
        ring.read(100)
        ring.peek(50)
        ring.readinto(buf)
        ring.skip(10)
        ring.preroll(64)
        ring.seek_back(32)
        views = ring.regions(5000)
        ring.skip(sum(len(v) for v in views))
        del views
        impl.deinterleave(frames, [ring, None])
        impl.deinterleave(frames, [None, ring])
        ring.write(ring.regions(64)[0])
        _ = (ring.available, ring.written, ring.read_pos, ring.overruns, ring.lost_bytes)
        repr(ring)
        ring.reset()
    big = bytes(10_000)  # the GIL-released paths
    ring.write(big)
    ring.read(10_000)
    ring.write(big)
    ring.readinto(bytearray(10_000))
    impl.deinterleave(big, [ring, ring])
    for call, arg in [
        (ring.read, -1),
        (ring.write, "text"),
        (ring.write, memoryview(data)[::2]),
        (ring.readinto, data),
        (ring.readinto, "x"),
        (ring.preroll, 10_000),
        (impl.Ring, 100),
        (impl.Ring, 1.0),
    ]:
        try:
            call(arg)
        except (TypeError, ValueError):
            pass
    for frames_arg, rings_arg in [
        (frames, [ring, 0]),
        (b"abc", [ring]),
        (frames, []),
        ("text", [ring]),
        (frames, 5),
    ]:
        try:
            impl.deinterleave(frames_arg, rings_arg)
        except (TypeError, ValueError):
            pass


def test_no_memory_or_reference_leaks(c_impl):
    data = bytes(range(256)) * 2
    buf = bytearray(300)
    frames = bytes(range(256)) * 4
    exercise(c_impl, data, buf, frames)  # warm caches, interned objects
    refs = [sys.getrefcount(o) for o in (data, buf, frames)]
    gc.collect()
    tracemalloc.start()
    try:
        exercise(c_impl, data, buf, frames)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(ROUNDS):
            exercise(c_impl, data, buf, frames)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # One leaked 4 KiB ring or one bytes object per call would be far more.
    assert after - before < 16 << 10, "traced memory grew by %d bytes" % (after - before)
    assert [sys.getrefcount(o) for o in (data, buf, frames)] == refs


def test_ring_refcount_is_unchanged_by_views_and_deinterleave(c_impl):
    ring = c_impl.Ring(64)
    ring.write(b"x" * 100)
    before = sys.getrefcount(ring)
    for _ in range(100):
        views = ring.regions(64)
        view = memoryview(ring)
        del views, view
        c_impl.deinterleave(b"abcd", [ring, None])
        try:
            c_impl.deinterleave(b"abcd", [ring, "not a ring"])
        except TypeError:
            pass
    assert sys.getrefcount(ring) == before


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(
    bool(os.environ.get("LINEKEEPER_RING_BUILD_DIR")), reason="ASan's quarantine keeps freed memory resident"
)
def test_ring_storage_is_freed(c_impl):
    def churn():
        for _ in range(100):
            ring = c_impl.Ring(1 << 20)
            ring.write(bytes(1 << 20))  # touch every page
            ring.read(1 << 20)

    churn()
    before = rss_bytes()
    churn()  # 100 MiB if storage leaked
    assert rss_bytes() - before < 20 << 20
