"""Issue 19 acceptance: recordings that hold up as evidence, with the HAT's MCU vault in place.

A box whose device signing key comes from the (simulated) MCU key vault
records two calls to the end and is cut off in the middle of a third, which
the recovery at the next start finishes as ``partial`` (signed as partial).
Each test then alters a fresh copy of the card as someone holding only the
card would - the run directory where the box keeps its copy of the key is
RAM, gone with the power - in one of the ways issue 19 found passing
``linekeeper verify --password-file`` before signatures: every one of them
left all the older checks satisfied (the tests assert that the signature,
binding or accounting check is the only one that objects), and each now
fails ``verify`` naming the problem.

Also here: an export checked with ``verify-export`` in a fresh process that
has only the exported file, its manifest and the box's fingerprint.
"""

import base64
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from firmware.recording.segment import SegmentWriter
from firmware.recording.store import RecordingStore, read_header, wrap_context
from firmware.signing import fingerprint, load_signer, read_public_record
from firmware.storage import crypto
from firmware.storage.audit import GENESIS_HASH, entry_hash
from firmware.storage.fieldseal import load_field_cipher
from firmware.storage.keystore import KeyStore

from support.cardscan import env as _env

T_CUT_US = 9_000_000
CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "out",
        "dial": {"digits": "123"},
        "talk": 5.0,
        "speech": "The birch canoe slid on the smooth planks.",
    },
    {
        "line": 2,
        "at": 0.5,
        "direction": "in",
        "rings": 1,
        "talk": 4.0,
        "speech": "Glue the sheet to the dark blue background.",
    },
    {
        "line": 3,
        "at": 3.0,
        "direction": "in",
        "rings": 1,
        "talk": 12.0,
        "speech": "It's easy to tell the depth of a well.",
    },
]


@pytest.fixture(scope="module")
def mcu():
    """The HAT's MCU: its vault keeps its keys across the box's restarts."""
    return SimMcu(SimClock())


@pytest.fixture(scope="module")
def base(module_lab, mcu, tmp_path_factory):
    """The power-cut image, recovered at the next start: ``(data dir, rows by line, fingerprint)``."""
    lab = module_lab
    run_dir = str(tmp_path_factory.mktemp("run"))
    scenario = lab.load(lab.scenario_doc(CALLS, lines=3))
    live = lab.init_data_dir(lab.tmp_path / "live")
    image = str(lab.tmp_path / "image")
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        lab.run(
            scenario, live, until_us=T_CUT_US + 100_000, snapshots=[(T_CUT_US, image)], vault=McuLink(mcu.bus)
        )
    # The next start: recovery signs the cut recording as partial, with the vault's key.
    store = RecordingStore(image, signer=load_signer(image, vault=McuLink(mcu.bus)))
    try:
        store.recover()
    finally:
        store.close()
    record = read_public_record(image)
    assert record["source"] == "vault"
    assert not os.path.exists(os.path.join(image, "signing.key"))  # nothing on the card
    with _env("LINEKEEPER_RUN_DIR", run_dir):  # the box reads its sealed call log
        calls = {c["id"]: c for c in lab.calls(image)}
    rows = {calls[r["call_id"]]["line"]: r for r in lab.rows(image)}
    assert [rows[line]["state"] for line in (1, 2, 3)] == ["complete", "complete", "partial"]
    fp = fingerprint(record["public_key"])
    status, out, err = verify(lab, image, fp)
    assert status == 0, out + err
    return image, rows, fp, run_dir


@pytest.fixture
def card(base, tmp_path):
    """A fresh copy of the card (without the RAM run directory), rows by line, fingerprint."""
    image, rows, fp, run_dir = base
    data_dir = str(tmp_path / "card")
    shutil.copytree(image, data_dir)
    return data_dir, rows, fp


def verify(lab, data_dir, fp):
    return lab.cli("verify", "--data-dir", data_dir, "--password-file", lab.password_file(), "--key", fp)


