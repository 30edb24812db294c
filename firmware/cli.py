"""The ``linekeeper`` command."""

import argparse
import logging
import os
import signal
import sys
import threading

from .errors import LinekeeperError

log = logging.getLogger("linekeeper")


def _speed(text):
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be 'max' or a positive number, not %r" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be 'max' or a positive number, not %r" % text)
    return value


def _load_scenario(name):
    from board.sim.scenario import load_scenario
    return load_scenario(name)


def cmd_sim(args):
    """Run the box headless on a scenario until it ends."""
    from .box import open_sim_box
    from .config import load_config_file
    scenario = _load_scenario(args.scenario)
    config = load_config_file(args.config) if args.config else None
    box = open_sim_box(scenario, args.data_dir, speed=args.speed, config=config)
    if not box.recorder.enabled:
        print("linekeeper: %s is not initialised (`linekeeper init`): calls are logged but no "
              "audio is recorded" % args.data_dir, file=sys.stderr)
    stop = _on_signals(box.clock.stop)
    box.start()
    try:
        finished = box.board.run()
        n_calls = len(box.calllog.calls())
    finally:
        box.stop()
    if not finished or stop.is_set():
        print("linekeeper: stopped before the scenario ended", file=sys.stderr)
        return 1
    print("linekeeper: scenario done, %d calls in the log" % n_calls, file=sys.stderr)
    return 0


def cmd_calls(args):
    """Print the call log."""
    from .calllog import CallLog, dumps
    from .clock import SimClock
    path = os.path.join(args.data_dir, "calls.db")
    if not os.path.exists(path):
        raise LinekeeperError("no call log in %s (run the box with --data-dir %s first)"
                              % (args.data_dir, args.data_dir))
    calllog = CallLog(path, SimClock())
    try:
        for call in calllog.calls():
            if args.json:
                print(dumps(call))
            else:
                print("%5d  line %d  %-3s  %s  %-8s  %s %s" % (
                    call["id"], call["line"], call["direction"], call["started_at"],
                    "answered" if call["answered"] else "-", call["number"] or "",
                    call["name"] or ""))
    finally:
        calllog.close()
    return 0


def cmd_linecheck(args):
    """Report what each line's hub, ATA or exchange was seen to do (docs/adapters.md)."""
    from .linecheck import report
    if not os.path.isdir(args.data_dir):
        raise LinekeeperError("no data directory %s" % args.data_dir)
    print(report(args.data_dir, as_json=args.json))
    return 0


def _read_password(path):
    try:
        with open(path, encoding="utf-8") as f:
            password = f.readline().rstrip("\r\n")
    except OSError as exc:
        raise LinekeeperError("cannot read the password file %s: %s" % (path, exc.strerror))
    if not password:
        raise LinekeeperError("the password file %s is empty" % path)
    return password


def _wall_us():
    import time
    return time.time_ns() // 1000


def cmd_init(args):
    """Create the box's recording keys and the first key slot."""
    from .box import open_audit
    from .fsutil import make_private_dir
    from .keystore import KeyStore
    password = _read_password(args.password_file)
    make_private_dir(args.data_dir)
    recovery = KeyStore(args.data_dir).initialise(args.user, password)
    with open_audit(args.data_dir) as audit:
        audit.append(args.user, "init", None, {"via": "cli"}, _wall_us())
    print("Linekeeper is initialised in %s for user %r." % (args.data_dir, args.user))
    print("Recovery key (shown once; store it somewhere safe, away from the box):")
    print()
    print("    " + recovery)
    print()
    return 0


def _unlock(args):
    from .keystore import KeyStore
    store = KeyStore(args.data_dir)
    return store.unlock(args.user, _read_password(args.password_file))


