"""A report as JSON, CSV or PDF (the text of every figure: :mod:`.tables`)."""

import io
import json

from .. import csvsafe
from ..errors import ReportError
from .tables import outages_note, running_note, tables

FORMATS = ("json", "csv", "pdf")

__all__ = ["AUDITED_CALLS_MAX", "FORMATS", "audited", "render", "tables", "to_csv", "to_json"]

# The most calls a report's audit entry names (its callback list's, one per caller): a longer
# list's entry says how many alone, as a breach's scope then says ("up to").
AUDITED_CALLS_MAX = 500


def audited(report, period, lines):
    """What a report's audit entry says of it (its lines, period and callback list), on the
    web UI's screen or download and from ``linekeeper report`` alike: a breach's scope reads
    them the same way (:mod:`firmware.breachscope`)."""
    callbacks = report["callbacks"]
    said = {
        "lines": list(lines),
        "period": "%s/%s" % (period.first.isoformat(), period.last.isoformat()),
        # Its callback list's entries, one per caller's number: the people it names.
        "callers": len(callbacks),
    }
    if len(callbacks) <= AUDITED_CALLS_MAX:
        # Which: each entry's last missed call, whose number the call log holds (sealed, as
        # the calls list's pages name theirs), never the numbers themselves in the trail.
        said["calls"] = [c["last_missed_call"] for c in callbacks]
    return said


def to_json(report):
    """The report as JSON text (callback times also as ISO 8601 UTC)."""
    from firmware.calls.calllog import iso_ms

    doc = json.loads(json.dumps(report))
    for c in doc["callbacks"]:
        c["first_missed_at"] = iso_ms(c["first_missed_us"])
        c["last_missed_at"] = iso_ms(c["last_missed_us"])
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def to_csv(report, line_names=None):
    """The report's tables as CSV: each table a title row, a header row, its rows, a blank row."""
    buf = io.StringIO()
    w = csvsafe.Writer(buf)
    w.writerow(
        ["Linekeeper report", report["period"]["from"], report["period"]["to"], report["period"]["tz"]]
    )
    # Its times as in every other row (2026-03-03 10:00:00): the CSV is for a spreadsheet.
    for note in (running_note(report, human=False), outages_note(report, line_names)):
        if note:
            w.writerow([note])
    w.writerow([])
    for title, header, rows in tables(report, line_names=line_names):
        w.writerow([title])
        w.writerow(header)
        w.writerows(rows)
        w.writerow([])
    return buf.getvalue()


def report_title(organisation="", every=""):
    """A report's title: "Linekeeper report", "Linekeeper weekly report" (``every``, a
    schedule's), "... for ORGANISATION" where the site settings name one, so a report
    printed or forwarded says whose calls it counts."""
    title = "Linekeeper %sreport" % (every + " " if every else "")
    organisation = organisation.strip() if isinstance(organisation, str) else ""
    return "%s for %s" % (title, organisation) if organisation else title


def render(report, fmt, title="Linekeeper report", not_over=None, line_names=None):
    """The report as bytes in ``fmt`` ("json", "csv" or "pdf"). ``not_over``: what the
    PDF says above its figures of a period not over yet (``Period.not_over``), as the
    page does; None for a period over. ``line_names``: ``{line: name}`` of the site
    settings, the lines of the CSV's and the PDF's tables named by them ("Line 2 (Office)").

    :raises ReportError: an unknown format
    """
    if fmt == "json":
        return to_json(report).encode("utf-8")
    if fmt == "csv":
        return to_csv(report, line_names).encode("utf-8")
    if fmt == "pdf":
        from .pdf import to_pdf

        return to_pdf(report, title, not_over, line_names)
    raise ReportError("the report format is json, csv or pdf, not %r" % (fmt,))
