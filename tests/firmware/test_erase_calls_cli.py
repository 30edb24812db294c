"""``linekeeper erase-calls``: every call of a person's numbers erased in one command, through
the running recorder's single-call erasure; counted first, confirmed by the code it printed,
refused whole (nothing erased) on bad input or a count that changed."""

import contextlib
import io
import re
from types import SimpleNamespace

import pytest

from firmware import cli
from firmware.calls.calllog import CallLog
from firmware.clock import SimClock
from firmware.control import ControlServer, recorder_handlers, socket_path
from firmware.policy.callmeta import CallMeta
from firmware.policy.retention import RetentionSettings
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore
from firmware.storage.audit import open_audit

from .test_sar import make_box

# make_box's calls: the subject's are 1 (line 1, recorded), 3 (line 3, dialled as
# 00441632960123, recorded), 4 (line 1, missed: no recording) and 6 (line 2, dialled with 141,
# recorded); 2 and 5 are others'.
SUBJECT = "01632 960123"


@pytest.fixture
def data(tmp_path):
    return make_box(tmp_path)


@contextlib.contextmanager
def recorder(data_dir):
    """A recorder's control socket on ``data_dir`` whose retention erases for real."""
    store = RecordingStore(data_dir)
    clock = SimClock()
    audit = open_audit(data_dir)
    log = CallLog(data_dir + "/calls.db", clock)
    sweeper = RetentionSweeper(store, clock, audit, RetentionSettings(), call_log=log)
    box = SimpleNamespace(
        status=SimpleNamespace(snapshot=dict), clock=clock, retention=sweeper, board=SimpleNamespace(lines=4)
    )
    server = ControlServer(socket_path(data_dir), recorder_handlers(box))
    server.start()
    try:
        yield SimpleNamespace(store=store, audit=audit, sweeper=sweeper)
    finally:
        server.stop()
        sweeper.close()
        log.close()
        store.close()


def run(root, data_dir, *extra):
    args = ["erase-calls", "--data-dir", data_dir, "--password-file", str(root / "pw"), "--number", SUBJECT]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args + ["--reason", "erasure request #4"] + list(extra))
    return code, out.getvalue(), err.getvalue()


def recorded(data_dir):
    store = RecordingStore(data_dir)
    try:
        return sorted(r["call_id"] for r in store.all())
    finally:
        store.close()


def test_it_counts_first_then_erases_what_was_counted(data):
    root, data_dir = data
    before = recorded(data_dir)
    meta = CallMeta(data_dir + "/calls.db")
    meta.set_legal_hold(3, True, "sam", 1)
    meta.close()
    code, out, _ = run(root, data_dir)
    assert code == 0
    assert "4 calls of 01632 960123 found. To erase: 3 calls (2 recordings" in out
    assert "on legal hold" in out and "call 3" in out and "Calls to erase: 1, 4, 6" in out
    assert "Nothing was erased" in out
    assert recorded(data_dir) == before
    confirm = re.search(r"--confirm ([0-9a-f]+)", out).group(1)
    with recorder(data_dir) as rec:
        code, out, err = run(root, data_dir, "--confirm", confirm)
        assert code == 0, out + err
        assert "erased 1 of 3 calls" in err and "erased 3 of 3 calls" in err
        assert "3 calls erased: 2 recordings." in out
        deleted = rec.audit.entries(action="delete")
        assert sorted((e.target, e.actor, e.details["reason"]) for e in deleted) == [
            ("call:1", "admin", "erasure request #4"),
            ("call:6", "admin", "erasure request #4"),
        ]
        assert [e.target for e in rec.audit.entries(action="erase_details")] == ["call:4"]
        assert sorted(e["call_id"] for e in rec.sweeper.deletion_log()) == [1, 6]
    assert recorded(data_dir) == [c for c in before if c not in (1, 6)] and 3 in recorded(data_dir)
    # Found again: only the held call is left.
    code, out, _ = run(root, data_dir)
    assert "1 call of 01632 960123 found. To erase: 0 calls" in out and "call 3" in out


def test_a_stale_code_or_no_recorder_erases_nothing(data):
    root, data_dir = data
    before = recorded(data_dir)
    code, out, _ = run(root, data_dir)
    confirm = re.search(r"--confirm ([0-9a-f]+)", out).group(1)
    code, _, err = run(root, data_dir, "--confirm", confirm)
    assert code != 0 and re.search("the recorder is not running.*nothing was erased", err)
    meta = CallMeta(data_dir + "/calls.db")
    meta.set_legal_hold(1, True, "sam", 1)  # a hold placed since the count
    meta.close()
    with recorder(data_dir) as rec:
        code, _, err = run(root, data_dir, "--confirm", confirm)
        assert code != 0 and re.search("changed since the count you confirmed.*nothing was erased", err)
        assert not rec.audit.entries(action="delete")
    assert recorded(data_dir) == before


@pytest.mark.parametrize(
    "extra, said",
    [
        (("--number", "home, evenings"), "--number home, evenings"),
        (("--reason", "no"), "--reason"),
    ],
)
def test_bad_input_is_named_and_nothing_is_erased(data, extra, said):
    root, data_dir = data
    before = recorded(data_dir)
    code, _, err = run(root, data_dir, *extra)
    assert code != 0 and said in err and "nothing was erased" in err
    assert recorded(data_dir) == before
