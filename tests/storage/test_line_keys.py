"""Per-line key pairs: a supervisor's slot opens the lines granted to them, and no other,
even to someone holding the card and the password (docs/FORMAT.md, key store version 2)."""

import base64
import json
import shutil
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from firmware.errors import KeySlotError, NotGrantedError, TamperError
from firmware.storage import crypto, keystore
from firmware.storage.keystore import ALL_LINES, Argon2Params, KeyStore

CHEAP = Argon2Params(memory_kib=8, iterations=1, lanes=1)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "format"


@pytest.fixture
def box(tmp_path):
    """A store with admin ``alice`` (every line) and supervisor ``sam`` (line 1 only)."""
    store = KeyStore(tmp_path, kdf_params=CHEAP)
    recovery = store.initialise("alice", "correct horse")
    with store.unlock("alice", "correct horse") as admin:
        store.add_slot("sam", "sam's password", admin, lines=[1])
    return store, recovery


def record(store, line, rid):
    """A data key wrapped as the recorder wraps it: to the line's public key."""
    data_key = crypto.new_data_key()
    context = b"%s\x00call=1\x00line=%d" % (rid, line)
    return data_key, crypto.wrap_data_key(data_key, store.line_public_key(line), context), context


def test_a_line_1_supervisor_opens_line_1_and_not_line_2(box):
    store, _ = box
    key1, wrapped1, ctx1 = record(store, 1, b"r1")
    _, wrapped2, ctx2 = record(store, 2, b"r2")
    with store.unlock("sam", "sam's password") as sam:
        assert sam.granted == (1,) and not sam.holds_all
        assert sam.unwrap(wrapped1, ctx1, line=1) == key1
        with pytest.raises(NotGrantedError):
            sam.unwrap(wrapped2, ctx2, line=2)
        # Claiming the recording is on line 1 does not help: line 1's key is not line 2's.
        with pytest.raises(TamperError):
            sam.unwrap(wrapped2, ctx2, line=1)


def test_the_card_and_the_line_1_password_hold_no_key_that_opens_line_2(box):
    """Done by hand, as an attacker with the card would: every key sam's password leads to
    is tried on line 2's wrapped data key, and none opens it."""
    store, _ = box
    _, wrapped2, ctx2 = record(store, 2, b"r2")
    doc = json.loads(store.path.read_text())
    slot = next(s for s in doc["slots"] if s["user"] == "sam")
    kdf = slot["kdf"]
    stretched = keystore._argon2(
        b"sam's password",
        base64.b64decode(kdf["salt"]),
        Argon2Params(kdf["memory_kib"], kdf["iterations"], kdf["lanes"]),
    )
    slot_key = keystore._split_login_key(stretched)[0]
    user_private = ChaCha20Poly1305(slot_key).decrypt(
        base64.b64decode(slot["nonce"]), base64.b64decode(slot["sealed"]), keystore._slot_aad(slot)
    )
    reachable = [user_private]
    for grant in doc["grants"]:
        for line in {grant["line"], 1, 2, ALL_LINES}:
            try:
                reachable.append(
                    crypto.unwrap_data_key(
                        base64.b64decode(grant["wrapped"]),
                        user_private,
                        keystore.grant_context(grant["user"], line),
                    )
                )
            except TamperError:
                pass
    for entry_line, entry in doc["lines"].items():
        for key in list(reachable):
            try:
                reachable.append(
                    crypto.unwrap_data_key(
                        base64.b64decode(entry["wrapped"]), key, keystore.line_key_context(int(entry_line))
                    )
                )
            except TamperError:
                pass
    reachable = list(dict.fromkeys(reachable))
    assert len(reachable) == 2  # sam's own key and line 1's: nothing else opens
    assert crypto.public_key_of(reachable[1]) == store.line_public_key(1)
    for key in reachable:
        for context in (ctx2, b"r2"):
            with pytest.raises(TamperError):
                crypto.unwrap_data_key(wrapped2, key, context)
    # And the slot key does not open anyone else's slot.
    for other in doc["slots"]:
        if other is not slot:
            with pytest.raises(InvalidTag):
                ChaCha20Poly1305(slot_key).decrypt(
                    base64.b64decode(other["nonce"]),
                    base64.b64decode(other["sealed"]),
                    keystore._slot_aad(other),
                )


def test_admin_and_recovery_keys_open_every_line(box):
    store, recovery = box
    recorded = [record(store, line, b"r%d" % line) for line in (1, 2, 3)]
    for opener in (lambda: store.unlock("alice", "correct horse"), lambda: store.unlock_recovery(recovery)):
        with opener() as key:
            assert key.holds_all and key.granted == ALL_LINES
            for line, (data_key, wrapped, ctx) in zip((1, 2, 3), recorded, strict=True):
                assert key.unwrap(wrapped, ctx, line=line) == data_key


def test_a_line_key_made_after_an_admin_unlocked_opens_too(box):
    store, _ = box
    with store.unlock("alice", "correct horse") as admin:
        data_key, wrapped, ctx = record(store, 4, b"r4")  # line 4's key is made now
        assert admin.unwrap(wrapped, ctx, line=4) == data_key


