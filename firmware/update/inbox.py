"""Bundles uploaded on the installer's page, and what that page shows of updates.

The web UI runs as its own unprivileged user and cannot install anything. It
writes an uploaded bundle into ``DATA_DIR/update-inbox/`` (whole, or not at
all: a ``.part`` file renamed into place) and audits it; there
``linekeeper-update-inbox.path`` (root) sees it and runs ``linekeeper update
--watch`` on the folder once, which installs it as from a USB stick and writes
its report, its progress and its result beside it (``--status-dir``), where
the page reads them.

An update that ended ``installing`` (``rauc install`` outlived its timeout and
RAUC was still writing when the update stopped waiting) leaves its progress
note, marked ``ended_us``: while RAUC works, the page says not to cut the power
and takes no upload. Once RAUC is idle that note is stale: the page says what
RAUC did and takes an upload again (the updater itself refuses to start while
RAUC is busy, whatever the page said). So it is, too, once RAUC gave no answer
for a whole install wait since its last answer (the note's, or a later one the
page had), or said it was installing without its progress moving for as long:
what RAUC did is then not known, and the page says so. What the page heard of
RAUC since the note is kept beside the inbox (:data:`HEARD_NAME`, in the data
directory: a file in the inbox would start the updater), so a restart of the web
UI goes on from there rather than from the note.
"""

import fcntl
import hashlib
import json
import logging
import os
import threading
import time

from firmware.storage.fsutil import atomic_write, fsync_dir

from ..errors import UpdateError
from .flow import (
    CONFIRM_NAME,
    MARKED_GOOD_STEP,
    NOT_SWITCHED_STEPS,
    PROGRESS_NAME,
    REPORT_NAME,
    RESULT_NAME,
    cut_short,
    read_json,
)
from .rauc import INSTALL_WAIT_S, stood_still
from .version import same_release

log = logging.getLogger(__name__)

INBOX = "update-inbox"
# In the data directory, beside the inbox: what the page last heard of RAUC about the note
# an update that ended ``installing`` left (``ended_us``, ``answered_us``, ``moved_us``,
# ``progress``), so that a restarted web UI does not count from the note again.
HEARD_NAME = "update-page-heard.json"
# How much later an answer must be than the one kept for it to be written again: the page
# asks every 3 s, and the card is not written each time (a restart loses at most this).
HEARD_WRITE_S = 60
MAX_BUNDLE_BYTES = 256 << 20  # a release bundle with its venv is a few tens of MB
CHUNK = 256 << 10
SQUASHFS_MAGIC = b"hsqs"  # RAUC bundles (plain and verity) are squashfs images


def inbox_dir(data_dir):
    return os.path.join(data_dir, INBOX)


