"""Reports on screen (with SVG charts) and as CSV, PDF or JSON downloads.

Supervisors see the lines granted to them; auditors every line. The figures
on the page and in every download come from one report dict
(:func:`firmware.reports.compute.build_report`) through one table builder
(:func:`firmware.reports.formats.tables`), so CSV, PDF and screen agree.
A download holds callers' numbers (the callback list) and names the accounts that
played or exported recordings: it is audited as ``report``, with how many numbers its
callback list held (``callers``), which a breach's scope counts
(:mod:`firmware.breachscope`). The report on screen shows the same: each one shown is audited
as ``list_viewed`` of ``report``, with its lines, period and ``callers``; a form refused
shows no report and writes none. Both entries name the callback list's calls too (``calls``:
each entry's last missed call, up to :data:`firmware.reports.formats.AUDITED_CALLS_MAX`), so
that a breach's scope counts the report's callers as distinct people. ``linekeeper report``
writes the same entry (:func:`firmware.reports.formats.audited`).
"""

import datetime as dt

from flask import Blueprint, Response, abort, g, render_template, request
from markupsafe import Markup

from firmware.errors import ReportError
from firmware.reports import svg
from firmware.reports.formats import FORMATS, audited, render, report_title, tables
from firmware.reports.period import MAX_DAYS
from firmware.reports.tables import outages_note, running_note

from ..security import as_sentence, audit, form_errors, lk, roles, whole_number

bp = Blueprint("reports", __name__)
MIME = {"json": "application/json", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


def _source():
    source = lk().services.reports
    if source is None:
        abort(404)
    return source


def _allowed_lines(n_lines):
    if g.user.has("auditor"):
        return list(range(1, n_lines + 1))
    return [n for n in g.user.lines if n <= n_lines]


def _access_of_lines(values):
    """Whether the report's playbacks and exports by user count only those of calls on its
    lines (the entries' ``line``): a supervisor's always, as their year in review counts
    them (another line's are its own supervisor's to see), and one line's; an auditor's
    report of every line counts every entry, one that names no line too."""
    return not g.user.has("auditor") or bool(values["line"])


def _today(source):
    return dt.datetime.fromtimestamp(
        lk().services.wall_us() / 1e6, source.period("2000-01-01", "2000-01-01").zone
    ).date()


def _request(source):
    """``(period, lines, values, errors)`` from the query string; defaults: the last 7 days."""
    today = _today(source)
    values = {
        "from": request.args.get("from") or (today - dt.timedelta(days=7)).isoformat(),
        "to": request.args.get("to") or (today - dt.timedelta(days=1)).isoformat(),
        "line": request.args.get("line", ""),
    }
    errors, period = {}, None
    try:
        period = source.period(values["from"], values["to"])
    except ReportError as exc:
        errors[wrong_day(values)] = as_sentence(exc)
    allowed = _allowed_lines(source.lines())
    lines = allowed
    if values["line"]:
        line = whole_number(values["line"])
        if line not in allowed:
            # An auditor has no lines of their own: they report on the box's.
            whose = "the box's" if g.user.has("auditor") else "your"
            errors["line"] = "Choose one of %s lines: %s." % (whose, ", ".join(map(str, allowed)))
        else:
            lines = [line]
    if not lines:
        errors["line"] = "No lines are granted to you: ask an installer."
    return period, lines, values, errors


def _since_first_start(source, report):
    """The days from the box's first start to today, when the page was opened with no days
    chosen and its default (the last 7 days to yesterday) is wholly before that start: a box
    set up this week opens its Reports on its own days, not on a week of nothing. None
    otherwise (days chosen are kept as asked)."""
    if request.args.get("from") or request.args.get("to") or not report["running"]["before_first_start"]:
        return None
    zone = source.period("2000-01-01", "2000-01-01").zone
    first = dt.datetime.fromtimestamp(report["running"]["first_start_us"] / 1e6, zone).date()
    today = _today(source)
    if first > today:  # a first start dated after today (a clock set back): as it was
        return None
    return source.period(first.isoformat(), today.isoformat())


def wrong_day(values):
    """The field a period refused is said beside (forms.js marks it and takes the keyboard
    there): ``from`` or ``to`` when that one is no date (left empty too), ``to`` when it is
    before ``from`` or too far after it; ``range`` for anything else (the box's zone). The
    year in review's form says its refusals by it too."""
    days = []
    for name in ("from", "to"):
        try:
            days.append(dt.date.fromisoformat(values[name].strip()))
        except ValueError:
            return name
    first, last = days
    return "to" if last < first or (last - first).days + 1 > MAX_DAYS else "range"


def _line_names():
    """``{line: name}`` of the site settings: the report names each line as the pages do."""
    site = lk().site.settings()
    return {x.line: x.name for x in site.lines} if site is not None else {}


@bp.route("/reports")
@roles("supervisor", "auditor")
def index():
    source = _source()
    period, lines, values, errors = _request(source)
    context = dict(
        values=values,
        allowed=_allowed_lines(source.lines()),
        every_line=g.user.has("auditor"),
        formats=FORMATS,
    )
    if errors:
        return form_errors("reports.html", errors, report=None, **context)
    try:
        report = source.report(period, lines, access_of_lines=_access_of_lines(values))
        since = _since_first_start(source, report)
        if since is not None:
            period = since
            values.update({"from": period.first.isoformat(), "to": period.last.isoformat()})
            report = source.report(period, lines, access_of_lines=_access_of_lines(values))
    except ReportError as exc:
        return form_errors("reports.html", {"range": as_sentence(exc)}, report=None, **context)
    audit("list_viewed", "report", **audited(report, period, lines))
    names = _line_names()
    return render_template(
        "reports.html",
        errors={},
        report=report,
        not_over=period.not_over(lk().services.wall_us()),
        running_note=running_note(report),
        outages_note=outages_note(report, names),
        tables=tables(report, human=True, line_names=names),
        hours_svg=Markup(svg.hours_chart(report)),
        lines_svg=Markup(svg.lines_chart(report)),
        **context,
    )


@bp.route("/reports/download")
@roles("supervisor", "auditor")
def download():
    source = _source()
    period, lines, values, errors = _request(source)
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        errors["format"] = "The format is one of %s." % ", ".join(FORMATS)
    if not errors:
        try:
            report = source.report(period, lines, access_of_lines=_access_of_lines(values))
            site = lk().site.settings()
            title = report_title(site.organisation if site else "")
            data = render(
                report,
                fmt,
                title,
                not_over=period.not_over(lk().services.wall_us()),
                line_names=_line_names(),
            )
        except ReportError as exc:
            errors["range"] = as_sentence(exc)
    if errors:
        return Response("\n".join(errors.values()) + "\n", status=400, mimetype="text/plain")
    audit("report", None, format=fmt, **audited(report, period, lines))
    name = "linekeeper-report-%s-%s.%s" % (period.first, period.last, fmt)
    return Response(
        data,
        mimetype=MIME[fmt],
        headers={"Content-Disposition": 'attachment; filename="%s"' % name, "Cache-Control": "no-store"},
    )
