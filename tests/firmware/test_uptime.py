"""The recorder's running record (firmware/uptime.py): how ``box_start`` dates the time
nothing was recorded, and a start whose entry the card refuses."""

import datetime as dt
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_audit, open_sim_box
from firmware.calls.calllog import iso_ms
from firmware.reports.downtime import downtime
from firmware.reports.period import Period
from firmware.storage.audit import AuditEntry, AuditLog
from firmware.uptime import boot_id, last_alive_us, restarted_for_update, start_details, write_alive

HOUR_US = 3_600_000_000
T0 = 1_772_442_000_000_000  # 2026-03-02 09:00 UTC


# An idle one-line box: the runs these tests start, stop and cut.
QUIET = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []}


def refuse_entries(monkeypatch, actions, error):
    """Make the audit trail refuse the entries of ``actions`` (raise ``error``), as a full
    or failing card refuses them; every other entry is appended as ever. Returns the
    real ``AuditLog.append``, to put back when the card takes entries again."""
    append = AuditLog.append

    def refusing(self, actor, action, *args, **kwargs):
        if action in actions:
            raise error
        return append(self, actor, action, *args, **kwargs)

    monkeypatch.setattr(AuditLog, "append", refusing)
    return append


def _utc_us_of(iso):
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1_000_000


def _entry(seq, wall_us, action):
    return AuditEntry(seq, wall_us, "system", action, "box", {"release": "0.1.0"}, "", "")


class _Trail:
    """The two look-ups start_details makes: the latest entry of an action."""

    def __init__(self, *entries):
        self._entries = entries

    def entries(self, limit, action):
        return [e for e in sorted(self._entries, key=lambda e: -e.seq) if e.action == action][:limit]


def _after_a_power_cut(trail, data_dir):
    """``box_start``'s details after a run the HAT's power-fail warning sealed."""
    return start_details(
        stopped_cleanly=False,
        clean_stop_us=None,
        power_failed=True,
        crashed=False,
        after_update=False,
        audit=trail,
        data_dir=data_dir,
    )


def test_a_clean_stop_with_no_time_is_dated_from_the_end_of_the_last_run_on_record(tmp_path):
    """The last run's box_start and box_stop were refused (its mark has no time). The run
    before it lasted 20 s (box_start and box_stop at its stop, no sign of life): the gap
    is from its stop, not from an older run's sign of life, which would count the time
    before that short run twice and the run itself as not recording."""
    write_alive(tmp_path, T0 - 2 * HOUR_US)
    start = AuditEntry(11, T0 - HOUR_US + 20_000_000, "system", "box_start", "box", {}, "", "")
    start.details["started"] = iso_ms(T0 - HOUR_US)
    trail = _Trail(_entry(10, T0 - 2 * HOUR_US, "box_stop"), start, _entry(12, start.wall_us, "box_stop"))
    details = start_details(
        stopped_cleanly=True,
        clean_stop_us=None,
        power_failed=False,
        crashed=False,
        after_update=False,
        audit=trail,
        data_dir=tmp_path,
    )
    assert (details["after"], details["down_from"]) == ("clean_stop", iso_ms(start.wall_us))
    details = start_details(
        stopped_cleanly=True,
        clean_stop_us=None,
        power_failed=False,
        crashed=False,
        after_update=False,
        audit=_Trail(),
        data_dir=tmp_path / "nothing",
    )
    assert details["down_from"] is None  # nothing to date it from


def test_a_clean_stop_on_record_whose_mark_the_card_refused_is_not_a_crash(tmp_path):
    """The run stopped cleanly, its box_stop on the card, then the card refused its clean-stop
    mark (the running mark was gone: the next start raised no power_loss_restart). The
    start said after a crash, dated from the last sign of life: the report called a
    clean stop a power cut or crash that no alarm had said. A box_stop before the last
    start is an older stop's: that is a crash still."""
    write_alive(tmp_path, T0 - 30_000_000)
    trail = _Trail(_entry(11, T0 - HOUR_US, "box_start"), _entry(12, T0, "box_stop"))
    neither = dict(stopped_cleanly=False, clean_stop_us=None, power_failed=False, after_update=False)
    details = start_details(**neither, crashed=False, audit=trail, data_dir=tmp_path)
    assert (details["after"], details["down_from"]) == ("clean_stop", iso_ms(T0))
    details = start_details(**neither, crashed=True, audit=trail, data_dir=tmp_path)
    assert (details["after"], details["down_from"]) == ("crash", iso_ms(T0 - 30_000_000))
    older = _Trail(_entry(11, T0 - 2 * HOUR_US, "box_stop"), _entry(12, T0 - HOUR_US, "box_start"))
    details = start_details(**neither, crashed=False, audit=older, data_dir=tmp_path)
    assert (details["after"], details["down_from"]) == ("crash", iso_ms(T0 - 30_000_000))


