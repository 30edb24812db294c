"""Fault injection for the rollback's crash tests: a cut as the Nth step of a rollback begins.

A *step* is one call that changes what is on the card while a rollback runs: in
``firmware.migrations`` each ``os.unlink``, ``os.replace``, ``shutil.copy2``,
``shutil.rmtree`` and ``atomic_write``; in the recorder's start the note of the
calls to rebuild, each rebuild of a call's rows and each signature (between the
two: rows without their signature), the audit entry and the end of the rollback.
The product code runs unchanged: the names it calls are replaced on its modules,
as tests/recording/acceptance/test_crash_unsynced.py does with ``os``.

:class:`Steps` counts them; at step ``cut_at`` it calls ``on_cut`` before the
step runs (raise :class:`PowerCut` in-process; ``os._exit`` in a child process,
where nothing after it runs, as after a power cut: every step syncs what it wrote).
"""

import os
import shutil
import sys

import firmware.box
import firmware.migrations
import firmware.recovery
from firmware.recording.store import RecordingStore


class PowerCut(BaseException):
    """Stands for a kill: nothing after it runs, and nothing catches it."""


def raise_cut(name):
    raise PowerCut(name)


def exit_cut(name):
    """The child process's cut: gone at once, nothing flushed or closed."""
    os._exit(137)


class _Counted:
    """A module (``os``, ``shutil``) whose ``names`` are counted as steps."""

    def __init__(self, module, names, steps):
        self._module, self._names, self._steps = module, names, steps

    def __getattr__(self, name):
        real = getattr(self._module, name)
        if name not in self._names:
            return real
        return self._steps.wrap("%s.%s" % (self._module.__name__, name), real)


class Steps:
    """Counts a rollback's steps (see the module's text); cuts at ``cut_at`` (1-based;
    0: never). ``names`` lists the steps seen, in order."""

    def __init__(self, cut_at=0, on_cut=raise_cut):
        self.cut_at, self.on_cut = cut_at, on_cut
        self.names = []
        self.counting = True

    def step(self, name):
        if not self.counting:
            return
        self.names.append(name)
        if len(self.names) == self.cut_at:
            self.on_cut(name)

    def wrap(self, name, real):
        def counted(*args, **kwargs):
            self.step(name)
            return real(*args, **kwargs)

        return counted

    def install_migrations(self, setattr_=setattr):
        """Count the file changes of :mod:`firmware.migrations` (a restore's steps)."""
        module = firmware.migrations
        setattr_(module, "os", _Counted(os, {"unlink", "replace"}, self))
        setattr_(module, "shutil", _Counted(shutil, {"copy2", "rmtree"}, self))
        setattr_(module, "atomic_write", self.wrap("atomic_write", module.atomic_write))

    def install_box(self, setattr_=setattr):
        """Count the recorder's start after a rollback too, from the rollback to its end
        (steps outside that window, a call recorded later, are not counted)."""
        self.install_migrations(setattr_)
        self.counting = False
        real_bring, real_finish = firmware.box.bring_up_to_date, firmware.box.finish_rollback

        def bring_up_to_date(*args, **kwargs):
            self.counting = True
            return real_bring(*args, **kwargs)

        def finish_rollback(*args, **kwargs):
            self.step("finish_rollback")
            real_finish(*args, **kwargs)
            self.counting = False

        setattr_(firmware.box, "bring_up_to_date", bring_up_to_date)
        setattr_(firmware.box, "finish_rollback", finish_rollback)
        setattr_(firmware.box, "note_rebuilding", self.wrap("note_rebuilding", firmware.box.note_rebuilding))
        setattr_(firmware.recovery, "_rebuild", self.wrap("rebuild", firmware.recovery._rebuild))
        setattr_(RecordingStore, "sign", self.wrap("sign", RecordingStore.sign))
        audit = firmware.box.Box._audit_migration
        setattr_(firmware.box.Box, "_audit_migration", self.wrap("audit", audit))


def main(argv):
    """``python -m support.cuts CUT_AT STEPS_FILE linekeeper-args...``: run the
    ``linekeeper`` command with the rollback cut at step ``CUT_AT`` (0: not cut); the
    steps seen are written to ``STEPS_FILE``, one a line, as they come."""
    from firmware.cli import main as linekeeper

    cut_at, steps_file = int(argv[0]), argv[1]
    with open(steps_file, "w") as out:
        steps = Steps(cut_at, exit_cut)
        real_step = steps.step

        def step(name):
            if steps.counting:
                out.write(name + "\n")
                out.flush()
            real_step(name)

        steps.step = step
        steps.install_box()
        return linekeeper(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