def only_problems(out, *expected):
    """Every problem line of ``verify``'s output is one of the expected kinds."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, out
    for line in lines:
        assert any(e in line for e in expected), "unexpected problem: %s" % line
    return lines


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    header_len = 13 + struct.unpack_from(">I", data, 9)[0]
    pos, out = header_len, []
    while pos < len(data):
        n = 4 + struct.unpack_from(">I", data, pos)[0]
        out.append(data[pos : pos + n])
        pos += n
    return data[:header_len], out


def db(data_dir):
    return contextlib.closing(sqlite3.connect(os.path.join(data_dir, "calls.db")))


def set_row(data_dir, rid, **values):
    """Rewrite a row (and its size and SHA-256 to match its file), as a card holder can."""
    path = os.path.join(data_dir, "recordings", rid + ".lkrec")
    with open(path, "rb") as f:
        data = f.read()
    values.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with db(data_dir) as conn, conn:
        conn.execute(
            "UPDATE recordings SET %s WHERE id = ?" % ", ".join("%s = ?" % k for k in values),
            list(values.values()) + [rid],
        )


# ------------------------------------------------------------------ the attacks
def test_truncation_relabelled_partial_fails(lab, mcu, card):
    data_dir, rows, fp = card
    row = rows[1]
    path = os.path.join(data_dir, "recordings", row["file"])
    header, recs = records(path)
    with open(path, "wb") as f:  # cut to 3 records: chunks that all authenticate
        f.write(header + b"".join(recs[:3]))
    set_row(data_dir, row["id"], state="partial", duration_s=3 * row["chunk_ms"] / 1000)
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    only_problems(
        out,
        "recording %s (call %d): its signature does not match" % (row["id"], row["call_id"]),
        "recording %s: the audit trail saw it sealed with another file" % row["id"],
    )
    export_refused(lab, mcu, data_dir, row["call_id"], "signature does not match")


def test_replacement_made_with_the_public_key_fails(lab, card):
    data_dir, rows, fp = card
    row = rows[1]
    path = os.path.join(data_dir, "recordings", row["file"])
    header = read_header(path)
    public_key = KeyStore(data_dir).public_key()  # all the attacker needs
    data_key = crypto.new_data_key()
    wrapped = crypto.wrap_data_key(
        data_key, public_key, wrap_context(row["id"], row["call_id"], header["line"], header)
    )
    header["wrapped_key"] = base64.b64encode(wrapped).decode("ascii")
    os.unlink(path)
    writer = SegmentWriter(
        path, row["id"], data_key, {k: v for k, v in header.items() if k != "recording_id"}, fsync=False
    )
    for _ in range(4):
        writer.write_chunk(os.urandom(200))  # other audio
    writer.close()
    set_row(data_dir, row["id"], wrapped_key=wrapped)
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    only_problems(
        out,
        "recording %s (call %d): its signature does not match" % (row["id"], row["call_id"]),
        "recording %s: the audit trail saw it sealed with another file" % row["id"],
    )


def test_call_id_swap_between_rows_fails(lab, mcu, card):
    data_dir, rows, fp = card
    a, b = rows[1], rows[2]
    with db(data_dir) as conn, conn:
        conn.execute("UPDATE recordings SET call_id = -1 WHERE id = ?", (a["id"],))
        conn.execute("UPDATE recordings SET call_id = ? WHERE id = ?", (a["call_id"], b["id"]))
        conn.execute("UPDATE recordings SET call_id = ? WHERE id = ?", (b["call_id"], a["id"]))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    lines = only_problems(out, "the file was recorded for call", "is not the recording's")
    assert sum("the file was recorded for call" in line for line in lines) == 2, out
    # Playback and export of the swapped call are refused too.
    export_refused(lab, mcu, data_dir, b["call_id"], "the file was recorded for call %d" % a["call_id"])


def test_row_and_file_deleted_fails(lab, card):
    data_dir, rows, fp = card
    row = rows[2]
    os.unlink(os.path.join(data_dir, "recordings", row["file"]))
    os.unlink(os.path.join(data_dir, "recordings", row["id"] + ".lkkey"))  # its key copy too
    with db(data_dir) as conn, conn:
        conn.execute("DELETE FROM recordings WHERE id = ?", (row["id"],))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    only_problems(out, "recording %s: created (audit trail) but it has no row" % row["id"])


def test_a_row_lost_with_its_file_still_there_is_not_called_removed(lab, card):
    """The call log lost a row (its calls.db-wal lost in a power cut), the file and key copy
    still in recordings/: verify said the recording was removed behind the box's back, which
    sent a technician looking for tampering where `linekeeper repair` brings it back."""
    data_dir, rows, fp = card
    row = rows[2]
    with db(data_dir) as conn, conn:
        conn.execute("DELETE FROM recordings WHERE id = ?", (row["id"],))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    assert "behind the box's back" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("recording %s: " % row["id"])]
    assert "still on the card" in line and "the call log lost it" in line, line
    assert "linekeeper repair" in line, line


def test_a_row_marked_deleted_with_its_files_removed_fails(lab, card):
    """The row's state set to 'deleted' (the call log needs no key) hid the deletion: the
    box removes a destroyed recording's row and logs it, so the state proves nothing."""
    data_dir, rows, fp = card
    row = rows[2]
    for name in (row["file"], row["id"] + ".lkkey"):
        os.unlink(os.path.join(data_dir, "recordings", name))
    with db(data_dir) as conn, conn:
        conn.execute("UPDATE recordings SET state = 'deleted' WHERE id = ?", (row["id"],))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    only_problems(
        out, "recording %s: the call log says it was deleted, but no deletion was recorded" % row["id"]
    )


