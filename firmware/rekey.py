"""`linekeeper rekey`: every key of the box replaced, every recording's data key re-wrapped.

Offered after a user is removed or the recovery key replaced: an old copy of
``keys/keystore.json`` (and a password or recovery key that opened it) then
opens nothing current. The audio itself is not re-encrypted: each
recording's data key is unwrapped with the admin key and wrapped again to the
new key of its line (docs/FORMAT.md, "Rekey").

The steps, and what a crash (or kill) after each one leaves:

1. ``keys/keystore.next.json`` is written (new admin and line key pairs, the
   acting user's new slot, every other version 2 slot with its lines granted
   again, a new recovery slot), then the journal ``keys/rekey.json``
   (``{"version": 1, "old_public", "new_public"}``).
2. Each row gets its data key wrapped to the next keys in ``wrapped_key_next``;
   ``wrapped_key`` keeps the old one, so the old store still opens every row.
3. The new recovery key is shown (before anything is in force).
4. The commit: ``keystore.next.json`` is renamed over ``keystore.json``. From
   here the store tries ``wrapped_key_next`` when ``wrapped_key`` does not open.
5. The finish: ``wrapped_key_next`` becomes ``wrapped_key`` (one transaction),
   the key copy files follow, the write-ahead log is truncated (the old wrapped
   keys leave it), the keys are pinned again by the device key, the journal is
   removed; audited.

A crash before 4 leaves the old keys in force and is undone by the next
``rekey`` (:meth:`Rekey.resume`); a crash after 4 is finished by it. Either
way every recording stays readable throughout.

Limits: the data keys are unchanged, so someone who already copied a data key
(or the archive's escrow of it) still has it; recordings made before key copy
files existed carry a copy of their wrapped key in their sealed header, which
cannot be changed: they are counted and reported.
"""

import base64
import contextlib
import json
import os

from firmware.errors import LinekeeperError, NotGrantedError, TamperError
from firmware.recording.store import read_header
from firmware.storage import crypto, fsutil

JOURNAL = "rekey.json"


