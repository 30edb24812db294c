"""The Board interface: what the firmware needs from the hardware.

A board gives the firmware, for each analogue line (numbered from 1):

Inputs (GPIO, read through gpiozero pins; levels are *logical*: ``True`` means
the condition holds, whatever the electrical polarity the HAT file declares):

``hook``      the box's own phone port draws loop current: the handset plugged
              into the box is off-hook. Loop-disconnect (pulse) dialling shows
              as breaks of about 66 ms with makes of about 33 ms. Like any
              mechanical contact it chatters for a few ms at each change.
``ring``      ring voltage is present. The detector conducts on one half-wave,
              so during a ring burst the input pulses at the ring frequency
              (25 Hz in the UK, 20 Hz in the US: about 50 % duty) and stays
              inactive between bursts.
``polarity``  the line's DC polarity is reversed from its normal idle polarity
              (UK caller ID starts with a reversal on the idle line; some
              exchanges reverse on answer).
``in_use``    (optional) line voltage has fallen to the off-hook level:
              someone on the line is off-hook — the box's handset or a
              parallel extension. ``in_use`` without ``hook`` is a parallel
              pick-up.
``power``     (optional) line voltage is present at all. Lost for more than a
              few seconds it is a line fault; a short break (≥ 100 ms) while
              a call is up is the network clearing the call (a "K-break").
``record_button`` (optional) a push button for the line, pressed = active:
              asks an on-demand line to record the call in progress.
``pause_button``  (optional) a push button for the line, pressed = active:
              pauses the recording of the call (PCI DSS), pressed again
              resumes it. Buttons chatter like any contact.

Output: ``led`` (optional) per line.

Audio: one capture stream of interleaved S16_LE frames at ``rate`` Hz with
one channel per line (the HAT file maps lines to channels), delivered in
periods (typically 20 ms) to the ``on_audio`` callback, and a playback path
into each line for announcements and warning tones.

An implementation provides:

``lines``                  number of lines
``rate``                   capture sample rate in Hz
``channels``               capture channels; ``channel_of(line)`` maps a line to one
``start(on_edge, on_audio)`` open the hardware and start delivering:
    ``on_edge(line, signal, active, t_us)`` for every input change (raw, not
    debounced: debouncing is the firmware's job), and
    ``on_audio(frames, t_us)`` for every capture period, ``frames`` a
    bytes-like of interleaved frames and ``t_us`` the clock time of its first
    frame. Raises :class:`~telephony.errors.HardwareError` if the hardware
    cannot be opened.
``stop()``                 stop delivering and release the hardware (idempotent)
``read(line, signal)``     the current logical level of an input
``set_led(line, on)``      drive the line's LED if the HAT has one
``play(line, samples)``    queue S16_LE mono samples at ``rate`` into the line
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from board.signals import (  # noqa: F401  (their home; here for the boards)
    BUTTON_SIGNALS,
    INPUT_SIGNALS,
    LINE_SIGNALS,
    OUTPUT_SIGNALS,
    REQUIRED_SIGNALS,
)

#: ``on_edge(line, signal, active, t_us)``: an input changed (raw, not debounced).
EdgeCallback = Callable[[int, str, bool, int], None]
#: ``on_audio(frames, t_us)``: one capture period of interleaved S16_LE frames.
AudioCallback = Callable[[Any, int], None]
#: Audio as int16 samples or S16_LE bytes.
Samples = npt.NDArray[np.int16] | bytes | bytearray | memoryview


def pcm16(samples: Samples) -> npt.NDArray[np.int16]:
    """``samples`` (an int16 array or S16_LE bytes) as an int16 numpy array."""
    if isinstance(samples, np.ndarray):
        if samples.dtype != np.int16:
            raise TypeError("audio samples must be int16, not %s" % samples.dtype)
        return samples
    return np.frombuffer(samples, dtype=np.int16)


class Board(ABC):
    """Abstract base class of every board (see the module docstring)."""

    lines: int = 0
    rate: int = 8000
    channels: int = 0

    @abstractmethod
    def start(self, on_edge: EdgeCallback, on_audio: AudioCallback) -> None:
        """Open the hardware and deliver edges and audio until :meth:`stop`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering and release the hardware; safe to call twice."""

    @abstractmethod
    def read(self, line: int, signal: str) -> bool:
        """Current logical level of input ``signal`` on ``line``."""

    def channel_of(self, line: int) -> int:
        """Capture channel (0-based) carrying ``line``."""
        return line - 1

    def set_led(self, line: int, on: bool) -> None:  # noqa: B027 (a default, not abstract)
        """Drive the line's LED; boards without LEDs ignore it."""

    @abstractmethod
    def play(self, line: int, samples: Samples) -> None:
        """Queue mono S16_LE ``samples`` at :attr:`rate` Hz into ``line``."""

    def stop_playing(self, line: int) -> None:  # noqa: B027 (a default, not abstract)
        """Drop what :meth:`play` queued for ``line`` and has not played yet: its call
        ended during its notice, which must not play on into the next call on the line.
        A board that plays nothing later than asked need not override it."""

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
