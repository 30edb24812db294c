"""`linekeeper init` makes every line's recording key with the keys, as the setup wizard does:
a key store backup made just after it holds them all (one made before a line's key, put back,
opens none of that line's recordings: docs/keys.md)."""

import os

from firmware.config import load_config, save_config
from firmware.storage import keystore
from firmware.storage.keystore import KeyStore

from support.cli import run_linekeeper, secret_file
from support.recording_lab import CHEAP_KDF, PASSWORD


def init(tmp_path, data):
    pw = secret_file(tmp_path, "pw", PASSWORD)
    status, out, err = run_linekeeper("init", "--data-dir", data, "--password-file", pw)
    assert status == 0, err
    return out


def test_init_makes_the_key_of_every_line_of_the_configured_hat(tmp_path, monkeypatch):
    monkeypatch.setattr(keystore, "DEFAULT_KDF", CHEAP_KDF)
    data = str(tmp_path / "box")
    os.makedirs(data)
    save_config(data, load_config(data).replace(hat="lk-2lb"))
    out = init(tmp_path, data)
    assert sorted(KeyStore(data).line_public_keys()) == [1, 2]
    assert "Recording keys made for lines 1 and 2 (every line of the box)" in out


def test_init_without_a_hat_makes_the_keys_of_every_line_a_hat_has(tmp_path, monkeypatch):
    """A simulated box (no HAT configured): as many as the shipped HAT with most lines."""
    monkeypatch.setattr(keystore, "DEFAULT_KDF", CHEAP_KDF)
    data = str(tmp_path / "box")
    out = init(tmp_path, data)
    assert sorted(KeyStore(data).line_public_keys()) == [1, 2, 3, 4]
    said = "Recording keys made for lines 1, 2, 3 and 4 (no HAT is configured: every line the lk-4l HAT"
    assert said in out
    # A backup made now holds every line's key: the box's start makes none it lacks.
    path = os.path.join(data, "keys", "keystore.json")
    before = open(path, "rb").read()
    KeyStore(data).ensure_line_keys(range(1, 5))
    assert open(path, "rb").read() == before
