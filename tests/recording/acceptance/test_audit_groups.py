"""The box commits its recordings' audit entries in groups (docs/audit-writes.md): fewer
commits than entries, the head exact after a clean stop, and a power cut while a group
waits leaves a card that recovers and passes `verify`."""

import json
import os

from firmware.storage.audit import AuditLog
from tests.support.recording_lab import TWO_LINES_TWICE as CALLS


def test_grouped_audit_entries_verify_after_a_stop_and_after_a_cut_while_a_group_waits(lab):
    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    cuts, seen = [], {}

    def watch(box):
        seen["audit"] = box.audit
        staged = box.audit.append_soon

        def append_soon(*args, **kwargs):
            staged(*args, **kwargs)
            if not cuts:  # the power goes while the first group waits in memory
                cuts.append(str(lab.tmp_path / "cut"))
                lab.snapshot(data_dir, cuts[0])

        box.audit.append_soon = append_soon

    lab.run(lab.load(lab.scenario_doc(CALLS, lines=2)), data_dir, before_start=watch)
    with AuditLog(
        os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True
    ) as log:
        recordings = [e for e in log.entries(limit=100) if e.action.startswith("recording_")]
    assert len([e for e in recordings if e.action == "recording_sealed"]) == 4
    assert seen["audit"].commits < len(recordings)  # grouped
    with open(os.path.join(data_dir, "audit.head")) as f:
        head = json.load(f)
    # Exact at the stop: the last recording's group, then the run's box_start and box_stop
    # (firmware/uptime.py), each committed with its head.
    assert [e.action for e in log_tail(data_dir, 2)] == ["box_start", "box_stop"]
    assert head["seq"] == recordings[0].seq + 2 and head["group_us"] == 1_000_000
    status, out, err = lab.verify(data_dir)
    assert status == 0, out + err

    # The cut card: the waiting entry is lost with the power; the next start recovers the
    # recording it was about, and the trail and every recording verify.
    assert cuts
    cut_audit = (os.path.join(cuts[0], "audit.db"), os.path.join(cuts[0], "audit.head"))
    with AuditLog(*cut_audit, readonly=True) as log:
        assert "recording_created" not in {e.action for e in log.entries(limit=100)}
    lab.run(lab.load(lab.scenario_doc([], lines=2)), cuts[0])
    status, out, err = lab.verify(cuts[0])
    assert status == 0, out + err


def test_a_cut_between_a_group_and_its_head_then_a_quiet_run_still_verifies(lab, monkeypatch):
    """The power goes after the last group's commit, before its head: the head lags one
    group, as verify allows after a crash. The next run appends nothing (no call) and
    stops cleanly: verify then allows nothing after the head, so the start catches the
    head up (the entries are all the box's), without an entry of its own."""
    from firmware.storage import audit as audit_module

    data_dir = lab.init_data_dir(lab.tmp_path / "box")
    heads = []
    real = audit_module.write_head_file

    def write_head_file(path, data):
        real(path, data)
        heads.append({p: open(p, "rb").read() for p in (path, path + audit_module.HEAD_COPY_SUFFIX)})

    monkeypatch.setattr(audit_module, "write_head_file", write_head_file)
    # The cut comes before the stop: this run's box_start (written at the stop of a run this
    # short) and box_stop never reach the card; as when the card refuses them both.
    real_append = AuditLog.append

    def append(self, actor, action, *args, **kwargs):
        if action in ("box_start", "box_stop"):
            raise OSError(5, "Input/output error")
        return real_append(self, actor, action, *args, **kwargs)

    monkeypatch.setattr(AuditLog, "append", append)
    lab.run(lab.load(lab.scenario_doc(CALLS[:2], lines=2)), data_dir)
    monkeypatch.undo()
    # The card as the cut left it: the head and its copy as before the last group, no
    # clean-stop mark (the group's head write and the stop never happened).
    for path, content in heads[-2].items():
        with open(path, "wb") as f:
            f.write(content)
    os.unlink(os.path.join(data_dir, "clean-stop"))
    with AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head")) as log:
        behind = len(log) - log.head()[0]
    assert behind >= 2
    status, out, err = lab.verify(data_dir)
    assert status == 0, out + err  # a crash's group

    lab.run(lab.load(lab.scenario_doc([], lines=2)), data_dir, until_us=2_000_000)
    status, out, err = lab.verify(data_dir)
    assert status == 0, out + err
    with AuditLog(
        os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True
    ) as log:
        assert "audit_head_restored" not in {e.action for e in log.entries(limit=100)}


def log_tail(data_dir, n):
    """The last ``n`` entries of the audit trail in ``data_dir``, oldest first."""
    with AuditLog(
        os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True
    ) as log:
        return log.entries(limit=n)[::-1]
