"""The box: where the parts are chosen and wired together — the one place.

    board ──edges──▶ supervisor ──bus──▶ call log, status, policy ──▶ recorder
      │                  └──keys (never on the bus)──▶ policy
      ├──buttons──▶ policy (on-demand recording, PCI pause)
      └──audio──▶ capture (paused line zeroed) ─▶ per-line ring ─▶ DSP, recorder

:func:`open_box` picks the board (simulated or Raspberry Pi), the clock and
the storage from the configuration; :class:`Box` only connects what it is
given, so tests can build one around any board.
"""

import dataclasses
import datetime as dt
import functools
import logging
import os
import sqlite3
import threading
import time

import board.mcu as board_mcu
from board import choose_board
from board.adapter import list_adapters, load_adapter
from board.base import BUTTON_SIGNALS
from board.mcu.flash import McuFlasher, build_image
from board.mcu.link import McuError, McuLink
from firmware.calls.calllog import GROUP_COMMIT_US, CallLog
from firmware.calls.status import LineStatus
from firmware.calls.supervisor import Supervisor, SupervisorConfig
from firmware.recording.recorder import Recorder
from firmware.recording.store import QUARANTINE, RecordingStore
from firmware.storage import fsutil
from firmware.storage.audit import DEFERRABLE_ACTIONS, open_audit, with_address
from firmware.storage.fieldseal import load_field_cipher
from firmware.storage.keystore import KeyStore
from firmware.storage.sealstores import seal_clear_stores, seal_mail_queue
from telephony import countries

from . import alarmchecks, simtime, words
from .alarmchecks import ArchiveStall, ConsentWatch, DateChecks, RetentionBacklog, check_last_stop
from .alarminbox import AlarmInbox
from .alarmlog import AlarmLog
from .alarms import AlarmBoard
from .bus import Alarm, CallAnswerConfirmed, CallAnswered, EventBus, LineStateChanged, UpdateState
from .calls.calllog import iso_ms
from .capture import Capture
from .cardhealth import CardWearCheck, card_health
from .clock import RealClock, SimClock, kernel_clock_synchronised
from .config import BoxConfig, config_path, frame_ms, load_config, open_sealed_rules
from .datadir import (
    DataDirLock,
    account_lines,
    clean_stop_run,
    clean_stop_us,
    clear_clean_stop,
    mark_clean_stop,
    preallocate_wal,
    site_region,
    site_zone,
    stopped_cleanly,
    storage_error,
)
from .errors import ConfigError, KeyStoreError, LinekeeperError, RekeyBusyError, StorageError, TamperError
from .firstboot import SetupLed
from .handover import box_keys
from .keybackup import keys_lost
from .keypin import RecordingKeyPin
from .linecheck import LineCheck
from .localtime import iso_to_us
from .mail.schedule import withdraw_expired_reports, withdraw_reports
from .mail.service import MailService
from .migrations import (
    backups_kept,
    bring_up_to_date,
    drop_backups,
    finish_migration,
    finish_rollback,
    note_rebuilding,
    pending_rollback,
)
from .migrations.m001_seal_stores import DEFERRED as SEAL_DEFERRED
from .migrations.m001_seal_stores import older_release_may_return
from .notconnected import NotConnectedLines
from .policy.callmeta import CallMeta
from .policy.engine import CallPolicy
from .policy.sweeper import RetentionSweeper
from .powerfail import PowerFailWatch
from .recovery import preflight, rebuild_unknown_recordings, restore_missing_calls
from .rekey import Rekey
from .reports.source import ReportSource
from .rights import OverdueCheck
from .rightsretention import RegisterRetention
from .secretbox import SecretBox
from .signing import drop_carried, load_signer, own_run_dir
from .update.inbox import inbox_dir, restart_step_us
from .update.rauc import Rauc
from .update.signals import UpdateSignals
from .uptime import STEP_US, AliveMark, clear_update_restart, restarted_for_update, start_details

log = logging.getLogger(__name__)

# Below this much free space a box that cannot open its data is told the card is full.
START_FREE_BYTES = 1 << 20
# The write-ahead logs are grown to their usual size at start-up only when the card
# keeps this much free beyond the recorder's disk reserve.
WAL_ROOM_BYTES = 64 << 20
# Each line's audio waits this long before it is encoded, so that a key the
# detector has recognised can still be cut out of it: off-hook the detector
# decides on DTMF every 80 ms (within about 100 ms of a key's end, a capture
# period included), a key's tone lasts 40 to 200 ms, and masking takes 40 ms
# either side.
# The recorder's chunks are shortened by the same amount (recorder_flush_ms),
# so audio still reaches the card within flush_ms of being captured: a crash
# loses at most a second, delay included.
RECORDER_DELAY_MS = 360


def recorder_flush_ms(flush_ms, profile):
    """The recorder's chunk length (ms) for a configured ``flush_ms``: what the delay
    line leaves of it, and at least one encoder frame."""
    return max(flush_ms - RECORDER_DELAY_MS, frame_ms(profile) or 20)


