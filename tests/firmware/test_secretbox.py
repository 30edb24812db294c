"""SecretBox's per-purpose secrets (derive), beside the sealed ones they must not disturb."""

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware.secretbox import PREFIX, SecretBox


def test_a_derived_secret_is_the_box_s_own_and_one_per_purpose(tmp_path):
    box = SecretBox(tmp_path, b"board 1")
    secret = box.derive("web UI HTTPS key")
    assert len(secret) == 32
    assert SecretBox(tmp_path, b"board 1").derive("web UI HTTPS key") == secret  # every start
    assert box.derive("something else") != secret
    assert SecretBox(tmp_path, b"board 2").derive("web UI HTTPS key") != secret  # the card moved
    os.remove(tmp_path / "secrets.key")
    assert box.derive("web UI HTTPS key") != secret  # secrets.key lost


def test_values_sealed_before_derive_existed_still_open(tmp_path):
    """The key that seals the named secrets (mail.json, archive.secret) is the same as
    before: what a box sealed then opens now, and no derived secret is that key."""
    box = SecretBox(tmp_path, b"board 1")
    box.derive("x")  # makes secrets.key
    with open(tmp_path / "secrets.key", "rb") as f:
        old_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"board 1", info=b"linekeeper secrets v1"
        ).derive(f.read())
    nonce = bytes(12)
    sealed = (
        PREFIX
        + base64.b64encode(nonce + ChaCha20Poly1305(old_key).encrypt(nonce, b"pw", b"mail.password")).decode()
    )
    assert box.open("mail.password", sealed) == "pw"
    assert old_key not in (box.derive("secrets v1"), box.derive(""))


def test_a_key_the_other_service_made_a_moment_before_is_read_not_replaced(tmp_path, monkeypatch):
    """Both services start at boot with no secrets.key yet: the one that found none and makes
    its own must not replace the one the other made meanwhile (whatever that one sealed, the
    web UI's HTTPS key first, would no longer open)."""
    theirs, ours = bytes(range(32)), bytes(range(32, 64))

    def urandom(n):  # the other service writes its key just before ours is drawn
        (tmp_path / "secrets.key").write_bytes(theirs)
        return ours[:n]

    box = SecretBox(tmp_path, identity=b"board")
    monkeypatch.setattr("firmware.secretbox.os.urandom", urandom)
    mine = box.derive("https key")
    monkeypatch.undo()
    assert (tmp_path / "secrets.key").read_bytes() == theirs
    assert mine == SecretBox(tmp_path, identity=b"board").derive("https key")
