"""Issue 16 acceptance: a power cut with the MCU's warning loses no audio.

The scenario cuts the box's supply while calls are under way on every line.
The HAT's MCU (its real firmware, on the simulated clock) warns the box - by
its GPIO line on the LK-2LB, by its status register on the LK-4L - and the box
seals every recording and call within the hold-up time; then the capacitor
runs out and the simulated Pi stops. When the power returns the box starts
again and records the next call. Checked against the simulated truth:

* every recording in progress at the warning holds every sample the board had
  delivered to the box by then (0 ms lost) and is the line's audio;
* those calls end as ``power_loss`` at the warning; ``verify`` passes;
* the call after the power returned is recorded, ``complete``.

The same is checked on the card as the cut leaves it: only what was synced
when the Pi stopped (:mod:`support.powercut`, every write not synced by then
lost), so that a seal whose writes only reached the page cache cannot pass.
"""

import contextlib
import os

import pytest

from firmware.box import RECORDER_DELAY_MS, open_sim_host
from firmware.bus import Alarm

from support.powercut import PowerCut
from support.recording_lab import PERIOD_MS, same_audio

S = [
    "Good morning, thank you for calling.",
    "I would like to check my order, please.",
    "Could you give me the order number?",
    "It is four five six, seven eight nine.",
]
CUT_S = 6.0
RESTORE_S = 20.0  # after the hold-up capacitor ran out (the Pi stopped)
DIP_S = 7.0  # before it did (a short dip: the box stopped work but kept power)
LATER_S = 23.0  # a call after the power returned


def _calls(lines):
    calls = []
    for line in range(1, lines + 1):
        at = 0.2 + 0.3 * line
        if line % 2:
            calls.append(
                {
                    "line": line,
                    "at": at,
                    "direction": "in",
                    "rings": 1,
                    "talk": 12.0,
                    "speech": [{"at": 0.2, "text": S[line % 4]}, {"at": 3.0, "text": S[(line + 1) % 4]}],
                }
            )
        else:
            calls.append(
                {
                    "line": line,
                    "at": at,
                    "direction": "out",
                    "dial": {"digits": "17", "delay": 0.2},
                    "talk": 12.0,
                    "speech": [{"at": 0.3, "text": S[line % 4]}],
                }
            )
    # After the power returns: a new call on line 1.
    calls.append(
        {
            "line": 1,
            "at": LATER_S,
            "direction": "in",
            "rings": 1,
            "talk": 4.0,
            "speech": [{"at": 0.2, "text": S[3]}],
        }
    )
    return calls


def _run(
    lab,
    hat,
    lines,
    restore_s,
    holdup_flush_ms=0,
    calls=None,
    before_start=None,
    cut_image=None,
    cut_s=CUT_S,
    config=None,
):
    """Run the scenario, the power cut at ``cut_s``; ``cut_image``: where to copy the card
    as the cut leaves it, when the Pi stops (the capacitor has run out), with only what
    was synced. ``config``: more of ``config.json``."""
    doc = lab.scenario_doc(
        _calls(lines) if calls is None else calls,
        lines=lines,
        hat=hat,
        power=[{"at": cut_s, "cut": True}, {"at": restore_s, "cut": False}],
        config=dict(config or {}, holdup_flush_ms=holdup_flush_ms),
    )
    scenario = lab.load(doc)
    data_dir = lab.init_data_dir(lab.tmp_path / ("%s-%s" % (hat, cut_s)))
    cut = PowerCut(data_dir) if cut_image else None
    with cut.observing() if cut else contextlib.nullcontext():
        host = open_sim_host(scenario, data_dir, synth=lab.synth, period_ms=PERIOD_MS)
        warnings = []

        def on_alarm(alarm):
            if alarm.kind == "power_fail" and alarm.active:
                warnings.append((alarm.t_us, host.board.delivered_us, host.box.power_watch.source))

        host.box.bus.subscribe(Alarm, on_alarm)
        if cut is not None:

            def on_power(event, t_us):
                if event == "brownout" and not os.path.exists(cut_image):
                    cut.image(cut_image)  # before the Pi stops, as the power goes

            host.board.on_power.insert(0, on_power)
        if before_start is not None:
            before_start(host)
        host.start()
        try:
            assert host.board.run()
        finally:
            host.stop()
    return scenario, data_dir, host, warnings