def test_a_power_cut_whose_entry_the_card_refused_is_not_dated_from_an_older_cut(tmp_path):
    """The power-fail seal went, its audit entry did not (a card error, only logged): the
    latest power_fail entry is a cut from before the last start, a week ago. The time not
    recording is from the last sign of life, not from that old cut."""
    week_ago, started = T0 - 7 * 24 * HOUR_US, T0 - 6 * 24 * HOUR_US
    write_alive(tmp_path, T0)
    trail = _Trail(_entry(10, week_ago, "power_fail"), _entry(11, started, "box_start"))
    details = _after_a_power_cut(trail, tmp_path)
    assert details["after"] == "power_fail"
    assert details["down_from"] == iso_ms(T0)


def test_the_power_cut_entry_after_the_last_start_dates_the_gap(tmp_path):
    write_alive(tmp_path, T0 - 30_000_000)
    trail = _Trail(_entry(11, T0 - HOUR_US, "box_start"), _entry(12, T0, "power_fail"))
    details = _after_a_power_cut(trail, tmp_path)
    assert details == {"after": "power_fail", "down_from": iso_ms(T0), "release": details["release"]}


def test_a_start_whose_entry_the_card_refuses_is_tried_again_and_stops_cleanly(tmp_path, synth, monkeypatch):
    """box_start is written a minute into the run: a card refusing it then does not stop
    the recording; it is tried again at the next sign of life (none is written before it,
    or a crash would be dated from this run with its start unrecorded), and the stop that
    follows closes the files and lets go of the data folder."""
    doc = QUIET
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    append = refuse_entries(monkeypatch, {"box_start"}, OSError(28, "No space left on device"))
    box.start()
    started = box.clock.wall_at(box.clock.now_us())
    box.clock.run_until(box.clock.now_us() + 61_000_000)
    assert last_alive_us(data_dir) is None
    monkeypatch.setattr(AuditLog, "append", append)
    box.clock.run_until(box.clock.now_us() + 60_000_000)
    [entry] = box.audit.entries(limit=5, action="box_start")
    assert entry.details["started"] == iso_ms(started) and entry.details["after"] == "first_start"
    assert last_alive_us(data_dir) == started + 120_000_000
    box.stop()
    again = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    again.start()
    again.stop()


def test_a_recorder_crashing_in_a_loop_adds_no_entry_a_start(tmp_path, synth):
    """systemd starts a crashed recorder again after 2 s, for ever: a box_start at every
    start grew the audit trail by thousands of entries a day. A run that crashes within its
    first minute writes neither box_start nor a sign of life, and the run that lasts dates
    the gap from the last sign of the run before the loop."""
    doc = QUIET
    folder = str(tmp_path / "run0")
    box = open_sim_box(loads_scenario(json.dumps(doc)), folder, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000 + 1)
    alive = last_alive_us(folder)
    assert alive == box.clock.wall_at(box.clock.now_us()) - 1
    for n in range(1, 4):  # the card as each crash leaves it; each run lasts 10 s
        crashed = str(tmp_path / ("run%d" % n))
        shutil.copytree(folder, crashed, ignore=shutil.ignore_patterns("*.lock", "lock"))
        box.stop()
        folder = crashed
        later = dict(doc, start="2026-03-02T%02d:00:00Z" % (10 + n))
        box = open_sim_box(loads_scenario(json.dumps(later)), folder, synth=synth)
        box.start()
        started = box.clock.wall_at(box.clock.now_us())
        box.clock.run_until(box.clock.now_us() + 10_000_000)
    box.clock.run_until(box.clock.now_us() + 60_000_000)
    starts = box.audit.entries(limit=10, action="box_start")
    assert [e.details["after"] for e in starts] == ["crash", "first_start"]
    assert starts[0].details["down_from"] == iso_ms(alive)
    assert starts[0].details["started"] == iso_ms(started)
    box.stop()


