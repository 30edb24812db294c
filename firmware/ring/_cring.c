/* _cring: the C speed-up of firmware.ring (twin: _pyring.py, same API).
 *
 * A single-producer / single-consumer byte ring that never blocks the
 * producer: when the unread data would exceed the capacity, the oldest unread
 * bytes are overwritten. No locks. Positions are 64-bit byte counts since the
 * ring was made; the byte at position p lives at data[p & mask].
 *
 *   head     end of the published data (producer writes, release)
 *   pending  end of the write in progress, >= head (producer, set BEFORE the copy)
 *   tail     next unread byte (consumer)
 *
 * The consumer may copy outside the GIL while the producer laps it, so every
 * copy out of the storage is validated seqlock-style: load head, copy, then
 * load pending; any copied byte at a position < pending - capacity may have
 * been overwritten during the copy and is dropped (counted in lost_bytes),
 * never returned. The consumer lazily catches its tail up to head - capacity
 * ("lost" bytes the producer overwrote before we looked); the properties
 * compute the same lazily, so single-threaded results equal the eager rule
 * of the twin.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* Copies of at least this many bytes run with the GIL released. */
#define NOGIL_MIN_BYTES 4096
#define MIN_CAPACITY 64
#define MAX_CAPACITY ((uint64_t)1 << 30)
#define MAX_SAMPLE_WIDTH 8

typedef struct {
    PyObject_HEAD
    char *data;
    uint64_t capacity;
    uint64_t mask;
    /* Producer-owned; padded away from the consumer's line (false sharing). */
    char pad0[64];
    _Atomic uint64_t head;
    _Atomic uint64_t pending;
    _Atomic uint64_t overruns;
    char pad1[64];
    /* Consumer-owned. */
    _Atomic uint64_t tail;
    _Atomic uint64_t lost;
} RingObject;

static PyTypeObject RingType;

#define LOAD(p, o) atomic_load_explicit((p), memory_order_##o)
#define STORE(p, v, o) atomic_store_explicit((p), (v), memory_order_##o)

/* ---- storage copies (lengths always <= capacity) ------------------------ */

/* memcpy, but around an x86 cliff: glibc copies a few KiB and more with
 * `rep movsb`, which runs ~20x slower when dst is 1..63 bytes past src
 * modulo 4 KiB (4K aliasing; measured on AMD Zen, glibc 2.36: 64 KiB in
 * 27 us instead of 1.4 us). Whether a caller's buffer lands there is
 * allocation luck. In that window copy from the end, 64 bytes at a time
 * (inlined vector moves): each load is then below every store it could
 * alias, and 64 KiB take 1.7 us. Chunked memcpy calls do not help: glibc
 * picks their direction itself. */
#define ALIAS_MIN_BYTES 2048

static inline void
copy_bytes(char *dst, const char *src, size_t n)
{
#if defined(__x86_64__) || defined(__i386__)
    if (n >= ALIAS_MIN_BYTES && ((((uintptr_t)dst - (uintptr_t)src) & 4095) - 1) < 63) {
        while (n >= 64) {
            n -= 64;
            memcpy(dst + n, src + n, 64);
        }
        memcpy(dst, src, n);
        return;
    }
#endif
    memcpy(dst, src, n);
}

static void
copy_in(RingObject *r, uint64_t pos, const char *src, size_t n)
{
    size_t off = (size_t)(pos & r->mask);
    size_t first = (size_t)r->capacity - off;
    if (first > n)
        first = n;
    copy_bytes(r->data + off, src, first);
    copy_bytes(r->data, src + first, n - first);
}

static void
copy_out(RingObject *r, uint64_t pos, char *dst, size_t n)
{
    size_t off = (size_t)(pos & r->mask);
    size_t first = (size_t)r->capacity - off;
    if (first > n)
        first = n;
    copy_bytes(dst, r->data + off, first);
    copy_bytes(dst + first, r->data, n - first);
}

/* ---- producer side ------------------------------------------------------- */

/* Start a write of n bytes: count an overrun if it overwrites unread data,
 * announce the positions it will overwrite. Returns the new head; the caller
 * copies the last min(n, capacity) bytes to [end - that, end) and publishes. */
