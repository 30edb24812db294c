"""The alarms that come from dates and from how the box last stopped, each raised and cleared."""

import datetime as dt
import os
from types import SimpleNamespace

import pytest

from firmware.alarmchecks import ConsentWatch, DateChecks, check_last_stop, mark_clean_stop
from firmware.alarmlog import AlarmLog
from firmware.storage.audit import AuditLog
from firmware.words import say
from web.tls import VALID_DAYS, ensure_certificate

DAY_US = 86_400_000_000
T0 = dt.date(2026, 3, 2)


class Clock:
    def __init__(self):
        self.t = int(dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC).timestamp()) * 10**6

    def wall_us(self):
        return self.t


@pytest.fixture
def log(tmp_path):
    clock = Clock()
    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    alarms = AlarmLog(tmp_path / "alarms.db", clock, audit)
    yield alarms, clock, audit
    alarms.close()
    audit.close()


def on(alarms):
    return sorted(r["kind"] for r in alarms.history() if r["cleared_us"] is None)


def test_ico_renewal_60_30_7_days_then_expired_then_renewed(log):
    alarms, clock, audit = log
    renewal = {"date": (T0 + dt.timedelta(days=90)).isoformat()}
    check = DateChecks(alarms, clock.wall_us, ico_renewal=lambda: renewal["date"])
    seen = []
    for days_left in (90, 60, 45, 30, 8, 7, 0, -1):
        clock.t = (
            int(
                dt.datetime.combine(
                    T0 + dt.timedelta(days=90 - days_left), dt.time(12), tzinfo=dt.UTC
                ).timestamp()
            )
            * 10**6
        )
        check()
        seen.append((days_left, on(alarms)))
    assert seen == [
        (90, []),
        (60, ["ico_renewal_60"]),
        (45, ["ico_renewal_60"]),
        (30, ["ico_renewal_30"]),
        (8, ["ico_renewal_30"]),
        (7, ["ico_renewal_7"]),
        (0, ["ico_renewal_7"]),
        (-1, ["ico_expired"]),
    ]
    renewal["date"] = "2027-06-01"
    check()
    assert on(alarms) == []
    kinds = [r["kind"] for r in alarms.history()]
    assert sorted(kinds) == ["ico_expired", "ico_renewal_30", "ico_renewal_60", "ico_renewal_7"]
    events = [
        (e.details["kind"], e.details["event"])
        for e in audit.entries(limit=50, action="alarm", newest_first=False)
    ]
    assert events[:2] == [("ico_renewal_60", "raised"), ("ico_renewal_60", "cleared")]
    assert len(events) == 8  # four raised, four cleared


def test_the_days_are_counted_from_the_box_s_own_date(log):
    """At 00:30 BST the UTC date is still the day before: the ICO registration due that
    day was not yet 'expired' by the alarm, while the checklist and every page said
    it was past."""
    alarms, clock, _ = log
    clock.t = int(dt.datetime(2026, 7, 20, 23, 30, tzinfo=dt.UTC).timestamp()) * 10**6  # 21 Jul in London
    zone = {"name": "UTC"}
    check = DateChecks(alarms, clock.wall_us, ico_renewal=lambda: "2026-07-20", zone=lambda: zone["name"])
    check()
    assert on(alarms) == ["ico_renewal_7"]  # in UTC the day itself: 0 days left
    zone["name"] = "Europe/London"
    check()
    assert on(alarms) == ["ico_expired"]
    zone["name"] = "Not/AZone"  # a zone the box cannot read counts in UTC
    check()
    assert on(alarms) == ["ico_renewal_7"]


def test_no_ico_number_raises_nothing_here(log):
    alarms, clock, _ = log
    DateChecks(alarms, clock.wall_us, ico_renewal=lambda: "")()
    assert alarms.history() == []


def test_certificate_near_its_end(log, tmp_path):
    alarms, clock, _ = log
    cert = ensure_certificate(str(tmp_path / "tls"))
    clock.t = int(dt.datetime.now(dt.UTC).timestamp()) * 10**6
    check = DateChecks(alarms, clock.wall_us, cert_path=cert.cert_path)
    check()
    assert on(alarms) == []
    clock.t += (VALID_DAYS - 20) * DAY_US
    check()
    assert on(alarms) == ["certificate_expiry"]
    assert "HTTPS certificate ends on" in alarms.history()[0]["message"]
    clock.t -= (VALID_DAYS - 20) * DAY_US  # a new certificate is as good as this
    check()
    assert on(alarms) == []