class Box:
    """A running recorder around ``board``.

    :param board: a :class:`board.base.Board`
    :param clock: the clock the board stamps edges and audio with
    :param data_dir: where the call log lives (created if missing)
    :param config: a :class:`firmware.config.BoxConfig`
    :param signals: the input signals the board's HAT wires
    :param dsp_factory: ``f(line, on_event) -> LineDsp`` or None for no DSP
    :param strict: raise errors from event handlers (simulator, tests)
    :param fixed_country: the country whatever the configuration says (the
        simulator: the simulated exchange is what the box is plugged into)
    :param card: ``(data_dir) -> dict or None``, the card's wear
        (:func:`firmware.cardhealth.card_health` on the Pi), for the ``card_wear``
        alarm; None: not measured (a simulated box's data is on the host's disk)

    ``box.policy`` (:class:`~firmware.policy.engine.CallPolicy`) decides
    what is recorded and gives the notices; the web layer pauses and resumes
    through it.

    The box holds ``data_dir``'s lock from construction to :meth:`stop`.

    :raises LinekeeperError: another process holds the data directory
    :raises RecoveryRefused: starting would put recordings at risk (see
        :func:`firmware.recovery.preflight` and docs/recovery.md)
    :raises StorageError: the data cannot be opened (full, read-only, ...)
    """

    def __init__(
        self,
        board,
        clock,
        data_dir,
        config,
        signals,
        *,
        dsp_factory=None,
        strict=False,
        threaded=False,
        fixed_country=None,
        vault=None,
        card=None,
    ):
        if os.path.exists(data_dir) and not os.path.isdir(data_dir):
            raise LinekeeperError("%s is not a directory: give the box's data directory" % data_dir)
        os.makedirs(data_dir, exist_ok=True)
        self._vault = vault  # the HAT MCU's key vault (the device signing key), or None
        self.board = board
        self.clock = clock
        self.fixed_country = fixed_country
        if fixed_country is not None and config.country != fixed_country:
            config = config.replace(country=fixed_country)
        self.config = config
        self.data_dir = data_dir
        self._dsp_factory = dsp_factory
        self.bus = EventBus(strict=strict)
        # One box per data directory; nothing is opened for writing before the
        # start-up checks have found it safe (docs/recovery.md).
        self._dirlock = DataDirLock(data_dir)
        try:
            # A rollback cut short may have put an older call log back already: the
            # recordings it lacks are rebuilt below, not a reason to refuse.
            preflight(data_dir, rebuilding=pending_rollback(data_dir) is not None)
            # The data brought to this release's schema (or back to it after a rollback).
            migrated = bring_up_to_date(data_dir)
            # An update to the sealed stores not marked good yet: what its rollback's
            # older release needs in clear stays so (firmware/migrations/m001_seal_stores.py).
            self._seal_deferred = older_release_may_return(data_dir)
            self._rolled_back = migrated is not None and migrated["event"] == "restored"
            self._rebuilding = migrated.pop("rebuilding", ()) if self._rolled_back else ()
            self._after_update = migrated is not None
            self._open_storage()
            # The busiest logs at their usual size from the start, so that their syncs
            # do not commit ext4's journal too (firmware.datadir.preallocate_wal); not
            # on a card that is nearly full, where the space matters more.
            keep_free = (self.config.disk_reserve_mb << 20) + WAL_ROOM_BYTES
            for name in ("calls.db", "audit.db"):
                preallocate_wal(os.path.join(data_dir, name), keep_free=keep_free)
            # Rules whose number patterns are sealed on the card, opened with the key.
            config = self.config = open_sealed_rules(self.config, self.cipher)
            if migrated is not None:
                self._audit_migration(migrated)
        except (sqlite3.Error, OSError, LinekeeperError) as exc:
            # A refusal (another HAT's vault, a damaged key) lets go of the directory too,
            # so `linekeeper hat-replaced` can run at once.
            self._dirlock.release()
            if isinstance(exc, LinekeeperError):
                raise
            raise _cannot_open(data_dir, exc) from None
        except BaseException:
            self._dirlock.release()
            raise
        self.status = LineStatus(board.lines, clock, lambda: self.config.country)
        self.status.attach(self.bus)
        self.linecheck = open_linecheck(data_dir, board.lines, self.status, self.config)
        self.linecheck.attach(self.bus)
        self.dsp = {}
        self.supervisor = Supervisor(
            board.lines,
            clock,
            self.bus,
            SupervisorConfig(
                country=config.country,
                debounce_ms=config.debounce_ms,
                stuck_off_hook_ms=config.stuck_off_hook_min * 60_000,
                no_voltage_fault_ms=config.no_voltage_fault_s * 1000,
                **line_signal_settings(config),
            ),
            signals=signals,
            on_hook_change=self._hook_changed,
        )
        self.bus.subscribe(CallAnswered, self._call_answered)
        self.bus.subscribe(CallAnswerConfirmed, self._call_answered)
        # The ring is what an on-demand recording can reach back into.
        ring_s = max(8, config.policy.rules.on_demand.lookback_s + 2)
        self.capture = Capture(board, ring_seconds=ring_s, threaded=threaded)
        self.recorder = Recorder(
            self.capture,
            self.recordings,
            clock,
            self.bus,
            self._public_key,
            preroll_ms=config.preroll_ms,
            flush_ms=recorder_flush_ms(self._flush_ms(), config.audio_profile),
            profile=config.audio_profile,
            disk_reserve_bytes=config.disk_reserve_mb << 20,
            auto=False,
            delay_ms=RECORDER_DELAY_MS,
            line_key=self._line_public_key,
            journal=self._journal(),
            holdup=self._flush_ms() > config.flush_ms,
            country=lambda: self.config.country,
        )
        self.recorder.field_cipher = self.cipher
        self.recorder.attach(self.bus)
        self.callmeta = CallMeta(os.path.join(data_dir, "calls.db"))
        self.policy = CallPolicy(
            config.policy,
            country=config.country,
            recorder=self.recorder,
            capture=self.capture,
            board=board,
            clock=clock,
            bus=self.bus,
            audit=self.audit,
            data_dir=data_dir,
            callmeta=self.callmeta,
            preroll_ms=config.preroll_ms,
        )
        self.policy.attach(self.bus)
        self.supervisor.on_key = self.policy.on_key
        self.supervisor.key_codes = self.policy.key_codes
        self.alarms = AlarmBoard()
        self.alarms.attach(self.bus)
        # Every occurrence kept, cleared or not, until acknowledged (the dashboard banner).
        self.alarm_log = AlarmLog(os.path.join(data_dir, "alarms.db"), clock, self.audit, self.cipher)
        # The lines with nothing plugged in: no fault alarm, an alarm when one is in use.
        self.not_connected = NotConnectedLines(
            lambda: self.config.not_connected, self.alarm_log, self._line_faults
        )
        self.policy.not_connected = frozenset(config.not_connected)
        self.alarm_log.attach(self.bus, quiet=self.not_connected.quiet)
        self.not_connected.attach(self.bus)  # after the call log, which gives each call its id
        # A field update's LED pattern and its alarm (told by `linekeeper update`); RAUC
        # is asked when an update ended while it was still writing (``installing``).
        # The last update's result on the Updates page (its inbox): a box that came back
        # on another version than it installed raises update_not_running.
        self.update_signals = UpdateSignals(board, clock.now_us, rauc=Rauc(), status_dir=inbox_dir(data_dir))
        self.update_signals.attach(self.bus)
        self.reports = ReportSource(
            data_dir,
            country=config.country,
            # tz: the box's zone, as its site settings say it now (the pages' zone).
            n_lines=board.lines,
            alarms=self.alarm_log,
            cipher=self.cipher,
            wall_us=clock.wall_us,
        )
        self.consent_watch = ConsentWatch(self.alarm_log, clock.wall_at)
        self.consent_watch.attach(self.bus)
        # The announcement the notices need, found unplayable as the box starts, at a
        # change of configuration or at a call: an alarm before any caller goes untold.
        self.policy.consent.on_announcement = self._announcement_alarm
        self._announcement_alarm(self.policy.consent.announcement_problem)
        # A pause or resume code the Rules page and an import refuse, in a config.json
        # written before they did: loaded (the box records as it was set), and said.
        self._pci_code_alarm(config.policy.pci)
        # The web server fills in the ICO renewal date and its certificate.
        self.date_checks = DateChecks(self.alarm_log, clock.wall_us, zone=lambda: site_zone(data_dir))
        self.mail = MailService(
            data_dir,
            clock.wall_us,
            SecretBox(data_dir, cipher=self.cipher),  # the storage key too, on a box that seals
            reports=self.reports,
            alarm_log=self.alarm_log,
            checks=[self.date_checks],
            cipher=self.cipher,
            audit=self.audit,
        )
        # Queued in clear while an older release that cannot send a sealed mail may come
        # back (an update not marked good yet); sealed once it is.
        self.mail.queue.seal_writes = not self._seal_deferred
        # Mails an older firmware queued in clear: sealed now (the other stores were
        # sealed when storage opened).
        if self.cipher is not None and not self._seal_deferred:
            self.sealed_stores_at_start["mail"] = seal_mail_queue(self.mail.queue)
        self.sealed_stores_after_update = None
        self.bus.subscribe(UpdateState, self._seal_when_confirmed)
        self.retention = RetentionSweeper(
            self.recordings,
            clock,
            self.audit,
            config.policy.retention,
            bus=self.bus,
            threaded=threaded,
            call_log=self.calllog,
            # The register of requests keeps a closed one only so long (its dates are local).
            requests=RegisterRetention(
                data_dir,
                zone=lambda: site_zone(data_dir),
                held_calls=self.callmeta.held_calls,
            ),
        )
        # A caller's details erased: the scheduled reports waiting in the mail queue that may
        # name them are withdrawn (firmware/mail/schedule.py).
        self.retention.on_details_erased.append(
            lambda call_id, started_us, actor, address: withdraw_reports(
                self.mail.queue, self.audit, call_id, started_us, actor, clock.wall_us, address
            )
        )
        # So are they when the sweep removed callers' details past their period.
        self.retention.on_details_expired.append(
            lambda started_us: withdraw_expired_reports(
                self.mail.queue,
                self.audit,
                started_us,
                self.retention.settings.call_details_days,
                clock.wall_us,
            )
        )
        # Alarms found by looking, each round: notes from the updater, the retention backlog.
        self.alarm_inbox = AlarmInbox(data_dir, self.alarm_log)
        self.retention_backlog = RetentionBacklog(self.alarm_log, self.retention)
        # A data subject's request past its deadline (the register the web UI keeps).
        self.requests_overdue = OverdueCheck(
            self.alarm_log,
            data_dir,
            clock.wall_us,
            zone=lambda: site_zone(data_dir),
            region=lambda: site_region(data_dir),  # the site's, as saved now
            # Whose lines have a supervisor: a request about none of those is the whole box's.
            accounts=lambda: account_lines(data_dir),
        )
        # The card's wear (firmware/cardhealth.py): in the history, so mailed and on the banner.
        # Measured on the Pi only: a simulated box's data is on the host's disk, whose
        # wear is the host's (a busy build machine "wore out" in 129 days).
        self.card_wear = CardWearCheck(self.alarm_log, data_dir, card=card or (lambda data_dir: None))
        self.mail.checks += [self.alarm_inbox, self.retention_backlog, self.requests_overdue, self.card_wear]
        from .archive.replicator import attach as attach_archive

        self.archive = attach_archive(self)
        if self.archive is not None:
            from .archive.queue import ArchiveStatus

            self.archive_stall = ArchiveStall(
                self.alarm_log, ArchiveStatus(os.path.join(data_dir, "calls.db")), clock.wall_us
            )
            self.mail.checks.append(self._archive_stall)
        if dsp_factory is not None:
            for line in range(1, board.lines + 1):
                dsp = dsp_factory(line, self._dsp_event(line), tone_countries=tuple(config.tone_countries))
                self.dsp[line] = dsp
                self.capture.add_consumer(line, dsp.feed)
        self._started = False
        self._threaded = threaded
        self.power_watch = None
        self.setup_led = None
        self.halted = None  # why the box stopped taking work while running
        self.alive = None  # the sign of life (firmware/uptime.py), from a start that got that far
        self._start_record = None  # box_start's details, until it is audited
        self._start_t_us = None  # when the run started, on the monotonic clock (box_start's started)
        self._unset_start_us = None  # box_start's started, dated by a clock not yet set (clock_set)
        self._start_dated_us = None  # box_start's started as on record (or its clock_set's)
        self.seal_s = None  # real seconds the power-fail seal took
        self.holdup_ms = None  # the hold-up time the MCU reported with its warning
        self.on_power_back = None  # fn(): the power returned after a warning, no brownout

    def _flush_ms(self):
        """How long audio may wait in memory: ``flush_ms``, or ``holdup_flush_ms`` when
        it is set and the HAT's MCU has a hold-up capacitor to warn of a power cut."""
        hat = getattr(self.board, "hat", None)
        mcu = getattr(hat, "mcu", None)
        if (
            self.config.holdup_flush_ms
            and mcu is not None
            and mcu.holdup_farads > 0
            and getattr(self.board, "mcu_bus", None) is not None
        ):
            return self.config.holdup_flush_ms
        if self.config.holdup_flush_ms and not getattr(self, "_holdup_ignored_said", False):
            # The safe side, said (once): the technician believes the card is spared writes.
            self._holdup_ignored_said = True
            log.warning(
                "holdup_flush_ms (%d) is ignored: the HAT %s has no %s, so no warning would come "
                "before a power cut; audio is written every %d ms as without it",
                self.config.holdup_flush_ms,
                getattr(hat, "id", "?"),
                "supervisor MCU" if mcu is None else "hold-up capacitor",
                self.config.flush_ms,
            )
        return self.config.flush_ms

    def _journal(self):
        """The shared recording journal, when it is the write path (docs/journal.md);
        with a stretched sync (``holdup_flush_ms``) it takes the recordings' seals only,
        the chunks going to their files (docs/holdup-writes.md)."""
        if not self.config.write_journal:
            return None
        try:
            return self.recordings.open_journal()
        except OSError as exc:
            # As a refusal while the data is opened: one line, and the directory let go.
            self._dirlock.release()
            raise _cannot_open(self.data_dir, exc) from None

    def _open_storage(self):
        """Open the call log, audit trail, keys and recordings; recover what a stop cut.

        Recordings a crash left open become partial; calls left open are
        closed at their last evidence, as ``shutdown`` when the last run
        stopped cleanly, else ``power_loss``; files nothing accounts for are
        quarantined and audited (the alarm goes on at :meth:`start`).
        """
        data_dir, clock = self.data_dir, self.clock
        clean = self._stopped_cleanly = stopped_cleanly(data_dir)
        self._clean_stop_us = clean_stop_us(data_dir) if clean else None
        # That run's box_start, when the card kept no entry of it (its mark carries it).
        self._clean_stop_run = clean_stop_run(data_dir) if clean else None
        # The updater's restart, when its note came just before that clean stop, or its
        # progress note on the Updates page says it was at its restart step then (the
        # update to this release, by one whose updater leaves no note).
        self._update_restart = restarted_for_update(data_dir, self._clean_stop_us, restart_step_us(data_dir))
        if self._vault is not None:
            # An old HAT's key is never carried to a new one (firmware/handover.py).
            drop_carried(data_dir)
        self.signer = load_signer(data_dir, vault=self._vault, run_dir=own_run_dir())
        if self._rolled_back:
            # The call log came back from before the update: the calls the rolled-back
            # release recorded since are rebuilt from their recordings' headers, before
            # the call log opens (it counts its ids from what it holds; their fields are
            # sealed with the others just below).
            store = RecordingStore(data_dir, signer=self.signer)
            try:
                self.rebuilt_after_rollback = rebuild_unknown_recordings(
                    store,
                    data_dir,
                    begun=self._rebuilding,
                    before=lambda ids: note_rebuilding(data_dir, ids),
                )
            finally:
                store.close()
        self.keypin = RecordingKeyPin(data_dir, self.signer)
        self._key_tampered = False
        self._rekeying = threading.Lock()
        self.rekey_progress = []  # the running (or last) rekey's progress lines
        self.keystore = KeyStore(data_dir)
        # Personal data sealed under the vault's storage key (docs/card-alone.md), with an
        # escrow copy wrapped to the (pinned) recording key for a new HAT.
        self.cipher = load_field_cipher(
            data_dir, vault=self._vault, run_dir=own_run_dir(), escrow=self._escrow_to()
        )
        # web.db, config.json's rules and the calls' policy reasons as an older
        # firmware left them: sealed (or cleaned) now, before the call log opens.
        leave = SEAL_DEFERRED if self._seal_deferred else ()
        self.sealed_stores_at_start = seal_clear_stores(data_dir, self.cipher, leave=leave)
        # Call states wait as long as audio may (a second; longer only with the MCU's
        # warning, which flushes them with everything else: docs/sqlite-writes.md). Under
        # its hold-up capacitor calls.db is synced once per interval (docs/holdup-writes.md).
        holdup = self._flush_ms() > self.config.flush_ms
        self.calllog = CallLog(
            os.path.join(data_dir, "calls.db"),
            clock,
            cipher=self.cipher,
            commit_us=max(GROUP_COMMIT_US, self._flush_ms() * 1000),
            holdup=holdup,
            country=lambda: self.config.country,
        )
        # Calls logged before sealing began (an older box's card): sealed now.
        self.sealed_at_start = self.calllog.seal_clear_fields()
        self.calllog.attach(self.bus)
        # The recordings' own bookkeeping waits for a group commit as call states do
        # (docs/audit-writes.md); everything else is on the card when append returns.
        self.audit = open_audit(
            data_dir, self.signer, self.cipher, clock=clock, commit_us=self.calllog.commit_us
        )
        self._restore_audit_head(clean)
        # Built once the box runs (start), beside the lines: never before they record.
        self._indexer = None
        self._indexer_stop = threading.Event()
        self.recordings = RecordingStore(
            data_dir,
            signer=self.signer,
            on_audit=self._audit_recording,
            before_begin=self.calllog.write_rows,  # the call's row first (the call log's group commit)
            holdup=holdup,
            on_commit=self.calllog.note_commit,  # synced with the call log's, once per interval
            sync_commits=self.calllog.sync,
        )
        self.recordings.field_cipher = self.cipher
        # Recordings sealed before a HAT was replaced hold by the key handed over.
        self.recordings.verify_key = box_keys(data_dir, self.signer.public_key, self.audit)
        # A recording of a line whose key a key store backup put back lacked: said so, not altered.
        self.recordings.keys_lost_from = lambda: keys_lost(self.audit)
        # Finish recordings a crash (or power cut) left open, before anything new.
        self.recovered = self.recordings.recover(stopped_cleanly=clean)
        if self.sealed_at_start:
            # Its journal held the older recordings' headers, personal data in clear.
            self.recordings.wipe_journal()
        self._restore_missing_calls()
        self.closed_at_start = self.calllog.close_open("shutdown" if clean else "power_loss")
        self.quarantined = [item for item in self.recovered if item[0] == "quarantined"]
        for _, name, dest in self.quarantined:
            self.audit.append(
                "system",
                "quarantine",
                "recordings/" + name,
                {"moved_to": os.path.relpath(dest, data_dir), "why": "no row in the call log"},
                clock.wall_at(clock.now_us()),
            )
        clear_clean_stop(data_dir)
        clear_update_restart(data_dir)

    def _index_audit_calls(self):
        """Index the calls named by the audit entries from before the trail had that index
        (an update from schema 1): the recorder has the storage key that opens their
        details. On a thread of its own from the first start after the update, while the
        lines record (an append waits for one short transaction at most); a trail of 1.5 million
        entries takes seconds (docs/audit-writes.md). A stop, or a failure, leaves the
        rest for the next start: the search by number reads those entries one by one
        meanwhile."""

        def progress(done, total):
            log.info("indexing the calls named in the audit trail: %d of %d entries", done, total)

        try:
            left = self.audit.build_calls_index(progress=progress, stop=self._indexer_stop.is_set)
        except (sqlite3.Error, OSError, LinekeeperError) as exc:
            log.error("the audit trail's index of the calls named is not whole yet: %s", exc)
        else:
            if self._indexer_stop.is_set():
                log.info("the box stops: the rest of the audit trail's index waits for the next start")
            elif left:
                log.info("the audit trail's index of the calls named is whole (%d entries indexed)", left)

    def _restore_audit_head(self, clean):
        """The audit trail's head, behind its log after a crash or a card that refused
        it until the last stop, written again where its entries are all the box's
        own; the second audited: the trail says so."""
        try:
            restored = self.audit.restore_head(stopped_cleanly=clean)
        except OSError as exc:
            log.error("the audit trail's head lags its log and still cannot be written: %s", exc)
            return
        if restored is None:
            return
        head_seq, last_seq, a_crash = restored
        if a_crash:
            return  # a crash's group: as verify expects
        log.warning(
            "the audit trail's head said entry %d, its log goes on to %d, every entry signed by "
            "this box: the card had refused the head; written again",
            head_seq,
            last_seq,
        )
        self.audit.append(
            "system",
            "audit_head_restored",
            None,
            {"head_seq": head_seq, "last_seq": last_seq},
            self.clock.wall_at(self.clock.now_us()),
        )

    def _escrow_to(self):
        """The recording public key for the escrow copy of the storage data key, or None:
        no keys yet, or a key that is not the pinned one (the alarm for that is raised once
        the box runs, by :meth:`_public_key`; nothing goes to such a key)."""
        if self._vault is None or not self.keystore.is_initialised:
            return None
        public_key = self.keystore.public_key()
        try:
            self.keypin.check(public_key)
        except TamperError:
            return None
        return public_key

    def _seal_when_confirmed(self, event):
        """The update to the sealed stores is marked good (``linekeeper update`` dropped
        the backup, then said ``installed``): seal what was left in clear for a rollback."""
        if not self._seal_deferred or event.state != "installed" or older_release_may_return(self.data_dir):
            return
        self._seal_deferred = False
        self.mail.queue.seal_writes = True
        if self.cipher is None:
            return
        sealed = seal_clear_stores(
            self.data_dir, self.cipher, self.mail.queue, leave=("web_db", "call_reasons", "alarms")
        )
        self.sealed_stores_after_update = sealed
        log.info("the update is marked good: the stores left in clear for a rollback are sealed (%s)", sealed)

    def confirm_release(self, actor):
        """The release now running is kept (``linekeeper update --confirm``): for one
        installed some other way than ``linekeeper update`` (``scripts/install-box``
        over an older box's data), which no health check marks good. Drops the backup
        taken before the data was migrated, audits it, and seals what was left in clear
        for a way back. Returns ``{"dropped": [backup names], "sealed": {store: count}}``
        (nothing dropped: there was no backup)."""
        kept = backups_kept(self.data_dir)
        if not kept:
            return {"dropped": [], "sealed": None}
        details = {"event": "confirmed", "backups_dropped": kept}
        # Audited before the drop, which cannot be undone: a cut between the two leaves the
        # backup and the entry, and the confirm run again drops it without a second entry.
        last = self.audit.entries(limit=1, action="update")
        if not (last and last[0].target == "confirm" and last[0].details == details):
            self.audit.append(actor, "update", "confirm", details, self.clock.wall_us())
        drop_backups(self.data_dir)
        self._seal_when_confirmed(UpdateState(line=0, t_us=self.clock.now_us(), state="installed"))
        return {"dropped": kept, "sealed": self.sealed_stores_after_update}

    def _audit_migration(self, migrated):
        """The data migrated or restored, in the audit trail. After a rollback whose
        trail could not stay as the newer release left it, the entries it wrote since
        the backup are carried over inside this (signed) entry; the calls it recorded
        and that were rebuilt are named."""
        details = dict(migrated)
        if not self._rolled_back:
            # A start cut between this entry and the note's removal must not audit it twice.
            last = self.audit.entries(limit=1, action="update")
            if not (last and last[0].details == details):
                self.audit.append("system", "update", "data", details, self.clock.wall_us())
            finish_migration(self.data_dir)
            return
        rebuilt, failed = self.rebuilt_after_rollback
        details["calls_rebuilt"] = rebuilt
        details["not_rebuilt"] = [name for name, _ in failed]
        if "carried_over" in details:
            details["note"] = "carried over from the rolled-back release"
        # A start cut between this entry and the rollback's end must not audit it twice.
        last = self.audit.entries(limit=1, action="update")
        if not (last and _same_rollback(last[0].details, details)):
            self.audit.append("system", "update", "data", details, self.clock.wall_us())
        finish_rollback(self.data_dir)

    def _restore_missing_calls(self):
        """Calls whose rows the card refused before the last stop: back from their
        recordings' sealed headers, each audited as a repair."""
        for call_id, recording_id in restore_missing_calls(self.recordings):
            log.warning(
                "call %d was never written to the call log: rebuilt from recording %s", call_id, recording_id
            )
            self.audit.append(
                "system",
                "repair",
                "call:%d" % call_id,
                {"recording": recording_id, "why": "the call log never took the call's row"},
                self.clock.wall_at(self.clock.now_us()),
            )

    def _audit_recording(self, action, recording_id, details):
        """The recordings' own lives in the audit trail (created, sealed, recovered, deleted)."""
        clock = self.clock
        append = self.audit.append_soon if action in DEFERRABLE_ACTIONS else self.audit.append
        append(
            "system",
            action,
            recording_id and "recording:" + recording_id,
            details,
            clock.wall_at(clock.now_us()),
        )

    def apply_config(self, config):
        """Use a changed configuration without a restart; returns it as applied.

        The policy (rules, notices, PCI pause) applies from the next call
        decision on; retention from the next sweep; a new country switches the
        line supervisor and the detectors at once, a line's outside-line digit
        (``policy.rules.lines``) from its next call; the pre-roll applies to the
        next recording. Other settings (board, HAT, debounce, audio profile,
        ring size) take effect at the next start.
        """
        if self.fixed_country is not None:
            config = config.replace(country=self.fixed_country)
        config = open_sealed_rules(config, self.cipher)
        old, self.config = self.config, config
        if config.country != old.country:
            self._set_country(config.country)
        elif config.policy.rules.outside_lines() != old.policy.rules.outside_lines():
            # From the next call on a line (a call keeps the digit it began with).
            self.supervisor.reconfigure(
                dataclasses.replace(self.supervisor.config, outside_line=config.policy.rules.outside_lines())
            )
        self.recorder.preroll_us = config.preroll_ms * 1000
        self.policy.preroll_us = config.preroll_ms * 1000
        self.policy.apply(config.policy, country=config.country)
        self.policy.not_connected = frozenset(config.not_connected)
        if set(config.not_connected) != set(old.not_connected):
            self.not_connected.changed(old.not_connected, config.not_connected)
        self.retention.update_settings(config.policy.retention)
        self._pci_code_alarm(config.policy.pci)
        return config

    def _archive_stall(self):
        """The round's watch of the archive's uploads (``archive_stalled``), where they run:
        not on the appliance's recorder, whose web UI's process uploads (and watches them)."""
        if self.archive.uploads_here:
            self.archive_stall()

    def _announcement_alarm(self, problem):
        """Raise ``announcement_unplayable`` saying why (``problem``), or clear it ("")."""
        if problem:
            self.alarm_log.set("announcement_unplayable", True, message=problem, renew=True)
        else:
            self.alarm_log.set("announcement_unplayable", False)

    def _pci_code_alarm(self, pci):
        """Raise ``pci_code_unkeyable`` naming each card-payment code staff cannot rely on
        (A-D, ``*`` or ``#`` alone, or digits with no ``*`` or ``#`` first: what the Rules
        page refuses, :func:`firmware.policy.pause.code_refusal`), or clear it. The code
        still works as set: refusing the configuration would stop the box recording, where
        the alarm sends an installer to the Rules page."""
        problems = pci.refused()
        if problems:
            message = " ".join(problems[name] for name in ("pause_code", "resume_code") if name in problems)
            log.warning("policy.pci: %s", message)
            self.alarm_log.set("pci_code_unkeyable", True, message=message, renew=True)
        else:
            self.alarm_log.set("pci_code_unkeyable", False)

    def _public_key(self):
        """The recording public key once the box is initialised, else None.

        None too when the key is not the one the box pinned (:mod:`firmware.keypin`):
        recording to a replaced key would hand the calls to whoever replaced it.
        """
        if not self.keystore.is_initialised:
            return None
        public_key = self.keystore.public_key()
        try:
            self.keypin.check(public_key)
        except TamperError as exc:
            self._raise_key_tampered(exc)
            return None
        return public_key

    def _raise_key_tampered(self, exc):
        if not self._key_tampered:
            self._key_tampered = True
            log.error("%s", exc)
            self.bus.publish(
                Alarm(line=0, t_us=self.clock.now_us(), kind="key_tampered", active=True, message=str(exc))
            )

    def rekey(self, user, password, actor, show, address=None):
        """Replace every key while the box runs (docs/rekey.md); returns the summary dict.

        ``user``/``password``: a key slot that opens every line (its owner gets
        the new slot, same password); ``actor``: who asked (the audit trail's
        actor); ``address``: the web client's when asked from a page, which the
        rekey's entries carry as the web UI's own do; ``show(recovery key text)``:
        the new recovery key, before it is in force. Progress lines go to
        :attr:`rekey_progress`. Recordings go on meanwhile: those open carry on,
        those begun during it are re-wrapped with the rest, and none starts while
        the new keys are put in force (:meth:`Recorder.keys_held`).

        :raises RekeyBusyError: a rekey is already running
        :raises WrongPasswordError: not ``user``'s password
        :raises KeySlotError: ``user``'s slot does not open every line
        :raises LinekeeperError: a recording's key does not open (nothing is changed)
        """
        if not self._rekeying.acquire(blocking=False):
            raise RekeyBusyError("a rekey is already running")
        try:
            self.rekey_progress = ["rekey: started by %s" % actor]
            key = self.keystore.unlock(user, password)
            try:

                def audited(action, details):
                    details = with_address(dict(details, slot=user), address)
                    self.audit.append(actor, action, None, details, self.clock.wall_us())

                rekey = Rekey(
                    self.keystore, self.recordings, self.keypin, audited, self.rekey_progress.append
                )
                summary = rekey.run(key, user, password, show, hold=self.recorder.keys_held)
            finally:
                key.forget()
            self.rekey_progress.append("rekey: done (%d recordings)" % summary["recordings"])
            return summary
        except LinekeeperError as exc:
            self.rekey_progress.append("rekey: failed: %s" % exc)
            raise
        finally:
            self._rekeying.release()

    @property
    def rekey_running(self):
        """Whether a rekey is running now."""
        return self._rekeying.locked()

    def _line_public_key(self, line):
        """Line ``line``'s recording public key (made on first use), checked against its pin.

        None when the line's key is not the one the box pinned: the recording
        then goes to the admin key (the recovery key still opens it) and the
        ``key_tampered`` alarm is raised, as for a replaced admin key.
        """
        if self._public_key() is None:
            return None
        try:
            public_key = self.keystore.line_public_key(line)
            self.keypin.check_line(line, public_key)
        except (TamperError, KeyStoreError) as exc:
            self._raise_key_tampered(exc)
            return None
        except OSError as exc:  # the card refused the line's new key: the admin key for now
            log.error("line %d's recording key cannot be made: %s (the admin key's, meanwhile)", line, exc)
            return None
        return public_key

    def _pin_line_keys(self):
        """Every line's key made and pinned now, in one write of the key store and one of the
        pin (none when all are there already), not one of each at each line's first
        recording. A key that does not match its pin is left to :meth:`_line_public_key`,
        which raises the alarm when the line records."""
        if not self.keystore.is_initialised:
            return
        try:
            line_keys = self.keystore.ensure_line_keys(range(1, self.board.lines + 1))
            self.keypin.pin_all(self.keystore.public_key(), line_keys)
        except (TamperError, KeyStoreError, OSError) as exc:
            log.warning("the lines' keys were not pinned at the start: %s", exc)

    def _on_edge(self, line, signal, active, t_us):
        if signal in BUTTON_SIGNALS:
            self.policy.buttons.edge(line, signal, active, t_us)
        else:
            self.supervisor.on_edge(line, signal, active, t_us)

    def reload_config(self):
        """Read ``DATA_DIR/config.json`` again and apply it (see :meth:`apply_config`).

        :raises ConfigError: the file is invalid (nothing is changed)
        """
        return self.apply_config(load_config(self.data_dir))

    def _set_country(self, country):
        old = self.supervisor.config
        self.supervisor.reconfigure(
            SupervisorConfig(
                country=country,
                debounce_ms=old.debounce_ms,
                stuck_off_hook_ms=old.stuck_off_hook_ms,
                no_voltage_fault_ms=old.no_voltage_fault_ms,
                **line_signal_settings(self.config),
            )
        )
        if self._dsp_factory is None:
            return
        for line, dsp in list(self.dsp.items()):
            new = self._dsp_factory(
                line, self._dsp_event(line), country=country, tone_countries=tuple(self.config.tone_countries)
            )
            new.set_off_hook(self.supervisor.is_off_hook(line))
            if self.supervisor.answer_stands(line):
                new.answered()  # as the old one was told (see _call_answered)
            consumers = self.capture.lines[line].consumers
            consumers[consumers.index(dsp.feed)] = new.feed
            self.dsp[line] = new

    def _dsp_event(self, line):
        def on_event(ev):
            self.supervisor.on_dsp_event(line, ev)

        return on_event

    def _hook_changed(self, line, off_hook):
        dsp = self.dsp.get(line)
        if dsp is not None:
            dsp.set_off_hook(off_hook)

    def _call_answered(self, event):
        # The line's DSP stops looking for the answer (voice onsets, the ringback
        # watch): the supervisor has no use for them once the call is answered, and on
        # an inbound call they would run for the whole call (the supervisor tells the
        # hook change first, so the DSP is off-hook by now). Not at a provisional answer
        # (a voice in ringback, maybe the caller's): the watch decides whether it stands.
        # Nor at an assumed one (the dial timeout's): the watch finds the far end.
        if getattr(event, "provisional", False) or getattr(event, "assumed", False):
            return
        dsp = self.dsp.get(event.line)
        if dsp is not None:
            dsp.answered()

    def start(self):
        """Start the box.

        :raises McuError: the HAT's MCU does not answer or speaks another register map
            (checked before anything starts)
        """
        if self._started:
            raise RuntimeError("the box is already running")
        mcu = self._open_mcu()
        fsutil.share_own_files(self.data_dir)  # made 0600 by an older release: the web UI's too
        self._pin_line_keys()
        # A pause the last run left on (a payment under way when it stopped) mutes its
        # line before any of its audio is captured (docs/pci.md).
        paused = self.policy.pauses.restore()
        self.capture.start()
        self.board.start(self._on_edge, self.capture.on_audio)
        # A line that is already off-hook or dead at start-up sends no edge.
        self.supervisor.sync(self.board.read, open_faults=self._open_line_faults())
        if paused:
            self.clock.call_later(self.supervisor.settle_us(), lambda: self._settle_pauses(paused))
        left_open = self._open_box_alarms()
        self.retention.restore_alarms(left_open)
        if mcu is not None and "mcu_unreachable" in left_open:
            self._mcu_unreachable(False, self.clock.now_us())  # it answered as the box started
        self.retention.start()
        last_run = self._how_last_run_ended()
        check_last_stop(self.data_dir, self.alarm_log, self.recovered)
        self.update_signals.check_release()
        self._alarm_unfinished_at_stop()
        self._alarm_rewritten()
        self.mail.start()
        if self.archive is not None:
            self.archive.start()
        self._started = True
        if self.audit.calls_index_pending():
            self._indexer = threading.Thread(
                target=self._index_audit_calls, name="audit-calls-index", daemon=True
            )
            self._indexer.start()
        # Since when nothing was recorded, and why: what reports say of the gap
        # (firmware/uptime.py). Written once the run has lasted a minute (its first sign
        # of life), or at its stop or power cut if sooner: a recorder crashing in a loop
        # every few seconds adds no entry a start, and the start that lasts says since when.
        # ``started`` is dated when the entry is written, from this instant on the monotonic
        # clock: a Pi (no clock of its own) starts at the time it last saved, and a wall
        # clock set right by NTP meanwhile dates it right, not beside the last run's end.
        self._start_record = dict(last_run)
        self._start_t_us = self.clock.now_us()
        self.alive = AliveMark(
            self.clock, self.data_dir, lambda: self._started and self.halted is None, self._each_minute
        )
        self.alive.start()
        self._watch_power(mcu)
        if self.quarantined:
            self._alarm(
                "quarantine",
                "%d file(s) in recordings/ that the call log does not know were moved to %s at "
                "start-up (audited; nothing deleted): see docs/recovery.md"
                % (len(self.quarantined), os.path.join(self.data_dir, QUARANTINE)),
            )

    def _pending_start(self):
        """``box_start``'s details while they wait (with ``started``, and ``clock_synced``:
        whether the clock that dates it was set), or None once audited."""
        if self._start_record is None:
            return None
        return dict(
            self._start_record,
            started=iso_ms(self.clock.wall_at(self._start_t_us)),
            clock_synced=bool(self.clock.synchronised),
        )

    def _each_minute(self):
        """The sign of life's check: ``box_start`` audited (True once it is on the card),
        then the correction of its ``started`` once the clock is set (:meth:`_note_clock_set`)."""
        if not self._record_start():
            return False
        self._note_clock_set()
        return True

    def _note_clock_set(self):
        """The run's start was dated by a clock not yet set (a Pi starts from the time it
        last saved): once the time daemon has set it, audit ``clock_set`` with the start
        dated again from the same instant on the monotonic clock (``started``), as it was
        (``was``) and the difference (``correction_s``); reports read the time before the
        run from it (firmware/uptime.py). So too when a clock that was set is set again
        (stepped by more than :data:`firmware.uptime.STEP_US`: by hand, or by the time
        daemon): the run's times from then on are the new clock's, and a crash is dated by
        it (``stepped``). A card that refuses it: tried again in a minute."""
        if self._start_dated_us is None:
            return  # box_start not on record yet: dated by the clock as it is when it is
        started = self.clock.wall_at(self._start_t_us)
        if self._unset_start_us is not None:
            if not self.clock.synchronised:
                return
        elif abs(started - self._start_dated_us) <= STEP_US:
            return
        was, now = self._start_dated_us, self.clock.wall_at(self.clock.now_us())
        details = {
            "started": iso_ms(started),
            "was": iso_ms(was),
            "correction_s": round((started - was) / 1e6, 3),
        }
        if self._unset_start_us is None:
            # A clock that was set, set again: which of the two was right is not known (a
            # person may have set it wrong), so the time before the run keeps its dates;
            # the run's later times, and a crash's, are the new clock's.
            details["stepped"] = True
        try:
            self.audit.append("system", "clock_set", "box", details, now)
        except (sqlite3.Error, OSError) as exc:
            log.error("cannot audit the clock being set (tried again in a minute): %s", exc)
            return
        self._unset_start_us = None
        self._start_dated_us = started

    def _record_start(self):
        """Audit ``box_start`` if it waits; True once it is on the card (the sign of life
        waits for it: a crash before it is then dated from the run before)."""
        if self._start_record is None:
            return True
        details = self._pending_start()
        try:
            self.audit.append("system", "box_start", "box", details, self.clock.wall_at(self.clock.now_us()))
        except (sqlite3.Error, OSError) as exc:
            log.error("cannot audit the start (tried again in a minute): %s", exc)
            return False
        self._start_record = None
        self._start_dated_us = iso_to_us(details["started"])
        if not details["clock_synced"]:
            self._unset_start_us = self._start_dated_us
        return True

    def _how_last_run_ended(self):
        """``box_start``'s details, from the marks the last run left (read before
        :func:`check_last_stop` replaces them)."""
        running = os.path.exists(os.path.join(self.data_dir, alarmchecks.RUNNING_MARKER))
        sealed = os.path.exists(os.path.join(self.data_dir, alarmchecks.POWER_FAIL_MARKER))
        return start_details(
            stopped_cleanly=self._stopped_cleanly,
            clean_stop_us=self._clean_stop_us,
            stopped_run=self._clean_stop_run,
            power_failed=sealed and not running,
            crashed=running,
            after_update=self._after_update or self._update_restart,
            audit=self.audit,
            data_dir=self.data_dir,
        )

    def _settle_pauses(self, lines):
        """The lines restored paused, once the levels read at the start have settled: a call
        found under way there is the same payment, still going on; an idle line lets go."""
        if self.halted is not None or not self._started:
            return
        for line in lines:
            call = self.supervisor.live_call(line)
            if call is not None and "in_progress_at_start" in call.notes:
                self.policy.pauses.adopt(line, call)
            else:
                self.policy.pauses.release(line)

    def note_failed_starts(self, note):
        """The recorder's starts failed before this one (``note``:
        :func:`firmware.startfail.read`): no call was recorded from the first failure
        until now. Raise ``recorder_start_failed`` (an occurrence: raised and cleared,
        kept on the banner and mailed until acknowledged) and audit the gap and why."""
        from .localtime import duration_text

        now_us = time.time_ns() // 1000  # the note's clock: the Pi's, whatever the box's
        gap_s = max(0, now_us - note["since_us"]) // 10**6
        tries = "once" if note["attempts"] == 1 else "%d times" % note["attempts"]
        message = (
            "the recorder could not start for %s (it tried %s, from %s): %s; "
            "no call was recorded in that time"
            % (
                duration_text(gap_s),
                tries,
                _utc_text(note["since_us"]),
                note["error"].rstrip("."),
            )
        )
        log.error("%s", message)
        self.alarm_log.set("recorder_start_failed", True, message=message)
        self.alarm_log.set("recorder_start_failed", False)
        self.audit.append(
            "system",
            "recorder_start_failed",
            None,
            {
                "since": _utc_text(note["since_us"]),
                "last_failure": _utc_text(note["last_us"]),
                "attempts": note["attempts"],
                "reason": note["error"],
                # Whether the clock that dates them was set (the note dates them again by
                # the clock as it is now, firmware/startfail.py): a report says when not.
                **({"clock_synced": note["clock_synced"]} if "clock_synced" in note else {}),
            },
            self.clock.wall_at(self.clock.now_us()),
        )

    def _alarm_unfinished_at_stop(self):
        """The recordings a clean stop could not finish in the call log (the card refused
        their end until then), which the start's recovery kept as ``partial``: the
        alarm on each one's line, about its call (the alarms page links to it, the mail
        dates it), as the recorder's own ``recording_failed`` is (after a crash
        ``power_loss_restart`` counts them)."""
        if not self._stopped_cleanly:
            return
        for kind, recording_id, _ in self.recovered:
            if kind not in ("partial", "damaged"):
                continue
            line, about = self._recording_alarm_place(recording_id)
            self._alarm(
                "recording_failed",
                "recording %s could not be finished in the call log at the last stop (the card "
                "refused it): kept as partial, with the audio it holds" % recording_id,
                line=line,
                **about,
            )

    def _recording_alarm_place(self, recording_id):
        """``(line, about)`` of an alarm about recording ``recording_id``: its line (0 when the
        store does not know it) and its call (none when the call log has no row of it)."""
        row = self.recordings.get(recording_id)
        line = (self.recordings.line_of(row) if row is not None else None) or 0
        call = self.recordings.call_row(row["call_id"]) if row is not None else None
        about = {}
        if isinstance(call, dict):
            about = {"call_id": call["id"], "call_us": call["started_at"]}
        return line, about

    def _alarm_rewritten(self):
        """The recording files the start's replay of the journal wrote again that no power
        cut or crash leaves as it found them (:meth:`RecordingStore.replay_journal`): the
        alarm on each one's line, about its call, so that someone looks at the card. The
        replay restored the journal's bytes and audited it (``recording_replayed``)."""
        for recording_id, details in self.recordings.rewritten:
            line, about = self._recording_alarm_place(recording_id)
            self._alarm(
                "recording_rewritten",
                "recording %s: %s" % (recording_id, words.replay_text(details)),
                line=line,
                **about,
            )

    def _open_mcu(self):
        """The HAT's MCU link, opened (its register map checked), or None without one.

        :raises McuError: the MCU does not answer or speaks another register map
        """
        bus_of = getattr(self.board, "mcu_bus", None)
        bus = bus_of() if bus_of is not None else None
        if bus is None:
            return None
        link = McuLink(bus, self.board.hat.mcu.address)
        info = self._mcu_firmware(bus, link, link.open())
        log.info("supervisor MCU firmware %s, register map %d", info.firmware, info.regmap_version)
        self.update_signals.status_led = link  # its status LED shows updates too
        return link

    def _watch_power(self, link):
        """Listen for the HAT's power-fail warning on ``link``, where the board has the MCU."""
        if link is None:
            return
        self.power_watch = PowerFailWatch(
            link,
            self.board,
            self.clock,
            self._power_fail,
            busy=self._busy,
            on_restored=self._power_back,
            on_unreachable=self._mcu_unreachable,
        )
        # A line leaving idle (a call begun) makes an idle watch poll at the busy rate now.
        self.bus.subscribe(
            LineStateChanged, lambda ev: self.power_watch.wake() if ev.state != "idle" else None
        )
        self.setup_led = SetupLed(link, self.data_dir, self.clock)
        self.setup_led.start()

    def _mcu_firmware(self, bus, link, info):
        """Make the MCU run the firmware this release carries (its ``board/mcu``, which an
        update bundle also holds as ``/mcu``): after an update's switch, or a rollback,
        the MCU is flashed when it runs another version, verified and kept only once
        the new firmware reports (docs/mcu.md). The new :class:`McuInfo`.

        :raises McuError: flashing failed (the MCU runs its old firmware; the recorder
            does not start, so an update's health check fails and rolls back)
        """
        image, version = build_image(os.path.dirname(os.path.abspath(board_mcu.__file__)))
        if tuple(info.firmware_version) == version:
            return info
        old = info.firmware
        log.warning("the supervisor MCU runs firmware %s; flashing %d.%d.%d", old, *version)
        details = {"event": "mcu_flash", "from": old, "to": "%d.%d.%d" % version}
        try:
            McuFlasher(bus, link).flash(image, version)
        except McuError as exc:
            self.audit.append(
                "system",
                "update",
                "mcu",
                dict(details, outcome="failed", message=str(exc)),
                self.clock.wall_us(),
            )
            raise
        self.audit.append("system", "update", "mcu", dict(details, outcome="installed"), self.clock.wall_us())
        return link.open()

    def _busy(self):
        """Whether a call or recording is under way, or call-log states or audit entries
        wait in memory or unsynced (a late warning would cost audio, a call's true end,
        or what waits for its interval)."""
        return (
            self.recorder.in_progress > 0
            or self.supervisor.any_live_call()
            or self.calllog.waiting
            or self.audit.waiting > 0
        )

    def _power_fail(self, t_us, holdup_ms):
        """The supply has gone: seal everything now, within the hold-up time, and take no
        more work (docs/power-fail.md). Every recording in progress is closed with all
        the audio captured so far, every open call ends as ``power_loss`` at ``t_us``."""
        if self.halted is not None or not self._started:
            return
        began = time.monotonic()
        self.halted = "power_loss"
        self.holdup_ms = holdup_ms
        sealed = self.recorder.in_progress
        wall = self.clock.wall_at(t_us)
        left = self._quiesce("power_loss", wall)
        if self.calllog.holdup:
            # calls.db is synced once per interval (docs/holdup-writes.md): now.
            try:
                self.calllog.sync()
            except OSError as exc:
                log.error("cannot sync the call log at the power failure: %s", exc)
        try:
            self.audit.flush()  # the group waiting for its commit (with its head), counted in the seal
        except (sqlite3.Error, OSError) as exc:
            log.error("cannot commit the audit entries waiting at the power failure: %s", exc)
        self.seal_s = time.monotonic() - began
        details = {
            "holdup_ms": holdup_ms,
            "recordings_sealed": sealed,
            "seal_ms": round(self.seal_s * 1000, 1),
            # Recordings whose destruction was decided and not begun: the next start's.
            "destructions_left": left,
        }
        # A run cut short before its first minute: it ran all the same. Should the card
        # refuse its box_start, the power_fail entry carries it (``start``): dated from the
        # cut alone, the next start would lose the time before this run (firmware/uptime.py).
        if not self._record_start():
            details["start"] = self._pending_start()
        try:
            self.audit.append("system", "power_fail", "box", details, wall)
        except (sqlite3.Error, OSError) as exc:
            log.error("cannot audit the power failure: %s", exc)
        alarmchecks.mark_power_fail(self.data_dir)
        log.warning(
            "power fail: %d recording(s) sealed in %.1f ms of %d ms hold-up",
            sealed,
            self.seal_s * 1000,
            holdup_ms,
        )
        if self.seal_s * 1000 > holdup_ms:
            # Measured in `make bench` (power_fail): this should never happen; if it does
            # on a real box, the last chunks may be lost with the power.
            log.error(
                "power fail: sealing took longer than the hold-up time (%.0f > %d ms)",
                self.seal_s * 1000,
                holdup_ms,
            )
        self._alarm(
            "power_fail",
            "the power failed: %d recording(s) sealed in %.0f ms (hold-up %d ms); the box records "
            "again when the power returns" % (sealed, self.seal_s * 1000, holdup_ms),
            t_us,
        )
        # The destruction the recorder's worker was doing at the warning: only now that
        # the seal is on the card (Recorder.close).
        self.recorder.finish_destructions()

    def _alarm(self, kind, message, t_us=None, line=0, active=True, call_id=None, call_us=None):
        """Raise (or clear) the alarm ``kind`` on the box's bus (about the call ``call_id``,
        begun at wall time ``call_us``, when it is about one)."""
        t_us = self.clock.now_us() if t_us is None else t_us
        self.bus.publish(
            Alarm(
                line=line,
                t_us=t_us,
                kind=kind,
                active=active,
                message=message,
                call_id=call_id,
                call_us=call_us,
            )
        )

    def _open_line_faults(self):
        """The line faults the alarm history still has open (the last run's), or none
        when the card will not say."""
        try:
            faults = self.alarm_log.open_line_faults()
            for line in sorted(n for n in faults if n > self.board.lines):
                # A line the box no longer has (a HAT with fewer lines): its faults are over.
                for kind in sorted(faults.pop(line)):
                    self.alarm_log.set(kind, False, line=line, message="the box no longer has line %d" % line)
            return self.not_connected.restore(faults)
        except sqlite3.Error as exc:
            log.error("cannot read the open line faults from the alarm history: %s", exc)
            return {}

    def _line_faults(self, line):
        """The faults on ``line`` now (none for a line the board has not got)."""
        return self.supervisor.faults(line) if 1 <= line <= self.board.lines else set()

    def _open_box_alarms(self):
        """The box's alarms the history still has open (the last run's), or none when the
        card will not say."""
        try:
            return self.alarm_log.open_box_alarms()
        except sqlite3.Error as exc:
            log.error("cannot read the open alarms from the alarm history: %s", exc)
            return set()

    def _mcu_unreachable(self, unreachable, t_us):
        """The supervisor MCU stopped answering (or answers again): said once, as an alarm."""
        self._alarm(
            "mcu_unreachable",
            "the HAT's supervisor chip does not answer: the calls under way at a power cut "
            "could lose their last %s; check the HAT"
            % ("minute" if self.recorder.flush_ms > 1000 else "second")
            if unreachable
            else "the HAT's supervisor chip answers again",
            t_us,
            active=unreachable,
        )

    def _power_back(self, t_us):
        """The warning cleared before the capacitor ran out: ``on_power_back()`` (the
        recorder command exits so that systemd starts it afresh)."""
        log.warning("power back at %d us after a warning: the box must be started again", t_us)
        if self.on_power_back is not None:
            self.on_power_back()

    def _quiesce(self, reason, ended_at):
        """Take no more work and finish everything in progress; calls end as ``reason``.

        At a power failure (``reason`` ``power_loss``) the recordings' destructions not
        begun are left to the next start, and the one under way is not waited for, so
        that the call log's writes do not wait behind their card syncs
        (:meth:`Recorder.close`); returns how many were left."""
        self.policy.pauses.stopping = True  # a pause on now goes on after the next start
        # The audit trail's index waits for the next start: at a power failure its writes
        # must not stand between the seal's and the card (one short transaction at most).
        self._indexer_stop.set()
        self.board.stop()
        self.capture.stop()
        if self._threaded:
            self.capture.drain()  # what the capture thread had not handed on yet
        if self.power_watch is not None and reason != "power_loss":
            self.power_watch.close()  # (after a warning it waits for the power to return)
        # What the lines did until now was heard: a call still being dialled keeps its
        # digits, written by the call log below (Supervisor.close).
        self.supervisor.close(heard_until_us=self.clock.now_us())
        self.policy.close()
        left = self.recorder.close(cancel_destructions=reason == "power_loss")
        # At a power failure a retention sweep under way stops after the file it is
        # shredding; the next start and sweep finish it (RetentionSweeper.stop).
        self.retention.stop(interrupt=reason == "power_loss")
        self.calllog.flush()
        try:
            self.calllog.close_open(reason, ended_at)
        except sqlite3.Error as exc:
            # The next start closes them, at their last evidence.
            log.error("cannot end the calls in progress in the call log: %s", exc)
        return left

    def stop(self):
        """Stop cleanly: recordings finished, open calls ended as ``shutdown``, marker written.

        A box halted by a power failure has finished everything already: it only
        lets go of its files (and writes no clean-stop marker).
        """
        self.update_signals.stop()
        if not self._started:
            if self.archive is not None:
                self.archive.close()
            self._dirlock.release()
            return
        self._started = False
        if self._indexer is not None:  # its batch done, the rest left to the next start
            self._indexer_stop.set()
            self._indexer.join()
        if self.alive is not None:  # None: the start failed before it
            self.alive.stop()
        if self.halted is None:
            self._quiesce("shutdown", self.clock.wall_at(self.clock.now_us()))
        self.recorder.finish_destructions()  # a power failure's seal left running, had it not got to its end
        if self.power_watch is not None:
            self.power_watch.close()
        if self.setup_led is not None:
            self.setup_led.close()
        self.retention.close()
        if self.archive is not None:
            self.archive.close()
        self.recordings.close()
        self.mail.close()
        if self.halted is None:  # no power-loss alarm at the next start
            # On the card with the databases' closing syncs just below, or the clean-stop
            # mark's: the stop costs ext4 a few commits, not one for every file it touches.
            alarmchecks.mark_clean_stop(self.data_dir, sync=False)
        self.linecheck.close()
        self.alarm_log.close()
        on_record = True  # this run's start or stop is in the audit trail
        if self.halted is None:
            # A run stopped within its first minute writes its box_start now; one the card
            # refuses goes in box_stop (``start``), as at a power cut.
            details = {} if self._record_start() else {"start": self._pending_start()}
            if not details:
                self._note_clock_set()  # set since the last minute's check
            try:
                self.audit.append(
                    "system", "box_stop", "box", details, self.clock.wall_at(self.clock.now_us())
                )
            except (sqlite3.Error, OSError) as exc:
                log.error("cannot audit the clean stop: %s", exc)
                on_record = not details
        self.audit.close()
        self.calllog.close()
        self.callmeta.close()
        if self.halted is None:
            # Neither this run's box_start nor its box_stop on the card: the mark carries
            # the run's start, which the next start audits; dated from the stop alone, the
            # time before this run would count as recorded (firmware/uptime.py).
            run = None if on_record else details["start"]
            try:
                mark_clean_stop(self.data_dir, self.clock.wall_at(self.clock.now_us()), run=run)
            except OSError as exc:  # a full card: the next start says power_loss
                log.error("cannot record the clean stop: %s", exc)
        self._dirlock.release()