def _check_cut_calls(lab, scenario, data_dir, lines, warned_us, delivered_us, tag):
    """Every call under way at the warning ended as ``power_loss``, its recording holding
    every sample delivered to the box by then (0 ms lost), the line's audio; returns
    ``(calls by id, recording rows)``."""
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    calls = {c["id"]: c for c in lab.calls(data_dir)}
    rows = lab.rows(data_dir)
    wall_warned = scenario.start_wall_us + warned_us
    cut_rows = [r for r in rows if r["started_at"] < wall_warned]
    # After a short dip the new box joins the calls still under way; it records them
    # from then on as any call it finds in progress at start
    # (test_after_a_short_dip_the_calls_still_under_way_are_recorded_to_their_end).
    assert len(cut_rows) == lines
    for row in cut_rows:
        call = calls[row["call_id"]]
        assert call["end_reason"] == "power_loss", call
        assert row["state"] in ("complete", "partial"), row
        t0_us = lab.clock_us(scenario, row["started_at"])
        wav = str(lab.tmp_path / ("%s-%s.wav" % (tag, row["id"])))
        status, out, err = lab.export(data_dir, row["call_id"], wav)
        assert status == 0, err
        y = lab.read_wav(wav)
        end_us = t0_us + len(y) * 125
        loss_us = delivered_us - end_us
        print("%s line %d: %d ms lost at the power cut" % (tag, call["line"], loss_us // 1000))
        assert loss_us == 0, (row, loss_us)
        same_audio(lab.source(scenario, call["line"], t0_us, len(y)), y)
    return calls, rows


@pytest.mark.parametrize(
    "hat, lines, source, restore_s, holdup_flush_ms",
    [
        ("lk-2lb", 2, "gpio", RESTORE_S, 0),
        ("lk-4l", 4, "i2c", RESTORE_S, 0),
        ("lk-2lb", 2, "gpio", DIP_S, 0),
        # The stretched sync: audio waits up to 10 s in memory; the warning still saves it all.
        ("lk-4l", 4, "i2c", RESTORE_S, 10_000),
    ],
)
def test_power_cut_with_warning_loses_nothing_and_the_box_records_again(
    lab, hat, lines, source, restore_s, holdup_flush_ms
):
    scenario, data_dir, host, warnings = _run(lab, hat, lines, restore_s, holdup_flush_ms)
    # Audio waits in memory at most flush_ms (1 s) or holdup_flush_ms, the delay line
    # included: the recorder's chunks are shorter by the delay.
    assert host.boxes[0].recorder.flush_ms == (holdup_flush_ms or 1000) - RECORDER_DELAY_MS
    # The recordings' rows are synced with the call log's commits and at the warning.
    assert host.boxes[0].recordings.holdup == bool(holdup_flush_ms)
    # Call states wait as long as audio: the warning writes them with the rest (checked below).
    assert host.boxes[0].calllog.commit_us == max(1000, holdup_flush_ms) * 1000
    assert len(warnings) == 1, warnings
    warned_us, delivered_us, seen_by = warnings[0]
    assert seen_by == source
    cut_us = int(CUT_S * 1e6)
    # The MCU's 2 ms debounce, then the GPIO edge at once or the next 20 ms poll.
    assert cut_us < warned_us <= cut_us + 2_000 + (25_000 if source == "i2c" else 1_000)
    assert host.restarts == 1
    sealed = host.boxes[0]
    holdup_us = host.board.mcu.holdup_us()
    assert (restore_s - CUT_S) * 1e6 > holdup_us or restore_s == DIP_S
    assert sealed.seal_s is not None and sealed.seal_s * 1e6 < holdup_us

    calls, rows = _check_cut_calls(lab, scenario, data_dir, lines, warned_us, delivered_us, hat)
    later = [r for r in rows if r["started_at"] > scenario.start_wall_us + LATER_S * 1e6]
    assert len(later) == 1 and later[0]["state"] == "complete", later
    assert calls[later[0]["call_id"]]["end_reason"] != "power_loss"
    # The start after it says what happened: a sealed power cut, not "power cut or crash".
    from firmware.alarmlog import AlarmLog

    alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), host.boxes[0].clock)
    try:
        (restart,) = [r for r in alarms.history() if r["kind"] == "power_loss_restart"]
    finally:
        alarms.close()
    assert "after a power cut; at the warning it sealed every recording" in restart["message"], restart


