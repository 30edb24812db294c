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
the report itself never does. Another process (the recorder) may withdraw a mail while
this one (the web UI) is delivering the queue: each mail's file is read again just
before it is sent, and a failed attempt written back keeps the notice. A report that
waited more than a week is replaced by a notice the same way
(:func:`firmware.mail.schedule.withdraw_stale_reports`).
"""

import base64
import email
import email.policy
import json
import os
import threading
import time
import uuid

from firmware.storage.fsutil import atomic_write, make_private_dir, remove_durable
from firmware.storage.sealstores import mail_item_in_clear, open_mail_item, seal_mail_item

from .smtp import MailError, MailServerError

BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600
_SENT_KEYS_KEPT = 2000


class MailQueue:
    """The queue in directory ``path``; ``wall_us()`` dates attempts; ``cipher``: the
    box's field cipher (None on a box that does not seal).

    ``seal_writes`` (True by default) may be set False while an older release that
    cannot send a sealed mail may come back (an update not marked good yet,
    :mod:`firmware.migrations.m001_seal_stores`): items are then written in clear,
    and sealed ones still open."""

    def __init__(self, path, wall_us, cipher=None):
        self.path = os.fspath(path)
        make_private_dir(self.path)
        self.wall_us = wall_us
        self.cipher = cipher
        self.seal_writes = True
        self._lock = threading.Lock()
        self._keys_path = os.path.join(self.path, "sent-keys.json")

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
        with self._lock:
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
        with self._lock:
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

    def withdraw(self, matches, notice):
        """Replace each queued mail that ``matches(item)`` (its id, key, period, created_us)
        with ``notice(message, item)`` (an EmailMessage), unless withdrawn already; returns
        the items withdrawn (without their message), oldest first. The notice keeps the
        mail's key (its period is not queued again), attempts and next try.

        :raises FieldSealError: a queued mail is sealed and does not open here (nothing
            after it is withdrawn)
        """
        done = []
        with self._lock:
            for item in self._items():
                if item.get("withdrawn") or not matches(item):
                    continue
                old = email.message_from_bytes(base64.b64decode(item["message"]), policy=email.policy.SMTP)
                msg = notice(old, item)
                item["message"] = base64.b64encode(msg.as_bytes()).decode("ascii")
                item["subject"] = str(msg["Subject"] or "")
                item["withdrawn"] = True
                self._write(item)
                done.append({k: v for k, v in item.items() if k != "message"})
        return done

    def _on_disk(self, item):
        """``item`` as its file holds it now (another process may have withdrawn it), or
        None when the file is gone."""
        try:
            with open(os.path.join(self.path, item["id"] + ".json"), encoding="utf-8") as f:
                return open_mail_item(json.load(f), self.cipher)
        except FileNotFoundError:
            return None

    def _write_back(self, item):
        """Write ``item`` after a failed attempt; a notice another process put in its
        place meanwhile (:meth:`withdraw`) is kept, never the message it replaced."""
        now = self._on_disk(item)
        if now is not None and now.get("withdrawn") and not item.get("withdrawn"):
            item.update(message=now["message"], subject=now["subject"], withdrawn=True)
        self._write(item)

    def pending(self):
        """The messages waiting: dicts with id, key, subject, attempts, next_us, last_error."""
        with self._lock:
            return [{k: v for k, v in i.items() if k != "message"} for i in self._items()]

    def flush(self, sender):
        """Try the messages that are due with ``sender``, oldest first; returns
        ``(delivered, failed)``.

        When any message is due, those that wait for the server (its last try found the
        server down: :class:`~firmware.mail.smtp.MailServerError`) are tried too, in the
        order queued: after an outage the mail goes out in the order it was written, not in
        the order the backoffs of each happened to end. A server that cannot take any mail
        ends the round: the message tried backs off, and every other message due then
        waits as long, so an outage costs one try per backoff, not one per message.
        """
        delivered = failed = 0
        with self._lock:
            now = int(self.wall_us())
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
                # As it is now: the recorder may have withdrawn it since the round began.
                item = self._on_disk(item)
                if item is None:
                    continue
                msg = email.message_from_bytes(base64.b64decode(item["message"]), policy=email.policy.SMTP)
                server_down = False
                try:
                    refused = sender.send(msg)
                except MailServerError as exc:
                    refused, error, server_down = None, str(exc), True
                except MailError as exc:
                    refused, error = None, str(exc)
                else:
                    error = (
                        "the mail server refused %s (the others have it)"
                        % "; ".join("%s: %s" % (a, why) for a, why in sorted(refused.items()))
                        if refused
                        else None
                    )
                if error is not None:
                    if refused:
                        # It waits for the refused recipients alone: its addressees become
                        # them (so a release before this one, after a rollback, sends it to
                        # them only too, as the message says).
                        for header in ("To", "Cc", "Bcc"):
                            del msg[header]
                        msg["To"] = ", ".join(sorted(refused))
                        item["message"] = base64.b64encode(msg.as_bytes()).decode("ascii")
                    item["attempts"] += 1
                    wait_s = min(BACKOFF_MAX_S, BACKOFF_FIRST_S << min(item["attempts"] - 1, 10))
                    item["next_us"] = now + wait_s * 1_000_000
                    item["last_error"] = error
                    item["waits_for_server"] = server_down
                    self._write_back(item)
                    failed += 1
                    if server_down:
                        down = (item["next_us"], error)
                    continue
                if item.get("key"):
                    keys = (self._sent_keys() + [item["key"]])[-_SENT_KEYS_KEPT:]
                    atomic_write(self._keys_path, json.dumps(keys).encode("utf-8"))
                remove_durable(os.path.join(self.path, item["id"] + ".json"))
                delivered += 1
        return delivered, failed
