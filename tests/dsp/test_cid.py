"""Caller-ID message parsing: strict, so that noise can never make a wrong number."""

import pytest

from firmware.dsp import cid
from telephony.generate import cid_message


def test_mdmf_fields():
    info = cid.parse_fsk(cid_message("v23", number="01632960123", name="ACME LTD", datetime="03020900"))
    assert info == cid.CidInfo(number="01632960123", name="ACME LTD", datetime="03020900")


def test_mdmf_absence_private_and_unavailable():
    assert cid.parse_fsk(cid_message("v23", absence="private")).absence == "private"
    assert cid.parse_fsk(cid_message("v23", absence="unavailable")).absence == "unavailable"


def test_sdmf_and_message_waiting():
    assert cid.parse_fsk(
        cid_message("bell202", number="6095551212", datetime="10011750", sdmf=True)
    ) == cid.CidInfo(number="6095551212", datetime="10011750")
    assert cid.parse_fsk(cid_message("bell202", message_waiting=True, sdmf=True)).message_waiting is True
    assert cid.parse_fsk(cid_message("v23", message_waiting=False)).message_waiting is False


def test_unknown_parameters_are_skipped():
    msg = bytes([0x80, 9, 0x11, 1, 0x81, 0x02, 4]) + b"1234"
    assert cid.parse_fsk(msg).number == "1234"


@pytest.mark.parametrize(
    "message, why",
    [
        (bytes([0x80, 4, 0x02, 2]) + b"12" + b"x", "length"),
        (bytes([0x80, 4, 0x02, 3]) + b"12", "overruns"),
        (bytes([0x80, 6, 0x02, 1]) + b"1" + bytes([0x02, 1]) + b"2", "repeated"),
        (bytes([0x80, 3, 0x02, 1]) + b"A", "not a phone number"),
        (bytes([0x80, 10, 0x01, 8]) + b"12312460", "out of range"),
        (bytes([0x80, 10, 0x01, 8]) + b"1231x200", "MMDDHHMM"),
        (bytes([0x80, 4, 0x07, 2]) + b"A\x01", "printable"),
        (bytes([0x80, 3, 0x04, 1]) + b"X", "absence"),
        (bytes([0x80, 6, 0x02, 1]) + b"1" + bytes([0x04, 1]) + b"P", "both"),
        (bytes([0x80, 3, 0x11, 1, 0x81]), "neither"),
        (bytes([0x82, 3, 0x0B, 1, 0x42]), "indicator"),
        (bytes([0x06, 3]) + b"\x42\x6f\x42", "message-waiting"),
        (bytes([0x04, 4]) + b"1231", "too short"),
        (bytes([0x33, 1, 0]), "unknown message type"),
    ],
)
def test_impossible_structures_rejected(message, why):
    with pytest.raises(cid.CidStructureError, match=why):
        cid.parse_fsk(message)


@pytest.mark.parametrize(
    "digits, number, absence",
    [
        ("A01632960123C", "01632960123", None),
        ("A01632960123#", "01632960123", None),
        ("D01632960123C", "01632960123", None),
        ("01632960123#", "01632960123", None),
        ("B00C", None, "unavailable"),
        ("B10C", None, "private"),
        ("D01#", None, "private"),
        ("D1#", None, "private"),
        ("01#", None, "private"),
        ("00#", None, "unavailable"),
        ("A12345678D87654321C", "12345678", None),  # D = redirecting number
        ("A12345678B10C", "12345678", "private"),
    ],
)
def test_dtmf_formats(digits, number, absence):
    info = cid.parse_dtmf(digits)
    assert (info.number, info.absence) == (number, absence)


@pytest.mark.parametrize(
    "digits", ["A123", "AC", "A12C", "A1*2C", "A12A34C", "12A345C", "C", "#", "A" + "1" * 21 + "C"]
)
def test_bad_dtmf_messages_rejected(digits):
    with pytest.raises(cid.CidStructureError):
        cid.parse_dtmf(digits)


def test_structure_error_is_a_value_error_and_a_linekeeper_error():
    from firmware.errors import LinekeeperError

    assert issubclass(cid.CidStructureError, ValueError)
    assert issubclass(cid.CidStructureError, LinekeeperError)
