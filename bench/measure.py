"""What the bench sections measure a run by: this process's CPU time and the bytes it
made the kernel write to the storage device. Not a section of its own."""

import resource


def cpu_s():
    """User + system CPU seconds this process has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def device_write_bytes():
    """Bytes this process has caused to be written to the storage device so far
    (``write_bytes`` of /proc/self/io), or None where the kernel does not say."""
    try:
        with open("/proc/self/io") as f:
            return int(next(line for line in f if line.startswith("write_bytes:")).split()[1])
    except (OSError, StopIteration):
        return None