def test_consent_notice_failure_on_a_line(log):
    alarms, _, _ = log
    watch = ConsentWatch(alarms)

    def ended(line, consent):
        watch._on_call(SimpleNamespace(call=SimpleNamespace(line=line, consent=consent)))

    ended(2, {"notice": "announcement", "given": False, "error": "the announcement file is missing"})
    ended(2, {"notice": "announcement", "given": False, "error": "still missing"})
    ended(1, {"notice": "off", "given": False})
    assert [(r["kind"], r["line"]) for r in alarms.history()] == [("consent_notice_failed", 2)]
    assert "the announcement file is missing" in alarms.history()[0]["message"]
    ended(2, {"notice": "announcement", "given": True})
    assert on(alarms) == []


def test_the_stop_removes_the_running_marker_without_a_sync_of_its_own(log, tmp_path, monkeypatch):
    """The box's stop: the removal rides the databases' or the clean-stop mark's commit."""
    from firmware import alarmchecks
    from firmware.storage import fsutil

    alarms, _, _ = log
    data = str(tmp_path / "box")
    os.makedirs(data)
    check_last_stop(data, alarms)  # running
    assert os.path.exists(os.path.join(data, alarmchecks.RUNNING_MARKER))
    synced = []
    monkeypatch.setattr(fsutil, "fsync_dir", synced.append)
    mark_clean_stop(data, sync=False)
    mark_clean_stop(data, sync=False)  # nothing left to remove: no error
    assert synced == [] and not os.path.exists(os.path.join(data, alarmchecks.RUNNING_MARKER))
    mark_clean_stop(data)  # elsewhere: durable at once
    check_last_stop(data, alarms)
    assert alarms.history() == []


def test_restart_after_a_power_loss(log, tmp_path):
    alarms, _, _ = log
    data = str(tmp_path / "box")
    os.makedirs(data)
    check_last_stop(data, alarms)  # first start ever
    mark_clean_stop(data)
    check_last_stop(data, alarms)  # after a clean stop
    assert alarms.history() == []
    # The last run never stopped: two recordings cut short, a file quarantined (not counted).
    recovered = [("partial", "r1", 2.5), ("quarantined", "x.lkrec", "/q/x.lkrec"), ("partial", "r2", 0.0)]
    check_last_stop(data, alarms, recovered=recovered)
    [row] = alarms.history()
    assert row["kind"] == "power_loss_restart" and row["cleared_us"] is not None
    assert "2 recording(s) were cut short" in row["message"]
    assert alarms.banner() == [row]  # until someone acknowledges it


def test_a_restart_after_a_sealed_power_cut_says_so(log, tmp_path):
    """After a warned cut that sealed everything, the next start said 'without a clean
    stop (a power cut or crash)', as after a crash."""
    from firmware.alarmchecks import mark_power_fail

    alarms, _, _ = log
    data = str(tmp_path / "box")
    os.makedirs(data)
    check_last_stop(data, alarms)  # running
    mark_power_fail(data)  # the seal at the warning
    check_last_stop(data, alarms)
    [row] = alarms.history()
    assert "after a power cut; at the warning it sealed every recording" in row["message"]
    # In the alarm's words, as every page and mail shows it, not its code (power_fail).
    assert "power_fail" not in row["message"] and '"The power failed" alarm' in row["message"]
    check_last_stop(data, alarms)  # running again: a crash now is a crash
    messages = [r["message"] for r in alarms.history()]
    assert len(messages) == 2 and any("without a clean stop (a power cut or crash)" in m for m in messages)


