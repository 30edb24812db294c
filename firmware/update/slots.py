"""The slot the firmware runs from: a read-only mount of a slot and a link to it.

On the box the services run ``/opt/linekeeper/current/venv/bin/linekeeper``;
``current`` is a symbolic link to the mount of the active application slot
(``/run/linekeeper/slots/A`` or ``B``). Switching slots is replacing that link
(atomic: a power cut leaves the old link or the new one) and noting the slot
in ``UPDATE_DIR/current``, which the bootloader backend's ``get-current`` and
the rauc service's ``--override-boot-slot`` read.
"""

import os
import subprocess

from firmware.storage.fsutil import atomic_write

from ..errors import UpdateError


class Slots:
    """Mounts slots under ``mounts_dir`` and points ``current_link`` at one.

    :param update_dir: where ``current`` (the running slot's bootname) is kept
    """

    def __init__(self, mounts_dir, current_link, update_dir, run=subprocess.run):
        self.mounts_dir = mounts_dir
        self.current_link = current_link
        self.update_dir = update_dir
        self._run = run

    def mount_point(self, bootname):
        return os.path.join(self.mounts_dir, bootname)

    def mounted(self, path):
        real = os.path.realpath(path)
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == real for line in f if len(line.split()) > 1)

    def mount(self, bootname, device):
        """Mount ``device`` read-only at this slot's mount point (remounted if already)."""
        target = self.mount_point(bootname)
        os.makedirs(target, exist_ok=True)
        if self.mounted(target):
            # A slot just rewritten by RAUC: drop the stale mount of its old contents.
            self.unmount(bootname)
        done = self._run(["mount", "-o", "ro", device, target], capture_output=True, text=True)
        if done.returncode != 0:
            raise UpdateError("cannot mount slot %s (%s): %s" % (bootname, device, done.stderr.strip()))
        return target

    def unmount(self, bootname):
        target = self.mount_point(bootname)
        if self.mounted(target):
            self._run(["umount", target], capture_output=True, text=True)

    def current(self):
        """The bootname of the slot running now (``A`` when nothing was ever switched)."""
        try:
            with open(os.path.join(self.update_dir, "current")) as f:
                return f.read().strip() or "A"
        except FileNotFoundError:
            return "A"

    def point_at(self, bootname):
        """Make ``current_link`` point at the slot's mount, and note it as current."""
        tmp = self.current_link + ".new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(self.mount_point(bootname), tmp)
        os.replace(tmp, self.current_link)
        atomic_write(os.path.join(self.update_dir, "current"), (bootname + "\n").encode(), mode=0o644)