def test_granting_follows_the_lines(box):
    store, recovery = box
    data_key2, wrapped2, ctx2 = record(store, 2, b"r2")
    with store.unlock("sam", "sam's password") as sam:
        # A supervisor grants only what their key holds.
        with pytest.raises(KeySlotError, match="line 2 cannot be granted"):
            store.add_slot("tom", "tom's password", sam, lines=[1, 2])
        store.add_slot("tom", "tom's password", sam, lines=[1])
        with pytest.raises(KeySlotError):
            store.add_slot("ann", "ann's password", sam)  # every line: needs the admin key
    with pytest.raises(KeySlotError, match="needs an unlocked key"):
        store.set_lines("sam", [1, 2])
    with store.unlock_recovery(recovery) as admin:
        store.set_lines("sam", [1, 2], admin)
    assert store.granted_lines("sam") == (1, 2)
    with store.unlock("sam", "sam's password") as sam:
        assert sam.unwrap(wrapped2, ctx2, line=2) == data_key2
    store.set_lines("sam", [2])  # taking a line away needs no key
    with store.unlock("sam", "sam's password") as sam:
        assert sam.lines == (2,)
        assert sam.unwrap(wrapped2, ctx2, line=2) == data_key2


def test_a_new_password_keeps_the_lines_and_the_old_one_opens_nothing(box):
    store, _ = box
    old = store.path.read_bytes()
    store.change_password("sam", "sam's password", "sam's new password")
    assert store.granted_lines("sam") == (1,)
    with store.unlock("sam", "sam's new password") as sam:
        assert sam.lines == (1,)
    # The slot was remade with a new user key pair: the old password opens no grant now.
    with pytest.raises(Exception):  # noqa: B017 - WrongPasswordError
        store.unlock("sam", "sam's password")
    assert json.loads(old)["slots"] != json.loads(store.path.read_bytes())["slots"]


def test_a_removed_user_leaves_no_grant(box):
    store, _ = box
    store.remove_slot("sam")
    assert [g for g in json.loads(store.path.read_text())["grants"] if g["user"] == "sam"] == []


def test_a_grant_moved_to_another_user_does_not_open(box):
    store, _ = box
    with store.unlock("alice", "correct horse") as admin:
        store.add_slot("tom", "tom's password", admin, lines=[2])
    doc = json.loads(store.path.read_text())
    tom = next(g for g in doc["grants"] if g["user"] == "tom")
    tom["user"] = "sam"  # tom's line 2 handed to sam in the file
    store.path.write_text(json.dumps(doc))
    with pytest.raises(TamperError):
        store.unlock("sam", "sam's password")


def test_a_replaced_line_public_key_is_tampering(box):
    store, _ = box
    store.line_public_key(2)
    doc = json.loads(store.path.read_text())
    doc["lines"]["2"]["public_key"] = base64.b64encode(crypto.new_key_pair()[1]).decode()
    store.path.write_text(json.dumps(doc))
    with store.unlock("alice", "correct horse") as admin:
        with pytest.raises(TamperError):
            admin.line_private(2)


def test_a_version_1_store_migrates_without_a_password(tmp_path):
    """A data dir from before line keys: its recordings (wrapped to the box key) stay
    readable by the admin and recovery key; new line keys are made with no password."""
    ka = json.loads((FIXTURES / "known_answers.json").read_text())["keystore"]
    (tmp_path / "keys").mkdir(mode=0o700)
    shutil.copy(FIXTURES / ka["file"], tmp_path / "keys" / "keystore.json")
    store = KeyStore(tmp_path, kdf_params=CHEAP)
    old_data_key = crypto.new_data_key()
    old_wrapped = crypto.wrap_data_key(old_data_key, store.public_key(), b"old")
    line_public = store.line_public_key(1)  # the recorder's first call on line 1
    assert json.loads(store.path.read_text())["version"] == 2
    new_key, new_wrapped, ctx = record(store, 1, b"new")
    assert store.line_public_key(1) == line_public
    with store.unlock(ka["user"], ka["password"]) as admin:  # a version 1 slot: every line
        assert admin.holds_all
        assert admin.unwrap(old_wrapped, b"old", line=1) == old_data_key  # line key tried, then admin
        assert admin.unwrap(new_wrapped, ctx, line=1) == new_key
        store.add_slot("sam", "sam's password", admin, lines=[2])
    with store.unlock_recovery(ka["recovery_key"]) as recovery:
        assert recovery.unwrap(old_wrapped, b"old", line=1) == old_data_key
    with store.unlock("sam", "sam's password") as sam:
        with pytest.raises(NotGrantedError):
            sam.unwrap(old_wrapped, b"old", line=1)
    with pytest.raises(KeySlotError, match="predates line keys"):
        store.set_lines(ka["user"], [1])


def test_the_start_makes_and_pins_every_lines_key_in_one_write_each(box, monkeypatch):
    """The box's start (docs/audit-writes.md): one write of the key store and one of the pin,
    none at a later start, and a line key that no longer matches its pin is tampering."""
    from firmware import keypin
    from firmware.keypin import RecordingKeyPin
    from firmware.signing import Signer

    store, _ = box
    writes = []
    for module in (keystore, keypin.fsutil):
        real = module.atomic_write
        monkeypatch.setattr(
            module, "atomic_write", lambda p, *a, real=real, **k: writes.append(p) or real(p, *a, **k)
        )
    pin = RecordingKeyPin(store.keys_dir.parent, Signer(bytes(range(32)), "card"))
    line_keys = store.ensure_line_keys(range(1, 5))
    pin.pin_all(store.public_key(), line_keys)
    assert sorted(line_keys) == [1, 2, 3, 4] and len(writes) == 2
    # The recording path finds every key made and pinned: nothing more is written.
    for line in range(1, 5):
        assert store.line_public_key(line) == line_keys[line]
        pin.check_line(line, line_keys[line])
    pin.check(store.public_key())
    again = RecordingKeyPin(store.keys_dir.parent, pin.signer)
    again.pin_all(store.public_key(), store.ensure_line_keys(range(1, 5)))
    assert len(writes) == 2
    with pytest.raises(TamperError):
        again.pin_all(store.public_key(), {**line_keys, 2: line_keys[3]})
