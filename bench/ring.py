"""Ring throughput: the C extension, the pure-Python twin and memcpy, side by side.

Every figure is payload MB/s (10**6 bytes of audio through per second): the
best of many short repeats, each a loop timed with ``time.perf_counter``, all
variants timed round-robin in the same process. All loops have the same
shape, so the Python loop overhead is in every figure alike.

- ``frames_20ms``: 20 ms of 8 kHz S16 mono (320 bytes): ``write`` then
  ``read(320)``, what the capture thread and one line's reader do per period;
  ``memcpy`` does the same two 320-byte copies per frame.
- ``blocks_64k``: 64 KiB blocks through a 256 KiB ring. The ring copies every
  byte twice (in, out), so its physical limit is ``memcpy_in_out``: the same
  two copies between preallocated buffers of the same sizes, at the same
  offsets. ``memcpy_single`` (one copy) is the limit for a zero-copy
  consumer (``regions`` + ``skip``). Each memcpy figure is the best of
  memoryview slice assignment, ``numpy.copyto`` and ``ctypes.memmove``.
- ``deinterleave_4ch_20ms``: 4-line 20 ms periods (160 frames, 1280 bytes)
  into four rings; MB/s of interleaved input.
"""

import ctypes
import gc
import itertools
import time

import numpy as np

import firmware.ring as ring_pkg

FRAME_BYTES = 320  # 20 ms, 8 kHz, S16, mono
BLOCK_BYTES = 64 << 10
BLOCK_RING_BYTES = 256 << 10
FRAME_RING_BYTES = 64 << 10
DEINT_CHANNELS = 4
DEINT_FRAMES = 160

TARGETS = {"c_vs_twin_20ms": ">= 20", "c_vs_memcpy_64k": ">= 0.5", "c_zero_copy_vs_memcpy_64k": ">= 0.5"}


