"""The watched folder: a bundle dropped there (a USB stick's mount, or a folder on the
simulated box) is installed once, and its report written beside it.

A bundle is taken when its size and modification time have stayed the same for
``stable_s`` (a copy onto the stick has finished). Each bundle is installed once:
what was seen (name, size, mtime) is remembered in ``UPDATE_DIR/watched.json``,
so a stick left in the box does not install again at every poll or boot; an
update its service stopped (the stick pulled during the copy or the wait for
idle lines) is forgotten again, so the stick put back installs it. So is one
refused for a reason not its own (the box's storage full, another update
running, a line busy for the whole wait): the stick put back, or the next
upload, takes it again at once, as its report says; a watcher that goes on
looking (``--watch`` without ``--once``) waits :data:`RETRY_LATER_S` before it
does, rather than install it again at every poll while the cause lasts.
"""

import json
import os
import time

from firmware.storage.fsutil import atomic_write

RETRY_LATER_S = 600


def is_bundle_name(name):
    """Whether a file called ``name`` is taken as an update bundle (``*.raucb``, any case)."""
    return name.lower().endswith(".raucb")


class Watcher:
    """Polls ``folder`` for ``*.raucb``; ``install(path, report_dir)`` carries one out."""

    def __init__(
        self,
        folder,
        update_dir,
        install,
        *,
        stable_s=2.0,
        poll_s=2.0,
        monotonic=time.monotonic,
        sleep=time.sleep,
    ):
        self.folder = folder
        self.seen_path = os.path.join(update_dir, "watched.json")
        self.install = install
        self.stable_s = stable_s
        self.poll_s = poll_s
        self._monotonic = monotonic
        self._sleep = sleep
        self._candidates = {}  # name -> (signature, first seen at)
        self._later = {}  # name -> (signature, not before): refused "later", in this process
        #: The bundles the last :meth:`poll` found at the folder's top, taken or not.
        self.found = []

    def _seen(self):
        try:
            with open(self.seen_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}  # none yet, or the box's storage refusing it: nothing remembered

    def _remember(self, name, signature):
        seen = self._seen()
        seen[name] = signature
        # Made here as the update makes it (a box, or the simulated one, without it yet).
        os.makedirs(os.path.dirname(self.seen_path), exist_ok=True)
        atomic_write(self.seen_path, json.dumps(seen).encode(), mode=0o644)

    def poll(self):
        """Install every new bundle that has stopped changing; their results."""
        try:
            # In any case: a FAT stick written by some tools shows upper-case names.
            names = sorted(n for n in os.listdir(self.folder) if is_bundle_name(n))
        except OSError:
            self.found = []
            return []  # no stick in, or it was pulled
        self.found = names
        seen = self._seen()
        now = self._monotonic()
        results = []
        for name in names:
            try:
                st = os.stat(os.path.join(self.folder, name))
            except OSError:
                continue
            signature = [st.st_size, st.st_mtime_ns]
            if seen.get(name) == signature:
                continue
            later = self._later.get(name)
            if later is not None and later[0] == signature and self._monotonic() < later[1]:
                continue
            previous = self._candidates.get(name)
            if previous is None or previous[0] != signature:
                self._candidates[name] = (signature, now)
                if self.stable_s > 0:
                    continue
            elif now - previous[1] < self.stable_s:
                continue
            self._candidates.pop(name, None)
            # Remembered first: a bundle that crashes the box is not retried forever.
            try:
                self._remember(name, signature)
            except OSError:
                # The box's storage refused (full, read-only): the update, which meets the
                # same, says so in its report on the stick; a crash here left none.
                pass
            result = self.install(os.path.join(self.folder, name), self.folder)
            if getattr(result, "retry", False) or getattr(result, "later", False):
                try:
                    # Stopped (the stick pulled): it installs when it comes back; refused
                    # for a cause not its own: the stick put back, the next upload, at once.
                    self._forget(name)
                except OSError:
                    pass  # not remembered either, the storage refusing
            if getattr(result, "later", False) and not getattr(result, "retry", False):
                self._later[name] = (signature, self._monotonic() + RETRY_LATER_S)
            results.append(result)
        return results

    def misplaced(self, depth=2):
        """Bundles in folders on the stick (``depth`` levels down), which are not taken:
        only its top level is looked at. Their paths from the folder, sorted."""
        found = []
        for root, dirs, files in os.walk(self.folder):
            level = os.path.relpath(root, self.folder).count(os.sep) + 1 if root != self.folder else 0
            if level >= depth:
                dirs[:] = []
            if root != self.folder:
                found += [
                    os.path.relpath(os.path.join(root, n), self.folder) for n in files if is_bundle_name(n)
                ]
        return sorted(found)

    def _forget(self, name):
        seen = self._seen()
        seen.pop(name, None)
        atomic_write(self.seen_path, json.dumps(seen).encode(), mode=0o644)

    def run(self, stop):
        """Poll until the ``stop`` event is set."""
        while not stop.is_set():
            self.poll()
            stop.wait(self.poll_s)
