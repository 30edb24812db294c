"""One producer thread, one consumer thread, a small ring, no mercy.

The producer writes a stream in which every 8-byte word holds its own word
position, so any byte the consumer gets can be checked on its own: each read
must be a run of consecutive words starting at or after where the last one
ended, and the gaps must add up exactly to ``lost_bytes``. A torn copy (the
producer lapping the consumer while it copies outside the GIL) would show up
as a broken run; returning overwritten bytes as valid would too.
"""

import sys
import threading
import time

import numpy as np
import pytest

CAPACITY = 1 << 13
SECONDS = 0.6  # per run; bounded also by MAX_BYTES
MAX_BYTES = 256 << 20
WRITE_SIZES = [8, 320, 2048, 4096, 6000 // 8 * 8, 16 << 10]
READ_SIZES = [8, 64, 4096, 8192, 24 << 10]
SWITCH_INTERVAL_S = 1e-5


def words(pos, nbytes):
    return np.arange(pos // 8, (pos + nbytes) // 8, dtype="<u8")


def produce_writes(ring, stop):
    pos, i = 0, 0
    while not stop.is_set() and pos < MAX_BYTES:
        size = WRITE_SIZES[i % len(WRITE_SIZES)]
        ring.write(words(pos, size))
        pos, i = pos + size, i + 1


def produce_deinterleaved(impl):
    def produce(ring, stop):
        """Channel 1 of 2 carries the stream; channel 0 is noise."""
        pos, i = 0, 0
        while not stop.is_set() and pos < MAX_BYTES:
            size = WRITE_SIZES[i % len(WRITE_SIZES)]
            frames = np.empty((size // 2, 2), dtype="<u2")
            frames[:, 0] = 0xDEAD
            frames[:, 1] = words(pos, size).view("<u2")
            impl.deinterleave(frames, [None, ring])
            pos, i = pos + size, i + 1

    return produce


def read_with_read(ring, size):
    return ring.read(size)


def read_with_readinto(ring, size):
    buf = bytearray(size)
    return buf[: ring.readinto(buf)]


@pytest.mark.parametrize("consume", [read_with_read, read_with_readinto], ids=["read", "readinto"])
@pytest.mark.parametrize("producer", ["write", "deinterleave"])
def test_every_byte_is_correct_or_counted_lost(impl, producer, consume):
    ring = impl.Ring(CAPACITY)
    produce = produce_writes if producer == "write" else produce_deinterleaved(impl)
    stop = threading.Event()  # the consumer asks the producer to stop
    finished = threading.Event()  # the producer has returned
    errors = []

    def run_producer():
        try:
            produce(ring, stop)
        except BaseException as exc:  # surface it in the test, not on stderr
            errors.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=run_producer)
    expected, gaps, got, reads = 0, 0, 0, 0
    deadline = time.monotonic() + SECONDS
    switch_interval = sys.getswitchinterval()
    # Hand the GIL over often, so the twin is interleaved mid-method too.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    thread.start()
    try:
        while True:
            done = finished.is_set()  # sampled before the read: drain after it
            data = consume(ring, READ_SIZES[reads % len(READ_SIZES)])
            reads += 1
            if data:
                run = np.frombuffer(data, dtype="<u8")
                start = int(run[0]) * 8
                assert len(data) % 8 == 0
                assert np.array_equal(run, words(start, len(data))), "torn or garbage data"
                assert start >= expected, "data went backwards"
                gaps += start - expected
                expected = start + len(data)
                got += len(data)
            elif done:
                break
            if time.monotonic() > deadline:
                stop.set()
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch_interval)
    assert not errors, errors
    assert ring.available == 0
    assert expected == ring.read_pos == ring.written
    assert gaps == ring.lost_bytes, "lost bytes not accounted for"
    assert got + gaps == ring.written
    assert ring.overruns > 0, "the producer never lapped the consumer: test too weak"
    assert got > 0
