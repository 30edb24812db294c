"""``linekeeper update BUNDLE``, ``linekeeper update --status`` and ``--confirm``."""

import json
import os
import shlex
import signal
import sys

from ..errors import UpdateError

DEFAULTS = {
    "update_dir": "/var/lib/linekeeper-update",
    "mounts": "/run/linekeeper/slots",
    "current": "/opt/linekeeper/current",
}


def add_arguments(p):
    p.add_argument("bundle", nargs="?", help="the .raucb bundle (e.g. on a USB stick)")
    p.add_argument(
        "--status", action="store_true", help="show the slots, the versions and the last update's report"
    )
    p.add_argument(
        "--watch",
        metavar="FOLDER",
        help="install each new bundle dropped into FOLDER (a USB stick's mount; "
        "the simulated box's stick), its report beside it",
    )
    p.add_argument(
        "--once", action="store_true", help="with --watch: look once (a bundle must be complete), then exit"
    )
    p.add_argument(
        "--recover",
        action="store_true",
        help="finish or undo an update cut short by a crash or power cut (at boot)",
    )
    p.add_argument(
        "--confirm",
        action="store_true",
        help="confirm a release installed some other way than an update (scripts/install-box "
        "over an older box's data): its pre-migration backup goes, and the stores kept in "
        "clear for a way back are sealed",
    )
    p.add_argument("--data-dir", help="the box's data directory (needed to install)")
    p.add_argument(
        "--update-dir",
        default=DEFAULTS["update_dir"],
        help="RAUC's data directory on the data partition (default %(default)s)",
    )
    p.add_argument(
        "--slots-dir", default=DEFAULTS["mounts"], help="where the slots are mounted (default %(default)s)"
    )
    p.add_argument(
        "--current-link",
        default=DEFAULTS["current"],
        help="the link to the running slot (default %(default)s)",
    )
    p.add_argument(
        "--report-dir",
        help="where to write the readable report (default: the bundle's folder, e.g. the stick)",
    )
    p.add_argument(
        "--status-dir",
        help="also keep the progress and the result here, for the installer's page "
        "(default: its upload folder, DATA_DIR/update-inbox, when the data directory has one)",
    )
    p.add_argument(
        "--restart-cmd",
        help="command that restarts the box's services (default: "
        "systemctl restart rauc linekeeper-recorder "
        "linekeeper-web)",
    )
    p.add_argument(
        "--web-url",
        default="http://127.0.0.1:80/",
        help="the web UI's HTTP address for the health check (default %(default)s)",
    )
    p.add_argument(
        "--max-wait-idle-s",
        type=float,
        default=4 * 3600.0,
        help="how long to wait for every line to be idle (default 4 h)",
    )
    p.add_argument(
        "--install-timeout-s",
        type=float,
        default=600.0,
        help="how long `rauc install` may take (default 600 s); RAUC is then asked what it did",
    )
    p.add_argument(
        "--install-wait-s",
        type=float,
        default=1800.0,
        help="after that, how long to wait for RAUC to finish writing the slot (default 1800 s)",
    )
    p.add_argument(
        "--health-timeout-s",
        type=float,
        default=120.0,
        help="how long the new slot has to pass its health check (default 120 s)",
    )


class _LateAudit:
    """An audit trail opened for each entry (see :func:`run`)."""

    def __init__(self, data_dir, open_audit):
        self.data_dir = data_dir
        self._open = open_audit

    def append(self, *args, **kwargs):
        with self._open(self.data_dir) as audit:
            return audit.append(*args, **kwargs)


