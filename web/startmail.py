"""A mail to the alarm recipients while the recorder cannot start, sent by the web UI.

While the recorder's starts fail (firmware/startfail.py) no alarm is raised: the start
that works raises ``recorder_start_failed`` (firmware/box.py). The web UI is served all
the same, and it keeps in memory what an alarm mail needs: the mail settings and the
password opened, as it last read them. So once the recorder has failed to start for
:data:`AFTER_S` it sends one mail to every alarm recipient, straight to the mail server,
not through the queue.

Why from memory, not from the card: the card may be what fails (the queue is on it, and
so are ``mail.json`` and ``secrets.key``, which open the password), and the password is
sealed with the storage key, which only a recorder started since boot hands over
(docs/card-alone.md). Each mail round reads them again and keeps what it read when it
could; the password is never written anywhere in clear. What this process cannot have
read, it cannot send: a web UI that has not opened the password since it started (the
recorder has failed since boot on a HAT with the key vault, and the mail server needs a
login) logs why and sends nothing; the syslog line (web/startalarm.py) still goes.

One mail per run of failed starts (:func:`firmware.startfail.outage`), kept in
:data:`STATE_FILE` so that a restart of the web UI does not send it again. A mail the
server does not take is tried again every :data:`RETRY_S`. Nothing is sent when the
recorder starts again: its own alarm says so.
"""

import json
import logging
import os
import time

from firmware import startfail
from firmware.errors import LinekeeperError
from firmware.mail.compose import start_failure_message
from firmware.mail.smtp import MailError, SmtpSender
from firmware.storage.fsutil import atomic_write

log = logging.getLogger(__name__)
KIND = "recorder_start_failed"
STATE_FILE = os.path.join("mail", "start-mail.json")
AUDIT_ACTION = "start_mail"
# Failing this long before the mail goes: an update's restart or a setting being put
# right is over in less, and a box that records nothing for longer must not wait.
AFTER_S = 300
RETRY_S = 60  # a mail the server did not take, tried again after this long


class StartFailureMail:
    """A check for the web UI's mail round (:class:`firmware.mail.service.MailService`
    ``checks``): call it each round; it sends at most one mail per run of failed starts.

    :param run_dir: the run directory the recorder notes its failed starts in (None: none)
    :param recorder_up: ``() -> bool``, whether the recorder answers now
    :param mail: the web UI's :class:`~firmware.mail.service.MailService`: its settings
        store, its site's words (:meth:`~firmware.mail.service.MailService.site`), its TLS
        trust, its data directory (:data:`STATE_FILE` is kept in it)
    :param audit: the box's :class:`~firmware.storage.audit.AuditLog`, or None; a mail sent
        is audited there when it takes the entry, logged otherwise
    :param now_us: the clock the note is dated by (``() -> µs``; default the machine's)
    :param after_s: how long the starts fail before the mail goes (seconds)
    """

    def __init__(
        self,
        run_dir,
        recorder_up,
        mail,
        audit=None,
        now_us=None,
        after_s=AFTER_S,
    ):
        self.run_dir = run_dir
        self.recorder_up = recorder_up
        self.mail = mail
        self.path = os.path.join(os.fspath(mail.data_dir), STATE_FILE)
        self.audit = audit
        self.now_us = now_us or (lambda: time.time_ns() // 1000)
        self.after_s = after_s
        # (settings, clear password, site) as last read; None: never read yet.
        self._kept = None
        self._unread = None  # why they could not be read, the last time they could not
        self._sent = None  # the outage mailed, as STATE_FILE says (None: not read yet)
        self._retry_us = None  # no try before this, after the server refused one
        self._told = None  # the outage whose mail could not go, logged once

    def __call__(self):
        self._remember()
        note = startfail.read(self.run_dir)
        if note is None or note["since_us"] > self.now_us() - self.after_s * 10**6:
            return
        outage = startfail.outage(note)
        if self._state() == outage or self.recorder_up():
            return
        if self._retry_us is not None and self.now_us() < self._retry_us:
            return
        why = self._cannot_send()
        if why:
            if self._told != outage:
                self._told = outage
                log.warning("the recorder cannot start, and no mail can tell anyone: %s", why)
            return
        settings, password, (name, local_time, _lines) = self._kept
        now = self.now_us()
        try:
            refused = SmtpSender(settings, password, self.mail.ssl_context).send(
                start_failure_message(settings, note, name, now, local_time)
            )
        except MailError as exc:
            self._retry_us = now + RETRY_S * 10**6
            log.warning(
                "the mail that the recorder cannot start did not go (tried again in %d s): %s", RETRY_S, exc
            )
            return
        self._retry_us = None
        for address, said in sorted(refused.items()):
            log.warning(
                "the mail that the recorder cannot start: %s refused by the server: %s", address, said
            )
        self._keep(outage)
        self._audit(note, sorted(set(settings.alarm_to) - set(refused)))

    def _remember(self):
        """Read the mail settings, the password and the site's words again, and keep them
        when they could be read: the card may fail later."""
        try:
            store = self.mail.store
            settings = store.get()
            if not settings.configured and self._kept is not None and not os.path.exists(store.path):
                raise FileNotFoundError("%s is gone" % store.path)  # a card gone, not settings cleared
            password = store.password(settings)
        except (LinekeeperError, OSError, ValueError) as exc:
            self._unread = exc
            return
        self._unread = None
        self._kept = (settings, password, self.mail.site())

    def _cannot_send(self):
        """Why no mail can go now, in words; None when it can."""
        if self._kept is None:
            return "the e-mail settings and password could not be read since the web UI started (%s)" % (
                self._unread
            )
        settings = self._kept[0]
        if not settings.configured:
            return "no mail server or sender is set (Settings, E-mail)"
        if not settings.alarm_to:
            return "no alarm recipient is set (Settings, E-mail)"
        return None

    def _state(self):
        if self._sent is None:
            from .startalarm import read_sent

            sent = read_sent(self.path)
            self._sent = sent.get("outage") if isinstance(sent, dict) else None
            self._sent = self._sent if isinstance(self._sent, str) else ""
        return self._sent

    def _keep(self, outage):
        self._sent = outage
        try:
            atomic_write(self.path, (json.dumps({"outage": outage}) + "\n").encode())
        except OSError as exc:  # this process remembers it; a restart may send it again
            log.warning("that the mail went cannot be kept in %s: %s", self.path, exc)

    def _audit(self, note, to):
        details = {
            "alarm": KIND,
            "cause": note.get("cause") if note.get("cause") in startfail.CAUSES else "other",
            "since": _utc(note["since_us"]),
            "attempts": note["attempts"],
            "to": to,
        }
        try:
            if self.audit is None:
                raise OSError("no audit trail")
            self.audit.append("system", AUDIT_ACTION, None, details, int(self.now_us()))
        except Exception as exc:  # the card may be what fails: the mail went all the same
            log.warning("the mail that the recorder cannot start was sent to %s, not audited: %s", to, exc)


def _utc(us):
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