def test_after_a_short_dip_the_calls_still_under_way_are_recorded_to_their_end(lab):
    """The power back before the Pi stopped: the new box finds both lines off-hook, the
    calls still going. It took each for a call being dialled, never answered, so the
    rest of the conversation (about 5 s each here) was not recorded at all; and it called
    them abandoned. Each is now a call under way, connected as the box starts, recorded
    to its end."""
    scenario, data_dir, host, warnings = _run(lab, "lk-2lb", 2, DIP_S)
    assert host.restarts == 1 and len(warnings) == 1
    calls = {c["id"]: c for c in lab.calls(data_dir)}
    restart = scenario.start_wall_us + warnings[0][0]  # after the cut (a recording has its pre-roll)
    rest = [
        r for r in lab.rows(data_dir) if restart <= r["started_at"] < scenario.start_wall_us + LATER_S * 1e6
    ]
    assert sorted(calls[r["call_id"]]["line"] for r in rest) == [1, 2]
    for row in rest:
        call = calls[row["call_id"]]
        assert call["answered_at"] is not None and call["end_reason"] not in ("abandoned", "power_loss"), call
        assert row["state"] == "complete", row
        # To the call's end (12 s of talk from 0.5 s or 0.8 s): about 5 s after the restart.
        assert row["duration_s"] > 4.0, row


def test_a_second_cut_close_behind_a_dip_is_warned_too(lab):
    """Power back 50 ms after a cut, gone again 50 ms later (LK-2LB, its warning on a
    GPIO line). The MCU holds its warning until the supply has been good for 500 ms; the
    simulator started the new box at once, under the warning, and a box that starts with
    the line already up never sees an edge: the second cut came unwarned, the calls
    unsealed. As on the Pi, the new box now starts once the warning has cleared, so the
    second cut is the first box's still, warned and sealed."""
    doc = lab.scenario_doc(
        _calls(2)[:2],
        lines=2,
        hat="lk-2lb",
        power=[
            {"at": CUT_S, "cut": True},
            {"at": CUT_S + 0.05, "cut": False},
            {"at": CUT_S + 0.1, "cut": True},
            {"at": RESTORE_S, "cut": False},
        ],  # fmt: skip
    )
    scenario = lab.load(doc)
    data_dir = lab.init_data_dir(lab.tmp_path / "second-cut")
    host = open_sim_host(scenario, data_dir, synth=lab.synth, period_ms=PERIOD_MS)
    unwarned = []
    host.board.on_power.insert(
        0,
        lambda event, t_us: (
            unwarned.append(t_us) if event == "brownout" and host.box and host.box.halted is None else None
        ),
    )
    host.start()
    try:
        assert host.board.run()
    finally:
        host.stop()
    assert unwarned == []
    assert host.restarts == 1  # once, after the second cut's brownout
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    calls = lab.calls(data_dir)
    assert [c["end_reason"] for c in calls] == ["power_loss", "power_loss"], calls


