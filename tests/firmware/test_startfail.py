"""A recorder that cannot start says why, where people look, and the gap is alarmed.

`linekeeper recorder` on a data directory it cannot open exits with one line,
and its service starts it again for as long as it fails (`StartLimitIntervalSec=0`,
checked on the booted appliance in tests/system/test_appliance_boot.py). Each failed
start is noted in the RAM-only run directory; the start that works raises
``recorder_start_failed`` with how long nothing was recorded, audits it, and
removes the note.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import threading

from firmware import startfail
from firmware.errors import ConfigError, StorageError
from firmware.storage.keystore import KeyStore

from support.recording_lab import CHEAP_KDF, PASSWORD

SCENARIO = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []}


def test_a_note_carries_the_first_failure_and_counts_them(tmp_path):
    run = str(tmp_path)
    assert startfail.read(run) is None and startfail.clear(run) is None
    first = startfail.record(
        run, StorageError(errno.EIO, "cannot open the data in /d: an I/O error"), 1_000_000
    )
    assert first == {
        "error": "cannot open the data in /d: an I/O error",
        "cause": "card",
        "since_us": 1_000_000,
        "last_us": 1_000_000,
        "attempts": 1,
    }
    assert os.stat(os.path.join(run, startfail.FILE)).st_mode & 0o777 == 0o640
    second = startfail.record(run, ConfigError('"hat" is not a HAT\nthis box knows'), 3_000_000)
    # The reason is the latest failure's, in one line; the first failure's time stays.
    assert second == {
        "error": '"hat" is not a HAT this box knows',
        "cause": "config",
        "since_us": 1_000_000,
        "last_us": 3_000_000,
        "attempts": 2,
    }
    assert startfail.read(run) == second
    assert startfail.clear(run) == second
    assert startfail.read(run) is None and os.listdir(run) == []


def test_a_note_says_what_an_unexpected_error_was():
    import sqlite3

    assert startfail.describe(KeyError("lines")) == "KeyError: 'lines'"
    assert startfail.describe(sqlite3.OperationalError("disk I/O error")).startswith("storage error: ")
    assert (
        startfail.describe(OSError(errno.ENOSPC, "No space left on device"))
        == "storage error: the disk is full"
    )


def test_no_run_directory_no_note():
    assert startfail.record(None, ValueError("x"), 1) is None
    assert startfail.read(None) is None and startfail.clear(None) is None


def test_a_damaged_note_is_ignored_and_started_again(tmp_path):
    path = tmp_path / startfail.FILE
    for text in (
        "{not json",
        json.dumps([1]),
        json.dumps({"error": "x", "since_us": "1", "last_us": 1, "attempts": 1}),
    ):
        path.write_text(text)
        assert startfail.read(str(tmp_path)) is None
    note = startfail.record(str(tmp_path), ValueError("again"), 5)
    assert note["attempts"] == 1 and note["since_us"] == 5


def test_a_note_that_cannot_be_written_does_not_hide_the_failure(tmp_path):
    missing = str(tmp_path / "no-such-dir")
    assert startfail.record(missing, ValueError("x"), 1) is None


def _recorder(data, scenario, run, wait_for=None):
    """Run the recorder; with ``wait_for``, until it prints that, then SIGTERM."""
    env = dict(os.environ, LINEKEEPER_RUN_DIR=str(run))
    argv = [sys.executable, "-m", "firmware.cli", "recorder", "--board", "sim", "--scenario", str(scenario)]
    argv += ["--data-dir", str(data), "--speed", "max"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    seen = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if wait_for and wait_for in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if wait_for:
            assert seen.wait(60), "".join(lines)
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        proc.stdout.close()
    return proc.returncode, "".join(lines)


def test_the_recorder_notes_each_failed_start_and_alarms_the_gap_when_it_starts(tmp_path):
    from firmware.alarmlog import AlarmLog
    from firmware.storage.audit import AuditLog
    from firmware.storage.fieldseal import load_field_cipher

    data = tmp_path / "data"
    run = tmp_path / "run"
    run.mkdir()
    KeyStore(str(data), kdf_params=CHEAP_KDF).initialise("admin", PASSWORD)
    scenario = tmp_path / "quiet.json"
    scenario.write_text(json.dumps(SCENARIO))
    (data / "calls.db").mkdir()  # what the recorder cannot open: it must not start

    for attempt in (1, 2):
        code, out = _recorder(data, scenario, run)
        assert code == 2, out
        assert "is unreadable" in out and "Traceback" not in out, out
        note = startfail.read(str(run))
        assert note["attempts"] == attempt and note["error"] in out, (note, out)
    first_us = note["since_us"]
    assert note["last_us"] >= first_us
    assert not (data / "alarms.db").exists()  # nothing of the box was touched

    (data / "calls.db").rmdir()
    code, out = _recorder(data, scenario, run, wait_for="the scenario has ended")
    assert code == 0, out
    assert startfail.read(str(run)) is None and not os.listdir(run)

    alarms = AlarmLog.open_existing(str(data)).history()
    [alarm] = [a for a in alarms if a["kind"] == "recorder_start_failed"]
    assert (
        alarm["cleared_us"] is not None and alarm["acknowledged_by"] is None
    )  # an occurrence: on the banner
    assert "it tried 2 times" in alarm["message"] and "no call was recorded in that time" in alarm["message"]
    assert "calls.db is not a file" in alarm["message"]

    audit = AuditLog(
        str(data / "audit.db"),
        str(data / "audit.head"),
        readonly=True,
        cipher=load_field_cipher(str(data), create=False),
    )
    [entry] = audit.entries(action="recorder_start_failed")
    assert entry.actor == "system" and entry.details["attempts"] == 2
    assert "calls.db is not a file" in entry.details["reason"]

    # A start after a start that worked: nothing to say.
    code, out = _recorder(data, scenario, run, wait_for="the scenario has ended")
    assert code == 0, out
    alarms = AlarmLog.open_existing(str(data)).history()
    assert [a["kind"] for a in alarms].count("recorder_start_failed") == 1
