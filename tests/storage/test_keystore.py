import base64
import json
import os
import pickle
import re
import stat
import threading

import pytest

from firmware.errors import (
    AlreadyInitialisedError,
    KeyForgottenError,
    KeySlotError,
    LinekeeperError,
    NotInitialisedError,
    RecoveryKeyFormatError,
    TamperError,
    WeakPasswordError,
    WrongPasswordError,
)
from firmware.storage import crypto, fsutil, keystore
from firmware.storage.keystore import Argon2Params, KeyStore, RecordingKey, parse_recovery_key

CHEAP = Argon2Params(memory_kib=8, iterations=1, lanes=1)
RECOVERY_FORMAT = re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$")


class Secrets:
    """Every secret the key store handles, captured so a test can look for it on disk."""

    def __init__(self):
        self.private_keys = []
        self.texts = []


@pytest.fixture
def secrets(monkeypatch):
    found = Secrets()
    real = crypto.new_key_pair

    def spy():
        private, public = real()
        found.private_keys.append(private)
        return private, public

    monkeypatch.setattr(crypto, "new_key_pair", spy)
    return found


@pytest.fixture
def store(tmp_path):
    return KeyStore(tmp_path, kdf_params=CHEAP)


@pytest.fixture
def ready(store):
    """An initialised store with alice's slot; returns (store, recovery key)."""
    return store, store.initialise("alice", "correct horse")


def wrap_for(store, context=b"rec-1"):
    data_key = crypto.new_data_key()
    return data_key, crypto.wrap_data_key(data_key, store.public_key(), context)


def opens(store, unlocked, context=b"rec-1"):
    data_key, wrapped = wrap_for(store, context)
    return unlocked.unwrap(wrapped, context) == data_key


# --- initialisation ---------------------------------------------------------------------


def test_uninitialised_store(store):
    assert not store.is_initialised
    for call in (
        store.public_key,
        store.slots,
        lambda: store.unlock("alice", "correct horse"),
        lambda: store.unlock_recovery("A" * 32),
        lambda: store.remove_slot("alice"),
    ):
        with pytest.raises(NotInitialisedError):
            call()


def test_initialise(ready, tmp_path):
    store, recovery = ready
    assert store.is_initialised
    assert RECOVERY_FORMAT.match(recovery)
    assert len(store.public_key()) == 32
    assert store.slots() == ["alice"]
    keys = tmp_path / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(os.listdir(keys)) == [".lock", "keystore.json"]


def test_initialise_refuses_twice(ready, tmp_path):
    store, _ = ready
    before = store.path.read_bytes()
    for again in (store, KeyStore(tmp_path, kdf_params=CHEAP)):
        with pytest.raises(AlreadyInitialisedError, match="already has recording keys"):
            again.initialise("bob", "another password")
    assert store.path.read_bytes() == before


def test_initialise_checks_its_input(store):
    with pytest.raises(WeakPasswordError):
        store.initialise("alice", "short")
    for bad_user in ("", " alice", "al\nice", "x" * 65):
        with pytest.raises(KeySlotError):
            store.initialise(bad_user, "correct horse")
    assert not store.is_initialised


def test_errors_are_in_the_hierarchy():
    assert issubclass(WrongPasswordError, LinekeeperError) and issubclass(WrongPasswordError, ValueError)
    assert issubclass(RecoveryKeyFormatError, WrongPasswordError)
    assert issubclass(AlreadyInitialisedError, LinekeeperError)
    assert issubclass(NotInitialisedError, LinekeeperError)


# --- unlocking ---------------------------------------------------------------------------


def test_unlock_with_the_right_password(ready):
    store, _ = ready
    with store.unlock("alice", "correct horse") as unlocked:
        assert unlocked.public_key == store.public_key()
        assert opens(store, unlocked)
    assert unlocked.forgotten


def test_unlock_refuses_wrong_password_and_unknown_user(ready):
    store, _ = ready
    for user, password in (
        ("alice", "correct horsE"),
        ("alice", ""),
        ("bob", "correct horse"),
        ("", "correct horse"),
        ("alice\n", "correct horse"),
    ):
        with pytest.raises(WrongPasswordError, match="wrong user name or password"):
            store.unlock(user, password)


