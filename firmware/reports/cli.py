"""``linekeeper report``: a report from a data directory, as JSON, CSV or PDF."""

import os

from ..argtypes import DATA_DIR_HELP
from ..errors import LinekeeperError, ReportError
from .formats import FORMATS, audited, render


def add_arguments(p):
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--from", dest="first", required=True, metavar="DATE", help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", required=True, metavar="DATE", help="last day, included (YYYY-MM-DD)")
    p.add_argument("--line", type=int, action="append", help="report on this line only (repeat for several)")
    p.add_argument("--format", choices=FORMATS, default="json", help="json (the default), csv or pdf")
    p.add_argument(
        "--tz", help="time zone of the days and hours (default: the business hours' zone, else UTC)"
    )
    p.add_argument(
        "--out", required=True, help="file to write, named for --format (.json, .csv, .pdf), or - for stdout"
    )
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.add_argument(
        "--user",
        default="admin",
        help="who asks for it: a supervisor (their lines only) or an auditor; audited",
    )


def run(args):
    """Write the report, audited as the web UI's download is (``report``, with its lines,
    period and callback list: :func:`.formats.audited`), before it is written; a failure or a
    stop after the entry is audited after it (``failed``). Refused, with nothing written,
    when ``--user`` may not see it (as on the web: a supervisor sees the lines granted to
    them, an auditor every line; a box not set up, the key slot's owner), the password is
    wrong (refusals audited), or the audit trail cannot take the entry."""
    from firmware.signing import run_dir
    from firmware.storage.fieldseal import load_field_cipher

    from .. import cli, datadir
    from ..alarmlog import AlarmLog
    from ..config import load_config
    from .source import ReportSource

    if not os.path.exists(os.path.join(args.data_dir, "calls.db")):
        raise LinekeeperError("no call log in %s" % args.data_dir)
    if args.out != "-":
        cli._check_new_file(args.out, "a report")  # before it is audited: not an entry, then a refusal
        said = "a %s report (--format %s)" % (args.format.upper(), args.format)
        cli._check_file_name(args.out, "." + args.format, said, "--out")
    config = load_config(args.data_dir)
    alarms = AlarmLog.open_existing(args.data_dir)
    try:
        source = ReportSource(
            args.data_dir,
            country=config.country,
            tz=args.tz or None,  # None: the box's zone, as its pages date
            alarms=alarms,
            cipher=load_field_cipher(args.data_dir, run_dir=run_dir(), create=False),
            wall_us=cli._wall_us,  # a simulated box's clock on its data (firmware/simtime.py)
        )
        period = source.period(args.first, args.last)
        # The box's lines, those with no call yet too (the call log knows only the others).
        from ..box import configured_lines

        n = source.n_lines = max(configured_lines(args.data_dir) or 0, source.lines())
        for line in args.line or ():
            if not 1 <= line <= n:
                raise ReportError("line %d does not exist: the box has lines 1 to %d" % (line, n))
        with _audit_trail(args) as audit:
            lines, own_lines = _allowed(args, audit, n)
            # A report of some lines counts the playbacks and exports of calls on them alone,
            # as the web's report of one line, or a supervisor's, does; one of every line
            # counts every entry.
            report = source.report(period, lines, access_of_lines=own_lines or bool(args.line))
            # Said on standard error below, and in the PDF as the web's says it.
            note = period.not_over(source.wall_us())
            site = datadir.site_settings(args.data_dir) or {}
            names = {x.get("line"): x.get("name") for x in site.get("lines") or () if isinstance(x, dict)}
            data = render(report, args.format, not_over=note, line_names=names)
            said = dict(audited(report, period, lines or range(1, n + 1)), format=args.format)
            _write_audited(args, audit, data, said)
    finally:
        if alarms is not None:
            alarms.close()
    import sys

    if note:
        print("linekeeper: %s" % note, file=sys.stderr)
    if args.out != "-":
        print("wrote the %s report for %s to %s" % (args.format, period.label(), args.out))
    return 0


def _audit_trail(args):
    """The box's audit trail, open for the report's entry.

    :raises LinekeeperError: it cannot be opened: nothing is written"""
    import sqlite3

    from ..box import open_audit
    from ..datadir import storage_error

    try:
        return open_audit(args.data_dir)
    except (OSError, sqlite3.Error) as exc:
        raise LinekeeperError(
            "the report was not written: it could not be audited (%s)" % storage_error(exc, "audit trail")
        ) from None


