"""A rekey asked for on the web, run by the recorder, followed on the rekey page.

The web process never re-keys itself: the recorder holds the data directory
and records while it re-keys (:meth:`firmware.box.Box.rekey`, the control
socket's ``rekey``). :class:`RekeyJob` makes that call in a thread of its own,
so the page that asked can return at once and show the recorder's progress
(``rekey_status``) until it is done. The new recovery key it returns is kept in
memory only, for the person who asked, and handed out once (:meth:`take_result`).
"""

import logging
import threading

from firmware.errors import LinekeeperError
from firmware.storage.audit import with_address

log = logging.getLogger(__name__)


class RekeyJob:
    """One rekey at a time, asked for on the web.

    :param run: ``fn(user, password, actor, address) -> {"summary", "recovery_key"}``,
        the rekey itself (the recorder's ``rekey``; ``address``: the web client's, which
        its entries carry); raises :class:`LinekeeperError`
    :param status: ``fn() -> {"running", "progress": [text]}`` (the recorder's
        ``rekey_status``); raises :class:`LinekeeperError` when it cannot say
    :param audit: ``fn(actor, action, details)``: a refused rekey is audited
        (``rekey``, phase ``refused``) as soon as it is refused
    """

    def __init__(self, run, status, audit=None):
        self._run = run
        self._status = status
        self._audit = audit
        self._lock = threading.Lock()
        self._thread = None
        self._outcome = None  # (actor, result dict or None, error text or None)

    def start(self, user, password, actor, address=None, ended=None, named=None):
        """Start a rekey by ``actor`` with ``user``'s slot; returns at once. ``address``:
        the web client's, for the audit entries (the recorder's and a refusal's).
        ``named``: the details that name the slot in a refusal's entry (default
        ``{"slot": user}``; the page keeps a name typed that is no account out of the trail).
        ``ended(error)``, if given, is called in the rekey's thread when it ends, with None
        when it ran, else the :class:`LinekeeperError` that refused it, before that refusal
        is audited; it returns details to add to the refusal's entry (the page's password
        throttle: cleared by a rekey that ran, a refusal's lockout said).

        :raises LinekeeperError: one is already running (from here or the recorder)
        """
        with self._lock:
            if self.running:
                raise LinekeeperError("a rekey is already running")
            self._outcome = None
            self._thread = threading.Thread(
                target=self._work,
                args=(user, password, actor, address, ended, named or {"slot": user}),
                name="rekey",
                daemon=True,
            )
            self._thread.start()

    def _work(self, user, password, actor, address, ended, named):
        try:
            result, error = self._run(user, password, actor, address), None
        except LinekeeperError as exc:
            result, error = None, exc
        more = {}
        if ended is not None:
            try:
                more = ended(error)
            except Exception as exc:  # the refusal is audited and the outcome kept all the same
                log.error("the end of the rekey could not be noted: %s", exc, exc_info=exc)
        if error is not None and self._audit is not None:
            details = {"phase": "refused", **named, "reason": str(error), **more}
            self._audit(actor, "rekey", with_address(details, address))
        with self._lock:
            self._outcome = (actor, result, None if error is None else str(error))

    @property
    def running(self):
        """Whether a rekey asked for here is still running."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s=None):
        """Wait for the rekey asked for here to end (tests, and a clean stop)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def progress(self):
        """The recorder's progress lines (empty when it cannot be asked)."""
        try:
            return list(self._status().get("progress", []))
        except LinekeeperError:
            return []

    def take_result(self, actor):
        """``(result, error)`` of the last rekey if ``actor`` asked for it, once; else
        ``(None, None)``. The recovery key is in the result only this once."""
        with self._lock:
            if self._outcome is None or self._outcome[0] != actor or self.running:
                return None, None
            _actor, result, error = self._outcome
            self._outcome = None
            return result, error


def _audit_to(audit_log, wall_us):
    return lambda actor, action, details: audit_log.append(actor, action, None, details, int(wall_us()))


def remote_rekey(client, audit_log, wall_us, timeout_s=3600.0):
    """A :class:`RekeyJob` asking the recorder at the other end of ``client``; refusals
    go to ``audit_log`` dated by ``wall_us()``."""
    return RekeyJob(
        lambda user, password, actor, address: client.call(
            "rekey", io_timeout_s=timeout_s, user=user, password=password, actor=actor, address=address
        ),
        lambda: client.call("rekey_status"),
        _audit_to(audit_log, wall_us),
    )


def box_rekey(box):
    """A :class:`RekeyJob` running :meth:`firmware.box.Box.rekey` in this process."""

    def run(user, password, actor, address):
        shown = []
        summary = box.rekey(user, password, actor, shown.append, address=address)
        return {"summary": summary, "recovery_key": shown[0]}

    return RekeyJob(
        run,
        lambda: {"running": box.rekey_running, "progress": list(box.rekey_progress)},
        _audit_to(box.audit, box.clock.wall_us),
    )
