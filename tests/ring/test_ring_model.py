"""Both implementations against one obviously-right model (hypothesis, stateful).

The model keeps every byte ever written and applies the overflow rule
eagerly; the rings apply it lazily. Any sequence of operations must give the
same results and the same counters.
"""

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test


class Model:
    """The rule, written as plainly as possible."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.stream = bytearray()  # every byte ever written
        self.tail = 0
        self.overruns = 0
        self.lost_bytes = 0

    @property
    def written(self):
        return len(self.stream)

    @property
    def available(self):
        return self.written - self.tail

    def write(self, data):
        if self.available + len(data) > self.capacity:
            self.overruns += 1
            new_tail = self.written + len(data) - self.capacity
            self.lost_bytes += new_tail - self.tail
            self.tail = new_tail
        self.stream += data
        return len(data)

    def peek(self, n):
        return bytes(self.stream[self.tail : self.tail + min(n, self.available)])

    def skip(self, n):
        k = min(n, self.available)
        self.tail += k
        return k

    def read(self, n):
        data = self.peek(n)
        self.skip(n)
        return data

    def reset(self):
        self.tail = self.written

    def seek_back(self, n):
        k = min(n, self.capacity, self.written)
        self.tail = self.written - k
        return k

    def preroll(self, n):
        if n > self.capacity:
            raise ValueError
        return bytes(self.stream[self.written - min(n, self.written) :])

    def region_count(self, n):
        k = min(n, self.available)
        return 2 if self.tail % self.capacity + k > self.capacity else 1


class RingMachine(RuleBasedStateMachine):
    impl = None  # set per implementation

    @initialize(capacity=st.sampled_from([64, 128, 256]))
    def make(self, capacity):
        self.ring = self.impl.Ring(capacity)
        self.model = Model(capacity)

    @rule(data=st.binary(max_size=600))
    def write(self, data):
        assert self.ring.write(data) == self.model.write(data)

    @rule(data=st.data(), channels=st.integers(1, 3), width=st.integers(1, 3), frames=st.integers(0, 120))
    def deinterleave(self, data, channels, width, frames):
        raw = data.draw(st.binary(min_size=channels * width * frames, max_size=channels * width * frames))
        target = data.draw(st.integers(0, channels - 1))
        rings = [None] * channels
        rings[target] = self.ring
        assert self.impl.deinterleave(raw, rings, width) == frames
        chunks = [raw[i : i + width] for i in range(0, len(raw), width)]
        self.model.write(b"".join(chunks[target::channels]))

    @rule(n=st.integers(0, 300))
    def read(self, n):
        assert self.ring.read(n) == self.model.read(n)

    @rule(n=st.integers(0, 300))
    def readinto(self, n):
        buf = bytearray(n)
        got = self.ring.readinto(buf)
        assert bytes(buf[:got]) == self.model.read(n)

    @rule(n=st.integers(0, 300))
    def peek(self, n):
        assert self.ring.peek(n) == self.model.peek(n)

    @rule(n=st.integers(0, 300))
    def skip(self, n):
        assert self.ring.skip(n) == self.model.skip(n)

    @rule(n=st.integers(0, 300))
    def regions(self, n):
        views = self.ring.regions(n)
        assert len(views) == self.model.region_count(n)
        assert b"".join(bytes(v) for v in views) == self.model.peek(n)

    @rule(n=st.integers(0, 300))
    def seek_back(self, n):
        assert self.ring.seek_back(n) == self.model.seek_back(n)

    @rule(n=st.integers(0, 300))
    def preroll(self, n):
        if n > self.model.capacity:
            with pytest.raises(ValueError):
                self.ring.preroll(n)
        else:
            assert self.ring.preroll(n) == self.model.preroll(n)

    @rule()
    def reset(self):
        self.ring.reset()
        self.model.reset()

    @invariant()
    def counters_agree(self):
        ring, model = self.ring, self.model
        assert (ring.available, ring.written, ring.read_pos, ring.overruns, ring.lost_bytes) == (
            model.available,
            model.written,
            model.tail,
            model.overruns,
            model.lost_bytes,
        )


def test_matches_the_model(impl):
    machine = type("RingMachine_" + impl.name, (RingMachine,), {"impl": impl})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