static uint64_t
producer_begin(RingObject *r, uint64_t n)
{
    uint64_t head = LOAD(&r->head, relaxed);
    uint64_t tail = LOAD(&r->tail, acquire);
    uint64_t unread = head - tail;
    if (unread > r->capacity)
        unread = r->capacity;
    if (unread + n > r->capacity)
        STORE(&r->overruns, LOAD(&r->overruns, relaxed) + 1, relaxed);
    uint64_t end = head + n;
    STORE(&r->pending, end, relaxed);
    /* The pending store must be visible before any byte of the copy. */
    atomic_thread_fence(memory_order_release);
    return end;
}

static inline void
producer_publish(RingObject *r, uint64_t end)
{
    STORE(&r->head, end, release);
}

/* ---- consumer side ------------------------------------------------------- */

/* Drop what the producer overwrote before we looked; return the published
 * head and (in *tail) the first unread position, head - *tail <= capacity. */
static uint64_t
consumer_sync(RingObject *r, uint64_t *tail)
{
    uint64_t head = LOAD(&r->head, acquire);
    uint64_t t = LOAD(&r->tail, relaxed);
    if (head - t > r->capacity) {
        uint64_t limit = head - r->capacity;
        STORE(&r->lost, LOAD(&r->lost, relaxed) + (limit - t), relaxed);
        t = limit;
        STORE(&r->tail, t, release);
    }
    *tail = t;
    return head;
}

/* After copying [start, start + n) out of the storage: how many leading
 * bytes the producer may have overwritten during the copy. */
static uint64_t
consumer_torn(RingObject *r, uint64_t start, uint64_t n)
{
    atomic_thread_fence(memory_order_acquire);
    uint64_t pending = LOAD(&r->pending, relaxed);
    if (pending <= r->capacity || pending - r->capacity <= start)
        return 0;
    uint64_t torn = pending - r->capacity - start;
    return torn < n ? torn : n;
}

static inline void
consumer_drop(RingObject *r, uint64_t nbytes)
{
    if (nbytes)
        STORE(&r->lost, LOAD(&r->lost, relaxed) + nbytes, relaxed);
}

/* Copy up to n unread bytes at the tail into dst; the valid bytes end up at
 * the front of dst. Consumes them if `consume`. Returns the valid count. */
static Py_ssize_t
consumer_copy(RingObject *r, char *dst, uint64_t n, int consume)
{
    uint64_t start;
    uint64_t head = consumer_sync(r, &start);
    uint64_t k = head - start;
    if (k > r->capacity) /* only if the one-consumer contract is broken */
        k = r->capacity;
    if (k > n)
        k = n;
    if (k >= NOGIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        copy_out(r, start, dst, (size_t)k);
        Py_END_ALLOW_THREADS
    }
    else {
        copy_out(r, start, dst, (size_t)k);
    }
    uint64_t torn = consumer_torn(r, start, k);
    consumer_drop(r, torn);
    STORE(&r->tail, consume ? start + k : start + torn, release);
    if (torn)
        memmove(dst, dst + torn, (size_t)(k - torn));
    return (Py_ssize_t)(k - torn);
}

/* ---- argument helpers ---------------------------------------------------- */

/* A byte count argument: an int >= 0 (huge values clip to PY_SSIZE_T_MAX). */
static Py_ssize_t
size_arg(PyObject *obj, const char *what)
{
    Py_ssize_t n;
    if (PyLong_CheckExact(obj)) {
        n = PyLong_AsSsize_t(obj);
        if (n == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            n = PyNumber_AsSsize_t(obj, NULL); /* clips instead of raising */
        }
    }
    else {
        PyObject *index = PyNumber_Index(obj);
        if (index == NULL)
            return -2;
        n = PyNumber_AsSsize_t(index, NULL);
        Py_DECREF(index);
    }
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative, got %R", what, obj);
        return -2;
    }
    return n;
}