def test_a_start_on_a_clock_set_right_within_its_first_minute_is_dated_by_the_clock_set_right(
    tmp_path, synth
):
    """A Pi has no clock of its own: after three hours without power it boots at the time it
    last saved (about when it went off), and NTP puts the clock right seconds later. The
    run's start, dated with the clock as it was then, fell beside the last run's end, and the
    three hours not recording vanished from every report; written a minute in, with the
    clock set right, it is dated by the right clock."""
    doc = QUIET
    folder = str(tmp_path / "data")
    box = open_sim_box(loads_scenario(json.dumps(doc)), folder, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000)
    box.stop()
    stopped = box.clock.wall_at(box.clock.now_us())

    booted = dict(doc, start="2026-03-02T09:05:30Z")  # the clock as the Pi saved it
    box = open_sim_box(loads_scenario(json.dumps(booted)), folder, synth=synth)
    box.start()
    started = box.clock.wall_at(box.clock.now_us()) + 3 * HOUR_US  # in the right time
    box.clock.run_until(box.clock.now_us() + 5_000_000)
    box.clock.start_wall_us += 3 * HOUR_US  # NTP: the clock set right
    box.clock.run_until(box.clock.now_us() + 60_000_000)
    [entry] = box.audit.entries(limit=1, action="box_start")
    box.stop()

    assert entry.details["after"] == "clean_stop"
    assert entry.details["down_from"] == iso_ms(stopped)
    assert entry.details["started"] == iso_ms(started)
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(os.path.join(folder, "audit.db"), day, started + HOUR_US)
    assert record["down_us"] >= 3 * HOUR_US  # the report says so


def _restart_on_an_unset_clock(folder, synth):
    """Run 1 (its clock set) for five minutes and stop; run 2 boots three hours later at the
    time the Pi saved (09:05:30), its clock not set, and lasts 90 s. Returns run 2's box,
    when run 1 stopped and when run 2 really started."""
    box = open_sim_box(loads_scenario(json.dumps(QUIET)), folder, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000)
    box.stop()
    stopped = box.clock.wall_at(box.clock.now_us())
    box = open_sim_box(
        loads_scenario(json.dumps(dict(QUIET, start="2026-03-02T09:05:30Z"))), folder, synth=synth
    )
    box.clock.synchronised = False  # no network time yet
    box.start()
    started = box.clock.wall_at(box.clock.now_us()) + 3 * HOUR_US
    box.clock.run_until(box.clock.now_us() + 90_000_000)
    return box, stopped, started


def test_a_start_dated_by_a_clock_not_set_says_so_and_is_dated_again_once_it_is(tmp_path, synth):
    """A Pi with no network time dates its start three hours early, beside the last run's
    end: box_start says its clock was not set, the report gives the gap as approximate (at
    least its length), and once NTP sets the clock the start is dated again (clock_set),
    from the same instant on the monotonic clock, and the gap is exact."""
    folder = str(tmp_path / "data")
    box, stopped, started = _restart_on_an_unset_clock(folder, synth)
    [entry] = box.audit.entries(limit=1, action="box_start")
    assert entry.details["clock_synced"] is False
    assert entry.details["started"] == iso_ms(started - 3 * HOUR_US)
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    audit_db = os.path.join(folder, "audit.db")
    # Read while the run goes on (its sign of life fresh then).
    [_, gap] = downtime(audit_db, day, started + HOUR_US, alive_us=started + HOUR_US)["down"]
    assert (gap["from_us"], gap["to_us"], gap["approximate"]) == (stopped, started - 3 * HOUR_US, True)

    box.clock.start_wall_us += 3 * HOUR_US  # NTP: the clock set right
    box.clock.synchronised = True
    box.clock.run_until(box.clock.now_us() + 60_000_000)  # the next minute's sign of life
    [fix] = box.audit.entries(limit=1, action="clock_set")
    box.stop()
    assert fix.details == {
        "started": iso_ms(started),
        "was": iso_ms(started - 3 * HOUR_US),
        "correction_s": 3 * 3600.0,
    }
    record = downtime(audit_db, day, started + HOUR_US)
    [_, gap, after] = record["down"]
    assert (gap["from_us"], gap["to_us"], gap["approximate"]) == (stopped, started, False)
    assert (after["cause"], after["approximate"]) == ("clean_stop", False)  # its stop dated right
    assert record["down_us"] >= 3 * HOUR_US


def test_a_clock_set_in_a_run_s_last_minute_is_noted_at_its_stop(tmp_path, synth):
    folder = str(tmp_path / "data")
    box, _, started = _restart_on_an_unset_clock(folder, synth)
    box.clock.start_wall_us += 3 * HOUR_US
    box.clock.synchronised = True
    box.stop()  # before the next minute's sign of life
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    [_, gap, _] = downtime(os.path.join(folder, "audit.db"), day, started + HOUR_US)["down"]
    assert (gap["to_us"], gap["approximate"]) == (started, False)


def test_a_run_whose_clock_was_never_set_dates_its_stop_approximately(tmp_path, synth):
    """Its stop was dated by the same clock: the time after it, still going on, is
    approximate too (its start as much as the one before it)."""
    folder = str(tmp_path / "data")
    box, stopped, started = _restart_on_an_unset_clock(folder, synth)
    box.stop()
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(os.path.join(folder, "audit.db"), day, started + HOUR_US)
    assert [(d["cause"], d["approximate"]) for d in record["down"]] == [
        ("not_started", False),
        ("clean_stop", True),
        ("clean_stop", True),
    ]


