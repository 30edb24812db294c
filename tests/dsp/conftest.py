"""Fixtures for the DSP tests: every test makes its own signals with fixed seeds."""

import pytest

from telephony import generate as gen
from firmware.dsp.detector import LineDsp


def run_dsp(signal, block=1600, t0_us=0, **kwargs):
    """Feed ``signal`` to a fresh LineDsp in ``block``-sample pieces; return its events and stats."""
    events = []
    dsp = LineDsp(on_event=events.append, **kwargs)
    for start in range(0, len(signal), block):
        dsp.feed(signal[start : start + block], t0_us + start * 125)
    dsp.flush()
    return events, dsp.stats


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
