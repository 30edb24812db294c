"""Fixtures shared by the whole suite."""

import pytest


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
