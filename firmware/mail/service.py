"""The box's mail: settings, queue, alarm mails and scheduled reports, delivered by one thread."""

import logging
import os
import threading
import time

from ..datadir import account_lines, site_line_names, site_local_time, site_settings
from ..errors import ConfigError
from .alarms import STATE_FILE, AlarmMailer
from .compose import test_message
from .queue import MailQueue
from .schedule import ReportScheduler, withdraw_stale_reports, withdrawal_auditor
from .settings import MailSettingsStore, check_address
from .smtp import MailError, SmtpSender
from .syslog import SyslogAlarms

log = logging.getLogger(__name__)
# How often a watched path is looked at (real seconds).
WATCH_POLL_S = 1.0


class MailService:
    """E-mail for the box whose data is in ``data_dir``.

    :param wall_us: the box's clock (``() -> µs``): dates, schedules, backoff
    :param secrets: a :class:`~firmware.secretbox.SecretBox`
    :param reports: a :class:`~firmware.reports.source.ReportSource` (scheduled reports)
    :param alarm_log: an :class:`~firmware.alarmlog.AlarmLog` whose alarms are mailed
    :param ssl_context: TLS trust for the server (default: the system's CAs)
    :param interval_s: how often (real seconds) the thread runs the schedules and
        retries the queue
    :param checks: callables run first in each round (date alarms: their mail
        then goes out in the same round)
    :param cipher: the box's field cipher: queued mails are sealed with it
        (:mod:`firmware.storage.sealstores`); None on a box that does not seal
    :param watch: paths whose change starts a round at once, looked at every
        :data:`WATCH_POLL_S`: another process's queue and alarm history, which
        cannot call :meth:`wake` here
    :param audit: the box's :class:`~firmware.storage.audit.AuditLog`: a report withdrawn
        while this process was sending it is audited here once the try has ended
        (:func:`~firmware.mail.schedule.withdrawal_auditor`)
    """

    def __init__(
        self,
        data_dir,
        wall_us,
        secrets,
        reports=None,
        alarm_log=None,
        ssl_context=None,
        interval_s=60.0,
        box_name=None,
        checks=(),
        cipher=None,
        watch=(),
        audit=None,
    ):
        self.store = MailSettingsStore(data_dir, secrets)
        self.queue = MailQueue(os.path.join(data_dir, "mail", "queue"), wall_us, cipher)
        if audit is not None:
            self.queue.on_withdrawal_settled.append(withdrawal_auditor(audit, wall_us))
        self.wall_us = wall_us
        self.ssl_context = ssl_context
        self.interval_s = interval_s
        self.watch = tuple(watch)
        self.data_dir = data_dir
        self._box_name = box_name
        self.checks = list(checks)
        self.alarms = AlarmMailer(
            self.queue,
            self.store.get,
            wall_us,
            on_queued=self.wake,
            site=self.site,
            state_path=os.path.join(data_dir, STATE_FILE),
            accounts=lambda: account_lines(data_dir),  # whose lines decide who gets a line's alarm
        )
        self.syslog = SyslogAlarms(self.store.get)
        self.alarm_log = alarm_log
        self._syslog_state = os.path.join(data_dir, "mail", "syslog.json")
        # Whether this process sends: see :attr:`deliver`; and whether it sends every
        # process's alarms to syslog from the history (:attr:`relay_syslog`).
        self._deliver = True
        self.relay_syslog = False
        if alarm_log is not None:
            alarm_log.on_raised.append(self.alarms)
            alarm_log.on_raised.append(self.syslog)
            alarm_log.on_cleared.append(self.alarms.cleared)
        self.scheduler = (
            ReportScheduler(
                reports,
                self.queue,
                self.store.get,
                wall_us,
                os.path.join(data_dir, "mail", "schedules.json"),
                self.name,
            )
            if reports is not None
            else None
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None

    @property
    def deliver(self):
        """False in a process that may not reach the network (the recorder on the box): it
        runs its checks and queues its mail, and sends nothing to syslog; another process
        delivers the queue and relays the alarms to syslog (:attr:`relay_syslog`)."""
        return self._deliver

    @deliver.setter
    def deliver(self, on):
        self._deliver = bool(on)
        self.syslog.live = self._deliver and not self.relay_syslog

    def relay_alarms_to_syslog(self):
        """Send every process's alarms to syslog from the history, each tick (this process
        delivers for a recorder that cannot), rather than as this process raises them."""
        self.relay_syslog = True
        self.syslog.live = False

    def sender(self, settings=None):
        settings = settings or self.store.get()
        return SmtpSender(settings, self.store.password(settings), self.ssl_context)

    def tick(self):
        """Run the checks, queue the alarms' follow-ups and the due reports, try the queue;
        returns ``(delivered, failed)`` (with :attr:`deliver` off, the checks and follow-ups
        alone)."""
        for check in self.checks:
            try:
                check()
            except Exception:  # one broken check must not keep the others, or the mail, from running
                log.exception("mail: the check %r failed", check)
        try:
            # A repeating alarm whose mails' window ended with it clear: told so once.
            self.alarms.follow_ups()
        except Exception:  # the queue is tried all the same
            log.exception("mail: the alarms' follow-ups failed")
        if not self.deliver:
            return 0, 0
        if self.relay_syslog and self.alarm_log is not None:
            try:
                self.syslog.catch_up(self.alarm_log, self._syslog_state, int(self.wall_us()))
            except Exception:  # the mail goes out all the same
                log.exception("mail: the alarms could not be relayed to syslog")
        # Claims left by a stop let go (a withdrawal made meanwhile told) even with no
        # server set to try their mail again.
        self.queue.release_claims()
        # A password sealed before this process had the storage key: sealed with it now.
        try:
            self.store.reseal()
        except (OSError, ConfigError) as exc:  # the mail goes out all the same; next round again
            log.warning("mail: the e-mail password could not be sealed again: %s", exc)
        settings = self.store.get()
        if not settings.configured:
            return 0, 0
        if self.scheduler is not None:
            self.scheduler.run()
        withdraw_stale_reports(self.queue, self.wall_us)
        return self.queue.flush(self.sender(settings), settings.recipients)

    def send_test(self, to, settings=None):
        """Send a test mail to ``to`` now (not queued).

        :raises ConfigError: ``to`` is not an address, or no server is set
        :raises MailError: the server could not be reached or refused, with its reason
        """
        to = check_address(to, "to")
        settings = settings or self.store.get()
        if not settings.configured:
            raise ConfigError("set the mail server and the sender first", field="mail.host")
        self.sender(settings).send(test_message(settings, [to], self.name(), int(self.wall_us())))

    def name(self):
        """What the mails call the box: the name it was given (``--name``), else the
        organisation of its site settings, else Linekeeper, so that someone who looks
        after several boxes can tell them apart."""
        if self._box_name:
            return self._box_name
        site = site_settings(self.data_dir) or {}
        organisation = site.get("organisation")
        return (
            organisation.strip() if isinstance(organisation, str) and organisation.strip() else "Linekeeper"
        )

    def site(self):
        """``(name, LocalTime in the box's zone, {line: name})`` for an alarm mail, as the
        site settings are now."""
        local_time = site_local_time(self.data_dir)
        return self.name(), local_time, site_line_names(site_settings(self.data_dir))

    # ---------------------------------------------------------------- thread
    def wake(self):
        self._wake.set()

    def start(self):
        if self._thread is not None:
            raise RuntimeError("the mail service is already running")
        self._thread = threading.Thread(target=self._run, name="mail", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            seen = self._watched()  # before the round: a change during it starts the next
            try:
                self.tick()
            except MailError as exc:  # flush catches these; a check may not
                log.warning("mail: %s", exc)
            except Exception:  # keep delivering; the cause is in the log
                log.exception("mail: the delivery round failed")
            self._wait(seen)

    def _wait(self, seen):
        """Until the interval is over, :meth:`wake` is called, or a watched path changed."""
        deadline = time.monotonic() + self.interval_s
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._wake.wait(min(left, WATCH_POLL_S) if self.watch else left):
                break
            if self.watch and self._watched() != seen:
                break
        self._wake.clear()

    def _watched(self):
        signature = []
        for path in self.watch:
            try:
                st = os.stat(path)
            except OSError:
                signature.append(None)
            else:
                signature.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return signature

    def close(self):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
