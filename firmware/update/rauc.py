"""RAUC through its command line (which asks ``rauc service`` over D-Bus)."""

import json
import subprocess

from ..errors import UpdateError


def _reason(stderr):
    """The line of RAUC's output that says why it failed (RAUC logs chatter first)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("rauc-Message")] or lines
    # `rauc install` prints its progress ("idle", percentages) after the error.
    errors = [ln for ln in useful if "error" in ln.lower() or "failed" in ln.lower()]
    return (errors or useful or ["rauc gave no reason"])[-1]


class TimedOut(UpdateError):
    """A ``rauc`` command did not finish within ``timeout_s`` (RAUC hangs, not the bundle)."""


class NotInstalled(UpdateError):
    """There is no ``rauc`` command: RAUC is not installed (a restart does not bring it)."""


class InstallTimedOut(TimedOut):
    """``rauc install`` did not finish in time. Only the client was stopped: ``rauc
    service`` may still be writing the slot, so nothing can be said of the box until
    RAUC is asked (:meth:`Rauc.operation`)."""


# How long RAUC may give no answer, or say it is installing without its progress moving,
# after ``rauc install`` timed out, before an install is taken for failed (the updater's
# ``--install-wait-s``; the page and the recorder wait as long once the updater has ended).
INSTALL_WAIT_S = 1800.0

# RAUC's D-Bus service, its installer interface (Operation, LastError, Progress).
BUS_NAME = "de.pengutronix.rauc"
INSTALLER = "de.pengutronix.rauc.Installer"


def stood_still(progress, wait_s):
    """In words: RAUC said it was installing at ``progress`` (percentage, message, depth;
    None: not said) for ``wait_s``, after the updater stopped waiting for it."""
    if progress is None:
        return "RAUC has said it is installing without moving on for %d s" % wait_s
    return "RAUC has said it is installing without moving on for %d s (still at %d %%: %s)" % (
        wait_s,
        progress[0],
        progress[1] or "no step named",
    )


class Rauc:
    """The ``rauc`` command, run by ``run`` (``subprocess.run``-like).

    :param env: the environment for ``rauc`` (None: ours); tests point
        ``DBUS_SYSTEM_BUS_ADDRESS`` at their own bus
    """

    def __init__(self, binary="rauc", env=None, run=subprocess.run, timeout_s=600.0, busctl="busctl"):
        self.binary = binary
        self.env = env
        self._run = run
        self.timeout_s = timeout_s
        self.busctl = busctl

    def _call(self, *args):
        try:
            done = self._run(
                [self.binary, *args], capture_output=True, text=True, env=self.env, timeout=self.timeout_s
            )
        except FileNotFoundError:
            raise NotInstalled("RAUC is not installed (no %s command)" % self.binary) from None
        except subprocess.TimeoutExpired:
            if args[0] == "install":
                raise InstallTimedOut(
                    "rauc install did not finish in %d s (RAUC may still be writing the slot)"
                    % self.timeout_s
                ) from None
            raise TimedOut("rauc %s did not finish in %d s" % (args[0], self.timeout_s)) from None
        if done.returncode != 0:
            raise UpdateError("rauc %s failed: %s" % (args[0], _reason(done.stderr + done.stdout)))
        return done.stdout

    def install(self, bundle_path):
        """Verify ``bundle_path`` and write it to the inactive slot (RAUC then makes it primary).

        :raises InstallTimedOut: no answer within ``timeout_s``: RAUC may go on writing
        :raises UpdateError: refused (signature, compatible, our install-check) or failed
        """
        self._call("install", bundle_path)

    def info(self, bundle_path):
        """The bundle's manifest as ``rauc info`` reads it (``version``, ``compatible``...),
        without checking its signature: ``rauc install`` checks that, over the same manifest.

        :raises TimedOut: no answer within ``timeout_s``
        :raises UpdateError: the bundle cannot be read (RAUC's reason)
        """
        out = self._call("info", "--no-verify", "--output-format=json", bundle_path)
        try:
            info = json.loads(out)
        except ValueError:
            raise UpdateError("rauc info's answer was not understood: %r" % out[:200]) from None
        if not isinstance(info, dict):
            raise UpdateError("rauc info's answer was not understood: %r" % out[:200])
        return info

    def operation(self):
        """What ``rauc service`` is doing: ``(operation, last_error)``, as :meth:`installer`.

        :raises TimedOut: no answer within 30 s (``timeout_s`` when shorter): it hangs
        :raises UpdateError: the service cannot be asked (not running, no ``busctl``)
        """
        operation, last_error, _ = self.installer()
        return operation, last_error

    def installer(self):
        """What ``rauc service`` is doing: ``(operation, last_error, progress)``, its
        installer's ``Operation`` (``"idle"``, ``"installing"``), ``LastError`` (``""``
        after an install that succeeded, else why the last one failed) and ``Progress``
        (``(percentage, message, nesting depth)`` of the install at work, or of the last
        one: it changes as RAUC goes on, so one that stays the same says nothing moved),
        read over D-Bus in one question.

        :raises TimedOut: no answer within 30 s (``timeout_s`` when shorter): it hangs
        :raises UpdateError: the service cannot be asked (not running, no ``busctl``)
        """
        argv = [self.busctl, "--system", "--json=short", "get-property", BUS_NAME, "/", INSTALLER]
        timeout_s = min(30.0, self.timeout_s)
        try:
            done = self._run(
                [*argv, "Operation", "LastError", "Progress"],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=timeout_s,
            )
        except FileNotFoundError:
            raise UpdateError("cannot ask RAUC what it is doing (no %s command)" % self.busctl) from None
        except OSError as exc:  # not allowed to run it (the web UI's user), or the like
            raise UpdateError("cannot ask RAUC what it is doing: %s" % exc) from None
        except subprocess.TimeoutExpired:
            raise TimedOut("RAUC did not say what it is doing within %d s" % timeout_s) from None
        if done.returncode != 0:
            raise UpdateError("cannot ask RAUC what it is doing: %s" % _reason(done.stderr + done.stdout))
        try:
            operation, last_error, progress = (
                json.loads(line)["data"] for line in done.stdout.splitlines()[:3]
            )
            percentage, message, depth = progress  # busctl gives RAUC's (isi) as a list
            progress = (int(percentage), str(message), int(depth))
        except (ValueError, KeyError, TypeError):
            raise UpdateError("RAUC's answer was not understood: %r" % done.stdout[:200]) from None
        return str(operation), str(last_error), progress

    def status(self):
        """``rauc status`` as a dict: ``booted``, ``boot_primary`` and ``slots``
        (``{name: {bootname, device, boot_status, slot_status...}}``).

        :raises TimedOut: no answer within ``timeout_s``
        :raises UpdateError: it failed (RAUC's reason), or its answer is not the JSON
            object with a list of slots that RAUC gives (cut short, another RAUC's)
        """
        out = self._call("status", "--detailed", "--output-format=json")
        try:
            data = json.loads(out)
            slots = {}
            for entry in data.get("slots", []):
                slots.update(entry)
        except (ValueError, TypeError, AttributeError):
            raise UpdateError("rauc status's answer was not understood: %r" % out[:200]) from None
        data["slots"] = slots
        return data

    def slot_name(self, bootname, status=None):
        """The RAUC slot name (e.g. ``app.1``) of bootname ``A`` or ``B``."""
        for name, slot in (status or self.status())["slots"].items():
            if slot.get("bootname") == bootname:
                return name
        raise UpdateError("RAUC knows no slot with bootname %s" % bootname)

    def mark(self, how, slot_name):
        """``rauc status mark-{good,bad,active} SLOT``."""
        if how not in ("good", "bad", "active"):
            raise ValueError(how)
        self._call("status", "mark-%s" % how, slot_name)
