"""Card digits dialled by pulse (loop-disconnect) are cut out of the recording, as keyed
ones are.

A card number dialled straight on after the number, before the box has noticed the
answer, is taken for more of the number; masking (``mask_dtmf``, the default) cuts the
digits past the number out of the recording (docs/pci.md). A pulsed digit has no tone,
but its clicks (each break and make of the loop) are in the audio, and the review found
the pulse-dialled digits of a card left in the recording: only DTMF digits were cut.

The supervisor knows a pulsed digit only ``interdigit_ms`` after its last pulse, too
late for the recorder (which keeps audio back 360 ms) to cut a digit of up to a second;
so each pulse is cut as it is seen. The simulated line plays no clicks, only its noise
floor: with the ``pcm`` profile a span cut out of the recording is digital silence,
exact zeros, which the noise floor never is. Every card digit's span, from its first
break to its last make, is zeros; the number's own digits are not.
"""

import numpy as np
import pytest

from board.sim.timeline import INTERDIGIT_US, PULSE_BREAK_US, PULSE_MAKE_US

DIALLED = "999"  # an emergency number: whole at three digits
CARD = "4111111111111111"  # a Visa test number
DELAY_S = 1.5  # from off-hook to the first digit


def pulse_spans(first_us, digits):
    """``(first break, last make)`` of each pulsed digit, as the simulator dials them
    from ``first_us`` (board/sim/timeline.py)."""
    t, spans = first_us, []
    for digit in digits:
        pulses = 10 if digit == "0" else int(digit)
        spans.append((t, t + (pulses - 1) * (PULSE_BREAK_US + PULSE_MAKE_US) + PULSE_BREAK_US))
        t += pulses * (PULSE_BREAK_US + PULSE_MAKE_US) + INTERDIGIT_US
    return spans


@pytest.fixture(scope="module")
def run(module_lab):
    lab = module_lab
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": DIALLED + CARD, "mode": "pulse", "delay": DELAY_S},
        "talk": 3.0,
    }
    config = dict(lab.policy(rules={"default_mode": "always"}), audio_profile="pcm")
    data_dir, (logged,) = lab.sim(lab.scenario([call], lines=1, config=config))
    samples, t0 = lab.decode(data_dir, logged["id"])
    first_us = lab.wall_us(logged["started_at"]) + int(DELAY_S * 1e6)
    return lab, logged, samples, t0, pulse_spans(first_us, DIALLED + CARD)


def test_the_card_is_masked_in_the_call_log(run):
    _lab, logged, _samples, _t0, _spans = run
    assert logged["number"] == DIALLED + "X" * (len(logged["number"]) - len(DIALLED)), logged["number"]


def test_every_pulsed_card_digit_is_cut_out_of_the_recording(run):
    lab, _logged, samples, t0, spans = run
    for k, (start_us, end_us) in enumerate(spans[len(DIALLED) :]):
        span = lab.at(samples, t0, start_us, (end_us - start_us) / 1e6)
        assert len(span) and not np.any(span), "card digit %d is in the recording" % k


def test_the_numbers_own_pulsed_digits_are_not_but_the_first(run):
    """The first digit is known only at its last pulse, and until then it may be 2-6,
    the first digit of a card dialled with no number before it: its clicks are cut
    whatever it turns out to be (the call log keeps it). After that 9 the second digit's
    first six pulses are cut too (it may be 1-6, a card's first after a switchboard's 9:
    docs/pci.md); its 7th to 9th are kept, so it is heard."""
    lab, _logged, samples, t0, spans = run
    (first_us, first_end_us), own = spans[0], spans[1 : len(DIALLED)]
    assert not np.any(lab.at(samples, t0, first_us, (first_end_us - first_us) / 1e6))
    for start_us, end_us in own:
        assert np.any(lab.at(samples, t0, start_us, (end_us - start_us) / 1e6))