def test_a_stretched_sync_on_a_hat_that_cannot_warn_is_ignored_and_said_so(lab, caplog):
    """holdup_flush_ms on a HAT with no supervisor MCU: the box rightly writes every
    second, but said nothing, and the technician believed the card was spared writes."""
    import json

    from board.hat import hats_dir

    hat = json.loads((hats_dir() / "lk-2lb.json").read_text())
    del hat["mcu"]
    hat["id"] = "lk-2lb-no-mcu"
    hat_file = lab.tmp_path / "no-mcu.json"
    hat_file.write_text(json.dumps(hat))
    doc = lab.scenario_doc(_calls(2)[:2], lines=2, hat=str(hat_file), config={"holdup_flush_ms": 10_000})
    data_dir = lab.init_data_dir(lab.tmp_path / "no-mcu")
    host = open_sim_host(lab.load(doc), data_dir, synth=lab.synth, period_ms=PERIOD_MS)
    host.start()
    try:
        assert host.board.run()
    finally:
        host.stop()
    assert host.boxes[0].recorder.flush_ms == 1000 - RECORDER_DELAY_MS
    said = [r.getMessage() for r in caplog.records if "holdup_flush_ms (10000) is ignored" in r.getMessage()]
    assert len(said) == 1 and "has no supervisor MCU" in said[0], said


def test_an_mcu_that_stops_answering_raises_an_alarm_once(lab):
    """The MCU silent from 3 s to 25 s into the calls: the box logged it 50 times a
    second and told nobody that a power cut would come without warning meanwhile. Now
    one alarm, cleared when it answers again (and the cut at 30 s is warned)."""

    def silence_at_3_s(host):
        mcu = host.board.mcu
        host.box.clock.call_at(3_000_000, lambda: setattr(mcu, "present", False))
        host.box.clock.call_at(25_000_000, lambda: setattr(mcu, "present", True))

    scenario, data_dir, host, warnings = _run(lab, "lk-4l", 4, 40.0, before_start=silence_at_3_s, cut_s=30.0)
    assert len(warnings) == 1
    from firmware.alarmlog import AlarmLog

    alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), host.boxes[0].clock)
    try:
        raised = [r for r in alarms.history() if r["kind"] == "mcu_unreachable"]
    finally:
        alarms.close()
    assert len(raised) == 1, raised
    assert 5_000_000 <= raised[0]["raised_us"] - scenario.start_wall_us <= 5_100_000, raised
    assert 25_000_000 <= raised[0]["cleared_us"] - scenario.start_wall_us <= 26_100_000, raised


@pytest.mark.parametrize(
    "hat, lines, holdup_flush_ms", [("lk-2lb", 2, 0), ("lk-4l", 4, 0), ("lk-4l", 4, 2_000)]
)
def test_what_the_warning_synced_is_all_the_cut_leaves_and_all_it_needs(lab, hat, lines, holdup_flush_ms):
    """The card as the cut leaves it, nothing on it that was not synced when the Pi
    stopped: the next start's recovery (the journal replayed) finds every call closed
    as ``power_loss`` and every recording to its last delivered sample, and it verifies."""
    image = str(lab.tmp_path / ("cut-%s-%d" % (hat, holdup_flush_ms)))
    scenario, _data_dir, host, warnings = _run(lab, hat, lines, RESTORE_S, holdup_flush_ms, cut_image=image)
    assert len(warnings) == 1 and host.restarts == 1
    assert os.path.isdir(image)
    store = lab.store(image)
    try:
        store.recover()  # what the next start does first
    finally:
        store.close()
    warned_us, delivered_us, _ = warnings[0]
    _check_cut_calls(lab, scenario, image, lines, warned_us, delivered_us, "cut-" + hat)


# Moments of the calls' lives (_calls: lines answered or dialling from 0.5 s to 1.4 s,
# talking 12 s, ended from 12.7 s): ringing and dialling, just answered, mid-call, as
# the calls end and in the recorder's grace period after.
CUT_MOMENTS_S = (0.6, 1.1, 1.6, 2.4, 9.0, 12.6, 13.1, 13.6)


