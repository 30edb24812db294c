"""Fixtures for the ring tests: every test runs against both implementations.

``impl`` is parametrised over the C extension and the pure-Python twin. The
extension must be built (``make setup`` builds it): a missing one is an error
here, never a quietly smaller test run.

``scripts/sanitize`` sets ``LINEKEEPER_RING_BUILD_DIR`` to the directory of
its ASan/UBSan build; then the C extension must be importable and must come
from that directory, so a sanitizer run can never test the normal build.
"""

import os
import types

import pytest

import firmware.ring as ring_pkg

if not hasattr(ring_pkg, "CRing"):
    raise RuntimeError("the C ring buffer (firmware.ring._cring) is not built: run `make setup`")
IMPLS = {
    "python": types.SimpleNamespace(
        name="python", Ring=ring_pkg.PyRing, deinterleave=ring_pkg.py_deinterleave
    ),
    "c": types.SimpleNamespace(name="c", Ring=ring_pkg.CRing, deinterleave=ring_pkg.c_deinterleave),
}

BUILD_DIR = os.environ.get("LINEKEEPER_RING_BUILD_DIR")
if BUILD_DIR:
    from firmware.ring import _cring

    loaded = os.path.realpath(_cring.__file__)
    wanted = os.path.realpath(BUILD_DIR) + os.sep
    if not loaded.startswith(wanted):
        raise RuntimeError(
            "firmware.ring._cring was loaded from %s, not from "
            "LINEKEEPER_RING_BUILD_DIR=%s; put that directory first on "
            "PYTHONPATH and do not run from the source tree" % (loaded, BUILD_DIR)
        )

UNDER_SANITIZER = bool(BUILD_DIR)


@pytest.fixture(params=["c", "python"])
def impl(request):
    """The implementation under test: ``.name``, ``.Ring``, ``.deinterleave``."""
    if request.param not in IMPLS:
        pytest.skip("the C extension is not built (pip install -e . builds it)")
    return IMPLS[request.param]


@pytest.fixture
def c_impl():
    """The C implementation only (leak tests)."""
    if "c" not in IMPLS:
        pytest.skip("the C extension is not built (pip install -e . builds it)")
    return IMPLS["c"]
