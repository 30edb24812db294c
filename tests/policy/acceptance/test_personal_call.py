"""The personal-call code, end to end through ``linekeeper sim``.

A staff member keys ``policy.rules.personal.dtmf_code`` during a connected call: the
call is not recorded and what was recorded of it is gone (a recording held in memory
never written; one already on the card destroyed, its key's copies overwritten), the
call stays in the call log saying it was marked personal, and the audit trail has a
``personal_call`` entry for it. Off by default; only on the lines it names.
"""

import json
import os

import pytest

from firmware.box import open_audit
from firmware.policy.rules import PERSONAL_REASON

DIALLED = "01632960302"


def inbound(line, at, talk=12.0, keys=None):
    call = {"line": line, "at": at, "direction": "in", "rings": 1, "talk": talk}
    call["caller_id"] = {"number": "01632960123"}
    if keys:
        call["keys"] = [{"at": t, "digits": d} for t, d in keys]
    return call


def outbound(line, at, talk=12.0, keys=None):
    call = {"line": line, "at": at, "direction": "out", "dial": {"digits": DIALLED}, "talk": talk}
    if keys:
        call["keys"] = [{"at": t, "digits": d} for t, d in keys]
    return call


def outcome(calls):
    return [(c["line"], c["direction"], c["policy_decision"], c["policy_reason"]) for c in calls]


def personal(lines=None, code="*7", **rules):
    return dict(rules, personal={"dtmf_code": code, "lines": lines})


def recording_files(data_dir):
    return sorted(os.listdir(os.path.join(data_dir, "recordings")))


def test_the_code_keyed_during_a_call_leaves_it_logged_and_unrecorded(lab):
    """Inbound, recorded to the card from its answer: the code 5 s in destroys what was
    written. Outbound, the code 1 s after the number: the number is exactly the one
    dialled (the code is not taken for more of it) and nothing of the call is kept."""
    doc = lab.scenario(
        [inbound(1, 1.0, keys=[(5.0, "*7")]), outbound(2, 1.0, keys=[(1.0, "*7")])],
        config=lab.policy(rules=personal()),
    )
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [(1, "in", "skip", PERSONAL_REASON), (2, "out", "skip", PERSONAL_REASON)]
    assert calls[1]["number"] == DIALLED
    assert all(c["answered"] and c["recording"] is None for c in calls)
    assert lab.recordings(data_dir) == [] and recording_files(data_dir) == []
    with open_audit(data_dir) as audit:
        assert audit.verify() == []
        entries = audit.entries(limit=-1, newest_first=False)
    marked = sorted((e.details["line"], e.actor, e.target) for e in entries if e.action == "personal_call")
    assert [(actor, target, line) for line, actor, target in marked] == [
        ("handset", "call:%d" % calls[0]["id"], 1),
        ("handset", "call:%d" % calls[1]["id"], 2),
    ]
    # The inbound recording had reached the card: its deletion is audited, saying why.
    deleted = [e.details["why"] for e in entries if e.action == "recording_deleted"]
    assert PERSONAL_REASON in deleted
    # No digit of the code anywhere it could be read back.
    assert "*7" not in json.dumps(calls)


def test_only_that_call_and_only_on_the_lines_named(lab):
    doc = lab.scenario(
        [
            inbound(1, 1.0, keys=[(5.0, "*7")]),
            inbound(2, 1.0, keys=[(5.0, "*7")]),  # not a line the code works on
            inbound(1, 30.0),  # the next call on line 1 is recorded again
        ],
        config=lab.policy(rules=personal(lines=[1])),
    )
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [
        (1, "in", "skip", PERSONAL_REASON),
        (2, "in", "record", "line 2 records every call"),
        (1, "in", "record", "line 1 records every call"),
    ]
    rows = {r["call_id"]: r["state"] for r in lab.recordings(data_dir)}
    assert rows == {calls[1]["id"]: "complete", calls[2]["id"]: "complete"}


def test_off_by_default(lab):
    data_dir, calls = lab.sim(lab.scenario([inbound(1, 1.0, keys=[(5.0, "*7")])]))
    assert outcome(calls) == [(1, "in", "record", "line 1 records every call")]
    assert [r["state"] for r in lab.recordings(data_dir)] == ["complete"]