/* Get a C-contiguous buffer, with a TypeError that says what was wrong. */
static int
buffer_arg(PyObject *obj, Py_buffer *view, int writable, const char *what)
{
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a %sbytes-like object, not '%.100s'",
                     what, writable ? "writable " : "", Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s bytes-like object, "
                     "and this '%.100s' is not", what, writable ? " writable" : "",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static int
overlaps(RingObject *r, const char *p, Py_ssize_t len)
{
    return p < r->data + r->capacity && r->data < p + len;
}

/* ---- Ring methods -------------------------------------------------------- */

static PyObject *
Ring_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", NULL};
    PyObject *cap_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Ring", kwlist, &cap_obj))
        return NULL;
    PyObject *index = PyNumber_Index(cap_obj);
    if (index == NULL)
        return NULL;
    int overflow;
    long long cap = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (cap == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || cap < MIN_CAPACITY || (uint64_t)cap > MAX_CAPACITY || (cap & (cap - 1))) {
        PyErr_Format(PyExc_ValueError, "capacity must be a power of two from %d to %llu "
                     "bytes, got %R", MIN_CAPACITY, (unsigned long long)MAX_CAPACITY, cap_obj);
        return NULL;
    }
    RingObject *self = (RingObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    /* Zeroed: memoryview(ring) shows the whole storage, never stale heap. */
    self->data = PyMem_Calloc((size_t)cap, 1);
    if (self->data == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->capacity = (uint64_t)cap;
    self->mask = (uint64_t)cap - 1;
    atomic_init(&self->head, 0);
    atomic_init(&self->pending, 0);
    atomic_init(&self->overruns, 0);
    atomic_init(&self->tail, 0);
    atomic_init(&self->lost, 0);
    return (PyObject *)self;
}

static void
Ring_dealloc(RingObject *self)
{
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Write n bytes from src (the caller keeps src alive). */
static void
ring_write(RingObject *r, const char *src, uint64_t n)
{
    uint64_t end = producer_begin(r, n);
    if (n > r->capacity) {
        src += n - r->capacity;
        n = r->capacity;
    }
    if (n >= NOGIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        copy_in(r, end - n, src, (size_t)n);
        Py_END_ALLOW_THREADS
    }
    else {
        copy_in(r, end - n, src, (size_t)n);
    }
    producer_publish(r, end);
}

static PyObject *
Ring_write(RingObject *self, PyObject *data)
{
    if (PyBytes_CheckExact(data)) {
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        ring_write(self, PyBytes_AS_STRING(data), (uint64_t)n);
        return PyLong_FromSsize_t(n);
    }
    Py_buffer view;
    if (buffer_arg(data, &view, 0, "write() argument") < 0)
        return NULL;
    Py_ssize_t n = view.len;
    if (overlaps(self, view.buf, n)) {
        /* Writing the ring's own storage (memoryview(ring), regions()). */
        char *tmp = PyMem_Malloc(n ? (size_t)n : 1);
        if (tmp == NULL) {
            PyBuffer_Release(&view);
            return PyErr_NoMemory();
        }
        memcpy(tmp, view.buf, (size_t)n);
        ring_write(self, tmp, (uint64_t)n);
        PyMem_Free(tmp);
    }
    else {
        ring_write(self, view.buf, (uint64_t)n);
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

static PyObject *
copy_to_bytes(RingObject *self, PyObject *arg, const char *what, int consume)
{
    Py_ssize_t n = size_arg(arg, what);
    if (n < 0)
        return NULL;
    uint64_t start;
    uint64_t head = consumer_sync(self, &start);
    uint64_t avail = head - start;
    if ((uint64_t)n > avail)
        n = (Py_ssize_t)(avail < self->capacity ? avail : self->capacity);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL)
        return NULL;
    /* The producer may have added data since: copy at most n. */
    Py_ssize_t got = consumer_copy(self, PyBytes_AS_STRING(out), (uint64_t)n, consume);
    if (got < n && _PyBytes_Resize(&out, got) < 0)
        return NULL;
    return out;
}

static PyObject *
Ring_read(RingObject *self, PyObject *arg)
{
    return copy_to_bytes(self, arg, "read() size", 1);
}

static PyObject *
Ring_peek(RingObject *self, PyObject *arg)
{
    return copy_to_bytes(self, arg, "peek() size", 0);
}

static PyObject *
Ring_readinto(RingObject *self, PyObject *arg)
{
    Py_buffer view;
    if (buffer_arg(arg, &view, 1, "readinto() argument") < 0)
        return NULL;
    Py_ssize_t got;
    if (overlaps(self, view.buf, view.len)) {
        /* Only reachable through a writable view of our own storage (there
         * is none from Python, but stay memory-safe anyway). */
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "readinto() buffer overlaps the ring's storage");
        return NULL;
    }
    got = consumer_copy(self, view.buf, (uint64_t)view.len, 1);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(got);
}

static PyObject *
Ring_skip(RingObject *self, PyObject *arg)
{
    Py_ssize_t n = size_arg(arg, "skip() size");
    if (n < 0)
        return NULL;
    uint64_t tail;
    uint64_t head = consumer_sync(self, &tail);
    uint64_t k = head - tail;
    if (k > (uint64_t)n)
        k = (uint64_t)n;
    STORE(&self->tail, tail + k, release);
    return PyLong_FromUnsignedLongLong(k);
}

static PyObject *
Ring_reset(RingObject *self, PyObject *Py_UNUSED(ignored))
{
    uint64_t tail;
    uint64_t head = consumer_sync(self, &tail);
    STORE(&self->tail, head, release);
    Py_RETURN_NONE;
}

static PyObject *
Ring_seek_back(RingObject *self, PyObject *arg)
{
    Py_ssize_t n = size_arg(arg, "seek_back() size");
    if (n < 0)
        return NULL;
    uint64_t tail;
    uint64_t head = consumer_sync(self, &tail);
    uint64_t k = (uint64_t)n;
    if (k > self->capacity)
        k = self->capacity;
    if (k > head)
        k = head;
    STORE(&self->tail, head - k, release);
    return PyLong_FromUnsignedLongLong(k);
}

static PyObject *
Ring_preroll(RingObject *self, PyObject *arg)
{
    Py_ssize_t n = size_arg(arg, "preroll() size");
    if (n < 0)
        return NULL;
    if ((uint64_t)n > self->capacity) {
        PyErr_Format(PyExc_ValueError, "preroll() size must be at most the capacity "
                     "(%llu bytes), got %zd", (unsigned long long)self->capacity, n);
        return NULL;
    }
    uint64_t head = LOAD(&self->head, acquire);
    uint64_t k = (uint64_t)n < head ? (uint64_t)n : head;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)k);
    if (out == NULL)
        return NULL;
    char *dst = PyBytes_AS_STRING(out);
    uint64_t start = head - k;
    if (k >= NOGIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        copy_out(self, start, dst, (size_t)k);
        Py_END_ALLOW_THREADS
    }
    else {
        copy_out(self, start, dst, (size_t)k);
    }
    uint64_t torn = consumer_torn(self, start, k);
    if (torn) {
        memmove(dst, dst + torn, (size_t)(k - torn));
        if (_PyBytes_Resize(&out, (Py_ssize_t)(k - torn)) < 0)
            return NULL;
    }
    return out;
}

static PyObject *
Ring_regions(RingObject *self, PyObject *arg)
{
    Py_ssize_t n = size_arg(arg, "regions() size");
    if (n < 0)
        return NULL;
    uint64_t tail;
    uint64_t head = consumer_sync(self, &tail);
    uint64_t k = head - tail;
    if (k > (uint64_t)n)
        k = (uint64_t)n;
    Py_ssize_t off = (Py_ssize_t)(tail & self->mask);
    Py_ssize_t first = (Py_ssize_t)self->capacity - off;
    if ((uint64_t)first > k)
        first = (Py_ssize_t)k;
    Py_ssize_t second = (Py_ssize_t)k - first;

    PyObject *whole = PyMemoryView_FromObject((PyObject *)self);
    if (whole == NULL)
        return NULL;
    PyObject *result = PyTuple_New(second ? 2 : 1);
    PyObject *a = NULL, *b = NULL;
    if (result == NULL)
        goto error;
    a = PySequence_GetSlice(whole, off, off + first);
    if (a == NULL)
        goto error;
    PyTuple_SET_ITEM(result, 0, a);
    if (second) {
        b = PySequence_GetSlice(whole, 0, second);
        if (b == NULL)
            goto error;
        PyTuple_SET_ITEM(result, 1, b);
    }
    Py_DECREF(whole);
    return result;
error:
    Py_XDECREF(result);
    Py_DECREF(whole);
    return NULL;
}

static PyObject *
Ring_repr(RingObject *self)
{
    uint64_t head = LOAD(&self->head, acquire);
    uint64_t tail = LOAD(&self->tail, acquire);
    uint64_t lost = LOAD(&self->lost, relaxed);
    uint64_t avail = head - tail;
    if (avail > self->capacity) {
        lost += avail - self->capacity;
        avail = self->capacity;
    }
    return PyUnicode_FromFormat(
        "Ring(capacity=%llu, available=%llu, written=%llu, overruns=%llu, lost_bytes=%llu)",
        (unsigned long long)self->capacity, (unsigned long long)avail,
        (unsigned long long)head, (unsigned long long)LOAD(&self->overruns, relaxed),
        (unsigned long long)lost);
}

/* ---- properties (lazy: the same numbers the twin keeps eagerly) ---------- */

static PyObject *
Ring_get_capacity(RingObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->capacity);
}

