"""Issue 20: what retention deleted is shown as ``deleted`` everywhere, and ``verify``
checks the deletion log."""

import json
import os
import sqlite3

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_audit, open_sim_box
from firmware.clock import SimClock
from firmware.policy.retention import DAY_US, RetentionSettings
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore
from firmware.storage.keystore import Argon2Params, KeyStore

from support.cli import export_args, run_linekeeper

PASSWORD = "pw-pw-pw-pw"


cli = run_linekeeper


@pytest.fixture
def swept(tmp_path, synth):
    """A data dir with two recorded calls; retention deleted the second (untagged) one."""
    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    call = {"line": 1, "direction": "in", "rings": 1, "talk": 3.0, "caller_id": {"number": "01632960123"}}
    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [dict(call, at=1.0, tags=["regulated"]), dict(call, at=20.0)],
            }
        )
    )
    box = open_sim_box(scenario, data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    store = RecordingStore(data)
    audit = open_audit(data)  # signed with the box's key, as the box's sweeper does
    clock = SimClock(start_wall_us=scenario.start_wall_us + 40 * DAY_US)
    sweeper = RetentionSweeper(
        store,
        clock,
        audit,
        RetentionSettings.from_dict({"default_days": 30, "minimum_days": {"regulated": 1827}}),
    )
    sweeper.guard.confirm(clock.wall_us())
    try:
        assert sweeper.sweep().deleted == 1
        (entry,) = sweeper.deletion_log()
    finally:
        sweeper.close()
        store.close()
        audit.close()
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return data, entry, pw


def test_calls_json_says_deleted_with_date_and_rule(swept):
    data, entry, pw = swept
    status, out, err = cli("calls", "--data-dir", data, "--password-file", pw, "--json")
    assert status == 0, err
    calls = {c["id"]: c for c in map(json.loads, out.splitlines())}
    gone = calls[entry["call_id"]]
    assert gone["recording"] == "deleted"
    assert gone["recording_deleted"]["rule"] == entry["rule"]
    assert gone["recording_deleted"]["reason"] == entry["reason"]
    assert gone["recording_deleted"]["at"].startswith("2026-04-11")
    (kept,) = [c for c in calls.values() if c["id"] != entry["call_id"]]
    assert kept["recording"] == "complete" and "recording_deleted" not in kept


def test_calls_text_tells_an_erasure_on_request_from_a_retention_deletion(swept):
    """The web list says "Erased on request" of a recording erased at a person's request
    and "Deleted" of one retention deleted; ``linekeeper calls`` said "Deleted" of both,
    so the erasure could not be checked there."""
    data, entry, pw = swept
    store = RecordingStore(data)
    audit = open_audit(data)
    sweeper = RetentionSweeper(store, SimClock(start_wall_us=entry["deleted_at"]), audit, RetentionSettings())
    try:
        (kept,) = [r["call_id"] for r in store.all() if r["state"] != "deleted"]
        assert sweeper.erase(kept, "sam", "erasure request ref 12") == 1
    finally:
        sweeper.close()
        store.close()
        audit.close()
    status, out, err = cli("calls", "--data-dir", data, "--password-file", pw)
    assert status == 0, err
    said = {int(line.split()[0]): line for line in out.splitlines()[1:]}
    assert "Erased on request" in said[kept] and "Deleted" not in said[kept]
    assert "Deleted" in said[entry["call_id"]] and "Erased" not in said[entry["call_id"]]


def test_export_says_when_and_by_which_rule(swept, tmp_path):
    data, entry, pw = swept
    status, _out, err = cli(
        "export",
        entry["call_id"],
        "--data-dir",
        data,
        "--password-file",
        pw,
        "--reason",
        "a test export of the call",
        "--out",
        tmp_path / "x.wav",
    )
    assert status == 2
    assert "has no recording: it was deleted on 2026-04-11" in err
    assert 'retention rule "%s"' % entry["rule"] in err
    assert not (tmp_path / "x.wav").exists()


def test_export_says_the_recording_in_the_call_pages_words(swept, tmp_path):
    """``linekeeper export`` said the recording's state as its code ("(complete)",
    "(partial)"), where the call's page says "Complete", "Partly recorded (…)"."""
    data, entry, pw = swept
    (kept,) = [c for c in (1, 2) if c != entry["call_id"]]
    status, out, err = cli(*export_args(data, kept, tmp_path / "x.wav", pw))
    assert status == 0, err
    assert out == "exported call %d to %s: Complete\n" % (kept, tmp_path / "x.wav")


def test_verify_passes_an_intact_deletion_log(swept):
    data, _entry, pw = swept
    status, out, err = cli("verify", "--data-dir", data, "--password-file", pw)
    assert status == 0, out + err
    assert "deletion log" in out


@pytest.mark.parametrize("tamper", ["edit", "remove", "drop_table"])
def test_verify_fails_on_a_tampered_deletion_log(swept, tamper):
    data, entry, pw = swept
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    db.execute("DROP TRIGGER IF EXISTS deletion_log_no_update")
    db.execute("DROP TRIGGER IF EXISTS deletion_log_no_delete")
    if tamper == "edit":
        db.execute("UPDATE deletion_log SET rule = 'legal request' WHERE seq = 1")
    elif tamper == "remove":
        db.execute("DELETE FROM deletion_log WHERE seq = 1")
    else:
        db.execute("DROP TABLE deletion_log")
    db.commit()
    db.close()
    status, out, err = cli("verify", "--data-dir", data, "--password-file", pw)
    assert status == 1, out + err
    assert "deletion log" in out