def _allowed(args, audit, n_lines, every_line=("auditor",), what="reports", refused_as=None):
    """``(lines, own)``: the lines ``--user`` may have the report of (None: every line),
    and whether they are the lines granted to a supervisor (not an auditor, nor one of
    ``every_line``'s roles), whose report counts the playbacks and exports of calls on them
    alone, as on the web. A refusal is audited (``report`` with ``refused``, and
    ``refused_as``'s details).

    :raises LinekeeperError: not a supervisor nor of ``every_line``'s roles, a line not
        granted, no line granted, a disabled account or a wrong password"""
    from .. import cli

    name = _file_said(args)
    try:
        # The password first: no refusal says what an account is before it is taken.
        cli._prove(args)  # the password says --user asks for it
        account = cli._account(args.data_dir, args.user)
        lines, own = getattr(args, "line", None) or None, False
        if account is not None and not any(account.has(r) for r in every_line):
            if not account.has("supervisor"):
                roles = " or ".join(("an " if r[0] in "aeiou" else "a ") + r for r in every_line)
                raise LinekeeperError(
                    "%s is not a supervisor or %s: only they have %s" % (args.user, roles, what)
                )
            granted = [n for n in account.lines if n <= n_lines]
            if not granted:
                raise LinekeeperError("no lines are granted to %s: ask an installer" % args.user)
            refused = [n for n in lines or () if n not in granted]
            if refused:
                raise LinekeeperError(
                    "line %d is not granted to %s: choose one of %s"
                    % (refused[0], args.user, ", ".join(map(str, granted)))
                )
            lines, own = list(lines or granted), True
    except LinekeeperError as exc:
        # By the name typed only when an account has it: the password may not be checked yet.
        actor, named, why = cli._refused_by(args.data_dir, args.user, str(exc))
        details = dict(refused_as or {}, refused=why, file=name, via="cli", **named)
        audit.append(actor, "report", None, details, cli._wall_us())
        raise LinekeeperError("the report was not written: %s" % exc) from None
    return lines, own


def _file_said(args):
    """Where the report goes, as its entry says it: the file given, or ``stdout``."""
    return "stdout" if args.out == "-" else args.out


def _write_audited(args, audit, data, said, name="report", what="a report"):
    """Audit the report (``said``: its format, lines, period and callback list, or what else
    the command ``name`` wrote, ``what``: "the year in review"), then write ``data`` to
    ``--out``, never over a file (one made there meanwhile is refused, as at the start). A
    write that fails or is stopped after the entry is audited again, with ``failed``: a
    breach's scope pairs the two and counts no copy taken.

    :raises LinekeeperError: the entry could not be made (nothing written), or the file
        could not be written
    :raises Stopped: Ctrl-C after the entry (or as it was appended: delivered once it is
        made), before the file was whole"""
    import sqlite3
    import sys

    from firmware.storage import fsutil
    from firmware.storage.held import SignalsHeld

    from .. import cli
    from ..datadir import storage_error

    details = dict(said, file=_file_said(args), via="cli")

    def failed(why):
        audit.append(args.user, "report", None, dict(details, failed=why), cli._wall_us())

    with SignalsHeld() as held:
        try:
            # Before the file is written: a copy the trail does not show is never made.
            audit.append(args.user, "report", None, details, cli._wall_us())
        except (OSError, sqlite3.Error) as exc:
            raise LinekeeperError(
                "the report was not written: it could not be audited (%s)" % storage_error(exc, "audit trail")
            ) from None
        try:
            # A Ctrl-C as the entry was appended comes here, once it is made: a stop after the
            # entry, audited as one. Raised out of the append, it left the report as taken.
            held.release()
            if args.out == "-":
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                fsutil.write_new(args.out, data, mode=0o600)
        except FileExistsError:  # made there since the check at the start: kept, never replaced
            failed("not written: %s" % cli._MADE_MEANWHILE)
            raise LinekeeperError(cli._there_already(args.out, what)) from None
        except OSError as exc:  # write_new: nothing of it left
            said_why = exc.strerror or str(exc)
            failed("not written: %s" % said_why)
            raise LinekeeperError("cannot write %s: %s" % (args.out, said_why)) from None
        except KeyboardInterrupt as exc:
            if args.out != "-" and _holds(args.out, data):
                raise  # written whole before the stop: the copy was made, as its entry says
            failed("stopped")
            where = "standard output" if args.out == "-" else args.out
            raise cli.Stopped(
                "%s stopped after its audit entry was made, before %s was whole (%s): the audit "
                "trail shows the stop; run it again to make the file"
                % (
                    name,
                    where,
                    "part of it may have been written there" if args.out == "-" else "it is as it was",
                )
            ) from exc


def _holds(path, data):
    """Whether the file ``path`` holds ``data`` (bytes), whole."""
    try:
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == bytes(data)
    except OSError:
        return False