def run(args):
    """Carry out ``linekeeper update``; exit status 0 installed, 1 not, 2 usage."""
    from ..box import open_audit
    from ..control import ControlClient, socket_path
    from .flow import Updater, UpdateSettings
    from .rauc import Rauc
    from .slots import Slots

    for option, value in (
        ("--install-timeout-s", args.install_timeout_s),
        ("--install-wait-s", args.install_wait_s),
    ):
        if not value > 0:  # also NaN
            raise UpdateError("%s must be a number of seconds above 0, not %s" % (option, value))
    rauc = Rauc(timeout_s=args.install_timeout_s)
    if args.once and not args.watch:
        raise UpdateError("--once is for --watch FOLDER: look in the folder once, then exit")
    if args.status:
        return _status(rauc, args.update_dir)
    if not args.bundle and not args.recover and not args.watch and not args.confirm:
        raise UpdateError("give a bundle to install, or --status, --watch, --recover or --confirm")
    if not args.data_dir:
        raise UpdateError("give the box's --data-dir to install an update")
    if args.confirm:
        return _confirm(args.data_dir, args.update_dir, ControlClient(socket_path(args.data_dir)))
    if args.bundle and not os.path.isfile(args.bundle):
        raise UpdateError("no bundle at %s" % args.bundle)
    settings = UpdateSettings(
        data_dir=args.data_dir,
        update_dir=args.update_dir,
        web_url=args.web_url,
        max_wait_idle_s=args.max_wait_idle_s,
        health_timeout_s=args.health_timeout_s,
        install_wait_s=args.install_wait_s,
        status_dir=_status_dir(args),
    )
    if args.restart_cmd:
        settings.restart_cmd = tuple(shlex.split(args.restart_cmd))
    slots = Slots(args.slots_dir, args.current_link, args.update_dir)
    client = ControlClient(socket_path(args.data_dir))
    # The box's own audit trail, signed with its device key like every other writer's,
    # opened when the entry is written: an update may start before the recorder's
    # first start has made that key.
    audit = _LateAudit(args.data_dir, open_audit)
    updater = Updater(
        settings,
        rauc,
        slots,
        client,
        audit,
        on_step=_crash_at(os.environ.get("LINEKEEPER_UPDATE_TEST_KILL_AT")),
    )
    if args.watch:
        return _watch(args, updater)
    if args.recover:
        result = updater.recover(args.report_dir)
        if result is None:
            print("linekeeper: no interrupted update")
            return 0
    else:
        result = updater.run(
            args.bundle, report_dir=args.report_dir or os.path.dirname(os.path.abspath(args.bundle))
        )
    print("linekeeper: update %s: %s" % (result.outcome.replace("_", " "), result.message))
    return 0 if result.ok else 1


def _status_dir(args):
    """Where the installer's page reads the update's progress and result: ``--status-dir``,
    else the data directory's update inbox when it has one, as the page's and a stick's
    updates give it. An update run by hand without it kept them in the update directory
    only: the page said no update ran and took an upload meanwhile. The inbox is never
    made here: made by root, the web UI could not write into it."""
    if args.status_dir:
        return args.status_dir
    from .inbox import inbox_dir

    inbox = inbox_dir(args.data_dir)
    return inbox if os.path.isdir(inbox) else None


def _confirm(data_dir, update_dir, client):
    """``--confirm``: the release now running, installed by hand over an older box's
    data, is kept. Nothing marks such a release good (``linekeeper update`` does, at its
    health check), so the backup its first start took before migrating - clear copies
    of the phonebook, notes and rule patterns among it (docs/card-alone.md) - would stay.

    The recorder does it (:meth:`firmware.box.Box.confirm_release`): it holds the audit
    trail's key and seals the stores left in clear. Refused while an update is under way
    (it confirms itself, or ``--recover`` finishes it) and when the recorder is not
    running; 0 when done or when there was nothing to confirm.
    """
    from ..control import ControlError, RecorderUnavailable
    from .flow import PROGRESS_NAME

    progress = os.path.join(update_dir, PROGRESS_NAME)
    if os.path.exists(progress):
        raise UpdateError(
            "an update is under way (%s): it is marked good by its own health check, or "
            "finished with `linekeeper update --recover`" % progress
        )
    try:
        done = client.call("confirm_release", actor="cli")
    except RecorderUnavailable:
        raise UpdateError(
            "the recorder is not running (no recorder answers on %s, the control socket of the box "
            "in %s): start it (it keeps the audit trail's key and seals what the backup kept in "
            "clear), then confirm" % (client.path, data_dir)
        ) from None
    except ControlError as exc:
        raise UpdateError("the recorder did not confirm the release: %s" % exc) from None
    if not done["dropped"]:
        print("linekeeper: nothing to confirm: %s keeps no backup from before a migration" % data_dir)
        return 0
    print(
        "linekeeper: confirmed: the backup from before the migration (%s) is gone; sealed: %s"
        % (
            ", ".join(done["dropped"]),
            ", ".join("%s %d" % kv for kv in sorted((done["sealed"] or {}).items()))
            or "nothing left in clear",
        )
    )
    return 0


