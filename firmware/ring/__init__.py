"""Per-line audio ring buffers: lock-free, single producer, single consumer.

:class:`Ring` is a byte ring the ALSA capture thread writes without ever
blocking (when full, the oldest unread bytes are overwritten and counted);
:func:`deinterleave` splits an N-channel S16_LE period into one ring per
line. The C extension (``_cring``) is used when it is built, else the
pure-Python twin (``_pyring``) with exactly the same API and results;
:data:`IMPLEMENTATION` says which (``"c"`` or ``"python"``).

Both implementations stay importable for tests and benchmarks: ``PyRing`` and
``py_deinterleave`` always, ``CRing`` and ``c_deinterleave`` when built.

Positions (``written``, ``read_pos``) are byte counts since the ring was made;
at 8 kHz S16 mono one millisecond is 16 bytes.
"""

from ._pyring import Ring as PyRing
from ._pyring import deinterleave as py_deinterleave

__all__ = ["Ring", "deinterleave", "IMPLEMENTATION", "PyRing", "py_deinterleave"]

try:
    from ._cring import Ring as CRing
    from ._cring import deinterleave as c_deinterleave
except ModuleNotFoundError as exc:
    # Not built (no compiler): the twin. A built extension that fails to load
    # raises ImportError of another kind and is not hidden here.
    if exc.name != __name__ + "._cring":
        raise
    Ring, deinterleave, IMPLEMENTATION = PyRing, py_deinterleave, "python"
else:
    Ring, deinterleave, IMPLEMENTATION = CRing, c_deinterleave, "c"
    __all__ += ["CRing", "c_deinterleave"]
