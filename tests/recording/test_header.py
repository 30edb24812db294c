"""A recording's header: the call's number as the call log keeps it (PCI DSS)."""

import pytest

from firmware.calls.call import Call
from firmware.clock import SimClock
from firmware.recording.recorder import sealed_header


def _header_number(number, country, direction="out"):
    call = Call(line=1, direction=direction, started_us=0)
    call.id, call.number = 7, number
    return sealed_header(call, "0" * 32, 0, None, SimClock(), country=country)["number"]


@pytest.mark.parametrize(
    "number, country",
    [
        ("14107945807302", "uk"),  # 141 and a UK mobile number
        ("*6712125550123", "us"),  # *67, 1 and a US number
    ],
)
def test_a_number_dialled_after_a_prefix_is_kept_whole(number, country):
    """The header ran the general card check on the number: a run of 13 from the prefix's
    second key passing the Luhn check was taken for a card ("1XXXXXXXXXXXXX"), and a call
    log rebuilt from the header (``linekeeper repair``) lost the number."""
    assert _header_number(number, country) == number


@pytest.mark.parametrize(
    "number, country",
    [
        ("14107945807302" + "X" * 16, "uk"),  # as the supervisor masks a card keyed on
        ("*6712125550123" + "X" * 16, "us"),
    ],
)
def test_a_card_keyed_on_after_a_prefixed_number_stays_masked(number, country):
    assert _header_number(number, country) == number


def test_a_card_after_a_prefixed_number_not_masked_yet_is_masked():
    kept = _header_number("14107945807302" + "4111111111111111", "uk")
    assert kept.startswith("141") and kept.endswith("X" * 16) and "4111" not in kept, kept


def test_a_number_the_network_gave_is_checked_as_ever():
    assert _header_number("14107945807302", "uk", direction="in") == "1" + "X" * 13