class Rekey:
    """Re-keys the box in ``keystore``'s data directory.

    :param keystore: the :class:`~firmware.storage.keystore.KeyStore`
    :param store: the writable :class:`~firmware.recording.store.RecordingStore`
    :param pin: the :class:`~firmware.keypin.RecordingKeyPin` (with the device signer)
    :param audit: ``fn(action, details)`` appending to the audit trail
    :param progress: ``fn(text)`` for progress lines
    :param counted: ``fn(done, total)`` for the recordings re-wrapped (None: a progress line
        "rekey: N/M recordings re-wrapped" at each tenth)
    """

    def __init__(self, keystore, store, pin, audit, progress=lambda text: None, counted=None):
        self.keystore = keystore
        self.store = store
        self.pin = pin
        self._audit = audit
        self._progress = progress
        self._counted = counted
        self.journal_path = keystore.keys_dir / JOURNAL

    # ------------------------------------------------------------ crash recovery
    def pending(self):
        """The journal of a rekey a crash cut short (a dict), or None."""
        try:
            return json.loads(self.journal_path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise TamperError("%s is damaged (%s)" % (self.journal_path, exc)) from None

    def resume(self):
        """Finish or undo a rekey a crash cut short; returns "finished", "undone" or None."""
        journal = self.pending()
        if journal is None:
            if self.keystore.next_public_key() is not None:
                self.keystore.drop_next()  # cut before its journal: nothing else was done
            return None
        if self.keystore.public_key() == base64.b64decode(journal["new_public"]):
            self._finish(journal, resumed=True)
            return "finished"
        self.store.drop_next_keys()
        self.keystore.drop_next()
        fsutil.remove_durable(self.journal_path)
        self._audit("rekey", {"phase": "undone", "why": "cut before the new keys were put in force"})
        self._progress("rekey: an unfinished rekey was undone (the keys in force were never changed)")
        return "undone"

    # ------------------------------------------------------------ the rekey
    def run(self, admin, user, password, show, hold=None):
        """Replace every key; returns a summary dict.

        ``admin``: an unlocked key that opens every line; ``user``/``password``:
        who runs it (their new slot opens every line); ``show(recovery key
        text)`` is called before the new keys are put in force.

        ``hold``: for a rekey inside the running recorder, a context manager
        factory under which no recording starts (``Recorder.keys_held``). The
        slow part (new slots, every row re-wrapped) runs without it; under it,
        the rows begun since then (wrapped to the old keys) are re-wrapped too,
        and the new keys are put in force and pinned - so no recording is left
        wrapped only to keys that no longer exist.

        :raises KeySlotError: ``admin`` does not open every line
        :raises LinekeeperError: a recording's key does not open (nothing is changed)
        """
        self.resume()
        old_public = self.keystore.public_key()
        rows = [r for r in self.store.all() if _live(r)]
        lines = {line for line in (self.store.line_of(r) for r in rows) if line is not None}
        self._progress("rekey: making the new keys and key slots (%d recordings to re-wrap)" % len(rows))
        recovery, line_publics, (new_public, kept, dropped) = self.keystore.write_next(
            admin, user, password, lines=lines
        )
        journal = {"version": 1, "old_public": _b64(old_public), "new_public": _b64(new_public)}
        fsutil.atomic_write(self.journal_path, json.dumps(journal, sort_keys=True).encode() + b"\n")
        self._audit("rekey", {"phase": "started", "recordings": len(rows)})
        try:
            in_header = self._rewrap(rows, admin, line_publics, new_public)
        except LinekeeperError:
            self.resume()  # not in force yet: undone
            raise
        show(recovery)
        self._progress("rekey: putting the new keys in force")
        try:
            with hold() if hold is not None else contextlib.nullcontext():
                return self._commit(
                    rows, admin, line_publics, new_public, journal, (kept, dropped), in_header
                )
        except LinekeeperError:
            self.resume()  # undone if the new keys are not in force yet, else finished
            raise

    def _commit(self, rows, admin, line_publics, new_public, journal, slots, in_header):
        """Re-wrap the rows begun since ``rows`` were read, then put the new keys in force."""
        seen = {r["id"] for r in rows}
        late = [
            r
            for r in self.store.all()
            if r["id"] not in seen and r["state"] != "deleted" and r["wrapped_key"]
        ]
        in_header += self._rewrap(late, admin, line_publics, new_public)
        kept, dropped = slots
        self.keystore.put_next_in_force()
        summary = {
            "recordings": len(rows) + len(late),
            "kept_slots": kept,
            "dropped_slots": dropped,
            "header_copies": in_header,
            "lines": sorted(line_publics),
        }
        self._finish(journal, summary=summary)
        return summary

    def _rewrap(self, rows, admin, line_publics, new_public):
        """Put every row's data key, wrapped to the next keys, beside its current one.

        Returns how many recordings also carry a wrapped key in their sealed header.
        """
        step, in_header = max(1, len(rows) // 10), 0
        for done, row in enumerate(rows, 1):
            try:
                data_key = self.store.data_key(row, admin)
            except (TamperError, NotGrantedError) as exc:
                raise LinekeeperError(
                    "recording %s (call %s) does not open with the admin key (%s): nothing was "
                    "changed; `linekeeper verify` says more" % (row["id"], row["call_id"], exc)
                ) from None
            line = self.store.line_of(row)
            recipient = line_publics.get(line, new_public)
            wrapped = crypto.wrap_data_key(data_key, recipient, self.store.key_context(row))
            self.store.set_next_key(row["id"], wrapped)
            if "wrapped_key" in (read_header(self.store.path_of(row["id"])) or {}):
                in_header += 1
            if self._counted is not None:
                self._counted(done, len(rows))
            elif done % step == 0 or done == len(rows):
                self._progress("rekey: %d/%d recordings re-wrapped" % (done, len(rows)))
        return in_header

    def _finish(self, journal, summary=None, resumed=False):
        promoted = self.store.promote_next_keys()
        if self.pin is not None:
            self.pin.repin(self.keystore.public_key(), self.keystore.line_public_keys())
        fsutil.remove_durable(self.journal_path)
        details = {"phase": "done", "new_public": journal["new_public"], "rewrapped": promoted}
        if summary:
            details.update(
                kept_slots=summary["kept_slots"],
                dropped_slots=summary["dropped_slots"],
                header_copies=summary["header_copies"],
            )
        if resumed:
            details["resumed"] = True
        self._audit("rekey", details)
        if resumed:
            self._progress("rekey: an unfinished rekey was finished (%d recordings)" % promoted)


def _live(row):
    """Whether ``row`` is a recording whose data key a rekey re-wraps."""
    return row["state"] != "deleted" and bool(row["wrapped_key"])


def _b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def journal_exists(data_dir):
    """True when a rekey a crash cut short waits in ``data_dir`` (for `verify`)."""
    return os.path.exists(os.path.join(os.fspath(data_dir), "keys", JOURNAL))