def test_a_call_held_in_memory_is_never_written(lab):
    """A by-rule call held for its minimum talk: dropped from memory, nothing reached the card."""
    rules = personal(default_mode="by_rule", min_duration_s=30)
    doc = lab.scenario([inbound(1, 1.0, talk=40.0, keys=[(5.0, "*7")])], config=lab.policy(rules=rules))
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [(1, "in", "skip", PERSONAL_REASON)]
    with open_audit(data_dir) as audit:
        actions = [e.action for e in audit.entries(limit=-1, newest_first=False)]
    assert "personal_call" in actions and "recording_created" not in actions
    assert recording_files(data_dir) == []


def test_an_on_demand_call_marked_personal_cannot_then_be_recorded(lab):
    rules = {"lines": [{"line": 1, "mode": "on_demand"}], "personal": {"dtmf_code": "*7"}}
    doc = lab.scenario([inbound(1, 1.0, keys=[(4.0, "*7"), (8.0, "*9")])], config=lab.policy(rules=rules))
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [(1, "in", "skip", PERSONAL_REASON)]
    assert lab.recordings(data_dir) == []


def test_an_outbound_call_decided_by_the_rules_is_marked_too(lab):
    """On a by-rule line an outbound call is held in memory from off-hook until its number
    decides it: the code straight after the number ends the dialling (the number is decided
    on as dialled) and the held audio is dropped, never written."""
    doc = lab.scenario(
        [outbound(1, 1.0, keys=[(0.5, "*7")]), outbound(2, 1.0)],
        config=lab.policy(rules=personal(default_mode="by_rule")),
    )
    data_dir, calls = lab.sim(doc)
    assert outcome(calls) == [
        (1, "out", "skip", PERSONAL_REASON),
        (2, "out", "record", "the call passes every rule"),
    ]
    assert [c["number"] for c in calls] == [DIALLED, DIALLED]
    assert [r["call_id"] for r in lab.recordings(data_dir)] == [calls[1]["id"]]


def test_a_call_on_legal_hold_keeps_its_recording(tmp_path, synth, lab):
    """A supervisor placed a legal hold on the call while it was recorded (its page offers
    it as soon as the recording has a row): the code keyed after it destroys nothing. The
    hold's promise is that its recordings survive every deletion; the code is audited as
    keyed, the recording kept, and the call stays recorded."""
    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path, synth, [inbound(1, 1.0, keys=[(8.0, "*7")])], 2, config=lab.policy(rules=personal())
    )
    box.clock.call_at(6_000_000, lambda: box.callmeta.set_legal_hold(1, True, "sam", box.clock.wall_us()))
    box.start()
    assert box.board.run()
    box.stop()
    calls = lab.calls(data_dir)
    assert [c["id"] for c in calls] == [1]
    assert outcome(calls) == [(1, "in", "record", "line 1 records every call")]
    assert [(r["call_id"], r["state"]) for r in lab.recordings(data_dir)] == [(1, "complete")]
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert "recording_deleted" not in [e.action for e in entries]
    marked = [e for e in entries if e.action == "personal_call"]
    assert [(e.target, e.details["recording_discarded"], e.details["kept"]) for e in marked] == [
        ("call:1", False, "on legal hold")
    ]


def test_a_card_that_refuses_the_discard_stops_neither_the_call_nor_the_audit(
    tmp_path, synth, lab, monkeypatch
):
    """The card refuses the destruction of what was written (an I/O error): the code is
    still taken (the recording stopped, the call marked personal) and audited, the
    recorder's worker that destroys it raises the line's ``recording_failed`` alarm saying
    what failed, and the error does not escape into the line supervisor's delivery of keys,
    where it stopped the capture's pass over every line."""
    from firmware.bus import Alarm

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )

    def refused(recording_id, audit=True):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(box.recorder.store, "shred_file", refused)
    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    box.start()
    assert box.board.run()
    box.stop()
    calls = lab.calls(data_dir)
    assert outcome(calls) == [
        (1, "in", "skip", PERSONAL_REASON),
        (2, "in", "record", "line 2 records every call"),
    ]
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    marked = [e.details for e in entries if e.action == "personal_call"]
    # Decided on the card (its row names no file), so discarded: the next start finishes it.
    assert len(marked) == 1 and marked[0]["recording_discarded"] is True
    assert "discard_pending" not in marked[0]
    failed = [a for a in alarms if a.kind == "recording_failed"]
    assert [(a.line, a.active, a.call_id) for a in failed] == [(1, True, calls[0]["id"])]
    assert "Input/output error" in failed[0].message and "the next start destroys it" in failed[0].message


