"""The key pin on a card that refuses writes, or whose pin cannot be read.

The box pins the recording public key the first time it records (trust on first
use). A card that refuses that write used to raise out of the recorder's start of
a call, through the call supervisor, and the box stopped (found by the I/O fault
run failing several calls in a row). The key is the one the box would have
pinned: it is used, the error logged, and pinned at the next check. A pin that
exists but cannot be read is another matter: the box records to no key it
cannot check.
"""

import os

import pytest

from firmware.errors import TamperError
from firmware.keypin import PIN_FILE, RecordingKeyPin
from firmware.signing import Signer
from firmware.storage import fsutil

ADMIN, LINE = bytes(range(32)), bytes(range(1, 33))


@pytest.fixture
def pin(tmp_path):
    return RecordingKeyPin(tmp_path, Signer(bytes(range(32, 64)), "test"))


def _refusing(monkeypatch):
    def refused(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsutil, "atomic_write", refused)


def test_a_first_pin_the_card_refuses_takes_the_key_and_pins_it_next_time(pin, tmp_path, monkeypatch, caplog):
    _refusing(monkeypatch)
    pin.check(ADMIN)  # no exception: the key is taken
    assert "cannot write" in caplog.text and not (tmp_path / PIN_FILE).exists()
    pin.check_line(1, LINE)  # the line too, with no pin file yet
    monkeypatch.undo()
    pin.check(ADMIN)
    assert (tmp_path / PIN_FILE).exists()
    pin.check_line(1, LINE)
    fresh = RecordingKeyPin(tmp_path, pin.signer)
    fresh.check(ADMIN)
    fresh.check_line(1, LINE)
    with pytest.raises(TamperError):
        fresh.check(LINE)  # pinned now: another key is refused


def test_a_pin_that_cannot_be_read_takes_no_key(pin, tmp_path):
    pin.check(ADMIN)
    os.unlink(tmp_path / PIN_FILE)
    os.mkdir(tmp_path / PIN_FILE)  # (what the card returns is an error, whatever it is)
    fresh = RecordingKeyPin(tmp_path, pin.signer)
    with pytest.raises(TamperError, match="cannot be read"):
        fresh.check(LINE)
    with pytest.raises(TamperError, match="cannot be read"):
        fresh.check_line(1, LINE)