def _watch(args, updater):
    from ..cli import _on_signals
    from .watch import Watcher

    def install(path, report_dir):
        result = updater.run(path, report_dir=report_dir)
        print(
            "linekeeper: update %s: %s: %s"
            % (os.path.basename(path), result.outcome.replace("_", " "), result.message),
            flush=True,
        )
        return result

    watcher = Watcher(args.watch, args.update_dir, install, stable_s=0 if args.once else 2.0)
    # A stop (the stick's unit stopped as the stick is pulled, Ctrl-C) ends the copy or
    # the wait for idle lines with a report, nothing switched; before, it killed the
    # update without one, and the stick put back did nothing.
    stop = _on_signals(lambda: None)
    updater.stopped = stop.is_set
    if args.once:
        if not os.path.isdir(args.watch):
            raise UpdateError("%s is not a folder this box can read (was the stick pulled?)" % args.watch)
        results = watcher.poll()
        if not watcher.found:
            return _nothing_to_take(watcher, args.watch)
        return 0 if all(r.ok for r in results) else 1
    watcher.run(stop)
    return 0


def _nothing_to_take(watcher, folder):
    """``--once`` found no bundle at the top of ``folder``: said; a bundle put in a folder on
    the stick is named in a report on it, status 1. Silent, a technician's stick with its
    bundle in a folder looked like an update that did nothing. Nothing at all is status 0:
    the upload folder's service (linekeeper-update-inbox.path) runs this at every change
    of that folder, and failing each time would stop systemd starting it."""
    from ..storage.fsutil import atomic_write
    from .flow import REPORT_NAME

    misplaced = watcher.misplaced()
    if not misplaced:
        print("linekeeper: update: no update bundle (*.raucb) at the top of %s" % folder, file=sys.stderr)
        return 0
    text = (
        "Linekeeper update: nothing was installed.\n\n"
        "The box takes an update bundle (*.raucb) only from the top of the stick, not from a folder "
        "on it. Found in a folder: %s.\nMove the bundle to the top of the stick and put the stick "
        "back in.\n" % ", ".join(misplaced)
    )
    print(
        "linekeeper: update: " + text.splitlines()[0] + " " + " ".join(text.splitlines()[2:]), file=sys.stderr
    )
    try:
        atomic_write(os.path.join(folder, REPORT_NAME), text.encode(), mode=0o644)
    except OSError as exc:
        print("linekeeper: update: the report could not be written on the stick: %s" % exc, file=sys.stderr)
    return 1


def _crash_at(step):
    """Fault injection for the kill-matrix tests: SIGKILL ourselves as ``step`` starts."""
    if not step:
        return None

    def on_step(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step


def _status(rauc, update_dir):
    """``--status``: RAUC's slots and the last update's outcome. RAUC not answering (its
    service stopped) is said in one line, and the last update's outcome still shown, from
    the box's own record: it stopped the command with RAUC's D-Bus error alone, and status 2,
    the one place a technician looks for what the last update did."""
    try:
        status = rauc.status()
    except UpdateError as exc:
        status = None
        print(
            "RAUC does not answer, so the slots cannot be shown (%s): is its service running? "
            "(systemctl status rauc)" % exc
        )
    if status is not None:
        try:
            operation, last_error = rauc.operation()
            print(
                "RAUC: %s%s" % (operation, "; its last install failed: %s" % last_error if last_error else "")
            )
        except UpdateError as exc:
            print("RAUC: %s" % exc)
        print("booted slot (RAUC): %s; next: %s" % (status.get("booted"), status.get("boot_primary")))
        for name, slot in sorted(status["slots"].items()):
            bundle = slot.get("slot_status", {}).get("bundle", {})
            print(
                "  %s (%s): %s, version %s"
                % (name, slot.get("bootname"), slot.get("boot_status"), bundle.get("version") or "-")
            )
    try:
        with open(os.path.join(update_dir, "last-result.json")) as f:
            last = json.load(f)
        print("last update: %s %s: %s" % (last["bundle"], last["outcome"], last["message"]))
    except FileNotFoundError:
        print("last update: none")
    return 0 if status is not None else 1
