"""Pure-Python twin of :mod:`firmware.ring._cring`: the same API, the same results.

Used where the C extension is not built, and run by every ring test next to
the C one. It follows the C code's protocol step by step (``head``,
``pending``, ``tail``; lazy catch-up of the consumer; validation of every copy
out against ``pending``), so it is also correct with one producer thread and
one consumer thread: each slice copy runs under the GIL, and between
statements the protocol, not a lock, keeps the consumer from returning bytes
the producer overwrote.

One difference: ``memoryview(ring)`` needs ``__buffer__`` (PEP 688), which
only Python 3.12 and later honour for classes written in Python.
"""

from operator import index as _index

MIN_CAPACITY = 64
MAX_CAPACITY = 1 << 30
MAX_SAMPLE_WIDTH = 8


def _size(n, what):
    n = _index(n)
    if n < 0:
        raise ValueError("%s must not be negative, got %r" % (what, n))
    return n


def _byte_view(obj, what, writable=False):
    """A flat unsigned-byte memoryview of ``obj``, or TypeError saying why not."""
    kind = "writable bytes-like" if writable else "bytes-like"
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError("%s must be a %s object, not %r" % (what, kind, type(obj).__name__)) from None
    if not view.c_contiguous or (writable and view.readonly):
        raise TypeError(
            "%s must be a C-contiguous%s bytes-like object, and this %r is not"
            % (what, " writable" if writable else "", type(obj).__name__)
        )
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Ring:
    """Single-producer, single-consumer byte ring that never blocks the producer.

    :param capacity: bytes, a power of two from 64 to 2**30 (ValueError otherwise)

    When unread data would exceed the capacity the oldest unread bytes are
    overwritten: :attr:`overruns` counts the writes that did so,
    :attr:`lost_bytes` the bytes. One thread may write (:meth:`write`,
    :func:`deinterleave`) while one other thread consumes (everything else).
    """

    __slots__ = (
        "_capacity",
        "_mask",
        "_buf",
        "_view",
        "_ro",
        "_head",
        "_pending",
        "_overruns",
        "_tail",
        "_lost",
    )

    def __init_subclass__(cls, **kwargs):
        raise TypeError("firmware.ring.Ring is not an acceptable base type")

    def __init__(self, capacity):
        cap = _index(capacity)
        if cap < MIN_CAPACITY or cap > MAX_CAPACITY or cap & (cap - 1):
            raise ValueError(
                "capacity must be a power of two from %d to %d bytes, got %r"
                % (MIN_CAPACITY, MAX_CAPACITY, capacity)
            )
        self._capacity = cap
        self._mask = cap - 1
        self._buf = bytearray(cap)
        self._view = memoryview(self._buf)  # also pins the bytearray's size
        self._ro = self._view.toreadonly()
        self._head = 0  # producer: end of published data
        self._pending = 0  # producer: end of the write in progress
        self._overruns = 0
        self._tail = 0  # consumer: next unread byte
        self._lost = 0

    # -- storage copies (n <= capacity) --------------------------------------

    def _copy_in(self, pos, src):
        off = pos & self._mask
        first = self._capacity - off
        n = len(src)
        if n <= first:
            self._view[off : off + n] = src
        else:
            self._view[off:] = src[:first]
            self._view[: n - first] = src[first:]

    def _copy_out(self, pos, n):
        off = pos & self._mask
        if off + n <= self._capacity:
            return self._buf[off : off + n]
        return self._buf[off:] + self._buf[: off + n - self._capacity]

    # -- producer -------------------------------------------------------------

    def _begin(self, n):
        head = self._head
        unread = min(head - self._tail, self._capacity)
        if unread + n > self._capacity:
            self._overruns += 1
        end = head + n
        self._pending = end
        return end

    def write(self, data):
        """Append a C-contiguous bytes-like object; never blocks.

        Overwrites the oldest unread bytes when full; of a write longer than the
        capacity only the last ``capacity`` bytes are kept.

        :returns: the number of bytes written (``len(data)`` for bytes)
        :raises TypeError: ``data`` is not a C-contiguous bytes-like object
        """
        src = _byte_view(data, "write() argument")
        n = len(src)
        if src.obj is self._buf or src.obj is self:
            src = bytes(src)  # our own storage, through memoryview(ring) or regions()
        end = self._begin(n)
        if n > self._capacity:
            src = src[n - self._capacity :]
        self._copy_in(end - len(src), src)
        self._head = end
        return n

    # -- consumer -------------------------------------------------------------

    def _sync(self):
        """Drop what the producer overwrote before we looked; return head."""
        head = self._head
        limit = head - self._capacity
        if self._tail < limit:
            self._lost += limit - self._tail
            self._tail = limit
        return head

    def _torn(self, start, n):
        """Leading bytes of a copy of [start, start + n) overwritten meanwhile."""
        torn = self._pending - self._capacity - start
        return 0 if torn <= 0 else min(torn, n)

    def _take(self, n, consume):
        head = self._sync()
        start = self._tail
        k = min(n, head - start)
        out = self._copy_out(start, k)
        torn = self._torn(start, k)
        self._lost += torn
        self._tail = start + k if consume else start + torn
        return out[torn:] if torn else out

    def read(self, n):
        """Consume and return up to ``n`` unread bytes, oldest first.

        :raises ValueError: ``n`` is negative
        """
        return bytes(self._take(_size(n, "read() size"), True))

    def peek(self, n):
        """Like :meth:`read` without consuming."""
        return bytes(self._take(_size(n, "peek() size"), False))

    def readinto(self, buf):
        """Consume up to ``len(buf)`` bytes (bytes, not items) into ``buf``.

        :returns: the byte count
        :raises TypeError: ``buf`` is not a writable C-contiguous bytes-like object
        """
        dst = _byte_view(buf, "readinto() argument", writable=True)
        data = self._take(len(dst), True)
        dst[: len(data)] = data
        return len(data)

    def skip(self, n):
        """Consume up to ``n`` unread bytes without copying; returns the count."""
        n = _size(n, "skip() size")
        head = self._sync()
        k = min(n, head - self._tail)
        self._tail += k
        return k

    def reset(self):
        """Drop all unread data (consumer side)."""
        self._tail = self._sync()

    def seek_back(self, n):
        """Make the next read start ``n`` bytes before the write position.

        Clamped to what the ring still holds. Used to start a recording with
        its pre-roll.

        :returns: the new :attr:`available`
        """
        n = _size(n, "seek_back() size")
        head = self._sync()
        k = min(n, self._capacity, head)
        self._tail = head - k
        return k

    def preroll(self, n):
        """The last ``n`` bytes written, whatever the read position.

        Fewer if fewer were ever written.

        :raises ValueError: ``n`` is negative or more than the capacity
        """
        n = _size(n, "preroll() size")
        if n > self._capacity:
            raise ValueError(
                "preroll() size must be at most the capacity (%d bytes), got %d" % (self._capacity, n)
            )
        head = self._head
        k = min(n, head)
        out = self._copy_out(head - k, k)
        torn = self._torn(head - k, k)
        return bytes(out[torn:] if torn else out)

    def regions(self, n):
        """One or two read-only memoryviews onto the storage: up to ``n`` unread bytes.

        Zero-copy: call :meth:`skip` with their total length after use. The
        producer may overwrite them if it laps the consumer: check
        :attr:`lost_bytes`.
        """
        n = _size(n, "regions() size")
        head = self._sync()
        k = min(n, head - self._tail)
        off = self._tail & self._mask
        first = min(k, self._capacity - off)
        if first == k:
            return (self._ro[off : off + k],)
        return (self._ro[off:], self._ro[: k - first])

    def __buffer__(self, flags):
        """The whole storage, read-only (Python 3.12+ only)."""
        return self._ro[:]

    def __repr__(self):
        return "Ring(capacity=%d, available=%d, written=%d, overruns=%d, lost_bytes=%d)" % (
            self._capacity,
            self.available,
            self._head,
            self._overruns,
            self.lost_bytes,
        )

    # -- properties (lazy, like the C code) -------------------------------------

    @property
    def capacity(self):
        """Storage size in bytes."""
        return self._capacity

    @property
    def available(self):
        """Unread bytes."""
        return min(self._head - self._tail, self._capacity)

    @property
    def written(self):
        """Total bytes ever written: the producer's position."""
        return self._head

    @property
    def read_pos(self):
        """Total bytes consumed or lost: the consumer's position."""
        return max(self._tail, self._head - self._capacity)

    @property
    def overruns(self):
        """Writes that overwrote unread data."""
        return self._overruns

    @property
    def lost_bytes(self):
        """Unread bytes overwritten before the consumer got them."""
        return self._lost + max(0, self._head - self._capacity - self._tail)