def _data(nbytes):
    """Bytes with real content: a fresh ``bytes(n)`` comes from calloc, and
    reading its untouched pages (all the kernel's zero page) is far slower
    than reading memory, which would skew every figure."""
    return (bytes(range(1, 256)) * (nbytes // 255 + 1))[:nbytes]


def _buffer(nbytes):
    """A preallocated, already-touched destination."""
    return bytearray(_data(nbytes))


def _address(view):
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


class _Arena:
    """Baseline buffers at chosen offsets modulo 4 KiB.

    On x86, glibc's memcpy of a few KiB runs ~20x slower when the
    destination is 1..63 bytes past the source modulo 4 KiB (the ring's
    copies avoid that window, see _cring.c). A baseline that landed there by
    allocation luck would flatter the ring, so its buffers sit at page offsets
    at least 1 KiB apart: the physical limit, not a pathological case.
    """

    def __init__(self, nbytes):
        self._raw = bytearray(_data(nbytes + 8192))
        self._base = -_address(self._raw) % 4096
        self._next = self._base

    def take(self, nbytes, page_offset):
        start = (self._next + 4095) // 4096 * 4096 + page_offset
        if start + nbytes > len(self._raw):
            raise ValueError("arena too small for %d more bytes" % nbytes)
        self._next = start + nbytes
        return memoryview(self._raw)[start : start + nbytes]


def _time(loop, n):
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        loop(n)
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


def _calibrate(loop, repeat_s):
    """Iterations of ``loop`` that take about ``repeat_s`` seconds."""
    n = 1
    while True:
        t = _time(loop, n)
        if t >= repeat_s / 10:
            return max(1, int(n * repeat_s / t))
        n *= 4


def _best_mbps(variants, repeat_s, repeats):
    """{key: best MB/s} for {key: [(loop, bytes per iteration), ...]}.

    All loops are timed round-robin, one short repeat each per round, and each
    keeps its fastest repeat: on a shared, noisy machine every variant then
    sees the same conditions, and an interruption only costs one repeat.
    Several loops under one key (the memcpy methods) report the fastest.
    """
    timed = [
        (key, loop, nbytes, _calibrate(loop, repeat_s))
        for key, loops in variants.items()
        for loop, nbytes in loops
    ]
    best = [float("inf")] * len(timed)
    for _ in range(repeats):
        for i, (_key, loop, _nbytes, n) in enumerate(timed):
            best[i] = min(best[i], _time(loop, n) / n)
    result = {}
    for (key, _, nbytes, _), seconds in zip(timed, best, strict=False):
        result[key] = max(result.get(key, 0.0), _mbps(nbytes, seconds))
    return result


def _mbps(nbytes, seconds):
    return nbytes / seconds / 1e6


# -- loops (each returns loop(n)) ------------------------------------------------


def _frames_loop(ring):
    write, read, frame = ring.write, ring.read, _data(FRAME_BYTES)

    def loop(n):
        for _ in itertools.repeat(None, n):
            write(frame)
            read(FRAME_BYTES)

    return loop


def _memcpy_frames_loop():
    arena = _Arena(2 * FRAME_BYTES + 8192)
    src, dst = arena.take(FRAME_BYTES, 0), arena.take(FRAME_BYTES, 1024)

    def loop(n):
        for _ in itertools.repeat(None, n):
            dst[:] = src
            dst[:] = src

    return loop


def _blocks_loop(ring, consume):
    write, block = ring.write, _data(BLOCK_BYTES)
    if consume == "readinto":
        readinto, out = ring.readinto, _buffer(BLOCK_BYTES)

        def loop(n):
            for _ in itertools.repeat(None, n):
                write(block)
                readinto(out)
    elif consume == "read":
        read = ring.read

        def loop(n):
            for _ in itertools.repeat(None, n):
                write(block)
                read(BLOCK_BYTES)
    else:  # zero-copy
        regions, skip = ring.regions, ring.skip

        def loop(n):
            for _ in itertools.repeat(None, n):
                write(block)
                skip(sum(map(len, regions(BLOCK_BYTES))))

    return loop


def _memcpy_loops(src, dst, mids):
    """Copy src into each of mids in turn and out to dst (no mids: src to dst)."""
    memmove, copyto, addr = ctypes.memmove, np.copyto, _address
    src_np, dst_np = np.frombuffer(src, np.uint8), np.frombuffer(dst, np.uint8)
    src_p, dst_p = addr(src), addr(dst)
    mids_np = [np.frombuffer(m, np.uint8) for m in mids]
    mids_p = [addr(m) for m in mids]
    nbytes = len(src)
    if not mids:

        def by_view(n):
            for _ in itertools.repeat(None, n):
                dst[:] = src

        def by_numpy(n):
            for _ in itertools.repeat(None, n):
                copyto(dst_np, src_np)

        def by_ctypes(n):
            for _ in itertools.repeat(None, n):
                memmove(dst_p, src_p, nbytes)

        return [by_view, by_numpy, by_ctypes]

    def by_view_io(n):
        for mid in itertools.islice(itertools.cycle(mids), n):
            mid[:] = src
            dst[:] = mid

    def by_numpy_io(n):
        for mid in itertools.islice(itertools.cycle(mids_np), n):
            copyto(mid, src_np)
            copyto(dst_np, mid)

    def by_ctypes_io(n):
        for mid in itertools.islice(itertools.cycle(mids_p), n):
            memmove(mid, src_p, nbytes)
            memmove(dst_p, mid, nbytes)

    return [by_view_io, by_numpy_io, by_ctypes_io]


def _memcpy_single_loops():
    """One 64 KiB copy per iteration, three ways."""
    arena = _Arena(2 * BLOCK_BYTES + 8192)
    src, dst = arena.take(BLOCK_BYTES, 0), arena.take(BLOCK_BYTES, 1024)
    return _memcpy_loops(src, dst, [])


def _memcpy_in_out_loops():
    """The ring's two copies per block: into a ring-sized buffer, and out."""
    arena = _Arena(BLOCK_RING_BYTES + 2 * BLOCK_BYTES + 8192)
    src = arena.take(BLOCK_BYTES, 0)
    mid = arena.take(BLOCK_RING_BYTES, 1024)
    dst = arena.take(BLOCK_BYTES, 2048)
    mids = [mid[i : i + BLOCK_BYTES] for i in range(0, BLOCK_RING_BYTES, BLOCK_BYTES)]
    return _memcpy_loops(src, dst, mids)


def _deinterleave_loop(Ring, deinterleave):
    rings = [Ring(FRAME_RING_BYTES) for _ in range(DEINT_CHANNELS)]
    frames = _data(DEINT_FRAMES * DEINT_CHANNELS * 2)

    def loop(n):
        for _ in itertools.repeat(None, n):
            deinterleave(frames, rings)

    return loop


# -- the section -----------------------------------------------------------------


def run(quick=False):
    """Measure; return MB/s figures, the ratios and their targets.

    :param quick: shorter, less precise run (about 3 s instead of 10 s)
    """
    # Repeats shorter than a scheduler time slice, so that on a busy machine
    # many of them run uninterrupted; the best one counts.
    repeat_s, repeats = (0.002, 40) if quick else (0.002, 250)
    impls = {"python": (ring_pkg.PyRing, ring_pkg.py_deinterleave)}
    if hasattr(ring_pkg, "CRing"):
        impls["c"] = (ring_pkg.CRing, ring_pkg.c_deinterleave)

    variants = {
        "memcpy_20ms": [(_memcpy_frames_loop(), FRAME_BYTES)],
        "memcpy_single": [(loop, BLOCK_BYTES) for loop in _memcpy_single_loops()],
        "memcpy_in_out": [(loop, BLOCK_BYTES) for loop in _memcpy_in_out_loops()],
    }
    deint_bytes = DEINT_FRAMES * DEINT_CHANNELS * 2
    for name, (Ring, deinterleave) in impls.items():
        variants[name + "_20ms"] = [(_frames_loop(Ring(FRAME_RING_BYTES)), FRAME_BYTES)]
        for consume in ("readinto", "read", "zero_copy"):
            loop = _blocks_loop(Ring(BLOCK_RING_BYTES), consume)
            variants["%s_64k_%s" % (name, consume)] = [(loop, BLOCK_BYTES)]
        variants[name + "_deinterleave"] = [(_deinterleave_loop(Ring, deinterleave), deint_bytes)]
    mbps = _best_mbps(variants, repeat_s, repeats)

    frames = {name: mbps[name + "_20ms"] for name in list(impls) + ["memcpy"]}
    blocks = {key: mbps[key] for key in ("memcpy_single", "memcpy_in_out")}
    blocks.update({key.replace("_64k", ""): value for key, value in mbps.items() if "_64k_" in key})
    deint = {name: mbps[name + "_deinterleave"] for name in impls}
    results = {
        "implementation": ring_pkg.IMPLEMENTATION,
        "frames_20ms_MBps": frames,
        "frames_20ms_us_per_frame": {name: FRAME_BYTES / v for name, v in frames.items()},
        "blocks_64k_MBps": blocks,
        "deinterleave_4ch_20ms_MBps": deint,
        "targets": dict(TARGETS),
    }
    if "c" in impls:
        results.update(
            {
                "c_vs_twin_20ms": frames["c"] / frames["python"],
                "c_vs_memcpy_64k": blocks["c_readinto"] / blocks["memcpy_in_out"],
                "c_zero_copy_vs_memcpy_64k": blocks["c_zero_copy"] / blocks["memcpy_single"],
                "c_vs_single_memcpy_64k": blocks["c_readinto"] / blocks["memcpy_single"],
                "c_vs_twin_deinterleave": deint["c"] / deint["python"],
            }
        )
    else:
        results["note"] = "C extension not built: only the twin was measured"
    return results


if __name__ == "__main__":
    import pprint

    pprint.pprint(run(quick=True))