def _crash_and_start(box, tmp_path, start):
    """The card as a power cut without warning leaves it now (no stop), started again at
    ``start`` (ISO) for a minute and stopped: the last sign of life the cut left, that
    run's ``box_start`` details and the folder."""
    crashed = str(tmp_path / "crashed")
    shutil.copytree(box.data_dir, crashed, ignore=shutil.ignore_patterns("*.lock", "lock"))
    box.stop()
    alive = last_alive_us(crashed)
    again = open_sim_box(loads_scenario(json.dumps(dict(QUIET, start=start))), crashed, synth=box.synth)
    again.start()
    again.clock.run_until(again.clock.now_us() + 61_000_000)
    [entry] = again.audit.entries(limit=1, action="box_start")
    again.stop()
    return alive, entry.details, crashed


def test_a_clock_set_back_in_the_last_minute_before_a_power_cut_does_not_date_the_cut(tmp_path, synth):
    """The clock an hour ahead (synchronised as far as the box knew) is set right by hand at
    09:05:30, half a minute after the last sign of life, and the power goes 15 s later with
    no warning. The cut was dated by that sign, on the clock an hour ahead: the report said
    the two hours the box was off were one. The sign is made again, on the card, as soon as
    the clock is seen stepping: the cut is dated by the clock set right."""
    folder = str(tmp_path / "data")
    box = open_sim_box(loads_scenario(json.dumps(QUIET)), folder, synth=synth)
    box.synth = synth
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000 + 30_000_000)
    box.clock.start_wall_us -= HOUR_US  # set back by hand: 08:05:30
    set_at = box.clock.wall_at(box.clock.now_us())
    box.clock.run_until(box.clock.now_us() + 15_000_000)
    cut = box.clock.wall_at(box.clock.now_us())
    alive, details, crashed = _crash_and_start(box, tmp_path, "2026-03-02T10:05:45Z")
    assert set_at <= alive <= cut
    assert (details["after"], details["down_from"]) == ("crash", iso_ms(alive))
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(os.path.join(crashed, "audit.db"), day, cut + 3 * HOUR_US)
    [_, gap] = record["down"][:2]
    assert (gap["from_us"], gap["to_us"], gap["approximate"]) == (alive, cut + 2 * HOUR_US, False)
    # Which of the two clocks was right is not known: the run's start keeps its date, and
    # the first start on record with it (a clock set a year ahead by mistake would make
    # every day before then "before the box was first started").
    with open_audit(crashed) as audit:
        [fix] = audit.entries(limit=1, action="clock_set")
    assert fix.details["stepped"] is True and fix.details["correction_s"] == -3600.0
    assert record["first_start_us"] == T0 and not record["before_first_start"]


def test_a_power_cut_in_the_seconds_after_the_clock_is_set_is_dated_by_the_clock_set(tmp_path, synth):
    """The clock an hour ahead is set right by hand at 09:05:30, and the power goes a tenth
    of a second later, with no warning. The clock was looked at every 5 s: the cut came
    before the next look and was dated by the sign before the step, on the clock an hour
    ahead. The clock says when it is set (the kernel's word on the box; the simulated
    clock's here), and the sign is made again then: the cut is dated by the clock set."""
    folder = str(tmp_path / "data")
    box = open_sim_box(loads_scenario(json.dumps(QUIET)), folder, synth=synth)
    box.synth = synth
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000 + 30_000_000)
    box.clock.start_wall_us -= HOUR_US  # set back by hand: 08:05:30
    set_at = box.clock.wall_at(box.clock.now_us())
    box.clock.run_until(box.clock.now_us() + 100_000)
    cut = box.clock.wall_at(box.clock.now_us())
    alive, details, crashed = _crash_and_start(box, tmp_path, "2026-03-02T10:05:45Z")
    assert alive == set_at and details["down_from"] == iso_ms(alive)
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    [_, gap] = downtime(os.path.join(crashed, "audit.db"), day, cut + 3 * HOUR_US)["down"][:2]
    again = _utc_us_of("2026-03-02T10:05:45Z")
    assert (gap["from_us"], gap["to_us"], gap["approximate"]) == (alive, again, False)
    assert cut - alive == 100_000


