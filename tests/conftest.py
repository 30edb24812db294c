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
