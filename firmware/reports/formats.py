"""A report as JSON, CSV or PDF (the text of every figure: :mod:`.tables`)."""

import io
import json

from .. import csvsafe
from ..errors import ReportError
from .tables import outages_note, running_note, tables

FORMATS = ("json", "csv", "pdf")

__all__ = ["FORMATS", "render", "tables", "to_csv", "to_json"]


def to_json(report):
    """The report as JSON text (callback times also as ISO 8601 UTC)."""
    from firmware.calls.calllog import iso_ms

    doc = json.loads(json.dumps(report))
    for c in doc["callbacks"]:
        c["first_missed_at"] = iso_ms(c["first_missed_us"])
        c["last_missed_at"] = iso_ms(c["last_missed_us"])
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def to_csv(report):
    """The report's tables as CSV: each table a title row, a header row, its rows, a blank row."""
    buf = io.StringIO()
    w = csvsafe.Writer(buf)
    w.writerow(
        ["Linekeeper report", report["period"]["from"], report["period"]["to"], report["period"]["tz"]]
    )
    # Its times as in every other row (2026-03-03 10:00:00): the CSV is for a spreadsheet.
    for note in (running_note(report, human=False), outages_note(report)):
        if note:
            w.writerow([note])
    w.writerow([])
    for title, header, rows in tables(report):
        w.writerow([title])
        w.writerow(header)
        w.writerows(rows)
        w.writerow([])
    return buf.getvalue()


def render(report, fmt, title="Linekeeper report"):
    """The report as bytes in ``fmt`` ("json", "csv" or "pdf").

    :raises ReportError: an unknown format
    """
    if fmt == "json":
        return to_json(report).encode("utf-8")
    if fmt == "csv":
        return to_csv(report).encode("utf-8")
    if fmt == "pdf":
        from .pdf import to_pdf

        return to_pdf(report, title)
    raise ReportError("the report format is json, csv or pdf, not %r" % (fmt,))