@pytest.mark.parametrize("damage", ["cut", "removed"])
def test_a_sealed_recording_set_back_to_recording_fails_before_the_next_start(lab, card, damage):
    """Set back to 'recording', a sealed recording's file was not checked at all: cut or
    removed, verify said intact until the box's next start."""
    data_dir, rows, fp = card
    row = rows[1]
    path = os.path.join(data_dir, "recordings", row["file"])
    if damage == "cut":
        header, recs = records(path)
        with open(path, "wb") as f:
            f.write(header + b"".join(recs[:3]))
    else:
        os.unlink(path)
    with db(data_dir) as conn, conn:
        conn.execute("UPDATE recordings SET state = 'recording' WHERE id = ?", (row["id"],))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    problems = only_problems(
        out, "recording %s: the audit trail saw it sealed" % row["id"], "recording %s: the file" % row["id"]
    )
    assert any("its row was set back" in p for p in problems), problems


def test_a_wiped_audit_trail_fails(lab, card):
    """Every entry and signature deleted, the head removed: verify said intact."""
    data_dir, rows, fp = card
    conn = sqlite3.connect(os.path.join(data_dir, "audit.db"), isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit")
    conn.execute("DELETE FROM audit_sig")
    conn.close()
    for name in ("audit.head", "audit.head.prev"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(data_dir, name))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    assert "audit trail: it is empty, but the call log holds 3 recordings: the trail was wiped" in out


def test_a_removed_key_record_is_said_not_to_be_a_reason_to_check_nothing(lab, card):
    """signing.pub removed: verify checked no signature and said intact."""
    data_dir, rows, fp = card
    os.unlink(os.path.join(data_dir, "signing.pub"))
    for args in ((), ("--key", fp)):
        status, out, err = lab.cli(
            "verify", "--data-dir", data_dir, "--password-file", lab.password_file(), *args
        )
        assert status == 1, out + err
        assert "signatures: signing.pub (the box's signing key on record) is missing" in out, out


def test_a_removed_key_store_is_named_and_init_is_not_the_advice(lab, card):
    data_dir, rows, fp = card
    os.unlink(os.path.join(data_dir, "keys", "keystore.json"))
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    assert "keys: keys/keystore.json is missing, while the call log holds 3 recordings" in out
    assert "run `linekeeper init`" not in out + err
    # Every command that needs the keys says the same (export, rekey, sar...).
    from firmware.storage.keystore import KeyStore, NotInitialisedError

    with pytest.raises(
        NotInitialisedError, match="restore it from a backup; `linekeeper init` would make new keys"
    ):
        KeyStore(data_dir).unlock("admin", "any password")


def test_audit_rewrite_with_the_card_alone_fails(lab, card):
    data_dir, rows, fp = card
    conn = sqlite3.connect(os.path.join(data_dir, "audit.db"), isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    entries = conn.execute(
        "SELECT seq, wall_us, actor, action, target, details FROM audit ORDER BY seq"
    ).fetchall()
    # Drop the deletion-free story of line 2's recording, re-chain, rewrite the head.
    keep = [e for e in entries if e[4] != "recording:" + rows[2]["id"]]
    assert len(keep) < len(entries)
    conn.execute("DELETE FROM audit")
    conn.execute("DELETE FROM audit_sig")
    prev = GENESIS_HASH
    for seq, (_, wall_us, actor, action, target, details) in enumerate(keep, 1):
        digest = entry_hash(prev, seq, wall_us, actor, action, target, json.loads(details))
        conn.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, wall_us, actor, action, target, details, prev, digest),
        )
        prev = digest
    conn.close()
    with open(os.path.join(data_dir, "audit.head"), "w") as f:
        json.dump({"seq": len(keep), "hash": prev}, f)
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    only_problems(out, "audit trail: no entry is signed", "audit trail: audit head file is not signed")


