"""cffi binding to libspandsp, in ABI mode.

Why ABI mode: the library is opened with ``ffi.dlopen("libspandsp.so.2")`` and
the few declarations we need are written out below, so nothing is compiled at
install time, the Debian runtime package ``libspandsp2`` is the only
dependency (no ``-dev`` headers, no compiler on the box) and the same wheel
runs on x86-64 and on the Pi.  Every state object is created by spandsp itself
(``*_init(NULL, ...)``), so we never depend on the private struct layouts,
which change between spandsp releases; only the public function signatures of
spandsp 0.0.6 are declared.

Nothing happens at import time: :func:`load` opens the library on first use
and caches it for the process (``dlopen`` is process-wide anyway).  A missing
library raises :class:`~telephony.errors.HardwareError` telling the user to run
``scripts/install-deps``.

Audio crosses the boundary as numpy ``int16`` buffers through
``ffi.from_buffer`` (no copies, no per-sample Python); see :func:`as_int16`.
"""

import functools

import numpy as np

from telephony.errors import HardwareError

LIBRARY = "libspandsp.so.2"


# Declarations from spandsp 0.0.6's public headers (dtmf.h, fsk.h, async.h,
# adsi.h, super_tone_rx.h, tone_generate.h), only what we call.  States are opaque.
CDEF = """
typedef struct dtmf_rx_state_s dtmf_rx_state_t;
typedef struct dtmf_tx_state_s dtmf_tx_state_t;
typedef struct fsk_rx_state_s fsk_rx_state_t;
typedef struct adsi_tx_state_s adsi_tx_state_t;
typedef struct super_tone_rx_state_s super_tone_rx_state_t;
typedef struct super_tone_rx_descriptor_s super_tone_rx_descriptor_t;
typedef struct tone_gen_state_s tone_gen_state_t;
typedef struct tone_gen_descriptor_s tone_gen_descriptor_t;

typedef struct {
    const char *name;
    int freq_zero;
    int freq_one;
    int tx_level;
    int min_level;
    int baud_rate;
} fsk_spec_t;

typedef void (*digits_rx_callback_t)(void *user_data, const char *digits, int len);
typedef void (*tone_report_func_t)(void *user_data, int code, int level, int delay);
typedef void (*tone_segment_func_t)(void *data, int f1, int f2, int duration);
typedef void (*put_bit_func_t)(void *user_data, int bit);
typedef int (*get_bit_func_t)(void *user_data);
typedef void (*put_byte_func_t)(void *user_data, int byte);
typedef struct async_rx_state_s async_rx_state_t;

/* dtmf.h */
dtmf_rx_state_t *dtmf_rx_init(dtmf_rx_state_t *s, digits_rx_callback_t callback, void *user_data);
void dtmf_rx_set_realtime_callback(dtmf_rx_state_t *s, tone_report_func_t callback, void *user_data);
void dtmf_rx_parms(dtmf_rx_state_t *s, int filter_dialtone, int twist, int reverse_twist, int threshold);
int dtmf_rx(dtmf_rx_state_t *s, const int16_t amp[], int samples);
int dtmf_rx_free(dtmf_rx_state_t *s);
dtmf_tx_state_t *dtmf_tx_init(dtmf_tx_state_t *s);
int dtmf_tx_put(dtmf_tx_state_t *s, const char *digits, int len);
void dtmf_tx_set_level(dtmf_tx_state_t *s, int level, int twist);
void dtmf_tx_set_timing(dtmf_tx_state_t *s, int on_time, int off_time);
int dtmf_tx(dtmf_tx_state_t *s, int16_t amp[], int max_samples);
int dtmf_tx_free(dtmf_tx_state_t *s);

/* fsk.h */
extern const fsk_spec_t preset_fsk_specs[];
fsk_rx_state_t *fsk_rx_init(fsk_rx_state_t *s, const fsk_spec_t *spec, int framing_mode,
                            put_bit_func_t put_bit, void *user_data);
void fsk_rx_signal_cutoff(fsk_rx_state_t *s, float cutoff);
int fsk_rx(fsk_rx_state_t *s, const int16_t *amp, int len);
int fsk_rx_free(fsk_rx_state_t *s);
typedef struct fsk_tx_state_s fsk_tx_state_t;
fsk_tx_state_t *fsk_tx_init(fsk_tx_state_t *s, const fsk_spec_t *spec, get_bit_func_t get_bit,
                            void *user_data);
int fsk_tx(fsk_tx_state_t *s, int16_t amp[], int len);
int fsk_tx_free(fsk_tx_state_t *s);

/* async.h */
async_rx_state_t *async_rx_init(async_rx_state_t *s, int data_bits, int parity, int stop_bits,
                                int use_v14, put_byte_func_t put_byte, void *user_data);
void async_rx_put_bit(void *user_data, int bit);
int async_rx_free(async_rx_state_t *s);

/* adsi.h */
adsi_tx_state_t *adsi_tx_init(adsi_tx_state_t *s, int standard);
void adsi_tx_set_preamble(adsi_tx_state_t *s, int preamble_len, int preamble_ones_len,
                          int postamble_ones_len, int stop_bits);
int adsi_tx_put_message(adsi_tx_state_t *s, const uint8_t *msg, int len);
int adsi_tx(adsi_tx_state_t *s, int16_t amp[], int max_len);
int adsi_tx_free(adsi_tx_state_t *s);

/* super_tone_rx.h */
super_tone_rx_descriptor_t *super_tone_rx_make_descriptor(super_tone_rx_descriptor_t *desc);
int super_tone_rx_free_descriptor(super_tone_rx_descriptor_t *desc);
int super_tone_rx_add_tone(super_tone_rx_descriptor_t *desc);
int super_tone_rx_add_element(super_tone_rx_descriptor_t *desc, int tone, int f1, int f2, int min, int max);
super_tone_rx_state_t *super_tone_rx_init(super_tone_rx_state_t *s, super_tone_rx_descriptor_t *desc,
                                          tone_report_func_t callback, void *user_data);
void super_tone_rx_segment_callback(super_tone_rx_state_t *s, tone_segment_func_t callback);
int super_tone_rx(super_tone_rx_state_t *s, const int16_t amp[], int samples);
int super_tone_rx_free(super_tone_rx_state_t *s);

/* tone_generate.h */
tone_gen_descriptor_t *tone_gen_descriptor_init(tone_gen_descriptor_t *s, int f1, int l1, int f2, int l2,
                                                int d1, int d2, int d3, int d4, int repeat);
void tone_gen_descriptor_free(tone_gen_descriptor_t *s);
tone_gen_state_t *tone_gen_init(tone_gen_state_t *s, tone_gen_descriptor_t *t);
int tone_gen(tone_gen_state_t *s, int16_t amp[], int max_samples);
int tone_gen_free(tone_gen_state_t *s);
"""

