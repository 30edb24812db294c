"""`linekeeper verify --password-file` after `keystore restore --accept-lost-lines`: a recording
of a line whose key the backup lacked cannot be opened, and says so, apart from the recordings
altered or damaged (docs/keys.md, docs/recordings.md)."""

import os

from firmware.storage.keystore import Argon2Params, KeyStore

from support.cli import record_calls, run_linekeeper, secret_file

PASSWORD = "lost line owner password 3"
CALL = {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0}


def record(data, synth, start):
    record_calls(data, synth, [CALL], start)


def test_a_recording_of_a_line_whose_key_was_lost_is_not_called_altered(tmp_path, synth):
    data = str(tmp_path / "data")
    recovery = KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    pw = secret_file(tmp_path, "pw", PASSWORD)
    early = tmp_path / "early.json"
    # The copy made before line 1 had its key, then line 1 records with the key made since.
    assert run_linekeeper("keystore", "backup", early, "--data-dir", data)[0] == 0
    record(data, synth, "2026-03-02T09:00:00Z")
    os.unlink(os.path.join(data, "keys", "keystore.json"))
    recovery_file = secret_file(tmp_path, "recovery.txt", recovery)
    put_back = ("keystore", "restore", early, "--data-dir", data, "--recovery-key-file", recovery_file)
    assert run_linekeeper(*put_back, "--accept-lost-lines")[0] == 0

    status, out, err = run_linekeeper("verify", "--data-dir", data, "--password-file", pw, "--user", "admin")
    assert "altered or damaged" not in out, out
    [line] = out.splitlines()
    assert line.startswith("recording ") and (
        ": line 1's recording key is not in the key store (the key store backup put back at audit "
        "entry " in line
    )
    assert "it cannot be opened, and is not known to be altered" in line
    # Counted apart, not as a problem found; not intact either, so not exit 0.
    assert status == 1
    assert err.strip().splitlines()[-1] == (
        "no problem found, but 1 recording cannot be opened: its line's key is not in the key store"
    )

    # One the box makes since, with line 1's new key, opens and is checked as any.
    record(data, synth, "2026-03-03T09:00:00Z")
    status, out, err = run_linekeeper("verify", "--data-dir", data, "--password-file", pw, "--user", "admin")
    assert status == 1 and out.splitlines() == [line]

    # A recording altered since is named so, lost key or not: its size and SHA-256 are checked first.
    rec = os.path.join(data, "recordings")
    oldest = line.split()[1] + ".lkrec"
    with open(os.path.join(rec, oldest), "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    status, out, err = run_linekeeper("verify", "--data-dir", data, "--password-file", pw, "--user", "admin")
    assert status == 1 and "file changed since it was written" in out and "key store" not in out
