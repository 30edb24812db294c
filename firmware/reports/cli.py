"""``linekeeper report``: a report from a data directory, as JSON, CSV or PDF."""

import os

from ..errors import LinekeeperError, ReportError
from .formats import FORMATS, render


def add_arguments(p):
    p.add_argument("--data-dir", required=True)
    p.add_argument("--from", dest="first", required=True, metavar="DATE", help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", required=True, metavar="DATE", help="last day, included (YYYY-MM-DD)")
    p.add_argument("--line", type=int, action="append", help="report on this line only (repeat for several)")
    p.add_argument("--format", choices=FORMATS, default="json")
    p.add_argument(
        "--tz", help="time zone of the days and hours (default: the business hours' zone, else UTC)"
    )
    p.add_argument("--out", required=True, help="file to write, or - for standard output")


def run(args):
    """Write the report; nothing is written when it cannot be made."""
    from firmware.signing import run_dir
    from firmware.storage.fieldseal import load_field_cipher
    from firmware.storage.fsutil import atomic_write

    from ..alarmlog import AlarmLog
    from ..config import load_config
    from .source import ReportSource

    if not os.path.exists(os.path.join(args.data_dir, "calls.db")):
        raise LinekeeperError("no call log in %s" % args.data_dir)
    config = load_config(args.data_dir)
    alarms = AlarmLog.open_existing(args.data_dir)
    try:
        source = ReportSource(
            args.data_dir,
            country=config.country,
            tz=args.tz or None,  # None: the box's zone, as its pages date
            alarms=alarms,
            cipher=load_field_cipher(args.data_dir, run_dir=run_dir(), create=False),
        )
        period = source.period(args.first, args.last)
        # The box's lines, those with no call yet too (the call log knows only the others).
        from ..box import configured_lines

        n = source.n_lines = max(configured_lines(args.data_dir) or 0, source.lines())
        for line in args.line or ():
            if not 1 <= line <= n:
                raise ReportError("line %d does not exist: the box has lines 1 to %d" % (line, n))
        # A report of some lines counts the playbacks and exports of calls on them alone,
        # as the web's report of one line does; one of every line counts every entry.
        report = source.report(period, args.line, access_of_lines=bool(args.line))
        data = render(report, args.format)
    finally:
        if alarms is not None:
            alarms.close()
    import sys
    import time

    note = period.not_over(int(time.time() * 1e6))
    if note:
        print("linekeeper: %s" % note, file=sys.stderr)
    if args.out == "-":
        sys.stdout.buffer.write(data)
        return 0
    try:
        atomic_write(args.out, data, mode=0o600)
    except OSError as exc:
        raise LinekeeperError("cannot write %s: %s" % (args.out, exc.strerror or exc)) from None
    print("wrote the %s report for %s to %s" % (args.format, period.label(), args.out))
    return 0


def add_year_arguments(p):
    p.add_argument("--data-dir", required=True)
    p.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        help="first day (YYYY-MM-DD; default: the last 12 whole months)",
    )
    p.add_argument("--to", dest="last", metavar="DATE", help="last day, included (YYYY-MM-DD)")
    p.add_argument("--format", choices=("pdf", "json"), default="pdf")
    p.add_argument("--out", required=True, help="file to write")


def run_year(args):
    """Write the year in review (:mod:`.yearreview`); nothing is written when it cannot be made."""
    import datetime as dt

    from firmware.signing import run_dir
    from firmware.storage.audit import AuditLog
    from firmware.storage.fieldseal import load_field_cipher
    from firmware.storage.fsutil import atomic_write

    from .. import datadir
    from ..alarmlog import AlarmLog
    from ..config import load_config
    from ..policy.retention import retention_words
    from . import yearreview
    from .source import ReportSource

    if not os.path.exists(os.path.join(args.data_dir, "calls.db")):
        raise LinekeeperError("no call log in %s — nothing was written" % args.data_dir)
    if os.path.isdir(args.out):
        raise LinekeeperError("--out %s is a folder: give the name of the file to write" % args.out)
    config = load_config(args.data_dir)
    cipher = load_field_cipher(args.data_dir, run_dir=run_dir(), create=False)
    source = ReportSource(args.data_dir, country=config.country, cipher=cipher)  # the box's zone
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

    progress = Progress("linekeeper: year-review: %d/%d days of calls read")
    try:
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
        )
    except ReportError as exc:
        raise LinekeeperError("%s — nothing was written" % exc) from None
    finally:
        progress.end()
        if alarms is not None:
            alarms.close()
        if audit is not None:
            audit.close()
    data = yearreview.to_pdf(review) if args.format == "pdf" else yearreview.to_json(review)
    if review["not_over"]:
        import sys

        print("linekeeper: %s" % review["not_over"], file=sys.stderr)
    try:
        atomic_write(args.out, data, mode=0o600)
    except OSError as exc:
        raise LinekeeperError("cannot write %s: %s" % (args.out, exc.strerror or exc)) from None
    print("wrote the year in review (%s) for %s to %s" % (args.format, period.label(), args.out))
    return 0
