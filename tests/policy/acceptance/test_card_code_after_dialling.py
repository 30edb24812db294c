"""A card number and then its security code keyed straight after the number dialled.

Keyed 0.3 s after a complete number, before the box has noticed the answer (no
reversal, no voice, within the dial timeout), a card number is taken for more of
the number, and so are the security code (and an expiry date) keyed after it. The
card number is scrubbed from the number field (docs/pci.md); the review found the
code's digits left after the mask ("...XXX737"). PCI DSS forbids keeping the code
at all. For every call:

* the number field keeps no digit after the card number: nothing after the mask;
  and the number dialled keeps all its digits (a search for it finds the call);
* the call says digits were withheld (``digits_withheld``);
* the code's digits are in no file of the data directory (raw bytes, as the card
  alone is scanned), nor the card number;
* a search of the call log for the code's digits finds nothing;
* the recording holds the number dialled and none of the keys after it (DTMF
  masking cuts out every digit past the longest number).
"""

import json
import os
import re
import shutil
import sqlite3

import pytest

from firmware.calls.callsearch import CallFilter, CallSearch, ensure_indexes

from support.fts5leaves import postings

DIALLED = "01632960999"
KEY_S = 0.07 + 0.08  # the simulator's key: 70 ms on, 80 ms off

CASES = {
    # A Visa test number, its 3-digit code and an expiry date keyed on after it.
    "visa": ("4111111111111111", ["737", "0928"]),
    # An Amex test number (15 digits) and its 4-digit code.
    "amex": ("378282246310005", ["7391"]),
}


def keyed_after_dialling(card, after, dialled=DIALLED):
    keys, at = [{"at": 0.3, "digits": card}], 0.3 + len(card) * KEY_S + 0.4
    for digits in after:
        keys.append({"at": at, "digits": digits})
        at += len(digits) * KEY_S + 0.4
    return {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": dialled},
        "talk": 14.0,
        "keys": keys,
    }


@pytest.fixture(scope="module", params=sorted(CASES))
def run(module_lab, request):
    lab = module_lab
    card, after = CASES[request.param]
    rules = {"default_mode": "always"}
    data_dir, (logged,) = lab.sim(
        lab.scenario([keyed_after_dialling(card, after)], lines=1, config=lab.policy(rules=rules))
    )
    return lab, data_dir, logged, card, after


def test_no_digit_after_the_card_number_is_in_the_number(run):
    _lab, _data_dir, logged, _card, _after = run
    number = logged["number"]
    assert "X" in number, number  # the card number was recognised (and scrubbed)
    assert not re.search(r"X.*\d", number), number
    assert logged["digits_withheld"] is True


def test_the_number_dialled_keeps_its_digits(run, tmp_path):
    """The review found the number's last digits masked with the card ("016329XXX...":
    a Luhn window across the number's end), so a search for the number missed the call."""
    _lab, data_dir, logged, _card, _after = run
    assert re.fullmatch(DIALLED + "X+", logged["number"]), logged["number"]
    db_path = str(shutil.copytree(data_dir, tmp_path / "data") / "calls.db")
    ensure_indexes(db_path)
    search = CallSearch(db_path)
    try:
        calls, _ = search.search(CallFilter(number=DIALLED))
        assert [c["id"] for c in calls] == [logged["id"]]
    finally:
        search.close()


HEX_DIGITS = frozenset(b"0123456789abcdef")


def in_clear(digits, data):
    """Whether ``digits`` are in ``data`` other than by chance inside a digest written in
    hex (the audit trail's and the call log's hashes: 4 digits turn up in a few kB of hex
    one time in several; a number in clear is digits, X and punctuation, never a run of
    32 or more hex characters with a letter a to f in it)."""
    for found in re.finditer(re.escape(digits.encode()), data):
        start, end = found.start(), found.end()
        while start > 0 and data[start - 1] in HEX_DIGITS:
            start -= 1
        while end < len(data) and data[end] in HEX_DIGITS:
            end += 1
        run = data[start:end]
        if len(run) >= 32 and re.search(rb"[a-f]", run):
            continue
        return True
    return False


def test_digits_in_a_hex_digest_are_not_taken_for_a_leak():
    digest = b"ab4dd15109165547c4b9eadf8de097d5c3c7391a8889429762217b3e930c6da9"
    assert not in_clear("7391", b"prev_hash" + digest + b"\x00")
    assert in_clear("7391", b'{"number": "01632960999XXXXXXXXXXXXXXX7391"}')
    assert in_clear("7391", b"\x00\x027391\x00" + digest)
    assert in_clear("7391", b"0163296099973917391")  # a number's digits, no letter: no digest


def test_the_code_digits_are_in_no_file(run):
    lab, data_dir, logged, card, after = run
    code = "".join(after)
    assert code not in json.dumps(logged)
    for path, data in lab.files(data_dir):
        assert not in_clear(card, data), path
        assert not in_clear(code, data), path


def test_a_search_for_the_code_finds_nothing(run, tmp_path):
    _lab, data_dir, _logged, _card, after = run
    db_path = str(shutil.copytree(data_dir, tmp_path / "data") / "calls.db")
    ensure_indexes(db_path)  # as the web UI makes them (a copy: the scan sees the box's own)
    search = CallSearch(db_path)
    try:
        for digits in after:
            calls, _ = search.search(CallFilter(number=digits, number_match="contains"))
            assert calls == [], digits
        calls, _ = search.search(CallFilter())
        assert [c["digits_withheld"] for c in calls] == [True]
    finally:
        search.close()


