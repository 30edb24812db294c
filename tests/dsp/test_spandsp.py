"""The cffi binding: lazy loading, clear error without the library, buffer conversion."""

import subprocess
import sys

import numpy as np
import pytest

from firmware.errors import HardwareError
from telephony import spandsp


def test_missing_library_is_a_hardware_error_that_says_what_to_do():
    with pytest.raises(HardwareError, match="scripts/install-deps") as info:
        spandsp.load("libspandsp-does-not-exist.so.9")
    assert isinstance(info.value, OSError)
    assert "libspandsp2" in str(info.value)


def test_load_is_cached():
    assert spandsp.load() is spandsp.load()


def test_importing_the_dsp_package_does_not_open_the_library():
    code = (
        "import sys, firmware.dsp, firmware.dsp.detector, telephony.generate, firmware.dsp.analyze;"
        "print(any('spandsp' in open('/proc/self/maps').read() for _ in [0]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_as_int16():
    assert spandsp.as_int16(b"\x01\x00\xff\xff").tolist() == [1, -1]
    assert spandsp.as_int16(np.array([70000, -70000])).tolist() == [32767, -32768]
    a = np.arange(4, dtype=np.int16)
    assert spandsp.as_int16(a) is a
    with pytest.raises(ValueError, match="even"):
        spandsp.as_int16(b"\x00")
    with pytest.raises(ValueError, match="16-bit integers"):
        spandsp.as_int16(np.zeros(4))


def test_states_are_freed_by_the_garbage_collector():
    sd = spandsp.load()
    state = sd.owned(sd.lib.dtmf_rx_init(sd.ffi.NULL, sd.ffi.NULL, sd.ffi.NULL), "dtmf_rx_free")
    del state  # freed by dtmf_rx_free; a double free or leak would show under ASan/valgrind
    with pytest.raises(MemoryError):
        sd.owned(sd.ffi.NULL, "dtmf_rx_free")