# ------------------------------------------------------------------ exports
def test_export_verifies_in_a_fresh_process_with_only_the_fingerprint(lab, base, tmp_path):
    image, rows, fp, run_dir = base
    data_dir = str(tmp_path / "card")
    shutil.copytree(image, data_dir)
    out = tmp_path / "export" / "call.wav"
    out.parent.mkdir()
    with _env("LINEKEEPER_RUN_DIR", run_dir):  # on the box: the recorder's copy of the key
        status, _, err = lab.export(data_dir, rows[1]["call_id"], out)
    assert status == 0, err
    elsewhere = tmp_path / "solicitor"
    elsewhere.mkdir()
    for name in ("call.wav", "call.wav.manifest.json"):
        shutil.copy(out.parent / name, elsewhere / name)

    def check(*args):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from firmware.cli import main; sys.exit(main(sys.argv[1:]))",
                "verify-export",
                "call.wav",
                *args,
            ],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"]},
        )
        return proc.returncode, proc.stdout + proc.stderr

    status, text = check("--key", fp)
    assert status == 0 and "intact" in text, text
    assert check("--key", fp.upper().replace("LK1:", ""))[0] == 0  # as typed by hand
    other = fingerprint(os.urandom(32))
    status, text = check("--key", other)
    assert status == 2 and "not by the box" in text, text
    for name in ("call.wav", "call.wav.manifest.json"):
        path = elsewhere / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        status, text = check("--key", fp)
        assert status == 2, text
        shutil.copy(out.parent / name, path)
    assert check("--key", fp)[0] == 0


def export_refused(lab, mcu, data_dir, call_id, expect):
    """The card back in the box (its run directory holding the key): the export is refused."""
    out = os.path.join(os.path.dirname(data_dir), "refused.wav")
    with _env("LINEKEEPER_RUN_DIR", os.path.join(os.path.dirname(data_dir), "run")):
        load_signer(data_dir, vault=McuLink(mcu.bus), run_dir=os.environ["LINEKEEPER_RUN_DIR"])
        load_field_cipher(data_dir, vault=McuLink(mcu.bus), run_dir=os.environ["LINEKEEPER_RUN_DIR"])
        status, _, err = lab.export(data_dir, call_id, out)
    assert status == 2 and expect in err, err
    assert not os.path.exists(out) and not os.path.exists(out + ".manifest.json")