def add_year_arguments(p):
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        help="first day (YYYY-MM-DD; default: the last 12 whole months)",
    )
    p.add_argument("--to", dest="last", metavar="DATE", help="last day, included (YYYY-MM-DD)")
    p.add_argument("--format", choices=("pdf", "json"), default="pdf", help="pdf (the default) or json")
    p.add_argument("--out", required=True, help="file to write, ending as --format (.pdf, .json)")
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.add_argument(
        "--user",
        default="admin",
        help="who asks for it: an installer, an auditor, or a supervisor (their lines only); audited",
    )


def run_year(args):
    """Write the year in review (:mod:`.yearreview`), audited as the web UI's PDF is
    (``report`` of the ``year_review`` document, ``"personal_data": false``: counts only),
    before it is written, its failure after it, as :func:`run`'s; nothing is written when
    it cannot be made, ``--user`` may not have it (a supervisor has that of their lines, as
    on the web), or the audit trail cannot take the entry."""
    import datetime as dt

    from firmware.signing import run_dir
    from firmware.storage.audit import AuditLog
    from firmware.storage.fieldseal import load_field_cipher

    from .. import datadir
    from ..alarmlog import AlarmLog
    from ..config import load_config
    from ..policy.retention import retention_words
    from . import yearreview
    from .source import ReportSource

    if not os.path.exists(os.path.join(args.data_dir, "calls.db")):
        raise LinekeeperError("no call log in %s — nothing was written" % args.data_dir)
    from .. import cli

    cli._check_new_file(args.out, "the year in review")
    said = "the year in review in %s (--format %s)" % (args.format.upper(), args.format)
    cli._check_file_name(args.out, "." + args.format, said, "--out")
    config = load_config(args.data_dir)
    cipher = load_field_cipher(args.data_dir, run_dir=run_dir(), create=False)
    # The box's zone; a simulated box's clock on its data (firmware/simtime.py).
    source = ReportSource(args.data_dir, country=config.country, cipher=cipher, wall_us=cli._wall_us)
    today = dt.datetime.fromtimestamp(
        source.wall_us() / 1e6, source.period("2000-01-01", "2000-01-01").zone
    ).date()
    period = yearreview.review_period(args.first, args.last, source.tz, today)
    from ..box import configured_lines

    source.n_lines = max(configured_lines(args.data_dir) or 0, source.lines())
    site = datadir.site_settings(args.data_dir) or {}
    site = dict(
        site, dpia_reviewed=datadir.site_value(args.data_dir, "dpia_reviewed") or site.get("dpia_reviewed")
    )
    accounts = datadir.account_lines(args.data_dir) or {}
    alarms = AlarmLog.open_existing(args.data_dir)
    audit_db = os.path.join(args.data_dir, "audit.db")
    audit = (
        AuditLog(audit_db, os.path.join(args.data_dir, "audit.head"), readonly=True, cipher=cipher)
        if os.path.exists(audit_db)
        else None
    )
    source.alarms = alarms
    from ..cli import Progress
    from ..rights import supervised_lines

    progress = Progress("linekeeper: year-review: %d/%d days of calls read")
    said = {
        "document": "year_review",
        "format": args.format,
        "period": "%s/%s" % (period.first.isoformat(), period.last.isoformat()),
        "personal_data": False,
    }
    trail = None
    try:
        trail = _audit_trail(args)
        lines, own = _allowed(
            args, trail, source.n_lines, ("auditor", "installer"), "the year in review", said
        )
        review = yearreview.gather(
            source,
            period,
            audit=audit,
            roles_of={name: roles for name, (roles, _) in accounts.items()},
            site=site,
            retention=retention_words(config.policy.retention),
            todo=None,  # the checklist reads the running box: its web page has it
            today=today,
            region=datadir.site_region(args.data_dir) or "ENG",
            progress=progress,
            # A supervisor's of the lines granted to them, as the web's (None: every line).
            lines=lines if own else None,
            supervised=supervised_lines(accounts) if own else None,
        )
        progress.end()
        data = yearreview.to_pdf(review) if args.format == "pdf" else yearreview.to_json(review)
        if review["not_over"]:
            import sys

            print("linekeeper: %s" % review["not_over"], file=sys.stderr)
        _write_audited(args, trail, data, said, "year-review", "the year in review")
    except ReportError as exc:
        raise LinekeeperError("%s — nothing was written" % exc) from None
    finally:
        progress.end()
        if alarms is not None:
            alarms.close()
        if audit is not None:
            audit.close()
        if trail is not None:
            trail.close()
    print("wrote the year in review (%s) for %s to %s" % (args.format, period.label(), args.out))
    return 0
