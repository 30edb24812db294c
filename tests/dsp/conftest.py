"""Fixtures for the DSP tests: every test makes its own signals with fixed seeds."""

import pytest

from telephony import generate as gen

from support.dsp import (
    run_dsp,
)


@pytest.fixture
def detect():
    """``detect(signal, **LineDsp kwargs) -> events``."""
    return lambda signal, **kwargs: run_dsp(signal, **kwargs)[0]


@pytest.fixture
def detect_stats():
    """``detect_stats(signal, **LineDsp kwargs) -> (events, stats)``."""
    return run_dsp


@pytest.fixture
def pad():
    """``pad(*signals)``: the signals joined, with 300 ms of silence before and after."""
    return lambda *signals: gen.concat(gen.silence(300), *signals, gen.silence(300))
