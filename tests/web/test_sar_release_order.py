"""A subject access release: the disclosure log and the audit trail agree whatever fails.

A power cut between the log's entry and the waiting bundle's renaming left the release
"released" in both with its bundle deleted unaudited at the next start; an audit trail
refusing the entry (a full card) left the log's entry with no audit entry at all. Each
step of the release is cut here (the data directory as a power cut leaves it is started
again) or refused with ENOSPC (the web UI goes on).
"""

import errno
import json
import os
import shutil

import numpy as np
import pytest

from firmware import sar
from firmware.sar import DisclosureLog, release
from firmware.storage.audit import AuditLog
from web import sarjob
from web.sarjob import DIR, SarJobs, SealedSpool

CALLS = [
    {"id": 1, "line": 1, "direction": "in", "number": "02079460000", "started_at": "2026-03-02T09:00:00Z"}
]


WALL_US = 1_772_442_000_000_000
FULL = "No space left on device"


class Store:
    """One recording of a second of tone (call 1)."""

    def for_call(self, call_id):
        return {"id": "r1", "state": "complete"}

    def export_stream(self, recording_id, key):
        samples = (np.sin(np.arange(8000) * 0.1) * 8000).astype(np.int16)
        return [samples], len(samples), 8000


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


def _audit(data_dir):
    return AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"))


def _release(data_dir, audit, spool):
    return release(
        data_dir,
        Store(),
        audit,
        None,
        actor="sam",
        requester="Mr Jones",
        recipient="Mr Jones",
        reason="subject access request",
        calls=CALLS,
        search={"number": "020 7946 0000"},
        bundle_name="subject-access-{id}.zip",
        wall_us=WALL_US,
        spool=spool,
    )


def _expired(data_dir):
    """What the web UI does with a release whose bundle never went (web.Web._bundle_expired)."""

    def expired(entry_id, actor, why):
        log = DisclosureLog(data_dir)
        try:
            actor = actor or log.get(entry_id)["actor"]
        finally:
            log.close()
        audit = _audit(data_dir)
        try:
            audit.append(
                actor, "disclosure", "disclosure:%d" % entry_id, {"failed": why}, 1_772_442_000_000_001
            )
        finally:
            audit.close()

    return expired


def _agree(data_dir):
    """The disclosure log's entries and the audit trail's ``disclosure`` entries, each
    entry's as ``released`` or ``not released``, after asserting that they agree: each
    entry audited, the trail naming no entry the log has not."""
    log = DisclosureLog(data_dir)
    try:
        ids = [e["id"] for e in log.entries()]
    finally:
        log.close()
    audit = _audit(data_dir)
    try:
        audited = audit.entries(limit=100, action="disclosure", newest_first=False)
    finally:
        audit.close()
    said = {}
    for a in audited:
        entry_id = int(a.target.split(":")[1])
        said[entry_id] = "not released" if "failed" in a.details else said.get(entry_id, "released")
    assert sorted(said) == sorted(ids), (said, ids)
    return said


STEPS = ("ready", "insert", "rename", "named", "audit", "commit")


def _at(step, monkeypatch, fail):
    """Make ``fail()`` happen at ``step`` of the release."""
    real_append, real_replace = AuditLog.append, os.replace

    if step == "ready":
        monkeypatch.setattr(SealedSpool, "ready", lambda self: fail())
    elif step == "insert":
        monkeypatch.setattr(DisclosureLog, "add", lambda self, **kw: fail())
    elif step == "rename":

        def replace(src, dst, *a, **kw):
            if sarjob.LOGGED in os.fspath(dst):
                fail()
            return real_replace(src, dst, *a, **kw)

        monkeypatch.setattr(sarjob.os, "replace", replace)
    elif step == "named":  # renamed, the entry not yet committed
        monkeypatch.setattr(sarjob.fsutil, "fsync_dir", lambda path: fail())
    elif step == "audit":

        def append(self, actor, action, *a, **kw):
            if action == "disclosure":
                fail()
            return real_append(self, actor, action, *a, **kw)

        monkeypatch.setattr(AuditLog, "append", append)
    elif step == "commit":
        monkeypatch.setattr(SealedSpool, "commit", lambda self, entry_id=None: fail())


@pytest.mark.parametrize("step", STEPS)
def test_a_power_cut_at_any_step_leaves_the_log_and_the_trail_agreeing(tmp_path, monkeypatch, step):
    data_dir = str(tmp_path / "data")
    cut = str(tmp_path / "after-the-cut")
    jobs = SarJobs(data_dir)
    audit = _audit(data_dir)
    spool = SealedSpool(os.path.join(jobs.dir, "token"))

    def power_cut():
        shutil.copytree(data_dir, cut)  # what the card holds at the cut
        raise _Cut()

    _at(step, monkeypatch, power_cut)
    with pytest.raises(_Cut):
        _release(data_dir, audit, spool)
    monkeypatch.undo()
    audit.close()

    after = SarJobs(cut, expired=_expired(cut))  # the next start
    after.settle()
    assert os.listdir(os.path.join(cut, DIR)) == []
    said = _agree(cut)
    # Logged only from the commit of its entry on, and then never released: it never went.
    assert said == ({} if step in ("ready", "insert", "rename", "named") else {1: "not released"})


