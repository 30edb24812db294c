"""No digit of a card number keyed straight on after the number dialled is left in the
recording, where the number's start says how long it may be but not how long it is.

A card keyed 0.3 s after the number, before the box has noticed the answer, is taken
for more of the number; DTMF masking (the default) cuts the tones of keys past the
number out of the recording (docs/pci.md). The review found card digits left in it:

* after an 0800 number of 0 and 10 digits (0800 numbers have 10 or 11): the card's
  first digit, taken for the number's 11th;
* after 999 dialled on a line whose switchboard takes 9 for an outside line (and after
  999 on a direct line): 8 of the card's digits, 999's start saying nothing of its
  length, so that keys were cut only past the 12th (the 11th);
* after a US number dialled without its 1 (10 digits, its start 2-9 an area code):
  the card's first digit, taken for the number's 11th;
* a card keyed at the dial tone with no number before it (the call dials it as its
  number): the tones of its first 10 keys on a US box, 11 on a UK box, where a start of
  2-6 says nothing of the length.

And the number's own tones lost: a call through Relay UK (18001 and a number, 18000 for
999) was taken for a short code, its tones kept past ``180`` only, and 18001 01632 960123
was logged as Xs.

The recording is exported and its DTMF decoded: only the number's own keys are in it
(none of a number whose start says nothing and begins 2-6, as a card does).
"""

import json

import pytest

CARD = "4111111111111111"  # a Visa test number

CASES = {
    # name: (number dialled, the line's outside-line digit, keys left in the recording)
    "0800 and 6 digits": ("0800123456", "", "0800123456"),
    "999 after the outside-line 9": ("9999", "9", "9999"),
    "999": ("999", "", "999"),
    "18000 (999 through Relay UK)": ("18000", "", "18000"),
    "18001 and a national number (Relay UK)": ("1800101632960123", "", "1800101632960123"),
}


def call(dialled, keys=CARD):
    out = {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": dialled}, "talk": 12.0}
    if keys:
        out["keys"] = [{"at": 0.3, "digits": keys}]
    return out


def config(lab, outside):
    line = {"line": 1, "mode": "always", "outside_line": outside}
    return lab.policy(rules={"default_mode": "always", "lines": [line]})


def keys_in_recording(lab, data_dir, logged, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    wav = tmp_path / "call.wav"
    status, _out, err = lab.export(data_dir, logged["id"], wav, pw)
    assert status == 0, err
    status, out, err = lab.cli("analyze", wav, "--json")
    assert status == 0, err
    return "".join(e["digit"] for e in map(json.loads, out.splitlines()) if e["event"] == "dtmf")


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_card_digit_is_left_in_the_recording(module_lab, tmp_path, case):
    lab = module_lab
    dialled, outside, heard = CASES[case]
    data_dir, (logged,) = lab.sim(lab.scenario([call(dialled)], lines=1, config=config(lab, outside)))
    assert logged["recording"]
    assert keys_in_recording(lab, data_dir, logged, tmp_path) == heard
    # The call log keeps the number dialled, the card masked.
    assert logged["number"].startswith(dialled) and set(logged["number"][len(dialled) :]) == {"X"}, logged


def test_an_0800_number_of_11_digits_is_logged_whole_its_last_tone_cut(module_lab, tmp_path):
    """Its last digit may be a card's first: its tone is cut out of the recording; the
    call log keeps the number as dialled (nothing after it passes for a card)."""
    lab = module_lab
    dialled = "08001234567"
    data_dir, (logged,) = lab.sim(lab.scenario([call(dialled, keys="")], lines=1, config=config(lab, "")))
    assert (logged["number"], logged["digits_withheld"]) == (dialled, False)
    assert keys_in_recording(lab, data_dir, logged, tmp_path) == dialled[:10]


# A card keyed at the dial tone, with no number before it (the call dials it as its
# number), and numbers whose start says nothing of their length (a US number without its
# 1, a UK local number without its area code) with a card keyed straight on after them.
WITH_NO_NUMBER = {
    # name: (country, number dialled, keys after it, keys left in the recording)
    "US, a card alone": ("us", CARD, "", ""),
    "UK, a card alone": ("uk", CARD, "", ""),
    "US, 212 555 0123 and a card": ("us", "2125550123", CARD, ""),
    "UK, a local 612345 and a card": ("uk", "612345", CARD, ""),
    # Its first digit, 7-9, begins no card: the number keeps its tones, the card none.
    "US, 800 555 0123 and a card": ("us", "8005550123", CARD, "8005550123"),
}


@pytest.mark.parametrize("case", sorted(WITH_NO_NUMBER))
def test_a_card_maybe_with_no_number_before_it_leaves_no_digit_in_the_recording(module_lab, tmp_path, case):
    """The review found, on a US box, the tones of a card's first ten keys in the
    recording when it was keyed with no number: a number starting 2-9 was whole at 10
    digits, and the card is recognised only at its 16th key at the latest, long after the
    recorder (360 ms behind) has kept its first. A number whose start says nothing of its
    length and begins 2-6, as a card does, keeps none of its tones (the call log keeps
    the number); on a UK box (a local number, a card alone) it kept those of 11 keys."""
    lab = module_lab
    country, dialled, keys, heard = WITH_NO_NUMBER[case]
    doc = lab.scenario([call(dialled, keys)], lines=1, config=config(lab, ""), country=country)
    data_dir, (logged,) = lab.sim(doc)
    assert logged["recording"]
    assert keys_in_recording(lab, data_dir, logged, tmp_path) == heard
    # The call log masks the card (and, where its start says nothing, the number before it).
    assert "X" in logged["number"] and CARD[:6] not in logged["number"], logged


@pytest.mark.parametrize(
    "country, dialled, heard",
    [
        ("us", "2125550123", ""),  # it may be a card's first ten digits
        ("uk", "612345", ""),  # ... and so may a UK local number starting 2-6
        ("us", "8005550123", "8005550123"),  # no card begins 7-9: every tone kept
        ("uk", "79460123", "79460123"),
    ],
)
def test_a_number_whose_start_says_nothing_is_logged_whole(module_lab, tmp_path, country, dialled, heard):
    """What it costs: such a number dialled alone, beginning 2-6, is recorded without its
    tones; the call log keeps it, as dialled."""
    lab = module_lab
    doc = lab.scenario([call(dialled, keys="")], lines=1, config=config(lab, ""), country=country)
    data_dir, (logged,) = lab.sim(doc)
    assert (logged["number"], logged["digits_withheld"]) == (dialled, False)
    assert keys_in_recording(lab, data_dir, logged, tmp_path) == heard
