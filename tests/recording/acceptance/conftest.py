"""Instruments for issue 4's acceptance tests (the recording pipeline end to end).

``lab`` gives each test a small kit: build scenarios, initialise a data dir,
run the simulated box on it, read back what it recorded, rebuild the audio
that was on the line from the scenario (:meth:`Lab.source`), and run the
``linekeeper`` command in-process (:meth:`Lab.cli`, same code and exit status
as the installed command, minus the interpreter start-up)."""

import os

import pytest

from support.recording_lab import (
    Lab,
)


@pytest.fixture
def lab(tmp_path, synth, speech_cache):
    return Lab(tmp_path, synth, speech_cache)


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(name, size)``: a directory on a tmpfs of its own; unmounted afterwards (root)."""
    import subprocess

    mounted = []

    def mount(name, size):
        path = tmp_path / name
        path.mkdir(exist_ok=True)
        assert os.geteuid() == 0, "the disk-full tests mount a tmpfs and need root"
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, "cannot mount a tmpfs: %s" % proc.stderr.strip()
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        if subprocess.run(["umount", str(path)]).returncode != 0:
            # Still busy (a failed test left a file open): detach it, never leave it mounted.
            subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture(scope="module")
def module_lab(tmp_path_factory, synth, speech_cache):
    """A :class:`Lab` shared by the tests of one module (for one expensive run)."""
    return Lab(tmp_path_factory.mktemp("lab"), synth, speech_cache)
