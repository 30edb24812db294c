"""Mail waiting to go, on the card: it survives restarts and server outages.

Each message is one file ``DIR/<id>.json`` (written atomically, 0600):
the message bytes, how many attempts failed, when to try next, the last
error. :meth:`MailQueue.flush` submits the messages that are due; a failure
waits 1, 2, 4 ... minutes (at most an hour) before the next attempt; a
delivered message's file is removed. With the box's field cipher
(:mod:`firmware.storage.sealstores`) the message, its subject and its last
error are sealed in the file: alarm and report mails may carry numbers and
names, and the card alone must not show them. A message given a ``key`` (a scheduled
report's period) is queued once: a second one with that key, pending or
delivered, is refused. Delivery is at least once: a power cut between the
server's acceptance and the file's removal sends it again at the next start.

A scheduled report waiting in the queue (the server unreachable) was made from the
call log as it was then. When a caller's details are erased on request meanwhile,
:meth:`MailQueue.withdraw` replaces each such report that may name them (its days,
``period``, given at :meth:`~MailQueue.enqueue`) with a notice that it was withdrawn
(:func:`firmware.mail.schedule.withdraw_reports`): the notice goes in its place, and
the report itself never does. A report that waited more than a week is replaced by a
notice the same way (:func:`firmware.mail.schedule.withdraw_stale_reports`).

Two processes change the queue: the recorder queues alarms and withdraws reports, the
web UI delivers. Each reading and writing of its files is done holding an exclusive
``flock`` on ``DIR.lock`` (:func:`~firmware.storage.fsutil.file_lock`), never while a
mail is with the server: one try may take minutes against a slow server (each SMTP
step may wait 15 s), and the recorder's erasure, whose withdrawal waits for that lock,
must not. So a mail is *claimed* instead: under the lock, just before it is sent, its
file is read as it is now (a notice written in its place goes) and marked ``sending``;
the lock is let go for the try, and taken again for its outcome (the file removed, or
written back). A withdrawal finds a mail either unclaimed (it is replaced: the report
never goes) or claimed, its report with the server now: the notice is written all the
same, with who asked and why (``withdrawal``, sealed as the message is), and the try's
outcome decides, in the process that sent it (:attr:`MailQueue.on_withdrawal_settled`):
a report the server took has gone, and is audited so (a failed try is written back as
the notice, and the report never goes). A try that ends in an error of this side rather
than the server's answer (smtplib cannot encode the message, a bug) is a failed try like
any other: written back to wait, the claim let go. A claim left by a process that stopped
during its try (or that could not write its outcome) is let go at the start of the next
round (one process alone delivers a box's queue, and at a round's start none of its tries
is under way), configured to send or not: a withdrawal made meanwhile is told then, as
withdrawn (the notice goes), and the mail is tried in its turn; if that stop came after
the server took the report, the notice follows it (delivery is at least once), and
nothing here can tell.
"""

import base64
import contextlib
import email
import email.policy
import email.utils
import json
import logging
import os
import threading
import time
import uuid

from firmware.storage.fsutil import atomic_write, file_lock, make_private_dir, remove_durable
from firmware.storage.sealstores import mail_item_in_clear, open_mail_item, seal_mail_item

from .smtp import MailError, MailServerError

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600
_SENT_KEYS_KEPT = 2000