def test_a_hold_placed_after_the_policy_looked_still_keeps_the_recording(tmp_path, synth, lab, monkeypatch):
    """A supervisor places the legal hold just after the code's look at the call's hold and
    before the store destroys its recording: the store decides in the transaction that
    decides the destruction, so the held recording is kept whatever the timing, and the code
    is audited as for a hold seen at once."""
    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path, synth, [inbound(1, 1.0, keys=[(8.0, "*7")])], 2, config=lab.policy(rules=personal())
    )
    looked = box.policy._held

    def hold_placed_after_the_look(call):
        kept = looked(call)
        box.callmeta.set_legal_hold(call.id, True, "sam", box.clock.wall_us())
        return kept

    monkeypatch.setattr(box.policy, "_held", hold_placed_after_the_look)
    box.start()
    assert box.board.run()
    box.stop()
    calls = lab.calls(data_dir)
    assert outcome(calls) == [(1, "in", "record", "line 1 records every call")]
    assert [(r["call_id"], r["state"]) for r in lab.recordings(data_dir)] == [(1, "complete")]
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert "recording_deleted" not in [e.action for e in entries]
    marked = [e for e in entries if e.action == "personal_call"]
    assert [(e.target, e.details["recording_discarded"], e.details["kept"]) for e in marked] == [
        ("call:1", False, "on legal hold")
    ]


def test_a_call_log_that_cannot_decide_the_destruction_still_records_nothing_more(
    tmp_path, synth, lab, monkeypatch
):
    """The call log refuses the transaction in which the destruction is decided (busy, an
    I/O error). The recording was kept and went on, the staff member's call recorded to its
    end. Now it stops at the code all the same, the line's recording_failed alarm says it is
    still on the card, and the decision is tried again: once the card takes it (here at the
    stop) the recording is destroyed, audited saying why. The error does not escape into the
    supervisor's delivery of keys."""
    from firmware.bus import Alarm

    from support.simbox import keyed_sim_box, refusing_destructions

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store = box.recorder.store
    card = refusing_destructions(monkeypatch, store)
    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    box.start()
    assert box.board.run()
    (failed,) = [a for a in alarms if a.kind == "recording_failed"]
    assert failed.line == 1 and "still on the card" in failed.message
    waiting = [r for r in store.all() if r["state"] == "recording"]
    assert len(waiting) == 1 and os.path.exists(store.path_of(waiting[0]["id"]))
    card["refusing"] = False
    box.stop()
    calls = lab.calls(data_dir)
    assert outcome(calls) == [
        (1, "in", "skip", PERSONAL_REASON),
        (2, "in", "record", "line 2 records every call"),
    ]
    assert [(r["call_id"], r["state"]) for r in lab.recordings(data_dir)] == [(2, "complete")]
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    deleted = [e for e in entries if e.action == "recording_deleted"]
    assert [e.details for e in deleted] == [{"why": PERSONAL_REASON}]
    # Keyed while the card refused the decision: the entry says the recording was not
    # discarded yet, only waiting to be; the recording_deleted entry after it says when it was.
    (marked,) = [e for e in entries if e.action == "personal_call"]
    assert marked.details["recording_discarded"] is False and marked.details["discard_pending"] is True
    assert "kept" not in marked.details and entries.index(marked) < entries.index(deleted[0])


def test_a_hold_placed_before_the_card_takes_the_decision_keeps_the_recording(
    tmp_path, synth, lab, monkeypatch
):
    """The card refused the decision to destroy the personal call's recording; before it
    takes it, a supervisor places the call on legal hold: the store, deciding again, sees
    the hold, and the recording (stopped at the code) is finished and kept, not destroyed.
    The line's recording_failed alarm, which said it was to go, goes off."""
    from support.simbox import keyed_sim_box, refusing_destructions

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")])],
        1,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store = box.recorder.store
    card = refusing_destructions(monkeypatch, store)
    box.start()
    assert box.board.run()
    assert [a.line for a in box.alarms.active() if a.kind == "recording_failed"] == [1]
    box.callmeta.set_legal_hold(1, True, "sam", box.clock.wall_us())
    card["refusing"] = False
    box.stop()
    (kept,) = lab.recordings(data_dir)
    assert kept["call_id"] == 1 and kept["state"] == "complete" and 6.0 < kept["duration_s"] < 9.5
    # Decided (kept): the alarm that said it was still on the card, to go, is off.
    assert [a for a in box.alarms.active() if a.kind == "recording_failed"] == []
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1)
    assert "recording_deleted" not in [e.action for e in entries]
    # The code's entry never said the recording was discarded: its discard was only pending.
    (marked,) = [e.details for e in entries if e.action == "personal_call"]
    assert marked["recording_discarded"] is False and marked["discard_pending"] is True