def test_a_clock_set_by_ntp_in_the_last_minute_before_a_power_cut_dates_the_cut_right(tmp_path, synth):
    """A run started on a clock not set (three hours behind); NTP sets it half a minute after
    the last sign of life and the power goes 10 s later, with no warning. The cut was dated
    by that sign, three hours early, and said "at least" a time three hours too long. The
    clock being set is audited (clock_set) and the sign made again at once: the run's start
    and its cut are both dated by the clock set right, neither approximate."""
    folder = str(tmp_path / "data")
    box, stopped, started = _restart_on_an_unset_clock(folder, synth)
    box.synth = synth
    box.clock.start_wall_us += 3 * HOUR_US  # NTP: the clock set right
    box.clock.synchronised = True
    box.clock.run_until(box.clock.now_us() + 10_000_000)
    cut = box.clock.wall_at(box.clock.now_us())
    alive, details, crashed = _crash_and_start(box, tmp_path, "2026-03-02T13:00:00Z")
    assert cut - 10_000_000 <= alive <= cut
    assert (details["after"], details["down_from"]) == ("crash", iso_ms(alive))
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    down = downtime(os.path.join(crashed, "audit.db"), day, cut + 2 * HOUR_US)["down"]
    assert [(d["from_us"], d["to_us"], d["approximate"]) for d in down[1:3]] == [
        (stopped, started, False),
        (alive, _utc_us_of("2026-03-02T13:00:00Z"), False),
    ]


class _RecorderClient:
    """The recorder as the updater asks it: a new pid for each run, its one line idle."""

    def __init__(self, runs):
        self.runs = runs

    def call(self, op, **kw):
        if op == "hello":
            return {"pid": len(self.runs), "lines": 1}
        if op == "snapshot":
            return {"lines": [{"line": 1, "state": "idle", "call": None}]}
        return {}

    def close(self):
        pass


def _updated(tmp_path, synth, version, status_dir, confirm=False):
    """An update to ``version`` of a box running slot A's 1.0.0 (the installer confirmed
    it when ``confirm``: a reinstall), its progress mirrored into ``status_dir``, its
    restart stopping the recorder and starting it again 10 minutes later. The last two
    ``box_start`` entries (the last run's, a minute in, first), the times each restart
    stopped the recorder, and the updater's notes of its restart (``update-restart``) as
    each restart found them."""
    from firmware.update.flow import Updater, UpdateSettings
    from tests.firmware.test_update_downgrade import _confirm
    from tests.firmware.test_update_flow import FakeClock, FakeRauc, FakeSlots, _bundle

    doc = QUIET
    data_dir = str(tmp_path / "box")
    runs = [open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)]
    runs[0].start()
    runs[0].clock.run_until(runs[0].clock.now_us() + 5 * 60_000_000)
    stopped, notes = [], []

    def restart(cmd, **kw):  # systemctl restart: the recorder stopped, started 10 min later
        try:
            with open(os.path.join(data_dir, "update-restart")) as f:
                notes.append(json.load(f))
        except FileNotFoundError:
            notes.append(None)
        box = runs[-1]
        box.stop()
        stopped.append(box.clock.wall_at(box.clock.now_us()))
        later = dict(doc, start="2026-03-02T09:%02d:00Z" % (15 + 10 * len(stopped)))
        runs.append(open_sim_box(loads_scenario(json.dumps(later)), data_dir, synth=synth))
        runs[-1].start()
        return subprocess.CompletedProcess(cmd, 0, "", "")

    class Slots(FakeSlots):
        def mount_point(self, bootname):
            return str(tmp_path / "slot")  # no linekeeper-slot.json: no security version

    os.makedirs(status_dir, exist_ok=True)
    clock = FakeClock()
    settings = UpdateSettings(
        data_dir=data_dir, update_dir=str(tmp_path / "update"), status_dir=status_dir, web_url=None
    )
    updater = Updater(
        settings,
        FakeRauc(version=version),
        Slots(),
        _RecorderClient(runs),
        run=restart,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        wall_us=lambda: runs[-1].clock.wall_at(runs[-1].clock.now_us()),  # the box's clock
    )
    bundle = _bundle(tmp_path)
    if confirm:
        _confirm(pathlib.Path(status_dir), bundle, to=version)
    assert updater.run(bundle).outcome == "installed"
    box = runs[-1]
    box.clock.run_until(box.clock.now_us() + 61_000_000)
    starts = box.audit.entries(limit=2, action="box_start")
    box.stop()
    return starts, stopped, notes


def test_a_reinstall_the_updater_restarts_the_box_for_reads_as_an_update(tmp_path, synth):
    """A reinstall (the installer confirmed the same release) keeps the release and the
    data's schema: the box_start after it said clean_stop, as if someone had stopped the
    box. The updater's note, left just before its restart, makes it an update."""
    [after, before], stopped, notes = _updated(
        tmp_path, synth, "1.0.0", str(tmp_path / "update-inbox"), confirm=True
    )

    assert after.details["release"] == before.details["release"]  # nothing else says update
    assert (after.details["after"], after.details["down_from"]) == ("update", iso_ms(stopped[0]))
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(str(tmp_path / "box" / "audit.db"), day, T0 + 2 * HOUR_US)
    assert [d["cause"] for d in record["down"]] == ["not_started", "update", "clean_stop"]
    assert not (tmp_path / "box" / "update-restart").exists()  # read once
    # What the updater's recovery checks the note by: this boot's, the recorder restarted.
    assert (notes[0]["boot_id"], notes[0]["pid"]) == (boot_id(), 1)


