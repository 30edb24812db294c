"""The alarm causes tests/mail/test_alarm_causes.py publishes by hand, raised here by their
real sources on a simulated box: a stray file at start-up, a call log the card refuses, the
date checks (ICO renewal at 60, 30 and 7 days and expired; the HTTPS certificate), an update
that did not install, a staff concern, a power failure. Each one is on the banner, e-mailed
once, acknowledged, cleared (by its source, or at once for an occurrence) and audited.

(Recording failures, disk thresholds, clock alarms, line faults, consent failures and the
power-loss restart are in test_alarm_causes.py; the retention alarms in
tests/policy/test_retention_backlog.py; a replaced recording key in
tests/recording/acceptance/test_evidence.py.)
"""

import datetime as dt
import json
import os
import sqlite3

from board.sim.scenario import loads_scenario
from firmware.alarminbox import post_update_result
from firmware.box import open_sim_box
from firmware.mail.settings import MailSettings
from firmware.storage.keystore import Argon2Params, KeyStore
from firmware.update.flow import UpdateResult
from web.tls import VALID_DAYS, ensure_certificate

from .conftest import OPS_TIED, ops_account

DAY_US = 86_400 * 10**6


class Refusing:
    """The call log's connection, refusing updates as a full card does while ``full`` (the
    call's first row is written: a call the log never numbered cannot be recorded yet)."""

    def __init__(self, db):
        self.db, self.full = db, True

    def execute(self, sql, *args):
        if self.full and sql.lstrip().upper().startswith("UPDATE CALLS"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


class Outbox:
    def __init__(self):
        self.subjects = []

    def send(self, msg):
        self.subjects.append(str(msg["Subject"]))


def test_each_source_raises_its_alarm_through_to_mail_acknowledgement_and_audit(tmp_path):
    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    os.makedirs(os.path.join(data, "recordings"), exist_ok=True)
    with open(os.path.join(data, "recordings", "notes.txt"), "w") as f:
        f.write("someone's file")  # quarantined at start-up
    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 2.0}],
            }
        )
    )
    box = open_sim_box(scenario, data)
    ops_account(data)  # the recipient's account: an installer's, who sees every line
    box.mail.store.save(
        MailSettings(
            host="127.0.0.1",
            port=27001,
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            alarm_accounts=OPS_TIED,
        )
    )
    cert = ensure_certificate(str(tmp_path / "tls"))
    now_date = dt.datetime.fromtimestamp(scenario.start_wall_us / 1e6, dt.UTC).date()
    cert_end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=VALID_DAYS)
    renewal = {"date": (now_date + dt.timedelta(days=50)).isoformat()}
    box.date_checks.ico_renewal = lambda: renewal["date"]
    box.date_checks.cert_path = cert.cert_path
    box.calllog._db = refusing = Refusing(box.calllog._db)
    box.start()
    box.mail.close()  # the test delivers the queue itself (no real server)
    try:
        assert box.board.run()
        # The date checks, as the round runs them, as the days go by.
        box.date_checks()  # 50 days to the renewal
        for days_left in (20, 5, -1):
            renewal["date"] = (now_date + dt.timedelta(days=days_left)).isoformat()
            box.date_checks()
        box.clock.start_wall_us += (cert_end - now_date).days * DAY_US - 10 * DAY_US
        box.date_checks()  # the certificate ends in 10 days
        post_update_result(data, UpdateResult("rolled_back", "b.raucb", "the web UI did not answer"), 1)
        box.alarm_inbox()
        box.alarm_log.set("staff_concern", True, message="from stella: is my line private?")
        box.alarm_log.set("staff_concern", False)
        causes = {
            "quarantine",
            "call_log",
            "ico_renewal_60",
            "ico_renewal_30",
            "ico_renewal_7",
            "ico_expired",
            "certificate_expiry",
            "update_failed",
            "staff_concern",
        }
        banner = box.alarm_log.banner()
        assert {r["kind"] for r in banner} == causes
        assert "notes.txt" not in os.listdir(os.path.join(data, "recordings"))
        # Then the supply fails (the MCU's warning, as PowerFailWatch passes it on).
        box._power_fail(box.clock.now_us(), 600)
        causes.add("power_fail")
        banner = box.alarm_log.banner()
        assert {r["kind"] for r in banner} == causes
        outbox = Outbox()
        assert box.mail.queue.flush(outbox) == (len(banner), 0)
        assert len(set(outbox.subjects)) == len(banner)
        assert "[Linekeeper] Alarm on the box: An update did not install" in outbox.subjects
        for row in banner:
            box.alarm_log.acknowledge(row["id"], "ivan")
        # The sources clear what is still on: the card takes writes again, the ICO is
        # renewed, a new certificate is made.
        refusing.full = False
        box.calllog.flush()
        renewal["date"] = (now_date + dt.timedelta(days=400)).isoformat()
        box.clock.start_wall_us -= (cert_end - now_date).days * DAY_US - 10 * DAY_US
        box.date_checks()
        assert box.alarm_log.banner() == []
        trail = {}
        for e in box.audit.entries(limit=1000, action="alarm", newest_first=False):
            trail.setdefault(e.details["kind"], []).append(e.details["event"])
        occurrences = {"quarantine", "update_failed", "staff_concern", "power_fail"}
        # ICO thresholds passed one after the other were cleared by the next, before anyone looked.
        passed = {"ico_renewal_60", "ico_renewal_30", "ico_renewal_7"}
        assert trail == {
            kind: ["raised", "cleared", "acknowledged"]
            if kind in occurrences | passed
            else ["raised", "acknowledged", "cleared"]
            for kind in causes
        }
    finally:
        box.stop()


