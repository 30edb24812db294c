"""Instruments for measuring recording quality: the speech test set and PESQ.

Used by the tests and by ``bench/codec.py`` (like gpiozero's mock pins, they
ship with the product because they are how its promises are checked).

The speech test set is espeak-ng speech in several voices, scaled to an
active level of -18 dBm0 with a -65 dBm0 white-noise floor under it, the way a
quiet analogue line sounds.
"""

import numpy as np

from firmware.errors import LinekeeperError
from telephony.levels import DBM0_RMS, set_active_level

RATE = 8000
SPEECH_LEVEL_DBM0 = -18.0
NOISE_FLOOR_DBM0 = -65.0

SENTENCES = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us. A large size in stockings is hard to sell.",
)
VOICES = ("en-gb", "en-us+f3", "en-gb-scotland+m3", "en-us+f5", "en-gb-x-rp+m7")


class QualityToolError(LinekeeperError, RuntimeError):
    """A measuring tool (espeak-ng, the pesq package) is missing."""


def speech_set(synth=None, voices=VOICES, sentences=SENTENCES, seed=0):
    """The speech test set: ``[(name, int16 samples at 8 kHz), ...]``, one item per voice.

    :param synth: object with ``say(text, voice=...)`` returning 8 kHz int16
        (default: :class:`board.sim.speech.SpeechSynth`, which runs espeak-ng)
    """
    if synth is None:
        from board.sim.speech import SpeechSynth

        synth = SpeechSynth()
    rng = np.random.default_rng(seed)
    noise_rms = DBM0_RMS * 10 ** (NOISE_FLOOR_DBM0 / 20)
    items = []
    for i, voice in enumerate(voices):
        speech = synth.say(sentences[i % len(sentences)], voice=voice)
        gap = np.zeros(RATE // 2, np.int16)  # a pause either side, as on a real line
        x = set_active_level(np.concatenate((gap, speech, gap)), SPEECH_LEVEL_DBM0)
        x = x.astype(np.float64) + rng.normal(0.0, noise_rms, len(x))
        items.append((voice, np.clip(np.rint(x), -32768, 32767).astype(np.int16)))
    return items


def pesq_nb(reference, degraded, rate=RATE):
    """ITU-T P.862 narrow-band MOS-LQO of ``degraded`` against ``reference``.

    :raises QualityToolError: the ``pesq`` package is not installed
    """
    try:
        from pesq import pesq
    except ImportError as exc:
        raise QualityToolError("PESQ needs the pesq package: pip install pesq") from exc
    n = min(len(reference), len(degraded))
    return float(
        pesq(
            rate,
            np.asarray(reference[:n], np.float64) / 32768.0,
            np.asarray(degraded[:n], np.float64) / 32768.0,
            "nb",
        )
    )


def hours_per_gb(bytes_per_hour):
    """Hours of recording that fit in 10**9 bytes."""
    return 1e9 / bytes_per_hour