def test_the_update_by_a_release_that_leaves_no_note_reads_as_an_update(tmp_path, synth, monkeypatch):
    """The release before the updater's note: its updater restarts the services without
    one, so this release's first start read its stop as a clean one (the same release
    number and schema: nothing else said update), an unexplained stop in the reports.
    That updater's progress note on the Updates page says it is restarting: the start
    reads a clean stop just after that as the update's."""
    import firmware.update.flow

    monkeypatch.setattr(firmware.update.flow, "note_update_restart", lambda *args, **kw: None)
    data_dir = tmp_path / "box"
    [after, before], stopped, notes = _updated(tmp_path, synth, "2.0.0", str(data_dir / "update-inbox"))

    assert notes == [None]  # the older updater left no note
    assert after.details["release"] == before.details["release"]
    assert (after.details["after"], after.details["down_from"]) == ("update", iso_ms(stopped[0]))
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(str(tmp_path / "box" / "audit.db"), day, T0 + 2 * HOUR_US)
    assert [d["cause"] for d in record["down"]] == ["not_started", "update", "clean_stop"]


@pytest.mark.parametrize(
    "progress, stop_after_us, update",
    [
        ({"step": "restart", "at_us": T0}, 90_000_000, True),
        ({"step": "restart", "at_us": T0}, 5 * 60_000_000, True),
        ({"step": "restart", "at_us": T0}, 5 * 60_000_000 + 1, False),  # an operator's, later
        ({"step": "restart", "at_us": T0}, -1, False),  # a stop before the restart began
        ({"step": "health", "at_us": T0}, 90_000_000, False),  # no restart under way
        ({"step": "wait_idle", "at_us": T0}, 90_000_000, False),
        ({"step": "restart", "at_us": "soon"}, 90_000_000, False),
        ({"step": "restart"}, 90_000_000, False),
        (["restart", T0], 90_000_000, False),
    ],
)
def test_an_update_s_progress_note_says_a_restart_only_just_after_its_restart_step(
    tmp_path, progress, stop_after_us, update
):
    from firmware.update.inbox import inbox_dir, restart_step_us

    os.makedirs(inbox_dir(tmp_path))
    with open(os.path.join(inbox_dir(tmp_path), "progress.json"), "w") as f:
        json.dump(progress, f)
    assert restarted_for_update(tmp_path, T0 + stop_after_us, restart_step_us(tmp_path)) is update
    assert not restarted_for_update(tmp_path, None, restart_step_us(tmp_path))


def test_a_restart_command_that_fails_leaves_no_note_of_an_update(tmp_path):
    """The recorder still runs: its next stop, an operator's, is not the update's."""
    from firmware.update.flow import Updater, UpdateSettings
    from tests.firmware.test_update_flow import FakeRauc, FakeSlots

    def failing(cmd, **kw):
        assert os.path.exists(tmp_path / "update-restart")  # left before the restart
        return subprocess.CompletedProcess(cmd, 1, "", "Unit linekeeper-web.service not found.")

    settings = UpdateSettings(data_dir=str(tmp_path), update_dir=str(tmp_path / "update"))
    updater = Updater(settings, FakeRauc(), FakeSlots(), None, run=failing)
    assert "the restart command failed" in updater._restart("B")
    assert not os.path.exists(tmp_path / "update-restart")


def test_a_note_an_updater_killed_before_its_restart_left_is_not_the_next_stop_s(tmp_path, synth):
    """The updater noted its restart at 09:05 and was killed before running it: the
    recorder ran on, and an operator stopped it at 11:00. That stop was read as an
    update's. The note is taken only for a clean stop that came just after it."""
    from firmware.uptime import UPDATE_RESTART_WITHIN_US, note_update_restart

    doc = QUIET
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000)
    note_update_restart(data_dir, box.clock.wall_at(box.clock.now_us()), "B", pid=os.getpid())
    box.clock.run_until(box.clock.now_us() + 2 * HOUR_US - 5 * 60_000_000)
    box.stop()
    stopped = box.clock.wall_at(box.clock.now_us())
    again = open_sim_box(
        loads_scenario(json.dumps(dict(doc, start="2026-03-02T12:00:00Z"))), data_dir, synth=synth
    )
    again.start()
    again.clock.run_until(again.clock.now_us() + 61_000_000)
    [start] = again.audit.entries(limit=1, action="box_start")
    again.stop()
    assert (start.details["after"], start.details["down_from"]) == ("clean_stop", iso_ms(stopped))
    assert not os.path.exists(os.path.join(data_dir, "update-restart"))  # gone all the same

    # A stop within a few minutes of the note is its restart's; not one before the note.
    note_update_restart(tmp_path, T0, "B")
    assert restarted_for_update(tmp_path, T0 + 90_000_000)
    assert restarted_for_update(tmp_path, T0 + UPDATE_RESTART_WITHIN_US)
    assert not restarted_for_update(tmp_path, T0 + UPDATE_RESTART_WITHIN_US + 1)
    assert not restarted_for_update(tmp_path, T0 - 1)
    assert not restarted_for_update(tmp_path, None)  # a clean stop of unknown time