class UpdateInbox:
    """The upload folder of ``data_dir``; ``slot_info`` is the running slot's
    ``linekeeper-slot.json`` (its version); ``rauc`` a :class:`~firmware.update.rauc.Rauc`
    to ask whether an update that ended ``installing`` left RAUC at work (None: it
    cannot be asked, and such an update's note stands until the next update or boot);
    ``wall_us`` the clock the updater's notes are written by."""

    def __init__(
        self,
        data_dir,
        *,
        max_bytes=MAX_BUNDLE_BYTES,
        slot_info="/opt/linekeeper/current/linekeeper-slot.json",
        rauc=None,
        wall_us=None,
    ):
        self.dir = inbox_dir(data_dir)
        self.heard_path = os.path.join(data_dir, HEARD_NAME)
        self.max_bytes = max_bytes
        self.slot_info = slot_info
        self.rauc = rauc
        self._wall_us = wall_us or (lambda: time.time_ns() // 1000)
        # RAUC as this page last heard it about the note an update that ended ``installing``
        # left: (that note's ended_us, last answer, last progress moved, progress). Kept in
        # memory and in ``heard_path`` (not in the folder: a file written there would start
        # the updater's path unit), read again after a restart.
        self._heard_lock = threading.Lock()
        self._heard_of = None
        self._heard_kept = None  # what ``heard_path`` holds, as last written or read

    def save(self, stream, filename, audited=None):
        """Store an uploaded bundle read from ``stream``; ``{"name", "size", "sha256"}``.

        ``audited(info)`` (that dict) is called once the bundle is checked and before it
        is put where the updater takes it: an upload is audited before it can be
        installed, and a cut between leaves no bundle waiting.

        :raises UpdateError: not a ``.raucb``, empty, larger than ``max_bytes``, not a
            RAUC bundle, unsigned, an update already running, or another upload being
            stored; nothing is kept
        """
        if not str(filename or "").lower().endswith(".raucb"):
            raise UpdateError("%r is not an update bundle: choose a .raucb file" % (filename or ""))
        if self.running():
            raise UpdateError("an update is running: wait for its report before uploading another")
        os.makedirs(self.dir, exist_ok=True)
        # One upload stored at a time: two at once (two installers, a form sent twice)
        # wrote into the same part file, so the bundle kept was a mix of both under the
        # name and SHA-256 audited for one, and the other upload failed with a crash.
        # The folder itself is locked: a lock file written there would start the
        # updater's path unit.
        lock = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpdateError(
                    "another bundle is being uploaded: wait for it to finish, then upload again"
                ) from None
            return self._save(stream, audited)
        finally:
            os.close(lock)

    def _save(self, stream, audited):
        part = os.path.join(self.dir, "upload.part")
        try:
            size, digest = self._write(stream, part)
            _check_bundle(part, size)
        except BaseException:
            _remove(part)
            raise
        name = "uploaded-%s.raucb" % digest[:16]
        info = {"name": name, "size": size, "sha256": digest}
        if audited is not None:
            try:
                audited(info)
            except BaseException:
                _remove(part)
                raise
        for old in os.listdir(self.dir):
            if old.endswith(".raucb"):
                _remove(os.path.join(self.dir, old))  # one bundle waits at a time
        os.replace(part, os.path.join(self.dir, name))
        fsync_dir(self.dir)
        return info

    def _write(self, stream, part):
        digest = hashlib.sha256()
        size = 0
        with open(part, "wb") as f:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise UpdateError(_too_large(self.max_bytes))
                digest.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        if size == 0:
            raise UpdateError("the file is empty")
        return size, digest.hexdigest()

    def held(self):
        """The last update's bundle when it was refused for not being newer than the
        running release (``{"bundle", "from", "to", "kind", "here"}``; ``here``: the bundle
        is in this folder and can be confirmed, else it came on a stick), or None."""
        last = read_json(os.path.join(self.dir, RESULT_NAME))
        if not isinstance(last, dict) or last.get("outcome") != "refused":
            return None
        downgrade = last.get("downgrade")
        if not isinstance(downgrade, dict) or downgrade.get("confirmed"):
            return None
        name = str(last.get("bundle") or "")
        if self._confirmed() == (name, downgrade.get("from"), downgrade.get("to")):
            return None  # confirmed: it waits for the updater, asking nothing more
        here = name.endswith(".raucb") and "/" not in name and os.path.isfile(os.path.join(self.dir, name))
        return dict(downgrade, bundle=name, here=here)

    def _confirmed(self):
        """``(bundle, from, to)`` of the confirmation waiting for the updater, or None."""
        note = read_json(os.path.join(self.dir, CONFIRM_NAME))
        if not isinstance(note, dict):
            return None
        return note.get("bundle"), note.get("from"), note.get("to")

    def confirm_downgrade(self, name, from_version, to_version, audited=None):
        """The installer's go-ahead for the held bundle ``name`` going from ``from_version``
        to ``to_version`` (what the page showed): noted for the updater
        (:data:`firmware.update.flow.CONFIRM_NAME`, with the file's SHA-256), and the bundle
        offered again. ``audited(info)`` is called first, with ``{"bundle", "sha256", "from",
        "to", "kind"}``.

        :raises UpdateError: no such bundle is held here, the versions are not the ones
            held, or an update is running
        """
        if self.running():
            raise UpdateError("an update is running: wait for its report")
        held = self.held()
        if held is None or not held["here"] or held["bundle"] != name:
            raise UpdateError("there is no bundle here waiting for a confirmation: upload it again")
        if (held["from"] or "", held["to"]) != (from_version, to_version):
            raise UpdateError(
                "the box now runs %s and the bundle holds %s, not what was confirmed: look again"
                % (held["from"], held["to"])
            )
        path = os.path.join(self.dir, name)
        info = {"bundle": name, "sha256": _sha256(path), "from": held["from"], "to": held["to"]}
        if audited is not None:
            audited(dict(info, kind=held["kind"]))
        atomic_write(os.path.join(self.dir, CONFIRM_NAME), json.dumps(info).encode(), mode=0o644)
        # A new time makes it a new bundle for the watcher (which took this one once).
        os.utime(path)
        return info

    def running(self):
        """True while an update runs, or RAUC may still be writing the one that ended
        ``installing`` (busy, or it cannot be asked, for less than an install wait)."""
        return self._progress()[0] is not None

    def _progress(self):
        """``(progress, after)``: the running update's progress note (None: none runs),
        and, when the note an update that ended ``installing`` left is stale (RAUC idle
        since, or it gave no answer, or no progress, for a whole install wait), what RAUC
        did, in words (else None)."""
        path = os.path.join(self.dir, PROGRESS_NAME)
        if not os.path.exists(path):
            return None, None
        progress = read_json(path)
        if not isinstance(progress, dict):
            return {"step": "unknown"}, None  # a note being replaced, or damaged: one runs
        if progress.get("step") != "still_installing" or not progress.get("ended_us"):
            return progress, None
        if self.rauc is None:
            return progress, None
        wait_s = progress.get("install_wait_s")
        if type(wait_s) not in (int, float) or not wait_s > 0:
            wait_s = INSTALL_WAIT_S  # a note from before the updater wrote its wait
        try:
            operation, last_error, said = self.rauc.installer()
        except UpdateError as exc:
            # Not known to be done: still do not cut the power, for a whole wait since it
            # last answered; then what it did is not known, and an upload is taken again.
            answered_us, _ = self._heard(progress)
            if self._wall_us() - answered_us < wait_s * 1e6:
                return progress, None
            return None, _not_known(progress, "RAUC has not answered for %d s (%s)" % (wait_s, exc))
        if operation != "idle":
            _, moved_us = self._heard(progress, said)
            if self._wall_us() - moved_us < wait_s * 1e6:
                return progress, None
            return None, _not_known(progress, stood_still(said, wait_s))
        return None, _after_install(progress, last_error)

    def _heard(self, note, *said):
        """``(answered_us, moved_us)``: when RAUC last answered about the install ``note``
        was left for, and when its progress last moved (the wait's start, or the note's
        end, when the note does not say), by the note or, later, by this page; ``said``:
        its progress in an answer just now."""
        ended_us = note["ended_us"]
        moved_us = _us(note.get("rauc_moved_us")) or _us(ended_us) or 0
        answered_us = _us(note.get("rauc_answered_us")) or moved_us
        last = note.get("rauc_progress")
        last = tuple(last) if isinstance(last, list) else None
        with self._heard_lock:
            if self._heard_of is None or self._heard_of[0] != ended_us:
                self._heard_of = self._read_heard(ended_us)
            if self._heard_of is not None:
                _, answered_us, moved_us, last = self._heard_of
            if said:
                answered_us = self._wall_us()
                if said[0] != last:
                    last, moved_us = said[0], answered_us
                self._heard_of = (ended_us, answered_us, moved_us, last)
                self._keep_heard()
        return answered_us, moved_us

    def _read_heard(self, ended_us):
        """What a page before a restart heard about the note that ended at ``ended_us``
        (``(ended_us, answered_us, moved_us, progress)``), or None."""
        kept = read_json(self.heard_path)
        if not isinstance(kept, dict) or kept.get("ended_us") != ended_us:
            return None
        answered_us, moved_us = _us(kept.get("answered_us")), _us(kept.get("moved_us"))
        if answered_us is None or moved_us is None:
            return None
        progress = kept.get("progress")
        heard = (ended_us, answered_us, moved_us, tuple(progress) if isinstance(progress, list) else None)
        self._heard_kept = heard
        return heard

    def _keep_heard(self):
        """Write what was heard (lock held) when its progress moved, or its answer is
        :data:`HEARD_WRITE_S` later than the one kept; a card that refuses only loses it
        at a restart."""
        heard, kept = self._heard_of, self._heard_kept
        if (
            kept is not None
            and kept[0] == heard[0]
            and kept[2:] == heard[2:]
            and heard[1] - kept[1] < HEARD_WRITE_S * 1e6
        ):
            return
        ended_us, answered_us, moved_us, progress = heard
        note = {"ended_us": ended_us, "answered_us": answered_us, "moved_us": moved_us, "progress": progress}
        try:
            atomic_write(self.heard_path, json.dumps(note).encode(), mode=0o640)
        except OSError as exc:
            log.warning("cannot keep what the Updates page heard of RAUC: %s", exc)
            return
        self._heard_kept = heard

    def state(self):
        """What the page shows: ``installed_version``, ``progress`` (the step now, or
        None), ``after_install`` (in words, when no update runs: what RAUC did after an
        update stopped waiting for it, or that the version the last update installed is
        not the one the box runs), ``last`` (the last update's result, or None),
        ``report`` (its text) and ``waiting`` (an uploaded bundle not yet taken)."""
        report = _read_text(os.path.join(self.dir, REPORT_NAME))
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.endswith(".raucb"))
        except FileNotFoundError:
            names = []
        last = read_json(os.path.join(self.dir, RESULT_NAME))
        # The last update's bundle is not waiting, unless the installer confirmed it since.
        confirmed = (self._confirmed() or (None,))[0]
        waiting = [n for n in names if not (last and last.get("bundle") == n) or n == confirmed]
        progress, after = self._progress()
        installed_version = (read_json(self.slot_info) or {}).get("version")
        if progress is None and after is None:
            after = _not_running(last, installed_version)
        return {
            "installed_version": installed_version,
            "progress": progress,
            "after_install": after,
            "last": last,
            "report": report,
            "waiting": waiting[0] if waiting else None,
            "held": self.held(),
            "max_mb": self.max_bytes >> 20,
        }