def test_a_card_that_refuses_the_running_mark_does_not_stop_the_start(log, tmp_path, monkeypatch, caplog):
    """The mark only lets the next start tell a crash; the box records without it."""
    from firmware import alarmchecks
    from firmware.storage import fsutil

    alarms, _, _ = log
    data = str(tmp_path / "box")
    os.makedirs(data)

    def refuse(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsutil, "atomic_write", refuse)
    check_last_stop(data, alarms)
    assert "cannot mark the box as running" in caplog.text
    assert not os.path.exists(os.path.join(data, alarmchecks.RUNNING_MARKER))


def test_the_reminders_are_raised_and_cleared_as_told_and_left_when_not_known(log):
    alarms, clock, audit = log
    told = {"retention_unset": True, "recovery_key_unconfirmed": True}
    check = DateChecks(alarms, clock.wall_us, reminders=lambda: dict(told))
    check()
    check()  # still so: one occurrence each
    assert on(alarms) == ["recovery_key_unconfirmed", "retention_unset"] and len(alarms.history()) == 2
    told = {"retention_unset": False}  # the recovery key's flag could not be read now
    check()
    assert on(alarms) == ["recovery_key_unconfirmed"]
    DateChecks(alarms, clock.wall_us)()  # the recorder's round, told no reminders, leaves them be
    assert on(alarms) == ["recovery_key_unconfirmed"]
    told = {"recovery_key_unconfirmed": False}
    check()
    assert on(alarms) == []


