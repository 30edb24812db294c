"""The web UI as a process of its own: :class:`Services` over the recorder's control socket.

``linekeeper web`` serves the UI from the data directory (call log, audit
trail, key store, recordings, configuration) and asks the running recorder,
through :class:`firmware.control.ControlClient`, only for what lives in the
recorder: the live line status, alarms, the box's clock, PCI pause and resume,
test calls, configuration reloads and the retention sweeper's state. While the
recorder is down (restarting, say) the pages still work, the dashboard says so,
and the UI reconnects by itself when it is back.
"""

import logging
import os
import shutil
import sqlite3
import time

from firmware import startfail
from firmware.alarmchecks import DateChecks, settings_reminders
from firmware.alarmlog import AlarmLog
from firmware.archive.queue import ArchiveStatus
from firmware.calls.calllog import iso_ms
from firmware.calls.callsearch import CallSearch, ensure_indexes
from firmware.config import load_config
from firmware.control import PROTOCOL, RecorderUnavailable
from firmware.datadir import site_settings, site_zone
from firmware.handover import box_keys
from firmware.keybackup import keys_lost
from firmware.mail.service import MailService
from firmware.migrations.m001_seal_stores import older_release_may_return
from firmware.policy.callmeta import CallMeta
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore
from firmware.reports.source import ReportSource
from firmware.secretbox import SecretBox
from firmware.signing import LazySigner, read_public_record, run_dir
from firmware.storage.audit import AuditLog
from firmware.storage.fieldseal import LazyFieldCipher
from firmware.storage.keystore import KeyStore
from firmware.update.inbox import UpdateInbox
from firmware.update.rauc import Rauc

from .rekeyjob import remote_rekey
from .services import (
    BoxConfigStore,
    BoxConsent,
    Services,
    StoreRecordings,
    notice_defaults_applier,
    site_settings_applier,
    with_card_health,
)
from .startalarm import StartFailureSyslog
from .startmail import StartFailureMail

log = logging.getLogger(__name__)
# How often this process runs its mail round with nothing new (real seconds): retries,
# scheduled reports. The recorder cannot wake this process's thread, so the thread also
# watches the queue and the alarm history: what the recorder queues or raises goes out
# within about a second (MailService's WATCH_POLL_S).
MAIL_INTERVAL_S = 10.0

RECORDER_DOWN = (
    "The recorder is not answering: it may be restarting. Calls are not being recorded until it is back."
)


# An update left half done: the recorder answers in an older control protocol version
# than this web UI's (firmware/control.py), which speaks it; without the address only if
# the recorder refuses it (the first releases of version 1: the one before 2 took it).
RELEASES_DIFFER = (
    "The recorder is an older release than the web UI (control protocol version %d, the web UI's "
    "%d): an update was not finished. Calls are recorded and pauses work, but the audit entries "
    "the recorder writes for what is done on these pages (pause, resume, erasure, the clock's "
    "confirmation, rekey) may not say the address it was done from. Restart both (or the box), or "
    "run the update again, so that they are the same release."
)


def recorder_cannot_start(note, when):
    """What the dashboard says in place of :data:`RECORDER_DOWN` while the recorder's
    starts fail (``note``: :func:`firmware.startfail.read`; ``when(us)`` formats a time)."""
    tries = (
        "once, at %s" % when(note["since_us"])
        if note["attempts"] == 1
        else ("%d times since %s" % (note["attempts"], when(note["since_us"])))
    )
    return (
        "The recorder cannot start: %s. It has tried %s and tries again every few seconds. "
        "Calls are not being recorded until it starts." % (note["error"].rstrip("."), tries)
    )


def _answers(client):
    """Whether the recorder answers on its control socket now."""
    try:
        client.call("health")
    except RecorderUnavailable:
        return False
    return True


