"""An update that does not install raises ``update_failed``: the updater (its own process)
leaves a note, the box's round raises it, and it is shown, e-mailed, acknowledged and audited."""

import json
import os

import pytest

from board.sim.scenario import loads_scenario
from firmware.alarminbox import INBOX, AlarmInbox, post_update_result
from firmware.alarmlog import AlarmLog
from firmware.box import open_sim_box
from firmware.errors import UpdateError
from firmware.mail.settings import MailSettings
from firmware.update.flow import Updater, UpdateResult, UpdateSettings
from firmware.update.rauc import Rauc


class RefusingRauc:
    """RAUC that refuses every bundle, as it does one signed with another key."""

    def status(self):
        slot = {"bootname": "A", "device": "/dev/a", "slot_status": {"bundle": {"version": "1.0.0"}}}
        return {"booted": "A", "boot_primary": "app.0", "slots": {"app.0": slot}}

    def info(self, path):
        return {"version": "2.0.0"}

    def install(self, path):
        raise UpdateError("signature verification failed")

    def slot_name(self, bootname, status=None):
        return Rauc.slot_name(self, bootname, status)

    def operation(self):
        return "idle", ""

    def installer(self):
        return (*self.operation(), (100, "Installing done.", 1))


class OneSlot:
    def current(self):
        return "A"


class Outbox:
    def __init__(self):
        self.subjects = []

    def send(self, msg):
        self.subjects.append(str(msg["Subject"]))


def refused_update(data_dir, tmp_path):
    bundle = tmp_path / "stick" / "linekeeper-2.0.raucb"
    bundle.parent.mkdir()
    bundle.write_bytes(b"bundle" * 100)
    settings = UpdateSettings(data_dir=data_dir, update_dir=str(tmp_path / "update"))
    result = Updater(settings, RefusingRauc(), OneSlot(), client=None).run(str(bundle))
    assert result.outcome == "refused"
    return result


def test_a_refused_update_is_raised_by_the_box_mailed_acknowledged_and_audited(tmp_path):
    data = str(tmp_path / "data")
    os.makedirs(data)
    refused_update(data, tmp_path)  # while the recorder is stopped (or restarting)
    [note] = os.listdir(os.path.join(data, INBOX))
    scenario = loads_scenario(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []})
    )
    box = open_sim_box(scenario, data)
    box.mail.store.save(
        MailSettings(host="127.0.0.1", port=27001, sender="box@example.com", alarm_to=("ops@example.com",))
    )
    box.start()
    box.mail.close()  # the test delivers the queue itself (no real server)
    try:
        box.alarm_inbox()  # the round, as the mail thread runs it at start and every minute
        [row] = [r for r in box.alarm_log.banner() if r["kind"] == "update_failed"]
        assert row["message"].startswith(
            "the update linekeeper-2.0.raucb was refused (nothing was changed): "
        )
        assert "the bundle was damaged or changed after it was signed" in row["message"]
        assert row["cleared_us"] is not None  # an event: on the banner until acknowledged
        assert os.listdir(os.path.join(data, INBOX)) == []
        box.alarm_inbox()
        assert [r["kind"] for r in box.alarm_log.history()].count("update_failed") == 1
        # (The round at start may have tried the server, which is not there: the mail
        # waits in the queue and goes at its next try.)
        box.clock.run_until(box.clock.now_us() + 3600 * 10**6)
        outbox = Outbox()
        box.mail.queue.flush(outbox)
        assert [s for s in outbox.subjects if "update" in s.lower()] == [
            "[Linekeeper] Alarm on the box: An update did not install"
        ]
        box.alarm_log.acknowledge(row["id"], "ivan")
        assert not [r for r in box.alarm_log.banner() if r["kind"] == "update_failed"]
        events = [
            e.details["event"]
            for e in box.audit.entries(limit=100, action="alarm", newest_first=False)
            if e.details["kind"] == "update_failed"
        ]
        assert events == ["raised", "cleared", "acknowledged"]
    finally:
        box.stop()


