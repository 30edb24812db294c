"""Issue 19: a supervisor's login stretches the password once (it opens the key slot,
which is the check), and the slot the web made holds only the lines granted; a
right password whose slot will not open raises the key_tampered alarm."""

import base64
import json

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
    # A failed slot is checked against the account's hash (a right password there
    # means the slot was altered); every failed login takes two, whoever it names.
    assert resp.status_code == 400 and calls == ["derive", "phc"]
    for name in ("ivan", "nobody-here"):
        calls.clear()
        resp = box.try_login(box.app.test_client(), name, "not the password")
        assert resp.status_code == 400 and calls == ["phc", "phc"], name


def _alter_slot(box, user):
    """Flip one byte of ``user``'s sealed slot in keystore.json (as a card editor would)."""
    path = box.services.keystore.path
    with open(path) as f:
        doc = json.load(f)
    (slot,) = [s for s in doc["slots"] if s.get("user") == user]
    sealed = bytearray(base64.b64decode(slot["sealed"]))
    sealed[0] ^= 1
    slot["sealed"] = base64.b64encode(bytes(sealed)).decode()
    with open(path, "w") as f:
        json.dump(doc, f)


def _tamper_alarms(box):
    return [a for a in box.alarm_log.history() if a["kind"] == "key_tampered"]


def test_a_right_password_whose_slot_does_not_open_raises_key_tampered(box, people):
    _alter_slot(box, "sam")
    resp = box.try_login(box.app.test_client(), "sam", "not sam's password")
    assert resp.status_code == 400
    assert not _tamper_alarms(box)  # a wrong password says nothing about the slot
    client = box.login("sam")  # by the account's hash, without playback
    (alarm,) = _tamper_alarms(box)
    assert "sam" in alarm["message"] and "keystore.json" in alarm["message"]
    assert alarm["acknowledged_us"] is None
    entries = [e for e in box.audit.entries(action="alarm") if "key_tampered" in repr(e)]
    assert entries, "raising the alarm is audited"
    page = client.get("/alarms").get_data(as_text=True)
    assert "key_tampered" in page or "recording key" in page


def test_the_web_grants_only_the_lines_given(box, people):
    keystore = box.services.keystore
    assert keystore.granted_lines("sam") == (1, 2)
    assert keystore.granted_lines("sue") == (3,)
    with keystore.unlock("sue", box.PASSWORDS["sue"]) as sue:
        assert sue.lines == (3,) and not sue.holds_all
        assert sue.line_private(1) is None
        with pytest.raises(NotGrantedError):
            sue.unwrap(b"\x01" + bytes(92), b"ctx", line=1)


def test_beside_a_recorder_the_recorder_raises_it(box, people):
    """The web process of a split box keeps no alarm history: it asks the recorder."""
    asked = []
    box.services.alarms = None
    box.services.slot_tampered = lambda user, failure: asked.append((user, failure))
    _alter_slot(box, "sam")
    box.login("sam")
    assert asked == [("sam", "closed")]
