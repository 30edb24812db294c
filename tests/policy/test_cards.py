"""Card-number scrubbing (issue 20): what looks like a PAN never reaches storage."""

import pytest

from firmware.policy import cards
from firmware.storage.audit import AuditLog


@pytest.mark.parametrize(
    "pan",
    [
        "4111111111111111",
        "5500005555555559",
        "378282246310005",
        "6011111111111117",
        "4222222222222",
        "6304000000000000000",
    ],
)
def test_known_test_cards_pass_luhn_and_are_masked(pan):
    assert cards.luhn_ok(pan)
    assert cards.scrub(pan) == "X" * len(pan)


def test_a_card_keyed_after_a_dialled_number_is_masked_the_number_kept():
    assert cards.scrub("01632960302*15500005555555559") == "01632960302*1" + "X" * 16


@pytest.mark.parametrize(
    "text",
    [
        "01632960302",
        "00441632960302",
        "+442079460000",
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits: too short
        "recording 4f3c4111111111111111a9",  # inside a hex id
    ],
)
def test_what_is_not_a_card_is_left_alone(text):
    assert cards.scrub(text) == text


@pytest.mark.parametrize(
    "written,scrubbed",
    [
        ("card 4111 1111 1111 1111 ok", "card XXXX XXXX XXXX XXXX ok"),
        ("amex 3782 822463 10005.", "amex XXXX XXXXXX XXXXX."),
    ],
)
def test_a_card_written_in_groups_is_masked(written, scrubbed):
    assert cards.scrub(written) == scrubbed
    assert cards.scrub_typed(written) == scrubbed and cards.has_typed_card(written)


@pytest.mark.parametrize(
    "typed,scrubbed",
    [
        ("ref x4111111111111111", "ref xXXXXXXXXXXXXXXXX"),
        ("card 4111-1111-1111-1111", "card XXXX-XXXX-XXXX-XXXX"),
        ("card4111.1111.1111.1111", "cardXXXX.XXXX.XXXX.XXXX"),
        ("4111111111111111cvv123", "XXXXXXXXXXXXXXXXcvv123"),
        ("Mr Jones card 4111  1111  1111  1111", "Mr Jones card XXXX  XXXX  XXXX  XXXX"),
        ("card 4111\t1111\t1111\t1111", "card XXXX\tXXXX\tXXXX\tXXXX"),
        ("card 4111/1111/1111/1111", "card XXXX/XXXX/XXXX/XXXX"),
        ("card 4111 - 1111 - 1111 - 1111", "card XXXX - XXXX - XXXX - XXXX"),
        ("card 4111\u20131111\u20131111\u20131111", "card XXXX\u2013XXXX\u2013XXXX\u2013XXXX"),
        ("4111_1111_1111_1111", "XXXX_XXXX_XXXX_XXXX"),
        ("\uff14" + "\uff11" * 15, "X" * 16),  # full-width digits
    ],
)
def test_what_a_person_typed_is_read_harder(typed, scrubbed):
    """Against a word, or in dotted groups: a person's text; the box's own keeps its hashes."""
    assert cards.scrub_typed(typed) == scrubbed and cards.has_typed_card(typed)


@pytest.mark.parametrize(
    "text",
    [
        "call back on 01632 960302 or 07700 900123",  # numbers start 0: no card window
        "Sales 01632 960001 01632 960002",  # two numbers side by side are not one card
        "2026-12-05 14:55:40",
        "lines 1, 2 and 3",
        "4111 1111 1111 1112",  # fails Luhn
    ],
)
def test_typed_text_without_a_card_is_left_alone(text):
    assert cards.scrub_typed(text) == text and not cards.has_typed_card(text)


def test_json_is_scrubbed_throughout():
    data = {"note": "card 4111111111111111", "list": ["x", "5500005555555559"], "n": 4}
    assert cards.scrub_json(data) == {"note": "card " + "X" * 16, "list": ["x", "X" * 16], "n": 4}


def test_the_audit_trail_never_stores_a_card_number(tmp_path):
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    try:
        audit.append("alice", "pause", "call:1", {"via": "web", "said": "4111111111111111"}, 1_000_000)
        assert audit.verify() == []
        (entry,) = audit.entries()
        assert entry.details["said"] == "X" * 16
    finally:
        audit.close()
    for path in tmp_path.iterdir():
        assert b"4111111111111111" not in path.read_bytes()


def test_the_box_s_own_key_fingerprints_are_never_masked():
    """Dash-separated hex groups (lk1:3001-4238-...) whose digits happen to pass Luhn: the
    audit trail's hat_replaced entries name keys by them."""
    import os as _os

    from firmware.signing import fingerprint

    for _ in range(3000):
        fp = fingerprint(_os.urandom(32))
        assert cards.scrub(fp) == fp and cards.scrub_json({"new_key": fp}) == {"new_key": fp}