def test_the_destruction_does_not_hold_up_the_capture(tmp_path, synth, lab, monkeypatch):
    """Destroying what was written (its header and key copy overwritten and synced, the file
    removed, the call log checkpointed) is the recorder's worker's: while it is blocked, the
    capture goes on feeding every line (line 2's call is recorded to its end), and the stop
    waits for it: the file is gone and its deletion audited."""
    import threading

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store = box.recorder.store
    real = store.shred_file
    capture = threading.current_thread()  # the simulated box runs its capture in this thread
    reached, go, threads = threading.Event(), threading.Event(), []

    def blocked(recording_id, audit=True):
        threads.append(threading.current_thread())
        reached.set()
        if threading.current_thread() is not capture:
            go.wait()
        return real(recording_id, audit=audit)

    monkeypatch.setattr(store, "shred_file", blocked)
    box.start()
    assert box.board.run()
    assert reached.wait(timeout=600)  # (only so that a broken run cannot hang the suite)
    assert threads and capture not in threads
    # The whole scenario ran while the destruction was blocked: line 2 recorded to its end.
    line2 = lab.calls(data_dir)[1]
    assert [(r["call_id"], r["state"]) for r in lab.recordings(data_dir) if r["state"] != "recording"] == [
        (line2["id"], "complete")
    ]
    assert len(recording_files(data_dir)) == 4  # line 1's file and key copy still there
    go.set()
    box.stop()
    calls = lab.calls(data_dir)
    assert outcome(calls) == [
        (1, "in", "skip", PERSONAL_REASON),
        (2, "in", "record", "line 2 records every call"),
    ]
    assert [r["call_id"] for r in lab.recordings(data_dir)] == [calls[1]["id"]]
    assert len(recording_files(data_dir)) == 2  # line 2's file and its key copy
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert [e.details["why"] for e in entries if e.action == "recording_deleted"] == [PERSONAL_REASON]


def test_a_held_recording_of_a_call_on_legal_hold_is_written_not_dropped(tmp_path, synth, lab, monkeypatch):
    """A by-rule call held in memory for its minimum talk when the code is keyed, placed on
    legal hold just after the code's look at its hold: the recorder asks the store before it
    drops what it held, and writes it to the card instead (the hold wins); the code is
    audited as kept."""
    from support.simbox import keyed_sim_box

    rules = personal(default_mode="by_rule", min_duration_s=30)
    box, data_dir = keyed_sim_box(
        tmp_path, synth, [inbound(1, 1.0, talk=40.0, keys=[(5.0, "*7")])], 1, config=lab.policy(rules=rules)
    )
    looked = box.policy._held

    def hold_placed_after_the_look(call):
        kept = looked(call)
        box.callmeta.set_legal_hold(call.id, True, "sam", box.clock.wall_us())
        return kept

    monkeypatch.setattr(box.policy, "_held", hold_placed_after_the_look)
    box.start()
    assert box.board.run()
    box.stop()
    calls = lab.calls(data_dir)
    assert outcome(calls) == [(1, "in", "record", "the call passes every rule")]
    rows = lab.recordings(data_dir)
    assert [(r["call_id"], r["state"]) for r in rows] == [(1, "complete")]
    assert rows[0]["duration_s"] > 40  # from its pre-roll: nothing of what was held is lost
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    marked = [e for e in entries if e.action == "personal_call"]
    assert [(e.details["recording_discarded"], e.details["kept"]) for e in marked] == [
        (False, "on legal hold")
    ]
    assert "recording_deleted" not in [e.action for e in entries]


