"""What the bench sections measure a run by: this process's CPU time and the bytes it
made the kernel write to the storage device. Not a section of its own."""

import os
import resource
import tempfile


def cpu_s():
    """User + system CPU seconds this process has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def small_write_counts(directory):
    """What ``write_bytes`` counts for one 100-byte write and sync into a file on the
    file system of ``directory`` (None where the kernel does not say).

    4096 is what the measures that read it assume (a page). A kernel that caches the
    file in large folios counts the whole folio, 512 KiB to 1 MiB on one of 2026 (6.18.44),
    and then every figure read from ``write_bytes`` says more about the kernel than
    about the box; ``results.json`` keeps this beside them (``machine``)."""
    fd, path = tempfile.mkstemp(prefix="lk-bench-", dir=directory)
    try:
        os.write(fd, b"\0" * (1 << 20))
        os.fsync(fd)
        before = device_write_bytes()
        os.pwrite(fd, b"x" * 100, 5000)
        os.fsync(fd)
        after = device_write_bytes()
    finally:
        os.close(fd)
        os.unlink(path)
    return None if before is None or after is None else after - before


def device_write_bytes():
    """Bytes this process has caused to be written to the storage device so far
    (``write_bytes`` of /proc/self/io), or None where the kernel does not say."""
    try:
        with open("/proc/self/io") as f:
            return int(next(line for line in f if line.startswith("write_bytes:")).split()[1])
    except (OSError, StopIteration):
        return None