static PyObject *
Ring_get_available(RingObject *self, void *Py_UNUSED(c))
{
    uint64_t head = LOAD(&self->head, acquire);
    uint64_t avail = head - LOAD(&self->tail, acquire);
    return PyLong_FromUnsignedLongLong(avail < self->capacity ? avail : self->capacity);
}

static PyObject *
Ring_get_written(RingObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(LOAD(&self->head, acquire));
}

static PyObject *
Ring_get_read_pos(RingObject *self, void *Py_UNUSED(c))
{
    uint64_t head = LOAD(&self->head, acquire);
    uint64_t tail = LOAD(&self->tail, acquire);
    if (head - tail > self->capacity)
        tail = head - self->capacity;
    return PyLong_FromUnsignedLongLong(tail);
}

static PyObject *
Ring_get_overruns(RingObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(LOAD(&self->overruns, relaxed));
}

static PyObject *
Ring_get_lost_bytes(RingObject *self, void *Py_UNUSED(c))
{
    uint64_t head = LOAD(&self->head, acquire);
    uint64_t tail = LOAD(&self->tail, acquire);
    uint64_t lost = LOAD(&self->lost, relaxed);
    if (head - tail > self->capacity)
        lost += head - tail - self->capacity;
    return PyLong_FromUnsignedLongLong(lost);
}