def test_password_is_unicode_normalised(store):
    store.initialise("zoë", "caf\u00e9 au lait")
    store.unlock("zoe\u0308", "cafe\u0301 au lait").forget()


def test_forget_wipes_and_disables_the_key(ready):
    store, _ = ready
    unlocked = store.unlock("alice", "correct horse")
    _, wrapped = wrap_for(store)
    unlocked.forget()
    unlocked.forget()  # harmless twice
    with pytest.raises(KeyForgottenError):
        unlocked.unwrap(wrapped, b"rec-1")
    with pytest.raises(KeyForgottenError):
        store.add_slot("bob", "bob's password", unlocked)


def test_forget_overwrites_the_bytearray_it_was_given():
    private, public = crypto.new_key_pair()
    buffer = bytearray(private)
    key = RecordingKey(buffer, public)
    assert private.hex() not in repr(key)
    key.forget()
    assert buffer == bytes(32)
    assert key.forgotten and "forgotten" in repr(key)


def test_recording_key_is_never_pickled(ready):
    store, _ = ready
    with store.unlock("alice", "correct horse") as unlocked:
        with pytest.raises(TypeError):
            pickle.dumps(unlocked)


# --- recovery key ----------------------------------------------------------------------------


def test_unlock_with_the_recovery_key_as_people_type_it(ready):
    store, recovery = ready
    for typed in (
        recovery,
        recovery.lower(),
        recovery.replace("-", " "),
        recovery.replace("-", ""),
        "  " + recovery + "\n",
        recovery.replace("O", "0").replace("I", "1"),
    ):
        with store.unlock_recovery(typed) as unlocked:
            assert opens(store, unlocked)


def test_every_single_character_typo_is_caught(ready):
    _, recovery = ready
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    for pos, char in enumerate(recovery):
        if char == "-":
            continue
        for other in letters.replace(char, ""):
            with pytest.raises(RecoveryKeyFormatError, match="typo"):
                parse_recovery_key(recovery[:pos] + other + recovery[pos + 1 :])


def test_swapped_groups_are_caught(ready):
    _, recovery = ready
    groups = recovery.split("-")
    groups[0], groups[1] = groups[1], groups[0]
    if groups[0] != groups[1]:
        with pytest.raises(RecoveryKeyFormatError):
            parse_recovery_key("-".join(groups))


@pytest.mark.parametrize(
    "typed, message",
    [
        ("ABCD-EFGH", "8 groups of 4"),
        ("ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-456", "8 groups of 4"),
        ("ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-456!", "letters A-Z and digits 2-7"),
    ],
)
def test_malformed_recovery_keys(typed, message):
    with pytest.raises(RecoveryKeyFormatError, match=message):
        parse_recovery_key(typed)


def test_recovery_key_has_128_bits(ready):
    _, recovery = ready
    assert len(parse_recovery_key(recovery)) == 16


def test_another_boxs_recovery_key_is_wrong(ready, tmp_path):
    store, _ = ready
    other = KeyStore(tmp_path / "other", kdf_params=CHEAP).initialise("alice", "correct horse")
    with pytest.raises(WrongPasswordError, match="not the recovery key"):
        store.unlock_recovery(other)


def test_new_recovery_key_replaces_the_old(ready):
    store, old = ready
    with store.unlock("alice", "correct horse") as unlocked:
        new = store.new_recovery_key(unlocked)
    assert RECOVERY_FORMAT.match(new) and new != old
    with pytest.raises(WrongPasswordError):
        store.unlock_recovery(old)
    store.unlock_recovery(new).forget()


# --- slots ---------------------------------------------------------------------------------


def test_add_and_remove_slots(ready):
    store, _ = ready
    with store.unlock("alice", "correct horse") as unlocked:
        store.add_slot("bob", "bob's password", unlocked)
        store.add_slot("carol", "carol's password", unlocked)
    assert store.slots() == ["alice", "bob", "carol"]
    with store.unlock("bob", "bob's password") as unlocked:
        assert opens(store, unlocked)
    store.remove_slot("alice")
    assert store.slots() == ["bob", "carol"]
    with pytest.raises(WrongPasswordError):
        store.unlock("alice", "correct horse")
    store.unlock("carol", "carol's password").forget()