def test_recording_failures_and_a_full_card_through_the_recorder(tmp_path):
    """The recorder cannot open a call's recording: an I/O error (``recording_failed``, an
    occurrence), then a full card (``disk_full``, cleared when the next call records)."""
    import errno

    from firmware.errors import DiskFullError

    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    call = {"line": 1, "direction": "in", "rings": 1, "talk": 2.0}
    scenario = loads_scenario(
        json.dumps(
            {
                "start": "2026-03-02T09:00:00Z",
                "country": "uk",
                "lines": 1,
                "calls": [dict(call, at=1.0), dict(call, at=20.0), dict(call, at=40.0)],
            }
        )
    )
    box = open_sim_box(scenario, data)
    ops_account(data)  # the recipient's account: an installer's, who sees every line
    box.mail.store.save(
        MailSettings(
            host="127.0.0.1",
            port=27001,
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            alarm_accounts=OPS_TIED,
        )
    )
    real_open = box.recorder._open
    faults = [OSError(errno.EIO, "Input/output error"), DiskFullError("the card is full")]

    def failing_open(*args, **kwargs):
        if faults:
            raise faults.pop(0)
        return real_open(*args, **kwargs)

    box.recorder._open = failing_open
    box.start()
    box.mail.close()  # the test delivers the queue itself (no real server)
    try:
        assert box.board.run()
        assert len(box.recordings.all()) == 1  # the third call only
        history = {r["kind"]: r for r in box.alarm_log.history()}
        assert set(history) == {"recording_failed", "disk_full"}
        assert history["recording_failed"]["message"] == "Input/output error"
        assert history["recording_failed"]["line"] == 1
        assert history["disk_full"]["cleared_us"] is not None  # the third call recorded
        # Plain words first for an owner, the recorder's detail after (it began "the card is
        # full" or "64.0 MiB kept free for the call log: call 762 is not recorded").
        assert history["disk_full"]["message"] == (
            "The memory card is full, so calls are not being recorded until there is room. Ask your "
            "installer to make room: shorter retention periods (Retention page) or a larger card. "
            "In detail: the card is full (found by line 1)"
        )
        outbox = Outbox()
        box.clock.run_until(box.clock.now_us() + 3600 * 10**6)
        assert box.mail.queue.flush(outbox) == (2, 0)
        assert sorted(outbox.subjects) == [
            "[Linekeeper] Alarm on line 1: A recording failed",
            "[Linekeeper] Alarm on the box: Storage full",
        ]
        for row in box.alarm_log.banner():
            box.alarm_log.acknowledge(row["id"], "sam")
        assert box.alarm_log.banner() == []
        trail = {}
        for e in box.audit.entries(limit=1000, action="alarm", newest_first=False):
            trail.setdefault(e.details["kind"], []).append(e.details["event"])
        assert trail == {
            "recording_failed": ["raised", "cleared", "acknowledged"],
            "disk_full": ["raised", "cleared", "acknowledged"],
        }
    finally:
        box.stop()


def test_the_card_wear_alarm_is_raised_by_the_round_and_mailed(tmp_path):
    """The box's periodic round raises card_wear (firmware/cardhealth.py) in the alarm
    history, so it is mailed like the other alarms, not only listed on the dashboard."""
    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", "pw-pw-pw-pw")
    scenario = loads_scenario(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []})
    )
    box = open_sim_box(scenario, data)
    ops_account(data)  # the recipient's account: an installer's, who sees every line
    box.mail.store.save(
        MailSettings(
            host="127.0.0.1",
            port=27001,
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            alarm_accounts=OPS_TIED,
        )
    )
    said = "the card reports that it is wearing out (90% of its life used): replace it soon"
    box.card_wear.card = lambda data_dir: {"alarm": said, "measured_s": 60}
    box.start()
    box.mail.close()  # the test runs the round and delivers the queue itself
    try:
        for check in box.mail.checks:  # the round, as the mail thread runs it
            check()
        assert [(r["kind"], r["message"]) for r in box.alarm_log.banner()] == [("card_wear", said)]
        # Queued (its first try found no server: the test has none).
        assert [m["subject"] for m in box.mail.queue.pending()] == [
            "[Linekeeper] Alarm on the box: The memory card is wearing out"
        ]
    finally:
        box.stop()
