"""Fixtures for the recording tests: the speech set, data keys, a tiny disk, the files synced."""

import os
import subprocess

import pytest

from firmware.recording import quality
from firmware.storage import crypto


@pytest.fixture(scope="session")
def speech():
    """The speech test set (espeak-ng, several voices, -18 dBm0 over a -65 dBm0 floor)."""
    return quality.speech_set()


@pytest.fixture
def key():
    return crypto.new_data_key()


@pytest.fixture
def small_disk(tmp_path):
    """A directory on its own 256 KiB tmpfs, unmounted afterwards (needs root)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    # CI and `make test` run as root (the disk-full guarantees need a real full disk).
    assert os.geteuid() == 0, "the disk-full tests mount a tmpfs and need root"
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, "cannot mount a tmpfs: %s" % proc.stderr.strip()
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def fill_disk():
    """``fill(directory, leave_bytes)``: fill a file system until about that much is free."""

    def fill(directory, leave_bytes):
        st = os.statvfs(directory)
        free = st.f_bavail * st.f_frsize
        with open(os.path.join(directory, "filler"), "wb") as f:
            f.write(b"\0" * max(0, free - leave_bytes))

    return fill


@pytest.fixture
def syncs(monkeypatch):
    """The names of the files synced (fdatasync/fsync), in order."""
    seen = []
    real = {n: getattr(os, n) for n in ("fdatasync", "fsync")}

    def observed(name):
        def sync(fd):
            seen.append(os.path.basename(os.readlink("/proc/self/fd/%d" % fd)))
            return real[name](fd)

        return sync

    for name in real:
        monkeypatch.setattr(os, name, observed(name))
    return seen