class MailQueue:
    """The queue in directory ``path``; ``wall_us()`` dates attempts; ``cipher``: the
    box's field cipher (None on a box that does not seal).

    ``seal_writes`` (True by default) may be set False while an older release that
    cannot send a sealed mail may come back (an update not marked good yet,
    :mod:`firmware.migrations.m001_seal_stores`): items are then written in clear,
    and sealed ones still open.

    :attr:`on_withdrawal_settled`: callables ``(item, withdrawal, sent)`` run when a try of
    a mail withdrawn while it was being sent has ended (``item`` without its message;
    ``withdrawal`` as given to :meth:`withdraw`; ``sent``: the server took the report, for
    every recipient or some)."""

    def __init__(self, path, wall_us, cipher=None):
        self.path = os.fspath(path)
        make_private_dir(self.path)
        self.wall_us = wall_us
        self.cipher = cipher
        self.seal_writes = True
        self._lock = threading.Lock()  # this process's threads; the flock keeps the other out
        self._round = threading.Lock()  # one delivery round at a time
        self._lock_path = self.path.rstrip(os.sep) + ".lock"
        self._keys_path = os.path.join(self.path, "sent-keys.json")
        self.on_withdrawal_settled = []

    @contextlib.contextmanager
    def _locked(self):
        """The queue's files to this thread alone, for a reading and writing of them:
        against this process's other threads and the other process. Never held while a
        mail is with the server (see the module's text)."""
        with self._lock, file_lock(self._lock_path, "the mail queue"):
            yield

    def _items(self, opened=True):
        """The queued items, oldest first; ``opened``: with their sealed fields opened.

        :raises FieldSealError: an item is sealed and does not open here
        """
        out = []
        for name in sorted(os.listdir(self.path)):
            if name.endswith(".json") and name != "sent-keys.json":
                try:
                    with open(os.path.join(self.path, name), encoding="utf-8") as f:
                        item = json.load(f)
                except FileNotFoundError:
                    # Delivered since the listing, by the other process (the web UI sends
                    # what the recorder withdraws from): no longer queued.
                    continue
                out.append(open_mail_item(item, self.cipher) if opened else item)
        # In the order queued (several can share a clock reading).
        return sorted(out, key=lambda i: (i["created_us"], i.get("seq", 0), i["id"]))

    def _sent_keys(self):
        try:
            with open(self._keys_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return []

    def _write(self, item):
        if self.cipher is not None and self.seal_writes:
            item = seal_mail_item(item, self.cipher)
        atomic_write(
            # The box's data mode: the recorder queues alarm mail and the web UI (another
            # user in the box's group) delivers it.
            os.path.join(self.path, item["id"] + ".json"),
            json.dumps(item).encode("utf-8"),
        )

    def seal_clear(self):
        """Seal the items an older firmware queued in clear (each file rewritten
        atomically); returns how many. Nothing without a cipher, or while
        ``seal_writes`` is False."""
        if self.cipher is None or not self.seal_writes:
            return 0
        changed = 0
        with self._locked():
            for item in self._items(opened=False):
                if mail_item_in_clear(item):
                    self._write(item)
                    changed += 1
        return changed

    def enqueue(self, message, key=None, period=None):
        """Queue ``message`` (an EmailMessage); returns its id.

        None (nothing queued) when a message with ``key`` was queued before.
        ``period``: ``(first, last)`` dates of the days a report mail covers (which an
        erasure of a call on one of them withdraws it for: :meth:`withdraw`).
        """
        with self._locked():
            if key is not None and (
                key in self._sent_keys() or any(i.get("key") == key for i in self._items(opened=False))
            ):
                return None
            now = int(self.wall_us())
            item = {
                "id": "%016x-%s" % (now, uuid.uuid4().hex[:8]),
                "key": key,
                "created_us": now,
                "seq": time.monotonic_ns(),
                "attempts": 0,
                "next_us": now,
                "last_error": None,
                "subject": str(message["Subject"] or ""),
                "message": base64.b64encode(message.as_bytes()).decode("ascii"),
            }
            if period is not None:
                item["period"] = [period[0].isoformat(), period[1].isoformat()]
            self._write(item)
            return item["id"]

    def withdraw(self, matches, notice, withdrawal=None):
        """Replace each queued mail that ``matches(item)`` (its id, key, period, created_us)
        with ``notice(message, item)`` (an EmailMessage), unless withdrawn already; returns
        the items withdrawn (without their message), oldest first. The notice keeps the
        mail's key (its period is not queued again), attempts and next try.

        A mail being sent now (``"sending"`` in the item returned) may have gone: its
        notice is written all the same, with ``withdrawal`` (a dict that JSON keeps: who
        asked, for the audit entry), and the process trying it tells the outcome
        (:attr:`on_withdrawal_settled`).

        :raises FieldSealError: a queued mail is sealed and does not open here (nothing
            after it is withdrawn)
        """
        done = []
        with self._locked():
            for item in self._items():
                if item.get("withdrawn") or not matches(item):
                    continue
                old = _message(item["message"])
                msg = notice(old, item)
                item["message"] = base64.b64encode(msg.as_bytes()).decode("ascii")
                item["subject"] = str(msg["Subject"] or "")
                item["withdrawn"] = True
                if item.get("sending") and withdrawal is not None:
                    item["withdrawal"] = json.dumps(withdrawal)
                self._write(item)
                done.append({k: v for k, v in item.items() if k not in ("message", "withdrawal")})
        return done

    def _on_disk(self, item):
        """``item`` as its file holds it now (another process may have withdrawn it), or
        None when the file is gone."""
        try:
            with open(os.path.join(self.path, item["id"] + ".json"), encoding="utf-8") as f:
                return open_mail_item(json.load(f), self.cipher)
        except FileNotFoundError:
            return None

    def _claim(self, item):
        """``item`` as it is now, marked as being sent (None: it is gone). A notice written
        in its place meanwhile is what is sent."""
        with self._locked():
            item = self._on_disk(item)
            if item is not None and not item.get("withdrawn"):
                item["sending"] = True
                self._write(item)
            return item

    def _settle(self, item, sent, write=None, refused=()):
        """The outcome of a try of ``item`` (the mail as it was claimed): ``sent``, its file
        is removed; else ``write`` (the item after the failed try) is written back, a notice
        written meanwhile in its place kept (never the message it replaced). A withdrawal
        made during the try is then told (:attr:`on_withdrawal_settled`); ``refused``: the
        recipients the server refused while it took the try for the others (it has gone to
        those): a notice written meanwhile goes to the refused alone, as the mail would."""
        with self._locked():
            now = self._on_disk(item)
            withdrawal = now.pop("withdrawal", None) if now is not None else None
            if sent:
                if item.get("key"):
                    keys = (self._sent_keys() + [item["key"]])[-_SENT_KEYS_KEPT:]
                    atomic_write(self._keys_path, json.dumps(keys).encode("utf-8"))
                remove_durable(os.path.join(self.path, item["id"] + ".json"))
            else:
                write = dict(write)
                write.pop("sending", None)
                write.pop("withdrawal", None)
                if now is not None and now.get("withdrawn") and not write.get("withdrawn"):
                    notice = now["message"]
                    if refused:
                        # Those the server took it for have the report; the notice that
                        # it was withdrawn is not so for them.
                        notice = _addressed_to(_message(notice), refused)
                    write.update(message=notice, subject=now["subject"], withdrawn=True)
                self._write(write)
            if withdrawal is None:
                return
            # Withdrawn during the try: the report has gone only if it was the report (not
            # a notice, as after a claim left by a stop) that the server took, for every
            # recipient or some (those it refused get the notice).
            report_sent = (sent or bool(refused)) and not item.get("withdrawn")
            shown = {k: v for k, v in (now or item).items() if k not in ("message", "withdrawal", "sending")}
            log.info(
                "mail %s: withdrawn while it was being sent; %s",
                item["id"],
                "the server had taken it" if report_sent else "the notice goes in its place",
            )
            for hook in self.on_withdrawal_settled:
                try:
                    hook(shown, json.loads(withdrawal), report_sent)
                except Exception:  # the queue goes on; the cause is in the log
                    log.exception("mail %s: telling the outcome of its withdrawal failed", item["id"])

    def release_claims(self):
        """Let go of the claims a stopped process left (see :meth:`_release_claims`); run
        by the process that delivers at each round, configured to send or not."""
        with self._round:
            self._release_claims()

    def _release_claims(self):
        """Let go of every claim found (``sending``), each as a try whose outcome is not
        known: run at the start of each round (holding ``_round``), when no try of this
        queue is under way, and one process alone delivers a box's queue, so each is a
        claim left by a process stopped during its try (or whose outcome could not be
        written). A withdrawal made during that try is told now, as not gone (nothing
        here can tell whether the server took the report: its notice goes); the mail
        itself is tried again in its turn."""
        with self._locked():
            # Unopened: a queue sealed with a key not open here yet is let be unless it
            # holds a claim (``sending`` is never sealed).
            stale = [item for item in self._items(opened=False) if item.get("sending")]
        for item in stale:
            item = self._on_disk(item)
            if item is None:
                continue
            log.warning("mail %s: a try left unfinished (the process stopped); tried again", item["id"])
            self._settle(item, sent=False, write=item)

    def _write_back(self, item):
        """Write ``item``'s new schedule (its next try and error, without a try of its own),
        as its file holds it now: a notice written in its place meanwhile is kept."""
        with self._locked():
            now = self._on_disk(item)
            if now is None:
                return
            now.update({k: item[k] for k in ("next_us", "last_error", "waits_for_server")})
            self._write(now)

    def pending(self):
        """The messages waiting: dicts with id, key, subject, attempts, next_us, last_error."""
        with self._locked():
            return [{k: v for k, v in i.items() if k not in ("message", "withdrawal")} for i in self._items()]

    def flush(self, sender, recipients=None):
        """Try the messages that are due with ``sender``, oldest first; returns
        ``(delivered, failed)``.

        ``recipients``: the addresses the E-mail page lists now (lower case,
        :attr:`~firmware.mail.settings.MailSettings.recipients`), or None for any. A mail
        waiting (for the server, say) goes to those of its addressees still listed, and a
        mail none of whose addressees is listed any longer is dropped, not sent: an address
        taken off (a leaver's, or someone who asked to stop) gets nothing that waited.

        When any message is due, those that wait for the server (its last try found the
        server down: :class:`~firmware.mail.smtp.MailServerError`) are tried too, in the
        order queued: after an outage the mail goes out in the order it was written, not in
        the order the backoffs of each happened to end. A server that cannot take any mail
        ends the round: the message tried backs off, and every other message due then
        waits as long, so an outage costs one try per backoff, not one per message.
        """
        delivered = failed = 0
        with self._round:
            self._release_claims()
            now = int(self.wall_us())
            with self._locked():
                items = self._items()
            if not any(item["next_us"] <= now for item in items):
                return 0, 0
            down = None  # (when to try again, the error) once the server could take nothing
            for item in items:
                if down is not None:
                    if item["next_us"] <= now or item.get("waits_for_server"):
                        item["next_us"] = max(item["next_us"], down[0])
                        item["last_error"] = down[1]
                        item["waits_for_server"] = True
                        self._write_back(item)
                    continue
                if item["next_us"] > now and not item.get("waits_for_server"):
                    continue
                # As it is now (the recorder may have withdrawn it since the round began),
                # claimed: a withdrawal from now on waits for this try's outcome.
                item = self._claim(item)
                if item is None:
                    continue
                msg = _message(item["message"])
                if recipients is not None:
                    msg = _still_listed(msg, recipients, item)
                    if msg is None:
                        self._settle(item, sent=True)  # dropped: nobody to send it to now
                        continue
                server_down = False
                try:
                    refused = sender.send(msg)
                except MailServerError as exc:
                    refused, error, server_down = None, str(exc), True
                except MailError as exc:
                    refused, error = None, str(exc)
                except Exception as exc:
                    # Not the server's answer: a fault of this side (smtplib cannot encode
                    # the message, a bug). A failed try all the same: the claim is let go
                    # and a withdrawal made meanwhile told, and the round goes on.
                    log.exception("mail %s: the try failed", item["id"])
                    refused, error = None, "the mail could not be sent (%s: %s)" % (type(exc).__name__, exc)
                else:
                    error = (
                        "the mail server refused %s (the others have it)"
                        % "; ".join("%s: %s" % (a, why) for a, why in sorted(refused.items()))
                        if refused
                        else None
                    )
                if error is None:
                    self._settle(item, sent=True)
                    delivered += 1
                    continue
                failed_item = dict(item)
                if refused:
                    # It waits for the refused recipients alone: its addressees become
                    # them (so a release before this one, after a rollback, sends it to
                    # them only too, as the message says).
                    failed_item["message"] = _addressed_to(msg, refused)
                failed_item["attempts"] += 1
                wait_s = min(BACKOFF_MAX_S, BACKOFF_FIRST_S << min(failed_item["attempts"] - 1, 10))
                failed_item["next_us"] = now + wait_s * 1_000_000
                failed_item["last_error"] = error
                failed_item["waits_for_server"] = server_down
                self._settle(item, sent=False, write=failed_item, refused=refused or ())
                failed += 1
                if server_down:
                    down = (failed_item["next_us"], error)
        return delivered, failed


def _message(encoded):
    """A queued item's ``message`` as an EmailMessage."""
    return email.message_from_bytes(base64.b64decode(encoded), policy=email.policy.SMTP)


def _still_listed(msg, recipients, item):
    """``msg`` addressed to those of its addressees in ``recipients`` (lower case) alone,
    each once in any case (a list saved as "a@x, A@x" would get it twice), as it is when
    that is all of them; None when none is."""
    headers = ("To", "Cc", "Bcc")
    values = [str(v) for h in headers for v in msg.get_all(h, [])]
    addressees = [a for _, a in email.utils.getaddresses(values)]
    once = {}
    for a in addressees:
        once.setdefault(a.lower(), a)
    kept = [a for key, a in once.items() if key in recipients]
    if len(kept) == len(addressees):
        return msg
    gone = sorted({a for a in addressees if a.lower() not in recipients})
    if not kept:
        log.warning(
            "mail %s (%s) not sent: none of its addressees is listed on the E-mail page now (%s)",
            item["id"],
            item.get("subject", ""),
            ", ".join(gone),
        )
        return None
    if gone:
        log.info("mail %s: not sent to %s, taken off the E-mail page since", item["id"], ", ".join(gone))
    for header in headers:
        del msg[header]
    msg["To"] = ", ".join(kept)
    return msg


def _addressed_to(msg, recipients):
    """``msg`` addressed to ``recipients`` alone (To, no Cc or Bcc), as an item's ``message``."""
    for header in ("To", "Cc", "Bcc"):
        del msg[header]
    msg["To"] = ", ".join(sorted(recipients))
    return base64.b64encode(msg.as_bytes()).decode("ascii")