def cmd_export(args):
    """Export one call's recording, audited (refusals too).

    Refused, with nothing written, when the password is wrong, the recording
    fails any check ``verify`` makes, or the audit trail is damaged (an
    export that cannot be audited reliably is not made).
    """
    from .box import open_audit
    from .recordings import RecordingStore
    if not os.path.exists(os.path.join(args.data_dir, "calls.db")):
        raise LinekeeperError("no call log in %s" % args.data_dir)
    store = RecordingStore(args.data_dir)
    audit = open_audit(args.data_dir)
    target = "call:%d" % args.call_id
    key = row = None
    try:
        try:
            broken = audit.verify()
            if broken:
                raise LinekeeperError(
                    "the audit trail is damaged (%s): exports are refused until it has been "
                    "looked into; `linekeeper verify` lists every problem" % "; ".join(broken))
            key = _unlock(args)
            row = store.for_call(args.call_id)
            if row is None or row["state"] == "deleted":
                raise LinekeeperError("call %d has no recording" % args.call_id)
            try:
                store.export(row["id"], key, args.out)
            except OSError as exc:
                raise LinekeeperError("cannot write %s: %s" % (args.out, exc.strerror or exc))
        except LinekeeperError as exc:
            details = {"refused": str(exc), "file": os.path.basename(args.out)}
            if row is not None:
                details["recording"] = row["id"]
            audit.append(args.user, "export", target, details, _wall_us())
            raise LinekeeperError("call %d not exported: %s" % (args.call_id, exc)) from exc
        audit.append(args.user, "export", target,
                     {"recording": row["id"], "file": os.path.basename(args.out),
                      "state": row["state"]}, _wall_us())
    finally:
        if key is not None:
            key.forget()
        store.close()
        audit.close()
    print("exported call %d (%s) to %s" % (args.call_id, row["state"], args.out))
    return 0


def cmd_verify(args):
    """Check every recording and the audit trail; exit 1 listing each problem."""
    from .box import open_audit
    from .errors import WrongPasswordError
    from .recordings import RecordingStore
    if not os.path.exists(os.path.join(args.data_dir, "calls.db")):
        raise LinekeeperError("no call log in %s" % args.data_dir)
    problems, key = [], None
    if args.password_file:
        try:
            key = _unlock(args)
        except WrongPasswordError as exc:
            problems.append("recording key: %s: recordings checked without it" % exc)
    store = RecordingStore(args.data_dir)
    audit = open_audit(args.data_dir)
    try:
        problems += store.verify(key) + ["audit trail: " + p for p in audit.verify()]
        n = len([r for r in store.all() if r["state"] != "deleted"])
    finally:
        if key is not None:
            key.forget()
        store.close()
        audit.close()
    for problem in problems:
        print(problem)
    if problems:
        print("%d problem(s) found" % len(problems), file=sys.stderr)
        return 1
    print("%d recordings%s and the audit trail are intact" % (
        n, " (authenticated)" if key is not None else ""))
    return 0


