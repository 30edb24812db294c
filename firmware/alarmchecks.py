"""Alarms that come from looking, not from an event: dates coming due, and how the box last stopped.

:class:`DateChecks` runs in the box's periodic round (the mail thread, every
minute) and raises or clears:

- ``ico_renewal_60`` / ``_30`` / ``_7``: the ICO registration renews within
  that many days (each threshold is its own alarm, so each is mailed once);
  ``ico_expired`` once the renewal date has passed;
- ``certificate_expiry``: the web UI's HTTPS certificate ends within
  :data:`CERT_WARN_DAYS` days (or has ended);
- the reminders (:data:`REMINDER_KINDS`), what a box set up still lacks:
  ``retention_unset`` while no retention period is set (every recording kept for
  ever), ``recovery_key_unconfirmed`` while the recovery key was never confirmed
  as stored (:func:`settings_reminders`); ``keystore_backup_stale`` while the key
  store has no backup made since it last changed, ``dpia_review_due`` while the DPIA
  was last reviewed over a year ago (the checklist's ambers of safeguards 18 and 15,
  their reasons as the messages: :func:`firmware.compliance.amber_alarms`, read by
  ``web.documents.checklist_reminders``). Each clears once the setting is made; one
  told in other words than its open occurrence says is renewed (a new occurrence in the
  words of now, mailed again).
  The dashboard says them at once, in their words (:func:`firmware.alarms.reminder_words`).

Like the ICO's, the reminders are told by the web UI, which keeps the site
settings: the recorder's round beside a web UI in its own process is told none,
and leaves them as they are.

:class:`ConsentWatch` raises ``consent_notice_failed`` on a line whose
notice could not be given or whose periodic warning tone could not be played,
and clears it at that line's next notice given or beep played (not for a call
whose far end was never heard: ``unheard``, or whose line was paused before it
was: ``paused``; nothing failed). Its message says
which failed, the announcement or a beep (the notice's or the warning tone's),
which its mail's advice follows (:func:`firmware.words.alarm_advice`).
:func:`check_last_stop` raises ``power_loss_restart`` when the box starts
and finds it did not stop cleanly the last time (its ``running`` marker is
still there): it is raised and cleared at once, an event to acknowledge.

:class:`ArchiveStall` (in the periodic round of the process that uploads to the archive)
raises ``archive_stalled`` while calls wait to go up and none has for an hour, the store
unreachable rather than refusing (a refusal is ``archive_failed``); it is renewed when the
latest try fails otherwise, and clears once the uploads have caught up.

:class:`RetentionBacklog` (also in the periodic round) raises
``retention_backlog`` while recordings past their retention date are still
on the card well after a sweep should have deleted them: the sweeper is
stuck, failing, refused (clock) or not running. It clears once the sweeps
have caught up.
"""

import datetime as dt
import logging
import os
import threading
import time

from . import words
from .config import load_config
from .datadir import site_flag
from .errors import ConfigError
from .localtime import check_zone
from .policy.retention import retention_words

log = logging.getLogger(__name__)

ICO_THRESHOLDS_DAYS = (60, 30, 7)
# How long past its date a recording may wait for its sweep: two sweep
# intervals (one may just have been missed) and this margin.
BACKLOG_MARGIN_US = 5 * 60 * 10**6
CERT_WARN_DAYS = 30
# What a box set up still lacks: raised and cleared by DateChecks (settings_reminders, and
# the web UI's web.documents.checklist_reminders).
REMINDER_KINDS = ("retention_unset", "recovery_key_unconfirmed", "keystore_backup_stale", "dpia_review_due")
RUNNING_MARKER = "running"
POWER_FAIL_MARKER = "running.power-fail"  # the last run sealed everything at a power-fail warning