def test_a_short_call_on_legal_hold_keeps_what_was_held(tmp_path, synth, lab):
    """A call shorter than the rules' minimum talk is dropped from memory, unless it is on
    legal hold: then what was held is written and sealed (the decision still says why the
    rules would not have kept it)."""
    from support.simbox import keyed_sim_box

    rules = {"default_mode": "by_rule", "min_duration_s": 10}
    box, data_dir = keyed_sim_box(
        tmp_path, synth, [inbound(1, 1.0, talk=6.0)], 1, config=lab.policy(rules=rules)
    )
    box.clock.call_at(4_000_000, lambda: box.callmeta.set_legal_hold(1, True, "sam", box.clock.wall_us()))
    box.start()
    assert box.board.run()
    box.stop()
    assert outcome(lab.calls(data_dir)) == [(1, "in", "skip", "shorter than 10 s")]
    rows = lab.recordings(data_dir)
    assert [(r["call_id"], r["state"]) for r in rows] == [(1, "complete")]
    assert rows[0]["duration_s"] > 6
    assert box.recorder.stats["dropped_short"] == 0


def test_a_call_never_connected_on_legal_hold_is_sealed_when_it_ends(tmp_path, synth, lab):
    """An outbound call on a line that records from off-hook, never answered: its recording is
    destroyed at its end, unless the call is on legal hold. Then it is finished and sealed as
    any recording when the call ends, not left open for the next start's recovery."""
    from firmware.bus import RecordingFinished

    from support.simbox import keyed_sim_box

    call = {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "answer": False,
        "dial": {"digits": DIALLED, "answer_after": 8.0, "ringback": True},
    }
    box, data_dir = keyed_sim_box(tmp_path, synth, [call], 1, config=lab.policy(rules=personal()))
    box.clock.call_at(4_000_000, lambda: box.callmeta.set_legal_hold(1, True, "sam", box.clock.wall_us()))
    finished = []
    box.bus.subscribe(RecordingFinished, finished.append)
    box.start()
    assert box.board.run()
    box.stop()
    assert outcome(lab.calls(data_dir)) == [(1, "out", "skip", "never connected")]
    rows = lab.recordings(data_dir)
    assert [(r["call_id"], r["state"]) for r in rows] == [(1, "complete")]
    assert [(e.call_id, e.state) for e in finished] == [(1, "complete")]


def test_the_capture_thread_writes_and_syncs_nothing_of_a_recording_being_destroyed(
    tmp_path, synth, lab, monkeypatch
):
    """Once its destruction is decided, the recording is stopped on the capture thread
    without a write or a sync of its file (finishing a file about to be destroyed would
    flush what the journal holds for it into the file and sync it, while every line's
    capture waits): what the card does is the worker's, and only the destruction."""
    import threading

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store = box.recorder.store
    capture = threading.current_thread()  # the simulated box runs its capture in this thread
    decided, touched = [], []
    real_unname = store.unname_file

    def unname(recording_id, *args, **kwargs):
        done = real_unname(recording_id, *args, **kwargs)
        if done:
            decided.append(recording_id + ".lkrec")
        return done

    def watched(real):
        def call(fd, *args):
            name = os.path.basename(os.readlink("/proc/self/fd/%d" % fd))
            if threading.current_thread() is capture and name in decided:
                touched.append((real.__name__, name))
            return real(fd, *args)

        return call

    monkeypatch.setattr(store, "unname_file", unname)
    for name in ("fdatasync", "fsync", "write", "pwrite", "ftruncate"):
        monkeypatch.setattr(os, name, watched(getattr(os, name)))
    box.start()
    assert box.board.run()
    box.stop()
    assert len(decided) == 1
    assert touched == []
    assert outcome(lab.calls(data_dir))[0] == (1, "in", "skip", PERSONAL_REASON)
    assert len(recording_files(data_dir)) == 2  # line 2's file and its key copy