def cmd_config(args):
    """Export the box's configuration to FILE, or import it (validated whole; audited)."""
    import json

    from .box import open_audit
    from .configio import export_config, import_config
    from .fsutil import atomic_write
    if args.action == "export":
        doc = export_config(args.data_dir)
        text = json.dumps(doc, indent=2) + "\n"
        try:
            atomic_write(args.file, text.encode("utf-8"), mode=0o600)
        except OSError as exc:
            raise LinekeeperError("cannot write %s: %s" % (args.file, exc.strerror or exc))
        print("exported the configuration of %s to %s" % (args.data_dir, args.file))
        return 0
    try:
        with open(args.file, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise LinekeeperError("cannot read %s: %s" % (args.file, exc.strerror or exc))
    except ValueError as exc:
        raise LinekeeperError("%s is not valid JSON (%s): nothing was changed" % (args.file, exc))
    if not os.path.isdir(args.data_dir):
        raise LinekeeperError("no data directory %s" % args.data_dir)
    from .errors import ConfigError
    try:
        written = import_config(args.data_dir, doc, source=args.file)
    except ConfigError as exc:
        raise LinekeeperError("%s — nothing was changed" % exc) from None
    with open_audit(args.data_dir) as audit:
        audit.append(args.user, "config_change", "config",
                     {"via": "cli", "imported_from": os.path.basename(args.file),
                      "sections": written}, _wall_us())
    print("imported %s into %s (%s); a running box uses it after a restart"
          % (args.file, args.data_dir, ", ".join(written)))
    return 0


def cmd_run(args):
    """Run the box with its web UI until stopped."""
    from web.server import start_web
    from web.setupcode import setup_code_for

    from .box import board_for, open_rpi_box, open_sim_box
    board_name, config = board_for(args.data_dir, args.board)
    if board_name == "sim":
        scenario = _load_scenario(args.scenario)
        box = open_sim_box(scenario, args.data_dir, speed=args.speed, config=config)
    else:
        box = open_rpi_box(args.data_dir, config)
    host = args.host or ("0.0.0.0" if board_name == "rpi" else "127.0.0.1")
    server = start_web(box, host=host, https_port=args.https_port, http_port=args.port)
    stopping = _on_signals(lambda: box.clock.stop() if board_name == "sim" else None)
    print("linekeeper: %s board, %d lines; web UI on %s (http://%s:%d/ redirects there)" % (
        board_name, box.board.lines, server.url, host, server.http_port), flush=True)
    print("linekeeper: the box's certificate has SHA-256 fingerprint %s"
          % server.certificate.fingerprint, flush=True)
    code = setup_code_for(args.data_dir)
    if code is not None:
        print("linekeeper: not set up yet: open %s and enter the setup code %s"
              % (server.url, code), flush=True)
    try:
        box.start()
        if board_name == "sim":
            finished = box.board.run()
            while finished and args.loop and not stopping.is_set():
                box.board.replay()
                finished = box.board.run()
            if finished and not stopping.is_set():
                print("linekeeper: the scenario has ended; the box stays up (Ctrl-C to stop)",
                      flush=True)
        stopping.wait()
    finally:
        box.stop()
        server.stop()
    return 0


def _on_signals(action):
    """Run ``action`` on SIGINT/SIGTERM; returns an Event set when that happens."""
    stopping = threading.Event()

    def handler(signum, frame):
        stopping.set()
        action()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    return stopping


def build_parser():
    parser = argparse.ArgumentParser(prog="linekeeper", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sim", help="run the box headless on a scenario file, then exit")
    p.add_argument("scenario", help="scenario file (JSON or TOML), or 'demo'")
    p.add_argument("--data-dir", required=True, help="where the box keeps its data")
    p.add_argument("--speed", type=_speed, default=None,
                   help="'max' (default: as fast as possible) or simulated seconds per second")
    p.add_argument("--config", help="box configuration (as config.json) to run with, instead of "
                   "the scenario's \"config\" or DATA_DIR/config.json")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("run", help="run the box and its web UI until stopped")
    p.add_argument("--board", choices=("sim", "rpi"),
                   help="override LINEKEEPER_BOARD and the configured board")
    p.add_argument("--scenario", default="demo", help="scenario for the simulated board")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--speed", type=_speed, default=1.0)
    p.add_argument("--loop", action="store_true",
                   help="play the scenario again each time it ends (the demo of `make run`)")
    p.add_argument("--host", help="address to serve the web UI on (default: 127.0.0.1 on the "
                                  "simulated board, every address (0.0.0.0) on the box)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (redirects to HTTPS)")
    p.add_argument("--https-port", type=int, default=8443, help="HTTPS port of the web UI")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("init", help="create the box's recording keys and first key slot")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--password-file", required=True, help="file whose first line is the password")
    p.add_argument("--user", default="admin", help="the key slot's user name (default: admin)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("export", help="export a call's recording (audited)")
    p.add_argument("call_id", type=int)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--user", default="admin")
    p.add_argument("--out", required=True, help="a .wav or .ogg file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="check every recording and the audit trail")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--password-file", help="also authenticate every chunk of every recording")
    p.add_argument("--user", default="admin")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("config", help="export or import the box's configuration (no secrets)")
    p.add_argument("action", choices=("export", "import"))
    p.add_argument("file", help="the JSON file to write (export) or read (import)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--user", default="cli", help="who imports, for the audit trail")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("calls", help="print the call log")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--json", action="store_true", help="one JSON object per call")
    p.set_defaults(func=cmd_calls)

    p = sub.add_parser("linecheck", help="report each line's observed adapter behaviour "
                                         "(caller ID, clear signal, ringing) and the profiles "
                                         "it fits")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=cmd_linecheck)

    p = sub.add_parser("analyze", help="find caller ID, DTMF and tones in a WAV file")
    from . import analyze
    analyze.add_arguments(p)
    p.set_defaults(func=analyze.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    # Everything the box writes (call log, recordings, keys, audit) is private.
    os.umask(0o077)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0
    except LinekeeperError as exc:
        print("linekeeper: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