@pytest.mark.slow  # sixteen runs of the box
@pytest.mark.parametrize("holdup_flush_ms", [0, 2_000])
@pytest.mark.parametrize("cut_s", CUT_MOMENTS_S)
def test_a_cut_at_any_moment_of_the_calls_loses_nothing(lab, cut_s, holdup_flush_ms):
    """The cut at other moments than mid-call: on the card as the cut leaves it (the
    next start's recovery run on it) and as the box left it, ``verify`` passes, every
    call has an end, every recording of a call the cut ended holds every sample
    delivered by the warning, and the call after the power returned is recorded."""
    image = str(lab.tmp_path / ("cut-%s-%d" % (cut_s, holdup_flush_ms)))
    scenario, data_dir, host, warnings = _run(
        lab, "lk-4l", 4, RESTORE_S, holdup_flush_ms, cut_image=image, cut_s=cut_s
    )
    assert len(warnings) == 1 and host.restarts == 1
    warned_us, delivered_us, _ = warnings[0]
    store = lab.store(image)
    try:
        store.recover()  # what the next start does first
    finally:
        store.close()
    for where in (image, data_dir):
        status, out, err = lab.verify(where)
        assert status == 0, (where, out, err)
        calls = {c["id"]: c for c in lab.calls(where)}
        assert all(c["ended_at"] for c in calls.values()), calls
        rows = lab.rows(where)
        cut_rows = [
            r
            for r in rows
            if r["started_at"] < scenario.start_wall_us + warned_us
            and calls[r["call_id"]]["end_reason"] == "power_loss"
        ]
        for row in cut_rows:
            assert row["bytes"], (where, row)  # every recording begun had its first chunk sealed
            t0_us = lab.clock_us(scenario, row["started_at"])
            wav = str(lab.tmp_path / ("%s-%s.wav" % (os.path.basename(where), row["id"])))
            status, out, err = lab.export(where, row["call_id"], wav)
            assert status == 0, err
            y = lab.read_wav(wav)
            assert delivered_us - (t0_us + len(y) * 125) == 0, (where, row)
            same_audio(lab.source(scenario, calls[row["call_id"]]["line"], t0_us, len(y)), y)
    later = [r for r in rows if r["started_at"] > scenario.start_wall_us + LATER_S * 1e6]
    assert len(later) == 1 and later[0]["state"] == "complete", later


def test_under_a_minute_long_interval_the_warning_writes_the_calls_that_ended_before_it(lab):
    """holdup_flush_ms 60 s: a call that ended a few seconds before the cut waits in memory
    (its end, its recording's end and audit entries are not synced yet); the warning puts
    it on the card with its true end, beside the calls it closes as power_loss."""
    calls = _calls(4)[:3] + [
        {
            "line": 4,
            "at": 0.5,
            "direction": "in",
            "rings": 1,
            "talk": 2.5,
            "speech": [{"at": 0.2, "text": S[0]}],
        }
    ]
    waiting = []

    def look_before_the_cut(host):
        box = host.box
        box.clock.call_at(int((CUT_S - 0.1) * 1e6), lambda: waiting.append(box.calllog.waiting))

    scenario, data_dir, host, warnings = _run(
        lab, "lk-4l", 4, RESTORE_S, 60_000, calls=calls, before_start=look_before_the_cut
    )
    sealed = host.boxes[0]
    assert sealed.calllog.holdup and sealed.calllog.commit_us == 60_000_000
    assert len(warnings) == 1 and sealed.seal_s * 1e6 < host.board.mcu.holdup_us()
    # Before the cut the ended call's states waited (in memory or unsynced); after the
    # seal nothing of the box's own does: calls.db synced, the audit group committed.
    assert waiting == [True]
    assert not sealed.calllog.waiting and sealed.audit.waiting == 0
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    wall_warned = scenario.start_wall_us + warnings[0][0]
    calls_by_line = {}
    for call in lab.calls(data_dir):
        calls_by_line.setdefault(call["line"], call)
    rows = {r["call_id"]: r for r in lab.rows(data_dir)}
    ended = calls_by_line[4]
    assert ended["end_reason"] != "power_loss", ended
    assert rows[ended["id"]]["state"] == "complete"
    for line in (1, 2, 3):
        assert calls_by_line[line]["end_reason"] == "power_loss", calls_by_line[line]
        assert rows[calls_by_line[line]["id"]]["started_at"] < wall_warned


