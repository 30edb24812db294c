"""Small key-hygiene items of issue 19: no core dumps; a removed key leaves the WAL too."""

import os
import subprocess
import sys

from firmware.recording.store import RecordingStore


def test_a_key_holding_process_makes_no_core_dump_and_is_not_dumpable():
    code = (
        "import resource; from firmware.hardening import no_core_dumps; ok = no_core_dumps();"
        "print(ok, resource.getrlimit(resource.RLIMIT_CORE));"
        "print([l for l in open('/proc/self/status') if l.startswith('CoreDumping')] or '')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == "True (0, 0)", out.stdout + out.stderr


def test_the_cli_hardens_the_commands_that_hold_keys():
    """``rekey`` (every key of the box) and ``sar`` (a recording key, decrypted audio) were
    left out of a list of the commands to harden: now only the keyless ones are."""
    from firmware.cli import KEYLESS_COMMANDS, build_parser, holds_keys

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert KEYLESS_COMMANDS < commands
    for command in ("export", "verify", "repair", "recorder", "web", "run", "init", "rekey", "sar",
                    "hat-replaced", "calls", "report", "config", "archive", "sim"):  # fmt: skip
        assert holds_keys(command), command


def test_a_discarded_recording_leaves_no_wrapped_key_in_the_wal(tmp_path):
    store = RecordingStore(tmp_path)
    wrapped = b"WRAPPED-KEY-" + os.urandom(81)
    rid = store.begin(1, wrapped, "voice", 960, 1_000_000)
    wal = tmp_path / "calls.db-wal"
    assert wrapped in wal.read_bytes()
    store.discard(rid)
    for name in ("calls.db", "calls.db-wal"):
        path = tmp_path / name
        assert not path.exists() or wrapped not in path.read_bytes(), name
    store.close()
