"""`linekeeper export` and `linekeeper sar` after `keystore restore --accept-lost-lines`: a
recording of a line whose key the backup lacked is refused as one that cannot be opened (its
line's key is not in the key store), not as one altered or damaged, and the refusal is audited
as any other (docs/keys.md)."""

import os

from firmware.box import open_audit
from firmware.storage.keystore import Argon2Params, KeyStore

from support.cli import record_calls, run_linekeeper, secret_file

PASSWORD = "lost line owner password 4"
NUMBER = "01632960123"
CALL = {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0, "caller_id": {"number": NUMBER}}
LOST = "line 1's recording key is not in the key store"


def lost_line_box(tmp_path, synth):
    """A box whose key store was put back from a backup made before line 1 had a key, after
    line 1 recorded call 1: ``(data dir, password file)``."""
    data = str(tmp_path / "data")
    recovery = KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    early = tmp_path / "early.json"
    assert run_linekeeper("keystore", "backup", early, "--data-dir", data)[0] == 0
    record_calls(data, synth, [CALL])
    os.unlink(os.path.join(data, "keys", "keystore.json"))
    recovery_file = secret_file(tmp_path, "recovery.txt", recovery)
    put_back = ("keystore", "restore", early, "--data-dir", data, "--recovery-key-file", recovery_file)
    assert run_linekeeper(*put_back, "--accept-lost-lines")[0] == 0
    return data, secret_file(tmp_path, "pw", PASSWORD)


def last_entry(data, action):
    with open_audit(data) as audit:
        return audit.entries(limit=1, action=action)[0]


def test_an_export_of_a_recording_whose_line_key_was_lost_says_so(tmp_path, synth):
    data, pw = lost_line_box(tmp_path, synth)
    out = tmp_path / "call-1.wav"
    args = ["export", "1", "--out", out, "--data-dir", data, "--password-file", pw]
    status, _, err = run_linekeeper(*args, "--reason", "complaint ref 1234")
    assert status != 0 and not out.exists()
    assert "altered" not in err.replace("not known to be altered", "") and "damaged" not in err, err
    assert "call 1 not exported: recording " in err and LOST in err
    assert "it cannot be opened, and is not known to be altered" in err
    entry = last_entry(data, "export")  # audited as a refusal, as before
    assert entry.actor == "admin" and LOST in entry.details["refused"]


def test_a_subject_access_bundle_with_a_recording_whose_line_key_was_lost_says_so(tmp_path, synth):
    data, pw = lost_line_box(tmp_path, synth)
    out = tmp_path / "smith.zip"
    args = ["sar", "--data-dir", data, "--password-file", pw, "--number", NUMBER, "--out", out]
    args += ["--requester", "Ms Smith", "--recipient", "Ms Smith", "--reason", "subject access request"]
    status, _, err = run_linekeeper(*args)
    assert status != 0 and not out.exists()
    assert "damaged" not in err and "altered or" not in err, err
    assert LOST in err and "it cannot be opened, and is not known to be altered" in err
    # Nothing was released: a bundle cut short by its recording's check is logged nowhere, as
    # one cut short by a recording altered.
    assert "nothing was released" in err
    with open_audit(data) as audit:
        assert not audit.entries(limit=1, action="disclosure")