@pytest.mark.parametrize("holdup_flush_ms", [0, 2_000])
def test_a_holdup_shorter_than_the_mcu_said_costs_no_more_than_a_cut_without_warning(lab, holdup_flush_ms):
    """The warning came, but the capacitor runs out during the seal (aged, or the MCU's
    figure wrong): the power goes at each write, sync, rename and removal of the seal,
    and after each sync of a database (:class:`~support.powercut.AfterImage`). Each
    image must keep the promises of a cut with no warning at all: every recording
    ``complete`` or ``partial``, ``verify`` passes, audio lost within the path's bound;
    and after the next start, a quiet second and a clean stop, ``verify`` still passes."""
    import random

    from .test_crash_unsynced import PATHS, SEED, check_cut
    from support.powercut import AfterImage

    hat, lines = "lk-4l", 4
    path = PATHS["holdup" if holdup_flush_ms else "journal"]
    extra = {"hat": hat, "config": {"holdup_flush_ms": holdup_flush_ms}}
    calls = _calls(lines)[:-1]  # the calls the cut finds under way
    scenario = lab.load(
        lab.scenario_doc(
            calls, lines=lines, power=[{"at": CUT_S, "cut": True}, {"at": RESTORE_S, "cut": False}], **extra
        )
    )
    images, state = [], {"sealing": False}

    def on_call(name):
        if state["sealing"]:
            image = str(lab.tmp_path / ("seal-cut-%03d" % (len(images) + 1)))
            model.image(image, random.Random(SEED + len(images)))
            images.append((image, name, state["box"].clock.now_us()))

    data_dir = lab.init_data_dir(lab.tmp_path / "card")
    model = AfterImage(data_dir, on_call)
    with model.observing():
        host = open_sim_host(scenario, data_dir, synth=lab.synth, period_ms=PERIOD_MS)
        state["box"] = host.box

        def on_power(event, t_us):
            if event == "brownout":
                state["sealing"] = False

        # From the supply's cut (the warning follows within 25 ms) to the Pi's stop.
        host.box.clock.call_at(int(CUT_S * 1e6), lambda: state.update(sealing=True))
        host.board.on_power.insert(0, on_power)
        host.start()
        try:
            assert host.board.run()
        finally:
            host.stop()
    assert len(images) >= 10, images  # the seal writes and syncs (every line, the logs)
    restart = lab.load(lab.scenario_doc([], lines=lines, **extra))
    chunk_us = host.boxes[0].recorder.chunk_ms * 1000
    for image, name, t_us in images:
        what = "%s (%s)" % (image, name)
        check_cut(lab, image, scenario, t_us, what, path, chunk_us)
        lab.run(restart, image, until_us=1_000_000)
        status, out, err = lab.verify(image)
        assert status == 0, (what, "after a clean stop", out, err)
    print("cuts during the seal: %d" % len(images))