def _same_rollback(logged, details):
    """Whether the audit entry details ``logged`` are those of the rollback ``details``
    (the same backup put back, from and to the same schemas)."""
    return all(logged.get(key) == details.get(key) for key in ("event", "from", "to", "backup_at_us"))


def _cannot_open(data_dir, exc):
    """The one-line error of a box that cannot open its data (a full card named as such:
    SQLite reports a WAL it cannot create as an I/O error)."""
    import shutil

    try:
        free = shutil.disk_usage(data_dir).free
    except OSError:
        free = None
    if free is not None and free < START_FREE_BYTES:
        from .errors import StorageError

        return StorageError(
            28,
            "cannot open the data in %s: the card is full (%d KiB free); "
            "free space (or move old recordings off it) and start again" % (data_dir, free // 1024),
        )
    return storage_error(exc, "cannot open the data in %s" % data_dir)


def open_linecheck(data_dir, lines, status, config):
    """The line check (what each line's adapter does), feeding the status page; it keeps
    the ring timeout ``config`` gives the supervisor, which its advice is judged by."""
    adapters = [load_adapter(name) for name in list_adapters()]
    timeout = config.ring_timeout_ms or countries.country(config.country).ring_timeout_ms
    check = LineCheck(data_dir, lines, adapters, ring_timeout_ms=timeout)
    for line, learned in check.summaries().items():
        if learned["caller_id"] or learned["clear"]:
            status.set_learned(line, learned)
    check.on_change = status.set_learned
    return check


def line_signal_settings(config):
    """The supervisor settings of the far end's clear, and the lines' outside-line digits
    (a PBX extension's 9), from a :class:`BoxConfig`."""
    return dict(
        kbreak_min_ms=config.loop_break_min_ms,
        flash_max_ms=config.hook_flash_max_ms,
        silence_clear_ms=config.silence_clear_s * 1000,
        ring_timeout_ms=config.ring_timeout_ms,
        outside_line=config.policy.rules.outside_lines(),
    )


def make_dsp_factory(country):
    """Per-line spandsp detectors for ``country`` (see :mod:`firmware.dsp`); ``tone_countries``:
    other countries whose clear-down tones they also listen for."""
    from .dsp.detector import LineDsp

    def factory(line, on_event, country=country, tone_countries=()):
        return LineDsp(country=country, on_event=on_event, tone_countries=tone_countries)

    return factory


def open_sim_box(scenario, data_dir, *, speed=None, config=None, synth=None, period_ms=None, vault=None):
    """A box on the simulated board playing ``scenario`` (a loaded Scenario).

    The configuration: ``config`` if given (``linekeeper sim --config``),
    else the scenario's own ``config``, else ``DATA_DIR/config.json``. The
    scenario's country wins over the configured one: the simulated exchange
    is what the box is plugged into. The scenario's tags reach the calls as
    an operator's would, through ``box.policy.tag`` at their times.
    """
    host = open_sim_host(
        scenario,
        data_dir,
        speed=speed,
        config=config,
        synth=synth,
        period_ms=period_ms,
        restart=False,
        vault=vault,
    )
    return host.box


def open_sim_host(
    scenario,
    data_dir,
    *,
    speed=None,
    config=None,
    synth=None,
    period_ms=None,
    restart=True,
    vault=None,
    on_box=None,
    config_file=None,
    resume=False,
):
    """A :class:`SimHost`: the box of :func:`open_sim_box`, started again after each
    power cut of the scenario as a Pi would start it (not started yet: ``host.start()``);
    ``restart``, ``on_box``: see :class:`SimHost`. ``config_file``: the file ``config``
    was read from (``linekeeper sim --config``). ``resume``: a person's run (``linekeeper
    sim``, ``run``): on data a run left it starts a day later, after what is on record, and
    it notes its clock for the commands run on that data (firmware/simtime.py); else the
    clock starts at the scenario's ``start`` as given, as a test sets it.

    The simulated board is the scenario's ``hat``. A configuration file naming another
    (``config_file``, or the data directory's ``config.json`` when neither ``config``
    nor the scenario gives one) is refused, as the scenario's own ``config`` is
    (docs/scenarios.md), before anything is opened: played on the scenario's HAT all
    the same, it was silently not the HAT the engineer had set.

    :raises ConfigError: naming the file, ``hat`` and both HATs
    """
    from board.hat import load_hat
    from board.sim.board import SimBoard
    from board.sim.speech import SpeechSynth
    from board.sim.timeline import compile_timeline

    if isinstance(scenario.config, dict):  # loaded without parse_config
        scenario = dataclasses.replace(scenario, config=BoxConfig.from_dict(scenario.config))
    if config is None and scenario.config is None:
        config, config_file = load_config(data_dir), config_path(data_dir)
    config = config or scenario.config
    if config_file is not None and config.hat is not None and config.hat != scenario.hat:
        raise ConfigError(
            'the simulated board has the scenario\'s "hat" (%r), not this one (%r): give the HAT as '
            '"hat": "%s" at the top of the scenario' % (scenario.hat, config.hat, config.hat),
            source=config_file,
            field="hat",
        )
    hat = load_hat(scenario.hat)
    if synth is None:
        # The simulator's speech is test material, not the box's data: it is
        # cached apart, so the data directory holds only what the box wrote.
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        synth = SpeechSynth(cache_dir=os.path.join(cache, "linekeeper", "speech"))
    timeline = compile_timeline(scenario, synth)
    start_us = scenario.start_wall_us
    if resume:
        # Started again on data a run left, the box goes on from its records: a day later at
        # the scenario's time, so no time it has dated comes round again.
        start_us = simtime.resumed_start_us(start_us, data_dir)
    clock = SimClock(start_wall_us=start_us, speed=speed)
    if period_ms is None:
        period_ms = 20 if speed is not None else 100
    board = SimBoard(
        timeline,
        hat,
        clock,
        period_ms=period_ms,
        noise_dbm0=scenario.noise_dbm0,
        seed=scenario.seed,
        power=scenario.power,
    )

    def make_box():
        return Box(
            board,
            clock,
            data_dir,
            config,
            board.gpio.signals(),
            dsp_factory=make_dsp_factory(scenario.country),
            strict=True,
            fixed_country=scenario.country,
            vault=vault,
        )

    host = SimHost(board, make_box, restart=restart, on_box=on_box)

    def schedule_actions(offset_us):
        for action in timeline.actions:
            clock.call_at(action.t_us + offset_us, functools.partial(_scenario_tag, host, action))

    schedule_actions(0)
    board.on_replay.append(schedule_actions)  # each round's calls are tagged as the first's
    if resume:
        host.stop_noting = simtime.keep_noting(clock, data_dir)
    return host


# The simulated Pi's start after a brownout: longer than the MCU's 500 ms of good
# supply before it drops its warning, far shorter than a real boot (about 30 s).
SIM_BOOT_US = 1_000_000


class SimHost:
    """The simulated Pi around a box: what its power does to the recorder.

    At a brownout the Pi stops: the box lets go of its files (it sealed
    everything at the warning) and nothing runs until the power returns. When
    it returns, the Pi starts a new box on the same data, as systemd would; a
    box that was warned but never browned out (a short dip) has stopped taking
    work, so it is stopped and started again the same way.

    :param board: a :class:`board.sim.board.SimBoard`
    :param make_box: ``make_box() -> Box`` on that board
    :param restart: False: only stop the box at a brownout (its process would die),
        never start one; :data:`AFTER_BROWNOUT`: start one when the power returns
        after a brownout, and leave a box that rode out a dip to its own
        ``on_power_back`` (``linekeeper recorder``, which exits to be started again)
    :param on_box: ``fn(box)`` for every box made (the first one too), before it starts
    """

    AFTER_BROWNOUT = "after_brownout"

    def __init__(self, board, make_box, restart=True, on_box=None):
        self.board = board
        self.restart = restart
        self._make_box = make_box
        self.on_box = on_box
        self.box = self._new_box()
        self.boxes = [self.box]
        self.restarts = 0
        self._booting = None  # the timer that starts a box after a brownout
        self.stop_noting = None  # notes the clock for good (firmware/simtime.py), or None
        board.on_power.append(self._power)

    def _new_box(self):
        box = self._make_box()
        if self.on_box is not None:
            self.on_box(box)
        return box

    def start(self):
        self.box.start()

    def stop(self):
        if self.box is not None:
            self.box.stop()
        if self.stop_noting is not None:
            self.stop_noting()

    def _power(self, event, t_us):
        if event == "brownout":
            if self._booting is not None:
                self._booting.cancel()  # cut again before the Pi had started
                self._booting = None
            if self.box is not None:
                if self.box.halted is None:
                    log.error("brownout at %d us without a power-fail warning", t_us)
                self.box.stop()
                self.box = None
        elif event == "restored" and self.restart and self.box is None:
            # The Pi starts again: the box comes up SIM_BOOT_US later, after the MCU has
            # dropped its warning (500 ms of good supply), as a real boot does; at once,
            # it heard the warning still up and stopped again for good.
            self._booting = self.board.clock.call_later(SIM_BOOT_US, lambda: self._boot())
        elif event == "restored" and self.restart:
            if self.box is not None:
                if self.box.halted is None or self.restart == self.AFTER_BROWNOUT:
                    return  # the warning never came, or the box starts itself again
                # A dip the capacitor rode out: as on the Pi, the sealed box waits for the
                # MCU's warning to clear (the supply good for a while), then a new one
                # starts. Started at once, it began under the warning, never saw it go
                # and so missed a second cut close behind the first.
                halted = self.box
                halted.on_power_back = lambda: self._start_after(halted)

    def _boot(self):
        self._booting = None
        self._start_after(None)

    def _start_after(self, old):
        """A new box in place of ``old`` (halted, or None after a brownout)."""
        if old is not None:
            if self.box is not old:
                return  # the capacitor ran out first: the brownout's restore starts it
            old.stop()
        self.box = self._new_box()
        self.boxes.append(self.box)
        self.restarts += 1
        self.box.start()


def _utc_text(wall_us):
    return dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _scenario_tag(host, action):
    """Tag a call as the scenario's operator does; a card that refuses it is only logged
    (an operator would see the error, the box runs on)."""
    box = host.box
    if box is None or box.halted is not None:
        return  # the Pi is off: nobody there to tag
    try:
        box.policy.tag(action.line, action.tags, "scenario")
    except StorageError as exc:
        log.warning("scenario tags on line %d: %s", action.line, exc)


def rpi_clock():
    """The Pi's clock, synchronised when the kernel says its time daemon has reached its
    server. Without it a box was never synchronised: retention never deleted anything,
    and every call was noted with an unsynchronised clock."""
    return RealClock(is_synchronised=kernel_clock_synchronised)


def open_rpi_box(data_dir, config):
    """A box on the Raspberry Pi with the configured HAT."""
    from board.gpio import hat_signals
    from board.hat import load_hat
    from board.rpi import RpiBoard

    if not config.hat:
        from .errors import ConfigError

        raise ConfigError('the Raspberry Pi board needs a HAT: set "hat" in config.json', field="hat")
    hat = load_hat(config.hat)
    clock = rpi_clock()
    board = RpiBoard(hat, clock)
    vault = _mcu_vault(hat)
    box = Box(
        board,
        clock,
        data_dir,
        config,
        hat_signals(hat),
        dsp_factory=make_dsp_factory(config.country),
        threaded=True,
        vault=vault,
        card=card_health,
    )
    if vault is not None:
        # The device key is in this process (and the RAM run directory) now: nothing
        # that takes over the Pi later reads the vault before the next boot.
        vault.lock_vault()
    return box


def hat_vault(data_dir):
    """The key vault of the HAT configured for ``data_dir`` (its supervisor MCU), not locked.

    :raises ConfigError: no HAT configured, or the HAT has no MCU
    :raises HardwareError: the MCU does not answer
    """
    from board.hat import load_hat

    from .errors import ConfigError

    config = load_config(data_dir)
    if not config.hat:
        raise ConfigError(
            'no HAT is configured ("hat" in config.json): the simulated board, or a box without a '
            "HAT, keeps its keys on the card, not in a HAT's vault, so there is nothing to move; "
            'on a box with a HAT, set "hat" to its name (lk-4l, lk-2lb) and run this again',
            field="hat",
        )
    vault = _mcu_vault(load_hat(config.hat))
    if vault is None:
        raise ConfigError("HAT %s has no supervisor MCU, so no key vault" % config.hat, field="hat")
    return vault


def _mcu_vault(hat):
    """The HAT's supervisor MCU (its key vault), or None when the HAT has none."""
    if hat.mcu is None or hat.i2c is None:
        return None
    from smbus2 import SMBus

    from .errors import HardwareError

    try:
        link = McuLink(SMBus(hat.i2c.bus), address=hat.mcu.address)
        link.open()
    except OSError as exc:  # McuError is one too
        raise HardwareError(
            "I2C set-up of the HAT failed on bus %d (its supervisor MCU, which "
            "keeps the signing key): %s" % (hat.i2c.bus, exc)
        ) from exc
    return link


def configured_lines(data_dir):
    """How many lines the box has, without its board: the site settings' lines (a box set
    up), else its HAT's, else None (a simulated box, or a data directory not read)."""
    from .datadir import site_settings

    site = site_settings(data_dir)
    lines = len(site["lines"]) if site and isinstance(site.get("lines"), list) else None
    config = load_config(data_dir)
    if not lines and config.hat:
        from board.hat import load_hat
        from telephony.errors import HatError

        try:
            lines = len(load_hat(config.hat).lines)
        except HatError:
            lines = None
    return lines or None


def board_for(data_dir, requested=None):
    """``(board name, config)``: the request, else ``LINEKEEPER_BOARD``, else config."""
    config = load_config(data_dir)
    return choose_board(requested, config.board_name), config