@pytest.mark.parametrize(
    "outcome, words",
    [
        ("refused", "was refused (nothing was changed)"),
        ("not_switched", "was installed but not switched to"),
        ("rolled_back", "failed and was rolled back"),
        ("failed", "failed"),
    ],
)
def test_every_failed_outcome_is_one_alarm_of_its_own(tmp_path, outcome, words):
    clock = type("C", (), {"wall_us": lambda self: 5 * 10**15})()
    log = AlarmLog(tmp_path / "alarms.db", clock)
    inbox = AlarmInbox(str(tmp_path), log)
    for n in range(2):
        result = UpdateResult(outcome, "b.raucb", "why %d" % n)
        assert post_update_result(str(tmp_path), result, 10**15 + n)
    assert inbox() == 2
    rows = list(reversed(log.history()))  # (newest first)
    assert [r["message"] for r in rows] == ["the update b.raucb %s: why %d" % (words, n) for n in range(2)]
    assert [r["raised_us"] for r in rows] == [10**15, 10**15 + 1]


def test_an_installed_update_raises_nothing_and_a_bad_note_is_dropped(tmp_path):
    clock = type("C", (), {"wall_us": lambda self: 5 * 10**15})()
    log = AlarmLog(tmp_path / "alarms.db", clock)
    assert post_update_result(str(tmp_path), UpdateResult("installed", "b.raucb", "ok"), 1) is None
    os.makedirs(tmp_path / INBOX)
    (tmp_path / INBOX / "1-x.json").write_text("{not json")
    (tmp_path / INBOX / "2-x.json").write_text(
        json.dumps({"kind": "no_line_voltage", "message": "fake", "wall_us": 1})
    )
    assert AlarmInbox(str(tmp_path), log)() == 0
    assert log.history() == [] and os.listdir(tmp_path / INBOX) == []


def test_a_note_that_cannot_be_written_never_fails_the_update(tmp_path):
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data directory should be")
    assert post_update_result(str(blocked), UpdateResult("failed", "b.raucb", "x"), 1) is None


def _installed(data_dir, version, progress=None):
    """The last update's result on the Updates page: ``version`` installed."""
    from firmware.update.flow import PROGRESS_NAME, RESULT_NAME
    from firmware.update.inbox import inbox_dir

    os.makedirs(inbox_dir(data_dir), exist_ok=True)
    result = UpdateResult("installed", "b.raucb", "ok", version=version, previous_version="1.0.0", slot="B")
    with open(os.path.join(inbox_dir(data_dir), RESULT_NAME), "w") as f:
        json.dump(result.__dict__, f)
    if progress:
        with open(os.path.join(inbox_dir(data_dir), PROGRESS_NAME), "w") as f:
            json.dump({"step": progress, "bundle": "c.raucb"}, f)


def _signals(tmp_path, running):
    from firmware.alarms import AlarmBoard
    from firmware.bus import EventBus
    from firmware.update.inbox import inbox_dir
    from firmware.update.signals import UpdateSignals

    clock = type("C", (), {"wall_us": lambda self: 5 * 10**15, "now_us": lambda self: 1})()
    bus = EventBus(strict=True)
    log = AlarmLog(tmp_path / "alarms.db", clock)
    log.attach(bus)
    board = AlarmBoard()
    board.attach(bus)
    signals = UpdateSignals(None, clock.now_us, status_dir=inbox_dir(str(tmp_path)), running_version=running)
    signals.attach(bus)
    return signals, log, board


def test_a_recorder_started_on_another_version_than_the_update_installed_raises_an_alarm(tmp_path):
    """The update installed 2.0.0 and passed its health check, but the box came back on
    1.0.0 (its restart into the new slot did not happen, or fell back): an alarm stays on
    until the box runs 2.0.0. Before, nothing said so: the page showed "installed"."""
    _installed(str(tmp_path), "2.0.0")
    signals, log, board = _signals(tmp_path, "1.0.0")
    signals.check_release()
    [row] = log.banner()
    assert row["kind"] == "update_not_running" and row["cleared_us"] is None
    assert row["message"] == (
        "the update installed version 2.0.0 on slot B, but the box runs version 1.0.0: "
        "it did not start the new version, or went back to the old one"
    )
    assert [a.kind for a in board.active()] == ["update_not_running"]  # on, not an event
    signals.check_release()  # the same, found again: one occurrence
    assert len(log.history()) == 1
    log.close()
    # The box restarted on 2.0.0: cleared.
    signals, log, _ = _signals(tmp_path, "2.0.0")
    signals.check_release()
    [row] = log.history()
    assert row["kind"] == "update_not_running" and row["cleared_us"] is not None
    log.close()