def test_a_luhn_valid_run_within_the_number_dialled_is_not_a_card():
    """141 and a mobile number are 14 digits: enough for a run of 13 that passes the Luhn
    check by chance ("4107945807302"). Within the number's shortest length it is the
    number's own digits: nothing is masked, and no digit after it is withheld."""
    assert cards.has_card("14107945807302")
    assert cards.dialled_card_start("14107945807302", 14) is None
    assert cards.mask_dialled("14107945807302", 14) == "14107945807302"
    # A card keyed on after it is found, from its own first digit.
    assert cards.mask_dialled("14107945807302" + "4111111111111111", 14) == "14107945807302" + "X" * 16


@pytest.mark.parametrize(
    "number, whole, start",
    [
        ("4111111111111111", 0, 0),  # a card keyed with no number: from its first digit
        ("9994111111111111111", 0, 3),  # after a short code
        ("01632960999" + "4111111111111111", 11, 11),
        # Recognised by a run from the card's second digit (15 of its 16 keyed): from its first.
        ("01632960999" + "592858078885406", 11, 11),
        # A number cut short (01 alone): its shortest length is kept, the rest is masked
        # (its digits are those of a whole number and keys after it: docs/pci.md).
        ("01" + "4291417778108", 11, 11),
        # A run from inside the number and keys after it that are no card's: the number
        # keeps its digits, the keys past its shortest length go (the review found 01XXX...).
        ("01632960999" + "70707", 11, 11),
        # A card keyed with its first digit slipped (5 as 7), found by a run from its third:
        # from the number's end, not from the run (the review found "0163296099979XXX...").
        ("01632960999" + "7928580788854064", 11, 11),
    ],
)
def test_where_a_card_keyed_on_after_the_number_begins(number, whole, start):
    assert cards.dialled_card_start(number, whole) == start


@pytest.mark.parametrize(
    "number, whole, shown",
    [
        # Past the number's shortest length every key may be a card's first (a slipped one
        # too), as the number is stored: the view shows none of them while it is dialled.
        ("01632960999" + "79", 11, "01632960999" + "XX"),
        ("01632960999", 11, "01632960999"),
        # A number whose start says nothing: from its first issuer digit, as before.
        ("999" + "4111", 0, "999" + "XXXX"),
    ],
)
def test_the_live_view_masks_as_the_number_is_stored(number, whole, shown):
    assert cards.mask_unfinished(number, whole) == shown


@pytest.mark.parametrize(
    "number, whole, masked",
    [
        # A card with one digit slipped (4222222222222 keyed 4222222223222): no run passes
        # the Luhn check, and 13 digits keyed on past the number are no number's.
        ("01632960999" + "4222222223222", 11, "01632960999" + "X" * 13),
        # A number whose start says nothing of its length: its digits and keys cannot be
        # told apart, and the number keeps its digits (only a Luhn-valid run is a card).
        ("*67" + "01632960302" + "12", 0, "*67" + "01632960302" + "12"),
        # Fewer than a card has past the number: keys, kept (the dialled number rule).
        ("01632960999" + "972510273464", 11, "01632960999" + "972510273464"),
        # The longest international number, 00 and 15 digits: 8 past its shortest.
        ("00333982597919074", 9, "00333982597919074"),
    ],
)
def test_thirteen_digits_keyed_on_past_the_number_are_masked_whatever_their_luhn_check(number, whole, masked):
    assert not cards.has_card(number[whole:])
    assert cards.mask_dialled(number, whole) == masked


@pytest.mark.parametrize(
    "number, masked",
    [
        # 0800 and 7, a card: its 11th digit begins no card, so it is the number's.
        ("08001234567" + "4111111111111111", "08001234567" + "X" * 16),
        # ... and with a card keyed with a digit wrong (13 digits past 0800 and 6).
        ("08001234567" + "4222222223222", "08001234567" + "X" * 13),
        # 0800 and 6 and a card: its first digit, 4, may begin one.
        ("0800123456" + "4111111111111111", "0800123456" + "X" * 16),
        # 0800 and 7 ending 2-6: the 11th may be a card's first, masked with it.
        ("08001234563" + "4111111111111111", "0800123456" + "X" * 17),
        # A key slipped (a 4 keyed as a 7) is no digit of the card: kept.
        ("0800123456" + "7111111111111111", "08001234567" + "X" * 15),
    ],
)
def test_a_numbers_optional_digit_that_begins_no_card_is_kept(number, masked):
    assert cards.mask_dialled(number, 10, 0, 1) == masked
    assert cards.mask_dialled(number, 10) == number[:10] + "X" * (len(number) - 10)