def _interrupted_at_restart(tmp_path, pid, note_boot):
    """An updater killed at its restart step, after noting the restart of the recorder
    ``pid`` in the boot ``note_boot``; recovering it finds slot A's switch failing (no
    restart of its own), the recorder pid 1 answering."""
    from firmware.errors import UpdateError
    from firmware.update.flow import Updater, UpdateSettings
    from firmware.uptime import UPDATE_RESTART_FILE
    from tests.firmware.test_update_flow import FakeClient, FakeClock, FakeRauc, FakeSlots

    class Slots(FakeSlots):
        def mount(self, bootname, device):
            raise UpdateError("cannot mount slot %s" % bootname)

    update_dir = tmp_path / "update"
    update_dir.mkdir()
    progress = {"step": "restart", "bundle": "b.raucb", "from": "A", "to": "B"}
    (update_dir / "progress.json").write_text(json.dumps(progress))
    note = {"slot": "B", "at_us": T0, "boot_id": note_boot, "pid": pid}
    (tmp_path / UPDATE_RESTART_FILE).write_text(json.dumps(note))
    clock = FakeClock()
    settings = UpdateSettings(data_dir=str(tmp_path), update_dir=str(update_dir), web_url=None)
    updater = Updater(
        settings,
        FakeRauc(),
        Slots(),
        FakeClient(clock, lambda t: []),  # answers hello with pid 1
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        run=lambda cmd, **kw: pytest.fail("restarted: %s" % cmd),
    )
    result = updater.recover()
    assert result.outcome == "rolled_back" and "the switch to slot A failed" in result.message
    return os.path.exists(tmp_path / UPDATE_RESTART_FILE)


def test_recovering_an_update_cut_before_its_restart_removes_its_note(tmp_path):
    """The recorder the note named still runs in this boot: the restart never came."""
    assert boot_id() is not None
    assert not _interrupted_at_restart(tmp_path, 1, boot_id())


@pytest.mark.parametrize("pid, other_boot", [(2, False), (None, False), (1, True)])
def test_recovery_keeps_a_note_whose_restart_may_have_come(tmp_path, pid, other_boot):
    """Another recorder runs now, the note named none, or it is another boot's (the
    restart stopped the recorder, the power was cut before it started): the next start
    judges it (by the time of its clean stop)."""
    assert _interrupted_at_restart(tmp_path, pid, "another boot" if other_boot else boot_id())


@pytest.mark.parametrize("ending", ["power_fail", "box_stop"])
def test_a_start_the_card_refused_in_its_first_minute_keeps_the_gap_before_it(
    tmp_path, synth, monkeypatch, ending
):
    """Stopped cleanly at 09:05; started again at 10:00, and the power cut (or the box
    stopped) 20 s later. The card refused that run's box_start (written then, within its
    first minute) but not the power_fail entry (or box_stop) after it: the next start dated
    its gap from the cut (or the stop), the time from 09:05 to 10:00 was lost, and a report
    counted it as recorded. The entry carries the start the card refused."""
    from firmware.box import open_sim_host

    doc = QUIET
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000)
    box.stop()
    stopped = box.clock.wall_at(box.clock.now_us())

    append = refuse_entries(monkeypatch, {"box_start"}, OSError(5, "Input/output error"))
    if ending == "power_fail":
        cut = dict(doc, start="2026-03-02T10:00:00Z", power=[{"at": 20.0, "cut": True}])
        host = open_sim_host(loads_scenario(json.dumps(cut)), data_dir, synth=synth)
        host.start()
        host.board.run()
        host.stop()
    else:
        box = open_sim_box(
            loads_scenario(json.dumps(dict(doc, start="2026-03-02T10:00:00Z"))), data_dir, synth=synth
        )
        box.start()
        box.clock.run_until(box.clock.now_us() + 20_000_000)
        box.stop()
    monkeypatch.setattr(AuditLog, "append", append)

    again = dict(doc, start="2026-03-02T11:00:00Z")
    box = open_sim_box(loads_scenario(json.dumps(again)), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 61_000_000)
    [end] = box.audit.entries(limit=1, action=ending)
    box.stop()
    assert end.details["start"]["down_from"] == iso_ms(stopped)
    assert end.details["start"]["started"] == iso_ms(T0 + HOUR_US)
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(os.path.join(data_dir, "audit.db"), day, T0 + 3 * HOUR_US)
    assert [(d["from_us"], d["to_us"], d["cause"]) for d in record["down"]] == [
        (None, T0, "not_started"),
        (stopped, T0 + HOUR_US, "clean_stop"),
        (end.wall_us, T0 + 2 * HOUR_US, "power_fail" if ending == "power_fail" else "clean_stop"),
        (T0 + 2 * HOUR_US + 61_000_000, None, "clean_stop"),
    ]


