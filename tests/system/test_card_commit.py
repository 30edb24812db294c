"""scripts/system/card-commit: the data's ext4 commits its journal every 60 s (docs/journal.md)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "system" / "card-commit"


def options(mountpoint):
    out = subprocess.run(
        ["findmnt", "--noheadings", "--output", "OPTIONS", "--mountpoint", str(mountpoint)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().split(",")


def run(directory):
    return subprocess.run([str(SCRIPT), str(directory)], capture_output=True, text=True)


@pytest.fixture
def mounted(tmp_path):
    """``mount(kind)``: a small ext4 (on a loop device) or tmpfs at ``tmp_path/disk`` (root)."""
    assert os.geteuid() == 0, "this test mounts file systems and needs root"
    path = tmp_path / "disk"
    path.mkdir()
    undo = []

    def mount(kind):
        if kind == "ext4":
            assert shutil.which("mkfs.ext4"), "needs mkfs.ext4 (Debian e2fsprogs)"
            image = tmp_path / "disk.img"
            with open(image, "wb") as f:
                f.truncate(16 << 20)
            subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
            subprocess.run(["mount", "-o", "loop,noatime", str(image), str(path)], check=True)
        else:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], check=True)
        undo.append(path)
        return path

    yield mount
    for p in undo:
        subprocess.run(["umount", str(p)], check=True)  # a loop device goes with it


def test_remounts_the_ext4_holding_the_data_once_keeping_its_other_options(mounted):
    disk = mounted("ext4")
    data = disk / "linekeeper" / "recordings"
    data.mkdir(parents=True)
    assert not [o for o in options(disk) if o.startswith("commit=")]
    first = run(data)
    assert first.returncode == 0, first.stderr
    assert "commit=60" in options(disk) and "noatime" in options(disk)
    assert "now commits its journal every 60 s" in first.stdout
    again = run(data)
    assert again.returncode == 0 and "every 60 s already" in again.stdout, again.stdout + again.stderr


def test_leaves_other_file_systems_alone(mounted):
    disk = mounted("tmpfs")
    before = options(disk)
    result = run(disk)
    assert result.returncode == 0 and "not ext4: left as it is" in result.stdout
    assert options(disk) == before


def test_a_missing_directory_is_a_clear_error(tmp_path):
    result = run(tmp_path / "nowhere")
    assert result.returncode == 1
    assert "no file system found for %s" % (tmp_path / "nowhere") in result.stderr