@pytest.mark.parametrize(
    "number, masked",
    [
        # A card keyed with a digit wrong after a number whose start says nothing of its
        # length (a short code), or with no number: more digits than any number has (15),
        # so keys, and any of them may be the card's first.
        ("150" + "4222222223222", "X" * 16),
        ("999" + "5928580788855064", "X" * 19),
        ("5928580788855064", "X" * 16),
        # No more digits than a number has: a number and menu keys, kept as before.
        ("2125550123" + "1234", "2125550123" + "1234"),
        ("312555019911111", "312555019911111"),
    ],
)
def test_more_digits_than_any_number_has_are_masked_where_the_start_says_nothing(number, masked):
    assert not cards.has_card(number)
    assert cards.mask_dialled(number) == masked


@pytest.mark.parametrize(
    "number, masked",
    [
        # A North American number without its 1 and four menu keys, kept without *67, were
        # 16 digits with its 67: masked from the prefix's 6.
        ("*67" + "2025550143" + "1234", "*67" + "2025550143" + "1234"),
        # A Luhn-valid run from the prefix's 6 ("6720255501436", a menu key last) may be a
        # card keyed after a * (a Maestro 67...): a card all the same, masked from the
        # prefix's end, not from its 6.
        ("*67" + "2025550143" + "6", "*67" + "X" * 11),
        # More digits than any number has past the prefix: masked from the number's first.
        ("*67" + "2025550143" + "123456", "*67" + "X" * 16),
        # A card: found as without the prefix (here by a Luhn-valid run from the number's
        # first digit, which a number whose start says nothing loses), the prefix kept.
        ("*67" + "2025550143" + "4111111111111111", "*67" + "X" * 26),
    ],
)
def test_a_prefix_withholding_the_callers_number_is_not_counted_where_the_start_says_nothing(number, masked):
    """``*67`` joins the number's digits in one run: it was counted in the run's length
    and could begin a Luhn-valid window, so a number it withheld lost its digits where
    the same number dialled alone kept them."""
    assert cards.mask_dialled(number, 0, 3) == masked


@pytest.mark.parametrize(
    "number, shown",
    [
        ("*67" + "2025550143", "*67" + "X" * 10),  # from the number's first 2-6
        ("*67" + "8005550100", "*67" + "800" + "X" * 7),
    ],
)
def test_the_live_view_shows_a_prefix_withholding_the_callers_number(number, shown):
    assert cards.mask_unfinished(number, 0, 3) == shown


@pytest.mark.parametrize(
    "number, whole, prefix",
    [
        ("14107945807302", 14, 3),  # 141 and a UK mobile number
        ("*6712125550123", 14, 3),  # *67, 1 and a US number
    ],
)
def test_a_number_dialled_after_a_prefix_is_stored_whole(number, whole, prefix):
    """The call log and a recording's header ran the general check on the number dialled:
    a run of 13 from the prefix's second key passes the Luhn check ("4107945807302",
    "6712125550123", about one such number in ten), and the number was stored masked
    ("1XXXXXXXXXXXXX"). Within the number's shortest length it is the number's own."""
    assert cards.scrub(number) != number
    assert cards.scrub_dialled(number, whole, prefix) == number


@pytest.mark.parametrize(
    "number, whole, prefix",
    [
        ("14107945807302" + "4111111111111111", 14, 3),
        ("*6712125550123" + "4111111111111111", 14, 3),
        ("14107945807302" + "5928580788854064", 14, 3),
    ],
)
def test_a_card_keyed_on_after_a_prefixed_number_is_still_masked_where_it_is_stored(number, whole, prefix):
    # As the supervisor masks it: the number whole, the card masked.
    masked = cards.mask_dialled(number, whole, prefix)
    assert masked == number[:whole] + "X" * (len(number) - whole)
    assert cards.scrub_dialled(masked, whole, prefix) == masked
    # Not masked before (the general check's side, as for a number alone): no card digit kept.
    scrubbed = cards.scrub_dialled(number, whole, prefix)
    assert scrubbed[:3] == number[:3] and scrubbed.endswith("X" * (len(number) - whole))


def test_a_run_beginning_in_the_prefix_past_the_number_is_masked_from_the_prefix_end():
    # A Maestro card keyed after a * reads as *67 and digits: masked, the prefix's keys kept.
    assert cards.scrub_dialled("*6759000000000000005", 0, 3) == "*67" + "X" * 17
    assert cards.scrub("*6759000000000000005") == "*" + "X" * 19