class RemoteStatus:
    """Live line status from the recorder; a placeholder while it is down, dated by
    ``down_us()`` (the box's time without the recorder: :meth:`RemoteClock.without_recorder_us`;
    the machine's clock by default)."""

    def __init__(self, client, lines, down_us=None):
        self.client = client
        self.lines = lines
        self._down_us = down_us or (lambda: time.time_ns() // 1000)

    def snapshot(self):
        try:
            snap = self.client.call("snapshot")
        except RecorderUnavailable:
            return {
                "version": -1,
                "now": iso_ms(self._down_us()),
                "clock_synced": False,
                "recorder": "down",
                "lines": [
                    {"line": n, "state": "unknown", "since": None, "call": None, "faults": []}
                    for n in range(1, self.lines + 1)
                ],
            }
        snap["recorder"] = "running"
        return snap

    def wait_for_change(self, version, timeout_s):
        try:
            return self.client.call("wait", version=version, timeout_s=timeout_s, io_timeout_s=timeout_s + 5)
        except RecorderUnavailable:
            time.sleep(min(timeout_s, 1.0))
            return -1


class RemoteLive:
    """PCI pause and resume, carried out by the recorder."""

    def __init__(self, client):
        self.client = client

    def pause(self, line, actor, address=""):
        self.client.call("pause", line=line, actor=actor, address=address)

    def resume(self, line, actor, address=""):
        self.client.call("resume", line=line, actor=actor, address=address)

    def paused_lines(self):
        try:
            return self.client.call("paused")
        except RecorderUnavailable:
            return []

    def recording_lines(self):
        try:
            return self.client.call("recording")
        except RecorderUnavailable:
            return []

    def pausable_lines(self):
        """:raises RecorderUnavailable: (not an empty list: a pause refused as "nothing to
        pause" while the recorder did not answer in time let card details be recorded)"""
        return self.client.call("pausable")


class _RemoteGuard:
    def __init__(self, retention):
        self._retention = retention

    @property
    def suspended(self):
        return self._retention.remote_state().get("suspended")

    @property
    def last_passed_us(self):
        return self._retention.remote_state().get("last_passed_us")


class RemoteRetention:
    """The retention pages' view: previews and the deletion log read here, the
    sweeper's live state (suspension, alarms, disk) from the recorder.

    ``sweeper`` is a :class:`~firmware.policy.sweeper.RetentionSweeper` on the
    same data that is never started: it only reads.
    """

    def __init__(self, client, sweeper):
        self.client = client
        self.sweeper = sweeper
        self.guard = _RemoteGuard(self)

    @property
    def settings(self):
        return self.sweeper.settings

    def update_settings(self, settings):
        self.sweeper.update_settings(settings)

    def remote_state(self):
        try:
            return self.client.call("retention")
        except RecorderUnavailable:
            return {}

    def preview(self, now_us=None, settings=None):
        return self.sweeper.preview(now_us, settings)

    def held(self, now_us=None, settings=None):
        return self.sweeper.held(now_us, settings)

    def counts(self, candidates):
        return self.sweeper.counts(candidates)

    def confirm_clock(self, actor, address=""):
        self.client.call("confirm_clock", actor=actor, address=address)

    def erase(self, call_id, actor, reason, details=False, address=""):
        """Erase a call's recordings (the recorder does it: its archive follows), and with
        ``details`` the caller's details too;
        :raises ControlError: refused, in the recorder's words (as ``ErasureRefused``)"""
        return self.client.call(
            "erase", call_id=int(call_id), actor=actor, reason=reason, details=bool(details), address=address
        )

    def erase_details(self, call_id, actor, reason, address=""):
        """Erase a call's caller's details from the call log (the recorder, its writer, does it);
        :raises ControlError: refused, in the recorder's words (as ``ErasureRefused``)"""
        return self.client.call(
            "erase_details", call_id=int(call_id), actor=actor, reason=reason, address=address
        )

    def deletion_log(self, limit=100, offset=0, after_seq=None, since_us=None, until_us=None):
        return self.sweeper.deletion_log(
            limit, offset, after_seq=after_seq, since_us=since_us, until_us=until_us
        )

    def deletion_count(self, since_us=None, until_us=None):
        return self.sweeper.deletion_count(since_us, until_us)

    def deletions_of_call(self, call_id):
        return self.sweeper.deletions_of_call(call_id)

    def verify(self):
        return self.sweeper.verify()

    def verify_after(self, checked):
        return self.sweeper.verify_after(checked)

    def active_alarms(self):
        return self.remote_state().get("alarms", [])

    @property
    def last_disk_percent(self):
        return self.remote_state().get("disk_percent")


class RemoteClock:
    """The box's clock as the recorder keeps it (simulated time on the simulated board).

    While the recorder is down, the machine's clock (``machine_us()``, µs) moved by as much
    as the recorder's was from it when it last answered: nothing on a box, whose recorder
    keeps the machine's clock (so a clock set since is followed), months on a simulated box
    whose scenario has a date of its own. What the web UI dates meanwhile (audit entries,
    accounts) then stays on the box's clock, not a second one. Before the recorder first
    answers, the machine's clock as it is.

    The gap is measured against the machine's clock halfway through the call, and one
    under :data:`SAME_CLOCK_US` is none: on a box both are one clock, and the call's own
    time (or a step of the clock taken between the two reads) is not a gap to keep.
    """

    SAME_CLOCK_US = 1_000_000

    def __init__(self, client, machine_us=None):
        self.client = client
        self._machine_us = machine_us or (lambda: time.time_ns() // 1000)
        self._ahead_us = 0  # the recorder's clock less the machine's, when it last answered

    def wall_us(self):
        asked_us = self._machine_us()
        try:
            box_us = int(self.client.call("wall_us"))
        except RecorderUnavailable:
            return self.without_recorder_us()
        ahead_us = box_us - (asked_us + self._machine_us()) // 2
        self._ahead_us = 0 if abs(ahead_us) < self.SAME_CLOCK_US else ahead_us
        return box_us

    def without_recorder_us(self):
        """The box's time as judged without asking the recorder (see the class)."""
        return self._machine_us() + self._ahead_us

    def wall_at(self, t_us):
        return t_us


def services_for_recorder(data_dir, client, lines, *, cert_fingerprint=None):
    """:class:`Services` for a web UI process beside a recorder reached by ``client``."""
    clock = RemoteClock(client)
    calls_db = os.path.join(data_dir, "calls.db")
    try:
        ensure_indexes(calls_db)
    except sqlite3.Error as exc:
        # A call log the recorder has not made yet (it is down), or one it cannot use:
        # the UI is served all the same, its dashboard saying why the recorder is down.
        log.error(
            "the call log's search indexes were not made (%s): searches are slower until "
            "the web UI starts again",
            exc,
        )
    # The recorder makes the key at its first start, which may come after this one's.
    signer = LazySigner(data_dir)
    # ... and leaves the storage key (personal data sealed under the MCU vault) beside it.
    cipher = LazyFieldCipher(data_dir, run_dir())
    audit = AuditLog(
        os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), signer=signer, cipher=cipher
    )
    record = read_public_record(data_dir)

    def audit_recording(action, recording_id, details):
        audit.append("system", action, recording_id and "recording:" + recording_id, details, clock.wall_us())

    # Playback and export check each recording's seal with the box's key on record.
    store = RecordingStore(data_dir, on_audit=audit_recording)
    # A recording sealed before a HAT was replaced holds by the key handed over.
    store.verify_key = box_keys(data_dir, record and record["public_key"], audit)
    # A recording of a line whose key a key store backup put back lacked: said so, not altered.
    store.keys_lost_from = lambda: keys_lost(audit)
    retention = RemoteRetention(
        client, RetentionSweeper(store, clock, audit, load_config(data_dir).policy.retention)
    )

    def apply(config):
        retention.update_settings(config.policy.retention)
        reports.country = config.country  # how numbers compare: a country changed in Settings, at once
        try:
            client.call("reload")
        except RecorderUnavailable:
            pass  # it reads config.json when it starts again

    # The alarm history, reports and mail live in the data directory: this process reads
    # and acknowledges alarms, raises people's concerns, makes reports, and delivers the
    # mail queue (the recorder, which may not reach the network, only queues to it).
    config = load_config(data_dir)
    alarm_log = AlarmLog(os.path.join(data_dir, "alarms.db"), clock, audit, cipher)
    reports = ReportSource(
        data_dir,
        country=config.country,
        # tz: the box's zone, as its site settings say it now (the pages' zone).
        n_lines=lines,
        alarms=alarm_log,
        cipher=cipher,
        wall_us=clock.wall_us,
    )
    # The date alarms (the ICO registration's renewal, the HTTPS certificate's end) and the
    # reminders are checked here: this process keeps the site settings and the certificate,
    # which the recorder's round is not told of.
    date_checks = DateChecks(
        alarm_log,
        clock.wall_us,
        ico_renewal=lambda: (site_settings(data_dir) or {}).get("ico_renewal") or "",
        cert_path=os.path.join(data_dir, "tls", "cert.pem"),
        zone=lambda: site_zone(data_dir),
        # No retention period, no recovery key confirmed (the web UI adds the checklist's
        # ambers that are alarms: web.server._serve).
        reminders=lambda: settings_reminders(data_dir),
    )
    mail = MailService(
        data_dir,
        clock.wall_us,
        SecretBox(data_dir, cipher=cipher),  # the storage key too, once the recorder left it
        reports=reports,
        alarm_log=alarm_log,
        cipher=cipher,
        checks=[date_checks],
        interval_s=MAIL_INTERVAL_S,
        watch=[
            os.path.join(data_dir, "mail", "queue"),
            os.path.join(data_dir, "alarms.db"),
            os.path.join(data_dir, "alarms.db-wal"),
        ],
        audit=audit,  # a report withdrawn by the recorder while it was being sent here
    )
    mail.checks.append(
        StartFailureSyslog(
            run_dir(), lambda: _answers(client), mail.syslog, data_dir, mail.name, clock.wall_us, audit
        )
    )
    # And once it has failed for minutes, a mail from what this process keeps in memory.
    mail.checks.append(StartFailureMail(run_dir(), lambda: _answers(client), mail, audit))
    # Queued in clear while an older release that cannot read a sealed mail may come back.
    mail.queue.seal_writes = not older_release_may_return(data_dir)
    mail.relay_alarms_to_syslog()  # the recorder's too: it has no network
    config_store = BoxConfigStore(data_dir, apply, cipher)
    consent = BoxConsent(
        data_dir,
        config_store,
        lambda line, samples: client.call("test_call", line=line),
        load_config(data_dir).country,
    )

    def health():
        usage = shutil.disk_usage(data_dir)
        recorder = "running"
        try:
            remote = client.call("health")
        except RecorderUnavailable:
            recorder = "down"
            # Why, when its starts fail: noted in the run directory (firmware/startfail.py).
            remote = {
                "alarms": [RECORDER_DOWN],
                "clock_synced": False,
                "recorder_start": startfail.read(run_dir()),
            }
        older = client.recorder_protocol
        if older is not None:
            remote = dict(remote, alarms=[RELEASES_DIFFER % (older, PROTOCOL)] + list(remote["alarms"]))
        return with_card_health(
            {
                "disk_free_bytes": usage.free,
                "disk_total_bytes": usage.total,
                "clock_synced": bool(remote["clock_synced"]),
                "alarms": list(remote["alarms"]),
                "alarm_lines": dict(remote.get("alarm_lines") or {}),
                "recorder_start": remote.get("recorder_start"),
                "recorder": recorder,
            },
            data_dir,
            wall_us=clock.wall_us,
        )

    return Services(
        status=RemoteStatus(client, lines, clock.without_recorder_us),
        calls=CallSearch(calls_db, cipher),
        keystore=KeyStore(data_dir),
        audit=audit,
        recordings=StoreRecordings(store, clock.wall_us, signer=signer),
        retention=retention,
        box_config=config_store,
        consent=consent,
        health=health,
        apply_settings=site_settings_applier(config_store, audit, clock.wall_us),
        setup_defaults=notice_defaults_applier(config_store, audit, clock.wall_us),
        live=RemoteLive(client),
        call_tags=CallMeta(calls_db),
        wall_us=clock.wall_us,
        cert_fingerprint=cert_fingerprint,
        archive=ArchiveStatus(calls_db) if load_config(data_dir).archive.enabled else None,
        date_checks=date_checks,
        # Asks RAUC (D-Bus, as the updater does) whether an update that ended
        # "installing" still has it writing: until it is idle, no upload is taken.
        updates=UpdateInbox(data_dir, rauc=Rauc()),
        slot_tampered=lambda user, failure: client.call("slot_tampered", user=user, failure=failure),
        rekey=remote_rekey(client, audit, clock.wall_us),
        cipher=cipher,
        alarms=alarm_log,
        reports=reports,
        mail=mail,
    )
