"""Issue 19: a supervisor's login stretches the password once (it opens the key slot,
which is the check), and the slot the web made holds only the lines granted."""

import pytest
from cryptography.hazmat.primitives.kdf import argon2

from firmware.errors import NotGrantedError


def count_argon2(monkeypatch):
    calls = []
    real = argon2.Argon2id.derive
    real_verify = argon2.Argon2id.verify_phc_encoded

    def derive(self, *a, **k):
        calls.append("derive")
        return real(self, *a, **k)

    def verify_phc(cls_or_key, *a, **k):
        calls.append("phc")
        return real_verify(cls_or_key, *a, **k)

    monkeypatch.setattr(argon2.Argon2id, "derive", derive)
    monkeypatch.setattr(
        argon2.Argon2id, "verify_phc_encoded", classmethod(lambda cls, *a, **k: verify_phc(*a, **k))
    )
    return calls


def test_a_supervisor_login_runs_argon2id_once(box, people, monkeypatch):
    calls = count_argon2(monkeypatch)
    box.login("sam")
    assert calls == ["derive"]
    calls.clear()
    box.login("ivan")  # no key slot: the account's hash, once
    assert calls == ["phc"]
    calls.clear()
    client = box.app.test_client()
    resp = box.try_login(client, "sam", "not sam's password")
    assert resp.status_code == 400 and calls == ["derive"]


def test_the_web_grants_only_the_lines_given(box, people):
    keystore = box.services.keystore
    assert keystore.granted_lines("sam") == (1, 2)
    assert keystore.granted_lines("sue") == (3,)
    with keystore.unlock("sue", box.PASSWORDS["sue"]) as sue:
        assert sue.lines == (3,) and not sue.holds_all
        assert sue.line_private(1) is None
        with pytest.raises(NotGrantedError):
            sue.unwrap(b"\x01" + bytes(92), b"ctx", line=1)
