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


def test_the_notes_text_and_corrected_names_of_each_call_go_too_audited(data):
    """The call's page erases the text of the call's notes and the names it was corrected to
    with its recording and number; `erase-calls` left both in web.db: a note naming the
    caller, or the name they asked to be corrected to, outlived their erasure. Now each goes
    as from the page, audited first (``call_note``); another person's call keeps its own."""
    import os

    from web.corrections import NameCorrections
    from web.db import WebDb
    from web.phonebook import CallNotes

    root, data_dir = data
    db = WebDb(os.path.join(data_dir, "web.db"))
    notes, names = CallNotes(db, lambda: 1), NameCorrections(db, lambda: 1)
    notes.add(1, "Jane Roe rang about her order", "sam")
    notes.add(4, "Jane Roe again, missed", "sam")
    names.correct(6, "Jane Roe", "sam")
    notes.add(2, "someone else's call", "sam")
    code, out, _ = run(root, data_dir)
    confirm = re.search(r"--confirm ([0-9a-f]+)", out).group(1)
    with recorder(data_dir) as rec:
        code, out, err = run(root, data_dir, "--confirm", confirm)
        assert code == 0, out + err
        said = sorted(
            (e.target, e.actor, {k: v for k, v in e.details.items() if k != "line"})
            for e in rec.audit.entries(action="call_note")
        )
    assert said == [
        ("1", "admin", {"request": "erasure", "notes_erased": 1, "via": "cli"}),
        ("4", "admin", {"request": "erasure", "notes_erased": 1, "via": "cli"}),
        ("6", "admin", {"request": "erasure", "names_erased": 1, "via": "cli"}),
    ]
    assert [n["erased"] for c in (1, 4) for n in notes.of_call(c)] == [True, True]
    assert names.left_of_call(6) == 0
    assert [n["note"] for n in notes.of_call(2)] == ["someone else's call"]
    db.close()