def test_a_recording_the_call_log_has_no_row_for_is_destroyed_before_the_code_returns(
    tmp_path, synth, lab, monkeypatch
):
    """The call log refused the recording's row (it records on, the row waiting in memory)
    when the code is keyed: no row tells the next start to destroy its file, and a crash
    before the worker reached it would leave a sealed recording of the personal call, which
    `linekeeper repair` makes a recording again from its header. Its header and key copy
    are destroyed at once, not left to the worker."""
    import sqlite3
    import threading

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store = box.recorder.store
    real_begin, real_shred = store.begin, store.shred_file
    capture = threading.current_thread()
    go, refused = threading.Event(), []

    def begin(call_id, *args, **kwargs):
        if store.call_row(call_id)["line"] == 1:
            refused.append(kwargs["recording_id"])
            raise sqlite3.OperationalError("disk I/O error")
        return real_begin(call_id, *args, **kwargs)

    def shred(recording_id, audit=True):
        if threading.current_thread() is not capture:
            go.wait()  # the worker, as slow as a crash makes it
        return real_shred(recording_id, audit=audit)

    monkeypatch.setattr(store, "begin", begin)
    monkeypatch.setattr(store, "shred_file", shred)
    box.start()
    try:
        assert box.board.run()
        assert refused
        assert [n for n in recording_files(data_dir) if n.startswith(refused[0])] == []
    finally:
        go.set()
        box.stop()
    assert outcome(lab.calls(data_dir))[0] == (1, "in", "skip", PERSONAL_REASON)


def _row_refused_then_destruction_refused(tmp_path, synth, lab, monkeypatch, card_back_at_code):
    """Line 1's recording row refused by the call log (an I/O error) and, once the code is
    keyed, its destruction refused by the card: ``(data_dir, calls, recording id,
    recording_failed alarms)`` after a clean stop. ``card_back_at_code``: the call log takes
    writes again just as the code is keyed (before its 5-s retry wrote the row)."""
    import sqlite3

    from firmware.bus import Alarm

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(3.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store, recorder = box.recorder.store, box.recorder
    real_begin, real_discard = store.begin, recorder.discard
    refusing, refused = [True], []

    def begin(call_id, *args, **kwargs):
        if refusing[0] and store.call_row(call_id)["line"] == 1:
            refused.append(kwargs["recording_id"])
            raise sqlite3.OperationalError("disk I/O error")
        return real_begin(call_id, *args, **kwargs)

    def discard(call, why=None, skip=None):
        if card_back_at_code:
            refusing[0] = False
        return real_discard(call, why=why, skip=skip)

    def shred(recording_id, audit=True):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store, "begin", begin)
    monkeypatch.setattr(recorder, "discard", discard)
    monkeypatch.setattr(store, "shred_file", shred)
    alarms = []
    box.bus.subscribe(Alarm, alarms.append)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    assert refused
    calls = lab.calls(data_dir)
    assert outcome(calls)[0] == (1, "in", "skip", PERSONAL_REASON)
    return data_dir, calls, refused[0], [a for a in alarms if a.kind == "recording_failed"]


def test_a_recording_whose_row_waited_is_given_it_before_its_destruction_so_repair_never_rebuilds_it(
    tmp_path, synth, lab, monkeypatch
):
    """The call log refused the recording's row and takes writes again when the code is
    keyed: the row is written first and then names no file, as any recording's whose
    destruction is decided. The card refusing the destruction then leaves that decision
    on the card: `linekeeper repair` does not make the file a recording again, and the next
    start destroys it, as the alarm says. (With no row, repair rebuilt the personal call
    from the file's sealed header and key copy.)"""
    data_dir, calls, rid, failed = _row_refused_then_destruction_refused(
        tmp_path, synth, lab, monkeypatch, card_back_at_code=True
    )
    row = [r for r in lab.recordings(data_dir) if r["id"] == rid]
    assert [(r["file"], r["discard_why"]) for r in row] == [("", PERSONAL_REASON)]
    assert [(a.line, a.call_id) for a in failed] == [(1, calls[0]["id"])]
    assert "the next start destroys it" in failed[0].message
    assert sum(n.startswith(rid) for n in recording_files(data_dir)) == 2  # file and key copy, for now
    status, out, err = lab.cli("repair", "--data-dir", data_dir)
    assert status == 0, err
    assert [r["call_id"] for r in lab.recordings(data_dir) if r["file"]] == [calls[1]["id"]]
    lab.sim(lab.scenario([], lines=2), data_dir)
    assert [n for n in recording_files(data_dir) if n.startswith(rid)] == []
    assert [r["call_id"] for r in lab.recordings(data_dir)] == [calls[1]["id"]]
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert [e.target for e in entries if e.action == "recording_deleted"] == ["recording:%s" % rid]