/* ---- buffer protocol: the whole storage, read-only ------------------------ */

static int
Ring_getbuffer(RingObject *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data,
                             (Py_ssize_t)self->capacity, 1, flags);
}

static PyBufferProcs Ring_as_buffer = {
    .bf_getbuffer = (getbufferproc)Ring_getbuffer,
};

PyDoc_STRVAR(Ring_doc,
"Ring(capacity)\n--\n\n"
"Single-producer, single-consumer byte ring that never blocks the producer.\n\n"
"capacity is in bytes, a power of two from 64 to 2**30 (ValueError otherwise).\n"
"When unread data would exceed the capacity the oldest unread bytes are\n"
"overwritten: `overruns` counts the writes that did so, `lost_bytes` the bytes.\n"
"One thread may write (write, deinterleave) while one other thread consumes\n"
"(read, readinto, peek, skip, regions, seek_back, reset, preroll).");

static PyMethodDef Ring_methods[] = {
    {"write", (PyCFunction)Ring_write, METH_O,
     "write(data) -> int\n--\n\nAppend a C-contiguous bytes-like object; never blocks.\n"
     "Overwrites the oldest unread bytes when full; of a write longer than the\n"
     "capacity only the last `capacity` bytes are kept. Returns len(data) in bytes."},
    {"read", (PyCFunction)Ring_read, METH_O,
     "read(n) -> bytes\n--\n\nConsume and return up to n unread bytes, oldest first."},
    {"readinto", (PyCFunction)Ring_readinto, METH_O,
     "readinto(buf) -> int\n--\n\nConsume up to len(buf) bytes into a writable bytes-like\n"
     "object; returns the byte count."},
    {"peek", (PyCFunction)Ring_peek, METH_O,
     "peek(n) -> bytes\n--\n\nLike read(n) without consuming."},
    {"skip", (PyCFunction)Ring_skip, METH_O,
     "skip(n) -> int\n--\n\nConsume up to n unread bytes without copying; returns the count."},
    {"reset", (PyCFunction)Ring_reset, METH_NOARGS,
     "reset()\n--\n\nDrop all unread data (consumer side)."},
    {"seek_back", (PyCFunction)Ring_seek_back, METH_O,
     "seek_back(n) -> int\n--\n\nMake the next read start n bytes before the write position,\n"
     "clamped to what the ring still holds; returns the new `available`."},
    {"preroll", (PyCFunction)Ring_preroll, METH_O,
     "preroll(n) -> bytes\n--\n\nThe last n bytes written (fewer if fewer ever were), whatever\n"
     "the read position. ValueError if n > capacity."},
    {"regions", (PyCFunction)Ring_regions, METH_O,
     "regions(n) -> tuple\n--\n\nOne or two read-only memoryviews onto the storage covering up\n"
     "to n unread bytes (zero-copy); call skip() with their total length after use.\n"
     "The producer may overwrite them if it laps the consumer: check lost_bytes."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ring_getset[] = {
    {"capacity", (getter)Ring_get_capacity, NULL, "Storage size in bytes.", NULL},
    {"available", (getter)Ring_get_available, NULL, "Unread bytes.", NULL},
    {"written", (getter)Ring_get_written, NULL,
     "Total bytes ever written: the producer's position.", NULL},
    {"read_pos", (getter)Ring_get_read_pos, NULL,
     "Total bytes consumed or lost: the consumer's position.", NULL},
    {"overruns", (getter)Ring_get_overruns, NULL,
     "Writes that overwrote unread data.", NULL},
    {"lost_bytes", (getter)Ring_get_lost_bytes, NULL,
     "Unread bytes overwritten before the consumer got them.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "firmware.ring._cring.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_repr = (reprfunc)Ring_repr,
    .tp_as_buffer = &Ring_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Ring_doc,
    .tp_methods = Ring_methods,
    .tp_getset = Ring_getset,
    .tp_new = Ring_new,
};

/* ---- deinterleave -------------------------------------------------------- */

/* Copy bytes [off, off + len) of one channel's stream to dst; sample i of the
 * channel is the `width` bytes at src + i * stride. */
static void
gather(char *dst, const char *src, size_t stride, size_t width, size_t off, size_t len)
{
    /* A sample split by the storage wrap (only after odd-sized writes). */
    while (len && off % width) {
        *dst++ = src[(off / width) * stride + off % width];
        off++;
        len--;
    }
    size_t count = len / width;
    const char *s = src + (off / width) * stride;
    switch (width) {
    case 2:
        for (size_t i = 0; i < count; i++, dst += 2, s += stride)
            memcpy(dst, s, 2);
        break;
    case 1:
        for (size_t i = 0; i < count; i++, dst += 1, s += stride)
            *dst = *s;
        break;
    case 4:
        for (size_t i = 0; i < count; i++, dst += 4, s += stride)
            memcpy(dst, s, 4);
        break;
    default:
        for (size_t i = 0; i < count; i++, dst += width, s += stride)
            memcpy(dst, s, width);
    }
    off += count * width;
    len -= count * width;
    while (len) {
        *dst++ = src[(off / width) * stride + off % width];
        off++;
        len--;
    }
}

/* Write one channel (nframes samples of `width` bytes, `stride` apart). */
static void
ring_write_strided(RingObject *r, const char *src, size_t stride, size_t width, size_t nframes)
{
    uint64_t n = (uint64_t)nframes * width;
    uint64_t end = producer_begin(r, n);
    uint64_t skip = n > r->capacity ? n - r->capacity : 0;
    uint64_t keep = n - skip;
    uint64_t start = end - keep;
    size_t off = (size_t)(start & r->mask);
    size_t first = (size_t)r->capacity - off;
    if (first > keep)
        first = (size_t)keep;
    gather(r->data + off, src, stride, width, (size_t)skip, first);
    gather(r->data, src, stride, width, (size_t)skip + first, (size_t)keep - first);
    producer_publish(r, end);
}

static PyObject *
deinterleave(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    static const char *names[] = {"frames", "rings", "sample_width"};
    PyObject *argv[3] = {NULL, NULL, NULL};
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError,
                     "deinterleave() takes from 2 to 3 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        argv[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        int slot = -1;
        for (int j = 0; j < 3; j++)
            if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0)
                slot = j;
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError,
                         "deinterleave() got an unexpected keyword argument '%U'", key);
            return NULL;
        }
        if (argv[slot] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "deinterleave() got multiple values for argument '%s'", names[slot]);
            return NULL;
        }
        argv[slot] = args[nargs + i];
    }
    if (argv[0] == NULL || argv[1] == NULL) {
        PyErr_Format(PyExc_TypeError, "deinterleave() missing required argument '%s'",
                     argv[0] == NULL ? "frames" : "rings");
        return NULL;
    }

    Py_ssize_t width = 2;
    if (argv[2] != NULL) {
        width = size_arg(argv[2], "sample_width");
        if (width < 0)
            return NULL;
        if (width < 1 || width > MAX_SAMPLE_WIDTH) {
            PyErr_Format(PyExc_ValueError, "sample_width must be from 1 to %d bytes, got %R",
                         MAX_SAMPLE_WIDTH, argv[2]);
            return NULL;
        }
    }

    PyObject *seq = PySequence_Fast(argv[1], "deinterleave() rings must be a sequence of Ring or None");
    if (seq == NULL)
        return NULL;
    Py_ssize_t channels = PySequence_Fast_GET_SIZE(seq);
    if (channels == 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "deinterleave() rings must not be empty");
        return NULL;
    }
    /* Own the rings: the list may change while the GIL is released. */
    RingObject *stack_rings[16];
    RingObject **rings = stack_rings;
    if (channels > 16) {
        rings = PyMem_Malloc(sizeof(RingObject *) * (size_t)channels);
        if (rings == NULL) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
    }
    for (Py_ssize_t i = 0; i < channels; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (item == Py_None) {
            rings[i] = NULL;
        }
        else if (Py_IS_TYPE(item, &RingType)) {
            rings[i] = (RingObject *)Py_NewRef(item);
        }
        else {
            PyErr_Format(PyExc_TypeError, "deinterleave() rings[%zd] must be a Ring or None, "
                         "not '%.100s'", i, Py_TYPE(item)->tp_name);
            for (Py_ssize_t j = 0; j < i; j++)
                Py_XDECREF(rings[j]);
            if (rings != stack_rings)
                PyMem_Free(rings);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);

    PyObject *result = NULL;
    char *tmp = NULL;
    Py_buffer view;
    if (buffer_arg(argv[0], &view, 0, "deinterleave() frames") < 0)
        goto done_rings;
    size_t frame_bytes = (size_t)channels * (size_t)width;
    if ((size_t)view.len % frame_bytes) {
        PyErr_Format(PyExc_ValueError, "deinterleave() frames is %zd bytes, not a whole "
                     "number of %zd-channel frames of %zd-byte samples (%zu bytes each)",
                     view.len, channels, width, frame_bytes);
        goto done_view;
    }
    size_t nframes = (size_t)view.len / frame_bytes;
    const char *src = view.buf;
    for (Py_ssize_t i = 0; i < channels; i++) {
        if (rings[i] && overlaps(rings[i], src, view.len)) {
            /* frames is a view of one of the rings' own storage. */
            tmp = PyMem_Malloc(view.len ? (size_t)view.len : 1);
            if (tmp == NULL) {
                PyErr_NoMemory();
                goto done_view;
            }
            memcpy(tmp, src, (size_t)view.len);
            src = tmp;
            break;
        }
    }
    if ((size_t)view.len >= NOGIL_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < channels; i++)
            if (rings[i])
                ring_write_strided(rings[i], src + i * width, frame_bytes, (size_t)width, nframes);
        Py_END_ALLOW_THREADS
    }
    else {
        for (Py_ssize_t i = 0; i < channels; i++)
            if (rings[i])
                ring_write_strided(rings[i], src + i * width, frame_bytes, (size_t)width, nframes);
    }
    result = PyLong_FromSize_t(nframes);
    PyMem_Free(tmp);
done_view:
    PyBuffer_Release(&view);
done_rings:
    for (Py_ssize_t i = 0; i < channels; i++)
        Py_XDECREF(rings[i]);
    if (rings != stack_rings)
        PyMem_Free(rings);
    return result;
}

PyDoc_STRVAR(deinterleave_doc,
"deinterleave(frames, rings, sample_width=2) -> int\n--\n\n"
"Split interleaved frames (len(rings) channels of sample_width bytes) into the\n"
"rings: channel i is written to rings[i] (None skips it). Returns the frame\n"
"count. ValueError if frames is not a whole number of frames.");

static PyMethodDef module_methods[] = {
    {"deinterleave", (PyCFunction)(void (*)(void))deinterleave, METH_FASTCALL | METH_KEYWORDS,
     deinterleave_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cring_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "firmware.ring._cring",
    .m_doc = "C implementation of firmware.ring (see _pyring.py for the twin).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__cring(void)
{
    if (PyType_Ready(&RingType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&cring_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Ring", (PyObject *)&RingType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