@pytest.mark.parametrize("step", STEPS)
def test_a_full_card_at_any_step_leaves_the_log_and_the_trail_agreeing(tmp_path, monkeypatch, step):
    data_dir = str(tmp_path)
    jobs = SarJobs(data_dir, expired=_expired(data_dir))
    audit = _audit(data_dir)

    def full():
        raise OSError(errno.ENOSPC, FULL)

    _at(step, monkeypatch, full)
    job = jobs.start("sam", lambda spool, progress: (_release(data_dir, audit, spool)[0], "b.zip", "0"))
    jobs.wait()
    monkeypatch.undo()
    audit.close()
    assert job.state == sarjob.FAILED
    if step == "audit":
        assert (
            job.error == "the audit trail refused the release (No space left on device): nothing was released"
        )
    assert os.listdir(jobs.dir) == []
    assert _agree(data_dir) == ({1: "not released"} if step == "commit" else {})


def test_a_release_the_trail_refuses_and_the_log_cannot_take_back_is_audited_when_it_can(
    tmp_path, monkeypatch
):
    """The card full for the trail and the log alike: the release stays logged, unaudited,
    with its bundle kept (not deleted unaudited), until the trail takes the entry that says
    it was not released (the next sweep)."""
    data_dir = str(tmp_path)
    now = [0.0]
    jobs = SarJobs(data_dir, now_s=lambda: now[0], expired=_expired(data_dir))
    audit = _audit(data_dir)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, FULL)

    _at("audit", monkeypatch, full)
    monkeypatch.setattr(DisclosureLog, "remove", full)
    job = jobs.start("sam", lambda spool, progress: (_release(data_dir, audit, spool)[0], "b.zip", "0"))
    jobs.wait()
    assert job.state == sarjob.FAILED and "audited as not released once the card has room" in job.error
    assert os.listdir(jobs.dir) == ["%s%s1" % (job.token, sarjob.LOGGED)]
    jobs.sweep()  # the trail still full
    assert len(os.listdir(jobs.dir)) == 1
    now[0] = sarjob.KEEP_S + 1
    jobs.sweep()  # the failed job forgotten, the trail still full: its bundle still kept
    assert len(os.listdir(jobs.dir)) == 1
    monkeypatch.undo()
    audit.close()
    jobs.sweep()
    assert os.listdir(jobs.dir) == []
    assert _agree(data_dir) == {1: "not released"}
    failed = [a for a in _audit(data_dir).entries(action="disclosure") if "failed" in a.details]
    assert failed[0].details["failed"].startswith("not released: the audit trail refused the release")


def test_a_release_logged_and_audited_waits_named_by_its_entry(tmp_path):
    data_dir = str(tmp_path)
    jobs = SarJobs(data_dir)
    audit = _audit(data_dir)
    spool = SealedSpool(os.path.join(jobs.dir, "token"))
    entry_id, _ = _release(data_dir, audit, spool)
    audit.close()
    assert os.listdir(jobs.dir) == ["token%s%d" % (sarjob.LOGGED, entry_id)]
    assert _agree(data_dir) == {entry_id: "released"}
    assert json.loads(DisclosureLog(data_dir).get(entry_id)["search"]) == {"number": "020 7946 0000"}
    assert sar.not_released(_audit(data_dir), [{"id": entry_id}]) == {}


@pytest.mark.parametrize("end", ["sweep", "stop"])
def test_a_bundle_not_downloaded_the_trail_cannot_audit_is_kept_until_it_can(tmp_path, monkeypatch, end):
    """A released bundle nobody downloaded (its time up, or the web UI stopping) while the
    trail is full: kept, not deleted with its release still "released", until the trail
    takes the entry saying it was not (the next sweep; the next start after a stop)."""
    data_dir = str(tmp_path)
    now = [0.0]
    jobs = SarJobs(data_dir, now_s=lambda: now[0], expired=_expired(data_dir))
    audit = _audit(data_dir)
    job = jobs.start("sam", lambda spool, progress: (_release(data_dir, audit, spool)[0], "b.zip", "0"))
    jobs.wait()
    audit.close()
    assert job.state == sarjob.DONE
    now[0] = sarjob.KEEP_S + 1
    real_append = AuditLog.append

    def full(self, actor, action, *a, **kw):
        if action == "disclosure":
            raise OSError(errno.ENOSPC, FULL)
        return real_append(self, actor, action, *a, **kw)

    monkeypatch.setattr(AuditLog, "append", full)
    jobs.sweep() if end == "sweep" else jobs.stop()
    assert os.listdir(jobs.dir) == ["%s%s1" % (job.token, sarjob.LOGGED)]
    monkeypatch.undo()
    if end == "sweep":
        jobs.sweep()
    else:
        SarJobs(data_dir, expired=_expired(data_dir)).settle()  # the next start
    assert os.listdir(jobs.dir) == []
    assert _agree(data_dir) == {1: "not released"}