# Constants from the same headers.
ADSI_STANDARD_CLASS = 1
ADSI_STANDARD_CLIP = 2
FSK_V23CH1 = 2
FSK_BELL202 = 6
FSK_FRAME_MODE_ASYNC = 0
SIG_STATUS_CARRIER_DOWN = -1
SIG_STATUS_CARRIER_UP = -2


class Spandsp:
    """The opened library: ``ffi`` (cffi FFI) and ``lib`` (the dlopen handle).

    Use :func:`load` rather than building one directly.
    """

    def __init__(self, ffi, lib, path):
        self.ffi = ffi
        self.lib = lib
        self.path = path

    def owned(self, pointer, free_name):
        """Tie a spandsp-allocated ``pointer`` to Python's garbage collector.

        ``free_name`` is the spandsp function that frees it (``"dtmf_rx_free"``).
        Raises :class:`MemoryError` if ``pointer`` is NULL (spandsp's
        allocation failed).
        """
        if pointer == self.ffi.NULL:
            raise MemoryError("spandsp could not allocate a state for %s" % free_name)
        return self.ffi.gc(pointer, getattr(self.lib, free_name))

    def int16_ptr(self, samples):
        """A ``const int16_t *`` view of a C-contiguous int16 numpy array."""
        return self.ffi.cast("int16_t *", self.ffi.from_buffer(samples))


@functools.cache
def load(path=LIBRARY):
    """Open libspandsp (once per process and ``path``) and return a :class:`Spandsp`.

    Raises :class:`~telephony.errors.HardwareError` if the library cannot be
    opened: install it with ``scripts/install-deps`` (Debian package
    ``libspandsp2``).
    """
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    try:
        lib = ffi.dlopen(path)
    except OSError as exc:
        raise HardwareError(
            "cannot open the spandsp library %s (%s); it provides the DTMF, caller-ID and "
            "tone detectors: run scripts/install-deps to install the Debian package libspandsp2" % (path, exc)
        ) from exc
    return Spandsp(ffi, lib, path)


def as_int16(samples):
    """Return ``samples`` as a C-contiguous numpy int16 array without copying if possible.

    Accepts a numpy array of int16 (or any integer type whose values fit),
    ``bytes``/``bytearray``/``memoryview`` of little-endian signed 16-bit
    samples, or a sequence of ints.  Raises :class:`ValueError` for an odd
    number of bytes or a float array.
    """
    if isinstance(samples, (bytes, bytearray, memoryview)):
        raw = memoryview(samples).cast("B")
        if len(raw) % 2:
            raise ValueError("16-bit audio must have an even number of bytes, got %d" % len(raw))
        return np.frombuffer(raw, dtype="<i2").astype(np.int16, copy=False)
    array = np.asarray(samples)
    if array.dtype == np.int16:
        return np.ascontiguousarray(array)
    if array.size == 0:
        return np.zeros(0, dtype=np.int16)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError("audio samples must be 16-bit integers, got %s" % array.dtype)
    return np.ascontiguousarray(np.clip(array, -32768, 32767).astype(np.int16))
