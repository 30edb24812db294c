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