def test_add_slot_refuses_duplicates_and_weak_passwords(ready):
    store, _ = ready
    with store.unlock("alice", "correct horse") as unlocked:
        with pytest.raises(KeySlotError, match="already has a key slot"):
            store.add_slot("alice", "another password", unlocked)
        with pytest.raises(WeakPasswordError, match="at least 8"):
            store.add_slot("bob", "1234567", unlocked)
    assert store.slots() == ["alice"]


def test_add_slot_refuses_another_boxs_key(ready, tmp_path):
    store, _ = ready
    other = KeyStore(tmp_path / "other", kdf_params=CHEAP)
    other.initialise("mallory", "mallory's password")
    with other.unlock("mallory", "mallory's password") as foreign:
        with pytest.raises(KeySlotError, match="another box"):
            store.add_slot("mallory", "mallory's password", foreign)
    assert store.slots() == ["alice"]


def test_the_last_password_slot_stays(ready):
    store, recovery = ready
    with pytest.raises(KeySlotError, match="last password slot"):
        store.remove_slot("alice")
    with pytest.raises(KeySlotError, match="no key slot"):
        store.remove_slot("bob")
    assert store.slots() == ["alice"]
    store.unlock_recovery(recovery).forget()


def test_change_password(ready):
    store, _ = ready
    store.change_password("alice", "correct horse", "battery staple")
    with pytest.raises(WrongPasswordError):
        store.unlock("alice", "correct horse")
    store.unlock("alice", "battery staple").forget()


def test_change_password_refuses_wrong_old_or_weak_new(ready):
    store, _ = ready
    before = store.path.read_bytes()
    with pytest.raises(WrongPasswordError):
        store.change_password("alice", "not it at all", "battery staple")
    with pytest.raises(WeakPasswordError):
        store.change_password("alice", "correct horse", "short")
    assert store.path.read_bytes() == before


def test_forgotten_password_is_reset_with_the_recovery_key(ready):
    store, recovery = ready
    with store.unlock_recovery(recovery) as unlocked:
        store.reset_password("alice", "a brand new one", unlocked)
        with pytest.raises(KeySlotError):
            store.reset_password("nobody", "a brand new one", unlocked)
    store.unlock("alice", "a brand new one").forget()


def test_slot_moved_to_another_user_does_not_open(ready):
    store, _ = ready
    with store.unlock("alice", "correct horse") as unlocked:
        store.add_slot("bob", "bob's password", unlocked)
    document = json.loads(store.path.read_text())
    for slot in document["slots"]:
        if slot["user"] == "alice":
            slot["user"] = "eve"
    fsutil.atomic_write(store.path, json.dumps(document).encode())
    with pytest.raises(WrongPasswordError):
        store.unlock("eve", "correct horse")


def test_replaced_public_key_is_reported_as_tampering(ready):
    store, _ = ready
    document = json.loads(store.path.read_text())
    document["public_key"] = base64.b64encode(crypto.new_key_pair()[1]).decode()
    fsutil.atomic_write(store.path, json.dumps(document).encode())
    with pytest.raises(TamperError, match="does not match"):
        store.unlock("alice", "correct horse")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: "{not json",
        lambda d: json.dumps({**d, "version": 99}),
        lambda d: json.dumps({**d, "public_key": "AAAA"}),
        lambda d: json.dumps(
            {**d, "slots": [{**s, "kdf": {**s["kdf"], "memory_kib": 1 << 30}} for s in d["slots"]]}
        ),
        lambda d: json.dumps({**d, "slots": [{**s, "kind": "magic"} for s in d["slots"]]}),
        lambda d: json.dumps({**d, "slots": [{**s, "nonce": "!"} for s in d["slots"]]}),
    ],
)
def test_damaged_key_store_is_reported(ready, damage):
    store, _ = ready
    fsutil.atomic_write(store.path, damage(json.loads(store.path.read_text())).encode())
    with pytest.raises(TamperError, match="damaged"):
        store.unlock("alice", "correct horse")