def test_a_sealed_recording_cut_and_set_back_to_recording_is_not_laundered(lab, mcu, card):
    """The card holder cuts a sealed file and sets its row back to ``recording``, so that
    the next start signs it as a crash's partial: the audit trail saw it sealed."""
    data_dir, rows, fp = card
    row = rows[1]
    path = os.path.join(data_dir, "recordings", row["file"])
    header, recs = records(path)
    with open(path, "wb") as f:
        f.write(header + b"".join(recs[:3]))
    with db(data_dir) as conn, conn:
        conn.execute("UPDATE recordings SET state = 'recording', signature = NULL WHERE id = ?", (row["id"],))
    store = RecordingStore(data_dir, signer=load_signer(data_dir, vault=McuLink(mcu.bus)))
    try:
        store.recover()  # the box starts again with the card back in
    finally:
        store.close()
    status, out, err = verify(lab, data_dir, fp)
    assert status == 1, out + err
    only_problems(out, "recording %s: the audit trail saw it sealed with another file" % row["id"])


def test_a_replaced_recording_public_key_records_nothing_and_raises_the_alarm(lab, mcu, tmp_path):
    """A card holder puts their own key store on the card, so that the next calls are
    encrypted to them: the box checks the key against the pin it signed, records nothing
    and raises ``key_tampered``."""
    scenario = lab.load(lab.scenario_doc(CALLS[:1], lines=1))
    data_dir = lab.init_data_dir(tmp_path / "box")
    lab.run(scenario, data_dir, vault=McuLink(mcu.bus))
    assert len(lab.rows(data_dir)) == 1
    theirs = lab.init_data_dir(tmp_path / "theirs")
    os.remove(os.path.join(theirs, "keys", "keystore.json"))
    KeyStore(theirs).initialise("eve", "eve's own password 1")
    shutil.copy(
        os.path.join(theirs, "keys", "keystore.json"), os.path.join(data_dir, "keys", "keystore.json")
    )
    run = lab.run(scenario, data_dir, vault=McuLink(mcu.bus))
    assert len(lab.rows(data_dir)) == 1  # the second call was not recorded
    alarms = [a for a in run.alarms if a.kind == "key_tampered"]
    assert alarms and "replaced" in alarms[0].message, run.alarms


def test_the_web_uis_export_manifest_verifies_with_the_fingerprint(lab, mcu, card, tmp_path):
    from firmware.manifest import verify_export
    from web.services import StoreRecordings

    data_dir, rows, fp = card
    store = RecordingStore(data_dir, verify_key=read_public_record(data_dir)["public_key"])
    service = StoreRecordings(store, signer=load_signer(data_dir, vault=McuLink(mcu.bus)))
    with lab.unlock(data_dir) as key:
        payload = service.export(rows[2]["call_id"], key, "wav")
    manifest = service.export_manifest(rows[2]["call_id"], payload, "call-2.wav", "sam")
    store.close()
    (tmp_path / "call-2.wav").write_bytes(payload)
    (tmp_path / "call-2.wav.manifest.json").write_bytes(manifest)
    doc = verify_export(tmp_path / "call-2.wav", fp)
    assert doc["exported_by"] == "sam" and doc["recording"]["id"] == rows[2]["id"]


def test_an_export_that_cannot_be_signed_is_refused_and_audited(lab, card, tmp_path):
    """The card in another machine: no vault, no RAM copy of the keys: no export, no file.

    Since issue 16 the box seals its audit details under the vault's storage key, so
    a process without that key refuses before it could write an entry in clear (on
    a box without the MCU vault, which seals nothing, the refusal is audited)."""
    data_dir, rows, fp = card
    out = tmp_path / "out.wav"
    n_before = len(audit_actions(data_dir))
    status, _, err = lab.export(data_dir, rows[1]["call_id"], out)
    assert status == 2 and "MCU vault" in err, err
    assert not out.exists() and not os.path.exists(str(out) + ".manifest.json")
    assert len(audit_actions(data_dir)) == n_before  # nothing written in clear


def audit_actions(data_dir):
    with sqlite3.connect(os.path.join(data_dir, "audit.db")) as conn:
        return [r[0] for r in conn.execute("SELECT action FROM audit")]
