"""Fixtures shared by the whole suite."""

import pathlib

import pytest

# Folders whose tests share something machine-wide - a fixed port (the S3 and
# SMTP servers), the system D-Bus, loop devices, a booted container - so that on
# parallel workers (`make test`, `make test-fast`) each runs on one worker, one
# test at a time. Every other test file is a group of its own: its module
# fixtures are built once, as with `--dist loadfile`.
SHARED_FOLDERS = ("archive", "mail", "system")
TESTS = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    """Put each test in its ``xdist_group`` (used with ``--dist loadgroup``)."""
    for item in items:
        relative = item.path.relative_to(TESTS)
        group = relative.parts[0] if relative.parts[0] in SHARED_FOLDERS else relative.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory):
    """One espeak-ng cache for the session, so each sentence is synthesised once."""
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(scope="session")
def synth(speech_cache):
    from board.sim.speech import SpeechSynth

    return SpeechSynth(cache_dir=str(speech_cache))


@pytest.fixture(autouse=True)
def _keep_the_umask():
    """Tests run `linekeeper` in-process, and its main() narrows the umask to 077 (the
    box's data is private): give each test back the umask it started with."""
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)