def test_a_recording_with_no_row_whose_destruction_the_card_refuses_says_what_the_technician_must_do(
    tmp_path, synth, lab, monkeypatch
):
    """The call log still refuses the row when the code is keyed, and the card refuses the
    destruction: nothing on the card says it was decided. The alarm says so, names the two
    files, and says what is true (the next start refuses to start on them; `linekeeper
    repair` would rebuild them) and what to do: with them overwritten and removed as it
    says, the box starts, and nothing of the personal call is left."""
    from firmware.errors import RecoveryRefused
    from firmware.recovery import preflight
    from firmware.storage import fsutil

    data_dir, calls, rid, failed = _row_refused_then_destruction_refused(
        tmp_path, synth, lab, monkeypatch, card_back_at_code=False
    )
    assert rid not in {r["id"] for r in lab.recordings(data_dir)}
    assert [(a.line, a.call_id) for a in failed] == [(1, calls[0]["id"])]
    message = failed[0].message
    assert "the next start destroys it" not in message
    assert "no row" in message and "refuses to start" in message and "`linekeeper repair`" in message
    files = [os.path.join(data_dir, "recordings", rid + suffix) for suffix in (".lkrec", ".lkkey")]
    assert all(path in message and os.path.exists(path) for path in files)
    with pytest.raises(RecoveryRefused, match="linekeeper repair"):
        preflight(data_dir)
    for path in files:  # what the alarm says to do (shred -u)
        fsutil.shred(path)
    lab.sim(lab.scenario([], lines=2), data_dir)
    assert [n for n in recording_files(data_dir) if n.startswith(rid)] == []
    assert [r["call_id"] for r in lab.recordings(data_dir)] == [calls[1]["id"]]
    assert outcome(lab.calls(data_dir))[0] == (1, "in", "skip", PERSONAL_REASON)


def test_the_line_alarm_of_a_row_kept_in_memory_goes_off_when_its_recording_is_destroyed(
    tmp_path, synth, lab, monkeypatch
):
    """The call log refused the recording's row, so the line's ``call_log`` alarm says its row
    is kept in memory until the call log takes it; the personal-call code then destroys the
    recording and the row with it. Nothing waits for the call log any more: the alarm goes
    off, as when the row is written, not left on until the box restarts."""
    import sqlite3

    from firmware.bus import Alarm

    from support.simbox import keyed_sim_box

    box, data_dir = keyed_sim_box(
        tmp_path,
        synth,
        [inbound(1, 1.0, keys=[(8.0, "*7")]), inbound(2, 1.0, talk=20.0)],
        2,
        config=lab.policy(rules=personal(lines=[1])),
    )
    store = box.recorder.store
    real_begin = store.begin
    refused = []

    def begin(call_id, *args, **kwargs):
        if store.call_row(call_id)["line"] == 1:
            refused.append(kwargs["recording_id"])
            raise sqlite3.OperationalError("disk I/O error")
        return real_begin(call_id, *args, **kwargs)

    monkeypatch.setattr(store, "begin", begin)
    alarms = []
    box.bus.subscribe(Alarm, lambda ev: alarms.append(ev) if ev.kind == "call_log" else None)
    box.start()
    try:
        assert box.board.run()
        assert refused
    finally:
        box.stop()
    assert outcome(lab.calls(data_dir))[0] == (1, "in", "skip", PERSONAL_REASON)
    assert [a.active for a in alarms if a.line == 1] == [True, False], alarms


def test_the_code_keyed_while_the_line_is_paused_still_marks_the_call(lab):
    """The line is paused (card details) when the staff member keys the code: the detectors
    hear nothing of a paused line, only the pause's own listener does. It heard the resume
    code alone, so the code was lost and the call recorded on to its end after the pause."""
    doc = lab.scenario(
        [inbound(1, 1.0, talk=20.0, keys=[(4.0, "*1"), (7.0, "*7"), (10.0, "*2")])],
        config=lab.policy(rules=personal()),
    )
    data_dir, (call,) = lab.sim(doc)
    assert (call["policy_decision"], call["policy_reason"]) == ("skip", PERSONAL_REASON)
    assert call["recording"] is None and recording_files(data_dir) == []
    assert call["pause_spans"] and call["pause_spans"][0]["ended_by"] == "dtmf"  # resumed by its code
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    assert [e.target for e in entries if e.action == "personal_call"] == ["call:%d" % call["id"]]
