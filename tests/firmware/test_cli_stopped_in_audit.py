"""A real Ctrl-C (SIGINT) that comes as `linekeeper export`, `report` or `calls` appends its
audit entry: the entry is made whole, then the stop is taken as one after it (a copy's audited
``failed``), never left in the trail as a copy taken with nothing written, nor said to have
made no entry (firmware.storage.held).

Each command runs in a process of its own, which sends itself SIGINT as the trail's head is
written for the copy's entry: the entry committed, its append not yet returned."""

import os
import subprocess
import sys
import textwrap

import pytest

from firmware.box import open_audit

from support.cli import export_args, recorded_box

PASSWORD = "stopped in the audit password 7"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from firmware import cli
    from firmware.storage import audit

    action, armed = sys.argv[1], []
    real_append, real_head = audit.AuditLog.append, audit.write_head_file

    def append(self, actor, act, target, details, wall_us):
        if act == action and not armed and not {"failed", "refused"} & set(details):
            armed.append(True)  # the copy's own entry
        return real_append(self, actor, act, target, details, wall_us)

    def head(path, data):
        if armed == [True]:
            armed.append("sent")
            os.kill(os.getpid(), getattr(signal, os.environ.get("STOP_SIGNAL", "SIGINT")))
        real_head(path, data)

    audit.AuditLog.append, audit.write_head_file = append, head
    sys.exit(cli.main(sys.argv[2:]))
    """
)


@pytest.fixture
def recorded(tmp_path, synth):
    return recorded_box(tmp_path, synth, PASSWORD)


def stopped_in_the_audit(action, *args, signame="SIGINT"):
    run = subprocess.run(
        [sys.executable, "-c", CHILD, action, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, STOP_SIGNAL=signame),
    )
    return run.returncode, run.stdout, run.stderr


def entries(data_dir, action):
    with open_audit(data_dir) as audit:
        return [e.details for e in audit.entries(limit=100, action=action, newest_first=False)]


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_export_stopped_as_its_entry_is_appended_is_audited_as_failed(recorded, tmp_path, signame, status):
    """SIGTERM (systemd, timeout) too: its default ended the process with the export in the
    trail as taken and nothing written."""
    data, pw = recorded
    out = tmp_path / "call.wav"
    stopped, _, err = stopped_in_the_audit("export", *export_args(data, 1, out, pw), signame=signame)
    assert stopped == status and not out.exists(), err
    assert err.strip().splitlines()[-1] == (
        "linekeeper: export stopped before %s was written whole; nothing was left there; the "
        "trail shows the export failed" % out
    )
    made, failed = entries(data, "export")
    assert failed == dict(made, failed="stopped: the recording was not written")


def test_a_report_stopped_as_its_entry_is_appended_is_audited_as_failed(recorded, tmp_path):
    data, pw = recorded
    out = tmp_path / "r.json"
    status, _, err = stopped_in_the_audit(
        "report", "report", "--data-dir", data, "--password-file", pw, "--from", "2026-03-02",
        "--to", "2026-03-02", "--format", "json", "--out", out,
    )  # fmt: skip
    assert status == 130 and not out.exists(), err
    assert err.strip().splitlines()[-1] == (
        "linekeeper: report stopped after its audit entry was made, before %s was whole (it is as "
        "it was): the audit trail shows the stop; run it again to make the file" % out
    )
    made, failed = entries(data, "report")
    assert failed == dict(made, failed="stopped")


def test_the_calls_stopped_as_their_entry_is_appended_say_the_entry_was_made(recorded):
    """Nothing printed, and the trail names the call all the same: the stop came once the
    entry was made, which the command says."""
    data, pw = recorded
    status, out, err = stopped_in_the_audit("list_viewed", "calls", "--data-dir", data, "--password-file", pw)
    assert (status, out) == (130, ""), err
    assert err.strip().splitlines()[-1] == (
        "linekeeper: calls stopped before printing any call: its audit entry, naming the 1 call it "
        "was to print, was made; nothing else was changed"
    )
    (entry,) = entries(data, "list_viewed")
    assert entry["calls"] == [1] and entry["via"] == "cli"