def deinterleave(frames, rings, sample_width=2):
    """Split interleaved frames into one ring per channel.

    :param frames: C-contiguous bytes-like, ``len(rings)`` channels of
        ``sample_width`` bytes per frame
    :param rings: channel i goes to ``rings[i]``; ``None`` skips the channel
    :param sample_width: bytes per sample, 1 to 8
    :returns: the frame count
    :raises ValueError: ``frames`` is not a whole number of frames, ``rings`` is
        empty, or ``sample_width`` is out of range
    :raises TypeError: ``frames`` is not bytes-like, or an entry of ``rings`` is
        neither a Ring nor None
    """
    width = _size(sample_width, "sample_width")
    if not 1 <= width <= MAX_SAMPLE_WIDTH:
        raise ValueError("sample_width must be from 1 to %d bytes, got %r" % (MAX_SAMPLE_WIDTH, sample_width))
    try:
        rings = list(rings)
    except TypeError:
        raise TypeError("deinterleave() rings must be a sequence of Ring or None") from None
    if not rings:
        raise ValueError("deinterleave() rings must not be empty")
    for i, ring in enumerate(rings):
        if ring is not None and type(ring) is not Ring:
            raise TypeError(
                "deinterleave() rings[%d] must be a Ring or None, not %r" % (i, type(ring).__name__)
            )
    view = _byte_view(frames, "deinterleave() frames")
    channels = len(rings)
    frame_bytes = channels * width
    if len(view) % frame_bytes:
        raise ValueError(
            "deinterleave() frames is %d bytes, not a whole number of "
            "%d-channel frames of %d-byte samples (%d bytes each)" % (len(view), channels, width, frame_bytes)
        )
    nframes = len(view) // frame_bytes
    src = bytes(view)  # bytes slices with a step are done in C
    for ch, ring in enumerate(rings):
        if ring is None:
            continue
        if width == 1:
            ring.write(src[ch::frame_bytes])
            continue
        out = bytearray(nframes * width)
        for j in range(width):
            out[j::width] = src[ch * width + j :: frame_bytes]
        ring.write(out)
    return nframes
