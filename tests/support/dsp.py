"""Helpers of the DSP tests: run a detector over a signal."""

from firmware.dsp.detector import LineDsp


def run_dsp(signal, block=1600, t0_us=0, **kwargs):
    """Feed ``signal`` to a fresh LineDsp in ``block``-sample pieces; return its events and stats."""
    events = []
    dsp = LineDsp(on_event=events.append, **kwargs)
    for start in range(0, len(signal), block):
        dsp.feed(signal[start : start + block], t0_us + start * 125)
    dsp.flush()
    return events, dsp.stats
