"""Issue 19: with the card and a supervisor's password for line 1 only, no line-2
recording decrypts -- the box wraps each line's recordings to that line's key."""

import pytest

from firmware.errors import NotGrantedError, TamperError
from firmware.storage import crypto
from firmware.storage.keystore import KeyStore
from tests.support.recording_lab import CHEAP_KDF, PASSWORD
from tests.support.recording_lab import TWO_LINES_TWICE as CALLS


def test_a_line_1_password_and_the_card_open_no_line_2_recording(lab):
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    keys = KeyStore(data_dir, kdf_params=CHEAP_KDF)
    with keys.unlock("admin", PASSWORD) as admin:
        keys.add_slot("sam", "sam's line-1 password", admin, lines=[1])
    lab.run(lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir)

    store = lab.store(data_dir)
    try:
        rows = [r for r in store.all() if r["state"] == "complete"]
        by_line = {1: [], 2: []}
        for row in rows:
            by_line[store.line_of(row)].append(row)
        assert len(by_line[1]) == 2 and len(by_line[2]) == 2, rows
        # Each line's recordings are wrapped to that line's own public key.
        line_keys = keys.line_public_keys()
        assert sorted(line_keys) == [1, 2] and line_keys[1] != line_keys[2]

        with keys.unlock("sam", "sam's line-1 password") as sam:
            for row in by_line[1]:
                data, complete = store.open_audio(row["id"], sam)
                assert complete and data
            for row in by_line[2]:
                with pytest.raises(NotGrantedError):
                    store.open_audio(row["id"], sam)
                # Whatever line the attacker says it is on, line 1's key does not open it.
                with pytest.raises(TamperError):
                    sam.unwrap(row["wrapped_key"], store.key_context(row), line=1)
            # Every private key sam's slot yields, tried directly on the wrapped data keys.
            for row in by_line[2]:
                for private in (sam.line_private(1),):
                    with pytest.raises(TamperError):
                        crypto.unwrap_data_key(row["wrapped_key"], private, store.key_context(row))
            assert store.verify(sam) == []  # line 1 authenticated; line 2 checked without the key

        # The admin (and so the recovery key) opens every line.
        with keys.unlock("admin", PASSWORD) as admin:
            for row in rows:
                assert store.open_audio(row["id"], admin)[1]
    finally:
        store.close()


def test_a_box_from_before_line_keys_keeps_its_recordings_and_records_per_line(lab, monkeypatch):
    """Migration: recordings wrapped to the box key (as before line keys) stay readable by
    the admin and recovery keys; the same box's new recordings go to their line's key."""
    from firmware.box import Box

    data_dir = lab.init_data_dir(lab.tmp_path / "old-box")
    keys = KeyStore(data_dir, kdf_params=CHEAP_KDF)
    with keys.unlock("admin", PASSWORD) as admin:
        recovery = keys.new_recovery_key(admin)
    with monkeypatch.context() as old_firmware:
        old_firmware.setattr(Box, "_line_public_key", lambda self, line: None)  # no line keys yet
        old_firmware.setattr(Box, "_pin_line_keys", lambda self: None)  # (nor made at the start)
        lab.run(lab.load(lab.scenario_doc(CALLS[:2], lines=2)), data_dir)
    assert keys.line_public_keys() == {}
    before = {r["id"] for r in lab.rows(data_dir)}
    lab.run(lab.load(lab.scenario_doc(CALLS[2:], lines=2)), data_dir)
    assert sorted(keys.line_public_keys()) == [1, 2]
    with keys.unlock("admin", PASSWORD) as admin:
        keys.add_slot("sam", "sam's line-1 password", admin, lines=[1])
    store = lab.store(data_dir)
    try:
        rows = [r for r in store.all() if r["state"] == "complete"]
        assert len(rows) == 4 and len(before) == 2
        for opener in (lambda: keys.unlock("admin", PASSWORD), lambda: keys.unlock_recovery(recovery)):
            with opener() as key:
                assert all(store.open_audio(r["id"], key)[1] for r in rows)
        with keys.unlock("sam", "sam's line-1 password") as sam:
            for row in rows:
                if row["id"] in before or store.line_of(row) == 2:
                    with pytest.raises((NotGrantedError, TamperError)):
                        store.open_audio(row["id"], sam)  # the box key's, or line 2's
                else:
                    assert store.open_audio(row["id"], sam)[1]
    finally:
        store.close()
    status, out, err = lab.verify(data_dir)
    assert status == 0, out + err