def restart_step_us(data_dir):
    """When the update the page shows began its ``restart`` step (its progress note's
    ``at_us``, an integer), or None: no update is at that step. The recorder's start
    reads a clean stop just after it as the update's restart
    (:func:`firmware.uptime.restarted_for_update`) when the updater left no note of its
    own: the release before the one that writes that note (its update installing this
    one) leaves its progress note here all the same. The step lasts until the services
    it restarts are started (the recorder ready): the start being restarted reads it."""
    progress = read_json(os.path.join(inbox_dir(data_dir), PROGRESS_NAME))
    if not isinstance(progress, dict) or progress.get("step") != "restart":
        return None
    at_us = progress.get("at_us")
    return at_us if type(at_us) is int else None


def on_trial(data_dir):
    """The progress note (a dict) of the update whose new release is on trial: the box was
    switched to it (or is being), and its health check has not marked it good yet, or it
    is being rolled back; else None. A rollback, the update's own or its recovery after a
    cut (:meth:`firmware.update.flow.Updater.recover`, which rolls back from these very
    steps), starts the release before on the ``config.json`` there is then. A note that
    cannot be read is one that recovery rolls back too: ``{"step": "unknown"}``. Read in
    the update inbox, where the Updates page reads the update's progress."""
    path = os.path.join(inbox_dir(data_dir), PROGRESS_NAME)
    if not os.path.exists(path):
        return None
    progress = read_json(path)
    if not isinstance(progress, dict):
        return {"step": "unknown"}
    if progress.get("step") in NOT_SWITCHED_STEPS + (MARKED_GOOD_STEP,):
        return None
    return progress