@pytest.mark.parametrize("refused", [("box_start", "box_stop"), ("box_stop",)])
def test_a_stop_the_card_kept_no_entry_of_is_carried_by_its_clean_stop_mark(
    tmp_path, synth, monkeypatch, refused
):
    """Stopped cleanly at 09:05; started again at 10:00 and stopped 20 s later, the card
    refusing that run's box_start and its box_stop. Its clean-stop mark had no time, and
    the next start dated its gap from the last sign of life: the run's 20 s counted as not
    recording, and on a data folder's first run (below) nothing was on record before the
    next start. The mark carries the run's start, which the next start audits: each time
    is said as it was. A run whose box_start is on the card keeps its stop's time."""
    from firmware.datadir import clean_stop_us

    doc = QUIET
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 5 * 60_000_000)
    box.stop()
    alive = last_alive_us(data_dir)
    assert alive is not None

    append = refuse_entries(monkeypatch, refused, OSError(28, "No space left on device"))
    box = open_sim_box(
        loads_scenario(json.dumps(dict(doc, start="2026-03-02T10:00:00Z"))), data_dir, synth=synth
    )
    box.start()
    box.clock.run_until(box.clock.now_us() + 20_000_000)
    box.stop()
    stopped = box.clock.wall_at(box.clock.now_us())
    monkeypatch.setattr(AuditLog, "append", append)
    assert clean_stop_us(data_dir) == stopped

    box = open_sim_box(
        loads_scenario(json.dumps(dict(doc, start="2026-03-02T11:00:00Z"))), data_dir, synth=synth
    )
    box.start()
    box.clock.run_until(box.clock.now_us() + 61_000_000)
    box.stop()
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(os.path.join(data_dir, "audit.db"), day, T0 + 3 * HOUR_US)
    gaps = [(d["from_us"], d["to_us"], d["cause"]) for d in record["down"]]
    assert gaps == [
        (None, T0, "not_started"),
        (alive, T0 + HOUR_US, "clean_stop"),
        (stopped, T0 + 2 * HOUR_US, "clean_stop"),
        (T0 + 2 * HOUR_US + 61_000_000, None, "clean_stop"),
    ]


def test_a_first_run_the_card_kept_no_entry_of_is_on_record_all_the_same(tmp_path, synth, monkeypatch):
    """A data folder's first run, stopped after 20 s, the card refusing its box_start and
    box_stop: the next start had nothing to date its gap from, and every report said the
    running record began with it "(the release before kept no record)", the time before it
    neither before the first start nor not recording."""
    from firmware.reports.tables import running_note

    append = refuse_entries(monkeypatch, {"box_start", "box_stop"}, OSError(28, "No space left on device"))
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(QUIET)), data_dir, synth=synth)
    box.start()
    box.clock.run_until(box.clock.now_us() + 20_000_000)
    box.stop()
    monkeypatch.setattr(AuditLog, "append", append)
    box = open_sim_box(
        loads_scenario(json.dumps(dict(QUIET, start="2026-03-02T11:00:00Z"))), data_dir, synth=synth
    )
    box.start()
    box.clock.run_until(box.clock.now_us() + 61_000_000)
    [start] = box.audit.entries(limit=5, action="box_start")
    box.stop()
    assert start.details["last_run"]["after"] == "first_start"
    day = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    record = downtime(os.path.join(data_dir, "audit.db"), day, T0 + 3 * HOUR_US)
    assert [(d["from_us"], d["to_us"], d["cause"]) for d in record["down"]] == [
        (None, T0, "not_started"),
        (T0 + 20_000_000, T0 + 2 * HOUR_US, "clean_stop"),
        (T0 + 2 * HOUR_US + 61_000_000, None, "clean_stop"),
    ]
    assert (record["first_start_us"], record["records_from_us"]) == (T0, None)
    report = {"running": record, "period": {"tz": "UTC", "start_us": day.start_us}}
    assert "kept no record" not in running_note(report)