def _today(wall_us, zone_name="UTC"):
    """The date at ``wall_us`` in the zone ``zone_name`` (UTC when it is not one)."""
    try:
        zone = check_zone(zone_name)
    except ValueError:
        zone = dt.UTC
    return dt.datetime.fromtimestamp(wall_us / 1e6, zone).date()


def certificate_end(cert_path):
    """The date the certificate at ``cert_path`` ends, or None when there is none."""
    from cryptography import x509

    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except FileNotFoundError:
        return None
    return cert.not_valid_after_utc.date()


class DateChecks:
    """Raise and clear the date alarms on ``alarm_log``.

    :param wall_us: the box's clock
    :param ico_renewal: ``() -> "YYYY-MM-DD" or ""`` (the site settings), or None: the
        ICO alarms are left as they are (another process checks them)
    :param cert_path: the HTTPS certificate, or None
    :param zone: ``() -> IANA zone name``: the box's time zone, whose date the days
        are counted from (the checklist's, the pages'); UTC when None
    :param reminders: ``() -> {kind: on}`` of :data:`REMINDER_KINDS` (``on`` a bool, or a
        text: on, with that message; a kind left out is not known now: left as it is), or
        None: the reminders are left as they are (another process checks them);
        :func:`settings_reminders`
    """

    def __init__(self, alarm_log, wall_us, ico_renewal=None, cert_path=None, zone=None, reminders=None):
        self.alarm_log = alarm_log
        self.wall_us = wall_us
        self.ico_renewal = ico_renewal
        self.cert_path = cert_path
        self.zone = zone
        self.reminders = reminders

    def __call__(self):
        now = int(self.wall_us())
        today = _today(now, self.zone() if self.zone is not None else "UTC")
        self._ico(today, now)
        if self.reminders is not None:
            for kind, on in self.reminders().items():
                if kind in REMINDER_KINDS:
                    message = on if isinstance(on, str) else ""
                    # Told with other words (the key store changed again, a backup of
                    # another day): a new occurrence in them, mailed again, so the history
                    # and the mail never say a reason that is over.
                    self.alarm_log.set(kind, bool(on), message=message, wall_us=now, renew=True)
        if self.cert_path is not None:
            end = certificate_end(self.cert_path)
            if end is not None:
                left = (end - today).days
                self.alarm_log.set(
                    "certificate_expiry",
                    left <= CERT_WARN_DAYS,
                    message="the web UI's HTTPS certificate %s on %s"
                    % ("ended" if left < 0 else "ends", end),
                    wall_us=now,
                )

    def _ico(self, today, now):
        if self.ico_renewal is None:
            return  # not told the site settings (the recorder beside a web UI that checks them)
        text = self.ico_renewal()
        try:
            due = dt.date.fromisoformat(text) if text else None
        except ValueError:
            due = None
        left = None if due is None else (due - today).days
        self.alarm_log.set(
            "ico_expired",
            left is not None and left < 0,
            message="the ICO registration was due for renewal on %s" % due,
            wall_us=now,
        )
        # Only the nearest threshold is on: crossing one clears the one before.
        for days, below in zip(ICO_THRESHOLDS_DAYS, ICO_THRESHOLDS_DAYS[1:] + (-1,), strict=False):
            on = left is not None and below < left <= days
            self.alarm_log.set(
                "ico_renewal_%d" % days,
                on,
                message="the ICO registration must be renewed by %s (%d days)"
                % (due, left if left is not None else 0),
                wall_us=now,
            )


def settings_reminders(data_dir):
    """``{kind: on}`` of :data:`REMINDER_KINDS` for the box whose data is in ``data_dir``
    (its ``config.json`` and the site flags in ``web.db``), as :class:`DateChecks` takes
    them: ``{}`` before the setup wizard is finished (it shows the recovery key to confirm,
    and nobody can read an alarm yet); a kind whose source cannot be read now (web.db busy or refused, a
    ``config.json`` that does not load) is left out, so its alarm stays as it is rather
    than clear and come back."""
    if not site_flag(data_dir, "setup_complete"):
        return {}
    out = {}
    try:
        out["retention_unset"] = retention_words(load_config(data_dir).policy.retention) is None
    except (ConfigError, OSError) as exc:
        log.warning("the retention reminder is not checked now: config.json does not load (%s)", exc)
    confirmed = site_flag(data_dir, "recovery_confirmed")
    if confirmed is not None:
        out["recovery_key_unconfirmed"] = not confirmed
    return out


