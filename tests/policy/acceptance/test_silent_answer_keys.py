"""Issue 20: keys pressed after a silent answer in the long ringback gap do not leak.

Without a polarity reversal, a far end that answers in silence in the UK
ringback's 2 s gap is noticed only once the next burst is overdue (2.4 s
after the last burst). Nobody keys into ringback, so a key pressed before
then is itself taken as the answer (dated back to the last burst). Here the
caller keys a card number - with no pause code - 1 s and 2 s after such an
answer, early (0.05 s) and late (0.8 s) in the gap: three of the four
first keys come before the overdue point, so the key gives the answer away;
in the fourth (0.8 + 2.0 s) the overdue burst does, 0.4 s before the key.
For every call, with the default DTMF masking:

* the call log's number is exactly the dialled number;
* all the card's keys are marked on the call's timeline (when, not which);
* the card digits are in no file of the data directory (ASCII, hex, UTF-16);
* the DTMF receiver finds nothing but the dialled number in the exported
  recording: the first card key, the one that gave the answer away, is
  masked like the rest.
"""

import json

import pytest

from support.cardscan import scan

DIALLED = "01632960302"
CARD = "5500005555555559"  # passes the Luhn check
RINGBACK_AFTER_S = 0.3  # the simulator's exchange starts ringback this long after the last digit
LONG_GAP_S = 1.0  # UK ringback: 0.4 on, 0.2 off, 0.4 on, then the 2.0 s gap
# (seconds into the long gap of the silent answer, seconds after it of the first card key)
CASES = ((0.05, 1.0), (0.05, 2.0), (0.8, 1.0), (0.8, 2.0))


def outbound(line, at_s, answer_in_gap_s, key_after_s):
    return {
        "line": line,
        "at": at_s,
        "direction": "out",
        "dial": {
            "digits": DIALLED,
            "delay": 1.0,
            "answer_after": RINGBACK_AFTER_S + LONG_GAP_S + answer_in_gap_s,
            "ringback": True,
        },
        "talk": 10.0,
        "keys": [{"at": key_after_s, "digits": CARD}],
    }


@pytest.fixture(scope="module")
def calls(module_lab):
    lab = module_lab
    plan = [outbound(1 + i, 1.0, gap_s, key_s) for i, (gap_s, key_s) in enumerate(CASES)]
    data_dir, log = lab.sim(lab.scenario(plan, config=lab.policy(pci={"mask_dtmf": True})))
    assert len(log) == len(CASES)
    by_line = {c["line"]: c for c in log}
    return lab, data_dir, [(case, by_line[1 + i]) for i, case in enumerate(CASES)]


def test_the_number_is_exactly_what_was_dialled(calls):
    _lab, _data_dir, found = calls
    assert [(case, c["number"]) for case, c in found] == [(case, DIALLED) for case, _c in found]
    assert all(c["answered"] and c["recording"] == "complete" for _case, c in found)


def test_every_card_key_is_marked_without_its_digit(calls):
    _lab, _data_dir, found = calls
    for case, call in found:
        assert len(call["key_times"]) == len(CARD), (case, call["key_times"])
    assert CARD not in json.dumps([c for _case, c in found])


def test_the_card_digits_are_in_no_file(calls):
    _lab, data_dir, _found = calls
    assert scan(data_dir, [CARD]) == []  # raw, hex, base64, UTF-16: support/cardscan.py


def test_no_card_key_is_in_the_recordings(calls, tmp_path):
    lab, data_dir, found = calls
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    for case, call in found:
        wav = tmp_path / ("line%d.wav" % call["line"])
        status, _out, err = lab.export(data_dir, call["id"], wav, pw)
        assert status == 0, err
        status, out, err = lab.cli("analyze", wav, "--json")
        assert status == 0, err
        digits = "".join(e["digit"] for e in map(json.loads, out.splitlines()) if e["event"] == "dtmf")
        assert digits == DIALLED, (case, digits)