@pytest.mark.parametrize("holdup_flush_ms", [0, 2_000])
def test_the_seal_does_not_wait_behind_the_destruction_of_personal_calls(lab, holdup_flush_ms):
    """Three calls marked personal (the code keyed 3 s in) just before the cut: their
    recordings, already begun on the card, are the recorder's worker's to destroy, and
    the first destruction is slow (blocked until the seal is done, or 5 s). The seal
    used to wait for every one of them before it wrote and closed the calls: the calls
    are now closed as ``power_loss`` and the call log synced while the destruction is
    still blocked; those not begun are left to the next start, which destroys them
    (no file, no key copy, no row), each deletion audited with its reason."""
    import threading

    from firmware.box import open_audit
    from firmware.policy.rules import PERSONAL_REASON

    calls = _calls(4)  # the last: after the power returned
    for call in calls[:3]:
        call["keys"] = [{"at": 3.0, "digits": "*7"}]
    config = {"policy": {"rules": {"personal": {"dtmf_code": "*7", "lines": [1, 2, 3]}}}}
    release = threading.Event()  # set when the seal is done
    seen = {"shredded": [], "waited_out": False, "closed": [], "at_alarm": None}

    def slow_destructions(host):
        box = host.box
        store, calllog = box.recorder.store, box.calllog
        shred_file, close_open = store.shred_file, calllog.close_open

        def slow_shred(recording_id, audit=True):
            seen["shredded"].append(recording_id)
            if not release.is_set() and not seen["waited_out"]:
                seen["waited_out"] = not release.wait(timeout=5)
            return shred_file(recording_id, audit=audit)

        def closing(reason, ended_at=None):
            ids = close_open(reason, ended_at)
            seen["closed"].append((reason, len(ids), not release.is_set() and len(seen["shredded"]) == 1))
            return ids

        def on_alarm(alarm):
            if alarm.kind == "power_fail" and alarm.active:
                seen["at_alarm"] = (calllog.waiting, box.audit.waiting, seen["waited_out"])
                release.set()

        store.shred_file = slow_shred
        calllog.close_open = closing
        box.bus.subscribe(Alarm, on_alarm)

    scenario, data_dir, host, warnings = _run(
        lab, "lk-4l", 4, RESTORE_S, holdup_flush_ms, calls, before_start=slow_destructions, config=config
    )
    assert len(warnings) == 1 and host.restarts == 1
    # The calls were closed, and the call log and audit trail on the card, while the
    # first destruction was still blocked; the others had not begun.
    assert seen["closed"] == [("power_loss", 4, True)], seen
    assert seen["at_alarm"] == (False, 0, False), seen
    assert len(seen["shredded"]) == 1, seen
    sealed = host.boxes[0]
    assert sealed.seal_s < 1.0  # (5 s and more when it waited)
    status, out, err = lab.verify(data_dir)
    assert status == 0, (out, err)
    cut_calls = sorted(lab.calls(data_dir), key=lambda c: c["id"])[:4]  # the fifth: after the cut
    assert [(c["line"], c["end_reason"]) for c in cut_calls] == [(n, "power_loss") for n in (1, 2, 3, 4)]
    assert [c["policy_reason"] == PERSONAL_REASON for c in cut_calls] == [True, True, True, False]
    rows = lab.rows(data_dir)
    # Kept: line 4's recording and the call's after the power returned, each with its files.
    kept = {r["id"] for r in rows}
    assert len(rows) == 2 and cut_calls[3]["id"] in {r["call_id"] for r in rows}, rows
    on_card = {name.split(".")[0] for name in os.listdir(os.path.join(data_dir, "recordings"))}
    assert on_card == kept and host.boxes[1].quarantined == []  # none moved aside either
    with open_audit(data_dir) as audit:
        entries = audit.entries(limit=-1, newest_first=False)
    created = {e.target for e in entries if e.action == "recording_created"}
    destroyed = created - {"recording:" + rid for rid in kept}
    assert len(destroyed) == 3, (created, kept)
    deleted = [(e.target, e.details["why"]) for e in entries if e.action == "recording_deleted"]
    assert sorted(deleted) == sorted((target, PERSONAL_REASON) for target in destroyed)
    # The two not begun at the warning: counted in its entry, done by the next start.
    (power_fail,) = [e for e in entries if e.action == "power_fail"]
    assert power_fail.details["destructions_left"] == 2
    restarted = [rid for what, rid, _ in host.boxes[1].recovered if what == "discarded"]
    assert len(restarted) == 2 and {"recording:" + rid for rid in restarted} < destroyed