def trial_refusal(trial, when):
    """Why a setting the release before refuses in ``config.json`` is not set while the
    update ``trial`` (:func:`on_trial`'s note) is on trial; ``when(wall_us)`` says a time."""
    at_us = trial.get("at_us")
    version, before = trial.get("version"), trial.get("previous_version")
    return (
        "the update%s %s is still on trial: set this once it is marked good, or a rollback%s "
        "would stop the recorder (the release before refuses this setting)"
        % (
            " to version %s" % version if isinstance(version, str) else "",
            "installed on %s" % when(at_us) if type(at_us) is int else "being installed",
            " to version %s" % before if isinstance(before, str) else "",
        )
    )


def _after_install(progress, last_error):
    """What RAUC did after an update stopped waiting for its install, for the page."""
    bundle = progress.get("bundle") or "the last bundle"
    if last_error:
        return (
            "RAUC's install of %s failed after the update stopped waiting for it (%s). The box "
            "was not changed: it runs its version as before. No update is running." % (bundle, last_error)
        )
    return (
        "RAUC has finished writing %s into the spare slot since the update stopped waiting "
        "for it, but the box was not switched to it: it runs its version as before (a restart "
        "keeps it there). Upload the bundle again, or insert its stick again, to finish the "
        "update. No update is running." % bundle
    )