def _site(data_dir, **flags):
    import sqlite3

    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    db.execute("CREATE TABLE IF NOT EXISTS site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for key, value in flags.items():
        db.execute("INSERT OR REPLACE INTO site (key, value) VALUES (?, ?)", (key, value))
    db.commit()
    db.close()


def test_settings_reminders_read_the_box_and_say_nothing_before_setup(tmp_path):
    import dataclasses

    from firmware.alarmchecks import settings_reminders
    from firmware.config import BoxConfig, save_config

    data = str(tmp_path)
    assert settings_reminders(data) == {}  # no web.db yet
    _site(data, setup_complete="false", recovery_confirmed="false")
    assert settings_reminders(data) == {}  # the wizard is not finished
    _site(data, setup_complete="true")
    assert settings_reminders(data) == {"retention_unset": True, "recovery_key_unconfirmed": True}
    config = BoxConfig()
    retention = dataclasses.replace(config.policy.retention, default_days=90)
    save_config(data, config.replace(policy=dataclasses.replace(config.policy, retention=retention)))
    _site(data, recovery_confirmed="true")
    assert settings_reminders(data) == {"retention_unset": False, "recovery_key_unconfirmed": False}
    with open(os.path.join(data, "config.json"), "w") as f:
        f.write("{not json")
    assert settings_reminders(data) == {"recovery_key_unconfirmed": False}  # left as it is


def test_a_reminder_on_the_dashboard_says_its_alarm_and_what_to_do():
    from firmware.alarms import reminder_words

    assert reminder_words("retention_unset") == (
        "No retention period is set: every recording is kept for ever. An installer sets how "
        "long recordings are kept on the Retention page."
    )
    assert reminder_words("recovery_key_unconfirmed").startswith(
        "The recovery key was never confirmed as stored. An installer who is also a supervisor "
    )


def test_a_reminder_told_with_words_is_raised_with_them_once(log):
    """The checklist's ambers that are alarms are told with the safeguard's reason: the
    occurrence keeps it as its message; told again, it is the same occurrence."""
    alarms, clock, audit = log
    told = {"keystore_backup_stale": "no backup of the key store was made: a dead card loses every recording"}
    check = DateChecks(alarms, clock.wall_us, reminders=lambda: dict(told))
    check()
    check()
    rows = [r for r in alarms.history() if r["kind"] == "keystore_backup_stale"]
    assert len(rows) == 1 and rows[0]["message"] == told["keystore_backup_stale"]
    told = {"keystore_backup_stale": False}
    check()
    assert on(alarms) == []


def _state(**fields):
    from firmware.compliance import BoxState

    return BoxState(today=T0, **fields)


def test_the_checklists_ambers_that_are_alarms():
    """Safeguard 18 amber of a key store there is, and 15 amber for a review over a year old,
    are alarms, with the checklist's reasons; a box with no key store yet (nothing to lose),
    or with no DPIA recorded at all (amber only, as before), raises neither."""
    from firmware.compliance import amber_alarms

    fp = "ks1:" + "-".join(["abcd"] * 8)
    assert amber_alarms(_state()) == {"keystore_backup_stale": False, "dpia_review_due": False}
    stale = amber_alarms(_state(key_store=fp))["keystore_backup_stale"]
    # The alarm's title says what a dead card costs: its message says it no more (the
    # banner and the mail show both, and said it twice).
    assert stale.startswith("no backup of the key store was made; an installer ")
    assert "dead card" in say("alarm", "keystore_backup_stale") and "dead card" not in stale
    replaced = amber_alarms(_state(key_store=fp, key_backup_of="ks1:old", key_backup_date="2026-01-05"))
    assert "is of a key store a rekey has replaced" in replaced["keystore_backup_stale"]
    current = _state(key_store=fp, key_backup_of=fp, key_backup_date="2026-01-05")
    assert amber_alarms(current)["keystore_backup_stale"] is False
    overdue = amber_alarms(_state(dpia_reviewed="2025-03-01"))["dpia_review_due"]
    assert (
        overdue
        == "the DPIA was last reviewed on Sat 1 Mar 2025, over a year ago: look at it again (Settings)"
    )
    assert amber_alarms(_state(dpia_reviewed="2025-03-02"))["dpia_review_due"] is False  # a year to the day
    assert amber_alarms(_state(dpia_reviewed="not a date"))["dpia_review_due"] is False


def test_the_key_store_backup_alarm_is_only_for_what_a_restore_would_lose_and_names_no_one():
    """The alarm's message goes into mail and syslog (UDP, in clear): it named "a key slot
    added for ivan", then counted them. Key slots and passwords are no longer in it at all:
    a restore of the backup loses no recording by them (docs/keys.md); a line's new key or a
    new recovery key is. The checklist, read by those logged in, names the slots as before."""
    from firmware.compliance import amber_alarms, key_store_changes

    fp = "ks1:" + "-".join(["abcd"] * 8)
    then = {"digest": "1", "slots": ["alice", "bob"], "recovery": "r1", "lines": [1]}
    now = {"digest": "2", "slots": ["alice", "ivan", "zoe"], "recovery": "r1", "lines": [1]}
    state = dict(key_store=fp, key_backup_of=fp, key_backup_date="2026-01-05", key_backup_contents=then)
    assert amber_alarms(_state(key_store_contents=now, **state))["keystore_backup_stale"] is False
    said = amber_alarms(_state(key_store_contents=dict(now, lines=[1, 2]), **state))["keystore_backup_stale"]
    assert "(a key made for line 2)" in said, said
    assert not any(name in said for name in ("alice", "bob", "ivan", "zoe"))
    assert "slots" not in said and "slot added" not in said
    assert key_store_changes(then, now) == ["a key slot added for ivan, zoe", "the key slot of bob removed"]
    assert key_store_changes(then, now, losing=True) == []


class Waiting:
    """An ArchiveStatus's ``waiting()`` as told."""

    def __init__(self):
        self.calls, self.last_us, self.why = [], None, None

    def waiting(self):
        return list(self.calls), self.last_us, self.why


def _stall(alarms, clock):
    from firmware.alarmchecks import ArchiveStall

    status, mono = Waiting(), {"s": 1000.0}
    return ArchiveStall(alarms, status, clock.wall_us, monotonic=lambda: mono["s"]), status, mono


def test_archive_uploads_stalled_are_raised_once_and_cleared_when_caught_up(log):
    from firmware.alarmchecks import ARCHIVE_STALL_S

    alarms, clock, audit = log
    check, status, mono = _stall(alarms, clock)
    status.calls, status.last_us = [7, 8], clock.t - 3 * 3600 * 10**6
    status.why = "cannot reach the archive: connection refused"
    check()
    mono["s"] += ARCHIVE_STALL_S  # an hour to the second: not yet
    clock.t += ARCHIVE_STALL_S * 10**6
    check()
    assert on(alarms) == []
    mono["s"] += 60
    clock.t += 60 * 10**6
    check()
    check()  # still so: the same occurrence
    rows = [r for r in alarms.history() if r["kind"] == "archive_stalled"]
    assert len(rows) == 1 and rows[0]["cleared_us"] is None
    assert rows[0]["message"] == (
        "2 call(s) wait to go up, the oldest for 61 min, and none has gone up for 241 min; "
        "the latest try: cannot reach the archive: connection refused"
    )
    # Calls go up again, but the backlog is still older than the bound: on, until caught up.
    status.calls, status.last_us = [8, 9], clock.t
    check()
    assert on(alarms) == ["archive_stalled"]
    status.calls = [9]  # 9 came a minute ago: nothing has waited an hour
    check()
    assert on(alarms) == []
    assert [e.details["event"] for e in audit.entries(limit=10, action="alarm", newest_first=False)] == [
        "raised",
        "cleared",
    ]


def test_archive_uploads_that_move_are_not_stalled_and_none_ever_gone_up_is(log):
    from firmware.alarmchecks import ARCHIVE_STALL_S

    alarms, clock, audit = log
    check, status, mono = _stall(alarms, clock)
    status.calls = [1, 2, 3]
    check()
    for _ in range(3):  # a long backlog going up: one call a while
        mono["s"] += ARCHIVE_STALL_S
        clock.t += ARCHIVE_STALL_S * 10**6
        status.last_us = clock.t - 10 * 10**6
        check()
    assert on(alarms) == []
    check, status, mono = _stall(alarms, clock)  # another box: nothing has ever gone up
    status.calls = [1]
    check()
    mono["s"] += ARCHIVE_STALL_S + 1
    check()
    assert [r["message"] for r in alarms.history() if r["cleared_us"] is None] == [
        "1 call(s) wait to go up, the oldest for 60 min, and none has gone up yet"
    ]


def test_a_restart_neither_clears_nor_raises_archive_stalled_again(log):
    """After a start the check has seen nothing wait: an alarm on stays until the queue is
    empty or it has watched an hour, so a restart does not clear it to raise and mail it
    again; a queue empty at once clears it."""
    from firmware.alarmchecks import ARCHIVE_STALL_S

    alarms, clock, audit = log
    alarms.set("archive_stalled", True, message="2 call(s) wait to go up")
    check, status, mono = _stall(alarms, clock)  # the new run
    status.calls, status.last_us = [7, 8], clock.t - 5 * 3600 * 10**6
    check()
    mono["s"] += ARCHIVE_STALL_S - 1
    check()
    assert len([r for r in alarms.history() if r["kind"] == "archive_stalled"]) == 1
    assert on(alarms) == ["archive_stalled"]
    status.calls = []
    check()
    assert on(alarms) == []


def test_archive_stall_reads_the_status_the_uploader_keeps(tmp_path):
    """ArchiveStatus.waiting: the calls queued, when the last went up, the latest retry's why."""
    from firmware.archive.queue import STATUS_SCHEMA, ArchiveStatus, Db

    path = str(tmp_path / "calls.db")
    status = ArchiveStatus(path)
    assert status.waiting() is None  # the archive never ran here
    db = Db(path, STATUS_SCHEMA)
    for row in (
        (1, "archived", None, 100),
        (2, "archived", None, 200),
        (3, "queued", "retrying: cannot reach the archive: timed out", 300),
        (4, "queued", None, 250),
        (5, "failed", "the archive refused it", 400),
    ):
        db.execute("INSERT INTO archive_status VALUES (?, ?, ?, ?)", row)
    db.close()
    assert status.waiting() == ([3, 4], 200, "cannot reach the archive: timed out")


def test_archive_uploads_stalled_are_raised_on_a_clock_behind_the_last_upload(log):
    """A box started without network on a clock never set (no RTC, no time server reached)
    reads every call gone up as in its future: the check judges when the last went up by
    when it saw it change, not by the clock. It waited for the clock to pass that call's
    time by an hour, never on a clock at 1970, while new calls were on the card alone."""
    from firmware.alarmchecks import ARCHIVE_STALL_S

    alarms, clock, audit = log
    check, status, mono = _stall(alarms, clock)
    status.calls, status.last_us = [7], clock.t + 3 * 3600 * 10**6  # gone up "in 3 h"
    check()
    mono["s"] += ARCHIVE_STALL_S + 60
    clock.t += (ARCHIVE_STALL_S + 60) * 10**6
    check()
    assert on(alarms) == ["archive_stalled"]
    (row,) = [r for r in alarms.history() if r["kind"] == "archive_stalled"]
    assert row["message"] == "1 call(s) wait to go up, the oldest for 61 min, and none has gone up for 61 min"
    # A call goes up (the clock still behind): moving, left on until caught up, then cleared.
    status.calls, status.last_us = [7, 8], status.last_us + 10**6
    check()
    assert on(alarms) == ["archive_stalled"]
    status.calls = []
    check()
    assert on(alarms) == []


def test_a_damaged_call_log_leaves_the_archive_stall_alarm_as_it_is(log, tmp_path, caplog):
    """A call log that is not a database (damaged) cannot say what waits to go up: the
    check leaves archive_stalled as it is, and the log says why once, not at each round.
    The DatabaseError escaped the check, into the mail round's log every minute."""
    import logging

    from firmware.alarmchecks import ArchiveStall
    from firmware.archive.queue import ArchiveStatus

    alarms, clock, audit = log
    calls = tmp_path / "calls.db"
    calls.write_bytes(b"not a database at all " * 512)
    status = ArchiveStatus(calls)
    alarms.set("archive_stalled", True, message="3 call(s) wait to go up", wall_us=clock.wall_us())
    check = ArchiveStall(alarms, status, clock.wall_us, lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="firmware.archive.queue"):
        check()
        check()
    assert status.waiting() is None
    assert on(alarms) == ["archive_stalled"]
    said = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(said) == 1 and "calls.db" in said[0], said


def test_a_reminder_whose_reason_changes_is_renewed_in_the_words_of_now(log):
    """The key store changed again since the alarm was raised, or the DPIA was reviewed on
    another day still over a year ago: the occurrence open is cleared and a new one raised
    in the reason of now (mailed again). It kept its first reason in the history and the
    mail while the dashboard said the current one."""
    alarms, clock, audit = log
    first = "no backup of the key store was made: a dead card loses every recording"
    now = "the key store changed since its last backup, made on Mon 2 Mar 2026 (a key slot added)"
    told = {"keystore_backup_stale": first, "dpia_review_due": "the DPIA was last reviewed on Sat 1 Mar 2025"}
    check = DateChecks(alarms, clock.wall_us, reminders=lambda: dict(told))
    check()
    told["keystore_backup_stale"] = now
    check()
    check()
    rows = [
        (r["message"], r["cleared_us"] is None)
        for r in alarms.history()
        if r["kind"] == "keystore_backup_stale"
    ]
    assert rows == [(now, True), (first, False)]  # newest first
    assert len([r for r in alarms.history() if r["kind"] == "dpia_review_due"]) == 1


def test_archive_stalled_is_renewed_when_the_latest_try_fails_otherwise_not_as_minutes_pass(log):
    """The store that could not be reached now refuses the login: the occurrence open is
    renewed saying so (mailed again). Its minutes and counts moving alone renew nothing (a
    mail each minute). It kept the first failure in the history and the mail."""
    from firmware.alarmchecks import ARCHIVE_STALL_S

    alarms, clock, audit = log
    check, status, mono = _stall(alarms, clock)
    status.calls, status.last_us = [7, 8], clock.t - 3 * 3600 * 10**6
    status.why = "cannot reach the archive: connection refused"
    check()
    mono["s"] += ARCHIVE_STALL_S + 60
    clock.t += (ARCHIVE_STALL_S + 60) * 10**6
    check()
    mono["s"] += 60
    clock.t += 60 * 10**6
    status.calls = [7, 8, 9]
    check()  # a call more, a minute on: the same occurrence
    assert len([r for r in alarms.history() if r["kind"] == "archive_stalled"]) == 1
    status.why = "the archive refused the login: 403 Forbidden"
    check()
    rows = [r for r in alarms.history() if r["kind"] == "archive_stalled"]
    assert [r["cleared_us"] is None for r in rows] == [True, False]
    assert rows[0]["message"].endswith("the latest try: the archive refused the login: 403 Forbidden")