def test_a_cut_during_the_consent_notice_seals_the_recording_as_any(lab):
    """The power goes 1 s or so into the announcement of an inbound call. A call that ended
    during its notice keeps no recording (docs/policy.md); a power cut is not the call
    ending: the recording is sealed as every recording under way, the call ends as
    ``power_loss``, its recording kept."""
    from firmware.box import open_audit

    from support.policy_lab import wall_us

    calls = _calls(1)  # line 1, answered just before the cut; then a call after the power returned
    calls[0]["at"] = CUT_S - 2.5
    config = {"policy": {"consent": {"inbound": "announcement"}}}
    scenario, data_dir, host, warnings = _run(lab, "lk-2lb", 2, RESTORE_S, calls=calls, config=config)
    assert len(warnings) == 1 and host.restarts == 1
    cut, _later = sorted(lab.calls(data_dir), key=lambda c: c["id"])
    assert cut["end_reason"] == "power_loss" and cut["policy_decision"] == "record"
    assert cut["consent"]["given"] and "cut_short" not in cut["consent"]
    told_us = lab.clock_us(scenario, wall_us(cut["consent"]["at"])) + cut["consent"]["duration_s"] * 1e6
    assert told_us > warnings[0][0]  # the notice was still playing at the warning
    (row,) = [r for r in lab.rows(data_dir) if r["call_id"] == cut["id"]]
    assert row["state"] in ("complete", "partial")
    with open_audit(data_dir) as audit:
        deleted = [e.target for e in audit.entries(limit=-1) if e.action == "recording_deleted"]
    assert "recording:" + row["id"] not in deleted


@pytest.mark.parametrize("holdup_flush_ms", [0, 10_000])
def test_a_call_still_being_dialled_at_the_cut_keeps_the_digits_dialled_before_it(lab, holdup_flush_ms):
    """A number dialled, the far end not answered yet and nothing heard of it (no ringback,
    the dial timeout not run out): the call's number is not written while it is dialled
    (a card keyed straight on would join it), so the warning closed the call as
    ``power_loss`` with no number at all, though a whole number was dialled seconds
    before. The digits the box heard before the cut are kept, masked as ever: line 2's
    card keyed straight on after the number, line 3's pulsed digits (not the one still
    being pulsed at the cut: how many pulses it would have had is unknown)."""
    dialled = "01632960123"
    card = "4111111111111111"

    def out(line, digits, mode="dtmf"):
        return {
            "line": line,
            "at": 0.5,
            "direction": "out",
            "dial": {"digits": digits, "mode": mode, "delay": 0.5, "answer_after": 5.0},
            "talk": 1.0,  # on-hook before the power returns
        }

    # Pulsed from 1.0 s: 0 (1 s of pulses and 0.8 s pause), 1 (0.1 + 0.8), 6 (0.6 + 0.8),
    # 3 from 5.1 s: the cut at 5.2 s comes in its pulses.
    calls = [out(1, dialled), out(2, dialled + card), out(3, dialled, "pulse")]
    scenario, data_dir, host, warnings = _run(
        lab, "lk-4l", 3, RESTORE_S, holdup_flush_ms, calls=calls, cut_s=5.2
    )
    assert len(warnings) == 1
    numbers = {c["line"]: (c["number"], c["end_reason"], c["answered_at"]) for c in lab.calls(data_dir)}
    # The card is masked from where it may begin, as at an on-hook (the digits keyed after
    # it was recognised withheld, not kept even as an X).
    masked = numbers[2][0]
    assert masked[: len(dialled)] == dialled and set(masked[len(dialled) :]) == {"X"}, masked
    assert numbers == {
        1: (dialled, "power_loss", None),
        2: (masked, "power_loss", None),
        3: ("016", "power_loss", None),
    }, numbers
