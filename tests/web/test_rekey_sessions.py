"""A rekey ends every web session opened before it (web/keyepoch.py).

A session keeps the recording key its login opened. After a rekey that key
opens nothing recorded since, so a session kept open would show a new
recording as damaged. Every session opened under the old keys is ended instead
(audited: ``logout`` by ``system``, reason ``rekey``) and the person is sent to
the login page, told why; logged in again, they play the new recording.

Real recordings: the simulated call of test_call_story, then a rekey with the
real :class:`firmware.rekey.Rekey`, then a second call recorded under the new keys.
"""

import json
import sqlite3
from pathlib import Path

import pytest

from firmware.errors import NotGrantedError, TamperError
from firmware.storage.keystore import Argon2Params, KeyStore
from web.keyepoch import KeysInForce

from .test_call_story import PASSWORD, Story, _cli, scenario
from support.web import audio_url


@pytest.fixture
def story(tmp_path, synth):
    s = Story(tmp_path, synth)
    yield s
    s.close()


def _rekey(story, tmp_path):
    """`linekeeper rekey` on the story's data directory (the recorder is not running)."""
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    status, out, err = _cli("rekey", "--data-dir", story.data, "--password-file", secret, "--user", "alice")
    assert status == 0, err
    assert "rekey done" in out


def _record_another_call(story, tmp_path):
    """A second call, recorded by the simulated box under the keys in force now."""
    doc = scenario()
    doc["start"] = "2026-03-02T10:00:00Z"
    path = tmp_path / "after.json"
    path.write_text(json.dumps(doc))
    status, _out, err = _cli("sim", path, "--data-dir", story.data)
    assert status == 0, err
    db = sqlite3.connect(Path(story.data) / "calls.db")
    try:
        (call_id,) = db.execute("SELECT max(id) FROM calls").fetchone()
    finally:
        db.close()
    assert call_id != story.call_id
    return call_id


def test_a_session_opened_before_a_rekey_must_log_in_again(story, tmp_path):
    before = story.client()  # alice, her recording key unlocked at login
    assert before.get("/calls/%d" % story.call_id).status_code == 200
    old_key = KeyStore(story.data).unlock("alice", PASSWORD)  # what that session holds

    _rekey(story, tmp_path)
    new_call = _record_another_call(story, tmp_path)
    try:
        # What the old session would have: a key that does not open the new recording.
        row = story.store.for_call(new_call)
        with pytest.raises((TamperError, NotGrantedError)):
            story.store.read_verified(row["id"], old_key)
    finally:
        old_key.forget()

    # The old session is sent to log in again, told why; its audio is refused.
    resp = before.get("/calls/%d" % new_call)
    assert resp.status_code == 302
    assert "rekeyed=1" in resp.location and "/login" in resp.location
    login = before.get(resp.location).get_data(as_text=True)
    assert 'id="rekeyed"' in login and "keys were replaced" in login
    assert before.get("/calls/%d/audio?p=x" % new_call).status_code == 401
    web = story.app.extensions["linekeeper"]
    assert not web.sessions.memory, "the old session's key is still held"
    ends = story.audit.entries(limit=50, action="logout")
    assert [(e.actor, e.target, e.details["reason"].split(":")[0]) for e in ends] == [
        ("system", "alice", "rekey")
    ]

    # Logged in again, the new recording plays (audited as ever).
    after = story.client()
    audio = after.get(audio_url(after, new_call))
    assert audio.status_code == 200 and len(audio.data) > 1000
    assert [e.target for e in story.audit.entries(limit=50, action="playback")] == [str(new_call)]
    # And the new session is not ended again.
    assert after.get("/calls/%d" % new_call).status_code == 200


def test_an_idle_session_is_ended_by_the_sweep_without_a_request(story, tmp_path):
    story.client()
    web = story.app.extensions["linekeeper"]
    (opened,) = web.sessions.memory
    _rekey(story, tmp_path)
    web.sweep()
    assert not web.sessions.memory
    assert web.db.one("SELECT count(*) AS n FROM sessions WHERE id_hash = ?", (opened,))["n"] == 0


class _Key:
    """Stands in for a RecordingKey: its admin public key, and whether it was wiped."""

    def __init__(self, public):
        self.public_key = public
        self.forgotten = False

    def forget(self):
        self.forgotten = True


def test_sessions_of_other_keys_end_once_and_their_keys_are_wiped(box, people):
    sessions = box.web.sessions
    sessions.clear_all()  # the people's own sessions: only those made here
    old, new = _Key(b"o" * 32), _Key(b"n" * 32)
    old_cookie, _ = sessions.create("sam", old)
    sessions.create("sue", new)
    keyless_cookie, _ = sessions.create("ivan", None, b"o" * 32)  # an installer: no key, old keys
    before_keys, _ = sessions.create("audrey", None, None)  # opened before the box had keys
    assert sorted(sessions.end_other_keys(b"n" * 32)) == ["ivan", "sam"]
    assert sessions.end_other_keys(b"n" * 32) == []  # once
    assert old.forgotten and not new.forgotten
    assert sessions.load(old_cookie) == (None, False)
    assert sessions.end_reason(old_cookie) == "rekey" and sessions.end_reason(old_cookie) is None
    assert sessions.end_reason(keyless_cookie) == "rekey"
    assert sessions.load(before_keys)[0] is not None


def test_the_keys_in_force_are_read_again_only_when_the_key_store_changes(tmp_path):
    store = KeyStore(tmp_path, Argon2Params(memory_kib=8, iterations=1))
    keys = KeysInForce(store)
    assert keys.current() is None  # no keys yet
    store.initialise("alice", PASSWORD)
    first = keys.current()
    assert first == store.public_key()
    reads = []
    real = store.public_key
    store.public_key = lambda: reads.append(1) or real()
    assert keys.current() == first and reads == []  # unchanged file: one stat, no read
    store.path.write_bytes(b"not a key store")  # damaged: the last keys read stand
    assert keys.current() == first and reads == [1]