class ConsentWatch:
    """``consent_notice_failed`` per line, from the calls on the bus."""

    def __init__(self, alarm_log, wall_at=None):
        self.alarm_log = alarm_log
        self.wall_at = wall_at  # the clock's ``wall_at``: when the call began; None: not said

    def attach(self, bus):
        from .bus import CallEnded

        bus.subscribe(CallEnded, self._on_call)

    def _on_call(self, event):
        consent = getattr(event.call, "consent", None)
        if not consent or consent.get("unheard") or consent.get("paused"):
            # Nothing due, or nobody heard on the line to give it to (nobody there, or the
            # line paused for card details): the notice is fine.
            return
        error = consent.get("error") if consent.get("notice") != "off" else None
        if error and consent["notice"] == "tone":  # the board's, not the announcement's
            message = "the consent beep could not be played: %s" % error
        elif error:
            message = "the consent notice could not be given: %s" % error
        elif consent.get("warning_tone_error"):
            # The beep staff and callers are told means the call is recorded (on a box
            # with no notice, the only one) did not sound: as much a notice not given.
            message = "the warning tone could not be played: %s" % consent["warning_tone_error"]
        elif consent.get("given") or consent.get("warning_tones"):
            self.alarm_log.set("consent_notice_failed", False, line=event.call.line)
            return
        else:
            return
        call = event.call
        self.alarm_log.set(
            "consent_notice_failed",
            True,
            line=call.line,
            message=message,
            call_id=getattr(call, "id", None),
            call_us=self.wall_at(call.started_us) if self.wall_at is not None else None,
        )


def check_last_stop(data_dir, alarm_log, recovered=()):
    """At start-up: raise (and clear) ``power_loss_restart`` if the last run did not stop
    cleanly; then mark this run as running. ``recovered``: what the start-up recovery
    did (:meth:`~firmware.recording.store.RecordingStore.recover`), of which the
    recordings it finished as ``partial`` are counted."""
    marker = os.path.join(data_dir, RUNNING_MARKER)
    sealed = os.path.join(data_dir, POWER_FAIL_MARKER)
    if os.path.exists(marker) or os.path.exists(sealed):
        if os.path.exists(sealed) and not os.path.exists(marker):
            message = (
                "the box restarted after a power cut; at the warning it sealed every recording "
                'and closed the calls under way as cut by the power (the "%s" alarm)'
                % words.say("alarm", "power_fail")
            )
        else:
            message = "the box restarted without a clean stop (a %s)" % words.UNCLEAN_END
        cut = sum(1 for item in recovered if item[0] in ("partial", "damaged"))
        if cut:
            message += "; %d recording(s) were cut short and kept as partial" % cut
        alarm_log.set("power_loss_restart", True, message=message)
        alarm_log.set("power_loss_restart", False)
        try:
            os.unlink(sealed)
        except FileNotFoundError:
            pass
    from firmware.storage.fsutil import atomic_write

    try:
        atomic_write(marker, b"", mode=0o600)
    except OSError as exc:
        # The box records all the same; only a crash in this run would then go
        # unannounced at the next start.
        log.error("cannot mark the box as running (%s): a crash will not be noticed at the next start", exc)


def mark_power_fail(data_dir):
    """The power-fail seal is done: the next start says so, not "power cut or crash".
    One rename, unsynced: a cut before the file system's next commit leaves the
    running marker, and the next start says the general thing, as it did."""
    try:
        os.replace(os.path.join(data_dir, RUNNING_MARKER), os.path.join(data_dir, POWER_FAIL_MARKER))
    except OSError:
        pass


