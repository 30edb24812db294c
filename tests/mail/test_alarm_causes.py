"""Every alarm cause, raised the way the box raises it, is kept, e-mailed once, acknowledged,
cleared and audited."""

import datetime as dt
import os
from types import SimpleNamespace

from firmware.alarmchecks import ConsentWatch, DateChecks, check_last_stop
from firmware.alarmlog import AlarmLog
from firmware.bus import Alarm, EventBus, LineFault
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings
from firmware.secretbox import SecretBox
from firmware.storage.audit import AuditLog

from .conftest import OPS_TIED, ops_account


class Clock:
    t = int(dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC).timestamp()) * 10**6

    def wall_us(self):
        return self.t


class Outbox:
    def __init__(self):
        self.subjects = []

    def send(self, msg):
        self.subjects.append(str(msg["Subject"]))


def test_every_cause(tmp_path):
    clock = Clock()
    data = str(tmp_path)
    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    alarms = AlarmLog(tmp_path / "alarms.db", clock, audit)
    bus = EventBus(strict=True)
    alarms.attach(bus)
    ConsentWatch(alarms).attach(bus)
    mail = MailService(
        data,
        clock.wall_us,
        SecretBox(data, identity=b"t"),
        alarm_log=alarms,
        checks=[DateChecks(alarms, clock.wall_us, ico_renewal=lambda: "2026-03-20")],
    )
    ops_account(data)  # the recipient's account: an installer's, who sees every line
    mail.store.save(
        MailSettings(
            host="mail.example.com",
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            alarm_accounts=OPS_TIED,
        )
    )
    os.makedirs(os.path.join(data, "box"))
    open(os.path.join(data, "box", "running"), "w").close()  # the last run never stopped

    from firmware.bus import CallEnded

    # What the parts of the box publish (recorder, retention sweeper, supervisor) ...
    for kind, line in (
        ("recording_failed", 1),
        ("disk_full", 0),
        ("disk_warning", 0),
        ("disk_critical", 0),
        ("clock_unsynchronised", 0),
        ("clock_jump", 0),
    ):
        bus.publish(Alarm(line=line, t_us=0, kind=kind, active=True, message=kind + " here"))
    for kind in ("no_line_voltage", "stuck_off_hook"):
        bus.publish(LineFault(line=3, t_us=0, kind=kind, active=True))
    bus.publish(
        CallEnded(
            line=2,
            t_us=0,
            call=SimpleNamespace(
                line=2, consent={"notice": "announcement", "given": False, "error": "the file is missing"}
            ),
        )
    )
    # ... and what is found by looking.
    check_last_stop(os.path.join(data, "box"), alarms)
    mail.checks[0]()  # ICO renewal due in 18 days
    causes = {
        "recording_failed",
        "disk_full",
        "disk_warning",
        "disk_critical",
        "clock_unsynchronised",
        "clock_jump",
        "no_line_voltage",
        "stuck_off_hook",
        "consent_notice_failed",
        "power_loss_restart",
        "ico_renewal_30",
    }
    assert {r["kind"] for r in alarms.banner()} == causes
    outbox = Outbox()
    assert mail.queue.flush(outbox) == (len(causes), 0)
    assert len(set(outbox.subjects)) == len(causes)
    assert "[Linekeeper] Alarm on line 3: No voltage on the line" in outbox.subjects
    # Each clears (or was an event), is acknowledged, and leaves the banner.
    for kind in ("disk_full", "disk_warning", "disk_critical", "clock_unsynchronised", "clock_jump"):
        bus.publish(Alarm(line=0, t_us=0, kind=kind, active=False))
    for kind in ("no_line_voltage", "stuck_off_hook"):
        bus.publish(LineFault(line=3, t_us=0, kind=kind, active=False))
    bus.publish(
        CallEnded(
            line=2, t_us=0, call=SimpleNamespace(line=2, consent={"notice": "announcement", "given": True})
        )
    )
    mail.checks[0].ico_renewal = lambda: "2027-03-20"
    mail.checks[0]()
    for row in alarms.banner():
        alarms.acknowledge(row["id"], "ivan")
    assert alarms.banner() == []
    assert all(r["cleared_us"] is not None and r["acknowledged_by"] == "ivan" for r in alarms.history())
    trail = {}
    for e in audit.entries(limit=500, action="alarm", newest_first=False):
        trail.setdefault(e.details["kind"], []).append(e.details["event"])
    assert trail == {kind: ["raised", "cleared", "acknowledged"] for kind in causes}
    alarms.close()
    audit.close()


def test_the_key_store_backup_the_dpia_review_and_stalled_uploads_are_mailed_once(tmp_path):
    """The key store's backup out of date, the DPIA due for review (the checklist's ambers,
    told to the round as reminders with their reasons) and the archive's uploads stalled:
    each raised by the periodic round, mailed once however many rounds find it so, and
    cleared once it is so no more."""
    from firmware.alarmchecks import ARCHIVE_STALL_S, ArchiveStall
    from firmware.archive.queue import STATUS_SCHEMA, ArchiveStatus, Db

    clock = Clock()
    data = str(tmp_path)
    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    alarms = AlarmLog(tmp_path / "alarms.db", clock, audit)
    calls = Db(os.path.join(data, "calls.db"), STATUS_SCHEMA)
    calls.execute(
        "INSERT INTO archive_status VALUES (1, 'queued', 'retrying: cannot reach it', ?)", (clock.t,)
    )
    told = {
        "keystore_backup_stale": "no backup of the key store was made: a dead card loses every recording",
        "dpia_review_due": "the DPIA was last reviewed on Sat 1 Mar 2025, over a year ago",
    }
    mono = {"s": 0.0}
    mail = MailService(
        data,
        clock.wall_us,
        SecretBox(data, identity=b"t"),
        alarm_log=alarms,
        checks=[
            DateChecks(alarms, clock.wall_us, reminders=lambda: dict(told)),
            ArchiveStall(
                alarms, ArchiveStatus(os.path.join(data, "calls.db")), clock.wall_us, lambda: mono["s"]
            ),
        ],
    )
    mail.deliver = False  # the checks alone
    ops_account(data)
    mail.store.save(
        MailSettings(
            host="mail.example.com",
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            alarm_accounts=OPS_TIED,
        )
    )

    def mailed():
        return sorted(p["subject"] for p in mail.queue.pending())

    for _ in range(3):  # a round a minute, an hour and more
        mail.tick()
        mono["s"] += ARCHIVE_STALL_S / 2 + 1
        clock.t += int(ARCHIVE_STALL_S / 2 + 1) * 10**6
    assert mailed() == [
        "[Linekeeper] Alarm on the box: The data protection impact assessment (DPIA) is due for review",
        "[Linekeeper] Alarm on the box: The key store has no current backup",
        "[Linekeeper] Alarm on the box: Uploads to the archive have stalled",
    ]
    mail.tick()
    assert len(mailed()) == 3
    told = {"keystore_backup_stale": False, "dpia_review_due": False}
    calls.execute("UPDATE archive_status SET status = 'archived', reason = NULL, updated_at = ?", (clock.t,))
    mail.tick()
    assert [r["kind"] for r in alarms.history() if r["cleared_us"] is None] == []
    assert len(mailed()) == 3
    calls.close()
    alarms.close()
    audit.close()