def _not_running(last, running):
    """For the page: the last update (its result ``last``) installed a version the box does
    not run (``running``, the running slot's): it came back on its old slot. Else None."""
    if not isinstance(last, dict) or last.get("outcome") != "installed":
        return None
    version = last.get("version")
    if not isinstance(version, str) or not isinstance(running, str) or same_release(version, running):
        return None
    return (
        "Version %s was installed on slot %s, but the box runs %s: it did not start the new version, "
        "or went back to the old one. Restart the box; if it comes back on %s again, upload the "
        "bundle again or call the supplier. No update is running."
        % (version, last.get("slot") or "?", running, running)
    )


def _not_known(progress, what):
    """For the page: RAUC ``what`` (gave no answer, or no progress, for a whole install wait)
    since an update stopped waiting for its install."""
    bundle = progress.get("bundle") or "the last bundle"
    return (
        "The update of %s stopped waiting for RAUC's install, and %s since: what RAUC did is not "
        "known. The box was not switched: it runs its version as before, and RAUC never boots a "
        "slot it did not finish writing. Restart the box (RAUC with it), then upload the bundle "
        "again, or insert its stick again. No update is running." % (bundle, what)
    )


def _us(value):
    """``value`` when it is a time in µs (an integer), else None."""
    return value if type(value) is int else None


def _too_large(max_bytes):
    return "the file is larger than %s, the most a bundle may be" % _size(max_bytes)


def _size(n_bytes):
    return "%d MB" % (n_bytes >> 20) if n_bytes >= 1 << 20 else "%d KB" % (n_bytes >> 10)


def _check_bundle(path, size):
    """Refuse what is plainly no signed RAUC bundle (RAUC checks the rest when it installs)."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, size - 8))
        tail = f.read(8)
    if head != SQUASHFS_MAGIC or size < 4096:
        raise UpdateError("the file is not a RAUC update bundle (it does not start like one)")
    if cut_short(path):
        # Its length field is then bytes from the middle of the image: not "unsigned".
        raise UpdateError(
            "the bundle is incomplete (%s): the download or the upload was cut off; "
            "fetch it again and upload the whole file" % _size(size)
        )
    # A bundle ends with its CMS signature and that signature's length (8 bytes, big-endian).
    sig_len = int.from_bytes(tail, "big")
    if sig_len == 0 or sig_len > size - 8:
        raise UpdateError("the bundle is not signed")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