def test_concurrent_slot_changes_are_all_kept(ready):
    store, _ = ready
    with store.unlock("alice", "correct horse") as unlocked:
        threads = [
            threading.Thread(target=store.add_slot, args=("user%d" % i, "password %d" % i, unlocked))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert store.slots() == sorted(["alice"] + ["user%d" % i for i in range(8)])


def test_a_crash_mid_change_leaves_the_old_slots(ready, monkeypatch):
    store, _ = ready
    before = store.path.read_bytes()

    def power_cut(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", power_cut)
    with store.unlock("alice", "correct horse") as unlocked:
        with pytest.raises(OSError):
            store.add_slot("bob", "bob's password", unlocked)
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert sorted(os.listdir(store.keys_dir)) == [".lock", "keystore.json"]


# --- nothing secret on disk -------------------------------------------------------------------


def encodings(secret):
    """The forms a secret could take in a file: raw, hex, base64, base32."""
    forms = {
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        base64.b32encode(secret),
    }
    return {f.rstrip(b"=") for f in forms}


def test_no_secret_is_ever_written_in_clear(tmp_path, secrets):
    store = KeyStore(tmp_path, kdf_params=CHEAP)
    passwords = ["correct horse", "bob's password", "battery staple", "reset by recovery"]
    recovery = store.initialise("alice", passwords[0])
    with store.unlock("alice", passwords[0]) as unlocked:
        store.add_slot("bob", passwords[1], unlocked)
        new_recovery = store.new_recovery_key(unlocked)
    store.change_password("bob", passwords[1], passwords[2])
    with store.unlock_recovery(new_recovery) as unlocked:
        store.reset_password("alice", passwords[3], unlocked)

    needles = set()
    for private in secrets.private_keys:
        needles |= encodings(private)
    for key_text in (recovery, new_recovery):
        needles |= encodings(parse_recovery_key(key_text))
        needles |= {key_text.encode(), key_text.replace("-", "").encode()}
    for password in passwords:
        needles |= {password.encode("utf-8"), password.encode("utf-16-le")}
    # The admin pair, and a user pair for each slot made: alice, bob, bob again, alice again.
    assert len(secrets.private_keys) == 5

    files = [os.path.join(root, name) for root, _, names in os.walk(tmp_path) for name in names]
    assert files
    for path in files:
        content = open(path, "rb").read()
        for needle in needles:
            assert needle not in content, (path, needle)


def test_default_cost_is_argon2id_64_mib_3_passes_1_lane(tmp_path, monkeypatch):
    """The one test that pays the real price (about half a second here)."""
    seen = []
    real = keystore.Argon2id

    def spy(**kwargs):
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(keystore, "Argon2id", spy)
    store = KeyStore(tmp_path)
    assert store.kdf_params == keystore.DEFAULT_KDF == Argon2Params(65536, 3, 1)
    store.initialise("alice", "correct horse")
    store.unlock("alice", "correct horse").forget()
    assert real.__module__ == "cryptography.hazmat.primitives.kdf.argon2" and real.__name__ == "Argon2id"
    assert len(seen) == 2
    for kwargs in seen:
        assert (kwargs["memory_cost"], kwargs["iterations"], kwargs["lanes"], kwargs["length"]) == (
            65536,
            3,
            1,
            32,
        )
        assert len(kwargs["salt"]) == 16
    slot = [s for s in json.loads(store.path.read_text())["slots"] if s["kind"] == "password"][0]
    assert slot["kdf"]["name"] == "argon2id"
    assert (slot["kdf"]["memory_kib"], slot["kdf"]["iterations"], slot["kdf"]["lanes"]) == (65536, 3, 1)


def test_slots_keep_the_cost_they_were_made_with(ready, tmp_path):
    store, _ = ready
    dearer = KeyStore(tmp_path, kdf_params=Argon2Params(memory_kib=16, iterations=2, lanes=1))
    with dearer.unlock("alice", "correct horse") as unlocked:
        dearer.add_slot("bob", "bob's password", unlocked)
    costs = {
        s["user"]: (s["kdf"].get("memory_kib"), s["kdf"].get("iterations"))
        for s in json.loads(store.path.read_text())["slots"]
    }
    assert costs == {"alice": (8, 1), "bob": (16, 2), None: (None, None)}
    store.unlock("bob", "bob's password").forget()


@pytest.mark.parametrize(
    "kwargs",
    [dict(memory_kib=4), dict(iterations=0), dict(lanes=0), dict(memory_kib=2 << 20), dict(iterations=1.5)],
)
def test_argon2_params_are_bounded(kwargs):
    with pytest.raises(ValueError):
        Argon2Params(**kwargs)
