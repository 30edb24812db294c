"""A syslog alarm while the recorder cannot start, sent by the web UI.

While the recorder's starts fail (a HAT replaced, the MCU not answering, the storage
key refused, a card fault) no alarm is raised: ``recorder_start_failed`` is raised only
by the start that works (firmware/box.py). A mail goes after minutes only when the web
UI has opened the mail password (web/startmail.py): it is sealed with the storage key,
which only a started recorder hands over (docs/card-alone.md). Remote syslog needs no
secret, so the web UI, which is served all the same, sends one line when it first sees
the recorder down with a note of failed starts (firmware/startfail.py), and one more when
the recorder answers again.

The lines say no more than the kind, the box's name, the class of the reason
(:data:`firmware.startfail.CAUSES`, not the reason's text) and since when: the same
RFC 5424 format and sender as every other alarm (firmware/mail/syslog.py). What was
sent is kept in :data:`STATE_FILE` so that a restart of the web UI does not send it
again. Nothing is sent, kept or audited where no syslog server is set.
"""

import json
import logging
import os

from firmware import startfail
from firmware.storage.fsutil import atomic_write

log = logging.getLogger(__name__)
KIND = "recorder_start_failed"
STATE_FILE = os.path.join("mail", "start-syslog.json")
AUDIT_ACTION = "start_syslog"


class StartFailureSyslog:
    """A check for the web UI's mail round (:class:`firmware.mail.service.MailService`
    ``checks``): call it; it sends at most one line per change.

    :param run_dir: the run directory the recorder notes its failed starts in (None: none)
    :param recorder_up: ``() -> bool``, whether the recorder answers now
    :param syslog: the :class:`~firmware.mail.syslog.SyslogAlarms` that sends every alarm
    :param data_dir: the box's data directory (:data:`STATE_FILE` is kept in it)
    :param box_name: ``() -> str``, what the box is called (the mails' name)
    :param wall_us: the box's clock (``() -> µs``): when the clear was seen
    :param audit: the box's :class:`~firmware.storage.audit.AuditLog`, or None; a line
        sent is audited there when it takes the entry, logged otherwise
    """

    def __init__(self, run_dir, recorder_up, syslog, data_dir, box_name, wall_us, audit=None):
        self.run_dir = run_dir
        self.recorder_up = recorder_up
        self.syslog = syslog
        self.path = os.path.join(os.fspath(data_dir), STATE_FILE)
        self.box_name = box_name
        self.wall_us = wall_us
        self.audit = audit
        self._sent = None  # what the state file says (None: not read yet)

    def __call__(self):
        if not self.syslog.settings().syslog:
            return
        sent = self._state()
        note = startfail.read(self.run_dir)
        if note is not None and not self.recorder_up():
            # The same failures: not their since_us, which each read dates again.
            if _outage(sent) == startfail.outage(note):
                return
            if sent:  # failing again since: the recorder had started in between
                self._send("cleared", sent, self.wall_us())
            failure = {"since_us": note["since_us"], "cause": _cause(note), "outage": startfail.outage(note)}
            self._send("raised", failure, note["since_us"])
        elif sent and self.recorder_up():
            self._send("cleared", sent, self.wall_us())

    def _state(self):
        if self._sent is None:
            sent = read_sent(self.path)
            self._sent = sent if isinstance(sent, dict) and isinstance(sent.get("since_us"), int) else {}
        return self._sent

    def _send(self, state, failure, when_us):
        since = _utc(failure["since_us"])
        text = "%s: the recorder %s (%s; failing since %s)" % (
            self.box_name(),
            "cannot start: calls are not recorded" if state == "raised" else "has started again",
            failure["cause"],
            since,
        )
        self.syslog.send({"kind": KIND, "line": 0, "message": text, "raised_us": when_us})
        kept = failure if state == "raised" else {}
        self._sent = kept
        try:
            atomic_write(self.path, (json.dumps(kept) + "\n").encode())
        except OSError as exc:  # this process remembers it; a restart may send it again
            log.warning("what was sent to syslog cannot be kept in %s: %s", self.path, exc)
        details = {"alarm": KIND, "state": state, "cause": failure["cause"], "since": since}
        try:
            if self.audit is None:
                raise OSError("no audit trail")
            self.audit.append("system", AUDIT_ACTION, None, details, int(self.wall_us()))
        except Exception as exc:  # the card may be what fails: the line went all the same
            log.warning("syslog alarm %s (%s) sent, not audited: %s", KIND, state, exc)


def _outage(sent):
    """The failures a line was sent for (:func:`firmware.startfail.outage`); one kept by a
    release before this one, by its ``since_us``. None when nothing was sent."""
    if not sent:
        return None
    return sent.get("outage") if isinstance(sent.get("outage"), str) else str(sent["since_us"])


def _cause(note):
    cause = note.get("cause")
    return cause if cause in startfail.CAUSES else "other"


def _utc(us):
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_sent(path):
    """What a start-failure notice's state file ``path`` says was sent (its JSON), or {}:
    none yet, or a file that does not read (logged; taken as nothing sent)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s): taken as nothing sent", path, exc)
        return {}