def test_no_alarm_while_an_update_runs_nor_after_one_that_did_not_install(tmp_path):
    # The recorder restarted by an update (its restart step): the update decides, and the
    # last result is the one before it.
    _installed(str(tmp_path), "2.0.0", progress="restart")
    signals, log, _ = _signals(tmp_path, "3.0.0")
    signals.check_release()
    assert log.history() == []
    log.close()
    # Rolled back: the box runs its previous version on purpose (update_failed says why).
    os.unlink(os.path.join(tmp_path, "update-inbox", "progress.json"))
    result = UpdateResult("rolled_back", "b.raucb", "x", version="3.0.0", previous_version="2.0.0")
    with open(os.path.join(tmp_path, "update-inbox", "last-result.json"), "w") as f:
        json.dump(result.__dict__, f)
    signals, log, _ = _signals(tmp_path, "2.0.0")
    signals.check_release()
    assert log.history() == []
    log.close()


def test_the_update_s_state_told_to_the_recorder_clears_or_raises_it(tmp_path):
    """An update's outcome told over the control socket looks again: installed by the
    recorder running it clears what an earlier start raised."""
    from firmware.bus import UpdateState

    _installed(str(tmp_path), "2.0.0")
    signals, log, _ = _signals(tmp_path, "1.0.0")
    signals.check_release()
    assert [r["kind"] for r in log.banner()] == ["update_not_running"]
    _installed(str(tmp_path), "1.0.0")  # an update installed 1.0.0 again (a reinstall)
    signals._bus.publish(UpdateState(line=0, t_us=1, state="installed", version="1.0.0"))
    [row] = log.history()
    assert row["cleared_us"] is not None
    signals.stop()
    log.close()


def test_the_box_looks_at_its_start(tmp_path):
    from firmware import __version__

    data = str(tmp_path / "data")
    os.makedirs(data)
    _installed(data, __version__ + ".1")
    scenario = loads_scenario(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []})
    )
    box = open_sim_box(scenario, data)
    box.start()
    try:
        [row] = [r for r in box.alarm_log.banner() if r["kind"] == "update_not_running"]
        assert "installed version %s.1" % __version__ in row["message"]
        assert "the box runs version %s" % __version__ in row["message"]
    finally:
        box.stop()


def test_every_installed_box_has_the_inbox_the_check_reads():
    """The recorder reads the last update's result in the data directory's update inbox
    only: the updater's own copy (/var/lib/linekeeper-update) is root's alone. A box set up
    by scripts/install-box has that inbox from the start, made by its tmpfiles (at
    installation and at each boot) for the recorder's group, so every updater - the page's,
    a stick's, one run by hand or --recover - writes its result there too."""
    import pathlib

    from firmware.update.inbox import inbox_dir

    system = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "system"
    recorder = (system / "linekeeper-recorder.service").read_text()
    assert "linekeeper recorder --data-dir /var/lib/linekeeper " in recorder
    tmpfiles = (system / "linekeeper.tmpfiles").read_text().splitlines()
    made = "d %s 2770 linekeeper-rec linekeeper -" % inbox_dir("/var/lib/linekeeper")
    assert made in tmpfiles
    installer = (system.parent / "install-box").read_text()
    assert "systemd-tmpfiles --create /etc/tmpfiles.d/linekeeper.conf" in installer
    # Each updater is given the data directory, and writes into its inbox when there is one.
    for unit in ("linekeeper-update-inbox.service", "linekeeper-update-recover.service"):
        assert "--data-dir /var/lib/linekeeper" in (system / unit).read_text()
    stick = (system / "rauc" / "stick").read_text()
    assert 'if [ -d "$DATA/update-inbox" ]; then set -- --status-dir' in stick