def test_a_number_dialled_alone_withholds_nothing(module_lab):
    lab = module_lab
    call = {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": DIALLED}, "talk": 6.0}
    _data_dir, (logged,) = lab.sim(lab.scenario([call], lines=1))
    assert logged["number"] == DIALLED
    assert logged["digits_withheld"] is False


def test_the_recording_holds_only_the_number_dialled(run, tmp_path):
    lab, data_dir, logged, _card, _after = run
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    wav = tmp_path / "call.wav"
    status, _out, err = lab.export(data_dir, logged["id"], wav, pw)
    assert status == 0, err
    status, out, err = lab.cli("analyze", wav, "--json")
    assert status == 0, err
    digits = "".join(e["digit"] for e in map(json.loads, out.splitlines()) if e["event"] == "dtmf")
    assert digits == DIALLED


def test_a_call_rebuilt_by_repair_says_digits_were_withheld(module_lab):
    """A call recorded on demand after the card and its code (the record code keyed after
    them): its recording's header knows the digits were withheld, and ``linekeeper repair``
    of a lost call log rebuilds the call saying so, its number as masked, the card nowhere."""
    lab = module_lab
    card, code = CASES["visa"][0], "737"
    call = keyed_after_dialling(card, [code, "*9"])
    rules = {"default_mode": "on_demand", "on_demand": {"dtmf_code": "*9", "from_start": True}}
    data_dir, (logged,) = lab.sim(lab.scenario([call], lines=1, config=lab.policy(rules=rules)))
    assert logged["recording"] and logged["digits_withheld"] is True
    for name in ("calls.db", "calls.db-wal", "calls.db-shm"):
        if os.path.exists(os.path.join(data_dir, name)):
            os.remove(os.path.join(data_dir, name))
    status, out, err = lab.cli("repair", "--data-dir", data_dir)
    assert status == 0, (out, err)
    (rebuilt,) = lab.calls(data_dir)
    assert rebuilt["end_reason"] == "repaired"
    assert (rebuilt["number"], rebuilt["digits_withheld"]) == (logged["number"], True)
    assert re.fullmatch(DIALLED + "X+", rebuilt["number"])
    for path, data in lab.files(data_dir):
        assert card.encode() not in data and (DIALLED + code).encode() not in data, path


def test_the_search_index_of_numbers_never_held_a_card_digit(module_lab):
    """The web UI's search index of numbers (FTS5, trigrams) deletes by marker: what a row's
    number held before stays in the file. The review found the card's first digits there,
    from a number written while the card was still being keyed (before its last digit
    made it one and masked it), though the number itself ends in X's."""
    lab = module_lab
    plain = {"line": 1, "at": 1.0, "direction": "out", "dial": {"digits": "01632960111"}, "talk": 3.0}
    data_dir, _ = lab.sim(lab.scenario([plain], lines=1))
    ensure_indexes(os.path.join(data_dir, "calls.db"))  # as the web UI makes them on the box
    card = "5928580788854064"
    data_dir, calls = lab.sim(lab.scenario([keyed_after_dialling(card, ["737"])], lines=1), data_dir)
    logged = calls[-1]
    assert re.fullmatch(DIALLED + "X+", logged["number"]) and logged["digits_withheld"]
    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    try:
        found = postings(db, "calls_number_fts")
        terms = {(term, deleted) for term, rowid, deleted in found if rowid == logged["id"]}
    finally:
        db.close()
    number = logged["number"].lower()
    assert {term for term, _ in terms} <= {number[i : i + 3] for i in range(len(number) - 2)}, sorted(terms)
    assert not any(deleted for _, deleted in terms), sorted(terms)


# A number dialled after a prefix withholding the caller's number: 14 keys, a run of 13 of
# them from the prefix's second key passing the Luhn check ("4107945807302", "6712125550123").
PREFIXED = {"uk": "14107945807302", "us": "*6712125550123"}


@pytest.mark.parametrize("country", sorted(PREFIXED))
def test_a_number_dialled_after_a_prefix_is_stored_whole_a_card_after_it_masked(module_lab, country):
    """The call log and the recording's header ran the general card check on the number,
    without the country's prefixes: the run was taken for a card and the number stored as
    "1XXXXXXXXXXXXX" ("*XXXXXXXXXXXXX"), in the log and in a log rebuilt by ``linekeeper
    repair``, lost to a search by number, reports and subject access. A card keyed on
    after such a number is masked, in both, as after the number alone."""
    lab = module_lab
    dialled, (card, after) = PREFIXED[country], CASES["visa"]
    # Recorded on demand (the record code keyed once connected), so that the recording's
    # header, made as it begins, has the number dialled (always: none dialled yet).
    alone = dict(keyed_after_dialling("", ["*9"], dialled), keys=[{"at": 5.0, "digits": "*9"}])
    carded = dict(keyed_after_dialling(card, after + ["*9"], dialled), at=20.0)
    rules = {"default_mode": "on_demand", "on_demand": {"dtmf_code": "*9", "from_start": True}}
    config = lab.policy(rules=rules)
    data_dir, logged = lab.sim(lab.scenario([alone, carded], lines=1, config=config, country=country))
    assert [bool(c["recording"]) for c in logged] == [True, True]
    assert logged[0]["number"] == dialled
    # Masked from the number's end once a run ends past it (the card's first keys may do).
    assert re.fullmatch(re.escape(dialled) + "X+", logged[1]["number"]), logged[1]["number"]
    for name in ("calls.db", "calls.db-wal", "calls.db-shm"):
        if os.path.exists(os.path.join(data_dir, name)):
            os.remove(os.path.join(data_dir, name))
    status, out, err = lab.cli("repair", "--data-dir", data_dir)
    assert status == 0, (out, err)
    assert [c["number"] for c in lab.calls(data_dir)] == [c["number"] for c in logged]
    for path, data in lab.files(data_dir):
        assert not in_clear(card, data), path
