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
  the card's first digit, taken for the number's 11th.

The recording is exported and its DTMF decoded: only the number's own keys are in it.
"""

import json

import pytest

CARD = "4111111111111111"  # a Visa test number

CASES = {
    # name: (number dialled, the line's outside-line digit, keys left in the recording)
    "0800 and 6 digits": ("0800123456", "", "0800123456"),
    "999 after the outside-line 9": ("9999", "9", "9999"),
    "999": ("999", "", "999"),
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


def test_a_us_number_dialled_without_its_1_leaves_no_card_digit_in_the_recording(module_lab, tmp_path):
    """An area code never starts with 0 or 1: a number starting 2-9 has 10 digits, and the
    11th key is the card's first (before: "21255501234" in the recording). The call log
    masks the card too; a start of 2-9 may also be a card's own, so it says more X."""
    lab = module_lab
    dialled = "2125550123"
    doc = lab.scenario([call(dialled)], lines=1, config=config(lab, ""), country="us")
    data_dir, (logged,) = lab.sim(doc)
    assert logged["recording"]
    assert keys_in_recording(lab, data_dir, logged, tmp_path) == dialled
    assert set(logged["number"][len(dialled) :]) == {"X"} and CARD[:6] not in logged["number"], logged