def mark_clean_stop(data_dir, sync=True):
    """The box stopped cleanly: the next start raises no power-loss alarm.

    ``sync=False``: the marker's removal reaches the card with the file system's
    next commit (the box's stop syncs its databases and its own clean-stop mark
    just after), not with one of its own; a crash before then raises the alarm,
    as a crash should."""
    from firmware.storage.fsutil import remove_durable

    path = os.path.join(data_dir, RUNNING_MARKER)
    if sync:
        remove_durable(path)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


BACKLOG_CHECK_EVERY_US = 5 * 60 * 10**6


class RetentionBacklog:
    """``retention_backlog``: recordings kept past their date because the sweeps do not
    delete them.

    :param sweeper: a :class:`~firmware.policy.sweeper.RetentionSweeper`
    :param wait_s: how long one check waits for a sweep in progress

    A recording is *overdue* when it was due for deletion more than
    :meth:`grace_us` ago (legal holds excepted: the sweeper's own preview).
    After the retention settings change (or at start-up) the check waits one
    grace period before judging: a shorter period makes recordings due at
    once, and the next sweep deletes them. A sweep that holds the sweeper for a
    whole grace period (stuck on the card) raises the alarm as well.
    """

    def __init__(self, alarm_log, sweeper, wait_s=5.0):
        self.alarm_log = alarm_log
        self.sweeper = sweeper
        self.wait_s = wait_s
        self._settings = None
        self._since_us = None  # when these settings were first seen
        self._busy_since_us = None
        self._checked_us = None  # when the backlog was last judged
        self._lock = threading.Lock()  # the mail round and a test (or start-up) may both call

    def grace_us(self):
        return 2 * self.sweeper.settings.sweep_interval_min * 60 * 10**6 + BACKLOG_MARGIN_US

    def __call__(self):
        with self._lock:
            self._check()

    def _check(self):
        now = int(self.sweeper.clock.wall_us())
        settings = self.sweeper.settings
        if settings is not self._settings:
            self._settings, self._since_us, self._checked_us = settings, now, None
        if self._checked_us is not None and 0 <= now - self._checked_us < BACKLOG_CHECK_EVERY_US:
            # The alarm's grace is two sweeps: judged every few minutes, not every mail
            # round (on a card of a million recordings each judgement reads them all).
            return
        self._checked_us = now
        grace = self.grace_us()
        found = self.sweeper.overdue(grace, now, wait_s=self.wait_s)
        if found is None:
            self._busy_since_us = self._busy_since_us or now
            if now - self._busy_since_us >= grace:
                self._set(
                    True,
                    "a retention sweep has been running for %d min: recordings past their "
                    "retention date are not being deleted" % ((now - self._busy_since_us) // 60_000_000),
                    now,
                )
            return
        self._busy_since_us = None
        if found and now - self._since_us < grace:
            return  # just started, or the periods just changed: the next sweep deletes them
        if not found:
            self._set(False, "retention has caught up", now)
            return
        oldest = _today(found[0].started_at + found[0].days * 86_400 * 10**6)
        suspended = getattr(self.sweeper.guard, "suspended", None)
        self._set(
            True,
            "%d recording(s) past their retention date are still kept (the oldest was due on %s)%s"
            % (len(found), oldest, "; automatic deletion is suspended: %s" % suspended if suspended else ""),
            now,
        )

    def _set(self, active, message, now):
        self.alarm_log.set("retention_backlog", active, message=message, wall_us=now)


# Uploads to the archive have stalled when a call has waited this long to go up and none
# went up meanwhile. The uploader tries a store it cannot reach again after 2 s, doubling
# to 10 min (firmware.archive.replicator.BACKOFF_MAX_S): an hour is six tries at the
# longest wait, not a network out for a few minutes, nor one long recording going up
# slowly (a call went up within the hour: the uploads move).
ARCHIVE_STALL_S = 3600


_UNKNOWN = object()  # ArchiveStall: no occurrence raised by this check yet


class ArchiveStall:
    """``archive_stalled``: calls wait to go up to the archive, one for over
    :data:`ARCHIVE_STALL_S`, and none has gone up for as long; the store is not reached
    (a store that refuses a call fails it, and the uploader leaves ``archive_failed``).
    It clears once no call has waited that long: the uploads have caught up.

    :param status: a :class:`~firmware.archive.queue.ArchiveStatus`
    :param wall_us: the box's clock (when the last call went up is on it)
    :param monotonic: seconds, for how long a call has waited

    A call's wait is counted from when this check first saw it waiting (its status's time
    moves at each retry), on the monotonic clock (a clock set at boot moves no wait). So
    after a start nothing is judged for :data:`ARCHIVE_STALL_S` but an empty queue: a
    restart neither clears the alarm (to raise and mail it again) nor raises it. Whether a
    call went up within that time is told the same way, by when this check saw the last
    upload's time change, not by the box's clock: one behind it (never set after a start
    without network, or set back) read every upload as in its future, calls moving.

    An occurrence open whose latest try failed otherwise than it says is renewed (cleared,
    and raised anew in the words of now: mailed again); the counts and minutes it gives are
    those of when it was raised (renewed with them it would be mailed each minute). After a
    start the one open is taken as it is until the failure changes again.
    """

    def __init__(self, alarm_log, status, wall_us, monotonic=time.monotonic):
        self.alarm_log = alarm_log
        self.status = status
        self.wall_us = wall_us
        self.monotonic = monotonic
        self._seen = {}  # call id -> when this check first saw it waiting (monotonic s)
        self._started = None
        self._last_us = self._moved = None  # the last upload's time, when it was seen so (monotonic s)
        self._why = _UNKNOWN  # the latest try's failure the open occurrence says, as raised here

    def __call__(self):
        now = self.monotonic()
        if self._started is None:
            self._started = now
        found = self.status.waiting()
        if found is None:
            return  # never ran here, or cannot be read now: left as it is
        waiting, last_us, why = found
        self._seen = {call_id: self._seen.get(call_id, now) for call_id in waiting}
        if self._moved is None or last_us != self._last_us:
            self._last_us, self._moved = last_us, now
        wall = int(self.wall_us())
        if not waiting:
            self._set(False, "", wall)  # caught up
            return
        if now - self._started < ARCHIVE_STALL_S:
            return  # not watched long enough to tell
        waited = now - min(self._seen.values())
        if waited <= ARCHIVE_STALL_S:
            self._set(False, "", wall)  # caught up: what waits now came since
            return
        if last_us is not None and now - self._moved <= ARCHIVE_STALL_S:
            return  # calls go up: behind, not stalled (an alarm on stays until caught up)
        if last_us is None:
            since = "yet"
        elif wall >= last_us:
            since = "for %d min" % ((wall - last_us) // 60_000_000)
        else:  # the clock behind the last upload: as long as this check has seen
            since = "for %d min" % ((now - self._moved) // 60)
        # Renewed when the latest try fails otherwise (a new occurrence saying why, mailed
        # again), not as the counts and minutes move (a mail a minute).
        renew = self._why is not _UNKNOWN and why != self._why
        self._why = why
        self._set(
            True,
            "%d call(s) wait to go up, the oldest for %d min, and none has gone up %s%s"
            % (len(waiting), waited // 60, since, "; the latest try: %s" % why if why else ""),
            wall,
            renew,
        )

    def _set(self, active, message, wall_us, renew=False):
        if not active:
            self._why = _UNKNOWN
        self.alarm_log.set("archive_stalled", active, message=message, wall_us=wall_us, renew=renew)
