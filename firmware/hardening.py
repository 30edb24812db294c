"""Process hardening for a process that may hold key material: no core dumps, no ptrace.

An unlocked recording key or the device signing key lives in this process's
memory; a core dump would write it to the card in clear, and a non-dumpable
process cannot be read through ``/proc/PID/mem`` or ptrace by another
process of the same user.
"""

import ctypes
import ctypes.util
import logging
import resource

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3

log = logging.getLogger(__name__)


def no_core_dumps():
    """Set ``RLIMIT_CORE`` to 0 and clear the dumpable flag (Linux); returns True when both held."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        log.warning("no C library found: the process stays dumpable")
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_DUMPABLE) failed: errno %d", ctypes.get_errno())
        return False
    return libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
